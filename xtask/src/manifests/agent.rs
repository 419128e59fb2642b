//! The agent as deployed: the DaemonSet's args, mounts and probes, the shape of `agent.yaml`,
//! and `eos-agent check-config` on it. Flags, config keys and module names come from the built
//! agent (`eos-agent describe`), so these checks need one and are skipped without it.

use super::yaml::{get, get_str, mapping_keys, rel, seq, string_list};
use super::{Fail, Outcome, Skip};
use eos_testkit::{Description, TempDir};
use serde_yaml_ng::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The built agent and what it says about itself; `Skip` when there is none
/// (`$EOS_AGENT_BIN`, or `target/{debug,release}/eos-agent`).
pub(super) fn built_agent() -> Result<(PathBuf, Description), Outcome> {
    let Some(bin) = eos_testkit::agent::find_binary() else {
        return Err(Skip(
            "no built agent in target/ (cargo build -p eos-agent, or set EOS_AGENT_BIN)".into(),
        ));
    };
    let description = Description::of(&bin).map_err(Fail)?;
    Ok((bin, description))
}

pub(super) fn is_agent_daemonset(d: &Value) -> bool {
    get_str(d, &["kind"]) == Some("DaemonSet")
        && get_str(d, &["metadata", "name"]) == Some("eos-agent")
}

pub(super) fn agent_container(ds: &Value) -> Option<&Value> {
    seq(get(ds, &["spec", "template", "spec", "containers"]))
        .iter()
        .find(|c| get_str(c, &["name"]) == Some("eos-agent"))
}

/// The agent's args as (flag, value) pairs, or the first argument the agent would not accept:
/// its own flags (`--flag=v` or `--flag v` when it takes a value), node_exporter's flags it
/// ignores (a value inline, as the next argument or none), and module flags (a value inline
/// only), all as `describe` lists them.
fn parse_agent_args(
    args: &[String],
    agent: &Description,
) -> Result<Vec<(String, Option<String>)>, String> {
    let mut out = Vec::new();
    let mut it = args.iter().peekable();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (a.as_str(), None),
        };
        if agent.is_module_flag(flag) {
            out.push((flag.to_string(), inline));
            continue;
        }
        if agent.ignored_flags.iter().any(|f| f == flag) {
            let value = inline.or_else(|| it.next_if(|v| !v.starts_with('-')).cloned());
            out.push((flag.to_string(), value));
            continue;
        }
        let Some(known) = agent.flag(flag) else {
            let module_prefixes = agent
                .modules
                .iter()
                .flat_map(|m| &m.flag_prefixes)
                .map(|p| format!("{p}*"));
            let known: Vec<String> = agent
                .flags
                .iter()
                .map(|f| f.name.clone())
                .chain(agent.ignored_flags.iter().cloned())
                .chain(module_prefixes)
                .collect();
            return Err(format!(
                "argument {a:?} is not an eos-agent flag (known: {})",
                known.join(", ")
            ));
        };
        let value = match inline {
            Some(v) => v,
            None if known.takes_value => it
                .next()
                .filter(|v| !v.starts_with("--"))
                .cloned()
                .ok_or_else(|| format!("flag {flag} needs a value"))?,
            None => {
                out.push((flag.to_string(), None));
                continue;
            }
        };
        if value.is_empty() {
            return Err(format!("flag {flag} has an empty value"));
        }
        out.push((flag.to_string(), Some(value)));
    }
    Ok(out)
}

