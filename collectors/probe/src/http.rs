//! The http prober: blackbox_exporter's `ProbeHTTP`, with its metric names, help texts,
//! labels and semantics.
//!
//! The target is a URL (`http://` is put in front of one without `http://` or `https://`).
//! Its host is resolved with the preferred IP protocol and checked against the allow list;
//! every redirect is checked again (its host and addresses) before it is followed. Each
//! request goes over a new connection ([`eos_http::Client::trace`]); phase times are summed
//! over redirects as upstream sums them:
//!
//! - `resolve`: the target's lookup, plus each redirect's to a name;
//! - `connect`: the TCP connect (for `http://`, up to the connection being ready);
//! - `tls`: the TLS handshake;
//! - `processing`: the connection being ready → the first response byte;
//! - `transfer`: the first response byte → the body read and checked (final response only).
//!
//! As Go's client with blackbox_exporter's settings: at most 10 redirects (the 11th
//! redirect response is the final one, `probe_http_redirects` 11), a redirect that is not
//! followed is the final response (its body unread), 301/302/303 turn other methods into
//! `GET` without a body, 307/308 keep both, `Referer` is set, `Authorization`/`Cookie`
//! headers from `headers` are dropped once a redirect leaves the host (the configured
//! `basic_auth`/`authorization`/`bearer_token` is sent to every hop, as Prometheus' round
//! trippers do), cookies set along the way are sent back (a small cookie jar), `Connection:
//! close` and no `Accept-Encoding` are sent.
//!
//! Where eos departs:
//! - HTTP/1.1 only: `enable_http2` is accepted, `probe_http_version` is 1.1 (or 1.0).
//! - The `User-Agent` is the agent's (`eos-agent/<version>`) unless `headers` sets one.
//! - Passwords in URLs are hidden in the probe log.
//! - The cookie jar knows no public-suffix list: a `Domain` must have a dot (or be the
//!   host); a configured `Cookie` header is sent as it is on every hop that keeps it.
//! - A `Host` header's port is not part of the TLS server name.
//! - Redirect hops to names are resolved with `preferred_ip_protocol` as the target is.
//! - The "Response timings for roundtrip" log line has the phase durations, not timestamps.

use crate::config::HttpProbe;
use crate::log::ProbeLog;
use crate::prober::Probe;
use crate::registry::Registry;
use crate::resolve::{self, ResolveError};
use crate::tls_info;
use bytes::Bytes;
use eos_http::header::{self, HeaderMap, HeaderName, HeaderValue};
use eos_http::{BodyRead, Method, Timings, Tls, TraceRequest, TraceResponse};
use eos_module::civil;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

const DURATION: &str = "probe_http_duration_seconds";
const DURATION_HELP: &str = "Duration of http request by phase, summed over all redirects";
const CONTENT_LENGTH: &str = "probe_http_content_length";
const CONTENT_LENGTH_HELP: &str = "Length of http content response";
const BODY_LENGTH: &str = "probe_http_uncompressed_body_length";
const BODY_LENGTH_HELP: &str = "Length of uncompressed response body";
const REDIRECTS: &str = "probe_http_redirects";
const REDIRECTS_HELP: &str = "The number of redirects";
const SSL: &str = "probe_http_ssl";
const SSL_HELP: &str = "Indicates if SSL was used for the final redirect";
const STATUS: &str = "probe_http_status_code";
const STATUS_HELP: &str = "Response HTTP status code";
const VERSION: &str = "probe_http_version";
const VERSION_HELP: &str = "Returns the version of HTTP of the probe response";
const REGEX: &str = "probe_failed_due_to_regex";
const REGEX_HELP: &str = "Indicates if probe failed due to regex";
const LAST_MODIFIED: &str = "probe_http_last_modified_timestamp_seconds";
const LAST_MODIFIED_HELP: &str = "Returns the Last-Modified HTTP response header in unixtime";

/// Redirects followed at most, as blackbox_exporter's `CheckRedirect` counts them.
const MAX_REDIRECTS: usize = 10;
/// Body bytes kept for the regular expressions when `body_size_limit` is 0.
const MAX_KEPT_BODY: u64 = 64 << 20;
/// The prober stops this much before the probe's deadline, to write its metrics.
const MARGIN: Duration = Duration::from_millis(5);

/// Probes `p.target`.
pub async fn probe(p: &mut Probe<'_>) -> bool {
    let cfg = &p.module.http;
    let deadline = p
        .deadline
        .checked_sub(MARGIN)
        .unwrap_or(p.deadline)
        .max(Instant::now());
    // Registered up front by upstream: written (as 0) even when the probe stops early.
    for (name, help) in [
        (CONTENT_LENGTH, CONTENT_LENGTH_HELP),
        (BODY_LENGTH, BODY_LENGTH_HELP),
        (REDIRECTS, REDIRECTS_HELP),
        (SSL, SSL_HELP),
        (STATUS, STATUS_HELP),
        (VERSION, VERSION_HELP),
        (REGEX, REGEX_HELP),
    ] {
        p.out.gauge(name, help, 0.0);
    }

    let target = if p.target.starts_with("http://") || p.target.starts_with("https://") {
        p.target.to_string()
    } else {
        format!("http://{}", p.target)
    };
    let mut url = match Url::parse(&target) {
        Ok(u) => u,
        Err(e) => {
            p.log.error("Could not parse target URL", &[("err", &e)]);
            return false;
        }
    };

    let resolved = p.resolve(&url.host, cfg).await;
    if let Some(took) = p.out.value("probe_dns_lookup_time_seconds", &[]) {
        p.out
            .gauge_add(DURATION, DURATION_HELP, &[("phase", "resolve")], took);
    }
    let Ok(ip) = resolved else {
        return false;
    };

    // The TLS server name: tls_config.server_name, else a Host header, else the target's
    // host; for a redirect elsewhere, that URL's host.
    let host_header_cfg = cfg
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.clone());
    let configured_name = if !cfg.tls_config.server_name.is_empty() {
        cfg.tls_config.server_name.clone()
    } else if let Some(h) = &host_header_cfg {
        strip_port(h).to_string()
    } else {
        url.host.clone()
    };
    let orig_authority = url.authority();
    url.host = ip.to_string();
    let request = match Request::new(cfg, p.env.http.user_agent()) {
        Ok(r) => r,
        Err(e) => {
            p.log.error("Error creating request", &[("err", &e)]);
            return false;
        }
    };
    for phase in ["connect", "tls", "processing", "transfer"] {
        p.out
            .gauge_add(DURATION, DURATION_HELP, &[("phase", phase)], 0.0);
    }

    let mut run = Run {
        cfg,
        deadline,
        first_authority: url.authority(),
        initial_host: host_header_cfg.unwrap_or(orig_authority),
        configured_name,
        tls: None,
        jar: Jar::default(),
        hops: Vec::new(),
        redirects: 0,
    };
    let outcome = run.exchange(p, url, ip, request).await;
    let final_hop = match outcome {
        Exchange::Denied => return false,
        Exchange::Failed => None,
        Exchange::Response { resp, errored } => Some((resp, errored)),
    };

    let mut success = false;
    let mut body_len = 0u64;
    let mut content_length = 0i64;
    let mut status = 0u16;
    let mut final_tls = None;
    if let Some((mut resp, errored)) = final_hop {
        status = resp.status;
        p.log
            .info("Received HTTP response", &[("status_code", &status)]);
        success = status_ok(cfg, status, p.log);
        if success
            && (!cfg.fail_if_header_matches.is_empty()
                || !cfg.fail_if_header_not_matches.is_empty())
        {
            success = match_headers(cfg, &resp.headers, p.log);
            p.out
                .gauge(REGEX, REGEX_HELP, if success { 0.0 } else { 1.0 });
        }
        let body_regex = success
            && (!cfg.fail_if_body_matches_regexp.is_empty()
                || !cfg.fail_if_body_not_matches_regexp.is_empty());
        let limit = (cfg.body_size_limit > 0).then_some(cfg.body_size_limit);
        let hop = run.hops.len() - 1;
        if errored {
            // A redirect not followed: Go has closed its body already.
            if body_regex {
                p.log.error(
                    "Error reading HTTP body",
                    &[("err", &"http: read on closed response body")],
                );
                success = false;
                p.out.gauge(REGEX, REGEX_HELP, 1.0);
            }
        } else {
            let keep = if body_regex {
                limit.unwrap_or(MAX_KEPT_BODY).min(MAX_KEPT_BODY) as usize
            } else {
                0
            };
            let read = resp
                .read_body(limit, keep, Some(deadline), &mut run.hops[hop].timings)
                .await;
            if body_regex {
                success = match_body(cfg, &read, keep, p.log);
                p.out
                    .gauge(REGEX, REGEX_HELP, if success { 0.0 } else { 1.0 });
            }
            if let Some(e) = &read.error {
                p.log
                    .info("Failed to read HTTP response body", &[("err", e)]);
                success = false;
            }
            body_len = read.len;
        }
        run.hops[hop].timings.body_done = Some(Instant::now());

        if let Some(t) = resp
            .headers
            .get(header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_http_date)
        {
            p.out.gauge(LAST_MODIFIED, LAST_MODIFIED_HELP, t as f64);
        }
        let version = match resp.version {
            "HTTP/1.0" => 1.0,
            _ => 1.1,
        };
        p.out.gauge(VERSION, VERSION_HELP, version);
        if !cfg.valid_http_versions.is_empty()
            && !cfg.valid_http_versions.iter().any(|v| v == resp.version)
        {
            p.log
                .error("Invalid HTTP version number", &[("version", &resp.version)]);
            success = false;
        }
        content_length = go_content_length(&run.hops[hop].method, status, &resp.headers);
        final_tls = resp
            .tls
            .take()
            .map(|info| (info, run.hops[hop].tls.clone()));
    }

    run.record_phases(p.out, p.log);

    if let Some((info, setup)) = final_tls {
        p.out.gauge(SSL, SSL_HELP, 1.0);
        let anchors: &[_] = setup.as_ref().map_or(&[], |t| t.trust_anchors());
        tls_info::record(p.out, &info, anchors, true);
        if cfg.fail_if_ssl {
            p.log.error("Final request was over SSL", &[]);
            success = false;
        }
    } else if cfg.fail_if_not_ssl && success {
        p.log.error("Final request was not over SSL", &[]);
        success = false;
    }
    p.out.gauge(STATUS, STATUS_HELP, f64::from(status));
    p.out
        .gauge(CONTENT_LENGTH, CONTENT_LENGTH_HELP, content_length as f64);
    p.out.gauge(BODY_LENGTH, BODY_LENGTH_HELP, body_len as f64);
    p.out.gauge(REDIRECTS, REDIRECTS_HELP, run.redirects as f64);
    success
}

