//! The node module: a drop-in replacement for node_exporter 1.x.
//!
//! Each node_exporter collector (cpu, meminfo, filesystem, ...) is one file under
//! `src/collectors/`, registered in `src/registry.rs`; `src/collector.rs` describes the
//! pattern. The module runs the enabled collectors one after the other on every scrape, into
//! the agent's encoder, and adds node_exporter's own families:
//! `node_scrape_collector_duration_seconds{collector}`,
//! `node_scrape_collector_success{collector}` and `node_exporter_build_info`.
//!
//! Collectors run in order on a worker thread kept between scrapes, while the scrape thread
//! keeps the time (`src/runner.rs`): a collector that blocks (a `/proc` file of a hung
//! driver) is left behind after its budget, with `node_scrape_collector_success 0`, and the
//! others still answer within the deadline. Its call is then stuck, for the whole process
//! (`src/stuck.rs`): every scrape, by this instance or one started by a later reload, skips it
//! until the call returns, so it costs one blocked thread, never a pile. Each collector's
//! health (last success, last error, last duration, stuck since; `src/health.rs`) is on the
//! status page and at `/debug/node/`, and a stuck collector makes the module degraded.
//! Splitting the collectors over two threads was measured (`cargo xtask bench node`): no
//! latency gain behind the agent's HTTP server and about 8% more CPU per scrape, so they run
//! one after the other. A collector that fails has its output dropped and
//! `node_scrape_collector_success 0`.
//!
//! A scrape may narrow the collectors with node_exporter's `collect[]=<name>` (only these)
//! and `exclude[]=<name>` (all but these) query parameters. As in node_exporter, a
//! `collect[]` naming a collector that is not enabled, or both parameters together, is
//! answered with 400; an `exclude[]` naming one that is not enabled is ignored.
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
mod device_filter;
mod health;
mod mounts;
mod pattern;
mod registry;
mod runner;
mod settings;
mod stuck;

pub use pattern::Pattern;
pub use registry::NodeConfig;

use eos_exposition::{Encoder, Format, Kind};
use eos_module::http::{Request, Response};
use eos_module::{
    BoxFuture, Collected, Health, Module, ModuleContext, ModuleDef, ModuleError, Scrape,
};
use std::sync::Arc;
use std::time::Instant;

use crate::config::Composed;
use crate::health::Board;
use crate::runner::{Collectors, Entry, Outcome, Ran, Runner};

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
        static HELP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        HELP.get_or_init(config::flags_help::<NodeConfig>)
    }
}

/// The running module: the enabled collectors, built once, their worker threads and health.
struct Node {
    runner: Runner,
    board: Board,
    version: &'static str,
    revision: &'static str,
}

impl Node {
    fn new(config: &NodeConfig, ctx: &ModuleContext) -> Result<Node, String> {
        let mut entries = Vec::new();
        for def in <NodeConfig as Composed>::all() {
            if config.collector_enabled(def.name, def.default_enabled) {
                let collector = (def.build)(config, ctx.host())
                    .map_err(|e| format!("node collector {}: {e}", def.name))?;
                entries.push(Entry {
                    name: def.name,
                    collector,
                });
            }
        }
        Ok(Node::with(
            Collectors {
                entries,
                paths: ctx.host().clone(),
            },
            ctx.facts.version,
            ctx.facts.revision,
        ))
    }

    fn with(collectors: Collectors, version: &'static str, revision: &'static str) -> Node {
        let names = collectors.entries.iter().map(|e| e.name).collect();
        Node {
            runner: Runner::new(Arc::new(collectors)),
            board: Board::new(names),
            version,
            revision,
        }
    }

    fn entries(&self) -> &[Entry] {
        &self.runner.collectors().entries
    }

    fn has(&self, name: &str) -> bool {
        self.entries().iter().any(|e| e.name == name)
    }
}

