//! `nfsd`: NFS server statistics from `<procfs>/net/rpc/nfsd` (reply cache, file handles, I/O,
//! threads, network, RPC errors and per-procedure counts for NFSv2, v3 and v4), as
//! `node_nfsd_*`. Without the NFS server module nothing is written.

use eos_exposition::{Encoder, Kind};

use super::nfs::{fill_counted, fill_exact};
use crate::collector::{in_procfs, parse_u64, At, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "nfsd",
    default_enabled: true,
    build: |_settings: &(), _paths| Ok(Box::new(NfsdCollector)),
};

struct NfsdCollector;

/// NFSv2 and NFSv3 procedures after `Null`, in kernel order: the client's tables without their
/// first entry (the server's counts start with `Null` too, but node_exporter leaves it out).
fn v2() -> &'static [&'static str] {
    super::nfs::V2.get(1..).unwrap_or(&[])
}

/// See [`v2`].
fn v3() -> &'static [&'static str] {
    super::nfs::V3.get(1..).unwrap_or(&[])
}

/// The NFSv4 operations node_exporter exports, with their operation number (the index in the
/// `proc4ops` line): it leaves out the unused ops 0-2, PUTPUBFH, PUTROOTFH, SETCLIENTID and
/// SETCLIENTID_CONFIRM, and everything past RELEASE_LOCKOWNER (the NFSv4.1+ operations).
const V4_OPS: [(&str, usize); 33] = [
    ("Access", 3),
    ("Close", 4),
    ("Commit", 5),
    ("Create", 6),
    ("DelegPurge", 7),
    ("DelegReturn", 8),
    ("GetAttr", 9),
    ("GetFH", 10),
    ("Link", 11),
    ("Lock", 12),
    ("Lockt", 13),
    ("Locku", 14),
    ("Lookup", 15),
    ("LookupRoot", 16),
    ("Nverify", 17),
    ("Open", 18),
    ("OpenAttr", 19),
    ("OpenConfirm", 20),
    ("OpenDgrd", 21),
    ("PutFH", 22),
    ("Read", 25),
    ("ReadDir", 26),
    ("ReadLink", 27),
    ("Remove", 28),
    ("Rename", 29),
    ("Renew", 30),
    ("RestoreFH", 31),
    ("SaveFH", 32),
    ("SecInfo", 33),
    ("SetAttr", 34),
    ("Verify", 37),
    ("Write", 38),
    ("RelLockOwner", 39),
];

/// How many `proc4ops` values are kept: operations 0 to 39 (RELEASE_LOCKOWNER). Kernels
/// before 2.6 have 39 (no RELEASE_LOCKOWNER, which stays zero); newer ones have more.
const V4_KEPT: usize = 40;

/// `/proc/net/rpc/nfsd`. Lines the kernel did not write stay zero, as in node_exporter (e.g.
/// `ra`, which newer kernels dropped, or `wdeleg_getattr`, which older ones lack).
#[derive(Debug, PartialEq)]
struct ServerStats {
    /// `rc`: hits, misses, nocache.
    reply_cache: [u64; 3],
    /// `fh`: stale, then four counters the kernel no longer fills.
    file_handles: [u64; 5],
    /// `io`: bytes read, bytes written.
    io: [u64; 2],
    /// `th`: threads, then a "pool full" count (the rest of the line is ignored).
    threads: [u64; 2],
    /// `ra`: cache size, a 10-bucket histogram, not found.
    read_ahead: [u64; 12],
    /// `net`: all, udp, tcp packets, tcp connections.
    net: [u64; 4],
    /// `rpc`: calls, bad calls, bad format, bad auth, bad client.
    rpc: [u64; 5],
    /// `proc2`: `Null` then [`v2`].
    v2: [u64; 18],
    /// `proc3`: `Null` then [`v3`].
    v3: [u64; 22],
    /// `proc4ops`: the first [`V4_KEPT`] operation counts.
    v4_ops: [u64; V4_KEPT],
    /// `wdeleg_getattr`: GETATTRs that conflicted with a write delegation.
    wdeleg_getattr: u64,
}

impl Default for ServerStats {
    fn default() -> Self {
        ServerStats {
            reply_cache: [0; 3],
            file_handles: [0; 5],
            io: [0; 2],
            threads: [0; 2],
            read_ahead: [0; 12],
            net: [0; 4],
            rpc: [0; 5],
            v2: [0; 18],
            v3: [0; 22],
            v4_ops: [0; V4_KEPT],
            wdeleg_getattr: 0,
        }
    }
}

