//! Runs the node module against this machine's real `/proc` and `/sys` and checks that the
//! output is a valid exposition: it parses, every family is written in one block, no series
//! is duplicated, and the collectors that every Linux host supports succeed.

use eos_exposition::parse_text;
use eos_module::{Facts, HostPaths, ModuleConfig, ModuleContext, ModuleDef};
use eos_node::{NodeConfig, NodeModule};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

fn context() -> ModuleContext {
    ModuleContext::standalone(
        "node",
        Facts {
            node_name: "test".into(),
            host: HostPaths::default(),
            state_root: std::env::temp_dir(),
            version: "0.0.0-test",
            revision: "test",
        },
    )
}

fn scrape(config: &NodeConfig, params: &[(String, String)]) -> String {
    let module = NodeModule::start(config, &context()).unwrap();
    eos_module::collect_text(&*module, params, Duration::from_secs(10)).0
}

/// Checks the exposition and returns `node_scrape_collector_success` by collector.
fn check(text: &str) -> BTreeMap<String, f64> {
    let parsed = parse_text(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    // Each family's header appears once and its samples follow it without interruption.
    let mut seen_families = BTreeSet::new();
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap().to_string();
            assert!(
                seen_families.insert(name.clone()),
                "family {name} written twice"
            );
            current = name;
        } else if !line.starts_with('#') {
            let name = line.split(['{', ' ']).next().unwrap();
            assert_eq!(name, current, "sample outside its family block: {line}");
        }
    }
    let mut series = BTreeSet::new();
    for s in &parsed.samples {
        assert!(
            series.insert((s.name.clone(), s.labels.clone())),
            "duplicate series {} {:?}",
            s.name,
            s.labels
        );
        assert!(s.name.starts_with("node_"), "unexpected family {}", s.name);
    }
    parsed
        .samples
        .iter()
        .filter(|s| s.name == "node_scrape_collector_success")
        .map(|s| (s.labels["collector"].clone(), s.value))
        .collect()
}

#[test]
fn default_collectors_on_this_host() {
    let text = scrape(&NodeConfig::default(), &[]);
    let success = check(&text);
    for c in [
        "cpu",
        "loadavg",
        "meminfo",
        "stat",
        "vmstat",
        "filesystem",
        "diskstats",
        "netdev",
        "netclass",
        "netstat",
        "filefd",
        "pressure",
        "sockstat",
        "softnet",
        "conntrack",
        "time",
        "timex",
        "uname",
        "cpufreq",
        "selinux",
        "dmi",
        "ipvs",
        "nfs",
        "xfs",
        "rapl",
    ] {
        assert_eq!(success.get(c), Some(&1.0), "collector {c} failed:\n{text}");
    }
    for family in [
        "node_cpu_seconds_total",
        "node_memory_MemTotal_bytes",
        "node_load1",
        "node_boot_time_seconds",
        "node_network_receive_bytes_total",
        "node_filesystem_size_bytes",
        "node_uname_info",
        "node_exporter_build_info",
        "node_scrape_collector_duration_seconds",
    ] {
        assert!(
            text.contains(&format!("\n{family}")),
            "{family} missing:\n{text}"
        );
    }
}

#[test]
fn every_collector_enabled_on_this_host() {
    let mut config = NodeConfig::default();
    config.apply_flag("collector.cpu.info", None).unwrap();
    config.apply_flag("collector.stat.softirq", None).unwrap();
    // Whatever a collector finds or fails to find here, the exposition stays valid.
    check(&scrape(&config, &[]));
}

#[test]
fn collect_param_narrows_the_scrape() {
    let params = vec![("collect[]".to_string(), "loadavg".to_string())];
    let success = check(&scrape(&NodeConfig::default(), &params));
    assert_eq!(success.keys().collect::<Vec<_>>(), ["loadavg"]);
}
