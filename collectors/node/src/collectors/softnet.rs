//! `softnet`: per-CPU packet processing from `/proc/net/softnet_stat`, as node_exporter
//! 1.12: processed, dropped, time_squeezed, cpu_collision, received_rps, flow_limit_count
//! (counters) and the backlog length (gauge), labelled with the CPU the row belongs to.

use eos_exposition::{Encoder, Kind};

use crate::collector::{in_procfs, At, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "softnet",
    default_enabled: true,
    build: |_, _| Ok(Box::new(SoftnetCollector)),
};

struct SoftnetCollector;

/// One `/proc/net/softnet_stat` row, the fields node_exporter reads (procfs `SoftnetStat`).
#[derive(Debug, Default, PartialEq)]
struct Softnet {
    /// The CPU owning the row: the 13th column on kernels since 5.14, else the line number.
    cpu: u32,
    processed: u32,
    dropped: u32,
    time_squeezed: u32,
    cpu_collision: u32,
    received_rps: u32,
    flow_limit_count: u32,
    backlog_len: u32,
}

/// (metric, help, counter?, field), node_exporter's families in its order.
type Field = fn(&Softnet) -> u32;
const FAMILIES: [(&str, &str, bool, Field); 7] = [
    (
        "node_softnet_processed_total",
        "Number of processed packets",
        true,
        |s| s.processed,
    ),
    (
        "node_softnet_dropped_total",
        "Number of dropped packets",
        true,
        |s| s.dropped,
    ),
    (
        "node_softnet_times_squeezed_total",
        "Number of times processing packets ran out of quota",
        true,
        |s| s.time_squeezed,
    ),
    (
        "node_softnet_cpu_collision_total",
        "Number of collision occur while obtaining device lock while transmitting",
        true,
        |s| s.cpu_collision,
    ),
    (
        "node_softnet_received_rps_total",
        "Number of times cpu woken up received_rps",
        true,
        |s| s.received_rps,
    ),
    (
        "node_softnet_flow_limit_count_total",
        "Number of times flow limit has been reached",
        true,
        |s| s.flow_limit_count,
    ),
    (
        "node_softnet_backlog_len",
        "Softnet backlog status",
        false,
        |s| s.backlog_len,
    ),
];

impl Collector for SoftnetCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let rows = parse_softnet(ctx.read_proc("net/softnet_stat")?)
            .map_err(|e| in_procfs(ctx.paths, e))?;
        let labels: Vec<String> = rows.iter().map(|r| r.cpu.to_string()).collect();
        for (name, help, counter, field) in FAMILIES {
            let kind = if counter { Kind::Counter } else { Kind::Gauge };
            let mut f = enc.family(name, help, kind);
            for (row, cpu) in rows.iter().zip(&labels) {
                f.sample(&[("cpu", cpu)], f64::from(field(row)));
            }
        }
        Ok(())
    }
}

/// Parses `/proc/net/softnet_stat`: one line per CPU of 32-bit hex columns. The columns
/// grew with the kernel (9 until 2.6.39, then `received_rps`, `flow_limit_count` in 4.18,
/// backlog length and CPU index in 5.14, queue lengths in 6.x); missing ones read as 0, as
/// in node_exporter (procfs), and fewer than 9 is an error.
fn parse_softnet(text: &str) -> Result<Vec<Softnet>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let at = At("/proc/net/softnet_stat", i + 1);
        let cols = line
            .split_ascii_whitespace()
            .map(|v| u32::from_str_radix(v, 16).map_err(|_| format!("{at}: invalid hex {v:?}")))
            .collect::<Result<Vec<u32>, String>>()?;
        if cols.len() < 9 {
            return Err(format!("{at}: {} columns, expected at least 9", cols.len()));
        }
        let col = |n: usize| cols.get(n).copied().unwrap_or(0);
        let line_cpu = u32::try_from(i).map_err(|_| format!("{at}: too many lines"))?;
        out.push(Softnet {
            cpu: if cols.len() >= 13 { col(12) } else { line_cpu },
            processed: col(0),
            dropped: col(1),
            time_squeezed: col(2),
            cpu_collision: col(8),
            received_rps: col(9),
            flow_limit_count: col(10),
            backlog_len: if cols.len() >= 13 { col(11) } else { 0 },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_5_14_rows_name_their_cpu() {
        // CPU 1 offline: the second row belongs to CPU 2 (13th column).
        let rows = parse_softnet(
            "00000770 00000001 0000000a 00000000 00000000 00000000 00000000 00000000 00000003 00000004 00000005 00000006 00000000\n\
             00001615 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 000000dc 00000002 00000007 00000008\n",
        )
        .unwrap();
        assert_eq!(
            rows[0],
            Softnet {
                cpu: 0,
                processed: 0x770,
                dropped: 1,
                time_squeezed: 10,
                cpu_collision: 3,
                received_rps: 4,
                flow_limit_count: 5,
                backlog_len: 6,
            }
        );
        assert_eq!((rows[1].cpu, rows[1].backlog_len), (2, 0xdc));
    }

    #[test]
    fn old_kernels_number_rows_by_line() {
        // 2.6.23 (9 columns) and 4.18 (11): no index, no backlog.
        let rows = parse_softnet(
            "00000001 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000009\n\
             00000002 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 0000000a 0000000b\n",
        )
        .unwrap();
        assert_eq!(
            (rows[0].cpu, rows[0].cpu_collision, rows[0].received_rps),
            (0, 9, 0)
        );
        assert_eq!(
            (
                rows[1].cpu,
                rows[1].received_rps,
                rows[1].flow_limit_count,
                rows[1].backlog_len
            ),
            (1, 10, 11, 0)
        );
    }

    #[test]
    fn malformed() {
        let e = parse_softnet("0000 0001 0002\n").unwrap_err();
        assert_eq!(
            e,
            "parsing /proc/net/softnet_stat line 1: 3 columns, expected at least 9"
        );
        let e = parse_softnet("zz 0 0 0 0 0 0 0 0\n").unwrap_err();
        assert!(e.contains("invalid hex \"zz\""), "{e}");
        // More than 32 bits: procfs parses 32-bit columns.
        assert!(parse_softnet("100000000 0 0 0 0 0 0 0 0\n").is_err());
        assert!(parse_softnet("").unwrap().is_empty());
    }
}
