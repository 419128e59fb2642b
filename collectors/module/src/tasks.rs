//! A module instance's background tasks: spawned through [`Tasks`], cancelled together, waited
//! for with a bound, and aborted when they do not stop in time.
//!
//! The supervisor creates one [`Tasks`] per module instance and hands it to `start` inside the
//! [`ModuleContext`](crate::ModuleContext). A module spawns its tailers, pushers, schedulers and
//! receive loops with [`Tasks::spawn`] (async) or [`Tasks::spawn_blocking`] (a thread that checks
//! [`Tasks::is_cancelled`]), and watches [`Tasks::cancelled`] to wind down (flush, write a
//! checkpoint). Stopping the instance ([`Tasks::stop`]) cancels, waits up to a timeout, then
//! aborts what is left and waits for the aborts to land, so a restarted instance never runs
//! beside the old one's async tasks.
//!
//! A task that panics marks the instance failed ([`Tasks::failure`], with the panic message);
//! the supervisor reports the module down and the rest of the agent keeps running.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The background tasks of one module instance. Clones share the same set.
#[derive(Clone, Debug, Default)]
pub struct Tasks {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    token: CancellationToken,
    tracker: TaskTracker,
    /// Abort handles of the async tasks still running (finished ones are pruned on spawn).
    aborts: Mutex<Vec<AbortHandle>>,
    /// The first panic of any task, as `task <name> panicked: <message>`.
    failure: Mutex<Option<String>>,
}

/// How a [`Tasks::stop`] went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Every task returned after cancellation, within the timeout.
    Cleanly,
    /// Some async tasks ignored cancellation past the timeout and were aborted.
    Aborted,
    /// Blocking tasks were still running after the aborts: threads cannot be killed, so they
    /// run on until they next check [`Tasks::is_cancelled`].
    BlockingLeftRunning,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Tasks {
    /// A fresh, empty set.
    pub fn new() -> Self {
        Tasks::default()
    }

    /// Runs `fut` on the agent's runtime as one of this instance's tasks. Must be called from
    /// inside the runtime (as `start` is). A panic in it is caught and recorded. Once the
    /// instance is stopping, nothing new starts.
    pub fn spawn<F>(&self, name: &'static str, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        // Checked and registered under the lock `stop` cancels under, so that no task can
        // slip in after `stop` has looked at what is running.
        let mut aborts = lock(&self.inner.aborts);
        if self.is_cancelled() {
            return;
        }
        let inner = self.inner.clone();
        let guarded = CatchUnwind(Box::pin(fut));
        let handle = self.inner.tracker.spawn(async move {
            if let Err(msg) = guarded.await {
                inner.record_panic(name, msg);
            }
        });
        aborts.retain(|h| !h.is_finished());
        aborts.push(handle.abort_handle());
    }

    /// Runs `f` on a blocking thread as one of this instance's tasks, for work that reads
    /// files or sockets synchronously. It cannot be aborted: `f` must return soon after
    /// [`Tasks::is_cancelled`] turns true. A panic in it is caught and recorded.
    pub fn spawn_blocking<F>(&self, name: &'static str, f: F)
    where
        F: FnOnce() + Send + 'static,
    {
        let _ = self.blocking_handle(name, f);
    }

    /// Runs `f` on a blocking thread as one of this instance's tasks and waits for its
    /// result: `None` when the instance is stopping or `f` panicked (recorded). Stopping waits
    /// for `f` like for any other task, so a round of reads never outlives its instance.
    pub async fn run_blocking<F, T>(&self, name: &'static str, f: F) -> Option<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.blocking_handle(name, f)?.await.ok().flatten()
    }

    fn blocking_handle<F, T>(
        &self,
        name: &'static str,
        f: F,
    ) -> Option<tokio::task::JoinHandle<Option<T>>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let _registering = lock(&self.inner.aborts);
        if self.is_cancelled() {
            return None;
        }
        let inner = self.inner.clone();
        Some(self.inner.tracker.spawn_blocking(move || {
            match std::panic::catch_unwind(AssertUnwindSafe(f)) {
                Ok(v) => Some(v),
                Err(p) => {
                    inner.record_panic(name, panic_message(p.as_ref()));
                    None
                }
            }
        }))
    }

    /// Resolves once the instance is being stopped.
    pub async fn cancelled(&self) {
        self.inner.token.cancelled().await
    }

    /// Whether the instance is being stopped (for loops on blocking threads).
    pub fn is_cancelled(&self) -> bool {
        self.inner.token.is_cancelled()
    }

    /// A token cancelled with the instance, for code that takes a `CancellationToken`.
    pub fn token(&self) -> CancellationToken {
        self.inner.token.clone()
    }

    /// Why the instance failed: the first task panic, if any.
    pub fn failure(&self) -> Option<String> {
        lock(&self.inner.failure).clone()
    }

    /// Tasks not yet finished.
    pub fn running(&self) -> usize {
        self.inner.tracker.len()
    }

    /// Cancels every task, waits up to `timeout` for them to return, then aborts the async
    /// ones still running and waits (up to `timeout` again) for the aborts to land. Blocking
    /// tasks cannot be aborted; [`Stopped::BlockingLeftRunning`] says some still run, and
    /// [`Tasks::running`] tells when they are done.
    pub async fn stop(&self, timeout: Duration) -> Stopped {
        {
            let _no_new_tasks = lock(&self.inner.aborts);
            self.inner.token.cancel();
            self.inner.tracker.close();
        }
        if tokio::time::timeout(timeout, self.inner.tracker.wait())
            .await
            .is_ok()
        {
            return Stopped::Cleanly;
        }
        for h in lock(&self.inner.aborts).drain(..) {
            h.abort();
        }
        // An abort lands at the task's next await point; only blocking tasks can outlast it.
        match tokio::time::timeout(timeout, self.inner.tracker.wait()).await {
            Ok(()) => Stopped::Aborted,
            Err(_) => Stopped::BlockingLeftRunning,
        }
    }
}

