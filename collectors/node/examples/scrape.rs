//! Prints one scrape of the node module for this host, as node_exporter's `/metrics` would
//! show it; handy to diff against node_exporter by hand.
//!
//! `cargo run --release -p eos-node --example scrape [-- FLAG...]`, where FLAG is a
//! node_exporter flag without dashes, e.g. `collector.cpu.info`, or `path.procfs=/host/proc`.
//! With `EOS_SCRAPES=N` it scrapes N times and prints the mean time per scrape and the last
//! scrape's time per collector instead.

use eos_exposition::{Encoder, Format};
use eos_module::{Facts, HostPaths, ModuleConfig, ModuleContext, ModuleDef, Scrape};
use eos_node::{NodeConfig, NodeModule};
use std::time::{Duration, Instant};

fn main() -> Result<(), String> {
    let mut config = NodeConfig::default();
    let mut host = HostPaths::default();
    for arg in std::env::args().skip(1) {
        let arg = arg.trim_start_matches('-');
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (arg, None),
        };
        match (name, value) {
            ("path.procfs", Some(v)) => host.procfs = v.into(),
            ("path.sysfs", Some(v)) => host.sysfs = v.into(),
            ("path.rootfs", Some(v)) => host.rootfs = v.into(),
            ("path.udev.data", Some(v)) => host.udev_data = v.into(),
            _ => {
                if !config.apply_flag(name, value)? {
                    return Err(format!("unknown flag --{name}"));
                }
            }
        }
    }
    let ctx = ModuleContext::standalone(
        "node",
        Facts {
            node_name: "example".into(),
            host,
            state_root: std::env::temp_dir(),
            version: env!("CARGO_PKG_VERSION"),
            revision: "example",
        },
    );
    let module = NodeModule::start(&config, &ctx).map_err(|e| e.to_string())?;
    let scrapes: u32 = std::env::var("EOS_SCRAPES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    let mut buf = Vec::new();
    let start = Instant::now();
    for _ in 0..scrapes {
        buf.clear();
        let mut enc = Encoder::new(&mut buf, Format::Text);
        module.collect(
            &mut enc,
            &Scrape {
                params: &[],
                deadline: Instant::now() + Duration::from_secs(10),
            },
        );
    }
    if scrapes > 1 {
        let per = start.elapsed() / scrapes;
        println!("{scrapes} scrapes, {per:?} per scrape, {} bytes", buf.len());
        // The last scrape's per-collector durations, slowest first.
        let text = String::from_utf8_lossy(&buf);
        let mut durations: Vec<(f64, &str)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("node_scrape_collector_duration_seconds{collector=\""))
            .filter_map(|l| l.split_once("\"} "))
            .filter_map(|(c, v)| Some((v.parse().ok()?, c)))
            .collect();
        durations.sort_by(|a, b| b.0.total_cmp(&a.0));
        for (secs, collector) in durations {
            println!("{:>10.1} us  {collector}", secs * 1e6);
        }
    } else {
        print!("{}", String::from_utf8_lossy(&buf));
    }
    Ok(())
}
