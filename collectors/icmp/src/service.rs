//! The service: sockets per address family opened on first use, one receive thread per
//! family, and the tables that match replies to the requests waiting for them.

use crate::control::{ORIGIN_ICMP, ORIGIN_ICMP6};
use crate::packet::{self, Message};
use crate::sys;
use crate::types::{
    measured_rtt, EchoOptions, IcmpError, Reply, ReplyKind, SocketKind, Stray, StrayKind, Strays,
};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::oneshot;

/// How often the receive thread wakes up on its own to forget lingering requests.
const PURGE_EVERY: Duration = Duration::from_secs(1);
/// Messages read from one socket per wake-up before the others get their turn.
const READ_BATCH: usize = 256;
/// The largest echo data accepted (an IPv4 datagram is at most 65535 bytes).
pub const MAX_PAYLOAD_SIZE: usize = 65_507 - packet::ECHO_HEADER_LEN;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The agent's ICMP service: cheap to clone (clones share the sockets), and lazy: no socket
/// is opened until the first request of an address family. See the crate documentation.
#[derive(Clone)]
pub struct Icmp {
    inner: Arc<Inner>,
}

impl Default for Icmp {
    /// A datagram socket per family where `ping_group_range` allows one, else a raw socket.
    fn default() -> Self {
        Icmp::build(None)
    }
}

impl std::fmt::Debug for Icmp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Icmp")
            .field("v4", &self.socket_kind(false))
            .field("v6", &self.socket_kind(true))
            .finish()
    }
}

struct Inner {
    /// `None`: datagram, else raw.
    only: Option<SocketKind>,
    families: [Family; 2],
}

impl Drop for Inner {
    fn drop(&mut self) {
        for f in &self.families {
            if let Some(rx) = &lock(&f.state).rx {
                rx.stop.store(true, Ordering::Release);
                sys::wake(&rx.wake);
            }
        }
    }
}

struct Family {
    /// Raw sockets choose their identifiers: this one, plus the socket's index.
    ident_base: u16,
    state: Mutex<FamilyState>,
}

#[derive(Default)]
struct FamilyState {
    /// Fixed by the first socket opened, so all of a family's sockets behave alike.
    kind: Option<SocketKind>,
    socks: Vec<Arc<Sock>>,
    rx: Option<Arc<RxShared>>,
}

/// What a receive thread shares with the family.
struct RxShared {
    socks: Mutex<Vec<Arc<Sock>>>,
    wake: OwnedFd,
    stop: AtomicBool,
    /// Failed reads of replies (not "nothing queued"): see [`Icmp::receive_errors`].
    receive_errors: AtomicU64,
}

/// What makes sockets of a family differ: options that cannot be set per packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Flavor {
    source: Option<IpAddr>,
    dont_fragment: bool,
}

/// One socket, with its identifier and the requests waiting on it.
struct Sock {
    fd: OwnedFd,
    v6: bool,
    kind: SocketKind,
    flavor: Flavor,
    ident: u16,
    /// Serialises sends; holds the TTL currently set on the socket (`None`: default).
    send: Mutex<Option<u8>>,
    table: Mutex<Table>,
}

struct Table {
    next_seq: u16,
    entries: HashMap<u16, Entry>,
    closed: bool,
}

struct Entry {
    dst: IpAddr,
    payload_size: usize,
    /// Sent with a flow word ([`packet::set_flow_word`]): the data's first two bytes differ.
    flow: bool,
    sent_wall: SystemTime,
    sent_mono: Instant,
    setup: Duration,
    state: State,
    strays: Option<Strays>,
}

enum State {
    Waiting(oneshot::Sender<Reply>),
    /// Answered; kept until then to recognise duplicates.
    Answered {
        until: Instant,
    },
    /// Timed out (or abandoned); kept until then to recognise late replies.
    Expired {
        until: Instant,
    },
}

impl Icmp {
    /// Only this kind of socket (tests, or a config that insists); `Icmp::default()` tries a
    /// datagram socket, then a raw one.
    pub fn with_kind(kind: SocketKind) -> Self {
        Icmp::build(Some(kind))
    }

