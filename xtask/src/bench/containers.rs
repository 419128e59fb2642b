//! `cargo xtask bench containers`: the containers module on a tree of real cgroups (500
//! containers by default), against the floor of opening, reading and closing the same files
//! in a tight loop, and against the agent without the module (for RSS).
//!
//! cAdvisor can't run here, so there is no "theirs" process to race; three agents run side by
//! side with the same config apart from the containers section:
//! - scrape-time: `housekeeping_interval: 0`, every scrape reads every cgroup;
//! - housekeeping: the default, a background round every 10 s, scrapes serve the last round;
//! - baseline: the module off.
//!
//! Targets (issue 4), printed and not enforced (a shared 2-core VM is noisy):
//! CPU per collection within 1.3x the floor; scrape latency under 1.5x the floor for
//! scrape-time reads, or under 5 ms with housekeeping; RSS growth under 5 MiB.

use super::{compare, Options, Side};
use eos_testkit::agent::modules_section;
use eos_testkit::procstat;
use eos_testkit::{free_port, Description, TempDir};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const HELP: &str = "\
cargo xtask bench containers [--containers N] [--runs N] [--warmup N] [--agent-bin PATH]
  --containers N   container cgroups to create, 5 per pod (default 500)
  --runs N         measured scrapes per agent (default 100)
";

/// The v1 files the module reads for every cgroup in a round (limits are read every 6th).
const V1_FILES: [(&str, &str); 13] = [
    ("cpuacct", "cpuacct.usage"),
    ("cpuacct", "cpuacct.stat"),
    ("cpu", "cpu.stat"),
    ("memory", "memory.usage_in_bytes"),
    ("memory", "memory.max_usage_in_bytes"),
    ("memory", "memory.failcnt"),
    ("memory", "memory.stat"),
    ("memory", "memory.oom_control"),
    ("memory", "cgroup.procs"),
    // Block I/O in runc's order: BFQ first (empty unless the device runs BFQ), then the
    // recursive throttle files.
    ("blkio", "blkio.bfq.io_serviced_recursive"),
    ("blkio", "blkio.throttle.io_serviced_recursive"),
    ("blkio", "blkio.throttle.io_service_bytes_recursive"),
    ("pids", "pids.current"),
];

/// The v2 files the module reads for every cgroup in a round.
const V2_FILES: [&str; 12] = [
    "cpu.stat",
    "memory.current",
    "memory.stat",
    "memory.events",
    "memory.swap.current",
    "memory.peak",
    "io.stat",
    "cpu.pressure",
    "memory.pressure",
    "io.pressure",
    "pids.current",
    "cgroup.procs",
];

const CGROUP: &str = "/sys/fs/cgroup";

