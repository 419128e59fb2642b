//! `cpu`: per-CPU time by mode from `/proc/stat` (`node_cpu_seconds_total`,
//! `node_cpu_guest_seconds_total`), from sysfs thermal throttle counts, isolated CPUs
//! (`node_cpu_isolated`) and which CPUs are online (`node_cpu_online`), and, with
//! `--collector.cpu.info`, `node_cpu_info` from `/proc/cpuinfo`.
//!
//! Like node_exporter, the counters never go backwards: a value lower than the last one is
//! ignored (the kernel's idle/iowait accounting can jitter), except that an idle drop of 3s or
//! more is taken as a CPU hotplug and resets that CPU.

use eos_exposition::{Encoder, Kind};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;

use super::stat::{parse_cpu_line, CpuTimes};
use crate::collector::{list_dir, read_trimmed, Collector, CollectorDef, Ctx};
use crate::settings::{CollectorSettings, Flag};
use serde::{Deserialize, Serialize};

pub(crate) const DEF: CollectorDef<Settings> = CollectorDef {
    name: "cpu",
    default_enabled: true,
    build: |settings, _| {
        Ok(Box::new(CpuCollector {
            guest: settings.guest,
            info: settings.info,
            state: Mutex::new(State::default()),
        }))
    },
};

/// `modules.node.cpu`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settings {
    /// Export `node_cpu_guest_seconds_total` (`--collector.cpu.guest`, default on).
    pub(crate) guest: bool,
    /// Export `node_cpu_info` (`--collector.cpu.info`, default off).
    pub(crate) info: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            guest: true,
            info: false,
        }
    }
}

impl CollectorSettings for Settings {
    const FLAG_PREFIXES: &'static [&'static str] = &["cpu"];
    const HELP: &'static str = "  --collector.cpu.guest / --no-collector.cpu.guest   node_cpu_guest_seconds_total (default on)
  --collector.cpu.info                        node_cpu_info (default off)
";

    fn apply_flag(&mut self, flag: &Flag<'_>) -> Result<bool, String> {
        match flag.key {
            "guest" => self.guest = flag.bool()?,
            "info" => self.info = flag.bool()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// Mode labels for the first 8 `/proc/stat` fields.
const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];
const IDLE: usize = 3;
const JUMP_BACK_SECONDS: f64 = 3.0;

struct CpuCollector {
    guest: bool,
    info: bool,
    state: Mutex<State>,
}

/// What is kept between scrapes: the last exported times per CPU, and scratch space.
#[derive(Default)]
struct State {
    /// (cpu id, its label, the last exported times), in file order.
    last: Vec<(u32, String, CpuTimes)>,
    fresh: Vec<(u32, CpuTimes)>,
}

impl Collector for CpuCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| "cpu state poisoned".to_string())?;
        let State { last, fresh } = &mut *state;
        fresh.clear();
        for (i, line) in ctx.read_proc("stat")?.lines().enumerate() {
            if let Some(parsed) = parse_cpu_line(line, i + 1) {
                fresh.push(parsed?);
            }
        }
        merge_monotonic(last, fresh);

        let mut f = enc.family(
            "node_cpu_seconds_total",
            "Seconds the CPUs spent in each mode.",
            Kind::Counter,
        );
        for (_, label, times) in last.iter() {
            for (mode, v) in MODES.iter().zip(times) {
                f.sample(&[("cpu", label), ("mode", mode)], *v);
            }
        }
        if self.guest {
            let mut f = enc.family(
                "node_cpu_guest_seconds_total",
                "Seconds the CPUs spent in guests (VMs) for each mode.",
                Kind::Counter,
            );
            for (_, label, times) in last.iter() {
                f.sample(&[("cpu", label), ("mode", "nice")], times[9]);
                f.sample(&[("cpu", label), ("mode", "user")], times[8]);
            }
        }
        drop(state);
        let base = ctx.sys_path("devices/system/cpu");
        let cpus: Vec<String> = list_dir(&base)?
            .into_iter()
            .filter(|name| sysfs_cpu_id(name).is_some())
            .collect();
        write_throttles(enc, ctx, &base, &cpus)?;
        write_isolated(enc, ctx, &base)?;
        write_online(enc, ctx, &base, &cpus)?;
        if self.info {
            let infos = parse_cpuinfo(ctx.read_proc("cpuinfo")?)?;
            let mut f = enc.family(
                "node_cpu_info",
                "CPU information from /proc/cpuinfo.",
                Kind::Gauge,
            );
            for i in &infos {
                f.sample(
                    &[
                        ("cachesize", i.cache_size),
                        ("core", i.core_id),
                        ("cpu", i.processor),
                        ("family", i.family),
                        ("microcode", i.microcode),
                        ("model", i.model),
                        ("model_name", i.model_name),
                        ("package", i.physical_id),
                        ("stepping", i.stepping),
                        ("vendor", i.vendor),
                    ],
                    1.0,
                );
            }
        }
        Ok(())
    }
}

