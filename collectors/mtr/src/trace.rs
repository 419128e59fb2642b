//! One trace: rounds of TTL-limited probes, and what each hop answered.
//!
//! - [`Prober`] is the network seam: it opens a [`Flow`] to the destination for each trace,
//!   and the flow sends one probe with a TTL and says what came back. The probers of the
//!   three protocols (ICMP echo, UDP, TCP SYN) are in `probers.rs`; tests put a simulated
//!   network in their place.
//! - [`Trace`] is the pure state of a trace: probes recorded per hop (sent, answered, by
//!   whom, RTT statistics), where the path ends, and the [`Report`] it makes.
//! - [`run`] drives it, whatever the protocol: it opens the trace's flow, then runs `count`
//!   rounds `probe_interval` apart, each round probing every TTL from 1 up to the
//!   destination's (all of `max_hops` until it is known) at once, each probe waited for
//!   `timeout`.
//!
//! Paris-style flow: every probe of a trace goes out on its one flow, which keeps what load
//! balancers hash (ECMP) the same from probe to probe, so that a trace follows one path: the
//! ICMP identifier and checksum, the UDP ports. (TCP can only keep each TTL's source port:
//! see `eos_icmp::TcpFlow`.)

use crate::report::{Hop, Report};
use eos_module::BoxFuture;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Why a trace could not run. Lost probes are not errors: they are loss.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    /// The target's name did not resolve (to an address of the wanted family).
    #[error("resolving {host}: {message}")]
    Resolve { host: String, message: String },
    /// The allow list refuses the target.
    #[error("{0}")]
    Denied(String),
    /// No probe can be sent: the socket cannot be opened (permissions) or set up.
    #[error("probing {dst}: {message}")]
    Socket { dst: IpAddr, message: String },
    /// The request cannot be honoured (too many traces, options out of range).
    #[error("{0}")]
    Refused(String),
}

/// What one probe got back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Probed {
    /// An answer from `from` after `rtt`.
    Answer {
        from: IpAddr,
        rtt: Duration,
        kind: AnswerKind,
    },
    /// Nothing within the timeout (or the probe could not be sent).
    Lost,
}

/// What kind of answer a probe got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerKind {
    /// A router on the way: the TTL ran out there (or another error about the probe that
    /// does not end the path).
    Hop,
    /// The destination answered: an echo reply, a SYN-ACK or RST, or an unreachable from
    /// the destination itself (UDP's port unreachable).
    Destination,
    /// A router said the destination cannot be reached: the path ends at this hop.
    Unreachable,
}

/// The network seam: how probes of one protocol are sent. A trace opens one [`Flow`] to
/// its destination and sends all its probes on it.
pub trait Prober: Send + Sync + 'static {
    /// Opens what the probes of one trace of `dst` share (a socket, the flow's fixed fields).
    /// An error means probing cannot work at all (no socket), not a lost probe.
    fn open(&self, dst: IpAddr) -> Result<Arc<dyn Flow>, TraceError>;

    /// `icmp`, `udp` or `tcp`, for reports.
    fn protocol(&self) -> &'static str;
}

/// The probes of one trace to one destination.
pub trait Flow: Send + Sync + 'static {
    /// Sends one probe with hop limit `ttl` and waits up to `timeout` for what comes back.
    /// An error means probing cannot work at all, not a lost probe.
    fn probe(self: Arc<Self>, ttl: u8, timeout: Duration) -> BoxFuture<Result<Probed, TraceError>>;
}

/// How a trace probes.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceOptions {
    /// The highest TTL probed.
    pub max_hops: u8,
    /// Rounds (probes per hop).
    pub count: u32,
    /// Between the starts of two rounds.
    pub probe_interval: Duration,
    /// How long each probe is waited for.
    pub timeout: Duration,
    /// No round starts when it could not finish by then.
    pub deadline: Option<Instant>,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            max_hops: 30,
            count: 10,
            probe_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            deadline: None,
        }
    }
}

/// What one hop (TTL) got over a trace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HopStats {
    pub sent: u32,
    pub received: u32,
    /// Who answered, with how many answers each, in the order first seen.
    pub addrs: Vec<(IpAddr, u32)>,
    /// The RTT of the answer to the latest round that got one: (round, rtt).
    pub last: Option<(u32, Duration)>,
    pub best: Option<Duration>,
    pub worst: Option<Duration>,
    /// Running mean and sum of squared deviations of the RTTs in seconds (Welford).
    mean: f64,
    m2: f64,
}

