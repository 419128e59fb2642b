//! One file's lines turned into log entries: the format is detected from the first line (CRI
//! or Docker json-file), partial records are joined per stream, and every entry carries the
//! file offset that is safe to commit once Loki has it.
//!
//! The commit offset is what makes "no line lost" work with partial records: while a stream
//! holds an unfinished `P` part, no offset past that part's start may be committed, even if
//! the other stream's lines after it are acknowledged. After a restart the part is read again.

use crate::cri::{self, Reassembler};
use crate::time::Timestamp;
use crate::{docker, Stream};
use std::time::Instant;

/// How a file's lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Not known until the first line.
    Unknown,
    /// containerd, CRI-O: `<time> <stream> <P|F> <content>`.
    Cri,
    /// Docker's json-file.
    Docker,
}

/// The marker at the end of a line cut at the size limit.
pub const TRUNCATED: &str = " [truncated]";

/// One log entry ready to ship.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub time: Timestamp,
    pub stream: Stream,
    pub line: String,
    /// Once Loki has this entry (and those before it), the file is done up to here.
    pub commit: u64,
    /// Cut at the size limit (the marker is in `line`).
    pub truncated: bool,
    /// Not in the file's format: shipped whole, stamped with the time it was read.
    pub unparsed: bool,
}

/// A file's decoding state.
#[derive(Debug)]
pub struct Decoder {
    format: Format,
    reassembler: Reassembler,
    max_line: usize,
    /// Per stream: where its unfinished part starts, and since when it waits.
    pending: [Option<(u64, Instant)>; 2],
    /// What may be committed once everything emitted so far is acknowledged.
    safe: u64,
}

impl Decoder {
    /// A decoder for a file read from `offset`, cutting lines at `max_line` bytes.
    pub fn new(offset: u64, max_line: usize) -> Self {
        Decoder {
            format: Format::Unknown,
            reassembler: Reassembler::new(max_line),
            max_line,
            pending: [None, None],
            safe: offset,
        }
    }

    /// The detected format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// The offset that may be committed once every entry emitted so far is acknowledged.
    pub fn safe_offset(&self) -> u64 {
        self.safe
    }

    /// Bytes held in unfinished parts.
    pub fn pending_bytes(&self) -> usize {
        self.reassembler.pending_bytes()
    }

    /// Decodes one line spanning `start..end` of the file. `cut`: the raw line was longer than
    /// the reader's cap. `now`/`wall` stamp lines that are not in the format.
    pub fn line(
        &mut self,
        raw: &[u8],
        (start, end): (u64, u64),
        cut: bool,
        (now, wall): (Instant, Timestamp),
        out: &mut Vec<Entry>,
    ) {
        if self.format == Format::Unknown {
            let first = raw.iter().find(|b| !b.is_ascii_whitespace());
            self.format = match first {
                None => return self.advance(end),
                Some(b'{') => Format::Docker,
                Some(_) => Format::Cri,
            };
        }
        let record = match self.format {
            Format::Docker => docker::parse(raw).map(|r| Owned::Docker(Box::new(r))),
            _ => cri::parse(raw).map(Owned::Cri),
        };
        let record = match record {
            Ok(r) => r,
            Err(_) => {
                let (line, truncated) = clean(raw, self.max_line, cut);
                out.push(Entry {
                    time: wall,
                    stream: Stream::Stdout,
                    line,
                    commit: 0,
                    truncated,
                    unparsed: true,
                });
                return self.commit_last(end, out);
            }
        };
        let rec = record.as_record();
        let stream = rec.stream as usize;
        if self.pending[stream].is_none() {
            self.pending[stream] = Some((start, now));
        }
        if let Some(line) = self.reassembler.push(&rec) {
            self.pending[stream] = None;
            out.push(to_entry(line, self.max_line, cut));
            self.commit_last(end, out);
        } else if rec.partial {
            // Waits for its F: nothing to commit past this part's start yet.
        } else {
            self.pending[stream] = None;
            self.advance(end);
        }
    }

