//! The `modules.probe` section, and blackbox_exporter's module schema (`modules:` in a
//! blackbox.yml), field for field. Fields blackbox_exporter has that eos does not do are
//! parsed and refused with their name, never silently ignored.

use eos_module::{ConfigIssue, Duration, ModuleConfig, Secret};
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

type Unsupported = Option<serde_json::Value>;

/// `modules.probe`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProbeConfig {
    pub enabled: bool,
    /// blackbox_exporter's `modules:` map.
    pub modules: BTreeMap<String, BlackboxModule>,
    /// A blackbox.yml to load modules from (watched, reloaded when it changes); its modules
    /// are added to `modules` (a name in both is an error).
    pub config_file: PathBuf,
    /// Probes run on a schedule, exported on `/metrics` with `target` and `module` labels.
    pub targets: Vec<ScheduledTarget>,
    /// Who may be probed.
    pub allow: AllowConfig,
    /// Subtracted from Prometheus' scrape timeout (blackbox_exporter's `--timeout-offset`).
    pub timeout_offset: Duration,
    /// Targets from Kubernetes Services annotated `eos.io/probe: <module>`.
    pub discovery: DiscoveryConfig,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        let mut modules = BTreeMap::new();
        for (name, prober) in [
            ("http_2xx", "http"),
            ("tcp_connect", "tcp"),
            ("icmp", "icmp"),
        ] {
            modules.insert(
                name.to_string(),
                BlackboxModule {
                    prober: prober.into(),
                    timeout: Duration::from_secs(5),
                    ..BlackboxModule::default()
                },
            );
        }
        ProbeConfig {
            enabled: true,
            modules,
            config_file: PathBuf::new(),
            targets: Vec::new(),
            allow: AllowConfig::default(),
            timeout_offset: Duration::from_millis(500),
            discovery: DiscoveryConfig::default(),
        }
    }
}

/// One scheduled probe.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledTarget {
    pub target: String,
    #[serde(default = "default_module")]
    pub module: String,
    #[serde(default = "default_interval")]
    pub interval: Duration,
    /// Extra labels on this target's series.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

fn default_module() -> String {
    "http_2xx".into()
}

fn default_interval() -> Duration {
    Duration::from_secs(60)
}

/// Who may be probed. Checked on the target's name and on every address it resolves to,
/// also after each redirect. Deny wins; an empty allow list allows all.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AllowConfig {
    /// If set, addresses must be in one of these CIDRs.
    pub cidrs: Vec<String>,
    /// If set, names must match one of these regexes (anchored).
    pub hosts: Vec<String>,
    /// Never probed: link-local and cloud metadata addresses by default.
    pub deny_cidrs: Vec<String>,
    /// Names never probed (regexes, anchored).
    pub deny_hosts: Vec<String>,
}

impl Default for AllowConfig {
    fn default() -> Self {
        AllowConfig {
            cidrs: Vec::new(),
            hosts: Vec::new(),
            deny_cidrs: vec![
                "169.254.0.0/16".into(),
                "fe80::/10".into(),
                "fd00:ec2::254/128".into(),
            ],
            deny_hosts: vec!["metadata\\.google\\.internal\\.?".into()],
        }
    }
}

/// Kubernetes Service discovery.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoveryConfig {
    pub enabled: bool,
    /// The API server; empty: from KUBERNETES_SERVICE_HOST/PORT.
    pub api_server: String,
    pub token_file: PathBuf,
    pub ca_file: PathBuf,
    /// The annotation that names the module.
    pub annotation: String,
    /// How often Services are listed again.
    pub interval: Duration,
    /// The probe interval of discovered targets.
    pub probe_interval: Duration,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        DiscoveryConfig {
            enabled: false,
            api_server: String::new(),
            token_file: "/var/run/secrets/kubernetes.io/serviceaccount/token".into(),
            ca_file: "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt".into(),
            annotation: "eos.io/probe".into(),
            interval: Duration::from_secs(300),
            probe_interval: Duration::from_secs(60),
        }
    }
}

