//! The dashboards and alert rules against live data: the built agent (node module) and, when
//! installed, Debian's node_exporter, both scraped every second by a real Prometheus that also
//! loads `dashboards/rules`.
//!
//! - `eos / Node`: every variable and panel query runs once with `job="eos-agent"` and once with
//!   `job="node"` (node_exporter). A query that returns data for node_exporter must return data
//!   for the agent: that is the drop-in promise, seen through the dashboard. A query empty on
//!   both sides fails too, unless this host has no series for a metric it uses (e.g. no
//!   conntrack), which the report lists.
//! - `eos / Agent`: every query must return data, except the panels in [`MAY_BE_EMPTY`], which
//!   list problems and are empty on a healthy agent.
//! - Rules: every rule evaluates without error.
//!
//! `eos / Containers` and `eos / Log shipping` are left out: their series need pods that a
//! kubelet names (and, for the logs, a Loki), and there is none here. Their queries are
//! covered by the offline checks (syntax, metric names, Loki stream labels).

use super::agent::built_agent;
use super::dashboards::{collect_panels, label_values_selector, substitute_variables};
use super::promql::metric_names;
use super::yaml::rel;
use super::{Fail, Outcome, Skip};
use crate::bench::Side;
use eos_testkit::agent::modules_section;
use eos_testkit::prometheus::PROMETHEUS;
use eos_testkit::{free_port, Prometheus, TempDir};
use std::path::Path;
use std::time::{Duration, Instant};

/// Panels (dashboard uid, title) that list problems, so they are empty when all is well.
const MAY_BE_EMPTY: &[(&str, &str)] = &[("eos-agent", "Failing node collectors")];

/// The node name the agent and node_exporter are labelled with.
const INSTANCE: &str = "testnode";

/// What Grafana's `$__rate_interval` becomes with a 1 s scrape interval.
const RATE_INTERVAL: &str = "10s";

/// Samples of `up` to wait for before querying, so every `rate()` has points to work with.
const WARM_SAMPLES: u32 = 12;

