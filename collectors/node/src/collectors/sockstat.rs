//! `sockstat`: socket counts from `/proc/net/sockstat` and `/proc/net/sockstat6` as
//! `node_sockstat_<PROTO>_<field>`, plus `_mem_bytes` for the page-counted `mem` fields.

use eos_exposition::{Encoder, Kind};

use crate::collector::in_procfs;
use crate::collector::{parse_f64, At, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "sockstat",
    default_enabled: true,
    build: |_, _| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        Ok(Box::new(SockstatCollector {
            page_size: if page > 0 { page as f64 } else { 4096.0 },
        }))
    },
};

struct SockstatCollector {
    page_size: f64,
}

impl Collector for SockstatCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let paths = ctx.paths;
        let mut name = String::with_capacity(48);
        let mut help = String::with_capacity(64);
        let v4 = ctx.proc_path("net/sockstat");
        let text = ctx.read(&v4)?;
        let stats = parse_sockstat(text, "/proc/net/sockstat").map_err(|e| in_procfs(paths, e))?;
        self.write(enc, &stats, &mut name, &mut help);
        let v6 = ctx.proc_path("net/sockstat6");
        if let Some(text) = ctx.read_optional(&v6)? {
            let stats =
                parse_sockstat(text, "/proc/net/sockstat6").map_err(|e| in_procfs(paths, e))?;
            self.write(enc, &stats, &mut name, &mut help);
        }
        Ok(())
    }
}

impl SockstatCollector {
    fn write(
        &self,
        enc: &mut Encoder<'_>,
        stats: &[Stat<'_>],
        name: &mut String,
        help: &mut String,
    ) {
        for s in stats {
            if s.proto == "sockets" && s.field == "used" {
                enc.single(
                    "node_sockstat_sockets_used",
                    "Number of IPv4 sockets in use.",
                    Kind::Gauge,
                    &[],
                    s.value,
                );
                continue;
            }
            let mut one = |field: &str, v: f64| {
                name.clear();
                name.push_str("node_sockstat_");
                name.push_str(s.proto);
                name.push('_');
                name.push_str(field);
                help.clear();
                help.push_str("Number of ");
                help.push_str(s.proto);
                help.push_str(" sockets in state ");
                help.push_str(field);
                help.push('.');
                enc.single(name, help, Kind::Gauge, &[], v);
            };
            one(s.field, s.value);
            if s.field == "mem" {
                one("mem_bytes", s.value * self.page_size);
            }
        }
    }
}

/// One `PROTO: ... field value ...` pair.
#[derive(Debug, PartialEq)]
struct Stat<'a> {
    proto: &'a str,
    field: &'a str,
    value: f64,
}

fn parse_sockstat<'t>(text: &'t str, file: &str) -> Result<Vec<Stat<'t>>, String> {
    let mut out = Vec::with_capacity(24);
    for (i, line) in text.lines().enumerate() {
        let at = At(file, i + 1);
        if line.trim().is_empty() {
            continue;
        }
        let (proto, rest) = line
            .split_once(':')
            .ok_or_else(|| format!("{at}: no ':'"))?;
        let mut parts = rest.split_ascii_whitespace();
        while let Some(field) = parts.next() {
            let v = parts
                .next()
                .ok_or_else(|| format!("{at}: field {field:?} has no value"))?;
            out.push(Stat {
                proto,
                field,
                value: parse_f64(v, &at)?,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let s = parse_sockstat(
            "sockets: used 16\nTCP: inuse 3 orphan 0 tw 185 alloc 3 mem 188\nFRAG: inuse 0 memory 0\n",
            "f",
        )
        .unwrap();
        assert_eq!(s.len(), 8);
        assert_eq!(
            s[0],
            Stat {
                proto: "sockets",
                field: "used",
                value: 16.0
            }
        );
        assert_eq!(
            s[5],
            Stat {
                proto: "TCP",
                field: "mem",
                value: 188.0
            }
        );
    }

    #[test]
    fn malformed() {
        assert!(parse_sockstat("TCP inuse 3\n", "f").is_err());
        assert!(parse_sockstat("TCP: inuse\n", "f")
            .unwrap_err()
            .contains("line 1"));
        assert!(parse_sockstat("TCP: inuse x\n", "f").is_err());
    }
}