/// A blackbox_exporter module.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlackboxModule {
    pub prober: String,
    /// 0: the scrape's timeout (minus the offset), or 120 s.
    pub timeout: Duration,
    #[serde(skip_serializing_if = "is_default")]
    pub http: HttpProbe,
    #[serde(skip_serializing_if = "is_default")]
    pub tcp: TcpProbe,
    #[serde(skip_serializing_if = "is_default")]
    pub icmp: IcmpProbe,
    #[serde(skip_serializing_if = "is_default")]
    pub dns: DnsProbe,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc: Unsupported,
    /// eos: probe every address the name resolves to; success per address goes into
    /// `probe_ip_addr_hash`-keyed series only, so cardinality stays bounded.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub all_addresses: bool,
}

/// `preferred_ip_protocol` and `ip_protocol_fallback`, shared by every prober.
pub trait IpPreference {
    fn preferred(&self) -> &str;
    fn fallback(&self) -> bool;
}

macro_rules! ip_preference {
    ($($t:ty),*) => {$(
        impl IpPreference for $t {
            fn preferred(&self) -> &str {
                &self.preferred_ip_protocol
            }
            fn fallback(&self) -> bool {
                self.ip_protocol_fallback
            }
        }
    )*};
}
ip_preference!(HttpProbe, TcpProbe, IcmpProbe, DnsProbe);

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn yes() -> bool {
    true
}

/// `http:`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpProbe {
    /// Empty: any 2xx.
    pub valid_status_codes: Vec<u16>,
    /// e.g. `HTTP/1.1`; empty: any.
    pub valid_http_versions: Vec<String>,
    pub preferred_ip_protocol: String,
    pub ip_protocol_fallback: bool,
    pub skip_resolve_phase_with_proxy: bool,
    /// Deprecated in blackbox_exporter for `follow_redirects`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_follow_redirects: Option<bool>,
    pub fail_if_ssl: bool,
    pub fail_if_not_ssl: bool,
    /// Empty: GET.
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub fail_if_body_matches_regexp: Vec<String>,
    pub fail_if_body_not_matches_regexp: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_if_body_json_matches_cel: Unsupported,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_if_body_json_not_matches_cel: Unsupported,
    pub fail_if_header_matches: Vec<HeaderMatch>,
    pub fail_if_header_not_matches: Vec<HeaderMatch>,
    pub body: String,
    pub body_file: PathBuf,
    /// Empty only (no decompression is done).
    pub compression: String,
    /// 0: no limit (eos still caps bodies at 64 MiB).
    #[serde(deserialize_with = "eos_module::size::byte_size")]
    pub body_size_limit: u64,
    // Prometheus' HTTPClientConfig, inline as in blackbox_exporter.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<Secret>,
    pub bearer_token_file: PathBuf,
    pub tls_config: eos_http::TlsConfig,
    #[serde(default = "yes")]
    pub follow_redirects: bool,
    /// Accepted; eos speaks HTTP/1.1 only (see the README).
    #[serde(default = "yes")]
    pub enable_http2: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_http3: Unsupported,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_url: Unsupported,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_proxy: Unsupported,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_from_environment: Unsupported,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_connect_header: Unsupported,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oauth2: Unsupported,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_headers: Unsupported,
}

impl Default for HttpProbe {
    fn default() -> Self {
        HttpProbe {
            valid_status_codes: Vec::new(),
            valid_http_versions: Vec::new(),
            preferred_ip_protocol: String::new(),
            ip_protocol_fallback: true,
            skip_resolve_phase_with_proxy: false,
            no_follow_redirects: None,
            fail_if_ssl: false,
            fail_if_not_ssl: false,
            method: String::new(),
            headers: BTreeMap::new(),
            fail_if_body_matches_regexp: Vec::new(),
            fail_if_body_not_matches_regexp: Vec::new(),
            fail_if_body_json_matches_cel: None,
            fail_if_body_json_not_matches_cel: None,
            fail_if_header_matches: Vec::new(),
            fail_if_header_not_matches: Vec::new(),
            body: String::new(),
            body_file: PathBuf::new(),
            compression: String::new(),
            body_size_limit: 0,
            basic_auth: None,
            authorization: None,
            bearer_token: None,
            bearer_token_file: PathBuf::new(),
            tls_config: eos_http::TlsConfig::default(),
            follow_redirects: true,
            enable_http2: true,
            enable_http3: None,
            proxy_url: None,
            no_proxy: None,
            proxy_from_environment: None,
            proxy_connect_header: None,
            oauth2: None,
            http_headers: None,
        }
    }
}

