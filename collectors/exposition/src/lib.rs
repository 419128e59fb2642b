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
pub mod guard;
mod metrics;
mod parse;

pub use float::write_go_float;
pub use guard::{DropReason, Dropped, FamilyRecord};
pub use metrics::{
    exponential_buckets, linear_buckets, Counter, CounterVec, Gauge, GaugeVec, Histogram,
    HistogramVec, Metric, MetricVec, DEFAULT_BUCKETS,
};
pub use parse::{lines, parse_text, Line, Lines, Parsed, ParsedSample, Sample};

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
    /// Picks the format from an HTTP `Accept` header: OpenMetrics when the client prefers it
    /// (a higher `q`, or the same `q` and listed first) to the text format, text otherwise,
    /// also when it accepts neither. A `q=0` range refuses that type, and the most specific
    /// range decides (`text/plain` before `text/*` before `*/*`). OpenMetrics counts in
    /// versions 1.0.0 and 0.0.1 (or none given); `text/plain` in any version, since the
    /// 0.0.4 text served is what every text parser reads.
    pub fn from_accept(accept: Option<&str>) -> Format {
        /// (how specific the matching range is, its q, its position), best match so far.
        type Pick = Option<(u8, f32, usize)>;
        let (mut text, mut om): (Pick, Pick) = (None, None);
        for (pos, range) in accept.unwrap_or("").split(',').enumerate() {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let (mut q, mut version) = (1.0f32, None);
            for p in parts {
                let Some((k, v)) = p.split_once('=') else {
                    continue;
                };
                let v = v.trim().trim_matches('"');
                match k.trim().to_ascii_lowercase().as_str() {
                    // Unparseable means not acceptable, as in Go's goautoneg.
                    "q" => {
                        q = v
                            .parse()
                            .ok()
                            .filter(|q: &f32| q.is_finite())
                            .unwrap_or(0.0)
                    }
                    "version" => version = Some(v.to_string()),
                    _ => {}
                }
            }
            let om_version = matches!(version.as_deref(), None | Some("1.0.0" | "0.0.1"));
            let (text_level, om_level) = match media.as_str() {
                "text/plain" => (3, 0),
                "application/openmetrics-text" if om_version => (0, 3),
                "text/*" => (2, 0),
                "application/*" => (0, 2),
                "*/*" => (1, 1),
                _ => (0, 0),
            };
            for (level, pick) in [(text_level, &mut text), (om_level, &mut om)] {
                if level > 0 && pick.is_none_or(|(l, _, _)| level > l) {
                    *pick = Some((level, q, pos));
                }
            }
        }
        match (text, om) {
            (_, None) => Format::Text,
            (_, Some((_, q, _))) if q <= 0.0 => Format::Text,
            (None, Some(_)) => Format::OpenMetrics,
            (Some((_, tq, tpos)), Some((_, oq, opos))) => {
                if oq > tq || (oq == tq && opos < tpos) {
                    Format::OpenMetrics
                } else {
                    Format::Text
                }
            }
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
///
/// Whatever a collector asks for, the output stays valid (see [`guard`]): a family or label
/// name that is not valid, or a label repeated in one series, is dropped and counted
/// ([`Encoder::dropped`]). The encoder also records where each family starts
/// ([`Encoder::records`]): whoever sends the output cuts a family written a second time with
/// [`guard::duplicates`] (the agent does, over all modules at once).
pub struct Encoder<'a> {
    buf: &'a mut Vec<u8>,
    format: Format,
    shared: Option<&'a mut SharedChunks>,
    /// Bytes of shared chunks listed so far: a family's place in the output is
    /// `buf.len() + shared_len`.
    shared_len: usize,
    records: Vec<FamilyRecord>,
    /// The family written last; calling [`Encoder::family`] again for it continues it.
    current: Option<u64>,
    dropped: Dropped,
}

/// A position in the output, for [`Encoder::rollback`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mark {
    len: usize,
    shared: usize,
    shared_len: usize,
    records: usize,
    current: Option<u64>,
}

