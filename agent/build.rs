//! Records the VCS revision for `eos_agent_build_info` and `--version`.

use std::process::Command;

fn main() {
    let rev = std::env::var("EOS_REVISION").ok().or_else(|| {
        let out = Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    });
    println!(
        "cargo:rustc-env=EOS_REVISION={}",
        rev.unwrap_or_else(|| "unknown".into())
    );
    println!("cargo:rerun-if-env-changed=EOS_REVISION");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/refs/heads");
}