/// `node_cpu_core_throttles_total{core,package}` and
/// `node_cpu_package_throttles_total{package}`, where the kernel has `thermal_throttle`.
/// `cpus` are the `cpuN` entries of `base` (`/sys/devices/system/cpu`).
fn write_throttles(
    enc: &mut Encoder<'_>,
    ctx: &Ctx<'_>,
    base: &Path,
    cpus: &[String],
) -> Result<(), String> {
    if !base.join("cpu0/thermal_throttle").is_dir() {
        return Ok(());
    }
    let mut cores: BTreeSet<(String, String, u64)> = BTreeSet::new();
    let mut packages: BTreeSet<(String, u64)> = BTreeSet::new();
    let mut seen_core: BTreeSet<(String, String)> = BTreeSet::new();
    let mut seen_pkg: BTreeSet<String> = BTreeSet::new();
    for name in cpus {
        ctx.check_deadline("CPUs")?;
        let dir = base.join(name);
        let (Some(pkg), Some(core)) = (
            read_trimmed(&dir.join("topology/physical_package_id"))?,
            read_trimmed(&dir.join("topology/core_id"))?,
        ) else {
            continue;
        };
        let count = |file: &str| -> Result<Option<u64>, String> {
            let path = dir.join("thermal_throttle").join(file);
            match read_trimmed(&path)? {
                Some(v) => v
                    .parse()
                    .map(Some)
                    .map_err(|_| format!("reading {}: invalid number {v:?}", path.display())),
                None => Ok(None),
            }
        };
        if seen_core.insert((pkg.clone(), core.clone())) {
            if let Some(n) = count("core_throttle_count")? {
                cores.insert((pkg.clone(), core, n));
            }
        }
        if seen_pkg.insert(pkg.clone()) {
            if let Some(n) = count("package_throttle_count")? {
                packages.insert((pkg, n));
            }
        }
    }
    let mut f = enc.family(
        "node_cpu_core_throttles_total",
        "Number of times this CPU core has been throttled.",
        Kind::Counter,
    );
    for (pkg, core, n) in &cores {
        f.sample(&[("core", core), ("package", pkg)], *n as f64);
    }
    let mut f = enc.family(
        "node_cpu_package_throttles_total",
        "Number of times this CPU package has been throttled.",
        Kind::Counter,
    );
    for (pkg, n) in &packages {
        f.sample(&[("package", pkg)], *n as f64);
    }
    Ok(())
}

/// `node_cpu_isolated{cpu} 1` for each CPU in `isolated` (the `isolcpus=` list); nothing when
/// the kernel has no such file or isolates no CPU.
fn write_isolated(enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>, base: &Path) -> Result<(), String> {
    let path = base.join("isolated");
    let Some(text) = ctx.read_optional(&path)? else {
        return Ok(());
    };
    let isolated = parse_cpu_list(text).map_err(|e| format!("{}: {e}", path.display()))?;
    if isolated.is_empty() {
        return Ok(());
    }
    let mut f = enc.family(
        "node_cpu_isolated",
        "Whether each core is isolated, information from /sys/devices/system/cpu/isolated.",
        Kind::Gauge,
    );
    for cpu in isolated {
        f.sample(&[("cpu", &cpu.to_string())], 1.0);
    }
    Ok(())
}

/// `node_cpu_online{cpu}` from each `cpuN/online`, as node_exporter 1.9+ writes it: only when
/// the first CPU (`cpu0`) has the file (x86 gives the boot CPU none, and then there is no
/// family at all); 1 for `1`, 0 for anything else, a missing or unreadable file included.
fn write_online(
    enc: &mut Encoder<'_>,
    ctx: &Ctx<'_>,
    base: &Path,
    cpus: &[String],
) -> Result<(), String> {
    let Some(first) = cpus.first() else {
        return Ok(());
    };
    let online = |name: &str| read_trimmed(&base.join(name).join("online"));
    if matches!(online(first), Ok(None)) {
        return Ok(());
    }
    let mut values = Vec::with_capacity(cpus.len());
    for name in cpus {
        ctx.check_deadline("CPUs")?;
        let on = matches!(online(name), Ok(Some(v)) if v == "1");
        values.push((
            sysfs_cpu_id(name).unwrap_or(name),
            if on { 1.0 } else { 0.0 },
        ));
    }
    let mut f = enc.family(
        "node_cpu_online",
        "CPUs that are online and being scheduled.",
        Kind::Gauge,
    );
    for (cpu, v) in values {
        f.sample(&[("cpu", cpu)], v);
    }
    Ok(())
}

