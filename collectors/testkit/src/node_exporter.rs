//! Debian's node_exporter (`prometheus-node-exporter` 1.5), the oracle for the node module:
//! its path, the flags that restore upstream defaults, the collectors it knows, and
//! [`NodeExporter`], a running one on a loopback port.

use crate::http::http;
use crate::ports::free_port;
use crate::process::Server;
use crate::tempdir::TempDir;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Debian's node_exporter.
pub const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

/// Flags restoring upstream node_exporter 1.5's defaults where Debian's build changed them
/// (Debian also excludes `/run`, `/mnt`, `/media` mounts and the `lo` device, and reads
/// textfiles from `/var/lib/prometheus/node-exporter`). eos follows upstream, which is what
/// Kubernetes DaemonSets run, so both sides see the same devices.
pub const UPSTREAM_DEFAULTS: &[&str] = &[
    "--collector.filesystem.mount-points-exclude=^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)",
    "--collector.netdev.device-exclude=",
    "--collector.textfile.directory=",
];

/// A running node_exporter on a free loopback port, killed on drop.
pub struct NodeExporter {
    _server: Server,
    /// Where it serves, `127.0.0.1:port`.
    pub addr: String,
    _dir: TempDir,
}

impl NodeExporter {
    /// Starts node_exporter with [`UPSTREAM_DEFAULTS`] and then `args` (e.g.
    /// `--collector.disable-defaults`), and waits until `/metrics` answers; panics if it does
    /// not within 20 s (for tests).
    pub fn start(args: &[String]) -> NodeExporter {
        assert!(
            Path::new(NODE_EXPORTER).exists(),
            "{NODE_EXPORTER} is missing: `apt-get install -y prometheus-node-exporter` (.ci/run does)"
        );
        let dir = TempDir::new("node-exporter");
        let addr = format!(
            "127.0.0.1:{}",
            free_port().unwrap_or_else(|e| panic!("{e}"))
        );
        let mut cmd = Command::new(NODE_EXPORTER);
        cmd.args(UPSTREAM_DEFAULTS)
            .args(args)
            .arg(format!("--web.listen-address={addr}"));
        let log = dir.join("node_exporter.log");
        let mut server =
            Server::spawn("node_exporter", cmd, &addr, &log).unwrap_or_else(|e| panic!("{e}"));
        if let Err(e) = server.wait_ready("/metrics", Duration::from_secs(20)) {
            panic!("{e}");
        }
        NodeExporter {
            _server: server,
            addr,
            _dir: dir,
        }
    }

    /// `/metrics`, asserting a 200.
    pub fn metrics(&self) -> String {
        let (status, body) = http("GET", &self.addr, "/metrics", &[], b"").expect("GET /metrics");
        assert_eq!(status, 200, "node_exporter GET /metrics: {body}");
        body
    }
}

/// The collectors this node_exporter knows, from its `--help`; an error when it lists none.
pub fn known_collectors() -> Result<Vec<String>, String> {
    let out = Command::new(NODE_EXPORTER)
        .arg("--help")
        .output()
        .map_err(|e| format!("running {NODE_EXPORTER} --help: {e}"))?;
    // kingpin prints help on stderr.
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let names = collectors_from_help(&text);
    if names.is_empty() {
        return Err(format!(
            "{NODE_EXPORTER} --help lists no --collector.<name> flags"
        ));
    }
    Ok(names)
}

/// Collector names from node_exporter's help: the `--collector.<name>` flags without a value.
pub fn collectors_from_help(help: &str) -> Vec<String> {
    help.lines()
        .filter_map(|l| l.trim().strip_prefix("--collector."))
        .filter_map(|rest| rest.split_whitespace().next())
        .filter(|name| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        })
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collectors_in_help() {
        let help = "  --collector.arp.device-include=X  \n\
                    \x20     --collector.arp            Enable the arp collector\n\
                    \x20     --collector.cpu.guest      Enables metric\n\
                    \x20     --collector.netclass_rtnl.with-stats\n\
                    \x20     --collector.thermal_zone   Enable the thermal_zone collector\n\
                    \x20     --collector.disable-defaults  Set all collectors to disabled\n\
                    \x20     --collector.";
        assert_eq!(
            collectors_from_help(help),
            vec!["arp".to_string(), "thermal_zone".to_string()]
        );
        assert!(collectors_from_help("").is_empty());
    }
}
