//! The pod cache: pods by UID and containers by runtime ID, with deleted pods kept for a
//! grace period. A cache is immutable once built; a refresh builds the next one.

use crate::podlist::{Container, Pod};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A snapshot of the node's pods.
#[derive(Debug, Default)]
pub struct PodCache {
    pods: HashMap<String, Entry>,
    containers: HashMap<String, (Arc<Pod>, usize)>,
    generation: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    pod: Arc<Pod>,
    /// When the pod was first missing from the kubelet's list; `None` while it is listed.
    gone_since: Option<Instant>,
}

/// A container found by runtime ID, with its pod.
#[derive(Clone, Copy, Debug)]
pub struct ContainerRef<'a> {
    pub pod: &'a Arc<Pod>,
    pub container: &'a Container,
}

impl PodCache {
    /// The next cache after a successful list: listed pods replace their old entries, pods no
    /// longer listed are kept until `grace` has passed since they disappeared.
    pub fn next(&self, listed: Vec<Pod>, now: Instant, grace: Duration) -> PodCache {
        let mut pods: HashMap<String, Entry> = HashMap::with_capacity(listed.len());
        let mut changed = false;
        for pod in listed {
            let entry = match self.pods.get(&pod.uid) {
                Some(old) if *old.pod == pod && old.gone_since.is_none() => old.clone(),
                _ => {
                    changed = true;
                    Entry {
                        pod: Arc::new(pod),
                        gone_since: None,
                    }
                }
            };
            pods.insert(entry.pod.uid.clone(), entry);
        }
        for (uid, old) in &self.pods {
            if pods.contains_key(uid) {
                continue;
            }
            let since = old.gone_since.unwrap_or(now);
            changed |= old.gone_since.is_none();
            if now.saturating_duration_since(since) < grace {
                pods.insert(
                    uid.clone(),
                    Entry {
                        pod: old.pod.clone(),
                        gone_since: Some(since),
                    },
                );
            } else {
                changed = true;
            }
        }
        let mut containers = HashMap::new();
        for e in pods.values() {
            for (i, c) in e.pod.containers.iter().enumerate() {
                for id in &c.ids {
                    // a listed pod wins over a deleted one holding the same ID
                    let keep_old = containers
                        .get(id)
                        .is_some_and(|(p, _): &(Arc<Pod>, usize)| {
                            pods.get(&p.uid).is_some_and(|o| o.gone_since.is_none())
                        });
                    if !keep_old {
                        containers.insert(id.clone(), (e.pod.clone(), i));
                    }
                }
            }
        }
        PodCache {
            pods,
            containers,
            generation: self.generation + u64::from(changed),
        }
    }

    /// The pod with this UID (listed or within its grace period).
    pub fn pod(&self, uid: &str) -> Option<&Arc<Pod>> {
        self.pods.get(uid).map(|e| &e.pod)
    }

    /// The container with this bare runtime ID.
    pub fn container(&self, id: &str) -> Option<ContainerRef<'_>> {
        let (pod, i) = self.containers.get(id)?;
        Some(ContainerRef {
            pod,
            container: pod.containers.get(*i)?,
        })
    }

    /// Pods held, including deleted ones within their grace period.
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    /// Whether no pod is held.
    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    /// Grows by one whenever a refresh changed what the cache holds, so users can keep
    /// derived data (label sets) until it moves.
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::podlist::ContainerKind;

    fn pod(uid: &str, ids: &[&str]) -> Pod {
        Pod {
            uid: uid.into(),
            namespace: "ns".into(),
            name: format!("pod-{uid}"),
            labels: Default::default(),
            owner: None,
            containers: vec![Container {
                name: "c".into(),
                image: "img".into(),
                kind: ContainerKind::Regular,
                ids: ids.iter().map(|s| s.to_string()).collect(),
            }],
        }
    }

    #[test]
    fn deleted_pods_stay_for_the_grace_period() {
        let t0 = Instant::now();
        let grace = Duration::from_secs(60);
        let c1 = PodCache::default().next(vec![pod("a", &["x"]), pod("b", &["y"])], t0, grace);
        assert_eq!(c1.generation(), 1);
        assert_eq!(c1.container("y").unwrap().pod.uid, "b");
        let c2 = c1.next(vec![pod("a", &["x"])], t0 + Duration::from_secs(10), grace);
        assert_eq!(c2.generation(), 2);
        assert_eq!(
            c2.container("y").unwrap().pod.name,
            "pod-b",
            "kept while in grace"
        );
        let c3 = c2.next(vec![pod("a", &["x"])], t0 + Duration::from_secs(50), grace);
        assert_eq!(c3.generation(), 2, "nothing changed");
        assert!(c3.pod("b").is_some());
        let c4 = c3.next(vec![pod("a", &["x"])], t0 + Duration::from_secs(71), grace);
        assert!(c4.pod("b").is_none(), "grace counted from disappearance");
        assert!(c4.container("y").is_none());
        assert_eq!(c4.generation(), 3);
        assert_eq!(c4.len(), 1);
    }

    #[test]
    fn a_pod_coming_back_is_live_again() {
        let t0 = Instant::now();
        let grace = Duration::from_secs(60);
        let c = PodCache::default()
            .next(vec![pod("a", &["x"])], t0, grace)
            .next(vec![], t0, grace)
            .next(vec![pod("a", &["x"])], t0 + Duration::from_secs(100), grace);
        assert!(c.pod("a").is_some());
        let c = c.next(vec![], t0 + Duration::from_secs(101), grace);
        assert!(c.pod("a").is_some(), "new grace period after it came back");
    }

    #[test]
    fn live_pod_wins_an_id_clash() {
        let t0 = Instant::now();
        let grace = Duration::from_secs(60);
        let c = PodCache::default()
            .next(vec![pod("old", &["x"])], t0, grace)
            .next(vec![pod("new", &["x"])], t0, grace);
        assert_eq!(c.container("x").unwrap().pod.uid, "new");
        assert!(c.container("nope").is_none());
    }
}
