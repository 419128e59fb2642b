//! The module supervisor: starts, stops and restarts modules as their config sections change,
//! and gathers their samples for a scrape without letting one slow module hold up the others.

use crate::body::SharedOwner;
use crate::config::Config;
use crate::modules::Registered;
use bytes::Bytes;
use eos_exposition::{Encoder, Format, Kind, SharedChunks};
use eos_module::{Health, Module, Scrape};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// Why a module's part of a scrape was missing.
#[derive(Clone, Copy, Debug)]
#[repr(usize)]
enum ScrapeError {
    /// It did not finish before the scrape deadline.
    Timeout = 0,
    /// An earlier collection is still running past its scrape's deadline (it hung), so this
    /// one was skipped instead of piling up another stuck thread.
    Busy = 1,
    /// It panicked; the agent caught it.
    Panic = 2,
}

/// The `reason` label of each [`ScrapeError`], by its index.
const SCRAPE_ERROR_REASONS: [&str; 3] = ["timeout", "busy", "panic"];

/// One registered module and what is running of it.
struct Slot {
    reg: Box<dyn Registered>,
    state: Mutex<SlotState>,
    /// The size of the module's last output, to size the next buffer in one allocation.
    last_size: AtomicU64,
    last_duration_us: AtomicU64,
    errors: [AtomicU64; 3],
}

#[derive(Default)]
struct SlotState {
    enabled: bool,
    running: Option<Running>,
    start_error: Option<String>,
}

/// A started module instance.
#[derive(Clone)]
struct Running {
    module: Arc<dyn Module>,
    /// Collections of this instance still running after their scrape gave up on them.
    hung: Arc<AtomicIsize>,
}

/// How long a module gets to stop before the agent moves on without it.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the status page and self-metrics show about one module.
pub struct ModuleView {
    pub name: &'static str,
    pub enabled: bool,
    pub up: bool,
    /// Why it is down, if it is.
    pub problem: Option<String>,
    pub status: Vec<(String, String)>,
    pub paths: &'static [&'static str],
}

