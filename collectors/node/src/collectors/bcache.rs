//! `bcache`: statistics of bcache cache sets from `<sysfs>/fs/bcache/<uuid>/` (the set, its
//! backing devices `bdev<N>` and cache devices `cache<N>`), as `node_bcache_*` with node_exporter's
//! names, labels and units. `--collector.bcache.priorityStats` also reads each cache device's
//! `priority_stats`, which is expensive for the kernel. Hosts without bcache write nothing.

use eos_exposition::{Encoder, Kind};
use std::ffi::CStr;
use std::path::Path;

use crate::collector::{list_dir, Collector, CollectorDef, Ctx, SysDir};
use crate::settings::{CollectorSettings, Flag};

pub(crate) const DEF: CollectorDef<Settings> = CollectorDef {
    name: "bcache",
    default_enabled: true,
    build: |settings, _paths| {
        Ok(Box::new(BcacheCollector {
            priority_stats: settings.priority_stats,
        }))
    },
};

/// `modules.node.bcache`.
#[derive(Clone, Debug, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settings {
    /// Also export `node_bcache_priority_stats_*` from each cache device's `priority_stats`,
    /// which the kernel computes by walking every bucket (node_exporter's
    /// `--collector.bcache.priorityStats`, off by default).
    pub(crate) priority_stats: bool,
}

