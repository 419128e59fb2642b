//! `netclass`: interface properties from `/sys/class/net/<iface>/` (`node_network_info`
//! with node_exporter 1.6+'s `adminstate`, `node_network_up`, MTU, speed, carrier, ...).
//! `--collector.netclass.ignored-devices` drops interfaces;
//! `--collector.netclass.ignore-invalid-speed` drops negative speeds.
//!
//! Reading sysfs costs a few system calls per attribute, and a Kubernetes node has an
//! interface per pod, so the attributes the kernel fixes when an interface is created
//! (`addr_assign_type`, `dev_id`, `iflink`, `name_assign_type`, `type`) are read once per
//! interface and kept while its `ifindex` stays the same.

use eos_exposition::{Encoder, Kind};

use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::Mutex;

use crate::collector::{list_dir, Collector, CollectorDef, Ctx, SysDir};
use crate::pattern::Pattern;
use crate::settings::{CollectorSettings, Flag};
use serde::{Deserialize, Serialize};

pub(crate) const DEF: CollectorDef<Settings> = CollectorDef {
    name: "netclass",
    default_enabled: true,
    build: |settings, _| {
        Ok(Box::new(NetclassCollector {
            ignored: settings.ignored_devices.clone(),
            ignore_invalid_speed: settings.ignore_invalid_speed,
            fixed: Mutex::new(HashMap::new()),
        }))
    },
};

/// `modules.node.netclass`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settings {
    /// Devices not reported (`--collector.netclass.ignored-devices`).
    pub(crate) ignored_devices: Pattern,
    /// Drop `node_network_speed_bytes` for devices reporting an invalid speed
    /// (`--collector.netclass.ignore-invalid-speed`).
    pub(crate) ignore_invalid_speed: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ignored_devices: Pattern::new_static("^$"),
            ignore_invalid_speed: false,
        }
    }
}

impl CollectorSettings for Settings {
    const FLAG_PREFIXES: &'static [&'static str] = &["netclass"];
    const HELP: &'static str =
        "  --collector.netclass.ignored-devices=RE, --collector.netclass.ignore-invalid-speed
