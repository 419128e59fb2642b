//! `cargo xtask bench logs`: the logs module's shipping throughput (tail, parse, batch,
//! snappy, push) from kubelet-style pod logs to a Loki push receiver in this process.
//!
//! There is no Promtail to race (it cannot be installed offline) and no Loki binary: the other
//! end is `eos_logs::receiver` in counting mode, on a thread of its own, and the comparison is
//! with the published file-to-TCP figures of Vector's performance comparison, printed as such.
//!
//! Backlog scenarios, each with a fresh directory, state dir, receiver and agent (the agent's
//! defaults: 1 MiB batches, one push in flight):
//! - `short`: one file of ~100-byte CRI lines (`<time> stdout F <~60 bytes of text>`);
//! - `mixed`: one file of lines drawn from a fixed-seed distribution: 85% 50-200 B, 12%
//!   1-4 KiB, 1% 16-64 KiB written as containerd does (16 KiB `P` records, then an `F`), 2%
//!   200 B-2 KiB split at random into 2-4 `P`+`F` records;
//! - `many-short`, `many-mixed`: the same spread over 500 pod directories
//!   (`<ns>_<pod>_<uid>/app/0.log`).
//!
//! The files are written and fsynced before the agent starts (logs on a node are on disk
//! and in the page cache; a flush in the background would also make the agent's own fsyncs
//! of its positions wait behind it). The clock runs from starting the agent until the receiver
//! has counted every entry; then the agent's CPU time (`utime + stime`) and peak RSS (`VmHWM`)
//! are read, and its RSS is sampled every 100 ms meanwhile.
//!
//! `live`: the agent is started on 500 empty files, then a writer appends short lines at a
//! fixed rate (20 MiB/s for 10 s by default), 25 files every 10 ms; the agent's CPU share
//! while the writer runs, and the delay from the last write until the receiver has it all.
//!
//! The receiver runs on a thread of its own in this process; its CPU time is read from
//! `/proc/self/task` and shown, also per push. With one push in flight, its decoding adds to
//! every push's round trip, so the root `Cargo.toml` builds eos-logs at `opt-level = 2` in the
//! dev profile (unoptimized, it took about as long to decode a push as the agent to encode it).
//!
//! MiB/s are bytes of the files (the CRI framing included), as file-to-TCP benchmarks count
//! them; "line bytes" are what Loki stores (the content, `P` records joined).
//!
//! Targets (the issue), printed and not enforced: at least 100 MiB/s on one core for one file
//! of short lines (MiB per CPU-second: this machine may give the agent more than one core), and
//! peak RSS under 64 MiB with 500 files.

use super::{Options, Running, Side};
use eos_logs::receiver::Receiver;
use eos_testkit::agent::modules_section;
use eos_testkit::procstat;
use eos_testkit::{free_port, Description, TempDir};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const HELP: &str = "\
cargo xtask bench logs [--bytes SIZE] [--many-bytes SIZE] [--files N] [--only LIST]
                       [--live-rate SIZE] [--live-seconds N] [--batch-bytes SIZE]
                       [--agent-bin PATH]
  --bytes SIZE        volume of each one-file scenario (default 1GiB; units kB MB GB KiB MiB GiB)
  --many-bytes SIZE   volume spread over --files files (default 500MiB, or half of --bytes)
  --files N           files of the many-* and live scenarios (default 500)
  --only LIST         scenarios, comma-separated: short,mixed,many-short,many-mixed,live
                      (default all)
  --live-rate SIZE    bytes per second the live writer appends (default 20MiB)
  --live-seconds N    how long it writes (default 10)
  --batch-bytes SIZE  the agent's modules.logs.batch_bytes (default: the agent's, 1 MiB)
";

/// The target for one file of short lines, MiB per CPU-second.
const TARGET_MIB_PER_CPU_SECOND: f64 = 100.0;
/// The target for the peak RSS with 500 files.
const TARGET_RSS_MIB: f64 = 64.0;
/// File-to-TCP throughput from Vector's published performance comparison, MiB/s.
const PUBLISHED: [(&str, f64); 3] = [("Vector", 76.7), ("Fluent Bit", 35.0), ("Filebeat", 7.8)];

const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    Short,
    Mixed,
    ManyShort,
    ManyMixed,
    Live,
}

impl Scenario {
    const ALL: [Scenario; 5] = [
        Scenario::Short,
        Scenario::Mixed,
        Scenario::ManyShort,
        Scenario::ManyMixed,
        Scenario::Live,
    ];

    fn name(self) -> &'static str {
        match self {
            Scenario::Short => "short",
            Scenario::Mixed => "mixed",
            Scenario::ManyShort => "many-short",
            Scenario::ManyMixed => "many-mixed",
            Scenario::Live => "live",
        }
    }

    fn mixed(self) -> bool {
        matches!(self, Scenario::Mixed | Scenario::ManyMixed)
    }

    fn many(self) -> bool {
        matches!(self, Scenario::ManyShort | Scenario::ManyMixed)
    }
}

/// The benchmark's own flags.
#[derive(Clone, Debug, PartialEq)]
struct Args {
    bytes: u64,
    many_bytes: u64,
    files: usize,
    only: Vec<Scenario>,
    live_rate: u64,
    live_seconds: u64,
    batch_bytes: Option<u64>,
}

