//! Lock-free counters, gauges and histograms for modules that count between scrapes.
//!
//! A scrape-time collector (node, containers) reads its source when `/metrics` is asked for and
//! writes samples straight through an [`Encoder`]. A long-running module (the log shipper, the
//! probe schedulers, the ICMP receive loop) counts events as they happen, on its own tasks, and
//! the scrape only reads the totals. These types hold those totals: an update is one atomic
//! operation (a compare-and-swap loop for floats), and [`Metric::encode`] writes the current
//! values through the crate's [`Encoder`], so headers, escaping and number formatting are the
//! same as everywhere else.
//!
//! A labelled set ([`CounterVec`], [`GaugeVec`], [`HistogramVec`]) hands out one `Arc` per
//! label-value tuple. Look the handle up once (a short lock), keep it, and update it without one.
//!
//! ```
//! use eos_exposition::{CounterVec, Encoder, Format, Histogram, Metric};
//! let lines = CounterVec::new(&["namespace", "pod"]);
//! let web = lines.get_or_create(&["default", "web-0"]); // once, when the pod is seen
//! web.inc(); // per line: one atomic add
//! let rtt = Histogram::new(&[0.01, 0.1]);
//! rtt.observe(0.05);
//!
//! let mut buf = Vec::new();
//! let mut enc = Encoder::new(&mut buf, Format::Text);
//! lines.encode(&mut enc, "example_lines_total", "Lines read.");
//! rtt.encode(&mut enc, "example_rtt_seconds", "Round-trip time.");
//! let text = String::from_utf8(buf).unwrap();
//! assert_eq!(text, concat!(
//!     "# HELP example_lines_total Lines read.\n",
//!     "# TYPE example_lines_total counter\n",
//!     "example_lines_total{namespace=\"default\",pod=\"web-0\"} 1\n",
//!     "# HELP example_rtt_seconds Round-trip time.\n",
//!     "# TYPE example_rtt_seconds histogram\n",
//!     "example_rtt_seconds_bucket{le=\"0.01\"} 0\n",
//!     "example_rtt_seconds_bucket{le=\"0.1\"} 1\n",
//!     "example_rtt_seconds_bucket{le=\"+Inf\"} 1\n",
//!     "example_rtt_seconds_sum 0.05\n",
//!     "example_rtt_seconds_count 1\n",
//! ));
//! ```

use crate::{write_go_float, Encoder, Family, Format, Kind};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, PoisonError, RwLock};

/// Something that writes itself as one metric family at scrape time.
pub trait Metric {
    /// Writes the family `name` (header on its first sample) with the current value(s).
    fn encode(&self, enc: &mut Encoder<'_>, name: &str, help: &str);
}

/// A monotonically increasing count, written as [`Kind::Counter`]. Name it `..._total`: in
/// OpenMetrics the encoder writes the header without the suffix, and types a counter family
/// whose name lacks it as `unknown`.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// A counter at zero; `const`, so it can be a `static`.
    pub const fn new() -> Self {
        Counter(AtomicU64::new(0))
    }

    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Relaxed);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// A value that goes up and down, stored as the bits of an `f64`.
#[derive(Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    /// A gauge at zero; `const`, so it can be a `static`.
    pub const fn new() -> Self {
        Gauge(AtomicU64::new(0)) // the bits of 0.0
    }

    /// Sets the value.
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Relaxed);
    }

    /// Adds `d` (which may be negative).
    pub fn add(&self, d: f64) {
        add_f64(&self.0, d);
    }

    /// Adds one, e.g. when a connection opens.
    pub fn inc(&self) {
        self.add(1.0);
    }

    /// Subtracts one.
    pub fn dec(&self) {
        self.add(-1.0);
    }

    /// The current value.
    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Relaxed))
    }
}

impl fmt::Debug for Gauge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Gauge").field(&self.get()).finish()
    }
}

fn add_f64(cell: &AtomicU64, d: f64) {
    let _ = cell.fetch_update(Relaxed, Relaxed, |b| {
        Some((f64::from_bits(b) + d).to_bits())
    });
}

