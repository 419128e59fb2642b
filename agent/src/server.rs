//! The HTTP server: one port for `/metrics`, health, reload, the status page, and the routes
//! modules own (`/probe`, `/debug/<module>/...`).
//!
//! What a client may do, and what it gets otherwise:
//! - a known path with a method it does not take: 405 with `Allow`. The agent's own pages and
//!   every `/debug/...` path are read-only (GET, HEAD); a module's own top-level paths (e.g.
//!   `/probe`) also take POST, and the module answers 405 itself where it does not.
//! - `POST /-/reload` only with `--web.enable-lifecycle`, as in Prometheus; otherwise 403
//!   `Lifecycle API is not enabled.` The ConfigMap watch and SIGHUP reload without it.
//! - at most `--web.max-requests` `/metrics` requests at once (a request counts until its body
//!   is sent); more get promhttp's 503.
//! - at most `max_connections` open connections; beyond that the server stops accepting until
//!   one closes, so new clients wait in the kernel's listen queue. An idle keep-alive
//!   connection keeps its place for at most [`HEADER_READ_TIMEOUT`].
//! - request headers over [`MAX_HEADER_BYTES`]: hyper answers 431 (with no body) and closes
//!   the connection; bodies over [`MAX_BODY`]: 413.

use crate::body::Body;
use crate::limits::{ConnectionLimit, Every, RequestLimit, WARN_EVERY};
use crate::state::{AgentState, Trigger};
use crate::status_page;
use bytes::Bytes;
use eos_exposition::Format;
use http_body_util::{BodyExt, Limited};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

/// Request bodies larger than this are refused (modules get small JSON/form posts at most).
const MAX_BODY: usize = 1 << 20;

/// Request line and headers larger than this are refused with 431 (Prometheus sends well
/// under 1 KiB).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// How long a connection may take to send a request's headers, idle keep-alive time included.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What Prometheus answers to `POST /-/reload` without `--web.enable-lifecycle`.
const LIFECYCLE_DISABLED: &str = "Lifecycle API is not enabled.";

type Resp = Response<Body>;

/// How the server behaves, from the command line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Options {
    /// Whether `POST /-/reload` works (`--web.enable-lifecycle`).
    pub lifecycle: bool,
    /// At most this many `/metrics` requests at once (`--web.max-requests`; 0: no limit).
    pub max_requests: usize,
    /// At most this many open connections.
    pub max_connections: usize,
}

/// What every request handler shares.
struct Server {
    state: Arc<AgentState>,
    lifecycle: bool,
    scrapes: RequestLimit,
    /// Rate-limits the warning about refused scrapes.
    refused: Every,
}

impl Server {
    fn new(state: Arc<AgentState>, opts: &Options) -> Self {
        Server {
            state,
            lifecycle: opts.lifecycle,
            scrapes: RequestLimit::new(opts.max_requests),
            refused: Every::new(WARN_EVERY),
        }
    }
}

