//! The agent's own HTTP endpoints, as a person with `curl` or a browser meets them, and what
//! a client that asks for too much gets: 403 for lifecycle endpoints that are off, 405 with
//! `Allow` for a wrong method, 431 for oversized headers; and the JSON log.

use eos_testkit::http::request;
use eos_tests::{agent_bin, http, wait_until, Agent, TempDir};
use std::io::{Read, Write};
use std::time::Duration;

#[test]
fn status_page_health_and_config() {
    let agent = Agent::start(&[]);

    let (status, page) = agent.get("/").expect("GET /");
    assert_eq!(status, 200);
    assert!(page.starts_with("<!doctype html>"), "{page}");
    for want in [
        "<h2>Modules</h2>",
        "embedded default",
        "successful",
        "/metrics",
    ] {
        assert!(page.contains(want), "status page lacks {want:?}:\n{page}");
    }
    let m = agent.metrics();
    for line in m
        .lines()
        .filter(|l| l.starts_with("eos_agent_module_enabled{"))
    {
        let module = line.split('"').nth(1).expect("module label");
        assert!(
            page.contains(&format!("<td>{module}</td>")),
            "{module} missing from /"
        );
    }

    assert_eq!(agent.get("/healthz").expect("healthz").0, 200);
    assert_eq!(agent.get("/readyz").expect("readyz").0, 200);
    let (status, cfg) = agent.get("/debug/config").expect("debug/config");
    assert_eq!(status, 200);
    assert!(
        cfg.starts_with("# effective config from embedded default"),
        "{cfg}"
    );
    // It is YAML that reads back as a config: check-config accepts it.
    let dir = TempDir::new("effective-config");
    let file = dir.join("effective.yaml");
    std::fs::write(&file, &cfg).expect("writing the effective config");
    let check = std::process::Command::new(agent_bin())
        .arg("check-config")
        .arg(&file)
        .output()
        .expect("check-config");
    assert!(
        check.status.success(),
        "{}\n{cfg}",
        String::from_utf8_lossy(&check.stderr)
    );
    // The harness asks for port 0: the config says so, the status page shows the real port.
    assert!(cfg.contains("listen_address: 127.0.0.1:0\n"), "{cfg}");
    assert!(page.contains(&format!("<td>{}</td>", agent.addr)), "{page}");
    // Every running module has a /debug/<name>/ index, its own or the agent's JSON view.
    let (status, body) = agent.get("/debug/node/").expect("debug/node");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"module\": \"node\""), "{body}");
    assert!(body.contains("\"up\": true"), "{body}");
    let (status, _) = agent.get("/no/such/page").expect("404");
    assert_eq!(status, 404);
}

#[test]
fn openmetrics_and_gzip_negotiation() {
    let agent = Agent::start(&[]);
    let (status, om) = http(
        "GET",
        &agent.addr,
        "/metrics",
        &[(
            "Accept",
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
        )],
        b"",
    )
    .expect("GET /metrics as OpenMetrics");
    assert_eq!(status, 200);
    assert!(om.ends_with("# EOF\n"), "OpenMetrics must end with # EOF");
    assert!(
        om.contains("# TYPE process_cpu_seconds counter\n"),
        "counter family name without _total"
    );
    assert!(om.contains("\nprocess_cpu_seconds_total "), "{om}");

    // gzip is negotiated: the body as sent starts with the gzip magic.
    let gz = agent
        .request("/metrics", &[("Accept-Encoding", "gzip")])
        .expect("GET /metrics with gzip");
    let head = gz.head.to_ascii_lowercase();
    assert!(head.contains("content-encoding: gzip"), "{head}");
    assert_eq!(&gz.body[..2], &[0x1f, 0x8b]);
}

#[test]
fn openmetrics_refused_with_q_0_gets_text() {
    let agent = Agent::start(&[]);
    for accept in [
        "application/openmetrics-text;q=0,text/plain;version=0.0.4",
        "application/openmetrics-text; version=1.0.0; q=0",
        "text/plain;q=0.5,application/openmetrics-text;q=0.4",
    ] {
        let r = agent
            .request("/metrics", &[("Accept", accept)])
            .expect("GET /metrics");
        assert_eq!(r.status, 200);
        let ct = r.header("content-type").unwrap_or_default();
        assert!(
            ct.starts_with("text/plain; version=0.0.4"),
            "{accept}: {ct}"
        );
        assert!(!r.text().ends_with("# EOF\n"), "{accept}: OpenMetrics sent");
    }
}