/// The Go client's `prometheus.DefBuckets`, for durations in seconds.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// `count` bounds `start, start*factor, start*factor², ...`, computed like the Go client's
/// `ExponentialBuckets`. Where Go panics (`count == 0`, `start <= 0`, `factor <= 1`, or a
/// non-finite argument) this returns no bounds; it also stops before a bound would overflow.
pub fn exponential_buckets(start: f64, factor: f64, count: usize) -> Vec<f64> {
    let valid = start > 0.0 && start.is_finite() && factor > 1.0 && factor.is_finite();
    successive(valid, start, count, |v| v * factor)
}

/// `count` bounds `start, start+width, ...`, computed like the Go client's `LinearBuckets`
/// (by repeated addition, so the bounds read the same as Go's). Returns no bounds for
/// `count == 0`, `width <= 0` or a non-finite argument.
pub fn linear_buckets(start: f64, width: f64, count: usize) -> Vec<f64> {
    let valid = start.is_finite() && width > 0.0 && width.is_finite();
    successive(valid, start, count, |v| v + width)
}

fn successive(valid: bool, start: f64, count: usize, next: impl Fn(f64) -> f64) -> Vec<f64> {
    if !valid {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(count.min(64));
    let mut v = start;
    for _ in 0..count {
        if !v.is_finite() {
            break;
        }
        out.push(v);
        v = next(v);
    }
    out
}

/// A histogram's upper bounds and their `le` label values, shared by every child of a
/// [`HistogramVec`].
struct Bounds {
    upper: Box<[f64]>,
    /// `le` as the Go client writes it in the text format (`1`, `0.005`).
    le_text: Box<[Box<str>]>,
    /// ... and in OpenMetrics, where an integer gets `.0` (`1.0`).
    le_openmetrics: Box<[Box<str>]>,
}

impl Bounds {
    /// Sorts and deduplicates `bounds`, dropping NaN and `+Inf` (the `+Inf` bucket is always
    /// there), instead of panicking on them as the Go client does.
    fn new(bounds: &[f64]) -> Arc<Bounds> {
        let mut upper: Vec<f64> = bounds
            .iter()
            .filter(|b| !b.is_nan() && **b != f64::INFINITY)
            .map(|&b| if b == 0.0 { 0.0 } else { b }) // -0 is written "-0"
            .collect();
        upper.sort_by(f64::total_cmp);
        upper.dedup();
        let le = |openmetrics: bool| -> Box<[Box<str>]> {
            upper
                .iter()
                .map(|&b| {
                    let mut s = Vec::new();
                    write_go_float(&mut s, b);
                    if openmetrics && b.is_finite() && !s.iter().any(|&c| c == b'e' || c == b'.') {
                        s.extend_from_slice(b".0");
                    }
                    String::from_utf8_lossy(&s).into()
                })
                .collect()
        };
        Arc::new(Bounds {
            le_text: le(false),
            le_openmetrics: le(true),
            upper: upper.into(),
        })
    }
}

/// Counts observations into buckets with fixed upper bounds (`le`, inclusive), and sums them.
///
/// The written `_count` is the sum of the bucket counts read for that scrape, so `+Inf` and
/// `_count` always agree and the cumulative buckets never decrease, even while other threads
/// observe. `_sum` is read separately and may lag or lead them by an observation in flight.
///
/// Non-finite observations are counted (NaN and `+Inf` in the `+Inf` bucket only, as in the
/// Go client; `-Inf` in the lowest bucket) but not added to `_sum`: Go adds them, which turns
/// the sum into NaN or ±Inf for the rest of the process's life.
pub struct Histogram {
    bounds: Arc<Bounds>,
    /// Observations per bucket, not cumulative; the last one is above every bound (`+Inf`).
    buckets: Box<[AtomicU64]>,
    /// The sum of the finite observations, as the bits of an `f64`.
    sum: AtomicU64,
}

impl Histogram {
    /// A histogram with these bucket upper bounds. They are sorted and deduplicated; NaN and
    /// `+Inf` are dropped (a `+Inf` bucket is always written).
    pub fn new(bounds: &[f64]) -> Self {
        Histogram::with_bounds(Bounds::new(bounds))
    }

    fn with_bounds(bounds: Arc<Bounds>) -> Self {
        Histogram {
            buckets: (0..=bounds.upper.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            bounds,
            sum: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, v: f64) {
        let upper = &self.bounds.upper;
        let i = if v.is_nan() {
            upper.len()
        } else {
            upper.partition_point(|&b| b < v)
        };
        if let Some(bucket) = self.buckets.get(i) {
            bucket.fetch_add(1, Relaxed);
        }
        if v.is_finite() {
            add_f64(&self.sum, v);
        }
    }
}

impl Default for Histogram {
    /// A histogram with [`DEFAULT_BUCKETS`], as the Go client defaults to.
    fn default() -> Self {
        Histogram::new(DEFAULT_BUCKETS)
    }
}

impl fmt::Debug for Histogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count: u64 = self.buckets.iter().map(|b| b.load(Relaxed)).sum();
        f.debug_struct("Histogram")
            .field("bounds", &self.bounds.upper)
            .field("count", &count)
            .field("sum", &f64::from_bits(self.sum.load(Relaxed)))
            .finish()
    }
}

/// Label names and one child's values, both in output (name-sorted) order.
#[derive(Clone, Copy)]
struct Labels<'a> {
    names: &'a [Box<str>],
    values: &'a [Box<str>],
}

