//! `cargo xtask bench <module>`: eos against the tool it replaces, on this machine.
//!
//! The shared harness lives here; each module's benchmark is one file next to it
//! (`node.rs`, ...). A benchmark:
//!
//! 1. builds the agent in release ([`build_agent_release`]);
//! 2. describes both servers as [`Side`]s and starts them on loopback ports ([`Side::start`],
//!    which waits until the server answers and kills it again on drop, even on error);
//! 3. calls [`compare`], which warms both up, then alternates runs A B A B (one HTTP GET each),
//!    timing every run and reading each process's CPU time (`utime + stime` from
//!    `/proc/PID/stat`) and memory (`VmRSS`, `VmHWM` from `/proc/PID/status`);
//! 4. prints the [`Comparison`] with the issue's targets ([`Comparison::print`]).
//!
//! ```ignore
//! let opts = Options::parse(args)?.only_known()?;
//! let dir = TempDir::try_new("bench-mine")?;
//! let ours = Side::new("eos-agent", build_agent_release()?)
//!     .args(["--config", &cfg]).listen(port_a).request("/metrics").start(&dir)?;
//! let theirs = Side::new("other", "/usr/bin/other")
//!     .args([format!("--listen=127.0.0.1:{port_b}")]).listen(port_b).request("/metrics")
//!     .start(&dir)?;
//! let result = compare(&ours, &theirs, &opts)?;
//! result.print("bench mine", &[Target::new(Measure::CpuPerRun, 0.3)]);
//! ```
//!
//! To add one: `mod <module>;` below, an arm in [`run`] and a line in `HELP`. Module-specific
//! flags come back in [`Options::rest`].
//!
//! CPU per run is the process's whole CPU time from the first measured run to the last,
//! divided by the number of runs: work a server does after answering (garbage collection,
//! background threads) counts against it, as it does on a real node.
//! Processes, HTTP and `/proc` readings come from `eos-testkit`, shared with the tests.

mod containers;
mod flags;
mod logs;
mod node;
mod ping;
mod probe;
mod textfile;

use eos_testkit::agent::workspace_root;
use eos_testkit::http::{request, Response};
use eos_testkit::procstat::{self, Memory};
use eos_testkit::{Server, TempDir};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const HELP: &str = "\
usage: cargo xtask bench <module> [options]

modules:
  node        eos-agent (node module only) vs prometheus-node-exporter, same collectors
  containers  the containers module on 500 real cgroups vs the open+read+close floor
  logs        the logs module shipping pod logs to a Loki receiver: 1 and 500 files, short and
              mixed lines, from a backlog and live (`--bytes=SIZE`, `--only=...`; no Promtail here)
  textfile    the node textfile collector vs prometheus-node-exporter on 10k, 80k, 1M series
              (--sizes=N,N,... for others)
  ping        the ping module pinging 500 namespace addresses once a second through a delay
              link vs fping: CPU, RSS, RTT error (--targets N, --seconds S, --delay MS)
  probe       the probe module's /probe vs prometheus-blackbox-exporter, same blackbox.yml, on
              200 local http and https targets (--rounds N, --concurrency N, --only=http|https)

options:
  --runs N          measured runs per side, alternating A B A B (default 2000)
  --warmup N        unmeasured runs per side first (default 20)
  --no-gzip         request plain text (default: Accept-Encoding: gzip, as Prometheus does)
  --agent-bin PATH  use this eos-agent instead of building target/release/eos-agent
";

/// Runs `cargo xtask bench <args>`.
pub fn run(args: &[String]) -> Result<(), String> {
    let Some((module, rest)) = args.split_first() else {
        print!("{HELP}");
        return Ok(());
    };
    match module.as_str() {
        "node" => node::run(rest),
        "ping" => ping::run(rest),
        "probe" => probe::run(rest),
        "containers" => containers::run(rest),
        "logs" => logs::run(rest),
        "textfile" => textfile::run(rest),
        "help" | "-h" | "--help" => {
            print!("{HELP}");
            Ok(())
        }
        other => Err(format!("bench: unknown module {other:?}\n\n{HELP}")),
    }
}