impl Args {
    fn parse(rest: Vec<String>) -> Result<Args, String> {
        let mut bytes = None;
        let mut many_bytes = None;
        let mut a = Args {
            bytes: 1 << 30,
            many_bytes: 500 << 20,
            files: 500,
            only: Scenario::ALL.to_vec(),
            live_rate: 20 << 20,
            live_seconds: 10,
            batch_bytes: None,
        };
        let mut args = super::flags::Args::new(&rest);
        while let Some(arg) = args.next_arg() {
            let flag = arg.flag;
            let mut value = || args.value(&arg);
            match flag {
                "--bytes" => bytes = Some(positive(flag, parse_size(value()?)?)?),
                "--many-bytes" => many_bytes = Some(positive(flag, parse_size(value()?)?)?),
                "--files" => a.files = positive(flag, whole(flag, value()?)?)? as usize,
                "--live-rate" => a.live_rate = positive(flag, parse_size(value()?)?)?,
                "--live-seconds" => a.live_seconds = positive(flag, whole(flag, value()?)?)?,
                "--batch-bytes" => a.batch_bytes = Some(positive(flag, parse_size(value()?)?)?),
                "--only" => {
                    let v = value()?;
                    a.only = v
                        .split(',')
                        .map(|s| {
                            Scenario::ALL
                                .into_iter()
                                .find(|sc| sc.name() == s.trim())
                                .ok_or_else(|| format!("--only: unknown scenario {s:?}\n\n{HELP}"))
                        })
                        .collect::<Result<_, _>>()?;
                }
                _ => return Err(format!("unknown option {:?}\n\n{HELP}", arg.whole)),
            }
        }
        if let Some(b) = bytes {
            a.bytes = b;
            a.many_bytes = b / 2;
        }
        if let Some(b) = many_bytes {
            a.many_bytes = b;
        }
        Ok(a)
    }
}

fn whole(flag: &str, v: &str) -> Result<u64, String> {
    v.parse()
        .map_err(|_| format!("{flag}: {v:?} is not a whole number"))
}

fn positive(flag: &str, n: u64) -> Result<u64, String> {
    if n == 0 {
        Err(format!("{flag} must be more than 0"))
    } else {
        Ok(n)
    }
}

/// A size as the agent's config takes it (`256MiB`, `1GiB`, bytes).
use eos_module::size::parse_byte_size as parse_size;