impl Inner {
    fn record_panic(&self, task: &str, msg: String) {
        tracing::error!(task, panic = %msg, "a module task panicked; the module is down");
        let mut f = lock(&self.failure);
        if f.is_none() {
            *f = Some(format!("task {task} panicked: {msg}"));
        }
    }
}

/// The text of a panic payload (`&str` or `String`; anything else is named as such).
pub fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a non-string panic payload)".to_string()
    }
}

/// Polls a future, turning a panic in it into `Err(message)`.
struct CatchUnwind(Pin<Box<dyn Future<Output = ()> + Send>>);

impl Future for CatchUnwind {
    type Output = Result<(), String>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Ready(())) => Poll::Ready(Ok(())),
            Ok(Poll::Pending) => Poll::Pending,
            Err(p) => Poll::Ready(Err(panic_message(p.as_ref()))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    #[tokio::test]
    async fn cooperative_tasks_stop_cleanly() {
        let t = Tasks::new();
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let t2 = t.clone();
        t.spawn("waiter", async move {
            t2.cancelled().await;
            d.store(true, Ordering::SeqCst);
        });
        assert_eq!(t.running(), 1);
        assert_eq!(t.stop(Duration::from_secs(1)).await, Stopped::Cleanly);
        assert!(done.load(Ordering::SeqCst), "the task saw the cancellation");
        assert_eq!(t.running(), 0);
    }

    #[tokio::test]
    async fn a_task_that_ignores_cancellation_is_aborted() {
        let t = Tasks::new();
        let ticks = Arc::new(AtomicUsize::new(0));
        let k = ticks.clone();
        t.spawn("stubborn", async move {
            loop {
                k.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(t.stop(Duration::from_millis(50)).await, Stopped::Aborted);
        assert_eq!(t.running(), 0);
        let after = ticks.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(
            ticks.load(Ordering::SeqCst),
            after,
            "nothing runs after stop"
        );
    }

    #[tokio::test]
    async fn a_panicking_task_is_recorded() {
        let t = Tasks::new();
        t.spawn("boom", async { panic!("positions file is corrupt") });
        t.spawn_blocking("boom2", || panic!("{}", String::from("blocking too")));
        for _ in 0..100 {
            if t.running() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let f = t.failure().expect("recorded");
        assert!(
            f == "task boom panicked: positions file is corrupt"
                || f == "task boom2 panicked: blocking too",
            "{f}"
        );
        assert_eq!(t.stop(Duration::from_millis(50)).await, Stopped::Cleanly);
    }

    #[tokio::test]
    async fn nothing_starts_after_stop() {
        let t = Tasks::new();
        t.stop(Duration::from_millis(10)).await;
        let ran = Arc::new(AtomicBool::new(false));
        let r = ran.clone();
        t.spawn("late", async move { r.store(true, Ordering::SeqCst) });
        tokio::task::yield_now().await;
        assert!(!ran.load(Ordering::SeqCst));
        assert_eq!(t.running(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_results_come_back_and_stop_waits_for_them() {
        let t = Tasks::new();
        assert_eq!(t.run_blocking("read", || 41 + 1).await, Some(42));
        assert_eq!(
            t.run_blocking("boom", || -> u8 { panic!("bad file") })
                .await,
            None
        );
        assert_eq!(t.failure().as_deref(), Some("task boom panicked: bad file"));
        let t = Tasks::new();
        let t2 = t.clone();
        let round = tokio::spawn(async move {
            t2.run_blocking("round", || std::thread::sleep(Duration::from_millis(100)))
                .await
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(t.stop(Duration::from_secs(2)).await, Stopped::Cleanly);
        assert_eq!(
            round.await.expect("joined"),
            Some(()),
            "the round finished first"
        );
        assert_eq!(t.run_blocking("late", || 1).await, None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocking_tasks_that_ignore_cancellation_are_reported() {
        let t = Tasks::new();
        let release = Arc::new(AtomicBool::new(false));
        let r = release.clone();
        t.spawn_blocking("stuck", move || {
            while !r.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        assert_eq!(
            t.stop(Duration::from_millis(30)).await,
            Stopped::BlockingLeftRunning
        );
        release.store(true, Ordering::SeqCst);
    }
}
