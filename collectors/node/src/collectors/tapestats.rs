//! `tapestats`: SCSI tape drive statistics from `/sys/class/scsi_tape/st<N>/stats/`, as
//! node_exporter 1.12 reads them through procfs (`node_tape_*`, label `device`).
//!
//! - Only the `st<N>` entries are drives; the `nst<N>` (no rewind) and mode variants
//!   (`st<N>a`, `st<N>l`, `st<N>m`) are the same drive again.
//! - A statistic whose file is absent reads as 0, as in procfs (so does one the kernel
//!   refuses to read).
//! - Drives matching `--collector.tapestats.ignored-devices` are left out.
//! - No `/sys/class/scsi_tape` (no `st` driver loaded) means no data. A drive without a
//!   `stats` directory (older kernels), or a statistic that is not a number, fails
//!   the collector (node_exporter then has no data for any drive either).

use std::ffi::CStr;
use std::path::Path;

use eos_exposition::{Encoder, Kind};

use crate::collector::parse_sysfs_uint;
use crate::collector::{list_dir, Collector, CollectorDef, Ctx, SysDir};
use crate::pattern::Pattern;
use crate::settings::{CollectorSettings, Flag};
use serde::{Deserialize, Serialize};

pub(crate) const DEF: CollectorDef<Settings> = CollectorDef {
    name: "tapestats",
    default_enabled: true,
    build: |settings, _paths| {
        Ok(Box::new(TapestatsCollector {
            ignored: settings.ignored_devices.clone(),
        }))
    },
};

/// `modules.node.tapestats`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settings {
    /// Drives not reported (`--collector.tapestats.ignored-devices`).
    pub(crate) ignored_devices: Pattern,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ignored_devices: Pattern::new_static("^$"),
        }
    }
}

impl CollectorSettings for Settings {
    const FLAG_PREFIXES: &'static [&'static str] = &["tapestats"];
    const HELP: &'static str =
        "  --collector.tapestats.ignored-devices=RE    tape drives left out (default ^$)
";

    fn apply_flag(&mut self, flag: &Flag<'_>) -> Result<bool, String> {
        match flag.key {
            "ignored-devices" => self.ignored_devices = flag.pattern()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

struct TapestatsCollector {
    ignored: Pattern,
}

/// `stats/` files: (file, family, HELP, counter?, scale), in family name order.
const STATS: [(&CStr, &str, &str, bool, f64); 10] = [
    (
        c"in_flight",
        "node_tape_io_now",
        "The number of I/Os currently outstanding to this device.",
        false,
        1.0,
    ),
    (
        c"other_cnt",
        "node_tape_io_others_total",
        "The number of I/Os issued to the tape drive other than read or write commands. The time taken to complete these commands uses the following calculation io_time_seconds_total-read_time_seconds_total-write_time_seconds_total",
        true,
        1.0,
    ),
    (
        c"io_ns",
        "node_tape_io_time_seconds_total",
        "The amount of time spent waiting for all I/O to complete (including read and write). This includes tape movement commands such as seeking between file or set marks and implicit tape movement such as when rewind on close tape devices are used.",
        true,
        NS,
    ),
    (
        c"read_byte_cnt",
        "node_tape_read_bytes_total",
        "The number of bytes read from the tape drive.",
        true,
        1.0,
    ),
    (
        c"read_ns",
        "node_tape_read_time_seconds_total",
        "The amount of time spent waiting for read requests to complete.",
        true,
        NS,
    ),
    (
        c"read_cnt",
        "node_tape_reads_completed_total",
        "The number of read requests issued to the tape drive.",
        true,
        1.0,
    ),
    // "thean" (sic): node_exporter's HELP.
    (
        c"resid_cnt",
        "node_tape_residual_total",
        "The number of times during a read or write we found the residual amount to be non-zero. This should mean that a program is issuing a read larger thean the block size on tape. For write not all data made it to tape.",
        true,
        1.0,
    ),
    (
        c"write_ns",
        "node_tape_write_time_seconds_total",
        "The amount of time spent waiting for write requests to complete.",
        true,
        NS,
    ),
    (
        c"write_cnt",
        "node_tape_writes_completed_total",
        "The number of write requests issued to the tape drive.",
        true,
        1.0,
    ),
    (
        c"write_byte_cnt",
        "node_tape_written_bytes_total",
        "The number of bytes written to the tape drive.",
        true,
        1.0,
    ),
];

/// Nanoseconds to seconds, multiplied as node_exporter does (not divided by 1e9, which can
/// differ in the last bit).
const NS: f64 = 0.000000001;

/// One drive: its name and the values of [`STATS`].
#[derive(Debug, PartialEq)]
struct Tape {
    name: String,
    stats: [u64; STATS.len()],
}

impl Collector for TapestatsCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let base = ctx.sys_path("class/scsi_tape");
        let mut tapes = Vec::new();
        let mut buf = Vec::with_capacity(64);
        for name in list_dir(&base)? {
            if !is_drive(&name) || self.ignored.is_match(&name) {
                continue;
            }
            ctx.check_deadline("tape drives")?;
            tapes.push(read_tape(&base.join(&name), name, &mut buf)?);
        }
        write(enc, &tapes);
        Ok(())
    }
}

