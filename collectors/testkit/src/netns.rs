//! Throwaway network topologies for tests and benchmarks of the network modules (probe, ping,
//! mtr): needs root, iproute2's `ip`, and for [`Link::Delay`] `/dev/net/tun`.
//!
//! - [`Netns`]: a network namespace with a unique name (`<tag>-<pid>-<n>`), deleted when
//!   dropped (also when a test panics). [`Netns::run`] runs code on a thread inside it, so
//!   that sockets opened there belong to it; [`Netns::exec`] runs a command inside it
//!   (`ip netns exec`), e.g. the real `mtr` or `iptables`.
//! - [`DelayLink`]: a point-to-point link with a fixed one-way delay (and optional random
//!   loss), for a kernel without `netem`: a TUN device in each namespace and a thread that
//!   copies packets between them after the delay.
//! - [`Chain`]: `client ─ r1 ─ … ─ target`, each link a veth pair or a [`DelayLink`], routers
//!   forwarding, IPv4 and (when the kernel has it) IPv6 addresses and routes both ways, loss
//!   on a link ([`Chain::set_loss`], iptables' `statistic` match), and a detour around a
//!   router ([`Chain::add_detour`], [`Chain::take_detour`]) for path-change tests.
//!
//! ```no_run
//! use eos_testkit::netns::{self, Chain, Link};
//! use std::time::Duration;
//!
//! if let Some(why) = netns::unavailable() {
//!     eprintln!("skipping: {why}");
//!     return;
//! }
//! let ms5 = Link::Delay(Duration::from_millis(5));
//! // client ─ r1 ─5ms─ r2 ─5ms─ r3 ─ target
//! let mut chain = Chain::new(&[Link::Veth, ms5, ms5, Link::Veth]).expect("chain");
//! // The hops a trace from the client sees: r1, r2, r3, target.
//! assert_eq!(chain.hops(false).len(), 4);
//! let dst = chain.target_addr(false).to_string();
//! let report = chain.client().exec(&["mtr", "-n", "-r", "-c", "3", &dst]).expect("mtr");
//! // 30% loss from hop 2 on; sockets opened inside `run` belong to the client.
//! chain.set_loss(2, 0.3).expect("iptables");
//! let _socket = chain.client().run(|| std::net::UdpSocket::bind("0.0.0.0:0"));
//! // A detour around r2 (a new router namespace), taken while traffic flows.
//! chain.add_detour(2).expect("detour");
//! chain.take_detour().expect("reroute");
//! ```

