//! `fibrechannel`: Fibre Channel host bus adapters from `/sys/class/fc_host/<host>/`, as
//! node_exporter 1.12 reads them through procfs: `node_fibrechannel_info` labelled with the
//! host's identity attributes, and one counter family per file in `statistics/`.
//!
//! - An identity attribute the driver does not expose labels as empty. `port_id`,
//!   `port_name` and `fabric_name` lose their first two characters (the `0x`), as in
//!   procfs, which cuts them unconditionally.
//! - A counter the HBA firmware does not implement reads as all ones
//!   (`0xffffffffffffffff`) and is left out, as is one whose file is absent or unreadable.
//! - No `/sys/class/fc_host` (no FC transport loaded) means no data. A host without a
//!   `statistics` directory, or a counter that is not a number, fails the collector
//!   (node_exporter then has no data for any host either).

use std::ffi::CStr;
use std::path::Path;

use eos_exposition::{Encoder, Kind};

use crate::collector::{list_dir, parse_sysfs_uint, Collector, CollectorDef, Ctx, SysDir};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "fibrechannel",
    default_enabled: true,
    build: |_settings, _paths| Ok(Box::new(FibreChannelCollector)),
};

struct FibreChannelCollector;

/// Identity attributes, which label `node_fibrechannel_info` under their file name: (file,
/// whether procfs drops its first two characters), in label order (`fc_host`, the host's
/// name, sorts after `fabric_name`).
const INFO: [(&CStr, bool); 10] = [
    (c"dev_loss_tmo", false),
    (c"fabric_name", true),
    (c"port_id", true),
    (c"port_name", true),
    (c"port_state", false),
    (c"port_type", false),
    (c"speed", false),
    (c"supported_classes", false),
    (c"supported_speeds", false),
    (c"symbolic_name", false),
];

/// Where `fc_host` goes among the [`INFO`] labels.
const FC_HOST_LABEL_AT: usize = 2;

/// `statistics/` files exported: (file, family, HELP), in family name order.
const COUNTERS: [(&CStr, &str, &str); 14] = [
    (
        c"dumped_frames",
        "node_fibrechannel_dumped_frames_total",
        "Number of dumped frames",
    ),
    (
        c"error_frames",
        "node_fibrechannel_error_frames_total",
        "Number of errors in frames",
    ),
    (
        c"fcp_packet_aborts",
        "node_fibrechannel_fcp_packet_aborts_total",
        "Number of aborted packets",
    ),
    (
        c"invalid_crc_count",
        "node_fibrechannel_invalid_crc_total",
        "Invalid Cyclic Redundancy Check count",
    ),
    (
        c"invalid_tx_word_count",
        "node_fibrechannel_invalid_tx_words_total",
        "Number of invalid words transmitted by host port",
    ),
    (
        c"link_failure_count",
        "node_fibrechannel_link_failure_total",
        "Number of times the host port link has failed",
    ),
    (
        c"loss_of_signal_count",
        "node_fibrechannel_loss_of_signal_total",
        "Number of times signal has been lost",
    ),
    (
        c"loss_of_sync_count",
        "node_fibrechannel_loss_of_sync_total",
        "Number of failures on either bit or transmission word boundaries",
    ),
    (
        c"nos_count",
        "node_fibrechannel_nos_total",
        "Number Not_Operational Primitive Sequence received by host port",
    ),
    (
        c"rx_frames",
        "node_fibrechannel_rx_frames_total",
        "Number of frames received",
    ),
    (
        c"rx_words",
        "node_fibrechannel_rx_words_total",
        "Number of words received by host port",
    ),
    (
        c"seconds_since_last_reset",
        "node_fibrechannel_seconds_since_last_reset_total",
        "Number of seconds since last host port reset",
    ),
    (
        c"tx_frames",
        "node_fibrechannel_tx_frames_total",
        "Number of frames transmitted by host port",
    ),
    (
        c"tx_words",
        "node_fibrechannel_tx_words_total",
        "Number of words transmitted by host port",
    ),
];

const INFO_FAMILY: &str = "node_fibrechannel_info";

/// What one `fc_host/<host>` directory says.
#[derive(Debug, PartialEq)]
struct Host {
    name: String,
    /// Values of [`INFO`], empty when absent.
    info: [String; INFO.len()],
    /// Values of [`COUNTERS`]; `None` when absent, unreadable or not implemented.
    counters: [Option<u64>; COUNTERS.len()],
}

impl Collector for FibreChannelCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let base = ctx.sys_path("class/fc_host");
        let mut hosts = Vec::new();
        let mut buf = Vec::with_capacity(4096);
        for name in list_dir(&base)? {
            ctx.check_deadline("Fibre Channel hosts")?;
            if let Some(host) = read_host(&base.join(&name), name, &mut buf)? {
                hosts.push(host);
            }
        }
        write(enc, &hosts);
        Ok(())
    }
}