pub(super) fn run(args: &[String]) -> Result<(), String> {
    let mut opts = Options::parse(args)?;
    if !args.iter().any(|a| a.starts_with("--runs")) {
        opts.runs = 100;
    }
    let mut containers = 500usize;
    let mut rest = std::mem::take(&mut opts.rest).into_iter();
    while let Some(a) = rest.next() {
        match a.split_once('=') {
            Some(("--containers", v)) => containers = count(v)?,
            None if a == "--containers" => {
                containers = count(&rest.next().ok_or("--containers needs a value")?)?
            }
            _ => return Err(format!("unknown option {a:?}\n\n{HELP}")),
        }
    }
    let agent = super::agent_under_test(&opts)?;
    let dir = TempDir::try_new("bench-containers")?;
    let base = format!("/eos-bench-{}", std::process::id());
    eprintln!("bench: creating {containers} container cgroups under {base}");
    let tree = Tree::create(&base, containers)?;

    let floor = floor(&tree)?;

    let modules = Description::of(&agent)?.module_names();
    let start = |name: &str, containers_section: &str| {
        let config = dir.join(format!("{name}.yaml"));
        let s = format!(
            // No kubelet here: rows keep the labels their cgroup paths give.
            "state_dir: {}\nkubelet: {{enabled: false}}\n{}",
            dir.join(name).display(),
            modules_section(&modules, "containers", containers_section)
        );
        std::fs::write(&config, s).map_err(|e| format!("writing {}: {e}", config.display()))?;
        let port = free_port()?;
        Side::new(name, &agent)
            .args([
                "--config".to_string(),
                config.display().to_string(),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ])
            .listen(port)
            .ready_path("/readyz")
            .request("/metrics")
            .start(&dir)
    };
    let section = |interval: &str| {
        format!("{{enabled: true, housekeeping_interval: {interval}, kubelet_cgroup_root: {base}}}")
    };
    let scrape_time = start("scrape-time", &section("0"))?;
    let housekeeping = start("housekeeping", &section("10s"))?;
    let baseline = start("baseline", "{enabled: false}")?;

    let rows = scrape_time
        .fetch("/metrics")?
        .lines()
        .filter(|l| l.starts_with("container_memory_usage_bytes{"))
        .count();
    if rows < containers {
        return Err(format!(
            "the agent reports {rows} cgroups, expected at least {containers}"
        ));
    }
    // the housekeeping agent must have finished its first round before it is measured; its
    // status page says so without a scrape, so the module's own memory can be read first
    let end = Instant::now() + Duration::from_secs(30);
    while !housekeeping
        .fetch("/debug/containers/")?
        .contains(&format!("rows: {}", tree.cgroups.len() + 1))
    {
        if Instant::now() > end {
            return Err("housekeeping agent: no complete round after 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let state_growth = housekeeping.memory()?.rss as f64 - baseline.memory()?.rss as f64;

    eprintln!(
        "bench: scrape-time agent vs baseline ({} runs each)",
        opts.runs
    );
    let st = compare(&scrape_time, &baseline, &opts)?;
    eprintln!(
        "bench: housekeeping agent vs baseline ({} runs each)",
        opts.runs
    );
    let hk = compare(&housekeeping, &baseline, &opts)?;
    let round = collection_seconds(&housekeeping.fetch("/metrics")?);
    let round_files = (tree.cgroups.len() + 1) * tree.files.len();

    let ms = |s: f64| format!("{:.2} ms", s * 1e3);
    let mib = |b: f64| format!("{:.1} MiB", b / (1024.0 * 1024.0));
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    println!(
        "bench containers: {containers} containers, {} cgroups with the root, pods and QoS rows, {} ({} files per cgroup)",
        tree.cgroups.len() + 1,
        tree.describe,
        tree.files.len()
    );
    println!(
        "floor: open+read+close of the same {round_files} files: {} wall, {} CPU per pass ({:.1} µs per file)",
        ms(floor.wall),
        ms(floor.cpu),
        floor.cpu / round_files as f64 * 1e6
    );
    println!("{:<44} {:>12} {:>14}   target", "", "value", "vs floor");
    let cpu = st.ours.cpu_per_run;
    println!(
        "{:<44} {:>12} {:>13.2}x   <= 1.30x  {}",
        "CPU per collection (scrape-time, whole scrape)",
        ms(cpu),
        cpu / floor.cpu,
        verdict(cpu <= 1.3 * floor.cpu)
    );
    let lat = st.ours.median().as_secs_f64();
    println!(
        "{:<44} {:>12} {:>13.2}x   <= 1.50x  {}",
        "scrape latency median (scrape-time)",
        ms(lat),
        lat / floor.wall,
        verdict(lat <= 1.5 * floor.wall)
    );
    if let Some(r) = round {
        println!(
            "{:<44} {:>12} {:>13.2}x",
            "one housekeeping round (wall, self-reported)",
            ms(r),
            r / floor.wall
        );
    }
    let hk_lat = hk.ours.median().as_secs_f64();
    println!(
        "{:<44} {:>12} {:>14}   < 5 ms    {}",
        "scrape latency median (housekeeping)",
        ms(hk_lat),
        "",
        verdict(hk_lat < 0.005)
    );
    println!(
        "{:<44} {:>12} {:>14}",
        "CPU per scrape (housekeeping, no reads)",
        ms(hk.ours.cpu_per_run),
        ""
    );
    let base_rss = st.theirs.memory.rss.min(hk.theirs.memory.rss) as f64;
    for (name, c) in [("scrape-time", &st), ("housekeeping", &hk)] {
        let growth = c.ours.memory.rss as f64 - base_rss;
        println!(
            "{:<44} {:>12} {:>14}   < 5 MiB   {}",
            format!("RSS growth over the agent without it ({name})"),
            mib(growth),
            format!("({} vs {})", mib(c.ours.memory.rss as f64), mib(base_rss)),
            verdict(growth < 5.0 * 1024.0 * 1024.0)
        );
    }
    println!(
        "{:<44} {:>12}",
        "RSS growth before any scrape (module state)",
        mib(state_growth)
    );
    println!(
        "response: {} bytes gzip (scrape-time), {} bytes (housekeeping)",
        st.ours.body_bytes, hk.ours.body_bytes
    );
    println!(
        "cAdvisor for comparison (published): its DaemonSet requests 400Mi of memory by default, \
         and users report GiB-scale RSS with about 80 containers."
    );
    Ok(())
}

fn count(v: &str) -> Result<usize, String> {
    v.parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("--containers: {v:?} is not a positive whole number"))
}

/// The real cgroup tree: `<base>/kubepods/burstable/pod<uid>/<id>` in every hierarchy the
/// module reads. Removed on drop.
struct Tree {
    /// Every created directory, parents first.
    dirs: Vec<PathBuf>,
    /// The cgroups the module reports (kubepods, burstable, pods, containers), relative.
    cgroups: Vec<String>,
    /// (hierarchy dir, file) pairs read for each cgroup.
    files: Vec<(PathBuf, &'static str)>,
    describe: String,
}

impl Tree {
    fn create(base: &str, containers: usize) -> Result<Tree, String> {
        let root = Path::new(CGROUP);
        let v2 = root.join("cgroup.controllers").exists();
        let (hierarchies, files, describe): (Vec<PathBuf>, Vec<(PathBuf, &str)>, &str) = if v2 {
            (
                vec![root.to_path_buf()],
                V2_FILES.iter().map(|f| (root.to_path_buf(), *f)).collect(),
                "cgroup v2",
            )
        } else {
            let mut hs: Vec<PathBuf> = V1_FILES.iter().map(|(h, _)| root.join(h)).collect();
            hs.dedup();
            if let Some(h) = hs.iter().find(|h| !h.is_dir()) {
                return Err(format!(
                    "{} is missing: is this a cgroup v1 host?",
                    h.display()
                ));
            }
            (
                hs,
                V1_FILES.iter().map(|(h, f)| (root.join(h), *f)).collect(),
                "cgroup v1",
            )
        };
        let mut cgroups = vec![
            format!("{base}/kubepods"),
            format!("{base}/kubepods/burstable"),
        ];
        for p in 0..containers.div_ceil(5) {
            let pod = format!("{base}/kubepods/burstable/pod{p:08x}-0000-4000-8000-{p:012x}");
            cgroups.push(pod.clone());
            for c in 0..5.min(containers - p * 5) {
                cgroups.push(format!("{pod}/{:064x}", p * 5 + c + 1));
            }
        }
        let mut tree = Tree {
            dirs: Vec::new(),
            cgroups,
            files,
            describe: describe.into(),
        };
        for h in &hierarchies {
            let top = h.join(base.trim_start_matches('/'));
            std::fs::create_dir(&top).map_err(|e| format!("mkdir {}: {e}", top.display()))?;
            tree.dirs.push(top);
            for cg in &tree.cgroups {
                let d = h.join(cg.trim_start_matches('/'));
                std::fs::create_dir(&d).map_err(|e| format!("mkdir {}: {e}", d.display()))?;
                tree.dirs.push(d);
            }
        }
        Ok(tree)
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

struct Floor {
    /// Median wall time of one pass over every file.
    wall: f64,
    /// CPU time of one pass.
    cpu: f64,
}

/// Opens, reads and closes every file of every cgroup, as a round does, in a tight loop.
fn floor(tree: &Tree) -> Result<Floor, String> {
    // the module also reads the root cgroup (the kubelet's `id="/"` row)
    let paths: Vec<PathBuf> = std::iter::once(&"/".to_string())
        .chain(&tree.cgroups)
        .flat_map(|cg| {
            tree.files
                .iter()
                .map(move |(h, f)| h.join(cg.trim_start_matches('/')).join(f))
        })
        .collect();
    let mut buf = Vec::with_capacity(8192);
    let pass = |buf: &mut Vec<u8>| {
        for p in &paths {
            buf.clear();
            // a missing optional file (memory.peak on older kernels) costs a failed open
            if let Ok(mut f) = std::fs::File::open(p) {
                let _ = f.read_to_end(buf);
            }
        }
    };
    pass(&mut buf);
    let passes = 30;
    let mut walls = Vec::with_capacity(passes);
    let cpu_before = thread_cpu()?;
    for _ in 0..passes {
        let t = Instant::now();
        pass(&mut buf);
        walls.push(t.elapsed().as_secs_f64());
    }
    let cpu = (thread_cpu()? - cpu_before) / passes as f64;
    walls.sort_by(f64::total_cmp);
    Ok(Floor {
        wall: walls[passes / 2],
        cpu,
    })
}

/// CPU seconds of the calling thread (`utime + stime` of `/proc/thread-self/stat`).
fn thread_cpu() -> Result<f64, String> {
    let text = std::fs::read_to_string("/proc/thread-self/stat")
        .map_err(|e| format!("reading /proc/thread-self/stat: {e}"))?;
    let ticks = procstat::parse_stat_cpu_ticks(&text)?;
    Ok(ticks as f64 / procstat::clock_ticks())
}

/// `eos_agent_containers_collection_duration_seconds` from an exposition.
fn collection_seconds(metrics: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("eos_agent_containers_collection_duration_seconds "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn collection_seconds_is_found() {
        let m = "a 1\neos_agent_containers_collection_duration_seconds 0.0125\n";
        assert_eq!(super::collection_seconds(m), Some(0.0125));
        assert_eq!(super::collection_seconds("x 1\n"), None);
        assert!(super::count("0").is_err());
        assert_eq!(super::count("12"), Ok(12));
    }
}
