//! `interrupts` (off by default): per-CPU interrupt counts from `/proc/interrupts`, one
//! series per interrupt and CPU, labelled with the interrupt's type, info and devices.

use eos_exposition::{Encoder, Kind};

use crate::collector::{parse_f64, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "interrupts",
    default_enabled: false,
    build: |_cfg, _paths| Ok(Box::new(InterruptsCollector)),
};

struct InterruptsCollector;

/// One row of `/proc/interrupts`.
#[derive(Debug, PartialEq)]
struct Interrupt<'a> {
    /// `24`, `LOC`, `NMI`...
    name: &'a str,
    /// The controller (numbered interrupts) or the description (named ones).
    info: String,
    /// The devices on a numbered interrupt.
    devices: String,
    /// One count per CPU.
    values: Vec<f64>,
}

impl Collector for InterruptsCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let path = ctx.proc_path("interrupts");
        let text = ctx.read(&path)?;
        let rows = parse_interrupts(text).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut series: Vec<(String, &Interrupt, f64)> = Vec::new();
        for row in &rows {
            for (cpu, v) in row.values.iter().enumerate() {
                series.push((cpu.to_string(), row, *v));
            }
        }
        // Label-value order: cpu (as text), devices, info, type.
        series.sort_by(|a, b| {
            (&a.0, &a.1.devices, &a.1.info, a.1.name).cmp(&(
                &b.0,
                &b.1.devices,
                &b.1.info,
                b.1.name,
            ))
        });
        let mut fam = enc.family("node_interrupts_total", "Interrupt details.", Kind::Counter);
        for (cpu, row, v) in &series {
            fam.sample(
                &[
                    ("cpu", cpu),
                    ("devices", &row.devices),
                    ("info", &row.info),
                    ("type", row.name),
                ],
                *v,
            );
        }
        Ok(())
    }
}

/// Parses `/proc/interrupts`: a header with one column per CPU, then one row per interrupt.
/// Rows with fewer counts than CPUs (`ERR`, `MIS`) are skipped, as node_exporter does.
fn parse_interrupts(text: &str) -> Result<Vec<Interrupt<'_>>, String> {
    let mut lines = text.lines();
    let cpus = lines
        .next()
        .ok_or("interrupts empty")?
        .split_ascii_whitespace()
        .count();
    let mut out: Vec<Interrupt> = Vec::new();
    for (i, line) in lines.enumerate() {
        // aarch64 may put no space between the name and the first count.
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let parts: Vec<&str> = rest.split_ascii_whitespace().collect();
        if parts.len() < cpus + 1 {
            continue;
        }
        let (counts, details) = parts.split_at(cpus);
        let at = || format!("line {}", i + 2);
        let values = counts
            .iter()
            .map(|c| parse_f64(c, &at()))
            .collect::<Result<Vec<f64>, String>>()?;
        let name = name.trim_start_matches(' ');
        let (info, devices) = if name.parse::<i64>().is_ok() {
            let (first, more) = details.split_first().unwrap_or((&"", &[]));
            (first.to_string(), more.join(" "))
        } else {
            (details.join(" "), String::new())
        };
        let row = Interrupt {
            name,
            info,
            devices,
            values,
        };
        // A repeated name replaces the earlier row, as in node_exporter's map.
        match out.iter_mut().find(|r| r.name == name) {
            Some(existing) => *existing = row,
            None => out.push(row),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "           CPU0       CPU1
  0:         31          0   IO-APIC   2-edge      timer
 24:          1          0  IO-APIC   5-edge      ACPI:Ged
 28:          0          0 PCI-MSIX-0000:00:01.0   0-edge      virtio0-config
NMI:         47         13   Non-maskable interrupts
LOC:    2247372    1875654   Local timer interrupts
ERR:          0
MIS:          0
";

    #[test]
    fn parses_rows() {
        let rows = parse_interrupts(FIXTURE).unwrap();
        assert_eq!(rows.len(), 5);
        assert_eq!(
            rows[1],
            Interrupt {
                name: "24",
                info: "IO-APIC".into(),
                devices: "5-edge ACPI:Ged".into(),
                values: vec![1.0, 0.0],
            }
        );
        assert_eq!(rows[3].info, "Non-maskable interrupts");
        assert_eq!(rows[3].devices, "");
        assert_eq!(rows[4].values, vec![2247372.0, 1875654.0]);
    }

    #[test]
    fn aarch64_without_space() {
        let rows = parse_interrupts("  CPU0\nIPI0:12 Rescheduling interrupts\n").unwrap();
        assert_eq!(rows[0].name, "IPI0");
        assert_eq!(rows[0].values, vec![12.0]);
        assert_eq!(rows[0].info, "Rescheduling interrupts");
    }

    #[test]
    fn bad_input() {
        assert!(parse_interrupts("").is_err());
        let e = parse_interrupts("CPU0 CPU1\n 1: 5 x edge dev\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        assert!(parse_interrupts("CPU0\nno colon here\n")
            .unwrap()
            .is_empty());
    }
}
