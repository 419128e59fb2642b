//! Traces over real paths: `client ─ r1 ─5ms─ r2 ─5ms─ r3 ─ target` in network namespaces
//! (root, iproute2 and /dev/net/tun; skipped with a reason otherwise), with ICMP, UDP and TCP
//! probes, checked against the topology and against Debian's `mtr` run on the same path.

use eos_module::http::Request;
use eos_module::{ModuleContext, ModuleDef, ProbeEvents, ProbeFailure, Service};
use eos_mtr::{MtrConfig, MtrModule, OnProbeFailure, Protocol, Report, Target, Tracer};
use eos_testkit::netns::{Chain, Link};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const DELAY: Duration = Duration::from_millis(5);

/// `client ─ r1 ─5ms─ r2 ─5ms─ r3 ─ target`, or `None` (with the reason printed).
fn chain_or_skip(tag: &str) -> Option<Chain> {
    let d = Link::Delay(DELAY);
    Chain::tagged_or_skip(tag, &[Link::Veth, d, d, Link::Veth])
}

/// Fast rounds: the routers of a [`Chain`] do not rate-limit their ICMP errors.
fn fast(count: u32) -> MtrConfig {
    MtrConfig {
        count,
        max_count: 1000,
        probe_interval: eos_module::Duration::from_millis(20),
        timeout: eos_module::Duration::from_millis(1000),
        max_hops: 12,
        ..MtrConfig::default()
    }
}

fn trace_in(chain: &Chain, dst: IpAddr, cfg: &MtrConfig) -> Report {
    let cfg = cfg.clone();
    chain.client().block_on(move || async move {
        let tracer = Tracer::from_config(&cfg, eos_icmp::Icmp::default());
        tracer
            .trace(&dst.to_string(), &cfg.trace_options(cfg.count))
            .await
            .expect("trace")
    })
}

