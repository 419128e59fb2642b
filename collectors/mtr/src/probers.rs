//! The three ways to probe a hop, as [`Prober`]s: ICMP echo requests through the agent's
//! shared ICMP service ([`IcmpProber`], the default), UDP datagrams ([`UdpProber`], mtr's
//! `-u`) and TCP SYNs ([`TcpProber`], mtr's `-T`) from sockets of their own (`eos_icmp`'s
//! [`UdpFlow`] and [`TcpFlow`]), and how each kind of answer counts for a trace.
//!
//! What ends a path: an echo reply (ICMP), a port unreachable (UDP to a closed port), a SYN-ACK
//! or a RST (TCP), and any unreachable, from the destination; an unreachable from a router
//! ends it there. UDP and TCP need no privilege; ICMP needs a datagram ICMP socket or
//! `CAP_NET_RAW`.

use crate::trace::{AnswerKind, Flow, Probed, Prober, TraceError};
use eos_icmp::packet::ErrorKind;
use eos_icmp::{EchoOptions, FlowAnswer, FlowReply, Icmp, IcmpError, ReplyKind, TcpFlow, UdpFlow};
use eos_module::BoxFuture;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// What a probe's failure means for the trace: a lost probe (a failed send, no answer in
/// time) or, when no probe can work (no socket, options out of range), an error.
fn lost_or_fatal(dst: IpAddr, ttl: u8, e: IcmpError) -> Result<Probed, TraceError> {
    match e {
        IcmpError::NotPermitted(message) => Err(TraceError::Socket { dst, message }),
        e @ (IcmpError::Io { .. } | IcmpError::Invalid(_)) => Err(TraceError::Socket {
            dst,
            message: e.to_string(),
        }),
        e => {
            tracing::trace!(%dst, ttl, "mtr: probe lost: {e}");
            Ok(Probed::Lost)
        }
    }
}

/// How an ICMP error counts: an unreachable ends the path (at the destination when the
/// destination sent it); the others (time exceeded, ...) are a hop on the way.
fn classify_error(dst: IpAddr, from: IpAddr, kind: ErrorKind) -> AnswerKind {
    match kind {
        ErrorKind::Unreachable { .. } if from == dst => AnswerKind::Destination,
        ErrorKind::Unreachable { .. } => AnswerKind::Unreachable,
        ErrorKind::TimeExceeded { .. }
        | ErrorKind::PacketTooBig { .. }
        | ErrorKind::ParameterProblem { .. } => AnswerKind::Hop,
    }
}

/// How an ICMP service answer counts for a trace.
fn classify_echo(dst: IpAddr, r: &eos_icmp::Reply) -> AnswerKind {
    let error = match r.kind {
        ReplyKind::Echo => return AnswerKind::Destination,
        ReplyKind::TimeExceeded { code } => ErrorKind::TimeExceeded { code },
        ReplyKind::Unreachable { code, mtu } => ErrorKind::Unreachable { code, mtu },
        ReplyKind::PacketTooBig { mtu } => ErrorKind::PacketTooBig { mtu },
        ReplyKind::ParameterProblem { code, pointer } => {
            ErrorKind::ParameterProblem { code, pointer }
        }
    };
    classify_error(dst, r.from, error)
}

/// How a UDP or TCP probe's answer counts for a trace.
fn classify_flow(dst: IpAddr, r: &FlowReply) -> AnswerKind {
    match r.answer {
        FlowAnswer::Icmp(kind) => classify_error(dst, r.from, kind),
        FlowAnswer::Accepted | FlowAnswer::Refused => AnswerKind::Destination,
    }
}

fn answer(from: IpAddr, rtt: Duration, kind: AnswerKind) -> Probed {
    Probed::Answer { from, rtt, kind }
}

/// ICMP echo probes through the shared ICMP service. Its identifier is the socket's, and
/// `Icmp::probe_ttl` keeps the checksum constant, so every probe of a destination shares one
/// flow.
#[derive(Clone, Debug)]
pub struct IcmpProber {
    icmp: Icmp,
    payload_size: usize,
}

