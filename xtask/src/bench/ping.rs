//! `cargo xtask bench ping`: the ping module pinging 500 targets once a second, against
//! `fping` on the same targets, through a delay link.
//!
//! The network (root only, eos-testkit's `netns`): `client ─ r1 ─<delay>─ target`, the
//! second link a userspace [`DelayLink`](eos_testkit::netns::DelayLink) with a fixed one-way
//! delay (5 ms by default; no `netem` needed), and `10.92.0.1/16` on the target's loopback,
//! which makes the target answer for every address of `10.92.0.0/16` (the way `127.0.0.0/8`
//! works): the targets are `10.92.0.1` to `10.92.1.246` for 500, routed over the delay
//! link. The agent (ping module only) and then fping run inside the client namespace, one
//! after the other; each is measured over the same span after a warm-up:
//!
//! - **CPU**: `utime + stime` of the process over the span, as % of one core (and by thread
//!   for the agent). Note that sending through a veth runs the first hop's forwarding in the
//!   sender's system time, for both tools.
//! - **memory**: `VmRSS` and `VmHWM` at the end.
//! - **RTT**: the mean RTT over the span (eos: the histogram's sum and count, scraped at both
//!   ends; fping: its `-Q` summary of the span), minus twice the one-way delay, as asked;
//!   and against the wire: an `AF_PACKET` capture on the client's interface with kernel
//!   timestamps (`SO_TIMESTAMPNS`) pairs every echo request leaving with its reply coming in.
//!   The delay link's thread adds its own wake-up latency (and more, for packets that come
//!   in bursts) to every packet, so the wire RTT is above twice the delay; **the RTT error**
//!   of a tool is its mean RTT minus the wire's over the same span: what the tool adds by
//!   measuring, whatever the link does.
//!
//! Targets (the issue's): under 2 % of one core for 500 targets; RTT error under 0.2 ms at
//! idle. Printed, not enforced (a shared 2-core VM is noisy).
//!
//! smokeping_prober (not in Debian, so not measured here) runs one goroutine per target
//! (pro-bing's `Pinger.Run`) and takes the RTT in user space: the send time it writes into
//! the echo data, against the time its receive goroutine reads the reply, so Go's scheduler
//! and GC pauses land in the RTT. eos sends from one task through one socket per family and
//! takes the RTT from the kernel's receive timestamp.

use super::Options;
use eos_testkit::agent::modules_section;
use eos_testkit::netns::{self, Chain, Link, Netns};
use eos_testkit::{free_port, procstat, Description, TempDir};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const HELP: &str = "\
cargo xtask bench ping [--targets N] [--seconds S] [--delay MS] [--no-fping] [--agent-bin PATH]
  --targets N    addresses to ping once a second (default 500)
  --seconds S    measured span per process, after a warm-up (default 30)
  --delay MS     one-way delay of the delay link (default 5)
  --no-fping     measure the agent only
";

/// Before measuring the agent: its first cycles, the sockets, the allocator settling.
const WARMUP: Duration = Duration::from_secs(10);
/// The client's interface towards the first router (`Chain` link 1).
const CLIENT_DEV: &str = "l1";

#[derive(Debug)]
struct Args {
    targets: usize,
    seconds: u64,
    delay: Duration,
    fping: bool,
}

fn parse(rest: Vec<String>) -> Result<Args, String> {
    let mut a = Args {
        targets: 500,
        seconds: 30,
        delay: Duration::from_millis(5),
        fping: true,
    };
    let mut args = super::flags::Args::new(&rest);
    while let Some(arg) = args.next_arg() {
        let number = |v: &str| -> Result<u64, String> {
            v.parse::<u64>()
                .map_err(|_| format!("{}: {v:?} is not a whole number", arg.flag))
        };
        match arg.flag {
            "--targets" => a.targets = number(args.value(&arg)?)? as usize,
            "--seconds" => a.seconds = number(args.value(&arg)?)?,
            "--delay" => a.delay = Duration::from_millis(number(args.value(&arg)?)?),
            "--no-fping" if arg.inline.is_none() => a.fping = false,
            _ => return Err(format!("unknown option {:?}\n\n{HELP}", arg.whole)),
        }
    }
    if a.targets == 0 || a.targets > 65_000 {
        return Err("--targets must be 1 to 65000".into());
    }
    if a.seconds < 5 {
        return Err("--seconds must be at least 5".into());
    }
    Ok(a)
}

