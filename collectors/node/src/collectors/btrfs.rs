//! `btrfs`: statistics of mounted btrfs filesystems, as `node_btrfs_*` with node_exporter's
//! names and labels.
//!
//! - From sysfs, `<sysfs>/fs/btrfs/<uuid>/`: label, global reserve, commit statistics (kernel
//!   6.0+), and per block group type (data, metadata, system) the reserved bytes and, per
//!   layout (`single`, `dup`, `raid1`, ...), used and allocated bytes and the allocation
//!   ratio.
//! - Per device, through ioctls on a mount point of the filesystem (found in the mount table
//!   of PID 1, as the filesystem collector does, and opened under `<rootfs>`; see
//!   [`ioctl`]): size, unused bytes and the error counters (`node_btrfs_device_errors_total`),
//!   labelled `device` and `btrfs_dev_uuid`. Where that fails (not mounted where we can see
//!   it, no permission), as in node_exporter only `node_btrfs_device_size_bytes{device}` is
//!   written, from sysfs.
//!
//! As in node_exporter (prometheus/procfs), a sysfs attribute that is missing or not a
//! number reads as 0; a missing `devices/` or `allocation/<type>/` directory fails the
//! collector. Hosts without btrfs write nothing.

mod ioctl;

use eos_exposition::{Encoder, Kind};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::collector::{list_dir, read_trimmed, Collector, CollectorDef, Ctx};
use crate::mounts::{parse_mountinfo, rootfs_join};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "btrfs",
    default_enabled: true,
    build: |_settings: &(), _paths| Ok(Box::new(BtrfsCollector)),
};

struct BtrfsCollector;

/// Block group types, in node_exporter's order.
const BLOCK_GROUP_TYPES: [&str; 3] = ["data", "metadata", "system"];

/// Linux counts block device sizes in 512-byte sectors whatever the device's block size.
const SECTOR_SIZE: u64 = 512;

/// The error counters of `BTRFS_IOC_GET_DEV_STATS`, in its order, as the `type` label.
const ERROR_TYPES: [&str; ioctl::DEV_STAT_VALUES] =
    ["write", "read", "flush", "corruption", "generation"];

/// One filesystem's sysfs statistics.
#[derive(Debug, Default, PartialEq)]
struct FsStats {
    /// `metadata_uuid`, else the directory name.
    uuid: String,
    label: String,
    global_rsv_size: u64,
    commits: CommitStats,
    /// Per [`BLOCK_GROUP_TYPES`].
    allocation: [Allocation; 3],
    /// `devices/<name>/size`, in bytes, sorted by name.
    devices: Vec<(String, u64)>,
}

/// `commit_stats` (kernel 6.0+; zeros before).
#[derive(Debug, Default, PartialEq)]
struct CommitStats {
    commits: u64,
    last_commit_ms: u64,
    max_commit_ms: u64,
    total_commit_ms: u64,
}

/// `allocation/<type>/`.
#[derive(Debug, Default, PartialEq)]
struct Allocation {
    reserved_bytes: u64,
    /// Per layout subdirectory, sorted by name.
    layouts: Vec<Layout>,
}

/// `allocation/<type>/<layout>/`.
#[derive(Debug, Default, PartialEq)]
struct Layout {
    mode: String,
    used_bytes: u64,
    total_bytes: u64,
    ratio: f64,
}

impl Collector for BtrfsCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let base = ctx.sys_path("fs/btrfs");
        // Filesystems are the entries named by a UUID (`features` is not one).
        let names: Vec<String> = list_dir(&base)?
            .into_iter()
            .filter(|n| n.contains('-'))
            .collect();
        if names.is_empty() {
            return Ok(());
        }
        let mut filesystems = Vec::with_capacity(names.len());
        for name in names {
            ctx.check_deadline("btrfs filesystems")?;
            filesystems.push(read_fs(ctx, &base.join(&name), &name)?);
        }
        let devices = ioctl_devices(ctx);
        write_filesystems(enc, &filesystems, &devices);
        Ok(())
    }
}

