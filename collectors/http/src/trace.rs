//! One-shot, timed exchanges for probes: a request over a new connection to an address the
//! caller resolved itself, with the time of each phase (connect, TLS, waiting for the first
//! response byte, reading the body) and what TLS negotiated; and a TLS handshake on a stream
//! the caller already has (a `tcp` probe's `tls: true` or STARTTLS). Nothing here is pooled.
//!
//! Every step can be cut short by dropping its future (a probe's deadline): the [`Timings`]
//! filled so far stay with the caller, and the connection is closed.

use crate::conn::{handshake_error, OnRead, Watched};
use crate::error::{chain, rustls_error, tls_detail, Error};
use crate::tls::Tls;
use crate::url;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::Method;
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// A TLS client stream over `S`, as [`tls_connect`] returns it.
pub type TlsStream<S> = tokio_rustls::client::TlsStream<S>;

/// What a TLS handshake negotiated, and what the server presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInfo {
    /// The protocol version's code point: `0x0303` TLS 1.2, `0x0304` TLS 1.3.
    pub version: u16,
    /// The cipher suite's IANA code point (e.g. `0x1301`, TLS_AES_128_GCM_SHA256).
    pub cipher_suite: u16,
    /// The negotiated application protocol (ALPN), if any.
    pub alpn: Option<Vec<u8>>,
    /// The certificates the server sent, leaf first, DER.
    pub peer_certificates: Vec<Vec<u8>>,
    /// Whether the chain was verified against [`Tls::trust_anchors`] (false with
    /// `insecure_skip_verify`).
    pub verified: bool,
}

impl TlsInfo {
    fn of(conn: &rustls::ClientConnection, verified: bool) -> TlsInfo {
        TlsInfo {
            version: conn.protocol_version().map_or(0, u16::from),
            cipher_suite: conn
                .negotiated_cipher_suite()
                .map_or(0, |s| u16::from(s.suite())),
            alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
            peer_certificates: conn
                .peer_certificates()
                .unwrap_or_default()
                .iter()
                .map(|c| c.as_ref().to_vec())
                .collect(),
            verified,
        }
    }
}

/// A name to send in SNI and to verify the certificate against: a DNS name or an address.
fn server_name(name: &str, what: &str) -> Result<ServerName<'static>, Error> {
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string()).map_err(|_| {
        Error::Config(format!(
            "{what}: {name:?} cannot be checked against a certificate; set tls_config.server_name"
        ))
    })
}

/// A TLS handshake on `io` (a connected TCP stream, or one that just agreed to STARTTLS),
/// verifying the server as `tls` says against `name` (also sent as SNI unless an address).
/// No ALPN is offered. `what` (e.g. `10.0.0.1:465`) names the peer in errors.
pub async fn tls_connect<S>(
    io: S,
    tls: &Tls,
    name: &str,
    what: &str,
) -> Result<(TlsStream<S>, TlsInfo), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let sni = server_name(name, what)?;
    let stream = tokio_rustls::TlsConnector::from(tls.raw.clone())
        .connect(sni, io)
        .await
        .map_err(|e| match rustls_error(&e) {
            Some(r) => Error::Tls(format!("TLS handshake with {what}: {}", tls_detail(r))),
            None => Error::Io(format!("TLS handshake with {what}: {}", chain(&e))),
        })?;
    let info = TlsInfo::of(stream.get_ref().1, tls.verifies());
    Ok((stream, info))
}

/// When each step of one exchange happened; `None`: not reached. Filled as the exchange goes,
/// so what was reached is known also when the exchange failed or was cut short.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timings {
    /// Connecting started.
    pub connect_start: Option<Instant>,
    /// The TCP connection is up.
    pub connect_done: Option<Instant>,
    /// The TLS handshake started (HTTPS only).
    pub tls_start: Option<Instant>,
    /// The TLS handshake is done (HTTPS only).
    pub tls_done: Option<Instant>,
    /// The connection is ready for the request (after TLS).
    pub got_conn: Option<Instant>,
    /// The first byte of the response arrived.
    pub first_byte: Option<Instant>,
    /// The body was read to its end (or to the error that ended it).
    pub body_done: Option<Instant>,
}

