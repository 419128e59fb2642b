//! `pressure`: pressure stall information from `/proc/pressure/{cpu,io,memory}` as
//! `node_pressure_*_seconds_total`. A kernel without PSI has no such files: nothing is written.

use eos_exposition::{Encoder, Kind};

use crate::collector::{parse_f64, At, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "pressure",
    default_enabled: true,
    build: |_, _| Ok(Box::new(PressureCollector)),
};

struct PressureCollector;

/// (resource, "some" family + help, "full" family + help; None when node_exporter skips it).
type Resource = (
    &'static str,
    (&'static str, &'static str),
    Option<(&'static str, &'static str)>,
);

const RESOURCES: [Resource; 3] = [
    (
        "cpu",
        (
            "node_pressure_cpu_waiting_seconds_total",
            "Total time in seconds that processes have waited for CPU time",
        ),
        None,
    ),
    (
        "io",
        (
            "node_pressure_io_waiting_seconds_total",
            "Total time in seconds that processes have waited due to IO congestion",
        ),
        Some((
            "node_pressure_io_stalled_seconds_total",
            "Total time in seconds no process could make progress due to IO congestion",
        )),
    ),
    (
        "memory",
        (
            "node_pressure_memory_waiting_seconds_total",
            "Total time in seconds that processes have waited for memory",
        ),
        Some((
            "node_pressure_memory_stalled_seconds_total",
            "Total time in seconds no process could make progress due to memory congestion",
        )),
    ),
];

impl Collector for PressureCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        for (res, (some_name, some_help), full) in RESOURCES {
            let path = ctx.proc_path(&format!("pressure/{res}"));
            let Some(text) = ctx.read_optional(&path)? else {
                continue;
            };
            let (some, full_total) = parse_psi(text, &path.display().to_string())?;
            enc.single(some_name, some_help, Kind::Counter, &[], some);
            if let (Some((name, help)), Some(v)) = (full, full_total) {
                enc.single(name, help, Kind::Counter, &[], v);
            }
        }
        Ok(())
    }
}

/// Returns the `some` and `full` totals (in seconds) of a PSI file.
fn parse_psi(text: &str, file: &str) -> Result<(f64, Option<f64>), String> {
    let mut some = None;
    let mut full = None;
    for (i, line) in text.lines().enumerate() {
        let at = At(file, i + 1);
        let mut parts = line.split_ascii_whitespace();
        let slot = match parts.next() {
            Some("some") => &mut some,
            Some("full") => &mut full,
            _ => continue,
        };
        let total = parts
            .find_map(|p| p.strip_prefix("total="))
            .ok_or_else(|| format!("{at}: no total="))?;
        *slot = Some(parse_f64(total, &at)? / 1e6);
    }
    let some = some.ok_or_else(|| format!("parsing {file}: no 'some' line"))?;
    Ok((some, full))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let (s, f) = parse_psi(
            "some avg10=2.32 avg60=2.53 avg300=1.81 total=17058758\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=5\n",
            "x",
        )
        .unwrap();
        assert_eq!(s, 17.058758);
        assert_eq!(f, Some(5e-6));
        let (_, f) = parse_psi("some avg10=0 total=1\n", "x").unwrap();
        assert_eq!(f, None);
    }

    #[test]
    fn malformed() {
        assert!(parse_psi("", "x").is_err());
        assert!(parse_psi("some avg10=1\n", "x")
            .unwrap_err()
            .contains("line 1"));
        assert!(parse_psi("some total=abc\n", "x").is_err());
    }
}
