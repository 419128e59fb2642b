//! The agent's own HTTP endpoints, as a person with `curl` or a browser meets them.

use eos_tests::{http, Agent};

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
    assert!(cfg.contains("# source: embedded default"), "{cfg}");
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
