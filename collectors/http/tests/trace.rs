//! `Client::trace` and `tls_connect` against local servers: phase times, what TLS negotiated,
//! body limits, and errors that keep the timings reached.

mod common;

use common::{echo_on_loopback, raw, Echo, Pki, Reply};
use eos_http::{header, Client, Error, Method, Timings, TlsConfig, TraceRequest};
use eos_testkit::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn get(addr: std::net::SocketAddr, url: String) -> TraceRequest {
    TraceRequest {
        addr,
        method: Method::GET,
        url,
        headers: eos_http::HeaderMap::new(),
        body: bytes::Bytes::new(),
        tls: None,
    }
}

#[tokio::test]
async fn plain_http_phases_version_and_body() {
    let server = raw(Some(|_| {
        Reply::SendAndClose(b"HTTP/1.0 200 OK\r\nX-Thing: a\r\nX-Thing: b\r\n\r\nhello world")
    }))
    .await;
    let client = Client::new("eos-test/1");
    // The URL's host is not resolved: the request goes to `addr`, the URL names the host.
    let req = get(server.addr, "http://probe.invalid:8080/x?y=1".into());
    let mut t = Timings::default();
    let mut resp = client.trace(&req, &mut t).await.unwrap();
    assert_eq!((resp.version, resp.status), ("HTTP/1.0", 200));
    let things: Vec<_> = resp.headers.get_all("x-thing").iter().collect();
    assert_eq!(things, ["a", "b"]);
    assert!(resp.tls.is_none());
    let body = resp.read_body(None, 5, None, &mut t).await;
    assert_eq!(
        (body.data.as_slice(), body.len, body.error),
        (&b"hello"[..], 11, None)
    );
    for (name, at) in [
        ("connect_start", t.connect_start),
        ("connect_done", t.connect_done),
        ("got_conn", t.got_conn),
        ("first_byte", t.first_byte),
        ("body_done", t.body_done),
    ] {
        assert!(at.is_some(), "{name} not set");
    }
    assert_eq!((t.tls_start, t.tls_done), (None, None));
    assert!(t.connect_start <= t.connect_done && t.got_conn <= t.first_byte);
    assert_eq!(client.stats().connections_opened, 0, "the pool is not used");
}

#[tokio::test]
async fn sends_host_agent_and_length_as_go_does() {
    let server = echo_on_loopback(Echo::default()).await;
    let client = Client::new("eos-test/2");
    let mut req = get(server.addr, "http://svc.example:81/echo".into());
    req.method = Method::POST;
    req.body = bytes::Bytes::from_static(b"abc");
    let mut t = Timings::default();
    let mut resp = client.trace(&req, &mut t).await.unwrap();
    let body = resp.read_body(None, 1 << 10, None, &mut t).await;
    let text = String::from_utf8_lossy(&body.data);
    assert_eq!(
        text,
        "POST /echo host=svc.example:81 ua=eos-test/2 len=3 auth=- body=3"
    );

    let mut req = get(server.addr, "http://svc.example/echo".into());
    req.headers
        .insert(header::HOST, header::HeaderValue::from_static("other"));
    let mut resp = client.trace(&req, &mut t).await.unwrap();
    let body = resp.read_body(None, 1 << 10, None, &mut t).await;
    assert!(
        body.data
            .starts_with(b"GET /echo host=other ua=eos-test/2 len=- "),
        "{}",
        String::from_utf8_lossy(&body.data)
    );
}

#[tokio::test]
async fn body_limit_reads_exactly_the_limit() {
    let server = echo_on_loopback(Echo::default()).await;
    let client = Client::default();
    let req = get(server.addr, format!("http://{}/big/100", server.addr));
    let mut t = Timings::default();
    let mut resp = client.trace(&req, &mut t).await.unwrap();
    let body = resp.read_body(Some(40), 10, None, &mut t).await;
    assert_eq!((body.len, body.data.len()), (40, 10));
    assert!(
        matches!(&body.error, Some(Error::BodyTooLarge(m)) if m.contains("limit of 40 bytes")),
        "{:?}",
        body.error
    );
    let mut resp = client.trace(&req, &mut t).await.unwrap();
    let body = resp.read_body(Some(100), 0, None, &mut t).await;
    assert_eq!(
        (body.len, body.error),
        (100, None),
        "a body of exactly the limit is fine"
    );
}

