//! Live reload: the running config, how a new one replaces it, and what triggers that
//! (the ConfigMap directory changing, SIGHUP, `POST /-/reload`, and a slow poll as a fallback).
//!
//! The kubelet updates a mounted ConfigMap by writing a new `..<timestamp>/` directory and
//! renaming a `..data` symlink over the old one; the file we were given is a symlink through
//! `..data`. So we watch the directory (not the file), wait for the burst of events to settle,
//! and reload only when the file's content hash changed. How a reload is applied lives with
//! the agent's state (`state.rs`).

use crate::config::ConfigSource;
use crate::state::{AgentState, Trigger};
use notify::EventKind;
use notify::{RecursiveMode, Watcher};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{info, warn};

/// How long file events must be quiet before we read the file.
const DEBOUNCE: Duration = Duration::from_millis(500);
/// The longest a burst of file events can delay a reload.
const MAX_DEBOUNCE: Duration = Duration::from_secs(2);
/// How often the file is re-read in case no file event arrived (e.g. on some network mounts).
const POLL: Duration = Duration::from_secs(30);

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
