//! The logs module: pod logs from `/var/log/pods` to Loki, with positions advanced only after
//! Loki has accepted a batch, so that no line is lost when Loki is down or files rotate away.
//!
//! - `config.rs`: the `modules.logs` section.
//! - `discover.rs`: the kubelet's directory layout, and the scan.
//! - `tail.rs`: one open file, read by offset, its identity and rotation state.
//! - `split.rs`: bytes into lines with their offsets, capped in length.
//! - `decode.rs`: lines into entries (CRI or Docker json-file), partial records joined, each
//!   entry with the offset that is safe to commit once Loki has it.
//! - `time.rs`, `cri.rs`, `docker.rs`: the formats.
//! - `labels.rs`: stream labels (Promtail's), and the optional `level`.
//! - `batch.rs`: entries gathered for one push, splittable on 413.
//! - `loki.rs`: `logproto.PushRequest` from its documented field numbers, snappy-compressed.
//! - `reader.rs`: the reading thread: scan, inotify, read in order, batch, held files.
//! - `push.rs`: the pusher: retries, backoff, 400 and 413 handling, advancing positions.
//! - `ledger.rs`: acknowledged offsets shared by both, saved after every advance.
//! - `positions.rs`: the positions file, by file identity, with a checksum, saved atomically.
//! - `metrics.rs`: self-metrics. `module.rs`: the module as the agent runs it.
//! - `receiver.rs` (feature `receiver`): a protocol-faithful Loki receiver for tests.
//!
//! Parsing is pure (bytes in, a line or an error out) and never fails on content: invalid UTF-8
//! is replaced, and a line that does not have the format's shape is shipped whole.

pub mod batch;
pub mod config;
pub mod cri;
pub mod decode;
pub mod discover;
pub mod docker;
pub mod labels;
pub mod ledger;
pub mod loki;
pub mod metrics;
pub mod module;
pub mod positions;
pub mod push;
pub mod reader;
#[cfg(feature = "receiver")]
pub mod receiver;
pub mod split;
pub mod tail;
pub mod time;

pub use config::LogsConfig;
pub use module::LogsModule;

/// Which stream of the container a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
