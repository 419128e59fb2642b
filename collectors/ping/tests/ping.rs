//! The ping module with real packets: loopback, and namespaces built with eos-testkit's
//! `netns` (root only: skipped with a message otherwise) with loss injected by iptables and
//! delay by a userspace delay link.

use eos_exposition::{parse_text, Parsed};
use eos_icmp::{Icmp, SocketKind};
use eos_module::{Facts, Health, Module, ModuleConfig, ModuleContext, ModuleDef, Service, Tasks};
use eos_ping::{PingConfig, PingModule};
use eos_testkit::netns::{self, Chain, Link};
use std::time::{Duration, Instant};

fn config(yaml: &str) -> PingConfig {
    let c: PingConfig = serde_yaml_ng::from_str(yaml).expect("config parses");
    c.validate().expect("config is valid");
    c
}

/// Starts the module with `icmp` as the agent's shared ICMP service. Must run inside a
/// Tokio runtime.
fn start(c: &PingConfig, icmp: Icmp) -> (Box<dyn Module>, Tasks) {
    let mut ctx = ModuleContext::standalone("ping", Facts::default());
    ctx.services.insert(Service::Icmp, icmp);
    let m = PingModule::start(c, &ctx).expect("module starts");
    (m, ctx.tasks)
}

fn scrape(m: &dyn Module) -> Parsed {
    let (text, _) = eos_module::collect_text(m, &[], Duration::from_secs(5));
    parse_text(&text).expect("valid exposition")
}

/// The value of `name` for the target `host`.
fn value(p: &Parsed, name: &str, host: &str) -> Option<f64> {
    p.samples
        .iter()
        .find(|s| s.name == name && s.labels.get("host").map(String::as_str) == Some(host))
        .map(|s| s.value)
}

