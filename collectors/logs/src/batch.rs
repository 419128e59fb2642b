//! Entries gathered into one push: grouped by stream when encoded, each remembering which
//! file it came from and the offset that file may commit once Loki has it. A batch that Loki
//! finds too large (413) splits in two, in order, and each half commits what it holds.

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
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut streams: Vec<StreamAdapter> = Vec::new();
        for i in self.items.iter().filter(|i| !i.is_marker()) {
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
