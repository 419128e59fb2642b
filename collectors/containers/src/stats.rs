//! Reading one cgroup's counters from its v1 controller directories or its v2 directory.
//! A missing file leaves its values out (the controller may be off); an unreadable or
//! malformed one leaves them out and records an error naming the file.

use crate::blkio;
use crate::layout::{Layout, V1Mounts};
use crate::parse::{self, Io, NetDev};
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

/// Values that change: read every round.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    pub cpu_usage_ns: Option<u64>,
    pub cpu_user_ns: Option<u64>,
    pub cpu_system_ns: Option<u64>,
    pub cfs_periods: Option<u64>,
    pub cfs_throttled_periods: Option<u64>,
    pub cfs_throttled_ns: Option<u64>,
    pub mem_usage: Option<u64>,
    pub mem_working_set: Option<u64>,
    pub mem_rss: Option<u64>,
    pub mem_cache: Option<u64>,
    pub mem_swap: Option<u64>,
    pub mem_mapped_file: Option<u64>,
    pub mem_failcnt: Option<u64>,
    pub mem_max_usage: Option<u64>,
    pub oom_events: Option<u64>,
    pub io: Vec<Io>,
    /// cpu, memory, io: (some, full) totals in µs.
    pub pressure: [Option<(u64, Option<u64>)>; 3],
    pub processes: Option<u64>,
    pub threads: Option<u64>,
    /// A process in the cgroup (for the sandbox's network namespace).
    pub first_pid: Option<u32>,
    pub net: Vec<NetDev>,
}

/// Values that rarely change: read every few rounds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Spec {
    pub cpu_quota: Option<u64>,
    pub cpu_period: Option<u64>,
    pub cpu_shares: Option<u64>,
    pub mem_limit: Option<u64>,
}

/// Reads cgroup files with one reused buffer and path.
pub struct Reader {
    /// The host's procfs (for the v2 root's memory, from `meminfo`).
    procfs: PathBuf,
    buf: String,
    path: PathBuf,
    /// Errors of the current cgroup, `file: message`.
    pub errors: Vec<String>,
    /// How many files were found missing in the current cgroup.
    missing: u32,
    /// How many files were opened in total (for benchmarks and the status page).
    pub opened: u64,
}

const USER_HZ_NS: u64 = 10_000_000; // cpuacct.stat ticks are USER_HZ (100 on Linux)

impl Default for Reader {
    fn default() -> Self {
        Reader {
            procfs: PathBuf::from("/proc"),
            buf: String::with_capacity(4096),
            path: PathBuf::with_capacity(256),
            errors: Vec::new(),
            missing: 0,
            opened: 0,
        }
    }
}

impl Reader {
    /// A reader for a host whose procfs is at `procfs`.
    pub fn new(procfs: &Path) -> Reader {
        Reader {
            procfs: procfs.to_path_buf(),
            ..Reader::default()
        }
    }