/// The DaemonSet's contract with the agent: accepted flags, host paths mounted where the flags
/// say, the config directory mounted whole (no `subPath`) from a ConfigMap.
pub(super) fn check_agent_daemonset(ds: &Value, agent: &Description) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(c) = agent_container(ds) else {
        return vec!["DaemonSet eos-agent has no container named eos-agent".into()];
    };
    let pod = get(ds, &["spec", "template", "spec"]).unwrap_or(&Value::Null);
    let flags = match parse_agent_args(&string_list(c.get("args")), agent) {
        Ok(f) => f,
        Err(e) => return vec![e],
    };
    let flag = |name: &str| {
        flags
            .iter()
            .find(|(f, _)| f == name)
            .and_then(|(_, v)| v.clone())
    };
    let mounts = seq(c.get("volumeMounts"));
    let volumes = seq(pod.get("volumes"));
    let volume = |name: &str| volumes.iter().find(|v| get_str(v, &["name"]) == Some(name));
    // The mount whose path is the longest prefix of `path`.
    let mount_for = |path: &str| {
        mounts
            .iter()
            .filter(|m| {
                get_str(m, &["mountPath"]).is_some_and(|mp| {
                    path == mp || path.starts_with(&format!("{}/", mp.trim_end_matches('/')))
                })
            })
            .max_by_key(|m| get_str(m, &["mountPath"]).map_or(0, str::len))
    };

    for (f, host) in [
        ("--path.procfs", "/proc"),
        ("--path.sysfs", "/sys"),
        ("--path.rootfs", "/"),
    ] {
        let Some(p) = flag(f) else {
            errors.push(format!("args lack {f}"));
            continue;
        };
        let m = mounts
            .iter()
            .find(|m| get_str(m, &["mountPath"]) == Some(p.as_str()));
        let Some(m) = m else {
            errors.push(format!("{f}={p}: no volumeMount at {p}"));
            continue;
        };
        if m.get("readOnly").and_then(Value::as_bool) != Some(true) {
            errors.push(format!("{p}: host mount must be readOnly"));
        }
        let vname = get_str(m, &["name"]).unwrap_or("");
        if volume(vname).and_then(|v| get_str(v, &["hostPath", "path"])) != Some(host) {
            errors.push(format!("{p}: volume {vname} is not hostPath {host}"));
        }
        if f == "--path.rootfs" && get_str(m, &["mountPropagation"]) != Some("HostToContainer") {
            errors.push(format!(
                "{p}: rootfs mount needs mountPropagation: HostToContainer"
            ));
        }
    }
    match flag("--config") {
        None => errors.push("args lack --config".into()),
        Some(cfg) => {
            let p = Path::new(&cfg);
            let dir = p.parent().and_then(Path::to_str).unwrap_or("");
            let file = p.file_name().and_then(|f| f.to_str()).unwrap_or("");
            match mount_for(&cfg) {
                None => errors.push(format!("--config {cfg}: nothing is mounted there")),
                Some(m) => {
                    if m.get("subPath").is_some() {
                        errors.push(format!(
                            "--config {cfg}: mounted with subPath, which never sees ConfigMap updates (live reload breaks); mount the directory"
                        ));
                    }
                    if get_str(m, &["mountPath"]) != Some(dir) {
                        errors.push(format!("--config {cfg}: mount the ConfigMap at {dir}"));
                    }
                    let vname = get_str(m, &["name"]).unwrap_or("");
                    if volume(vname)
                        .and_then(|v| get(v, &["configMap", "name"]))
                        .is_none()
                    {
                        errors.push(format!("--config {cfg}: volume {vname} is not a ConfigMap"));
                    } else if let Some(items) = volume(vname)
                        .and_then(|v| get(v, &["configMap", "items"]))
                        .and_then(Value::as_sequence)
                    {
                        if !items.iter().any(|i| get_str(i, &["path"]) == Some(file)) {
                            errors.push(format!(
                                "--config {cfg}: ConfigMap items do not include {file}"
                            ));
                        }
                    }
                }
            }
        }
    }
    let env_names: Vec<&str> = seq(c.get("env"))
        .iter()
        .filter_map(|e| get_str(e, &["name"]))
        .collect();
    let node_name_ref = seq(c.get("env"))
        .iter()
        .find(|e| get_str(e, &["name"]) == Some("NODE_NAME"))
        .and_then(|e| get_str(e, &["valueFrom", "fieldRef", "fieldPath"]));
    if node_name_ref != Some("spec.nodeName") {
        errors.push(format!(
            "env NODE_NAME must come from fieldRef spec.nodeName (env: {env_names:?})"
        ));
    }
    for (key, want) in [("hostNetwork", true), ("hostPID", true)] {
        if pod.get(key).and_then(Value::as_bool) != Some(want) {
            errors.push(format!("pod spec needs {key}: {want}"));
        }
    }
    for probe in ["livenessProbe", "readinessProbe"] {
        let path = get_str(c, &[probe, "httpGet", "path"]);
        let want = if probe == "livenessProbe" {
            "/healthz"
        } else {
            "/readyz"
        };
        if path != Some(want) {
            errors.push(format!("{probe} must GET {want}, has {path:?}"));
        }
    }
    let listen_port = flag("--web.listen-address")
        .and_then(|a| a.rsplit_once(':').and_then(|(_, p)| p.parse::<i64>().ok()))
        .unwrap_or(9100);
    if !seq(c.get("ports"))
        .iter()
        .any(|p| get(p, &["containerPort"]).and_then(Value::as_i64) == Some(listen_port))
    {
        errors.push(format!("no containerPort {listen_port}"));
    }
    let caps = string_list(get(c, &["securityContext", "capabilities", "add"]));
    if !caps.iter().any(|c| c == "NET_RAW") {
        errors.push("securityContext.capabilities.add lacks NET_RAW (ICMP probes)".into());
    }
    if !seq(pod.get("tolerations"))
        .iter()
        .any(|t| get_str(t, &["operator"]) == Some("Exists") && t.get("key").is_none())
    {
        errors.push("tolerations must include `operator: Exists` to run on every node".into());
    }
    if get_str(ds, &["spec", "updateStrategy", "type"]) != Some("RollingUpdate")
        || get(
            ds,
            &["spec", "updateStrategy", "rollingUpdate", "maxUnavailable"],
        )
        .is_none()
    {
        errors.push("updateStrategy must be RollingUpdate with maxUnavailable".into());
    }
    for kind in ["requests", "limits"] {
        if get(c, &["resources", kind, "memory"]).is_none() {
            errors.push(format!("resources.{kind}.memory is not set"));
        }
    }
    errors
}

