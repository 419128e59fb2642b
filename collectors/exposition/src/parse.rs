//! A parser for the text format (0.0.4, and the sample lines of OpenMetrics). [`lines`] reads
//! it line by line without copying, for the node module's textfile collector; [`parse_text`]
//! collects a whole exposition, for tests and tools that compare two expositions (ours
//! against the tool we replace). It is as strict as the Go parser Prometheus exporters use,
//! so it catches malformed output, and its errors name the line and what was expected.

use std::borrow::Cow;
use std::collections::BTreeMap;

/// One sample line of a text exposition.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedSample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The parsed exposition: samples in order and the declared `# TYPE` per family.
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    pub samples: Vec<ParsedSample>,
    pub types: BTreeMap<String, String>,
    pub help: BTreeMap<String, String>,
}

/// Parses text format 0.0.4 (and the sample lines of OpenMetrics). Errors name the line.
pub fn parse_text(text: &str) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    for line in lines(text) {
        match line?.1 {
            Line::Help { name, text } => {
                out.help.insert(name.to_string(), text.to_string());
            }
            Line::Type { name, kind } => {
                out.types.insert(name.to_string(), kind.to_string());
            }
            Line::Sample(s) => out.samples.push(ParsedSample {
                name: s.name.to_string(),
                labels: s
                    .labels
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.into_owned()))
                    .collect(),
                value: s.value,
            }),
        }
    }
    Ok(out)
}

/// One line of an exposition that means something (not blank, not a plain comment), borrowed
/// from the text.
#[derive(Clone, Debug, PartialEq)]
pub enum Line<'a> {
    /// `# HELP <name> <text>`, the text still escaped as written.
    Help { name: &'a str, text: &'a str },
    /// `# TYPE <name> <type>`, the type as written (not checked against the known ones).
    Type { name: &'a str, kind: &'a str },
    /// A sample.
    Sample(Sample<'a>),
}

/// A sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    /// Label pairs in written order, values unescaped (borrowed unless they had escapes).
    pub labels: Vec<(&'a str, Cow<'a, str>)>,
    pub value: f64,
    /// The timestamp after the value, if any (milliseconds in the text format, seconds in
    /// OpenMetrics).
    pub timestamp: Option<f64>,
}

/// The meaningful lines of `text` with their 1-based numbers. An error
/// (`line N: what was expected: the line`) ends the iteration.
pub fn lines(text: &str) -> Lines<'_> {
    Lines {
        inner: text.lines().enumerate(),
        failed: false,
    }
}

/// The iterator of [`lines`].
pub struct Lines<'a> {
    inner: std::iter::Enumerate<std::str::Lines<'a>>,
    failed: bool,
}

impl<'a> Iterator for Lines<'a> {
    type Item = Result<(usize, Line<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        for (i, raw) in self.inner.by_ref() {
            match parse_line(raw) {
                Ok(None) => continue,
                Ok(Some(line)) => return Some(Ok((i + 1, line))),
                Err(e) => {
                    self.failed = true;
                    return Some(Err(format!("line {}: {e}: {}", i + 1, clip(raw, 80))));
                }
            }
        }
        None
    }
}

fn parse_line(line: &str) -> Result<Option<Line<'_>>, String> {
    let line = skip_blank(line);
    if line.is_empty() {
        return Ok(None);
    }
    match line.strip_prefix('#') {
        Some(comment) => parse_comment(comment),
        None => parse_sample(line).map(|s| Some(Line::Sample(s))),
    }
}

/// `# HELP` and `# TYPE`; other comments (and OpenMetrics' `# UNIT`, `# EOF`) are skipped.
fn parse_comment(comment: &str) -> Result<Option<Line<'_>>, String> {
    let (keyword, rest) = token(skip_blank(comment));
    if keyword != "HELP" && keyword != "TYPE" {
        return Ok(None);
    }
    let (name, rest) = token(skip_blank(rest));
    if !crate::is_valid_name(name) {
        return Err(format!(
            "expected a metric name after {keyword}, got {:?}",
            clip(name, 40)
        ));
    }
    let rest = skip_blank(rest);
    if keyword == "HELP" {
        return Ok(Some(Line::Help { name, text: rest }));
    }
    let (kind, after) = token(rest);
    if kind.is_empty() {
        return Err(format!("expected a type after TYPE {name}"));
    }
    if !skip_blank(after).is_empty() {
        return Err(format!(
            "expected the end of the line after TYPE {name} {kind}, got {:?}",
            clip(skip_blank(after), 20)
        ));
    }
    Ok(Some(Line::Type { name, kind }))
}

