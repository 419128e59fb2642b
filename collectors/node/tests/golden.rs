//! Golden test: the node module pointed at the fixture tree under `tests/fixtures/`
//! (`proc/`, `sys/`, `udev/data/`, `rootfs/`), with the whole output compared to
//! `tests/fixtures/golden.prom`.
//!
//! Families that depend on the moment or on system calls rather than on files
//! (`node_scrape_collector_duration_seconds`, `node_time_seconds`,
//! `node_time_zone_offset_seconds`, `node_timex_*`, `node_uname_info`) are left out; see
//! [`golden_filter::VOLATILE`].
//!
//! Adding a collector: add realistic files for it under `tests/fixtures/proc` or
//! `tests/fixtures/sys` (small text files, as the kernel writes them), then regenerate the
//! golden file and review its diff:
//!
//! ```sh
//! UPDATE_GOLDEN=1 cargo test -p eos-node --test golden
//! git diff collectors/node/tests/fixtures/golden.prom
//! ```
//!
//! Collectors that are off by default and settings other than the defaults are enabled
//! below in [`config`], so that their output is covered too.

use eos_exposition::parse_text;
use eos_module::{Facts, HostPaths, ModuleConfig, ModuleContext, ModuleDef};
use eos_node::{NodeConfig, NodeModule};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[path = "support/golden_filter.rs"]
mod golden_filter;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The defaults plus the optional outputs that the fixtures cover.
fn config() -> NodeConfig {
    let mut c = NodeConfig::default();
    for flag in [
        "collector.cpu.info",
        "collector.stat.softirq",
        "collector.processes",
        "collector.interrupts",
    ] {
        c.apply_flag(flag, None).unwrap();
    }
    let textfile = fixtures().join("textfile");
    c.apply_flag("collector.textfile.directory", textfile.to_str())
        .unwrap();
    c
}

fn scrape() -> String {
    let root = fixtures();
    let ctx = ModuleContext::standalone(
        "node",
        Facts {
            node_name: "fixture".into(),
            host: HostPaths {
                procfs: root.join("proc"),
                sysfs: root.join("sys"),
                rootfs: root.join("rootfs"),
                udev_data: root.join("udev/data"),
                log_dir: root.join("log"),
            },
            state_root: std::env::temp_dir(),
            version: "0.0.0-golden",
            revision: "golden",
        },
    );
    let module = NodeModule::start(&config(), &ctx).unwrap();
    eos_module::collect_text(&*module, &[], Duration::from_secs(30)).0
}

/// The output as the golden file holds it; see [`golden_filter::stable`].
fn stable(text: &str) -> String {
    golden_filter::stable(text, &fixtures().display().to_string(), &[], false)
}

#[test]
fn fixture_tree_matches_golden_file() {
    let got = stable(&scrape());
    parse_text(&got).unwrap();
    let golden = fixtures().join("golden.prom");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&golden)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", golden.display()));
    if got != want {
        let diff: Vec<String> = want
            .lines()
            .filter(|l| !got.lines().any(|g| g == *l))
            .map(|l| format!("- {l}"))
            .chain(
                got.lines()
                    .filter(|l| !want.lines().any(|w| w == *l))
                    .map(|l| format!("+ {l}")),
            )
            .collect();
        panic!(
            "output differs from {} (UPDATE_GOLDEN=1 to accept):\n{}",
            golden.display(),
            diff.join("\n")
        );
    }
}
