//! `systemd`: unit states, restarts, sockets and timers from systemd's D-Bus API, with
//! node_exporter 1.12's families, labels, flags and defaults (off by default, as there):
//! `node_systemd_unit_state{name,state,type}`, `node_systemd_units{state}`,
//! `node_systemd_socket_*`, `node_systemd_timer_last_trigger_seconds`,
//! `node_systemd_system_running`, `node_systemd_version{version}`,
//! `node_systemd_virtualization_info`, and behind their flags
//! `node_systemd_service_restart_total`, `node_systemd_unit_start_time_seconds` and
//! `node_systemd_unit_tasks_{current,max}`. kube-prometheus's `NodeSystemdServiceFailed` and
//! `NodeSystemdServiceCrashlooping` alerts read the first and the restart counter.
//!
//! It talks to systemd over the host's system bus (`/run/dbus/system_bus_socket` under
//! `--path.rootfs`, so in the DaemonSet the host socket is reached through the read-only rootfs
//! mount with no mount of its own; `$DBUS_SYSTEM_BUS_ADDRESS`, as node_exporter's D-Bus library
//! has it, overrides), or straight to systemd's private socket (`/run/systemd/private` under
//! the rootfs) with `--collector.systemd.private` (root only; node_exporter calls it a testing
//! aid). `bus_address` (`--collector.systemd.bus-address`, an eos setting) names any other
//! address.
//!
//! - `systemd/bus.rs`: the connection, kept across scrapes and replaced when it breaks; every
//!   scrape bounded by the collector's deadline;
//! - `systemd/units.rs`: which units are reported (include/exclude, anchored, loaded only) and
//!   which properties are read for each;
//! - `systemd/manager.rs`: `Version`, `Virtualization` and `SystemState`;
//! - `systemd/families.rs`: the snapshot written as node_exporter's families.
//!
//! Done differently: node_exporter opens a new connection every scrape and reads units one
//! after the other in four goroutines; here one connection stays open and up to 32 property
//! reads are in flight at once. A bus that is absent, refuses or does not answer in time is a
//! collector error (`node_scrape_collector_success{collector="systemd"} 0`) whose message names
//! the address; node_exporter then still serves what it had sent before the error, eos drops the
//! collector's partial output as for any failed collector. A property whose value has another
//! type than systemd documents fails the collector with the unit and property named, where
//! node_exporter would panic. The deprecated `unit-whitelist`/`unit-blacklist` flags are
//! aliases of `unit-include`/`unit-exclude` (the last one given wins) rather than errors when
//! both are given.

mod bus;
mod families;
mod manager;
mod units;

use eos_exposition::Encoder;
use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::collector::{Collector, CollectorDef, Ctx};
use crate::pattern::Pattern;
use crate::settings::{CollectorSettings, Flag};

use self::bus::Bus;
use self::units::{Extras, UnitFilter};

pub(crate) const DEF: CollectorDef<Settings> = CollectorDef {
    name: "systemd",
    default_enabled: false,
    build: |settings, paths| Ok(Box::new(SystemdCollector::new(settings, &paths.rootfs)?)),
};
// Off by default, as in node_exporter: it needs the host's bus.
const _: () = assert!(!DEF.default_enabled);

/// node_exporter's default for `--collector.systemd.unit-include`.
const UNIT_INCLUDE: &str = ".+";
/// node_exporter's default for `--collector.systemd.unit-exclude`.
const UNIT_EXCLUDE: &str = ".+\\.(automount|device|mount|scope|slice)";
/// The system bus socket where node_exporter's D-Bus library finds it (under the rootfs
/// here), unless `$DBUS_SYSTEM_BUS_ADDRESS` says otherwise.
const SYSTEM_BUS: &str = "run/dbus/system_bus_socket";
/// systemd's own socket for direct connections (`--collector.systemd.private`).
const PRIVATE_SOCKET: &str = "run/systemd/private";

