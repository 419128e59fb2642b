//! Grafana dashboards: structure, the `${datasource}` variable everywhere, every query parses
//! (through promtool, with Grafana's variables substituted), every metric name used by a
//! dashboard or rule is in `dashboards/metrics-allowlist.txt` and exported by the crate that
//! owns it. Loki panels (pod logs) go through a `loki` datasource variable and select streams
//! only by the labels the logs module sets.

use super::prometheus::promtool;
use super::promql::metric_names;
use super::yaml::{get_str, has_ext, load_yaml, rel, seq, walk};
use eos_testkit::{Description, TempDir};
use serde_yaml_ng::{Mapping, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// One PromQL expression from a dashboard or rules file, and where it came from.
struct Expr {
    origin: String,
    promql: String,
}

/// Every dashboard and the metric names of the dashboards and rules; with a built agent, also
/// [`check_owners`].
pub(super) fn check_dashboards_and_names(
    root: &Path,
    dashboards: &Path,
    agent: Option<&Description>,
) -> Result<Vec<String>, Vec<String>> {
    let mut errors = Vec::new();
    let mut exprs = Vec::new();
    let mut files = Vec::new();
    if let Err(e) = walk(dashboards, &mut files) {
        return Err(vec![format!("listing {}: {e}", dashboards.display())]);
    }
    files.retain(|p| has_ext(p, &["json"]));
    files.sort();
    let mut uids = BTreeMap::new();
    let mut logql = 0;
    for f in &files {
        let name = rel(root, f);
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                errors.push(format!("reading {name}: {e}"));
                continue;
            }
        };
        let d: serde_json::Value = match serde_json::from_str(&text) {
            Ok(d) => d,
            Err(e) => {
                errors.push(format!("{name}: {e}"));
                continue;
            }
        };
        if let Some(uid) = d.get("uid").and_then(|u| u.as_str()) {
            if let Some(other) = uids.insert(uid.to_string(), name.clone()) {
                errors.push(format!("{name}: uid {uid} is also used by {other}"));
            }
        }
        errors.extend(check_dashboard(&name, &d, &mut exprs, &mut logql));
    }
    let mut rule_files = Vec::new();
    let _ = walk(&dashboards.join("rules"), &mut rule_files);
    rule_files.retain(|p| has_ext(p, &["yaml"]) && !p.starts_with(dashboards.join("rules/tests")));
    let mut rule_exprs = Vec::new();
    for r in &rule_files {
        match load_yaml(r) {
            Ok(docs) => {
                for rule in docs
                    .iter()
                    .flat_map(|d| seq(d.get("groups")))
                    .flat_map(|g| seq(g.get("rules")))
                {
                    let what = get_str(rule, &["alert"])
                        .or(get_str(rule, &["record"]))
                        .unwrap_or("?");
                    if let Some(e) = get_str(rule, &["expr"]) {
                        rule_exprs.push(Expr {
                            origin: format!("{} {what}", rel(root, r)),
                            promql: e.to_string(),
                        });
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    // PromQL syntax of the dashboards' queries, through promtool (the rules were checked by
    // `promtool check rules` already).
    match promql_parses(&exprs) {
        Ok(()) => {}
        Err(e) => errors.push(e),
    }
    // Metric names against the allowlist.
    let allow_path = dashboards.join("metrics-allowlist.txt");
    let allow = match std::fs::read_to_string(&allow_path) {
        Ok(t) => parse_allowlist(&t),
        Err(e) => {
            errors.push(format!("reading {}: {e}", allow_path.display()));
            BTreeSet::new()
        }
    };
    let mut used = BTreeSet::new();
    for e in exprs.iter().chain(&rule_exprs) {
        for name in metric_names(&e.promql) {
            if !allow.contains(&name) {
                errors.push(format!(
                    "{}: metric {name} is not in {} (a name eos, kube-state-metrics or Prometheus exports)",
                    e.origin,
                    rel(root, &allow_path)
                ));
            }
            used.insert(name);
        }
    }
    let mut lines = vec![
        format!(
            "{} dashboards: {} queries parse (promtool), datasource is ${{datasource}}; {logql} Loki queries select by the logs module's stream labels",
            files.len(),
            exprs.len()
        ),
        format!(
            "{} metric names used by dashboards and rules are all in the allowlist",
            used.len()
        ),
    ];
    if let Some(agent) = agent {
        let allowlist = rel(root, &allow_path);
        match check_owners(root, agent, &allowlist, &allow, &used) {
            Ok(line) => lines.push(line),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(lines)
    } else {
        Err(errors)
    }
}

/// Metric names against the part of the agent that owns them (the longest matching prefix of
/// `eos-agent describe`'s `metric_prefixes`): each `eos_agent_*` name in the allowlist must be
/// written (as a string) by its owner's source, and each name a dashboard or rule uses must
/// appear in its owner's tree (source, fixtures or golden output). Names no part owns
/// (kube-state-metrics, Prometheus) are not checked here.
fn check_owners(
    root: &Path,
    agent: &Description,
    allowlist: &str,
    allow: &BTreeSet<String>,
    used: &BTreeSet<String>,
) -> Result<String, Vec<String>> {
    let mut errors = Vec::new();
    // Each owner's tree, read once.
    let mut sources: BTreeMap<&str, String> = BTreeMap::new();
    for o in allow.iter().chain(used).filter_map(|n| agent.owner(n)) {
        sources
            .entry(o.source)
            .or_insert_with(|| read_sources(&root.join(o.source)));
    }
    for name in allow.iter().filter(|n| n.starts_with("eos_agent_")) {
        match agent.owner(name) {
            Some(o) if sources[o.source].contains(&format!("\"{name}\"")) => {}
            Some(o) => errors.push(format!(
                "{allowlist}: {name} does not appear in {} (renamed?)",
                o.source
            )),
            None => errors.push(format!(
                "{allowlist}: {name}: no part of the agent has a metric prefix for it (eos-agent describe)"
            )),
        }
    }
    let mut implemented = 0;
    for name in used {
        let Some(o) = agent.owner(name) else {
            continue;
        };
        if !root.join(o.source).is_dir() {
            continue;
        }
        if contains_word(&sources[o.source], name)
            || histogram_family(name).is_some_and(|f| contains_word(&sources[o.source], f))
        {
            implemented += 1;
        } else {
            errors.push(format!(
                "{name} is used by a dashboard or rule but appears nowhere in {} (not exported yet, or renamed?)",
                o.source
            ));
        }
    }
    if errors.is_empty() {
        Ok(format!(
            "{implemented} metric names used by dashboards and rules found in the source of the part that owns them (owners from eos-agent describe)"
        ))
    } else {
        Err(errors)
    }
}

/// The family a histogram's or summary's series belongs to (`x_bucket`, `x_sum`, `x_count`
/// are written by the encoder from `x`).
fn histogram_family(name: &str) -> Option<&str> {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
}

/// The text of a tree's source, fixture and golden files.
fn read_sources(dir: &Path) -> String {
    let mut files = Vec::new();
    let _ = walk(dir, &mut files);
    files
        .iter()
        .filter(|p| has_ext(p, &["rs", "yaml", "prom", "golden", "txt"]))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `word` occurs in `text` not as part of a longer metric name.
fn contains_word(text: &str, word: &str) -> bool {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(is_name) && !after.is_some_and(is_name)
    })
}

/// Names from the allowlist: one per line, `#` starts a comment.
fn parse_allowlist(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The stream labels the logs module puts on what it pushes (DESIGN.md, Promtail's), plus the
/// optional `level`; a Loki query selecting by anything else finds nothing from eos.
const LOKI_STREAM_LABELS: &[&str] = &[
    "namespace",
    "pod",
    "container",
    "node_name",
    "stream",
    "job",
    "level",
];

/// Structure of one dashboard; its PromQL is appended to `exprs`, its LogQL queries counted in
/// `logql`.
fn check_dashboard(
    name: &str,
    d: &serde_json::Value,
    exprs: &mut Vec<Expr>,
    logql: &mut usize,
) -> Vec<String> {
    let mut errors = Vec::new();
    for key in ["uid", "title"] {
        if d.get(key)
            .and_then(|v| v.as_str())
            .is_none_or(str::is_empty)
        {
            errors.push(format!("{name}: missing {key}"));
        }
    }
    let schema = d.get("schemaVersion").and_then(|v| v.as_i64()).unwrap_or(0);
    if !(36..=41).contains(&schema) {
        errors.push(format!("{name}: schemaVersion {schema}, expected 36..=41"));
    }
    let empty = Vec::new();
    let vars = d
        .pointer("/templating/list")
        .and_then(|v| v.as_array())
        .unwrap_or(&empty);
    if !vars.iter().any(|v| {
        v.get("name").and_then(|n| n.as_str()) == Some("datasource")
            && v.get("type").and_then(|n| n.as_str()) == Some("datasource")
            && v.get("query").and_then(|n| n.as_str()) == Some("prometheus")
    }) {
        errors.push(format!(
            "{name}: no `datasource` variable of type datasource (prometheus)"
        ));
    }
    for v in vars
        .iter()
        .filter(|v| v.get("type").and_then(|t| t.as_str()) == Some("query"))
    {
        let vname = v.get("name").and_then(|n| n.as_str()).unwrap_or("?");
        check_datasource(
            &format!("{name} variable {vname}"),
            v.get("datasource"),
            &mut errors,
        );
        let q = v
            .pointer("/query/query")
            .or(v.get("query"))
            .and_then(|q| q.as_str())
            .unwrap_or("");
        match label_values_selector(q) {
            Some(sel) => exprs.push(Expr {
                origin: format!("{name} variable {vname}"),
                promql: grafana_to_promql(sel),
            }),
            None => errors.push(format!(
                "{name} variable {vname}: query {q:?} is not label_values(<selector>, <label>)"
            )),
        }
    }
    // `${name}` of each datasource variable for Loki.
    let loki_vars: Vec<String> = vars
        .iter()
        .filter(|v| {
            v.get("type").and_then(|t| t.as_str()) == Some("datasource")
                && v.get("query").and_then(|q| q.as_str()) == Some("loki")
        })
        .filter_map(|v| v.get("name").and_then(|n| n.as_str()))
        .map(|n| format!("${{{n}}}"))
        .collect();
    let mut panels = Vec::new();
    collect_panels(d.get("panels"), &mut panels);
    if panels.is_empty() {
        errors.push(format!("{name}: no panels"));
    }
    let mut ids = BTreeSet::new();
    for p in panels {
        let title = p.get("title").and_then(|t| t.as_str()).unwrap_or("?");
        let id = p.get("id").and_then(|i| i.as_i64());
        let Some(id) = id else {
            errors.push(format!("{name} panel {title:?}: no id"));
            continue;
        };
        if !ids.insert(id) {
            errors.push(format!("{name}: panel id {id} used twice"));
        }
        if p.get("type").and_then(|t| t.as_str()) == Some("row") {
            continue;
        }
        let origin = format!("{name} panel {id} {title:?}");
        let targets = p.get("targets").and_then(|t| t.as_array());
        let Some(targets) = targets.filter(|t| !t.is_empty()) else {
            errors.push(format!("{origin}: no targets"));
            continue;
        };
        if p.pointer("/datasource/type").and_then(|t| t.as_str()) == Some("loki") {
            *logql += targets.len();
            errors.extend(check_loki_panel(&origin, p, targets, &loki_vars));
            continue;
        }
        check_datasource(&origin, p.get("datasource"), &mut errors);
        for t in targets {
            let r = t.get("refId").and_then(|r| r.as_str()).unwrap_or("?");
            check_datasource(
                &format!("{origin} target {r}"),
                t.get("datasource"),
                &mut errors,
            );
            match t.get("expr").and_then(|e| e.as_str()) {
                Some(e) if !e.trim().is_empty() => exprs.push(Expr {
                    origin: format!("{origin} target {r}"),
                    promql: grafana_to_promql(e),
                }),
                _ => errors.push(format!("{origin} target {r}: no expr")),
            }
        }
    }
    errors
}

/// A Loki panel: its datasource (and its targets') is one of the dashboard's Loki datasource
/// variables, and each LogQL query has a stream selector that names only
/// [`LOKI_STREAM_LABELS`].
fn check_loki_panel(
    origin: &str,
    p: &serde_json::Value,
    targets: &[serde_json::Value],
    loki_vars: &[String],
) -> Vec<String> {
    let mut errors = Vec::new();
    let uid_ok = |ds: Option<&serde_json::Value>| {
        ds.and_then(|d| d.get("uid"))
            .and_then(|u| u.as_str())
            .is_some_and(|u| loki_vars.iter().any(|v| v == u))
    };
    if !uid_ok(p.get("datasource")) {
        errors.push(format!(
            "{origin}: a Loki panel's datasource uid must be a datasource variable of type loki (have: {loki_vars:?})"
        ));
    }
    for t in targets {
        let r = t.get("refId").and_then(|r| r.as_str()).unwrap_or("?");
        if !uid_ok(t.get("datasource")) {
            errors.push(format!(
                "{origin} target {r}: datasource uid must be the panel's Loki datasource variable"
            ));
        }
        let e = t.get("expr").and_then(|e| e.as_str()).unwrap_or("");
        match logql_selector_labels(e) {
            None => errors.push(format!(
                "{origin} target {r}: no LogQL stream selector {{...}} in {e:?}"
            )),
            Some(labels) => {
                for l in labels
                    .iter()
                    .filter(|l| !LOKI_STREAM_LABELS.contains(&l.as_str()))
                {
                    errors.push(format!(
                        "{origin} target {r}: stream label {l:?} is not one the logs module sets ({LOKI_STREAM_LABELS:?})"
                    ));
                }
            }
        }
    }
    errors
}

/// The label names of the first stream selector (`{name op "value", ...}`) in a LogQL query;
/// `None` without one.
fn logql_selector_labels(e: &str) -> Option<Vec<String>> {
    let start = e.find('{')?;
    let mut labels = Vec::new();
    let mut name = String::new();
    let mut in_value = false;
    let mut chars = e[start + 1..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '`' => {
                let quote = c;
                while let Some(c) = chars.next() {
                    if c == '\\' && quote == '"' {
                        chars.next();
                    } else if c == quote {
                        break;
                    }
                }
            }
            '}' => {
                if !in_value && !name.trim().is_empty() {
                    return None;
                }
                return (!labels.is_empty()).then_some(labels);
            }
            ',' => in_value = false,
            '=' | '!' | '~' if !in_value => {
                labels.push(name.trim().to_string());
                name.clear();
                in_value = true;
            }
            _ if !in_value => name.push(c),
            _ => {}
        }
    }
    None
}

fn check_datasource(origin: &str, ds: Option<&serde_json::Value>, errors: &mut Vec<String>) {
    let uid = ds.and_then(|d| d.get("uid")).and_then(|u| u.as_str());
    if uid != Some("${datasource}") {
        errors.push(format!(
            "{origin}: datasource uid must be ${{datasource}}, is {uid:?}"
        ));
    }
}

/// Panels, including those nested in collapsed rows.
pub(super) fn collect_panels<'a>(
    v: Option<&'a serde_json::Value>,
    out: &mut Vec<&'a serde_json::Value>,
) {
    for p in v.and_then(|v| v.as_array()).into_iter().flatten() {
        out.push(p);
        collect_panels(p.get("panels"), out);
    }
}

/// The selector in Grafana's `label_values(<selector>, <label>)`.
pub(super) fn label_values_selector(q: &str) -> Option<&str> {
    let inner = q.trim().strip_prefix("label_values(")?.strip_suffix(')')?;
    let (sel, label) = inner.rsplit_once(',')?;
    let label = label.trim();
    let valid = !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some(sel.trim())
}

/// Substitutes Grafana's variables so the text is plain PromQL: interval variables become a
/// duration, the others a plain value.
fn grafana_to_promql(e: &str) -> String {
    substitute_variables(e, "5m", &|_| "var".to_string())
}

/// Replaces Grafana's interval variables with `interval` and every other `$var`/`${var}` with
/// `value(var)`.
pub(super) fn substitute_variables(
    e: &str,
    interval: &str,
    value: &dyn Fn(&str) -> String,
) -> String {
    let mut s = e.to_string();
    for v in [
        "$__rate_interval",
        "$__interval",
        "$__range",
        "${__rate_interval}",
        "${__interval}",
    ] {
        s = s.replace(v, interval);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let mut name = String::new();
        if chars.peek() == Some(&'{') {
            chars.next();
            for c in chars.by_ref() {
                if c == '}' {
                    break;
                }
                name.push(c);
            }
        } else {
            while let Some(c) = chars.next_if(|c| c.is_ascii_alphanumeric() || *c == '_') {
                name.push(c);
            }
        }
        out.push_str(&value(&name));
    }
    out
}

/// Checks that each expression parses, by running them through `promtool check rules` as
/// recording rules, one group per expression so an error names its origin.
fn promql_parses(exprs: &[Expr]) -> Result<(), String> {
    let mut groups = Vec::new();
    for (i, e) in exprs.iter().enumerate() {
        let mut rule = Mapping::new();
        rule.insert("record".into(), format!("dashboard_query_{i}").into());
        rule.insert("expr".into(), e.promql.clone().into());
        let mut g = Mapping::new();
        g.insert("name".into(), e.origin.clone().into());
        g.insert("rules".into(), Value::Sequence(vec![Value::Mapping(rule)]));
        groups.push(Value::Mapping(g));
    }
    let mut doc = Mapping::new();
    doc.insert("groups".into(), Value::Sequence(groups));
    let tmp = TempDir::try_new("xtask-dashboard-queries")?;
    let file = tmp.join("queries.yaml");
    let body = serde_yaml_ng::to_string(&Value::Mapping(doc)).map_err(|e| e.to_string())?;
    std::fs::write(&file, body).map_err(|e| format!("writing {}: {e}", file.display()))?;
    promtool(&["check", "rules"], &[file]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grafana_variables_become_promql() {
        assert_eq!(
            grafana_to_promql(r#"rate(x{instance=~"$instance", pod="${pod}"}[$__rate_interval])"#),
            r#"rate(x{instance=~"var", pod="var"}[5m])"#
        );
    }

    #[test]
    fn label_values_selector_is_extracted() {
        assert_eq!(
            label_values_selector(r#"label_values(node_uname_info{job="$job"}, instance)"#),
            Some(r#"node_uname_info{job="$job"}"#)
        );
        assert_eq!(label_values_selector("query_result(up)"), None);
        assert_eq!(label_values_selector("label_values(up, )"), None);
    }

    #[test]
    fn logql_stream_selector_labels() {
        let labels = |e: &str| logql_selector_labels(e).map(|l| l.join(","));
        assert_eq!(
            labels(r#"{node_name=~"$node", namespace!="a,}", pod=~`x"y`} |~ `$search`"#).as_deref(),
            Some("node_name,namespace,pod")
        );
        assert_eq!(
            labels(r#"sum by (pod) (count_over_time({job="a/b"} [1m]))"#).as_deref(),
            Some("job")
        );
        assert_eq!(labels("rate(x[5m])"), None);
        assert_eq!(labels("{}"), None);
        assert_eq!(labels(r#"{pod}"#), None);
    }

    #[test]
    fn loki_panels_use_a_loki_variable_and_stream_labels() {
        let dashboard = |ds: &str, expr: &str| {
            serde_json::json!({
                "uid": "u", "title": "t", "schemaVersion": 39,
                "templating": {"list": [
                    {"name": "datasource", "type": "datasource", "query": "prometheus"},
                    {"name": "loki", "type": "datasource", "query": "loki"}
                ]},
                "panels": [{"id": 1, "type": "logs", "title": "Logs",
                    "datasource": {"type": "loki", "uid": ds},
                    "targets": [{"refId": "A", "expr": expr,
                        "datasource": {"type": "loki", "uid": ds}}]}]
            })
        };
        let check = |d: serde_json::Value| {
            let (mut exprs, mut logql) = (Vec::new(), 0);
            let errors = check_dashboard("d", &d, &mut exprs, &mut logql);
            assert!(exprs.is_empty(), "LogQL is not PromQL");
            (errors, logql)
        };
        let (errors, logql) = check(dashboard("${loki}", r#"{namespace=~"$namespace"}"#));
        assert_eq!((errors, logql), (Vec::<String>::new(), 1));
        let (errors, _) = check(dashboard("${datasource}", r#"{app="x"}"#));
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn histogram_series_belong_to_their_family() {
        assert_eq!(
            histogram_family("eos_logs_batch_bytes_bucket"),
            Some("eos_logs_batch_bytes")
        );
        assert_eq!(
            histogram_family("eos_logs_batch_bytes_count"),
            Some("eos_logs_batch_bytes")
        );
        assert_eq!(histogram_family("eos_logs_files"), None);
    }

    #[test]
    fn whole_word_metric_names() {
        let text = "enc.single(\"node_load15\", ...); node_load1{} 0.5";
        assert!(contains_word(text, "node_load1"));
        assert!(contains_word(text, "node_load15"));
        assert!(!contains_word("node_load15 1", "node_load1"));
        assert!(!contains_word("xnode_load1 1", "node_load1"));
    }

    #[test]
    fn metric_names_are_checked_in_their_owners_source() {
        let root = TempDir::new("xtask-owners");
        let write = |rel: &str, text: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write(
            "agent/src/selfmetrics.rs",
            r#"enc.gauge("eos_agent_config_hash", 1);"#,
        );
        write(
            "collectors/containers/src/lib.rs",
            r#"("eos_agent_containers_cgroups", "container_cpu_usage_seconds_total")"#,
        );
        let agent = Description::parse(eos_testkit::describe::EXAMPLE).unwrap();
        let names = |v: &[&str]| v.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
        let allow = names(&[
            "eos_agent_config_hash",
            "eos_agent_containers_cgroups",
            "container_cpu_usage_seconds_total",
            "kube_pod_info",
        ]);
        // node_load1's owner (collectors/node) is not in this tree: not checked.
        let used = names(&[
            "eos_agent_containers_cgroups",
            "container_cpu_usage_seconds_total",
            "kube_pod_info",
            "node_load1",
        ]);
        let ok = check_owners(root.path(), &agent, "allowlist", &allow, &used).unwrap();
        assert!(ok.starts_with("2 metric names"), "{ok}");

        // Containers' names belong to collectors/containers, not agent/src.
        write("collectors/containers/src/lib.rs", "");
        write(
            "agent/src/selfmetrics.rs",
            r#""eos_agent_config_hash" "eos_agent_containers_cgroups""#,
        );
        let errors = check_owners(root.path(), &agent, "allowlist", &allow, &used).unwrap_err();
        assert_eq!(
            errors,
            [
                "allowlist: eos_agent_containers_cgroups does not appear in collectors/containers (renamed?)",
                "container_cpu_usage_seconds_total is used by a dashboard or rule but appears nowhere in collectors/containers (not exported yet, or renamed?)",
                "eos_agent_containers_cgroups is used by a dashboard or rule but appears nowhere in collectors/containers (not exported yet, or renamed?)",
            ]
        );
    }
}
