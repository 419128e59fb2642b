//! `conntrack`: netfilter connection tracking table size (`/proc/sys/net/netfilter`) and
//! per-CPU statistics summed over CPUs (`/proc/net/stat/nf_conntrack`). Without the
//! nf_conntrack module nothing is written.

use eos_exposition::{Encoder, Kind};

use crate::collector::{parse_f64, read_trimmed, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "conntrack",
    default_enabled: true,
    build: |_, _| Ok(Box::new(ConntrackCollector)),
};

struct ConntrackCollector;

/// (column in the stat file, metric, help), in node_exporter's set.
const STATS: [(&str, &str, &str); 8] = [
    ("found", "node_nf_conntrack_stat_found", "Number of searched entries which were successful."),
    ("invalid", "node_nf_conntrack_stat_invalid", "Number of packets seen which can not be tracked."),
    ("ignore", "node_nf_conntrack_stat_ignore", "Number of packets seen which are already connected to a conntrack entry."),
    ("insert", "node_nf_conntrack_stat_insert", "Number of entries inserted into the list."),
    ("insert_failed", "node_nf_conntrack_stat_insert_failed", "Number of entries for which list insertion was attempted but failed."),
    ("drop", "node_nf_conntrack_stat_drop", "Number of packets dropped due to conntrack failure."),
    ("early_drop", "node_nf_conntrack_stat_early_drop", "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached."),
    ("search_restart", "node_nf_conntrack_stat_search_restart", "Number of conntrack table lookups which had to be restarted due to hashtable resizes."),
];

impl Collector for ConntrackCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let count_path = ctx.proc_path("sys/net/netfilter/nf_conntrack_count");
        let Some(count) = read_trimmed(&count_path)? else {
            return Ok(());
        };
        let count = parse_f64(&count, &count_path.display())?;
        let max_path = ctx.proc_path("sys/net/netfilter/nf_conntrack_max");
        let max = match read_trimmed(&max_path)? {
            Some(m) => Some(parse_f64(&m, &max_path.display())?),
            None => None,
        };
        enc.single(
            "node_nf_conntrack_entries",
            "Number of currently allocated flow entries for connection tracking.",
            Kind::Gauge,
            &[],
            count,
        );
        if let Some(max) = max {
            enc.single(
                "node_nf_conntrack_entries_limit",
                "Maximum size of connection tracking table.",
                Kind::Gauge,
                &[],
                max,
            );
        }
        let stat_path = ctx.proc_path("net/stat/nf_conntrack");
        if let Some(text) = ctx.read_optional(&stat_path)? {
            let sums = parse_stat(text)?;
            for (col, name, help) in STATS {
                if let Some(v) = sums.iter().find(|(c, _)| *c == col) {
                    enc.single(name, help, Kind::Gauge, &[], v.1 as f64);
                }
            }
        }
        Ok(())
    }
}

/// Sums each column of `/proc/net/stat/nf_conntrack` (a header line, then hex per CPU).
fn parse_stat(text: &str) -> Result<Vec<(&str, u64)>, String> {
    let mut lines = text.lines();
    let header = lines
        .next()
        .ok_or("parsing /proc/net/stat/nf_conntrack: empty file")?;
    let mut sums: Vec<(&str, u64)> = header.split_ascii_whitespace().map(|c| (c, 0)).collect();
    for (i, line) in lines.enumerate() {
        let mut n = 0;
        for ((_, sum), v) in sums.iter_mut().zip(line.split_ascii_whitespace()) {
            let v = u64::from_str_radix(v, 16).map_err(|_| {
                format!(
                    "parsing /proc/net/stat/nf_conntrack line {}: invalid hex {v:?}",
                    i + 2
                )
            })?;
            *sum = sum.wrapping_add(v);
            n += 1;
        }
        if n != sums.len() {
            return Err(format!(
                "parsing /proc/net/stat/nf_conntrack line {}: {n} columns, header has {}",
                i + 2,
                sums.len()
            ));
        }
    }
    Ok(sums)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_columns() {
        let s = parse_stat(
            "entries found drop\n00000002 0000000a 00000001\n00000002 00000001 00000000\n",
        )
        .unwrap();
        assert_eq!(s, vec![("entries", 4), ("found", 11), ("drop", 1)]);
    }

    #[test]
    fn malformed() {
        assert!(parse_stat("").is_err());
        assert!(parse_stat("a b\n1\n").unwrap_err().contains("line 2"));
        assert!(parse_stat("a\nzz\n").is_err());
    }
}
