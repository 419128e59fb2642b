//! A collector stuck on a real blocking read: `<procfs>/loadavg` is a FIFO that nobody writes,
//! so opening it blocks in the kernel the way a hung driver's `/proc` file does.
//!
//! The scrape still answers in time with the other collectors, the module is degraded naming
//! loadavg, and 20 reloads (new module instances) leave exactly one thread blocked on the
//! FIFO and no more threads than before. Once the read returns, loadavg is back.
//!
//! One test in this binary, so that counting the process's threads is meaningful.

use eos_exposition::parse_text;
use eos_module::{Facts, Health, HostPaths, Module, ModuleConfig, ModuleContext, ModuleDef};
use eos_node::{NodeConfig, NodeModule};
use eos_testkit::{wait_until, TempDir};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

#[path = "support/scrape.rs"]
mod support_scrape;
use support_scrape::scrape;

/// A host tree whose `proc/loadavg` is a FIFO, with a real `proc/meminfo`.
fn tree() -> TempDir {
    let dir = TempDir::new("node-stuck");
    std::fs::create_dir_all(dir.join("proc")).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc");
    std::fs::copy(fixtures.join("meminfo"), dir.join("proc/meminfo")).unwrap();
    let fifo = std::ffi::CString::new(dir.join("proc/loadavg").to_str().unwrap()).unwrap();
    // SAFETY: a valid C string; the result is checked.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0, "mkfifo");
    dir
}

fn start(root: &Path) -> Box<dyn Module> {
    let mut config = NodeConfig::default();
    for flag in [
        "collector.disable-defaults",
        "collector.loadavg",
        "collector.meminfo",
        "collector.uname",
    ] {
        config.apply_flag(flag, None).unwrap();
    }
    let ctx = ModuleContext::standalone(
        "node",
        Facts {
            host: HostPaths {
                procfs: root.join("proc"),
                sysfs: root.join("sys"),
                ..HostPaths::default()
            },
            ..Facts::default()
        },
    );
    NodeModule::start(&config, &ctx).unwrap()
}

fn success(text: &str, collector: &str) -> Option<f64> {
    parse_text(text)
        .unwrap()
        .samples
        .into_iter()
        .find(|s| {
            s.name == "node_scrape_collector_success"
                && s.labels.get("collector").map(String::as_str) == Some(collector)
        })
        .map(|s| s.value)
}

/// This process's threads, and how many of them wait for a FIFO's writer.
fn threads() -> (usize, usize) {
    let mut all = 0;
    let mut on_fifo = 0;
    for t in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        all += 1;
        let wchan = std::fs::read_to_string(t.path().join("wchan")).unwrap_or_default();
        if wchan.trim() == "wait_for_partner" {
            on_fifo += 1;
        }
    }
    (all, on_fifo)
}

fn eventually(what: &str, cond: impl Fn() -> bool) {
    assert!(
        wait_until(Duration::from_secs(10), cond),
        "timed out waiting until {what}"
    );
}

#[test]
fn a_blocking_proc_file_costs_one_thread_across_reloads() {
    let tree = tree();
    let root = tree.path().to_path_buf();

    let module = start(&root);
    let out = scrape(module.as_ref(), Duration::from_millis(1200));
    assert_eq!(success(&out, "loadavg"), Some(0.0), "{out}");
    assert_eq!(success(&out, "meminfo"), Some(1.0), "{out}");
    assert_eq!(success(&out, "uname"), Some(1.0), "{out}");
    assert!(out.contains("\nnode_memory_MemTotal_bytes "), "{out}");
    assert!(!out.contains("node_load1"), "{out}");
    match module.health() {
        Health::Degraded(why) => assert!(why.starts_with("collector loadavg stuck for"), "{why}"),
        h => panic!("expected degraded, got {h:?}"),
    }
    eventually("the read blocks on the FIFO", || threads().1 == 1);
    let (before, _) = threads();

    // 20 reloads: each new instance skips loadavg instead of opening the FIFO again.
    let mut module = module;
    for _ in 0..20 {
        drop(module);
        module = start(&root);
        let out = scrape(module.as_ref(), Duration::from_millis(400));
        assert_eq!(success(&out, "loadavg"), Some(0.0), "{out}");
        assert_eq!(success(&out, "meminfo"), Some(1.0), "{out}");
        assert!(matches!(module.health(), Health::Degraded(_)));
    }
    assert_eq!(threads().1, 1, "one read blocked on the FIFO");
    // The old instances' idle workers end once their instance is dropped.
    eventually("no more threads than after the first scrape", || {
        threads().0 <= before
    });

    // The read returns: a writer opens the FIFO (the blocked reader lets it in at once),
    // a regular file takes the FIFO's place, and the reader gets its line.
    let fifo = root.join("proc/loadavg");
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    let regular = root.join("proc/loadavg.new");
    std::fs::write(&regular, "0.25 0.50 0.75 2/300 4242\n").unwrap();
    std::fs::rename(&regular, &fifo).unwrap();
    writer.write_all(b"0.25 0.50 0.75 2/300 4242\n").unwrap();
    drop(writer);
    eventually("the module is up again", || module.health() == Health::Up);
    assert_eq!(threads().1, 0);
    let out = scrape(module.as_ref(), Duration::from_secs(10));
    assert_eq!(success(&out, "loadavg"), Some(1.0), "{out}");
    assert!(out.contains("\nnode_load1 0.25\n"), "{out}");
}
