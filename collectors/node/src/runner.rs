//! Runs a scrape's collectors on a worker thread while the scrape thread keeps the time.
//!
//! A collector can block in the kernel (a `/proc` file of a hung driver), and nothing can
//! interrupt it. If it ran on the scrape thread, the whole module would miss the deadline. So
//! a long-lived worker thread runs the collectors in order, and the scrape thread waits and
//! watches. Each collector may run for seven eighths of the time left to the scrape deadline
//! when it starts (its `ctx.deadline` is earlier, at four fifths, so that one that checks the
//! deadline gives up by itself first). One still running then is abandoned: it gets
//! `node_scrape_collector_success 0`, its call is registered as stuck (`stuck.rs`), and the
//! other collectors run again on another worker, so the scrape still answers in time. The
//! abandoned worker ends when the stuck call returns; until then every scrape, by any
//! instance of the module, skips that collector. So a stuck file costs one blocked thread,
//! however many scrapes and reloads come.
//!
//! Workers are kept between scrapes (one per concurrent scrape), so a normal scrape costs two
//! thread wake-ups, not a thread: about 0.1 ms of latency on a 2-core VM when the worker
//! wakes on the other CPU, and no CPU time to speak of (`cargo xtask bench node` cannot tell
//! the difference). Its output goes to the agent without a copy.

use eos_exposition::{Dropped, FamilyRecord, Format, Shared};
use eos_module::HostPaths;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::collector::{Collector, Ctx};
use crate::stuck;

/// One enabled collector.
pub(crate) struct Entry {
    pub(crate) name: &'static str,
    pub(crate) collector: Box<dyn Collector>,
}

/// A module instance's collectors and where the host is: shared with its workers, and kept
/// alive by a worker whose call is stuck after the instance is gone.
pub(crate) struct Collectors {
    pub(crate) entries: Vec<Entry>,
    pub(crate) paths: HostPaths,
}

/// What became of one collector in one scrape.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
    Ok,
    Failed(String),
    /// Ran past its budget: left behind, its output dropped. Its call is now stuck.
    Abandoned,
    /// Not run: an earlier call of it is still stuck.
    Stuck,
    /// Not run: no time was left before the scrape deadline.
    NoTime,
}

/// One collector's outcome, by its index in [`Collectors::entries`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Ran {
    pub(crate) index: usize,
    pub(crate) took: Duration,
    pub(crate) outcome: Outcome,
}

/// The result of one scrape: the encoded families of the collectors that succeeded, with
/// their records, and every selected collector's outcome in index order.
pub(crate) struct Output {
    pub(crate) encoded: Option<Shared>,
    pub(crate) records: Vec<FamilyRecord>,
    /// What the worker's encoder left out to keep the output valid.
    pub(crate) dropped: Dropped,
    pub(crate) ran: Vec<Ran>,
}

/// The worker threads of one module instance.
pub(crate) struct Runner {
    collectors: Arc<Collectors>,
    idle: Mutex<Vec<Worker>>,
    /// Worker threads started so far.
    spawned: AtomicUsize,
}

impl Runner {
    pub(crate) fn new(collectors: Arc<Collectors>) -> Runner {
        Runner {
            collectors,
            idle: Mutex::new(Vec::new()),
            spawned: AtomicUsize::new(0),
        }
    }

    pub(crate) fn collectors(&self) -> &Collectors {
        &self.collectors
    }

    /// How many worker threads this instance has started.
    #[cfg(test)]
    pub(crate) fn spawned(&self) -> usize {
        self.spawned.load(Ordering::Relaxed)
    }

    /// Runs the collectors at `selected` (indices, in order) and returns what they wrote,
    /// before `deadline`, waiting on this thread.
    pub(crate) fn run(&self, selected: &[usize], format: Format, deadline: Instant) -> Output {
        let mut scrape = ScrapeState::new(selected);
        loop {
            let mut worker = match scrape.next_worker(self, deadline) {
                Ok(w) => w,
                Err(out) => return out,
            };
            let ended = worker.run(&self.collectors, &scrape.todo, format, deadline);
            if let Some(out) = scrape.after(self, worker, ended) {
                return out;
            }
        }
    }

