//! Polling with a deadline.

use std::time::{Duration, Instant};

/// Polls `f` every 100 ms until it returns true (true) or `timeout` passes (false); `f` runs
/// at least once.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_when_true_or_at_the_deadline() {
        let mut calls = 0;
        assert!(wait_until(Duration::from_secs(5), || {
            calls += 1;
            calls == 3
        }));
        assert_eq!(calls, 3);
        let start = Instant::now();
        assert!(!wait_until(Duration::from_millis(250), || false));
        assert!(start.elapsed() >= Duration::from_millis(250));
        let mut once = 0;
        assert!(!wait_until(Duration::ZERO, || {
            once += 1;
            false
        }));
        assert_eq!(once, 1);
    }
}