/// The `i`th target address: `10.92.0.1` upwards, skipping `.0` and `.255`.
fn target(i: usize) -> String {
    format!("10.92.{}.{}", i / 254, i % 254 + 1)
}

pub(super) fn run(args: &[String]) -> Result<(), String> {
    let mut opts = Options::parse(args)?;
    let a = parse(std::mem::take(&mut opts.rest))?;
    if let Some(why) = netns::delay_unavailable() {
        return Err(format!(
            "bench ping needs network namespaces and TUN: {why}"
        ));
    }
    let agent = super::agent_under_test(&opts)?;
    let modules = Description::of(&agent)?.module_names();
    if !modules.iter().any(|m| m == "ping") {
        return Err(format!(
            "{} has no ping module (register eos_ping::PingModule in agent/src/modules.rs)",
            agent.display()
        ));
    }
    let has_fping = a.fping
        && std::process::Command::new("fping")
            .arg("-v")
            .output()
            .is_ok_and(|o| o.status.success());
    if a.fping && !has_fping {
        eprintln!("bench: fping is missing (apt-get install -y fping): measuring the agent only");
    }
    let dir = TempDir::try_new("bench-ping")?;
    let targets: Vec<String> = (0..a.targets).map(target).collect();
    eprintln!(
        "bench: client ─ r1 ─{} ms─ target, {} target addresses",
        a.delay.as_millis(),
        a.targets
    );
    let chain = network(a.delay)?;
    let ours = measure_agent(&chain, &agent, &modules, &targets, &dir, a.seconds)?;
    let theirs = if has_fping {
        Some(measure_fping(&chain, &targets, &dir, a.seconds)?)
    } else {
        None
    };
    print!("{}", report(&a, &ours, theirs.as_ref()));
    Ok(())
}

/// The chain, with `10.92.0.0/16` answered by the target and routed to it.
fn network(delay: Duration) -> Result<Chain, String> {
    let chain = Chain::tagged("bench-ping", &[Link::Veth, Link::Delay(delay)])?;
    chain
        .target()
        .ip(&["addr", "add", "10.92.0.1/16", "dev", "lo"])?;
    let via = chain.hops(false)[1].to_string();
    chain
        .router(1)
        .ip(&["route", "add", "10.92.0.0/16", "via", &via])?;
    Ok(chain)
}

/// What one process did over the measured span.
#[derive(Clone, Debug, Default, PartialEq)]
struct Measured {
    name: &'static str,
    cpu: CpuUse,
    rss: u64,
    hwm: u64,
    /// Replies received and requests sent in the span.
    replies: f64,
    requests: f64,
    /// The tool's mean RTT over the span, seconds.
    mean_rtt: f64,
    /// The same requests as seen on the client's interface.
    wire: Wire,
    /// eos only: the status page's size with its graphs, and how long it took.
    page: Option<(usize, Duration)>,
    /// eos only: the RSS of the agent with the ping module off.
    baseline_rss: Option<u64>,
}

/// A child process killed (and reaped) on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// CPU use of a process over a span: shares of one core.
#[derive(Clone, Debug, Default, PartialEq)]
struct CpuUse {
    total: f64,
    user: f64,
    system: f64,
    /// By thread name (threads of one name summed), largest first.
    threads: Vec<(String, f64)>,
}

/// `(comm, utime, stime)` of every thread of a process, in clock ticks.
type Threads = Vec<(String, u64, u64)>;

fn thread_ticks(pid: u32) -> Result<Threads, String> {
    let dir = format!("/proc/{pid}/task");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("reading {dir}: {e}"))?;
    let mut out = Vec::new();
    for e in entries.flatten() {
        // a thread that ended since the listing is simply not counted
        let Ok(text) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        if let Some(t) = parse_thread_stat(&text) {
            out.push(t);
        }
    }
    Ok(out)
}

