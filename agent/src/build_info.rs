//! What this build is: the version from Cargo.toml and the VCS revision (see build.rs).

/// The agent's version, from Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The VCS revision the agent was built from (see build.rs).
pub const REVISION: &str = env!("EOS_REVISION");