fn ms(d: Option<Duration>) -> f64 {
    d.map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

/// Each hop's mean RTT is at least the delay links' round trip up to it, and not much more.
fn check_rtts(r: &Report) {
    let d = DELAY.as_secs_f64() * 1000.0;
    // Delay links between r1─r2 and r2─r3: hop 2 is one link away, hops 3 and 4 two.
    for (i, links) in [0.0, 1.0, 2.0, 2.0].into_iter().enumerate() {
        let mean = ms(r.hops[i].mean);
        let floor = 2.0 * d * links;
        assert!(
            mean >= floor && mean < floor + 20.0,
            "hop {}: mean {mean:.2} ms, expected {floor} to {} ms\n{}",
            i + 1,
            floor + 20.0,
            r.text("client")
        );
        assert!(ms(r.hops[i].best) >= floor, "hop {}", i + 1);
    }
}

#[test]
fn trace_finds_the_routers_in_order_with_their_delays() {
    let Some(chain) = chain_or_skip("eos-mtr-path") else {
        return;
    };
    let families: &[bool] = if chain.v6 { &[false, true] } else { &[false] };
    for &v6 in families {
        let r = trace_in(&chain, chain.target_addr(v6), &fast(10));
        eprintln!("{}", r.text("client"));
        let want: Vec<Option<IpAddr>> = chain.hops(v6).into_iter().map(Some).collect();
        assert_eq!(r.path(), want, "v6={v6}\n{}", r.text("client"));
        assert!(r.reached);
        assert_eq!(r.count, 10);
        for h in &r.hops {
            assert_eq!((h.sent, h.received), (10, 10), "v6={v6} hop {}", h.ttl);
        }
        check_rtts(&r);
    }
}

#[test]
fn loss_on_a_link_shows_from_that_hop_on() {
    let Some(chain) = chain_or_skip("eos-mtr-loss") else {
        return;
    };
    // 30% of what enters r2 from r1 is dropped: hops 2, 3 and 4 lose 30%, hop 1 nothing.
    chain.set_loss(2, 0.3).expect("loss");
    let r = trace_in(&chain, chain.target_addr(false), &fast(200));
    eprintln!("{}", r.text("client"));
    assert_eq!(r.hops.len(), 4, "{}", r.text("client"));
    assert_eq!(r.hops[0].loss_ratio(), 0.0);
    // 200 probes a hop: the standard deviation of the loss ratio is about 0.032.
    for h in &r.hops[1..] {
        let loss = h.loss_ratio();
        assert!((0.18..=0.42).contains(&loss), "hop {}: {loss}", h.ttl);
        assert_eq!(h.sent, 200);
    }
}

#[test]
fn silent_and_unreachable_destinations_keep_the_hops_seen() {
    let Some(chain) = chain_or_skip("eos-mtr-end") else {
        return;
    };
    let routers: Vec<Option<IpAddr>> = chain.hops(false)[..3].iter().copied().map(Some).collect();
    // Blackholed by r3: r1 and r2 answer, then nothing (r3's route lookup drops the probe
    // before its TTL is looked at, so not even the TTL-3 probe gets an answer).
    let cfg = MtrConfig {
        timeout: eos_module::Duration::from_millis(300),
        ..fast(3)
    };
    let r = trace_in(&chain, IpAddr::V4(Chain::SILENT4), &cfg);
    assert!(!r.reached);
    let mut seen = routers[..2].to_vec();
    seen.push(None);
    assert_eq!(r.path(), seen, "{}", r.text("client"));
    assert_eq!(r.count, 3);
    assert_eq!(r.hops[1].received, 3);
    // Rejected by r3: the path ends at r3's unreachable.
    let r = trace_in(&chain, IpAddr::V4(Chain::REJECT4), &cfg);
    assert!(!r.reached);
    assert_eq!(r.path(), routers, "{}", r.text("client"));
    // An unreachable route has its own rate limit (one a second, a burst of five), which
    // the first round (every TTL from 3 up gets one) uses up.
    assert!(r.hops[2].received >= 1);
}

/// `mtr -n -r -j -c N [flags]` inside the client namespace: its hop addresses and mean RTTs
/// (ms).
fn real_mtr(
    chain: &Chain,
    dst: IpAddr,
    count: u32,
    flags: &[&str],
) -> Option<(String, Vec<(String, f64)>)> {
    if std::process::Command::new("mtr")
        .arg("--version")
        .output()
        .is_err()
    {
        return None;
    }
    let c = count.to_string();
    let d = dst.to_string();
    let run = |json: bool| {
        let mut argv = vec!["mtr", "-n", "-r", "-c", &c, "-i", "0.1"];
        if json {
            argv.push("-j");
        }
        argv.extend_from_slice(flags);
        argv.push(&d);
        chain
            .client()
            .exec(&argv)
            .unwrap_or_else(|e| panic!("{}: {e}", argv.join(" ")))
    };
    let text = run(false);
    let json = run(true);
    let v: serde_json::Value = serde_json::from_str(&json).expect("mtr's JSON");
    let hubs = v["report"]["hubs"].as_array().expect("hubs").clone();
    let hops = hubs
        .iter()
        .map(|h| {
            (
                h["host"].as_str().unwrap_or_default().to_string(),
                h["Avg"].as_f64().unwrap_or(f64::NAN),
            )
        })
        .collect();
    Some((text, hops))
}

#[test]
fn same_hops_as_the_real_mtr() {
    let Some(chain) = chain_or_skip("eos-mtr-oracle") else {
        return;
    };
    let mut dsts = vec![chain.target_addr(false)];
    if chain.v6 {
        dsts.push(chain.target_addr(true));
    }
    // Not reached: both show r1, r2, then one silent hop.
    dsts.push(IpAddr::V4(Chain::SILENT4));
    for dst in dsts {
        let v6 = dst.is_ipv6();
        let cfg = MtrConfig {
            timeout: eos_module::Duration::from_millis(300),
            ..fast(10)
        };
        let ours = trace_in(&chain, dst, &cfg);
        let Some((text, theirs)) = real_mtr(&chain, dst, 10, &[]) else {
            eprintln!("skipping the comparison: no mtr");
            return;
        };
        eprintln!("eos-mtr:\n{}\nmtr:\n{text}", ours.text("client"));
        let our_hosts: Vec<String> = ours.hops.iter().map(|h| h.host()).collect();
        let their_hosts: Vec<String> = theirs.iter().map(|(h, _)| h.clone()).collect();
        assert_eq!(our_hosts, their_hosts, "v6={v6}");
        // Our JSON reads like mtr's.
        let j = ours.json("client");
        let hubs = j["report"]["hubs"].as_array().unwrap();
        for (h, (host, avg)) in hubs.iter().zip(&theirs) {
            assert_eq!(h["host"].as_str(), Some(host.as_str()));
            let a = h["Avg"].as_f64().unwrap();
            assert!(
                (a - avg).abs() < 10.0,
                "{host}: ours {a} ms, mtr's {avg} ms"
            );
            assert_eq!(h["Loss%"].as_f64() == Some(100.0), host == "???", "{host}");
        }
    }
}

/// The value of a sample line `name{labels} value` in exposition text.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn wait_for(m: &dyn eos_module::Module, series: &str, pred: impl Fn(f64) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (text, _) = eos_module::collect_text(m, &[], Duration::from_secs(1));
        if value(&text, series).is_some_and(&pred) {
            return text;
        }
        assert!(Instant::now() < deadline, "waiting for {series}:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_reroute_counts_as_a_path_change() {
    let Some(mut chain) = chain_or_skip("eos-mtr-reroute") else {
        return;
    };
    chain.add_detour(2).expect("detour");
    let chain = &chain;
    let t = chain.target_addr(false).to_string();
    let cfg = MtrConfig {
        enabled: true,
        targets: vec![Target {
            host: t.clone(),
            labels: [("site".to_string(), "lab".to_string())].into(),
        }],
        interval: eos_module::Duration::from_secs(1),
        timeout: eos_module::Duration::from_millis(300),
        ..fast(3)
    };
    let (first_tx, first_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        // The module runs on a thread in the client namespace; the reroute happens here.
        let module = s.spawn(move || {
            chain.client().block_on(move || async move {
                let ctx = ModuleContext::standalone("mtr", eos_module::Facts::default());
                let m = MtrModule::start(&cfg, &ctx).expect("start");
                let m = m.as_ref();
                let sel = format!("{{target=\"{t}\",site=\"lab\"}}");
                let reached = format!("eos_mtr_destination_reached{sel}");
                let text = wait_for(m, &reached, |v| v == 1.0).await;
                assert_eq!(value(&text, &format!("eos_mtr_hops{sel}")), Some(4.0), "{text}");
                let changes = format!("eos_mtr_path_changes_total{sel}");
                assert_eq!(value(&text, &changes), Some(0.0), "{text}");
                let hop2 = format!(
                    "eos_mtr_hop_rtt_seconds{{target=\"{t}\",hop=\"2\",address=\"10.91.2.1\",site=\"lab\"}}"
                );
                let rtt = value(&text, &hop2).unwrap_or_else(|| panic!("{hop2} in\n{text}"));
                assert!((0.010..0.030).contains(&rtt), "{rtt}");
                let loss = format!(
                    "eos_mtr_hop_loss_ratio{{target=\"{t}\",hop=\"4\",address=\"{t}\",site=\"lab\"}}"
                );
                assert_eq!(value(&text, &loss), Some(0.0), "{text}");
                let hash = value(&text, &format!("eos_mtr_path_hash{sel}")).expect("hash");
                first_tx.send(()).expect("signal");
                let text = wait_for(m, &changes, |v| v >= 1.0).await;
                assert_ne!(value(&text, &format!("eos_mtr_path_hash{sel}")), Some(hash));
                assert!(text.contains("address=\"10.91.102.1\""), "{text}");
                assert!(text.contains("address=\"10.91.152.1\""), "{text}");
                let cycles = format!("eos_mtr_cycles_total{{target=\"{t}\",result=\"reached\",site=\"lab\"}}");
                assert!(value(&text, &cycles).is_some_and(|v| v >= 2.0), "{text}");
                let status = m.status();
                assert!(status[0].1.contains("10.91.102.1"), "{status:?}");
                eprintln!("{text}");
                ctx.tasks.stop(Duration::from_secs(2)).await;
            })
        });
        if first_rx.recv_timeout(Duration::from_secs(30)).is_ok() {
            chain.take_detour().expect("reroute");
        }
        if let Err(p) = module.join() {
            std::panic::resume_unwind(p);
        }
    });
}

