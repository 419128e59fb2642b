//! `cargo xtask bench textfile`: the node module's textfile collector alone against Debian's
//! `prometheus-node-exporter`, both reading one `.prom` file with one family of N series, for
//! N = 10,000, 80,000 and 1,000,000 (`--sizes=N,N,...` for others).
//!
//! Both run `--collector.disable-defaults --collector.textfile
//! --collector.textfile.directory=DIR`; the agent also with its textfile limits off
//! (`--collector.textfile.max-bytes=0 --collector.textfile.max-series=0`), so that both read
//! the whole file (with its defaults it refuses files of over 100,000 series). Each size gets
//! fresh servers, so that memory figures are its own, and a first scrape that checks both
//! serve all N series. Runs per size are fewer for larger files (at most `--runs`); each run
//! is bounded by the HTTP client's 30 s read timeout, and a side that misses it is reported
//! as such. After the runs the file is deleted and both are scraped once more: "RSS after"
//! shows what memory each keeps once the file is gone.
//!
//! No targets: the goal is linear time and bounded memory, which the sizes show side by side.

use super::{Comparison, Measure, Options, Side};
use eos_testkit::agent::modules_section;
use eos_testkit::node_exporter::NODE_EXPORTER;
use eos_testkit::{free_port, Description, TempDir};
use std::fmt::Write as _;
use std::path::PathBuf;

/// The family every benchmark file holds.
const FAMILY: &str = "bench_textfile_series";

pub(super) fn run(args: &[String]) -> Result<(), String> {
    let mut opts = Options::parse(args)?;
    let sizes = take_sizes(&mut opts.rest)?;
    let opts = opts.only_known()?;
    super::need_node_exporter()?;
    let agent = super::agent_under_test(&opts)?;
    let dir = TempDir::try_new("bench-textfile")?;
    let files = dir.join("textfiles");
    std::fs::create_dir_all(&files).map_err(|e| format!("creating {}: {e}", files.display()))?;
    let config = dir.join("agent.yaml");
    let modules = Description::of(&agent)?.module_names();
    let text = format!(
        "state_dir: {}\n{}",
        dir.join("state").display(),
        modules_section(&modules, "node", "{enabled: true}")
    );
    std::fs::write(&config, text).map_err(|e| format!("writing {}: {e}", config.display()))?;
    println!(
        "ours: {} (node module, textfile collector only, limits off); theirs: {NODE_EXPORTER}",
        agent.display()
    );

    let mut rows = Vec::new();
    for &n in &sizes {
        let file = files.join("bench.prom");
        let bytes = write_file(&file, n)?;
        let runs = opts.runs.min(auto_runs(n));
        let size_opts = Options {
            runs,
            warmup: opts.warmup.min(1),
            ..opts.clone()
        };
        println!(
            "\n== {n} series ({:.1} MB), {runs} runs per side ==",
            bytes as f64 / 1e6
        );
        let dir_flag = format!("--collector.textfile.directory={}", files.display());
        let common = [
            "--collector.disable-defaults".to_string(),
            "--collector.textfile".to_string(),
            dir_flag,
        ];
        let port = free_port()?;
        let ours = Side::new("eos-agent", &agent)
            .args([
                "--config".to_string(),
                config.display().to_string(),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--collector.textfile.max-bytes=0".to_string(),
                "--collector.textfile.max-series=0".to_string(),
            ])
            .args(common.iter().cloned())
            .listen(port)
            .ready_path("/readyz")
            .request("/metrics")
            .start(&dir)?;
        let port = free_port()?;
        let theirs = Side::new("node_exporter", NODE_EXPORTER)
            .args([format!("--web.listen-address=127.0.0.1:{port}")])
            .args(common.iter().cloned())
            .listen(port)
            .request("/metrics")
            .start(&dir)?;
        let mut row = Row {
            n,
            result: None,
            note: String::new(),
            rss_after: [None, None],
        };
        let mut served = Vec::new();
        for side in [&ours, &theirs] {
            match side.fetch("/metrics").map(|m| count_series(&m)) {
                Ok(got) if got == n => served.push(true),
                Ok(got) => {
                    let _ = write!(row.note, "{} served {got} of {n} series; ", side.side.name);
                    served.push(false);
                }
                Err(e) => {
                    let _ = write!(row.note, "{e}; ");
                    served.push(false);
                }
            }
        }
        if served.iter().all(|&s| s) {
            match super::compare(&ours, &theirs, &size_opts) {
                Ok(result) => {
                    result.print(&format!("bench textfile, {n} series"), &[]);
                    row.result = Some(result);
                }
                Err(e) => {
                    let _ = write!(row.note, "{e}; ");
                }
            }
        }
        std::fs::remove_file(&file).map_err(|e| format!("removing {}: {e}", file.display()))?;
        for (i, side) in [&ours, &theirs].into_iter().enumerate() {
            if side.fetch("/metrics").is_ok() {
                row.rss_after[i] = side.memory().ok().map(|m| m.rss);
            }
        }
        if !row.note.is_empty() {
            println!("note: {}", row.note.trim_end_matches("; "));
        }
        rows.push(row);
    }
    println!("\n{}", summary(&rows));
    Ok(())
}

