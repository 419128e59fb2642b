//! `bcachefs`: statistics of mounted bcachefs filesystems from `<sysfs>/fs/bcachefs/<uuid>/`,
//! as `node_bcachefs_*` with node_exporter's names, labels and values (1.11, #3523, read
//! through procfs's `bcachefs` package):
//!
//! - per filesystem: `btree_cache_size`, `compression_stats` (per algorithm), `errors` (per
//!   error type), `btree_write_stats` (per write type), and every file in `counters/` as its
//!   own family `node_bcachefs_<counter>_total` (the count since filesystem creation);
//! - per member device `dev-<N>/`: `label`, `state`, `bucket_size`, `nbuckets`, `durability`,
//!   and `io_done` (bytes per operation and data type) and `io_errors` (the "since filesystem
//!   creation" section).
//!
//! Sizes are written the way bcachefs prints them (`542k`, `1.5G`: powers of 1024). As in
//! procfs, a missing file reads as nothing (or 0), lines with too few fields are skipped, and
//! a value that is not a number fails the collector, here with the file and line named. Hosts
//! without bcachefs write nothing.

use eos_exposition::{sanitize_name, Encoder, Kind};
use std::collections::BTreeMap;
use std::path::Path;

use crate::collector::{
    list_dir_entries, list_subdirs, parse_u64, read_trimmed, At, Collector, CollectorDef, Ctx,
};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "bcachefs",
    default_enabled: true,
    build: |_, _| Ok(Box::new(BcachefsCollector)),
};

struct BcachefsCollector;

/// One filesystem, `<sysfs>/fs/bcachefs/<uuid>/`.
#[derive(Debug, Default, PartialEq)]
struct Filesystem {
    uuid: String,
    btree_cache_size: u64,
    /// Algorithm -> (compressed, uncompressed) bytes.
    compression: BTreeMap<String, (u64, u64)>,
    /// Error type -> count.
    errors: BTreeMap<String, u64>,
    /// Counter file name -> count since filesystem creation.
    counters: BTreeMap<String, u64>,
    /// Write type -> (count, average size in bytes).
    btree_writes: BTreeMap<String, (u64, u64)>,
    /// Sorted by name.
    devices: Vec<Device>,
}

/// A member device, `dev-<name>/`.
#[derive(Debug, Default, PartialEq)]
struct Device {
    name: String,
    label: String,
    state: String,
    bucket_size: u64,
    buckets: u64,
    durability: u64,
    /// (operation, data type) -> bytes.
    io_done: BTreeMap<(String, String), u64>,
    /// Error type -> count since filesystem creation.
    io_errors: BTreeMap<String, u64>,
}

impl Collector for BcachefsCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let root = ctx.sys_path("fs/bcachefs");
        let mut filesystems = Vec::new();
        for uuid in list_subdirs(&root)? {
            ctx.check_deadline("bcachefs filesystems")?;
            let dir = root.join(&uuid);
            filesystems.push(read_filesystem(ctx, &dir, uuid)?);
        }
        for (name, family) in families(&filesystems) {
            let mut fam = enc.family(&name, &family.help, family.kind);
            for (labels, value) in &family.samples {
                fam.sample_owned(labels, *value);
            }
        }
        Ok(())
    }
}

