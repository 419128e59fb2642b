//! The icmp prober: blackbox_exporter's `ProbeICMP`. One echo request to the resolved
//! address through the agent's shared ICMP service (`eos_icmp::Icmp`: a datagram socket
//! where `ping_group_range` allows it, else a raw one), waited for until the probe's
//! deadline.
//!
//! Metrics as upstream: `probe_icmp_duration_seconds{phase="resolve"|"setup"|"rtt"}` (all
//! three always present, 0 for a phase not reached) and `probe_icmp_reply_hop_limit` when
//! the reply's TTL / hop limit is known. The RTT comes from the kernel's receive timestamp.
//!
//! Differences from upstream, by design: the socket is shared and opened once, so `setup`
//! is about zero after the first probe; an ICMP error quoting the request (unreachable, time
//! exceeded) fails the probe at once with the error in the log, where upstream ignores it
//! and waits for the timeout; don't-fragment works on datagram sockets too.

use crate::prober::Probe;
use eos_icmp::{EchoOptions, IcmpError, ReplyKind};

const DURATION: &str = "probe_icmp_duration_seconds";
const DURATION_HELP: &str = "Duration of icmp request by phase";
const HOP_LIMIT: &str = "probe_icmp_reply_hop_limit";
const HOP_LIMIT_HELP: &str = "Replied packet hop limit (TTL for ipv4)";
/// Upstream's echo data when `payload_size` is 0: "Prometheus Blackbox Exporter", 28 bytes.
/// The same size keeps packets the size upstream sends (eos fills them with its own pattern).
const DEFAULT_PAYLOAD_SIZE: usize = 28;