    fn build(only: Option<SocketKind>) -> Self {
        let r = sys::random_u32();
        let family = |ident_base: u16| Family {
            ident_base,
            state: Mutex::new(FamilyState::default()),
        };
        Icmp {
            inner: Arc::new(Inner {
                only,
                families: [family(r as u16), family((r >> 16) as u16)],
            }),
        }
    }

    /// How many reads of replies have failed since the service started, over both families
    /// and every user (not counting "nothing queued" or an interrupted call): what
    /// smokeping_prober exports as `smokeping_receive_errors_total`.
    pub fn receive_errors(&self) -> u64 {
        self.inner
            .families
            .iter()
            .filter_map(|f| lock(&f.state).rx.clone())
            .map(|rx| rx.receive_errors.load(Ordering::Relaxed))
            .sum()
    }

    /// `"datagram"` or `"raw"` once the family's first socket is open, else `None`.
    pub fn socket_kind(&self, v6: bool) -> Option<&'static str> {
        lock(&self.inner.families[usize::from(v6)].state)
            .kind
            .map(SocketKind::as_str)
    }

    /// Opens the family's default socket now (if not yet open) and says which kind it is:
    /// for a health check or status page that wants the permission problem up front.
    pub fn open(&self, v6: bool) -> Result<SocketKind, IcmpError> {
        let s = self.sock(
            v6,
            Flavor {
                source: None,
                dont_fragment: false,
            },
        )?;
        Ok(s.kind)
    }

    /// Sends one echo request and waits for its reply until `opts.timeout` (or
    /// `opts.deadline`). An ICMP error
    /// quoting the request (unreachable, time exceeded, ...) ends the wait with
    /// [`IcmpError::ErrorReply`].
    pub async fn echo(&self, dst: IpAddr, opts: &EchoOptions) -> Result<Reply, IcmpError> {
        let r = self.send_echo(dst, opts)?.wait().await?;
        match r.kind {
            ReplyKind::Echo => Ok(r),
            _ => Err(IcmpError::ErrorReply(Box::new(r))),
        }
    }

    /// Sends one echo request with hop limit `ttl` and waits until `opts.timeout` for what
    /// comes back: the destination's echo reply, or an error from a hop (time exceeded from
    /// the router where the TTL ran out, unreachable, ...) with that hop's address.
    ///
    /// Paris traceroute's fixed flow: the identifier is the socket's, and the first two
    /// bytes of the echo data compensate the sequence ([`packet::flow_word`]), so every
    /// probe of a destination has the same ICMP header but for the sequence, checksum
    /// included (with at least two bytes of data), and load balancers that hash it send them
    /// all along one path.
    pub async fn probe_ttl(
        &self,
        dst: IpAddr,
        ttl: u8,
        opts: &EchoOptions,
    ) -> Result<Reply, IcmpError> {
        let opts = EchoOptions {
            ttl: Some(ttl),
            ..opts.clone()
        };
        self.send(dst, &opts, true)?.wait().await
    }

    /// Sends one echo request now; the returned [`Pending`] waits for what comes back. For
    /// senders that pace requests themselves (ping, mtr): many may be pending at once on one
    /// socket, matched by identifier and sequence.
    pub fn send_echo(&self, dst: IpAddr, opts: &EchoOptions) -> Result<Pending, IcmpError> {
        self.send(dst, opts, false)
    }

    /// [`Icmp::send_echo`], with the checksum kept constant when `flow` ([`Icmp::probe_ttl`]).
    fn send(&self, dst: IpAddr, opts: &EchoOptions, flow: bool) -> Result<Pending, IcmpError> {
        let start = Instant::now();
        let dst = canonical(dst);
        let v6 = dst.is_ipv6();
        let source = opts.source.map(canonical);
        if let Some(src) = source {
            if src.is_ipv6() != v6 {
                return Err(IcmpError::Invalid(format!(
                    "source address {src} is not of the same IP version as {dst}"
                )));
            }
        }
        if !v6 && opts.ttl == Some(0) {
            return Err(IcmpError::Invalid("an IPv4 TTL must be 1 to 255".into()));
        }
        if opts.payload_size > MAX_PAYLOAD_SIZE {
            return Err(IcmpError::Invalid(format!(
                "payload size {} is above the maximum of {MAX_PAYLOAD_SIZE}",
                opts.payload_size
            )));
        }
        let sock = self.sock(
            v6,
            Flavor {
                source,
                dont_fragment: opts.dont_fragment,
            },
        )?;
        sock.send(dst, opts, start, flow)
    }

    /// The family's socket of this flavour, opened now if needed.
    fn sock(&self, v6: bool, flavor: Flavor) -> Result<Arc<Sock>, IcmpError> {
        let fam = &self.inner.families[usize::from(v6)];
        let mut st = lock(&fam.state);
        if let Some(s) = st.socks.iter().find(|s| s.flavor == flavor) {
            return Ok(s.clone());
        }
        let kinds: &[SocketKind] = match (st.kind, self.inner.only) {
            (Some(SocketKind::Datagram), _) | (None, Some(SocketKind::Datagram)) => {
                &[SocketKind::Datagram]
            }
            (Some(SocketKind::Raw), _) | (None, Some(SocketKind::Raw)) => &[SocketKind::Raw],
            (None, None) => &[SocketKind::Datagram, SocketKind::Raw],
        };
        let ident = fam.ident_base.wrapping_add(st.socks.len() as u16);
        let mut denied = Vec::new();
        let mut opened = None;
        for &kind in kinds {
            match sys::open(v6, kind == SocketKind::Raw) {
                Ok(fd) => {
                    opened = Some((kind, fd));
                    break;
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES) | Some(libc::EPERM)) => {
                    denied.push(kind);
                }
                Err(e) => {
                    return Err(IcmpError::io(
                        format!("opening a {kind} {} socket", proto_name(v6)),
                        e,
                    ))
                }
            }
        }
        let Some((kind, fd)) = opened else {
            return Err(IcmpError::NotPermitted(not_permitted(&denied)));
        };
        let sock = Arc::new(configure(fd, v6, kind, flavor, ident)?);
        tracing::info!(
            kind = kind.as_str(),
            identifier = sock.ident,
            source = ?flavor.source,
            dont_fragment = flavor.dont_fragment,
            "icmp: opened a {kind} {} socket",
            proto_name(v6)
        );
        // The receive thread first: a socket is only kept once something reads it.
        let rx = match &st.rx {
            Some(rx) => rx.clone(),
            None => {
                let rx = Arc::new(RxShared {
                    socks: Mutex::new(Vec::new()),
                    wake: sys::eventfd().map_err(|e| IcmpError::io("creating an eventfd", e))?,
                    stop: AtomicBool::new(false),
                    receive_errors: AtomicU64::new(0),
                });
                let run = rx.clone();
                std::thread::Builder::new()
                    .name(if v6 { "eos-icmp6" } else { "eos-icmp4" }.into())
                    .spawn(move || receive(run))
                    .map_err(|e| IcmpError::io("starting the ICMP receive thread", e))?;
                st.rx = Some(rx.clone());
                rx
            }
        };
        st.kind = Some(kind);
        st.socks.push(sock.clone());
        lock(&rx.socks).push(sock.clone());
        sys::wake(&rx.wake);
        Ok(sock)
    }
}

