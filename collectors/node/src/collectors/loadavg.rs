//! `loadavg`: `node_load1`, `node_load5`, `node_load15` from `/proc/loadavg`.

use eos_exposition::{Encoder, Kind};

use crate::collector::{parse_f64, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "loadavg",
    default_enabled: true,
    build: |_, _| Ok(Box::new(LoadavgCollector)),
};

struct LoadavgCollector;

impl Collector for LoadavgCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let [l1, l5, l15] = parse_loadavg(ctx.read_proc("loadavg")?)?;
        enc.single("node_load1", "1m load average.", Kind::Gauge, &[], l1);
        enc.single("node_load5", "5m load average.", Kind::Gauge, &[], l5);
        enc.single("node_load15", "15m load average.", Kind::Gauge, &[], l15);
        Ok(())
    }
}

/// Parses the first three fields of `/proc/loadavg`.
fn parse_loadavg(text: &str) -> Result<[f64; 3], String> {
    let mut fields = text.split_ascii_whitespace();
    let mut out = [0.0; 3];
    for (i, slot) in out.iter_mut().enumerate() {
        let f = fields
            .next()
            .ok_or_else(|| format!("parsing /proc/loadavg: expected 3 load fields, got {i}"))?;
        *slot = parse_f64(f, &"parsing /proc/loadavg")?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            parse_loadavg("0.02 1.50 10.00 1/234 5678\n").unwrap(),
            [0.02, 1.5, 10.0]
        );
    }

    #[test]
    fn malformed() {
        assert!(parse_loadavg("").is_err());
        assert!(parse_loadavg("0.1 0.2").unwrap_err().contains("got 2"));
        assert!(parse_loadavg("0.1 x 0.3").unwrap_err().contains("\"x\""));
    }
}