/// Whether a `scsi_tape` entry is a drive (`st<N>`) rather than one of its variants.
fn is_drive(name: &str) -> bool {
    name.strip_prefix("st")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Reads `<dir>/stats/`.
fn read_tape(dir: &Path, name: String, buf: &mut Vec<u8>) -> Result<Tape, String> {
    let stats_path = dir.join("stats");
    let stats =
        SysDir::open(&stats_path)?.ok_or_else(|| format!("{}: missing", stats_path.display()))?;
    let mut values = [0; STATS.len()];
    for (slot, (file, ..)) in values.iter_mut().zip(STATS) {
        if let Some(text) = stats.read(file, buf)? {
            *slot = parse_sysfs_uint(text).map_err(|e| {
                format!(
                    "parsing {}/{}: {e}",
                    stats_path.display(),
                    file.to_string_lossy()
                )
            })?;
        }
    }
    Ok(Tape {
        name,
        stats: values,
    })
}

fn write(enc: &mut Encoder<'_>, tapes: &[Tape]) {
    for (col, (_, family, help, counter, scale)) in STATS.iter().enumerate() {
        let kind = if *counter { Kind::Counter } else { Kind::Gauge };
        let mut fam = enc.family(family, help, kind);
        for t in tapes {
            if let Some(v) = t.stats.get(col) {
                fam.sample(&[("device", &t.name)], *v as f64 * scale);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_tree::TestTree;

    /// No tape drive here: the tree copies the layout of procfs's `scsi_tape/st0` fixture.
    fn st0(t: &TestTree, dir: &str) {
        for (file, v) in [
            ("in_flight", "1"),
            ("io_ns", "9247011087720"),
            ("other_cnt", "1409"),
            ("read_byte_cnt", "979383912"),
            ("read_cnt", "3741"),
            ("read_ns", "33788355744"),
            ("resid_cnt", "19"),
            ("write_byte_cnt", "1496246784000"),
            ("write_cnt", "53772916"),
            ("write_ns", "5233597394395"),
        ] {
            t.write(&format!("{dir}/stats/{file}"), &format!("{v}\n"));
        }
    }

    #[test]
    fn drives_not_variants() {
        assert!(is_drive("st0"));
        assert!(is_drive("st12"));
        for name in ["nst0", "st0a", "st0l", "nst0m", "st", "st-1", "sta"] {
            assert!(!is_drive(name), "{name}");
        }
    }

    #[test]
    fn reads_stats() {
        let t = TestTree::new("tape-st0");
        st0(&t, "st0");
        let tape = read_tape(&t.path().join("st0"), "st0".into(), &mut Vec::new()).unwrap();
        assert_eq!(
            tape.stats,
            [
                1,
                1409,
                9_247_011_087_720,
                979_383_912,
                33_788_355_744,
                3741,
                19,
                5_233_597_394_395,
                53_772_916,
                1_496_246_784_000
            ]
        );
    }

    #[test]
    fn odd_drives() {
        let t = TestTree::new("tape-odd");
        t.write("st1/stats/read_cnt", "7\n");
        let tape = read_tape(&t.path().join("st1"), "st1".into(), &mut Vec::new()).unwrap();
        assert_eq!(
            tape.stats.iter().sum::<u64>(),
            7,
            "absent statistics read as 0"
        );
        t.write("st1/stats/write_cnt", "lots\n");
        let e = read_tape(&t.path().join("st1"), "st1".into(), &mut Vec::new()).unwrap_err();
        assert!(
            e.contains("st1/stats/write_cnt: invalid number \"lots\""),
            "{e}"
        );
        t.write("st2/dev", "9:0\n");
        let e = read_tape(&t.path().join("st2"), "st2".into(), &mut Vec::new()).unwrap_err();
        assert!(e.ends_with("st2/stats: missing"), "{e}");
    }

    #[test]
    fn collects_drives_only_and_not_ignored_ones() {
        for pair in STATS.windows(2) {
            assert!(pair[0].1 < pair[1].1, "{} before {}", pair[0].1, pair[1].1);
        }
        let t = TestTree::new("tape-collect");
        let paths = t.as_sysfs();
        let scrape = |c: &TapestatsCollector| {
            let mut buf = Vec::new();
            let mut out = Vec::new();
            let mut enc = Encoder::new(&mut out, eos_exposition::Format::Text);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            c.update(&mut enc, &mut Ctx::new(&paths, deadline, &mut buf))
                .map(|()| String::from_utf8(out).unwrap())
        };
        let all = TapestatsCollector {
            ignored: Settings::default().ignored_devices,
        };
        // No scsi_tape class (no st driver): no data, no error.
        assert_eq!(scrape(&all).unwrap(), "");
        st0(&t, "class/scsi_tape/st0");
        st0(&t, "class/scsi_tape/nst0");
        t.write("class/scsi_tape/st1/stats/read_cnt", "5\n")
            .write("class/scsi_tape/st2/dev", "9:2\n");
        let e = scrape(&all).unwrap_err();
        assert!(e.ends_with("st2/stats: missing"), "{e}");
        let mut settings = Settings::default();
        let flag = Flag {
            name: "collector.tapestats.ignored-devices",
            key: "ignored-devices",
            negated: false,
            value: Some("^st2$"),
        };
        assert!(settings.apply_flag(&flag).unwrap());
        let some = TapestatsCollector {
            ignored: settings.ignored_devices,
        };
        let out = scrape(&some).unwrap();
        assert!(
            out.contains("# TYPE node_tape_io_now gauge\nnode_tape_io_now{device=\"st0\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("node_tape_reads_completed_total{device=\"st1\"} 5\n"),
            "{out}"
        );
        assert!(
            out.contains("node_tape_written_bytes_total{device=\"st0\"} 1.496246784e+12\n"),
            "{out}"
        );
        assert!(!out.contains("nst0") && !out.contains("st2"), "{out}");
        let seconds = out
            .lines()
            .find_map(|l| l.strip_prefix("node_tape_io_time_seconds_total{device=\"st0\"} "))
            .unwrap();
        assert!(
            (seconds.parse::<f64>().unwrap() - 9247.01108772).abs() < 1e-9,
            "{seconds}"
        );
    }
}
