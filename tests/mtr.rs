//! The mtr module in the agent: a scheduled target on /metrics, /debug/mtr on demand, a clean
//! stop, and a trace of a failing scheduled probe's target logged. (The multi-hop behaviour
//! is tested in collectors/mtr with namespaces.)

use eos_tests::{sample, wait_until, Agent, TempDir};
use std::time::Duration;

#[test]
fn loopback_trace_on_metrics_and_on_demand_then_a_clean_stop() {
    let dir = TempDir::new("mtr-e2e");
    let cfg = dir.join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "state_dir: {}\nkubelet: {{enabled: false}}\nmodules:\n  node: {{enabled: false}}\n  containers: {{enabled: false}}\n  probe: {{enabled: false}}\n  mtr:\n    enabled: true\n    targets: [127.0.0.1]\n    interval: 5s\n    count: 2\n    probe_interval: 100ms\n    timeout: 1s\n",
            dir.join("state").display()
        ),
    )
    .expect("writing agent.yaml");
    let mut agent = Agent::start(&["--config", cfg.to_str().expect("utf-8 path")]);
    let traced = wait_until(Duration::from_secs(20), || {
        let m = agent.metrics();
        sample(
            &m,
            "eos_mtr_destination_reached",
            &[("target", "127.0.0.1")],
        ) == Some(1.0)
            && sample(&m, "eos_mtr_hops", &[("target", "127.0.0.1")]) == Some(1.0)
    });
    assert!(traced, "{}", agent.metrics());
    // The status page shows the last report of each target.
    let (_, page) = agent.get("/").expect("status page");
    assert!(
        page.contains("<pre>") && page.contains("1.|-- 127.0.0.1"),
        "{page}"
    );
    let (status, report) = agent
        .get("/debug/mtr?target=127.0.0.1&count=2")
        .expect("GET /debug/mtr");
    assert_eq!(status, 200, "{report}");
    assert!(report.contains("1.|-- 127.0.0.1"), "{report}");
    assert!(
        report.contains("Loss%") && report.contains("StDev"),
        "{report}"
    );
    let (status, json) = agent
        .get("/debug/mtr?target=127.0.0.1&count=1&format=json")
        .expect("GET /debug/mtr json");
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert!(v.to_string().contains("127.0.0.1"), "{json}");
    let (status, _) = agent
        .get("/debug/mtr?target=169.254.169.254&count=1")
        .expect("GET /debug/mtr denied");
    assert_eq!(status, 403);

    agent.signal("TERM");
    assert_eq!(agent.wait_exit(Duration::from_secs(20)), Some(0));
    let log = agent.log_text();
    assert!(!log.contains("ignored cancellation"), "{log}");
}

/// The agent's log line of the trace after a probe failure, once there is one.
fn on_failure_line(log: &str) -> Option<String> {
    log.lines()
        .find(|l| l.contains("traced the target of a failed probe"))
        .map(str::to_string)
}

#[test]
fn a_failing_scheduled_probe_gets_its_target_traced_and_logged() {
    let dir = TempDir::new("mtr-on-failure");
    let cfg = dir.join("agent.yaml");
    // Nothing listens there: every probe is refused, one a second.
    let closed = eos_testkit::free_port().expect("a free port");
    let target = format!("127.0.0.1:{closed}");
    std::fs::write(
        &cfg,
        format!(
            "state_dir: {}
kubelet: {{enabled: false}}
modules:
  node: {{enabled: false}}
  containers: {{enabled: false}}
  probe:
    enabled: true
    modules:
      tcp_connect: {{prober: tcp, timeout: 1s}}
    targets:
      - {{target: '{target}', module: tcp_connect, interval: 1s}}
  mtr:
    enabled: true
    count: 2
    probe_interval: 100ms
    timeout: 1s
    on_probe_failure: {{enabled: true, min_interval: 1h, max_concurrent: 1}}
",
            dir.join("state").display()
        ),
    )
    .expect("writing agent.yaml");
    let mut agent = Agent::start(&["--config", cfg.to_str().expect("utf-8 path")]);
    let counted =
        |m: &str, result: &str| sample(m, "eos_mtr_on_failure_traces_total", &[("result", result)]);
    // The first failure is traced; the next ones within min_interval are not.
    let done = wait_until(Duration::from_secs(30), || {
        let m = agent.metrics();
        counted(&m, "traced") == Some(1.0)
            && counted(&m, "skipped_rate_limit").is_some_and(|n| n >= 1.0)
            && on_failure_line(&agent.log_text()).is_some()
    });
    let m = agent.metrics();
    assert!(done, "{m}\n{}", agent.log_text());
    assert_eq!(
        sample(
            &m,
            "probe_success",
            &[("target", target.as_str()), ("module", "tcp_connect")]
        ),
        Some(0.0),
        "{m}"
    );
    for result in ["skipped_busy", "denied", "error", "missed"] {
        assert_eq!(counted(&m, result), Some(0.0), "{result}: {m}");
    }
    // One log event at warn, with why the probe failed and the whole report in a field.
    let line = on_failure_line(&agent.log_text()).expect("the log line");
    eprintln!("{line}");
    for want in [
        " WARN ",
        &format!("probe_target=\"{target}\""),
        "probe_module=\"tcp_connect\"",
        "reason=\"Error dialing TCP: err=",
        "reached=true",
        "report=\"Start: ",
        "Loss%   Snt   Last   Avg  Best  Wrst StDev\\n",
        "1.|-- 127.0.0.1 ",
    ] {
        assert!(line.contains(want), "{want:?} not in {line}");
    }
    let (status, index) = agent.get("/debug/mtr").expect("GET /debug/mtr");
    assert_eq!(status, 200);
    assert!(
        index.contains("on probe failure: traced at most once per 3600s per host"),
        "{index}"
    );
    agent.signal("TERM");
    assert_eq!(agent.wait_exit(Duration::from_secs(20)), Some(0));
}
