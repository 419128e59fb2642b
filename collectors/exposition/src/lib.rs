//! Prometheus text exposition (0.0.4) and OpenMetrics 1.0 encoding, written straight into a
//! reusable byte buffer.
//!
//! Every module writes its samples through an [`Encoder`]. A family's `# HELP`/`# TYPE` header is
//! written lazily, on its first sample, so a family without samples leaves no trace (as in the Go
//! client). Values are formatted like Go's `strconv.FormatFloat(v, 'g', -1, 64)`, so our output
//! reads the same as node_exporter's.
//!
//! ```
//! use eos_exposition::{Encoder, Format, Kind};
//! let mut buf = Vec::new();
//! let mut enc = Encoder::new(&mut buf, Format::Text);
//! let mut fam = enc.family("node_load1", "1m load average.", Kind::Gauge);
//! fam.sample(&[], 0.25);
//! assert_eq!(String::from_utf8(buf).unwrap(),
//!     "# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\nnode_load1 0.25\n");
//! ```
//!
//! Modules that count events between scrapes (log shipping, probes, ping) keep their totals in
//! the lock-free [`Counter`], [`Gauge`] and [`Histogram`] (and their labelled [`MetricVec`]
//! sets), which write themselves through the same encoder; see [`Metric`].
//!
//! Why not `prometheus-client`: its registry wants every metric registered up front as an
//! object holding atomics, and a scrape-time collector (node, containers) would build and drop
//! those objects on every scrape. Writing bytes into a buffer that is kept between scrapes
//! allocates nothing in steady state.

mod float;
mod metrics;
mod parse;

pub use float::write_go_float;
pub use metrics::{
    exponential_buckets, linear_buckets, Counter, CounterVec, Gauge, GaugeVec, Histogram,
    HistogramVec, Metric, MetricVec, DEFAULT_BUCKETS,
};
pub use parse::{parse_text, Parsed, ParsedSample};

use std::io::Write;

/// The metric type written in `# TYPE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Untyped,
    /// Samples `<name>_bucket{le}`, `<name>_sum`, `<name>_count`; see [`Family::sample_suffixed`].
    Histogram,
    /// Samples `<name>{quantile}`, `<name>_sum`, `<name>_count`.
    Summary,
}

/// Which wire format to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`
    Text,
    /// `application/openmetrics-text; version=1.0.0`
    OpenMetrics,
}

impl Format {
    /// Picks the format from an HTTP `Accept` header, as Prometheus negotiates it.
    pub fn from_accept(accept: Option<&str>) -> Format {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    /// The `Content-Type` for a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// What ends a whole exposition (OpenMetrics needs `# EOF`).
    pub fn trailer(self) -> &'static [u8] {
        match self {
            Format::Text => b"",
            Format::OpenMetrics => b"# EOF\n",
        }
    }
}

/// Bytes encoded ahead of a scrape and shared with it, e.g. a background round's output.
pub type Shared = std::sync::Arc<Vec<u8>>;

/// Where [`Shared`] chunks go in the output: (offset in the buffer, chunk), in order.
pub type SharedChunks = Vec<(usize, Shared)>;

/// Writes metric families into a byte buffer.
pub struct Encoder<'a> {
    buf: &'a mut Vec<u8>,
    format: Format,
    shared: Option<&'a mut SharedChunks>,
}

/// A position in the output, for [`Encoder::rollback`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    len: usize,
    shared: usize,
}

impl<'a> Encoder<'a> {
    /// An encoder that appends to `buf`.
    pub fn new(buf: &'a mut Vec<u8>, format: Format) -> Self {
        Encoder {
            buf,
            format,
            shared: None,
        }
    }

    /// An encoder that also accepts [`Shared`] chunks without copying them: they are listed
    /// in `shared` with their offset in `buf`, and the caller sends the pieces in order.
    pub fn with_shared(buf: &'a mut Vec<u8>, format: Format, shared: &'a mut SharedChunks) -> Self {
        Encoder {
            buf,
            format,
            shared: Some(shared),
        }
    }