/// Reads `path` and parses its text with `parse` (which gets the file name for its errors);
/// `None` when the file does not exist.
fn read_with<T>(
    ctx: &mut Ctx<'_>,
    path: &Path,
    parse: impl FnOnce(&str, &str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    let file = path.display().to_string();
    match ctx.read_optional(path)? {
        Some(text) => parse(text, &file).map(Some),
        None => Ok(None),
    }
}

/// Reads one filesystem directory.
fn read_filesystem(ctx: &mut Ctx<'_>, dir: &Path, uuid: String) -> Result<Filesystem, String> {
    let mut fs = Filesystem {
        uuid,
        ..Filesystem::default()
    };
    let cache_size = |text: &str, file: &str| match text.trim() {
        "" => Ok(0),
        size => parse_size(size, &format!("parsing {file}")),
    };
    let file = |name: &str| dir.join(name);
    fs.btree_cache_size = read_with(ctx, &file("btree_cache_size"), cache_size)?.unwrap_or(0);
    fs.compression =
        read_with(ctx, &file("compression_stats"), parse_compression_stats)?.unwrap_or_default();
    fs.errors = read_with(ctx, &file("errors"), parse_errors)?.unwrap_or_default();
    fs.btree_writes =
        read_with(ctx, &file("btree_write_stats"), parse_btree_write_stats)?.unwrap_or_default();
    let counters = file("counters");
    for (name, is_dir) in list_dir_entries(&counters)? {
        if is_dir {
            continue;
        }
        if let Some(count) = read_with(ctx, &counters.join(&name), parse_counter)? {
            fs.counters.insert(name, count);
        }
    }
    for entry in list_subdirs(dir)? {
        if let Some(name) = entry.strip_prefix("dev-") {
            let device = read_device(ctx, &file(&entry), name.to_string())?;
            fs.devices.push(device);
        }
    }
    Ok(fs)
}

/// Reads one member device directory.
fn read_device(ctx: &mut Ctx<'_>, dir: &Path, name: String) -> Result<Device, String> {
    // procfs reads these three ignoring any error.
    let text = |f: &str| {
        read_trimmed(&dir.join(f))
            .ok()
            .flatten()
            .unwrap_or_default()
    };
    let bucket_size = match text("bucket_size").as_str() {
        "" => 0,
        size => parse_size(
            size,
            &format!("parsing {}", dir.join("bucket_size").display()),
        )?,
    };
    let number = |text: &str, file: &str| parse_u64(text.trim(), &format!("parsing {file}"));
    let file = |name: &str| dir.join(name);
    Ok(Device {
        label: text("label"),
        state: text("state"),
        bucket_size,
        buckets: read_with(ctx, &file("nbuckets"), number)?.unwrap_or(0),
        durability: read_with(ctx, &file("durability"), number)?.unwrap_or(0),
        io_done: read_with(ctx, &file("io_done"), parse_io_done)?.unwrap_or_default(),
        io_errors: read_with(ctx, &file("io_errors"), parse_io_errors)?.unwrap_or_default(),
        name,
    })
}

/// A size as bcachefs prints it: a number, optionally with a fraction, and a suffix `k`, `M`,
/// `G`, `T`, `P` or `E` (either case) for powers of 1024; bytes, rounded down.
fn parse_size(s: &str, what: &dyn std::fmt::Display) -> Result<u64, String> {
    let s = s.trim();
    let (number, unit) = match s.as_bytes().last().map(u8::to_ascii_lowercase) {
        Some(b'k') => (s.get(..s.len() - 1), 1),
        Some(b'm') => (s.get(..s.len() - 1), 2),
        Some(b'g') => (s.get(..s.len() - 1), 3),
        Some(b't') => (s.get(..s.len() - 1), 4),
        Some(b'p') => (s.get(..s.len() - 1), 5),
        Some(b'e') => (s.get(..s.len() - 1), 6),
        Some(_) => (Some(s), 0),
        None => return Err(format!("{what}: empty size")),
    };
    let bad = || format!("{what}: invalid size {s:?}");
    let value: f64 = number.ok_or_else(bad)?.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    Ok((value * 1024f64.powi(unit)) as u64)
}

/// `compression_stats`: a header line, then `<algorithm>: <compressed> <uncompressed>
/// [<average extent size>]` -> algorithm -> (compressed, uncompressed) bytes.
fn parse_compression_stats(text: &str, file: &str) -> Result<BTreeMap<String, (u64, u64)>, String> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let at = At(file, i + 1);
        let f: Vec<&str> = line.split_whitespace().collect();
        let [algorithm, compressed, uncompressed, rest @ ..] = f.as_slice() else {
            continue;
        };
        let compressed = parse_size(compressed, &at)?;
        let uncompressed = parse_size(uncompressed, &at)?;
        if let Some(average) = rest.first() {
            parse_size(average, &at)?;
        }
        let algorithm: &str = algorithm;
        let algorithm = algorithm.strip_suffix(':').unwrap_or(algorithm);
        out.insert(algorithm.to_string(), (compressed, uncompressed));
    }
    Ok(out)
}

