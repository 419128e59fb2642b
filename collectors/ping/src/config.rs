//! The `modules.ping` section.
//!
//! ```yaml
//! modules:
//!   ping:
//!     enabled: true
//!     targets:
//!       - 10.0.0.1
//!       - host: gateway.example
//!         labels: {site: fra1}
//!     interval: 1s          # one echo request per target per interval
//!     timeout: 1s           # a reply after this is late (lost for the window statistics)
//!     resolve_interval: 1m  # names are looked up again this often
//!     network: ip           # ip (the resolver's first address), ip4 or ip6
//!     window: 1m            # eos_ping_loss_ratio, _rtt_stddev_seconds, _rtt_jitter_seconds
//!     payload_size: 56      # echo data bytes after the 8-byte ICMP header
//!     source: 10.0.0.2      # optional source address
//!     history: 3h           # how far back the status page graphs go
//! ```

use eos_module::{ConfigIssue, Duration, ModuleConfig};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

/// smokeping_prober's `--buckets` default: `prometheus.ExponentialBuckets(0.00005, 2, 20)`,
/// 50 µs to 26.2 s.
pub fn default_buckets() -> Vec<f64> {
    eos_module::metrics::exponential_buckets(0.000_05, 2.0, 20)
}

/// Label names eos sets itself on every series.
pub const RESERVED_LABELS: [&str; 3] = ["ip", "host", "source"];

/// How long a request is remembered after its timeout (late replies) or its reply
/// (duplicates). A reply later than `timeout` + this is not recognised at all.
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(10);

/// Requests one ICMP socket may have waiting or lingering at once: its 16-bit sequence space,
/// with room left for the probe and mtr modules sharing it.
pub const MAX_IN_FLIGHT: u64 = 40_000;

/// The largest number of samples the window keeps per target.
pub const MAX_WINDOW_SAMPLES: u64 = 10_000;

/// `modules.ping`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PingConfig {
    /// Off by default: pinging is something a node is asked to do.
    pub enabled: bool,
    /// Host names or addresses, each with optional extra labels.
    pub targets: Vec<PingTarget>,
    /// Between two echo requests to one target (smokeping_prober's `--ping.interval`).
    pub interval: Duration,
    /// How long a reply is waited for. A later one is counted as late: observed in the
    /// histogram (smokeping_prober has no timeout), lost for the window statistics.
    pub timeout: Duration,
    /// How often names are looked up again. A name that does not resolve is retried sooner
    /// (5 s, doubling up to this), never fatal.
    pub resolve_interval: Duration,
    /// Which address of a name is pinged (smokeping_prober's `network`).
    pub network: Network,
    /// The span of `eos_ping_loss_ratio`, `eos_ping_rtt_stddev_seconds` and
    /// `eos_ping_rtt_jitter_seconds`.
    pub window: Duration,
    /// Echo data bytes after the 8-byte ICMP header (smokeping_prober's `--ping.size`).
    pub payload_size: usize,
    /// The source address to send from (the `source` label); `None`: chosen by routing.
    pub source: Option<IpAddr>,
    /// How far back the status page graphs go; `0` turns them off. Kept in memory, in 180
    /// columns per target at most (3h: one per minute).
    pub history: Duration,
    /// Upper bounds of `smokeping_response_duration_seconds` (smokeping_prober's `--buckets`).
    pub buckets: Vec<f64>,
}

impl Default for PingConfig {
    fn default() -> Self {
        PingConfig {
            enabled: false,
            targets: Vec::new(),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            resolve_interval: Duration::from_secs(60),
            network: Network::Ip,
            window: Duration::from_secs(60),
            payload_size: eos_icmp::DEFAULT_PAYLOAD_SIZE,
            source: None,
            history: Duration::from_secs(3 * 3600),
            buckets: default_buckets(),
        }
    }
}

/// Which address family a name is pinged over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// The first address the resolver returns (of the source's family when `source` is set).
    #[default]
    Ip,
    /// The first IPv4 address.
    Ip4,
    /// The first IPv6 address.
    Ip6,
}

/// One target: `host` or `{host, labels}` in the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PingTarget {
    /// A host name or an IPv4/IPv6 address (`[...]` around IPv6 is accepted).
    pub host: String,
    /// Extra labels on this target's series.
    pub labels: BTreeMap<String, String>,
}

