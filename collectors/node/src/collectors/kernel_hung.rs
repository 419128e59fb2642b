//! `kernel_hung`: `node_kernel_hung_tasks_total`, how many tasks the kernel's hung-task
//! detector has flagged (blocked in uninterruptible sleep past `hung_task_timeout_secs`) since
//! boot, from `/proc/sys/kernel/hung_task_detect_count`. The file exists on kernels 6.7+ built
//! with `CONFIG_DETECT_HUNG_TASK`; without it nothing is written (node_exporter 1.11.1 made
//! that "no data" too).

use eos_exposition::{Encoder, Kind};

use crate::collector::{in_procfs, parse_u64, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "kernel_hung",
    default_enabled: true,
    build: |_, _| Ok(Box::new(KernelHungCollector)),
};

struct KernelHungCollector;

/// The counter's file under procfs.
const FILE: &str = "sys/kernel/hung_task_detect_count";

impl Collector for KernelHungCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let path = ctx.proc_path(FILE);
        let paths = ctx.paths;
        let Some(text) = ctx.read_optional(&path)? else {
            return Ok(());
        };
        let count = parse_detect_count(text).map_err(|e| in_procfs(paths, e))?;
        enc.single(
            "node_kernel_hung_tasks_total",
            "Total number of tasks that have been detected as hung since the system booted.",
            Kind::Counter,
            &[],
            count as f64,
        );
        Ok(())
    }
}

/// The file holds one unsigned number and a newline.
fn parse_detect_count(text: &str) -> Result<u64, String> {
    parse_u64(
        text.trim(),
        &"parsing /proc/sys/kernel/hung_task_detect_count",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_tree::TestTree;
    use eos_exposition::Format;
    use eos_module::HostPaths;
    use std::time::{Duration, Instant};

    #[test]
    fn parses_the_count() {
        assert_eq!(parse_detect_count("0\n").unwrap(), 0);
        assert_eq!(parse_detect_count("17\n").unwrap(), 17);
        assert_eq!(parse_detect_count(" 3 ").unwrap(), 3);
        let e = parse_detect_count("").unwrap_err();
        assert!(e.contains("hung_task_detect_count"), "{e}");
        assert!(parse_detect_count("-1\n").is_err());
        assert!(parse_detect_count("1 2\n").is_err());
        assert!(parse_detect_count("12x").is_err());
    }

    /// Runs the collector against `proc` as procfs.
    fn collect(proc: &std::path::Path) -> Result<String, String> {
        let paths = HostPaths {
            procfs: proc.to_path_buf(),
            ..HostPaths::default()
        };
        let mut buf = Vec::new();
        let mut ctx = Ctx::new(&paths, Instant::now() + Duration::from_secs(10), &mut buf);
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, Format::Text);
        KernelHungCollector.update(&mut enc, &mut ctx)?;
        drop(enc);
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn writes_the_counter_or_nothing() {
        let t = TestTree::new("kernel-hung");
        assert_eq!(collect(t.path()).unwrap(), "", "no file: no data, no error");
        t.write(FILE, "2\n");
        assert_eq!(
            collect(t.path()).unwrap(),
            "# HELP node_kernel_hung_tasks_total Total number of tasks that have been detected \
             as hung since the system booted.\n\
             # TYPE node_kernel_hung_tasks_total counter\n\
             node_kernel_hung_tasks_total 2\n"
        );
        t.write(FILE, "garbage\n");
        let e = collect(t.path()).unwrap_err();
        let shown = format!("parsing {}/{FILE}", t.path().display());
        assert!(e.contains(&shown), "{e}");
    }
}
