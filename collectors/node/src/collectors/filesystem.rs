//! `filesystem`: size and inode use of every mounted filesystem (`node_filesystem_*`), from
//! the mount table of PID 1 (`<procfs>/1/mounts`, falling back to `<procfs>/mounts`) and a
//! `statfs(2)` of `<rootfs>/<mountpoint>`.
//!
//! A `statfs` on a dead NFS server blocks in the kernel, possibly forever. So, except for
//! local filesystems that answer from memory (ext4, xfs, tmpfs, ...), `statfs` runs on a
//! helper thread and the scrape waits at most `mount_timeout` (and never past the scrape
//! deadline). A mount that times out is reported with `node_filesystem_device_error 1` and
//! skipped in later scrapes (the blocked helper is abandoned and a fresh one takes over)
//! until its `statfs` finally returns; then it is measured again.

use eos_exposition::{Encoder, Kind};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::collector::{At, Collector, CollectorDef, Ctx};
use crate::pattern::Pattern;
use crate::settings::{CollectorSettings, Flag};
use eos_module::ConfigIssue;
use serde::{Deserialize, Serialize};

pub(crate) const DEF: CollectorDef<Settings> = CollectorDef {
    name: "filesystem",
    default_enabled: true,
    build: |c, paths| {
        Ok(Box::new(FilesystemCollector {
            mount_points_exclude: c.mount_points_exclude.clone(),
            fs_types_exclude: c.fs_types_exclude.clone(),
            timeout: c.mount_timeout.get(),
            rootfs: paths.rootfs.clone(),
            stat_fn: statfs,
            state: Mutex::new(State::default()),
        }))
    },
};

/// node_exporter's default for `--collector.filesystem.mount-points-exclude`.
const MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
/// node_exporter's default for `--collector.filesystem.fs-types-exclude`.
const FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";

/// `modules.node.filesystem`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settings {
    /// Mount points not reported.
    pub(crate) mount_points_exclude: Pattern,
    /// Filesystem types not reported.
    pub(crate) fs_types_exclude: Pattern,
    /// How long one `statfs` may take before the mount is reported as failing and skipped
    /// until it answers again (`--collector.filesystem.mount-timeout`).
    pub(crate) mount_timeout: eos_module::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mount_points_exclude: Pattern::new_static(MOUNT_POINTS_EXCLUDE),
            fs_types_exclude: Pattern::new_static(FS_TYPES_EXCLUDE),
            mount_timeout: eos_module::Duration::from_secs(5),
        }
    }
}

impl CollectorSettings for Settings {
    const FLAG_PREFIXES: &'static [&'static str] = &["filesystem"];
    const HELP: &'static str = "  --collector.filesystem.mount-points-exclude=RE
  --collector.filesystem.fs-types-exclude=RE
  --collector.filesystem.mount-timeout=DURATION   (default 5s)
";

    fn apply_flag(&mut self, flag: &Flag<'_>) -> Result<bool, String> {
        match flag.key {
            "mount-points-exclude" | "ignored-mount-points" => {
                self.mount_points_exclude = flag.pattern()?
            }
            "fs-types-exclude" | "ignored-fs-types" => self.fs_types_exclude = flag.pattern()?,
            "mount-timeout" => self.mount_timeout = flag.duration()?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn validate(&self) -> Result<(), ConfigIssue> {
        if self.mount_timeout.get().is_zero() {
            return Err(ConfigIssue::at(
                "mount_timeout",
                "must be more than 0 (every mount would time out), e.g. 5s",
            ));
        }
        Ok(())
    }
}

struct FilesystemCollector {
    mount_points_exclude: Pattern,
    fs_types_exclude: Pattern,
    timeout: Duration,
    rootfs: PathBuf,
    /// `statfs`, or a stand-in in tests.
    stat_fn: StatFn,
    state: Mutex<State>,
}

type StatFn = fn(&Path) -> Result<Usage, String>;

#[derive(Default)]
struct State {
    worker: Option<Worker>,
    /// Mount points whose `statfs` timed out, with the flag their abandoned helper sets when
    /// that `statfs` finally returns.
    stuck: HashMap<String, Arc<AtomicBool>>,
}

/// One mount table entry.
#[derive(Debug, PartialEq)]
struct Mount<'a> {
    device: String,
    mount_point: String,
    fs_type: &'a str,
    read_only: bool,
}

