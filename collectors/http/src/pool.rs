//! Idle keep-alive connections, by where they go and with which TLS setup, and the counters
//! that show whether they are being reused.
//!
//! A connection is put back after a complete response unless either side said
//! `Connection: close`. At most [`MAX_IDLE_PER_KEY`] wait per key (the oldest goes first),
//! and one idle for [`IDLE_TIMEOUT`] is dropped: when a request looks for one, and by a
//! sweeper task that runs while anything is idle. Dropping the sender ends the connection's
//! task, which closes the socket.

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

/// Idle connections kept per key.
pub(crate) const MAX_IDLE_PER_KEY: usize = 8;
/// An idle connection older than this is closed (servers often close at 60-120 s; Go's
/// default is 90 s).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How often the sweeper looks for expired connections.
const SWEEP_EVERY: Duration = Duration::from_secs(15);

/// Which connections can carry a request: same scheme, host, port and TLS setup.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// [`Tls::id`](crate::Tls) for HTTPS.
    pub tls: Option<u64>,
}

/// An open HTTP/1.1 connection: the sender, and how many bytes have come back on it (to
/// tell "closed before answering" from "broke while answering").
pub(crate) struct Conn {
    pub sender: SendRequest<Full<Bytes>>,
    pub received: Arc<AtomicU64>,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

#[derive(Default)]
struct State {
    by_key: HashMap<Key, Vec<Idle>>,
    /// The running sweeper's number, if one runs.
    sweeper: Option<u64>,
    next_sweeper: u64,
}

/// Connection reuse so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Connections opened (TCP, TLS and HTTP handshake done).
    pub connections_opened: u64,
    /// Requests sent on a connection that had carried one before.
    pub reused: u64,
    /// Requests sent again on a new connection because the pooled one they were sent on
    /// turned out closed by the server before it answered anything.
    pub retried: u64,
    /// Connections waiting for the next request now.
    pub idle: usize,
}

/// The idle connections and the counters.
#[derive(Default)]
pub(crate) struct Pool {
    state: Mutex<State>,
    opened: AtomicU64,
    reused: AtomicU64,
    retried: AtomicU64,
}

impl Pool {
    fn state(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The most recently used live connection for `key`; dead and expired ones met on the
    /// way are dropped.
    pub fn take(&self, key: &Key) -> Option<Conn> {
        self.take_at(key, Instant::now())
    }

    fn take_at(&self, key: &Key, now: Instant) -> Option<Conn> {
        let mut state = self.state();
        let list = state.by_key.get_mut(key)?;
        let mut found = None;
        while let Some(idle) = list.pop() {
            if usable(&idle, now) {
                found = Some(idle.conn);
                break;
            }
        }
        if list.is_empty() {
            state.by_key.remove(key);
        }
        found
    }

    /// Keeps `conn` for the next request to `key`.
    pub fn put(self: &Arc<Self>, key: Key, conn: Conn) {
        if conn.sender.is_closed() {
            return;
        }
        let mut state = self.state();
        let list = state.by_key.entry(key).or_default();
        if list.len() >= MAX_IDLE_PER_KEY {
            list.remove(0);
        }
        list.push(Idle {
            conn,
            since: Instant::now(),
        });
        if state.sweeper.is_none() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let n = state.next_sweeper;
                state.next_sweeper += 1;
                state.sweeper = Some(n);
                rt.spawn(sweep_while_idle(Arc::downgrade(self), n));
            }
        }
    }

    /// Drops dead and expired connections. Returns whether any stay; if none do, the
    /// sweeper `n` is marked stopped (it returns next).
    fn sweep(&self, now: Instant, n: u64) -> bool {
        let mut state = self.state();
        state.by_key.retain(|_, list| {
            list.retain(|idle| usable(idle, now));
            !list.is_empty()
        });
        if state.by_key.is_empty() && state.sweeper == Some(n) {
            state.sweeper = None;
            return false;
        }
        true
    }

    pub fn note_opened(&self) {
        self.opened.fetch_add(1, Ordering::Relaxed);
    }

    pub fn note_reused(&self) {
        self.reused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn note_retried(&self) {
        self.retried.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            connections_opened: self.opened.load(Ordering::Relaxed),
            reused: self.reused.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            idle: self.state().by_key.values().map(Vec::len).sum(),
        }
    }
}

fn usable(idle: &Idle, now: Instant) -> bool {
    !idle.conn.sender.is_closed() && now.saturating_duration_since(idle.since) < IDLE_TIMEOUT
}

/// Sweeper number `n`: runs while connections are idle and the pool exists.
async fn sweep_while_idle(pool: Weak<Pool>, n: u64) {
    /// Marks the sweeper stopped when its task ends some other way (its runtime shut down).
    struct Stopped(Weak<Pool>, u64);
    impl Drop for Stopped {
        fn drop(&mut self) {
            if let Some(pool) = self.0.upgrade() {
                let mut state = pool.state();
                if state.sweeper == Some(self.1) {
                    state.sweeper = None;
                }
            }
        }
    }
    let _stopped = Stopped(pool.clone(), n);
    loop {
        tokio::time::sleep(SWEEP_EVERY).await;
        let Some(p) = pool.upgrade() else { return };
        if !p.sweep(Instant::now(), n) {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper_util::rt::TokioIo;

    /// A connection over an in-memory pipe (nobody answers; it only has to be open).
    async fn conn() -> (Conn, tokio::io::DuplexStream) {
        let (near, far) = tokio::io::duplex(1024);
        let (sender, task) = hyper::client::conn::http1::handshake(TokioIo::new(near))
            .await
            .unwrap();
        tokio::spawn(task);
        let received = Arc::new(AtomicU64::new(0));
        (Conn { sender, received }, far)
    }

    fn key(port: u16) -> Key {
        Key {
            https: false,
            host: "127.0.0.1".into(),
            port,
            tls: None,
        }
    }

    #[tokio::test]
    async fn idle_connections_expire_and_are_kept_per_key() {
        let pool = Arc::new(Pool::default());
        let (a, _pipe_a) = conn().await;
        let (b, _pipe_b) = conn().await;
        pool.put(key(1), a);
        pool.put(key(2), b);
        assert_eq!(pool.stats().idle, 2);
        assert!(pool.take(&key(3)).is_none(), "nothing for another port");
        let later = Instant::now() + IDLE_TIMEOUT + Duration::from_secs(1);
        assert!(pool.take_at(&key(1), later).is_none(), "expired");
        assert_eq!(pool.stats().idle, 1);
        assert!(pool.sweep(Instant::now(), 0), "key 2 is still fresh");
        // Sweeper 0 is the one the first put started: with nothing left it stops.
        assert!(!pool.sweep(later, 0), "nothing left to sweep");
        assert_eq!(pool.stats().idle, 0, "the sweep dropped the expired one");
    }

    #[tokio::test]
    async fn a_closed_connection_is_not_kept() {
        let pool = Arc::new(Pool::default());
        let (a, pipe) = conn().await;
        drop(pipe); // the far end goes away
        let mut closed = a;
        // Wait until the connection task has seen it.
        let _ = closed.sender.ready().await;
        assert!(closed.sender.is_closed());
        pool.put(key(1), closed);
        assert_eq!(pool.stats().idle, 0);
    }
}