impl Collector for NfsdCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let paths = ctx.paths;
        let path = ctx.proc_path("net/rpc/nfsd");
        let Some(text) = ctx.read_optional(&path)? else {
            return Ok(());
        };
        let s = parse_server(text).map_err(|e| in_procfs(paths, e))?;
        write_stats(enc, &s);
        Ok(())
    }
}

/// Writes node_exporter's `node_nfsd_*` families, in its order.
fn write_stats(enc: &mut Encoder<'_>, s: &ServerStats) {
    let (c, g) = (Kind::Counter, Kind::Gauge);
    let [rc_hits, rc_misses, rc_nocache] = s.reply_cache;
    enc.single(
        "node_nfsd_reply_cache_hits_total",
        "Total number of NFSd Reply Cache hits (client lost server response).",
        c,
        &[],
        rc_hits as f64,
    );
    enc.single(
        "node_nfsd_reply_cache_misses_total",
        "Total number of NFSd Reply Cache an operation that requires caching (idempotent).",
        c,
        &[],
        rc_misses as f64,
    );
    enc.single(
        "node_nfsd_reply_cache_nocache_total",
        "Total number of NFSd Reply Cache non-idempotent operations (rename/delete/…).",
        c,
        &[],
        rc_nocache as f64,
    );
    let [stale, ..] = s.file_handles;
    enc.single(
        "node_nfsd_file_handles_stale_total",
        "Total number of NFSd stale file handles",
        c,
        &[],
        stale as f64,
    );
    let [read, written] = s.io;
    enc.single(
        "node_nfsd_disk_bytes_read_total",
        "Total NFSd bytes read.",
        c,
        &[],
        read as f64,
    );
    enc.single(
        "node_nfsd_disk_bytes_written_total",
        "Total NFSd bytes written.",
        c,
        &[],
        written as f64,
    );
    let [threads, _] = s.threads;
    enc.single(
        "node_nfsd_server_threads",
        "Total number of NFSd kernel threads that are running.",
        g,
        &[],
        threads as f64,
    );
    let [ra_size, .., ra_not_found] = s.read_ahead;
    enc.single(
        "node_nfsd_read_ahead_cache_size_blocks",
        "How large the read ahead cache is in blocks.",
        g,
        &[],
        ra_size as f64,
    );
    enc.single(
        "node_nfsd_read_ahead_cache_not_found_total",
        "Total number of NFSd read ahead cache not found.",
        c,
        &[],
        ra_not_found as f64,
    );
    let [_, udp, tcp, tcp_conn] = s.net;
    let mut f = enc.family(
        "node_nfsd_packets_total",
        "Total NFSd network packets (sent+received) by protocol type.",
        c,
    );
    f.sample(&[("proto", "udp")], udp as f64);
    f.sample(&[("proto", "tcp")], tcp as f64);
    enc.single(
        "node_nfsd_connections_total",
        "Total number of NFSd TCP connections.",
        c,
        &[],
        tcp_conn as f64,
    );
    let [calls, _, bad_fmt, bad_auth, bad_client] = s.rpc;
    let mut f = enc.family(
        "node_nfsd_rpc_errors_total",
        "Total number of NFSd RPC errors by error type.",
        c,
    );
    f.sample(&[("error", "fmt")], bad_fmt as f64);
    f.sample(&[("error", "auth")], bad_auth as f64);
    f.sample(&[("error", "cInt")], bad_client as f64);
    enc.single(
        "node_nfsd_server_rpcs_total",
        "Total number of NFSd RPCs.",
        c,
        &[],
        calls as f64,
    );
    let mut f = enc.family(
        "node_nfsd_requests_total",
        "Total number NFSd Requests by method and protocol.",
        c,
    );
    // `Null` (index 0) is not exported.
    for (method, v) in v2().iter().zip(s.v2.iter().skip(1)) {
        f.sample(&[("method", method), ("proto", "2")], *v as f64);
    }
    for (method, v) in v3().iter().zip(s.v3.iter().skip(1)) {
        f.sample(&[("method", method), ("proto", "3")], *v as f64);
    }
    for (method, op) in V4_OPS {
        let v = s.v4_ops.get(op).copied().unwrap_or(0);
        f.sample(&[("method", method), ("proto", "4")], v as f64);
    }
    f.sample(
        &[("method", "WdelegGetattr"), ("proto", "4")],
        s.wdeleg_getattr as f64,
    );
}

