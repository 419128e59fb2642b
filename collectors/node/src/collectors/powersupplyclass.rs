//! `powersupplyclass`: batteries, AC adapters and UPSes from `/sys/class/power_supply/<name>/`.
//!
//! Numeric attributes become `node_power_supply_<property>` (µA, µV, µWh and µW scaled to
//! base units, tenths of a degree to degrees); text attributes label
//! `node_power_supply_info`. Supplies matching `--collector.powersupply.ignored-supplies`
//! are left out. No `/sys/class/power_supply` means no data.

use std::collections::BTreeMap;
use std::path::Path;

use eos_exposition::{Encoder, Kind};

use crate::collector::{is_not_found, list_dir, Collector, CollectorDef, Ctx};
use crate::pattern::Pattern;
use crate::settings::{CollectorSettings, Flag};
use serde::{Deserialize, Serialize};

pub(crate) const DEF: CollectorDef<Settings> = CollectorDef {
    name: "powersupplyclass",
    default_enabled: true,
    build: |settings, _paths| {
        Ok(Box::new(PowerSupplyCollector {
            ignored: settings.ignored_supplies.clone(),
        }))
    },
};

/// `modules.node.powersupplyclass`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settings {
    /// Power supplies not reported (`--collector.powersupply.ignored-supplies`).
    pub(crate) ignored_supplies: Pattern,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ignored_supplies: Pattern::new_static("^$"),
        }
    }
}

impl CollectorSettings for Settings {
    // node_exporter names this collector's flags `--collector.powersupply.*`.
    const FLAG_PREFIXES: &'static [&'static str] = &["powersupply", "powersupplyclass"];
    const HELP: &'static str = "  --collector.powersupply.ignored-supplies=RE