/// What `statfs` says, in bytes and inodes.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Usage {
    size: f64,
    free: f64,
    avail: f64,
    files: f64,
    files_free: f64,
}

/// One row of output: the labels, read-only flag, and usage (`None`: device error).
struct Row {
    device: String,
    mount_point: String,
    fs_type: String,
    read_only: bool,
    usage: Option<Usage>,
}

impl Collector for FilesystemCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let p1 = ctx.proc_path("1/mounts");
        let text = match ctx.read_optional(&p1)? {
            Some(t) => t.to_string(),
            None => ctx.read_proc("mounts")?.to_string(),
        };
        let mounts = parse_mounts(&text, &self.rootfs)?;
        let mut state = self
            .state
            .lock()
            .map_err(|_| "filesystem state poisoned".to_string())?;
        let mut rows: Vec<Row> = Vec::new();
        for m in mounts {
            if self.mount_points_exclude.is_match(&m.mount_point)
                || self.fs_types_exclude.is_match(m.fs_type)
            {
                continue;
            }
            if rows
                .iter()
                .any(|r| r.device == m.device && r.mount_point == m.mount_point)
            {
                continue; // mounted twice over the same point: node_exporter reports it once
            }
            rows.push(Row {
                device: m.device,
                mount_point: m.mount_point,
                fs_type: m.fs_type.to_string(),
                read_only: m.read_only,
                usage: None,
            });
        }
        self.stat_all(&mut state, &mut rows, ctx.deadline);
        drop(state);
        write_rows(enc, &rows);
        Ok(())
    }
}

impl FilesystemCollector {
    /// Fills in `usage` for every row whose mount point is not stuck, in one batch on the
    /// helper thread, waiting at most the timeout per mount point. A mount point that times out
    /// is marked stuck, its helper abandoned, and the rest of the batch goes to a new helper.
    fn stat_all(&self, state: &mut State, rows: &mut [Row], deadline: Instant) {
        let mut pending: Vec<usize> = Vec::with_capacity(rows.len());
        for i in 0..rows.len() {
            let Some(row) = rows.get(i) else { break };
            if let Some(done) = state.stuck.get(&row.mount_point) {
                if !done.load(Ordering::Acquire) {
                    continue;
                }
                tracing::info!(
                    mount_point = row.mount_point,
                    "filesystem: mount point answers again"
                );
                state.stuck.remove(&row.mount_point);
            }
            if answers_from_memory(rows, row) {
                // Answered from counters in memory: no need for the helper's round trip.
                let path = rootfs_join(&self.rootfs, &row.mount_point);
                row_usage(rows, i, (self.stat_fn)(&path));
                continue;
            }
            pending.push(i);
        }
        let mut next = 0;
        while next < pending.len() {
            let worker = match &mut state.worker {
                Some(w) => w,
                slot @ None => match Worker::spawn(self.stat_fn) {
                    Ok(w) => slot.insert(w),
                    Err(e) => {
                        tracing::warn!(error = %e, "filesystem: cannot start statfs helper");
                        return;
                    }
                },
            };
            let batch: Vec<PathBuf> = pending[next..]
                .iter()
                .filter_map(|&i| rows.get(i))
                .map(|r| rootfs_join(&self.rootfs, &r.mount_point))
                .collect();
            if !worker.submit(batch) {
                state.worker = None;
                return;
            }
            let mut timed_out = None;
            for (k, &i) in pending.iter().enumerate().skip(next) {
                let wait = self
                    .timeout
                    .min(deadline.saturating_duration_since(Instant::now()));
                match worker.results.recv_timeout(wait) {
                    Ok(result) => {
                        if let Some(row) = rows.get_mut(i) {
                            row.usage = result.ok();
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {
                        timed_out = Some((k, i, wait));
                        break;
                    }
                    Err(RecvTimeoutError::Disconnected) => {
                        state.worker = None;
                        return;
                    }
                }
            }
            let Some((k, i, wait)) = timed_out else {
                return;
            };
            let Some(row) = rows.get(i) else { return };
            if wait.is_zero() || Instant::now() >= deadline {
                // Out of scrape time, not necessarily a stuck mount: leave the rest as errors.
                // The helper may still be in this mount's statfs: it is skipped until the
                // helper is idle again, so a hung mount costs one thread, not one a scrape.
                tracing::warn!("filesystem: scrape deadline reached during statfs");
                state
                    .stuck
                    .insert(row.mount_point.clone(), worker.idle.clone());
                state.worker = None;
                return;
            }
            tracing::warn!(
                mount_point = row.mount_point,
                timeout = ?wait,
                "filesystem: statfs timed out; skipping this mount point until it answers"
            );
            state
                .stuck
                .insert(row.mount_point.clone(), worker.idle.clone());
            state.worker = None; // abandon the blocked helper
            next = k + 1;
        }
    }
}

/// Local filesystems whose `statfs` reads counters kept in memory (no I/O, no server), so it
/// cannot hang the way a network or FUSE filesystem can: these skip the helper thread.
const IN_MEMORY_STATFS: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "vfat", "tmpfs", "ramfs",
];

/// Whether `row` can be stat'ed on the scrape thread: its filesystem answers from memory and
/// no mount it lies beneath needs the helper (the path walk could wait on that one).
fn answers_from_memory(rows: &[Row], row: &Row) -> bool {
    let local = |r: &Row| IN_MEMORY_STATFS.contains(&r.fs_type.as_str());
    local(row)
        && !rows
            .iter()
            .any(|r| !local(r) && is_beneath(&row.mount_point, &r.mount_point))
}

/// Whether `path` is strictly beneath the directory `dir`.
fn is_beneath(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path.strip_prefix(dir)
        .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1)
}

