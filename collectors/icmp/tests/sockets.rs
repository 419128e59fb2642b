//! The ICMP service on real sockets: loopback, and network namespaces (root and iproute2;
//! skipped with a reason otherwise).

use eos_icmp::{
    packet, EchoOptions, Icmp, IcmpError, ReplyKind, SocketKind, Stray, StrayKind, Strays,
    TimestampSource,
};
use eos_testkit::netns::{self, Chain, Link, Netns};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn opts(timeout_ms: u64) -> EchoOptions {
    EchoOptions {
        timeout: Duration::from_millis(timeout_ms),
        ..EchoOptions::default()
    }
}

/// Why this process may not open any ICMP socket, if so.
fn icmp_unavailable() -> Option<String> {
    Icmp::default().open(false).err().map(|e| e.to_string())
}

macro_rules! skip_unless_icmp {
    () => {
        if let Some(why) = icmp_unavailable() {
            eprintln!("skipping: {why}");
            return;
        }
    };
}

fn v6_loopback_unusable() -> Option<String> {
    std::net::UdpSocket::bind("[::1]:0")
        .err()
        .map(|e| format!("::1 is not usable: {e}"))
}

/// The router of `chain_or_skip`'s `client ── r ── target`, towards the client.
const R4: Ipv4Addr = Ipv4Addr::new(10, 91, 1, 1);
/// The target.
const B4: Ipv4Addr = Ipv4Addr::new(10, 91, 2, 2);
/// The router's IPv6 address towards the client.
const R6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x91, 1, 0, 0, 0, 0, 1);
/// The target's IPv6 address.
const B6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x91, 2, 0, 0, 0, 0, 2);

fn chain_or_skip(tag: &str) -> Option<Chain> {
    Chain::tagged_or_skip(tag, &[Link::Veth, Link::Veth])
}

/// Lets datagram ICMP sockets be opened in `ns` (the default range excludes everyone).
fn allow_datagram(ns: &Netns) {
    ns.sysctl("net/ipv4/ping_group_range", "0 2147483647")
        .expect("ping_group_range");
}

#[tokio::test]
async fn echo_to_loopback_v4() {
    skip_unless_icmp!();
    let icmp = Icmp::default();
    assert_eq!(icmp.socket_kind(false), None, "lazy: nothing open yet");
    let r = icmp
        .echo(IpAddr::V4(Ipv4Addr::LOCALHOST), &opts(2000))
        .await
        .expect("echo 127.0.0.1");
    assert_eq!(r.kind, ReplyKind::Echo);
    assert_eq!(r.from, IpAddr::V4(Ipv4Addr::LOCALHOST));
    assert_eq!(
        r.hop_limit,
        Some(64),
        "loopback replies with the default TTL"
    );
    assert_eq!(r.timestamp_source, TimestampSource::Kernel);
    assert_eq!(r.size, 8 + eos_icmp::DEFAULT_PAYLOAD_SIZE);
    assert!(r.rtt < Duration::from_secs(2));
    assert!(matches!(icmp.socket_kind(false), Some("datagram" | "raw")));
    assert_eq!(icmp.socket_kind(true), None);
    // A TTL and a payload size of its own on the same socket.
    let r = icmp
        .echo(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            &EchoOptions {
                ttl: Some(3),
                payload_size: 1000,
                ..opts(2000)
            },
        )
        .await
        .expect("echo with ttl 3");
    assert_eq!(r.size, 1008);
}

#[tokio::test]
async fn echo_to_loopback_v6() {
    skip_unless_icmp!();
    if let Some(why) = v6_loopback_unusable() {
        eprintln!("skipping: {why}");
        return;
    }
    let icmp = Icmp::default();
    let r = icmp
        .echo(IpAddr::V6(Ipv6Addr::LOCALHOST), &opts(2000))
        .await
        .expect("echo ::1");
    assert_eq!(r.kind, ReplyKind::Echo);
    assert_eq!(r.from, IpAddr::V6(Ipv6Addr::LOCALHOST));
    assert_eq!(r.hop_limit, Some(64));
    assert_eq!(r.timestamp_source, TimestampSource::Kernel);
    assert!(icmp.socket_kind(true).is_some());
    // An IPv4-mapped destination is IPv4.
    let r = icmp
        .echo("::ffff:127.0.0.1".parse().unwrap(), &opts(2000))
        .await
        .expect("echo ::ffff:127.0.0.1");
    assert_eq!(r.from, IpAddr::V4(Ipv4Addr::LOCALHOST));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_echoes_share_one_socket() {
    skip_unless_icmp!();
    let icmp = Icmp::default();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..300u16 {
        let icmp = icmp.clone();
        set.spawn(async move {
            let dst = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % 3) as u8));
            icmp.echo(
                dst,
                &EchoOptions {
                    payload_size: usize::from(i % 64),
                    ..opts(5000)
                },
            )
            .await
            .map(|r| (r.identifier, r.sequence, r.from == dst))
        });
    }
    let mut seqs = std::collections::HashSet::new();
    let mut idents = std::collections::HashSet::new();
    while let Some(r) = set.join_next().await {
        let (ident, seq, from_dst) = r.expect("task").expect("echo");
        assert!(from_dst, "the reply came from where the request went");
        idents.insert(ident);
        assert!(seqs.insert(seq), "sequence {seq} given twice");
    }
    assert_eq!(seqs.len(), 300);
    assert_eq!(idents.len(), 1, "one socket, one identifier");
}

