//! One collection round: find the kubelet's cgroups, read each, attach pod metadata, and
//! keep the result as a [`Snapshot`] for the exporter.

use crate::discover::{self, Cgroup, Kind, Runtime};
use crate::fsusage;
use crate::layout::Layout;
use crate::stats::{Reader, Spec, Stats};
use eos_kube::{PodCache, PodMetadata};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// The labels of one row, in the kubelet's names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels {
    pub container: String,
    pub id: String,
    pub image: String,
    pub name: String,
    pub namespace: String,
    pub pod: String,
    /// Values of the optional extra labels, in the order of [`Collector::extra_names`].
    pub extra: Vec<String>,
}

/// One cgroup's values in a snapshot.
#[derive(Clone, Debug)]
pub struct Row {
    pub labels: Arc<Labels>,
    pub stats: Stats,
    pub spec: Spec,
    /// Device names for `stats.io`, same order (`/dev/sda`, or `major:minor`).
    pub io_devices: Vec<Arc<str>>,
    pub start_time: f64,
    /// Whether this is a pod sandbox (the only row with network counters).
    pub sandbox: bool,
    /// Bytes used by the writable layer, and its device.
    pub fs_usage: Option<(u64, Arc<str>)>,
}

/// The result of one round.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// When the round started, in ms since the epoch.
    pub timestamp_ms: i64,
    pub rows: Vec<Row>,
    /// Per-cgroup read errors of this round: (cgroup path, errors).
    pub errors: Vec<(String, Vec<String>)>,
    /// How long the round took, in seconds.
    pub duration: f64,
    /// Files opened in the round.
    pub files: u64,
}

/// Paths and settings a collector needs.
pub struct Settings {
    pub layout: Layout,
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
    /// The host's root, where the runtime's snapshot directories are.
    pub rootfs: PathBuf,
    pub kubelet_root: String,
    pub spec_every: u32,
    pub pod_labels: Vec<String>,
    pub workload_labels: bool,
}

/// Reads the cgroups; one round at a time (the state is behind a mutex).
pub struct Collector {
    settings: Settings,
    extra_names: Vec<String>,
    meta: Option<PodMetadata>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    reader: Reader,
    cgroups: Vec<Cgroup>,
    known: HashMap<String, Known>,
    devices: HashMap<(u32, u32), Arc<str>>,
    round: u64,
}

struct Known {
    labels: Arc<Labels>,
    labels_gen: u64,
    spec: Spec,
    spec_round: u64,
    start_time: f64,
    sandbox: Option<bool>,
    asked_refresh: bool,
    fs_usage: Option<(u64, Arc<str>)>,
}

impl Collector {
    /// A collector; `meta` is where pod names come from (none: only cgroup-derived labels).
    pub fn new(settings: Settings, meta: Option<PodMetadata>) -> Collector {
        let mut extra_names: Vec<String> = settings
            .pod_labels
            .iter()
            .map(|l| format!("label_{}", eos_exposition::sanitize_name(l)))
            .collect();
        if settings.workload_labels {
            extra_names.push("workload".into());
            extra_names.push("workload_kind".into());
        }
        Collector {
            extra_names,
            state: Mutex::new(State {
                reader: Reader::new(&settings.procfs),
                ..State::default()
            }),
            settings,
            meta,
        }
    }

    /// Names of the optional extra labels, in [`Labels::extra`] order.
    pub fn extra_names(&self) -> &[String] {
        &self.extra_names
    }

    /// The cgroup layout being read.
    pub fn layout(&self) -> &Layout {
        &self.settings.layout
    }

