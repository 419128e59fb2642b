//! TCP SYN probes with a TTL, for traces (mtr's `-T`).
//!
//! Each probe is a non-blocking `connect` from a socket of its own, with the TTL / hop limit
//! set and `IP_RECVERR` / `IPV6_RECVERR`. A router where the TTL runs out answers the SYN with
//! ICMP time exceeded, which ends the connect and which the kernel queues on the socket's
//! error queue with who sent it (`SO_EE_OFFENDER`) and when it came in (`SO_TIMESTAMPNS`).
//! The destination answers with a SYN-ACK (the connect succeeds; the RTT is the kernel's own
//! measurement of the handshake, `TCP_INFO`'s `tcpi_rtt`, and closing the socket resets the
//! connection at once, `SO_LINGER` 0) or with a RST (the port is closed: still an answer from
//! the destination). No privilege is needed.
//!
//! A SYN that got no answer is sent again by the kernel after its initial retransmission
//! timeout (1 s); an answer that may be to the second SYN has no known RTT, so such a probe
//! counts as lost (`TCP_SYNCNT` 1 keeps it to one retransmission).
//!
//! Fixed flows: a connection is one socket, so probes in flight at once need source ports of
//! their own, and the probes of one trace cannot all share one flow as UDP's and ICMP's do
//! (that would take a raw socket). A [`TcpFlow`] keeps still what it can: each TTL keeps its
//! source port from round to round, so each hop is probed along one ECMP path and its
//! statistics do not mix paths, though neighbouring hops may lie on different ones. A port
//! is taken again once the previous probe with it is done and twice as long again has passed
//! (late segments of its connection must not reach the next one); rounds faster than that
//! give a TTL a few ports.

use crate::control::{self, ORIGIN_ICMP, ORIGIN_ICMP6};
use crate::packet;
use crate::service::canonical;
use crate::sys;
use crate::types::{measured_rtt, FlowAnswer, FlowReply, IcmpError, TimestampSource};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Source ports remembered per TTL (more probes of a TTL in flight at once use ports once).
const PORTS_PER_TTL: usize = 8;
/// `tcpi_state` while the SYN waits for its answer.
const TCP_SYN_SENT: u8 = 2;
/// `tcpi_state` of a closed socket.
const TCP_CLOSE: u8 = 7;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What `TCP_INFO` says that matters here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    /// `tcpi_state`: 1 once established.
    pub state: u8,
    /// `tcpi_rtt`: the smoothed RTT in microseconds (after a handshake, its RTT).
    pub rtt_us: u32,
    /// `tcpi_total_retrans`: segments sent again, the SYN included.
    pub total_retrans: u32,
}

impl TcpInfo {
    /// Reads the fields from `struct tcp_info`'s bytes; `None` when too short.
    pub fn parse(b: &[u8]) -> Option<TcpInfo> {
        Some(TcpInfo {
            state: *b.first()?,
            rtt_us: control::ne_u32(b, 68)?,
            total_retrans: control::ne_u32(b, 100)?,
        })
    }
}

/// One remembered source port of a TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    port: u16,
    /// A probe in flight holds it.
    busy: bool,
    /// Not to be taken again before then (see [`quiet_time`]).
    free_at: Instant,
}

/// Source ports by TTL: a TTL keeps the ports its probes used, and a probe takes one that
/// no probe holds and whose last connection is quiet.
#[derive(Debug, Default)]
struct Ports {
    by_ttl: HashMap<u8, Vec<Slot>>,
}

impl Ports {
    /// A port of `ttl` free at `now`, now held; `None`: a new one is needed.
    fn take(&mut self, ttl: u8, now: Instant) -> Option<u16> {
        let slot = self
            .by_ttl
            .get_mut(&ttl)?
            .iter_mut()
            .find(|s| !s.busy && s.free_at <= now)?;
        slot.busy = true;
        Some(slot.port)
    }