/// The indices of the collectors that the scrape's `collect[]` (only these) and `exclude[]`
/// (all but these) parameters select.
fn selected(entries: &[Entry], scrape: &Scrape<'_>) -> Vec<usize> {
    let mut collect = scrape.param_values("collect[]").peekable();
    let narrowed = collect.peek().is_some();
    entries
        .iter()
        .enumerate()
        .filter(|(_, e)| !narrowed || scrape.param_values("collect[]").any(|c| c == e.name))
        .filter(|(_, e)| !scrape.param_values("exclude[]").any(|c| c == e.name))
        .map(|(i, _)| i)
        .collect()
}

/// node_exporter's answer to a filtered scrape it cannot serve (its handler's error text).
fn filter_error(e: &str) -> String {
    format!("Couldn't create filtered metrics handler: couldn't create collector: {e}")
}

impl Node {
    /// Writes a scrape's output: the collectors' families, then node_exporter's own.
    fn write(&self, enc: &mut Encoder<'_>, out: &runner::Output) {
        if let Some(encoded) = &out.encoded {
            enc.extend_shared(encoded, &out.records);
            enc.add_dropped(&out.dropped);
        }
        self.board.record(&out.ran);
        write_outcomes(enc, self.entries(), &out.ran);
        write_build_info(enc, self.version, self.revision);
    }
}

impl Module for Node {
    fn collect(&self, enc: &mut Encoder<'_>, scrape: &Scrape<'_>) {
        let selected = selected(self.entries(), scrape);
        let out = self.runner.run(&selected, enc.format(), scrape.deadline);
        self.write(enc, &out);
    }

    /// The collectors run on the module's worker threads anyway: the agent awaits them as a
    /// task, which saves the hop through one of its blocking threads (two thread wake-ups a
    /// scrape).
    fn collect_owned(
        self: Arc<Self>,
        format: Format,
        params: Arc<[(String, String)]>,
        deadline: Instant,
    ) -> Option<BoxFuture<Collected>> {
        Some(Box::pin(async move {
            let scrape = Scrape {
                params: &params,
                deadline,
            };
            let selected = selected(self.entries(), &scrape);
            let out = self.runner.run_async(&selected, format, deadline).await;
            Collected::encode(format, |enc| self.write(enc, &out))
        }))
    }

