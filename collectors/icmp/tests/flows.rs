//! UDP and TCP probes with a TTL on real sockets: loopback, and `client ── r ── target` in
//! network namespaces (root and iproute2; skipped with a reason otherwise).

use eos_icmp::packet::ErrorKind;
use eos_icmp::{FlowAnswer, FlowReply, IcmpError, TcpFlow, TimestampSource, UdpFlow};
use eos_testkit::netns::{Chain, Link};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(2);
/// The router of `client ── r ── target`, towards the client, and the target.
const R4: Ipv4Addr = Ipv4Addr::new(10, 91, 1, 1);
const B4: Ipv4Addr = Ipv4Addr::new(10, 91, 2, 2);
const R6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x91, 1, 0, 0, 0, 0, 1);
const B6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x91, 2, 0, 0, 0, 0, 2);

fn closed_port() -> u16 {
    eos_testkit::free_port().expect("a free port")
}

fn v6_loopback_unusable() -> Option<String> {
    UdpSocket::bind("[::1]:0")
        .err()
        .map(|e| format!("::1 is not usable: {e}"))
}

fn port_unreachable(v6: bool) -> FlowAnswer {
    FlowAnswer::Icmp(ErrorKind::Unreachable {
        code: if v6 { 4 } else { 3 },
        mtu: None,
    })
}

const TIME_EXCEEDED: FlowAnswer = FlowAnswer::Icmp(ErrorKind::TimeExceeded { code: 0 });

fn chain_or_skip(tag: &str) -> Option<Chain> {
    Chain::tagged_or_skip(tag, &[Link::Veth, Link::Veth])
}

fn families(chain: &Chain) -> Vec<(IpAddr, IpAddr)> {
    let mut f = vec![(IpAddr::V4(R4), IpAddr::V4(B4))];
    if chain.v6 {
        f.push((IpAddr::V6(R6), IpAddr::V6(B6)));
    }
    f
}

#[tokio::test]
async fn udp_to_a_closed_loopback_port_is_port_unreachable() {
    let mut dsts = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
    match v6_loopback_unusable() {
        None => dsts.push(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        Some(why) => eprintln!("IPv6 part skipped: {why}"),
    }
    for dst in dsts {
        let flow = UdpFlow::open(SocketAddr::new(dst, closed_port()), None, 36).expect("open");
        assert_eq!(flow.local_addr().ip(), dst);
        for _ in 0..3 {
            let r = flow.probe(64, WAIT).await.expect("an answer");
            assert_eq!(r.answer, port_unreachable(dst.is_ipv6()), "{dst}");
            assert_eq!(r.from, dst);
            assert_eq!(r.timestamp_source, TimestampSource::Kernel);
            assert!(r.rtt < WAIT);
        }
    }
    // What cannot be a UDP flow.
    let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9);
    for (r, what) in [
        (UdpFlow::open(v4, None, 1), "payload must be 2 to"),
        (
            UdpFlow::open(v4, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)), 36),
            "not of the same IP version",
        ),
    ] {
        let e = r.expect_err(what).to_string();
        assert!(e.contains(what), "{e}");
    }
    let flow = UdpFlow::open(v4, None, 36).unwrap();
    assert!(matches!(
        flow.probe(0, WAIT).await,
        Err(IcmpError::Invalid(_))
    ));
}

#[test]
fn flows_need_a_runtime() {
    let v4 = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9);
    let e = UdpFlow::open(v4, None, 36).expect_err("no runtime");
    assert!(e.to_string().contains("Tokio runtime"), "{e}");
}

#[tokio::test]
async fn tcp_to_loopback_is_accepted_or_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let open = listener.local_addr().unwrap();
    let flow = TcpFlow::new(open, None).expect("flow");
    let r = flow.probe(64, WAIT).await.expect("SYN-ACK");
    assert_eq!(r.answer, FlowAnswer::Accepted);
    assert_eq!(r.from, open.ip());
    assert_eq!(
        r.timestamp_source,
        TimestampSource::Kernel,
        "the handshake's RTT"
    );
    assert!(r.rtt > Duration::ZERO && r.rtt < WAIT, "{:?}", r.rtt);
    // The connection was reset at once: what the listener accepts has nothing to read.
    let (mut c, _) = listener.accept().expect("accept");
    let mut b = [0u8; 1];
    let read = std::io::Read::read(&mut c, &mut b);
    assert!(
        matches!(read, Err(ref e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{read:?}"
    );
    let closed = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), closed_port());
    let r = TcpFlow::new(closed, None)
        .unwrap()
        .probe(64, WAIT)
        .await
        .expect("RST");
    assert_eq!(r.answer, FlowAnswer::Refused);
    assert_eq!(r.from, closed.ip());
}

/// Checks one answer: what and from whom.
fn check(r: Result<FlowReply, IcmpError>, answer: FlowAnswer, from: IpAddr, what: &str) {
    let r = r.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!((r.answer, r.from), (answer, from), "{what}");
    assert!(r.rtt < WAIT, "{what}: {:?}", r.rtt);
}

