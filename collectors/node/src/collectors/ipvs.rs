//! `ipvs`: IP Virtual Server totals (`/proc/net/ip_vs_stats`) and per-backend connections
//! and weights (`/proc/net/ip_vs`), as kube-proxy in IPVS mode programs them. Without the
//! `ip_vs` module nothing is written.

use eos_exposition::{Encoder, Kind};
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::collector::in_procfs;
use crate::collector::{At, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "ipvs",
    default_enabled: true,
    build: |_, _| Ok(Box::new(IpvsCollector)),
};

struct IpvsCollector;

const TOTALS: [(&str, &str); 5] = [
    (
        "node_ipvs_connections_total",
        "The total number of connections made.",
    ),
    (
        "node_ipvs_incoming_packets_total",
        "The total number of incoming packets.",
    ),
    (
        "node_ipvs_outgoing_packets_total",
        "The total number of outgoing packets.",
    ),
    (
        "node_ipvs_incoming_bytes_total",
        "The total amount of incoming data.",
    ),
    (
        "node_ipvs_outgoing_bytes_total",
        "The total amount of outgoing data.",
    ),
];

impl Collector for IpvsCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let paths = ctx.paths;
        let stats_path = ctx.proc_path("net/ip_vs_stats");
        let Some(text) = ctx.read_optional(&stats_path)? else {
            return Ok(());
        };
        let totals = parse_stats(text).map_err(|e| in_procfs(paths, e))?;
        for ((name, help), v) in TOTALS.iter().zip(totals) {
            enc.single(name, help, Kind::Counter, &[], v as f64);
        }
        let table_path = ctx.proc_path("net/ip_vs");
        let text = ctx.read(&table_path)?;
        let backends = parse_backends(text).map_err(|e| in_procfs(paths, e))?;
        let families = [
            (
                "node_ipvs_backend_connections_active",
                "The current active connections by local and remote address.",
            ),
            (
                "node_ipvs_backend_connections_inactive",
                "The current inactive connections by local and remote address.",
            ),
            (
                "node_ipvs_backend_weight",
                "The current backend weight by local and remote address.",
            ),
        ];
        for (k, (name, help)) in families.iter().enumerate() {
            let mut f = enc.family(name, help, Kind::Gauge);
            for b in &backends {
                let v = match k {
                    0 => b.active,
                    1 => b.inactive,
                    _ => b.weight,
                };
                f.sample(
                    &[
                        ("local_address", &b.local_address),
                        ("local_port", &b.local_port),
                        ("remote_address", &b.remote_address),
                        ("remote_port", &b.remote_port),
                        ("proto", b.proto),
                        ("local_mark", b.local_mark),
                    ],
                    v,
                );
            }
        }
        Ok(())
    }
}

/// The five hex totals on the third line of `/proc/net/ip_vs_stats`.
fn parse_stats(text: &str) -> Result<[u64; 5], String> {
    let at = At("/proc/net/ip_vs_stats", 3);
    let line = text
        .lines()
        .nth(2)
        .ok_or_else(|| format!("{at}: missing"))?;
    let mut out = [0u64; 5];
    let mut fields = line.split_ascii_whitespace();
    for slot in &mut out {
        let f = fields
            .next()
            .ok_or_else(|| format!("{at}: expected 5 fields"))?;
        *slot = u64::from_str_radix(f, 16).map_err(|_| format!("{at}: invalid hex {f:?}"))?;
    }
    Ok(out)
}

/// One real server of a virtual service.
#[derive(Debug, PartialEq)]
struct Backend<'a> {
    local_address: String,
    local_port: String,
    local_mark: &'a str,
    proto: &'a str,
    remote_address: String,
    remote_port: String,
    weight: f64,
    active: f64,
    inactive: f64,
}

