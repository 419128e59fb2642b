//! The mtr module: hop-by-hop traces with TTL-limited probes, continuously per target and
//! on demand.
//!
//! - `config.rs`: `modules.mtr` ([`MtrConfig`]).
//! - `trace.rs`: one trace: the [`Prober`] / [`Flow`] seam, the pure per-hop state
//!   ([`Trace`]) and the rounds that drive it ([`trace::run`]), whatever the protocol.
//! - `probers.rs`: the protocols: ICMP echo through the shared [`eos_icmp::Icmp`]
//!   ([`IcmpProber`]), UDP ([`UdpProber`]) and TCP SYN ([`TcpProber`]) from sockets of
//!   their own, and how their answers count.
//! - `report.rs`: a finished trace as `mtr -n -r` text, `mtr -j` JSON, a summary line and a
//!   path hash ([`Report`]).
//! - `module.rs`: the module ([`MtrModule`]): one trace cycle per target per interval,
//!   exported on `/metrics`; `GET /debug/mtr?target=X&count=N[&format=json]` on demand.
//! - `on_failure.rs`: traces of a scheduled probe's target when the probe fails
//!   (`on_probe_failure`), logged and counted.
//!
//! A trace can run without the agent (a test, `eos-agent trace`):
//!
//! ```no_run
//! # async fn f() -> Result<(), eos_mtr::TraceError> {
//! use eos_mtr::{MtrConfig, Tracer};
//! let cfg = MtrConfig::default();
//! let tracer = Tracer::from_config(&cfg, eos_icmp::Icmp::default());
//! let report = tracer.trace("10.0.0.1", &cfg.trace_options(5)).await?;
//! print!("{}", report.text(&eos_mtr::local_host_name()));
//! # Ok(()) }
//! ```

pub mod config;
pub mod module;
mod on_failure;
pub mod probers;
pub mod report;
pub mod trace;

pub use config::{IpProtocol, MtrConfig, OnProbeFailure, Protocol, Target};
pub use module::MtrModule;
pub use probers::{IcmpProber, TcpProber, UdpProber};
pub use report::{Hop, Report};
pub use trace::{Flow, Prober, Trace, TraceError, TraceOptions};

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

/// Resolves names and runs traces with one prober: what the module's schedule, its
/// `/debug/mtr` and `eos-agent trace` share.
#[derive(Clone)]
pub struct Tracer {
    prober: Arc<dyn Prober>,
    ip_protocol: IpProtocol,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("protocol", &self.prober.protocol())
            .field("ip_protocol", &self.ip_protocol)
            .finish()
    }
}

impl Tracer {
    /// A tracer with any prober (a test's simulated network).
    pub fn new(prober: Arc<dyn Prober>, ip_protocol: IpProtocol) -> Self {
        Tracer {
            prober,
            ip_protocol,
        }
    }

    /// Probes of the config's protocol: ICMP echo through `icmp`, or UDP or TCP to the
    /// config's port.
    pub fn from_config(cfg: &MtrConfig, icmp: eos_icmp::Icmp) -> Self {
        let prober: Arc<dyn Prober> = match (cfg.protocol, cfg.port()) {
            (Protocol::Udp, Some(port)) => Arc::new(UdpProber::new(port, cfg.payload_size)),
            (Protocol::Tcp, Some(port)) => Arc::new(TcpProber::new(port)),
            _ => Arc::new(IcmpProber::new(icmp, cfg.payload_size)),
        };
        Tracer::new(prober, cfg.ip_protocol)
    }

    /// `icmp`, `udp` or `tcp`.
    pub fn protocol(&self) -> &'static str {
        self.prober.protocol()
    }

    /// The address `host` is traced at: itself if it is one, else the resolver's first
    /// address of the wanted family.
    pub async fn resolve(&self, host: &str) -> Result<IpAddr, TraceError> {
        let ips =
            eos_probe::resolve::lookup(host)
                .await
                .map_err(|message| TraceError::Resolve {
                    host: host.to_string(),
                    message,
                })?;
        let pick = ips.iter().copied().find(|ip| match self.ip_protocol {
            IpProtocol::Auto => true,
            IpProtocol::Ip4 => ip.is_ipv4(),
            IpProtocol::Ip6 => ip.is_ipv6(),
        });
        pick.ok_or_else(|| TraceError::Resolve {
            host: host.to_string(),
            message: format!("no {:?} address among {ips:?}", self.ip_protocol).to_lowercase(),
        })
    }

    /// Resolves `host` and traces it.
    pub async fn trace(&self, host: &str, opts: &TraceOptions) -> Result<Report, TraceError> {
        let dst = self.resolve(host).await?;
        self.trace_addr(host, dst, opts).await
    }

    /// Traces `dst` (named `host` in the report).
    pub async fn trace_addr(
        &self,
        host: &str,
        dst: IpAddr,
        opts: &TraceOptions,
    ) -> Result<Report, TraceError> {
        let started = SystemTime::now();
        let t = trace::run(self.prober.clone(), dst, opts).await?;
        Ok(t.report(host, self.prober.protocol(), started))
    }
}

impl MtrConfig {
    /// How the config traces, with `count` rounds.
    pub fn trace_options(&self, count: u32) -> TraceOptions {
        TraceOptions {
            max_hops: self.max_hops,
            count,
            probe_interval: self.probe_interval.get(),
            timeout: self.timeout.get(),
            deadline: None,
        }
    }
}

/// This machine's host name (for a report's `HOST:` line), or `localhost`.
pub fn local_host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}
