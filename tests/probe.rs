//! The probe module end to end: the agent's `/probe` against real local servers, side by
//! side with Debian's blackbox_exporter running the same module file, and scheduled probes
//! on `/metrics`.

use eos_testkit::blackbox::{probe, Blackbox};
use eos_testkit::site::{Reply, Site};
use eos_tests::{sample, wait_until, Agent, TempDir};
use std::collections::BTreeSet;
use std::time::Duration;

/// One module file for both sides.
const MODULES: &str = "
modules:
  http_2xx:
    prober: http
    timeout: 5s
  http_no_redirect:
    prober: http
    timeout: 5s
    http:
      follow_redirects: false
      valid_status_codes: [302]
  http_body:
    prober: http
    timeout: 5s
    http:
      fail_if_body_not_matches_regexp: ['healthy']
  tcp_connect:
    prober: tcp
    timeout: 5s
  icmp:
    prober: icmp
    timeout: 5s
  https_any_cert:
    prober: http
    timeout: 5s
    http:
      fail_if_not_ssl: true
      tls_config:
        insecure_skip_verify: true
";

/// `openssl s_server -www` with a fresh self-signed certificate valid for 30 days: a real
/// TLS server of known expiry. Killed on drop.
struct TlsServer {
    child: std::process::Child,
    addr: String,
    _dir: TempDir,
}

impl TlsServer {
    fn start() -> TlsServer {
        let dir = TempDir::new("tls-server");
        let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
        let made = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "30",
                "-subj",
                "/CN=probe.test/O=eos",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("running openssl req");
        assert!(
            made.status.success(),
            "{}",
            String::from_utf8_lossy(&made.stderr)
        );
        let port = eos_testkit::free_port().expect("port");
        let addr = format!("127.0.0.1:{port}");
        let child = std::process::Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept"])
            .arg(&addr)
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting openssl s_server");
        let up = wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(&addr).is_ok()
        });
        assert!(up, "openssl s_server did not listen on {addr}");
        TlsServer {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn site() -> Site {
    Site::start(|path| match path {
        "/" | "/ok" => Reply::ok("all healthy"),
        "/sick" => Reply::ok("database down"),
        "/missing" => Reply::Page(404, Vec::new(), "no".into()),
        "/hop" => Reply::Redirect("/ok".into()),
        "/loop" => Reply::Redirect("/loop".into()),
        "/metadata" => Reply::Redirect("http://169.254.169.254/latest/meta-data/".into()),
        "/silent" => Reply::Silence,
        _ => Reply::Page(404, Vec::new(), String::new()),
    })
}

/// An agent with only the probe module on, the shared module file, and `extra` probe keys.
fn agent(dir: &TempDir, extra: &str) -> Agent {
    let modules: String = MODULES
        .lines()
        .skip(2)
        .map(|l| format!("    {l}\n"))
        .collect();
    let cfg = dir.join("agent.yaml");
    std::fs::write(
        &cfg,
        format!(
            "state_dir: {}\nkubelet: {{enabled: false}}\nmodules:\n  node: {{enabled: false}}\n  containers: {{enabled: false}}\n  probe:\n    enabled: true\n    modules:\n{modules}{extra}",
            dir.join("state").display()
        ),
    )
    .expect("writing agent.yaml");
    Agent::start(&["--config", cfg.to_str().expect("utf-8 path")])
}

fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn probe_answers_as_blackbox_exporter_does() {
    let dir = TempDir::new("probe-e2e");
    let site = site();
    let agent = agent(&dir, "");
    let get =
        |target: &str, module: &str| probe(&agent.addr, target, module, &[]).expect("GET /probe");

    let r = get(&site.url("/ok"), "http_2xx");
    assert_eq!(r.status, 200, "{}", r.text());
    let m = r.text();
    assert_eq!(sample(&m, "probe_success", &[]), Some(1.0), "{m}");
    assert_eq!(sample(&m, "probe_http_status_code", &[]), Some(200.0));
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/plain"));

    // Unknown module, missing target: 400 with blackbox_exporter's words.
    let r = get(&site.url("/ok"), "nope");
    assert_eq!(
        (r.status, r.text().trim()),
        (400, "Unknown module \"nope\"")
    );
    let (status, body) = agent.get("/probe?module=http_2xx").expect("GET /probe");
    assert_eq!((status, body.trim()), (400, "Target parameter is missing"));

    // Failures are probe results, not error pages.
    for (target, why) in [
        ("http://no-such-host.invalid/", "unresolvable"),
        (site.url("/missing").as_str(), "404"),
        (site.url("/loop").as_str(), "redirect loop"),
    ] {
        let r = get(target, "http_2xx");
        assert_eq!(r.status, 200, "{why}");
        assert_eq!(
            sample(&r.text(), "probe_success", &[]),
            Some(0.0),
            "{why}: {}",
            r.text()
        );
    }
    let r = get(&site.url("/sick"), "http_body");
    assert_eq!(
        sample(&r.text(), "probe_failed_due_to_regex", &[]),
        Some(1.0)
    );
    let r = get(&site.url("/hop"), "http_no_redirect");
    assert_eq!(
        sample(&r.text(), "probe_success", &[]),
        Some(1.0),
        "{}",
        r.text()
    );
    assert_eq!(
        sample(&r.text(), "probe_http_status_code", &[]),
        Some(302.0)
    );

    // A target that never answers is bounded by Prometheus' scrape timeout.
    let r = probe(
        &agent.addr,
        &site.url("/silent"),
        "http_2xx",
        &[("X-Prometheus-Scrape-Timeout-Seconds", "2")],
    )
    .expect("GET /probe");
    assert_eq!(sample(&r.text(), "probe_success", &[]), Some(0.0));
    assert!(sample(&r.text(), "probe_duration_seconds", &[]).unwrap_or(9.0) < 5.0);

    // The allow list: a redirect to the cloud metadata address is refused with a reason.
    let r = get(&site.url("/metadata"), "http_2xx");
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("169.254.169.254"), "{}", r.text());
    let r = get("169.254.169.254:80", "tcp_connect");
    assert_eq!(r.status, 403);

    // debug=true: the log, the metrics and the module, as text.
    let path = format!(
        "/probe?target={}&module=http_2xx&debug=true",
        eos_testkit::http::url_encode(&site.url("/ok"))
    );
    let (status, text) = agent.get(&path).expect("debug");
    assert_eq!(status, 200);
    for part in [
        "Logs for the probe:",
        "Metrics that would have been returned:",
        "Module configuration:",
        "probe_success 1",
        "prober: http",
    ] {
        assert!(text.contains(part), "{part}: {text}");
    }

    // ICMP to the loopback address.
    let r = get("127.0.0.1", "icmp");
    assert_eq!(
        sample(&r.text(), "probe_success", &[]),
        Some(1.0),
        "{}",
        r.text()
    );

    let m = agent.metrics();
    assert!(
        sample(
            &m,
            "eos_probe_probes_total",
            &[
                ("module", "http_2xx"),
                ("result", "denied"),
                ("source", "request")
            ]
        ) >= Some(1.0),
        "{m}"
    );
}