/// Reads one filesystem's directory `<sysfs>/fs/btrfs/<name>/`.
fn read_fs(ctx: &mut Ctx<'_>, dir: &Path, name: &str) -> Result<FsStats, String> {
    let mut devices = Vec::new();
    let devices_dir = dir.join("devices");
    if !devices_dir.is_dir() {
        return Err(format!("{}: missing", devices_dir.display()));
    }
    for dev in list_dir(&devices_dir)? {
        let sectors = read_number(&devices_dir.join(&dev).join("size"))?;
        devices.push((dev, sectors.saturating_mul(SECTOR_SIZE)));
    }
    let mut allocation: [Allocation; 3] = Default::default();
    for (a, kind) in allocation.iter_mut().zip(BLOCK_GROUP_TYPES) {
        *a = read_allocation(&dir.join("allocation").join(kind), devices.len())?;
    }
    let uuid = read_trimmed(&dir.join("metadata_uuid"))?.unwrap_or_default();
    let commits = match ctx.read_optional(&dir.join("commit_stats"))? {
        Some(text) => parse_commit_stats(text)
            .map_err(|e| format!("parsing {}/commit_stats: {e}", dir.display()))?,
        None => CommitStats::default(),
    };
    Ok(FsStats {
        uuid: if uuid.is_empty() {
            name.to_string()
        } else {
            uuid
        },
        label: read_trimmed(&dir.join("label"))?.unwrap_or_default(),
        global_rsv_size: read_number(&dir.join("allocation/global_rsv_size"))?,
        commits,
        allocation,
        devices,
    })
}

/// Reads `allocation/<type>/`: the reserved bytes and every layout subdirectory.
fn read_allocation(dir: &Path, device_count: usize) -> Result<Allocation, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("listing {}: {e}", dir.display()))?;
    let mut layouts = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| format!("listing {}: {e}", dir.display()))?;
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let mode = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        layouts.push(Layout {
            used_bytes: read_number(&path.join("used_bytes"))?,
            total_bytes: read_number(&path.join("total_bytes"))?,
            ratio: allocation_ratio(&mode, device_count),
            mode,
        });
    }
    layouts.sort_by(|a, b| a.mode.cmp(&b.mode));
    Ok(Allocation {
        reserved_bytes: read_number(&dir.join("bytes_reserved"))?,
        layouts,
    })
}

/// How many bytes of disk a byte of data takes in a layout, as procfs computes it (0 for
/// layouts it does not know, such as `raid1c3`).
fn allocation_ratio(mode: &str, devices: usize) -> f64 {
    let n = devices as f64;
    match mode {
        "single" | "raid0" => 1.0,
        "dup" | "raid1" | "raid10" => 2.0,
        "raid5" => n / (n - 1.0),
        "raid6" => n / (n - 2.0),
        _ => 0.0,
    }
}

/// A sysfs attribute holding a number; missing or not a number reads 0 (as procfs).
fn read_number(path: &Path) -> Result<u64, String> {
    Ok(read_trimmed(path)?
        .and_then(|s| s.parse().ok())
        .unwrap_or(0))
}

/// Parses `commit_stats` (`commits 52`, `last_commit_ms 12`, ...): every line is a key and a
/// number; keys other than the four node_exporter uses are skipped.
fn parse_commit_stats(text: &str) -> Result<CommitStats, String> {
    let mut c = CommitStats::default();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let [key, value] = fields[..] else {
            return Err(format!(
                "line {}: expected a key and a value: {line:?}",
                i + 1
            ));
        };
        let v: u64 = value
            .parse()
            .map_err(|_| format!("line {}: invalid number {value:?}", i + 1))?;
        match key {
            "commits" => c.commits = v,
            "last_commit_ms" => c.last_commit_ms = v,
            "max_commit_ms" => c.max_commit_ms = v,
            "total_commit_ms" => c.total_commit_ms = v,
            _ => {}
        }
    }
    Ok(c)
}

