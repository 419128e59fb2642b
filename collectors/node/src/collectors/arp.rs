//! `arp`: neighbour-table entries per device, from `/proc/net/arp`.
//! `--collector.arp.device-include/exclude` select devices.

use eos_exposition::{Encoder, Kind};

use crate::collector::{Collector, CollectorDef, Ctx};
use crate::device_filter::DeviceFilter;
use crate::settings::{CollectorSettings, Flag};
use serde::{Deserialize, Serialize};

pub(crate) const DEF: CollectorDef<Settings> = CollectorDef {
    name: "arp",
    default_enabled: true,
    build: |settings, _paths| {
        Ok(Box::new(ArpCollector {
            devices: settings.0.clone(),
        }))
    },
};

/// `modules.node.arp`: `device_include` / `device_exclude` (mutually exclusive, as in node_exporter).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(transparent)]
pub(crate) struct Settings(pub(crate) DeviceFilter);

impl CollectorSettings for Settings {
    const FLAG_PREFIXES: &'static [&'static str] = &["arp"];
    const HELP: &'static str =
        "  --collector.arp.device-exclude=RE, --collector.arp.device-include=RE
";

    fn apply_flag(&mut self, flag: &Flag<'_>) -> Result<bool, String> {
        self.0.apply_flag(flag, &[])
    }

    fn validate(&self) -> Result<(), eos_module::ConfigIssue> {
        self.0.check_exclusive("arp")
    }
}

struct ArpCollector {
    devices: DeviceFilter,
}

impl Collector for ArpCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let path = ctx.proc_path("net/arp");
        let text = ctx.read(&path)?;
        let entries = parse_arp(text).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut fam = enc.family("node_arp_entries", "ARP entries by device", Kind::Gauge);
        for (device, n) in entries.iter().filter(|(d, _)| !self.devices.ignored(d)) {
            fam.sample(&[("device", device)], *n as f64);
        }
        Ok(())
    }
}

/// Counts the entries of `/proc/net/arp` per device (the last column), sorted by device.
fn parse_arp(text: &str) -> Result<Vec<(&str, u64)>, String> {
    let mut counts: Vec<(&str, u64)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split_ascii_whitespace();
        let Some(first) = fields.next() else {
            continue;
        };
        if first == "IP" {
            continue; // header
        }
        // IP address, HW type, Flags, HW address, Mask, Device
        let device = fields
            .nth(4)
            .ok_or_else(|| format!("line {}: expected 6 columns in {line:?}", i + 1))?;
        let device = fields.last().unwrap_or(device);
        match counts.iter_mut().find(|(d, _)| *d == device) {
            Some((_, n)) => *n += 1,
            None => counts.push((device, 1)),
        }
    }
    counts.sort_unstable_by(|a, b| a.0.cmp(b.0));
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_device() {
        let text = "IP address       HW type     Flags       HW address            Mask     Device
192.168.1.1      0x1         0x2         cc:aa:dd:ee:aa:bb     *        eth0
192.168.1.2      0x1         0x2         bb:cc:dd:ee:ff:aa     *        eth0
10.0.0.1         0x1         0x2         aa:bb:cc:dd:ee:ff     *        cali1
10.0.0.2         0x1         0x0         00:00:00:00:00:00     *        eth0
";
        assert_eq!(parse_arp(text).unwrap(), vec![("cali1", 1), ("eth0", 3)]);
    }

    #[test]
    fn header_only_and_empty() {
        assert!(
            parse_arp("IP address HW type Flags HW address Mask Device\n")
                .unwrap()
                .is_empty()
        );
        assert!(parse_arp("").unwrap().is_empty());
    }

    #[test]
    fn device_flags() {
        let mut s = Settings::default();
        let flag = |key, value| Flag {
            name: "collector.arp.x",
            key,
            negated: false,
            value: Some(value),
        };
        assert!(s.apply_flag(&flag("device-include", "^eth")).unwrap());
        assert!(!s.0.ignored("eth0") && s.0.ignored("cali1"));
        assert!(s.apply_flag(&flag("device-exclude", "^lo$")).unwrap());
        // Both at once is refused when the config is validated, before any collector is built.
        let e = s.validate().unwrap_err();
        assert_eq!(e.path, ["device_include"]);
        assert!(!s.apply_flag(&flag("fields", "x")).unwrap());
    }

    #[test]
    fn truncated_line_is_an_error() {
        let e = parse_arp("IP address\n10.0.0.1 0x1 0x2\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
    }
}
