//! The logs module as the agent runs it: a reader thread and a pusher task, their
//! self-metrics, `/debug/logs/`, and the status page lines.

use crate::batch::EncodeBuffers;
use crate::config::LogsConfig;
use crate::ledger::Ledger;
use crate::metrics::Metrics;
use crate::positions;
use crate::push::{PushStatus, Pusher, Room};
use crate::reader::{Reader, ReaderView};
use eos_exposition::Encoder;
use eos_module::http::{Request, Response};
use eos_module::{
    BoxFuture, Health, Module, ModuleContext, ModuleDef, ModuleError, Scrape, Service,
};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

/// The `logs` module kind.
pub struct LogsModule;

impl ModuleDef for LogsModule {
    const NAME: &'static str = "logs";
    const METRIC_PREFIXES: &'static [&'static str] = &["eos_logs_"];
    const SERVICES: &'static [Service] = &[Service::PodMetadata, Service::Http];
    type Config = LogsConfig;

    fn start(cfg: &LogsConfig, ctx: &ModuleContext) -> Result<Box<dyn Module>, ModuleError> {
        let cfg = Arc::new(cfg.clone());
        let tls = if cfg.loki.url.starts_with("https://") {
            Some(
                cfg.loki
                    .tls
                    .build()
                    .map_err(|e| ModuleError::Config(format!("modules.logs.loki.tls: {e}")))?,
            )
        } else {
            None
        };
        let basic_auth = match &cfg.loki.basic_auth {
            None => None,
            Some(b) => {
                let password = if b.password_file.as_os_str().is_empty() {
                    b.password
                        .as_ref()
                        .map(|p| p.expose().to_string())
                        .unwrap_or_default()
                } else {
                    std::fs::read_to_string(&b.password_file)
                        .map_err(|e| {
                            ModuleError::Config(format!(
                                "modules.logs.loki.basic_auth.password_file {}: {e}",
                                b.password_file.display()
                            ))
                        })?
                        .trim_end_matches(['\n', '\r'])
                        .to_string()
                };
                Some(eos_http::basic_auth(&b.username, &password))
            }
        };
        let dir = ctx.ensure_state_dir()?;
        let positions_path = dir.join("positions");
        let metrics = Arc::new(Metrics::default());
        let (saved, positions_problem) = match positions::load(&positions_path) {
            Ok(Ok(p)) => (p, None),
            Ok(Err(corrupt)) => {
                let aside = dir.join("positions.corrupt");
                let _ = std::fs::rename(&positions_path, &aside);
                metrics.positions_errors.inc();
                let msg = format!(
                    "{} was damaged ({corrupt}); moved to {} and reading every file from its start (Loki drops the exact duplicates)",
                    positions_path.display(),
                    aside.display()
                );
                tracing::error!("logs: {msg}");
                (positions::Positions::default(), Some(msg))
            }
            Err(e) => {
                return Err(ModuleError::Unavailable(format!(
                    "reading positions {}: {e}",
                    positions_path.display()
                )))
            }
        };
        let ledger = Arc::new(Ledger::new(positions_path));
        let view = Arc::new(Mutex::new(ReaderView::default()));
        let status = Arc::new(Mutex::new(PushStatus::default()));
        let client = ctx
            .services
            .get::<eos_http::Client>()
            .unwrap_or_else(|| eos_http::Client::new(&format!("eos-agent/{}", ctx.facts.version)));
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let room = Arc::new(Room::default());
        let reader = Reader::new(
            cfg.clone(),
            ctx.host().log_dir.clone(),
            ctx.node_name().to_string(),
            ledger.clone(),
            metrics.clone(),
            view.clone(),
            ctx.services.get::<eos_kube::PodMetadata>(),
            tx,
            room.clone(),
            saved,
        )
        .map_err(ModuleError::Config)?;
        let pusher = Pusher {
            cfg: cfg.clone(),
            client,
            tls,
            basic_auth,
            ledger: ledger.clone(),
            metrics: metrics.clone(),
            status: status.clone(),
            room,
            bufs: EncodeBuffers::default(),
        };
        let tasks = ctx.tasks.clone();
        ctx.tasks
            .spawn_blocking("logs-reader", move || reader.run(|| tasks.is_cancelled()));
        let token = ctx.tasks.token();
        ctx.tasks.spawn(
            "logs-pusher",
            pusher.run(rx, async move { token.cancelled().await }),
        );
        Ok(Box::new(Logs {
            cfg,
            metrics,
            view,
            status,
            ledger,
            positions_problem,
        }))
    }
}

