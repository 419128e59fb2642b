//! A Loki push endpoint for tests and benchmarks (feature `receiver`).
//!
//! No Loki binary can be had where the tests run, so the logs module's tests (and the xtask
//! benchmark) push to this receiver instead. It follows Loki's `POST /loki/api/v1/push` for
//! protobuf as far as a client can tell:
//!
//! - the body is a snappy (block format) compressed `logproto.PushRequest`, sent with
//!   `Content-Type: application/x-protobuf` (or no content type, which Loki reads the same way);
//! - success is `204 No Content`; a body that does not decode is `400` with the decode error as
//!   text; a stream whose labels do not parse is `400` too, while the other streams of the
//!   request are stored, as Loki's distributor does;
//! - a body over the size limit ([`Receiver::max_body`]) is `413`;
//! - other methods on the push path are `405`, other paths `404`; `GET /ready` is `200 ready`;
//! - connections are kept alive (HTTP/1.1), as the agent pools them.
//!
//! What it does not do: JSON pushes, gzip/deflate bodies (both `400` here), tenants' limits,
//! and the age and line length checks of Loki's validation.
//!
//! Entries Loki would drop as duplicates (same labels, timestamp and line) are stored and
//! counted ([`Received::duplicates`]), so tests can bound them.
//!
//! The receiver runs on its own thread with a current-thread tokio runtime, so plain `#[test]`
//! functions and the benchmark use it without a runtime of their own. Dropping it stops it.
//!
//! ```no_run
//! # use eos_logs::receiver::{Answer, Receiver};
//! # use std::time::Duration;
//! let loki = Receiver::start();
//! loki.script(vec![Answer::TooManyRequests]); // the next push gets 429, then 204s
//! // ... point the agent at loki.url() ...
//! let got = loki.wait_for_lines(10, Duration::from_secs(10)).expect("lines");
//! assert_eq!(got.duplicates(), 0);
//! ```

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prost::Message;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{oneshot, watch};

use crate::loki::Timestamp;

/// Loki's push path.
const PUSH_PATH: &str = "/loki/api/v1/push";

/// How long [`Receiver::answer`] waits for the server thread to apply a change (closing or
/// binding the listener).
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// How the receiver answers a push.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Answer {
    /// Behave as Loki: `413` over [`Receiver::max_body`], `400` for a body that does not
    /// decode or a stream whose labels do not parse, else store the entries and answer `204`.
    /// The default.
    #[default]
    Accept,
    /// `400 Bad Request` with this text; nothing is stored.
    BadRequest(String),
    /// `413 Payload Too Large`; nothing is stored.
    TooLarge,
    /// `429 Too Many Requests` (Loki's ingestion rate limit); nothing is stored.
    TooManyRequests,
    /// `503 Service Unavailable` (no ingester to take it); nothing is stored.
    Unavailable,
    /// Read the request and never answer it; the connection is closed, unanswered, when the
    /// answer changes ([`Receiver::answer`], [`Receiver::script`]) or the receiver is dropped.
    Hang,
    /// As the default answer: close the listener, so that new connections are refused, and
    /// close the open ones; a later [`Receiver::answer`] binds the same port again. In a
    /// script: close this push's connection without an answer (as if Loki died mid-request);
    /// the listener stays open.
    Down,
}

/// One stored entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The stream's label set as sent (`{namespace="a", pod="b"}`).
    pub labels: String,
    pub seconds: i64,
    pub nanos: i32,
    /// The line; invalid UTF-8 is replaced (Loki does not check it).
    pub line: String,
}

/// One push, whatever its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLog {
    /// The status answered; `0` when the push was not answered ([`Answer::Hang`],
    /// [`Answer::Down`] in a script).
    pub status: u16,
    /// Entries in the body (all streams), or 0 if it does not decode.
    pub entries: usize,
    /// The body's size as sent (compressed).
    pub body_bytes: usize,
    /// `X-Scope-OrgID`.
    pub tenant: Option<String>,
    /// `Authorization`.
    pub authorization: Option<String>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
}

