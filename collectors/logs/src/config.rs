//! The `modules.logs` config section: where Loki is, how to batch and retry, and what to read.

use eos_module::{ConfigIssue, Duration, ModuleConfig, Secret};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Loki's default `max_line_size`: longer lines are cut to this, with a marker.
pub const DEFAULT_MAX_LINE_BYTES: u64 = 256 << 10;
/// The most pod labels copied onto streams: each one multiplies Loki's stream count.
pub const MAX_POD_LABELS: usize = 8;

/// `modules.logs`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogsConfig {
    /// Off by default: there is nowhere to ship to until `loki.url` is set.
    pub enabled: bool,
    pub loki: LokiConfig,
    /// A batch is pushed once it holds this many bytes of lines...
    #[serde(deserialize_with = "eos_module::size::byte_size")]
    pub batch_bytes: u64,
    /// ...or once its first line has waited this long.
    pub batch_wait: Duration,
    /// Lines longer than this are cut, with ` [truncated]` at the end, and counted.
    #[serde(deserialize_with = "eos_module::size::byte_size")]
    pub max_line_bytes: u64,
    /// A lone CRI `P` fragment (its `F` never came) is shipped after this long.
    pub partial_flush: Duration,
    /// The log directory is rescanned this often, besides inotify, as a safety net.
    pub rescan_interval: Duration,
    /// Deleted files still held open so they can be drained (during a Loki outage, a file
    /// rotated away and deleted). Beyond either limit the oldest is given up, and counted.
    pub max_held_files: usize,
    #[serde(deserialize_with = "eos_module::size::byte_size")]
    pub max_held_bytes: u64,
    /// Retries after a 429, a 5xx or a connection error: backoff doubling from `min` to
    /// `max`, with jitter. `max_retries: 0` retries forever (the files on disk are the buffer).
    pub backoff: BackoffConfig,
    /// On stop, wait this long for Loki to accept what has been read.
    pub shutdown_timeout: Duration,
    /// Pod labels (from the kubelet, through the shared pod metadata) copied onto streams,
    /// sanitised (`app.kubernetes.io/name` becomes `app_kubernetes_io_name`). At most 8.
    pub pod_labels: Vec<String>,
    /// A `level` label from the line: `json` (a `level`, `lvl` or `severity` key), `logfmt`
    /// (`level=`), or empty for none.
    pub level_from: String,
    /// Lines matching any of these regexes are not shipped (counted as `filtered`).
    pub drop: Vec<String>,
}

impl Default for LogsConfig {
    fn default() -> Self {
        LogsConfig {
            enabled: false,
            loki: LokiConfig::default(),
            batch_bytes: 1 << 20,
            batch_wait: Duration::from_secs(1),
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            partial_flush: Duration::from_secs(5),
            rescan_interval: Duration::from_secs(10),
            max_held_files: 100,
            max_held_bytes: 1 << 30,
            backoff: BackoffConfig::default(),
            shutdown_timeout: Duration::from_secs(5),
            pod_labels: Vec::new(),
            level_from: String::new(),
            drop: Vec::new(),
        }
    }
}

/// `modules.logs.loki`: where to push and as whom.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LokiConfig {
    /// Loki's base URL, e.g. `http://loki:3100`; pushes go to `<url>/loki/api/v1/push`.
    pub url: String,
    /// `X-Scope-OrgID`, for a multi-tenant Loki.
    pub tenant_id: String,
    pub basic_auth: Option<BasicAuth>,
    /// A file holding a bearer token, re-read for every push (tokens rotate).
    pub bearer_token_file: PathBuf,
    pub tls: eos_http::TlsConfig,
    /// One push gives up after this long (and is retried).
    pub timeout: Duration,
}

