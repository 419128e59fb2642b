//! A snapshot of the manager and its units, as read over the bus, written as node_exporter
//! 1.12's `node_systemd_*` families: the same names, HELP, types, labels and values. Pure.
//!
//! Families come in name order and series in label order, as node_exporter's registry sorts
//! them. A family without samples is not written.

use std::collections::BTreeMap;

use eos_exposition::{Encoder, Kind};

use super::manager::{system_running, virtualization_type, Version};
use super::units::{Extras, Prop, Unit, Value};

/// The `state` values of `node_systemd_unit_state`, one series each per unit, in label order.
pub(crate) const UNIT_STATES: [&str; 5] =
    ["activating", "active", "deactivating", "failed", "inactive"];

/// Everything one scrape read.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Snapshot {
    /// `Manager.Version`, parsed.
    pub(crate) version: Version,
    /// `Manager.Virtualization`; `None` when it could not be read.
    pub(crate) virtualization: Option<String>,
    /// `Manager.SystemState`, read when the version has it.
    pub(crate) system_state: Option<String>,
    /// Every unit `ListUnits` returned (`node_systemd_units` counts them all).
    pub(crate) units: Vec<Unit>,
    /// The reported units: an index into `units` and the properties that were answered.
    pub(crate) reported: Vec<Reported>,
}

/// A reported unit and its properties read.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Reported {
    /// Index into [`Snapshot::units`].
    pub(crate) unit: usize,
    /// The properties that were answered; one not here could not be read (an older systemd,
    /// say) and its series is left out, as node_exporter does.
    pub(crate) values: Vec<(Prop, Value)>,
}

impl Reported {
    fn num(&self, prop: Prop) -> Option<u64> {
        self.values.iter().find_map(|(p, v)| match v {
            Value::Num(n) if *p == prop => Some(*n),
            _ => None,
        })
    }

    fn text(&self, prop: Prop) -> Option<&str> {
        self.values.iter().find_map(|(p, v)| match v {
            Value::Str(s) if *p == prop => Some(s.as_str()),
            _ => None,
        })
    }
}

