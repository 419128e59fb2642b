//! The logs module's building blocks: pod log lines as the container runtimes write them,
//! Loki's push protocol, and the positions file. (The tailer, delivery and the module itself
//! come next; see the logs issue.)
//!
//! - `time.rs`: RFC 3339 timestamps with nanoseconds, as the runtimes write them.
//! - `cri.rs`: the CRI log format (`<time> <stdout|stderr> <P|F> <content>`), with `P` fragments.
//! - `docker.rs`: Docker's json-file format (`{"log","stream","time"}`).
//! - `loki.rs`: `logproto.PushRequest` from its documented field numbers, snappy-compressed.
//! - `positions.rs`: how far each file (by device, inode and fingerprint) is acknowledged,
//!   saved atomically with a checksum.
//!
//! Parsing is pure (bytes in, a line or an error out) and never fails on content: invalid UTF-8
//! is replaced, and only a line that does not have the format's shape is an error.

pub mod cri;
pub mod docker;
pub mod loki;
pub mod positions;
pub mod time;

/// Which stream of the container a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The `stream` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn parse(s: &[u8]) -> Option<Stream> {
        match s {
            b"stdout" => Some(Stream::Stdout),
            b"stderr" => Some(Stream::Stderr),
            _ => None,
        }
    }
}
