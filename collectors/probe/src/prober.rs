//! One probe: what a prober gets (the target, its module, the deadline, where to write
//! metrics and log lines, and the agent's shared parts), and the dispatch by prober name.

use crate::allow::Allow;
use crate::config::BlackboxModule;
use crate::log::ProbeLog;
use crate::registry::Registry;
use std::time::Instant;

/// What the probers share, built once per module instance.
#[derive(Clone)]
pub struct Env {
    /// The agent's HTTP client (its TLS setups and pool; probes use fresh connections).
    pub http: eos_http::Client,
    pub allow: Allow,
    /// The shared ICMP socket, when the agent could open one.
    pub icmp: Option<eos_icmp::Icmp>,
}

/// One probe in progress.
pub struct Probe<'a> {
    pub target: &'a str,
    pub module: &'a BlackboxModule,
    /// The probe must be done by then (the prober bounds its own waits with it).
    pub deadline: Instant,
    pub out: &'a mut Registry,
    pub log: &'a mut ProbeLog,
    pub env: &'a Env,
    /// Set when the allow list refused the target (or a redirect): `/probe` answers 403.
    pub denied: Option<String>,
}

impl Probe<'_> {
    /// Time left before the deadline.
    pub fn remaining(&self) -> std::time::Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Records a refusal by the allow list (and logs it).
    pub fn deny(&mut self, why: String) {
        self.log.error("Target denied", &[("reason", &why)]);
        self.denied = Some(why);
    }
}

/// Runs the module's prober; whether the probe succeeded.
pub async fn run(p: &mut Probe<'_>) -> bool {
    let budget = p.remaining();
    let prober = p.module.prober.clone();
    let fut = async {
        match prober.as_str() {
            "http" => crate::http::probe(p).await,
            "tcp" => crate::tcp::probe(p).await,
            "dns" => crate::dns::probe(p).await,
            "icmp" => crate::icmp::probe(p).await,
            other => {
                p.log.error("Unknown prober", &[("prober", &other)]);
                false
            }
        }
    };
    match tokio::time::timeout(budget, fut).await {
        Ok(ok) => ok,
        Err(_) => {
            p.log.error(
                "Timeout reached",
                &[("timeout_seconds", &budget.as_secs_f64())],
            );
            false
        }
    }
}
