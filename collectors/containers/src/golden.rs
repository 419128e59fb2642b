//! Fixture trees (`testdata/*.ttar`: pure v2 with the systemd driver, v1 with cgroupfs)
//! collected end to end and compared with golden output. `EOS_UPDATE_GOLDEN=1` rewrites the
//! golden files; review the diff.

use crate::collector::{Collector, Settings};
use crate::{export, layout, machine::Machine};
use eos_exposition::{Encoder, Format};
use eos_kube::{parse_pod_list, KubeletConfig, PodMetadata};
use eos_module::HostPaths;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const PODS: &[u8] = include_bytes!("../../kube/testdata/pods.json");

/// A fixture tree expanded into a temp directory, removed on drop.
struct Tree(PathBuf);

impl Tree {
    fn expand(ttar: &str) -> Tree {
        static N: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "eos-containers-fixture-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let tree = Tree(dir);
        let mut current: Option<(PathBuf, String)> = None;
        let flush = |cur: &mut Option<(PathBuf, String)>| {
            if let Some((p, text)) = cur.take() {
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, text).unwrap();
            }
        };
        for line in ttar.lines() {
            if let Some(path) = line.strip_prefix("--- ") {
                flush(&mut current);
                current = Some((tree.0.join(path), String::new()));
            } else if let Some((_, text)) = current.as_mut() {
                text.push_str(line);
                text.push('\n');
            }
        }
        flush(&mut current);
        tree
    }

    fn host(&self) -> HostPaths {
        HostPaths {
            procfs: self.0.join("proc"),
            sysfs: self.0.join("sys"),
            rootfs: self.0.join("rootfs"),
            ..HostPaths::default()
        }
    }

    fn collector(
        &self,
        meta: Option<PodMetadata>,
        pod_labels: &[&str],
        workload: bool,
    ) -> Collector {
        self.collector_reading_spec_every(meta, pod_labels, workload, 6)
    }

    fn collector_reading_spec_every(
        &self,
        meta: Option<PodMetadata>,
        pod_labels: &[&str],
        workload: bool,
        spec_every: u32,
    ) -> Collector {
        let host = self.host();
        Collector::new(
            Settings {
                layout: layout::from_root(&host.sysfs.join("fs/cgroup")).unwrap(),
                procfs: host.procfs,
                sysfs: host.sysfs,
                rootfs: host.rootfs,
                kubelet_root: "/".into(),
                spec_every,
                pod_labels: pod_labels.iter().map(|s| s.to_string()).collect(),
                workload_labels: workload,
            },
            meta,
        )
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn recorded_pods() -> PodMetadata {
    let meta = PodMetadata::idle(KubeletConfig {
        enabled: false,
        ..KubeletConfig::default()
    });
    meta.set_pods(parse_pod_list(PODS).unwrap());
    meta
}

/// The exposition without the families whose values depend on the clock.
fn render(tree: &Tree, c: &Collector) -> (String, crate::collector::Snapshot) {
    let snap = c.collect(None);
    let mut buf = Vec::new();
    let mut enc = Encoder::new(&mut buf, Format::Text);
    export::write(&mut enc, &snap, c.extra_names(), false);
    Machine::read(&tree.host()).write(&mut enc);
    let text = String::from_utf8(buf).unwrap();
    let stable = text
        .lines()
        .filter(|l| {
            // clock- and filesystem-dependent values are checked by the tests themselves
            ![
                "container_last_seen",
                "container_start_time_seconds",
                "container_fs_usage_bytes",
            ]
            .iter()
            .any(|f| l.contains(f))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    (stable, snap)
}

fn check_golden(name: &str, got: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name);
    if std::env::var_os("EOS_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    if want != got {
        let diff: Vec<String> = want
            .lines()
            .zip(got.lines())
            .filter(|(a, b)| a != b)
            .take(10)
            .map(|(a, b)| format!("- {a}\n+ {b}"))
            .collect();
        panic!(
            "{name} differs ({} vs {} lines); first differences:\n{}",
            want.lines().count(),
            got.lines().count(),
            diff.join("\n")
        );
    }
}

#[test]
fn v2_systemd_golden() {
    let tree = Tree::expand(include_str!("../testdata/v2-systemd.ttar"));
    let c = tree.collector(Some(recorded_pods()), &[], false);
    let (text, snap) = render(&tree, &c);
    eos_exposition::parse_text(&text).unwrap();
    check_golden("v2-systemd.golden", &text);

    // the truncated memory.stat and io.stat of one container: errors name the files, and
    // that container's other values are still there
    let report = "/kubepods.slice/kubepods-pod33333333_aaaa_4bbb_8ccc_dddddddddddd.slice/cri-containerd-7777777777777777777777777777777777777777777777777777777777777777.scope";
    let errs = &snap
        .errors
        .iter()
        .find(|(p, _)| p == report)
        .expect("errors recorded")
        .1;
    assert!(
        errs.iter().any(|e| e.contains("memory.stat: line 2")),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|e| e.contains("io.stat: line 1")),
        "{errs:?}"
    );
    assert_eq!(snap.errors.len(), 1, "{:?}", snap.errors);
    let row = snap.rows.iter().find(|r| r.labels.id == report).unwrap();
    assert_eq!(row.labels.container, "report");
    assert_eq!(row.stats.cpu_usage_ns, Some(299_000_000_000));
    assert!(row.stats.mem_working_set.is_some());

    // rows: the root, kubepods, 2 QoS, 3 pods, 5 containers (3 in web, 1 report, 1 cri-o);
    // conmon and system.slice are not rows
    assert_eq!(snap.rows.len(), 12);
    let sandbox: Vec<_> = snap.rows.iter().filter(|r| r.sandbox).collect();
    assert_eq!(sandbox.len(), 1);
    assert_eq!(
        sandbox[0].labels.container, "",
        "containerd sandboxes have no container name"
    );
    assert_eq!(sandbox[0].labels.pod, "web-7d9f8b6c5-abcde");
    for r in &snap.rows {
        assert!(r.start_time > 0.0, "{}", r.labels.id);
    }

    // the nginx container's writable layer, found from its root overlay mount
    let with_layer: Vec<_> = snap.rows.iter().filter(|r| r.fs_usage.is_some()).collect();
    assert_eq!(with_layer.len(), 1);
    assert_eq!(with_layer[0].labels.container, "nginx");
    let (bytes, dev) = with_layer[0].fs_usage.clone().unwrap();
    assert!(bytes >= 5000, "{bytes}");
    assert!(!dev.is_empty());
}

#[test]
fn v1_cgroupfs_golden() {
    let tree = Tree::expand(include_str!("../testdata/v1-cgroupfs.ttar"));
    let c = tree.collector(Some(recorded_pods()), &[], false);
    let (text, snap) = render(&tree, &c);
    eos_exposition::parse_text(&text).unwrap();
    check_golden("v1-cgroupfs.golden", &text);
    assert!(snap.errors.is_empty(), "{:?}", snap.errors);
    assert_eq!(snap.rows.len(), 8);
}

/// One device's I/O in a fixture: (device, (read ops, write ops), (read bytes, write bytes)).
type DeviceIo<'a> = (&'a str, (u64, u64), (u64, u64));