/// Accepts connections until `shutdown` resolves, then waits (bounded) for open requests.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AgentState>,
    opts: Options,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let server = Arc::new(Server::new(state, &opts));
    let connections = ConnectionLimit::new(opts.max_connections);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // A place first: while all are taken, stop accepting (clients wait in the listen
        // queue) instead of accepting and dropping connections.
        let place = tokio::select! {
            p = connections.acquire() => p,
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and similar: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let server = server.clone();
        let service = service_fn(move |req| {
            let server = server.clone();
            async move { Ok::<_, Infallible>(handle(&server, req).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .max_header_size(MAX_HEADER_BYTES)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(%peer, error = %e, "connection ended with an error");
            }
            drop(place);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => info!("all connections closed"),
        _ = tokio::time::sleep(Duration::from_secs(10)) => warn!("gave up waiting for open connections"),
    }
}

/// Methods of the agent's own pages and of `/debug/...`.
const READ: &[Method] = &[Method::GET, Method::HEAD];
/// Methods of `/-/reload`, as in Prometheus.
const LIFECYCLE: &[Method] = &[Method::POST, Method::PUT];
/// Methods passed on to a module's own top-level path.
const MODULE_PATH: &[Method] = &[Method::GET, Method::HEAD, Method::POST];

/// What a path is.
enum Route {
    Metrics,
    Healthz,
    Readyz,
    Reload,
    StatusPage,
    DebugConfig,
    /// A running module's `/debug/<name>/...` (`debug`) or one of its own paths.
    Module {
        module: Arc<dyn eos_module::Module>,
        sub: String,
        debug: bool,
    },
}

impl Route {
    fn find(state: &AgentState, path: &str) -> Option<Route> {
        Some(match path {
            "/metrics" => Route::Metrics,
            "/healthz" => Route::Healthz,
            "/readyz" => Route::Readyz,
            "/-/reload" => Route::Reload,
            "/" => Route::StatusPage,
            "/debug/config" => Route::DebugConfig,
            _ => {
                let (module, sub) = state.supervisor.route(path)?;
                Route::Module {
                    module,
                    sub,
                    debug: path.starts_with("/debug/"),
                }
            }
        })
    }

    fn methods(&self) -> &'static [Method] {
        match self {
            Route::Reload => LIFECYCLE,
            Route::Module { debug: false, .. } => MODULE_PATH,
            _ => READ,
        }
    }
}

async fn handle<B>(srv: &Server, req: Request<B>) -> Resp
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let path = req.uri().path().to_string();
    let Some(route) = Route::find(&srv.state, &path) else {
        return text(
            StatusCode::NOT_FOUND,
            "not found; see / for what is served\n",
        );
    };
    let allowed = route.methods();
    if !allowed.contains(req.method()) {
        return method_not_allowed(req.method(), allowed);
    }
    let state = &*srv.state;
    match route {
        Route::Metrics => {
            let Some(slot) = srv.scrapes.try_enter() else {
                return too_many_requests(srv);
            };
            // The place is freed once the body is sent (or the client is gone), as promhttp
            // frees it when its handler has written the response.
            metrics(state, &req).await.map(|b| b.holding(slot))
        }
        Route::Healthz => text(StatusCode::OK, "ok\n"),
        Route::Readyz => {
            if state.supervisor.ready() {
                text(StatusCode::OK, "ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "starting\n")
            }
        }
        Route::Reload if !srv.lifecycle => text(StatusCode::FORBIDDEN, LIFECYCLE_DISABLED),
        Route::Reload => match state.reload(Trigger::Requested).await {
            Ok(msg) => text(StatusCode::OK, format!("{msg}\n")),
            Err(e) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("failed to reload config: {e}\n"),
            ),
        },
        Route::StatusPage => {
            let body = status_page::render(state);
            let mut r = Response::new(Body::from(body));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        Route::DebugConfig => text(StatusCode::OK, status_page::effective_config(state)),
        Route::Module { module, sub, .. } => {
            let index = sub == "/";
            let deadline = request_deadline(&state.config(), &req);
            let r = module_request(module, sub, deadline, req).await;
            if index && r.status() == StatusCode::NOT_FOUND {
                // A module without its own index still gets one: its state as JSON.
                module_index(state, &path)
            } else {
                r
            }
        }
    }
}

/// 405 for a known path, with the methods it takes.
fn method_not_allowed(method: &Method, allowed: &[Method]) -> Resp {
    let list: Vec<&str> = allowed.iter().map(Method::as_str).collect();
    let mut r = text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed here; use {}\n", list.join(" or ")),
    );
    if let Ok(v) = HeaderValue::from_str(&list.join(", ")) {
        r.headers_mut().insert(ALLOW, v);
    }
    r
}

/// promhttp's answer when `--web.max-requests` scrapes are in flight already.
fn too_many_requests(srv: &Server) -> Resp {
    let max = srv.scrapes.max();
    if let Some(times) = srv.refused.due() {
        warn!(
            max_requests = max,
            refused_since_last_warning = times,
            "scrape refused: --web.max-requests reached"
        );
    }
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("Limit of concurrent requests reached ({max}), try again later.\n"),
    )
}

