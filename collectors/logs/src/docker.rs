//! Docker's json-file log format: one JSON object a line, `{"log":"...\n","stream":"stdout",
//! "time":"2026-11-30T04:56:39.123456789Z"}`. A `log` without its trailing newline is a part
//! of a longer line, as Docker splits lines over 16 KiB.

use crate::time::{parse_rfc3339, Timestamp};
use crate::Stream;
use serde::Deserialize;

/// One json-file record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub time: Timestamp,
    pub stream: Stream,
    /// The line did not end here (no trailing newline in `log`).
    pub partial: bool,
    pub content: Vec<u8>,
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(borrow)]
    log: std::borrow::Cow<'a, str>,
    stream: &'a str,
    time: &'a str,
}

/// Parses one line; an error says what is missing or wrong.
pub fn parse(line: &[u8]) -> Result<Record, String> {
    let raw: Raw<'_> =
        serde_json::from_slice(line).map_err(|e| format!("not a json-file record: {e}"))?;
    let stream = Stream::parse(raw.stream.as_bytes())
        .ok_or_else(|| format!("bad stream {:?}", raw.stream))?;
    let time =
        parse_rfc3339(raw.time.as_bytes()).ok_or_else(|| format!("bad time {:?}", raw.time))?;
    let (content, partial) = match raw.log.strip_suffix('\n') {
        Some(c) => (c.as_bytes().to_vec(), false),
        None => (raw.log.as_bytes().to_vec(), true),
    };
    Ok(Record {
        time,
        stream,
        partial,
        content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn records() {
        let r = parse(
            br#"{"log":"hello \"you\"\n","stream":"stderr","time":"2026-11-30T04:56:39.5Z"}"#,
        )
        .unwrap();
        assert_eq!(r.content, b"hello \"you\"");
        assert_eq!(r.stream, Stream::Stderr);
        assert!(!r.partial);
        assert_eq!(r.time.nanos, 500_000_000);
        let r =
            parse(br#"{"log":"part","stream":"stdout","time":"2026-11-30T04:56:39Z"}"#).unwrap();
        assert!(r.partial);
    }

    #[test]
    fn errors() {
        assert!(parse(b"")
            .unwrap_err()
            .starts_with("not a json-file record"));
        assert!(parse(br#"{"log":"x\n","time":"2026-11-30T04:56:39Z"}"#)
            .unwrap_err()
            .contains("missing field `stream`"));
        assert_eq!(
            parse(br#"{"log":"x\n","stream":"out","time":"2026-11-30T04:56:39Z"}"#).unwrap_err(),
            "bad stream \"out\""
        );
        assert_eq!(
            parse(br#"{"log":"x\n","stream":"stdout","time":"now"}"#).unwrap_err(),
            "bad time \"now\""
        );
    }

    proptest! {
        #![proptest_config(eos_testkit::fuzz::config())]

        #[test]
        fn fuzz_docker_line(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn fuzz_docker_shaped(log in any::<String>(), nl in any::<bool>()) {
            let log = if nl { format!("{log}\n") } else { log };
            let line = serde_json::json!({"log": log, "stream": "stdout", "time": "2026-11-30T04:56:39Z"});
            let r = parse(line.to_string().as_bytes()).expect("a valid record");
            let back = if r.partial { String::from_utf8(r.content).unwrap() } else { format!("{}\n", String::from_utf8(r.content).unwrap()) };
            prop_assert_eq!(back, log);
        }
    }
}
