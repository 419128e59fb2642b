//! The agent's state shared by the server and the reload triggers: the running config, the
//! last reload's outcome, and how a new config replaces the running one.

use crate::config::{self, Config, ConfigSource, Overrides};
use crate::selfmetrics::AgentMetrics;
use crate::supervisor::Supervisor;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::{error, info, warn};

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
    /// The configured address the socket was opened for (a change needs a restart).
    pub listening: crate::config::ListenAddress,
    current: Mutex<Arc<Config>>,
    /// Shared with the agent's own metrics source.
    status: Arc<Mutex<ReloadStatus>>,
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
        let status = Arc::new(Mutex::new(ReloadStatus {
            successful: true,
            last_success_unix: now,
            hash,
            ..ReloadStatus::default()
        }));
        let own = AgentMetrics::new(status.clone(), now);
        AgentState {
            supervisor: Supervisor::new(crate::modules::registry(), vec![Arc::new(own)]),
            source,
            overrides,
            started_unix: now,
            bound,
            listening: cfg.listen_address,
            current: Mutex::new(Arc::new(cfg)),
            status,
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
        let (source, overrides) = (self.source.clone(), self.overrides.clone());
        let (running_hash, failed_hash) = (st.hash, st.last_failed_hash);
        // Reading and parsing run on a blocking thread: a slow file system or a large file
        // must not hold up the server's workers (/healthz, scrapes).
        let loaded = tokio::task::spawn_blocking(move || {
            let (name, text) = source.read().map_err(|e| (e, None))?;
            {
                let hash = config::content_hash(text.as_bytes());
                if trigger == Trigger::FileChanged {
                    if hash == running_hash {
                        return Ok(None);
                    }
                    if failed_hash == Some(hash) {
                        // Already tried and reported; the poll must not count it again.
                        return Ok(Some(Err(hash)));
                    }
                }
                config::from_text(&name, &text, &overrides)
                    .map(|c| Some(Ok((c, hash))))
                    .map_err(|e| (e, Some(hash)))
            }
        })
        .await
        .unwrap_or_else(|e| {
            Err((
                config::ConfigError {
                    source: self.source.describe(),
                    line: None,
                    message: format!("reading the config did not finish: {e}"),
                },
                None,
            ))
        });
        let loaded = loaded.map_err(|(e, hash)| {
            if hash.is_some() {
                st.last_failed_hash = hash;
            }
            e
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
                    // Compared with the socket in use, not the last config: a change and its
                    // revert must not leave the log saying something else is in use.
                    if new.listen_address == self.listening {
                        info!(address = %self.listening, "listen_address is back to the address in use");
                    } else {
                        warn!(
                            in_use = %self.listening,
                            configured = %new.listen_address,
                            "listen_address changed; it takes effect when the agent restarts"
                        );
                    }
                }
                for w in &new.warnings {
                    warn!("{w}");
                }
                let new = Arc::new(new);
                self.supervisor
                    .apply(Some(&old), &new, trigger == Trigger::Requested)
                    .await;
                *self.current.lock().unwrap_or_else(|p| p.into_inner()) = new;
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