#[test]
fn reload_over_http_is_off_unless_the_lifecycle_flag_is_given() {
    let agent = Agent::start(&[]);
    for method in ["POST", "PUT"] {
        let (status, body) = http(method, &agent.addr, "/-/reload", &[], b"").expect("reload");
        assert_eq!(status, 403, "{method}");
        assert_eq!(body, "Lifecycle API is not enabled.", "Prometheus' words");
    }
    let r = request("GET", &agent.addr, "/-/reload", &[], b"").expect("GET /-/reload");
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("POST, PUT"));
    assert!(
        !agent.log_text().contains("config reload"),
        "a refused reload reads nothing and logs nothing:\n{}",
        agent.log_text()
    );

    let agent = Agent::start(&["--web.enable-lifecycle"]);
    let (status, body) = agent.post("/-/reload").expect("POST /-/reload");
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_wrong_method_on_a_known_path_is_405_with_allow() {
    let agent = Agent::start(&[]);
    let mut cases = vec![
        ("DELETE", "/metrics"),
        ("POST", "/"),
        ("PUT", "/healthz"),
        ("POST", "/debug/config"),
        // Module debug pages are read-only, whatever the module's handler does.
        ("DELETE", "/debug/node/"),
        ("POST", "/debug/node/"),
    ];
    if agent.get("/debug/containers/").is_ok_and(|(s, _)| s == 200) {
        cases.extend([
            ("DELETE", "/debug/containers/"),
            ("POST", "/debug/containers/"),
        ]);
    }
    for (method, path) in cases {
        let r = request(method, &agent.addr, path, &[], b"").expect("request");
        assert_eq!(r.status, 405, "{method} {path}: {}", r.text());
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method} {path}");
    }
    // HEAD works wherever GET does, without a body.
    let r = request("HEAD", &agent.addr, "/debug/node/", &[], b"").expect("HEAD");
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    // An unknown path stays 404, whatever the method.
    assert_eq!(
        http("DELETE", &agent.addr, "/no/such/page", &[], b"")
            .expect("DELETE")
            .0,
        404
    );
}

/// Sends `head` (a request without its final blank line) padded with one header of `pad`
/// bytes, and returns what came back before the server closed. Write errors are ignored: the
/// server may close before it has read everything.
fn send_raw(addr: &str, head: &str, pad: usize) -> String {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let req = format!("{head}X-Pad: {}\r\n\r\n", "a".repeat(pad));
    let _ = s.write_all(req.as_bytes());
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn oversized_headers_get_431() {
    let agent = Agent::start(&[]);
    let head = format!(
        "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        agent.addr
    );
    let got = send_raw(&agent.addr, &head, 64 * 1024);
    assert!(
        got.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
        "{got:?}"
    );
    // Headers of a usual size still work, on the same agent.
    let got = send_raw(&agent.addr, &head, 4 * 1024);
    assert!(got.starts_with("HTTP/1.1 200 OK\r\n"), "{got:?}");
}

#[test]
fn max_requests_is_honoured_without_refusing_one_scrape_at_a_time() {
    // One scrape at a time is allowed; each frees its place once sent, so scrapes one after
    // another all succeed. (Refusal itself is tested in the server's unit tests, where a
    // scrape can be held open without timing.)
    let agent = Agent::start(&["--web.max-requests=1"]);
    for _ in 0..5 {
        agent.metrics();
    }
    assert!(
        !agent.log_text().contains("no effect"),
        "{}",
        agent.log_text()
    );
}

#[test]
fn json_log_lines_are_json_objects() {
    let dir = TempDir::new("json-log");
    let log = dir.join("agent.log");
    let mut cmd = std::process::Command::new(agent_bin());
    cmd.args(["--log.format=json", "--web.listen-address=127.0.0.1:0"]);
    let mut server = eos_testkit::Server::spawn("agent", cmd, "", &log).expect("start the agent");
    let parse = |text: &str| -> Vec<serde_json::Value> {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    };
    let mut addr = None;
    wait_until(Duration::from_secs(20), || {
        addr = parse(&server.log_text())
            .iter()
            .find(|l| l["message"] == "listening")
            .and_then(|l| l["addr"].as_str().map(String::from));
        addr.is_some() || !server.alive()
    });
    let addr = addr.unwrap_or_else(|| panic!("no listening line; log:\n{}", server.log_text()));
    server.set_addr(addr);
    server
        .wait_ready("/readyz", Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    let lines = parse(&server.log_text());
    assert!(lines.len() >= 2, "{lines:?}");
    for l in &lines {
        assert!(l["timestamp"].is_string(), "{l}");
        assert!(
            ["DEBUG", "INFO", "WARN", "ERROR"].contains(&l["level"].as_str().unwrap_or("")),
            "{l}"
        );
        assert!(l["message"].is_string(), "{l}");
    }
    let starting = lines
        .iter()
        .find(|l| l["message"] == "eos-agent starting")
        .expect("a starting line");
    assert_eq!(starting["lifecycle"], false);
    assert_eq!(starting["max_requests"], 40);
}
