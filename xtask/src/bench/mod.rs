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
//! let dir = TempDir::new("mybench")?;
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
//! Everything here is std only, so building xtask stays quick.

mod containers;
mod node;

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const HELP: &str = "\
usage: cargo xtask bench <module> [options]

modules:
  node        eos-agent (node module only) vs prometheus-node-exporter, same collectors
  containers  the containers module on 500 real cgroups vs the open+read+close floor

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
        "containers" => containers::run(rest),
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
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let (flag, inline) = match a.split_once('=') {
                Some((f, v)) => (f, Some(v.to_string())),
                None => (a.as_str(), None),
            };
            let mut value = |name: &str| -> Result<String, String> {
                inline
                    .clone()
                    .or_else(|| it.next().cloned())
                    .ok_or_else(|| format!("{name} needs a value"))
            };
            match flag {
                "--runs" => o.runs = parse_count("--runs", &value("--runs")?)?,
                "--warmup" => o.warmup = parse_count("--warmup", &value("--warmup")?)?,
                "--no-gzip" if inline.is_none() => o.gzip = false,
                "--agent-bin" => o.agent_bin = Some(PathBuf::from(value("--agent-bin")?)),
                _ => o.rest.push(a.clone()),
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

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
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

/// The module names of this agent build, from the `modules in this build:` line of `--help`.
fn agent_modules(agent: &Path) -> Result<Vec<String>, String> {
    let out = std::process::Command::new(agent)
        .arg("--help")
        .output()
        .map_err(|e| format!("running {} --help: {e}", agent.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_module_list(&text).ok_or_else(|| {
        format!(
            "{} --help has no `modules in this build:` line",
            agent.display()
        )
    })
}

fn parse_module_list(help: &str) -> Option<Vec<String>> {
    let line = help
        .lines()
        .find_map(|l| l.trim().strip_prefix("modules in this build:"))?;
    Some(
        line.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
    )
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

/// A scratch directory (configs, logs), removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `$TMPDIR/eos-bench-<tag>-<pid>`.
    pub fn new(tag: &str) -> Result<TempDir, String> {
        let p = std::env::temp_dir().join(format!("eos-bench-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).map_err(|e| format!("creating {}: {e}", p.display()))?;
        Ok(TempDir(p))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
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
        let log = dir.path().join(format!("{}.log", self.name));
        let logf =
            std::fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
        let errf = logf
            .try_clone()
            .map_err(|e| format!("creating {}: {e}", log.display()))?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(logf)
            .stderr(errf)
            .spawn()
            .map_err(|e| format!("starting {}: {e}", self.program.display()))?;
        let mut running = Running {
            child,
            side: self.clone(),
            log,
        };
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = running.child.try_wait() {
                return Err(format!(
                    "{} exited during startup ({status}); log:\n{}",
                    self.name,
                    running.log_tail()
                ));
            }
            if matches!(get(&self.addr, &self.ready_path, false), Ok((200, _))) {
                return Ok(running);
            }
            if Instant::now() >= end {
                return Err(format!(
                    "{} not ready on {}{} after 30 s; log:\n{}",
                    self.name,
                    self.addr,
                    self.ready_path,
                    running.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A started server, killed on drop.
pub struct Running {
    child: Child,
    side: Side,
    log: PathBuf,
}

impl Running {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// GETs `path` (plain text) and returns the body, failing on a non-200 answer.
    pub fn fetch(&self, path: &str) -> Result<String, String> {
        let (status, body) = get(&self.side.addr, path, false)
            .map_err(|e| format!("{}: GET {path}: {e}", self.side.name))?;
        if status != 200 {
            return Err(format!("{}: GET {path}: status {status}", self.side.name));
        }
        String::from_utf8(body).map_err(|_| format!("{}: GET {path}: not UTF-8", self.side.name))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn cpu_ticks(&self) -> Result<u64, String> {
        let path = format!("/proc/{}/stat", self.pid());
        let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
        parse_stat_cpu_ticks(&text).map_err(|e| format!("parsing {path}: {e}"))
    }

    fn memory(&self) -> Result<Memory, String> {
        let path = format!("/proc/{}/status", self.pid());
        let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
        parse_status_memory(&text).map_err(|e| format!("parsing {path}: {e}"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP/1.1 GET on a fresh connection; returns (status, body bytes as sent).
pub fn get(addr: &str, path: &str, gzip: bool) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_nodelay(true)?;
    let enc = if gzip {
        "Accept-Encoding: gzip\r\n"
    } else {
        ""
    };
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/plain;version=0.0.4\r\n{enc}\
Connection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    split_response(&raw).map_err(std::io::Error::other)
}

/// Splits a whole HTTP/1.1 response into status and body (chunked bodies are joined).
fn split_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers in the response")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let rest = &raw[end + 4..];
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {:?}", head.lines().next()))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut s: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = s
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk size")?;
        let size = std::str::from_utf8(&s[..eol]).unwrap_or("");
        let size = size.split(';').next().unwrap_or("").trim();
        let n = usize::from_str_radix(size, 16).map_err(|_| format!("bad chunk size {size:?}"))?;
        s = &s[eol + 2..];
        if n == 0 {
            return Ok(out);
        }
        let chunk = s.get(..n).ok_or("truncated chunk")?;
        out.extend_from_slice(chunk);
        s = s.get(n..).unwrap_or(&[]);
        s = s.strip_prefix(b"\r\n").unwrap_or(s);
    }
}

/// `utime + stime` (clock ticks, all threads) from the text of `/proc/PID/stat`.
fn parse_stat_cpu_ticks(text: &str) -> Result<u64, String> {
    // The command name (field 2) is in parentheses and may hold spaces or ')'.
    let after = text
        .rfind(')')
        .and_then(|i| text.get(i + 1..))
        .ok_or("no ')' after the command name")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // `after` starts at field 3 (state); utime and stime are fields 14 and 15.
    let field = |n: usize| -> Result<u64, String> {
        let v = fields
            .get(n - 3)
            .ok_or_else(|| format!("only {} fields, no field {n}", fields.len() + 2))?;
        v.parse()
            .map_err(|_| format!("field {n} is {v:?}, not a number"))
    };
    Ok(field(14)? + field(15)?)
}

/// Resident memory of a process, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss: u64,
    /// `VmHWM`: the peak resident size so far.
    pub hwm: u64,
}

/// `VmRSS` and `VmHWM` from the text of `/proc/PID/status`.
fn parse_status_memory(text: &str) -> Result<Memory, String> {
    let kib = |key: &str| -> Result<u64, String> {
        let (n, line) = text
            .lines()
            .enumerate()
            .find(|(_, l)| l.starts_with(key) && l[key.len()..].starts_with(':'))
            .ok_or_else(|| format!("no {key} line"))?;
        let v = line[key.len() + 1..].trim();
        let num = v
            .strip_suffix("kB")
            .ok_or_else(|| format!("line {}: {key} is {v:?}, not in kB", n + 1))?
            .trim();
        num.parse::<u64>()
            .map(|k| k * 1024)
            .map_err(|_| format!("line {}: {key} is {v:?}", n + 1))
    };
    Ok(Memory {
        rss: kib("VmRSS")?,
        hwm: kib("VmHWM")?,
    })
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux we run on).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
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
    let ticks = clock_ticks();
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
    let (status, body) = get(&r.side.addr, &r.side.path, gzip)
        .map_err(|e| format!("{}: GET {}: {e}", r.side.name, r.side.path))?;
    let took = start.elapsed();
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
    fn module_list_from_help() {
        let help = "eos-agent 0.1\n\nmodules in this build: node, containers,probe\n";
        assert_eq!(
            parse_module_list(help),
            Some(vec!["node".into(), "containers".into(), "probe".into()])
        );
        assert_eq!(
            parse_module_list("modules in this build: node\n"),
            Some(vec!["node".into()])
        );
        assert_eq!(parse_module_list("usage: nothing here"), None);
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
    fn stat_cpu_ticks() {
        let line = "4242 (node exp) worker) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                    150 25 0 0 20 0 9 0 100 1000000 2000 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(line), Ok(175));
        assert!(parse_stat_cpu_ticks("4242 (short) S 1 2").is_err());
        assert!(parse_stat_cpu_ticks("no parens at all").is_err());
        let bad = "1 (x) S 1 1 1 0 -1 0 0 0 0 0 ab 25 0";
        assert!(parse_stat_cpu_ticks(bad).unwrap_err().contains("field 14"));
        assert!(parse_stat_cpu_ticks("").is_err());
    }

    #[test]
    fn status_memory() {
        let text = "Name:\tx\nVmPeak:\t  900 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(
            parse_status_memory(text),
            Ok(Memory {
                rss: 1024 * 1024,
                hwm: 2048 * 1024
            })
        );
        assert!(parse_status_memory("Name:\tx\nVmRSS:\t1 kB\n")
            .unwrap_err()
            .contains("VmHWM"));
        assert!(parse_status_memory("VmRSS:\t1 MB\nVmHWM:\t1 kB\n")
            .unwrap_err()
            .contains("line 1"));
        assert!(parse_status_memory("VmRSSx:\t1 kB\nVmHWM:\t1 kB\n").is_err());
    }

    #[test]
    fn responses() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(split_response(plain), Ok((200, b"hello".to_vec())));
        let chunked =
            b"HTTP/1.1 503 No\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(split_response(chunked), Ok((503, b"abcde".to_vec())));
        assert!(split_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(split_response(b"garbage\r\n\r\n").is_err());
        let truncated = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nabc";
        assert!(split_response(truncated).is_err());
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
