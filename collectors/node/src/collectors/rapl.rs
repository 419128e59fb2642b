//! `rapl`: energy counters of the CPU's Running Average Power Limit domains from
//! `<sysfs>/class/powercap/*/` as `node_rapl_<domain>_joules_total{index,path}`. Without
//! powercap, or without permission to read `energy_uj` (root only on current kernels),
//! nothing is written.

use eos_exposition::{sanitize_name, Encoder, Kind};
use std::collections::HashMap;

use crate::collector::{list_dir, parse_u64, read_trimmed, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "rapl",
    default_enabled: true,
    build: |_, _| Ok(Box::new(RaplCollector)),
};

struct RaplCollector;

/// One RAPL zone: domain name (`package`, `core`, `dram`, ...), its index and directory.
#[derive(Debug, PartialEq)]
struct Zone {
    name: String,
    index: u64,
    path: String,
    joules: f64,
}

impl Collector for RaplCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let base = ctx.sys_path("class/powercap");
        let mut zones: Vec<Zone> = Vec::new();
        let mut used: HashMap<String, u64> = HashMap::new();
        for entry in list_dir(&base)? {
            let dir = base.join(&entry);
            let Some(raw_name) = read_trimmed(&dir.join("name"))? else {
                continue; // the control type directory itself has no name
            };
            let (name, index) = zone_name(&raw_name, &used)?;
            used.insert(name.clone(), index + 1);
            let energy_path = dir.join("energy_uj");
            let energy = match std::fs::read_to_string(&energy_path) {
                Ok(v) => v,
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Ok(()),
                Err(e) if crate::collector::is_not_found(&e) => continue,
                Err(e) => return Err(crate::collector::io_error(&energy_path, &e)),
            };
            let uj = parse_u64(energy.trim(), &energy_path.display())?;
            zones.push(Zone {
                name,
                index,
                path: dir.display().to_string(),
                joules: uj as f64 / 1_000_000.0,
            });
        }
        let mut done: Vec<&str> = Vec::new();
        for z in &zones {
            if done.contains(&z.name.as_str()) {
                continue;
            }
            done.push(&z.name);
            let metric = format!(
                "node_rapl_{}",
                sanitize_name(&format!("{}_joules_total", z.name))
            );
            let help = format!("Current RAPL {} value in joules", z.name);
            let mut f = enc.family(&metric, &help, Kind::Counter);
            for same in zones.iter().filter(|o| o.name == z.name) {
                let index = same.index.to_string();
                f.sample(&[("index", &index), ("path", &same.path)], same.joules);
            }
        }
        Ok(())
    }
}

/// `package-1` -> (`package`, 1); a name without an index (`dram`) gets the next unused
/// index for that name.
fn zone_name(raw: &str, used: &HashMap<String, u64>) -> Result<(String, u64), String> {
    let parts: Vec<&str> = raw.split('-').collect();
    if let [name, index] = parts.as_slice() {
        let index = index
            .parse()
            .map_err(|_| format!("RAPL zone name {raw:?}: invalid index"))?;
        return Ok((name.to_string(), index));
    }
    Ok((raw.to_string(), used.get(raw).copied().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_names() {
        let mut used = HashMap::new();
        assert_eq!(
            zone_name("package-0", &used).unwrap(),
            ("package".into(), 0)
        );
        assert_eq!(
            zone_name("package-1", &used).unwrap(),
            ("package".into(), 1)
        );
        assert_eq!(zone_name("dram", &used).unwrap(), ("dram".into(), 0));
        used.insert("dram".to_string(), 1);
        assert_eq!(zone_name("dram", &used).unwrap(), ("dram".into(), 1));
        assert!(zone_name("package-x", &used).is_err());
    }
}