/// At most this many different answering addresses are kept per hop.
const MAX_ADDRS: usize = 8;

impl HopStats {
    fn record(&mut self, round: u32, p: &Probed) {
        self.sent += 1;
        let Probed::Answer { from, rtt, .. } = *p else {
            return;
        };
        self.received += 1;
        if let Some((_, n)) = self.addrs.iter_mut().find(|(a, _)| *a == from) {
            *n += 1;
        } else if self.addrs.len() < MAX_ADDRS {
            self.addrs.push((from, 1));
        }
        if self.last.is_none_or(|(r, _)| round >= r) {
            self.last = Some((round, rtt));
        }
        self.best = Some(self.best.map_or(rtt, |b| b.min(rtt)));
        self.worst = Some(self.worst.map_or(rtt, |w| w.max(rtt)));
        let x = rtt.as_secs_f64();
        let n = f64::from(self.received);
        let d = x - self.mean;
        self.mean += d / n;
        self.m2 += d * (x - self.mean);
    }

    /// The mean RTT of the answers.
    pub fn mean(&self) -> Option<Duration> {
        (self.received > 0).then(|| Duration::from_secs_f64(self.mean.max(0.0)))
    }

    /// The sample standard deviation of the RTTs (as mtr computes it; 0 with one answer).
    pub fn stddev(&self) -> Option<Duration> {
        match self.received {
            0 => None,
            1 => Some(Duration::ZERO),
            n => Some(Duration::from_secs_f64(
                (self.m2.max(0.0) / f64::from(n - 1)).sqrt(),
            )),
        }
    }

    /// The address that answered most (the first seen on a tie).
    pub fn primary(&self) -> Option<IpAddr> {
        let mut best: Option<(IpAddr, u32)> = None;
        for &(a, n) in &self.addrs {
            if best.is_none_or(|(_, m)| n > m) {
                best = Some((a, n));
            }
        }
        best.map(|(a, _)| a)
    }
}

/// The state of one trace: a pure function of the probes recorded.
#[derive(Clone, Debug)]
pub struct Trace {
    dst: IpAddr,
    max_hops: u8,
    /// Index `ttl - 1`.
    hops: Vec<HopStats>,
    /// The lowest TTL the destination answered.
    dest_ttl: Option<u8>,
    /// The lowest TTL a router said "unreachable" at.
    end_ttl: Option<u8>,
    rounds: u32,
}

impl Trace {
    /// A trace of `dst` up to `max_hops` (at least 1).
    pub fn new(dst: IpAddr, max_hops: u8) -> Self {
        let max_hops = max_hops.max(1);
        Trace {
            dst,
            max_hops,
            hops: vec![HopStats::default(); usize::from(max_hops)],
            dest_ttl: None,
            end_ttl: None,
            rounds: 0,
        }
    }

    /// The destination.
    pub fn dst(&self) -> IpAddr {
        self.dst
    }

    /// The TTLs the next round probes: 1 up to where the path is known to end (the
    /// destination, or a router's unreachable), else up to `max_hops`.
    pub fn next_round(&mut self) -> std::ops::RangeInclusive<u8> {
        self.rounds += 1;
        1..=self.end()
    }

    fn end(&self) -> u8 {
        [self.dest_ttl, self.end_ttl]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.max_hops)
    }

    /// Records what the probe with `ttl` of `round` (0-based) got.
    pub fn record(&mut self, ttl: u8, round: u32, p: Probed) {
        let Some(hop) = ttl
            .checked_sub(1)
            .and_then(|i| self.hops.get_mut(usize::from(i)))
        else {
            return;
        };
        hop.record(round, &p);
        if let Probed::Answer { kind, .. } = p {
            let slot = match kind {
                AnswerKind::Hop => None,
                AnswerKind::Destination => Some(&mut self.dest_ttl),
                AnswerKind::Unreachable => Some(&mut self.end_ttl),
            };
            if let Some(s) = slot {
                *s = Some(s.map_or(ttl, |t| t.min(ttl)));
            }
        }
    }

    /// Whether the destination answered.
    pub fn reached(&self) -> bool {
        self.dest_ttl.is_some()
    }

    /// The hops to report: up to the destination, or the router that said unreachable, or
    /// else (as mtr does) up to the first silent hop after the last one that answered.
    fn shown(&self) -> usize {
        if self.dest_ttl.is_some() || self.end_ttl.is_some() {
            return usize::from(self.end());
        }
        let answered = self
            .hops
            .iter()
            .rposition(|h| h.received > 0)
            .map_or(0, |i| i + 1);
        (answered + 1).min(self.hops.len())
    }

    /// The report: one [`Hop`] per TTL up to the end of the path.
    pub fn report(&self, target: &str, protocol: &str, started: SystemTime) -> Report {
        let hops = self.hops[..self.shown()]
            .iter()
            .enumerate()
            .map(|(i, h)| Hop::from_stats(i as u8 + 1, h))
            .collect();
        Report {
            target: target.to_string(),
            dst: self.dst,
            protocol: protocol.to_string(),
            count: self.rounds,
            started,
            reached: self.reached(),
            hops,
        }
    }
}