/// Reads one host directory; `Ok(None)` when it is gone or not a directory.
fn read_host(dir: &Path, name: String, buf: &mut Vec<u8>) -> Result<Option<Host>, String> {
    let Some(host) = SysDir::open(dir)? else {
        return Ok(None);
    };
    let mut info: [String; INFO.len()] = Default::default();
    for (slot, (attr, strip)) in info.iter_mut().zip(INFO) {
        let value = host.read(attr, buf)?.unwrap_or_default();
        *slot = if strip { cut_prefix(value) } else { value }.to_string();
    }
    let stats_path = dir.join("statistics");
    let stats =
        SysDir::open(&stats_path)?.ok_or_else(|| format!("{}: missing", stats_path.display()))?;
    let mut counters = [None; COUNTERS.len()];
    for (slot, (file, _, _)) in counters.iter_mut().zip(COUNTERS) {
        let Some(text) = stats.read(file, buf)? else {
            continue;
        };
        let v = parse_sysfs_uint(text).map_err(|e| {
            format!(
                "parsing {}/{}: {e}",
                stats_path.display(),
                file.to_string_lossy()
            )
        })?;
        // All ones: the firmware does not implement this counter.
        *slot = (v != u64::MAX).then_some(v);
    }
    Ok(Some(Host {
        name,
        info,
        counters,
    }))
}

/// An identity attribute without its first two characters (`0x` of `port_name` and the
/// like), when it is longer than that, as procfs reads it.
fn cut_prefix(value: &str) -> &str {
    if value.len() > 2 {
        value.get(2..).unwrap_or(value)
    } else {
        value
    }
}

/// Writes the families in name order, series ordered as the Go client orders them (by label
/// values, labels in name order).
fn write(enc: &mut Encoder<'_>, hosts: &[Host]) {
    let mut info_written = false;
    for (col, (_, family, help)) in COUNTERS.iter().enumerate() {
        if !info_written && *family > INFO_FAMILY {
            write_info(enc, hosts);
            info_written = true;
        }
        let mut fam = enc.family(family, help, Kind::Counter);
        for h in hosts {
            if let Some(Some(v)) = h.counters.get(col) {
                fam.sample(&[("fc_host", &h.name)], *v as f64);
            }
        }
    }
    if !info_written {
        write_info(enc, hosts);
    }
}

