//! `cargo xtask ci`: what CI runs, and what a developer runs before pushing.
//!
//! 1. `cargo fmt --all --check`
//! 2. `cargo clippy --workspace --all-targets -- -D warnings`
//! 3. `cargo build -p eos-agent` (the end-to-end tests start this binary)
//! 4. `cargo test --workspace`
//!
//! `--no-lint` skips steps 1 and 2 for a quicker local loop.

use std::process::Command;

pub fn run(args: &[String]) -> Result<(), String> {
    let lint = !args.iter().any(|a| a == "--no-lint");
    if let Some(bad) = args.iter().find(|a| a.as_str() != "--no-lint") {
        return Err(format!("ci: unknown argument {bad:?} (known: --no-lint)"));
    }
    if lint {
        cargo(&["fmt", "--all", "--check"])?;
        cargo(&[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ])?;
    }
    cargo(&["build", "-p", "eos-agent"])?;
    cargo(&["test", "--workspace"])?;
    Ok(())
}

fn cargo(args: &[&str]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("xtask ci: cargo {}", args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .status()
        .map_err(|e| format!("running {cargo}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}
