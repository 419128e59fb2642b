//! The agent's config file: `${VAR}` expansion, YAML parsing with `file:line: message` errors,
//! defaults, and the command-line overrides that node_exporter users pass.
//!
//! Each module owns its section's type (see `modules.rs`); this file only knows the top level,
//! and runs every section's `validate` once the file is parsed and the flags are applied, so
//! that a load, a reload and `check-config` refuse the same things.

use crate::keypath;
use crate::modules::ModulesConfig;
use eos_kube::KubeletConfig;
use eos_module::{Facts, HostPaths};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The config compiled into the binary, used when no `--config` is given.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.yaml");

/// The whole config file.
#[derive(Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub listen_address: ListenAddress,
    /// The Kubernetes node name; empty means the host name.
    #[serde(default)]
    pub node_name: String,
    #[serde(default)]
    pub host: HostConfig,
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// The node's kubelet, for pod metadata shared by the modules that label data with pods.
    #[serde(default)]
    pub kubelet: KubeletConfig,
    #[serde(default)]
    pub server: ServerConfig,
    #[serde(default)]
    pub modules: ModulesConfig,
    /// Deprecations found while loading, to log (not part of the config's identity).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

fn default_state_dir() -> PathBuf {
    "/var/lib/eos-agent".into()
}

/// `host:` — where the host's filesystems are mounted inside the agent's container.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
    pub rootfs: PathBuf,
    pub udev_data: PathBuf,
    pub log_dir: PathBuf,
}

impl Default for HostConfig {
    fn default() -> Self {
        let d = HostPaths::default();
        HostConfig {
            procfs: d.procfs,
            sysfs: d.sysfs,
            rootfs: d.rootfs,
            udev_data: d.udev_data,
            log_dir: d.log_dir,
        }
    }
}

/// `server:` — HTTP serving knobs.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// How long a scrape may take when Prometheus sends no
    /// `X-Prometheus-Scrape-Timeout-Seconds` (e.g. `curl`).
    #[serde(deserialize_with = "positive_timeout")]
    pub scrape_timeout: eos_module::Duration,
    /// Subtracted from Prometheus' scrape timeout so the answer arrives in time.
    pub scrape_timeout_offset: eos_module::Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            scrape_timeout: eos_module::Duration::from_secs(10),
            scrape_timeout_offset: eos_module::Duration::from_millis(500),
        }
    }
}

impl ServerConfig {
    /// The offset is taken off Prometheus' timeout: one as long as the default timeout would
    /// leave a `curl` scrape no time at all.
    fn validate(&self) -> Result<(), eos_module::ConfigIssue> {
        if self.scrape_timeout_offset.get() >= self.scrape_timeout.get() {
            return Err(eos_module::ConfigIssue::at(
                "scrape_timeout_offset",
                format!(
                    "{} must be less than scrape_timeout ({})",
                    self.scrape_timeout_offset, self.scrape_timeout
                ),
            ));
        }
        Ok(())
    }
}

/// `scrape_timeout`, which must be more than zero.
fn positive_timeout<'de, D: Deserializer<'de>>(d: D) -> Result<eos_module::Duration, D::Error> {
    let v = eos_module::Duration::deserialize(d)?;
    if v.get().is_zero() {
        return Err(serde::de::Error::custom(
            "scrape_timeout must be more than 0, e.g. 10s",
        ));
    }
    Ok(v)
}

/// A listen address, in the forms node_exporter (Go) accepts: `host:port`, `[v6]:port`,
/// `[0.0.0.0]:port` (as the community helm chart writes it), a host name, or `:port` for all
/// IPv4 interfaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListenAddress(pub SocketAddr);

impl Default for ListenAddress {
    fn default() -> Self {
        ListenAddress(SocketAddr::from(([0, 0, 0, 0], 9100)))
    }
}

