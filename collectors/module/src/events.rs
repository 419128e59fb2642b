//! Events between modules: the probe module publishes a [`ProbeFailure`] for every scheduled
//! probe that fails, and any module may subscribe (the mtr module traces the failing target,
//! `modules.mtr.on_probe_failure`). The agent runs one [`ProbeEvents`] and hands it to the
//! modules that declare [`Service::ProbeEvents`](crate::Service::ProbeEvents).
//!
//! A bounded broadcast that never blocks the publisher: an event nobody listens to is
//! dropped, and a listener that falls more than the capacity behind misses the oldest ones,
//! each counted ([`ProbeEvents::unheard`], [`ProbeEvents::missed`]; a listener learns of its
//! own misses from [`ProbeEvent::Missed`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use eos_module::events::{ProbeEvent, ProbeEvents, ProbeFailure};
//! let events = ProbeEvents::default();
//! let mut failures = events.subscribe();
//! let f = ProbeFailure {
//!     target: "10.0.0.1:443".into(),
//!     host: "10.0.0.1".into(),
//!     module: "tcp_connect".into(),
//!     reason: "Error dialing TCP: err=\"connection refused\"".into(),
//! };
//! assert!(events.publish(f.clone()));
//! assert_eq!(failures.recv().await, Some(ProbeEvent::Failed(f)));
//! # }
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::broadcast;

/// A scheduled probe that failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeFailure {
    /// The target as scheduled (a URL, `host:port`, a host).
    pub target: String,
    /// The target's host: what a trace goes to.
    pub host: String,
    /// The probe module's name for how it probes (e.g. `http_2xx`).
    pub module: String,
    /// Why it failed: the probe's first error line, e.g. `Error dialing TCP: err=...`.
    pub reason: String,
}

/// What a subscriber receives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProbeEvent {
    Failed(ProbeFailure),
    /// This many events went by while the subscriber was more than the capacity behind.
    Missed(u64),
}

#[derive(Debug, Default)]
struct Counts {
    published: AtomicU64,
    unheard: AtomicU64,
    missed: AtomicU64,
}

/// The probe failure events of one agent: cheap to clone (clones share the channel).
#[derive(Clone, Debug)]
pub struct ProbeEvents {
    tx: broadcast::Sender<ProbeFailure>,
    counts: Arc<Counts>,
}

impl Default for ProbeEvents {
    /// [`ProbeEvents::CAPACITY`] events of room per subscriber.
    fn default() -> Self {
        ProbeEvents::new(ProbeEvents::CAPACITY)
    }
}

impl ProbeEvents {
    /// Events a subscriber may fall behind by before it misses some.
    pub const CAPACITY: usize = 64;

    /// Room for `capacity` (at least one) events per subscriber.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        ProbeEvents {
            tx,
            counts: Arc::default(),
        }
    }

    /// Publishes a failure to every subscriber, without waiting; `false` when there is none
    /// (the event is dropped, and counted).
    pub fn publish(&self, failure: ProbeFailure) -> bool {
        self.counts.published.fetch_add(1, Ordering::Relaxed);
        let heard = self.tx.send(failure).is_ok();
        if !heard {
            self.counts.unheard.fetch_add(1, Ordering::Relaxed);
        }
        heard
    }

    /// A new subscriber: it receives what is published from now on.
    pub fn subscribe(&self) -> ProbeFailures {
        ProbeFailures {
            rx: self.tx.subscribe(),
            counts: self.counts.clone(),
        }
    }

    /// Events published.
    pub fn published(&self) -> u64 {
        self.counts.published.load(Ordering::Relaxed)
    }

    /// Events dropped because nobody subscribed.
    pub fn unheard(&self) -> u64 {
        self.counts.unheard.load(Ordering::Relaxed)
    }

    /// Events subscribers missed by falling behind (summed over subscribers).
    pub fn missed(&self) -> u64 {
        self.counts.missed.load(Ordering::Relaxed)
    }
}

/// One subscriber's events.
#[derive(Debug)]
pub struct ProbeFailures {
    rx: broadcast::Receiver<ProbeFailure>,
    counts: Arc<Counts>,
}

impl ProbeFailures {
    /// The next event; `None` once every [`ProbeEvents`] handle is gone.
    pub async fn recv(&mut self) -> Option<ProbeEvent> {
        match self.rx.recv().await {
            Ok(f) => Some(ProbeEvent::Failed(f)),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                self.counts.missed.fetch_add(n, Ordering::Relaxed);
                Some(ProbeEvent::Missed(n))
            }
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(n: u32) -> ProbeFailure {
        ProbeFailure {
            target: format!("10.0.0.{n}:80"),
            host: format!("10.0.0.{n}"),
            module: "tcp_connect".into(),
            reason: "refused".into(),
        }
    }

    #[tokio::test]
    async fn nobody_listening_drops_and_counts() {
        let events = ProbeEvents::default();
        assert!(!events.publish(failure(1)));
        assert_eq!((events.published(), events.unheard()), (1, 1));
        // A subscriber gets only what comes after it subscribed.
        let mut sub = events.subscribe();
        assert!(events.publish(failure(2)));
        assert_eq!(sub.recv().await, Some(ProbeEvent::Failed(failure(2))));
        assert_eq!((events.published(), events.unheard()), (2, 1));
    }

    #[tokio::test]
    async fn every_subscriber_gets_every_event() {
        let events = ProbeEvents::default();
        let (mut a, mut b) = (events.subscribe(), events.subscribe());
        events.publish(failure(1));
        events.publish(failure(2));
        for sub in [&mut a, &mut b] {
            assert_eq!(sub.recv().await, Some(ProbeEvent::Failed(failure(1))));
            assert_eq!(sub.recv().await, Some(ProbeEvent::Failed(failure(2))));
        }
    }

    #[tokio::test]
    async fn a_slow_subscriber_misses_the_oldest_and_the_publisher_never_waits() {
        let events = ProbeEvents::new(4);
        let mut slow = events.subscribe();
        for n in 0..10 {
            assert!(events.publish(failure(n)), "never blocks, never refuses");
        }
        assert_eq!(slow.recv().await, Some(ProbeEvent::Missed(6)));
        assert_eq!(events.missed(), 6);
        for n in 6..10 {
            assert_eq!(slow.recv().await, Some(ProbeEvent::Failed(failure(n))));
        }
        // Capacity 0 is taken as 1.
        let one = ProbeEvents::new(0);
        let mut sub = one.subscribe();
        one.publish(failure(1));
        one.publish(failure(2));
        assert_eq!(sub.recv().await, Some(ProbeEvent::Missed(1)));
        assert_eq!(sub.recv().await, Some(ProbeEvent::Failed(failure(2))));
    }

    #[tokio::test]
    async fn closed_when_every_handle_is_gone() {
        let events = ProbeEvents::default();
        let mut sub = events.subscribe();
        events.publish(failure(1));
        drop(events);
        assert_eq!(sub.recv().await, Some(ProbeEvent::Failed(failure(1))));
        assert_eq!(sub.recv().await, None);
    }
}
