//! The systemd collector through the node module, against a fake systemd.
//!
//! No systemd runs where these tests run, so the collector talks to
//! `eos_testkit::systemd::FakeSystemd`: a real `dbus-daemon` (Debian's `dbus-daemon` package) on a
//! private socket, on which a fake owns `org.freedesktop.systemd1` and serves `ListUnits`, the
//! manager's properties and the unit properties with the interfaces, object paths and
//! signatures of systemd's documented D-Bus API. The bus, the authentication, the message
//! routing and the collector's client are all real; only the unit numbers are made up.
//!
//! `--collector.systemd.private` is tested against the fake's direct socket, which answers
//! without a bus as systemd's `/run/systemd/private` does.
//!
//! Also: a bus that is not there, and one that accepts the connection and never answers, each
//! fail the collector (`node_scrape_collector_success 0`) within the scrape, without the
//! collector being left behind as stuck.

use eos_exposition::parse_text;
use eos_module::{Facts, Health, Module, ModuleConfig, ModuleContext, ModuleDef};
use eos_node::{NodeConfig, NodeModule};
use eos_testkit::systemd::{FakeSystemd, FakeUnit};
use eos_testkit::TempDir;
use std::time::{Duration, Instant};

#[path = "support/scrape.rs"]
mod support_scrape;
use support_scrape::scrape;

/// The node module with only the systemd collector, on `address`, with `flags` on top.
fn start(address: &str, flags: &[&str]) -> Box<dyn Module> {
    let mut config = NodeConfig::default();
    let bus = format!("collector.systemd.bus-address={address}");
    for flag in ["collector.disable-defaults", "collector.systemd", &bus]
        .into_iter()
        .chain(flags.iter().copied())
    {
        let (name, value) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (flag, None),
        };
        assert!(
            config.apply_flag(name, value).unwrap(),
            "--{flag} not taken"
        );
    }
    config.validate().unwrap();
    let ctx = ModuleContext::standalone("node", Facts::default());
    NodeModule::start(&config, &ctx).unwrap()
}

/// The value of the sample `name{labels}` (all of them, exactly).
fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    parse_text(text)
        .unwrap()
        .samples
        .into_iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

fn success(text: &str) -> Option<f64> {
    value(
        text,
        "node_scrape_collector_success",
        &[("collector", "systemd")],
    )
}

fn state(text: &str, unit: &str, state: &str, kind: &str) -> Option<f64> {
    value(
        text,
        "node_systemd_unit_state",
        &[("name", unit), ("state", state), ("type", kind)],
    )
}

/// A small node: services of two types, a failed one, sockets (one from before systemd 239,
/// without `NRefused`), a timer, and units the default filter leaves out.
fn units() -> Vec<FakeUnit> {
    let mut ssh = FakeUnit::new("ssh.service", "active").kind("notify");
    ssh.n_restarts = Some(1);
    ssh.tasks_current = Some(3);
    ssh.tasks_max = Some(4915);
    ssh.active_enter_usec = Some(1_700_000_000_500_000);
    let mut backup = FakeUnit::new("backup.service", "failed").kind("oneshot");
    backup.n_restarts = Some(2);
    let mut dbus = FakeUnit::new("dbus.socket", "active");
    dbus.n_accepted = Some(12);
    dbus.n_connections = Some(2);
    dbus.n_refused = Some(1);
    let mut old = FakeUnit::new("old.socket", "active");
    old.n_accepted = Some(5);
    old.n_refused = None;
    let mut timer = FakeUnit::new("logrotate.timer", "active");
    timer.last_trigger_usec = Some(1_700_000_100_250_000);
    vec![
        ssh,
        backup,
        dbus,
        old,
        timer,
        FakeUnit::new("home.mount", "active"),
        FakeUnit::new("session-1.scope", "active"),
        FakeUnit::new("system.slice", "active"),
        FakeUnit::new("gone.service", "inactive").load_state("not-found"),
        FakeUnit::new("multi-user.target", "active"),
    ]
}