/// Runs the live check; `Skip` when the agent or Prometheus is not available here.
pub(super) fn run(root: &Path) -> Result<Vec<String>, Outcome> {
    let (agent, description) = match built_agent() {
        Ok(built) => built,
        Err(Skip(why)) => return Err(Skip(format!("live dashboards: {why}"))),
        Err(fail) => return Err(fail),
    };
    if !Path::new(PROMETHEUS).exists() {
        return Err(Skip(format!(
            "live dashboards: {PROMETHEUS} is not installed (Debian package prometheus)"
        )));
    }
    let node_exporter = ["prometheus-node-exporter", "node_exporter"]
        .into_iter()
        .find(|p| installed(p));
    let dir = TempDir::try_new("xtask-manifests-live").map_err(Fail)?;
    let (agent_port, ne_port) = (free_port().map_err(Fail)?, free_port().map_err(Fail)?);

    // The agent with only the node module.
    let config = format!(
        "listen_address: 127.0.0.1:{agent_port}\nnode_name: {INSTANCE}\nstate_dir: {}\n{}",
        dir.join("state").display(),
        modules_section(&description.module_names(), "node", "{enabled: true}")
    );
    let agent_cfg = dir.path().join("agent.yaml");
    write(&agent_cfg, &config)?;
    let _agent = Side::new("eos-agent", &agent)
        .args(["--config".to_string(), agent_cfg.display().to_string()])
        .listen(agent_port)
        .start(&dir)
        .map_err(Fail)?;
    let _node_exporter = match node_exporter {
        Some(p) => Some(
            Side::new("node_exporter", p)
                .args([format!("--web.listen-address=127.0.0.1:{ne_port}")])
                .listen(ne_port)
                .start(&dir)
                .map_err(Fail)?,
        ),
        None => None,
    };

    let rules = root.join("dashboards/rules").join("*.yaml");
    let scrape_job = |job: &str, port: u16| {
        format!(
            "  - job_name: {job}
    static_configs: [{{targets: [\"127.0.0.1:{port}\"]}}]
    relabel_configs: [{{target_label: instance, replacement: {INSTANCE}}}]
"
        )
    };
    let mut prom_cfg = format!(
        "global: {{scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s}}
rule_files: [{:?}]
scrape_configs:
",
        rules.display().to_string()
    );
    prom_cfg.push_str(&scrape_job("eos-agent", agent_port));
    if node_exporter.is_some() {
        prom_cfg.push_str(&scrape_job("node", ne_port));
    }
    let prom = Prometheus::with_config(&prom_cfg).map_err(Fail)?;
    let jobs: Vec<&str> = if node_exporter.is_some() {
        vec!["eos-agent", "node"]
    } else {
        vec!["eos-agent"]
    };
    wait_for_samples(&prom, &jobs)?;

    let mut lines = Vec::new();
    let mut errors = Vec::new();
    // eos / Node, the agent against node_exporter.
    let node = load(root, "eos-node.json")?;
    let mut compared = 0;
    let mut non_empty = 0;
    let mut host_lacks = Vec::new();
    for (origin, expr) in queries(&node) {
        let counts: Vec<usize> = jobs
            .iter()
            .map(|job| count(&prom, &fill(&expr, job)))
            .collect::<Result<_, _>>()?;
        let ours = counts.first().copied().unwrap_or(0);
        let theirs = counts.get(1).copied();
        compared += 1;
        non_empty += usize::from(ours > 0);
        match theirs {
            Some(t) if t > 0 && ours == 0 => errors.push(format!(
                "eos-node.json {origin}: no data from the agent, {t} series from node_exporter"
            )),
            _ if ours == 0 => {
                // Empty on both sides: the query is wrong, unless this host lacks a metric it
                // needs (no conntrack module, no disk the device filter knows).
                let reference = jobs.last().copied().unwrap_or("eos-agent");
                let mut missing = Vec::new();
                for name in metric_names(&expr) {
                    if count(&prom, &format!("{name}{{job=\"{reference}\"}}"))? == 0 {
                        missing.push(name);
                    }
                }
                if missing.is_empty() {
                    errors.push(format!(
                        "eos-node.json {origin}: no data, although every metric it uses has series"
                    ));
                } else {
                    host_lacks.push(format!("{origin} ({})", missing.join(", ")));
                }
            }
            _ => {}
        }
    }
    if !host_lacks.is_empty() {
        lines.push(format!(
            "live eos-node.json: no data on this host for lack of metrics: {}",
            host_lacks.join("; ")
        ));
    }
    lines.push(match node_exporter {
        Some(ne) => format!(
            "live eos-node.json: {non_empty}/{compared} queries return agent data, none empty where {ne} has data"
        ),
        None => format!(
            "live eos-node.json: {non_empty}/{compared} queries return agent data (node_exporter not installed: no comparison)"
        ),
    });
    // eos / Agent.
    let agent_dash = load(root, "eos-agent.json")?;
    let uid = agent_dash.get("uid").and_then(|u| u.as_str()).unwrap_or("");
    let mut total = 0;
    for (origin, expr) in queries(&agent_dash) {
        total += 1;
        let n = count(&prom, &fill(&expr, "eos-agent"))?;
        let allowed = MAY_BE_EMPTY
            .iter()
            .any(|(u, title)| *u == uid && origin.contains(&format!("{title:?}")));
        if n == 0 && !allowed {
            errors.push(format!("eos-agent.json {origin}: no data"));
        }
    }
    lines.push(format!(
        "live eos-agent.json: {total} queries return data ({} may be empty when healthy)",
        MAY_BE_EMPTY.len()
    ));
    // Rules.
    let (rules_ok, rules_total, rule_errors) = rule_health(&prom)?;
    errors.extend(rule_errors);
    lines.push(format!(
        "live rules: {rules_ok}/{rules_total} rules from {} evaluate without error",
        rel(root, &root.join("dashboards/rules"))
    ));
    if errors.is_empty() {
        Ok(lines)
    } else {
        Err(Fail(errors.join("\n  ")))
    }
}

fn installed(program: &str) -> bool {
    std::process::Command::new(program)
        .arg("--version")
        .output()
        .is_ok()
}

fn write(path: &Path, text: &str) -> Result<(), Outcome> {
    std::fs::write(path, text).map_err(|e| Fail(format!("writing {}: {e}", path.display())))
}

fn load(root: &Path, name: &str) -> Result<serde_json::Value, Outcome> {
    let path = root.join("dashboards").join(name);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Fail(format!("reading {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| Fail(format!("{}: {e}", path.display())))
}

/// Every variable selector and panel query of a dashboard, with where it came from.
fn queries(d: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let empty = Vec::new();
    let vars = d
        .pointer("/templating/list")
        .and_then(|v| v.as_array())
        .unwrap_or(&empty);
    for v in vars {
        let q = v
            .pointer("/query/query")
            .and_then(|q| q.as_str())
            .unwrap_or("");
        if let Some(sel) = label_values_selector(q) {
            let name = v.get("name").and_then(|n| n.as_str()).unwrap_or("?");
            out.push((format!("variable {name}"), sel.to_string()));
        }
    }
    let mut panels = Vec::new();
    collect_panels(d.get("panels"), &mut panels);
    for p in panels {
        let title = p.get("title").and_then(|t| t.as_str()).unwrap_or("?");
        let id = p.get("id").and_then(|i| i.as_i64()).unwrap_or(0);
        for t in p
            .get("targets")
            .and_then(|t| t.as_array())
            .into_iter()
            .flatten()
        {
            if let Some(e) = t.get("expr").and_then(|e| e.as_str()) {
                let r = t.get("refId").and_then(|r| r.as_str()).unwrap_or("?");
                out.push((format!("panel {id} {title:?} target {r}"), e.to_string()));
            }
        }
    }
    out
}

/// A query with the dashboard's variables set for `job` and [`INSTANCE`].
fn fill(expr: &str, job: &str) -> String {
    substitute_variables(expr, RATE_INTERVAL, &|var| match var {
        "job" => job.to_string(),
        "instance" => INSTANCE.to_string(),
        _ => ".+".to_string(),
    })
}

/// How many series an instant query returns.
fn count(prom: &Prometheus, promql: &str) -> Result<usize, Outcome> {
    prom.try_query(promql).map(|r| r.len()).map_err(Fail)
}

/// Waits (up to 60 s) until every job has [`WARM_SAMPLES`] samples of `up == 1`.
fn wait_for_samples(prom: &Prometheus, jobs: &[&str]) -> Result<(), Outcome> {
    let end = Instant::now() + Duration::from_secs(60);
    for job in jobs {
        let q = format!("sum_over_time(up{{job=\"{job}\"}}[1m]) >= {WARM_SAMPLES}");
        while count(prom, &q)? == 0 {
            if Instant::now() >= end {
                return Err(Fail(format!(
                    "live dashboards: job {job} did not reach {WARM_SAMPLES} successful scrapes in 60 s"
                )));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    Ok(())
}

/// (healthy rules, all rules, one line per unhealthy rule).
fn rule_health(prom: &Prometheus) -> Result<(usize, usize, Vec<String>), Outcome> {
    let v = prom.api("/api/v1/rules").map_err(Fail)?;
    let mut ok = 0;
    let mut total = 0;
    let mut errors = Vec::new();
    let empty = Vec::new();
    let groups = v
        .pointer("/data/groups")
        .and_then(|g| g.as_array())
        .unwrap_or(&empty);
    for g in groups {
        for r in g
            .get("rules")
            .and_then(|r| r.as_array())
            .into_iter()
            .flatten()
        {
            total += 1;
            let health = r.get("health").and_then(|h| h.as_str()).unwrap_or("");
            if health == "ok" {
                ok += 1;
            } else {
                errors.push(format!(
                    "rule {}: health {health:?}: {}",
                    r.get("name").and_then(|n| n.as_str()).unwrap_or("?"),
                    r.get("lastError").and_then(|e| e.as_str()).unwrap_or("")
                ));
            }
        }
    }
    if total == 0 {
        errors.push("Prometheus loaded no rules".into());
    }
    Ok((ok, total, errors))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_filled_for_a_job() {
        assert_eq!(
            fill(
                r#"rate(x{job="$job", instance="$instance", pod=~"${pod}"}[$__rate_interval])"#,
                "node"
            ),
            r#"rate(x{job="node", instance="testnode", pod=~".+"}[10s])"#
        );
    }
}
