//! One ICMP socket service shared by the probe, ping and mtr modules, and the UDP and TCP
//! probes with a TTL whose ICMP answers mtr reads from their sockets' error queues.
//!
//! [`Icmp`] is a cheap handle (clones share everything). `Icmp::default()` opens nothing:
//! the first request of an address family opens that family's socket, so an agent without
//! the permission for ICMP only fails the requests that need it, saying what is missing.
//!
//! # Sockets
//!
//! Per family, the first socket opened decides the kind for all of that family's sockets:
//!
//! - a **datagram** ICMP socket (`SOCK_DGRAM`, `IPPROTO_ICMP`/`IPPROTO_ICMPV6`, a "ping
//!   socket") when `net.ipv4.ping_group_range` includes the process's group (it covers
//!   IPv6 too). No privilege needed; the kernel picks the echo identifier (the socket's
//!   "port", read back after binding), delivers only this socket's replies, computes the
//!   checksums, and does **not** deliver ICMP errors as packets: with `IP_RECVERR` /
//!   `IPV6_RECVERR` set (always, here) it queues them on the socket's error queue, with the
//!   quoted echo header (identifier, sequence), the original destination and the sender of
//!   the error (`SO_EE_OFFENDER`). That is how TTL-limited probes get their time-exceeded
//!   answers on a datagram socket.
//! - else a **raw** socket (`SOCK_RAW`, needs `CAP_NET_RAW`), which sees every ICMP message
//!   of the network namespace: `ICMP_FILTER` / `ICMP6_FILTER` keep echo replies and the
//!   errors that can quote an echo request; errors arrive as packets and are parsed here,
//!   the quoted IPv4/IPv6 header and echo header identifying the request. The identifier is
//!   random per `Icmp` (and differs between its sockets).
//! - if neither may be opened, requests fail with [`IcmpError::NotPermitted`], naming both
//!   ways out (the `ping_group_range` and the group, or `CAP_NET_RAW`).
//!
//! [`Icmp::with_kind`] insists on one kind. [`Icmp::socket_kind`] says which is open, for
//! status pages; [`Icmp::open`] opens the default socket up front.
//!
//! Options the kernel does not take per packet make separate sockets of the family, opened
//! as first used: the source address (the socket is bound to it) and don't-fragment
//! (`IP_PMTUDISC_DO` / `IPV6_DONTFRAG`). The TTL / hop limit is set on the socket before a
//! send when it differs from the last one (sends of a socket are serialised), which works on
//! both kinds and every kernel (`IP_TTL` as a control message does not on older
//! `ping6` sockets).
//!
//! # Receiving
//!
//! One thread per family (`eos-icmp4`, `eos-icmp6`) polls the family's sockets and reads
//! every reply and error as it arrives, with its kernel receive timestamp
//! (`SO_TIMESTAMPNS`) and the reply's TTL / hop limit (`IP_RECVTTL` /
//! `IPV6_RECVHOPLIMIT`). A thread rather than a Tokio task: it does not depend on the
//! runtime of whoever opened the socket first (the agent reloads modules; tests make a
//! runtime each), and with kernel timestamps its wake-up latency does not enter the RTT.
//! The thread ends when the last `Icmp` handle is dropped.
//!
//! Each socket keeps a table of requests by sequence number (allocated per send, starting
//! at random, skipping numbers still in use); a message is matched by identifier and
//! sequence, then checked: an echo reply must come from the destination and bring the sent
//! data back; an error must quote a request to the same destination. The RTT is the kernel
//! receive time minus the send time (wall clock both: timestamps are `CLOCK_REALTIME`);
//! when that is missing or implausible (a clock step) it is the monotonic time until the
//! thread read it ([`TimestampSource`] says which).
//!
//! # API
//!
//! - [`Icmp::echo`]: one echo, waiting until `opts.timeout` after sending, or
//!   `opts.deadline` if sooner (probe). ICMP errors quoting it end the wait early with
//!   [`IcmpError::ErrorReply`]; a failed send is [`IcmpError::Send`], a failure to open or
//!   set up the socket [`IcmpError::NotPermitted`] or [`IcmpError::Io`].
//! - [`Icmp::send_echo`] → [`Pending`], then [`Pending::wait`]: fire now, wait later; many
//!   pending at once on one socket (ping). With [`EchoOptions::strays`] a request is
//!   remembered for a while after its answer or timeout, and late and duplicate replies are
//!   reported to a callback ([`Stray`]).
//! - [`Icmp::probe_ttl`]: one echo with a hop limit; the [`Reply`] is the destination's
//!   echo reply or a hop's error ([`ReplyKind::TimeExceeded`], [`ReplyKind::Unreachable`],
//!   ...) with that hop's address in [`Reply::from`] (mtr).
//!
//! # UDP and TCP probes
//!
//! For mtr's `udp` and `tcp` protocols, without any privilege: [`UdpFlow`] (`udp.rs`) sends
//! UDP datagrams with a TTL from one socket, all with the same addresses and ports (a Paris
//! traceroute fixed flow), told apart by a sequence number in their payload; [`TcpFlow`]
//! (`tcp.rs`) sends each SYN as a non-blocking connect of its own socket, every TTL from its
//! own fixed source port. Both set `IP_RECVERR` / `IPV6_RECVERR`, so the kernel queues the
//! ICMP errors about their packets (time exceeded from routers, port unreachable from the
//! destination) on the socket's error queue, with who sent them and the kernel receive time;
//! a TCP destination answers with SYN-ACK or RST. Answers are [`FlowReply`]s. They run on the
//! caller's Tokio runtime: each flow belongs to one trace.
//!
//! Packet building and parsing are pure functions in [`packet`], the control messages of a
//! receive (timestamp, TTL, queued error) are parsed in `control.rs`. The tests run in
//! throwaway network namespaces from `eos_testkit::netns`.

mod control;
pub mod packet;
mod service;
mod sys;
mod tcp;
mod types;
mod udp;

pub use service::{Icmp, Pending, MAX_PAYLOAD_SIZE};
pub use tcp::TcpFlow;
pub use types::{
    EchoOptions, FlowAnswer, FlowReply, IcmpError, Reply, ReplyKind, SocketKind, Stray, StrayKind,
    Strays, TimestampSource, DEFAULT_PAYLOAD_SIZE,
};
pub use udp::{UdpFlow, SEQUENCE_LEN};
