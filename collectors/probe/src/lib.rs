//! The probe module: blackbox_exporter's `/probe` (http, tcp, dns and icmp probers with its
//! module schema, metric names and semantics), plus probes on a schedule from every node.
//!
//! - `config.rs`: `modules.probe`, and blackbox_exporter's module schema.
//! - `module.rs`: the module, `/probe` (timeout, `hostname`, `debug=true`), `run_probe`.
//! - `prober.rs`: what a prober gets, and the dispatch by prober name.
//! - `http.rs`, `tcp.rs`, `dns.rs`, `icmp.rs`: the probers.
//! - `tls_info.rs`, `x509.rs`: TLS and certificate metrics (http, tcp), from a small DER
//!   reader that writes names as Go's `pkix.Name.String()` does.
//! - `resolve.rs`: name resolution with the preferred IP protocol and fallback.
//! - `allow.rs`: who may be probed (deny link-local and cloud metadata by default).
//! - `registry.rs`: one probe's metrics, written as Go's registry gathers them.
//! - `log.rs`: one probe's log, for `debug=true`.
//! - `schedule.rs`: scheduled targets, spread in time, exported on `/metrics`.
//! - `discovery.rs`: targets from Kubernetes Services annotated `eos.io/probe`.

pub mod allow;
pub mod config;
pub mod discovery;
pub mod dns;
pub mod http;
pub mod icmp;
pub mod log;
pub mod module;
pub mod prober;
pub mod registry;
pub mod resolve;
pub mod schedule;
pub mod tcp;
pub mod tls_info;
pub mod x509;

pub use config::ProbeConfig;
pub use module::ProbeModule;
