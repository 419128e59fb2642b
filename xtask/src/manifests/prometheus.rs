//! Prometheus: the alert rules (`promtool check rules` and `test rules`, every alert tested)
//! and each `prometheus.yml` (`promtool check config`, with `kubernetes_sd_configs` checked
//! here because Debian's promtool lacks Kubernetes service discovery).

use super::yaml::{get, get_str, has_ext, load_yaml, mapping_keys, rel, seq, string_list, walk};
use eos_testkit::TempDir;
use serde_yaml_ng::{Mapping, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// promtool is required: the stack's alerting depends on these files.
pub(super) fn promtool(args: &[&str], files: &[PathBuf]) -> Result<String, String> {
    let out = Command::new("promtool")
        .args(args)
        .args(files)
        .output()
        .map_err(|e| format!("running promtool: {e} (install Debian's `prometheus` package)"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("promtool {} failed:\n{text}", args.join(" ")))
    }
}

/// `promtool check rules` and `test rules`; each rules file has a test file that tests each of
/// its alerts.
pub(super) fn check_rules(rules_dir: &Path) -> Result<String, String> {
    let mut rules = Vec::new();
    let mut tests = Vec::new();
    walk(rules_dir, &mut rules).map_err(|e| format!("listing {}: {e}", rules_dir.display()))?;
    rules.retain(|p| has_ext(p, &["yaml"]));
    rules.sort();
    let (mut t, r): (Vec<PathBuf>, Vec<PathBuf>) = rules
        .into_iter()
        .partition(|p| p.starts_with(rules_dir.join("tests")));
    tests.append(&mut t);
    let rules = r;
    if rules.is_empty() {
        return Err(format!("no rules in {}", rules_dir.display()));
    }
    promtool(&["check", "rules"], &rules)?;
    let mut problems = Vec::new();
    let mut alert_count = 0;
    for r in &rules {
        let stem = r.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        let test = rules_dir.join("tests").join(format!("{stem}_test.yaml"));
        let alerts = alert_names(r)?;
        alert_count += alerts.len();
        let tested = if test.is_file() {
            tested_alerts(&test)?
        } else {
            problems.push(format!("{}: no test file {}", r.display(), test.display()));
            continue;
        };
        for a in alerts.difference(&tested) {
            problems.push(format!(
                "{}: alert {a} has no alert_rule_test in {}",
                r.display(),
                test.display()
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("\n  "));
    }
    promtool(&["test", "rules"], &tests)?;
    Ok(format!(
        "promtool check rules + test rules: {} rule files, {alert_count} alerts, {} test files",
        rules.len(),
        tests.len()
    ))
}

/// The alerts a rules file defines.
fn alert_names(rules: &Path) -> Result<BTreeSet<String>, String> {
    names_in(rules, ["groups", "rules"], "alert")
}

/// The alerts a rules test file tests.
fn tested_alerts(test: &Path) -> Result<BTreeSet<String>, String> {
    names_in(test, ["tests", "alert_rule_test"], "alertname")
}

/// The `field` of every `outer[].inner[]` item in a YAML file's documents.
fn names_in(
    path: &Path,
    [outer, inner]: [&str; 2],
    field: &str,
) -> Result<BTreeSet<String>, String> {
    let docs = load_yaml(path)?;
    Ok(docs
        .iter()
        .flat_map(|d| seq(d.get(outer)))
        .flat_map(|g| seq(g.get(inner)))
        .filter_map(|r| get_str(r, &[field]).map(str::to_string))
        .collect())
}

/// Kubernetes SD roles Prometheus knows.
const K8S_SD_ROLES: &[&str] = &[
    "node",
    "service",
    "pod",
    "endpoints",
    "endpointslice",
    "ingress",
];
const K8S_SD_FIELDS: &[&str] = &[
    "role",
    "namespaces",
    "selectors",
    "attach_metadata",
    "api_server",
    "kubeconfig_file",
];

/// Structural check of `kubernetes_sd_configs` blocks, which Debian's promtool cannot parse.
fn check_k8s_sd(job: &str, sd: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    for k in mapping_keys(sd) {
        if !K8S_SD_FIELDS.contains(&k.as_str()) {
            errors.push(format!(
                "job {job}: kubernetes_sd_configs: unknown field `{k}`"
            ));
        }
    }
    let role = get_str(sd, &["role"]).unwrap_or("");
    if !K8S_SD_ROLES.contains(&role) {
        errors.push(format!(
            "job {job}: kubernetes_sd_configs role {role:?} is not one of {K8S_SD_ROLES:?}"
        ));
    }
    if let Some(ns) = sd.get("namespaces") {
        for k in mapping_keys(ns) {
            if k != "own_namespace" && k != "names" {
                errors.push(format!("job {job}: namespaces: unknown field `{k}`"));
            }
        }
        if let Some(own) = ns.get("own_namespace") {
            if !own.is_bool() {
                errors.push(format!(
                    "job {job}: namespaces.own_namespace must be a boolean"
                ));
            }
        }
    }
    for s in seq(sd.get("selectors")) {
        let srole = get_str(s, &["role"]).unwrap_or("");
        if !K8S_SD_ROLES.contains(&srole) {
            errors.push(format!("job {job}: selector role {srole:?} is unknown"));
        }
        for k in mapping_keys(s) {
            if !["role", "label", "field"].contains(&k.as_str()) {
                errors.push(format!("job {job}: selector: unknown field `{k}`"));
            }
        }
    }
    errors
}

/// Placeholders the fleet overlay's init container fills in, replaced with sample values so
/// promtool can check the template.
const PROMETHEUS_TEMPLATE_VALUES: &[(&str, &str)] = &[
    ("__SHARD__", "0"),
    (
        "__REMOTE_WRITE_URL__",
        "https://remote-write.invalid/api/v1/push",
    ),
];

/// `promtool check config` on a prometheus.yml: Kubernetes SD checked here and replaced by a
/// static target, `rule_files` pointed at the repository's rules.
pub(super) fn check_prometheus_config(
    root: &Path,
    path: &Path,
    rules_dir: &Path,
) -> Result<String, String> {
    let mut text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    for (k, v) in PROMETHEUS_TEMPLATE_VALUES {
        text = text.replace(k, v);
    }
    let mut cfg: Value =
        serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut errors = Vec::new();
    let mut sd_count = 0;
    if let Some(jobs) = cfg
        .get_mut("scrape_configs")
        .and_then(Value::as_sequence_mut)
    {
        for job in jobs.iter_mut() {
            let name = get_str(job, &["job_name"]).unwrap_or("?").to_string();
            let Some(m) = job.as_mapping_mut() else {
                continue;
            };
            if let Some(sds) = m.remove("kubernetes_sd_configs") {
                for sd in seq(Some(&sds)) {
                    sd_count += 1;
                    errors.extend(check_k8s_sd(&name, sd));
                }
                let mut target = Mapping::new();
                target.insert(
                    "targets".into(),
                    Value::Sequence(vec!["k8s-sd-placeholder:9100".into()]),
                );
                let mut statics = seq(m.get("static_configs")).to_vec();
                statics.push(Value::Mapping(target));
                m.insert("static_configs".into(), Value::Sequence(statics));
            }
        }
    }
    if !errors.is_empty() {
        return Err(format!("{}:\n  {}", path.display(), errors.join("\n  ")));
    }
    if let Some(m) = cfg.as_mapping_mut() {
        let glob = rules_dir.join("*.yaml").display().to_string();
        m.insert("rule_files".into(), Value::Sequence(vec![glob.into()]));
    }
    let tmp = TempDir::try_new("xtask-prometheus-config")?;
    let file = tmp.join("prometheus.yml");
    let body = serde_yaml_ng::to_string(&cfg).map_err(|e| e.to_string())?;
    std::fs::write(&file, body).map_err(|e| format!("writing {}: {e}", file.display()))?;
    promtool(&["check", "config"], &[file]).map_err(|e| {
        format!(
            "{} (kubernetes_sd_configs replaced by a static target): {e}",
            path.display()
        )
    })?;
    Ok(format!(
        "promtool check config {} ({sd_count} kubernetes_sd_configs checked structurally: Debian's promtool lacks Kubernetes SD)",
        rel(root, path)
    ))
}

/// The blackbox modules a prometheus.yml's `/probe` jobs ask the agents for (`params.module`
/// and each static group's `module` label) are defined in the agents' `modules.probe.modules`
/// (`agent.yaml`): the agent answers an unknown module with 400, and the target is never
/// probed. `None` when there is nothing to compare: no `/probe` job, or the agent config
/// leaves the modules to the built-in default or to a `config_file`.
pub(super) fn check_probe_modules(
    root: &Path,
    prometheus_yml: &Path,
    agent_config: &Path,
) -> Result<Option<String>, String> {
    let text = std::fs::read_to_string(prometheus_yml)
        .map_err(|e| format!("reading {}: {e}", prometheus_yml.display()))?;
    let cfg: Value =
        serde_yaml_ng::from_str(&text).map_err(|e| format!("{}: {e}", prometheus_yml.display()))?;
    let agent_text = std::fs::read_to_string(agent_config)
        .map_err(|e| format!("reading {}: {e}", agent_config.display()))?;
    let agent: Value = serde_yaml_ng::from_str(&agent_text)
        .map_err(|e| format!("{}: {e}", agent_config.display()))?;
    let probe = get(&agent, &["modules", "probe"]).unwrap_or(&Value::Null);
    let from_file = get_str(probe, &["config_file"]).is_some_and(|f| !f.is_empty());
    let Some(defined) = probe.get("modules").filter(|_| !from_file) else {
        return Ok(None);
    };
    let defined: BTreeSet<String> = mapping_keys(defined).into_iter().collect();
    let mut wanted = BTreeSet::new();
    let mut problems = Vec::new();
    for job in seq(cfg.get("scrape_configs")) {
        if get_str(job, &["metrics_path"]) != Some("/probe") {
            continue;
        }
        let name = get_str(job, &["job_name"]).unwrap_or("?");
        let mut modules = string_list(get(job, &["params", "module"]));
        modules.extend(
            seq(job.get("static_configs"))
                .iter()
                .filter_map(|g| get_str(g, &["labels", "module"]).map(str::to_string)),
        );
        for m in modules {
            if !defined.contains(&m) {
                problems.push(format!(
                    "{}: job {name} asks for module {m:?}, which is not in modules.probe.modules of {} ({})",
                    rel(root, prometheus_yml),
                    rel(root, agent_config),
                    defined.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            wanted.insert(m);
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("\n  "));
    }
    Ok((!wanted.is_empty()).then(|| {
        format!(
            "{}: the /probe jobs' modules ({}) are in modules.probe.modules of {}",
            rel(root, prometheus_yml),
            wanted.into_iter().collect::<Vec<_>>().join(", "),
            rel(root, agent_config)
        )
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_sd_structure() {
        let good: Value = serde_yaml_ng::from_str(
            "{role: pod, namespaces: {own_namespace: true}, selectors: [{role: pod, label: a=b}]}",
        )
        .expect("parses");
        assert_eq!(check_k8s_sd("j", &good), Vec::<String>::new());
        let bad: Value = serde_yaml_ng::from_str(
            "{role: pods, namespace: {own_namespace: true}, selectors: [{role: pod, labels: a=b}]}",
        )
        .expect("parses");
        assert_eq!(check_k8s_sd("j", &bad).len(), 3);
    }

    #[test]
    fn probe_jobs_ask_for_modules_the_agents_have() {
        let dir = TempDir::new("xtask-probe-modules");
        let prom = dir.join("prometheus.yml");
        let agent = dir.join("agent.yaml");
        let write = |p: &Path, t: &str| std::fs::write(p, t).unwrap();
        write(
            &prom,
            "scrape_configs:
  - job_name: eos-agent
    static_configs: [{targets: [a:9100], labels: {module: not-a-probe-job}}]
  - job_name: eos-probe
    metrics_path: /probe
    params: {module: [http_2xx]}
    static_configs:
      - targets: [x]
      - targets: [y]
        labels: {module: tcp_connect}
",
        );
        write(
            &agent,
            "modules:\n  probe:\n    enabled: true\n    modules: {http_2xx: {prober: http}, tcp_connect: {prober: tcp}}\n",
        );
        let ok = check_probe_modules(dir.path(), &prom, &agent).unwrap();
        assert!(ok.is_some_and(|l| l.contains("(http_2xx, tcp_connect)")));

        write(
            &agent,
            "modules:\n  probe:\n    enabled: true\n    modules: {http_2xx: {prober: http}}\n",
        );
        let err = check_probe_modules(dir.path(), &prom, &agent).unwrap_err();
        assert!(
            err.contains("job eos-probe asks for module \"tcp_connect\""),
            "{err}"
        );

        // The built-in modules, or modules from a blackbox.yml: nothing to compare here.
        write(&agent, "modules:\n  probe: {enabled: true}\n");
        assert_eq!(check_probe_modules(dir.path(), &prom, &agent), Ok(None));
        write(
            &agent,
            "modules:\n  probe: {enabled: true, config_file: /etc/blackbox.yml, modules: {}}\n",
        );
        assert_eq!(check_probe_modules(dir.path(), &prom, &agent), Ok(None));
    }
}
