//! The CRI log format that containerd and CRI-O write under `/var/log/pods`:
//! `<RFC3339Nano time> <stdout|stderr> <P|F> <content>`, one record a line. A long line is
//! split into `P` (partial) records ended by an `F` (full) one; [`Reassembler`] joins them.

use crate::time::{parse_rfc3339, Timestamp};
use crate::Stream;

/// One CRI record, borrowing its content from the line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub time: Timestamp,
    pub stream: Stream,
    /// `P`: more of this line follows in the next record of the same stream.
    pub partial: bool,
    pub content: &'a [u8],
}

/// Parses one line (without its `\n`; a trailing `\r` is kept as content). An error says
/// which part is missing or wrong.
pub fn parse(line: &[u8]) -> Result<Record<'_>, String> {
    let mut parts = line.splitn(4, |&b| b == b' ');
    let time = parts.next().unwrap_or_default();
    let time = parse_rfc3339(time).ok_or_else(|| format!("bad timestamp {:?}", clip(time)))?;
    let stream = parts.next().ok_or("no stream after the timestamp")?;
    let stream = Stream::parse(stream).ok_or_else(|| format!("bad stream {:?}", clip(stream)))?;
    let tag = parts.next().ok_or("no P/F tag after the stream")?;
    // A tag may carry more flags after ':' in future runtimes; the first one is P or F.
    let partial = match tag.split(|&b| b == b':').next() {
        Some(b"P") => true,
        Some(b"F") => false,
        _ => return Err(format!("bad tag {:?}", clip(tag))),
    };
    Ok(Record {
        time,
        stream,
        partial,
        content: parts.next().unwrap_or_default(),
    })
}

fn clip(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(40)]).into_owned()
}

/// A whole line, possibly joined from `P` records: the first record's time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub time: Timestamp,
    pub stream: Stream,
    pub content: Vec<u8>,
    /// Cut at the size limit (the rest of the line was dropped and counted).
    pub truncated: bool,
}

/// Joins `P` records per stream, up to a size cap. A caller flushes a stream's pending part
/// when it has waited too long ([`Reassembler::flush`]), so a lone `P` is never stuck.
#[derive(Debug)]
pub struct Reassembler {
    max: usize,
    pending: [Option<Line>; 2],
}

impl Reassembler {
    /// Lines longer than `max` bytes are cut there and marked truncated.
    pub fn new(max: usize) -> Self {
        Reassembler {
            max,
            pending: [None, None],
        }
    }

    /// Takes one record; returns a whole line when one is complete.
    pub fn push(&mut self, r: &Record<'_>) -> Option<Line> {
        let slot = &mut self.pending[r.stream as usize];
        let line = slot.get_or_insert_with(|| Line {
            time: r.time,
            stream: r.stream,
            content: Vec::new(),
            truncated: false,
        });
        let room = self.max.saturating_sub(line.content.len());
        if r.content.len() > room {
            line.truncated = true;
        }
        line.content
            .extend_from_slice(&r.content[..r.content.len().min(room)]);
        if r.partial {
            None
        } else {
            slot.take()
        }
    }

    /// The pending part of a stream, as a line of its own.
    pub fn flush(&mut self, stream: Stream) -> Option<Line> {
        self.pending[stream as usize].take()
    }

    /// Bytes held in pending parts.
    pub fn pending_bytes(&self) -> usize {
        self.pending.iter().flatten().map(|l| l.content.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T: &str = "2026-11-30T04:56:39.123456789Z";

    fn line(s: &str) -> Vec<u8> {
        format!("{T} {s}").into_bytes()
    }

    #[test]
    fn records() {
        let l = line("stdout F hello world");
        let r = parse(&l).unwrap();
        assert_eq!(r.stream, Stream::Stdout);
        assert!(!r.partial);
        assert_eq!(r.content, b"hello world");
        assert_eq!(r.time.nanos, 123_456_789);
        let l = line("stderr P ");
        let r = parse(&l).unwrap();
        assert!(r.partial && r.content.is_empty());
        let l = line("stdout F");
        assert_eq!(parse(&l).unwrap().content, b"", "an empty line");
        let l = line("stdout F a\r");
        assert_eq!(
            parse(&l).unwrap().content,
            b"a\r",
            "CRLF content is kept as written"
        );
        let mut l = line("stdout F nul\0byte ");
        l.push(0xff);
        assert_eq!(
            parse(&l).unwrap().content,
            b"nul\0byte \xff",
            "NUL and invalid UTF-8 are content"
        );
    }

    #[test]
    fn errors() {
        assert_eq!(parse(b"").unwrap_err(), "bad timestamp \"\"");
        assert_eq!(
            parse(b"yesterday stdout F x").unwrap_err(),
            "bad timestamp \"yesterday\""
        );
        assert_eq!(
            parse(T.as_bytes()).unwrap_err(),
            "no stream after the timestamp"
        );
        assert_eq!(
            parse(format!("{T} stdin F x").as_bytes()).unwrap_err(),
            "bad stream \"stdin\""
        );
        assert_eq!(
            parse(format!("{T} stdout").as_bytes()).unwrap_err(),
            "no P/F tag after the stream"
        );
        assert_eq!(
            parse(format!("{T} stdout X y").as_bytes()).unwrap_err(),
            "bad tag \"X\""
        );
    }

    #[test]
    fn partials_join_per_stream_up_to_the_cap() {
        let lines: Vec<Vec<u8>> = [
            "stdout P abc",
            "stderr F err",
            "stdout P def",
            "stdout F ghijk",
            "stdout P lone",
        ]
        .iter()
        .map(|s| line(s))
        .collect();
        let recs: Vec<Record<'_>> = lines.iter().map(|l| parse(l).unwrap()).collect();
        let mut r = Reassembler::new(8);
        assert_eq!(r.push(&recs[0]), None);
        assert_eq!(r.push(&recs[1]).unwrap().content, b"err");
        assert_eq!(r.push(&recs[2]), None);
        assert_eq!(r.pending_bytes(), 6);
        let joined = r.push(&recs[3]).unwrap();
        assert_eq!(joined.content, b"abcdefgh");
        assert!(joined.truncated);
        assert_eq!(r.push(&recs[4]), None);
        let lone = r.flush(Stream::Stdout).unwrap();
        assert_eq!(
            (lone.content.as_slice(), lone.truncated),
            (&b"lone"[..], false)
        );
        assert_eq!(r.flush(Stream::Stdout), None);
        // A 10 MiB line is cut at the cap without holding more than the cap.
        let mut big = line("stdout F ");
        big.extend(std::iter::repeat_n(b'x', 10 << 20));
        let mut r = Reassembler::new(256 << 10);
        let out = r.push(&parse(&big).unwrap()).unwrap();
        assert_eq!(out.content.len(), 256 << 10);
        assert!(out.truncated);
    }

    proptest! {
        #![proptest_config(eos_testkit::fuzz::config())]

        #[test]
        fn fuzz_cri_line(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn fuzz_cri_shaped(stream in "stdout|stderr|std", tag in "P|F|X|P:x", content in any::<Vec<u8>>()) {
            let mut line = format!("{T} {stream} {tag} ").into_bytes();
            line.extend_from_slice(&content);
            let mut r = Reassembler::new(64);
            if let Ok(rec) = parse(&line) {
                prop_assert_eq!(rec.content, &content[..]);
                if let Some(l) = r.push(&rec) {
                    prop_assert!(l.content.len() <= 64);
                }
                prop_assert!(r.pending_bytes() <= 64);
            }
        }
    }
}
