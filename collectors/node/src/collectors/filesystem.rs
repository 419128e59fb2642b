//! `filesystem`: size and inode use of every mounted filesystem (`node_filesystem_*`), from
//! the mount table of PID 1 (`<procfs>/1/mountinfo`, falling back to
//! `<procfs>/self/mountinfo` when PID 1's is hidden) and a `statfs(2)` of
//! `<rootfs>/<mountpoint>`.
//!
//! As node_exporter 1.12 does: every family but `node_filesystem_mount_info` carries a
//! `device_error` label, empty when `statfs` answered and otherwise why it did not (Go's text
//! for the errno, such as `permission denied`, or `mountpoint timeout`). A mount that failed
//! has only `node_filesystem_device_error 1` and `node_filesystem_readonly`; a measured one
//! has the size and inode families and `node_filesystem_mount_info{device,major,minor,
//! mountpoint} 1` (the device numbers from `mountinfo`). Read-only means `ro` among the
//! mount's options or its super block's. A device mounted twice on the same mount point is
//! reported once.
//!
//! A `statfs` on a dead NFS server blocks in the kernel, possibly forever. So, except for
//! local filesystems that answer from memory (ext4, xfs, tmpfs, ...), `statfs` runs on helper
//! threads, at most `stat_workers` at once (`--collector.filesystem.stat-workers`, 4 as in
//! node_exporter), and the scrape waits at most `mount_timeout` for each (and never past the
//! scrape deadline). A mount that times out is reported with `node_filesystem_device_error 1`
//! (`device_error="mountpoint timeout"`) and skipped in later scrapes (its blocked helper is
//! abandoned and a fresh one takes over) until its `statfs` finally returns; then it is
//! measured again. Several helpers matter when a server dies with several of its exports
//! mounted: they time out together, within one `mount_timeout`, instead of one after another.

use eos_exposition::{Encoder, Kind};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::collector::{Collector, CollectorDef, Ctx};
use crate::device_filter::DeviceFilter;
use crate::mounts::{parse_mountinfo, rootfs_join};
use crate::pattern::Pattern;
use crate::settings::{CollectorSettings, Flag};
use eos_module::ConfigIssue;
use serde::{Deserialize, Serialize};

pub(crate) const DEF: CollectorDef<Settings> = CollectorDef {
    name: "filesystem",
    default_enabled: true,
    build: |settings, paths| {
        Ok(Box::new(FilesystemCollector::new(
            settings,
            paths.rootfs.clone(),
            statfs,
        )))
    },
};

/// node_exporter's default for `--collector.filesystem.mount-points-exclude`.
const MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
/// node_exporter's default for `--collector.filesystem.fs-types-exclude` (`erofs` since 1.10).
const FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs)$";

/// The `device_error` of a mount that did not answer within the mount timeout (node_exporter's
/// text for a stuck mount).
const MOUNT_TIMEOUT_ERROR: &str = "mountpoint timeout";

/// `modules.node.filesystem`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settings {
    /// Mount points not reported; an empty pattern leaves none out.
    pub(crate) mount_points_exclude: Pattern,
    /// Only these mount points are reported; when set, it replaces `mount_points_exclude`.
    pub(crate) mount_points_include: Option<Pattern>,
    /// Filesystem types not reported; an empty pattern leaves none out.
    pub(crate) fs_types_exclude: Pattern,
    /// Only these filesystem types are reported; when set, it replaces `fs_types_exclude`.
    pub(crate) fs_types_include: Option<Pattern>,
    /// How long one `statfs` may take before the mount is reported as failing and skipped
    /// until it answers again (`--collector.filesystem.mount-timeout`).
    pub(crate) mount_timeout: eos_module::Duration,
    /// How many `statfs` calls of mounts that may hang (network, FUSE, ...) run at once
    /// (`--collector.filesystem.stat-workers`).
    pub(crate) stat_workers: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mount_points_exclude: Pattern::new_static(MOUNT_POINTS_EXCLUDE),
            mount_points_include: None,
            fs_types_exclude: Pattern::new_static(FS_TYPES_EXCLUDE),
            fs_types_include: None,
            mount_timeout: eos_module::Duration::from_secs(5),
            stat_workers: 4,
        }
    }
}

impl CollectorSettings for Settings {
    const FLAG_PREFIXES: &'static [&'static str] = &["filesystem"];
    const HELP: &'static str = "  --collector.filesystem.mount-points-exclude=RE, --collector.filesystem.mount-points-include=RE
  --collector.filesystem.fs-types-exclude=RE, --collector.filesystem.fs-types-include=RE
  --collector.filesystem.mount-timeout=DURATION   (default 5s)
  --collector.filesystem.stat-workers=N   statfs calls of network mounts at once (default 4)
