//! The `modules.mtr` section: the targets traced continuously, how a trace probes (ICMP echo,
//! UDP or TCP SYN), the bounds on traces (how many at once, how many probes on demand), who
//! may be traced, and tracing a scheduled probe's target when the probe fails.

use eos_module::{ConfigIssue, Duration, ModuleConfig};
use eos_probe::config::AllowConfig;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// `modules.mtr`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MtrConfig {
    /// Off by default: tracing sends probes to every hop of every target.
    pub enabled: bool,
    /// Traced once per `interval` each, exported on `/metrics`.
    pub targets: Vec<Target>,
    /// One trace cycle per target per interval (the start spread over the interval).
    pub interval: Duration,
    /// The highest TTL / hop limit probed.
    pub max_hops: u8,
    /// Probes per hop in a cycle (mtr's `-c`), sent in rounds `probe_interval` apart.
    #[serde(alias = "probes_per_round")]
    pub count: u32,
    /// Between the rounds of a cycle (mtr's `-i`). Routers answer about one expired probe a
    /// second per source by default (Linux's `icmp_ratelimit`): faster rounds show loss that
    /// is not on the path.
    pub probe_interval: Duration,
    /// How long each probe's answer is waited for.
    pub timeout: Duration,
    /// `icmp` (echo requests, the default), `udp` (datagrams to `port`, mtr's `-u`) or `tcp`
    /// (SYNs to `port`, mtr's `-T`).
    pub protocol: Protocol,
    /// The destination port of `udp` probes (default 33434, where nothing listens, so the
    /// destination answers port unreachable) and `tcp` probes (default 80: an open port
    /// answers SYN-ACK, a closed one RST, and either is the destination answering).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Bytes of payload in each probe (mtr's packet size minus the IP and ICMP / UDP
    /// headers): icmp's echo data, or udp's datagram, whose first two bytes carry the probe's
    /// sequence number. TCP SYNs carry none.
    pub payload_size: usize,
    /// Which address of a name is traced: `auto` (the resolver's first), `ip4` or `ip6`.
    pub ip_protocol: IpProtocol,
    /// At most this many traces run at once, scheduled or on demand: a scheduled cycle
    /// waits for its turn, an on-demand request that finds none free is refused (429).
    pub max_concurrent_traces: usize,
    /// The largest `count` an on-demand trace (`/debug/mtr?count=`) may ask for.
    pub max_count: u32,
    /// Who may be traced: the same rules (and defaults) as `modules.probe.allow`.
    pub allow: AllowConfig,
    /// Trace the target of a scheduled probe (`modules.probe.targets`) when it fails.
    pub on_probe_failure: OnProbeFailure,
}

/// `modules.mtr.on_probe_failure`: when a scheduled probe of the probe module fails, trace
/// its target's host right away with this module's settings and allow rules, and log the
/// report at warn level (one event, the `mtr -n -r` text in its `report` field).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnProbeFailure {
    /// Off by default.
    pub enabled: bool,
    /// A host is traced at most once per this; a probe that keeps failing gets its target
    /// traced again once it is over (`0s`: every failure).
    pub min_interval: Duration,
    /// At most this many of these traces at once; a failure that finds none free is
    /// skipped. Each also takes one of `max_concurrent_traces` while it traces.
    pub max_concurrent: usize,
}

impl Default for OnProbeFailure {
    fn default() -> Self {
        OnProbeFailure {
            enabled: false,
            min_interval: Duration::from_secs(600),
            max_concurrent: 2,
        }
    }
}

impl Default for MtrConfig {
    fn default() -> Self {
        MtrConfig {
            enabled: false,
            targets: Vec::new(),
            interval: Duration::from_secs(60),
            max_hops: 30,
            count: 10,
            probe_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            protocol: Protocol::Icmp,
            port: None,
            payload_size: 36,
            ip_protocol: IpProtocol::Auto,
            max_concurrent_traces: 4,
            max_count: 100,
            allow: AllowConfig::default(),
            on_probe_failure: OnProbeFailure::default(),
        }
    }
}

/// How hops are probed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// ICMP echo requests with a TTL, answered by time-exceeded from each hop and an echo
    /// reply from the destination.
    #[default]
    Icmp,
    /// UDP datagrams with a TTL to `port`, answered by time-exceeded from each hop and port
    /// unreachable from the destination. No privilege needed.
    Udp,
    /// TCP SYNs with a TTL to `port`, answered by time-exceeded from each hop and SYN-ACK or
    /// RST from the destination. No privilege needed.
    Tcp,
}

impl Protocol {
    /// `icmp`, `udp` or `tcp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Icmp => "icmp",
            Protocol::Udp => "udp",
            Protocol::Tcp => "tcp",
        }
    }

    /// mtr's destination port for the protocol: 33434 for udp, 80 for tcp; none for icmp.
    pub fn default_port(self) -> Option<u16> {
        match self {
            Protocol::Icmp => None,
            Protocol::Udp => Some(33434),
            Protocol::Tcp => Some(80),
        }
    }
}

/// Which address family a name is traced over.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IpProtocol {
    /// The first address the resolver returns.
    #[default]
    Auto,
    Ip4,
    Ip6,
}

