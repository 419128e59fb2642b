//! Targets from Kubernetes Services annotated `eos.io/probe: "<module>"` (the annotation is
//! configurable). Off by default. The Service list is read from the API server with the
//! agent's service account (it needs `list` on `services`) and read again every
//! `discovery.interval`; targets that appear start probing, targets that go away stop.
//!
//! The target is built from the Service: `http(s)://<name>.<namespace>.svc:<port><path>` for
//! an http module, `<name>.<namespace>.svc:<port>` for tcp, `<name>.<namespace>.svc` for icmp
//! and dns. Optional annotations: `eos.io/probe-port` (a port name or number; default the
//! first port), `eos.io/probe-path` (http, default `/`), `eos.io/probe-scheme` (`https`).

use crate::config::{BlackboxModule, DiscoveryConfig, ScheduledTarget};
use crate::module::Shared;
use crate::schedule::{spawn_target, Key};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

#[derive(Deserialize)]
struct ServiceList {
    #[serde(default)]
    items: Vec<Service>,
}

#[derive(Deserialize)]
struct Service {
    metadata: Meta,
    #[serde(default)]
    spec: Spec,
}

#[derive(Deserialize)]
struct Meta {
    name: String,
    namespace: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
struct Spec {
    #[serde(default)]
    ports: Vec<Port>,
}

#[derive(Deserialize)]
struct Port {
    #[serde(default)]
    name: String,
    port: u16,
}

/// The targets a Service list asks for, sorted; Services naming an unknown module or a port
/// they do not have are skipped with the reason.
pub fn targets(
    body: &[u8],
    cfg: &DiscoveryConfig,
    modules: &BTreeMap<String, BlackboxModule>,
) -> Result<(Vec<ScheduledTarget>, Vec<String>), String> {
    let list: ServiceList =
        serde_json::from_slice(body).map_err(|e| format!("not a ServiceList: {e}"))?;
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let prefix = cfg
        .annotation
        .rsplit_once('/')
        .map_or(String::new(), |(p, _)| format!("{p}/"));
    for s in list.items {
        let Some(module) = s.metadata.annotations.get(&cfg.annotation) else {
            continue;
        };
        let id = format!("{}/{}", s.metadata.namespace, s.metadata.name);
        let Some(m) = modules.get(module) else {
            skipped.push(format!("{id}: unknown module {module:?}"));
            continue;
        };
        let annotation = |k: &str| s.metadata.annotations.get(&format!("{prefix}{k}"));
        let port = match annotation("probe-port") {
            Some(want) => s
                .spec
                .ports
                .iter()
                .find(|p| p.name == *want || p.port.to_string() == *want)
                .map(|p| p.port),
            None => s.spec.ports.first().map(|p| p.port),
        };
        let host = format!("{}.{}.svc", s.metadata.name, s.metadata.namespace);
        let target = match m.prober.as_str() {
            "http" => {
                let Some(port) = port else {
                    skipped.push(format!("{id}: no such port"));
                    continue;
                };
                let scheme = annotation("probe-scheme").map_or("http", String::as_str);
                let path = annotation("probe-path").map_or("/", String::as_str);
                format!("{scheme}://{host}:{port}{path}")
            }
            "tcp" => {
                let Some(port) = port else {
                    skipped.push(format!("{id}: no such port"));
                    continue;
                };
                format!("{host}:{port}")
            }
            _ => host,
        };
        let mut labels = BTreeMap::new();
        labels.insert(
            "service_namespace".to_string(),
            s.metadata.namespace.clone(),
        );
        labels.insert("service".to_string(), s.metadata.name.clone());
        out.push(ScheduledTarget {
            target,
            module: module.clone(),
            interval: cfg.probe_interval,
            labels,
        });
    }
    out.sort_by(|a, b| (&a.target, &a.module).cmp(&(&b.target, &b.module)));
    Ok((out, skipped))
}

/// The API server's Service list URL.
fn url(cfg: &DiscoveryConfig) -> Result<String, String> {
    let base = if cfg.api_server.is_empty() {
        let host = std::env::var("KUBERNETES_SERVICE_HOST")
            .map_err(|_| "discovery.api_server is empty and KUBERNETES_SERVICE_HOST is not set (not in a pod?)".to_string())?;
        let port = std::env::var("KUBERNETES_SERVICE_PORT").unwrap_or_else(|_| "443".into());
        if host.contains(':') {
            format!("https://[{host}]:{port}")
        } else {
            format!("https://{host}:{port}")
        }
    } else {
        cfg.api_server.trim_end_matches('/').to_string()
    };
    Ok(format!("{base}/api/v1/services"))
}

/// Lists the Services once.
async fn list(client: &eos_http::Client, cfg: &DiscoveryConfig) -> Result<Vec<u8>, String> {
    let url = url(cfg)?;
    let mut req = eos_http::Request::get(&url).header(
        eos_http::header::ACCEPT,
        eos_http::header::HeaderValue::from_static("application/json"),
    );
    if !cfg.token_file.as_os_str().is_empty() {
        let token = std::fs::read_to_string(&cfg.token_file)
            .map_err(|e| format!("reading {}: {e}", cfg.token_file.display()))?;
        req = req.header(
            eos_http::header::AUTHORIZATION,
            eos_http::bearer_auth(token.trim())?,
        );
    }
    if url.starts_with("https://") {
        let tls = eos_http::TlsConfig {
            ca_file: cfg.ca_file.clone(),
            ..eos_http::TlsConfig::default()
        };
        req.tls = Some(tls.build()?);
    }
    req.timeout = std::time::Duration::from_secs(30);
    req.max_response_bytes = 64 << 20;
    let resp = client.send(req).await.map_err(|e| e.to_string())?;
    if !resp.is_success() {
        return Err(format!(
            "GET {url}: HTTP {}: {}",
            resp.status,
            resp.body_snippet(200)
        ));
    }
    Ok(resp.body.to_vec())
}

/// What discovery last did, for the status page.
#[derive(Clone, Debug, Default)]
pub struct DiscoveryStatus {
    pub targets: usize,
    pub error: Option<String>,
    pub skipped: Vec<String>,
}

/// Lists Services every `interval` and keeps one scheduled task per discovered target.
pub async fn run(shared: Arc<Shared>, tasks: eos_module::Tasks, node: String) {
    let cfg = shared.cfg.discovery.clone();
    let mut running: HashMap<Key, tokio_util::sync::CancellationToken> = HashMap::new();
    let mut tick = tokio::time::interval(cfg.interval.get());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let modules = shared.modules.current();
        let found = match list(&shared.env.http, &cfg).await {
            Ok(body) => targets(&body, &cfg, &modules),
            Err(e) => Err(e),
        };
        let (wanted, skipped) = match found {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!("probe: Service discovery: {e}");
                shared.set_discovery(DiscoveryStatus {
                    targets: running.len(),
                    error: Some(e),
                    skipped: Vec::new(),
                });
                continue;
            }
        };
        let keys: Vec<Key> = wanted
            .iter()
            .map(|t| Key {
                target: t.target.clone(),
                module: t.module.clone(),
            })
            .collect();
        running.retain(|k, token| {
            let keep = keys.contains(k);
            if !keep {
                token.cancel();
                shared.results.remove(k);
            }
            keep
        });
        for (key, t) in keys.into_iter().zip(wanted) {
            running
                .entry(key)
                .or_insert_with(|| spawn_target(&shared, &tasks, &node, t));
        }
        shared.set_discovery(DiscoveryStatus {
            targets: running.len(),
            error: None,
            skipped,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = r#"{"kind":"ServiceList","apiVersion":"v1","items":[
      {"metadata":{"name":"web","namespace":"shop","annotations":{"eos.io/probe":"http_2xx","eos.io/probe-path":"/healthz","eos.io/probe-port":"http"}},
       "spec":{"ports":[{"name":"metrics","port":9000},{"name":"http","port":8080}]}},
      {"metadata":{"name":"db","namespace":"shop","annotations":{"eos.io/probe":"tcp_connect"}},"spec":{"ports":[{"port":5432}]}},
      {"metadata":{"name":"quiet","namespace":"shop"},"spec":{"ports":[{"port":1}]}},
      {"metadata":{"name":"odd","namespace":"shop","annotations":{"eos.io/probe":"nope"}},"spec":{}},
      {"metadata":{"name":"gw","namespace":"net","annotations":{"eos.io/probe":"icmp"}},"spec":{"ports":[{"port":1}]}}
    ]}"#;

