//! What callers give and get: options, replies, errors.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The kind of socket a family uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SocketKind {
    /// `SOCK_DGRAM` with `IPPROTO_ICMP`/`IPPROTO_ICMPV6` (a "ping socket"): allowed when the
    /// process's group is in `net.ipv4.ping_group_range`. The kernel sets the identifier (the
    /// socket's port), delivers only this socket's replies, and queues ICMP errors on the
    /// error queue (`IP_RECVERR`).
    Datagram,
    /// `SOCK_RAW`: needs `CAP_NET_RAW`. Sees every ICMP message of the network namespace
    /// (filtered to replies and errors with `ICMP_FILTER`), errors included as packets.
    Raw,
}

impl SocketKind {
    /// `"datagram"` or `"raw"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SocketKind::Datagram => "datagram",
            SocketKind::Raw => "raw",
        }
    }
}

impl std::fmt::Display for SocketKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How one echo request is sent and how long its reply is waited for.
#[derive(Clone, Debug)]
pub struct EchoOptions {
    /// Bytes of echo data after the 8-byte ICMP header (a fixed pattern the reply must
    /// bring back).
    pub payload_size: usize,
    /// TTL / hop limit; `None`: the system's default. IPv4 needs 1..=255.
    pub ttl: Option<u8>,
    /// Forbid fragmentation: IPv4 `IP_PMTUDISC_DO` (the DF bit, and `EMSGSIZE` for a packet
    /// larger than the known path MTU), IPv6 `IPV6_DONTFRAG`.
    pub dont_fragment: bool,
    /// The source address (the socket is bound to it); `None`: chosen by routing.
    pub source: Option<IpAddr>,
    /// How long after sending the reply is waited for.
    pub timeout: Duration,
    /// The wait ends by then at the latest, whatever `timeout` says (a probe's deadline).
    pub deadline: Option<Instant>,
    /// Where late and duplicate replies to this echo are reported; `None`: they are dropped.
    pub strays: Option<Strays>,
}

/// 56 bytes of data, as ping(8) sends.
pub const DEFAULT_PAYLOAD_SIZE: usize = 56;

impl Default for EchoOptions {
    fn default() -> Self {
        EchoOptions {
            payload_size: DEFAULT_PAYLOAD_SIZE,
            ttl: None,
            dont_fragment: false,
            source: None,
            timeout: Duration::from_secs(5),
            deadline: None,
            strays: None,
        }
    }
}

/// Whether an RTT comes from kernel receive timestamps or from the receive thread's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimestampSource {
    /// `SO_TIMESTAMPNS`: when the packet reached the socket, minus the send time.
    Kernel,
    /// When the receive thread read the packet (no kernel timestamp, or a wall clock step
    /// made it implausible), on the monotonic clock.
    User,
}

/// The RTT of an answer to a request sent at `sent_wall` and read `mono` after it was sent
/// (monotonic clock): the kernel's receive time minus the send time when there is one and it
/// is plausible (the kernel saw the answer before it was read; anything else is a wall clock
/// step), else `mono`.
pub(crate) fn measured_rtt(
    kernel_time: Option<SystemTime>,
    sent_wall: SystemTime,
    mono: Duration,
) -> (Duration, TimestampSource) {
    match kernel_time.and_then(|k| k.duration_since(sent_wall).ok()) {
        Some(k) if k <= mono => (k, TimestampSource::Kernel),
        _ => (mono, TimestampSource::User),
    }
}

/// What came back for one echo request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyKind {
    /// An echo reply from the destination.
    Echo,
    /// The TTL / hop limit ran out (code 0), or fragment reassembly timed out (code 1).
    TimeExceeded { code: u8 },
    /// Destination unreachable; `mtu`: the next hop's MTU of an ICMPv4 "fragmentation
    /// needed" (code 4).
    Unreachable { code: u8, mtu: Option<u32> },
    /// ICMPv6 packet too big.
    PacketTooBig { mtu: u32 },
    /// A router or the destination found a problem in the request's header.
    ParameterProblem { code: u8, pointer: u32 },
}

impl From<crate::packet::ErrorKind> for ReplyKind {
    fn from(k: crate::packet::ErrorKind) -> Self {
        use crate::packet::ErrorKind as E;
        match k {
            E::TimeExceeded { code } => ReplyKind::TimeExceeded { code },
            E::Unreachable { code, mtu } => ReplyKind::Unreachable { code, mtu },
            E::PacketTooBig { mtu } => ReplyKind::PacketTooBig { mtu },
            E::ParameterProblem { code, pointer } => ReplyKind::ParameterProblem { code, pointer },
        }
    }
}