/// The options every benchmark takes.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Measured runs per side.
    pub runs: usize,
    /// Unmeasured runs per side before measuring.
    pub warmup: usize,
    /// Send `Accept-Encoding: gzip` like Prometheus.
    pub gzip: bool,
    /// A prebuilt agent binary instead of `cargo build --release`.
    pub agent_bin: Option<PathBuf>,
    /// Arguments this parser did not know, for the benchmark to handle.
    pub rest: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            runs: 2000,
            warmup: 20,
            gzip: true,
            agent_bin: None,
            rest: Vec::new(),
        }
    }
}

impl Options {
    /// Parses the shared options; unknown ones are kept in `rest`.
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options::default();
        let mut args = flags::Args::new(args);
        while let Some(a) = args.next_arg() {
            match a.flag {
                "--runs" => o.runs = parse_count(a.flag, args.value(&a)?)?,
                "--warmup" => o.warmup = parse_count(a.flag, args.value(&a)?)?,
                "--no-gzip" if a.inline.is_none() => o.gzip = false,
                "--agent-bin" => o.agent_bin = Some(PathBuf::from(args.value(&a)?)),
                _ => o.rest.push(a.whole.to_string()),
            }
        }
        if o.runs == 0 {
            return Err("--runs must be at least 1".into());
        }
        Ok(o)
    }

    /// Fails on any argument the shared parser did not know.
    pub fn only_known(self) -> Result<Options, String> {
        match self.rest.first() {
            Some(bad) => Err(format!("unknown option {bad:?}\n\n{HELP}")),
            None => Ok(self),
        }
    }
}

fn parse_count(flag: &str, v: &str) -> Result<usize, String> {
    v.parse()
        .map_err(|_| format!("{flag}: {v:?} is not a whole number"))
}

/// The agent under test: `--agent-bin`, or a release build.
pub(super) fn agent_under_test(opts: &Options) -> Result<PathBuf, String> {
    match &opts.agent_bin {
        Some(p) => Ok(p.clone()),
        None => build_agent_release(),
    }
}

/// Debian's node_exporter, the other side of the node and textfile benches, or why not.
pub(super) fn need_node_exporter() -> Result<(), String> {
    use eos_testkit::node_exporter::NODE_EXPORTER;
    if std::path::Path::new(NODE_EXPORTER).exists() {
        Ok(())
    } else {
        Err(format!(
            "{NODE_EXPORTER} is missing: apt-get install -y prometheus-node-exporter"
        ))
    }
}

/// Builds `eos-agent` in release and returns the binary's path.
pub fn build_agent_release() -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("bench: cargo build --release -p eos-agent");
    let status = Command::new(&cargo)
        .args(["build", "--release", "-p", "eos-agent"])
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("running {cargo}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "`cargo build --release -p eos-agent` failed ({status})"
        ));
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    let bin = target.join("release").join("eos-agent");
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!("{} missing after the build", bin.display()))
    }
}

/// One server under test: how to start it and what each run requests.
#[derive(Clone, Debug)]
pub struct Side {
    /// Shown in the results, e.g. `eos-agent`.
    pub name: String,
    program: PathBuf,
    args: Vec<String>,
    addr: String,
    ready_path: String,
    path: String,
}

impl Side {
    /// A server started as `program`; set its port with [`Side::listen`].
    pub fn new(name: &str, program: impl Into<PathBuf>) -> Side {
        Side {
            name: name.to_string(),
            program: program.into(),
            args: Vec::new(),
            addr: String::new(),
            ready_path: "/metrics".into(),
            path: "/metrics".into(),
        }
    }

    /// Adds command-line arguments (they must make it listen on the [`Side::listen`] port).
    pub fn args<I, S>(mut self, args: I) -> Side
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The loopback port the server listens on.
    pub fn listen(mut self, port: u16) -> Side {
        self.addr = format!("127.0.0.1:{port}");
        self
    }

    /// The path every run GETs (default `/metrics`); readiness waits for a 200 from it too,
    /// unless [`Side::ready_path`] says otherwise.
    pub fn request(mut self, path: &str) -> Side {
        if self.ready_path == self.path {
            self.ready_path = path.to_string();
        }
        self.path = path.to_string();
        self
    }

