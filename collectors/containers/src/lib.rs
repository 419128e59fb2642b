//! The containers module: the kubelet's `/metrics/cadvisor` families read straight from the
//! node's cgroups, without cAdvisor.
//!
//! At start the module finds the cgroup hierarchies (`layout.rs`: v2, v1 or hybrid), then in
//! every round walks the kubelet's `kubepods` tree (`discover.rs`: both cgroup drivers, QoS
//! classes, containerd/cri-o/docker scopes), reads each cgroup's files (`stats.rs`), names the
//! rows from the kubelet's pod list ([`eos_kube`]) and writes the kubelet's families
//! (`export.rs`).
//!
//! Rows follow the kubelet: one per container (`container`, `image`, `name` = runtime ID),
//! one per pod sandbox (no image; `container="POD"` under cri-o and docker, empty under
//! containerd; the only row with `container_network_*`, read from `/proc/<pid>/net/dev` of
//! its pause process), one per pod cgroup, one per QoS/kubepods cgroup and one for the root
//! (`id="/"`, the whole node; on cgroup v2 its memory usage is `MemTotal - MemFree`, as runc
//! reports it); these carry only `id`, plus `pod` and `namespace` on pod rows. Without the
//! kubelet, rows keep `id` and `name`, and sandboxes are still found by their `pause` process.
//!
//! Beyond cAdvisor: `container_fs_usage_bytes{device}` for each container's writable layer
//! (the `upperdir` of its root overlay, found under the host root and summed like `du` every
//! `spec_every` rounds), and optional pod labels (`pod_labels`) and owning workload
//! (`workload_labels`) as extra labels on every row of a pod.
//!
//! # Design: housekeeping rounds, encoded once
//! Rounds run on a housekeeping interval (10 s by default, as the kubelet's cAdvisor does).
//! Each round is encoded as text once, and scrapes copy those bytes with the round's
//! timestamp. `housekeeping_interval: 0` reads at scrape time instead. Limits and shares are
//! re-read every `spec_every` rounds, start times once per cgroup.
//!
//! `cargo xtask bench containers` on this 2-core VM, 500 containers (603 cgroups with the
//! root, pods and QoS classes) in real v1 cgroups: opening, reading and closing the same 7236
//! files in a tight loop (the floor) takes about 78 ms of CPU. A round takes 1.05-1.2x that,
//! and a whole scrape-time scrape (round, encoding, HTTP, gzip) 1.15-1.26x, so reading every
//! file is the cost and there is little left to save in the parsing. Block I/O in runc's order
//! (`blkio.rs`) reads one file more per cgroup here, and looks for one that is missing, which
//! the floor doesn't count: a whole scrape's CPU went from 1.22-1.23x the floor to 1.26-1.29x
//! (alternating runs of both builds). Reading at scrape time
//! would make every scrape wait about 90 ms; with housekeeping a scrape answers in 3.4-3.9 ms
//! (5.7 ms before rounds were encoded ahead). The price is memory: the encoded round (3.2 MB
//! of text for 500 containers) is kept, and the module's RSS before any scrape is 4.6-5 MiB
//! over the agent without it. cAdvisor's own DaemonSet requests 400 MiB.

mod blkio;
mod collector;
mod config;
mod discover;
mod export;
mod fsusage;
mod layout;
mod machine;
mod parse;
mod stats;

#[cfg(test)]
mod golden;

pub use config::ContainersConfig;

use collector::{Collector, Settings, Snapshot};
use eos_exposition::{Encoder, FamilyRecord, Format, Kind};
use eos_kube::PodMetadata;
use eos_module::http::{Request, Response};
use eos_module::{BoxFuture, Module, ModuleContext, ModuleDef, ModuleError, Scrape, Service};
use machine::Machine;
use std::sync::{Arc, Mutex};

/// The `containers` module definition, registered by the agent.
pub struct ContainersModule;

impl ModuleDef for ContainersModule {
    const NAME: &'static str = "containers";
    const METRIC_PREFIXES: &'static [&'static str] =
        &["container_", "machine_", "eos_agent_containers_"];
    const SERVICES: &'static [Service] = &[Service::PodMetadata];
    type Config = ContainersConfig;

    fn start(
        config: &ContainersConfig,
        ctx: &ModuleContext,
    ) -> Result<Box<dyn Module>, ModuleError> {
        let host = ctx.host();
        let layout = match &config.cgroup_root {
            Some(root) => layout::from_root(root).map_err(ModuleError::Unavailable)?,
            None => {
                let own = host.procfs.join("self/mountinfo");
                let text = std::fs::read_to_string(&own)
                    .or_else(|_| std::fs::read_to_string("/proc/self/mountinfo"))
                    .map_err(|e| ModuleError::io(format!("reading {}", own.display()), e))?;
                layout::from_mountinfo(&text, &host.sysfs.join("fs/cgroup"))
                    .map_err(ModuleError::Unavailable)?
            }
        };
        // The agent's shared poller, when the kubelet is enabled; without it rows keep the
        // labels the cgroup paths give.
        let meta = ctx.services.get::<PodMetadata>();
        let collector = Arc::new(Collector::new(
            Settings {
                layout,
                procfs: host.procfs.clone(),
                sysfs: host.sysfs.clone(),
                rootfs: host.rootfs.clone(),
                kubelet_root: config.kubelet_cgroup_root.clone(),
                spec_every: config.spec_every,
                pod_labels: config.pod_labels.clone(),
                workload_labels: config.workload_labels,
            },
            meta.clone(),
        ));
        let latest = Arc::new(Mutex::new(Latest::default()));
        let interval = config.housekeeping_interval.get();
        let housekeeping = !interval.is_zero();
        if housekeeping {
            let (collector, latest, tasks) = (collector.clone(), latest.clone(), ctx.tasks.clone());
            ctx.tasks.spawn("housekeeping", async move {
                let mut size_hint = 0;
                loop {
                    let c = collector.clone();
                    // Tracked by the instance's tasks: stopping waits for a round in progress.
                    let round = tasks.run_blocking("housekeeping round", move || {
                        let snap = c.collect(None);
                        // encoded here, once per round, so that scrapes only copy bytes
                        let mut text = Vec::with_capacity(size_hint + size_hint / 8);
                        let mut enc = Encoder::new(&mut text, Format::Text);
                        export::write(&mut enc, &snap, c.extra_names(), true);
                        let families: Arc<[FamilyRecord]> = enc.records().into();
                        text.shrink_to_fit(); // held until the next round: no slack
                        (snap, text, families)
                    });
                    if let Some((snap, text, families)) = round.await {
                        size_hint = text.len();
                        if let Ok(mut l) = latest.lock() {
                            *l = Latest {
                                snap: Arc::new(snap),
                                text: Some((Arc::new(text), families)),
                            };
                        }
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(interval) => {}
                        _ = tasks.cancelled() => break,
                    }
                }
            });
        }
        Ok(Box::new(Containers {
            collector,
            meta,
            machine: Machine::read(host),
            latest,
            housekeeping,
        }))
    }
}

