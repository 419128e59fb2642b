//! Command-line parsing.
//!
//! Hand-written rather than clap: node_exporter's flags are open-ended (`--collector.<name>`,
//! `--no-collector.<name>`, `--collector.<name>.<setting>=...`) and belong to modules the core
//! does not know, so every flag the core does not recognise is handed to the modules, which
//! accept or reject it (see `ModulesConfig::apply_flag`). Both `--flag=value` and
//! `--flag value` work, as with node_exporter's kingpin.

use crate::config::{ListenAddress, Overrides};
use crate::limits::DEFAULT_MAX_REQUESTS;
use crate::logging::LogFormat;
use std::path::PathBuf;

/// What the user asked for.
#[derive(Debug, PartialEq)]
pub enum Command {
    Run,
    CheckConfig(PathBuf),
    PrintDefaultConfig,
    Describe,
    Help,
    Version,
}

/// The parsed command line.
#[derive(Debug, PartialEq)]
pub struct Cli {
    pub command: Command,
    pub config: Option<PathBuf>,
    pub overrides: Overrides,
    pub log_level: tracing::Level,
    pub log_format: LogFormat,
    /// `--web.enable-lifecycle`: whether `POST /-/reload` works (as in Prometheus, off unless
    /// asked for; the ConfigMap watch and SIGHUP reload without it).
    pub lifecycle: bool,
    /// `--web.max-requests`: at most this many `/metrics` requests at once (0: no limit).
    pub max_requests: usize,
    /// node_exporter flags that are accepted but have no effect here, to log at start.
    pub ignored: Vec<String>,
}

/// A flag of the agent core, as `eos-agent describe` lists it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Flag {
    /// Without the dashes.
    pub name: &'static str,
    /// Whether it needs a value (`--flag=v` or `--flag v`); a switch takes none (`--flag`,
    /// or `--flag=true|false` inline).
    pub takes_value: bool,
}

const fn valued(name: &'static str) -> Flag {
    Flag {
        name,
        takes_value: true,
    }
}

/// The flags the agent itself takes, for `eos-agent describe`; module flags come from the
/// modules' `FLAG_PREFIXES`.
pub const FLAGS: &[Flag] = &[
    valued("config"),
    valued("web.listen-address"),
    valued("path.procfs"),
    valued("path.sysfs"),
    valued("path.rootfs"),
    valued("path.udev.data"),
    valued("log.level"),
    valued("log.format"),
    valued("web.max-requests"),
    Flag {
        name: "web.enable-lifecycle",
        takes_value: false,
    },
];

/// node_exporter's own flags that DaemonSets commonly pass and that make no difference to
/// what eos serves, so they are accepted with a warning instead of stopping the agent.
pub const IGNORED_FLAGS: &[&str] = &[
    "web.disable-exporter-metrics",
    "web.telemetry-path",
    "web.systemd-socket",
    "runtime.gomaxprocs",
];

