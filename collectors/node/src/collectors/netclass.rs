//! `netclass`: interface properties from `/sys/class/net/<iface>/` (`node_network_info`,
//! `node_network_up`, MTU, speed, carrier, ...). `--collector.netclass.ignored-devices`
//! drops interfaces; `--collector.netclass.ignore-invalid-speed` drops negative speeds.

use eos_exposition::{Encoder, Kind};

use crate::collector::{list_dir, read_trimmed, Collector, CollectorDef, Ctx};
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
const PROPS: [(&str, &str, bool); 16] = [
    ("addr_assign_type", "address_assign_type", false),
    ("carrier", "carrier", false),
    ("carrier_changes", "carrier_changes_total", true),
    ("carrier_up_count", "carrier_up_changes_total", true),
    ("carrier_down_count", "carrier_down_changes_total", true),
    ("dev_id", "device_id", false),
    ("dormant", "dormant", false),
    ("flags", "flags", false),
    ("ifindex", "iface_id", false),
    ("iflink", "iface_link", false),
    ("link_mode", "iface_link_mode", false),
    ("mtu", "mtu_bytes", false),
    ("name_assign_type", "name_assign_type", false),
    ("netdev_group", "net_dev_group", false),
    ("type", "protocol_type", false),
    ("tx_queue_len", "transmit_queue_length", false),
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
        for name in list_dir(&base)? {
            if self.ignored.is_match(&name) {
                continue;
            }
            let dir = base.join(&name);
            if !dir.is_dir() {
                continue; // e.g. bonding_masters
            }
            let text = |attr: &str| -> Result<String, String> {
                Ok(read_trimmed(&dir.join(attr))?.unwrap_or_default())
            };
            let mut iface = Iface {
                address: text("address")?,
                broadcast: text("broadcast")?,
                duplex: text("duplex")?,
                ifalias: text("ifalias")?,
                operstate: text("operstate")?,
                values: [None; PROPS.len() + 1],
                name,
            };
            for (slot, (attr, _, _)) in iface.values.iter_mut().zip(PROPS) {
                *slot = read_trimmed(&dir.join(attr))?.and_then(|v| parse_sysfs_number(&v));
            }
            if let Some(speed) =
                read_trimmed(&dir.join("speed"))?.and_then(|v| parse_sysfs_number(&v))
            {
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
