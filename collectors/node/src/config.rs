//! The `modules.node` config section and node_exporter's command-line flags.
//!
//! ```yaml
//! modules:
//!   node:
//!     enabled: true
//!     collectors: {processes: true, cpufreq: false}   # on/off over the defaults
//!     filesystem: {mount_points_exclude: "^/(dev|proc|sys)($|/)"}
//! ```
//!
//! Every setting has node_exporter's default, and node_exporter's flags
//! (`--collector.<name>`, `--no-collector.<name>`, `--collector.disable-defaults`,
//! `--collector.filesystem.mount-points-exclude=RE`, ...) set the same fields, overriding the
//! file. Regexes use Go's `regexp.MatchString` semantics as node_exporter does: unanchored, so
//! the defaults carry their own `^...$`.

use eos_module::size::parse_byte_size;
use eos_module::{ConfigIssue, Duration, ModuleConfig};
use regex::Regex;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;

use crate::registry;

/// node_exporter's default for `--collector.filesystem.mount-points-exclude`.
const MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
/// node_exporter's default for `--collector.filesystem.fs-types-exclude`.
const FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";
/// node_exporter's default for `--collector.diskstats.device-exclude`.
const DISKSTATS_DEVICE_EXCLUDE: &str = "^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+$";
/// node_exporter's default for `--collector.vmstat.fields`.
const VMSTAT_FIELDS: &str = "^(oom_kill|pgpg|pswp|pg.*fault).*";
/// node_exporter's default for `--collector.netstat.fields`.
const NETSTAT_FIELDS: &str = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";

/// The `modules.node` section.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Whether the node module runs.
    pub enabled: bool,
    /// Start from no collectors instead of node_exporter's defaults
    /// (`--collector.disable-defaults`).
    pub disable_defaults: bool,
    /// Per-collector on/off over the defaults, e.g. `{processes: true, cpufreq: false}`.
    #[serde(deserialize_with = "collector_switches")]
    pub collectors: BTreeMap<String, bool>,
    /// `cpu` collector settings.
    pub cpu: CpuConfig,
    /// `stat` collector settings.
    pub stat: StatConfig,
    /// `filesystem` collector settings.
    pub filesystem: FilesystemConfig,
    /// `diskstats` collector settings.
    pub diskstats: DiskstatsConfig,
    /// `netclass` collector settings.
    pub netclass: NetclassConfig,
    /// `netdev` collector settings.
    pub netdev: NetdevConfig,
    /// `arp` device selection, like netdev's (`--collector.arp.device-include/exclude`).
    pub arp: NetdevConfig,
    /// `vmstat` collector settings.
    pub vmstat: FieldsConfig,
    /// `netstat` collector settings.
    pub netstat: FieldsConfig,
    /// `textfile` collector settings.
    pub textfile: TextfileConfig,
    /// `powersupplyclass` collector settings.
    pub powersupplyclass: PowersupplyConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            enabled: true,
            disable_defaults: false,
            collectors: BTreeMap::new(),
            cpu: CpuConfig::default(),
            stat: StatConfig::default(),
            filesystem: FilesystemConfig::default(),
            diskstats: DiskstatsConfig::default(),
            netclass: NetclassConfig::default(),
            netdev: NetdevConfig::default(),
            arp: NetdevConfig::default(),
            vmstat: FieldsConfig {
                fields: Pattern::new_static(VMSTAT_FIELDS),
            },
            netstat: FieldsConfig {
                fields: Pattern::new_static(NETSTAT_FIELDS),
            },
            textfile: TextfileConfig::default(),
            powersupplyclass: PowersupplyConfig::default(),
        }
    }
}

/// `cpu` collector settings.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CpuConfig {
    /// Export `node_cpu_guest_seconds_total` (`--collector.cpu.guest`, default on).
    pub guest: bool,
    /// Export `node_cpu_info` (`--collector.cpu.info`, default off).
    pub info: bool,
}

impl Default for CpuConfig {
    fn default() -> Self {
        CpuConfig {
            guest: true,
            info: false,
        }
    }
}