fn row_usage(rows: &mut [Row], i: usize, usage: Result<Usage, String>) {
    if let Some(row) = rows.get_mut(i) {
        row.usage = usage.ok();
    }
}

fn write_rows(enc: &mut Encoder<'_>, rows: &[Row]) {
    type Field = fn(&Usage) -> f64;
    let families: [(&str, &str, Field); 5] = [
        (
            "node_filesystem_size_bytes",
            "Filesystem size in bytes.",
            |u| u.size,
        ),
        (
            "node_filesystem_free_bytes",
            "Filesystem free space in bytes.",
            |u| u.free,
        ),
        (
            "node_filesystem_avail_bytes",
            "Filesystem space available to non-root users in bytes.",
            |u| u.avail,
        ),
        (
            "node_filesystem_files",
            "Filesystem total file nodes.",
            |u| u.files,
        ),
        (
            "node_filesystem_files_free",
            "Filesystem total free file nodes.",
            |u| u.files_free,
        ),
    ];
    for (name, help, field) in families {
        let mut f = enc.family(name, help, Kind::Gauge);
        for r in rows {
            if let Some(u) = &r.usage {
                f.sample(
                    &[
                        ("device", &r.device),
                        ("fstype", &r.fs_type),
                        ("mountpoint", &r.mount_point),
                    ],
                    field(u),
                );
            }
        }
    }
    let mut f = enc.family(
        "node_filesystem_device_error",
        "Whether an error occurred while getting statistics for the given device.",
        Kind::Gauge,
    );
    for r in rows {
        let v = if r.usage.is_some() { 0.0 } else { 1.0 };
        f.sample(
            &[
                ("device", &r.device),
                ("fstype", &r.fs_type),
                ("mountpoint", &r.mount_point),
            ],
            v,
        );
    }
    let mut f = enc.family(
        "node_filesystem_readonly",
        "Filesystem read-only status.",
        Kind::Gauge,
    );
    for r in rows {
        let v = if r.read_only { 1.0 } else { 0.0 };
        f.sample(
            &[
                ("device", &r.device),
                ("fstype", &r.fs_type),
                ("mountpoint", &r.mount_point),
            ],
            v,
        );
    }
}

/// `<rootfs>/<mount_point>` (the host's mount as seen from the agent's container).
fn rootfs_join(rootfs: &Path, mount_point: &str) -> PathBuf {
    rootfs.join(mount_point.trim_start_matches('/'))
}

/// Parses a mount table (`/proc/1/mounts` format). Mount points are unescaped (`\040` is a
/// space) and, when the table is the agent's own view of a host mounted at `rootfs`, the
/// `rootfs` prefix is removed as node_exporter does.
fn parse_mounts<'t>(text: &'t str, rootfs: &Path) -> Result<Vec<Mount<'t>>, String> {
    let mut out = Vec::new();
    let root = rootfs.to_str().unwrap_or("/").trim_end_matches('/');
    for (i, line) in text.lines().enumerate() {
        let at = At("mounts", i + 1);
        let mut parts = line.split_ascii_whitespace();
        let Some(device) = parts.next() else { continue };
        let (Some(mount_point), Some(fs_type), Some(options)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(format!(
                "{at}: expected device, mount point, type and options"
            ));
        };
        let mut mount_point = unescape(mount_point);
        if !root.is_empty() {
            if let Some(rest) = mount_point.strip_prefix(root) {
                if rest.is_empty() {
                    mount_point = "/".to_string();
                } else if rest.starts_with('/') {
                    mount_point = rest.to_string();
                }
            }
        }
        out.push(Mount {
            device: unescape(device),
            mount_point,
            fs_type,
            read_only: options.split(',').any(|o| o == "ro"),
        });
    }
    Ok(out)
}