    /// The path that answers 200 once the server is ready.
    pub fn ready_path(mut self, path: &str) -> Side {
        self.ready_path = path.to_string();
        self
    }

    /// Starts the server (output to `<dir>/<name>.log`) and waits up to 30 s until it is ready.
    pub fn start(&self, dir: &TempDir) -> Result<Running, String> {
        if self.addr.is_empty() {
            return Err(format!("{}: no port set (Side::listen)", self.name));
        }
        let log = dir.join(format!("{}.log", self.name));
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        let mut server = Server::spawn(&self.name, cmd, &self.addr, &log)?;
        server.wait_ready(&self.ready_path, Duration::from_secs(30))?;
        Ok(Running {
            server,
            side: self.clone(),
        })
    }
}

/// A started server, killed on drop.
pub struct Running {
    server: Server,
    side: Side,
}

impl Running {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// GETs `path` (plain text) and returns the body, failing on a non-200 answer.
    pub fn fetch(&self, path: &str) -> Result<String, String> {
        let r = get(&self.side.addr, path, false)
            .map_err(|e| format!("{}: GET {path}: {e}", self.side.name))?;
        if r.status != 200 {
            return Err(format!(
                "{}: GET {path}: status {}",
                self.side.name, r.status
            ));
        }
        String::from_utf8(r.body).map_err(|_| format!("{}: GET {path}: not UTF-8", self.side.name))
    }

    fn cpu_ticks(&self) -> Result<u64, String> {
        procstat::cpu_ticks(self.pid())
    }

    /// Resident memory now and at its peak.
    pub fn memory(&self) -> Result<Memory, String> {
        procstat::memory(self.pid())
    }
}

/// A GET of `path` as Prometheus scrapes: text format, gzip when asked.
fn get(addr: &str, path: &str, gzip: bool) -> std::io::Result<Response> {
    let accept = ("Accept", "text/plain;version=0.0.4");
    if gzip {
        request(
            "GET",
            addr,
            path,
            &[accept, ("Accept-Encoding", "gzip")],
            b"",
        )
    } else {
        request("GET", addr, path, &[accept], b"")
    }
}

/// What one side did over the measured runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// Shown in the results.
    pub name: String,
    /// Every run's latency (connect to last byte), sorted.
    pub latencies: Vec<Duration>,
    /// CPU seconds per run.
    pub cpu_per_run: f64,
    /// Memory after the last run.
    pub memory: Memory,
    /// Response size of the last run, bytes on the wire (compressed when gzip).
    pub body_bytes: usize,
}

impl Stats {
    /// The median latency.
    pub fn median(&self) -> Duration {
        percentile(&self.latencies, 50.0)
    }

    /// The 99th percentile latency.
    pub fn p99(&self) -> Duration {
        percentile(&self.latencies, 99.0)
    }

    fn value(&self, m: Measure) -> f64 {
        match m {
            Measure::MedianLatency => self.median().as_secs_f64(),
            Measure::P99Latency => self.p99().as_secs_f64(),
            Measure::CpuPerRun => self.cpu_per_run,
            Measure::Rss => self.memory.rss as f64,
            Measure::PeakRss => self.memory.hwm as f64,
        }
    }
}

/// Nearest-rank percentile of sorted values; zero when empty.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A measured quantity, compared as ours / theirs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    MedianLatency,
    P99Latency,
    CpuPerRun,
    Rss,
    PeakRss,
}

impl Measure {
    const ALL: [Measure; 5] = [
        Measure::MedianLatency,
        Measure::P99Latency,
        Measure::CpuPerRun,
        Measure::Rss,
        Measure::PeakRss,
    ];