    /// As node_exporter: `collect[]` must name enabled collectors, `collect[]` and
    /// `exclude[]` do not mix, and `exclude[]` of a name that is not enabled is ignored.
    fn check_params(&self, params: &[(String, String)]) -> Result<(), String> {
        let named = |key: &'static str| {
            params
                .iter()
                .filter(move |(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        if named("collect[]").next().is_some() && named("exclude[]").next().is_some() {
            return Err("Combined collect and exclude queries are not allowed.".to_string());
        }
        for name in named("collect[]") {
            if self.has(name) {
                continue;
            }
            return Err(
                if <NodeConfig as Composed>::all()
                    .iter()
                    .any(|d| d.name == name)
                {
                    filter_error(&format!("disabled collector: {name}"))
                } else {
                    filter_error(&format!("missing collector: {name}"))
                },
            );
        }
        Ok(())
    }

    fn handle(&self, req: Request) -> BoxFuture<Response> {
        let resp = match req.path.as_str() {
            "" | "/" => Response::json(self.board.json()),
            "/collectors" => Response::text(200, self.board.table()),
            _ => Response::not_found(),
        };
        Box::pin(async move { resp })
    }

    fn status(&self) -> Vec<(String, String)> {
        self.board.status()
    }

    fn health(&self) -> Health {
        match self.board.degraded() {
            Some(why) => Health::Degraded(why),
            None => Health::Up,
        }
    }
}

fn write_outcomes(enc: &mut Encoder<'_>, entries: &[Entry], ran: &[Ran]) {
    let name = |r: &Ran| entries.get(r.index).map_or("?", |e| e.name);
    let mut f = enc.family(
        "node_scrape_collector_duration_seconds",
        "node_exporter: Duration of a collector scrape.",
        Kind::Gauge,
    );
    for r in ran {
        f.sample(&[("collector", name(r))], r.took.as_secs_f64());
    }
    let mut f = enc.family(
        "node_scrape_collector_success",
        "node_exporter: Whether a collector succeeded.",
        Kind::Gauge,
    );
    for r in ran {
        let ok = r.outcome == Outcome::Ok;
        f.sample(&[("collector", name(r))], if ok { 1.0 } else { 0.0 });
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
    use crate::collector::{Collector, Ctx};
    use eos_exposition::parse_text;
    use eos_module::HostPaths;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Condvar, Mutex};
    use std::task::{Context, Poll, Waker};
    use std::time::{Duration, Instant};

    /// Writes `node_fake_<name>`, then fails or not.
    struct Fake(&'static str, Result<(), &'static str>);
    impl Collector for Fake {
        fn update(&self, enc: &mut Encoder<'_>, _ctx: &mut Ctx<'_>) -> Result<(), String> {
            let family = format!("node_fake_{}", self.0);
            enc.single(&family, "h", Kind::Gauge, &[], 1.0);
            self.1.map_err(str::to_string)
        }
    }
    fn ok(name: &'static str) -> Box<dyn Collector> {
        Box::new(Fake(name, Ok(())))
    }
    /// Writes a series with a label twice.
    struct Twice;
    impl Collector for Twice {
        fn update(&self, enc: &mut Encoder<'_>, _ctx: &mut Ctx<'_>) -> Result<(), String> {
            enc.single(
                "node_twice",
                "h",
                Kind::Gauge,
                &[("a", "1"), ("a", "2")],
                1.0,
            );
            Ok(())
        }
    }
    struct Panics;
    impl Collector for Panics {
        fn update(&self, _: &mut Encoder<'_>, _: &mut Ctx<'_>) -> Result<(), String> {
            panic!("boom")
        }
    }

    /// A collector that blocks, as a read of a hung `/proc` file does, until released.
    #[derive(Default)]
    struct Gate {
        open: Mutex<bool>,
        opened: Condvar,
        calls: AtomicUsize,
        blocked: AtomicUsize,
    }
    impl Gate {
        fn release(&self) {
            *self.open.lock().unwrap() = true;
            self.opened.notify_all();
        }
    }
    struct Blocks(Arc<Gate>);
    impl Collector for Blocks {
        fn update(&self, enc: &mut Encoder<'_>, _: &mut Ctx<'_>) -> Result<(), String> {
            let g = &self.0;
            g.calls.fetch_add(1, Ordering::SeqCst);
            g.blocked.fetch_add(1, Ordering::SeqCst);
            let mut open = g.open.lock().unwrap();
            while !*open {
                open = g.opened.wait(open).unwrap();
            }
            drop(open);
            g.blocked.fetch_sub(1, Ordering::SeqCst);
            enc.single("node_fake_blocks", "h", Kind::Gauge, &[], 1.0);
            Ok(())
        }
    }

    fn node(collectors: Vec<(&'static str, Box<dyn Collector>)>) -> Node {
        let entries = collectors
            .into_iter()
            .map(|(name, collector)| Entry { name, collector })
            .collect();
        let paths = HostPaths::default();
        Node::with(Collectors { entries, paths }, "1.2.3", "abc")
    }

    fn params(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn what_the_worker_drops_is_counted_in_the_scrape() {
        let n = node(vec![("a", ok("a")), ("twice", Box::new(Twice))]);
        let mut buf = Vec::new();
        let mut enc = Encoder::new(&mut buf, Format::Text);
        n.collect(
            &mut enc,
            &Scrape {
                params: &[],
                deadline: later(),
            },
        );
        assert_eq!(enc.dropped().counts, [0, 1, 0]);
        drop(enc);
        let out = String::from_utf8(buf).unwrap();
        assert!(out.contains("node_fake_a 1"), "{out}");
        assert!(!out.contains("node_twice"), "{out}");
    }

    fn scrape_text(node: &Node, p: &[(&str, &str)], deadline: Instant) -> String {
        let params = params(p);
        let mut buf = Vec::new();
        let mut enc = Encoder::new(&mut buf, Format::Text);
        node.collect(
            &mut enc,
            &Scrape {
                params: &params,
                deadline,
            },
        );
        drop(enc);
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

    fn wait_until(what: &str, cond: impl Fn() -> bool) {
        let give_up = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < give_up, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn debug_page(n: &Node, path: &str) -> String {
        let req = Request {
            path: path.to_string(),
            ..Request::default()
        };
        let mut fut = n.handle(req);
        let mut cx = Context::from_waker(Waker::noop());
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(r) => {
                assert_eq!(r.status, 200);
                String::from_utf8(r.body).unwrap()
            }
            Poll::Pending => panic!("the debug page should be ready at once"),
        }
    }

    #[test]
    fn failing_collector_drops_its_output_and_reports_zero() {
        let n = node(vec![
            ("bad", Box::new(Fake("bad", Err("broken")))),
            ("boom", Box::new(Panics)),
            ("good", ok("good")),
        ]);
        let out = scrape_text(&n, &[], later());
        assert_eq!(success(&out, "bad"), Some(0.0));
        assert_eq!(success(&out, "boom"), Some(0.0));
        assert_eq!(success(&out, "good"), Some(1.0));
        assert!(!out.contains("node_fake_bad"), "{out}");
        assert!(out.contains("node_fake_good 1"), "{out}");
        assert!(
            out.contains("node_exporter_build_info{branch=\"\",goarch="),
            "{out}"
        );
        assert!(out.contains("version=\"1.2.3\"} 1"), "{out}");
        assert_eq!(go_arch("x86_64"), "amd64");
        assert_eq!(go_arch("aarch64"), "arm64");
        assert_eq!(go_arch("s390x"), "s390x");
        // Failures are in the health, but they do not degrade the module.
        assert_eq!(n.health(), Health::Up);
        let status = n.status();
        assert!(
            status
                .iter()
                .any(|(k, v)| k == "collector bad" && v == "failing: broken"),
            "{status:?}"
        );
        let page = debug_page(&n, "/collectors");
        assert!(page.contains("collector panicked"), "{page}");
        for name in ["bad", "boom", "good"] {
            assert!(page.lines().any(|l| l.starts_with(name)), "{page}");
        }
    }

    #[test]
    fn collect_and_exclude_params() {
        let n = node(vec![("a", ok("a")), ("b", ok("b")), ("c", ok("c"))]);
        let out = scrape_text(&n, &[("collect[]", "a"), ("collect[]", "c")], later());
        assert_eq!(success(&out, "a"), Some(1.0));
        assert_eq!(success(&out, "b"), None);
        assert!(!out.contains("node_fake_b"), "{out}");
        assert_eq!(success(&out, "c"), Some(1.0));
        let out = scrape_text(&n, &[("exclude[]", "a")], later());
        assert_eq!(success(&out, "a"), None);
        assert_eq!(success(&out, "b"), Some(1.0));
    }

    #[test]
    fn check_params_answers_like_node_exporter() {
        let n = node(vec![("a", ok("a")), ("b", ok("b"))]);
        let check = |p: &[(&str, &str)]| n.check_params(&params(p));
        assert_eq!(check(&[]), Ok(()));
        assert_eq!(check(&[("collect[]", "a"), ("other", "x")]), Ok(()));
        assert_eq!(
            check(&[("collect[]", "a"), ("collect[]", "bogus")]),
            Err(
                "Couldn't create filtered metrics handler: couldn't create collector: \
                 missing collector: bogus"
                    .to_string()
            )
        );
        // A collector we have, switched off.
        assert_eq!(
            check(&[("collect[]", "loadavg")]),
            Err(
                "Couldn't create filtered metrics handler: couldn't create collector: \
                 disabled collector: loadavg"
                    .to_string()
            )
        );
        // exclude[] of a name that is not enabled is ignored, as node_exporter does.
        assert_eq!(check(&[("exclude[]", "bogus"), ("exclude[]", "a")]), Ok(()));
        assert_eq!(
            check(&[("collect[]", "a"), ("exclude[]", "b")]),
            Err("Combined collect and exclude queries are not allowed.".to_string())
        );
    }

    #[test]
    fn past_deadline_skips_collectors() {
        let n = node(vec![("a", ok("a"))]);
        let out = scrape_text(&n, &[], Instant::now());
        assert_eq!(success(&out, "a"), Some(0.0));
        assert!(!out.contains("node_fake_a"), "{out}");
    }

    #[test]
    fn concurrent_scrapes_each_get_every_collector() {
        let n = node(vec![("a", ok("a")), ("b", ok("b"))]);
        std::thread::scope(|s| {
            let scrapes: Vec<_> = (0..4)
                .map(|_| s.spawn(|| scrape_text(&n, &[], later())))
                .collect();
            for t in scrapes {
                let out = t.join().unwrap();
                assert_eq!(success(&out, "a"), Some(1.0), "{out}");
                assert_eq!(success(&out, "b"), Some(1.0), "{out}");
            }
        });
        assert!(n.runner.spawned() <= 4);
    }

    #[test]
    fn a_stuck_collector_is_left_behind_and_skipped_until_it_returns() {
        let gate = Arc::new(Gate::default());
        let n = node(vec![
            ("t_stuck_before", ok("before")),
            ("t_stuck", Box::new(Blocks(gate.clone()))),
            ("t_stuck_after", ok("after")),
        ]);
        // The scrape answers in time with the others' output; the stuck one reports 0.
        let deadline = Instant::now() + Duration::from_millis(1200);
        let out = scrape_text(&n, &[], deadline);
        assert!(Instant::now() < deadline, "the scrape missed its deadline");
        assert_eq!(gate.blocked.load(Ordering::SeqCst), 1);
        assert_eq!(success(&out, "t_stuck"), Some(0.0), "{out}");
        assert_eq!(success(&out, "t_stuck_before"), Some(1.0), "{out}");
        assert_eq!(success(&out, "t_stuck_after"), Some(1.0), "{out}");
        assert!(out.contains("node_fake_before 1"), "{out}");
        assert!(out.contains("node_fake_after 1"), "{out}");
        assert!(!out.contains("node_fake_blocks"), "{out}");
        // Degraded, naming it; the status page and /debug/node/ say since when.
        match n.health() {
            Health::Degraded(why) => {
                assert!(why.starts_with("collector t_stuck stuck for "), "{why}");
                assert!(why.contains(" since 20"), "{why}");
            }
            h => panic!("expected degraded, got {h:?}"),
        }
        let status = n.status();
        assert!(
            status
                .iter()
                .any(|(k, v)| k == "collector t_stuck" && v.starts_with("stuck since 20")),
            "{status:?}"
        );
        let page = debug_page(&n, "/collectors");
        let line = page.lines().find(|l| l.starts_with("t_stuck ")).unwrap();
        assert!(
            line.contains(" stuck ") && line.contains("stuck since 20"),
            "{page}"
        );
        let json = debug_page(&n, "/");
        assert!(
            json.contains("\"degraded\": \"collector t_stuck stuck for "),
            "{json}"
        );
        assert!(json.contains("\"state\": \"stuck\""), "{json}");
        let threads = n.runner.spawned();

        // Later scrapes skip it at once: no second call, no new thread.
        for _ in 0..3 {
            let started = Instant::now();
            let out = scrape_text(&n, &[], later());
            assert!(started.elapsed() < Duration::from_secs(2));
            assert_eq!(success(&out, "t_stuck"), Some(0.0), "{out}");
            assert_eq!(success(&out, "t_stuck_after"), Some(1.0), "{out}");
        }
        assert_eq!(gate.calls.load(Ordering::SeqCst), 1);
        assert_eq!(n.runner.spawned(), threads);

        // Once the call returns, the next scrape runs it again and the module is up.
        gate.release();
        wait_until("the stuck call returned", || !stuck::is_stuck("t_stuck"));
        let out = scrape_text(&n, &[], later());
        assert_eq!(success(&out, "t_stuck"), Some(1.0), "{out}");
        assert!(out.contains("node_fake_blocks 1"), "{out}");
        assert_eq!(n.health(), Health::Up);
        assert_eq!(gate.calls.load(Ordering::SeqCst), 2);
        assert_eq!(n.runner.spawned(), threads);
    }

    /// The same, awaited as a task (how the agent collects the node module).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn as_a_task_a_stuck_collector_is_left_behind_too() {
        let gate = Arc::new(Gate::default());
        let n = Arc::new(node(vec![
            ("t_task_before", ok("before")),
            ("t_task_stuck", Box::new(Blocks(gate.clone()))),
            ("t_task_after", ok("after")),
        ]));
        let scrape = |deadline: Instant| {
            let fut = n
                .clone()
                .collect_owned(Format::Text, Arc::from(Vec::new()), deadline)
                .expect("the node module collects as a task");
            async move {
                // The collectors' families come as a shared chunk, at its offset.
                let c = fut.await;
                let mut text = Vec::new();
                let mut at = 0;
                for (offset, chunk) in &c.shared {
                    text.extend_from_slice(&c.buf[at..*offset]);
                    text.extend_from_slice(chunk);
                    at = *offset;
                }
                text.extend_from_slice(&c.buf[at..]);
                String::from_utf8(text).unwrap()
            }
        };
        let deadline = Instant::now() + Duration::from_millis(1200);
        let out = scrape(deadline).await;
        assert!(Instant::now() < deadline, "the scrape missed its deadline");
        assert_eq!(success(&out, "t_task_stuck"), Some(0.0), "{out}");
        assert_eq!(success(&out, "t_task_after"), Some(1.0), "{out}");
        assert!(out.contains("node_fake_before 1"), "{out}");
        assert!(matches!(n.health(), Health::Degraded(_)));
        let threads = n.runner.spawned();
        let out = scrape(later()).await;
        assert_eq!(success(&out, "t_task_stuck"), Some(0.0), "{out}");
        assert_eq!(gate.calls.load(Ordering::SeqCst), 1);
        gate.release();
        wait_until("the stuck call returned", || {
            !stuck::is_stuck("t_task_stuck")
        });
        let out = scrape(later()).await;
        assert_eq!(success(&out, "t_task_stuck"), Some(1.0), "{out}");
        assert_eq!(n.runner.spawned(), threads);
        assert_eq!(n.health(), Health::Up);
    }

    #[test]
    fn reloads_do_not_start_another_read_of_a_stuck_collector() {
        let gate = Arc::new(Gate::default());
        let instance = || {
            node(vec![
                ("t_reload_ok", ok("reload_ok")),
                ("t_reload_stuck", Box::new(Blocks(gate.clone()))),
            ])
        };
        let first = instance();
        scrape_text(&first, &[], Instant::now() + Duration::from_millis(400));
        assert_eq!(gate.blocked.load(Ordering::SeqCst), 1);
        drop(first);
        for _ in 0..20 {
            // A reload: a new instance of the module, the old one dropped.
            let n = instance();
            let out = scrape_text(&n, &[], Instant::now() + Duration::from_millis(400));
            assert_eq!(success(&out, "t_reload_stuck"), Some(0.0), "{out}");
            assert_eq!(success(&out, "t_reload_ok"), Some(1.0), "{out}");
            assert!(matches!(n.health(), Health::Degraded(_)));
            assert_eq!(gate.blocked.load(Ordering::SeqCst), 1);
        }
        assert_eq!(gate.calls.load(Ordering::SeqCst), 1);
        gate.release();
        wait_until("the stuck call returned", || {
            !stuck::is_stuck("t_reload_stuck")
        });
        let n = instance();
        let out = scrape_text(&n, &[], later());
        assert_eq!(success(&out, "t_reload_stuck"), Some(1.0), "{out}");
        assert_eq!(n.health(), Health::Up);
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
        assert!(n.has("loadavg"));
        config.disable_defaults = true;
        let n = Node::new(&config, &ctx).unwrap();
        assert!(n.entries().is_empty());
    }
}
