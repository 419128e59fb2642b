//! Traces on probe failure (`modules.mtr.on_probe_failure`): the probe module publishes an
//! event for every scheduled probe that fails (`eos_module::events`); this traces the failing
//! target's host right away with the module's own settings and allow rules, at most once per
//! `min_interval` per host and `max_concurrent` at a time, and logs the report at warn level
//! as one event (the `mtr -n -r` text in its `report` field, so that it reaches Loki with the
//! node's log). What became of each event is counted in
//! `eos_mtr_on_failure_traces_total{result}`:
//!
//! | result | what |
//! |---|---|
//! | `traced` | traced and logged |
//! | `skipped_rate_limit` | the host was traced less than `min_interval` ago |
//! | `skipped_busy` | `max_concurrent` of these traces were running |
//! | `denied` | the allow list refuses the host |
//! | `error` | no trace: the host did not resolve, or no socket could be opened |
//! | `missed` | events that went by while this module was more than the channel's capacity behind |
//!
//! The rate limit is taken when a trace starts, so a probe that keeps failing is traced
//! again once `min_interval` is over, for as long as it fails.

use crate::config::OnProbeFailure;
use crate::module::Shared;
use crate::trace::TraceError;
use eos_exposition::Encoder;
use eos_module::events::ProbeEvent;
use eos_module::metrics::{CounterVec, Metric};
use eos_module::{ProbeEvents, ProbeFailure, Tasks};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Every result label, written from the start (0) so that rates work from the first event.
const RESULTS: [&str; 6] = [
    "traced",
    "skipped_rate_limit",
    "skipped_busy",
    "denied",
    "error",
    "missed",
];

/// Hosts remembered for the rate limit before the expired ones are forgotten. (The hosts are
/// those of scheduled probes, so the probe module's config bounds how many are limited at
/// once.)
const REMEMBERED: usize = 1024;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The state of tracing on probe failure.
pub(crate) struct OnFailure {
    cfg: OnProbeFailure,
    events: ProbeEvents,
    /// One permit per trace allowed at once.
    slots: Arc<Semaphore>,
    /// When each host's last trace started.
    last: Mutex<HashMap<String, Instant>>,
    results: CounterVec,
}

/// Whether a host last traced at `last` may be traced at `now`.
fn due(last: Option<Instant>, now: Instant, min_interval: Duration) -> bool {
    last.is_none_or(|t| now.saturating_duration_since(t) >= min_interval)
}

impl OnFailure {
    /// Tracing on the failures `events` brings, as `cfg` says.
    pub(crate) fn new(cfg: &OnProbeFailure, events: ProbeEvents) -> OnFailure {
        let results = CounterVec::new(&["result"]);
        for r in RESULTS {
            results.get_or_create(&[r]);
        }
        OnFailure {
            cfg: cfg.clone(),
            events,
            slots: Arc::new(Semaphore::new(cfg.max_concurrent.max(1))),
            last: Mutex::new(HashMap::new()),
            results,
        }
    }

    fn count(&self, result: &str, n: u64) {
        self.results.get_or_create(&[result]).add(n);
    }

    /// Whether `host` may be traced now; if so, its rate limit starts now.
    fn admit(&self, host: &str, now: Instant) -> bool {
        let min = self.cfg.min_interval.get();
        let mut last = lock(&self.last);
        if !due(last.get(host).copied(), now, min) {
            return false;
        }
        if last.len() >= REMEMBERED {
            last.retain(|_, t| !due(Some(*t), now, min));
        }
        last.insert(host.to_string(), now);
        true
    }

    /// `eos_mtr_on_failure_traces_total`.
    pub(crate) fn encode(&self, enc: &mut Encoder<'_>) {
        self.results.encode(
            enc,
            "eos_mtr_on_failure_traces_total",
            "Failed scheduled probes of the probe module, by what tracing their target did: traced, skipped_rate_limit (on_probe_failure.min_interval), skipped_busy (on_probe_failure.max_concurrent), denied (allow list), error (no trace), missed (events that went by while falling behind).",
        );
    }

    /// A line for `/debug/mtr`.
    pub(crate) fn describe(&self) -> String {
        format!(
            "on probe failure: traced at most once per {} per host, {} at once; {} failures published, {} missed\n",
            self.cfg.min_interval,
            self.cfg.max_concurrent,
            self.events.published(),
            self.events.missed(),
        )
    }
}

