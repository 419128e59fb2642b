//! Harness for the end-to-end tests: start the built `eos-agent` binary, talk HTTP to it, and
//! run a real Prometheus (Debian's `prometheus` package) against it.
//!
//! The tests start `target/debug/eos-agent` (or `$EOS_AGENT_BIN`). `cargo xtask ci` builds it
//! before running the tests; by hand, run `cargo build -p eos-agent` first.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The agent binary under test.
pub fn agent_bin() -> PathBuf {
    if let Ok(p) = std::env::var("EOS_AGENT_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("target"));
    let bin = target.join("debug").join("eos-agent");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p eos-agent` first (`cargo xtask ci` does)",
        bin.display()
    );
    bin
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding 127.0.0.1:0")
}

/// Polls `f` every 100 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A temporary directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "eos-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("creating a temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A plain HTTP/1.1 exchange; returns (status, body).
pub fn http(
    method: &str,
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Waits up to 20 s until `GET path` on `addr` answers 200 while `child` keeps running;
/// otherwise kills `child` and panics with `name` and the log at `log`.
fn wait_up(child: &mut Child, addr: &str, path: &str, name: &str, log: &Path) {
    let mut running = || matches!(child.try_wait(), Ok(None));
    let up = wait_until(Duration::from_secs(20), || {
        !running() || matches!(http("GET", addr, path, &[], b""), Ok((200, _)))
    }) && running();
    if !up {
        let _ = child.kill();
        panic!(
            "{name} did not come up; log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }
}

/// A running agent, killed on drop.
pub struct Agent {
    child: Child,
    pub addr: String,
    pub log: PathBuf,
    _dir: TempDir,
}

impl Agent {
    /// Starts the agent with `args` on a loopback port the kernel picks (no race with other
    /// tests for a "free" port), learns the port from the agent's `listening` log line, and
    /// waits for `/readyz` (config loaded and modules started).
    pub fn start(args: &[&str]) -> Agent {
        let dir = TempDir::new("agent");
        let log = dir.join("agent.log");
        let logf = std::fs::File::create(&log).expect("creating the agent log");
        let child = Command::new(agent_bin())
            .args(args)
            .arg("--web.listen-address=127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .expect("starting eos-agent");
        let mut agent = Agent {
            child,
            addr: String::new(),
            log,
            _dir: dir,
        };
        let mut addr = None;
        wait_until(Duration::from_secs(20), || {
            addr = listening_addr(&agent.log_text());
            addr.is_some() || !agent.alive()
        });
        match addr {
            Some(a) => agent.addr = a,
            None => {
                let _ = agent.child.kill();
                panic!("agent did not start listening; log:\n{}", agent.log_text());
            }
        }
        wait_up(
            &mut agent.child,
            &agent.addr,
            "/readyz",
            "agent",
            &agent.log,
        );
        agent
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn get(&self, path: &str) -> std::io::Result<(u16, String)> {
        http("GET", &self.addr, path, &[], b"")
    }

    pub fn post(&self, path: &str) -> std::io::Result<(u16, String)> {
        http("POST", &self.addr, path, &[], b"")
    }

    /// `/metrics`, asserting a 200.
    pub fn metrics(&self) -> String {
        let (status, body) = self.get("/metrics").expect("GET /metrics");
        assert_eq!(status, 200, "GET /metrics: {body}");
        body
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends a signal to the agent.
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .args([format!("-{sig}"), self.pid().to_string()])
            .status();
    }

    /// Waits for the process to exit and returns its exit code.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// The value of the first sample of `name` with all of `labels`, from a text exposition.
pub fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let parsed = eos_exposition::parse_text(metrics).ok()?;
    parsed
        .samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

/// Whether any sample's name starts with `prefix`.
pub fn has_family_prefix(metrics: &str, prefix: &str) -> bool {
    metrics
        .lines()
        .any(|l| !l.starts_with('#') && l.starts_with(prefix))
}

/// A real Prometheus server (Debian's `/usr/bin/prometheus`), killed on drop.
pub struct Prometheus {
    child: Child,
    pub addr: String,
    _dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (host:port) every second as job `eos`.
    pub fn start(targets: &[&str]) -> Prometheus {
        let bin = Path::new("/usr/bin/prometheus");
        assert!(
            bin.exists(),
            "/usr/bin/prometheus is missing: `apt-get install -y prometheus` (.ci/run does)"
        );
        let dir = TempDir::new("prometheus");
        let list = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let cfg = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
scrape_configs:\n  - job_name: eos\n    static_configs:\n      - targets: [{list}]\n"
        );
        let cfg_path = dir.join("prometheus.yml");
        std::fs::write(&cfg_path, cfg).expect("writing prometheus.yml");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("prometheus log");
        let child = Command::new(bin)
            .arg(format!("--config.file={}", cfg_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting prometheus");
        let mut p = Prometheus {
            child,
            addr,
            _dir: dir,
        };
        let ready = wait_until(Duration::from_secs(60), || {
            matches!(http("GET", &p.addr, "/-/ready", &[], b""), Ok((200, _)))
        });
        if !ready {
            let _ = p.child.kill();
            panic!("prometheus did not become ready");
        }
        p
    }

    /// Runs an instant query; returns the `data.result` array.
    pub fn query(&self, q: &str) -> Vec<serde_json::Value> {
        let path = format!("/api/v1/query?query={}", url_encode(q));
        let Ok((200, body)) = http("GET", &self.addr, &path, &[], b"") else {
            return Vec::new();
        };
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    /// The first result's value of an instant query, as f64.
    pub fn query_value(&self, q: &str) -> Option<f64> {
        let r = self.query(q);
        r.first()?["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn url_encode(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// The module names of the agent build under test, from the `modules in this build:` line of
/// `eos-agent --help`.
pub fn agent_modules() -> Vec<String> {
    let out = Command::new(agent_bin())
        .arg("--help")
        .output()
        .expect("running eos-agent --help");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("modules in this build:"))
        .expect("eos-agent --help has a `modules in this build:` line");
    line.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// An agent config with only `module` enabled (its defaults) and every other module off,
/// keeping state under `dir`.
pub fn single_module_config(module: &str, dir: &Path) -> String {
    let mut s = format!("state_dir: {}\nmodules:\n", dir.join("state").display());
    for m in agent_modules() {
        s.push_str(&format!("  {m}: {{enabled: {}}}\n", m == module));
    }
    s
}

/// Debian's node_exporter (`prometheus-node-exporter` 1.5), the oracle for the node module.
pub const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

/// Flags restoring upstream node_exporter 1.5's defaults where Debian's build changed them
/// (Debian also excludes `/run`, `/mnt`, `/media` mounts and the `lo` device, and reads
/// textfiles from `/var/lib/prometheus/node-exporter`). eos follows upstream, which is what
/// Kubernetes DaemonSets run.
pub const NODE_EXPORTER_UPSTREAM_DEFAULTS: &[&str] = &[
    "--collector.filesystem.mount-points-exclude=^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)",
    "--collector.netdev.device-exclude=",
    "--collector.textfile.directory=",
];

/// A running node_exporter on a free loopback port, killed on drop.
pub struct NodeExporter {
    child: Child,
    pub addr: String,
    _dir: TempDir,
}

impl NodeExporter {
    /// Starts node_exporter with [`NODE_EXPORTER_UPSTREAM_DEFAULTS`] and then `args` (e.g.
    /// `--collector.disable-defaults`), and waits until `/metrics` answers.
    pub fn start(args: &[String]) -> NodeExporter {
        assert!(
            Path::new(NODE_EXPORTER).exists(),
            "{NODE_EXPORTER} is missing: `apt-get install -y prometheus-node-exporter` (.ci/run does)"
        );
        let dir = TempDir::new("node-exporter");
        let addr = format!("127.0.0.1:{}", free_port());
        let log = dir.join("node_exporter.log");
        let logf = std::fs::File::create(&log).expect("creating the node_exporter log");
        let child = Command::new(NODE_EXPORTER)
            .args(NODE_EXPORTER_UPSTREAM_DEFAULTS)
            .args(args)
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .expect("starting node_exporter");
        let mut ne = NodeExporter {
            child,
            addr,
            _dir: dir,
        };
        wait_up(&mut ne.child, &ne.addr, "/metrics", "node_exporter", &log);
        ne
    }

    /// `/metrics`, asserting a 200.
    pub fn metrics(&self) -> String {
        let (status, body) = http("GET", &self.addr, "/metrics", &[], b"").expect("GET /metrics");
        assert_eq!(status, 200, "node_exporter GET /metrics: {body}");
        body
    }

    /// The collectors this node_exporter knows: the value-less `--collector.<name>` flags of
    /// its `--help`.
    pub fn known_collectors() -> Vec<String> {
        let out = Command::new(NODE_EXPORTER)
            .arg("--help")
            .output()
            .expect("running node_exporter --help");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("--collector."))
            .filter_map(|rest| rest.split_whitespace().next())
            .filter(|n| {
                !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            })
            .map(String::from)
            .collect()
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `promtool check metrics` (Debian's `prometheus` package) says about an exposition.
pub struct PromtoolReport {
    /// The exit code: 0 clean, 3 lint problems, anything else a parse failure.
    pub code: i32,
    /// Each problem line, `<metric> <what is wrong>`.
    pub problems: Vec<String>,
}

/// Runs `promtool check metrics` on `text`.
pub fn promtool_check_metrics(text: &str) -> PromtoolReport {
    let bin = Path::new("/usr/bin/promtool");
    assert!(
        bin.exists(),
        "/usr/bin/promtool is missing: `apt-get install -y prometheus` (.ci/run does)"
    );
    let mut child = Command::new(bin)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting promtool");
    let mut stdin = child.stdin.take().expect("promtool stdin");
    let input = text.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().expect("running promtool");
    let _ = writer.join();
    let mut all = String::from_utf8_lossy(&out.stdout).into_owned();
    all.push_str(&String::from_utf8_lossy(&out.stderr));
    PromtoolReport {
        code: out.status.code().unwrap_or(-1),
        problems: all
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect(),
    }
}
