//! A real Prometheus server (Debian's `prometheus` package) on a loopback port, and its HTTP
//! API.

use crate::http::url_encode;
use crate::ports::free_port;
use crate::process::Server;
use crate::tempdir::TempDir;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Debian's Prometheus.
pub const PROMETHEUS: &str = "/usr/bin/prometheus";

/// A running Prometheus with its own storage, killed on drop.
pub struct Prometheus {
    server: Server,
    /// Where it serves, `127.0.0.1:port`.
    pub addr: String,
    _dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (host:port) every second as job `eos`; panics if it
    /// does not become ready (for tests).
    pub fn start(targets: &[&str]) -> Prometheus {
        let list = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let cfg = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
scrape_configs:\n  - job_name: eos\n    static_configs:\n      - targets: [{list}]\n"
        );
        Prometheus::with_config(&cfg).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts Prometheus with `config` (the text of a prometheus.yml) and waits up to 60 s
    /// until it is ready.
    pub fn with_config(config: &str) -> Result<Prometheus, String> {
        if !Path::new(PROMETHEUS).exists() {
            return Err(format!(
                "{PROMETHEUS} is missing: `apt-get install -y prometheus` (.ci/run does)"
            ));
        }
        let dir = TempDir::try_new("prometheus")?;
        let cfg_path = dir.join("prometheus.yml");
        std::fs::write(&cfg_path, config)
            .map_err(|e| format!("writing {}: {e}", cfg_path.display()))?;
        let addr = format!("127.0.0.1:{}", free_port()?);
        let mut cmd = Command::new(PROMETHEUS);
        cmd.arg(format!("--config.file={}", cfg_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"));
        let mut server = Server::spawn("prometheus", cmd, &addr, &dir.join("prometheus.log"))?;
        server.wait_ready("/-/ready", Duration::from_secs(60))?;
        Ok(Prometheus {
            server,
            addr,
            _dir: dir,
        })
    }

    /// `GET path` of the HTTP API; the JSON answer when the status is 200 and `"success"`.
    pub fn api(&self, path: &str) -> Result<serde_json::Value, String> {
        let r = self
            .server
            .get(path)
            .map_err(|e| format!("GET {path}: {e}"))?;
        let v: serde_json::Value = serde_json::from_slice(&r.body)
            .map_err(|e| format!("GET {path}: status {}, not JSON: {e}", r.status))?;
        if r.status != 200 || v.get("status").and_then(|s| s.as_str()) != Some("success") {
            return Err(format!("GET {path}: status {}: {v}", r.status));
        }
        Ok(v)
    }

    /// Runs an instant query; the `data.result` array.
    pub fn try_query(&self, q: &str) -> Result<Vec<serde_json::Value>, String> {
        let v = self.api(&format!("/api/v1/query?query={}", url_encode(q)))?;
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    /// [`Prometheus::try_query`], empty when the query fails (for polling in tests).
    pub fn query(&self, q: &str) -> Vec<serde_json::Value> {
        self.try_query(q).unwrap_or_default()
    }

    /// The first result's value of an instant query, as f64.
    pub fn query_value(&self, q: &str) -> Option<f64> {
        let r = self.query(q);
        r.first()?["value"][1].as_str()?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrapes_itself() {
        if !Path::new(PROMETHEUS).exists() {
            eprintln!("skipped: {PROMETHEUS} is not installed");
            return;
        }
        let prom = Prometheus::with_config(
            "global: {scrape_interval: 1s, scrape_timeout: 1s}\n\
             scrape_configs: [{job_name: self, static_configs: [{targets: ['localhost:1']}]}]\n",
        )
        .unwrap();
        assert_eq!(prom.query_value("vector(2)"), Some(2.0));
        assert!(prom.try_query("sum(").unwrap_err().contains("status 400"));
        assert!(prom.query("sum(").is_empty());
    }
}
