//! Test support for eos, in one place: the collectors' integration tests, the end-to-end tests
//! in `tests/` and `cargo xtask` (bench, manifests) all use these instead of their own copies.
//!
//! - [`TempDir`]: a scratch directory removed on drop.
//! - [`free_port`]: a loopback port that was free a moment ago.
//! - [`http`]: a raw HTTP/1.1 client (one request per connection, chunked bodies joined).
//! - [`wait_until`]: poll a condition with a deadline.
//! - [`Server`]: a child process serving HTTP, its output in a log, killed on drop.
//! - [`Agent`], [`Prometheus`], [`NodeExporter`]: the agent binary and the real tools it is
//!   tested against, started on loopback ports.
//! - [`Description`]: what the agent build says about itself (`eos-agent describe`): modules,
//!   flags, config keys and which source owns which metrics.
//! - [`blackbox::Blackbox`]: Debian's blackbox_exporter with a module file, the probe
//!   module's oracle.
//! - [`netns`]: throwaway network namespaces, delay links and router chains (root only).
//! - [`procstat`]: CPU time and memory of a process, from `/proc/PID`.
//! - [`site::Site`]: a small HTTP site on a loopback port for probes to hit.
//! - `systemd` (feature `systemd`): a fake `org.freedesktop.systemd1` on a private
//!   `dbus-daemon`, for the node module's systemd collector.
//! - `fuzz` (feature `fuzz`): property tests over outside input: how many cases a run tries
//!   and strategies that mutate the files a parser reads.
//!
//! ```no_run
//! use eos_testkit::{wait_until, Agent, Prometheus};
//! use std::time::Duration;
//!
//! let agent = Agent::start(&[]);
//! let prom = Prometheus::start(&[&agent.addr]);
//! assert!(wait_until(Duration::from_secs(30), || {
//!     prom.query_value("up") == Some(1.0)
//! }));
//! ```
//!
//! Helpers meant for tests panic with a message; the ones xtask also needs return errors.

pub mod agent;
pub mod blackbox;
pub mod describe;
#[cfg(feature = "fuzz")]
pub mod fuzz;
pub mod http;
pub mod netns;
pub mod node_exporter;
mod ports;
pub mod process;
pub mod procstat;
pub mod prometheus;
pub mod site;
#[cfg(feature = "systemd")]
pub mod systemd;
mod tempdir;
mod wait;

pub use agent::Agent;
pub use describe::Description;
pub use node_exporter::NodeExporter;
pub use ports::free_port;
pub use process::Server;
pub use prometheus::Prometheus;
pub use tempdir::TempDir;
pub use wait::wait_until;
