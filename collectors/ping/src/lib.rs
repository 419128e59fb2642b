//! The ping module: smokeping_prober's metrics for a list of targets, pinged from every node
//! through the agent's shared ICMP sockets, with loss, standard deviation and jitter over a
//! window, and smoke graphs of the last hours on the status page.
//!
//! # Compatibility with smokeping_prober
//!
//! Same families, help texts, label names and default buckets
//! (`ExponentialBuckets(0.00005, 2, 20)`):
//!
//! | family | type | labels |
//! |---|---|---|
//! | `smokeping_requests_total` | counter | `ip`, `host`, `source` + target labels |
//! | `smokeping_response_duration_seconds` | histogram | same |
//! | `smokeping_response_ttl` | gauge | same |
//! | `smokeping_response_duplicates_total` | counter | same |
//! | `smokeping_send_errors_total` | counter | same |
//! | `smokeping_receive_errors_total` | counter | same; failed reads on the agent's shared ICMP sockets |
//!
//! A target's own `labels` become extra label names on every series; a target without one
//! of them writes it empty, as smokeping_prober's union of label names does.
//!
//! Differences: no `tos` label (eos sends with the default ToS); no
//! `smokeping_prober_errors_total` (no
//! per-target prober can fail); names are looked up again every `resolve_interval` instead of
//! only at (re)load, and one that does not resolve is retried instead of failing the start.
//! smokeping_prober waits for a reply for as long as its sequence lives; eos has a `timeout`:
//! a reply after it is still observed in the histogram, as upstream would, and also counted
//! in `eos_ping_late_replies_total`.
//!
//! # eos additions
//!
//! `eos_ping_loss_ratio`, `eos_ping_rtt_stddev_seconds`, `eos_ping_rtt_jitter_seconds` (over
//! `window`, see [`window`]), `eos_ping_late_replies_total`, `eos_ping_error_replies_total`
//! (ICMP errors instead of replies), `eos_ping_resolve_errors_total{host}` and
//! `eos_ping_state_bytes`.
//!
//! # Modules
//!
//! - [`config`]: the `modules.ping` section.
//! - [`module`]: the module itself, its series, `/metrics`, the status page and `/debug/ping/`.
//! - [`schedule`]: the sender, spread over the interval, outcomes, name lookups.
//! - [`window`]: the window statistics: loss, standard deviation and jitter over the window.
//! - [`history`]: the per-bucket summaries the graphs draw (fixed memory).
//! - [`svg`]: the smoke graphs as SVG.

pub mod config;
pub mod history;
pub mod module;
pub mod schedule;
pub mod svg;
pub mod window;

pub use config::PingConfig;
pub use module::PingModule;