impl std::str::FromStr for ListenAddress {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("invalid listen address {s:?}: expected host:port, e.g. 0.0.0.0:9100 or :9100")
        };
        let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() {
            return Ok(ListenAddress(SocketAddr::from(([0, 0, 0, 0], port))));
        }
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            return Ok(ListenAddress(SocketAddr::new(ip, port)));
        }
        let valid_name = host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
        if !valid_name {
            return Err(bad());
        }
        use std::net::ToSocketAddrs;
        let mut addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| format!("invalid listen address {s:?}: cannot resolve {host}: {e}"))?
            .collect();
        addrs.sort_by_key(|a| a.is_ipv6());
        addrs
            .into_iter()
            .next()
            .map(ListenAddress)
            .ok_or_else(|| format!("invalid listen address {s:?}: {host} has no address"))
    }
}

impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Serialize for ListenAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ListenAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor (rather than String then parse) keeps the key path in the error.
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ListenAddress;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a listen address such as 0.0.0.0:9100")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<ListenAddress, E> {
                s.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

/// Settings given on the command line; they win over the file on every (re)load.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Overrides {
    pub listen_address: Option<ListenAddress>,
    pub procfs: Option<PathBuf>,
    pub sysfs: Option<PathBuf>,
    pub rootfs: Option<PathBuf>,
    pub udev_data: Option<PathBuf>,
    /// Module flags such as `collector.cpu` or `no-collector.wifi`, with their values.
    pub module_flags: Vec<(String, Option<String>)>,
}

/// A config error, printed as `file:line: message` (or `file: message` without a line).
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigError {
    pub source: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.source, l, self.message),
            None => write!(f, "{}: {}", self.source, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Parses config text. `source` names it in errors (a path, or `<embedded default>`).
    pub fn parse(
        source: &str,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        check_shape(text).map_err(|(line, message)| ConfigError {
            source: source.to_string(),
            line,
            message,
        })?;
        let expanded = expand_env(text, env).map_err(|(line, message)| ConfigError {
            source: source.to_string(),
            line: Some(line),
            message,
        })?;
        // An empty file means "all defaults", as an empty YAML mapping would.
        let doc = if expanded.trim().is_empty() {
            "{}"
        } else {
            expanded.as_str()
        };
        let mut cfg = serde_yaml_ng::from_str::<Config>(doc).map_err(|e| yaml_error(source, &e))?;
        cfg.lift_deprecated(source, doc, text)?;
        Ok(cfg)
    }

    /// Moves `modules.containers.kubelet` (before the kubelet became a shared service) to the
    /// top-level `kubelet:`, with a warning; both at once is an error.
    /// `doc` is the parsed (expanded) text, `raw` the file as written, for line numbers.
    fn lift_deprecated(&mut self, source: &str, doc: &str, raw: &str) -> Result<(), ConfigError> {
        let Some(old) = self.modules.containers.kubelet.take() else {
            return Ok(());
        };
        let line = keypath::line_of(raw, &["modules", "containers", "kubelet"]);
        // Whether the top level has the key too, however the document is written.
        let top: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(doc).map_err(|e| yaml_error(source, &e))?;
        if top.get("kubelet").is_some() {
            return Err(ConfigError {
                source: source.to_string(),
                line,
                message: "modules.containers.kubelet and the top-level kubelet: are both set; keep only the top-level kubelet: section".into(),
            });
        }
        self.kubelet = old;
        let at = match line {
            Some(l) => format!("{source}:{l}"),
            None => source.to_string(),
        };
        self.warnings.push(format!(
            "{at}: modules.containers.kubelet is deprecated: move it to the top-level kubelet: section, which every module that needs pod metadata shares"
        ));
        Ok(())
    }

    /// Runs every module section's `validate`; the error points at the key's line in `text`.
    pub fn validate(&self, source: &str, text: &str) -> Result<(), ConfigError> {
        let server = self
            .server
            .validate()
            .map_err(|issue| (vec!["server".to_string()], issue));
        let kubelet = || {
            self.kubelet
                .validate()
                .map_err(|issue| (vec!["kubelet".to_string()], issue))
        };
        let modules = || {
            self.modules
                .validate()
                .map_err(|(module, issue)| (vec!["modules".to_string(), module.to_string()], issue))
        };
        server
            .and_then(|()| kubelet())
            .and_then(|()| modules())
            .map_err(|(mut path, issue)| {
                path.extend(issue.path.iter().cloned());
                let keys: Vec<&str> = path.iter().map(String::as_str).collect();
                ConfigError {
                    source: source.to_string(),
                    line: keypath::line_of(text, &keys),
                    message: format!("{}: {}", keys.join("."), issue.message),
                }
            })
    }

    /// Applies command-line overrides; an unknown module flag is an error.
    pub fn apply_overrides(&mut self, o: &Overrides) -> Result<(), String> {
        if let Some(a) = o.listen_address {
            self.listen_address = a;
        }
        let set = |dst: &mut PathBuf, v: &Option<PathBuf>| {
            if let Some(v) = v {
                *dst = v.clone();
            }
        };
        set(&mut self.host.procfs, &o.procfs);
        set(&mut self.host.sysfs, &o.sysfs);
        set(&mut self.host.rootfs, &o.rootfs);
        set(&mut self.host.udev_data, &o.udev_data);
        for (name, value) in &o.module_flags {
            self.modules.apply_flag(name, value.as_deref())?;
        }
        Ok(())
    }

    /// The node facts every module is started with; a change restarts the modules.
    pub fn facts(&self) -> Facts {
        let node_name = if self.node_name.is_empty() {
            hostname()
        } else {
            self.node_name.clone()
        };
        Facts {
            node_name,
            host: HostPaths {
                procfs: self.host.procfs.clone(),
                sysfs: self.host.sysfs.clone(),
                rootfs: self.host.rootfs.clone(),
                udev_data: self.host.udev_data.clone(),
                log_dir: self.host.log_dir.clone(),
            },
            state_root: self.state_dir.clone(),
            version: crate::build_info::VERSION,
            revision: crate::build_info::REVISION,
        }
    }
}

