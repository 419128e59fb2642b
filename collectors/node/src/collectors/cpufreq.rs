//! `cpufreq`: CPU frequency scaling from `/sys/devices/system/cpu/cpu*/cpufreq/`.
//!
//! node_exporter reads every file in each `cpufreq` directory, including
//! `cpuinfo_cur_freq`, which on common drivers asks the CPU itself (an inter-processor
//! interrupt and a measurement window) and takes milliseconds per CPU. This collector reads
//! only what it exports: `scaling_cur_freq`, the min/max limits, the governor and (on newer
//! kernels) `cpuinfo_avg_freq`, the hardware's average over the last few milliseconds,
//! which node_exporter 1.12 exports as `node_cpu_frequency_avg_hertz` and which costs no
//! IPI. `node_cpu_frequency_hertz` (from `cpuinfo_cur_freq`) is therefore not exported;
//! `node_cpu_scaling_frequency_hertz` and `node_cpu_frequency_avg_hertz` carry the current
//! frequency.

use eos_exposition::{Encoder, Kind};

use super::cpu::sysfs_cpu_id;
use crate::collector::{
    io_error, is_not_found, list_dir, read_trimmed, Collector, CollectorDef, Ctx,
};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "cpufreq",
    default_enabled: true,
    build: |_, _| Ok(Box::new(CpufreqCollector)),
};

struct CpufreqCollector;

/// (file, metric, help), all in kHz in sysfs and exported in Hz.
const FREQS: [(&str, &str, &str); 6] = [
    (
        "cpuinfo_avg_freq",
        "node_cpu_frequency_avg_hertz",
        "Average CPU thread frequency in hertz.",
    ),
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
    freqs: [Option<f64>; FREQS.len()],
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
                freqs: [None; FREQS.len()],
                governor: read_trimmed(&dir.join("scaling_governor"))?,
                available_governors: read_trimmed(&dir.join("scaling_available_governors"))?
                    .unwrap_or_default(),
            };
            for (slot, (file, _, _)) in cpu.freqs.iter_mut().zip(FREQS) {
                let path = dir.join(file);
                *slot = match read_frequency(&path)? {
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

/// Reads a frequency attribute. `cpuinfo_avg_freq` answers `EAGAIN` for a CPU that has been
/// idle too long to have a recent sample: no value, not an error.
/// Otherwise like [`read_trimmed`].
fn read_frequency(path: &std::path::Path) -> Result<Option<String>, String> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).trim().to_string())),
        Err(e)
            if is_not_found(&e)
                || e.raw_os_error() == Some(libc::EINVAL)
                || e.raw_os_error() == Some(libc::EAGAIN) =>
        {
            Ok(None)
        }
        Err(e) => Err(io_error(path, &e)),
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
    fn frequency_files() {
        let t = crate::collectors::test_tree::TestTree::new("cpufreq-read");
        t.write("cpuinfo_avg_freq", "2400000\n");
        assert_eq!(
            read_frequency(&t.path().join("cpuinfo_avg_freq"))
                .unwrap()
                .as_deref(),
            Some("2400000")
        );
        assert_eq!(read_frequency(&t.path().join("missing")).unwrap(), None);
        // A directory is neither absent nor readable: an error naming it.
        let e = read_frequency(t.path()).unwrap_err();
        assert!(e.contains(&t.path().display().to_string()), "{e}");
    }

    #[test]
    fn governor_list() {
        assert_eq!(
            governors("powersave", "performance powersave"),
            vec![("performance", false), ("powersave", true)]
        );
        assert_eq!(governors("schedutil", ""), vec![("schedutil", true)]);
    }
}