const ALL_EXTRAS: [&str; 3] = [
    "collector.systemd.enable-restarts-metrics",
    "collector.systemd.enable-task-metrics",
    "collector.systemd.enable-start-time-metrics",
];

#[test]
fn every_family_from_the_fake_systemd() {
    let fake = FakeSystemd::start("252.22-1~deb12u1", units());
    fake.set_manager("252.22-1~deb12u1", "degraded", "kvm");
    let module = start(&fake.address(), &ALL_EXTRAS);
    let out = scrape(module.as_ref(), Duration::from_secs(10));
    assert_eq!(success(&out), Some(1.0), "{out}");

    // One series per state, 1 for the current one; `type` from Service.Type.
    assert_eq!(state(&out, "ssh.service", "active", "notify"), Some(1.0));
    for s in ["activating", "deactivating", "failed", "inactive"] {
        assert_eq!(state(&out, "ssh.service", s, "notify"), Some(0.0), "{s}");
    }
    assert_eq!(
        state(&out, "backup.service", "failed", "oneshot"),
        Some(1.0)
    );
    assert_eq!(state(&out, "dbus.socket", "active", ""), Some(1.0));
    assert_eq!(state(&out, "multi-user.target", "active", ""), Some(1.0));
    // Excluded by default, or not loaded.
    for unit in [
        "home.mount",
        "session-1.scope",
        "system.slice",
        "gone.service",
    ] {
        assert!(
            !out.contains(&format!("name=\"{unit}\"")),
            "{unit} reported:\n{out}"
        );
    }
    // Counted over every unit listed, reported or not.
    let units = |s: &str| value(&out, "node_systemd_units", &[("state", s)]);
    assert_eq!(units("active"), Some(8.0));
    assert_eq!(units("failed"), Some(1.0));
    assert_eq!(units("inactive"), Some(1.0));
    assert_eq!(units("activating"), Some(0.0));
    assert_eq!(units("deactivating"), Some(0.0));

    let by_name = |family: &str, unit: &str| value(&out, family, &[("name", unit)]);
    let restarts = "node_systemd_service_restart_total";
    assert_eq!(by_name(restarts, "ssh.service"), Some(1.0));
    assert_eq!(by_name(restarts, "backup.service"), Some(2.0));
    let accepted = "node_systemd_socket_accepted_connections_total";
    assert_eq!(by_name(accepted, "dbus.socket"), Some(12.0));
    assert_eq!(by_name(accepted, "old.socket"), Some(5.0));
    let current = "node_systemd_socket_current_connections";
    assert_eq!(by_name(current, "dbus.socket"), Some(2.0));
    assert_eq!(by_name(current, "old.socket"), Some(0.0));
    let refused = "node_systemd_socket_refused_connections_total";
    assert_eq!(by_name(refused, "dbus.socket"), Some(1.0));
    // systemd before 239 has no NRefused: no series, as in node_exporter.
    assert_eq!(by_name(refused, "old.socket"), None);
    assert_eq!(
        by_name("node_systemd_timer_last_trigger_seconds", "logrotate.timer"),
        Some(1_700_000_100.25)
    );
    let start_time = "node_systemd_unit_start_time_seconds";
    assert_eq!(by_name(start_time, "ssh.service"), Some(1_700_000_000.5));
    // Not active: 0 without asking.
    assert_eq!(by_name(start_time, "backup.service"), Some(0.0));
    assert_eq!(
        by_name("node_systemd_unit_tasks_current", "ssh.service"),
        Some(3.0)
    );
    assert_eq!(
        by_name("node_systemd_unit_tasks_max", "ssh.service"),
        Some(4915.0)
    );
    // TasksMax u64::MAX (no limit): no series.
    assert_eq!(
        by_name("node_systemd_unit_tasks_max", "backup.service"),
        None
    );
    assert_eq!(value(&out, "node_systemd_system_running", &[]), Some(0.0));
    assert_eq!(
        value(
            &out,
            "node_systemd_version",
            &[("version", "252.22-1~deb12u1")]
        ),
        Some(252.22)
    );
    assert_eq!(
        value(
            &out,
            "node_systemd_virtualization_info",
            &[("virtualization_type", "kvm")]
        ),
        Some(1.0)
    );
    assert!(out.contains("# TYPE node_systemd_socket_refused_connections_total gauge\n"));
    assert!(out.contains("# TYPE node_systemd_service_restart_total counter\n"));
}

