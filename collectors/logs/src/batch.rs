//! Entries gathered into one push: grouped by stream when encoded, each remembering which
//! file it came from and the offset that file may commit once Loki has it. A batch that Loki
//! finds too large (413) splits in two, in order, and each half commits what it holds.

#[cfg(test)]
use crate::loki::{self, EntryAdapter, PushRequest, StreamAdapter};
use crate::time::Timestamp;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Per-entry bookkeeping overhead counted towards the batch size, as Loki counts it
/// (roughly: the timestamp and framing).
const ENTRY_OVERHEAD: usize = 16;

/// A file the reader tails, by a number it gives it.
pub type FileNo = u64;

/// One entry in a batch, or a marker: no entry, only a commit (lines that gave no entry,
/// such as filtered ones, still move their file on, in order with the entries around them).
#[derive(Clone, Debug)]
pub struct Item {
    /// Empty for a marker.
    pub stream: Arc<str>,
    pub time: Timestamp,
    pub line: String,
    pub file: FileNo,
    pub commit: u64,
}

impl Item {
    /// A marker committing `file` up to `commit`.
    pub fn marker(file: FileNo, commit: u64) -> Item {
        Item {
            stream: Arc::from(""),
            time: Timestamp {
                seconds: 0,
                nanos: 0,
            },
            line: String::new(),
            file,
            commit,
        }
    }

    /// Whether this is a marker.
    pub fn is_marker(&self) -> bool {
        self.stream.is_empty()
    }
}

/// Entries for one push.
#[derive(Debug)]
pub struct Batch {
    pub items: Vec<Item>,
    bytes: usize,
    entries: usize,
    /// When the first entry arrived.
    pub opened: Option<Instant>,
}

