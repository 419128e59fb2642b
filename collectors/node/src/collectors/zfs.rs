//! `zfs`: OpenZFS statistics from the SPL kstat files under `<procfs>/spl/kstat/zfs`, named as
//! node_exporter names them: module-wide kstats as `node_zfs_<subsystem>_<name>`
//! (`node_zfs_arc_hits` from `arcstats`), per-pool I/O as `node_zfs_zpool_<field>{zpool}`,
//! per-dataset counters as `node_zfs_zpool_dataset_<name>{zpool,dataset}` and the pool state as
//! `node_zfs_zpool_state{zpool,state}`. The kstats are untyped with the kstat's name as HELP,
//! as in node_exporter. Without the ZFS module nothing is written.

use eos_exposition::{Encoder, Kind};

use crate::collector::{list_dir, parse_i64, parse_u64, At, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "zfs",
    default_enabled: true,
    build: |_settings: &(), _paths| Ok(Box::new(ZfsCollector)),
};

struct ZfsCollector;

/// (family infix, kstat file): node_exporter's module-wide kstats, in name order. A file this
/// ZFS version does not have is skipped.
const KSTATS: [(&str, &str); 11] = [
    ("zfs_abd", "abdstats"),
    ("zfs_arc", "arcstats"),
    ("zfs_dbuf", "dbufstats"),
    ("zfs_dmu_tx", "dmu_tx"),
    ("zfs_dnode", "dnodestats"),
    ("zfs_fm", "fm"),
    ("zfs_vdev_cache", "vdev_cache_stats"),
    ("zfs_vdev_mirror", "vdev_mirror_stats"),
    ("zfs_xuio", "xuio_stats"),
    ("zfs_zfetch", "zfetchstats"),
    ("zfs_zil", "zil"),
];

/// The `state` label values of `node_zfs_zpool_state`, one series each per pool.
const POOL_STATES: [&str; 7] = [
    "online",
    "degraded",
    "faulted",
    "offline",
    "removed",
    "unavail",
    "suspended",
];

/// kstat data types (`sys/kstat.h`) that node_exporter exports.
const KSTAT_DATA_INT64: &str = "3";
const KSTAT_DATA_UINT64: &str = "4";

/// One pool's directory `<procfs>/spl/kstat/zfs/<pool>/`.
#[derive(Debug, Default, PartialEq)]
struct Pool {
    name: String,
    /// `io`: (field, value), in the file's order.
    io: Vec<(String, u64)>,
    /// `objset-*`: one per dataset.
    datasets: Vec<Objset>,
    /// `state`, lower case; `None` without a state file.
    state: Option<String>,
}

/// One `objset-<id>` kstat: a dataset's counters.
#[derive(Debug, Default, PartialEq)]
struct Objset {
    dataset: String,
    values: Vec<(String, u64)>,
}

impl Collector for ZfsCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let base = ctx.proc_path("spl/kstat/zfs");
        // No ZFS module loaded (the usual case): one stat instead of a dozen failed opens.
        if !base.is_dir() {
            return Ok(());
        }
        let mut name = String::with_capacity(64);
        let mut help = String::with_capacity(64);
        for (infix, file) in KSTATS {
            let path = base.join(file);
            let Some(text) = ctx.read_optional(&path)? else {
                continue;
            };
            for (kstat, value) in parse_kstat(text, &path.display().to_string())? {
                name.clear();
                name.push_str("node_");
                name.push_str(infix);
                name.push('_');
                push_metric_name(&mut name, kstat);
                help.clear();
                help.push_str("kstat.zfs.misc.");
                help.push_str(file);
                help.push('.');
                help.push_str(kstat);
                enc.single(&name, &help, Kind::Untyped, &[], value);
            }
        }
        let mut pools = Vec::new();
        for entry in list_dir(&base)? {
            ctx.check_deadline("ZFS pools")?;
            let dir = base.join(&entry);
            // Module-wide kstats are files: listing them gives nothing.
            let files = list_dir(&dir)?;
            let mut pool = Pool {
                name: entry,
                ..Pool::default()
            };
            for file in &files {
                let path = dir.join(file);
                let is_objset = file.starts_with("objset-");
                if file != "io" && file != "state" && !is_objset {
                    continue;
                }
                // A pool being exported takes its files with it: skip what has gone.
                let Some(text) = ctx.read_optional(&path)? else {
                    continue;
                };
                let at = path.display().to_string();
                if file == "io" {
                    pool.io = parse_pool_io(text, &at)?;
                } else if file == "state" {
                    pool.state = Some(parse_state(text));
                } else {
                    pool.datasets.push(parse_objset(text, &at)?);
                }
            }
            if !pool.io.is_empty() || !pool.datasets.is_empty() || pool.state.is_some() {
                pools.push(pool);
            }
        }
        write_pools(enc, &pools);
        Ok(())
    }
}

