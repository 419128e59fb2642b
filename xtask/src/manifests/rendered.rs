//! Cross-checks of a rendered (`kustomize build`) stack: what one object names, another
//! provides (namespaces, ServiceAccounts, ConfigMaps, volumes, Service selectors and ports,
//! Prometheus shards), and the agent DaemonSet once more.

use super::agent::{check_agent_daemonset, is_agent_daemonset};
use super::kustomize::required_fields;
use super::yaml::{get, get_str, seq};
use eos_testkit::Description;
use serde_yaml_ng::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Kinds that live outside namespaces.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "PriorityClass",
    "StorageClass",
    "PersistentVolume",
    "CustomResourceDefinition",
];

/// Cross-checks of a rendered stack: what one object names, another provides.
pub(super) fn check_rendered(docs: &[Value], agent: Option<&Description>) -> Vec<String> {
    let mut errors = Vec::new();
    let mut by_kind: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for d in docs {
        for e in required_fields(d) {
            errors.push(format!("{e} in {d:?}"));
        }
        let kind = get_str(d, &["kind"]).unwrap_or("");
        let name = get_str(d, &["metadata", "name"]).unwrap_or("");
        by_kind.entry(kind).or_default().insert(name);
        let ns = get_str(d, &["metadata", "namespace"]);
        if CLUSTER_SCOPED.contains(&kind) {
            if ns.is_some() {
                errors.push(format!(
                    "{kind} {name} is cluster-scoped but has a namespace"
                ));
            }
        } else if ns.is_none() {
            errors.push(format!("{kind} {name} has no namespace"));
        }
    }
    let has = |kind: &str, name: &str| by_kind.get(kind).is_some_and(|s| s.contains(name));
    let workloads: Vec<&Value> = docs
        .iter()
        .filter(|d| {
            matches!(
                get_str(d, &["kind"]),
                Some("Deployment" | "StatefulSet" | "DaemonSet")
            )
        })
        .collect();
    for w in &workloads {
        let wname = format!(
            "{} {}",
            get_str(w, &["kind"]).unwrap_or(""),
            get_str(w, &["metadata", "name"]).unwrap_or("")
        );
        let pod = get(w, &["spec", "template", "spec"]).unwrap_or(&Value::Null);
        if let Some(sa) = get_str(pod, &["serviceAccountName"]) {
            if !has("ServiceAccount", sa) {
                errors.push(format!("{wname}: ServiceAccount {sa} is not in the build"));
            }
        }
        for v in seq(pod.get("volumes")) {
            if let Some(cm) = get_str(v, &["configMap", "name"]) {
                let optional =
                    get(v, &["configMap", "optional"]).and_then(Value::as_bool) == Some(true);
                if !optional && !has("ConfigMap", cm) {
                    errors.push(format!("{wname}: ConfigMap {cm} is not in the build"));
                }
            }
        }
        // Every mount names a volume of the pod or a claim template of the StatefulSet.
        let mut volume_names: BTreeSet<&str> = seq(pod.get("volumes"))
            .iter()
            .filter_map(|v| get_str(v, &["name"]))
            .collect();
        volume_names.extend(
            seq(get(w, &["spec", "volumeClaimTemplates"]))
                .iter()
                .filter_map(|v| get_str(v, &["metadata", "name"])),
        );
        for c in seq(pod.get("containers"))
            .iter()
            .chain(seq(pod.get("initContainers")))
        {
            for m in seq(c.get("volumeMounts")) {
                let vname = get_str(m, &["name"]).unwrap_or("");
                if !volume_names.contains(vname) {
                    errors.push(format!(
                        "{wname}: container {} mounts volume {vname:?}, which the pod does not have",
                        get_str(c, &["name"]).unwrap_or("?")
                    ));
                }
            }
        }
        let selector = get(w, &["spec", "selector", "matchLabels"]);
        let labels = get(w, &["spec", "template", "metadata", "labels"]);
        if !labels_match(selector, labels) {
            errors.push(format!(
                "{wname}: selector does not match its pod template labels"
            ));
        }
        if let Some(agent) = agent.filter(|_| is_agent_daemonset(w)) {
            errors.extend(
                check_agent_daemonset(w, agent)
                    .into_iter()
                    .map(|e| format!("{wname}: {e}")),
            );
        }
    }
    errors.extend(check_shard_count(docs));
    for s in docs
        .iter()
        .filter(|d| get_str(d, &["kind"]) == Some("Service"))
    {
        let name = get_str(s, &["metadata", "name"]).unwrap_or("");
        let selector = get(s, &["spec", "selector"]);
        if selector.is_none() {
            continue;
        }
        let matched: Vec<&&Value> = workloads
            .iter()
            .filter(|w| {
                labels_match(
                    selector,
                    get(w, &["spec", "template", "metadata", "labels"]),
                )
            })
            .collect();
        if matched.is_empty() {
            errors.push(format!("Service {name}: selector matches no workload"));
            continue;
        }
        // Named target ports must exist on the selected pods.
        for p in seq(get(s, &["spec", "ports"])) {
            if let Some(tp) = get_str(p, &["targetPort"]) {
                let found = matched.iter().any(|w| {
                    seq(get(w, &["spec", "template", "spec", "containers"]))
                        .iter()
                        .flat_map(|c| seq(c.get("ports")))
                        .any(|cp| get_str(cp, &["name"]) == Some(tp))
                });
                if !found {
                    errors.push(format!(
                        "Service {name}: targetPort {tp} is no container port name"
                    ));
                }
            }
        }
    }
    errors
}

