//! What a module is started with besides its own section: facts about the node (which decide
//! a restart when they change), handles to services the agent owns and shares between modules
//! (which don't), and the instance's task set.

use crate::tasks::Tasks;
use std::any::{Any, TypeId};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

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

/// Facts about the node and the agent. A module is restarted when these change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    /// The Kubernetes node name (or the host name outside Kubernetes).
    pub node_name: String,
    pub host: HostPaths,
    /// The agent's `state_dir`; a module keeps its state in `state_dir/<module>/`
    /// ([`ModuleContext::state_dir`]).
    pub state_root: PathBuf,
    /// The agent's version, for `*_build_info` families.
    pub version: &'static str,
    /// The VCS revision the agent was built from.
    pub revision: &'static str,
}

impl Default for Facts {
    fn default() -> Self {
        Facts {
            node_name: "localhost".into(),
            host: HostPaths::default(),
            state_root: "/var/lib/eos-agent".into(),
            version: "unknown",
            revision: "unknown",
        }
    }
}

/// A service the agent runs once and shares between the modules that declare it in
/// [`ModuleDef::SERVICES`](crate::ModuleDef::SERVICES).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Service {
    /// Pod metadata from the kubelet (`eos_kube::PodMetadata`), configured by the top-level
    /// `kubelet:` section.
    PodMetadata,
    /// The agent's HTTP client (`eos_http::Client`): pooled keep-alive connections and
    /// rustls; used by logs and probe. It has no settings of its own: each request
    /// carries its URL, timeout and TLS setup.
    Http,
    /// The agent's ICMP sockets (`eos_icmp::Icmp`): one datagram or raw socket per address
    /// family, shared by probe, ping and mtr, replies matched by identifier and sequence.
    Icmp,
    /// Failure events of scheduled probes ([`crate::events::ProbeEvents`]): the probe module
    /// publishes, the mtr module traces the failing targets (`on_probe_failure`).
    ProbeEvents,
}

/// Handles to the agent's shared services, by type. The agent fills it; a module takes what
/// it declared, e.g. `ctx.services.get::<eos_kube::PodMetadata>()`. Changing a service's
/// settings reconfigures the service in place: the handle a module holds stays valid, and the
/// module is not restarted.
#[derive(Clone, Default)]
pub struct Services {
    by_type: BTreeMap<TypeId, (Service, Arc<dyn Any + Send + Sync>)>,
}

impl Services {
    /// Adds a service handle (the agent does this).
    pub fn insert<T: Clone + Send + Sync + 'static>(&mut self, kind: Service, handle: T) {
        self.by_type
            .insert(TypeId::of::<T>(), (kind, Arc::new(handle)));
    }

    /// The handle of type `T`, if the agent provides it to this module.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.by_type
            .get(&TypeId::of::<T>())
            .and_then(|(_, h)| h.downcast_ref::<T>())
            .cloned()
    }

    /// The kinds present, for comparing what two instances were given.
    pub fn kinds(&self) -> Vec<Service> {
        let mut k: Vec<Service> = self.by_type.values().map(|(s, _)| *s).collect();
        k.sort();
        k
    }
}

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.kinds()).finish()
    }
}

/// Everything a module instance is started with besides its own section.
#[derive(Clone, Debug)]
pub struct ModuleContext {
    /// The module's name, for its state directory and log lines.
    pub module: &'static str,
    pub facts: Facts,
    pub services: Services,
    /// This instance's background tasks: spawn through it, and the supervisor stops them.
    pub tasks: Tasks,
}

impl ModuleContext {
    /// A context for running a module outside the agent (a test, an example, a CLI
    /// subcommand), with no shared services and its own task set.
    pub fn standalone(module: &'static str, facts: Facts) -> Self {
        ModuleContext {
            module,
            facts,
            services: Services::default(),
            tasks: Tasks::new(),
        }
    }

    pub fn node_name(&self) -> &str {
        &self.facts.node_name
    }

    pub fn host(&self) -> &HostPaths {
        &self.facts.host
    }

    /// `state_dir/<module>/`: where this module keeps what must survive a restart (positions,
    /// checkpoints). Not created until [`ModuleContext::ensure_state_dir`].
    pub fn state_dir(&self) -> PathBuf {
        self.facts.state_root.join(self.module)
    }

    /// Creates the module's state directory (and its parents) and returns it.
    pub fn ensure_state_dir(&self) -> Result<PathBuf, crate::ModuleError> {
        let dir = self.state_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| crate::ModuleError::io(format!("creating {}", dir.display()), e))?;
        Ok(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Meta(u32);

    #[test]
    fn services_by_type() {
        let mut s = Services::default();
        assert_eq!(s.get::<Meta>(), None);
        s.insert(Service::PodMetadata, Meta(7));
        assert_eq!(s.get::<Meta>(), Some(Meta(7)));
        assert_eq!(s.get::<String>(), None);
        assert_eq!(s.kinds(), [Service::PodMetadata]);
    }

    #[test]
    fn state_dir_is_per_module() {
        let dir = std::env::temp_dir().join(format!("eos-module-ctx-{}", std::process::id()));
        let facts = Facts {
            state_root: dir.clone(),
            ..Facts::default()
        };
        let ctx = ModuleContext::standalone("logs", facts);
        assert_eq!(ctx.state_dir(), dir.join("logs"));
        let made = ctx.ensure_state_dir().expect("created");
        assert!(made.is_dir());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