/// The top-level shape of `agent.yaml` (DESIGN.md, "Config shape"): the agent's config keys,
/// and sections only for planned modules (built or not yet), each with `enabled`.
pub(super) fn check_agent_config(text: &str, agent: &Description) -> Vec<String> {
    let v: Value = match serde_yaml_ng::from_str(text) {
        Ok(v) => v,
        Err(e) => return vec![e.to_string()],
    };
    let mut errors = Vec::new();
    for k in mapping_keys(&v) {
        if !agent.config_keys.contains(&k) {
            errors.push(format!("unknown top-level key `{k}`"));
        }
    }
    if get_str(&v, &["node_name"]) != Some("${NODE_NAME}") {
        errors.push("node_name should be ${NODE_NAME} (the downward API's spec.nodeName)".into());
    }
    let modules = v.get("modules").unwrap_or(&Value::Null);
    for m in mapping_keys(modules) {
        if !agent.planned_modules.contains(&m) {
            errors.push(format!("unknown module `{m}`"));
        } else if get(modules, &[m.as_str(), "enabled"])
            .and_then(Value::as_bool)
            .is_none()
        {
            errors.push(format!("modules.{m}.enabled must be true or false"));
        }
    }
    errors
}

/// `eos-agent check-config agent.yaml <DaemonSet flags>` with the built agent `bin`. Module
/// sections for modules this build does not have yet are taken out first (and named in the
/// report).
pub(super) fn agent_check_config(
    root: &Path,
    bin: &Path,
    agent: &Description,
    config: &Path,
    ds_args: &[String],
) -> Result<String, String> {
    let built = agent.module_names();
    let text = std::fs::read_to_string(config)
        .map_err(|e| format!("reading {}: {e}", config.display()))?;
    let mut v: Value =
        serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", config.display()))?;
    let mut left_out = Vec::new();
    if let Some(modules) = v.get_mut("modules").and_then(Value::as_mapping_mut) {
        let names: Vec<String> = modules
            .keys()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect();
        for n in names {
            if !built.contains(&n) {
                modules.remove(n.as_str());
                left_out.push(n);
            }
        }
    }
    let tmp = TempDir::try_new("xtask-agent-config")?;
    // The original text when nothing was taken out, so errors point at its lines.
    let file = tmp.join("agent.yaml");
    let body = if left_out.is_empty() {
        text
    } else {
        serde_yaml_ng::to_string(&v).map_err(|e| e.to_string())?
    };
    std::fs::write(&file, body).map_err(|e| format!("writing {}: {e}", file.display()))?;
    let flags: Vec<String> = parse_agent_args(ds_args, agent)?
        .into_iter()
        .filter(|(f, _)| f != "--config")
        .flat_map(|(f, v)| match v {
            Some(v) => vec![format!("{f}={v}")],
            None => vec![f],
        })
        .collect();
    let out = Command::new(bin)
        .arg("check-config")
        .arg(&file)
        .args(&flags)
        .env("NODE_NAME", "validation-node")
        .output()
        .map_err(|e| format!("running {} check-config: {e}", bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} check-config {} {} failed: {}{}",
            bin.display(),
            rel(root, config),
            flags.join(" "),
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let mut line = format!(
        "{} check-config {} with the DaemonSet's flags",
        rel(root, bin),
        rel(root, config)
    );
    if !left_out.is_empty() {
        let _ = write!(
            line,
            " (sections not in this build, left unchecked: {})",
            left_out.join(", ")
        );
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    /// The agent as `describe` shows it: node and containers built.
    fn agent() -> Description {
        Description::parse(eos_testkit::describe::EXAMPLE).expect("the example parses")
    }

    #[test]
    fn agent_args_accept_node_exporter_flags_only() {
        let ok = parse_agent_args(
            &s(&[
                "--path.procfs=/host/proc",
                "--config",
                "/etc/eos-agent/agent.yaml",
                "--collector.processes",
                "--no-collector.wifi",
                "--web.listen-address=:9100",
            ]),
            &agent(),
        );
        assert_eq!(ok.map(|v| v.len()), Ok(5));
        assert!(parse_agent_args(&s(&["--path.proc=/x"]), &agent())
            .is_err_and(|e| e.contains("not an eos-agent flag")));
        assert!(parse_agent_args(&s(&["--config"]), &agent())
            .is_err_and(|e| e.contains("needs a value")));
        assert!(parse_agent_args(&s(&["--config", "--log.level=info"]), &agent()).is_err());
        assert!(
            parse_agent_args(&s(&["--log.level="]), &agent()).is_err_and(|e| e.contains("empty"))
        );
    }

    const DAEMONSET: &str = r#"
kind: DaemonSet
apiVersion: apps/v1
metadata: {name: eos-agent}
spec:
  updateStrategy: {type: RollingUpdate, rollingUpdate: {maxUnavailable: 1}}
  template:
    spec:
      hostNetwork: true
      hostPID: true
      tolerations: [{operator: Exists}]
      containers:
        - name: eos-agent
          args: [--path.procfs=/host/proc, --path.sysfs=/host/sys, --path.rootfs=/host/root, --config, /etc/eos-agent/agent.yaml]
          env: [{name: NODE_NAME, valueFrom: {fieldRef: {fieldPath: spec.nodeName}}}]
          ports: [{containerPort: 9100}]
          livenessProbe: {httpGet: {path: /healthz}}
          readinessProbe: {httpGet: {path: /readyz}}
          resources: {requests: {memory: 64Mi}, limits: {memory: 256Mi}}
          securityContext: {capabilities: {add: [NET_RAW]}}
          volumeMounts:
            - {name: config, mountPath: /etc/eos-agent}
            - {name: proc, mountPath: /host/proc, readOnly: true}
            - {name: sys, mountPath: /host/sys, readOnly: true}
            - {name: root, mountPath: /host/root, readOnly: true, mountPropagation: HostToContainer}
      volumes:
        - {name: config, configMap: {name: eos-agent}}
        - {name: proc, hostPath: {path: /proc}}
        - {name: sys, hostPath: {path: /sys}}
        - {name: root, hostPath: {path: /}}
"#;

    #[test]
    fn agent_daemonset_fixture_passes() {
        let ds: Value = serde_yaml_ng::from_str(DAEMONSET).expect("fixture parses");
        assert_eq!(check_agent_daemonset(&ds, &agent()), Vec::<String>::new());
    }

    #[test]
    fn agent_daemonset_subpath_config_mount_is_rejected() {
        let bad = DAEMONSET.replace(
            "{name: config, mountPath: /etc/eos-agent}",
            "{name: config, mountPath: /etc/eos-agent/agent.yaml, subPath: agent.yaml}",
        );
        let ds: Value = serde_yaml_ng::from_str(&bad).expect("fixture parses");
        let errors = check_agent_daemonset(&ds, &agent());
        assert!(errors.iter().any(|e| e.contains("subPath")), "{errors:?}");
    }

    #[test]
    fn agent_daemonset_wrong_host_paths_are_rejected() {
        let bad = DAEMONSET
            .replace("--path.sysfs=/host/sys", "--path.sysfs=/hostsys")
            .replace(
                "mountPropagation: HostToContainer",
                "mountPropagation: None",
            )
            .replace("{path: /proc}", "{path: /var/proc}");
        let ds: Value = serde_yaml_ng::from_str(&bad).expect("fixture parses");
        let errors = check_agent_daemonset(&ds, &agent());
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn agent_config_shape() {
        assert_eq!(
            check_agent_config(
                "node_name: ${NODE_NAME}\nmodules:\n  node: {enabled: true}\n",
                &agent()
            ),
            Vec::<String>::new()
        );
        let e = check_agent_config(
            "node_name: x\nlisten: 1\nmodules:\n  nodes: {enabled: true}\n  ping: {enabled: yes please}\n",
            &agent(),
        );
        assert_eq!(e.len(), 4, "{e:?}");
        assert_eq!(check_agent_config("[1, 2", &agent()).len(), 1);
    }

    #[test]
    fn ignored_flags_take_a_value_or_none() {
        let got = parse_agent_args(
            &s(&[
                "--log.format=logfmt",
                "--web.max-requests",
                "40",
                "--web.disable-exporter-metrics",
                "--config=/etc/eos-agent/agent.yaml",
            ]),
            &agent(),
        )
        .unwrap();
        let pairs: Vec<(&str, Option<&str>)> = got
            .iter()
            .map(|(f, v)| (f.as_str(), v.as_deref()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("--log.format", Some("logfmt")),
                ("--web.max-requests", Some("40")),
                ("--web.disable-exporter-metrics", None),
                ("--config", Some("/etc/eos-agent/agent.yaml")),
            ]
        );
        let e = parse_agent_args(&s(&["--web.config.file=/x"]), &agent()).unwrap_err();
        assert!(e.contains("--log.format"), "{e}");
        assert!(e.contains("--no-collector.*"), "{e}");
    }

    #[test]
    fn flags_and_modules_come_from_the_agent() {
        let mut a = agent();
        // A build without the node module has no --collector.* flags.
        a.modules.retain(|m| m.name != "node");
        assert!(parse_agent_args(&s(&["--collector.cpu"]), &a)
            .is_err_and(|e| e.contains("not an eos-agent flag")));
        // A flag without a value stands alone.
        a.flags.push(eos_testkit::describe::Flag {
            name: "--web.enable-lifecycle".into(),
            takes_value: false,
        });
        assert_eq!(
            parse_agent_args(&s(&["--web.enable-lifecycle", "--log.level=info"]), &a),
            Ok(vec![
                ("--web.enable-lifecycle".to_string(), None),
                ("--log.level".to_string(), Some("info".to_string())),
            ])
        );
        // Config keys and planned modules are the agent's.
        a.config_keys.retain(|k| k != "state_dir");
        a.planned_modules.retain(|m| m != "mtr");
        let e = check_agent_config(
            "node_name: ${NODE_NAME}\nstate_dir: /x\nmodules:\n  mtr: {enabled: false}\n",
            &a,
        );
        assert_eq!(
            e,
            ["unknown top-level key `state_dir`", "unknown module `mtr`"]
        );
    }
}