/// Writes the `node_systemd_*` families of `snap`.
pub(crate) fn write(enc: &mut Encoder<'_>, snap: &Snapshot, extras: Extras) {
    let mut rows: Vec<(&Unit, &Reported)> = snap
        .reported
        .iter()
        .filter_map(|r| snap.units.get(r.unit).map(|u| (u, r)))
        .collect();
    rows.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    let of_kind = |kind: &'static str| rows.iter().filter(move |(u, _)| u.kind() == kind);

    let mut f = enc.family(
        "node_systemd_service_restart_total",
        "Service unit count of Restart triggers",
        Kind::Counter,
    );
    for (u, r) in of_kind("service") {
        if let Some(n) = r.num(Prop::NRestarts) {
            f.sample(&[("name", &u.name)], n as f64);
        }
    }

    // A socket's series stop at the first property that could not be read.
    let sockets: Vec<(&str, [Option<u64>; 3])> = of_kind("socket")
        .map(|(u, r)| {
            let accepted = r.num(Prop::NAccepted);
            let current = accepted.and(r.num(Prop::NConnections));
            let refused = current.and(r.num(Prop::NRefused));
            (u.name.as_str(), [accepted, current, refused])
        })
        .collect();
    let socket_families = [
        (
            "node_systemd_socket_accepted_connections_total",
            "Total number of accepted socket connections",
            Kind::Counter,
        ),
        (
            "node_systemd_socket_current_connections",
            "Current number of socket connections",
            Kind::Gauge,
        ),
        // A gauge despite its name, as in node_exporter.
        (
            "node_systemd_socket_refused_connections_total",
            "Total number of refused socket connections",
            Kind::Gauge,
        ),
    ];
    for (i, (name, help, kind)) in socket_families.into_iter().enumerate() {
        let mut f = enc.family(name, help, kind);
        for (unit, values) in &sockets {
            if let Some(Some(n)) = values.get(i) {
                f.sample(&[("name", unit)], *n as f64);
            }
        }
    }

    if let Some(state) = &snap.system_state {
        enc.single(
            "node_systemd_system_running",
            "Whether the system is operational (see 'systemctl is-system-running')",
            Kind::Gauge,
            &[],
            if system_running(state) { 1.0 } else { 0.0 },
        );
    }

    let mut f = enc.family(
        "node_systemd_timer_last_trigger_seconds",
        "Seconds since epoch of last trigger.",
        Kind::Gauge,
    );
    for (u, r) in of_kind("timer") {
        if let Some(us) = r.num(Prop::LastTriggerUSec) {
            f.sample(&[("name", &u.name)], us as f64 / 1e6);
        }
    }

    if extras.start_time {
        let mut f = enc.family(
            "node_systemd_unit_start_time_seconds",
            "Start time of the unit since unix epoch in seconds.",
            Kind::Gauge,
        );
        for (u, r) in &rows {
            let us = if u.active_state == "active" {
                r.num(Prop::ActiveEnterTimestamp)
            } else {
                Some(0)
            };
            if let Some(us) = us {
                f.sample(&[("name", &u.name)], us as f64 / 1e6);
            }
        }
    }

    let mut f = enc.family("node_systemd_unit_state", "Systemd unit", Kind::Gauge);
    for (u, r) in &rows {
        let kind = r
            .text(Prop::ServiceType)
            .or_else(|| r.text(Prop::MountType))
            .unwrap_or("");
        for state in UNIT_STATES {
            let on = if u.active_state == state { 1.0 } else { 0.0 };
            f.sample(&[("name", &u.name), ("state", state), ("type", kind)], on);
        }
    }

    for (prop, name, help) in [
        (
            Prop::TasksCurrent,
            "node_systemd_unit_tasks_current",
            "Current number of tasks per Systemd unit",
        ),
        (
            Prop::TasksMax,
            "node_systemd_unit_tasks_max",
            "Maximum number of tasks per Systemd unit",
        ),
    ] {
        let mut f = enc.family(name, help, Kind::Gauge);
        for (u, r) in of_kind("service") {
            // u64::MAX: not counted, or no limit.
            if let Some(n) = r.num(prop).filter(|&n| n != u64::MAX) {
                f.sample(&[("name", &u.name)], n as f64);
            }
        }
    }

    let mut f = enc.family(
        "node_systemd_units",
        "Summary of systemd unit states",
        Kind::Gauge,
    );
    for (state, n) in summary(&snap.units) {
        f.sample(&[("state", state)], n as f64);
    }

    enc.single(
        "node_systemd_version",
        "Detected systemd version",
        Kind::Gauge,
        &[("version", &snap.version.label)],
        snap.version.number,
    );
    enc.single(
        "node_systemd_virtualization_info",
        "Detected virtualization technology",
        Kind::Gauge,
        &[(
            "virtualization_type",
            virtualization_type(snap.virtualization.as_deref()),
        )],
        1.0,
    );
}

