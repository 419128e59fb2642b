//! `selinux`: whether SELinux is on (`node_selinux_enabled`) and, when it is, its configured
//! (`<rootfs>/etc/selinux/config`) and current (`<sysfs>/fs/selinux/enforce`) modes:
//! 1 enforcing, 0 permissive, -1 disabled.

use eos_exposition::{Encoder, Kind};

use crate::collector::{read_trimmed, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "selinux",
    default_enabled: true,
    build: |_, _| Ok(Box::new(SelinuxCollector)),
};

struct SelinuxCollector;

impl Collector for SelinuxCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let enforce_path = ctx.sys_path("fs/selinux/enforce");
        let Some(enforce) = read_trimmed(&enforce_path)? else {
            enc.single("node_selinux_enabled", ENABLED_HELP, Kind::Gauge, &[], 0.0);
            return Ok(());
        };
        let current: f64 = enforce.parse().map_err(|_| {
            format!(
                "reading {}: invalid mode {enforce:?}",
                enforce_path.display()
            )
        })?;
        let config_path = ctx.paths.rootfs.join("etc/selinux/config");
        let configured = match ctx.read_optional(&config_path)? {
            Some(text) => config_mode(text),
            None => -1.0,
        };
        enc.single("node_selinux_enabled", ENABLED_HELP, Kind::Gauge, &[], 1.0);
        enc.single(
            "node_selinux_config_mode",
            "Configured SELinux enforcement mode",
            Kind::Gauge,
            &[],
            configured,
        );
        enc.single(
            "node_selinux_current_mode",
            "Current SELinux enforcement mode",
            Kind::Gauge,
            &[],
            current,
        );
        Ok(())
    }
}

const ENABLED_HELP: &str = "SELinux is enabled, 1 is true, 0 is false";

/// The `SELINUX=` mode of `/etc/selinux/config`; anything but enforcing or permissive
/// (including no such line) counts as disabled, as libselinux reads it.
fn config_mode(text: &str) -> f64 {
    for line in text.lines() {
        let Some(value) = line.trim().strip_prefix("SELINUX=") else {
            continue;
        };
        return match value.trim().trim_matches('"') {
            "enforcing" => 1.0,
            "permissive" => 0.0,
            _ => -1.0,
        };
    }
    -1.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_modes() {
        let cfg = "# comment\nSELINUXTYPE=targeted\nSELINUX=enforcing\n";
        assert_eq!(config_mode(cfg), 1.0);
        assert_eq!(config_mode("SELINUX=permissive\n"), 0.0);
        assert_eq!(config_mode("SELINUX=disabled\n"), -1.0);
        assert_eq!(config_mode("SELINUX=\"enforcing\"\n"), 1.0);
        assert_eq!(config_mode("garbage"), -1.0);
        assert_eq!(config_mode(""), -1.0);
    }
}