impl HttpProbe {
    /// Whether redirects are followed (`no_follow_redirects` wins when set, as upstream).
    pub fn follows_redirects(&self) -> bool {
        match self.no_follow_redirects {
            Some(no) => !no,
            None => self.follow_redirects,
        }
    }
}

/// `fail_if_header_matches` / `fail_if_header_not_matches`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeaderMatch {
    pub header: String,
    pub regexp: String,
    pub allow_missing: bool,
}

/// `basic_auth`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BasicAuth {
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    pub password_file: PathBuf,
}

/// `authorization`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Authorization {
    /// Default `Bearer`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Secret>,
    pub credentials_file: PathBuf,
}

/// `tcp:`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TcpProbe {
    pub preferred_ip_protocol: String,
    pub ip_protocol_fallback: bool,
    pub source_ip_address: String,
    pub query_response: Vec<QueryResponse>,
    pub tls: bool,
    pub tls_config: eos_http::TlsConfig,
}

impl Default for TcpProbe {
    fn default() -> Self {
        TcpProbe {
            preferred_ip_protocol: String::new(),
            ip_protocol_fallback: true,
            source_ip_address: String::new(),
            query_response: Vec::new(),
            tls: false,
            tls_config: eos_http::TlsConfig::default(),
        }
    }
}

/// One `query_response` step.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryResponse {
    /// A regex a line read must match (with `${1}`-style captures usable in `send`).
    pub expect: String,
    /// `probe_expect_info` labels, values may use captures.
    pub labels: Vec<QueryLabel>,
    pub send: String,
    pub starttls: bool,
}

/// A `query_response` label.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryLabel {
    pub name: String,
    pub value: String,
}

/// `icmp:`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct IcmpProbe {
    pub preferred_ip_protocol: String,
    pub ip_protocol_fallback: bool,
    pub source_ip_address: String,
    pub payload_size: usize,
    pub dont_fragment: bool,
    pub ttl: u32,
}

impl Default for IcmpProbe {
    fn default() -> Self {
        IcmpProbe {
            preferred_ip_protocol: String::new(),
            ip_protocol_fallback: true,
            source_ip_address: String::new(),
            payload_size: 0,
            dont_fragment: false,
            ttl: 64,
        }
    }
}

/// `dns:`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsProbe {
    pub preferred_ip_protocol: String,
    pub ip_protocol_fallback: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_over_tls: Unsupported,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_config: Unsupported,
    pub source_ip_address: String,
    /// `udp` (default) or `tcp`.
    pub transport_protocol: String,
    /// Default `IN`.
    pub query_class: String,
    pub query_name: String,
    /// Default `ANY`.
    pub query_type: String,
    #[serde(default = "yes")]
    pub recursion_desired: bool,
    /// Default `[NOERROR]`.
    pub valid_rcodes: Vec<String>,
    pub validate_answer_rrs: RrValidator,
    pub validate_authority_rrs: RrValidator,
    pub validate_additional_rrs: RrValidator,
}

impl Default for DnsProbe {
    fn default() -> Self {
        DnsProbe {
            preferred_ip_protocol: String::new(),
            ip_protocol_fallback: true,
            dns_over_tls: None,
            tls_config: None,
            source_ip_address: String::new(),
            transport_protocol: String::new(),
            query_class: String::new(),
            query_name: String::new(),
            query_type: String::new(),
            recursion_desired: true,
            valid_rcodes: Vec::new(),
            validate_answer_rrs: RrValidator::default(),
            validate_authority_rrs: RrValidator::default(),
            validate_additional_rrs: RrValidator::default(),
        }
    }
}