impl CollectorSettings for Settings {
    const FLAG_PREFIXES: &'static [&'static str] = &["bcache"];
    const HELP: &'static str =
        "  --collector.bcache.priorityStats            node_bcache_priority_stats_* (expensive; default off)\n";

    fn apply_flag(&mut self, flag: &Flag<'_>) -> Result<bool, String> {
        match flag.key {
            "priorityStats" => self.priority_stats = flag.bool()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

struct BcacheCollector {
    priority_stats: bool,
}

/// The cache set attributes node_exporter exports, in its order: (file under `<uuid>/`,
/// metric suffix, help, kind, scale).
#[rustfmt::skip]
const SET_ATTRS: [(&CStr, &str, &str, Kind, f64); 10] = [
    (c"average_key_size", "average_key_size_sectors", "Average data per key in the btree (sectors).", Kind::Gauge, 1.0),
    (c"btree_cache_size", "btree_cache_size_bytes", "Amount of memory currently used by the btree cache.", Kind::Gauge, 1.0),
    (c"cache_available_percent", "cache_available_percent", "Percentage of cache device without dirty data, usable for writeback (may contain clean cached data).", Kind::Gauge, 1.0),
    (c"congested", "congested", "Congestion.", Kind::Gauge, 1.0),
    (c"root_usage_percent", "root_usage_percent", "Percentage of the root btree node in use (tree depth increases if too high).", Kind::Gauge, 1.0),
    (c"tree_depth", "tree_depth", "Depth of the btree.", Kind::Gauge, 1.0),
    (c"internal/active_journal_entries", "active_journal_entries", "Number of journal entries that are newer than the index.", Kind::Gauge, 1.0),
    (c"internal/btree_nodes", "btree_nodes", "Total nodes in the btree.", Kind::Gauge, 1.0),
    // The kernel writes microseconds; node_exporter scales by 1e-9 (as if nanoseconds), and
    // so do we, so that the values match.
    (c"internal/btree_read_average_duration_us", "btree_read_average_duration_seconds", "Average btree read duration.", Kind::Gauge, 1e-9),
    (c"internal/cache_read_races", "cache_read_races_total", "Counts instances where while data was being read from the cache, the bucket was reused and invalidated - i.e. where the pointer was stale after the read completed.", Kind::Counter, 1.0),
];

/// A backing device's `stats_total/` counters node_exporter exports, in its order: (file,
/// metric suffix, help).
const PERIOD_ATTRS: [(&CStr, &str, &str); 7] = [
    (
        c"stats_total/bypassed",
        "bypassed_bytes_total",
        "Amount of IO (both reads and writes) that has bypassed the cache.",
    ),
    (
        c"stats_total/cache_hits",
        "cache_hits_total",
        "Hits counted per individual IO as bcache sees them.",
    ),
    (
        c"stats_total/cache_misses",
        "cache_misses_total",
        "Misses counted per individual IO as bcache sees them.",
    ),
    (
        c"stats_total/cache_bypass_hits",
        "cache_bypass_hits_total",
        "Hits for IO intended to skip the cache.",
    ),
    (
        c"stats_total/cache_bypass_misses",
        "cache_bypass_misses_total",
        "Misses for IO intended to skip the cache.",
    ),
    (
        c"stats_total/cache_miss_collisions",
        "cache_miss_collisions_total",
        "Instances where data insertion from cache miss raced with write (data already present).",
    ),
    (
        c"stats_total/cache_readaheads",
        "cache_readaheads_total",
        "Count of times readahead occurred.",
    ),
];

/// Index of `cache_readaheads` in [`PERIOD_ATTRS`]: exported only when not zero, as
/// node_exporter does since 1.6.
const READAHEADS: usize = 6;

/// A cache device's attributes node_exporter exports: (file, metric suffix, help, kind).
const CACHE_ATTRS: [(&CStr, &str, &str, Kind); 3] = [
    (
        c"io_errors",
        "io_errors",
        "Number of errors that have occurred, decayed by io_error_halflife.",
        Kind::Gauge,
    ),
    (
        c"metadata_written",
        "metadata_written_bytes_total",
        "Sum of all non data writes (btree writes and all other metadata).",
        Kind::Counter,
    ),
    (
        c"written",
        "written_bytes_total",
        "Sum of all data that has been written to the cache.",
        Kind::Counter,
    ),
];

/// One cache set, `<sysfs>/fs/bcache/<uuid>/`.
#[derive(Debug, PartialEq)]
struct CacheSet {
    uuid: String,
    /// The values of [`SET_ATTRS`].
    attrs: [u64; SET_ATTRS.len()],
    bdevs: Vec<Bdev>,
    caches: Vec<CacheDev>,
}

/// A backing device of a cache set (`bdev<N>`).
#[derive(Debug, PartialEq)]
struct Bdev {
    name: String,
    dirty_data: u64,
    writeback: WritebackRate,
    /// The values of [`PERIOD_ATTRS`].
    total: [u64; PERIOD_ATTRS.len()],
}

/// A cache device of a cache set (`cache<N>`).
#[derive(Debug, PartialEq)]
struct CacheDev {
    name: String,
    /// The values of [`CACHE_ATTRS`].
    attrs: [u64; CACHE_ATTRS.len()],
    /// `priority_stats`: unused and metadata percent, when asked for.
    priority: Option<PriorityStats>,
}

/// `writeback_rate_debug` of a backing device.
#[derive(Debug, Default, PartialEq)]
struct WritebackRate {
    /// Bytes per second.
    rate: u64,
    dirty: u64,
    target: u64,
    proportional: i64,
    integral: i64,
    /// Bytes per second.
    change: i64,
}

/// `priority_stats` of a cache device.
#[derive(Debug, Default, PartialEq)]
struct PriorityStats {
    unused_percent: u64,
    metadata_percent: u64,
}

impl Collector for BcacheCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let base = ctx.sys_path("fs/bcache");
        let mut sets = Vec::new();
        let mut buf = Vec::with_capacity(4096);
        // Cache sets are the entries named by a UUID; `register` and friends are files.
        for uuid in list_dir(&base)?.into_iter().filter(|n| n.contains('-')) {
            ctx.check_deadline("bcache cache sets")?;
            sets.push(self.read_set(&base.join(&uuid), uuid, &mut buf)?);
        }
        write_sets(enc, &sets);
        Ok(())
    }
}

