//! The module against real cgroups on this machine (root required): a kubepods-style tree in
//! the v1 hierarchies and in the cgroup2 mount, a busy process moved in, and the exported CPU
//! and memory compared with what the kernel says about that process; and block I/O read by
//! processes in two containers from a loop device, summed on the pod row.

use eos_containers::{ContainersConfig, ContainersModule};
use eos_exposition::{parse_text, Parsed};
use eos_module::{Facts, HostPaths, Module, ModuleContext, ModuleDef};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CGROUP: &str = "/sys/fs/cgroup";
const UID: &str = "0a1b2c3d-1111-4222-8333-444455556666";
const CID: &str = "e05e05e05e05e05e05e05e05e05e05e05e05e05e05e05e05e05e05e05e05e05e";

/// A cgroup tree and the processes in it; kills and removes everything on drop.
struct Sandbox {
    dirs: Vec<PathBuf>,
    children: Vec<Child>,
    files: Vec<PathBuf>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for f in &self.files {
            let _ = std::fs::remove_file(f).or_else(|_| std::fs::remove_dir(f));
        }
        // deepest first; a cgroup can be removed once its processes are gone
        for d in self.dirs.iter().rev() {
            for _ in 0..50 {
                if std::fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Sandbox {
    /// Creates `<hierarchy>/<base>/kubepods/burstable/pod<uid>/<cid>` in each hierarchy.
    fn new(hierarchies: &[PathBuf], base: &str) -> Sandbox {
        let mut sb = Sandbox {
            dirs: Vec::new(),
            children: Vec::new(),
            files: Vec::new(),
        };
        for h in hierarchies {
            let mut p = h.join(base.trim_start_matches('/'));
            for part in ["", "kubepods", "burstable", &format!("pod{UID}"), CID] {
                if !part.is_empty() {
                    p = p.join(part);
                }
                std::fs::create_dir(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
                sb.dirs.push(p.clone());
            }
        }
        sb
    }

    /// Starts `script` held at a `read` until it has been moved into the container cgroups.
    fn run_inside(&mut self, hierarchies: &[PathBuf], base: &str, script: &str) -> u32 {
        self.run_in(hierarchies, base, CID, script)
    }

    /// Adds a second container `<pod>/<cid>` to the tree in each hierarchy.
    fn add_container(&mut self, hierarchies: &[PathBuf], base: &str, cid: &str) {
        for h in hierarchies {
            let p = h
                .join(base.trim_start_matches('/'))
                .join(format!("kubepods/burstable/pod{UID}/{cid}"));
            std::fs::create_dir(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
            self.dirs.push(p);
        }
    }

    /// Runs `script` in container `cid` to its end; panics if it fails.
    fn run_to_end(&mut self, hierarchies: &[PathBuf], base: &str, cid: &str, script: &str) {
        self.run_in(hierarchies, base, cid, script);
        let mut child = self.children.pop().unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "{script}: {status}");
    }

    /// Starts `script` held at a `read` until it has been moved into container `cid`.
    fn run_in(&mut self, hierarchies: &[PathBuf], base: &str, cid: &str, script: &str) -> u32 {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("read go; {script}"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        for h in hierarchies {
            let procs = h
                .join(base.trim_start_matches('/'))
                .join(format!("kubepods/burstable/pod{UID}/{cid}/cgroup.procs"));
            std::fs::write(&procs, pid.to_string())
                .unwrap_or_else(|e| panic!("{}: {e}", procs.display()));
        }
        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        self.children.push(child);
        pid
    }
}

fn module(root: &Path, base: &str) -> Box<dyn Module> {
    let cfg: ContainersConfig = serde_yaml_ng::from_str(&format!(
        "housekeeping_interval: 0\ncgroup_root: {}\nkubelet_cgroup_root: {base}\n",
        root.display()
    ))
    .unwrap();
    ContainersModule::start(&cfg, &ctx()).unwrap()
}

fn ctx() -> ModuleContext {
    ModuleContext::standalone(
        "containers",
        Facts {
            node_name: "test".into(),
            host: HostPaths::default(),
            state_root: std::env::temp_dir(),
            version: "test",
            revision: "test",
        },
    )
}

fn scrape(m: &dyn Module) -> Parsed {
    parse_text(&eos_module::collect_text(m, &[], Duration::from_secs(10)).0).unwrap()
}

fn value(p: &Parsed, name: &str, id_suffix: &str) -> Option<f64> {
    p.samples
        .iter()
        .find(|s| s.name == name && s.labels.get("id").is_some_and(|i| i.ends_with(id_suffix)))
        .map(|s| s.value)
}

/// user+system CPU seconds of a process, from `/proc/<pid>/stat`.
fn proc_cpu(pid: u32) -> f64 {
    eos_testkit::procstat::cpu_seconds(pid).unwrap()
}

fn busy_until(pid: u32, secs: f64) {
    for _ in 0..400 {
        if proc_cpu(pid) >= secs {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("busy process {pid} did not reach {secs}s of CPU");
}

/// Exported usage follows the process's own CPU time (10 ms tick resolution in /proc).
fn assert_cpu_in_step(m: &dyn Module, pid: u32) {
    let id = format!("/{CID}");
    for target in [0.3, 0.6] {
        busy_until(pid, target);
        let before = proc_cpu(pid);
        let usage = value(&scrape(m), "container_cpu_usage_seconds_total", &id).unwrap();
        let after = proc_cpu(pid);
        assert!(
            usage >= before - 0.05 && usage <= after + 0.05 + 0.05 * after,
            "cgroup usage {usage} s, process CPU {before}..{after} s"
        );
    }
}

fn v1_hierarchies() -> Vec<PathBuf> {
    ["cpu", "cpuacct", "memory", "blkio", "pids"]
        .iter()
        .map(|c| Path::new(CGROUP).join(c))
        .collect()
}

#[test]
fn v1_cpu_memory_and_limit() {
    if !Path::new(CGROUP).join("memory/memory.stat").exists() {
        eprintln!("skipped: no cgroup v1 memory hierarchy at {CGROUP}/memory");
        return;
    }
    let base = format!("/eos-test-v1-{}", std::process::id());
    let hs = v1_hierarchies();
    let mut sb = Sandbox::new(&hs, &base);
    let mem_dir = Path::new(CGROUP)
        .join("memory")
        .join(base.trim_start_matches('/'))
        .join(format!("kubepods/burstable/pod{UID}/{CID}"));
    std::fs::write(
        mem_dir.join("memory.limit_in_bytes"),
        (256u64 << 20).to_string(),
    )
    .unwrap();

    let m = module(Path::new(CGROUP), &base);
    let id = format!("/{CID}");
    let p = scrape(&*m);
    assert_eq!(
        value(&p, "container_spec_memory_limit_bytes", &id),
        Some((256u64 << 20) as f64)
    );
    let idle_usage = value(&p, "container_memory_usage_bytes", &id).unwrap();
    let full_id = format!("{base}/kubepods/burstable/pod{UID}/{CID}");
    let row = p
        .samples
        .iter()
        .find(|s| s.name == "container_memory_usage_bytes" && s.labels["id"] == full_id)
        .expect("the container row has the cgroup path as id");
    assert_eq!(row.labels["name"], CID);
    assert!(
        value(&p, "container_memory_usage_bytes", &format!("/pod{UID}")).is_some(),
        "pod row"
    );

    let pid = sb.run_inside(&hs, &base, "while :; do :; done");
    assert_cpu_in_step(&*m, pid);
    let p = scrape(&*m);
    assert_eq!(value(&p, "container_processes", &id), Some(1.0));
    assert_eq!(value(&p, "container_threads", &id), Some(1.0));
    let usage = value(&p, "container_cpu_usage_seconds_total", &id).unwrap();
    // parents are read before children, so compare with the container's earlier value
    let p = scrape(&*m);
    let pod_usage = value(
        &p,
        "container_cpu_usage_seconds_total",
        &format!("/pod{UID}"),
    )
    .unwrap();
    assert!(
        pod_usage >= usage,
        "the pod row includes its containers ({pod_usage} < {usage})"
    );

    // 64 MiB written to tmpfs by a process in the cgroup is charged to it
    let shm = PathBuf::from(format!("/dev/shm/eos-test-v1-{}", std::process::id()));
    sb.files.push(shm.clone());
    let pid2 = sb.run_inside(
        &hs,
        &base,
        &format!(
            "dd if=/dev/zero of={} bs=1M count=64 2>/dev/null; exec sleep 600",
            shm.display()
        ),
    );
    let mut usage = 0.0;
    for _ in 0..200 {
        usage = value(&scrape(&*m), "container_memory_usage_bytes", &id).unwrap();
        if usage >= idle_usage + (60u64 << 20) as f64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(
        usage >= idle_usage + (60u64 << 20) as f64,
        "usage {usage} after writing 64 MiB (pid {pid2})"
    );
    // Working set and usage of one and the same reading: the process may still be growing.
    let p = scrape(&*m);
    let ws = value(&p, "container_memory_working_set_bytes", &id).unwrap();
    let usage_now = value(&p, "container_memory_usage_bytes", &id).unwrap();
    assert!(
        ws > 0.0 && ws <= usage_now + (1u64 << 20) as f64,
        "working set {ws}, usage {usage_now} in the same scrape"
    );
    // memory.stat is flushed lazily by the kernel (every few seconds), so it may lag usage
    let mut cache = 0.0;
    for _ in 0..400 {
        cache = value(&scrape(&*m), "container_memory_cache", &id).unwrap();
        if cache >= (60u64 << 20) as f64 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert!(cache >= (60u64 << 20) as f64, "cache {cache}");
}

#[test]
fn v2_unified_mount_cpu() {
    let root = Path::new(CGROUP).join("unified");
    let Ok(controllers) = std::fs::read_to_string(root.join("cgroup.controllers")) else {
        eprintln!("skipped: no cgroup2 mount at {}", root.display());
        return;
    };
    let base = format!("/eos-test-v2-{}", std::process::id());
    let hs = vec![root.clone()];
    let mut sb = Sandbox::new(&hs, &base);
    let m = module(&root, &base);
    let pid = sb.run_inside(&hs, &base, "while :; do :; done");
    // cpu.stat's usage, user and system are kept by the cgroup core, controller or not
    assert_cpu_in_step(&*m, pid);
    let p = scrape(&*m);
    let id = format!("/{CID}");
    let user = value(&p, "container_cpu_user_seconds_total", &id).unwrap();
    let system = value(&p, "container_cpu_system_seconds_total", &id).unwrap();
    let total = value(&p, "container_cpu_usage_seconds_total", &id).unwrap();
    assert!(
        (user + system - total).abs() < 0.05 + 0.05 * total,
        "{user} + {system} vs {total}"
    );
    assert_eq!(value(&p, "container_processes", &id), Some(1.0));
    if root.join("cpu.pressure").exists() {
        assert!(value(&p, "container_pressure_cpu_waiting_seconds_total", &id).is_some());
    }
    if controllers.split_whitespace().any(|c| c == "memory") {
        assert!(value(&p, "container_memory_usage_bytes", &id).is_some());
    } else {
        eprintln!(
            "v2 memory sub-check skipped: the memory controller is bound to v1 here \
             (unified cgroup.controllers: {:?})",
            controllers.trim()
        );
        assert_eq!(
            value(&p, "container_memory_usage_bytes", &id),
            None,
            "no file, no sample"
        );
    }
}

#[test]
fn detects_this_hosts_cgroups_from_mountinfo() {
    let cfg: ContainersConfig = serde_yaml_ng::from_str("housekeeping_interval: 0\n").unwrap();
    let m = ContainersModule::start(&cfg, &ctx()).unwrap();
    let status = m.status();
    let layout = &status.iter().find(|(k, _)| k == "cgroups").unwrap().1;
    let v2_only = Path::new(CGROUP).join("cgroup.controllers").exists();
    if v2_only {
        assert!(layout.contains("cgroup v2"), "{layout}");
    } else {
        assert!(layout.contains("cgroup v1"), "{layout}");
        assert!(
            layout.contains("memory at /sys/fs/cgroup/memory"),
            "{layout}"
        );
    }
    let p = scrape(&*m);
    assert!(p
        .samples
        .iter()
        .any(|s| s.name == "machine_cpu_cores" && s.value >= 1.0));
    assert!(p
        .samples
        .iter()
        .any(|s| s.name == "machine_memory_bytes" && s.value > 0.0));
}

#[test]
fn v1_sandbox_network_comes_from_its_namespace() {
    if !Path::new(CGROUP).join("memory/memory.stat").exists() {
        eprintln!("skipped: no cgroup v1 memory hierarchy at {CGROUP}/memory");
        return;
    }
    let base = format!("/eos-test-net-{}", std::process::id());
    let hs = v1_hierarchies();
    let mut sb = Sandbox::new(&hs, &base);
    // a sandbox's process is the pause binary: a copy of sleep named `pause`, in its own
    // network namespace with a veth pair in it
    let pause = std::env::temp_dir().join(format!("eos-test-net-{}", std::process::id()));
    std::fs::create_dir_all(&pause).unwrap();
    sb.files.push(pause.join("pause"));
    sb.files.push(pause.clone());
    std::fs::copy("/bin/sleep", pause.join("pause")).unwrap();
    let pid = sb.run_inside(
        &hs,
        &base,
        &format!(
            "exec unshare --net sh -c 'ip link add eth0 type veth peer name eth1 && \
             ip link set eth0 up && ip link set eth1 up && exec {}/pause 600'",
            pause.display()
        ),
    );
    for _ in 0..200 {
        if std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "pause") {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let m = module(Path::new(CGROUP), &base);
    let p = scrape(&*m);
    let id = format!("/{CID}");
    let mut ifaces: Vec<&str> = p
        .samples
        .iter()
        .filter(|s| {
            s.name == "container_network_receive_bytes_total" && s.labels["id"].ends_with(&id)
        })
        .map(|s| s.labels["interface"].as_str())
        .collect();
    ifaces.sort();
    assert_eq!(
        ifaces,
        ["eth0", "eth1"],
        "the sandbox's own interfaces, without lo"
    );
    let dev = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).unwrap();
    let eth0_tx_after: f64 = dev
        .lines()
        .find_map(|l| l.trim().strip_prefix("eth0:"))
        .and_then(|r| r.split_whitespace().nth(9))
        .unwrap()
        .parse()
        .unwrap();
    let exported = p
        .samples
        .iter()
        .find(|s| {
            s.name == "container_network_transmit_packets_total"
                && s.labels["id"].ends_with(&id)
                && s.labels["interface"] == "eth0"
        })
        .unwrap()
        .value;
    assert!(exported <= eth0_tx_after, "{exported} > {eth0_tx_after}");
    // only the sandbox row carries network counters: the pod row has none
    assert!(!p
        .samples
        .iter()
        .any(|s| s.name.starts_with("container_network_")
            && s.labels["id"].ends_with(&format!("pod{UID}"))));
}

/// A loop device over a sparse file; detached and removed on drop.
struct LoopDevice {
    /// `/dev/loopN`
    dev: String,
    /// `major:minor`
    numbers: String,
    file: PathBuf,
}

impl LoopDevice {
    fn new() -> Result<LoopDevice, String> {
        let file = std::env::temp_dir().join(format!("eos-test-blkio-{}.img", std::process::id()));
        std::fs::File::create(&file)
            .and_then(|f| f.set_len(16 << 20))
            .map_err(|e| format!("{}: {e}", file.display()))?;
        let out = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&file)
            .output()
            .map_err(|e| format!("losetup: {e}"))?;
        if !out.status.success() {
            let _ = std::fs::remove_file(&file);
            return Err(format!(
                "losetup: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let name = dev.trim_start_matches("/dev/");
        let numbers = std::fs::read_to_string(format!("/sys/block/{name}/dev"))
            .unwrap()
            .trim()
            .to_string();
        let lo = LoopDevice { dev, numbers, file };
        lo.scheduler("none");
        Ok(lo)
    }

    /// Sets the device's I/O scheduler; false if the kernel has no such scheduler.
    fn scheduler(&self, name: &str) -> bool {
        let p = format!(
            "/sys/block/{}/queue/scheduler",
            self.dev.trim_start_matches("/dev/")
        );
        std::fs::write(&p, name).is_ok()
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        self.scheduler("none");
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
        let _ = std::fs::remove_file(&self.file);
    }
}

/// Bytes read from `dev` in a kernel blkio statistics file (`Read` lines).
fn kernel_reads(file: &Path, dev: &str) -> u64 {
    std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()))
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{dev} Read ")))
        .map_or(0, |v| v.trim().parse().unwrap())
}

/// Block I/O the way runc reads it (issue 11): two containers of one pod read from a loop
/// device with O_DIRECT; the pod, QoS and kubepods rows carry the sum, from the recursive
/// throttle files, and from the BFQ files once the device runs BFQ.
#[test]
fn v1_pod_block_io_is_the_sum_of_its_containers() {
    let blkio = Path::new(CGROUP).join("blkio");
    if !blkio
        .join("blkio.throttle.io_service_bytes_recursive")
        .exists()
    {
        eprintln!(
            "skipped: no v1 blkio hierarchy with recursive throttle files at {}",
            blkio.display()
        );
        return;
    }
    let lo = match LoopDevice::new() {
        Ok(lo) => lo,
        Err(e) => {
            eprintln!("skipped: no loop device: {e}");
            return;
        }
    };
    let base = format!("/eos-test-blkio-{}", std::process::id());
    let hs = v1_hierarchies();
    let mut sb = Sandbox::new(&hs, &base);
    let cid2 = "f00df00df00df00df00df00df00df00df00df00df00df00df00df00df00df00d";
    sb.add_container(&hs, &base, cid2);
    // This kernel keeps the v1 throttle statistics only for a device some cgroup has a
    // throttle limit on; one far above what the test reads turns them on.
    std::fs::write(
        blkio
            .join(base.trim_start_matches('/'))
            .join("blkio.throttle.read_bps_device"),
        format!("{} 1099511627776", lo.numbers),
    )
    .unwrap();
    let read = |sb: &mut Sandbox, cid: &str, mib: u32| {
        sb.run_to_end(
            &hs,
            &base,
            cid,
            &format!(
                "dd if={} of=/dev/null bs=64k count={} iflag=direct 2>/dev/null",
                lo.dev,
                mib * 16
            ),
        )
    };
    read(&mut sb, CID, 2);
    read(&mut sb, cid2, 3);

    let m = module(Path::new(CGROUP), &base);
    let pod = format!("{base}/kubepods/burstable/pod{UID}");
    let rows = [
        format!("{pod}/{CID}"),
        format!("{pod}/{cid2}"),
        pod.clone(),
        format!("{base}/kubepods/burstable"),
        format!("{base}/kubepods"),
    ];
    let exported = |p: &Parsed, name: &str, id: &str| -> f64 {
        p.samples
            .iter()
            .find(|s| s.name == name && s.labels["id"] == id && s.labels["device"] == lo.dev)
            .unwrap_or_else(|| panic!("no {name} of {} for {id}", lo.dev))
            .value
    };
    let p = scrape(&*m);
    let bytes: Vec<f64> = rows
        .iter()
        .map(|id| exported(&p, "container_fs_reads_bytes_total", id))
        .collect();
    let mib = f64::from(1u32 << 20);
    assert_eq!(
        bytes,
        [2.0 * mib, 3.0 * mib, 5.0 * mib, 5.0 * mib, 5.0 * mib],
        "containers, pod, QoS and kubepods rows of {rows:?}"
    );
    let ops: Vec<f64> = rows
        .iter()
        .map(|id| exported(&p, "container_fs_reads_total", id))
        .collect();
    assert!(ops[0] >= 1.0 && ops[1] >= 1.0, "{ops:?}");
    assert_eq!(ops[2], ops[0] + ops[1], "read operations: {ops:?}");
    assert_eq!((ops[3], ops[4]), (ops[2], ops[2]), "{ops:?}");

    // With BFQ on the device, runc takes the BFQ files first, which count from the moment
    // BFQ took over; the throttle files keep counting everything.
    if !lo.scheduler("bfq") {
        eprintln!("BFQ part skipped: this kernel has no bfq scheduler");
        return;
    }
    read(&mut sb, CID, 1);
    read(&mut sb, cid2, 1);
    let p = scrape(&*m);
    let dir = |id: &str| blkio.join(id.trim_start_matches('/'));
    for id in &rows {
        let bfq = kernel_reads(
            &dir(id).join("blkio.bfq.io_service_bytes_recursive"),
            &lo.numbers,
        );
        let throttle = kernel_reads(
            &dir(id).join("blkio.throttle.io_service_bytes_recursive"),
            &lo.numbers,
        );
        assert_eq!(
            exported(&p, "container_fs_reads_bytes_total", id),
            bfq as f64,
            "{id}: BFQ says {bfq}, throttle {throttle}"
        );
    }
    let bytes: Vec<f64> = rows
        .iter()
        .map(|id| exported(&p, "container_fs_reads_bytes_total", id))
        .collect();
    assert!(bytes[0] >= mib && bytes[1] >= mib, "{bytes:?}");
    assert_eq!(bytes[2], bytes[0] + bytes[1], "{bytes:?}");
    assert_eq!((bytes[3], bytes[4]), (bytes[2], bytes[2]), "{bytes:?}");
}
