//! The pusher: sends batches to Loki one at a time, in order, and advances the positions only
//! when Loki has accepted a batch.
//!
//! - 2xx: accepted; the files advance and the positions are saved before the next batch.
//! - 400: Loki refused entries it will never take (too old, too long); its message is logged,
//!   the entries are counted as `rejected`, and the files advance.
//! - 413: the batch splits in two, in order, each half pushed on its own.
//! - 429, 5xx, other 4xx (e.g. a 401 until the token is fixed), connection errors and
//!   timeouts: retried with jittered exponential backoff, forever by default, while the
//!   reader waits (the files on disk are the buffer).

use crate::batch::{Batch, EncodeBuffers};
use crate::config::LogsConfig;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use eos_http::header::{self, HeaderName, HeaderValue};
use eos_http::{Client, Request};
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc::Receiver;

/// What the status page shows of delivery.
#[derive(Clone, Debug, Default)]
pub struct PushStatus {
    /// The last push's answer, e.g. `204` or `429: too many requests`.
    pub last_result: Option<String>,
    /// When Loki last accepted a push.
    pub last_success: Option<SystemTime>,
    /// Consecutive failed attempts of the current batch.
    pub failures: u32,
}

/// How one attempt ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted,
    /// 400: Loki will never take these; its message.
    Rejected(String),
    TooLarge,
    /// Worth another try, with the status label (`429`, `503`, `error`, `timeout`) and why.
    Retry(String, String),
}

/// Sorts an HTTP answer.
pub fn classify(status: u16, body: &[u8]) -> Outcome {
    let text = || {
        String::from_utf8_lossy(&body[..body.len().min(1024)])
            .trim()
            .to_string()
    };
    match status {
        200..=299 => Outcome::Accepted,
        400 => Outcome::Rejected(text()),
        413 => Outcome::TooLarge,
        s => Outcome::Retry(s.to_string(), text()),
    }
}

/// How many entries a 400 says were refused: Loki ends its message with
/// `total ignored: N out of M`; without it, the whole batch.
pub fn rejected_count(message: &str, batch_entries: usize) -> usize {
    message
        .rfind("total ignored: ")
        .and_then(|at| {
            message[at + 15..]
                .split_whitespace()
                .next()?
                .parse::<usize>()
                .ok()
        })
        .map_or(batch_entries, |n| n.min(batch_entries))
}

/// Jittered exponential backoff: `min * 2^attempt`, capped at `max`, then a random factor
/// between 0.5 and 1 so that many agents do not retry in step.
#[derive(Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    attempt: u32,
    seed: u64,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        let seed = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()) << 32;
        Backoff {
            min,
            max,
            attempt: 0,
            seed: seed | 1,
        }
    }

    /// The wait before the next retry.
    pub fn next_wait(&mut self) -> Duration {
        let base = self
            .min
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        // xorshift64: jitter needs no more than this.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let factor = 0.5 + (self.seed % 1000) as f64 / 2000.0;
        base.mul_f64(factor)
    }

    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// Delivers batches to Loki.
pub struct Pusher {
    pub cfg: Arc<LogsConfig>,
    pub client: Client,
    pub tls: Option<eos_http::Tls>,
    /// `Authorization` from basic auth (built at start); a bearer token is read per push.
    pub basic_auth: Option<HeaderValue>,
    pub ledger: Arc<Ledger>,
    pub metrics: Arc<Metrics>,
    pub status: Arc<Mutex<PushStatus>>,
    /// Rung whenever a batch is taken, so a reader waiting for room goes on at once.
    pub room: Arc<Room>,
    /// Encoding buffers kept between batches.
    pub bufs: EncodeBuffers,
}

/// A doorbell between the pusher and the reader's thread: the pusher rings it when it takes
/// a batch, the reader waits on it (with a timeout) while its next batch has no room.
#[derive(Debug, Default)]
pub struct Room {
    rung: Mutex<bool>,
    cv: Condvar,
}

impl Room {
    /// Wakes the waiting reader.
    pub fn ring(&self) {
        *self.rung.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.cv.notify_one();
    }

    /// Waits until rung or `timeout`; returns whether it was rung.
    pub fn wait(&self, timeout: Duration) -> bool {
        let guard = self.rung.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut rung, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |r| !*r)
            .unwrap_or_else(PoisonError::into_inner);
        std::mem::replace(&mut *rung, false)
    }
}

impl Pusher {
    /// Takes batches until the reader closes the channel. Once `stopping` resolves, keeps
    /// going only until the shutdown timeout.
    pub async fn run(
        mut self,
        mut rx: Receiver<Batch>,
        stopping: impl std::future::Future<Output = ()> + Send,
    ) {
        let mut stopping = std::pin::pin!(stopping);
        let mut deadline: Option<Instant> = None;
        let mut backoff = Backoff::new(self.cfg.backoff.min.get(), self.cfg.backoff.max.get());
        loop {
            let batch = if deadline.is_none() {
                tokio::select! {
                    b = rx.recv() => b,
                    () = &mut stopping => {
                        deadline = Some(Instant::now() + self.cfg.shutdown_timeout.get());
                        continue;
                    }
                }
            } else {
                match tokio::time::timeout_at(deadline_of(deadline), rx.recv()).await {
                    Ok(b) => b,
                    Err(_) => break,
                }
            };
            let Some(batch) = batch else { break };
            self.room.ring();
            if !self
                .deliver(batch, &mut backoff, &mut stopping, &mut deadline)
                .await
            {
                break;
            }
        }
        self.save_positions().await;
    }