async fn metrics<B>(state: &AgentState, req: &Request<B>) -> Resp {
    let cfg = state.config();
    let accept = req
        .headers()
        .get(hyper::header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let format = Format::from_accept(accept);
    let params: Arc<[(String, String)]> = parse_query(req.uri().query().unwrap_or("")).into();
    if let Err(e) = state.supervisor.check_params(&params) {
        return text(StatusCode::BAD_REQUEST, format!("{e}\n"));
    }
    let mut chunks = state
        .supervisor
        .collect(format, params, request_deadline(&cfg, req))
        .await;
    chunks.push(Bytes::from_static(format.trailer()));
    let gzip = req
        .headers()
        .get(hyper::header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip);
    let compressed = if gzip { gzip_chunks(&chunks) } else { None };
    let encoded = compressed.is_some();
    let body = match compressed {
        Some(z) => Body::from(z),
        None => Body::from_chunks(chunks),
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    h.insert(
        hyper::header::VARY,
        HeaderValue::from_static("Accept-Encoding"),
    );
    if encoded {
        h.insert(
            hyper::header::CONTENT_ENCODING,
            HeaderValue::from_static("gzip"),
        );
    }
    r
}

/// Whether an `Accept-Encoding` header allows gzip (and does not refuse it with `q=0`).
fn accepts_gzip(header: &str) -> bool {
    header.split(',').any(|part| {
        let mut it = part.split(';');
        let coding = it.next().unwrap_or("").trim();
        let refused = it.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                == Some(0.0)
        });
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
    })
}

/// Compresses a scrape body; Prometheus asks for gzip, which cuts node metrics about tenfold.
fn gzip_chunks(chunks: &[Bytes]) -> Option<Vec<u8>> {
    use std::io::Write;
    let total: usize = chunks.iter().map(Bytes::len).sum();
    let mut z = flate2::write::GzEncoder::new(
        Vec::with_capacity(total / 6 + 64),
        flate2::Compression::fast(),
    );
    for c in chunks {
        z.write_all(c).ok()?;
    }
    z.finish().ok()
}

/// When a scrape (of `/metrics` or a module's path) must be answered: from Prometheus'
/// timeout header minus the offset, or the configured default.
fn request_deadline<B>(cfg: &crate::config::Config, req: &Request<B>) -> Instant {
    let budget = scrape_budget(
        req.headers()
            .get("x-prometheus-scrape-timeout-seconds")
            .and_then(|v| v.to_str().ok()),
        cfg.server.scrape_timeout.get(),
        cfg.server.scrape_timeout_offset.get(),
    );
    Instant::now() + budget
}

/// The longest a scrape may take, whatever the header says.
const MAX_SCRAPE_BUDGET: Duration = Duration::from_secs(3600);

/// How long modules get: Prometheus' timeout header minus the offset, or the configured
/// default when there is no (valid) header. Never more than an hour.
pub fn scrape_budget(header: Option<&str>, default: Duration, offset: Duration) -> Duration {
    let from_header = header
        .and_then(|h| h.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .map(|d| d.min(MAX_SCRAPE_BUDGET));
    match from_header {
        Some(t) => t
            .checked_sub(offset)
            .filter(|d| !d.is_zero())
            .unwrap_or(t / 2),
        None => default.min(MAX_SCRAPE_BUDGET),
    }
}

async fn module_request<B>(
    module: Arc<dyn eos_module::Module>,
    sub_path: String,
    deadline: Instant,
    req: Request<B>,
) -> Resp
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let method = req.method().to_string();
    let query = parse_query(req.uri().query().unwrap_or(""));
    let headers = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body over {MAX_BODY} bytes\n"),
            )
        }
    };
    let r = module
        .handle(eos_module::http::Request {
            method,
            path: sub_path,
            query,
            headers,
            body,
            deadline,
        })
        .await;
    into_hyper(r)
}

/// A module's response as hyper's. A header a module gets wrong (a name or value HTTP does not
/// allow) is dropped with a warning rather than failing the request.
fn into_hyper(r: eos_module::http::Response) -> Resp {
    let mut resp = Response::new(Body::from(r.body));
    *resp.status_mut() =
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    match HeaderValue::from_str(&r.content_type) {
        Ok(v) => {
            h.insert(CONTENT_TYPE, v);
        }
        Err(_) => warn!(content_type = %r.content_type, "module sent an invalid content type"),
    }
    for (k, v) in r.headers {
        match (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            (Ok(k), Ok(v)) => {
                h.append(k, v);
            }
            _ => warn!(header = %k, "module sent an invalid header; dropped"),
        }
    }
    resp
}