fn get(path_and_query: &[(&str, &str)]) -> Request {
    Request {
        path: "/".into(),
        query: path_and_query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Request::default()
    }
}

#[test]
fn debug_mtr_answers_with_a_report() {
    let Some(chain) = chain_or_skip("eos-mtr-debug") else {
        return;
    };
    let t = chain.target_addr(false).to_string();
    let hops: Vec<String> = chain.hops(false).iter().map(|h| h.to_string()).collect();
    let cfg = MtrConfig {
        enabled: true,
        max_concurrent_traces: 1,
        max_count: 20,
        ..fast(3)
    };
    chain.client().block_on(move || async move {
        let ctx = ModuleContext::standalone("mtr", eos_module::Facts::default());
        let m = MtrModule::start(&cfg, &ctx).expect("start");
        let r = m.handle(get(&[("target", &t), ("count", "5")])).await;
        let text = String::from_utf8(r.body).unwrap();
        assert_eq!(r.status, 200, "{text}");
        eprintln!("{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("Start: "), "{text}");
        assert!(
            lines[1].starts_with("HOST: localhost ")
                && lines[1].ends_with("Loss%   Snt   Last   Avg  Best  Wrst StDev"),
            "{text}"
        );
        assert_eq!(lines.len(), 2 + hops.len(), "{text}");
        for (i, (line, hop)) in lines[2..].iter().zip(&hops).enumerate() {
            let cols: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cols[0], format!("{}.|--", i + 1), "{line}");
            assert_eq!(cols[1], hop, "{line}");
            assert_eq!(cols[2], "0.0%", "{line}");
            assert_eq!(cols[3], "5", "{line}");
            assert_eq!(cols.len(), 9, "{line}");
        }
        let r = m
            .handle(get(&[("target", &t), ("count", "2"), ("format", "json")]))
            .await;
        assert_eq!(r.status, 200);
        assert_eq!(r.content_type, "application/json");
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(v["report"]["mtr"]["tests"], 2);
        assert_eq!(v["report"]["mtr"]["reached"], true);
        let hosts: Vec<&str> = v["report"]["hubs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["host"].as_str().unwrap())
            .collect();
        assert_eq!(hosts, hops);
        // Refusals.
        for (q, status, what) in [
            (
                vec![("target", "169.254.169.254")],
                403,
                "modules.mtr.allow.deny_cidrs",
            ),
            (
                vec![("target", t.as_str()), ("count", "0")],
                400,
                "must be 1 to 20",
            ),
            (
                vec![("target", t.as_str()), ("count", "21")],
                400,
                "must be 1 to 20",
            ),
            (
                vec![("target", t.as_str()), ("format", "xml")],
                400,
                "use text or json",
            ),
            (
                vec![("target", "no-such-host.invalid")],
                400,
                "resolving no-such-host.invalid",
            ),
        ] {
            let r = m.handle(get(&q)).await;
            let body = String::from_utf8(r.body).unwrap();
            assert_eq!(r.status, status, "{q:?}: {body}");
            assert!(body.contains(what), "{q:?}: {body}");
        }
        // One trace at a time: a second one while the first runs is refused.
        let silent = Chain::SILENT4.to_string();
        let slow = m.handle(get(&[("target", &silent), ("count", "3")]));
        let quick = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            m.handle(get(&[("target", &t)])).await
        };
        let (slow, quick) = tokio::join!(slow, quick);
        assert_eq!(slow.status, 200);
        let body = String::from_utf8(quick.body).unwrap();
        assert_eq!(quick.status, 429, "{body}");
        assert!(body.contains("max_concurrent_traces"), "{body}");
        // The index: settings, and no scheduled targets.
        let r = m.handle(get(&[])).await;
        let body = String::from_utf8(r.body).unwrap();
        assert!(body.contains("/debug/mtr?target=HOST"), "{body}");
        let (metrics, _) = eos_module::collect_text(m.as_ref(), &[], Duration::from_secs(1));
        assert_eq!(
            value(&metrics, "eos_mtr_on_demand_traces_total{result=\"ok\"}"),
            Some(3.0),
            "{metrics}"
        );
        assert_eq!(
            value(&metrics, "eos_mtr_on_demand_traces_total{result=\"busy\"}"),
            Some(1.0),
            "{metrics}"
        );
        ctx.tasks.stop(Duration::from_secs(2)).await;
    });
}

