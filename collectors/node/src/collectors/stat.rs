//! `stat`: kernel totals from `/proc/stat` (interrupts, context switches, forks, boot time,
//! running/blocked processes, and softirqs per vector with `--collector.stat.softirq`).
//!
//! The per-CPU `cpu` lines of the same file are parsed here too ([`parse_cpu_line`]) and used
//! by the `cpu` collector.

use eos_exposition::{Encoder, Kind};

use crate::collector::in_procfs;
use crate::collector::{parse_f64, parse_u64, At, Collector, CollectorDef, Ctx};
use crate::settings::{CollectorSettings, Flag};
use serde::{Deserialize, Serialize};

pub(crate) const DEF: CollectorDef<Settings> = CollectorDef {
    name: "stat",
    default_enabled: true,
    build: |settings, _| {
        Ok(Box::new(StatCollector {
            softirq: settings.softirq,
        }))
    },
};

/// `modules.node.stat`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settings {
    /// Export `node_softirqs_total` per vector (`--collector.stat.softirq`, default off).
    pub(crate) softirq: bool,
}

impl CollectorSettings for Settings {
    const FLAG_PREFIXES: &'static [&'static str] = &["stat"];
    const HELP: &'static str =
        "  --collector.stat.softirq                    node_softirqs_total per vector (default off)
";

    fn apply_flag(&mut self, flag: &Flag<'_>) -> Result<bool, String> {
        match flag.key {
            "softirq" => self.softirq = flag.bool()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The kernel's `USER_HZ`: `/proc/stat` counts CPU time in these ticks.
pub(crate) const USER_HZ: f64 = 100.0;

/// Softirq vector names, in `/proc/stat` order.
const SOFTIRQ_VECTORS: [&str; 10] = [
    "hi",
    "timer",
    "net_tx",
    "net_rx",
    "block",
    "block_iopoll",
    "tasklet",
    "sched",
    "hrtimer",
    "rcu",
];

struct StatCollector {
    softirq: bool,
}

/// The totals of `/proc/stat`.
#[derive(Debug, Default, PartialEq)]
struct Stat {
    intr: u64,
    ctxt: u64,
    btime: u64,
    processes: u64,
    procs_running: u64,
    procs_blocked: u64,
    softirq_total: u64,
    softirqs: [u64; 10],
}

impl Collector for StatCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let paths = ctx.paths;
        let s = parse_stat(ctx.read_proc("stat")?).map_err(|e| in_procfs(paths, e))?;
        let c = Kind::Counter;
        let g = Kind::Gauge;
        enc.single(
            "node_intr_total",
            "Total number of interrupts serviced.",
            c,
            &[],
            s.intr as f64,
        );
        enc.single(
            "node_context_switches_total",
            "Total number of context switches.",
            c,
            &[],
            s.ctxt as f64,
        );
        enc.single(
            "node_forks_total",
            "Total number of forks.",
            c,
            &[],
            s.processes as f64,
        );
        enc.single(
            "node_boot_time_seconds",
            "Node boot time, in unixtime.",
            g,
            &[],
            s.btime as f64,
        );
        enc.single(
            "node_procs_running",
            "Number of processes in runnable state.",
            g,
            &[],
            s.procs_running as f64,
        );
        enc.single(
            "node_procs_blocked",
            "Number of processes blocked waiting for I/O to complete.",
            g,
            &[],
            s.procs_blocked as f64,
        );
        if self.softirq {
            let mut f = enc.family("node_softirqs_total", "Number of softirq calls.", c);
            for (name, v) in SOFTIRQ_VECTORS.iter().zip(s.softirqs) {
                f.sample(&[("vector", name)], v as f64);
            }
        }
        Ok(())
    }
}

