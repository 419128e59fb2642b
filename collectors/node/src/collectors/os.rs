//! `os`: `node_os_info` and `node_os_version` from the os-release file
//! (`<rootfs>/etc/os-release`, else `<rootfs>/usr/lib/os-release`).
//!
//! The file changes only on upgrades, so the parsed result is kept and re-parsed only when
//! the file's path or mtime changes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use eos_exposition::{Encoder, Kind};
use eos_module::civil;

use crate::collector::{io_error, is_not_found, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "os",
    default_enabled: true,
    build: |_cfg, _paths| Ok(Box::new(OsCollector::default())),
};

const CANDIDATES: [&str; 2] = ["etc/os-release", "usr/lib/os-release"];

const INFO_HELP: &str = "A metric with a constant '1' value labeled by build_id, id, id_like, \
image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, \
version_id.";

/// The os-release keys exported as labels of `node_os_info`, in label (alphabetical) order.
const INFO_KEYS: [(&str, &str); 12] = [
    ("build_id", "BUILD_ID"),
    ("id", "ID"),
    ("id_like", "ID_LIKE"),
    ("image_id", "IMAGE_ID"),
    ("image_version", "IMAGE_VERSION"),
    ("name", "NAME"),
    ("pretty_name", "PRETTY_NAME"),
    ("variant", "VARIANT"),
    ("variant_id", "VARIANT_ID"),
    ("version", "VERSION"),
    ("version_codename", "VERSION_CODENAME"),
    ("version_id", "VERSION_ID"),
];

/// What one os-release file says, ready to write.
#[derive(Debug, PartialEq)]
struct OsRelease {
    vars: HashMap<String, String>,
    /// The major.minor part of VERSION_ID, when it starts with a number.
    version: Option<f64>,
    /// SUPPORT_END as a Unix timestamp.
    support_end: Option<i64>,
}

impl OsRelease {
    fn get(&self, key: &str) -> &str {
        self.vars.get(key).map(String::as_str).unwrap_or("")
    }
}

#[derive(Default)]
struct OsCollector {
    cache: Mutex<Option<(PathBuf, SystemTime, OsRelease)>>,
}

impl Collector for OsCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let mut found = None;
        for rel in CANDIDATES {
            let path = ctx.paths.rootfs.join(rel);
            match std::fs::metadata(&path) {
                Ok(meta) => {
                    found = Some((path, meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)));
                    break;
                }
                Err(e) if is_not_found(&e) => continue,
                Err(e) => return Err(io_error(&path, &e)),
            }
        }
        // No os-release file at all: nothing to report (node_exporter: no data).
        let Some((path, mtime)) = found else {
            return Ok(());
        };
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = matches!(&*cache, Some((p, t, _)) if *p == path && *t == mtime);
        if !fresh {
            let text = ctx.read(&path)?;
            let parsed = parse_os_release(text).map_err(|e| format!("{}: {e}", path.display()))?;
            *cache = Some((path, mtime, parsed));
        }
        if let Some((_, _, os)) = &*cache {
            write(enc, os);
        }
        Ok(())
    }
}

fn write(enc: &mut Encoder<'_>, os: &OsRelease) {
    let labels: Vec<(&str, &str)> = INFO_KEYS.iter().map(|(l, k)| (*l, os.get(k))).collect();
    enc.single("node_os_info", INFO_HELP, Kind::Gauge, &labels, 1.0);
    if let Some(end) = os.support_end {
        enc.single(
            "node_os_support_end_timestamp_seconds",
            "Metric containing the end-of-life date timestamp of the OS.",
            Kind::Gauge,
            &[],
            end as f64,
        );
    }
    if let Some(v) = os.version.filter(|v| *v > 0.0) {
        enc.single(
            "node_os_version",
            "Metric containing the major.minor part of the OS version.",
            Kind::Gauge,
            &[
                ("id", os.get("ID")),
                ("id_like", os.get("ID_LIKE")),
                ("name", os.get("NAME")),
            ],
            v,
        );
    }
}

/// Parses an os-release file (shell-like `KEY=value` lines, see os-release(5)).
fn parse_os_release(text: &str) -> Result<OsRelease, String> {
    let mut vars = HashMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line).trim_start();
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected KEY=value, got {raw:?}", i + 1))?;
        if key.is_empty()
            || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            || key.starts_with(|c: char| c.is_ascii_digit())
        {
            return Err(format!("line {}: invalid key {key:?}", i + 1));
        }
        let value = unquote(value).map_err(|e| format!("line {}: {e}", i + 1))?;
        vars.insert(key.to_string(), value);
    }
    let version = vars.get("VERSION_ID").and_then(|v| major_minor(v));
    let support_end = match vars.get("SUPPORT_END") {
        Some(d) if !d.is_empty() => {
            Some(parse_date(d).ok_or_else(|| format!("SUPPORT_END: invalid date {d:?}"))?)
        }
        _ => None,
    };
    Ok(OsRelease {
        vars,
        version,
        support_end,
    })
}

