//! Bytes read from a file, cut into lines with the file offsets they span. A line that never
//! ends is cut at a cap, so memory stays bounded whatever the file holds (a sparse file reads
//! as one endless run of NUL bytes).

/// One line: its bytes without the `\n`, and where it lies in the file.
#[derive(Debug, PartialEq, Eq)]
pub struct RawLine<'a> {
    pub bytes: &'a [u8],
    /// Offset of the line's first byte.
    pub start: u64,
    /// Offset just past its `\n` (the next line's start).
    pub end: u64,
    /// The line was longer than the cap: `bytes` is its beginning, the rest was skipped.
    pub cut: bool,
}

/// Cuts a byte stream into lines. Feed it what was read at [`Splitter::offset`]; it keeps the
/// unfinished last line until its `\n` arrives.
#[derive(Debug)]
pub struct Splitter {
    cap: usize,
    /// Bytes of the unfinished line (at most `cap`).
    partial: Vec<u8>,
    /// Offset of the unfinished line's first byte.
    partial_start: u64,
    /// The unfinished line passed the cap; skipping to its end.
    skipping: bool,
    /// Offset of the next byte to be fed.
    offset: u64,
}

impl Splitter {
    /// Starts at `offset`; lines are cut at `cap` bytes.
    pub fn new(offset: u64, cap: usize) -> Self {
        Splitter {
            cap: cap.max(1),
            partial: Vec::new(),
            partial_start: offset,
            skipping: false,
            offset,
        }
    }

    /// Where the next bytes fed must come from.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Offset of the first byte not yet part of a whole line.
    pub fn line_start(&self) -> u64 {
        self.partial_start
    }

    /// Bytes held for the unfinished line.
    pub fn pending(&self) -> usize {
        self.partial.len()
    }

    /// Feeds `buf` (read at [`Splitter::offset`]) and calls `each` for every line it ends.
    pub fn feed(&mut self, buf: &[u8], mut each: impl FnMut(RawLine<'_>)) {
        let base = self.offset;
        self.offset += buf.len() as u64;
        let mut rest = buf;
        let mut pos = base;
        while let Some(nl) = memchr(rest) {
            let end = pos + nl as u64 + 1;
            let piece = &rest[..nl];
            if self.partial.is_empty() && !self.skipping {
                let cut = piece.len() > self.cap;
                each(RawLine {
                    bytes: &piece[..piece.len().min(self.cap)],
                    start: pos,
                    end,
                    cut,
                });
            } else {
                let cut = self.skipping || self.partial.len() + piece.len() > self.cap;
                let room = self.cap - self.partial.len();
                self.partial
                    .extend_from_slice(&piece[..piece.len().min(room)]);
                each(RawLine {
                    bytes: &self.partial,
                    start: self.partial_start,
                    end,
                    cut,
                });
                self.partial.clear();
                self.skipping = false;
            }
            self.partial_start = end;
            rest = &rest[nl + 1..];
            pos = end;
        }
        if !rest.is_empty() {
            let room = self.cap.saturating_sub(self.partial.len());
            if rest.len() > room {
                self.skipping = true;
            }
            self.partial
                .extend_from_slice(&rest[..rest.len().min(room)]);
        }
    }

    /// Ends the unfinished line as it is (the file will not grow: it was deleted, or rotated
    /// and drained). Returns nothing if there is none.
    pub fn finish(&mut self, mut each: impl FnMut(RawLine<'_>)) {
        if self.partial.is_empty() && !self.skipping {
            return;
        }
        each(RawLine {
            bytes: &self.partial,
            start: self.partial_start,
            end: self.offset,
            cut: self.skipping,
        });
        self.partial.clear();
        self.skipping = false;
        self.partial_start = self.offset;
    }

    /// Forgets everything and starts again at `offset` (the file was truncated).
    pub fn reset(&mut self, offset: u64) {
        *self = Splitter::new(offset, self.cap);
    }
}

fn memchr(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lines(s: &mut Splitter, buf: &[u8]) -> Vec<(Vec<u8>, u64, u64, bool)> {
        let mut out = Vec::new();
        s.feed(buf, |l| out.push((l.bytes.to_vec(), l.start, l.end, l.cut)));
        out
    }

    #[test]
    fn whole_and_split_lines_with_offsets() {
        let mut s = Splitter::new(100, 1024);
        assert_eq!(
            lines(&mut s, b"ab\ncd"),
            [(b"ab".to_vec(), 100, 103, false)]
        );
        assert_eq!((s.line_start(), s.offset(), s.pending()), (103, 105, 2));
        assert_eq!(
            lines(&mut s, b"e\n\n"),
            [
                (b"cde".to_vec(), 103, 107, false),
                (b"".to_vec(), 107, 108, false)
            ]
        );
        assert_eq!(s.line_start(), 108);
    }

    #[test]
    fn long_lines_are_cut_and_the_rest_skipped() {
        let mut s = Splitter::new(0, 4);
        assert_eq!(
            lines(&mut s, b"abcdefgh\nxy\n"),
            [
                (b"abcd".to_vec(), 0, 9, true),
                (b"xy".to_vec(), 9, 12, false)
            ]
        );
        assert!(lines(&mut s, b"123").is_empty());
        assert!(lines(&mut s, b"456789").is_empty());
        assert_eq!(s.pending(), 4, "never more than the cap");
        assert_eq!(
            lines(&mut s, b"0\nz\n"),
            [
                (b"1234".to_vec(), 12, 23, true),
                (b"z".to_vec(), 23, 25, false)
            ]
        );
    }

    #[test]
    fn finish_ends_the_last_line_and_reset_starts_over() {
        let mut s = Splitter::new(0, 10);
        lines(&mut s, b"a\nbc");
        let mut got = Vec::new();
        s.finish(|l| got.push((l.bytes.to_vec(), l.start, l.end)));
        assert_eq!(got, [(b"bc".to_vec(), 2, 4)]);
        s.finish(|_| panic!("nothing left"));
        s.reset(0);
        assert_eq!((s.offset(), s.pending()), (0, 0));
    }

    proptest! {
        #![proptest_config(eos_testkit::fuzz::config())]
        /// However the bytes are chunked, the lines and their offsets are the same, they tile
        /// the input, and no line is longer than the cap.
        #[test]
        fn fuzz_chunking_does_not_matter(data in proptest::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..400), cuts in proptest::collection::vec(0usize..400, 0..8), cap in 1usize..50) {
            let mut whole = Splitter::new(7, cap);
            let expected = lines(&mut whole, &data);
            let mut chunked = Splitter::new(7, cap);
            let mut got = Vec::new();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut at = 0;
            for c in cuts.into_iter().chain([data.len()]) {
                got.extend(lines(&mut chunked, &data[at..c]));
                at = c;
            }
            prop_assert_eq!(&got, &expected);
            let mut next = 7;
            for (bytes, start, end, _) in &got {
                prop_assert_eq!(*start, next);
                prop_assert!(bytes.len() <= cap);
                next = *end;
            }
            prop_assert_eq!(chunked.line_start(), next);
        }
    }
}
