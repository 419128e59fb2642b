//! The contract between the eos agent and its modules.
//!
//! A module (node, containers, logs, probe, ping, mtr) is a library crate that provides a
//! [`ModuleDef`]: a name, a config section type, and a `start` function that returns a running
//! [`Module`]. The agent owns everything else: parsing the config file, starting and stopping
//! modules when their section changes, serving HTTP and merging `/metrics`.
//!
//! A module contributes to `/metrics` through [`Module::collect`], which the agent calls on a
//! blocking thread once per scrape with a deadline. Scrape-time collectors (node, containers)
//! read the host there; modules that keep state between scrapes (probes on a schedule, the log
//! pipeline's counters) write out what they hold.
//!
//! ```
//! use eos_module::{Module, ModuleContext, ModuleDef, ModuleConfig, Scrape};
//! use eos_exposition::{Encoder, Kind};
//!
//! #[derive(Debug, Default, PartialEq, serde::Deserialize)]
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
//!     type Config = HelloConfig;
//!     fn start(_: &HelloConfig, _: &ModuleContext) -> Result<Box<dyn Module>, String> {
//!         Ok(Box::new(Hello))
//!     }
//! }
//! ```

pub mod duration;
pub mod http;
pub mod secret;

pub use duration::Duration;
pub use secret::Secret;

use eos_exposition::Encoder;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Instant;

/// A boxed, sendable future, as returned by module HTTP handlers and shutdown.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Where the host's filesystems are, as seen from the agent (in a DaemonSet: `/host/...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPaths {
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
    pub rootfs: PathBuf,
    pub udev_data: PathBuf,
    pub log_dir: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths {
            procfs: "/proc".into(),
            sysfs: "/sys".into(),
            rootfs: "/".into(),
            udev_data: "/run/udev/data".into(),
            log_dir: "/var/log/pods".into(),
        }
    }
}

/// What every module gets besides its own section: facts about the node and the agent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleContext {
    /// The Kubernetes node name (or the host name outside Kubernetes).
    pub node_name: String,
    pub host: HostPaths,
    /// A directory that survives restarts, for positions and checkpoints.
    pub state_dir: PathBuf,
    /// The agent's version, for `*_build_info` families.
    pub version: &'static str,
    /// The VCS revision the agent was built from.
    pub revision: &'static str,
}

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

/// Whether a running module is working.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    Up,
    /// Running, but not doing its job, with the reason (shown on the status page and logged).
    Down(String),
}

/// A running module. The agent holds it behind an `Arc` and drops it after [`Module::shutdown`].
pub trait Module: Send + Sync + 'static {
    /// Writes this module's samples for one scrape. Runs on a blocking thread, so reading files
    /// here is fine; check `scrape.deadline` in long loops.
    fn collect(&self, _enc: &mut Encoder<'_>, _scrape: &Scrape<'_>) {}

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

    /// Whether the module is doing its job; `Down` sets `eos_agent_module_up{module} 0`.
    fn health(&self) -> Health {
        Health::Up
    }

    /// Stops the module's tasks and closes its sockets and files. Called once, before drop.
    fn shutdown(&self) -> BoxFuture<()> {
        Box::pin(async {})
    }
}

/// A module's config section (`modules.<name>` in the file).
///
/// Use `#[serde(deny_unknown_fields)]` so that typos are reported with their line. The
/// `Debug` output is what `/debug/config` shows: keep secrets in [`Secret`].
pub trait ModuleConfig:
    DeserializeOwned + Default + PartialEq + Debug + Send + Sync + 'static
{
    /// The section's `enabled` key.
    fn enabled(&self) -> bool;

    /// Applies one command-line flag meant for this module (e.g. node_exporter's
    /// `--collector.cpu`). `name` is the flag without leading dashes. Returns `Ok(false)` when
    /// the flag is not this module's.
    fn apply_flag(&mut self, _name: &str, _value: Option<&str>) -> Result<bool, String> {
        Ok(false)
    }
}

/// A kind of module, as the agent registers it.
pub trait ModuleDef: Send + Sync + 'static {
    /// The name in `modules.<name>`, in metrics labels and in `/debug/<name>/`.
    const NAME: &'static str;
    type Config: ModuleConfig;

    /// Starts the module from its section. Called inside the agent's tokio runtime, so a module
    /// may spawn tasks; it must stop them in [`Module::shutdown`]. An error leaves the module
    /// down (`eos_agent_module_up 0`) without affecting the others.
    fn start(config: &Self::Config, ctx: &ModuleContext) -> Result<Box<dyn Module>, String>;

    /// Help text for the flags [`ModuleConfig::apply_flag`] accepts, shown in `--help`.
    fn flags_help() -> &'static str {
        ""
    }
}
