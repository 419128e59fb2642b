//! Sending on schedule, collecting the outcomes, and looking names up.
//!
//! One task sends for every target, each at its own offset in the interval: the interval
//! is cut into up to [`MAX_SLOTS`] send slots (10 ms at 1 s), target `i` of `n` goes out in
//! slot `i × slots / n`, and the slots are shifted by a phase derived from the node name, so
//! that nodes do not ping in step. 500 targets at 1 s are 5 requests every 10 ms, spread
//! over the interval, all through the one socket per family. Replies are matched to
//! requests by identifier and sequence in eos-icmp, and their RTT is the kernel's receive
//! timestamp minus the send time.
//!
//! The same task collects the outcomes, at each wake-up (every slot, and every
//! [`COLLECT_EVERY`] while requests are out) rather than as each reply comes in: it polls
//! the requests' waits itself with a no-op waker, so a reply costs eos-icmp's receive
//! thread one wake-up and the runtime none. Since the RTT is the kernel's timestamp,
//! collecting later changes when a reply is counted, not what it measured. A reply whose
//! RTT is over the timeout (it came after the deadline but before the wait was looked at
//! again) is late, as one eos-icmp reports after the deadline.
//!
//! A second task looks names up: every `resolve_interval`, and after a failure again in
//! 5 s, doubling up to `resolve_interval`. A target pings its last good address while a
//! lookup fails, and nothing until its first lookup succeeds.

use crate::config::Network;
use crate::module::{Series, Shared};
use crate::window::Outcome;
use eos_icmp::{EchoOptions, IcmpError, Reply, ReplyKind};
use eos_module::Tasks;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Targets due within this much of now are sent together.
const SLACK: Duration = Duration::from_millis(1);
/// While requests are out, their outcomes are collected at least this often.
pub const COLLECT_EVERY: Duration = Duration::from_millis(10);
/// The first retry of a failed lookup; doubled on each failure up to `resolve_interval`.
const RETRY_FIRST: Duration = Duration::from_secs(5);
/// How long one lookup may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Lookups in flight at once (each holds a blocking thread for `getaddrinfo`).
const CONCURRENT_LOOKUPS: usize = 8;

/// Where in each interval this node starts: FNV-1a of the node name, modulo the interval.
pub fn phase(node: &str, interval: Duration) -> Duration {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let ns = interval.as_nanos().max(1) as u64;
    Duration::from_nanos(h % ns)
}

/// Send slots per interval, at most.
pub const MAX_SLOTS: usize = 100;

/// When in each interval target `i` of `n` is pinged: at the start of its slot (the slots
/// evenly spread over the interval), shifted by `phase`.
pub fn offset(i: usize, n: usize, interval: Duration, phase: Duration) -> Duration {
    let n = n.max(1);
    let slots = n.min(MAX_SLOTS);
    let slot = (i % n) * slots / n;
    let ns = interval.as_nanos().max(1);
    let at = (slot as u128 * ns / slots as u128 + phase.as_nanos()) % ns;
    Duration::from_nanos(at as u64)
}

/// Spawns the sender and (when a target is a name) the resolver.
pub fn start(shared: &Arc<Shared>, tasks: &Tasks) {
    tasks.spawn("ping-send", send_loop(shared.clone(), tasks.clone()));
    if shared.targets.iter().any(|t| t.literal.is_none()) {
        tasks.spawn("ping-resolve", resolve_loop(shared.clone(), tasks.clone()));
    }
}

/// The wait for one request's reply, polled by the sender.
type Wait = Pin<Box<dyn Future<Output = Result<Reply, IcmpError>> + Send>>;

/// A request sent and not yet collected.
struct InFlight {
    target: usize,
    /// Its number in the target's window.
    n: u64,
    series: Arc<Series>,
    wait: Wait,
}

async fn send_loop(shared: Arc<Shared>, tasks: Tasks) {
    let targets = &shared.targets;
    let n = targets.len();
    if n == 0 {
        return;
    }
    let interval = shared.cfg.interval.get();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| targets[i].offset);
    let mut out: Vec<InFlight> = Vec::new();
    let mut cycle = tokio::time::Instant::now();
    let mut k = 0;
    let sleep = tokio::time::sleep_until(cycle + targets[order[0]].offset);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            biased;
            () = tasks.cancelled() => return,
            () = &mut sleep => {}
        }
        collect(&shared, &mut out);
        let now = tokio::time::Instant::now();
        while cycle + targets[order[k]].offset <= now + SLACK {
            if let Some(f) = send(&shared, order[k]) {
                out.push(f);
            }
            k += 1;
            if k == n {
                k = 0;
                cycle += interval;
                // more than an interval behind (a suspended node): catch up to the
                // current cycle instead of sending the missed ones in a burst
                let behind = now.saturating_duration_since(cycle);
                if behind > interval {
                    let skip = behind.as_nanos() / interval.as_nanos().max(1);
                    cycle += interval * skip as u32;
                }
            }
        }
        let next_send = cycle + targets[order[k]].offset;
        let wake = if out.is_empty() {
            next_send
        } else {
            next_send.min(tokio::time::Instant::now() + COLLECT_EVERY)
        };
        sleep.as_mut().reset(wake);
    }
}