/// Checks on one section of a DNS answer (regexes over each record's text form).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RrValidator {
    pub fail_if_matches_regexp: Vec<String>,
    pub fail_if_all_match_regexp: Vec<String>,
    pub fail_if_not_matches_regexp: Vec<String>,
    pub fail_if_none_matches_regexp: Vec<String>,
}

/// The probers eos has.
pub const PROBERS: &[&str] = &["http", "tcp", "icmp", "dns"];

fn regexes(at: &str, list: &[String]) -> Result<(), ConfigIssue> {
    for (i, r) in list.iter().enumerate() {
        Regex::new(r).map_err(|e| ConfigIssue::at(&format!("{at}.{i}"), e.to_string()))?;
    }
    Ok(())
}

fn unsupported(at: &str, v: &Unsupported, why: &str) -> Result<(), ConfigIssue> {
    match v {
        None => Ok(()),
        Some(_) => Err(ConfigIssue::at(at, format!("not supported by eos: {why}"))),
    }
}

fn ip_protocol(at: &str, p: &str) -> Result<(), ConfigIssue> {
    match p {
        "" | "ip4" | "ip6" => Ok(()),
        other => Err(ConfigIssue::at(at, format!("{other:?}: use ip4 or ip6"))),
    }
}

impl BlackboxModule {
    /// What blackbox_exporter checks at load, and what eos does not do. `at` is the key path
    /// of the module, e.g. `modules.http_2xx`.
    pub fn validate(&self, at: &str) -> Result<(), ConfigIssue> {
        if !PROBERS.contains(&self.prober.as_str()) {
            let why = if self.prober == "grpc" {
                "the grpc prober is not supported by eos".to_string()
            } else {
                format!(
                    "unknown prober {:?}: use one of {}",
                    self.prober,
                    PROBERS.join(", ")
                )
            };
            return Err(ConfigIssue::at(&format!("{at}.prober"), why));
        }
        unsupported(&format!("{at}.grpc"), &self.grpc, "the grpc prober")?;
        let h = &self.http;
        let ha = format!("{at}.http");
        ip_protocol(
            &format!("{ha}.preferred_ip_protocol"),
            &h.preferred_ip_protocol,
        )?;
        for (field, v, why) in [
            (
                "fail_if_body_json_matches_cel",
                &h.fail_if_body_json_matches_cel,
                "CEL expressions",
            ),
            (
                "fail_if_body_json_not_matches_cel",
                &h.fail_if_body_json_not_matches_cel,
                "CEL expressions",
            ),
            ("enable_http3", &h.enable_http3, "HTTP/3"),
            ("proxy_url", &h.proxy_url, "HTTP proxies"),
            ("no_proxy", &h.no_proxy, "HTTP proxies"),
            (
                "proxy_from_environment",
                &h.proxy_from_environment,
                "HTTP proxies",
            ),
            (
                "proxy_connect_header",
                &h.proxy_connect_header,
                "HTTP proxies",
            ),
            ("oauth2", &h.oauth2, "OAuth 2"),
            (
                "http_headers",
                &h.http_headers,
                "http_headers (use headers)",
            ),
        ] {
            unsupported(&format!("{ha}.{field}"), v, why)?;
        }
        if h.skip_resolve_phase_with_proxy {
            return Err(ConfigIssue::at(
                &format!("{ha}.skip_resolve_phase_with_proxy"),
                "not supported by eos: HTTP proxies",
            ));
        }
        if !h.compression.is_empty() {
            return Err(ConfigIssue::at(
                &format!("{ha}.compression"),
                "not supported by eos: response decompression",
            ));
        }
        if !h.body.is_empty() && !h.body_file.as_os_str().is_empty() {
            return Err(ConfigIssue::at(
                &format!("{ha}.body_file"),
                "setting body and body_file both are not allowed",
            ));
        }
        let auths = [
            h.basic_auth.is_some(),
            h.authorization.is_some(),
            h.bearer_token.is_some() || !h.bearer_token_file.as_os_str().is_empty(),
        ];
        if auths.iter().filter(|a| **a).count() > 1 {
            return Err(ConfigIssue::at(
                &ha,
                "at most one of basic_auth, authorization and bearer_token(_file) may be configured",
            ));
        }
        for v in &h.valid_http_versions {
            if !matches!(
                v.as_str(),
                "HTTP/1.0" | "HTTP/1.1" | "HTTP/2.0" | "HTTP/2" | "HTTP/3.0"
            ) {
                return Err(ConfigIssue::at(
                    &format!("{ha}.valid_http_versions"),
                    format!("{v:?}: use HTTP/1.0, HTTP/1.1 or HTTP/2.0"),
                ));
            }
        }
        regexes(
            &format!("{ha}.fail_if_body_matches_regexp"),
            &h.fail_if_body_matches_regexp,
        )?;
        regexes(
            &format!("{ha}.fail_if_body_not_matches_regexp"),
            &h.fail_if_body_not_matches_regexp,
        )?;
        for (field, list) in [
            ("fail_if_header_matches", &h.fail_if_header_matches),
            ("fail_if_header_not_matches", &h.fail_if_header_not_matches),
        ] {
            for (i, m) in list.iter().enumerate() {
                let mat = format!("{ha}.{field}.{i}");
                if m.header.is_empty() {
                    return Err(ConfigIssue::at(
                        &mat,
                        "header name must be set for HTTP header matchers",
                    ));
                }
                if m.regexp.is_empty() {
                    return Err(ConfigIssue::at(
                        &mat,
                        "regexp must be set for HTTP header matchers",
                    ));
                }
                regexes(&format!("{mat}.regexp"), std::slice::from_ref(&m.regexp))?;
            }
        }
        h.tls_config
            .validate()
            .map_err(|e| ConfigIssue::at(&format!("{ha}.tls_config"), e))?;

        let t = &self.tcp;
        let ta = format!("{at}.tcp");
        ip_protocol(
            &format!("{ta}.preferred_ip_protocol"),
            &t.preferred_ip_protocol,
        )?;
        for (i, q) in t.query_response.iter().enumerate() {
            regexes(
                &format!("{ta}.query_response.{i}.expect"),
                std::slice::from_ref(&q.expect),
            )?;
        }
        t.tls_config
            .validate()
            .map_err(|e| ConfigIssue::at(&format!("{ta}.tls_config"), e))?;

        let i = &self.icmp;
        let ia = format!("{at}.icmp");
        ip_protocol(
            &format!("{ia}.preferred_ip_protocol"),
            &i.preferred_ip_protocol,
        )?;
        if i.ttl > 255 {
            return Err(ConfigIssue::at(
                &format!("{ia}.ttl"),
                "\"ttl\" cannot exceed 255",
            ));
        }
        if i.payload_size > 65_000 {
            return Err(ConfigIssue::at(
                &format!("{ia}.payload_size"),
                "at most 65000 bytes",
            ));
        }

        let d = &self.dns;
        let da = format!("{at}.dns");
        ip_protocol(
            &format!("{da}.preferred_ip_protocol"),
            &d.preferred_ip_protocol,
        )?;
        unsupported(
            &format!("{da}.dns_over_tls"),
            &d.dns_over_tls,
            "DNS over TLS",
        )?;
        unsupported(&format!("{da}.tls_config"), &d.tls_config, "DNS over TLS")?;
        if self.prober == "dns" && d.query_name.is_empty() {
            return Err(ConfigIssue::at(
                &format!("{da}.query_name"),
                "query name must be set for DNS module",
            ));
        }
        if !d.query_type.is_empty() && crate::dns::parse_type(&d.query_type).is_none() {
            return Err(ConfigIssue::at(
                &format!("{da}.query_type"),
                format!("query type '{}' is not valid", d.query_type),
            ));
        }
        if !d.query_class.is_empty() && crate::dns::parse_class(&d.query_class).is_none() {
            return Err(ConfigIssue::at(
                &format!("{da}.query_class"),
                format!("query class '{}' is not valid", d.query_class),
            ));
        }
        for (i, r) in d.valid_rcodes.iter().enumerate() {
            if crate::dns::parse_rcode(r).is_none() {
                return Err(ConfigIssue::at(
                    &format!("{da}.valid_rcodes.{i}"),
                    format!("rcode '{r}' is not valid"),
                ));
            }
        }
        match d.transport_protocol.as_str() {
            "" | "udp" | "tcp" => {}
            other => {
                return Err(ConfigIssue::at(
                    &format!("{da}.transport_protocol"),
                    format!("{other:?}: use udp or tcp"),
                ))
            }
        }
        for (field, v) in [
            ("validate_answer_rrs", &d.validate_answer_rrs),
            ("validate_authority_rrs", &d.validate_authority_rrs),
            ("validate_additional_rrs", &d.validate_additional_rrs),
        ] {
            let va = format!("{da}.{field}");
            regexes(
                &format!("{va}.fail_if_matches_regexp"),
                &v.fail_if_matches_regexp,
            )?;
            regexes(
                &format!("{va}.fail_if_all_match_regexp"),
                &v.fail_if_all_match_regexp,
            )?;
            regexes(
                &format!("{va}.fail_if_not_matches_regexp"),
                &v.fail_if_not_matches_regexp,
            )?;
            regexes(
                &format!("{va}.fail_if_none_matches_regexp"),
                &v.fail_if_none_matches_regexp,
            )?;
        }
        Ok(())
    }
}