";

    fn apply_flag(&mut self, flag: &Flag<'_>) -> Result<bool, String> {
        match flag.key {
            "mount-points-exclude" | "ignored-mount-points" => {
                self.mount_points_exclude = flag.pattern()?
            }
            "mount-points-include" => self.mount_points_include = flag.opt_pattern()?,
            "fs-types-exclude" | "ignored-fs-types" => self.fs_types_exclude = flag.pattern()?,
            "fs-types-include" => self.fs_types_include = flag.opt_pattern()?,
            "mount-timeout" => self.mount_timeout = flag.duration()?,
            "stat-workers" => self.stat_workers = stat_workers_flag(flag)?,
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
        if self.stat_workers == 0 {
            return Err(ConfigIssue::at(
                "stat_workers",
                "must be at least 1 (no statfs would run), e.g. 4",
            ));
        }
        Ok(())
    }
}

/// `--collector.filesystem.stat-workers=N` as node_exporter reads it: an integer, and anything
/// below 1 means 1.
fn stat_workers_flag(flag: &Flag<'_>) -> Result<usize, String> {
    let v = flag.value()?;
    let n: i64 = v
        .parse()
        .map_err(|_| flag.error(format!("{v:?} is not a whole number")))?;
    Ok(usize::try_from(n.max(1)).unwrap_or(usize::MAX))
}

/// A filter from an include and an exclude pattern as node_exporter builds it: an include
/// replaces the exclude (whose default would otherwise still apply), and an empty exclude
/// leaves nothing out (node_exporter's empty flag).
fn filter(include: &Option<Pattern>, exclude: &Pattern) -> DeviceFilter {
    DeviceFilter {
        device_include: include.clone(),
        device_exclude: (!exclude.as_str().is_empty()).then(|| exclude.clone()),
    }
    .include_replaces_exclude()
}

struct FilesystemCollector {
    mount_points: DeviceFilter,
    fs_types: DeviceFilter,
    timeout: Duration,
    /// At most this many helpers run a `statfs` at once.
    workers: usize,
    rootfs: PathBuf,
    /// `statfs`, or a stand-in in tests.
    stat_fn: StatFn,
    state: Mutex<State>,
}

/// A `statfs`: the usage, or node_exporter's `device_error` text for why there is none.
type StatFn = fn(&Path) -> Result<Usage, String>;

/// The helpers and what the scrapes remember of them.
struct State {
    /// Helpers waiting for a job, kept across scrapes (at most `workers` of them).
    idle: Vec<Worker>,
    /// Mount points whose `statfs` timed out, with the flag their abandoned helper sets when
    /// that `statfs` finally returns.
    stuck: HashMap<String, Arc<AtomicBool>>,
    /// Every helper's answers, tagged with the job's number. An abandoned helper's answer
    /// comes late, matches no job waited for, and is dropped.
    answers: Receiver<Answer>,
    /// What each new helper sends its answers on.
    answers_tx: Sender<Answer>,
    /// The number of the next job.
    next_job: u64,
}

impl State {
    fn new() -> Self {
        let (answers_tx, answers) = mpsc::channel();
        State {
            idle: Vec::new(),
            stuck: HashMap::new(),
            answers,
            answers_tx,
            next_job: 0,
        }
    }
}

/// A job's number and what its `statfs` said.
type Answer = (u64, Result<Usage, String>);

/// A `statfs` handed to a helper and not answered yet.
struct InFlight {
    worker: Worker,
    job: u64,
    /// The index of its row.
    row: usize,
    since: Instant,
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

/// One row of output: the labels, read-only flag, and what `statfs` said.
struct Row {
    device: String,
    mount_point: String,
    fs_type: String,
    major: String,
    minor: String,
    read_only: bool,
    /// The usage, or the `device_error` text. A row starts as timed out: one whose `statfs`
    /// is not asked (stuck) or not answered in time stays so.
    usage: Result<Usage, String>,
}

impl Row {
    /// The `device_error` label: empty when `statfs` answered.
    fn device_error(&self) -> &str {
        self.usage.as_ref().err().map_or("", String::as_str)
    }

    /// `device`, `device_error`, `fstype`, `mountpoint`: the labels of every family but
    /// `node_filesystem_mount_info`.
    fn labels(&self) -> [(&str, &str); 4] {
        [
            ("device", &self.device),
            ("device_error", self.device_error()),
            ("fstype", &self.fs_type),
            ("mountpoint", &self.mount_point),
        ]
    }
}

impl Collector for FilesystemCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let p1 = ctx.proc_path("1/mountinfo");
        let (source, text) = match ctx.read_optional(&p1)? {
            Some(t) => (p1, t.to_string()),
            // PID 1 hidden (hidepid): our own view, as node_exporter falls back to.
            None => {
                let own = ctx.proc_path("self/mountinfo");
                let t = ctx.read(&own)?.to_string();
                (own, t)
            }
        };
        let mounts = parse_mountinfo(&text, &source.display().to_string(), &self.rootfs)?;
        let mut rows: Vec<Row> = Vec::new();
        for m in mounts {
            if self.mount_points.ignored(&m.mount_point) || self.fs_types.ignored(m.fs_type) {
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
                major: m.major.to_string(),
                minor: m.minor.to_string(),
                read_only: m.read_only,
                usage: Err(MOUNT_TIMEOUT_ERROR.to_string()),
            });
        }
        let mut state = self
            .state
            .lock()
            .map_err(|_| "filesystem state poisoned".to_string())?;
        self.stat_all(&mut state, &mut rows, ctx.deadline);
        drop(state);
        write_rows(enc, &rows);
        Ok(())
    }
}