fn proto_name(v6: bool) -> &'static str {
    if v6 {
        "ICMPv6"
    } else {
        "ICMP"
    }
}

/// IPv4-mapped IPv6 addresses are IPv4.
pub(crate) fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

/// What to say when the kinds tried were all refused.
fn not_permitted(denied: &[SocketKind]) -> String {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unreadable".into());
    let gid = sys::egid();
    let dgram = format!("net.ipv4.ping_group_range \"{range}\" does not include gid {gid}");
    match denied {
        [SocketKind::Datagram] => {
            format!("ICMP needs a datagram ICMP socket, not permitted: {dgram}")
        }
        [SocketKind::Raw] => "ICMP needs a raw socket, which needs CAP_NET_RAW".into(),
        _ => format!("ICMP needs a datagram ICMP socket ({dgram}) or CAP_NET_RAW for a raw socket"),
    }
}

/// Sets a new socket up for receiving, and binds it.
fn configure(
    fd: OwnedFd,
    v6: bool,
    kind: SocketKind,
    flavor: Flavor,
    raw_ident: u16,
) -> Result<Sock, IcmpError> {
    let set = |level, name, value, what: &str| {
        sys::set_int(&fd, level, name, value)
            .map_err(|e| IcmpError::io(format!("setting {what} on the ICMP socket"), e))
    };
    set(libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, 1, "SO_TIMESTAMPNS")?;
    // A bigger receive buffer for bursts of replies (the kernel caps it at rmem_max).
    let _ = sys::set_int(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, 1 << 20);
    if v6 {
        set(
            libc::IPPROTO_IPV6,
            libc::IPV6_RECVHOPLIMIT,
            1,
            "IPV6_RECVHOPLIMIT",
        )?;
    } else {
        set(libc::IPPROTO_IP, libc::IP_RECVTTL, 1, "IP_RECVTTL")?;
    }
    match (kind, v6) {
        // Datagram sockets get ICMP errors only through the error queue.
        (SocketKind::Datagram, false) => set(libc::IPPROTO_IP, libc::IP_RECVERR, 1, "IP_RECVERR")?,
        (SocketKind::Datagram, true) => {
            set(libc::IPPROTO_IPV6, libc::IPV6_RECVERR, 1, "IPV6_RECVERR")?
        }
        (SocketKind::Raw, false) => {
            sys::filter_v4(&fd).map_err(|e| IcmpError::io("setting ICMP_FILTER", e))?
        }
        (SocketKind::Raw, true) => {
            sys::filter_v6(&fd).map_err(|e| IcmpError::io("setting ICMP6_FILTER", e))?
        }
    }
    if flavor.dont_fragment {
        if v6 {
            set(libc::IPPROTO_IPV6, libc::IPV6_DONTFRAG, 1, "IPV6_DONTFRAG")?;
        } else {
            set(
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                libc::IP_PMTUDISC_DO,
                "IP_MTU_DISCOVER",
            )?;
        }
    }
    let any = if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    };
    let ident = match kind {
        SocketKind::Datagram => {
            // Port 0: the kernel picks a free identifier, which replies are demultiplexed by.
            let at = SocketAddr::new(flavor.source.unwrap_or(any), 0);
            sys::bind(&fd, at)
                .map_err(|e| IcmpError::io(format!("binding the ICMP socket to {}", at.ip()), e))?;
            sys::local_addr(&fd)
                .map_err(|e| IcmpError::io("reading the ICMP socket's identifier", e))?
                .port()
        }
        SocketKind::Raw => {
            if let Some(src) = flavor.source {
                sys::bind(&fd, SocketAddr::new(src, 0))
                    .map_err(|e| IcmpError::io(format!("binding the ICMP socket to {src}"), e))?;
            }
            raw_ident
        }
    };
    let mut seq = [0u8; 2];
    seq.copy_from_slice(&sys::random_u32().to_ne_bytes()[..2]);
    Ok(Sock {
        fd,
        v6,
        kind,
        flavor,
        ident,
        send: Mutex::new(None),
        table: Mutex::new(Table {
            next_seq: u16::from_ne_bytes(seq),
            entries: HashMap::new(),
            closed: false,
        }),
    })
}