#[tokio::test]
async fn invalid_options_are_refused_before_sending() {
    let icmp = Icmp::default();
    let e = icmp
        .send_echo(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            &EchoOptions {
                source: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
                ..opts(100)
            },
        )
        .unwrap_err();
    assert!(matches!(e, IcmpError::Invalid(_)), "{e}");
    let e = icmp
        .send_echo(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            &EchoOptions {
                ttl: Some(0),
                ..opts(100)
            },
        )
        .unwrap_err();
    assert!(e.to_string().contains("TTL"), "{e}");
    let e = icmp
        .send_echo(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            &EchoOptions {
                payload_size: 70_000,
                ..opts(100)
            },
        )
        .unwrap_err();
    assert!(e.to_string().contains("payload size"), "{e}");
    assert_eq!(icmp.socket_kind(false), None, "nothing was opened");
}

/// Both kinds where the namespace allows them.
fn kinds(chain: &Chain) -> Vec<SocketKind> {
    allow_datagram(chain.client());
    vec![SocketKind::Raw, SocketKind::Datagram]
}

#[test]
fn unanswered_echo_times_out() {
    let Some(chain) = chain_or_skip("eos-icmp-timeout") else {
        return;
    };
    for kind in kinds(&chain) {
        let v6 = chain.v6;
        chain.client().block_on(|| async move {
            let icmp = Icmp::with_kind(kind);
            let started = std::time::Instant::now();
            let e = icmp
                .echo(IpAddr::V4(Chain::SILENT4), &opts(300))
                .await
                .unwrap_err();
            assert!(
                matches!(e, IcmpError::Timeout { dst, .. } if dst == IpAddr::V4(Chain::SILENT4)),
                "{kind}: {e}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{kind}: it returned"
            );
            if v6 {
                let e = icmp
                    .echo(IpAddr::V6(Chain::SILENT6), &opts(300))
                    .await
                    .unwrap_err();
                assert!(matches!(e, IcmpError::Timeout { .. }), "{kind} v6: {e}");
            }
            // A deadline ends the wait before a longer timeout.
            let deadline = std::time::Instant::now() + Duration::from_millis(200);
            let e = icmp
                .echo(
                    IpAddr::V4(Chain::SILENT4),
                    &EchoOptions {
                        deadline: Some(deadline),
                        ..opts(60_000)
                    },
                )
                .await
                .unwrap_err();
            match e {
                IcmpError::Timeout { timeout, .. } => {
                    assert!(timeout <= Duration::from_millis(200), "{timeout:?}")
                }
                other => panic!("{kind}: {other}"),
            }
            assert!(std::time::Instant::now() < deadline + Duration::from_secs(5));
            assert_eq!(icmp.socket_kind(false), Some(kind.as_str()));
        });
    }
}

