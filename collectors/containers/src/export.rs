//! Writing a [`Snapshot`] as the kubelet's `/metrics/cadvisor` families.

use crate::collector::{Labels, Row, Snapshot};
use crate::stats::{Spec, Stats};
use eos_exposition::{Encoder, Kind};

/// Labels every row carries besides the family's own.
struct RowLabels<'a> {
    l: &'a Labels,
    extra_names: &'a [String],
}

impl<'a> RowLabels<'a> {
    /// The kubelet's label order (sorted), with one family-specific label in its place.
    fn fill(&self, extra: Option<(&'a str, &'a str)>, out: &mut Vec<(&'a str, &'a str)>) {
        out.clear();
        let l = self.l;
        out.push(("container", &l.container));
        if let Some(e @ ("cpu" | "device", _)) = extra {
            out.push(e);
        }
        out.push(("id", &l.id));
        out.push(("image", &l.image));
        if let Some(e @ ("interface", _)) = extra {
            out.push(e);
        }
        out.push(("name", &l.name));
        out.push(("namespace", &l.namespace));
        out.push(("pod", &l.pod));
        for (k, v) in self.extra_names.iter().zip(&l.extra) {
            out.push((k, v));
        }
    }
}

type Get = fn(&Stats, &Spec) -> Option<f64>;

fn f(v: Option<u64>) -> Option<f64> {
    v.map(|v| v as f64)
}

fn secs(ns: Option<u64>) -> Option<f64> {
    ns.map(|v| v as f64 / 1e9)
}

/// Families with one sample per row.
const SIMPLE: &[(&str, &str, Kind, Get)] = &[
    ("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", Kind::Counter, |s, _| secs(s.cpu_user_ns)),
    ("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", Kind::Counter, |s, _| secs(s.cpu_system_ns)),
    ("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", Kind::Counter, |s, p| p.cpu_quota.and(f(s.cfs_periods))),
    ("container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", Kind::Counter, |s, p| p.cpu_quota.and(f(s.cfs_throttled_periods))),
    ("container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", Kind::Counter, |s, p| p.cpu_quota.and(secs(s.cfs_throttled_ns))),
    ("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed", Kind::Gauge, |s, _| f(s.mem_usage)),
    ("container_memory_working_set_bytes", "Current working set in bytes.", Kind::Gauge, |s, _| f(s.mem_working_set)),
    ("container_memory_rss", "Size of RSS in bytes.", Kind::Gauge, |s, _| f(s.mem_rss)),
    ("container_memory_cache", "Number of bytes of page cache memory.", Kind::Gauge, |s, _| f(s.mem_cache)),
    ("container_memory_swap", "Container swap usage in bytes.", Kind::Gauge, |s, _| f(s.mem_swap)),
    ("container_memory_mapped_file", "Size of memory mapped files in bytes.", Kind::Gauge, |s, _| f(s.mem_mapped_file)),
    ("container_memory_failcnt", "Number of memory usage hits limits", Kind::Counter, |s, _| f(s.mem_failcnt)),
    ("container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes", Kind::Gauge, |s, _| f(s.mem_max_usage)),
    ("container_oom_events_total", "Count of out of memory events observed for the container", Kind::Counter, |s, _| f(s.oom_events)),
    ("container_pressure_cpu_waiting_seconds_total", "Total time duration tasks in the container have waited due to CPU congestion.", Kind::Counter, |s, _| secs(s.pressure[0].map(|p| p.0.saturating_mul(1000)))),
    ("container_pressure_cpu_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to CPU congestion.", Kind::Counter, |s, _| secs(s.pressure[0].and_then(|p| p.1).map(|v| v.saturating_mul(1000)))),
    ("container_pressure_memory_waiting_seconds_total", "Total time duration tasks in the container have waited due to memory congestion.", Kind::Counter, |s, _| secs(s.pressure[1].map(|p| p.0.saturating_mul(1000)))),
    ("container_pressure_memory_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to memory congestion.", Kind::Counter, |s, _| secs(s.pressure[1].and_then(|p| p.1).map(|v| v.saturating_mul(1000)))),
    ("container_pressure_io_waiting_seconds_total", "Total time duration tasks in the container have waited due to IO congestion.", Kind::Counter, |s, _| secs(s.pressure[2].map(|p| p.0.saturating_mul(1000)))),
    ("container_pressure_io_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to IO congestion.", Kind::Counter, |s, _| secs(s.pressure[2].and_then(|p| p.1).map(|v| v.saturating_mul(1000)))),
    ("container_processes", "Number of processes running inside the container.", Kind::Gauge, |s, _| f(s.processes)),
    ("container_threads", "Number of threads running inside the container", Kind::Gauge, |s, _| f(s.threads)),
    ("container_spec_cpu_quota", "CPU quota of the container.", Kind::Gauge, |_, p| f(p.cpu_quota)),
    ("container_spec_cpu_period", "CPU period of the container.", Kind::Gauge, |_, p| f(p.cpu_period)),
    ("container_spec_cpu_shares", "CPU share of the container.", Kind::Gauge, |_, p| f(p.cpu_shares)),
    ("container_spec_memory_limit_bytes", "Memory limit for the container.", Kind::Gauge, |_, p| f(p.mem_limit)),
];