    /// Like [`Runner::run`], but waits as a task of the agent's runtime rather than on a
    /// thread of its own: the collectors' worker wakes the task when it is done.
    pub(crate) async fn run_async(
        &self,
        selected: &[usize],
        format: Format,
        deadline: Instant,
    ) -> Output {
        let mut scrape = ScrapeState::new(selected);
        loop {
            let mut worker = match scrape.next_worker(self, deadline) {
                Ok(w) => w,
                Err(out) => return out,
            };
            let ended = worker
                .run_async(&self.collectors, &scrape.todo, format, deadline)
                .await;
            if let Some(out) = scrape.after(self, worker, ended) {
                return out;
            }
        }
    }

    fn name(&self, index: usize) -> &'static str {
        self.collectors.entries.get(index).map_or("?", |e| e.name)
    }

    /// An idle worker, or a new one.
    fn take_worker(&self) -> Result<Worker, String> {
        if let Some(w) = lock(&self.idle).pop() {
            return Ok(w);
        }
        self.spawned.fetch_add(1, Ordering::Relaxed);
        Worker::spawn(self.collectors.clone())
    }
}

/// One scrape's progress through its collectors: what is still to run, and what was left
/// behind on earlier workers.
struct ScrapeState {
    todo: Vec<usize>,
    left_behind: Vec<Ran>,
}

impl ScrapeState {
    fn new(selected: &[usize]) -> ScrapeState {
        ScrapeState {
            todo: selected.to_vec(),
            left_behind: Vec::new(),
        }
    }

    /// A worker for the next attempt, or the scrape's output when nothing (more) can run.
    fn next_worker(&mut self, runner: &Runner, deadline: Instant) -> Result<Worker, Output> {
        let left = std::mem::take(&mut self.left_behind);
        if self.todo.is_empty() {
            return Err(finish(None, Vec::new(), left));
        }
        if Instant::now() >= deadline {
            tracing::warn!(
                collectors = self.todo.len(),
                "node collectors skipped: scrape deadline passed"
            );
            return Err(not_run(Outcome::NoTime, &self.todo, left));
        }
        match runner.take_worker() {
            Ok(w) => {
                self.left_behind = left;
                Ok(w)
            }
            Err(e) => {
                tracing::warn!(error = %e, "node: cannot start a collector thread");
                Err(not_run(Outcome::Failed(e), &self.todo, left))
            }
        }
    }

    /// What an attempt ended with: the output, or `None` to try the rest on another worker.
    fn after(&mut self, runner: &Runner, mut worker: Worker, ended: Ended) -> Option<Output> {
        match ended {
            Ended::Done(done) => {
                worker.capacity = done.out.len() + 4096;
                let encoded = Shared::new(done.out);
                lock(&runner.idle).push(worker);
                let mut left = std::mem::take(&mut self.left_behind);
                left.extend(done.ran);
                let mut out = finish(Some(encoded), done.records, left);
                out.dropped = done.dropped;
                Some(out)
            }
            Ended::Abandoned(r) => {
                // The worker goes with its stuck call; the rest run again on another.
                let name = runner.name(r.index);
                let budget = r.until.saturating_duration_since(r.started);
                tracing::warn!(
                    collector = name,
                    budget = %format_args!("{:.3}s", budget.as_secs_f64()),
                    "node collector ran past its budget: left out of this scrape and \
                     skipped until its call returns"
                );
                self.left_behind.push(Ran {
                    index: r.index,
                    took: r.started.elapsed(),
                    outcome: Outcome::Abandoned,
                });
                self.todo.retain(|&i| i != r.index);
                None
            }
            Ended::OutOfTime => {
                tracing::warn!("node collectors left out: scrape deadline passed");
                let left = std::mem::take(&mut self.left_behind);
                Some(not_run(Outcome::NoTime, &self.todo, left))
            }
            Ended::Gone => {
                let left = std::mem::take(&mut self.left_behind);
                Some(not_run(
                    Outcome::Failed("collector thread ended".to_string()),
                    &self.todo,
                    left,
                ))
            }
        }
    }
}

/// The output when the collectors at `todo` cannot run.
fn not_run(outcome: Outcome, todo: &[usize], mut ran: Vec<Ran>) -> Output {
    ran.extend(todo.iter().map(|&index| Ran {
        index,
        took: Duration::ZERO,
        outcome: outcome.clone(),
    }));
    finish(None, Vec::new(), ran)
}