    /// Runs one round. With a deadline, stops reading when it passes and says so in the
    /// snapshot's errors (the rows read so far are kept).
    pub fn collect(&self, deadline: Option<Instant>) -> Snapshot {
        let started = Instant::now();
        let timestamp_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let mut guard = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let st = &mut *guard;
        st.round += 1;
        let s = &self.settings;
        let pods = self
            .meta
            .as_ref()
            .map_or_else(|| Arc::new(PodCache::default()), PodMetadata::snapshot);
        let Some(root) = s.layout.discovery_root() else {
            return Snapshot::default();
        };
        discover::walk(root, &s.kubelet_root, &mut st.cgroups);
        let opened_before = st.reader.opened;
        let mut snap = Snapshot {
            timestamp_ms,
            rows: Vec::with_capacity(st.cgroups.len()),
            ..Snapshot::default()
        };
        let mut seen = HashSet::with_capacity(st.cgroups.len());
        let mut want_refresh = false;
        let mut complete = true;
        for (i, cg) in st.cgroups.iter().enumerate() {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                let n = st.cgroups.len();
                let msg = format!("scrape deadline reached after {i} of {n} cgroups");
                snap.errors.push((String::new(), vec![msg]));
                complete = false;
                break;
            }
            let known = st.known.entry(cg.path.clone()).or_insert_with(|| Known {
                labels: Arc::new(Labels::default()),
                labels_gen: u64::MAX,
                spec: Spec::default(),
                spec_round: 0,
                start_time: start_time(root, &cg.path),
                sandbox: None,
                asked_refresh: false,
                fs_usage: None,
            });
            // a fresh value per round, moved into the row: nothing is kept twice
            let mut stats = Stats::default();
            if !st.reader.stats(&s.layout, &cg.path, &mut stats) {
                continue; // removed while we looked
            }
            seen.insert(cg.path.clone());
            let slow_round = known.spec_round == 0
                || st.round - known.spec_round >= u64::from(s.spec_every.max(1));
            if slow_round {
                known.spec = st.reader.spec(&s.layout, &cg.path);
                known.spec_round = st.round;
            }
            // labels: recomputed when the pod cache or the sandbox decision changes
            let mut sandbox = known.sandbox.unwrap_or(false);
            if let Kind::Container { uid, id, .. } = &cg.kind {
                let in_cache = pods.container(id).is_some();
                // a sandbox is not in the pod list; it runs `pause` (asked again on slow
                // rounds, in case the first look caught the runtime still starting it)
                let undecided =
                    known.sandbox.is_none() || (known.sandbox == Some(false) && slow_round);
                if !in_cache && undecided {
                    if let Some(pid) = stats.first_pid {
                        sandbox = st.reader.is_pause(&s.procfs, pid);
                        if known.sandbox != Some(sandbox) {
                            known.sandbox = Some(sandbox);
                            known.labels_gen = u64::MAX;
                        }
                    }
                }
                let missing = !in_cache && !sandbox || pods.pod(uid).is_none();
                if missing && !known.asked_refresh {
                    known.asked_refresh = true;
                    want_refresh = true;
                }
                if sandbox {
                    if let Some(pid) = stats.first_pid {
                        st.reader.net(&s.procfs, pid, &mut stats.net);
                    }
                } else if slow_round {
                    known.fs_usage = stats
                        .first_pid
                        .and_then(|pid| writable_layer(s, &mut st.devices, pid));
                }
            }
            if known.labels_gen != pods.generation() {
                known.labels = Arc::new(self.labels(cg, &pods, sandbox));
                known.labels_gen = pods.generation();
            }
            let io_devices = stats
                .io
                .iter()
                .map(|d| device_name(&mut st.devices, &s.sysfs, (d.major, d.minor)))
                .collect();
            if !st.reader.errors.is_empty() {
                snap.errors
                    .push((cg.path.clone(), st.reader.errors.clone()));
            }
            snap.rows.push(Row {
                labels: known.labels.clone(),
                stats,
                spec: known.spec.clone(),
                io_devices,
                start_time: known.start_time,
                sandbox,
                fs_usage: known.fs_usage.clone(),
            });
        }
        if complete {
            st.known.retain(|k, _| seen.contains(k));
        }
        if want_refresh {
            if let Some(m) = &self.meta {
                m.request_refresh();
            }
        }
        snap.files = st.reader.opened - opened_before;
        snap.duration = started.elapsed().as_secs_f64();
        snap
    }

    fn labels(&self, cg: &Cgroup, pods: &PodCache, sandbox: bool) -> Labels {
        let mut l = Labels {
            id: cg.path.clone(),
            extra: vec![String::new(); self.extra_names.len()],
            ..Labels::default()
        };
        let uid = match &cg.kind {
            Kind::Root | Kind::Kubepods | Kind::Qos => return l,
            Kind::Pod { uid } => uid,
            Kind::Container { uid, id, runtime } => {
                l.name = id.clone();
                if let Some(c) = pods.container(id) {
                    l.container = c.container.name.clone();
                    l.image = c.container.image.clone();
                } else if sandbox && matches!(runtime, Runtime::Crio | Runtime::Docker) {
                    // cri-o and docker label the sandbox POD; containerd leaves it empty
                    l.container = "POD".into();
                }
                uid
            }
        };
        let Some(pod) = pods.pod(uid) else { return l };
        l.pod = pod.name.clone();
        l.namespace = pod.namespace.clone();
        for (slot, key) in l.extra.iter_mut().zip(&self.settings.pod_labels) {
            if let Some(v) = pod.labels.get(key) {
                slot.clone_from(v);
            }
        }
        if self.settings.workload_labels {
            let (kind, name) = workload(pod);
            let n = l.extra.len();
            if let Some(s) = l.extra.get_mut(n.wrapping_sub(2)) {
                *s = name;
            }
            if let Some(s) = l.extra.last_mut() {
                *s = kind;
            }
        }
        l
    }
}

