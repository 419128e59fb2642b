//! The units of a `ListUnits` answer: which ones the collector reports, and which of their
//! properties it reads, over which interface and with which D-Bus type. Pure: no bus here.
//!
//! As node_exporter 1.12's `systemd_linux.go`:
//! - a unit is reported when its name matches `^(?:<unit-include>)$`, does not match
//!   `^(?:<unit-exclude>)$` (both anchored, unlike most node_exporter filters) and its
//!   `LoadState` is `loaded`;
//! - `.service` units have `Service.Type` read for the `type` label (`.mount` units
//!   `Mount.Type`, if a mount is included), `Service.NRestarts` with
//!   `--collector.systemd.enable-restarts-metrics` and `Service.TasksCurrent`/`TasksMax` with
//!   `--collector.systemd.enable-task-metrics`;
//! - `.socket` units `Socket.NAccepted`, `NConnections` and `NRefused`;
//! - `.timer` units `Timer.LastTriggerUSec` (systemd 212 and later);
//! - every active unit `Unit.ActiveEnterTimestamp` with
//!   `--collector.systemd.enable-start-time-metrics`.

use regex::Regex;

/// One row of `org.freedesktop.systemd1.Manager.ListUnits` (`a(ssssssouso)`): the fields the
/// collector uses.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Unit {
    /// The unit name, e.g. `ssh.service`.
    pub(crate) name: String,
    /// `loaded`, `not-found`, `masked`, ...
    pub(crate) load_state: String,
    /// `active`, `inactive`, `failed`, ...
    pub(crate) active_state: String,
    /// The unit's object path, where its properties are read.
    pub(crate) path: String,
}

impl Unit {
    /// The unit type: what follows the last dot of the name (`service`, `socket`, ...).
    pub(crate) fn kind(&self) -> &str {
        self.name.rsplit_once('.').map_or("", |(_, k)| k)
    }
}

/// The D-Bus type of a property the collector reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Type {
    /// `s`
    Str,
    /// `u`
    U32,
    /// `t`
    U64,
}

impl Type {
    /// The D-Bus signature.
    pub(crate) fn signature(self) -> &'static str {
        match self {
            Type::Str => "s",
            Type::U32 => "u",
            Type::U64 => "t",
        }
    }
}

/// A unit property the collector reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Prop {
    /// `Service.Type`: `simple`, `oneshot`, `notify`, ...; the `type` label.
    ServiceType,
    /// `Mount.Type`: the filesystem type; the `type` label of a mount unit.
    MountType,
    /// `Service.NRestarts` (systemd 235 and later).
    NRestarts,
    /// `Service.TasksCurrent`; `u64::MAX` when not counted.
    TasksCurrent,
    /// `Service.TasksMax`; `u64::MAX` when unlimited.
    TasksMax,
    /// `Socket.NAccepted`.
    NAccepted,
    /// `Socket.NConnections`.
    NConnections,
    /// `Socket.NRefused` (systemd 239 and later).
    NRefused,
    /// `Timer.LastTriggerUSec`: microseconds since the epoch.
    LastTriggerUSec,
    /// `Unit.ActiveEnterTimestamp`: microseconds since the epoch.
    ActiveEnterTimestamp,
}

impl Prop {
    /// The interface that has the property.
    pub(crate) fn interface(self) -> &'static str {
        match self {
            Prop::ServiceType | Prop::NRestarts | Prop::TasksCurrent | Prop::TasksMax => {
                "org.freedesktop.systemd1.Service"
            }
            Prop::MountType => "org.freedesktop.systemd1.Mount",
            Prop::NAccepted | Prop::NConnections | Prop::NRefused => {
                "org.freedesktop.systemd1.Socket"
            }
            Prop::LastTriggerUSec => "org.freedesktop.systemd1.Timer",
            Prop::ActiveEnterTimestamp => "org.freedesktop.systemd1.Unit",
        }
    }

    /// The property name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Prop::ServiceType | Prop::MountType => "Type",
            Prop::NRestarts => "NRestarts",
            Prop::TasksCurrent => "TasksCurrent",
            Prop::TasksMax => "TasksMax",
            Prop::NAccepted => "NAccepted",
            Prop::NConnections => "NConnections",
            Prop::NRefused => "NRefused",
            Prop::LastTriggerUSec => "LastTriggerUSec",
            Prop::ActiveEnterTimestamp => "ActiveEnterTimestamp",
        }
    }

    /// Its D-Bus type, as systemd documents it (`org.freedesktop.systemd1(5)`).
    pub(crate) fn kind(self) -> Type {
        match self {
            Prop::ServiceType | Prop::MountType => Type::Str,
            Prop::NRestarts | Prop::NAccepted | Prop::NConnections | Prop::NRefused => Type::U32,
            Prop::TasksCurrent
            | Prop::TasksMax
            | Prop::LastTriggerUSec
            | Prop::ActiveEnterTimestamp => Type::U64,
        }
    }
}