impl BcacheCollector {
    /// Reads one cache set. A missing attribute is an error, as in node_exporter.
    fn read_set(&self, dir: &Path, uuid: String, buf: &mut Vec<u8>) -> Result<CacheSet, String> {
        let set_dir = open_dir(dir)?;
        let mut attrs = [0; SET_ATTRS.len()];
        for (v, (file, ..)) in attrs.iter_mut().zip(SET_ATTRS) {
            *v = read_value(&set_dir, dir, file, buf)?;
        }
        let entries = list_dir(dir)?;
        let mut bdevs = Vec::new();
        for name in entries.iter().filter(|n| numbered(n, "bdev")) {
            let path = dir.join(name);
            let d = open_dir(&path)?;
            let dirty_data = read_value(&d, &path, c"dirty_data", buf)?;
            let text = read_attr(&d, &path, c"writeback_rate_debug", buf)?;
            let writeback = parse_writeback_rate(text)
                .map_err(|e| format!("parsing {}/writeback_rate_debug: {e}", path.display()))?;
            let mut total = [0; PERIOD_ATTRS.len()];
            for (v, (file, ..)) in total.iter_mut().zip(PERIOD_ATTRS) {
                *v = read_value(&d, &path, file, buf)?;
            }
            bdevs.push(Bdev {
                name: name.clone(),
                dirty_data,
                writeback,
                total,
            });
        }
        let mut caches = Vec::new();
        for name in entries.iter().filter(|n| numbered(n, "cache")) {
            let path = dir.join(name);
            let d = open_dir(&path)?;
            let mut attrs = [0; CACHE_ATTRS.len()];
            for (v, (file, ..)) in attrs.iter_mut().zip(CACHE_ATTRS) {
                *v = read_value(&d, &path, file, buf)?;
            }
            let priority = if self.priority_stats {
                let text = read_attr(&d, &path, c"priority_stats", buf)?;
                Some(
                    parse_priority_stats(text)
                        .map_err(|e| format!("parsing {}/priority_stats: {e}", path.display()))?,
                )
            } else {
                None
            };
            caches.push(CacheDev {
                name: name.clone(),
                attrs,
                priority,
            });
        }
        Ok(CacheSet {
            uuid,
            attrs,
            bdevs,
            caches,
        })
    }
}

/// Opens a directory of the cache set that must exist (it was just listed).
fn open_dir(path: &Path) -> Result<SysDir, String> {
    SysDir::open(path)?.ok_or_else(|| format!("{}: gone or not a directory", path.display()))
}

/// Whether `name` is `<prefix><digit>...` (`bdev0`, `cache12`), as node_exporter's glob
/// `bdev[0-9]*`.
fn numbered(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .and_then(|rest| rest.bytes().next())
        .is_some_and(|b| b.is_ascii_digit())
}

/// Reads an attribute that must exist.
fn read_attr<'b>(
    dir: &SysDir,
    path: &Path,
    file: &CStr,
    buf: &'b mut Vec<u8>,
) -> Result<&'b str, String> {
    dir.read(file, buf)?.ok_or_else(|| {
        format!(
            "reading {}/{}: missing",
            path.display(),
            file.to_string_lossy()
        )
    })
}

/// Reads an attribute that must exist and holds a number as bcache prints them.
fn read_value(dir: &SysDir, path: &Path, file: &CStr, buf: &mut Vec<u8>) -> Result<u64, String> {
    let text = read_attr(dir, path, file, buf)?;
    dehumanize(text)
        .map_err(|e| format!("parsing {}/{}: {e}", path.display(), file.to_string_lossy()))
}

