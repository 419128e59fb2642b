//! The reader: finds the files (inotify on the directories, plus a periodic rescan), reads
//! them in order per container, turns lines into entries, and hands full batches to the
//! pusher. It runs on one blocking thread.
//!
//! Reading pauses while the pusher holds a batch it cannot deliver (the channel holds one
//! more): the files on disk are the buffer, so memory stays bounded while Loki is down. The
//! reader keeps scanning meanwhile, so files rotated away during an outage are opened and
//! held, and the lag gauges keep moving.

use crate::batch::{Batch, FileNo, Item};
use crate::config::{sanitize_label, LogsConfig};
use crate::decode::Entry;
use crate::discover::{self, ContainerDir};
use crate::labels::{self, LevelFrom, StreamLabels};
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::positions::Positions;
use crate::push::Room;
use crate::tail::{State, Tail};
use crate::time::Timestamp;
use eos_kube::PodMetadata;
use regex::Regex;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::Sender;

/// Bytes read per file per round, so that one busy file cannot starve the others.
const ROUND_BUDGET: usize = 1 << 20;
/// The read buffer.
const READ_CHUNK: usize = 256 << 10;
/// How long the reader sleeps when nothing was read.
const IDLE: Duration = Duration::from_millis(100);
/// How often the gauges, the debug rows and the reader's own position advances are updated.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// One file as `/debug/logs/` shows it.
#[derive(Clone, Debug)]
pub struct FileRow {
    pub path: PathBuf,
    pub state: &'static str,
    pub size: u64,
    pub read: u64,
    pub acked: u64,
    pub lag_seconds: f64,
}

/// What the reader shares with the module's HTTP side.
#[derive(Debug, Default)]
pub struct ReaderView {
    pub files: Vec<FileRow>,
    pub scan_error: Option<String>,
}

/// Everything the reader needs.
pub struct Reader {
    cfg: Arc<LogsConfig>,
    root: PathBuf,
    node: String,
    ledger: Arc<Ledger>,
    metrics: Arc<Metrics>,
    view: Arc<Mutex<ReaderView>>,
    pods: Option<PodMetadata>,
    tx: Sender<Batch>,
    room: Arc<Room>,
    saved: Positions,
    drop: Vec<Regex>,
    level_from: LevelFrom,
    tails: BTreeMap<FileNo, Tail>,
    by_inode: HashMap<(u64, u64), FileNo>,
    labels: HashMap<Arc<ContainerDir>, (StreamLabels, bool)>,
    next_no: FileNo,
    batch: Batch,
    /// A batch the pusher has no room for yet.
    waiting: Option<Batch>,
    watcher: Option<Watcher>,
    last_scan: Option<Instant>,
    last_housekeeping: Instant,
    buf: Vec<u8>,
    entries: Vec<Entry>,
}

