//! The probe module as the agent runs it: `GET /probe` with blackbox_exporter's semantics,
//! scheduled probes exported on `/metrics`, and the module's self-metrics.

use crate::allow::Allow;
use crate::config::{BlackboxFile, BlackboxModule, ProbeConfig};
use crate::discovery::DiscoveryStatus;
use crate::log::ProbeLog;
use crate::prober::{self, Env, Probe};
use crate::registry::Registry;
use crate::resolve;
use crate::schedule::{self, Results};
use eos_exposition::Encoder;
use eos_module::http::{Request, Response};
use eos_module::metrics::{CounterVec, Metric};
use eos_module::{
    BoxFuture, Health, Module, ModuleContext, ModuleDef, ModuleError, Scrape, Service,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Instant, SystemTime};

/// The `probe` module kind.
pub struct ProbeModule;

impl ModuleDef for ProbeModule {
    const NAME: &'static str = "probe";
    const METRIC_PREFIXES: &'static [&'static str] = &["probe_", "eos_probe_"];
    const SERVICES: &'static [Service] = &[Service::Http, Service::Icmp, Service::ProbeEvents];
    type Config = ProbeConfig;

    fn start(cfg: &ProbeConfig, ctx: &ModuleContext) -> Result<Box<dyn Module>, ModuleError> {
        let allow = Allow::new(&cfg.allow).map_err(ModuleError::Config)?;
        let http = ctx
            .services
            .get::<eos_http::Client>()
            .unwrap_or_else(|| eos_http::Client::new(&format!("eos-agent/{}", ctx.facts.version)));
        let env = Env {
            http,
            allow,
            icmp: ctx.services.get::<eos_icmp::Icmp>(),
        };
        let modules = Modules::load(cfg).map_err(ModuleError::Config)?;
        let shared = Arc::new(Shared {
            cfg: cfg.clone(),
            env,
            modules,
            results: Results::default(),
            probes: CounterVec::new(&["module", "result", "source"]),
            denied: CounterVec::new(&["module"]),
            discovery: Mutex::new(None),
            events: ctx.services.get::<eos_module::ProbeEvents>(),
        });
        schedule::start(shared.clone(), ctx);
        if cfg.discovery.enabled {
            ctx.tasks.spawn(
                "probe-discovery",
                crate::discovery::run(
                    shared.clone(),
                    ctx.tasks.clone(),
                    ctx.node_name().to_string(),
                ),
            );
        }
        Ok(Box::new(ProbeRunner { shared }))
    }
}

/// What the handler and the schedulers share.
pub struct Shared {
    pub cfg: ProbeConfig,
    pub env: Env,
    pub modules: Modules,
    pub results: Results,
    pub probes: CounterVec,
    pub denied: CounterVec,
    /// `None` while discovery is off or has not listed yet.
    pub discovery: Mutex<Option<DiscoveryStatus>>,
    /// Where failed scheduled probes are published (the agent's; none standalone).
    pub events: Option<eos_module::ProbeEvents>,
}

impl Shared {
    /// Records what Service discovery last did.
    pub fn set_discovery(&self, s: DiscoveryStatus) {
        *self
            .discovery
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(s);
    }

