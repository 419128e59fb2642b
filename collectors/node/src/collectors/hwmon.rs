//! `hwmon`: hardware sensors (temperatures, voltages, fans, power...) from
//! `/sys/class/hwmon/hwmon*`, named like node_exporter does.
//!
//! Each `<type><n>_<property>` file of a chip directory (and of its `device/` directory) is one
//! value; the sensor is `<type><n>`, and the family name is built from the type, the property
//! and a unit suffix (`node_hwmon_temp_celsius`, `node_hwmon_fan_min_rpm`, ...). The `chip`
//! label comes from the device path when there is one (stable across reboots), else from the
//! `name` file, else from the `hwmonN` directory name; chips that would share a label get a
//! suffix (see [`chip_labels`]). No `/sys/class/hwmon` means no data.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use eos_exposition::{Encoder, Kind};

use crate::collector::{list_dir, Collector, CollectorDef, Ctx, SysDir};
use crate::device_filter::DeviceFilter;
use crate::pattern::Pattern;
use crate::settings::{CollectorSettings, Flag};
use serde::{Deserialize, Serialize};

pub(crate) const DEF: CollectorDef<Settings> = CollectorDef {
    name: "hwmon",
    default_enabled: true,
    build: |settings, _paths| {
        Ok(Box::new(HwmonCollector {
            chips: Mutex::new(HashMap::new()),
            chip_filter: DeviceFilter {
                device_include: settings.chip_include.clone(),
                device_exclude: settings.chip_exclude.clone(),
            },
            sensor_filter: DeviceFilter {
                device_include: settings.sensor_include.clone(),
                device_exclude: settings.sensor_exclude.clone(),
            },
        }))
    },
};

/// `modules.node.hwmon`: node_exporter's chip and sensor filters (none by default).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settings {
    /// Only chips whose `chip` label matches are reported (`--collector.hwmon.chip-include`).
    pub(crate) chip_include: Option<Pattern>,
    /// Chips whose `chip` label matches are not reported (`--collector.hwmon.chip-exclude`).
    pub(crate) chip_exclude: Option<Pattern>,
    /// Only sensors whose `<chip>;<sensor>` matches are reported
    /// (`--collector.hwmon.sensor-include`).
    pub(crate) sensor_include: Option<Pattern>,
    /// Sensors whose `<chip>;<sensor>` matches are not reported
    /// (`--collector.hwmon.sensor-exclude`).
    pub(crate) sensor_exclude: Option<Pattern>,
}

impl CollectorSettings for Settings {
    const FLAG_PREFIXES: &'static [&'static str] = &["hwmon"];
    const HELP: &'static str =
        "  --collector.hwmon.chip-include=RE, --collector.hwmon.chip-exclude=RE
  --collector.hwmon.sensor-include=RE, --collector.hwmon.sensor-exclude=RE (\"<chip>;<sensor>\")
";

    fn apply_flag(&mut self, flag: &Flag<'_>) -> Result<bool, String> {
        let slot = match flag.key {
            "chip-include" => &mut self.chip_include,
            "chip-exclude" => &mut self.chip_exclude,
            "sensor-include" => &mut self.sensor_include,
            "sensor-exclude" => &mut self.sensor_exclude,
            _ => return Ok(false),
        };
        *slot = flag.opt_pattern()?;
        Ok(true)
    }
}

struct HwmonCollector {
    /// Chip names by `hwmonN`, with the `/sys/class/hwmon/hwmonN` link target they were
    /// derived from: resolving the device path costs a `readlink` per path component, and
    /// the name only changes when the link does (a device was replaced).
    chips: Mutex<HashMap<String, (PathBuf, String)>>,
    /// Selects chips by their (final) `chip` label.
    chip_filter: DeviceFilter,
    /// Selects sensors by `<chip>;<sensor>`.
    sensor_filter: DeviceFilter,
}

/// The sensor types node_exporter reads; other files are ignored.
const SENSOR_TYPES: [&str; 14] = [
    "vrm",
    "beep_enable",
    "update_interval",
    "in",
    "cpu",
    "fan",
    "pwm",
    "temp",
    "curr",
    "power",
    "energy",
    "humidity",
    "intrusion",
    "freq",
];

