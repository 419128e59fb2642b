//! Which cgroup version the node runs and where each hierarchy is mounted.

use std::path::{Path, PathBuf};

/// The cgroup hierarchies to read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// The unified hierarchy (pure cgroup v2).
    V2(PathBuf),
    /// Per-controller hierarchies (cgroup v1, or hybrid: v1 controllers plus an unused
    /// cgroup2 mount, which the kubelet does not place pods in either).
    V1(V1Mounts),
}

/// Mount points of the v1 controllers this module reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct V1Mounts {
    pub cpu: Option<PathBuf>,
    pub cpuacct: Option<PathBuf>,
    pub memory: Option<PathBuf>,
    pub blkio: Option<PathBuf>,
    pub pids: Option<PathBuf>,
    /// The hybrid cgroup2 mount, if any (reported, not read).
    pub unified: Option<PathBuf>,
}

impl Layout {
    /// The hierarchy walked to find pods and containers.
    pub fn discovery_root(&self) -> Option<&Path> {
        match self {
            Layout::V2(p) => Some(p),
            Layout::V1(m) => [&m.memory, &m.cpu, &m.cpuacct, &m.pids, &m.blkio]
                .into_iter()
                .find_map(|p| p.as_deref()),
        }
    }

    /// A short description for the status page.
    pub fn describe(&self) -> String {
        match self {
            Layout::V2(p) => format!("cgroup v2 at {}", p.display()),
            Layout::V1(m) => format!(
                "cgroup v1{} (memory at {})",
                if m.unified.is_some() { " (hybrid)" } else { "" },
                m.memory
                    .as_deref()
                    .map_or("-".into(), |p| p.display().to_string())
            ),
        }
    }
}

/// Finds the cgroup mounts under `cgroup_dir` (normally `<sysfs>/fs/cgroup`) in a
/// `/proc/self/mountinfo`.
pub fn from_mountinfo(mountinfo: &str, cgroup_dir: &Path) -> Result<Layout, String> {
    let mut v1 = V1Mounts::default();
    let mut v2 = None;
    for (i, line) in mountinfo.lines().enumerate() {
        let Some((pre, post)) = line.split_once(" - ") else {
            return Err(format!("mountinfo line {}: no \" - \" separator", i + 1));
        };
        let Some(mount_point) = pre.split(' ').nth(4) else {
            return Err(format!("mountinfo line {}: too few fields", i + 1));
        };
        let mount_point = Path::new(mount_point);
        if !mount_point.starts_with(cgroup_dir) {
            continue;
        }
        let mut post = post.split(' ');
        let fstype = post.next().unwrap_or_default();
        let superopts = post.nth(1).unwrap_or_default();
        match fstype {
            "cgroup2" => v2 = Some(mount_point.to_path_buf()),
            "cgroup" => {
                for opt in superopts.split(',') {
                    let slot = match opt {
                        "cpu" => &mut v1.cpu,
                        "cpuacct" => &mut v1.cpuacct,
                        "memory" => &mut v1.memory,
                        "blkio" => &mut v1.blkio,
                        "pids" => &mut v1.pids,
                        _ => continue,
                    };
                    slot.get_or_insert_with(|| mount_point.to_path_buf());
                }
            }
            _ => {}
        }
    }
    finish(v1, v2, cgroup_dir)
}

/// Reads a given cgroup filesystem root (the `cgroup_root` override): v2 if it has
/// `cgroup.controllers`, else v1 with one directory per controller.
pub fn from_root(root: &Path) -> Result<Layout, String> {
    if root.join("cgroup.controllers").exists() {
        return Ok(Layout::V2(root.to_path_buf()));
    }
    let dir = |names: &[&str]| names.iter().map(|n| root.join(n)).find(|p| p.is_dir());
    let unified = root.join("unified");
    let v1 = V1Mounts {
        cpu: dir(&["cpu", "cpu,cpuacct"]),
        cpuacct: dir(&["cpuacct", "cpu,cpuacct"]),
        memory: dir(&["memory"]),
        blkio: dir(&["blkio"]),
        pids: dir(&["pids"]),
        unified: unified
            .join("cgroup.controllers")
            .exists()
            .then_some(unified),
    };
    finish(v1, None, root)
}

fn finish(mut v1: V1Mounts, v2: Option<PathBuf>, where_: &Path) -> Result<Layout, String> {
    let any_v1 = v1.cpu.is_some() || v1.cpuacct.is_some() || v1.memory.is_some();
    match (any_v1, v2) {
        (true, v2) => {
            v1.unified = v1.unified.take().or(v2);
            Ok(Layout::V1(v1))
        }
        (false, Some(v2)) => Ok(Layout::V2(v2)),
        (false, None) => Err(format!(
            "no cgroup v1 (cpu, cpuacct, memory) or v2 hierarchy found under {}",
            where_.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 30 0:23 / /sys rw,nosuid - sysfs sysfs rw
26 25 0:24 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
27 26 0:25 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
28 26 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
29 26 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
30 26 0:28 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
31 26 0:29 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
32 26 0:30 / /host/sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio
";

    #[test]
    fn hybrid() {
        let l = from_mountinfo(HYBRID, Path::new("/sys/fs/cgroup")).unwrap();
        let Layout::V1(m) = &l else { panic!("{l:?}") };
        assert_eq!(
            m.cpu.as_deref(),
            Some(Path::new("/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(m.cpuacct, m.cpu);
        assert_eq!(
            m.memory.as_deref(),
            Some(Path::new("/sys/fs/cgroup/memory"))
        );
        assert_eq!(m.blkio, None, "outside the host sysfs");
        assert_eq!(
            m.unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        assert_eq!(l.discovery_root(), Some(Path::new("/sys/fs/cgroup/memory")));
    }

    #[test]
    fn pure_v2_under_host_sys() {
        let mi = "40 1 0:35 / /host/sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n\
                  41 1 0:36 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let l = from_mountinfo(mi, Path::new("/host/sys/fs/cgroup")).unwrap();
        assert_eq!(l, Layout::V2("/host/sys/fs/cgroup".into()));
        assert!(l.describe().contains("v2"));
    }

    #[test]
    fn nothing_or_garbage() {
        let e = from_mountinfo(
            "1 2 3 4 /x - ext4 /dev/sda rw\n",
            Path::new("/sys/fs/cgroup"),
        )
        .unwrap_err();
        assert!(e.contains("no cgroup"), "{e}");
        assert!(from_mountinfo("garbage\n", Path::new("/sys/fs/cgroup")).is_err());
        assert!(from_mountinfo("1 2 - x\n", Path::new("/sys/fs/cgroup")).is_err());
    }
}