/// `host:port` → `host` (brackets of an IPv6 address dropped).
fn strip_port(hostport: &str) -> &str {
    if let Some(rest) = hostport.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match hostport.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') && p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => hostport,
    }
}

/// `valid_status_codes`, or 2xx.
fn status_ok(cfg: &HttpProbe, status: u16, log: &mut ProbeLog) -> bool {
    if !cfg.valid_status_codes.is_empty() {
        if cfg.valid_status_codes.contains(&status) {
            return true;
        }
        let valid: Vec<String> = cfg.valid_status_codes.iter().map(u16::to_string).collect();
        log.info(
            "Invalid HTTP response status code",
            &[
                ("status_code", &status),
                ("valid_status_codes", &format!("[{}]", valid.join(" "))),
            ],
        );
        return false;
    }
    if (200..300).contains(&status) {
        return true;
    }
    log.info(
        "Invalid HTTP response status code, wanted 2xx",
        &[("status_code", &status)],
    );
    false
}

/// `fail_if_header_matches` and `fail_if_header_not_matches`, as upstream.
fn match_headers(cfg: &HttpProbe, headers: &HeaderMap, log: &mut ProbeLog) -> bool {
    let values = |name: &str| -> Vec<String> {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(n) => headers
                .get_all(n)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    };
    for (fail_on_match, list) in [
        (true, &cfg.fail_if_header_matches),
        (false, &cfg.fail_if_header_not_matches),
    ] {
        for m in list {
            let vals = values(&m.header);
            if vals.is_empty() {
                if m.allow_missing {
                    continue;
                }
                log.error("Missing required header", &[("header", &m.header)]);
                return false;
            }
            let re = match regex::Regex::new(&m.regexp) {
                Ok(re) => re,
                Err(e) => {
                    log.error(
                        "Invalid regular expression",
                        &[("regexp", &m.regexp), ("err", &e)],
                    );
                    return false;
                }
            };
            let any = vals.iter().any(|v| re.is_match(v));
            if fail_on_match && any {
                log.error(
                    "Header matched regular expression",
                    &[
                        ("header", &m.header),
                        ("regexp", &m.regexp),
                        ("value_count", &vals.len()),
                    ],
                );
                return false;
            }
            if !fail_on_match && !any {
                log.error(
                    "Header did not match regular expression",
                    &[
                        ("header", &m.header),
                        ("regexp", &m.regexp),
                        ("value_count", &vals.len()),
                    ],
                );
                return false;
            }
        }
    }
    true
}

/// `fail_if_body_matches_regexp` and `fail_if_body_not_matches_regexp` over the body read.
fn match_body(cfg: &HttpProbe, read: &BodyRead, keep: usize, log: &mut ProbeLog) -> bool {
    if let Some(e) = &read.error {
        log.error("Error reading HTTP body", &[("err", e)]);
        return false;
    }
    if read.len > keep as u64 {
        log.error(
            "Error reading HTTP body",
            &[(
                "err",
                &format!("the body is larger than the {keep} bytes eos keeps for regular expressions; set body_size_limit"),
            )],
        );
        return false;
    }
    for (fail_on_match, list) in [
        (true, &cfg.fail_if_body_matches_regexp),
        (false, &cfg.fail_if_body_not_matches_regexp),
    ] {
        for r in list {
            let re = match regex::bytes::Regex::new(r) {
                Ok(re) => re,
                Err(e) => {
                    log.error("Invalid regular expression", &[("regexp", r), ("err", &e)]);
                    return false;
                }
            };
            let found = re.is_match(&read.data);
            if fail_on_match && found {
                log.error("Body matched regular expression", &[("regexp", r)]);
                return false;
            }
            if !fail_on_match && !found {
                log.error("Body did not match regular expression", &[("regexp", r)]);
                return false;
            }
        }
    }
    true
}

/// Go's `Response.ContentLength`: the `Content-Length` of a `HEAD` answer, 0 for 1xx, 204
/// and 304, -1 when chunked or not declared.
fn go_content_length(method: &Method, status: u16, headers: &HeaderMap) -> i64 {
    let declared = || {
        headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    if *method == Method::HEAD {
        return declared().unwrap_or(-1);
    }
    if (100..200).contains(&status) || status == 204 || status == 304 {
        return 0;
    }
    let chunked = headers.get_all(header::TRANSFER_ENCODING).iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("chunked"))
        })
    });
    if chunked {
        return -1;
    }
    declared().unwrap_or(-1)
}

/// What the probe sends, from the module: method, body, headers and auth.
struct Request {
    method: Method,
    body: Bytes,
    /// `headers` but `Host`, with `User-Agent` defaulted.
    headers: HeaderMap,
    /// From `basic_auth`, `authorization` or `bearer_token(_file)`.
    auth: Option<HeaderValue>,
}

impl Request {
    fn new(cfg: &HttpProbe, user_agent: &HeaderValue) -> Result<Request, String> {
        let method = if cfg.method.is_empty() {
            Method::GET
        } else {
            Method::from_bytes(cfg.method.as_bytes())
                .map_err(|_| format!("net/http: invalid method {:?}", cfg.method))?
        };
        let body = if !cfg.body_file.as_os_str().is_empty() {
            let f = cfg.body_file.display();
            Bytes::from(std::fs::read(&cfg.body_file).map_err(|e| format!("open {f}: {e}"))?)
        } else {
            Bytes::from(cfg.body.clone())
        };
        let mut headers = HeaderMap::new();
        for (k, v) in &cfg.headers {
            if k.eq_ignore_ascii_case("host") {
                continue;
            }
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("header {k:?}: not a valid header name"))?;
            let value = HeaderValue::from_str(v)
                .map_err(|_| format!("header {k:?}: not a valid header value"))?;
            headers.insert(name, value);
        }
        if !headers.contains_key(header::USER_AGENT) {
            headers.insert(header::USER_AGENT, user_agent.clone());
        }
        let read = |path: &std::path::Path, what: &str| -> Result<String, String> {
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("unable to read {what} {}: {e}", path.display()))
        };
        let secret = |v: &str| -> Result<HeaderValue, String> {
            let mut h = HeaderValue::from_str(v)
                .map_err(|_| "the credentials cannot go in an HTTP header".to_string())?;
            h.set_sensitive(true);
            Ok(h)
        };
        let auth = if let Some(b) = &cfg.basic_auth {
            let password = match &b.password {
                Some(p) => p.expose().to_string(),
                None if !b.password_file.as_os_str().is_empty() => {
                    read(&b.password_file, "basic auth password file")?
                }
                None => String::new(),
            };
            Some(eos_http::basic_auth(&b.username, &password))
        } else if let Some(a) = &cfg.authorization {
            let kind = if a.kind.is_empty() { "Bearer" } else { &a.kind };
            let creds = match &a.credentials {
                Some(c) => c.expose().to_string(),
                None if !a.credentials_file.as_os_str().is_empty() => {
                    read(&a.credentials_file, "authorization credentials file")?
                }
                None => String::new(),
            };
            Some(secret(&format!("{kind} {creds}"))?)
        } else if let Some(t) = &cfg.bearer_token {
            Some(secret(&format!("Bearer {}", t.expose()))?)
        } else if !cfg.bearer_token_file.as_os_str().is_empty() {
            let t = read(&cfg.bearer_token_file, "bearer token file")?;
            Some(secret(&format!("Bearer {t}"))?)
        } else {
            None
        };
        Ok(Request {
            method,
            body,
            headers,
            auth,
        })
    }
}

/// One request of the probe (the target, then each redirect followed).
struct Hop {
    method: Method,
    https: bool,
    /// Seconds resolving this hop's host (0 for an address; the target's is `resolve` already).
    resolve: f64,
    timings: Timings,
    /// The TLS setup used, for its trust anchors.
    tls: Option<Tls>,
}

/// How the exchange ended.
enum Exchange {
    /// The allow list refused a redirect (recorded with `p.deny`).
    Denied,
    /// No response (logged).
    Failed,
    /// The final response; `errored`: a redirect that was not followed.
    Response {
        resp: Box<TraceResponse>,
        errored: bool,
    },
}

/// The state of one probe's requests.
struct Run<'c> {
    cfg: &'c HttpProbe,
    deadline: Instant,
    /// The first request's URL authority (the resolved address): redirects elsewhere get
    /// the TLS server name of their own URL.
    first_authority: String,
    /// The first request's `Host`.
    initial_host: String,
    configured_name: String,
    tls: Option<Tls>,
    jar: Jar,
    hops: Vec<Hop>,
    redirects: usize,
}

