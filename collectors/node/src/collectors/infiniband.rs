//! `infiniband`: InfiniBand and RoCE adapters from `/sys/class/infiniband/<device>/`, as
//! node_exporter 1.12 reads them through procfs: `node_infiniband_info` per device
//! (`fw_ver`, `board_id`, `hca_type`), and per port its state, physical state and rate,
//! plus the counters of `ports/<n>/counters/` (with the pre-4.5 kernels' `counters_ext/`
//! next to it) and of `ports/<n>/hw_counters/` (mlx5, irdma and other RDMA drivers).
//!
//! - Which counter directories a port has depends on the driver (irdma has no `counters/`,
//!   mlx4 no `hw_counters/`), so each is read when it exists, whatever the device is called.
//! - A counter whose file is absent or unreadable is left out, as is one that reads
//!   `N/A (no PMA)` (older kernels, for ports without a performance management agent).
//! - The data counters (`port_rcv_data`, `port_xmit_data` and the `_64` ones) count
//!   32-bit words (octets divided by 4); they are multiplied by 4, as procfs does. `hw_counters/lifespan`
//!   (milliseconds) becomes `node_infiniband_lifespan_seconds` in whole seconds (node_exporter
//!   divides integers).
//! - No `/sys/class/infiniband` (no RDMA driver loaded) means no data. A device without
//!   `fw_ver` or `ports/`, a port without `state`, `phys_state` or `rate`, and a counter or
//!   port number that is not a number fail the collector.

use std::ffi::CStr;
use std::path::Path;

use eos_exposition::{Encoder, Kind};

use crate::collector::parse_sysfs_uint;
use crate::collector::{list_dir, Collector, CollectorDef, Ctx, SysDir};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "infiniband",
    default_enabled: true,
    build: |_settings, _paths| Ok(Box::new(InfinibandCollector)),
};

struct InfinibandCollector;