/// The last round: its values, and (with housekeeping) its families already encoded as text
/// with where each starts.
#[derive(Default)]
struct Latest {
    snap: Arc<Snapshot>,
    text: Option<Encoded>,
}

/// A round's families as text, and where each starts.
type Encoded = (Arc<Vec<u8>>, Arc<[FamilyRecord]>);

/// The running module.
struct Containers {
    collector: Arc<Collector>,
    meta: Option<PodMetadata>,
    machine: Machine,
    /// The last round.
    latest: Arc<Mutex<Latest>>,
    /// Rounds run in a background task (serve the last one) rather than at scrape time.
    housekeeping: bool,
}

impl Containers {
    fn last(&self) -> (Arc<Snapshot>, Option<Encoded>) {
        let l = match self.latest.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        (l.snap.clone(), l.text.clone())
    }
}

impl Module for Containers {
    fn collect(&self, enc: &mut Encoder<'_>, scrape: &Scrape<'_>) {
        let snap = if self.housekeeping {
            let (snap, text) = self.last();
            match text {
                Some((text, families)) if enc.format() == Format::Text => {
                    enc.extend_shared(&text, &families)
                }
                _ => export::write(enc, &snap, self.collector.extra_names(), true),
            }
            snap
        } else {
            let snap = Arc::new(self.collector.collect(Some(scrape.deadline)));
            export::write(enc, &snap, self.collector.extra_names(), false);
            if let Ok(mut l) = self.latest.lock() {
                *l = Latest {
                    snap: snap.clone(),
                    text: None,
                };
            }
            snap
        };
        self.machine.write(enc);
        write_self_metrics(enc, &snap, self.meta.as_ref());
    }

    fn status(&self) -> Vec<(String, String)> {
        let (snap, _) = self.last();
        let mut v = vec![
            ("cgroups".into(), self.collector.layout().describe()),
            ("rows".into(), snap.rows.len().to_string()),
            (
                "last round".into(),
                format!("{:.1} ms, {} files", snap.duration * 1e3, snap.files),
            ),
            (
                "cgroups with read errors".into(),
                snap.errors.len().to_string(),
            ),
        ];
        if let Some(m) = &self.meta {
            let s = m.stats();
            v.push((
                "kubelet".into(),
                match s.last_error {
                    Some(e) => format!("{} pods, failing: {e}", m.snapshot().len()),
                    None => format!("{} pods, {} refreshes", m.snapshot().len(), s.successes),
                },
            ));
        }
        v
    }

    fn handle(&self, req: Request) -> BoxFuture<Response> {
        let (snap, _) = self.last();
        let resp = match req.path.as_str() {
            "" | "/" => {
                let mut s = String::new();
                for (k, v) in self.status() {
                    s.push_str(&format!("{k}: {v}\n"));
                }
                s.push_str("\nerrors of the last round:\n");
                for (cg, errs) in &snap.errors {
                    for e in errs {
                        s.push_str(&format!("{cg}: {e}\n"));
                    }
                }
                Response::text(200, s)
            }
            _ => Response::not_found(),
        };
        Box::pin(async move { resp })
    }
}

fn write_self_metrics(enc: &mut Encoder<'_>, snap: &Snapshot, meta: Option<&PodMetadata>) {
    enc.single(
        "eos_agent_containers_cgroups",
        "Cgroups (containers, sandboxes, pods, QoS classes) in the last collection.",
        Kind::Gauge,
        &[],
        snap.rows.len() as f64,
    );
    enc.single(
        "eos_agent_containers_read_errors",
        "Cgroups with unreadable or malformed files in the last collection (see /debug/containers/).",
        Kind::Gauge,
        &[],
        snap.errors.len() as f64,
    );
    enc.single(
        "eos_agent_containers_collection_duration_seconds",
        "How long the last collection of all cgroups took.",
        Kind::Gauge,
        &[],
        snap.duration,
    );
    if let Some(m) = meta {
        let s = m.stats();
        let mut fam = enc.family(
            "eos_agent_containers_kubelet_refreshes_total",
            "Pod list requests to the kubelet, by result.",
            Kind::Counter,
        );
        fam.sample(&[("result", "success")], s.successes as f64);
        fam.sample(&[("result", "failure")], s.failures as f64);
        enc.single(
            "eos_agent_containers_kubelet_pods",
            "Pods known from the kubelet, including recently deleted ones.",
            Kind::Gauge,
            &[],
            m.snapshot().len() as f64,
        );
    }
}
