//! The ping module as the agent runs it: the targets, their series, `/metrics`, the status
//! page graphs and `/debug/ping/`.

use crate::config::{PingConfig, PingTarget, LINGER};
use crate::history::History;
use crate::schedule;
use crate::svg;
use crate::window::{Stats, Window};
use eos_exposition::{Encoder, Kind};
use eos_icmp::{Icmp, ReplyKind, Stray, StrayKind, Strays};
use eos_module::http::{Request, Response};
use eos_module::metrics::{Counter, CounterVec, Gauge, GaugeVec, Histogram, HistogramVec, Metric};
use eos_module::{
    BoxFuture, Health, Module, ModuleContext, ModuleDef, ModuleError, Scrape, Service,
};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

/// Graphs on the agent's status page, at most (the rest are on `/debug/ping/graphs`).
pub const STATUS_GRAPHS: usize = 12;

/// The `ping` module kind.
pub struct PingModule;

impl ModuleDef for PingModule {
    const NAME: &'static str = "ping";
    const METRIC_PREFIXES: &'static [&'static str] = &["smokeping_", "eos_ping_"];
    const SERVICES: &'static [Service] = &[Service::Icmp];
    type Config = PingConfig;

    fn start(cfg: &PingConfig, ctx: &ModuleContext) -> Result<Box<dyn Module>, ModuleError> {
        let icmp = ctx.services.get::<Icmp>().unwrap_or_default();
        let shared = Shared::new(cfg, icmp, ctx.node_name());
        shared.open_sockets()?;
        schedule::start(&shared, &ctx.tasks);
        Ok(Box::new(PingRunner { shared }))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The families every target writes, with one child per target (and address).
pub struct Metrics {
    /// `smokeping_requests_total`.
    pub requests: CounterVec,
    /// `smokeping_response_duration_seconds`.
    pub rtt: HistogramVec,
    /// `smokeping_response_ttl`.
    pub ttl: GaugeVec,
    /// `smokeping_response_duplicates_total`.
    pub duplicates: CounterVec,
    /// `smokeping_send_errors_total`.
    pub send_errors: CounterVec,
    /// `eos_ping_late_replies_total`.
    pub late: CounterVec,
    /// `eos_ping_error_replies_total`.
    pub error_replies: CounterVec,
    /// `eos_ping_resolve_errors_total{host}`.
    pub resolve_errors: CounterVec,
}

/// One target's children of the [`Metrics`] families, for the address it has now.
pub struct Series {
    /// The label values, in the order of [`Shared::label_names`].
    pub values: Vec<String>,
    /// The address these series are for.
    pub ip: IpAddr,
    /// The target's children of the [`Metrics`] families, field for field.
    pub requests: Arc<Counter>,
    pub rtt: Arc<Histogram>,
    pub ttl: Arc<Gauge>,
    pub duplicates: Arc<Counter>,
    pub send_errors: Arc<Counter>,
    pub late: Arc<Counter>,
    pub error_replies: Arc<Counter>,
}

/// What a target keeps between requests.
pub struct TargetState {
    /// The address pinged; `None` until the name resolves.
    pub addr: Option<IpAddr>,
    /// The last lookup's error, if it failed.
    pub resolve_error: Option<String>,
    /// The last send's error, until a request goes out again (logged once per change).
    pub send_error: Option<String>,
    /// The recent requests, for the window statistics.
    pub window: Window,
    /// The graph's columns; `None` with `history: 0`.
    pub history: Option<History>,
}

/// One configured target.
pub struct Target {
    /// As configured.
    pub spec: PingTarget,
    /// Its address when `host` is one (never looked up).
    pub literal: Option<IpAddr>,
    /// When in each interval it is pinged.
    pub offset: Duration,
    /// What it keeps between requests (see [`Target::state`]).
    pub state: Mutex<TargetState>,
    /// Its series; swapped when the address changes. Apart from `state` so that the receive
    /// thread (late and duplicate replies) never waits for a scrape.
    pub series: Mutex<Option<Arc<Series>>>,
    /// Where eos-icmp reports late and duplicate replies to this target's requests.
    pub strays: Strays,
}

impl Target {
    /// The series of the current address.
    pub fn series(&self) -> Option<Arc<Series>> {
        lock(&self.series).clone()
    }

    /// Locks what the target keeps.
    pub fn state(&self) -> MutexGuard<'_, TargetState> {
        lock(&self.state)
    }
}