/// One request for [`crate::Client::trace`].
#[derive(Clone, Debug)]
pub struct TraceRequest {
    /// Where to connect; the caller resolved the URL's host.
    pub addr: SocketAddr,
    pub method: Method,
    /// `http://` or `https://` URL: gives the request target (path and query) and, unless
    /// `headers` has one, the `Host` header. Its host is not resolved.
    pub url: String,
    /// Sent as given. `Host` (from `url`) and `User-Agent` (the client's) are added when
    /// missing; `Content-Length` always matches `body`.
    pub headers: HeaderMap,
    pub body: Bytes,
    /// For `https://`: the TLS setup, and the name to send in SNI and verify the certificate
    /// against (the setup's own `server_name` is not used: the caller decides).
    pub tls: Option<(Tls, String)>,
}

/// A response whose head has arrived; the body is read with [`TraceResponse::read_body`].
/// Dropping it closes the connection.
pub struct TraceResponse {
    /// `HTTP/1.0` or `HTTP/1.1`, as the status line said.
    pub version: &'static str,
    pub status: u16,
    pub headers: HeaderMap,
    /// What TLS negotiated, for `https://`.
    pub tls: Option<TlsInfo>,
    body: Incoming,
    what: String,
    _conn: AbortOnDrop,
}

impl std::fmt::Debug for TraceResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceResponse")
            .field("version", &self.version)
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// A body as read by [`TraceResponse::read_body`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BodyRead {
    /// The first `keep` bytes.
    pub data: Vec<u8>,
    /// Bytes read (never more than the limit).
    pub len: u64,
    /// Why reading stopped before the end: [`Error::BodyTooLarge`] past the limit, or the
    /// connection broke.
    pub error: Option<Error>,
}

impl TraceResponse {
    /// Reads the body to its end, counting at most `limit` bytes (`None`: no limit) and
    /// keeping the first `keep`, until `deadline` if given; sets `timings.body_done`. As Go's
    /// `http.MaxBytesReader`, a longer body gives exactly `limit` bytes and an error.
    pub async fn read_body(
        &mut self,
        limit: Option<u64>,
        keep: usize,
        deadline: Option<Instant>,
        timings: &mut Timings,
    ) -> BodyRead {
        let mut out = BodyRead::default();
        loop {
            let next = match deadline {
                None => self.body.frame().await,
                Some(d) => match tokio::time::timeout_at(d.into(), self.body.frame()).await {
                    Ok(next) => next,
                    Err(_) => {
                        out.error = Some(Error::Timeout(format!(
                            "{}: timed out reading the response body",
                            self.what
                        )));
                        break;
                    }
                },
            };
            match next {
                None => break,
                Some(Err(e)) => {
                    out.error = Some(Error::Io(format!(
                        "{}: reading the response body: {}",
                        self.what,
                        chain(&e)
                    )));
                    break;
                }
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers
                    };
                    let mut take = data.len() as u64;
                    let over = limit.is_some_and(|l| out.len + take > l);
                    if let Some(l) = limit.filter(|_| over) {
                        take = l - out.len;
                    }
                    let room = keep.saturating_sub(out.data.len());
                    let keep_now = room.min(take as usize);
                    out.data.extend_from_slice(&data[..keep_now]);
                    out.len += take;
                    if over {
                        out.error = Some(Error::BodyTooLarge(format!(
                            "{}: HTTP {}: the response body is larger than the limit of {} bytes",
                            self.what,
                            self.status,
                            limit.unwrap_or_default()
                        )));
                        break;
                    }
                }
            }
        }
        timings.body_done = Some(Instant::now());
        out
    }
}

