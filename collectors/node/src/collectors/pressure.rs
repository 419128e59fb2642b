//! `pressure`: pressure stall information from `/proc/pressure/{cpu,io,memory,irq}` as
//! `node_pressure_*_seconds_total`. A kernel without PSI has no such files: nothing is written.

use eos_exposition::{Encoder, Kind};

use crate::collector::{parse_f64, At, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "pressure",
    default_enabled: true,
    build: |_, _| Ok(Box::new(PressureCollector)),
};

struct PressureCollector;

/// A family: name and help.
type Family = (&'static str, &'static str);

/// (resource, "some" family, "full" family), `None` where node_exporter has none: CPU
/// "full" is not exported, and IRQ pressure (kernel 6.1+) has only a "full" line.
const RESOURCES: [(&str, Option<Family>, Option<Family>); 4] = [
    (
        "cpu",
        Some((
            "node_pressure_cpu_waiting_seconds_total",
            "Total time in seconds that processes have waited for CPU time",
        )),
        None,
    ),
    (
        "io",
        Some((
            "node_pressure_io_waiting_seconds_total",
            "Total time in seconds that processes have waited due to IO congestion",
        )),
        Some((
            "node_pressure_io_stalled_seconds_total",
            "Total time in seconds no process could make progress due to IO congestion",
        )),
    ),
    (
        "memory",
        Some((
            "node_pressure_memory_waiting_seconds_total",
            "Total time in seconds that processes have waited for memory",
        )),
        Some((
            "node_pressure_memory_stalled_seconds_total",
            "Total time in seconds no process could make progress due to memory congestion",
        )),
    ),
    (
        "irq",
        None,
        Some((
            "node_pressure_irq_stalled_seconds_total",
            "Total time in seconds no process could make progress due to IRQ congestion",
        )),
    ),
];

impl Collector for PressureCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        for (res, some_family, full_family) in RESOURCES {
            let path = ctx.proc_path(&format!("pressure/{res}"));
            let Some(text) = ctx.read_optional(&path)? else {
                continue;
            };
            let file = path.display().to_string();
            let (some, full) = parse_psi(text, &file)?;
            if let Some((name, help)) = some_family {
                let v = some.ok_or_else(|| format!("parsing {file}: no 'some' line"))?;
                enc.single(name, help, Kind::Counter, &[], v);
            }
            match (full_family, full) {
                (Some((name, help)), Some(v)) => enc.single(name, help, Kind::Counter, &[], v),
                // IRQ pressure is nothing but its "full" line.
                (Some(_), None) if some_family.is_none() => {
                    return Err(format!("parsing {file}: no 'full' line"))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Returns the `some` and `full` totals (in seconds) of a PSI file.
fn parse_psi(text: &str, file: &str) -> Result<(Option<f64>, Option<f64>), String> {
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
        assert_eq!(s, Some(17.058758));
        assert_eq!(f, Some(5e-6));
        let (_, f) = parse_psi("some avg10=0 total=1\n", "x").unwrap();
        assert_eq!(f, None);
        // /proc/pressure/irq: only "full".
        let irq = parse_psi(
            "full avg10=0.00 avg60=0.00 avg300=0.00 total=1234567\n",
            "x",
        );
        assert_eq!(irq.unwrap(), (None, Some(1.234567)));
        assert_eq!(parse_psi("", "x").unwrap(), (None, None));
    }

    #[test]
    fn collects_irq_pressure() {
        let t = crate::collectors::test_tree::TestTree::new("pressure");
        t.write(
            "pressure/cpu",
            "some avg10=0.00 avg60=0.00 avg300=0.00 total=2000000\n",
        )
        .write(
            "pressure/irq",
            "full avg10=0.00 avg60=0.00 avg300=0.00 total=500000\n",
        );
        let paths = eos_module::HostPaths {
            procfs: t.path().to_path_buf(),
            ..eos_module::HostPaths::default()
        };
        let scrape = || {
            let (mut buf, mut out) = (Vec::new(), Vec::new());
            let mut enc = Encoder::new(&mut out, eos_exposition::Format::Text);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            PressureCollector
                .update(&mut enc, &mut Ctx::new(&paths, deadline, &mut buf))
                .map(|()| String::from_utf8(out).unwrap())
        };
        let out = scrape().unwrap();
        assert!(
            out.contains("node_pressure_cpu_waiting_seconds_total 2\n"),
            "{out}"
        );
        assert!(
            out.contains("node_pressure_irq_stalled_seconds_total 0.5\n"),
            "{out}"
        );
        t.write("pressure/irq", "some avg10=0.00 total=1\n");
        assert!(scrape()
            .unwrap_err()
            .ends_with("pressure/irq: no 'full' line"));
        t.write("pressure/irq", "full avg10=0.00 total=1\n")
            .write("pressure/cpu", "full avg10=0.00 total=1\n");
        assert!(scrape()
            .unwrap_err()
            .ends_with("pressure/cpu: no 'some' line"));
    }

    #[test]
    fn malformed() {
        assert!(parse_psi("some avg10=1\n", "x")
            .unwrap_err()
            .contains("line 1"));
        assert!(parse_psi("some total=abc\n", "x").is_err());
    }
}