    /// Appends whole families that an encoder of the same [`Format`] wrote earlier, e.g. in a
    /// background round between scrapes, so the scrape copies bytes instead of formatting.
    pub fn extend_encoded(&mut self, encoded: &[u8]) {
        self.buf.extend_from_slice(encoded);
    }

    /// Like [`Encoder::extend_encoded`], but without copying when the encoder was made
    /// [`Encoder::with_shared`]: a large pre-encoded output then costs no memory per scrape.
    pub fn extend_shared(&mut self, encoded: &Shared) {
        match self.shared.as_deref_mut() {
            Some(list) => list.push((self.buf.len(), Shared::clone(encoded))),
            None => self.buf.extend_from_slice(encoded),
        }
    }

    /// The format being written.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Starts a family. Its header is written with its first sample.
    pub fn family<'e>(&'e mut self, name: &'e str, help: &'e str, kind: Kind) -> Family<'e, 'a> {
        Family {
            enc: self,
            name,
            help,
            kind,
            started: false,
        }
    }

    /// A position in the output, for [`Encoder::rollback`].
    pub fn mark(&self) -> Mark {
        Mark {
            len: self.buf.len(),
            shared: self.shared.as_deref().map_or(0, Vec::len),
        }
    }

    /// Drops everything written since `mark` (e.g. the partial output of a failed collector),
    /// so the exposition stays well-formed.
    pub fn rollback(&mut self, mark: Mark) {
        self.buf.truncate(mark.len);
        if let Some(list) = self.shared.as_deref_mut() {
            list.truncate(mark.shared);
        }
    }

    /// Shorthand for a family with exactly one sample.
    pub fn single(&mut self, name: &str, help: &str, kind: Kind, labels: &[(&str, &str)], v: f64) {
        self.family(name, help, kind).sample(labels, v);
    }

    fn header(&mut self, name: &str, help: &str, kind: Kind) {
        let (name, kind_str) = match self.format {
            Format::Text => (
                name,
                match kind {
                    Kind::Counter => "counter",
                    Kind::Gauge => "gauge",
                    Kind::Untyped => "untyped",
                    Kind::Histogram => "histogram",
                    Kind::Summary => "summary",
                },
            ),
            Format::OpenMetrics => match kind {
                Kind::Counter => match name.strip_suffix("_total") {
                    Some(base) => (base, "counter"),
                    None => (name, "unknown"),
                },
                Kind::Gauge => (name, "gauge"),
                Kind::Untyped => (name, "unknown"),
                Kind::Histogram => (name, "histogram"),
                Kind::Summary => (name, "summary"),
            },
        };
        self.buf.extend_from_slice(b"# HELP ");
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(b' ');
        escape_into(self.buf, help, false);
        self.buf.extend_from_slice(b"\n# TYPE ");
        self.buf.extend_from_slice(name.as_bytes());
        self.buf.push(b' ');
        self.buf.extend_from_slice(kind_str.as_bytes());
        self.buf.push(b'\n');
    }
}

/// One metric family being written; see [`Encoder::family`].
pub struct Family<'e, 'a> {
    enc: &'e mut Encoder<'a>,
    name: &'e str,
    help: &'e str,
    kind: Kind,
    started: bool,
}