use std::collections::BinaryHeap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Why namespaces cannot be used here (not root, no `ip`), or `None` when they can.
pub fn unavailable() -> Option<String> {
    // SAFETY: geteuid(2) cannot fail and has no arguments.
    if unsafe { libc::geteuid() } != 0 {
        return Some("network namespaces need root".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "`ip -V` failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("iproute2's `ip` is not available: {e}")),
    }
}

/// Why [`DelayLink`]s cannot be made here (no namespaces, no `/dev/net/tun`), or `None`.
pub fn delay_unavailable() -> Option<String> {
    if let Some(why) = unavailable() {
        return Some(why);
    }
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
    {
        Ok(_) => None,
        Err(e) => Some(format!("/dev/net/tun: {e}")),
    }
}

/// Runs `ip` with `args`; its stdout, or an error with its stderr.
pub fn ip(args: &[&str]) -> Result<String, String> {
    run_cmd("ip", args)
}

fn run_cmd(program: &str, args: &[&str]) -> Result<String, String> {
    let o = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("running {program} {}: {e}", args.join(" ")))?;
    if !o.status.success() {
        return Err(format!(
            "{program} {}: {} {}",
            args.join(" "),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

/// A network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

static SERIAL: AtomicU32 = AtomicU32::new(0);

impl Netns {
    /// Creates `<tag>-<pid>-<n>` with its loopback up.
    pub fn new(tag: &str) -> Result<Netns, String> {
        let name = format!(
            "{tag}-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n <name> args...`.
    pub fn ip(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Runs a command inside the namespace (`ip netns exec <name> argv...`) and returns its
    /// stdout, or an error with its exit status and stderr.
    pub fn exec(&self, argv: &[&str]) -> Result<String, String> {
        let mut all = vec!["netns", "exec", self.name.as_str()];
        all.extend_from_slice(argv);
        ip(&all)
    }

    /// A [`Command`] that runs `program` inside the namespace, for callers that want to
    /// spawn it or read its output themselves.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", self.name.as_str(), program]);
        c
    }

    /// Writes a sysctl of this namespace (`path` under `/proc/sys`, e.g.
    /// `net/ipv4/ip_forward`).
    pub fn sysctl(&self, path: &str, value: &str) -> Result<(), String> {
        let full = format!("/proc/sys/{path}");
        self.run(|| std::fs::write(&full, value))
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(|e| format!("writing {value:?} to {full} in {}: {e}", self.name))
    }

    /// Runs `f` on a new thread that has entered this namespace, and returns its result (a
    /// panic in `f` is raised again here).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, String> {
        let path = format!("/var/run/netns/{}", self.name);
        let file = std::fs::File::open(&path).map_err(|e| format!("opening {path}: {e}"))?;
        std::thread::scope(|s| {
            let h = s.spawn(move || {
                // SAFETY: setns(2) with a namespace descriptor we hold open; it only changes
                // this (new, scoped) thread's network namespace.
                let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                if r != 0 {
                    return Err(format!("setns {path}: {}", std::io::Error::last_os_error()));
                }
                Ok(f())
            });
            match h.join() {
                Ok(r) => r,
                Err(p) => std::panic::resume_unwind(p),
            }
        })
    }

    /// Runs the future `f` makes on a fresh current-thread tokio runtime (time and I/O
    /// enabled), on a thread inside this namespace, and returns its output.
    pub fn block_on<F: std::future::Future>(&self, f: impl FnOnce() -> F + Send) -> F::Output
    where
        F::Output: Send,
    {
        #[allow(clippy::expect_used)] // test support: no runtime or no namespace ends the test
        self.run(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("building a tokio runtime")
                .block_on(f())
        })
        .expect("running in the namespace")
    }

    /// Drops arriving packets at random: `iptables -t raw -A PREROUTING -i <dev> -m
    /// statistic --mode random --probability <p> -j DROP` (and the same with `ip6tables`
    /// when `v6`). Packets that come in on `dev` are lost with probability `p`, whether they
    /// are forwarded or for this namespace; what leaves through `dev` is not touched.
    pub fn drop_incoming(&self, dev: &str, probability: f64, v6: bool) -> Result<(), String> {
        let p = format!("{probability:.4}");
        let rule = |tool: &'static str| {
            self.exec(&[
                tool,
                "-w",
                "-t",
                "raw",
                "-A",
                "PREROUTING",
                "-i",
                dev,
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &p,
                "-j",
                "DROP",
            ])
        };
        rule("iptables")?;
        if v6 {
            rule("ip6tables")?;
        }
        Ok(())
    }

    /// Removes every rule [`Netns::drop_incoming`] added (flushes the raw table).
    pub fn clear_drops(&self, v6: bool) -> Result<(), String> {
        self.exec(&["iptables", "-w", "-t", "raw", "-F"])?;
        if v6 {
            self.exec(&["ip6tables", "-w", "-t", "raw", "-F"])?;
        }
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("netns cleanup: {e}");
        }
    }
}

const TUNSETIFF: libc::c_ulong = 0x400454ca;

/// Opens a TUN device (`IFF_TUN | IFF_NO_PI`, non-blocking) named `dev` in `ns`.
fn open_tun(ns: &Netns, dev: &str) -> Result<OwnedFd, String> {
    if dev.len() >= libc::IFNAMSIZ {
        return Err(format!("device name {dev:?} is too long"));
    }
    let dev = dev.to_string();
    ns.run(move || -> Result<OwnedFd, String> {
        // Opened on a thread inside `ns`: the device is created in `ns` (the namespace of
        // the opener), so its name cannot clash with anything outside.
        // SAFETY: a NUL-terminated path; the result is checked.
        let fd = unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(format!(
                "opening /dev/net/tun: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: `fd` was just opened and is owned by nobody else.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        // struct ifreq: 16 bytes of name, then a union whose first member is ifr_flags.
        let mut ifr = [0u8; 40];
        ifr[..dev.len()].copy_from_slice(dev.as_bytes());
        let flags = (libc::IFF_TUN | libc::IFF_NO_PI) as u16;
        ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
        // SAFETY: TUNSETIFF reads and writes a struct ifreq (40 bytes) at the pointer.
        let r = unsafe { libc::ioctl(owned.as_raw_fd(), TUNSETIFF as _, ifr.as_mut_ptr()) };
        if r < 0 {
            return Err(format!(
                "TUNSETIFF {dev}: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(owned)
    })?
}

/// A point-to-point link with a fixed one-way delay, for kernels without `netem`: a TUN
/// device in each of two namespaces, and a thread of this process that copies every packet
/// from one to the other after the delay (dropping it first with the loss probability, if
/// set). The devices are created inside their namespaces (names only need to be unique
/// there) and disappear when the link is dropped. The caller addresses them and sets them
/// up (TUN devices are layer 3: no ARP, no neighbour discovery).
#[derive(Debug)]
pub struct DelayLink {
    shared: Arc<LinkShared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct LinkShared {
    stop: AtomicBool,
    delay_ns: AtomicU64,
    /// Loss probability × 2^32.
    loss: AtomicU64,
    forwarded: AtomicU64,
    dropped: AtomicU64,
}

impl DelayLink {
    /// Creates TUN device `dev_a` in `a` and `dev_b` in `b` and starts copying between them
    /// with `delay` each way.
    pub fn new(
        a: &Netns,
        dev_a: &str,
        b: &Netns,
        dev_b: &str,
        delay: Duration,
    ) -> Result<DelayLink, String> {
        let fa = open_tun(a, dev_a)?;
        let fb = open_tun(b, dev_b)?;
        let shared = Arc::new(LinkShared {
            stop: AtomicBool::new(false),
            delay_ns: AtomicU64::new(delay.as_nanos() as u64),
            loss: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("delaylink-{dev_a}"))
            .spawn(move || pump(fa, fb, &s))
            .map_err(|e| format!("starting the delay link thread: {e}"))?;
        Ok(DelayLink {
            shared,
            thread: Some(thread),
        })
    }

    /// Changes the one-way delay (packets already queued keep theirs).
    pub fn set_delay(&self, delay: Duration) {
        self.shared
            .delay_ns
            .store(delay.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Drops each packet (either way) with probability `p` (0 to 1).
    pub fn set_loss(&self, p: f64) {
        let v = (p.clamp(0.0, 1.0) * (1u64 << 32) as f64) as u64;
        self.shared.loss.store(v, Ordering::Relaxed);
    }

    /// Packets copied so far (both ways).
    pub fn forwarded(&self) -> u64 {
        self.shared.forwarded.load(Ordering::Relaxed)
    }

    /// Packets dropped by [`DelayLink::set_loss`] so far.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for DelayLink {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A packet waiting for its time, ordered soonest first.
struct Queued {
    due: Instant,
    seq: u64,
    to_b: bool,
    data: Vec<u8>,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // Reversed: BinaryHeap is a max-heap.
        (o.due, o.seq).cmp(&(self.due, self.seq))
    }
}

/// The delay link's thread: reads both devices as packets arrive, writes each to the other
/// device once it is due, until asked to stop.
fn pump(a: OwnedFd, b: OwnedFd, s: &LinkShared) {
    let mut queue: BinaryHeap<Queued> = BinaryHeap::new();
    let mut seq = 0u64;
    // xorshift64* for the loss decisions; seeded from the clock.
    let mut rng = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9e37_79b9_7f4a_7c15)
        | 1;
    let mut buf = vec![0u8; 65536];
    while !s.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let wait = queue
            .peek()
            .map(|q| q.due.saturating_duration_since(now))
            .unwrap_or(Duration::from_millis(100))
            .min(Duration::from_millis(100));
        let mut fds = [
            libc::pollfd {
                fd: a.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: b.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let ts = libc::timespec {
            tv_sec: wait.as_secs() as libc::time_t,
            tv_nsec: wait.subsec_nanos() as libc::c_long,
        };
        // SAFETY: two valid pollfds; a valid timespec; no signal mask.
        let n = unsafe { libc::ppoll(fds.as_mut_ptr(), 2, &ts, std::ptr::null()) };
        if n > 0 {
            let now = Instant::now();
            let delay = Duration::from_nanos(s.delay_ns.load(Ordering::Relaxed));
            for (i, fd) in [&a, &b].into_iter().enumerate() {
                if fds[i].revents == 0 {
                    continue;
                }
                loop {
                    // SAFETY: reading into a buffer of its length.
                    let r =
                        unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                    if r <= 0 {
                        break;
                    }
                    let loss = s.loss.load(Ordering::Relaxed);
                    if loss > 0 {
                        rng ^= rng >> 12;
                        rng ^= rng << 25;
                        rng ^= rng >> 27;
                        let x = rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32;
                        if x < loss {
                            s.dropped.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                    }
                    seq += 1;
                    queue.push(Queued {
                        due: now + delay,
                        seq,
                        to_b: i == 0,
                        data: buf[..r as usize].to_vec(),
                    });
                }
            }
        }
        let now = Instant::now();
        while queue.peek().is_some_and(|q| q.due <= now) {
            let Some(q) = queue.pop() else { break };
            let fd = if q.to_b { &b } else { &a };
            // SAFETY: writing a buffer of its length. A failure (device down) drops it.
            let w = unsafe { libc::write(fd.as_raw_fd(), q.data.as_ptr().cast(), q.data.len()) };
            if w > 0 {
                s.forwarded.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// One link of a [`Chain`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Link {
    /// A veth pair: no delay.
    Veth,
    /// A [`DelayLink`] with this one-way delay.
    Delay(Duration),
}

/// A link as built: which nodes it joins, its number (subnet) and the delay link if any.
#[derive(Debug)]
struct Built {
    left: usize,
    right: usize,
    /// `10.91.<n>.0/24`, `fd00:91:<n>::/64`; the device is `l<n>` on both sides.
    n: u32,
    delay: Option<DelayLink>,
}

/// `client ─ r1 ─ … ─ target`: a line of namespaces, the routers forwarding (without the
/// kernel's rate limit on ICMP errors), addresses and routes for IPv4 and (when the kernel
/// has it) IPv6.
///
/// Link `n` (1-based, from the client) is `10.91.<n>.0/24` and `fd00:91:<n>::/64`, device
/// `l<n>` on both sides; the node on its target side has `.1` (`::1`) when it is a router and
/// `.2` when it is the target, the node on its client side the other. So router `i` answers
/// a trace from `10.91.<i>.1` ([`Chain::hops`]), the client is `10.91.1.2` and the target
/// `10.91.<links>.2`. With one router this is the classic `a ── r ── b` (a `10.91.1.2`,
/// r `10.91.1.1`, b `10.91.2.2`).
///
/// The last router drops everything for `10.91.9.0/24` / `fd00:91:9::/64` silently
/// (blackhole: a trace sees every router, then nothing) and answers "unreachable" for
/// `10.91.8.0/24` / `fd00:91:8::/64`.
#[derive(Debug)]
pub struct Chain {
    // Declared before the namespaces: the delay threads stop before those are deleted.
    links: Vec<Built>,
    nodes: Vec<Netns>,
    /// Links on the line from client to target.
    line: usize,
    /// The nodes from client to target that traffic takes now.
    path: Mutex<Vec<usize>>,
    /// The router a detour goes around, and the detour's node.
    detour: Option<(usize, usize)>,
    /// Whether the IPv6 addresses and routes are set up.
    pub v6: bool,
}

impl Chain {
    /// The client's address (`client()`, link 1).
    pub const CLIENT4: Ipv4Addr = Ipv4Addr::new(10, 91, 1, 2);
    /// The client's IPv6 address.
    pub const CLIENT6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x91, 1, 0, 0, 0, 0, 2);
    /// Blackholed by the last router: no answer.
    pub const SILENT4: Ipv4Addr = Ipv4Addr::new(10, 91, 9, 9);
    /// Rejected by the last router with an ICMP host unreachable.
    pub const REJECT4: Ipv4Addr = Ipv4Addr::new(10, 91, 8, 8);
    /// Blackholed by the last router.
    pub const SILENT6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x91, 9, 0, 0, 0, 0, 9);
    /// Rejected by the last router with an ICMPv6 unreachable.
    pub const REJECT6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x91, 8, 0, 0, 0, 0, 8);

    /// Builds a chain of `links.len() + 1` namespaces (`links.len() - 1` routers), named
    /// `eos-client-…`, `eos-r1-…`, …, `eos-target-…`. At least two links.
    pub fn new(links: &[Link]) -> Result<Chain, String> {
        Self::tagged("eos", links)
    }

    /// [`Chain::tagged`], or `None` with the reason printed ("skipping: ...") when this
    /// machine cannot build it (not root, no namespaces, no `/dev/net/tun` for delay links),
    /// for tests that need a chain and are skipped without one.
    pub fn tagged_or_skip(tag: &str, links: &[Link]) -> Option<Chain> {
        let delays = links.iter().any(|l| matches!(l, Link::Delay(_)));
        let why = if delays {
            delay_unavailable()
        } else {
            unavailable()
        };
        if let Some(why) = why {
            eprintln!("skipping: {why}");
            return None;
        }
        match Chain::tagged(tag, links) {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("skipping: cannot build the namespace chain: {e}");
                None
            }
        }
    }

    /// [`Chain::new`] with the namespaces named `<tag>-client-…` etc.
    pub fn tagged(tag: &str, links: &[Link]) -> Result<Chain, String> {
        if links.len() < 2 {
            return Err("a chain needs at least two links (one router)".into());
        }
        let n = links.len();
        let mut nodes = Vec::with_capacity(n + 1);
        for i in 0..=n {
            let role = match i {
                0 => "client".to_string(),
                i if i == n => "target".to_string(),
                i => format!("r{i}"),
            };
            nodes.push(Netns::new(&format!("{tag}-{role}"))?);
        }
        let mut chain = Chain {
            links: Vec::new(),
            nodes,
            line: n,
            path: Mutex::new((0..=n).collect()),
            detour: None,
            v6: false,
        };
        for r in 1..n {
            chain.make_router(r)?;
        }
        // IPv6 is best effort: a kernel without it still gets the IPv4 chain. No duplicate
        // address detection: link-local addresses would be tentative for a second or two
        // after a link comes up, and neighbour discovery waits for them.
        chain.v6 = chain.nodes.iter().all(|ns| {
            ns.sysctl("net/ipv6/conf/default/accept_dad", "0").is_ok()
                && ns.sysctl("net/ipv6/conf/all/accept_dad", "0").is_ok()
        });
        for (i, link) in links.iter().enumerate() {
            chain.connect(i, i + 1, i as u32 + 1, *link)?;
        }
        let last = n - 1;
        let r = &chain.nodes[last];
        r.ip(&["route", "add", "blackhole", "10.91.9.0/24"])?;
        r.ip(&["route", "add", "unreachable", "10.91.8.0/24"])?;
        if chain.v6 {
            r.ip(&["-6", "route", "add", "blackhole", "fd00:91:9::/64"])?;
            r.ip(&["-6", "route", "add", "unreachable", "fd00:91:8::/64"])?;
        }
        chain.route()?;
        Ok(chain)
    }

    fn make_router(&self, i: usize) -> Result<(), String> {
        let ns = &self.nodes[i];
        ns.sysctl("net/ipv4/ip_forward", "1")?;
        ns.sysctl("net/ipv4/conf/all/rp_filter", "0")?;
        ns.sysctl("net/ipv4/conf/default/rp_filter", "0")?;
        // No per-destination rate limit on ICMP errors (1 a second with a burst of 6 by
        // default), so that traces may probe faster than once a second. For IPv4 by the
        // mask, not `icmp_ratelimit` 0: that would empty the token bucket an unreachable
        // route's own limit shares, and silence it.
        ns.sysctl("net/ipv4/icmp_ratemask", "0")?;
        let _ = ns.sysctl("net/ipv6/conf/all/forwarding", "1");
        let _ = ns.sysctl("net/ipv6/icmp/ratelimit", "0");
        Ok(())
    }

    /// Whether node `i` is the target (the last node of the original line).
    fn is_target(&self, i: usize) -> bool {
        i == self.links_on_line()
    }

    fn links_on_line(&self) -> usize {
        self.line
    }

    fn path(&self) -> Vec<usize> {
        self.path
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The host part of node `node`'s address on a link whose other end is `peer`, with
    /// `node` on the `left` (client) side or not.
    fn host_part(&self, node: usize, peer: usize, left: bool) -> u8 {
        let right_node = if left { peer } else { node };
        let right_is_router = !self.is_target(right_node);
        match (left, right_is_router) {
            (false, true) | (true, false) => 1,
            _ => 2,
        }
    }

    fn connect(&mut self, left: usize, right: usize, n: u32, link: Link) -> Result<(), String> {
        let dev = format!("l{n}");
        let delay = match link {
            Link::Veth => {
                self.nodes[left].ip(&[
                    "link",
                    "add",
                    &dev,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &dev,
                    "netns",
                    self.nodes[right].name(),
                ])?;
                None
            }
            Link::Delay(d) => Some(DelayLink::new(
                &self.nodes[left],
                &dev,
                &self.nodes[right],
                &dev,
                d,
            )?),
        };
        for (node, peer, is_left) in [(left, right, true), (right, left, false)] {
            let ns = &self.nodes[node];
            let h = self.host_part(node, peer, is_left);
            ns.ip(&["addr", "add", &format!("10.91.{n}.{h}/24"), "dev", &dev])?;
            if self.v6 {
                ns.ip(&[
                    "-6",
                    "addr",
                    "add",
                    &format!("fd00:91:{n}::{h}/64"),
                    "dev",
                    &dev,
                    "nodad",
                ])?;
            }
            ns.ip(&["link", "set", &dev, "up"])?;
        }
        if delay.is_none() {
            // Permanent neighbour entries both ways: the first IPv6 packet over a fresh veth
            // otherwise waits a second for neighbour discovery (its first solicitation is
            // lost), which a test's first probe would count as loss.
            for (node, peer, is_left) in [(left, right, true), (right, left, false)] {
                let out = self.nodes[peer].ip(&["-o", "link", "show", "dev", &dev])?;
                let mac = out
                    .split_whitespace()
                    .skip_while(|w| *w != "link/ether")
                    .nth(1)
                    .ok_or_else(|| format!("no MAC address of {dev} in {out:?}"))?
                    .to_string();
                let h = self.host_part(peer, node, !is_left);
                let ns = &self.nodes[node];
                let mut addrs = vec![format!("10.91.{n}.{h}")];
                if self.v6 {
                    addrs.push(format!("fd00:91:{n}::{h}"));
                }
                for a in addrs {
                    ns.ip(&[
                        "neigh",
                        "replace",
                        &a,
                        "lladdr",
                        &mac,
                        "dev",
                        &dev,
                        "nud",
                        "permanent",
                    ])?;
                }
            }
        }
        self.links.push(Built {
            left,
            right,
            n,
            delay,
        });
        Ok(())
    }

    /// The link joining nodes `x` and `y`, either way round.
    fn link_between(&self, x: usize, y: usize) -> Option<&Built> {
        self.links
            .iter()
            .find(|l| (l.left == x && l.right == y) || (l.left == y && l.right == x))
    }

    /// (IPv4, IPv6) address of `node` on link `l`.
    fn addr_on(&self, node: usize, l: &Built) -> (Ipv4Addr, Ipv6Addr) {
        let (peer, left) = if l.left == node {
            (l.right, true)
        } else {
            (l.left, false)
        };
        let h = self.host_part(node, peer, left);
        (
            Ipv4Addr::new(10, 91, l.n as u8, h),
            Ipv6Addr::new(0xfd00, 0x91, hex_group(l.n), 0, 0, 0, 0, h as u16),
        )
    }

    /// Sets every route along the current path: the client's and target's default routes,
    /// each router's routes to the subnets beyond its neighbours. `ip route replace`, so that
    /// calling it again after a detour moves the traffic.
    fn route(&self) -> Result<(), String> {
        let p = &self.path();
        let last = p.len() - 1;
        let edges: Vec<&Built> = p
            .windows(2)
            .map(|w| {
                self.link_between(w[0], w[1])
                    .ok_or("a path edge without a link")
            })
            .collect::<Result<_, _>>()?;
        for pos in 0..=last {
            let node = p[pos];
            let ns = &self.nodes[node];
            // Via the left neighbour (its address on the shared link), via the right one.
            let left_via = (pos > 0).then(|| self.addr_on(p[pos - 1], edges[pos - 1]));
            let right_via = (pos < last).then(|| self.addr_on(p[pos + 1], edges[pos]));
            let mut routes: Vec<(String, String, bool)> = Vec::new();
            if pos == 0 || pos == last {
                let (via4, via6) = left_via.or(right_via).ok_or("a node without a neighbour")?;
                routes.push(("default".into(), via4.to_string(), false));
                routes.push(("default".into(), via6.to_string(), true));
            } else {
                let (l4, l6) = left_via.ok_or("a router without a left neighbour")?;
                let (r4, r6) = right_via.ok_or("a router without a right neighbour")?;
                for (e, edge) in edges.iter().enumerate() {
                    // Edge e joins positions e and e+1; ours are pos-1 and pos.
                    if e + 1 < pos {
                        routes.push((format!("10.91.{}.0/24", edge.n), l4.to_string(), false));
                        routes.push((
                            format!("fd00:91:{:x}::/64", hex_group(edge.n)),
                            l6.to_string(),
                            true,
                        ));
                    } else if e > pos {
                        routes.push((format!("10.91.{}.0/24", edge.n), r4.to_string(), false));
                        routes.push((
                            format!("fd00:91:{:x}::/64", hex_group(edge.n)),
                            r6.to_string(),
                            true,
                        ));
                    }
                }
                if pos + 1 < last {
                    for s in [8, 9] {
                        routes.push((format!("10.91.{s}.0/24"), r4.to_string(), false));
                        routes.push((format!("fd00:91:{s}::/64"), r6.to_string(), true));
                    }
                }
            }
            for (dst, via, v6) in routes {
                if v6 && !self.v6 {
                    continue;
                }
                let fam = if v6 { "-6" } else { "-4" };
                ns.ip(&[fam, "route", "replace", &dst, "via", &via])?;
            }
        }
        Ok(())
    }

    /// The client (first node).
    pub fn client(&self) -> &Netns {
        &self.nodes[0]
    }

    /// The target (last node of the line).
    pub fn target(&self) -> &Netns {
        &self.nodes[self.links_on_line()]
    }

    /// Router `i` (1-based from the client; a detour router is `routers() + 1`).
    pub fn router(&self, i: usize) -> &Netns {
        let n = self.links_on_line();
        if i >= n {
            &self.nodes[i + 1]
        } else {
            &self.nodes[i]
        }
    }

    /// How many routers the line has (not counting a detour).
    pub fn routers(&self) -> usize {
        self.links_on_line() - 1
    }

    /// The target's address of the family.
    pub fn target_addr(&self, v6: bool) -> IpAddr {
        let n = self.links_on_line() as u32;
        if v6 {
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0x91, hex_group(n), 0, 0, 0, 0, 2))
        } else {
            IpAddr::V4(Ipv4Addr::new(10, 91, n as u8, 2))
        }
    }

    /// The addresses a trace from the client sees now, in order: each router on the current
    /// path (its address towards the client), then the target.
    pub fn hops(&self, v6: bool) -> Vec<IpAddr> {
        self.path()
            .windows(2)
            .filter_map(|w| {
                let l = self.link_between(w[0], w[1])?;
                let (a4, a6) = self.addr_on(w[1], l);
                Some(if v6 { IpAddr::V6(a6) } else { IpAddr::V4(a4) })
            })
            .collect()
    }

    /// The delay link that is link `n` (1-based from the client), if it is one.
    pub fn delay_link(&self, n: usize) -> Option<&DelayLink> {
        self.links
            .iter()
            .find(|l| l.n as usize == n)
            .and_then(|l| l.delay.as_ref())
    }

    /// Loses packets that cross link `n` (1-based) towards the target with probability `p`:
    /// iptables' `statistic` match on the node at the link's target side, so a trace sees
    /// the loss from hop `n` on. Answers coming back are not touched.
    pub fn set_loss(&self, n: usize, probability: f64) -> Result<(), String> {
        let l = self
            .links
            .iter()
            .find(|l| l.n as usize == n)
            .ok_or_else(|| format!("no link {n}"))?;
        self.nodes[l.right].drop_incoming(&format!("l{}", l.n), probability, self.v6)
    }

    /// Removes all loss set with [`Chain::set_loss`].
    pub fn clear_loss(&self) -> Result<(), String> {
        for ns in &self.nodes {
            ns.clear_drops(self.v6)?;
        }
        Ok(())
    }

    /// Builds a detour around router `i` (1-based): a new router namespace joined to `i`'s
    /// neighbours by veth pairs (links `100 + i` and `150 + i`). Traffic keeps to the line
    /// until [`Chain::take_detour`]. The detour router is [`Chain::router`]`(routers() + 1)`.
    /// One detour per chain.
    pub fn add_detour(&mut self, i: usize) -> Result<(), String> {
        let n = self.links_on_line();
        if i == 0 || i >= n {
            return Err(format!("no router {i} (the chain has {})", n - 1));
        }
        if self.detour.is_some() {
            return Err("the chain already has a detour".into());
        }
        let tag = self.nodes[0]
            .name()
            .split("-client-")
            .next()
            .unwrap_or("eos")
            .to_string();
        self.nodes.push(Netns::new(&format!("{tag}-detour"))?);
        let x = self.nodes.len() - 1;
        if self.v6 {
            self.nodes[x].sysctl("net/ipv6/conf/default/accept_dad", "0")?;
        }
        self.make_router(x)?;
        self.connect(i - 1, x, 100 + i as u32, Link::Veth)?;
        self.connect(x, i + 1, 150 + i as u32, Link::Veth)?;
        self.detour = Some((i, x));
        Ok(())
    }

    /// Sends the traffic through the detour (routes changed with `ip route replace`, so
    /// while a test traces): a trace sees `10.91.<100+i>.1` instead of `10.91.<i>.1`, and
    /// the next router answers from its side of link `150 + i`.
    pub fn take_detour(&self) -> Result<(), String> {
        let (i, x) = self.detour.ok_or("the chain has no detour (add_detour)")?;
        {
            let mut p = self
                .path
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            *p = (0..=self.links_on_line()).collect();
            p[i] = x;
        }
        self.route()
    }

    /// [`Chain::add_detour`] then [`Chain::take_detour`].
    pub fn reroute_around(&mut self, i: usize) -> Result<(), String> {
        self.add_detour(i)?;
        self.take_detour()
    }

    /// Sends the traffic along the line again (the detour stays, unused).
    pub fn reroute_back(&self) -> Result<(), String> {
        *self
            .path
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            (0..=self.links_on_line()).collect();
        self.route()
    }
}

/// Link number `n` written as hex digits that read like the decimal number, so that link 12
/// is `fd00:91:12::` like `10.91.12.0`.
fn hex_group(n: u32) -> u16 {
    u16::from_str_radix(&n.to_string(), 16).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_groups_read_like_the_link_number() {
        assert_eq!(hex_group(1), 0x1);
        assert_eq!(hex_group(12), 0x12);
        assert_eq!(hex_group(151), 0x151);
    }

    /// The shortest of three UDP round trips from a socket in `from` to an echo socket bound
    /// to `addr` in `to`, or `None` when none came back.
    fn udp_rtt(from: &Netns, to: &Netns, addr: IpAddr) -> Option<Duration> {
        use std::net::{SocketAddr, UdpSocket};
        let server = to
            .run(move || UdpSocket::bind(SocketAddr::new(addr, 0)))
            .unwrap()
            .unwrap();
        let dst = server.local_addr().unwrap();
        server
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let echo = std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while let Ok((n, peer)) = server.recv_from(&mut buf) {
                let _ = server.send_to(&buf[..n], peer);
            }
        });
        let any: IpAddr = if addr.is_ipv6() {
            Ipv6Addr::UNSPECIFIED.into()
        } else {
            Ipv4Addr::UNSPECIFIED.into()
        };
        let client = from
            .run(move || UdpSocket::bind(SocketAddr::new(any, 0)))
            .unwrap()
            .unwrap();
        client
            .set_read_timeout(Some(Duration::from_millis(400)))
            .unwrap();
        let mut best: Option<Duration> = None;
        for i in 0..3u8 {
            let sent = Instant::now();
            client.send_to(&[i], dst).unwrap();
            let mut buf = [0u8; 64];
            if let Ok((1, _)) = client.recv_from(&mut buf) {
                let rtt = sent.elapsed();
                best = Some(best.map_or(rtt, |b| b.min(rtt)));
            }
        }
        drop(client);
        echo.join().unwrap();
        best
    }

    #[test]
    fn a_chain_with_delay_links_routes_both_ways_and_reroutes() {
        if let Some(why) = delay_unavailable() {
            eprintln!("skipping: {why}");
            return;
        }
        let d = Link::Delay(Duration::from_millis(5));
        let mut chain = Chain::tagged("eos-testkit", &[Link::Veth, d, d, Link::Veth]).unwrap();
        assert_eq!(chain.routers(), 3);
        let line = || -> Vec<IpAddr> {
            ["10.91.1.1", "10.91.2.1", "10.91.3.1", "10.91.4.2"]
                .map(|a| a.parse().unwrap())
                .to_vec()
        };
        assert_eq!(chain.hops(false), line());
        let names: Vec<&str> = [chain.client(), chain.router(2), chain.target()]
            .iter()
            .map(|n| n.name())
            .collect();
        assert!(names[0].starts_with("eos-testkit-client-"), "{names:?}");
        assert!(names[1].starts_with("eos-testkit-r2-"), "{names:?}");
        // Two delay links: 2 × 5 ms each way, 20 ms round trip.
        let target = chain.target_addr(false);
        let rtt = udp_rtt(chain.client(), chain.target(), target).expect("through");
        assert!(rtt >= Duration::from_millis(20), "{rtt:?}");
        assert!(rtt < Duration::from_millis(60), "{rtt:?}");
        assert!(chain.delay_link(2).unwrap().forwarded() >= 6);
        assert!(chain.delay_link(1).is_none());
        if chain.v6 {
            let t6 = chain.target_addr(true);
            let rtt = udp_rtt(chain.client(), chain.target(), t6).expect("v6 through");
            assert!(rtt >= Duration::from_millis(20), "v6 {rtt:?}");
        }
        // Around r2: the detour is veth only, and both delay links end at r2. r3 now
        // answers from its side of the detour link.
        chain.reroute_around(2).unwrap();
        assert_eq!(
            chain.hops(false),
            ["10.91.1.1", "10.91.102.1", "10.91.152.1", "10.91.4.2"]
                .map(|a| a.parse::<IpAddr>().unwrap())
        );
        let rtt = udp_rtt(chain.client(), chain.target(), target).expect("detour");
        assert!(rtt < Duration::from_millis(15), "detour: {rtt:?}");
        if chain.v6 {
            let t6 = chain.target_addr(true);
            udp_rtt(chain.client(), chain.target(), t6).expect("v6 detour");
        }
        chain.reroute_back().unwrap();
        assert_eq!(chain.hops(false), line());
        let rtt = udp_rtt(chain.client(), chain.target(), target).expect("back");
        assert!(rtt >= Duration::from_millis(20), "back: {rtt:?}");
        // Total loss on link 3: the target is gone, r2 still answers.
        chain.set_loss(3, 1.0).unwrap();
        assert_eq!(udp_rtt(chain.client(), chain.target(), target), None);
        let r2: IpAddr = "10.91.2.1".parse().unwrap();
        udp_rtt(chain.client(), chain.router(2), r2).expect("r2 still answers");
        chain.clear_loss().unwrap();
        udp_rtt(chain.client(), chain.target(), target).expect("loss cleared");
        // A delay link can change its delay and lose packets itself.
        chain
            .delay_link(2)
            .unwrap()
            .set_delay(Duration::from_millis(20));
        let rtt = udp_rtt(chain.client(), chain.target(), target).expect("slower");
        assert!(rtt >= Duration::from_millis(50), "{rtt:?}");
        chain.delay_link(2).unwrap().set_loss(1.0);
        assert_eq!(udp_rtt(chain.client(), chain.target(), target), None);
        assert!(chain.delay_link(2).unwrap().dropped() >= 3);
        let name = chain.client().name().to_string();
        drop(chain);
        assert!(!ip(&["netns", "list"]).unwrap().contains(&name));
    }
}