/// Owns every module slot. Shared by the HTTP server and the reload task.
pub struct Supervisor {
    slots: Vec<Slot>,
    ready: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Supervisor {
    /// A supervisor for these module kinds (normally `modules::registry()`).
    pub fn new(registry: Vec<Box<dyn Registered>>) -> Self {
        Supervisor {
            slots: registry
                .into_iter()
                .map(|reg| Slot {
                    reg,
                    state: Mutex::default(),
                    last_size: AtomicU64::new(0),
                    last_duration_us: AtomicU64::new(0),
                    errors: Default::default(),
                })
                .collect(),
            ready: AtomicBool::new(false),
        }
    }

    /// True once the first config has been applied.
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Brings the modules in line with `new`. With `old`, only modules whose section (or the
    /// shared context: node name, host paths, state dir) changed are stopped and restarted;
    /// with `retry_failed`, enabled modules that failed to start are tried again too.
    pub async fn apply(&self, old: Option<&Config>, new: &Config, retry_failed: bool) {
        let ctx = new.module_context();
        let ctx_changed = old.is_none_or(|o| o.module_context() != ctx);
        for slot in &self.slots {
            let name = slot.reg.name();
            let failed = retry_failed && lock(&slot.state).start_error.is_some();
            let changed = ctx_changed
                || failed
                || old.is_none_or(|o| slot.reg.section_changed(&o.modules, &new.modules));
            if !changed {
                continue;
            }
            let previous = lock(&slot.state).running.take();
            if let Some(r) = previous {
                stop(name, &r.module).await;
            }
            let enabled = slot.reg.enabled(&new.modules);
            let (running, start_error) = if enabled {
                let started = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    slot.reg.start(&new.modules, &ctx)
                }));
                match started {
                    Ok(Ok(m)) => {
                        info!(module = name, "module started");
                        let running = Running {
                            module: Arc::from(m),
                            hung: Arc::default(),
                        };
                        (Some(running), None)
                    }
                    Ok(Err(e)) => {
                        error!(module = name, error = %e, "module failed to start");
                        (None, Some(e))
                    }
                    Err(_) => {
                        error!(module = name, "module panicked while starting");
                        (
                            None,
                            Some("panicked while starting (a bug; see the log)".into()),
                        )
                    }
                }
            } else {
                (None, None)
            };
            *lock(&slot.state) = SlotState {
                enabled,
                running,
                start_error,
            };
        }
        self.ready.store(true, Ordering::Release);
    }

    /// Stops every module (on SIGTERM).
    pub async fn shutdown(&self) {
        for slot in &self.slots {
            let running = lock(&slot.state).running.take();
            if let Some(r) = running {
                stop(slot.reg.name(), &r.module).await;
            }
        }
    }

    /// The running module that serves `path` (its own top-level path, e.g. `/probe`), or the
    /// module named by `/debug/<name>/...` with the rest of the path.
    pub fn route(&self, path: &str) -> Option<(Arc<dyn Module>, String)> {
        if let Some(rest) = path.strip_prefix("/debug/") {
            let (name, sub) = match rest.find('/') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, "/"),
            };
            let slot = self.slots.iter().find(|s| s.reg.name() == name)?;
            let m = lock(&slot.state).running.as_ref()?.module.clone();
            return Some((m, sub.to_string()));
        }
        self.slots.iter().find_map(|s| {
            let m = lock(&s.state).running.as_ref()?.module.clone();
            m.paths().contains(&path).then(|| (m, path.to_string()))
        })
    }

    /// Runs every module's `collect` on blocking threads, in parallel, and returns what came
    /// back before `deadline`, as chunks in module order. A module that misses the deadline is
    /// left out and counted. Module buffers become response chunks without a copy, and
    /// chunks a module shares from a background round are passed along as they are.
    pub async fn collect(
        &self,
        format: Format,
        params: Arc<[(String, String)]>,
        deadline: Instant,
    ) -> Vec<Bytes> {
        let mut pending = Vec::new();
        for (i, slot) in self.slots.iter().enumerate() {
            let Some(Running { module, hung }) = lock(&slot.state).running.clone() else {
                continue;
            };
            // Concurrent scrapes (an HA Prometheus pair, a person with curl) collect in
            // parallel; only a collection stuck past its deadline holds the next ones back.
            if hung.load(Ordering::Acquire) > 0 {
                count(slot, ScrapeError::Busy);
                warn!(
                    module = slot.reg.name(),
                    "an earlier collection is stuck past its deadline; skipped this scrape"
                );
                continue;
            }
            let progress = Arc::new(AtomicU8::new(RUNNING));
            let guard = CollectionGuard {
                progress: progress.clone(),
                hung: hung.clone(),
            };
            let capacity = slot.last_size.load(Ordering::Relaxed) as usize + 1024;
            let params = params.clone();
            let task = tokio::task::spawn_blocking(move || {
                let _guard = guard;
                let mut buf = Vec::with_capacity(capacity);
                let mut shared = SharedChunks::new();
                let started = Instant::now();
                let mut enc = Encoder::with_shared(&mut buf, format, &mut shared);
                module.collect(
                    &mut enc,
                    &Scrape {
                        params: &params,
                        deadline,
                    },
                );
                (buf, shared, started.elapsed())
            });
            pending.push((i, task, progress, hung));
        }
        let mut out = Vec::with_capacity(pending.len() * 2);
        for (i, task, progress, hung) in pending {
            let slot = &self.slots[i];
            match tokio::time::timeout_at(deadline.into(), task).await {
                Ok(Ok((buf, shared, took))) => {
                    slot.last_size.store(buf.len() as u64, Ordering::Relaxed);
                    slot.last_duration_us
                        .store(took.as_micros() as u64, Ordering::Relaxed);
                    interleave(&mut out, buf, shared);
                }
                Ok(Err(e)) => {
                    count(slot, ScrapeError::Panic);
                    error!(module = slot.reg.name(), error = %e, "module panicked while collecting");
                }
                Err(_) => {
                    // Counted as hung until the blocking thread returns (see CollectionGuard).
                    hung.fetch_add(1, Ordering::AcqRel);
                    if progress
                        .compare_exchange(RUNNING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
                        .is_err()
                    {
                        hung.fetch_sub(1, Ordering::AcqRel);
                    }
                    count(slot, ScrapeError::Timeout);
                    warn!(
                        module = slot.reg.name(),
                        "collection missed the scrape deadline; its samples are left out"
                    );
                }
            }
        }
        out
    }

    /// A snapshot of every module for the status page (with each module's status lines).
    pub fn views(&self) -> Vec<ModuleView> {
        self.views_with(true)
    }

    fn views_with(&self, with_status: bool) -> Vec<ModuleView> {
        self.slots
            .iter()
            .map(|slot| {
                let (enabled, running, start_error) = {
                    let st = lock(&slot.state);
                    (
                        st.enabled,
                        st.running.as_ref().map(|r| r.module.clone()),
                        st.start_error.clone(),
                    )
                };
                let (up, problem, status, paths) = match running {
                    Some(m) => {
                        let status = if with_status { m.status() } else { Vec::new() };
                        match m.health() {
                            Health::Up => (true, None, status, m.paths()),
                            Health::Down(why) => (false, Some(why), status, m.paths()),
                        }
                    }
                    None => (false, start_error, Vec::new(), &[][..]),
                };
                ModuleView {
                    name: slot.reg.name(),
                    enabled,
                    up,
                    problem,
                    status,
                    paths,
                }
            })
            .collect()
    }

    /// The effective module sections of `cfg`, for `/debug/config`.
    pub fn describe(&self, cfg: &Config) -> Vec<(&'static str, String)> {
        self.slots
            .iter()
            .map(|s| (s.reg.name(), s.reg.describe(&cfg.modules)))
            .collect()
    }

    /// The supervisor's own families: module state and per-module scrape health.
    pub fn encode_metrics(&self, enc: &mut Encoder<'_>) {
        let views = self.views_with(false);
        let mut f = enc.family(
            "eos_agent_module_enabled",
            "Whether the module is enabled in the running config.",
            Kind::Gauge,
        );
        for v in &views {
            f.sample(&[("module", v.name)], f64::from(u8::from(v.enabled)));
        }
        let mut f = enc.family(
            "eos_agent_module_up",
            "Whether an enabled module is running and healthy (0 when it could not start or has failed).",
            Kind::Gauge,
        );
        for v in views.iter().filter(|v| v.enabled) {
            f.sample(&[("module", v.name)], f64::from(u8::from(v.up)));
        }
        let mut f = enc.family(
            "eos_agent_module_collect_duration_seconds",
            "How long the module's last collection for /metrics took.",
            Kind::Gauge,
        );
        for (slot, v) in self.slots.iter().zip(&views) {
            if v.enabled {
                let us = slot.last_duration_us.load(Ordering::Relaxed);
                f.sample(&[("module", v.name)], us as f64 / 1e6);
            }
        }
        let mut f = enc.family(
            "eos_agent_module_scrape_errors_total",
            "Scrapes that went without a module's samples, by reason (timeout, busy, panic).",
            Kind::Counter,
        );
        for slot in &self.slots {
            for (j, reason) in SCRAPE_ERROR_REASONS.iter().enumerate() {
                let n = slot.errors[j].load(Ordering::Relaxed);
                f.sample(&[("module", slot.reg.name()), ("reason", reason)], n as f64);
            }
        }
    }
}

