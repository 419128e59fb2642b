//! In-test servers on 127.0.0.1 that count what they see: a hyper server that echoes the
//! request (optionally over rustls), a raw one scripted per request on a connection, and a
//! test PKI from rcgen.

#![allow(dead_code)] // each test file uses a part

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Barrier;

/// A running test server; stops accepting when dropped.
pub struct Server {
    pub addr: SocketAddr,
    /// TCP connections accepted.
    pub accepted: Arc<AtomicUsize>,
    /// Requests read (complete heads).
    pub requests: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    pub fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://{}{path}", self.addr)
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// How the echo server answers.
#[derive(Clone, Default)]
pub struct Echo {
    /// Every request waits here before it is answered.
    pub barrier: Option<Arc<Barrier>>,
    /// Serve TLS with this config.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

/// A keep-alive hyper server. `/big/N` answers N bytes; anything else answers
/// `METHOD TARGET host=.. ua=.. len=.. auth=.. body=N`.
pub async fn echo(listener: TcpListener, opts: Echo) -> Server {
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (acc, req) = (accepted.clone(), requests.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut tcp, _)) = listener.accept().await else {
                return;
            };
            acc.fetch_add(1, Ordering::SeqCst);
            let (req, opts) = (req.clone(), opts.clone());
            tokio::spawn(async move {
                match &opts.tls {
                    None => serve_hyper(&mut tcp, req, opts.barrier.clone()).await,
                    Some(cfg) => {
                        let acceptor = tokio_rustls::TlsAcceptor::from(cfg.clone());
                        // Borrow the socket, so that after a failed handshake it can be
                        // drained to EOF (closing with unread data would send a reset
                        // that could overtake our alert).
                        match acceptor.accept(&mut tcp).await {
                            Ok(mut tls) => serve_hyper(&mut tls, req, opts.barrier.clone()).await,
                            Err(_) => drain(&mut tcp).await,
                        }
                    }
                }
            });
        }
    });
    Server {
        addr,
        accepted,
        requests,
        task,
    }
}

pub async fn echo_on_loopback(opts: Echo) -> Server {
    echo(TcpListener::bind("127.0.0.1:0").await.unwrap(), opts).await
}

async fn drain<S: AsyncRead + Unpin>(s: &mut S) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}

async fn serve_hyper<S>(io: &mut S, requests: Arc<AtomicUsize>, barrier: Option<Arc<Barrier>>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let service = hyper::service::service_fn(move |r: hyper::Request<Incoming>| {
        let (requests, barrier) = (requests.clone(), barrier.clone());
        async move {
            requests.fetch_add(1, Ordering::SeqCst);
            if let Some(b) = barrier {
                b.wait().await;
            }
            let head = |name: &str| {
                r.headers().get(name).map_or("-".to_string(), |v| {
                    String::from_utf8_lossy(v.as_bytes()).into_owned()
                })
            };
            let path = r.uri().path().to_string();
            let text = format!(
                "{} {} host={} ua={} len={} auth={}",
                r.method(),
                r.uri(),
                head("host"),
                head("user-agent"),
                head("content-length"),
                head("authorization"),
            );
            let body = r
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            let answer = match path.strip_prefix("/big/") {
                Some(n) => Bytes::from(vec![b'x'; n.parse().unwrap_or(0)]),
                None => Bytes::from(format!("{text} body={}", body.len())),
            };
            Ok::<_, Infallible>(hyper::Response::new(Full::new(answer)))
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// What the raw server does with the Nth request (from 0) on a connection.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Write these bytes and wait for the next request.
    Send(&'static [u8]),
    /// Write these bytes and close.
    SendAndClose(&'static [u8]),
    /// Close without answering.
    Close,
    /// Never answer (keep the connection open).
    Hang,
}

/// A server scripted by `script(index of the request on its connection)`. Never answers at
/// all when `script` is `None`: it accepts and holds connections.
pub async fn raw(script: Option<fn(usize) -> Reply>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (acc, req) = (accepted.clone(), requests.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            acc.fetch_add(1, Ordering::SeqCst);
            let req = req.clone();
            tokio::spawn(async move { serve_raw(tcp, script, req).await });
        }
    });
    Server {
        addr,
        accepted,
        requests,
        task,
    }
}

async fn serve_raw(
    mut tcp: TcpStream,
    script: Option<fn(usize) -> Reply>,
    requests: Arc<AtomicUsize>,
) {
    let Some(script) = script else {
        drain(&mut tcp).await;
        return;
    };
    let mut buf = Vec::new();
    for n in 0.. {
        // Read one request: head, then a Content-Length body.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            let mut chunk = [0u8; 4096];
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(k) => buf.extend_from_slice(&chunk[..k]),
            }
        }
        buf.drain(..head_end + len);
        requests.fetch_add(1, Ordering::SeqCst);
        match script(n) {
            Reply::Send(b) => {
                if tcp.write_all(b).await.is_err() {
                    return;
                }
            }
            Reply::SendAndClose(b) => {
                let _ = tcp.write_all(b).await;
                let _ = tcp.shutdown().await;
                return;
            }
            Reply::Close => return,
            Reply::Hang => {
                drain(&mut tcp).await;
                return;
            }
        }
    }
}

/// A test CA, and certificates it signs.
pub struct Pki {
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
    pub ca_pem: String,
}

/// A certificate and its key.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub cert: CertificateDer<'static>,
    pub key: PrivateKeyDer<'static>,
}

impl Pki {
    pub fn new() -> Pki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        // A name of its own, so that another test CA is an unknown issuer, not a forger.
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("eos test CA {n}"));
        let ca = params.self_signed(&ca_key).unwrap();
        Pki {
            ca_pem: ca.pem(),
            ca,
            ca_key,
        }
    }

    /// A certificate for `names` (DNS names or IP addresses).
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let cert = rcgen::CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.ca, &self.ca_key)
            .unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert: cert.der().clone(),
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        }
    }

    /// A server config presenting `leaf`; with `client_ca`, client certificates signed by
    /// it are required. `versions`: empty for rustls' defaults.
    pub fn server(
        leaf: &Leaf,
        client_ca: Option<&Pki>,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone());
        let builder = if versions.is_empty() {
            builder.with_safe_default_protocol_versions().unwrap()
        } else {
            builder.with_protocol_versions(versions).unwrap()
        };
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(ca.ca.der().clone()).unwrap();
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        };
        Arc::new(
            builder
                .with_single_cert(vec![leaf.cert.clone()], leaf.key.clone_key())
                .unwrap(),
        )
    }
}
