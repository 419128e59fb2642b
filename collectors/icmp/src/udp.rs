//! UDP probes with a TTL, for traces (mtr's `-u`).
//!
//! A [`UdpFlow`] is one UDP socket connected to the destination's port, from a source port
//! the kernel picks when it is opened: every probe of the flow has the same addresses and
//! ports, so routers that balance load by hashing them (ECMP) send all of a trace's probes
//! along one path (Paris traceroute's fixed flow). What tells the probes apart is the first
//! two bytes of their payload, a sequence number (the rest is a fixed pattern), which the
//! ICMP error about a probe quotes back.
//!
//! No privilege is needed: with `IP_RECVERR` / `IPV6_RECVERR` the kernel queues every ICMP
//! error about the socket's datagrams on the socket's error queue, with the quoted payload,
//! the error's type and code, who sent it (`SO_EE_OFFENDER`) and when it came in
//! (`SO_TIMESTAMPNS`). A router on the way answers a probe whose TTL runs out with time
//! exceeded; the destination answers with port unreachable when nothing listens on the port
//! (hence mtr's 33434). As with mtr, a service that answers on the port is not an answer, and
//! a router that quotes only the 8-byte UDP header (RFC 792's minimum; RFC 1812 asks for as
//! much as fits in 576 bytes, which Linux quotes) cannot be matched to a probe: its hop shows
//! as silent.
//!
//! The socket is read by whoever waits: every waiting probe watches it through the Tokio
//! runtime it runs on, and the first to wake hands each answer to the probe it belongs to.

use crate::control::{ORIGIN_ICMP, ORIGIN_ICMP6};
use crate::packet;
use crate::service::canonical;
use crate::sys;
use crate::types::{measured_rtt, FlowAnswer, FlowReply, IcmpError};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::oneshot;

/// Bytes at the start of a probe's payload that carry its sequence number.
pub const SEQUENCE_LEN: usize = 2;
/// The largest payload (an IPv4 datagram is at most 65535 bytes).
const MAX_PAYLOAD: usize = 65_507;
/// Messages read from each queue per wake-up before waiting again.
const READ_BATCH: usize = 64;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The payload of the probe with sequence `seq`: the sequence (big-endian), then the echo
/// data pattern of [`packet::payload_byte`], `size` bytes in all (at least [`SEQUENCE_LEN`]).
pub fn payload(seq: u16, size: usize) -> Vec<u8> {
    let mut p = seq.to_be_bytes().to_vec();
    p.extend((SEQUENCE_LEN..size).map(packet::payload_byte));
    p
}

/// The sequence number of the probe whose payload an ICMP error quoted (`quoted`: what the
/// router quoted of it, possibly cut short), if it is one of ours of `size` bytes.
pub fn sequence_of(quoted: &[u8], size: usize) -> Option<u16> {
    let seq = u16::from_be_bytes([*quoted.first()?, *quoted.get(1)?]);
    if quoted.len() > size {
        return None;
    }
    let rest_ok = quoted
        .iter()
        .enumerate()
        .skip(SEQUENCE_LEN)
        .all(|(i, b)| *b == packet::payload_byte(i));
    rest_ok.then_some(seq)
}

/// One UDP flow to a destination port: see the module documentation.
pub struct UdpFlow {
    fd: AsyncFd<OwnedFd>,
    dst: SocketAddr,
    local: SocketAddr,
    v6: bool,
    payload_size: usize,
    state: Mutex<State>,
}

impl std::fmt::Debug for UdpFlow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpFlow")
            .field("local", &self.local)
            .field("dst", &self.dst)
            .finish_non_exhaustive()
    }
}

struct State {
    /// The TTL / hop limit set on the socket now (`None`: the default).
    ttl: Option<u8>,
    next_seq: u16,
    waiting: HashMap<u16, Waiting>,
}

/// A probe sent and not answered yet.
struct Waiting {
    sent_wall: SystemTime,
    sent_mono: Instant,
    tx: oneshot::Sender<FlowReply>,
}

impl State {
    /// A sequence number no probe is waiting with.
    fn alloc(&mut self) -> Option<u16> {
        for _ in 0..=u16::MAX {
            let s = self.next_seq;
            self.next_seq = self.next_seq.wrapping_add(1);
            if !self.waiting.contains_key(&s) {
                return Some(s);
            }
        }
        None
    }
}

/// Forgets a probe when its wait ends, however it ends.
struct Forget<'a> {
    flow: &'a UdpFlow,
    seq: u16,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(&self.flow.state).waiting.remove(&self.seq);
    }
}