pub fn help() -> String {
    format!(
        "\
eos-agent {version}: one per-node agent for Kubernetes observability (host and container
metrics, probes, pod logs), serving Prometheus on one port.

usage:
  eos-agent [flags]                     run on this host (embedded default config unless --config)
  eos-agent check-config FILE [flags]   validate FILE; prints `file:line: problem`, exits 1 if bad
  eos-agent print-default-config        print the embedded default config (a commented reference)
  eos-agent describe                    print what this build has as JSON: flags, config keys,
                                        modules with their metric prefixes (for tooling)
  eos-agent --help | --version

flags:
  --config FILE                 YAML config, normally the ConfigMap at /etc/eos-agent/agent.yaml;
                                watched for changes and re-read on SIGHUP; ${{VAR}} and
                                ${{VAR:-default}} expand from the environment.
  --web.listen-address ADDR     where to serve (default 0.0.0.0:9100; also :9100, [::]:9100,
                                [0.0.0.0]:9100, localhost:9100)
  --web.enable-lifecycle        allow POST /-/reload (off by default, as in Prometheus: without
                                it the answer is 403; the file watch and SIGHUP need no endpoint)
  --web.max-requests N          at most N /metrics requests at once, more get 503 (default 40;
                                0: no limit)
  --path.procfs DIR             host procfs (default /proc; /host/proc in the DaemonSet)
  --path.sysfs DIR              host sysfs (default /sys)
  --path.rootfs DIR             host root filesystem (default /)
  --path.udev.data DIR          udev database (default /run/udev/data)
  --log.level LEVEL             debug, info (default), warn or error
  --log.format FORMAT           logfmt (default: text lines, fields as key=value) or json (one
                                object per line)
Flags override the config file, on start and on every reload. node_exporter's
--web.disable-exporter-metrics, --web.telemetry-path=/metrics and --web.systemd-socket are
accepted and have no effect.

modules in this build: {names}
{modules}
endpoints:
  /metrics        all enabled modules (Prometheus text; OpenMetrics when asked)
  /               status page          /healthz, /readyz   liveness, readiness
  /-/reload       POST to reload (with --web.enable-lifecycle)
  /debug/config   effective config, secrets redacted
  /debug/<module>/...                  per-module details
",
        version = crate::build_info::VERSION,
        modules = crate::modules::flags_help(),
        names = crate::modules::registry()
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Cli, String> {
    let mut args: Vec<String> = args.into_iter().collect();
    let mut command = Command::Run;
    match args.first().map(String::as_str) {
        Some("check-config") => {
            args.remove(0);
            if args.is_empty() || args[0].starts_with('-') {
                return Err("check-config needs a FILE".into());
            }
            command = Command::CheckConfig(PathBuf::from(args.remove(0)));
        }
        Some("print-default-config") => {
            args.remove(0);
            command = Command::PrintDefaultConfig;
        }
        Some("describe") => {
            args.remove(0);
            command = Command::Describe;
        }
        Some(other) if !other.starts_with('-') => {
            return Err(format!("unknown command {other:?} (see --help)"));
        }
        _ => {}
    }
    let mut cli = Cli {
        command,
        config: None,
        overrides: Overrides::default(),
        log_level: tracing::Level::INFO,
        log_format: LogFormat::default(),
        lifecycle: false,
        max_requests: DEFAULT_MAX_REQUESTS,
        ignored: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            return Err(format!("unexpected argument {arg:?} (see --help)"));
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (flag.to_string(), None),
        };
        // Takes the flag's value: `--x=v`, or the next argument unless it is another flag.
        let mut value = |required: bool| -> Result<Option<String>, String> {
            if inline.is_some() {
                return Ok(inline.clone());
            }
            match args.get(i) {
                Some(next) if !next.starts_with('-') => {
                    i += 1;
                    Ok(Some(next.clone()))
                }
                _ if required => Err(format!("--{name} needs a value")),
                _ => Ok(None),
            }
        };
        let req = |v: Result<Option<String>, String>| v.map(Option::unwrap_or_default);
        match name.as_str() {
            "h" | "help" => cli.command = Command::Help,
            "version" => cli.command = Command::Version,
            "config" | "config.file" => cli.config = Some(req(value(true))?.into()),
            "web.listen-address" => {
                cli.overrides.listen_address = Some(req(value(true))?.parse::<ListenAddress>()?);
            }
            "path.procfs" => cli.overrides.procfs = Some(req(value(true))?.into()),
            "path.sysfs" => cli.overrides.sysfs = Some(req(value(true))?.into()),
            "path.rootfs" => cli.overrides.rootfs = Some(req(value(true))?.into()),
            "path.udev.data" => cli.overrides.udev_data = Some(req(value(true))?.into()),
            "log.level" => {
                cli.log_level = match req(value(true))?.as_str() {
                    "debug" => tracing::Level::DEBUG,
                    "info" => tracing::Level::INFO,
                    "warn" => tracing::Level::WARN,
                    "error" => tracing::Level::ERROR,
                    other => {
                        return Err(format!(
                            "--log.level: unknown level {other:?} (debug, info, warn, error)"
                        ))
                    }
                }
            }
            "log.format" => cli.log_format = req(value(true))?.parse()?,
            "web.max-requests" => {
                let v = req(value(true))?;
                cli.max_requests = v.parse().map_err(|_| {
                    format!("--web.max-requests: {v:?} is not a number of requests (0: no limit)")
                })?;
            }
            // A switch: its value, if any, only inline, so `--web.enable-lifecycle --config f`
            // and `--web.enable-lifecycle=false` both read as meant.
            "web.enable-lifecycle" => cli.lifecycle = switch(&name, inline.as_deref())?,
            "no-web.enable-lifecycle" if inline.is_none() => cli.lifecycle = false,
            "web.config.file" => {
                return Err(
                    "--web.config.file (TLS, basic auth) is not supported: put a proxy or \
                     kube-rbac-proxy in front of the agent"
                        .into(),
                )
            }
            n if IGNORED_FLAGS.contains(&n) => {
                let v = value(false)?;
                if n == "web.telemetry-path" && v.as_deref().is_some_and(|p| p != "/metrics") {
                    return Err("--web.telemetry-path: eos serves metrics at /metrics only".into());
                }
                cli.ignored.push(name.clone());
            }
            _ => {
                let v = value(false)?;
                cli.overrides.module_flags.push((name, v));
            }
        }
    }
    Ok(cli)
}

