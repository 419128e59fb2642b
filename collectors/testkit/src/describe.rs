//! What an agent build says about itself: `eos-agent describe` prints one JSON object with its
//! version, config keys, flags, the modules it has and the ones planned (DESIGN.md), and for
//! the agent core and each module the source directory and the metric name prefixes it owns.
//! Checks take these from the agent instead of restating them.
//!
//! ```no_run
//! let d = eos_testkit::Description::of(std::path::Path::new("target/debug/eos-agent"))?;
//! assert_eq!(d.owner("eos_agent_containers_cgroups").map(|o| o.source), Some("collectors/containers"));
//! # Ok::<(), String>(())
//! ```

use serde::Deserialize;
use std::path::Path;
use std::process::Command;

/// The output of `eos-agent describe`. Fields not listed here are ignored.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Description {
    /// The agent's version.
    pub version: String,
    /// The source revision it was built from.
    pub revision: String,
    /// Top-level keys of the config file.
    pub config_keys: Vec<String>,
    /// The core's own flags.
    pub flags: Vec<Flag>,
    /// node_exporter flags accepted without effect; a value, if any, comes inline or as the
    /// next argument.
    pub ignored_flags: Vec<String>,
    /// Every module DESIGN.md names, built or not.
    pub planned_modules: Vec<String>,
    /// The modules in this build.
    pub modules: Vec<ModuleInfo>,
    /// The agent core.
    pub agent: Part,
}

/// A flag of the agent core.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Flag {
    /// With the dashes, e.g. `--config`.
    pub name: String,
    /// Whether it needs a value (`--flag=v` or `--flag v`).
    pub takes_value: bool,
}

/// A module in this build.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ModuleInfo {
    /// Its name, also its config section under `modules:`.
    pub name: String,
    /// Whether it runs when its section does not say.
    pub enabled_by_default: bool,
    /// Prefixes of the flags it takes, e.g. `--collector.`.
    pub flag_prefixes: Vec<String>,
    /// Its source directory and metrics.
    #[serde(flatten)]
    pub part: Part,
}

/// A part of the agent that exports metrics: where its source is, which names it owns.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Part {
    /// The source directory, relative to the workspace root.
    pub source: String,
    /// Prefixes of the metric names it exports.
    pub metric_prefixes: Vec<String>,
}

/// Who owns a metric name: the agent core or a module.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Owner<'a> {
    /// `agent` or the module's name.
    pub name: &'a str,
    /// The owner's source directory, relative to the workspace root.
    pub source: &'a str,
}

impl Description {
    /// Parses the JSON `eos-agent describe` prints.
    pub fn parse(json: &str) -> Result<Description, String> {
        serde_json::from_str(json).map_err(|e| format!("eos-agent describe: {e}"))
    }