impl IcmpProber {
    /// Probes with `payload_size` bytes of echo data.
    pub fn new(icmp: Icmp, payload_size: usize) -> Self {
        IcmpProber { icmp, payload_size }
    }
}

impl Prober for IcmpProber {
    fn open(&self, dst: IpAddr) -> Result<Arc<dyn Flow>, TraceError> {
        Ok(Arc::new(IcmpFlow {
            icmp: self.icmp.clone(),
            dst,
            payload_size: self.payload_size,
        }))
    }

    fn protocol(&self) -> &'static str {
        "icmp"
    }
}

/// One trace's ICMP probes: the shared socket, one destination.
struct IcmpFlow {
    icmp: Icmp,
    dst: IpAddr,
    payload_size: usize,
}

impl Flow for IcmpFlow {
    fn probe(self: Arc<Self>, ttl: u8, timeout: Duration) -> BoxFuture<Result<Probed, TraceError>> {
        Box::pin(async move {
            let opts = EchoOptions {
                payload_size: self.payload_size,
                timeout,
                ..EchoOptions::default()
            };
            match self.icmp.probe_ttl(self.dst, ttl, &opts).await {
                Ok(r) => Ok(answer(r.from, r.rtt, classify_echo(self.dst, &r))),
                Err(e) => lost_or_fatal(self.dst, ttl, e),
            }
        })
    }
}

/// UDP probes to a destination port: each trace one socket, so all its probes share the
/// source and destination ports (see `eos_icmp::UdpFlow`).
#[derive(Clone, Debug)]
pub struct UdpProber {
    port: u16,
    payload_size: usize,
}

impl UdpProber {
    /// Probes to `port` with `payload_size` bytes of payload (at least
    /// [`eos_icmp::SEQUENCE_LEN`]).
    pub fn new(port: u16, payload_size: usize) -> Self {
        UdpProber { port, payload_size }
    }
}

impl Prober for UdpProber {
    fn open(&self, dst: IpAddr) -> Result<Arc<dyn Flow>, TraceError> {
        let flow = UdpFlow::open(SocketAddr::new(dst, self.port), None, self.payload_size)
            .map_err(|e| TraceError::Socket {
                dst,
                message: e.to_string(),
            })?;
        Ok(Arc::new(UdpProbes(flow)))
    }

    fn protocol(&self) -> &'static str {
        "udp"
    }
}

/// One trace's UDP probes.
struct UdpProbes(UdpFlow);

impl Flow for UdpProbes {
    fn probe(self: Arc<Self>, ttl: u8, timeout: Duration) -> BoxFuture<Result<Probed, TraceError>> {
        Box::pin(async move {
            let dst = self.0.destination().ip();
            match self.0.probe(ttl, timeout).await {
                Ok(r) => Ok(answer(r.from, r.rtt, classify_flow(dst, &r))),
                Err(e) => lost_or_fatal(dst, ttl, e),
            }
        })
    }
}

/// TCP SYN probes to a destination port: each TTL of a trace from a source port of its own
/// (see `eos_icmp::TcpFlow`).
#[derive(Clone, Debug)]
pub struct TcpProber {
    port: u16,
}

impl TcpProber {
    /// Probes to `port`.
    pub fn new(port: u16) -> Self {
        TcpProber { port }
    }
}

impl Prober for TcpProber {
    fn open(&self, dst: IpAddr) -> Result<Arc<dyn Flow>, TraceError> {
        let flow = TcpFlow::new(SocketAddr::new(dst, self.port), None).map_err(|e| {
            TraceError::Socket {
                dst,
                message: e.to_string(),
            }
        })?;
        Ok(Arc::new(TcpProbes(flow)))
    }

    fn protocol(&self) -> &'static str {
        "tcp"
    }
}

/// One trace's TCP probes.
struct TcpProbes(TcpFlow);

