//! The kubelet's `/pods` answer (a `v1.PodList`), reduced to what metrics and logs need.

use serde::Deserialize;
use std::collections::BTreeMap;

/// One pod as the kubelet reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pod {
    pub uid: String,
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// The controlling owner (e.g. `ReplicaSet`/`web-7d9f`), if any.
    pub owner: Option<Owner>,
    pub containers: Vec<Container>,
}

/// A pod's controlling owner reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub kind: String,
    pub name: String,
}

/// Which list of the pod spec a container comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerKind {
    Init,
    Regular,
    Ephemeral,
}

/// One container of a pod, with every runtime ID it is known under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    pub name: String,
    /// The image the runtime reports (status), else the one in the spec.
    pub image: String,
    pub kind: ContainerKind,
    /// Bare runtime IDs (without `containerd://`): the current one and, after a restart, the
    /// previous one, whose cgroup may still be around.
    pub ids: Vec<String>,
}

/// Strips the runtime scheme from a `containerID` (`containerd://abc` -> `abc`).
pub fn bare_container_id(id: &str) -> &str {
    match id.find("://") {
        Some(i) => &id[i + 3..],
        None => id,
    }
}

/// Parses a `/pods` body.
pub fn parse_pod_list(body: &[u8]) -> Result<Vec<Pod>, String> {
    let list: PodList = serde_json::from_slice(body).map_err(|e| {
        let what = if body.is_empty() { " (empty body)" } else { "" };
        format!("parsing the kubelet pod list{what}: {e}")
    })?;
    if list.kind.as_deref().is_some_and(|k| k != "PodList") {
        return Err(format!(
            "parsing the kubelet pod list: kind is {:?}, expected \"PodList\"",
            list.kind.unwrap_or_default()
        ));
    }
    Ok(list.items.into_iter().filter_map(convert).collect())
}

fn convert(p: RawPod) -> Option<Pod> {
    let uid = p.metadata.uid?;
    let owner = p
        .metadata
        .owner_references
        .into_iter()
        .find(|o| o.controller)
        .map(|o| Owner {
            kind: o.kind,
            name: o.name,
        });
    let mut containers = Vec::new();
    let lists = [
        (
            ContainerKind::Init,
            p.spec.init_containers,
            p.status.init_container_statuses,
        ),
        (
            ContainerKind::Regular,
            p.spec.containers,
            p.status.container_statuses,
        ),
        (
            ContainerKind::Ephemeral,
            p.spec.ephemeral_containers,
            p.status.ephemeral_container_statuses,
        ),
    ];
    for (kind, specs, statuses) in lists {
        for spec in specs {
            let status = statuses.iter().find(|s| s.name == spec.name);
            let mut ids = Vec::new();
            let mut image = spec.image;
            if let Some(s) = status {
                let current = s.container_id.as_deref().map(bare_container_id);
                let last = s
                    .last_state
                    .terminated
                    .as_ref()
                    .and_then(|t| t.container_id.as_deref())
                    .map(bare_container_id);
                ids.extend(
                    current
                        .into_iter()
                        .chain(last)
                        .filter(|i| !i.is_empty())
                        .map(String::from),
                );
                if !s.image.is_empty() {
                    image = s.image.clone();
                }
            }
            containers.push(Container {
                name: spec.name,
                image,
                kind,
                ids,
            });
        }
    }
    Some(Pod {
        uid,
        namespace: p.metadata.namespace,
        name: p.metadata.name,
        labels: p.metadata.labels,
        owner,
        containers,
    })
}

#[derive(Deserialize)]
struct PodList {
    kind: Option<String>,
    #[serde(default)]
    items: Vec<RawPod>,
}

#[derive(Deserialize)]
struct RawPod {
    metadata: Metadata,
    #[serde(default)]
    spec: Spec,
    #[serde(default)]
    status: Status,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
    uid: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    owner_references: Vec<OwnerRef>,
}

