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
    /// `eos-agent trace TARGET`: one mtr trace, printed.
    Trace(Box<TraceArgs>),
    /// `eos-agent trace --help`.
    TraceHelp,
    Help,
    Version,
}

/// `eos-agent trace TARGET [--count N] [--json] ...`: what to trace and how.
#[derive(Debug, PartialEq)]
pub struct TraceArgs {
    pub target: String,
    pub json: bool,
    /// `modules.mtr`'s defaults with the flags applied.
    pub config: eos_mtr::MtrConfig,
}

/// `eos-agent trace --help`.
pub const TRACE_HELP: &str = "\
usage: eos-agent trace TARGET [flags]
Traces the path to TARGET (a name or an address) with TTL-limited probes, as the mtr module
does, and prints an `mtr -n -r` style report (Loss%, Snt, Last, Avg, Best, Wrst, StDev per
hop, ms). Runs in this process, no agent needed. ICMP echo probes (the default) need a
datagram ICMP socket (net.ipv4.ping_group_range) or CAP_NET_RAW; UDP and TCP probes need
no privilege.

flags:
  -c, --count N          probes per hop (default 10)
  -i, --interval D       between rounds of probes (default 1s; e.g. 200ms)
      --timeout D        how long each probe is waited for (default 2s)
  -m, --max-hops N       highest TTL probed (default 30)
  -u, --udp              UDP datagrams instead of ICMP echo (to port 33434 unless -P)
  -T, --tcp              TCP SYNs instead of ICMP echo (to port 80 unless -P)
  -P, --port N           the destination port of UDP and TCP probes
  -4, -6                 trace the name's IPv4 or IPv6 address (default: the first one)
  -j, --json             mtr's JSON (`mtr -j`) instead of the text report
";

