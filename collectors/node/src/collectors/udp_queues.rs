//! `udp_queues`: bytes queued in UDP sockets, summed from `/proc/net/udp` and `/proc/net/udp6`.
//!
//! A kernel without IPv6 (or IPv4) has no such file: that address family is left out.

use eos_exposition::{Encoder, Kind};

use crate::collector::{Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "udp_queues",
    default_enabled: true,
    build: |_cfg, _paths| Ok(Box::new(UdpQueuesCollector)),
};

struct UdpQueuesCollector;

/// Summed queue lengths of one socket table, in bytes.
#[derive(Debug, Default, PartialEq)]
struct Queues {
    tx: u64,
    rx: u64,
}

impl Collector for UdpQueuesCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let mut found: Vec<(&str, Queues)> = Vec::with_capacity(2);
        for (ip, file) in [("v4", "net/udp"), ("v6", "net/udp6")] {
            let path = ctx.proc_path(file);
            if let Some(text) = ctx.read_optional(&path)? {
                let q = parse_udp_queues(text).map_err(|e| format!("{}: {e}", path.display()))?;
                found.push((ip, q));
            }
        }
        let mut fam = enc.family(
            "node_udp_queues",
            "Number of allocated memory in the kernel for UDP datagrams in bytes.",
            Kind::Gauge,
        );
        for (ip, q) in &found {
            fam.sample(&[("ip", ip), ("queue", "rx")], q.rx as f64);
            fam.sample(&[("ip", ip), ("queue", "tx")], q.tx as f64);
        }
        Ok(())
    }
}

/// Sums the `tx_queue:rx_queue` column (hex) of a `/proc/net/udp{,6}` table.
fn parse_udp_queues(text: &str) -> Result<Queues, String> {
    let mut q = Queues::default();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("line {}", i + 1);
        let fields: Vec<&str> = line.split_ascii_whitespace().take(10).collect();
        if fields.len() < 10 {
            return Err(format!("{}: fewer than 10 columns in {line:?}", at()));
        }
        let (tx, rx) = fields
            .get(4)
            .and_then(|f| f.split_once(':'))
            .ok_or_else(|| format!("{}: no tx_queue:rx_queue column in {line:?}", at()))?;
        let hex = |s: &str| {
            u64::from_str_radix(s, 16).map_err(|_| format!("{}: invalid queue length {s:?}", at()))
        };
        q.tx = q.tx.saturating_add(hex(tx)?);
        q.rx = q.rx.saturating_add(hex(rx)?);
    }
    Ok(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n";

    #[test]
    fn sums_queues() {
        let text = format!(
            "{HEADER}   0: 0A000005:0016 00000000:0000 07 00000000:00000001 00:00000000 00000000     0        0 2740 2 0000000000000000 0\n\
             \x20  1: 00000000:0016 00000000:0000 07 0000000A:00000100 00:00000000 00000000     0        0 2740 2 0000000000000000 0\n"
        );
        assert_eq!(parse_udp_queues(&text).unwrap(), Queues { tx: 10, rx: 257 });
    }

    #[test]
    fn header_only() {
        assert_eq!(parse_udp_queues(HEADER).unwrap(), Queues::default());
        assert_eq!(parse_udp_queues("").unwrap(), Queues::default());
    }

    #[test]
    fn malformed_lines() {
        let e = parse_udp_queues(&format!("{HEADER}   0: 0A000005:0016 00000000:0000 07\n"))
            .unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let bad = format!("{HEADER}   0: a b 07 zz:01 00:00000000 00000000 0 0 2740\n");
        assert!(parse_udp_queues(&bad).is_err());
        let nocolon = format!("{HEADER}   0: a b 07 0001 00:00000000 00000000 0 0 2740\n");
        assert!(parse_udp_queues(&nocolon).is_err());
    }
}
