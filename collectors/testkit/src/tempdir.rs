//! A scratch directory under the system temp dir, removed on drop (also when a test panics).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A directory `$TMPDIR/eos-<tag>-<pid>-<n>`, unique per process and call, removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh empty directory; panics if it cannot (for tests).
    pub fn new(tag: &str) -> TempDir {
        TempDir::try_new(tag).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Creates a fresh empty directory, or says why it could not.
    pub fn try_new(tag: &str) -> Result<TempDir, String> {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "eos-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).map_err(|e| format!("creating {}: {e}", p.display()))?;
        Ok(TempDir(p))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside the directory.
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_on_drop_with_its_contents() {
        let dir = TempDir::new("testkit");
        let path = dir.path().to_path_buf();
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("a/b/c"), "x").unwrap();
        assert!(path.is_dir());
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn each_one_is_new_and_empty() {
        let (a, b) = (TempDir::new("testkit"), TempDir::new("testkit"));
        assert_ne!(a.path(), b.path());
        assert!(a.path().starts_with(std::env::temp_dir()));
        assert_eq!(std::fs::read_dir(a.path()).unwrap().count(), 0);
        let name = b.path().file_name().unwrap().to_str().unwrap().to_string();
        assert!(name.starts_with(&format!("eos-testkit-{}-", std::process::id())));
    }
}