pub(super) fn run(args: &[String]) -> Result<(), String> {
    let mut opts = Options::parse(args)?;
    let args = Args::parse(std::mem::take(&mut opts.rest))?;
    let agent = super::agent_under_test(&opts)?;
    let modules = Description::of(&agent)?.module_names();
    if !modules.iter().any(|m| m == "logs") {
        return Err(format!("{} has no logs module", agent.display()));
    }
    let bench = Bench {
        agent,
        modules,
        args,
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut runs = Vec::new();
    for sc in bench.args.only.clone() {
        if sc == Scenario::Live {
            continue;
        }
        let run = bench.backlog(sc)?;
        eprintln!(
            "bench: {}: {:.1} MiB/s, {:.2} CPU-s, peak RSS {:.1} MiB",
            sc.name(),
            run.mib_per_s(),
            run.cpu,
            run.hwm as f64 / MIB
        );
        runs.push(run);
    }
    let live = if bench.args.only.contains(&Scenario::Live) {
        Some(bench.live()?)
    } else {
        None
    };
    print!("{}", render(&runs, live.as_ref(), &bench.args, cores));
    Ok(())
}

struct Bench {
    agent: PathBuf,
    modules: Vec<String>,
    args: Args,
}

/// What one backlog scenario measured.
#[derive(Clone, Debug, Default, PartialEq)]
struct Run {
    name: &'static str,
    files: usize,
    written: Written,
    /// Start of the agent to the last entry counted, seconds.
    wall: f64,
    /// The agent's CPU seconds (all threads, startup included).
    cpu: f64,
    /// `VmHWM` at the end, bytes.
    hwm: u64,
    /// `VmRSS` samples during the run, bytes.
    rss: Vec<u64>,
    /// CPU seconds of the agent's threads, busiest first.
    threads: Vec<f64>,
    /// CPU seconds of the receiver's thread.
    receiver_cpu: f64,
    /// What the receiver counted.
    entries: u64,
    line_bytes: u64,
    pushes: usize,
    pushed_bytes: u64,
    /// The agent's own view, from its `/metrics`.
    agent: AgentView,
}

impl Run {
    fn mib_per_s(&self) -> f64 {
        self.written.file_bytes as f64 / MIB / self.wall
    }

    fn lines_per_s(&self) -> f64 {
        self.written.entries as f64 / self.wall
    }

    fn cpu_per_gib(&self) -> f64 {
        self.cpu / (self.written.file_bytes as f64 / GIB)
    }

    fn mib_per_cpu_second(&self) -> f64 {
        self.written.file_bytes as f64 / MIB / self.cpu
    }

    fn rss_max(&self) -> u64 {
        self.rss.iter().copied().max().unwrap_or(0)
    }

    fn rss_median(&self) -> u64 {
        let mut v = self.rss.clone();
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or(0)
    }
}

/// The agent's `eos_logs_*` counters at the end of a run.
#[derive(Clone, Debug, Default, PartialEq)]
struct AgentView {
    pushes_ok: f64,
    retries: f64,
    batches: f64,
    batch_entries: f64,
    batch_bytes: f64,
    entries_sent: f64,
}

impl AgentView {
    fn parse(metrics: &str) -> AgentView {
        let get = |key: &str| sample(metrics, key).unwrap_or(0.0);
        AgentView {
            pushes_ok: get("eos_logs_push_requests_total{status=\"204\"}"),
            retries: metrics
                .lines()
                .filter(|l| l.starts_with("eos_logs_push_retries_total"))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .fold(0.0, |a, b| a + b),
            batches: get("eos_logs_batch_entries_count"),
            batch_entries: get("eos_logs_batch_entries_sum"),
            batch_bytes: get("eos_logs_batch_bytes_sum"),
            entries_sent: get("eos_logs_entries_sent_total"),
        }
    }
}

/// The value of the sample written exactly as `key` (`name` or `name{labels}`).
fn sample(metrics: &str, key: &str) -> Option<f64> {
    metrics.lines().find_map(|l| {
        l.strip_prefix(key)?
            .strip_prefix(' ')?
            .split(' ')
            .next()?
            .parse()
            .ok()
    })
}

/// The live scenario's results.
#[derive(Clone, Debug, Default, PartialEq)]
struct Live {
    files: usize,
    written: Written,
    /// From the first write to the last, seconds.
    writing: f64,
    /// The agent's CPU seconds while the writer ran.
    cpu_writing: f64,
    /// From the last write until the receiver had every entry, seconds.
    delay: f64,
    /// The agent's CPU seconds from the first write until the receiver had everything.
    cpu_total: f64,
    hwm: u64,
    receiver_cpu: f64,
}

impl Bench {
    /// A scenario from a backlog: write, start, time until every entry is counted.
    fn backlog(&self, sc: Scenario) -> Result<Run, String> {
        let dir = TempDir::try_new("bench-logs")?;
        let pods = dir.join("pods");
        let (files, bytes) = if sc.many() {
            (self.args.files, self.args.many_bytes)
        } else {
            (1, self.args.bytes)
        };
        eprintln!(
            "bench: {}: writing {:.0} MiB to {files} file(s)",
            sc.name(),
            bytes as f64 / MIB
        );
        let started = Instant::now();
        let written = write_backlog(&pods, files, bytes, sc.mixed())?;
        eprintln!(
            "bench: {}: {} entries, {:.1} MiB written and fsynced in {:.1} s; shipping",
            sc.name(),
            written.entries,
            written.file_bytes as f64 / MIB,
            started.elapsed().as_secs_f64()
        );
        let loki = Receiver::start_counting();
        let t0 = Instant::now();
        let mut agent = self.start_agent(&dir, &pods, &loki.url(), sc.name())?;
        let pid = agent.pid();
        // A floor of 5 MiB/s: anything slower is broken, not slow.
        let timeout = Duration::from_secs(60 + written.file_bytes / (5 << 20));
        let mut rss = Vec::new();
        let got = loop {
            match loki.wait_for_lines(written.entries as usize, Duration::from_millis(100)) {
                Ok(got) => break got,
                Err(e) => {
                    if !agent.server.alive() {
                        return Err(format!(
                            "{}: the agent exited; log:\n{}",
                            sc.name(),
                            agent.server.log_tail()
                        ));
                    }
                    if t0.elapsed() > timeout {
                        return Err(format!("{}: {e}", sc.name()));
                    }
                    rss.push(procstat::memory(pid)?.rss);
                }
            }
        };
        let wall = t0.elapsed().as_secs_f64();
        let cpu = procstat::cpu_seconds(pid)?;
        let threads = threads_cpu(&pid.to_string())?;
        let memory = agent.memory()?;
        let receiver_cpu = receiver_cpu_seconds()?;
        let view = settled_view(&agent, written.entries)?;
        if got.total_entries != written.entries || got.total_bytes != written.line_bytes {
            eprintln!(
                "bench: {}: WARNING: the receiver counted {} entries, {} line bytes; {} and {} were written",
                sc.name(),
                got.total_entries,
                got.total_bytes,
                written.entries,
                written.line_bytes
            );
        }
        Ok(Run {
            name: sc.name(),
            files,
            written,
            wall,
            cpu,
            hwm: memory.hwm,
            rss,
            threads: threads.into_iter().map(|(_, cpu)| cpu).collect(),
            receiver_cpu,
            entries: got.total_entries,
            line_bytes: got.total_bytes,
            pushes: got.requests.len(),
            pushed_bytes: got.requests.iter().map(|r| r.body_bytes as u64).sum(),
            agent: view,
        })
    }

    /// The live scenario: the agent tails empty files; a writer appends at a fixed rate.
    fn live(&self) -> Result<Live, String> {
        let dir = TempDir::try_new("bench-logs")?;
        let pods = dir.join("pods");
        let files = self.args.files;
        let paths = (0..files)
            .map(|i| pod_file(&pods, i))
            .collect::<Result<Vec<_>, _>>()?;
        for p in &paths {
            std::fs::File::create(p).map_err(|e| format!("creating {}: {e}", p.display()))?;
        }
        // Every write is prepared first, so that the writer does nothing but write.
        const TICK: Duration = Duration::from_millis(10);
        let per_tick_files = files.min(25);
        let ticks = (self.args.live_seconds * 1000 / TICK.as_millis() as u64) as usize;
        let per_write =
            (self.args.live_rate / (1000 / TICK.as_millis() as u64)) as usize / per_tick_files;
        let mut gen = Gen::new(0x5eed_0003);
        let mut written = Written::default();
        let mut plan: Vec<(usize, Vec<u8>)> = Vec::with_capacity(ticks * per_tick_files);
        for t in 0..ticks {
            for k in 0..per_tick_files {
                let mut buf = Vec::with_capacity(per_write + 128);
                while buf.len() < per_write {
                    written.add(gen.short(&mut buf));
                }
                written.file_bytes += buf.len() as u64;
                plan.push(((t * per_tick_files + k) % files, buf));
            }
        }
        let mut handles = paths
            .iter()
            .map(|p| {
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(p)
                    .map_err(|e| format!("opening {}: {e}", p.display()))
            })
            .collect::<Result<Vec<_>, _>>()?;

        let loki = Receiver::start_counting();
        let mut agent = self.start_agent(&dir, &pods, &loki.url(), "live")?;
        let pid = agent.pid();
        // The agent has found every file once its gauge says so (updated every second).
        let found = eos_testkit::wait_until(Duration::from_secs(30), || {
            agent
                .fetch("/metrics")
                .ok()
                .and_then(|m| sample(&m, "eos_logs_files"))
                == Some(files as f64)
        });
        if !found {
            return Err(format!(
                "live: the agent did not open all {files} files in 30 s"
            ));
        }
        eprintln!(
            "bench: live: writing {:.0} MiB/s to {files} files for {} s",
            self.args.live_rate as f64 / MIB,
            self.args.live_seconds
        );
        let rx_cpu0 = receiver_cpu_seconds()?;
        let cpu0 = procstat::cpu_seconds(pid)?;
        let t0 = Instant::now();
        for (n, chunk) in plan.chunks(per_tick_files).enumerate() {
            let due = t0 + TICK * n as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            for (file, buf) in chunk {
                handles[*file]
                    .write_all(buf)
                    .map_err(|e| format!("writing {}: {e}", paths[*file].display()))?;
            }
        }
        let last = Instant::now();
        let cpu_writing = procstat::cpu_seconds(pid)? - cpu0;
        let got = loop {
            match loki.wait_for_lines(written.entries as usize, Duration::from_millis(100)) {
                Ok(got) => break got,
                Err(e) => {
                    if !agent.server.alive() {
                        return Err(format!(
                            "live: the agent exited; log:\n{}",
                            agent.server.log_tail()
                        ));
                    }
                    if last.elapsed() > Duration::from_secs(60) {
                        return Err(format!("live: {e}"));
                    }
                }
            }
        };
        let delay = last.elapsed().as_secs_f64();
        let cpu_total = procstat::cpu_seconds(pid)? - cpu0;
        if got.total_entries != written.entries {
            eprintln!(
                "bench: live: WARNING: the receiver counted {} entries; {} were written",
                got.total_entries, written.entries
            );
        }
        Ok(Live {
            files,
            writing: last.duration_since(t0).as_secs_f64(),
            cpu_writing,
            delay,
            cpu_total,
            hwm: agent.memory()?.hwm,
            receiver_cpu: receiver_cpu_seconds()? - rx_cpu0,
            written,
        })
    }

    /// The agent with only the logs module, reading `pods`, pushing to `loki`.
    fn start_agent(
        &self,
        dir: &TempDir,
        pods: &Path,
        loki: &str,
        name: &str,
    ) -> Result<Running, String> {
        let mut section = format!("{{enabled: true, loki: {{url: '{loki}'}}");
        if let Some(b) = self.args.batch_bytes {
            let _ = write!(section, ", batch_bytes: {b}");
        }
        section.push('}');
        let config = dir.join(format!("{name}.yaml"));
        let text = format!(
            // No kubelet here: streams keep the labels their paths give.
            "state_dir: {}\nnode_name: bench-node\nhost: {{log_dir: {}}}\nkubelet: {{enabled: false}}\n{}",
            dir.join("state").display(),
            pods.display(),
            modules_section(&self.modules, "logs", &section)
        );
        std::fs::write(&config, text).map_err(|e| format!("writing {}: {e}", config.display()))?;
        let port = free_port()?;
        Side::new("eos-agent", &self.agent)
            .args([
                "--config".to_string(),
                config.display().to_string(),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ])
            .listen(port)
            .ready_path("/readyz")
            .start(dir)
    }
}

/// The agent's counters once it has recorded the last push (it answers the receiver first).
fn settled_view(agent: &Running, entries: u64) -> Result<AgentView, String> {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let view = AgentView::parse(&agent.fetch("/metrics")?);
        if view.entries_sent >= entries as f64 || Instant::now() > end {
            return Ok(view);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// CPU seconds of this process's Loki receiver thread (`loki-receiver-PORT`); there is one at
/// a time.
fn receiver_cpu_seconds() -> Result<f64, String> {
    Ok(threads_cpu("self")?
        .iter()
        .filter(|(name, _)| name.starts_with("loki-receiver"))
        .map(|(_, cpu)| cpu)
        .fold(0.0, |a, b| a + b))
}

/// Each thread of process `pid` (or `self`): its name (`comm`) and CPU seconds, busiest first.
fn threads_cpu(pid: &str) -> Result<Vec<(String, f64)>, String> {
    let dir = format!("/proc/{pid}/task");
    let tasks = std::fs::read_dir(&dir).map_err(|e| format!("{dir}: {e}"))?;
    let mut out = Vec::new();
    for t in tasks.flatten() {
        // A thread that ended meanwhile is skipped.
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue;
        };
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        let ticks = procstat::parse_stat_cpu_ticks(&stat)?;
        out.push((
            comm.trim().to_string(),
            ticks as f64 / procstat::clock_ticks(),
        ));
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(out)
}

/// What was written: file bytes, and the entries and content bytes Loki should get.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Written {
    file_bytes: u64,
    /// Log entries (`P` records joined to their `F`).
    entries: u64,
    /// Bytes of the entries' content.
    line_bytes: u64,
    /// CRI records (lines in the files).
    records: u64,
}

impl Written {
    fn add(&mut self, e: Emitted) {
        self.entries += 1;
        self.line_bytes += e.content as u64;
        self.records += e.records as u64;
    }
}

/// One entry as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Emitted {
    content: usize,
    records: usize,
}

/// `<pods>/<ns>_<pod>_<uid>/app/0.log` for pod `i`, its directories created.
fn pod_file(pods: &Path, i: usize) -> Result<PathBuf, String> {
    let dir = pods
        .join(format!(
            "bench-{}_app-{i:04}-7d4b9c8f6-{:05x}_{i:08x}-0000-4000-8000-{i:012x}",
            i % 10,
            (i * 7919) % 0xfffff
        ))
        .join("app");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir.join("0.log"))
}