/// `errors`: `<error type> <count> [<time>]` -> error type -> count.
fn parse_errors(text: &str, file: &str) -> Result<BTreeMap<String, u64>, String> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let at = At(file, i + 1);
        let f: Vec<&str> = line.split_whitespace().collect();
        let [name, count, rest @ ..] = f.as_slice() else {
            continue;
        };
        let count = parse_u64(count, &at)?;
        if let Some(time) = rest.first() {
            parse_u64(time, &at)?;
        }
        out.insert(name.to_string(), count);
    }
    Ok(out)
}

/// A file of `counters/`: `since mount: <n>` and `since filesystem creation: <n>` (sizes for
/// counters of bytes) -> the count since filesystem creation (0 if only "since mount" is
/// there). Neither line is an error.
fn parse_counter(text: &str, file: &str) -> Result<u64, String> {
    let mut since_creation = None;
    let mut seen = false;
    for (i, line) in text.lines().enumerate() {
        let at = At(file, i + 1);
        if let Some(v) = line.strip_prefix("since mount:") {
            parse_size(v, &at)?;
            seen = true;
        } else if let Some(v) = line.strip_prefix("since filesystem creation:") {
            since_creation = Some(parse_size(v, &at)?);
            seen = true;
        }
    }
    if !seen {
        return Err(format!(
            "parsing {file}: expected \"since mount:\" or \"since filesystem creation:\""
        ));
    }
    Ok(since_creation.unwrap_or(0))
}

/// `btree_write_stats`: a header line, then `<type>: <count> <average size>` -> type ->
/// (count, average size in bytes).
fn parse_btree_write_stats(text: &str, file: &str) -> Result<BTreeMap<String, (u64, u64)>, String> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let at = At(file, i + 1);
        let f: Vec<&str> = line.split_whitespace().collect();
        let [kind, count, size, ..] = f.as_slice() else {
            continue;
        };
        let count = parse_u64(count, &at)?;
        let size = parse_size(size, &at)?;
        let kind: &str = kind;
        let kind = kind.strip_suffix(':').unwrap_or(kind);
        out.insert(kind.to_string(), (count, size));
    }
    Ok(out)
}

/// A device's `io_done`: `read:` and `write:` sections of `<data type>: <bytes>` lines ->
/// (operation, data type) -> bytes. Lines before the first section, and without a colon, are
/// skipped.
fn parse_io_done(text: &str, file: &str) -> Result<BTreeMap<(String, String), u64>, String> {
    let mut out = BTreeMap::new();
    let mut operation = None;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line == "read:" || line == "write:" {
            operation = line.strip_suffix(':');
            continue;
        }
        let (Some(op), Some((data_type, value))) = (operation, line.split_once(':')) else {
            continue;
        };
        let value = parse_u64(value.trim(), &At(file, i + 1))?;
        out.insert((op.to_string(), data_type.trim().to_string()), value);
    }
    Ok(out)
}

/// A device's `io_errors`: the `<type>: <count>` lines of the "IO errors since filesystem
/// creation" section (which ends at the next "IO errors since ..." header) -> type -> count.
fn parse_io_errors(text: &str, file: &str) -> Result<BTreeMap<String, u64>, String> {
    let mut out = BTreeMap::new();
    let mut in_section = false;
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("IO errors since filesystem creation") {
            in_section = true;
            continue;
        }
        if line.starts_with("IO errors since ") {
            break;
        }
        if !in_section {
            continue;
        }
        let Some((kind, value)) = line.trim().split_once(':') else {
            continue;
        };
        let value = parse_u64(value.trim(), &At(file, i + 1))?;
        out.insert(kind.trim().to_string(), value);
    }
    Ok(out)
}