    fn label(self) -> &'static str {
        match self {
            Measure::MedianLatency => "latency median",
            Measure::P99Latency => "latency p99",
            Measure::CpuPerRun => "CPU per run",
            Measure::Rss => "RSS (VmRSS)",
            Measure::PeakRss => "RSS peak (VmHWM)",
        }
    }

    fn show(self, v: f64) -> String {
        match self {
            Measure::MedianLatency | Measure::P99Latency | Measure::CpuPerRun => {
                format!("{:.3} ms", v * 1e3)
            }
            Measure::Rss | Measure::PeakRss => format!("{:.1} MiB", v / (1024.0 * 1024.0)),
        }
    }
}

/// A goal: ours / theirs at most `max_ratio`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Target {
    /// What is compared.
    pub measure: Measure,
    /// The largest acceptable ours / theirs.
    pub max_ratio: f64,
}

impl Target {
    /// Ours / theirs for `measure` must be at most `max_ratio`.
    pub const fn new(measure: Measure, max_ratio: f64) -> Target {
        Target { measure, max_ratio }
    }
}

/// Both sides' results.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// eos.
    pub ours: Stats,
    /// The tool eos replaces.
    pub theirs: Stats,
    /// The options it ran with.
    pub options: Options,
}

impl Comparison {
    /// Ours / theirs for `m` (infinite when theirs is zero and ours is not).
    pub fn ratio(&self, m: Measure) -> f64 {
        let (a, b) = (self.ours.value(m), self.theirs.value(m));
        if b == 0.0 {
            if a == 0.0 {
                1.0
            } else {
                f64::INFINITY
            }
        } else {
            a / b
        }
    }

    /// The results table, with "met"/"NOT met" for each target.
    pub fn render(&self, title: &str, targets: &[Target]) -> String {
        let o = &self.options;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{title}: {} measured runs per side, alternating, after {} warm-up runs; {}",
            o.runs,
            o.warmup,
            if o.gzip {
                "Accept-Encoding: gzip"
            } else {
                "plain text"
            }
        );
        let _ = writeln!(
            s,
            "{:<18} {:>14} {:>14} {:>12}   target",
            "",
            trunc(&self.ours.name, 14),
            trunc(&self.theirs.name, 14),
            "ours/theirs"
        );
        let mut met = 0;
        for m in Measure::ALL {
            let ratio = self.ratio(m);
            let target = match targets.iter().find(|t| t.measure == m) {
                Some(t) if ratio <= t.max_ratio => {
                    met += 1;
                    format!("<= {:.2}x  met", t.max_ratio)
                }
                Some(t) => format!("<= {:.2}x  NOT met", t.max_ratio),
                None => String::new(),
            };
            let _ = writeln!(
                s,
                "{:<18} {:>14} {:>14} {:>11.3}x   {target}",
                m.label(),
                m.show(self.ours.value(m)),
                m.show(self.theirs.value(m)),
                ratio
            );
        }
        let _ = writeln!(
            s,
            "{:<18} {:>14} {:>14}",
            "response bytes", self.ours.body_bytes, self.theirs.body_bytes
        );
        if !targets.is_empty() {
            let _ = writeln!(s, "targets met: {met} of {}", targets.len());
        }
        s
    }

    /// Prints [`Comparison::render`] to stdout.
    pub fn print(&self, title: &str, targets: &[Target]) {
        print!("{}", self.render(title, targets));
    }
}

