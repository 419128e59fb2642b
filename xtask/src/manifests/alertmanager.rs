//! Alertmanager: `amtool check-config` on each `alertmanager.yml`, when amtool is installed.

use super::{Fail, Outcome, Skip};
use std::path::Path;
use std::process::Command;

/// Runs a checking tool on one file; a missing tool is a `Skip`.
pub(super) fn tool_ok(tool: &str, args: &[&str], file: &Path) -> Result<(), Outcome> {
    let out = match Command::new(tool).args(args).arg(file).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Skip(format!("{tool} is not installed")))
        }
        Err(e) => return Err(Fail(format!("running {tool}: {e}"))),
    };
    if out.status.success() {
        Ok(())
    } else {
        Err(Fail(format!(
            "{tool} {} {}:\n{}{}",
            args.join(" "),
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }
}