impl Run<'_> {
    async fn exchange(
        &mut self,
        p: &mut Probe<'_>,
        mut url: Url,
        first_ip: IpAddr,
        req: Request,
    ) -> Exchange {
        let follow = self.cfg.follows_redirects();
        let mut method = req.method.clone();
        let mut body = req.body.clone();
        let mut headers = req.headers.clone();
        let mut host = self.initial_host.clone();
        let mut referer: Option<String> = None;
        let initial_url_host = self.first_authority.clone();
        loop {
            p.log.info(
                "Making HTTP request",
                &[("url", &url.redacted()), ("host", &host)],
            );
            let mut hop = Hop {
                method: method.clone(),
                https: url.https,
                resolve: 0.0,
                timings: Timings::default(),
                tls: None,
            };
            let ip = if self.hops.is_empty() {
                first_ip
            } else if let Ok(ip) = url.host.parse::<IpAddr>() {
                if let Err(why) = p.env.allow.check_ip(ip) {
                    p.deny(why);
                    return Exchange::Denied;
                }
                ip
            } else {
                let start = Instant::now();
                let mut scratch = Registry::new();
                let found = tokio::time::timeout_at(
                    self.deadline.into(),
                    resolve::resolve_all(
                        &url.host,
                        &self.cfg.preferred_ip_protocol,
                        self.cfg.ip_protocol_fallback,
                        &p.env.allow,
                        &mut scratch,
                        p.log,
                    ),
                )
                .await;
                hop.resolve = start.elapsed().as_secs_f64();
                match found {
                    Ok(Ok(ips)) => ips[0],
                    Ok(Err(ResolveError::Denied(why))) => {
                        p.deny(why);
                        return Exchange::Denied;
                    }
                    Ok(Err(ResolveError::Failed(e))) => {
                        self.hops.push(hop);
                        return self.failed(p.log, &method, &url, &e);
                    }
                    Err(_) => {
                        self.hops.push(hop);
                        return self.failed(p.log, &method, &url, "context deadline exceeded");
                    }
                }
            };
            let authority = url.authority();
            let name = if authority == self.first_authority {
                self.configured_name.clone()
            } else {
                p.log.info(
                    "Address does not match first address, not sending TLS ServerName",
                    &[("first", &self.first_authority), ("address", &authority)],
                );
                url.host.clone()
            };
            let tls = if url.https {
                match self.tls_setup() {
                    Ok(t) => Some((t, name)),
                    Err(e) => {
                        self.hops.push(hop);
                        return self.failed(p.log, &method, &url, &e);
                    }
                }
            } else {
                None
            };
            hop.tls = tls.as_ref().map(|(t, _)| t.clone());
            let sent = match self.headers_for(&url, &headers, &host, referer.as_deref(), &req) {
                Ok(h) => h,
                Err(e) => {
                    self.hops.push(hop);
                    return self.failed(p.log, &method, &url, &e);
                }
            };
            let port = url.port_number();
            let trace = TraceRequest {
                addr: SocketAddr::new(ip, port),
                method: method.clone(),
                url: url.redacted(),
                headers: sent,
                body: body.clone(),
                tls,
            };
            let got = tokio::time::timeout_at(
                self.deadline.into(),
                p.env.http.trace(&trace, &mut hop.timings),
            )
            .await;
            let resp = match got {
                Ok(Ok(resp)) => resp,
                Ok(Err(e)) => {
                    self.hops.push(hop);
                    return self.failed(p.log, &method, &url, &e.to_string());
                }
                Err(_) => {
                    self.hops.push(hop);
                    return self.failed(p.log, &method, &url, "context deadline exceeded");
                }
            };
            self.jar.store(&url, &resp.headers);
            self.hops.push(hop);
            let location = resp
                .headers
                .get(header::LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .filter(|l| !l.is_empty());
            let (Some(loc), true) = (location, is_redirect(resp.status)) else {
                return Exchange::Response {
                    resp: Box::new(resp),
                    errored: false,
                };
            };
            let (next, relative) = match url.join(&loc) {
                Ok(n) => n,
                Err(e) => {
                    let e = format!("failed to parse Location header {loc:?}: {e}");
                    return self.failed(p.log, &method, &url, &e);
                }
            };
            p.log.info("Received redirect", &[("location", &loc)]);
            self.redirects = self.hops.len();
            if self.redirects > MAX_REDIRECTS || !follow {
                p.log.info("Not following redirect", &[]);
                return Exchange::Response {
                    resp: Box::new(resp),
                    errored: true,
                };
            }
            let status = resp.status;
            // Closes the connection (Go reads and drops the body).
            drop(resp);
            // 301, 302 and 303 make a GET (a HEAD stays one) without a body; 307 and 308
            // keep both.
            if [301, 302, 303].contains(&status) {
                if method != Method::GET && method != Method::HEAD {
                    method = Method::GET;
                }
                body = Bytes::new();
            }
            host = if relative && self.initial_host != initial_url_host {
                self.initial_host.clone()
            } else {
                next.authority()
            };
            if !is_domain_or_subdomain(&next.canonical_addr(), &url.canonical_addr()) {
                for h in ["authorization", "www-authenticate", "cookie", "cookie2"] {
                    headers.remove(h);
                }
            }
            referer = if url.https && !next.https {
                None
            } else {
                Some(url.without_userinfo())
            };
            url = next;
        }
    }

    /// Logs a request that got no response.
    fn failed(&mut self, log: &mut ProbeLog, method: &Method, url: &Url, err: &str) -> Exchange {
        let err = if err.starts_with(method.as_str()) {
            err.to_string()
        } else {
            format!("{method} {}: {err}", url.redacted())
        };
        log.error("Error for HTTP request", &[("err", &err)]);
        Exchange::Failed
    }

    /// The module's TLS setup, built on first use.
    fn tls_setup(&mut self) -> Result<Tls, String> {
        if let Some(t) = &self.tls {
            return Ok(t.clone());
        }
        let t = self.cfg.tls_config.build()?;
        self.tls = Some(t.clone());
        Ok(t)
    }

    /// The headers of one hop.
    fn headers_for(
        &self,
        url: &Url,
        kept: &HeaderMap,
        host: &str,
        referer: Option<&str>,
        req: &Request,
    ) -> Result<HeaderMap, String> {
        let mut h = kept.clone();
        h.insert(
            header::HOST,
            HeaderValue::from_str(host).map_err(|_| format!("host {host:?}: not a valid Host"))?,
        );
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        if let Some(r) = referer {
            if !h.contains_key(header::REFERER) {
                if let Ok(v) = HeaderValue::from_str(r) {
                    h.insert(header::REFERER, v);
                }
            }
        }
        if let Some(c) = self.jar.header(url) {
            let joined = match h.get(header::COOKIE).and_then(|v| v.to_str().ok()) {
                Some(own) => format!("{own}; {c}"),
                None => c,
            };
            if let Ok(v) = HeaderValue::from_str(&joined) {
                h.insert(header::COOKIE, v);
            }
        }
        if !h.contains_key(header::AUTHORIZATION) {
            if let Some((user, password)) = url.credentials() {
                h.insert(
                    header::AUTHORIZATION,
                    eos_http::basic_auth(&user, &password),
                );
            } else if let Some(a) = &req.auth {
                h.insert(header::AUTHORIZATION, a.clone());
            }
        }
        Ok(h)
    }

    /// Adds the phases of every hop as upstream does, and logs each hop's.
    fn record_phases(&self, out: &mut Registry, log: &mut ProbeLog) {
        let secs = |a: Option<Instant>, b: Option<Instant>| match (a, b) {
            (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
            _ => 0.0,
        };
        for (i, hop) in self.hops.iter().enumerate() {
            let t = &hop.timings;
            let connect = if hop.https {
                secs(t.connect_start, t.connect_done)
            } else {
                secs(t.connect_start, t.got_conn)
            };
            let tls = secs(t.tls_start, t.tls_done);
            let processing = secs(t.got_conn, t.first_byte);
            let transfer = secs(t.first_byte, t.body_done);
            log.info(
                "Response timings for roundtrip",
                &[
                    ("roundtrip", &i),
                    ("resolve", &hop.resolve),
                    ("connect", &connect),
                    ("tls", &tls),
                    ("processing", &processing),
                    ("transfer", &transfer),
                ],
            );
            if i != 0 {
                out.gauge_add(
                    DURATION,
                    DURATION_HELP,
                    &[("phase", "resolve")],
                    hop.resolve,
                );
            }
            if t.got_conn.is_none() {
                continue;
            }
            out.gauge_add(DURATION, DURATION_HELP, &[("phase", "connect")], connect);
            if hop.https {
                out.gauge_add(DURATION, DURATION_HELP, &[("phase", "tls")], tls);
            }
            if t.first_byte.is_none() {
                continue;
            }
            out.gauge_add(
                DURATION,
                DURATION_HELP,
                &[("phase", "processing")],
                processing,
            );
            if t.body_done.is_none() {
                continue;
            }
            out.gauge_add(DURATION, DURATION_HELP, &[("phase", "transfer")], transfer);
        }
    }
}

/// Whether Go's client follows this status (with a `Location`).
fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// Go's `isDomainOrSubdomain` on host names (Go ≥ 1.22.1): an address only matches itself.
fn is_domain_or_subdomain(sub: &str, parent: &str) -> bool {
    if sub == parent {
        return true;
    }
    if sub.contains([':', '%']) {
        return false;
    }
    sub.len() > parent.len()
        && sub.ends_with(parent)
        && sub.as_bytes()[sub.len() - parent.len() - 1] == b'.'
}

/// An `http://` or `https://` URL, as Go's `url.URL` holds the parts the prober uses.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Url {
    https: bool,
    /// `user:password`, as written (percent-encoded).
    userinfo: Option<String>,
    /// Without brackets.
    host: String,
    /// As written; `None` when absent or empty.
    port: Option<String>,
    /// Escaped; empty or starting with `/`.
    path: String,
    query: Option<String>,
}

