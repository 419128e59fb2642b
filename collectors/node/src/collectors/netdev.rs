//! `netdev`: per-interface traffic counters from `/proc/net/dev` as
//! `node_network_{receive,transmit}_*_total{device}`, plus `receive_nohandler` from sysfs
//! (node_exporter 1.5 reads it over netlink). `--collector.netdev.device-include/exclude`
//! select devices.

use eos_exposition::{Encoder, Kind};

use std::ffi::CString;

use crate::collector::in_procfs;
use crate::collector::{parse_f64, At, Collector, CollectorDef, Ctx, SysDir};
use crate::device_filter::DeviceFilter;
use crate::settings::{CollectorSettings, Flag};
use serde::{Deserialize, Serialize};

pub(crate) const DEF: CollectorDef<Settings> = CollectorDef {
    name: "netdev",
    default_enabled: true,
    build: |settings, _| {
        Ok(Box::new(NetdevCollector {
            devices: settings.0.clone(),
        }))
    },
};

/// `modules.node.netdev`: `device_include` / `device_exclude` (mutually exclusive, as in node_exporter).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(transparent)]
pub(crate) struct Settings(pub(crate) DeviceFilter);

impl CollectorSettings for Settings {
    const FLAG_PREFIXES: &'static [&'static str] = &["netdev"];
    const HELP: &'static str =
        "  --collector.netdev.device-exclude=RE, --collector.netdev.device-include=RE
";

    fn apply_flag(&mut self, flag: &Flag<'_>) -> Result<bool, String> {
        self.0.apply_flag(
            flag,
            &[
                ("device-blacklist", "device-exclude"),
                ("device-whitelist", "device-include"),
            ],
        )
    }

    fn validate(&self) -> Result<(), eos_module::ConfigIssue> {
        self.0.check_exclusive("netdev")
    }
}

/// Column names of `/proc/net/dev`, receive then transmit.
const RECEIVE: [&str; 8] = [
    "bytes",
    "packets",
    "errs",
    "drop",
    "fifo",
    "frame",
    "compressed",
    "multicast",
];
const TRANSMIT: [&str; 8] = [
    "bytes",
    "packets",
    "errs",
    "drop",
    "fifo",
    "colls",
    "carrier",
    "compressed",
];

struct NetdevCollector {
    devices: DeviceFilter,
}

impl Collector for NetdevCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let class_net = ctx.sys_path("class/net");
        let paths = ctx.paths;
        let mut devs = parse_net_dev(ctx.read_proc("net/dev")?).map_err(|e| in_procfs(paths, e))?;
        devs.retain(|d| !self.devices.ignored(d.name));
        let mut nohandler = Vec::with_capacity(devs.len());
        let mut buf = Vec::new();
        let dir = SysDir::open(&class_net)?;
        for d in &devs {
            let value = match (
                &dir,
                CString::new(format!("{}/statistics/rx_nohandler", d.name)),
            ) {
                (Some(dir), Ok(rel)) => dir
                    .read(&rel, &mut buf)?
                    .and_then(|v| v.parse::<f64>().ok()),
                _ => None,
            };
            nohandler.push(value);
        }
        let mut name = String::with_capacity(48);
        let mut help = String::with_capacity(64);
        for (dir, cols, offset) in [("receive", &RECEIVE, 0), ("transmit", &TRANSMIT, 8)] {
            for (i, col) in cols.iter().enumerate() {
                name.clear();
                name.push_str("node_network_");
                name.push_str(dir);
                name.push('_');
                name.push_str(col);
                name.push_str("_total");
                help.clear();
                help.push_str("Network device statistic ");
                help.push_str(dir);
                help.push('_');
                help.push_str(col);
                help.push('.');
                let mut f = enc.family(&name, &help, Kind::Counter);
                for d in &devs {
                    f.sample(&[("device", d.name)], d.values[offset + i]);
                }
            }
            if dir == "receive" {
                let mut f = enc.family(
                    "node_network_receive_nohandler_total",
                    "Network device statistic receive_nohandler.",
                    Kind::Counter,
                );
                for (d, v) in devs.iter().zip(&nohandler) {
                    if let Some(v) = v {
                        f.sample(&[("device", d.name)], *v);
                    }
                }
            }
        }
        Ok(())
    }
}

/// One interface line of `/proc/net/dev`.
#[derive(Debug, PartialEq)]
struct Dev<'a> {
    name: &'a str,
    values: [f64; 16],
}

fn parse_net_dev(text: &str) -> Result<Vec<Dev<'_>>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(2) {
        let at = At("/proc/net/dev", i + 1);
        if line.trim().is_empty() {
            continue;
        }
        let (name, rest) = line
            .split_once(':')
            .ok_or_else(|| format!("{at}: no ':' after the interface name"))?;
        let mut values = [0.0; 16];
        let mut n = 0;
        for (slot, v) in values.iter_mut().zip(rest.split_ascii_whitespace()) {
            *slot = parse_f64(v, &at)?;
            n += 1;
        }
        if n != 16 {
            return Err(format!("{at}: expected 16 counters, got {n}"));
        }
        out.push(Dev {
            name: name.trim(),
            values,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Inter-|   Receive |  Transmit\n face |bytes    packets|bytes\n";

    #[test]
    fn parses() {
        let text = format!(
            "{HEADER}    lo:  594715    3623    0    0    0     0          0         0   594715    3623    0    0    0     0       0          0\n  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n"
        );
        let d = parse_net_dev(&text).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].name, "lo");
        assert_eq!(d[0].values[0], 594715.0);
        assert_eq!(d[1].values[15], 16.0);
    }

    #[test]
    fn malformed() {
        assert!(parse_net_dev(&format!("{HEADER}eth0 1 2\n")).is_err());
        let e = parse_net_dev(&format!("{HEADER}eth0: 1 2 3\n")).unwrap_err();
        assert!(e.contains("line 3") && e.contains("got 3"), "{e}");
        assert!(parse_net_dev(&format!(
            "{HEADER}eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x\n"
        ))
        .is_err());
        assert!(parse_net_dev("").unwrap().is_empty());
    }

    #[test]
    fn device_flags_and_their_old_names() {
        let mut s = Settings::default();
        let flag = |key, value| Flag {
            name: "collector.netdev.x",
            key,
            negated: false,
            value: Some(value),
        };
        assert!(s.apply_flag(&flag("device-blacklist", "^lo$")).unwrap());
        assert!(s.0.ignored("lo") && !s.0.ignored("lo0") && !s.0.ignored("eth0"));
        assert!(s.validate().is_ok());
        assert!(s.apply_flag(&flag("device-whitelist", "^eth")).unwrap());
        assert!(s.validate().is_err());
    }
}