/// sensor (`temp1`) -> property (`input`, `max`, `` for a bare `pwm1`) -> raw value.
type SensorData = BTreeMap<String, BTreeMap<String, String>>;

/// One family being built: help, kind and (label values in label order, value).
struct Fam {
    help: String,
    kind: Kind,
    labels: &'static [&'static str],
    samples: Vec<(Vec<String>, f64)>,
}

/// All families of one scrape, by name (the order they are written in).
#[derive(Default)]
struct Families(BTreeMap<String, Fam>);

const CHIP_SENSOR: &[&str] = &["chip", "sensor"];

impl Families {
    /// Adds a sample; the first help seen for a name is kept, as node_exporter keeps the
    /// first description of a family.
    fn add(
        &mut self,
        name: String,
        help: impl FnOnce() -> String,
        kind: Kind,
        labels: &'static [&'static str],
        values: Vec<String>,
        v: f64,
    ) {
        let fam = self.0.entry(name).or_insert_with(|| Fam {
            help: help(),
            kind,
            labels,
            samples: Vec::new(),
        });
        if fam.labels == labels && fam.kind == kind {
            fam.samples.push((values, v));
        }
    }

    fn gauge(
        &mut self,
        name: String,
        help: impl FnOnce() -> String,
        chip: &str,
        sensor: &str,
        v: f64,
    ) {
        let values = vec![chip.to_string(), sensor.to_string()];
        self.add(name, help, Kind::Gauge, CHIP_SENSOR, values, v);
    }

    fn write(mut self, enc: &mut Encoder<'_>) {
        for (name, fam) in self.0.iter_mut() {
            fam.samples.sort_by(|a, b| a.0.cmp(&b.0));
            // Two chips with the same name would give duplicate series; keep the first.
            fam.samples.dedup_by(|b, a| a.0 == b.0);
            let mut out = enc.family(name, &fam.help, fam.kind);
            let mut labels: Vec<(&str, &str)> = Vec::with_capacity(fam.labels.len());
            for (values, v) in &fam.samples {
                labels.clear();
                labels.extend(
                    fam.labels
                        .iter()
                        .copied()
                        .zip(values.iter().map(String::as_str)),
                );
                out.sample(&labels, *v);
            }
        }
    }
}

impl Collector for HwmonCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let root = ctx.sys_path("class/hwmon");
        let mut chips = Vec::new();
        for name in list_dir(&root)? {
            let dir = root.join(&name);
            // Follows the usual hwmonN -> ../../devices/... symlinks; skips plain files.
            if !std::fs::metadata(&dir).map(|m| m.is_dir()).unwrap_or(false) {
                continue;
            }
            let base = self.chip(&name, &dir)?;
            let human = human_name(&dir);
            chips.push(Chip {
                hwmon: name,
                dir,
                base,
                human,
            });
        }
        let labels = chip_labels(&chips);
        let mut fams = Families::default();
        for (chip, label) in chips.iter().zip(&labels) {
            // Filtered by the label as written, so a pattern matches what users see.
            if self.chip_filter.ignored(label) {
                continue;
            }
            let (dir, human) = (&chip.dir, chip.human.as_deref());
            chip_metrics(dir, label, human, &self.sensor_filter, &mut fams)?;
        }
        fams.write(enc);
        Ok(())
    }
}

/// One `class/hwmon` entry before its `chip` label is settled.
struct Chip {
    /// `hwmonN`.
    hwmon: String,
    dir: PathBuf,
    /// The label derived from the device path (see [`chip_name`]).
    base: String,
    /// The cleaned `name` file.
    human: Option<String>,
}

