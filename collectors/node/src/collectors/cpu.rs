//! `cpu`: per-CPU time by mode from `/proc/stat` (`node_cpu_seconds_total`,
//! `node_cpu_guest_seconds_total`), from sysfs thermal throttle counts, isolated CPUs
//! (`node_cpu_isolated`) and which CPUs are online (`node_cpu_online`), and, with
//! `--collector.cpu.info`, from `/proc/cpuinfo`: `node_cpu_info`, `node_cpu_frequency_hertz`
//! and, for the flags and bugs of the first CPU that match `--collector.cpu.info.flags-include`
//! / `-bugs-include`, `node_cpu_flag_info` / `node_cpu_bug_info`.
//!
//! Like node_exporter, the counters never go backwards: a value lower than the last one is
//! ignored (the kernel's idle/iowait accounting can jitter), except that an idle drop of 3s or
//! more is taken as a CPU hotplug and resets that CPU.

use eos_exposition::{Encoder, Kind};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;

use super::stat::{parse_cpu_line, CpuTimes};
use crate::collector::{
    in_procfs, list_dir, parse_f64, read_trimmed, At, Collector, CollectorDef, Ctx, MatchCache,
};
use crate::pattern::Pattern;
use crate::settings::{CollectorSettings, Flag};
use serde::{Deserialize, Serialize};