/// Sorts the outcomes by collector and builds the output.
fn finish(encoded: Option<Shared>, records: Vec<FamilyRecord>, mut ran: Vec<Ran>) -> Output {
    ran.sort_by_key(|r| r.index);
    Output {
        encoded,
        records,
        dropped: Dropped::default(),
        ran,
    }
}

/// The latest a collector that starts at `start` may return: seven eighths of the time left,
/// so that the others, which normally take milliseconds, still have an eighth (1.2 s of
/// Prometheus' default 10 s).
fn hard_limit(start: Instant, deadline: Instant) -> Instant {
    start + deadline.saturating_duration_since(start) * 7 / 8
}

/// The deadline a collector that starts at `start` sees (`ctx.deadline`): four fifths of the
/// time left, so that one that checks it returns before it would be abandoned. (The
/// filesystem collector's 5 s `statfs` timeout fits in it from a 6.25 s scrape budget on.)
fn soft_limit(start: Instant, deadline: Instant) -> Instant {
    start + deadline.saturating_duration_since(start) * 4 / 5
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A worker thread, as the scrape thread holds it.
struct Worker {
    jobs: Sender<Job>,
    slot: Arc<Slot>,
    /// The size of its last output and some, to allocate the next one at once.
    capacity: usize,
}

/// One scrape's work for a worker.
struct Job {
    indices: Vec<usize>,
    format: Format,
    deadline: Instant,
    out: Vec<u8>,
}

/// What the scrape thread and a worker share.
#[derive(Default)]
struct Slot {
    state: Mutex<Progress>,
    /// Signalled when a job is done, for a scrape waiting on a thread...
    done: Condvar,
    /// ...and for one waiting as a task.
    wake: tokio::sync::Notify,
}

#[derive(Default)]
struct Progress {
    /// The collector being run.
    running: Option<Running>,
    done: Option<Done>,
    /// Set by the scrape thread when it stops waiting: the worker then ends.
    abandoned: bool,
}

#[derive(Clone, Copy)]
struct Running {
    index: usize,
    started: Instant,
    /// Its [`hard_limit`].
    until: Instant,
}

struct Done {
    out: Vec<u8>,
    records: Vec<FamilyRecord>,
    dropped: Dropped,
    ran: Vec<Ran>,
}

/// How the scrape thread stopped waiting for a job.
enum Ended {
    Done(Done),
    /// This collector ran past its budget; it is now registered as stuck.
    Abandoned(Running),
    /// The deadline passed between two collectors.
    OutOfTime,
    /// The worker thread is gone.
    Gone,
}

impl Worker {
    fn spawn(collectors: Arc<Collectors>) -> Result<Worker, String> {
        let (jobs, rx) = mpsc::channel();
        let slot = Arc::new(Slot::default());
        let theirs = slot.clone();
        std::thread::Builder::new()
            .name("eos-node-collect".to_string())
            .spawn(move || work(&theirs, &collectors, &rx))
            .map_err(|e| format!("starting a collector thread: {e}"))?;
        Ok(Worker {
            jobs,
            slot,
            capacity: 0,
        })
    }

    /// Hands the collectors at `todo` to the worker and waits on this thread until they are
    /// done, one overruns its budget, or the deadline passes.
    fn run(
        &mut self,
        collectors: &Collectors,
        todo: &[usize],
        format: Format,
        deadline: Instant,
    ) -> Ended {
        if !self.send(todo, format, deadline) {
            return Ended::Gone;
        }
        let mut st = lock(&self.slot.state);
        loop {
            let wait = match check(&mut st, collectors, deadline) {
                Ok(ended) => return ended,
                Err(until) => until.saturating_duration_since(Instant::now()),
            };
            st = self
                .slot
                .done
                .wait_timeout(st, wait)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Like [`Worker::run`], waiting as a task.
    async fn run_async(
        &mut self,
        collectors: &Collectors,
        todo: &[usize],
        format: Format,
        deadline: Instant,
    ) -> Ended {
        if !self.send(todo, format, deadline) {
            return Ended::Gone;
        }
        loop {
            let until = match check(&mut lock(&self.slot.state), collectors, deadline) {
                Ok(ended) => return ended,
                Err(until) => until,
            };
            tokio::select! {
                _ = self.slot.wake.notified() => {}
                _ = tokio::time::sleep_until(until.into()) => {}
            }
        }
    }

    /// Hands a job to the worker; false when it is gone.
    fn send(&mut self, todo: &[usize], format: Format, deadline: Instant) -> bool {
        let job = Job {
            indices: todo.to_vec(),
            format,
            deadline,
            // Handed to the agent without a copy, so a new one each scrape.
            out: Vec::with_capacity(self.capacity),
        };
        self.jobs.send(job).is_ok()
    }
}

/// Where a job stands: ended (done, a collector left behind, out of time), or still running
/// with the instant to look again.
fn check(st: &mut Progress, collectors: &Collectors, deadline: Instant) -> Result<Ended, Instant> {
    if let Some(done) = st.done.take() {
        return Ok(Ended::Done(done));
    }
    let now = Instant::now();
    // Nothing running: the next collector cannot be due before this.
    let limit = st
        .running
        .map_or_else(|| hard_limit(now, deadline), |r| r.until);
    if now >= limit || now >= deadline {
        st.abandoned = true;
        return Ok(match st.running.take() {
            Some(r) => {
                // Registered before the worker can see `abandoned`, so that its release, when
                // the call returns, finds the entry.
                let name = collectors.entries.get(r.index).map_or("?", |e| e.name);
                stuck::register(name, r.started);
                Ended::Abandoned(r)
            }
            None => Ended::OutOfTime,
        });
    }
    Err(limit.min(deadline))
}

/// A worker thread: runs jobs until its module instance is gone (the channel closes) or the
/// scrape thread abandons it.
fn work(slot: &Slot, collectors: &Collectors, jobs: &Receiver<Job>) {
    let mut read_buf = Vec::new();
    while let Ok(job) = jobs.recv() {
        let Job {
            indices,
            format,
            deadline,
            mut out,
        } = job;
        let mut ran = Vec::with_capacity(indices.len());
        let mut enc = eos_exposition::Encoder::new(&mut out, format);
        for &index in &indices {
            let Some(entry) = collectors.entries.get(index) else {
                continue;
            };
            let started = Instant::now();
            let skip = if started >= deadline {
                Some(Outcome::NoTime)
            } else if stuck::is_stuck(entry.name) {
                Some(Outcome::Stuck)
            } else {
                None
            };
            if let Some(outcome) = skip {
                ran.push(Ran {
                    index,
                    took: Duration::ZERO,
                    outcome,
                });
                continue;
            }
            {
                let mut st = lock(&slot.state);
                if st.abandoned {
                    return;
                }
                st.running = Some(Running {
                    index,
                    started,
                    until: hard_limit(started, deadline),
                });
            }
            let mark = enc.mark();
            let mut ctx = Ctx::new(
                &collectors.paths,
                soft_limit(started, deadline),
                &mut read_buf,
            );
            let result = catch_unwind(AssertUnwindSafe(|| {
                entry.collector.update(&mut enc, &mut ctx)
            }))
            .unwrap_or_else(|_| Err("collector panicked".to_string()));
            let took = started.elapsed();
            {
                let mut st = lock(&slot.state);
                if st.abandoned {
                    // This call was the stuck one: the scrape went on without it.
                    drop(st);
                    stuck::release(entry.name, started);
                    tracing::info!(
                        collector = entry.name,
                        after = %format_args!("{:.3}s", took.as_secs_f64()),
                        "node collector returned after it was left behind; it runs again from \
                         the next scrape"
                    );
                    return;
                }
                st.running = None;
            }
            let outcome = match result {
                Ok(()) => Outcome::Ok,
                Err(e) => {
                    enc.rollback(mark);
                    Outcome::Failed(e)
                }
            };
            ran.push(Ran {
                index,
                took,
                outcome,
            });
        }
        let (records, dropped) = enc.finish();
        let mut st = lock(&slot.state);
        if st.abandoned {
            return;
        }
        st.done = Some(Done {
            out,
            records,
            dropped,
            ran,
        });
        slot.done.notify_one();
        slot.wake.notify_one();
    }
}
