//! `entropy`: the kernel's random pool from `/proc/sys/kernel/random/{entropy_avail,poolsize}`.

use eos_exposition::{Encoder, Kind};

use crate::collector::{Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "entropy",
    default_enabled: true,
    build: |_cfg, _paths| Ok(Box::new(EntropyCollector)),
};

struct EntropyCollector;

impl Collector for EntropyCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let path = ctx.proc_path("sys/kernel/random/entropy_avail");
        let avail = parse_bits(ctx.read(&path)?)
            .map_err(|e| format!("couldn't get entropy_avail: {}: {e}", path.display()))?;
        let path = ctx.proc_path("sys/kernel/random/poolsize");
        let pool = match ctx.read_optional(&path)? {
            Some(text) => Some(parse_bits(text).map_err(|e| format!("{}: {e}", path.display()))?),
            None => None,
        };
        enc.single(
            "node_entropy_available_bits",
            "Bits of available entropy.",
            Kind::Gauge,
            &[],
            avail as f64,
        );
        if let Some(pool) = pool {
            enc.single(
                "node_entropy_pool_size_bits",
                "Bits of entropy pool.",
                Kind::Gauge,
                &[],
                pool as f64,
            );
        }
        Ok(())
    }
}

/// Parses a one-number procfs file such as `256\n`.
fn parse_bits(text: &str) -> Result<u64, String> {
    let t = text.trim();
    t.parse().map_err(|_| format!("invalid number {t:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_numbers() {
        assert_eq!(parse_bits("256\n").unwrap(), 256);
        assert_eq!(parse_bits(" 4096 ").unwrap(), 4096);
        assert!(parse_bits("").is_err());
        assert!(parse_bits("-1\n").is_err());
        assert!(parse_bits("12 34\n").is_err());
    }
}