fn trunc(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Warms both servers up, then alternates measured runs A B A B and collects the results.
pub fn compare(ours: &Running, theirs: &Running, opts: &Options) -> Result<Comparison, String> {
    let sides = [ours, theirs];
    for _ in 0..opts.warmup {
        for r in sides {
            run_once(r, opts.gzip)?;
        }
    }
    let ticks = procstat::clock_ticks();
    let cpu_before = [ours.cpu_ticks()?, theirs.cpu_ticks()?];
    let mut latencies = [Vec::new(), Vec::new()];
    let mut bytes = [0, 0];
    for _ in 0..opts.runs {
        for (i, r) in sides.iter().enumerate() {
            let (took, n) = run_once(r, opts.gzip)?;
            latencies[i].push(took);
            bytes[i] = n;
        }
    }
    let cpu_after = [ours.cpu_ticks()?, theirs.cpu_ticks()?];
    let memory = [ours.memory()?, theirs.memory()?];
    let [lo, lt] = latencies;
    let stats = |i: usize, r: &Running, mut lat: Vec<Duration>| {
        lat.sort();
        Stats {
            name: r.side.name.clone(),
            latencies: lat,
            cpu_per_run: cpu_after[i].saturating_sub(cpu_before[i]) as f64
                / ticks
                / opts.runs as f64,
            memory: memory[i],
            body_bytes: bytes[i],
        }
    };
    Ok(Comparison {
        ours: stats(0, ours, lo),
        theirs: stats(1, theirs, lt),
        options: opts.clone(),
    })
}

/// One timed GET of the side's path; fails unless it answers 200.
fn run_once(r: &Running, gzip: bool) -> Result<(Duration, usize), String> {
    let start = Instant::now();
    let r2 = get(&r.side.addr, &r.side.path, gzip)
        .map_err(|e| format!("{}: GET {}: {e}", r.side.name, r.side.path))?;
    let took = start.elapsed();
    let (status, body) = (r2.status, r2.body);
    if status != 200 {
        return Err(format!(
            "{}: GET {}: status {status}: {}",
            r.side.name,
            r.side.path,
            String::from_utf8_lossy(&body[..body.len().min(300)])
        ));
    }
    Ok((took, body.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_defaults_and_flags() {
        assert_eq!(Options::parse(&[]), Ok(Options::default()));
        let o = Options::parse(&args(&[
            "--runs",
            "7",
            "--warmup=0",
            "--no-gzip",
            "--agent-bin=/x",
            "--other",
        ]))
        .unwrap();
        assert_eq!((o.runs, o.warmup, o.gzip), (7, 0, false));
        assert_eq!(o.agent_bin, Some(PathBuf::from("/x")));
        assert_eq!(o.rest, args(&["--other"]));
        assert!(o.only_known().unwrap_err().contains("--other"));
    }

    #[test]
    fn options_errors() {
        assert!(Options::parse(&args(&["--runs"]))
            .unwrap_err()
            .contains("needs a value"));
        assert!(Options::parse(&args(&["--runs", "x"]))
            .unwrap_err()
            .contains("not a whole number"));
        assert!(Options::parse(&args(&["--runs=0"])).is_err());
        assert!(Options::parse(&args(&["--runs=-3"])).is_err());
    }

    #[test]
    fn percentiles() {
        let ms = |v: &[u64]| {
            v.iter()
                .map(|&m| Duration::from_millis(m))
                .collect::<Vec<_>>()
        };
        let v = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&v, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&v, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&ms(&[3]), 99.0), Duration::from_millis(3));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
    }

    fn stats(name: &str, lat_ms: u64, cpu: f64, rss: u64) -> Stats {
        Stats {
            name: name.into(),
            latencies: vec![Duration::from_millis(lat_ms)],
            cpu_per_run: cpu,
            memory: Memory { rss, hwm: rss * 2 },
            body_bytes: 10,
        }
    }

    #[test]
    fn ratios_and_targets() {
        let c = Comparison {
            ours: stats("eos-agent", 1, 0.001, 10 << 20),
            theirs: stats("node_exporter", 10, 0.002, 20 << 20),
            options: Options::default(),
        };
        assert!((c.ratio(Measure::MedianLatency) - 0.1).abs() < 1e-9);
        assert!((c.ratio(Measure::CpuPerRun) - 0.5).abs() < 1e-9);
        let out = c.render(
            "bench t",
            &[
                Target::new(Measure::MedianLatency, 0.3),
                Target::new(Measure::CpuPerRun, 0.3),
            ],
        );
        assert!(out.contains("latency median"), "{out}");
        assert!(out.contains("<= 0.30x  met"), "{out}");
        assert!(out.contains("<= 0.30x  NOT met"), "{out}");
        assert!(out.contains("targets met: 1 of 2"), "{out}");
        let zero = Comparison {
            ours: stats("a", 0, 0.0, 0),
            theirs: stats("b", 0, 0.0, 0),
            options: Options::default(),
        };
        assert_eq!(zero.ratio(Measure::CpuPerRun), 1.0);
    }
}