/// Undoes the kernel's octal escapes in mount table fields (`\040` space, `\011` tab, ...).
fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'\\' {
            if let Some(&[x, y, z]) = b.get(i + 1..i + 4) {
                let octal = |d: u8| d.is_ascii_digit() && d < b'8';
                if octal(x) && octal(y) && octal(z) {
                    let v =
                        u32::from(x - b'0') * 64 + u32::from(y - b'0') * 8 + u32::from(z - b'0');
                    if let Ok(byte) = u8::try_from(v) {
                        out.push(byte);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A helper thread that runs batches of `statfs` calls, one at a time, and sends each
/// result back as soon as it has it.
struct Worker {
    jobs: Sender<Vec<PathBuf>>,
    results: Receiver<Result<Usage, String>>,
    /// False while a `statfs` is in progress.
    idle: Arc<AtomicBool>,
}

impl Worker {
    fn spawn(stat_fn: StatFn) -> Result<Worker, String> {
        let (jobs, job_rx) = mpsc::channel::<Vec<PathBuf>>();
        let (result_tx, results) = mpsc::channel();
        let idle = Arc::new(AtomicBool::new(true));
        let flag = idle.clone();
        std::thread::Builder::new()
            .name("eos-node-statfs".to_string())
            .spawn(move || {
                // Ends when the collector drops or abandons this worker (channels closed).
                while let Ok(batch) = job_rx.recv() {
                    for path in batch {
                        flag.store(false, Ordering::Release);
                        let r = stat_fn(&path);
                        flag.store(true, Ordering::Release);
                        if result_tx.send(r).is_err() {
                            return;
                        }
                    }
                }
            })
            .map_err(|e| format!("starting statfs helper: {e}"))?;
        Ok(Worker {
            jobs,
            results,
            idle,
        })
    }

    /// Queues a batch; false if the helper is gone.
    fn submit(&self, batch: Vec<PathBuf>) -> bool {
        self.jobs.send(batch).is_ok()
    }
}

fn statfs(path: &Path) -> Result<Usage, String> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("statfs {}: path contains NUL", path.display()))?;
    // SAFETY: statfs is plain old data, filled by the call.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `s` a writable statfs.
    if unsafe { libc::statfs(c.as_ptr(), &mut s) } != 0 {
        return Err(format!(
            "statfs {}: {}",
            path.display(),
            std::io::Error::last_os_error()
        ));
    }
    let bsize = s.f_bsize as f64;
    Ok(Usage {
        size: s.f_blocks as f64 * bsize,
        free: s.f_bfree as f64 * bsize,
        avail: s.f_bavail as f64 * bsize,
        files: s.f_files as f64,
        files_free: s.f_ffree as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_settings() {
        let s = Settings::default();
        assert_eq!(s.mount_points_exclude.as_str(), MOUNT_POINTS_EXCLUDE);
        assert!(s.mount_points_exclude.is_match("/proc/sys"));
        assert!(!s.mount_points_exclude.is_match("/home"));
        assert!(!s.fs_types_exclude.is_match("tmpfs") && s.fs_types_exclude.is_match("proc"));
        assert!(s.validate().is_ok());
    }

    #[test]
    fn mounts() {
        let m = parse_mounts(
            "/dev/vda / ext4 rw,relatime 0 0\nserver:/x /mnt/my\\040share nfs4 ro,relatime 0 0\n\n",
            Path::new("/"),
        )
        .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mount_point, "/");
        assert!(!m[0].read_only);
        assert_eq!(m[1].mount_point, "/mnt/my share");
        assert_eq!(m[1].fs_type, "nfs4");
        assert!(m[1].read_only);
    }

    #[test]
    fn rootfs_prefix_is_stripped() {
        let m = parse_mounts(
            "/dev/vda /host/root ext4 rw 0 0\n/dev/vdb /host/root/data xfs rw 0 0\n/dev/vdc /host/rootless xfs rw 0 0\n",
            Path::new("/host/root"),
        )
        .unwrap();
        assert_eq!(m[0].mount_point, "/");
        assert_eq!(m[1].mount_point, "/data");
        assert_eq!(m[2].mount_point, "/host/rootless");
        assert_eq!(
            rootfs_join(Path::new("/host/root"), "/data"),
            Path::new("/host/root/data")
        );
    }

    #[test]
    fn malformed_mounts() {
        assert!(parse_mounts("/dev/vda /\n", Path::new("/"))
            .unwrap_err()
            .contains("line 1"));
    }

    #[test]
    fn local_mounts_beneath_network_mounts_use_the_helper() {
        let row = |mp: &str, fs: &str| Row {
            device: "d".into(),
            mount_point: mp.into(),
            fs_type: fs.into(),
            read_only: false,
            usage: None,
        };
        let rows = [
            row("/", "ext4"),
            row("/srv/nfs", "nfs4"),
            row("/srv/nfs/disk", "ext4"),
            row("/srv/nfsx", "xfs"),
        ];
        let inline: Vec<bool> = rows.iter().map(|r| answers_from_memory(&rows, r)).collect();
        assert_eq!(inline, [true, false, false, true]);
        assert!(is_beneath("/a/b", "/a") && is_beneath("/a", "/") && !is_beneath("/", "/"));
        assert!(!is_beneath("/ab", "/a"));
    }

    #[test]
    fn unescapes() {
        assert_eq!(unescape("a\\040b\\011c"), "a b\tc");
        assert_eq!(unescape("plain"), "plain");
        assert_eq!(unescape("trail\\04"), "trail\\04");
        assert_eq!(unescape("bad\\999"), "bad\\999");
        assert_eq!(unescape("\\"), "\\");
    }

    /// Scrapes until `done` holds for the output (a helper thread returning), for up to 2 s;
    /// the last output either way.
    fn scrape_until(scrape: impl Fn() -> String, done: impl Fn(&str) -> bool) -> String {
        let mut out = String::new();
        for _ in 0..200 {
            out = scrape();
            if done(&out) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        out
    }

    /// A tree whose `proc/1/mounts` lists `mounts`, and host paths pointing at it.
    fn with_mounts(
        name: &str,
        mounts: &str,
    ) -> (
        crate::collectors::test_tree::TestTree,
        eos_module::HostPaths,
    ) {
        let tree = crate::collectors::test_tree::TestTree::new(name);
        tree.write("proc/1/mounts", mounts);
        let paths = eos_module::HostPaths {
            procfs: tree.path().join("proc"),
            rootfs: tree.path().to_path_buf(),
            ..eos_module::HostPaths::default()
        };
        (tree, paths)
    }

    /// The collector with default filters, a stand-in for statfs and a mount timeout.
    fn with_stat(
        paths: &eos_module::HostPaths,
        stat_fn: fn(&Path) -> Result<Usage, String>,
        timeout: Duration,
    ) -> FilesystemCollector {
        let config = Settings::default();
        FilesystemCollector {
            mount_points_exclude: config.mount_points_exclude.clone(),
            fs_types_exclude: config.fs_types_exclude.clone(),
            timeout,
            rootfs: paths.rootfs.clone(),
            stat_fn,
            state: Mutex::new(State::default()),
        }
    }

    /// One update with a scrape deadline `budget` from now, as text.
    fn scrape_within(
        c: &FilesystemCollector,
        paths: &eos_module::HostPaths,
        budget: Duration,
    ) -> String {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, eos_exposition::Format::Text);
        c.update(
            &mut enc,
            &mut Ctx::new(paths, Instant::now() + budget, &mut buf),
        )
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    static HANG: AtomicBool = AtomicBool::new(true);
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    /// A stand-in for statfs that blocks on `*/hung` while `HANG` is set.
    fn fake_stat(path: &Path) -> Result<Usage, String> {
        CALLS.fetch_add(1, Ordering::SeqCst);
        if path.ends_with("hung") {
            while HANG.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        if path.ends_with("broken") {
            return Err("EIO".to_string());
        }
        Ok(Usage {
            size: 100.0,
            free: 50.0,
            avail: 40.0,
            files: 10.0,
            files_free: 5.0,
        })
    }

    fn value(text: &str, name: &str, mount: &str) -> Option<f64> {
        eos_exposition::parse_text(text)
            .unwrap()
            .samples
            .iter()
            .find(|s| {
                s.name == name && s.labels.get("mountpoint").map(String::as_str) == Some(mount)
            })
            .map(|s| s.value)
    }

    #[test]
    fn hung_mount_is_skipped_until_it_answers() {
        let (_tree, paths) = with_mounts(
            "fs-hung",
            "/dev/vda / ext4 rw 0 0\nsrv:/x /hung nfs4 rw 0 0\n/dev/vdb /broken xfs ro 0 0\nproc /proc proc rw 0 0\n",
        );
        let c = with_stat(&paths, fake_stat, Duration::from_millis(50));
        let scrape = || scrape_within(&c, &paths, Duration::from_secs(30));
        let out = scrape();
        assert_eq!(
            value(&out, "node_filesystem_size_bytes", "/"),
            Some(100.0),
            "{out}"
        );
        assert_eq!(value(&out, "node_filesystem_device_error", "/"), Some(0.0));
        assert_eq!(
            value(&out, "node_filesystem_device_error", "/hung"),
            Some(1.0)
        );
        assert_eq!(value(&out, "node_filesystem_size_bytes", "/hung"), None);
        assert_eq!(
            value(&out, "node_filesystem_device_error", "/broken"),
            Some(1.0)
        );
        assert_eq!(
            value(&out, "node_filesystem_readonly", "/broken"),
            Some(1.0)
        );
        assert_eq!(value(&out, "node_filesystem_device_error", "/proc"), None);

        // Still hung: not asked again, still reported as an error.
        let before = CALLS.load(Ordering::SeqCst);
        let out = scrape();
        assert_eq!(
            value(&out, "node_filesystem_device_error", "/hung"),
            Some(1.0)
        );
        assert_eq!(
            CALLS.load(Ordering::SeqCst) - before,
            2,
            "only / and /broken are stat'ed"
        );

        // The mount answers again: measured again once its helper returns.
        HANG.store(false, Ordering::SeqCst);
        let out = scrape_until(scrape, |out| {
            value(out, "node_filesystem_device_error", "/hung") == Some(0.0)
        });
        assert_eq!(
            value(&out, "node_filesystem_size_bytes", "/hung"),
            Some(100.0),
            "{out}"
        );
    }

    static SLOW: AtomicBool = AtomicBool::new(true);
    static SLOW_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    /// A stand-in for statfs that blocks on `*/slow` while `SLOW` is set.
    fn slow_stat(path: &Path) -> Result<Usage, String> {
        SLOW_CALLS.fetch_add(1, Ordering::SeqCst);
        while path.ends_with("slow") && SLOW.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(Usage {
            size: 100.0,
            free: 50.0,
            avail: 40.0,
            files: 10.0,
            files_free: 5.0,
        })
    }

    /// The scrape deadline, not the mount timeout, cuts a hung statfs short: the mount is
    /// still skipped until its helper returns, so each scrape does not leave another thread.
    #[test]
    fn a_mount_cut_short_by_the_deadline_is_not_asked_again_while_hung() {
        let (_tree, paths) = with_mounts(
            "fs-slow",
            "/dev/vda / ext4 rw 0 0\nsrv:/x /slow nfs4 rw 0 0\n",
        );
        let c = with_stat(&paths, slow_stat, Duration::from_secs(30));
        let scrape = || scrape_within(&c, &paths, Duration::from_millis(150));
        scrape();
        for _ in 0..3 {
            let before = SLOW_CALLS.load(Ordering::SeqCst);
            let out = scrape();
            assert_eq!(
                SLOW_CALLS.load(Ordering::SeqCst) - before,
                1,
                "only / is stat'ed while /slow hangs"
            );
            assert_eq!(
                value(&out, "node_filesystem_device_error", "/slow"),
                Some(1.0)
            );
        }
        SLOW.store(false, Ordering::SeqCst);
        let out = scrape_until(scrape, |out| {
            value(out, "node_filesystem_size_bytes", "/slow") == Some(100.0)
        });
        assert_eq!(
            value(&out, "node_filesystem_size_bytes", "/slow"),
            Some(100.0),
            "{out}"
        );
    }

    #[test]
    fn statfs_root() {
        let u = statfs(Path::new("/")).unwrap();
        assert!(u.size > 0.0);
        assert!(statfs(Path::new("/nonexistent-eos-test")).is_err());
    }
}