/// Where a port's value comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Source {
    /// `ports/<n>/state`: the number before the colon (`4: ACTIVE`).
    State,
    /// `ports/<n>/phys_state`: the number before the colon (`5: LinkUp`).
    PhysState,
    /// `ports/<n>/rate` (`100 Gb/sec (4X EDR)`), in bytes per second.
    Rate,
    /// A file in `ports/<n>/counters/`.
    Counters(&'static CStr),
    /// A file in `ports/<n>/counters_ext/`, read only when `counters/` exists.
    CountersExt(&'static CStr),
    /// A file in `ports/<n>/hw_counters/`.
    Hw(&'static CStr),
}

/// How a counter file's value becomes the sample.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Scale {
    One,
    /// 32-bit words to octets: times 4 (wrapping, as Go's `uint64` does).
    Words,
    /// Milliseconds to whole seconds.
    MillisToSeconds,
}

/// One per-port family (labels `device`, `port`).
struct Metric {
    name: &'static str,
    help: &'static str,
    kind: Kind,
    source: Source,
    scale: Scale,
}

const fn counter(name: &'static str, help: &'static str, source: Source) -> Metric {
    Metric {
        name,
        help,
        kind: Kind::Counter,
        source,
        scale: Scale::One,
    }
}

const fn gauge(name: &'static str, help: &'static str, source: Source) -> Metric {
    Metric {
        name,
        help,
        kind: Kind::Gauge,
        source,
        scale: Scale::One,
    }
}

const fn words(metric: Metric) -> Metric {
    Metric {
        scale: Scale::Words,
        ..metric
    }
}

use Source::{Counters as C, CountersExt as Ext, Hw};

/// The per-port families, in name order (`node_infiniband_info` goes between
/// `implied_nak_seq_errors_total` and `legacy_data_received_bytes_total`).
const METRICS: [Metric; 63] = [
    counter(
        "node_infiniband_duplicate_requests_packets_total",
        "The number of received packets. A duplicate request is a request that had been previously executed.",
        Hw(c"duplicate_request"),
    ),
    counter(
        "node_infiniband_excessive_buffer_overrun_errors_total",
        "Number of times that OverrunErrors consecutive flow control update periods occurred, each having at least one overrun error.",
        C(c"excessive_buffer_overrun_errors"),
    ),
    counter(
        "node_infiniband_implied_nak_seq_errors_total",
        "The number of time the requested decided an ACK. with a PSN larger than the expected PSN for an RDMA read or response.",
        Hw(c"implied_nak_seq_err"),
    ),
    words(counter(
        "node_infiniband_legacy_data_received_bytes_total",
        "Number of data octets received on all links",
        Ext(c"port_rcv_data_64"),
    )),
    words(counter(
        "node_infiniband_legacy_data_transmitted_bytes_total",
        "Number of data octets transmitted on all links",
        Ext(c"port_xmit_data_64"),
    )),
    counter(
        "node_infiniband_legacy_multicast_packets_received_total",
        "Number of multicast packets received",
        Ext(c"port_multicast_rcv_packets"),
    ),
    counter(
        "node_infiniband_legacy_multicast_packets_transmitted_total",
        "Number of multicast packets transmitted",
        Ext(c"port_multicast_xmit_packets"),
    ),
    counter(
        "node_infiniband_legacy_packets_received_total",
        "Number of data packets received on all links",
        Ext(c"port_rcv_packets_64"),
    ),
    // "received" (sic): node_exporter's HELP.
    counter(
        "node_infiniband_legacy_packets_transmitted_total",
        "Number of data packets received on all links",
        Ext(c"port_xmit_packets_64"),
    ),
    counter(
        "node_infiniband_legacy_unicast_packets_received_total",
        "Number of unicast packets received",
        Ext(c"port_unicast_rcv_packets"),
    ),
    counter(
        "node_infiniband_legacy_unicast_packets_transmitted_total",
        "Number of unicast packets transmitted",
        Ext(c"port_unicast_xmit_packets"),
    ),
    Metric {
        scale: Scale::MillisToSeconds,
        ..gauge(
            "node_infiniband_lifespan_seconds",
            "The maximum period in ms which defines the aging of the counter reads. Two consecutive reads within this period might return the same values.",
            Hw(c"lifespan"),
        )
    },
    counter(
        "node_infiniband_link_downed_total",
        "Number of times the link failed to recover from an error state and went down",
        C(c"link_downed"),
    ),
    counter(
        "node_infiniband_link_error_recovery_total",
        "Number of times the link successfully recovered from an error state",
        C(c"link_error_recovery"),
    ),
    counter(
        "node_infiniband_local_ack_timeout_errors_total",
        "The number of times QP's ack timer expired for RC, XRC, DCT QPs at the sender side. The QP retry limit was not exceed, therefore it is still recoverable error.",
        Hw(c"local_ack_timeout_err"),
    ),
    counter(
        "node_infiniband_local_link_integrity_errors_total",
        "Number of times that the count of local physical errors exceeded the threshold specified by LocalPhyErrors.",
        C(c"local_link_integrity_errors"),
    ),
    counter(
        "node_infiniband_multicast_packets_received_total",
        "Number of multicast packets received (including errors)",
        C(c"multicast_rcv_packets"),
    ),
    counter(
        "node_infiniband_multicast_packets_transmitted_total",
        "Number of multicast packets transmitted (including errors)",
        C(c"multicast_xmit_packets"),
    ),
    counter(
        "node_infiniband_np_cnp_packets_sent_total",
        "The number of CNP packets sent by the Notification Point when it noticed congestion experienced in the RoCEv2 IP header (ECN bits). The counters was added in MLNX_OFED 4.1",
        Hw(c"np_cnp_sent"),
    ),
    counter(
        "node_infiniband_np_ecn_marked_roce_packets_received_total",
        "The number of RoCEv2 packets received by the notification point which were marked for experiencing the congestion (ECN bits where '11' on the ingress RoCE traffic) . The counters was added in MLNX_OFED 4.1",
        Hw(c"np_ecn_marked_roce_packets"),
    ),
    counter(
        "node_infiniband_out_of_buffer_drops_total",
        "The number of drops occurred due to lack of WQE for the associated QPs.",
        Hw(c"out_of_buffer"),
    ),
    counter(
        "node_infiniband_out_of_sequence_packets_received_total",
        "The number of out of sequence packets received.",
        Hw(c"out_of_sequence"),
    ),
    counter(
        "node_infiniband_packet_sequence_errors_total",
        "The number of received NAK sequence error packets. The QP retry limit was not exceeded.",
        Hw(c"packet_seq_err"),
    ),
    gauge(
        "node_infiniband_physical_state_id",
        "Physical state of the InfiniBand port (0: no change, 1: sleep, 2: polling, 3: disable, 4: shift, 5: link up, 6: link error recover, 7: phytest)",
        Source::PhysState,
    ),
    counter(
        "node_infiniband_port_constraint_errors_received_total",
        "Number of packets received on the switch physical port that are discarded",
        C(c"port_rcv_constraint_errors"),
    ),
    counter(
        "node_infiniband_port_constraint_errors_transmitted_total",
        "Number of packets not transmitted from the switch physical port",
        C(c"port_xmit_constraint_errors"),
    ),
    words(counter(
        "node_infiniband_port_data_received_bytes_total",
        "Number of data octets received on all links",
        C(c"port_rcv_data"),
    )),
    words(counter(
        "node_infiniband_port_data_transmitted_bytes_total",
        "Number of data octets transmitted on all links",
        C(c"port_xmit_data"),
    )),
    counter(
        "node_infiniband_port_discards_received_total",
        "Number of inbound packets discarded by the port because the port is down or congested",
        C(c"port_rcv_discards"),
    ),
    counter(
        "node_infiniband_port_discards_transmitted_total",
        "Number of outbound packets discarded by the port because the port is down or congested",
        C(c"port_xmit_discards"),
    ),
    counter(
        "node_infiniband_port_errors_received_total",
        "Number of packets containing an error that were received on this port",
        C(c"port_rcv_errors"),
    ),
    counter(
        "node_infiniband_port_packets_received_total",
        "Number of packets received on all VLs by this port (including errors)",
        C(c"port_rcv_packets"),
    ),
    counter(
        "node_infiniband_port_packets_transmitted_total",
        "Number of packets transmitted on all VLs from this port (including errors)",
        C(c"port_xmit_packets"),
    ),
    counter(
        "node_infiniband_port_receive_remote_physical_errors_total",
        "Number of packets marked with the EBP (End of Bad Packet) delimiter received on the port.",
        C(c"port_rcv_remote_physical_errors"),
    ),
    counter(
        "node_infiniband_port_receive_switch_relay_errors_total",
        "Number of packets that could not be forwarded by the switch.",
        C(c"port_rcv_switch_relay_errors"),
    ),
    counter(
        "node_infiniband_port_transmit_wait_total",
        "Number of ticks during which the port had data to transmit but no data was sent during the entire tick",
        C(c"port_xmit_wait"),
    ),
    gauge(
        "node_infiniband_rate_bytes_per_second",
        "Maximum signal transfer rate",
        Source::Rate,
    ),
    counter(
        "node_infiniband_req_cqes_errors_total",
        "The number of times requester detected CQEs completed with errors. The counters was added in MLNX_OFED 4.1",
        Hw(c"req_cqe_error"),
    ),
    counter(
        "node_infiniband_req_cqes_flush_errors_total",
        "The number of times requester detected CQEs completed with flushed errors. The counters was added in MLNX_OFED 4.1",
        Hw(c"req_cqe_flush_error"),
    ),
    counter(
        "node_infiniband_req_remote_access_errors_total",
        "The number of times requester detected remote access errors. The counters was added in MLNX_OFED 4.1",
        Hw(c"req_remote_access_errors"),
    ),
    counter(
        "node_infiniband_req_remote_invalid_request_errors_total",
        "The number of times requester detected remote invalid request errors. The counters was added in MLNX_OFED 4.1",
        Hw(c"req_remote_invalid_request"),
    ),
    counter(
        "node_infiniband_resp_cqes_errors_total",
        "The number of times responder detected CQEs completed with errors. The counters was added in MLNX_OFED 4.1",
        Hw(c"resp_cqe_error"),
    ),
    counter(
        "node_infiniband_resp_cqes_flush_errors_total",
        "The number of times responder detected CQEs completed with flushed errors. The counters was added in MLNX_OFED 4.1",
        Hw(c"resp_cqe_flush_error"),
    ),
    counter(
        "node_infiniband_resp_local_length_errors_total",
        "The number of times responder detected local length errors. The counters was added in MLNX_OFED 4.1",
        Hw(c"resp_local_length_error"),
    ),
    counter(
        "node_infiniband_resp_remote_access_errors_total",
        "The number of times responder detected remote access errors. The counters was added in MLNX_OFED 4.1",
        Hw(c"resp_remote_access_errors"),
    ),
    counter(
        "node_infiniband_rnr_nak_retry_packets_received_total",
        "The number of received RNR NAK packets. The QP retry limit was not exceeded.",
        Hw(c"rnr_nak_retry_err"),
    ),
    counter(
        "node_infiniband_roce_adp_retransmits_timeout_total",
        "The number of times RoCE traffic reached timeout due to adaptive retransmission. The counter was added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0",
        Hw(c"roce_adp_retrans_to"),
    ),
    counter(
        "node_infiniband_roce_adp_retransmits_total",
        "The number of adaptive retransmissions for RoCE traffic. The counter was added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0",
        Hw(c"roce_adp_retrans"),
    ),
    counter(
        "node_infiniband_roce_slow_restart_cnps_total",
        "The number of times RoCE slow restart generated CNP packets. The counter was added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0",
        Hw(c"roce_slow_restart_cnps"),
    ),
    counter(
        "node_infiniband_roce_slow_restart_total",
        "The number of times RoCE slow restart changed state to slow restart. The counter was added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0",
        Hw(c"roce_slow_restart_trans"),
    ),
    counter(
        "node_infiniband_roce_slow_restart_used_total",
        "The number of times RoCE slow restart was used. The counter was added in MLNX_OFED rev 5.0-1.0.0.0 and kernel v5.6.0",
        Hw(c"roce_slow_restart"),
    ),
    counter(
        "node_infiniband_rp_cnp_ignored_packets_received_total",
        "The number of CNP packets received and ignored by the Reaction Point HCA. This counter should not raise if RoCE Congestion Control was enabled in the network. If this counter raise, verify that ECN was enabled on the adapter.",
        Hw(c"rp_cnp_ignored"),
    ),
    counter(
        "node_infiniband_rp_cnp_packets_handled_total",
        "The number of CNP packets handled by the Reaction Point HCA to throttle the transmission rate. The counters was added in MLNX_OFED 4.1",
        Hw(c"rp_cnp_handled"),
    ),
    counter(
        "node_infiniband_rx_atomic_requests_total",
        "The number of received ATOMIC request for the associated QPs.",
        Hw(c"rx_atomic_requests"),
    ),
    counter(
        "node_infiniband_rx_dct_connect_requests_total",
        "The number of received connection requests for the associated DCTs.",
        Hw(c"rx_dct_connect"),
    ),
    counter(
        "node_infiniband_rx_icrc_encapsulated_errors_total",
        "The number of RoCE packets with ICRC errors. This counter was added in MLNX_OFED 4.4 and kernel 4.19",
        Hw(c"rx_icrc_encapsulated"),
    ),
    counter(
        "node_infiniband_rx_read_requests_total",
        "The number of received READ requests for the associated QPs.",
        Hw(c"rx_read_requests"),
    ),
    counter(
        "node_infiniband_rx_write_requests_total",
        "The number of received WRITE requests for the associated QPs.",
        Hw(c"rx_write_requests"),
    ),
    gauge(
        "node_infiniband_state_id",
        "State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, 4: active, 5: act defer)",
        Source::State,
    ),
    counter(
        "node_infiniband_symbol_error_total",
        "Number of minor link errors detected on one or more physical lanes.",
        C(c"symbol_error"),
    ),
    counter(
        "node_infiniband_unicast_packets_received_total",
        "Number of unicast packets received (including errors)",
        C(c"unicast_rcv_packets"),
    ),
    counter(
        "node_infiniband_unicast_packets_transmitted_total",
        "Number of unicast packets transmitted (including errors)",
        C(c"unicast_xmit_packets"),
    ),
    counter(
        "node_infiniband_vl15_dropped_total",
        "Number of incoming VL15 packets dropped due to resource limitations.",
        C(c"VL15_dropped"),
    ),
];

const INFO_FAMILY: &str = "node_infiniband_info";

/// What one `infiniband/<device>` directory says.
#[derive(Debug, PartialEq)]
struct Device {
    name: String,
    board_id: String,
    firmware_version: String,
    hca_type: String,
    /// In label order (the port number as text).
    ports: Vec<Port>,
}

/// One `ports/<n>` directory: values of [`METRICS`], `None` when absent.
#[derive(Debug, PartialEq)]
struct Port {
    number: String,
    values: [Option<u64>; METRICS.len()],
}

impl Collector for InfinibandCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let base = ctx.sys_path("class/infiniband");
        let mut devices = Vec::new();
        let mut buf = Vec::with_capacity(4096);
        for name in list_dir(&base)? {
            ctx.check_deadline("InfiniBand devices")?;
            if let Some(device) = read_device(&base.join(&name), name, &mut buf)? {
                devices.push(device);
            }
        }
        write(enc, &devices);
        Ok(())
    }
}