/// Writes the per-pool families, each with the samples of every pool (and dataset).
fn write_pools(enc: &mut Encoder<'_>, pools: &[Pool]) {
    let mut name = String::with_capacity(64);
    let mut help = String::with_capacity(64);
    for field in first_seen(pools.iter().flat_map(|p| p.io.iter().map(|(f, _)| f))) {
        name.clear();
        name.push_str("node_zfs_zpool_");
        push_metric_name(&mut name, field);
        help.clear();
        help.push_str("kstat.zfs.misc.io.");
        help.push_str(field);
        let mut f = enc.family(&name, &help, Kind::Untyped);
        for pool in pools {
            if let Some((_, v)) = pool.io.iter().find(|(f, _)| f == field) {
                f.sample(&[("zpool", &pool.name)], *v as f64);
            }
        }
    }
    let objsets = || {
        pools
            .iter()
            .flat_map(|p| p.datasets.iter().map(move |d| (p, d)))
    };
    for key in first_seen(objsets().flat_map(|(_, d)| d.values.iter().map(|(k, _)| k))) {
        name.clear();
        name.push_str("node_zfs_zpool_dataset_");
        push_metric_name(&mut name, key);
        help.clear();
        help.push_str("kstat.zfs.misc.objset.");
        help.push_str(key);
        let mut f = enc.family(&name, &help, Kind::Untyped);
        for (pool, d) in objsets() {
            if let Some((_, v)) = d.values.iter().find(|(k, _)| k == key) {
                f.sample(&[("dataset", &d.dataset), ("zpool", &pool.name)], *v as f64);
            }
        }
    }
    let mut f = enc.family("node_zfs_zpool_state", "kstat.zfs.misc.state", Kind::Gauge);
    for pool in pools {
        let Some(actual) = &pool.state else { continue };
        for state in POOL_STATES {
            let active = if actual == state { 1.0 } else { 0.0 };
            f.sample(&[("state", state), ("zpool", &pool.name)], active);
        }
    }
}

/// The distinct strings of `items`, in the order they first appear.
fn first_seen<'a>(items: impl Iterator<Item = &'a String>) -> Vec<&'a String> {
    let mut out: Vec<&String> = Vec::new();
    for s in items {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// Appends node_exporter's metric name for a kstat: its last dot-separated part, with `-` as
/// `_`.
fn push_metric_name(out: &mut String, kstat: &str) {
    let last = kstat.rsplit('.').next().unwrap_or(kstat);
    out.extend(last.chars().map(|c| if c == '-' { '_' } else { c }));
}

/// Parses a named kstat file (`abdstats`, `arcstats`, ...):
///
/// ```text
/// 13 1 0x01 147 39984 ...          <- kstat header, ignored
/// name                            type data
/// hits                            4    8772612
/// ```
///
/// Returns the signed and unsigned 64-bit values; other kstat types are skipped. A file
/// without the `name type data` line is an error.
fn parse_kstat<'t>(text: &'t str, file: &str) -> Result<Vec<(&'t str, f64)>, String> {
    let mut out = Vec::new();
    for row in kstat_rows(text, file)? {
        let at = At(file, row.line);
        match row.kind {
            KSTAT_DATA_UINT64 => out.push((row.name, parse_u64(row.data, &at)? as f64)),
            KSTAT_DATA_INT64 => out.push((row.name, parse_i64(row.data, &at)? as f64)),
            _ => {}
        }
    }
    Ok(out)
}