/// A target: a host name or address, with extra labels for its series. Written as a plain
/// string (`- 10.0.0.1`) or as `{host: ..., labels: {...}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub labels: BTreeMap<String, String>,
}

impl Target {
    /// A target without labels.
    pub fn new(host: &str) -> Self {
        Target {
            host: host.to_string(),
            labels: BTreeMap::new(),
        }
    }
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct TargetMap {
    host: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Target;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a host, or a map with `host` and `labels`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Target, E> {
                Ok(Target::new(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, m: A) -> Result<Target, A::Error> {
                let t = TargetMap::deserialize(serde::de::value::MapAccessDeserializer::new(m))?;
                Ok(Target {
                    host: t.host,
                    labels: t.labels,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.labels.is_empty() {
            s.serialize_str(&self.host)
        } else {
            TargetMap {
                host: self.host.clone(),
                labels: self.labels.clone(),
            }
            .serialize(s)
        }
    }
}

/// Labels eos sets itself on mtr series.
const OWN_LABELS: &[&str] = &["target", "hop", "address", "result"];

impl ModuleConfig for MtrConfig {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn validate(&self) -> Result<(), ConfigIssue> {
        match (self.protocol, self.port) {
            (Protocol::Icmp, Some(_)) => {
                return Err(ConfigIssue::at(
                    "port",
                    "only udp and tcp probes have a port (protocol is icmp)",
                ))
            }
            (_, Some(0)) => return Err(ConfigIssue::at("port", "must be 1 to 65535")),
            _ => {}
        }
        if self.protocol == Protocol::Udp && self.payload_size < eos_icmp::SEQUENCE_LEN {
            return Err(ConfigIssue::at(
                "payload_size",
                format!(
                    "udp probes carry their sequence number in the first {} bytes: at least {}",
                    eos_icmp::SEQUENCE_LEN,
                    eos_icmp::SEQUENCE_LEN
                ),
            ));
        }
        if self.max_hops == 0 || self.max_hops > 64 {
            return Err(ConfigIssue::at("max_hops", "must be 1 to 64"));
        }
        if self.count == 0 || self.count > self.max_count {
            return Err(ConfigIssue::at(
                "count",
                format!("must be 1 to max_count ({})", self.max_count),
            ));
        }
        if self.max_count == 0 || self.max_count > 1000 {
            return Err(ConfigIssue::at("max_count", "must be 1 to 1000"));
        }
        let ms = |d: Duration| d.get().as_millis();
        if ms(self.timeout) < 10 || self.timeout.get() > std::time::Duration::from_secs(60) {
            return Err(ConfigIssue::at("timeout", "must be 10ms to 60s"));
        }
        if ms(self.probe_interval) < 10 {
            return Err(ConfigIssue::at("probe_interval", "at least 10ms"));
        }
        if self.interval.get() < std::time::Duration::from_secs(1) {
            return Err(ConfigIssue::at("interval", "at least 1s"));
        }
        let cycle = self.cycle_duration(self.count);
        if cycle > self.interval.get() {
            return Err(ConfigIssue::at(
                "interval",
                format!(
                    "a cycle ({} rounds {} apart, plus the {} timeout) takes {:?}, longer than the interval {}",
                    self.count, self.probe_interval, self.timeout, cycle, self.interval
                ),
            ));
        }
        if self.payload_size > 1400 {
            return Err(ConfigIssue::at("payload_size", "at most 1400 bytes"));
        }
        if self.max_concurrent_traces == 0 {
            return Err(ConfigIssue::at("max_concurrent_traces", "at least 1"));
        }
        if self.on_probe_failure.max_concurrent == 0 {
            return Err(ConfigIssue::at(
                "on_probe_failure.max_concurrent",
                "at least 1",
            ));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, t) in self.targets.iter().enumerate() {
            let at = format!("targets.{i}");
            let host = t.host.trim();
            if host.is_empty() || host.contains(char::is_whitespace) {
                return Err(ConfigIssue::at(&format!("{at}.host"), "not a host"));
            }
            if !seen.insert(host) {
                return Err(ConfigIssue::at(
                    &format!("{at}.host"),
                    format!("{host:?} is listed twice"),
                ));
            }
            for k in t.labels.keys() {
                let valid = !k.is_empty()
                    && !k.starts_with(|c: char| c.is_ascii_digit())
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid || OWN_LABELS.contains(&k.as_str()) || k.starts_with("__") {
                    return Err(ConfigIssue::at(
                        &format!("{at}.labels.{k}"),
                        format!(
                            "not a usable label name ({} are set by eos)",
                            OWN_LABELS.join(", ")
                        ),
                    ));
                }
            }
        }
        eos_probe::allow::Allow::new(&self.allow).map_err(|e| ConfigIssue::at("allow", e))?;
        Ok(())
    }
}

impl MtrConfig {
    /// The destination port udp and tcp probes go to: `port`, or the protocol's default.
    pub fn port(&self) -> Option<u16> {
        self.port.or(self.protocol.default_port())
    }

    /// How long a cycle of `count` rounds takes at most: the rounds' spacing plus the last
    /// round's timeout.
    pub fn cycle_duration(&self, count: u32) -> std::time::Duration {
        self.probe_interval.get() * count.saturating_sub(1) + self.timeout.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<MtrConfig, String> {
        let c: MtrConfig = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
        c.validate().map_err(|e| e.to_string())?;
        Ok(c)
    }

    #[test]
    fn defaults_are_valid_and_off() {
        let c = MtrConfig::default();
        assert!(!c.enabled);
        c.validate().unwrap();
        assert_eq!(parse("{}").unwrap(), c);
        assert_eq!(c.cycle_duration(10), std::time::Duration::from_secs(11));
    }

    #[test]
    fn udp_and_tcp_with_mtrs_ports() {
        let c = parse("protocol: udp").unwrap();
        assert_eq!((c.protocol, c.port()), (Protocol::Udp, Some(33434)));
        let c = parse("protocol: tcp").unwrap();
        assert_eq!((c.protocol, c.port()), (Protocol::Tcp, Some(80)));
        let c = parse("protocol: tcp\nport: 443").unwrap();
        assert_eq!(c.port(), Some(443));
        // TCP SYNs have no payload: any payload_size is fine.
        assert!(parse("protocol: tcp\npayload_size: 0").is_ok());
        assert_eq!(MtrConfig::default().port(), None);
        // What /debug/config shows reads back the same.
        let back = serde_yaml_ng::to_string(&c).unwrap();
        assert!(
            back.contains("protocol: tcp\n") && back.contains("port: 443\n"),
            "{back}"
        );
        assert_eq!(parse(&back).unwrap(), c);
    }

    #[test]
    fn on_probe_failure_is_off_by_default() {
        let c = MtrConfig::default();
        assert_eq!(c.on_probe_failure, OnProbeFailure::default());
        assert!(!c.on_probe_failure.enabled);
        assert_eq!(
            c.on_probe_failure.min_interval,
            Duration::from_secs(600),
            "10m"
        );
        let c = parse("on_probe_failure: {enabled: true, min_interval: 0s}").unwrap();
        assert!(c.on_probe_failure.enabled);
        assert_eq!(c.on_probe_failure.min_interval, Duration::from_secs(0));
        assert_eq!(c.on_probe_failure.max_concurrent, 2);
        let back = serde_yaml_ng::to_string(&c).unwrap();
        assert_eq!(parse(&back).unwrap(), c);
    }

    #[test]
    fn targets_as_strings_or_maps() {
        let c = parse(
            "enabled: true\ntargets:\n  - 10.0.0.1\n  - host: example.com\n    labels: {site: a}\n",
        )
        .unwrap();
        assert_eq!(c.targets[0], Target::new("10.0.0.1"));
        assert_eq!(c.targets[1].host, "example.com");
        assert_eq!(c.targets[1].labels["site"], "a");
        // What /debug/config shows reads back the same.
        let back = serde_yaml_ng::to_string(&c).unwrap();
        assert!(back.contains("- 10.0.0.1\n"), "{back}");
        assert_eq!(parse(&back).unwrap(), c);
        let e = parse("targets: [{host: a, label: {}}]").unwrap_err();
        assert!(e.contains("unknown field `label`"), "{e}");
    }

    #[test]
    fn problems_are_named() {
        for (yaml, path, what) in [
            ("port: 33434", "port", "only udp and tcp"),
            ("protocol: icmp\nport: 80", "port", "(protocol is icmp)"),
            ("protocol: tcp\nport: 0", "port", "1 to 65535"),
            (
                "protocol: udp\npayload_size: 1",
                "payload_size",
                "at least 2",
            ),
            (
                "on_probe_failure: {enabled: true, max_concurrent: 0}",
                "on_probe_failure.max_concurrent",
                "at least 1",
            ),
            ("max_hops: 0", "max_hops", "1 to 64"),
            ("count: 0", "count", "1 to max_count"),
            ("count: 200", "count", "1 to max_count (100)"),
            ("timeout: 0s", "timeout", "10ms to 60s"),
            ("interval: 5s", "interval", "longer than the interval 5s"),
            (
                "max_concurrent_traces: 0",
                "max_concurrent_traces",
                "at least 1",
            ),
            ("targets: ['']", "targets.0.host", "not a host"),
            ("targets: [a, a]", "targets.1.host", "listed twice"),
            (
                "targets: [{host: a, labels: {hop: x}}]",
                "targets.0.labels.hop",
                "set by eos",
            ),
            ("allow: {cidrs: [nope]}", "allow", "not an address"),
        ] {
            let c: MtrConfig = serde_yaml_ng::from_str(yaml).unwrap();
            let e = c.validate().expect_err(yaml);
            assert_eq!(e.path.join("."), path, "{yaml}: {e}");
            assert!(e.message.contains(what), "{yaml}: {e}");
        }
        assert!(parse("protocol: sctp").is_err());
        let e = parse("on_probe_failure: {enabled: true, interval: 1m}").unwrap_err();
        assert!(e.contains("unknown field `interval`"), "{e}");
        assert!(parse("probes_per_round: 5").unwrap().count == 5);
    }
}