/// `stat` collector settings.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatConfig {
    /// Export `node_softirqs_total` per vector (`--collector.stat.softirq`, default off).
    pub softirq: bool,
}

/// `filesystem` collector settings.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesystemConfig {
    /// Mount points not reported.
    pub mount_points_exclude: Pattern,
    /// Filesystem types not reported.
    pub fs_types_exclude: Pattern,
    /// How long one `statfs` may take before the mount is reported as failing and skipped
    /// until it answers again (`--collector.filesystem.mount-timeout`).
    pub mount_timeout: Duration,
}

impl Default for FilesystemConfig {
    fn default() -> Self {
        FilesystemConfig {
            mount_points_exclude: Pattern::new_static(MOUNT_POINTS_EXCLUDE),
            fs_types_exclude: Pattern::new_static(FS_TYPES_EXCLUDE),
            mount_timeout: Duration::from_secs(5),
        }
    }
}

/// `diskstats` collector settings. `device_include`, when set, replaces the exclude.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiskstatsConfig {
    /// Devices not reported (default: partitions, ram, loop and floppy devices).
    pub device_exclude: Option<Pattern>,
    /// Only these devices are reported; replaces `device_exclude`.
    pub device_include: Option<Pattern>,
}

impl Default for DiskstatsConfig {
    fn default() -> Self {
        DiskstatsConfig {
            device_exclude: Some(Pattern::new_static(DISKSTATS_DEVICE_EXCLUDE)),
            device_include: None,
        }
    }
}

/// `netclass` collector settings.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetclassConfig {
    /// Devices not reported.
    pub ignored_devices: Pattern,
    /// Drop `node_network_speed_bytes` for devices reporting an invalid speed.
    pub ignore_invalid_speed: bool,
}

impl Default for NetclassConfig {
    fn default() -> Self {
        NetclassConfig {
            ignored_devices: Pattern::new_static("^$"),
            ignore_invalid_speed: false,
        }
    }
}

/// `netdev` collector settings (include and exclude are mutually exclusive; `validate` says so).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetdevConfig {
    /// Only these devices are reported.
    pub device_include: Option<Pattern>,
    /// Devices not reported.
    pub device_exclude: Option<Pattern>,
}

/// Settings of collectors that export a selection of a file's fields (vmstat, netstat).
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FieldsConfig {
    /// The fields exported, matched against the metric's name suffix.
    pub fields: Pattern,
}

/// `textfile` collector settings.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TextfileConfig {
    /// Directory of `*.prom` files; empty disables reading (node_exporter's default).
    pub directory: String,
    /// A larger file is skipped with `node_textfile_scrape_error 1`, and no more than this
    /// (plus one byte) is read of it (`--collector.textfile.max-bytes`, an eos extension;
    /// `0`: no limit). YAML takes bytes or a size such as `16MiB`.
    #[serde(deserialize_with = "eos_module::size::byte_size")]
    pub max_bytes: u64,
    /// A file with more series (sample lines) is skipped the same way
    /// (`--collector.textfile.max-series`, an eos extension; `0`: no limit).
    pub max_series: u64,
}

/// Default `max_bytes`: 16 MiB. At 50 to 150 bytes a line that is 100,000 to 300,000
/// series, so with ordinary lines `max_series` bites first; this bounds what one file may
/// hold in memory during a scrape however long its lines or comments are.
const TEXTFILE_MAX_BYTES: u64 = 16 << 20;
/// Default `max_series`: 100,000 sample lines, 30 to 100 times what a whole node exports
/// (the largest files of node_exporter's textfile scripts have thousands). Measured with
/// `cargo xtask bench textfile`: 80,000 series cost the agent about 50 ms of CPU and 25 MB at
/// the peak per scrape (node_exporter 0.4 s and 160 MB); a Prometheus that ingests that many
/// series from one node every scrape is the larger problem.
const TEXTFILE_MAX_SERIES: u64 = 100_000;

impl Default for TextfileConfig {
    fn default() -> Self {
        TextfileConfig {
            directory: String::new(),
            max_bytes: TEXTFILE_MAX_BYTES,
            max_series: TEXTFILE_MAX_SERIES,
        }
    }
}