    /// Pushes one batch (split on 413) until it is accepted or refused for good. Returns
    /// `false` when the shutdown deadline passed first.
    async fn deliver(
        &mut self,
        batch: Batch,
        backoff: &mut Backoff,
        stopping: &mut std::pin::Pin<&mut (impl std::future::Future<Output = ()> + Send)>,
        deadline: &mut Option<Instant>,
    ) -> bool {
        let mut queue = VecDeque::from([batch]);
        while let Some(b) = queue.pop_front() {
            if b.entries() == 0 {
                self.accepted(&b, 0).await;
                continue;
            }
            b.encode_into(&mut self.bufs);
            let body = bytes::Bytes::from(std::mem::take(&mut self.bufs.compressed));
            let mut retries = 0u32;
            loop {
                let outcome = self.attempt(body.clone(), deadline.is_some()).await;
                match outcome {
                    Outcome::Accepted => {
                        backoff.reset();
                        self.metrics.backoff_seconds.set(0.0);
                        self.accepted(&b, body.len()).await;
                        break;
                    }
                    Outcome::Rejected(msg) => {
                        let n = rejected_count(&msg, b.entries());
                        tracing::warn!(entries = n, message = %msg, "logs: Loki rejected entries (400); they are counted and skipped");
                        self.metrics
                            .entries_dropped
                            .get_or_create(&["rejected"])
                            .add(n as u64);
                        self.metrics
                            .entries_sent
                            .add((b.entries().saturating_sub(n)) as u64);
                        self.advance(&b).await;
                        break;
                    }
                    Outcome::TooLarge => match b.split() {
                        Ok((first, second)) => {
                            queue.push_front(second);
                            queue.push_front(first);
                            break;
                        }
                        Err(one) => {
                            tracing::warn!("logs: Loki refused a single entry as too large (413); it is counted and skipped");
                            self.metrics
                                .entries_dropped
                                .get_or_create(&["rejected"])
                                .add(one.entries() as u64);
                            self.advance(&one).await;
                            break;
                        }
                    },
                    Outcome::Retry(status, why) => {
                        retries += 1;
                        self.metrics.push_retries.get_or_create(&[&status]).inc();
                        let max = self.cfg.backoff.max_retries;
                        if max > 0 && retries > max {
                            tracing::error!(entries = b.entries(), status = %status, "logs: giving up a batch after {max} retries (backoff.max_retries): {why}");
                            self.metrics
                                .entries_dropped
                                .get_or_create(&["retries_exhausted"])
                                .add(b.entries() as u64);
                            self.advance(&b).await;
                            break;
                        }
                        let wait = backoff.next_wait();
                        self.metrics.backoff_seconds.set(wait.as_secs_f64());
                        if retries == 1 || retries % 10 == 0 {
                            tracing::warn!(status = %status, retries, wait_ms = wait.as_millis() as u64, "logs: push failed, retrying: {why}");
                        }
                        if !self.pause(wait, stopping, deadline).await {
                            return false;
                        }
                    }
                }
            }
            // Take the body's buffer back for the next batch (no clone of it is left).
            if let Ok(buf) = body.try_into_mut() {
                self.bufs.compressed = buf.into();
            }
        }
        true
    }

    /// Waits `wait`; returns `false` if the shutdown deadline comes first.
    async fn pause(
        &self,
        wait: Duration,
        stopping: &mut std::pin::Pin<&mut (impl std::future::Future<Output = ()> + Send)>,
        deadline: &mut Option<Instant>,
    ) -> bool {
        let until = Instant::now() + wait;
        if deadline.is_none() {
            tokio::select! {
                () = tokio::time::sleep_until(until.into()) => return true,
                () = stopping.as_mut() => {
                    *deadline = Some(Instant::now() + self.cfg.shutdown_timeout.get());
                }
            }
        }
        let end = deadline_of(*deadline);
        if tokio::time::Instant::from(until) >= end {
            tokio::time::sleep_until(end).await;
            return false;
        }
        tokio::time::sleep_until(until.into()).await;
        true
    }