/// Writes `bytes` of CRI lines spread evenly over `files` files, each fsynced.
fn write_backlog(pods: &Path, files: usize, bytes: u64, mixed: bool) -> Result<Written, String> {
    const CHUNK: u64 = 8 << 20;
    let mut gen = Gen::new(if mixed { 0x5eed_0002 } else { 0x5eed_0001 });
    let mut written = Written::default();
    let per_file = bytes / files as u64;
    let mut buf = Vec::with_capacity(CHUNK as usize + (64 << 10));
    for i in 0..files {
        let path = pod_file(pods, i)?;
        let mut f = std::fs::File::create(&path)
            .map_err(|e| format!("creating {}: {e}", path.display()))?;
        let mut left = per_file;
        while left > 0 {
            buf.clear();
            let want = left.min(CHUNK) as usize;
            while buf.len() < want {
                written.add(if mixed {
                    gen.mixed(&mut buf)
                } else {
                    gen.short(&mut buf)
                });
            }
            f.write_all(&buf)
                .map_err(|e| format!("writing {}: {e}", path.display()))?;
            written.file_bytes += buf.len() as u64;
            left = left.saturating_sub(buf.len() as u64);
        }
        f.sync_all()
            .map_err(|e| format!("fsync {}: {e}", path.display()))?;
    }
    Ok(written)
}

