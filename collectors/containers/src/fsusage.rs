//! `container_fs_usage_bytes`: the disk space of a container's writable layer, found from the
//! overlay mount of its root (`upperdir=` in `/proc/<pid>/mountinfo`) and summed like `du`.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The writable layer of the container whose process is `pid`: its `upperdir` as the host
/// sees it, from the root mount's super options.
pub fn upperdir(mountinfo: &str) -> Option<&str> {
    mountinfo.lines().find_map(|line| {
        let (pre, post) = line.split_once(" - ")?;
        if pre.split(' ').nth(4)? != "/" {
            return None;
        }
        let mut post = post.split(' ');
        if post.next()? != "overlay" {
            return None;
        }
        post.nth(1)?
            .split(',')
            .find_map(|o| o.strip_prefix("upperdir="))
    })
}

/// Disk usage of a directory tree in bytes (allocated blocks, as `du`), not following
/// symlinks or leaving the filesystem, with the tree's device (major, minor).
pub fn disk_usage(dir: &Path) -> std::io::Result<(u64, (u32, u32))> {
    let top = std::fs::symlink_metadata(dir)?;
    let dev = top.dev();
    let mut total = top.blocks() * 512;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.dev() != dev {
                continue;
            }
            total += m.blocks() * 512;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    Ok((total, split_dev(dev)))
}

/// Linux's `major()`/`minor()` of a `dev_t`.
fn split_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_root_overlay() {
        let mi = "\
1520 1400 0:310 / / rw,relatime master:500 - overlay overlay rw,lowerdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/41/fs,upperdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/57/fs,workdir=/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/57/work
1521 1520 0:312 / /proc rw,nosuid - proc proc rw
";
        assert_eq!(
            upperdir(mi),
            Some("/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/57/fs")
        );
        assert_eq!(upperdir("1 2 0:1 / / rw - ext4 /dev/sda1 rw\n"), None);
        assert_eq!(upperdir("garbage\n"), None);
        assert_eq!(upperdir("1 2 0:1 / / rw - overlay\n"), None);
    }

    #[test]
    fn du_counts_blocks_of_the_tree() {
        let dir = std::env::temp_dir().join(format!("eos-du-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("a/b/f"), vec![1u8; 100_000]).unwrap();
        std::os::unix::fs::symlink("/usr", dir.join("link")).unwrap();
        let (bytes, _) = disk_usage(&dir).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(bytes >= 100_000, "{bytes}");
        assert!(bytes < 10_000_000, "the symlink is not followed: {bytes}");
        assert!(disk_usage(Path::new("/nonexistent-eos")).is_err());
        assert_eq!(split_dev(0x0801), (8, 1));
        assert_eq!(split_dev((259u64 << 8) | 3), (259, 3));
    }
}