impl UdpFlow {
    /// Opens a flow to `dst` (from `source` when given) whose probes carry `payload_size`
    /// bytes (at least [`SEQUENCE_LEN`]). Must be called inside a Tokio runtime with I/O
    /// enabled, which the probes then use.
    pub fn open(
        dst: SocketAddr,
        source: Option<IpAddr>,
        payload_size: usize,
    ) -> Result<UdpFlow, IcmpError> {
        let dst = SocketAddr::new(canonical(dst.ip()), dst.port());
        let v6 = dst.is_ipv6();
        if !(SEQUENCE_LEN..=MAX_PAYLOAD).contains(&payload_size) {
            return Err(IcmpError::Invalid(format!(
                "a UDP probe's payload must be {SEQUENCE_LEN} to {MAX_PAYLOAD} bytes, not {payload_size}"
            )));
        }
        let source = source.map(canonical);
        if source.is_some_and(|s| s.is_ipv6() != v6) {
            return Err(IcmpError::Invalid(format!(
                "source address {source:?} is not of the same IP version as {dst}"
            )));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(IcmpError::Invalid(
                "UDP probes run inside a Tokio runtime".into(),
            ));
        }
        let family = if v6 { "UDPv6" } else { "UDP" };
        let fd = sys::open_transport(v6, false)
            .map_err(|e| IcmpError::io(format!("opening a {family} socket"), e))?;
        let set = |level, name, what: &str| {
            sys::set_int(&fd, level, name, 1)
                .map_err(|e| IcmpError::io(format!("setting {what} on the {family} socket"), e))
        };
        set(libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, "SO_TIMESTAMPNS")?;
        if v6 {
            set(libc::IPPROTO_IPV6, libc::IPV6_RECVERR, "IPV6_RECVERR")?;
        } else {
            set(libc::IPPROTO_IP, libc::IP_RECVERR, "IP_RECVERR")?;
        }
        if let Some(src) = source {
            sys::bind(&fd, SocketAddr::new(src, 0))
                .map_err(|e| IcmpError::io(format!("binding the {family} socket to {src}"), e))?;
        }
        sys::connect(&fd, dst)
            .map_err(|e| IcmpError::io(format!("connecting the {family} socket to {dst}"), e))?;
        let local = sys::local_addr(&fd)
            .map_err(|e| IcmpError::io(format!("reading the {family} socket's address"), e))?;
        // SAFETY: the `OwnedFd` is open and the `AsyncFd` owns it from now on.
        let fd =
            unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE | Interest::ERROR) }
                .map_err(|e| IcmpError::io(format!("watching the {family} socket"), e.into()))?;
        Ok(UdpFlow {
            fd,
            dst,
            local,
            v6,
            payload_size,
            state: Mutex::new(State {
                ttl: None,
                next_seq: sys::random_u32() as u16,
                waiting: HashMap::new(),
            }),
        })
    }

    /// The source address and port every probe of the flow is sent from.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The destination address and port.
    pub fn destination(&self) -> SocketAddr {
        self.dst
    }

    /// Sends one probe with hop limit `ttl` and waits up to `timeout` for the ICMP error
    /// about it: time exceeded from a router, port unreachable from the destination, ...
    /// Nothing in time is [`IcmpError::Timeout`]; a failed send [`IcmpError::Send`].
    pub async fn probe(&self, ttl: u8, timeout: Duration) -> Result<FlowReply, IcmpError> {
        if !self.v6 && ttl == 0 {
            return Err(IcmpError::Invalid("an IPv4 TTL must be 1 to 255".into()));
        }
        let (seq, mut rx, sent_mono) = self.send(ttl)?;
        let _forget = Forget { flow: self, seq };
        let deadline = tokio::time::Instant::from_std(sent_mono + timeout);
        loop {
            tokio::select! {
                biased;
                r = &mut rx => return r.map_err(|_| IcmpError::Closed),
                () = tokio::time::sleep_until(deadline) => break,
                ready = self.fd.ready(Interest::READABLE | Interest::ERROR) => {
                    let mut guard = ready.map_err(|e| {
                        IcmpError::io("waiting for the UDP probe socket", e)
                    })?;
                    if self.drain() {
                        guard.clear_ready();
                    }
                }
            }
        }
        // An answer that came in as the time ran out still counts.
        self.drain();
        rx.try_recv().map_err(|_| IcmpError::Timeout {
            dst: self.dst.ip(),
            timeout,
        })
    }

    /// Sends the next probe; its sequence, where its answer comes, and when it went out.
    fn send(&self, ttl: u8) -> Result<(u16, oneshot::Receiver<FlowReply>, Instant), IcmpError> {
        let fd = self.fd.get_ref();
        let mut st = lock(&self.state);
        if st.ttl != Some(ttl) {
            sys::set_hop_limit(fd, self.v6, Some(ttl))
                .map_err(|e| IcmpError::io(format!("setting the UDP socket's TTL to {ttl}"), e))?;
            st.ttl = Some(ttl);
        }
        let seq = st.alloc().ok_or(IcmpError::Busy(self.local.port()))?;
        let data = payload(seq, self.payload_size);
        // An ICMP error leaves the socket's pending error set until it is read, and the
        // next send returns it instead of sending: a stale error is passed over (a real one
        // repeats).
        let mut tries = 1;
        let (wall, mono) = loop {
            let (wall, mono) = (SystemTime::now(), Instant::now());
            match sys::send(fd, &data) {
                Ok(_) => break (wall, mono),
                Err(_) if tries < 3 => tries += 1,
                Err(e) => {
                    return Err(IcmpError::Send {
                        what: "a UDP probe",
                        dst: self.dst.ip(),
                        source: std::sync::Arc::new(e),
                    })
                }
            }
        };
        let (tx, rx) = oneshot::channel();
        st.waiting.insert(
            seq,
            Waiting {
                sent_wall: wall,
                sent_mono: mono,
                tx,
            },
        );
        Ok((seq, rx, mono))
    }

    /// Reads both queues and hands each answer to its probe; whether both are empty now.
    fn drain(&self) -> bool {
        let fd = self.fd.get_ref();
        let mut buf = [0u8; 1536];
        let mut cmsg = sys::CmsgBuf::default();
        let mut emptied = true;
        for errqueue in [true, false] {
            let mut empty = false;
            for _ in 0..READ_BATCH {
                match sys::recv(fd, &mut buf, &mut cmsg, errqueue) {
                    // A datagram from the destination is not an answer (see the module docs).
                    Ok(r) if errqueue => {
                        let now = Instant::now();
                        self.handle(buf.get(..r.len).unwrap_or(&buf), &r, now);
                    }
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        empty = true;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    // The pending error a queued one leaves, reported once: the details are
                    // on the error queue.
                    Err(_) => {}
                }
            }
            emptied &= empty;
        }
        emptied
    }

    /// Matches one error-queue message to the probe it is about.
    fn handle(&self, quoted: &[u8], r: &sys::Received, now: Instant) {
        let Some(q) = r.queued else { return };
        if q.origin != ORIGIN_ICMP && q.origin != ORIGIN_ICMP6 {
            return; // a local error (e.g. EMSGSIZE): the send already failed
        }
        let Some(kind) = packet::error_kind(self.v6, q.icmp_type, q.code, q.info) else {
            return;
        };
        let (Some(from), Some(about)) = (q.offender, r.from) else {
            return;
        };
        if canonical(about.ip()) != self.dst.ip() || about.port() != self.dst.port() {
            return;
        }
        let Some(seq) = sequence_of(quoted, self.payload_size) else {
            return;
        };
        let Some(w) = lock(&self.state).waiting.remove(&seq) else {
            return;
        };
        let mono = now.saturating_duration_since(w.sent_mono);
        let (rtt, timestamp_source) = measured_rtt(r.kernel_time, w.sent_wall, mono);
        let _ = w.tx.send(FlowReply {
            answer: FlowAnswer::Icmp(kind),
            from: canonical(from),
            rtt,
            timestamp_source,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_their_sequence() {
        let p = payload(0x1234, 36);
        assert_eq!(p.len(), 36);
        assert_eq!(&p[..2], &[0x12, 0x34]);
        assert_eq!(sequence_of(&p, 36), Some(0x1234));
        // Routers may quote less than the whole payload.
        assert_eq!(sequence_of(&p[..10], 36), Some(0x1234));
        assert_eq!(sequence_of(&p[..2], 36), Some(0x1234));
        assert_eq!(payload(7, 2), [0, 7]);
        assert_eq!(sequence_of(&[0, 7], 2), Some(7));
    }

    #[test]
    fn other_payloads_are_not_ours() {
        let p = payload(9, 36);
        // Too little quoted to hold a sequence: unmatchable.
        assert_eq!(sequence_of(&p[..1], 36), None);
        assert_eq!(sequence_of(&[], 36), None);
        // Longer than our probes, or another pattern.
        assert_eq!(sequence_of(&payload(9, 40), 36), None);
        let mut other = p.clone();
        other[20] ^= 0xff;
        assert_eq!(sequence_of(&other, 36), None);
    }
}
