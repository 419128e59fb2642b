//! `watchdog`: hardware watchdog state from `/sys/class/watchdog/<name>/`.
//!
//! Each numeric attribute becomes `node_watchdog_<attribute>` when the driver provides it;
//! the text attributes label `node_watchdog_info`. No `/sys/class/watchdog` means no data.

use std::path::Path;

use eos_exposition::{Encoder, Kind};

use crate::collector::{list_dir, parse_i64, read_trimmed, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "watchdog",
    default_enabled: true,
    build: |_cfg, _paths| Ok(Box::new(WatchdogCollector)),
};

struct WatchdogCollector;

/// Numeric attributes: (file, metric name), in metric-name order.
const NUMERIC: [(&str, &str); 7] = [
    ("access_cs0", "node_watchdog_access_cs0"),
    ("bootstatus", "node_watchdog_bootstatus"),
    ("fw_version", "node_watchdog_fw_version"),
    ("nowayout", "node_watchdog_nowayout"),
    ("pretimeout", "node_watchdog_pretimeout_seconds"),
    ("timeleft", "node_watchdog_timeleft_seconds"),
    ("timeout", "node_watchdog_timeout_seconds"),
];

/// Text attributes of `node_watchdog_info` besides `name`, in label order.
const TEXT: [&str; 5] = [
    "identity",
    "options",
    "pretimeout_governor",
    "state",
    "status",
];

/// One watchdog device.
#[derive(Debug, PartialEq)]
struct Watchdog {
    name: String,
    numeric: [Option<i64>; NUMERIC.len()],
    text: [String; TEXT.len()],
}

impl Collector for WatchdogCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let root = ctx.sys_path("class/watchdog");
        let mut dogs = Vec::new();
        for name in list_dir(&root)? {
            dogs.push(read_watchdog(&root.join(&name), name)?);
        }
        let mut info_written = false;
        for (i, (file, metric)) in NUMERIC.iter().enumerate() {
            // Families go out in name order; `info` sorts among the numeric ones.
            if !info_written && *metric > "node_watchdog_info" {
                write_info(enc, &dogs);
                info_written = true;
            }
            let help = format!("Value of /sys/class/watchdog/<watchdog>/{file}");
            let mut fam = enc.family(metric, &help, Kind::Gauge);
            for d in &dogs {
                if let Some(v) = d.numeric.get(i).copied().flatten() {
                    fam.sample(&[("name", &d.name)], v as f64);
                }
            }
        }
        Ok(())
    }
}

/// Writes `node_watchdog_info`: the text attributes as labels.
fn write_info(enc: &mut Encoder<'_>, dogs: &[Watchdog]) {
    let mut fam = enc.family(
        "node_watchdog_info",
        "Info of /sys/class/watchdog/<watchdog>",
        Kind::Gauge,
    );
    for d in dogs {
        let [identity, options, governor, state, status] = &d.text;
        fam.sample(
            &[
                ("identity", identity),
                ("name", &d.name),
                ("options", options),
                ("pretimeout_governor", governor),
                ("state", state),
                ("status", status),
            ],
            1.0,
        );
    }
}

/// Reads one device directory; attributes the driver lacks are left out.
fn read_watchdog(dir: &Path, name: String) -> Result<Watchdog, String> {
    let mut numeric = [None; NUMERIC.len()];
    for (slot, (file, _)) in numeric.iter_mut().zip(NUMERIC) {
        let p = dir.join(file);
        if let Some(v) = read_trimmed(&p)? {
            *slot = Some(parse_i64(&v, &p.display())?);
        }
    }
    let mut text: [String; TEXT.len()] = Default::default();
    for (slot, file) in text.iter_mut().zip(TEXT) {
        if let Some(v) = read_trimmed(&dir.join(file))? {
            *slot = v;
        }
    }
    Ok(Watchdog {
        name,
        numeric,
        text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_tree::TestTree;

    #[test]
    fn reads_a_device() {
        let t = TestTree::new("watchdog");
        t.write("watchdog0/bootstatus", "1\n")
            .write("watchdog0/options", "0x8380\n")
            .write("watchdog0/identity", "Software Watchdog\n")
            .write("watchdog0/state", "active\n")
            .write("watchdog0/timeout", "60\n")
            .write("watchdog0/timeleft", "45\n");
        let d = read_watchdog(&t.path().join("watchdog0"), "watchdog0".into()).unwrap();
        assert_eq!(
            d.numeric,
            [None, Some(1), None, None, None, Some(45), Some(60)]
        );
        assert_eq!(
            d.text,
            ["Software Watchdog", "0x8380", "", "active", ""].map(String::from)
        );
        t.write("watchdog0/nowayout", "yes\n");
        let e = read_watchdog(&t.path().join("watchdog0"), "watchdog0".into()).unwrap_err();
        assert!(e.contains("nowayout"), "{e}");
    }
}
