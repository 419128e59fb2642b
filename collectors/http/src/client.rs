//! The client: one request in, one complete response out, over a pooled keep-alive
//! connection when there is one.

use crate::conn::{self, Stage};
use crate::error::{chain, rustls_error, Error};
use crate::pool::{Conn, Key, Pool, PoolStats};
use crate::tls::{Tls, TlsConfig};
use crate::url::{self, Target};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::Method;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One HTTP request: everything the client needs to send it and to bound it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: Method,
    /// `http://` or `https://`, IPv6 literals in brackets. `user:password@` in it becomes
    /// basic auth unless `headers` has `Authorization`.
    pub url: String,
    /// Sent as given. The client adds `Host`, `User-Agent` and `Content-Length` when they are
    /// missing (`Content-Length` always matches `body`).
    pub headers: HeaderMap,
    pub body: Bytes,
    /// Bounds the whole request: connecting, TLS, sending and reading the body.
    pub timeout: Duration,
    /// A larger response body is an [`Error::BodyTooLarge`].
    pub max_response_bytes: usize,
    /// The TLS setup for an `https://` URL; `None`: verify against the system CA bundle.
    /// Ignored for `http://`.
    pub tls: Option<Tls>,
}

impl Request {
    /// The timeout of [`Request::new`].
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    /// The body limit of [`Request::new`].
    pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 << 20;

    /// A request with no headers and no body, a 10 s timeout and a 16 MiB body limit.
    pub fn new(method: Method, url: impl Into<String>) -> Request {
        Request {
            method,
            url: url.into(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            timeout: Self::DEFAULT_TIMEOUT,
            max_response_bytes: Self::DEFAULT_MAX_RESPONSE_BYTES,
            tls: None,
        }
    }

    /// `GET url`.
    pub fn get(url: impl Into<String>) -> Request {
        Request::new(Method::GET, url)
    }

    /// `POST url` with `body`.
    pub fn post(url: impl Into<String>, body: impl Into<Bytes>) -> Request {
        Request {
            body: body.into(),
            ..Request::new(Method::POST, url)
        }
    }

    /// Sets a header, replacing one of the same name.
    pub fn header(mut self, name: HeaderName, value: HeaderValue) -> Request {
        self.headers.insert(name, value);
        self
    }
}

/// A complete response.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The status's reason phrase (`Too Many Requests`), empty for an unknown status.
    pub fn reason(&self) -> &'static str {
        hyper::StatusCode::from_u16(self.status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("")
    }

    /// The start of the body as text, trimmed, for error messages (a server's reason for a
    /// 400 or 429).
    pub fn body_snippet(&self, max_bytes: usize) -> String {
        let end = self.body.len().min(max_bytes);
        String::from_utf8_lossy(&self.body[..end])
            .trim()
            .to_string()
    }
}

/// The agent's HTTP/1.1 client. Clones share one connection pool; cheap to clone and to
/// keep in every module that needs it.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    user_agent: HeaderValue,
    pool: Arc<Pool>,
    /// For `https://` requests without their own setup; built on first use.
    default_tls: Mutex<Option<Tls>>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("user_agent", &self.inner.user_agent)
            .field("pool", &self.stats())
            .finish()
    }
}

impl Default for Client {
    /// A client that sends `User-Agent: eos-agent`.
    fn default() -> Self {
        Client::new("eos-agent")
    }
}

/// One call of [`Client::send`]: the request, where it goes, how messages name it
/// (`GET <url>`), and how far it got.
struct Call<'a> {
    req: &'a Request,
    target: Target,
    what: String,
    stage: Stage,
}

/// Why a round trip failed, and whether it failed on a pooled connection the server had
/// already closed (nothing came back), which makes sending again safe.
struct Failure {
    error: Error,
    stale: bool,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Failure {
            error,
            stale: false,
        }
    }
}

impl Client {
    /// A client that sends `User-Agent: <user_agent>` (e.g. `eos-agent/0.1.0`) unless a
    /// request has its own. Needs no runtime until the first request.
    pub fn new(user_agent: &str) -> Client {
        let user_agent = HeaderValue::from_str(user_agent)
            .unwrap_or_else(|_| HeaderValue::from_static("eos-agent"));
        Client {
            inner: Arc::new(Inner {
                user_agent,
                pool: Arc::new(Pool::default()),
                default_tls: Mutex::new(None),
            }),
        }
    }

    /// The `User-Agent` sent when a request has none.
    pub fn user_agent(&self) -> &HeaderValue {
        &self.inner.user_agent
    }

    /// Connection reuse so far.
    pub fn stats(&self) -> PoolStats {
        self.inner.pool.stats()
    }

