//! The mtr module as the agent runs it: one trace cycle per target per interval (each target
//! starting at its own offset in the interval, derived from the node and the target), the
//! last cycle of each exported on `/metrics`, and traces on demand at `/debug/mtr`.
//!
//! Metrics, per target (with the target's own labels):
//!
//! | family | labels | what |
//! |---|---|---|
//! | `eos_mtr_hop_rtt_seconds` | target, hop, address | the last cycle's mean RTT of the hop |
//! | `eos_mtr_hop_rtt_best_seconds`, `_worst_seconds`, `_stddev_seconds` | same | its best, worst and (sample) standard deviation |
//! | `eos_mtr_hop_loss_ratio` | same | unanswered probes / probes sent (1 for a silent hop, address `???`) |
//! | `eos_mtr_hops` | target | hops up to the destination (unreached: up to the first silent hop after the last that answered, as mtr shows them) |
//! | `eos_mtr_path_hash` | target | FNV-1a of the hop address list: changes with the path |
//! | `eos_mtr_path_changes_total` | target | cycles whose path differed from the previous one's |
//! | `eos_mtr_destination_reached` | target | 1 if the destination answered in the last cycle |
//! | `eos_mtr_cycles_total` | target, result | cycles run: `reached`, `unreached` or `failed` |
//! | `eos_mtr_last_cycle_timestamp_seconds`, `eos_mtr_cycle_duration_seconds` | target | when the last cycle ended, and how long it took |
//!
//! and `eos_mtr_on_demand_traces_total{result}` for `/debug/mtr` (`ok`, `denied`, `busy`,
//! `failed`), and with `on_probe_failure` on, `eos_mtr_on_failure_traces_total{result}`
//! (`on_failure.rs`). Only a hop's main address is a label, and a hop's series go away with
//! the hop, so each hop family has at most targets × `max_hops` series.
//!
//! The probes are the config's `protocol`: ICMP echo through the agent's ICMP service (its
//! sockets opened at start, so a missing permission shows as the module being down), or UDP
//! or TCP from sockets each trace opens, which need no privilege.

use crate::config::{MtrConfig, Protocol, Target};
use crate::on_failure::{self, OnFailure};
use crate::report::Report;
use crate::trace::TraceError;
use crate::Tracer;
use eos_exposition::{Encoder, Kind};
use eos_module::http::{Request, Response};
use eos_module::metrics::{CounterVec, Metric};
use eos_module::{
    BoxFuture, Health, Module, ModuleContext, ModuleDef, ModuleError, Scrape, Service,
};
use eos_probe::allow::Allow;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Semaphore;

/// The `mtr` module kind.
pub struct MtrModule;

impl ModuleDef for MtrModule {
    const NAME: &'static str = "mtr";
    const METRIC_PREFIXES: &'static [&'static str] = &["eos_mtr_"];
    const SERVICES: &'static [Service] = &[Service::Icmp, Service::ProbeEvents];
    type Config = MtrConfig;

    fn start(cfg: &MtrConfig, ctx: &ModuleContext) -> Result<Box<dyn Module>, ModuleError> {
        let shared = Arc::new(Shared::new(cfg, ctx)?);
        for t in &cfg.targets {
            let s = shared.clone();
            let t = t.clone();
            let offset = offset(ctx.node_name(), &t.host, cfg.interval.get());
            let token = ctx.tasks.token();
            // Stops at once when the module stops, mid-trace too (a trace holds nothing that
            // needs finishing).
            ctx.tasks.spawn("mtr-target", async move {
                tokio::select! {
                    () = s.run_target(&t, offset) => {}
                    () = token.cancelled() => {}
                }
            });
        }
        if let Some(on) = &shared.on_failure {
            on_failure::start(shared.clone(), on.clone(), &ctx.tasks);
        }
        Ok(Box::new(MtrRunner { shared }))
    }
}

/// What the schedule, the handler, the traces on probe failure and the scrape share.
pub(crate) struct Shared {
    cfg: MtrConfig,
    allow: Allow,
    tracer: Tracer,
    icmp: eos_icmp::Icmp,
    /// One permit per trace allowed at once.
    slots: Arc<Semaphore>,
    targets: Mutex<BTreeMap<String, TargetState>>,
    node: String,
    on_demand: CounterVec,
    /// With `on_probe_failure` on (and the agent's probe events to listen to).
    on_failure: Option<Arc<OnFailure>>,
}