/// A property value as read.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    /// A string.
    Str(String),
    /// A number (`u` or `t`).
    Num(u64),
}

/// What the settings switch on beyond the default families.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Extras {
    /// `node_systemd_service_restart_total` (`--collector.systemd.enable-restarts-metrics`).
    pub(crate) restarts: bool,
    /// `node_systemd_unit_start_time_seconds` (`--collector.systemd.enable-start-time-metrics`).
    pub(crate) start_time: bool,
    /// `node_systemd_unit_tasks_{current,max}` (`--collector.systemd.enable-task-metrics`).
    pub(crate) tasks: bool,
}

/// The reported units: node_exporter's include and exclude regexes, anchored at both ends.
#[derive(Clone, Debug)]
pub(crate) struct UnitFilter {
    include: Regex,
    exclude: Regex,
}

impl UnitFilter {
    /// Compiles `^(?:include)$` and `^(?:exclude)$`; the error names the bad one.
    pub(crate) fn new(include: &str, exclude: &str) -> Result<UnitFilter, String> {
        let anchored = |what: &str, src: &str| {
            Regex::new(&format!("^(?:{src})$"))
                .map_err(|e| format!("unit-{what} {src:?} does not compile anchored: {e}"))
        };
        Ok(UnitFilter {
            include: anchored("include", include)?,
            exclude: anchored("exclude", exclude)?,
        })
    }

    /// Whether `unit` is reported.
    pub(crate) fn keeps(&self, unit: &Unit) -> bool {
        unit.load_state == "loaded"
            && self.include.is_match(&unit.name)
            && !self.exclude.is_match(&unit.name)
    }
}