fn has_ipv6_loopback() -> bool {
    std::net::UdpSocket::bind("[::1]:0").is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_histogram_counts_match_requests() {
    let mut hosts = vec!["127.0.0.1"];
    if has_ipv6_loopback() {
        hosts.push("::1");
    }
    let c = config(&format!(
        "enabled: true\ntargets: {hosts:?}\ninterval: 50ms\ntimeout: 500ms\nwindow: 10s"
    ));
    let (m, tasks) = start(&c, Icmp::default());
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let running = scrape(&*m);
    tasks.stop(Duration::from_secs(5)).await;
    let p = scrape(&*m);
    for host in hosts {
        let sent = value(&p, "smokeping_requests_total", host).unwrap();
        let got = value(&p, "smokeping_response_duration_seconds_count", host).unwrap();
        assert!(sent >= 30.0, "{host}: {sent} requests in 2 s at 50 ms");
        // the last request may have been in flight when the module stopped
        assert!(sent - got <= 1.0, "{host}: {sent} sent, {got} answered");
        let sum = value(&p, "smokeping_response_duration_seconds_sum", host).unwrap();
        assert!(sum / got < 0.005, "{host}: loopback mean RTT {}", sum / got);
        assert_eq!(
            value(&p, "smokeping_response_ttl", host),
            Some(64.0),
            "{host}"
        );
        assert_eq!(
            value(&running, "eos_ping_loss_ratio", host),
            Some(0.0),
            "{host}"
        );
        assert_eq!(value(&p, "eos_ping_late_replies_total", host), Some(0.0));
        assert_eq!(
            value(&p, "smokeping_response_duplicates_total", host),
            Some(0.0)
        );
        assert_eq!(value(&p, "smokeping_send_errors_total", host), Some(0.0));
        let jitter = value(&running, "eos_ping_rtt_jitter_seconds", host).unwrap();
        assert!((0.0..0.005).contains(&jitter), "{host}: jitter {jitter}");
    }
    assert_eq!(m.health(), Health::Up);
    let html = m.status_html().expect("graphs");
    assert_eq!(
        html.matches("<svg").count(),
        p.samples
            .iter()
            .filter(|s| s.name == "smokeping_requests_total")
            .count()
    );
}

/// Runs `f` on a thread in the client namespace of `chain` with a Tokio runtime, so that the
/// ICMP sockets the module opens belong to that namespace.
fn in_client<T: Send>(chain: &Chain, f: impl FnOnce() -> T + Send) -> T {
    chain
        .client()
        .run(f)
        .expect("entering the client namespace")
}

/// Opens the sockets of `icmp` from inside the client namespace.
fn icmp_in(chain: &Chain, v6: bool) -> Icmp {
    let icmp = Icmp::default();
    in_client(chain, || {
        icmp.open(false).expect("IPv4 ICMP socket");
        if v6 {
            icmp.open(true).expect("IPv6 ICMP socket");
        }
    });
    icmp
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn loss_ratio_matches_injected_loss() {
    if let Some(why) = netns::unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let chain = Chain::tagged("ping-loss", &[Link::Veth, Link::Veth]).expect("chain");
    // 30 % of the echo requests are dropped on their way into the target
    chain.set_loss(2, 0.3).expect("iptables statistic rule");
    let mut targets = vec![chain.target_addr(false).to_string()];
    if chain.v6 {
        targets.push(chain.target_addr(true).to_string());
    }
    let icmp = icmp_in(&chain, chain.v6);
    let c = config(&format!(
        "enabled: true\ntargets: {targets:?}\ninterval: 10ms\ntimeout: 300ms\nwindow: 6s"
    ));
    let rt = runtime();
    let (p, tasks) = rt.block_on(async {
        let (m, tasks) = start(&c, icmp);
        tokio::time::sleep(Duration::from_millis(6500)).await;
        (scrape(&*m), tasks)
    });
    rt.block_on(tasks.stop(Duration::from_secs(5)));
    for host in &targets {
        let loss = value(&p, "eos_ping_loss_ratio", host).unwrap();
        eprintln!("{host}: loss ratio {loss:.3} with 0.3 injected");
        // ~600 requests in the window: the standard deviation of the measured ratio is
        // sqrt(0.3 * 0.7 / 600) ≈ 0.019; 0.1 is five of them
        assert!(
            (loss - 0.3).abs() < 0.1,
            "{host}: loss ratio {loss}, 0.3 injected"
        );
        let sent = value(&p, "smokeping_requests_total", host).unwrap();
        let got = value(&p, "smokeping_response_duration_seconds_count", host).unwrap();
        let answered = got / sent;
        assert!(
            (answered - 0.7).abs() < 0.1,
            "{host}: {got} of {sent} answered"
        );
        assert_eq!(value(&p, "eos_ping_late_replies_total", host), Some(0.0));
    }
}

#[test]
fn delay_link_rtt_and_late_replies() {
    if let Some(why) = netns::delay_unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let one_way = Duration::from_millis(5);
    let chain = Chain::tagged("ping-delay", &[Link::Veth, Link::Delay(one_way)]).expect("chain");
    let host = chain.target_addr(false).to_string();
    let icmp = icmp_in(&chain, false);
    let rt = runtime();

    // RTT from kernel timestamps: twice the one-way delay, plus little
    let c = config(&format!(
        "enabled: true\ntargets: ['{host}']\ninterval: 20ms\ntimeout: 1s"
    ));
    let p = rt.block_on(async {
        let (m, tasks) = start(&c, icmp.clone());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        tasks.stop(Duration::from_secs(5)).await;
        scrape(&*m)
    });
    let count = value(&p, "smokeping_response_duration_seconds_count", &host).unwrap();
    let mean = value(&p, "smokeping_response_duration_seconds_sum", &host).unwrap() / count;
    let err = mean - 2.0 * one_way.as_secs_f64();
    eprintln!(
        "delay link 2 x {one_way:?}: {count} replies, mean RTT {mean:.6} s ({:.0} µs over)",
        err * 1e6
    );
    assert!(count >= 50.0, "{count} replies");
    assert!(
        (0.0..0.0015).contains(&err),
        "mean RTT {mean}: {err} s over twice the delay"
    );

    // a timeout shorter than the RTT: every reply is late, lost for the window, observed
    // in the histogram as smokeping_prober would
    chain
        .delay_link(2)
        .expect("delay link")
        .set_delay(Duration::from_millis(30));
    let c = config(&format!(
        "enabled: true\ntargets: ['{host}']\ninterval: 50ms\ntimeout: 20ms\nwindow: 10s"
    ));
    let p = rt.block_on(async {
        let (m, tasks) = start(&c, icmp.clone());
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let p = scrape(&*m);
        tasks.stop(Duration::from_secs(5)).await;
        p
    });
    let sent = value(&p, "smokeping_requests_total", &host).unwrap();
    let late = value(&p, "eos_ping_late_replies_total", &host).unwrap();
    let observed = value(&p, "smokeping_response_duration_seconds_count", &host).unwrap();
    assert!(sent >= 20.0, "{sent}");
    assert!(late >= sent - 2.0, "{late} of {sent} late");
    assert_eq!(observed, late, "late replies are observed in the histogram");
    assert_eq!(value(&p, "eos_ping_loss_ratio", &host), Some(1.0));
    let mean = value(&p, "smokeping_response_duration_seconds_sum", &host).unwrap() / observed;
    assert!(
        (0.060..0.063).contains(&mean),
        "late replies keep their real RTT: {mean}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_that_does_not_resolve_is_retried() {
    let c = config(
        "enabled: true\ntargets: [nowhere.invalid, localhost]\nnetwork: ip4\ninterval: 100ms\nresolve_interval: 1s",
    );
    let (m, tasks) = start(&c, Icmp::default());
    let end = Instant::now() + Duration::from_secs(20);
    let p = loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let p = scrape(&*m);
        let errors = value(&p, "eos_ping_resolve_errors_total", "nowhere.invalid").unwrap_or(0.0);
        let pinged =
            value(&p, "smokeping_response_duration_seconds_count", "localhost").unwrap_or(0.0);
        if errors >= 3.0 && pinged >= 5.0 {
            break p;
        }
        assert!(Instant::now() < end, "no retries or no pings after 20 s");
    };
    // the name that resolves is pinged at its address; the other has no series
    let lh = p
        .samples
        .iter()
        .find(|s| s.name == "smokeping_requests_total" && s.labels["host"] == "localhost")
        .unwrap();
    assert_eq!(lh.labels["ip"], "127.0.0.1");
    assert_eq!(
        value(&p, "smokeping_requests_total", "nowhere.invalid"),
        None
    );
    assert_eq!(
        value(&p, "eos_ping_resolve_errors_total", "localhost"),
        Some(0.0)
    );
    match m.health() {
        Health::Degraded(why) => assert!(why.contains("nowhere.invalid"), "{why}"),
        h => panic!("degraded expected, got {h:?}"),
    }
    assert!(tasks.failure().is_none());
    tasks.stop(Duration::from_secs(5)).await;
}

#[test]
fn start_fails_clearly_without_icmp_permission() {
    if let Some(why) = netns::unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    // a fresh namespace: ping_group_range allows no group, so no datagram ICMP socket
    let ns = netns::Netns::new("ping-perm").expect("namespace");
    ns.sysctl("net/ipv4/ping_group_range", "1 0")
        .expect("sysctl");
    let c = config("enabled: true\ntargets: ['127.0.0.1']");
    let err = ns
        .run(|| {
            let rt = runtime();
            let _in_rt = rt.enter();
            let mut ctx = ModuleContext::standalone("ping", Facts::default());
            ctx.services
                .insert(Service::Icmp, Icmp::with_kind(SocketKind::Datagram));
            PingModule::start(&c, &ctx)
                .err()
                .map(|e| (e.to_string(), e.is_retryable()))
        })
        .expect("in the namespace");
    let (msg, retryable) = err.expect("start fails");
    assert!(msg.starts_with("opening the IPv4 ICMP socket: "), "{msg}");
    assert!(
        msg.contains("ping_group_range"),
        "says what would allow it: {msg}"
    );
    assert!(retryable);
}

#[test]
fn hundreds_of_requests_timing_out_together() {
    if let Some(why) = netns::unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let chain = Chain::tagged("ping-many", &[Link::Veth, Link::Veth]).expect("chain");
    // 10.91.9.0/24 is blackholed by the router: 250 targets that never answer, all
    // due in the same few slots, and one that does
    let live = chain.target_addr(false).to_string();
    let mut targets: Vec<String> = (1..=250).map(|i| format!("10.91.9.{i}")).collect();
    targets.push(live.clone());
    let icmp = icmp_in(&chain, false);
    let c = config(&format!(
        "enabled: true\ntargets: {targets:?}\ninterval: 100ms\ntimeout: 50ms\nwindow: 10s"
    ));
    let rt = runtime();
    let p = rt.block_on(async {
        let (m, tasks) = start(&c, icmp);
        tokio::time::sleep(Duration::from_millis(2000)).await;
        let p = scrape(&*m);
        tasks.stop(Duration::from_secs(5)).await;
        p
    });
    for host in &targets[..250] {
        let sent = value(&p, "smokeping_requests_total", host).unwrap();
        assert!(sent >= 15.0, "{host}: {sent}");
        assert_eq!(value(&p, "eos_ping_loss_ratio", host), Some(1.0), "{host}");
        assert_eq!(
            value(&p, "smokeping_response_duration_seconds_count", host),
            Some(0.0)
        );
    }
    assert_eq!(value(&p, "eos_ping_loss_ratio", &live), Some(0.0));
    let got = value(&p, "smokeping_response_duration_seconds_count", &live).unwrap();
    assert!(got >= 15.0, "{got}");
}
