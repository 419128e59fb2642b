//! What the status page graphs draw: per target, a fixed ring of columns (at most
//! [`MAX_COLUMNS`]), each summarising the requests completed in one bucket of time (3h of
//! history: one column per minute) as smokeping does: how many were sent and lost, and the
//! distribution of their RTTs (minimum, 10th, 25th, 50th, 75th, 90th percentile, maximum).
//!
//! A request lands in the bucket in which its outcome became known (its reply, or its
//! timeout), which shifts bucket edges by at most the timeout. The RTTs of the bucket being
//! filled are kept (up to one bucket's worth of requests, allocated at start); a finished
//! bucket keeps only its summary. The memory is fixed when the target is set up and is
//! reported by [`History::bytes`].

use std::time::{Duration, Instant};

/// The most columns a graph has.
pub const MAX_COLUMNS: usize = 180;

/// One bucket of time, summarised.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Column {
    /// Requests completed in the bucket.
    pub sent: u16,
    /// Of those, lost.
    pub lost: u16,
    /// RTT seconds: min, p10, p25, median, p75, p90, max; meaningless when all were lost.
    pub q: [f32; 7],
}

impl Column {
    /// The share of requests lost.
    pub fn loss(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            f64::from(self.lost) / f64::from(self.sent)
        }
    }

    /// Whether any reply came (so `q` means something).
    pub fn has_rtt(&self) -> bool {
        self.lost < self.sent
    }

    /// The median RTT in seconds, when there was a reply.
    pub fn median(&self) -> Option<f64> {
        self.has_rtt().then_some(f64::from(self.q[3]))
    }
}

/// The graph data of one target.
#[derive(Debug)]
pub struct History {
    width: Duration,
    epoch: Instant,
    /// Finished columns by bucket number modulo the ring size; `(bucket, column)`.
    ring: Box<[Option<(u64, Column)>]>,
    /// The bucket being filled.
    current: u64,
    sent: u32,
    lost: u32,
    rtts: Vec<f32>,
}

impl History {
    /// A history of `span` in buckets of at least `interval` (and at most
    /// [`MAX_COLUMNS`] of them), counted from `epoch`.
    pub fn new(span: Duration, interval: Duration, epoch: Instant) -> History {
        let (width, columns) = layout(span, interval);
        // one per interval, and room for a few whose timeouts end in this bucket
        let per_bucket = width.as_nanos().div_ceil(interval.as_nanos().max(1)) as usize + 2;
        History {
            width,
            epoch,
            ring: vec![None; columns].into(),
            current: 0,
            sent: 0,
            lost: 0,
            rtts: Vec::with_capacity(per_bucket),
        }
    }

    /// The time one column covers.
    pub fn width(&self) -> Duration {
        self.width
    }

    /// How many columns the graph has.
    pub fn columns(&self) -> usize {
        self.ring.len()
    }

    /// Bytes this history holds (fixed at start).
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + std::mem::size_of_val(&*self.ring)
            + self.rtts.capacity() * std::mem::size_of::<f32>()
    }

    fn bucket(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.epoch).as_nanos();
        (since / self.width.as_nanos().max(1)) as u64
    }

    /// Records the outcome of one request, known at `at`: its RTT, or `None` if lost.
    pub fn record(&mut self, at: Instant, rtt: Option<f64>) {
        let b = self.bucket(at);
        if b > self.current {
            self.finish();
            self.current = b;
        }
        self.sent = self.sent.saturating_add(1);
        match rtt {
            None => self.lost = self.lost.saturating_add(1),
            // beyond one bucket's worth (never in steady operation) only the count is kept
            Some(r) if self.rtts.len() < self.rtts.capacity() => self.rtts.push(r as f32),
            Some(_) => {}
        }
    }

    /// Summarises the bucket being filled into the ring.
    fn finish(&mut self) {
        if let Some(c) = self.summary() {
            let len = self.ring.len() as u64;
            self.ring[(self.current % len) as usize] = Some((self.current, c));
        }
        self.sent = 0;
        self.lost = 0;
        self.rtts.clear();
    }

    /// The bucket being filled, summarised (sorting its RTTs).
    fn summary(&mut self) -> Option<Column> {
        if self.sent == 0 {
            return None;
        }
        self.rtts.sort_by(f32::total_cmp);
        let q = quantiles(&self.rtts);
        Some(Column {
            sent: self.sent.min(u32::from(u16::MAX)) as u16,
            lost: self.lost.min(u32::from(u16::MAX)) as u16,
            q,
        })
    }

    /// The columns from oldest to newest, ending with the bucket of `now` (partly filled);
    /// `None` where nothing completed.
    pub fn graph(&mut self, now: Instant) -> Vec<Option<Column>> {
        let now_b = self.bucket(now).max(self.current);
        let len = self.ring.len() as u64;
        let first = (now_b + 1).saturating_sub(len);
        let current = if self.current >= first {
            self.summary()
        } else {
            None
        };
        (first..=now_b)
            .map(|b| {
                if b == self.current {
                    return current;
                }
                match self.ring[(b % len) as usize] {
                    Some((at, c)) if at == b => Some(c),
                    _ => None,
                }
            })
            .collect()
    }
}

