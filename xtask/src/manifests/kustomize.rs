//! Kustomizations: each `kustomization.yaml` uses known fields and names files that exist, every
//! dashboard and rules file is in a generator, and, when kustomize v4+ is installed, the base
//! and every overlay build (the output is cross-checked in `rendered.rs`).

use super::rendered::check_rendered;
use super::yaml::{
    get_str, has_ext, load_yaml, mapping_keys, parse_yaml_docs, rel, seq, string_list, walk,
};
use super::{Fail, Outcome, Skip};
use eos_testkit::Description;
use serde_yaml_ng::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

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
pub(super) fn check_kustomization(
    path: &Path,
    docs: &mut Vec<(PathBuf, Value)>,
    errors: &mut Vec<String>,
) {
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
pub(super) fn required_fields(doc: &Value) -> Vec<String> {
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
pub(super) fn check_generator_lists_everything(dashboards: &Path, errors: &mut Vec<String>) {
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

/// Builds the base and every overlay and cross-checks each output; the agent DaemonSet in it is
/// checked against `agent` when there is a built agent.
pub(super) fn kustomize_builds(
    root: &Path,
    manifests: &Path,
    agent: Option<&Description>,
) -> Result<Vec<String>, Outcome> {
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
        let problems = check_rendered(&docs, agent);
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

#[cfg(test)]
mod tests {
    use super::*;
    use eos_testkit::TempDir;

    #[test]
    fn kustomization_missing_files_are_reported() {
        let tmp = TempDir::new("xtask-kustomization-test");
        let k = tmp.join("kustomization.yaml");
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
    fn kustomize_versions() {
        assert_eq!(kustomize_major("v5.5.0"), Some(5));
        assert_eq!(
            kustomize_major("{Version:kustomize/v4.5.7 GitCommit:x}"),
            Some(4)
        );
        assert_eq!(kustomize_major("unknown"), None);
    }
}
