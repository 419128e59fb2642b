//! Finding the kubelet's cgroups: `kubepods`, QoS classes, pods and containers, under both
//! kubelet cgroup drivers (systemd slices and cgroupfs).

use std::path::Path;

/// The container runtime, as told by a cgroup name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runtime {
    Containerd,
    Crio,
    Docker,
    /// A bare ID (cgroupfs driver with containerd or docker).
    Unknown,
}

/// What a cgroup is in the kubelet's tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The hierarchy's root (`id="/"`): the whole node.
    Root,
    Kubepods,
    Qos,
    Pod {
        uid: String,
    },
    Container {
        uid: String,
        id: String,
        runtime: Runtime,
    },
}

/// One cgroup to report, by its path relative to the hierarchy root (the `id` label).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    pub path: String,
    pub kind: Kind,
}

/// Returns the root cgroup and every cgroup under `<root><kubelet_root>/kubepods[.slice]`,
/// parents before children. A missing tree gives only the root (no pods yet); unreadable
/// directories are skipped.
pub fn walk(root: &Path, kubelet_root: &str, out: &mut Vec<Cgroup>) {
    out.clear();
    out.push(Cgroup {
        path: "/".into(),
        kind: Kind::Root,
    });
    let base = kubelet_root.trim_end_matches('/');
    for top in ["kubepods.slice", "kubepods"] {
        let rel = format!("{base}/{top}");
        if !root.join(rel.trim_start_matches('/')).is_dir() {
            continue;
        }
        out.push(Cgroup {
            path: rel.clone(),
            kind: Kind::Kubepods,
        });
        for (name, path) in children(root, &rel) {
            if let Some(uid) = pod_uid(&name) {
                pod(root, path, uid, out);
            } else if is_qos(&name) {
                out.push(Cgroup {
                    path: path.clone(),
                    kind: Kind::Qos,
                });
                for (name, path) in children(root, &path) {
                    if let Some(uid) = pod_uid(&name) {
                        pod(root, path, uid, out);
                    }
                }
            }
        }
    }
}

fn pod(root: &Path, path: String, uid: String, out: &mut Vec<Cgroup>) {
    let kids = children(root, &path);
    out.push(Cgroup {
        path,
        kind: Kind::Pod { uid: uid.clone() },
    });
    for (name, path) in kids {
        if let Some((id, runtime)) = container_id(&name) {
            out.push(Cgroup {
                path,
                kind: Kind::Container {
                    uid: uid.clone(),
                    id: id.to_string(),
                    runtime,
                },
            });
        }
    }
}

/// Subdirectories of a cgroup, sorted by name so output order is stable.
fn children(root: &Path, rel: &str) -> Vec<(String, String)> {
    let Ok(rd) = std::fs::read_dir(root.join(rel.trim_start_matches('/'))) else {
        return Vec::new();
    };
    let mut v: Vec<(String, String)> = rd
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .map(|n| {
            let p = format!("{rel}/{n}");
            (n, p)
        })
        .collect();
    v.sort();
    v
}

fn is_qos(name: &str) -> bool {
    matches!(
        name,
        "besteffort" | "burstable" | "kubepods-besteffort.slice" | "kubepods-burstable.slice"
    )
}

/// `pod<uid>` (cgroupfs) or `kubepods[-<qos>]-pod<uid_with_underscores>.slice` (systemd).
pub fn pod_uid(name: &str) -> Option<String> {
    if let Some(uid) = name.strip_prefix("pod") {
        return is_uid(uid).then(|| uid.to_string());
    }
    let rest = name.strip_prefix("kubepods-")?.strip_suffix(".slice")?;
    let rest = rest
        .strip_prefix("besteffort-")
        .or_else(|| rest.strip_prefix("burstable-"))
        .unwrap_or(rest);
    let uid = rest.strip_prefix("pod")?.replace('_', "-");
    is_uid(&uid).then_some(uid)
}

fn is_uid(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
}

/// The runtime ID in a container cgroup name; `None` for anything else, including cri-o's
/// `crio-conmon-<id>.scope` monitor.
pub fn container_id(name: &str) -> Option<(&str, Runtime)> {
    let (id, runtime) = if let Some(scope) = name.strip_suffix(".scope") {
        if scope.starts_with("crio-conmon-") {
            return None;
        }
        if let Some(id) = scope.strip_prefix("cri-containerd-") {
            (id, Runtime::Containerd)
        } else if let Some(id) = scope.strip_prefix("crio-") {
            (id, Runtime::Crio)
        } else if let Some(id) = scope.strip_prefix("docker-") {
            (id, Runtime::Docker)
        } else {
            return None;
        }
    } else if let Some(id) = name.strip_prefix("crio-") {
        if id.starts_with("conmon-") {
            return None;
        }
        (id, Runtime::Crio)
    } else {
        (name, Runtime::Unknown)
    };
    (id.len() >= 12 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some((id, runtime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        assert_eq!(
            pod_uid("kubepods-burstable-pod8a2e4c1b_5d6f_4a7b_9c0d_1e2f3a4b5c6d.slice").as_deref(),
            Some("8a2e4c1b-5d6f-4a7b-9c0d-1e2f3a4b5c6d")
        );
        assert_eq!(
            pod_uid("kubepods-pod1f0e_2d.slice").as_deref(),
            Some("1f0e-2d")
        );
        assert_eq!(
            pod_uid("pod33333333-aaaa").as_deref(),
            Some("33333333-aaaa")
        );
        assert_eq!(pod_uid("kubepods-burstable.slice"), None);
        assert_eq!(pod_uid("podx"), None);
        assert_eq!(
            container_id(&format!("cri-containerd-{id}.scope")),
            Some((id, Runtime::Containerd))
        );
        assert_eq!(
            container_id(&format!("crio-{id}.scope")),
            Some((id, Runtime::Crio))
        );
        assert_eq!(
            container_id(&format!("docker-{id}.scope")),
            Some((id, Runtime::Docker))
        );
        assert_eq!(container_id(&format!("crio-conmon-{id}.scope")), None);
        assert_eq!(container_id(&format!("crio-conmon-{id}")), None);
        assert_eq!(
            container_id(&format!("crio-{id}")),
            Some((id, Runtime::Crio))
        );
        assert_eq!(container_id(id), Some((id, Runtime::Unknown)));
        assert_eq!(container_id("init.scope"), None);
        assert_eq!(container_id("cri-containerd-xyz.scope"), None);
    }
}