/// Bucket width and column count for a span: one column per `span / MAX_COLUMNS`, but
/// never narrower than the interval.
pub fn layout(span: Duration, interval: Duration) -> (Duration, usize) {
    let min_width = interval.max(Duration::from_millis(1));
    let width = (span / MAX_COLUMNS as u32).max(min_width);
    let columns = span.as_nanos().div_ceil(width.as_nanos()) as usize;
    (width, columns.clamp(1, MAX_COLUMNS))
}

/// min, p10, p25, p50, p75, p90, max of sorted values (nearest rank); zeros when empty.
fn quantiles(sorted: &[f32]) -> [f32; 7] {
    let Some(&last) = sorted.last() else {
        return [0.0; 7];
    };
    let at = |p: f64| {
        let rank = (p * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    };
    [
        sorted[0],
        at(0.10),
        at(0.25),
        at(0.50),
        at(0.75),
        at(0.90),
        last,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn layouts() {
        assert_eq!(
            layout(Duration::from_secs(3 * 3600), S),
            (Duration::from_secs(60), 180)
        );
        assert_eq!(
            layout(Duration::from_secs(24 * 3600), S),
            (Duration::from_secs(480), 180)
        );
        // shorter than 180 intervals: one column per interval
        assert_eq!(layout(Duration::from_secs(60), S), (S, 60));
        assert_eq!(
            layout(Duration::from_secs(60), Duration::from_secs(7)),
            (Duration::from_secs(7), 9)
        );
    }

    #[test]
    fn quantiles_nearest_rank() {
        let v: Vec<f32> = (1..=20).map(|i| i as f32).collect();
        assert_eq!(quantiles(&v), [1.0, 2.0, 5.0, 10.0, 15.0, 18.0, 20.0]);
        assert_eq!(quantiles(&[3.0]), [3.0; 7]);
        assert_eq!(quantiles(&[]), [0.0; 7]);
    }

    #[test]
    fn columns_per_bucket_with_gaps() {
        let t0 = Instant::now();
        let h = History::new(Duration::from_secs(600), S, t0);
        assert_eq!(h.columns(), 180);
        assert_eq!(h.width(), S * 3 + Duration::from_nanos(333_333_333));
        let mut h = History::new(Duration::from_secs(60), S, t0);
        assert_eq!((h.columns(), h.width()), (60, S));
        // second 0: three replies; second 1: one lost; seconds 2-3: nothing; second 4: reply
        for ms in [0.010, 0.030, 0.020] {
            h.record(t0 + Duration::from_millis(100), Some(ms));
        }
        h.record(t0 + Duration::from_millis(1500), None);
        h.record(t0 + Duration::from_millis(4200), Some(0.005));
        let g = h.graph(t0 + Duration::from_millis(4900));
        assert_eq!(g.len(), 5, "from bucket 0 to the bucket of now");
        let c0 = g[0].unwrap();
        assert_eq!((c0.sent, c0.lost), (3, 0));
        assert_eq!(c0.q[0], 0.010);
        assert_eq!(c0.median(), Some(0.020f32 as f64));
        assert_eq!(c0.q[6], 0.030);
        let c1 = g[1].unwrap();
        assert_eq!((c1.sent, c1.lost, c1.loss()), (1, 1, 1.0));
        assert_eq!(c1.median(), None);
        assert_eq!((g[2], g[3]), (None, None));
        assert_eq!(
            g[4].unwrap().q[3],
            0.005,
            "the bucket being filled is drawn"
        );
        // much later: the graph covers the last 60 buckets, all empty
        let g = h.graph(t0 + Duration::from_secs(1000));
        assert_eq!(g.len(), 60);
        assert!(g.iter().all(Option::is_none));
    }

    #[test]
    fn memory_is_fixed() {
        let t0 = Instant::now();
        let mut h = History::new(Duration::from_secs(3 * 3600), S, t0);
        let before = h.bytes();
        for i in 0..100_000u32 {
            h.record(t0 + Duration::from_millis(u64::from(i) * 100), Some(0.001));
        }
        assert_eq!(h.bytes(), before, "ten requests a second do not grow it");
        assert!(before < 10 * 1024, "{before} bytes");
    }
}