impl<'a> Labels<'a> {
    const NONE: Labels<'static> = Labels {
        names: &[],
        values: &[],
    };

    fn iter(self) -> impl Iterator<Item = (&'a str, &'a str)> {
        let values = self.values.iter().map(|v| &**v);
        self.names.iter().map(|n| &**n).zip(values)
    }
}

/// What a metric writes for one child of a family; the [`MetricVec`] and the plain
/// [`Metric::encode`] share it.
trait Child {
    const KIND: Kind;
    fn write(&self, fam: &mut Family<'_, '_>, format: Format, labels: Labels<'_>);
}

impl Child for Counter {
    const KIND: Kind = Kind::Counter;
    fn write(&self, fam: &mut Family<'_, '_>, _: Format, labels: Labels<'_>) {
        fam.sample_with("", labels.iter(), self.get() as f64);
    }
}

impl Child for Gauge {
    const KIND: Kind = Kind::Gauge;
    fn write(&self, fam: &mut Family<'_, '_>, _: Format, labels: Labels<'_>) {
        fam.sample_with("", labels.iter(), self.get());
    }
}

impl Child for Histogram {
    const KIND: Kind = Kind::Histogram;
    fn write(&self, fam: &mut Family<'_, '_>, format: Format, labels: Labels<'_>) {
        let le = match format {
            Format::Text => &self.bounds.le_text,
            Format::OpenMetrics => &self.bounds.le_openmetrics,
        };
        let mut cumulative = 0u64;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative = cumulative.wrapping_add(bucket.load(Relaxed));
            let le = le.get(i).map_or("+Inf", |s| &**s);
            let labels = labels.iter().chain([("le", le)]);
            fam.sample_with("_bucket", labels, cumulative as f64);
        }
        let sum = f64::from_bits(self.sum.load(Relaxed));
        fam.sample_with("_sum", labels.iter(), sum);
        fam.sample_with("_count", labels.iter(), cumulative as f64);
    }
}

fn encode_one<M: Child>(m: &M, enc: &mut Encoder<'_>, name: &str, help: &str) {
    let format = enc.format();
    m.write(&mut enc.family(name, help, M::KIND), format, Labels::NONE);
}

impl Metric for Counter {
    fn encode(&self, enc: &mut Encoder<'_>, name: &str, help: &str) {
        encode_one(self, enc, name, help);
    }
}

impl Metric for Gauge {
    fn encode(&self, enc: &mut Encoder<'_>, name: &str, help: &str) {
        encode_one(self, enc, name, help);
    }
}

impl Metric for Histogram {
    fn encode(&self, enc: &mut Encoder<'_>, name: &str, help: &str) {
        encode_one(self, enc, name, help);
    }
}

/// Counters keyed by label values.
pub type CounterVec = MetricVec<Counter>;
/// Gauges keyed by label values.
pub type GaugeVec = MetricVec<Gauge>;
/// Histograms keyed by label values, all with the same buckets.
pub type HistogramVec = MetricVec<Histogram>;

/// One child's label values, in output order.
type Key = Box<[Box<str>]>;

/// One metric per tuple of label values, for a fixed list of label names.
///
/// [`MetricVec::get_or_create`] takes a short lock; the `Arc` it returns is updated without
/// one. Children are written in the Go client's order: labels sorted by name (a histogram's
/// `le` last), children sorted by their values in that order. Label names are not checked:
/// pass distinct valid names, and not `le` for a histogram.
pub struct MetricVec<M> {
    /// Label names in output order (sorted).
    names: Box<[Box<str>]>,
    /// For each name in `names`, its position in the caller's list of values.
    order: Box<[usize]>,
    /// Children sorted by their values (in `names` order): lookup order and output order.
    children: RwLock<Vec<(Key, Arc<M>)>>,
    make: Box<dyn Fn() -> M + Send + Sync>,
}

