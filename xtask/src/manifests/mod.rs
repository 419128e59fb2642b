//! `cargo xtask manifests`: offline validation of the deployable stack in `manifests/` and the
//! Grafana dashboards and Prometheus rules in `dashboards/`.
//!
//! What it checks, in order:
//! 1. Every YAML document under `manifests/` and `dashboards/` parses.
//! 2. Every `kustomization.yaml`: known fields only, and each file or directory it names in
//!    `resources`, `components`, `patches` and `configMapGenerator` exists; each resource
//!    document has `apiVersion`, `kind` and `metadata.name`; every dashboard JSON and rules file
//!    in `dashboards/` is listed in that directory's generator.
//! 3. The agent: the DaemonSet's args are flags `eos-agent` accepts, its `--path.*` flags and
//!    `--config` point at the right mounts, the config directory is not a `subPath` mount (that
//!    would break live reload), `agent.yaml` has the top-level shape of DESIGN.md, and
//!    `eos-agent check-config` accepts it with the DaemonSet's flags. The flags, config keys and
//!    module names are the built agent's own (`eos-agent describe`, via `eos-testkit`), so
//!    without a built agent (`$EOS_AGENT_BIN` or `target/`) this step is skipped.
//! 4. Prometheus: `promtool check rules` and `promtool test rules` on `dashboards/rules`, every
//!    alert covered by a test, and `promtool check config` on each `prometheus.yml`. Debian's
//!    promtool is built without Kubernetes service discovery, so `kubernetes_sd_configs` blocks
//!    are checked here and replaced by a static target for promtool. The blackbox modules its
//!    `/probe` jobs ask for are defined in the agent ConfigMap's `modules.probe.modules`.
//! 5. Alertmanager: `amtool check-config` on each `alertmanager.yml`, when amtool is installed.
//! 6. Dashboards: each panel's PromQL (with Grafana's variables substituted) parses, checked
//!    by promtool as recording rules, and names only metrics in `dashboards/metrics-allowlist.txt`
//!    (as do the alert rules). Loki panels use a `loki` datasource variable and select streams
//!    only by the logs module's labels. With a built agent, each name belongs to the part of
//!    the agent whose `metric_prefixes` match it longest (`describe`): `eos_agent_*` names in
//!    the allowlist must be written by that part's source, and names in use must appear in its
//!    tree (a histogram's `_bucket`, `_sum` and `_count` by the family's name).
//! 7. When `kubectl` (kustomize v4+) or `kustomize` is installed: every overlay and the base
//!    build, and the rendered objects are cross-checked (namespaces, ConfigMap volumes, service
//!    accounts, Service selectors, the agent DaemonSet again).
//!
//! 8. Live (skipped with `--no-live`): the built agent and node_exporter scraped by a real
//!    Prometheus; the dashboards' queries must return data and the rules evaluate (`live.rs`).
//!
//! One file per concern: `yaml.rs` (files and YAML access), `kustomize.rs` (2, 7),
//! `agent.rs` (3), `prometheus.rs` (4), `alertmanager.rs` (5), `dashboards.rs` and `promql.rs`
//! (6), `rendered.rs` (checks on kustomize output, 7), `live.rs` (8).
//!
//! The same validation runs as unit tests (`manifests::tests::repository_manifests_validate`
//! and `manifests::tests::live_dashboards_and_rules`), so `cargo test --workspace` covers it.

use agent::{
    agent_check_config, agent_container, built_agent, check_agent_config, check_agent_daemonset,
    is_agent_daemonset,
};
use alertmanager::tool_ok;
use dashboards::check_dashboards_and_names;
use kustomize::{check_generator_lists_everything, check_kustomization, kustomize_builds};
use prometheus::{check_probe_modules, check_prometheus_config, check_rules};
use serde_yaml_ng::Value;
use std::path::{Path, PathBuf};
use yaml::{has_ext, load_yaml, rel, string_list, walk};

