//! The manager's own properties (`org.freedesktop.systemd1.Manager`): `Version`,
//! `Virtualization` and `SystemState`, turned into what node_exporter 1.12 reports. Pure.

/// systemd's version as `node_systemd_version` reports it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Version {
    /// The sample value: the first run of three or more digits, with a `.minor` if one
    /// follows (`252.22` of `252.22-1~deb12u1`), or 0 when there is none.
    pub(crate) number: f64,
    /// The `version` label: the whole string, or empty when it has no number.
    pub(crate) label: String,
}

/// The first systemd version with `SystemState` and timers' `LastTriggerUSec`: below it
/// node_exporter writes neither `node_systemd_system_running` nor the timer family.
pub(crate) const MIN_VERSION_SYSTEM_STATE: f64 = 212.0;

impl Version {
    /// Parses `Manager.Version` (`None`: the property could not be read), as node_exporter
    /// does with the regex `[0-9]{3,}(\.[0-9]+)?`: `"v255"` is 255, `"252.22-1~deb12u1"` is
    /// 252.22, `"foo"` and `"12"` are 0 with an empty label.
    pub(crate) fn parse(raw: Option<&str>) -> Version {
        let unknown = Version {
            number: 0.0,
            label: String::new(),
        };
        let Some(raw) = raw else { return unknown };
        match version_number(raw).and_then(|n| n.parse::<f64>().ok()) {
            Some(number) => Version {
                number,
                label: raw.to_string(),
            },
            None => unknown,
        }
    }

    /// Whether the manager has `SystemState` and timers' `LastTriggerUSec`.
    pub(crate) fn has_system_state(&self) -> bool {
        self.number >= MIN_VERSION_SYSTEM_STATE
    }
}

/// The leftmost match of `[0-9]{3,}(\.[0-9]+)?` in `s`.
fn version_number(s: &str) -> Option<&str> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let run = digits(bytes, i);
        if run >= 3 {
            let mut end = i + run;
            if bytes.get(end) == Some(&b'.') {
                let minor = digits(bytes, end + 1);
                if minor > 0 {
                    end += 1 + minor;
                }
            }
            return s.get(i..end);
        }
        i += run.max(1);
    }
    None
}

/// How many ASCII digits start at `at`.
fn digits(bytes: &[u8], at: usize) -> usize {
    bytes.get(at..).map_or(0, |rest| {
        rest.iter().take_while(|b| b.is_ascii_digit()).count()
    })
}

/// The `virtualization_type` label of `node_systemd_virtualization_info`: `Virtualization` as
/// read, `none` when it is empty (bare metal), `unknown` when it could not be read.
pub(crate) fn virtualization_type(raw: Option<&str>) -> &str {
    match raw {
        None => "unknown",
        Some("") => "none",
        Some(v) => v,
    }
}

/// `node_systemd_system_running`: whether `SystemState` is `running`.
pub(crate) fn system_running(state: &str) -> bool {
    state == "running"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(raw: &str) -> (f64, String) {
        let v = Version::parse(Some(raw));
        (v.number, v.label)
    }

    #[test]
    fn versions_as_node_exporter_reads_them() {
        assert_eq!(v("252"), (252.0, "252".into()));
        assert_eq!(v("252.22-1~deb12u1"), (252.22, "252.22-1~deb12u1".into()));
        assert_eq!(v("v255"), (255.0, "v255".into()));
        assert_eq!(v("255.4-1ubuntu8.4"), (255.4, "255.4-1ubuntu8.4".into()));
        assert_eq!(
            v("249.11-0ubuntu3.12"),
            (249.11, "249.11-0ubuntu3.12".into())
        );
        assert_eq!(v("239 (239-78.el8)"), (239.0, "239 (239-78.el8)".into()));
        // The minor needs a digit after the dot.
        assert_eq!(v("256.rc1"), (256.0, "256.rc1".into()));
        // Fewer than three digits do not count; a later run does.
        assert_eq!(v("1.2.345"), (345.0, "1.2.345".into()));
        assert_eq!(v("12a1234.5"), (1234.5, "12a1234.5".into()));
    }

    #[test]
    fn versions_without_a_number_are_zero_and_unlabelled() {
        for raw in ["", "foo", "12", "v9.99", "1.2.3", "é", "...."] {
            assert_eq!(v(raw), (0.0, String::new()), "{raw:?}");
        }
        assert_eq!(
            Version::parse(None),
            Version {
                number: 0.0,
                label: String::new()
            }
        );
    }

    #[test]
    fn system_state_needs_212() {
        assert!(!Version::parse(Some("211")).has_system_state());
        assert!(Version::parse(Some("212")).has_system_state());
        assert!(!Version::parse(Some("unknown")).has_system_state());
    }

    #[test]
    fn virtualization_and_state() {
        assert_eq!(virtualization_type(Some("kvm")), "kvm");
        assert_eq!(virtualization_type(Some("")), "none");
        assert_eq!(virtualization_type(None), "unknown");
        assert!(system_running("running"));
        for s in ["degraded", "starting", "maintenance", "stopping", ""] {
            assert!(!system_running(s), "{s}");
        }
    }
}
