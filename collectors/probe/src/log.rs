//! A probe's log, as blackbox_exporter keeps it for `debug=true`: logfmt lines with the time,
//! the level, the module and the target.

use std::fmt::Write as _;
use std::time::SystemTime;

/// The lines one probe logged.
#[derive(Debug, Default, Clone)]
pub struct ProbeLog {
    module: String,
    target: String,
    text: String,
    /// The first error logged, as `msg: key=value ...`.
    first_error: Option<String>,
}

impl ProbeLog {
    pub fn new(module: &str, target: &str) -> Self {
        ProbeLog {
            module: module.to_string(),
            target: target.to_string(),
            text: String::new(),
            first_error: None,
        }
    }

    /// Logs at info.
    pub fn info(&mut self, msg: &str, kv: &[(&str, &dyn std::fmt::Display)]) {
        self.line("info", msg, kv);
    }

    /// Logs at debug.
    pub fn debug(&mut self, msg: &str, kv: &[(&str, &dyn std::fmt::Display)]) {
        self.line("debug", msg, kv);
    }

    /// Logs at error.
    pub fn error(&mut self, msg: &str, kv: &[(&str, &dyn std::fmt::Display)]) {
        if self.first_error.is_none() {
            let mut e = msg.to_string();
            for (i, (k, v)) in kv.iter().enumerate() {
                let sep = if i == 0 { ": " } else { " " };
                let _ = write!(e, "{sep}{k}={}", quote(&v.to_string()));
            }
            self.first_error = Some(e);
        }
        self.line("error", msg, kv);
    }

    /// The first error logged (what made the probe fail), as `msg: key=value ...`.
    pub fn first_error(&self) -> Option<&str> {
        self.first_error.as_deref()
    }

    fn line(&mut self, level: &str, msg: &str, kv: &[(&str, &dyn std::fmt::Display)]) {
        let ts = rfc3339_millis(SystemTime::now());
        let _ = write!(
            self.text,
            "ts={ts} level={level} module={} target={} msg={}",
            quote(&self.module),
            quote(&self.target),
            quote(msg)
        );
        for (k, v) in kv {
            let _ = write!(self.text, " {k}={}", quote(&v.to_string()));
        }
        self.text.push('\n');
    }

    /// Everything logged.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// A logfmt value: quoted when it has spaces, quotes or `=`.
fn quote(s: &str) -> String {
    if !s.is_empty() && !s.contains([' ', '"', '=', '\n', '\t']) {
        return s.to_string();
    }
    format!("{s:?}")
}

/// `t` as RFC 3339 UTC with milliseconds, as Go's logfmt logger writes it.
fn rfc3339_millis(t: SystemTime) -> String {
    eos_module::civil::rfc3339(t, 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_lines() {
        let mut l = ProbeLog::new("http_2xx", "http://a b");
        l.info("Resolving target address", &[("ip_protocol", &"ip6")]);
        let t = l.text();
        assert!(t.starts_with("ts=20"), "{t}");
        assert!(t.contains(" level=info module=http_2xx target=\"http://a b\" msg=\"Resolving target address\" ip_protocol=ip6\n"), "{t}");
        assert_eq!(l.first_error(), None);
        l.error("Error dialing TCP", &[("err", &"connection refused")]);
        l.error("Probe failed", &[("duration_seconds", &0.5)]);
        assert_eq!(
            l.first_error(),
            Some("Error dialing TCP: err=\"connection refused\"")
        );
        assert_eq!(
            rfc3339_millis(
                SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_764_480_000_123)
            ),
            "2025-11-30T05:20:00.123Z"
        );
    }
}
