//! The services the agent runs once and shares between modules: pod metadata from the
//! kubelet (the top-level `kubelet:` section) and the HTTP client (`eos_http::Client`:
//! pooled keep-alive connections and rustls, for the logs module's pushes to Loki and later
//! the probe module). A module declares what it uses in `ModuleDef::SERVICES` and finds the
//! handle in its context.
//!
//! A service's handle is created once and lives as long as the agent: a reload that changes
//! `kubelet:` reconfigures the poller in place, so modules keep their handle and are not
//! restarted. The poller runs only while a running module uses it. The HTTP client has no
//! settings (each request carries its URL, timeout and TLS setup) and no task of its own, so
//! its connection pool simply outlives module restarts.
//!
//! The ICMP service (`eos_icmp::Icmp`) opens its sockets on first use, so an agent without
//! the permission for ICMP sockets only fails the probes that need them, with the reason.
//!
//! The probe failure events (`eos_module::ProbeEvents`) are one broadcast channel for the
//! agent's life: the probe module publishes to it and the mtr module subscribes, each through
//! its own handle, so either may restart without the other.

use crate::build_info::VERSION;
use crate::config::Config;
use eos_kube::{KubeletConfig, PodMetadata};
use eos_module::{ProbeEvents, Service, Services};

/// The agent's shared services.
pub struct SharedServices {
    pod_metadata: PodMetadata,
    /// Sends `User-Agent: eos-agent/<version>`.
    http: eos_http::Client,
    icmp: eos_icmp::Icmp,
    probe_events: ProbeEvents,
}

impl Default for SharedServices {
    fn default() -> Self {
        SharedServices {
            pod_metadata: PodMetadata::idle(KubeletConfig {
                enabled: false,
                ..KubeletConfig::default()
            }),
            http: eos_http::Client::new(&format!("eos-agent/{VERSION}")),
            icmp: eos_icmp::Icmp::default(),
            probe_events: ProbeEvents::default(),
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
                Service::Http => s.insert(Service::Http, self.http.clone()),
                Service::Icmp => s.insert(Service::Icmp, self.icmp.clone()),
                Service::ProbeEvents => s.insert(Service::ProbeEvents, self.probe_events.clone()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_http_client_for_every_module_that_asks() {
        let shared = SharedServices::default();
        let cfg = Config::parse("test", "kubelet: {enabled: false}\n", &|_| None).expect("config");
        let a = shared.for_module(&[Service::Http], &cfg);
        assert_eq!(a.kinds(), [Service::Http]);
        let client = a.get::<eos_http::Client>().expect("the client");
        assert_eq!(client.stats(), eos_http::PoolStats::default());
        assert!(shared
            .for_module(&[Service::PodMetadata], &cfg)
            .get::<eos_http::Client>()
            .is_none());
        assert!(format!("{client:?}").contains(&format!("eos-agent/{VERSION}")));
    }

    #[tokio::test]
    async fn probe_events_reach_every_module_that_asks() {
        let shared = SharedServices::default();
        let cfg = Config::parse("test", "kubelet: {enabled: false}\n", &|_| None).expect("config");
        let publisher = shared.for_module(&[Service::Http, Service::ProbeEvents], &cfg);
        let subscriber = shared.for_module(&[Service::ProbeEvents], &cfg);
        assert_eq!(subscriber.kinds(), [Service::ProbeEvents]);
        let mut events = subscriber.get::<ProbeEvents>().expect("events").subscribe();
        let failure = eos_module::ProbeFailure {
            target: "10.0.0.1:80".into(),
            host: "10.0.0.1".into(),
            module: "tcp_connect".into(),
            reason: "refused".into(),
        };
        let sent = publisher.get::<ProbeEvents>().expect("events");
        assert!(sent.publish(failure.clone()), "one channel for both");
        assert_eq!(
            events.recv().await,
            Some(eos_module::events::ProbeEvent::Failed(failure))
        );
        assert!(shared
            .for_module(&[Service::Icmp], &cfg)
            .get::<ProbeEvents>()
            .is_none());
    }
}
