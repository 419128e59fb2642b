//! `cargo xtask fuzz <target> [--time 10m]`: the property tests over outside input, run long.
//!
//! `cargo test` runs each of them with a few dozen cases (`EOS_FUZZ_CASES`, see
//! `eos_testkit::fuzz`). Here the same tests run in a release build, in batches with fresh
//! random seeds, until the time is up; the report gives the cases tried and the rate. A
//! failure stops the run with proptest's smallest failing input.

use std::process::Command;
use std::time::{Duration, Instant};

/// A fuzz target: the package and test selection that holds its property tests.
struct Target {
    name: &'static str,
    what: &'static str,
    /// `cargo test` arguments before `--`.
    cargo: &'static [&'static str],
    /// The test-name filter: every test it selects is a property test.
    filter: &'static str,
}

const TARGETS: &[Target] = &[
    Target {
        name: "config",
        what: "the config loader: YAML, ${VAR} expansion, key lines",
        cargo: &["-p", "eos-agent", "--bin", "eos-agent"],
        filter: "fuzz::fuzz_",
    },
    Target {
        name: "node",
        what: "every node collector, through a fixture /proc and /sys with one file changed",
        cargo: &["-p", "eos-node", "--test", "fuzz_tree"],
        filter: "fuzz_",
    },
    Target {
        name: "textfile",
        what: "the node textfile collector: arbitrary bytes and exposition-shaped files",
        cargo: &["-p", "eos-node", "--lib"],
        filter: "collectors::textfile::tests::properties::",
    },
    Target {
        name: "exposition",
        what: "the exposition text parser, and encoding read back",
        cargo: &["-p", "eos-exposition", "--lib"],
        filter: "parse::tests::properties::",
    },
    Target {
        name: "containers",
        what: "cgroup v1/v2 and /proc parsers on fixture trees with a file changed; v1 block I/O order",
        cargo: &["-p", "eos-containers", "--lib"],
        filter: "fuzz_",
    },
    Target {
        name: "logs",
        what:
            "CRI and docker json-file log lines, line splitting, entry decoding, Loki push bodies",
        cargo: &["-p", "eos-logs", "--lib"],
        filter: "fuzz_",
    },
    Target {
        name: "probe",
        what: "certificates, DNS answers, URLs and redirect locations, HTTP dates, Service lists",
        cargo: &["-p", "eos-probe", "--lib"],
        filter: "fuzz_",
    },
    Target {
        name: "icmp",
        what: "ICMP echo replies and quoted errors, IPv4 and IPv6",
        cargo: &["-p", "eos-icmp", "--lib"],
        filter: "fuzz_",
    },
    Target {
        name: "kube",
        what: "the kubelet pod list parser",
        cargo: &["-p", "eos-kube", "--test", "fuzz_podlist"],
        filter: "fuzz_",
    },
];

pub fn run(args: &[String]) -> Result<(), String> {
    let mut time = Duration::from_secs(60);
    let mut names = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--time" => {
                let v = it.next().ok_or("--time needs a value, e.g. 10m")?;
                time = parse_time(v)?;
            }
            "help" | "--help" | "-h" => {
                print!("{}", help());
                return Ok(());
            }
            n => names.push(n.to_string()),
        }
    }
    if names.is_empty() {
        return Err(format!("fuzz: name a target\n\n{}", help()));
    }
    let targets: Vec<&Target> = if names.iter().any(|n| n == "all") {
        TARGETS.iter().collect()
    } else {
        names
            .iter()
            .map(|n| {
                TARGETS
                    .iter()
                    .find(|t| t.name == n)
                    .ok_or_else(|| format!("fuzz: unknown target {n:?}\n\n{}", help()))
            })
            .collect::<Result<_, _>>()?
    };
    let each = time / targets.len() as u32;
    let mut report = Vec::new();
    for t in targets {
        report.push(fuzz(t, each)?);
    }
    println!("\nfuzz report ({} per target):", human(each));
    for line in report {
        println!("  {line}");
    }
    Ok(())
}

fn help() -> String {
    let mut s =
        String::from("usage: cargo xtask fuzz <target>... | all [--time 10m]\n\ntargets:\n");
    for t in TARGETS {
        s.push_str(&format!("  {:<11} {}\n", t.name, t.what));
    }
    s
}

/// Runs one target's property tests in batches until `time` has passed.
fn fuzz(t: &Target, time: Duration) -> Result<String, String> {
    eprintln!("fuzz {}: building (release)", t.name);
    let mut build = cargo_test(t);
    build.arg("--no-run");
    run_ok(&mut build, t.name)?;
    let started = Instant::now();
    let (mut cases, mut runs) = (0u64, 0u64);
    let mut batch = 200u64;
    while started.elapsed() < time {
        let run_started = Instant::now();
        let mut cmd = cargo_test(t);
        cmd.env("EOS_FUZZ_CASES", batch.to_string())
            .args(["--", t.filter, "--test-threads=1"]);
        let tests = run_ok(&mut cmd, t.name)?;
        cases += batch * tests;
        runs += 1;
        // Aim each batch at about 30 s, and never past the end.
        let per_case = run_started.elapsed().as_secs_f64() / (batch * tests.max(1)) as f64;
        let left = time
            .saturating_sub(started.elapsed())
            .as_secs_f64()
            .min(30.0);
        batch = ((left / per_case.max(1e-6)) as u64 / tests.max(1)).clamp(10, 1_000_000);
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(format!(
        "{:<11} {cases} cases in {runs} runs, {:.0} s, {:.0} cases/s, no failure",
        t.name,
        secs,
        cases as f64 / secs.max(1e-9)
    ))
}

fn cargo_test(t: &Target) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["test", "--release", "--quiet"]).args(t.cargo);
    cmd
}

/// Runs a `cargo test`, and returns how many tests passed; a failure is an error with the
/// output (proptest prints the smallest failing input).
fn run_ok(cmd: &mut Command, name: &str) -> Result<u64, String> {
    let out = cmd
        .output()
        .map_err(|e| format!("fuzz {name}: running cargo: {e}"))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("fuzz {name}: a property failed\n{text}"));
    }
    Ok(passed(&text))
}

/// The count in cargo test's `test result: ok. N passed` lines, summed.
fn passed(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("test result: ok. "))
        .filter_map(|r| r.split(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// `90s`, `10m`, `1h`.
fn parse_time(v: &str) -> Result<Duration, String> {
    let (n, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    let n: u64 = n
        .parse()
        .map_err(|_| format!("--time {v:?}: expected e.g. 90s, 10m or 1h"))?;
    let secs = match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => return Err(format!("--time {v:?}: expected e.g. 90s, 10m or 1h")),
    };
    Ok(Duration::from_secs(secs.max(1)))
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_results() {
        assert_eq!(parse_time("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_time("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_time("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_time("ten").is_err());
        assert!(parse_time("5d").is_err());
        assert_eq!(
            passed("test result: ok. 4 passed; 0 failed\n\ntest result: ok. 0 passed;\n"),
            4
        );
        assert_eq!(human(Duration::from_secs(600)), "10 min");
    }

    #[test]
    fn every_target_names_its_tests() {
        for t in TARGETS {
            assert!(
                !t.filter.is_empty() && t.cargo.contains(&"-p"),
                "{}",
                t.name
            );
        }
        assert!(help().contains("containers"));
    }
}