/// A kernel `blkio.*io_serviced*` and `*io_service_bytes*` file pair for `devices`.
fn blkio_files(devices: &[DeviceIo]) -> (String, String) {
    let file = |pick: fn(&DeviceIo) -> (u64, u64)| {
        let mut text = String::new();
        let mut total = 0;
        for d in devices {
            let (r, w) = pick(d);
            let dev = d.0;
            text += &format!(
                "{dev} Read {r}\n{dev} Write {w}\n{dev} Sync {w}\n{dev} Async {r}\n\
                 {dev} Discard 0\n{dev} Total {}\n",
                r + w
            );
            total += r + w;
        }
        text + &format!("Total {total}\n")
    };
    (file(|d| d.1), file(|d| d.2))
}

/// The v1 fixture as a current kernel (4.16 or later, BFQ built in but not in use) writes it,
/// with recursive throttle files: each holds the cgroup's own I/O plus its descendants'. The
/// pod has two containers besides its sandbox, and the plain files of the pod, QoS and
/// kubepods cgroups show none of it. This host's v1 blkio controller counts nothing unless a
/// throttle limit is set (see `tests/real_cgroups.rs` for that on real cgroups), so here the
/// files are written as the kernel writes them.
#[test]
fn v1_pod_rows_sum_their_containers_io() {
    let tree = Tree::expand(include_str!("../testdata/v1-cgroupfs.ttar"));
    let blkio = tree.0.join("sys/fs/cgroup/blkio");
    let pod = "kubepods/burstable/pod1f0e2d3c-4b5a-4968-8776-655443322110";
    let guaranteed = "kubepods/pod55555555-aaaa-4bbb-8ccc-ffffffffffff";
    let coredns = format!("{pod}/{}", "5".repeat(64));
    let sidecar = format!("{pod}/{}", "c".repeat(64));
    let sandbox = format!("{pod}/{}", "8".repeat(64));
    let app = format!("{guaranteed}/{}", "b".repeat(64));
    std::fs::create_dir_all(tree.0.join("sys/fs/cgroup/memory").join(&sidecar)).unwrap();
    let recursive: [(&str, &[DeviceIo]); 9] = [
        (
            "",
            &[
                ("8:0", (900_020, 1_500_513), (9_000_081_920, 12_002_101_248)),
                ("253:0", (300, 2), (1_310_720, 8192)),
            ],
        ),
        (
            "kubepods",
            &[
                ("8:0", (20, 513), (81_920, 2_101_248)),
                ("253:0", (300, 2), (1_310_720, 8192)),
            ],
        ),
        (
            "kubepods/burstable",
            &[
                ("8:0", (20, 513), (81_920, 2_101_248)),
                ("253:0", (44, 0), (262_144, 0)),
            ],
        ),
        (
            pod,
            &[
                ("8:0", (20, 513), (81_920, 2_101_248)),
                ("253:0", (44, 0), (262_144, 0)),
            ],
        ),
        (&coredns, &[("8:0", (20, 0), (81_920, 0))]),
        (
            &sidecar,
            &[
                ("8:0", (0, 512), (0, 2_097_152)),
                ("253:0", (44, 0), (262_144, 0)),
            ],
        ),
        (&sandbox, &[("8:0", (0, 1), (0, 4096))]),
        (guaranteed, &[("253:0", (256, 2), (1_048_576, 8192))]),
        (&app, &[("253:0", (256, 2), (1_048_576, 8192))]),
    ];
    for (dir, devices) in recursive {
        let d = blkio.join(dir);
        std::fs::create_dir_all(&d).unwrap();
        let (ops, bytes) = blkio_files(devices);
        for (name, text) in [
            ("blkio.throttle.io_serviced_recursive", ops.as_str()),
            ("blkio.throttle.io_service_bytes_recursive", bytes.as_str()),
            ("blkio.bfq.io_serviced_recursive", "Total 0\n"),
            ("blkio.bfq.io_service_bytes_recursive", "Total 0\n"),
        ] {
            std::fs::write(d.join(name), text).unwrap();
        }
    }
    // the pod's own I/O, in the plain files: none, on the devices its children used
    let (ops, bytes) = blkio_files(&[("8:0", (0, 0), (0, 0)), ("253:0", (0, 0), (0, 0))]);
    std::fs::write(blkio.join(pod).join("blkio.throttle.io_serviced"), ops).unwrap();
    std::fs::write(
        blkio.join(pod).join("blkio.throttle.io_service_bytes"),
        bytes,
    )
    .unwrap();

    let c = tree.collector(Some(recorded_pods()), &[], false);
    let snap = c.collect(None);
    assert!(snap.errors.is_empty(), "{:?}", snap.errors);
    let io = |rel: &str| -> Vec<crate::parse::Io> {
        let id = format!("/{rel}").replace("//", "/");
        let row = snap.rows.iter().find(|r| r.labels.id == id);
        let mut io = row
            .unwrap_or_else(|| panic!("no row {id}"))
            .stats
            .io
            .clone();
        io.sort_by_key(|d| (d.major, d.minor));
        io
    };
    let sum = |rels: &[&str]| {
        let mut total: Vec<crate::parse::Io> = Vec::new();
        for d in rels.iter().flat_map(|r| io(r)) {
            match total
                .iter_mut()
                .find(|t| (t.major, t.minor) == (d.major, d.minor))
            {
                Some(t) => {
                    t.read_bytes += d.read_bytes;
                    t.write_bytes += d.write_bytes;
                    t.reads += d.reads;
                    t.writes += d.writes;
                }
                None => total.push(d),
            }
        }
        total.sort_by_key(|d| (d.major, d.minor));
        total
    };
    let bytes_written = |rel: &str| io(rel).iter().map(|d| d.write_bytes).sum::<u64>();
    assert_eq!(bytes_written(&sidecar), 2 << 20);
    assert_eq!(
        bytes_written(pod),
        (2 << 20) + 4096,
        "the pod row has its containers' writes"
    );
    assert_eq!(io(pod), sum(&[&coredns, &sidecar, &sandbox]));
    assert_eq!(io("kubepods/burstable"), io(pod), "the only burstable pod");
    assert_eq!(io(guaranteed), io(&app));
    assert_eq!(io("kubepods"), sum(&["kubepods/burstable", guaranteed]));
    for (k, n) in io("kubepods").iter().zip(io("")) {
        assert!(
            n.read_bytes >= k.read_bytes && n.write_bytes >= k.write_bytes,
            "the root row includes kubepods: {n:?} vs {k:?}"
        );
    }
    // the exported families carry it: the pod row's writes, per device
    let mut buf = Vec::new();
    let mut enc = Encoder::new(&mut buf, Format::Text);
    export::write(&mut enc, &snap, c.extra_names(), false);
    let text = String::from_utf8(buf).unwrap();
    let line = |family: &str, device: &str| {
        text.lines()
            .find(|l| {
                l.starts_with(&format!("{family}{{"))
                    && l.contains(&format!("device=\"{device}\""))
                    && l.contains(&format!("id=\"/{pod}\""))
            })
            .unwrap_or_else(|| panic!("no {family} for {device} on the pod row"))
            .rsplit(' ')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        line("container_fs_writes_bytes_total", "8:0"),
        "2.101248e+06"
    );
    assert_eq!(line("container_fs_writes_total", "8:0"), "513");
    assert_eq!(line("container_fs_reads_bytes_total", "253:0"), "262144");
}