    /// Sends `req` and reads the whole response, within `req.timeout`. A status that is not
    /// 2xx is a [`Response`], not an error.
    ///
    /// A pooled connection is used if one is idle for the same scheme, host, port and TLS
    /// setup. If the server closed it without answering anything, the request is sent again
    /// once on a new connection; any other failure is returned as it is.
    pub async fn send(&self, req: Request) -> Result<Response, Error> {
        let what = format!("{} {}", req.method, url::redact(&req.url));
        let target = url::parse(&req.url).map_err(|e| Error::Config(format!("{what}: {e}")))?;
        let call = Call {
            req: &req,
            target,
            what,
            stage: Stage::default(),
        };
        // Catch bad headers before connecting.
        self.head(&call)?;
        match tokio::time::timeout(req.timeout, self.exchange(&call)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout(format!(
                "{}: timed out after {:?} {}",
                call.what,
                req.timeout,
                call.stage.describe(&call.target)
            ))),
        }
    }

    async fn exchange(&self, call: &Call<'_>) -> Result<Response, Error> {
        let (req, target, what) = (call.req, &call.target, call.what.as_str());
        let tls = match (target.https, &req.tls) {
            (false, _) => None,
            (true, Some(tls)) => Some(tls.clone()),
            (true, None) => Some(self.default_tls(what)?),
        };
        let key = Key {
            https: target.https,
            host: target.host.clone(),
            port: target.port,
            tls: tls.as_ref().map(|t| t.id),
        };
        let pool = &self.inner.pool;
        while let Some(mut conn) = pool.take(&key) {
            if conn.sender.ready().await.is_err() {
                continue; // closed since it was put back
            }
            pool.note_reused();
            match self.round_trip(conn, &key, call, true).await {
                Ok(r) => return Ok(r),
                Err(Failure { error, stale: true }) => {
                    tracing::debug!("{error} (a pooled connection the server had closed; sending again on a new one)");
                    pool.note_retried();
                    break;
                }
                Err(f) => return Err(f.error),
            }
        }
        let conn = conn::open(target, tls.as_ref(), what, &call.stage).await?;
        pool.note_opened();
        self.round_trip(conn, &key, call, false)
            .await
            .map_err(|f| f.error)
    }

    /// Sends the request on `conn` and reads the answer; puts `conn` back when it can carry
    /// another. `pooled`: `conn` carried a request before.
    async fn round_trip(
        &self,
        mut conn: Conn,
        key: &Key,
        call: &Call<'_>,
        pooled: bool,
    ) -> Result<Response, Failure> {
        let (req, what) = (call.req, call.what.as_str());
        let head = self.head(call)?;
        call.stage.set(Stage::WAITING);
        let before = conn.received.load(std::sync::atomic::Ordering::Relaxed);
        let resp = match conn.sender.send_request(head).await {
            Ok(r) => r,
            Err(e) => {
                let error = hyper_error(what, "waiting for the response", &e);
                let nothing_back =
                    conn.received.load(std::sync::atomic::Ordering::Relaxed) == before;
                return Err(Failure {
                    stale: pooled && nothing_back && matches!(error, Error::Io(_)),
                    error,
                });
            }
        };
        call.stage.set(Stage::BODY);
        let (parts, body) = resp.into_parts();
        let max = req.max_response_bytes;
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        // A HEAD answer declares the length of a body it does not send.
        let declared = declared.filter(|_| req.method != Method::HEAD);
        if let Some(len) = declared.filter(|len| *len > max as u64) {
            return Err(Error::BodyTooLarge(format!(
                "{what}: HTTP {}: the response body is {len} bytes, more than the limit of {max}",
                parts.status.as_u16()
            ))
            .into());
        }
        let body = match Limited::new(body, max).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return Err(Error::BodyTooLarge(format!(
                    "{what}: HTTP {}: the response body is larger than the limit of {max} bytes",
                    parts.status.as_u16()
                ))
                .into())
            }
            Err(e) => {
                return Err(match e.downcast::<hyper::Error>() {
                    Ok(h) => hyper_error(what, "reading the response body", &h),
                    Err(e) => {
                        Error::Io(format!("{what}: reading the response body: {}", chain(&*e)))
                    }
                }
                .into())
            }
        };
        let close = [&req.headers, &parts.headers].iter().any(|h| {
            h.get_all(header::CONNECTION)
                .iter()
                .any(|v| v.to_str().is_ok_and(|v| has_token(v, "close")))
        });
        if !close {
            self.inner.pool.put(key.clone(), conn);
        }
        Ok(Response {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
        })
    }

    /// The request as hyper sends it: origin-form target, and the headers the client adds.
    fn head(&self, call: &Call<'_>) -> Result<hyper::Request<Full<Bytes>>, Error> {
        let (req, target, what) = (call.req, &call.target, call.what.as_str());
        let mut headers = req.headers.clone();
        if !headers.contains_key(header::HOST) {
            let host = HeaderValue::from_str(&target.host_header).map_err(|e| {
                Error::Config(format!("{what}: host {:?}: {e}", target.host_header))
            })?;
            headers.insert(header::HOST, host);
        }
        if !headers.contains_key(header::USER_AGENT) {
            headers.insert(header::USER_AGENT, self.inner.user_agent.clone());
        }
        if let Some((user, password)) = &target.credentials {
            if !headers.contains_key(header::AUTHORIZATION) {
                headers.insert(header::AUTHORIZATION, crate::basic_auth(user, password));
            }
        }
        request_head(
            headers,
            &req.method,
            &req.body,
            &target.path_and_query,
            what,
        )
    }

    /// The system-bundle setup for `https://` requests that bring none. Built once; a
    /// failure is not kept, so installing the bundle later helps.
    fn default_tls(&self, what: &str) -> Result<Tls, Error> {
        let mut slot = match self.inner.default_tls.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(tls) = slot.as_ref() {
            return Ok(tls.clone());
        }
        let tls = TlsConfig::default()
            .build()
            .map_err(|e| Error::Config(format!("{what}: {e}")))?;
        *slot = Some(tls.clone());
        Ok(tls)
    }
}

