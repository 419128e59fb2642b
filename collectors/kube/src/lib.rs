//! Pod metadata from the node's kubelet, shared by the modules that label per-container data
//! (containers, logs).
//!
//! The agent runs one [`PodMetadata`] for all modules (the top-level `kubelet:` section) and
//! hands clones of the handle to the modules that declare they use it. [`PodMetadata::start`]
//! spawns a task that fetches the kubelet's `/pods` periodically and when asked after a cache
//! miss (rate-limited); [`PodMetadata::reconfigure`] changes the settings in place, so the
//! handles modules hold stay valid across a reload. Readers take a [`PodCache`] snapshot, which is
//! immutable and cheap to hold, and look pods up by UID and containers by runtime ID. Pods
//! that leave the list stay for a grace period. When the kubelet can't be reached the last
//! good snapshot is kept and the failure is counted in [`RefreshStats`].
//!
//! ```no_run
//! # async fn f() {
//! let meta = eos_kube::PodMetadata::start(eos_kube::KubeletConfig::default());
//! let snap = meta.snapshot();
//! if let Some(c) = snap.container("3f5a...") {
//!     println!("{}/{} {}", c.pod.namespace, c.pod.name, c.container.name);
//! } else {
//!     meta.request_refresh();
//! }
//! meta.shutdown();
//! # }
//! ```

mod cache;
mod client;
mod config;
mod error;
mod podlist;

pub use cache::{ContainerRef, PodCache};
pub use config::KubeletConfig;
pub use error::KubeletError;
pub use podlist::{bare_container_id, parse_pod_list, Container, ContainerKind, Owner, Pod};

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How refreshing has gone so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefreshStats {
    pub successes: u64,
    pub failures: u64,
    /// The last failure's message; cleared by a success.
    pub last_error: Option<String>,
    pub last_success: Option<SystemTime>,
}

/// A handle on the pod metadata of this node. Clones share one cache and one refresh task.
#[derive(Clone)]
pub struct PodMetadata {
    inner: Arc<Inner>,
}

struct Inner {
    config: RwLock<KubeletConfig>,
    /// Keeps the connection to the kubelet open between refreshes.
    http: eos_http::Client,
    cache: RwLock<Arc<PodCache>>,
    stats: Mutex<RefreshStats>,
    wake: Notify,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl PodMetadata {
    /// Starts refreshing in the background (must be called inside a tokio runtime). With
    /// `enabled: false` nothing is fetched and the cache stays empty.
    pub fn start(config: KubeletConfig) -> PodMetadata {
        let meta = PodMetadata::idle(config);
        meta.ensure_running();
        meta
    }

    /// Starts the background task if it is not running and the config enables it (inside a
    /// tokio runtime).
    pub fn ensure_running(&self) {
        if !self.config().enabled {
            return;
        }
        let mut task = match self.inner.task.lock() {
            Ok(t) => t,
            Err(poisoned) => poisoned.into_inner(),
        };
        if task.as_ref().is_none_or(|t| t.is_finished()) {
            let m = self.clone();
            *task = Some(tokio::spawn(async move { m.run().await }));
        }
    }

    /// Whether the background task is running.
    pub fn is_running(&self) -> bool {
        match self.inner.task.lock() {
            Ok(t) => t.as_ref().is_some_and(|t| !t.is_finished()),
            Err(poisoned) => poisoned
                .into_inner()
                .as_ref()
                .is_some_and(|t| !t.is_finished()),
        }
    }

    /// Replaces the settings; a running task refreshes with them right away. The cache and
    /// the handles modules hold stay.
    pub fn reconfigure(&self, config: KubeletConfig) {
        let changed = {
            let mut c = match self.inner.config.write() {
                Ok(c) => c,
                Err(poisoned) => poisoned.into_inner(),
            };
            let changed = *c != config;
            *c = config;
            changed
        };
        if changed && self.is_running() {
            self.inner.wake.notify_one();
        }
    }

    /// The current settings.
    pub fn config(&self) -> KubeletConfig {
        match self.inner.config.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// A handle without a background task; [`PodMetadata::refresh`] fetches on demand.
    pub fn idle(config: KubeletConfig) -> PodMetadata {
        PodMetadata {
            inner: Arc::new(Inner {
                config: RwLock::new(config),
                http: eos_http::Client::new(concat!("eos-agent/", env!("CARGO_PKG_VERSION"))),
                cache: RwLock::new(Arc::new(PodCache::default())),
                stats: Mutex::new(RefreshStats::default()),
                wake: Notify::new(),
                task: Mutex::new(None),
            }),
        }
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<PodCache> {
        match self.inner.cache.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Asks the background task for an early refresh (after a lookup missed). Refreshes are
    /// still at most one per `min_refresh_interval`.
    pub fn request_refresh(&self) {
        self.inner.wake.notify_one();
    }

    /// Refresh counters and the last error.
    pub fn stats(&self) -> RefreshStats {
        match self.inner.stats.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Fetches the pod list once and installs the next snapshot. On failure the old snapshot
    /// stays and the failure is counted.
    pub async fn refresh(&self) -> Result<(), KubeletError> {
        let cfg = self.config();
        let result = client::fetch_pods(&self.inner.http, &cfg)
            .await
            .and_then(|body| parse_pod_list(&body).map_err(KubeletError::Malformed));
        let mut stats = match self.inner.stats.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        match result {
            Ok(pods) => {
                self.set_pods(pods);
                stats.successes += 1;
                stats.last_error = None;
                stats.last_success = Some(SystemTime::now());
                Ok(())
            }
            Err(e) => {
                stats.failures += 1;
                stats.last_error = Some(e.to_string());
                Err(e)
            }
        }
    }

    /// Installs a pod list obtained elsewhere (a test, a recorded file) as if the kubelet had
    /// returned it.
    pub fn set_pods(&self, pods: Vec<Pod>) {
        let grace = self.config().grace_period.get();
        let next = Arc::new(self.snapshot().next(pods, Instant::now(), grace));
        match self.inner.cache.write() {
            Ok(mut c) => *c = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }

    /// Stops the background task.
    pub fn shutdown(&self) {
        let task = match self.inner.task.lock() {
            Ok(mut t) => t.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(t) = task {
            t.abort();
        }
    }

    async fn run(self) {
        let mut failing = false;
        loop {
            let cfg = self.config();
            if !cfg.enabled {
                // Switched off by a reconfigure: fetch nothing until switched on again.
                self.inner.wake.notified().await;
                continue;
            }
            let started = Instant::now();
            match self.refresh().await {
                Ok(()) if failing => {
                    tracing::info!("kubelet pod list: reachable again");
                    failing = false;
                }
                Ok(()) => {}
                Err(e) if !failing => {
                    // Say what would fix it: waiting, or the kubelet: section.
                    if e.is_retryable() {
                        tracing::warn!("kubelet pod list: {e} (keeping the last pods; retrying)");
                    } else {
                        tracing::error!(
                            "kubelet pod list: {e} (keeping the last pods; check the kubelet: section)"
                        );
                    }
                    failing = true;
                }
                Err(e) => tracing::debug!("kubelet pod list: {e}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(cfg.refresh_interval.get()) => {}
                _ = self.inner.wake.notified() => {
                    let min = cfg.min_refresh_interval.get();
                    let since = started.elapsed();
                    if since < min {
                        tokio::time::sleep(min - since).await;
                    }
                }
            }
        }
    }
}