/// A v1 node whose disk runs BFQ: the BFQ files count the I/O and the throttle files, with no
/// throttle limit set, have no device. Before following runc's order, every row showed none.
#[test]
fn v1_bfq_nodes_read_the_bfq_files() {
    let tree = Tree::expand(include_str!("../testdata/v1-cgroupfs.ttar"));
    let blkio = tree.0.join("sys/fs/cgroup/blkio");
    let pod = "kubepods/burstable/pod1f0e2d3c-4b5a-4968-8776-655443322110";
    let coredns = format!("{pod}/{}", "5".repeat(64));
    for (dir, r) in [
        ("kubepods", 7),
        ("kubepods/burstable", 7),
        (pod, 7),
        (coredns.as_str(), 7),
    ] {
        let (ops, bytes) = blkio_files(&[("8:0", (r, 0), (r * 4096, 0))]);
        let d = blkio.join(dir);
        std::fs::write(d.join("blkio.bfq.io_serviced_recursive"), ops).unwrap();
        std::fs::write(d.join("blkio.bfq.io_service_bytes_recursive"), bytes).unwrap();
        for name in [
            "blkio.throttle.io_serviced_recursive",
            "blkio.throttle.io_service_bytes_recursive",
            "blkio.throttle.io_serviced",
            "blkio.throttle.io_service_bytes",
        ] {
            std::fs::write(d.join(name), "Total 0\n").unwrap();
        }
    }
    let snap = tree.collector(None, &[], false).collect(None);
    assert!(snap.errors.is_empty(), "{:?}", snap.errors);
    for rel in ["kubepods", "kubepods/burstable", pod, coredns.as_str()] {
        let row = snap.rows.iter().find(|r| r.labels.id == format!("/{rel}"));
        let io = &row.unwrap().stats.io;
        assert_eq!(
            io.iter()
                .map(|d| (d.reads, d.read_bytes))
                .collect::<Vec<_>>(),
            [(7, 7 * 4096)],
            "{rel}"
        );
    }
}