/// A hyper error while `doing` something: `Tls` if rustls refused, `Protocol` if the answer
/// is not HTTP, `Io` otherwise (the connection broke).
fn hyper_error(what: &str, doing: &str, e: &hyper::Error) -> Error {
    let detail = chain(e);
    if let Some(r) = rustls_error(e) {
        Error::Tls(format!(
            "{what}: {doing}: TLS: {}",
            crate::error::tls_detail(r)
        ))
    } else if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() || e.is_user() {
        Error::Protocol(format!("{what}: {doing}: {detail}"))
    } else {
        Error::Io(format!("{what}: {doing}: {detail}"))
    }
}

/// Whether a comma-separated header value has `token` (case-insensitive).
fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The request as sent: `Content-Length` always matching `body` (and present for methods that
/// expect one), no `Transfer-Encoding`, and `path_and_query` as the target. Shared by pooled
/// and traced requests.
pub(crate) fn request_head(
    mut headers: HeaderMap,
    method: &Method,
    body: &Bytes,
    path_and_query: &str,
    what: &str,
) -> Result<hyper::Request<Full<Bytes>>, Error> {
    let expects_body = [Method::POST, Method::PUT, Method::PATCH].contains(method);
    if !body.is_empty() || expects_body {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    } else {
        headers.remove(header::CONTENT_LENGTH);
    }
    headers.remove(header::TRANSFER_ENCODING);
    let uri =
        hyper::Uri::try_from(path_and_query).map_err(|e| Error::Config(format!("{what}: {e}")))?;
    let mut head = hyper::Request::new(Full::new(body.clone()));
    *head.method_mut() = method.clone();
    *head.uri_mut() = uri;
    *head.headers_mut() = headers;
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head_of(client: &Client, req: &Request) -> hyper::Request<Full<Bytes>> {
        let call = Call {
            req,
            target: url::parse(&req.url).unwrap(),
            what: "test".into(),
            stage: Stage::default(),
        };
        client.head(&call).unwrap()
    }

    #[test]
    fn head_adds_host_agent_length_and_url_credentials() {
        let client = Client::new("eos-agent/9.9");
        let req = Request::post("http://u:p@[::1]:8080/push?x=1", "abc");
        let head = head_of(&client, &req);
        assert_eq!(head.uri(), "/push?x=1");
        let h = head.headers();
        assert_eq!(h[header::HOST], "[::1]:8080");
        assert_eq!(h[header::USER_AGENT], "eos-agent/9.9");
        assert_eq!(h[header::CONTENT_LENGTH], "3");
        assert_eq!(h[header::AUTHORIZATION], "Basic dTpw");

        let req = Request::get("http://h/")
            .header(header::USER_AGENT, HeaderValue::from_static("mine"))
            .header(header::CONTENT_LENGTH, HeaderValue::from_static("99"));
        let head = head_of(&client, &req);
        assert_eq!(head.headers()[header::USER_AGENT], "mine");
        assert_eq!(head.headers().get(header::CONTENT_LENGTH), None);
        let empty_post = Request::post("http://h/", Bytes::new());
        assert_eq!(
            head_of(&client, &empty_post).headers()[header::CONTENT_LENGTH],
            "0"
        );
    }

    #[test]
    fn response_helpers_and_tokens() {
        let r = Response {
            status: 429,
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"  too many streams \n more"),
        };
        assert!(!r.is_success());
        assert_eq!(r.reason(), "Too Many Requests");
        assert_eq!(r.body_snippet(19), "too many streams");
        assert!(has_token("keep-alive, Close", "close"));
        assert!(!has_token("closed", "close"));
        assert_eq!(Client::new("bad\nagent").inner.user_agent, "eos-agent");
    }
}