/// Writes every family of the snapshot. With `timestamps`, samples carry the round's time.
pub fn write(enc: &mut Encoder<'_>, snap: &Snapshot, extra_names: &[String], timestamps: bool) {
    let ts = timestamps.then_some(snap.timestamp_ms);
    let mut labels: Vec<(&str, &str)> = Vec::with_capacity(16);
    let rows = |r| row_labels(r, extra_names);

    let mut fam = enc.family(
        "container_cpu_usage_seconds_total",
        "Cumulative cpu time consumed in seconds.",
        Kind::Counter,
    );
    for r in &snap.rows {
        if let Some(v) = r.stats.cpu_usage_ns {
            rows(r).fill(Some(("cpu", "total")), &mut labels);
            emit(&mut fam, &labels, v as f64 / 1e9, ts);
        }
    }
    for (name, help, kind, get) in SIMPLE {
        let mut fam = enc.family(name, help, *kind);
        for r in &snap.rows {
            if let Some(v) = get(&r.stats, &r.spec) {
                rows(r).fill(None, &mut labels);
                emit(&mut fam, &labels, v, ts);
            }
        }
    }
    type IoGet = fn(&crate::parse::Io) -> u64;
    let io: [(&str, &str, IoGet); 4] = [
        (
            "container_fs_reads_bytes_total",
            "Cumulative count of bytes read",
            |d| d.read_bytes,
        ),
        (
            "container_fs_writes_bytes_total",
            "Cumulative count of bytes written",
            |d| d.write_bytes,
        ),
        (
            "container_fs_reads_total",
            "Cumulative count of reads completed",
            |d| d.reads,
        ),
        (
            "container_fs_writes_total",
            "Cumulative count of writes completed",
            |d| d.writes,
        ),
    ];
    for (name, help, get) in io {
        let mut fam = enc.family(name, help, Kind::Counter);
        for r in &snap.rows {
            for (d, dev) in r.stats.io.iter().zip(&r.io_devices) {
                rows(r).fill(Some(("device", dev)), &mut labels);
                emit(&mut fam, &labels, get(d) as f64, ts);
            }
        }
    }
    type NetGet = fn(&crate::parse::NetDev) -> u64;
    let net: [(&str, &str, NetGet); 8] = [
        (
            "container_network_receive_bytes_total",
            "Cumulative count of bytes received",
            |n| n.rx_bytes,
        ),
        (
            "container_network_receive_packets_total",
            "Cumulative count of packets received",
            |n| n.rx_packets,
        ),
        (
            "container_network_receive_packets_dropped_total",
            "Cumulative count of packets dropped while receiving",
            |n| n.rx_dropped,
        ),
        (
            "container_network_receive_errors_total",
            "Cumulative count of errors encountered while receiving",
            |n| n.rx_errors,
        ),
        (
            "container_network_transmit_bytes_total",
            "Cumulative count of bytes transmitted",
            |n| n.tx_bytes,
        ),
        (
            "container_network_transmit_packets_total",
            "Cumulative count of packets transmitted",
            |n| n.tx_packets,
        ),
        (
            "container_network_transmit_packets_dropped_total",
            "Cumulative count of packets dropped while transmitting",
            |n| n.tx_dropped,
        ),
        (
            "container_network_transmit_errors_total",
            "Cumulative count of errors encountered while transmitting",
            |n| n.tx_errors,
        ),
    ];
    for (name, help, get) in net {
        let mut fam = enc.family(name, help, Kind::Counter);
        for r in snap.rows.iter().filter(|r| r.sandbox) {
            for n in &r.stats.net {
                rows(r).fill(Some(("interface", &n.name)), &mut labels);
                emit(&mut fam, &labels, get(n) as f64, ts);
            }
        }
    }
    let mut fam = enc.family(
        "container_fs_usage_bytes",
        "Number of bytes that are consumed by the container on this filesystem.",
        Kind::Gauge,
    );
    for r in &snap.rows {
        if let Some((bytes, dev)) = &r.fs_usage {
            row_labels(r, extra_names).fill(Some(("device", dev)), &mut labels);
            emit(&mut fam, &labels, *bytes as f64, ts);
        }
    }
    let mut fam = enc.family(
        "container_start_time_seconds",
        "Start time of the container since unix epoch in seconds.",
        Kind::Gauge,
    );
    for r in snap.rows.iter().filter(|r| r.start_time > 0.0) {
        rows(r).fill(None, &mut labels);
        emit(&mut fam, &labels, r.start_time, ts);
    }
    let mut fam = enc.family(
        "container_last_seen",
        "Last time a container was seen by the exporter",
        Kind::Gauge,
    );
    let seen = (snap.timestamp_ms / 1000) as f64;
    for r in &snap.rows {
        rows(r).fill(None, &mut labels);
        emit(&mut fam, &labels, seen, ts);
    }
}

fn row_labels<'a>(r: &'a Row, extra_names: &'a [String]) -> RowLabels<'a> {
    RowLabels {
        l: &r.labels,
        extra_names,
    }
}

fn emit(
    fam: &mut eos_exposition::Family<'_, '_>,
    labels: &[(&str, &str)],
    v: f64,
    ts: Option<i64>,
) {
    match ts {
        Some(t) => fam.sample_at(labels, v, t),
        None => fam.sample(labels, v),
    }
}