/// Writes every family with the samples of all cache sets.
fn write_sets(enc: &mut Encoder<'_>, sets: &[CacheSet]) {
    let mut name = String::with_capacity(64);
    for (i, (_, suffix, help, kind, scale)) in SET_ATTRS.iter().enumerate() {
        metric_name(&mut name, suffix);
        let mut f = enc.family(&name, help, *kind);
        for s in sets {
            let v = s.attrs.get(i).copied().unwrap_or(0) as f64;
            f.sample(&[("uuid", &s.uuid)], v * scale);
        }
    }
    type BdevValue = fn(&Bdev) -> f64;
    let bdev_families: [(&str, &str, BdevValue); 6] = [
        (
            "dirty_data_bytes",
            "Amount of dirty data for this backing device in the cache.",
            |b| b.dirty_data as f64,
        ),
        (
            "dirty_target_bytes",
            "Current dirty data target threshold for this backing device in bytes.",
            |b| b.writeback.target as f64,
        ),
        (
            "writeback_rate",
            "Current writeback rate for this backing device in bytes.",
            |b| b.writeback.rate as f64,
        ),
        (
            "writeback_rate_proportional_term",
            "Current result of proportional controller, part of writeback rate",
            |b| b.writeback.proportional as f64,
        ),
        (
            "writeback_rate_integral_term",
            "Current result of integral controller, part of writeback rate",
            |b| b.writeback.integral as f64,
        ),
        (
            "writeback_change",
            "Last writeback rate change step for this backing device.",
            |b| b.writeback.change as f64,
        ),
    ];
    let bdevs = || {
        sets.iter()
            .flat_map(|s| s.bdevs.iter().map(move |b| (s, b)))
    };
    for (suffix, help, value) in bdev_families {
        metric_name(&mut name, suffix);
        let mut f = enc.family(&name, help, Kind::Gauge);
        for (s, b) in bdevs() {
            f.sample(&[("backing_device", &b.name), ("uuid", &s.uuid)], value(b));
        }
    }
    for (i, (_, suffix, help)) in PERIOD_ATTRS.iter().enumerate() {
        metric_name(&mut name, suffix);
        let mut f = enc.family(&name, help, Kind::Counter);
        for (s, b) in bdevs() {
            let v = b.total.get(i).copied().unwrap_or(0);
            if i == READAHEADS && v == 0 {
                continue;
            }
            f.sample(&[("backing_device", &b.name), ("uuid", &s.uuid)], v as f64);
        }
    }
    let caches = || {
        sets.iter()
            .flat_map(|s| s.caches.iter().map(move |c| (s, c)))
    };
    for (i, (_, suffix, help, kind)) in CACHE_ATTRS.iter().enumerate() {
        metric_name(&mut name, suffix);
        let mut f = enc.family(&name, help, *kind);
        for (s, c) in caches() {
            let v = c.attrs.get(i).copied().unwrap_or(0);
            f.sample(&[("cache_device", &c.name), ("uuid", &s.uuid)], v as f64);
        }
    }
    type PriorityValue = fn(&PriorityStats) -> u64;
    let priority_families: [(&str, &str, PriorityValue); 2] = [
        (
            "priority_stats_unused_percent",
            "The percentage of the cache that doesn't contain any data.",
            |p| p.unused_percent,
        ),
        (
            "priority_stats_metadata_percent",
            "Bcache's metadata overhead.",
            |p| p.metadata_percent,
        ),
    ];
    for (suffix, help, value) in priority_families {
        metric_name(&mut name, suffix);
        let mut f = enc.family(&name, help, Kind::Gauge);
        for (s, c) in caches() {
            if let Some(p) = &c.priority {
                f.sample(
                    &[("cache_device", &c.name), ("uuid", &s.uuid)],
                    value(p) as f64,
                );
            }
        }
    }
}

/// `node_bcache_<suffix>` into `out`.
fn metric_name(out: &mut String, suffix: &str) {
    out.clear();
    out.push_str("node_bcache_");
    out.push_str(suffix);
}

/// Parses a number as the kernel's `bch_hprint` writes it (`20.4G`, `427.5k`, `0`), the way
/// prometheus/procfs reads it: the digit after the point is taken as a fraction of 1024 /
/// 100 and the suffix as a power of 1024.
fn dehumanize(s: &str) -> Result<u64, String> {
    let Some(last) = s.bytes().last() else {
        return Err("empty value".to_string());
    };
    if s.starts_with('-') {
        return Err(format!("negative value {s:?}"));
    }
    let (mantissa, multiplier) = if last.is_ascii_digit() || last == b'.' {
        (parse_float(s)?, 1.0)
    } else {
        let power = match last {
            b'k' => 1,
            b'M' => 2,
            b'G' => 3,
            b'T' => 4,
            b'P' => 5,
            b'E' => 6,
            b'Z' => 7,
            b'Y' => 8,
            _ => return Err(format!("unknown unit in {s:?}")),
        };
        let digits = s.get(..s.len() - 1).unwrap_or("");
        (parse_pseudo_float(digits)?, 1024f64.powi(power))
    };
    Ok((mantissa * multiplier) as u64)
}

/// [`dehumanize`] for values that may be negative (`-427.5k`).
fn dehumanize_signed(s: &str) -> Result<i64, String> {
    match s.strip_prefix('-') {
        Some(abs) => Ok(-(dehumanize(abs)? as i64)),
        None => Ok(dehumanize(s)? as i64),
    }
}