    /// Reads `<dir><rel>/<file>` into the buffer. `None` when it doesn't exist.
    fn read(&mut self, dir: &Path, rel: &str, file: &str) -> Option<&str> {
        self.path.clear();
        self.path.push(dir);
        self.path.push(rel.trim_start_matches('/'));
        self.path.push(file);
        self.buf.clear();
        self.opened += 1;
        let r = std::fs::File::open(&self.path).and_then(|mut f| f.read_to_string(&mut self.buf));
        match r {
            Ok(_) => Some(self.buf.as_str()),
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.missing += 1;
                None
            }
            Err(e) => {
                self.errors.push(format!("{}: {e}", self.path.display()));
                None
            }
        }
    }

    /// Reads and parses one file; parse errors are recorded with the path.
    fn with<T>(
        &mut self,
        dir: &Path,
        rel: &str,
        file: &str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let text = self.read(dir, rel, file)?;
        match f(text) {
            Ok(v) => Some(v),
            Err(e) => {
                let msg = format!("{}: {e}", self.path.display());
                self.errors.push(msg);
                None
            }
        }
    }

    /// Reads the counters of the cgroup at `rel`. Returns `false` when the cgroup is gone.
    pub fn stats(&mut self, layout: &Layout, rel: &str, st: &mut Stats) -> bool {
        self.errors.clear();
        self.missing = 0;
        let io = std::mem::take(&mut st.io);
        let net = std::mem::take(&mut st.net);
        *st = Stats {
            io,
            net,
            ..Stats::default()
        };
        st.io.clear();
        st.net.clear();
        let (opened, dir) = (self.opened, layout.discovery_root().map(Path::to_path_buf));
        match layout {
            Layout::V2(root) => self.v2(root, rel, st),
            Layout::V1(m) => self.v1(m, rel, st),
        }
        let all_missing = u64::from(self.missing) == self.opened - opened;
        !(all_missing && dir.is_some_and(|d| !d.join(rel.trim_start_matches('/')).is_dir()))
    }

    fn v2(&mut self, root: &Path, rel: &str, st: &mut Stats) {
        self.with(root, rel, "cpu.stat", |t| {
            parse::flat_keyed(t, |k, v| match k {
                "usage_usec" => st.cpu_usage_ns = Some(v.saturating_mul(1000)),
                "user_usec" => st.cpu_user_ns = Some(v.saturating_mul(1000)),
                "system_usec" => st.cpu_system_ns = Some(v.saturating_mul(1000)),
                "nr_periods" => st.cfs_periods = Some(v),
                "nr_throttled" => st.cfs_throttled_periods = Some(v),
                "throttled_usec" => st.cfs_throttled_ns = Some(v.saturating_mul(1000)),
                _ => {}
            })
        });
        st.mem_usage = self.with(root, rel, "memory.current", parse::single_u64);
        if st.mem_usage.is_none() && rel == "/" {
            let procfs = self.procfs.clone();
            st.mem_usage = self.with(&procfs, "", "meminfo", parse::mem_used);
        }
        let mut inactive_file = None;
        self.with(root, rel, "memory.stat", |t| {
            parse::flat_keyed(t, |k, v| match k {
                "anon" => st.mem_rss = Some(v),
                "file" => st.mem_cache = Some(v),
                "file_mapped" => st.mem_mapped_file = Some(v),
                "inactive_file" => inactive_file = Some(v),
                _ => {}
            })
        });
        st.mem_working_set = working_set(st.mem_usage, inactive_file);
        self.with(root, rel, "memory.events", |t| {
            parse::flat_keyed(t, |k, v| match k {
                "max" => st.mem_failcnt = Some(v),
                "oom_kill" => st.oom_events = Some(v),
                _ => {}
            })
        });
        st.mem_swap = self.with(root, rel, "memory.swap.current", parse::single_u64);
        st.mem_max_usage = self.with(root, rel, "memory.peak", parse::single_u64);
        let io = &mut st.io;
        self.with(root, rel, "io.stat", |t| parse::io_stat(t, io));
        for (slot, file) in
            st.pressure
                .iter_mut()
                .zip(["cpu.pressure", "memory.pressure", "io.pressure"])
        {
            *slot = self.with(root, rel, file, parse::pressure);
        }
        st.threads = self.with(root, rel, "pids.current", parse::single_u64);
        self.procs(root, rel, st);
    }

    fn v1(&mut self, m: &V1Mounts, rel: &str, st: &mut Stats) {
        if let Some(d) = &m.cpuacct {
            st.cpu_usage_ns = self.with(d, rel, "cpuacct.usage", parse::single_u64);
            self.with(d, rel, "cpuacct.stat", |t| {
                parse::flat_keyed(t, |k, v| match k {
                    "user" => st.cpu_user_ns = Some(v.saturating_mul(USER_HZ_NS)),
                    "system" => st.cpu_system_ns = Some(v.saturating_mul(USER_HZ_NS)),
                    _ => {}
                })
            });
        }
        if let Some(d) = &m.cpu {
            self.with(d, rel, "cpu.stat", |t| {
                parse::flat_keyed(t, |k, v| match k {
                    "nr_periods" => st.cfs_periods = Some(v),
                    "nr_throttled" => st.cfs_throttled_periods = Some(v),
                    "throttled_time" => st.cfs_throttled_ns = Some(v),
                    _ => {}
                })
            });
        }
        if let Some(d) = &m.memory {
            st.mem_usage = self.with(d, rel, "memory.usage_in_bytes", parse::single_u64);
            st.mem_max_usage = self.with(d, rel, "memory.max_usage_in_bytes", parse::single_u64);
            st.mem_failcnt = self.with(d, rel, "memory.failcnt", parse::single_u64);
            let mut inactive_file = None;
            self.with(d, rel, "memory.stat", |t| {
                parse::flat_keyed(t, |k, v| match k {
                    "total_rss" => st.mem_rss = Some(v),
                    "total_cache" => st.mem_cache = Some(v),
                    "total_mapped_file" => st.mem_mapped_file = Some(v),
                    "total_swap" => st.mem_swap = Some(v),
                    "total_inactive_file" => inactive_file = Some(v),
                    _ => {}
                })
            });
            st.mem_working_set = working_set(st.mem_usage, inactive_file);
            self.with(d, rel, "memory.oom_control", |t| {
                parse::flat_keyed(t, |k, v| {
                    if k == "oom_kill" {
                        st.oom_events = Some(v);
                    }
                })
            });
            self.procs(d, rel, st);
        }
        if let Some(d) = &m.blkio {
            let mut walk = blkio::Walk::default();
            while let Some(file) = walk.file() {
                let text = self.read(d, rel, file);
                if let Err(e) = walk.take(text, &mut st.io) {
                    self.errors.push(format!("{}: {e}", self.path.display()));
                }
            }
        }
        if let Some(d) = &m.pids {
            st.threads = self.with(d, rel, "pids.current", parse::single_u64);
        }
    }

    fn procs(&mut self, dir: &Path, rel: &str, st: &mut Stats) {
        if let Some(t) = self.read(dir, rel, "cgroup.procs") {
            let (n, first) = parse::count_lines(t);
            st.processes = Some(n);
            st.first_pid = first.and_then(|p| p.trim().parse().ok());
        }
    }

    /// Reads limits and shares.
    pub fn spec(&mut self, layout: &Layout, rel: &str) -> Spec {
        let mut s = Spec::default();
        match layout {
            Layout::V2(root) => {
                if let Some((quota, period)) = self.with(root, rel, "cpu.max", parse::cpu_max) {
                    s.cpu_quota = quota;
                    s.cpu_period = Some(period);
                }
                s.cpu_shares = self
                    .with(root, rel, "cpu.weight", parse::single_u64)
                    .map(parse::weight_to_shares);
                s.mem_limit = self.with(root, rel, "memory.max", parse::single_u64);
            }
            Layout::V1(m) => {
                if let Some(d) = &m.cpu {
                    s.cpu_quota = self
                        .with(d, rel, "cpu.cfs_quota_us", parse::single_i64)
                        .and_then(|q| u64::try_from(q).ok());
                    s.cpu_period = self.with(d, rel, "cpu.cfs_period_us", parse::single_u64);
                    s.cpu_shares = self.with(d, rel, "cpu.shares", parse::single_u64);
                }
                if let Some(d) = &m.memory {
                    s.mem_limit = self.with(d, rel, "memory.limit_in_bytes", parse::single_u64);
                }
            }
        }
        s
    }

    /// Interface counters of the network namespace of `pid`.
    pub fn net(&mut self, procfs: &Path, pid: u32, out: &mut Vec<NetDev>) {
        let rel = pid.to_string();
        self.with(procfs, &rel, "net/dev", |t| parse::net_dev(t, out));
    }

    /// Whether process `pid` is a pod sandbox's pause process.
    pub fn is_pause(&mut self, procfs: &Path, pid: u32) -> bool {
        let rel = pid.to_string();
        self.read(procfs, &rel, "comm")
            .is_some_and(|c| c.trim() == "pause")
    }
}

/// cAdvisor's working set: usage minus inactive file pages, floored at 0.
fn working_set(usage: Option<u64>, inactive_file: Option<u64>) -> Option<u64> {
    usage.map(|u| u.saturating_sub(inactive_file.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn working_set_floors_at_zero() {
        assert_eq!(super::working_set(Some(100), Some(30)), Some(70));
        assert_eq!(super::working_set(Some(10), Some(30)), Some(0));
        assert_eq!(super::working_set(Some(10), None), Some(10));
        assert_eq!(super::working_set(None, Some(1)), None);
    }
}
