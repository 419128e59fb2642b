//! Pod metadata over real HTTPS: a small in-test kubelet serving recorded `/pods` JSON with a
//! test CA, checking token auth, CA verification, bad JSON and a kubelet that is down.

use eos_kube::{KubeletConfig, PodMetadata};
use eos_testkit::TempDir;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PODS: &[u8] = include_bytes!("../testdata/pods.json");
const TOKEN: &str = "test-token-0123";

struct Pki {
    ca_pem: String,
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert: leaf.der().clone(),
        key: leaf_key.serialize_der(),
    }
}

/// The fake kubelet: answers `GET /pods` with `body` when the bearer token matches.
struct Kubelet {
    port: u16,
    body: Arc<Mutex<Vec<u8>>>,
    requests: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn kubelet(pki: &Pki) -> Kubelet {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![pki.cert.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key.clone())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = Arc::new(Mutex::new(PODS.to_vec()));
    let requests = Arc::new(AtomicU64::new(0));
    let (b, r) = (body.clone(), requests.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, b, r) = (acceptor.clone(), b.clone(), r.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut req = Vec::new();
                let mut chunk = [0u8; 1024];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => req.extend_from_slice(&chunk[..n]),
                    }
                }
                r.fetch_add(1, Ordering::Relaxed);
                let head = String::from_utf8_lossy(&req).to_lowercase();
                let authorized =
                    head.contains(&format!("authorization: bearer {}", TOKEN.to_lowercase()));
                let (status, body) = if !head.starts_with("get /pods ") {
                    ("404 Not Found", b"404 page not found".to_vec())
                } else if authorized {
                    ("200 OK", b.lock().unwrap().clone())
                } else {
                    ("401 Unauthorized", b"Unauthorized".to_vec())
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(&body).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Kubelet {
        port,
        body,
        requests,
        task,
    }
}

fn config(dir: &TempDir, pki: &Pki, port: u16) -> KubeletConfig {
    let ca = dir.join("ca.crt");
    let token = dir.join("token");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    KubeletConfig {
        url: format!("https://127.0.0.1:{port}/pods"),
        ca_file: ca,
        token_file: token,
        timeout: eos_module::Duration::from_secs(5),
        ..KubeletConfig::default()
    }
}

#[tokio::test]
async fn token_and_ca_verification() {
    let (dir, pki) = (TempDir::new("kube-ok"), pki());
    let k = kubelet(&pki).await;
    let meta = PodMetadata::idle(config(&dir, &pki, k.port));
    meta.refresh().await.unwrap();
    let snap = meta.snapshot();
    assert_eq!(snap.len(), 4);
    let c = snap.container(&"3".repeat(64)).unwrap();
    assert_eq!(
        (c.pod.namespace.as_str(), c.container.name.as_str()),
        ("shop", "nginx")
    );
    let s = meta.stats();
    assert_eq!((s.successes, s.failures), (1, 0));
    assert!(s.last_success.is_some());
}

#[tokio::test]
async fn wrong_token_is_refused_and_counted() {
    let (dir, pki) = (TempDir::new("kube-tok"), pki());
    let k = kubelet(&pki).await;
    let cfg = config(&dir, &pki, k.port);
    std::fs::write(&cfg.token_file, "other").unwrap();
    let meta = PodMetadata::idle(cfg);
    let e = meta.refresh().await.unwrap_err();
    assert!(e.to_string().contains("HTTP 401"), "{e}");
    assert!(matches!(e, eos_kube::KubeletError::Refused(_)), "{e:?}");
    assert_eq!(meta.stats().failures, 1);
    assert_eq!(meta.stats().last_error, Some(e.to_string()));
    assert!(meta.snapshot().is_empty());
}

#[tokio::test]
async fn untrusted_certificate_fails_unless_skip_verify() {
    let (dir, pki, other) = (TempDir::new("kube-ca"), pki(), pki());
    let k = kubelet(&pki).await;
    let mut cfg = config(&dir, &other, k.port); // trusts a different CA
    let meta = PodMetadata::idle(cfg.clone());
    let e = meta.refresh().await.unwrap_err();
    assert!(e.to_string().contains("TLS handshake"), "{e}");
    assert!(!e.is_retryable(), "{e:?}");
    assert_eq!(
        k.requests.load(Ordering::Relaxed),
        0,
        "no request over an unverified session"
    );

    cfg.insecure_skip_verify = true;
    cfg.ca_file = PathBuf::new();
    let meta = PodMetadata::idle(cfg.clone());
    meta.refresh().await.unwrap();
    assert_eq!(meta.snapshot().len(), 4);

    cfg.insecure_skip_verify = false;
    let e = PodMetadata::idle(cfg.clone()).refresh().await.unwrap_err();
    assert!(
        e.to_string()
            .contains("set ca_file or insecure_skip_verify"),
        "{e}"
    );
    assert!(matches!(e, eos_kube::KubeletError::Config(_)), "{e:?}");
    std::fs::write(dir.join("empty.crt"), "not a pem\n").unwrap();
    cfg.ca_file = dir.join("empty.crt");
    let e = PodMetadata::idle(cfg).refresh().await.unwrap_err();
    assert!(e.to_string().contains("no certificate"), "{e}");
}

#[tokio::test]
async fn bad_json_keeps_the_last_good_cache() {
    let (dir, pki) = (TempDir::new("kube-json"), pki());
    let k = kubelet(&pki).await;
    let meta = PodMetadata::idle(config(&dir, &pki, k.port));
    meta.refresh().await.unwrap();
    let gen = meta.snapshot().generation();
    *k.body.lock().unwrap() = b"{\"kind\":\"PodList\",\"items\":[{\"metad".to_vec();
    let e = meta.refresh().await.unwrap_err();
    assert!(
        e.to_string().starts_with("parsing the kubelet pod list: "),
        "{e}"
    );
    assert!(matches!(e, eos_kube::KubeletError::Malformed(_)), "{e:?}");
    assert_eq!(meta.snapshot().len(), 4);
    assert_eq!(meta.snapshot().generation(), gen);
    let s = meta.stats();
    assert_eq!((s.successes, s.failures), (1, 1));
}

#[tokio::test]
async fn kubelet_down_counts_failures_and_keeps_the_cache() {
    let (dir, pki) = (TempDir::new("kube-down"), pki());
    let k = kubelet(&pki).await;
    let port = k.port;
    let meta = PodMetadata::idle(config(&dir, &pki, port));
    meta.refresh().await.unwrap();
    drop(k);
    tokio::task::yield_now().await;
    // the listener is gone once the aborted task is dropped; connection refused
    let mut last = Ok(());
    for _ in 0..50 {
        last = meta.refresh().await;
        if last.is_err() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let e = last.unwrap_err();
    assert!(e.to_string().contains("connecting to 127.0.0.1"), "{e}");
    assert!(e.is_retryable(), "{e:?}");
    assert!(meta.stats().failures >= 1);
    assert_eq!(meta.snapshot().len(), 4, "cache kept");
}

#[tokio::test]
async fn background_task_refreshes_and_stops() {
    let (dir, pki) = (TempDir::new("kube-bg"), pki());
    let k = kubelet(&pki).await;
    let mut cfg = config(&dir, &pki, k.port);
    cfg.min_refresh_interval = eos_module::Duration::from_millis(10);
    let meta = PodMetadata::start(cfg);
    for _ in 0..500 {
        if meta.stats().successes >= 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(meta.snapshot().len(), 4);
    meta.request_refresh();
    for _ in 0..500 {
        if meta.stats().successes >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(meta.stats().successes >= 2, "a miss asks for a refresh");
    meta.shutdown();
}

#[tokio::test]
async fn reconfigure_in_place_keeps_handles_and_switching_off_stops_fetching() {
    let (dir, pki) = (TempDir::new("kube-reconf"), pki());
    let k = kubelet(&pki).await;
    let mut cfg = config(&dir, &pki, k.port);
    cfg.min_refresh_interval = eos_module::Duration::from_millis(10);
    cfg.refresh_interval = eos_module::Duration::from_millis(20);
    let meta = PodMetadata::start(cfg.clone());
    let held = meta.clone(); // what a module holds
    for _ in 0..500 {
        if held.stats().successes >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(held.stats().successes >= 2);
    meta.reconfigure(eos_kube::KubeletConfig {
        enabled: false,
        ..cfg.clone()
    });
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let asked = k.requests.load(Ordering::Relaxed);
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    assert_eq!(
        k.requests.load(Ordering::Relaxed),
        asked,
        "no fetch while off"
    );
    assert!(meta.is_running(), "the task waits to be switched on again");
    meta.reconfigure(cfg);
    for _ in 0..500 {
        if k.requests.load(Ordering::Relaxed) > asked {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(k.requests.load(Ordering::Relaxed) > asked, "on again");
    assert_eq!(
        held.snapshot().len(),
        4,
        "the module's handle sees the same cache"
    );
    meta.shutdown();
}
