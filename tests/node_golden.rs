//! The node module's golden test, end to end: the built agent pointed at the fixture `/proc`
//! and `/sys` tree of `collectors/node/tests/fixtures` with node_exporter's path flags, and its
//! whole `node_*` output compared with the same `golden.prom` the library test uses.
//!
//! Regenerate the golden file with `UPDATE_GOLDEN=1 cargo test -p eos-node --test golden`;
//! this test then checks that the binary, its flags and the HTTP path give the same bytes.

use eos_tests::{workspace_root, Agent, TempDir};

#[path = "../collectors/node/tests/support/golden_filter.rs"]
mod golden_filter;

/// The agent's `node_*` output as the golden file holds it; the build info carries the real
/// version here, not the golden test's.
fn stable(text: &str, fixtures: &str) -> String {
    golden_filter::stable(text, fixtures, &["node_exporter_build_info"], true)
}

#[test]
fn agent_on_fixture_tree_matches_golden_file() {
    let fixtures = workspace_root().join("collectors/node/tests/fixtures");
    let f = |sub: &str| fixtures.join(sub).display().to_string();
    let dir = TempDir::new("node-golden");
    let cfg = dir.join("agent.yaml");
    std::fs::write(
        &cfg,
        "modules:\n  node: {enabled: true}\n  containers: {enabled: false}\n",
    )
    .expect("writing the config");
    let args = [
        "--config".to_string(),
        cfg.display().to_string(),
        format!("--path.procfs={}", f("proc")),
        format!("--path.sysfs={}", f("sys")),
        format!("--path.rootfs={}", f("rootfs")),
        format!("--path.udev.data={}", f("udev/data")),
        "--collector.cpu.info".into(),
        "--collector.stat.softirq".into(),
        "--collector.processes".into(),
        "--collector.interrupts".into(),
        format!("--collector.textfile.directory={}", f("textfile")),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let agent = Agent::start(&args);

    let root = fixtures.display().to_string();
    let got = stable(&agent.metrics(), &root);
    let golden = std::fs::read_to_string(fixtures.join("golden.prom")).expect("golden.prom");
    let want = stable(&golden, &root);
    assert!(want.lines().count() > 500, "golden file looks empty");
    if got != want {
        let missing: Vec<&str> = want.lines().filter(|l| !got.contains(l)).take(20).collect();
        let extra: Vec<&str> = got.lines().filter(|l| !want.contains(l)).take(20).collect();
        panic!(
            "agent output differs from golden.prom\nmissing:\n{}\nextra:\n{}",
            missing.join("\n"),
            extra.join("\n")
        );
    }
}