/// Probes `p.target` (a host name or address) with one ICMP echo request.
pub async fn probe(p: &mut Probe<'_>) -> bool {
    for phase in ["resolve", "setup", "rtt"] {
        p.out
            .gauge_with(DURATION, DURATION_HELP, &[("phase", phase)], 0.0);
    }
    let cfg = &p.module.icmp;

    let Ok(dst) = p.resolve(p.target, cfg).await.map(|ip| ip.to_canonical()) else {
        return false;
    };
    let lookup = p
        .out
        .value("probe_dns_lookup_time_seconds", &[])
        .unwrap_or(0.0);
    p.out
        .gauge_add(DURATION, DURATION_HELP, &[("phase", "resolve")], lookup);

    let Ok(source) = p.source_address(&cfg.source_ip_address, "Using source address") else {
        return false;
    };
    // Validated to be at most 255; 0 leaves the system's default, as upstream.
    let ttl = match u8::try_from(cfg.ttl) {
        Ok(0) => None,
        Ok(t) => Some(t),
        Err(_) => {
            p.log
                .error("Invalid TTL", &[("ttl", &cfg.ttl), ("max", &255)]);
            return false;
        }
    };

    p.log.info("Creating socket", &[]);
    let Some(icmp) = p.env.icmp.as_ref() else {
        p.log.error(
            "Error listening to socket",
            &[(
                "err",
                &"this agent has no ICMP service (the probe module was started without it)",
            )],
        );
        return false;
    };
    let opts = EchoOptions {
        payload_size: if cfg.payload_size == 0 {
            DEFAULT_PAYLOAD_SIZE
        } else {
            cfg.payload_size
        },
        ttl,
        dont_fragment: cfg.dont_fragment,
        source,
        timeout: p.remaining(),
        deadline: Some(p.deadline),
        strays: None,
    };
    let pending = match icmp.send_echo(dst, &opts) {
        Ok(pending) => pending,
        Err(e @ IcmpError::Send { .. }) => {
            p.log.error("Error writing to socket", &[("err", &e)]);
            return false;
        }
        Err(e) => {
            p.log.error("Error listening to socket", &[("err", &e)]);
            return false;
        }
    };
    p.log.info(
        "Creating ICMP packet",
        &[
            ("seq", &pending.sequence()),
            ("id", &pending.identifier()),
            ("socket", &pending.socket_kind()),
        ],
    );
    p.out.gauge_add(
        DURATION,
        DURATION_HELP,
        &[("phase", "setup")],
        pending.setup().as_secs_f64(),
    );
    p.log.info("Writing out packet", &[]);
    p.log.info("Waiting for reply packets", &[]);
    let reply = match pending.wait().await {
        Ok(r) => r,
        Err(e @ IcmpError::Timeout { .. }) => {
            p.log.error("Timeout reading from socket", &[("err", &e)]);
            return false;
        }
        Err(e) => {
            p.log.error("Error reading from socket", &[("err", &e)]);
            return false;
        }
    };
    if reply.kind != ReplyKind::Echo {
        p.log.error(
            "Received an ICMP error instead of an echo reply",
            &[("reply", &reply)],
        );
        return false;
    }
    p.out.gauge_add(
        DURATION,
        DURATION_HELP,
        &[("phase", "rtt")],
        reply.rtt.as_secs_f64(),
    );
    match reply.hop_limit {
        Some(h) => p.out.gauge(HOP_LIMIT, HOP_LIMIT_HELP, f64::from(h)),
        None => p.log.debug(
            "Cannot get TTL from the received packet. 'probe_icmp_reply_hop_limit' will be missing.",
            &[],
        ),
    }
    p.log.info("Found matching reply packet", &[]);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allow::Allow;
    use crate::config::{AllowConfig, BlackboxModule, IcmpProbe};
    use crate::prober::testing::{self, Ran};
    use eos_icmp::Icmp;
    use eos_testkit::netns::{self, Chain, Link};
    use std::time::{Duration, Instant};

    async fn run_with(
        icmp_cfg: IcmpProbe,
        target: &str,
        timeout: Duration,
        allow: Allow,
        icmp: Option<Icmp>,
    ) -> Ran {
        let module = BlackboxModule {
            prober: "icmp".into(),
            icmp: icmp_cfg,
            ..BlackboxModule::default()
        };
        testing::run_in(&testing::env(allow, icmp), &module, target, timeout).await
    }

    async fn run(icmp_cfg: IcmpProbe, target: &str) -> Ran {
        run_with(
            icmp_cfg,
            target,
            Duration::from_secs(3),
            Allow::all(),
            Some(Icmp::default()),
        )
        .await
    }

    fn phase(r: &Ran, phase: &str) -> Option<f64> {
        r.out.value(DURATION, &[("phase", phase)])
    }

    fn icmp_unavailable() -> Option<String> {
        Icmp::default().open(false).err().map(|e| e.to_string())
    }

    #[tokio::test]
    async fn icmp_loopback_succeeds_with_every_phase() {
        if let Some(why) = icmp_unavailable() {
            eprintln!("skipping: {why}");
            return;
        }
        let r = run(IcmpProbe::default(), "127.0.0.1").await;
        assert!(r.success, "{}", r.log);
        let lookup = r.out.value("probe_dns_lookup_time_seconds", &[]).unwrap();
        assert_eq!(phase(&r, "resolve"), Some(lookup));
        assert!(phase(&r, "setup").unwrap() >= 0.0);
        let rtt = phase(&r, "rtt").unwrap();
        assert!(rtt > 0.0 && rtt < 3.0, "rtt {rtt}");
        assert_eq!(r.out.value(HOP_LIMIT, &[]), Some(64.0));
        assert_eq!(r.out.value("probe_ip_protocol", &[]), Some(4.0));
        for line in [
            "msg=\"Creating socket\"",
            "msg=\"Creating ICMP packet\" seq=",
            "msg=\"Writing out packet\"",
            "msg=\"Waiting for reply packets\"",
            "msg=\"Found matching reply packet\"",
        ] {
            assert!(r.log.contains(line), "{line}\n{}", r.log);
        }
        let text = r.out.text();
        assert!(
            text.contains("# HELP probe_icmp_duration_seconds Duration of icmp request by phase\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "# HELP probe_icmp_reply_hop_limit Replied packet hop limit (TTL for ipv4)\n"
            ),
            "{text}"
        );

        // A module's TTL, payload size and source address.
        let cfg = IcmpProbe {
            preferred_ip_protocol: "ip4".into(),
            ttl: 5,
            payload_size: 1200,
            source_ip_address: "127.0.0.1".into(),
            ..IcmpProbe::default()
        };
        let r = run(cfg, "localhost").await;
        assert!(r.success, "{}", r.log);
        assert!(
            r.log
                .contains("msg=\"Using source address\" srcIP=127.0.0.1"),
            "{}",
            r.log
        );
    }

    #[tokio::test]
    async fn icmp_ipv6_loopback() {
        if let Some(why) = icmp_unavailable() {
            eprintln!("skipping: {why}");
            return;
        }
        if let Err(e) = std::net::UdpSocket::bind("[::1]:0") {
            eprintln!("skipping: ::1 is not usable: {e}");
            return;
        }
        let r = run(IcmpProbe::default(), "::1").await;
        assert!(r.success, "{}", r.log);
        assert_eq!(r.out.value("probe_ip_protocol", &[]), Some(6.0));
        assert_eq!(r.out.value(HOP_LIMIT, &[]), Some(64.0));
    }

    #[tokio::test]
    async fn icmp_failures_before_sending() {
        let r = run_with(
            IcmpProbe::default(),
            "127.0.0.1",
            Duration::from_secs(1),
            Allow::all(),
            None,
        )
        .await;
        assert!(!r.success);
        assert!(
            r.log
                .contains("msg=\"Error listening to socket\" err=\"this agent has no ICMP service"),
            "{}",
            r.log
        );
        for ph in ["resolve", "setup", "rtt"] {
            assert!(phase(&r, ph).is_some(), "{ph}");
        }

        let r = run(
            IcmpProbe {
                source_ip_address: "nope".into(),
                ..IcmpProbe::default()
            },
            "127.0.0.1",
        )
        .await;
        assert!(!r.success);
        assert!(
            r.log
                .contains("msg=\"Error parsing source ip address\" srcIP=nope"),
            "{}",
            r.log
        );

        let r = run(IcmpProbe::default(), "no-such-host.invalid").await;
        assert!(!r.success);
        assert!(
            r.log.contains("msg=\"Error resolving address\""),
            "{}",
            r.log
        );
        assert_eq!(phase(&r, "rtt"), Some(0.0));

        let deny = Allow::new(&AllowConfig::default()).unwrap();
        let r = run_with(
            IcmpProbe::default(),
            "169.254.169.254",
            Duration::from_secs(1),
            deny,
            Some(Icmp::default()),
        )
        .await;
        assert!(!r.success);
        assert!(r.denied.is_some(), "{}", r.log);
        assert!(!r.log.contains("Creating socket"), "{}", r.log);
    }

    /// Runs a probe on a fresh runtime on a thread inside `ns` (where the ICMP socket opens).
    fn run_in(ns: &netns::Netns, target: &'static str, timeout: Duration) -> Ran {
        ns.run(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(run_with(
                    IcmpProbe::default(),
                    target,
                    timeout,
                    Allow::all(),
                    Some(Icmp::default()),
                ))
        })
        .expect("running in the namespace")
    }

    #[test]
    fn icmp_unanswered_fails_by_the_deadline() {
        if let Some(why) = netns::unavailable() {
            eprintln!("skipping: {why}");
            return;
        }
        let chain = match Chain::tagged("eos-probe-icmp", &[Link::Veth, Link::Veth]) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("skipping: cannot build the namespace chain: {e}");
                return;
            }
        };
        // 10.91.9.9 is blackholed by the router: nothing ever comes back.
        let started = Instant::now();
        let r = run_in(chain.client(), "10.91.9.9", Duration::from_millis(500));
        assert!(started.elapsed() < Duration::from_secs(5), "it returned");
        assert!(!r.success);
        assert!(
            r.log.contains("msg=\"Waiting for reply packets\""),
            "{}",
            r.log
        );
        assert!(
            r.log.contains("msg=\"Timeout reading from socket\""),
            "{}",
            r.log
        );
        assert_eq!(phase(&r, "rtt"), Some(0.0));
        assert!(phase(&r, "setup").is_some());
        assert_eq!(r.out.value(HOP_LIMIT, &[]), None);

        // 10.91.8.8 is rejected by the router: fails at once, saying why.
        let r = run_in(chain.client(), "10.91.8.8", Duration::from_secs(10));
        assert!(!r.success);
        assert!(
            r.log
                .contains("msg=\"Received an ICMP error instead of an echo reply\"")
                && r.log.contains("unreachable")
                && r.log.contains("from 10.91.1.1"),
            "{}",
            r.log
        );

        // Through the router: the reply's hop limit is one less.
        let r = run_in(chain.client(), "10.91.2.2", Duration::from_secs(3));
        assert!(r.success, "{}", r.log);
        assert_eq!(r.out.value(HOP_LIMIT, &[]), Some(63.0));
    }
}
