//! Property tests over outside input: every parser that reads a file, a config or an answer
//! from another program gets hostile versions of it, and must return a value or an error,
//! never panic, and never let a bad input make `/metrics` invalid.
//!
//! A test takes its case count from [`cases`] (`EOS_FUZZ_CASES`, 64 by default so that
//! `cargo test` stays quick); `cargo xtask fuzz <target> --time 10m` runs the same tests in
//! release builds with many cases, again and again with new seeds, until the time is up.
//!
//! [`mutation`] makes a change to a file's bytes, of the kinds real files get wrong:
//! truncated, cut mid-line, empty, a field that is not a number, numbers at the edges of their
//! types, a line repeated many times, stray bytes and invalid UTF-8.

use proptest::prelude::*;

/// How many cases a property test runs: `EOS_FUZZ_CASES`, else 64.
pub fn cases() -> u32 {
    std::env::var("EOS_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(64)
}

/// A proptest config with [`cases`] cases and no file of regressions (the tests run from a
/// read-only tree in CI).
pub fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// One change to a file's bytes.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// Keep the first `n` bytes (of the original length, scaled).
    Truncate(u16),
    /// Nothing at all.
    Empty,
    /// Replace the byte at a position with another.
    Byte(u16, u8),
    /// Replace each number token with this one.
    Numbers(&'static str),
    /// Insert a line at a position.
    Line(u16, String),
    /// Repeat the whole content this many times.
    Repeat(u8),
    /// Invalid UTF-8 in the middle.
    BadUtf8(u16),
}

/// Numbers at the edges of what parsers expect.
const EDGE_NUMBERS: &[&str] = &[
    "-1",
    "0",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775809",
    "1e400",
    "NaN",
    "inf",
    "0x1f",
    "",
    "99999999999999999999999999999",
    "1.5",
];

/// Any [`Mutation`].
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<u16>().prop_map(Mutation::Truncate),
        Just(Mutation::Empty),
        (any::<u16>(), any::<u8>()).prop_map(|(p, b)| Mutation::Byte(p, b)),
        proptest::sample::select(EDGE_NUMBERS).prop_map(Mutation::Numbers),
        (any::<u16>(), line()).prop_map(|(p, l)| Mutation::Line(p, l)),
        (2u8..50).prop_map(Mutation::Repeat),
        any::<u16>().prop_map(Mutation::BadUtf8),
    ]
}

/// A line of the sort that turns up in files: words, numbers, separators, odd bytes.
pub fn line() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("cpu".to_string()),
            Just(" ".to_string()),
            Just(":".to_string()),
            Just("=".to_string()),
            Just("\t".to_string()),
            Just("{".to_string()),
            Just("\"".to_string()),
            proptest::sample::select(EDGE_NUMBERS).prop_map(str::to_string),
            any::<char>().prop_map(|c| c.to_string()),
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

/// `original` with `m` applied.
pub fn apply(original: &[u8], m: &Mutation) -> Vec<u8> {
    let at = |p: u16| {
        if original.is_empty() {
            0
        } else {
            usize::from(p) % (original.len() + 1)
        }
    };
    match m {
        Mutation::Truncate(n) => original[..at(*n)].to_vec(),
        Mutation::Empty => Vec::new(),
        Mutation::Byte(p, b) => {
            let mut v = original.to_vec();
            if !v.is_empty() {
                let i = at(*p).min(v.len() - 1);
                v[i] = *b;
            }
            v
        }
        Mutation::Numbers(n) => {
            let text = String::from_utf8_lossy(original);
            let mut out = String::with_capacity(text.len());
            let mut in_number = false;
            for c in text.chars() {
                if c.is_ascii_digit() {
                    if !in_number {
                        out.push_str(n);
                        in_number = true;
                    }
                } else {
                    in_number = false;
                    out.push(c);
                }
            }
            out.into_bytes()
        }
        Mutation::Line(p, l) => {
            let i = at(*p);
            // At the start of the line the position falls in.
            let start = original[..i]
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |j| j + 1);
            let mut v = original[..start].to_vec();
            v.extend_from_slice(l.as_bytes());
            v.push(b'\n');
            v.extend_from_slice(&original[start..]);
            v
        }
        Mutation::Repeat(n) => original.repeat(usize::from(*n)),
        Mutation::BadUtf8(p) => {
            let i = at(*p);
            let mut v = original[..i].to_vec();
            v.extend_from_slice(&[0xff, 0xfe, 0xc3]);
            v.extend_from_slice(&original[i..]);
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations() {
        let f = b"cpu 10 20\nmem 3\n";
        assert_eq!(apply(f, &Mutation::Truncate(4)), b"cpu ");
        assert_eq!(apply(f, &Mutation::Empty), b"");
        assert_eq!(apply(f, &Mutation::Numbers("-1")), b"cpu -1 -1\nmem -1\n");
        assert_eq!(
            apply(f, &Mutation::Line(12, "x".into())),
            b"cpu 10 20\nx\nmem 3\n"
        );
        assert_eq!(apply(f, &Mutation::Repeat(2)).len(), f.len() * 2);
        assert!(std::str::from_utf8(&apply(f, &Mutation::BadUtf8(3))).is_err());
        assert_eq!(apply(b"", &Mutation::Byte(9, b'x')), b"");
    }
}