impl<'a> Encoder<'a> {
    /// An encoder that appends to `buf`.
    pub fn new(buf: &'a mut Vec<u8>, format: Format) -> Self {
        Encoder {
            buf,
            format,
            shared: None,
            shared_len: 0,
            records: Vec::new(),
            current: None,
            dropped: Dropped::default(),
        }
    }

    /// An encoder that also accepts [`Shared`] chunks without copying them: they are listed
    /// in `shared` with their offset in `buf`, and the caller sends the pieces in order.
    pub fn with_shared(buf: &'a mut Vec<u8>, format: Format, shared: &'a mut SharedChunks) -> Self {
        Encoder {
            shared: Some(shared),
            ..Encoder::new(buf, format)
        }
    }

    /// Appends whole families that an encoder of the same [`Format`] wrote earlier, e.g. in a
    /// background round between scrapes, so the scrape copies bytes instead of formatting.
    /// Their families are found by their `# HELP` lines.
    pub fn extend_encoded(&mut self, encoded: &[u8]) {
        let records = scan_records(encoded);
        self.add_records(&records);
        self.buf.extend_from_slice(encoded);
    }

    /// Like [`Encoder::extend_encoded`], but without copying when the encoder was made
    /// [`Encoder::with_shared`]: a large pre-encoded output then costs no memory per scrape.
    /// `records` are the families of `encoded` as the encoder that wrote it recorded them
    /// ([`Encoder::records`]).
    pub fn extend_shared(&mut self, encoded: &Shared, records: &[FamilyRecord]) {
        self.add_records(records);
        match self.shared.as_deref_mut() {
            Some(list) => {
                list.push((self.buf.len(), Shared::clone(encoded)));
                self.shared_len += encoded.len();
            }
            None => self.buf.extend_from_slice(encoded),
        }
    }

    /// Takes on the records of pre-encoded families placed at the current position.
    fn add_records(&mut self, records: &[FamilyRecord]) {
        let at = self.position();
        for r in records {
            self.records.push(FamilyRecord {
                hash: r.hash,
                start: at + r.start,
            });
        }
        self.current = None;
    }

    /// Where the next byte goes in the whole output (shared chunks included).
    fn position(&self) -> usize {
        self.buf.len() + self.shared_len
    }

    /// Where each family written so far starts, in order.
    pub fn records(&self) -> &[FamilyRecord] {
        &self.records
    }

    /// What was dropped to keep the output valid.
    pub fn dropped(&self) -> &Dropped {
        &self.dropped
    }

    /// Counts what another encoder dropped in output this one takes on (a worker's, say).
    pub fn add_dropped(&mut self, other: &Dropped) {
        for (c, n) in self.dropped.counts.iter_mut().zip(other.counts) {
            *c += n;
        }
        if self.dropped.example.is_none() {
            self.dropped.example.clone_from(&other.example);
        }
    }

    /// Ends the encoder, keeping its records and what it dropped.
    pub fn finish(self) -> (Vec<FamilyRecord>, Dropped) {
        (self.records, self.dropped)
    }

    /// The format being written.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Starts a family. Its header is written with its first sample. Starting the family
    /// written last again continues it; one written before another is recorded again, for the
    /// merge to cut.
    pub fn family<'e>(&'e mut self, name: &'e str, help: &'e str, kind: Kind) -> Family<'e, 'a> {
        Family {
            enc: self,
            name,
            help,
            kind,
            state: State::New,
        }
    }

    /// A position in the output, for [`Encoder::rollback`].
    pub fn mark(&self) -> Mark {
        Mark {
            len: self.buf.len(),
            shared: self.shared.as_deref().map_or(0, Vec::len),
            shared_len: self.shared_len,
            records: self.records.len(),
            current: self.current,
        }
    }

    /// Drops everything written since `mark` (e.g. the partial output of a failed collector),
    /// so the exposition stays well-formed.
    pub fn rollback(&mut self, mark: Mark) {
        self.buf.truncate(mark.len);
        if let Some(list) = self.shared.as_deref_mut() {
            list.truncate(mark.shared);
        }
        self.shared_len = mark.shared_len;
        self.records.truncate(mark.records);
        self.current = mark.current;
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
    state: State,
}

