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
//!    would break live reload), and `agent.yaml` has the top-level shape of DESIGN.md. When a
//!    built agent is found in `target/`, `eos-agent check-config` runs on `agent.yaml` with the
//!    DaemonSet's flags.
//! 4. Prometheus: `promtool check rules` and `promtool test rules` on `dashboards/rules`, every
//!    alert covered by a test, and `promtool check config` on each `prometheus.yml`. Debian's
//!    promtool is built without Kubernetes service discovery, so `kubernetes_sd_configs` blocks
//!    are checked here and replaced by a static target for promtool.
//! 5. Alertmanager: `amtool check-config` on each `alertmanager.yml`, when amtool is installed.
//! 6. Dashboards: each panel's PromQL (with Grafana's variables substituted) parses, checked
//!    by promtool as recording rules, and names only metrics in `dashboards/metrics-allowlist.txt`
//!    (as do the alert rules). `eos_agent_*` names in the allowlist must appear in the agent's
//!    source.
//! 7. When `kubectl` (kustomize v4+) or `kustomize` is installed: every overlay and the base
//!    build, and the rendered objects are cross-checked (namespaces, ConfigMap volumes, service
//!    accounts, Service selectors, the agent DaemonSet again).
//!
//! 8. Live (skipped with `--no-live`): the built agent and node_exporter scraped by a real
//!    Prometheus; the dashboards' queries must return data and the rules evaluate (`live.rs`).
//!
//! The same validation runs as unit tests (`manifests::tests::repository_manifests_validate`
//! and `manifests::tests::live_dashboards_and_rules`), so `cargo test --workspace` covers it.