/// Parses the totals of `/proc/stat`. Missing lines stay zero (old kernels); a malformed
/// number is an error naming the line.
fn parse_stat(text: &str) -> Result<Stat, String> {
    let mut s = Stat::default();
    for (i, line) in text.lines().enumerate() {
        let what = At("/proc/stat", i + 1);
        let mut fields = line.split_ascii_whitespace();
        let Some(key) = fields.next() else { continue };
        let slot = match key {
            "intr" => &mut s.intr,
            "ctxt" => &mut s.ctxt,
            "btime" => &mut s.btime,
            "processes" => &mut s.processes,
            "procs_running" => &mut s.procs_running,
            "procs_blocked" => &mut s.procs_blocked,
            "softirq" => &mut s.softirq_total,
            _ => continue,
        };
        let v = fields.next().ok_or_else(|| format!("{what}: no value"))?;
        *slot = parse_u64(v, &what)?;
        if key == "softirq" {
            for (dst, v) in s.softirqs.iter_mut().zip(fields) {
                *dst = parse_u64(v, &what)?;
            }
        }
    }
    Ok(s)
}

/// CPU time of one `cpuN` line, in seconds, in `/proc/stat` order: user, nice, system, idle,
/// iowait, irq, softirq, steal, guest, guest_nice. Fields a kernel does not have are zero.
pub(crate) type CpuTimes = [f64; 10];

/// Parses a `cpuN ...` line into the CPU number and its times. `None` for other lines,
/// including the aggregate `cpu` line.
pub(crate) fn parse_cpu_line(line: &str, lineno: usize) -> Option<Result<(u32, CpuTimes), String>> {
    let rest = line.strip_prefix("cpu")?;
    let (id, fields) = rest.split_once(|c: char| c.is_ascii_whitespace())?;
    if id.is_empty() {
        return None;
    }
    Some(parse_cpu_fields(id, fields, lineno))
}

fn parse_cpu_fields(id: &str, fields: &str, lineno: usize) -> Result<(u32, CpuTimes), String> {
    let what = At("/proc/stat", lineno);
    let cpu = id
        .parse::<u32>()
        .map_err(|_| format!("{what}: invalid cpu id {id:?}"))?;
    let mut times = [0.0; 10];
    let mut n = 0;
    for (dst, v) in times.iter_mut().zip(fields.split_ascii_whitespace()) {
        *dst = parse_f64(v, &what)? / USER_HZ;
        n += 1;
    }
    if n < 4 {
        return Err(format!("{what}: expected at least 4 cpu fields, got {n}"));
    }
    Ok((cpu, times))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  21068 0 5356 201595 1002 0 43 20 0 0
cpu0 9737 0 2252 102412 160 0 8 7 0 0
cpu1 11331 0 3103 99182 841 0 34 13 0 0
intr 373289 0 0 1
ctxt 496400
btime 1795504654
processes 16085
procs_running 3
procs_blocked 0
softirq 194984 0 26376 4 5100 63315 0 127 48781 1 51280
";

    #[test]
    fn totals() {
        let s = parse_stat(STAT).unwrap();
        assert_eq!(s.intr, 373289);
        assert_eq!(s.ctxt, 496400);
        assert_eq!(s.btime, 1795504654);
        assert_eq!(s.processes, 16085);
        assert_eq!(s.procs_running, 3);
        assert_eq!(s.softirqs[1], 26376);
        assert_eq!(s.softirqs[9], 51280);
    }

    #[test]
    fn malformed_totals() {
        assert!(parse_stat("ctxt\n").unwrap_err().contains("line 1"));
        assert!(parse_stat("cpu 1\nbtime x\n")
            .unwrap_err()
            .contains("line 2"));
        assert_eq!(parse_stat("").unwrap(), Stat::default());
    }

    #[test]
    fn cpu_lines() {
        assert!(parse_cpu_line("cpu  1 2 3 4", 1).is_none());
        assert!(parse_cpu_line("intr 1", 1).is_none());
        let (id, t) = parse_cpu_line("cpu1 11331 0 3103 99182 841 0 34 13 0 0", 3)
            .unwrap()
            .unwrap();
        assert_eq!(id, 1);
        assert_eq!(t[0], 113.31);
        assert_eq!(t[3], 991.82);
        // Old kernels have fewer fields.
        let (_, t) = parse_cpu_line("cpu0 1 2 3 4", 2).unwrap().unwrap();
        assert_eq!(t[4], 0.0);
        assert!(parse_cpu_line("cpu0 1 2", 2).unwrap().is_err());
        assert!(parse_cpu_line("cpuX 1 2 3 4", 2).unwrap().is_err());
        assert!(parse_cpu_line("cpu0 1 2 y 4", 2).unwrap().is_err());
    }
}