impl Reader {
    /// A reader of `root` that hands batches to `tx`; `saved` are the positions loaded at
    /// start.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        cfg: Arc<LogsConfig>,
        root: PathBuf,
        node: String,
        ledger: Arc<Ledger>,
        metrics: Arc<Metrics>,
        view: Arc<Mutex<ReaderView>>,
        pods: Option<PodMetadata>,
        tx: Sender<Batch>,
        room: Arc<Room>,
        saved: Positions,
    ) -> Result<Reader, String> {
        let drop = cfg.drop_regexes().map_err(|e| e.message)?;
        let level_from = LevelFrom::parse(&cfg.level_from);
        Ok(Reader {
            cfg,
            root,
            node,
            ledger,
            metrics,
            view,
            pods,
            tx,
            room,
            saved,
            drop,
            level_from,
            tails: BTreeMap::new(),
            by_inode: HashMap::new(),
            labels: HashMap::new(),
            next_no: 1,
            batch: Batch::new(),
            waiting: None,
            watcher: None,
            last_scan: None,
            last_housekeeping: Instant::now()
                .checked_sub(HOUSEKEEPING)
                .unwrap_or_else(Instant::now),
            buf: vec![0; READ_CHUNK],
            entries: Vec::new(),
        })
    }

    /// Runs until `stopping` turns true, then hands on what was read (within the shutdown
    /// timeout) and returns.
    pub fn run(mut self, stopping: impl Fn() -> bool) {
        self.watcher = Watcher::new(&self.root);
        while !stopping() {
            let progressed = self.round();
            if !progressed && self.waiting.is_some() {
                // The pusher has no room: wait for it to take a batch, not for a fixed time.
                self.room.wait(IDLE);
            } else if !progressed {
                match &mut self.watcher {
                    Some(w) => {
                        if w.wait(IDLE) {
                            self.last_scan = None;
                        }
                    }
                    None => std::thread::sleep(IDLE),
                }
            }
        }
        self.shutdown();
    }

    /// One round: scan if due, deliver what waits, read, batch. Returns whether anything
    /// was read or sent.
    pub fn round(&mut self) -> bool {
        let now = Instant::now();
        if self.watcher.as_mut().is_some_and(Watcher::changed) {
            self.last_scan = None;
        }
        let due = self
            .last_scan
            .is_none_or(|t| now.duration_since(t) >= self.cfg.rescan_interval.get());
        if due {
            self.scan();
            self.last_scan = Some(now);
        }
        let mut progressed = self.deliver_waiting();
        if self.waiting.is_none() {
            progressed |= self.read_all();
            if self.batch_due(Instant::now()) {
                self.close_batch();
                progressed |= self.deliver_waiting();
            }
        }
        self.release_done();
        if now.duration_since(self.last_housekeeping) >= HOUSEKEEPING {
            self.housekeeping();
        }
        progressed
    }

    fn batch_due(&self, now: Instant) -> bool {
        self.batch.bytes() as u64 >= self.cfg.batch_bytes
            || self
                .batch
                .opened
                .is_some_and(|t| now.duration_since(t) >= self.cfg.batch_wait.get())
    }

    fn close_batch(&mut self) {
        if self.waiting.is_none() && !self.batch.is_empty() {
            self.waiting = Some(std::mem::take(&mut self.batch));
        }
    }

    /// Hands the waiting batch to the pusher if it has room. Returns whether it did.
    fn deliver_waiting(&mut self) -> bool {
        let Some(b) = self.waiting.take() else {
            return false;
        };
        match self.tx.try_send(b) {
            Ok(()) => true,
            Err(TrySendError::Full(b)) | Err(TrySendError::Closed(b)) => {
                self.waiting = Some(b);
                false
            }
        }
    }

    /// Finds new, renamed and deleted files.
    fn scan(&mut self) {
        let found = match discover::scan(&self.root) {
            Ok(f) => {
                self.view_mut().scan_error = None;
                f
            }
            Err(e) => {
                let msg = format!("reading {}: {e}", self.root.display());
                self.view_mut().scan_error = Some(msg);
                return;
            }
        };
        if let Some(w) = &mut self.watcher {
            w.watch_dirs(&found);
        }
        let mut seen: HashSet<FileNo> = HashSet::new();
        for f in found {
            let Ok(meta) = std::fs::metadata(&f.path) else {
                continue;
            };
            let key = (
                std::os::unix::fs::MetadataExt::dev(&meta),
                std::os::unix::fs::MetadataExt::ino(&meta),
            );
            if let Some(&no) = self.by_inode.get(&key) {
                if let Some(t) = self.tails.get_mut(&no) {
                    seen.insert(no);
                    if t.path != f.path {
                        t.path = f.path.clone();
                        t.name = f.name.clone();
                        self.ledger.update(no, t.id, &t.path);
                    }
                    t.state = State::Present;
                    continue;
                }
            }
            let dir = self.intern_dir(f.dir);
            let no = self.next_no;
            let max_line = self.cfg.max_line_bytes as usize;
            match Tail::open(no, dir, f.name, &f.path, &self.saved, max_line) {
                Ok((t, saved)) => {
                    self.next_no += 1;
                    let labels = file_labels(&t).map(str::to_string).to_vec();
                    self.ledger
                        .register(no, t.id, t.path.clone(), saved.unwrap_or(0), labels);
                    self.by_inode.insert(t.inode(), no);
                    seen.insert(no);
                    self.tails.insert(no, t);
                }
                Err(e) => {
                    tracing::debug!(path = %f.path.display(), error = %e, "logs: cannot open");
                }
            }
        }
        let now = Instant::now();
        for (no, t) in &mut self.tails {
            if !seen.contains(no) && t.state == State::Present {
                t.state = State::Deleted;
                t.changed = now;
            }
        }
        self.refresh_labels();
        self.enforce_held_limits();
    }

    fn intern_dir(&mut self, dir: ContainerDir) -> Arc<ContainerDir> {
        if let Some((k, _)) = self.labels.get_key_value(&dir) {
            return k.clone();
        }
        let dir = Arc::new(dir);
        let (labels, complete) = self.stream_labels(&dir);
        self.labels.insert(dir.clone(), (labels, complete));
        dir
    }

    /// A container's labels; `false` when its pod labels are wanted but not known yet.
    fn stream_labels(&self, dir: &ContainerDir) -> (StreamLabels, bool) {
        if self.cfg.pod_labels.is_empty() {
            return (StreamLabels::new(dir, &self.node, Vec::new()), true);
        }
        let Some(pods) = &self.pods else {
            return (StreamLabels::new(dir, &self.node, Vec::new()), true);
        };
        let snap = pods.snapshot();
        let Some(pod) = snap.pod(&dir.uid) else {
            pods.request_refresh();
            return (StreamLabels::new(dir, &self.node, Vec::new()), false);
        };
        let extra = self
            .cfg
            .pod_labels
            .iter()
            .filter_map(|k| pod.labels.get(k).map(|v| (sanitize_label(k), v.clone())))
            .collect();
        (StreamLabels::new(dir, &self.node, extra), true)
    }

    /// Builds again the labels of containers whose pod was not known yet.
    fn refresh_labels(&mut self) {
        let live: HashSet<&Arc<ContainerDir>> = self.tails.values().map(|t| &t.dir).collect();
        let stale: Vec<Arc<ContainerDir>> = self
            .labels
            .iter()
            .filter(|(d, (_, complete))| !complete && live.contains(d))
            .map(|(d, _)| d.clone())
            .collect();
        for d in stale {
            let fresh = self.stream_labels(&d);
            if fresh.1 {
                self.labels.insert(d, fresh);
            }
        }
        self.labels.retain(|d, _| live.contains(d));
    }

    /// Gives up the oldest deleted files beyond the held limits.
    fn enforce_held_limits(&mut self) {
        loop {
            let held: Vec<(FileNo, u64)> = self
                .tails
                .values()
                .filter(|t| t.state == State::Deleted)
                .map(|t| {
                    let acked = self.ledger.acked(t.no).unwrap_or(0);
                    (t.no, t.size.saturating_sub(acked))
                })
                .collect();
            let bytes: u64 = held.iter().map(|(_, b)| b).sum();
            if held.len() <= self.cfg.max_held_files && bytes <= self.cfg.max_held_bytes {
                return;
            }
            let Some(&(oldest, unshipped)) = held.iter().min_by_key(|(no, _)| *no) else {
                return;
            };
            if let Some(t) = self.tails.get(&oldest) {
                tracing::warn!(
                    path = %t.path.display(),
                    bytes = unshipped,
                    "logs: giving up a deleted file at the held-files limit (max_held_files {}, max_held_bytes {})",
                    self.cfg.max_held_files,
                    self.cfg.max_held_bytes
                );
            }
            self.metrics.bytes_given_up.add(unshipped);
            self.release(oldest);
        }
    }

    /// Reads every file that may be read now. Returns whether anything was read.
    fn read_all(&mut self) -> bool {
        let now = Instant::now();
        let clock = (now, wall_now());
        let mut progressed = false;
        let readable = self.readable();
        for no in readable {
            if self.batch_due(now) {
                self.close_batch();
                if !self.deliver_waiting() {
                    break;
                }
            }
            let Some(t) = self.tails.get_mut(&no) else {
                continue;
            };
            let mut entries = std::mem::take(&mut self.entries);
            // No more than the batch has room for, so a batch stays near batch_bytes.
            let room = (self.cfg.batch_bytes as usize).saturating_sub(self.batch.bytes());
            let budget = room.clamp(4096, ROUND_BUDGET);
            match t.poll(&mut self.buf, budget, clock, &mut entries) {
                Ok(p) => {
                    if p.read > 0 {
                        progressed = true;
                        self.metrics
                            .file_read_bytes
                            .get_or_create(&file_labels(t))
                            .add(p.read);
                    }
                    if p.truncated {
                        self.metrics.truncations.inc();
                        self.ledger.reset(no, t.id);
                    } else if p.id_changed {
                        self.ledger.update(no, t.id, &t.path);
                    }
                }
                Err(e) => {
                    tracing::debug!(path = %t.path.display(), error = %e, "logs: read failed");
                }
            }
            t.flush_stale(now, self.cfg.partial_flush.get(), &mut entries);
            if t.state == State::Deleted && t.at_eof() {
                t.finish(clock, &mut entries);
            }
            self.take_entries(no, &mut entries, now);
            self.entries = entries;
        }
        progressed
    }

    /// Files in reading order: per container, a file waits until the ones before it are
    /// read to their end.
    fn readable(&self) -> Vec<FileNo> {
        let mut out = Vec::new();
        let mut blocked: HashSet<&Arc<ContainerDir>> = HashSet::new();
        let mut order: Vec<&Tail> = self.tails.values().collect();
        order.sort_by(|a, b| (&a.dir, &a.name, a.no).cmp(&(&b.dir, &b.name, b.no)));
        for t in order {
            if blocked.contains(&t.dir) {
                continue;
            }
            out.push(t.no);
            if !t.at_eof() {
                blocked.insert(&t.dir);
            }
        }
        out
    }

    /// Turns decoded entries into batch items.
    fn take_entries(&mut self, no: FileNo, entries: &mut Vec<Entry>, now: Instant) {
        let Some(t) = self.tails.get_mut(&no) else {
            entries.clear();
            return;
        };
        let Some((labels, _)) = self.labels.get_mut(&t.dir) else {
            entries.clear();
            return;
        };
        for e in entries.drain(..) {
            if e.truncated {
                self.metrics.lines_truncated.inc();
            }
            if e.unparsed {
                self.metrics.lines_unparsed.inc();
            }
            if self.drop.iter().any(|r| r.is_match(&e.line)) {
                self.metrics
                    .entries_dropped
                    .get_or_create(&["filtered"])
                    .inc();
                continue;
            }
            let level = labels::level(&e.line, self.level_from);
            t.emitted = t.emitted.max(e.commit);
            self.batch.push(
                Item {
                    stream: labels.get(e.stream, level),
                    time: e.time,
                    line: e.line,
                    file: no,
                    commit: e.commit,
                },
                now,
            );
        }
        // Lines that gave no entry (filtered out, empty, a flushed nothing) still move the
        // file on; a marker carries that through the pusher, in order with the entries.
        if t.safe_offset() > t.emitted {
            t.emitted = t.safe_offset();
            self.batch.push(Item::marker(no, t.emitted), now);
        }
    }

    /// Releases deleted files that are read to their end and acknowledged.
    fn release_done(&mut self) {
        let done: Vec<FileNo> = self
            .tails
            .values()
            .filter(|t| {
                t.state == State::Deleted
                    && t.at_eof()
                    && t.pending_bytes() == 0
                    && self.ledger.acked(t.no).unwrap_or(0) >= t.size
            })
            .map(|t| t.no)
            .collect();
        for no in done {
            self.release(no);
        }
    }

    fn release(&mut self, no: FileNo) {
        if let Some(t) = self.tails.remove(&no) {
            let labels = file_labels(&t);
            for v in [
                &self.metrics.file_read_bytes,
                &self.metrics.file_acked_bytes,
            ] {
                v.remove(&labels);
            }
            for v in [&self.metrics.file_lag_bytes, &self.metrics.file_lag_seconds] {
                v.remove(&labels);
            }
            self.by_inode.remove(&t.inode());
            self.ledger.release(no);
        }
    }

    /// Gauges, debug rows, and saving the reader's own advances.
    fn housekeeping(&mut self) {
        let now = Instant::now();
        self.last_housekeeping = now;
        let mut rows = Vec::with_capacity(self.tails.len());
        let (mut lag_bytes, mut lag_seconds, mut held) = (0u64, 0f64, 0);
        for t in self.tails.values_mut() {
            t.refresh_size();
            let acked = self.ledger.acked(t.no).unwrap_or(0);
            let behind = t.size.saturating_sub(acked);
            if behind == 0 {
                t.behind_since = None;
            } else if t.behind_since.is_none() {
                t.behind_since = Some(now);
            }
            let secs = t
                .behind_since
                .map_or(0.0, |s| now.duration_since(s).as_secs_f64());
            let labels = file_labels(t);
            self.metrics
                .file_lag_bytes
                .get_or_create(&labels)
                .set(behind as f64);
            self.metrics
                .file_lag_seconds
                .get_or_create(&labels)
                .set(secs);
            lag_bytes += behind;
            lag_seconds = lag_seconds.max(secs);
            if t.state == State::Deleted {
                held += 1;
            }
            rows.push(FileRow {
                path: t.path.clone(),
                state: t.state.as_str(),
                size: t.size,
                read: t.read_offset(),
                acked,
                lag_seconds: secs,
            });
        }
        self.metrics.files.set(self.tails.len() as f64);
        self.metrics.files_held.set(f64::from(held));
        self.metrics.lag_bytes.set(lag_bytes as f64);
        self.metrics.lag_seconds.set(lag_seconds);
        self.view_mut().files = rows;
        if let Err(e) = self.ledger.save_if_dirty() {
            self.metrics.positions_errors.inc();
            tracing::warn!(error = %e, path = %self.ledger.path().display(), "logs: saving positions");
        }
    }

    /// On stop: ships the unfinished parts and the open batch, waiting for room up to the
    /// shutdown timeout, then lets the pusher finish.
    fn shutdown(mut self) {
        let clock = (Instant::now(), wall_now());
        let nos: Vec<FileNo> = self.tails.keys().copied().collect();
        for no in nos {
            let mut entries = Vec::new();
            if let Some(t) = self.tails.get_mut(&no) {
                if t.at_eof() {
                    t.flush_stale(clock.0, Duration::ZERO, &mut entries);
                }
            }
            self.take_entries(no, &mut entries, clock.0);
        }
        let deadline = Instant::now() + self.cfg.shutdown_timeout.get();
        loop {
            if self.waiting.is_none() {
                self.close_batch();
            }
            if self.waiting.is_none() || Instant::now() >= deadline {
                break;
            }
            if !self.deliver_waiting() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.housekeeping();
    }

    fn view_mut(&self) -> std::sync::MutexGuard<'_, ReaderView> {
        self.view.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn file_labels(t: &Tail) -> [&str; 4] {
    let file = t.path.file_name().and_then(|f| f.to_str()).unwrap_or("");
    [&t.dir.namespace, &t.dir.pod, &t.dir.container, file]
}

/// Now, as a log timestamp.
pub fn wall_now() -> Timestamp {
    let d = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos(),
    }
}