#[test]
fn without_flags_the_optional_families_stay_out() {
    let fake = FakeSystemd::start("v255", units());
    let module = start(
        &fake.address(),
        &["collector.systemd.unit-include=ssh\\.service|dbus\\.socket"],
    );
    let out = scrape(module.as_ref(), Duration::from_secs(10));
    assert_eq!(success(&out), Some(1.0), "{out}");
    for family in [
        "node_systemd_service_restart_total",
        "node_systemd_unit_start_time_seconds",
        "node_systemd_unit_tasks_current",
        "node_systemd_unit_tasks_max",
    ] {
        assert!(!out.contains(family), "{family} without its flag:\n{out}");
    }
    assert_eq!(state(&out, "ssh.service", "active", "notify"), Some(1.0));
    assert!(!out.contains("backup.service"), "{out}");
    assert_eq!(
        value(&out, "node_systemd_version", &[("version", "v255")]),
        Some(255.0)
    );
    assert_eq!(value(&out, "node_systemd_system_running", &[]), Some(1.0));
}

#[test]
fn a_failing_service_and_its_restarts_show_in_the_next_scrape() {
    let mut fake = FakeSystemd::start("252", units());
    let module = start(
        &fake.address(),
        &["collector.systemd.enable-restarts-metrics"],
    );
    let out = scrape(module.as_ref(), Duration::from_secs(10));
    assert_eq!(
        state(&out, "ssh.service", "active", "notify"),
        Some(1.0),
        "{out}"
    );

    // ssh crashloops: failed, restarted three more times.
    fake.update("ssh.service", |u| {
        u.active_state = "failed".into();
        u.sub_state = "failed".into();
        u.n_restarts = Some(4);
    });
    let out = scrape(module.as_ref(), Duration::from_secs(10));
    assert_eq!(success(&out), Some(1.0), "{out}");
    assert_eq!(
        state(&out, "ssh.service", "failed", "notify"),
        Some(1.0),
        "{out}"
    );
    assert_eq!(
        state(&out, "ssh.service", "active", "notify"),
        Some(0.0),
        "{out}"
    );
    assert_eq!(
        value(
            &out,
            "node_systemd_service_restart_total",
            &[("name", "ssh.service")]
        ),
        Some(4.0)
    );
    assert_eq!(
        value(&out, "node_systemd_units", &[("state", "failed")]),
        Some(2.0)
    );
    // A unit that appears between scrapes.
    let mut now = units();
    now.push(FakeUnit::new("new.service", "activating"));
    fake.set_units(now);
    let out = scrape(module.as_ref(), Duration::from_secs(10));
    assert_eq!(
        state(&out, "new.service", "activating", "simple"),
        Some(1.0),
        "{out}"
    );
    // All over one connection.
    assert_eq!(fake.clients().len(), 1, "{:?}", fake.clients());
}