impl Table {
    /// A sequence number not waiting or lingering.
    fn alloc(&mut self) -> Option<u16> {
        if self.entries.len() > usize::from(u16::MAX) {
            self.purge(Instant::now());
        }
        for _ in 0..=u16::MAX {
            let s = self.next_seq;
            self.next_seq = self.next_seq.wrapping_add(1);
            if !self.entries.contains_key(&s) {
                return Some(s);
            }
        }
        None
    }

    /// Forgets answered and expired requests whose linger time is over.
    fn purge(&mut self, now: Instant) {
        self.entries.retain(|_, e| match e.state {
            State::Waiting(_) => true,
            State::Answered { until } | State::Expired { until } => until > now,
        });
    }

    /// The request's wait is over without a reply: linger for late replies, or forget it.
    fn expire(&mut self, seq: u16) {
        let Some(e) = self.entries.get_mut(&seq) else {
            return;
        };
        if !matches!(e.state, State::Waiting(_)) {
            return;
        }
        match &e.strays {
            Some(s) => {
                e.state = State::Expired {
                    until: Instant::now() + s.linger,
                }
            }
            None => {
                self.entries.remove(&seq);
            }
        }
    }
}

impl Sock {
    fn send(
        self: &Arc<Self>,
        dst: IpAddr,
        opts: &EchoOptions,
        start: Instant,
        flow: bool,
    ) -> Result<Pending, IcmpError> {
        let mut ttl_now = lock(&self.send);
        if *ttl_now != opts.ttl {
            sys::set_hop_limit(&self.fd, self.v6, opts.ttl).map_err(|e| {
                let what = if self.v6 {
                    "IPV6_UNICAST_HOPS"
                } else {
                    "IP_TTL"
                };
                let to = opts.ttl.map_or("the default".into(), |t| t.to_string());
                IcmpError::io(format!("setting {what} to {to}"), e)
            })?;
            *ttl_now = opts.ttl;
        }
        let mut packet = packet::echo_request(self.v6, self.ident, 0, opts.payload_size);
        let (tx, rx) = oneshot::channel();
        let (seq, mut sent_wall, mut sent_mono) = {
            let mut t = lock(&self.table);
            if t.closed {
                return Err(IcmpError::Closed);
            }
            let seq = t.alloc().ok_or(IcmpError::Busy(self.ident))?;
            packet[6..8].copy_from_slice(&seq.to_be_bytes());
            if flow {
                packet::set_flow_word(self.v6, &mut packet, seq);
            } else if !self.v6 {
                packet[2..4].copy_from_slice(&[0, 0]);
                let c = packet::checksum(&packet);
                packet[2..4].copy_from_slice(&c.to_be_bytes());
            }
            let (wall, mono) = (SystemTime::now(), Instant::now());
            t.entries.insert(
                seq,
                Entry {
                    dst,
                    payload_size: opts.payload_size,
                    flow,
                    sent_wall: wall,
                    sent_mono: mono,
                    setup: mono.saturating_duration_since(start),
                    state: State::Waiting(tx),
                    strays: opts.strays.clone(),
                },
            );
            (seq, wall, mono)
        };
        // A datagram socket with IP_RECVERR reports each ICMP error once more as the socket's
        // pending error, which the next send returns; the details are on the error queue, so
        // such a stale error is passed over (a real one repeats).
        let tries = if self.kind == SocketKind::Datagram {
            3
        } else {
            1
        };
        let mut result = sys::send_to(&self.fd, &packet, dst);
        for _ in 1..tries {
            if result.is_ok() {
                break;
            }
            let (wall, mono) = (SystemTime::now(), Instant::now());
            if let Some(e) = lock(&self.table).entries.get_mut(&seq) {
                e.sent_wall = wall;
                e.sent_mono = mono;
                e.setup = mono.saturating_duration_since(start);
            }
            (sent_wall, sent_mono) = (wall, mono);
            result = sys::send_to(&self.fd, &packet, dst);
        }
        drop(ttl_now);
        if let Err(e) = result {
            lock(&self.table).entries.remove(&seq);
            return Err(IcmpError::Send {
                what: "an echo request",
                dst,
                source: Arc::new(e),
            });
        }
        let mut deadline = sent_mono + opts.timeout;
        if let Some(d) = opts.deadline {
            deadline = deadline.min(d);
        }
        Ok(Pending {
            sock: self.clone(),
            seq,
            dst,
            rx,
            sent_at: sent_wall,
            setup: sent_mono.saturating_duration_since(start),
            deadline,
            timeout: deadline.saturating_duration_since(sent_mono),
            done: false,
        })
    }

