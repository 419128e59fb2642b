//! The `modules.node` config section and node_exporter's command-line flags, composed from
//! the collectors listed in `registry.rs`.
//!
//! ```yaml
//! modules:
//!   node:
//!     enabled: true
//!     collectors: {processes: true, cpufreq: false}   # on/off over the defaults
//!     filesystem: {mount_points_exclude: "^/(dev|proc|sys)($|/)"}
//! ```
//!
//! The section has the module's own switches (`enabled`, `disable_defaults`, `collectors`) and
//! one key per collector with settings, whose type, defaults, flags and help live in the
//! collector's file (see `settings.rs`). [`node_collectors!`] turns the list in `registry.rs`
//! into the list of collectors (`ALL`) and the `NodeConfig` struct; this file holds what does
//! not depend on the list. Every setting has node_exporter's default, and node_exporter's flags
//! (`--collector.<name>`, `--no-collector.<name>`, `--collector.disable-defaults`,
//! `--collector.filesystem.mount-points-exclude=RE`, ...) set the same fields, overriding the
//! file.

use serde::de::{self, Deserialize, Deserializer};
use std::collections::BTreeMap;

use crate::collector::BuildFn;
use crate::settings::Flag;

/// A collector as the registry lists it: its definition with the settings type erased.
pub(crate) struct Listed<C: 'static> {
    /// The node_exporter name: `--collector.<name>` and the `collector` label.
    pub(crate) name: &'static str,
    /// Whether node_exporter enables it without flags.
    pub(crate) default_enabled: bool,
    /// Builds the collector from its settings in the module config, once per module start.
    pub(crate) build: BuildFn<C>,
}

/// What [`node_collectors!`] generates for the module config, so that the flag handling here
/// works on it without naming it.
pub(crate) trait Composed: Sized + 'static {
    /// Every collector, in output order.
    fn all() -> &'static [Listed<Self>];
    /// `disable_defaults` and the per-collector switches.
    fn switches(&mut self) -> (&mut bool, &mut BTreeMap<String, bool>);
    /// Hands `flag` to the collector whose settings own `prefix`; `None` if none does.
    fn apply_settings_flag(
        &mut self,
        prefix: &str,
        flag: &Flag<'_>,
    ) -> Option<Result<bool, String>>;
    /// The `--help` lines of every collector's settings, in registry order.
    fn settings_help() -> String;
}

/// Lists a node module's collectors, in output order, and composes the module config from
/// them: `name` for a collector without settings, `name(Settings)` for one whose file has a
/// `Settings` type (its YAML key is `name`). Used once, in `registry.rs`.
macro_rules! node_collectors {
    (@settings $config:ident $name:ident) => { &() };
    (@settings $config:ident $name:ident $settings:ident) => { &$config.$name };
    ($($name:ident $(($settings:ident))?),* $(,)?) => {
        /// The `modules.node` section: the module's switches and, under its name, the
        /// settings of each collector that has some (see the collector's file).
        #[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct NodeConfig {
            /// Whether the node module runs.
            pub enabled: bool,
            /// Start from no collectors instead of node_exporter's defaults
            /// (`--collector.disable-defaults`).
            pub disable_defaults: bool,
            /// Per-collector on/off over the defaults, e.g. `{processes: true, cpufreq: false}`.
            #[serde(deserialize_with = "collector_switches")]
            pub collectors: std::collections::BTreeMap<String, bool>,
            $($(
                #[doc = concat!("`", stringify!($name), "` collector settings.")]
                pub(crate) $name: $crate::collectors::$name::$settings,
            )?)*
        }

        impl Default for NodeConfig {
            fn default() -> Self {
                NodeConfig {
                    enabled: true,
                    disable_defaults: false,
                    collectors: std::collections::BTreeMap::new(),
                    $($(
                        $name: $crate::collectors::$name::$settings::default(),
                    )?)*
                }
            }
        }

        fn collector_switches<'de, D: serde::Deserializer<'de>>(
            d: D,
        ) -> Result<std::collections::BTreeMap<String, bool>, D::Error> {
            $crate::config::collector_switches::<NodeConfig, D>(d)
        }

        impl $crate::config::Composed for NodeConfig {
            fn all() -> &'static [$crate::config::Listed<Self>] {
                &[$(
                    $crate::config::Listed {
                        name: $crate::collectors::$name::DEF.name,
                        default_enabled: $crate::collectors::$name::DEF.default_enabled,
                        build: |config, paths| {
                            let _ = config;
                            ($crate::collectors::$name::DEF.build)(
                                node_collectors!(@settings config $name $($settings)?),
                                paths,
                            )
                        },
                    },
                )*]
            }

            fn switches(&mut self) -> (&mut bool, &mut std::collections::BTreeMap<String, bool>) {
                (&mut self.disable_defaults, &mut self.collectors)
            }

            fn apply_settings_flag(
                &mut self,
                prefix: &str,
                flag: &$crate::settings::Flag<'_>,
            ) -> Option<Result<bool, String>> {
                use $crate::settings::CollectorSettings as _;
                $($(
                    if $crate::collectors::$name::$settings::FLAG_PREFIXES.contains(&prefix) {
                        return Some(self.$name.apply_flag(flag));
                    }
                )?)*
                let _ = (prefix, flag);
                None
            }

            fn settings_help() -> String {
                use $crate::settings::CollectorSettings as _;
                let mut help = String::new();
                $($(
                    help.push_str($crate::collectors::$name::$settings::HELP);
                )?)*
                help
            }
        }

        impl eos_module::ModuleConfig for NodeConfig {
            fn enabled(&self) -> bool {
                self.enabled
            }

            fn validate(&self) -> Result<(), eos_module::ConfigIssue> {
                use $crate::settings::CollectorSettings as _;
                $($(
                    <$crate::collectors::$name::$settings>::validate(&self.$name).map_err(|mut e| {
                        e.path.insert(0, stringify!($name).to_string());
                        e
                    })?;
                )?)*
                Ok(())
            }

            fn apply_flag(&mut self, name: &str, value: Option<&str>) -> Result<bool, String> {
                $crate::config::apply_flag(self, name, value)
            }
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
    };
}
pub(crate) use node_collectors;

