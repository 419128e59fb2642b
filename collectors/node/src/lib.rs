//! The node module: a drop-in replacement for node_exporter 1.x.
//!
//! Each node_exporter collector (cpu, meminfo, filesystem, ...) is one file under
//! `src/collectors/`, registered in `src/registry.rs`; `src/collector.rs` describes the
//! pattern. The module runs the enabled collectors one after the other on every scrape, into
//! the agent's encoder, and adds node_exporter's own families:
//! `node_scrape_collector_duration_seconds{collector}`,
//! `node_scrape_collector_success{collector}` and `node_exporter_build_info`.
//!
//! Collectors run in order on the scrape's thread. Splitting them over two threads was
//! measured (`cargo xtask bench node`): no latency gain behind the agent's HTTP server and
//! about 8% more CPU per scrape, so it was left out. A collector that fails has its output
//! dropped and `node_scrape_collector_success 0`; one that would run past the scrape deadline
//! is skipped and reported the same way.
//!
//! A scrape may narrow the collectors with node_exporter's `collect[]=<name>` (only these)
//! and `exclude[]=<name>` (all but these) query parameters.
//!
//! ```
//! use eos_module::{ModuleConfig, ModuleDef};
//! let mut config = eos_node::NodeConfig::default();
//! config.apply_flag("collector.disable-defaults", None).unwrap();
//! config.apply_flag("collector.loadavg", None).unwrap();
//! assert!(eos_node::NodeModule::flags_help().contains("--collector.<name>"));
//! ```

mod collector;
mod collectors;
mod config;
mod registry;

pub use config::{
    CpuConfig, DiskstatsConfig, FieldsConfig, FilesystemConfig, NetclassConfig, NetdevConfig,
    NodeConfig, Pattern, PowersupplyConfig, StatConfig, TextfileConfig,
};

use eos_exposition::{Encoder, Kind};
use eos_module::{HostPaths, Module, ModuleContext, ModuleDef, ModuleError, Scrape};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Mutex;
use std::time::Instant;

use crate::collector::{Collector, Ctx};

/// The node module, as the agent registers it.
pub struct NodeModule;

impl ModuleDef for NodeModule {
    const NAME: &'static str = "node";
    const METRIC_PREFIXES: &'static [&'static str] = &["node_"];
    const FLAG_PREFIXES: &'static [&'static str] = &["--collector.", "--no-collector."];
    type Config = NodeConfig;

    fn start(config: &NodeConfig, ctx: &ModuleContext) -> Result<Box<dyn Module>, ModuleError> {
        Ok(Box::new(Node::new(config, ctx)?))
    }

    fn flags_help() -> &'static str {
        config::FLAGS_HELP
    }
}

/// The running module: the enabled collectors, built once.
struct Node {
    collectors: Vec<(&'static str, Box<dyn Collector>)>,
    paths: HostPaths,
    version: &'static str,
    revision: &'static str,
    /// Read buffers kept between scrapes (one per concurrent scrape).
    buffers: Mutex<Vec<Vec<u8>>>,
}

impl Node {
    fn new(config: &NodeConfig, ctx: &ModuleContext) -> Result<Node, String> {
        let mut collectors = Vec::new();
        for def in registry::ALL {
            if config.collector_enabled(def.name, def.default_enabled) {
                let c = (def.build)(config, ctx.host())
                    .map_err(|e| format!("node collector {}: {e}", def.name))?;
                collectors.push((def.name, c));
            }
        }
        Ok(Node {
            collectors,
            paths: ctx.host().clone(),
            version: ctx.facts.version,
            revision: ctx.facts.revision,
            buffers: Mutex::new(Vec::new()),
        })
    }