    /// Reads what is queued (the error queue when `errqueue`) and hands it out; says how
    /// many reads of replies failed.
    fn drain(&self, buf: &mut [u8], cmsg: &mut sys::CmsgBuf, errqueue: bool) -> u64 {
        let mut failed = 0;
        for _ in 0..READ_BATCH {
            match sys::recv(&self.fd, buf, cmsg, errqueue) {
                Ok(r) => {
                    let now = Instant::now();
                    let len = r.len.min(buf.len());
                    self.handle(&buf[..len], &r, now, errqueue);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if errqueue {
                        // POLLERR with an empty queue: a pending error whose queued copy was
                        // dropped (receive buffer full). Clear it, or poll would spin.
                        let _ = sys::take_error(&self.fd);
                    }
                    return failed;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // The socket's pending error, reported once (see `send`): details come
                    // through the error queue.
                    tracing::trace!("icmp: receive: {e}");
                    if errqueue {
                        return failed;
                    }
                    failed += 1;
                }
            }
        }
        failed
    }

    /// Matches one received message to the request it answers.
    fn handle(&self, data: &[u8], r: &sys::Received, now: Instant, errqueue: bool) {
        let Some(m) = self.classify(data, r, errqueue) else {
            return;
        };
        if m.ident != self.ident {
            return;
        }
        let mut stray = None;
        {
            let mut t = lock(&self.table);
            let Some(e) = t.entries.get_mut(&m.seq) else {
                return;
            };
            match m.kind {
                ReplyKind::Echo => {
                    if m.from != e.dst && !e.dst.is_multicast() {
                        return;
                    }
                    let data_ok = |d: &[u8]| {
                        if e.flow {
                            packet::payload_matches_flow(d, e.payload_size, m.seq)
                        } else {
                            packet::payload_matches(d, e.payload_size)
                        }
                    };
                    if !m.data.is_some_and(data_ok) {
                        return;
                    }
                }
                _ => {
                    if m.about != Some(e.dst) {
                        return;
                    }
                }
            }
            let mono = now.saturating_duration_since(e.sent_mono);
            let (rtt, timestamp_source) = measured_rtt(r.kernel_time, e.sent_wall, mono);
            let reply = Reply {
                kind: m.kind,
                from: m.from,
                dst: e.dst,
                rtt,
                timestamp_source,
                sent_at: e.sent_wall,
                hop_limit: m.hop_limit,
                setup: e.setup,
                identifier: self.ident,
                sequence: m.seq,
                size: m.size,
            };
            let linger = e.strays.as_ref().map(|s| s.linger);
            let state = std::mem::replace(
                &mut e.state,
                State::Answered {
                    until: now + linger.unwrap_or_default(),
                },
            );
            match state {
                State::Waiting(tx) => {
                    let _ = tx.send(reply);
                    if linger.is_none() {
                        t.entries.remove(&m.seq);
                    }
                }
                State::Answered { .. } => {
                    stray = e.strays.clone().map(|s| (s, StrayKind::Duplicate, reply));
                }
                State::Expired { .. } => {
                    stray = e.strays.clone().map(|s| (s, StrayKind::Late, reply));
                }
            }
        }
        if let Some((s, kind, reply)) = stray {
            let call = std::panic::AssertUnwindSafe(|| (s.callback)(Stray { kind, reply }));
            if std::panic::catch_unwind(call).is_err() {
                tracing::error!("icmp: a stray-reply callback panicked");
            }
        }
    }