/// Words the log text is made of.
const WORDS: [&str; 48] = [
    "GET",
    "POST",
    "/api/v1/orders",
    "/healthz",
    "status=200",
    "status=404",
    "status=503",
    "latency_ms=",
    "user_id=",
    "request_id=",
    "upstream",
    "connection",
    "reset",
    "by",
    "peer",
    "timeout",
    "after",
    "retrying",
    "cache",
    "miss",
    "hit",
    "for",
    "key",
    "session",
    "expired",
    "db",
    "query",
    "took",
    "rows",
    "returned",
    "level=info",
    "level=warn",
    "level=error",
    "msg=\"handled",
    "request\"",
    "worker",
    "started",
    "stopped",
    "job",
    "queue",
    "depth",
    "payload",
    "bytes",
    "tls",
    "handshake",
    "failed",
    "ok",
    "done",
];

/// Log content from a fixed seed: CRI records with rising timestamps and text cut from a pool
/// of words and numbers.
struct Gen {
    rng: u64,
    pool: Vec<u8>,
    /// Nanoseconds after 2026-11-30T05:00:00Z.
    clock: u64,
}

/// The longest content one record or entry takes from the pool.
const MAX_TEXT: usize = 64 << 10;
/// containerd's record size: longer lines are split into `P` records of this size.
const CRI_RECORD: usize = 16 << 10;

impl Gen {
    fn new(seed: u64) -> Gen {
        let mut g = Gen {
            rng: seed,
            pool: Vec::new(),
            clock: 0,
        };
        let mut pool = Vec::with_capacity((1 << 20) + MAX_TEXT + 64);
        while pool.len() < (1 << 20) + MAX_TEXT {
            let w = WORDS[g.below(WORDS.len() as u64) as usize];
            pool.extend_from_slice(w.as_bytes());
            if w.ends_with('=') {
                let n = g.below(100_000);
                pool.extend_from_slice(n.to_string().as_bytes());
            }
            pool.push(b' ');
        }
        g.pool = pool;
        g
    }