/// Parses a kernel CPU list (`0-3,8,10-11`, as in `/sys/devices/system/cpu/isolated`); an
/// empty list (a lone newline) has no CPUs.
fn parse_cpu_list(text: &str) -> Result<Vec<u16>, String> {
    let mut out = Vec::new();
    for item in text.trim().split(',').filter(|i| !i.is_empty()) {
        let number = |s: &str| {
            s.parse::<u16>()
                .map_err(|_| format!("invalid CPU number {s:?} in {item:?}"))
        };
        match item.split_once('-') {
            Some((from, to)) => out.extend(number(from)?..=number(to)?),
            None => out.push(number(item)?),
        }
    }
    Ok(out)
}

/// The number of a `/sys/devices/system/cpu/cpuN` entry; `None` for the directory's other
/// entries (`cpufreq`, `cpuidle`, `possible`, ...).
pub(super) fn sysfs_cpu_id(name: &str) -> Option<&str> {
    let id = name.strip_prefix("cpu")?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

/// Folds freshly read times into the last exported ones, keeping counters monotonic.
fn merge_monotonic(last: &mut Vec<(u32, String, CpuTimes)>, fresh: &[(u32, CpuTimes)]) {
    let same_cpus =
        last.len() == fresh.len() && last.iter().zip(fresh).all(|((a, _, _), (b, _))| a == b);
    if !same_cpus {
        last.clear();
        last.extend(fresh.iter().map(|(id, t)| (*id, id.to_string(), *t)));
        return;
    }
    for ((_, _, old), (_, new)) in last.iter_mut().zip(fresh) {
        if old[IDLE] - new[IDLE] >= JUMP_BACK_SECONDS {
            *old = *new;
            continue;
        }
        for (o, n) in old.iter_mut().zip(new) {
            if *n >= *o {
                *o = *n;
            }
        }
    }
}

/// The `node_cpu_info` labels of one `/proc/cpuinfo` block.
#[derive(Debug, Default, PartialEq)]
struct CpuInfo<'a> {
    processor: &'a str,
    vendor: &'a str,
    family: &'a str,
    model: &'a str,
    model_name: &'a str,
    microcode: &'a str,
    stepping: &'a str,
    cache_size: &'a str,
    physical_id: &'a str,
    core_id: &'a str,
}

