//! One probe: what a prober gets (the target, its module, the deadline, where to write
//! metrics and log lines, and the agent's shared parts), and the dispatch by prober name.

use crate::allow::Allow;
use crate::config::{BlackboxModule, IpPreference};
use crate::log::ProbeLog;
use crate::registry::Registry;
use crate::resolve::{self, ResolveError};
use std::net::IpAddr;
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

    /// Resolves `host` as blackbox_exporter's `chooseProtocol` does (see `resolve::choose`),
    /// within the probe's deadline. `Err(None)`: the allow list refused it (recorded with
    /// [`Probe::deny`]); `Err(Some(e))`: it did not resolve (logged as "Error resolving
    /// address"), for the prober to add what it logs on top.
    pub async fn resolve<P: IpPreference + Sync>(
        &mut self,
        host: &str,
        pref: &P,
    ) -> Result<IpAddr, Option<String>> {
        let chosen = tokio::time::timeout_at(
            self.deadline.into(),
            resolve::choose(
                host,
                pref.preferred(),
                pref.fallback(),
                &self.env.allow,
                self.out,
                self.log,
            ),
        )
        .await;
        let e = match chosen {
            Ok(Ok(ip)) => return Ok(ip),
            Ok(Err(ResolveError::Denied(why))) => {
                self.deny(why);
                return Err(None);
            }
            Ok(Err(ResolveError::Failed(e))) => e,
            Err(_) => "context deadline exceeded".to_string(),
        };
        self.log.error("Error resolving address", &[("err", &e)]);
        Err(Some(e))
    }

    /// The configured `source_ip_address`: `Ok(None)` when empty; logs `using` with the address
    /// (upstream's words differ by prober), or "Error parsing source ip address" and returns
    /// the error.
    pub fn source_address(&mut self, text: &str, using: &str) -> Result<Option<IpAddr>, String> {
        if text.is_empty() {
            return Ok(None);
        }
        match text.parse::<IpAddr>() {
            Ok(src) => {
                self.log.info(using, &[("srcIP", &src)]);
                Ok(Some(src))
            }
            Err(_) => {
                self.log
                    .error("Error parsing source ip address", &[("srcIP", &text)]);
                Err(format!("error parsing source ip address: {text}"))
            }
        }
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

/// Runs a prober in tests as `/probe` does (through [`run`], within its timeout), without
/// the `probe_success` and `probe_duration_seconds` the handler adds: what every prober's
/// tests share.
#[cfg(test)]
pub mod testing {
    use super::{Env, Probe};
    use crate::allow::Allow;
    use crate::config::BlackboxModule;
    use crate::log::ProbeLog;
    use crate::registry::Registry;
    use std::time::{Duration, Instant};

    /// What one probe run gave.
    pub struct Ran {
        pub success: bool,
        pub out: Registry,
        pub log: String,
        pub denied: Option<String>,
    }

    impl Ran {
        /// A series' value, panicking with the metrics when missing.
        pub fn v(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
            self.out.value(name, labels).unwrap_or_else(|| {
                panic!("no {name}{labels:?} in\n{}\n{}", self.out.text(), self.log)
            })
        }
    }

    /// The probers' shared parts for a test: a fresh HTTP client, `allow`, and `icmp`.
    pub fn env(allow: Allow, icmp: Option<eos_icmp::Icmp>) -> Env {
        Env {
            http: eos_http::Client::new("eos-test/1"),
            allow,
            icmp,
        }
    }

    /// Runs `module` against `target` with no ICMP service.
    pub async fn run(
        module: &BlackboxModule,
        target: &str,
        timeout: Duration,
        allow: Allow,
    ) -> Ran {
        run_in(&env(allow, None), module, target, timeout).await
    }

    /// Runs `module` against `target` with `env`. Bounded here too: a prober that hangs past
    /// its deadline fails the test rather than blocking it.
    pub async fn run_in(
        env: &Env,
        module: &BlackboxModule,
        target: &str,
        timeout: Duration,
    ) -> Ran {
        let mut out = Registry::new();
        let mut log = ProbeLog::new("test", target);
        let mut p = Probe {
            target,
            module,
            deadline: Instant::now() + timeout,
            out: &mut out,
            log: &mut log,
            env,
            denied: None,
        };
        let success = tokio::time::timeout(timeout + Duration::from_secs(5), super::run(&mut p))
            .await
            .expect("the prober returns by its deadline");
        let denied = p.denied.take();
        Ran {
            success,
            out,
            log: log.text().to_string(),
            denied,
        }
    }
}
