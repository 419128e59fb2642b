//! `eos-agent describe`: what this build has, as JSON, for tooling that must not restate it
//! (`cargo xtask manifests` checks the DaemonSet's flags, the ConfigMap's keys and which
//! source owns each metric the dashboards use).

use crate::build_info::{REVISION, VERSION};
use crate::cli::{FLAGS, IGNORED_FLAGS};
use crate::modules::registry;
use serde_json::{json, Value};

/// The top-level keys of the config file.
pub const CONFIG_KEYS: &[&str] = &[
    "listen_address",
    "node_name",
    "host",
    "state_dir",
    "kubelet",
    "server",
    "modules",
];

/// The metric prefixes of the agent's own families.
pub const AGENT_METRIC_PREFIXES: &[&str] = &["eos_agent_", "process_"];

/// Every module DESIGN.md names, built into this agent or not yet.
pub const PLANNED_MODULES: &[&str] = &["node", "containers", "logs", "probe", "ping", "mtr"];

/// Where each module's source lives, by the workspace's convention (`collectors/<name>`).
fn module_source(name: &str) -> String {
    format!("collectors/{name}")
}

pub fn describe() -> Value {
    let modules: Vec<Value> = registry()
        .iter()
        .map(|r| {
            let i = r.info();
            json!({
                "name": i.name,
                "enabled_by_default": i.enabled_by_default,
                "source": module_source(i.name),
                "metric_prefixes": i.metric_prefixes,
                "flag_prefixes": i.flag_prefixes,
            })
        })
        .collect();
    json!({
        "version": VERSION,
        "revision": REVISION,
        "config_keys": CONFIG_KEYS,
        "flags": FLAGS
            .iter()
            .map(|f| json!({"name": format!("--{}", f.name), "takes_value": f.takes_value}))
            .collect::<Vec<_>>(),
        "ignored_flags": IGNORED_FLAGS.iter().map(|f| format!("--{f}")).collect::<Vec<_>>(),
        "planned_modules": PLANNED_MODULES,
        "modules": modules,
        "agent": {"source": "agent/src", "metric_prefixes": AGENT_METRIC_PREFIXES},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EMBEDDED_DEFAULT;

    #[test]
    fn config_keys_are_the_embedded_defaults_keys() {
        let v: serde_yaml_ng::Value = serde_yaml_ng::from_str(EMBEDDED_DEFAULT).expect("yaml");
        let keys: Vec<&str> = v
            .as_mapping()
            .expect("mapping")
            .keys()
            .filter_map(|k| k.as_str())
            .collect();
        assert_eq!(keys, CONFIG_KEYS);
    }

    #[test]
    fn modules_and_owners() {
        let d = describe();
        let names: Vec<&str> = d["modules"]
            .as_array()
            .expect("modules")
            .iter()
            .filter_map(|m| m["name"].as_str())
            .collect();
        assert_eq!(
            names,
            ["node", "containers", "logs", "probe", "ping", "mtr"]
        );
        for n in &names {
            assert!(PLANNED_MODULES.contains(n));
            assert!(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("..")
                    .join(module_source(n))
                    .join("Cargo.toml")
                    .exists(),
                "{n}"
            );
        }
        assert_eq!(
            d["modules"][1]["metric_prefixes"][2],
            "eos_agent_containers_"
        );
        assert_eq!(d["modules"][0]["flag_prefixes"][0], "--collector.");
    }

    #[test]
    fn switches_take_no_value() {
        let d = describe();
        let flag = |name: &str| {
            d["flags"]
                .as_array()
                .expect("flags")
                .iter()
                .find(|f| f["name"] == name)
                .cloned()
        };
        assert_eq!(
            flag("--web.enable-lifecycle").map(|f| f["takes_value"].clone()),
            Some(json!(false))
        );
        assert_eq!(
            flag("--log.format").map(|f| f["takes_value"].clone()),
            Some(json!(true))
        );
        assert_eq!(
            flag("--web.max-requests").map(|f| f["takes_value"].clone()),
            Some(json!(true))
        );
        let ignored = d["ignored_flags"].as_array().expect("ignored_flags");
        assert!(!ignored.contains(&json!("--log.format")));
        assert!(!ignored.contains(&json!("--web.max-requests")));
    }
}