    /// One POST.
    async fn attempt(&self, body: bytes::Bytes, stopping: bool) -> Outcome {
        let mut req = Request::post(self.cfg.push_url(), body).header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        if !self.cfg.loki.tenant_id.is_empty() {
            match HeaderValue::from_str(&self.cfg.loki.tenant_id) {
                Ok(v) => req = req.header(HeaderName::from_static("x-scope-orgid"), v),
                Err(e) => {
                    let why = format!("loki.tenant_id is not a valid header value: {e}");
                    return self.record(Outcome::Retry("error".into(), why));
                }
            }
        }
        if let Some(a) = &self.basic_auth {
            req = req.header(header::AUTHORIZATION, a.clone());
        }
        let token_file = &self.cfg.loki.bearer_token_file;
        if !token_file.as_os_str().is_empty() {
            let token = std::fs::read_to_string(token_file)
                .map_err(|e| format!("reading bearer_token_file {}: {e}", token_file.display()))
                .and_then(|t| eos_http::bearer_auth(t.trim()));
            match token {
                Ok(v) => req = req.header(header::AUTHORIZATION, v),
                Err(why) => return self.record(Outcome::Retry("error".into(), why)),
            }
        }
        req.timeout = self.cfg.loki.timeout.get();
        if stopping {
            req.timeout = req.timeout.min(self.cfg.shutdown_timeout.get());
        }
        req.max_response_bytes = 64 << 10;
        req.tls = self.tls.clone();
        let outcome = match self.client.send(req).await {
            Ok(resp) => {
                self.metrics
                    .push_requests
                    .get_or_create(&[&resp.status.to_string()])
                    .inc();
                classify(resp.status, &resp.body)
            }
            Err(e) => {
                let status = if matches!(e, eos_http::Error::Timeout(_)) {
                    "timeout"
                } else {
                    "error"
                };
                self.metrics.push_requests.get_or_create(&[status]).inc();
                Outcome::Retry(status.into(), e.to_string())
            }
        };
        self.record(outcome)
    }

    fn record(&self, outcome: Outcome) -> Outcome {
        let mut s = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        s.last_result = Some(match &outcome {
            Outcome::Accepted => "accepted".to_string(),
            Outcome::Rejected(m) => format!("400: {m}"),
            Outcome::TooLarge => "413: batch too large, splitting".to_string(),
            Outcome::Retry(st, why) => format!("{st}: {why}"),
        });
        match outcome {
            Outcome::Accepted => {
                s.failures = 0;
                s.last_success = Some(SystemTime::now());
            }
            Outcome::Retry(..) => s.failures += 1,
            _ => s.failures = 0,
        }
        outcome
    }

    async fn accepted(&self, b: &Batch, body_bytes: usize) {
        if b.entries() > 0 {
            self.metrics.entries_sent.add(b.entries() as u64);
            self.metrics.bytes_sent.add(body_bytes as u64);
            self.metrics.batch_entries.observe(b.entries() as f64);
            self.metrics.batch_bytes.observe(b.bytes() as f64);
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.metrics.last_push_success.set(now);
        }
        self.advance(b).await;
    }

    /// Moves the files on past this batch and saves the positions before going on, so that
    /// after a crash only the batch in flight can be sent twice.
    async fn advance(&self, b: &Batch) {
        for (no, bytes) in self.ledger.advance(&b.commits()) {
            if let Some(labels) = self.ledger.labels(no) {
                let l: Vec<&str> = labels.iter().map(String::as_str).collect();
                self.metrics.file_acked_bytes.get_or_create(&l).add(bytes);
            }
        }
        self.save_positions().await;
    }

    async fn save_positions(&self) {
        let ledger = self.ledger.clone();
        let saved = tokio::task::spawn_blocking(move || ledger.save_if_dirty()).await;
        if !matches!(saved, Ok(Ok(()))) {
            self.metrics.positions_errors.inc();
            let why = match saved {
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
                Ok(Ok(())) => String::new(),
            };
            tracing::warn!(path = %self.ledger.path().display(), "logs: saving positions: {why}");
        }
    }
}

fn deadline_of(d: Option<Instant>) -> tokio::time::Instant {
    d.map_or_else(
        || tokio::time::Instant::now() + Duration::from_secs(3600),
        tokio::time::Instant::from,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_sorted() {
        assert_eq!(classify(204, b""), Outcome::Accepted);
        assert_eq!(classify(400, b" bad \n"), Outcome::Rejected("bad".into()));
        assert_eq!(classify(413, b""), Outcome::TooLarge);
        assert_eq!(
            classify(429, b"slow down"),
            Outcome::Retry("429".into(), "slow down".into())
        );
        assert!(matches!(classify(503, b""), Outcome::Retry(s, _) if s == "503"));
        assert!(matches!(classify(401, b""), Outcome::Retry(s, _) if s == "401"));
    }

    #[test]
    fn rejected_entries_are_counted_from_lokis_message() {
        let msg = "entry with timestamp 2020-01-01 ignored, reason: 'entry too far behind' for stream: {a=\"b\"},\ntotal ignored: 3 out of 10";
        assert_eq!(rejected_count(msg, 10), 3);
        assert_eq!(rejected_count("something else", 10), 10);
        assert_eq!(rejected_count("total ignored: 99 out of 99", 10), 10);
    }

    #[test]
    fn backoff_doubles_to_the_cap_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let waits: Vec<Duration> = (0..8).map(|_| b.next_wait()).collect();
        for (i, w) in waits.iter().enumerate() {
            let base = Duration::from_millis(100 * (1 << i)).min(Duration::from_secs(1));
            assert!(*w >= base / 2 && *w <= base, "{i}: {w:?} vs {base:?}");
        }
        b.reset();
        assert!(b.next_wait() <= Duration::from_millis(100));
    }
}
