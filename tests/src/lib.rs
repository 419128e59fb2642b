//! Harness for the end-to-end tests of the whole `eos-agent` binary: the launchers and clients
//! shared through `eos-testkit` (the agent, a real Prometheus and node_exporter, HTTP, temp
//! dirs), plus what only these tests need: samples read out of an exposition, agent configs
//! with one module on, and `promtool check metrics`.
//!
//! The tests start the built agent: `$EOS_AGENT_BIN`, or the newest `eos-agent` in `target/`
//! (see [`eos_testkit::agent`]). `cargo xtask ci` builds it before running the tests; by hand,
//! run `cargo build -p eos-agent` first.

pub use eos_testkit::agent::{binary as agent_bin, workspace_root};
pub use eos_testkit::http::http;
pub use eos_testkit::node_exporter::known_collectors;
pub use eos_testkit::{wait_until, Agent, NodeExporter, Prometheus, TempDir};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// The module names of the agent build under test, from `eos-agent describe`.
pub fn agent_modules() -> Vec<String> {
    eos_testkit::agent::describe().module_names()
}

/// An agent config with only `module` enabled (its defaults) and every other module off,
/// keeping state under `dir`.
pub fn single_module_config(module: &str, dir: &Path) -> String {
    format!(
        "state_dir: {}\n{}",
        dir.join("state").display(),
        eos_testkit::agent::modules_section(&agent_modules(), module, "{enabled: true}")
    )
}

/// The value of the first sample of `name` with all of `labels`, from a text exposition.
pub fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let parsed = eos_exposition::parse_text(metrics).ok()?;
    parsed
        .samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

/// Whether any sample's name starts with `prefix`.
pub fn has_family_prefix(metrics: &str, prefix: &str) -> bool {
    metrics
        .lines()
        .any(|l| !l.starts_with('#') && l.starts_with(prefix))
}

/// What `promtool check metrics` (Debian's `prometheus` package) says about an exposition.
pub struct PromtoolReport {
    /// The exit code: 0 clean, 3 lint problems, anything else a parse failure.
    pub code: i32,
    /// Each problem line, `<metric> <what is wrong>`.
    pub problems: Vec<String>,
}

/// Runs `promtool check metrics` on `text`.
pub fn promtool_check_metrics(text: &str) -> PromtoolReport {
    let bin = Path::new("/usr/bin/promtool");
    assert!(
        bin.exists(),
        "/usr/bin/promtool is missing: `apt-get install -y prometheus` (.ci/run does)"
    );
    let mut child = Command::new(bin)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting promtool");
    let mut stdin = child.stdin.take().expect("promtool stdin");
    let input = text.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("running promtool");
    let _ = writer.join();
    let mut all = String::from_utf8_lossy(&out.stdout).into_owned();
    all.push_str(&String::from_utf8_lossy(&out.stderr));
    PromtoolReport {
        code: out.status.code().unwrap_or(-1),
        problems: all
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
    }
}
