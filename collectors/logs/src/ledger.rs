//! How far Loki has acknowledged each file, shared by the reader (which registers and
//! releases files) and the pusher (which advances them after a 2xx), and saved to the
//! positions file after every advance.
//!
//! Saves are serialised and each one writes the state as it is when the save starts, so a
//! slow save can never overwrite a newer one.

use crate::batch::FileNo;
use crate::positions::{self, FileId, Position, Positions};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

/// One tracked file.
#[derive(Clone, Debug)]
pub struct Tracked {
    pub id: FileId,
    pub path: PathBuf,
    /// Acknowledged up to here.
    pub acked: u64,
    /// The per-file metric labels (namespace, pod, container, file).
    pub labels: Vec<String>,
}

/// The acknowledged offsets of every open file, and where they are saved.
#[derive(Debug)]
pub struct Ledger {
    files: Mutex<HashMap<FileNo, Tracked>>,
    save: Mutex<SaveState>,
    path: PathBuf,
}

#[derive(Debug, Default)]
struct SaveState {
    /// The last save's outcome, for the status page.
    last_error: Option<String>,
    /// The state changed since the last save.
    dirty: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Ledger {
    /// A ledger saved at `path`.
    pub fn new(path: PathBuf) -> Self {
        Ledger {
            files: Mutex::new(HashMap::new()),
            save: Mutex::new(SaveState::default()),
            path,
        }
    }

    /// The positions file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts tracking a file, acknowledged up to `acked`.
    pub fn register(&self, no: FileNo, id: FileId, path: PathBuf, acked: u64, labels: Vec<String>) {
        lock(&self.files).insert(
            no,
            Tracked {
                id,
                path,
                acked,
                labels,
            },
        );
        self.mark_dirty();
    }

    /// The file got a new name (rotated) or a longer fingerprint.
    pub fn update(&self, no: FileNo, id: FileId, path: &Path) {
        if let Some(t) = lock(&self.files).get_mut(&no) {
            t.id = id;
            t.path = path.to_path_buf();
        }
        self.mark_dirty();
    }

    /// Stops tracking a file (drained and acknowledged, or given up).
    pub fn release(&self, no: FileNo) {
        lock(&self.files).remove(&no);
        self.mark_dirty();
    }

    /// The per-file metric labels of a file.
    pub fn labels(&self, no: FileNo) -> Option<Vec<String>> {
        lock(&self.files).get(&no).map(|t| t.labels.clone())
    }

    /// Acknowledged offset of a file.
    pub fn acked(&self, no: FileNo) -> Option<u64> {
        lock(&self.files).get(&no).map(|t| t.acked)
    }

    /// Advances files to the given offsets (never backwards); returns how many bytes each
    /// one advanced, for the metrics.
    pub fn advance(&self, commits: &[(FileNo, u64)]) -> Vec<(FileNo, u64)> {
        let mut moved = Vec::new();
        {
            let mut files = lock(&self.files);
            for &(no, offset) in commits {
                if let Some(t) = files.get_mut(&no) {
                    if offset > t.acked {
                        moved.push((no, offset - t.acked));
                        t.acked = offset;
                    }
                }
            }
        }
        if !moved.is_empty() {
            self.mark_dirty();
        }
        moved
    }

    /// Resets a file to offset 0 (it was truncated under the reader).
    pub fn reset(&self, no: FileNo, id: FileId) {
        if let Some(t) = lock(&self.files).get_mut(&no) {
            t.acked = 0;
            t.id = id;
        }
        self.mark_dirty();
    }

    fn mark_dirty(&self) {
        lock(&self.save).dirty = true;
    }

    /// Saves the positions if anything changed since the last save.
    pub fn save_if_dirty(&self) -> std::io::Result<()> {
        let mut save = lock(&self.save);
        if !save.dirty {
            return Ok(());
        }
        save.dirty = false;
        let snapshot = self.snapshot();
        let result = positions::save(&self.path, &snapshot);
        match &result {
            Ok(()) => save.last_error = None,
            Err(e) => {
                save.dirty = true;
                save.last_error = Some(format!("saving {}: {e}", self.path.display()));
            }
        }
        result
    }

    /// The last save error, if the last save failed.
    pub fn last_error(&self) -> Option<String> {
        lock(&self.save).last_error.clone()
    }

    /// What would be saved now.
    pub fn snapshot(&self) -> Positions {
        let files = lock(&self.files);
        let mut p = Positions::default();
        for t in files.values() {
            p.files.insert(
                t.id,
                Position {
                    path: t.path.clone(),
                    offset: t.acked,
                },
            );
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eos_testkit::TempDir;

    fn id(ino: u64) -> FileId {
        FileId {
            dev: 1,
            ino,
            fingerprint: 7,
            fingerprint_len: 3,
        }
    }

    #[test]
    fn advances_never_go_back_and_are_saved() {
        let t = TempDir::new("eos-logs-ledger");
        let l = Ledger::new(t.join("positions"));
        l.register(1, id(10), "/a/0.log".into(), 5, Vec::new());
        l.register(2, id(11), "/a/1.log".into(), 0, Vec::new());
        assert_eq!(l.advance(&[(1, 50), (2, 0), (9, 9)]), [(1, 45)]);
        assert_eq!(l.advance(&[(1, 40)]), []);
        assert_eq!(l.acked(1), Some(50));
        l.save_if_dirty().unwrap();
        let saved = positions::load(l.path()).unwrap().unwrap();
        assert_eq!(saved.files[&id(10)].offset, 50);
        assert_eq!(saved.files.len(), 2);
        l.release(2);
        l.reset(1, id(12));
        l.save_if_dirty().unwrap();
        let saved = positions::load(l.path()).unwrap().unwrap();
        assert_eq!(saved.files.len(), 1);
        assert_eq!(saved.files[&id(12)].offset, 0);
    }

    #[test]
    fn a_failed_save_is_reported_and_retried() {
        let t = TempDir::new("eos-logs-ledger");
        let l = Ledger::new(t.join("missing-dir/positions"));
        l.register(1, id(1), "/a".into(), 1, Vec::new());
        assert!(l.save_if_dirty().is_err());
        assert!(l.last_error().unwrap().contains("missing-dir"));
        std::fs::create_dir(t.join("missing-dir")).unwrap();
        l.save_if_dirty().unwrap();
        assert_eq!(l.last_error(), None);
    }
}
