//! Live reload: the running config, how a new one replaces it, and what triggers that
//! (the ConfigMap directory changing, SIGHUP, `POST /-/reload`, and a slow poll as a fallback).
//!
//! The kubelet updates a mounted ConfigMap by writing a new `..<timestamp>/` directory and
//! renaming a `..data` symlink over the old one; the file we were given is a symlink through
//! `..data`. So we watch the directory (not the file), wait for the burst of events to settle,
//! and reload only when the file's content hash changed.

use crate::config::{self, Config, ConfigSource, Overrides};
use crate::supervisor::Supervisor;
use notify::{RecursiveMode, Watcher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

/// How long file events must be quiet before we read the file.
const DEBOUNCE: Duration = Duration::from_millis(500);
/// How often the file is re-read in case no file event arrived (e.g. on some network mounts).
const POLL: Duration = Duration::from_secs(30);

/// The last reload's outcome, for self-metrics and the status page.
#[derive(Clone, Debug, Default)]
pub struct ReloadStatus {
    pub successful: bool,
    pub last_success_unix: f64,
    pub hash: u64,
    pub last_error: Option<String>,
    pub successes: u64,
    pub failures: u64,
}

/// Everything the server and the reload triggers share.
pub struct AgentState {
    pub supervisor: Supervisor,
    pub source: ConfigSource,
    pub overrides: Overrides,
    pub started_unix: f64,
    current: Mutex<Arc<Config>>,
    status: Mutex<ReloadStatus>,
    /// Serialises reloads, so two triggers never apply at once.
    apply_lock: tokio::sync::Mutex<()>,
}

/// Who asked for a reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// A file event or the poll: apply only if the content changed.
    FileChanged,
    /// SIGHUP or `POST /-/reload`: re-read and apply, and record the result either way.
    Requested,
}

pub fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl AgentState {
    /// State for a config that has been loaded (but not yet applied).
    pub fn new(source: ConfigSource, overrides: Overrides, cfg: Config, hash: u64) -> Self {
        let now = now_unix();
        AgentState {
            supervisor: Supervisor::new(crate::modules::registry()),
            source,
            overrides,
            started_unix: now,
            current: Mutex::new(Arc::new(cfg)),
            status: Mutex::new(ReloadStatus {
                successful: true,
                last_success_unix: now,
                hash,
                ..ReloadStatus::default()
            }),
            apply_lock: tokio::sync::Mutex::new(()),
        }
    }

    pub fn config(&self) -> Arc<Config> {
        self.current
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn status(&self) -> ReloadStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Starts the modules of the initial config.
    pub async fn start(&self) {
        let _g = self.apply_lock.lock().await;
        let cfg = self.config();
        self.supervisor.apply(None, &cfg, false).await;
    }

    /// Re-reads the config and applies it. A bad config leaves the running one in place and
    /// is reported in the result, the log and `eos_agent_config_last_reload_successful`.
    pub async fn reload(&self, trigger: Trigger) -> Result<String, String> {
        let _g = self.apply_lock.lock().await;
        let loaded = config::load(&self.source, &self.overrides);
        let mut st = self
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let result = match loaded {
            Ok((_, hash)) if trigger == Trigger::FileChanged && hash == st.hash => {
                return Ok("config unchanged".into());
            }
            Ok((new, hash)) => {
                let old = self.config();
                if new.listen_address != old.listen_address {
                    warn!(
                        running = %old.listen_address,
                        configured = %new.listen_address,
                        "listen_address changed; it takes effect when the agent restarts"
                    );
                }
                self.supervisor
                    .apply(Some(&old), &new, trigger == Trigger::Requested)
                    .await;
                *self.current.lock().unwrap_or_else(|p| p.into_inner()) = Arc::new(new);
                st.successful = true;
                st.last_success_unix = now_unix();
                st.hash = hash;
                st.last_error = None;
                st.successes += 1;
                info!(hash = format!("{hash:012x}"), "config reloaded");
                Ok("config reloaded".to_string())
            }
            Err(e) => {
                st.successful = false;
                st.last_error = Some(e.to_string());
                st.failures += 1;
                error!(error = %e, "config reload failed; keeping the running config");
                Err(e.to_string())
            }
        };
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = st;
        result
    }
}

/// Runs until the process ends: turns file events, SIGHUP and the poll into reloads.
pub async fn run_triggers(state: Arc<AgentState>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Trigger>();

    // Keep the watcher alive for as long as this task runs.
    let _watcher = state.source.watch_dir().and_then(|dir| {
        let tx = tx.clone();
        let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            if ev.is_ok() {
                let _ = tx.send(Trigger::FileChanged);
            }
        });
        match watcher {
            Ok(mut w) => match w.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    info!(dir = %dir.display(), "watching the config directory");
                    Some(w)
                }
                Err(e) => {
                    warn!(dir = %dir.display(), error = %e, "cannot watch the config directory; relying on the poll and SIGHUP");
                    None
                }
            },
            Err(e) => {
                warn!(error = %e, "no file watcher; relying on the poll and SIGHUP");
                None
            }
        }
    });

    #[cfg(unix)]
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::hangup()) {
                Ok(mut hup) => {
                    while hup.recv().await.is_some() {
                        info!("SIGHUP received");
                        let _ = tx.send(Trigger::Requested);
                    }
                }
                Err(e) => warn!(error = %e, "cannot listen for SIGHUP"),
            }
        });
    }

    if matches!(state.source, ConfigSource::File(_)) {
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL);
            tick.tick().await;
            loop {
                tick.tick().await;
                if tx.send(Trigger::FileChanged).is_err() {
                    break;
                }
            }
        });
    }

    while let Some(first) = rx.recv().await {
        let mut trigger = first;
        if trigger == Trigger::FileChanged {
            // Debounce: the kubelet's update is a burst of creates, renames and deletes.
            loop {
                match tokio::time::timeout(DEBOUNCE, rx.recv()).await {
                    Ok(Some(t)) => {
                        if t == Trigger::Requested {
                            trigger = t;
                        }
                    }
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
        }
        let _ = state.reload(trigger).await;
    }
}