    /// Runs `bin describe` and parses what it prints.
    pub fn of(bin: &Path) -> Result<Description, String> {
        let out = Command::new(bin)
            .arg("describe")
            .output()
            .map_err(|e| format!("running {} describe: {e}", bin.display()))?;
        if !out.status.success() {
            return Err(format!(
                "{} describe failed ({}): {} (an agent built before `describe` existed? rebuild it: cargo build -p eos-agent)",
                bin.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Description::parse(&String::from_utf8_lossy(&out.stdout))
            .map_err(|e| format!("{}: {e}", bin.display()))
    }

    /// The names of the modules in this build, in the agent's order.
    pub fn module_names(&self) -> Vec<String> {
        self.modules.iter().map(|m| m.name.clone()).collect()
    }

    /// The core flag called `name` (with the dashes).
    pub fn flag(&self, name: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.name == name)
    }

    /// Whether a module of this build takes flags starting like `flag` (e.g. `--collector.cpu`).
    pub fn is_module_flag(&self, flag: &str) -> bool {
        self.modules
            .iter()
            .flat_map(|m| &m.flag_prefixes)
            .any(|p| flag.starts_with(p.as_str()))
    }

    /// The owner of a metric name: the longest matching prefix over the agent's and every
    /// module's `metric_prefixes` (so `eos_agent_containers_*` belongs to the containers
    /// module, other `eos_agent_*` names to the core).
    pub fn owner(&self, metric: &str) -> Option<Owner<'_>> {
        let parts = std::iter::once(("agent", &self.agent))
            .chain(self.modules.iter().map(|m| (m.name.as_str(), &m.part)));
        parts
            .flat_map(|(name, part)| {
                part.metric_prefixes
                    .iter()
                    .filter(|p| metric.starts_with(p.as_str()))
                    .map(move |p| {
                        (
                            p.len(),
                            Owner {
                                name,
                                source: &part.source,
                            },
                        )
                    })
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, owner)| owner)
    }
}

/// An example of what `eos-agent describe` prints (node and containers built), for tests of
/// code that reads it.
pub const EXAMPLE: &str = r#"{
  "version": "0.1.0",
  "revision": "abc1234",
  "config_keys": ["listen_address","node_name","host","state_dir","kubelet","server","modules"],
  "flags": [{"name":"--config","takes_value":true},{"name":"--web.listen-address","takes_value":true},{"name":"--path.procfs","takes_value":true},{"name":"--path.sysfs","takes_value":true},{"name":"--path.rootfs","takes_value":true},{"name":"--path.udev.data","takes_value":true},{"name":"--log.level","takes_value":true}],
  "ignored_flags": ["--log.format","--web.disable-exporter-metrics","--web.max-requests","--web.telemetry-path","--web.systemd-socket","--runtime.gomaxprocs"],
  "planned_modules": ["node","containers","logs","probe","ping","mtr"],
  "modules": [
    {"name":"node","enabled_by_default":true,"source":"collectors/node","metric_prefixes":["node_"],"flag_prefixes":["--collector.","--no-collector."]},
    {"name":"containers","enabled_by_default":true,"source":"collectors/containers","metric_prefixes":["container_","machine_","eos_agent_containers_"],"flag_prefixes":[]}
  ],
  "agent": {"source":"agent/src","metric_prefixes":["eos_agent_","process_"]}
}"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_contract() {
        let d = Description::parse(EXAMPLE).unwrap();
        assert_eq!(
            (d.version.as_str(), d.revision.as_str()),
            ("0.1.0", "abc1234")
        );
        assert_eq!(d.module_names(), ["node", "containers"]);
        assert_eq!(d.planned_modules.len(), 6);
        assert_eq!(d.config_keys.len(), 7);
        assert!(d.flag("--config").is_some_and(|f| f.takes_value));
        assert_eq!(d.flag("--config.file"), None);
        assert!(d.ignored_flags.iter().any(|f| f == "--log.format"));
        assert!(d.is_module_flag("--collector.cpu"));
        assert!(d.is_module_flag("--no-collector.wifi"));
        assert!(!d.is_module_flag("--collectors"));
        assert_eq!(d.modules[1].part.source, "collectors/containers");
        assert!(d.modules[0].enabled_by_default);
    }

    #[test]
    fn owner_is_the_longest_prefix() {
        let d = Description::parse(EXAMPLE).unwrap();
        let owner = |m: &str| d.owner(m).map(|o| (o.name, o.source));
        assert_eq!(
            owner("eos_agent_containers_kubelet_refreshes_total"),
            Some(("containers", "collectors/containers"))
        );
        assert_eq!(owner("eos_agent_module_up"), Some(("agent", "agent/src")));
        assert_eq!(
            owner("process_cpu_seconds_total"),
            Some(("agent", "agent/src"))
        );
        assert_eq!(owner("node_load1"), Some(("node", "collectors/node")));
        assert_eq!(
            owner("machine_cpu_cores"),
            Some(("containers", "collectors/containers"))
        );
        assert_eq!(owner("kube_pod_info"), None);
        assert_eq!(owner("up"), None);
    }

    #[test]
    fn bad_output_is_an_error() {
        assert!(Description::parse("eos-agent 0.1.0")
            .unwrap_err()
            .starts_with("eos-agent describe: "));
        let missing = EXAMPLE.replace("\"planned_modules\"", "\"planned\"");
        assert!(Description::parse(&missing)
            .unwrap_err()
            .contains("planned_modules"));
    }

    #[test]
    fn a_binary_without_describe_says_to_rebuild() {
        let e = Description::of(Path::new("/bin/false")).unwrap_err();
        assert!(e.contains("rebuild it"), "{e}");
        let e = Description::of(Path::new("/nonexistent/eos-agent")).unwrap_err();
        assert!(
            e.starts_with("running /nonexistent/eos-agent describe: "),
            "{e}"
        );
    }
}