/// Aborts the connection's task (closing the socket) when the response is dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl crate::Client {
    /// Sends `req` over a new connection to `req.addr` and returns once the response head
    /// has arrived, recording each step in `timings`. Bound it with a timeout: it has none.
    /// Errors name the method, the URL and the step, as [`crate::Client::send`]'s do.
    pub async fn trace(
        &self,
        req: &TraceRequest,
        timings: &mut Timings,
    ) -> Result<TraceResponse, Error> {
        let what = format!("{} {}", req.method, url::redact(&req.url));
        let target = url::parse(&req.url).map_err(|e| Error::Config(format!("{what}: {e}")))?;
        if target.https && req.tls.is_none() {
            return Err(Error::Config(format!("{what}: https:// needs a TLS setup")));
        }
        let head = trace_head(req, &target, self.user_agent(), &what)?;
        let addr = req.addr;

        timings.connect_start = Some(Instant::now());
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| Error::Connect(format!("{what}: connecting to {addr}: {e}")))?;
        timings.connect_done = Some(Instant::now());
        let _ = tcp.set_nodelay(true);
        let first = Arc::new(Mutex::new(None));
        let (sender, conn_task, tls) = match (target.https, &req.tls) {
            (true, Some((tls, name))) => {
                let sni = server_name(name, &what)?;
                timings.tls_start = Some(Instant::now());
                let stream = tokio_rustls::TlsConnector::from(tls.config.clone())
                    .connect(sni, tcp)
                    .await
                    .map_err(|e| handshake_error(&what, &addr.to_string(), &e))?;
                timings.tls_done = Some(Instant::now());
                let info = TlsInfo::of(stream.get_ref().1, tls.verifies());
                let (sender, task) = start(FirstByte::new(stream, first.clone()), &what).await?;
                (sender, task, Some(info))
            }
            _ => {
                let (sender, task) = start(FirstByte::new(tcp, first.clone()), &what).await?;
                (sender, task, None)
            }
        };
        timings.got_conn = Some(Instant::now());
        let mut sender = sender;
        let sent = sender.send_request(head).await;
        timings.first_byte = *first.lock().unwrap_or_else(PoisonError::into_inner);
        let resp = sent.map_err(|e| response_error(&what, &e))?;
        let (parts, body) = resp.into_parts();
        Ok(TraceResponse {
            version: if parts.version == hyper::Version::HTTP_10 {
                "HTTP/1.0"
            } else {
                "HTTP/1.1"
            },
            status: parts.status.as_u16(),
            headers: parts.headers,
            tls,
            body,
            what,
            _conn: conn_task,
        })
    }
}

/// The request as sent: origin-form target, `Host`, `User-Agent` and `Content-Length`.
fn trace_head(
    req: &TraceRequest,
    target: &url::Target,
    user_agent: &HeaderValue,
    what: &str,
) -> Result<hyper::Request<Full<Bytes>>, Error> {
    let mut headers = req.headers.clone();
    if !headers.contains_key(header::HOST) {
        let host = HeaderValue::from_str(&target.host_header)
            .map_err(|e| Error::Config(format!("{what}: host {:?}: {e}", target.host_header)))?;
        headers.insert(header::HOST, host);
    }
    if !headers.contains_key(header::USER_AGENT) {
        headers.insert(header::USER_AGENT, user_agent.clone());
    }
    crate::client::request_head(
        headers,
        &req.method,
        &req.body,
        &target.path_and_query,
        what,
    )
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

/// The HTTP/1.1 handshake; the connection runs in a task aborted with the response.
async fn start<S>(io: S, what: &str) -> Result<(Sender, AbortOnDrop), Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .title_case_headers(true)
        .handshake::<_, Full<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| Error::Io(format!("{what}: starting HTTP/1.1: {}", chain(&e))))?;
    let task = tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("traced HTTP connection ended: {}", chain(&e));
        }
    });
    Ok((sender, AbortOnDrop(task.abort_handle())))
}

/// Why no response head came: TLS, not HTTP, or the connection broke.
fn response_error(what: &str, e: &hyper::Error) -> Error {
    let detail = chain(e);
    let doing = "waiting for the response";
    if let Some(r) = rustls_error(e) {
        Error::Tls(format!("{what}: {doing}: TLS: {}", tls_detail(r)))
    } else if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() || e.is_user() {
        Error::Protocol(format!("{what}: {doing}: {detail}"))
    } else {
        Error::Io(format!("{what}: {doing}: {detail}"))
    }
}

/// Notes when the first byte was read (the response's first byte: processing ends).
struct FirstByte {
    at: Arc<Mutex<Option<Instant>>>,
    seen: bool,
}

impl FirstByte {
    fn new<S>(io: S, at: Arc<Mutex<Option<Instant>>>) -> Watched<S, FirstByte> {
        Watched::new(io, FirstByte { at, seen: false })
    }
}

impl OnRead for FirstByte {
    fn read(&mut self, _n: usize) {
        if !self.seen {
            self.seen = true;
            *self.at.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        }
    }
}