/// `bch_hprint`'s `<int>.<frac>`: its one fraction digit counts 1024ths in steps of ~100, so
/// procfs (and node_exporter) divide it by 10.24.
fn parse_pseudo_float(s: &str) -> Result<f64, String> {
    let mut parts = s.split('.');
    let int = parse_float(parts.next().unwrap_or(""))?;
    match parts.next() {
        None => Ok(int),
        Some(frac) => Ok(int + parse_float(frac)? / 10.24),
    }
}

fn parse_float(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .map_err(|_| format!("invalid number {s:?}"))
}

/// Parses `writeback_rate_debug`:
///
/// ```text
/// rate:           1.1M/sec
/// dirty:          20.4G
/// target:         20.4G
/// proportional:   427.5k
/// integral:       -790.0k
/// change:         321.5k/sec
/// next io:        17ms
/// ```
fn parse_writeback_rate(text: &str) -> Result<WritebackRate, String> {
    let mut w = WritebackRate::default();
    for line in text.lines() {
        let Some((key, _)) = line.split_once(':') else {
            continue;
        };
        let last = || -> Result<&str, String> {
            line.split_ascii_whitespace()
                .last()
                .filter(|v| !v.ends_with(':'))
                .ok_or_else(|| format!("no value in {line:?}"))
        };
        match key {
            "rate" => w.rate = dehumanize(last()?.trim_end_matches("/sec"))?,
            "dirty" => w.dirty = dehumanize(last()?)?,
            "target" => w.target = dehumanize(last()?)?,
            "proportional" => w.proportional = dehumanize_signed(last()?)?,
            "integral" => w.integral = dehumanize_signed(last()?)?,
            "change" => w.change = dehumanize_signed(last()?.trim_end_matches("/sec"))?,
            _ => {}
        }
    }
    Ok(w)
}