/// Whether a family's header is out, and whether its samples are kept.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    New,
    Writing,
    /// Dropped (an invalid name, or written before): samples go nowhere.
    Dropping,
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
        let fresh = (self.state == State::New).then(|| self.enc.mark());
        if !self.start() {
            return;
        }
        let buf = &mut *self.enc.buf;
        let line = buf.len();
        buf.extend_from_slice(self.name.as_bytes());
        buf.extend_from_slice(suffix.as_bytes());
        if let Err((reason, label)) = write_labels(buf, labels.into_iter()) {
            buf.truncate(line);
            self.drop_line(fresh, reason, label);
            return;
        }
        buf.push(b' ');
        write_go_float(buf, value);
        buf.push(b'\n');
    }

    /// Writes a sample with a timestamp in milliseconds (for values collected ahead of the
    /// scrape). OpenMetrics takes seconds, so it is converted there.
    pub fn sample_at(&mut self, labels: &[(&str, &str)], value: f64, timestamp_ms: i64) {
        let fresh = (self.state == State::New).then(|| self.enc.mark());
        if !self.start() {
            return;
        }
        let format = self.enc.format;
        let buf = &mut *self.enc.buf;
        let line = buf.len();
        buf.extend_from_slice(self.name.as_bytes());
        if let Err((reason, label)) = write_labels(buf, labels.iter().map(|(k, v)| (*k, *v))) {
            buf.truncate(line);
            self.drop_line(fresh, reason, label);
            return;
        }
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

    /// Counts a line left out; if it was the family's first, takes the header back too, so
    /// that a family without a valid sample leaves no trace.
    fn drop_line(&mut self, fresh: Option<Mark>, reason: DropReason, label: &str) {
        if let Some(mark) = fresh {
            self.enc.rollback(mark);
            self.state = State::New;
        }
        let name = self.name;
        self.enc
            .dropped
            .add(reason, || format!("label {label:?} in {name}"));
    }

    /// Writes the header before the first sample; false when the family is dropped.
    fn start(&mut self) -> bool {
        match self.state {
            State::Writing => return true,
            State::Dropping => return false,
            State::New => {}
        }
        let name = self.name;
        let hash = guard::name_hash(name);
        let enc = &mut *self.enc;
        self.state = if !is_valid_name(name) {
            enc.dropped
                .add(DropReason::InvalidName, || format!("family {name:?}"));
            State::Dropping
        } else if enc.current == Some(hash) {
            State::Writing
        } else {
            let start = enc.position();
            enc.records.push(FamilyRecord { hash, start });
            enc.current = Some(hash);
            enc.header(name, self.help, self.kind);
            State::Writing
        };
        self.state == State::Writing
    }
}

/// Writes `{k="v",...}`; stops at the first label name that is invalid or repeated, with the
/// reason and the name (the caller drops the line).
fn write_labels<'l>(
    buf: &mut Vec<u8>,
    labels: impl Iterator<Item = (&'l str, &'l str)>,
) -> Result<(), (DropReason, &'l str)> {
    let mut names: [&str; 8] = [""; 8];
    let mut more: Vec<&str> = Vec::new();
    let mut n = 0;
    for (k, v) in labels {
        let earlier = names[..n.min(8)].iter().chain(more.iter()).copied();
        if let Some(reason) = guard::label_problem(k, earlier) {
            return Err((reason, k));
        }
        if n < 8 {
            names[n] = k;
        } else {
            more.push(k);
        }
        buf.push(if n == 0 { b'{' } else { b',' });
        n += 1;
        buf.extend_from_slice(k.as_bytes());
        buf.extend_from_slice(b"=\"");
        escape_into(buf, v, true);
        buf.push(b'"');
    }
    if n > 0 {
        buf.push(b'}');
    }
    Ok(())
}

