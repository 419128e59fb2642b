//! A real Prometheus (Debian's package) scrapes the agent and sees it up, with its
//! self-metrics queryable through `/api/v1/query`.

use eos_tests::{wait_until, Agent, Prometheus};
use std::time::Duration;

#[test]
fn prometheus_scrapes_the_agent() {
    let agent = Agent::start(&[]);
    let prom = Prometheus::start(&[&agent.addr]);

    let up = wait_until(Duration::from_secs(30), || {
        prom.query_value("up{job=\"eos\"}") == Some(1.0)
    });
    assert!(up, "up never became 1; agent log:\n{}", agent.log_text());

    // Self-metrics arrive through Prometheus, not just through our own endpoint.
    let seen = wait_until(Duration::from_secs(15), || {
        prom.query_value("eos_agent_config_last_reload_successful") == Some(1.0)
    });
    assert!(
        seen,
        "eos_agent_config_last_reload_successful not 1 in Prometheus"
    );
    let info = prom.query("eos_agent_build_info");
    assert_eq!(info.len(), 1, "{info:?}");
    assert!(info[0]["metric"]["version"]
        .as_str()
        .is_some_and(|v| !v.is_empty()));
    assert!(info[0]["metric"]["revision"].as_str().is_some());
    for q in [
        "eos_agent_config_hash",
        "eos_agent_config_last_reload_success_timestamp_seconds",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
    ] {
        let v = prom.query_value(q);
        assert!(v.is_some_and(|v| v > 0.0), "{q} = {v:?}");
    }
    // A fresh agent may not have used a full clock tick of CPU yet; the series must exist.
    let cpu = prom.query_value("process_cpu_seconds_total");
    assert!(
        cpu.is_some_and(|v| v >= 0.0),
        "process_cpu_seconds_total = {cpu:?}"
    );
    let enabled = prom.query("eos_agent_module_enabled");
    assert!(!enabled.is_empty(), "no eos_agent_module_enabled series");
    // Prometheus sends X-Prometheus-Scrape-Timeout-Seconds: 1; scrapes must fit in it.
    let dur = prom.query_value("scrape_duration_seconds{job=\"eos\"}");
    assert!(
        dur.is_some_and(|d| d < 1.0),
        "scrape_duration_seconds = {dur:?}"
    );
    // The samples scraped so far were all accepted (no duplicate or malformed series).
    let added = prom.query_value("scrape_samples_scraped{job=\"eos\"}");
    assert!(
        added.is_some_and(|n| n > 10.0),
        "scrape_samples_scraped = {added:?}"
    );
}