/// What the schedulers, the receive thread's callbacks and the scrapes share.
pub struct Shared {
    /// The section the module was started with.
    pub cfg: PingConfig,
    /// The agent's ICMP service.
    pub icmp: Icmp,
    /// Sorted label names of every series (`host`, `ip`, `source` and the targets' own).
    pub label_names: Vec<String>,
    /// The families.
    pub metrics: Metrics,
    /// The targets, in config order.
    pub targets: Vec<Arc<Target>>,
    /// Bytes held for windows and graphs (fixed at start).
    pub state_bytes: usize,
}

impl Shared {
    /// Sets up the targets (literal addresses get their series now) and the families.
    pub fn new(cfg: &PingConfig, icmp: Icmp, node: &str) -> Arc<Shared> {
        let label_names = cfg.label_names();
        let names: Vec<&str> = label_names.iter().map(String::as_str).collect();
        let metrics = Metrics {
            requests: CounterVec::new(&names),
            rtt: HistogramVec::new(&names, &cfg.buckets),
            ttl: GaugeVec::new(&names),
            duplicates: CounterVec::new(&names),
            send_errors: CounterVec::new(&names),
            late: CounterVec::new(&names),
            error_replies: CounterVec::new(&names),
            resolve_errors: CounterVec::new(&["host"]),
        };
        let epoch = Instant::now();
        let interval = cfg.interval.get();
        let n = cfg.targets.len();
        let phase = schedule::phase(node, interval);
        let shared = {
            let targets: Vec<Arc<Target>> = cfg
                .targets
                .iter()
                .enumerate()
                .map(|(i, spec)| {
                    let history = (!cfg.history.get().is_zero())
                        .then(|| History::new(cfg.history.get(), interval, epoch));
                    Arc::new_cyclic(|me: &Weak<Target>| Target {
                        spec: spec.clone(),
                        literal: spec.literal(),
                        offset: schedule::offset(i, n, interval, phase),
                        state: Mutex::new(TargetState {
                            addr: None,
                            resolve_error: None,
                            send_error: None,
                            window: Window::new(cfg.window.get(), interval, cfg.timeout.get()),
                            history,
                        }),
                        series: Mutex::new(None),
                        strays: strays(me.clone()),
                    })
                })
                .collect();
            let state_bytes = targets
                .iter()
                .map(|t| {
                    let s = t.state();
                    s.window.bytes() + s.history.as_ref().map_or(0, History::bytes)
                })
                .sum();
            Arc::new(Shared {
                cfg: cfg.clone(),
                icmp,
                label_names,
                metrics,
                targets,
                state_bytes,
            })
        };
        for t in &shared.targets {
            if let Some(ip) = t.literal {
                shared.set_address(t, ip);
            }
        }
        shared
    }

    /// Opens the ICMP sockets the targets need now, so that a missing permission stops the
    /// module at start with the reason instead of failing every request.
    pub fn open_sockets(&self) -> Result<(), ModuleError> {
        let (mut v4, mut v6) = (false, false);
        for t in &self.targets {
            match (t.literal, self.cfg.source, self.cfg.network) {
                (Some(ip), _, _) => {
                    v4 |= ip.is_ipv4();
                    v6 |= ip.is_ipv6();
                }
                (None, Some(src), _) => {
                    v4 |= src.is_ipv4();
                    v6 |= src.is_ipv6();
                }
                (None, None, crate::config::Network::Ip6) => v6 = true,
                // a name may resolve to either family: IPv4 is there on every node; an IPv6
                // socket is opened on first use
                (None, None, _) => v4 = true,
            }
        }
        for (want, is_v6) in [(v4, false), (v6, true)] {
            if want {
                self.icmp.open(is_v6).map_err(|e| {
                    ModuleError::Unavailable(format!(
                        "opening the IPv{} ICMP socket: {e}",
                        if is_v6 { 6 } else { 4 }
                    ))
                })?;
            }
        }
        Ok(())
    }

