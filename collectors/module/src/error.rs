//! Typed errors of the module contract: why a module could not start, and what is wrong with
//! a config section.

use std::fmt;

/// Why a module could not start. The message is what the status page and the log show; the
/// kind tells the supervisor whether trying again later can help.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// The section asks for something that cannot work (a bad pattern, a missing file it
    /// names). Only a new config fixes it.
    #[error("{0}")]
    Config(String),
    /// Something the module needs is not there yet or failed for a while (a socket, a
    /// permission, the host's cgroup mounts). A later retry (SIGHUP, `POST /-/reload`) may
    /// succeed.
    #[error("{0}")]
    Unavailable(String),
    /// An I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl ModuleError {
    /// An I/O error with what was being done, e.g. `reading /proc/self/mountinfo`.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        ModuleError::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether the same start can succeed later without a config change.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, ModuleError::Config(_))
    }
}

impl From<String> for ModuleError {
    /// Plain messages from parsers and builders are config problems.
    fn from(s: String) -> Self {
        ModuleError::Config(s)
    }
}

/// A problem [`ModuleConfig::validate`](crate::ModuleConfig::validate) found in a section: the
/// key path inside the section (e.g. `["netdev", "device_include"]`, so the agent can point at
/// the line) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigIssue {
    pub path: Vec<String>,
    pub message: String,
}

impl ConfigIssue {
    /// An issue at `path` (keys separated by dots, e.g. `netdev.device_include`).
    pub fn at(path: &str, message: impl Into<String>) -> Self {
        ConfigIssue {
            path: path
                .split('.')
                .filter(|k| !k.is_empty())
                .map(str::to_string)
                .collect(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path.join("."), self.message)
        }
    }
}

impl std::error::Error for ConfigIssue {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_kinds() {
        let e = ModuleError::io(
            "reading /proc/self/mountinfo",
            std::io::Error::from(std::io::ErrorKind::NotFound),
        );
        assert_eq!(
            e.to_string(),
            "reading /proc/self/mountinfo: entity not found"
        );
        assert!(e.is_retryable());
        let e = ModuleError::from("bad pattern".to_string());
        assert!(!e.is_retryable());
        assert_eq!(e.to_string(), "bad pattern");
        let i = ConfigIssue::at("netdev.device_include", "conflicts with device_exclude");
        assert_eq!(i.path, ["netdev", "device_include"]);
        assert_eq!(
            i.to_string(),
            "netdev.device_include: conflicts with device_exclude"
        );
    }
}