/// Parses `trace`'s arguments (after the word `trace`).
fn parse_trace(args: &[String]) -> Result<Command, String> {
    use eos_module::ModuleConfig as _;
    let mut config = eos_mtr::MtrConfig {
        enabled: true,
        ..eos_mtr::MtrConfig::default()
    };
    let mut target = None;
    let mut json = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with('-') => (n, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it
                    .next()
                    .cloned()
                    .ok_or(format!("trace: {name} needs a value")),
            }
        };
        let number = |v: String| -> Result<u32, String> {
            v.parse()
                .map_err(|_| format!("trace: {name}: {v:?} is not a number"))
        };
        match name {
            "-h" | "--help" => return Ok(Command::TraceHelp),
            "-j" | "--json" => json = true,
            "-4" => config.ip_protocol = eos_mtr::IpProtocol::Ip4,
            "-6" => config.ip_protocol = eos_mtr::IpProtocol::Ip6,
            "-c" | "--count" => config.count = number(value()?)?,
            "-m" | "--max-hops" => {
                config.max_hops = u8::try_from(number(value()?)?)
                    .map_err(|_| format!("trace: {name}: at most 64"))?
            }
            "-i" | "--interval" => config.probe_interval = value()?.parse()?,
            "-u" | "--udp" => config.protocol = eos_mtr::Protocol::Udp,
            "-T" | "--tcp" => config.protocol = eos_mtr::Protocol::Tcp,
            "-P" | "--port" => {
                config.port = Some(
                    u16::try_from(number(value()?)?)
                        .map_err(|_| format!("trace: {name}: at most 65535"))?,
                )
            }
            "--timeout" => config.timeout = value()?.parse()?,
            f if f.starts_with('-') => {
                return Err(format!(
                    "trace: unknown flag {f} (see eos-agent trace --help)"
                ))
            }
            t if target.is_none() => target = Some(t.to_string()),
            t => return Err(format!("trace: unexpected argument {t:?}: one TARGET only")),
        }
    }
    let target = target.ok_or("trace needs a TARGET (see eos-agent trace --help)")?;
    // No schedule here: only a cycle's own bounds apply.
    config.interval = eos_module::Duration(
        config
            .cycle_duration(config.count)
            .max(std::time::Duration::from_secs(1)),
    );
    config.validate().map_err(|e| {
        format!(
            "trace: {}",
            e.to_string()
                .replace("count: must be 1 to max_count", "--count: must be 1 to")
                .replace("(protocol is icmp)", "(add -u or -T)")
        )
    })?;
    Ok(Command::Trace(Box::new(TraceArgs {
        target,
        json,
        config,
    })))
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
  eos-agent trace TARGET [flags]        trace the path to TARGET hop by hop, like mtr -r
                                        (eos-agent trace --help)
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
        Some("trace") => {
            return Ok(Cli {
                command: parse_trace(&args[1..])?,
                config: None,
                overrides: Overrides::default(),
                log_level: tracing::Level::WARN,
                log_format: LogFormat::default(),
                lifecycle: false,
                max_requests: DEFAULT_MAX_REQUESTS,
                ignored: Vec::new(),
            });
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
    fn trace() {
        let Command::Trace(t) = p(&["trace", "10.0.0.1"]).unwrap().command else {
            panic!("not a trace");
        };
        assert_eq!(t.target, "10.0.0.1");
        assert!(!t.json);
        assert_eq!(t.config.count, 10);
        let c = p(&[
            "trace",
            "-c",
            "3",
            "--json",
            "example.com",
            "-i=200ms",
            "--max-hops",
            "12",
            "-6",
            "--timeout",
            "500ms",
        ])
        .unwrap();
        let Command::Trace(t) = c.command else {
            panic!("not a trace");
        };
        assert_eq!(t.target, "example.com");
        assert!(t.json);
        assert_eq!(t.config.count, 3);
        assert_eq!(t.config.max_hops, 12);
        assert_eq!(
            t.config.probe_interval,
            eos_module::Duration::from_millis(200)
        );
        assert_eq!(t.config.timeout, eos_module::Duration::from_millis(500));
        assert_eq!(t.config.ip_protocol, eos_mtr::IpProtocol::Ip6);
        assert_eq!(t.config.protocol, eos_mtr::Protocol::Icmp);
        assert_eq!(p(&["trace", "--help"]).unwrap().command, Command::TraceHelp);
        // mtr's -u, -T and -P.
        for (args, protocol, port) in [
            (
                &["trace", "a", "-u"][..],
                eos_mtr::Protocol::Udp,
                Some(33434),
            ),
            (
                &["trace", "a", "--udp", "-P", "53"],
                eos_mtr::Protocol::Udp,
                Some(53),
            ),
            (&["trace", "a", "-T"], eos_mtr::Protocol::Tcp, Some(80)),
            (
                &["trace", "-T", "--port=443", "a"],
                eos_mtr::Protocol::Tcp,
                Some(443),
            ),
        ] {
            let Command::Trace(t) = p(args).unwrap().command else {
                panic!("{args:?}: not a trace");
            };
            assert_eq!(
                (t.config.protocol, t.config.port()),
                (protocol, port),
                "{args:?}"
            );
        }
        for (args, what) in [
            (&["trace"][..], "needs a TARGET"),
            (&["trace", "a", "b"], "one TARGET only"),
            (&["trace", "a", "--count"], "--count needs a value"),
            (&["trace", "a", "-c", "x"], "not a number"),
            (&["trace", "a", "-c", "0"], "--count: must be 1 to"),
            (&["trace", "a", "--bogus"], "unknown flag --bogus"),
            (&["trace", "a", "-i", "fast"], "invalid duration"),
            (
                &["trace", "a", "-P", "80"],
                "port: only udp and tcp probes have a port (add -u or -T)",
            ),
            (&["trace", "a", "-T", "-P", "70000"], "-P: at most 65535"),
            (&["trace", "a", "-u", "-P", "0"], "port: must be 1 to 65535"),
        ] {
            let e = p(args).unwrap_err();
            assert!(e.contains(what), "{args:?}: {e}");
        }
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
