//! The contract between the eos agent and its modules.
//!
//! A module (node, containers, logs, probe, ping, mtr) is a library crate that provides a
//! [`ModuleDef`]: a name, a config section type, the metric prefixes and shared services it
//! uses, and a `start` function that returns a running [`Module`]. The agent owns everything
//! else: parsing and validating the config file, starting and stopping modules when their
//! section changes, serving HTTP and merging `/metrics`.
//!
//! - **Lifecycle.** `start` runs on a blocking thread inside the agent's runtime, with a
//!   [`ModuleContext`]: the node's [`Facts`] (a change restarts the module), the agent's shared
//!   [`Services`] (pod metadata; a change reconfigures the service, not the module), and the
//!   instance's [`Tasks`]. Background work is spawned through `ctx.tasks`; stopping the
//!   instance cancels it, waits, then aborts what is left, so a restarted instance never runs
//!   beside the old one. A task that panics marks the module down with the panic message.
//! - **Validation.** [`ModuleConfig::validate`] runs at load, at reload and in `check-config`,
//!   so a section that `start` would reject is refused with its file and line before anything
//!   is stopped.
//! - **Metrics.** [`Module::collect`] runs on a blocking thread once per scrape with a deadline.
//!   Scrape-time collectors (node, containers) read the host there; long-running modules write
//!   the [`metrics`] they update from their tasks (lock-free counters, gauges, histograms).
//! - **HTTP.** A module serves `/debug/<name>/...` and the top-level [`Module::paths`] it
//!   claims (e.g. `/probe`); requests carry a deadline and headers ([`http`]). Two modules
//!   claiming one path, or a module claiming an agent path, is a start error.
//!
//! ```
//! use eos_module::{Module, ModuleContext, ModuleDef, ModuleConfig, ModuleError, Scrape};
//! use eos_exposition::{Encoder, Kind};
//!
//! #[derive(Debug, Default, PartialEq, serde::Deserialize, serde::Serialize)]
//! #[serde(deny_unknown_fields)]
//! struct HelloConfig { #[serde(default)] enabled: bool }
//! impl ModuleConfig for HelloConfig { fn enabled(&self) -> bool { self.enabled } }
//!
//! struct Hello;
//! impl Module for Hello {
//!     fn collect(&self, enc: &mut Encoder<'_>, _scrape: &Scrape<'_>) {
//!         enc.single("hello_up", "Always 1.", Kind::Gauge, &[], 1.0);
//!     }
//! }
//! struct HelloDef;
//! impl ModuleDef for HelloDef {
//!     const NAME: &'static str = "hello";
//!     const METRIC_PREFIXES: &'static [&'static str] = &["hello_"];
//!     type Config = HelloConfig;
//!     fn start(_: &HelloConfig, _: &ModuleContext) -> Result<Box<dyn Module>, ModuleError> {
//!         Ok(Box::new(Hello))
//!     }
//! }
//! ```
//!
//! The README's "Adding a module" section walks through a long-running module (a background
//! task, a counter, a route, a state directory); it is compiled and run as a doc test of this
//! crate.

pub mod civil;
pub mod context;
pub mod duration;
pub mod error;
pub mod events;
pub mod http;
pub mod pidstat;
pub mod secret;
pub mod size;
pub mod tasks;

/// Lock-free counters, gauges and histograms (and labelled sets of them) that a module updates
/// from its tasks and writes in [`Module::collect`]: an update is an atomic add, a scrape reads
/// them. From [`eos_exposition`], so that the encoder and the values stay one mechanism.
pub mod metrics {
    pub use eos_exposition::{
        exponential_buckets, linear_buckets, Counter, CounterVec, Gauge, GaugeVec, Histogram,
        HistogramVec, Metric, MetricVec, DEFAULT_BUCKETS,
    };
}

pub use context::{Facts, HostPaths, ModuleContext, Service, Services};
pub use duration::Duration;
pub use error::{ConfigIssue, ModuleError};
pub use events::{ProbeEvents, ProbeFailure};
pub use secret::Secret;
pub use tasks::Tasks;