impl Family<'_, '_> {
    /// Writes one sample with these labels (name, value pairs, already in output order).
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        self.sample_with("", labels.iter().copied(), value);
    }

    /// Like [`Family::sample`], for label values that are owned strings.
    pub fn sample_owned(&mut self, labels: &[(&str, String)], value: f64) {
        self.sample_with("", labels.iter().map(|(k, v)| (*k, v.as_str())), value);
    }

    /// Writes a sample named `<family><suffix>`, e.g. a histogram's `_bucket`, `_sum` and
    /// `_count` lines.
    pub fn sample_suffixed(&mut self, suffix: &str, labels: &[(&str, &str)], value: f64) {
        self.sample_with(suffix, labels.iter().copied(), value);
    }

    /// The one sample writer: labels come from an iterator, so a caller can chain an extra
    /// label (a histogram's `le`) onto stored ones without building a slice.
    pub(crate) fn sample_with<'l>(
        &mut self,
        suffix: &str,
        labels: impl IntoIterator<Item = (&'l str, &'l str)>,
        value: f64,
    ) {
        self.start();
        let buf = &mut *self.enc.buf;
        buf.extend_from_slice(self.name.as_bytes());
        buf.extend_from_slice(suffix.as_bytes());
        write_labels(buf, labels.into_iter());
        buf.push(b' ');
        write_go_float(buf, value);
        buf.push(b'\n');
    }

    /// Writes a sample with a timestamp in milliseconds (for values collected ahead of the
    /// scrape). OpenMetrics takes seconds, so it is converted there.
    pub fn sample_at(&mut self, labels: &[(&str, &str)], value: f64, timestamp_ms: i64) {
        self.start();
        let format = self.enc.format;
        let buf = &mut *self.enc.buf;
        buf.extend_from_slice(self.name.as_bytes());
        write_labels(buf, labels.iter().map(|(k, v)| (*k, *v)));
        buf.push(b' ');
        write_go_float(buf, value);
        buf.push(b' ');
        match format {
            Format::Text => {
                let _ = write!(buf, "{timestamp_ms}");
            }
            Format::OpenMetrics => {
                let _ = write!(
                    buf,
                    "{}.{:03}",
                    timestamp_ms.div_euclid(1000),
                    timestamp_ms.rem_euclid(1000)
                );
            }
        }
        buf.push(b'\n');
    }

    fn start(&mut self) {
        if !self.started {
            self.started = true;
            let (name, help, kind) = (self.name, self.help, self.kind);
            self.enc.header(name, help, kind);
        }
    }
}

fn write_labels<'l>(buf: &mut Vec<u8>, labels: impl Iterator<Item = (&'l str, &'l str)>) {
    let mut first = true;
    for (k, v) in labels {
        buf.push(if first { b'{' } else { b',' });
        first = false;
        buf.extend_from_slice(k.as_bytes());
        buf.extend_from_slice(b"=\"");
        escape_into(buf, v, true);
        buf.push(b'"');
    }
    if !first {
        buf.push(b'}');
    }
}

/// Escapes `\`, newline and (in label values) `"`, as the text format requires.
fn escape_into(buf: &mut Vec<u8>, s: &str, quote: bool) {
    let bytes = s.as_bytes();
    let needs = bytes
        .iter()
        .any(|&b| b == b'\\' || b == b'\n' || (quote && b == b'"'));
    if !needs {
        buf.extend_from_slice(bytes);
        return;
    }
    for &b in bytes {
        match b {
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'"' if quote => buf.extend_from_slice(b"\\\""),
            _ => buf.push(b),
        }
    }
}

/// Checks that a string is a valid metric or label name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn is_valid_name(s: &str) -> bool {
    let mut chars = s.bytes();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// Replaces every character that is not valid in a metric name with `_`, as node_exporter