impl MetricVec<Counter> {
    /// Counters with these label names.
    pub fn new(label_names: &[&str]) -> Self {
        MetricVec::with_maker(label_names, Box::new(Counter::new))
    }
}

impl MetricVec<Gauge> {
    /// Gauges with these label names.
    pub fn new(label_names: &[&str]) -> Self {
        MetricVec::with_maker(label_names, Box::new(Gauge::new))
    }
}

impl MetricVec<Histogram> {
    /// Histograms with these label names and bucket bounds (see [`Histogram::new`]).
    pub fn new(label_names: &[&str], bounds: &[f64]) -> Self {
        let bounds = Bounds::new(bounds);
        let make = move || Histogram::with_bounds(Arc::clone(&bounds));
        MetricVec::with_maker(label_names, Box::new(make))
    }
}

impl<M> MetricVec<M> {
    fn with_maker(label_names: &[&str], make: Box<dyn Fn() -> M + Send + Sync>) -> Self {
        let mut order: Vec<usize> = (0..label_names.len()).collect();
        order.sort_by_key(|&i| label_names[i]);
        MetricVec {
            names: order.iter().map(|&i| label_names[i].into()).collect(),
            order: order.into(),
            children: RwLock::new(Vec::new()),
            make,
        }
    }

    /// The metric for these label values (in the order the names were given), created at zero
    /// the first time. Missing values count as `""` and extra ones are ignored.
    pub fn get_or_create(&self, values: &[&str]) -> Arc<M> {
        {
            let list = self.children.read().unwrap_or_else(PoisonError::into_inner);
            if let Ok(i) = self.find(&list, values) {
                return Arc::clone(&list[i].1);
            }
        }
        let mut list = self
            .children
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match self.find(&list, values) {
            Ok(i) => Arc::clone(&list[i].1),
            Err(i) => {
                let key = self.wanted(values).map(Box::from).collect();
                let child = Arc::new((self.make)());
                list.insert(i, (key, Arc::clone(&child)));
                child
            }
        }
    }

    /// Stops exporting the metric for these label values, e.g. for a target that left the
    /// config. Handles still held keep working but are no longer written; asking again
    /// creates a new one at zero. Returns whether there was one.
    pub fn remove(&self, values: &[&str]) -> bool {
        let mut list = self
            .children
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        match self.find(&list, values) {
            Ok(i) => {
                list.remove(i);
                true
            }
            Err(_) => false,
        }
    }