use eos_exposition::Encoder;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

/// A boxed, sendable future, as returned by module HTTP handlers and shutdown.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// One scrape of `/metrics`, as a module sees it.
pub struct Scrape<'a> {
    /// The query parameters of the request, e.g. node_exporter's `collect[]`/`exclude[]`.
    pub params: &'a [(String, String)],
    /// When the scrape must be answered. Collect what you can before then.
    pub deadline: Instant,
}

impl Scrape<'_> {
    /// All values of one query parameter, in order.
    pub fn param_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.params
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What a collection produced, as [`Module::collect_owned`] hands it over: the bytes (with
/// shared chunks at their offsets), where each family starts, and what was left out.
pub struct Collected {
    pub buf: Vec<u8>,
    pub shared: eos_exposition::SharedChunks,
    pub records: Vec<eos_exposition::FamilyRecord>,
    pub dropped: eos_exposition::Dropped,
}

impl Collected {
    /// Writes with `write` into a fresh encoder and keeps the result.
    pub fn encode(format: eos_exposition::Format, write: impl FnOnce(&mut Encoder<'_>)) -> Self {
        let mut buf = Vec::new();
        let mut shared = Vec::new();
        let mut enc = Encoder::with_shared(&mut buf, format, &mut shared);
        write(&mut enc);
        let (records, dropped) = enc.finish();
        Collected {
            buf,
            shared,
            records,
            dropped,
        }
    }
}

/// One collection of `module` as Prometheus text, with where each family starts: for tests,
/// examples and subcommands that drive a module without the agent. `params` are the scrape's
/// query parameters; the scrape's deadline is `budget` from now.
pub fn collect_text(
    module: &dyn Module,
    params: &[(String, String)],
    budget: std::time::Duration,
) -> (String, Vec<eos_exposition::FamilyRecord>) {
    let mut buf = Vec::new();
    let mut enc = Encoder::new(&mut buf, eos_exposition::Format::Text);
    module.collect(
        &mut enc,
        &Scrape {
            params,
            deadline: Instant::now() + budget,
        },
    );
    let (records, _) = enc.finish();
    (String::from_utf8_lossy(&buf).into_owned(), records)
}

/// Whether a running module is working.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Up,
    /// Doing most of its job: part of it is failing (a stuck collector, one target that
    /// cannot be reached), with the reason. Still `eos_agent_module_up 1`, and
    /// `eos_agent_module_degraded 1`; the status page shows the reason.
    Degraded(String),
    /// Running, but not doing its job, with the reason (shown on the status page and logged).
    Down(String),
}

/// A running module. The agent holds it behind an `Arc`; stopping it cancels the tasks it
/// spawned through [`ModuleContext::tasks`] and drops it. Put what must happen on stop (a
/// last flush, a checkpoint) in a task that awaits [`Tasks::cancelled`].
pub trait Module: Send + Sync + 'static {
    /// Writes this module's samples for one scrape. Runs on a blocking thread, so reading files
    /// here is fine; check `scrape.deadline` in long loops.
    fn collect(&self, _enc: &mut Encoder<'_>, _scrape: &Scrape<'_>) {}

    /// Collects as a task instead of on a blocking thread the agent lends: for a module that
    /// runs its collection on threads of its own anyway (the node module does, so that a read
    /// that never returns is left behind). The future must finish by `deadline`. `None` (the
    /// default) means: call [`Module::collect`] on a blocking thread.
    fn collect_owned(
        self: std::sync::Arc<Self>,
        _format: eos_exposition::Format,
        _params: std::sync::Arc<[(String, String)]>,
        _deadline: Instant,
    ) -> Option<BoxFuture<Collected>> {
        None
    }

    /// Refuses a `/metrics` request whose query parameters this module cannot honour (e.g.
    /// node_exporter answers `collect[]=bogus` with 400 `missing collector: bogus`). Runs
    /// before any module collects; the message becomes the 400 response. Must be cheap.
    fn check_params(&self, _params: &[(String, String)]) -> Result<(), String> {
        Ok(())
    }

    /// Top-level paths this module serves besides `/debug/<name>/...`, e.g. `/probe`.
    fn paths(&self) -> &'static [&'static str] {
        &[]
    }

    /// Answers a request to one of [`Module::paths`] or to `/debug/<name>/...`. For the latter,
    /// `req.path` is the part after `/debug/<name>`.
    fn handle(&self, _req: http::Request) -> BoxFuture<http::Response> {
        Box::pin(async { http::Response::not_found() })
    }

    /// A few lines for the HTML status page: (label, value).
    fn status(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// An HTML fragment for the agent's `/` status page, shown under the module's row (e.g.
    /// the ping module's graphs), or `None` (the default). Markup and inline SVG only: no
    /// scripts, no external assets. The agent inserts it as it is, so the module escapes any
    /// text it puts in (target names, label values). Runs once per page view: keep it cheap
    /// and its size bounded.
    fn status_html(&self) -> Option<String> {
        None
    }

    /// Whether the module is doing its job; `Down` sets `eos_agent_module_up{module} 0`.
    fn health(&self) -> Health {
        Health::Up
    }
}