/// Undoes shell quoting of one value: `"..."` with backslash escapes, `'...'` literally,
/// or a bare word (ending at an unescaped ` #` comment).
fn unquote(v: &str) -> Result<String, String> {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    match v.chars().next() {
        Some(q @ ('"' | '\'')) => {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                if c == q {
                    closed = true;
                    break;
                }
                if c == '\\' && q == '"' {
                    match chars.next() {
                        Some(n @ ('"' | '\\' | '$' | '`')) => out.push(n),
                        Some(n) => {
                            out.push('\\');
                            out.push(n);
                        }
                        None => return Err("unterminated escape".into()),
                    }
                } else {
                    out.push(c);
                }
            }
            if !closed {
                return Err(format!("unterminated quote in {v:?}"));
            }
            let rest = chars.as_str().trim();
            if !rest.is_empty() && !rest.starts_with('#') {
                return Err(format!("unexpected text after closing quote: {rest:?}"));
            }
        }
        _ => {
            let mut prev_space = false;
            while let Some(c) = chars.next() {
                match c {
                    '#' if prev_space => break,
                    '\\' => match chars.next() {
                        Some(n) => out.push(n),
                        None => return Err("unterminated escape".into()),
                    },
                    c => out.push(c),
                }
                prev_space = c.is_whitespace();
            }
            let trimmed = out.trim_end().len();
            out.truncate(trimmed);
        }
    }
    Ok(out)
}

/// The leading `major[.minor]` number of a VERSION_ID (`"22.04.3"` gives 22.04).
fn major_minor(v: &str) -> Option<f64> {
    let bytes = v.as_bytes();
    let mut end = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if end == 0 {
        return None;
    }
    if bytes.get(end) == Some(&b'.') {
        end += 1;
        end += bytes
            .get(end..)
            .unwrap_or_default()
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
    }
    v.get(..end)?.trim_end_matches('.').parse().ok()
}

/// Parses `YYYY-MM-DD` to the Unix time of that day's midnight UTC.
fn parse_date(s: &str) -> Option<i64> {
    let mut it = s.splitn(3, '-');
    let (y, m, d) = (it.next()?, it.next()?, it.next()?);
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, i64, i64) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    civil::is_valid_date(y, m, d).then(|| civil::days_from_civil(y, m, d) * 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = r#"PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"#;

    #[test]
    fn parses_debian() {
        let os = parse_os_release(DEBIAN).unwrap();
        assert_eq!(os.get("NAME"), "Debian GNU/Linux");
        assert_eq!(os.get("VERSION_CODENAME"), "bookworm");
        assert_eq!(os.get("ID_LIKE"), "");
        assert_eq!(os.version, Some(12.0));
        assert_eq!(os.support_end, None);
    }

    #[test]
    fn quoting_comments_and_escapes() {
        let os = parse_os_release(
            "# comment\n\nexport ID=ubuntu # trailing\nNAME='Ubuntu \"x\"'\nPRETTY_NAME=\"a \\\"b\\\" \\$c\"\nID_LIKE=a\\ b\n",
        )
        .unwrap();
        assert_eq!(os.get("ID"), "ubuntu");
        assert_eq!(os.get("NAME"), "Ubuntu \"x\"");
        assert_eq!(os.get("PRETTY_NAME"), "a \"b\" $c");
        assert_eq!(os.get("ID_LIKE"), "a b");
    }

    #[test]
    fn bad_lines_are_errors() {
        let e = parse_os_release("ID=debian\nNOEQUALS\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        assert!(parse_os_release("NAME=\"unterminated\n").is_err());
        assert!(parse_os_release("1KEY=x\n").is_err());
        assert!(parse_os_release("NAME=\"a\" junk\n").is_err());
        assert!(parse_os_release("SUPPORT_END=2024-13-01\n").is_err());
    }

    #[test]
    fn versions() {
        assert_eq!(major_minor("22.04"), Some(22.04));
        assert_eq!(major_minor("7.9.2009"), Some(7.9));
        assert_eq!(major_minor("1."), Some(1.0));
        assert_eq!(major_minor("rolling"), None);
        assert_eq!(major_minor(""), None);
    }

    #[test]
    fn support_end() {
        let os = parse_os_release("SUPPORT_END=2025-05-31\n").unwrap();
        assert_eq!(os.support_end, Some(1_748_649_600));
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2024-02-29"), Some(1_709_164_800));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2023-2-1"), None);
    }
}