";

    fn apply_flag(&mut self, flag: &Flag<'_>) -> Result<bool, String> {
        match flag.key {
            "ignored-devices" => self.ignored_devices = flag.pattern()?,
            "ignore-invalid-speed" => self.ignore_invalid_speed = flag.bool()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// (sysfs attribute, metric suffix, counter?, fixed for the interface's life?), in
/// node_exporter's output set.
const PROPS: [(&CStr, &str, bool, bool); 16] = [
    (c"addr_assign_type", "address_assign_type", false, true),
    (c"carrier", "carrier", false, false),
    (c"carrier_changes", "carrier_changes_total", true, false),
    (c"carrier_up_count", "carrier_up_changes_total", true, false),
    (
        c"carrier_down_count",
        "carrier_down_changes_total",
        true,
        false,
    ),
    (c"dev_id", "device_id", false, true),
    (c"dormant", "dormant", false, false),
    (c"flags", "flags", false, false),
    (c"ifindex", "iface_id", false, false),
    (c"iflink", "iface_link", false, true),
    (c"link_mode", "iface_link_mode", false, false),
    (c"mtu", "mtu_bytes", false, false),
    (c"name_assign_type", "name_assign_type", false, true),
    (c"netdev_group", "net_dev_group", false, false),
    (c"type", "protocol_type", false, true),
    (c"tx_queue_len", "transmit_queue_length", false, false),
];
const SPEED: usize = PROPS.len();
const FLAGS: usize = 7;
const IFINDEX: usize = 8;

/// Values of [`PROPS`], then the speed in bytes/s; `None` when absent or unreadable.
type Values = [Option<f64>; PROPS.len() + 1];

struct NetclassCollector {
    ignored: Pattern,
    ignore_invalid_speed: bool,
    /// Per interface name: its ifindex and the values read for it (of which the fixed ones
    /// are reused).
    fixed: Mutex<HashMap<String, (f64, Values)>>,
}

/// What one interface directory says.
struct Iface {
    name: String,
    address: String,
    broadcast: String,
    duplex: String,
    ifalias: String,
    operstate: String,
    values: Values,
}

impl Collector for NetclassCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let base = ctx.sys_path("class/net");
        let mut ifaces = Vec::new();
        let mut buf = Vec::with_capacity(4096);
        let mut fixed = self
            .fixed
            .lock()
            .map_err(|_| "netclass state poisoned".to_string())?;
        for name in list_dir(&base)? {
            ctx.check_deadline("network interfaces")?;
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
            let ifindex = dir.read(c"ifindex", &mut buf)?.and_then(parse_sysfs_number);
            let known = match (ifindex, fixed.get(&iface.name)) {
                (Some(now), Some((then, values))) if now == *then => Some(values),
                _ => None,
            };
            for (i, (slot, (attr, _, _, is_fixed))) in
                iface.values.iter_mut().zip(PROPS).enumerate()
            {
                *slot = match known {
                    _ if i == IFINDEX => ifindex,
                    Some(values) if is_fixed => values.get(i).copied().flatten(),
                    _ => dir.read(attr, &mut buf)?.and_then(parse_sysfs_number),
                };
            }
            if let Some(ifindex) = ifindex {
                fixed.insert(iface.name.clone(), (ifindex, iface.values));
            }
            if let Some(speed) = dir.read(c"speed", &mut buf)?.and_then(parse_sysfs_number) {
                if speed >= 0.0 || !self.ignore_invalid_speed {
                    iface.values[SPEED] = Some(speed * 1_000_000.0 / 8.0);
                }
            }
            ifaces.push(iface);
        }
        fixed.retain(|name, _| ifaces.iter().any(|i| &i.name == name));
        drop(fixed);

        let mut f = enc.family(
            "node_network_info",
            "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
            Kind::Gauge,
        );
        for i in &ifaces {
            let flags = i.values.get(FLAGS).copied().flatten();
            f.sample(
                &[
                    ("address", &i.address),
                    ("adminstate", admin_state(flags)),
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
            .map(|(_, m, c, _)| (*m, *c))
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

/// The `adminstate` label (node_exporter 1.6+): whether the interface was set up
/// (`IFF_UP` in `flags`), `unknown` without flags.
fn admin_state(flags: Option<f64>) -> &'static str {
    match flags {
        None => "unknown",
        Some(f) if (f as i64) & libc::IFF_UP as i64 != 0 => "up",
        Some(_) => "down",
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
    fn fixed_attributes_are_reread_when_the_interface_is_recreated() {
        let tree = crate::collectors::test_tree::TestTree::new("netclass-fixed");
        let w = |rel: &str, v: &str| tree.write(&format!("class/net/{rel}"), v);
        for (attr, v) in [
            ("ifindex", "3"),
            ("type", "1"),
            ("mtu", "1500"),
            ("operstate", "up"),
        ] {
            w(&format!("eth0/{attr}"), v);
        }
        w("gone0/ifindex", "9");
        let paths = eos_module::HostPaths {
            sysfs: tree.path().to_path_buf(),
            ..eos_module::HostPaths::default()
        };
        let c = NetclassCollector {
            ignored: Pattern::new("^$").unwrap(),
            ignore_invalid_speed: false,
            fixed: Mutex::new(HashMap::new()),
        };
        let scrape = || {
            let mut buf = Vec::new();
            let mut out = Vec::new();
            let mut enc = Encoder::new(&mut out, eos_exposition::Format::Text);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            c.update(&mut enc, &mut Ctx::new(&paths, deadline, &mut buf))
                .unwrap();
            String::from_utf8(out).unwrap()
        };
        assert!(scrape().contains("node_network_protocol_type{device=\"eth0\"} 1\n"));
        assert!(c.fixed.lock().unwrap().contains_key("gone0"));
        std::fs::remove_dir_all(tree.path().join("class/net/gone0")).unwrap();
        // Same interface: the fixed attribute is not read again; the others are.
        w("eth0/type", "772");
        w("eth0/mtu", "9000");
        let out = scrape();
        assert!(
            out.contains("node_network_protocol_type{device=\"eth0\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("node_network_mtu_bytes{device=\"eth0\"} 9000\n"),
            "{out}"
        );
        assert!(!c.fixed.lock().unwrap().contains_key("gone0"));
        // Recreated (new ifindex): read again.
        w("eth0/ifindex", "4");
        let out = scrape();
        assert!(
            out.contains("node_network_protocol_type{device=\"eth0\"} 772\n"),
            "{out}"
        );
    }

    #[test]
    fn admin_states() {
        assert_eq!(admin_state(Some(4099.0)), "up"); // 0x1003
        assert_eq!(admin_state(Some(4098.0)), "down"); // 0x1002
        assert_eq!(admin_state(None), "unknown");
        assert_eq!(PROPS[FLAGS].0, c"flags");
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_sysfs_number("0x1003"), Some(4099.0));
        assert_eq!(parse_sysfs_number("-1"), Some(-1.0));
        assert_eq!(parse_sysfs_number("1500"), Some(1500.0));
        assert_eq!(parse_sysfs_number("0xzz"), None);
        assert_eq!(parse_sysfs_number(""), None);
    }
}