/// The last cycle of one target, and counts over all of them.
#[derive(Default)]
struct TargetState {
    labels: Vec<(String, String)>,
    report: Option<Report>,
    error: Option<String>,
    /// The path hash of the last cycle that traced.
    hash: Option<u32>,
    changes: u64,
    cycles: BTreeMap<&'static str, u64>,
    last_at: Option<SystemTime>,
    took: Duration,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The allow list's messages, about this module's section.
fn ours(msg: String) -> String {
    msg.replace("modules.probe.allow", "modules.mtr.allow")
        .replacen("probing", "tracing", 1)
}

impl Shared {
    fn new(cfg: &MtrConfig, ctx: &ModuleContext) -> Result<Shared, ModuleError> {
        let allow = Allow::new(&cfg.allow).map_err(ModuleError::Config)?;
        let icmp = ctx.services.get::<eos_icmp::Icmp>().unwrap_or_default();
        if cfg.protocol == Protocol::Icmp {
            open_icmp(cfg, &icmp)?;
        }
        let on_failure = match ctx.services.get::<eos_module::ProbeEvents>() {
            Some(events) if cfg.on_probe_failure.enabled => {
                Some(Arc::new(OnFailure::new(&cfg.on_probe_failure, events)))
            }
            None if cfg.on_probe_failure.enabled => {
                tracing::warn!("mtr: on_probe_failure is on, but there are no probe events here (not in the agent)");
                None
            }
            _ => None,
        };
        let targets = cfg
            .targets
            .iter()
            .map(|t| {
                (
                    t.host.clone(),
                    TargetState {
                        labels: t
                            .labels
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                        ..TargetState::default()
                    },
                )
            })
            .collect();
        Ok(Shared {
            cfg: cfg.clone(),
            allow,
            tracer: Tracer::from_config(cfg, icmp.clone()),
            icmp,
            slots: Arc::new(Semaphore::new(cfg.max_concurrent_traces)),
            targets: Mutex::new(targets),
            node: ctx.node_name().to_string(),
            on_demand: CounterVec::new(&["result"]),
            on_failure,
        })
    }

    /// The node's name, for reports' `HOST:` line.
    pub(crate) fn node(&self) -> &str {
        &self.node
    }

