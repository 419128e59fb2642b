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
use std::path::{Path, PathBuf};
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

/// How often the watched directory's identity is checked.
const REARM_CHECK: Duration = Duration::from_secs(2);

/// The device and inode of a directory: a new directory under the same path differs.
fn dir_identity(dir: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()))
}

/// A watcher on `dir` whose relevant events become `FileChanged` triggers.
fn watch(
    dir: &Path,
    file_name: Option<std::ffi::OsString>,
    tx: mpsc::UnboundedSender<Trigger>,
) -> Result<notify::RecommendedWatcher, notify::Error> {
    let mut w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        if ev.is_ok_and(|ev| relevant(&ev, file_name.as_deref())) {
            let _ = tx.send(Trigger::FileChanged);
        }
    })?;
    w.watch(dir, RecursiveMode::NonRecursive)?;
    Ok(w)
}

/// Watches the config directory for as long as the agent runs, and watches it again when it
/// is replaced, with a reload (its contents may have changed unseen).
async fn keep_watching(
    dir: PathBuf,
    file_name: Option<std::ffi::OsString>,
    tx: mpsc::UnboundedSender<Trigger>,
) {
    let mut watcher = None;
    let mut watched = None;
    let mut complained = false;
    let mut tick = tokio::time::interval(REARM_CHECK);
    loop {
        tick.tick().await;
        let now = dir_identity(&dir);
        if now.is_some() && now == watched {
            continue;
        }
        if now.is_none() {
            if watcher.take().is_some() {
                warn!(dir = %dir.display(), "the config directory is gone; waiting for it to come back");
            }
            watched = None;
            continue;
        }
        match watch(&dir, file_name.clone(), tx.clone()) {
            Ok(w) => {
                if watched.is_none() && watcher.is_none() && !complained {
                    info!(dir = %dir.display(), "watching the config directory");
                } else {
                    info!(dir = %dir.display(), "the config directory was replaced; watching it again");
                    let _ = tx.send(Trigger::FileChanged);
                }
                watcher = Some(w);
                watched = now;
                complained = false;
            }
            Err(e) => {
                if !complained {
                    warn!(dir = %dir.display(), error = %e, "cannot watch the config directory; relying on the poll and SIGHUP");
                    complained = true;
                }
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}

/// Runs until the process ends: turns file events, SIGHUP and the poll into reloads. `hup`
/// is created before the modules start, so a SIGHUP during start-up cannot kill the agent.
pub async fn run_triggers(state: Arc<AgentState>, hup: Option<tokio::signal::unix::Signal>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Trigger>();

    // The watcher lives in its own task, which also notices when the directory itself is
    // replaced (deleted and created again: the old inotify watch is dead) and watches the
    // new one.
    if let Some(dir) = state.source.watch_dir().map(std::path::Path::to_path_buf) {
        let file_name = match &state.source {
            ConfigSource::File(p) => p.file_name().map(|n| n.to_os_string()),
            ConfigSource::Embedded => None,
        };
        tokio::spawn(keep_watching(dir, file_name, tx.clone()));
    }

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
        // Triggers that queued up during that reload are served by one more, not one each.
        if let Some(next) = coalesce(&mut rx) {
            let _ = state.reload(next).await;
        }
    }
}

/// Takes every queued trigger; the strongest of them (a request over a file change), if any.
fn coalesce(rx: &mut mpsc::UnboundedReceiver<Trigger>) -> Option<Trigger> {
    let mut next = None;
    while let Ok(t) = rx.try_recv() {
        if next != Some(Trigger::Requested) {
            next = Some(t);
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{AccessKind, CreateKind, ModifyKind, RenameMode};

    fn ev(kind: EventKind, path: &str) -> notify::Event {
        notify::Event::new(kind).add_path(path.into())
    }

    #[test]
    fn queued_triggers_become_one() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        assert_eq!(coalesce(&mut rx), None);
        for t in [
            Trigger::FileChanged,
            Trigger::Requested,
            Trigger::FileChanged,
        ] {
            tx.send(t).unwrap();
        }
        assert_eq!(coalesce(&mut rx), Some(Trigger::Requested));
        assert_eq!(coalesce(&mut rx), None);
        tx.send(Trigger::FileChanged).unwrap();
        assert_eq!(coalesce(&mut rx), Some(Trigger::FileChanged));
    }

    #[tokio::test]
    async fn a_replaced_directory_is_watched_again() {
        let root = std::env::temp_dir().join(format!("eos-rearm-{}", std::process::id()));
        let dir = root.join("conf");
        std::fs::create_dir_all(&dir).unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(keep_watching(dir.clone(), Some("agent.yaml".into()), tx));
        tokio::time::sleep(Duration::from_millis(200)).await;
        std::fs::write(dir.join("agent.yaml"), "a: 1\n").unwrap();
        let first = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert_eq!(first.ok().flatten(), Some(Trigger::FileChanged));
        // Replace the directory: the old watch dies with it.
        std::fs::remove_dir_all(&dir).unwrap();
        tokio::time::sleep(REARM_CHECK + Duration::from_millis(500)).await;
        std::fs::create_dir_all(&dir).unwrap();
        tokio::time::sleep(REARM_CHECK * 2).await;
        while rx.try_recv().is_ok() {}
        std::fs::write(dir.join("agent.yaml"), "a: 2\n").unwrap();
        let again = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert_eq!(
            again.ok().flatten(),
            Some(Trigger::FileChanged),
            "events after re-arming"
        );
        task.abort();
        let _ = std::fs::remove_dir_all(&root);
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
