//! `eos-agent check-config` on a table of bad files: each gives `file:line: message` and
//! exit status 1, and nothing panics.

use eos_tests::{agent_bin, agent_modules, TempDir};
use std::process::Command;

fn check(dir: &TempDir, name: &str, text: &str, env: &[(&str, &str)]) -> (i32, String, String) {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writing a config");
    let out = Command::new(agent_bin())
        .arg("check-config")
        .arg(&path)
        .env_remove("EOS_TEST_UNSET")
        .envs(env.iter().copied())
        .output()
        .expect("running check-config");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_files_give_file_line_messages() {
    let dir = TempDir::new("config-errors");
    let p = |n: &str| dir.join(n).display().to_string();
    // (file name, content, expected stderr line)
    let cases: Vec<(&str, &str, String)> = vec![
        (
            "bad_indent.yaml",
            "host:\n  procfs: /x\n    sysfs: /y\n",
            format!("{}:3: mapping values are not allowed in this context", p("bad_indent.yaml")),
        ),
        (
            "unknown_top.yaml",
            "listen_address: :9100\nlisten_adress: :9200\n",
            format!("{}:2: unknown field `listen_adress`, expected one of `listen_address`, `node_name`, `host`, `state_dir`, `kubelet`, `server`, `modules`", p("unknown_top.yaml")),
        ),
        (
            "unknown_host_key.yaml",
            "host:\n  procfs: /host/proc\n  sysfz: /host/sys\n",
            format!("{}:3: host: unknown field `sysfz`, expected one of `procfs`, `sysfs`, `rootfs`, `udev_data`, `log_dir`", p("unknown_host_key.yaml")),
        ),
        (
            "unknown_module.yaml",
            "modules:\n  frobnicator:\n    enabled: true\n",
            format!("{}:2: modules: unknown field `frobnicator`, {}", p("unknown_module.yaml"), module_list()),
        ),
        (
            "wrong_type.yaml",
            "state_dir:\n  - a\n  - b\n",
            format!("{}:2: state_dir: invalid type: sequence, expected path string", p("wrong_type.yaml")),
        ),
        (
            "bad_duration.yaml",
            "server:\n  scrape_timeout: 10\n",
            format!("{}:2: server.scrape_timeout: invalid duration 10: add a unit, e.g. 10s", p("bad_duration.yaml")),
        ),
        (
            "bad_duration_unit.yaml",
            "server:\n  scrape_timeout_offset: 5 seconds\n",
            format!("{}:2: server.scrape_timeout_offset: invalid duration \"5 seconds\": use a number with a unit, e.g. 500ms, 15s, 1m30s", p("bad_duration_unit.yaml")),
        ),
        (
            "bad_address.yaml",
            "# comment\nlisten_address: localhost\n",
            format!("{}:2: listen_address: invalid listen address \"localhost\": expected host:port, e.g. 0.0.0.0:9100 or :9100", p("bad_address.yaml")),
        ),
        (
            "zero_timeout.yaml",
            "server:\n  scrape_timeout: 0s\n",
            format!("{}:2: server: scrape_timeout must be more than 0, e.g. 10s", p("zero_timeout.yaml")),
        ),
        (
            "bad_port.yaml",
            "listen_address: 0.0.0.0:99999\n",
            format!("{}:1: listen_address: invalid listen address \"0.0.0.0:99999\": expected host:port, e.g. 0.0.0.0:9100 or :9100", p("bad_port.yaml")),
        ),
        (
            "syntax.yaml",
            "host:\n  procfs: \"/host/proc\n",
            format!("{}:3: found unexpected end of stream, while scanning a quoted scalar at line 2 column 11", p("syntax.yaml")),
        ),
        (
            "unset_env.yaml",
            "node_name: worker\nstate_dir: /var/lib/${EOS_TEST_UNSET}\n",
            format!("{}:2: environment variable EOS_TEST_UNSET is not set (write ${{EOS_TEST_UNSET:-default}} for a fallback)", p("unset_env.yaml")),
        ),
        (
            "not_a_map.yaml",
            "- just\n- a list\n",
            format!("{}:1: invalid type: sequence, expected a mapping of settings (key: value)", p("not_a_map.yaml")),
        ),
        // Module sections' own checks (validate), with the line of the key.
        (
            "netdev_both.yaml",
            "modules:\n  node:\n    netdev:\n      device_exclude: '^lo$'\n      device_include: '^eth'\n",
            format!("{}:5: modules.node.netdev.device_include: device_include and device_exclude are mutually exclusive (--collector.netdev.device-include/-exclude)", p("netdev_both.yaml")),
        ),
        (
            "pod_labels_clash.yaml",
            "modules:\n  containers:\n    pod_labels: [app.kubernetes.io/name, app_kubernetes_io_name]\n",
            format!("{}:3: modules.containers.pod_labels: \"app.kubernetes.io/name\" and \"app_kubernetes_io_name\" both become the label label_app_kubernetes_io_name; keep one", p("pod_labels_clash.yaml")),
        ),
        (
            "kubelet_zero.yaml",
            "kubelet:\n  url: https://127.0.0.1:10250/pods\n  refresh_interval: 0s\n",
            format!("{}:3: kubelet.refresh_interval: must be more than 0, e.g. 5s", p("kubelet_zero.yaml")),
        ),
        (
            "kubelet_twice.yaml",
            "kubelet: {insecure_skip_verify: true}\nmodules:\n  containers:\n    kubelet: {insecure_skip_verify: true}\n",
            format!("{}:4: modules.containers.kubelet and the top-level kubelet: are both set; keep only the top-level kubelet: section", p("kubelet_twice.yaml")),
        ),
    ];
    let mut failures = Vec::new();
    for (name, text, want) in &cases {
        let (code, _out, err) = check(&dir, name, text, &[]);
        let got = err.trim_end();
        if code != 1 || got != want {
            failures.push(format!(
                "{name}: exit {code}\n  want: {want}\n  got:  {got}"
            ));
        }
        assert!(!err.contains("panicked"), "{name} panicked: {err}");
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn missing_file_and_good_file() {
    let dir = TempDir::new("config-ok");
    let missing = dir.join("nope.yaml");
    let out = Command::new(agent_bin())
        .arg("check-config")
        .arg(&missing)
        .output()
        .expect("running check-config");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!("{}: cannot read config file: ", missing.display())),
        "{err}"
    );

    let (code, out, err) = check(
        &dir,
        "good.yaml",
        "node_name: ${EOS_TEST_NODE}\nlisten_address: :9100\nserver: {scrape_timeout: 1m30s}\n",
        &[("EOS_TEST_NODE", "worker-1")],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(": ok (modules enabled: "), "{out}");
}

#[test]
fn the_old_kubelet_key_is_accepted_with_a_warning() {
    let dir = TempDir::new("config-deprecated");
    let (code, out, err) = check(
        &dir,
        "old.yaml",
        "modules:\n  containers:\n    kubelet: {insecure_skip_verify: true}\n",
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(": ok (modules enabled: "), "{out}");
    assert_eq!(
        err.trim_end(),
        format!(
            "warning: {}:3: modules.containers.kubelet is deprecated: move it to the top-level kubelet: section, which every module that needs pod metadata shares",
            dir.join("old.yaml").display()
        )
    );
}

#[test]
fn embedded_default_is_valid_and_printable() {
    let out = Command::new(agent_bin())
        .arg("print-default-config")
        .output()
        .expect("print-default-config");
    assert!(out.status.success());
    let dir = TempDir::new("config-default");
    let path = dir.join("default.yaml");
    std::fs::write(&path, &out.stdout).expect("write");
    let st = Command::new(agent_bin())
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("check-config");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
}

#[test]
fn bad_flags_are_reported() {
    for (args, want) in [
        (
            vec!["--web.listen-address=nowhere"],
            "eos-agent: invalid listen address \"nowhere\"",
        ),
        (
            vec!["--log.level=chatty"],
            "eos-agent: --log.level: unknown level",
        ),
        (vec!["--frobnicate"], "unknown flag --frobnicate"),
        (
            vec!["--collector.bogus"],
            "command line: --collector.bogus: unknown node collector \"bogus\"",
        ),
    ] {
        let out = Command::new(agent_bin())
            .args(&args)
            .output()
            .expect("running the agent");
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(
            err.matches("--collector.bogus").count(),
            usize::from(args[0] == "--collector.bogus"),
            "the flag is named once: {err}"
        );
    }
}

/// The registered modules as serde lists them after an unknown field.
fn module_list() -> String {
    let names: Vec<String> = agent_modules().iter().map(|m| format!("`{m}`")).collect();
    match names.as_slice() {
        [] => "there are no fields".into(),
        [a] => format!("expected {a}"),
        [a, b] => format!("expected {a} or {b}"),
        all => format!("expected one of {}", all.join(", ")),
    }
}