/// A sharded Prometheus (`hashmod` relabelling) must have as many replicas as its modulus, or
/// some targets are scraped by no replica.
fn check_shard_count(docs: &[Value]) -> Vec<String> {
    let replicas = docs
        .iter()
        .find(|d| {
            get_str(d, &["kind"]) == Some("StatefulSet")
                && get_str(d, &["metadata", "name"]) == Some("prometheus")
        })
        .map(|d| {
            get(d, &["spec", "replicas"])
                .and_then(Value::as_u64)
                .unwrap_or(1)
        });
    let mut errors = Vec::new();
    for cm in docs
        .iter()
        .filter(|d| get_str(d, &["kind"]) == Some("ConfigMap"))
    {
        let Some(text) = get_str(cm, &["data", "prometheus.yml"]) else {
            continue;
        };
        let name = get_str(cm, &["metadata", "name"]).unwrap_or("");
        let cfg: Value = match serde_yaml_ng::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                errors.push(format!("ConfigMap {name} prometheus.yml: {e}"));
                continue;
            }
        };
        for job in seq(cfg.get("scrape_configs")) {
            let jname = get_str(job, &["job_name"]).unwrap_or("?");
            for r in seq(job.get("relabel_configs")) {
                if get_str(r, &["action"]) != Some("hashmod") {
                    continue;
                }
                let modulus = get(r, &["modulus"]).and_then(Value::as_u64);
                if modulus != replicas {
                    errors.push(format!(
                        "ConfigMap {name} job {jname}: hashmod modulus {modulus:?} but StatefulSet prometheus has {replicas:?} replicas"
                    ));
                }
            }
        }
    }
    errors
}

/// Whether every selector label is among `labels`.
fn labels_match(selector: Option<&Value>, labels: Option<&Value>) -> bool {
    let Some(sel) = selector.and_then(Value::as_mapping) else {
        return false;
    };
    !sel.is_empty()
        && sel
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::super::yaml::parse_yaml_docs;
    use super::*;

    #[test]
    fn rendered_cross_references() {
        let docs = parse_yaml_docs(
            r#"
apiVersion: v1
kind: Service
metadata: {name: web, namespace: eos}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: http}]}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: eos}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      serviceAccountName: web
      containers: [{name: web, ports: [{name: metrics, containerPort: 80}], volumeMounts: [{name: c, mountPath: /c}, {name: nope, mountPath: /n}]}]
      volumes: [{name: c, configMap: {name: missing}}, {name: o, configMap: {name: gone, optional: true}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: r}
"#,
        )
        .expect("fixture parses");
        let e = check_rendered(&docs, None);
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e.iter().any(|x| x.contains("volume \"nope\"")));
        assert!(e.iter().any(|x| x.contains("ServiceAccount web")));
        assert!(e.iter().any(|x| x.contains("ConfigMap missing")));
        assert!(e.iter().any(|x| x.contains("targetPort http")));
    }

    #[test]
    fn shard_count_must_match_replicas() {
        let docs = |replicas: u32| {
            parse_yaml_docs(&format!(
                r#"
kind: StatefulSet
metadata: {{name: prometheus}}
spec: {{replicas: {replicas}}}
---
kind: ConfigMap
metadata: {{name: prometheus-config}}
data:
  prometheus.yml: |
    scrape_configs:
      - job_name: a
        relabel_configs:
          - {{source_labels: [__address__], modulus: 8, target_label: __tmp_hash, action: hashmod}}
"#
            ))
            .expect("fixture parses")
        };
        assert_eq!(check_shard_count(&docs(8)), Vec::<String>::new());
        assert_eq!(check_shard_count(&docs(4)).len(), 1);
    }
}