fn parse_sample(line: &str) -> Result<Sample<'_>, String> {
    let name_end = span(line, |b| {
        b.is_ascii_alphanumeric() || b == b'_' || b == b':'
    });
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    if name.is_empty() {
        return Err(format!(
            "expected a metric name, got {:?}",
            clip(token(line).0, 20)
        ));
    }
    if !crate::is_valid_name(name) {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut labels = Vec::new();
    let after_blank = skip_blank(rest);
    if let Some(r) = after_blank.strip_prefix('{') {
        rest = parse_labels(r, &mut labels)?;
    } else if !rest.is_empty() && after_blank.len() == rest.len() {
        return Err(format!(
            "expected '{{' or a blank after the metric name {name:?}, got {:?}",
            clip(rest, 20)
        ));
    }
    let (v, rest) = token(skip_blank(rest));
    if v.is_empty() {
        return Err(format!("expected a value after {name:?}"));
    }
    let value = parse_value(v).ok_or_else(|| {
        format!(
            "expected a number as the value of {name:?}, got {:?}",
            clip(v, 20)
        )
    })?;
    let (ts, rest) = token(skip_blank(rest));
    // `#` starts an OpenMetrics exemplar, which is not read.
    if ts.is_empty() || ts.starts_with('#') {
        return Ok(Sample {
            name,
            labels,
            value,
            timestamp: None,
        });
    }
    let timestamp = ts.parse::<f64>().ok().filter(|t| t.is_finite());
    let Some(timestamp) = timestamp else {
        return Err(format!(
            "expected a timestamp after the value, got {:?}",
            clip(ts, 20)
        ));
    };
    let rest = skip_blank(rest);
    if !rest.is_empty() && !rest.starts_with('#') {
        return Err(format!(
            "expected the end of the line after the timestamp, got {:?}",
            clip(rest, 20)
        ));
    }
    Ok(Sample {
        name,
        labels,
        value,
        timestamp: Some(timestamp),
    })
}

/// Reads `name="value",...}` (after the `{`) into `labels`; returns what follows the `}`.
fn parse_labels<'a>(
    mut r: &'a str,
    labels: &mut Vec<(&'a str, Cow<'a, str>)>,
) -> Result<&'a str, String> {
    loop {
        r = skip_blank(r);
        if let Some(after) = r.strip_prefix('}') {
            return Ok(after);
        }
        let key_end = span(r, |b| b.is_ascii_alphanumeric() || b == b'_');
        let key = &r[..key_end];
        if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!(
                "expected a label name or '}}', got {:?}",
                clip(r, 20)
            ));
        }
        if key == "__name__" {
            return Err("label name \"__name__\" is reserved".into());
        }
        r = skip_blank(&r[key_end..]);
        r = r.strip_prefix('=').ok_or_else(|| {
            format!(
                "expected '=' after the label name {key:?}, got {:?}",
                clip(r, 20)
            )
        })?;
        r = skip_blank(r);
        r = r.strip_prefix('"').ok_or_else(|| {
            format!(
                "expected '\"' to open the value of label {key:?}, got {:?}",
                clip(r, 20)
            )
        })?;
        let (value, after) = label_value(r).map_err(|e| format!("label {key:?}: {e}"))?;
        if labels.iter().any(|(k, _)| *k == key) {
            return Err(format!("duplicate label {key:?}"));
        }
        labels.push((key, value));
        r = skip_blank(after);
        if let Some(after) = r.strip_prefix(',') {
            r = after;
        } else if !r.starts_with('}') {
            return Err(format!(
                "expected ',' or '}}' after the value of label {key:?}, got {:?}",
                clip(r, 20)
            ));
        }
    }
}