/// The value of a switch given as `--name` or `--name=true|false`.
fn switch(name: &str, inline: Option<&str>) -> Result<bool, String> {
    match inline {
        None | Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(other) => Err(format!(
            "--{name} is a switch: give it alone, or as --{name}=true or --{name}=false, not {other:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Cli, String> {
        parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn run_with_node_exporter_flags() {
        let c = p(&[
            "--web.listen-address=:9200",
            "--path.procfs",
            "/host/proc",
            "--collector.textfile.directory=/x",
            "--no-collector.wifi",
            "--log.level",
            "debug",
        ])
        .unwrap();
        assert_eq!(c.command, Command::Run);
        assert_eq!(
            c.overrides.listen_address.unwrap().to_string(),
            "0.0.0.0:9200"
        );
        assert_eq!(c.overrides.procfs, Some("/host/proc".into()));
        assert_eq!(
            c.overrides.module_flags,
            vec![
                ("collector.textfile.directory".into(), Some("/x".into())),
                ("no-collector.wifi".into(), None),
            ]
        );
        assert_eq!(c.log_level, tracing::Level::DEBUG);
    }

    #[test]
    fn node_exporter_flags_without_effect_are_accepted() {
        let c = p(&[
            "--web.disable-exporter-metrics",
            "--web.telemetry-path=/metrics",
            "--runtime.gomaxprocs",
            "2",
        ])
        .unwrap();
        assert_eq!(
            c.ignored,
            vec![
                "web.disable-exporter-metrics",
                "web.telemetry-path",
                "runtime.gomaxprocs"
            ]
        );
        assert!(c.overrides.module_flags.is_empty());
        assert!(p(&["--web.telemetry-path=/m"]).is_err());
        assert!(p(&["--web.config.file=/x.yml"])
            .unwrap_err()
            .contains("not supported"));
    }

    #[test]
    fn web_and_log_flags() {
        let c = p(&[]).unwrap();
        assert!(!c.lifecycle, "lifecycle endpoints are off unless asked for");
        assert_eq!(c.max_requests, 40, "node_exporter's default");
        assert_eq!(c.log_format, LogFormat::Logfmt);

        let c = p(&[
            "--web.enable-lifecycle",
            "--config",
            "a.yaml",
            "--web.max-requests",
            "3",
            "--log.format=json",
        ])
        .unwrap();
        assert!(c.lifecycle);
        assert_eq!(
            c.config,
            Some("a.yaml".into()),
            "a switch takes no next argument"
        );
        assert_eq!(c.max_requests, 3);
        assert_eq!(c.log_format, LogFormat::Json);
        assert!(c.ignored.is_empty());

        assert!(p(&["--web.enable-lifecycle=true"]).unwrap().lifecycle);
        assert!(!p(&["--web.enable-lifecycle=false"]).unwrap().lifecycle);
        assert!(
            !p(&["--web.enable-lifecycle", "--no-web.enable-lifecycle"])
                .unwrap()
                .lifecycle
        );
        assert!(p(&["--web.enable-lifecycle=yes"])
            .unwrap_err()
            .contains("is a switch"));
        assert!(p(&["--web.enable-lifecycle", "stray"])
            .unwrap_err()
            .contains("unexpected argument"));
        assert_eq!(p(&["--web.max-requests=0"]).unwrap().max_requests, 0);
        assert!(p(&["--web.max-requests=-1"])
            .unwrap_err()
            .contains("not a number of requests"));
        assert_eq!(
            p(&["--log.format", "logfmt"]).unwrap().log_format,
            LogFormat::Logfmt
        );
        assert!(p(&["--log.format=text"])
            .unwrap_err()
            .contains("unknown format"));
    }

    #[test]
    fn every_listed_flag_is_parsed_by_the_core() {
        for f in FLAGS {
            let name = f.name;
            let c = p(&[&format!("--{name}=x")]);
            let c = match c {
                Ok(c) => c,
                // A value the flag refuses still shows that the core knows the flag.
                Err(e) => {
                    assert!(!e.contains("unknown flag"), "--{name}: {e}");
                    continue;
                }
            };
            assert!(
                c.overrides.module_flags.is_empty(),
                "--{name} went to the modules"
            );
        }
        for f in FLAGS.iter().filter(|f| !f.takes_value) {
            let c = p(&[&format!("--{}", f.name), "--config=a"]).expect("a switch alone");
            assert!(c.overrides.module_flags.is_empty());
        }
        for f in IGNORED_FLAGS {
            let c = p(&[&format!("--{f}")]).expect("accepted");
            assert_eq!(c.ignored, [f.to_string()]);
        }
        assert_eq!(p(&["describe"]).unwrap().command, Command::Describe);
    }

    #[test]
    fn check_config() {
        let c = p(&["check-config", "a.yaml"]).unwrap();
        assert_eq!(c.command, Command::CheckConfig("a.yaml".into()));
        assert!(p(&["check-config"]).is_err());
    }

    #[test]
    fn errors() {
        assert_eq!(
            p(&["--web.listen-address"]).unwrap_err(),
            "--web.listen-address needs a value"
        );
        assert!(p(&["--web.listen-address=nope"])
            .unwrap_err()
            .contains("invalid listen address"));
        assert!(p(&["--log.level=loud"])
            .unwrap_err()
            .contains("unknown level"));
        assert!(p(&["frobnicate"]).unwrap_err().contains("unknown command"));
        assert!(p(&["--config", "a", "stray"])
            .unwrap_err()
            .contains("unexpected"));
    }
}
