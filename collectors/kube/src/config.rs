//! The `kubelet:` config section: where the kubelet is and how to authenticate to it.

use eos_module::{ConfigIssue, Duration};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How to reach the node's kubelet and how often to refresh pod metadata.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubeletConfig {
    /// Whether to ask the kubelet at all. Off: rows carry only what the cgroup path tells.
    pub enabled: bool,
    /// The kubelet's pod list, e.g. `https://${NODE_IP}:10250/pods`.
    pub url: String,
    /// Bearer token file (the service account token, re-read on every request as it rotates).
    /// Empty: no `Authorization` header.
    pub token_file: PathBuf,
    /// PEM bundle that signs the kubelet's serving certificate. Empty: the bundled roots are
    /// not used and `insecure_skip_verify` must be set for HTTPS.
    pub ca_file: PathBuf,
    /// Accept any kubelet certificate (common: kubelet serving certs are often self-signed).
    pub insecure_skip_verify: bool,
    /// Give up on one request after this long.
    pub timeout: Duration,
    /// Ask for the pod list this often.
    pub refresh_interval: Duration,
    /// A lookup for an unknown container asks for a refresh, at most this often.
    pub min_refresh_interval: Duration,
    /// Keep a pod that left the list this long, so the last samples of a short-lived
    /// container still carry its names.
    pub grace_period: Duration,
}

impl Default for KubeletConfig {
    fn default() -> Self {
        KubeletConfig {
            enabled: true,
            url: "https://127.0.0.1:10250/pods".into(),
            token_file: "/var/run/secrets/kubernetes.io/serviceaccount/token".into(),
            ca_file: "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt".into(),
            insecure_skip_verify: false,
            timeout: Duration::from_secs(10),
            refresh_interval: Duration::from_secs(30),
            min_refresh_interval: Duration::from_secs(5),
            grace_period: Duration::from_secs(300),
        }
    }
}

impl KubeletConfig {
    /// What the types cannot say: an http(s) URL with a host, and intervals above zero (a
    /// zero refresh interval would ask the kubelet in a busy loop).
    pub fn validate(&self) -> Result<(), ConfigIssue> {
        if !self.enabled {
            return Ok(());
        }
        let rest = self
            .url
            .strip_prefix("https://")
            .or_else(|| self.url.strip_prefix("http://"));
        match rest {
            Some(r) if !r.is_empty() && !r.starts_with(['/', ':']) => {}
            _ => {
                return Err(ConfigIssue::at(
                    "url",
                    format!(
                        "{:?} is not an http(s) URL with a host, e.g. https://127.0.0.1:10250/pods",
                        self.url
                    ),
                ))
            }
        }
        for (key, d) in [
            ("timeout", self.timeout),
            ("refresh_interval", self.refresh_interval),
            ("min_refresh_interval", self.min_refresh_interval),
        ] {
            if d.get().is_zero() {
                return Err(ConfigIssue::at(key, "must be more than 0, e.g. 5s"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c: KubeletConfig = serde_yaml_ng::from_str(
            "url: https://10.0.0.1:10250/pods\ninsecure_skip_verify: true\n",
        )
        .unwrap();
        assert_eq!(c.url, "https://10.0.0.1:10250/pods");
        assert!(c.insecure_skip_verify);
        assert_eq!(c.refresh_interval, Duration::from_secs(30));
        let e = serde_yaml_ng::from_str::<KubeletConfig>("urll: x\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `urll`"), "{e}");
    }

    #[test]
    fn validation() {
        assert_eq!(KubeletConfig::default().validate(), Ok(()));
        let with = |yaml: &str| {
            serde_yaml_ng::from_str::<KubeletConfig>(yaml)
                .unwrap()
                .validate()
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            with("url: 127.0.0.1:10250/pods\n"),
            Err("url: \"127.0.0.1:10250/pods\" is not an http(s) URL with a host, e.g. https://127.0.0.1:10250/pods".into())
        );
        assert!(with("url: 'https:///pods'\n").is_err());
        assert_eq!(
            with("refresh_interval: 0s\n"),
            Err("refresh_interval: must be more than 0, e.g. 5s".into())
        );
        assert_eq!(with("enabled: false\nrefresh_interval: 0s\n"), Ok(()));
        assert_eq!(with("url: http://10.0.0.1:10255/pods\n"), Ok(()));
    }
}
