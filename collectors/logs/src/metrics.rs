//! The logs module's self-metrics, updated by the reader and the pusher, written at scrape.

use eos_exposition::Encoder;
use eos_module::metrics::{
    exponential_buckets, Counter, CounterVec, Gauge, GaugeVec, Histogram, Metric,
};

/// Labels of the per-file series.
pub const FILE_LABELS: &[&str] = &["namespace", "pod", "container", "file"];

/// Every self-metric of one module instance.
pub struct Metrics {
    pub file_read_bytes: CounterVec,
    pub file_acked_bytes: CounterVec,
    pub file_lag_bytes: GaugeVec,
    pub file_lag_seconds: GaugeVec,
    pub entries_sent: Counter,
    pub bytes_sent: Counter,
    pub entries_dropped: CounterVec,
    pub bytes_given_up: Counter,
    pub lines_truncated: Counter,
    pub lines_unparsed: Counter,
    pub truncations: Counter,
    pub push_requests: CounterVec,
    pub push_retries: CounterVec,
    pub backoff_seconds: Gauge,
    pub files: Gauge,
    pub files_held: Gauge,
    pub batch_entries: Histogram,
    pub batch_bytes: Histogram,
    pub last_push_success: Gauge,
    pub lag_bytes: Gauge,
    pub lag_seconds: Gauge,
    pub positions_errors: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let m = Metrics::empty();
        // At zero from the start, so that `increase()` sees the first drop.
        for reason in ["rejected", "filtered", "retries_exhausted"] {
            m.entries_dropped.get_or_create(&[reason]);
        }
        m
    }
}

impl Metrics {
    fn empty() -> Self {
        Metrics {
            file_read_bytes: CounterVec::new(FILE_LABELS),
            file_acked_bytes: CounterVec::new(FILE_LABELS),
            file_lag_bytes: GaugeVec::new(FILE_LABELS),
            file_lag_seconds: GaugeVec::new(FILE_LABELS),
            entries_sent: Counter::new(),
            bytes_sent: Counter::new(),
            entries_dropped: CounterVec::new(&["reason"]),
            bytes_given_up: Counter::new(),
            lines_truncated: Counter::new(),
            lines_unparsed: Counter::new(),
            truncations: Counter::new(),
            push_requests: CounterVec::new(&["status"]),
            push_retries: CounterVec::new(&["status"]),
            backoff_seconds: Gauge::new(),
            files: Gauge::new(),
            files_held: Gauge::new(),
            batch_entries: Histogram::new(&exponential_buckets(1.0, 4.0, 10)),
            batch_bytes: Histogram::new(&exponential_buckets(1024.0, 4.0, 8)),
            last_push_success: Gauge::new(),
            lag_bytes: Gauge::new(),
            lag_seconds: Gauge::new(),
            positions_errors: Counter::new(),
        }
    }

    /// Writes every family.
    pub fn encode(&self, enc: &mut Encoder<'_>) {
        let m: [(&dyn Metric, &str, &str); 22] = [
            (&self.file_read_bytes, "eos_logs_file_read_bytes_total", "Bytes read from a log file."),
            (&self.file_acked_bytes, "eos_logs_file_acked_bytes_total", "Bytes of a log file that Loki has acknowledged."),
            (&self.file_lag_bytes, "eos_logs_file_lag_bytes", "Bytes of a log file not yet acknowledged by Loki."),
            (&self.file_lag_seconds, "eos_logs_file_lag_seconds", "How long a log file has had bytes not acknowledged by Loki (0: caught up)."),
            (&self.entries_sent, "eos_logs_entries_sent_total", "Log entries Loki accepted."),
            (&self.bytes_sent, "eos_logs_bytes_sent_total", "Compressed push bytes Loki accepted."),
            (&self.entries_dropped, "eos_logs_entries_dropped_total", "Log entries not shipped, by reason: rejected (Loki answered 400), filtered (drop regex), given_up (a held file given up at the limit)."),
            (&self.bytes_given_up, "eos_logs_bytes_given_up_total", "Bytes of deleted files given up at the held-files limit before they were shipped."),
            (&self.lines_truncated, "eos_logs_lines_truncated_total", "Lines cut at max_line_bytes (shipped with a marker)."),
            (&self.lines_unparsed, "eos_logs_lines_unparsed_total", "Lines not in the file's format, shipped whole with the time they were read."),
            (&self.truncations, "eos_logs_file_truncations_total", "Times a file shrank under the reader (copytruncate) and was read again from its start."),
            (&self.push_requests, "eos_logs_push_requests_total", "Pushes to Loki by answer: the HTTP status, error or timeout."),
            (&self.push_retries, "eos_logs_push_retries_total", "Pushes retried, by the answer that caused the retry."),
            (&self.backoff_seconds, "eos_logs_backoff_seconds", "The current wait before the next retry (0: pushing normally)."),
            (&self.files, "eos_logs_files", "Log files open."),
            (&self.files_held, "eos_logs_files_held", "Deleted log files still held open to be drained."),
            (&self.batch_entries, "eos_logs_batch_entries", "Entries per pushed batch."),
            (&self.batch_bytes, "eos_logs_batch_bytes", "Uncompressed line bytes per pushed batch."),
            (&self.last_push_success, "eos_logs_last_push_success_timestamp_seconds", "When Loki last accepted a push (Unix time)."),
            (&self.lag_bytes, "eos_logs_lag_bytes", "Bytes of all log files not yet acknowledged by Loki."),
            (&self.lag_seconds, "eos_logs_lag_seconds", "The longest time any log file has had bytes not acknowledged by Loki."),
            (&self.positions_errors, "eos_logs_positions_errors_total", "Failures to read or save the positions file."),
        ];
        for (metric, name, help) in m {
            metric.encode(enc, name, help);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_valid_families_with_the_documented_names() {
        let m = Metrics::default();
        m.file_read_bytes
            .get_or_create(&["ns", "pod", "app", "0.log"])
            .add(10);
        m.push_requests.get_or_create(&["204"]).inc();
        let mut buf = Vec::new();
        let mut enc = Encoder::new(&mut buf, eos_exposition::Format::Text);
        m.encode(&mut enc);
        let (_, dropped) = enc.finish();
        assert_eq!(dropped.counts, [0; 3], "{:?}", dropped.example);
        let text = String::from_utf8(buf).unwrap();
        assert!(text.contains(
            "eos_logs_file_read_bytes_total{container=\"app\",file=\"0.log\",namespace=\"ns\",pod=\"pod\"} 10"
        ), "{text}");
        assert!(text.contains("eos_logs_push_requests_total{status=\"204\"} 1"));
        assert!(text.contains("# TYPE eos_logs_batch_bytes histogram"));
    }
}