/// `/debug/<module>/` for a module that serves no index itself: what the status page shows.
fn module_index(state: &AgentState, path: &str) -> Resp {
    let name = path.trim_start_matches("/debug/").trim_end_matches('/');
    let view = state
        .supervisor
        .views()
        .into_iter()
        .find(|v| v.name == name);
    let Some(v) = view else {
        return text(StatusCode::NOT_FOUND, "no such module\n");
    };
    let status: serde_json::Map<String, serde_json::Value> = v
        .status
        .into_iter()
        .map(|(k, val)| (k, serde_json::Value::String(val)))
        .collect();
    let body = serde_json::json!({
        "module": v.name,
        "enabled": v.enabled,
        "up": v.up,
        "problem": v.problem,
        "degraded": v.degraded,
        "status": status,
        "paths": v.paths,
    });
    let mut r = Response::new(Body::from(format!("{body:#}\n")));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn text(status: StatusCode, body: impl Into<String>) -> Resp {
    let mut r = Response::new(Body::from(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Decodes `a=1&b=x%20y&c[]=z` into pairs, in order. Invalid escapes are kept as written.
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        assert_eq!(
            parse_query("collect[]=cpu&collect%5B%5D=meminfo&x=a+b%2Fc&flag&bad=%zz%4"),
            vec![
                ("collect[]".into(), "cpu".into()),
                ("collect[]".into(), "meminfo".into()),
                ("x".into(), "a b/c".into()),
                ("flag".into(), String::new()),
                ("bad".into(), "%zz%4".into()),
            ]
        );
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip("gzip"));
        assert!(accepts_gzip("deflate, GZIP;q=0.5"));
        assert!(accepts_gzip("*"));
        assert!(!accepts_gzip("gzip;q=0"));
        assert!(!accepts_gzip("identity"));
        let z = gzip_chunks(&[Bytes::from_static(b"node_load1 0.5\n")]).expect("gzip");
        assert_eq!(&z[..2], &[0x1f, 0x8b]);
    }

    #[test]
    fn module_responses_keep_their_type_and_headers() {
        let r = into_hyper(
            eos_module::http::Response::new(
                200,
                String::from("application/openmetrics-text; version=1.0.0; charset=utf-8"),
                b"x".to_vec(),
            )
            .with_header("Cache-Control", "no-store")
            .with_header("bad header", "x")
            .with_header("x-ok", "a\nb"),
        );
        assert_eq!(
            r.headers()[CONTENT_TYPE],
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_eq!(r.headers().len(), 2, "the invalid headers are dropped");
        let r = into_hyper(eos_module::http::Response::new(999, "a\nb", Vec::new()));
        assert_eq!(r.status(), StatusCode::from_u16(999).unwrap());
        assert!(r.headers().get(CONTENT_TYPE).is_none());
    }

    /// A server over the embedded default config, its modules not started.
    fn server(opts: Options) -> Server {
        use crate::config::{load, ConfigSource, Overrides};
        let (source, overrides) = (ConfigSource::Embedded, Overrides::default());
        let (cfg, hash) = load(&source, &overrides).expect("embedded config");
        let bound = std::net::SocketAddr::from(([127, 0, 0, 1], 9100));
        let state = AgentState::new(source, overrides, cfg, hash, bound);
        Server::new(Arc::new(state), &opts)
    }

    const OPTS: Options = Options {
        lifecycle: false,
        max_requests: 40,
        max_connections: 16,
    };

    fn request(method: &str, path: &str) -> Request<http_body_util::Empty<Bytes>> {
        Request::builder()
            .method(method)
            .uri(path)
            .body(http_body_util::Empty::new())
            .expect("request")
    }

    /// Status, `Allow` header and body.
    async fn call(srv: &Server, method: &str, path: &str) -> (u16, Option<String>, String) {
        let r = handle(srv, request(method, path)).await;
        let allow = r
            .headers()
            .get(ALLOW)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let status = r.status().as_u16();
        let body = r.into_body().collect().await.map(|c| c.to_bytes());
        let body = String::from_utf8_lossy(body.as_deref().unwrap_or_default()).into_owned();
        (status, allow, body)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrong_method_on_a_known_path_is_405_with_allow() {
        let srv = server(OPTS);
        for (method, path) in [
            ("DELETE", "/metrics"),
            ("POST", "/metrics"),
            ("POST", "/"),
            ("PUT", "/healthz"),
            ("DELETE", "/readyz"),
            ("POST", "/debug/config"),
        ] {
            let (status, allow, body) = call(&srv, method, path).await;
            assert_eq!(status, 405, "{method} {path}");
            assert_eq!(allow.as_deref(), Some("GET, HEAD"), "{method} {path}");
            assert_eq!(
                body,
                format!("{method} is not allowed here; use GET or HEAD\n")
            );
        }
        let (status, allow, _) = call(&srv, "GET", "/-/reload").await;
        assert_eq!((status, allow.as_deref()), (405, Some("POST, PUT")));
        assert_eq!(call(&srv, "DELETE", "/no/such/page").await.0, 404);
        assert_eq!(call(&srv, "HEAD", "/healthz").await.0, 200);
        assert_eq!(call(&srv, "GET", "/metrics").await.0, 200);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reload_over_http_only_with_the_lifecycle_flag() {
        let srv = server(OPTS);
        for method in ["POST", "PUT"] {
            let (status, _, body) = call(&srv, method, "/-/reload").await;
            assert_eq!(
                (status, body.as_str()),
                (403, "Lifecycle API is not enabled.")
            );
        }
        let srv = server(Options {
            lifecycle: true,
            ..OPTS
        });
        // Stopped, so the reload is refused, but it was tried: not 403.
        srv.state.stop().await;
        let (status, _, body) = call(&srv, "POST", "/-/reload").await;
        assert_eq!(status, 500, "{body}");
        assert!(body.contains("shutting down"), "{body}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scrapes_beyond_max_requests_get_503_until_one_is_sent() {
        let srv = server(Options {
            max_requests: 1,
            ..OPTS
        });
        // A scrape in flight: its response built but not yet sent.
        let first = handle(&srv, request("GET", "/metrics")).await;
        assert_eq!(first.status(), StatusCode::OK);
        let (status, _, body) = call(&srv, "GET", "/metrics").await;
        assert_eq!(status, 503);
        assert_eq!(
            body,
            "Limit of concurrent requests reached (1), try again later.\n"
        );
        // Other paths are not limited.
        assert_eq!(call(&srv, "GET", "/healthz").await.0, 200);
        // Sent: the place is free again.
        let sent = first.into_body().collect().await.map(|c| c.to_bytes());
        assert!(sent.is_ok_and(|b| !b.is_empty()));
        assert_eq!(call(&srv, "GET", "/metrics").await.0, 200);
        assert_eq!(call(&srv, "GET", "/metrics").await.0, 200);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_request_limit_with_zero() {
        let srv = server(Options {
            max_requests: 0,
            ..OPTS
        });
        let mut held = Vec::new();
        for _ in 0..50 {
            let r = handle(&srv, request("GET", "/metrics")).await;
            assert_eq!(r.status(), StatusCode::OK);
            held.push(r);
        }
    }

    #[test]
    fn budget_from_header() {
        let d = Duration::from_secs(10);
        let o = Duration::from_millis(500);
        assert_eq!(scrape_budget(None, d, o), d);
        assert_eq!(scrape_budget(Some("5"), d, o), Duration::from_millis(4500));
        assert_eq!(scrape_budget(Some("0.4"), d, o), Duration::from_millis(200));
        assert_eq!(scrape_budget(Some("junk"), d, o), d);
        assert_eq!(scrape_budget(Some("-3"), d, o), d);
        // Absurd values are clamped instead of overflowing Duration or Instant.
        for huge in ["1e19", "1e20", "1e308", "inf", "NaN"] {
            let b = scrape_budget(Some(huge), d, o);
            assert!(b <= MAX_SCRAPE_BUDGET, "{huge}: {b:?}");
            assert!(Instant::now().checked_add(b).is_some());
        }
    }
}