    fn take_buffer(&self) -> Vec<u8> {
        match self.buffers.lock() {
            Ok(mut pool) => pool.pop().unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    fn return_buffer(&self, buf: Vec<u8>) {
        if let Ok(mut pool) = self.buffers.lock() {
            pool.push(buf);
        }
    }
}

/// Whether the scrape's `collect[]`/`exclude[]` parameters select the collector `name`.
fn selected(scrape: &Scrape<'_>, name: &str) -> bool {
    let mut collect = scrape.param_values("collect[]").peekable();
    if collect.peek().is_some() && !collect.any(|c| c == name) {
        return false;
    }
    !scrape.param_values("exclude[]").any(|c| c == name)
}

/// One collector's outcome in this scrape.
struct Outcome {
    name: &'static str,
    seconds: f64,
    success: bool,
}

impl Module for Node {
    fn collect(&self, enc: &mut Encoder<'_>, scrape: &Scrape<'_>) {
        for name in scrape
            .param_values("collect[]")
            .chain(scrape.param_values("exclude[]"))
        {
            if !self.collectors.iter().any(|(n, _)| *n == name) {
                tracing::warn!(
                    collector = name,
                    "collect[]/exclude[] names a collector that is not enabled"
                );
            }
        }
        let mut buf = self.take_buffer();
        let mut outcomes = Vec::with_capacity(self.collectors.len());
        for (name, collector) in &self.collectors {
            if !selected(scrape, name) {
                continue;
            }
            let start = Instant::now();
            if start >= scrape.deadline {
                tracing::warn!(
                    collector = name,
                    "node collector skipped: scrape deadline passed"
                );
                outcomes.push(Outcome {
                    name,
                    seconds: 0.0,
                    success: false,
                });
                continue;
            }
            let mark = enc.mark();
            let mut ctx = Ctx::new(&self.paths, scrape.deadline, &mut buf);
            let result = catch_unwind(AssertUnwindSafe(|| collector.update(enc, &mut ctx)))
                .unwrap_or_else(|_| Err("collector panicked".to_string()));
            let seconds = start.elapsed().as_secs_f64();
            let success = match result {
                Ok(()) => true,
                Err(e) => {
                    enc.rollback(mark);
                    tracing::warn!(collector = name, error = %e, "node collector failed");
                    false
                }
            };
            outcomes.push(Outcome {
                name,
                seconds,
                success,
            });
        }
        self.return_buffer(buf);
        write_outcomes(enc, &outcomes);
        write_build_info(enc, self.version, self.revision);
    }

    fn status(&self) -> Vec<(String, String)> {
        let names: Vec<&str> = self.collectors.iter().map(|(n, _)| *n).collect();
        vec![("collectors".to_string(), names.join(" "))]
    }
}

fn write_outcomes(enc: &mut Encoder<'_>, outcomes: &[Outcome]) {
    let mut f = enc.family(
        "node_scrape_collector_duration_seconds",
        "node_exporter: Duration of a collector scrape.",
        Kind::Gauge,
    );
    for o in outcomes {
        f.sample(&[("collector", o.name)], o.seconds);
    }
    let mut f = enc.family(
        "node_scrape_collector_success",
        "node_exporter: Whether a collector succeeded.",
        Kind::Gauge,
    );
    for o in outcomes {
        f.sample(&[("collector", o.name)], if o.success { 1.0 } else { 0.0 });
    }
}

/// `node_exporter_build_info`, with our values in node_exporter's labels so that dashboards
/// which template on it keep working.
fn write_build_info(enc: &mut Encoder<'_>, version: &str, revision: &str) {
    enc.single(
        "node_exporter_build_info",
        "A metric with a constant '1' value labeled by version, revision, branch, goversion from which node_exporter was built, and the goos and goarch for the build.",
        Kind::Gauge,
        &[
            ("branch", ""),
            ("goarch", go_arch(std::env::consts::ARCH)),
            ("goos", std::env::consts::OS),
            ("goversion", "eos"),
            ("revision", revision),
            ("tags", ""),
            ("version", version),
        ],
        1.0,
    );
}

/// The architecture as Go names it (`GOARCH`), which is what dashboards expect.
fn go_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "loongarch64" => "loong64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eos_exposition::{parse_text, Format};
    use std::time::Duration;

    struct Fake(Result<(), &'static str>);
    impl Collector for Fake {
        fn update(&self, enc: &mut Encoder<'_>, _ctx: &mut Ctx<'_>) -> Result<(), String> {
            enc.single("node_fake_partial", "h", Kind::Gauge, &[], 1.0);
            self.0.map_err(str::to_string)
        }
    }
    struct Panics;
    impl Collector for Panics {
        fn update(&self, _: &mut Encoder<'_>, _: &mut Ctx<'_>) -> Result<(), String> {
            panic!("boom")
        }
    }

    fn node(collectors: Vec<(&'static str, Box<dyn Collector>)>) -> Node {
        Node {
            collectors,
            paths: HostPaths::default(),
            version: "1.2.3",
            revision: "abc",
            buffers: Mutex::new(Vec::new()),
        }
    }

    fn scrape_text(node: &Node, params: &[(&str, &str)], deadline: Instant) -> String {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut buf = Vec::new();
        let mut enc = Encoder::new(&mut buf, Format::Text);
        node.collect(
            &mut enc,
            &Scrape {
                params: &params,
                deadline,
            },
        );
        String::from_utf8(buf).unwrap()
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    fn success(text: &str, name: &str) -> Option<f64> {
        parse_text(text)
            .unwrap()
            .samples
            .iter()
            .find(|s| {
                s.name == "node_scrape_collector_success"
                    && s.labels.get("collector").map(String::as_str) == Some(name)
            })
            .map(|s| s.value)
    }

    #[test]
    fn failing_collector_drops_its_output_and_reports_zero() {
        let n = node(vec![
            ("bad", Box::new(Fake(Err("broken")))),
            ("boom", Box::new(Panics)),
            ("good", Box::new(Fake(Ok(())))),
        ]);
        let out = scrape_text(&n, &[], later());
        assert_eq!(success(&out, "bad"), Some(0.0));
        assert_eq!(success(&out, "boom"), Some(0.0));
        assert_eq!(success(&out, "good"), Some(1.0));
        assert_eq!(out.matches("node_fake_partial 1").count(), 1, "{out}");
        assert!(
            out.contains("node_exporter_build_info{branch=\"\",goarch="),
            "{out}"
        );
        assert!(out.contains("version=\"1.2.3\"} 1"), "{out}");
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        assert_eq!(go_arch("s390x"), "s390x");
    }

    #[test]
    fn collect_and_exclude_params() {
        let n = node(vec![
            ("a", Box::new(Fake(Ok(())))),
            ("b", Box::new(Fake(Ok(())))),
            ("c", Box::new(Fake(Ok(())))),
        ]);
        let out = scrape_text(&n, &[("collect[]", "a"), ("collect[]", "c")], later());
        assert_eq!(success(&out, "a"), Some(1.0));
        assert_eq!(success(&out, "b"), None);
        assert_eq!(success(&out, "c"), Some(1.0));
        let out = scrape_text(&n, &[("exclude[]", "a")], later());
        assert_eq!(success(&out, "a"), None);
        assert_eq!(success(&out, "b"), Some(1.0));
    }

    #[test]
    fn past_deadline_skips_collectors() {
        let n = node(vec![("a", Box::new(Fake(Ok(()))))]);
        let out = scrape_text(&n, &[], Instant::now());
        assert_eq!(success(&out, "a"), Some(0.0));
        assert!(!out.contains("node_fake_partial"), "{out}");
    }

    #[test]
    fn start_builds_enabled_collectors() {
        let ctx = ModuleContext::standalone(
            "node",
            eos_module::Facts {
                node_name: "n".into(),
                host: HostPaths::default(),
                state_root: std::env::temp_dir(),
                version: "v",
                revision: "r",
            },
        );
        let mut config = NodeConfig::default();
        let n = Node::new(&config, &ctx).unwrap();
        assert!(n.collectors.iter().any(|(name, _)| *name == "loadavg"));
        config.disable_defaults = true;
        let n = Node::new(&config, &ctx).unwrap();
        assert!(n.collectors.is_empty());
    }
}