    fn discovery_status(&self) -> Option<DiscoveryStatus> {
        self.discovery
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The modules: the config's, plus those of `config_file`, reloaded when the file changes.
pub struct Modules {
    inline: BTreeMap<String, BlackboxModule>,
    file: PathBuf,
    state: RwLock<FileState>,
}

#[derive(Default)]
struct FileState {
    merged: Arc<BTreeMap<String, BlackboxModule>>,
    mtime: Option<SystemTime>,
    error: Option<String>,
    checked: Option<Instant>,
}

impl Modules {
    fn load(cfg: &ProbeConfig) -> Result<Modules, String> {
        let m = Modules {
            inline: cfg.modules.clone(),
            file: cfg.config_file.clone(),
            state: RwLock::new(FileState::default()),
        };
        if m.file.as_os_str().is_empty() {
            m.write().merged = Arc::new(m.inline.clone());
        } else {
            let (merged, mtime) = read_file(&m.file, &m.inline)?;
            let mut s = m.write();
            s.merged = Arc::new(merged);
            s.mtime = mtime;
        }
        Ok(m)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, FileState> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The current modules; re-reads `config_file` if it changed (checked at most once a
    /// second). A file that no longer parses keeps the last good modules, and says why.
    pub fn current(&self) -> Arc<BTreeMap<String, BlackboxModule>> {
        if self.file.as_os_str().is_empty() {
            return self
                .state
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .merged
                .clone();
        }
        let mut s = self.write();
        let due = s
            .checked
            .is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(1));
        if due {
            s.checked = Some(Instant::now());
            let mtime = std::fs::metadata(&self.file)
                .and_then(|m| m.modified())
                .ok();
            if mtime != s.mtime {
                s.mtime = mtime;
                match read_file(&self.file, &self.inline) {
                    Ok((merged, _)) => {
                        tracing::info!(file = %self.file.display(), "probe: reloaded the blackbox config file");
                        s.merged = Arc::new(merged);
                        s.error = None;
                    }
                    Err(e) => {
                        tracing::error!("probe: keeping the last good modules: {e}");
                        s.error = Some(e);
                    }
                }
            }
        }
        s.merged.clone()
    }

    /// The last reload error of `config_file`.
    pub fn error(&self) -> Option<String> {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .error
            .clone()
    }
}

/// Reads a blackbox.yml and merges it with the inline modules.
fn read_file(
    path: &Path,
    inline: &BTreeMap<String, BlackboxModule>,
) -> Result<(BTreeMap<String, BlackboxModule>, Option<SystemTime>), String> {
    let p = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {p}: {e}"))?;
    let mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let file: BlackboxFile = serde_yaml_ng::from_str(&text).map_err(|e| format!("{p}: {e}"))?;
    let mut merged = inline.clone();
    for (name, m) in file.modules {
        m.validate(&format!("modules.{name}"))
            .map_err(|e| format!("{p}: {}: {}", e.path.join("."), e.message))?;
        if merged.contains_key(&name) {
            return Err(format!(
                "{p}: module {name:?} is also in modules.probe.modules; keep one"
            ));
        }
        merged.insert(name, m);
    }
    Ok((merged, mtime))
}

/// The outcome of one `/probe` run.
pub struct Outcome {
    pub success: bool,
    pub out: Registry,
    pub log: ProbeLog,
    pub denied: Option<String>,
}

/// Runs one probe of `target` with `module` until `deadline`, as blackbox_exporter's
/// handler does: `probe_success` and `probe_duration_seconds` around the prober's own.
pub async fn run_probe(
    env: &Env,
    name: &str,
    module: &BlackboxModule,
    target: &str,
    timeout: std::time::Duration,
) -> Outcome {
    let mut out = Registry::new();
    let mut log = ProbeLog::new(name, target);
    log.info(
        "Beginning probe",
        &[
            ("probe", &module.prober),
            ("timeout_seconds", &timeout.as_secs_f64()),
        ],
    );
    let start = Instant::now();
    let mut p = Probe {
        target,
        module,
        deadline: start + timeout,
        out: &mut out,
        log: &mut log,
        env,
        denied: None,
    };
    let (success, denied) = if module.all_addresses {
        all_addresses(&mut p).await
    } else {
        let ok = prober::run(&mut p).await;
        (ok, p.denied.take())
    };
    let took = start.elapsed().as_secs_f64();
    out.gauge(
        "probe_success",
        "Displays whether or not the probe was a success",
        if success { 1.0 } else { 0.0 },
    );
    out.gauge(
        "probe_duration_seconds",
        "Returns how long the probe took to complete in seconds",
        took,
    );
    if success {
        log.info("Probe succeeded", &[("duration_seconds", &took)]);
    } else {
        log.error("Probe failed", &[("duration_seconds", &took)]);
    }
    Outcome {
        success,
        out,
        log,
        denied,
    }
}

/// `all_addresses: true`: resolves the target's host once, then probes each of its addresses
/// (the preferred protocol's first) in turn (each with the whole remaining time divided evenly). The
/// families are the first address's; `eos_probe_address_success{ip_addr_hash}` says how
/// each address fared (the hash, not the address, keeps the label bounded), and the probe
/// succeeds only if all of them did.
async fn all_addresses(p: &mut Probe<'_>) -> (bool, Option<String>) {
    let (preferred, fallback) = match p.module.prober.as_str() {
        "http" => (
            p.module.http.preferred_ip_protocol.clone(),
            p.module.http.ip_protocol_fallback,
        ),
        "tcp" => (
            p.module.tcp.preferred_ip_protocol.clone(),
            p.module.tcp.ip_protocol_fallback,
        ),
        "dns" => (
            p.module.dns.preferred_ip_protocol.clone(),
            p.module.dns.ip_protocol_fallback,
        ),
        _ => (
            p.module.icmp.preferred_ip_protocol.clone(),
            p.module.icmp.ip_protocol_fallback,
        ),
    };
    let host = resolve::host_of(&p.module.prober, p.target);
    let mut scratch = Registry::new();
    let mut ips = match resolve::resolve_all(
        &host,
        &preferred,
        fallback,
        &p.env.allow,
        &mut scratch,
        p.log,
    )
    .await
    {
        Ok(ips) => ips,
        Err(resolve::ResolveError::Denied(why)) => return (false, Some(why)),
        Err(resolve::ResolveError::Failed(_)) => {
            *p.out = scratch;
            return (false, None);
        }
    };
    // Every address, the preferred protocol's first (a dual-stack name is probed on both).
    if let Ok(all) = resolve::lookup(&host).await {
        for ip in all {
            if !ips.contains(&ip) {
                if let Err(why) = p.env.allow.check_ip(ip) {
                    return (false, Some(why));
                }
                ips.push(ip);
            }
        }
    }
    let mut all_ok = true;
    let mut first: Option<Registry> = None;
    let n = ips.len() as u32;
    for (i, ip) in ips.into_iter().enumerate() {
        let mut out = Registry::new();
        let share = p.remaining() / (n - i as u32).max(1);
        let mut one = Probe {
            target: p.target,
            module: p.module,
            deadline: Instant::now() + share,
            out: &mut out,
            log: p.log,
            env: p.env,
            denied: None,
        };
        let ok = resolve::PINNED.scope(ip, prober::run(&mut one)).await;
        if let Some(why) = one.denied.take() {
            return (false, Some(why));
        }
        all_ok &= ok;
        let first_out = first.get_or_insert_with(Registry::new);
        if i == 0 {
            *first_out = out;
        }
        first_out.gauge_with(
            "eos_probe_address_success",
            "Whether the probe of each address the target resolved to succeeded (all_addresses), by the address's probe_ip_addr_hash.",
            &[("ip_addr_hash", &format!("{}", resolve::ip_hash(ip)))],
            if ok { 1.0 } else { 0.0 },
        );
    }
    if let Some(f) = first {
        *p.out = f;
    }
    (all_ok, None)
}

/// blackbox_exporter's `getTimeout`: the scrape's timeout minus the offset, or the module's
/// if that is shorter; 120 s when Prometheus sent none.
pub fn probe_timeout(
    header: Option<&str>,
    module: &BlackboxModule,
    offset: f64,
) -> Result<f64, String> {
    let mut scrape = match header {
        Some(v) => v.trim().parse::<f64>().map_err(|e| format!("{v:?}: {e}"))?,
        None => 0.0,
    };
    if scrape == 0.0 {
        scrape = 120.0;
    }
    let max = scrape - offset;
    let own = module.timeout.get().as_secs_f64();
    Ok(if own < max && own > 0.0 || max < 0.0 {
        own
    } else {
        max
    })
}

/// blackbox_exporter's debug output.
pub fn debug_output(module: &BlackboxModule, o: &Outcome) -> String {
    let config = serde_yaml_ng::to_string(module)
        .unwrap_or_else(|e| format!("Error marshalling config: {e}\n"));
    format!(
        "Logs for the probe:\n{}\n\n\nMetrics that would have been returned:\n{}\n\n\nModule configuration:\n{}",
        o.log.text(),
        o.out.text(),
        config
    )
}

/// A running probe module.
struct ProbeRunner {
    shared: Arc<Shared>,
}

impl Module for ProbeRunner {
    fn paths(&self) -> &'static [&'static str] {
        &["/probe"]
    }

    fn collect(&self, enc: &mut Encoder<'_>, _scrape: &Scrape<'_>) {
        self.shared.results.encode(enc);
        self.shared.probes.encode(
            enc,
            "eos_probe_probes_total",
            "Probes run, by module, result (success, failure, denied) and source (request: /probe, schedule: scheduled targets).",
        );
    }

    fn handle(&self, req: Request) -> BoxFuture<Response> {
        let shared = self.shared.clone();
        Box::pin(async move {
            match req.path.as_str() {
                "/probe" => handle_probe(&shared, &req).await,
                "" | "/" => Response::text(200, schedule::describe(&shared)),
                _ => Response::not_found(),
            }
        })
    }

    fn status(&self) -> Vec<(String, String)> {
        let modules = self.shared.modules.current();
        let mut v = vec![
            (
                "modules".to_string(),
                modules.keys().cloned().collect::<Vec<_>>().join(", "),
            ),
            (
                "scheduled targets".to_string(),
                self.shared.results.len().to_string(),
            ),
        ];
        if let Some(e) = self.shared.modules.error() {
            v.push(("config_file".into(), e));
        }
        if let Some(d) = self.shared.discovery_status() {
            let mut line = format!("{} targets from Services", d.targets);
            if let Some(e) = d.error {
                line.push_str(&format!("; last listing failed: {e}"));
            }
            if !d.skipped.is_empty() {
                line.push_str(&format!("; skipped: {}", d.skipped.join("; ")));
            }
            v.push(("discovery".into(), line));
        }
        v
    }

    fn health(&self) -> Health {
        if let Some(e) = self.shared.modules.error() {
            return Health::Degraded(e);
        }
        if let Some(e) = self.shared.discovery_status().and_then(|d| d.error) {
            return Health::Degraded(format!("Service discovery: {e}"));
        }
        Health::Up
    }
}

async fn handle_probe(shared: &Shared, req: &Request) -> Response {
    let name = req
        .param("module")
        .filter(|m| !m.is_empty())
        .unwrap_or("http_2xx");
    let modules = shared.modules.current();
    let Some(module) = modules.get(name) else {
        return Response::text(400, format!("Unknown module {name:?}\n"));
    };
    let timeout = match probe_timeout(
        req.header("x-prometheus-scrape-timeout-seconds"),
        module,
        shared.cfg.timeout_offset.get().as_secs_f64(),
    ) {
        Ok(t) => t,
        Err(e) => {
            return Response::text(
                500,
                format!("Failed to parse timeout from Prometheus header: {e}\n"),
            )
        }
    };
    let Some(target) = req.param("target").filter(|t| !t.is_empty()) else {
        return Response::text(400, "Target parameter is missing\n");
    };
    let mut module = module.clone();
    if let Some(host) = req.param("hostname").filter(|h| !h.is_empty()) {
        match module.prober.as_str() {
            "http" => {
                if let Some((_, v)) = module
                    .http
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("host"))
                {
                    if v != host {
                        return Response::text(400, format!("host header defined both in module configuration ({v}) and with URL-parameter 'hostname' ({host})\n"));
                    }
                }
                module
                    .http
                    .headers
                    .retain(|k, _| !k.eq_ignore_ascii_case("host"));
                module.http.headers.insert("Host".into(), host.to_string());
            }
            "tcp" if module.tcp.tls_config.server_name.is_empty() => {
                module.tcp.tls_config.server_name = host.to_string();
            }
            _ => {}
        }
    }
    // Never past the request's own deadline.
    let left = req.deadline.saturating_duration_since(Instant::now());
    let timeout = std::time::Duration::from_secs_f64(timeout.max(0.0)).min(left);
    let o = run_probe(&shared.env, name, &module, target, timeout).await;
    let result = match (&o.denied, o.success) {
        (Some(_), _) => "denied",
        (None, true) => "success",
        (None, false) => "failure",
    };
    shared
        .probes
        .get_or_create(&[name, result, "request"])
        .inc();
    if let Some(why) = &o.denied {
        shared.denied.get_or_create(&[name]).inc();
        return Response::text(403, format!("{why}\n"));
    }
    if req.param("debug") == Some("true") {
        return Response::text(200, debug_output(&module, &o));
    }
    let mut buf = Vec::new();
    let mut enc = Encoder::new(&mut buf, eos_exposition::Format::Text);
    o.out.encode(&mut enc);
    enc.finish();
    Response::new(200, "text/plain; version=0.0.4; charset=utf-8", buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module(timeout: u64) -> BlackboxModule {
        BlackboxModule {
            prober: "http".into(),
            timeout: eos_module::Duration::from_secs(timeout),
            ..BlackboxModule::default()
        }
    }

    #[tokio::test]
    async fn all_addresses_probes_each_and_reports_by_hash() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((c, _)) = listener.accept().await {
                drop(c);
            }
        });
        let module = BlackboxModule {
            prober: "tcp".into(),
            all_addresses: true,
            ..BlackboxModule::default()
        };
        let env = Env {
            http: eos_http::Client::new("t"),
            allow: crate::allow::Allow::all(),
            icmp: None,
        };
        let (a, b): (std::net::IpAddr, std::net::IpAddr) =
            ("127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap());
        let target = format!("dual.test:{port}");
        let o = resolve::TEST_HOSTS
            .scope(
                vec![("dual.test", vec![a, b])],
                run_probe(
                    &env,
                    "tcp_all",
                    &module,
                    &target,
                    std::time::Duration::from_secs(5),
                ),
            )
            .await;
        let hash = |ip| format!("{}", resolve::ip_hash(ip));
        let ok = |ip| {
            o.out
                .value("eos_probe_address_success", &[("ip_addr_hash", &hash(ip))])
        };
        assert_eq!(ok(a), Some(1.0), "{}", o.out.text());
        // Nothing listens on 127.0.0.2 at that port: refused.
        assert_eq!(ok(b), Some(0.0));
        assert!(!o.success, "all must succeed");
        assert_eq!(
            o.out.value("probe_ip_addr_hash", &[]),
            Some(resolve::ip_hash(a))
        );
    }

    #[test]
    fn timeouts_as_blackbox() {
        assert_eq!(probe_timeout(None, &module(5), 0.5), Ok(5.0));
        assert_eq!(probe_timeout(Some("3"), &module(5), 0.5), Ok(2.5));
        assert_eq!(probe_timeout(Some("10"), &module(0), 0.5), Ok(9.5));
        assert_eq!(probe_timeout(None, &module(0), 0.5), Ok(119.5));
        assert_eq!(
            probe_timeout(Some("0.2"), &module(5), 0.5),
            Ok(5.0),
            "offset past the scrape timeout"
        );
        assert!(probe_timeout(Some("x"), &module(5), 0.5).is_err());
    }
}