/// The `chip` label of each entry, as node_exporter 1.12 settles it: entries whose derived
/// label is unique keep it; entries sharing one (several hwmon devices under one parent
/// device, e.g. `asus-nb-wmi`) get `_<name file>` appended when that tells them apart, else
/// `_<hwmonN>`.
fn chip_labels(chips: &[Chip]) -> Vec<String> {
    let count = |f: &dyn Fn(&Chip) -> bool| chips.iter().filter(|c| f(c)).count();
    chips
        .iter()
        .map(|c| {
            if count(&|o| o.base == c.base) < 2 {
                return c.base.clone();
            }
            match &c.human {
                Some(h) if count(&|o| o.base == c.base && o.human.as_ref() == Some(h)) == 1 => {
                    format!("{}_{h}", c.base)
                }
                _ => format!("{}_{}", c.base, c.hwmon),
            }
        })
        .collect()
}

impl HwmonCollector {
    /// The chip label of `class/hwmon/<name>`, from the cache while its link is unchanged.
    fn chip(&self, name: &str, dir: &Path) -> Result<String, String> {
        let Ok(link) = std::fs::read_link(dir) else {
            return chip_name(dir);
        };
        let mut cache = self.chips.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((cached_link, chip)) = cache.get(name) {
            if *cached_link == link {
                return Ok(chip.clone());
            }
        }
        let chip = chip_name(dir)?;
        cache.insert(name.to_string(), (link, chip.clone()));
        Ok(chip)
    }
}

/// Lower-cases and replaces everything but `[a-z0-9:_]` with `_`, then trims `_`.
fn clean_name(s: &str) -> String {
    let out: String = s
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'a'..='z' | '0'..='9' | ':' | '_' => c,
            _ => '_',
        })
        .collect();
    out.trim_matches('_').to_string()
}

/// Splits a sensor file name `<type><num>_<property>` the way node_exporter's
/// `^([^0-9]+)([0-9]*)?(_(.+))?$` does. `None` when it does not have that shape or the
/// number does not fit.
fn explode(filename: &str) -> Option<(&str, u64, &str)> {
    let type_end = filename
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(filename.len());
    if type_end == 0 {
        return None;
    }
    let rest = filename.get(type_end..)?;
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (id, tail) = rest.split_at(digits);
    let num = if id.is_empty() { 0 } else { id.parse().ok()? };
    match tail {
        "" => return Some((filename.get(..type_end)?, num, "")),
        t if t.len() > 1 && t.starts_with('_') => {
            return Some((filename.get(..type_end)?, num, t.get(1..)?))
        }
        _ => {}
    }
    // The greedy split failed: the regex backtracks to a shorter type ending just before an
    // `_` (with no number), the rest being the property.
    let ty = filename.get(..type_end)?;
    let cut = ty.get(..ty.len().saturating_sub(1))?.rfind('_')?;
    Some((ty.get(..cut)?, 0, filename.get(cut + 1..)?))
}

/// Reads the sensor files of one directory into `data`.
fn collect_sensor_data(dir: &Path, data: &mut SensorData) -> Result<(), String> {
    let rd = std::fs::read_dir(dir).map_err(|e| format!("listing {}: {e}", dir.display()))?;
    let mut names: Vec<std::ffi::OsString> =
        rd.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
    names.sort_unstable();
    let Some(sys_dir) = SysDir::open(dir)? else {
        return Ok(());
    };
    let mut buf = Vec::with_capacity(128);
    for os_name in names {
        let Some(name) = os_name.to_str() else {
            continue;
        };
        let Some((ty, num, prop)) = explode(name) else {
            continue;
        };
        if !SENSOR_TYPES.contains(&ty) {
            continue;
        }
        // Unreadable attributes (write-only, EAGAIN from broken drivers, directories) are
        // skipped, as node_exporter does.
        let Ok(cname) = std::ffi::CString::new(name) else {
            continue;
        };
        let Ok(Some(value)) = sys_dir.read(&cname, &mut buf) else {
            continue;
        };
        data.entry(format!("{ty}{num}"))
            .or_default()
            .insert(prop.to_string(), value.to_string());
    }
    Ok(())
}

