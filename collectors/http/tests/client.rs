//! The client over plain HTTP against local servers: keep-alive reuse, stale pooled
//! connections, timeouts, body limits, connect failures and the headers it adds.

mod common;

use common::{echo, echo_on_loopback, raw, Echo, Reply};
use eos_http::{header, Client, Error, Method, Request};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

fn text(r: &eos_http::Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

#[tokio::test]
async fn keep_alive_carries_ten_requests_on_one_connection() {
    let server = echo_on_loopback(Echo::default()).await;
    let client = Client::new("eos-agent/test");
    for i in 0..10 {
        let req = Request::post(
            server.url("http", &format!("/push?i={i}")),
            format!("body-{i}"),
        );
        let r = client.send(req).await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(
            text(&r),
            format!(
                "POST /push?i={i} host={} ua=eos-agent/test len=6 auth=- body=6",
                server.addr
            )
        );
    }
    assert_eq!(server.accepted(), 1, "one TCP connection for all");
    let s = client.stats();
    assert_eq!(
        (s.connections_opened, s.reused, s.retried, s.idle),
        (1, 9, 0, 1)
    );
}

#[tokio::test]
async fn clones_share_the_pool_and_get_has_no_content_length() {
    let server = echo_on_loopback(Echo::default()).await;
    let client = Client::default();
    let other = client.clone();
    let r = client
        .send(Request::get(server.url("http", "/a")))
        .await
        .unwrap();
    assert_eq!(
        text(&r),
        format!(
            "GET /a host={} ua=eos-agent len=- auth=- body=0",
            server.addr
        )
    );
    other
        .send(Request::get(server.url("http", "/b")))
        .await
        .unwrap();
    assert_eq!(server.accepted(), 1);
    assert_eq!(client.stats().reused, 1);
}

#[tokio::test]
async fn a_pooled_connection_the_server_closed_is_retried_once_on_a_new_one() {
    // Answers the first request on a connection; closes on the second without a byte.
    let server = raw(Some(|n| match n {
        0 => Reply::Send(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"),
        _ => Reply::Close,
    }))
    .await;
    let client = Client::default();
    for _ in 0..2 {
        let r = client
            .send(Request::post(server.url("http", "/push"), "payload"))
            .await
            .unwrap();
        assert_eq!((r.status, text(&r).as_str()), (200, "ok"));
    }
    let s = client.stats();
    assert_eq!((s.connections_opened, s.reused, s.retried), (2, 1, 1));
    assert_eq!(server.accepted(), 2);
    assert_eq!(server.requests(), 3, "sent on the stale one, then again");
}

#[tokio::test]
async fn a_server_that_closes_after_every_response_still_works() {
    // No `Connection: close`: the client keeps the connection and finds out later.
    let server = raw(Some(|_| {
        Reply::SendAndClose(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
    }))
    .await;
    let client = Client::default();
    for _ in 0..5 {
        let r = client
            .send(Request::get(server.url("http", "/")))
            .await
            .unwrap();
        assert_eq!(text(&r), "ok");
    }
    let s = client.stats();
    assert_eq!(s.connections_opened, 5);
    assert_eq!(
        s.reused, s.retried,
        "every reuse found the connection closed"
    );
    assert_eq!(server.accepted(), 5);
}

#[tokio::test]
async fn connection_close_is_not_pooled() {
    let server = raw(Some(|_| {
        Reply::Send(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok")
    }))
    .await;
    let client = Client::default();
    client
        .send(Request::get(server.url("http", "/")))
        .await
        .unwrap();
    assert_eq!(client.stats().idle, 0);
}

#[tokio::test]
async fn an_answer_broken_off_is_an_error_and_not_sent_again() {
    let server = raw(Some(|n| match n {
        0 => Reply::Send(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"),
        _ => Reply::SendAndClose(b"HTTP/1.1 200 OK\r\ncontent-le"),
    }))
    .await;
    let client = Client::default();
    let url = server.url("http", "/push");
    client.send(Request::post(&url, "a")).await.unwrap();
    let e = client.send(Request::post(&url, "b")).await.unwrap_err();
    assert!(matches!(e, Error::Io(_)), "{e:?}");
    assert!(e.is_retryable());
    assert!(
        e.to_string()
            .starts_with(&format!("POST {url}: waiting for the response: ")),
        "{e}"
    );
    assert_eq!(client.stats().retried, 0);
    assert_eq!(server.requests(), 2, "the second request went out once");
}

#[tokio::test]
async fn no_answer_is_a_timeout() {
    let server = raw(Some(|_| Reply::Hang)).await;
    let client = Client::default();
    let url = server.url("http", "/slow");
    let req = Request {
        timeout: Duration::from_millis(200),
        ..Request::get(&url)
    };
    let e = client.send(req).await.unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e:?}");
    assert!(e.is_retryable());
    assert!(
        e.to_string()
            .starts_with(&format!("GET {url}: timed out after 200ms ")),
        "{e}"
    );
    assert_eq!(client.stats().idle, 0, "a timed-out connection is not kept");

    // A TLS server that never speaks: the handshake is bounded too.
    let silent = raw(None).await;
    let tls = eos_http::TlsConfig {
        insecure_skip_verify: true,
        ..Default::default()
    }
    .build()
    .unwrap();
    let req = Request {
        timeout: Duration::from_millis(200),
        tls: Some(tls),
        ..Request::get(silent.url("https", "/"))
    };
    let e = client.send(req).await.unwrap_err();
    assert!(matches!(e, Error::Timeout(_)), "{e:?}");
}

#[tokio::test]
async fn bodies_over_the_limit_are_errors() {
    let server = echo_on_loopback(Echo::default()).await;
    let client = Client::default();
    let url = server.url("http", "/big/1000");
    let limited = |max| Request {
        max_response_bytes: max,
        ..Request::get(&url)
    };
    assert_eq!(client.send(limited(1000)).await.unwrap().body.len(), 1000);
    let e = client.send(limited(999)).await.unwrap_err();
    assert!(matches!(e, Error::BodyTooLarge(_)), "{e:?}");
    assert!(!e.is_retryable());
    assert_eq!(
        e.to_string(),
        format!("GET {url}: HTTP 200: the response body is 1000 bytes, more than the limit of 999")
    );

    // Chunked: no length up front, so the limit stops the read.
    let chunked = raw(Some(|_| {
        Reply::Send(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n")
    }))
    .await;
    let req = Request {
        max_response_bytes: 10,
        ..Request::get(chunked.url("http", "/"))
    };
    let e = client.send(req).await.unwrap_err();
    assert!(matches!(e, Error::BodyTooLarge(_)), "{e:?}");
    assert!(
        e.to_string().ends_with("larger than the limit of 10 bytes"),
        "{e}"
    );
    let req = Request {
        max_response_bytes: 16,
        ..Request::get(chunked.url("http", "/"))
    };
    assert_eq!(
        client.send(req).await.unwrap().body.as_ref(),
        b"1234567812345678"
    );
}

#[tokio::test]
async fn refused_is_a_retryable_connect_error_naming_host_and_port() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap().port()
    };
    let client = Client::default();
    let url = format!("http://user:secret@127.0.0.1:{port}/push");
    let e = client.send(Request::post(&url, "x")).await.unwrap_err();
    assert!(matches!(e, Error::Connect(_)), "{e:?}");
    assert!(e.is_retryable());
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!(
            "POST http://user:xxxxx@127.0.0.1:{port}/push: connecting to 127.0.0.1:{port}: "
        )),
        "{msg}"
    );
    assert!(!msg.contains("secret"), "{msg}");
}

#[tokio::test]
async fn config_and_protocol_errors_are_not_retryable() {
    let client = Client::default();
    let e = client.send(Request::get("ftp://h/x")).await.unwrap_err();
    assert_eq!(
        e,
        Error::Config(
            "GET ftp://h/x: scheme \"ftp\" is not supported: use http:// or https://".into()
        )
    );
    let garbage = raw(Some(|_| Reply::SendAndClose(b"SSH-2.0-OpenSSH\r\n\r\n"))).await;
    let e = client
        .send(Request::get(garbage.url("http", "/")))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Protocol(_)), "{e:?}");
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn url_credentials_and_ipv6_literals() {
    let server = echo_on_loopback(Echo::default()).await;
    let client = Client::default();
    let url = format!("http://Aladdin:open%20sesame@{}/x", server.addr);
    let r = client.send(Request::get(url)).await.unwrap();
    assert!(
        text(&r).contains("auth=Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        "{}",
        text(&r)
    );
    let r = client
        .send(Request::new(Method::PUT, server.url("http", "/y")).header(
            header::AUTHORIZATION,
            eos_http::bearer_auth("t0k\n").unwrap(),
        ))
        .await
        .unwrap();
    assert_eq!(
        text(&r),
        format!(
            "PUT /y host={} ua=eos-agent len=0 auth=Bearer t0k body=0",
            server.addr
        )
    );

    // IPv6 loopback, where the machine has it.
    let Ok(v6) = TcpListener::bind("[::1]:0").await else {
        eprintln!("no IPv6 loopback here; skipping the IPv6 part");
        return;
    };
    let server = echo(v6, Echo::default()).await;
    let port = server.addr.port();
    let r = client
        .send(Request::get(format!("http://[::1]:{port}/v6")))
        .await
        .unwrap();
    assert!(
        text(&r).starts_with(&format!("GET /v6 host=[::1]:{port} ")),
        "{}",
        text(&r)
    );
}

#[tokio::test]
async fn at_most_eight_idle_connections_per_destination() {
    // Ten requests in flight at once need ten connections; eight stay afterwards.
    let server = echo_on_loopback(Echo {
        barrier: Some(Arc::new(tokio::sync::Barrier::new(10))),
        ..Echo::default()
    })
    .await;
    let client = Client::default();
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (client, url) = (client.clone(), server.url("http", "/"));
            tokio::spawn(async move { client.send(Request::get(url)).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().status, 200);
    }
    let s = client.stats();
    assert_eq!((s.connections_opened, s.idle), (10, 8));
    assert_eq!(server.accepted(), 10);
}