pub(crate) const DEF: CollectorDef<Settings> = CollectorDef {
    name: "cpu",
    default_enabled: true,
    build: |settings, _| {
        Ok(Box::new(CpuCollector {
            guest: settings.guest,
            info: settings.info_enabled().then(|| {
                Mutex::new(InfoFilters {
                    flags: settings.flags_include.clone().map(MatchCache::new),
                    bugs: settings.bugs_include.clone().map(MatchCache::new),
                })
            }),
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
    /// Export `node_cpu_info` and `node_cpu_frequency_hertz` (`--collector.cpu.info`, default
    /// off).
    pub(crate) info: bool,
    /// Export `node_cpu_flag_info{flag}` for each flag of the first CPU that matches
    /// (`--collector.cpu.info.flags-include`); setting it turns `info` on, as in node_exporter.
    pub(crate) flags_include: Option<Pattern>,
    /// Export `node_cpu_bug_info{bug}` for each bug of the first CPU that matches
    /// (`--collector.cpu.info.bugs-include`); setting it turns `info` on, as in node_exporter.
    pub(crate) bugs_include: Option<Pattern>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            guest: true,
            info: false,
            flags_include: None,
            bugs_include: None,
        }
    }
}

impl Settings {
    /// Whether `/proc/cpuinfo` is read: `info`, or a flags or bugs filter (node_exporter turns
    /// `--collector.cpu.info` on when either include flag is given).
    fn info_enabled(&self) -> bool {
        self.info || self.flags_include.is_some() || self.bugs_include.is_some()
    }
}

impl CollectorSettings for Settings {
    const FLAG_PREFIXES: &'static [&'static str] = &["cpu"];
    const HELP: &'static str = "  --collector.cpu.guest / --no-collector.cpu.guest   node_cpu_guest_seconds_total (default on)
  --collector.cpu.info                        node_cpu_info, node_cpu_frequency_hertz (default off)
  --collector.cpu.info.flags-include=RE       node_cpu_flag_info: first CPU's flags (implies info)
  --collector.cpu.info.bugs-include=RE        node_cpu_bug_info: first CPU's bugs (implies info)
";

    fn apply_flag(&mut self, flag: &Flag<'_>) -> Result<bool, String> {
        match flag.key {
            "guest" => self.guest = flag.bool()?,
            "info" => self.info = flag.bool()?,
            "info.flags-include" => self.flags_include = flag.opt_pattern()?,
            "info.bugs-include" => self.bugs_include = flag.opt_pattern()?,
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
    /// `Some` when `/proc/cpuinfo` is read (`--collector.cpu.info`), with the flag and bug
    /// filters.
    info: Option<Mutex<InfoFilters>>,
    state: Mutex<State>,
}

/// The `--collector.cpu.info.flags-include` / `-bugs-include` patterns, each remembering what
/// it matched (the first CPU's flags do not change between scrapes). `None`: that family is
/// not written.
struct InfoFilters {
    flags: Option<MatchCache>,
    bugs: Option<MatchCache>,
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
        if let Some(filters) = &self.info {
            let mut filters = filters
                .lock()
                .map_err(|_| "cpu info filters poisoned".to_string())?;
            let paths = ctx.paths;
            let infos =
                parse_cpuinfo(ctx.read_proc("cpuinfo")?).map_err(|e| in_procfs(paths, e))?;
            write_info(enc, &infos, &mut filters);
        }
        Ok(())
    }
}

/// The `/proc/cpuinfo` families: `node_cpu_info` and `node_cpu_frequency_hertz` per CPU, and
/// the first CPU's flags and bugs that match their filter (node_exporter takes them from the
/// first CPU only). A CPU without a `cpu MHz` line (arm64) has no frequency series.
fn write_info(enc: &mut Encoder<'_>, infos: &[CpuInfo<'_>], filters: &mut InfoFilters) {
    let cpus: Vec<String> = infos.iter().map(|i| i.processor.to_string()).collect();
    let mut f = enc.family(
        "node_cpu_info",
        "CPU information from /proc/cpuinfo.",
        Kind::Gauge,
    );
    for (i, cpu) in infos.iter().zip(&cpus) {
        f.sample(
            &[
                ("cachesize", i.cache_size),
                ("core", i.core_id),
                ("cpu", cpu),
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
    let mut f = enc.family(
        "node_cpu_frequency_hertz",
        "CPU frequency in hertz from /proc/cpuinfo.",
        Kind::Gauge,
    );
    for (i, cpu) in infos.iter().zip(&cpus) {
        if let Some(mhz) = i.mhz {
            f.sample(
                &[
                    ("core", i.core_id),
                    ("cpu", cpu),
                    ("package", i.physical_id),
                ],
                mhz * 1e6,
            );
        }
    }
    let Some(first) = infos.first() else { return };
    let lists = [
        (
            &mut filters.flags,
            first.flags,
            "node_cpu_flag_info",
            "The `flags` field of CPU information from /proc/cpuinfo taken from the first core.",
            "flag",
        ),
        (
            &mut filters.bugs,
            first.bugs,
            "node_cpu_bug_info",
            "The `bugs` field of CPU information from /proc/cpuinfo taken from the first core.",
            "bug",
        ),
    ];
    for (filter, list, name, help, label) in lists {
        let Some(filter) = filter else { continue };
        // Sorted and once each: a name listed twice would be a duplicate series.
        let matching: BTreeSet<&str> = list
            .split_whitespace()
            .enumerate()
            .filter(|(idx, item)| filter.matches(*idx, item))
            .map(|(_, item)| item)
            .collect();
        let mut f = enc.family(name, help, Kind::Gauge);
        for item in matching {
            f.sample(&[(label, item)], 1.0);
        }
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

/// What the `info` families use of one `/proc/cpuinfo` processor block.
#[derive(Debug, Default, PartialEq)]
struct CpuInfo<'a> {
    processor: u32,
    vendor: &'a str,
    family: &'a str,
    model: &'a str,
    model_name: &'a str,
    microcode: &'a str,
    stepping: &'a str,
    cache_size: &'a str,
    physical_id: &'a str,
    core_id: &'a str,
    /// `cpu MHz`; `None` where the architecture writes no such line (arm64).
    mhz: Option<f64>,
    /// The space-separated `flags` (x86) or `Features` (arm64).
    flags: &'a str,
    /// The space-separated `bugs` (x86).
    bugs: &'a str,
}

/// Parses the `key : value` blocks of `/proc/cpuinfo`, one per `processor` line, as procfs
/// does for x86 (and arm64, whose blocks have `Features` for flags and no `cpu MHz`). Lines
/// before the first `processor` are skipped; a line without `:`, a `processor` that is not a
/// number or a `cpu MHz` that is not a float is an error naming the line.
fn parse_cpuinfo(text: &str) -> Result<Vec<CpuInfo<'_>>, String> {
    const FILE: &str = "/proc/cpuinfo";
    let mut out: Vec<CpuInfo<'_>> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = At(FILE, i + 1);
        let Some((key, value)) = line.split_once(':') else {
            if line.trim().is_empty() {
                continue;
            }
            return Err(format!("{at}: expected \"key : value\", got {line:?}"));
        };
        let (key, value) = (key.trim(), value.trim());
        if key == "processor" {
            let processor = value
                .parse()
                .map_err(|_| format!("{at}: invalid processor number {value:?}"))?;
            out.push(CpuInfo {
                processor,
                ..CpuInfo::default()
            });
            continue;
        }
        let Some(cur) = out.last_mut() else { continue };
        match key {
            "vendor_id" | "vendor" => cur.vendor = value,
            "cpu family" => cur.family = value,
            "model" => cur.model = value,
            "model name" => cur.model_name = value,
            "microcode" => cur.microcode = value,
            "stepping" => cur.stepping = value,
            "cpu MHz" => cur.mhz = Some(parse_f64(value, &at)?),
            "cache size" => cur.cache_size = value,
            "physical id" => cur.physical_id = value,
            "core id" => cur.core_id = value,
            "flags" | "Features" => cur.flags = value,
            "bugs" => cur.bugs = value,
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

    /// Two hyper-threads of an x86 package, as the kernel writes them (trimmed: the real flags
    /// line has some hundred entries).
    const X86: &str = "processor\t: 0
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 142
model name\t: Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz
stepping\t: 10
microcode\t: 0xf4
cpu MHz\t\t: 2100.000
cache size\t: 8192 KB
physical id\t: 0
siblings\t: 2
core id\t\t: 0
cpu cores\t: 1
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr avx2 aes vmx
vmx flags\t: vnmi preemption_timer invvpid ept_x_only
bugs\t\t: cpu_meltdown spectre_v1 spectre_v2 spec_store_bypass l1tf mds swapgs
bogomips\t: 4199.88
address sizes\t: 39 bits physical, 48 bits virtual
power management:

processor\t: 1
vendor_id\t: GenuineIntel
cpu family\t: 6
model\t\t: 142
model name\t: Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz
stepping\t: 10
microcode\t: 0xf4
cpu MHz\t\t: 799.987
cache size\t: 8192 KB
physical id\t: 0
core id\t\t: 1
flags\t\t: fpu vme
bugs\t\t: cpu_meltdown
power management:

";

    /// An arm64 `/proc/cpuinfo` (Neoverse N1): `Features` instead of `flags`, no `cpu MHz`,
    /// no vendor or model name.
    const ARM64: &str = "processor\t: 0
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1

processor\t: 1
BogoMIPS\t: 50.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x3
CPU part\t: 0xd0c
CPU revision\t: 1
";

    #[test]
    fn cpuinfo_x86() {
        let infos = parse_cpuinfo(X86).unwrap();
        assert_eq!(infos.len(), 2);
        let first = &infos[0];
        assert_eq!(first.processor, 0);
        assert_eq!(first.vendor, "GenuineIntel");
        assert_eq!(first.model_name, "Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz");
        assert_eq!(first.cache_size, "8192 KB");
        assert_eq!((first.physical_id, first.core_id), ("0", "0"));
        assert_eq!(first.mhz, Some(2100.0));
        // `vmx flags` is its own key, not `flags`.
        assert!(first.flags.starts_with("fpu vme") && first.flags.ends_with("aes vmx"));
        assert!(first.bugs.ends_with("mds swapgs"));
        assert_eq!(infos[1].processor, 1);
        assert_eq!(infos[1].mhz, Some(799.987));
        assert_eq!(infos[1].flags, "fpu vme");
    }

    #[test]
    fn cpuinfo_arm64_has_features_and_no_frequency() {
        let infos = parse_cpuinfo(ARM64).unwrap();
        assert_eq!(infos.len(), 2);
        assert_eq!(infos[1].processor, 1);
        assert_eq!(infos[0].mhz, None);
        assert_eq!(infos[0].vendor, "");
        assert_eq!(infos[0].bugs, "");
        assert!(infos[0].flags.starts_with("fp asimd") && infos[0].flags.ends_with("cpuid"));
    }

    #[test]
    fn cpuinfo_odd_and_truncated() {
        assert!(parse_cpuinfo("").unwrap().is_empty());
        assert!(parse_cpuinfo("\n\n").unwrap().is_empty());
        // Lines before the first processor belong to no CPU (old 32-bit ARM's `Processor`).
        let infos = parse_cpuinfo("Processor\t: ARMv7 rev 4\nprocessor\t: 3\n").unwrap();
        assert_eq!(infos.len(), 1);
        assert_eq!((infos[0].processor, infos[0].model_name), (3, ""));
        // Cut after a key's colon: an empty value.
        let infos = parse_cpuinfo("processor\t: 0\nmodel name\t:").unwrap();
        assert_eq!(infos[0].model_name, "");
        assert_eq!(
            parse_cpuinfo("processor\t: 0\ncpu MH").unwrap_err(),
            "parsing /proc/cpuinfo line 2: expected \"key : value\", got \"cpu MH\""
        );
        assert_eq!(
            parse_cpuinfo("processor\t: 0\ncpu MHz\t\t: \n").unwrap_err(),
            "parsing /proc/cpuinfo line 2: invalid number \"\""
        );
        assert_eq!(
            parse_cpuinfo("processor\t: 0\ncpu MHz\t\t: fast\n").unwrap_err(),
            "parsing /proc/cpuinfo line 2: invalid number \"fast\""
        );
        assert_eq!(
            parse_cpuinfo("\nprocessor\t: one\n").unwrap_err(),
            "parsing /proc/cpuinfo line 2: invalid processor number \"one\""
        );
        assert!(parse_cpuinfo("processor\t:\n").is_err());
        assert!(parse_cpuinfo("processor\t: -1\n").is_err());
    }

    fn filters(flags: Option<&str>, bugs: Option<&str>) -> InfoFilters {
        let cache = |p: Option<&str>| p.map(|p| MatchCache::new(Pattern::new(p).unwrap()));
        InfoFilters {
            flags: cache(flags),
            bugs: cache(bugs),
        }
    }

    /// What [`write_info`] writes for `text`, without the HELP and TYPE lines.
    fn info_samples(text: &str, filters: &mut InfoFilters) -> Vec<String> {
        let infos = parse_cpuinfo(text).unwrap();
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, eos_exposition::Format::Text);
        write_info(&mut enc, &infos, filters);
        drop(enc);
        String::from_utf8(out)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn frequency_per_cpu_and_the_first_cpus_matching_flags_and_bugs() {
        let mut f = filters(Some("^(avx2|aes|sse)$"), Some("spectre"));
        let samples = info_samples(X86, &mut f);
        let not_info: Vec<&str> = samples
            .iter()
            .map(String::as_str)
            .filter(|l| !l.starts_with("node_cpu_info{"))
            .collect();
        assert_eq!(
            not_info,
            [
                "node_cpu_frequency_hertz{core=\"0\",cpu=\"0\",package=\"0\"} 2.1e+09",
                "node_cpu_frequency_hertz{core=\"1\",cpu=\"1\",package=\"0\"} 7.99987e+08",
                "node_cpu_flag_info{flag=\"aes\"} 1",
                "node_cpu_flag_info{flag=\"avx2\"} 1",
                "node_cpu_bug_info{bug=\"spectre_v1\"} 1",
                "node_cpu_bug_info{bug=\"spectre_v2\"} 1",
            ]
        );
        assert!(samples.contains(
            &"node_cpu_info{cachesize=\"8192 KB\",core=\"1\",cpu=\"1\",family=\"6\",\
microcode=\"0xf4\",model=\"142\",model_name=\"Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz\",\
package=\"0\",stepping=\"10\",vendor=\"GenuineIntel\"} 1"
                .to_string()
        ));
        // The cached matches give the same answer the next scrape.
        assert_eq!(info_samples(X86, &mut f), samples);

        // No filter: no flag or bug family. arm64: no frequency, flags from `Features`, and a
        // flag listed twice is one series.
        let twice = ARM64.replacen("cpuid", "cpuid aes", 1);
        let samples = info_samples(&twice, &mut filters(Some("^(aes|sha2)$"), None));
        let not_info: Vec<&str> = samples
            .iter()
            .map(String::as_str)
            .filter(|l| !l.starts_with("node_cpu_info{"))
            .collect();
        assert_eq!(
            not_info,
            [
                "node_cpu_flag_info{flag=\"aes\"} 1",
                "node_cpu_flag_info{flag=\"sha2\"} 1"
            ]
        );
        assert_eq!(
            samples.first().map(String::as_str),
            Some(
                "node_cpu_info{cachesize=\"\",core=\"\",cpu=\"0\",family=\"\",microcode=\"\",\
model=\"\",model_name=\"\",package=\"\",stepping=\"\",vendor=\"\"} 1"
            )
        );
        assert!(info_samples("", &mut filters(Some("."), Some("."))).is_empty());
    }

    fn flag<'a>(key: &'a str, value: Option<&'a str>) -> Flag<'a> {
        Flag {
            name: "collector.cpu.x",
            key,
            negated: false,
            value,
        }
    }

    #[test]
    fn info_flags() {
        let mut s = Settings::default();
        assert!(!s.info_enabled());
        assert!(s
            .apply_flag(&flag("info.flags-include", Some("^avx")))
            .unwrap());
        assert_eq!(s.flags_include.as_ref().map(Pattern::as_str), Some("^avx"));
        // As in node_exporter, a filter turns the info families on.
        assert!(!s.info && s.info_enabled());
        assert!(s.apply_flag(&flag("info.flags-include", Some(""))).unwrap());
        assert_eq!(s.flags_include, None);
        assert!(!s.info_enabled());
        assert!(s
            .apply_flag(&flag("info.bugs-include", Some("spectre")))
            .unwrap());
        assert!(s.info_enabled());
        assert!(s.apply_flag(&flag("info", None)).unwrap() && s.info);
        let e = s
            .apply_flag(&flag("info.bugs-include", Some("(")))
            .unwrap_err();
        assert!(e.starts_with("--collector.cpu.x: invalid regex"), "{e}");
        assert!(s.apply_flag(&flag("info.bugs-include", None)).is_err());
        // node_exporter has no `--collector.cpu.flags-include`.
        assert!(!s.apply_flag(&flag("flags-include", Some("x"))).unwrap());
    }

    #[test]
    fn a_flags_filter_alone_reads_cpuinfo() {
        let tree = crate::collectors::test_tree::TestTree::new("cpu-info");
        tree.write(
            "proc/stat",
            "cpu  1 0 1 10 0 0 0 0 0 0\ncpu0 1 0 1 10 0 0 0 0 0 0\n",
        )
        .write("proc/cpuinfo", X86)
        .write("sys/devices/system/cpu/cpu0/topology/core_id", "0\n");
        let paths = eos_module::HostPaths {
            procfs: tree.path().join("proc"),
            sysfs: tree.path().join("sys"),
            ..eos_module::HostPaths::default()
        };
        let build = |s: &Settings| (DEF.build)(s, &paths).unwrap();
        let scrape =
            |s: &Settings| crate::collectors::test_tree::scrape(&*build(s), &paths).unwrap();
        let out = scrape(&Settings::default());
        assert!(!out.contains("cpuinfo"), "{out}");
        let s = Settings {
            flags_include: Some(Pattern::new("^vmx$").unwrap()),
            ..Settings::default()
        };
        let out = scrape(&s);
        assert!(out.contains("node_cpu_flag_info{flag=\"vmx\"} 1"), "{out}");
        assert!(
            out.contains("node_cpu_frequency_hertz{core=\"0\",cpu=\"0\",package=\"0\"} 2.1e+09")
        );
        assert!(!out.contains("node_cpu_bug_info"), "{out}");

        // A parse error names the file under the configured procfs.
        tree.write("proc/cpuinfo", "processor\t: 0\ncpu MHz\t: ?\n");
        let e = crate::collectors::test_tree::scrape(&*build(&s), &paths).unwrap_err();
        assert!(e.contains("proc/cpuinfo line 2: invalid number"), "{e}");
        assert!(!e.starts_with("parsing /proc/"), "{e}");
    }
}
