//! `meminfo`: every `/proc/meminfo` field as `node_memory_<Field>[_bytes]`.
//! `Active(anon)` becomes `Active_anon`; fields in kB are converted to bytes and get `_bytes`.

use eos_exposition::{Encoder, Kind};

use crate::collector::in_procfs;
use crate::collector::{parse_f64, At, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "meminfo",
    default_enabled: true,
    build: |_, _| Ok(Box::new(MeminfoCollector)),
};

struct MeminfoCollector;

impl Collector for MeminfoCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let paths = ctx.paths;
        let text = ctx.read_proc("meminfo")?;
        let fields = parse_meminfo(text).map_err(|e| in_procfs(paths, e))?;
        let mut name = String::with_capacity(64);
        let mut help = String::with_capacity(96);
        for f in &fields {
            name.clear();
            name.push_str("node_memory_");
            push_key(&mut name, f.key);
            if f.kb {
                name.push_str("_bytes");
            }
            help.clear();
            help.push_str("Memory information field ");
            help.push_str(&name["node_memory_".len()..]);
            help.push('.');
            enc.single(&name, &help, Kind::Gauge, &[], f.value);
        }
        Ok(())
    }
}

/// One `/proc/meminfo` line: its key as written, and its value (in bytes when `kb`).
#[derive(Debug, PartialEq)]
struct Field<'a> {
    key: &'a str,
    value: f64,
    kb: bool,
}

/// `Active(anon)` -> `Active_anon`.
fn push_key(out: &mut String, key: &str) {
    for c in key.chars() {
        match c {
            '(' => out.push('_'),
            ')' => {}
            c => out.push(c),
        }
    }
}

fn parse_meminfo(text: &str) -> Result<Vec<Field<'_>>, String> {
    let mut out = Vec::with_capacity(64);
    for (i, line) in text.lines().enumerate() {
        let at = At("/proc/meminfo", i + 1);
        if line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split_ascii_whitespace();
        let (Some(key), Some(value)) = (parts.next(), parts.next()) else {
            return Err(format!("{at}: expected 'Key: value [kB]'"));
        };
        let key = key
            .strip_suffix(':')
            .ok_or_else(|| format!("{at}: key without ':'"))?;
        let mut value = parse_f64(value, &at)?;
        let kb = match parts.next() {
            None => false,
            Some("kB") => true,
            Some(u) => return Err(format!("{at}: unknown unit {u:?}")),
        };
        if kb {
            value *= 1024.0;
        }
        out.push(Field { key, value, kb });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names() {
        let f = parse_meminfo(
            "MemTotal:       24684096 kB\nActive(anon):   388 kB\nHugePages_Total:       0\n",
        )
        .unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].value, 24684096.0 * 1024.0);
        assert!(!f[2].kb);
        let mut s = String::new();
        push_key(&mut s, f[1].key);
        assert_eq!(s, "Active_anon");
    }

    #[test]
    fn malformed() {
        assert!(parse_meminfo("MemTotal: 1 kB\nMemFree:")
            .unwrap_err()
            .contains("line 2"));
        assert!(parse_meminfo("MemTotal 1 kB").is_err());
        assert!(parse_meminfo("MemTotal: x kB").is_err());
        assert!(parse_meminfo("MemTotal: 1 MB").is_err());
    }
}
