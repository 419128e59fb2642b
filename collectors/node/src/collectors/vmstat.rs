//! `vmstat`: `/proc/vmstat` fields selected by `--collector.vmstat.fields`, as untyped
//! `node_vmstat_<field>`.

use eos_exposition::{Encoder, Kind};
use std::sync::Mutex;

use crate::collector::in_procfs;
use crate::collector::{parse_f64, At, Collector, CollectorDef, Ctx, MatchCache};
use crate::pattern::Pattern;
use crate::settings::{CollectorSettings, Flag};
use serde::{Deserialize, Serialize};

pub(crate) const DEF: CollectorDef<Settings> = CollectorDef {
    name: "vmstat",
    default_enabled: true,
    build: |settings, _| {
        Ok(Box::new(VmstatCollector {
            fields: Mutex::new(MatchCache::new(settings.fields.clone())),
        }))
    },
};

/// node_exporter's default for `--collector.vmstat.fields`.
const DEFAULT_FIELDS: &str = "^(oom_kill|pgpg|pswp|pg.*fault).*";

/// `modules.node.vmstat`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settings {
    /// The fields exported, matched against the metric's name suffix
    /// (`--collector.vmstat.fields`).
    pub(crate) fields: Pattern,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            fields: Pattern::new_static(DEFAULT_FIELDS),
        }
    }
}

impl CollectorSettings for Settings {
    const FLAG_PREFIXES: &'static [&'static str] = &["vmstat"];
    const HELP: &'static str = "  --collector.vmstat.fields=RE             fields exported
";

    fn apply_flag(&mut self, flag: &Flag<'_>) -> Result<bool, String> {
        match flag.key {
            "fields" => self.fields = flag.pattern()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

struct VmstatCollector {
    fields: Mutex<MatchCache>,
}

impl Collector for VmstatCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let paths = ctx.paths;
        let mut fields = self
            .fields
            .lock()
            .map_err(|_| "vmstat state poisoned".to_string())?;
        let text = ctx.read_proc("vmstat")?;
        let mut name = String::with_capacity(64);
        let mut help = String::with_capacity(96);
        for (i, line) in text.lines().enumerate() {
            let Some((key, value)) = parse_line(line, i + 1).map_err(|e| in_procfs(paths, e))?
            else {
                continue;
            };
            if !fields.matches(i, key) {
                continue;
            }
            name.clear();
            name.push_str("node_vmstat_");
            name.push_str(key);
            help.clear();
            help.push_str("/proc/vmstat information field ");
            help.push_str(key);
            help.push('.');
            enc.single(&name, &help, Kind::Untyped, &[], value);
        }
        Ok(())
    }
}

/// One `key value` line; `None` for a blank line.
fn parse_line(line: &str, lineno: usize) -> Result<Option<(&str, f64)>, String> {
    let at = At("/proc/vmstat", lineno);
    let mut parts = line.split_ascii_whitespace();
    let Some(key) = parts.next() else {
        return Ok(None);
    };
    let value = parts.next().ok_or_else(|| format!("{at}: no value"))?;
    Ok(Some((key, parse_f64(value, &at)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        assert_eq!(
            parse_line("pgfault 42", 1).unwrap(),
            Some(("pgfault", 42.0))
        );
        assert_eq!(parse_line("", 1).unwrap(), None);
        assert!(parse_line("pgfault", 3).unwrap_err().contains("line 3"));
        assert!(parse_line("pgfault x", 3).is_err());
    }
}