#[test]
fn ttl_limited_probes_get_time_exceeded_from_the_router() {
    let Some(chain) = chain_or_skip("eos-icmp-ttl") else {
        return;
    };
    if !chain.v6 {
        eprintln!("IPv6 is not available in the namespaces: testing IPv4 only");
    }
    for kind in kinds(&chain) {
        let v6s: Vec<bool> = if chain.v6 {
            vec![false, true]
        } else {
            vec![false]
        };
        chain.client().block_on(|| async move {
            let icmp = Icmp::with_kind(kind);
            for v6 in v6s {
                let (r_addr, b_addr, reject) = if v6 {
                    (IpAddr::V6(R6), IpAddr::V6(B6), IpAddr::V6(Chain::REJECT6))
                } else {
                    (IpAddr::V4(R4), IpAddr::V4(B4), IpAddr::V4(Chain::REJECT4))
                };
                let what = format!("{kind} v6={v6}");
                // Neighbour discovery on the way may take a moment: the first echo waits.
                let r = icmp
                    .echo(b_addr, &opts(3000))
                    .await
                    .unwrap_or_else(|e| panic!("{what}: echo b: {e}"));
                assert_eq!(r.from, b_addr, "{what}");
                assert_eq!(r.hop_limit, Some(63), "{what}: one router on the way back");

                let r = icmp
                    .probe_ttl(b_addr, 1, &opts(2000))
                    .await
                    .unwrap_or_else(|e| panic!("{what}: ttl 1: {e}"));
                assert_eq!(r.kind, ReplyKind::TimeExceeded { code: 0 }, "{what}");
                assert_eq!(r.from, r_addr, "{what}: the router answers");
                assert_eq!(r.dst, b_addr, "{what}");

                let r = icmp
                    .probe_ttl(b_addr, 2, &opts(2000))
                    .await
                    .unwrap_or_else(|e| panic!("{what}: ttl 2: {e}"));
                assert_eq!(r.kind, ReplyKind::Echo, "{what}");
                assert_eq!(r.from, b_addr, "{what}");

                // echo() turns an ICMP error into an error, without waiting for the timeout.
                let started = std::time::Instant::now();
                match icmp.echo(reject, &opts(10_000)).await {
                    Err(IcmpError::ErrorReply(r)) => {
                        assert!(
                            matches!(r.kind, ReplyKind::Unreachable { .. }),
                            "{what}: {r}"
                        );
                        assert_eq!(r.from, r_addr, "{what}");
                    }
                    other => panic!("{what}: {other:?}"),
                }
                assert!(started.elapsed() < Duration::from_secs(5), "{what}");
            }
        });
    }
}

#[test]
fn source_address_and_dont_fragment() {
    let Some(chain) = chain_or_skip("eos-icmp-src") else {
        return;
    };
    for kind in kinds(&chain) {
        chain.client().block_on(|| async move {
            let icmp = Icmp::with_kind(kind);
            let b = IpAddr::V4(B4);
            let r = icmp
                .echo(
                    b,
                    &EchoOptions {
                        source: Some(IpAddr::V4(Chain::CLIENT4)),
                        ..opts(3000)
                    },
                )
                .await
                .unwrap_or_else(|e| panic!("{kind}: from a's address: {e}"));
            assert_eq!(r.from, b);
            let e = icmp
                .echo(
                    b,
                    &EchoOptions {
                        source: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))),
                        ..opts(1000)
                    },
                )
                .await
                .unwrap_err();
            assert!(
                e.to_string().contains("binding"),
                "{kind}: not a local address: {e}"
            );
            // 2000 bytes do not fit the veth's 1500 without fragments.
            let big = EchoOptions {
                payload_size: 2000,
                ..opts(3000)
            };
            icmp.echo(b, &big)
                .await
                .unwrap_or_else(|e| panic!("{kind}: fragmented: {e}"));
            let e = icmp
                .echo(
                    b,
                    &EchoOptions {
                        dont_fragment: true,
                        ..big
                    },
                )
                .await
                .unwrap_err();
            assert!(
                matches!(e, IcmpError::Send { .. }),
                "{kind}: DF and too big: {e}"
            );
        });
    }
}

/// A raw ICMP socket of the family (opened in the calling thread's namespace) that gives
/// up reading after 300 ms.
fn raw_listener(v6: bool) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    let (domain, proto) = if v6 {
        (libc::AF_INET6, libc::IPPROTO_ICMPV6)
    } else {
        (libc::AF_INET, libc::IPPROTO_ICMP)
    };
    // SAFETY: socket(2) with plain integers; the result is checked and owned below.
    let fd = unsafe { libc::socket(domain, libc::SOCK_RAW, proto) };
    assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 300_000,
    };
    // SAFETY: a timeval for SO_RCVTIMEO, with its size.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    // SAFETY: `fd` was just opened and is owned by nobody else.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

/// (sequence, checksum) of every echo request `fd` has received, until it times out.
fn echo_requests_seen(fd: &std::os::fd::OwnedFd, v6: bool) -> Vec<(u16, u16)> {
    use std::os::fd::AsRawFd;
    let mut seen = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        // SAFETY: reading into a buffer of its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n <= 0 {
            return seen;
        }
        let data = &buf[..n as usize];
        // IPv4 raw sockets read the IP header too.
        let icmp = if v6 {
            data
        } else {
            &data[usize::from(data[0] & 0x0f) * 4..]
        };
        let request = if v6 {
            packet::V6_ECHO_REQUEST
        } else {
            packet::V4_ECHO_REQUEST
        };
        if icmp.len() >= 8 && icmp[0] == request {
            seen.push((
                u16::from_be_bytes([icmp[6], icmp[7]]),
                u16::from_be_bytes([icmp[2], icmp[3]]),
            ));
        }
    }
}

