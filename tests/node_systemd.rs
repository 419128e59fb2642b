//! The built agent with node_exporter's `--collector.systemd` flags, its bus pointed at a fake
//! systemd: `/metrics` has the `node_systemd_*` families with the units' values, and
//! `promtool check metrics` accepts the whole output.
//!
//! No systemd runs here, so the other end is `eos_testkit::systemd::FakeSystemd`: a real
//! `dbus-daemon` (Debian's `dbus-daemon` package) on a private socket, with a fake owning
//! `org.freedesktop.systemd1` that serves `ListUnits` and the properties with systemd's
//! documented interfaces and signatures.

use eos_testkit::systemd::{FakeSystemd, FakeUnit};
use eos_tests::{promtool_check_metrics, sample, single_module_config, Agent, TempDir};

/// The one finding promtool has for node_exporter's own systemd families: it declares
/// `node_systemd_socket_refused_connections_total` a gauge, and so do we.
const UPSTREAM_LINT: &str = "node_systemd_socket_refused_connections_total non-counter metrics should not have \"_total\" suffix";

#[test]
fn agent_serves_the_systemd_families_from_the_bus() {
    let mut crashing = FakeUnit::new("app.service", "activating").kind("exec");
    crashing.n_restarts = Some(5);
    let mut socket = FakeUnit::new("sshd.socket", "active");
    socket.n_accepted = Some(3);
    let mut timer = FakeUnit::new("fstrim.timer", "active");
    timer.last_trigger_usec = Some(1_700_000_000_000_000);
    let fake = FakeSystemd::start(
        "255.4-1ubuntu8.4",
        vec![
            FakeUnit::new("kubelet.service", "active"),
            FakeUnit::new("containerd.service", "failed").kind("notify"),
            crashing,
            socket,
            timer,
            FakeUnit::new("var-lib-kubelet.mount", "active"),
        ],
    );
    let dir = TempDir::new("node-systemd");
    let cfg = dir.join("agent.yaml");
    std::fs::write(&cfg, single_module_config("node", dir.path())).expect("writing agent.yaml");
    // As in the DaemonSet: no bus address is given, and the host's system bus socket is found
    // under --path.rootfs (here a symlink to the fake's socket).
    let socket = fake
        .address()
        .strip_prefix("unix:path=")
        .expect("the fake listens on a unix socket path")
        .to_string();
    let rootfs = dir.join("host-root");
    std::fs::create_dir_all(rootfs.join("run/dbus")).expect("creating run/dbus");
    std::os::unix::fs::symlink(&socket, rootfs.join("run/dbus/system_bus_socket"))
        .expect("linking the bus socket");
    let rootfs_flag = format!("--path.rootfs={}", rootfs.display());
    let agent = Agent::start(&[
        "--config",
        cfg.to_str().expect("utf-8 path"),
        "--collector.systemd",
        "--collector.systemd.enable-restarts-metrics",
        &rootfs_flag,
    ]);
    let text = agent.metrics();

    let value = |name: &str, labels: &[(&str, &str)]| sample(&text, name, labels);
    assert_eq!(
        value("node_scrape_collector_success", &[("collector", "systemd")]),
        Some(1.0),
        "{}",
        agent.log_text()
    );
    let state = |unit: &str, state: &str, kind: &str| {
        value(
            "node_systemd_unit_state",
            &[("name", unit), ("state", state), ("type", kind)],
        )
    };
    assert_eq!(state("kubelet.service", "active", "simple"), Some(1.0));
    assert_eq!(state("containerd.service", "failed", "notify"), Some(1.0));
    assert_eq!(state("containerd.service", "active", "notify"), Some(0.0));
    assert_eq!(state("app.service", "activating", "exec"), Some(1.0));
    assert_eq!(state("sshd.socket", "active", ""), Some(1.0));
    assert!(
        !text.contains("var-lib-kubelet.mount\""),
        "a mount reported"
    );
    // What kube-prometheus's NodeSystemdServiceFailed and ...Crashlooping alerts read.
    assert_eq!(
        value(
            "node_systemd_service_restart_total",
            &[("name", "app.service")]
        ),
        Some(5.0)
    );
    assert_eq!(
        value("node_systemd_units", &[("state", "active")]),
        Some(4.0)
    );
    assert_eq!(
        value("node_systemd_units", &[("state", "failed")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            "node_systemd_socket_accepted_connections_total",
            &[("name", "sshd.socket")]
        ),
        Some(3.0)
    );
    assert_eq!(
        value(
            "node_systemd_timer_last_trigger_seconds",
            &[("name", "fstrim.timer")]
        ),
        Some(1_700_000_000.0)
    );
    assert_eq!(value("node_systemd_system_running", &[]), Some(1.0));
    assert_eq!(
        value("node_systemd_version", &[("version", "255.4-1ubuntu8.4")]),
        Some(255.4)
    );
    assert_eq!(
        value(
            "node_systemd_virtualization_info",
            &[("virtualization_type", "kvm")]
        ),
        Some(1.0)
    );

    let lint = promtool_check_metrics(&text);
    assert!(
        lint.code == 0 || lint.code == 3,
        "promtool check metrics failed (exit {}): {:?}",
        lint.code,
        lint.problems
    );
    let systemd: Vec<&String> = lint
        .problems
        .iter()
        .filter(|p| p.starts_with("node_systemd_"))
        .collect();
    assert_eq!(
        systemd,
        vec![UPSTREAM_LINT],
        "promtool on the systemd families"
    );
}