    /// The label values of `t` at address `ip`, in [`Shared::label_names`] order.
    fn label_values(&self, t: &Target, ip: IpAddr) -> Vec<String> {
        self.label_names
            .iter()
            .map(|k| match k.as_str() {
                "ip" => ip.to_string(),
                "host" => t.spec.host.clone(),
                "source" => self.cfg.source.map(|s| s.to_string()).unwrap_or_default(),
                other => t.spec.labels.get(other).cloned().unwrap_or_default(),
            })
            .collect()
    }

    /// Points `t` at `ip`: new series (at zero, as smokeping_prober initialises them), the
    /// old address's series removed. Returns whether the address changed.
    pub fn set_address(&self, t: &Target, ip: IpAddr) -> bool {
        let mut series = lock(&t.series);
        if series.as_ref().is_some_and(|s| s.ip == ip) {
            return false;
        }
        let m = &self.metrics;
        if let Some(old) = series.take() {
            let v: Vec<&str> = old.values.iter().map(String::as_str).collect();
            m.requests.remove(&v);
            m.rtt.remove(&v);
            m.ttl.remove(&v);
            m.duplicates.remove(&v);
            m.send_errors.remove(&v);
            m.late.remove(&v);
            m.error_replies.remove(&v);
        }
        let values = self.label_values(t, ip);
        let v: Vec<&str> = values.iter().map(String::as_str).collect();
        *series = Some(Arc::new(Series {
            ip,
            requests: m.requests.get_or_create(&v),
            rtt: m.rtt.get_or_create(&v),
            ttl: m.ttl.get_or_create(&v),
            duplicates: m.duplicates.get_or_create(&v),
            send_errors: m.send_errors.get_or_create(&v),
            late: m.late.get_or_create(&v),
            error_replies: m.error_replies.get_or_create(&v),
            values,
        }));
        drop(series);
        t.state().addr = Some(ip);
        true
    }

    /// Each target's window statistics now, with its series.
    fn window_stats(&self) -> Vec<(Arc<Series>, Option<Stats>)> {
        let now = Instant::now();
        let window = self.cfg.window.get();
        self.targets
            .iter()
            .filter_map(|t| {
                let series = t.series()?;
                let stats = t.state().window.stats(now, window);
                Some((series, stats))
            })
            .collect()
    }

    /// Targets without an address, with why.
    fn unresolved(&self) -> Vec<(String, String)> {
        self.targets
            .iter()
            .filter_map(|t| {
                let s = t.state();
                if s.addr.is_some() {
                    return None;
                }
                let why = s
                    .resolve_error
                    .clone()
                    .unwrap_or_else(|| "not looked up yet".into());
                Some((t.spec.host.clone(), why))
            })
            .collect()
    }

    /// `host (ip) k=v ...` for captions.
    fn describe(&self, t: &Target) -> String {
        let mut s = t.spec.host.clone();
        match t.state().addr {
            Some(ip) if t.literal.is_none() => {
                let _ = write!(s, " ({ip})");
            }
            Some(_) => {}
            None => s.push_str(" (not resolved)"),
        }
        for (k, v) in &t.spec.labels {
            let _ = write!(s, " {k}={v}");
        }
        s
    }

    /// The figure of one target: caption and graph.
    fn figure(&self, t: &Target, stats: Option<Stats>, now: Instant) -> Option<String> {
        let mut st = t.state();
        let h = st.history.as_mut()?;
        let columns = h.graph(now);
        let width = h.width();
        drop(st);
        let mut caption = self.describe(t);
        match stats {
            Some(s) => {
                let _ = write!(caption, " — loss {:.1} %", s.loss_ratio * 100.0);
                if let Some(m) = s.mean {
                    let _ = write!(caption, ", mean {}", svg::rtt_label(m));
                }
                if let Some(j) = s.jitter {
                    let _ = write!(caption, ", jitter {}", svg::rtt_label(j));
                }
                let _ = write!(caption, " (last {})", human(self.cfg.window.get()));
            }
            None => caption.push_str(" — no results yet"),
        }
        if columns.iter().all(Option::is_none) {
            // nothing to draw yet (a name that does not resolve): the caption says why
            return Some(format!(
                "<div style=\"margin:.4em 0\">{}</div>",
                svg::escape(&caption)
            ));
        }
        let title = format!("{} per {}", t.spec.host, human(width));
        Some(format!(
            "<figure style=\"margin:.4em 0\"><figcaption>{}</figcaption>{}</figure>",
            svg::escape(&caption),
            svg::graph(&title, &columns, width)
        ))
    }

