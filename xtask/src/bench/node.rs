//! `cargo xtask bench node`: eos-agent with only the node module against Debian's
//! `prometheus-node-exporter`, both scraping the same collectors on this host.
//!
//! The collector list is read from the agent's own `node_scrape_collector_success{collector}`
//! series, and node_exporter is started with `--collector.disable-defaults` plus
//! `--collector.<name>` for each, so both do the same work. node_exporter keeps its default
//! `go_*`/`process_*`/`promhttp_*` self-metrics, as deployed; the agent keeps its
//! `eos_agent_*` ones. Targets (issue 3): median latency and CPU per scrape at most 0.3x
//! node_exporter's, RSS at most 0.5x (p99 latency is shown without a target). They are printed, not enforced: numbers from a shared
//! 2-core machine are noisy.

use super::{Measure, Options, Side, Target};
use eos_testkit::agent::modules_section;
use eos_testkit::node_exporter::{known_collectors, NODE_EXPORTER, UPSTREAM_DEFAULTS};
use eos_testkit::{free_port, Description, TempDir};
use std::collections::BTreeMap;

const TARGETS: [Target; 3] = [
    Target::new(Measure::MedianLatency, 0.3),
    Target::new(Measure::CpuPerRun, 0.3),
    Target::new(Measure::Rss, 0.5),
];

pub(super) fn run(args: &[String]) -> Result<(), String> {
    let opts = Options::parse(args)?.only_known()?;
    super::need_node_exporter()?;
    let agent = super::agent_under_test(&opts)?;
    let dir = TempDir::try_new("bench-node")?;

    let modules = Description::of(&agent)?.module_names();
    let config = dir.path().join("agent.yaml");
    let text = format!(
        "state_dir: {}\n{}",
        dir.join("state").display(),
        modules_section(&modules, "node", "{enabled: true}")
    );
    std::fs::write(&config, text).map_err(|e| format!("writing {}: {e}", config.display()))?;
    let start_ours = |extra: &[String]| {
        let port = free_port()?;
        Side::new("eos-agent", &agent)
            .args([
                "--config".to_string(),
                config.display().to_string(),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ])
            .args(extra.iter().cloned())
            .listen(port)
            .ready_path("/readyz")
            .request("/metrics")
            .start(&dir)
    };
    let mut ours = start_ours(&[])?;
    let ours_default = enabled_collectors(&ours.fetch("/metrics")?)?;
    let known = known_collectors()?;
    let (collectors, only_ours): (Vec<String>, Vec<String>) =
        ours_default.into_iter().partition(|c| known.contains(c));
    if !only_ours.is_empty() {
        // node_exporter 1.5 lacks these; switch them off on our side too, for the same work.
        drop(ours);
        let off: Vec<String> = only_ours
            .iter()
            .map(|c| format!("--no-collector.{c}"))
            .collect();
        ours = start_ours(&off)?;
    }
    let port = free_port()?;
    let theirs = Side::new("node_exporter", NODE_EXPORTER)
        .args(node_exporter_args(port, &collectors))
        .listen(port)
        .request("/metrics")
        .start(&dir)?;

    println!(
        "collectors ({}): {}",
        collectors.len(),
        collectors.join(" ")
    );
    if !only_ours.is_empty() {
        println!(
            "left out (node_exporter 1.5 has no such collector): {}",
            only_ours.join(" ")
        );
    }
    println!(
        "ours: {} (pid {}), theirs: {NODE_EXPORTER} (pid {})",
        agent.display(),
        ours.pid(),
        theirs.pid()
    );
    let result = super::compare(&ours, &theirs, &opts)?;
    result.print("bench node", &TARGETS);

    // Where the time goes: each side's own node_scrape_collector_duration_seconds, averaged.
    const SAMPLES: usize = 20;
    let mut sums: BTreeMap<String, [f64; 2]> = BTreeMap::new();
    for _ in 0..SAMPLES {
        for (i, side) in [&ours, &theirs].into_iter().enumerate() {
            for (c, v) in collector_durations(&side.fetch("/metrics")?)? {
                sums.entry(c).or_default()[i] += v / SAMPLES as f64;
            }
        }
    }
    let mut rows: Vec<(String, [f64; 2])> = sums.into_iter().collect();
    rows.sort_by(|a, b| b.1[0].total_cmp(&a.1[0]));
    println!(
        "\nper collector (node_scrape_collector_duration_seconds, mean of {SAMPLES} scrapes):"
    );
    println!("{:<18} {:>12} {:>14}", "", "eos-agent", "node_exporter");
    for (c, [o, t]) in rows {
        println!("{c:<18} {:>9.3} ms {:>11.3} ms", o * 1e3, t * 1e3);
    }
    Ok(())
}

