//! `netclass`: interface properties from `/sys/class/net/<iface>/` (`node_network_info`,
//! `node_network_up`, MTU, speed, carrier, ...). `--collector.netclass.ignored-devices`
//! drops interfaces; `--collector.netclass.ignore-invalid-speed` drops negative speeds.

use eos_exposition::{Encoder, Kind};

use std::ffi::CStr;

use crate::collector::{list_dir, Collector, CollectorDef, Ctx, SysDir};
use crate::config::Pattern;

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "netclass",
    default_enabled: true,
    build: |config, _| {
        Ok(Box::new(NetclassCollector {
            ignored: config.netclass.ignored_devices.clone(),
            ignore_invalid_speed: config.netclass.ignore_invalid_speed,
        }))
    },
};

/// (sysfs attribute, metric suffix, counter?), in node_exporter's output set.
const PROPS: [(&CStr, &str, bool); 16] = [
    (c"addr_assign_type", "address_assign_type", false),
    (c"carrier", "carrier", false),
    (c"carrier_changes", "carrier_changes_total", true),
    (c"carrier_up_count", "carrier_up_changes_total", true),
    (c"carrier_down_count", "carrier_down_changes_total", true),
    (c"dev_id", "device_id", false),
    (c"dormant", "dormant", false),
    (c"flags", "flags", false),
    (c"ifindex", "iface_id", false),
    (c"iflink", "iface_link", false),
    (c"link_mode", "iface_link_mode", false),
    (c"mtu", "mtu_bytes", false),
    (c"name_assign_type", "name_assign_type", false),
    (c"netdev_group", "net_dev_group", false),
    (c"type", "protocol_type", false),
    (c"tx_queue_len", "transmit_queue_length", false),
];
const SPEED: usize = PROPS.len();

struct NetclassCollector {
    ignored: Pattern,
    ignore_invalid_speed: bool,
}

/// What one interface directory says.
struct Iface {
    name: String,
    address: String,
    broadcast: String,
    duplex: String,
    ifalias: String,
    operstate: String,
    /// Values of [`PROPS`], then the speed in bytes/s; `None` when absent or unreadable.
    values: [Option<f64>; PROPS.len() + 1],
}

impl Collector for NetclassCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let base = ctx.sys_path("class/net");
        let mut ifaces = Vec::new();
        let mut buf = Vec::with_capacity(4096);
        for name in list_dir(&base)? {
            if self.ignored.is_match(&name) {
                continue;
            }
            // Not a directory (e.g. bonding_masters) or gone since the listing: skip.
            let Some(dir) = SysDir::open(&base.join(&name))? else {
                continue;
            };
            let mut text = |attr: &CStr| -> Result<String, String> {
                Ok(dir.read(attr, &mut buf)?.unwrap_or_default().to_string())
            };
            let mut iface = Iface {
                address: text(c"address")?,
                broadcast: text(c"broadcast")?,
                duplex: text(c"duplex")?,
                ifalias: text(c"ifalias")?,
                operstate: text(c"operstate")?,
                values: [None; PROPS.len() + 1],
                name,
            };
            for (slot, (attr, _, _)) in iface.values.iter_mut().zip(PROPS) {
                *slot = dir.read(attr, &mut buf)?.and_then(parse_sysfs_number);
            }
            if let Some(speed) = dir.read(c"speed", &mut buf)?.and_then(parse_sysfs_number) {
                if speed >= 0.0 || !self.ignore_invalid_speed {
                    iface.values[SPEED] = Some(speed * 1_000_000.0 / 8.0);
                }
            }
            ifaces.push(iface);
        }

        let mut f = enc.family(
            "node_network_info",
            "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
            Kind::Gauge,
        );
        for i in &ifaces {
            f.sample(
                &[
                    ("address", &i.address),
                    ("broadcast", &i.broadcast),
                    ("device", &i.name),
                    ("duplex", &i.duplex),
                    ("ifalias", &i.ifalias),
                    ("operstate", &i.operstate),
                ],
                1.0,
            );
        }
        let mut f = enc.family(
            "node_network_up",
            "Value is 1 if operstate is 'up', 0 otherwise.",
            Kind::Gauge,
        );
        for i in &ifaces {
            let up = if i.operstate == "up" { 1.0 } else { 0.0 };
            f.sample(&[("device", &i.name)], up);
        }
        let mut name = String::with_capacity(48);
        let mut help = String::with_capacity(64);
        let props = PROPS
            .iter()
            .map(|(_, m, c)| (*m, *c))
            .chain([("speed_bytes", false)]);
        for (col, (metric, counter)) in props.enumerate() {
            name.clear();
            name.push_str("node_network_");
            name.push_str(metric);
            help.clear();
            help.push_str("Network device property: ");
            help.push_str(metric);
            let kind = if counter { Kind::Counter } else { Kind::Gauge };
            let mut f = enc.family(&name, &help, kind);
            for i in &ifaces {
                if let Some(Some(v)) = i.values.get(col) {
                    f.sample(&[("device", &i.name)], *v);
                }
            }
        }
        Ok(())
    }
}

/// A sysfs number: decimal, or hex with `0x` (`flags`, `dev_id`).
fn parse_sysfs_number(s: &str) -> Option<f64> {
    match s.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok().map(|v| v as f64),
        None => s.parse::<i64>().ok().map(|v| v as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_sysfs_number("0x1003"), Some(4099.0));
        assert_eq!(parse_sysfs_number("-1"), Some(-1.0));
        assert_eq!(parse_sysfs_number("1500"), Some(1500.0));
        assert_eq!(parse_sysfs_number("0xzz"), None);
        assert_eq!(parse_sysfs_number(""), None);
    }
}
