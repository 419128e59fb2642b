//! Loopback ports for servers a test starts.
//!
//! A port taken by binding `127.0.0.1:0` comes from the kernel's ephemeral range, where the
//! kernel hands it straight to the next test that binds port 0 or opens a connection: two
//! tests running in parallel then race for it. So ports here come from below the ephemeral
//! range (`net.ipv4.ip_local_port_range`), which the kernel never picks on its own, walked by a
//! process-wide counter that starts at an offset derived from the process id, and each one is
//! checked bindable before it is handed out. Another process can still take it before the
//! server binds it; where the server can report its own port, bind port 0 instead.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU32, Ordering};

/// Lowest port handed out: above the well-known and commonly registered ones.
const FLOOR: u32 = 20_000;
/// Used when the ephemeral range can't be read.
const DEFAULT_EPHEMERAL_START: u32 = 32_768;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A port on 127.0.0.1 that was free a moment ago and that no other caller in this process
/// has been given.
pub fn free_port() -> Result<u16, String> {
    let ceiling = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| ephemeral_start(&s))
        .unwrap_or(DEFAULT_EPHEMERAL_START);
    if ceiling <= FLOOR + 100 {
        return any_port();
    }
    let span = ceiling - FLOOR;
    let offset = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = FLOOR + (offset + n) % span;
        let port = u16::try_from(port).map_err(|_| format!("port {port} out of range"))?;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    any_port()
}

/// The first port of the kernel's ephemeral range, from `ip_local_port_range`.
fn ephemeral_start(range: &str) -> Option<u32> {
    range.split_whitespace().next()?.parse().ok()
}

fn any_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: binding 127.0.0.1:0: {e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_free_port_can_be_bound() {
        let port = super::free_port().unwrap();
        assert_ne!(port, 0);
        std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    }

    #[test]
    fn ports_are_not_handed_out_twice_nor_from_the_ephemeral_range() {
        let ports: Vec<u16> = (0..200).map(|_| super::free_port().unwrap()).collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), ports.len());
        let start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .ok()
            .and_then(|s| super::ephemeral_start(&s))
            .unwrap_or(super::DEFAULT_EPHEMERAL_START);
        assert!(ports.iter().all(|&p| u32::from(p) < start), "{ports:?}");
    }

    #[test]
    fn ephemeral_range_parses() {
        assert_eq!(super::ephemeral_start("32768\t60999\n"), Some(32768));
        assert_eq!(super::ephemeral_start(""), None);
    }
}
