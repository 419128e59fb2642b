//! `softnet`: per-CPU packet processing from `/proc/net/softnet_stat` (hex columns:
//! processed, dropped, time_squeeze).

use eos_exposition::{Encoder, Kind};

use crate::collector::{Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "softnet",
    default_enabled: true,
    build: |_, _| Ok(Box::new(SoftnetCollector)),
};

struct SoftnetCollector;

impl Collector for SoftnetCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let rows = parse_softnet(ctx.read_proc("net/softnet_stat")?)?;
        let labels: Vec<String> = (0..rows.len()).map(|i| i.to_string()).collect();
        let families = [
            (
                "node_softnet_processed_total",
                "Number of processed packets",
            ),
            ("node_softnet_dropped_total", "Number of dropped packets"),
            (
                "node_softnet_times_squeezed_total",
                "Number of times processing packets ran out of quota",
            ),
        ];
        for (col, (name, help)) in families.iter().enumerate() {
            let mut f = enc.family(name, help, Kind::Counter);
            for (row, cpu) in rows.iter().zip(&labels) {
                f.sample(&[("cpu", cpu)], row[col] as f64);
            }
        }
        Ok(())
    }
}

/// The first three hex columns of each line.
fn parse_softnet(text: &str) -> Result<Vec<[u64; 3]>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut row = [0u64; 3];
        let mut parts = line.split_ascii_whitespace();
        for slot in &mut row {
            let v = parts.next().ok_or_else(|| {
                format!(
                    "parsing /proc/net/softnet_stat line {}: fewer than 3 columns",
                    i + 1
                )
            })?;
            *slot = u64::from_str_radix(v, 16).map_err(|_| {
                format!(
                    "parsing /proc/net/softnet_stat line {}: invalid hex {v:?}",
                    i + 1
                )
            })?;
        }
        out.push(row);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let rows = parse_softnet(
            "00000770 00000001 0000000a 00000000\n00001615 00000000 00000000 00000000\n",
        )
        .unwrap();
        assert_eq!(rows, vec![[0x770, 1, 10], [0x1615, 0, 0]]);
        assert!(parse_softnet("0000 0001\n").unwrap_err().contains("line 1"));
        assert!(parse_softnet("zz 0 0\n").is_err());
    }
}