#[test]
fn udp_probes_find_the_router_and_the_destination() {
    let Some(chain) = chain_or_skip("eos-flow-udp") else {
        return;
    };
    for (router, target) in families(&chain) {
        let v6 = target.is_ipv6();
        // A socket at the target on one port: probes reaching it are received, not answered.
        let listening = chain
            .target()
            .run(move || UdpSocket::bind(SocketAddr::new(target, 0)))
            .expect("in the target")
            .expect("bind at the target");
        listening
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let heard = listening.local_addr().unwrap();
        let closed = closed_port();
        chain.client().block_on(move || async move {
            let flow = UdpFlow::open(SocketAddr::new(target, closed), None, 36).expect("open");
            // Every TTL at once on one socket: each answer goes to its own probe.
            let (t1, t2, t3, t1b) = tokio::join!(
                flow.probe(1, WAIT),
                flow.probe(2, WAIT),
                flow.probe(3, WAIT),
                flow.probe(1, WAIT),
            );
            check(t1, TIME_EXCEEDED, router, "ttl 1");
            check(t1b, TIME_EXCEEDED, router, "ttl 1 again");
            check(t2, port_unreachable(v6), target, "ttl 2");
            check(t3, port_unreachable(v6), target, "ttl 3");
            // Probes to a port where something listens get no answer.
            let open = UdpFlow::open(heard, None, 36).expect("open");
            for _ in 0..3 {
                let e = open.probe(4, Duration::from_millis(200)).await;
                assert!(matches!(e, Err(IcmpError::Timeout { .. })), "{e:?}");
            }
            // A silent destination (blackholed by the router).
            let silent = if v6 {
                IpAddr::V6(Chain::SILENT6)
            } else {
                IpAddr::V4(Chain::SILENT4)
            };
            let flow = UdpFlow::open(SocketAddr::new(silent, 33434), None, 36).expect("open");
            let e = flow.probe(5, Duration::from_millis(200)).await;
            assert!(matches!(e, Err(IcmpError::Timeout { .. })), "{e:?}");
        });
        // The fixed flow: every probe came from one source port, with its own sequence.
        let mut from = Vec::new();
        let mut seqs = Vec::new();
        let mut b = [0u8; 64];
        while let Ok((n, peer)) = listening.recv_from(&mut b) {
            assert_eq!(n, 36);
            from.push(peer);
            seqs.push(u16::from_be_bytes([b[0], b[1]]));
        }
        assert_eq!(from.len(), 3, "v6={v6}");
        assert!(from.iter().all(|p| *p == from[0]), "{from:?}");
        seqs.dedup();
        assert_eq!(seqs.len(), 3, "{seqs:?}");
    }
}

#[test]
fn tcp_probes_find_the_router_and_the_destination() {
    let Some(chain) = chain_or_skip("eos-flow-tcp") else {
        return;
    };
    for (router, target) in families(&chain) {
        let v6 = target.is_ipv6();
        let listener = chain
            .target()
            .run(move || TcpListener::bind(SocketAddr::new(target, 0)))
            .expect("in the target")
            .expect("listen at the target");
        let open = listener.local_addr().unwrap();
        let closed = SocketAddr::new(target, closed_port());
        let ports = chain.client().block_on(move || async move {
            let flow = TcpFlow::new(open, None).expect("flow");
            let (t1, t2, t3) = tokio::join!(
                flow.probe(1, WAIT),
                flow.probe(2, WAIT),
                flow.probe(3, WAIT)
            );
            check(t1, TIME_EXCEEDED, router, "ttl 1");
            check(t2, FlowAnswer::Accepted, target, "ttl 2");
            check(t3, FlowAnswer::Accepted, target, "ttl 3");
            // Later rounds (after a pause, as rounds have: a port rests for twice as long
            // as its last probe took): each TTL from the port it had.
            for _ in 0..2 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                check(flow.probe(1, WAIT).await, TIME_EXCEEDED, router, "ttl 1");
                check(
                    flow.probe(2, WAIT).await,
                    FlowAnswer::Accepted,
                    target,
                    "ttl 2",
                );
            }
            assert_eq!(flow.ports(1).len(), 1, "{:?}", flow.ports(1));
            assert_eq!(flow.ports(2).len(), 1, "{:?}", flow.ports(2));
            assert_ne!(flow.ports(1), flow.ports(2));
            let refused = TcpFlow::new(closed, None).expect("flow");
            check(
                refused.probe(2, WAIT).await,
                FlowAnswer::Refused,
                target,
                "closed port",
            );
            check(
                refused.probe(1, WAIT).await,
                TIME_EXCEEDED,
                router,
                "closed port, ttl 1",
            );
            flow.ports(2)
        });
        // What reached the listener: ttl 2 and 3 once, then ttl 2 twice from the same port.
        listener.set_nonblocking(true).unwrap();
        let mut peers = Vec::new();
        while let Ok((_, peer)) = listener.accept() {
            peers.push(peer.port());
        }
        assert_eq!(peers.len(), 4, "v6={v6}: {peers:?}");
        assert_eq!(
            peers.iter().filter(|p| **p == ports[0]).count(),
            3,
            "v6={v6}: ttl 2's port {ports:?} in {peers:?}"
        );
    }
}