/// The same module file and targets on both sides: the verdict, the status code and the
/// families agree, except where the README lists a difference.
#[test]
fn parity_with_blackbox_exporter() {
    let bb = match Blackbox::start(MODULES) {
        Ok(b) => b,
        Err(e) => panic!("{e} (.ci/run installs it)"),
    };
    let dir = TempDir::new("probe-parity");
    let site = site();
    let agent = agent(&dir, "");
    // Families blackbox_exporter 0.23 (Debian) and eos differ on, each with its reason:
    // eos follows the current release and adds one of its own.
    let only_eos: BTreeSet<&str> = [
        "probe_tcp_connect_duration_seconds", // eos: the connect phase blackbox lacks
        "probe_tls_cipher_info",              // added to blackbox after 0.23; eos follows current
    ]
    .into();
    let tls = TlsServer::start();
    for (target, module) in [
        (site.url("/ok"), "http_2xx"),
        (site.url("/missing"), "http_2xx"),
        (site.url("/hop"), "http_2xx"),
        (site.url("/hop"), "http_no_redirect"),
        (site.url("/sick"), "http_body"),
        (site.addr().to_string(), "tcp_connect"),
        ("127.0.0.1:1".to_string(), "tcp_connect"),
        ("127.0.0.1".to_string(), "icmp"),
        (format!("https://{}/", tls.addr), "https_any_cert"),
    ] {
        let theirs = bb
            .probe(&target, module, &[])
            .expect("blackbox /probe")
            .text();
        let ours = probe(&agent.addr, &target, module, &[])
            .expect("agent /probe")
            .text();
        for name in [
            "probe_success",
            "probe_http_status_code",
            "probe_http_redirects",
            "probe_failed_due_to_regex",
            "probe_ip_protocol",
            "probe_http_ssl",
            "probe_ssl_earliest_cert_expiry",
            "probe_ssl_last_chain_expiry_timestamp_seconds",
        ] {
            assert_eq!(
                sample(&ours, name, &[]),
                sample(&theirs, name, &[]),
                "{module} {target}: {name}\nours:\n{ours}\ntheirs:\n{theirs}"
            );
        }
        if module == "https_any_cert" {
            assert_eq!(sample(&ours, "probe_success", &[]), Some(1.0), "{ours}");
            let expiry = sample(&ours, "probe_ssl_earliest_cert_expiry", &[]).unwrap_or(0.0);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            let days = (expiry - now) / 86_400.0;
            assert!((29.0..=30.1).contains(&days), "expires in {days} days");
        }
        let (fo, ft) = (families(&ours), families(&theirs));
        let extra: Vec<&String> = fo
            .difference(&ft)
            .filter(|f| !only_eos.contains(f.as_str()))
            .collect();
        let missing: Vec<&String> = ft.difference(&fo).collect();
        assert!(
            extra.is_empty() && missing.is_empty(),
            "{module} {target}: eos only {extra:?}, blackbox only {missing:?}"
        );
    }
}