/// Appends a module's buffer to `out`, split around the shared chunks at their offsets.
fn interleave(out: &mut Vec<Bytes>, buf: Vec<u8>, shared: SharedChunks) {
    let buf = Bytes::from(buf);
    let mut pos = 0;
    for (at, chunk) in shared {
        let at = at.clamp(pos, buf.len());
        if at > pos {
            out.push(buf.slice(pos..at));
            pos = at;
        }
        out.push(Bytes::from_owner(SharedOwner(chunk)));
    }
    if pos < buf.len() {
        out.push(buf.slice(pos..));
    }
}

fn count(slot: &Slot, e: ScrapeError) {
    slot.errors[e as usize].fetch_add(1, Ordering::Relaxed);
}

/// Stops a module, giving up after [`SHUTDOWN_TIMEOUT`] so one stuck module cannot wedge
/// reloads or the agent's exit.
async fn stop(name: &str, module: &Arc<dyn Module>) {
    match tokio::time::timeout(SHUTDOWN_TIMEOUT, module.shutdown()).await {
        Ok(()) => info!(module = name, "module stopped"),
        Err(_) => warn!(
            module = name,
            "module did not stop within {SHUTDOWN_TIMEOUT:?}; dropped it anyway"
        ),
    }
}

/// A collection's progress, shared by the blocking thread and the scrape that waits for it.
const RUNNING: u8 = 0;
const DONE: u8 = 1;
const ABANDONED: u8 = 2;

