//! The modules built into this agent, and the type-erased handle the supervisor uses for each.
//!
//! Adding a module is one line in the `modules!` list below: its name in the config file and
//! its [`ModuleDef`]. Everything else (config section, flags, start/stop, `/debug/<name>/`)
//! follows from the definition.

use eos_module::{Module, ModuleConfig, ModuleContext, ModuleDef};
use serde::Deserialize;

macro_rules! modules {
    ($($field:ident => $def:ty),* $(,)?) => {
        /// `modules:` — one section per built-in module, each owned by that module's crate.
        #[derive(Debug, Default, PartialEq, Deserialize)]
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
                        .map_err(|e| format!("--{name}: {e}"))?
                    {
                        return Ok(());
                    }
                )*
                Err(format!("unknown flag --{name} (see --help)"))
            }
        }

        /// Every module this build has, in a fixed order.
        pub fn registry() -> Vec<Box<dyn Registered>> {
            vec![$(
                Box::new(Entry::<$def> { get: |m| &m.$field }),
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
}

/// What the supervisor needs of one module kind, without knowing its config type.
pub trait Registered: Send + Sync {
    fn name(&self) -> &'static str;
    fn enabled(&self, m: &ModulesConfig) -> bool;
    /// Whether this module's section differs between two configs.
    fn section_changed(&self, old: &ModulesConfig, new: &ModulesConfig) -> bool;
    fn start(&self, m: &ModulesConfig, ctx: &ModuleContext) -> Result<Box<dyn Module>, String>;
    /// The effective section, for `/debug/config` (secrets are redacted by their type).
    fn describe(&self, m: &ModulesConfig) -> String;
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
    fn start(&self, m: &ModulesConfig, ctx: &ModuleContext) -> Result<Box<dyn Module>, String> {
        D::start((self.get)(m), ctx)
    }
    fn describe(&self, m: &ModulesConfig) -> String {
        format!("{:#?}", (self.get)(m))
    }
}