impl Flow for TcpProbes {
    fn probe(self: Arc<Self>, ttl: u8, timeout: Duration) -> BoxFuture<Result<Probed, TraceError>> {
        Box::pin(async move {
            let dst = self.0.destination().ip();
            match self.0.probe(ttl, timeout).await {
                Ok(r) => Ok(answer(r.from, r.rtt, classify_flow(dst, &r))),
                Err(e) => lost_or_fatal(dst, ttl, e),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eos_icmp::TimestampSource;
    use std::time::SystemTime;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn icmp_replies_are_classified() {
        let reply = |kind, from: &str| eos_icmp::Reply {
            kind,
            from: ip(from),
            dst: ip("10.0.0.9"),
            rtt: Duration::ZERO,
            timestamp_source: TimestampSource::Kernel,
            sent_at: SystemTime::UNIX_EPOCH,
            hop_limit: None,
            setup: Duration::ZERO,
            identifier: 1,
            sequence: 1,
            size: 64,
        };
        let dst = ip("10.0.0.9");
        let unreach = ReplyKind::Unreachable { code: 1, mtu: None };
        assert_eq!(
            classify_echo(dst, &reply(ReplyKind::Echo, "10.0.0.9")),
            AnswerKind::Destination
        );
        assert_eq!(
            classify_echo(dst, &reply(unreach, "10.0.0.9")),
            AnswerKind::Destination
        );
        assert_eq!(
            classify_echo(dst, &reply(unreach, "10.0.0.1")),
            AnswerKind::Unreachable
        );
        let te = ReplyKind::TimeExceeded { code: 0 };
        assert_eq!(classify_echo(dst, &reply(te, "10.0.0.1")), AnswerKind::Hop);
        let big = ReplyKind::PacketTooBig { mtu: 1280 };
        assert_eq!(classify_echo(dst, &reply(big, "10.0.0.1")), AnswerKind::Hop);
    }

    #[test]
    fn udp_and_tcp_answers_are_classified() {
        let dst = ip("10.0.0.9");
        let reply = |answer, from: &str| FlowReply {
            answer,
            from: ip(from),
            rtt: Duration::ZERO,
            timestamp_source: TimestampSource::Kernel,
        };
        let port_unreachable = FlowAnswer::Icmp(ErrorKind::Unreachable { code: 3, mtu: None });
        let time_exceeded = FlowAnswer::Icmp(ErrorKind::TimeExceeded { code: 0 });
        for (r, want) in [
            (reply(time_exceeded, "10.0.0.1"), AnswerKind::Hop),
            (reply(port_unreachable, "10.0.0.9"), AnswerKind::Destination),
            (reply(port_unreachable, "10.0.0.2"), AnswerKind::Unreachable),
            (
                reply(FlowAnswer::Accepted, "10.0.0.9"),
                AnswerKind::Destination,
            ),
            (
                reply(FlowAnswer::Refused, "10.0.0.9"),
                AnswerKind::Destination,
            ),
        ] {
            assert_eq!(classify_flow(dst, &r), want, "{r:?}");
        }
    }

    #[test]
    fn failures_are_loss_unless_nothing_can_be_sent() {
        let dst = ip("10.0.0.9");
        let timeout = IcmpError::Timeout {
            dst,
            timeout: Duration::from_secs(1),
        };
        assert_eq!(lost_or_fatal(dst, 3, timeout), Ok(Probed::Lost));
        let send = IcmpError::Send {
            what: "a UDP probe",
            dst,
            source: Arc::new(std::io::ErrorKind::NetworkUnreachable.into()),
        };
        assert_eq!(lost_or_fatal(dst, 3, send), Ok(Probed::Lost));
        let e = lost_or_fatal(dst, 3, IcmpError::NotPermitted("no ICMP".into())).unwrap_err();
        assert_eq!(e.to_string(), "probing 10.0.0.9: no ICMP");
        let e = lost_or_fatal(dst, 3, IcmpError::Invalid("bad TTL".into())).unwrap_err();
        assert!(matches!(e, TraceError::Socket { .. }), "{e}");
    }
}
