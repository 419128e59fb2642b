//! `thermal_zone`: zone temperatures and cooling device states from `/sys/class/thermal`.
//!
//! Zones that are disabled or whose attributes cannot be read are skipped, as node_exporter
//! does; a value that is there but not a number is an error.

use std::path::Path;

use eos_exposition::{Encoder, Kind};

use crate::collector::{list_dir, parse_i64, read_trimmed, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "thermal_zone",
    default_enabled: true,
    build: |_cfg, _paths| Ok(Box::new(ThermalZoneCollector)),
};

struct ThermalZoneCollector;

/// One `thermal_zoneN`: (zone number, type, temperature in millidegrees Celsius).
type Zone = (String, String, i64);
/// One `cooling_deviceN`: (number, type, current state, maximum state).
type Cooling = (String, String, i64, i64);

impl Collector for ThermalZoneCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let root = ctx.sys_path("class/thermal");
        let mut zones = Vec::new();
        let mut coolers = Vec::new();
        for name in list_dir(&root)? {
            if let Some(n) = numbered(&name, "thermal_zone") {
                if let Some(z) = read_zone(&root.join(&name), n)? {
                    zones.push(z);
                }
            } else if let Some(n) = numbered(&name, "cooling_device") {
                if let Some(c) = read_cooling(&root.join(&name), n)? {
                    coolers.push(c);
                }
            }
        }
        // Series in label-value order: cooling devices by (name, type), zones by (type, zone).
        coolers.sort_unstable();
        zones.sort_unstable_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
        let mut fam = enc.family(
            "node_cooling_device_cur_state",
            "Current throttle state of the cooling device",
            Kind::Gauge,
        );
        for (name, ty, cur, _) in &coolers {
            fam.sample(&[("name", name), ("type", ty)], *cur as f64);
        }
        let mut fam = enc.family(
            "node_cooling_device_max_state",
            "Maximum throttle state of the cooling device",
            Kind::Gauge,
        );
        for (name, ty, _, max) in &coolers {
            fam.sample(&[("name", name), ("type", ty)], *max as f64);
        }
        let mut fam = enc.family(
            "node_thermal_zone_temp",
            "Zone temperature in Celsius",
            Kind::Gauge,
        );
        for (zone, ty, temp) in &zones {
            fam.sample(&[("type", ty), ("zone", zone)], *temp as f64 / 1000.0);
        }
        Ok(())
    }
}

/// `thermal_zone12` -> `12` (glob `<prefix>[0-9]*`; the label is the whole rest).
fn numbered<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = name.strip_prefix(prefix)?;
    rest.starts_with(|c: char| c.is_ascii_digit())
        .then_some(rest)
}

/// Reads one zone; `None` when it is disabled or an attribute is unreadable.
fn read_zone(dir: &Path, zone: &str) -> Result<Option<Zone>, String> {
    if let Ok(Some(mode)) = read_trimmed(&dir.join("mode")) {
        if mode == "disabled" {
            return Ok(None);
        }
    }
    let (Ok(Some(ty)), Ok(Some(_policy)), Ok(Some(temp))) = (
        read_trimmed(&dir.join("type")),
        read_trimmed(&dir.join("policy")),
        read_trimmed(&dir.join("temp")),
    ) else {
        return Ok(None);
    };
    let temp = parse_i64(&temp, &dir.join("temp").display())?;
    Ok(Some((zone.to_string(), ty, temp)))
}

/// Reads one cooling device; `None` when an attribute is unreadable. `cur_state` may be
/// negative (intel_powerclamp reports -1).
fn read_cooling(dir: &Path, name: &str) -> Result<Option<Cooling>, String> {
    let (Ok(Some(ty)), Ok(Some(max)), Ok(Some(cur))) = (
        read_trimmed(&dir.join("type")),
        read_trimmed(&dir.join("max_state")),
        read_trimmed(&dir.join("cur_state")),
    ) else {
        return Ok(None);
    };
    let max = parse_i64(&max, &dir.join("max_state").display())?;
    let cur = parse_i64(&cur, &dir.join("cur_state").display())?;
    Ok(Some((name.to_string(), ty, cur, max)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_tree::TestTree;

    #[test]
    fn names() {
        assert_eq!(numbered("thermal_zone0", "thermal_zone"), Some("0"));
        assert_eq!(numbered("thermal_zone", "thermal_zone"), None);
        assert_eq!(numbered("cooling_device10", "cooling_device"), Some("10"));
        assert_eq!(numbered("cooling_devicex", "cooling_device"), None);
    }

    #[test]
    fn zones() {
        let t = TestTree::new("thermal");
        t.write("z0/type", "bcm2835_thermal\n")
            .write("z0/policy", "step_wise\n")
            .write("z0/temp", "49925\n")
            .write("z1/type", "acpitz\n")
            .write("z1/policy", "step_wise\n")
            .write("z1/temp", "-5000\n")
            .write("z1/mode", "disabled\n")
            .write("z2/type", "x\n")
            .write("z2/temp", "1\n")
            .write("z3/type", "x\n")
            .write("z3/policy", "step_wise\n")
            .write("z3/temp", "hot\n");
        let z = |n: &str| read_zone(&t.path().join(n), n);
        assert_eq!(
            z("z0").unwrap(),
            Some(("z0".into(), "bcm2835_thermal".into(), 49925))
        );
        assert_eq!(z("z1").unwrap(), None, "disabled");
        assert_eq!(z("z2").unwrap(), None, "no policy");
        assert!(z("z3").is_err(), "garbled temperature");
    }

    #[test]
    fn cooling_devices() {
        let t = TestTree::new("cooling");
        t.write("c0/type", "Processor\n")
            .write("c0/max_state", "50\n")
            .write("c0/cur_state", "-1\n")
            .write("c1/type", "fan\n")
            .write("c1/max_state", "x\n")
            .write("c1/cur_state", "0\n")
            .write("c2/type", "fan\n");
        let c = |n: &str| read_cooling(&t.path().join(n), n);
        assert_eq!(
            c("c0").unwrap(),
            Some(("c0".into(), "Processor".into(), -1, 50))
        );
        assert!(c("c1").is_err());
        assert_eq!(c("c2").unwrap(), None);
    }
}