/// `powersupplyclass` collector settings.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PowersupplyConfig {
    /// Power supplies not reported (`--collector.powersupply.ignored-supplies`).
    pub ignored_supplies: Pattern,
}

impl Default for PowersupplyConfig {
    fn default() -> Self {
        PowersupplyConfig {
            ignored_supplies: Pattern::new_static("^$"),
        }
    }
}

/// A regular expression from the config, kept with its source text (for `Debug` and
/// equality). Matching is unanchored, like Go's `regexp.MatchString`.
#[derive(Clone)]
pub struct Pattern {
    src: String,
    re: Regex,
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Pattern {
    /// Compiles `src`; the error says what is wrong with it.
    pub fn new(src: &str) -> Result<Self, String> {
        let re = Regex::new(src).map_err(|e| {
            // The syntax error's Display draws a caret under the pattern over several lines;
            // keep its last line, the reason, so the message fits on the `file:line:` line.
            let msg = e.to_string();
            let reason = msg
                .lines()
                .last()
                .unwrap_or("")
                .trim_start_matches("error: ");
            format!("invalid regex {src:?}: {reason}")
        })?;
        Ok(Pattern {
            src: src.to_string(),
            re,
        })
    }

    /// Compiles one of our own constant default patterns (all checked by `defaults_compile`).
    fn new_static(src: &'static str) -> Self {
        #[allow(clippy::expect_used)]
        Pattern::new(src).expect("built-in default pattern compiles")
    }

    /// Whether the pattern matches anywhere in `s`.
    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }

    /// The source text.
    pub fn as_str(&self) -> &str {
        &self.src
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.src == other.src
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.src, f)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Pattern::new(&s).map_err(de::Error::custom)
    }
}

fn collector_switches<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, bool>, D::Error> {
    let map = BTreeMap::<String, bool>::deserialize(d)?;
    for name in map.keys() {
        check_collector_name(name).map_err(de::Error::custom)?;
    }
    Ok(map)
}

fn check_collector_name(name: &str) -> Result<(), String> {
    if registry::ALL.iter().any(|d| d.name == name) {
        return Ok(());
    }
    let known: Vec<&str> = registry::ALL.iter().map(|d| d.name).collect();
    Err(format!(
        "unknown node collector {name:?} (known: {})",
        known.join(", ")
    ))
}

impl NodeConfig {
    /// Whether the collector called `name` runs, after defaults and overrides.
    pub(crate) fn collector_enabled(&self, name: &str, default_enabled: bool) -> bool {
        match self.collectors.get(name) {
            Some(&on) => on,
            None => default_enabled && !self.disable_defaults,
        }
    }
}

/// Collectors node_exporter 1.x has on Linux. Flags naming one that eos does not implement
/// are accepted (with a warning) so that existing DaemonSet arguments keep working.
const NODE_EXPORTER_COLLECTORS: &[&str] = &[
    "arp",
    "bcache",
    "bonding",
    "btrfs",
    "buddyinfo",
    "cgroups",
    "conntrack",
    "cpu",
    "cpufreq",
    "diskstats",
    "dmi",
    "drbd",
    "drm",
    "edac",
    "entropy",
    "ethtool",
    "fibrechannel",
    "filefd",
    "filesystem",
    "hwmon",
    "infiniband",
    "interrupts",
    "ipvs",
    "ksmd",
    "lnstat",
    "loadavg",
    "logind",
    "mdadm",
    "meminfo",
    "meminfo_numa",
    "mountstats",
    "netclass",
    "netdev",
    "netstat",
    "network_route",
    "nfs",
    "nfsd",
    "ntp",
    "nvme",
    "os",
    "perf",
    "powersupplyclass",
    "pressure",
    "processes",
    "qdisc",
    "rapl",
    "runit",
    "schedstat",
    "selinux",
    "slabinfo",
    "sockstat",
    "softirqs",
    "softnet",
    "stat",
    "supervisord",
    "sysctl",
    "systemd",
    "tapestats",
    "tcpstat",
    "textfile",
    "thermal_zone",
    "time",
    "timex",
    "udp_queues",
    "uname",
    "vmstat",
    "wifi",
    "xfs",
    "zfs",
    "zoneinfo",
];

