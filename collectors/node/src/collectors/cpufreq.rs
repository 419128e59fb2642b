//! `cpufreq`: CPU frequency scaling from `/sys/devices/system/cpu/cpu*/cpufreq/`.
//!
//! node_exporter reads every file in each `cpufreq` directory, including
//! `cpuinfo_cur_freq`, which on common drivers asks the CPU itself (an inter-processor
//! interrupt and a measurement window) and takes milliseconds per CPU. This collector reads
//! only what it exports: `scaling_cur_freq`, the min/max limits and the governor, so 64 CPUs
//! cost 64 x 5 small reads. `node_cpu_frequency_hertz` (from `cpuinfo_cur_freq`) is therefore
//! not exported; `node_cpu_scaling_frequency_hertz` carries the current frequency.

use eos_exposition::{Encoder, Kind};

use super::cpu::sysfs_cpu_id;
use crate::collector::{list_dir, read_trimmed, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "cpufreq",
    default_enabled: true,
    build: |_, _| Ok(Box::new(CpufreqCollector)),
};

struct CpufreqCollector;

/// (file, metric, help), all in kHz in sysfs and exported in Hz.
const FREQS: [(&str, &str, &str); 5] = [
    (
        "cpuinfo_max_freq",
        "node_cpu_frequency_max_hertz",
        "Maximum CPU thread frequency in hertz.",
    ),
    (
        "cpuinfo_min_freq",
        "node_cpu_frequency_min_hertz",
        "Minimum CPU thread frequency in hertz.",
    ),
    (
        "scaling_cur_freq",
        "node_cpu_scaling_frequency_hertz",
        "Current scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_max_freq",
        "node_cpu_scaling_frequency_max_hertz",
        "Maximum scaled CPU thread frequency in hertz.",
    ),
    (
        "scaling_min_freq",
        "node_cpu_scaling_frequency_min_hertz",
        "Minimum scaled CPU thread frequency in hertz.",
    ),
];

/// One CPU's `cpufreq` directory.
struct Cpu {
    id: String,
    freqs: [Option<f64>; 5],
    governor: Option<String>,
    available_governors: String,
}

impl Collector for CpufreqCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let base = ctx.sys_path("devices/system/cpu");
        let mut cpus = Vec::new();
        for name in list_dir(&base)? {
            ctx.check_deadline("CPUs")?;
            let Some(id) = sysfs_cpu_id(&name) else {
                continue;
            };
            let dir = base.join(&name).join("cpufreq");
            if !dir.is_dir() {
                continue;
            }
            let mut cpu = Cpu {
                id: id.to_string(),
                freqs: [None; 5],
                governor: read_trimmed(&dir.join("scaling_governor"))?,
                available_governors: read_trimmed(&dir.join("scaling_available_governors"))?
                    .unwrap_or_default(),
            };
            for (slot, (file, _, _)) in cpu.freqs.iter_mut().zip(FREQS) {
                let path = dir.join(file);
                *slot = match read_trimmed(&path)? {
                    Some(v) => Some(
                        v.parse::<f64>().map_err(|_| {
                            format!("reading {}: invalid number {v:?}", path.display())
                        })? * 1000.0,
                    ),
                    None => None,
                };
            }
            cpus.push(cpu);
        }
        cpus.sort_by_key(|c| c.id.parse::<u32>().unwrap_or(u32::MAX));
        for (col, (_, name, help)) in FREQS.iter().enumerate() {
            let mut f = enc.family(name, help, Kind::Gauge);
            for c in &cpus {
                if let Some(Some(v)) = c.freqs.get(col) {
                    f.sample(&[("cpu", &c.id)], *v);
                }
            }
        }
        let mut f = enc.family(
            "node_cpu_scaling_governor",
            "Current enabled CPU frequency governor.",
            Kind::Gauge,
        );
        for c in &cpus {
            let Some(current) = &c.governor else { continue };
            for (g, on) in governors(current, &c.available_governors) {
                f.sample(
                    &[("cpu", &c.id), ("governor", g)],
                    if on { 1.0 } else { 0.0 },
                );
            }
        }
        Ok(())
    }
}

/// Every available governor with whether it is the current one (the current one is always
/// listed, even if the driver does not list what is available).
fn governors<'a>(current: &'a str, available: &'a str) -> Vec<(&'a str, bool)> {
    let mut out: Vec<(&str, bool)> = available
        .split_ascii_whitespace()
        .map(|g| (g, g == current))
        .collect();
    if !out.iter().any(|(_, on)| *on) {
        out.push((current, true));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn governor_list() {
        assert_eq!(
            governors("powersave", "performance powersave"),
            vec![("performance", false), ("powersave", true)]
        );
        assert_eq!(governors("schedutil", ""), vec![("schedutil", true)]);
    }
}