/// One data row of a named kstat file.
struct KstatRow<'t> {
    /// Its line number, for errors.
    line: usize,
    name: &'t str,
    /// The kstat type number.
    kind: &'t str,
    /// The first word of the value.
    data: &'t str,
    /// All of the line after the type column (a string value may contain spaces).
    rest: &'t str,
}

/// The rows after a named kstat's `name type data` header line; an error without it.
fn kstat_rows<'t>(text: &'t str, file: &str) -> Result<Vec<KstatRow<'t>>, String> {
    let mut rows = Vec::new();
    let mut in_data = false;
    for (i, line) in text.lines().enumerate() {
        let mut parts = line.split_ascii_whitespace();
        let (Some(name), Some(kind), Some(data)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if !in_data {
            in_data = name == "name" && kind == "type" && data == "data" && parts.next().is_none();
            continue;
        }
        let after_name = line.trim_start().get(name.len()..).unwrap_or("");
        let rest = after_name
            .trim_start()
            .get(kind.len()..)
            .unwrap_or("")
            .trim();
        rows.push(KstatRow {
            line: i + 1,
            name,
            kind,
            data,
            rest,
        });
    }
    if !in_data {
        return Err(format!("parsing {file}: no \"name type data\" line"));
    }
    Ok(rows)
}

