//! `meminfo`: `/proc/meminfo` fields as `node_memory_<Field>[_bytes]`. `Active(anon)` becomes
//! `Active_anon`; fields in kB are converted to bytes and get `_bytes`.
//!
//! Since 1.9 node_exporter reads the file through procfs's `Meminfo`, which knows a fixed
//! set of fields ([`FIELDS`]); fields the kernel added later (`KReclaimable`,
//! `SecPageTables`, `FileHugePages`, `Hugetlb`, ...) are not exported. This collector
//! exports the same set.

use eos_exposition::{Encoder, Kind};

use crate::collector::in_procfs;
use crate::collector::{parse_f64, At, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "meminfo",
    default_enabled: true,
    build: |_, _| Ok(Box::new(MeminfoCollector)),
};

struct MeminfoCollector;

/// The metric names (after `node_memory_`) node_exporter 1.12 exports, sorted.
const FIELDS: [&str; 51] = [
    "Active_anon_bytes",
    "Active_bytes",
    "Active_file_bytes",
    "AnonHugePages_bytes",
    "AnonPages_bytes",
    "Bounce_bytes",
    "Buffers_bytes",
    "Cached_bytes",
    "CmaFree_bytes",
    "CmaTotal_bytes",
    "CommitLimit_bytes",
    "Committed_AS_bytes",
    "DirectMap1G_bytes",
    "DirectMap2M_bytes",
    "DirectMap4k_bytes",
    "Dirty_bytes",
    "HardwareCorrupted_bytes",
    "HugePages_Free",
    "HugePages_Rsvd",
    "HugePages_Surp",
    "HugePages_Total",
    "Hugepagesize_bytes",
    "Inactive_anon_bytes",
    "Inactive_bytes",
    "Inactive_file_bytes",
    "KernelStack_bytes",
    "Mapped_bytes",
    "MemAvailable_bytes",
    "MemFree_bytes",
    "MemTotal_bytes",
    "Mlocked_bytes",
    "NFS_Unstable_bytes",
    "PageTables_bytes",
    "Percpu_bytes",
    "SReclaimable_bytes",
    "SUnreclaim_bytes",
    "ShmemHugePages_bytes",
    "ShmemPmdMapped_bytes",
    "Shmem_bytes",
    "Slab_bytes",
    "SwapCached_bytes",
    "SwapFree_bytes",
    "SwapTotal_bytes",
    "Unevictable_bytes",
    "VmallocChunk_bytes",
    "VmallocTotal_bytes",
    "VmallocUsed_bytes",
    "WritebackTmp_bytes",
    "Writeback_bytes",
    "Zswap_bytes",
    "Zswapped_bytes",
];

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
            let field = name.get("node_memory_".len()..).unwrap_or_default();
            if FIELDS.binary_search(&field).is_err() {
                continue;
            }
            help.clear();
            help.push_str("Memory information field ");
            help.push_str(field);
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
    fn exports_node_exporter_fields_only() {
        assert!(
            FIELDS.windows(2).all(|w| w[0] < w[1]),
            "FIELDS must be sorted"
        );
        let t = crate::collectors::test_tree::TestTree::new("meminfo");
        t.write(
            "meminfo",
            "MemTotal:       1024 kB\nKReclaimable:     8 kB\nZswap:  4 kB\nHugePages_Total:       2\nHugetlb:  0 kB\n",
        );
        let paths = eos_module::HostPaths {
            procfs: t.path().to_path_buf(),
            ..eos_module::HostPaths::default()
        };
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        let mut enc = Encoder::new(&mut out, eos_exposition::Format::Text);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        MeminfoCollector
            .update(&mut enc, &mut Ctx::new(&paths, deadline, &mut buf))
            .unwrap();
        let out = String::from_utf8(out).unwrap();
        let names: Vec<&str> = out
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split(' ').next())
            .collect();
        assert_eq!(
            names,
            [
                "node_memory_MemTotal_bytes",
                "node_memory_Zswap_bytes",
                "node_memory_HugePages_Total"
            ]
        );
        assert!(
            out.contains("# HELP node_memory_Zswap_bytes Memory information field Zswap_bytes.\n")
        );
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
