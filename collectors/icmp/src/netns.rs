//! Throwaway network namespaces for tests of ICMP users: needs root and iproute2's `ip`.
//! Each [`Netns`] is deleted when dropped (also when a test panics), and [`Netns::run`] runs
//! code on a thread inside it, so that sockets opened there belong to it.
//!
//! [`Chain`] builds `a ── r ── b`: two hops, `r` forwarding, with addresses and routes for
//! IPv4 and (when the kernel has it) IPv6, and destinations that `r` blackholes (no answer
//! ever) or rejects (an ICMP unreachable).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

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

/// Runs `ip` with `args`; its stdout, or an error with its stderr.
pub fn ip(args: &[&str]) -> Result<String, String> {
    let o = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("running ip {}: {e}", args.join(" ")))?;
    if !o.status.success() {
        return Err(format!(
            "ip {}: {}",
            args.join(" "),
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
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            eprintln!("netns cleanup: {e}");
        }
    }
}

/// `a ── r ── b`: `a` and `b` route everything through `r`, which forwards.
///
/// | namespace | IPv4 | IPv6 |
/// |---|---|---|
/// | a | 10.91.1.2/24 | fd00:91:1::2/64 |
/// | r | 10.91.1.1/24, 10.91.2.1/24 | fd00:91:1::1/64, fd00:91:2::1/64 |
/// | b | 10.91.2.2/24 | fd00:91:2::2/64 |
///
/// `r` drops everything for 10.91.9.0/24 and fd00:91:9::/64 silently (blackhole), and
/// answers "unreachable" for 10.91.8.0/24 and fd00:91:8::/64.
#[derive(Debug)]
pub struct Chain {
    pub a: Netns,
    pub r: Netns,
    pub b: Netns,
    /// Whether the IPv6 addresses and routes are set up.
    pub v6: bool,
}

impl Chain {
    /// `a`'s address.
    pub const A4: Ipv4Addr = Ipv4Addr::new(10, 91, 1, 2);
    /// `r`'s address towards `a` (where its ICMP errors to `a` come from).
    pub const R4: Ipv4Addr = Ipv4Addr::new(10, 91, 1, 1);
    /// `b`'s address.
    pub const B4: Ipv4Addr = Ipv4Addr::new(10, 91, 2, 2);
    /// Blackholed by `r`: no answer.
    pub const SILENT4: Ipv4Addr = Ipv4Addr::new(10, 91, 9, 9);
    /// Rejected by `r` with an ICMP host unreachable.
    pub const REJECT4: Ipv4Addr = Ipv4Addr::new(10, 91, 8, 8);
    /// `a`'s IPv6 address.
    pub const A6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x91, 1, 0, 0, 0, 0, 2);
    /// `r`'s IPv6 address towards `a`.
    pub const R6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x91, 1, 0, 0, 0, 0, 1);
    /// `b`'s IPv6 address.
    pub const B6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x91, 2, 0, 0, 0, 0, 2);
    /// Blackholed by `r`.
    pub const SILENT6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x91, 9, 0, 0, 0, 0, 9);
    /// Rejected by `r` with an ICMPv6 unreachable.
    pub const REJECT6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x91, 8, 0, 0, 0, 0, 8);

    /// Builds the chain (namespaces tagged `tag`).
    pub fn new(tag: &str) -> Result<Chain, String> {
        let a = Netns::new(&format!("{tag}-a"))?;
        let r = Netns::new(&format!("{tag}-r"))?;
        let b = Netns::new(&format!("{tag}-b"))?;
        a.ip(&[
            "link",
            "add",
            "eth0",
            "type",
            "veth",
            "peer",
            "name",
            "ra",
            "netns",
            r.name(),
        ])?;
        b.ip(&[
            "link",
            "add",
            "eth0",
            "type",
            "veth",
            "peer",
            "name",
            "rb",
            "netns",
            r.name(),
        ])?;
        for (ns, dev, addr) in [
            (&a, "eth0", "10.91.1.2/24"),
            (&r, "ra", "10.91.1.1/24"),
            (&r, "rb", "10.91.2.1/24"),
            (&b, "eth0", "10.91.2.2/24"),
        ] {
            ns.ip(&["addr", "add", addr, "dev", dev])?;
            ns.ip(&["link", "set", dev, "up"])?;
        }
        a.ip(&["route", "add", "default", "via", "10.91.1.1"])?;
        b.ip(&["route", "add", "default", "via", "10.91.2.1"])?;
        r.sysctl("net/ipv4/ip_forward", "1")?;
        r.ip(&["route", "add", "blackhole", "10.91.9.0/24"])?;
        r.ip(&["route", "add", "unreachable", "10.91.8.0/24"])?;
        let mut chain = Chain { a, r, b, v6: false };
        chain.v6 = chain.setup_v6().is_ok();
        Ok(chain)
    }

    fn setup_v6(&self) -> Result<(), String> {
        let (a, r, b) = (&self.a, &self.r, &self.b);
        for (ns, dev, addr) in [
            (a, "eth0", "fd00:91:1::2/64"),
            (r, "ra", "fd00:91:1::1/64"),
            (r, "rb", "fd00:91:2::1/64"),
            (b, "eth0", "fd00:91:2::2/64"),
        ] {
            ns.ip(&["-6", "addr", "add", addr, "dev", dev, "nodad"])?;
        }
        a.ip(&["-6", "route", "add", "default", "via", "fd00:91:1::1"])?;
        b.ip(&["-6", "route", "add", "default", "via", "fd00:91:2::1"])?;
        r.sysctl("net/ipv6/conf/all/forwarding", "1")?;
        r.ip(&["-6", "route", "add", "blackhole", "fd00:91:9::/64"])?;
        r.ip(&["-6", "route", "add", "unreachable", "fd00:91:8::/64"])?;
        Ok(())
    }

    /// `b`'s address of the family.
    pub fn b(v6: bool) -> IpAddr {
        if v6 {
            IpAddr::V6(Self::B6)
        } else {
            IpAddr::V4(Self::B4)
        }
    }
}