use serde::Deserialize;
use serde_yaml_ng::{Mapping, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

mod live;

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

    // 3. The agent's DaemonSet and config.
    let daemonsets: Vec<&(PathBuf, Value)> = resource_docs
        .iter()
        .filter(|(_, d)| is_agent_daemonset(d))
        .collect();
    if daemonsets.is_empty() {
        errors.push("no DaemonSet named eos-agent among the kustomize resources".into());
    }
    let agent_config = manifests.join("base/agent/agent.yaml");
    for (path, ds) in &daemonsets {
        for e in check_agent_daemonset(ds) {
            errors.push(format!("{}: {e}", path.display()));
        }
    }
    match std::fs::read_to_string(&agent_config) {
        Ok(text) => {
            for e in check_agent_config(&text) {
                errors.push(format!("{}: {e}", agent_config.display()));
            }
        }
        Err(e) => errors.push(format!("reading {}: {e}", agent_config.display())),
    }
    report.ok("agent DaemonSet: flags, mounts, config shape");
    let ds_args = daemonsets
        .first()
        .and_then(|(_, d)| agent_container(d))
        .map(|c| string_list(c.get("args")))
        .unwrap_or_default();
    match agent_check_config(root, &agent_config, &ds_args) {
        Ok(line) => report.ok(line),
        Err(Skip(why)) => report.skipped(why),
        Err(Fail(e)) => errors.push(e),
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
    match check_dashboards_and_names(root, &dashboards) {
        Ok(lines) => lines.into_iter().for_each(|l| report.ok(l)),
        Err(mut e) => errors.append(&mut e),
    }

    // 7. kustomize build.
    match kustomize_builds(root, &manifests) {
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

// ---------------------------------------------------------------------------------------------
// Files and YAML

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

fn has_ext(p: &Path, exts: &[&str]) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.contains(&e))
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// Every document of a YAML file (empty documents left out).
fn load_yaml(path: &Path) -> Result<Vec<Value>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    parse_yaml_docs(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn parse_yaml_docs(text: &str) -> Result<Vec<Value>, String> {
    let mut docs = Vec::new();
    for de in serde_yaml_ng::Deserializer::from_str(text) {
        let v = Value::deserialize(de).map_err(|e| e.to_string())?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

/// `v[k1][k2]...` for mappings.
fn get<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().try_fold(v, |v, k| v.get(*k))
}

fn get_str<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    get(v, keys).and_then(Value::as_str)
}

fn seq(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_sequence).map_or(&[], |s| s.as_slice())
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    seq(v)
        .iter()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

fn mapping_keys(v: &Value) -> Vec<String> {
    v.as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Kustomizations

/// Fields of a kustomization we use or would accept; deprecated ones (`bases`,
/// `patchesStrategicMerge`, `commonLabels`, `vars`) are left out on purpose.
const KUSTOMIZATION_FIELDS: &[&str] = &[
    "apiVersion",
    "kind",
    "metadata",
    "resources",
    "components",
    "patches",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "namespace",
    "namePrefix",
    "nameSuffix",
    "labels",
    "commonAnnotations",
    "images",
    "replicas",
];

/// Checks one kustomization; resource documents it names are appended to `docs`.
fn check_kustomization(path: &Path, docs: &mut Vec<(PathBuf, Value)>, errors: &mut Vec<String>) {
    let dir = path.parent().unwrap_or(Path::new("."));
    let k = match load_yaml(path) {
        Ok(mut d) if d.len() == 1 => d.remove(0),
        Ok(_) => {
            errors.push(format!("{}: expected exactly one document", path.display()));
            return;
        }
        Err(e) => {
            errors.push(e);
            return;
        }
    };
    let here = |msg: String| format!("{}: {msg}", path.display());
    for key in mapping_keys(&k) {
        if !KUSTOMIZATION_FIELDS.contains(&key.as_str()) {
            errors.push(here(format!(
                "unknown or deprecated field `{key}` (known: {})",
                KUSTOMIZATION_FIELDS.join(", ")
            )));
        }
    }
    for r in string_list(k.get("resources"))
        .into_iter()
        .chain(string_list(k.get("components")))
    {
        if r.contains("://") || r.starts_with("github.com/") {
            errors.push(here(format!(
                "remote resource {r:?}: everything must build offline"
            )));
            continue;
        }
        let p = dir.join(&r);
        if p.is_dir() {
            if !p.join("kustomization.yaml").is_file() {
                errors.push(here(format!(
                    "resource directory {r} has no kustomization.yaml"
                )));
            }
        } else if p.is_file() {
            match load_yaml(&p) {
                Ok(ds) => {
                    for (i, d) in ds.into_iter().enumerate() {
                        for e in required_fields(&d) {
                            errors.push(format!("{} document {}: {e}", p.display(), i + 1));
                        }
                        docs.push((p.clone(), d));
                    }
                }
                Err(e) => errors.push(e),
            }
        } else {
            errors.push(here(format!("resource {r} does not exist")));
        }
    }
    for (i, patch) in seq(k.get("patches")).iter().enumerate() {
        match (get_str(patch, &["path"]), get_str(patch, &["patch"])) {
            (Some(p), None) => {
                if !dir.join(p).is_file() {
                    errors.push(here(format!("patch {p} does not exist")));
                }
            }
            (None, Some(inline)) => {
                if let Err(e) = parse_yaml_docs(inline) {
                    errors.push(here(format!("inline patch {}: {e}", i + 1)));
                }
            }
            _ => errors.push(here(format!(
                "patch {} needs exactly one of `path` or `patch`",
                i + 1
            ))),
        }
    }
    for generator in ["configMapGenerator", "secretGenerator"] {
        for g in seq(k.get(generator)) {
            let name = get_str(g, &["name"]).unwrap_or("?");
            if get_str(g, &["name"]).is_none() {
                errors.push(here(format!("{generator} entry without a name")));
            }
            for f in string_list(g.get("files"))
                .iter()
                .chain(&string_list(g.get("envs")))
            {
                // `key=path` names the key explicitly.
                let file = f.split_once('=').map_or(f.as_str(), |(_, p)| p);
                if !dir.join(file).is_file() {
                    errors.push(here(format!(
                        "{generator} {name}: file {file} does not exist"
                    )));
                }
            }
        }
    }
}

/// `apiVersion`, `kind` and `metadata.name` on an object.
fn required_fields(doc: &Value) -> Vec<String> {
    let mut e = Vec::new();
    for (keys, what) in [
        (&["apiVersion"][..], "apiVersion"),
        (&["kind"][..], "kind"),
        (&["metadata", "name"][..], "metadata.name"),
    ] {
        if get_str(doc, keys).is_none_or(str::is_empty) {
            e.push(format!("missing {what}"));
        }
    }
    e
}

/// Every dashboard and rules file in `dashboards/` must be in its kustomization's generators,
/// or it would silently never reach Grafana or Prometheus.
fn check_generator_lists_everything(dashboards: &Path, errors: &mut Vec<String>) {
    let kpath = dashboards.join("kustomization.yaml");
    let Ok(docs) = load_yaml(&kpath) else {
        errors.push(format!("{} is missing or invalid", kpath.display()));
        return;
    };
    let listed: BTreeSet<String> = docs
        .iter()
        .flat_map(|k| seq(k.get("configMapGenerator")))
        .flat_map(|g| string_list(g.get("files")))
        .map(|f| f.split_once('=').map_or(f.clone(), |(_, p)| p.to_string()))
        .collect();
    let mut present = Vec::new();
    let _ = walk(dashboards, &mut present);
    for p in present {
        let r = rel(dashboards, &p);
        let wanted = (has_ext(&p, &["json"]) && !r.contains('/'))
            || (r.starts_with("rules/")
                && !r.starts_with("rules/tests/")
                && has_ext(&p, &["yaml"]));
        if wanted && !listed.contains(&r) {
            errors.push(format!(
                "{}: {r} is not listed in a configMapGenerator",
                kpath.display()
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The agent

fn is_agent_daemonset(d: &Value) -> bool {
    get_str(d, &["kind"]) == Some("DaemonSet")
        && get_str(d, &["metadata", "name"]) == Some("eos-agent")
}

fn agent_container(ds: &Value) -> Option<&Value> {
    seq(get(ds, &["spec", "template", "spec", "containers"]))
        .iter()
        .find(|c| get_str(c, &["name"]) == Some("eos-agent"))
}

/// Flags `eos-agent` takes; `true` when the value may come as the next argument.
const AGENT_FLAGS: &[(&str, bool)] = &[
    ("--config", true),
    ("--web.listen-address", true),
    ("--path.procfs", true),
    ("--path.sysfs", true),
    ("--path.rootfs", true),
    ("--path.udev.data", true),
    ("--log.level", true),
];

/// The agent's args as (flag, value) pairs, or the first argument it would not accept.
fn parse_agent_args(args: &[String]) -> Result<Vec<(String, Option<String>)>, String> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (a.as_str(), None),
        };
        if flag.starts_with("--collector.") || flag.starts_with("--no-collector.") {
            out.push((flag.to_string(), inline));
            continue;
        }
        let Some((_, takes_value)) = AGENT_FLAGS.iter().find(|(f, _)| *f == flag) else {
            return Err(format!(
                "argument {a:?} is not an eos-agent flag (known: {}, --collector.*, --no-collector.*)",
                AGENT_FLAGS.iter().map(|(f, _)| *f).collect::<Vec<_>>().join(", ")
            ));
        };
        let value = match inline {
            Some(v) => v,
            None if *takes_value => it
                .next()
                .filter(|v| !v.starts_with("--"))
                .cloned()
                .ok_or_else(|| format!("flag {flag} needs a value"))?,
            None => String::new(),
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
fn check_agent_daemonset(ds: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(c) = agent_container(ds) else {
        return vec!["DaemonSet eos-agent has no container named eos-agent".into()];
    };
    let pod = get(ds, &["spec", "template", "spec"]).unwrap_or(&Value::Null);
    let flags = match parse_agent_args(&string_list(c.get("args"))) {
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

/// Top-level keys of the agent config and module names (DESIGN.md, "Config shape").
const AGENT_CONFIG_KEYS: &[&str] = &[
    "listen_address",
    "node_name",
    "host",
    "state_dir",
    "server",
    "modules",
];
const AGENT_MODULES: &[&str] = &["node", "containers", "logs", "probe", "ping", "mtr"];

fn check_agent_config(text: &str) -> Vec<String> {
    let v: Value = match serde_yaml_ng::from_str(text) {
        Ok(v) => v,
        Err(e) => return vec![e.to_string()],
    };
    let mut errors = Vec::new();
    for k in mapping_keys(&v) {
        if !AGENT_CONFIG_KEYS.contains(&k.as_str()) {
            errors.push(format!("unknown top-level key `{k}`"));
        }
    }
    if get_str(&v, &["node_name"]) != Some("${NODE_NAME}") {
        errors.push("node_name should be ${NODE_NAME} (the downward API's spec.nodeName)".into());
    }
    let modules = v.get("modules").unwrap_or(&Value::Null);
    for m in mapping_keys(modules) {
        if !AGENT_MODULES.contains(&m.as_str()) {
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

/// The most recently built agent in `target/`, if any.
fn find_agent_binary(root: &Path) -> Option<PathBuf> {
    ["target/release/eos-agent", "target/debug/eos-agent"]
        .iter()
        .map(|p| root.join(p))
        .filter_map(|p| {
            let modified = p.metadata().and_then(|m| m.modified()).ok()?;
            Some((modified, p))
        })
        .max()
        .map(|(_, p)| p)
}

/// The modules a built agent has, from the "modules in this build:" line of its `--help`
/// (`None` when it does not say).
fn agent_modules(bin: &Path) -> Result<Option<Vec<String>>, String> {
    let help = Command::new(bin)
        .arg("--help")
        .output()
        .map_err(|e| format!("running {} --help: {e}", bin.display()))?;
    let help =
        String::from_utf8_lossy(&help.stdout).into_owned() + &String::from_utf8_lossy(&help.stderr);
    Ok(help
        .lines()
        .find_map(|l| l.trim().strip_prefix("modules in this build:"))
        .map(|l| {
            l.split([',', ' '])
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        }))
}

/// `eos-agent check-config agent.yaml <DaemonSet flags>` with a built agent. Module sections
/// for modules this build does not have yet are taken out first (and named in the report).
fn agent_check_config(root: &Path, config: &Path, ds_args: &[String]) -> Result<String, Outcome> {
    let Some(bin) = find_agent_binary(root) else {
        return Err(Skip(
            "eos-agent check-config: no built agent in target/ (cargo build -p eos-agent)".into(),
        ));
    };
    let built = agent_modules(&bin).map_err(Fail)?;
    let text = std::fs::read_to_string(config)
        .map_err(|e| Fail(format!("reading {}: {e}", config.display())))?;
    let mut v: Value =
        serde_yaml_ng::from_str(&text).map_err(|e| Fail(format!("{}: {e}", config.display())))?;
    let mut left_out = Vec::new();
    if let (Some(built), Some(modules)) =
        (&built, v.get_mut("modules").and_then(Value::as_mapping_mut))
    {
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
    let tmp = TempDir::new("agent-config").map_err(Fail)?;
    // The original text when nothing was taken out, so errors point at its lines.
    let file = tmp.path.join("agent.yaml");
    let body = if left_out.is_empty() {
        text
    } else {
        serde_yaml_ng::to_string(&v).map_err(|e| Fail(e.to_string()))?
    };
    std::fs::write(&file, body).map_err(|e| Fail(format!("writing {}: {e}", file.display())))?;
    let flags: Vec<String> = match parse_agent_args(ds_args) {
        Ok(f) => f
            .into_iter()
            .filter(|(f, _)| f != "--config")
            .flat_map(|(f, v)| match v {
                Some(v) => vec![format!("{f}={v}")],
                None => vec![f],
            })
            .collect(),
        Err(e) => return Err(Fail(e)),
    };
    let out = Command::new(&bin)
        .arg("check-config")
        .arg(&file)
        .args(&flags)
        .env("NODE_NAME", "validation-node")
        .output()
        .map_err(|e| Fail(format!("running {} check-config: {e}", bin.display())))?;
    if !out.status.success() {
        return Err(Fail(format!(
            "{} check-config {} {} failed: {}{}",
            bin.display(),
            rel(root, config),
            flags.join(" "),
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let mut line = format!(
        "{} check-config {} with the DaemonSet's flags",
        rel(root, &bin),
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

// ---------------------------------------------------------------------------------------------
// Prometheus and Alertmanager

/// Runs a checking tool on one file; a missing tool is a `Skip`.
fn tool_ok(tool: &str, args: &[&str], file: &Path) -> Result<(), Outcome> {
    let out = match Command::new(tool).args(args).arg(file).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Skip(format!("{tool} is not installed")))
        }
        Err(e) => return Err(Fail(format!("running {tool}: {e}"))),
    };
    if out.status.success() {
        Ok(())
    } else {
        Err(Fail(format!(
            "{tool} {} {}:\n{}{}",
            args.join(" "),
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}

/// promtool is required: the stack's alerting depends on these files.
fn promtool(args: &[&str], files: &[PathBuf]) -> Result<String, String> {
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
fn check_rules(rules_dir: &Path) -> Result<String, String> {
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

fn alert_names(rules: &Path) -> Result<BTreeSet<String>, String> {
    let docs = load_yaml(rules)?;
    Ok(docs
        .iter()
        .flat_map(|d| seq(d.get("groups")))
        .flat_map(|g| seq(g.get("rules")))
        .filter_map(|r| get_str(r, &["alert"]).map(str::to_string))
        .collect())
}

fn tested_alerts(test: &Path) -> Result<BTreeSet<String>, String> {
    let docs = load_yaml(test)?;
    Ok(docs
        .iter()
        .flat_map(|d| seq(d.get("tests")))
        .flat_map(|t| seq(t.get("alert_rule_test")))
        .filter_map(|a| get_str(a, &["alertname"]).map(str::to_string))
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
fn check_prometheus_config(root: &Path, path: &Path, rules_dir: &Path) -> Result<String, String> {
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
    let tmp = TempDir::new("prometheus-config")?;
    let file = tmp.path.join("prometheus.yml");
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

// ---------------------------------------------------------------------------------------------
// Dashboards and PromQL

/// One PromQL expression from a dashboard or rules file, and where it came from.
struct Expr {
    origin: String,
    promql: String,
}

fn check_dashboards_and_names(root: &Path, dashboards: &Path) -> Result<Vec<String>, Vec<String>> {
    let mut errors = Vec::new();
    let mut exprs = Vec::new();
    let mut files = Vec::new();
    if let Err(e) = walk(dashboards, &mut files) {
        return Err(vec![format!("listing {}: {e}", dashboards.display())]);
    }
    files.retain(|p| has_ext(p, &["json"]));
    files.sort();
    let mut uids = BTreeMap::new();
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
        errors.extend(check_dashboard(&name, &d, &mut exprs));
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
    // The agent's own names must be ones the agent source writes.
    let agent_src = read_sources(&root.join("agent/src"));
    for name in allow.iter().filter(|n| n.starts_with("eos_agent_")) {
        if !agent_src.contains(&format!("\"{name}\"")) {
            errors.push(format!(
                "{}: {name} does not appear in agent/src (renamed?)",
                rel(root, &allow_path)
            ));
        }
    }
    // Names the modules export must be in their crates (source, fixtures or golden output).
    let mut implemented = 0;
    for (prefixes, dir) in IMPLEMENTATIONS {
        let dir = root.join(dir);
        if !dir.is_dir() {
            continue;
        }
        let text = read_sources(&dir);
        for name in used
            .iter()
            .filter(|n| prefixes.iter().any(|p| n.starts_with(p)))
        {
            if contains_word(&text, name) {
                implemented += 1;
            } else {
                errors.push(format!(
                    "{name} is used by a dashboard or rule but appears nowhere in {} (not exported yet, or renamed?)",
                    rel(root, &dir)
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(vec![
            format!(
                "{} dashboards: {} queries parse (promtool), datasource is ${{datasource}}",
                files.len(),
                exprs.len()
            ),
            format!(
                "{} metric names used by dashboards and rules are all in the allowlist; {implemented} of them found in the module crates",
                used.len()
            ),
        ])
    } else {
        Err(errors)
    }
}

/// Which crate exports the metrics with these prefixes.
const IMPLEMENTATIONS: &[(&[&str], &str)] = &[
    (&["node_"], "collectors/node"),
    (&["container_", "machine_"], "collectors/containers"),
    (&["eos_agent_"], "agent/src"),
];

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

/// Structure of one dashboard; its PromQL is appended to `exprs`.
fn check_dashboard(name: &str, d: &serde_json::Value, exprs: &mut Vec<Expr>) -> Vec<String> {
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

fn check_datasource(origin: &str, ds: Option<&serde_json::Value>, errors: &mut Vec<String>) {
    let uid = ds.and_then(|d| d.get("uid")).and_then(|u| u.as_str());
    if uid != Some("${datasource}") {
        errors.push(format!(
            "{origin}: datasource uid must be ${{datasource}}, is {uid:?}"
        ));
    }
}

/// Panels, including those nested in collapsed rows.
fn collect_panels<'a>(v: Option<&'a serde_json::Value>, out: &mut Vec<&'a serde_json::Value>) {
    for p in v.and_then(|v| v.as_array()).into_iter().flatten() {
        out.push(p);
        collect_panels(p.get("panels"), out);
    }
}

/// The selector in Grafana's `label_values(<selector>, <label>)`.
fn label_values_selector(q: &str) -> Option<&str> {
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
fn substitute_variables(e: &str, interval: &str, value: &dyn Fn(&str) -> String) -> String {
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
    let tmp = TempDir::new("dashboard-queries")?;
    let file = tmp.path.join("queries.yaml");
    let body = serde_yaml_ng::to_string(&Value::Mapping(doc)).map_err(|e| e.to_string())?;
    std::fs::write(&file, body).map_err(|e| format!("writing {}: {e}", file.display()))?;
    promtool(&["check", "rules"], &[file]).map(|_| ())
}

/// PromQL words that are never metric names.
const PROMQL_KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "atan2",
    "inf",
    "nan",
    "start",
    "end",
];

/// Words after which a parenthesised list holds label names, not expressions.
const LABEL_LIST_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names an expression selects: identifiers outside strings, label matchers and
/// ranges that are not functions, keywords or label lists.
fn metric_names(promql: &str) -> BTreeSet<String> {
    let b = promql.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let skip_string = |mut i: usize, quote: u8| -> usize {
        i += 1;
        while i < b.len() && b[i] != quote {
            if b[i] == b'\\' && quote != b'`' {
                i += 1;
            }
            i += 1;
        }
        i + 1
    };
    // Index after the bracket matching the opening one at `i` (strings inside skipped).
    let skip_group = |mut i: usize, open: u8, close: u8| -> usize {
        let mut depth = 0usize;
        while i < b.len() {
            match b[i] {
                q @ (b'"' | b'\'' | b'`') => {
                    i = skip_string(i, q);
                    continue;
                }
                c if c == open => depth += 1,
                c if c == close => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        i
    };
    let next_non_space = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'\'' | b'`' => i = skip_string(i, c),
            b'{' => i = skip_group(i, b'{', b'}'),
            b'[' => i = skip_group(i, b'[', b']'),
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            c if c.is_ascii_digit()
                || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                // Numbers and durations (5m, 1e3, 0x1f, 1h30m).
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                let word = &promql[start..i];
                let after = next_non_space(i);
                let lower = word.to_ascii_lowercase();
                if LABEL_LIST_KEYWORDS.contains(&lower.as_str()) {
                    if b.get(after) == Some(&b'(') {
                        i = skip_group(after, b'(', b')');
                    }
                } else if b.get(after) == Some(&b'(') || PROMQL_KEYWORDS.contains(&lower.as_str()) {
                    // A function call or keyword.
                } else {
                    names.insert(word.to_string());
                }
            }
            _ => i += 1,
        }
    }
    names
}

// ---------------------------------------------------------------------------------------------
// kustomize build

/// How to run kustomize here, if at all: `kubectl kustomize` (kustomize v4+) or `kustomize
/// build`.
fn kustomize_command() -> Option<(String, Vec<String>, String)> {
    if let Ok(out) = Command::new("kustomize").arg("version").output() {
        let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && kustomize_major(&v).is_some_and(|m| m >= 4) {
            return Some((
                "kustomize".into(),
                vec!["build".into()],
                format!("kustomize {v}"),
            ));
        }
    }
    let out = Command::new("kubectl")
        .args(["version", "--client", "-o", "json"])
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let kv = v.get("kustomizeVersion")?.as_str()?.to_string();
    (kustomize_major(&kv)? >= 4).then(|| {
        (
            "kubectl".into(),
            vec!["kustomize".into()],
            format!("kubectl kustomize ({kv})"),
        )
    })
}

/// The major version from `v5.5.0` or `{Version:kustomize/v5.5.0 ...}`.
fn kustomize_major(v: &str) -> Option<u32> {
    let at = v.find('v')?;
    v[at + 1..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

fn kustomize_builds(root: &Path, manifests: &Path) -> Result<Vec<String>, Outcome> {
    let Some((cmd, pre, what)) = kustomize_command() else {
        return Err(Skip(
            "kustomize build: neither `kustomize` nor `kubectl` with kustomize v4+ is installed (Debian's kubectl 1.20 has kustomize v2)".into(),
        ));
    };
    let mut dirs = vec![manifests.join("base")];
    let overlays = manifests.join("overlays");
    if let Ok(rd) = std::fs::read_dir(&overlays) {
        let mut o: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.join("kustomization.yaml").is_file())
            .collect();
        o.sort();
        dirs.extend(o);
    }
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for dir in &dirs {
        let out = Command::new(&cmd)
            .args(&pre)
            .arg(dir)
            .output()
            .map_err(|e| Fail(format!("running {what}: {e}")))?;
        let name = rel(root, dir);
        if !out.status.success() {
            errors.push(format!(
                "{what} {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            continue;
        }
        let docs = match parse_yaml_docs(&String::from_utf8_lossy(&out.stdout)) {
            Ok(d) => d,
            Err(e) => {
                errors.push(format!("{what} {name}: output does not parse: {e}"));
                continue;
            }
        };
        let problems = check_rendered(&docs);
        if problems.is_empty() {
            lines.push(format!(
                "{what} {name}: {} objects, cross-references resolve",
                docs.len()
            ));
        } else {
            errors.extend(problems.into_iter().map(|p| format!("{what} {name}: {p}")));
        }
    }
    if errors.is_empty() {
        Ok(lines)
    } else {
        Err(Fail(errors.join("\n  ")))
    }
}

/// Kinds that live outside namespaces.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "PriorityClass",
    "StorageClass",
    "PersistentVolume",
    "CustomResourceDefinition",
];

/// Cross-checks of a rendered stack: what one object names, another provides.
fn check_rendered(docs: &[Value]) -> Vec<String> {
    let mut errors = Vec::new();
    let mut by_kind: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for d in docs {
        for e in required_fields(d) {
            errors.push(format!("{e} in {d:?}"));
        }
        let kind = get_str(d, &["kind"]).unwrap_or("");
        let name = get_str(d, &["metadata", "name"]).unwrap_or("");
        by_kind.entry(kind).or_default().insert(name);
        let ns = get_str(d, &["metadata", "namespace"]);
        if CLUSTER_SCOPED.contains(&kind) {
            if ns.is_some() {
                errors.push(format!(
                    "{kind} {name} is cluster-scoped but has a namespace"
                ));
            }
        } else if ns.is_none() {
            errors.push(format!("{kind} {name} has no namespace"));
        }
    }
    let has = |kind: &str, name: &str| by_kind.get(kind).is_some_and(|s| s.contains(name));
    let workloads: Vec<&Value> = docs
        .iter()
        .filter(|d| {
            matches!(
                get_str(d, &["kind"]),
                Some("Deployment" | "StatefulSet" | "DaemonSet")
            )
        })
        .collect();
    for w in &workloads {
        let wname = format!(
            "{} {}",
            get_str(w, &["kind"]).unwrap_or(""),
            get_str(w, &["metadata", "name"]).unwrap_or("")
        );
        let pod = get(w, &["spec", "template", "spec"]).unwrap_or(&Value::Null);
        if let Some(sa) = get_str(pod, &["serviceAccountName"]) {
            if !has("ServiceAccount", sa) {
                errors.push(format!("{wname}: ServiceAccount {sa} is not in the build"));
            }
        }
        for v in seq(pod.get("volumes")) {
            if let Some(cm) = get_str(v, &["configMap", "name"]) {
                let optional =
                    get(v, &["configMap", "optional"]).and_then(Value::as_bool) == Some(true);
                if !optional && !has("ConfigMap", cm) {
                    errors.push(format!("{wname}: ConfigMap {cm} is not in the build"));
                }
            }
        }
        // Every mount names a volume of the pod or a claim template of the StatefulSet.
        let mut volume_names: BTreeSet<&str> = seq(pod.get("volumes"))
            .iter()
            .filter_map(|v| get_str(v, &["name"]))
            .collect();
        volume_names.extend(
            seq(get(w, &["spec", "volumeClaimTemplates"]))
                .iter()
                .filter_map(|v| get_str(v, &["metadata", "name"])),
        );
        for c in seq(pod.get("containers"))
            .iter()
            .chain(seq(pod.get("initContainers")))
        {
            for m in seq(c.get("volumeMounts")) {
                let vname = get_str(m, &["name"]).unwrap_or("");
                if !volume_names.contains(vname) {
                    errors.push(format!(
                        "{wname}: container {} mounts volume {vname:?}, which the pod does not have",
                        get_str(c, &["name"]).unwrap_or("?")
                    ));
                }
            }
        }
        let selector = get(w, &["spec", "selector", "matchLabels"]);
        let labels = get(w, &["spec", "template", "metadata", "labels"]);
        if !labels_match(selector, labels) {
            errors.push(format!(
                "{wname}: selector does not match its pod template labels"
            ));
        }
        if is_agent_daemonset(w) {
            errors.extend(
                check_agent_daemonset(w)
                    .into_iter()
                    .map(|e| format!("{wname}: {e}")),
            );
        }
    }
    errors.extend(check_shard_count(docs));
    for s in docs
        .iter()
        .filter(|d| get_str(d, &["kind"]) == Some("Service"))
    {
        let name = get_str(s, &["metadata", "name"]).unwrap_or("");
        let selector = get(s, &["spec", "selector"]);
        if selector.is_none() {
            continue;
        }
        let matched: Vec<&&Value> = workloads
            .iter()
            .filter(|w| {
                labels_match(
                    selector,
                    get(w, &["spec", "template", "metadata", "labels"]),
                )
            })
            .collect();
        if matched.is_empty() {
            errors.push(format!("Service {name}: selector matches no workload"));
            continue;
        }
        // Named target ports must exist on the selected pods.
        for p in seq(get(s, &["spec", "ports"])) {
            if let Some(tp) = get_str(p, &["targetPort"]) {
                let found = matched.iter().any(|w| {
                    seq(get(w, &["spec", "template", "spec", "containers"]))
                        .iter()
                        .flat_map(|c| seq(c.get("ports")))
                        .any(|cp| get_str(cp, &["name"]) == Some(tp))
                });
                if !found {
                    errors.push(format!(
                        "Service {name}: targetPort {tp} is no container port name"
                    ));
                }
            }
        }
    }
    errors
}

/// A sharded Prometheus (`hashmod` relabelling) must have as many replicas as its modulus, or
/// some targets are scraped by no replica.
fn check_shard_count(docs: &[Value]) -> Vec<String> {
    let replicas = docs
        .iter()
        .find(|d| {
            get_str(d, &["kind"]) == Some("StatefulSet")
                && get_str(d, &["metadata", "name"]) == Some("prometheus")
        })
        .map(|d| {
            get(d, &["spec", "replicas"])
                .and_then(Value::as_u64)
                .unwrap_or(1)
        });
    let mut errors = Vec::new();
    for cm in docs
        .iter()
        .filter(|d| get_str(d, &["kind"]) == Some("ConfigMap"))
    {
        let Some(text) = get_str(cm, &["data", "prometheus.yml"]) else {
            continue;
        };
        let name = get_str(cm, &["metadata", "name"]).unwrap_or("");
        let cfg: Value = match serde_yaml_ng::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                errors.push(format!("ConfigMap {name} prometheus.yml: {e}"));
                continue;
            }
        };
        for job in seq(cfg.get("scrape_configs")) {
            let jname = get_str(job, &["job_name"]).unwrap_or("?");
            for r in seq(job.get("relabel_configs")) {
                if get_str(r, &["action"]) != Some("hashmod") {
                    continue;
                }
                let modulus = get(r, &["modulus"]).and_then(Value::as_u64);
                if modulus != replicas {
                    errors.push(format!(
                        "ConfigMap {name} job {jname}: hashmod modulus {modulus:?} but StatefulSet prometheus has {replicas:?} replicas"
                    ));
                }
            }
        }
    }
    errors
}

/// Whether every selector label is among `labels`.
fn labels_match(selector: Option<&Value>, labels: Option<&Value>) -> bool {
    let Some(sel) = selector.and_then(Value::as_mapping) else {
        return false;
    };
    !sel.is_empty()
        && sel
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

// ---------------------------------------------------------------------------------------------

/// A scratch directory removed on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new(what: &str) -> Result<TempDir, String> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "eos-xtask-{what}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

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

    #[test]
    fn metric_names_skip_functions_labels_strings_and_keywords() {
        let q = r#"(1 - sum without (mode) (rate(node_cpu_seconds_total{job="$job", mode=~"idle|iowait"}[5m])))
/ ignoring(cpu) group_left
  count without (cpu, mode) (node_cpu_seconds_total{mode="idle"}) > bool 0.5e3
or count_values("config_hash", eos_agent_config_hash) offset 1h30m
and on (instance) label_replace(up, "a", "$1", "b", "(.*)") * 8"#;
        let names: Vec<String> = metric_names(q).into_iter().collect();
        assert_eq!(
            names,
            ["eos_agent_config_hash", "node_cpu_seconds_total", "up"]
        );
    }

    #[test]
    fn metric_names_of_odd_input_do_not_panic() {
        for q in [
            "",
            "{",
            "\"unterminated",
            "sum by (",
            "[5m",
            "a{b=\"c\\\"}",
            "`raw",
            "x:y:z 1e",
        ] {
            let _ = metric_names(q);
        }
        assert_eq!(
            metric_names("recorded:rule:name{a=\"}\"}")
                .into_iter()
                .collect::<Vec<_>>(),
            ["recorded:rule:name"]
        );
    }

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

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn agent_args_accept_node_exporter_flags_only() {
        let ok = parse_agent_args(&s(&[
            "--path.procfs=/host/proc",
            "--config",
            "/etc/eos-agent/agent.yaml",
            "--collector.processes",
            "--no-collector.wifi",
            "--web.listen-address=:9100",
        ]));
        assert_eq!(ok.map(|v| v.len()), Ok(5));
        assert!(parse_agent_args(&s(&["--path.proc=/x"]))
            .is_err_and(|e| e.contains("not an eos-agent flag")));
        assert!(parse_agent_args(&s(&["--config"])).is_err_and(|e| e.contains("needs a value")));
        assert!(parse_agent_args(&s(&["--config", "--log.level=info"])).is_err());
        assert!(parse_agent_args(&s(&["--log.level="])).is_err_and(|e| e.contains("empty")));
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
        assert_eq!(check_agent_daemonset(&ds), Vec::<String>::new());
    }

    #[test]
    fn agent_daemonset_subpath_config_mount_is_rejected() {
        let bad = DAEMONSET.replace(
            "{name: config, mountPath: /etc/eos-agent}",
            "{name: config, mountPath: /etc/eos-agent/agent.yaml, subPath: agent.yaml}",
        );
        let ds: Value = serde_yaml_ng::from_str(&bad).expect("fixture parses");
        let errors = check_agent_daemonset(&ds);
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
        let errors = check_agent_daemonset(&ds);
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn agent_config_shape() {
        assert_eq!(
            check_agent_config("node_name: ${NODE_NAME}\nmodules:\n  node: {enabled: true}\n"),
            Vec::<String>::new()
        );
        let e = check_agent_config(
            "node_name: x\nlisten: 1\nmodules:\n  nodes: {enabled: true}\n  ping: {enabled: yes please}\n",
        );
        assert_eq!(e.len(), 4, "{e:?}");
        assert_eq!(check_agent_config("[1, 2").len(), 1);
    }

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
    fn rendered_cross_references() {
        let docs = parse_yaml_docs(
            r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: eos}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: http}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: eos}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      serviceAccountName: web
      containers: [{name: web, ports: [{name: metrics, containerPort: 80}], volumeMounts: [{name: c, mountPath: /c}, {name: nope, mountPath: /n}]}]
      volumes: [{name: c, configMap: {name: missing}}, {name: o, configMap: {name: gone, optional: true}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: r}
"#,
        )
        .expect("fixture parses");
        let e = check_rendered(&docs);
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e.iter().any(|x| x.contains("volume \"nope\"")));
        assert!(e.iter().any(|x| x.contains("ServiceAccount web")));
        assert!(e.iter().any(|x| x.contains("ConfigMap missing")));
        assert!(e.iter().any(|x| x.contains("targetPort http")));
    }

    #[test]
    fn shard_count_must_match_replicas() {
        let docs = |replicas: u32| {
            parse_yaml_docs(&format!(
                r#"
kind: StatefulSet
metadata: {{name: prometheus}}
spec: {{replicas: {replicas}}}
---
kind: ConfigMap
metadata: {{name: prometheus-config}}
data:
  prometheus.yml: |
    scrape_configs:
      - job_name: a
        relabel_configs:
          - {{source_labels: [__address__], modulus: 8, target_label: __tmp_hash, action: hashmod}}
"#
            ))
            .expect("fixture parses")
        };
        assert_eq!(check_shard_count(&docs(8)), Vec::<String>::new());
        assert_eq!(check_shard_count(&docs(4)).len(), 1);
    }

    #[test]
    fn kustomization_missing_files_are_reported() {
        let tmp = TempDir::new("kustomization-test").expect("temp dir");
        let k = tmp.path.join("kustomization.yaml");
        std::fs::write(
            &k,
            "resources: [gone.yaml, nodir]\npatchesStrategicMerge: [x.yaml]\npatches: [{path: p.yaml}]\nconfigMapGenerator: [{name: c, files: [k=missing.yml]}]\n",
        )
        .expect("write fixture");
        let mut docs = Vec::new();
        let mut errors = Vec::new();
        check_kustomization(&k, &mut docs, &mut errors);
        assert_eq!(errors.len(), 5, "{errors:?}");
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
    fn kustomize_versions() {
        assert_eq!(kustomize_major("v5.5.0"), Some(5));
        assert_eq!(
            kustomize_major("{Version:kustomize/v4.5.7 GitCommit:x}"),
            Some(4)
        );
        assert_eq!(kustomize_major("unknown"), None);
    }
}