";

    fn apply_flag(&mut self, flag: &Flag<'_>) -> Result<bool, String> {
        match flag.key {
            "ignored-supplies" => self.ignored_supplies = flag.pattern()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

struct PowerSupplyCollector {
    ignored: Pattern,
}

/// Numeric attributes: (file, metric suffix, divisor).
const NUMERIC: [(&str, &str, f64); 49] = [
    ("authentic", "authentic", 1.0),
    ("calibrate", "calibrate", 1.0),
    ("capacity", "capacity", 1.0),
    ("capacity_alert_max", "capacity_alert_max", 1.0),
    ("capacity_alert_min", "capacity_alert_min", 1.0),
    ("cycle_count", "cyclecount", 1.0),
    ("online", "online", 1.0),
    ("present", "present", 1.0),
    ("time_to_empty_now", "time_to_empty_seconds", 1.0),
    ("time_to_full_now", "time_to_full_seconds", 1.0),
    ("current_boot", "current_boot", 1e6),
    ("current_max", "current_max", 1e6),
    ("current_now", "current_ampere", 1e6),
    ("energy_empty", "energy_empty", 1e6),
    ("energy_empty_design", "energy_empty_design", 1e6),
    ("energy_full", "energy_full", 1e6),
    ("energy_full_design", "energy_full_design", 1e6),
    ("energy_now", "energy_watthour", 1e6),
    ("voltage_boot", "voltage_boot", 1e6),
    ("voltage_max", "voltage_max", 1e6),
    ("voltage_max_design", "voltage_max_design", 1e6),
    ("voltage_min", "voltage_min", 1e6),
    ("voltage_min_design", "voltage_min_design", 1e6),
    ("voltage_now", "voltage_volt", 1e6),
    ("voltage_ocv", "voltage_ocv", 1e6),
    ("charge_control_limit", "charge_control_limit", 1e6),
    ("charge_control_limit_max", "charge_control_limit_max", 1e6),
    ("charge_counter", "charge_counter", 1e6),
    ("charge_empty", "charge_empty", 1e6),
    ("charge_empty_design", "charge_empty_design", 1e6),
    ("charge_full", "charge_full", 1e6),
    ("charge_full_design", "charge_full_design", 1e6),
    ("charge_now", "charge_ampere", 1e6),
    ("charge_term_current", "charge_term_current", 1e6),
    ("constant_charge_current", "constant_charge_current", 1e6),
    (
        "constant_charge_current_max",
        "constant_charge_current_max",
        1e6,
    ),
    ("constant_charge_voltage", "constant_charge_voltage", 1e6),
    (
        "constant_charge_voltage_max",
        "constant_charge_voltage_max",
        1e6,
    ),
    ("precharge_current", "precharge_current", 1e6),
    ("input_current_limit", "input_current_limit", 1e6),
    ("power_now", "power_watt", 1e6),
    ("temp", "temp_celsius", 10.0),
    ("temp_alert_max", "temp_alert_max_celsius", 10.0),
    ("temp_alert_min", "temp_alert_min_celsius", 10.0),
    ("temp_ambient", "temp_ambient_celsius", 10.0),
    ("temp_ambient_max", "temp_ambient_max_celsius", 10.0),
    ("temp_ambient_min", "temp_ambient_min_celsius", 10.0),
    ("temp_max", "temp_max_celsius", 10.0),
    ("temp_min", "temp_min_celsius", 10.0),
];

/// Attributes that are numbers in sysfs but not exported (still checked like node_exporter).
const NUMERIC_UNEXPORTED: [&str; 6] = [
    "charge_avg",
    "current_avg",
    "energy_avg",
    "power_avg",
    "time_to_empty_avg",
    "time_to_full_avg",
];

/// Text attributes that label `node_power_supply_info`, in label order (`power_supply`
/// sorts between `model_name` and `scope`).
const TEXT: [&str; 11] = [
    "capacity_level",
    "charge_type",
    "health",
    "manufacturer",
    "model_name",
    "scope",
    "serial_number",
    "status",
    "technology",
    "type",
    "usb_type",
];

/// One power supply: its name, numeric values by metric suffix, and text attributes.
#[derive(Debug, Default, PartialEq)]
struct Supply {
    name: String,
    numeric: Vec<(&'static str, f64)>,
    text: Vec<(&'static str, String)>,
}

impl Supply {
    /// The info labels (non-empty text attributes plus `power_supply`), in label order.
    fn info_labels(&self) -> Vec<(&str, &str)> {
        let mut labels: Vec<(&str, &str)> = self
            .text
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        labels.push(("power_supply", &self.name));
        labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
        labels
    }
}

impl Collector for PowerSupplyCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let root = ctx.sys_path("class/power_supply");
        let mut supplies = Vec::new();
        for name in list_dir(&root)? {
            if self.ignored.is_match(&name) {
                continue;
            }
            supplies.push(read_supply(&root.join(&name), name)?);
        }
        write(enc, &supplies);
        Ok(())
    }
}

fn write(enc: &mut Encoder<'_>, supplies: &[Supply]) {
    let mut by_metric: BTreeMap<&str, Vec<(&str, f64)>> = BTreeMap::new();
    for s in supplies {
        for (metric, v) in &s.numeric {
            by_metric.entry(metric).or_default().push((&s.name, *v));
        }
    }
    let mut infos: Vec<Vec<(&str, &str)>> = supplies.iter().map(Supply::info_labels).collect();
    // The Go client orders series by label count, then label values position by position.
    infos.sort_by(|a, b| {
        a.len()
            .cmp(&b.len())
            .then_with(|| a.iter().map(|l| l.1).cmp(b.iter().map(|l| l.1)))
    });
    let mut info_written = false;
    let write_info = |enc: &mut Encoder<'_>| {
        let mut fam = enc.family(
            "node_power_supply_info",
            "info of /sys/class/power_supply/<power_supply>.",
            Kind::Gauge,
        );
        for labels in &infos {
            fam.sample(labels, 1.0);
        }
    };
    for (metric, samples) in &by_metric {
        if !info_written && *metric > "info" {
            write_info(enc);
            info_written = true;
        }
        let name = format!("node_power_supply_{metric}");
        let help = format!("{metric} value of /sys/class/power_supply/<power_supply>.");
        let mut fam = enc.family(&name, &help, Kind::Gauge);
        for (supply, v) in samples {
            fam.sample(&[("power_supply", supply)], *v);
        }
    }
    if !info_written {
        write_info(enc);
    }
}

/// Reads the regular files of one supply directory. Attributes the device cannot report
/// (EINVAL, ENODEV, EOPNOTSUPP, ENODATA) are skipped; a number that does not parse is an error.
fn read_supply(dir: &Path, name: String) -> Result<Supply, String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("listing {}: {e}", dir.display()))?;
    let mut files: Vec<String> = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| format!("listing {}: {e}", dir.display()))?;
        if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
            files.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    files.sort_unstable();
    let mut supply = Supply {
        name,
        ..Supply::default()
    };
    for file in &files {
        let numeric = NUMERIC.iter().find(|(f, _, _)| f == file);
        let text = TEXT.iter().find(|t| *t == file);
        if numeric.is_none() && text.is_none() && !NUMERIC_UNEXPORTED.contains(&file.as_str()) {
            continue;
        }
        let path = dir.join(file);
        let value = match std::fs::read(&path) {
            Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
            Err(e)
                if is_not_found(&e)
                    || matches!(
                        e.raw_os_error(),
                        Some(libc::EINVAL | libc::EOPNOTSUPP | libc::ENODATA | libc::EAGAIN)
                    ) =>
            {
                continue
            }
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        if let Some(t) = text {
            supply.text.push((t, value));
            continue;
        }
        let v = parse_int(&value).map_err(|e| format!("{}: {e}", path.display()))?;
        if let Some((_, metric, div)) = numeric {
            supply.numeric.push((metric, v as f64 / div));
        }
    }
    Ok(supply)
}