/// Parses `priority_stats` (`Unused:  99%`, `Metadata:  0%`, ...).
fn parse_priority_stats(text: &str) -> Result<PriorityStats, String> {
    let mut p = PriorityStats::default();
    for line in text.lines() {
        let slot = if line.starts_with("Unused:") {
            &mut p.unused_percent
        } else if line.starts_with("Metadata:") {
            &mut p.metadata_percent
        } else {
            continue;
        };
        let v = line
            .split_ascii_whitespace()
            .last()
            .unwrap_or("")
            .trim_end_matches('%');
        *slot = v
            .parse()
            .map_err(|_| format!("invalid percentage in {line:?}"))?;
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dehumanizes_like_procfs() {
        assert_eq!(dehumanize("0").unwrap(), 0);
        assert_eq!(dehumanize("512").unwrap(), 512);
        assert_eq!(dehumanize("1.0k").unwrap(), 1024);
        assert_eq!(dehumanize("2k").unwrap(), 2048);
        // procfs: 1 + 5/10.24 MiB
        assert_eq!(
            dehumanize("1.5M").unwrap(),
            ((1.0 + 5.0 / 10.24) * 1048576.0) as u64
        );
        assert_eq!(
            dehumanize("20.4G").unwrap(),
            ((20.0 + 4.0 / 10.24) * 1073741824.0) as u64
        );
        assert_eq!(
            dehumanize_signed("-427.5k").unwrap(),
            -(((427.0 + 5.0 / 10.24) * 1024.0) as i64)
        );
        assert_eq!(dehumanize_signed("3").unwrap(), 3);
        for bad in ["", "k", "1.xk", "12q", "abc", "-1", "1..k"] {
            assert!(dehumanize(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn writeback_rate_debug() {
        let text = "rate:\t\t1.1M/sec\ndirty:\t\t20.4G\ntarget:\t\t20.4G\nproportional:\t427.5k\nintegral:\t-790.0k\nchange:\t\t-321.5k/sec\nnext io:\t17ms\n";
        let w = parse_writeback_rate(text).unwrap();
        assert_eq!(w.rate, dehumanize("1.1M").unwrap());
        assert_eq!(w.dirty, dehumanize("20.4G").unwrap());
        assert_eq!(w.target, w.dirty);
        assert_eq!(w.proportional, dehumanize("427.5k").unwrap() as i64);
        assert_eq!(w.integral, -(dehumanize("790.0k").unwrap() as i64));
        assert_eq!(w.change, -(dehumanize("321.5k").unwrap() as i64));
        assert_eq!(parse_writeback_rate("").unwrap(), WritebackRate::default());
        // Truncated: a key without its value, or garbage where a number belongs.
        assert!(parse_writeback_rate("rate:\n")
            .unwrap_err()
            .contains("no value"));
        assert!(parse_writeback_rate("dirty:\t\tlots\n").is_err());
    }

    #[test]
    fn priority_stats() {
        let text = "Unused:\t\t99%\nClean:\t\t0%\nDirty:\t\t0%\nMetadata:\t1%\nAverage:\t10473\nSectors per Q:\t64\nQuantiles:\t[0 0 0]\n";
        assert_eq!(
            parse_priority_stats(text).unwrap(),
            PriorityStats {
                unused_percent: 99,
                metadata_percent: 1
            }
        );
        assert!(parse_priority_stats("Unused: x%\n").is_err());
        assert!(parse_priority_stats("Metadata:\n").is_err());
    }

    #[test]
    fn readaheads_index() {
        assert_eq!(PERIOD_ATTRS[READAHEADS].0, c"stats_total/cache_readaheads");
    }

    #[test]
    fn numbered_entries() {
        assert!(numbered("bdev0", "bdev"));
        assert!(numbered("cache12", "cache"));
        assert!(!numbered("bdev", "bdev"));
        assert!(!numbered("cache_available_percent", "cache"));
    }

    /// A cache set as the kernel lays it out (attributes only, no symlinks needed).
    fn cache_set(t: &crate::collectors::test_tree::TestTree, uuid: &str) {
        let d = format!("fs/bcache/{uuid}");
        for (f, v) in [
            ("average_key_size", "0"),
            ("btree_cache_size", "1.5M"),
            ("cache_available_percent", "100"),
            ("congested", "0"),
            ("root_usage_percent", "0"),
            ("tree_depth", "0"),
            ("internal/active_journal_entries", "1"),
            ("internal/btree_nodes", "2"),
            ("internal/btree_read_average_duration_us", "1305"),
            ("internal/cache_read_races", "0"),
            ("bdev0/dirty_data", "1.0k"),
            ("bdev0/writeback_rate_debug", "rate:\t\t4.0k/sec\ndirty:\t\t1.0k\ntarget:\t\t2.0k\nproportional:\t-3\nintegral:\t5\nchange:\t\t0/sec\nnext io:\t-1ms"),
            ("bdev0/stats_total/bypassed", "0"),
            ("bdev0/stats_total/cache_hits", "546"),
            ("bdev0/stats_total/cache_misses", "0"),
            ("bdev0/stats_total/cache_bypass_hits", "0"),
            ("bdev0/stats_total/cache_bypass_misses", "0"),
            ("bdev0/stats_total/cache_miss_collisions", "0"),
            ("bdev0/stats_total/cache_readaheads", "0"),
            ("cache0/io_errors", "0"),
            ("cache0/metadata_written", "512"),
            ("cache0/written", "0"),
            ("cache0/priority_stats", "Unused:\t\t99%\nMetadata:\t0%\n"),
        ] {
            t.write(&format!("{d}/{f}"), &format!("{v}\n"));
        }
    }

    fn scrape(
        t: &crate::collectors::test_tree::TestTree,
        priority_stats: bool,
    ) -> Result<String, String> {
        let paths = eos_module::HostPaths {
            sysfs: t.path().to_path_buf(),
            ..eos_module::HostPaths::default()
        };
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, eos_exposition::Format::Text);
        let mut buf = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        BcacheCollector { priority_stats }
            .update(&mut enc, &mut Ctx::new(&paths, deadline, &mut buf))?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn collects_cache_sets() {
        let t = crate::collectors::test_tree::TestTree::new("bcache");
        assert_eq!(scrape(&t, false).unwrap(), "", "no bcache: nothing");
        let uuid = "deaddd54-c735-46d5-868e-f331c5fd7c74";
        cache_set(&t, uuid);
        t.write("fs/bcache/register", "");
        let text = scrape(&t, false).unwrap();
        eos_exposition::parse_text(&text).unwrap();
        let u = format!("uuid=\"{uuid}\"");
        for want in [
            "# TYPE node_bcache_btree_cache_size_bytes gauge".to_string(),
            // 1.5M as procfs reads it: (1 + 5/10.24) MiB.
            format!("node_bcache_btree_cache_size_bytes{{{u}}} 1.560576e+06"),
            format!("node_bcache_active_journal_entries{{{u}}} 1"),
            format!("node_bcache_btree_read_average_duration_seconds{{{u}}} 1.305e-06"),
            "# TYPE node_bcache_cache_read_races_total counter".to_string(),
            format!("node_bcache_dirty_data_bytes{{backing_device=\"bdev0\",{u}}} 1024"),
            format!("node_bcache_dirty_target_bytes{{backing_device=\"bdev0\",{u}}} 2048"),
            format!("node_bcache_writeback_rate{{backing_device=\"bdev0\",{u}}} 4096"),
            format!(
                "node_bcache_writeback_rate_proportional_term{{backing_device=\"bdev0\",{u}}} -3"
            ),
            format!("node_bcache_writeback_rate_integral_term{{backing_device=\"bdev0\",{u}}} 5"),
            format!("node_bcache_writeback_change{{backing_device=\"bdev0\",{u}}} 0"),
            format!("node_bcache_cache_hits_total{{backing_device=\"bdev0\",{u}}} 546"),
            format!("node_bcache_metadata_written_bytes_total{{cache_device=\"cache0\",{u}}} 512"),
            format!("node_bcache_io_errors{{cache_device=\"cache0\",{u}}} 0"),
        ] {
            assert!(
                text.lines().any(|l| l == want),
                "missing {want:?} in:\n{text}"
            );
        }
        // Zero readaheads and (without the flag) priority stats are not exported.
        assert!(!text.contains("cache_readaheads_total"));
        assert!(!text.contains("priority_stats"));

        t.write(
            &format!("fs/bcache/{uuid}/bdev0/stats_total/cache_readaheads"),
            "3\n",
        );
        let text = scrape(&t, true).unwrap();
        assert!(text.contains(&format!(
            "node_bcache_cache_readaheads_total{{backing_device=\"bdev0\",{u}}} 3\n"
        )));
        assert!(text.contains(&format!(
            "node_bcache_priority_stats_unused_percent{{cache_device=\"cache0\",{u}}} 99\n"
        )));
        assert!(text.contains(&format!(
            "node_bcache_priority_stats_metadata_percent{{cache_device=\"cache0\",{u}}} 0\n"
        )));

        // A missing attribute fails the collector, naming the file.
        std::fs::remove_file(t.path().join(format!("fs/bcache/{uuid}/bdev0/dirty_data"))).unwrap();
        let e = scrape(&t, false).unwrap_err();
        assert!(e.contains("bdev0/dirty_data: missing"), "{e}");
        t.write(&format!("fs/bcache/{uuid}/bdev0/dirty_data"), "1.2.3.4q\n");
        let e = scrape(&t, false).unwrap_err();
        assert!(e.contains("parsing") && e.contains("dirty_data"), "{e}");
    }

    #[test]
    fn settings_from_flags_and_yaml() {
        let flag = |key, negated| Flag {
            name: "collector.bcache.x",
            key,
            negated,
            value: None,
        };
        let mut s = Settings::default();
        assert!(!s.priority_stats);
        assert!(s.apply_flag(&flag("priorityStats", false)).unwrap());
        assert!(s.priority_stats);
        assert!(s.apply_flag(&flag("priorityStats", true)).unwrap());
        assert!(!s.priority_stats);
        assert!(!s.apply_flag(&flag("bogus", false)).unwrap());
        let y: Settings = serde_yaml_ng::from_str("priority_stats: true").unwrap();
        assert!(y.priority_stats);
        assert!(serde_yaml_ng::from_str::<Settings>("priorityStats: true").is_err());
    }
}