/// Reads `collectors: {name: bool}`, refusing names that are not collectors.
pub(crate) fn collector_switches<'de, C: Composed, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, bool>, D::Error> {
    let map = BTreeMap::<String, bool>::deserialize(d)?;
    for name in map.keys() {
        check_collector_name::<C>(name).map_err(de::Error::custom)?;
    }
    Ok(map)
}

fn check_collector_name<C: Composed>(name: &str) -> Result<(), String> {
    if C::all().iter().any(|d| d.name == name) {
        return Ok(());
    }
    let known: Vec<&str> = C::all().iter().map(|d| d.name).collect();
    Err(format!(
        "unknown node collector {name:?} (known: {})",
        known.join(", ")
    ))
}

/// Collectors node_exporter 1.x (up to 1.12) has on Linux. Flags naming one that eos does not
/// implement are accepted (with a warning) so that existing DaemonSet arguments keep working.
const NODE_EXPORTER_COLLECTORS: &[&str] = &[
    "aer",
    "arp",
    "bcache",
    "bcachefs",
    "bonding",
    "btrfs",
    "buddyinfo",
    "cgroups",
    "conntrack",
    "cpu",
    "cpu_vulnerabilities",
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
    "kernel_hung",
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
    "pcidevice",
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
    "swap",
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
    "xfrm",
    "xfs",
    "zfs",
    "zoneinfo",
];

/// How a `--[no-]collector.<rest>` flag that is no collector's setting is handled.
enum NeFlag {
    /// `<rest>` is one of our collectors.
    Ours,
    /// A node_exporter collector or per-collector setting we do not implement.
    NotImplemented,
}