    /// splitmix64.
    fn next(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A whole number in `lo..=hi`.
    fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo + 1) as u64) as usize
    }

    fn stream(&mut self) -> &'static [u8] {
        if self.below(8) == 0 {
            b"stderr"
        } else {
            b"stdout"
        }
    }

    /// Appends one record: `<time> <stream> <P|F> <len bytes of text>\n`.
    fn record(&mut self, out: &mut Vec<u8>, stream: &[u8], partial: bool, len: usize) {
        self.clock += 1_000 + self.below(1_000);
        stamp(out, self.clock);
        out.push(b' ');
        out.extend_from_slice(stream);
        out.extend_from_slice(if partial { b" P " } else { b" F " });
        let at = self.below((self.pool.len() - len) as u64) as usize;
        out.extend_from_slice(&self.pool[at..at + len]);
        out.push(b'\n');
    }

    /// A ~100-byte line: 40 to 80 bytes of content.
    fn short(&mut self, out: &mut Vec<u8>) -> Emitted {
        let len = self.between(40, 80);
        let stream = self.stream();
        self.record(out, stream, false, len);
        Emitted {
            content: len,
            records: 1,
        }
    }

    /// An entry from the mixed distribution (see the module docs).
    fn mixed(&mut self, out: &mut Vec<u8>) -> Emitted {
        let stream = self.stream();
        let roll = self.below(100);
        let (len, cuts) = match roll {
            0..85 => (self.between(50, 200), Vec::new()),
            85..97 => (self.between(1 << 10, 4 << 10), Vec::new()),
            97..98 => {
                let len = self.between(16 << 10, MAX_TEXT);
                (
                    len,
                    (1..len.div_ceil(CRI_RECORD))
                        .map(|k| k * CRI_RECORD)
                        .collect(),
                )
            }
            _ => {
                let len = self.between(200, 2 << 10);
                let mut cuts: Vec<usize> = (0..self.between(1, 3))
                    .map(|_| self.between(1, len - 1))
                    .collect();
                cuts.sort_unstable();
                cuts.dedup();
                (len, cuts)
            }
        };
        let mut from = 0;
        for &cut in &cuts {
            self.record(out, stream, true, cut - from);
            from = cut;
        }
        self.record(out, stream, false, len - from);
        Emitted {
            content: len,
            records: cuts.len() + 1,
        }
    }
}