impl ReplyKind {
    /// In words, as ping(8) says it (`v6` picks ICMPv6's unreachable codes).
    pub fn describe(&self, v6: bool) -> String {
        match *self {
            ReplyKind::Echo => "echo reply".into(),
            ReplyKind::TimeExceeded { code: 0 } => "time to live exceeded".into(),
            ReplyKind::TimeExceeded { code: 1 } => "fragment reassembly time exceeded".into(),
            ReplyKind::TimeExceeded { code } => format!("time exceeded (code {code})"),
            ReplyKind::Unreachable { code, mtu } => {
                let what = if v6 {
                    match code {
                        0 => "no route to destination",
                        1 => "communication administratively prohibited",
                        2 => "beyond scope of source address",
                        3 => "address unreachable",
                        4 => "port unreachable",
                        5 => "source address failed ingress/egress policy",
                        6 => "reject route to destination",
                        _ => "",
                    }
                } else {
                    match code {
                        0 => "network unreachable",
                        1 => "host unreachable",
                        2 => "protocol unreachable",
                        3 => "port unreachable",
                        4 => "fragmentation needed",
                        5 => "source route failed",
                        6 => "destination network unknown",
                        7 => "destination host unknown",
                        9 | 10 | 13 => "administratively prohibited",
                        11 | 12 => "unreachable for type of service",
                        _ => "",
                    }
                };
                let mut s = if what.is_empty() {
                    format!("destination unreachable (code {code})")
                } else {
                    format!("destination unreachable: {what}")
                };
                if let Some(m) = mtu {
                    s.push_str(&format!(" (next hop MTU {m})"));
                }
                s
            }
            ReplyKind::PacketTooBig { mtu } => format!("packet too big (MTU {mtu})"),
            ReplyKind::ParameterProblem { code, pointer } => {
                format!("parameter problem (code {code}, pointer {pointer})")
            }
        }
    }
}

/// A reply to one echo request: the echo reply, or an ICMP error quoting the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub kind: ReplyKind,
    /// Who answered: the destination, or the router that sent the error.
    pub from: IpAddr,
    /// The destination of the request.
    pub dst: IpAddr,
    /// From sending the request to receiving this.
    pub rtt: Duration,
    pub timestamp_source: TimestampSource,
    /// When the request was sent (wall clock).
    pub sent_at: SystemTime,
    /// TTL / hop limit of the reply packet (`IP_RECVTTL` / `IPV6_RECVHOPLIMIT`).
    pub hop_limit: Option<u8>,
    /// From the call to sending: opening the socket on first use, building the packet.
    pub setup: Duration,
    pub identifier: u16,
    pub sequence: u16,
    /// Bytes of the ICMP message received (header included, IP header not).
    pub size: usize,
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} from {} (icmp_seq={}, time={:?})",
            self.kind.describe(self.dst.is_ipv6()),
            self.from,
            self.sequence,
            self.rtt
        )
    }
}

/// What answered a UDP or TCP probe ([`crate::UdpFlow::probe`], [`crate::TcpFlow::probe`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlowAnswer {
    /// An ICMP error about the probe: time exceeded from a router, an unreachable (from the
    /// destination itself: port unreachable, a closed UDP port), ...
    Icmp(crate::packet::ErrorKind),
    /// TCP: the destination accepted the connection (SYN-ACK). It is reset at once.
    Accepted,
    /// TCP: the destination refused the connection (RST).
    Refused,
}

/// A UDP or TCP probe's answer: what, from whom, after how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowReply {
    pub answer: FlowAnswer,
    /// Who answered: the router that sent the ICMP error, or the destination.
    pub from: IpAddr,
    /// From sending the probe to receiving the answer.
    pub rtt: Duration,
    pub timestamp_source: TimestampSource,
}

/// Why a reply is a stray.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StrayKind {
    /// It came after the request's timeout.
    Late,
    /// The request was already answered.
    Duplicate,
}

/// A late or duplicate reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stray {
    pub kind: StrayKind,
    pub reply: Reply,
}

/// Where late and duplicate replies go: a request sent with it is remembered for `linger`
/// after its answer or timeout, and replies in that time are passed to the callback.
///
/// The callback runs on the receive thread: it must be quick and must not block (count,
/// or `try_send` to a channel).
#[derive(Clone)]
pub struct Strays {
    pub(crate) linger: Duration,
    pub(crate) callback: Arc<dyn Fn(Stray) + Send + Sync>,
}

impl Strays {
    /// Reports strays arriving within `linger` of a request's answer or timeout to `f`.
    pub fn new(linger: Duration, f: impl Fn(Stray) + Send + Sync + 'static) -> Self {
        Strays {
            linger,
            callback: Arc::new(f),
        }
    }
}

impl std::fmt::Debug for Strays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Strays")
            .field("linger", &self.linger)
            .finish_non_exhaustive()
    }
}

/// Why an echo failed.
#[derive(Clone, Debug, thiserror::Error)]
pub enum IcmpError {
    /// Neither kind of ICMP socket may be opened; says what would allow one.
    #[error("{0}")]
    NotPermitted(String),
    /// Opening or setting up a socket failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: Arc<std::io::Error>,
    },
    /// Sending the request failed (no route, message too long with don't-fragment, ...).
    #[error("sending {what} to {dst}: {source}")]
    Send {
        /// What was sent: "an echo request", "a UDP probe", "a TCP SYN".
        what: &'static str,
        dst: IpAddr,
        source: Arc<std::io::Error>,
    },
    /// Nothing came back in time.
    #[error("no reply from {dst} within {timeout:?}")]
    Timeout { dst: IpAddr, timeout: Duration },
    /// An ICMP error came back instead of an echo reply (from [`crate::Icmp::echo`]).
    #[error("{0}")]
    ErrorReply(Box<Reply>),
    /// The options cannot be used for this destination.
    #[error("{0}")]
    Invalid(String),
    /// Every sequence number of the socket is waiting for a reply or lingering (the socket's
    /// ICMP identifier, or a UDP flow's source port).
    #[error("all 65536 sequence numbers of ICMP identifier or UDP port {0} are in use")]
    Busy(u16),
    /// The service was dropped while the request waited.
    #[error("the ICMP service shut down")]
    Closed,
}

impl IcmpError {
    pub(crate) fn io(context: impl Into<String>, e: std::io::Error) -> Self {
        IcmpError::Io {
            context: context.into(),
            source: Arc::new(e),
        }
    }
}