    /// How many label-value tuples are exported.
    pub fn len(&self) -> usize {
        self.children
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether nothing is exported (an empty set writes no family at all).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The caller's values in output order, padded with `""`.
    fn wanted<'v>(&self, values: &'v [&'v str]) -> impl Iterator<Item = &'v str> + use<'_, 'v, M> {
        self.order
            .iter()
            .map(move |&i| values.get(i).copied().unwrap_or(""))
    }

    fn find(&self, list: &[(Key, Arc<M>)], values: &[&str]) -> Result<usize, usize> {
        list.binary_search_by(|(key, _)| key.iter().map(|k| &**k).cmp(self.wanted(values)))
    }
}

impl<M: Child> Metric for MetricVec<M> {
    fn encode(&self, enc: &mut Encoder<'_>, name: &str, help: &str) {
        let format = enc.format();
        let list = self.children.read().unwrap_or_else(PoisonError::into_inner);
        let mut fam = enc.family(name, help, M::KIND);
        for (values, child) in list.iter() {
            let names = &self.names;
            child.write(&mut fam, format, Labels { names, values });
        }
    }
}

impl<M> fmt::Debug for MetricVec<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricVec")
            .field("label_names", &self.names)
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_text;

    fn out(format: Format, f: impl FnOnce(&mut Encoder)) -> String {
        let mut buf = Vec::new();
        f(&mut Encoder::new(&mut buf, format));
        String::from_utf8(buf).unwrap()
    }

    fn text(m: &dyn Metric, name: &str) -> String {
        out(Format::Text, |e| m.encode(e, name, "h"))
    }

    fn openmetrics(m: &dyn Metric, name: &str) -> String {
        out(Format::OpenMetrics, |e| m.encode(e, name, "h"))
    }

    #[test]
    fn counter_in_both_formats() {
        let c = Counter::new();
        c.inc();
        c.add(41);
        assert_eq!(c.get(), 42);
        assert_eq!(
            text(&c, "x_total"),
            "# HELP x_total h\n# TYPE x_total counter\nx_total 42\n"
        );
        assert_eq!(
            openmetrics(&c, "x_total"),
            "# HELP x h\n# TYPE x counter\nx_total 42\n"
        );
    }

    #[test]
    fn gauge_in_both_formats() {
        let g = Gauge::new();
        g.set(2.5);
        g.add(-3.75);
        g.inc();
        g.inc();
        g.dec();
        assert_eq!(g.get(), -0.25);
        assert_eq!(text(&g, "g"), "# HELP g h\n# TYPE g gauge\ng -0.25\n");
        assert_eq!(
            openmetrics(&g, "g"),
            "# HELP g h\n# TYPE g gauge\ng -0.25\n"
        );
        g.set(1e6);
        assert_eq!(text(&g, "g"), "# HELP g h\n# TYPE g gauge\ng 1e+06\n");
    }

    #[test]
    fn histogram_in_both_formats() {
        let h = Histogram::new(&[0.005, 1.0, 10.0]);
        for v in [0.001, 0.005, 0.5, 1.0, 20.0] {
            h.observe(v);
        }
        assert_eq!(
            text(&h, "d_seconds"),
            "# HELP d_seconds h\n# TYPE d_seconds histogram\n\
             d_seconds_bucket{le=\"0.005\"} 2\n\
             d_seconds_bucket{le=\"1\"} 4\n\
             d_seconds_bucket{le=\"10\"} 4\n\
             d_seconds_bucket{le=\"+Inf\"} 5\n\
             d_seconds_sum 21.506\n\
             d_seconds_count 5\n"
        );
        // OpenMetrics: integer bounds get ".0", as the Go client writes them there.
        assert_eq!(
            openmetrics(&h, "d_seconds"),
            "# HELP d_seconds h\n# TYPE d_seconds histogram\n\
             d_seconds_bucket{le=\"0.005\"} 2\n\
             d_seconds_bucket{le=\"1.0\"} 4\n\
             d_seconds_bucket{le=\"10.0\"} 4\n\
             d_seconds_bucket{le=\"+Inf\"} 5\n\
             d_seconds_sum 21.506\n\
             d_seconds_count 5\n"
        );
    }

    #[test]
    fn bounds_are_sorted_deduplicated_and_cleaned() {
        let h = Histogram::new(&[1.0, f64::NAN, 0.5, 1.0, f64::INFINITY, -0.0, 1e6]);
        h.observe(0.0);
        let t = text(&h, "b");
        let les: Vec<&str> = t
            .lines()
            .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next())
            .collect();
        assert_eq!(les, ["0", "0.5", "1", "1e+06", "+Inf"]);
        assert!(t.contains("b_bucket{le=\"0\"} 1\n"), "{t}");
        let om = openmetrics(&h, "b");
        assert!(
            om.contains("le=\"0.0\"} 1\n") && om.contains("le=\"1e+06\""),
            "{om}"
        );
        // No bounds at all: just the +Inf bucket.
        let h = Histogram::new(&[]);
        h.observe(3.0);
        assert_eq!(
            text(&h, "e"),
            "# HELP e h\n# TYPE e histogram\ne_bucket{le=\"+Inf\"} 1\ne_sum 3\ne_count 1\n"
        );
    }

    #[test]
    fn non_finite_observations_are_counted_but_not_summed() {
        let h = Histogram::new(&[1.0]);
        h.observe(0.5);
        h.observe(f64::NAN);
        h.observe(f64::INFINITY);
        h.observe(f64::NEG_INFINITY);
        assert_eq!(
            text(&h, "n"),
            "# HELP n h\n# TYPE n histogram\n\
             n_bucket{le=\"1\"} 2\nn_bucket{le=\"+Inf\"} 4\nn_sum 0.5\nn_count 4\n"
        );
    }

