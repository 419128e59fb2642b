//! A temporary directory tree for tests of sysfs/procfs readers, removed on drop (also when
//! the test fails).

use eos_exposition::{Encoder, Format};
use eos_module::HostPaths;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::collector::{Collector, Ctx};

/// Runs `collector` once against `paths` (10 s deadline) and returns the text it wrote, or
/// its error.
pub(crate) fn scrape(collector: &dyn Collector, paths: &HostPaths) -> Result<String, String> {
    let (mut buf, mut out) = (Vec::new(), Vec::new());
    let mut enc = Encoder::new(&mut out, Format::Text);
    let deadline = Instant::now() + Duration::from_secs(10);
    collector.update(&mut enc, &mut Ctx::new(paths, deadline, &mut buf))?;
    drop(enc);
    Ok(String::from_utf8(out).unwrap())
}

/// A directory under the system temp dir, unique per process and tag.
pub(crate) struct TestTree {
    root: PathBuf,
}

impl TestTree {
    /// Creates an empty tree; `tag` keeps parallel tests apart.
    pub(crate) fn new(tag: &str) -> Self {
        let root = std::env::temp_dir().join(format!("eos-node-b-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        TestTree { root }
    }

    /// The tree's root.
    pub(crate) fn path(&self) -> &Path {
        &self.root
    }

    /// Host paths with this tree as sysfs.
    pub(crate) fn as_sysfs(&self) -> HostPaths {
        HostPaths {
            sysfs: self.root.clone(),
            ..HostPaths::default()
        }
    }

    /// Host paths with this tree as procfs.
    pub(crate) fn as_procfs(&self) -> HostPaths {
        HostPaths {
            procfs: self.root.clone(),
            ..HostPaths::default()
        }
    }

    /// Writes `content` to `rel`, creating parent directories.
    pub(crate) fn write(&self, rel: &str, content: &str) -> &Self {
        let p = self.root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, content).unwrap();
        self
    }

    /// Creates a symlink at `rel` pointing to `target` (taken literally).
    pub(crate) fn symlink(&self, target: &str, rel: &str) -> &Self {
        let p = self.root.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::os::unix::fs::symlink(target, p).unwrap();
        self
    }
}

impl Drop for TestTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