mod agent;
mod alertmanager;
mod dashboards;
mod kustomize;
mod live;
mod prometheus;
mod promql;
mod rendered;
mod yaml;

pub fn run(args: &[String]) -> Result<(), String> {
    let with_live = !args.iter().any(|a| a == "--no-live");
    if let Some(bad) = args.iter().find(|a| a.as_str() != "--no-live") {
        return Err(format!(
            "manifests: unknown argument {bad:?} (known: --no-live)"
        ));
    }
    let root = repo_root();
    let mut report = validate(&root)?;
    if with_live {
        live_into(&root, &mut report)?;
    }
    print!("{report}");
    Ok(())
}

/// Runs the live check (see `live.rs`) and adds its lines to `report`.
fn live_into(root: &Path, report: &mut Report) -> Result<(), String> {
    match live::run(root) {
        Ok(lines) => lines.into_iter().for_each(|l| report.ok(l)),
        Err(Skip(why)) => report.skipped(why),
        Err(Fail(e)) => return Err(format!("live dashboards and rules:\n  {e}")),
    }
    Ok(())
}

/// The repository root: the parent of this crate's directory.
fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(Path::to_path_buf).unwrap_or(here)
}

/// What was checked (and what could not be), for the person running the task.
#[derive(Default)]
struct Report {
    lines: Vec<String>,
}

impl Report {
    fn ok(&mut self, what: impl Into<String>) {
        self.lines.push(format!("ok       {}", what.into()));
    }
    fn skipped(&mut self, what: impl Into<String>) {
        self.lines.push(format!("skipped  {}", what.into()));
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for l in &self.lines {
            writeln!(f, "xtask manifests: {l}")?;
        }
        Ok(())
    }
}