/// The devices of every btrfs filesystem we can open a mount point of, by filesystem id
/// (32 hex digits). A filesystem that cannot be asked is left out (and gets the sysfs device
/// sizes instead), as in node_exporter; why is logged at debug level.
fn ioctl_devices(ctx: &mut Ctx<'_>) -> HashMap<String, Vec<ioctl::Device>> {
    let mut out = HashMap::new();
    let rootfs = ctx.paths.rootfs.clone();
    let mounts = match mount_table(ctx) {
        Ok(m) => m,
        Err(e) => {
            tracing::debug!("btrfs: no mount table, device stats from sysfs only: {e}");
            return out;
        }
    };
    let mut done_devices: Vec<String> = Vec::new();
    for (device, mount_point) in btrfs_mounts(&mounts, &rootfs) {
        if done_devices.contains(&device) {
            continue; // another mount (subvolume) of a filesystem already read
        }
        match ioctl::read_fs(&mount_point) {
            Ok(fs) => {
                done_devices.push(device);
                out.entry(fs.fsid).or_insert(fs.devices);
            }
            Err(e) => tracing::debug!("btrfs: device stats from sysfs only: {e}"),
        }
    }
    out
}

/// The host's mount table: PID 1's, or our own when PID 1 is hidden, as the filesystem
/// collector reads it.
fn mount_table(ctx: &mut Ctx<'_>) -> Result<String, String> {
    let p1 = ctx.proc_path("1/mountinfo");
    if let Some(t) = ctx.read_optional(&p1)? {
        return Ok(t.to_string());
    }
    let own = ctx.proc_path("self/mountinfo");
    Ok(ctx.read(&own)?.to_string())
}

/// The btrfs entries of a mount table: (device, where to open the mount point from here).
fn btrfs_mounts(text: &str, rootfs: &Path) -> Vec<(String, PathBuf)> {
    let Ok(mounts) = parse_mountinfo(text, "mountinfo", rootfs) else {
        return Vec::new();
    };
    mounts
        .into_iter()
        .filter(|m| m.fs_type == "btrfs")
        .map(|m| {
            let path = rootfs_join(rootfs, &m.mount_point);
            (m.device, path)
        })
        .collect()
}

