//! HTTPS against a local rustls server with a test CA from rcgen: CA trust via `ca_file`,
//! a wrong CA, `insecure_skip_verify`, `server_name`, mutual TLS and `min_version`.

mod common;

use common::{echo_on_loopback, Echo, Pki};
use eos_http::{Client, Error, Request, TlsConfig};
use eos_testkit::TempDir;

/// Writes `pem` to `dir/name` and returns the path.
fn file(dir: &TempDir, name: &str, pem: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, pem).unwrap();
    p
}

#[tokio::test]
async fn https_verified_by_ca_file_with_keep_alive() {
    let (dir, pki) = (TempDir::new("http-tls-ok"), Pki::new());
    let leaf = pki.leaf(&["127.0.0.1", "localhost"]);
    let server = echo_on_loopback(Echo {
        tls: Some(Pki::server(&leaf, None, &[])),
        ..Echo::default()
    })
    .await;
    let cfg = TlsConfig {
        ca_file: file(&dir, "ca.pem", &pki.ca_pem),
        ..TlsConfig::default()
    };
    let client = Client::default();
    for _ in 0..3 {
        let req = Request {
            // Each build of the same files is the same setup: the connection is shared.
            tls: Some(cfg.build().unwrap()),
            ..Request::get(server.url("https", "/a"))
        };
        let r = client.send(req).await.unwrap();
        assert_eq!(r.status, 200);
        assert!(r.body.starts_with(b"GET /a host=127.0.0.1:"));
    }
    assert_eq!(server.accepted(), 1);
    assert_eq!(client.stats().reused, 2);

    // By DNS name too.
    let url = format!("https://localhost:{}/b", server.addr.port());
    let req = Request {
        tls: Some(cfg.build().unwrap()),
        ..Request::get(url)
    };
    assert_eq!(client.send(req).await.unwrap().status, 200);
}

#[tokio::test]
async fn a_wrong_ca_fails_verification_unless_insecure_skip_verify() {
    let (dir, pki, other) = (TempDir::new("http-tls-ca"), Pki::new(), Pki::new());
    let leaf = pki.leaf(&["127.0.0.1"]);
    let server = echo_on_loopback(Echo {
        tls: Some(Pki::server(&leaf, None, &[])),
        ..Echo::default()
    })
    .await;
    let url = server.url("https", "/x");
    let client = Client::default();
    let wrong = TlsConfig {
        ca_file: file(&dir, "other.pem", &other.ca_pem),
        ..TlsConfig::default()
    };
    let req = Request {
        tls: Some(wrong.build().unwrap()),
        ..Request::get(&url)
    };
    let e = client.send(req).await.unwrap_err();
    assert!(matches!(e, Error::Tls(_)), "{e:?}");
    assert!(!e.is_retryable());
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "GET {url}: TLS handshake with {}: server certificate verification failed: ",
            server.addr
        )),
        "{msg}"
    );
    assert!(msg.contains("UnknownIssuer"), "{msg}");
    assert_eq!(
        server.requests(),
        0,
        "nothing sent over an unverified session"
    );

    let insecure = TlsConfig {
        insecure_skip_verify: true,
        ..wrong
    };
    let req = Request {
        tls: Some(insecure.build().unwrap()),
        ..Request::get(&url)
    };
    assert_eq!(client.send(req).await.unwrap().status, 200);
}

#[tokio::test]
async fn server_name_overrides_the_url_host() {
    let (dir, pki) = (TempDir::new("http-tls-sni"), Pki::new());
    let leaf = pki.leaf(&["eos.test"]);
    let server = echo_on_loopback(Echo {
        tls: Some(Pki::server(&leaf, None, &[])),
        ..Echo::default()
    })
    .await;
    let cfg = TlsConfig {
        ca_file: file(&dir, "ca.pem", &pki.ca_pem),
        ..TlsConfig::default()
    };
    let client = Client::default();
    let req = |cfg: &TlsConfig| Request {
        tls: Some(cfg.build().unwrap()),
        ..Request::get(server.url("https", "/"))
    };
    let e = client.send(req(&cfg)).await.unwrap_err();
    assert!(matches!(e, Error::Tls(_)), "{e:?}");
    assert!(e.to_string().contains("not valid for name"), "{e}");
    let named = TlsConfig {
        server_name: "eos.test".into(),
        ..cfg
    };
    assert_eq!(client.send(req(&named)).await.unwrap().status, 200);
}

#[tokio::test]
async fn mutual_tls_needs_the_client_certificate() {
    let (dir, pki, stranger) = (TempDir::new("http-mtls"), Pki::new(), Pki::new());
    let server_leaf = pki.leaf(&["127.0.0.1"]);
    let server = echo_on_loopback(Echo {
        tls: Some(Pki::server(&server_leaf, Some(&pki), &[])),
        ..Echo::default()
    })
    .await;
    let client_leaf = pki.leaf(&["eos-agent"]);
    let base = TlsConfig {
        ca_file: file(&dir, "ca.pem", &pki.ca_pem),
        ..TlsConfig::default()
    };
    let with_cert = TlsConfig {
        cert_file: file(&dir, "client.pem", &client_leaf.cert_pem),
        key_file: file(&dir, "client.key", &client_leaf.key_pem),
        ..base.clone()
    };
    let client = Client::default();
    let req = |cfg: &TlsConfig| Request {
        tls: Some(cfg.build().unwrap()),
        ..Request::post(server.url("https", "/push"), "x")
    };
    let r = client.send(req(&with_cert)).await.unwrap();
    assert_eq!(r.status, 200);

    // With TLS 1.3 the server's refusal arrives after our side of the handshake is done,
    // while waiting for the response: still a TLS error.
    let e = client.send(req(&base)).await.unwrap_err();
    assert!(matches!(e, Error::Tls(_)), "{e:?}");
    assert!(!e.is_retryable());
    assert!(
        e.to_string()
            .contains("the server did not accept our client certificate (cert_file, key_file): "),
        "{e}"
    );

    let foreign = stranger.leaf(&["eos-agent"]);
    let wrong_cert = TlsConfig {
        cert_file: file(&dir, "foreign.pem", &foreign.cert_pem),
        key_file: file(&dir, "foreign.key", &foreign.key_pem),
        ..base
    };
    let e = client.send(req(&wrong_cert)).await.unwrap_err();
    assert!(matches!(e, Error::Tls(_)), "{e:?}");
    assert_eq!(
        server.requests(),
        1,
        "only the request with the right certificate"
    );
}

#[tokio::test]
async fn min_version_tls13_refuses_a_tls12_server() {
    let (dir, pki) = (TempDir::new("http-tls-ver"), Pki::new());
    let leaf = pki.leaf(&["127.0.0.1"]);
    let server = echo_on_loopback(Echo {
        tls: Some(Pki::server(&leaf, None, &[&rustls::version::TLS12])),
        ..Echo::default()
    })
    .await;
    let cfg = TlsConfig {
        ca_file: file(&dir, "ca.pem", &pki.ca_pem),
        ..TlsConfig::default()
    };
    let client = Client::default();
    let req = |cfg: &TlsConfig| Request {
        tls: Some(cfg.build().unwrap()),
        ..Request::get(server.url("https", "/"))
    };
    assert_eq!(client.send(req(&cfg)).await.unwrap().status, 200);
    let tls13 = TlsConfig {
        min_version: "TLS13".into(),
        ..cfg
    };
    let e = client.send(req(&tls13)).await.unwrap_err();
    assert!(matches!(e, Error::Tls(_)), "{e:?}");
    assert!(e.to_string().contains("TLS handshake with"), "{e}");
}