    /// What a message is, if it can be about one of our requests.
    fn classify<'a>(
        &self,
        data: &'a [u8],
        r: &sys::Received,
        errqueue: bool,
    ) -> Option<Matched<'a>> {
        if errqueue {
            let q = r.queued?;
            if q.origin != ORIGIN_ICMP && q.origin != ORIGIN_ICMP6 {
                return None; // a local error (e.g. EMSGSIZE): the send already failed
            }
            let kind = packet::error_kind(self.v6, q.icmp_type, q.code, q.info)?;
            let (ident, seq) = packet::parse_queued_echo(self.v6, data).ok()?;
            return Some(Matched {
                ident,
                seq,
                kind: kind.into(),
                from: q.offender?,
                about: r.from.map(|a| a.ip()),
                data: None,
                hop_limit: r.hop_limit,
                size: data.len(),
            });
        }
        let (msg, from, hop_limit, size) = if self.kind == SocketKind::Raw && !self.v6 {
            let (h, msg) = packet::parse_ipv4_packet(data).ok()?;
            let size = data.len().saturating_sub(h.header_len);
            (msg, IpAddr::V4(h.src), r.hop_limit.or(Some(h.ttl)), size)
        } else {
            let msg = packet::parse_icmp(self.v6, data).ok()?;
            (msg, r.from?.ip(), r.hop_limit, data.len())
        };
        let from = canonical(from);
        match msg {
            Message::EchoReply { ident, seq, data } => Some(Matched {
                ident,
                seq,
                kind: ReplyKind::Echo,
                from,
                about: None,
                data: Some(data),
                hop_limit,
                size,
            }),
            Message::Error { kind, quoted } => Some(Matched {
                ident: quoted.ident,
                seq: quoted.seq,
                kind: kind.into(),
                from,
                about: Some(quoted.dst),
                data: None,
                hop_limit,
                size,
            }),
            Message::EchoRequest { .. } | Message::Other { .. } => None,
        }
    }

    fn close(&self) {
        let mut t = lock(&self.table);
        t.closed = true;
        t.entries.clear();
    }
}

