//! Debian's blackbox_exporter (`prometheus-blackbox-exporter`), the oracle for the probe
//! module: [`Blackbox`], a running one with a given module file on a loopback port.

use crate::http::{request, url_encode, Response};
use crate::ports::free_port;
use crate::process::Server;
use crate::tempdir::TempDir;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Debian's blackbox_exporter.
pub const BLACKBOX_EXPORTER: &str = "/usr/bin/prometheus-blackbox-exporter";

/// A running blackbox_exporter, killed on drop.
pub struct Blackbox {
    _server: Server,
    /// Where it serves, `127.0.0.1:port`.
    pub addr: String,
    _dir: TempDir,
}

impl Blackbox {
    /// Starts blackbox_exporter with `config` (a blackbox.yml's text) and waits until it
    /// answers; an error says what is missing or why it did not start.
    pub fn start(config: &str) -> Result<Blackbox, String> {
        if !Path::new(BLACKBOX_EXPORTER).exists() {
            return Err(format!(
                "{BLACKBOX_EXPORTER} is missing: apt-get install -y prometheus-blackbox-exporter"
            ));
        }
        let dir = TempDir::try_new("blackbox")?;
        let cfg = dir.join("blackbox.yml");
        std::fs::write(&cfg, config).map_err(|e| format!("writing {}: {e}", cfg.display()))?;
        let addr = format!("127.0.0.1:{}", free_port()?);
        let mut cmd = Command::new(BLACKBOX_EXPORTER);
        cmd.arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--web.listen-address={addr}"));
        let log = dir.join("blackbox.log");
        let mut server = Server::spawn("blackbox_exporter", cmd, &addr, &log)?;
        server.wait_ready("/metrics", Duration::from_secs(20))?;
        Ok(Blackbox {
            _server: server,
            addr,
            _dir: dir,
        })
    }

    /// `GET /probe?target=..&module=..` with the given extra headers.
    pub fn probe(
        &self,
        target: &str,
        module: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<Response> {
        probe(&self.addr, target, module, headers)
    }
}

/// `GET /probe?target=..&module=..` against any server at `addr` (the agent or blackbox).
pub fn probe(
    addr: &str,
    target: &str,
    module: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<Response> {
    let path = format!(
        "/probe?target={}&module={}",
        url_encode(target),
        url_encode(module)
    );
    request("GET", addr, &path, headers, b"")
}
