//! What a collector with settings provides: its YAML section (`modules.node.<name>`), its
//! node_exporter flags (`--collector.<name>.<key>`) and their `--help` lines. `config.rs`
//! composes these from the list in `registry.rs`; nothing else names a collector's settings.

use eos_module::{ConfigIssue, Duration};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt;

use crate::pattern::Pattern;

/// A collector's settings. The type is named `Settings` in the collector's file and listed as
/// `name(Settings)` in `registry.rs`; its YAML key is the collector's name.
pub(crate) trait CollectorSettings:
    Default + Clone + fmt::Debug + PartialEq + Serialize + DeserializeOwned
{
    /// The `<prefix>` of this collector's `--collector.<prefix>.<key>` flags: the collector's
    /// name, plus any older name node_exporter still accepts (`powersupply`).
    const FLAG_PREFIXES: &'static [&'static str];
    /// `--help` lines, each starting with two spaces and ending with a newline.
    const HELP: &'static str;

    /// Applies one flag. `Ok(false)`: `flag.key` is not one of this collector's settings.
    fn apply_flag(&mut self, flag: &Flag<'_>) -> Result<bool, String>;

    /// Checks what serde cannot (settings that exclude each other, zero durations). Paths
    /// are relative to the collector's section.
    fn validate(&self) -> Result<(), ConfigIssue> {
        Ok(())
    }
}

/// One `--[no-]collector.<prefix>.<key>[=value]` flag, handed to the collector it names.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Flag<'a> {
    /// The whole flag name without dashes, for messages (`collector.cpu.guest`).
    pub(crate) name: &'a str,
    /// What follows `<prefix>.` (`guest`).
    pub(crate) key: &'a str,
    /// Given as `--no-collector.…`.
    pub(crate) negated: bool,
    /// The `=value` part, if any.
    pub(crate) value: Option<&'a str>,
}

impl Flag<'_> {
    /// A boolean: no value means true, as with kingpin; `--no-` inverts it.
    pub(crate) fn bool(&self) -> Result<bool, String> {
        let on = match self.value {
            None | Some("true" | "1") => true,
            Some("false" | "0") => false,
            Some(v) => {
                return Err(format!(
                    "--{}: expected true or false, got {v:?}",
                    self.name
                ))
            }
        };
        Ok(on != self.negated)
    }

    /// The value of a flag that needs one.
    pub(crate) fn value(&self) -> Result<&str, String> {
        if self.negated {
            return Err(format!(
                "--{} takes no value and cannot be negated",
                self.name
            ));
        }
        self.value
            .ok_or_else(|| format!("--{} needs a value (--{}=...)", self.name, self.name))
    }

    /// A regular expression.
    pub(crate) fn pattern(&self) -> Result<Pattern, String> {
        Pattern::new(self.value()?).map_err(|e| self.error(e))
    }

    /// An optional regular expression: an empty value unsets it (node_exporter treats `""`
    /// as "not given").
    pub(crate) fn opt_pattern(&self) -> Result<Option<Pattern>, String> {
        match self.value()? {
            "" => Ok(None),
            v => Pattern::new(v).map(Some).map_err(|e| self.error(e)),
        }
    }

    /// A duration such as `5s`.
    pub(crate) fn duration(&self) -> Result<Duration, String> {
        self.value()?.parse().map_err(|e| self.error(e))
    }

    /// A whole number.
    pub(crate) fn u64(&self) -> Result<u64, String> {
        let v = self.value()?;
        v.parse()
            .map_err(|_| self.error(format!("{v:?} is not a whole number")))
    }

    /// `message` prefixed with the flag's name.
    pub(crate) fn error(&self, message: impl fmt::Display) -> String {
        format!("--{}: {message}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag<'a>(key: &'a str, negated: bool, value: Option<&'a str>) -> Flag<'a> {
        Flag {
            name: "collector.x.y",
            key,
            negated,
            value,
        }
    }

    #[test]
    fn booleans() {
        assert!(flag("y", false, None).bool().unwrap());
        assert!(!flag("y", true, None).bool().unwrap());
        assert!(!flag("y", false, Some("false")).bool().unwrap());
        assert!(flag("y", false, Some("1")).bool().unwrap());
        assert_eq!(
            flag("y", false, Some("maybe")).bool().unwrap_err(),
            "--collector.x.y: expected true or false, got \"maybe\""
        );
    }

    #[test]
    fn values() {
        assert_eq!(
            flag("y", false, None).value().unwrap_err(),
            "--collector.x.y needs a value (--collector.x.y=...)"
        );
        assert!(flag("y", true, Some("a")).value().is_err());
        assert!(flag("y", false, Some("^a"))
            .pattern()
            .unwrap()
            .is_match("ab"));
        assert_eq!(flag("y", false, Some("")).opt_pattern().unwrap(), None);
        let e = flag("y", false, Some("(")).pattern().unwrap_err();
        assert!(e.starts_with("--collector.x.y: invalid regex"), "{e}");
        assert_eq!(flag("y", false, Some("7")).u64().unwrap(), 7);
        assert_eq!(
            flag("y", false, Some("1e5")).u64().unwrap_err(),
            "--collector.x.y: \"1e5\" is not a whole number"
        );
        assert!(flag("y", false, Some("5")).duration().is_err());
        assert_eq!(
            flag("y", false, Some("2s")).duration().unwrap(),
            Duration::from_secs(2)
        );
    }
}