#[test]
fn ttl_probes_keep_their_checksum_for_load_balancers() {
    let Some(chain) = chain_or_skip("eos-icmp-paris") else {
        return;
    };
    let families: Vec<bool> = if chain.v6 {
        vec![false, true]
    } else {
        vec![false]
    };
    for kind in kinds(&chain) {
        for &v6 in &families {
            let what = format!("{kind} v6={v6}");
            let b_addr = if v6 { IpAddr::V6(B6) } else { IpAddr::V4(B4) };
            let listener = chain
                .target()
                .run(move || raw_listener(v6))
                .expect("in the target");
            let sent: Vec<u16> = chain.client().block_on(|| async move {
                let icmp = Icmp::with_kind(kind);
                let mut seqs = Vec::new();
                for _ in 0..4 {
                    let r = icmp
                        .probe_ttl(b_addr, 2, &opts(2000))
                        .await
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    // The reply brings the flow word back and is matched.
                    assert_eq!(r.kind, ReplyKind::Echo, "{what}");
                    seqs.push(r.sequence);
                }
                // Plain echoes for comparison: their checksums follow the sequence.
                for _ in 0..2 {
                    let r = icmp.echo(b_addr, &opts(2000)).await.expect("echo");
                    seqs.push(r.sequence);
                }
                seqs
            });
            let seen = echo_requests_seen(&listener, v6);
            let checksums: Vec<u16> = sent
                .iter()
                .map(|s| {
                    seen.iter()
                        .find(|(q, _)| q == s)
                        .unwrap_or_else(|| panic!("{kind} v6={v6}: seq {s} in {seen:?}"))
                        .1
                })
                .collect();
            assert!(
                checksums[..4].iter().all(|c| *c == checksums[0]),
                "{kind} v6={v6}: {checksums:?}"
            );
            assert_ne!(checksums[4], checksums[5], "{kind} v6={v6}: plain echoes");
        }
    }
}

/// Sends a forged echo reply to `to` (from `to`, as loopback does), as if `to` answered.
fn forge_echo_reply(to: IpAddr, ident: u16, seq: u16, payload_size: usize) {
    let v6 = to.is_ipv6();
    let mut p = packet::echo_request(v6, ident, seq, payload_size);
    if v6 {
        p[0] = packet::V6_ECHO_REPLY;
    } else {
        p[0] = packet::V4_ECHO_REPLY;
        p[2..4].copy_from_slice(&[0, 0]);
        let c = packet::checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    let (domain, proto) = if v6 {
        (libc::AF_INET6, libc::IPPROTO_ICMPV6)
    } else {
        (libc::AF_INET, libc::IPPROTO_ICMP)
    };
    // SAFETY: socket(2) with plain integers; the descriptor is closed below.
    let fd = unsafe { libc::socket(domain, libc::SOCK_RAW, proto) };
    assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
    // SAFETY: all-zero bytes are a valid sockaddr_storage.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match to {
        IpAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: 0,
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is big enough and aligned for sockaddr_in.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        IpAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: 0,
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.octets(),
                },
                sin6_scope_id: 0,
            };
            // SAFETY: sockaddr_storage is big enough and aligned for sockaddr_in6.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    // SAFETY: `p` and `ss` are live for the call, with the lengths given.
    let n = unsafe {
        libc::sendto(
            fd,
            p.as_ptr().cast(),
            p.len(),
            0,
            (&ss as *const libc::sockaddr_storage).cast(),
            len as libc::socklen_t,
        )
    };
    let err = std::io::Error::last_os_error();
    // SAFETY: `fd` is ours and not used after this.
    unsafe { libc::close(fd) };
    assert_eq!(n, p.len() as isize, "forging: {err}");
}