/// Bytes that may stay as they are in a request target (RFC 3986 `pchar`, `/`, `?`, `%`).
fn target_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
                | b'?'
                | b'%'
                | b'['
                | b']'
        )
}

/// Percent-encodes what cannot go in a request target (as Go's `EscapedPath` would).
fn escape_target(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if target_byte(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// RFC 3986 `remove_dot_segments` of an absolute path.
fn remove_dots(path: &str) -> String {
    let segs: Vec<&str> = path.split('/').collect();
    let mut out: Vec<&str> = Vec::new();
    for (i, s) in segs.iter().enumerate().skip(1) {
        let last = i == segs.len() - 1;
        match *s {
            "." => {}
            ".." => {
                out.pop();
            }
            s => {
                out.push(s);
                continue;
            }
        }
        if last {
            out.push("");
        }
    }
    format!("/{}", out.join("/"))
}

/// A URL's scheme (Go's `getScheme`): `None` when it has none.
fn scheme_of(s: &str) -> Result<Option<(&str, &str)>, String> {
    for (i, c) in s.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i == 0 => return Err("missing protocol scheme".into()),
            ':' => return Ok(Some((&s[..i], &s[i + 1..]))),
            _ => return Ok(None),
        }
    }
    Ok(None)
}

impl Url {
    /// Parses an absolute `http://` or `https://` URL; the fragment is dropped.
    fn parse(s: &str) -> Result<Url, String> {
        if s.bytes().any(|b| b.is_ascii_control()) {
            return Err(format!(
                "parse {s:?}: net/url: invalid control character in URL"
            ));
        }
        let (scheme, rest) = scheme_of(s)?.ok_or_else(|| format!("parse {s:?}: no scheme"))?;
        let https = if scheme.eq_ignore_ascii_case("https") {
            true
        } else if scheme.eq_ignore_ascii_case("http") {
            false
        } else {
            return Err(format!(
                "unsupported protocol scheme {:?}",
                scheme.to_ascii_lowercase()
            ));
        };
        let rest = rest
            .strip_prefix("//")
            .ok_or_else(|| format!("parse {s:?}: no host"))?;
        let rest = rest.split('#').next().unwrap_or("");
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.to_string()), h),
            None => (None, authority),
        };
        let (host, port) = if let Some(b) = hostport.strip_prefix('[') {
            let (ip, after) = b
                .split_once(']')
                .ok_or_else(|| format!("parse {s:?}: missing ']' in host"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("parse {s:?}: invalid port {p:?} after host"))?,
                ),
            };
            (ip.to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if let Some(p) = port {
            if !p.bytes().all(|b| b.is_ascii_digit())
                || p.parse::<u32>().map_or(!p.is_empty(), |n| n > 65535)
            {
                return Err(format!(
                    "parse {s:?}: invalid port {:?} after host",
                    format!(":{p}")
                ));
            }
        }
        if host.is_empty() {
            return Err(format!("http: no Host in request URL {s:?}"));
        }
        if let Some(bad) = host
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':' | '%')))
        {
            return Err(format!(
                "parse {s:?}: invalid character {bad:?} in host name"
            ));
        }
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, Some(escape_target(q))),
            None => (tail, None),
        };
        Ok(Url {
            https,
            userinfo,
            host,
            port: port.filter(|p| !p.is_empty()).map(str::to_string),
            path: escape_target(path),
            query,
        })
    }

    /// Go's `URL.Host`: the host (IPv6 in brackets) and the port if written.
    fn authority(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match &self.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }

    fn port_number(&self) -> u16 {
        self.port
            .as_deref()
            .and_then(|p| p.parse().ok())
            .unwrap_or(if self.https { 443 } else { 80 })
    }

    /// The lower-case host, for comparing hosts across redirects.
    fn canonical_addr(&self) -> String {
        self.host.to_ascii_lowercase()
    }

    fn scheme(&self) -> &'static str {
        if self.https {
            "https"
        } else {
            "http"
        }
    }

    fn rest(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }

    /// The URL with the password hidden (for logs and messages).
    fn redacted(&self) -> String {
        let user = match &self.userinfo {
            Some(u) => match u.split_once(':') {
                Some((name, _)) => format!("{name}:xxxxx@"),
                None => format!("{u}@"),
            },
            None => String::new(),
        };
        format!(
            "{}://{user}{}{}",
            self.scheme(),
            self.authority(),
            self.rest()
        )
    }

    /// The URL without user information (a `Referer`).
    fn without_userinfo(&self) -> String {
        format!("{}://{}{}", self.scheme(), self.authority(), self.rest())
    }

    /// `user:password@` decoded, for basic auth.
    fn credentials(&self) -> Option<(String, String)> {
        self.userinfo.as_deref().map(eos_http::url_credentials)
    }

    /// A `Location` resolved against this URL (Go's `URL.Parse` of it); whether it was
    /// relative (had no scheme).
    fn join(&self, loc: &str) -> Result<(Url, bool), String> {
        let loc = loc.split('#').next().unwrap_or("");
        if scheme_of(loc)?.is_some() {
            let mut u = Url::parse(loc)?;
            if !u.path.is_empty() {
                u.path = remove_dots(&u.path);
            }
            return Ok((u, false));
        }
        if loc.starts_with("//") {
            let mut u = Url::parse(&format!("{}:{loc}", self.scheme()))?;
            if !u.path.is_empty() {
                u.path = remove_dots(&u.path);
            }
            return Ok((u, true));
        }
        let (path, query) = match loc.split_once('?') {
            Some((p, q)) => (p, Some(escape_target(q))),
            None => (loc, None),
        };
        let path = escape_target(path);
        let mut u = self.clone();
        if path.is_empty() {
            if query.is_some() {
                u.query = query;
            }
            return Ok((u, true));
        }
        let full = if path.starts_with('/') {
            path
        } else {
            let dir = self.path.rfind('/').map_or("", |i| &self.path[..=i]);
            format!("{dir}{path}")
        };
        u.path = remove_dots(&if full.starts_with('/') {
            full
        } else {
            format!("/{full}")
        });
        u.query = query;
        Ok((u, true))
    }
}

/// Cookies set along a probe's redirects, sent back on later requests (Go's cookie jar, in
/// small: no public-suffix list, so a `Domain` must have a dot or be the host).
#[derive(Default)]
struct Jar {
    cookies: Vec<Cookie>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Cookie {
    name: String,
    value: String,
    domain: String,
    host_only: bool,
    path: String,
    secure: bool,
}

impl Jar {
    /// Takes the `Set-Cookie` headers of a response to `url`.
    fn store(&mut self, url: &Url, headers: &HeaderMap) {
        for v in headers.get_all(header::SET_COOKIE) {
            if let Ok(line) = v.to_str() {
                self.set(url, line);
            }
        }
    }

