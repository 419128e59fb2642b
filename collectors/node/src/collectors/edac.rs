//! `edac`: memory controller error counters from `/sys/devices/system/edac/mc/mc*`.
//!
//! A machine without EDAC support has no such directory and simply reports nothing.

use std::path::Path;

use eos_exposition::{Encoder, Kind};

use crate::collector::{list_dir, read_trimmed, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "edac",
    default_enabled: true,
    build: |_cfg, _paths| Ok(Box::new(EdacCollector)),
};

struct EdacCollector;

/// Counters of one memory controller.
#[derive(Debug, PartialEq)]
struct Controller {
    id: String,
    ce: u64,
    ue: u64,
    ce_noinfo: u64,
    ue_noinfo: u64,
    /// (csrow number, correctable, uncorrectable)
    csrows: Vec<(String, u64, u64)>,
}

impl Collector for EdacCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let root = ctx.sys_path("devices/system/edac/mc");
        let mut controllers = Vec::new();
        for name in list_dir(&root)? {
            let Some(id) = numbered(&name, "mc") else {
                continue;
            };
            controllers.push(read_controller(&root.join(&name), id)?);
        }
        write(enc, &controllers);
        Ok(())
    }
}

/// The number after `prefix` in a directory name such as `mc0` or `csrow12` (glob
/// `<prefix>[0-9]*`, as node_exporter matches them).
fn numbered<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = name.strip_prefix(prefix)?;
    if !rest.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest.get(..end)
}

/// Reads a required counter file.
fn counter(path: &Path) -> Result<u64, String> {
    let text = read_trimmed(path)?.ok_or_else(|| format!("{}: missing", path.display()))?;
    parse_count(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses one counter value.
fn parse_count(text: &str) -> Result<u64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("invalid counter {text:?}"))
}

fn read_controller(dir: &Path, id: &str) -> Result<Controller, String> {
    let mut c = Controller {
        id: id.to_string(),
        ce: counter(&dir.join("ce_count"))?,
        ce_noinfo: counter(&dir.join("ce_noinfo_count"))?,
        ue: counter(&dir.join("ue_count"))?,
        ue_noinfo: counter(&dir.join("ue_noinfo_count"))?,
        csrows: Vec::new(),
    };
    for name in list_dir(dir)? {
        let Some(row) = numbered(&name, "csrow") else {
            continue;
        };
        let row_dir = dir.join(&name);
        let ce = counter(&row_dir.join("ce_count"))?;
        let ue = counter(&row_dir.join("ue_count"))?;
        c.csrows.push((row.to_string(), ce, ue));
    }
    Ok(c)
}

fn write(enc: &mut Encoder<'_>, controllers: &[Controller]) {
    let mut fam = enc.family(
        "node_edac_correctable_errors_total",
        "Total correctable memory errors.",
        Kind::Counter,
    );
    for c in controllers {
        fam.sample(&[("controller", &c.id)], c.ce as f64);
    }
    let mut fam = enc.family(
        "node_edac_csrow_correctable_errors_total",
        "Total correctable memory errors for this csrow.",
        Kind::Counter,
    );
    for c in controllers {
        for (row, ce, _) in &c.csrows {
            fam.sample(&[("controller", &c.id), ("csrow", row)], *ce as f64);
        }
        fam.sample(
            &[("controller", &c.id), ("csrow", "unknown")],
            c.ce_noinfo as f64,
        );
    }
    let mut fam = enc.family(
        "node_edac_csrow_uncorrectable_errors_total",
        "Total uncorrectable memory errors for this csrow.",
        Kind::Counter,
    );
    for c in controllers {
        for (row, _, ue) in &c.csrows {
            fam.sample(&[("controller", &c.id), ("csrow", row)], *ue as f64);
        }
        fam.sample(
            &[("controller", &c.id), ("csrow", "unknown")],
            c.ue_noinfo as f64,
        );
    }
    let mut fam = enc.family(
        "node_edac_uncorrectable_errors_total",
        "Total uncorrectable memory errors.",
        Kind::Counter,
    );
    for c in controllers {
        fam.sample(&[("controller", &c.id)], c.ue as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_numbers() {
        assert_eq!(numbered("mc0", "mc"), Some("0"));
        assert_eq!(numbered("mc12x", "mc"), Some("12"));
        assert_eq!(numbered("mc", "mc"), None);
        assert_eq!(numbered("mcx", "mc"), None);
        assert_eq!(numbered("power", "mc"), None);
        assert_eq!(numbered("csrow3", "csrow"), Some("3"));
    }

    #[test]
    fn counters() {
        assert_eq!(parse_count("5\n").unwrap(), 5);
        assert!(parse_count("").is_err());
        assert!(parse_count("-1").is_err());
    }

    #[test]
    fn reads_a_tree() {
        let t = crate::collectors::test_tree::TestTree::new("edac");
        t.write("mc0/ce_count", "1\n")
            .write("mc0/ce_noinfo_count", "2\n")
            .write("mc0/ue_count", "5\n")
            .write("mc0/ue_noinfo_count", "6\n")
            .write("mc0/csrow0/ce_count", "3\n")
            .write("mc0/csrow0/ue_count", "4\n");
        let mc = t.path().join("mc0");
        assert_eq!(
            read_controller(&mc, "0").unwrap(),
            Controller {
                id: "0".into(),
                ce: 1,
                ue: 5,
                ce_noinfo: 2,
                ue_noinfo: 6,
                csrows: vec![("0".into(), 3, 4)],
            }
        );
        t.write("mc0/csrow0/ue_count", "x\n");
        let e = read_controller(&mc, "0").unwrap_err();
        assert!(e.contains("csrow0/ue_count"), "{e}");
        std::fs::remove_file(mc.join("ce_count")).unwrap();
        assert!(read_controller(&mc, "0").is_err());
    }
}
