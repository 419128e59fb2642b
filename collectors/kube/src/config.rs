//! The `kubelet:` config section: where the kubelet is and how to authenticate to it.

use eos_module::Duration;
use serde::Deserialize;
use std::path::PathBuf;

/// How to reach the node's kubelet and how often to refresh pod metadata.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
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
}
