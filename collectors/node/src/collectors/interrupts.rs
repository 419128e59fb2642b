//! `interrupts` (off by default): per-CPU interrupt counts from `/proc/interrupts`, one
//! series per interrupt and CPU, labelled with the interrupt's type, info and devices.
//!
//! As in node_exporter 1.9+, `--collector.interrupts.name-include` / `-name-exclude` select
//! interrupts by `<type>;<info>;<devices>` (`24;IO-APIC;5-edge ACPI:Ged`,
//! `LOC;Local timer interrupts;`), and `--no-collector.interrupts.include-zeros` leaves out
//! the series whose count is 0.

use eos_exposition::{Encoder, Kind};

use crate::collector::{parse_f64, Collector, CollectorDef, Ctx};
use crate::device_filter::DeviceFilter;
use crate::pattern::Pattern;
use crate::settings::{CollectorSettings, Flag};
use serde::{Deserialize, Serialize};

pub(crate) const DEF: CollectorDef<Settings> = CollectorDef {
    name: "interrupts",
    default_enabled: false,
    build: |settings, _paths| {
        Ok(Box::new(InterruptsCollector {
            names: DeviceFilter {
                device_include: settings.name_include.clone(),
                device_exclude: settings.name_exclude.clone(),
            },
            include_zeros: settings.include_zeros,
        }))
    },
};

/// `modules.node.interrupts`: node_exporter's name filters (none by default) and whether
/// zero counts are reported.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settings {
    /// Only interrupts whose `<type>;<info>;<devices>` matches are reported
    /// (`--collector.interrupts.name-include`).
    pub(crate) name_include: Option<Pattern>,
    /// Interrupts whose `<type>;<info>;<devices>` matches are not reported
    /// (`--collector.interrupts.name-exclude`).
    pub(crate) name_exclude: Option<Pattern>,
    /// Report counts of 0 (`--[no-]collector.interrupts.include-zeros`, default on).
    pub(crate) include_zeros: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            name_include: None,
            name_exclude: None,
            include_zeros: true,
        }
    }
}

impl CollectorSettings for Settings {
    const FLAG_PREFIXES: &'static [&'static str] = &["interrupts"];
    const HELP: &'static str =
        "  --collector.interrupts.name-include=RE, --collector.interrupts.name-exclude=RE
                                 (matched against \"<type>;<info>;<devices>\")
  --[no-]collector.interrupts.include-zeros   series with a count of 0 (default on)
";

    fn apply_flag(&mut self, flag: &Flag<'_>) -> Result<bool, String> {
        match flag.key {
            "name-include" => self.name_include = flag.opt_pattern()?,
            "name-exclude" => self.name_exclude = flag.opt_pattern()?,
            "include-zeros" => self.include_zeros = flag.bool()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

struct InterruptsCollector {
    /// Selects interrupts by `<type>;<info>;<devices>`; node_exporter applies both patterns
    /// when both are given.
    names: DeviceFilter,
    /// Whether series with a count of 0 are written.
    include_zeros: bool,
}

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
        let mut filter_name = String::new();
        for row in &rows {
            filter_name.clear();
            filter_name.push_str(row.name);
            filter_name.push(';');
            filter_name.push_str(&row.info);
            filter_name.push(';');
            filter_name.push_str(&row.devices);
            if self.names.ignored(&filter_name) {
                continue;
            }
            for (cpu, v) in row.values.iter().enumerate() {
                if *v == 0.0 && !self.include_zeros {
                    continue;
                }
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

    /// The collector built from `flags` (`key=value`, or `no-key`) over a tree whose
    /// `/proc/interrupts` is [`FIXTURE`]: the sample lines of one update.
    fn scrape(flags: &[&str]) -> Vec<String> {
        let mut settings = Settings::default();
        for f in flags {
            let (negated, f) = match f.strip_prefix("no-") {
                Some(rest) => (true, rest),
                None => (false, *f),
            };
            let (key, value) = match f.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (f, None),
            };
            let flag = Flag {
                name: "collector.interrupts.x",
                key,
                negated,
                value,
            };
            assert!(settings.apply_flag(&flag).unwrap(), "{key}");
        }
        let tree = crate::collectors::test_tree::TestTree::new(&format!("irq-{}", flags.len()));
        tree.write("interrupts", FIXTURE);
        let paths = eos_module::HostPaths {
            procfs: tree.path().to_path_buf(),
            ..eos_module::HostPaths::default()
        };
        let collector = (DEF.build)(&settings, &paths).unwrap();
        let mut buf = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, eos_exposition::Format::Text);
        collector
            .update(&mut enc, &mut Ctx::new(&paths, deadline, &mut buf))
            .unwrap();
        drop(enc);
        String::from_utf8(out)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn name_filters_and_zeros() {
        assert_eq!(scrape(&[]).len(), 10);
        // Matched against `<type>;<info>;<devices>`.
        let only_apic = scrape(&["name-include=;IO-APIC;"]);
        assert_eq!(only_apic.len(), 4, "{only_apic:?}");
        assert!(only_apic.iter().all(|l| l.contains("info=\"IO-APIC\"")));
        let no_named = scrape(&["name-exclude=^[A-Z]+;"]);
        assert_eq!(no_named.len(), 6, "{no_named:?}");
        assert!(!no_named.iter().any(|l| l.contains("type=\"LOC\"")));
        // Both given: both apply.
        let both = scrape(&["name-include=edge", "name-exclude=timer$"]);
        assert_eq!(both.len(), 4, "{both:?}");
        assert!(!both.iter().any(|l| l.contains("type=\"0\"")));
        // Zero counts left out; `=` without a value unsets a pattern.
        let nonzero = scrape(&["no-include-zeros", "name-exclude="]);
        assert_eq!(
            nonzero,
            [
                "node_interrupts_total{cpu=\"0\",devices=\"\",info=\"Local timer interrupts\",type=\"LOC\"} 2.247372e+06",
                "node_interrupts_total{cpu=\"0\",devices=\"\",info=\"Non-maskable interrupts\",type=\"NMI\"} 47",
                "node_interrupts_total{cpu=\"0\",devices=\"2-edge timer\",info=\"IO-APIC\",type=\"0\"} 31",
                "node_interrupts_total{cpu=\"0\",devices=\"5-edge ACPI:Ged\",info=\"IO-APIC\",type=\"24\"} 1",
                "node_interrupts_total{cpu=\"1\",devices=\"\",info=\"Local timer interrupts\",type=\"LOC\"} 1.875654e+06",
                "node_interrupts_total{cpu=\"1\",devices=\"\",info=\"Non-maskable interrupts\",type=\"NMI\"} 13",
            ]
        );
        assert_eq!(scrape(&["include-zeros=true"]).len(), 10);
    }

    #[test]
    fn settings_flags() {
        let mut s = Settings::default();
        assert!(s.include_zeros && s.name_include.is_none());
        let flag = |key, value| Flag {
            name: "collector.interrupts.x",
            key,
            negated: false,
            value,
        };
        assert!(!s.apply_flag(&flag("device-include", Some("x"))).unwrap());
        let e = s.apply_flag(&flag("name-include", Some("("))).unwrap_err();
        assert!(
            e.starts_with("--collector.interrupts.x: invalid regex"),
            "{e}"
        );
        assert!(s.apply_flag(&flag("include-zeros", Some("maybe"))).is_err());
        assert!(Settings::HELP.lines().all(|l| l.len() <= 100));
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
