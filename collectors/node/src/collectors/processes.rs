//! `processes` (off by default): process and thread counts by state, from every
//! `/proc/<pid>/stat` and `/proc/<pid>/task/<tid>/stat`, plus the kernel's limits
//! (`kernel/pid_max`, `kernel/threads-max`).
//!
//! Processes that exit while being read are skipped.

use std::collections::BTreeMap;
use std::path::Path;

use eos_exposition::{Encoder, Kind};
use eos_module::pidstat;

use crate::collector::{is_not_found, list_dir, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "processes",
    default_enabled: false,
    build: |_cfg, _paths| Ok(Box::new(ProcessesCollector)),
};

struct ProcessesCollector;

/// Counts over all processes.
#[derive(Debug, Default, PartialEq)]
struct Counts {
    pids: u64,
    threads: u64,
    states: BTreeMap<String, u64>,
    thread_states: BTreeMap<String, u64>,
}

impl Collector for ProcessesCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let counts = count(ctx)?;
        let max_threads = read_limit(ctx, "sys/kernel/threads-max")?;
        let pid_max = read_limit(ctx, "sys/kernel/pid_max")?;
        let gauge = Kind::Gauge;
        enc.single(
            "node_processes_max_processes",
            "Number of max PIDs limit",
            gauge,
            &[],
            pid_max,
        );
        enc.single(
            "node_processes_max_threads",
            "Limit of threads in the system",
            gauge,
            &[],
            max_threads,
        );
        enc.single(
            "node_processes_pids",
            "Number of PIDs",
            gauge,
            &[],
            counts.pids as f64,
        );
        let mut fam = enc.family(
            "node_processes_state",
            "Number of processes in each state.",
            gauge,
        );
        for (state, n) in &counts.states {
            fam.sample(&[("state", state)], *n as f64);
        }
        enc.single(
            "node_processes_threads",
            "Allocated threads in system",
            gauge,
            &[],
            counts.threads as f64,
        );
        let mut fam = enc.family(
            "node_processes_threads_state",
            "Number of threads in each state.",
            gauge,
        );
        for (state, n) in &counts.thread_states {
            fam.sample(&[("thread_state", state)], *n as f64);
        }
        Ok(())
    }
}

fn read_limit(ctx: &mut Ctx<'_>, rel: &str) -> Result<f64, String> {
    let path = ctx.proc_path(rel);
    let text = ctx.read(&path)?;
    text.trim()
        .parse::<u64>()
        .map(|v| v as f64)
        .map_err(|_| format!("{}: invalid number {:?}", path.display(), text.trim()))
}

/// Whether a read error means the process went away meanwhile.
fn vanished(e: &std::io::Error) -> bool {
    is_not_found(e) || e.raw_os_error() == Some(libc::ESRCH)
}

/// Reads a stat file into `buf`; `Ok(false)` when the process is gone.
fn read_stat(path: &Path, buf: &mut Vec<u8>) -> Result<bool, String> {
    use std::io::Read;
    buf.clear();
    let res = std::fs::File::open(path).and_then(|mut f| f.read_to_end(buf));
    match res {
        Ok(_) => Ok(true),
        Err(e) if vanished(&e) => Ok(false),
        Err(e) => Err(format!("reading {}: {e}", path.display())),
    }
}

/// Walks `/proc` and `/proc/<pid>/task`.
fn count(ctx: &mut Ctx<'_>) -> Result<Counts, String> {
    let proc = ctx.paths.procfs.clone();
    let mut counts = Counts::default();
    let mut buf = Vec::with_capacity(512);
    for pid in list_dir(&proc)? {
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let dir = proc.join(&pid);
        if !read_stat(&dir.join("stat"), &mut buf)? {
            continue;
        }
        let text = String::from_utf8_lossy(&buf);
        let stat = pidstat::parse(&text).map_err(|e| format!("{}/stat: {e}", dir.display()))?;
        counts.pids += 1;
        counts.threads += stat.num_threads;
        *counts.states.entry(stat.state.to_string()).or_default() += 1;
        let main_state = stat.state.to_string();
        let tasks = match std::fs::read_dir(dir.join("task")) {
            Ok(rd) => rd,
            Err(e) if vanished(&e) => continue,
            Err(e) => return Err(format!("listing {}/task: {e}", dir.display())),
        };
        for task in tasks {
            let Ok(task) = task else { continue };
            let tid = task.file_name();
            let tid = tid.to_string_lossy();
            if !tid.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if *tid == *pid {
                *counts.thread_states.entry(main_state.clone()).or_default() += 1;
                continue;
            }
            if !read_stat(&task.path().join("stat"), &mut buf)? {
                continue;
            }
            let text = String::from_utf8_lossy(&buf);
            let t = pidstat::parse(&text)
                .map_err(|e| format!("{}/stat: {e}", task.path().display()))?;
            *counts.thread_states.entry(t.state.to_string()).or_default() += 1;
        }
        if std::time::Instant::now() > ctx.deadline {
            return Err("scrape deadline passed while reading processes".into());
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_tree::TestTree;

    #[test]
    fn counts_a_tree() {
        let t = TestTree::new("processes");
        let stat = |state: &str, threads: u32| {
            format!("1 (x) {state} 0 0 0 0 0 0 0 0 0 0 0 0 0 0 20 0 {threads} 0 0 0 0 0\n")
        };
        t.write("1/stat", &stat("S", 2))
            .write("1/task/1/stat", &stat("S", 2))
            .write("1/task/7/stat", &stat("R", 2))
            .write("22/stat", &stat("I", 1))
            .write("22/task/22/stat", &stat("I", 1))
            .write("self/stat", &stat("Z", 1))
            .write("sys/kernel/threads-max", "1000\n")
            .write("sys/kernel/pid_max", "32768\n");
        std::fs::create_dir_all(t.path().join("333")).unwrap(); // exited meanwhile
        let paths = eos_module::HostPaths {
            procfs: t.path().to_path_buf(),
            ..Default::default()
        };
        let mut buf = Vec::new();
        let mut ctx = Ctx::new(
            &paths,
            std::time::Instant::now() + std::time::Duration::from_secs(5),
            &mut buf,
        );
        let c = count(&mut ctx).unwrap();
        assert_eq!(c.pids, 2);
        assert_eq!(c.threads, 3);
        let m = |v: &[(&str, u64)]| -> BTreeMap<String, u64> {
            v.iter().map(|(k, n)| (k.to_string(), *n)).collect()
        };
        assert_eq!(c.states, m(&[("I", 1), ("S", 1)]));
        assert_eq!(c.thread_states, m(&[("I", 1), ("R", 1), ("S", 1)]));
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, eos_exposition::Format::Text);
        ProcessesCollector.update(&mut enc, &mut ctx).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("node_processes_max_processes 32768\n"),
            "{out}"
        );
        assert!(out.contains("node_processes_threads_state{thread_state=\"R\"} 1\n"));
        t.write("22/stat", "garbage");
        assert!(count(&mut ctx).is_err());
    }
}