/// The families in text an encoder wrote, by their `# HELP` lines.
fn scan_records(text: &[u8]) -> Vec<FamilyRecord> {
    let mut out = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive(|&b| b == b'\n') {
        if let Some(rest) = line.strip_prefix(b"# HELP ") {
            let end = rest.iter().position(|&b| b == b' ' || b == b'\n');
            let name = &rest[..end.unwrap_or(rest.len())];
            if let Ok(name) = std::str::from_utf8(name) {
                out.push(FamilyRecord {
                    hash: guard::name_hash(name),
                    start: at,
                });
            }
        }
        at += line.len();
    }
    out
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
        e.extend_shared(&early, &[]);
        e.rollback(m);
        e.extend_shared(&early, &[]);
        e.single("c", "h", Kind::Gauge, &[], 3.0);
        let first = "# HELP b h\n# TYPE b gauge\nb 2\n".len();
        assert_eq!(shared.len(), 1);
        assert_eq!(shared[0].0, first);
        assert!(std::sync::Arc::ptr_eq(&shared[0].1, &early));
        // Without a shared list the bytes are copied in place.
        let mut plain = Vec::new();
        Encoder::new(&mut plain, Format::Text).extend_shared(&early, &[]);
        assert_eq!(plain, b"a 1\n");
    }

    #[test]
    fn invalid_and_repeated_names_are_dropped_and_counted() {
        let mut buf = Vec::new();
        let mut e = Encoder::new(&mut buf, Format::Text);
        e.single("a", "h", Kind::Gauge, &[("x", "1")], 1.0);
        e.single("bad-name", "h", Kind::Gauge, &[], 1.0);
        e.single(
            "b",
            "h",
            Kind::Gauge,
            &[("x", "1"), ("y", "2"), ("x", "3")],
            2.0,
        );
        e.single(
            "b",
            "h",
            Kind::Gauge,
            &[("app.kubernetes.io/name", "v")],
            2.0,
        );
        // The family written last continues without a second header...
        e.single("b", "h", Kind::Gauge, &[("y", "ok")], 3.0);
        // ...but one written before another is recorded again, for the merge to cut.
        e.single("a", "h", Kind::Gauge, &[("x", "2")], 9.0);
        let labels: Vec<(String, String)> =
            (0..12).map(|i| (format!("l{i}"), i.to_string())).collect();
        let mut many: Vec<(&str, &str)> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        e.single("c", "h", Kind::Gauge, &many, 1.0);
        many.push(("l10", "again"));
        e.single("c", "h", Kind::Gauge, &many, 2.0);
        let dropped = e.dropped().clone();
        let records = e.records().to_vec();
        let out = String::from_utf8(buf).unwrap();
        assert_eq!(
            out,
            "# HELP a h\n# TYPE a gauge\na{x=\"1\"} 1\n\
             # HELP b h\n# TYPE b gauge\nb{y=\"ok\"} 3\n\
             # HELP a h\n# TYPE a gauge\na{x=\"2\"} 9\n\
             # HELP c h\n# TYPE c gauge\nc{l0=\"0\",l1=\"1\",l2=\"2\",l3=\"3\",l4=\"4\",l5=\"5\",l6=\"6\",l7=\"7\",l8=\"8\",l9=\"9\",l10=\"10\",l11=\"11\"} 1\n"
        );
        // invalid: the family name and one label name; duplicate labels: x, l10.
        assert_eq!(dropped.counts, [2, 2, 0]);
        assert_eq!(
            dropped.example.as_deref(),
            Some("invalid_name: family \"bad-name\"")
        );
        let starts: Vec<usize> = records.iter().map(|r| r.start).collect();
        let second_a = out.rfind("# HELP a").unwrap();
        assert_eq!(
            starts,
            [
                0,
                out.find("# HELP b").unwrap(),
                second_a,
                out.find("# HELP c").unwrap()
            ]
        );
        // What the merge does with it: the second `a` is cut, and the rest is valid.
        assert_eq!(guard::duplicates(&[&records], &|_, _, _| None), [(0, 2)]);
        let cut = format!("{}{}", &out[..second_a], &out[starts[3]..]);
        assert!(parse_text(&cut).is_ok(), "{cut}");
    }

    #[test]
    fn records_cover_shared_and_encoded_chunks() {
        let mut pre = Vec::new();
        let mut p = Encoder::new(&mut pre, Format::Text);
        p.single("s1", "h", Kind::Gauge, &[], 1.0);
        p.single("s2", "h", Kind::Gauge, &[], 2.0);
        let pre_records = p.records().to_vec();
        let pre: Shared = std::sync::Arc::new(pre);
        let mut buf = Vec::new();
        let mut shared = SharedChunks::new();
        let mut e = Encoder::with_shared(&mut buf, Format::Text, &mut shared);
        e.single("a", "h", Kind::Gauge, &[], 1.0);
        let a_len = "# HELP a h\n# TYPE a gauge\na 1\n".len();
        e.extend_shared(&pre, &pre_records);
        e.extend_encoded(b"# HELP z h\n# TYPE z gauge\nz 1\n");
        // Written again after the shared chunk: recorded again, for the merge to cut.
        e.single("s1", "h", Kind::Gauge, &[], 5.0);
        let records = e.records().to_vec();
        let starts: Vec<usize> = records.iter().map(|r| r.start).collect();
        let s2 = "# HELP s1 h\n# TYPE s1 gauge\ns1 1\n".len();
        let z = "# HELP z h\n# TYPE z gauge\nz 1\n".len();
        assert_eq!(
            starts,
            [
                0,
                a_len,
                a_len + s2,
                a_len + pre.len(),
                a_len + pre.len() + z
            ]
        );
        assert_eq!(guard::duplicates(&[&records], &|_, _, _| None), [(0, 4)]);
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

    #[test]
    fn format_from_accept() {
        use Format::{OpenMetrics as OM, Text};
        assert_eq!(Format::from_accept(None), Text);
        let cases = [
            ("", Text),
            // Prometheus' default scrape header, and one with protobuf first.
            ("application/openmetrics-text;version=1.0.0;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2", OM),
            ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2", Text),
            // Prometheus 3 preferring the text format.
            ("text/plain;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=1.0.0;q=0.5", Text),
            ("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5", OM),
            ("application/openmetrics-text", OM),
            ("APPLICATION/OpenMetrics-Text; Q=0.9", OM),
            // q=0 refuses.
            ("application/openmetrics-text;q=0", Text),
            ("application/openmetrics-text;q=0.0, */*", Text),
            ("application/openmetrics-text; q=0, text/plain", Text),
            ("text/plain;q=0, application/openmetrics-text;q=0.1", OM),
            ("text/plain;q=0,*/*;q=0.1", OM),
            // The higher q wins; on a tie, the one listed first.
            ("text/plain;q=0.5, application/openmetrics-text;q=0.4", Text),
            ("text/plain, application/openmetrics-text", Text),
            ("application/openmetrics-text, text/plain", OM),
            ("*/*", Text),
            ("text/*;q=0.3, application/*;q=0.4", OM),
            // Versions we do not write, and nonsense.
            ("application/openmetrics-text;version=2.0.0", Text),
            ("application/openmetrics-text;q=abc", Text),
            ("application/openmetrics-text;q=NaN", Text),
            (",,;;=,", Text),
        ];
        for (accept, want) in cases {
            assert_eq!(Format::from_accept(Some(accept)), want, "{accept}");
        }
    }
}