impl FilesystemCollector {
    fn new(settings: &Settings, rootfs: PathBuf, stat_fn: StatFn) -> Self {
        FilesystemCollector {
            mount_points: filter(
                &settings.mount_points_include,
                &settings.mount_points_exclude,
            ),
            fs_types: filter(&settings.fs_types_include, &settings.fs_types_exclude),
            timeout: settings.mount_timeout.get(),
            workers: settings.stat_workers.max(1),
            rootfs,
            stat_fn,
            state: Mutex::new(State::new()),
        }
    }

    /// Fills in `usage` for every row whose mount point is not stuck: on this thread for
    /// filesystems that answer from memory, else on up to `workers` helpers at once, waiting
    /// at most the timeout for each. A mount point that times out is marked stuck and its
    /// helper abandoned; the next mount goes to another helper. Rows not answered keep their
    /// `mountpoint timeout` error.
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
                let usage = (self.stat_fn)(&path);
                if let Some(row) = rows.get_mut(i) {
                    row.usage = usage;
                }
                continue;
            }
            pending.push(i);
        }
        // When a job's wait ends (a huge timeout: at the deadline).
        let expiry = |since: Instant| since.checked_add(self.timeout).unwrap_or(deadline);
        let mut next = 0;
        let mut in_flight: Vec<InFlight> = Vec::new();
        loop {
            while in_flight.len() < self.workers {
                let Some(&i) = pending.get(next) else { break };
                next += 1;
                let Some(row) = rows.get(i) else { continue };
                let worker = match state.idle.pop() {
                    Some(w) => w,
                    None => match Worker::spawn(self.stat_fn, state.answers_tx.clone()) {
                        Ok(w) => w,
                        Err(e) => {
                            tracing::warn!(error = %e, "filesystem: cannot start statfs helper");
                            next = pending.len(); // the rest stay timed out
                            break;
                        }
                    },
                };
                let job = state.next_job;
                state.next_job += 1;
                // A helper that is gone (it panicked) is dropped; its row stays timed out.
                if worker.submit(job, rootfs_join(&self.rootfs, &row.mount_point)) {
                    in_flight.push(InFlight {
                        worker,
                        job,
                        row: i,
                        since: Instant::now(),
                    });
                }
            }
            let Some(oldest) = in_flight.iter().map(|f| f.since).min() else {
                return;
            };
            let wait = expiry(oldest)
                .min(deadline)
                .saturating_duration_since(Instant::now());
            match state.answers.recv_timeout(wait) {
                Ok((job, usage)) => {
                    let Some(k) = in_flight.iter().position(|f| f.job == job) else {
                        continue; // a late answer of an abandoned helper
                    };
                    let done = in_flight.swap_remove(k);
                    if let Some(row) = rows.get_mut(done.row) {
                        row.usage = usage;
                    }
                    state.idle.push(done.worker);
                }
                Err(RecvTimeoutError::Timeout) => {
                    let now = Instant::now();
                    let out_of_time = now >= deadline;
                    if out_of_time {
                        // Not necessarily stuck mounts: the rest stay timed out, and those in
                        // flight are skipped until their helper returns, so a hung mount costs
                        // one thread, not one a scrape.
                        tracing::warn!("filesystem: scrape deadline reached during statfs");
                    }
                    in_flight.retain(|f| {
                        if !out_of_time && now < expiry(f.since) {
                            return true;
                        }
                        if let Some(row) = rows.get(f.row) {
                            if !out_of_time {
                                tracing::warn!(
                                    mount_point = row.mount_point,
                                    timeout = ?self.timeout,
                                    "filesystem: statfs timed out; skipping this mount point until it answers"
                                );
                            }
                            state
                                .stuck
                                .insert(row.mount_point.clone(), f.worker.idle.clone());
                        }
                        false // its helper is abandoned
                    });
                    if out_of_time {
                        return;
                    }
                }
                // `state` holds a sender, so this does not happen.
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }
}

/// Local filesystems whose `statfs` reads counters kept in memory (no I/O, no server), so it
/// cannot hang the way a network or FUSE filesystem can: these skip the helpers.
const IN_MEMORY_STATFS: &[&str] = &[
    "ext2", "ext3", "ext4", "xfs", "btrfs", "f2fs", "vfat", "tmpfs", "ramfs",
];