    /// Ships parts that have waited longer than `wait` as lines of their own (their `F`
    /// never came: the container died mid-line).
    pub fn flush_stale(
        &mut self,
        now: Instant,
        wait: std::time::Duration,
        end: u64,
        out: &mut Vec<Entry>,
    ) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let due = matches!(self.pending[stream as usize], Some((_, since)) if now.duration_since(since) >= wait);
            if due {
                self.flush_stream(stream, end, out);
            }
        }
    }

    /// Ships every unfinished part now (the file is done: deleted or rotated and drained).
    pub fn flush_all(&mut self, end: u64, out: &mut Vec<Entry>) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            self.flush_stream(stream, end, out);
        }
    }

    fn flush_stream(&mut self, stream: Stream, end: u64, out: &mut Vec<Entry>) {
        if let Some(line) = self.reassembler.flush(stream) {
            self.pending[stream as usize] = None;
            out.push(to_entry(line, self.max_line, false));
            self.commit_last(end, out);
        } else {
            self.pending[stream as usize] = None;
            self.advance(end);
        }
    }

    /// Forgets everything (the file was truncated) and starts at `offset`.
    pub fn reset(&mut self, offset: u64) {
        *self = Decoder::new(offset, self.max_line);
    }

    /// Marks the last entry pushed with the commit offset after a line ending at `end`.
    fn commit_last(&mut self, end: u64, out: &mut [Entry]) {
        self.advance(end);
        if let Some(e) = out.last_mut() {
            e.commit = self.safe;
        }
    }

    /// Everything up to `end` is decoded; commit up to there, or to the earliest unfinished
    /// part.
    fn advance(&mut self, end: u64) {
        let held = self.pending.iter().flatten().map(|(s, _)| *s).min();
        let safe = held.map_or(end, |h| h.min(end));
        self.safe = self.safe.max(safe);
    }
}

enum Owned<'a> {
    Cri(cri::Record<'a>),
    Docker(Box<docker::Record>),
}

impl Owned<'_> {
    fn as_record(&self) -> cri::Record<'_> {
        match self {
            Owned::Cri(r) => *r,
            Owned::Docker(r) => cri::Record {
                time: r.time,
                stream: r.stream,
                partial: r.partial,
                content: &r.content,
            },
        }
    }
}

fn to_entry(line: cri::Line, max: usize, cut: bool) -> Entry {
    let (text, truncated) = clean(&line.content, max, line.truncated || cut);
    Entry {
        time: line.time,
        stream: line.stream,
        line: text,
        commit: 0,
        truncated,
        unparsed: false,
    }
}