    /// Traces `dst` (named `host`) with the config's settings once one of
    /// `max_concurrent_traces` is free (waiting for it).
    pub(crate) async fn trace_in_turn(
        &self,
        host: &str,
        dst: IpAddr,
    ) -> Result<Report, TraceError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| TraceError::Refused("the module is stopping".into()))?;
        let opts = self.cfg.trace_options(self.cfg.count);
        self.tracer.trace_addr(host, dst, &opts).await
    }

    /// Resolves `host` and checks both the name and the address against the allow list.
    pub(crate) async fn resolve_allowed(&self, host: &str) -> Result<IpAddr, TraceError> {
        self.allow
            .check_host(host)
            .map_err(|e| TraceError::Denied(ours(e)))?;
        let ip = self.tracer.resolve(host).await?;
        self.allow
            .check_ip(ip)
            .map_err(|e| TraceError::Denied(ours(e)))?;
        Ok(ip)
    }

    /// Traces `t` once per interval until the module stops.
    async fn run_target(&self, t: &Target, offset: Duration) {
        tokio::time::sleep(offset).await;
        let mut tick = tokio::time::interval(self.cfg.interval.get());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.cycle(&t.host).await;
        }
    }

    /// One trace cycle of `host`, its result kept for `/metrics`.
    async fn cycle(&self, host: &str) {
        let started = Instant::now();
        let result = async {
            let dst = self.resolve_allowed(host).await?;
            self.trace_in_turn(host, dst).await
        }
        .await;
        let mut targets = lock(&self.targets);
        let st = targets.entry(host.to_string()).or_default();
        st.last_at = Some(SystemTime::now());
        st.took = started.elapsed();
        match result {
            Ok(report) => {
                let hash = report.path_hash();
                if st.hash.is_some_and(|h| h != hash) {
                    st.changes += 1;
                    tracing::info!(target = host, path = %report.summary(), "mtr: the path changed");
                }
                st.hash = Some(hash);
                *st.cycles
                    .entry(if report.reached {
                        "reached"
                    } else {
                        "unreached"
                    })
                    .or_default() += 1;
                st.report = Some(report);
                st.error = None;
            }
            Err(e) => {
                tracing::warn!(target = host, "mtr: trace failed: {e}");
                *st.cycles.entry("failed").or_default() += 1;
                st.report = None;
                st.error = Some(e.to_string());
            }
        }
    }

    /// `GET /debug/mtr?target=X[&count=N][&format=json]`: a trace now.
    async fn on_demand(&self, req: &Request, target: &str) -> Response {
        let (status, result, body) = self.on_demand_inner(req, target).await;
        self.on_demand.get_or_create(&[result]).inc();
        body.unwrap_or_else(|msg| Response::text(status, format!("{msg}\n")))
    }

    async fn on_demand_inner(
        &self,
        req: &Request,
        target: &str,
    ) -> (u16, &'static str, Result<Response, String>) {
        let count = match req.param("count").filter(|c| !c.is_empty()) {
            None => self.cfg.count,
            Some(c) => match c.parse::<u32>() {
                Ok(n) if (1..=self.cfg.max_count).contains(&n) => n,
                _ => {
                    return (
                        400,
                        "failed",
                        Err(format!(
                            "count={c:?}: must be 1 to {} (modules.mtr.max_count)",
                            self.cfg.max_count
                        )),
                    )
                }
            },
        };
        let json = match req.param("format").unwrap_or("text") {
            "text" | "" => false,
            "json" => true,
            f => {
                return (
                    400,
                    "failed",
                    Err(format!("format={f:?}: use text or json")),
                )
            }
        };
        let dst = match self.resolve_allowed(target).await {
            Ok(ip) => ip,
            Err(e @ TraceError::Denied(_)) => return (403, "denied", Err(e.to_string())),
            Err(e) => return (400, "failed", Err(e.to_string())),
        };
        let Ok(_slot) = self.slots.clone().try_acquire_owned() else {
            return (
                429,
                "busy",
                Err(format!(
                    "{} traces are running already (modules.mtr.max_concurrent_traces); try again later",
                    self.cfg.max_concurrent_traces
                )),
            );
        };
        let mut opts = self.cfg.trace_options(count);
        // A scrape (Prometheus says how long it waits) gets what fits; a person gets all.
        if req.header("x-prometheus-scrape-timeout-seconds").is_some() {
            opts.deadline = Some(req.deadline);
        }
        match self.tracer.trace_addr(target, dst, &opts).await {
            Ok(r) => {
                let body = if json {
                    Response::json(format!("{:#}\n", r.json(&self.node)))
                } else {
                    Response::text(200, r.text(&self.node))
                };
                (200, "ok", Ok(body))
            }
            Err(e) => (503, "failed", Err(e.to_string())),
        }
    }

    /// `/debug/mtr` without a target: the settings and the last report of every target.
    fn describe(&self) -> String {
        let c = &self.cfg;
        let probes = match c.port() {
            Some(port) => format!("{} probes to port {port}", c.protocol.as_str()),
            None => format!(
                "icmp probes ({} socket)",
                self.icmp.socket_kind(false).unwrap_or("no")
            ),
        };
        let mut s = format!(
            "mtr: {} probes per hop every {} ({} apart, {} timeout), max {} hops, {probes}\n\
             on demand: /debug/mtr?target=HOST[&count=N (max {})][&format=json]\n",
            c.count, c.interval, c.probe_interval, c.timeout, c.max_hops, c.max_count,
        );
        if let Some(on) = &self.on_failure {
            s.push_str(&on.describe());
        }
        for (host, st) in lock(&self.targets).iter() {
            let _ = writeln!(s, "\n--- {host}");
            match (&st.report, &st.error) {
                (_, Some(e)) => {
                    let _ = writeln!(s, "last cycle failed: {e}");
                }
                (Some(r), None) => {
                    let _ = writeln!(s, "{} (path changes: {})", r.summary(), st.changes);
                    s.push_str(&r.text(&self.node));
                }
                (None, None) => s.push_str("no cycle yet\n"),
            }
        }
        s
    }

    fn encode(&self, enc: &mut Encoder<'_>) {
        let targets = lock(&self.targets);
        // Hop families.
        let hop_fams: [HopFamily; 5] = [
            (
                "eos_mtr_hop_rtt_seconds",
                "Mean round-trip time to the hop in the last trace cycle.",
                |h| h.mean.map(|d| d.as_secs_f64()),
            ),
            (
                "eos_mtr_hop_rtt_best_seconds",
                "Shortest round-trip time to the hop in the last trace cycle.",
                |h| h.best.map(|d| d.as_secs_f64()),
            ),
            (
                "eos_mtr_hop_rtt_worst_seconds",
                "Longest round-trip time to the hop in the last trace cycle.",
                |h| h.worst.map(|d| d.as_secs_f64()),
            ),
            (
                "eos_mtr_hop_rtt_stddev_seconds",
                "Standard deviation of the round-trip times to the hop in the last trace cycle.",
                |h| h.stddev.map(|d| d.as_secs_f64()),
            ),
            (
                "eos_mtr_hop_loss_ratio",
                "Share of the last trace cycle's probes to the hop that got no answer (address ??? when none did).",
                |h| Some(h.loss_ratio()),
            ),
        ];
        for (name, help, value) in hop_fams {
            let mut fam = enc.family(name, help, Kind::Gauge);
            for (host, st) in targets.iter() {
                let Some(r) = &st.report else { continue };
                for h in &r.hops {
                    let Some(v) = value(h) else { continue };
                    let ttl = h.ttl.to_string();
                    let addr = h.host();
                    let mut labels: Vec<(&str, &str)> =
                        vec![("target", host), ("hop", &ttl), ("address", &addr)];
                    labels.extend(st.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                    fam.sample(&labels, v);
                }
            }
        }
        let target_fams: [TargetFamily; 6] = [
            (
                "eos_mtr_hops",
                "Hops of the last trace cycle: up to the destination, or (not reached) up to the first silent hop after the last one that answered.",
                Kind::Gauge,
                |st| st.report.as_ref().map(|r| r.hop_count() as f64),
            ),
            (
                "eos_mtr_path_hash",
                "Hash of the hop addresses of the last trace cycle; changes when the path does.",
                Kind::Gauge,
                |st| st.report.as_ref().map(|r| f64::from(r.path_hash())),
            ),
            (
                "eos_mtr_path_changes_total",
                "Trace cycles whose hop addresses differed from the previous cycle's.",
                Kind::Counter,
                |st| st.last_at.map(|_| st.changes as f64),
            ),
            (
                "eos_mtr_destination_reached",
                "Whether the destination answered in the last trace cycle (1) or not (0).",
                Kind::Gauge,
                |st| {
                    st.last_at.map(|_| {
                        if st.report.as_ref().is_some_and(|r| r.reached) {
                            1.0
                        } else {
                            0.0
                        }
                    })
                },
            ),
            (
                "eos_mtr_last_cycle_timestamp_seconds",
                "When the last trace cycle ended, in seconds since the epoch.",
                Kind::Gauge,
                |st| {
                    st.last_at
                        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                        .map(|d| d.as_secs_f64())
                },
            ),
            (
                "eos_mtr_cycle_duration_seconds",
                "How long the last trace cycle took, resolving and waiting for a slot included.",
                Kind::Gauge,
                |st| st.last_at.map(|_| st.took.as_secs_f64()),
            ),
        ];
        for (name, help, kind, value) in target_fams {
            let mut fam = enc.family(name, help, kind);
            for (host, st) in targets.iter() {
                let Some(v) = value(st) else { continue };
                let mut labels: Vec<(&str, &str)> = vec![("target", host)];
                labels.extend(st.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                fam.sample(&labels, v);
            }
        }
        let mut fam = enc.family(
            "eos_mtr_cycles_total",
            "Trace cycles run, by result: reached (the destination answered), unreached, failed (no trace: resolution, allow list or socket).",
            Kind::Counter,
        );
        for (host, st) in targets.iter() {
            for (result, n) in &st.cycles {
                let mut labels: Vec<(&str, &str)> = vec![("target", host), ("result", result)];
                labels.extend(st.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                fam.sample(&labels, *n as f64);
            }
        }
        drop(targets);
        self.on_demand.encode(
            enc,
            "eos_mtr_on_demand_traces_total",
            "Traces run through /debug/mtr, by result: ok, denied (allow list), busy (max_concurrent_traces), failed.",
        );
        if let Some(on) = &self.on_failure {
            on.encode(enc);
        }
    }
}

/// Opens the ICMP sockets now, so that a missing permission shows as a start error: IPv4
/// always, IPv6 when a target is an IPv6 address (else a warning).
fn open_icmp(cfg: &MtrConfig, icmp: &eos_icmp::Icmp) -> Result<(), ModuleError> {
    icmp.open(false)
        .map_err(|e| ModuleError::Unavailable(format!("mtr cannot open an ICMP socket: {e}")))?;
    if let Err(e) = icmp.open(true) {
        let v6_target = cfg.targets.iter().find(|t| {
            t.host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_ipv6())
        });
        match v6_target {
            Some(t) => {
                return Err(ModuleError::Unavailable(format!(
                    "mtr cannot open an ICMPv6 socket for target {}: {e}",
                    t.host
                )))
            }
            None => tracing::warn!("mtr: no ICMPv6 socket, IPv6 targets will fail: {e}"),
        }
    }
    Ok(())
}

/// A per-hop family: name, help, and the hop's value (none: no sample).
type HopFamily = (
    &'static str,
    &'static str,
    fn(&crate::report::Hop) -> Option<f64>,
);
/// A per-target family: name, help, type, and the target's value (none: no sample).
type TargetFamily = (
    &'static str,
    &'static str,
    Kind,
    fn(&TargetState) -> Option<f64>,
);

/// Where in its interval a target's cycles start: a hash of the node and the target, so
/// that nodes do not trace in lockstep, and the same moment after a restart.
fn offset(node: &str, host: &str, interval: Duration) -> Duration {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in node.bytes().chain([0]).chain(host.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(h % ms)
}

/// A running mtr module.
struct MtrRunner {
    shared: Arc<Shared>,
}

impl Module for MtrRunner {
    fn collect(&self, enc: &mut Encoder<'_>, _scrape: &Scrape<'_>) {
        self.shared.encode(enc);
    }

    fn handle(&self, req: Request) -> BoxFuture<Response> {
        let shared = self.shared.clone();
        Box::pin(async move {
            if req.method != "GET" && req.method != "HEAD" {
                return Response::text(405, "use GET\n");
            }
            match req.path.as_str() {
                "" | "/" => match req.param("target").filter(|t| !t.is_empty()) {
                    Some(t) => {
                        let t = t.to_string();
                        shared.on_demand(&req, &t).await
                    }
                    None => Response::text(200, shared.describe()),
                },
                _ => Response::not_found(),
            }
        })
    }

    fn status(&self) -> Vec<(String, String)> {
        let targets = lock(&self.shared.targets);
        if targets.is_empty() {
            return vec![(
                "targets".into(),
                "none; trace on demand at /debug/mtr?target=HOST".into(),
            )];
        }
        targets
            .iter()
            .map(|(host, st)| {
                let v = match (&st.report, &st.error) {
                    (_, Some(e)) => format!("failed: {e}"),
                    (Some(r), None) => r.summary(),
                    (None, None) => "no cycle yet".into(),
                };
                (format!("trace {host}"), v)
            })
            .collect()
    }

    /// The last report of every target, as `mtr -n -r` prints it.
    fn status_html(&self) -> Option<String> {
        let targets = lock(&self.shared.targets);
        let mut html = String::new();
        for (host, st) in targets.iter() {
            let Some(r) = &st.report else { continue };
            html.push_str(&format!(
                "<p><b>mtr {}</b>: {}</p><pre>{}</pre>",
                eos_module::http::escape_html(host),
                eos_module::http::escape_html(&r.summary()),
                eos_module::http::escape_html(&r.text(host))
            ));
        }
        (!html.is_empty()).then_some(html)
    }

    fn health(&self) -> Health {
        let targets = lock(&self.shared.targets);
        let failing: Vec<String> = targets
            .iter()
            .filter_map(|(h, st)| st.error.as_ref().map(|e| format!("{h}: {e}")))
            .collect();
        if failing.is_empty() {
            Health::Up
        } else {
            Health::Degraded(failing.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_spread_and_stable() {
        let i = Duration::from_secs(60);
        let a = offset("node-1", "10.0.0.1", i);
        assert_eq!(a, offset("node-1", "10.0.0.1", i));
        assert!(a < i);
        let distinct: std::collections::BTreeSet<Duration> = (0..100)
            .map(|n| offset(&format!("node-{n}"), "10.0.0.1", i))
            .collect();
        assert!(distinct.len() > 90);
    }

    #[test]
    fn allow_messages_name_this_module() {
        let a = Allow::new(&eos_probe::config::AllowConfig::default()).unwrap();
        let e = ours(a.check_ip("169.254.169.254".parse().unwrap()).unwrap_err());
        assert!(
            e.starts_with("tracing 169.254.169.254 is denied by modules.mtr.allow.deny_cidrs"),
            "{e}"
        );
    }
}