    fn set(&mut self, url: &Url, line: &str) {
        let host = url.host.to_ascii_lowercase();
        let mut parts = line.split(';');
        let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim(), value.trim().trim_matches('"'));
        if name.is_empty() {
            return;
        }
        let (mut domain, mut path, mut secure) = (None, None, false);
        let (mut max_age, mut expires) = (None, None);
        for attr in parts {
            let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
            let v = v.trim();
            match k.trim().to_ascii_lowercase().as_str() {
                "domain" if !v.is_empty() => {
                    domain = Some(v.trim_start_matches('.').to_ascii_lowercase())
                }
                "path" if v.starts_with('/') => path = Some(v.to_string()),
                "secure" => secure = true,
                "max-age" => max_age = v.parse::<i64>().ok(),
                "expires" => expires = parse_cookie_date(v),
                _ => {}
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let expired = match (max_age, expires) {
            (Some(n), _) => n <= 0,
            (None, Some(t)) => t < now,
            (None, None) => false,
        };
        let (domain, host_only) = match domain {
            None => (host.clone(), true),
            Some(d) if d == host => (d, false),
            Some(d) => {
                let is_ip = host.parse::<IpAddr>().is_ok();
                if is_ip || !d.contains('.') || !is_domain_or_subdomain(&host, &d) {
                    return;
                }
                (d, false)
            }
        };
        let path = path.unwrap_or_else(|| match url.path.rfind('/') {
            Some(i) if i > 0 => url.path[..i].to_string(),
            _ => "/".to_string(),
        });
        self.cookies
            .retain(|c| !(c.name == name && c.domain == domain && c.path == path));
        if !expired {
            self.cookies.push(Cookie {
                name: name.to_string(),
                value: value.to_string(),
                domain,
                host_only,
                path,
                secure,
            });
        }
    }

    /// The `Cookie` value for a request to `url`, if any cookie applies.
    fn header(&self, url: &Url) -> Option<String> {
        let host = url.host.to_ascii_lowercase();
        let path = if url.path.is_empty() {
            "/"
        } else {
            url.path.as_str()
        };
        let mut matching: Vec<&Cookie> = self
            .cookies
            .iter()
            .filter(|c| {
                let domain_ok = if c.host_only {
                    host == c.domain
                } else {
                    is_domain_or_subdomain(&host, &c.domain)
                };
                let path_ok = path == c.path
                    || (path.starts_with(&c.path)
                        && (c.path.ends_with('/') || path[c.path.len()..].starts_with('/')));
                domain_ok && path_ok && (!c.secure || url.https)
            })
            .collect();
        if matching.is_empty() {
            return None;
        }
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        Some(
            matching
                .iter()
                .map(|c| format!("{}={}", c.name, c.value))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

fn month(s: &str) -> Option<i64> {
    MONTHS.iter().position(|m| *m == s).map(|i| i as i64 + 1)
}

fn num(s: &str, width: Option<usize>) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || width.is_some_and(|w| s.len() != w)
    {
        return None;
    }
    s.parse().ok()
}

/// `HH:MM:SS` in seconds.
fn clock(s: &str) -> Option<i64> {
    let mut it = s.split(':');
    let (h, m, sec) = (
        num(it.next()?, Some(2))?,
        num(it.next()?, Some(2))?,
        num(it.next()?, Some(2))?,
    );
    if it.next().is_some() || h > 23 || m > 59 || sec > 59 {
        return None;
    }
    Some(h * 3600 + m * 60 + sec)
}

/// Unix seconds of a date, checking the day exists.
fn date(y: i64, m: i64, d: i64, secs: i64) -> Option<i64> {
    civil::is_valid_date(y, m, d).then(|| civil::days_from_civil(y, m, d) * 86_400 + secs)
}

/// Go's `http.ParseTime`: RFC 1123 with `GMT`, RFC 850, or ANSI C's `asctime`.
fn parse_http_date(s: &str) -> Option<i64> {
    // Mon, 02 Jan 2006 15:04:05 GMT
    let rfc1123 = || {
        let (wd, rest) = s.split_once(", ")?;
        DAYS.contains(&wd).then_some(())?;
        let f: Vec<&str> = rest.split(' ').collect();
        let [d, mon, y, t, "GMT"] = f.as_slice() else {
            return None;
        };
        date(num(y, Some(4))?, month(mon)?, num(d, Some(2))?, clock(t)?)
    };
    // Monday, 02-Jan-06 15:04:05 MST
    let rfc850 = || {
        let (wd, rest) = s.split_once(", ")?;
        LONG_DAYS.contains(&wd).then_some(())?;
        let f: Vec<&str> = rest.split(' ').collect();
        let [dmy, t, zone] = f.as_slice() else {
            return None;
        };
        if !(3..=5).contains(&zone.len()) || !zone.bytes().all(|b| b.is_ascii_alphabetic()) {
            return None;
        }
        let mut it = dmy.split('-');
        let (d, mon, yy) = (it.next()?, it.next()?, it.next()?);
        let yy = num(yy, Some(2))?;
        let y = if yy >= 69 { 1900 + yy } else { 2000 + yy };
        date(y, month(mon)?, num(d, Some(2))?, clock(t)?)
    };
    // Mon Jan _2 15:04:05 2006
    let asctime = || {
        let f: Vec<&str> = s.split_whitespace().collect();
        let [wd, mon, d, t, y] = f.as_slice() else {
            return None;
        };
        DAYS.contains(wd).then_some(())?;
        (d.len() <= 2).then_some(())?;
        date(num(y, Some(4))?, month(mon)?, num(d, None)?, clock(t)?)
    };
    rfc1123().or_else(rfc850).or_else(asctime)
}

/// A cookie's `Expires`, as Go's `net/http` reads it: RFC 1123 (any zone name), or with
/// dashes (`Mon, 02-Jan-2006 15:04:05 MST`).
fn parse_cookie_date(s: &str) -> Option<i64> {
    let (wd, rest) = s.split_once(", ")?;
    DAYS.contains(&wd).then_some(())?;
    let f: Vec<&str> = rest.split(' ').collect();
    let (d, mon, y, t) = match f.as_slice() {
        [d, mon, y, t, _zone] => (*d, *mon, *y, *t),
        [dmy, t, _zone] => {
            let mut it = dmy.split('-');
            (it.next()?, it.next()?, it.next()?, *t)
        }
        _ => return None,
    };
    date(num(y, Some(4))?, month(mon)?, num(d, Some(2))?, clock(t)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allow::Allow;
    use crate::config::{AllowConfig, Authorization, BasicAuth, BlackboxModule, HeaderMatch};
    use crate::tls_info::testing::{self, run, Pki, Ran};
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

    /// A request as the test server saw it.
    #[derive(Clone, Debug)]
    struct Seen {
        head: String,
        body: Vec<u8>,
    }

    impl Seen {
        fn line(&self) -> &str {
            self.head.lines().next().unwrap_or("")
        }
        fn path(&self) -> &str {
            self.line().split(' ').nth(1).unwrap_or("")
        }
        fn header(&self, name: &str) -> Option<&str> {
            self.head.lines().skip(1).find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name).then(|| v.trim())
            })
        }
    }

    /// The answer to a request; `None`: never answer.
    type Handler = fn(&Seen, SocketAddr) -> Option<Vec<u8>>;

    struct Server {
        addr: SocketAddr,
        seen: Arc<Mutex<Vec<Seen>>>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    impl Server {
        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
        fn url(&self, scheme: &str, path: &str) -> String {
            format!("{scheme}://{}{path}", self.addr)
        }
    }

    async fn serve(tls: Option<Arc<rustls::ServerConfig>>, handler: Handler) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (log, tls) = (log.clone(), tls.clone());
                tokio::spawn(async move {
                    match tls {
                        None => conn(tcp, log, handler, addr).await,
                        Some(cfg) => {
                            if let Ok(s) = tokio_rustls::TlsAcceptor::from(cfg).accept(tcp).await {
                                conn(s, log, handler, addr).await;
                            }
                        }
                    }
                });
            }
        });
        Server { addr, seen, task }
    }

    async fn conn<S: AsyncRead + AsyncWrite + Unpin>(
        mut io: S,
        log: Arc<Mutex<Vec<Seen>>>,
        handler: Handler,
        addr: SocketAddr,
    ) {
        let mut buf = Vec::new();
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match io.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut seen = Seen {
            head,
            body: Vec::new(),
        };
        let len: usize = seen
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < end + len {
            let mut chunk = [0u8; 4096];
            match io.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        seen.body = buf[end..end + len].to_vec();
        log.lock().unwrap().push(seen.clone());
        match handler(&seen, addr) {
            Some(answer) => {
                let _ = io.write_all(&answer).await;
                let _ = io.shutdown().await;
            }
            None => {
                let mut sink = [0u8; 64];
                while matches!(io.read(&mut sink).await, Ok(n) if n > 0) {}
            }
        }
    }

    fn answer(status: &str, headers: &[(&str, String)], body: &str) -> Option<Vec<u8>> {
        let mut s = format!("HTTP/1.1 {status}\r\n");
        for (k, v) in headers {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        s.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        Some(s.into_bytes())
    }

    fn site(req: &Seen, addr: SocketAddr) -> Option<Vec<u8>> {
        let to = |l: String| vec![("Location", l)];
        match req.path() {
            "/ok" | "/" => answer(
                "200 OK",
                &[("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT".into())],
                "hello world",
            ),
            "/redir" => answer("302 Found", &to("/ok".into()), ""),
            "/loop" => answer("302 Found", &to("/loop".into()), ""),
            "/abs" => answer(
                "301 Moved Permanently",
                &to(format!("http://localhost:{}/echo", addr.port())),
                "",
            ),
            "/meta" => answer("302 Found", &to("http://169.254.169.254/latest/".into()), ""),
            "/metaname" => answer("302 Found", &to("http://metadata.google.internal/x".into()), ""),
            "/see-other" => answer("303 See Other", &to("/echo".into()), ""),
            "/temp" => answer("307 Temporary Redirect", &to("echo".into()), ""),
            "/bad-location" => answer("302 Found", &to("ftp://x/".into()), ""),
            "/no-location" => answer("302 Found", &[], "moved somewhere"),
            "/cookie" => answer(
                "302 Found",
                &[
                    ("Location", "/echo".into()),
                    ("Set-Cookie", "sid=abc; Path=/; HttpOnly".into()),
                ],
                "",
            ),
            "/echo" => {
                let body = format!(
                    "{} body={} auth={} cookie={} referer={} host={}",
                    req.line().split(' ').next().unwrap_or(""),
                    String::from_utf8_lossy(&req.body),
                    req.header("authorization").unwrap_or("-"),
                    req.header("cookie").unwrap_or("-"),
                    req.header("referer").unwrap_or("-"),
                    req.header("host").unwrap_or("-"),
                );
                answer("200 OK", &[], &body)
            }
            "/404" => answer("404 Not Found", &[], "nope"),
            "/http10" => Some(b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nold body".to_vec()),
            "/chunked" => Some(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_vec(),
            ),
            "/headers" => Some(
                b"HTTP/1.1 200 OK\r\nX-Frame: DENY\r\nX-Multi: a\r\nX-Multi: b\r\nContent-Length: 0\r\n\r\n"
                    .to_vec(),
            ),
            "/big" => answer("200 OK", &[], &"x".repeat(1000)),
            "/hang" => None,
            _ => answer("500 Internal Server Error", &[], ""),
        }
    }

    fn module(f: impl FnOnce(&mut HttpProbe)) -> BlackboxModule {
        let mut m = BlackboxModule {
            prober: "http".into(),
            ..BlackboxModule::default()
        };
        m.http.preferred_ip_protocol = "ip4".into();
        f(&mut m.http);
        m
    }

    const T: Duration = Duration::from_secs(10);

    async fn probe_ok(m: &BlackboxModule, target: &str) -> Ran {
        run(m, target, T, Allow::all()).await
    }

    #[tokio::test]
    async fn a_2xx_probe_writes_blackboxes_metrics() {
        let s = serve(None, site).await;
        // No scheme: http:// is assumed.
        let target = format!("{}/ok", s.addr);
        let r = probe_ok(&module(|_| {}), &target).await;
        assert!(r.success, "{}", r.log);
        assert_eq!(
            r.out.names(),
            [
                "probe_dns_lookup_time_seconds",
                "probe_failed_due_to_regex",
                "probe_http_content_length",
                "probe_http_duration_seconds",
                "probe_http_last_modified_timestamp_seconds",
                "probe_http_redirects",
                "probe_http_ssl",
                "probe_http_status_code",
                "probe_http_uncompressed_body_length",
                "probe_http_version",
                "probe_ip_addr_hash",
                "probe_ip_protocol",
            ]
        );
        assert_eq!(r.v(STATUS, &[]), 200.0);
        assert_eq!(r.v(CONTENT_LENGTH, &[]), 11.0);
        assert_eq!(r.v(BODY_LENGTH, &[]), 11.0);
        assert_eq!(r.v(VERSION, &[]), 1.1);
        assert_eq!(r.v(SSL, &[]), 0.0);
        assert_eq!(r.v(REDIRECTS, &[]), 0.0);
        assert_eq!(r.v(REGEX, &[]), 0.0);
        assert_eq!(r.v(LAST_MODIFIED, &[]), 1_445_412_480.0);
        for phase in ["resolve", "connect", "tls", "processing", "transfer"] {
            assert!(r.v(DURATION, &[("phase", phase)]) >= 0.0);
        }
        assert_eq!(r.v(DURATION, &[("phase", "tls")]), 0.0);
        let seen = s.seen();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].line(), "GET /ok HTTP/1.1");
        assert_eq!(seen[0].header("host"), Some(s.addr.to_string().as_str()));
        assert_eq!(seen[0].header("user-agent"), Some("eos-test/1"));
        assert_eq!(seen[0].header("connection"), Some("close"));
        assert_eq!(seen[0].header("accept-encoding"), None);
        assert!(
            seen[0].head.contains("\r\nUser-Agent: "),
            "Go's header case: {}",
            seen[0].head
        );
        for line in [
            "msg=\"Making HTTP request\" url=http://127.0.0.1:",
            "msg=\"Received HTTP response\" status_code=200",
            "msg=\"Response timings for roundtrip\" roundtrip=0",
        ] {
            assert!(r.log.contains(line), "{line} not in\n{}", r.log);
        }

        // HTTP/1.0, a body without length, chunked.
        let r = probe_ok(&module(|_| {}), &s.url("http", "/http10")).await;
        assert!(r.success, "{}", r.log);
        assert_eq!(
            (
                r.v(VERSION, &[]),
                r.v(CONTENT_LENGTH, &[]),
                r.v(BODY_LENGTH, &[])
            ),
            (1.0, -1.0, 8.0)
        );
        let r = probe_ok(&module(|_| {}), &s.url("http", "/chunked")).await;
        assert_eq!(
            (r.v(CONTENT_LENGTH, &[]), r.v(BODY_LENGTH, &[])),
            (-1.0, 5.0)
        );
        // HEAD: the declared length, no body.
        let r = probe_ok(
            &module(|h| h.method = "HEAD".into()),
            &s.url("http", "/big"),
        )
        .await;
        assert!(r.success, "{}", r.log);
        assert_eq!(
            (r.v(CONTENT_LENGTH, &[]), r.v(BODY_LENGTH, &[])),
            (1000.0, 0.0)
        );
    }

    #[tokio::test]
    async fn status_codes_and_http_versions() {
        let s = serve(None, site).await;
        let r = probe_ok(&module(|_| {}), &s.url("http", "/404")).await;
        assert!(!r.success);
        assert_eq!(r.v(STATUS, &[]), 404.0);
        assert!(
            r.log
                .contains("Invalid HTTP response status code, wanted 2xx"),
            "{}",
            r.log
        );
        let r = probe_ok(
            &module(|h| h.valid_status_codes = vec![404, 410]),
            &s.url("http", "/404"),
        )
        .await;
        assert!(r.success, "{}", r.log);
        let r = probe_ok(
            &module(|h| h.valid_status_codes = vec![200, 201]),
            &s.url("http", "/404"),
        )
        .await;
        assert!(!r.success);
        assert!(
            r.log.contains("valid_status_codes=\"[200 201]\""),
            "{}",
            r.log
        );
        let only11 = module(|h| h.valid_http_versions = vec!["HTTP/1.1".into()]);
        assert!(probe_ok(&only11, &s.url("http", "/ok")).await.success);
        let r = probe_ok(&only11, &s.url("http", "/http10")).await;
        assert!(!r.success);
        assert!(
            r.log
                .contains("msg=\"Invalid HTTP version number\" version=HTTP/1.0"),
            "{}",
            r.log
        );
    }

    #[tokio::test]
    async fn redirects_followed_not_followed_and_looping() {
        let s = serve(None, site).await;
        let r = probe_ok(&module(|_| {}), &s.url("http", "/redir")).await;
        assert!(r.success, "{}", r.log);
        assert_eq!((r.v(REDIRECTS, &[]), r.v(STATUS, &[])), (1.0, 200.0));
        assert!(
            r.log.contains("msg=\"Received redirect\" location=/ok"),
            "{}",
            r.log
        );
        assert!(r.log.contains("roundtrip=1"), "{}", r.log);
        let seen = s.seen();
        assert_eq!(seen[1].path(), "/ok");
        assert_eq!(
            seen[1].header("referer"),
            Some(s.url("http", "/redir").as_str())
        );

        // Not followed: the redirect is the final response, counted as one.
        let s = serve(None, site).await;
        let nofollow = module(|h| h.follow_redirects = false);
        let r = probe_ok(&nofollow, &s.url("http", "/redir")).await;
        assert!(!r.success);
        assert_eq!(
            (r.v(REDIRECTS, &[]), r.v(STATUS, &[]), r.v(BODY_LENGTH, &[])),
            (1.0, 302.0, 0.0)
        );
        assert!(r.log.contains("Not following redirect"), "{}", r.log);
        assert_eq!(s.seen().len(), 1);
        let mut ok302 = nofollow.clone();
        ok302.http.valid_status_codes = vec![302];
        assert!(probe_ok(&ok302, &s.url("http", "/redir")).await.success);
        // no_follow_redirects (deprecated) wins over follow_redirects.
        let old = module(|h| h.no_follow_redirects = Some(true));
        assert_eq!(
            probe_ok(&old, &s.url("http", "/redir"))
                .await
                .v(STATUS, &[]),
            302.0
        );

        // A loop ends after 10 redirects followed, on the 11th.
        let s = serve(None, site).await;
        let r = probe_ok(&module(|_| {}), &s.url("http", "/loop")).await;
        assert!(!r.success);
        assert_eq!((r.v(REDIRECTS, &[]), r.v(STATUS, &[])), (11.0, 302.0));
        assert_eq!(s.seen().len(), 11);

        // 3xx without Location is a final answer; a Location that cannot be followed fails.
        let r = probe_ok(
            &module(|h| h.valid_status_codes = vec![302]),
            &s.url("http", "/no-location"),
        )
        .await;
        assert!(r.success, "{}", r.log);
        assert_eq!(r.v(REDIRECTS, &[]), 0.0);
        let r = probe_ok(&module(|_| {}), &s.url("http", "/bad-location")).await;
        assert!(!r.success);
        assert_eq!(r.v(STATUS, &[]), 0.0);
        assert!(r.log.contains("unsupported protocol scheme"), "{}", r.log);
    }

    #[tokio::test]
    async fn redirects_change_method_keep_body_host_and_cookies_as_go() {
        let s = serve(None, site).await;
        let post = module(|h| {
            h.method = "POST".into();
            h.body = "payload".into();
            h.basic_auth = Some(BasicAuth {
                username: "u".into(),
                password: Some(eos_module::Secret::new("p")),
                ..BasicAuth::default()
            });
        });
        probe_ok(&post, &s.url("http", "/see-other")).await;
        probe_ok(&post, &s.url("http", "/temp")).await;
        let seen = s.seen();
        assert_eq!(
            (seen[0].line(), seen[0].body.as_slice()),
            ("POST /see-other HTTP/1.1", &b"payload"[..])
        );
        assert_eq!(
            (seen[1].line(), seen[1].body.as_slice()),
            ("GET /echo HTTP/1.1", &b""[..])
        );
        assert_eq!(seen[1].header("content-length"), None);
        assert_eq!(
            (seen[3].line(), seen[3].body.as_slice()),
            ("POST /echo HTTP/1.1", &b"payload"[..])
        );
        assert_eq!(seen[3].header("authorization"), Some("Basic dTpw"));

        // A Host header is kept over a relative redirect, not over an absolute one; the
        // configured auth goes everywhere, an Authorization header only to the same host.
        let s = serve(None, site).await;
        let hosted = module(|h| {
            h.headers.insert("Host".into(), "app.test".into());
        });
        probe_ok(&hosted, &s.url("http", "/redir")).await;
        let seen = s.seen();
        assert_eq!(
            (seen[0].header("host"), seen[1].header("host")),
            (Some("app.test"), Some("app.test"))
        );
        let s = serve(None, site).await;
        let r = probe_ok(&post, &s.url("http", "/abs")).await;
        assert!(r.success, "{}", r.log);
        assert!(
            r.log
                .contains("Address does not match first address, not sending TLS ServerName"),
            "{}",
            r.log
        );
        let seen = s.seen();
        let port = s.addr.port();
        assert_eq!(
            seen[1].header("host"),
            Some(format!("localhost:{port}").as_str())
        );
        assert_eq!(seen[1].header("authorization"), Some("Basic dTpw"));
        assert_eq!(
            seen[1].line(),
            "GET /echo HTTP/1.1",
            "301 turns POST into GET"
        );
        let header_auth = module(|h| {
            h.headers.insert("Authorization".into(), "Token t".into());
        });
        let s = serve(None, site).await;
        probe_ok(&header_auth, &s.url("http", "/abs")).await;
        let seen = s.seen();
        assert_eq!(
            (
                seen[0].header("authorization"),
                seen[1].header("authorization")
            ),
            (Some("Token t"), None)
        );

        // Cookies set on the way are sent back.
        let s = serve(None, site).await;
        let r = probe_ok(&module(|_| {}), &s.url("http", "/cookie")).await;
        assert!(r.success, "{}", r.log);
        assert_eq!(s.seen()[1].header("cookie"), Some("sid=abc"));
    }

    #[tokio::test]
    async fn redirects_to_denied_addresses_are_refused() {
        let s = serve(None, site).await;
        let deny = Allow::new(&AllowConfig::default()).unwrap();
        let r = run(&module(|_| {}), &s.url("http", "/meta"), T, deny.clone()).await;
        assert!(!r.success);
        let why = r.denied.expect("denied");
        assert!(why.contains("169.254.169.254"), "{why}");
        assert_eq!(s.seen().len(), 1, "the redirect was not followed");
        let r = run(
            &module(|_| {}),
            &s.url("http", "/metaname"),
            T,
            deny.clone(),
        )
        .await;
        assert!(r
            .denied
            .expect("denied")
            .contains("metadata.google.internal"));
        // The target itself.
        let r = run(&module(|_| {}), "http://169.254.169.254/", T, deny).await;
        assert!(r.denied.is_some() && !r.success);
    }

    #[tokio::test]
    async fn body_and_header_regexes() {
        let s = serve(None, site).await;
        let ok = s.url("http", "/ok");
        let r = probe_ok(
            &module(|h| h.fail_if_body_matches_regexp = vec!["hel+o".into()]),
            &ok,
        )
        .await;
        assert!(!r.success);
        assert_eq!(r.v(REGEX, &[]), 1.0);
        assert!(
            r.log
                .contains("msg=\"Body matched regular expression\" regexp=hel+o"),
            "{}",
            r.log
        );
        let r = probe_ok(
            &module(|h| h.fail_if_body_not_matches_regexp = vec!["^hello".into(), "world$".into()]),
            &ok,
        )
        .await;
        assert!(r.success, "{}", r.log);
        assert_eq!((r.v(REGEX, &[]), r.v(BODY_LENGTH, &[])), (0.0, 11.0));
        let r = probe_ok(
            &module(|h| h.fail_if_body_not_matches_regexp = vec!["bye".into()]),
            &ok,
        )
        .await;
        assert!(!r.success);
        assert_eq!(r.v(REGEX, &[]), 1.0);

        let hdr = s.url("http", "/headers");
        let m = |header: &str, regexp: &str, allow_missing: bool| HeaderMatch {
            header: header.into(),
            regexp: regexp.into(),
            allow_missing,
        };
        let r = probe_ok(
            &module(|h| h.fail_if_header_matches = vec![m("x-frame", "DENY", false)]),
            &hdr,
        )
        .await;
        assert!(!r.success);
        assert_eq!(r.v(REGEX, &[]), 1.0);
        assert!(r.log.contains("value_count=1"), "{}", r.log);
        let r = probe_ok(
            &module(|h| h.fail_if_header_not_matches = vec![m("X-Multi", "^b$", false)]),
            &hdr,
        )
        .await;
        assert!(r.success, "any value may match: {}", r.log);
        let r = probe_ok(
            &module(|h| h.fail_if_header_not_matches = vec![m("X-Missing", ".", false)]),
            &hdr,
        )
        .await;
        assert!(!r.success);
        assert!(
            r.log
                .contains("msg=\"Missing required header\" header=X-Missing"),
            "{}",
            r.log
        );
        let r = probe_ok(
            &module(|h| h.fail_if_header_not_matches = vec![m("X-Missing", ".", true)]),
            &hdr,
        )
        .await;
        assert!(r.success, "{}", r.log);

        // body_size_limit: exactly the limit is read, then the probe fails.
        let big = s.url("http", "/big");
        let r = probe_ok(&module(|h| h.body_size_limit = 100), &big).await;
        assert!(!r.success);
        assert_eq!(
            (r.v(BODY_LENGTH, &[]), r.v(CONTENT_LENGTH, &[])),
            (100.0, 1000.0)
        );
        assert!(
            r.log.contains("Failed to read HTTP response body"),
            "{}",
            r.log
        );
        let r = probe_ok(
            &module(|h| {
                h.body_size_limit = 100;
                h.fail_if_body_matches_regexp = vec!["y".into()];
            }),
            &big,
        )
        .await;
        assert!(!r.success);
        assert!(r.log.contains("Error reading HTTP body"), "{}", r.log);
        assert!(
            probe_ok(&module(|h| h.body_size_limit = 1000), &big)
                .await
                .success
        );
    }

    #[tokio::test]
    async fn credentials_the_server_sees() {
        let dir = eos_testkit::TempDir::new("probe-http-auth");
        let file = dir.join("secret");
        std::fs::write(&file, "from-file\n").unwrap();
        let s = serve(None, site).await;
        let echo = s.url("http", "/echo");
        let basic = module(|h| {
            h.basic_auth = Some(BasicAuth {
                username: "user".into(),
                password_file: file.clone(),
                ..BasicAuth::default()
            })
        });
        probe_ok(&basic, &echo).await;
        let bearer = module(|h| h.bearer_token_file = file.clone());
        probe_ok(&bearer, &echo).await;
        let custom = module(|h| {
            h.authorization = Some(Authorization {
                kind: "Token".into(),
                credentials: Some(eos_module::Secret::new("abc")),
                ..Authorization::default()
            })
        });
        probe_ok(&custom, &echo).await;
        let in_url = format!("http://us%40er:p%3Ass@{}/echo", s.addr);
        let r = probe_ok(&module(|_| {}), &in_url).await;
        let making = r
            .log
            .lines()
            .find(|l| l.contains("Making HTTP request"))
            .unwrap();
        assert!(
            making.contains("url=http://us%40er:xxxxx@"),
            "the password is hidden: {making}"
        );
        let seen: Vec<Option<String>> = s
            .seen()
            .iter()
            .map(|x| x.header("authorization").map(str::to_string))
            .collect();
        assert_eq!(
            seen,
            [
                Some(format!("Basic {}", "dXNlcjpmcm9tLWZpbGU=")),
                Some("Bearer from-file".into()),
                Some("Token abc".into()),
                Some(format!("Basic {}", "dXNAZXI6cDpzcw==")),
            ]
        );
        // An unreadable file fails the probe, with the reason.
        let missing = module(|h| h.bearer_token_file = dir.join("nope"));
        let r = probe_ok(&missing, &echo).await;
        assert!(!r.success);
        assert!(
            r.log.contains("unable to read bearer token file"),
            "{}",
            r.log
        );
    }

    #[tokio::test]
    async fn https_certificate_metrics_and_ssl_checks() {
        let dir = eos_testkit::TempDir::new("probe-http-tls");
        let pki = Pki::new();
        let s = serve(Some(pki.server()), site).await;
        let ca = pki.ca_file(&dir);
        let tls = |h: &mut HttpProbe| h.tls_config.ca_file = ca.clone();
        let r = probe_ok(&module(tls), &s.url("https", "/ok")).await;
        assert!(r.success, "{}", r.log);
        assert_eq!(r.v(SSL, &[]), 1.0);
        assert_eq!(
            r.v(tls_info::EARLIEST_EXPIRY, &[]),
            testing::STRAY_NOT_AFTER as f64
        );
        assert_eq!(
            r.v(tls_info::LAST_CHAIN_EXPIRY, &[]),
            testing::ROOT_NOT_AFTER as f64
        );
        assert_eq!(r.v(tls_info::VERSION_INFO, &[("version", "TLS 1.3")]), 1.0);
        let cipher = r
            .out
            .families()
            .find(|f| f.name == tls_info::CIPHER_INFO)
            .unwrap();
        assert!(
            cipher.samples[0].0[0].1.starts_with("TLS_"),
            "{:?}",
            cipher.samples
        );
        let leaf = tls_info::Leaf::of(&pki.chain[0]);
        assert_eq!(
            r.v(
                tls_info::LAST_CHAIN_INFO,
                &[
                    ("fingerprint_sha256", &leaf.fingerprint_sha256),
                    ("subject", "CN=probe.test,O=Eos\\, Probes,C=DE"),
                    ("issuer", "CN=eos probe test intermediate"),
                    ("subjectalternative", "probe.test"),
                    ("serialnumber", "0abcde"),
                ]
            ),
            1.0
        );
        assert!(r.v(DURATION, &[("phase", "tls")]) > 0.0);

        // By name: the Host header is the TLS server name.
        let named = module(|h| {
            tls(h);
            h.headers.insert("Host".into(), "probe.test".into());
        });
        assert!(probe_ok(&named, &s.url("https", "/ok")).await.success);
        let wrong = module(|h| {
            tls(h);
            h.tls_config.server_name = "other.test".into();
        });
        let r = probe_ok(&wrong, &s.url("https", "/ok")).await;
        assert!(!r.success);
        assert!(r.log.contains("Error for HTTP request"), "{}", r.log);
        assert!(!r.out.names().contains(&tls_info::EARLIEST_EXPIRY));
        assert_eq!(r.v(SSL, &[]), 0.0);

        // Not verified: Go's zero time for the verified chain.
        let insecure = module(|h| h.tls_config.insecure_skip_verify = true);
        let r = probe_ok(&insecure, &s.url("https", "/ok")).await;
        assert!(r.success, "{}", r.log);
        assert_eq!(
            r.v(tls_info::LAST_CHAIN_EXPIRY, &[]),
            tls_info::GO_ZERO_TIME as f64
        );

        let r = probe_ok(
            &module(|h| {
                tls(h);
                h.fail_if_ssl = true;
            }),
            &s.url("https", "/ok"),
        )
        .await;
        assert!(!r.success);
        assert!(r.log.contains("Final request was over SSL"), "{}", r.log);
        let plain = serve(None, site).await;
        let r = probe_ok(
            &module(|h| h.fail_if_not_ssl = true),
            &plain.url("http", "/ok"),
        )
        .await;
        assert!(!r.success);
        assert!(
            r.log.contains("Final request was not over SSL"),
            "{}",
            r.log
        );
    }

    #[tokio::test]
    async fn failures_are_probe_failures() {
        // A server that never answers: failed by the deadline, metrics still written.
        let s = serve(None, site).await;
        let r = run(
            &module(|_| {}),
            &s.url("http", "/hang"),
            Duration::from_millis(400),
            Allow::all(),
        )
        .await;
        assert!(!r.success);
        assert!(
            r.log.contains("msg=\"Error for HTTP request\""),
            "{}",
            r.log
        );
        assert_eq!(r.v(STATUS, &[]), 0.0);
        assert_eq!(r.v(DURATION, &[("phase", "processing")]), 0.0);

        // Refused.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = closed.local_addr().unwrap();
        drop(closed);
        let r = probe_ok(&module(|_| {}), &format!("http://{addr}/")).await;
        assert!(!r.success);
        assert!(r.log.contains("connecting to"), "{}", r.log);
        assert_eq!(r.v(DURATION, &[("phase", "connect")]), 0.0);

        // Unresolvable: only the resolve phase.
        let r = probe_ok(&module(|_| {}), "http://no-such-host.invalid/").await;
        assert!(!r.success);
        assert!(r.log.contains("Error resolving address"), "{}", r.log);
        let phases: Vec<String> = r
            .out
            .families()
            .filter(|f| f.name == DURATION)
            .flat_map(|f| f.samples.iter().map(|s| s.0[0].1.clone()))
            .collect();
        assert_eq!(phases, ["resolve"]);
        assert_eq!(r.v(STATUS, &[]), 0.0);

        // Not a URL.
        let r = probe_ok(&module(|_| {}), "http://[::1/").await;
        assert!(!r.success);
        assert!(r.log.contains("Could not parse target URL"), "{}", r.log);
    }

    #[test]
    fn urls_as_go_parses_and_resolves_them() {
        let u = Url::parse("http://user:pw@Example.com:8080/a/b/c?x=1#frag").unwrap();
        assert_eq!(u.authority(), "Example.com:8080");
        assert_eq!(u.redacted(), "http://user:xxxxx@Example.com:8080/a/b/c?x=1");
        assert_eq!(u.without_userinfo(), "http://Example.com:8080/a/b/c?x=1");
        assert_eq!(u.credentials(), Some(("user".into(), "pw".into())));
        let j = |loc: &str| {
            let (n, rel) = u.join(loc).unwrap();
            (n.redacted(), rel)
        };
        assert_eq!(
            j("/x"),
            ("http://user:xxxxx@Example.com:8080/x".into(), true)
        );
        assert_eq!(
            j("d"),
            ("http://user:xxxxx@Example.com:8080/a/b/d".into(), true)
        );
        assert_eq!(
            j("../d?q"),
            ("http://user:xxxxx@Example.com:8080/a/d?q".into(), true)
        );
        assert_eq!(
            j("?y=2"),
            ("http://user:xxxxx@Example.com:8080/a/b/c?y=2".into(), true)
        );
        assert_eq!(
            j("#f"),
            ("http://user:xxxxx@Example.com:8080/a/b/c?x=1".into(), true)
        );
        assert_eq!(j("//other/p"), ("http://other/p".into(), true));
        assert_eq!(
            j("HTTPS://o.test/./p/../q"),
            ("https://o.test/q".into(), false)
        );
        assert_eq!(
            j("/a b"),
            ("http://user:xxxxx@Example.com:8080/a%20b".into(), true)
        );
        assert!(u
            .join("ftp://x/")
            .unwrap_err()
            .contains("unsupported protocol scheme"));
        assert!(u.join(":x").is_err());

        let v6 = Url::parse("https://[::1]:8443").unwrap();
        assert_eq!(
            (v6.host.as_str(), v6.port_number(), v6.authority()),
            ("::1", 8443, "[::1]:8443".into())
        );
        assert_eq!(v6.rest(), "");
        assert_eq!(Url::parse("http://h:/").unwrap().port, None);
        for bad in [
            "http://",
            "http://h:x/",
            "http://h:99999/",
            "http://a b/",
            "gopher://h/",
            "http://h\n/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(remove_dots("/a/./b/../../c/."), "/c/");
        assert_eq!(remove_dots("/.."), "/");
        assert_eq!(strip_port("h.test:443"), "h.test");
        assert_eq!(strip_port("[::1]:443"), "::1");
        assert_eq!(strip_port("::1"), "::1");
        assert!(is_domain_or_subdomain("a.example.com", "example.com"));
        assert!(!is_domain_or_subdomain("badexample.com", "example.com"));
        assert!(!is_domain_or_subdomain("::1", "1"));
    }

    #[test]
    fn dates_as_go_parses_them() {
        assert_eq!(
            parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(1_445_412_480)
        );
        assert_eq!(
            parse_http_date("Wednesday, 21-Oct-15 07:28:00 GMT"),
            Some(1_445_412_480)
        );
        assert_eq!(
            parse_http_date("Wed Oct 21 07:28:00 2015"),
            Some(1_445_412_480)
        );
        assert_eq!(
            parse_http_date("Sun Nov  6 08:49:37 1994"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_http_date("Wed, 21 Oct 2015 07:28:00 UTC"),
            None,
            "RFC 1123 wants GMT"
        );
        assert_eq!(parse_http_date("Wed, 30 Feb 2015 07:28:00 GMT"), None);
        assert_eq!(parse_http_date("Wed, 1 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_http_date("yesterday"), None);
        assert_eq!(
            parse_cookie_date("Wed, 21-Oct-2015 07:28:00 GMT"),
            Some(1_445_412_480)
        );
    }

    #[test]
    fn content_lengths_as_go_reports_them() {
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.append(*k, HeaderValue::from_static(v));
            }
            m
        };
        assert_eq!(
            go_content_length(&Method::GET, 200, &h(&[("content-length", "5")])),
            5
        );
        assert_eq!(go_content_length(&Method::GET, 200, &h(&[])), -1);
        assert_eq!(
            go_content_length(&Method::GET, 204, &h(&[("content-length", "5")])),
            0
        );
        assert_eq!(
            go_content_length(
                &Method::GET,
                200,
                &h(&[("transfer-encoding", "gzip, chunked")])
            ),
            -1
        );
        assert_eq!(
            go_content_length(&Method::HEAD, 200, &h(&[("content-length", "9")])),
            9
        );
        assert_eq!(go_content_length(&Method::HEAD, 304, &h(&[])), -1);
    }

    #[test]
    fn cookie_jar() {
        let u = Url::parse("http://app.example.com/login/form").unwrap();
        let mut jar = Jar::default();
        jar.set(&u, "a=1");
        jar.set(&u, "b=2; Path=/; Domain=.example.com");
        jar.set(&u, "c=3; Domain=com");
        jar.set(&u, "d=4; Domain=other.org");
        jar.set(&u, "e=5; Path=/; Secure");
        jar.set(&u, "f=6; Path=/; Max-Age=0");
        jar.set(&u, "g=7; Path=/; Expires=Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(jar.header(&u).as_deref(), Some("a=1; b=2"));
        let sub = Url::parse("https://x.example.com/").unwrap();
        assert_eq!(jar.header(&sub).as_deref(), Some("b=2"));
        let root = Url::parse("https://app.example.com/").unwrap();
        assert_eq!(jar.header(&root).as_deref(), Some("b=2; e=5"));
        jar.set(&u, "b=gone; Path=/; Domain=example.com; Max-Age=0");
        assert_eq!(jar.header(&sub), None);
        let ip = Url::parse("http://10.0.0.1/").unwrap();
        jar.set(&ip, "h=8; Domain=0.0.1");
        jar.set(&ip, "i=9");
        assert_eq!(jar.header(&ip).as_deref(), Some("i=9"));
    }

    proptest::proptest! {
        #![proptest_config(eos_testkit::fuzz::config())]
        /// Targets and `Location` headers are outside input (a hostile server picks the
        /// latter): parsing and joining them, and the dates a server sends, never panic.
        #[test]
        fn fuzz_urls_locations_and_dates(target in ".{0,80}", loc in ".{0,80}",
                                         scheme in proptest::prop_oneof![proptest::strategy::Just("http://"), proptest::strategy::Just("https://"), proptest::strategy::Just("")]) {
            let _ = parse_http_date(&target);
            let _ = parse_cookie_date(&target);
            if let Ok(u) = Url::parse(&format!("{scheme}{target}")) {
                let _ = u.join(&loc);
                let _ = u.join(&format!("{scheme}{loc}"));
            }
        }
    }
}