/// A module's config section (`modules.<name>` in the file).
///
/// Use `#[serde(deny_unknown_fields)]` so that typos are reported with their line. The
/// serialized form is what `/debug/config` shows (YAML that reads back as the same section):
/// keep secrets in [`Secret`], which writes `<secret>`.
pub trait ModuleConfig:
    DeserializeOwned + serde::Serialize + Default + PartialEq + Debug + Send + Sync + 'static
{
    /// The section's `enabled` key.
    fn enabled(&self) -> bool;

    /// Applies one command-line flag meant for this module (e.g. node_exporter's
    /// `--collector.cpu`). `name` is the flag without leading dashes. Returns `Ok(false)` when
    /// the flag is not this module's.
    fn apply_flag(&mut self, _name: &str, _value: Option<&str>) -> Result<bool, String> {
        Ok(false)
    }

    /// Checks what deserialising cannot: fields that conflict, names that would clash once
    /// sanitised. Runs after the file is parsed and the flags applied, at load, at reload and
    /// in `check-config`; an issue rejects the whole config (with the file and line of
    /// [`ConfigIssue::path`] where it can be found). Whatever `start` would reject for the
    /// section alone belongs here.
    fn validate(&self) -> Result<(), ConfigIssue> {
        Ok(())
    }
}

/// A kind of module, as the agent registers it.
pub trait ModuleDef: Send + Sync + 'static {
    /// The name in `modules.<name>`, in metrics labels and in `/debug/<name>/`.
    const NAME: &'static str;
    /// The prefixes of the metric names this module writes (e.g. `node_`). The agent names
    /// the owner of a family by the longest matching prefix (`eos-agent describe`).
    const METRIC_PREFIXES: &'static [&'static str];
    /// The agent's shared services this module uses; only these are in its context.
    const SERVICES: &'static [Service] = &[];
    /// Command-line flag prefixes [`ModuleConfig::apply_flag`] takes (e.g. `--collector.`).
    const FLAG_PREFIXES: &'static [&'static str] = &[];
    type Config: ModuleConfig;

    /// Starts the module from its section. Runs on a blocking thread inside the agent's
    /// runtime, so reading files here is fine, and tasks are spawned with `ctx.tasks`. An
    /// error leaves the module down (`eos_agent_module_up 0`) without affecting the others.
    fn start(config: &Self::Config, ctx: &ModuleContext) -> Result<Box<dyn Module>, ModuleError>;

    /// Help text for the flags [`ModuleConfig::apply_flag`] accepts, shown in `--help`.
    fn flags_help() -> &'static str {
        ""
    }
}

/// The README's code blocks, compiled and run as doc tests (its "Adding a module" example).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