/// How many units are in each active state, over all units listed (not only the reported
/// ones): the five usual states always, others (`reloading`, `maintenance`) when present.
pub(crate) fn summary(units: &[Unit]) -> BTreeMap<&str, u64> {
    let mut counts: BTreeMap<&str, u64> = UNIT_STATES.iter().map(|s| (*s, 0)).collect();
    for u in units {
        *counts.entry(u.active_state.as_str()).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::systemd::units::tests::unit;
    use eos_exposition::Format;

    fn text(snap: &Snapshot, extras: Extras) -> String {
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, Format::Text);
        write(&mut enc, snap, extras);
        assert!(enc.dropped().is_empty());
        drop(enc);
        String::from_utf8(out).unwrap()
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            version: Version::parse(Some("252.22-1~deb12u1")),
            virtualization: Some("kvm".into()),
            system_state: Some("degraded".into()),
            units: vec![
                unit("ssh.service", "loaded", "active"),
                unit("broken.service", "loaded", "failed"),
                unit("dbus.socket", "loaded", "active"),
                unit("gone.service", "not-found", "inactive"),
                unit("logrotate.timer", "loaded", "active"),
                unit("old.socket", "loaded", "active"),
                unit("home.mount", "loaded", "reloading"),
            ],
            reported: vec![
                Reported {
                    unit: 0,
                    values: vec![
                        (Prop::ServiceType, Value::Str("notify".into())),
                        (Prop::NRestarts, Value::Num(0)),
                        (Prop::TasksCurrent, Value::Num(3)),
                        (Prop::TasksMax, Value::Num(u64::MAX)),
                        (
                            Prop::ActiveEnterTimestamp,
                            Value::Num(1_700_000_000_250_000),
                        ),
                    ],
                },
                Reported {
                    unit: 1,
                    values: vec![
                        (Prop::ServiceType, Value::Str("oneshot".into())),
                        (Prop::NRestarts, Value::Num(7)),
                    ],
                },
                Reported {
                    unit: 2,
                    values: vec![
                        (Prop::NAccepted, Value::Num(12)),
                        (Prop::NConnections, Value::Num(2)),
                        (Prop::NRefused, Value::Num(1)),
                    ],
                },
                Reported {
                    unit: 4,
                    values: vec![(Prop::LastTriggerUSec, Value::Num(1_700_000_100_500_000))],
                },
                // systemd before 239: no NRefused.
                Reported {
                    unit: 5,
                    values: vec![
                        (Prop::NAccepted, Value::Num(5)),
                        (Prop::NConnections, Value::Num(0)),
                    ],
                },
            ],
        }
    }

    #[test]
    fn every_family_as_node_exporter_writes_it() {
        let extras = Extras {
            restarts: true,
            start_time: true,
            tasks: true,
        };
        let want = "\
# HELP node_systemd_service_restart_total Service unit count of Restart triggers
# TYPE node_systemd_service_restart_total counter
node_systemd_service_restart_total{name=\"broken.service\"} 7
node_systemd_service_restart_total{name=\"ssh.service\"} 0
# HELP node_systemd_socket_accepted_connections_total Total number of accepted socket connections
# TYPE node_systemd_socket_accepted_connections_total counter
node_systemd_socket_accepted_connections_total{name=\"dbus.socket\"} 12
node_systemd_socket_accepted_connections_total{name=\"old.socket\"} 5
# HELP node_systemd_socket_current_connections Current number of socket connections
# TYPE node_systemd_socket_current_connections gauge
node_systemd_socket_current_connections{name=\"dbus.socket\"} 2
node_systemd_socket_current_connections{name=\"old.socket\"} 0
# HELP node_systemd_socket_refused_connections_total Total number of refused socket connections
# TYPE node_systemd_socket_refused_connections_total gauge
node_systemd_socket_refused_connections_total{name=\"dbus.socket\"} 1
# HELP node_systemd_system_running Whether the system is operational (see 'systemctl is-system-running')
# TYPE node_systemd_system_running gauge
node_systemd_system_running 0
# HELP node_systemd_timer_last_trigger_seconds Seconds since epoch of last trigger.
# TYPE node_systemd_timer_last_trigger_seconds gauge
node_systemd_timer_last_trigger_seconds{name=\"logrotate.timer\"} 1.7000001005e+09
# HELP node_systemd_unit_start_time_seconds Start time of the unit since unix epoch in seconds.
# TYPE node_systemd_unit_start_time_seconds gauge
node_systemd_unit_start_time_seconds{name=\"broken.service\"} 0
node_systemd_unit_start_time_seconds{name=\"ssh.service\"} 1.70000000025e+09
# HELP node_systemd_unit_state Systemd unit
# TYPE node_systemd_unit_state gauge
node_systemd_unit_state{name=\"broken.service\",state=\"activating\",type=\"oneshot\"} 0
node_systemd_unit_state{name=\"broken.service\",state=\"active\",type=\"oneshot\"} 0
node_systemd_unit_state{name=\"broken.service\",state=\"deactivating\",type=\"oneshot\"} 0
node_systemd_unit_state{name=\"broken.service\",state=\"failed\",type=\"oneshot\"} 1
node_systemd_unit_state{name=\"broken.service\",state=\"inactive\",type=\"oneshot\"} 0
node_systemd_unit_state{name=\"dbus.socket\",state=\"activating\",type=\"\"} 0
node_systemd_unit_state{name=\"dbus.socket\",state=\"active\",type=\"\"} 1
node_systemd_unit_state{name=\"dbus.socket\",state=\"deactivating\",type=\"\"} 0
node_systemd_unit_state{name=\"dbus.socket\",state=\"failed\",type=\"\"} 0
node_systemd_unit_state{name=\"dbus.socket\",state=\"inactive\",type=\"\"} 0
node_systemd_unit_state{name=\"logrotate.timer\",state=\"activating\",type=\"\"} 0
node_systemd_unit_state{name=\"logrotate.timer\",state=\"active\",type=\"\"} 1
node_systemd_unit_state{name=\"logrotate.timer\",state=\"deactivating\",type=\"\"} 0
node_systemd_unit_state{name=\"logrotate.timer\",state=\"failed\",type=\"\"} 0
node_systemd_unit_state{name=\"logrotate.timer\",state=\"inactive\",type=\"\"} 0
node_systemd_unit_state{name=\"old.socket\",state=\"activating\",type=\"\"} 0
node_systemd_unit_state{name=\"old.socket\",state=\"active\",type=\"\"} 1
node_systemd_unit_state{name=\"old.socket\",state=\"deactivating\",type=\"\"} 0
node_systemd_unit_state{name=\"old.socket\",state=\"failed\",type=\"\"} 0
node_systemd_unit_state{name=\"old.socket\",state=\"inactive\",type=\"\"} 0
node_systemd_unit_state{name=\"ssh.service\",state=\"activating\",type=\"notify\"} 0
node_systemd_unit_state{name=\"ssh.service\",state=\"active\",type=\"notify\"} 1
node_systemd_unit_state{name=\"ssh.service\",state=\"deactivating\",type=\"notify\"} 0
node_systemd_unit_state{name=\"ssh.service\",state=\"failed\",type=\"notify\"} 0
node_systemd_unit_state{name=\"ssh.service\",state=\"inactive\",type=\"notify\"} 0
# HELP node_systemd_unit_tasks_current Current number of tasks per Systemd unit
# TYPE node_systemd_unit_tasks_current gauge
node_systemd_unit_tasks_current{name=\"ssh.service\"} 3
# HELP node_systemd_units Summary of systemd unit states
# TYPE node_systemd_units gauge
node_systemd_units{state=\"activating\"} 0
node_systemd_units{state=\"active\"} 4
node_systemd_units{state=\"deactivating\"} 0
node_systemd_units{state=\"failed\"} 1
node_systemd_units{state=\"inactive\"} 1
node_systemd_units{state=\"reloading\"} 1
# HELP node_systemd_version Detected systemd version
# TYPE node_systemd_version gauge
node_systemd_version{version=\"252.22-1~deb12u1\"} 252.22
# HELP node_systemd_virtualization_info Detected virtualization technology
# TYPE node_systemd_virtualization_info gauge
node_systemd_virtualization_info{virtualization_type=\"kvm\"} 1
";
        let got = text(&snapshot(), extras);
        assert_eq!(got, want, "got:\n{got}");
    }

    #[test]
    fn defaults_leave_out_the_flagged_families() {
        // Without the flags nothing asks for restarts, tasks or start times.
        let mut snap = snapshot();
        for r in &mut snap.reported {
            r.values.retain(|(p, _)| {
                !matches!(
                    p,
                    Prop::NRestarts
                        | Prop::TasksCurrent
                        | Prop::TasksMax
                        | Prop::ActiveEnterTimestamp
                )
            });
        }
        let got = text(&snap, Extras::default());
        for absent in [
            "node_systemd_service_restart_total",
            "node_systemd_unit_start_time_seconds",
            "node_systemd_unit_tasks_current",
            "node_systemd_unit_tasks_max",
        ] {
            assert!(!got.contains(absent), "{absent} in:\n{got}");
        }
        assert!(got.contains(
            "node_systemd_unit_state{name=\"ssh.service\",state=\"active\",type=\"notify\"} 1\n"
        ));
    }

    #[test]
    fn an_old_or_unknown_systemd() {
        // No version: 0 with an empty label; no SystemState read; unknown virtualization.
        let snap = Snapshot {
            version: Version::parse(None),
            virtualization: None,
            system_state: None,
            units: Vec::new(),
            reported: Vec::new(),
        };
        let got = text(&snap, Extras::default());
        assert!(!got.contains("node_systemd_system_running"), "{got}");
        assert!(!got.contains("node_systemd_unit_state"), "{got}");
        assert!(
            got.contains("node_systemd_version{version=\"\"} 0\n"),
            "{got}"
        );
        assert!(
            got.contains("node_systemd_virtualization_info{virtualization_type=\"unknown\"} 1\n")
        );
        assert!(
            got.contains("node_systemd_units{state=\"failed\"} 0\n"),
            "{got}"
        );
        let bare = Snapshot {
            virtualization: Some(String::new()),
            system_state: Some("running".into()),
            ..snap
        };
        let got = text(&bare, Extras::default());
        assert!(got.contains("node_systemd_virtualization_info{virtualization_type=\"none\"} 1\n"));
        assert!(got.contains("node_systemd_system_running 1\n"), "{got}");
    }

    #[test]
    fn socket_series_stop_at_the_first_unread_property() {
        let snap = Snapshot {
            units: vec![
                unit("a.socket", "loaded", "active"),
                unit("b.socket", "loaded", "active"),
            ],
            reported: vec![
                // NConnections unanswered: neither it nor NRefused.
                Reported {
                    unit: 0,
                    values: vec![
                        (Prop::NAccepted, Value::Num(1)),
                        (Prop::NRefused, Value::Num(9)),
                    ],
                },
                // NAccepted unanswered: nothing.
                Reported {
                    unit: 1,
                    values: vec![(Prop::NConnections, Value::Num(1))],
                },
            ],
            ..snapshot()
        };
        let got = text(&snap, Extras::default());
        assert!(
            got.contains("node_systemd_socket_accepted_connections_total{name=\"a.socket\"} 1\n")
        );
        assert!(
            !got.contains("node_systemd_socket_current_connections"),
            "{got}"
        );
        assert!(
            !got.contains("node_systemd_socket_refused_connections_total"),
            "{got}"
        );
        assert!(!got.contains("{name=\"b.socket\"} "), "{got}");
    }

    #[test]
    fn summary_counts_every_listed_unit() {
        let units = vec![
            unit("a.service", "loaded", "active"),
            unit("b.service", "not-found", "inactive"),
            unit("c.mount", "loaded", "active"),
            unit("d.service", "loaded", "maintenance"),
        ];
        let s = summary(&units);
        assert_eq!(
            s.into_iter().collect::<Vec<_>>(),
            vec![
                ("activating", 0),
                ("active", 2),
                ("deactivating", 0),
                ("failed", 0),
                ("inactive", 1),
                ("maintenance", 1)
            ]
        );
    }
}