/// Whether `row` can be stat'ed on the scrape thread: its filesystem answers from memory and
/// no mount it lies beneath needs a helper (the path walk could wait on that one).
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
            if let Ok(u) = &r.usage {
                f.sample(&r.labels(), field(u));
            }
        }
    }
    let mut f = enc.family(
        "node_filesystem_device_error",
        "Whether an error occurred while getting statistics for the given device.",
        Kind::Gauge,
    );
    for r in rows {
        f.sample(&r.labels(), if r.usage.is_ok() { 0.0 } else { 1.0 });
    }
    let mut f = enc.family(
        "node_filesystem_readonly",
        "Filesystem read-only status.",
        Kind::Gauge,
    );
    for r in rows {
        f.sample(&r.labels(), if r.read_only { 1.0 } else { 0.0 });
    }
    let mut f = enc.family(
        "node_filesystem_mount_info",
        "Filesystem mount information.",
        Kind::Gauge,
    );
    for r in rows.iter().filter(|r| r.usage.is_ok()) {
        f.sample(
            &[
                ("device", &r.device),
                ("major", &r.major),
                ("minor", &r.minor),
                ("mountpoint", &r.mount_point),
            ],
            1.0,
        );
    }
}

/// A helper thread that runs one `statfs` at a time and sends each answer, tagged with its
/// job's number, on the channel shared by all helpers.
struct Worker {
    jobs: Sender<(u64, PathBuf)>,
    /// False from the moment a job is handed over until its `statfs` has returned.
    idle: Arc<AtomicBool>,
}