/// `(comm, utime, stime)` from the text of a `/proc/PID/task/TID/stat`.
fn parse_thread_stat(text: &str) -> Option<(String, u64, u64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15
    let utime = fields.get(11)?.parse().ok()?;
    let stime = fields.get(12)?.parse().ok()?;
    Some((comm, utime, stime))
}

/// A process's CPU counters at the start of a span.
struct CpuStart {
    threads: Threads,
    total: u64,
    at: Instant,
}

fn cpu_start(pid: u32) -> Result<CpuStart, String> {
    Ok(CpuStart {
        threads: thread_ticks(pid)?,
        total: procstat::cpu_ticks(pid)?,
        at: Instant::now(),
    })
}

fn cpu_end(pid: u32, b: &CpuStart) -> Result<CpuUse, String> {
    let a = thread_ticks(pid)?;
    let total = procstat::cpu_ticks(pid)?;
    let secs = b.at.elapsed().as_secs_f64();
    let ticks = procstat::clock_ticks();
    let share = |used: u64| used as f64 / ticks / secs;
    let sum = |v: &Threads, f: fn(&(String, u64, u64)) -> u64| -> u64 { v.iter().map(f).sum() };
    let mut by_name: BTreeMap<String, i64> = BTreeMap::new();
    for (name, u, s) in &a {
        *by_name.entry(name.clone()).or_default() += (u + s) as i64;
    }
    for (name, u, s) in &b.threads {
        *by_name.entry(name.clone()).or_default() -= (u + s) as i64;
    }
    let mut threads: Vec<(String, f64)> = by_name
        .into_iter()
        .map(|(n, t)| (n, share(t.max(0) as u64)))
        .collect();
    threads.sort_by(|x, y| y.1.total_cmp(&x.1));
    Ok(CpuUse {
        total: share(total.saturating_sub(b.total)),
        user: share(sum(&a, |t| t.1).saturating_sub(sum(&b.threads, |t| t.1))),
        system: share(sum(&a, |t| t.2).saturating_sub(sum(&b.threads, |t| t.2))),
        threads,
    })
}

/// Measures `pid`'s CPU and the wire RTTs on the client's interface for `span`.
fn measure_span(chain: &Chain, pid: u32, span: Duration) -> Result<(CpuUse, Wire), String> {
    let stop = AtomicBool::new(false);
    let ns = chain.client();
    std::thread::scope(|s| {
        let cap = s.spawn(|| capture(ns, CLIENT_DEV, &stop));
        // let the capture socket come up before the span starts
        std::thread::sleep(Duration::from_millis(100));
        let start = cpu_start(pid);
        std::thread::sleep(span);
        let cpu = start.and_then(|st| cpu_end(pid, &st));
        stop.store(true, Ordering::Relaxed);
        let wire = cap
            .join()
            .map_err(|_| "the capture thread panicked".to_string())
            .and_then(|r| r);
        Ok((cpu?, wire?))
    })
}

/// GETs `path` from an agent listening on `addr` inside `ns`.
fn get_in(ns: &Netns, addr: &str, path: &str) -> Result<(u16, Vec<u8>), String> {
    let addr = addr.to_string();
    let p = path.to_string();
    ns.run(move || eos_testkit::http::request("GET", &addr, &p, &[], b""))?
        .map(|r| (r.status, r.body))
        .map_err(|e| format!("GET {path}: {e}"))
}

fn scrape(ns: &Netns, addr: &str) -> Result<Sums, String> {
    let (status, body) = get_in(ns, addr, "/metrics")?;
    if status != 200 {
        return Err(format!("GET /metrics: status {status}"));
    }
    Ok(sums(&String::from_utf8_lossy(&body)))
}

/// An agent started inside the client namespace, killed on drop.
struct RunningAgent {
    child: Killed,
    addr: String,
    log: std::path::PathBuf,
}

impl RunningAgent {
    fn pid(&self) -> u32 {
        self.child.0.id()
    }

