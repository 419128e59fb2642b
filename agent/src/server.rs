//! The HTTP server: one port for `/metrics`, health, reload, the status page, and the routes
//! modules own (`/probe`, `/debug/<module>/...`).

use crate::body::Body;
use crate::state::{AgentState, Trigger};
use crate::status_page;
use bytes::Bytes;
use eos_exposition::Format;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
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

type Resp = Response<Body>;

/// Accepts connections until `shutdown` resolves, then waits (bounded) for open requests.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AgentState>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and similar: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let state = state.clone();
                let service = service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(handle(&state, req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(30))
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => info!("all connections closed"),
        _ = tokio::time::sleep(Duration::from_secs(10)) => warn!("gave up waiting for open connections"),
    }
}

async fn handle(state: &AgentState, req: Request<Incoming>) -> Resp {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    match (method.clone(), path.as_str()) {
        (Method::GET | Method::HEAD, "/metrics") => metrics(state, &req).await,
        (Method::GET | Method::HEAD, "/healthz") => text(StatusCode::OK, "ok\n"),
        (Method::GET | Method::HEAD, "/readyz") => {
            if state.supervisor.ready() {
                text(StatusCode::OK, "ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "starting\n")
            }
        }
        (Method::POST | Method::PUT, "/-/reload") => match state.reload(Trigger::Requested).await {
            Ok(msg) => text(StatusCode::OK, format!("{msg}\n")),
            Err(e) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("failed to reload config: {e}\n"),
            ),
        },
        (_, "/-/reload") => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "use POST to reload the config\n",
        ),
        (Method::GET | Method::HEAD, "/") => {
            let body = status_page::render(state);
            let mut r = Response::new(Body::from(body));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        (Method::GET | Method::HEAD, "/debug/config") => {
            text(StatusCode::OK, status_page::effective_config(state))
        }
        _ => match state.supervisor.route(&path) {
            Some((module, sub)) => {
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
            None => text(
                StatusCode::NOT_FOUND,
                "not found; see / for what is served\n",
            ),
        },
    }
}

async fn metrics(state: &AgentState, req: &Request<Incoming>) -> Resp {
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

async fn module_request(
    module: Arc<dyn eos_module::Module>,
    sub_path: String,
    deadline: Instant,
    req: Request<Incoming>,
) -> Resp {
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
