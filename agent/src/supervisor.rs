//! The module supervisor: starts, stops and restarts modules as their config sections change,
//! and gathers the samples of every source (the modules, then the agent's own) for a scrape
//! without letting one slow module hold up the others.
//!
//! Each module instance gets its own [`Tasks`]: stopping it cancels them, waits up to the
//! shutdown timeout, aborts what is left and waits for the aborts to land, before a new
//! instance of the same module starts. `start` runs on a blocking thread, so a module that
//! reads files while starting never stalls the server.

use crate::body::SharedOwner;
use crate::config::Config;
use crate::merge::{merge, Output};
use crate::modules::Registered;
use crate::services::SharedServices;
use bytes::Bytes;
use eos_exposition::{DropReason, Dropped, Encoder, Format, Kind, SharedChunks};
use eos_module::tasks::{panic_message, Stopped};
use eos_module::{Health, Module, ModuleContext, ModuleError, Scrape, Service, Tasks};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tracing::{error, info, warn};

/// Paths the agent serves itself; no module may claim them. `/debug/<module>/` belongs to
/// each module by name.
pub const AGENT_PATHS: &[&str] = &["/", "/metrics", "/healthz", "/readyz", "/-/reload"];

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
    reg: Arc<dyn Registered>,
    state: Mutex<SlotState>,
    /// The size of the module's last output, to size the next buffer in one allocation.
    last_size: AtomicU64,
    last_duration_us: AtomicU64,
    errors: [AtomicU64; 3],
    drops: DropStats,
}

/// What one source had dropped to keep the exposition valid, for
/// `eos_agent_exposition_dropped_total` and a log line now and then.
#[derive(Default)]
struct DropStats {
    counts: [AtomicU64; 3],
    /// The last example logged, and when.
    logged: Mutex<Option<(String, Instant)>>,
}

/// How often the same kind of drop is logged again.
const DROP_LOG_EVERY: Duration = Duration::from_secs(300);

impl DropStats {
    fn add(&self, source: &str, d: &Dropped) {
        if d.is_empty() {
            return;
        }
        for (c, n) in self.counts.iter().zip(d.counts) {
            c.fetch_add(n, Ordering::Relaxed);
        }
        let example = d.example.clone().unwrap_or_default();
        let mut logged = lock(&self.logged);
        let due = logged
            .as_ref()
            .is_none_or(|(last, at)| *last != example || at.elapsed() >= DROP_LOG_EVERY);
        if due {
            warn!(
                source,
                dropped = d.counts.iter().sum::<u64>(),
                example = %example,
                "left out of the scrape to keep the exposition valid (see eos_agent_exposition_dropped_total)"
            );
            *logged = Some((example, Instant::now()));
        }
    }
}

#[derive(Default)]
struct SlotState {
    enabled: bool,
    running: Option<Running>,
    start_error: Option<String>,
    /// The shared services the last start attempt was given (successful or not).
    services: Vec<Service>,
    /// What is left of an earlier instance that did not stop (blocking tasks still in a
    /// read) or of a start that timed out: the next instance waits until it is gone.
    lingering: Option<Lingering>,
}

/// An earlier instance (or start) that may still be running on blocking threads.
struct Lingering {
    tasks: Tasks,
    /// Set when the start thread returned (always, for an instance that was running).
    start_returned: Arc<AtomicBool>,
}

impl Lingering {
    fn busy(&self) -> bool {
        !self.start_returned.load(Ordering::Acquire) || self.tasks.running() > 0
    }
}

/// A started module instance.
#[derive(Clone)]
struct Running {
    module: Arc<dyn Module>,
    /// Collections of this instance still running after their scrape gave up on them.
    hung: Arc<AtomicIsize>,
    tasks: Tasks,
    /// The shared services it was given; a change restarts it.
    services: Vec<Service>,
}

/// How long a module's tasks get to return after cancellation before they are aborted.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `start` may take before the module is reported down.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What the status page and self-metrics show about one module.
pub struct ModuleView {
    pub name: &'static str,
    pub enabled: bool,
    pub up: bool,
    /// Why it is down, if it is.
    pub problem: Option<String>,
    /// Why it is only partly working, if it is (still up).
    pub degraded: Option<String>,
    pub status: Vec<(String, String)>,
    pub paths: &'static [&'static str],
}