    fn log_tail(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Starts the agent in `ns` with `ping_section` (every other module off) and waits until it
/// is ready.
fn start_agent(
    ns: &Netns,
    agent: &Path,
    modules: &[String],
    ping_section: &str,
    dir: &TempDir,
    name: &str,
) -> Result<RunningAgent, String> {
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let config = dir.join(format!("{name}.yaml"));
    let text = format!(
        "state_dir: {}\nkubelet: {{enabled: false}}\n{}",
        dir.join(name).display(),
        modules_section(modules, "ping", ping_section)
    );
    std::fs::write(&config, text).map_err(|e| format!("writing {}: {e}", config.display()))?;
    let log = dir.join(format!("{name}.log"));
    let out =
        std::fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("opening {}: {e}", log.display()))?;
    let mut cmd = ns.command(&agent.display().to_string());
    cmd.args([
        "--config".to_string(),
        config.display().to_string(),
        format!("--web.listen-address={addr}"),
    ])
    .stdin(Stdio::null())
    .stdout(out)
    .stderr(err);
    // `ip netns exec` execs the agent: the child's pid is the agent's
    let a = RunningAgent {
        child: Killed(
            cmd.spawn()
                .map_err(|e| format!("starting the agent: {e}"))?,
        ),
        addr,
        log,
    };
    let end = Instant::now() + Duration::from_secs(30);
    while !matches!(get_in(ns, &a.addr, "/readyz"), Ok((200, _))) {
        if Instant::now() > end {
            return Err(format!(
                "the agent did not get ready in 30 s:\n{}",
                a.log_tail()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(a)
}

fn measure_agent(
    chain: &Chain,
    agent: &Path,
    modules: &[String],
    targets: &[String],
    dir: &TempDir,
    seconds: u64,
) -> Result<Measured, String> {
    let ns = chain.client();
    // the agent without ping, for the module's share of the memory
    let off = start_agent(ns, agent, modules, "{enabled: false}", dir, "baseline")?;
    std::thread::sleep(Duration::from_secs(3));
    let baseline = procstat::memory(off.pid())?;
    drop(off);
    let section = format!(
        "{{enabled: true, interval: 1s, timeout: 1s, window: 1m, history: 3h, targets: [{}]}}",
        targets.join(", ")
    );
    let a = start_agent(ns, agent, modules, &section, dir, "agent")?;
    let (pid, addr) = (a.pid(), a.addr.as_str());
    eprintln!("bench: eos-agent (pid {pid}): {WARMUP:?} warm-up, {seconds} s measured");
    std::thread::sleep(WARMUP);
    let before = scrape(ns, addr)?;
    let (cpu, wire) = measure_span(chain, pid, Duration::from_secs(seconds))?;
    let after = scrape(ns, addr)?;
    let mem = procstat::memory(pid)?;
    let t = Instant::now();
    let (status, page) = get_in(ns, addr, "/")?;
    let took = t.elapsed();
    if status != 200 {
        return Err(format!("GET /: status {status}"));
    }
    let replies = after.count - before.count;
    if replies <= 0.0 {
        return Err(format!("the agent got no replies:\n{}", a.log_tail()));
    }
    drop(a);
    Ok(Measured {
        name: "eos-agent",
        cpu,
        rss: mem.rss,
        hwm: mem.hwm,
        replies,
        requests: after.requests - before.requests,
        mean_rtt: (after.sum - before.sum) / replies,
        wire,
        page: Some((page.len(), took)),
        baseline_rss: Some(baseline.rss),
    })
}

/// Totals over every target of an exposition.
#[derive(Debug, Default, PartialEq)]
struct Sums {
    requests: f64,
    count: f64,
    sum: f64,
}

fn sums(metrics: &str) -> Sums {
    let mut s = Sums::default();
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(v) = value.parse::<f64>() else {
            continue;
        };
        match series.split('{').next().unwrap_or("") {
            "smokeping_requests_total" => s.requests += v,
            "smokeping_response_duration_seconds_count" => s.count += v,
            "smokeping_response_duration_seconds_sum" => s.sum += v,
            _ => {}
        }
    }
    s
}

fn measure_fping(
    chain: &Chain,
    targets: &[String],
    dir: &TempDir,
    seconds: u64,
) -> Result<Measured, String> {
    let ns = chain.client();
    let list = dir.join("targets.txt");
    std::fs::write(&list, targets.join("\n"))
        .map_err(|e| format!("writing {}: {e}", list.display()))?;
    let log = dir.join("fping.log");
    let err =
        std::fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    // loop mode, each target once a second, 1 ms between any two sends (500 targets in half
    // a second), quiet with a summary every span: the first one is the warm-up, the second
    // the measured span
    let mut cmd = ns.command("fping");
    cmd.args([
        "-l".to_string(),
        "-p".into(),
        "1000".into(),
        "-i".into(),
        "1".into(),
        "-Q".into(),
        seconds.to_string(),
        "-f".into(),
        list.display().to_string(),
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(err);
    let child = Killed(cmd.spawn().map_err(|e| format!("starting fping: {e}"))?);
    let pid = child.0.id();
    eprintln!("bench: fping (pid {pid}): {seconds} s warm-up, {seconds} s measured");
    std::thread::sleep(Duration::from_secs(seconds));
    let (cpu, wire) = measure_span(chain, pid, Duration::from_secs(seconds))?;
    let mem = procstat::memory(pid)?;
    let end = Instant::now() + Duration::from_secs(5);
    let rows = loop {
        let blocks = fping_blocks(&std::fs::read_to_string(&log).unwrap_or_default());
        if let Some(second) = blocks.into_iter().nth(1) {
            break second;
        }
        if Instant::now() > end {
            return Err("fping printed no summary of the measured span".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    drop(child);
    let (xmt, rcv) = rows.iter().fold((0.0, 0.0), |(x, r), row| {
        (x + row.xmt as f64, r + row.rcv as f64)
    });
    let weighted: f64 = rows
        .iter()
        .filter_map(|r| r.avg_ms.map(|a| a * r.rcv as f64))
        .sum();
    Ok(Measured {
        name: "fping",
        cpu,
        rss: mem.rss,
        hwm: mem.hwm,
        replies: rcv,
        requests: xmt,
        mean_rtt: if rcv > 0.0 {
            weighted / rcv / 1e3
        } else {
            f64::NAN
        },
        wire,
        page: None,
        baseline_rss: None,
    })
}

/// One line of an fping `-Q` summary.
#[derive(Clone, Debug, PartialEq)]
struct FpingRow {
    xmt: u64,
    rcv: u64,
    avg_ms: Option<f64>,
}

/// The `-Q` summaries in fping's stderr: a `[hh:mm:ss]` line, then
/// `addr : xmt/rcv/%loss = 5/5/0%, min/avg/max = 10.2/10.3/10.5` per target.
fn fping_blocks(text: &str) -> Vec<Vec<FpingRow>> {
    let mut blocks: Vec<Vec<FpingRow>> = Vec::new();
    for line in text.lines() {
        if line.starts_with('[') {
            blocks.push(Vec::new());
            continue;
        }
        let Some((_, stats)) = line.split_once(" : xmt/rcv/%loss = ") else {
            continue;
        };
        let (counts, rtt) = match stats.split_once(", min/avg/max = ") {
            Some((c, r)) => (c, Some(r)),
            None => (stats, None),
        };
        let mut parts = counts.split('/');
        let (Some(Ok(xmt)), Some(Ok(rcv))) = (
            parts.next().map(str::parse::<u64>),
            parts.next().map(str::parse::<u64>),
        ) else {
            continue;
        };
        let avg_ms = rtt
            .and_then(|r| r.split('/').nth(1))
            .and_then(|a| a.trim().parse::<f64>().ok());
        if let Some(b) = blocks.last_mut() {
            b.push(FpingRow { xmt, rcv, avg_ms });
        }
    }
    blocks.retain(|b| !b.is_empty());
    blocks
}

/// Echo RTTs as seen on an interface: each request leaving paired with its reply coming in,
/// both stamped by the kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Wire {
    count: u64,
    /// Seconds.
    sum: f64,
}

impl Wire {
    fn mean(&self) -> f64 {
        if self.count == 0 {
            f64::NAN
        } else {
            self.sum / self.count as f64
        }
    }
}

/// An ICMP echo request (type 8) or reply (type 0) in an IPv4 packet: `(type, peer, id,
/// seq)`, the peer being a request's destination or a reply's source.
fn echo(packet: &[u8]) -> Option<(u8, [u8; 4], u16, u16)> {
    let v_ihl = *packet.first()?;
    if v_ihl >> 4 != 4 || *packet.get(9)? != 1 {
        return None;
    }
    let ihl = usize::from(v_ihl & 0x0f) * 4;
    let icmp = packet.get(ihl..ihl + 8)?;
    let peer_at = match icmp[0] {
        8 => 16,
        0 => 12,
        _ => return None,
    };
    let peer: [u8; 4] = packet.get(peer_at..peer_at + 4)?.try_into().ok()?;
    let id = u16::from_be_bytes([icmp[4], icmp[5]]);
    let seq = u16::from_be_bytes([icmp[6], icmp[7]]);
    Some((icmp[0], peer, id, seq))
}

/// Captures on `dev` in `ns` until `stop`.
fn capture(ns: &Netns, dev: &str, stop: &AtomicBool) -> Result<Wire, String> {
    ns.run(|| capture_here(dev, stop))?
}

/// Captures on `dev` (in this thread's namespace) until `stop`.
fn capture_here(dev: &str, stop: &AtomicBool) -> Result<Wire, String> {
    // ETH_P_ALL: a socket of one protocol sees only what comes in; the taps of every
    // protocol see what leaves too (other protocols are ignored below)
    let proto = (libc::ETH_P_ALL as u16).to_be();
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::c_int::from(proto),
        )
    };
    if fd < 0 {
        return Err(format!(
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `fd` was just opened and belongs to nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let name = std::ffi::CString::new(dev).map_err(|_| format!("bad device name {dev:?}"))?;
    // SAFETY: a NUL-terminated name.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(format!("no device {dev}"));
    }
    // SAFETY: all-zero bytes are a valid sockaddr_ll.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = index as libc::c_int;
    // SAFETY: binding to a sockaddr_ll of its size.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(format!(
            "binding to {dev}: {}",
            std::io::Error::last_os_error()
        ));
    }
    let set = |name: libc::c_int, value: &[u8]| {
        // SAFETY: setsockopt with a value of its length.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                name,
                value.as_ptr().cast(),
                value.len() as libc::socklen_t,
            )
        }
    };
    if set(libc::SO_TIMESTAMPNS, &1i32.to_ne_bytes()) != 0 {
        return Err(format!(
            "SO_TIMESTAMPNS: {}",
            std::io::Error::last_os_error()
        ));
    }
    set(libc::SO_RCVBUF, &(8i32 << 20).to_ne_bytes());
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: a timeval, as SO_RCVTIMEO takes.
    let tv_bytes = unsafe {
        std::slice::from_raw_parts(
            (&tv as *const libc::timeval).cast::<u8>(),
            std::mem::size_of::<libc::timeval>(),
        )
    };
    set(libc::SO_RCVTIMEO, tv_bytes);
    let mut sent: HashMap<([u8; 4], u16, u16), i128> = HashMap::new();
    let mut wire = Wire::default();
    let mut buf = [0u8; 2048];
    let mut control = [0u64; 16];
    while !stop.load(Ordering::Relaxed) {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: all-zero bytes are a valid msghdr.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        // SAFETY: `msg` points at `iov` (over `buf`) and `control`, live and writable.
        let n = unsafe { libc::recvmsg(fd.as_raw_fd(), &mut msg, 0) };
        if n < 0 {
            continue; // the receive timeout: look at `stop` again
        }
        let mut stamp = None;
        // SAFETY: walking the control messages recvmsg wrote, within msg_controllen.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                let h = std::ptr::read_unaligned(c);
                if h.cmsg_level == libc::SOL_SOCKET && h.cmsg_type == libc::SCM_TIMESTAMPNS {
                    let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::timespec>());
                    stamp = Some(i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec));
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        let (Some(at), Some((kind, peer, id, seq))) = (stamp, echo(&buf[..n as usize])) else {
            continue;
        };
        if kind == 8 {
            sent.insert((peer, id, seq), at);
        } else if let Some(t) = sent.remove(&(peer, id, seq)) {
            wire.count += 1;
            wire.sum += (at - t) as f64 / 1e9;
        }
    }
    Ok(wire)
}

fn report(a: &Args, ours: &Measured, theirs: Option<&Measured>) -> String {
    let mut s = String::new();
    let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0));
    let ms = |v: f64| format!("{:.3} ms", v * 1e3);
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    let two_d = 2.0 * a.delay.as_secs_f64();
    let _ = writeln!(
        s,
        "bench ping: {} targets once a second (10.92.0.0/16 on the target's loopback), \
client ─ r1 ─{} ms delay link─ target, from inside the client namespace; {} s measured",
        a.targets,
        a.delay.as_millis(),
        a.seconds,
    );
    let _ = writeln!(
        s,
        "{:<36} {:>14} {:>14}   target",
        "",
        ours.name,
        theirs.map_or("", |t| t.name)
    );
    let row = |s: &mut String, label: &str, f: &dyn Fn(&Measured) -> String, target: &str| {
        let _ = writeln!(
            s,
            "{label:<36} {:>14} {:>14}   {target}",
            f(ours),
            theirs.map_or(String::new(), f)
        );
    };
    let cpu_goal = 0.02 * a.targets as f64 / 500.0;
    row(
        &mut s,
        "CPU (% of one core)",
        &|m| format!("{:.2} %", m.cpu.total * 100.0),
        &format!(
            "< {:.2} %  {}",
            cpu_goal * 100.0,
            verdict(ours.cpu.total < cpu_goal)
        ),
    );
    row(
        &mut s,
        "  user / system",
        &|m| format!("{:.2}/{:.2} %", m.cpu.user * 100.0, m.cpu.system * 100.0),
        "",
    );
    row(&mut s, "RSS (VmRSS)", &|m| mib(m.rss), "");
    if let Some(b) = ours.baseline_rss {
        let _ = writeln!(
            s,
            "{:<36} {:>14}",
            "  of which the ping module",
            mib(ours.rss.saturating_sub(b))
        );
    }
    row(&mut s, "RSS peak (VmHWM)", &|m| mib(m.hwm), "");
    row(
        &mut s,
        "replies / requests in the span",
        &|m| format!("{:.0}/{:.0}", m.replies, m.requests),
        "",
    );
    row(&mut s, "mean RTT", &|m| ms(m.mean_rtt), "");
    row(
        &mut s,
        &format!("mean RTT − 2 × {} ms", a.delay.as_millis()),
        &|m| ms(m.mean_rtt - two_d),
        "",
    );
    row(
        &mut s,
        "mean RTT on the wire (same span)",
        &|m| format!("{} ({} pairs)", ms(m.wire.mean()), m.wire.count),
        "",
    );
    let err = ours.mean_rtt - ours.wire.mean();
    row(
        &mut s,
        "RTT error: mean RTT − wire",
        &|m| ms(m.mean_rtt - m.wire.mean()),
        &format!("< 0.2 ms  {}", verdict(err.abs() < 0.0002)),
    );
    let _ = writeln!(
        s,
        "the delay link's own overhead (wire − 2 × {} ms): {}",
        a.delay.as_millis(),
        ms(ours.wire.mean() - two_d)
    );
    let threads: Vec<String> = ours
        .cpu
        .threads
        .iter()
        .filter(|(_, v)| *v > 0.0)
        .map(|(n, v)| format!("{n} {:.2} %", v * 100.0))
        .collect();
    let _ = writeln!(s, "eos-agent CPU by thread: {}", threads.join(", "));
    if let Some((bytes, took)) = ours.page {
        let _ = writeln!(
            s,
            "eos-agent status page with its graphs: {bytes} bytes in {:.1} ms",
            took.as_secs_f64() * 1e3
        );
    }
    let _ = writeln!(
        s,
        "smokeping_prober (not measured: not packaged in Debian): one goroutine per target, the \
RTT from the send time carried in the echo data to when its reader goroutine sees the reply \
(user space: Go's scheduler and GC land in the RTT); eos: one sender task, one socket per \
family, the RTT from the kernel's receive timestamp."
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let a = parse(vec![]).unwrap();
        assert_eq!(
            (a.targets, a.seconds, a.delay, a.fping),
            (500, 30, Duration::from_millis(5), true)
        );
        let a = parse(
            ["--targets=10", "--seconds", "6", "--delay=0", "--no-fping"]
                .map(String::from)
                .to_vec(),
        )
        .unwrap();
        assert_eq!(
            (a.targets, a.seconds, a.delay, a.fping),
            (10, 6, Duration::ZERO, false)
        );
        assert!(parse(vec!["--targets=0".into()]).is_err());
        assert!(parse(vec!["--seconds=1".into()]).is_err());
        assert!(parse(vec!["--bogus".into()])
            .unwrap_err()
            .contains("unknown option"));
    }