    /// Records a new port of `ttl` as held (unless `ttl` has enough ports already).
    fn add(&mut self, ttl: u8, port: u16, now: Instant) {
        let ports = self.by_ttl.entry(ttl).or_default();
        if ports.len() < PORTS_PER_TTL && !ports.iter().any(|s| s.port == port) {
            ports.push(Slot {
                port,
                busy: true,
                free_at: now,
            });
        }
    }

    /// The probe holding `port` is done with it; it may be taken again from `free_at`.
    fn release(&mut self, ttl: u8, port: u16, free_at: Instant) {
        if let Some(slot) = self
            .by_ttl
            .get_mut(&ttl)
            .and_then(|v| v.iter_mut().find(|s| s.port == port))
        {
            slot.busy = false;
            slot.free_at = free_at;
        }
    }

    /// `port` could not be used again (someone else has it): forget it.
    fn forget(&mut self, ttl: u8, port: u16) {
        if let Some(v) = self.by_ttl.get_mut(&ttl) {
            v.retain(|s| s.port != port);
        }
    }
}

/// How long after a probe a new connection may use its source port: as long again as the
/// probe took, twice over. Segments of the probe's connection may still be on their way
/// (the destination's FIN or first data, sent before the reset reached it; a late SYN-ACK),
/// and one reaching a new connection of the same addresses and ports in `SYN_SENT` makes the
/// kernel reset it and send the SYN again, which would count as lost.
fn quiet_time(took: Duration) -> Duration {
    took.saturating_mul(2)
}

/// TCP SYN probes to one destination port: see the module documentation.
#[derive(Debug)]
pub struct TcpFlow {
    dst: SocketAddr,
    source: Option<IpAddr>,
    ports: Mutex<Ports>,
}

/// One probe's socket; closing it gives its port back to the TTL.
struct Attempt<'a> {
    flow: &'a TcpFlow,
    ttl: u8,
    port: u16,
    sent: Instant,
    fd: Option<AsyncFd<OwnedFd>>,
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        // The socket first: the port is free once it is closed.
        drop(self.fd.take());
        let now = Instant::now();
        let free_at = now + quiet_time(now.saturating_duration_since(self.sent));
        lock(&self.flow.ports).release(self.ttl, self.port, free_at);
    }
}

/// How a connect stands.
enum Outcome {
    Answer(FlowReply),
    Lost(IcmpError),
    Pending,
}

/// No answer that counts (the wait's own timeout is filled in by the caller).
fn lost_outcome(dst: IpAddr) -> Outcome {
    Outcome::Lost(IcmpError::Timeout {
        dst,
        timeout: Duration::ZERO,
    })
}

