//! Live reload: the running config, how a new one replaces it, and what triggers that
//! (the ConfigMap directory changing, SIGHUP, `POST /-/reload`, and a slow poll as a fallback).
//!
//! The kubelet updates a mounted ConfigMap by writing a new `..<timestamp>/` directory and
//! renaming a `..data` symlink over the old one; the file we were given is a symlink through
//! `..data`. So we watch the directory (not the file), wait for the burst of events to settle,
//! and reload only when the file's content hash changed.

use crate::config::{self, Config, ConfigSource, Overrides};
use crate::supervisor::Supervisor;
use notify::EventKind;
use notify::{RecursiveMode, Watcher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{error, info, warn};

/// How long file events must be quiet before we read the file.
const DEBOUNCE: Duration = Duration::from_millis(500);
/// The longest a burst of file events can delay a reload.
const MAX_DEBOUNCE: Duration = Duration::from_secs(2);
/// How often the file is re-read in case no file event arrived (e.g. on some network mounts).
const POLL: Duration = Duration::from_secs(30);

/// The last reload's outcome, for self-metrics and the status page.
#[derive(Clone, Debug, Default)]
pub struct ReloadStatus {
    pub successful: bool,
    pub last_success_unix: f64,
    pub hash: u64,
    pub last_error: Option<String>,
    /// The content hash of the last file that failed, so the poll does not retry it.
    pub last_failed_hash: Option<u64>,
    pub successes: u64,
    pub failures: u64,
}

/// Everything the server and the reload triggers share.
pub struct AgentState {
    pub supervisor: Supervisor,
    pub source: ConfigSource,
    pub overrides: Overrides,
    pub started_unix: f64,
    /// The address the server actually listens on (the config may say port 0).
    pub bound: std::net::SocketAddr,
    current: Mutex<Arc<Config>>,
    status: Mutex<ReloadStatus>,
    /// Serialises reloads, so two triggers never apply at once.
    apply_lock: tokio::sync::Mutex<()>,
    /// Set once shutdown has begun; later reloads are refused.
    stopping: AtomicBool,
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
    pub fn new(
        source: ConfigSource,
        overrides: Overrides,
        cfg: Config,
        hash: u64,
        bound: std::net::SocketAddr,
    ) -> Self {
        let now = now_unix();
        AgentState {
            supervisor: Supervisor::new(crate::modules::registry()),
            source,
            overrides,
            started_unix: now,
            bound,
            current: Mutex::new(Arc::new(cfg)),
            status: Mutex::new(ReloadStatus {
                successful: true,
                last_success_unix: now,
                hash,
                ..ReloadStatus::default()
            }),
            apply_lock: tokio::sync::Mutex::new(()),
            stopping: AtomicBool::new(false),
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

    /// Stops the modules for good (on SIGTERM), after any reload in progress.
    pub async fn stop(&self) {
        let _g = self.apply_lock.lock().await;
        self.stopping.store(true, Ordering::Release);
        self.supervisor.shutdown().await;
    }

    /// Re-reads the config and applies it. A bad config leaves the running one in place and
    /// is reported in the result, the log and `eos_agent_config_last_reload_successful`.
    pub async fn reload(&self, trigger: Trigger) -> Result<String, String> {
        let _g = self.apply_lock.lock().await;
        if self.stopping.load(Ordering::Acquire) {
            return Err("the agent is shutting down".into());
        }
        let mut st = self.status();
        let loaded = self.source.read().and_then(|(name, text)| {
            let hash = config::content_hash(text.as_bytes());
            if trigger == Trigger::FileChanged {
                if hash == st.hash {
                    return Ok(None);
                }
                if st.last_failed_hash == Some(hash) {
                    // Already tried and reported; the poll must not count it again.
                    return Ok(Some(Err(hash)));
                }
            }
            config::from_text(&name, &text, &self.overrides)
                .map(|c| Some(Ok((c, hash))))
                .inspect_err(|_| st.last_failed_hash = Some(hash))
        });
        let result = match loaded {
            Ok(None) => {
                if !st.successful {
                    // The file went back to the running config after a bad update.
                    info!("config file is back to the running config");
                    st.successful = true;
                    st.last_error = None;
                    st.last_failed_hash = None;
                    self.set_status(st);
                }
                return Ok("config unchanged".into());
            }
            Ok(Some(Err(_))) => {
                return Err(st.last_error.unwrap_or_else(|| "config rejected".into()));
            }
            Ok(Some(Ok((new, hash)))) => {
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
                st.last_failed_hash = None;
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
        self.set_status(st);
        result
    }

    fn set_status(&self, st: ReloadStatus) {
        *self.status.lock().unwrap_or_else(|p| p.into_inner()) = st;
    }
}

/// Whether a file event in the watched directory concerns the config: the file itself, or
/// the kubelet's `..data` symlink swap. Reads (our own included) are not changes.
fn relevant(ev: &notify::Event, file_name: Option<&std::ffi::OsStr>) -> bool {
    if matches!(ev.kind, EventKind::Access(_)) {
        return false;
    }
    ev.paths.is_empty()
        || ev.paths.iter().any(|p| {
            let name = p.file_name();
            name == file_name
                || name == Some(std::ffi::OsStr::new("..data"))
                || name == Some(std::ffi::OsStr::new("..data_tmp"))
        })
}

/// Runs until the process ends: turns file events, SIGHUP and the poll into reloads. `hup`
/// is created before the modules start, so a SIGHUP during start-up cannot kill the agent.
pub async fn run_triggers(state: Arc<AgentState>, hup: Option<tokio::signal::unix::Signal>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Trigger>();

    // Keep the watcher alive for as long as this task runs.
    let _watcher = state.source.watch_dir().and_then(|dir| {
        let tx = tx.clone();
        let file_name = match &state.source {
            ConfigSource::File(p) => p.file_name().map(|n| n.to_os_string()),
            ConfigSource::Embedded => None,
        };
        let watcher = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
            if ev.is_ok_and(|ev| relevant(&ev, file_name.as_deref())) {
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

    if let Some(mut hup) = hup {
        let tx = tx.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                info!("SIGHUP received");
                let _ = tx.send(Trigger::Requested);
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
            // Debounce: the kubelet's update is a burst of creates, renames and deletes. Wait
            // for a quiet spell, but never longer than MAX_DEBOUNCE; a request cuts it short.
            let cap = Instant::now() + MAX_DEBOUNCE;
            loop {
                let wait = DEBOUNCE.min(cap.saturating_duration_since(Instant::now()));
                if wait.is_zero() {
                    break;
                }
                match tokio::time::timeout(wait, rx.recv()).await {
                    Ok(Some(Trigger::Requested)) => {
                        trigger = Trigger::Requested;
                        break;
                    }
                    Ok(Some(Trigger::FileChanged)) => {}
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
        }
        let _ = state.reload(trigger).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind, ModifyKind, RenameMode};

    fn ev(kind: EventKind, path: &str) -> notify::Event {
        notify::Event::new(kind).add_path(path.into())
    }

    #[test]
    fn only_config_changes_count() {
        let f = Some(std::ffi::OsStr::new("agent.yaml"));
        let rename = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        assert!(relevant(&ev(rename, "/etc/eos-agent/..data"), f));
        let create = EventKind::Create(CreateKind::File);
        assert!(relevant(&ev(create, "/etc/eos-agent/..data_tmp"), f));
        let modify = EventKind::Modify(ModifyKind::Any);
        assert!(relevant(&ev(modify, "/etc/eos-agent/agent.yaml"), f));
        let read = EventKind::Access(AccessKind::Any);
        assert!(!relevant(&ev(read, "/etc/eos-agent/agent.yaml"), f));
        assert!(!relevant(&ev(modify, "/etc/other.conf"), f));
        assert!(relevant(&notify::Event::new(EventKind::Any), f));
    }
}