/// Marks a blocking collection done when it returns (even by panic); if its scrape had
/// already given up on it, takes it off the module's hung count.
struct CollectionGuard {
    progress: Arc<AtomicU8>,
    hung: Arc<AtomicIsize>,
}

impl Drop for CollectionGuard {
    fn drop(&mut self) {
        if self.progress.swap(DONE, Ordering::AcqRel) == ABANDONED {
            self.hung.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::ModulesConfig;
    use eos_module::ModuleContext;
    use std::time::Duration;

    /// A module kind for tests: its collect sleeps, panics or writes one sample.
    struct TestKind {
        name: &'static str,
        behaviour: Behaviour,
        starts: Arc<std::sync::atomic::AtomicUsize>,
    }

    #[derive(Clone, Copy, PartialEq)]
    enum Behaviour {
        Fast,
        Hang,
        Panic,
        /// Fails to start, like a module without permission for raw sockets.
        FailStart,
        /// Fast, and reports its section as changed on every reload.
        FastChanging,
        /// Takes 300 ms, well within the deadline.
        Slow,
    }

    struct TestModule(&'static str, Behaviour);

    impl Module for TestModule {
        fn collect(&self, enc: &mut Encoder<'_>, _scrape: &Scrape<'_>) {
            match self.1 {
                Behaviour::Fast | Behaviour::FastChanging | Behaviour::FailStart => {}
                Behaviour::Hang => std::thread::sleep(Duration::from_secs(3)),
                Behaviour::Slow => std::thread::sleep(Duration::from_millis(300)),
                Behaviour::Panic => panic!("test module panics"),
            }
            enc.single("test_up", "h", Kind::Gauge, &[("module", self.0)], 1.0);
        }
    }

    impl Registered for TestKind {
        fn name(&self) -> &'static str {
            self.name
        }
        fn enabled(&self, _: &ModulesConfig) -> bool {
            true
        }
        fn section_changed(&self, _: &ModulesConfig, _: &ModulesConfig) -> bool {
            self.behaviour == Behaviour::FastChanging
        }
        fn start(&self, _: &ModulesConfig, _: &ModuleContext) -> Result<Box<dyn Module>, String> {
            self.starts.fetch_add(1, Ordering::Relaxed);
            if self.behaviour == Behaviour::FailStart {
                return Err("no permission for raw sockets".into());
            }
            Ok(Box::new(TestModule(self.name, self.behaviour)))
        }
        fn describe(&self, _: &ModulesConfig) -> String {
            String::new()
        }
    }

    fn supervisor(kinds: &[(&'static str, Behaviour)]) -> Supervisor {
        supervisor_counting(kinds).0
    }

    /// A supervisor, and how often each kind was started.
    fn supervisor_counting(
        kinds: &[(&'static str, Behaviour)],
    ) -> (Supervisor, Vec<Arc<std::sync::atomic::AtomicUsize>>) {
        let counters: Vec<_> = kinds.iter().map(|_| Arc::default()).collect();
        let s = Supervisor::new(
            kinds
                .iter()
                .zip(&counters)
                .map(|(&(name, behaviour), starts)| {
                    Box::new(TestKind {
                        name,
                        behaviour,
                        starts: Arc::clone(starts),
                    }) as Box<dyn Registered>
                })
                .collect(),
        );
        (s, counters)
    }

    fn config() -> Config {
        Config::parse("test", "", &|_| None).expect("empty config")
    }

    async fn scrape(s: &Supervisor, budget: Duration) -> String {
        let out = s
            .collect(Format::Text, Arc::from(Vec::new()), Instant::now() + budget)
            .await;
        String::from_utf8(out.concat()).expect("utf-8")
    }

    #[test]
    fn interleaves_shared_chunks_at_their_offsets() {
        let mut out = Vec::new();
        let shared: SharedChunks = vec![
            (0, Arc::new(b"<0>".to_vec())),
            (2, Arc::new(b"<2>".to_vec())),
            (2, Arc::new(b"<2b>".to_vec())),
            (9, Arc::new(b"<end>".to_vec())),
        ];
        interleave(&mut out, b"abcd".to_vec(), shared);
        assert_eq!(out.concat(), b"<0>ab<2><2b>cd<end>".to_vec());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hung_module_does_not_hold_up_the_others() {
        let s = supervisor(&[("slow", Behaviour::Hang), ("fast", Behaviour::Fast)]);
        s.apply(None, &config(), false).await;
        assert!(s.ready());
        let out = scrape(&s, Duration::from_millis(300)).await;
        assert!(out.contains("test_up{module=\"fast\"} 1"), "{out}");
        assert!(!out.contains("slow"), "{out}");
        // The hung collection is still running: the next scrape skips it as busy.
        let out = scrape(&s, Duration::from_millis(300)).await;
        assert!(out.contains("fast"), "{out}");
        let mut m = Vec::new();
        s.encode_metrics(&mut Encoder::new(&mut m, Format::Text));
        let m = String::from_utf8(m).expect("utf-8");
        assert!(
            m.contains(
                "eos_agent_module_scrape_errors_total{module=\"slow\",reason=\"timeout\"} 1"
            ),
            "{m}"
        );
        assert!(
            m.contains("eos_agent_module_scrape_errors_total{module=\"slow\",reason=\"busy\"} 1"),
            "{m}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_module_is_contained() {
        let s = supervisor(&[("boom", Behaviour::Panic), ("fast", Behaviour::Fast)]);
        s.apply(None, &config(), false).await;
        for _ in 0..2 {
            let out = scrape(&s, Duration::from_secs(5)).await;
            assert!(out.contains("fast"), "{out}");
        }
        let mut m = Vec::new();
        s.encode_metrics(&mut Encoder::new(&mut m, Format::Text));
        let m = String::from_utf8(m).expect("utf-8");
        // Both scrapes ran it (the busy flag was cleared by the panic) and counted the panic.
        assert!(
            m.contains("eos_agent_module_scrape_errors_total{module=\"boom\",reason=\"panic\"} 2"),
            "{m}"
        );
    }

    #[tokio::test]
    async fn reload_restarts_only_changed_sections_and_reports_start_failures() {
        let (s, starts) = supervisor_counting(&[
            ("steady", Behaviour::Fast),
            ("changing", Behaviour::FastChanging),
            ("broken", Behaviour::FailStart),
        ]);
        let cfg = config();
        s.apply(None, &cfg, false).await;
        s.apply(Some(&cfg), &cfg, false).await;
        let n: Vec<usize> = starts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        assert_eq!(n, vec![1, 2, 1], "only the changed section restarts");
        // A requested reload (SIGHUP, POST /-/reload) also retries a failed start.
        s.apply(Some(&cfg), &cfg, true).await;
        let n: Vec<usize> = starts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        assert_eq!(
            n,
            vec![1, 3, 2],
            "the failed module is retried, the steady one is not"
        );
        let views = s.views();
        let broken = views.iter().find(|v| v.name == "broken").expect("broken");
        assert!(broken.enabled && !broken.up);
        assert_eq!(
            broken.problem.as_deref(),
            Some("no permission for raw sockets")
        );
        let mut m = Vec::new();
        s.encode_metrics(&mut Encoder::new(&mut m, Format::Text));
        let m = String::from_utf8(m).expect("utf-8");
        assert!(
            m.contains("eos_agent_module_up{module=\"broken\"} 0"),
            "{m}"
        );
        assert!(
            m.contains("eos_agent_module_up{module=\"steady\"} 1"),
            "{m}"
        );
        assert!(
            m.contains("eos_agent_module_enabled{module=\"broken\"} 1"),
            "{m}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_scrapes_each_get_every_module() {
        let s = Arc::new(supervisor(&[("slow", Behaviour::Slow)]));
        s.apply(None, &config(), false).await;
        let scrapes: Vec<_> = (0..4)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { scrape(&s, Duration::from_secs(5)).await })
            })
            .collect();
        for t in scrapes {
            let out = t.await.expect("scrape task");
            assert!(out.contains("test_up{module=\"slow\"} 1"), "{out}");
        }
    }

    #[tokio::test]
    async fn routes_debug_paths_to_running_modules() {
        let s = supervisor(&[("fast", Behaviour::Fast)]);
        s.apply(None, &config(), false).await;
        let (_, sub) = s.route("/debug/fast/files").expect("routed");
        assert_eq!(sub, "/files");
        assert_eq!(
            s.route("/debug/fast").map(|(_, p)| p),
            Some("/".to_string())
        );
        assert!(s.route("/debug/nope/x").is_none());
        assert!(s.route("/elsewhere").is_none());
        s.shutdown().await;
        assert!(s.route("/debug/fast/").is_none());
    }
}