impl Worker {
    fn spawn(stat_fn: StatFn, answers: Sender<Answer>) -> Result<Worker, String> {
        let (jobs, job_rx) = mpsc::channel::<(u64, PathBuf)>();
        let idle = Arc::new(AtomicBool::new(true));
        let flag = idle.clone();
        std::thread::Builder::new()
            .name("eos-node-statfs".to_string())
            .spawn(move || {
                // Ends when the collector drops or abandons this helper (channels closed).
                while let Ok((job, path)) = job_rx.recv() {
                    let r = stat_fn(&path);
                    flag.store(true, Ordering::Release);
                    if answers.send((job, r)).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| format!("starting statfs helper: {e}"))?;
        Ok(Worker { jobs, idle })
    }

    /// Hands over a job; false if the helper is gone.
    fn submit(&self, job: u64, path: PathBuf) -> bool {
        self.idle.store(false, Ordering::Release);
        self.jobs.send((job, path)).is_ok()
    }
}

/// `statfs(2)` of `path`; an error is the errno as node_exporter's `device_error` says it.
fn statfs(path: &Path) -> Result<Usage, String> {
    use std::os::unix::ffi::OsStrExt;
    // Go's statfs refuses a path with a NUL the same way.
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| errno_text(libc::EINVAL))?;
    // SAFETY: statfs is plain old data, filled by the call.
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid C string and `s` a writable statfs.
    if unsafe { libc::statfs(c.as_ptr(), &mut s) } != 0 {
        let e = std::io::Error::last_os_error();
        tracing::debug!(path = %path.display(), error = %e, "filesystem: statfs failed");
        return Err(errno_text(e.raw_os_error().unwrap_or(0)));
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

/// Go's `syscall.Errno` text for the errors a `statfs` of a local, network or FUSE filesystem
/// gives (node_exporter puts `err.Error()` in `device_error`). Go's table differs from the C
/// library's in case and in a few words (`stale NFS file handle`).
const GO_ERRNO_TEXT: &[(i32, &str)] = &[
    (libc::EPERM, "operation not permitted"),
    (libc::ENOENT, "no such file or directory"),
    (libc::EINTR, "interrupted system call"),
    (libc::EIO, "input/output error"),
    (libc::ENXIO, "no such device or address"),
    (libc::EAGAIN, "resource temporarily unavailable"),
    (libc::ENOMEM, "cannot allocate memory"),
    (libc::EACCES, "permission denied"),
    (libc::EFAULT, "bad address"),
    (libc::EBUSY, "device or resource busy"),
    (libc::ENODEV, "no such device"),
    (libc::ENOTDIR, "not a directory"),
    (libc::EINVAL, "invalid argument"),
    (libc::ENAMETOOLONG, "file name too long"),
    (libc::ENOSYS, "function not implemented"),
    (libc::ELOOP, "too many levels of symbolic links"),
    (libc::ENOLINK, "link has been severed"),
    (libc::ECOMM, "communication error on send"),
    (libc::EPROTO, "protocol error"),
    (libc::EOVERFLOW, "value too large for defined data type"),
    (libc::EOPNOTSUPP, "operation not supported"),
    (libc::ENETUNREACH, "network is unreachable"),
    (libc::ECONNABORTED, "software caused connection abort"),
    (libc::ECONNRESET, "connection reset by peer"),
    (libc::ENOTCONN, "transport endpoint is not connected"),
    (libc::ETIMEDOUT, "connection timed out"),
    (libc::ECONNREFUSED, "connection refused"),
    (libc::EHOSTDOWN, "host is down"),
    (libc::EHOSTUNREACH, "no route to host"),
    (libc::ESTALE, "stale NFS file handle"),
    (libc::EUCLEAN, "structure needs cleaning"),
    (libc::EREMOTEIO, "remote I/O error"),
    (libc::EDQUOT, "disk quota exceeded"),
    (libc::ENOMEDIUM, "no medium found"),
];

/// How Go prints errno `code`: [`GO_ERRNO_TEXT`], else the C library's text with the first
/// letter in lower case as Go's generated table has it (`Bad font file format` ->
/// `bad font file format`, but `RFS specific error` stays).
fn errno_text(code: i32) -> String {
    if let Some((_, text)) = GO_ERRNO_TEXT.iter().find(|(c, _)| *c == code) {
        return (*text).to_string();
    }
    let full = std::io::Error::from_raw_os_error(code).to_string();
    let text = full
        .strip_suffix(&format!(" (os error {code})"))
        .unwrap_or(&full);
    let mut chars = text.chars();
    let first = chars.next();
    let rest = chars.as_str();
    match first {
        Some(f) if f.is_ascii_uppercase() && rest.starts_with(char::is_lowercase) => {
            format!("{}{rest}", f.to_ascii_lowercase())
        }
        _ => text.to_string(),
    }
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
        assert!(s.fs_types_exclude.is_match("erofs") && !s.fs_types_exclude.is_match("erofs2"));
        assert!(s.validate().is_ok());
    }

    fn flag<'a>(key: &'a str, value: &'a str) -> Flag<'a> {
        Flag {
            name: "collector.filesystem.x",
            key,
            negated: false,
            value: Some(value),
        }
    }

    #[test]
    fn include_replaces_exclude_and_an_empty_exclude_keeps_everything() {
        let mut s = Settings::default();
        assert!(s
            .apply_flag(&flag("mount-points-include", "^/data"))
            .unwrap());
        assert!(s.apply_flag(&flag("fs-types-include", "^xfs$")).unwrap());
        let c = FilesystemCollector::new(&s, PathBuf::from("/"), statfs);
        // The default exclude (which would drop /dev/...) no longer applies.
        assert!(!c.mount_points.ignored("/data/dev") && c.mount_points.ignored("/home"));
        assert!(!c.fs_types.ignored("xfs") && c.fs_types.ignored("ext4"));

        let mut s = Settings::default();
        assert!(s.apply_flag(&flag("ignored-mount-points", "")).unwrap());
        assert!(s.apply_flag(&flag("fs-types-exclude", "^ext4$")).unwrap());
        let c = FilesystemCollector::new(&s, PathBuf::from("/"), statfs);
        assert!(!c.mount_points.ignored("/proc") && !c.mount_points.ignored("/"));
        assert!(c.fs_types.ignored("ext4") && !c.fs_types.ignored("proc"));

        assert!(s.apply_flag(&flag("mount-points-include", "(")).is_err());
    }

    #[test]
    fn stat_workers_as_node_exporter_reads_the_flag() {
        let mut s = Settings::default();
        assert_eq!(s.stat_workers, 4);
        assert!(s.apply_flag(&flag("stat-workers", "2")).unwrap());
        assert_eq!(s.stat_workers, 2);
        // node_exporter runs one worker for anything below 1.
        for below in ["0", "-3"] {
            assert!(s.apply_flag(&flag("stat-workers", below)).unwrap());
            assert_eq!(s.stat_workers, 1, "{below}");
        }
        assert_eq!(
            s.apply_flag(&flag("stat-workers", "many")).unwrap_err(),
            "--collector.filesystem.x: \"many\" is not a whole number"
        );
        // In the YAML, 0 is a mistake.
        let s = Settings {
            stat_workers: 0,
            ..Settings::default()
        };
        assert_eq!(s.validate().unwrap_err().path, ["stat_workers"]);
    }

    #[test]
    fn local_mounts_beneath_network_mounts_use_the_helper() {
        let rows = [
            row("/", "ext4", Err(String::new())),
            row("/srv/nfs", "nfs4", Err(String::new())),
            row("/srv/nfs/disk", "ext4", Err(String::new())),
            row("/srv/nfsx", "xfs", Err(String::new())),
        ];
        let inline: Vec<bool> = rows.iter().map(|r| answers_from_memory(&rows, r)).collect();
        assert_eq!(inline, [true, false, false, true]);
        assert!(is_beneath("/a/b", "/a") && is_beneath("/a", "/") && !is_beneath("/", "/"));
        assert!(!is_beneath("/ab", "/a"));
    }

    #[test]
    fn errno_texts_are_gos() {
        assert_eq!(errno_text(libc::EACCES), "permission denied");
        assert_eq!(errno_text(libc::ENOENT), "no such file or directory");
        // Go's table, not the C library's "Stale file handle".
        assert_eq!(errno_text(libc::ESTALE), "stale NFS file handle");
        assert_eq!(
            errno_text(libc::ENOTCONN),
            "transport endpoint is not connected"
        );
        // Not in the table: the C library's text, lower-cased like Go's.
        assert_eq!(errno_text(libc::EBADF), "bad file descriptor");
        assert_eq!(errno_text(libc::ENOTEMPTY), "directory not empty");
    }

    fn row(mount_point: &str, fs_type: &str, usage: Result<Usage, String>) -> Row {
        Row {
            device: "/dev/x".into(),
            mount_point: mount_point.into(),
            fs_type: fs_type.into(),
            major: "8".into(),
            minor: "1".into(),
            read_only: true,
            usage,
        }
    }

    const USAGE: Usage = Usage {
        size: 100.0,
        free: 50.0,
        avail: 40.0,
        files: 10.0,
        files_free: 5.0,
    };

    #[test]
    fn families_and_labels() {
        let rows = [
            row("/ok", "xfs", Ok(USAGE)),
            row("/gone", "nfs4", Err("stale NFS file handle".into())),
        ];
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, eos_exposition::Format::Text);
        write_rows(&mut enc, &rows);
        drop(enc);
        let text = String::from_utf8(out).unwrap();
        let want = "\
node_filesystem_size_bytes{device=\"/dev/x\",device_error=\"\",fstype=\"xfs\",mountpoint=\"/ok\"} 100
node_filesystem_device_error{device=\"/dev/x\",device_error=\"\",fstype=\"xfs\",mountpoint=\"/ok\"} 0
node_filesystem_device_error{device=\"/dev/x\",device_error=\"stale NFS file handle\",fstype=\"nfs4\",mountpoint=\"/gone\"} 1
node_filesystem_readonly{device=\"/dev/x\",device_error=\"\",fstype=\"xfs\",mountpoint=\"/ok\"} 1
node_filesystem_readonly{device=\"/dev/x\",device_error=\"stale NFS file handle\",fstype=\"nfs4\",mountpoint=\"/gone\"} 1
# HELP node_filesystem_mount_info Filesystem mount information.
# TYPE node_filesystem_mount_info gauge
node_filesystem_mount_info{device=\"/dev/x\",major=\"8\",minor=\"1\",mountpoint=\"/ok\"} 1
";
        for line in want.lines() {
            assert!(text.lines().any(|l| l == line), "{line} not in:\n{text}");
        }
        // A failed mount has no size, inode or mount_info series.
        let gone = text
            .lines()
            .filter(|l| l.contains("mountpoint=\"/gone\""))
            .count();
        assert_eq!(gone, 2, "{text}");
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

    /// A tree whose `proc/1/mountinfo` lists `mounts`, and host paths pointing at it.
    fn with_mounts(
        name: &str,
        mounts: &str,
    ) -> (
        crate::collectors::test_tree::TestTree,
        eos_module::HostPaths,
    ) {
        let tree = crate::collectors::test_tree::TestTree::new(name);
        tree.write("proc/1/mountinfo", mounts);
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
        stat_fn: StatFn,
        timeout: Duration,
    ) -> FilesystemCollector {
        let settings = Settings {
            mount_timeout: eos_module::Duration::from_millis(timeout.as_millis() as u64),
            ..Settings::default()
        };
        FilesystemCollector::new(&settings, paths.rootfs.clone(), stat_fn)
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
        drop(enc);
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
            return Err(errno_text(libc::EIO));
        }
        Ok(USAGE)
    }

    /// The value of the `name` series of mount point `mount`, and its `device_error`.
    fn value(text: &str, name: &str, mount: &str) -> Option<(f64, String)> {
        eos_exposition::parse_text(text)
            .unwrap()
            .samples
            .iter()
            .find(|s| {
                s.name == name && s.labels.get("mountpoint").map(String::as_str) == Some(mount)
            })
            .map(|s| {
                let error = s.labels.get("device_error").cloned().unwrap_or_default();
                (s.value, error)
            })
    }

    fn ok(v: f64) -> Option<(f64, String)> {
        Some((v, String::new()))
    }

    fn failed(v: f64, error: &str) -> Option<(f64, String)> {
        Some((v, error.to_string()))
    }

    #[test]
    fn hung_mount_is_skipped_until_it_answers() {
        let (_tree, paths) = with_mounts(
            "fs-hung",
            "1 0 8:0 / / rw - ext4 /dev/vda rw\n\
             2 1 0:40 / /hung rw - nfs4 srv:/x rw\n\
             3 1 8:16 / /broken rw - xfs /dev/vdb ro\n\
             4 1 0:21 / /proc rw - proc proc rw\n",
        );
        let c = with_stat(&paths, fake_stat, Duration::from_millis(50));
        let scrape = || scrape_within(&c, &paths, Duration::from_secs(30));
        let out = scrape();
        assert_eq!(
            value(&out, "node_filesystem_size_bytes", "/"),
            ok(100.0),
            "{out}"
        );
        assert_eq!(value(&out, "node_filesystem_device_error", "/"), ok(0.0));
        assert_eq!(value(&out, "node_filesystem_mount_info", "/"), ok(1.0));
        let timeout = failed(1.0, "mountpoint timeout");
        assert_eq!(
            value(&out, "node_filesystem_device_error", "/hung"),
            timeout
        );
        assert_eq!(value(&out, "node_filesystem_size_bytes", "/hung"), None);
        assert_eq!(value(&out, "node_filesystem_mount_info", "/hung"), None);
        assert_eq!(
            value(&out, "node_filesystem_device_error", "/broken"),
            failed(1.0, "input/output error")
        );
        // Read-only from the super block's options, reported for a failed mount too.
        assert_eq!(
            value(&out, "node_filesystem_readonly", "/broken"),
            failed(1.0, "input/output error")
        );
        assert_eq!(value(&out, "node_filesystem_device_error", "/proc"), None);

        // Still hung: not asked again, still reported as timed out.
        let before = CALLS.load(Ordering::SeqCst);
        let out = scrape();
        assert_eq!(
            value(&out, "node_filesystem_device_error", "/hung"),
            timeout
        );
        assert_eq!(
            CALLS.load(Ordering::SeqCst) - before,
            2,
            "only / and /broken are stat'ed"
        );

        // The mount answers again: measured again once its helper returns.
        HANG.store(false, Ordering::SeqCst);
        let out = scrape_until(scrape, |out| {
            value(out, "node_filesystem_device_error", "/hung") == ok(0.0)
        });
        assert_eq!(
            value(&out, "node_filesystem_size_bytes", "/hung"),
            ok(100.0),
            "{out}"
        );
        assert_eq!(value(&out, "node_filesystem_mount_info", "/hung"), ok(1.0));
    }

    static SLOW: AtomicBool = AtomicBool::new(true);
    static SLOW_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    /// A stand-in for statfs that blocks on `*/slow` while `SLOW` is set.
    fn slow_stat(path: &Path) -> Result<Usage, String> {
        SLOW_CALLS.fetch_add(1, Ordering::SeqCst);
        while path.ends_with("slow") && SLOW.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(USAGE)
    }

    /// The scrape deadline, not the mount timeout, cuts a hung statfs short: the mount is
    /// still skipped until its helper returns, so each scrape does not leave another thread.
    #[test]
    fn a_mount_cut_short_by_the_deadline_is_not_asked_again_while_hung() {
        let (_tree, paths) = with_mounts(
            "fs-slow",
            "1 0 8:0 / / rw - ext4 /dev/vda rw\n2 1 0:41 / /slow rw - nfs4 srv:/x rw\n",
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
                failed(1.0, "mountpoint timeout")
            );
        }
        SLOW.store(false, Ordering::SeqCst);
        let out = scrape_until(scrape, |out| {
            value(out, "node_filesystem_size_bytes", "/slow") == ok(100.0)
        });
        assert_eq!(
            value(&out, "node_filesystem_size_bytes", "/slow"),
            ok(100.0),
            "{out}"
        );
    }

    /// statfs calls of `*/par*` in progress right now, and the most there ever were.
    static ACTIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    static MOST: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    /// A stand-in for statfs in which the first call on `*/par*` waits (up to 5 s) for a
    /// second one to start, so two helpers overlap whenever two may run.
    fn paired_stat(path: &Path) -> Result<Usage, String> {
        let par = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("par"));
        if par {
            let now = ACTIVE.fetch_add(1, Ordering::SeqCst) + 1;
            MOST.fetch_max(now, Ordering::SeqCst);
            let until = Instant::now() + Duration::from_secs(5);
            while MOST.load(Ordering::SeqCst) < 2 && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(1));
            }
            ACTIVE.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(USAGE)
    }

    #[test]
    fn network_mounts_are_stated_in_parallel_up_to_stat_workers() {
        let (_tree, paths) = with_mounts(
            "fs-par",
            "1 0 8:0 / / rw - ext4 /dev/vda rw\n\
             2 1 0:40 / /par1 rw - nfs4 srv:/a rw\n\
             3 1 0:41 / /par2 rw - nfs4 srv:/b rw\n\
             4 1 0:42 / /par3 rw - cifs //srv/c rw\n\
             5 1 0:43 / /par4 rw - fuse.sshfs srv:/d rw\n",
        );
        let settings = Settings {
            stat_workers: 2,
            mount_timeout: eos_module::Duration::from_secs(30),
            ..Settings::default()
        };
        let c = FilesystemCollector::new(&settings, paths.rootfs.clone(), paired_stat);
        let out = scrape_within(&c, &paths, Duration::from_secs(30));
        for m in ["/par1", "/par2", "/par3", "/par4"] {
            assert_eq!(
                value(&out, "node_filesystem_size_bytes", m),
                ok(100.0),
                "{m}: {out}"
            );
        }
        // Two at once, never more.
        assert_eq!(MOST.load(Ordering::SeqCst), 2);
        // The helpers stay for the next scrape.
        assert_eq!(c.state.lock().unwrap().idle.len(), 2);
    }

    static STALL: AtomicBool = AtomicBool::new(true);
    static STALL_CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    /// A stand-in for statfs that blocks on `*/dead*` while `STALL` is set, and then answers
    /// with an error no fresh call gives; `*/broken` fails with EIO.
    fn stall_stat(path: &Path) -> Result<Usage, String> {
        STALL_CALLS.fetch_add(1, Ordering::SeqCst);
        let dead = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("dead"));
        if dead && STALL.load(Ordering::SeqCst) {
            while STALL.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            return Err("late answer".into());
        }
        if path.ends_with("broken") {
            return Err(errno_text(libc::EIO));
        }
        Ok(USAGE)
    }

    /// Two exports of a dead server are given up in the first scrape, and the late answers of
    /// their abandoned helpers are never taken for another mount's.
    #[test]
    fn hung_mounts_are_given_up_and_their_late_answers_dropped() {
        let (_tree, paths) = with_mounts(
            "fs-dead",
            "1 0 8:0 / / rw - ext4 /dev/vda rw\n\
             2 1 0:40 / /dead1 rw - nfs4 srv:/a rw\n\
             3 1 0:41 / /dead2 rw - nfs4 srv:/b rw\n\
             4 1 0:42 / /broken rw - nfs4 other:/c rw\n",
        );
        // Long enough for /broken's helper to answer on a loaded machine; only the first
        // scrape waits it out.
        let settings = Settings {
            stat_workers: 2,
            mount_timeout: eos_module::Duration::from_millis(500),
            ..Settings::default()
        };
        let c = FilesystemCollector::new(&settings, paths.rootfs.clone(), stall_stat);
        let scrape = || scrape_within(&c, &paths, Duration::from_secs(30));
        let out = scrape();
        let timeout = failed(1.0, "mountpoint timeout");
        let eio = failed(1.0, "input/output error");
        assert_eq!(
            value(&out, "node_filesystem_device_error", "/dead1"),
            timeout
        );
        assert_eq!(
            value(&out, "node_filesystem_device_error", "/dead2"),
            timeout
        );
        // Stated once both helpers were given up, by a fresh one.
        assert_eq!(value(&out, "node_filesystem_device_error", "/broken"), eio);
        assert_eq!(value(&out, "node_filesystem_device_error", "/"), ok(0.0));

        // Both are skipped while hung: only / and /broken are asked.
        let before = STALL_CALLS.load(Ordering::SeqCst);
        let out = scrape();
        assert_eq!(STALL_CALLS.load(Ordering::SeqCst) - before, 2);
        assert_eq!(
            value(&out, "node_filesystem_device_error", "/dead2"),
            timeout
        );

        // The server is back: the late answers ("late answer") arrive on the shared channel
        // and are dropped; both mounts are asked again and measured.
        STALL.store(false, Ordering::SeqCst);
        let out = scrape_until(scrape, |out| {
            value(out, "node_filesystem_device_error", "/dead1") == ok(0.0)
                && value(out, "node_filesystem_device_error", "/dead2") == ok(0.0)
        });
        assert!(!out.contains("late answer"), "{out}");
        assert_eq!(
            value(&out, "node_filesystem_size_bytes", "/dead2"),
            ok(100.0)
        );
        assert_eq!(value(&out, "node_filesystem_device_error", "/broken"), eio);
        for _ in 0..3 {
            let out = scrape();
            assert!(!out.contains("late answer"), "{out}");
            assert_eq!(value(&out, "node_filesystem_device_error", "/broken"), eio);
        }
    }

    #[test]
    fn hidden_pid1_falls_back_to_own_mounts_and_reports_a_mount_once() {
        let tree = crate::collectors::test_tree::TestTree::new("fs-self");
        // The same device mounted twice on /data (a bind mount over itself): one series.
        tree.write(
            "proc/self/mountinfo",
            "1 0 8:0 / / rw - ext4 /dev/vda rw\n\
             2 1 8:1 / /data rw - xfs /dev/vdb rw\n\
             3 2 8:1 / /data ro,nosuid - xfs /dev/vdb rw\n",
        );
        let paths = eos_module::HostPaths {
            procfs: tree.path().join("proc"),
            rootfs: tree.path().to_path_buf(),
            ..eos_module::HostPaths::default()
        };
        let c = with_stat(&paths, fake_stat, Duration::from_secs(5));
        let out = scrape_within(&c, &paths, Duration::from_secs(30));
        let data: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("node_filesystem_readonly") && l.contains("/data"))
            .collect();
        assert_eq!(
            data,
            ["node_filesystem_readonly{device=\"/dev/vdb\",device_error=\"\",fstype=\"xfs\",mountpoint=\"/data\"} 0"]
        );
        assert!(out.contains(
            "node_filesystem_mount_info{device=\"/dev/vdb\",major=\"8\",minor=\"1\",mountpoint=\"/data\"} 1"
        ));
    }

    #[test]
    fn no_mount_table_is_an_error() {
        let tree = crate::collectors::test_tree::TestTree::new("fs-none");
        let paths = eos_module::HostPaths {
            procfs: tree.path().join("proc"),
            ..eos_module::HostPaths::default()
        };
        let c = with_stat(&paths, fake_stat, Duration::from_secs(5));
        let mut buf = Vec::new();
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, eos_exposition::Format::Text);
        let e = c
            .update(
                &mut enc,
                &mut Ctx::new(&paths, Instant::now() + Duration::from_secs(5), &mut buf),
            )
            .unwrap_err();
        assert!(e.contains("self/mountinfo"), "{e}");
    }

    #[test]
    fn statfs_root() {
        let u = statfs(Path::new("/")).unwrap();
        assert!(u.size > 0.0);
        assert_eq!(
            statfs(Path::new("/nonexistent-eos-test")).unwrap_err(),
            "no such file or directory"
        );
        assert_eq!(statfs(Path::new("/a\0b")).unwrap_err(), "invalid argument");
    }
}