/// How a `--[no-]collector.<rest>` flag that is not one of our settings is handled.
enum NeFlag {
    /// `<rest>` is one of our collectors.
    Ours,
    /// A node_exporter collector or per-collector setting we do not implement.
    NotImplemented,
}

fn node_exporter_flag(rest: &str) -> Result<NeFlag, String> {
    if registry::ALL.iter().any(|d| d.name == rest) {
        return Ok(NeFlag::Ours);
    }
    let collector = rest.split('.').next().unwrap_or(rest);
    // node_exporter's own prefixes for some settings differ from the collector name.
    let collector = match collector {
        "powersupply" => "powersupplyclass",
        "netclass_rtnl" => "netclass",
        "qdisk" => "qdisc",
        c => c,
    };
    if NODE_EXPORTER_COLLECTORS.contains(&collector) {
        return Ok(NeFlag::NotImplemented);
    }
    check_collector_name(rest)
        .map(|()| NeFlag::Ours)
        .map_err(|e| format!("--collector.{rest}: {e}"))
}

/// Parses a boolean flag value: no value means true, as with kingpin.
fn flag_bool(flag: &str, value: Option<&str>) -> Result<bool, String> {
    match value {
        None => Ok(true),
        Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(v) => Err(format!("--{flag}: expected true or false, got {v:?}")),
    }
}

fn flag_value<'v>(flag: &str, value: Option<&'v str>) -> Result<&'v str, String> {
    value.ok_or_else(|| format!("--{flag} needs a value (--{flag}=...)"))
}

fn flag_pattern(flag: &str, value: Option<&str>) -> Result<Pattern, String> {
    Pattern::new(flag_value(flag, value)?).map_err(|e| format!("--{flag}: {e}"))
}

/// An empty value unsets an optional pattern (node_exporter treats `""` as "not given").
fn flag_opt_pattern(flag: &str, value: Option<&str>) -> Result<Option<Pattern>, String> {
    match flag_value(flag, value)? {
        "" => Ok(None),
        v => Pattern::new(v)
            .map(Some)
            .map_err(|e| format!("--{flag}: {e}")),
    }
}

/// The flags [`NodeConfig::apply_flag`] accepts, for `--help`.
pub(crate) const FLAGS_HELP: &str = "\
node module (node_exporter-compatible flags):
  --collector.<name>, --no-collector.<name>   enable/disable one collector
  --collector.disable-defaults                start from no collectors
  --collector.cpu.guest / --no-collector.cpu.guest   node_cpu_guest_seconds_total (default on)
  --collector.cpu.info                        node_cpu_info (default off)
  --collector.stat.softirq                    node_softirqs_total per vector (default off)
  --collector.filesystem.mount-points-exclude=RE
  --collector.filesystem.fs-types-exclude=RE
  --collector.filesystem.mount-timeout=DURATION   (default 5s)
  --collector.diskstats.device-exclude=RE, --collector.diskstats.device-include=RE
  --collector.netclass.ignored-devices=RE, --collector.netclass.ignore-invalid-speed
  --collector.netdev.device-exclude=RE, --collector.netdev.device-include=RE
  --collector.arp.device-exclude=RE, --collector.arp.device-include=RE
  --collector.vmstat.fields=RE, --collector.netstat.fields=RE
  --collector.textfile.directory=DIR
  --collector.textfile.max-bytes=SIZE         eos: skip larger textfiles (default 16MiB, 0: no limit)
  --collector.textfile.max-series=N           eos: skip textfiles with more series (default 100000, 0: no limit)
  --collector.powersupply.ignored-supplies=RE
  Other node_exporter collector flags (e.g. --no-collector.wifi) are accepted and ignored.
";

impl ModuleConfig for NodeConfig {
    fn enabled(&self) -> bool {
        self.enabled
    }

