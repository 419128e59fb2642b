//! Limits that keep busy or misbehaving clients from taking the agent down: at most N
//! `/metrics` requests at once (node_exporter's `--web.max-requests`; beyond it the answer is
//! 503, as promhttp's), at most M open connections (further clients wait in the kernel's listen
//! queue until one closes), and a warning about either at most once a minute, not per request.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::warn;

/// node_exporter's default for `--web.max-requests`.
pub const DEFAULT_MAX_REQUESTS: usize = 40;

/// The most connections kept open at once, whatever the file descriptor limit allows.
const MAX_CONNECTIONS: usize = 1024;

/// How often a limit that keeps being hit is logged.
pub const WARN_EVERY: Duration = Duration::from_secs(60);

/// At most `max` requests in flight at once; 0 means no limit.
pub struct RequestLimit {
    slots: Option<Arc<Semaphore>>,
    max: usize,
}

/// A request's place under a [`RequestLimit`]; dropping it frees the place.
#[derive(Debug)]
pub struct Slot {
    _permit: Option<OwnedSemaphorePermit>,
}

impl RequestLimit {
    pub fn new(max: usize) -> Self {
        RequestLimit {
            slots: (max > 0).then(|| Arc::new(Semaphore::new(max))),
            max,
        }
    }

    /// The limit (0: none).
    pub fn max(&self) -> usize {
        self.max
    }

    /// A place for one more request, or `None` when `max` are in flight already.
    pub fn try_enter(&self) -> Option<Slot> {
        match &self.slots {
            None => Some(Slot { _permit: None }),
            Some(s) => s
                .clone()
                .try_acquire_owned()
                .ok()
                .map(|p| Slot { _permit: Some(p) }),
        }
    }
}

/// At most `max` open connections. Taking a place waits while all are taken, so the accept
/// loop stops accepting (without spinning) until a connection closes.
pub struct ConnectionLimit {
    slots: Arc<Semaphore>,
    max: usize,
    warn: Every,
}

impl ConnectionLimit {
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        ConnectionLimit {
            slots: Arc::new(Semaphore::new(max)),
            max,
            warn: Every::new(WARN_EVERY),
        }
    }

    /// A place for one more connection, to hold until it closes. Waits while there is none,
    /// saying so in the log at most once per [`WARN_EVERY`].
    pub async fn acquire(&self) -> OwnedSemaphorePermit {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return p;
        }
        if let Some(times) = self.warn.due() {
            warn!(
                max = self.max,
                times_since_last_warning = times,
                "connection limit reached; new connections wait in the listen queue until one closes"
            );
        }
        match self.slots.clone().acquire_owned().await {
            Ok(p) => p,
            // The semaphore is never closed.
            Err(_) => std::future::pending().await,
        }
    }
}

/// The default cap on open connections: 1024, or half the soft file descriptor limit when
/// that is lower (modules read files and need descriptors too), but at least 16.
pub fn default_max_connections() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    let soft =
        (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0).then_some(lim.rlim_cur);
    connections_for(soft)
}

fn connections_for(nofile_soft: Option<u64>) -> usize {
    nofile_soft.map_or(MAX_CONNECTIONS, |n| {
        (n / 2).clamp(16, MAX_CONNECTIONS as u64) as usize
    })
}

/// Lets an event through at most once per interval and counts the ones held back, so a limit
/// hit a thousand times a second logs one line a minute.
pub struct Every {
    interval: Duration,
    /// When the next event may pass, and how many were held back since the last one did.
    state: Mutex<(Option<Instant>, u64)>,
}

impl Every {
    pub fn new(interval: Duration) -> Self {
        Every {
            interval,
            state: Mutex::new((None, 0)),
        }
    }

    /// `Some(n)` when this event may be logged, `n` being how many were held back since the
    /// last one that was (plus this one); `None` when it is too soon.
    pub fn due(&self) -> Option<u64> {
        self.due_at(Instant::now())
    }

    fn due_at(&self, now: Instant) -> Option<u64> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.1 += 1;
        if st.0.is_some_and(|next| now < next) {
            return None;
        }
        st.0 = Some(now + self.interval);
        Some(std::mem::take(&mut st.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_beyond_the_limit_are_refused_until_one_ends() {
        let limit = RequestLimit::new(2);
        let a = limit.try_enter().expect("first");
        let _b = limit.try_enter().expect("second");
        assert!(limit.try_enter().is_none(), "a third must be refused");
        drop(a);
        let _c = limit.try_enter().expect("a place is free again");
        assert!(limit.try_enter().is_none());
        assert_eq!(limit.max(), 2);
    }

    #[test]
    fn zero_means_no_limit() {
        let limit = RequestLimit::new(0);
        let held: Vec<Slot> = (0..1000).filter_map(|_| limit.try_enter()).collect();
        assert_eq!(held.len(), 1000);
    }

    #[tokio::test]
    async fn connections_wait_for_a_free_place() {
        let limit = ConnectionLimit::new(1);
        let first = limit.acquire().await;
        let waiting = limit.acquire();
        tokio::pin!(waiting);
        // While the only place is taken, the second waits (it does not fail or spin).
        assert!(futures_poll_once(waiting.as_mut()).is_none());
        drop(first);
        let _second = waiting.await;
    }

    /// Polls a future once with a no-op waker.
    fn futures_poll_once<F: std::future::Future>(f: std::pin::Pin<&mut F>) -> Option<F::Output> {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.poll(&mut cx) {
            std::task::Poll::Ready(v) => Some(v),
            std::task::Poll::Pending => None,
        }
    }

    #[test]
    fn connection_cap_follows_the_descriptor_limit() {
        assert_eq!(connections_for(None), 1024);
        assert_eq!(connections_for(Some(u64::MAX)), 1024);
        assert_eq!(connections_for(Some(1_048_576)), 1024);
        assert_eq!(connections_for(Some(1024)), 512);
        assert_eq!(connections_for(Some(10)), 16);
        assert!(default_max_connections() >= 16);
    }

    #[test]
    fn logs_once_per_interval_with_the_count() {
        let every = Every::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(every.due_at(t0), Some(1));
        assert_eq!(every.due_at(t0 + Duration::from_secs(1)), None);
        assert_eq!(every.due_at(t0 + Duration::from_secs(59)), None);
        assert_eq!(every.due_at(t0 + Duration::from_secs(60)), Some(3));
        assert_eq!(every.due_at(t0 + Duration::from_secs(61)), None);
    }
}