/// `modules.node.systemd`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settings {
    /// Units reported, anchored at both ends (`--collector.systemd.unit-include`, default `.+`).
    pub(crate) unit_include: Pattern,
    /// Units not reported, anchored (`--collector.systemd.unit-exclude`, default
    /// `.+\.(automount|device|mount|scope|slice)`).
    pub(crate) unit_exclude: Pattern,
    /// `node_systemd_unit_tasks_current`/`_max` (`--collector.systemd.enable-task-metrics`).
    pub(crate) enable_task_metrics: bool,
    /// `node_systemd_service_restart_total` (`--collector.systemd.enable-restarts-metrics`).
    pub(crate) enable_restarts_metrics: bool,
    /// `node_systemd_unit_start_time_seconds`
    /// (`--collector.systemd.enable-start-time-metrics`).
    pub(crate) enable_start_time_metrics: bool,
    /// Connect straight to systemd, not through the bus (`--collector.systemd.private`): to
    /// `/run/systemd/private` under the rootfs unless `bus_address` names another socket.
    /// Root only.
    pub(crate) private: bool,
    /// eos: the D-Bus address (`--collector.systemd.bus-address`); empty for the system bus
    /// (`$DBUS_SYSTEM_BUS_ADDRESS`, else `/run/dbus/system_bus_socket` under the rootfs).
    pub(crate) bus_address: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            unit_include: Pattern::new_static(UNIT_INCLUDE),
            unit_exclude: Pattern::new_static(UNIT_EXCLUDE),
            enable_task_metrics: false,
            enable_restarts_metrics: false,
            enable_start_time_metrics: false,
            private: false,
            bus_address: String::new(),
        }
    }
}

impl Settings {
    /// The address connected to, with `system_bus_env` the value of
    /// `$DBUS_SYSTEM_BUS_ADDRESS` and `rootfs` where the host's root is mounted.
    fn address(&self, system_bus_env: Option<&str>, rootfs: &Path) -> String {
        let under_rootfs = |socket: &str| format!("unix:path={}", rootfs.join(socket).display());
        if !self.bus_address.is_empty() {
            return self.bus_address.clone();
        }
        if self.private {
            return under_rootfs(PRIVATE_SOCKET);
        }
        match system_bus_env {
            Some(env) if !env.is_empty() => env.to_string(),
            _ => under_rootfs(SYSTEM_BUS),
        }
    }
}

impl CollectorSettings for Settings {
    const FLAG_PREFIXES: &'static [&'static str] = &["systemd"];
    const HELP: &'static str = concat!(
        "  --collector.systemd.unit-include=RE         units reported, anchored (default .+)\n",
        "  --collector.systemd.unit-exclude=RE         units left out, anchored\n",
        "                                              (default .+\\.(automount|device|mount|scope|slice))\n",
        "  --collector.systemd.enable-task-metrics     node_systemd_unit_tasks_current and _max\n",
        "  --collector.systemd.enable-restarts-metrics node_systemd_service_restart_total\n",
        "  --collector.systemd.enable-start-time-metrics   node_systemd_unit_start_time_seconds\n",
        "  --collector.systemd.private                 straight to systemd's /run/systemd/private (root)\n",
        "  --collector.systemd.bus-address=ADDR        eos: the D-Bus address (default\n",
        "                                              $DBUS_SYSTEM_BUS_ADDRESS, else the system bus)\n",
    );

    fn apply_flag(&mut self, flag: &Flag<'_>) -> Result<bool, String> {
        match flag.key {
            "unit-include" => self.unit_include = flag.pattern()?,
            "unit-exclude" => self.unit_exclude = flag.pattern()?,
            "unit-whitelist" | "unit-blacklist" => {
                tracing::warn!(
                    flag = flag.key,
                    "--collector.systemd.unit-whitelist and -blacklist are deprecated: use \
                     --collector.systemd.unit-include and -exclude"
                );
                let pattern = flag.pattern()?;
                if flag.key == "unit-whitelist" {
                    self.unit_include = pattern;
                } else {
                    self.unit_exclude = pattern;
                }
            }
            "enable-task-metrics" => self.enable_task_metrics = flag.bool()?,
            "enable-restarts-metrics" => self.enable_restarts_metrics = flag.bool()?,
            "enable-start-time-metrics" => self.enable_start_time_metrics = flag.bool()?,
            "private" => self.private = flag.bool()?,
            "bus-address" => self.bus_address = flag.value()?.to_string(),
            _ => return Ok(false),
        }
        Ok(true)
    }

    fn validate(&self) -> Result<(), eos_module::ConfigIssue> {
        UnitFilter::new(self.unit_include.as_str(), self.unit_exclude.as_str())
            .map_err(|e| eos_module::ConfigIssue::at("unit_include", e))?;
        if !self.bus_address.is_empty() {
            bus::check_address(&self.bus_address)
                .map_err(|e| eos_module::ConfigIssue::at("bus_address", e))?;
        }
        Ok(())
    }
}