/// Polls every request out once (with a no-op waker: the sender wakes on its own
/// schedule) and records those that are done.
fn collect(shared: &Shared, out: &mut Vec<InFlight>) {
    let mut cx = Context::from_waker(Waker::noop());
    let mut i = 0;
    while i < out.len() {
        match out[i].wait.as_mut().poll(&mut cx) {
            Poll::Ready(result) => {
                let f = out.swap_remove(i);
                complete(shared, f, result);
            }
            Poll::Pending => i += 1,
        }
    }
}

/// Sends one echo request to target `i`, if it has an address.
fn send(shared: &Shared, i: usize) -> Option<InFlight> {
    let t = &shared.targets[i];
    let series = t.series()?;
    let cfg = &shared.cfg;
    let opts = EchoOptions {
        payload_size: cfg.payload_size,
        ttl: None,
        dont_fragment: false,
        source: cfg.source,
        timeout: cfg.timeout.get(),
        deadline: None,
        strays: Some(t.strays.clone()),
    };
    let sent = Instant::now();
    let n = t.state().window.push(sent);
    match shared.icmp.send_echo(series.ip, &opts) {
        Ok(pending) => {
            series.requests.inc();
            Some(InFlight {
                target: i,
                n,
                series,
                // outside the runtime's cooperative budget: the sender polls hundreds of
                // these per wake-up, and a budget running out would only defer some
                wait: Box::pin(tokio::task::unconstrained(pending.wait())),
            })
        }
        Err(e) => {
            series.send_errors.inc();
            let mut st = t.state();
            st.window.complete(n, Outcome::Lost);
            if let Some(h) = st.history.as_mut() {
                h.record(sent, None);
            }
            let msg = e.to_string();
            if st.send_error.as_deref() != Some(msg.as_str()) {
                tracing::warn!(host = %t.spec.host, "ping: {msg}");
                st.send_error = Some(msg);
            }
            None
        }
    }
}

/// Records what became of one request.
fn complete(shared: &Shared, f: InFlight, result: Result<Reply, IcmpError>) {
    let t = &shared.targets[f.target];
    let timeout = shared.cfg.timeout.get();
    let rtt = match &result {
        Ok(r) if r.kind == ReplyKind::Echo => {
            let rtt = r.rtt.as_secs_f64();
            f.series.rtt.observe(rtt);
            if let Some(h) = r.hop_limit {
                f.series.ttl.set(f64::from(h));
            }
            if r.rtt > timeout {
                f.series.late.inc();
                None
            } else {
                Some(rtt)
            }
        }
        Ok(r) => {
            f.series.error_replies.inc();
            tracing::debug!(host = %t.spec.host, "ping: {r}");
            None
        }
        Err(IcmpError::Timeout { .. }) => None,
        Err(e) => {
            tracing::debug!(host = %t.spec.host, "ping: {e}");
            None
        }
    };
    let mut st = t.state();
    if result.is_ok() {
        st.send_error = None;
    }
    st.window
        .complete(f.n, rtt.map_or(Outcome::Lost, Outcome::Reply));
    if let Some(h) = st.history.as_mut() {
        h.record(Instant::now(), rtt);
    }
}

/// The address to ping among a name's addresses (in the resolver's order).
pub fn choose(
    host: &str,
    addrs: &[IpAddr],
    network: Network,
    source: Option<IpAddr>,
) -> Result<IpAddr, String> {
    let want_v6 = match (network, source) {
        (Network::Ip4, _) => Some(false),
        (Network::Ip6, _) => Some(true),
        (Network::Ip, Some(src)) => Some(src.is_ipv6()),
        (Network::Ip, None) => None,
    };
    addrs
        .iter()
        .map(|a| a.to_canonical())
        .find(|a| want_v6.is_none_or(|v6| a.is_ipv6() == v6))
        .ok_or_else(|| match want_v6 {
            Some(true) => format!("lookup {host}: no IPv6 address"),
            Some(false) => format!("lookup {host}: no IPv4 address"),
            None => format!("lookup {host}: no addresses"),
        })
}

/// Looks `host` up and picks its address.
async fn lookup(host: String, network: Network, source: Option<IpAddr>) -> Result<IpAddr, String> {
    let found = tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host.as_str(), 0)))
        .await
        .map_err(|_| format!("lookup {host}: no answer within {LOOKUP_TIMEOUT:?}"))?
        .map_err(|e| format!("lookup {host}: {e}"))?;
    let addrs: Vec<IpAddr> = found.map(|a| a.ip()).collect();
    choose(&host, &addrs, network, source)
}