    #[test]
    fn services_become_targets() {
        let modules = crate::config::ProbeConfig::default().modules;
        let (t, skipped) = targets(LIST.as_bytes(), &DiscoveryConfig::default(), &modules).unwrap();
        let got: Vec<(&str, &str)> = t
            .iter()
            .map(|t| (t.target.as_str(), t.module.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("db.shop.svc:5432", "tcp_connect"),
                ("gw.net.svc", "icmp"),
                ("http://web.shop.svc:8080/healthz", "http_2xx"),
            ]
        );
        assert_eq!(t[0].labels["service"], "db");
        assert_eq!(skipped, ["shop/odd: unknown module \"nope\""]);
        assert!(targets(b"{", &DiscoveryConfig::default(), &modules).is_err());
    }

    proptest::proptest! {
        #![proptest_config(eos_testkit::fuzz::config())]
        /// The API server's answer is outside input: any bytes give targets or an error.
        #[test]
        fn fuzz_service_lists(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
                              name in "[a-z0-9.-]{0,20}", port in proptest::prelude::any::<u16>()) {
            let modules = crate::config::ProbeConfig::default().modules;
            let _ = targets(&body, &DiscoveryConfig::default(), &modules);
            let list = format!(r#"{{"items":[{{"metadata":{{"name":"{name}","namespace":"n","annotations":{{"eos.io/probe":"http_2xx","eos.io/probe-port":"{port}"}}}},"spec":{{"ports":[{{"port":{port}}}]}}}}]}}"#);
            let _ = targets(list.as_bytes(), &DiscoveryConfig::default(), &modules);
        }
    }
}
