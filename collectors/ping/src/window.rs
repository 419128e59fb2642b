//! The recent requests of one target, and the statistics over a time window exported as
//! `eos_ping_loss_ratio`, `eos_ping_rtt_stddev_seconds` and `eos_ping_rtt_jitter_seconds`.
//!
//! A fixed ring of the last requests (sized from the window, the interval and the timeout at
//! start, so the memory never grows). A request is counted once its outcome is known: a reply
//! within the timeout, or lost (no reply in time, an ICMP error instead, or a failed send).
//! Requests still waiting are left out, so the loss ratio never counts a reply that is merely
//! not due yet.
//!
//! - **loss ratio**: lost / counted.
//! - **standard deviation**: the population standard deviation of the RTTs (as `ping -c`'s
//!   `mdev`'s definition and pro-bing's `StdDevRtt`).
//! - **jitter**: the mean absolute difference between the RTTs of consecutive replies, in
//!   send order, skipping lost requests: `mean(|RTTᵢ − RTTᵢ₋₁|)`. This is the plain mean of
//!   RFC 3550's `|D(i−1,i)|`, not its exponentially smoothed estimator `J += (|D| − J)/16`,
//!   which weighs recent pairs more but tends to the same mean on a steady path.

use std::time::{Duration, Instant};

/// What became of one request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Outcome {
    /// Not answered yet, not timed out yet.
    Waiting,
    /// Answered within the timeout after this many seconds.
    Reply(f64),
    /// No reply within the timeout (or an ICMP error, or a failed send).
    Lost,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    /// The request's number; `u64::MAX` for a slot never used.
    n: u64,
    sent: Instant,
    outcome: Outcome,
}

/// The last requests of one target.
#[derive(Debug)]
pub struct Window {
    slots: Box<[Slot]>,
    next: u64,
}

/// Statistics over the requests of a window.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    /// Requests whose outcome is known.
    pub counted: u64,
    /// Of those, the ones lost.
    pub lost: u64,
    /// `lost / counted`.
    pub loss_ratio: f64,
    /// Population standard deviation of the RTTs; `None` without replies.
    pub stddev: Option<f64>,
    /// Mean |difference| of consecutive RTTs; `None` with fewer than two replies.
    pub jitter: Option<f64>,
    /// Mean RTT; `None` without replies.
    pub mean: Option<f64>,
}

impl Window {
    /// A ring for `window` of requests every `interval`, with room for the ones still
    /// waiting up to `timeout`.
    pub fn new(window: Duration, interval: Duration, timeout: Duration) -> Window {
        let per = |d: Duration| d.as_nanos().div_ceil(interval.as_nanos().max(1)) as usize;
        Window::with_capacity(per(window) + per(timeout) + 1)
    }

    /// A ring of `capacity` requests.
    pub fn with_capacity(capacity: usize) -> Window {
        let now = Instant::now();
        Window {
            slots: vec![
                Slot {
                    n: u64::MAX,
                    sent: now,
                    outcome: Outcome::Waiting,
                };
                capacity.max(1)
            ]
            .into(),
            next: 0,
        }
    }

