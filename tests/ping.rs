//! The ping module in the agent: smokeping_prober's families on /metrics and a smoke graph
//! on the status page. (Loss and delay through namespaces are tested in collectors/ping.)

use eos_tests::{sample, wait_until, Agent, TempDir};
use std::time::Duration;

#[test]
fn loopback_pings_on_metrics_and_a_graph_on_the_status_page() {
    let dir = TempDir::new("ping-e2e");
    let cfg = dir.join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "state_dir: {}\nkubelet: {{enabled: false}}\nmodules:\n  node: {{enabled: false}}\n  containers: {{enabled: false}}\n  probe: {{enabled: false}}\n  ping:\n    enabled: true\n    targets: [127.0.0.1, {{host: localhost, labels: {{site: here}}}}]\n    interval: 200ms\n",
            dir.join("state").display()
        ),
    )
    .expect("writing agent.yaml");
    let mut agent = Agent::start(&["--config", cfg.to_str().expect("utf-8 path")]);
    let pinged = wait_until(Duration::from_secs(20), || {
        let m = agent.metrics();
        sample(
            &m,
            "smokeping_requests_total",
            &[("ip", "127.0.0.1"), ("host", "127.0.0.1")],
        )
        .unwrap_or(0.0)
            >= 5.0
            && sample(
                &m,
                "smokeping_response_duration_seconds_count",
                &[("host", "localhost"), ("site", "here")],
            )
            .unwrap_or(0.0)
                >= 5.0
    });
    assert!(pinged, "{}", agent.metrics());
    let m = agent.metrics();
    assert_eq!(
        sample(&m, "eos_ping_loss_ratio", &[("host", "127.0.0.1")]),
        Some(0.0),
        "{m}"
    );
    let report = eos_tests::promtool_check_metrics(&m);
    assert!(
        report.code == 0 || report.code == 3,
        "{:?}",
        report.problems
    );
    let (status, page) = agent.get("/").expect("status page");
    assert_eq!(status, 200);
    assert!(page.contains("<svg") && !page.contains("<script"), "{page}");
    agent.signal("TERM");
    assert_eq!(agent.wait_exit(Duration::from_secs(20)), Some(0));
}