impl Default for LokiConfig {
    fn default() -> Self {
        LokiConfig {
            url: String::new(),
            tenant_id: String::new(),
            basic_auth: None,
            bearer_token_file: PathBuf::new(),
            tls: eos_http::TlsConfig::default(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// HTTP basic auth for Loki.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    pub username: String,
    pub password: Option<Secret>,
    /// Read at start instead of `password`.
    pub password_file: PathBuf,
}

/// Retry pacing.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackoffConfig {
    pub min: Duration,
    pub max: Duration,
    /// 0: forever.
    pub max_retries: u32,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            min: Duration::from_millis(500),
            max: Duration::from_secs(300),
            max_retries: 0,
        }
    }
}

impl LogsConfig {
    /// The push endpoint.
    pub fn push_url(&self) -> String {
        format!("{}/loki/api/v1/push", self.loki.url.trim_end_matches('/'))
    }

    /// The drop regexes, compiled.
    pub fn drop_regexes(&self) -> Result<Vec<Regex>, ConfigIssue> {
        self.drop
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Regex::new(r).map_err(|e| ConfigIssue::at(&format!("drop.{i}"), e.to_string()))
            })
            .collect()
    }
}

/// A label name made from a pod label key, as Prometheus' Kubernetes discovery does.
pub fn sanitize_label(key: &str) -> String {
    let mut s: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// Labels every stream has; a pod label may not take one of these names.
pub const PATH_LABELS: &[&str] = &[
    "namespace",
    "pod",
    "container",
    "node_name",
    "stream",
    "job",
];

impl ModuleConfig for LogsConfig {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn validate(&self) -> Result<(), ConfigIssue> {
        if !self.enabled {
            return Ok(());
        }
        let url = self.loki.url.trim();
        if url.is_empty() {
            return Err(ConfigIssue::at(
                "loki.url",
                "the logs module needs Loki's base URL, e.g. http://loki:3100",
            ));
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 9 {
            return Err(ConfigIssue::at(
                "loki.url",
                format!("{url:?}: use http://host:port or https://host:port"),
            ));
        }
        if url.contains("/loki/api/v1/push") {
            return Err(ConfigIssue::at(
                "loki.url",
                format!("{url:?}: give Loki's base URL; /loki/api/v1/push is added"),
            ));
        }
        if self.loki.basic_auth.is_some() && !self.loki.bearer_token_file.as_os_str().is_empty() {
            return Err(ConfigIssue::at(
                "loki.basic_auth",
                "set basic_auth or bearer_token_file, not both",
            ));
        }
        if let Some(b) = &self.loki.basic_auth {
            if b.password.is_some() && !b.password_file.as_os_str().is_empty() {
                return Err(ConfigIssue::at(
                    "loki.basic_auth.password_file",
                    "set password or password_file, not both",
                ));
            }
        }
        self.loki
            .tls
            .validate()
            .map_err(|e| ConfigIssue::at("loki.tls", e))?;
        for (key, d) in [
            ("batch_wait", self.batch_wait),
            ("partial_flush", self.partial_flush),
            ("rescan_interval", self.rescan_interval),
            ("backoff.min", self.backoff.min),
            ("loki.timeout", self.loki.timeout),
        ] {
            if d.get().is_zero() {
                return Err(ConfigIssue::at(key, "must be above zero"));
            }
        }
        if self.backoff.max < self.backoff.min {
            return Err(ConfigIssue::at(
                "backoff.max",
                format!(
                    "{} is below backoff.min {}",
                    self.backoff.max, self.backoff.min
                ),
            ));
        }
        if self.batch_bytes < 1024 {
            return Err(ConfigIssue::at("batch_bytes", "must be at least 1KiB"));
        }
        if self.max_line_bytes < 64 {
            return Err(ConfigIssue::at(
                "max_line_bytes",
                "must be at least 64 bytes",
            ));
        }
        if self.pod_labels.len() > MAX_POD_LABELS {
            return Err(ConfigIssue::at(
                "pod_labels",
                format!(
                    "{} pod labels: at most {MAX_POD_LABELS} (each one multiplies Loki's streams)",
                    self.pod_labels.len()
                ),
            ));
        }
        let mut seen: Vec<String> = Vec::new();
        for (i, key) in self.pod_labels.iter().enumerate() {
            let at = format!("pod_labels.{i}");
            if key.trim().is_empty() {
                return Err(ConfigIssue::at(&at, "an empty pod label name"));
            }
            let name = sanitize_label(key);
            if PATH_LABELS.contains(&name.as_str()) || name == "level" {
                return Err(ConfigIssue::at(
                    &at,
                    format!("{key:?} would replace the {name:?} label every stream has"),
                ));
            }
            if seen.contains(&name) {
                return Err(ConfigIssue::at(
                    &at,
                    format!("{key:?} becomes {name:?}, as an earlier pod label does"),
                ));
            }
            seen.push(name);
        }
        match self.level_from.as_str() {
            "" | "json" | "logfmt" => {}
            other => {
                return Err(ConfigIssue::at(
                    "level_from",
                    format!("{other:?}: use json, logfmt, or leave empty"),
                ))
            }
        }
        self.drop_regexes().map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(url: &str) -> LogsConfig {
        LogsConfig {
            enabled: true,
            loki: LokiConfig {
                url: url.into(),
                ..LokiConfig::default()
            },
            ..LogsConfig::default()
        }
    }

    #[test]
    fn off_needs_nothing_and_on_needs_a_url() {
        assert_eq!(LogsConfig::default().validate(), Ok(()));
        assert_eq!(on("http://loki:3100").validate(), Ok(()));
        let e = on("").validate().unwrap_err();
        assert_eq!(e.path, ["loki", "url"]);
        let e = on("loki:3100").validate().unwrap_err();
        assert!(e.message.contains("http://"), "{e:?}");
        let e = on("http://loki:3100/loki/api/v1/push")
            .validate()
            .unwrap_err();
        assert!(e.message.contains("base URL"), "{e:?}");
        assert_eq!(
            on("http://loki:3100/").push_url(),
            "http://loki:3100/loki/api/v1/push"
        );
    }

    #[test]
    fn clashing_or_too_many_pod_labels_are_refused() {
        let mut c = on("http://l:1");
        c.pod_labels = vec![
            "app.kubernetes.io/name".into(),
            "app_kubernetes_io_name".into(),
        ];
        let e = c.validate().unwrap_err();
        assert_eq!(e.path, ["pod_labels", "1"]);
        c.pod_labels = vec!["namespace".into()];
        assert!(c.validate().unwrap_err().message.contains("namespace"));
        c.pod_labels = (0..9).map(|i| format!("l{i}")).collect();
        assert!(c.validate().unwrap_err().message.contains("at most 8"));
        c.pod_labels = vec![String::new()];
        assert!(c.validate().unwrap_err().message.contains("empty"));
    }

    #[test]
    fn bad_regex_level_and_durations_are_refused() {
        let mut c = on("http://l:1");
        c.drop = vec!["ok".into(), "(".into()];
        assert_eq!(c.validate().unwrap_err().path, ["drop", "1"]);
        let mut c = on("http://l:1");
        c.level_from = "xml".into();
        assert_eq!(c.validate().unwrap_err().path, ["level_from"]);
        let mut c = on("http://l:1");
        c.batch_wait = Duration::from_secs(0);
        assert_eq!(c.validate().unwrap_err().path, ["batch_wait"]);
        let mut c = on("http://l:1");
        c.backoff.max = Duration::from_millis(1);
        assert_eq!(c.validate().unwrap_err().path, ["backoff", "max"]);
    }

    #[test]
    fn sizes_take_units() {
        let c: LogsConfig =
            serde_json::from_str(r#"{"batch_bytes": "2MiB", "max_line_bytes": 1000}"#).unwrap();
        assert_eq!((c.batch_bytes, c.max_line_bytes), (2 << 20, 1000));
        assert_eq!(
            sanitize_label("app.kubernetes.io/name"),
            "app_kubernetes_io_name"
        );
        assert_eq!(sanitize_label("9x"), "_9x");
    }
}