/// A TCP listener in the target namespace on one port for both families, accepting (and
/// closing) what comes, until dropped.
struct Listener {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Listener {
    fn start(chain: &Chain) -> Listener {
        let any = if chain.v6 { "[::]:0" } else { "0.0.0.0:0" };
        let l = chain
            .target()
            .run(move || std::net::TcpListener::bind(any))
            .expect("in the target")
            .expect("listen in the target");
        l.set_nonblocking(true).expect("non-blocking");
        let port = l.local_addr().expect("address").port();
        let (accepted, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (n, s) = (accepted.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok(_) => {
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Listener {
            port,
            accepted,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Lets the target answer port unreachable as fast as it is asked, as the chain's routers
/// answer time exceeded: Linux sends a destination one ICMP error a second (a burst of six)
/// by default, which fast rounds of UDP probes would show as loss at the last hop. (With the
/// module's default of a round a second, a real destination keeps up.)
fn answer_without_rate_limit(chain: &Chain) {
    let t = chain.target();
    t.sysctl("net/ipv4/icmp_ratemask", "0")
        .expect("icmp_ratemask");
    if chain.v6 {
        t.sysctl("net/ipv6/icmp/ratelimit", "0")
            .expect("icmpv6 ratelimit");
    }
}

fn with_protocol(cfg: MtrConfig, protocol: Protocol, port: Option<u16>) -> MtrConfig {
    MtrConfig {
        protocol,
        port,
        ..cfg
    }
}

#[test]
fn udp_and_tcp_traces_find_the_routers_in_order() {
    let Some(chain) = chain_or_skip("eos-mtr-l4") else {
        return;
    };
    answer_without_rate_limit(&chain);
    let listener = Listener::start(&chain);
    let closed = eos_testkit::free_port().expect("a free port");
    let families: &[bool] = if chain.v6 { &[false, true] } else { &[false] };
    for &v6 in families {
        let want: Vec<Option<IpAddr>> = chain.hops(v6).into_iter().map(Some).collect();
        for (protocol, port, what) in [
            (Protocol::Udp, None, "udp to 33434"),
            (Protocol::Tcp, Some(listener.port), "tcp to a listener"),
            (Protocol::Tcp, Some(closed), "tcp to a closed port"),
        ] {
            let before = listener.accepted.load(Ordering::Relaxed);
            let cfg = with_protocol(fast(10), protocol, port);
            let r = trace_in(&chain, chain.target_addr(v6), &cfg);
            eprintln!("{what}, v6={v6}:\n{}", r.text("client"));
            assert_eq!(r.protocol, protocol.as_str());
            assert_eq!(r.path(), want, "{what} v6={v6}\n{}", r.text("client"));
            assert!(r.reached, "{what} v6={v6}");
            for h in &r.hops {
                assert_eq!(
                    (h.sent, h.received),
                    (10, 10),
                    "{what} v6={v6} hop {}",
                    h.ttl
                );
            }
            check_rtts(&r);
            if port == Some(listener.port) {
                // Every round reached it at least once (rounds that start before the
                // destination's TTL is known reach it from every TTL beyond). The listener
                // takes the last ones from its queue within a few milliseconds.
                std::thread::sleep(Duration::from_millis(100));
                let accepted = listener.accepted.load(Ordering::Relaxed) - before;
                assert!(accepted >= 10, "{what} v6={v6}: {accepted} connections");
            }
        }
    }
}

#[test]
fn udp_and_tcp_same_hops_as_the_real_mtr() {
    let Some(chain) = chain_or_skip("eos-mtr-l4-oracle") else {
        return;
    };
    answer_without_rate_limit(&chain);
    let listener = Listener::start(&chain);
    let port = listener.port.to_string();
    let mut dsts = vec![chain.target_addr(false)];
    if chain.v6 {
        dsts.push(chain.target_addr(true));
    }
    for dst in dsts {
        for (protocol, flags) in [
            (Protocol::Udp, vec!["-u"]),
            (Protocol::Tcp, vec!["-T", "-P", port.as_str()]),
        ] {
            let tcp_port = (protocol == Protocol::Tcp).then_some(listener.port);
            let cfg = with_protocol(fast(10), protocol, tcp_port);
            let ours = trace_in(&chain, dst, &cfg);
            let Some((text, theirs)) = real_mtr(&chain, dst, 10, &flags) else {
                eprintln!("skipping the comparison: no mtr");
                return;
            };
            let what = format!("{} {dst}", flags.join(" "));
            eprintln!(
                "eos-mtr ({}):\n{}\nmtr {what}:\n{text}",
                protocol.as_str(),
                ours.text("client")
            );
            let our_hosts: Vec<String> = ours.hops.iter().map(|h| h.host()).collect();
            let their_hosts: Vec<String> = theirs.iter().map(|(h, _)| h.clone()).collect();
            assert_eq!(our_hosts, their_hosts, "{what}");
            for (h, (host, avg)) in ours.hops.iter().zip(&theirs) {
                let a = ms(h.mean);
                assert!(
                    (a - avg).abs() < 10.0,
                    "{what} {host}: ours {a} ms, mtr's {avg} ms"
                );
            }
        }
    }
}

/// The value of `eos_mtr_on_failure_traces_total{result}`.
fn on_failure(text: &str, result: &str) -> Option<f64> {
    value(
        text,
        &format!("eos_mtr_on_failure_traces_total{{result=\"{result}\"}}"),
    )
}

#[test]
fn a_failed_probe_gets_its_target_traced_once_per_interval() {
    let Some(chain) = chain_or_skip("eos-mtr-onfail") else {
        return;
    };
    let host = chain.target_addr(false).to_string();
    let cfg = MtrConfig {
        enabled: true,
        on_probe_failure: OnProbeFailure {
            enabled: true,
            min_interval: eos_module::Duration::from_secs(3600),
            max_concurrent: 1,
        },
        ..with_protocol(fast(2), Protocol::Udp, None)
    };
    chain.client().block_on(move || async move {
        let events = ProbeEvents::default();
        let mut ctx = ModuleContext::standalone("mtr", eos_module::Facts::default());
        ctx.services.insert(Service::ProbeEvents, events.clone());
        let m = MtrModule::start(&cfg, &ctx).expect("start");
        let m = m.as_ref();
        let failed = |host: &str| ProbeFailure {
            target: format!("{host}:443"),
            host: host.to_string(),
            module: "tcp_connect".into(),
            reason: "Error dialing TCP: err=\"connection refused\"".into(),
        };
        let (text, _) = eos_module::collect_text(m, &[], Duration::from_secs(1));
        assert_eq!(on_failure(&text, "traced"), Some(0.0), "{text}");
        let counted = |result: &'static str, n: f64| {
            let series = format!("eos_mtr_on_failure_traces_total{{result=\"{result}\"}}");
            async move { wait_for(m, &series, |v| v == n).await }
        };
        assert!(events.publish(failed(&host)), "the module listens");
        eprintln!("{}", counted("traced", 1.0).await);
        // Again within min_interval: skipped.
        events.publish(failed(&host));
        counted("skipped_rate_limit", 1.0).await;
        // One trace at a time: a silent host keeps the only slot for the timeout.
        events.publish(failed(&Chain::SILENT4.to_string()));
        events.publish(failed(&Chain::REJECT4.to_string()));
        counted("skipped_busy", 1.0).await;
        counted("traced", 2.0).await;
        // Denied by the allow list, or not resolvable: not traced.
        events.publish(failed("169.254.169.254"));
        counted("denied", 1.0).await;
        events.publish(failed("no-such-host.invalid"));
        let text = counted("error", 1.0).await;
        assert_eq!(on_failure(&text, "traced"), Some(2.0), "{text}");
        assert_eq!(on_failure(&text, "missed"), Some(0.0), "{text}");
        let r = m.handle(get(&[])).await;
        let body = String::from_utf8(r.body).unwrap();
        assert!(body.contains("udp probes to port 33434"), "{body}");
        assert!(
            body.contains("on probe failure: traced at most once per 3600s per host"),
            "{body}"
        );
        ctx.tasks.stop(Duration::from_secs(2)).await;
    });
}
