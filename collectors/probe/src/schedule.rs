//! Scheduled probes: every target in `modules.probe.targets` (and every discovered one) is
//! probed at its interval, with its first run at an offset derived from the node name and the
//! target, so that 16 or 5,000 nodes do not probe in lockstep. The last result of each is
//! exported on `/metrics` with `target` and `module` labels (and the target's own labels).
//!
//! Every scheduled probe that fails (not one the allow list refused, and never a `/probe`
//! request) is published as an `eos_module::ProbeFailure` on the agent's probe events, each
//! time it fails: subscribers decide how often to act (the mtr module traces a host at most
//! once per `on_probe_failure.min_interval`). Publishing never waits.

use crate::config::ScheduledTarget;
use crate::log::ProbeLog;
use crate::module::{run_probe, Shared};
use crate::registry::Registry;
use eos_exposition::{Encoder, Kind};
use eos_module::{ModuleContext, ProbeFailure};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// The identity of a scheduled probe.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub target: String,
    pub module: String,
}

/// The last result of one scheduled probe.
#[derive(Clone, Debug)]
pub struct Last {
    pub labels: Vec<(String, String)>,
    pub out: Registry,
    pub success: bool,
    pub at: SystemTime,
    pub log: String,
}

/// Last results by target and module.
#[derive(Default)]
pub struct Results {
    map: Mutex<BTreeMap<Key, Last>>,
}

impl Results {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Last>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn set(&self, key: Key, last: Last) {
        self.lock().insert(key, last);
    }

    pub fn remove(&self, key: &Key) {
        self.lock().remove(key);
    }

    pub fn remove_other_than(&self, keep: &[Key]) {
        self.lock().retain(|k, _| keep.contains(k));
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every result, each family written once with the series of all targets.
    pub fn encode(&self, enc: &mut Encoder<'_>) {
        let map = self.lock();
        // family name -> (help, kind, [(labels, value)])
        type Series = Vec<(Vec<(String, String)>, f64)>;
        let mut fams: BTreeMap<&'static str, (&'static str, Kind, Series)> = BTreeMap::new();
        for (key, last) in map.iter() {
            for f in last.out.families() {
                let entry = fams.entry(f.name).or_insert((f.help, f.kind, Vec::new()));
                for (labels, v) in &f.samples {
                    let mut all: Vec<(String, String)> = labels
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.clone()))
                        .collect();
                    all.push(("module".into(), key.module.clone()));
                    all.push(("target".into(), key.target.clone()));
                    all.extend(last.labels.iter().cloned());
                    all.sort();
                    entry.2.push((all, *v));
                }
            }
        }
        for (name, (help, kind, mut series)) in fams {
            series.sort_by(|a, b| a.0.cmp(&b.0));
            let mut fam = enc.family(name, help, kind);
            for (labels, v) in &series {
                let l: Vec<(&str, &str)> = labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                fam.sample(&l, *v);
            }
        }
    }

    /// A text table for `/debug/probe/`.
    fn table(&self) -> String {
        let map = self.lock();
        let mut s = String::new();
        for (k, last) in map.iter() {
            let ago = SystemTime::now()
                .duration_since(last.at)
                .unwrap_or_default()
                .as_secs_f64();
            let _ = writeln!(
                s,
                "{:<8} {:>7.1}s ago  {} {}",
                if last.success { "success" } else { "FAILED" },
                ago,
                k.module,
                k.target
            );
        }
        s
    }

    /// The last log of one target, for `/debug/probe/`.
    fn logs(&self) -> String {
        let map = self.lock();
        let mut s = String::new();
        for (k, last) in map.iter().filter(|(_, l)| !l.success) {
            let _ = writeln!(s, "--- {} {}\n{}", k.module, k.target, last.log);
        }
        s
    }
}

/// The start offset of a target within its interval: a hash of the node and the target, so
/// each node probes at its own moment, the same one after a restart.
pub fn offset(node: &str, key: &Key, interval: Duration) -> Duration {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node
        .bytes()
        .chain([0])
        .chain(key.target.bytes())
        .chain([0])
        .chain(key.module.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(h % ms)
}

/// Starts one task per configured target (discovered targets come and go through
/// [`spawn_target`]).
pub fn start(shared: Arc<Shared>, ctx: &ModuleContext) {
    let keys: Vec<Key> = shared
        .cfg
        .targets
        .iter()
        .map(|t| Key {
            target: t.target.clone(),
            module: t.module.clone(),
        })
        .collect();
    shared.results.remove_other_than(&keys);
    let node = ctx.node_name().to_string();
    for t in shared.cfg.targets.clone() {
        spawn_target(&shared, &ctx.tasks, &node, t);
    }
}

/// Probes `t` at its interval until the module stops or the returned token is cancelled.
pub fn spawn_target(
    shared: &Arc<Shared>,
    tasks: &eos_module::Tasks,
    node: &str,
    t: ScheduledTarget,
) -> tokio_util::sync::CancellationToken {
    let token = tasks.token().child_token();
    let stop = token.clone();
    let shared = shared.clone();
    let node = node.to_string();
    tasks.spawn("probe-schedule", async move {
        tokio::select! {
            () = run_target(&shared, &node, &t) => {}
            () = stop.cancelled() => {}
        }
    });
    token
}

async fn run_target(shared: &Shared, node: &str, t: &ScheduledTarget) {
    let key = Key {
        target: t.target.clone(),
        module: t.module.clone(),
    };
    let interval = t.interval.get();
    tokio::time::sleep(offset(node, &key, interval)).await;
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let modules = shared.modules.current();
        let Some(module) = modules.get(&t.module) else {
            tracing::warn!(module = %t.module, target = %t.target, "probe: scheduled target names an unknown module");
            continue;
        };
        let own = module.timeout.get();
        let timeout = if own.is_zero() {
            interval
        } else {
            own.min(interval)
        };
        let o = run_probe(&shared.env, &t.module, module, &t.target, timeout).await;
        if !o.success && o.denied.is_none() {
            if let Some(events) = &shared.events {
                events.publish(failure(t, &module.prober, &o.log));
            }
        }
        let result = match (&o.denied, o.success) {
            (Some(_), _) => "denied",
            (None, true) => "success",
            (None, false) => "failure",
        };
        shared
            .probes
            .get_or_create(&[&t.module, result, "schedule"])
            .inc();
        shared.results.set(
            key.clone(),
            Last {
                labels: t
                    .labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                out: o.out,
                success: o.success,
                at: SystemTime::now(),
                log: o.log.text().to_string(),
            },
        );
    }
}