impl Default for Batch {
    fn default() -> Self {
        Batch::new()
    }
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Batch {
            items: Vec::new(),
            bytes: 0,
            entries: 0,
            opened: None,
        }
    }

    /// Adds one entry.
    pub fn push(&mut self, item: Item, now: Instant) {
        if !item.is_marker() {
            self.bytes += item.line.len() + ENTRY_OVERHEAD;
            self.entries += 1;
        }
        self.opened.get_or_insert(now);
        self.items.push(item);
    }

    /// Bytes of lines (plus a little per entry).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Items, markers included.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Entries (markers not counted).
    pub fn entries(&self) -> usize {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The highest commit offset per file in this batch: what Loki accepting it allows.
    pub fn commits(&self) -> Vec<(FileNo, u64)> {
        let mut by_file: HashMap<FileNo, u64> = HashMap::new();
        for i in &self.items {
            let c = by_file.entry(i.file).or_insert(0);
            *c = (*c).max(i.commit);
        }
        let mut v: Vec<_> = by_file.into_iter().collect();
        v.sort_unstable();
        v
    }

    /// The push body: `PushRequest` with one stream per label set (entries in the order
    /// read), protobuf, snappy-compressed.
    pub fn encode(&self) -> Vec<u8> {
        let mut bufs = EncodeBuffers::default();
        self.encode_into(&mut bufs);
        bufs.compressed
    }

    /// As [`Batch::encode`], into buffers kept between batches (the result is in
    /// `bufs.compressed`). The protobuf is written straight from the items, with no copy of
    /// the lines, in the bytes prost would write for the same `PushRequest`.
    pub fn encode_into(&self, bufs: &mut EncodeBuffers) {
        // Streams in order of first appearance; each item's stream by its label string's
        // address (items of one container and stream share one `Arc<str>`).
        bufs.streams.clear();
        bufs.order.clear();
        let mut last: Option<(*const u8, usize)> = None;
        for (i, item) in self.items.iter().enumerate() {
            if item.is_marker() {
                continue;
            }
            let ptr = item.stream.as_ptr();
            let n = match last {
                Some((p, n)) if p == ptr => n,
                _ => {
                    let n = match bufs.streams.iter().position(|s| {
                        Arc::ptr_eq(&self.items[s.first].stream, &item.stream)
                            || *self.items[s.first].stream == *item.stream
                    }) {
                        Some(n) => n,
                        None => {
                            bufs.streams.push(StreamAcc {
                                first: i,
                                len: 0,
                                entries: 0,
                            });
                            bufs.streams.len() - 1
                        }
                    };
                    last = Some((ptr, n));
                    n
                }
            };
            let e = entry_len(item);
            bufs.streams[n].len += 1 + varint_len(e as u64) + e;
            bufs.streams[n].entries += 1;
            bufs.order.push((n as u32, i as u32));
        }
        // Group item indices by stream, keeping read order within each.
        bufs.order.sort_by_key(|(n, _)| *n);
        let raw = &mut bufs.raw;
        raw.clear();
        let mut at = 0;
        for (n, st) in bufs.streams.iter().enumerate() {
            let labels = &self.items[st.first].stream;
            let body = 1 + varint_len(labels.len() as u64) + labels.len() + st.len;
            raw.push(0x0a); // streams = 1
            put_varint(raw, body as u64);
            raw.push(0x0a); // labels = 1
            put_varint(raw, labels.len() as u64);
            raw.extend_from_slice(labels.as_bytes());
            while at < bufs.order.len() && bufs.order[at].0 as usize == n {
                let item = &self.items[bufs.order[at].1 as usize];
                raw.push(0x12); // entries = 2
                put_varint(raw, entry_len(item) as u64);
                let ts = timestamp_len(item);
                if ts > 0 {
                    raw.push(0x0a); // timestamp = 1
                    put_varint(raw, ts as u64);
                    if item.time.seconds != 0 {
                        raw.push(0x08);
                        put_varint(raw, item.time.seconds as u64);
                    }
                    if item.time.nanos != 0 {
                        raw.push(0x10);
                        put_varint(raw, u64::from(item.time.nanos));
                    }
                }
                if !item.line.is_empty() {
                    raw.push(0x12); // line = 2
                    put_varint(raw, item.line.len() as u64);
                    raw.extend_from_slice(item.line.as_bytes());
                }
                at += 1;
            }
        }
        let max = snap::raw::max_compress_len(raw.len());
        bufs.compressed.resize(max, 0);
        // Compressing cannot fail but for a buffer over 4 GiB, which a batch never is.
        let n = snap::raw::Encoder::new()
            .compress(raw, &mut bufs.compressed)
            .unwrap_or(0);
        bufs.compressed.truncate(n);
    }

    /// Splits in two halves, in order (for a 413). A batch of one entry cannot split.
    pub fn split(self) -> Result<(Batch, Batch), Batch> {
        if self.items.len() < 2 {
            return Err(self);
        }
        let mut first = self.items;
        let second = first.split_off(first.len() / 2);
        Ok((
            Batch::from_items(first, self.opened),
            Batch::from_items(second, self.opened),
        ))
    }

    fn from_items(items: Vec<Item>, opened: Option<Instant>) -> Batch {
        let real = items.iter().filter(|i| !i.is_marker());
        let bytes = real.clone().map(|i| i.line.len() + ENTRY_OVERHEAD).sum();
        let entries = real.count();
        Batch {
            items,
            bytes,
            entries,
            opened,
        }
    }
}

/// Buffers for [`Batch::encode_into`], kept by the pusher so that a batch costs no large
/// allocations (each would be an mmap and page faults at the agent's malloc settings).
#[derive(Debug, Default)]
pub struct EncodeBuffers {
    streams: Vec<StreamAcc>,
    order: Vec<(u32, u32)>,
    raw: Vec<u8>,
    /// The last encoded body.
    pub compressed: Vec<u8>,
}

