//! Collector calls that ran past their budget and have not returned yet, for the whole
//! process.
//!
//! A read that blocks in the kernel (a `/proc` file of a hung driver, a dead NFS server)
//! cannot be interrupted: the thread that made it stays blocked until the kernel answers. To
//! keep that to one thread per collector, whoever is about to run a collector asks this table
//! first, and every instance of the module asks the same table. So a reload that starts a new
//! instance skips a collector whose call from the old instance is still stuck, instead of
//! starting a second read of the same file. (Scrapes that start a collector at the same
//! moment, before one of them finds it stuck, may each leave a call behind: never more than
//! the scrapes that run at once.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// One stuck call.
#[derive(Clone, Debug)]
pub(crate) struct Stuck {
    pub(crate) collector: &'static str,
    /// When the call started.
    pub(crate) started: Instant,
    /// The same moment on the wall clock, for people.
    pub(crate) since: SystemTime,
}

impl Stuck {
    /// How long the call has been running.
    pub(crate) fn age(&self) -> Duration {
        self.started.elapsed()
    }
}

static TABLE: Mutex<Vec<Stuck>> = Mutex::new(Vec::new());
/// `TABLE.len()`, so that the common case (nothing stuck) costs one atomic load.
static COUNT: AtomicUsize = AtomicUsize::new(0);

fn table() -> MutexGuard<'static, Vec<Stuck>> {
    TABLE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether a call of `collector` (from any module instance) is stuck.
pub(crate) fn is_stuck(collector: &str) -> bool {
    COUNT.load(Ordering::Acquire) != 0 && table().iter().any(|s| s.collector == collector)
}

/// Records that the call of `collector` that started at `started` is stuck.
pub(crate) fn register(collector: &'static str, started: Instant) {
    let since = SystemTime::now()
        .checked_sub(started.elapsed())
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut t = table();
    t.push(Stuck {
        collector,
        started,
        since,
    });
    COUNT.store(t.len(), Ordering::Release);
}

/// Removes the call of `collector` that started at `started`, which has returned.
pub(crate) fn release(collector: &str, started: Instant) {
    let mut t = table();
    t.retain(|s| !(s.collector == collector && s.started == started));
    COUNT.store(t.len(), Ordering::Release);
}

/// The stuck calls of the collectors that `wanted` accepts, oldest first per collector.
pub(crate) fn list(wanted: impl Fn(&str) -> bool) -> Vec<Stuck> {
    if COUNT.load(Ordering::Acquire) == 0 {
        return Vec::new();
    }
    table()
        .iter()
        .filter(|s| wanted(s.collector))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_list_release() {
        let t0 = Instant::now();
        register("stuck_test_a", t0);
        register("stuck_test_a", t0 + Duration::from_millis(1));
        assert!(is_stuck("stuck_test_a"));
        assert!(!is_stuck("stuck_test_b"));
        let l = list(|n| n == "stuck_test_a");
        assert_eq!(l.len(), 2);
        assert!(l[0].since <= SystemTime::now());
        release("stuck_test_a", t0);
        assert!(is_stuck("stuck_test_a"), "the second call is still stuck");
        release("stuck_test_a", t0 + Duration::from_millis(1));
        assert!(!is_stuck("stuck_test_a"));
        assert!(list(|n| n == "stuck_test_a").is_empty());
    }
}