/// The event of a failed scheduled probe of `t` with a module of `prober`.
fn failure(t: &ScheduledTarget, prober: &str, log: &ProbeLog) -> ProbeFailure {
    ProbeFailure {
        target: t.target.clone(),
        host: crate::resolve::host_of(prober, &t.target),
        module: t.module.clone(),
        reason: log.first_error().unwrap_or("probe failed").to_string(),
    }
}

/// `/debug/probe/`: the modules, the scheduled targets' last results, and the logs of those
/// that failed.
pub fn describe(shared: &Shared) -> String {
    let mut s = String::new();
    let modules = shared.modules.current();
    let _ = writeln!(
        s,
        "modules: {}",
        modules.keys().cloned().collect::<Vec<_>>().join(", ")
    );
    if let Some(e) = shared.modules.error() {
        let _ = writeln!(s, "config_file: {e}");
    }
    let _ = writeln!(s, "\nscheduled targets:\n{}", shared.results.table());
    let failed = shared.results.logs();
    if !failed.is_empty() {
        let _ = writeln!(s, "last logs of failing targets:\n{failed}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_spread_and_stable() {
        let key = Key {
            target: "https://example.com".into(),
            module: "http_2xx".into(),
        };
        let i = Duration::from_secs(60);
        let a = offset("node-1", &key, i);
        assert_eq!(a, offset("node-1", &key, i));
        assert!(a < i);
        let distinct: std::collections::BTreeSet<Duration> = (0..100)
            .map(|n| offset(&format!("node-{n}"), &key, i))
            .collect();
        assert!(distinct.len() > 90, "nodes start at different moments");
    }

    #[test]
    fn failures_name_the_host_and_the_first_error() {
        let t = ScheduledTarget {
            target: "https://user@example.com:8443/health".into(),
            module: "http_2xx".into(),
            interval: eos_module::Duration::from_secs(60),
            labels: BTreeMap::new(),
        };
        let mut log = ProbeLog::new("http_2xx", &t.target);
        let f = failure(&t, "http", &log);
        assert_eq!(f.host, "example.com");
        assert_eq!(f.reason, "probe failed", "nothing logged");
        log.error("Error for HTTP request", &[("err", &"timeout")]);
        log.error("Probe failed", &[]);
        let f = failure(&t, "http", &log);
        assert_eq!(f.reason, "Error for HTTP request: err=timeout");
        assert_eq!(
            (f.target.as_str(), f.module.as_str()),
            (t.target.as_str(), "http_2xx")
        );
        let tcp = ScheduledTarget {
            target: "[fd00::1]:22".into(),
            ..t
        };
        assert_eq!(failure(&tcp, "tcp", &log).host, "fd00::1");
    }

    #[test]
    fn results_write_each_family_once_with_target_labels() {
        let r = Results::default();
        for (target, ok) in [("a", 1.0), ("b", 0.0)] {
            let mut out = Registry::new();
            out.gauge(
                "probe_success",
                "Displays whether or not the probe was a success",
                ok,
            );
            r.set(
                Key {
                    target: target.into(),
                    module: "http_2xx".into(),
                },
                Last {
                    labels: vec![("team".into(), "x".into())],
                    out,
                    success: ok == 1.0,
                    at: SystemTime::now(),
                    log: String::new(),
                },
            );
        }
        let mut buf = Vec::new();
        let mut enc = Encoder::new(&mut buf, eos_exposition::Format::Text);
        r.encode(&mut enc);
        let (_, dropped) = enc.finish();
        assert_eq!(dropped.counts, [0; 3]);
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(text.matches("# TYPE probe_success").count(), 1);
        assert!(
            text.contains("probe_success{module=\"http_2xx\",target=\"a\",team=\"x\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("probe_success{module=\"http_2xx\",target=\"b\",team=\"x\"} 0\n"));
    }
}
