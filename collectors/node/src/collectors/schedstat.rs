//! `schedstat`: per-CPU scheduler statistics from `/proc/schedstat`.
//!
//! Each `cpuN` line carries nine counters; the 7th, 8th and 9th are the time spent running
//! tasks (ns), the time tasks spent waiting for this CPU (ns) and the number of timeslices.
//! A kernel built without schedstats has no such file: that is no data, not an error.

use eos_exposition::{Encoder, Kind};

use crate::collector::{parse_u64, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "schedstat",
    default_enabled: true,
    build: |_cfg, _paths| Ok(Box::new(SchedstatCollector)),
};

struct SchedstatCollector;

/// A family written per CPU: name, help, value.
type Family = (&'static str, &'static str, fn(&CpuSched) -> f64);

/// One `cpuN` line.
#[derive(Debug, PartialEq)]
struct CpuSched<'a> {
    cpu: &'a str,
    running_ns: u64,
    waiting_ns: u64,
    timeslices: u64,
}

impl Collector for SchedstatCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let path = ctx.proc_path("schedstat");
        let Some(text) = ctx.read_optional(&path)? else {
            return Ok(());
        };
        let mut cpus = parse_schedstat(text).map_err(|e| format!("{}: {e}", path.display()))?;
        // node_exporter orders series by label value as text ("10" before "2").
        cpus.sort_unstable_by(|a, b| a.cpu.cmp(b.cpu));
        let families: [Family; 3] = [
            (
                "node_schedstat_running_seconds_total",
                "Number of seconds CPU spent running a process.",
                |c| c.running_ns as f64 / 1e9,
            ),
            (
                "node_schedstat_timeslices_total",
                "Number of timeslices executed by CPU.",
                |c| c.timeslices as f64,
            ),
            (
                "node_schedstat_waiting_seconds_total",
                "Number of seconds spent by processing waiting for this CPU.",
                |c| c.waiting_ns as f64 / 1e9,
            ),
        ];
        for (name, help, value) in families {
            let mut fam = enc.family(name, help, Kind::Counter);
            for c in &cpus {
                fam.sample(&[("cpu", c.cpu)], value(c));
            }
        }
        Ok(())
    }
}

/// Parses `/proc/schedstat`: `version`, `timestamp`, `cpuN ...` and `domainN ...` lines;
/// only the `cpuN` lines matter here.
fn parse_schedstat(text: &str) -> Result<Vec<CpuSched<'_>>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split_ascii_whitespace();
        let Some(cpu) = fields.next().and_then(|f| f.strip_prefix("cpu")) else {
            continue;
        };
        let at = || format!("line {}", i + 1);
        if cpu.is_empty() || !cpu.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{}: invalid cpu name in {line:?}", at()));
        }
        let mut nums = [0u64; 9];
        for n in nums.iter_mut() {
            let f = fields
                .next()
                .ok_or_else(|| format!("{}: expected 9 counters in {line:?}", at()))?;
            *n = parse_u64(f, &at())?;
        }
        let [.., running_ns, waiting_ns, timeslices] = nums;
        out.push(CpuSched {
            cpu,
            running_ns,
            waiting_ns,
            timeslices,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "version 15
timestamp 15819019232
cpu0 498494191 0 3533438552 2553969831 3853684107 2465731542 2045936778163039 343796328384 10005952
domain0 00000000,00000003 212499247 210112015 1861015 1860405436 536440 369895 32599 210079416 25368550 24241256 384652 927363878 807233 6366 1647 804943 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
cpu1 518377256 0 4155211005 2778589869 10466382 2867629859 1904686152592476 364107263788 10010000
";

    #[test]
    fn parses_cpu_lines() {
        let cpus = parse_schedstat(FIXTURE).unwrap();
        assert_eq!(cpus.len(), 2);
        assert_eq!(
            cpus[0],
            CpuSched {
                cpu: "0",
                running_ns: 2045936778163039,
                waiting_ns: 343796328384,
                timeslices: 10005952,
            }
        );
        assert_eq!(cpus[1].cpu, "1");
    }

    #[test]
    fn empty_and_headers_only() {
        assert!(parse_schedstat("").unwrap().is_empty());
        assert!(parse_schedstat("version 15\ntimestamp 1\n")
            .unwrap()
            .is_empty());
    }

    #[test]
    fn truncated_or_garbled_lines_are_errors() {
        let e = parse_schedstat("version 15\ncpu0 1 2 3\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        assert!(parse_schedstat("cpu0 1 2 3 4 5 6 x 8 9\n").is_err());
        assert!(parse_schedstat("cpuX 1 2 3 4 5 6 7 8 9\n").is_err());
    }
}