/// Parses a pool's `io` kstat: a line of field names starting with `nread` (at least 12),
/// then a line of values. A file without that header gives nothing, as in node_exporter.
fn parse_pool_io(text: &str, file: &str) -> Result<Vec<(String, u64)>, String> {
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = loop {
        let Some((_, line)) = lines.next() else {
            return Ok(Vec::new());
        };
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.len() >= 12 && fields.first() == Some(&"nread") {
            break fields;
        }
    };
    let Some((i, line)) = lines.find(|(_, l)| !l.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let at = At(file, i + 1);
    let values: Vec<&str> = line.split_ascii_whitespace().collect();
    if values.len() < header.len() {
        return Err(format!(
            "{at}: {} values for {} fields",
            values.len(),
            header.len()
        ));
    }
    header
        .iter()
        .zip(values)
        .map(|(field, v)| Ok((field.to_string(), parse_u64(v, &at)?)))
        .collect()
}

/// Parses an `objset-<id>` kstat: `dataset_name` (a string, which may contain spaces) and
/// the unsigned counters. A file without the `name type data` line is an error.
fn parse_objset(text: &str, file: &str) -> Result<Objset, String> {
    let mut out = Objset::default();
    for row in kstat_rows(text, file)? {
        if row.name == "dataset_name" {
            out.dataset = row.rest.to_string();
        } else if row.kind == KSTAT_DATA_UINT64 {
            let at = At(file, row.line);
            out.values
                .push((row.name.to_string(), parse_u64(row.data, &at)?));
        }
    }
    Ok(out)
}

/// A pool's `state` file: its first line (`ONLINE`, `DEGRADED`, ...), in lower case.
fn parse_state(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARCSTATS: &str = "13 1 0x01 96 4608 8000000000 9000000000000
name                            type data
hits                            4    8772612
misses                          4    604635
c_min                           4    33554432
memory_available_bytes          3    -129404928
arc_meta_used_pct               2    17
l2_write-bytes                  4    7
";

    #[test]
    fn kstat_values_by_type() {
        let v = parse_kstat(ARCSTATS, "arcstats").unwrap();
        assert_eq!(
            v,
            vec![
                ("hits", 8772612.0),
                ("misses", 604635.0),
                ("c_min", 33554432.0),
                ("memory_available_bytes", -129404928.0),
                ("l2_write-bytes", 7.0),
            ]
        );
    }

    #[test]
    fn kstat_odd_and_truncated() {
        let e = parse_kstat("13 1 0x01 1 2 3 4\n", "arcstats").unwrap_err();
        assert_eq!(e, "parsing arcstats: no \"name type data\" line");
        assert!(parse_kstat("", "fm").is_err());
        let e = parse_kstat("name type data\nhits 4 12x\n", "arcstats").unwrap_err();
        assert!(e.contains("arcstats line 2"), "{e}");
        let e = parse_kstat("name type data\nfree 3 -\n", "arcstats").unwrap_err();
        assert!(e.contains("invalid number"), "{e}");
        // A line cut short, and blank lines, are skipped.
        let v = parse_kstat("name type data\n\nhits 4 1\nmisses 4\n", "arcstats").unwrap();
        assert_eq!(v, vec![("hits", 1.0)]);
    }

    #[test]
    fn metric_names() {
        let mut s = String::new();
        push_metric_name(&mut s, "l2_write-bytes");
        assert_eq!(s, "l2_write_bytes");
        s.clear();
        push_metric_name(&mut s, "a.b-c");
        assert_eq!(s, "b_c");
    }

    const IO: &str = "12 3 0x00 1 80 79205351707403 395818011156865
nread    nwritten reads    writes   wtime    wlentime wupdate  rtime    rlentime rupdate  wcnt     rcnt
1884160  3206144  22       132      7155162  104112268 79210489694949 24168078 104112268 79210489849220 0        0
";

    #[test]
    fn pool_io() {
        let v = parse_pool_io(IO, "io").unwrap();
        assert_eq!(v.len(), 12);
        assert_eq!(v[0], ("nread".to_string(), 1884160));
        assert_eq!(v[3], ("writes".to_string(), 132));
        assert_eq!(v[11], ("rcnt".to_string(), 0));
        // No header: nothing, as node_exporter.
        assert!(parse_pool_io("12 3 0x00\n1 2 3\n", "io")
            .unwrap()
            .is_empty());
        // Header without values: nothing.
        let header_only = IO.lines().take(2).collect::<Vec<_>>().join("\n");
        assert!(parse_pool_io(&header_only, "io").unwrap().is_empty());
        // A value line cut short, or a bad number, is an error naming the line.
        let cut = format!("{}\n1884160 3206144\n", header_only);
        assert!(parse_pool_io(&cut, "io")
            .unwrap_err()
            .contains("io line 3: 2 values for 12 fields"));
        let bad = IO.replace("1884160", "-1");
        assert!(parse_pool_io(&bad, "io")
            .unwrap_err()
            .contains("invalid number"));
    }

    #[test]
    fn objset() {
        let text = "24 1 0x01 7 2160 221611904716 7145015038451
name                            type data
dataset_name                    7    pool1/my data set
writes                          4    4
nwritten                        4    12302
zil_commit_count                4    9
";
        let o = parse_objset(text, "objset-0x36").unwrap();
        assert_eq!(o.dataset, "pool1/my data set");
        assert_eq!(
            o.values,
            vec![
                ("writes".to_string(), 4),
                ("nwritten".to_string(), 12302),
                ("zil_commit_count".to_string(), 9)
            ]
        );
        // A one-letter dataset name is not looked for inside "dataset_name".
        let short = "name type data\ndataset_name 7 a\n";
        assert_eq!(parse_objset(short, "o").unwrap().dataset, "a");
        assert!(parse_objset("dataset_name 7 p\n", "objset-1")
            .unwrap_err()
            .contains("objset-1"));
        assert!(parse_objset("name type data\nwrites 4 x\n", "objset-1")
            .unwrap_err()
            .contains("objset-1 line 2"));
    }

    #[test]
    fn state() {
        assert_eq!(parse_state("SUSPENDED\n"), "suspended");
        assert_eq!(parse_state("ONLINE \n"), "online");
        assert_eq!(parse_state(""), "");
    }

    fn scrape(tree: &crate::collectors::test_tree::TestTree) -> Result<String, String> {
        crate::collectors::test_tree::scrape(&ZfsCollector, &tree.as_procfs())
    }

    #[test]
    fn collects_a_kstat_tree() {
        let t = crate::collectors::test_tree::TestTree::new("zfs");
        assert_eq!(scrape(&t).unwrap(), "", "no ZFS module: nothing");
        t.write("spl/kstat/zfs/arcstats", ARCSTATS);
        t.write(
            "spl/kstat/zfs/dmu_tx",
            "5 1 0x01 11 528 8010436841 354962070418194\nname type data\ndmu_tx_assigned 4 3532844\n",
        );
        t.write("spl/kstat/zfs/pool1/io", IO);
        t.write("spl/kstat/zfs/pool1/state", "ONLINE\n");
        t.write(
            "spl/kstat/zfs/pool1/objset-0x36",
            "name type data\ndataset_name 7 pool1\nwrites 4 3\n",
        );
        t.write(
            "spl/kstat/zfs/pool1/objset-0x88",
            "name type data\ndataset_name 7 pool1/home\nwrites 4 5\n",
        );
        t.write("spl/kstat/zfs/pool2/state", "DEGRADED\n");
        t.write("spl/kstat/zfs/pool2/txgs", "not read\n");
        let text = scrape(&t).unwrap();
        eos_exposition::parse_text(&text).unwrap();
        for want in [
            "# HELP node_zfs_arc_hits kstat.zfs.misc.arcstats.hits",
            "# TYPE node_zfs_arc_hits untyped",
            "node_zfs_arc_hits 8.772612e+06",
            "node_zfs_arc_memory_available_bytes -1.29404928e+08",
            "node_zfs_arc_l2_write_bytes 7",
            "# HELP node_zfs_dmu_tx_dmu_tx_assigned kstat.zfs.misc.dmu_tx.dmu_tx_assigned",
            "node_zfs_dmu_tx_dmu_tx_assigned 3.532844e+06",
            "# HELP node_zfs_zpool_nread kstat.zfs.misc.io.nread",
            "node_zfs_zpool_nread{zpool=\"pool1\"} 1.88416e+06",
            "# HELP node_zfs_zpool_dataset_writes kstat.zfs.misc.objset.writes",
            "node_zfs_zpool_dataset_writes{dataset=\"pool1\",zpool=\"pool1\"} 3",
            "node_zfs_zpool_dataset_writes{dataset=\"pool1/home\",zpool=\"pool1\"} 5",
            "# HELP node_zfs_zpool_state kstat.zfs.misc.state",
            "# TYPE node_zfs_zpool_state gauge",
            "node_zfs_zpool_state{state=\"online\",zpool=\"pool1\"} 1",
            "node_zfs_zpool_state{state=\"suspended\",zpool=\"pool1\"} 0",
            "node_zfs_zpool_state{state=\"degraded\",zpool=\"pool2\"} 1",
            "node_zfs_zpool_state{state=\"online\",zpool=\"pool2\"} 0",
        ] {
            assert!(
                text.lines().any(|l| l == want),
                "missing {want:?} in:\n{text}"
            );
        }
        // The untyped int32 kstat is skipped; one HELP per family.
        assert!(!text.contains("arc_meta_used_pct"));
        assert_eq!(
            text.matches("# HELP node_zfs_zpool_dataset_writes").count(),
            1
        );
        assert_eq!(text.matches("node_zfs_zpool_state{").count(), 14);

        t.write("spl/kstat/zfs/pool2/objset-0x1", "garbage\n");
        let e = scrape(&t).unwrap_err();
        assert!(e.contains("pool2/objset-0x1"), "{e}");
    }
}