#[test]
fn scheduled_probes_are_on_metrics_with_target_labels() {
    let dir = TempDir::new("probe-schedule");
    let site = site();
    let extra = format!(
        "    targets:\n      - {{target: '{}', module: http_2xx, interval: 1s, labels: {{team: web}}}}\n      - {{target: '{}', module: http_2xx, interval: 1s}}\n",
        site.url("/ok"),
        site.url("/missing")
    );
    let agent = agent(&dir, &extra);
    let ok = wait_until(Duration::from_secs(20), || {
        let m = agent.metrics();
        sample(
            &m,
            "probe_success",
            &[
                ("target", &site.url("/ok")),
                ("module", "http_2xx"),
                ("team", "web"),
            ],
        ) == Some(1.0)
            && sample(&m, "probe_success", &[("target", &site.url("/missing"))]) == Some(0.0)
    });
    assert!(ok, "{}", agent.metrics());
    let (_, page) = agent.get("/debug/probe/").expect("debug page");
    assert!(
        page.contains("FAILED") && page.contains("/missing"),
        "{page}"
    );
    let report = eos_tests::promtool_check_metrics(&agent.metrics());
    assert!(
        report.code == 0 || report.code == 3,
        "{:?}",
        report.problems
    );
}

/// Service discovery against a recorded API answer (no API server can run here): an
/// annotated Service becomes a scheduled target with its labels.
#[test]
fn annotated_services_become_scheduled_targets() {
    const SERVICES: &str = r#"{"kind":"ServiceList","apiVersion":"v1","items":[
      {"metadata":{"name":"web","namespace":"shop","annotations":{"eos.io/probe":"http_2xx","eos.io/probe-path":"/healthz"}},
       "spec":{"ports":[{"name":"http","port":8080}]}},
      {"metadata":{"name":"quiet","namespace":"shop"},"spec":{"ports":[{"port":80}]}}]}"#;
    let api = Site::start(|path| match path {
        "/api/v1/services" => Reply::ok(SERVICES),
        _ => Reply::Page(404, Vec::new(), String::new()),
    });
    let dir = TempDir::new("probe-discovery");
    let extra = format!(
        "    discovery: {{enabled: true, api_server: '{}', token_file: '', interval: 1s, probe_interval: 1s}}\n",
        api.url("")
    );
    let agent = agent(&dir, &extra);
    let target = "http://web.shop.svc:8080/healthz";
    let found = wait_until(Duration::from_secs(20), || {
        let m = agent.metrics();
        sample(
            &m,
            "probe_success",
            &[
                ("target", target),
                ("service", "web"),
                ("service_namespace", "shop"),
            ],
        )
        .is_some()
    });
    assert!(found, "{}", agent.metrics());
    let (_, status) = agent.get("/").expect("status page");
    assert!(status.contains("1 targets from Services"), "{status}");
}