/// What the receiver has been sent: a snapshot.
#[derive(Clone, Debug, Default)]
pub struct Received {
    /// Stored entries in arrival order, duplicates included (empty when counting).
    pub entries: Vec<Entry>,
    /// Every push, in arrival order.
    pub requests: Vec<RequestLog>,
    /// Entries stored (or counted), duplicates included.
    pub total_entries: u64,
    /// Bytes of the lines stored (or counted), uncompressed.
    pub total_bytes: u64,
}

impl Received {
    /// The stored lines in arrival order.
    pub fn lines(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.line.as_str()).collect()
    }

    /// The distinct stored lines.
    pub fn distinct_lines(&self) -> BTreeSet<&str> {
        self.entries.iter().map(|e| e.line.as_str()).collect()
    }

    /// How many stored entries repeat an earlier one's labels, timestamp and line (Loki
    /// would drop them). Always 0 when counting.
    pub fn duplicates(&self) -> usize {
        let mut seen = HashSet::new();
        self.entries
            .iter()
            .filter(|e| !seen.insert((e.labels.as_str(), e.seconds, e.nanos, e.line.as_str())))
            .count()
    }

    /// The status of every push, in arrival order (`0`: not answered).
    pub fn statuses(&self) -> Vec<u16> {
        self.requests.iter().map(|r| r.status).collect()
    }
}

/// A Loki push endpoint on `127.0.0.1`, on a thread of its own. Dropping it stops it and
/// closes its connections.
pub struct Receiver {
    shared: Arc<Shared>,
    port: u16,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    /// Binds `127.0.0.1:0` and stores every line. Panics if it cannot bind or start a thread.
    pub fn start() -> Receiver {
        Receiver::spawn(false)
    }

    /// Binds `127.0.0.1:0` and only counts entries, bytes and pushes, storing no lines: for
    /// benchmarks, where the receiver must keep up with the agent on one core.
    /// [`Receiver::wait_for_lines`] then waits for a number of entries.
    pub fn start_counting() -> Receiver {
        Receiver::spawn(true)
    }