/// Where a config comes from, and how to read it again on reload.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigSource {
    Embedded,
    File(PathBuf),
}

impl ConfigSource {
    /// The source's current text, and its name for error messages.
    pub fn read(&self) -> Result<(String, String), ConfigError> {
        match self {
            ConfigSource::Embedded => Ok((
                "<embedded default>".to_string(),
                EMBEDDED_DEFAULT.to_string(),
            )),
            ConfigSource::File(p) => {
                let name = p.display().to_string();
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError {
                    source: name.clone(),
                    line: None,
                    message: format!("cannot read config file: {e}"),
                })?;
                Ok((name, text))
            }
        }
    }

    /// The directory to watch for changes (the ConfigMap mount), if any.
    pub fn watch_dir(&self) -> Option<&Path> {
        match self {
            ConfigSource::Embedded => None,
            ConfigSource::File(p) => p.parent().map(|d| {
                if d.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    d
                }
            }),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            ConfigSource::Embedded => "embedded default".into(),
            ConfigSource::File(p) => p.display().to_string(),
        }
    }
}

/// Reads, parses and applies overrides: everything a (re)load needs before touching modules.
pub fn load(source: &ConfigSource, overrides: &Overrides) -> Result<(Config, u64), ConfigError> {
    let (name, text) = source.read()?;
    let cfg = from_text(&name, &text, overrides)?;
    Ok((cfg, content_hash(text.as_bytes())))
}

/// Parses config text read from `name` (environment expanded), applies the overrides and
/// validates every module section.
pub fn from_text(name: &str, text: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
    let mut cfg = Config::parse(name, text, &|k| std::env::var(k).ok())?;
    cfg.apply_overrides(overrides)
        .map_err(|message| ConfigError {
            source: "command line".into(),
            line: None,
            message,
        })?;
    cfg.validate(name, text).map_err(|mut e| {
        // A key that is not in the file came from a flag.
        if e.line.is_none() && !overrides.module_flags.is_empty() {
            e.source = "command line".into();
        }
        e
    })?;
    Ok(cfg)
}

/// A stable 48-bit hash of the config text, exact as an f64 for `eos_agent_config_hash`.
pub fn content_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h >> 16
}