/// `(collector, seconds)` from the `node_scrape_collector_duration_seconds` series.
fn collector_durations(metrics: &str) -> Result<Vec<(String, f64)>, String> {
    let mut out = Vec::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("node_scrape_collector_duration_seconds{") else {
            continue;
        };
        let parsed = rest.split_once("collector=\"").and_then(|(_, v)| {
            let (name, tail) = v.split_once('"')?;
            let value = tail.rsplit_once('}')?.1.split_whitespace().next()?;
            Some((name.to_string(), value.parse::<f64>().ok()?))
        });
        out.push(parsed.ok_or_else(|| format!("unreadable duration line {line:?}"))?);
    }
    Ok(out)
}

/// The `collector` labels of `node_scrape_collector_success`, in output order.
fn enabled_collectors(metrics: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for line in metrics.lines() {
        let Some(rest) = line.strip_prefix("node_scrape_collector_success{") else {
            continue;
        };
        let name = rest
            .split_once("collector=\"")
            .and_then(|(_, v)| v.split_once('"'))
            .map(|(v, _)| v)
            .ok_or_else(|| format!("no collector label in {line:?}"))?;
        out.push(name.to_string());
    }
    if out.is_empty() {
        return Err(
            "the agent's /metrics has no node_scrape_collector_success series: \
                    is the node module running?"
                .into(),
        );
    }
    Ok(out)
}

/// node_exporter's flags to serve on `port` with exactly `collectors`.
fn node_exporter_args(port: u16, collectors: &[String]) -> Vec<String> {
    let mut a = vec![
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--collector.disable-defaults".to_string(),
    ];
    a.extend(UPSTREAM_DEFAULTS.iter().map(|f| f.to_string()));
    a.extend(collectors.iter().map(|c| format!("--collector.{c}")));
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collectors_from_metrics() {
        let m = "# HELP node_scrape_collector_success x\n\
                 node_scrape_collector_success{collector=\"loadavg\"} 1\n\
                 node_scrape_collector_duration_seconds{collector=\"cpu\"} 0.1\n\
                 node_scrape_collector_success{collector=\"cpu\"} 0\n";
        assert_eq!(
            enabled_collectors(m),
            Ok(vec!["loadavg".into(), "cpu".into()])
        );
        assert!(enabled_collectors("node_load1 1\n").is_err());
        assert!(
            enabled_collectors("node_scrape_collector_success{x=\"y\"} 1\n")
                .unwrap_err()
                .contains("no collector label")
        );
        assert!(enabled_collectors("node_scrape_collector_success{collector=\"cp").is_err());
    }

    #[test]
    fn durations_from_metrics() {
        let m = "node_scrape_collector_duration_seconds{collector=\"cpu\"} 0.25\n\
                 node_scrape_collector_success{collector=\"cpu\"} 1\n\
                 node_scrape_collector_duration_seconds{collector=\"os\"} 1e-05\n";
        assert_eq!(
            collector_durations(m),
            Ok(vec![("cpu".into(), 0.25), ("os".into(), 1e-5)])
        );
        assert_eq!(collector_durations("node_load1 1\n"), Ok(vec![]));
        let bad = "node_scrape_collector_duration_seconds{collector=\"cpu\"} x\n";
        assert!(collector_durations(bad).is_err());
        let cut = "node_scrape_collector_duration_seconds{collector=\"cpu";
        assert!(collector_durations(cut).is_err());
    }

    #[test]
    fn exporter_flags() {
        assert_eq!(
            node_exporter_args(9, &["cpu".into(), "uname".into()]),
            [
                vec![
                    "--web.listen-address=127.0.0.1:9",
                    "--collector.disable-defaults",
                ],
                UPSTREAM_DEFAULTS.to_vec(),
                vec!["--collector.cpu", "--collector.uname"]
            ]
            .concat()
        );
    }
}