#[tokio::test]
async fn https_reports_tls_and_keeps_timings_on_errors() {
    let (dir, pki) = (TempDir::new("http-trace-tls"), Pki::new());
    let leaf = pki.leaf(&["probe.test"]);
    let server = echo_on_loopback(Echo {
        tls: Some(Pki::server(&leaf, None, &[])),
        ..Echo::default()
    })
    .await;
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let tls = TlsConfig {
        ca_file: ca,
        ..TlsConfig::default()
    }
    .build()
    .unwrap();
    assert_eq!(tls.trust_anchors().len(), 1);
    assert!(tls.verifies());
    let client = Client::default();
    let mut req = get(server.addr, format!("https://{}/a", server.addr));
    req.tls = Some((tls.clone(), "probe.test".into()));
    let mut t = Timings::default();
    let mut resp = client.trace(&req, &mut t).await.unwrap();
    let info = resp.tls.clone().unwrap();
    assert_eq!(info.version, 0x0304);
    assert_ne!(info.cipher_suite, 0);
    assert_eq!(info.alpn, None, "the test server does no ALPN");
    assert_eq!(info.peer_certificates, vec![leaf.cert.to_vec()]);
    assert!(info.verified);
    assert!(t.tls_start.is_some() && t.tls_done.is_some());
    let body = resp.read_body(None, 100, None, &mut t).await;
    assert!(body.data.starts_with(b"GET /a "));

    // The wrong name: TLS fails after the connect, which stays recorded.
    req.tls = Some((tls, "other.test".into()));
    let mut t = Timings::default();
    let e = client.trace(&req, &mut t).await.unwrap_err();
    assert!(matches!(e, Error::Tls(_)), "{e}");
    assert!(e.to_string().contains("TLS handshake with"), "{e}");
    assert!(t.connect_done.is_some() && t.tls_start.is_some());
    assert_eq!((t.tls_done, t.got_conn), (None, None));

    // https:// without a setup is a mistake of the caller's.
    req.tls = None;
    assert!(matches!(
        client.trace(&req, &mut t).await,
        Err(Error::Config(_))
    ));
}

#[tokio::test]
async fn connect_errors_and_a_silent_server() {
    let client = Client::default();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let mut t = Timings::default();
    let e = client
        .trace(&get(addr, format!("http://{addr}/")), &mut t)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Connect(_)), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("GET http://{addr}/: connecting to {addr}: ")),
        "{e}"
    );
    assert!(t.connect_start.is_some() && t.connect_done.is_none());

    // A server that never answers: the caller's timeout ends it, timings so far are kept.
    let silent = raw(Some(|_| Reply::Hang)).await;
    let mut t = Timings::default();
    let req = get(silent.addr, format!("http://{}/", silent.addr));
    let cut = tokio::time::timeout(
        std::time::Duration::from_millis(200),
        client.trace(&req, &mut t),
    )
    .await;
    assert!(cut.is_err());
    assert!(t.got_conn.is_some() && t.first_byte.is_none());
}

#[tokio::test]
async fn tls_connect_on_an_existing_stream() {
    let (dir, pki) = (TempDir::new("http-trace-starttls"), Pki::new());
    let leaf = pki.leaf(&["127.0.0.1"]);
    let cfg = Pki::server(&leaf, None, &[]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        tcp.write_all(b"220 ready for TLS\n").await.unwrap();
        let mut tls = tokio_rustls::TlsAcceptor::from(cfg)
            .accept(tcp)
            .await
            .unwrap();
        let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        tls.write_all(b"secret hello\n").await.unwrap();
        tls.flush().await.unwrap();
        alpn
    });
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let tls = TlsConfig {
        ca_file: ca,
        ..TlsConfig::default()
    }
    .build()
    .unwrap();
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut banner = [0u8; 18];
    tcp.read_exact(&mut banner).await.unwrap();
    let (mut stream, info) = eos_http::tls_connect(tcp, &tls, "127.0.0.1", &addr.to_string())
        .await
        .unwrap();
    assert!(info.verified && info.alpn.is_none());
    assert_eq!(info.peer_certificates.len(), 1);
    let mut line = [0u8; 13];
    stream.read_exact(&mut line).await.unwrap();
    assert_eq!(&line, b"secret hello\n");
    assert_eq!(server.await.unwrap(), None, "no ALPN offered on plain TLS");

    // insecure_skip_verify: not verified, no anchors.
    let insecure = TlsConfig {
        insecure_skip_verify: true,
        ..TlsConfig::default()
    }
    .build()
    .unwrap();
    assert!(!insecure.verifies() && insecure.trust_anchors().is_empty());
}

#[tokio::test]
async fn a_body_cut_by_the_deadline_keeps_its_count() {
    let server = raw(Some(|_| {
        Reply::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
    }))
    .await;
    let client = Client::default();
    let mut t = Timings::default();
    let req = get(server.addr, format!("http://{}/", server.addr));
    let mut resp = client.trace(&req, &mut t).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(200);
    let body = resp.read_body(None, 4, Some(deadline), &mut t).await;
    assert_eq!((body.len, body.data.as_slice()), (10, &b"0123"[..]));
    assert!(
        matches!(body.error, Some(Error::Timeout(_))),
        "{:?}",
        body.error
    );
    assert!(t.body_done.is_some());
}