/// The `chip` label: `<parent dir>_<device dir>` of the resolved `device` link, else the
/// `name` file, else the resolved directory's own name.
fn chip_name(dir: &Path) -> Result<String, String> {
    if let Ok(dev) = std::fs::canonicalize(dir.join("device")) {
        let dev_name = dev.file_name().map(|n| clean_name(&n.to_string_lossy()));
        let dev_type = dev
            .parent()
            .and_then(Path::file_name)
            .map(|n| clean_name(&n.to_string_lossy()));
        match (dev_type, dev_name) {
            (Some(t), Some(n)) if !t.is_empty() && !n.is_empty() => return Ok(format!("{t}_{n}")),
            (_, Some(n)) if !n.is_empty() => return Ok(n),
            _ => {}
        }
    }
    if let Some(name) = human_name(dir) {
        return Ok(name);
    }
    let real = std::fs::canonicalize(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    real.file_name()
        .map(|n| clean_name(&n.to_string_lossy()))
        .filter(|n| !n.is_empty())
        .ok_or_else(|| format!("could not derive a monitoring name for {}", dir.display()))
}

/// The cleaned content of the chip's `name` file, for `node_hwmon_chip_names`.
fn human_name(dir: &Path) -> Option<String> {
    let raw = std::fs::read(dir.join("name")).ok()?;
    Some(clean_name(&String::from_utf8_lossy(&raw))).filter(|n| !n.is_empty())
}

/// Adds all metrics of one chip directory.
fn chip_metrics(
    dir: &Path,
    chip: &str,
    human: Option<&str>,
    sensors: &DeviceFilter,
    fams: &mut Families,
) -> Result<(), String> {
    let mut data = SensorData::new();
    collect_sensor_data(dir, &mut data)?;
    if dir.join("device").exists() {
        collect_sensor_data(&dir.join("device"), &mut data)?;
    }
    if let Some(human) = human {
        fams.add(
            "node_hwmon_chip_names".into(),
            || "Annotation metric for human-readable chip names".into(),
            Kind::Gauge,
            &["chip", "chip_name"],
            vec![chip.to_string(), human.to_string()],
            1.0,
        );
    }
    for (sensor, props) in &data {
        if !sensors.ignored(&format!("{chip};{sensor}")) {
            sensor_metrics(chip, sensor, props, fams);
        }
    }
    Ok(())
}

/// Adds the metrics of one sensor, with node_exporter's names, units and help texts.
fn sensor_metrics(chip: &str, sensor: &str, props: &BTreeMap<String, String>, fams: &mut Families) {
    let Some((ty, _, _)) = explode(sensor) else {
        return;
    };
    // The label text is exported as it is (node_exporter 1.5 does not clean it).
    if let Some(label) = props.get("label").cloned() {
        if !label.is_empty() {
            fams.add(
                "node_hwmon_sensor_label".into(),
                || "Label for given chip and sensor".into(),
                Kind::Gauge,
                &["chip", "label", "sensor"],
                vec![chip.to_string(), label, sensor.to_string()],
                1.0,
            );
        }
    }
    let bare = props.get("").map(|v| v.trim());
    match ty {
        "beep_enable" => {
            let v = if bare == Some("1") { 1.0 } else { 0.0 };
            let name = "node_hwmon_beep_enabled".to_string();
            fams.gauge(name, || "Hardware beep enabled".into(), chip, sensor, v);
            return;
        }
        "vrm" => {
            if let Some(v) = bare.and_then(|b| b.parse::<f64>().ok()) {
                let name = "node_hwmon_voltage_regulator_version".to_string();
                fams.gauge(
                    name,
                    || "Hardware voltage regulator".into(),
                    chip,
                    sensor,
                    v,
                );
            }
            return;
        }
        "update_interval" => {
            if let Some(v) = bare.and_then(|b| b.parse::<f64>().ok()) {
                let name = "node_hwmon_update_interval_seconds".to_string();
                let help = || "Hardware monitor update interval".into();
                fams.gauge(name, help, chip, sensor, v * 0.001);
            }
            return;
        }
        _ => {}
    }
    let prefix = format!("node_hwmon_{ty}");
    for (element, raw) in props {
        if element == "label" {
            continue;
        }
        let mut name = prefix.clone();
        if element == "input" {
            if props.contains_key("") {
                name.push_str("_input");
            }
        } else if !element.is_empty() {
            name.push('_');
            name.push_str(&clean_name(element));
        }
        let Ok(v) = raw.trim().parse::<f64>() else {
            continue;
        };
        let el = element.as_str();
        let (name, help, kind, v): (String, String, Kind, f64) = match (ty, el) {
            (_, "fault" | "alarm") => (
                name,
                format!("Hardware sensor {el} status ({ty})"),
                Kind::Gauge,
                v,
            ),
            (_, "beep") => (
                name + "_enabled",
                "Hardware monitor sensor has beeping enabled".into(),
                Kind::Gauge,
                v,
            ),
            ("in" | "cpu", _) => (
                name + "_volts",
                format!("Hardware monitor for voltage ({el})"),
                Kind::Gauge,
                v * 0.001,
            ),
            ("temp", e) if e != "type" => {
                let el = if e.is_empty() { "input" } else { e };
                (
                    name + "_celsius",
                    format!("Hardware monitor for temperature ({el})"),
                    Kind::Gauge,
                    v * 0.001,
                )
            }
            ("curr", _) => (
                name + "_amps",
                format!("Hardware monitor for current ({el})"),
                Kind::Gauge,
                v * 0.001,
            ),
            ("energy", _) => (
                name + "_joule_total",
                format!("Hardware monitor for joules used so far ({el})"),
                Kind::Counter,
                v / 1e6,
            ),
            ("power", "accuracy") => (
                name,
                "Hardware monitor power meter accuracy, as a ratio".into(),
                Kind::Gauge,
                v / 1e6,
            ),
            ("power", "average_interval" | "average_interval_min" | "average_interval_max") => (
                name + "_seconds",
                format!("Hardware monitor power usage update interval ({el})"),
                Kind::Gauge,
                v * 0.001,
            ),
            ("power", _) => (
                name + "_watt",
                format!("Hardware monitor for power usage in watts ({el})"),
                Kind::Gauge,
                v / 1e6,
            ),
            ("humidity", _) => (
                name,
                format!(
                    "Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the \
                     humidity as a percentage) ({el})"
                ),
                Kind::Gauge,
                v / 1e6,
            ),
            ("fan", "input" | "min" | "max" | "target") => (
                name + "_rpm",
                format!("Hardware monitor for fan revolutions per minute ({el})"),
                Kind::Gauge,
                v,
            ),
            ("freq", "input") => (
                name + "_freq_mhz",
                "Hardware monitor for GPU frequency in MHz".into(),
                Kind::Gauge,
                v / 1e6,
            ),
            _ => (
                name,
                format!("Hardware monitor {ty} element {el}"),
                Kind::Gauge,
                v,
            ),
        };
        // A GPU clock (`freq<N>_input`) is named by its label (`sclk`, `mclk`) in the
        // `sensor` label, and without a label it is not exported (node_exporter 1.9).
        let sensor_value = if (ty, el) == ("freq", "input") {
            match props.get("label").map(|l| clean_name(l)) {
                Some(label) => label,
                None => continue,
            }
        } else {
            sensor.to_string()
        };
        let values = vec![chip.to_string(), sensor_value];
        fams.add(name, || help, kind, CHIP_SENSOR, values, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_tree::TestTree;

    #[test]
    fn explodes_like_the_regex() {
        assert_eq!(explode("temp1_input"), Some(("temp", 1, "input")));
        assert_eq!(explode("temp1_crit_alarm"), Some(("temp", 1, "crit_alarm")));
        assert_eq!(explode("pwm1"), Some(("pwm", 1, "")));
        assert_eq!(explode("temp01_max"), Some(("temp", 1, "max")));
        assert_eq!(explode("beep_enable"), Some(("beep_enable", 0, "")));
        assert_eq!(explode("update_interval"), Some(("update_interval", 0, "")));
        assert_eq!(explode("name"), Some(("name", 0, "")));
        assert_eq!(explode("temp_input"), Some(("temp_input", 0, "")));
        assert_eq!(explode("foo_bar1x"), Some(("foo", 0, "bar1x")));
        assert_eq!(explode("temp1_"), None);
        assert_eq!(explode("temp1x"), None);
        assert_eq!(explode("1temp"), None);
        assert_eq!(explode(""), None);
        assert_eq!(explode("in99999999999999999999999_input"), None);
    }

    #[test]
    fn cleans_names() {
        assert_eq!(clean_name("coretemp\n"), "coretemp");
        assert_eq!(clean_name("Package id 0"), "package_id_0");
        assert_eq!(clean_name("0000:00:1f.3"), "0000:00:1f_3");
        assert_eq!(clean_name("__x-é__"), "x");
        assert_eq!(clean_name("a-é b"), "a___b");
        assert_eq!(clean_name("\n"), "");
    }

    fn chip(hwmon: &str, base: &str, human: Option<&str>) -> Chip {
        Chip {
            hwmon: hwmon.into(),
            dir: PathBuf::new(),
            base: base.into(),
            human: human.map(String::from),
        }
    }

    #[test]
    fn colliding_chips_get_a_suffix() {
        let chips = [
            chip("hwmon0", "acpitz", Some("acpitz")),
            // Two hwmon devices under platform/asus-nb-wmi, told apart by their name file.
            chip("hwmon1", "platform_asus_nb_wmi", Some("asus")),
            chip(
                "hwmon2",
                "platform_asus_nb_wmi",
                Some("asus_custom_fan_curve"),
            ),
            // Same derived label and same name file: the hwmonN name tells them apart.
            chip("hwmon3", "pci0000:00_0000:00:18_3", Some("k10temp")),
            chip("hwmon4", "pci0000:00_0000:00:18_3", Some("k10temp")),
            chip("hwmon5", "pci0000:00_0000:00:18_3", None),
        ];
        assert_eq!(
            chip_labels(&chips),
            vec![
                "acpitz",
                "platform_asus_nb_wmi_asus",
                "platform_asus_nb_wmi_asus_custom_fan_curve",
                "pci0000:00_0000:00:18_3_hwmon3",
                "pci0000:00_0000:00:18_3_hwmon4",
                "pci0000:00_0000:00:18_3_hwmon5",
            ]
        );
        assert!(chip_labels(&[]).is_empty());
    }

    #[test]
    fn filters_select_chips_and_sensors() {
        let t = TestTree::new("hwmon-filter");
        t.write("class/hwmon/hwmon0/name", "acpitz\n")
            .write("class/hwmon/hwmon0/temp1_input", "1000\n")
            .write("class/hwmon/hwmon1/name", "nvme\n")
            .write("class/hwmon/hwmon1/temp1_input", "30000\n")
            .write("class/hwmon/hwmon1/temp2_input", "31000\n");
        let paths = eos_module::HostPaths {
            sysfs: t.path().to_path_buf(),
            ..eos_module::HostPaths::default()
        };
        let mut settings = Settings::default();
        for (key, value) in [
            ("chip-exclude", "^acpitz$"),
            ("sensor-exclude", "^nvme;temp2$"),
        ] {
            let name = format!("collector.hwmon.{key}");
            let flag = Flag {
                name: &name,
                key,
                negated: false,
                value: Some(value),
            };
            assert!(settings.apply_flag(&flag).unwrap());
        }
        let c = (DEF.build)(&settings, &paths).unwrap();
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        let mut enc = Encoder::new(&mut out, eos_exposition::Format::Text);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        c.update(&mut enc, &mut Ctx::new(&paths, deadline, &mut buf))
            .unwrap();
        let out = String::from_utf8(out).unwrap();
        let samples: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            samples,
            [
                "node_hwmon_chip_names{chip=\"nvme\",chip_name=\"nvme\"} 1",
                "node_hwmon_temp_celsius{chip=\"nvme\",sensor=\"temp1\"} 30",
            ]
        );
        let unknown = Flag {
            name: "collector.hwmon.x",
            key: "x",
            negated: false,
            value: Some("y"),
        };
        assert!(!settings.apply_flag(&unknown).unwrap());
    }

    fn render(f: Families) -> String {
        let mut buf = Vec::new();
        let mut enc = Encoder::new(&mut buf, eos_exposition::Format::Text);
        f.write(&mut enc);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn chip_tree() {
        let t = TestTree::new("hwmon");
        t.write(
            "devices/platform/coretemp.0/hwmon/hwmon1/name",
            "coretemp\n",
        )
        .write(
            "devices/platform/coretemp.0/hwmon/hwmon1/temp1_input",
            "55000\n",
        )
        .write(
            "devices/platform/coretemp.0/hwmon/hwmon1/temp1_label",
            "Package id 0\n",
        )
        .write(
            "devices/platform/coretemp.0/hwmon/hwmon1/temp1_crit_alarm",
            "0\n",
        )
        .write(
            "devices/platform/coretemp.0/hwmon/hwmon1/fan1_input",
            "1200\n",
        )
        .write(
            "devices/platform/coretemp.0/hwmon/hwmon1/in0_input",
            "garbage\n",
        )
        .symlink("../..", "devices/platform/coretemp.0/hwmon/hwmon1/device")
        .symlink(
            "../../devices/platform/coretemp.0/hwmon/hwmon1",
            "class/hwmon/hwmon1",
        )
        .write("class/hwmon/hwmon2/name", "acpitz\n")
        .write("class/hwmon/hwmon2/temp1", "1000\n");
        let mut fams = Families::default();
        let class = t.path().join("class/hwmon");
        let c = HwmonCollector {
            chips: Mutex::new(HashMap::new()),
            chip_filter: DeviceFilter::default(),
            sensor_filter: DeviceFilter::default(),
        };
        for name in ["hwmon1", "hwmon2"] {
            let dir = class.join(name);
            let chip = c.chip(name, &dir).unwrap();
            let human = human_name(&dir);
            let all = DeviceFilter::default();
            chip_metrics(&dir, &chip, human.as_deref(), &all, &mut fams).unwrap();
        }
        // The symlinked chip is cached under its link; asking again gives the same name.
        assert_eq!(c.chips.lock().unwrap().len(), 1);
        assert_eq!(
            c.chip("hwmon1", &class.join("hwmon1")).unwrap(),
            "platform_coretemp_0"
        );
        let out = render(fams);
        let want = "\
# HELP node_hwmon_chip_names Annotation metric for human-readable chip names
# TYPE node_hwmon_chip_names gauge
node_hwmon_chip_names{chip=\"acpitz\",chip_name=\"acpitz\"} 1
node_hwmon_chip_names{chip=\"platform_coretemp_0\",chip_name=\"coretemp\"} 1
# HELP node_hwmon_fan_rpm Hardware monitor for fan revolutions per minute (input)
# TYPE node_hwmon_fan_rpm gauge
node_hwmon_fan_rpm{chip=\"platform_coretemp_0\",sensor=\"fan1\"} 1200
# HELP node_hwmon_sensor_label Label for given chip and sensor
# TYPE node_hwmon_sensor_label gauge
node_hwmon_sensor_label{chip=\"platform_coretemp_0\",label=\"Package id 0\",sensor=\"temp1\"} 1
# HELP node_hwmon_temp_celsius Hardware monitor for temperature (input)
# TYPE node_hwmon_temp_celsius gauge
node_hwmon_temp_celsius{chip=\"acpitz\",sensor=\"temp1\"} 1
node_hwmon_temp_celsius{chip=\"platform_coretemp_0\",sensor=\"temp1\"} 55
# HELP node_hwmon_temp_crit_alarm_celsius Hardware monitor for temperature (crit_alarm)
# TYPE node_hwmon_temp_crit_alarm_celsius gauge
node_hwmon_temp_crit_alarm_celsius{chip=\"platform_coretemp_0\",sensor=\"temp1\"} 0
";
        assert_eq!(out, want);
    }
}