/// Appends `2026-11-30THH:MM:SS.NNNNNNNNNZ` for `ns` nanoseconds after 05:00:00.
fn stamp(out: &mut Vec<u8>, ns: u64) {
    let secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let mut s = *b"2026-11-30T00:00:00.000000000Z";
    let mut put = |at: usize, width: usize, mut v: u64| {
        for i in (at..at + width).rev() {
            s[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(11, 2, (5 + secs / 3600) % 24);
    put(14, 2, secs / 60 % 60);
    put(17, 2, secs % 60);
    put(20, 9, frac);
    out.extend_from_slice(&s);
}

/// The report.
fn render(runs: &[Run], live: Option<&Live>, args: &Args, cores: usize) -> String {
    let mut s = String::new();
    let mib = |b: f64| format!("{:.1} MiB", b / MIB);
    let _ = writeln!(
        s,
        "bench logs: backlog written first, then the agent (logs module only, its defaults{}) \
         ships it to a Loki receiver in this process; {cores} CPUs here",
        match args.batch_bytes {
            Some(b) => format!(", batch_bytes {b}"),
            None => String::new(),
        }
    );
    if !runs.is_empty() {
        let mut table: Vec<(&str, Vec<String>)> = Vec::new();
        let mut row = |label: &'static str, f: &dyn Fn(&Run) -> String| {
            table.push((label, runs.iter().map(f).collect()));
        };
        row("files", &|r| r.files.to_string());
        row("file bytes", &|r| mib(r.written.file_bytes as f64));
        row("entries (CRI records)", &|r| {
            format!("{} ({})", r.written.entries, r.written.records)
        });
        row(
            "line bytes (content)",
            &|r| mib(r.written.line_bytes as f64),
        );
        row("wall (start to last entry)", &|r| {
            format!("{:.2} s", r.wall)
        });
        row("throughput", &|r| format!("{:.1} MiB/s", r.mib_per_s()));
        row("lines/s", &|r| format!("{:.0}", r.lines_per_s()));
        row("agent CPU", &|r| {
            format!("{:.2} s ({:.0}%)", r.cpu, r.cpu / r.wall * 100.0)
        });
        row("CPU seconds per GiB", &|r| {
            format!("{:.2}", r.cpu_per_gib())
        });
        row("MiB per CPU-second", &|r| {
            format!("{:.1}", r.mib_per_cpu_second())
        });
        row("busiest agent threads, CPU s", &|r| {
            let top: Vec<String> = r
                .threads
                .iter()
                .take(3)
                .map(|c| format!("{c:.2}"))
                .collect();
            top.join(", ")
        });
        row("peak RSS (VmHWM)", &|r| mib(r.hwm as f64));
        row("RSS sampled median/max", &|r| {
            format!(
                "{:.1}/{:.1} MiB",
                r.rss_median() as f64 / MIB,
                r.rss_max() as f64 / MIB
            )
        });
        row("receiver CPU (% of wall), per push", &|r| {
            format!(
                "{:.2} s ({:.0}%), {:.1} ms",
                r.receiver_cpu,
                r.receiver_cpu / r.wall * 100.0,
                r.receiver_cpu / r.pushes.max(1) as f64 * 1e3
            )
        });
        row("pushes (agent: 204s, retries)", &|r| {
            format!(
                "{} ({:.0}, {:.0})",
                r.pushes, r.agent.pushes_ok, r.agent.retries
            )
        });
        row("per push: entries, line bytes", &|r| {
            let n = r.agent.batches.max(1.0);
            format!(
                "{:.0}, {:.0} KiB",
                r.agent.batch_entries / n,
                r.agent.batch_bytes / n / 1024.0
            )
        });
        row("snappy: pushed / line bytes", &|r| {
            format!(
                "{:.2}",
                r.pushed_bytes as f64 / (r.line_bytes as f64).max(1.0)
            )
        });
        let width = table.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        let cols: Vec<usize> = (0..runs.len())
            .map(|i| {
                table
                    .iter()
                    .map(|(_, v)| v[i].len())
                    .chain([runs[i].name.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let _ = write!(s, "{:<width$}", "");
        for (r, w) in runs.iter().zip(&cols) {
            let _ = write!(s, "  {:>w$}", r.name);
        }
        s.push('\n');
        for (label, values) in &table {
            let _ = write!(s, "{label:<width$}");
            for (v, w) in values.iter().zip(&cols) {
                let _ = write!(s, "  {v:>w$}");
            }
            s.push('\n');
        }
        for r in runs {
            if r.entries != r.written.entries || r.line_bytes != r.written.line_bytes {
                let _ = writeln!(
                    s,
                    "{}: MISMATCH: the receiver counted {} entries, {} line bytes",
                    r.name, r.entries, r.line_bytes
                );
            }
        }
        let busiest = runs
            .iter()
            .map(|r| r.receiver_cpu / r.wall)
            .fold(0.0, f64::max);
        let _ = writeln!(
            s,
            "receiver: {} (its thread at most {:.0}% busy); the agent's CPU is its own process",
            if busiest < 0.5 {
                "not the bottleneck"
            } else {
                "MAY BE THE BOTTLENECK"
            },
            busiest * 100.0
        );
    }
    if let Some(l) = live {
        let _ = writeln!(
            s,
            "\nlive: {:.1} MiB ({} entries) appended to {} files over {:.2} s ({:.1} MiB/s)",
            l.written.file_bytes as f64 / MIB,
            l.written.entries,
            l.files,
            l.writing,
            l.written.file_bytes as f64 / MIB / l.writing
        );
        let _ = writeln!(
            s,
            "  agent CPU while writing: {:.2} s = {:.1}% of one core; to the last entry: {:.2} s",
            l.cpu_writing,
            l.cpu_writing / l.writing * 100.0,
            l.cpu_total
        );
        let _ = writeln!(
            s,
            "  delay, last write to last entry at the receiver: {:.0} ms (batch_wait 1 s, idle poll 100 ms)",
            l.delay * 1e3
        );
        let _ = writeln!(
            s,
            "  peak RSS {}; receiver CPU {:.2} s",
            mib(l.hwm as f64),
            l.receiver_cpu
        );
    }
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let mut targets = String::new();
    if let Some(r) = runs.iter().find(|r| r.name == "short") {
        let one_core = r.mib_per_cpu_second();
        let _ = writeln!(
            targets,
            "  {:<48} {:>12}   >= {TARGET_MIB_PER_CPU_SECOND:.0}   {}",
            "1 file, short lines: MiB per CPU-second (one core)",
            format!("{one_core:.1}"),
            verdict(one_core >= TARGET_MIB_PER_CPU_SECOND)
        );
        let wall = r.mib_per_s();
        let _ = writeln!(
            targets,
            "  {:<48} {:>12}   >= {TARGET_MIB_PER_CPU_SECOND:.0}   {}",
            format!(
                "1 file, short lines: MiB/s wall ({:.2} cores used)",
                r.cpu / r.wall
            ),
            format!("{wall:.1}"),
            verdict(wall >= TARGET_MIB_PER_CPU_SECOND)
        );
    }
    for r in runs.iter().filter(|r| r.files >= 500) {
        let rss = r.hwm as f64 / MIB;
        let _ = writeln!(
            targets,
            "  {:<48} {:>12}   < {TARGET_RSS_MIB:.0}     {}",
            format!("{} files, {}: peak RSS MiB", r.files, r.name),
            format!("{rss:.1}"),
            verdict(rss < TARGET_RSS_MIB)
        );
    }
    if !targets.is_empty() {
        let _ = writeln!(
            s,
            "\ntargets (the issue; printed, not enforced):\n{targets}"
        );
    }
    let _ = writeln!(
        s,
        "file to TCP, Vector's performance comparison (PUBLISHED FIGURES, NOT MEASURED HERE): {}",
        PUBLISHED
            .iter()
            .map(|(n, v)| format!("{n} {v} MiB/s"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let vector = PUBLISHED[0].1;
    for r in runs {
        let _ = writeln!(
            s,
            "  eos measured here, {:<10} {:>7.1} MiB/s = {:.2}x Vector's published figure (another machine and test)",
            r.name,
            r.mib_per_s(),
            r.mib_per_s() / vector
        );
    }
    s.push_str("Promtail: not measured (not installable offline).\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sizes_and_flags() {
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("3kB"), Ok(3000));
        assert_eq!(parse_size("42"), Ok(42));
        assert!(parse_size("1TiB").is_err());
        assert!(parse_size("MiB").is_err());

        let a = Args::parse(Vec::new()).unwrap();
        assert_eq!((a.bytes, a.many_bytes, a.files), (1 << 30, 500 << 20, 500));
        assert_eq!(a.only, Scenario::ALL);
        let a = Args::parse(strings(&[
            "--bytes=64MiB",
            "--only",
            "short,live",
            "--files=3",
        ]))
        .unwrap();
        assert_eq!((a.bytes, a.many_bytes, a.files), (64 << 20, 32 << 20, 3));
        assert_eq!(a.only, [Scenario::Short, Scenario::Live]);
        let a = Args::parse(strings(&["--bytes=64MiB", "--many-bytes=1MiB"])).unwrap();
        assert_eq!(a.many_bytes, 1 << 20);
        assert!(Args::parse(strings(&["--only=nope"])).is_err());
        assert!(Args::parse(strings(&["--files=0"])).is_err());
        assert!(Args::parse(strings(&["--bytes"]))
            .unwrap_err()
            .contains("needs a value"));
        assert!(Args::parse(strings(&["--what"])).is_err());
    }

    /// Every record parses as CRI, and joining `P` records gives the entries and content
    /// bytes the generator counted.
    fn check(lines: &[u8], want: Written) {
        use eos_logs::cri::{parse, Reassembler};
        let mut join = Reassembler::new(1 << 20);
        let mut got = Written {
            file_bytes: lines.len() as u64,
            ..Written::default()
        };
        let mut last = None;
        for line in lines.strip_suffix(b"\n").unwrap().split(|&b| b == b'\n') {
            let r =
                parse(line).unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(line)));
            assert!(last.is_none_or(|t| t < r.time), "timestamps rise");
            last = Some(r.time);
            got.records += 1;
            if let Some(l) = join.push(&r) {
                got.entries += 1;
                got.line_bytes += l.content.len() as u64;
                assert!(!l.content.is_empty());
            }
        }
        assert_eq!(join.pending_bytes(), 0);
        assert_eq!(got, want);
    }

    #[test]
    fn generated_lines_are_cri_and_counted_right() {
        for mixed in [false, true] {
            let mut g = Gen::new(7);
            let mut buf = Vec::new();
            let mut w = Written::default();
            for _ in 0..3000 {
                w.add(if mixed {
                    g.mixed(&mut buf)
                } else {
                    g.short(&mut buf)
                });
            }
            w.file_bytes = buf.len() as u64;
            check(&buf, w);
            let per_line = buf.len() as f64 / w.records as f64;
            if mixed {
                assert!(w.records > w.entries, "some entries are split");
                assert!(w.line_bytes / w.entries > 500, "{w:?}");
            } else {
                assert!((95.0..=110.0).contains(&per_line), "{per_line}");
            }
        }
        // The same seed, the same bytes.
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let (mut g1, mut g2) = (Gen::new(1), Gen::new(1));
        for _ in 0..100 {
            g1.mixed(&mut a);
            g2.mixed(&mut b);
        }
        assert_eq!(a, b);
    }

    #[test]
    fn stamps() {
        let mut out = Vec::new();
        stamp(&mut out, 3_723_000_000_042);
        assert_eq!(out, b"2026-11-30T06:02:03.000000042Z");
    }

    #[test]
    fn backlog_files_are_laid_out_as_the_kubelet_does() {
        let dir = TempDir::new("bench-logs-test");
        let w = write_backlog(dir.path(), 3, 30_000, true).unwrap();
        let mut all = Vec::new();
        for i in 0..3 {
            let p = pod_file(dir.path(), i).unwrap();
            let name = p.parent().unwrap().parent().unwrap().file_name().unwrap();
            assert_eq!(name.to_str().unwrap().split('_').count(), 3, "{p:?}");
            all.extend(std::fs::read(&p).unwrap());
        }
        assert_eq!(all.len() as u64, w.file_bytes);
        assert!(w.file_bytes >= 30_000);
        check(&all, w);
    }

    #[test]
    fn agent_counters_are_read() {
        let m = "# TYPE x counter\neos_logs_push_requests_total{status=\"204\"} 12\n\
                 eos_logs_push_retries_total{status=\"429\"} 2\n\
                 eos_logs_push_retries_total{status=\"error\"} 1\n\
                 eos_logs_batch_entries_sum 1200\neos_logs_batch_entries_count 12\n\
                 eos_logs_files 500\n";
        let v = AgentView::parse(m);
        assert_eq!(
            (v.pushes_ok, v.retries, v.batches, v.batch_entries),
            (12.0, 3.0, 12.0, 1200.0)
        );
        assert_eq!(sample(m, "eos_logs_files"), Some(500.0));
        assert_eq!(sample(m, "eos_logs_file"), None);
    }

    #[test]
    fn report_shows_targets_and_published_figures() {
        let run = |name, files, cpu| Run {
            name,
            files,
            written: Written {
                file_bytes: 1 << 30,
                entries: 10,
                line_bytes: 5,
                records: 10,
            },
            wall: 8.0,
            cpu,
            hwm: 20 << 20,
            entries: 10,
            line_bytes: 5,
            ..Run::default()
        };
        let out = render(
            &[run("short", 1, 8.0), run("many-short", 500, 20.0)],
            None,
            &Args::parse(Vec::new()).unwrap(),
            2,
        );
        assert!(out.contains("128.0 MiB/s"), "{out}");
        assert!(
            out.contains("MiB per CPU-second (one core)        128.0   >= 100   met"),
            "{out}"
        );
        assert!(out.contains("500 files, many-short: peak RSS MiB"), "{out}");
        assert!(out.contains("NOT MEASURED HERE"), "{out}");
        assert!(out.contains("1.67x Vector"), "{out}");
        assert!(!out.contains("MISMATCH"), "{out}");
    }
}