#[test]
fn without_the_kubelet_rows_keep_their_ids() {
    let tree = Tree::expand(include_str!("../testdata/v2-systemd.ttar"));
    let c = tree.collector(None, &[], false);
    let (text, snap) = render(&tree, &c);
    assert_eq!(snap.rows.len(), 12);
    let id = "3".repeat(64);
    let line = text
        .lines()
        .find(|l| l.starts_with("container_memory_working_set_bytes{") && l.contains(&id))
        .unwrap();
    assert!(line.contains(&format!("name=\"{id}\"")), "{line}");
    assert!(line.contains("pod=\"\""), "{line}");
    // the sandbox is still found by its pause process, and carries the network counters
    assert!(text.contains("container_network_receive_bytes_total{container=\"\",id=\"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8a2e4c1b_5d6f_4a7b_9c0d_1e2f3a4b5c6d.slice/cri-containerd-9999999999999999999999999999999999999999999999999999999999999999.scope\""), "{text}");
}

#[test]
fn pod_labels_and_workload() {
    let tree = Tree::expand(include_str!("../testdata/v2-systemd.ttar"));
    let c = tree.collector(Some(recorded_pods()), &["app", "tier"], true);
    let (text, _) = render(&tree, &c);
    let p = eos_exposition::parse_text(&text).unwrap();
    let nginx = p
        .samples
        .iter()
        .find(|s| s.name == "container_memory_usage_bytes" && s.labels["container"] == "nginx")
        .unwrap();
    assert_eq!(nginx.labels["label_app"], "web");
    assert_eq!(nginx.labels["label_tier"], "frontend");
    assert_eq!(nginx.labels["workload"], "web");
    assert_eq!(nginx.labels["workload_kind"], "Deployment");
    let job = p
        .samples
        .iter()
        .find(|s| s.name == "container_memory_usage_bytes" && s.labels["container"] == "report")
        .unwrap();
    assert_eq!(
        (
            job.labels["workload_kind"].as_str(),
            job.labels["workload"].as_str()
        ),
        ("Job", "report-28391440")
    );
    // every sample of a family has the same label names
    let qos = p
        .samples
        .iter()
        .find(|s| s.name == "container_memory_usage_bytes" && s.labels["id"] == "/kubepods.slice")
        .unwrap();
    assert_eq!(
        qos.labels.keys().collect::<Vec<_>>(),
        nginx.labels.keys().collect::<Vec<_>>()
    );
}