/// The properties read for a reported unit. `timers`: whether timers are read at all (the
/// manager is systemd 212 or later).
pub(crate) fn props_for(unit: &Unit, extras: Extras, timers: bool) -> Vec<Prop> {
    let mut props = Vec::new();
    match unit.kind() {
        "service" => {
            props.push(Prop::ServiceType);
            if extras.restarts {
                props.push(Prop::NRestarts);
            }
            if extras.tasks {
                props.extend([Prop::TasksCurrent, Prop::TasksMax]);
            }
        }
        "mount" => props.push(Prop::MountType),
        "socket" => props.extend([Prop::NAccepted, Prop::NConnections, Prop::NRefused]),
        "timer" if timers => props.push(Prop::LastTriggerUSec),
        _ => {}
    }
    // An inactive unit's start time is 0 without asking, as node_exporter has it.
    if extras.start_time && unit.active_state == "active" {
        props.push(Prop::ActiveEnterTimestamp);
    }
    props
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// node_exporter's defaults.
    pub(crate) const INCLUDE: &str = ".+";
    pub(crate) const EXCLUDE: &str = ".+\\.(automount|device|mount|scope|slice)";

    pub(crate) fn unit(name: &str, load: &str, active: &str) -> Unit {
        Unit {
            name: name.to_string(),
            load_state: load.to_string(),
            active_state: active.to_string(),
            path: format!(
                "/org/freedesktop/systemd1/unit/{}",
                name.replace('.', "_2e")
            ),
        }
    }

    #[test]
    fn default_filter_drops_mounts_devices_scopes_and_slices() {
        let f = UnitFilter::new(INCLUDE, EXCLUDE).unwrap();
        for name in [
            "ssh.service",
            "dbus.socket",
            "apt-daily.timer",
            "multi-user.target",
            "systemd-ask-password-wall.path",
            "swapfile.swap",
        ] {
            assert!(f.keeps(&unit(name, "loaded", "active")), "{name}");
        }
        for name in [
            "proc-sys-fs-binfmt_misc.automount",
            "dev-sda1.device",
            "-.mount",
            "home.mount",
            "session-1.scope",
            "system.slice",
        ] {
            assert!(!f.keeps(&unit(name, "loaded", "active")), "{name}");
        }
    }

    #[test]
    fn only_loaded_units_are_reported() {
        let f = UnitFilter::new(INCLUDE, EXCLUDE).unwrap();
        assert!(f.keeps(&unit("a.service", "loaded", "failed")));
        for load in ["not-found", "masked", "error", "bad-setting", ""] {
            assert!(!f.keeps(&unit("a.service", load, "inactive")), "{load}");
        }
    }

    #[test]
    fn filters_are_anchored_at_both_ends() {
        // Go's node_exporter wraps them in ^(?:...)$: "ssh" does not select "ssh.service".
        let f = UnitFilter::new("ssh", "").unwrap();
        assert!(!f.keeps(&unit("ssh.service", "loaded", "active")));
        let f = UnitFilter::new("ssh\\.service|cron\\.service", "cron.*").unwrap();
        assert!(f.keeps(&unit("ssh.service", "loaded", "active")));
        assert!(!f.keeps(&unit("cron.service", "loaded", "active")));
        assert!(!f.keeps(&unit("openssh.service", "loaded", "active")));
        // An alternation in the exclude stays inside the anchors.
        let f = UnitFilter::new(".+", "a|b").unwrap();
        assert!(f.keeps(&unit("ab.service", "loaded", "active")));
    }

    #[test]
    fn a_bad_regex_names_the_flag() {
        let e = UnitFilter::new("(", ".+").unwrap_err();
        assert!(e.starts_with("unit-include \"(\""), "{e}");
        let e = UnitFilter::new(".+", "[").unwrap_err();
        assert!(e.starts_with("unit-exclude \"[\""), "{e}");
    }

    #[test]
    fn unit_kind_is_the_last_suffix() {
        assert_eq!(unit("a.b.service", "loaded", "active").kind(), "service");
        assert_eq!(unit("noextension", "loaded", "active").kind(), "");
        assert_eq!(unit("trailing.", "loaded", "active").kind(), "");
    }

    #[test]
    fn properties_per_unit_type() {
        let none = Extras::default();
        let all = Extras {
            restarts: true,
            start_time: true,
            tasks: true,
        };
        let svc = unit("a.service", "loaded", "active");
        assert_eq!(props_for(&svc, none, true), vec![Prop::ServiceType]);
        assert_eq!(
            props_for(&svc, all, true),
            vec![
                Prop::ServiceType,
                Prop::NRestarts,
                Prop::TasksCurrent,
                Prop::TasksMax,
                Prop::ActiveEnterTimestamp
            ]
        );
        let failed = unit("a.service", "loaded", "failed");
        assert!(!props_for(&failed, all, true).contains(&Prop::ActiveEnterTimestamp));
        let sock = unit("a.socket", "loaded", "active");
        assert_eq!(
            props_for(&sock, none, true),
            vec![Prop::NAccepted, Prop::NConnections, Prop::NRefused]
        );
        let timer = unit("a.timer", "loaded", "active");
        assert_eq!(props_for(&timer, none, true), vec![Prop::LastTriggerUSec]);
        assert!(props_for(&timer, none, false).is_empty());
        let mount = unit("home.mount", "loaded", "active");
        assert_eq!(props_for(&mount, none, true), vec![Prop::MountType]);
        let target = unit("multi-user.target", "loaded", "active");
        assert!(props_for(&target, none, true).is_empty());
        assert_eq!(
            props_for(&target, all, true),
            vec![Prop::ActiveEnterTimestamp]
        );
    }

    #[test]
    fn properties_have_systemds_interfaces_and_types() {
        assert_eq!(
            (
                Prop::NRestarts.interface(),
                Prop::NRestarts.name(),
                Prop::NRestarts.kind().signature()
            ),
            ("org.freedesktop.systemd1.Service", "NRestarts", "u")
        );
        assert_eq!(
            Prop::LastTriggerUSec.interface(),
            "org.freedesktop.systemd1.Timer"
        );
        assert_eq!(Prop::LastTriggerUSec.kind(), Type::U64);
        assert_eq!(
            Prop::MountType.interface(),
            "org.freedesktop.systemd1.Mount"
        );
        assert_eq!(Prop::MountType.name(), "Type");
        assert_eq!(Prop::NRefused.kind(), Type::U32);
        assert_eq!(
            Prop::ActiveEnterTimestamp.interface(),
            "org.freedesktop.systemd1.Unit"
        );
    }
}
