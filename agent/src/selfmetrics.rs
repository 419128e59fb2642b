//! The agent's own metrics: `eos_agent_*` build and config families and the standard
//! `process_*` families, as a built-in source the supervisor collects after the modules (the
//! supervisor writes the per-module families itself).
//!
//! `process_*` always describes this process, so it reads the agent's own `/proc/self`, not the
//! host's procfs given with `--path.procfs`.

use crate::build_info::{REVISION, VERSION};
use crate::state::ReloadStatus;
use eos_exposition::{Encoder, Kind};
use eos_module::{Module, Scrape};
use std::sync::{Arc, Mutex};

/// The agent's own families, as a source.
pub struct AgentMetrics {
    status: Arc<Mutex<ReloadStatus>>,
    started_unix: f64,
}

impl AgentMetrics {
    pub fn new(status: Arc<Mutex<ReloadStatus>>, started_unix: f64) -> Self {
        AgentMetrics {
            status,
            started_unix,
        }
    }
}

impl Module for AgentMetrics {
    fn collect(&self, enc: &mut Encoder<'_>, _scrape: &Scrape<'_>) {
        let st = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        encode(&st, self.started_unix, enc);
        encode_process(enc);
    }
}

/// Writes the build and config families.
fn encode(st: &ReloadStatus, started_unix: f64, enc: &mut Encoder<'_>) {
    enc.single(
        "eos_agent_build_info",
        "A metric with a constant '1' value labeled by the version and revision eos-agent was built from.",
        Kind::Gauge,
        &[("version", VERSION), ("revision", REVISION)],
        1.0,
    );
    enc.single(
        "eos_agent_config_last_reload_successful",
        "Whether the last configuration reload attempt was successful.",
        Kind::Gauge,
        &[],
        f64::from(u8::from(st.successful)),
    );
    enc.single(
        "eos_agent_config_last_reload_success_timestamp_seconds",
        "Timestamp of the last successful configuration load or reload.",
        Kind::Gauge,
        &[],
        st.last_success_unix,
    );
    enc.single(
        "eos_agent_config_hash",
        "Hash of the currently loaded configuration file (48 bits, exact as a float).",
        Kind::Gauge,
        &[],
        st.hash as f64,
    );
    let mut f = enc.family(
        "eos_agent_config_reloads_total",
        "Configuration reloads that changed something or were requested, by result.",
        Kind::Counter,
    );
    f.sample(&[("result", "success")], st.successes as f64);
    f.sample(&[("result", "failure")], st.failures as f64);
    enc.single(
        "eos_agent_start_time_seconds",
        "When the agent started, in seconds since the epoch.",
        Kind::Gauge,
        &[],
        started_unix,
    );
}

/// The `process_*` families, from `/proc/self`.
fn encode_process(enc: &mut Encoder<'_>) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    let Ok(p) = eos_module::pidstat::parse(&stat) else {
        return;
    };
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // SAFETY: as above.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as f64;
    enc.single(
        "process_cpu_seconds_total",
        "Total user and system CPU time spent in seconds.",
        Kind::Counter,
        &[],
        (p.utime + p.stime) as f64 / ticks,
    );
    enc.single(
        "process_resident_memory_bytes",
        "Resident memory size in bytes.",
        Kind::Gauge,
        &[],
        p.rss_pages as f64 * page,
    );
    enc.single(
        "process_virtual_memory_bytes",
        "Virtual memory size in bytes.",
        Kind::Gauge,
        &[],
        p.vsize as f64,
    );
    if let Some(boot) = boot_time() {
        enc.single(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            Kind::Gauge,
            &[],
            boot + p.starttime as f64 / ticks,
        );
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        enc.single(
            "process_open_fds",
            "Number of open file descriptors.",
            Kind::Gauge,
            &[],
            dir.count() as f64,
        );
    }
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        enc.single(
            "process_max_fds",
            "Maximum number of open file descriptors.",
            Kind::Gauge,
            &[],
            lim.rlim_cur as f64,
        );
    }
    enc.single(
        "process_threads",
        "Number of OS threads in the process.",
        Kind::Gauge,
        &[],
        p.num_threads as f64,
    );
}

/// The host's boot time; it does not change, so `/proc/stat` is read once.
fn boot_time() -> Option<f64> {
    static BOOT: std::sync::OnceLock<Option<f64>> = std::sync::OnceLock::new();
    *BOOT.get_or_init(|| {
        let s = std::fs::read_to_string("/proc/stat").ok()?;
        s.lines()
            .find_map(|l| l.strip_prefix("btime "))
            .and_then(|v| v.trim().parse().ok())
    })
}