/// `--sizes=N,N,...` from the benchmark's own arguments (default 10k, 80k, 1M).
fn take_sizes(rest: &mut Vec<String>) -> Result<Vec<usize>, String> {
    let mut sizes = vec![10_000, 80_000, 1_000_000];
    let mut i = 0;
    while i < rest.len() {
        let Some(v) = rest[i].strip_prefix("--sizes=") else {
            i += 1;
            continue;
        };
        sizes = v
            .split(',')
            .map(|s| {
                s.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("--sizes: {s:?} is not a positive whole number"))
            })
            .collect::<Result<_, _>>()?;
        rest.remove(i);
    }
    Ok(sizes)
}

/// Runs per side for a file of `n` series: about 20 s of node_exporter time at most.
fn auto_runs(n: usize) -> usize {
    match n {
        0..=20_000 => 30,
        20_001..=200_000 => 10,
        _ => 3,
    }
}

/// Writes a file with one gauge family of `n` series (about 54 bytes each); returns its size.
fn write_file(path: &PathBuf, n: usize) -> Result<u64, String> {
    let mut text = String::with_capacity(n * 56 + 100);
    text.push_str(&format!(
        "# HELP {FAMILY} Series written by cargo xtask bench textfile.\n# TYPE {FAMILY} gauge\n"
    ));
    for i in 0..n {
        let _ = writeln!(text, "{FAMILY}{{id=\"{i:08}\",kind=\"x\"}} {i}");
    }
    std::fs::write(path, &text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(text.len() as u64)
}

/// How many series of the benchmark family an exposition has.
fn count_series(metrics: &str) -> usize {
    let prefix = format!("{FAMILY}{{");
    metrics.lines().filter(|l| l.starts_with(&prefix)).count()
}

/// One size's results.
struct Row {
    n: usize,
    result: Option<Comparison>,
    note: String,
    /// Resident memory after the file was deleted and scraped once more: ours, theirs.
    rss_after: [Option<u64>; 2],
}

/// The sizes side by side.
fn summary(rows: &[Row]) -> String {
    let mib = |b: u64| format!("{:.1}", b as f64 / (1024.0 * 1024.0));
    let mut s = String::from(
        "summary (ours / theirs)\n\
         series       median latency ms           CPU per scrape ms          RSS peak MiB      RSS after MiB\n",
    );
    for r in rows {
        let after = match r.rss_after {
            [Some(a), Some(b)] => format!("{} / {}", mib(a), mib(b)),
            _ => "-".into(),
        };
        let Some(c) = &r.result else {
            let _ = writeln!(
                s,
                "{:>9}    not measured: {}   {after}",
                r.n,
                r.note.trim_end_matches("; ")
            );
            continue;
        };
        let ms = |d: f64| format!("{:.1}", d * 1e3);
        let _ = writeln!(
            s,
            "{:>9}  {:>9} / {:<9} {:>6.3}x  {:>8} / {:<8} {:>6.3}x  {:>6} / {:<6}  {after}",
            r.n,
            ms(c.ours.median().as_secs_f64()),
            ms(c.theirs.median().as_secs_f64()),
            c.ratio(Measure::MedianLatency),
            ms(c.ours.cpu_per_run),
            ms(c.theirs.cpu_per_run),
            c.ratio(Measure::CpuPerRun),
            mib(c.ours.memory.hwm),
            mib(c.theirs.memory.hwm),
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_runs() {
        let mut rest = vec!["--sizes=5,7".to_string(), "--x".to_string()];
        assert_eq!(take_sizes(&mut rest), Ok(vec![5, 7]));
        assert_eq!(rest, ["--x"]);
        assert_eq!(take_sizes(&mut vec![]), Ok(vec![10_000, 80_000, 1_000_000]));
        assert!(take_sizes(&mut vec!["--sizes=0".into()]).is_err());
        assert!(take_sizes(&mut vec!["--sizes=1,x".into()]).is_err());
        assert_eq!(auto_runs(10_000), 30);
        assert_eq!(auto_runs(1_000_000), 3);
    }

    #[test]
    fn files_and_counts() {
        let dir = TempDir::new("bench-textfile-test");
        let path = dir.join("a.prom");
        let bytes = write_file(&path, 3).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(bytes as usize, text.len());
        assert!(text.ends_with("bench_textfile_series{id=\"00000002\",kind=\"x\"} 2\n"));
        assert_eq!(count_series(&text), 3);
    }
}