async fn resolve_loop(shared: Arc<Shared>, tasks: Tasks) {
    let names: Vec<usize> = (0..shared.targets.len())
        .filter(|&i| shared.targets[i].literal.is_none())
        .collect();
    for &i in &names {
        // at zero from the start, so that `increase()` sees the first failure
        shared
            .metrics
            .resolve_errors
            .get_or_create(&[&shared.targets[i].spec.host]);
    }
    let every = shared.cfg.resolve_interval.get();
    let start = tokio::time::Instant::now();
    let mut next = vec![start; names.len()];
    let mut backoff = vec![RETRY_FIRST.min(every); names.len()];
    let mut running = vec![false; names.len()];
    let mut lookups: JoinSet<(usize, Result<IpAddr, String>)> = JoinSet::new();
    loop {
        let now = tokio::time::Instant::now();
        for (j, &i) in names.iter().enumerate() {
            if lookups.len() >= CONCURRENT_LOOKUPS {
                break;
            }
            if !running[j] && next[j] <= now {
                running[j] = true;
                let host = shared.targets[i].spec.host.clone();
                let (network, source) = (shared.cfg.network, shared.cfg.source);
                lookups.spawn(async move { (j, lookup(host, network, source).await) });
            }
        }
        let wake = (0..names.len())
            .filter(|&j| !running[j])
            .map(|j| next[j])
            .min()
            .unwrap_or(now + every)
            .max(now + Duration::from_millis(10));
        tokio::select! {
            biased;
            () = tasks.cancelled() => return,
            Some(done) = lookups.join_next(), if !lookups.is_empty() => {
                let Ok((j, result)) = done else { continue };
                running[j] = false;
                let t = &shared.targets[names[j]];
                let now = tokio::time::Instant::now();
                match result {
                    Ok(ip) => {
                        let had = t.state().addr;
                        if shared.set_address(t, ip) && had.is_some() {
                            tracing::info!(host = %t.spec.host, %ip, "ping: the target's address changed");
                        }
                        if t.state().resolve_error.take().is_some() {
                            tracing::info!(host = %t.spec.host, %ip, "ping: the target resolves again");
                        }
                        next[j] = now + every;
                        backoff[j] = RETRY_FIRST.min(every);
                    }
                    Err(e) => {
                        shared.metrics.resolve_errors.get_or_create(&[&t.spec.host]).inc();
                        let mut st = t.state();
                        if st.resolve_error.is_none() {
                            tracing::warn!(host = %t.spec.host, "ping: {e} (retrying in {:?})", backoff[j]);
                        }
                        st.resolve_error = Some(e);
                        next[j] = now + backoff[j];
                        backoff[j] = (backoff[j] * 2).min(every);
                    }
                }
            }
            () = tokio::time::sleep_until(wake) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_spread_evenly_with_a_node_phase() {
        let s = Duration::from_secs(1);
        let p = phase("node-1", s);
        assert_eq!(p, phase("node-1", s), "stable");
        assert!(p < s);
        assert_ne!(p, phase("node-2", s));
        let zero = Duration::ZERO;
        let offs: Vec<Duration> = (0..4).map(|i| offset(i, 4, s, zero)).collect();
        assert_eq!(offs, [0, 250, 500, 750].map(Duration::from_millis));
        // shifted and wrapped
        let shifted = offset(3, 4, s, Duration::from_millis(400));
        assert_eq!(shifted, Duration::from_millis(150));
        // 500 targets: 100 slots 10 ms apart, 5 targets in each
        let all: Vec<Duration> = (0..500).map(|i| offset(i, 500, s, zero)).collect();
        assert_eq!(&all[..6], &[0, 0, 0, 0, 0, 10].map(Duration::from_millis));
        let mut slots = all.clone();
        slots.sort();
        slots.dedup();
        assert_eq!(slots.len(), 100);
        assert!(slots
            .windows(2)
            .all(|w| w[1] - w[0] == Duration::from_millis(10)));
        for slot in &slots {
            assert_eq!(all.iter().filter(|o| *o == slot).count(), 5);
        }
        // with a phase, still within the interval
        assert!((0..500).all(|i| offset(i, 500, s, p) < s));
    }

    #[test]
    fn addresses_by_network_and_source() {
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let both = [v6, v4];
        assert_eq!(choose("h", &both, Network::Ip, None), Ok(v6));
        assert_eq!(choose("h", &both, Network::Ip4, None), Ok(v4));
        assert_eq!(
            choose("h", &[v4], Network::Ip6, None).unwrap_err(),
            "lookup h: no IPv6 address"
        );
        assert_eq!(choose("h", &both, Network::Ip, Some(v4)), Ok(v4));
        assert_eq!(
            choose("h", &[mapped], Network::Ip4, None),
            Ok("192.0.2.7".parse().unwrap())
        );
        assert_eq!(
            choose("h", &[], Network::Ip, None).unwrap_err(),
            "lookup h: no addresses"
        );
    }
}