/// The collector: the unit filter, the flagged families and the connection.
struct SystemdCollector {
    filter: UnitFilter,
    extras: Extras,
    bus: Bus,
}

impl SystemdCollector {
    fn new(settings: &Settings, rootfs: &Path) -> Result<SystemdCollector, String> {
        let env = std::env::var("DBUS_SYSTEM_BUS_ADDRESS").ok();
        let address = settings.address(env.as_deref(), rootfs);
        Ok(SystemdCollector {
            filter: UnitFilter::new(
                settings.unit_include.as_str(),
                settings.unit_exclude.as_str(),
            )?,
            extras: Extras {
                restarts: settings.enable_restarts_metrics,
                start_time: settings.enable_start_time_metrics,
                tasks: settings.enable_task_metrics,
            },
            bus: Bus::new(&address, settings.private)?,
        })
    }
}

impl Collector for SystemdCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let snap = self.bus.snapshot(&self.filter, self.extras, ctx.deadline)?;
        families::write(enc, &snap, self.extras);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_node_exporters() {
        let s = Settings::default();
        assert_eq!(s.unit_include.as_str(), ".+");
        assert_eq!(
            s.unit_exclude.as_str(),
            ".+\\.(automount|device|mount|scope|slice)"
        );
        assert!(!s.enable_task_metrics && !s.enable_restarts_metrics);
        assert!(!s.enable_start_time_metrics && !s.private);
        assert!(s.validate().is_ok());
    }

    #[test]
    fn the_address_follows_settings_then_the_environment() {
        let mut s = Settings::default();
        let host = Path::new("/");
        assert_eq!(
            s.address(None, host),
            "unix:path=/run/dbus/system_bus_socket"
        );
        assert_eq!(
            s.address(Some(""), host),
            "unix:path=/run/dbus/system_bus_socket"
        );
        // In the DaemonSet: the host's socket through the rootfs mount.
        assert_eq!(
            s.address(None, Path::new("/host/root")),
            "unix:path=/host/root/run/dbus/system_bus_socket"
        );
        assert_eq!(s.address(Some("unix:path=/x"), host), "unix:path=/x");
        s.private = true;
        assert_eq!(
            s.address(Some("unix:path=/x"), Path::new("/host/root")),
            "unix:path=/host/root/run/systemd/private"
        );
        s.bus_address = "unix:path=/elsewhere".into();
        assert_eq!(
            s.address(Some("unix:path=/x"), host),
            "unix:path=/elsewhere"
        );
    }

    #[test]
    fn a_bad_address_is_a_config_error() {
        let s = Settings {
            bus_address: "nonsense".into(),
            ..Settings::default()
        };
        let e = s.validate().unwrap_err().to_string();
        assert!(
            e.starts_with("bus_address: invalid D-Bus address \"nonsense\""),
            "{e}"
        );
    }

    #[test]
    fn building_connects_to_nothing() {
        // The bus is reached on the first scrape, not when the module starts.
        let s = Settings {
            bus_address: "unix:path=/nonexistent/eos-test-bus".into(),
            ..Settings::default()
        };
        assert!(SystemdCollector::new(&s, Path::new("/")).is_ok());
    }
}