/// A received message that may answer one of our requests.
struct Matched<'a> {
    ident: u16,
    seq: u16,
    kind: ReplyKind,
    from: IpAddr,
    /// For errors: the destination of the request they quote.
    about: Option<IpAddr>,
    /// For echo replies: their data.
    data: Option<&'a [u8]>,
    hop_limit: Option<u8>,
    size: usize,
}

/// The receive thread of one family: waits on all its sockets, hands replies out.
fn receive(rx: Arc<RxShared>) {
    let mut buf = vec![0u8; 1 << 16];
    let mut cmsg = sys::CmsgBuf::default();
    let mut last_purge = Instant::now();
    let mut socks: Vec<Arc<Sock>> = Vec::new();
    while !rx.stop.load(Ordering::Acquire) {
        socks.clone_from(&lock(&rx.socks));
        let mut fds: Vec<libc::pollfd> = socks
            .iter()
            .map(|s| libc::pollfd {
                fd: s.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        fds.push(libc::pollfd {
            fd: rx.wake.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        match sys::poll(&mut fds, PURGE_EVERY) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::error!("icmp: poll: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        }
        for (s, p) in socks.iter().zip(&fds) {
            let mut failed = 0;
            if p.revents & libc::POLLERR != 0 {
                failed += s.drain(&mut buf, &mut cmsg, true);
            }
            if p.revents & libc::POLLIN != 0 {
                failed += s.drain(&mut buf, &mut cmsg, false);
            }
            if failed > 0 {
                rx.receive_errors.fetch_add(failed, Ordering::Relaxed);
            }
        }
        if fds.last().is_some_and(|p| p.revents != 0) {
            sys::drain(&rx.wake);
        }
        if last_purge.elapsed() >= PURGE_EVERY {
            let now = Instant::now();
            for s in &socks {
                lock(&s.table).purge(now);
            }
            last_purge = now;
        }
    }
    for s in lock(&rx.socks).iter() {
        s.close();
    }
}

/// An echo request sent and not yet answered. Dropping it abandons the wait (a reply that
/// comes later is a late one).
pub struct Pending {
    sock: Arc<Sock>,
    seq: u16,
    dst: IpAddr,
    rx: oneshot::Receiver<Reply>,
    sent_at: SystemTime,
    setup: Duration,
    deadline: Instant,
    /// From sending to the deadline.
    timeout: Duration,
    done: bool,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("dst", &self.dst)
            .field("identifier", &self.sock.ident)
            .field("sequence", &self.seq)
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl Pending {
    /// The request's sequence number.
    pub fn sequence(&self) -> u16 {
        self.seq
    }

    /// The request's identifier (a datagram socket's is the kernel's).
    pub fn identifier(&self) -> u16 {
        self.sock.ident
    }

    /// Where it was sent.
    pub fn destination(&self) -> IpAddr {
        self.dst
    }

    /// When it was sent (wall clock).
    pub fn sent_at(&self) -> SystemTime {
        self.sent_at
    }

    /// From the call to sending: opening the socket on first use, building the packet.
    pub fn setup(&self) -> Duration {
        self.setup
    }

    /// When the wait ends.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The kind of socket it went out on.
    pub fn socket_kind(&self) -> SocketKind {
        self.sock.kind
    }

    /// Waits for the reply (an echo reply, or an ICMP error quoting the request) until the
    /// timeout. Needs a Tokio runtime with time enabled.
    pub async fn wait(mut self) -> Result<Reply, IcmpError> {
        let waited = tokio::time::timeout_at(self.deadline.into(), &mut self.rx).await;
        self.done = true;
        match waited {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(IcmpError::Closed),
            Err(_) => {
                let mut t = lock(&self.sock.table);
                // A reply that came just as the timer fired still counts.
                if let Ok(reply) = self.rx.try_recv() {
                    return Ok(reply);
                }
                t.expire(self.seq);
                Err(IcmpError::Timeout {
                    dst: self.dst,
                    timeout: self.timeout,
                })
            }
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if !self.done {
            lock(&self.sock.table).expire(self.seq);
        }
    }
}
