//! Device selection by an include and an exclude pattern, as node_exporter's
//! `device_filter.go`: a device is dropped when the exclude pattern matches it or the include
//! pattern does not. Used by the collectors with `--collector.<name>.device-include/-exclude`
//! flags (arp, netdev, diskstats).

use eos_module::ConfigIssue;
use serde::{Deserialize, Serialize};

use crate::pattern::Pattern;
use crate::settings::Flag;

/// `device_include` / `device_exclude` of a collector's section.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DeviceFilter {
    /// Only devices matching this are reported.
    pub(crate) device_include: Option<Pattern>,
    /// Devices matching this are not reported.
    pub(crate) device_exclude: Option<Pattern>,
}

impl DeviceFilter {
    /// A filter excluding what `pattern` (one of our constant defaults) matches.
    pub(crate) fn excluding(pattern: &'static str) -> Self {
        DeviceFilter {
            device_include: None,
            device_exclude: Some(Pattern::new_static(pattern)),
        }
    }

    /// Whether `device` is left out.
    pub(crate) fn ignored(&self, device: &str) -> bool {
        self.device_exclude
            .as_ref()
            .is_some_and(|p| p.is_match(device))
            || self
                .device_include
                .as_ref()
                .is_some_and(|p| !p.is_match(device))
    }

    /// This filter with the include pattern, when set, replacing the exclude one (diskstats:
    /// its exclude pattern has a default, so an include given alone must not be combined
    /// with it).
    pub(crate) fn include_replaces_exclude(&self) -> Self {
        match &self.device_include {
            Some(_) => DeviceFilter {
                device_include: self.device_include.clone(),
                device_exclude: None,
            },
            None => self.clone(),
        }
    }

    /// Applies `device-include` / `device-exclude` and the older names node_exporter still
    /// accepts for them (`aliases`: `(old, new)`). `Ok(false)` for any other key.
    pub(crate) fn apply_flag(
        &mut self,
        flag: &Flag<'_>,
        aliases: &[(&str, &str)],
    ) -> Result<bool, String> {
        let key = aliases
            .iter()
            .find(|(old, _)| *old == flag.key)
            .map_or(flag.key, |(_, new)| *new);
        match key {
            "device-include" => self.device_include = flag.opt_pattern()?,
            "device-exclude" => self.device_exclude = flag.opt_pattern()?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Refuses both patterns at once, as node_exporter does for the collectors whose exclude
    /// pattern has no default (`collector` names their flags in the message).
    pub(crate) fn check_exclusive(&self, collector: &str) -> Result<(), ConfigIssue> {
        if self.device_include.is_some() && self.device_exclude.is_some() {
            return Err(ConfigIssue::at(
                "device_include",
                format!(
                    "device_include and device_exclude are mutually exclusive \
                     (--collector.{collector}.device-include/-exclude)"
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<Pattern> {
        Some(Pattern::new(s).unwrap())
    }

    #[test]
    fn include_and_exclude() {
        let none = DeviceFilter::default();
        assert!(!none.ignored("eth0"));
        let ex = DeviceFilter {
            device_include: None,
            device_exclude: p("^lo$"),
        };
        assert!(ex.ignored("lo") && !ex.ignored("eth0") && !ex.ignored("lo0"));
        let inc = DeviceFilter {
            device_include: p("^eth"),
            device_exclude: None,
        };
        assert!(!inc.ignored("eth0") && inc.ignored("lo"));
        // Both (allowed for diskstats before `include_replaces_exclude`): either drops.
        let both = DeviceFilter {
            device_include: p("^sd"),
            device_exclude: p("\\d$"),
        };
        assert!(both.ignored("sda1") && both.ignored("nvme0n1") && !both.ignored("sda"));
        let replaced = both.include_replaces_exclude();
        assert!(!replaced.ignored("sda1") && replaced.ignored("nvme0n1"));
        assert_eq!(ex.include_replaces_exclude(), ex);
    }

    #[test]
    fn flags() {
        let mut f = DeviceFilter::excluding("^lo$");
        let flag = |key, value| Flag {
            name: "collector.netdev.x",
            key,
            negated: false,
            value: Some(value),
        };
        let aliases = [("device-blacklist", "device-exclude")];
        assert!(f
            .apply_flag(&flag("device-include", "^e"), &aliases)
            .unwrap());
        assert!(f.check_exclusive("netdev").is_err());
        assert!(f
            .apply_flag(&flag("device-blacklist", ""), &aliases)
            .unwrap());
        assert_eq!(f.device_exclude, None);
        assert!(f.check_exclusive("netdev").is_ok());
        assert!(!f.apply_flag(&flag("other", "x"), &aliases).unwrap());
        let e = f
            .apply_flag(&flag("device-exclude", "("), &aliases)
            .unwrap_err();
        assert!(e.starts_with("--collector.netdev.x: invalid regex"), "{e}");
        let e = DeviceFilter {
            device_include: p("a"),
            device_exclude: p("b"),
        }
        .check_exclusive("arp")
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "device_include: device_include and device_exclude are mutually exclusive \
             (--collector.arp.device-include/-exclude)"
        );
    }
}