fn yaml_error(source: &str, e: &serde_yaml_ng::Error) -> ConfigError {
    let line = e.location().map(|l| l.line());
    let mut message = e.to_string();
    // serde_yaml_ng writes " at line L column C" into the text; the line we put in front, so
    // drop the mentions of that line and keep any other (e.g. where a quoted string began).
    if let Some(l) = line {
        let needle = format!(" at line {l} column ");
        while let Some(pos) = message.find(&needle) {
            let digits = message[pos + needle.len()..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            message.replace_range(pos..pos + needle.len() + digits, "");
        }
    }
    // serde names the Rust type it wanted ("expected struct ContainersConfig"); say what the
    // file should have instead.
    while let Some(pos) = message.find("expected struct ") {
        let name_len = message[pos + 16..]
            .bytes()
            .take_while(u8::is_ascii_alphanumeric)
            .count();
        message.replace_range(
            pos..pos + 16 + name_len,
            "expected a mapping of settings (key: value)",
        );
    }
    ConfigError {
        source: source.to_string(),
        line,
        message,
    }
}

/// Expands `${VAR}` and `${VAR:-default}` from the environment; `$$` is a literal `$`.
/// Comments (`#` at the start of a line or after a space, outside quotes) are left as they
/// are. Returns `(line, message)` for an unset variable or an unterminated `${`.
pub fn expand_env(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, (usize, String)> {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let (code, comment) = line.split_at(comment_start(line));
        expand_line(code, i + 1, env, &mut out)?;
        out.push_str(comment);
    }
    Ok(out)
}

/// Where a YAML comment starts in a line (the line's length if it has none).
fn comment_start(line: &str) -> usize {
    let (mut single, mut double, mut prev) = (false, false, b' ');
    for (i, b) in line.bytes().enumerate() {
        match b {
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            b'#' if !single && !double && (prev == b' ' || prev == b'\t' || i == 0) => return i,
            _ => {}
        }
        prev = b;
    }
    line.len()
}

fn expand_line(
    code: &str,
    line: usize,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
) -> Result<(), (usize, String)> {
    let (mut single, mut double) = (false, false);
    let mut i = 0;
    let b = code.as_bytes();
    while i < b.len() {
        match b[i] {
            b'\'' if !double => single = !single,
            b'"' if !single && (i == 0 || b[i - 1] != b'\\') => double = !double,
            b'$' if b.get(i + 1) == Some(&b'$') => {
                out.push('$');
                i += 2;
                continue;
            }
            b'$' if b.get(i + 1) == Some(&b'{') => {
                let r = &code[i + 2..];
                let end = r
                    .find('}')
                    .ok_or((line, "unterminated ${ in environment reference".to_string()))?;
                let inner = &r[..end];
                let (name, default) = match inner.split_once(":-") {
                    Some((n, d)) => (n, Some(d)),
                    None => (inner, None),
                };
                let valid = !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                if !valid {
                    return Err((line, format!("invalid environment variable name {name:?}")));
                }
                let value = match (env(name), default) {
                    (Some(v), Some(d)) if v.is_empty() => d.to_string(),
                    (Some(v), _) => v,
                    (None, Some(d)) => d.to_string(),
                    (None, None) => {
                        return Err((
                            line,
                            format!(
                                "environment variable {name} is not set (write ${{{name}:-default}} for a fallback)"
                            ),
                        ))
                    }
                };
                let after = i + 2 + end + 1;
                let whole = whole_scalar(&code[..i], &code[after..]);
                let quote = if double {
                    Quote::Double
                } else if single {
                    Quote::Single
                } else {
                    Quote::Plain { whole }
                };
                push_value(out, name, &value, quote).map_err(|m| (line, m))?;
                i = after;
                continue;
            }
            _ => {}
        }
        let ch = code[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    Ok(())
}

/// Where an `${VAR}` stands in the line, for how its value is written.
#[derive(Clone, Copy)]
enum Quote {
    Double,
    Single,
    /// Unquoted; `whole` when the reference is the entire value (`key: ${VAR}`).
    Plain {
        whole: bool,
    },
}

/// Whether a reference is a whole plain value: after `key: ` or `- ` (or a flow `[`, `{`, `,`)
/// and before the end of the line, a comment or a flow `,`/`]`/`}`.
fn whole_scalar(before: &str, after: &str) -> bool {
    let b = before.trim_end();
    let starts = b.is_empty()
        || b.ends_with(':')
        || b.ends_with('-') && b.trim_start() == "-"
        || b.ends_with(['[', '{', ',']);
    let a = after.trim_start();
    starts && (a.is_empty() || a.starts_with('#') || a.starts_with([',', ']', '}']))
}

/// Writes an environment value so that YAML reads it as the string it is: escaped inside
/// quotes, quoted when it is a whole plain value with YAML syntax in it, and an error naming
/// the variable when it is part of a plain value and would change the document's structure.
fn push_value(out: &mut String, name: &str, value: &str, quote: Quote) -> Result<(), String> {
    match quote {
        Quote::Double => {
            for c in value.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '"' => out.push_str("\\\""),
                    '\n' => out.push_str("\\n"),
                    '\t' => out.push_str("\\t"),
                    c => out.push(c),
                }
            }
        }
        Quote::Single => {
            if value.contains('\n') {
                return Err(format!(
                    "environment variable {name} holds a line break, which a single-quoted value cannot take; use \"${{{name}}}\""
                ));
            }
            out.push_str(&value.replace('\'', "''"));
        }
        Quote::Plain { whole } => {
            if !has_yaml_syntax(value) {
                out.push_str(value);
            } else if whole {
                out.push('"');
                push_value(out, name, value, Quote::Double)?;
                out.push('"');
            } else {
                return Err(format!(
                    "environment variable {name} holds YAML syntax ({value:?}) in the middle of a value; quote the whole value, e.g. \"...${{{name}}}...\""
                ));
            }
        }
    }
    Ok(())
}

/// Whether a plain (unquoted) YAML value would not read back as this string.
fn has_yaml_syntax(v: &str) -> bool {
    v.contains(": ")
        || v.contains(" #")
        || v.ends_with(':')
        || v.contains(['\n', '\t', '[', ']', '{', '}', ',', '"', '\''])
        || v.starts_with(['&', '*', '!', '|', '>', '%', '@', '`', '-', '?', ' '])
        || v.ends_with(' ')
}

/// The largest config file the agent reads.
pub const MAX_CONFIG_BYTES: usize = 1 << 20;
/// How deep mappings and lists may nest.
pub const MAX_NESTING: usize = 64;

/// Refuses text that is too big or nested too deep before the YAML parser sees it: a deeply
/// nested file makes the parser slow and its errors useless.
fn check_shape(text: &str) -> Result<(), (Option<usize>, String)> {
    if text.len() > MAX_CONFIG_BYTES {
        return Err((
            None,
            format!(
                "the file is {} bytes; the limit is {} (1 MiB)",
                text.len(),
                MAX_CONFIG_BYTES
            ),
        ));
    }
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    for (i, line) in text.lines().enumerate() {
        let code = &line[..comment_start(line)];
        let trimmed = code.trim_start();
        if trimmed.is_empty() {
            continue;
        }
        if flow == 0 {
            // Block nesting: a "- " item opens a level as an indent does.
            let mut indent = code.len() - trimmed.len();
            while indents.last().is_some_and(|&d| d > indent) {
                indents.pop();
            }
            if indents.last() != Some(&indent) {
                indents.push(indent);
            }
            let mut rest = trimmed;
            while let Some(r) = rest.strip_prefix("- ") {
                indent += 2;
                indents.push(indent);
                rest = r.trim_start();
            }
        }
        let (mut single, mut double) = (false, false);
        for c in code.bytes() {
            match c {
                b'\'' if !double => single = !single,
                b'"' if !single => double = !double,
                b'[' | b'{' if !single && !double => flow += 1,
                b']' | b'}' if !single && !double => flow = flow.saturating_sub(1),
                _ => {}
            }
            if indents.len() + flow > MAX_NESTING {
                break;
            }
        }
        if indents.len() + flow > MAX_NESTING {
            return Err((
                Some(i + 1),
                format!("nested more than {MAX_NESTING} levels deep"),
            ));
        }
    }
    Ok(())
}

/// The host name, for `node_name` when the config leaves it empty.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(k: &str) -> Option<String> {
        match k {
            "NODE_NAME" => Some("worker-3".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn embedded_default_parses() {
        let c = Config::parse("<embedded>", EMBEDDED_DEFAULT, &env).unwrap();
        assert_eq!(c.listen_address.to_string(), "0.0.0.0:9100");
    }

    /// Every key path of a YAML value, e.g. `modules.node.cpu.guest`.
    fn key_paths(v: &serde_yaml_ng::Value, prefix: &str, out: &mut Vec<String>) {
        if let Some(m) = v.as_mapping() {
            for (k, child) in m {
                let path = format!("{prefix}{}", k.as_str().unwrap_or("?"));
                out.push(path.clone());
                key_paths(child, &format!("{path}."), out);
            }
        }
    }

    #[test]
    fn the_embedded_default_is_complete_and_says_the_real_defaults() {
        // It says the defaults: the same config as an empty file (no NODE_NAME here).
        let no_env = |_: &str| None;
        let printed = Config::parse("<embedded>", EMBEDDED_DEFAULT, &no_env).unwrap();
        assert_eq!(printed, Config::parse("empty", "", &no_env).unwrap());
        // It is complete: every setting the agent has is in it.
        let all = serde_yaml_ng::to_value(&printed).unwrap();
        // A section commented out with `#` in column 0 followed by its indentation (`#  logs:`)
        // is shown as well: it is off by default, but its keys are documented there.
        let uncommented: String = EMBEDDED_DEFAULT
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if rest.starts_with("  ") => format!("{rest}\n"),
                _ => format!("{l}\n"),
            })
            .collect();
        let shown: serde_yaml_ng::Value = serde_yaml_ng::from_str(&uncommented).unwrap();
        let (mut want, mut have) = (Vec::new(), Vec::new());
        key_paths(&all, "", &mut want);
        key_paths(&shown, "", &mut have);
        let missing: Vec<&String> = want.iter().filter(|k| !have.contains(k)).collect();
        assert!(missing.is_empty(), "not in default.yaml: {missing:?}");
    }

    #[test]
    fn the_effective_config_reads_back_as_itself() {
        let text = "node_name: w\nkubelet: {insecure_skip_verify: true}\nmodules:\n  node:\n    collectors: {processes: true}\n    netdev: {device_include: '^eth'}\n    textfile: {directory: /x, max_bytes: 1kB}\n  containers: {pod_labels: [app], cgroup_root: /sys/fs/cgroup}\n";
        let c = Config::parse("f", text, &env).unwrap();
        let yaml = serde_yaml_ng::to_string(&c).unwrap();
        let again = Config::parse("effective", &yaml, &env).unwrap();
        assert_eq!(again, c, "{yaml}");
    }

    #[test]
    fn empty_file_is_all_defaults() {
        let c = Config::parse("f", "", &env).unwrap();
        assert_eq!(c.listen_address, ListenAddress::default());
        assert_eq!(c.state_dir, PathBuf::from("/var/lib/eos-agent"));
    }

    #[test]
    fn env_expansion() {
        assert_eq!(
            expand_env("a ${NODE_NAME} b", &env).unwrap(),
            "a worker-3 b"
        );
        assert_eq!(expand_env("${NOPE:-x}", &env).unwrap(), "x");
        assert_eq!(expand_env("${EMPTY:-x}", &env).unwrap(), "x");
        assert_eq!(expand_env("${EMPTY}", &env).unwrap(), "");
        assert_eq!(expand_env("cost $$5 $x", &env).unwrap(), "cost $5 $x");
        assert_eq!(
            expand_env("a\nb\n${NOPE}", &env).unwrap_err(),
            (
                3,
                "environment variable NOPE is not set (write ${NOPE:-default} for a fallback)"
                    .into()
            )
        );
        assert_eq!(expand_env("x\n${A", &env).unwrap_err().0, 2);
        assert!(expand_env("${A B}", &env).is_err());
        // Comments are not expanded; a `#` inside quotes or a word is not a comment.
        assert_eq!(
            expand_env("a: 1 # see ${NOPE}\n# ${NOPE}\n", &env).unwrap(),
            "a: 1 # see ${NOPE}\n# ${NOPE}\n"
        );
        assert_eq!(
            expand_env("u: \"x # ${NODE_NAME}\"\nv: a#${NODE_NAME}\n", &env).unwrap(),
            "u: \"x # worker-3\"\nv: a#worker-3\n"
        );
    }

    #[test]
    fn env_values_with_yaml_syntax_stay_strings() {
        let env = |k: &str| match k {
            "COLON" => Some("a: b".to_string()),
            "QUOTE" => Some("say \"hi\" it's".to_string()),
            "LIST" => Some("[x".to_string()),
            "PLAIN" => Some("worker-3".to_string()),
            _ => None,
        };
        let c = Config::parse("f", "node_name: ${COLON}\n", &env).unwrap();
        assert_eq!(c.node_name, "a: b");
        let c = Config::parse("f", "node_name: \"${QUOTE}\"\n", &env).unwrap();
        assert_eq!(c.node_name, "say \"hi\" it's");
        let c = Config::parse("f", "node_name: '${QUOTE}'\n", &env).unwrap();
        assert_eq!(c.node_name, "say \"hi\" it's");
        let c = Config::parse("f", "node_name: ${LIST} # note\n", &env).unwrap();
        assert_eq!(c.node_name, "[x");
        let c = Config::parse("f", "state_dir: /var/${PLAIN}/x\n", &env).unwrap();
        assert_eq!(c.state_dir, PathBuf::from("/var/worker-3/x"));
        let e = Config::parse("f", "state_dir: /var/${COLON}/x\n", &env).unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(
            e.message
                .starts_with("environment variable COLON holds YAML syntax"),
            "{e}"
        );
    }

    #[test]
    fn size_and_nesting_are_bounded() {
        let deep = "a:\n".to_string()
            + &(1..100)
                .map(|i| format!("{}k{i}:\n", " ".repeat(i * 2)))
                .collect::<String>();
        let e = Config::parse("f", &deep, &env).unwrap_err();
        assert_eq!(e.message, "nested more than 64 levels deep");
        assert_eq!(e.line, Some(65));
        let flow = format!("a: {}{}", "[".repeat(50_000), "]".repeat(50_000));
        let e = Config::parse("f", &flow, &env).unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (Some(1), "nested more than 64 levels deep")
        );
        let big = format!("# {}\n", "x".repeat(MAX_CONFIG_BYTES));
        let e = Config::parse("f", &big, &env).unwrap_err();
        assert!(e.message.contains("the limit is 1048576 (1 MiB)"), "{e}");
        // Lists of mappings count one level per item marker, and ordinary files pass.
        Config::parse(
            "f",
            "modules:\n  node:\n    collectors: {cpu: true}\n",
            &env,
        )
        .unwrap();
        Config::parse("f", EMBEDDED_DEFAULT, &env).unwrap();
    }

    #[test]
    fn type_errors_name_what_the_file_should_have() {
        let e = Config::parse("f", "modules:\n  containers: [\n", &env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "f:2: modules.containers: invalid type: sequence, expected a mapping of settings (key: value)"
        );
    }

    #[test]
    fn listen_address_forms() {
        assert_eq!(
            ":9100".parse::<ListenAddress>().unwrap().to_string(),
            "0.0.0.0:9100"
        );
        assert_eq!(
            "[::1]:80".parse::<ListenAddress>().unwrap().to_string(),
            "[::1]:80"
        );
        assert_eq!(
            "[0.0.0.0]:9100"
                .parse::<ListenAddress>()
                .unwrap()
                .to_string(),
            "0.0.0.0:9100"
        );
        assert_eq!(
            "localhost:9100".parse::<ListenAddress>().unwrap().0.port(),
            9100
        );
        assert!("localhost:9100"
            .parse::<ListenAddress>()
            .unwrap()
            .0
            .ip()
            .is_loopback());
        assert!("localhost".parse::<ListenAddress>().is_err());
        assert!("1.2.3.4:99999".parse::<ListenAddress>().is_err());
        assert!("bad host:80".parse::<ListenAddress>().is_err());
        assert!("[::1:80".parse::<ListenAddress>().is_err());
    }

    fn load(text: &str) -> Result<Config, ConfigError> {
        from_text("agent.yaml", text, &Overrides::default())
    }

    #[test]
    fn module_validation_points_at_the_line() {
        let e = load(
            "modules:\n  node:\n    netdev:\n      device_include: '^eth'\n      device_exclude: '^lo$'\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "agent.yaml:4: modules.node.netdev.device_include: device_include and device_exclude are mutually exclusive (--collector.netdev.device-include/-exclude)"
        );
        let e = load("modules:\n  containers: {pod_labels: [app, '']}\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "agent.yaml:2: modules.containers.pod_labels: an empty pod label name"
        );
        // Set by flags, the same conflict has no line in the file.
        let o = Overrides {
            module_flags: vec![
                ("collector.arp.device-include".into(), Some("^eth".into())),
                ("collector.arp.device-exclude".into(), Some("^lo$".into())),
            ],
            ..Overrides::default()
        };
        let e = from_text("agent.yaml", "", &o).unwrap_err();
        assert_eq!((e.source.as_str(), e.line), ("command line", None));
        assert!(
            e.message.starts_with("modules.node.arp.device_include: "),
            "{e}"
        );
    }

    #[test]
    fn the_offset_must_leave_time_to_scrape() {
        let e = load("server:\n  scrape_timeout: 2s\n  scrape_timeout_offset: 5s\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "agent.yaml:3: server.scrape_timeout_offset: 5s must be less than scrape_timeout (2s)"
        );
    }

    #[test]
    fn the_kubelet_section_is_validated() {
        let e = load("kubelet:\n  refresh_interval: 0s\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "agent.yaml:2: kubelet.refresh_interval: must be more than 0, e.g. 5s"
        );
        let e = load("{kubelet: {url: x}}").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("agent.yaml: kubelet.url: \"x\" is not"),
            "{e}"
        );
    }

    #[test]
    fn the_old_containers_kubelet_key_still_works() {
        let c =
            load("modules:\n  containers:\n    kubelet: {insecure_skip_verify: true}\n").unwrap();
        assert!(c.kubelet.insecure_skip_verify);
        assert_eq!(
            c.modules.containers.kubelet, None,
            "lifted to the top level"
        );
        assert_eq!(
            c.warnings,
            ["agent.yaml:3: modules.containers.kubelet is deprecated: move it to the top-level kubelet: section, which every module that needs pod metadata shares"]
        );
        let e = load(
            "kubelet: {enabled: false}\nmodules:\n  containers:\n    kubelet: {enabled: false}\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "agent.yaml:4: modules.containers.kubelet and the top-level kubelet: are both set; keep only the top-level kubelet: section"
        );
        // However the document is written.
        let e = load("{kubelet: {}, modules: {containers: {kubelet: {}}}}").unwrap_err();
        assert!(e.message.contains("are both set"), "{e}");
        let c = load("kubelet: {url: 'http://127.0.0.1:10255/pods'}\n").unwrap();
        assert_eq!(c.kubelet.url, "http://127.0.0.1:10255/pods");
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn hash_is_stable_and_fits_f64() {
        let h = content_hash(b"listen_address: :9100\n");
        assert_eq!(h, content_hash(b"listen_address: :9100\n"));
        assert_ne!(h, content_hash(b"listen_address: :9101\n"));
        assert!(h < (1 << 48));
    }
}
