//! `eos-agent`: one per-node process for Kubernetes observability.
//!
//! Data flows `config file -> supervisor -> module -> /metrics`: `config` parses and validates
//! the file, `reload` notices changes, `state` applies them, `supervisor` starts and stops the
//! modules listed in `modules` (with the shared `services`) and collects every source, and
//! `server` answers HTTP. Run `eos-agent --help` for the command line.

mod body;
mod build_info;
mod cli;
mod config;
mod describe;
#[cfg(test)]
mod fuzz;
mod keypath;
mod limits;
mod logging;
mod memory;
mod merge;
mod modules;
mod reload;
mod selfmetrics;
mod server;
mod services;
mod state;
mod status_page;
mod supervisor;

use build_info::{REVISION, VERSION};
use config::ConfigSource;
use state::AgentState;
use std::process::ExitCode;
use std::sync::Arc;
use tracing::{error, info, warn};

fn main() -> ExitCode {
    let cli = match cli::parse(std::env::args().skip(1)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("eos-agent: {e}");
            return ExitCode::from(2);
        }
    };
    match &cli.command {
        cli::Command::Help => {
            out(&cli::help());
            ExitCode::SUCCESS
        }
        cli::Command::Version => {
            out(&format!("eos-agent {VERSION} (revision {REVISION})\n"));
            ExitCode::SUCCESS
        }
        cli::Command::PrintDefaultConfig => {
            out(config::EMBEDDED_DEFAULT);
            ExitCode::SUCCESS
        }
        cli::Command::Describe => {
            out(&format!("{:#}\n", describe::describe()));
            ExitCode::SUCCESS
        }
        cli::Command::TraceHelp => {
            out(cli::TRACE_HELP);
            ExitCode::SUCCESS
        }
        cli::Command::Trace(args) => trace(args),
        cli::Command::CheckConfig(path) => {
            match config::load(&ConfigSource::File(path.clone()), &cli.overrides) {
                Ok((cfg, _)) => {
                    for w in &cfg.warnings {
                        eprintln!("warning: {w}");
                    }
                    let on: Vec<&str> = modules::registry()
                        .iter()
                        .filter(|m| m.enabled(&cfg.modules))
                        .map(|m| m.name())
                        .collect();
                    println!(
                        "{}: ok (modules enabled: {})",
                        path.display(),
                        if on.is_empty() {
                            "none".to_string()
                        } else {
                            on.join(", ")
                        }
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
        cli::Command::Run => run(cli),
    }
}

fn run(cli: cli::Cli) -> ExitCode {
    memory::tune();
    logging::init(cli.log_level, cli.log_format);
    for flag in &cli.ignored {
        warn!(flag = %flag, "node_exporter flag accepted but has no effect in eos-agent");
    }
    let source = match cli.config {
        Some(p) => ConfigSource::File(p),
        None => ConfigSource::Embedded,
    };
    let (cfg, hash) = match config::load(&source, &cli.overrides) {
        Ok(c) => c,
        Err(e) => {
            error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    for w in &cfg.warnings {
        warn!("{w}");
    }
    let workers = std::thread::available_parallelism()
        .map(|n| n.get().min(4))
        .unwrap_or(2);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .max_blocking_threads(64)
        .thread_name("eos-agent")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    let options = server::Options {
        lifecycle: cli.lifecycle,
        max_requests: cli.max_requests,
        max_connections: limits::default_max_connections(),
    };
    let code = rt.block_on(async move {
        let addr = cfg.listen_address.0;
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                error!(%addr, error = %e, "cannot listen");
                return ExitCode::FAILURE;
            }
        };
        // With port 0 the kernel picks one; log the real address for whoever started us.
        let addr = listener.local_addr().unwrap_or(addr);
        info!(%addr, "listening");
        let state = Arc::new(AgentState::new(source, cli.overrides, cfg, hash, addr));
        info!(
            version = VERSION,
            revision = REVISION,
            config = %state.source.describe(),
            %addr,
            lifecycle = options.lifecycle,
            max_requests = options.max_requests,
            max_connections = options.max_connections,
            "eos-agent starting"
        );
        // Listen for SIGHUP before anything else can take time: its default action kills.
        let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|e| warn!(error = %e, "cannot listen for SIGHUP"))
            .ok();
        let server = tokio::spawn(server::serve(
            listener,
            state.clone(),
            options,
            shutdown_signal(),
        ));
        state.start().await;
        let triggers = tokio::spawn(reload::run_triggers(state.clone(), hup));
        if let Err(e) = server.await {
            error!(error = %e, "server task failed");
        }
        // Stop first: it waits for a reload in progress (which must not be cut off halfway,
        // with a new instance outside any slot) and refuses later ones.
        state.stop().await;
        triggers.abort();
        info!("eos-agent stopped");
        ExitCode::SUCCESS
    });
    // A module's collection stuck in a read (a hung mount, a FIFO) must not keep the process
    // alive past SIGTERM; the kubelet would have to kill it.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    code
}

/// `eos-agent trace TARGET`: one mtr trace in this process, its report on stdout.
fn trace(args: &cli::TraceArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("eos-agent trace: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let cfg = &args.config;
    let tracer = eos_mtr::Tracer::from_config(cfg, eos_icmp::Icmp::default());
    let result = rt.block_on(tracer.trace(&args.target, &cfg.trace_options(cfg.count)));
    match result {
        Ok(report) => {
            let host = eos_mtr::local_host_name();
            if args.json {
                out(&format!("{:#}\n", report.json(&host)));
            } else {
                out(&report.text(&host));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("eos-agent trace: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes to stdout; a closed pipe (`eos-agent describe | head`) is not an error worth a panic.
fn out(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Resolves on SIGTERM (how the DaemonSet rolls out) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    info!("shutting down");
}