/// Reads one device directory; `Ok(None)` when it is gone or not a directory.
fn read_device(dir: &Path, name: String, buf: &mut Vec<u8>) -> Result<Option<Device>, String> {
    let Some(device) = SysDir::open(dir)? else {
        return Ok(None);
    };
    // fw_ver is there for every driver since Linux 4.10; the others are optional.
    let firmware_version = required(&device, dir, c"fw_ver", buf)?.to_string();
    let board_id = device
        .read(c"board_id", buf)?
        .unwrap_or_default()
        .to_string();
    let hca_type = device
        .read(c"hca_type", buf)?
        .unwrap_or_default()
        .to_string();
    let ports_dir = dir.join("ports");
    if SysDir::open(&ports_dir)?.is_none() {
        return Err(format!("{}: missing", ports_dir.display()));
    }
    let mut ports = Vec::new();
    for number in list_dir(&ports_dir)? {
        ports.push(read_port(&ports_dir.join(&number), number, buf)?);
    }
    Ok(Some(Device {
        name,
        board_id,
        firmware_version,
        hca_type,
        ports,
    }))
}

/// Reads one `ports/<n>` directory.
fn read_port(dir: &Path, number: String, buf: &mut Vec<u8>) -> Result<Port, String> {
    parse_u32(&number).map_err(|e| format!("{}: port {e}", dir.display()))?;
    let port = SysDir::open(dir)?.ok_or_else(|| format!("{}: not a directory", dir.display()))?;
    let parsing = |file: &str, e: String| format!("parsing {}/{file}: {e}", dir.display());
    let state =
        parse_state(required(&port, dir, c"state", buf)?).map_err(|e| parsing("state", e))?;
    let phys = parse_state(required(&port, dir, c"phys_state", buf)?)
        .map_err(|e| parsing("phys_state", e))?;
    let rate = parse_rate(required(&port, dir, c"rate", buf)?).map_err(|e| parsing("rate", e))?;

    // Each counter directory is read when it exists (counters_ext only next to counters).
    let counters = SysDir::open(&dir.join("counters"))?;
    let counters_ext = match counters {
        Some(_) => SysDir::open(&dir.join("counters_ext"))?,
        None => None,
    };
    let hw = SysDir::open(&dir.join("hw_counters"))?;

    let mut values = [None; METRICS.len()];
    for (slot, m) in values.iter_mut().zip(&METRICS) {
        let (sub, subdir, file) = match m.source {
            Source::State => {
                *slot = Some(u64::from(state));
                continue;
            }
            Source::PhysState => {
                *slot = Some(u64::from(phys));
                continue;
            }
            Source::Rate => {
                *slot = Some(rate);
                continue;
            }
            Source::Counters(f) => ("counters", &counters, f),
            Source::CountersExt(f) => ("counters_ext", &counters_ext, f),
            Source::Hw(f) => ("hw_counters", &hw, f),
        };
        let Some(subdir) = subdir else {
            continue;
        };
        let Some(text) = subdir.read(file, buf)? else {
            continue;
        };
        let v = parse_counter(text).map_err(|e| {
            format!(
                "parsing {}/{sub}/{}: {e}",
                dir.display(),
                file.to_string_lossy()
            )
        })?;
        *slot = v.map(|v| match m.scale {
            Scale::One => v,
            Scale::Words => v.wrapping_mul(4),
            Scale::MillisToSeconds => v / 1000,
        });
    }
    Ok(Port { number, values })
}