    /// The graphs of up to `limit` targets (all when `None`), worst first: highest loss in the
    /// window, then highest mean RTT; targets without results last.
    fn graphs(&self, limit: Option<usize>) -> (String, usize) {
        let now = Instant::now();
        let window = self.cfg.window.get();
        let mut ranked: Vec<(&Arc<Target>, Option<Stats>)> = self
            .targets
            .iter()
            .map(|t| {
                let s = t.state().window.stats(now, window);
                (t, s)
            })
            .collect();
        let key = |s: &Option<Stats>| match s {
            Some(s) => (1, s.loss_ratio, s.mean.unwrap_or(f64::INFINITY)),
            None => (0, 0.0, 0.0),
        };
        ranked.sort_by(|a, b| {
            let (ka, kb) = (key(&a.1), key(&b.1));
            kb.0.cmp(&ka.0)
                .then(kb.1.total_cmp(&ka.1))
                .then(kb.2.total_cmp(&ka.2))
        });
        let total = ranked.len();
        let mut out = String::new();
        for (t, stats) in ranked.into_iter().take(limit.unwrap_or(usize::MAX)) {
            if let Some(f) = self.figure(t, stats, now) {
                out.push_str(&f);
            }
        }
        (out, total)
    }

    /// `/debug/ping/`: settings, sockets and one line per target.
    fn debug_text(&self) -> String {
        let c = &self.cfg;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} targets, every {}, timeout {} (replies up to {}s later counted as late), window {}, history {}, payload {} bytes, source {}",
            self.targets.len(),
            c.interval,
            c.timeout,
            LINGER.as_secs(),
            c.window,
            c.history,
            c.payload_size,
            c.source.map_or("(routing)".to_string(), |s| s.to_string()),
        );
        let _ = writeln!(s, "sockets: {}", self.sockets());
        let _ = writeln!(
            s,
            "memory for windows and graphs: {} bytes\n",
            self.state_bytes
        );
        let now = Instant::now();
        let _ = writeln!(
            s,
            "{:<40} {:<40} {:>9} {:>7} {:>11} {:>11} {:>11}",
            "host", "ip", "sent", "loss", "mean", "stddev", "jitter"
        );
        for t in &self.targets {
            let series = t.series();
            let (addr, err, stats) = {
                let st = t.state();
                (
                    st.addr,
                    st.resolve_error.clone(),
                    st.window.stats(now, c.window.get()),
                )
            };
            let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.3}ms", v * 1e3));
            let _ = writeln!(
                s,
                "{:<40} {:<40} {:>9} {:>7} {:>11} {:>11} {:>11}{}",
                t.spec.host,
                addr.map_or("-".to_string(), |a| a.to_string()),
                series.map_or(0, |s| s.requests.get()),
                stats.map_or("-".to_string(), |s| format!("{:.1}%", s.loss_ratio * 100.0)),
                ms(stats.and_then(|s| s.mean)),
                ms(stats.and_then(|s| s.stddev)),
                ms(stats.and_then(|s| s.jitter)),
                err.map_or(String::new(), |e| format!("  (lookup failed: {e})")),
            );
        }
        s.push_str("\ngraphs: /debug/ping/graphs\n");
        s
    }

    /// Which sockets are open, for the status page.
    fn sockets(&self) -> String {
        let k = |v6| self.icmp.socket_kind(v6).unwrap_or("not open");
        format!("IPv4 {}, IPv6 {}", k(false), k(true))
    }
}