#[test]
fn odd_files_never_panic() {
    // every file of one container cut at every few bytes, then garbage: collecting must not
    // panic, and the damage shows as that container's errors
    let v2 = "sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8a2e4c1b_5d6f_4a7b_9c0d_1e2f3a4b5c6d.slice/cri-containerd-3333333333333333333333333333333333333333333333333333333333333333.scope".to_string();
    let v1: Vec<String> = ["cpu", "cpuacct", "memory", "blkio", "pids"]
        .iter()
        .map(|h| {
            format!(
                "sys/fs/cgroup/{h}/kubepods/burstable/pod1f0e2d3c-4b5a-4968-8776-655443322110/{}",
                "5".repeat(64)
            )
        })
        .collect();
    let cases = [
        (
            include_str!("../testdata/v2-systemd.ttar"),
            vec![v2],
            12,
            "3".repeat(64),
        ),
        (
            include_str!("../testdata/v1-cgroupfs.ttar"),
            v1,
            8,
            "5".repeat(64),
        ),
    ];
    for (ttar, dirs, rows, id) in cases {
        let tree = Tree::expand(ttar);
        let c = tree.collector_reading_spec_every(Some(recorded_pods()), &[], false, 1);
        for dir in dirs {
            for entry in std::fs::read_dir(tree.0.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                let full = std::fs::read(&path).unwrap();
                for cut in (0..full.len())
                    .step_by(7)
                    .chain([full.len().saturating_sub(1)])
                {
                    std::fs::write(&path, &full[..cut]).unwrap();
                    assert_eq!(c.collect(None).rows.len(), rows);
                }
                std::fs::write(&path, b"\xff\xfe garbage \x00\n").unwrap();
                let errs = c.collect(None).errors;
                assert!(
                    errs.iter().any(|(p, e)| p.contains(&id)
                        && e.iter()
                            .any(|e| e.contains(path.file_name().unwrap().to_str().unwrap())))
                        || path.ends_with("cgroup.procs"),
                    "{}: {errs:?}",
                    path.display()
                );
                std::fs::write(&path, &full).unwrap();
            }
        }
        let errs = c.collect(None).errors;
        assert!(errs.iter().all(|(p, _)| !p.contains(&id)), "{errs:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn housekeeping_serves_the_last_round_with_timestamps() {
    use eos_module::{Facts, Module, ModuleContext, ModuleDef, Scrape};
    let tree = Tree::expand(include_str!("../testdata/v2-systemd.ttar"));
    let cfg: crate::ContainersConfig = serde_yaml_ng::from_str(&format!(
        "housekeeping_interval: 1h\ncgroup_root: {}\n",
        tree.0.join("sys/fs/cgroup").display()
    ))
    .unwrap();
    let ctx = ModuleContext::standalone(
        "containers",
        Facts {
            node_name: "n".into(),
            host: tree.host(),
            state_root: tree.0.clone(),
            version: "t",
            revision: "t",
        },
    );
    let m = crate::ContainersModule::start(&cfg, &ctx).unwrap();
    let scrape = |m: &dyn Module, format| {
        let mut buf = Vec::new();
        let mut enc = Encoder::new(&mut buf, format);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        m.collect(
            &mut enc,
            &Scrape {
                params: &[],
                deadline,
            },
        );
        String::from_utf8(buf).unwrap()
    };
    let mut text = String::new();
    for _ in 0..200 {
        text = scrape(&*m, Format::Text);
        if text.contains("container_cpu_usage_seconds_total{") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let line = text
        .lines()
        .find(|l| l.starts_with("container_cpu_usage_seconds_total{"))
        .unwrap();
    let ts = line.rsplit(' ').next().unwrap();
    assert!(
        ts.len() >= 13 && ts.bytes().all(|b| b.is_ascii_digit()),
        "{line}"
    );
    eos_exposition::parse_text(&text).unwrap();
    assert_eq!(
        text,
        scrape(&*m, Format::Text),
        "the same round until the next one"
    );
    let om = scrape(&*m, Format::OpenMetrics);
    assert!(
        om.contains("# TYPE container_cpu_usage_seconds counter\n"),
        "{om}"
    );
    let om_line = om
        .lines()
        .find(|l| l.starts_with("container_cpu_usage_seconds_total{"))
        .unwrap();
    assert!(
        om_line.rsplit(' ').next().unwrap().contains('.'),
        "{om_line}"
    );
    assert_eq!(
        ctx.tasks.stop(std::time::Duration::from_secs(1)).await,
        eos_module::tasks::Stopped::Cleanly,
        "the housekeeping task ends on cancellation"
    );
}

#[test]
fn a_passed_deadline_stops_the_round_and_says_so() {
    let tree = Tree::expand(include_str!("../testdata/v2-systemd.ttar"));
    let c = tree.collector(None, &[], false);
    let snap = c.collect(Some(std::time::Instant::now()));
    assert!(snap.rows.is_empty());
    assert_eq!(
        snap.errors[0].1,
        ["scrape deadline reached after 0 of 12 cgroups"]
    );
    assert_eq!(c.collect(None).rows.len(), 12);
}

#[test]
fn a_sandbox_caught_while_starting_is_recognised_later() {
    let tree = Tree::expand(include_str!("../testdata/v2-systemd.ttar"));
    let comm = tree.0.join("proc/1101/comm");
    std::fs::write(&comm, "runc:[2:INIT]\n").unwrap();
    let c = tree.collector_reading_spec_every(Some(recorded_pods()), &[], false, 2);
    assert!(c.collect(None).rows.iter().all(|r| !r.sandbox));
    std::fs::write(&comm, "pause\n").unwrap();
    assert!(
        c.collect(None).rows.iter().all(|r| !r.sandbox),
        "not a slow round"
    );
    let snap = c.collect(None);
    let sandbox: Vec<_> = snap.rows.iter().filter(|r| r.sandbox).collect();
    assert_eq!(sandbox.len(), 1);
    assert!(sandbox[0]
        .labels
        .id
        .ends_with(&format!("cri-containerd-{}.scope", "9".repeat(64))));
    assert!(!sandbox[0].stats.net.is_empty());
}

/// Property test of every cgroup and /proc parser the module uses: one file of a fixture tree
/// changed the way real files go wrong (see `eos_testkit::fuzz`); collecting must not panic and
/// what it writes must parse. `cargo xtask fuzz containers` runs it long.
mod fuzz {
    use super::*;
    use eos_testkit::fuzz::{apply, mutation};
    use proptest::prelude::*;
    use std::sync::OnceLock;

    struct Fixture {
        tree: Tree,
        files: Vec<PathBuf>,
    }

    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }

    fn fixtures() -> &'static [Fixture; 2] {
        static F: OnceLock<[Fixture; 2]> = OnceLock::new();
        F.get_or_init(|| {
            [
                include_str!("../testdata/v2-systemd.ttar"),
                include_str!("../testdata/v1-cgroupfs.ttar"),
            ]
            .map(|ttar| {
                let tree = Tree::expand(ttar);
                let mut files = Vec::new();
                walk(&tree.0, &mut files);
                files.sort();
                Fixture { tree, files }
            })
        })
    }

    /// One fixture at a time: cases change files in place.
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

    proptest! {
        #![proptest_config(eos_testkit::fuzz::config())]

        #[test]
        fn fuzz_containers(which in 0usize..2, pick in any::<prop::sample::Index>(), m in mutation()) {
            let _one = LOCK.lock().unwrap_or_else(|p| p.into_inner());
            let f = &fixtures()[which];
            let path = pick.get(&f.files);
            let original = std::fs::read(path).expect("fixture");
            std::fs::write(path, apply(&original, &m)).expect("write");
            let out = std::panic::catch_unwind(|| {
                // Layout detection reads the tree too: a broken tree may have no layout.
                let host = f.tree.host();
                let Ok(layout) = layout::from_root(&host.sysfs.join("fs/cgroup")) else {
                    return String::new();
                };
                let c = Collector::new(
                    Settings {
                        layout,
                        procfs: host.procfs,
                        sysfs: host.sysfs,
                        rootfs: host.rootfs,
                        kubelet_root: "/".into(),
                        spec_every: 1,
                        pod_labels: vec!["app".into()],
                        workload_labels: true,
                    },
                    Some(recorded_pods()),
                );
                render(&f.tree, &c).0
            });
            std::fs::write(path, &original).expect("restore");
            let out = match out {
                Ok(o) => o,
                Err(_) => panic!("{} with {m:?}: collecting panicked", path.display()),
            };
            if let Err(e) = eos_exposition::parse_text(&out) {
                panic!("{} with {m:?}: invalid output: {e}\n{out}", path.display());
            }
        }
    }
}
