//! `netstat`: protocol counters from `/proc/net/netstat`, `/proc/net/snmp` and
//! `/proc/net/snmp6`, as untyped `node_netstat_<Proto>_<Name>`, selected by
//! `--collector.netstat.fields` (matched against `<Proto>_<Name>`).

use eos_exposition::{Encoder, Kind};
use std::sync::Mutex;

use crate::collector::in_procfs;
use crate::collector::{parse_f64, At, Collector, CollectorDef, Ctx, MatchCache};
use crate::pattern::Pattern;
use crate::settings::{CollectorSettings, Flag};
use serde::{Deserialize, Serialize};

pub(crate) const DEF: CollectorDef<Settings> = CollectorDef {
    name: "netstat",
    default_enabled: true,
    build: |settings, _| {
        Ok(Box::new(NetstatCollector {
            fields: Mutex::new(MatchCache::new(settings.fields.clone())),
        }))
    },
};

/// node_exporter 1.12's default for `--collector.netstat.fields` (`TCPOFOQueue` since 1.8,
/// `TCPRcvQDrop` since 1.9).
const DEFAULT_FIELDS: &str = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts|TCPOFOQueue|TCPRcvQDrop)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";

/// `modules.node.netstat`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settings {
    /// The fields exported, matched against the metric's name suffix
    /// (`--collector.netstat.fields`).
    pub(crate) fields: Pattern,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            fields: Pattern::new_static(DEFAULT_FIELDS),
        }
    }
}

impl CollectorSettings for Settings {
    const FLAG_PREFIXES: &'static [&'static str] = &["netstat"];
    const HELP: &'static str = "  --collector.netstat.fields=RE             fields exported
";

    fn apply_flag(&mut self, flag: &Flag<'_>) -> Result<bool, String> {
        match flag.key {
            "fields" => self.fields = flag.pattern()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

struct NetstatCollector {
    fields: Mutex<MatchCache>,
}

/// One counter: protocol (`TcpExt`, `Ip6`), name (`ListenDrops`), value.
#[derive(Debug, PartialEq)]
struct Stat<'a> {
    proto: &'a str,
    name: &'a str,
    value: f64,
}

impl Collector for NetstatCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let paths = ctx.paths;
        let mut fields = self
            .fields
            .lock()
            .map_err(|_| "netstat state poisoned".to_string())?;
        let mut key = String::with_capacity(48);
        let mut name = String::with_capacity(64);
        let mut help = String::with_capacity(64);
        let mut idx = 0;
        for (file, six) in [
            ("net/netstat", false),
            ("net/snmp", false),
            ("net/snmp6", true),
        ] {
            let path = ctx.proc_path(file);
            let Some(text) = ctx.read_optional(&path)? else {
                if six {
                    continue; // no IPv6
                }
                return Err(format!("reading {}: not found", path.display()));
            };
            let label = match file {
                "net/netstat" => "/proc/net/netstat",
                "net/snmp" => "/proc/net/snmp",
                _ => "/proc/net/snmp6",
            };
            let stats = if six {
                parse_snmp6(text, label)?
            } else {
                parse_pairs(text, label).map_err(|e| in_procfs(paths, e))?
            };
            for s in &stats {
                key.clear();
                key.push_str(s.proto);
                key.push('_');
                key.push_str(s.name);
                let wanted = fields.matches(idx, &key);
                idx += 1;
                if !wanted {
                    continue;
                }
                name.clear();
                name.push_str("node_netstat_");
                name.push_str(&key);
                help.clear();
                help.push_str("Statistic ");
                help.push_str(s.proto);
                help.push_str(s.name);
                help.push('.');
                enc.single(&name, &help, Kind::Untyped, &[], s.value);
            }
        }
        Ok(())
    }
}