/// Parses `/proc/net/ip_vs`: three header lines, then each virtual service
/// (`TCP  0A000001:0050 rr`, or `FWM  00000001 wlc` for a firewall mark) followed by its real
/// servers (`  -> 0A000002:1F90      Masq    1      3          7`).
fn parse_backends(text: &str) -> Result<Vec<Backend<'_>>, String> {
    let mut out = Vec::new();
    // (proto, local address, local port, local mark) of the current service.
    let mut service: Option<(&str, String, String, &str)> = None;
    for (i, line) in text.lines().enumerate().skip(3) {
        let at = At("/proc/net/ip_vs", i + 1);
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        match fields.as_slice() {
            [] => {}
            ["->", remote, _forward, weight, active, inactive, ..] => {
                let Some((proto, local_address, local_port, local_mark)) = &service else {
                    return Err(format!("{at}: real server before any service"));
                };
                let (remote_address, remote_port) = parse_addr_port(remote, at)?;
                let num = |s: &str| {
                    s.parse::<f64>()
                        .map_err(|_| format!("{at}: invalid number {s:?}"))
                };
                out.push(Backend {
                    local_address: local_address.clone(),
                    local_port: local_port.clone(),
                    local_mark,
                    proto,
                    remote_address,
                    remote_port,
                    weight: num(weight)?,
                    active: num(active)?,
                    inactive: num(inactive)?,
                });
            }
            ["->", ..] => return Err(format!("{at}: truncated real server line")),
            ["FWM", mark, ..] => {
                // node_exporter prints Go's nil IP for a firewall-mark service.
                service = Some(("FWM", "<nil>".to_string(), "0".to_string(), mark));
            }
            [proto @ ("TCP" | "UDP" | "SCTP"), addr, ..] => {
                let (a, p) = parse_addr_port(addr, at)?;
                service = Some((proto, a, p, ""));
            }
            _ => return Err(format!("{at}: unexpected line")),
        }
    }
    Ok(out)
}

/// `C0A80016:0CEA` -> ("192.168.0.22", "3306"); IPv6 is written `[2620:0:...:1]:0CEA`.
fn parse_addr_port(s: &str, at: At<'_>) -> Result<(String, String), String> {
    let bad = || format!("{at}: invalid address {s:?}");
    let (addr, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let port = u16::from_str_radix(port, 16).map_err(|_| bad())?;
    let addr = if let Some(v6) = addr.strip_prefix('[').and_then(|a| a.strip_suffix(']')) {
        v6.parse::<Ipv6Addr>().map_err(|_| bad())?.to_string()
    } else {
        Ipv4Addr::from(u32::from_str_radix(addr, 16).map_err(|_| bad())?).to_string()
    };
    Ok((addr, port.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  C0A80016:0CEA wlc
  -> C0A85216:0CEA      Tunnel  100    248        2
  -> C0A85318:0CEA      Tunnel  100    248        2
TCP  [2620:0000:0000:0000:0000:0000:0000:0001]:0050 sh
  -> [2620:0000:0000:0000:0000:0000:0000:0002]:0050      Route   1      0          0
FWM  10001000 wlc
  -> C0A8321A:0CEA      Route   0      0          1
";

    #[test]
    fn backends() {
        let b = parse_backends(TABLE).unwrap();
        assert_eq!(b.len(), 4);
        assert_eq!(b[0].local_address, "192.168.0.22");
        assert_eq!(b[0].local_port, "3306");
        assert_eq!(b[0].remote_address, "192.168.82.22");
        assert_eq!(b[0].proto, "TCP");
        assert_eq!(
            (b[0].weight, b[0].active, b[0].inactive),
            (100.0, 248.0, 2.0)
        );
        assert_eq!(b[2].local_address, "2620::1");
        assert_eq!(b[2].remote_address, "2620::2");
        assert_eq!(b[3].local_mark, "10001000");
        assert_eq!(b[3].local_address, "<nil>");
        assert_eq!(b[3].proto, "FWM");
    }

    #[test]
    fn malformed_tables() {
        let head = "h1\nh2\nh3\n";
        assert!(parse_backends(&format!("{head}  -> C0A85216:0CEA Tunnel 1 2 3\n")).is_err());
        let e = parse_backends(&format!(
            "{head}TCP  C0A80016:0CEA wlc\n  -> C0A85216:0CEA Tunnel 1\n"
        ))
        .unwrap_err();
        assert!(e.contains("line 5"), "{e}");
        assert!(parse_backends(&format!("{head}TCP  C0A80016 wlc\n")).is_err());
        assert!(parse_backends(&format!("{head}TCP  ZZ:0CEA wlc\n")).is_err());
        assert!(parse_backends(&format!("{head}BOGUS\n")).is_err());
        assert!(parse_backends(head).unwrap().is_empty());
    }

    #[test]
    fn stats() {
        let text = "   Total Incoming Outgoing         Incoming         Outgoing
   Conns  Packets  Packets            Bytes            Bytes
 16AA370 E33656E5        0     51D8C8883AB3                0

 Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s
       4    1FB3C        0          1282A8F                0
";
        assert_eq!(
            parse_stats(text).unwrap(),
            [0x16AA370, 0xE33656E5, 0, 0x51D8C8883AB3, 0]
        );
        assert!(parse_stats("a\nb\n").is_err());
        assert!(parse_stats("a\nb\n1 2 3\n").is_err());
        assert!(parse_stats("a\nb\n1 2 3 4 G\n").is_err());
    }
}