/// A quoted label value (after the opening `"`), unescaped, and what follows the closing `"`.
fn label_value(r: &str) -> Result<(Cow<'_, str>, &str), String> {
    let end = span(r, |b| b != b'"' && b != b'\\');
    if end == r.len() {
        return Err("value not closed with '\"'".into());
    }
    if r.as_bytes()[end] == b'"' {
        return Ok((Cow::Borrowed(&r[..end]), &r[end + 1..]));
    }
    let mut val = String::from(&r[..end]);
    let mut chars = r[end..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((Cow::Owned(val), &r[end + i + 1..])),
            '\\' => match chars.next() {
                Some((_, 'n')) => val.push('\n'),
                Some((_, '\\')) => val.push('\\'),
                Some((_, '"')) => val.push('"'),
                Some((_, o)) => return Err(format!("invalid escape sequence \"\\{o}\"")),
                None => break,
            },
            c => val.push(c),
        }
    }
    Err("value not closed with '\"'".into())
}

/// A sample value as Go's `strconv.ParseFloat` reads it (`+Inf`, `-Inf`, `NaN`, `1e3`...).
fn parse_value(v: &str) -> Option<f64> {
    match v {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => v.parse().ok(),
    }
}

/// The text up to the first blank, and the rest (starting with that blank).
fn token(s: &str) -> (&str, &str) {
    s.split_at(span(s, |b| b != b' ' && b != b'\t'))
}

/// `s` without the blanks (spaces, tabs) it starts with.
fn skip_blank(s: &str) -> &str {
    &s[span(s, |b| b == b' ' || b == b'\t')..]
}

/// The length of the longest start of `s` whose bytes are all `ok`: a plain loop, because the
/// generic searches of `str` are slow in debug builds, where tests parse large files. The
/// callers' `ok` either accepts ASCII only or stops at ASCII only, so the result is always a
/// char boundary.
fn span(s: &str, ok: fn(u8) -> bool) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() && ok(b[i]) {
        i += 1;
    }
    i
}