/// Parses the x86-style `key : value` blocks of `/proc/cpuinfo` (one per `processor`).
fn parse_cpuinfo(text: &str) -> Result<Vec<CpuInfo<'_>>, String> {
    let mut out: Vec<CpuInfo<'_>> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let Some((key, value)) = line.split_once(':') else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(format!("parsing /proc/cpuinfo line {}: no ':'", i + 1));
        };
        let (key, value) = (key.trim(), value.trim());
        if key == "processor" {
            out.push(CpuInfo {
                processor: value,
                ..CpuInfo::default()
            });
            continue;
        }
        let Some(cur) = out.last_mut() else { continue };
        match key {
            "vendor_id" => cur.vendor = value,
            "cpu family" => cur.family = value,
            "model" => cur.model = value,
            "model name" => cur.model_name = value,
            "microcode" => cur.microcode = value,
            "stepping" => cur.stepping = value,
            "cache size" => cur.cache_size = value,
            "physical id" => cur.physical_id = value,
            "core id" => cur.core_id = value,
            _ => {}
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn times(idle: f64, user: f64) -> CpuTimes {
        let mut t = [0.0; 10];
        t[IDLE] = idle;
        t[0] = user;
        t
    }

    #[test]
    fn sysfs_cpu_entries() {
        assert_eq!(sysfs_cpu_id("cpu0"), Some("0"));
        assert_eq!(sysfs_cpu_id("cpu12"), Some("12"));
        for other in ["cpu", "cpufreq", "cpuidle", "cpu1a", "possible", "online"] {
            assert_eq!(sysfs_cpu_id(other), None, "{other}");
        }
    }

    #[test]
    fn counters_stay_monotonic() {
        let mut last = Vec::new();
        merge_monotonic(&mut last, &[(0, times(100.0, 10.0)), (1, times(50.0, 5.0))]);
        assert_eq!(last[1].1, "1");
        // idle jitters back a little: kept; user goes forward.
        merge_monotonic(&mut last, &[(0, times(99.5, 11.0)), (1, times(51.0, 5.0))]);
        assert_eq!(last[0].2[IDLE], 100.0);
        assert_eq!(last[0].2[0], 11.0);
        assert_eq!(last[1].2[IDLE], 51.0);
        // a big idle drop is a hotplug: reset.
        merge_monotonic(&mut last, &[(0, times(1.0, 0.5)), (1, times(52.0, 5.0))]);
        assert_eq!(last[0].2[IDLE], 1.0);
        assert_eq!(last[0].2[0], 0.5);
        // a CPU going offline changes the set: start over.
        merge_monotonic(&mut last, &[(0, times(2.0, 1.0))]);
        assert_eq!(last.len(), 1);
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("\n").unwrap(), Vec::<u16>::new());
        assert_eq!(parse_cpu_list("").unwrap(), Vec::<u16>::new());
        assert_eq!(parse_cpu_list("1\n").unwrap(), [1]);
        assert_eq!(
            parse_cpu_list("0-2,8,10-11\n").unwrap(),
            [0, 1, 2, 8, 10, 11]
        );
        assert_eq!(parse_cpu_list("3-2").unwrap(), Vec::<u16>::new());
        let e = parse_cpu_list("1,x-3").unwrap_err();
        assert_eq!(e, "invalid CPU number \"x\" in \"x-3\"");
        assert!(parse_cpu_list("1-").is_err());
        assert!(parse_cpu_list("70000").is_err());
    }

    /// The sysfs families of a tree laid out like `/sys/devices/system/cpu`.
    fn sysfs_families(tree: &crate::collectors::test_tree::TestTree) -> String {
        let paths = eos_module::HostPaths {
            sysfs: tree.path().to_path_buf(),
            ..eos_module::HostPaths::default()
        };
        let mut buf = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut ctx = Ctx::new(&paths, deadline, &mut buf);
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, eos_exposition::Format::Text);
        let base = ctx.sys_path("devices/system/cpu");
        let cpus: Vec<String> = list_dir(&base)
            .unwrap()
            .into_iter()
            .filter(|n| sysfs_cpu_id(n).is_some())
            .collect();
        write_isolated(&mut enc, &mut ctx, &base).unwrap();
        write_online(&mut enc, &ctx, &base, &cpus).unwrap();
        drop(enc);
        String::from_utf8(out)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn online_needs_cpu0s_file_then_covers_every_cpu() {
        let tree = crate::collectors::test_tree::TestTree::new("cpu-online");
        // x86: the boot CPU has no `online` file, so node_exporter writes no family.
        tree.write("devices/system/cpu/cpu0/topology/core_id", "0\n")
            .write("devices/system/cpu/cpu1/online", "1\n")
            .write("devices/system/cpu/isolated", "\n");
        assert_eq!(sysfs_families(&tree), "");

        // Every CPU has one (arm64): 1 for online, 0 for offline and for a missing file.
        tree.write("devices/system/cpu/cpu0/online", "1\n")
            .write("devices/system/cpu/cpu2/online", "0\n")
            .write("devices/system/cpu/cpu10/topology/core_id", "0\n")
            .write("devices/system/cpu/cpufreq/boost", "1\n")
            .write("devices/system/cpu/isolated", "1-2\n");
        assert_eq!(
            sysfs_families(&tree),
            "node_cpu_isolated{cpu=\"1\"} 1\nnode_cpu_isolated{cpu=\"2\"} 1\n\
             node_cpu_online{cpu=\"0\"} 1\nnode_cpu_online{cpu=\"1\"} 1\n\
             node_cpu_online{cpu=\"10\"} 0\nnode_cpu_online{cpu=\"2\"} 0"
        );

        tree.write("devices/system/cpu/isolated", "1-x\n");
        let paths = eos_module::HostPaths {
            sysfs: tree.path().to_path_buf(),
            ..eos_module::HostPaths::default()
        };
        let mut buf = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut ctx = Ctx::new(&paths, deadline, &mut buf);
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, eos_exposition::Format::Text);
        let base = ctx.sys_path("devices/system/cpu");
        let e = write_isolated(&mut enc, &mut ctx, &base).unwrap_err();
        assert!(
            e.ends_with("isolated: invalid CPU number \"x\" in \"1-x\""),
            "{e}"
        );
    }

    #[test]
    fn cpuinfo() {
        let text = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\n\
model name\t: AMD EPYC\nstepping\t: 1\nmicrocode\t: 0x1000065\ncache size\t: 1024 KB\n\
physical id\t: 0\ncore id\t\t: 0\nflags\t\t: fpu vme\npower management:\n\nprocessor\t: 1\n";
        let infos = parse_cpuinfo(text).unwrap();
        assert_eq!(infos.len(), 2);
        assert_eq!(infos[0].model_name, "AMD EPYC");
        assert_eq!(infos[0].cache_size, "1024 KB");
        assert_eq!(infos[1].processor, "1");
        assert_eq!(infos[1].vendor, "");
        assert!(parse_cpuinfo("processor : 0\ngarbage\n").is_err());
        assert!(parse_cpuinfo("").unwrap().is_empty());
    }
}