    fn spawn(counting: bool) -> Receiver {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("receiver: tokio runtime");
        let listener = {
            let _guard = rt.enter();
            bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).expect("receiver: bind 127.0.0.1:0")
        };
        let port = listener
            .local_addr()
            .expect("receiver: listener address")
            .port();
        let shared = Arc::new(Shared {
            counting,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            ctl: watch::Sender::new(0),
            kill: watch::Sender::new(0),
        });
        let (stop, stopped) = oneshot::channel();
        let server = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("loki-receiver-{port}"))
            .spawn(move || {
                rt.block_on(async move {
                    tokio::select! {
                        _ = serve(server, listener, port) => {}
                        _ = stopped => {}
                    }
                });
                // Dropping the runtime drops every connection task, closing its socket.
                drop(rt);
            })
            .expect("receiver: thread");
        Receiver {
            shared,
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The base URL, `http://127.0.0.1:PORT` (no path); the port stays the same for the
    /// receiver's life, through [`Answer::Down`].
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The answer to pushes from now on (after any script). Returns once it applies: with
    /// [`Answer::Down`], once the listener is closed; away from it, once the port is bound
    /// again (or after 10 s of failing to).
    pub fn answer(&self, a: Answer) {
        self.change(|st| st.default = a);
    }

    /// Answers the next pushes with these, in order, then with the default answer. Replaces
    /// any script not yet used up.
    pub fn script(&self, answers: Vec<Answer>) {
        self.change(|st| st.script = answers.into());
    }

    /// Answers `413` to bodies over `bytes`, compressed or (as snappy's header says)
    /// decompressed, as Loki's message size limit does; `None`: no limit (the default).
    /// Applies to [`Answer::Accept`].
    pub fn max_body(&self, bytes: Option<usize>) {
        self.shared.lock().max_body = bytes;
    }

    /// What has been received so far.
    pub fn received(&self) -> Received {
        self.shared.lock().received.clone()
    }

    /// Waits until `n` distinct lines are stored (when counting: `n` entries are counted),
    /// or `timeout` passes: then an error says how many there are and the last status.
    pub fn wait_for_lines(&self, n: usize, timeout: Duration) -> Result<Received, String> {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            let have = if self.shared.counting {
                usize::try_from(st.received.total_entries).unwrap_or(usize::MAX)
            } else {
                st.distinct.len()
            };
            if have >= n {
                return Ok(st.received.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                let what = if self.shared.counting {
                    "entries"
                } else {
                    "distinct lines"
                };
                let last = match st.received.requests.last() {
                    Some(r) => r.status.to_string(),
                    None => "none".to_string(),
                };
                return Err(format!(
                    "{have} of {n} {what} after {timeout:?}: {} pushes, last status {last}",
                    st.received.requests.len()
                ));
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Changes the answers, tells the server and waits until it has applied the change.
    fn change(&self, f: impl FnOnce(&mut State)) {
        let mut st = self.shared.lock();
        f(&mut st);
        let mut generation = 0;
        self.shared.ctl.send_modify(|g| {
            *g += 1;
            generation = *g;
        });
        let deadline = Instant::now() + APPLY_TIMEOUT;
        while st.applied < generation {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the server thread and the test share.
struct Shared {
    counting: bool,
    state: Mutex<State>,
    /// Signalled when a push is logged or a change applied.
    changed: Condvar,
    /// Bumped on every change of the answers: wakes the listener loop and hung requests.
    ctl: watch::Sender<u64>,
    /// Bumped when going down: closes every open connection.
    kill: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    default: Answer,
    script: VecDeque<Answer>,
    max_body: Option<usize>,
    /// The last `ctl` generation the listener loop has applied.
    applied: u64,
    received: Received,
    /// The distinct stored lines (not kept when counting).
    distinct: HashSet<String>,
}

/// Entries of one push to store.
#[derive(Default)]
struct Batch {
    entries: Vec<Entry>,
    count: u64,
    bytes: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The answer for the next push, and the size limit.
    fn take_answer(&self) -> (Answer, Option<usize>) {
        let mut st = self.lock();
        let answer = match st.script.pop_front() {
            Some(a) => a,
            None => st.default.clone(),
        };
        (answer, st.max_body)
    }

    fn is_down(&self) -> bool {
        self.lock().default == Answer::Down
    }

    fn ack(&self, generation: u64) {
        let mut st = self.lock();
        st.applied = st.applied.max(generation);
        drop(st);
        self.changed.notify_all();
    }

    /// Logs a push with its status, stores its batch, and wakes waiters.
    fn record(&self, mut log: RequestLog, status: u16, batch: Option<Batch>) {
        log.status = status;
        let mut st = self.lock();
        if let Some(batch) = batch {
            st.received.total_entries += batch.count;
            st.received.total_bytes += batch.bytes;
            for e in batch.entries {
                if !st.distinct.contains(&e.line) {
                    st.distinct.insert(e.line.clone());
                }
                st.received.entries.push(e);
            }
        }
        st.received.requests.push(log);
        drop(st);
        self.changed.notify_all();
    }

    /// Logs a push answered with `status` and no entries stored, and makes the answer.
    fn reply(&self, log: RequestLog, status: StatusCode, body: String) -> Resp {
        self.record(log, status.as_u16(), None);
        text(status, body)
    }
}

/// Binds with `SO_REUSEADDR`, so the port can be bound again while connections of the
/// previous listener linger in `TIME_WAIT`.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Accepts connections while the default answer is not `Down`; closes the listener and the
/// connections when it is, and binds the same port again when it no longer is.
async fn serve(shared: Arc<Shared>, listener: TcpListener, port: u16) {
    let mut listener = Some(listener);
    let mut ctl = shared.ctl.subscribe();
    loop {
        let generation = *ctl.borrow_and_update();
        if shared.is_down() {
            if listener.take().is_some() {
                shared.kill.send_modify(|k| *k += 1);
            }
        } else if listener.is_none() {
            match bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))) {
                Ok(l) => listener = Some(l),
                Err(e) => {
                    eprintln!("loki receiver: binding port {port} again: {e}; retrying");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        shared.ack(generation);
        let Some(l) = &listener else {
            if ctl.changed().await.is_err() {
                return;
            }
            continue;
        };
        tokio::select! {
            accepted = l.accept() => match accepted {
                Ok((stream, _)) => {
                    // As Loki's Go server does (Go sets TCP_NODELAY on every connection):
                    // without it a small answer can wait for a delayed ACK.
                    let _ = stream.set_nodelay(true);
                    let kill = shared.kill.subscribe();
                    tokio::spawn(connection(shared.clone(), stream, kill));
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            },
            changed = ctl.changed() => if changed.is_err() {
                return;
            },
        }
    }
}

/// Serves one connection (keep-alive) until it ends or the receiver goes down.
async fn connection(
    shared: Arc<Shared>,
    stream: tokio::net::TcpStream,
    mut kill: watch::Receiver<u64>,
) {
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { handle(&shared, req).await }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = conn => {}
        _ = kill.changed() => {}
    }
}

type Resp = Response<Full<Bytes>>;

/// A service error: hyper closes the connection without an answer.
#[derive(Debug)]
struct Unanswered;

impl fmt::Display for Unanswered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("closed without an answer")
    }
}

impl std::error::Error for Unanswered {}

fn text(status: StatusCode, body: String) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    if status != StatusCode::NO_CONTENT {
        resp.headers_mut().insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    resp
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Result<Resp, Unanswered> {
    let path = req.uri().path();
    if path == PUSH_PATH {
        if req.method() == Method::POST {
            return push(shared, req).await;
        }
        return Ok(text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n".into(),
        ));
    }
    if path == "/ready" {
        if req.method() == Method::GET || req.method() == Method::HEAD {
            return Ok(text(StatusCode::OK, "ready\n".into()));
        }
        return Ok(text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n".into(),
        ));
    }
    Ok(text(StatusCode::NOT_FOUND, "404 page not found\n".into()))
}

async fn push(shared: &Shared, req: Request<Incoming>) -> Result<Resp, Unanswered> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let mut log = RequestLog {
        status: 0,
        entries: 0,
        body_bytes: 0,
        tenant: header("x-scope-orgid"),
        authorization: header(AUTHORIZATION.as_str()),
        content_type: header(CONTENT_TYPE.as_str()),
        content_encoding: header(CONTENT_ENCODING.as_str()),
    };
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        // The client went away mid-body: nothing to answer.
        Err(_) => return Err(Unanswered),
    };
    log.body_bytes = body.len();
    // Subscribed before taking the answer, so that a hung push sees any later change.
    let mut changes = shared.ctl.subscribe();
    let (answer, max_body) = shared.take_answer();
    if answer == Answer::Accept {
        return Ok(accept(shared, log, &body, max_body));
    }
    log.entries = decode(&body).map(|r| count(&r)).unwrap_or(0);
    let (status, message) = match answer {
        Answer::Accept => unreachable!("handled above"),
        Answer::Hang => {
            shared.record(log, 0, None);
            let _ = changes.changed().await;
            return Err(Unanswered);
        }
        Answer::Down => {
            shared.record(log, 0, None);
            return Err(Unanswered);
        }
        Answer::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
        Answer::TooLarge => (
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large\n".into(),
        ),
        Answer::TooManyRequests => (
            StatusCode::TOO_MANY_REQUESTS,
            "Ingestion rate limit exceeded for user fake (limit: 4194304 bytes/sec); \
             reduce log volume or contact your Loki administrator to see if the limit \
             can be increased\n"
                .into(),
        ),
        Answer::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "at least 1 live replicas required, could only find 0\n".into(),
        ),
    };
    Ok(shared.reply(log, status, message))
}

