//! Project tasks: `cargo xtask <task>`. Run `cargo xtask help` for the list.

mod bench;
mod ci;
mod fuzz;
mod manifests;

use std::process::ExitCode;

const HELP: &str = "\
usage: cargo xtask <task> [args]

tasks:
  ci                 fmt check, clippy -D warnings, build the agent, run every test
  bench <module>     eos vs the tool it replaces (`cargo xtask bench help`)
  manifests          validate manifests/, dashboards/ and alert rules offline
  fuzz <target>      property tests over outside input, run long (`cargo xtask fuzz help`)
  help               this text
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (task, rest) = match args.split_first() {
        Some((t, r)) => (t.as_str(), r),
        None => ("help", &[][..]),
    };
    let result = match task {
        "ci" => ci::run(rest),
        "bench" => bench::run(rest),
        "manifests" => manifests::run(rest),
        "fuzz" => fuzz::run(rest),
        "help" | "-h" | "--help" => {
            print!("{HELP}");
            Ok(())
        }
        other => Err(format!("unknown task {other:?}\n\n{HELP}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