/// Runs every check against the repository at `root`. All problems are collected and returned
/// together, one per line.
fn validate(root: &Path) -> Result<Report, String> {
    let mut report = Report::default();
    let mut errors = Vec::new();
    let manifests = root.join("manifests");
    let dashboards = root.join("dashboards");

    // 1. YAML syntax everywhere.
    let mut yaml_files = Vec::new();
    for dir in [&manifests, &dashboards] {
        walk(dir, &mut yaml_files).map_err(|e| format!("listing {}: {e}", dir.display()))?;
    }
    yaml_files.retain(|p| has_ext(p, &["yaml", "yml"]));
    yaml_files.sort();
    let mut docs_total = 0;
    for f in &yaml_files {
        match load_yaml(f) {
            Ok(docs) => docs_total += docs.len(),
            Err(e) => errors.push(e),
        }
    }
    report.ok(format!(
        "{} YAML files parse ({docs_total} documents)",
        yaml_files.len()
    ));

    // 2. Kustomizations and the resources they name.
    let kustomizations: Vec<&PathBuf> = yaml_files
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "kustomization.yaml"))
        .collect();
    let mut resource_docs = Vec::new();
    for k in &kustomizations {
        check_kustomization(k, &mut resource_docs, &mut errors);
    }
    check_generator_lists_everything(&dashboards, &mut errors);
    report.ok(format!(
        "{} kustomizations: referenced files exist, {} resource documents have apiVersion/kind/metadata.name",
        kustomizations.len(),
        resource_docs.len()
    ));

    // 3. The agent's DaemonSet and config, against what the built agent says it takes.
    let built = built_agent();
    let agent = built.as_ref().ok().map(|(_, d)| d);
    let without_agent = match &built {
        Ok(_) => None,
        Err(Skip(why)) => Some(why.clone()),
        Err(Fail(e)) => {
            errors.push(e.clone());
            Some(e.clone())
        }
    };
    let daemonsets: Vec<&(PathBuf, Value)> = resource_docs
        .iter()
        .filter(|(_, d)| is_agent_daemonset(d))
        .collect();
    if daemonsets.is_empty() {
        errors.push("no DaemonSet named eos-agent among the kustomize resources".into());
    }
    let agent_config = manifests.join("base/agent/agent.yaml");
    let ds_args = daemonsets
        .first()
        .and_then(|(_, d)| agent_container(d))
        .map(|c| string_list(c.get("args")))
        .unwrap_or_default();
    match &built {
        Ok((bin, agent)) => {
            for (path, ds) in &daemonsets {
                for e in check_agent_daemonset(ds, agent) {
                    errors.push(format!("{}: {e}", path.display()));
                }
            }
            match std::fs::read_to_string(&agent_config) {
                Ok(text) => {
                    for e in check_agent_config(&text, agent) {
                        errors.push(format!("{}: {e}", agent_config.display()));
                    }
                }
                Err(e) => errors.push(format!("reading {}: {e}", agent_config.display())),
            }
            report.ok(format!(
                "agent DaemonSet: flags, mounts, config shape (flags, config keys and modules from {} describe)",
                rel(root, bin)
            ));
            match agent_check_config(root, bin, agent, &agent_config, &ds_args) {
                Ok(line) => report.ok(line),
                Err(e) => errors.push(e),
            }
        }
        Err(_) => report.skipped(format!(
            "agent DaemonSet, agent.yaml and eos-agent check-config: {}",
            without_agent.as_deref().unwrap_or_default()
        )),
    }

    // 4. Prometheus rules and config.
    let rules_dir = dashboards.join("rules");
    match check_rules(&rules_dir) {
        Ok(line) => report.ok(line),
        Err(e) => errors.push(e),
    }
    for f in yaml_files
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "prometheus.yml"))
    {
        match check_prometheus_config(root, f, &rules_dir) {
            Ok(line) => report.ok(line),
            Err(e) => errors.push(e),
        }
        match check_probe_modules(root, f, &agent_config) {
            Ok(Some(line)) => report.ok(line),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }

    // 5. Alertmanager.
    for f in yaml_files
        .iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "alertmanager.yml"))
    {
        match tool_ok("amtool", &["check-config"], f) {
            Ok(()) => report.ok(format!("amtool check-config {}", rel(root, f))),
            Err(Skip(why)) => report.skipped(format!("{}: {why}", rel(root, f))),
            Err(Fail(e)) => errors.push(e),
        }
    }

    // 6. Dashboards and metric names.
    match check_dashboards_and_names(root, &dashboards, agent) {
        Ok(lines) => lines.into_iter().for_each(|l| report.ok(l)),
        Err(mut e) => errors.append(&mut e),
    }
    if let Some(why) = &without_agent {
        report.skipped(format!("metric names against their owners' source: {why}"));
    }

    // 7. kustomize build.
    match kustomize_builds(root, &manifests, agent) {
        Ok(lines) => lines.into_iter().for_each(|l| report.ok(l)),
        Err(Skip(why)) => report.skipped(why),
        Err(Fail(e)) => errors.push(e),
    }

    if errors.is_empty() {
        Ok(report)
    } else {
        Err(format!(
            "{} problem(s):\n  {}",
            errors.len(),
            errors.join("\n  ")
        ))
    }
}

/// Why an optional check did not pass: the tool is missing (`Skip`) or it found a problem.
enum Outcome {
    Skip(String),
    Fail(String),
}
use Outcome::{Fail, Skip};

#[cfg(test)]
mod tests {
    use super::*;

    /// The repository's own manifests, dashboards and rules pass every check.
    #[test]
    fn repository_manifests_validate() {
        match validate(&repo_root()) {
            Ok(report) => print!("{report}"),
            Err(e) => panic!("{e}"),
        }
    }

    /// The dashboards and rules against a live agent, node_exporter and Prometheus.
    #[test]
    fn live_dashboards_and_rules() {
        let mut report = Report::default();
        match live_into(&repo_root(), &mut report) {
            Ok(()) => print!("{report}"),
            Err(e) => panic!("{e}"),
        }
    }
}