/// Parses an integer attribute as Go's `strconv.ParseInt(s, 0, 64)` does (`0x`, `0o`,
/// `0b` and leading-`0` octal prefixes).
fn parse_int(s: &str) -> Result<i64, String> {
    let err = || format!("invalid number {s:?}");
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (radix, body) = if let Some(h) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, h)
    } else if let Some(b) = digits
        .strip_prefix("0b")
        .or_else(|| digits.strip_prefix("0B"))
    {
        (2, b)
    } else if let Some(o) = digits
        .strip_prefix("0o")
        .or_else(|| digits.strip_prefix("0O"))
    {
        (8, o)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, digits.get(1..).unwrap_or(""))
    } else {
        (10, digits)
    };
    if body.is_empty() || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(err());
    }
    let v = i64::from_str_radix(body, radix).map_err(|_| err())?;
    Ok(if neg { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_tree::TestTree;

    #[test]
    fn ints_like_go() {
        assert_eq!(parse_int("98").unwrap(), 98);
        assert_eq!(parse_int("-1").unwrap(), -1);
        assert_eq!(parse_int("0x10").unwrap(), 16);
        assert_eq!(parse_int("010").unwrap(), 8);
        assert_eq!(parse_int("0").unwrap(), 0);
        assert!(parse_int("").is_err());
        assert!(parse_int("12abc").is_err());
        assert!(parse_int("-").is_err());
        assert!(parse_int("99999999999999999999").is_err());
    }

    #[test]
    fn reads_a_battery() {
        let t = TestTree::new("power-supply");
        t.write("BAT0/capacity", "98\n")
            .write("BAT0/energy_now", "49450000\n")
            .write("BAT0/temp", "215\n")
            .write("BAT0/status", "Discharging\n")
            .write("BAT0/manufacturer", "\n")
            .write("BAT0/alarm", "not a number but not ours\n")
            .symlink("../..", "BAT0/device");
        let s = read_supply(&t.path().join("BAT0"), "BAT0".into()).unwrap();
        assert_eq!(
            s.numeric,
            vec![
                ("capacity", 98.0),
                ("energy_watthour", 49.45),
                ("temp_celsius", 21.5)
            ]
        );
        assert_eq!(
            s.info_labels(),
            vec![("power_supply", "BAT0"), ("status", "Discharging")]
        );
        t.write("BAT0/current_avg", "lots\n");
        let e = read_supply(&t.path().join("BAT0"), "BAT0".into()).unwrap_err();
        assert!(e.contains("current_avg"), "{e}");
    }

    #[test]
    fn info_sorts_between_families() {
        let supplies = [Supply {
            name: "AC".into(),
            numeric: vec![("online", 1.0), ("capacity", 5.0)],
            text: vec![("type", "Mains".into())],
        }];
        let mut buf = Vec::new();
        let mut enc = Encoder::new(&mut buf, eos_exposition::Format::Text);
        write(&mut enc, &supplies);
        let out = String::from_utf8(buf).unwrap();
        let names: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .collect();
        assert_eq!(
            names,
            [
                "node_power_supply_capacity gauge",
                "node_power_supply_info gauge",
                "node_power_supply_online gauge"
            ]
        );
        assert!(out.contains("node_power_supply_info{power_supply=\"AC\",type=\"Mains\"} 1\n"));
    }
}
