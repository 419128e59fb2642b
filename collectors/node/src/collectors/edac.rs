//! `edac`: memory controller error counters from `/sys/devices/system/edac/mc/mc*`, as
//! node_exporter 1.12: per controller, per csrow (`csrow="unknown"` for errors the
//! controller could not attribute) and per csrow channel with the channel's DIMM label
//! (`csrow*/ch<N>_{ce,ue}_count`, `ch<N>_dimm_label`).
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
    csrows: Vec<Csrow>,
}

/// Counters of one chip-select row.
#[derive(Debug, PartialEq)]
struct Csrow {
    id: String,
    ce: u64,
    ue: u64,
    channels: Vec<Channel>,
}

/// Counters of one channel of a csrow.
#[derive(Debug, PartialEq)]
struct Channel {
    id: String,
    /// `ch<N>_dimm_label` as node_exporter shows it (see [`dimm_label`]).
    dimm_label: String,
    ce: u64,
    /// Absent on some drivers (e.g. HPE ProLiant Gen10), then not exported.
    ue: Option<u64>,
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
        c.csrows.push(Csrow {
            id: row.to_string(),
            ce: counter(&row_dir.join("ce_count"))?,
            ue: counter(&row_dir.join("ue_count"))?,
            channels: read_channels(&row_dir)?,
        });
    }
    Ok(c)
}

/// The channels of a csrow directory: every `ch<N>_ce_count` (required to be a number),
/// with `ch<N>_ue_count` when the driver has it and the DIMM label.
fn read_channels(row_dir: &Path) -> Result<Vec<Channel>, String> {
    let mut out = Vec::new();
    for name in list_dir(row_dir)? {
        let Some(id) = channel_of(&name) else {
            continue;
        };
        let ue_path = row_dir.join(format!("ch{id}_ue_count"));
        let ue = match read_trimmed(&ue_path)? {
            Some(text) => {
                Some(parse_count(&text).map_err(|e| format!("{}: {e}", ue_path.display()))?)
            }
            None => None,
        };
        let label = read_trimmed(&row_dir.join(format!("ch{id}_dimm_label")))?;
        out.push(Channel {
            id: id.to_string(),
            dimm_label: dimm_label(label.as_deref()),
            ce: counter(&row_dir.join(&name))?,
            ue,
        });
    }
    Ok(out)
}

/// The channel number of a `ch<N>_ce_count` file name.
fn channel_of(file: &str) -> Option<&str> {
    let n = file.strip_prefix("ch")?.strip_suffix("_ce_count")?;
    (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())).then_some(n)
}

/// The `dimm_label` label as node_exporter 1.12 writes it: `unknown` without a label file,
/// else the label without `#` and with `_` before `csrow` and `channel`, so the kernel's
/// default `mc#0csrow#2channel#1` reads `mc0_csrow2_channel1`.
fn dimm_label(raw: Option<&str>) -> String {
    match raw {
        None => "unknown".to_string(),
        Some(label) => label
            .replace('#', "")
            .replace("csrow", "_csrow")
            .replace("channel", "_channel"),
    }
}

/// The labels of a channel's series, sorted by name as node_exporter writes them.
fn channel_labels<'a>(
    c: &'a Controller,
    r: &'a Csrow,
    ch: &'a Channel,
) -> [(&'static str, &'a str); 4] {
    [
        ("channel", &ch.id),
        ("controller", &c.id),
        ("csrow", &r.id),
        ("dimm_label", &ch.dimm_label),
    ]
}