/// Writes every family with the samples of all filesystems, in node_exporter's order.
fn write_filesystems(
    enc: &mut Encoder<'_>,
    filesystems: &[FsStats],
    devices: &HashMap<String, Vec<ioctl::Device>>,
) {
    let (g, c) = (Kind::Gauge, Kind::Counter);
    let mut f = enc.family("node_btrfs_info", "Filesystem information", g);
    for fs in filesystems {
        f.sample(&[("label", &fs.label), ("uuid", &fs.uuid)], 1.0);
    }
    type FsValue = fn(&FsStats) -> f64;
    let per_fs: [(&str, &str, Kind, FsValue); 5] = [
        (
            "node_btrfs_global_rsv_size_bytes",
            "Size of global reserve.",
            g,
            |fs| fs.global_rsv_size as f64,
        ),
        (
            "node_btrfs_commits_total",
            "The total number of commits that have occurred.",
            c,
            |fs| fs.commits.commits as f64,
        ),
        (
            "node_btrfs_last_commit_seconds",
            "Duration of the most recent commit, in seconds.",
            g,
            |fs| fs.commits.last_commit_ms as f64 / 1000.0,
        ),
        (
            "node_btrfs_max_commit_seconds",
            "Duration of the slowest commit, in seconds.",
            g,
            |fs| fs.commits.max_commit_ms as f64 / 1000.0,
        ),
        (
            "node_btrfs_commit_seconds_total",
            "Sum of the duration of all commits, in seconds.",
            c,
            |fs| fs.commits.total_commit_ms as f64 / 1000.0,
        ),
    ];
    for (name, help, kind, value) in per_fs {
        let mut f = enc.family(name, help, kind);
        for fs in filesystems {
            f.sample(&[("uuid", &fs.uuid)], value(fs));
        }
    }
    let mut f = enc.family(
        "node_btrfs_reserved_bytes",
        "Amount of space reserved for a data type",
        g,
    );
    for fs in filesystems {
        for (a, kind) in fs.allocation.iter().zip(BLOCK_GROUP_TYPES) {
            f.sample(
                &[("block_group_type", kind), ("uuid", &fs.uuid)],
                a.reserved_bytes as f64,
            );
        }
    }
    type LayoutValue = fn(&Layout) -> f64;
    let per_layout: [(&str, &str, LayoutValue); 3] = [
        (
            "node_btrfs_used_bytes",
            "Amount of used space by a layout/data type",
            |l| l.used_bytes as f64,
        ),
        (
            "node_btrfs_size_bytes",
            "Amount of space allocated for a layout/data type",
            |l| l.total_bytes as f64,
        ),
        (
            "node_btrfs_allocation_ratio",
            "Data allocation ratio for a layout/data type",
            |l| l.ratio,
        ),
    ];
    for (name, help, value) in per_layout {
        let mut f = enc.family(name, help, g);
        for fs in filesystems {
            for (a, kind) in fs.allocation.iter().zip(BLOCK_GROUP_TYPES) {
                for l in &a.layouts {
                    f.sample(
                        &[
                            ("block_group_type", kind),
                            ("mode", &l.mode),
                            ("uuid", &fs.uuid),
                        ],
                        value(l),
                    );
                }
            }
        }
    }
    let ioctl_of = |fs: &FsStats| devices.get(&fs.uuid.replace('-', ""));
    let mut f = enc.family(
        "node_btrfs_device_size_bytes",
        "Size of a device that is part of the filesystem.",
        g,
    );
    for fs in filesystems {
        match ioctl_of(fs) {
            Some(devs) => {
                for d in devs {
                    let labels = [
                        ("btrfs_dev_uuid", d.uuid.as_str()),
                        ("device", device_name(&d.path)),
                        ("uuid", &fs.uuid),
                    ];
                    f.sample(&labels, d.total_bytes as f64);
                }
            }
            None => {
                for (name, size) in &fs.devices {
                    f.sample(&[("device", name), ("uuid", &fs.uuid)], *size as f64);
                }
            }
        }
    }
    let mut f = enc.family(
        "node_btrfs_device_unused_bytes",
        "Unused bytes unused on a device that is part of the filesystem.",
        g,
    );
    for fs in filesystems {
        for d in ioctl_of(fs).into_iter().flatten() {
            let labels = [
                ("btrfs_dev_uuid", d.uuid.as_str()),
                ("device", device_name(&d.path)),
                ("uuid", &fs.uuid),
            ];
            f.sample(&labels, d.total_bytes.saturating_sub(d.bytes_used) as f64);
        }
    }
    let mut f = enc.family(
        "node_btrfs_device_errors_total",
        "Errors reported for the device",
        c,
    );
    for fs in filesystems {
        for d in ioctl_of(fs).into_iter().flatten() {
            for (kind, v) in ERROR_TYPES.iter().zip(d.errors) {
                let labels = [
                    ("btrfs_dev_uuid", d.uuid.as_str()),
                    ("device", device_name(&d.path)),
                    ("type", kind),
                    ("uuid", &fs.uuid),
                ];
                f.sample(&labels, v as f64);
            }
        }
    }
}