/// Loki's part: size limit, decoding, label validation, storing.
fn accept(shared: &Shared, mut log: RequestLog, body: &[u8], max_body: Option<usize>) -> Resp {
    if let Some(max) = max_body {
        let size = body.len().max(snap::raw::decompress_len(body).unwrap_or(0));
        if size > max {
            let msg = format!("message size too large than max ({size} vs {max})\n");
            return shared.reply(log, StatusCode::PAYLOAD_TOO_LARGE, msg);
        }
    }
    if let Some(enc) = log.content_encoding.as_deref() {
        if !enc.is_empty() && !enc.eq_ignore_ascii_case("snappy") {
            let msg = format!("Content-Encoding {enc:?} not supported by this receiver\n");
            return shared.reply(log, StatusCode::BAD_REQUEST, msg);
        }
    }
    if let Some(ct) = log.content_type.as_deref() {
        let media = ct.split(';').next().unwrap_or_default().trim();
        if media.eq_ignore_ascii_case("application/json") {
            let msg = "JSON pushes are not supported by this receiver (protobuf only)\n".into();
            return shared.reply(log, StatusCode::BAD_REQUEST, msg);
        }
    }
    let req = match decode(body) {
        Ok(r) => r,
        Err(e) => return shared.reply(log, StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    log.entries = count(&req);
    let mut batch = Batch::default();
    let mut invalid = None;
    for stream in req.streams {
        let labels = String::from_utf8_lossy(&stream.labels);
        if let Err(e) = check_labels(&labels) {
            invalid.get_or_insert(e);
            continue;
        }
        batch.count += stream.entries.len() as u64;
        batch.bytes += stream
            .entries
            .iter()
            .map(|e| e.line.len() as u64)
            .sum::<u64>();
        if !shared.counting {
            let labels = labels.into_owned();
            batch
                .entries
                .extend(stream.entries.into_iter().map(|e| Entry {
                    labels: labels.clone(),
                    seconds: e.timestamp.map_or(0, |t| t.seconds),
                    nanos: e.timestamp.map_or(0, |t| t.nanos),
                    line: String::from_utf8_lossy(&e.line).into_owned(),
                }));
        }
    }
    // As Loki's distributor: the valid streams are stored even if others were not.
    match invalid {
        None => {
            shared.record(log, StatusCode::NO_CONTENT.as_u16(), Some(batch));
            text(StatusCode::NO_CONTENT, String::new())
        }
        Some(e) => {
            shared.record(log, StatusCode::BAD_REQUEST.as_u16(), Some(batch));
            text(StatusCode::BAD_REQUEST, format!("{e}\n"))
        }
    }
}

/// `logproto.PushRequest` read without copying: the strings are slices of the decompressed
/// body (the wire format of `string` and `bytes` is the same), so decoding allocates nothing
/// per entry but its place in the stream's vector.
#[derive(Message)]
struct WirePush {
    #[prost(message, repeated, tag = "1")]
    streams: Vec<WireStream>,
}

#[derive(Message)]
struct WireStream {
    #[prost(bytes = "bytes", tag = "1")]
    labels: Bytes,
    #[prost(message, repeated, tag = "2")]
    entries: Vec<WireEntry>,
    #[prost(uint64, tag = "3")]
    hash: u64,
}

#[derive(Message)]
struct WireEntry {
    #[prost(message, optional, tag = "1")]
    timestamp: Option<Timestamp>,
    #[prost(bytes = "bytes", tag = "2")]
    line: Bytes,
}

fn decode(body: &[u8]) -> Result<WirePush, String> {
    // snap's errors say "snappy: corrupt input (...)" themselves.
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| e.to_string())?;
    WirePush::decode(Bytes::from(raw)).map_err(|e| format!("protobuf: {e}"))
}

fn count(req: &WirePush) -> usize {
    req.streams.iter().map(|s| s.entries.len()).sum()
}

/// Loki's message for a stream without labels.
const MISSING_LABELS: &str = "error at least one label pair is required per stream";

/// Checks a label set the way Loki's parser reads it: `{name="value", ...}`, names
/// `[a-zA-Z_][a-zA-Z0-9_]*`, values double-quoted with backslash escapes, at least one pair,
/// no name twice.
fn check_labels(s: &str) -> Result<(), String> {
    let bad = |why: &str| format!("error parsing labels '{s}' with error: {why}");
    let Some(inner) = s.trim().strip_prefix('{').and_then(|r| r.strip_suffix('}')) else {
        return Err(bad("expected {...}"));
    };
    let mut rest = inner.trim_start();
    if rest.is_empty() {
        return Err(MISSING_LABELS.into());
    }
    let mut names = HashSet::new();
    loop {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..end];
        if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(bad("expected a label name"));
        }
        if !names.insert(name) {
            return Err(format!("stream '{s}' has duplicate label name: '{name}'"));
        }
        rest = rest[end..].trim_start();
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| bad("expected '=' after a label name"))?
            .trim_start();
        rest = rest
            .strip_prefix('"')
            .ok_or_else(|| bad("expected a quoted label value"))?;
        let mut chars = rest.char_indices();
        let mut close = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    chars.next();
                }
                '"' => {
                    close = Some(i);
                    break;
                }
                _ => {}
            }
        }
        let close = close.ok_or_else(|| bad("unterminated quoted string"))?;
        rest = rest[close + 1..].trim_start();
        if rest.is_empty() {
            return Ok(());
        }
        rest = rest
            .strip_prefix(',')
            .ok_or_else(|| bad("expected ',' or '}'"))?
            .trim_start();
        if rest.is_empty() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loki::{self, EntryAdapter, PushRequest, StreamAdapter};
    use std::io::{self, BufRead, BufReader, Read, Write};
    use std::net::TcpStream;

    const WAIT: Duration = Duration::from_secs(10);

    /// HTTP/1.1 written by hand over one (keep-alive) connection.
    struct Client {
        reader: BufReader<TcpStream>,
        writer: TcpStream,
    }

    impl Client {
        fn connect(r: &Receiver) -> io::Result<Client> {
            let stream = TcpStream::connect(r.url().trim_start_matches("http://"))?;
            // Only so that a broken receiver fails the test instead of hanging it.
            stream.set_read_timeout(Some(Duration::from_secs(60)))?;
            Ok(Client {
                reader: BufReader::new(stream.try_clone()?),
                writer: stream,
            })
        }

        fn send(
            &mut self,
            method: &str,
            path: &str,
            headers: &[(&str, &str)],
            body: &[u8],
        ) -> io::Result<(u16, String)> {
            let mut head = format!(
                "{method} {path} HTTP/1.1\r\nHost: loki\r\nContent-Length: {}\r\n",
                body.len()
            );
            for (k, v) in headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            self.writer.write_all(head.as_bytes())?;
            self.writer.write_all(body)?;
            let eof = || io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed");
            let mut status = String::new();
            if self.reader.read_line(&mut status)? == 0 {
                return Err(eof());
            }
            let status: u16 = status
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| io::Error::other(format!("bad status line {status:?}")))?;
            let mut len = 0;
            loop {
                let mut line = String::new();
                if self.reader.read_line(&mut line)? == 0 {
                    return Err(eof());
                }
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        len = v.trim().parse().map_err(io::Error::other)?;
                    }
                }
            }
            let mut body = vec![0; len];
            self.reader.read_exact(&mut body)?;
            Ok((status, String::from_utf8_lossy(&body).into_owned()))
        }

        fn push(&mut self, body: &[u8]) -> io::Result<(u16, String)> {
            self.send(
                "POST",
                PUSH_PATH,
                &[("Content-Type", "application/x-protobuf")],
                body,
            )
        }
    }

    fn body(labels: &str, lines: &[(i64, &str)]) -> Vec<u8> {
        loki::encode(&PushRequest {
            streams: vec![StreamAdapter {
                labels: labels.into(),
                entries: lines
                    .iter()
                    .map(|(s, l)| EntryAdapter {
                        timestamp: Some(loki::Timestamp {
                            seconds: *s,
                            nanos: 7,
                        }),
                        line: (*l).into(),
                    })
                    .collect(),
                hash: 0,
            }],
        })
    }

    const POD: &str = "{namespace=\"default\", pod=\"a\"}";

    #[test]
    fn round_trip_stores_entries_and_headers() {
        let r = Receiver::start();
        let mut c = Client::connect(&r).unwrap();
        let headers = [
            ("Content-Type", "application/x-protobuf"),
            ("X-Scope-OrgID", "team-a"),
            ("Authorization", "Basic dTpw"),
        ];
        let (status, text) = c
            .send(
                "POST",
                PUSH_PATH,
                &headers,
                &body(POD, &[(1, "one"), (2, "two")]),
            )
            .unwrap();
        assert_eq!((status, text.as_str()), (204, ""));
        // The same connection again (keep-alive).
        assert_eq!(c.push(&body(POD, &[(3, "three")])).unwrap().0, 204);

        let got = r.wait_for_lines(3, WAIT).unwrap();
        assert_eq!(got.lines(), ["one", "two", "three"]);
        assert_eq!(
            got.entries[0],
            Entry {
                labels: POD.into(),
                seconds: 1,
                nanos: 7,
                line: "one".into()
            }
        );
        assert_eq!((got.total_entries, got.total_bytes), (3, 11));
        assert_eq!(got.statuses(), [204, 204]);
        let first = &got.requests[0];
        assert_eq!(first.entries, 2);
        assert_eq!(first.tenant.as_deref(), Some("team-a"));
        assert_eq!(first.authorization.as_deref(), Some("Basic dTpw"));
        assert_eq!(
            first.content_type.as_deref(),
            Some("application/x-protobuf")
        );
        assert_eq!(first.content_encoding, None);
        assert_eq!(got.requests[1].tenant, None);

        assert_eq!(
            c.send("GET", "/ready", &[], b"").unwrap(),
            (200, "ready\n".into())
        );
        assert_eq!(c.send("GET", PUSH_PATH, &[], b"").unwrap().0, 405);
        assert_eq!(c.send("POST", "/api/prom/push", &[], b"").unwrap().0, 404);
        // Only pushes are logged.
        assert_eq!(r.received().requests.len(), 2);
    }

    #[test]
    fn scripted_answers_then_the_default() {
        let r = Receiver::start();
        r.script(vec![Answer::TooManyRequests, Answer::Unavailable]);
        let mut c = Client::connect(&r).unwrap();
        let b = body(POD, &[(1, "x")]);
        assert_eq!(c.push(&b).unwrap().0, 429);
        assert_eq!(c.push(&b).unwrap().0, 503);
        assert_eq!(c.push(&b).unwrap().0, 204);
        let got = r.received();
        assert_eq!(got.statuses(), [429, 503, 204]);
        // Only the accepted push is stored; the refused ones are logged with their entries.
        assert_eq!(got.lines(), ["x"]);
        assert_eq!(got.requests[0].entries, 1);

        r.answer(Answer::BadRequest("entry too far behind".into()));
        assert_eq!(c.push(&b).unwrap(), (400, "entry too far behind".into()));
        r.answer(Answer::TooLarge);
        assert_eq!(c.push(&b).unwrap().0, 413);
        assert_eq!(r.received().total_entries, 1);
    }

    #[test]
    fn garbage_body_is_a_bad_request() {
        let r = Receiver::start();
        let mut c = Client::connect(&r).unwrap();
        let (status, text) = c.push(b"this is not snappy").unwrap();
        assert_eq!(status, 400);
        assert!(text.starts_with("snappy: "), "{text}");
        let junk = snap::raw::Encoder::new()
            .compress_vec(b"\xff\xff\xff")
            .unwrap();
        let (status, text) = c.push(&junk).unwrap();
        assert_eq!(status, 400);
        assert!(text.starts_with("protobuf: "), "{text}");
        // The connection is still good.
        assert_eq!(c.push(&body(POD, &[(1, "ok")])).unwrap().0, 204);
        let err = r.wait_for_lines(2, Duration::from_millis(50)).unwrap_err();
        assert!(err.contains("1 of 2 distinct lines"), "{err}");
        assert!(err.contains("3 pushes, last status 204"), "{err}");
        assert_eq!(r.received().requests[0].entries, 0);
    }

    #[test]
    fn invalid_labels_are_a_bad_request_but_valid_streams_are_stored() {
        let r = Receiver::start();
        let mut c = Client::connect(&r).unwrap();
        let stream = |labels: &str, line: &str| StreamAdapter {
            labels: labels.into(),
            entries: vec![EntryAdapter {
                timestamp: Some(loki::Timestamp {
                    seconds: 1,
                    nanos: 0,
                }),
                line: line.into(),
            }],
            hash: 0,
        };
        let req = PushRequest {
            streams: vec![stream("{}", "none"), stream(POD, "good")],
        };
        let (status, text) = c.push(&loki::encode(&req)).unwrap();
        assert_eq!(status, 400);
        assert!(text.starts_with(MISSING_LABELS), "{text}");
        assert_eq!(r.received().lines(), ["good"]);

        assert!(check_labels(POD).is_ok());
        assert!(check_labels(r#"{a="x\"}y", b_2="",}"#).is_ok());
        for bad in [
            "",
            "a=\"b\"",
            "{a=b}",
            "{a=\"b}",
            "{1a=\"b\"}",
            "{a=\"b\" c=\"d\"}",
        ] {
            assert!(check_labels(bad).is_err(), "{bad}");
        }
        assert!(check_labels("{a=\"b\", a=\"c\"}")
            .unwrap_err()
            .contains("duplicate label name"));
    }

    #[test]
    fn down_refuses_connections_then_the_same_port_comes_back() {
        let r = Receiver::start();
        let url = r.url();
        let mut old = Client::connect(&r).unwrap();
        assert_eq!(old.push(&body(POD, &[(1, "before")])).unwrap().0, 204);

        r.answer(Answer::Down);
        let refused = Client::connect(&r).err().expect("connection refused");
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        // The kept-alive connection is closed too.
        assert!(old.push(&body(POD, &[(2, "lost")])).is_err());

        r.answer(Answer::Accept);
        assert_eq!(r.url(), url);
        let mut c = Client::connect(&r).unwrap();
        assert_eq!(c.push(&body(POD, &[(3, "after")])).unwrap().0, 204);
        assert_eq!(r.received().lines(), ["before", "after"]);
    }

    #[test]
    fn hang_answers_nothing_until_the_answer_changes() {
        let r = Receiver::start();
        r.answer(Answer::Hang);
        let mut c = Client::connect(&r).unwrap();
        let client = std::thread::spawn(move || c.push(&body(POD, &[(1, "hung")])));
        // Wait for the push to arrive (it is logged, unanswered).
        let deadline = Instant::now() + WAIT;
        while r.received().requests.is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(r.received().statuses(), [0]);
        r.answer(Answer::Accept);
        assert!(client.join().unwrap().is_err(), "closed without an answer");
        assert!(r.received().lines().is_empty());

        // Down in a script: that push's connection is closed, the next one is answered.
        r.script(vec![Answer::Down]);
        let mut c = Client::connect(&r).unwrap();
        assert!(c.push(&body(POD, &[(2, "cut")])).is_err());
        let mut c = Client::connect(&r).unwrap();
        assert_eq!(c.push(&body(POD, &[(3, "fine")])).unwrap().0, 204);
        assert_eq!(r.received().statuses(), [0, 0, 204]);
    }

    #[test]
    fn max_body_gives_413() {
        let r = Receiver::start();
        let b = body(POD, &[(1, "a line long enough to pass the limit")]);
        r.max_body(Some(b.len() - 1));
        let mut c = Client::connect(&r).unwrap();
        let (status, text) = c.push(&b).unwrap();
        assert_eq!(status, 413);
        assert!(
            text.starts_with("message size too large than max"),
            "{text}"
        );
        assert!(r.received().entries.is_empty());
        r.max_body(None);
        assert_eq!(c.push(&b).unwrap().0, 204);
        assert_eq!(r.received().statuses(), [413, 204]);
    }

    #[test]
    fn duplicates_count_an_identical_resend() {
        let r = Receiver::start();
        let mut c = Client::connect(&r).unwrap();
        let b = body(POD, &[(1, "a"), (2, "b")]);
        assert_eq!(c.push(&b).unwrap().0, 204);
        assert_eq!(c.push(&b).unwrap().0, 204);
        // Same line, another timestamp: not a duplicate.
        assert_eq!(c.push(&body(POD, &[(3, "a")])).unwrap().0, 204);
        let got = r.wait_for_lines(2, WAIT).unwrap();
        assert_eq!(got.entries.len(), 5);
        assert_eq!(got.duplicates(), 2);
        assert_eq!(
            got.distinct_lines().into_iter().collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn counting_mode_counts_without_storing_lines() {
        let r = Receiver::start_counting();
        let mut c = Client::connect(&r).unwrap();
        assert_eq!(c.push(&body(POD, &[(1, "abc"), (2, "de")])).unwrap().0, 204);
        assert_eq!(c.push(&body(POD, &[(1, "abc")])).unwrap().0, 204);
        let got = r.wait_for_lines(3, WAIT).unwrap();
        assert!(got.entries.is_empty());
        assert_eq!((got.total_entries, got.total_bytes), (3, 8));
        assert_eq!(got.duplicates(), 0);
        assert_eq!(got.requests.len(), 2);
        assert_eq!(got.requests[0].entries, 2);
    }

    #[test]
    fn dropping_stops_it() {
        let r = Receiver::start();
        let mut c = Client::connect(&r).unwrap();
        assert_eq!(c.send("GET", "/ready", &[], b"").unwrap().0, 200);
        let addr = r.url().trim_start_matches("http://").to_string();
        drop(r);
        assert!(TcpStream::connect(addr).is_err());
        assert!(c.send("GET", "/ready", &[], b"").is_err());
    }
}