/// Runs a trace of `dst` on one flow of `prober`: `opts.count` rounds (fewer if
/// `opts.deadline` comes first), each sending every TTL's probe at once. Returns the trace's
/// state; an error only when probing cannot work at all.
pub async fn run(
    prober: Arc<dyn Prober>,
    dst: IpAddr,
    opts: &TraceOptions,
) -> Result<Trace, TraceError> {
    let flow = prober.open(dst)?;
    let mut trace = Trace::new(dst, opts.max_hops);
    let mut probes: tokio::task::JoinSet<(u8, u32, Result<Probed, TraceError>)> =
        tokio::task::JoinSet::new();
    let start = Instant::now();
    for round in 0..opts.count.max(1) {
        let at = start + opts.probe_interval * round;
        if let Some(d) = opts.deadline {
            if round > 0 && at + opts.timeout > d {
                break;
            }
        }
        let at = tokio::time::Instant::from_std(at);
        // Record answers while waiting for the round's start.
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(at) => break,
                Some(done) = probes.join_next() => {
                    if let Ok((ttl, r, p)) = done {
                        trace.record(ttl, r, p?);
                    }
                }
            }
        }
        for ttl in trace.next_round() {
            let f = flow.clone();
            let timeout = match opts.deadline {
                Some(d) => opts
                    .timeout
                    .min(d.saturating_duration_since(Instant::now()))
                    .max(Duration::from_millis(1)),
                None => opts.timeout,
            };
            probes.spawn(async move { (ttl, round, f.probe(ttl, timeout).await) });
        }
    }
    while let Some(done) = probes.join_next().await {
        if let Ok((ttl, r, p)) = done {
            trace.record(ttl, r, p?);
        }
    }
    Ok(trace)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;
    use std::sync::Mutex;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn ans(from: &str, ms: u64, kind: AnswerKind) -> Probed {
        Probed::Answer {
            from: ip(from),
            rtt: Duration::from_millis(ms),
            kind,
        }
    }

    #[test]
    fn hop_statistics_are_mtrs() {
        let mut h = HopStats::default();
        for (round, ms) in [(0, 10), (1, 20), (2, 30)] {
            h.record(round, &ans("10.0.0.1", ms, AnswerKind::Hop));
        }
        h.record(3, &Probed::Lost);
        assert_eq!((h.sent, h.received), (4, 3));
        assert_eq!(h.mean(), Some(Duration::from_millis(20)));
        assert_eq!(h.best, Some(Duration::from_millis(10)));
        assert_eq!(h.worst, Some(Duration::from_millis(30)));
        assert_eq!(h.last, Some((2, Duration::from_millis(30))));
        // Sample standard deviation: sqrt(((10-20)² + 0 + (30-20)²) / 2) = 10.
        let sd = h.stddev().unwrap().as_secs_f64();
        assert!((sd - 0.010).abs() < 1e-9, "{sd}");
        // A late answer to an earlier round does not become "last".
        h.record(1, &ans("10.0.0.2", 5, AnswerKind::Hop));
        assert_eq!(h.last, Some((2, Duration::from_millis(30))));
        assert_eq!(h.primary(), Some(ip("10.0.0.1")));
        assert_eq!(h.addrs, [(ip("10.0.0.1"), 3), (ip("10.0.0.2"), 1)]);
        let mut one = HopStats::default();
        one.record(0, &ans("10.0.0.1", 7, AnswerKind::Hop));
        assert_eq!(one.stddev(), Some(Duration::ZERO));
        assert_eq!(HopStats::default().mean(), None);
    }

    #[test]
    fn the_path_ends_at_the_destination_or_an_unreachable() {
        let mut t = Trace::new(ip("10.9.9.9"), 30);
        assert_eq!(t.next_round(), 1..=30);
        t.record(1, 0, ans("10.0.0.1", 1, AnswerKind::Hop));
        t.record(2, 0, Probed::Lost);
        // The destination answers every probe from TTL 3 on; the lowest counts.
        for ttl in (3..=30).rev() {
            t.record(ttl, 0, ans("10.9.9.9", 3, AnswerKind::Destination));
        }
        assert!(t.reached());
        assert_eq!(t.next_round(), 1..=3);
        let r = t.report("dest", "icmp", SystemTime::UNIX_EPOCH);
        assert_eq!(r.hops.len(), 3);
        assert_eq!(r.count, 2);
        assert_eq!(r.hops[1].addrs, []);
        assert_eq!(r.hops[2].addrs, [(ip("10.9.9.9"), 1)]);

        let mut t = Trace::new(ip("10.8.8.8"), 30);
        t.next_round();
        t.record(1, 0, ans("10.0.0.1", 1, AnswerKind::Hop));
        t.record(2, 0, ans("10.0.0.2", 1, AnswerKind::Unreachable));
        t.record(3, 0, ans("10.0.0.2", 1, AnswerKind::Unreachable));
        assert!(!t.reached());
        assert_eq!(t.next_round(), 1..=2);
        assert_eq!(t.report("x", "icmp", SystemTime::UNIX_EPOCH).hops.len(), 2);
    }

    #[test]
    fn an_unreached_target_reports_the_hops_it_saw() {
        let mut t = Trace::new(ip("10.9.9.9"), 5);
        t.next_round();
        t.record(1, 0, ans("10.0.0.1", 1, AnswerKind::Hop));
        t.record(2, 0, Probed::Lost);
        t.record(3, 0, ans("10.0.0.3", 1, AnswerKind::Hop));
        t.record(4, 0, Probed::Lost);
        t.record(5, 0, Probed::Lost);
        assert_eq!(t.next_round(), 1..=5);
        let r = t.report("x", "icmp", SystemTime::UNIX_EPOCH);
        assert!(!r.reached);
        assert_eq!(
            r.hops.len(),
            4,
            "one silent hop after the last that answered"
        );
        assert_eq!(r.hops[1].received, 0);
        assert_eq!(r.hops[3].received, 0);
        assert_eq!(r.hops[3].sent, 1);
        // Out-of-range TTLs are ignored.
        t.record(0, 0, Probed::Lost);
        t.record(9, 0, Probed::Lost);
        // Nothing answered at all: one silent hop.
        let t = Trace::new(ip("10.9.9.9"), 5);
        assert_eq!(t.report("x", "icmp", SystemTime::UNIX_EPOCH).hops.len(), 1);
        // Silence up to max_hops: no hop beyond it.
        let mut t = Trace::new(ip("10.9.9.9"), 2);
        t.record(1, 0, ans("10.0.0.1", 1, AnswerKind::Hop));
        t.record(2, 0, ans("10.0.0.2", 1, AnswerKind::Hop));
        assert_eq!(t.report("x", "icmp", SystemTime::UNIX_EPOCH).hops.len(), 2);
    }

    /// A simulated path: hop `i` (1-based) is `10.0.0.i`, the destination at `len`, RTTs
    /// `rtt_ms` per hop; with `lose_every: (from, n)` hops from `from` on lose every `n`th
    /// probe they get. `opened` counts flows, `sent` the TTLs probed.
    struct Sim {
        len: u8,
        rtt_ms: u64,
        sent: Arc<Mutex<Vec<u8>>>,
        opened: Mutex<u32>,
        lose_every: Option<(u8, usize)>,
    }

    /// One trace's flow of a [`Sim`].
    struct SimFlow {
        dst: IpAddr,
        len: u8,
        rtt_ms: u64,
        sent: Arc<Mutex<Vec<u8>>>,
        lose_every: Option<(u8, usize)>,
    }

    impl Sim {
        fn new(len: u8, rtt_ms: u64, lose_every: Option<(u8, usize)>) -> Arc<Sim> {
            Arc::new(Sim {
                len,
                rtt_ms,
                sent: Arc::default(),
                opened: Mutex::new(0),
                lose_every,
            })
        }
    }

    impl Prober for Sim {
        fn open(&self, dst: IpAddr) -> Result<Arc<dyn Flow>, TraceError> {
            *self.opened.lock().unwrap() += 1;
            Ok(Arc::new(SimFlow {
                dst,
                len: self.len,
                rtt_ms: self.rtt_ms,
                sent: self.sent.clone(),
                lose_every: self.lose_every,
            }))
        }
        fn protocol(&self) -> &'static str {
            "sim"
        }
    }

    impl Flow for SimFlow {
        fn probe(self: Arc<Self>, ttl: u8, _: Duration) -> BoxFuture<Result<Probed, TraceError>> {
            let mut sent = self.sent.lock().unwrap();
            sent.push(ttl);
            let nth = sent.iter().filter(|t| **t == ttl).count();
            let lost = self
                .lose_every
                .is_some_and(|(from, every)| ttl >= from && nth % every == 0);
            let r = if lost {
                Probed::Lost
            } else if ttl >= self.len {
                Probed::Answer {
                    from: self.dst,
                    rtt: Duration::from_millis(self.rtt_ms * u64::from(self.len)),
                    kind: AnswerKind::Destination,
                }
            } else {
                Probed::Answer {
                    from: IpAddr::V4(Ipv4Addr::new(10, 0, 0, ttl)),
                    rtt: Duration::from_millis(self.rtt_ms * u64::from(ttl)),
                    kind: AnswerKind::Hop,
                }
            };
            Box::pin(async move { Ok(r) })
        }
    }

    #[tokio::test]
    async fn rounds_probe_up_to_the_destination() {
        let sim = Sim::new(4, 2, Some((3, 2)));
        let opts = TraceOptions {
            max_hops: 10,
            count: 4,
            probe_interval: Duration::from_millis(5),
            timeout: Duration::from_millis(50),
            deadline: None,
        };
        let t = run(sim.clone(), ip("10.0.0.99"), &opts).await.unwrap();
        let r = t.report("t", "sim", SystemTime::UNIX_EPOCH);
        assert!(r.reached);
        assert_eq!(r.hops.len(), 4);
        // The first round probes all ten TTLs, the later ones only up to the destination.
        assert_eq!(sim.sent.lock().unwrap().len(), 10 + 3 * 4);
        assert_eq!(*sim.opened.lock().unwrap(), 1, "one flow per trace");
        assert_eq!(r.hops[0].sent, 4);
        assert_eq!(r.hops[0].received, 4);
        // Every second probe from TTL 3 on is lost.
        assert_eq!(r.hops[2].received, 2);
        assert_eq!(r.hops[3].received, 2);
        assert_eq!(r.hops[3].addrs[0].0, ip("10.0.0.99"));
        assert_eq!(r.hops[1].mean, Some(Duration::from_millis(4)));
    }

    /// A prober whose flows cannot be opened (no socket).
    struct NoSocket;

    impl Prober for NoSocket {
        fn open(&self, dst: IpAddr) -> Result<Arc<dyn Flow>, TraceError> {
            Err(TraceError::Socket {
                dst,
                message: "no socket".into(),
            })
        }
        fn protocol(&self) -> &'static str {
            "none"
        }
    }

    #[tokio::test]
    async fn a_flow_that_cannot_open_fails_the_trace() {
        let e = run(
            Arc::new(NoSocket),
            ip("10.0.0.99"),
            &TraceOptions::default(),
        )
        .await
        .unwrap_err();
        assert_eq!(e.to_string(), "probing 10.0.0.99: no socket");
    }

    #[tokio::test]
    async fn a_deadline_cuts_rounds() {
        let sim = Sim::new(2, 1, None);
        let opts = TraceOptions {
            max_hops: 4,
            count: 100,
            probe_interval: Duration::from_millis(20),
            timeout: Duration::from_millis(10),
            deadline: Some(Instant::now() + Duration::from_millis(100)),
        };
        let started = Instant::now();
        let t = run(sim, ip("10.0.0.99"), &opts).await.unwrap();
        assert!(started.elapsed() < Duration::from_millis(500));
        let r = t.report("t", "sim", SystemTime::UNIX_EPOCH);
        assert!(r.count >= 1 && r.count < 10, "{}", r.count);
    }
}