/// Parses `/proc/net/rpc/nfsd` as prometheus/procfs does: every line is `<key> <numbers...>`,
/// an unknown key or a count that does not match is an error.
fn parse_server(text: &str) -> Result<ServerStats, String> {
    let mut s = ServerStats::default();
    let mut values: Vec<u64> = Vec::with_capacity(96);
    for (i, line) in text.lines().enumerate() {
        let at = At("/proc/net/rpc/nfsd", i + 1);
        let mut parts = line.split_ascii_whitespace();
        let Some(key) = parts.next() else { continue };
        values.clear();
        // `th` goes on with ten obsolete floating point fields: only two numbers count.
        let take = if key == "th" { 2 } else { usize::MAX };
        for p in parts.take(take) {
            values.push(parse_u64(p, &at)?);
        }
        match key {
            "rc" => fill_exact(&mut s.reply_cache, &values, at)?,
            "fh" => fill_exact(&mut s.file_handles, &values, at)?,
            "io" => fill_exact(&mut s.io, &values, at)?,
            "th" => fill_exact(&mut s.threads, &values, at)?,
            "ra" => fill_exact(&mut s.read_ahead, &values, at)?,
            "net" => fill_exact(&mut s.net, &values, at)?,
            "rpc" => fill_exact(&mut s.rpc, &values, at)?,
            "proc2" => fill_counted(&mut s.v2, &values, 18, at)?,
            "proc3" => fill_counted(&mut s.v3, &values, 22, at)?,
            // Null and Compound: counted, but node_exporter exports neither.
            "proc4" => fill_counted(&mut [0; 2], &values, 2, at)?,
            "proc4ops" => fill_counted(&mut s.v4_ops, &values, V4_KEPT - 1, at)?,
            "wdeleg_getattr" => match values.first() {
                Some(v) => s.wdeleg_getattr = *v,
                None => return Err(format!("{at}: wdeleg_getattr has no value")),
            },
            other => return Err(format!("{at}: unknown line {other:?}")),
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 6.x kernel's file: 72 NFSv4 operations and `wdeleg_getattr`.
    const CURRENT: &str = "rc 0 6 18622
fh 3 0 0 0 0
io 157286400 4096
th 8 0 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000
ra 32 0 0 0 0 0 0 0 0 0 0 5
net 18628 2 18626 6
rpc 18628 4 1 2 1
proc2 18 2 69 0 0 4410 0 0 0 0 0 0 0 0 0 0 0 99 2
proc3 22 2 112 0 2719 111 0 0 0 0 0 0 0 0 0 0 0 27 216 0 2 1 7
proc4 2 2 10853
proc4ops 72 0 0 0 1098 2 0 0 0 0 8179 5896 0 0 0 0 5900 0 0 2 0 2 0 9609 0 2 150 1272 0 0 0 1236 0 0 0 0 3 3 0 11 13 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0
wdeleg_getattr 16
";

    #[test]
    fn parses_a_current_kernel() {
        let s = parse_server(CURRENT).unwrap();
        assert_eq!(s.reply_cache, [0, 6, 18622]);
        assert_eq!(s.file_handles[0], 3);
        assert_eq!(s.io, [157286400, 4096]);
        assert_eq!(s.threads, [8, 0]);
        assert_eq!(s.read_ahead[0], 32);
        assert_eq!(s.read_ahead[11], 5);
        assert_eq!(s.net, [18628, 2, 18626, 6]);
        assert_eq!(s.rpc, [18628, 4, 1, 2, 1]);
        assert_eq!(s.v2[1], 69); // GetAttr
        assert_eq!(s.v3[21], 7); // Commit
        assert_eq!(s.v4_ops[3], 1098); // Access
        assert_eq!(s.v4_ops[38], 11); // Write
        assert_eq!(s.v4_ops[39], 13); // RelLockOwner
        assert_eq!(s.wdeleg_getattr, 16);
    }

    #[test]
    fn old_kernels_leave_missing_lines_and_ops_zero() {
        // 2.6-era: 39 NFSv4 operations (no RELEASE_LOCKOWNER), no `wdeleg_getattr`, no `ra`.
        let text = "rc 1 2 3\nproc4ops 39 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 39\n";
        let s = parse_server(text).unwrap();
        assert_eq!(s.reply_cache, [1, 2, 3]);
        assert_eq!(s.v4_ops[38], 39);
        assert_eq!(s.v4_ops[39], 0);
        assert_eq!(s.read_ahead, [0; 12]);
        assert_eq!(s.wdeleg_getattr, 0);
        assert_eq!(parse_server("").unwrap(), ServerStats::default());
        // Blank lines are skipped.
        assert_eq!(parse_server("\nio 1 2\n\n").unwrap().io, [1, 2]);
    }

    #[test]
    fn malformed() {
        let err = |t: &str| parse_server(t).unwrap_err();
        assert!(err("rc 1 2\n").contains("expected 3 values, got 2"));
        assert!(err("io 1 x\n").contains("invalid number \"x\""));
        assert!(err("rc 1 2 3\nnet 1 2 3\n").contains("line 2"));
        // `th` needs its two numbers; the floats after them are not parsed.
        assert!(err("th 8\n").contains("expected 2 values, got 1"));
        assert_eq!(parse_server("th 8 0 0.5 x\n").unwrap().threads, [8, 0]);
        assert!(err("proc3 3 1 2\n").contains("does not match"));
        assert!(err("proc2 2 1 2\n").contains("at least 18")); // too few procedures
        assert!(err("proc4 1 1\n").contains("at least 2"));
        assert!(err("proc4ops\n").contains("no procedure count"));
        assert!(err("proc4ops 38 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n")
            .contains("at least 39"));
        assert!(err("wdeleg_getattr\n").contains("no value"));
        assert!(err("bogus 1\n").contains("unknown line \"bogus\""));
        // Truncated in the middle of a line.
        assert!(err("rc 0 6 18622\nfh 3 0").contains("line 2"));
    }

    #[test]
    fn writes_node_exporter_families() {
        let s = parse_server(CURRENT).unwrap();
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, eos_exposition::Format::Text);
        write_stats(&mut enc, &s);
        let text = String::from_utf8(out).unwrap();
        for line in [
            "# TYPE node_nfsd_reply_cache_nocache_total counter",
            "node_nfsd_reply_cache_nocache_total 18622",
            "node_nfsd_file_handles_stale_total 3",
            "node_nfsd_disk_bytes_written_total 4096",
            "# TYPE node_nfsd_server_threads gauge",
            "node_nfsd_server_threads 8",
            "node_nfsd_read_ahead_cache_size_blocks 32",
            "node_nfsd_read_ahead_cache_not_found_total 5",
            "node_nfsd_packets_total{proto=\"udp\"} 2",
            "node_nfsd_packets_total{proto=\"tcp\"} 18626",
            "node_nfsd_connections_total 6",
            "node_nfsd_rpc_errors_total{error=\"fmt\"} 1",
            "node_nfsd_rpc_errors_total{error=\"auth\"} 2",
            "node_nfsd_rpc_errors_total{error=\"cInt\"} 1",
            "node_nfsd_server_rpcs_total 18628",
            "node_nfsd_requests_total{method=\"GetAttr\",proto=\"2\"} 69",
            "node_nfsd_requests_total{method=\"FsStat\",proto=\"2\"} 2",
            "node_nfsd_requests_total{method=\"Commit\",proto=\"3\"} 7",
            "node_nfsd_requests_total{method=\"Access\",proto=\"4\"} 1098",
            "node_nfsd_requests_total{method=\"PutFH\",proto=\"4\"} 9609",
            "node_nfsd_requests_total{method=\"Read\",proto=\"4\"} 150",
            "node_nfsd_requests_total{method=\"Renew\",proto=\"4\"} 1236",
            "node_nfsd_requests_total{method=\"RelLockOwner\",proto=\"4\"} 13",
            "node_nfsd_requests_total{method=\"WdelegGetattr\",proto=\"4\"} 16",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in:\n{text}"
            );
        }
        // No Null procedures; 17 + 21 + 33 + 1 request series.
        assert!(!text.contains("method=\"Null\""));
        let requests = text
            .lines()
            .filter(|l| l.starts_with("node_nfsd_requests_total{"))
            .count();
        assert_eq!(requests, 17 + 21 + 33 + 1);
    }

    #[test]
    fn missing_file_writes_nothing() {
        let tree = crate::collectors::test_tree::TestTree::new("nfsd-missing");
        let paths = eos_module::HostPaths {
            procfs: tree.path().to_path_buf(),
            ..eos_module::HostPaths::default()
        };
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, eos_exposition::Format::Text);
        let mut buf = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        NfsdCollector
            .update(&mut enc, &mut Ctx::new(&paths, deadline, &mut buf))
            .unwrap();
        assert!(out.is_empty());

        tree.write("net/rpc/nfsd", "rc 1 2\n");
        let mut enc = Encoder::new(&mut out, eos_exposition::Format::Text);
        let e = NfsdCollector
            .update(&mut enc, &mut Ctx::new(&paths, deadline, &mut buf))
            .unwrap_err();
        // The error names the real file, not /proc.
        assert!(
            e.contains(&format!("{}/net/rpc/nfsd line 1", tree.path().display())),
            "{e}"
        );
    }
}