#[derive(Deserialize)]
struct OwnerRef {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    controller: bool,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Spec {
    #[serde(default)]
    containers: Vec<SpecContainer>,
    #[serde(default)]
    init_containers: Vec<SpecContainer>,
    #[serde(default)]
    ephemeral_containers: Vec<SpecContainer>,
}

#[derive(Deserialize)]
struct SpecContainer {
    name: String,
    #[serde(default)]
    image: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Status {
    #[serde(default)]
    container_statuses: Vec<ContainerStatus>,
    #[serde(default)]
    init_container_statuses: Vec<ContainerStatus>,
    #[serde(default)]
    ephemeral_container_statuses: Vec<ContainerStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerStatus {
    name: String,
    #[serde(default)]
    image: String,
    #[serde(rename = "containerID")]
    container_id: Option<String>,
    #[serde(default)]
    last_state: LastState,
}

#[derive(Default, Deserialize)]
struct LastState {
    terminated: Option<Terminated>,
}

#[derive(Deserialize)]
struct Terminated {
    #[serde(rename = "containerID")]
    container_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDED: &str = include_str!("../testdata/pods.json");

    #[test]
    fn recorded_pod_list() {
        let pods = parse_pod_list(RECORDED.as_bytes()).unwrap();
        assert_eq!(pods.len(), 4);
        let web = pods.iter().find(|p| p.name.starts_with("web-")).unwrap();
        assert_eq!(web.namespace, "shop");
        assert_eq!(web.uid, "8a2e4c1b-5d6f-4a7b-9c0d-1e2f3a4b5c6d");
        assert_eq!(web.labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(
            web.owner,
            Some(Owner {
                kind: "ReplicaSet".into(),
                name: "web-7d9f8b6c5".into()
            })
        );
        let init = &web.containers[0];
        assert_eq!(
            (init.name.as_str(), init.kind),
            ("migrate", ContainerKind::Init)
        );
        assert_eq!(
            init.ids,
            ["1111111111111111111111111111111111111111111111111111111111111111"]
        );
        let nginx = web.containers.iter().find(|c| c.name == "nginx").unwrap();
        assert_eq!(nginx.image, "docker.io/library/nginx:1.25.3");
        // restarted: current ID first, then the terminated one
        assert_eq!(nginx.ids.len(), 2);
        let waiting = pods.iter().find(|p| p.name == "pending-job").unwrap();
        assert!(waiting.containers[0].ids.is_empty());
        assert_eq!(waiting.containers[0].image, "busybox:1.36");
        let dbg = pods
            .iter()
            .find(|p| p.name == "coredns-5d78c9869d-x2x7q")
            .unwrap();
        assert!(dbg
            .containers
            .iter()
            .any(|c| c.kind == ContainerKind::Ephemeral));
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let e = parse_pod_list(b"").unwrap_err();
        assert!(e.contains("empty body"), "{e}");
        let e = parse_pod_list(b"{\"kind\":\"PodList\",\"items\":[{\"metadata\":").unwrap_err();
        assert!(e.starts_with("parsing the kubelet pod list: "), "{e}");
        let e = parse_pod_list(b"{\"kind\":\"Status\",\"items\":[]}").unwrap_err();
        assert!(e.contains("expected \"PodList\""), "{e}");
        let e = parse_pod_list(b"[1,2]").unwrap_err();
        assert!(e.contains("pod list"), "{e}");
    }

    #[test]
    fn pods_without_uid_are_skipped_and_ids_stripped() {
        let pods = parse_pod_list(br#"{"items":[{"metadata":{"name":"x"}},{"metadata":{"uid":"u"},
            "spec":{"containers":[{"name":"c"}]},
            "status":{"containerStatuses":[{"name":"c","containerID":"cri-o://abc","image":"i"}]}}]}"#)
        .unwrap();
        assert_eq!(pods.len(), 1);
        assert_eq!(pods[0].containers[0].ids, ["abc"]);
        assert_eq!(bare_container_id("docker://d"), "d");
        assert_eq!(bare_container_id("plain"), "plain");
    }
}