/// `/proc/net/netstat` and `/proc/net/snmp`: a header line `Proto: A B C` followed by a value
/// line `Proto: 1 2 3`.
fn parse_pairs<'t>(text: &'t str, file: &str) -> Result<Vec<Stat<'t>>, String> {
    let mut out = Vec::with_capacity(256);
    let mut lines = text.lines().enumerate();
    while let Some((i, header)) = lines.next() {
        if header.trim().is_empty() {
            continue;
        }
        let at = At(file, i + 1);
        let (proto, names) = header
            .split_once(':')
            .ok_or_else(|| format!("{at}: no ':'"))?;
        let Some((j, values)) = lines.next() else {
            return Err(format!("{at}: header without a value line"));
        };
        let at = At(file, j + 1);
        let (proto2, values) = values
            .split_once(':')
            .ok_or_else(|| format!("{at}: no ':'"))?;
        if proto2 != proto {
            return Err(format!("{at}: expected {proto} values, got {proto2}"));
        }
        let mut names = names.split_ascii_whitespace();
        let mut values = values.split_ascii_whitespace();
        loop {
            match (names.next(), values.next()) {
                (Some(name), Some(v)) => out.push(Stat {
                    proto,
                    name,
                    value: parse_f64(v, &at)?,
                }),
                (None, None) => break,
                _ => {
                    return Err(format!(
                        "{at}: {proto} has different numbers of names and values"
                    ))
                }
            }
        }
    }
    Ok(out)
}

/// `/proc/net/snmp6`: `Ip6InReceives 123` lines; the protocol ends at the first `6`.
fn parse_snmp6<'t>(text: &'t str, file: &str) -> Result<Vec<Stat<'t>>, String> {
    let mut out = Vec::with_capacity(128);
    for (i, line) in text.lines().enumerate() {
        let at = At(file, i + 1);
        let mut parts = line.split_ascii_whitespace();
        let (Some(key), Some(v)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some(six) = key.find('6') else { continue };
        let (proto, name) = key.split_at(six + 1);
        out.push(Stat {
            proto,
            name,
            value: parse_f64(v, &at)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_fields_are_node_exporter_1_12s() {
        let f = Settings::default().fields;
        for wanted in [
            "TcpExt_TCPOFOQueue",
            "TcpExt_TCPRcvQDrop",
            "TcpExt_TCPTimeouts",
            "TcpExt_ListenDrops",
            "Tcp_CurrEstab",
            "Udp6_InErrors",
            "Ip_Forwarding",
        ] {
            assert!(f.is_match(wanted), "{wanted}");
        }
        for unwanted in [
            "TcpExt_TCPAbortOnData",
            "Ip_InReceives",
            "TcpExt_TCPOFOQueueX",
        ] {
            assert!(!f.is_match(unwanted), "{unwanted}");
        }
    }

    #[test]
    fn pairs() {
        let s = parse_pairs(
            "TcpExt: SyncookiesSent ListenDrops\nTcpExt: 1 2\nIp: Forwarding\nIp: 1\n",
            "f",
        )
        .unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(
            s[1],
            Stat {
                proto: "TcpExt",
                name: "ListenDrops",
                value: 2.0
            }
        );
        assert_eq!(s[2].proto, "Ip");
    }

    #[test]
    fn pairs_malformed() {
        assert!(parse_pairs("TcpExt: A B\n", "f")
            .unwrap_err()
            .contains("without a value"));
        assert!(parse_pairs("TcpExt: A B\nTcpExt: 1\n", "f")
            .unwrap_err()
            .contains("line 2"));
        assert!(parse_pairs("TcpExt: A\nIp: 1\n", "f").is_err());
        assert!(parse_pairs("TcpExt: A\nTcpExt: x\n", "f").is_err());
        assert!(parse_pairs("garbage\n", "f").is_err());
    }

    #[test]
    fn snmp6() {
        let s = parse_snmp6(
            "Ip6InReceives                   \t1\nUdpLite6InErrors 4\nIcmp6OutType133 2\n",
            "f",
        )
        .unwrap();
        assert_eq!(
            s[0],
            Stat {
                proto: "Ip6",
                name: "InReceives",
                value: 1.0
            }
        );
        assert_eq!(
            s[1],
            Stat {
                proto: "UdpLite6",
                name: "InErrors",
                value: 4.0
            }
        );
        assert_eq!(s[2].name, "OutType133");
        assert!(parse_snmp6("Ip6InReceives x\n", "f").is_err());
    }
}