#[derive(Debug)]
struct StreamAcc {
    /// The first item of the stream (its labels).
    first: usize,
    /// Bytes of its entries' fields.
    len: usize,
    entries: usize,
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// `google.protobuf.Timestamp`'s encoded length (zero fields are omitted, as proto3 does).
fn timestamp_len(item: &Item) -> usize {
    let mut n = 0;
    if item.time.seconds != 0 {
        n += 1 + varint_len(item.time.seconds as u64);
    }
    if item.time.nanos != 0 {
        n += 1 + varint_len(u64::from(item.time.nanos));
    }
    n
}

/// `EntryAdapter`'s encoded length. The timestamp is always written (prost writes a set
/// message field even when it is empty), the line only when not empty.
fn entry_len(item: &Item) -> usize {
    let ts = timestamp_len(item);
    let mut n = 1 + varint_len(ts as u64) + ts;
    if !item.line.is_empty() {
        n += 1 + varint_len(item.line.len() as u64) + item.line.len();
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(stream: &str, line: &str, file: FileNo, commit: u64) -> Item {
        Item {
            stream: stream.into(),
            time: Timestamp {
                seconds: 1,
                nanos: 5,
            },
            line: line.into(),
            file,
            commit,
        }
    }

    #[test]
    fn encodes_grouped_by_stream_in_order() {
        let mut b = Batch::new();
        let now = Instant::now();
        b.push(item("{a=\"1\"}", "x", 1, 10), now);
        b.push(item("{a=\"2\"}", "y", 2, 20), now);
        b.push(item("{a=\"1\"}", "z", 1, 30), now);
        let req = loki::decode(&b.encode()).unwrap();
        assert_eq!(req.streams.len(), 2);
        assert_eq!(req.streams[0].labels, "{a=\"1\"}");
        let lines: Vec<_> = req.streams[0]
            .entries
            .iter()
            .map(|e| e.line.as_str())
            .collect();
        assert_eq!(lines, ["x", "z"]);
        assert_eq!(req.streams[0].entries[0].timestamp.unwrap().nanos, 5);
        assert_eq!(b.commits(), [(1, 30), (2, 20)]);
        b.push(Item::marker(3, 99), now);
        assert_eq!(b.entries(), 3);
        assert_eq!(
            loki::decode(&b.encode()).unwrap().streams.len(),
            2,
            "markers are not sent"
        );
        assert_eq!(b.commits()[2], (3, 99));
        assert_eq!(b.bytes(), 3 + 3 * ENTRY_OVERHEAD);
    }

    fn prost_encode(b: &Batch) -> Vec<u8> {
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut streams: Vec<StreamAdapter> = Vec::new();
        for i in b.items.iter().filter(|i| !i.is_marker()) {
            let n = *index.entry(&i.stream).or_insert_with(|| {
                streams.push(StreamAdapter {
                    labels: i.stream.to_string(),
                    entries: Vec::new(),
                    hash: 0,
                });
                streams.len() - 1
            });
            streams[n].entries.push(EntryAdapter {
                timestamp: Some(loki::Timestamp {
                    seconds: i.time.seconds,
                    nanos: i.time.nanos as i32,
                }),
                line: i.line.clone(),
            });
        }
        loki::encode(&PushRequest { streams })
    }

    proptest::proptest! {
        #![proptest_config(eos_testkit::fuzz::config())]
        /// The hand-written encoder writes exactly what prost writes for the same request.
        #[test]
        fn fuzz_same_bytes_as_prost(items in proptest::collection::vec((0usize..4, -5i64..2_000_000_000, 0u32..1_000_000_000, ".{0,40}"), 0..30)) {
            let labels: Vec<Arc<str>> = (0..4).map(|n| Arc::from(format!("{{s=\"{n}\"}}"))).collect();
            let mut b = Batch::new();
            let now = Instant::now();
            for (k, (s, secs, nanos, line)) in items.into_iter().enumerate() {
                if k % 7 == 3 {
                    b.push(Item::marker(1, k as u64), now);
                }
                b.push(Item { stream: labels[s].clone(), time: Timestamp { seconds: secs, nanos }, line, file: 1, commit: k as u64 }, now);
            }
            let mut bufs = EncodeBuffers::default();
            b.encode_into(&mut bufs);
            proptest::prop_assert_eq!(&bufs.compressed, &prost_encode(&b));
            // Reused buffers give the same bytes again.
            b.encode_into(&mut bufs);
            proptest::prop_assert_eq!(&bufs.compressed, &prost_encode(&b));
        }
    }

    #[test]
    fn splits_in_order_and_each_half_commits_its_own() {
        let mut b = Batch::new();
        let now = Instant::now();
        for n in 0..5 {
            b.push(item("{}", &n.to_string(), 1, n * 10), now);
        }
        let (a, c) = b.split().unwrap();
        assert_eq!((a.len(), c.len()), (2, 3));
        assert_eq!(a.commits(), [(1, 10)]);
        assert_eq!(c.commits(), [(1, 40)]);
        let (one, _) = a.split().unwrap();
        assert!(one.split().is_err());
    }
}
