//! The `modules.containers` config section.

use eos_kube::KubeletConfig;
use eos_module::{Duration, ModuleConfig};
use serde::Deserialize;
use std::path::PathBuf;

/// `modules.containers`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContainersConfig {
    pub enabled: bool,
    /// Where pod names, container names and images come from.
    pub kubelet: KubeletConfig,
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
            kubelet: KubeletConfig::default(),
            housekeeping_interval: Duration::from_secs(10),
            spec_every: 6,
            cgroup_root: None,
            kubelet_cgroup_root: "/".into(),
            pod_labels: Vec::new(),
            workload_labels: false,
        }
    }
}

impl ModuleConfig for ContainersConfig {
    fn enabled(&self) -> bool {
        self.enabled
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
        assert!(c.kubelet.insecure_skip_verify);
        assert_eq!(c.pod_labels, ["app"]);
        assert_eq!(c.kubelet_cgroup_root, "/");
        let e = serde_yaml_ng::from_str::<ContainersConfig>("cgroup_rot: /x\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `cgroup_rot`"), "{e}");
    }
}