/// At most `max` characters of `s`, with `...` when cut: errors quote the input, which may
/// be a whole megabyte on one line.
fn clip(s: &str, max: usize) -> Cow<'_, str> {
    match s.char_indices().nth(max) {
        Some((i, _)) => Cow::Owned(format!("{}...", &s[..i])),
        None => Cow::Borrowed(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let p =
            parse_text("# HELP a x\n# TYPE a gauge\na{b=\"c\\\"d\",e=\"\"} 1.5\na 2 123\nc +Inf\n")
                .unwrap();
        assert_eq!(p.samples.len(), 3);
        assert_eq!(p.samples[0].labels["b"], "c\"d");
        assert_eq!(p.types["a"], "gauge");
        assert!(p.samples[2].value.is_infinite());
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse_text("a 1\nb{x=\"1} 2\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
    }

    #[test]
    fn lines_borrow_and_keep_timestamps() {
        let got: Vec<Line> = lines(
            "# a comment\n\n  # HELP x Some \\n help.\n# TYPE x counter\n\
             x{a=\"1\",b=\"q\\\\\"} 3 1700000000000\n\tx {a=\"2\",} 4\n# EOF\n",
        )
        .map(|l| l.unwrap().1)
        .collect();
        assert_eq!(
            got,
            vec![
                Line::Help {
                    name: "x",
                    text: "Some \\n help."
                },
                Line::Type {
                    name: "x",
                    kind: "counter"
                },
                Line::Sample(Sample {
                    name: "x",
                    labels: vec![("a", Cow::Borrowed("1")), ("b", Cow::Owned("q\\".into()))],
                    value: 3.0,
                    timestamp: Some(1.7e12),
                }),
                Line::Sample(Sample {
                    name: "x",
                    labels: vec![("a", Cow::Borrowed("2"))],
                    value: 4.0,
                    timestamp: None,
                }),
            ]
        );
        // An OpenMetrics exemplar is skipped, not taken for a timestamp.
        let s = parse_text("h_bucket{le=\"1\"} 2 # {trace_id=\"x\"} 0.5 123\n").unwrap();
        assert_eq!(s.samples[0].value, 2.0);
    }

    #[test]
    fn errors_say_what_was_expected() {
        let err = |text: &str| parse_text(text).unwrap_err();
        assert_eq!(
            err("this is { not valid\n"),
            "line 1: expected a number as the value of \"this\", got \"is\": this is { not valid"
        );
        assert_eq!(
            err("a 1\nb{x=\"1} 2\n"),
            "line 2: label \"x\": value not closed with '\"': b{x=\"1} 2"
        );
        let cases = [
            (
                "{a=\"1\"} 1",
                "expected a metric name, got \"{a=\\\"1\\\"}\"",
            ),
            (
                "a-b 1",
                "expected '{' or a blank after the metric name \"a\", got \"-b 1\"",
            ),
            ("a", "expected a value after \"a\""),
            ("a{", "expected a label name or '}', got \"\""),
            (
                "a{b} 1",
                "expected '=' after the label name \"b\", got \"} 1\"",
            ),
            (
                "a{b=1} 1",
                "expected '\"' to open the value of label \"b\", got \"1} 1\"",
            ),
            (
                "a{b=\"1\" c=\"2\"} 1",
                "expected ',' or '}' after the value of label \"b\", got \"c=\\\"2\\\"} 1\"",
            ),
            ("a{b=\"1\",b=\"2\"} 1", "duplicate label \"b\""),
            (
                "a{b=\"\\t\"} 1",
                "label \"b\": invalid escape sequence \"\\t\"",
            ),
            ("a{__name__=\"x\"} 1", "label name \"__name__\" is reserved"),
            (
                "a 1x",
                "expected a number as the value of \"a\", got \"1x\"",
            ),
            ("a 1 x", "expected a timestamp after the value, got \"x\""),
            (
                "a 1 2 3",
                "expected the end of the line after the timestamp, got \"3\"",
            ),
            ("# TYPE a", "expected a type after TYPE a"),
            (
                "# TYPE a gauge x",
                "expected the end of the line after TYPE a gauge, got \"x\"",
            ),
            (
                "# HELP 1a x",
                "expected a metric name after HELP, got \"1a\"",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(err(text), format!("line 1: {want}: {text}"), "{text}");
        }
        // Long lines are cut in messages.
        let long = format!("a {}", "9".repeat(500));
        let e = err(&format!("{long}x\n"));
        assert!(e.len() < 200, "{e}");
    }

    mod properties {
        use super::*;
        use crate::{Encoder, Format, Kind};
        use proptest::prelude::*;

        proptest! {
            // EOS_FUZZ_CASES cases, and no file of regressions (CI's tree is read-only).
            #![proptest_config(eos_testkit::fuzz::config())]

            /// Any input gives lines or an error that names a line, never a panic.
            #[test]
            fn any_text(text in "(\\PC|[{}=\",# \\\\\n])*") {
                for line in lines(&text) {
                    if let Err(e) = line {
                        prop_assert!(e.starts_with("line "), "{}", e);
                    }
                }
            }

            /// Whatever label values and HELP text the encoder writes, they read back the same.
            #[test]
            fn encoded_reads_back(
                help in "\\PC*",
                values in prop::collection::vec("\\PC*", 1..4),
                value in any::<f64>(),
            ) {
                let mut buf = Vec::new();
                let mut enc = Encoder::new(&mut buf, Format::Text);
                let names = ["a", "b_c", "_d"];
                let labels: Vec<(&str, &str)> =
                    names.iter().zip(&values).map(|(k, v)| (*k, v.as_str())).collect();
                enc.family("x_total", &help, Kind::Counter).sample(&labels, value);
                let text = String::from_utf8(buf).unwrap();
                let parsed = parse_text(&text).map_err(TestCaseError::fail)?;
                let s = &parsed.samples[0];
                for (k, v) in &labels {
                    prop_assert_eq!(s.labels.get(*k).map(String::as_str), Some(*v));
                }
                prop_assert!(s.value == value || (s.value.is_nan() && value.is_nan()));
                prop_assert_eq!(parsed.types.get("x_total").map(String::as_str), Some("counter"));
            }
        }
    }
}