    /// Checks one histogram in a parsed exposition: buckets non-decreasing, `+Inf` equal to
    /// `_count`. Returns `_count`.
    fn check_histogram(exposition: &str) -> f64 {
        let p = parse_text(exposition).unwrap();
        let buckets: Vec<&crate::ParsedSample> = p
            .samples
            .iter()
            .filter(|s| s.name.ends_with("_bucket"))
            .collect();
        assert!(buckets.windows(2).all(|w| w[0].value <= w[1].value));
        let last = buckets.last().unwrap();
        assert_eq!(last.labels["le"], "+Inf");
        let count = p
            .samples
            .iter()
            .find(|s| s.name.ends_with("_count"))
            .unwrap();
        assert_eq!(last.value, count.value, "{exposition}");
        count.value
    }

    #[test]
    fn concurrent_observers_keep_the_histogram_consistent() {
        let h = Arc::new(Histogram::new(&[1.0, 2.0, 3.0]));
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let scraper = {
            let (h, done) = (Arc::clone(&h), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut scrapes = 0;
                while !done.load(Relaxed) || scrapes == 0 {
                    check_histogram(&text(&*h, "c"));
                    scrapes += 1;
                }
            })
        };
        let observers: Vec<_> = (0..4)
            .map(|t| {
                let h = Arc::clone(&h);
                std::thread::spawn(move || {
                    for i in 0..10_000 {
                        h.observe(f64::from((i + t) % 5)); // 0..=4, exact sums
                    }
                })
            })
            .collect();
        for o in observers {
            o.join().unwrap();
        }
        done.store(true, Relaxed);
        scraper.join().unwrap();
        let t = text(&*h, "c");
        assert_eq!(check_histogram(&t), 40_000.0);
        // Each value 0..=4 was observed 8_000 times.
        assert!(t.contains("c_bucket{le=\"1\"} 16000\n"), "{t}");
        assert!(t.contains("c_sum 80000\n"), "{t}");
    }

    #[test]
    fn concurrent_gauge_and_counter_updates_are_not_lost() {
        let g = Arc::new(Gauge::new());
        let c = Arc::new(Counter::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (g, c) = (Arc::clone(&g), Arc::clone(&c));
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        g.add(0.5);
                        c.inc();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(g.get(), 20_000.0);
        assert_eq!(c.get(), 40_000);
    }

    #[test]
    fn vec_hands_out_one_handle_per_label_values() {
        let v = CounterVec::new(&["namespace", "pod"]);
        assert!(v.is_empty());
        let a = v.get_or_create(&["ns", "a"]);
        let a2 = v.get_or_create(&["ns", "a"]);
        let b = v.get_or_create(&["ns", "b"]);
        assert!(Arc::ptr_eq(&a, &a2));
        assert!(!Arc::ptr_eq(&a, &b));
        assert_eq!(v.len(), 2);
        a.add(3);
        assert!(v.remove(&["ns", "a"]));
        assert!(!v.remove(&["ns", "a"]));
        assert_eq!(v.len(), 1);
        a.inc(); // a removed handle still works, it is just not written
        assert_eq!(
            text(&v, "l_total"),
            "# HELP l_total h\n# TYPE l_total counter\nl_total{namespace=\"ns\",pod=\"b\"} 0\n"
        );
        assert_eq!(v.get_or_create(&["ns", "a"]).get(), 0);
        assert!(v.remove(&["ns", "a"]) && v.remove(&["ns", "b"]));
        assert_eq!(text(&v, "l_total"), "", "an empty set writes no header");
    }

    #[test]
    fn vec_writes_sorted_labels_and_children_escaped() {
        // Names given out of order are written sorted, children sorted by those values.
        let v = GaugeVec::new(&["pod", "namespace"]);
        v.get_or_create(&["z", "b"]).set(1.0);
        v.get_or_create(&["y", "b"]).set(2.0);
        v.get_or_create(&["x", "a"]).set(3.0);
        v.get_or_create(&["q\"\\\n", "c"]).set(4.0);
        let t = text(&v, "g");
        assert_eq!(
            t,
            "# HELP g h\n# TYPE g gauge\n\
             g{namespace=\"a\",pod=\"x\"} 3\n\
             g{namespace=\"b\",pod=\"y\"} 2\n\
             g{namespace=\"b\",pod=\"z\"} 1\n\
             g{namespace=\"c\",pod=\"q\\\"\\\\\\n\"} 4\n"
        );
        let parsed = parse_text(&t).unwrap();
        assert_eq!(parsed.samples[3].labels["pod"], "q\"\\\n");
        assert_eq!(parsed.samples[3].value, 4.0);
    }

    #[test]
    fn vec_tolerates_the_wrong_number_of_values() {
        let v = CounterVec::new(&["a", "b"]);
        v.get_or_create(&["1"]).inc();
        v.get_or_create(&["1", "", "extra"]).inc();
        v.get_or_create(&[]).inc();
        assert_eq!(v.len(), 2);
        assert_eq!(
            text(&v, "w_total"),
            "# HELP w_total h\n# TYPE w_total counter\n\
             w_total{a=\"\",b=\"\"} 1\nw_total{a=\"1\",b=\"\"} 2\n"
        );
        let none = CounterVec::new(&[]);
        none.get_or_create(&["ignored"]).inc();
        assert_eq!(
            text(&none, "n_total"),
            "# HELP n_total h\n# TYPE n_total counter\nn_total 1\n"
        );
    }

    #[test]
    fn histogram_vec_puts_le_last_and_shares_bounds() {
        let v = HistogramVec::new(&["target"], &[0.1]);
        v.get_or_create(&["b"]).observe(0.05);
        v.get_or_create(&["a"]).observe(0.25);
        assert_eq!(
            text(&v, "p_seconds"),
            "# HELP p_seconds h\n# TYPE p_seconds histogram\n\
             p_seconds_bucket{target=\"a\",le=\"0.1\"} 0\n\
             p_seconds_bucket{target=\"a\",le=\"+Inf\"} 1\n\
             p_seconds_sum{target=\"a\"} 0.25\n\
             p_seconds_count{target=\"a\"} 1\n\
             p_seconds_bucket{target=\"b\",le=\"0.1\"} 1\n\
             p_seconds_bucket{target=\"b\",le=\"+Inf\"} 1\n\
             p_seconds_sum{target=\"b\"} 0.05\n\
             p_seconds_count{target=\"b\"} 1\n"
        );
    }

    #[test]
    fn whole_exposition_parses_back_in_both_formats() {
        let c = CounterVec::new(&["result"]);
        c.get_or_create(&["ok"]).add(7);
        let h = Histogram::default();
        h.observe(0.3);
        let g = Gauge::new();
        g.set(f64::NAN);
        let metrics: [(&dyn Metric, &str); 3] = [(&c, "r_total"), (&h, "d_seconds"), (&g, "g")];
        for format in [Format::Text, Format::OpenMetrics] {
            let t = out(format, |e| {
                for (m, name) in metrics {
                    m.encode(e, name, "help");
                }
                e.extend_encoded(format.trailer());
            });
            let p = parse_text(&t).unwrap_or_else(|e| panic!("{e}\n{t}"));
            assert_eq!(p.types["d_seconds"], "histogram");
            assert_eq!(p.types["g"], "gauge");
            assert_eq!(p.samples.len(), 1 + (DEFAULT_BUCKETS.len() + 1 + 2) + 1);
            assert_eq!(check_histogram(&t), 1.0);
            assert!(p.samples.last().unwrap().value.is_nan());
        }
    }

    #[test]
    fn bucket_helpers_match_the_go_client() {
        assert_eq!(
            DEFAULT_BUCKETS,
            [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
        );
        assert_eq!(
            exponential_buckets(0.001, 2.0, 4),
            [0.001, 0.002, 0.004, 0.008]
        );
        assert_eq!(linear_buckets(1.0, 2.5, 3), [1.0, 3.5, 6.0]);
        // Repeated addition, like Go: the third bound is 0.30000000000000004.
        assert_eq!(linear_buckets(0.1, 0.1, 3)[2], 0.1 + 0.1 + 0.1);
        assert!(exponential_buckets(0.0, 2.0, 3).is_empty());
        assert!(exponential_buckets(1.0, 1.0, 3).is_empty());
        assert!(exponential_buckets(1.0, 2.0, 0).is_empty());
        assert!(linear_buckets(0.0, -1.0, 3).is_empty());
        assert!(linear_buckets(f64::NAN, 1.0, 3).is_empty());
        // Stops before overflowing instead of writing le="+Inf" twice.
        assert_eq!(exponential_buckets(1e300, 1e10, 5), [1e300]);
    }
}