/// An attribute of `dir` (open as `sysdir`) that must be there.
fn required<'b>(
    sysdir: &SysDir,
    dir: &Path,
    file: &CStr,
    buf: &'b mut Vec<u8>,
) -> Result<&'b str, String> {
    sysdir
        .read(file, buf)?
        .ok_or_else(|| format!("{}/{}: missing", dir.display(), file.to_string_lossy()))
}

/// A counter file: a number, or `None` for `N/A (no PMA)`.
fn parse_counter(text: &str) -> Result<Option<u64>, String> {
    match parse_sysfs_uint(text) {
        Ok(v) => Ok(Some(v)),
        Err(_) if text.contains("N/A (no PMA)") => Ok(None),
        Err(e) => Err(e),
    }
}

/// The id of a `state` or `phys_state` file: `<id>: <name>`, exactly one colon.
fn parse_state(text: &str) -> Result<u32, String> {
    let mut parts = text.split(':');
    let (Some(id), Some(_name), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("expected \"<id>: <name>\", got {text:?}"));
    };
    parse_u32(id.trim())
}

/// A decimal number up to `u32::MAX`, digits only (as Go's `ParseUint(s, 10, 32)`).
fn parse_u32(s: &str) -> Result<u32, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("invalid number {s:?}"));
    }
    s.parse().map_err(|_| format!("invalid number {s:?}"))
}