/// Subscribes to the failure events and traces on them until the module stops.
pub(crate) fn start(shared: Arc<Shared>, on: Arc<OnFailure>, tasks: &Tasks) {
    let mut events = on.events.subscribe();
    let token = tasks.token();
    let spawner = tasks.clone();
    tasks.spawn("mtr-on-failure", async move {
        loop {
            let event = tokio::select! {
                () = token.cancelled() => return,
                e = events.recv() => e,
            };
            match event {
                Some(ProbeEvent::Failed(f)) => handle(&shared, &on, &spawner, f),
                Some(ProbeEvent::Missed(n)) => {
                    tracing::warn!(
                        missed = n,
                        "mtr: fell behind on probe failures, not tracing some"
                    );
                    on.count("missed", n);
                }
                None => return,
            }
        }
    });
}

/// One failure: counted as skipped, or a trace started.
fn handle(shared: &Arc<Shared>, on: &Arc<OnFailure>, tasks: &Tasks, f: ProbeFailure) {
    if !on.admit(&f.host, Instant::now()) {
        on.count("skipped_rate_limit", 1);
        return;
    }
    let Ok(permit) = on.slots.clone().try_acquire_owned() else {
        // Not traced after all: the host may be traced on its next failure.
        lock(&on.last).remove(&f.host);
        on.count("skipped_busy", 1);
        return;
    };
    let (shared, on, token) = (shared.clone(), on.clone(), tasks.token());
    tasks.spawn("mtr-on-failure-trace", async move {
        let _permit = permit;
        tokio::select! {
            () = token.cancelled() => {}
            result = trace(&shared, &f) => on.count(result, 1),
        }
    });
}

/// Traces the failing target's host and logs the report; the result to count.
async fn trace(shared: &Shared, f: &ProbeFailure) -> &'static str {
    let host = f.host.as_str();
    let target = f.target.as_str();
    let dst = match shared.resolve_allowed(host).await {
        Ok(ip) => ip,
        Err(e @ TraceError::Denied(_)) => {
            tracing::info!(
                host,
                probe_target = target,
                "mtr: not tracing after a probe failure: {e}"
            );
            return "denied";
        }
        Err(e) => {
            tracing::warn!(
                host,
                probe_target = target,
                "mtr: cannot trace after a probe failure: {e}"
            );
            return "error";
        }
    };
    let report = match shared.trace_in_turn(host, dst).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(
                host,
                probe_target = target,
                "mtr: cannot trace after a probe failure: {e}"
            );
            return "error";
        }
    };
    let text = report.text(shared.node());
    tracing::warn!(
        host,
        address = %dst,
        probe_target = target,
        probe_module = f.module.as_str(),
        reason = f.reason.as_str(),
        protocol = report.protocol.as_str(),
        reached = report.reached,
        path = report.summary().as_str(),
        report = text.as_str(),
        "mtr: traced the target of a failed probe"
    );
    "traced"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(min_interval: u64, max_concurrent: usize) -> OnFailure {
        OnFailure::new(
            &OnProbeFailure {
                enabled: true,
                min_interval: eos_module::Duration::from_secs(min_interval),
                max_concurrent,
            },
            ProbeEvents::default(),
        )
    }

    #[test]
    fn a_host_is_traced_at_most_once_per_min_interval() {
        let o = on(600, 2);
        let t0 = Instant::now();
        assert!(o.admit("10.0.0.1", t0));
        assert!(!o.admit("10.0.0.1", t0 + Duration::from_secs(599)));
        assert!(o.admit("10.0.0.2", t0), "each host its own limit");
        assert!(o.admit("10.0.0.1", t0 + Duration::from_secs(600)));
        // 0s: every failure.
        let o = on(0, 2);
        assert!(o.admit("h", t0));
        assert!(o.admit("h", t0));
    }

    #[test]
    fn remembered_hosts_are_bounded() {
        let o = on(60, 2);
        let t0 = Instant::now();
        for n in 0..REMEMBERED {
            assert!(o.admit(&format!("h{n}"), t0));
        }
        // Full, and all still limited: the map grows by one rather than forget a limit.
        assert!(o.admit("one more", t0 + Duration::from_secs(1)));
        assert_eq!(lock(&o.last).len(), REMEMBERED + 1);
        // Later, the expired ones go.
        assert!(o.admit("late", t0 + Duration::from_secs(61)));
        assert!(lock(&o.last).len() <= 2);
    }

    #[test]
    fn every_result_is_written_from_the_start() {
        let o = on(60, 1);
        let mut buf = Vec::new();
        let mut enc = Encoder::new(&mut buf, eos_exposition::Format::Text);
        o.encode(&mut enc);
        enc.finish();
        let text = String::from_utf8(buf).unwrap();
        for r in RESULTS {
            assert!(
                text.contains(&format!(
                    "eos_mtr_on_failure_traces_total{{result=\"{r}\"}} 0\n"
                )),
                "{text}"
            );
        }
        let d = o.describe();
        assert!(
            d.contains("at most once per 60s per host, 1 at once"),
            "{d}"
        );
    }
}
