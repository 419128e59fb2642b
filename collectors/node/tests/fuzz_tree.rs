//! Property test of every node collector's parser at once: the module reads a copy of the
//! fixture tree (`tests/fixtures`, the golden test's) in which one file has been changed the
//! way real files go wrong (truncated, emptied, numbers at the edges, stray lines and bytes,
//! invalid UTF-8; see `eos_testkit::fuzz`). Whatever the change, a scrape must not panic and
//! its output must parse as Prometheus text with every family once. `cargo xtask fuzz node`
//! runs it long.

use eos_exposition::parse_text;
use eos_module::{Facts, HostPaths, Module, ModuleConfig, ModuleContext, ModuleDef};
use eos_node::{NodeConfig, NodeModule};
use eos_testkit::fuzz::{apply, mutation};
use eos_testkit::TempDir;
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// The copied tree, its regular files, and the module reading it (shared by all cases).
struct Tree {
    _dir: TempDir,
    files: Vec<PathBuf>,
    module: Box<dyn Module>,
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let Ok(t) = e.file_type() else { continue };
        if t.is_dir() {
            files(&e.path(), out);
        } else if t.is_file() {
            out.push(e.path());
        }
    }
}

fn tree() -> &'static Tree {
    static TREE: OnceLock<Tree> = OnceLock::new();
    TREE.get_or_init(|| {
        let dir = TempDir::new("node-fuzz");
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(&fixtures)
            .arg(dir.path().join("t"))
            .status()
            .expect("cp");
        assert!(status.success(), "copying the fixture tree");
        let root = dir.path().join("t");
        let mut all = Vec::new();
        files(&root, &mut all);
        all.retain(|p| !p.ends_with("golden.prom"));
        all.sort();
        let mut config = NodeConfig::default();
        for flag in [
            "collector.cpu.info",
            "collector.stat.softirq",
            "collector.processes",
            "collector.interrupts",
        ] {
            config.apply_flag(flag, None).expect("flag");
        }
        config
            .apply_flag(
                "collector.textfile.directory",
                root.join("textfile").to_str(),
            )
            .expect("flag");
        let ctx = ModuleContext::standalone(
            "node",
            Facts {
                node_name: "fuzz".into(),
                host: HostPaths {
                    procfs: root.join("proc"),
                    sysfs: root.join("sys"),
                    rootfs: root.join("rootfs"),
                    udev_data: root.join("udev/data"),
                    log_dir: root.join("log"),
                },
                ..Facts::default()
            },
        );
        let module = NodeModule::start(&config, &ctx).expect("start");
        Tree {
            _dir: dir,
            files: all,
            module,
        }
    })
}

/// A scrape of the module as the agent sends it: a family the module wrote twice is cut at
/// the agent's merge (`eos_exposition::guard::duplicates`), so it is cut here too.
fn scrape(m: &dyn Module) -> String {
    let (text, records) = eos_module::collect_text(m, &[], Duration::from_secs(10));
    let buf = text.into_bytes();
    let cuts = eos_exposition::guard::duplicates(&[&records], &|_, _, _| None);
    let mut out = Vec::with_capacity(buf.len());
    let mut at = 0;
    for (_, r) in cuts {
        let start = records[r].start;
        let end = records.get(r + 1).map_or(buf.len(), |n| n.start);
        out.extend_from_slice(&buf[at..start]);
        at = end;
    }
    out.extend_from_slice(&buf[at..]);
    String::from_utf8(out).expect("the output is UTF-8")
}

/// Each family's HELP appears once, and the text parses.
fn assert_valid(out: &str) {
    if let Err(e) = parse_text(out) {
        panic!("invalid output: {e}");
    }
    let mut seen = std::collections::HashSet::new();
    for l in out.lines().filter_map(|l| l.strip_prefix("# HELP ")) {
        let name = l.split(' ').next().unwrap_or("");
        assert!(seen.insert(name.to_string()), "family {name} twice");
    }
}

proptest! {
    #![proptest_config(eos_testkit::fuzz::config())]

    #[test]
    fn fuzz_node(pick in any::<prop::sample::Index>(), m in mutation()) {
        let t = tree();
        let path = pick.get(&t.files);
        let original = std::fs::read(path).expect("fixture");
        std::fs::write(path, apply(&original, &m)).expect("write");
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| scrape(&*t.module)));
        std::fs::write(path, &original).expect("restore");
        let out = match out {
            Ok(o) => o,
            Err(_) => panic!("{} with {m:?}: the scrape panicked", path.display()),
        };
        assert_valid(&out);
    }
}

#[test]
fn the_unchanged_tree_scrapes_cleanly() {
    let out = scrape(&*tree().module);
    assert_valid(&out);
    assert!(out.contains("node_load1 "), "{out}");
}