/// Owns every module slot and the agent's shared services. Shared by the HTTP server and the
/// reload task.
pub struct Supervisor {
    slots: Vec<Slot>,
    /// Sources that are always there and cheap to collect (the agent's own metrics); written
    /// after the modules.
    builtin: Vec<Arc<dyn Module>>,
    /// What the built-in sources had dropped.
    builtin_drops: DropStats,
    services: SharedServices,
    shutdown_timeout: Duration,
    start_timeout: Duration,
    ready: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Supervisor {
    /// A supervisor for these module kinds (normally `modules::registry()`) and built-in
    /// sources.
    pub fn new(registry: Vec<Arc<dyn Registered>>, builtin: Vec<Arc<dyn Module>>) -> Self {
        Supervisor {
            builtin,
            builtin_drops: DropStats::default(),
            services: SharedServices::default(),
            shutdown_timeout: SHUTDOWN_TIMEOUT,
            start_timeout: START_TIMEOUT,
            slots: registry
                .into_iter()
                .map(|reg| Slot {
                    reg,
                    state: Mutex::default(),
                    last_size: AtomicU64::new(0),
                    last_duration_us: AtomicU64::new(0),
                    errors: Default::default(),
                    drops: DropStats::default(),
                })
                .collect(),
            ready: AtomicBool::new(false),
        }
    }

    /// True once the first config has been applied.
    pub fn ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Brings the modules in line with `new`. With `old`, only modules whose section, facts
    /// (node name, host paths, state dir) or shared services changed are stopped and
    /// restarted; with `retry_failed`, enabled modules that failed to start or whose tasks
    /// panicked are tried again too. Every instance that goes is stopped before any new one
    /// starts, so a path or a state file handed from one module to another is free by then.
    pub async fn apply(&self, old: Option<&Config>, new: &Arc<Config>, retry_failed: bool) {
        let facts = new.facts();
        let facts_changed = old.is_none_or(|o| o.facts() != facts);
        self.services.configure(new);
        let mut starting = Vec::new();
        for slot in &self.slots {
            let services = self.services.for_module(slot.reg.services(), new);
            let (failed, services_changed) = {
                let st = lock(&slot.state);
                let task_failed = st
                    .running
                    .as_ref()
                    .is_some_and(|r| r.tasks.failure().is_some());
                (
                    retry_failed && (st.start_error.is_some() || task_failed),
                    st.enabled && st.services != services.kinds(),
                )
            };
            let changed = facts_changed
                || failed
                || services_changed
                || old.is_none_or(|o| slot.reg.section_changed(&o.modules, &new.modules));
            if changed {
                starting.push((slot, services));
            }
        }
        self.stop_all(starting.iter().map(|(slot, _)| *slot)).await;
        for (slot, services) in starting {
            let name = slot.reg.name();
            let enabled = slot.reg.enabled(&new.modules);
            let kinds = services.kinds();
            let lingering = lock(&slot.state).lingering.take().filter(Lingering::busy);
            let (running, start_error, lingering) = if !enabled {
                (None, None, lingering)
            } else if lingering.is_some() {
                let e = "the previous instance still has blocking tasks running; it starts once they return (SIGHUP or POST /-/reload retries)";
                warn!(module = name, "{e}");
                (None, Some(e.to_string()), lingering)
            } else {
                let ctx = ModuleContext {
                    module: name,
                    facts: facts.clone(),
                    services,
                    tasks: Tasks::new(),
                };
                match self.start(slot, new, ctx).await {
                    Ok(r) => {
                        info!(module = name, "module started");
                        (Some(r), None, None)
                    }
                    Err((e, left)) => {
                        error!(module = name, error = %e, "module failed to start");
                        (None, Some(e), left)
                    }
                }
            };
            *lock(&slot.state) = SlotState {
                enabled,
                running,
                start_error,
                services: kinds,
                lingering,
            };
        }
        let in_use = self.slots.iter().any(|s| {
            lock(&s.state)
                .running
                .as_ref()
                .is_some_and(|r| r.services.contains(&Service::PodMetadata))
        });
        self.services.run_pod_metadata(in_use);
        self.ready.store(true, Ordering::Release);
    }

    /// Starts one instance on a blocking thread, bounded by the start timeout, and checks
    /// that the paths it claims are free. On failure, returns what may still be running of
    /// it (a start that timed out, tasks that would not stop).
    async fn start(
        &self,
        slot: &Slot,
        cfg: &Arc<Config>,
        ctx: ModuleContext,
    ) -> Result<Running, (String, Option<Lingering>)> {
        let name = slot.reg.name();
        let tasks = ctx.tasks.clone();
        let services = ctx.services.kinds();
        let start_returned = Arc::new(AtomicBool::new(false));
        let (reg, cfg, returned) = (slot.reg.clone(), cfg.clone(), start_returned.clone());
        let started = tokio::task::spawn_blocking(move || {
            let r = std::panic::catch_unwind(AssertUnwindSafe(|| reg.start(&cfg.modules, &ctx)));
            returned.store(true, Ordering::Release);
            r
        });
        let failed = |e: String, stopped: Stopped| {
            let left = Lingering {
                tasks: tasks.clone(),
                start_returned: start_returned.clone(),
            };
            let busy = stopped == Stopped::BlockingLeftRunning || left.busy();
            Err((e, busy.then_some(left)))
        };
        let module = match tokio::time::timeout(self.start_timeout, started).await {
            Ok(Ok(Ok(Ok(m)))) => Arc::<dyn Module>::from(m),
            Ok(Ok(Ok(Err(e)))) => {
                let stopped = tasks.stop(self.shutdown_timeout).await;
                return failed(start_error_text(&e), stopped);
            }
            Ok(Ok(Err(p))) => {
                let stopped = tasks.stop(self.shutdown_timeout).await;
                return failed(
                    format!(
                        "panicked while starting: {} (a bug; see the log)",
                        panic_message(p.as_ref())
                    ),
                    stopped,
                );
            }
            Ok(Err(e)) => {
                let stopped = tasks.stop(self.shutdown_timeout).await;
                return failed(format!("start did not run: {e}"), stopped);
            }
            Err(_) => {
                let stopped = tasks.stop(self.shutdown_timeout).await;
                return failed(
                    format!(
                        "did not start within {:?}; the next start waits until this one returns",
                        self.start_timeout
                    ),
                    stopped,
                );
            }
        };
        let running = Running {
            module,
            hung: Arc::default(),
            tasks: tasks.clone(),
            services,
        };
        if let Err(e) = self.check_paths(name, running.module.paths()) {
            let stopped = self.stop(name, &running.tasks).await;
            return failed(e, stopped);
        }
        Ok(running)
    }

    /// A module's top-level paths must be absolute, not the agent's own, not under `/debug/`,
    /// and not claimed by another running module.
    fn check_paths(&self, name: &str, paths: &[&str]) -> Result<(), String> {
        for p in paths {
            if !p.starts_with('/') {
                return Err(format!("claims path {p:?}, which does not start with /"));
            }
            if AGENT_PATHS.contains(p) || p.starts_with("/debug/") || *p == "/debug" {
                return Err(format!(
                    "claims path {p}, which the agent serves itself (module routes go under /debug/{name}/ or a path of their own)"
                ));
            }
            for other in &self.slots {
                if other.reg.name() == name {
                    continue;
                }
                let taken = lock(&other.state)
                    .running
                    .as_ref()
                    .is_some_and(|r| r.module.paths().contains(p));
                if taken {
                    return Err(format!(
                        "claims path {p}, which module {} already serves",
                        other.reg.name()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Stops every module (on SIGTERM), and the shared services.
    pub async fn shutdown(&self) {
        self.stop_all(self.slots.iter()).await;
        self.services.run_pod_metadata(false);
    }

    /// Takes the running instances of these slots out of service and stops them all at once
    /// (so that several slow modules share one timeout). Blocking tasks that outlive the stop
    /// are kept as the slot's lingering instance.
    async fn stop_all<'s>(&'s self, slots: impl Iterator<Item = &'s Slot>) {
        let mut stopping = tokio::task::JoinSet::new();
        let mut owners = Vec::new();
        for slot in slots {
            let Some(r) = lock(&slot.state).running.take() else {
                continue;
            };
            let (name, tasks, timeout) = (slot.reg.name(), r.tasks.clone(), self.shutdown_timeout);
            let i = owners.len();
            owners.push((slot, r.tasks));
            stopping.spawn(async move { (i, log_stop(name, tasks.stop(timeout).await, timeout)) });
        }
        let mut outcomes = vec![Stopped::Cleanly; owners.len()];
        while let Some(done) = stopping.join_next().await {
            if let Ok((i, stopped)) = done {
                outcomes[i] = stopped;
            }
        }
        for ((slot, tasks), stopped) in owners.into_iter().zip(outcomes) {
            if stopped == Stopped::BlockingLeftRunning {
                lock(&slot.state).lingering = Some(Lingering {
                    tasks,
                    start_returned: Arc::new(AtomicBool::new(true)),
                });
            }
        }
    }

    /// Stops one instance's tasks: cancels them, waits, aborts what is left.
    async fn stop(&self, name: &'static str, tasks: &Tasks) -> Stopped {
        let timeout = self.shutdown_timeout;
        log_stop(name, tasks.stop(timeout).await, timeout)
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
            let Some(Running { module, hung, .. }) = lock(&slot.state).running.clone() else {
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
            let started = Instant::now();
            // A module that collects on threads of its own is awaited as a task; the others
            // get a blocking thread.
            let task = match module
                .clone()
                .collect_owned(format, params.clone(), deadline)
            {
                Some(fut) => tokio::spawn(async move {
                    let _guard = guard;
                    let c = fut.await;
                    (c.buf, c.shared, c.records, c.dropped, started.elapsed())
                }),
                None => {
                    let params = params.clone();
                    tokio::task::spawn_blocking(move || {
                        let _guard = guard;
                        let mut buf = Vec::with_capacity(capacity);
                        let mut shared = SharedChunks::new();
                        let mut enc = Encoder::with_shared(&mut buf, format, &mut shared);
                        module.collect(
                            &mut enc,
                            &Scrape {
                                params: &params,
                                deadline,
                            },
                        );
                        let (records, dropped) = enc.finish();
                        (buf, shared, records, dropped, started.elapsed())
                    })
                }
            };
            pending.push((i, task, progress, hung));
        }
        let mut outputs = Vec::with_capacity(pending.len() + 1);
        let mut sources = Vec::with_capacity(pending.len() + 1);
        for (i, task, progress, hung) in pending {
            let slot = &self.slots[i];
            match tokio::time::timeout_at(deadline.into(), task).await {
                Ok(Ok((buf, shared, records, dropped, took))) => {
                    slot.last_size.store(buf.len() as u64, Ordering::Relaxed);
                    slot.last_duration_us
                        .store(took.as_micros() as u64, Ordering::Relaxed);
                    slot.drops.add(slot.reg.name(), &dropped);
                    let mut chunks = Vec::with_capacity(shared.len() * 2 + 1);
                    interleave(&mut chunks, buf, shared);
                    outputs.push(Output {
                        chunks,
                        records,
                        owns: slot.reg.metric_prefixes(),
                    });
                    sources.push(Some(slot));
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
        // The agent's own sources are cheap and never block: collected here, after the
        // modules, so that their families describe this very scrape.
        let mut own = Vec::with_capacity(8192);
        let mut enc = Encoder::new(&mut own, format);
        let scrape = Scrape {
            params: &params,
            deadline,
        };
        for b in &self.builtin {
            b.collect(&mut enc, &scrape);
        }
        self.encode_metrics(&mut enc);
        let (records, dropped) = enc.finish();
        self.builtin_drops.add("agent", &dropped);
        outputs.push(Output {
            chunks: vec![Bytes::from(own)],
            records,
            owns: crate::describe::AGENT_METRIC_PREFIXES,
        });
        sources.push(None);
        let (merged, cut) = merge(outputs);
        for (o, name) in cut {
            let (stats, source) = match sources[o] {
                Some(slot) => (&slot.drops, slot.reg.name()),
                None => (&self.builtin_drops, "agent"),
            };
            let mut d = Dropped::default();
            d.counts[DropReason::DuplicateFamily as usize] = 1;
            d.example = Some(format!(
                "duplicate_family: {name} (another source writes it too)"
            ));
            stats.add(source, &d);
        }
        merged
    }

    /// The first running module that refuses these `/metrics` parameters, with its message.
    pub fn check_params(&self, params: &[(String, String)]) -> Result<(), String> {
        for slot in &self.slots {
            let module = lock(&slot.state).running.as_ref().map(|r| r.module.clone());
            if let Some(m) = module {
                m.check_params(params)?;
            }
        }
        Ok(())
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
                        st.running
                            .as_ref()
                            .map(|r| (r.module.clone(), r.tasks.clone())),
                        st.start_error.clone(),
                    )
                };
                let (up, problem, degraded, status, paths) = match running {
                    Some((m, tasks)) => {
                        let status = if with_status { m.status() } else { Vec::new() };
                        match (tasks.failure(), m.health()) {
                            (Some(why), _) | (None, Health::Down(why)) => {
                                (false, Some(why), None, status, m.paths())
                            }
                            (None, Health::Degraded(why)) => {
                                (true, None, Some(why), status, m.paths())
                            }
                            (None, Health::Up) => (true, None, None, status, m.paths()),
                        }
                    }
                    None => (false, start_error, None, Vec::new(), &[][..]),
                };
                ModuleView {
                    name: slot.reg.name(),
                    enabled,
                    up,
                    problem,
                    degraded,
                    status,
                    paths,
                }
            })
            .collect()
    }

    /// The supervisor's own families: module state and per-module scrape health.
    pub fn encode_metrics(&self, enc: &mut Encoder<'_>) {
        let mut f = enc.family(
            "eos_agent_exposition_dropped_total",
            "Samples (invalid_name, duplicate_label) and families (duplicate_family) left out of scrapes to keep the exposition valid, by source.",
            Kind::Counter,
        );
        let sources = self
            .slots
            .iter()
            .map(|s| (s.reg.name(), &s.drops))
            .chain([("agent", &self.builtin_drops)]);
        for (name, stats) in sources {
            for reason in DropReason::ALL {
                let n = stats.counts[reason as usize].load(Ordering::Relaxed);
                f.sample(&[("module", name), ("reason", reason.as_str())], n as f64);
            }
        }
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
            "eos_agent_module_degraded",
            "Whether an enabled, running module is only partly working (see the status page for why).",
            Kind::Gauge,
        );
        for v in views.iter().filter(|v| v.enabled) {
            f.sample(
                &[("module", v.name)],
                f64::from(u8::from(v.degraded.is_some())),
            );
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

fn log_stop(name: &'static str, stopped: Stopped, timeout: Duration) -> Stopped {
    match stopped {
        Stopped::Cleanly => info!(module = name, "module stopped"),
        Stopped::Aborted => warn!(
            module = name,
            "module tasks ignored cancellation for {timeout:?}; aborted them"
        ),
        Stopped::BlockingLeftRunning => error!(
            module = name,
            "module has blocking tasks still running after cancellation; its next instance waits for them"
        ),
    }
    stopped
}

/// A start error as the status page shows it; retryable ones say that a reload retries.
fn start_error_text(e: &ModuleError) -> String {
    if e.is_retryable() {
        format!("{e} (SIGHUP or POST /-/reload retries)")
    } else {
        e.to_string()
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
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    /// A module kind for tests: its collect sleeps, panics or writes one sample; its start
    /// may spawn tasks, claim paths or block.
    struct TestKind {
        name: &'static str,
        behaviour: Behaviour,
        starts: Arc<AtomicUsize>,
    }

    /// Instances of [`Behaviour::StubbornTask`] whose task is alive, and whether two ever were.
    static LIVE: AtomicUsize = AtomicUsize::new(0);
    static OVERLAPPED: AtomicBool = AtomicBool::new(false);

    /// Counts a stubborn task alive until its future is dropped (which an abort does).
    struct Alive;
    impl Alive {
        fn new() -> Alive {
            if LIVE.fetch_add(1, Ordering::SeqCst) > 0 {
                OVERLAPPED.store(true, Ordering::SeqCst);
            }
            Alive
        }
    }
    impl Drop for Alive {
        fn drop(&mut self) {
            LIVE.fetch_sub(1, Ordering::SeqCst);
        }
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
        /// Starts a task that ignores cancellation (and changes section on every reload).
        StubbornTask,
        /// Starts a task that panics.
        TaskPanics,
        /// Claims a top-level path.
        Claims(&'static str),
        /// Blocks in start until the async side sets [`RELEASE`].
        BlockingStart,
        /// Declares that it uses pod metadata.
        UsesPods,
        /// Reports itself degraded and refuses `collect[]=bogus`.
        Partial,
        /// Also writes the family `clash`, and a series with a repeated label.
        Clash,
        /// Claims `/probe` when [`HANDOFF`] equals the value (and changes on every reload).
        ProbeWhen(bool),
        /// Starts a blocking task that ignores cancellation until [`UNSTICK`] is set (and
        /// changes on every reload).
        StuckBlocking,
    }

    static HANDOFF: AtomicBool = AtomicBool::new(false);
    static UNSTICK: AtomicBool = AtomicBool::new(false);

    static RELEASE: AtomicBool = AtomicBool::new(false);

    struct TestModule(&'static str, Behaviour, &'static [&'static str]);

    impl Module for TestModule {
        fn collect(&self, enc: &mut Encoder<'_>, _scrape: &Scrape<'_>) {
            match self.1 {
                Behaviour::Hang => std::thread::sleep(Duration::from_secs(3)),
                Behaviour::Slow => std::thread::sleep(Duration::from_millis(300)),
                Behaviour::Panic => panic!("test module panics"),
                _ => {}
            }
            // One family per module: two sources writing one family would see it cut.
            let family = format!("{}_up", self.0);
            enc.single(&family, "h", Kind::Gauge, &[("module", self.0)], 1.0);
            if self.1 == Behaviour::Clash {
                enc.single("clash", "h", Kind::Gauge, &[("module", self.0)], 1.0);
                enc.single("twice", "h", Kind::Gauge, &[("a", "1"), ("a", "2")], 1.0);
            }
        }

        fn paths(&self) -> &'static [&'static str] {
            self.2
        }

        fn health(&self) -> Health {
            match self.1 {
                Behaviour::Partial => Health::Degraded("collector x is stuck".into()),
                _ => Health::Up,
            }
        }

        fn check_params(&self, params: &[(String, String)]) -> Result<(), String> {
            match params
                .iter()
                .find(|(k, v)| k == "collect[]" && v == "bogus")
            {
                Some(_) if self.1 == Behaviour::Partial => Err("missing collector: bogus".into()),
                _ => Ok(()),
            }
        }
    }

    impl TestKind {
        fn paths(&self) -> &'static [&'static str] {
            match self.behaviour {
                Behaviour::Claims("/probe") => &["/probe"],
                Behaviour::Claims("/metrics") => &["/metrics"],
                Behaviour::Claims(_) => &["/debug/x"],
                _ => &[],
            }
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
            matches!(
                self.behaviour,
                Behaviour::FastChanging
                    | Behaviour::StubbornTask
                    | Behaviour::ProbeWhen(_)
                    | Behaviour::StuckBlocking
            )
        }
        fn services(&self) -> &'static [Service] {
            match self.behaviour {
                Behaviour::UsesPods => &[Service::PodMetadata],
                _ => &[],
            }
        }
        fn start(
            &self,
            _: &ModulesConfig,
            ctx: &ModuleContext,
        ) -> Result<Box<dyn Module>, ModuleError> {
            self.starts.fetch_add(1, Ordering::Relaxed);
            if self.behaviour == Behaviour::UsesPods {
                let kubelet = ctx.services.get::<eos_kube::PodMetadata>();
                assert_eq!(
                    kubelet.is_some(),
                    ctx.services.kinds() == [Service::PodMetadata]
                );
            }
            match self.behaviour {
                Behaviour::FailStart => {
                    return Err(ModuleError::Unavailable(
                        "no permission for raw sockets".into(),
                    ))
                }
                Behaviour::StubbornTask => ctx.tasks.spawn("stubborn", async {
                    let _alive = Alive::new();
                    loop {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }),
                Behaviour::TaskPanics => ctx
                    .tasks
                    .spawn("tailer", async { panic!("positions file is corrupt") }),
                Behaviour::BlockingStart => {
                    while !RELEASE.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                Behaviour::StuckBlocking => ctx.tasks.spawn_blocking("reader", || {
                    while !UNSTICK.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }),
                _ => {}
            }
            // Handing `/probe` over: decided at start, as a real module would from its config.
            let claims: &'static [&'static str] = match self.behaviour {
                Behaviour::ProbeWhen(wanted) if HANDOFF.load(Ordering::SeqCst) == wanted => {
                    &["/probe"]
                }
                _ => self.paths(),
            };
            Ok(Box::new(TestModule(self.name, self.behaviour, claims)))
        }
    }

    fn supervisor(kinds: &[(&'static str, Behaviour)]) -> Supervisor {
        supervisor_counting(kinds).0
    }

    /// A supervisor, and how often each kind was started.
    fn supervisor_counting(
        kinds: &[(&'static str, Behaviour)],
    ) -> (Supervisor, Vec<Arc<AtomicUsize>>) {
        let counters: Vec<_> = kinds.iter().map(|_| Arc::default()).collect();
        let mut s = Supervisor::new(
            kinds
                .iter()
                .zip(&counters)
                .map(|(&(name, behaviour), starts)| {
                    Arc::new(TestKind {
                        name,
                        behaviour,
                        starts: Arc::clone(starts),
                    }) as Arc<dyn Registered>
                })
                .collect(),
            Vec::new(),
        );
        s.shutdown_timeout = Duration::from_millis(100);
        (s, counters)
    }

    fn config() -> Arc<Config> {
        Arc::new(Config::parse("test", "", &|_| None).expect("empty config"))
    }

    fn module_metrics(s: &Supervisor) -> String {
        let mut m = Vec::new();
        s.encode_metrics(&mut Encoder::new(&mut m, Format::Text));
        String::from_utf8(m).expect("utf-8")
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
        assert!(out.contains("fast_up{module=\"fast\"} 1"), "{out}");
        assert!(!out.contains("slow_up{module=\"slow\"}"), "{out}");
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
        s.apply(Some(&*cfg), &cfg, false).await;
        let n: Vec<usize> = starts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        assert_eq!(n, vec![1, 2, 1], "only the changed section restarts");
        // A requested reload (SIGHUP, POST /-/reload) also retries a failed start.
        s.apply(Some(&*cfg), &cfg, true).await;
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
            Some("no permission for raw sockets (SIGHUP or POST /-/reload retries)")
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
            assert!(out.contains("slow_up{module=\"slow\"} 1"), "{out}");
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopped_instance_is_gone_before_the_next_starts() {
        let (s, starts) = supervisor_counting(&[("stubborn", Behaviour::StubbornTask)]);
        let cfg = config();
        s.apply(None, &cfg, false).await;
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert_eq!(LIVE.load(Ordering::SeqCst), 1);
            // The section "changed": the old instance's task ignores cancellation, is
            // aborted after the shutdown timeout, and only then does the new one start.
            s.apply(Some(&*cfg), &cfg, false).await;
        }
        assert_eq!(starts[0].load(Ordering::Relaxed), 4);
        tokio::time::sleep(Duration::from_millis(20)).await;
        s.shutdown().await;
        assert_eq!(LIVE.load(Ordering::SeqCst), 0, "no task outlives stop");
        assert!(
            !OVERLAPPED.load(Ordering::SeqCst),
            "two instances ran at once"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_task_marks_the_module_down() {
        let (s, starts) =
            supervisor_counting(&[("logs", Behaviour::TaskPanics), ("fast", Behaviour::Fast)]);
        let cfg = config();
        s.apply(None, &cfg, false).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let logs = s
            .views()
            .into_iter()
            .find(|v| v.name == "logs")
            .expect("logs");
        assert!(logs.enabled && !logs.up);
        assert_eq!(
            logs.problem.as_deref(),
            Some("task tailer panicked: positions file is corrupt")
        );
        let m = module_metrics(&s);
        assert!(m.contains("eos_agent_module_up{module=\"logs\"} 0"), "{m}");
        assert!(m.contains("eos_agent_module_up{module=\"fast\"} 1"), "{m}");
        let out = scrape(&s, Duration::from_secs(5)).await;
        assert!(out.contains("fast_up{module=\"fast\"} 1"), "{out}");
        // A requested reload restarts the failed module, not the healthy one.
        s.apply(Some(&*cfg), &cfg, true).await;
        let n: Vec<usize> = starts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        assert_eq!(n, [2, 1]);
    }

    #[tokio::test]
    async fn route_conflicts_are_start_errors() {
        let s = supervisor(&[
            ("probe", Behaviour::Claims("/probe")),
            ("other", Behaviour::Claims("/probe")),
            ("greedy", Behaviour::Claims("/metrics")),
            ("sneaky", Behaviour::Claims("/debug/x")),
        ]);
        s.apply(None, &config(), false).await;
        let problems: Vec<(&str, bool, Option<String>)> = s
            .views()
            .into_iter()
            .map(|v| (v.name, v.up, v.problem))
            .collect();
        assert_eq!(
            problems,
            vec![
                ("probe", true, None),
                ("other", false, Some("claims path /probe, which module probe already serves".into())),
                ("greedy", false, Some("claims path /metrics, which the agent serves itself (module routes go under /debug/greedy/ or a path of their own)".into())),
                ("sneaky", false, Some("claims path /debug/x, which the agent serves itself (module routes go under /debug/sneaky/ or a path of their own)".into())),
            ]
        );
        assert_eq!(s.route("/probe").map(|(_, p)| p), Some("/probe".into()));
    }

    /// On a current-thread runtime, a start that blocked the worker would never see the
    /// release set by another task on the same runtime.
    #[tokio::test(flavor = "current_thread")]
    async fn start_runs_off_the_runtime_workers() {
        let s = supervisor(&[("slowstart", Behaviour::BlockingStart)]);
        let cfg = config();
        let release = tokio::spawn(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            RELEASE.store(true, Ordering::SeqCst);
        });
        tokio::time::timeout(Duration::from_secs(10), s.apply(None, &cfg, false))
            .await
            .expect("start did not block the runtime");
        release.await.expect("release task");
        assert!(s.views()[0].up);
    }

    #[tokio::test]
    async fn pod_metadata_runs_only_while_a_module_uses_it() {
        let (s, starts) =
            supervisor_counting(&[("pods", Behaviour::UsesPods), ("fast", Behaviour::Fast)]);
        let on = config();
        let off = Arc::new(
            Config::parse("test", "kubelet: {enabled: false}\n", &|_| None).expect("config"),
        );
        s.apply(None, &off, false).await;
        assert!(!s.services.pod_metadata_running());
        // The kubelet is switched on: the module that uses it is restarted with the handle,
        // the other one is left alone, and the poller runs.
        s.apply(Some(&*off), &on, false).await;
        assert!(s.services.pod_metadata_running());
        let n: Vec<usize> = starts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        assert_eq!(n, [2, 1]);
        // Other kubelet settings reconfigure the poller in place: no restart.
        let moved = Arc::new(
            Config::parse(
                "test",
                "kubelet: {url: 'http://127.0.0.1:1/pods'}\n",
                &|_| None,
            )
            .expect("config"),
        );
        s.apply(Some(&*on), &moved, false).await;
        assert_eq!(starts[0].load(Ordering::Relaxed), 2);
        s.shutdown().await;
        assert!(!s.services.pod_metadata_running());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_path_handed_between_modules_is_free_when_the_new_owner_starts() {
        let s = supervisor(&[
            ("newowner", Behaviour::ProbeWhen(true)),
            ("oldowner", Behaviour::ProbeWhen(false)),
        ]);
        let cfg = config();
        HANDOFF.store(false, Ordering::SeqCst);
        s.apply(None, &cfg, false).await;
        assert_eq!(
            s.route("/probe").map(|(m, _)| m.paths()),
            Some(&["/probe"][..])
        );
        HANDOFF.store(true, Ordering::SeqCst);
        s.apply(Some(&*cfg), &cfg, false).await;
        let views = s.views();
        assert!(
            views.iter().all(|v| v.up),
            "{:?}",
            views.iter().map(|v| &v.problem).collect::<Vec<_>>()
        );
        assert_eq!(views[0].paths, ["/probe"]);
        assert!(views[1].paths.is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_next_instance_waits_for_blocking_tasks_of_the_last() {
        let (s, starts) = supervisor_counting(&[("reader", Behaviour::StuckBlocking)]);
        let cfg = config();
        s.apply(None, &cfg, false).await;
        // The reader ignores cancellation: the new instance must not start beside it.
        s.apply(Some(&*cfg), &cfg, false).await;
        assert_eq!(starts[0].load(Ordering::Relaxed), 1);
        let v = &s.views()[0];
        assert!(!v.up);
        assert_eq!(
            v.problem.as_deref(),
            Some("the previous instance still has blocking tasks running; it starts once they return (SIGHUP or POST /-/reload retries)")
        );
        UNSTICK.store(true, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.apply(Some(&*cfg), &cfg, true).await;
        assert_eq!(starts[0].load(Ordering::Relaxed), 2);
        assert!(s.views()[0].up);
        s.shutdown().await;
    }

    #[tokio::test]
    async fn degraded_modules_stay_up_and_say_why() {
        let s = supervisor(&[("node", Behaviour::Partial), ("fast", Behaviour::Fast)]);
        s.apply(None, &config(), false).await;
        let v = &s.views()[0];
        assert!(v.up);
        assert_eq!(v.degraded.as_deref(), Some("collector x is stuck"));
        let m = module_metrics(&s);
        assert!(m.contains("eos_agent_module_up{module=\"node\"} 1"), "{m}");
        assert!(
            m.contains("eos_agent_module_degraded{module=\"node\"} 1"),
            "{m}"
        );
        assert!(
            m.contains("eos_agent_module_degraded{module=\"fast\"} 0"),
            "{m}"
        );
        let bogus = [("collect[]".to_string(), "bogus".to_string())];
        assert_eq!(
            s.check_params(&bogus),
            Err("missing collector: bogus".into())
        );
        assert_eq!(s.check_params(&[]), Ok(()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_family_two_modules_write_is_sent_once_and_counted() {
        let s = supervisor(&[("one", Behaviour::Clash), ("two", Behaviour::Clash)]);
        s.apply(None, &config(), false).await;
        let out = scrape(&s, Duration::from_secs(5)).await;
        assert_eq!(out.matches("# HELP clash ").count(), 1, "{out}");
        assert!(out.contains("clash{module=\"one\"} 1"), "{out}");
        assert!(!out.contains("twice{"), "{out}");
        eos_exposition::parse_text(&out).expect("valid exposition");
        let m = module_metrics(&s);
        for want in [
            "eos_agent_exposition_dropped_total{module=\"two\",reason=\"duplicate_family\"} 1",
            "eos_agent_exposition_dropped_total{module=\"one\",reason=\"duplicate_family\"} 0",
            "eos_agent_exposition_dropped_total{module=\"one\",reason=\"duplicate_label\"} 1",
        ] {
            assert!(m.contains(want), "{want}\n{m}");
        }
    }
}