/// A blackbox.yml: `modules:` only, as blackbox_exporter reads it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BlackboxFile {
    #[serde(default)]
    pub modules: BTreeMap<String, BlackboxModule>,
}

impl ModuleConfig for ProbeConfig {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn validate(&self) -> Result<(), ConfigIssue> {
        for (name, m) in &self.modules {
            m.validate(&format!("modules.{name}"))?;
        }
        for (i, t) in self.targets.iter().enumerate() {
            let at = format!("targets.{i}");
            if t.target.trim().is_empty() {
                return Err(ConfigIssue::at(&format!("{at}.target"), "an empty target"));
            }
            if !self.modules.contains_key(&t.module) && self.config_file.as_os_str().is_empty() {
                return Err(ConfigIssue::at(
                    &format!("{at}.module"),
                    format!("unknown module {:?}", t.module),
                ));
            }
            if t.interval.get() < std::time::Duration::from_secs(1) {
                return Err(ConfigIssue::at(&format!("{at}.interval"), "at least 1s"));
            }
            for k in t.labels.keys() {
                let valid = !k.is_empty()
                    && !k.starts_with(|c: char| c.is_ascii_digit())
                    && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid || k == "target" || k == "module" || k.starts_with("__") {
                    return Err(ConfigIssue::at(
                        &format!("{at}.labels.{k}"),
                        "not a usable label name (target and module are set by eos)",
                    ));
                }
            }
        }
        let a = &self.allow;
        for (field, list) in [("cidrs", &a.cidrs), ("deny_cidrs", &a.deny_cidrs)] {
            for (i, c) in list.iter().enumerate() {
                crate::allow::Cidr::parse(c)
                    .map_err(|e| ConfigIssue::at(&format!("allow.{field}.{i}"), e))?;
            }
        }
        regexes("allow.hosts", &a.hosts)?;
        regexes("allow.deny_hosts", &a.deny_hosts)?;
        if self.discovery.enabled && self.discovery.annotation.is_empty() {
            return Err(ConfigIssue::at("discovery.annotation", "must be set"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> Result<BlackboxFile, String> {
        let f: BlackboxFile = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
        for (name, m) in &f.modules {
            m.validate(&format!("modules.{name}"))
                .map_err(|e| format!("{}: {}", e.path.join("."), e.message))?;
        }
        Ok(f)
    }

    #[test]
    fn blackbox_example_modules_parse() {
        let f = file(
            r#"
modules:
  http_2xx:
    prober: http
    timeout: 5s
    http:
      valid_http_versions: ["HTTP/1.1", "HTTP/2.0"]
      valid_status_codes: []
      method: GET
      headers: {Accept-Language: en-US}
      follow_redirects: false
      fail_if_ssl: false
      fail_if_not_ssl: true
      fail_if_body_matches_regexp: ["Could not connect to database"]
      fail_if_header_matches:
        - header: Set-Cookie
          allow_missing: true
          regexp: '.*'
      tls_config:
        insecure_skip_verify: false
      preferred_ip_protocol: "ip4"
      ip_protocol_fallback: false
      basic_auth: {username: u, password_file: /etc/probe-password}
  tcp_connect_tls:
    prober: tcp
    tcp:
      tls: true
      query_response:
        - expect: "^SSH-2.0-"
        - send: "SSH-2.0-blackbox-ssh-check"
  icmp_ttl5:
    prober: icmp
    timeout: 5s
    icmp: {ttl: 5}
  dns_soa:
    prober: dns
    dns:
      query_name: "example.com"
      query_type: "SOA"
      validate_answer_rrs:
        fail_if_not_matches_regexp: ["example\\.com\\.\t.*\tIN\tSOA\t.*"]
"#,
        )
        .unwrap();
        let h = &f.modules["http_2xx"].http;
        assert!(!h.follows_redirects());
        assert!(!h.ip_protocol_fallback);
        assert_eq!(f.modules["icmp_ttl5"].icmp.ttl, 5);
        assert!(
            f.modules["icmp_ttl5"].icmp.ip_protocol_fallback,
            "blackbox's default"
        );
        assert!(
            f.modules["dns_soa"].dns.recursion_desired,
            "blackbox's default"
        );
        assert!(f.modules["tcp_connect_tls"].tcp.tls);
        // Reads back as itself (what /debug/config and debug=true show).
        let again: BlackboxFile =
            serde_yaml_ng::from_str(&serde_yaml_ng::to_string(&f).unwrap()).unwrap();
        assert_eq!(again, f);
    }

    #[test]
    fn unknown_and_unsupported_fields_are_named() {
        let e =
            file("modules:\n  m:\n    prober: http\n    http:\n      colour: red\n").unwrap_err();
        assert!(e.contains("unknown field `colour`"), "{e}");
        let e =
            file("modules:\n  m:\n    prober: http\n    http:\n      proxy_url: http://p:3128\n")
                .unwrap_err();
        assert_eq!(
            e,
            "modules.m.http.proxy_url: not supported by eos: HTTP proxies"
        );
        let e = file("modules:\n  m:\n    prober: grpc\n").unwrap_err();
        assert!(e.contains("grpc prober is not supported"), "{e}");
        let e = file("modules:\n  m:\n    prober: dns\n").unwrap_err();
        assert_eq!(
            e,
            "modules.m.dns.query_name: query name must be set for DNS module"
        );
        let e = file(
            "modules:\n  m:\n    prober: http\n    http: {fail_if_body_matches_regexp: ['(']}\n",
        )
        .unwrap_err();
        assert!(
            e.starts_with("modules.m.http.fail_if_body_matches_regexp.0:"),
            "{e}"
        );
        let e =
            file("modules:\n  m:\n    prober: dns\n    dns: {query_name: x, query_type: BOGUS}\n")
                .unwrap_err();
        assert_eq!(
            e,
            "modules.m.dns.query_type: query type 'BOGUS' is not valid"
        );
        let e = file("modules:\n  m:\n    prober: icmp\n    icmp: {ttl: 300}\n").unwrap_err();
        assert!(e.contains("ttl"), "{e}");
        let e = file("modules:\n  m:\n    prober: http\n    http: {body: a, body_file: /b}\n")
            .unwrap_err();
        assert!(e.contains("body_file"), "{e}");
    }

    #[test]
    fn section_checks() {
        let mut c = ProbeConfig::default();
        assert_eq!(c.validate(), Ok(()));
        c.targets.push(ScheduledTarget {
            target: "https://x".into(),
            module: "nope".into(),
            interval: Duration::from_secs(30),
            labels: BTreeMap::new(),
        });
        assert_eq!(c.validate().unwrap_err().path, ["targets", "0", "module"]);
        c.targets[0].module = "http_2xx".into();
        c.targets[0].labels.insert("target".into(), "x".into());
        assert_eq!(
            c.validate().unwrap_err().path,
            ["targets", "0", "labels", "target"]
        );
        c.targets[0].labels.clear();
        c.allow.cidrs.push("10.0.0.0/99".into());
        assert_eq!(c.validate().unwrap_err().path, ["allow", "cidrs", "0"]);
    }
}
