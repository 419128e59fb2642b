//! The mtr module in the agent: a scheduled target on /metrics, /debug/mtr on demand, and a
//! clean stop. (The multi-hop behaviour is tested in collectors/mtr with namespaces.)

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