#[test]
fn late_and_duplicate_replies_are_reported() {
    if let Some(why) = netns::unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let ns = match Netns::new("eos-icmp-stray") {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!("skipping: {e}");
            return;
        }
    };
    allow_datagram(&ns);
    // Loopback that does not answer echoes: replies are forged by the test.
    ns.sysctl("net/ipv4/icmp_echo_ignore_all", "1")
        .expect("echo_ignore_all");
    let v6 = ns.sysctl("net/ipv6/icmp/echo_ignore_all", "1").is_ok();
    for kind in [SocketKind::Raw, SocketKind::Datagram] {
        ns.block_on(|| async move {
            let icmp = Icmp::with_kind(kind);
            let mut dsts = vec![IpAddr::V4(Ipv4Addr::LOCALHOST)];
            if v6 {
                dsts.push(IpAddr::V6(Ipv6Addr::LOCALHOST));
            }
            for dst in dsts {
                let seen: Arc<Mutex<Vec<Stray>>> = Arc::default();
                let sink = seen.clone();
                let o = EchoOptions {
                    payload_size: 10,
                    strays: Some(Strays::new(Duration::from_secs(30), move |s| {
                        sink.lock().unwrap().push(s)
                    })),
                    ..opts(100)
                };
                // Answered once, then again: a duplicate.
                let p = icmp.send_echo(dst, &o).expect("send");
                forge_echo_reply(dst, p.identifier(), p.sequence(), 10);
                let r = p
                    .wait()
                    .await
                    .unwrap_or_else(|e| panic!("{kind} {dst}: forged reply: {e}"));
                assert_eq!(r.kind, ReplyKind::Echo);
                forge_echo_reply(dst, r.identifier, r.sequence, 10);
                // Wrong data: not a reply to this request at all.
                forge_echo_reply(dst, r.identifier, r.sequence, 11);
                // Not answered in time, then answered: late, and then a duplicate.
                let p = icmp.send_echo(dst, &o).expect("send");
                let (ident, seq) = (p.identifier(), p.sequence());
                let e = p.wait().await.unwrap_err();
                assert!(matches!(e, IcmpError::Timeout { .. }), "{e}");
                forge_echo_reply(dst, ident, seq, 10);
                forge_echo_reply(dst, ident, seq, 10);
                let deadline = std::time::Instant::now() + Duration::from_secs(5);
                while seen.lock().unwrap().len() < 3 && std::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                let seen = seen.lock().unwrap();
                let got: Vec<(StrayKind, u16)> =
                    seen.iter().map(|s| (s.kind, s.reply.sequence)).collect();
                assert_eq!(
                    got,
                    vec![
                        (StrayKind::Duplicate, r.sequence),
                        (StrayKind::Late, seq),
                        (StrayKind::Duplicate, seq)
                    ],
                    "{kind} {dst}"
                );
                assert!(
                    seen[1].reply.rtt >= Duration::from_millis(100),
                    "a late reply's RTT is its own"
                );
            }
        });
    }
}

/// Drops CAP_NET_RAW from the calling thread's effective set.
fn drop_net_raw() -> Result<(), String> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const V3: u32 = 0x2008_0522;
    const CAP_NET_RAW: u32 = 13;
    let mut h = Header {
        version: V3,
        pid: 0,
    };
    let mut d = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capget(2) with a v3 header and room for its two data structs.
    if unsafe { libc::syscall(libc::SYS_capget, &mut h as *mut Header, d.as_mut_ptr()) } != 0 {
        return Err(format!("capget: {}", std::io::Error::last_os_error()));
    }
    d[0].effective &= !(1 << CAP_NET_RAW);
    // SAFETY: capset(2) with the same header and data, one capability less; it affects
    // only the calling thread.
    if unsafe { libc::syscall(libc::SYS_capset, &mut h as *mut Header, d.as_ptr()) } != 0 {
        return Err(format!("capset: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

#[test]
fn without_permission_the_error_names_both_ways() {
    if let Some(why) = netns::unavailable() {
        eprintln!("skipping: {why}");
        return;
    }
    let ns = match Netns::new("eos-icmp-perm") {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!("skipping: {e}");
            return;
        }
    };
    // A new namespace's ping_group_range is "1 0": no group may open datagram sockets.
    let checked = ns
        .run(|| {
            drop_net_raw()?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(rt.block_on(async {
                let icmp = Icmp::default();
                let e = icmp
                    .echo(IpAddr::V4(Ipv4Addr::LOCALHOST), &opts(100))
                    .await
                    .unwrap_err();
                (e, icmp.socket_kind(false))
            }))
        })
        .expect("namespace");
    let (e, kind) = match checked {
        Ok(x) => x,
        Err(why) => {
            eprintln!("skipping: cannot drop CAP_NET_RAW: {why}");
            return;
        }
    };
    assert!(matches!(e, IcmpError::NotPermitted(_)), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("net.ipv4.ping_group_range \"1 0\""), "{msg}");
    assert!(msg.contains("does not include gid 0"), "{msg}");
    assert!(msg.contains("CAP_NET_RAW"), "{msg}");
    assert_eq!(kind, None);
}