fn node_exporter_flag<C: Composed>(rest: &str) -> Result<NeFlag, String> {
    if C::all().iter().any(|d| d.name == rest) {
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
    check_collector_name::<C>(rest)
        .map(|()| NeFlag::Ours)
        .map_err(|e| format!("--collector.{rest}: {e}"))
}

/// The flags [`apply_flag`] accepts, for `--help`.
pub(crate) fn flags_help<C: Composed>() -> String {
    format!(
        "\
node module (node_exporter-compatible flags):
  --collector.<name>, --no-collector.<name>   enable/disable one collector
  --collector.disable-defaults                start from no collectors
{}  Other node_exporter collector flags (e.g. --no-collector.wifi) are accepted and ignored.
",
        C::settings_help()
    )
}

/// Applies one `--[no-]collector.…` flag to the config; `Ok(false)` if it is not a node flag.
pub(crate) fn apply_flag<C: Composed>(
    config: &mut C,
    name: &str,
    value: Option<&str>,
) -> Result<bool, String> {
    let (negated, rest) = match name.strip_prefix("no-collector.") {
        Some(rest) => (true, rest),
        None => match name.strip_prefix("collector.") {
            Some(rest) => (false, rest),
            None => return Ok(false),
        },
    };
    if let Some((prefix, key)) = rest.split_once('.') {
        let flag = Flag {
            name,
            key,
            negated,
            value,
        };
        match config.apply_settings_flag(prefix, &flag) {
            Some(Ok(true)) => return Ok(true),
            Some(Err(e)) => return Err(e),
            // Not a key of that collector: node_exporter may have it (warned below), or not.
            Some(Ok(false)) | None => {}
        }
    }
    let flag = Flag {
        name,
        key: rest,
        negated,
        value,
    };
    if rest == "disable-defaults" {
        *config.switches().0 = flag.bool()?;
        return Ok(true);
    }
    match node_exporter_flag::<C>(rest)? {
        NeFlag::Ours => {
            if negated && value.is_some() {
                return Err(format!("--{name} takes no value"));
            }
            let on = flag.bool()?;
            config.switches().1.insert(rest.to_string(), on);
        }
        // Off already: nothing to do.
        NeFlag::NotImplemented if negated => {}
        NeFlag::NotImplemented => tracing::warn!(
            flag = name,
            "node_exporter flag for a collector or setting eos does not implement: ignored"
        ),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use crate::registry::NodeConfig;
    use eos_module::{Duration, ModuleConfig};

    fn yaml(s: &str) -> Result<NodeConfig, String> {
        serde_yaml_ng::from_str(s).map_err(|e| e.to_string())
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
        assert!(!c.netdev.0.ignored("eth0") && c.netdev.0.ignored("lo"));
    }

    #[test]
    fn file_errors() {
        let e = yaml("collectors: {nosuch: true}\n").unwrap_err();
        assert!(e.contains("unknown node collector \"nosuch\""), "{e}");
        let e = yaml("filesystem: {fs_types_exclude: '('}\n").unwrap_err();
        assert!(e.contains("invalid regex \"(\": unclosed group"), "{e}");
        assert!(yaml("bogus: 1\n").is_err());
        assert!(yaml("cpu: {guest: true, nope: 1}\n").is_err());
        // A collector without settings has no section.
        assert!(yaml("loadavg: {}\n").is_err());
    }

    #[test]
    fn validation_names_the_collector_section() {
        let c = yaml("filesystem: {mount_timeout: 0s}\n").unwrap();
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "filesystem.mount_timeout: must be more than 0 (every mount would time out), e.g. 5s"
        );
        let c = yaml("arp: {device_include: a, device_exclude: b}\n").unwrap();
        assert_eq!(c.validate().unwrap_err().path, ["arp", "device_include"]);
    }

    #[test]
    fn module_flags() {
        let mut c = NodeConfig::default();
        assert!(c.apply_flag("collector.disable-defaults", None).unwrap());
        assert!(!c.collector_enabled("loadavg", true));
        c.apply_flag("collector.loadavg", None).unwrap();
        assert!(c.collector_enabled("loadavg", true));
        c.apply_flag("no-collector.loadavg", None).unwrap();
        assert!(!c.collector_enabled("loadavg", true));
        c.apply_flag("collector.loadavg", Some("true")).unwrap();
        assert!(c.collector_enabled("loadavg", false));
        // Settings flags reach the collector that owns them.
        c.apply_flag("no-collector.cpu.guest", None).unwrap();
        assert!(!c.cpu.guest);
        c.apply_flag("collector.filesystem.mount-timeout", Some("1s"))
            .unwrap();
        assert_eq!(c.filesystem.mount_timeout, Duration::from_secs(1));
        c.apply_flag("collector.powersupply.ignored-supplies", Some("^AC$"))
            .unwrap();
        assert!(c.powersupplyclass.ignored_supplies.is_match("AC"));
        // node_exporter flags for things eos does not implement are accepted and ignored,
        // so DaemonSet arguments such as --no-collector.wifi keep working.
        assert!(c.apply_flag("no-collector.wifi", None).unwrap());
        assert!(c.apply_flag("collector.netclass.netlink", None).unwrap());
        assert!(c
            .apply_flag("collector.cpu.flags-include", Some("x"))
            .unwrap());
        assert!(!c.collectors.contains_key("wifi"));
        assert!(!c.apply_flag("web.listen-address", Some(":1")).unwrap());
        assert!(!c.apply_flag("path.procfs", Some("/p")).unwrap());
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
        let e = c.apply_flag("no-collector.loadavg", Some("1")).unwrap_err();
        assert!(e.contains("takes no value"), "{e}");
        let e = c
            .apply_flag("collector.filesystem.mount-timeout", Some("5"))
            .unwrap_err();
        assert!(e.contains("mount-timeout"), "{e}");
    }

    #[test]
    fn help_lists_every_collectors_flags() {
        let help = super::flags_help::<NodeConfig>();
        for line in [
            "--collector.disable-defaults",
            "--collector.cpu.guest",
            "--collector.filesystem.mount-timeout=DURATION",
            "--collector.textfile.max-bytes=SIZE",
            "--collector.powersupply.ignored-supplies=RE",
            "--collector.arp.device-include=RE",
            "accepted and ignored",
        ] {
            assert!(help.contains(line), "{line} missing from:\n{help}");
        }
        assert!(help.lines().all(|l| l.len() <= 100), "{help}");
    }
}