/// The last part of a device path (`/dev/sdb` is `sdb`), matching the names under sysfs
/// `devices/`.
fn device_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_tree::TestTree;

    #[test]
    fn commit_stats() {
        let text = "commits 52\ncur_commit_ms 0\nlast_commit_ms 12\nmax_commit_ms 160\ntotal_commit_ms 2410\n";
        assert_eq!(
            parse_commit_stats(text).unwrap(),
            CommitStats {
                commits: 52,
                last_commit_ms: 12,
                max_commit_ms: 160,
                total_commit_ms: 2410
            }
        );
        assert_eq!(parse_commit_stats("").unwrap(), CommitStats::default());
        assert!(parse_commit_stats("commits\n")
            .unwrap_err()
            .contains("line 1"));
        assert!(parse_commit_stats("commits 1 2\n").is_err());
        assert!(parse_commit_stats("commits 1\nmax_commit_ms x\n")
            .unwrap_err()
            .contains("line 2: invalid number \"x\""));
    }

    #[test]
    fn ratios() {
        assert_eq!(allocation_ratio("single", 1), 1.0);
        assert_eq!(allocation_ratio("dup", 1), 2.0);
        assert_eq!(allocation_ratio("raid10", 4), 2.0);
        assert_eq!(allocation_ratio("raid5", 4), 4.0 / 3.0);
        assert_eq!(allocation_ratio("raid6", 4), 2.0);
        assert_eq!(allocation_ratio("raid1c3", 3), 0.0);
    }

    #[test]
    fn mount_table() {
        let text = "22 27 0:21 / /proc rw - proc proc rw
40 27 0:40 / /data rw,relatime - btrfs /dev/sdb rw,subvolid=5,subvol=/
41 27 0:40 /files /srv/my\\040files rw - btrfs /dev/sdb rw,subvol=/files
42 27 0:41 / /host/root/backup ro - btrfs /dev/sdc1 ro
27 1 8:1 / / rw - ext4 /dev/sda1 rw
";
        let m = btrfs_mounts(text, Path::new("/host/root"));
        assert_eq!(
            m,
            vec![
                ("/dev/sdb".to_string(), PathBuf::from("/host/root/data")),
                (
                    "/dev/sdb".to_string(),
                    PathBuf::from("/host/root/srv/my files")
                ),
                ("/dev/sdc1".to_string(), PathBuf::from("/host/root/backup")),
            ]
        );
        let m = btrfs_mounts(text, Path::new("/"));
        assert_eq!(m[0].1, PathBuf::from("/data"));
        // A table that does not parse gives no mounts (the sysfs families still come).
        assert!(btrfs_mounts("truncated\n", Path::new("/")).is_empty());
    }

    /// A one-device filesystem as sysfs shows it.
    fn sysfs_fs(t: &TestTree, uuid: &str) {
        let d = format!("fs/btrfs/{uuid}");
        for (f, v) in [
            ("label", "fixture\n"),
            ("metadata_uuid", &format!("{uuid}\n")),
            ("commit_stats", "commits 4\ncur_commit_ms 0\nlast_commit_ms 12\nmax_commit_ms 1500\ntotal_commit_ms 2000\n"),
            ("devices/loop9/size", "262144\n"),
            ("allocation/global_rsv_size", "3670016\n"),
            ("allocation/data/bytes_reserved", "0\n"),
            ("allocation/data/single/used_bytes", "65536\n"),
            ("allocation/data/single/total_bytes", "8388608\n"),
            ("allocation/metadata/bytes_reserved", "16384\n"),
            ("allocation/metadata/dup/used_bytes", "131072\n"),
            ("allocation/metadata/dup/total_bytes", "x\n"),
            ("allocation/system/bytes_reserved", "0\n"),
            ("allocation/system/dup/used_bytes", "16384\n"),
            ("allocation/system/dup/total_bytes", "8388608\n"),
        ] {
            t.write(&format!("{d}/{f}"), v);
        }
    }

    fn scrape(paths: &eos_module::HostPaths) -> Result<String, String> {
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, eos_exposition::Format::Text);
        let mut buf = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        BtrfsCollector.update(&mut enc, &mut Ctx::new(paths, deadline, &mut buf))?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn sysfs_only() {
        let t = TestTree::new("btrfs");
        let paths = eos_module::HostPaths {
            sysfs: t.path().join("sys"),
            procfs: t.path().join("proc"),
            rootfs: t.path().join("root"),
            ..eos_module::HostPaths::default()
        };
        t.write("sys/fs/btrfs/features/free_space_tree", "0\n");
        assert_eq!(scrape(&paths).unwrap(), "", "no filesystems: nothing");
        let uuid = "0abb23a9-9aa4-4dd0-9bb9-1d1e3e1b2fd4";
        let st = TestTree::new("btrfs-sys");
        sysfs_fs(&st, uuid);
        let paths = eos_module::HostPaths {
            sysfs: st.path().to_path_buf(),
            ..paths
        };
        let text = scrape(&paths).unwrap();
        eos_exposition::parse_text(&text).unwrap();
        let u = format!("uuid=\"{uuid}\"");
        for want in [
            format!("node_btrfs_info{{label=\"fixture\",{u}}} 1"),
            format!("node_btrfs_global_rsv_size_bytes{{{u}}} 3.670016e+06"),
            format!("node_btrfs_commits_total{{{u}}} 4"),
            format!("node_btrfs_last_commit_seconds{{{u}}} 0.012"),
            format!("node_btrfs_max_commit_seconds{{{u}}} 1.5"),
            format!("node_btrfs_commit_seconds_total{{{u}}} 2"),
            format!("node_btrfs_reserved_bytes{{block_group_type=\"metadata\",{u}}} 16384"),
            format!("node_btrfs_used_bytes{{block_group_type=\"data\",mode=\"single\",{u}}} 65536"),
            // Not a number: 0, as procfs reads it.
            format!("node_btrfs_size_bytes{{block_group_type=\"metadata\",mode=\"dup\",{u}}} 0"),
            format!(
                "node_btrfs_allocation_ratio{{block_group_type=\"system\",mode=\"dup\",{u}}} 2"
            ),
            // No mount to ask: the sysfs size, labelled by device only.
            format!("node_btrfs_device_size_bytes{{device=\"loop9\",{u}}} 1.34217728e+08"),
        ] {
            assert!(
                text.lines().any(|l| l == want),
                "missing {want:?} in:\n{text}"
            );
        }
        assert!(!text.contains("node_btrfs_device_errors_total"));

        // Kernels before 6.0 have no commit_stats: zeros.
        std::fs::remove_file(st.path().join(format!("fs/btrfs/{uuid}/commit_stats"))).unwrap();
        assert!(scrape(&paths)
            .unwrap()
            .contains(&format!("node_btrfs_commits_total{{{u}}} 0\n")));
        // A broken commit_stats, or a missing allocation directory, fails the collector.
        st.write(&format!("fs/btrfs/{uuid}/commit_stats"), "commits\n");
        assert!(scrape(&paths).unwrap_err().contains("commit_stats"));
        std::fs::remove_file(st.path().join(format!("fs/btrfs/{uuid}/commit_stats"))).unwrap();
        std::fs::remove_dir_all(st.path().join(format!("fs/btrfs/{uuid}/allocation/system")))
            .unwrap();
        let e = scrape(&paths).unwrap_err();
        assert!(e.contains("allocation/system"), "{e}");
    }

    /// A real btrfs on a loop device, asked through the ioctls. Needs root, a loop device,
    /// `mkfs.btrfs` (Debian `btrfs-progs`) and btrfs in the kernel; skipped otherwise.
    #[test]
    fn device_stats_of_a_real_btrfs() {
        let Some(fs) = LoopBtrfs::make("eos-btrfs-test") else {
            return;
        };
        let paths = eos_module::HostPaths::default();
        let text = scrape(&paths).unwrap();
        eos_exposition::parse_text(&text).unwrap();
        let uuid = fs.uuid.as_str();
        let dev = fs.device_name();
        let mine = |family: &str| -> Vec<String> {
            text.lines()
                .filter(|l| l.starts_with(family) && l.contains(&format!("uuid=\"{uuid}\"")))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(
            mine("node_btrfs_info{"),
            vec![format!(
                "node_btrfs_info{{label=\"eos-test\",uuid=\"{uuid}\"}} 1"
            )]
        );
        let size = mine("node_btrfs_device_size_bytes{");
        assert_eq!(size.len(), 1, "{text}");
        assert!(size[0].contains(&format!(",device=\"{dev}\",")), "{size:?}");
        assert!(size[0].contains("btrfs_dev_uuid=\""), "{size:?}");
        // 128 MiB, as Go formats it.
        assert!(size[0].ends_with(" 1.34217728e+08"), "{size:?}");
        let unused = mine("node_btrfs_device_unused_bytes{");
        assert_eq!(unused.len(), 1, "{text}");
        let errors = mine("node_btrfs_device_errors_total{");
        assert_eq!(errors.len(), 5, "{text}");
        for kind in ERROR_TYPES {
            assert!(
                errors
                    .iter()
                    .any(|l| l.contains(&format!("type=\"{kind}\"")) && l.ends_with(" 0")),
                "{kind}: {errors:?}"
            );
        }
        assert_eq!(mine("node_btrfs_allocation_ratio{").len(), 3, "{text}");
    }

    /// A btrfs image mounted through a loop device; unmounted and removed on drop.
    struct LoopBtrfs {
        image: PathBuf,
        mount_point: PathBuf,
        uuid: String,
        device: String,
    }

    impl LoopBtrfs {
        /// 128 MiB.
        const SIZE: u64 = 128 << 20;

        /// `None` (with the reason printed) where this machine cannot do it.
        fn make(tag: &str) -> Option<LoopBtrfs> {
            use std::process::Command;
            // SAFETY: geteuid has no preconditions.
            if unsafe { libc::geteuid() } != 0 {
                eprintln!("skipping: needs root to mount a loop device");
                return None;
            }
            let dir = std::env::temp_dir().join(format!("{tag}-{}", std::process::id()));
            let image = dir.with_extension("img");
            let file = std::fs::File::create(&image).unwrap();
            file.set_len(Self::SIZE).unwrap();
            drop(file);
            let run = |cmd: &mut Command| -> Result<String, String> {
                let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
                if !out.status.success() {
                    return Err(format!(
                        "{cmd:?}: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    ));
                }
                Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
            };
            let made = run(Command::new("mkfs.btrfs")
                .args(["-q", "-f", "-L", "eos-test"])
                .arg(&image));
            if let Err(e) = made {
                eprintln!("skipping: mkfs.btrfs (Debian btrfs-progs) unavailable: {e}");
                let _ = std::fs::remove_file(&image);
                return None;
            }
            std::fs::create_dir_all(&dir).unwrap();
            let mut fs = LoopBtrfs {
                image: image.clone(),
                mount_point: dir.clone(),
                uuid: String::new(),
                device: String::new(),
            };
            if let Err(e) = run(Command::new("mount")
                .args(["-o", "loop"])
                .arg(&image)
                .arg(&dir))
            {
                eprintln!("skipping: cannot mount a btrfs loop device here: {e}");
                return None; // drop removes the files
            }
            let findmnt = |column: &str| {
                run(Command::new("findmnt").args(["-n", "-o", column]).arg(&dir))
                    .unwrap_or_else(|e| panic!("findmnt: {e}"))
            };
            fs.uuid = findmnt("UUID");
            fs.device = findmnt("SOURCE");
            Some(fs)
        }

        fn device_name(&self) -> &str {
            device_name(&self.device)
        }
    }

    impl Drop for LoopBtrfs {
        fn drop(&mut self) {
            // `mount -o loop` sets autoclear: unmounting frees the loop device.
            let _ = std::process::Command::new("umount")
                .arg(&self.mount_point)
                .status();
            let _ = std::fs::remove_dir(&self.mount_point);
            let _ = std::fs::remove_file(&self.image);
        }
    }
}
