//! The services the agent runs once and shares between modules: today pod metadata from the
//! kubelet (the top-level `kubelet:` section). A module declares what it uses in
//! `ModuleDef::SERVICES` and finds the handle in its context.
//!
//! A service's handle is created once and lives as long as the agent: a reload that changes
//! `kubelet:` reconfigures the poller in place, so modules keep their handle and are not
//! restarted. The poller runs only while a running module uses it.
//!
//! Next to come, when a module needs them: one ICMP socket service (probe, ping, mtr) and one
//! HTTP client with connection pooling, rustls and per-phase timing (logs, probe).

use crate::config::Config;
use eos_kube::{KubeletConfig, PodMetadata};
use eos_module::{Service, Services};

/// The agent's shared services.
pub struct SharedServices {
    pod_metadata: PodMetadata,
}

impl Default for SharedServices {
    fn default() -> Self {
        SharedServices {
            pod_metadata: PodMetadata::idle(KubeletConfig {
                enabled: false,
                ..KubeletConfig::default()
            }),
        }
    }
}

impl SharedServices {
    /// Takes the settings of a (re)loaded config; handles stay the same.
    pub fn configure(&self, cfg: &Config) {
        self.pod_metadata.reconfigure(cfg.kubelet.clone());
    }

    /// The handles a module that declared `wants` gets under `cfg`.
    pub fn for_module(&self, wants: &[Service], cfg: &Config) -> Services {
        let mut s = Services::default();
        for w in wants {
            match w {
                Service::PodMetadata if cfg.kubelet.enabled => {
                    s.insert(Service::PodMetadata, self.pod_metadata.clone())
                }
                Service::PodMetadata => {}
            }
        }
        s
    }

    /// Runs the kubelet poller while some running module uses it, and stops it otherwise.
    pub fn run_pod_metadata(&self, in_use: bool) {
        if in_use {
            self.pod_metadata.ensure_running();
        } else {
            self.pod_metadata.shutdown();
        }
    }

    #[cfg(test)]
    pub fn pod_metadata_running(&self) -> bool {
        self.pod_metadata.is_running()
    }
}