    /// Bytes this window holds.
    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots) + std::mem::size_of::<Self>()
    }

    /// Records a request sent at `sent`; returns its number for [`Window::complete`].
    pub fn push(&mut self, sent: Instant) -> u64 {
        let n = self.next;
        self.next += 1;
        let len = self.slots.len() as u64;
        self.slots[(n % len) as usize] = Slot {
            n,
            sent,
            outcome: Outcome::Waiting,
        };
        n
    }

    /// Sets the outcome of request `n`, unless it has left the ring already.
    pub fn complete(&mut self, n: u64, outcome: Outcome) {
        let len = self.slots.len() as u64;
        let slot = &mut self.slots[(n % len) as usize];
        if slot.n == n {
            slot.outcome = outcome;
        }
    }

    /// The statistics over the requests sent from `now - window` on whose outcome is known;
    /// `None` when there are none.
    pub fn stats(&self, now: Instant, window: Duration) -> Option<Stats> {
        let len = self.slots.len() as u64;
        let from = now.checked_sub(window);
        let (mut counted, mut lost) = (0u64, 0u64);
        let (mut n_rtt, mut sum, mut prev) = (0u64, 0.0f64, None::<f64>);
        let (mut jitter_sum, mut pairs) = (0.0f64, 0u64);
        let mut rtts = Vec::new();
        for n in self.next.saturating_sub(len)..self.next {
            let s = &self.slots[(n % len) as usize];
            if s.n != n || from.is_some_and(|f| s.sent < f) {
                continue;
            }
            match s.outcome {
                Outcome::Waiting => {}
                Outcome::Lost => {
                    counted += 1;
                    lost += 1;
                }
                Outcome::Reply(rtt) => {
                    counted += 1;
                    n_rtt += 1;
                    sum += rtt;
                    rtts.push(rtt);
                    if let Some(p) = prev {
                        jitter_sum += (rtt - p).abs();
                        pairs += 1;
                    }
                    prev = Some(rtt);
                }
            }
        }
        if counted == 0 {
            return None;
        }
        let mean = (n_rtt > 0).then(|| sum / n_rtt as f64);
        let stddev = mean.map(|m| {
            let var = rtts.iter().map(|r| (r - m) * (r - m)).sum::<f64>() / n_rtt as f64;
            var.sqrt()
        });
        Some(Stats {
            counted,
            lost,
            loss_ratio: lost as f64 / counted as f64,
            stddev,
            jitter: (pairs > 0).then(|| jitter_sum / pairs as f64),
            mean,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    /// A window with one request per second from `t0`, with these outcomes.
    fn filled(t0: Instant, outcomes: &[Outcome]) -> Window {
        let mut w = Window::new(Duration::from_secs(60), S, S);
        for (i, o) in outcomes.iter().enumerate() {
            let n = w.push(t0 + S * i as u32);
            w.complete(n, *o);
        }
        w
    }

    #[test]
    fn loss_stddev_and_jitter() {
        let t0 = Instant::now();
        use Outcome::{Lost, Reply};
        let w = filled(
            t0,
            &[
                Reply(0.010),
                Lost,
                Reply(0.012),
                Reply(0.011),
                Lost,
                Reply(0.015),
            ],
        );
        let s = w.stats(t0 + S * 6, Duration::from_secs(60)).unwrap();
        assert_eq!((s.counted, s.lost), (6, 2));
        assert!(close(s.loss_ratio, 2.0 / 6.0));
        let mean = (0.010 + 0.012 + 0.011 + 0.015) / 4.0;
        assert!(close(s.mean.unwrap(), mean));
        let var = [0.010f64, 0.012, 0.011, 0.015]
            .iter()
            .map(|r| (r - mean).powi(2))
            .sum::<f64>()
            / 4.0;
        assert!(close(s.stddev.unwrap(), var.sqrt()));
        // consecutive replies: 10→12, 12→11, 11→15 (losses skipped)
        assert!(close(s.jitter.unwrap(), (0.002 + 0.001 + 0.004) / 3.0));
    }

    #[test]
    fn waiting_requests_are_not_counted() {
        let t0 = Instant::now();
        let mut w = filled(t0, &[Outcome::Reply(0.001)]);
        let n = w.push(t0 + S);
        let s = w.stats(t0 + S * 2, Duration::from_secs(60)).unwrap();
        assert_eq!((s.counted, s.lost), (1, 0));
        assert_eq!(s.jitter, None, "one reply: no pair");
        assert_eq!(s.stddev, Some(0.0));
        w.complete(n, Outcome::Lost);
        let s = w.stats(t0 + S * 2, Duration::from_secs(60)).unwrap();
        assert_eq!((s.counted, s.lost, s.loss_ratio), (2, 1, 0.5));
    }

    #[test]
    fn only_the_window_counts() {
        let t0 = Instant::now();
        let mut outcomes = vec![Outcome::Lost; 30];
        outcomes.extend(vec![Outcome::Reply(0.002); 30]);
        let w = filled(t0, &outcomes);
        // at t0+60s, a 20 s window sees requests 40..59: all answered
        let s = w.stats(t0 + S * 60, Duration::from_secs(20)).unwrap();
        assert_eq!((s.counted, s.lost), (20, 0));
        let s = w.stats(t0 + S * 60, Duration::from_secs(60)).unwrap();
        assert_eq!((s.counted, s.lost), (60, 30));
        assert!(close(s.jitter.unwrap(), 0.0));
        // nothing known: no statistics
        assert_eq!(Window::with_capacity(4).stats(t0, S), None);
    }

    #[test]
    fn the_ring_keeps_the_last_requests_only() {
        let t0 = Instant::now();
        let mut w = Window::with_capacity(4);
        let mut ns = Vec::new();
        for i in 0..10u32 {
            ns.push(w.push(t0 + S * i));
        }
        // request 0 has left the ring: completing it changes nothing
        w.complete(ns[0], Outcome::Lost);
        for &n in &ns[6..] {
            w.complete(n, Outcome::Reply(0.001));
        }
        let s = w.stats(t0 + S * 10, Duration::from_secs(3600)).unwrap();
        assert_eq!((s.counted, s.lost), (4, 0));
        assert!(w.bytes() >= 4 * std::mem::size_of::<Slot>());
    }

    #[test]
    fn sized_from_window_interval_and_timeout() {
        let w = Window::new(Duration::from_secs(60), S, Duration::from_millis(1500));
        assert_eq!(w.slots.len(), 60 + 2 + 1);
    }
}