/// The workload that owns a pod: a ReplicaSet made by a Deployment is reported as the
/// Deployment (its name without the `-<pod-template-hash>` suffix).
fn workload(pod: &eos_kube::Pod) -> (String, String) {
    let Some(o) = &pod.owner else {
        return (String::new(), String::new());
    };
    if o.kind == "ReplicaSet" {
        if let Some(hash) = pod.labels.get("pod-template-hash") {
            if let Some(dep) = o
                .name
                .strip_suffix(hash.as_str())
                .and_then(|n| n.strip_suffix('-'))
            {
                return ("Deployment".into(), dep.into());
            }
        }
    }
    (o.kind.clone(), o.name.clone())
}

/// cAdvisor's creation time: the older of the directory's and `cgroup.procs`'s mtime (the
/// directory's changes when children are made).
fn start_time(root: &Path, rel: &str) -> f64 {
    let dir = root.join(rel.trim_start_matches('/'));
    let secs = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs_f64())
    };
    match (secs(&dir), secs(&dir.join("cgroup.procs"))) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(0.0),
    }
}

/// The writable layer's disk usage of the container whose process is `pid`, when its
/// overlay upper directory is reachable under the host root.
fn writable_layer(
    s: &Settings,
    devices: &mut HashMap<(u32, u32), Arc<str>>,
    pid: u32,
) -> Option<(u64, Arc<str>)> {
    let mountinfo = std::fs::read_to_string(s.procfs.join(format!("{pid}/mountinfo"))).ok()?;
    let upper = fsusage::upperdir(&mountinfo)?;
    let (bytes, dev) = fsusage::disk_usage(&s.rootfs.join(upper.trim_start_matches('/'))).ok()?;
    Some((bytes, device_name(devices, &s.sysfs, dev)))
}

/// `/dev/<name>` of a block device from `<sysfs>/dev/block/M:m/uevent`, else `M:m`.
fn device_name(
    cache: &mut HashMap<(u32, u32), Arc<str>>,
    sysfs: &Path,
    (major, minor): (u32, u32),
) -> Arc<str> {
    cache
        .entry((major, minor))
        .or_insert_with(|| {
            let p = sysfs.join(format!("dev/block/{major}:{minor}/uevent"));
            std::fs::read_to_string(p)
                .ok()
                .and_then(|t| {
                    t.lines()
                        .find_map(|l| l.strip_prefix("DEVNAME="))
                        .map(|n| format!("/dev/{n}"))
                })
                .unwrap_or_else(|| format!("{major}:{minor}"))
                .into()
        })
        .clone()
}