/// The unspecified address of a family.
fn any(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

impl TcpFlow {
    /// Probes to `dst` (from `source` when given).
    pub fn new(dst: SocketAddr, source: Option<IpAddr>) -> Result<TcpFlow, IcmpError> {
        let dst = SocketAddr::new(canonical(dst.ip()), dst.port());
        let source = source.map(canonical);
        if source.is_some_and(|s| s.is_ipv6() != dst.is_ipv6()) {
            return Err(IcmpError::Invalid(format!(
                "source address {source:?} is not of the same IP version as {dst}"
            )));
        }
        Ok(TcpFlow {
            dst,
            source,
            ports: Mutex::new(Ports::default()),
        })
    }

    /// The destination address and port.
    pub fn destination(&self) -> SocketAddr {
        self.dst
    }

    /// The source ports probes with `ttl` have used, for tests and debugging.
    pub fn ports(&self, ttl: u8) -> Vec<u16> {
        lock(&self.ports)
            .by_ttl
            .get(&ttl)
            .map(|v| v.iter().map(|s| s.port).collect())
            .unwrap_or_default()
    }

    /// Sends one SYN with hop limit `ttl` and waits up to `timeout` for the answer: an ICMP
    /// error from a router ([`FlowAnswer::Icmp`]), or the destination's SYN-ACK
    /// ([`FlowAnswer::Accepted`]) or RST ([`FlowAnswer::Refused`]). Nothing in time (or an
    /// answer only to the kernel's retransmission) is [`IcmpError::Timeout`]; a SYN that
    /// cannot be sent (no route) [`IcmpError::Send`]. Must run inside a Tokio runtime with
    /// I/O enabled.
    pub async fn probe(&self, ttl: u8, timeout: Duration) -> Result<FlowReply, IcmpError> {
        let v6 = self.dst.is_ipv6();
        if !v6 && ttl == 0 {
            return Err(IcmpError::Invalid("an IPv4 TTL must be 1 to 255".into()));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(IcmpError::Invalid(
                "TCP probes run inside a Tokio runtime".into(),
            ));
        }
        let (attempt, sent_wall, sent_mono) = self.start(ttl)?;
        let Some(fd) = attempt.fd.as_ref() else {
            return Err(IcmpError::Closed);
        };
        let deadline = tokio::time::Instant::from_std(sent_mono + timeout);
        let lost = || IcmpError::Timeout {
            dst: self.dst.ip(),
            timeout,
        };
        loop {
            tokio::select! {
                biased;
                ready = fd.ready(Interest::READABLE | Interest::WRITABLE | Interest::ERROR) => {
                    let mut guard = ready
                        .map_err(|e| IcmpError::io("waiting for the TCP probe socket", e))?;
                    match self.outcome(fd.get_ref(), sent_wall, sent_mono) {
                        Outcome::Answer(r) => return Ok(r),
                        Outcome::Lost(IcmpError::Timeout { .. }) => return Err(lost()),
                        Outcome::Lost(e) => return Err(e),
                        Outcome::Pending => guard.clear_ready(),
                    }
                }
                () = tokio::time::sleep_until(deadline) => return Err(lost()),
            }
        }
    }

    /// Opens the probe's socket and starts connecting: from the TTL's port when one is free
    /// (else a new one); returns it with the send times.
    fn start(&self, ttl: u8) -> Result<(Attempt<'_>, SystemTime, Instant), IcmpError> {
        let v6 = self.dst.is_ipv6();
        let family = if v6 { "TCPv6" } else { "TCP" };
        let mut wanted = lock(&self.ports).take(ttl, Instant::now());
        loop {
            let port = wanted.unwrap_or(0);
            let fd = sys::open_transport(v6, true)
                .map_err(|e| IcmpError::io(format!("opening a {family} socket"), e))?;
            let set = |level, name, value, what: &str| {
                sys::set_int(&fd, level, name, value)
                    .map_err(|e| IcmpError::io(format!("setting {what} on the {family} socket"), e))
            };
            set(libc::SOL_SOCKET, libc::SO_REUSEADDR, 1, "SO_REUSEADDR")?;
            set(libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1, "SO_TIMESTAMPNS")?;
            set(libc::IPPROTO_TCP, libc::TCP_SYNCNT, 1, "TCP_SYNCNT")?;
            if v6 {
                set(libc::IPPROTO_IPV6, libc::IPV6_RECVERR, 1, "IPV6_RECVERR")?;
            } else {
                set(libc::IPPROTO_IP, libc::IP_RECVERR, 1, "IP_RECVERR")?;
            }
            sys::set_linger_reset(&fd).map_err(|e| {
                IcmpError::io(format!("setting SO_LINGER on the {family} socket"), e)
            })?;
            sys::set_hop_limit(&fd, v6, Some(ttl)).map_err(|e| {
                IcmpError::io(format!("setting the {family} socket's TTL to {ttl}"), e)
            })?;
            let at = SocketAddr::new(self.source.unwrap_or(any(v6)), port);
            let retry = |ports: &Mutex<Ports>| {
                lock(ports).forget(ttl, port);
                port != 0
            };
            if let Err(e) = sys::bind(&fd, at) {
                if retry(&self.ports) {
                    wanted = None;
                    continue;
                }
                return Err(IcmpError::io(
                    format!("binding the {family} socket to {at}"),
                    e,
                ));
            }
            let (wall, mono) = (SystemTime::now(), Instant::now());
            match sys::connect(&fd, self.dst) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
                // Refused at once (loopback): the outcome says so.
                Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {}
                // The port's connection to this destination is still around (someone else's).
                Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) && retry(&self.ports) => {
                    wanted = None;
                    continue;
                }
                Err(e) => {
                    if port != 0 {
                        lock(&self.ports).release(ttl, port, Instant::now());
                    }
                    return Err(IcmpError::Send {
                        what: "a TCP SYN",
                        dst: self.dst.ip(),
                        source: Arc::new(e),
                    });
                }
            }
            let local = match sys::local_addr(&fd) {
                Ok(a) => a.port(),
                Err(e) => {
                    lock(&self.ports).forget(ttl, port);
                    return Err(IcmpError::io(
                        format!("reading the {family} socket's address"),
                        e,
                    ));
                }
            };
            if port == 0 {
                lock(&self.ports).add(ttl, local, mono);
            }
            let mut attempt = Attempt {
                flow: self,
                ttl,
                port: local,
                sent: mono,
                fd: None,
            };
            let interest = Interest::READABLE | Interest::WRITABLE | Interest::ERROR;
            // SAFETY: the `OwnedFd` is open and the `AsyncFd` owns it from now on.
            let watched = unsafe { AsyncFd::register_with_interest(fd, interest) }
                .map_err(|e| IcmpError::io(format!("watching the {family} socket"), e.into()))?;
            attempt.fd = Some(watched);
            return Ok((attempt, wall, mono));
        }
    }

    /// What the socket says now: an ICMP error on its error queue, or how the connect ended.
    fn outcome(&self, fd: &OwnedFd, sent_wall: SystemTime, sent_mono: Instant) -> Outcome {
        let mut buf = [0u8; 256];
        let mut cmsg = sys::CmsgBuf::default();
        while let Ok(r) = sys::recv(fd, &mut buf, &mut cmsg, true) {
            if let Some(reply) = self.icmp_answer(&r, Instant::now(), sent_wall, sent_mono) {
                return Outcome::Answer(reply);
            }
        }
        let info = || sys::tcp_info(fd).ok().and_then(|b| TcpInfo::parse(&b));
        let send_lost = |e: std::io::Error| {
            Outcome::Lost(IcmpError::Send {
                what: "a TCP SYN",
                dst: self.dst.ip(),
                source: Arc::new(e),
            })
        };
        let retransmitted = |i: Option<TcpInfo>| i.is_some_and(|i| i.total_retrans > 0);
        // The handshake happened: the destination answered with a SYN-ACK. The socket may
        // have moved on by the time this runs (the peer closed or reset it).
        let accepted = |i: TcpInfo| {
            if i.total_retrans > 0 {
                return lost_outcome(self.dst.ip());
            }
            let mono = sent_mono.elapsed();
            let (rtt, source) = match Duration::from_micros(u64::from(i.rtt_us)) {
                d if d.is_zero() || d > mono => (mono, TimestampSource::User),
                d => (d, TimestampSource::Kernel),
            };
            Outcome::Answer(FlowReply {
                answer: FlowAnswer::Accepted,
                from: self.dst.ip(),
                rtt,
                timestamp_source: source,
            })
        };
        match sys::take_error(fd) {
            Ok(None) => match info() {
                None => Outcome::Pending,
                Some(i) if i.state == TCP_SYN_SENT => Outcome::Pending,
                Some(i) if i.state == TCP_CLOSE && i.rtt_us == 0 => Outcome::Pending,
                Some(i) => accepted(i),
            },
            Ok(Some(e)) if matches!(e.raw_os_error(), Some(libc::ECONNRESET | libc::EPIPE)) => {
                match info() {
                    Some(i) if i.rtt_us > 0 => accepted(i),
                    _ => send_lost(e),
                }
            }
            Ok(Some(e)) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                if retransmitted(info()) {
                    return lost_outcome(self.dst.ip());
                }
                Outcome::Answer(FlowReply {
                    answer: FlowAnswer::Refused,
                    from: self.dst.ip(),
                    rtt: sent_mono.elapsed(),
                    timestamp_source: TimestampSource::User,
                })
            }
            // No ICMP error queued for it: the SYNs timed out, or a local failure.
            Ok(Some(e)) if e.raw_os_error() == Some(libc::ETIMEDOUT) => lost_outcome(self.dst.ip()),
            Ok(Some(e)) | Err(e) => send_lost(e),
        }
    }

    /// The answer an error-queue message gives, if it is an ICMP error about our SYN.
    fn icmp_answer(
        &self,
        r: &sys::Received,
        now: Instant,
        sent_wall: SystemTime,
        sent_mono: Instant,
    ) -> Option<FlowReply> {
        let q = r.queued?;
        if q.origin != ORIGIN_ICMP && q.origin != ORIGIN_ICMP6 {
            return None;
        }
        let kind = packet::error_kind(self.dst.is_ipv6(), q.icmp_type, q.code, q.info)?;
        let about = r.from?;
        if canonical(about.ip()) != self.dst.ip() || about.port() != self.dst.port() {
            return None;
        }
        let mono = now.saturating_duration_since(sent_mono);
        let (rtt, timestamp_source) = measured_rtt(r.kernel_time, sent_wall, mono);
        Some(FlowReply {
            answer: FlowAnswer::Icmp(kind),
            from: canonical(q.offender?),
            rtt,
            timestamp_source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_info_offsets_are_the_kernels() {
        assert_eq!(std::mem::offset_of!(libc::tcp_info, tcpi_rtt), 68);
        assert_eq!(
            std::mem::offset_of!(libc::tcp_info, tcpi_total_retrans),
            100
        );
        let mut b = vec![0u8; 104];
        b[0] = 1;
        b[68..72].copy_from_slice(&1234u32.to_ne_bytes());
        b[100..104].copy_from_slice(&1u32.to_ne_bytes());
        assert_eq!(
            TcpInfo::parse(&b),
            Some(TcpInfo {
                state: 1,
                rtt_us: 1234,
                total_retrans: 1
            })
        );
        // An older kernel's shorter struct, or nothing.
        assert_eq!(TcpInfo::parse(&b[..100]), None);
        assert_eq!(TcpInfo::parse(&[]), None);
    }

    #[test]
    fn each_ttl_keeps_its_ports() {
        let mut p = Ports::default();
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        assert_eq!(p.take(1, t0), None, "nothing yet: a new port");
        p.add(1, 40000, t0);
        // Held by a probe in flight: the next probe of TTL 1 needs another one.
        assert_eq!(p.take(1, t0), None);
        p.add(1, 40001, t0);
        // Done, but quiet only from 60 ms on.
        p.release(1, 40000, ms(60));
        assert_eq!(p.take(1, ms(59)), None);
        assert_eq!(p.take(1, ms(60)), Some(40000), "quiet: taken again");
        assert_eq!(p.take(2, ms(60)), None, "another TTL's ports are its own");
        p.release(1, 40001, ms(10));
        assert_eq!(p.take(1, ms(60)), Some(40001));
        p.forget(1, 40001);
        p.release(1, 40000, ms(60));
        assert_eq!(p.take(1, ms(60)), Some(40000));
        assert_eq!(p.take(1, ms(60)), None);
        // Bounded: beyond PORTS_PER_TTL, ports are used once.
        for port in 0..20 {
            p.add(3, 50000 + port, t0);
        }
        assert_eq!(p.by_ttl[&3].len(), PORTS_PER_TTL);
        // The same port twice is one port.
        p.add(4, 1, t0);
        p.add(4, 1, t0);
        assert_eq!(p.by_ttl[&4].len(), 1);
    }

    #[test]
    fn a_port_rests_twice_as_long_as_its_probe_took() {
        assert_eq!(
            quiet_time(Duration::from_millis(20)),
            Duration::from_millis(40)
        );
        assert_eq!(quiet_time(Duration::ZERO), Duration::ZERO);
        assert_eq!(quiet_time(Duration::MAX), Duration::MAX);
    }
}
