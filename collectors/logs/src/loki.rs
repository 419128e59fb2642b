//! Loki's push protocol: `logproto.PushRequest` as protobuf, snappy-compressed (the block
//! format, as Loki's `snappy.Decode` reads it), posted to `<url>/loki/api/v1/push` with
//! `Content-Type: application/x-protobuf`.
//!
//! The messages are written from the field numbers in Loki's `pkg/push/push.proto`:
//! `PushRequest { repeated StreamAdapter streams = 1; }`,
//! `StreamAdapter { string labels = 1; repeated EntryAdapter entries = 2; uint64 hash = 3; }`,
//! `EntryAdapter { google.protobuf.Timestamp timestamp = 1; string line = 2; }` and
//! `Timestamp { int64 seconds = 1; int32 nanos = 2; }`.

use prost::Message;

/// `logproto.PushRequest`.
#[derive(Clone, PartialEq, Message)]
pub struct PushRequest {
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
}

/// `logproto.StreamAdapter`: one stream's labels (`{namespace="a", pod="b"}`) and entries.
#[derive(Clone, PartialEq, Message)]
pub struct StreamAdapter {
    #[prost(string, tag = "1")]
    pub labels: String,
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

/// `logproto.EntryAdapter`.
#[derive(Clone, PartialEq, Message)]
pub struct EntryAdapter {
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    #[prost(string, tag = "2")]
    pub line: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, Eq, Message)]
pub struct Timestamp {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl From<crate::time::Timestamp> for Timestamp {
    fn from(t: crate::time::Timestamp) -> Self {
        Timestamp {
            seconds: t.seconds,
            nanos: t.nanos.min(999_999_999) as i32,
        }
    }
}

/// Loki's label set syntax for a stream: `{k="v", ...}` with `"` and `\` escaped, in the
/// order given.
pub fn labels(pairs: &[(&str, &str)]) -> String {
    let mut s = String::from("{");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(k);
        s.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '"' => s.push_str("\\\""),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    s.push('}');
    s
}

/// The request body: protobuf, then snappy's block format.
pub fn encode(req: &PushRequest) -> Vec<u8> {
    let raw = req.encode_to_vec();
    // Compressing a buffer we just made cannot fail but for its size (over 4 GiB).
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .unwrap_or_default()
}

/// What a receiver does with a body: snappy, then protobuf (for tests and a debugging aid).
pub fn decode(body: &[u8]) -> Result<PushRequest, String> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("snappy: {e}"))?;
    PushRequest::decode(raw.as_slice()).map_err(|e| format!("protobuf: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wire_bytes_follow_the_field_numbers() {
        let req = PushRequest {
            streams: vec![StreamAdapter {
                labels: "{a=\"b\"}".into(),
                entries: vec![EntryAdapter {
                    timestamp: Some(Timestamp {
                        seconds: 1,
                        nanos: 2,
                    }),
                    line: "hi".into(),
                }],
                hash: 0,
            }],
        };
        // streams(1, len) { labels(1, len) "{a="b"}", entries(2, len) { timestamp(1, len)
        // { seconds(1)=1, nanos(2)=2 }, line(2, len) "hi" } }
        let want: Vec<u8> = [
            &[0x0a, 21, 0x0a, 7][..],
            b"{a=\"b\"}",
            &[0x12, 10, 0x0a, 4, 0x08, 1, 0x10, 2, 0x12, 2],
            b"hi",
        ]
        .concat();
        assert_eq!(req.encode_to_vec(), want);
        assert_eq!(decode(&encode(&req)).unwrap(), req);
    }

    #[test]
    fn label_sets() {
        assert_eq!(
            labels(&[("namespace", "default"), ("pod", "a\"b\\c")]),
            "{namespace=\"default\", pod=\"a\\\"b\\\\c\"}"
        );
        assert_eq!(labels(&[]), "{}");
    }

    #[test]
    fn bad_bodies_are_errors() {
        assert!(decode(b"not snappy at all")
            .unwrap_err()
            .starts_with("snappy: "));
        let junk = snap::raw::Encoder::new()
            .compress_vec(b"\xff\xff\xff")
            .unwrap();
        assert!(decode(&junk).unwrap_err().starts_with("protobuf: "));
    }

    proptest! {
        #![proptest_config(eos_testkit::fuzz::config())]

        #[test]
        fn fuzz_push_round_trip(
            entries in proptest::collection::vec((any::<i64>(), 0u32..1_000_000_000, any::<String>()), 0..20),
            label in any::<String>(),
        ) {
            let req = PushRequest {
                streams: vec![StreamAdapter {
                    labels: labels(&[("pod", &label)]),
                    entries: entries
                        .iter()
                        .map(|(s, n, l)| EntryAdapter {
                            timestamp: Some(crate::time::Timestamp { seconds: *s, nanos: *n }.into()),
                            line: l.clone(),
                        })
                        .collect(),
                    hash: 0,
                }],
            };
            prop_assert_eq!(decode(&encode(&req)).unwrap(), req);
        }

        #[test]
        fn fuzz_push_decode_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
        }
    }
}