/// A `rate` file (`100 Gb/sec (4X EDR)`, `2.5 Gb/sec (1X SDR)`) in bytes per second: the
/// number before the first space, in Gb/s, read at single precision as procfs does.
fn parse_rate(text: &str) -> Result<u64, String> {
    let Some((gbits, _)) = text.split_once(' ') else {
        return Err(format!("expected \"<Gb/s> Gb/sec ...\", got {text:?}"));
    };
    let gbits: f32 = gbits
        .trim()
        .parse()
        .map_err(|_| format!("invalid rate {gbits:?}"))?;
    Ok((f64::from(gbits) * 125_000_000.0) as u64)
}

/// Writes the families in name order, series ordered as the Go client orders them (by label
/// values, labels in name order).
fn write(enc: &mut Encoder<'_>, devices: &[Device]) {
    let mut info_written = false;
    for (col, m) in METRICS.iter().enumerate() {
        if !info_written && m.name > INFO_FAMILY {
            write_info(enc, devices);
            info_written = true;
        }
        let mut fam = enc.family(m.name, m.help, m.kind);
        for d in devices {
            for p in &d.ports {
                if let Some(Some(v)) = p.values.get(col) {
                    fam.sample(&[("device", &d.name), ("port", &p.number)], *v as f64);
                }
            }
        }
    }
    if !info_written {
        write_info(enc, devices);
    }
}

