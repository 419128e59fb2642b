//! The built `eos-agent` binary: where it is, what it says about itself, a config with one
//! module on, and [`Agent`], a running agent on a loopback port.
//!
//! The binary is `$EOS_AGENT_BIN` when set, otherwise the newer of `target/debug/eos-agent`
//! and `target/release/eos-agent` (`$CARGO_TARGET_DIR` instead of `target/` when set). Nothing
//! here builds it: `cargo xtask ci` does, or `cargo build -p eos-agent` by hand.

use crate::describe::Description;
use crate::http::{http, request, Response};
use crate::process::Server;
use crate::tempdir::TempDir;
use crate::wait::wait_until;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    // This crate is collectors/testkit.
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// Cargo's target directory: `$CARGO_TARGET_DIR`, or `target/` in the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The agent binary: `$EOS_AGENT_BIN`, or the most recently built one in the target
/// directory; `None` when there is none.
pub fn find_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("EOS_AGENT_BIN") {
        return Some(PathBuf::from(p));
    }
    let target = target_dir();
    ["debug", "release"]
        .iter()
        .map(|profile| target.join(profile).join("eos-agent"))
        .filter_map(|p| {
            let modified = p.metadata().and_then(|m| m.modified()).ok()?;
            Some((modified, p))
        })
        .max()
        .map(|(_, p)| p)
}

/// [`find_binary`], panicking with what to do when there is none (for tests).
pub fn binary() -> PathBuf {
    find_binary().unwrap_or_else(|| {
        panic!(
            "{}/debug/eos-agent is missing: run `cargo build -p eos-agent` first (`cargo xtask ci` does), or set EOS_AGENT_BIN",
            target_dir().display()
        )
    })
}

/// `eos-agent describe` of [`binary`], panicking when it fails (for tests).
pub fn describe() -> Description {
    Description::of(&binary()).unwrap_or_else(|e| panic!("{e}"))
}

/// The `modules:` block of an agent config: `module` set to `section` (YAML, e.g.
/// `{enabled: true}`) and every other module of `built` (a build's modules, see
/// [`Description::module_names`]) switched off.
pub fn modules_section(built: &[String], module: &str, section: &str) -> String {
    let mut s = String::from("modules:\n");
    for m in built.iter().filter(|m| *m != module) {
        s.push_str(&format!("  {m}: {{enabled: false}}\n"));
    }
    s.push_str(&format!("  {module}: {section}\n"));
    s
}

/// A running agent, killed on drop.
pub struct Agent {
    server: Server,
    /// Where it serves, `127.0.0.1:port`.
    pub addr: String,
    /// Its log (stderr).
    pub log: PathBuf,
    _dir: TempDir,
}

impl Agent {
    /// Starts the agent with `args` on a loopback port the kernel picks (no race with other
    /// tests for a "free" port), learns the port from the agent's `listening` log line, and
    /// waits for `/readyz` (config loaded and modules started). Panics, with the log, if it
    /// does not come up within 20 s.
    pub fn start(args: &[&str]) -> Agent {
        let dir = TempDir::new("test-agent");
        let log = dir.join("agent.log");
        let mut cmd = Command::new(binary());
        cmd.args(args).arg("--web.listen-address=127.0.0.1:0");
        let mut server = Server::spawn("agent", cmd, "", &log).unwrap_or_else(|e| panic!("{e}"));
        let mut addr = None;
        wait_until(Duration::from_secs(20), || {
            addr = listening_addr(&server.log_text());
            addr.is_some() || !server.alive()
        });
        let Some(addr) = addr else {
            panic!("agent did not start listening; log:\n{}", server.log_text());
        };
        server.set_addr(addr.clone());
        if let Err(e) = server.wait_ready("/readyz", Duration::from_secs(20)) {
            panic!("{e}");
        }
        Agent {
            server,
            addr,
            log,
            _dir: dir,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.server.pid()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        self.server.alive()
    }

    /// `GET path`: status and body text.
    pub fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http("GET", &self.addr, path, &[], b"")
    }

    /// `GET path` with `headers`, the whole response as sent.
    pub fn request(&self, path: &str, headers: &[(&str, &str)]) -> std::io::Result<Response> {
        request("GET", &self.addr, path, headers, b"")
    }

    /// `POST path` without a body: status and body text.
    pub fn post(&self, path: &str) -> std::io::Result<(u16, String)> {
        http("POST", &self.addr, path, &[], b"")
    }

    /// `/metrics`, asserting a 200.
    pub fn metrics(&self) -> String {
        let (status, body) = self.get("/metrics").expect("GET /metrics");
        assert_eq!(status, 200, "GET /metrics: {body}");
        body
    }

    /// Everything the agent logged so far.
    pub fn log_text(&self) -> String {
        self.server.log_text()
    }

    /// Sends a signal by name (`HUP`, `TERM`, ...).
    pub fn signal(&self, sig: &str) {
        self.server.signal(sig);
    }

    /// Waits up to `timeout` for the process to exit; its exit code, if it exited with one.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        self.server.wait_exit(timeout)
    }
}

/// The address from the agent's `listening addr=...` log line.
fn listening_addr(log: &str) -> Option<String> {
    log.lines()
        .find(|l| l.contains(" listening "))
        .and_then(|l| l.split("addr=").nth(1))
        .and_then(|a| a.split_whitespace().next())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_line() {
        let log = "2024-01-01T00:00:00Z INFO eos-agent starting\n\
                   2024-01-01T00:00:00Z INFO listening addr=127.0.0.1:40123 x=y\n";
        assert_eq!(listening_addr(log).as_deref(), Some("127.0.0.1:40123"));
        assert_eq!(listening_addr("INFO starting\n"), None);
    }

    #[test]
    fn one_module_on_the_others_off() {
        let built = ["node".to_string(), "containers".to_string()];
        assert_eq!(
            modules_section(&built, "node", "{enabled: true}"),
            "modules:\n  containers: {enabled: false}\n  node: {enabled: true}\n"
        );
        // A module the build lacks is still written, for the agent to reject.
        assert_eq!(
            modules_section(&built[1..], "node", "{enabled: true}"),
            "modules:\n  containers: {enabled: false}\n  node: {enabled: true}\n"
        );
    }

    #[test]
    fn workspace_root_holds_the_workspace() {
        let root = workspace_root();
        assert!(root.join("collectors/testkit/Cargo.toml").is_file());
        assert!(root.join("Cargo.toml").is_file());
    }
}