/// The line as UTF-8 (invalid sequences replaced), without a trailing `\r`, cut to `max`
/// bytes with the marker when it was too long.
fn clean(raw: &[u8], max: usize, cut: bool) -> (String, bool) {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    let mut s = String::from_utf8_lossy(raw).into_owned();
    let truncated = cut || s.len() > max;
    if truncated {
        let mut keep = max.saturating_sub(TRUNCATED.len()).min(s.len());
        while !s.is_char_boundary(keep) {
            keep -= 1;
        }
        s.truncate(keep);
        s.push_str(TRUNCATED);
    }
    (s, truncated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T: &str = "2026-11-30T04:56:39.123456789Z";

    struct Feed {
        d: Decoder,
        at: u64,
        out: Vec<Entry>,
        now: Instant,
    }

    impl Feed {
        fn new(max: usize) -> Self {
            Feed {
                d: Decoder::new(0, max),
                at: 0,
                out: Vec::new(),
                now: Instant::now(),
            }
        }
        fn line(&mut self, l: &str) -> &mut Self {
            let end = self.at + l.len() as u64 + 1;
            let wall = Timestamp {
                seconds: 9,
                nanos: 0,
            };
            self.d.line(
                l.as_bytes(),
                (self.at, end),
                false,
                (self.now, wall),
                &mut self.out,
            );
            self.at = end;
            self
        }
        fn lines(&self) -> Vec<(&str, u64)> {
            self.out
                .iter()
                .map(|e| (e.line.as_str(), e.commit))
                .collect()
        }
    }

    #[test]
    fn cri_lines_commit_at_their_end() {
        let mut f = Feed::new(1000);
        f.line(&format!("{T} stdout F one"))
            .line(&format!("{T} stderr F two"));
        assert_eq!(f.d.format(), Format::Cri);
        let len = T.len() as u64 + 14;
        assert_eq!(f.lines(), [("one", len), ("two", 2 * len)]);
        assert_eq!(f.out[1].stream, Stream::Stderr);
        assert_eq!(f.out[0].time.nanos, 123_456_789);
    }

    #[test]
    fn a_pending_part_holds_the_commit_back_until_its_f() {
        let mut f = Feed::new(1000);
        f.line(&format!("{T} stdout P ab"));
        let p_end = f.at;
        f.line(&format!("{T} stderr F other"));
        assert_eq!(f.lines(), [("other", 0)], "stdout's part starts at 0");
        f.line(&format!("{T} stdout F cd"));
        assert_eq!(f.lines()[1], ("abcd", f.at));
        assert!(p_end < f.at);
        assert_eq!(f.d.safe_offset(), f.at);
    }

    #[test]
    fn a_lone_partial_is_flushed_after_the_wait() {
        let mut f = Feed::new(1000);
        f.line(&format!("{T} stdout P lonely"));
        let end = f.at;
        let (now, wait) = (f.now, std::time::Duration::from_secs(5));
        f.d.flush_stale(now, wait, end, &mut f.out);
        assert!(f.out.is_empty(), "not yet");
        f.d.flush_stale(now + wait, wait, end, &mut f.out);
        assert_eq!(f.lines(), [("lonely", end)]);
    }

    #[test]
    fn docker_lines_are_detected_and_joined() {
        let mut f = Feed::new(1000);
        f.line(r#"{"log":"par","stream":"stdout","time":"2026-11-30T04:56:39Z"}"#)
            .line(r#"{"log":"t\n","stream":"stdout","time":"2026-11-30T04:56:40Z"}"#);
        assert_eq!(f.d.format(), Format::Docker);
        assert_eq!(f.lines(), [("part", f.at)]);
        assert_eq!(f.out[0].time.seconds % 60, 39, "the first part's time");
    }

    #[test]
    fn odd_lines_are_shipped_not_lost() {
        let mut f = Feed::new(1000);
        f.line(&format!("{T} stdout F ok"))
            .line("garbage without a timestamp")
            .line(&format!("{T} stdout F crlf\r"))
            .line(&format!("{T} stdout F nul\0byte \u{fffd}"))
            .line(&format!("{T} sideways F x"))
            .line(&format!("{T} stdout F"));
        let l = f.lines();
        assert_eq!(l[1].0, "garbage without a timestamp");
        assert!(f.out[1].unparsed);
        assert_eq!(f.out[1].time.seconds, 9, "stamped when read");
        assert_eq!(l[2].0, "crlf");
        assert_eq!(l[3].0, "nul\0byte \u{fffd}");
        assert!(f.out[4].unparsed, "a bad stream is not the format");
        assert_eq!(l[5].0, "", "an empty line is a line");
        assert_eq!(f.d.safe_offset(), f.at);
    }

    #[test]
    fn long_lines_are_cut_with_the_marker_and_invalid_utf8_replaced() {
        let mut f = Feed::new(64);
        let long = "x".repeat(10 << 20);
        f.line(&format!("{T} stdout F {long}"));
        assert!(f.out[0].truncated);
        assert_eq!(f.out[0].line.len(), 64);
        assert!(f.out[0].line.ends_with(TRUNCATED));
        let (s, t) = clean(b"ab\xffcd", 64, false);
        assert_eq!((s.as_str(), t), ("ab\u{fffd}cd", false));
        let (s, _) = clean("ééééééééééééééé".as_bytes(), 16, false);
        assert!(s.ends_with(TRUNCATED) && s.len() <= 16, "{s}");
    }

    proptest! {
        #![proptest_config(eos_testkit::fuzz::config())]
        /// Any line decodes without a panic, and commits never go backwards or past the line.
        #[test]
        fn fuzz_any_line_decodes(lines in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..80), 0..20), prefix in prop_oneof![Just(format!("{T} stdout P ")), Just(format!("{T} stderr F ")), Just(String::new())]) {
            let mut d = Decoder::new(0, 32);
            let mut out = Vec::new();
            let mut at = 0u64;
            let mut last = 0u64;
            let now = Instant::now();
            for l in &lines {
                let mut raw = prefix.clone().into_bytes();
                raw.extend(l.iter().filter(|&&b| b != b'\n'));
                let end = at + raw.len() as u64 + 1;
                d.line(&raw, (at, end), false, (now, Timestamp { seconds: 1, nanos: 0 }), &mut out);
                prop_assert!(d.safe_offset() >= last && d.safe_offset() <= end);
                last = d.safe_offset();
                at = end;
            }
            d.flush_all(at, &mut out);
            prop_assert_eq!(d.safe_offset(), at);
            for e in &out {
                prop_assert!(e.line.len() <= 32);
                prop_assert!(e.commit <= at);
            }
        }
    }
}