/// `node_infiniband_info`, one series per device.
fn write_info(enc: &mut Encoder<'_>, devices: &[Device]) {
    let mut series: Vec<[(&str, &str); 4]> = devices
        .iter()
        .map(|d| {
            [
                ("board_id", d.board_id.as_str()),
                ("device", &d.name),
                ("firmware_version", &d.firmware_version),
                ("hca_type", &d.hca_type),
            ]
        })
        .collect();
    series.sort_by(|a, b| a.iter().map(|l| l.1).cmp(b.iter().map(|l| l.1)));
    let mut fam = enc.family(
        INFO_FAMILY,
        "Non-numeric data from /sys/class/infiniband/<device>, value is always 1.",
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

    fn col(name: &str) -> usize {
        METRICS
            .iter()
            .position(|m| m.name == format!("node_infiniband_{name}"))
            .unwrap()
    }

    fn read(t: &TestTree, device: &str) -> Result<Option<Device>, String> {
        read_device(&t.path().join(device), device.into(), &mut Vec::new())
    }

    /// No InfiniBand adapter here: the trees copy the layout of procfs's fixtures (`mlx4_0`
    /// with `counters/` and `counters_ext/`, `mlx5_0`-style `hw_counters/`).
    fn mlx4(t: &TestTree) {
        t.write("mlx4_0/fw_ver", "2.31.5050\n")
            .write("mlx4_0/board_id", "SM_1141000001000\n")
            .write("mlx4_0/hca_type", "MT4099\n")
            .write("mlx4_0/ports/1/state", "4: ACTIVE\n")
            .write("mlx4_0/ports/1/phys_state", "5: LinkUp\n")
            .write("mlx4_0/ports/1/rate", "40 Gb/sec (4X QDR)\n")
            .write("mlx4_0/ports/1/link_layer", "InfiniBand\n")
            .write("mlx4_0/ports/1/counters/port_rcv_data", "2221223609\n")
            .write("mlx4_0/ports/1/counters/port_xmit_wait", "3599\n")
            .write("mlx4_0/ports/1/counters/VL15_dropped", "0\n")
            .write("mlx4_0/ports/1/counters/symbol_error", "N/A (no PMA)\n")
            .write(
                "mlx4_0/ports/1/counters_ext/port_xmit_data_64",
                "26509113295\n",
            )
            .write(
                "mlx4_0/ports/1/counters_ext/port_unicast_rcv_packets",
                "61148\n",
            );
    }

    #[test]
    fn reads_counters_and_counters_ext() {
        let t = TestTree::new("ib-mlx4");
        mlx4(&t);
        let d = read(&t, "mlx4_0").unwrap().unwrap();
        assert_eq!(
            (
                d.board_id.as_str(),
                d.firmware_version.as_str(),
                d.hca_type.as_str()
            ),
            ("SM_1141000001000", "2.31.5050", "MT4099")
        );
        assert_eq!(d.ports.len(), 1);
        let v = &d.ports[0].values;
        assert_eq!(v[col("state_id")], Some(4));
        assert_eq!(v[col("physical_state_id")], Some(5));
        assert_eq!(v[col("rate_bytes_per_second")], Some(5_000_000_000));
        // Data counters count 32-bit words.
        assert_eq!(
            v[col("port_data_received_bytes_total")],
            Some(8_884_894_436)
        );
        assert_eq!(
            v[col("legacy_data_transmitted_bytes_total")],
            Some(106_036_453_180)
        );
        assert_eq!(v[col("legacy_unicast_packets_received_total")], Some(61148));
        assert_eq!(v[col("port_transmit_wait_total")], Some(3599));
        assert_eq!(v[col("vl15_dropped_total")], Some(0));
        // N/A (no PMA) and absent files are left out.
        assert_eq!(v[col("symbol_error_total")], None);
        assert_eq!(v[col("port_data_transmitted_bytes_total")], None);
        assert_eq!(v[col("lifespan_seconds")], None);
        assert_eq!(v.iter().flatten().count(), 8);
    }

    #[test]
    fn reads_hw_counters_whatever_the_device_is_called() {
        let t = TestTree::new("ib-hw");
        // A RoCE device renamed by systemd, with both directories; counters_ext is ignored
        // without counters.
        t.write("rocep1s0f0/fw_ver", "28.45.4028\n")
            .write("rocep1s0f0/ports/1/state", "1: DOWN\n")
            .write("rocep1s0f0/ports/1/phys_state", "3: Disabled\n")
            .write("rocep1s0f0/ports/1/rate", "200 Gb/sec (4X HDR)\n")
            .write("rocep1s0f0/ports/1/hw_counters/lifespan", "10\n")
            .write(
                "rocep1s0f0/ports/1/hw_counters/rx_write_requests",
                "354824\n",
            )
            .write("rocep1s0f0/ports/1/hw_counters/roce_slow_restart", "3\n")
            .write(
                "rocep1s0f0/ports/1/hw_counters/roce_slow_restart_trans",
                "4\n",
            )
            .write("rocep1s0f0/ports/1/hw_counters/unknown_counter", "x\n")
            .write("rocep1s0f0/ports/1/counters_ext/port_rcv_packets_64", "9\n");
        let d = read(&t, "rocep1s0f0").unwrap().unwrap();
        assert_eq!((d.board_id.as_str(), d.hca_type.as_str()), ("", ""));
        let v = &d.ports[0].values;
        assert_eq!(v[col("state_id")], Some(1));
        assert_eq!(v[col("rate_bytes_per_second")], Some(25_000_000_000));
        // Milliseconds in whole seconds: 10 ms is 0.
        assert_eq!(v[col("lifespan_seconds")], Some(0));
        assert_eq!(v[col("rx_write_requests_total")], Some(354_824));
        assert_eq!(v[col("roce_slow_restart_used_total")], Some(3));
        assert_eq!(v[col("roce_slow_restart_total")], Some(4));
        assert_eq!(v[col("legacy_packets_received_total")], None);
        t.write("rocep1s0f0/ports/1/counters/link_downed", "2\n");
        let d = read(&t, "rocep1s0f0").unwrap().unwrap();
        let v = &d.ports[0].values;
        assert_eq!(v[col("link_downed_total")], Some(2));
        assert_eq!(v[col("legacy_packets_received_total")], Some(9));
        assert_eq!(v[col("lifespan_seconds")], Some(0));
    }

    #[test]
    fn odd_devices_fail_with_the_file() {
        let t = TestTree::new("ib-odd");
        mlx4(&t);
        let bad = |rel: &str, content: &str, want: &str| {
            let path = t.path().join("mlx4_0").join(rel);
            let old = std::fs::read_to_string(&path).ok();
            t.write(&format!("mlx4_0/{rel}"), content);
            let e = read(&t, "mlx4_0").unwrap_err();
            assert!(e.contains(rel) && e.contains(want), "{rel}: {e}");
            match old {
                Some(old) => std::fs::write(&path, old).unwrap(),
                None => std::fs::remove_file(&path).unwrap(),
            }
        };
        bad("ports/1/state", "4 ACTIVE\n", "expected \"<id>: <name>\"");
        bad("ports/1/state", "4: ACTIVE: x\n", "expected");
        bad("ports/1/phys_state", "x: LinkUp\n", "invalid number \"x\"");
        bad("ports/1/rate", "fast\n", "expected");
        bad("ports/1/rate", "fast Gb/sec\n", "invalid rate");
        bad("ports/1/counters/link_downed", "12abc\n", "invalid number");
        bad(
            "ports/1/counters_ext/port_rcv_packets_64",
            "-1\n",
            "invalid",
        );
        read(&t, "mlx4_0").unwrap().unwrap();

        std::fs::remove_file(t.path().join("mlx4_0/ports/1/rate")).unwrap();
        let e = read(&t, "mlx4_0").unwrap_err();
        assert!(e.ends_with("ports/1/rate: missing"), "{e}");
        t.write("mlx4_0/ports/1/rate", "40 Gb/sec (4X QDR)\n");
        t.write("mlx4_0/ports/x/state", "4: ACTIVE\n");
        let e = read(&t, "mlx4_0").unwrap_err();
        assert!(e.contains("ports/x: port invalid number"), "{e}");
        std::fs::remove_dir_all(t.path().join("mlx4_0/ports")).unwrap();
        let e = read(&t, "mlx4_0").unwrap_err();
        assert!(e.ends_with("mlx4_0/ports: missing"), "{e}");
        std::fs::remove_file(t.path().join("mlx4_0/fw_ver")).unwrap();
        let e = read(&t, "mlx4_0").unwrap_err();
        assert!(e.ends_with("mlx4_0/fw_ver: missing"), "{e}");
        assert_eq!(read(&t, "gone").unwrap(), None);
    }

    #[test]
    fn states_and_rates() {
        assert_eq!(parse_state("4: ACTIVE").unwrap(), 4);
        assert_eq!(parse_state(" 5 :LinkUp").unwrap(), 5);
        assert!(parse_state("").is_err());
        assert!(parse_state(":").is_err());
        assert!(parse_state("+4: ACTIVE").is_err());
        assert!(parse_state("4294967296: x").is_err());
        assert_eq!(parse_rate("0 GB/sec").unwrap(), 0);
        assert_eq!(parse_rate("2.5 Gb/sec (1X SDR)").unwrap(), 312_500_000);
        assert_eq!(parse_rate("500 Gb/sec (4X HDR)").unwrap(), 62_500_000_000);
        assert_eq!(parse_rate("56 Gb/sec (4X FDR)").unwrap(), 7_000_000_000);
        assert!(parse_rate("100").is_err());
        assert!(parse_rate("").is_err());
        assert_eq!(parse_counter("N/A (no PMA)").unwrap(), None);
        assert_eq!(parse_counter("17").unwrap(), Some(17));
        assert!(parse_counter("N/A").is_err());
    }

    #[test]
    fn writes_families_in_name_order() {
        for pair in METRICS.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
        let t = TestTree::new("ib-write");
        mlx4(&t);
        t.write("mlx4_0/ports/2/state", "1: DOWN\n")
            .write("mlx4_0/ports/2/phys_state", "2: Polling\n")
            .write("mlx4_0/ports/2/rate", "10 Gb/sec (4X)\n")
            .write("hfi1_0/fw_ver", "1.27.0\n")
            .write("hfi1_0/board_id", "HPE 100Gb 1-port OP101\n")
            .write("hfi1_0/ports/1/state", "4: ACTIVE\n")
            .write("hfi1_0/ports/1/phys_state", "5: LinkUp\n")
            .write("hfi1_0/ports/1/rate", "100 Gb/sec (4X EDR)\n");
        let devices = [
            read(&t, "hfi1_0").unwrap().unwrap(),
            read(&t, "mlx4_0").unwrap().unwrap(),
        ];
        let mut out = Vec::new();
        write(
            &mut Encoder::new(&mut out, eos_exposition::Format::Text),
            &devices,
        );
        let out = String::from_utf8(out).unwrap();
        let names: Vec<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE node_infiniband_"))
            .collect();
        assert_eq!(
            names,
            [
                "info gauge",
                "legacy_data_transmitted_bytes_total counter",
                "legacy_unicast_packets_received_total counter",
                "physical_state_id gauge",
                "port_data_received_bytes_total counter",
                "port_transmit_wait_total counter",
                "rate_bytes_per_second gauge",
                "state_id gauge",
                "vl15_dropped_total counter",
            ]
        );
        assert!(out.contains(
            "node_infiniband_info{board_id=\"HPE 100Gb 1-port OP101\",device=\"hfi1_0\",firmware_version=\"1.27.0\",hca_type=\"\"} 1\n\
             node_infiniband_info{board_id=\"SM_1141000001000\",device=\"mlx4_0\",firmware_version=\"2.31.5050\",hca_type=\"MT4099\"} 1\n"
        ), "{out}");
        assert!(
            out.contains(
                "node_infiniband_state_id{device=\"hfi1_0\",port=\"1\"} 4\n\
             node_infiniband_state_id{device=\"mlx4_0\",port=\"1\"} 4\n\
             node_infiniband_state_id{device=\"mlx4_0\",port=\"2\"} 1\n"
            ),
            "{out}"
        );
        assert!(
            out.contains(
                "node_infiniband_rate_bytes_per_second{device=\"hfi1_0\",port=\"1\"} 1.25e+10\n"
            ),
            "{out}"
        );
    }
}