fn write(enc: &mut Encoder<'_>, controllers: &[Controller]) {
    let mut fam = enc.family(
        "node_edac_channel_correctable_errors_total",
        "Total correctable memory errors for this channel.",
        Kind::Counter,
    );
    for c in controllers {
        for r in &c.csrows {
            for ch in &r.channels {
                fam.sample(&channel_labels(c, r, ch), ch.ce as f64);
            }
        }
    }
    let mut fam = enc.family(
        "node_edac_channel_uncorrectable_errors_total",
        "Total uncorrectable memory errors for this channel.",
        Kind::Counter,
    );
    for c in controllers {
        for r in &c.csrows {
            for ch in &r.channels {
                if let Some(ue) = ch.ue {
                    fam.sample(&channel_labels(c, r, ch), ue as f64);
                }
            }
        }
    }
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
        for r in &c.csrows {
            fam.sample(&[("controller", &c.id), ("csrow", &r.id)], r.ce as f64);
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
        for r in &c.csrows {
            fam.sample(&[("controller", &c.id), ("csrow", &r.id)], r.ue as f64);
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
    fn channel_files_and_labels() {
        assert_eq!(channel_of("ch0_ce_count"), Some("0"));
        assert_eq!(channel_of("ch12_ce_count"), Some("12"));
        assert_eq!(channel_of("ch_ce_count"), None);
        assert_eq!(channel_of("chx_ce_count"), None);
        assert_eq!(channel_of("ch0_ue_count"), None);
        assert_eq!(channel_of("ch0_dimm_label"), None);
        assert_eq!(dimm_label(None), "unknown");
        assert_eq!(
            dimm_label(Some("mc#0csrow#2channel#1")),
            "mc0_csrow2_channel1"
        );
        assert_eq!(
            dimm_label(Some("CPU_SrcID#0_Ha#0_Chan#0_DIMM#0")),
            "CPU_SrcID0_Ha0_Chan0_DIMM0"
        );
        assert_eq!(dimm_label(Some("DIMM_A1")), "DIMM_A1");
        assert_eq!(dimm_label(Some("")), "");
    }

    #[test]
    fn reads_a_tree() {
        let t = crate::collectors::test_tree::TestTree::new("edac");
        t.write("mc0/ce_count", "1\n")
            .write("mc0/ce_noinfo_count", "2\n")
            .write("mc0/ue_count", "5\n")
            .write("mc0/ue_noinfo_count", "6\n")
            .write("mc0/csrow0/ce_count", "3\n")
            .write("mc0/csrow0/ue_count", "4\n")
            .write("mc0/csrow0/ch0_ce_count", "2\n")
            .write("mc0/csrow0/ch0_ue_count", "1\n")
            .write("mc0/csrow0/ch0_dimm_label", "mc#0csrow#0channel#0\n")
            // No ch1_ue_count (HPE Gen10) and no label file.
            .write("mc0/csrow0/ch1_ce_count", "1\n");
        let mc = t.path().join("mc0");
        assert_eq!(
            read_controller(&mc, "0").unwrap(),
            Controller {
                id: "0".into(),
                ce: 1,
                ue: 5,
                ce_noinfo: 2,
                ue_noinfo: 6,
                csrows: vec![Csrow {
                    id: "0".into(),
                    ce: 3,
                    ue: 4,
                    channels: vec![
                        Channel {
                            id: "0".into(),
                            dimm_label: "mc0_csrow0_channel0".into(),
                            ce: 2,
                            ue: Some(1),
                        },
                        Channel {
                            id: "1".into(),
                            dimm_label: "unknown".into(),
                            ce: 1,
                            ue: None,
                        },
                    ],
                }],
            }
        );
        t.write("mc0/csrow0/ch1_ce_count", "-\n");
        let e = read_controller(&mc, "0").unwrap_err();
        assert!(e.contains("csrow0/ch1_ce_count"), "{e}");
        t.write("mc0/csrow0/ch1_ce_count", "1\n")
            .write("mc0/csrow0/ch0_ue_count", "x\n");
        let e = read_controller(&mc, "0").unwrap_err();
        assert!(e.contains("csrow0/ch0_ue_count"), "{e}");
        t.write("mc0/csrow0/ch0_ue_count", "1\n")
            .write("mc0/csrow0/ue_count", "x\n");
        let e = read_controller(&mc, "0").unwrap_err();
        assert!(e.contains("csrow0/ue_count"), "{e}");
        std::fs::remove_file(mc.join("ce_count")).unwrap();
        assert!(read_controller(&mc, "0").is_err());
    }

    #[test]
    fn writes_node_exporter_families() {
        let c = Controller {
            id: "0".into(),
            ce: 1,
            ue: 5,
            ce_noinfo: 2,
            ue_noinfo: 6,
            csrows: vec![Csrow {
                id: "0".into(),
                ce: 3,
                ue: 4,
                channels: vec![Channel {
                    id: "1".into(),
                    dimm_label: "DIMM_A1".into(),
                    ce: 7,
                    ue: None,
                }],
            }],
        };
        let mut buf = Vec::new();
        let mut enc = Encoder::new(&mut buf, eos_exposition::Format::Text);
        write(&mut enc, &[c]);
        let out = String::from_utf8(buf).unwrap();
        assert!(out.contains(
            "node_edac_channel_correctable_errors_total{channel=\"1\",controller=\"0\",csrow=\"0\",dimm_label=\"DIMM_A1\"} 7\n"
        ), "{out}");
        // No ue count for the channel: the family has no sample.
        assert!(
            !out.contains("node_edac_channel_uncorrectable_errors_total{"),
            "{out}"
        );
        assert!(out.contains("node_edac_csrow_uncorrectable_errors_total{controller=\"0\",csrow=\"unknown\"} 6\n"), "{out}");
    }
}
