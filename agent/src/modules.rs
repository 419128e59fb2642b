//! The modules built into this agent, and the type-erased handle the supervisor uses for each.
//!
//! Adding a module is one line in the `modules!` list below: its name in the config file and
//! its [`ModuleDef`]. Everything else (config section, validation, flags, start/stop, shared
//! services, `/debug/<name>/`, `eos-agent describe`) follows from the definition.

use eos_module::{
    ConfigIssue, Module, ModuleConfig, ModuleContext, ModuleDef, ModuleError, Service,
};
use serde::Deserialize;

macro_rules! modules {
    ($($field:ident => $def:ty),* $(,)?) => {
        /// `modules:` — one section per built-in module, each owned by that module's crate.
        #[derive(Debug, Default, PartialEq, Deserialize, serde::Serialize)]
        #[serde(deny_unknown_fields)]
        pub struct ModulesConfig {
            $(
                #[serde(default)]
                pub $field: <$def as ModuleDef>::Config,
            )*
        }

        impl ModulesConfig {
            /// Hands a command-line flag to the module that knows it.
            pub fn apply_flag(&mut self, name: &str, value: Option<&str>) -> Result<(), String> {
                $(
                    if ModuleConfig::apply_flag(&mut self.$field, name, value)
                        .map_err(|e| {
                            // Name the flag once, whether or not the module did.
                            if e.starts_with(&format!("--{name}")) {
                                e
                            } else {
                                format!("--{name}: {e}")
                            }
                        })?
                    {
                        return Ok(());
                    }
                )*
                Err(format!("unknown flag --{name} (see --help)"))
            }
        }

        impl ModulesConfig {
            /// The first problem any section's [`ModuleConfig::validate`] finds, as
            /// (module, issue).
            pub fn validate(&self) -> Result<(), (&'static str, ConfigIssue)> {
                $(
                    ModuleConfig::validate(&self.$field)
                        .map_err(|e| (<$def as ModuleDef>::NAME, e))?;
                )*
                Ok(())
            }
        }

        /// Every module this build has, in a fixed order.
        pub fn registry() -> Vec<std::sync::Arc<dyn Registered>> {
            vec![$(
                std::sync::Arc::new(Entry::<$def> { get: |m| &m.$field }),
            )*]
        }

        /// Help for the module flags, gathered from the modules.
        pub fn flags_help() -> String {
            let mut s = String::new();
            $(
                let h = <$def as ModuleDef>::flags_help();
                if !h.is_empty() {
                    s.push('\n');
                    s.push_str(h.trim_end());
                    s.push('\n');
                }
            )*
            s
        }
    };
}

modules! {
    node => eos_node::NodeModule,
    containers => eos_containers::ContainersModule,
    logs => eos_logs::LogsModule,
    probe => eos_probe::ProbeModule,
    ping => eos_ping::PingModule,
    mtr => eos_mtr::MtrModule,
}

/// What `eos-agent describe` says of a module kind.
pub struct ModuleInfo {
    pub name: &'static str,
    pub enabled_by_default: bool,
    pub metric_prefixes: &'static [&'static str],
    pub flag_prefixes: &'static [&'static str],
}

/// What the supervisor needs of one module kind, without knowing its config type.
pub trait Registered: Send + Sync {
    fn name(&self) -> &'static str;
    fn enabled(&self, m: &ModulesConfig) -> bool;
    /// Whether this module's section differs between two configs.
    fn section_changed(&self, old: &ModulesConfig, new: &ModulesConfig) -> bool;
    fn start(&self, m: &ModulesConfig, ctx: &ModuleContext)
        -> Result<Box<dyn Module>, ModuleError>;
    /// The agent's shared services this kind uses.
    fn services(&self) -> &'static [Service] {
        &[]
    }
    /// The metric prefixes it owns (cheap: read on every scrape).
    fn metric_prefixes(&self) -> &'static [&'static str] {
        &[]
    }
    fn info(&self) -> ModuleInfo {
        ModuleInfo {
            name: self.name(),
            enabled_by_default: false,
            metric_prefixes: &[],
            flag_prefixes: &[],
        }
    }
}

struct Entry<D: ModuleDef> {
    get: fn(&ModulesConfig) -> &D::Config,
}

impl<D: ModuleDef> Registered for Entry<D> {
    fn name(&self) -> &'static str {
        D::NAME
    }
    fn enabled(&self, m: &ModulesConfig) -> bool {
        (self.get)(m).enabled()
    }
    fn section_changed(&self, old: &ModulesConfig, new: &ModulesConfig) -> bool {
        (self.get)(old) != (self.get)(new)
    }
    fn start(
        &self,
        m: &ModulesConfig,
        ctx: &ModuleContext,
    ) -> Result<Box<dyn Module>, ModuleError> {
        D::start((self.get)(m), ctx)
    }
    fn services(&self) -> &'static [Service] {
        D::SERVICES
    }
    fn metric_prefixes(&self) -> &'static [&'static str] {
        D::METRIC_PREFIXES
    }
    /// Builds a default config (node's compiles its patterns): for `describe`, not scrapes.
    fn info(&self) -> ModuleInfo {
        ModuleInfo {
            name: D::NAME,
            enabled_by_default: D::Config::default().enabled(),
            metric_prefixes: D::METRIC_PREFIXES,
            flag_prefixes: D::FLAG_PREFIXES,
        }
    }
}
