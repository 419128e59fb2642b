//! The `modules.containers` config section.

use eos_kube::KubeletConfig;
use eos_module::{ConfigIssue, Duration, ModuleConfig};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `modules.containers`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainersConfig {
    pub enabled: bool,
    /// Deprecated: the kubelet is the agent's top-level `kubelet:` section now, shared with
    /// the other modules. The agent moves this one there (with a warning) when it is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kubelet: Option<KubeletConfig>,
    /// Read the cgroups this often and serve the samples with their timestamps, as the kubelet
    /// does. `0`: read at every scrape instead.
    pub housekeeping_interval: Duration,
    /// Re-read limits and shares (which rarely change) every this many rounds.
    pub spec_every: u32,
    /// The cgroup filesystem root, e.g. `/host/sys/fs/cgroup`. Default: found from the mounts
    /// under the host sysfs. A directory with `cgroup.controllers` is read as cgroup v2,
    /// otherwise as v1 with one directory per controller.
    pub cgroup_root: Option<PathBuf>,
    /// The kubelet's `--cgroup-root`: where `kubepods` (or `kubepods.slice`) lives.
    pub kubelet_cgroup_root: String,
    /// Pod labels to add to every row of a pod as `label_<name>` (off when empty).
    pub pod_labels: Vec<String>,
    /// Add `workload_kind` and `workload` (Deployment, StatefulSet, DaemonSet, Job, ...).
    pub workload_labels: bool,
}

impl Default for ContainersConfig {
    fn default() -> Self {
        ContainersConfig {
            enabled: true,
            kubelet: None,
            housekeeping_interval: Duration::from_secs(10),
            spec_every: 6,
            cgroup_root: None,
            kubelet_cgroup_root: "/".into(),
            pod_labels: Vec::new(),
            workload_labels: false,
        }
    }
}

/// The shortest housekeeping interval: a round reads every cgroup's files (about 80 ms of CPU
/// for 500 containers), so more often than this costs a core for nothing.
pub const MIN_HOUSEKEEPING: std::time::Duration = std::time::Duration::from_secs(1);

impl ModuleConfig for ContainersConfig {
    fn enabled(&self) -> bool {
        self.enabled
    }

    /// Pod label names become `label_<sanitised name>` on every row: an empty name, or two
    /// names that sanitise to the same label, would write a label name twice and make
    /// Prometheus drop the whole scrape.
    fn validate(&self) -> Result<(), ConfigIssue> {
        let every = self.housekeeping_interval.get();
        if !every.is_zero() && every < MIN_HOUSEKEEPING {
            return Err(ConfigIssue::at(
                "housekeeping_interval",
                format!(
                    "{} is too often (a round reads every cgroup's files); use at least 1s, or 0 to read at scrape time",
                    self.housekeeping_interval
                ),
            ));
        }
        if self.spec_every == 0 {
            return Err(ConfigIssue::at("spec_every", "must be at least 1"));
        }
        let mut seen: Vec<(String, &str)> = Vec::new();
        for name in &self.pod_labels {
            if name.is_empty() {
                return Err(ConfigIssue::at("pod_labels", "an empty pod label name"));
            }
            let label = format!("label_{}", eos_exposition::sanitize_name(name));
            if let Some((_, first)) = seen.iter().find(|(l, _)| *l == label) {
                return Err(ConfigIssue::at(
                    "pod_labels",
                    format!("{first:?} and {name:?} both become the label {label}; keep one"),
                ));
            }
            seen.push((label, name));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn section() {
        let c: ContainersConfig = serde_yaml_ng::from_str(
            "enabled: true\nhousekeeping_interval: 0\nkubelet:\n  insecure_skip_verify: true\npod_labels: [app]\n",
        )
        .unwrap();
        assert_eq!(c.housekeeping_interval, Duration::default());
        assert!(c.kubelet.as_ref().is_some_and(|k| k.insecure_skip_verify));
        assert_eq!(c.pod_labels, ["app"]);
        assert_eq!(c.kubelet_cgroup_root, "/");
        let e = serde_yaml_ng::from_str::<ContainersConfig>("cgroup_rot: /x\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `cgroup_rot`"), "{e}");
    }

    #[test]
    fn pod_labels_must_stay_distinct_label_names() {
        let with = |labels: &[&str]| ContainersConfig {
            pod_labels: labels.iter().map(|s| s.to_string()).collect(),
            ..ContainersConfig::default()
        };
        assert_eq!(with(&["app", "app.kubernetes.io/name"]).validate(), Ok(()));
        let e = with(&["app.kubernetes.io/name", "app_kubernetes_io_name"])
            .validate()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "pod_labels: \"app.kubernetes.io/name\" and \"app_kubernetes_io_name\" both become the label label_app_kubernetes_io_name; keep one"
        );
        let e = with(&["app", ""]).validate().unwrap_err();
        assert_eq!(e.to_string(), "pod_labels: an empty pod label name");
        let fast: ContainersConfig =
            serde_yaml_ng::from_str("housekeeping_interval: 1ms\n").unwrap();
        assert_eq!(
            fast.validate().unwrap_err().to_string(),
            "housekeeping_interval: 1ms is too often (a round reads every cgroup's files); use at least 1s, or 0 to read at scrape time"
        );
        let off: ContainersConfig = serde_yaml_ng::from_str("housekeeping_interval: 0s\n").unwrap();
        assert_eq!(off.validate(), Ok(()));
    }
}
