//! `nfs`: NFS client statistics from `/proc/net/rpc/nfs` (network, RPC and per-procedure
//! counts for NFSv2, v3 and v4), as `node_nfs_*`. Without the NFS client module nothing is
//! written.

use eos_exposition::{Encoder, Kind};

use crate::collector::in_procfs;
use crate::collector::{parse_u64, At, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "nfs",
    default_enabled: true,
    build: |_, _| Ok(Box::new(NfsCollector)),
};

struct NfsCollector;

/// Procedure names in kernel order, as node_exporter labels them (`method`).
pub(super) const V2: [&str; 18] = [
    "Null", "GetAttr", "SetAttr", "Root", "Lookup", "ReadLink", "Read", "WrCache", "Write",
    "Create", "Remove", "Rename", "Link", "SymLink", "MkDir", "RmDir", "ReadDir", "FsStat",
];
pub(super) const V3: [&str; 22] = [
    "Null",
    "GetAttr",
    "SetAttr",
    "Lookup",
    "Access",
    "ReadLink",
    "Read",
    "Write",
    "Create",
    "MkDir",
    "SymLink",
    "MkNod",
    "Remove",
    "RmDir",
    "Rename",
    "Link",
    "ReadDir",
    "ReadDirPlus",
    "FsStat",
    "FsInfo",
    "PathConf",
    "Commit",
];
const V4: [&str; 59] = [
    "Null",
    "Read",
    "Write",
    "Commit",
    "Open",
    "OpenConfirm",
    "OpenNoattr",
    "OpenDowngrade",
    "Close",
    "Setattr",
    "FsInfo",
    "Renew",
    "SetClientID",
    "SetClientIDConfirm",
    "Lock",
    "Lockt",
    "Locku",
    "Access",
    "Getattr",
    "Lookup",
    "LookupRoot",
    "Remove",
    "Rename",
    "Link",
    "Symlink",
    "Create",
    "Pathconf",
    "StatFs",
    "ReadLink",
    "ReadDir",
    "ServerCaps",
    "DelegReturn",
    "GetACL",
    "SetACL",
    "FsLocations",
    "ReleaseLockowner",
    "Secinfo",
    "FsidPresent",
    "ExchangeID",
    "CreateSession",
    "DestroySession",
    "Sequence",
    "GetLeaseTime",
    "ReclaimComplete",
    "GetDeviceInfo",
    "LayoutGet",
    "LayoutCommit",
    "LayoutReturn",
    "SecinfoNoName",
    "TestStateID",
    "FreeStateID",
    "GetDeviceList",
    "BindConnToSession",
    "DestroyClientID",
    "Seek",
    "Allocate",
    "DeAllocate",
    "LayoutStats",
    "Clone",
];

/// `/proc/net/rpc/nfs`; lines the kernel did not write stay zero, as in node_exporter.
#[derive(Debug, PartialEq)]
struct ClientStats {
    /// netcnt, udpcnt, tcpcnt, tcpconn.
    net: [u64; 4],
    /// calls, retransmissions, auth refreshes.
    rpc: [u64; 3],
    v2: [u64; 18],
    v3: [u64; 22],
    v4: [u64; 59],
}

impl Collector for NfsCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let paths = ctx.paths;
        let path = ctx.proc_path("net/rpc/nfs");
        let Some(text) = ctx.read_optional(&path)? else {
            return Ok(());
        };
        let s = parse_client(text).map_err(|e| in_procfs(paths, e))?;
        let c = Kind::Counter;
        let mut f = enc.family(
            "node_nfs_packets_total",
            "Total NFSd network packets (sent+received) by protocol type.",
            c,
        );
        f.sample(&[("protocol", "udp")], s.net[1] as f64);
        f.sample(&[("protocol", "tcp")], s.net[2] as f64);
        enc.single(
            "node_nfs_connections_total",
            "Total number of NFSd TCP connections.",
            c,
            &[],
            s.net[3] as f64,
        );
        enc.single(
            "node_nfs_rpcs_total",
            "Total number of RPCs performed.",
            c,
            &[],
            s.rpc[0] as f64,
        );
        enc.single(
            "node_nfs_rpc_retransmissions_total",
            "Number of RPC transmissions performed.",
            c,
            &[],
            s.rpc[1] as f64,
        );
        enc.single(
            "node_nfs_rpc_authentication_refreshes_total",
            "Number of RPC authentication refreshes performed.",
            c,
            &[],
            s.rpc[2] as f64,
        );
        let mut f = enc.family(
            "node_nfs_requests_total",
            "Number of NFS procedures invoked.",
            c,
        );
        let versions: [(&str, &[&str], &[u64]); 3] =
            [("2", &V2, &s.v2), ("3", &V3, &s.v3), ("4", &V4, &s.v4)];
        for (proto, names, values) in versions {
            for (method, v) in names.iter().zip(values) {
                f.sample(&[("proto", proto), ("method", method)], *v as f64);
            }
        }
        Ok(())
    }
}