#[test]
fn reconnects_after_the_bus_restarts() {
    let mut fake = FakeSystemd::start("252", units());
    let module = start(&fake.address(), &[]);
    let out = scrape(module.as_ref(), Duration::from_secs(10));
    assert_eq!(success(&out), Some(1.0), "{out}");

    // dbus.service restarted on the node: the kept connection is dead. The next scrape
    // notices, connects again and still answers.
    fake.restart_daemon();
    fake.update("backup.service", |u| u.active_state = "active".into());
    let out = scrape(module.as_ref(), Duration::from_secs(10));
    assert_eq!(success(&out), Some(1.0), "{out}");
    assert_eq!(
        state(&out, "backup.service", "active", "oneshot"),
        Some(1.0),
        "{out}"
    );
    let clients = fake.clients();
    assert_eq!(clients.len(), 2, "{clients:?}");
    assert!(
        clients[0].starts_with("bus 1 ") && clients[1].starts_with("bus 2 "),
        "{clients:?}"
    );
    assert_eq!(module.health(), Health::Up);
}

#[test]
fn an_absent_bus_is_a_collector_error_not_a_wait() {
    let dir = TempDir::new("systemd-absent");
    let address = format!("unix:path={}", dir.join("no_bus_here").display());
    let module = start(&address, &[]);
    // Generous budget: an absent socket fails at connect(), long before it.
    let budget = Duration::from_secs(20);
    let started = Instant::now();
    let out = scrape(module.as_ref(), budget);
    assert_eq!(success(&out), Some(0.0), "{out}");
    assert!(!out.contains("node_systemd_"), "{out}");
    assert!(
        started.elapsed() < budget / 2,
        "an absent bus waited {:?} instead of failing",
        started.elapsed()
    );
    assert_eq!(module.health(), Health::Up);

    // A socket file nobody listens on: refused, just as fast.
    let path = dir.join("dead_socket");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let module = start(&format!("unix:path={}", path.display()), &[]);
    let out = scrape(module.as_ref(), budget);
    assert_eq!(success(&out), Some(0.0), "{out}");
}

#[test]
fn a_bus_that_never_answers_fails_by_the_collectors_deadline() {
    // Accepts the connection and then says nothing, not even to the authentication.
    let dir = TempDir::new("systemd-silent");
    let path = dir.join("silent_bus");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let held = std::thread::spawn(move || {
        let conns: Vec<_> = listener.incoming().take(2).collect();
        std::thread::sleep(Duration::from_secs(5));
        drop(conns);
    });
    let module = start(&format!("unix:path={}", path.display()), &[]);
    for _ in 0..2 {
        let out = scrape(module.as_ref(), Duration::from_millis(1500));
        assert_eq!(success(&out), Some(0.0), "{out}");
        // It gave up by its own deadline: not left behind as stuck.
        assert_eq!(module.health(), Health::Up);
    }
    held.join().unwrap();
}

#[test]
fn private_talks_to_systemd_directly() {
    // systemd's /run/systemd/private takes direct connections: no bus, no Hello.
    let mut fake = FakeSystemd::start("252", units());
    let private = fake.serve_private();
    let module = start(&private, &["collector.systemd.private"]);
    let out = scrape(module.as_ref(), Duration::from_secs(10));
    assert_eq!(success(&out), Some(1.0), "{out}");
    assert_eq!(
        state(&out, "ssh.service", "active", "notify"),
        Some(1.0),
        "{out}"
    );
    assert_eq!(value(&out, "node_systemd_system_running", &[]), Some(1.0));

    // The same socket as a bus (a Hello first) is not systemd's private socket's protocol.
    let module = start(&private, &[]);
    let out = scrape(module.as_ref(), Duration::from_secs(10));
    assert_eq!(success(&out), Some(0.0), "{out}");
}

#[test]
fn a_module_can_be_dropped_inside_a_runtime() {
    // A reload may drop a module instance from the agent's tokio runtime before it ever
    // scraped (after a scrape the last reference goes with its worker thread instead). The
    // collector's own runtime must not panic there ("cannot drop a runtime in a context where
    // blocking is not allowed").
    let agent = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let module = start("unix:path=/nonexistent/eos-test-bus", &[]);
    agent.block_on(async move { drop(module) });
}