    #[test]
    fn thread_stats() {
        let line = "4242 (tokio-runtime-w) S 1 2 3 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 4 0";
        assert_eq!(
            parse_thread_stat(line),
            Some(("tokio-runtime-w".into(), 17, 5))
        );
        assert_eq!(parse_thread_stat("garbage"), None);
    }

    #[test]
    fn target_addresses() {
        assert_eq!(target(0), "10.92.0.1");
        assert_eq!(target(253), "10.92.0.254");
        assert_eq!(target(254), "10.92.1.1");
        assert_eq!(target(499), "10.92.1.246");
    }

    #[test]
    fn sums_over_targets() {
        let m = "# HELP x\nsmokeping_requests_total{host=\"a\"} 10\nsmokeping_requests_total{host=\"b\"} 5\n\
smokeping_response_duration_seconds_count{host=\"a\"} 9\nsmokeping_response_duration_seconds_sum{host=\"a\"} 0.09\n\
smokeping_response_duration_seconds_bucket{host=\"a\",le=\"+Inf\"} 9\n";
        assert_eq!(
            sums(m),
            Sums {
                requests: 15.0,
                count: 9.0,
                sum: 0.09,
            }
        );
    }

    #[test]
    fn fping_summaries() {
        let text = "[12:00:05]\n10.92.0.1 : xmt/rcv/%loss = 5/5/0%, min/avg/max = 10.2/10.4/10.9\n\
10.92.0.2 : xmt/rcv/%loss = 5/0/100%\n[12:00:10]\n10.92.0.1 : xmt/rcv/%loss = 5/4/20%, min/avg/max = 10.1/10.3/10.5\n";
        let b = fping_blocks(text);
        assert_eq!(b.len(), 2);
        assert_eq!(
            b[0],
            [
                FpingRow {
                    xmt: 5,
                    rcv: 5,
                    avg_ms: Some(10.4)
                },
                FpingRow {
                    xmt: 5,
                    rcv: 0,
                    avg_ms: None
                }
            ]
        );
        assert_eq!(b[1][0].rcv, 4);
    }

    #[test]
    fn echo_packets() {
        // IPv4 header (20 bytes) 10.91.1.2 -> 10.92.0.7, ICMP echo request id 0x1234 seq 5
        let mut p = vec![0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 1, 0, 0];
        p.extend([10, 91, 1, 2, 10, 92, 0, 7]);
        p.extend([8, 0, 0, 0, 0x12, 0x34, 0, 5]);
        assert_eq!(echo(&p), Some((8, [10, 92, 0, 7], 0x1234, 5)));
        // the reply: peer is the source
        let mut r = p.clone();
        r[12..16].copy_from_slice(&[10, 92, 0, 7]);
        r[16..20].copy_from_slice(&[10, 91, 1, 2]);
        r[20] = 0;
        assert_eq!(echo(&r), Some((0, [10, 92, 0, 7], 0x1234, 5)));
        // not ICMP, not an echo, too short
        let mut udp = p.clone();
        udp[9] = 17;
        assert_eq!(echo(&udp), None);
        let mut unreachable = p.clone();
        unreachable[20] = 3;
        assert_eq!(echo(&unreachable), None);
        assert_eq!(echo(&p[..24]), None);
        assert_eq!(echo(&[]), None);
    }
}