/// A running logs module.
struct Logs {
    cfg: Arc<LogsConfig>,
    metrics: Arc<Metrics>,
    view: Arc<Mutex<ReaderView>>,
    status: Arc<Mutex<PushStatus>>,
    ledger: Arc<Ledger>,
    positions_problem: Option<String>,
}

impl Logs {
    fn push_status(&self) -> PushStatus {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn files_table(&self) -> String {
        let view = self.view.lock().unwrap_or_else(PoisonError::into_inner);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<10} {:>12} {:>12} {:>12} {:>12} {:>9}  path",
            "state", "size", "read", "acked", "lag_bytes", "lag_secs"
        );
        for f in &view.files {
            let _ = writeln!(
                s,
                "{:<10} {:>12} {:>12} {:>12} {:>12} {:>9.1}  {}",
                f.state,
                f.size,
                f.read,
                f.acked,
                f.size.saturating_sub(f.acked),
                f.lag_seconds,
                f.path.display()
            );
        }
        if let Some(e) = &view.scan_error {
            let _ = writeln!(s, "\nscan error: {e}");
        }
        s
    }
}

impl Module for Logs {
    fn collect(&self, enc: &mut Encoder<'_>, _scrape: &Scrape<'_>) {
        self.metrics.encode(enc);
    }

    fn handle(&self, req: Request) -> BoxFuture<Response> {
        let resp = match req.path.as_str() {
            "" | "/" => {
                let mut s = String::new();
                for (k, v) in self.status() {
                    let _ = writeln!(s, "{k}: {v}");
                }
                s.push('\n');
                s.push_str(&self.files_table());
                Response::text(200, s)
            }
            _ => Response::not_found(),
        };
        Box::pin(async move { resp })
    }

    fn status(&self) -> Vec<(String, String)> {
        let p = self.push_status();
        let mut v = vec![
            ("loki".to_string(), self.cfg.push_url()),
            (
                "last push".to_string(),
                p.last_result.unwrap_or_else(|| "none yet".into()),
            ),
            (
                "last accepted".to_string(),
                p.last_success.map_or("never".into(), |t| {
                    let ago = SystemTime::now().duration_since(t).unwrap_or_default();
                    format!("{:.1}s ago", ago.as_secs_f64())
                }),
            ),
            (
                "lag".to_string(),
                format!(
                    "{} bytes, {:.0}s",
                    self.metrics.lag_bytes.get(),
                    self.metrics.lag_seconds.get()
                ),
            ),
            (
                "files".to_string(),
                format!(
                    "{} open, {} held after deletion",
                    self.metrics.files.get(),
                    self.metrics.files_held.get()
                ),
            ),
        ];
        if let Some(e) = self.ledger.last_error() {
            v.push(("positions".into(), e));
        } else if let Some(e) = &self.positions_problem {
            v.push(("positions".into(), e.clone()));
        }
        v
    }

    fn health(&self) -> Health {
        if let Some(e) = &self
            .view
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .scan_error
        {
            return Health::Degraded(e.clone());
        }
        let p = self.push_status();
        if p.failures >= 3 {
            return Health::Degraded(format!(
                "Loki push failing ({} attempts): {}",
                p.failures,
                p.last_result.unwrap_or_default()
            ));
        }
        if let Some(e) = self.ledger.last_error() {
            return Health::Degraded(e);
        }
        Health::Up
    }
}