impl Default for ClientStats {
    fn default() -> Self {
        ClientStats {
            net: [0; 4],
            rpc: [0; 3],
            v2: [0; 18],
            v3: [0; 22],
            v4: [0; 59],
        }
    }
}

fn parse_client(text: &str) -> Result<ClientStats, String> {
    let mut s = ClientStats::default();
    for (i, line) in text.lines().enumerate() {
        let at = At("/proc/net/rpc/nfs", i + 1);
        let mut parts = line.split_ascii_whitespace();
        let Some(key) = parts.next() else { continue };
        let mut values = Vec::with_capacity(64);
        for p in parts {
            values.push(parse_u64(p, &at)?);
        }
        match key {
            "net" => fill_exact(&mut s.net, &values, at)?,
            "rpc" => fill_exact(&mut s.rpc, &values, at)?,
            "proc2" => fill_counted(&mut s.v2, &values, V2.len(), at)?,
            "proc3" => fill_counted(&mut s.v3, &values, V3.len(), at)?,
            // Older kernels count fewer v4 procedures; the rest stay zero.
            "proc4" => fill_counted(&mut s.v4, &values, 0, at)?,
            other => return Err(format!("{at}: unknown line {other:?}")),
        }
    }
    Ok(s)
}

/// A line of `/proc/net/rpc/nfs` or `nfsd` with exactly as many values as `dst`.
pub(super) fn fill_exact(dst: &mut [u64], values: &[u64], at: At<'_>) -> Result<(), String> {
    if values.len() != dst.len() {
        return Err(format!(
            "{at}: expected {} values, got {}",
            dst.len(),
            values.len()
        ));
    }
    dst.copy_from_slice(values);
    Ok(())
}

/// A `procN COUNT v1 v2 ...` line: COUNT must match the values that follow and be at least
/// `min`; values beyond what `dst` holds are ignored, missing ones stay zero.
pub(super) fn fill_counted(
    dst: &mut [u64],
    values: &[u64],
    min: usize,
    at: At<'_>,
) -> Result<(), String> {
    let Some((&count, rest)) = values.split_first() else {
        return Err(format!("{at}: no procedure count"));
    };
    if count != rest.len() as u64 {
        return Err(format!(
            "{at}: procedure count {count} does not match {} values",
            rest.len()
        ));
    }
    if rest.len() < min {
        return Err(format!(
            "{at}: expected at least {min} procedures, got {}",
            rest.len()
        ));
    }
    for (d, v) in dst.iter_mut().zip(rest) {
        *d = *v;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let text = "net 70 70 69 45\nrpc 1218785755 374636 1218815394\n\
proc2 18 16 57 74 52 71 73 45 86 0 52 83 61 17 53 50 23 70 82\n\
proc3 22 0 1061909262 48906 4077635 117661341 5 29391916 2570425 2993289 590 0 0 7815 15 1130 0 3983 92385 13332 2 1 23729\n\
proc4 48 98 51 54 83 85 23 24 1 28 73 68 83 12 84 39 68 59 58 88 29 74 69 96 21 84 15 53 86 54 66 56 97 36 49 32 85 81 11 58 32 67 13 28 35 90 1 26 1\n";
        let s = parse_client(text).unwrap();
        assert_eq!(s.net, [70, 70, 69, 45]);
        assert_eq!(s.rpc[0], 1218785755);
        assert_eq!(s.v2[17], 82);
        assert_eq!(s.v3[1], 1061909262);
        assert_eq!(s.v3[21], 23729);
        assert_eq!(s.v4[0], 98);
        assert_eq!(s.v4[47], 1);
        assert_eq!(s.v4[58], 0);
    }

    #[test]
    fn malformed() {
        assert!(parse_client("net 1 2 3\n")
            .unwrap_err()
            .contains("expected 4"));
        assert!(parse_client("rpc 1 x 3\n").is_err());
        assert!(parse_client("proc3 3 1 2\n")
            .unwrap_err()
            .contains("line 1"));
        assert!(parse_client("proc2 2 1 2\n").is_err()); // fewer than 18 procedures
        assert!(parse_client("proc4\n").is_err());
        assert!(parse_client("bogus 1\n").is_err());
        assert_eq!(parse_client("").unwrap(), ClientStats::default());
    }
}
