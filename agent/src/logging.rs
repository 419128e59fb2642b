//! The log on stderr, in node_exporter's `--log.format` choices: `logfmt` (the default: one
//! line of text per event, its fields as `key=value`) and `json` (one JSON object per line,
//! fields at the top level, for log shippers).

use tracing_subscriber::fmt::MakeWriter;

/// `--log.format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    #[default]
    Logfmt,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "logfmt" => Ok(LogFormat::Logfmt),
            "json" => Ok(LogFormat::Json),
            other => Err(format!(
                "--log.format: unknown format {other:?} (logfmt, json)"
            )),
        }
    }
}

/// Sends the process's log to stderr from now on.
pub fn init(level: tracing::Level, format: LogFormat) {
    // Only fails when a subscriber is already set, which nothing else does.
    let _ = tracing::subscriber::set_global_default(subscriber(level, format, std::io::stderr));
}

/// A subscriber writing events at `level` and above to `writer` in `format`.
fn subscriber<W>(
    level: tracing::Level,
    format: LogFormat,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(false)
        .with_writer(writer);
    match format {
        LogFormat::Logfmt => Box::new(builder.finish()),
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .finish(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// Collects what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn log_with(format: LogFormat) -> String {
        let out = Captured::default();
        let writer = out.clone();
        let sub = subscriber(tracing::Level::INFO, format, move || writer.clone());
        tracing::subscriber::with_default(sub, || {
            tracing::info!(addr = "127.0.0.1:9100", "listening");
            tracing::warn!(error = "a \"quoted\"\nvalue", "config reload failed");
            tracing::debug!("not at info");
        });
        let bytes = out.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn json_lines_are_objects_with_top_level_fields() {
        let text = log_with(LogFormat::Json);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["message"], "listening");
        assert_eq!(lines[0]["addr"], "127.0.0.1:9100");
        assert!(lines[0]["timestamp"].is_string());
        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[1]["error"], "a \"quoted\"\nvalue");
    }

    #[test]
    fn logfmt_is_one_line_of_text_per_event() {
        let text = log_with(LogFormat::Logfmt);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].contains(" INFO "), "{text}");
        assert!(lines[0].contains("listening addr="), "{text}");
        assert!(
            lines[1].contains(r#"error="a \"quoted\"\nvalue""#),
            "{text}"
        );
        assert!(!text.contains("not at info"));
    }

    #[test]
    fn formats_by_name() {
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        assert_eq!("logfmt".parse(), Ok(LogFormat::Logfmt));
        assert!("text"
            .parse::<LogFormat>()
            .unwrap_err()
            .contains("logfmt, json"));
    }
}
