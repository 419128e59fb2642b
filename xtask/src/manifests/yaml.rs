//! Reading the repository's files: walking directories, loading every document of a YAML
//! file, and small accessors for `serde_yaml_ng::Value` trees.

use serde::Deserialize;
use serde_yaml_ng::Value;
use std::path::{Path, PathBuf};

pub(super) fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        // Symlinks are not followed: the node module's sysfs fixtures link back up the tree,
        // as the real sysfs does, and following them never ends.
        if entry.file_type()?.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

pub(super) fn has_ext(p: &Path, exts: &[&str]) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.contains(&e))
}

pub(super) fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// Every document of a YAML file (empty documents left out).
pub(super) fn load_yaml(path: &Path) -> Result<Vec<Value>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    parse_yaml_docs(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub(super) fn parse_yaml_docs(text: &str) -> Result<Vec<Value>, String> {
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
pub(super) fn get<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a Value> {
    keys.iter().try_fold(v, |v, k| v.get(*k))
}

pub(super) fn get_str<'a>(v: &'a Value, keys: &[&str]) -> Option<&'a str> {
    get(v, keys).and_then(Value::as_str)
}

pub(super) fn seq(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_sequence).map_or(&[], |s| s.as_slice())
}

pub(super) fn string_list(v: Option<&Value>) -> Vec<String> {
    seq(v)
        .iter()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

pub(super) fn mapping_keys(v: &Value) -> Vec<String> {
    v.as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
