//! A stream's labels, Promtail's conventions: `namespace`, `pod`, `container`, `node_name`,
//! `stream` and `job="<namespace>/<container>"`, plus the configured pod labels (at most 8)
//! and, when asked for, a `level` taken from the line. The count stays bounded: a container
//! has at most 2 streams times 7 levels of label sets.

use crate::discover::ContainerDir;
use crate::Stream;
use std::collections::HashMap;
use std::sync::Arc;

/// Where a `level` label comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LevelFrom {
    None,
    /// A JSON line's `level`, `lvl` or `severity` key.
    Json,
    /// A logfmt line's `level=` or `lvl=`.
    Logfmt,
}

impl LevelFrom {
    /// From the config's `level_from` (validated: empty, `json` or `logfmt`).
    pub fn parse(s: &str) -> LevelFrom {
        match s {
            "json" => LevelFrom::Json,
            "logfmt" => LevelFrom::Logfmt,
            _ => LevelFrom::None,
        }
    }
}

/// One container's label sets, built once and shared by its entries.
#[derive(Debug)]
pub struct StreamLabels {
    base: Vec<(String, String)>,
    cache: HashMap<(Stream, Option<&'static str>), Arc<str>>,
}

impl StreamLabels {
    /// The labels of `dir`'s streams on `node`, with `pod_labels` (already sanitised names
    /// and their values).
    pub fn new(dir: &ContainerDir, node: &str, pod_labels: Vec<(String, String)>) -> Self {
        let mut base = vec![
            ("container".to_string(), dir.container.clone()),
            (
                "job".to_string(),
                format!("{}/{}", dir.namespace, dir.container),
            ),
            ("namespace".to_string(), dir.namespace.clone()),
            ("node_name".to_string(), node.to_string()),
            ("pod".to_string(), dir.pod.clone()),
        ];
        base.extend(pod_labels.into_iter().filter(|(_, v)| !v.is_empty()));
        base.sort();
        StreamLabels {
            base,
            cache: HashMap::new(),
        }
    }

    /// The label string (`{container="app", ...}`) for one stream and level.
    pub fn get(&mut self, stream: Stream, level: Option<&'static str>) -> Arc<str> {
        let base = &self.base;
        self.cache
            .entry((stream, level))
            .or_insert_with(|| {
                let mut pairs: Vec<(&str, &str)> =
                    base.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                pairs.push(("stream", stream.as_str()));
                if let Some(l) = level {
                    pairs.push(("level", l));
                }
                pairs.sort();
                crate::loki::labels(&pairs).into()
            })
            .clone()
    }
}

/// The line's level, normalised to one of `trace`, `debug`, `info`, `warn`, `error`,
/// `fatal` (anything else: no label, so a stray value cannot add streams).
pub fn level(line: &str, from: LevelFrom) -> Option<&'static str> {
    let raw = match from {
        LevelFrom::None => return None,
        LevelFrom::Json => json_level(line)?,
        LevelFrom::Logfmt => logfmt_level(line)?,
    };
    normalise(raw)
}

fn json_level(line: &str) -> Option<&str> {
    let t = line.trim_start();
    if !t.starts_with('{') {
        return None;
    }
    for key in ["\"level\"", "\"lvl\"", "\"severity\""] {
        if let Some(at) = t.find(key) {
            let rest = t[at + key.len()..]
                .trim_start()
                .strip_prefix(':')?
                .trim_start();
            let rest = rest.strip_prefix('"')?;
            return rest.split('"').next();
        }
    }
    None
}

fn logfmt_level(line: &str) -> Option<&str> {
    line.split_ascii_whitespace().find_map(|kv| {
        let v = kv
            .strip_prefix("level=")
            .or_else(|| kv.strip_prefix("lvl="))?;
        Some(v.trim_matches('"'))
    })
}

fn normalise(raw: &str) -> Option<&'static str> {
    let l = raw.to_ascii_lowercase();
    Some(match l.as_str() {
        "trace" | "trc" => "trace",
        "debug" | "dbg" => "debug",
        "info" | "inf" | "information" | "notice" => "info",
        "warn" | "wrn" | "warning" => "warn",
        "error" | "err" | "eror" => "error",
        "fatal" | "ftl" | "crit" | "critical" | "panic" | "emerg" | "alert" => "fatal",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn promtail_labels() {
        let dir = ContainerDir {
            namespace: "shop".into(),
            pod: "web-1".into(),
            uid: "u".into(),
            container: "app".into(),
        };
        let mut l = StreamLabels::new(&dir, "n1", vec![("app".into(), "web".into())]);
        assert_eq!(
            &*l.get(Stream::Stderr, Some("warn")),
            r#"{app="web", container="app", job="shop/app", level="warn", namespace="shop", node_name="n1", pod="web-1", stream="stderr"}"#
        );
        let a = l.get(Stream::Stdout, None);
        assert!(Arc::ptr_eq(&a, &l.get(Stream::Stdout, None)), "built once");
    }

    #[test]
    fn levels() {
        let j = LevelFrom::Json;
        assert_eq!(
            level(r#"{"ts":1,"level":"WARNING","msg":"x"}"#, j),
            Some("warn")
        );
        assert_eq!(level(r#"{"severity": "error"}"#, j), Some("error"));
        assert_eq!(level(r#"{"level":"chatty"}"#, j), None);
        assert_eq!(level("level=info", j), None);
        let f = LevelFrom::Logfmt;
        assert_eq!(level(r#"ts=1 level=debug msg="a b""#, f), Some("debug"));
        assert_eq!(level(r#"lvl="crit""#, f), Some("fatal"));
        assert_eq!(level("no level here", f), None);
        assert_eq!(level("level=info", LevelFrom::None), None);
    }
}