/// `node_fibrechannel_info`, one series per host.
fn write_info(enc: &mut Encoder<'_>, hosts: &[Host]) {
    let mut series: Vec<Vec<(&str, &str)>> = hosts
        .iter()
        .map(|h| {
            let mut labels: Vec<(&str, &str)> = INFO
                .iter()
                .zip(&h.info)
                .map(|((attr, _), v)| (attr.to_str().unwrap_or_default(), v.as_str()))
                .collect();
            labels.insert(FC_HOST_LABEL_AT, ("fc_host", &h.name));
            labels
        })
        .collect();
    series.sort_by(|a, b| a.iter().map(|l| l.1).cmp(b.iter().map(|l| l.1)));
    let mut fam = enc.family(
        INFO_FAMILY,
        "Non-numeric data from /sys/class/fc_host/<host>, value is always 1.",
        Kind::Gauge,
    );
    for labels in &series {
        fam.sample(labels, 1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_tree::TestTree;

    /// No Fibre Channel HBA here: the tree copies the layout of procfs's `fc_host/host0`
    /// fixture (an Emulex HBA), with `0x` hex counters as the kernel writes them.
    fn emulex(t: &TestTree, host: &str) {
        let w = |rel: &str, v: &str| {
            t.write(&format!("{host}/{rel}"), v);
        };
        w("dev_loss_tmo", "30\n");
        w("fabric_name", "0x0\n");
        w("node_name", "0x2000e0071bce95f2\n");
        w("port_id", "0x000002\n");
        w("port_name", "0x1000e0071bce95f2\n");
        w("port_state", "Online\n");
        w("port_type", "Point-To-Point (direct nport connection)\n");
        w("speed", "16 Gbit\n");
        w("supported_classes", "Class 3\n");
        w("supported_speeds", "4 Gbit, 8 Gbit, 16 Gbit\n");
        w(
            "symbolic_name",
            "Emulex SN1100E2P FV12.4.270.3 DV12.4.0.0. HN:gotest. OS:Linux\n",
        );
        w("statistics/dumped_frames", "0xffffffffffffffff\n");
        w("statistics/error_frames", "0x0\n");
        w("statistics/fcp_packet_aborts", "0x13\n");
        w("statistics/invalid_crc_count", "0x2\n");
        w("statistics/invalid_tx_word_count", "0x8\n");
        w("statistics/link_failure_count", "0x9\n");
        w("statistics/loss_of_signal_count", "0x11\n");
        w("statistics/loss_of_sync_count", "0x10\n");
        w("statistics/nos_count", "0x12\n");
        w("statistics/rx_frames", "0x3\n");
        w("statistics/rx_words", "0x4\n");
        w("statistics/seconds_since_last_reset", "0x7\n");
        w("statistics/tx_frames", "0x5\n");
        w("statistics/tx_words", "0x6\n");
        w("statistics/fcp_input_megabytes", "0x1a\n");
        w("statistics/reset_statistics", "");
    }

    fn read(t: &TestTree, host: &str) -> Result<Option<Host>, String> {
        read_host(&t.path().join(host), host.into(), &mut Vec::new())
    }

    #[test]
    fn reads_a_host_like_procfs() {
        let t = TestTree::new("fc-host");
        emulex(&t, "host0");
        let h = read(&t, "host0").unwrap().unwrap();
        assert_eq!(
            h.info,
            [
                "30",
                "0",
                "000002",
                "1000e0071bce95f2",
                "Online",
                "Point-To-Point (direct nport connection)",
                "16 Gbit",
                "Class 3",
                "4 Gbit, 8 Gbit, 16 Gbit",
                "Emulex SN1100E2P FV12.4.270.3 DV12.4.0.0. HN:gotest. OS:Linux",
            ]
        );
        // dumped_frames is all ones: not implemented, left out.
        let want = [
            None,
            Some(0),
            Some(0x13),
            Some(2),
            Some(8),
            Some(9),
            Some(0x11),
            Some(0x10),
            Some(0x12),
            Some(3),
            Some(4),
            Some(7),
            Some(5),
            Some(6),
        ];
        assert_eq!(h.counters, want);
    }

    #[test]
    fn absent_attributes_are_empty_or_left_out() {
        let t = TestTree::new("fc-sparse");
        t.write("host1/port_name", "0x10\n")
            .write("host1/fabric_name", "0x\n")
            .write("host1/statistics/tx_frames", "12\n");
        let h = read(&t, "host1").unwrap().unwrap();
        assert_eq!(h.info[3], "10");
        // Two characters or fewer are kept whole, as procfs does.
        assert_eq!(h.info[1], "0x");
        assert_eq!(h.info[0], "");
        assert_eq!(h.counters.iter().flatten().collect::<Vec<_>>(), [&12]);
    }

    #[test]
    fn odd_hosts() {
        let t = TestTree::new("fc-odd");
        t.write("host2/speed", "8 Gbit\n");
        let e = read(&t, "host2").unwrap_err();
        assert!(e.ends_with("host2/statistics: missing"), "{e}");
        t.write("host2/statistics/rx_words", "0x12g\n");
        let e = read(&t, "host2").unwrap_err();
        assert!(e.contains("host2/statistics/rx_words"), "{e}");
        assert!(e.contains("invalid number \"0x12g\""), "{e}");
        t.write("host2/statistics/rx_words", "");
        assert!(
            read(&t, "host2").is_err(),
            "an empty counter is not a number"
        );
        t.write("host3", "not a directory");
        assert_eq!(read(&t, "host3").unwrap(), None);
        assert_eq!(read(&t, "gone").unwrap(), None);
    }

    #[test]
    fn writes_families_in_name_order() {
        for pair in COUNTERS.windows(2) {
            assert!(pair[0].1 < pair[1].1, "{} before {}", pair[0].1, pair[1].1);
        }
        let t = TestTree::new("fc-write");
        emulex(&t, "host0");
        emulex(&t, "host1");
        t.write("host1/dev_loss_tmo", "10\n");
        let hosts = [
            read(&t, "host0").unwrap().unwrap(),
            read(&t, "host1").unwrap().unwrap(),
        ];
        let mut out = Vec::new();
        write(
            &mut Encoder::new(&mut out, eos_exposition::Format::Text),
            &hosts,
        );
        let out = String::from_utf8(out).unwrap();
        let names: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .collect();
        assert_eq!(names.len(), 14, "all but dumped_frames, and info: {out}");
        assert_eq!(
            names[1],
            "node_fibrechannel_fcp_packet_aborts_total counter"
        );
        assert_eq!(names[2], "node_fibrechannel_info gauge");
        assert!(!out.contains("dumped_frames"), "{out}");
        assert!(out.contains("node_fibrechannel_rx_words_total{fc_host=\"host1\"} 4\n"));
        // Series sort by label values in label name order: dev_loss_tmo first.
        let info: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("node_fibrechannel_info{"))
            .collect();
        assert_eq!(info.len(), 2);
        assert!(
            info[0].starts_with("node_fibrechannel_info{dev_loss_tmo=\"10\",fabric_name=\"0\",fc_host=\"host1\",port_id=\"000002\""),
            "{}",
            info[0]
        );
        assert!(info[1].contains("fc_host=\"host0\""), "{}", info[1]);
    }
}