/// inotify on the log root, the pod directories and the container directories: a file or
/// directory created, moved or deleted asks for a rescan. Writes are not watched (the reader
/// polls the open files), so a busy log does not flood the queue.
struct Watcher {
    inotify: inotify::Inotify,
    dirs: HashSet<PathBuf>,
    buf: Vec<u8>,
}

impl Watcher {
    fn new(root: &Path) -> Option<Watcher> {
        let inotify = match inotify::Inotify::init() {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(error = %e, "logs: inotify unavailable; new files are found by the periodic rescan");
                return None;
            }
        };
        let mut w = Watcher {
            inotify,
            dirs: HashSet::new(),
            buf: vec![0; 4096],
        };
        w.add(root);
        Some(w)
    }

    fn add(&mut self, dir: &Path) {
        if self.dirs.contains(dir) {
            return;
        }
        use inotify::WatchMask as M;
        let mask =
            M::CREATE | M::DELETE | M::MOVED_FROM | M::MOVED_TO | M::DELETE_SELF | M::ONLYDIR;
        if self.inotify.watches().add(dir, mask).is_ok() {
            self.dirs.insert(dir.to_path_buf());
        }
    }

    /// Watches every pod and container directory the scan found (the kernel drops the
    /// watches of deleted directories by itself).
    fn watch_dirs(&mut self, found: &[discover::Found]) {
        self.dirs.retain(|d| d.exists());
        for f in found {
            if let Some(container) = f.path.parent() {
                if let Some(pod) = container.parent() {
                    self.add(pod);
                }
                self.add(container);
            }
        }
    }

    /// Whether anything happened (drains the queue without blocking).
    fn changed(&mut self) -> bool {
        let mut any = false;
        while let Ok(mut events) = self.inotify.read_events(&mut self.buf) {
            if events.next().is_none() {
                break;
            }
            any = true;
            for _ in events {}
        }
        any
    }

    /// Waits up to `timeout` for an event; returns whether one came.
    fn wait(&mut self, timeout: Duration) -> bool {
        use std::os::fd::AsRawFd;
        let mut pfd = libc::pollfd {
            fd: self.inotify.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut pfd, 1, ms) };
        n > 0 && self.changed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eos_kube::KubeletConfig;
    use eos_kube::Pod;
    use eos_testkit::TempDir;
    use tokio::sync::mpsc::Receiver;

    const T: &str = "2026-11-30T05:00:00.5Z";

    struct Setup {
        _dir: TempDir,
        root: PathBuf,
        reader: Reader,
        rx: Receiver<Batch>,
        ledger: Arc<Ledger>,
    }

    fn setup(cfg: LogsConfig, pods: Option<PodMetadata>) -> Setup {
        let dir = TempDir::new("eos-logs-reader");
        let root = dir.join("pods");
        std::fs::create_dir_all(&root).unwrap();
        let ledger = Arc::new(Ledger::new(dir.join("positions")));
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let reader = Reader::new(
            Arc::new(cfg),
            root.clone(),
            "n1".into(),
            ledger.clone(),
            Arc::new(Metrics::default()),
            Arc::new(Mutex::new(ReaderView::default())),
            pods,
            tx,
            Arc::new(Room::default()),
            Positions::default(),
        )
        .unwrap();
        Setup {
            _dir: dir,
            root,
            reader,
            rx,
            ledger,
        }
    }

    fn log(root: &Path, pod_dir: &str, text: &str) -> PathBuf {
        let d = root.join(pod_dir).join("app");
        std::fs::create_dir_all(&d).unwrap();
        let f = d.join("0.log");
        std::fs::write(&f, text).unwrap();
        f
    }

    /// Rounds until a batch comes out (batch_wait is 1 ms in these tests).
    fn next_batch(s: &mut Setup) -> Batch {
        for _ in 0..100 {
            s.reader.round();
            if let Ok(b) = s.rx.try_recv() {
                return b;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("no batch");
    }

    fn quick() -> LogsConfig {
        LogsConfig {
            enabled: true,
            batch_wait: eos_module::Duration::from_millis(1),
            ..LogsConfig::default()
        }
    }

    #[test]
    fn pod_labels_level_and_drop_filter() {
        let pods = PodMetadata::idle(KubeletConfig::default());
        pods.set_pods(vec![Pod {
            uid: "u1".into(),
            namespace: "shop".into(),
            name: "web".into(),
            labels: [("app.kubernetes.io/name".to_string(), "web".to_string())].into(),
            owner: None,
            containers: Vec::new(),
        }]);
        let mut cfg = quick();
        cfg.pod_labels = vec!["app.kubernetes.io/name".into(), "missing".into()];
        cfg.level_from = "logfmt".into();
        cfg.drop = vec!["healthz".into()];
        let mut s = setup(cfg, Some(pods));
        let f = log(
            &s.root,
            "shop_web_u1",
            &format!(
                "{T} stdout F level=warn msg=a\n{T} stdout F GET /healthz\n{T} stderr F plain\n"
            ),
        );
        let b = next_batch(&mut s);
        let got: Vec<(&str, &str)> = b
            .items
            .iter()
            .filter(|i| !i.is_marker())
            .map(|i| (&*i.stream, i.line.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    r#"{app_kubernetes_io_name="web", container="app", job="shop/app", level="warn", namespace="shop", node_name="n1", pod="web", stream="stdout"}"#,
                    "level=warn msg=a"
                ),
                (
                    r#"{app_kubernetes_io_name="web", container="app", job="shop/app", namespace="shop", node_name="n1", pod="web", stream="stderr"}"#,
                    "plain"
                ),
            ]
        );
        let size = std::fs::metadata(&f).unwrap().len();
        assert_eq!(
            b.commits(),
            [(1, size)],
            "the filtered line is committed too"
        );
        assert_eq!(
            s.reader
                .metrics
                .entries_dropped
                .get_or_create(&["filtered"])
                .get(),
            1
        );
    }

    #[test]
    fn rotated_files_are_read_before_the_new_one_and_deleted_ones_released_once_acked() {
        let mut s = setup(quick(), None);
        let live = log(&s.root, "ns_p_u", &format!("{T} stdout F old-1\n"));
        let b = next_batch(&mut s);
        assert_eq!(b.items[0].line, "old-1");
        // The kubelet rotates; lines written to the old file after the rename still come
        // before the new file's.
        let rotated = live.with_file_name("0.log.20261130-050000");
        std::fs::rename(&live, &rotated).unwrap();
        std::fs::write(&live, format!("{T} stdout F new-1\n")).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&rotated)
            .unwrap();
        std::io::Write::write_all(&mut f, format!("{T} stdout F old-2\n").as_bytes()).unwrap();
        s.reader.last_scan = None;
        let b = next_batch(&mut s);
        let lines: Vec<&str> = b.items.iter().map(|i| i.line.as_str()).collect();
        assert_eq!(lines, ["old-2", "new-1"]);
        // Deleted, and not yet acknowledged: held.
        std::fs::remove_file(&rotated).unwrap();
        s.reader.last_scan = None;
        s.reader.round();
        s.reader.housekeeping();
        assert_eq!(s.reader.metrics.files_held.get(), 1.0);
        s.ledger.advance(&b.commits());
        s.reader.round();
        s.reader.housekeeping();
        assert_eq!(s.reader.metrics.files_held.get(), 0.0);
        assert_eq!(s.reader.metrics.files.get(), 1.0);
    }

    #[test]
    fn held_files_beyond_the_limit_are_given_up_and_counted() {
        let mut cfg = quick();
        cfg.max_held_files = 1;
        let mut s = setup(cfg, None);
        let a = log(&s.root, "ns_a_u", &format!("{T} stdout F a\n"));
        let b = log(&s.root, "ns_b_u", &format!("{T} stdout F b\n"));
        let first = next_batch(&mut s);
        assert_eq!(first.entries(), 2);
        std::fs::remove_file(&a).unwrap();
        std::fs::remove_file(&b).unwrap();
        s.reader.last_scan = None;
        s.reader.round();
        s.reader.housekeeping();
        assert_eq!(s.reader.metrics.files_held.get(), 1.0);
        let given_up = s.reader.metrics.bytes_given_up.get();
        assert_eq!(
            given_up,
            T.len() as u64 + 12,
            "the oldest file's unacknowledged bytes"
        );
    }
}