    fn validate(&self) -> Result<(), ConfigIssue> {
        if self.filesystem.mount_timeout.get().is_zero() {
            return Err(ConfigIssue::at(
                "filesystem.mount_timeout",
                "must be more than 0 (every mount would time out), e.g. 5s",
            ));
        }
        for (name, c) in [("netdev", &self.netdev), ("arp", &self.arp)] {
            if c.device_include.is_some() && c.device_exclude.is_some() {
                return Err(ConfigIssue::at(
                    &format!("{name}.device_include"),
                    format!(
                        "device_include and device_exclude are mutually exclusive \
                         (--collector.{name}.device-include/-exclude)"
                    ),
                ));
            }
        }
        Ok(())
    }

    fn apply_flag(&mut self, name: &str, value: Option<&str>) -> Result<bool, String> {
        let (negated, rest) = match name.strip_prefix("no-collector.") {
            Some(rest) => (true, rest),
            None => match name.strip_prefix("collector.") {
                Some(rest) => (false, rest),
                None => return Ok(false),
            },
        };
        let bool_flag = |v: Option<&str>| flag_bool(name, v).map(|b| b != negated);
        match rest {
            "disable-defaults" => self.disable_defaults = bool_flag(value)?,
            "cpu.guest" => self.cpu.guest = bool_flag(value)?,
            "cpu.info" => self.cpu.info = bool_flag(value)?,
            "stat.softirq" => self.stat.softirq = bool_flag(value)?,
            "netclass.ignore-invalid-speed" => {
                self.netclass.ignore_invalid_speed = bool_flag(value)?
            }
            _ if negated => {
                if value.is_some() {
                    return Err(format!("--{name} takes no value"));
                }
                match node_exporter_flag(rest)? {
                    NeFlag::Ours => {
                        self.collectors.insert(rest.to_string(), false);
                    }
                    // Off already: nothing to do.
                    NeFlag::NotImplemented => {}
                }
            }
            "filesystem.mount-points-exclude" | "filesystem.ignored-mount-points" => {
                self.filesystem.mount_points_exclude = flag_pattern(name, value)?
            }
            "filesystem.fs-types-exclude" | "filesystem.ignored-fs-types" => {
                self.filesystem.fs_types_exclude = flag_pattern(name, value)?
            }
            "filesystem.mount-timeout" => {
                self.filesystem.mount_timeout = flag_value(name, value)?
                    .parse()
                    .map_err(|e| format!("--{name}: {e}"))?
            }
            "diskstats.device-exclude" | "diskstats.ignored-devices" => {
                self.diskstats.device_exclude = flag_opt_pattern(name, value)?
            }
            "diskstats.device-include" => {
                self.diskstats.device_include = flag_opt_pattern(name, value)?
            }
            "netclass.ignored-devices" => {
                self.netclass.ignored_devices = flag_pattern(name, value)?
            }
            "netdev.device-exclude" | "netdev.device-blacklist" => {
                self.netdev.device_exclude = flag_opt_pattern(name, value)?
            }
            "netdev.device-include" | "netdev.device-whitelist" => {
                self.netdev.device_include = flag_opt_pattern(name, value)?
            }
            "arp.device-exclude" => self.arp.device_exclude = flag_opt_pattern(name, value)?,
            "arp.device-include" => self.arp.device_include = flag_opt_pattern(name, value)?,
            "vmstat.fields" => self.vmstat.fields = flag_pattern(name, value)?,
            "netstat.fields" => self.netstat.fields = flag_pattern(name, value)?,
            "textfile.directory" => self.textfile.directory = flag_value(name, value)?.to_string(),
            "textfile.max-bytes" => {
                self.textfile.max_bytes = parse_byte_size(flag_value(name, value)?)
                    .map_err(|e| format!("--{name}: {e}"))?
            }
            "textfile.max-series" => {
                let v = flag_value(name, value)?;
                self.textfile.max_series = v
                    .parse()
                    .map_err(|_| format!("--{name}: {v:?} is not a whole number"))?
            }
            "powersupply.ignored-supplies" => {
                self.powersupplyclass.ignored_supplies = flag_pattern(name, value)?
            }
            other => match node_exporter_flag(other)? {
                NeFlag::Ours => {
                    let on = flag_bool(name, value)?;
                    self.collectors.insert(other.to_string(), on);
                }
                NeFlag::NotImplemented => tracing::warn!(
                    flag = name,
                    "node_exporter flag for a collector or setting eos does not implement: ignored"
                ),
            },
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(s: &str) -> Result<NodeConfig, String> {
        serde_yaml_ng::from_str(s).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_compile() {
        for src in [
            MOUNT_POINTS_EXCLUDE,
            FS_TYPES_EXCLUDE,
            DISKSTATS_DEVICE_EXCLUDE,
            VMSTAT_FIELDS,
            NETSTAT_FIELDS,
        ] {
            Pattern::new(src).unwrap();
        }
        let c = NodeConfig::default();
        assert_eq!(
            c.filesystem.mount_points_exclude.as_str(),
            MOUNT_POINTS_EXCLUDE
        );
        assert!(c.filesystem.mount_points_exclude.is_match("/proc/sys"));
        assert!(!c.filesystem.mount_points_exclude.is_match("/home"));
        assert!(c.vmstat.fields.is_match("pgfault"));
        assert!(!c.vmstat.fields.is_match("nr_free_pages"));
        assert!(c.netstat.fields.is_match("Tcp_CurrEstab"));
        assert!(!c.netstat.fields.is_match("Tcp_MaxConn"));
        let d = c.diskstats.device_exclude.as_ref().unwrap();
        assert!(d.is_match("sda1") && d.is_match("nvme0n1p2") && !d.is_match("nvme0n1"));
    }

    #[test]
    fn empty_section_is_default() {
        assert_eq!(yaml("{}").unwrap(), NodeConfig::default());
        assert!(NodeConfig::default().enabled);
    }

    #[test]
    fn file_settings() {
        let c = yaml(
            "enabled: true\ncollectors: {loadavg: false}\n\
             filesystem: {mount_points_exclude: '^/x', mount_timeout: 2s}\n\
             netdev: {device_include: '^eth'}\n",
        )
        .unwrap();
        assert!(!c.collector_enabled("loadavg", true));
        assert!(c.filesystem.mount_points_exclude.is_match("/x/y"));
        assert_eq!(c.filesystem.mount_timeout, Duration::from_secs(2));
        assert!(c.netdev.device_include.unwrap().is_match("eth0"));
    }

    #[test]
    fn file_errors() {
        let e = yaml("collectors: {nosuch: true}\n").unwrap_err();
        assert!(e.contains("unknown node collector \"nosuch\""), "{e}");
        let e = yaml("filesystem: {fs_types_exclude: '('}\n").unwrap_err();
        assert!(e.contains("invalid regex \"(\": unclosed group"), "{e}");
        assert!(yaml("bogus: 1\n").is_err());
        assert!(yaml("cpu: {guest: true, nope: 1}\n").is_err());
    }

    #[test]
    fn a_zero_mount_timeout_is_refused() {
        let c = yaml("filesystem: {mount_timeout: 0s}\n").unwrap();
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "filesystem.mount_timeout: must be more than 0 (every mount would time out), e.g. 5s"
        );
    }

    #[test]
    fn flags() {
        let mut c = NodeConfig::default();
        assert!(c.apply_flag("collector.disable-defaults", None).unwrap());
        assert!(!c.collector_enabled("loadavg", true));
        c.apply_flag("collector.loadavg", None).unwrap();
        assert!(c.collector_enabled("loadavg", true));
        c.apply_flag("no-collector.loadavg", None).unwrap();
        assert!(!c.collector_enabled("loadavg", true));
        c.apply_flag("collector.loadavg", Some("true")).unwrap();
        assert!(c.collector_enabled("loadavg", false));
        c.apply_flag("no-collector.cpu.guest", None).unwrap();
        assert!(!c.cpu.guest);
        c.apply_flag("collector.filesystem.fs-types-exclude", Some("^tmpfs$"))
            .unwrap();
        assert!(c.filesystem.fs_types_exclude.is_match("tmpfs"));
        c.apply_flag("collector.netdev.device-exclude", Some("^lo$"))
            .unwrap();
        assert!(c.netdev.device_exclude.as_ref().unwrap().is_match("lo"));
        c.apply_flag("collector.diskstats.device-exclude", Some(""))
            .unwrap();
        assert_eq!(c.diskstats.device_exclude, None);
        c.apply_flag("collector.textfile.directory", Some("/t"))
            .unwrap();
        assert_eq!(c.textfile.directory, "/t");
        c.apply_flag("collector.filesystem.mount-timeout", Some("1s"))
            .unwrap();
        assert_eq!(c.filesystem.mount_timeout, Duration::from_secs(1));
        // node_exporter flags for things eos does not implement are accepted and ignored,
        // so DaemonSet arguments such as --no-collector.wifi keep working.
        assert!(c.apply_flag("no-collector.wifi", None).unwrap());
        assert!(c.apply_flag("collector.systemd", None).unwrap());
        assert!(c.apply_flag("collector.netclass.netlink", None).unwrap());
        assert!(c
            .apply_flag("collector.systemd.unit-include", Some(".+"))
            .unwrap());
        assert!(!c.collectors.contains_key("wifi") && !c.collectors.contains_key("systemd"));
        assert!(!c.apply_flag("web.listen-address", Some(":1")).unwrap());
        assert!(!c.apply_flag("path.procfs", Some("/p")).unwrap());
    }

    #[test]
    fn textfile_limits() {
        let c = NodeConfig::default();
        assert_eq!(
            (c.textfile.max_bytes, c.textfile.max_series),
            (16 << 20, 100_000)
        );
        let c = yaml("textfile: {directory: /t, max_bytes: 1000, max_series: 5}\n").unwrap();
        assert_eq!((c.textfile.max_bytes, c.textfile.max_series), (1000, 5));
        let c = yaml("textfile: {max_bytes: 2MiB}\n").unwrap();
        assert_eq!(c.textfile.max_bytes, 2 << 20);
        let e = yaml("textfile: {max_bytes: 2 lots}\n").unwrap_err();
        assert!(e.contains("invalid size \"2 lots\""), "{e}");
        let mut c = NodeConfig::default();
        c.apply_flag("collector.textfile.max-bytes", Some("64kB"))
            .unwrap();
        c.apply_flag("collector.textfile.max-series", Some("0"))
            .unwrap();
        assert_eq!((c.textfile.max_bytes, c.textfile.max_series), (64_000, 0));
        let e = c
            .apply_flag("collector.textfile.max-bytes", Some("big"))
            .unwrap_err();
        assert!(
            e.starts_with("--collector.textfile.max-bytes: invalid size \"big\""),
            "{e}"
        );
        let e = c
            .apply_flag("collector.textfile.max-series", Some("1e5"))
            .unwrap_err();
        assert_eq!(
            e,
            "--collector.textfile.max-series: \"1e5\" is not a whole number"
        );
        assert!(FLAGS_HELP.contains("--collector.textfile.max-bytes=SIZE"));
    }

    #[test]
    fn flag_errors_name_the_flag() {
        let mut c = NodeConfig::default();
        let e = c
            .apply_flag("collector.vmstat.fields", Some("(["))
            .unwrap_err();
        assert!(
            e.starts_with("--collector.vmstat.fields: invalid regex"),
            "{e}"
        );
        let e = c.apply_flag("collector.nosuch", None).unwrap_err();
        assert!(e.contains("unknown node collector"), "{e}");
        let e = c.apply_flag("no-collector.nosuch", None).unwrap_err();
        assert!(e.contains("nosuch"), "{e}");
        let e = c.apply_flag("collector.nosuch.setting", None).unwrap_err();
        assert!(e.contains("unknown node collector"), "{e}");
        let e = c
            .apply_flag("collector.textfile.directory", None)
            .unwrap_err();
        assert!(e.contains("needs a value"), "{e}");
        let e = c
            .apply_flag("collector.loadavg", Some("maybe"))
            .unwrap_err();
        assert!(e.contains("true or false"), "{e}");
        let e = c
            .apply_flag("collector.filesystem.mount-timeout", Some("5"))
            .unwrap_err();
        assert!(e.contains("mount-timeout"), "{e}");
    }
}