/// does for names it derives from file contents.
pub fn sanitize_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, c) in s.chars().enumerate() {
        let ok = c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit());
        out.push(if ok { c } else { '_' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Encoder)) -> String {
        let mut buf = Vec::new();
        let mut enc = Encoder::new(&mut buf, Format::Text);
        f(&mut enc);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn histogram_samples_carry_suffixes() {
        assert_eq!(
            text(|e| {
                let mut f = e.family("h", "x", Kind::Histogram);
                f.sample_suffixed("_bucket", &[("le", "+Inf")], 2.0);
                f.sample_suffixed("_sum", &[], 0.5);
                f.sample_suffixed("_count", &[], 2.0);
            }),
            "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 0.5\nh_count 2\n"
        );
        let mut buf = Vec::new();
        let mut enc = Encoder::new(&mut buf, Format::OpenMetrics);
        enc.family("s", "y", Kind::Summary)
            .sample(&[("quantile", "0.5")], 1.0);
        assert!(String::from_utf8(buf)
            .unwrap()
            .contains("# TYPE s summary\n"));
    }

    #[test]
    fn empty_family_writes_nothing() {
        assert_eq!(
            text(|e| {
                e.family("x", "h", Kind::Gauge);
            }),
            ""
        );
    }

    #[test]
    fn labels_and_escaping() {
        let out = text(|e| {
            let mut f = e.family("x_total", "a \\ b\nc", Kind::Counter);
            f.sample(&[("a", "q\"\\\n"), ("b", "")], 1.0);
            f.sample(&[("a", "z")], 2.5e10);
        });
        assert_eq!(
            out,
            "# HELP x_total a \\\\ b\\nc\n# TYPE x_total counter\nx_total{a=\"q\\\"\\\\\\n\",b=\"\"} 1\nx_total{a=\"z\"} 2.5e+10\n"
        );
    }

    #[test]
    fn openmetrics_counter_header_drops_total() {
        let mut buf = Vec::new();
        let mut enc = Encoder::new(&mut buf, Format::OpenMetrics);
        enc.single("a_total", "h", Kind::Counter, &[], 1.0);
        enc.single("b", "h", Kind::Counter, &[], 1.0);
        enc.single("c", "h", Kind::Untyped, &[], 1.0);
        let s = String::from_utf8(buf).unwrap();
        assert!(s.contains("# TYPE a counter\na_total 1\n"), "{s}");
        assert!(s.contains("# TYPE b unknown\n"), "{s}");
        assert!(s.contains("# TYPE c unknown\n"), "{s}");
    }

    #[test]
    fn shared_chunks_are_listed_not_copied() {
        let early: Shared = std::sync::Arc::new(b"a 1\n".to_vec());
        let mut buf = Vec::new();
        let mut shared = SharedChunks::new();
        let mut e = Encoder::with_shared(&mut buf, Format::Text, &mut shared);
        e.single("b", "h", Kind::Gauge, &[], 2.0);
        let m = e.mark();
        e.extend_shared(&early);
        e.rollback(m);
        e.extend_shared(&early);
        e.single("c", "h", Kind::Gauge, &[], 3.0);
        let first = "# HELP b h\n# TYPE b gauge\nb 2\n".len();
        assert_eq!(shared.len(), 1);
        assert_eq!(shared[0].0, first);
        assert!(std::sync::Arc::ptr_eq(&shared[0].1, &early));
        // Without a shared list the bytes are copied in place.
        let mut plain = Vec::new();
        Encoder::new(&mut plain, Format::Text).extend_shared(&early);
        assert_eq!(plain, b"a 1\n");
    }

    #[test]
    fn rollback_drops_partial_output() {
        let out = text(|e| {
            e.single("a", "h", Kind::Gauge, &[], 1.0);
            let m = e.mark();
            e.single("b", "h", Kind::Gauge, &[], 2.0);
            e.rollback(m);
        });
        assert_eq!(out, "# HELP a h\n# TYPE a gauge\na 1\n");
    }

    #[test]
    fn extend_encoded_appends_verbatim() {
        let mut early = Vec::new();
        Encoder::new(&mut early, Format::Text).single("a", "h", Kind::Gauge, &[], 1.0);
        let out = text(|e| {
            e.extend_encoded(&early);
            e.single("b", "h", Kind::Gauge, &[], 2.0);
        });
        assert_eq!(
            out,
            "# HELP a h\n# TYPE a gauge\na 1\n# HELP b h\n# TYPE b gauge\nb 2\n"
        );
    }

    #[test]
    fn timestamps() {
        let out = text(|e| {
            e.family("x", "h", Kind::Gauge)
                .sample_at(&[], 1.0, 1700000000123)
        });
        assert!(out.ends_with("x 1 1700000000123\n"), "{out}");
    }

    #[test]
    fn names() {
        assert!(is_valid_name("node_cpu_seconds_total"));
        assert!(!is_valid_name("1abc"));
        assert!(!is_valid_name(""));
        assert_eq!(sanitize_name("a-b.c"), "a_b_c");
        assert_eq!(sanitize_name("9x"), "_x");
    }
}