/// One family to write: help, type and samples (labels in name order, value).
struct Family {
    help: String,
    kind: Kind,
    samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

/// Every family of all filesystems, by name (the order node_exporter's output has).
fn families(filesystems: &[Filesystem]) -> BTreeMap<String, Family> {
    let mut out: BTreeMap<String, Family> = BTreeMap::new();
    let mut add =
        |name: String, help: &str, kind: Kind, labels: Vec<(&'static str, String)>, value: u64| {
            out.entry(name)
                .or_insert_with(|| Family {
                    help: help.to_string(),
                    kind,
                    samples: Vec::new(),
                })
                .samples
                .push((labels, value as f64));
        };
    let name = |suffix: &str| format!("node_bcachefs_{suffix}");
    let (gauge, counter) = (Kind::Gauge, Kind::Counter);
    for fs in filesystems {
        let uuid = || ("uuid", fs.uuid.clone());
        add(
            name("info"),
            "Filesystem information.",
            gauge,
            vec![uuid()],
            1,
        );
        add(
            name("btree_cache_size_bytes"),
            "Btree cache memory usage in bytes.",
            gauge,
            vec![uuid()],
            fs.btree_cache_size,
        );
        for (algorithm, &(compressed, uncompressed)) in &fs.compression {
            let labels = || vec![("algorithm", algorithm.clone()), uuid()];
            add(
                name("compression_compressed_bytes"),
                "Compressed size by algorithm.",
                gauge,
                labels(),
                compressed,
            );
            add(
                name("compression_uncompressed_bytes"),
                "Uncompressed size by algorithm.",
                gauge,
                labels(),
                uncompressed,
            );
        }
        for (error_type, &count) in &fs.errors {
            add(
                name("errors_total"),
                "Error count by error type.",
                counter,
                vec![("error_type", error_type.clone()), uuid()],
                count,
            );
        }
        for (counter_name, &count) in &fs.counters {
            add(
                name(&format!("{}_total", sanitize_name(counter_name))),
                &format!("Bcachefs counter {counter_name} since filesystem creation."),
                counter,
                vec![uuid()],
                count,
            );
        }
        for (kind, &(count, size)) in &fs.btree_writes {
            let labels = || vec![("type", kind.clone()), uuid()];
            add(
                name("btree_writes_total"),
                "Number of btree writes by type.",
                counter,
                labels(),
                count,
            );
            add(
                name("btree_write_average_size_bytes"),
                "Average btree write size by type.",
                gauge,
                labels(),
                size,
            );
        }
        for dev in &fs.devices {
            let device = || ("device", dev.name.clone());
            let labels = vec![
                device(),
                ("label", dev.label.clone()),
                ("state", dev.state.clone()),
                uuid(),
            ];
            add(name("device_info"), "Device information.", gauge, labels, 1);
            for (suffix, help, value) in [
                (
                    "device_bucket_size_bytes",
                    "Bucket size in bytes.",
                    dev.bucket_size,
                ),
                ("device_buckets", "Total number of buckets.", dev.buckets),
                (
                    "device_durability",
                    "Device durability setting.",
                    dev.durability,
                ),
            ] {
                add(name(suffix), help, gauge, vec![device(), uuid()], value);
            }
            for ((operation, data_type), &bytes) in &dev.io_done {
                let labels = vec![
                    ("data_type", data_type.clone()),
                    device(),
                    ("operation", operation.clone()),
                    uuid(),
                ];
                add(
                    name("device_io_done_bytes_total"),
                    "IO bytes by operation type and data type.",
                    counter,
                    labels,
                    bytes,
                );
            }
            for (kind, &count) in &dev.io_errors {
                let labels = vec![device(), ("type", kind.clone()), uuid()];
                add(
                    name("device_io_errors_total"),
                    "IO errors by error type.",
                    counter,
                    labels,
                    count,
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_tree::TestTree;
    use eos_module::HostPaths;

    // No bcachefs on the machines these tests run on: the inputs below are files in the
    // layout and formats of the kernel's sysfs as prometheus/procfs's tests have them.

    const FILE: &str = "/sys/fs/bcachefs/x/f";

    #[test]
    fn sizes() {
        let p = |s: &str| parse_size(s, &"size");
        assert_eq!(p("542k").unwrap(), 555008);
        assert_eq!(p("322M").unwrap(), 337641472);
        assert_eq!(p("1.5G").unwrap(), 1610612736);
        assert_eq!(p("405").unwrap(), 405);
        assert_eq!(p(" 2.05g ").unwrap(), 2201170739);
        assert_eq!(p("1T").unwrap(), 1 << 40);
        assert_eq!(p("1e").unwrap(), 1 << 60);
        assert_eq!(p("0").unwrap(), 0);
        // As in procfs, blanks between number and unit are fine.
        assert_eq!(p("1 G").unwrap(), 1 << 30);
        for bad in ["", "k", "1.5X", "-1", "nan", "inf", "1GiB", "½k", "1,5k"] {
            let e = p(bad).unwrap_err();
            assert!(e.starts_with("size: "), "{bad}: {e}");
        }
    }

    #[test]
    fn compression_stats() {
        let text = "typ                 compressed    uncompressed     average extent size\n\
                    lz4:                     1.5G           3.2G                  112k\n\
                    gzip:                       0              0                     0\n\
                    zstd:                  12.1M          40.5M\n\
                    incompressible:\n";
        let got = parse_compression_stats(text, FILE).unwrap();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got["lz4"], (1610612736, 3435973836));
        assert_eq!(got["gzip"], (0, 0));
        assert_eq!(got["zstd"], (12687769, 42467328));
        // Only a header, or nothing at all.
        assert!(parse_compression_stats("typ compressed\n", FILE)
            .unwrap()
            .is_empty());
        assert!(parse_compression_stats("", FILE).unwrap().is_empty());
        let e = parse_compression_stats("h\nlz4: 1x 2\n", FILE).unwrap_err();
        assert!(e.contains(&format!("{FILE} line 2")), "{e}");
        assert!(parse_compression_stats("h\nlz4: 1 2 big\n", FILE).is_err());
    }

    #[test]
    fn errors() {
        let text = "btree_node_read_err 5 1700000000\n\
                    journal_entry_bad 1\n\
                    lonely\n\n";
        let got = parse_errors(text, FILE).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got["btree_node_read_err"], 5);
        assert_eq!(got["journal_entry_bad"], 1);
        let e = parse_errors("a 1\nb x\n", FILE).unwrap_err();
        assert!(e.contains(&format!("{FILE} line 2")), "{e}");
        assert!(parse_errors("a 1 yesterday\n", FILE).is_err());
    }

    #[test]
    fn counters() {
        let text = "since mount:                    12345\n\
                    since filesystem creation:      67890\n";
        assert_eq!(parse_counter(text, FILE).unwrap(), 67890);
        assert_eq!(
            parse_counter(
                "since mount: 2.05G\nsince filesystem creation: 1.5T\n",
                FILE
            )
            .unwrap(),
            1649267441664
        );
        assert_eq!(parse_counter("since mount: 4\n", FILE).unwrap(), 0);
        let e = parse_counter("", FILE).unwrap_err();
        assert!(e.contains(FILE), "{e}");
        assert!(parse_counter("total: 4\n", FILE).is_err());
        assert!(parse_counter("since filesystem creation: many\n", FILE).is_err());
    }

    #[test]
    fn btree_write_stats() {
        let text = "                   nr     size\n\
                    initial:        19088     108k\n\
                    init_next_bset:  6647    23.9k\n\
                    cache_reclaim:      0        0\n\
                    journal_reclaim: 541080    405\n\
                    interior:\n";
        let got = parse_btree_write_stats(text, FILE).unwrap();
        assert_eq!(got.len(), 4);
        assert_eq!(got["initial"], (19088, 110592));
        assert_eq!(got["init_next_bset"], (6647, 24473));
        assert_eq!(got["journal_reclaim"], (541080, 405));
        assert!(parse_btree_write_stats("h\ninitial: 1.5 2k\n", FILE).is_err());
        assert!(parse_btree_write_stats("h\ninitial: 1 2q\n", FILE).is_err());
    }

    #[test]
    fn io_done() {
        let text = "read:\n\
                    sb          :       86016\n\
                    btree       :  4411097088\n\
                    user        :3770452246528\n\
                    write:\n\
                    sb          :      645120\n\
                    need_discard:           0\n";
        let got = parse_io_done(text, FILE).unwrap();
        let key = |op: &str, t: &str| (op.to_string(), t.to_string());
        assert_eq!(got.len(), 5);
        assert_eq!(got[&key("read", "btree")], 4411097088);
        assert_eq!(got[&key("read", "user")], 3770452246528);
        assert_eq!(got[&key("write", "need_discard")], 0);
        // Before a section, and lines without a colon, are skipped; a bad number is not.
        let got = parse_io_done("sb: 1\nread:\nnoise\nsb: 2\n", FILE).unwrap();
        assert_eq!(
            got.into_iter().collect::<Vec<_>>(),
            [(key("read", "sb"), 2)]
        );
        let e = parse_io_done("write:\nsb: -1\n", FILE).unwrap_err();
        assert!(e.contains(&format!("{FILE} line 2")), "{e}");
    }

    #[test]
    fn io_errors() {
        let text = "IO errors since filesystem creation\n\
                    \x20 read:    197346\n\
                    \x20 write:   205\n\
                    \x20 checksum:0\n\
                    IO errors since 8 y ago\n\
                    \x20 read:    1\n";
        let got = parse_io_errors(text, FILE).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got["read"], 197346);
        assert_eq!(got["write"], 205);
        assert_eq!(got["checksum"], 0);
        // Only the "since filesystem creation" section counts.
        assert!(
            parse_io_errors("IO errors since 8 y ago\n  read: 1\n", FILE)
                .unwrap()
                .is_empty()
        );
        assert!(parse_io_errors("read: 1\n", FILE).unwrap().is_empty());
        let e = parse_io_errors("IO errors since filesystem creation\n  read: lots\n", FILE)
            .unwrap_err();
        assert!(e.contains(&format!("{FILE} line 2")), "{e}");
    }

    /// One filesystem with one device, as in procfs's fixture.
    fn fixture(t: &TestTree, uuid: &str) {
        let fs = format!("fs/bcachefs/{uuid}");
        t.write(&format!("{fs}/btree_cache_size"), "1.5G\n")
            .write(
                &format!("{fs}/compression_stats"),
                "typ  compressed  uncompressed  average extent size\nlz4: 542k 1.5M 112k\n",
            )
            .write(
                &format!("{fs}/errors"),
                "btree_node_read_err 5 1700000000\n",
            )
            .write(
                &format!("{fs}/counters/btree_node_read"),
                "since mount: 12345\nsince filesystem creation: 67890\n",
            )
            .write(
                &format!("{fs}/btree_write_stats"),
                "  nr  size\ninitial: 19088 108k\n",
            )
            .write(&format!("{fs}/dev-1/label"), "ssd.fast\n")
            .write(&format!("{fs}/dev-1/state"), "rw\n")
            .write(&format!("{fs}/dev-1/bucket_size"), "512k\n")
            .write(&format!("{fs}/dev-1/nbuckets"), "4096\n")
            .write(&format!("{fs}/dev-1/durability"), "1\n")
            .write(
                &format!("{fs}/dev-1/io_done"),
                "read:\nbtree       :  4411097088\nwrite:\nuser        :      645120\n",
            )
            .write(
                &format!("{fs}/dev-1/io_errors"),
                "IO errors since filesystem creation\n  read:    197346\n",
            )
            // Not devices, not counters.
            .write(&format!("{fs}/options/compression"), "lz4\n")
            .write(&format!("{fs}/counters/nested/x"), "1\n")
            .write(&format!("{fs}/dev-notes"), "a file, not a device\n");
    }

    /// Runs the collector against `sys` as sysfs.
    fn scrape(sys: &Path) -> Result<String, String> {
        let paths = HostPaths {
            sysfs: sys.to_path_buf(),
            ..HostPaths::default()
        };
        crate::collectors::test_tree::scrape(&BcachefsCollector, &paths)
    }

    #[test]
    fn writes_node_exporter_families() {
        let t = TestTree::new("bcachefs");
        assert_eq!(
            scrape(t.path()).unwrap(),
            "",
            "no /sys/fs/bcachefs: no data"
        );
        t.write("fs/bcachefs/.keep", "");
        assert_eq!(scrape(t.path()).unwrap(), "", "no filesystems: no data");
        let uuid = "deadbeef-1234-5678-9012-abcdefabcdef";
        fixture(&t, uuid);
        let text = scrape(t.path()).unwrap();
        let u = format!("uuid=\"{uuid}\"");
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        let want = [
            format!("node_bcachefs_btree_cache_size_bytes{{{u}}} 1.610612736e+09"),
            format!("node_bcachefs_btree_node_read_total{{{u}}} 67890"),
            format!("node_bcachefs_btree_write_average_size_bytes{{type=\"initial\",{u}}} 110592"),
            format!("node_bcachefs_btree_writes_total{{type=\"initial\",{u}}} 19088"),
            format!("node_bcachefs_compression_compressed_bytes{{algorithm=\"lz4\",{u}}} 555008"),
            format!(
                "node_bcachefs_compression_uncompressed_bytes{{algorithm=\"lz4\",{u}}} 1.572864e+06"
            ),
            format!("node_bcachefs_device_bucket_size_bytes{{device=\"1\",{u}}} 524288"),
            format!("node_bcachefs_device_buckets{{device=\"1\",{u}}} 4096"),
            format!("node_bcachefs_device_durability{{device=\"1\",{u}}} 1"),
            format!(
                "node_bcachefs_device_info{{device=\"1\",label=\"ssd.fast\",state=\"rw\",{u}}} 1"
            ),
            format!(
                "node_bcachefs_device_io_done_bytes_total{{data_type=\"btree\",device=\"1\",\
                 operation=\"read\",{u}}} 4.411097088e+09"
            ),
            format!(
                "node_bcachefs_device_io_done_bytes_total{{data_type=\"user\",device=\"1\",\
                 operation=\"write\",{u}}} 645120"
            ),
            format!(
                "node_bcachefs_device_io_errors_total{{device=\"1\",type=\"read\",{u}}} 197346"
            ),
            format!("node_bcachefs_errors_total{{error_type=\"btree_node_read_err\",{u}}} 5"),
            format!("node_bcachefs_info{{{u}}} 1"),
        ];
        assert_eq!(samples, want);
        for header in [
            "# HELP node_bcachefs_btree_node_read_total Bcachefs counter btree_node_read since \
             filesystem creation.\n# TYPE node_bcachefs_btree_node_read_total counter\n",
            "# HELP node_bcachefs_device_io_done_bytes_total IO bytes by operation type and data \
             type.\n# TYPE node_bcachefs_device_io_done_bytes_total counter\n",
            "# HELP node_bcachefs_info Filesystem information.\n# TYPE node_bcachefs_info gauge\n",
        ] {
            assert!(text.contains(header), "{header}\n{text}");
        }

        // A second filesystem shares the families; a counter it lacks is only the first's.
        let other = "0badc0de-0000-0000-0000-000000000000";
        t.write(&format!("fs/bcachefs/{other}/btree_cache_size"), "1k\n")
            .write(
                &format!("fs/bcachefs/{other}/counters/io_read"),
                "since mount: 1\nsince filesystem creation: 2.5k\n",
            );
        let text = scrape(t.path()).unwrap();
        assert_eq!(
            text.matches("# TYPE node_bcachefs_info gauge").count(),
            1,
            "{text}"
        );
        assert!(text.contains(&format!("node_bcachefs_info{{uuid=\"{other}\"}} 1\n")));
        assert!(text.contains(&format!(
            "node_bcachefs_io_read_total{{uuid=\"{other}\"}} 2560\n"
        )));
        assert!(text.contains(&format!(
            "node_bcachefs_btree_cache_size_bytes{{uuid=\"{other}\"}} 1024\n"
        )));
    }

    #[test]
    fn malformed_files_name_themselves() {
        let t = TestTree::new("bcachefs-bad");
        let uuid = "deadbeef-1234-5678-9012-abcdefabcdef";
        fixture(&t, uuid);
        let dev = format!("fs/bcachefs/{uuid}/dev-1");
        t.write(&format!("{dev}/nbuckets"), "4096 buckets\n");
        let e = scrape(t.path()).unwrap_err();
        assert!(e.contains(&format!("{dev}/nbuckets")), "{e}");
        t.write(&format!("{dev}/nbuckets"), "\n");
        assert!(scrape(t.path()).is_err(), "an empty number is not 0");
        std::fs::remove_file(t.path().join(format!("{dev}/nbuckets"))).unwrap();
        // Missing numbers and texts read as 0 and "", as in procfs.
        std::fs::remove_file(t.path().join(format!("{dev}/label"))).unwrap();
        let text = scrape(t.path()).unwrap();
        assert!(
            text.contains("node_bcachefs_device_buckets{device=\"1\","),
            "{text}"
        );
        assert!(text.contains("label=\"\",state=\"rw\""), "{text}");
        t.write(&format!("fs/bcachefs/{uuid}/counters/odd"), "total 3\n");
        let e = scrape(t.path()).unwrap_err();
        assert!(e.contains("counters/odd"), "{e}");
    }
}