impl PingTarget {
    /// The address, when `host` is one (no lookup needed).
    pub fn literal(&self) -> Option<IpAddr> {
        let bare = self.host.trim_start_matches('[').trim_end_matches(']');
        bare.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetMap {
    host: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

impl<'de> Deserialize<'de> for PingTarget {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PingTarget;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a host name or address, or {host, labels}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<PingTarget, E> {
                Ok(PingTarget {
                    host: s.to_string(),
                    labels: BTreeMap::new(),
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PingTarget, A::Error> {
                let m = TargetMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(PingTarget {
                    host: m.host,
                    labels: m.labels,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for PingTarget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        if self.labels.is_empty() {
            return s.serialize_str(&self.host);
        }
        let mut st = s.serialize_struct("PingTarget", 2)?;
        st.serialize_field("host", &self.host)?;
        st.serialize_field("labels", &self.labels)?;
        st.end()
    }
}

impl PingConfig {
    /// Every label name of the series, sorted: `host`, `ip`, `source` and the targets' own
    /// (a target without one of them writes it empty, as smokeping_prober does).
    pub fn label_names(&self) -> Vec<String> {
        let mut names: Vec<String> = RESERVED_LABELS.iter().map(|s| s.to_string()).collect();
        for t in &self.targets {
            names.extend(t.labels.keys().cloned());
        }
        names.sort();
        names.dedup();
        names
    }

    /// Requests waiting or lingering at once, at most, on one socket.
    pub fn in_flight(&self) -> u64 {
        let interval = self.interval.get().as_millis().max(1) as u64;
        let held = (self.timeout.get() + LINGER).as_millis() as u64;
        (self.targets.len() as u64).saturating_mul(held.div_ceil(interval) + 1)
    }
}

fn valid_label_name(k: &str) -> bool {
    !k.is_empty()
        && !k.starts_with(|c: char| c.is_ascii_digit())
        && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl ModuleConfig for PingConfig {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn validate(&self) -> Result<(), ConfigIssue> {
        use std::time::Duration as D;
        let interval = self.interval.get();
        if interval < D::from_millis(10) || interval > D::from_secs(3600) {
            return Err(ConfigIssue::at("interval", "must be 10ms to 1h"));
        }
        let timeout = self.timeout.get();
        if timeout.is_zero() || timeout > D::from_secs(60) {
            return Err(ConfigIssue::at(
                "timeout",
                "must be more than 0 and at most 1m",
            ));
        }
        if self.resolve_interval.get() < D::from_secs(1) {
            return Err(ConfigIssue::at("resolve_interval", "at least 1s"));
        }
        let window = self.window.get();
        if window < interval {
            return Err(ConfigIssue::at(
                "window",
                format!("shorter than the interval ({})", self.interval),
            ));
        }
        if window.as_millis() / interval.as_millis() > u128::from(MAX_WINDOW_SAMPLES) {
            return Err(ConfigIssue::at(
                "window",
                format!("holds more than {MAX_WINDOW_SAMPLES} pings per target: use a shorter window or a longer interval"),
            ));
        }
        let history = self.history.get();
        if !history.is_zero() && (history < interval || history > D::from_secs(7 * 86_400)) {
            return Err(ConfigIssue::at(
                "history",
                "0 (no graphs), or from the interval to 7d",
            ));
        }
        if self.payload_size > eos_icmp::MAX_PAYLOAD_SIZE {
            return Err(ConfigIssue::at(
                "payload_size",
                format!("at most {}", eos_icmp::MAX_PAYLOAD_SIZE),
            ));
        }
        if self.buckets.is_empty() {
            return Err(ConfigIssue::at("buckets", "at least one bucket"));
        }
        if let Some(b) = self.buckets.iter().find(|b| !b.is_finite()) {
            return Err(ConfigIssue::at(
                "buckets",
                format!("{b} is not a finite number (+Inf is always there)"),
            ));
        }
        for (i, w) in self.buckets.windows(2).enumerate() {
            if w[0] >= w[1] {
                return Err(ConfigIssue::at(
                    &format!("buckets.{}", i + 1),
                    "bucket bounds must be in increasing order",
                ));
            }
        }
        let mut seen = std::collections::BTreeMap::new();
        for (i, t) in self.targets.iter().enumerate() {
            let at = format!("targets.{i}");
            let host = t.host.trim();
            if host.is_empty() || host != t.host {
                return Err(ConfigIssue::at(
                    &format!("{at}.host"),
                    "an empty host, or one with spaces around it",
                ));
            }
            if let Some(prev) = seen.insert(host.to_string(), i) {
                return Err(ConfigIssue::at(
                    &format!("{at}.host"),
                    format!("{host:?} is already targets.{prev}"),
                ));
            }
            if let Some(ip) = t.literal() {
                let family_ok = match self.network {
                    Network::Ip => true,
                    Network::Ip4 => ip.is_ipv4(),
                    Network::Ip6 => ip.is_ipv6(),
                };
                if !family_ok {
                    return Err(ConfigIssue::at(
                        &format!("{at}.host"),
                        format!("{ip} is not of network {:?}", self.network),
                    ));
                }
                if let Some(src) = self.source {
                    if src.is_ipv6() != ip.is_ipv6() {
                        return Err(ConfigIssue::at(
                            &format!("{at}.host"),
                            format!("{ip} is not of the source address's family ({src})"),
                        ));
                    }
                }
            }
            for k in t.labels.keys() {
                if !valid_label_name(k)
                    || RESERVED_LABELS.contains(&k.as_str())
                    || k.starts_with("__")
                {
                    return Err(ConfigIssue::at(
                        &format!("{at}.labels.{k}"),
                        "not a usable label name (ip, host and source are set by eos)",
                    ));
                }
            }
        }
        if let Some(src) = self.source {
            let mismatch = match self.network {
                Network::Ip => false,
                Network::Ip4 => src.is_ipv6(),
                Network::Ip6 => src.is_ipv4(),
            };
            if mismatch {
                return Err(ConfigIssue::at(
                    "source",
                    format!("{src} is not of network {:?}", self.network),
                ));
            }
        }
        let in_flight = self.in_flight();
        if in_flight > MAX_IN_FLIGHT {
            return Err(ConfigIssue::at(
                "targets",
                format!(
                    "{} targets every {} with a {} timeout keep up to {in_flight} requests on one ICMP socket (at most {MAX_IN_FLIGHT}): use fewer targets or a longer interval",
                    self.targets.len(),
                    self.interval,
                    self.timeout
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<PingConfig, String> {
        let c: PingConfig = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn defaults() {
        let c = PingConfig::default();
        assert!(!c.enabled);
        assert_eq!(c.interval, Duration::from_secs(1));
        assert_eq!(c.timeout, Duration::from_secs(1));
        assert_eq!(c.resolve_interval, Duration::from_secs(60));
        assert_eq!(c.window, Duration::from_secs(60));
        assert_eq!(c.history, Duration::from_secs(10_800));
        assert_eq!(c.payload_size, 56);
        assert_eq!(c.buckets.len(), 20);
        assert_eq!(c.buckets[0], 5e-05);
        assert!((c.buckets[19] - 26.2144).abs() < 1e-9);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn targets_as_strings_or_maps() {
        let c = parse(
            "enabled: true\ntargets:\n  - 10.0.0.1\n  - host: gw.example\n    labels: {site: fra1}\n  - '[::1]'\n",
        )
        .unwrap();
        assert_eq!(c.targets.len(), 3);
        assert_eq!(c.targets[0].literal(), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(c.targets[1].host, "gw.example");
        assert_eq!(c.targets[1].labels["site"], "fra1");
        assert_eq!(c.targets[1].literal(), None);
        assert_eq!(c.targets[2].literal(), Some("::1".parse().unwrap()));
        assert_eq!(c.label_names(), ["host", "ip", "site", "source"]);
        // written back the way it reads
        let yaml = serde_yaml_ng::to_string(&c).unwrap();
        assert_eq!(parse(&yaml).unwrap(), c);
        assert!(yaml.contains("- 10.0.0.1\n"), "{yaml}");
    }

    #[test]
    fn rejects_what_cannot_work() {
        let cases = [
            ("targets: [{host: a, port: 1}]", "unknown field"),
            ("targets: ['']", "targets.0.host: an empty host"),
            (
                "targets: [a, b, a]",
                "targets.2.host: \"a\" is already targets.0",
            ),
            (
                "targets: [{host: a, labels: {ip: x}}]",
                "targets.0.labels.ip",
            ),
            (
                "targets: [{host: a, labels: {'1x': x}}]",
                "targets.0.labels.1x",
            ),
            ("interval: 1ms", "interval: must be 10ms to 1h"),
            ("timeout: 0", "timeout"),
            ("timeout: 2m", "timeout"),
            ("window: 500ms", "window: shorter than the interval"),
            ("window: 1d\ninterval: 10ms", "window: holds more than"),
            ("history: 1w1d", "history"),
            ("payload_size: 70000", "payload_size: at most"),
            ("buckets: [0.1, 0.1]", "buckets.1: bucket bounds"),
            ("buckets: []", "buckets: at least one"),
            ("network: ip5", "unknown variant"),
            ("network: ip6\ntargets: [10.0.0.1]", "not of network Ip6"),
            (
                "source: 10.0.0.2\ntargets: ['::1']",
                "source address's family",
            ),
            ("source: nope", "invalid IP address"),
            ("resolve_interval: 10ms", "resolve_interval"),
        ];
        for (yaml, want) in cases {
            let e = parse(yaml).expect_err(yaml);
            assert!(e.contains(want), "{yaml}: {e}");
        }
        assert!(parse("history: 0").is_ok());
    }

    #[test]
    fn bounds_requests_in_flight() {
        let many = |n: usize, interval: &str| PingConfig {
            interval: interval.parse().unwrap(),
            targets: (0..n)
                .map(|i| PingTarget {
                    host: format!("10.1.{}.{}", i / 256, i % 256),
                    labels: BTreeMap::new(),
                })
                .collect(),
            ..PingConfig::default()
        };
        // 500 targets at 1 s: 500 * 12 requests held
        assert_eq!(many(500, "1s").in_flight(), 6000);
        assert_eq!(many(500, "1s").validate(), Ok(()));
        let e = many(5000, "1s").validate().unwrap_err();
        assert!(e.message.contains("at most 40000"), "{e}");
        assert_eq!(many(5000, "5s").validate(), Ok(()));
    }
}