/// Late and duplicate replies of one target's requests: counted on its current series, and
/// a late echo reply observed in the histogram as smokeping_prober (which has no timeout)
/// would. Runs on eos-icmp's receive thread: atomics and one short lock only.
fn strays(target: Weak<Target>) -> Strays {
    Strays::new(LINGER, move |s: Stray| {
        // gone with its module: a request lingering after a stop or reload
        let Some(t) = target.upgrade() else {
            return;
        };
        let Some(series) = t.series() else { return };
        if s.reply.kind != ReplyKind::Echo || s.reply.dst != series.ip {
            return;
        }
        match s.kind {
            StrayKind::Late => {
                series.late.inc();
                series.rtt.observe(s.reply.rtt.as_secs_f64());
                if let Some(h) = s.reply.hop_limit {
                    series.ttl.set(f64::from(h));
                }
            }
            StrayKind::Duplicate => series.duplicates.inc(),
        }
    })
}

/// `1m`, `8m`, `20s`: a bucket width for captions.
fn human(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 3600.0 && s % 3600.0 == 0.0 {
        format!("{}h", s / 3600.0)
    } else if s >= 60.0 && s % 60.0 == 0.0 {
        format!("{}m", s / 60.0)
    } else if s >= 1.0 {
        format!("{}s", (s * 10.0).round() / 10.0)
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A running ping module.
struct PingRunner {
    shared: Arc<Shared>,
}

const LOSS_HELP: &str = "Share of echo requests lost over the window (no reply within the timeout, an ICMP error instead, or a failed send), of those whose outcome is known.";
const STDDEV_HELP: &str =
    "Population standard deviation of the RTTs of the replies in the window, in seconds.";
const JITTER_HELP: &str = "Mean absolute difference between the RTTs of consecutive replies in the window (the plain mean of RFC 3550's |D|, not its smoothed estimate), in seconds.";

impl Module for PingRunner {
    fn collect(&self, enc: &mut Encoder<'_>, _scrape: &Scrape<'_>) {
        let s = &self.shared;
        let m = &s.metrics;
        m.requests.encode(
            enc,
            "smokeping_requests_total",
            "Number of ping requests sent",
        );
        m.rtt.encode(
            enc,
            "smokeping_response_duration_seconds",
            "A histogram of latencies for ping responses.",
        );
        m.ttl.encode(
            enc,
            "smokeping_response_ttl",
            "The last response Time To Live (TTL).",
        );
        m.duplicates.encode(
            enc,
            "smokeping_response_duplicates_total",
            "The number of duplicated response packets.",
        );
        m.send_errors.encode(
            enc,
            "smokeping_send_errors_total",
            "The number of errors when Pinger attempts to send packets.",
        );
        // The agent's ICMP sockets are shared, so this counts failed reads of every reply
        // (ping's, probe's and mtr's), as smokeping_prober's counts its one pinger's.
        enc.single(
            "smokeping_receive_errors_total",
            "The number of errors when Pinger attempts to receive packets.",
            Kind::Counter,
            &[],
            s.icmp.receive_errors() as f64,
        );
        m.late.encode(
            enc,
            "eos_ping_late_replies_total",
            "Echo replies that came after the timeout (up to 10 s later): observed in smokeping_response_duration_seconds as smokeping_prober does, lost for the window statistics.",
        );
        m.error_replies.encode(
            enc,
            "eos_ping_error_replies_total",
            "ICMP errors (unreachable, time exceeded, ...) received instead of an echo reply.",
        );
        let stats = s.window_stats();
        let names: Vec<&str> = s.label_names.iter().map(String::as_str).collect();
        type Family = (&'static str, &'static str, fn(&Stats) -> Option<f64>);
        let families: [Family; 3] = [
            ("eos_ping_loss_ratio", LOSS_HELP, |st| Some(st.loss_ratio)),
            ("eos_ping_rtt_stddev_seconds", STDDEV_HELP, |st| st.stddev),
            ("eos_ping_rtt_jitter_seconds", JITTER_HELP, |st| st.jitter),
        ];
        for (name, help, value) in families {
            let mut rows: Vec<(&Series, f64)> = stats
                .iter()
                .filter_map(|(series, st)| Some((&**series, value(st.as_ref()?)?)))
                .collect();
            if rows.is_empty() {
                continue;
            }
            rows.sort_by(|a, b| a.0.values.cmp(&b.0.values));
            let mut fam = enc.family(name, help, Kind::Gauge);
            for (series, v) in rows {
                let labels: Vec<(&str, &str)> = names
                    .iter()
                    .copied()
                    .zip(series.values.iter().map(String::as_str))
                    .collect();
                fam.sample(&labels, v);
            }
        }
        m.resolve_errors.encode(
            enc,
            "eos_ping_resolve_errors_total",
            "Failed lookups of target names (retried, never fatal).",
        );
        enc.single(
            "eos_ping_state_bytes",
            "Memory held for the window statistics and the status page graphs (fixed at start).",
            Kind::Gauge,
            &[],
            s.state_bytes as f64,
        );
    }

    fn handle(&self, req: Request) -> BoxFuture<Response> {
        let shared = self.shared.clone();
        Box::pin(async move {
            match req.path.as_str() {
                "" | "/" => Response::text(200, shared.debug_text()),
                "/graphs" => {
                    let (graphs, total) = shared.graphs(None);
                    let body = format!(
                        "<!doctype html><html><head><meta charset=\"utf-8\"><title>eos ping</title></head>\
<body style=\"font-family:sans-serif\"><h1>ping: {total} targets</h1>{}{graphs}</body></html>\n",
                        svg::legend()
                    );
                    Response::new(200, "text/html; charset=utf-8", body.into_bytes())
                }
                _ => Response::not_found(),
            }
        })
    }

    fn status(&self) -> Vec<(String, String)> {
        let s = &self.shared;
        let unresolved = s.unresolved().len();
        vec![
            (
                "targets".into(),
                format!(
                    "{} ({} resolved)",
                    s.targets.len(),
                    s.targets.len() - unresolved
                ),
            ),
            (
                "schedule".into(),
                format!(
                    "every {}, timeout {}, window {}",
                    s.cfg.interval, s.cfg.timeout, s.cfg.window
                ),
            ),
            ("sockets".into(), s.sockets()),
            (
                "graph memory".into(),
                format!("{:.1} KiB", s.state_bytes as f64 / 1024.0),
            ),
        ]
    }

    fn status_html(&self) -> Option<String> {
        let s = &self.shared;
        if s.cfg.history.get().is_zero() || s.targets.is_empty() {
            return None;
        }
        let (graphs, total) = s.graphs(Some(STATUS_GRAPHS));
        let shown = total.min(STATUS_GRAPHS);
        let mut h = format!(
            "<div><b>ping</b>: {shown} of {total} targets over the last {}, one column per {} (highest loss, then highest RTT first)",
            human(s.cfg.history.get()),
            human(s.targets[0].state().history.as_ref().map_or(Duration::ZERO, History::width)),
        );
        if shown < total {
            h.push_str("; all on <a href=\"/debug/ping/graphs\">/debug/ping/graphs</a>");
        }
        h.push_str(&svg::legend());
        h.push_str(&graphs);
        h.push_str("</div>");
        Some(h)
    }

    fn health(&self) -> Health {
        let unresolved = self.shared.unresolved();
        if unresolved.is_empty() {
            return Health::Up;
        }
        let mut why = format!(
            "{} of {} targets do not resolve (retrying): ",
            unresolved.len(),
            self.shared.targets.len()
        );
        for (i, (host, e)) in unresolved.iter().take(3).enumerate() {
            if i > 0 {
                why.push_str("; ");
            }
            let _ = write!(why, "{host}: {e}");
        }
        if unresolved.len() > 3 {
            why.push_str("; ...");
        }
        Health::Degraded(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PingTarget;
    use crate::window::Outcome;
    use std::collections::BTreeMap;

    fn runner(targets: &[(&str, &[(&str, &str)])]) -> PingRunner {
        let cfg = PingConfig {
            enabled: true,
            targets: targets
                .iter()
                .map(|(h, l)| PingTarget {
                    host: h.to_string(),
                    labels: l
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect::<BTreeMap<_, _>>(),
                })
                .collect(),
            ..PingConfig::default()
        };
        PingRunner {
            shared: Shared::new(&cfg, Icmp::default(), "node-1"),
        }
    }

    /// Records `outcomes` for target `i`, one per second ending now.
    fn feed(r: &PingRunner, i: usize, outcomes: &[Outcome]) {
        let t = &r.shared.targets[i];
        let now = Instant::now();
        let mut st = t.state();
        for (k, o) in outcomes.iter().enumerate() {
            let at = now - Duration::from_secs((outcomes.len() - k) as u64);
            let n = st.window.push(at);
            st.window.complete(n, *o);
            if let Some(h) = st.history.as_mut() {
                let rtt = match o {
                    Outcome::Reply(r) => Some(*r),
                    _ => None,
                };
                h.record(at, rtt);
            }
        }
    }

    fn text(r: &PingRunner) -> String {
        eos_module::collect_text(r, &[], Duration::from_secs(5)).0
    }

    #[test]
    fn families_and_labels_as_smokeping_prober() {
        let r = runner(&[("10.0.0.1", &[("site", "fra1")]), ("::1", &[])]);
        // literal addresses have their series (at zero) from the start
        r.shared.targets[0].series().unwrap().requests.add(3);
        let out = text(&r);
        let parsed = eos_exposition::parse_text(&out).unwrap();
        for (name, kind) in [
            ("smokeping_requests_total", "counter"),
            ("smokeping_response_duration_seconds", "histogram"),
            ("smokeping_response_ttl", "gauge"),
            ("smokeping_response_duplicates_total", "counter"),
            ("smokeping_send_errors_total", "counter"),
            ("smokeping_receive_errors_total", "counter"),
            ("eos_ping_late_replies_total", "counter"),
            ("eos_ping_state_bytes", "gauge"),
        ] {
            assert_eq!(
                parsed.types.get(name).map(String::as_str),
                Some(kind),
                "{name}"
            );
        }
        assert_eq!(
            parsed.help["smokeping_response_duration_seconds"],
            "A histogram of latencies for ping responses."
        );
        assert!(
            out.contains("smokeping_requests_total{host=\"10.0.0.1\",ip=\"10.0.0.1\",site=\"fra1\",source=\"\"} 3\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "smokeping_requests_total{host=\"::1\",ip=\"::1\",site=\"\",source=\"\"} 0\n"
            ),
            "a target without the label writes it empty: {out}"
        );
        assert!(out.contains("smokeping_response_duration_seconds_bucket{host=\"::1\",ip=\"::1\",site=\"\",source=\"\",le=\"5e-05\"} 0\n"), "{out}");
        assert!(out.contains(",le=\"26.2144\"} 0\n"), "{out}");
        // nothing measured yet: no window gauges
        assert!(!out.contains("eos_ping_loss_ratio"), "{out}");
        // no labels, as smokeping_prober's
        assert!(
            out.contains("\nsmokeping_receive_errors_total 0\n"),
            "{out}"
        );
    }

    #[test]
    fn window_gauges() {
        let r = runner(&[("10.0.0.1", &[]), ("10.0.0.2", &[])]);
        use Outcome::{Lost, Reply};
        feed(&r, 0, &[Reply(0.010), Lost, Reply(0.012), Reply(0.011)]);
        feed(&r, 1, &[Lost, Lost]);
        let out = text(&r);
        let l = "{host=\"10.0.0.1\",ip=\"10.0.0.1\",source=\"\"}";
        assert!(
            out.contains(&format!("eos_ping_loss_ratio{l} 0.25\n")),
            "{out}"
        );
        assert!(
            out.contains("eos_ping_loss_ratio{host=\"10.0.0.2\",ip=\"10.0.0.2\",source=\"\"} 1\n"),
            "{out}"
        );
        let v = |name: &str| -> f64 {
            let p = format!("{name}{l} ");
            let line = out
                .lines()
                .find(|x| x.starts_with(&p))
                .unwrap_or_else(|| panic!("{p}: {out}"));
            line[p.len()..].parse().unwrap()
        };
        assert!((v("eos_ping_rtt_jitter_seconds") - 0.0015).abs() < 1e-9);
        assert!((v("eos_ping_rtt_stddev_seconds") - 0.000_816_496_580_927_7).abs() < 1e-9);
        // all lost: a loss ratio, but no RTT statistics
        assert!(
            !out.contains("eos_ping_rtt_jitter_seconds{host=\"10.0.0.2\""),
            "{out}"
        );
    }

    #[test]
    fn status_graphs_are_escaped_valid_and_bounded() {
        let hosts: Vec<String> = (0..20).map(|i| format!("10.0.0.{i}")).collect();
        let mut targets: Vec<(&str, &[(&str, &str)])> =
            hosts.iter().map(|h| (h.as_str(), &[][..])).collect();
        targets.push(("<b>evil</b>.example", &[("team", "a&b")]));
        let r = runner(&targets);
        for i in 0..20 {
            let o: Vec<Outcome> = (0..100)
                .map(|k| {
                    if k % (i + 2) == 0 {
                        Outcome::Lost
                    } else {
                        Outcome::Reply(0.001 * (1.0 + (k % 7) as f64))
                    }
                })
                .collect();
            feed(&r, i, &o);
        }
        let html = r.status_html().expect("graphs");
        crate::svg::tests::check_xml(&html).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(html.matches("<svg").count(), STATUS_GRAPHS);
        assert!(html.contains("all on <a href=\"/debug/ping/graphs\">"));
        assert!(
            html.len() < STATUS_GRAPHS * 20 * 1024,
            "{} bytes",
            html.len()
        );
        // worst first: target 0 loses every other request
        let first = html.find("<figcaption>").unwrap();
        assert!(
            html[first..].starts_with("<figcaption>10.0.0.0 — loss 4"),
            "{}",
            &html[first..first + 80]
        );
        // the unresolved name with markup is on the full page, escaped
        let all = r.shared.graphs(None).0;
        crate::svg::tests::check_xml(&all).unwrap();
        assert!(all.contains("&lt;b&gt;evil&lt;/b&gt;.example (not resolved) team=a&amp;b"));
        assert!(!all.contains("<b>evil"));
    }

    #[test]
    fn unresolved_names_degrade_the_module() {
        let r = runner(&[("10.0.0.1", &[]), ("nowhere.invalid", &[])]);
        r.shared.targets[1].state().resolve_error = Some("lookup nowhere.invalid: no".into());
        match r.health() {
            Health::Degraded(why) => assert_eq!(
                why,
                "1 of 2 targets do not resolve (retrying): nowhere.invalid: lookup nowhere.invalid: no"
            ),
            h => panic!("{h:?}"),
        }
        assert!(r.status()[0].1.contains("2 (1 resolved)"));
        // the address arrives: series for it, and up
        assert!(r
            .shared
            .set_address(&r.shared.targets[1], "192.0.2.1".parse().unwrap()));
        assert_eq!(r.health(), Health::Up);
        assert!(text(&r).contains(
            "smokeping_requests_total{host=\"nowhere.invalid\",ip=\"192.0.2.1\",source=\"\"} 0"
        ));
        // a new address replaces the old one's series
        assert!(r
            .shared
            .set_address(&r.shared.targets[1], "192.0.2.2".parse().unwrap()));
        assert!(!r
            .shared
            .set_address(&r.shared.targets[1], "192.0.2.2".parse().unwrap()));
        let out = text(&r);
        assert!(!out.contains("192.0.2.1"), "{out}");
        assert!(out.contains("ip=\"192.0.2.2\""));
    }

    #[test]
    fn bucket_widths_for_captions() {
        assert_eq!(human(Duration::from_secs(60)), "1m");
        assert_eq!(human(Duration::from_secs(480)), "8m");
        assert_eq!(human(Duration::from_secs(7200)), "2h");
        assert_eq!(human(Duration::from_millis(3333)), "3.3s");
        assert_eq!(human(Duration::from_millis(500)), "500ms");
    }
}
