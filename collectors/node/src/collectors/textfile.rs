//! `textfile`: metrics that other programs (cron jobs, hardware tools) write to `*.prom` files
//! in `--collector.textfile.directory`, passed through with two families of our own:
//! `node_textfile_mtime_seconds{file}` for each file read and `node_textfile_scrape_error`.
//!
//! As in node_exporter:
//! - the directory may be a glob (`/var/lib/node_exporter/*/`; `*` and `?` are supported);
//! - a file that cannot be read or parsed, or that carries client-side timestamps, is skipped
//!   whole and sets `node_textfile_scrape_error 1`; it never fails the scrape;
//! - families with the same name in several files are merged: the first file's HELP and TYPE
//!   win, a later family with a different HELP or TYPE is dropped (a different HELP also
//!   sets `node_textfile_scrape_error 1`, as in node_exporter 1.12), and a series that
//!   repeats one already read is dropped (the first stays);
//! - within one file, series of a family that lack a label the others have get it empty;
//! - a family without HELP gets `Metric read from <paths of the files that have it>`;
//! - `node_textfile_mtime_seconds` is labelled with the file's full path;
//! - series are written in the Go client's order: by label count, then label values.
//!
//! Done differently, so that one file cannot hurt the rest of the scrape:
//! - a family with the name of one the node module writes itself (`node_load1`,
//!   `node_textfile_scrape_error`, `node_scrape_collector_success`...) is dropped with an
//!   error naming the file and family, and sets `node_textfile_scrape_error 1`.
//!   node_exporter serves it beside the built-in one when HELP and TYPE match, and otherwise
//!   keeps whichever its concurrent collectors delivered first. "Written by the module" means
//!   families its collectors wrote earlier in this scrape (the encoder's records), the module's
//!   own trailer families and ours, so a textfile may still fill in a family of a collector
//!   that is switched off. A collector that runs after this one in `registry.rs` is not seen
//!   (the encoder then drops its family as a repeat and keeps the file's), which is why
//!   textfile should run last;
//! - a file larger than `--collector.textfile.max-bytes` (default 16 MiB; no more than that
//!   plus one byte is read) or with more series than `--collector.textfile.max-series`
//!   (default 100,000) is skipped, with an error naming the file and the limit, and sets
//!   `node_textfile_scrape_error 1`; so is a family whose series use so many different label
//!   names that filling in the missing ones would multiply its size;
//! - problems with series or families of one file (repeated series, a HELP or TYPE that
//!   differs from an earlier file's) are logged once per file and scrape, with a count and
//!   the first example.
//!
//! Cost: each file is read once into memory and parsed without copying its strings; a family
//! is merged and freed of repeated series with one sort into the output order, so a scrape
//! takes O(n log n) for n series (`cargo xtask bench textfile`: 0.8 s for a file of 1,000,000
//! series, against 7.4 s for node_exporter). After a large file the freed memory is handed
//! back to the kernel ([`release_free_memory`]).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use eos_exposition::guard::name_hash;
use eos_exposition::{lines, write_go_float, Encoder, Kind, Line};

use crate::collector::{Collector, CollectorDef, Ctx};
use crate::settings::{CollectorSettings, Flag};
use eos_module::size::parse_byte_size;
use serde::{Deserialize, Serialize};

pub(crate) const DEF: CollectorDef<Settings> = CollectorDef {
    name: "textfile",
    default_enabled: true,
    build: |settings, _paths| {
        Ok(Box::new(TextfileCollector {
            directory: settings.directory.clone(),
            limits: Limits {
                bytes: settings.max_bytes,
                series: settings.max_series,
            },
        }))
    },
};

/// `modules.node.textfile`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Settings {
    /// Directory of `*.prom` files; empty disables reading (node_exporter's default).
    pub(crate) directory: String,
    /// A larger file is skipped with `node_textfile_scrape_error 1`, and no more than this
    /// (plus one byte) is read of it (`--collector.textfile.max-bytes`, an eos extension;
    /// `0`: no limit). YAML takes bytes or a size such as `16MiB`.
    #[serde(deserialize_with = "eos_module::size::byte_size")]
    pub(crate) max_bytes: u64,
    /// A file with more series (sample lines) is skipped the same way
    /// (`--collector.textfile.max-series`, an eos extension; `0`: no limit).
    pub(crate) max_series: u64,
}

/// Default `max_bytes`: 16 MiB. At 50 to 150 bytes a line that is 100,000 to 300,000
/// series, so with ordinary lines `max_series` bites first; this bounds what one file may
/// hold in memory during a scrape however long its lines or comments are.
const TEXTFILE_MAX_BYTES: u64 = 16 << 20;
/// Default `max_series`: 100,000 sample lines, 30 to 100 times what a whole node exports
/// (the largest files of node_exporter's textfile scripts have thousands). Measured with
/// `cargo xtask bench textfile`: 80,000 series cost the agent about 50 ms of CPU and 25 MB at
/// the peak per scrape (node_exporter 0.4 s and 160 MB); a Prometheus that ingests that many
/// series from one node every scrape is the larger problem.
const TEXTFILE_MAX_SERIES: u64 = 100_000;

impl Default for Settings {
    fn default() -> Self {
        Settings {
            directory: String::new(),
            max_bytes: TEXTFILE_MAX_BYTES,
            max_series: TEXTFILE_MAX_SERIES,
        }
    }
}

impl CollectorSettings for Settings {
    const FLAG_PREFIXES: &'static [&'static str] = &["textfile"];
    const HELP: &'static str = "  --collector.textfile.directory=DIR
  --collector.textfile.max-bytes=SIZE         eos: skip larger files (default 16MiB, 0: off)
  --collector.textfile.max-series=N           eos: skip files with more (default 100000, 0: off)
";

    fn apply_flag(&mut self, flag: &Flag<'_>) -> Result<bool, String> {
        match flag.key {
            "directory" => self.directory = flag.value()?.to_string(),
            "max-bytes" => {
                self.max_bytes = parse_byte_size(flag.value()?).map_err(|e| flag.error(e))?
            }
            "max-series" => self.max_series = flag.u64()?,
            _ => return Ok(false),
        }
        Ok(true)
    }
}

struct TextfileCollector {
    directory: String,
    limits: Limits,
}

/// What one file may cost; `0` is no limit.
#[derive(Clone, Copy, Debug)]
struct Limits {
    bytes: u64,
    series: u64,
}

const MTIME: &str = "node_textfile_mtime_seconds";
const SCRAPE_ERROR: &str = "node_textfile_scrape_error";
/// What the node module writes after its collectors (see `lib.rs`).
const MODULE_FAMILIES: [&str; 3] = [
    "node_scrape_collector_duration_seconds",
    "node_scrape_collector_success",
    "node_exporter_build_info",
];

/// Label pairs of one series, sorted by name (without `le`/`quantile`), borrowed from the
/// file's text where they had no escapes.
type Labels<'a> = Vec<(&'a str, Cow<'a, str>)>;

/// One series of a family.
#[derive(Debug, PartialEq)]
enum Series {
    /// A counter, gauge or untyped value.
    Value(f64),
    /// A histogram or summary (boxed: most series are plain values).
    Dist(Box<Dist>),
}

/// Histogram buckets (upper bound, cumulative count) or summary quantiles (quantile, value),
/// sorted, with the sum and count.
#[derive(Debug, Default, PartialEq)]
struct Dist {
    points: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

/// One family as read from a file (`help` is `None` when the file has no HELP line).
#[derive(Debug, PartialEq)]
struct Family<'a> {
    help: Option<String>,
    kind: Kind,
    series: Vec<(Labels<'a>, Series)>,
}

/// One family merged over files. Each series keeps the index of its file, for the log.
#[derive(Debug)]
struct Merged<'a> {
    help: String,
    /// Whether `help` came from a HELP line (not node_exporter's default).
    explicit_help: bool,
    kind: Kind,
    series: Vec<(Labels<'a>, Series, usize)>,
}

/// Why a whole file is skipped.
#[derive(Debug, PartialEq)]
enum Skip {
    /// Not the text format; the message names the line.
    Parse(String),
    /// A sample with a timestamp, on this line.
    Timestamps(usize),
    /// More sample lines than `--collector.textfile.max-series`.
    TooManySeries,
}

impl Skip {
    fn message(&self, path: &Path, limits: Limits) -> String {
        let path = path.display();
        match self {
            Skip::Parse(e) => format!("failed to parse textfile data from {path}: {e}"),
            Skip::Timestamps(line) => format!(
                "textfile {path} contains unsupported client-side timestamps (line {line}), \
                 skipping entire file"
            ),
            Skip::TooManySeries => format!(
                "textfile {path} has more than the limit of {} series \
                 (--collector.textfile.max-series), skipping entire file",
                limits.series
            ),
        }
    }
}

impl Collector for TextfileCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let mut errored = false;
        let mut files: Vec<(PathBuf, String)> = Vec::new();
        for dir in expand_glob(&self.directory) {
            let names = match std::fs::read_dir(&dir) {
                Ok(rd) => {
                    let mut names: Vec<String> = rd
                        .filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| n.ends_with(".prom"))
                        .collect();
                    names.sort_unstable();
                    names
                }
                Err(e) => {
                    if !self.directory.is_empty() {
                        errored = true;
                        tracing::error!(path = %dir.display(), "failed to read textfile collector directory: {e}");
                    }
                    continue;
                }
            };
            for name in names {
                ctx.check_deadline("textfiles")?;
                let path = dir.join(&name);
                match read_limited(&path, self.limits.bytes) {
                    Ok(text) => files.push((path, text)),
                    Err(e) => {
                        errored = true;
                        tracing::error!(file = %name, "failed to collect textfile data: {e}");
                    }
                }
            }
        }
        let mut read = Vec::with_capacity(files.len());
        let mut mtimes: BTreeMap<String, f64> = BTreeMap::new();
        for (path, text) in &files {
            ctx.check_deadline("textfiles")?;
            let parsed = parse_file(text, self.limits.series)
                .map_err(|e| e.message(path, self.limits))
                // Stat only after a successful parse, so that a broken file does not look fresh.
                .and_then(|families| Ok((families, mtime_of(path)?)));
            match parsed {
                Ok((families, mtime)) => {
                    mtimes.insert(path.display().to_string(), mtime);
                    read.push((path.as_path(), families));
                }
                Err(e) => {
                    errored = true;
                    let name = path.file_name().unwrap_or_default().to_string_lossy();
                    tracing::error!(file = %name, "failed to collect textfile data: {e}");
                }
            }
        }
        let builtin = Builtin::of(enc);
        let paths: Vec<&Path> = read.iter().map(|(p, _)| *p).collect();
        let series: usize = read
            .iter()
            .flat_map(|(_, families)| families.iter().map(|(_, f)| f.series.len()))
            .sum();
        let (merged, issues) = merge_files(read, &|name| builtin.contains(name), &mut errored);
        for (path, issue) in paths.iter().zip(&issues) {
            log_issues(path, issue);
        }
        write(enc, &merged, &mtimes, errored);
        drop(merged);
        drop(files);
        if series >= TRIM_AFTER_SERIES {
            release_free_memory();
        }
        Ok(())
    }
}

/// After reading this many series, [`release_free_memory`] runs.
const TRIM_AFTER_SERIES: usize = 10_000;

/// Hands the memory freed after a large textfile back to the kernel. Every series' labels are
/// a small allocation, and glibc keeps the holes they leave in its heap: measured with a
/// file of 1,000,000 series, the agent stayed at 212 MB between scrapes, and at 40 MB with
/// this. It walks the free lists once, a few milliseconds after such a file.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the kernel; it takes the allocator's
    // locks like any allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The families the node module writes itself in this scrape: what its collectors wrote
/// before this one (the encoder records every family), the module's trailer and ours.
struct Builtin(HashSet<u64>);

impl Builtin {
    fn of(enc: &Encoder<'_>) -> Builtin {
        let mut names: HashSet<u64> = enc.records().iter().map(|r| r.hash).collect();
        for name in [MTIME, SCRAPE_ERROR].iter().chain(&MODULE_FAMILIES) {
            names.insert(name_hash(name));
        }
        Builtin(names)
    }

    fn contains(&self, name: &str) -> bool {
        self.0.contains(&name_hash(name))
    }
}

/// Reads a whole file as text, but no more than `max_bytes` (0: no limit): a larger file is
/// refused after reading at most `max_bytes + 1` bytes (none when its size says so already).
fn read_limited(path: &Path, max_bytes: u64) -> Result<String, String> {
    let too_big = || {
        format!(
            "textfile {} is larger than the limit of {max_bytes} bytes \
             (--collector.textfile.max-bytes), skipping entire file",
            path.display()
        )
    };
    let file = std::fs::File::open(path)
        .map_err(|e| format!("failed to open textfile data file {}: {e}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    if max_bytes > 0 && size > max_bytes {
        return Err(too_big());
    }
    let limit = if max_bytes == 0 {
        u64::MAX
    } else {
        max_bytes + 1
    };
    let mut buf = Vec::with_capacity(usize::try_from(size.min(limit)).unwrap_or(0) + 1);
    file.take(limit)
        .read_to_end(&mut buf)
        .map_err(|e| format!("failed to read textfile data file {}: {e}", path.display()))?;
    if max_bytes > 0 && buf.len() as u64 > max_bytes {
        return Err(too_big());
    }
    String::from_utf8(buf).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
        format!(
            "failed to parse textfile data from {}: line {line}: not valid UTF-8",
            path.display()
        )
    })
}

/// The file's mtime in whole seconds.
fn mtime_of(path: &Path) -> Result<f64, String> {
    let mtime = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| format!("failed to stat {}: {e}", path.display()))?;
    Ok(match mtime.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as f64,
        Err(e) => -(e.duration().as_secs() as f64),
    })
}

/// Expands `*` and `?` in the directory pattern, like Go's `filepath.Glob`; a pattern that
/// matches nothing (or has no wildcards) is used as it is.
fn expand_glob(pattern: &str) -> Vec<PathBuf> {
    if !pattern.contains(['*', '?']) {
        return vec![PathBuf::from(pattern)];
    }
    let mut current = vec![if pattern.starts_with('/') {
        PathBuf::from("/")
    } else {
        PathBuf::new()
    }];
    for part in pattern.split('/').filter(|p| !p.is_empty()) {
        let mut next = Vec::new();
        for base in &current {
            if !part.contains(['*', '?']) {
                next.push(base.join(part));
                continue;
            }
            let dir = if base.as_os_str().is_empty() {
                Path::new(".")
            } else {
                base.as_path()
            };
            let Ok(rd) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| {
                    wildcard_match(part, n) && (part.starts_with('.') || !n.starts_with('.'))
                })
                .collect();
            names.sort_unstable();
            next.extend(names.into_iter().map(|n| base.join(n)));
        }
        current = next;
    }
    current.retain(|p| p.exists());
    if current.is_empty() {
        return vec![PathBuf::from(pattern)];
    }
    current
}

/// Matches `name` against a pattern of literal characters, `*` and `?`.
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == n.get(ni) => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).unwrap_or_default().iter().all(|&c| c == '*')
}

/// Undoes the text format's HELP escapes (`\\` and `\n`).
fn unescape_help(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('\\') => out.push('\\'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn kind_of(t: &str) -> Result<Kind, String> {
    Ok(match t {
        "counter" => Kind::Counter,
        "gauge" => Kind::Gauge,
        "untyped" => Kind::Untyped,
        "histogram" => Kind::Histogram,
        "summary" => Kind::Summary,
        other => return Err(format!("unknown metric type {other:?}")),
    })
}

/// Which sample of a histogram or summary a line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    /// The family's own name: a value, or a summary's quantile.
    Base,
    Bucket,
    Sum,
    Count,
}

/// The samples of one family as read, before their labels are made uniform.
struct Building<'a> {
    name: &'a str,
    kind: Kind,
    samples: Vec<(Part, Labels<'a>, f64)>,
}

/// Parses one `.prom` file into families in order of appearance, as node_exporter's parser
/// reads it: a `TYPE` line comes before the family's samples, and `x_bucket`, `x_sum` and
/// `x_count` belong to a histogram (or summary) `x` declared before them. At most
/// `max_series` sample lines (0: no limit) are read.
fn parse_file(text: &str, max_series: u64) -> Result<Vec<(&str, Family<'_>)>, Skip> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut building: Vec<Building<'_>> = Vec::new();
    let mut kinds: HashMap<&str, Kind> = HashMap::new();
    let mut helps: HashMap<&str, &str> = HashMap::new();
    let mut count = 0u64;
    let mut timestamp_line = None;
    let mut last: Option<(&str, usize, Part)> = None;
    for item in lines(text) {
        let (n, line) = item.map_err(Skip::Parse)?;
        match line {
            Line::Help { name, text } => {
                if helps.insert(name, text).is_some() {
                    return Err(Skip::Parse(format!(
                        "line {n}: second HELP line for {name}"
                    )));
                }
            }
            Line::Type { name, kind } => {
                let kind = kind_of(kind).map_err(|e| Skip::Parse(format!("line {n}: {e}")))?;
                if index.contains_key(name) {
                    return Err(Skip::Parse(format!(
                        "line {n}: TYPE line for {name} after its samples"
                    )));
                }
                last = None;
                if kinds.insert(name, kind).is_some() {
                    return Err(Skip::Parse(format!(
                        "line {n}: second TYPE line for {name}"
                    )));
                }
            }
            Line::Sample(s) => {
                count += 1;
                if max_series > 0 && count > max_series {
                    return Err(Skip::TooManySeries);
                }
                if s.timestamp.is_some() && timestamp_line.is_none() {
                    timestamp_line = Some(n);
                }
                // A family's lines usually follow each other: look up a new name only.
                let (i, part) = match last {
                    Some((name, i, part)) if name == s.name => (i, part),
                    _ => {
                        let known = |n: &str| {
                            index.contains_key(n) || kinds.contains_key(n) || helps.contains_key(n)
                        };
                        let (family, part) = family_of(s.name, &kinds, known);
                        let i = *index.entry(family).or_insert_with(|| {
                            building.push(Building {
                                name: family,
                                kind: kinds.get(family).copied().unwrap_or(Kind::Untyped),
                                samples: Vec::new(),
                            });
                            building.len() - 1
                        });
                        last = Some((s.name, i, part));
                        (i, part)
                    }
                };
                if let Some(b) = building.get_mut(i) {
                    b.samples.push((part, s.labels, s.value));
                }
            }
        }
    }
    if let Some(line) = timestamp_line {
        return Err(Skip::Timestamps(line));
    }
    let mut out = Vec::with_capacity(building.len());
    for b in building {
        let help = helps.get(b.name).map(|h| unescape_help(h));
        let series = build_series(b.name, b.kind, b.samples).map_err(Skip::Parse)?;
        out.push((
            b.name,
            Family {
                help,
                kind: b.kind,
                series,
            },
        ));
    }
    Ok(out)
}

/// The family a sample named `name` belongs to, and which part of it the sample is: its own
/// when a family of that name is `known` (has a HELP, TYPE or samples), else a histogram's or
/// summary's that its suffix names, as in the Go parser.
fn family_of<'a>(
    name: &'a str,
    kinds: &HashMap<&str, Kind>,
    known: impl Fn(&str) -> bool,
) -> (&'a str, Part) {
    if known(name) {
        return (name, Part::Base);
    }
    for (suffix, part) in [
        ("_bucket", Part::Bucket),
        ("_sum", Part::Sum),
        ("_count", Part::Count),
    ] {
        if let Some(base) = name.strip_suffix(suffix) {
            match kinds.get(base) {
                Some(Kind::Histogram) => return (base, part),
                Some(Kind::Summary) if part != Part::Bucket => return (base, part),
                _ => {}
            }
        }
    }
    (name, Part::Base)
}

/// At most this many label pairs per series, on average, once the labels that only some
/// series have are filled in with empty values, and more than the file had: beyond that
/// (series with disjoint label names), filling in would multiply the family's size.
const FILL_FACTOR: usize = 8;

/// Turns the samples of one family into series, filling labels that only some series have
/// with empty values and grouping a histogram's or summary's lines by their labels.
fn build_series<'a>(
    name: &str,
    kind: Kind,
    samples: Vec<(Part, Labels<'a>, f64)>,
) -> Result<Vec<(Labels<'a>, Series)>, String> {
    let special = match kind {
        Kind::Histogram => "le",
        Kind::Summary => "quantile",
        _ => "",
    };
    let mut all_names: HashSet<&str> = HashSet::new();
    let mut written = 0usize;
    let mut last: Option<&Labels<'a>> = None;
    for (_, labels, _) in &samples {
        written += labels.len();
        let same = last.is_some_and(|l| {
            l.len() == labels.len() && l.iter().zip(labels).all(|(a, b)| a.0 == b.0)
        });
        if !same {
            all_names.extend(labels.iter().map(|l| l.0).filter(|k| *k != special));
        }
        last = Some(labels);
    }
    let filled = all_names.len().saturating_mul(samples.len());
    if filled > FILL_FACTOR.saturating_mul(written + samples.len()) {
        return Err(format!(
            "family {name}: its {} series use {} different label names; filling in the \
             missing ones would make {filled} label pairs out of {written}",
            samples.len(),
            all_names.len()
        ));
    }
    let uniform = |labels: &mut Labels<'a>| {
        if labels.len() != all_names.len() {
            for n in &all_names {
                if !labels.iter().any(|l| l.0 == *n) {
                    labels.push((n, Cow::Borrowed("")));
                }
            }
        }
        labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
    };
    let mut series: Vec<(Labels<'a>, Series)> = Vec::with_capacity(samples.len());
    if special.is_empty() {
        for (_, mut labels, value) in samples {
            uniform(&mut labels);
            series.push((labels, Series::Value(value)));
        }
        return Ok(series);
    }
    let mut at: HashMap<Labels<'a>, usize> = HashMap::new();
    for (part, mut labels, value) in samples {
        let sample_name = || match part {
            Part::Base => name.to_string(),
            Part::Bucket => format!("{name}_bucket"),
            Part::Sum => format!("{name}_sum"),
            Part::Count => format!("{name}_count"),
        };
        let point = labels
            .iter()
            .position(|l| l.0 == special)
            .map(|i| labels.swap_remove(i).1);
        uniform(&mut labels);
        let i = match at.get(&labels) {
            Some(&i) => i,
            None => {
                at.insert(labels.clone(), series.len());
                series.push((labels, Series::Dist(Box::default())));
                series.len() - 1
            }
        };
        let Some((_, Series::Dist(dist))) = series.get_mut(i) else {
            continue;
        };
        match (part, kind) {
            (Part::Sum, _) => dist.sum = value,
            // Counts are integers in the Go client.
            (Part::Count, _) => dist.count = value.max(0.0).trunc(),
            (Part::Bucket, Kind::Histogram) | (Part::Base, Kind::Summary) => {
                let raw =
                    point.ok_or_else(|| format!("{}: missing {special:?} label", sample_name()))?;
                let bound = parse_go_float(&raw)
                    .ok_or_else(|| format!("{}: invalid {special} value {raw:?}", sample_name()))?;
                let v = if kind == Kind::Histogram {
                    value.max(0.0).trunc()
                } else {
                    value
                };
                dist.points.push((bound, v));
            }
            _ => {
                return Err(format!(
                    "{}: unexpected sample in {kind:?} {name}",
                    sample_name()
                ))
            }
        }
    }
    for (_, s) in series.iter_mut() {
        if let Series::Dist(d) = s {
            d.points.sort_by(|a, b| a.0.total_cmp(&b.0));
            d.points.dedup_by(|b, a| a.0 == b.0);
        }
    }
    Ok(series)
}

/// Parses a float as Go's `strconv.ParseFloat` accepts it in label values (`+Inf`, `NaN`...).
fn parse_go_float(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

/// What went wrong with one file's families and series, logged once per file and scrape.
#[derive(Debug, Default)]
struct Issues<'a> {
    /// Families dropped because the node module writes them.
    builtin: Vec<&'a str>,
    /// Families dropped for a HELP or TYPE that differs from an earlier file's, and the first.
    conflicts: usize,
    first_conflict: Option<&'a str>,
    /// Series dropped for repeating an earlier one, and the first.
    duplicates: usize,
    first_duplicate: Option<String>,
}

/// Merges the files' families in order (see the module docs for what is dropped), sorts each
/// family's series into the Go client's order and drops repeated ones. Returns what was
/// dropped from each file, and sets `errored` when that must show in
/// `node_textfile_scrape_error`.
fn merge_files<'a, 'p>(
    mut read: Vec<(&'p Path, Vec<(&'a str, Family<'a>)>)>,
    builtin: &dyn Fn(&str) -> bool,
    errored: &mut bool,
) -> (BTreeMap<&'a str, Merged<'a>>, Vec<Issues<'a>>) {
    let mut files_of: HashMap<&'a str, Vec<&'p Path>> = HashMap::new();
    for (_, families) in &read {
        for (name, fam) in families {
            if fam.help.is_none() {
                files_of.entry(*name).or_default();
            }
        }
    }
    for (path, families) in &read {
        for (name, _) in families {
            if let Some(files) = files_of.get_mut(name) {
                files.push(*path);
            }
        }
    }
    let mut issues: Vec<Issues<'a>> = read.iter().map(|_| Issues::default()).collect();
    let mut merged: BTreeMap<&'a str, Merged<'a>> = BTreeMap::new();
    for (f, (_, families)) in read.iter_mut().enumerate() {
        let Some(issue) = issues.get_mut(f) else {
            continue;
        };
        for (name, fam) in std::mem::take(families) {
            if builtin(name) {
                issue.builtin.push(name);
                *errored = true;
                continue;
            }
            let explicit_help = fam.help.is_some();
            let help = fam.help.unwrap_or_else(|| default_help(files_of.get(name)));
            let series = fam.series.into_iter().map(|(l, s)| (l, s, f));
            match merged.get_mut(name) {
                None => {
                    merged.insert(
                        name,
                        Merged {
                            help,
                            explicit_help,
                            kind: fam.kind,
                            series: series.collect(),
                        },
                    );
                }
                Some(m) if m.help == help && m.kind == fam.kind => m.series.extend(series),
                Some(m) => {
                    // node_exporter 1.12 counts a second HELP text as a scrape error.
                    *errored |= explicit_help && m.explicit_help && m.help != help;
                    issue.conflicts += 1;
                    issue.first_conflict.get_or_insert(name);
                }
            }
        }
    }
    for (name, fam) in merged.iter_mut() {
        fam.series.sort_by(|a, b| series_order(&a.0, &b.0));
        fam.series.dedup_by(|later, earlier| {
            let same = later.0 == earlier.0;
            if same {
                if let Some(issue) = issues.get_mut(later.2) {
                    issue.duplicates += 1;
                    if issue.first_duplicate.is_none() {
                        issue.first_duplicate = Some(series_text(name, &later.0));
                    }
                }
            }
            same
        });
    }
    (merged, issues)
}

/// node_exporter's HELP for a family without one.
fn default_help(files: Option<&Vec<&Path>>) -> String {
    let mut help = String::from("Metric read from ");
    for (i, p) in files.into_iter().flatten().enumerate() {
        if i > 0 {
            help.push_str(", ");
        }
        let _ = write!(help, "{}", p.display());
    }
    help
}

/// The Go client's series order: by label count, then label values position by position;
/// then label names, so that equal label sets end up next to each other.
fn series_order(a: &Labels<'_>, b: &Labels<'_>) -> Ordering {
    if a.len() != b.len() {
        return a.len().cmp(&b.len());
    }
    for (x, y) in a.iter().zip(b) {
        match (*x.1).cmp(&*y.1) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    for (x, y) in a.iter().zip(b) {
        match x.0.cmp(y.0) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    Ordering::Equal
}

/// `name{a="1",b="2"}`, for the log.
fn series_text(name: &str, labels: &Labels<'_>) -> String {
    let mut s = name.to_string();
    for (i, (k, v)) in labels.iter().enumerate() {
        s.push(if i == 0 { '{' } else { ',' });
        let _ = write!(s, "{k}={v:?}");
    }
    if !labels.is_empty() {
        s.push('}');
    }
    s
}

/// Logs what was dropped from one file, once.
fn log_issues(path: &Path, issue: &Issues<'_>) {
    let file = path.display();
    if !issue.builtin.is_empty() {
        let shown: Vec<&str> = issue.builtin.iter().take(10).copied().collect();
        let more = issue.builtin.len() - shown.len();
        let families = if more > 0 {
            format!("{} and {more} more", shown.join(", "))
        } else {
            shown.join(", ")
        };
        tracing::error!(
            file = %file,
            families = %families,
            "textfile families have the name of one the node module writes itself; dropped"
        );
    }
    if let Some(first) = issue.first_conflict {
        tracing::warn!(
            file = %file,
            count = issue.conflicts,
            first = %first,
            "textfile families have a different HELP or TYPE than in an earlier file; dropped"
        );
    }
    if let Some(first) = &issue.first_duplicate {
        tracing::warn!(
            file = %file,
            count = issue.duplicates,
            first = %first,
            "textfile series were collected before with the same labels; dropped"
        );
    }
}

/// Writes all families in name order, our own two among them.
fn write(
    enc: &mut Encoder<'_>,
    merged: &BTreeMap<&str, Merged<'_>>,
    mtimes: &BTreeMap<String, f64>,
    errored: bool,
) {
    let mut own_written = [false, false];
    let mut write_own = |enc: &mut Encoder<'_>, upto: Option<&str>| {
        if !own_written[0] && upto.is_none_or(|n| n > MTIME) {
            own_written[0] = true;
            let mut fam = enc.family(
                MTIME,
                "Unixtime mtime of textfiles successfully read.",
                Kind::Gauge,
            );
            for (file, t) in mtimes {
                fam.sample(&[("file", file)], *t);
            }
        }
        if !own_written[1] && upto.is_none_or(|n| n > SCRAPE_ERROR) {
            own_written[1] = true;
            enc.single(
                SCRAPE_ERROR,
                "1 if there was an error opening or reading a file, 0 otherwise",
                Kind::Gauge,
                &[],
                if errored { 1.0 } else { 0.0 },
            );
        }
    };
    let mut scratch = Vec::new();
    for (name, fam) in merged {
        write_own(enc, Some(name));
        write_family(enc, name, fam, &mut scratch);
    }
    write_own(enc, None);
}

/// Writes one family, its series already in order; `scratch` holds formatted `le`/`quantile`
/// values.
fn write_family(enc: &mut Encoder<'_>, name: &str, fam: &Merged<'_>, scratch: &mut Vec<u8>) {
    let mut out = enc.family(name, &fam.help, fam.kind);
    let mut labels: Vec<(&str, &str)> = Vec::new();
    for (series_labels, series, _) in &fam.series {
        labels.clear();
        labels.extend(series_labels.iter().map(|(k, v)| (*k, &**v)));
        match series {
            Series::Value(v) => out.sample(&labels, *v),
            Series::Dist(d) => {
                let (special, suffix) = if fam.kind == Kind::Histogram {
                    ("le", "_bucket")
                } else {
                    ("quantile", "")
                };
                let mut inf_seen = false;
                for (bound, v) in &d.points {
                    scratch.clear();
                    write_go_float(scratch, *bound);
                    let formatted = String::from_utf8_lossy(scratch);
                    // Go writes `le`/`quantile` after the series' own labels.
                    let mut with_point = labels.clone();
                    with_point.push((special, &formatted));
                    out.sample_suffixed(suffix, &with_point, *v);
                    inf_seen |= *bound == f64::INFINITY;
                }
                if fam.kind == Kind::Histogram && !inf_seen {
                    let mut with_inf = labels.clone();
                    with_inf.push(("le", "+Inf"));
                    out.sample_suffixed("_bucket", &with_inf, d.count);
                }
                out.sample_suffixed("_sum", &labels, d.sum);
                out.sample_suffixed("_count", &labels, d.count);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_tree::TestTree;
    use eos_exposition::{parse_text, Format};

    const NO_LIMITS: Limits = Limits {
        bytes: 0,
        series: 0,
    };

    fn render(merged: &BTreeMap<&str, Merged<'_>>, errored: bool) -> String {
        let mut buf = Vec::new();
        let mut enc = Encoder::new(&mut buf, Format::Text);
        let mtimes = BTreeMap::from([("/t/a.prom".to_string(), 7.0)]);
        write(&mut enc, merged, &mtimes, errored);
        String::from_utf8(buf).unwrap()
    }

    /// Merges files given as (path, text), with `builtin` as the node module's families.
    fn merge_with<'a>(
        files: &[(&'a str, &'a str)],
        builtin: &[&str],
    ) -> (BTreeMap<&'a str, Merged<'a>>, Vec<Issues<'a>>, bool) {
        let read = files
            .iter()
            .map(|(path, text)| (Path::new(*path), parse_file(text, 0).unwrap()))
            .collect();
        let mut errored = false;
        let (merged, issues) = merge_files(read, &|n| builtin.contains(&n), &mut errored);
        (merged, issues, errored)
    }

    fn merged_of<'a>(files: &[(&'a str, &'a str)]) -> BTreeMap<&'a str, Merged<'a>> {
        merge_with(files, &[]).0
    }

    /// Runs the collector over `dir` after `before` wrote into the same encoder (as the
    /// collectors before this one do); returns the whole output.
    fn collect(dir: &Path, limits: Limits, before: impl FnOnce(&mut Encoder<'_>)) -> String {
        let c = TextfileCollector {
            directory: dir.display().to_string(),
            limits,
        };
        let paths = eos_module::HostPaths::default();
        let mut buf = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut ctx = Ctx::new(&paths, deadline, &mut buf);
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, Format::Text);
        before(&mut enc);
        c.update(&mut enc, &mut ctx).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn limits_from_yaml_and_flags() {
        let s = Settings::default();
        assert_eq!((s.max_bytes, s.max_series), (16 << 20, 100_000));
        let yaml = |y: &str| serde_yaml_ng::from_str::<Settings>(y).map_err(|e| e.to_string());
        let s = yaml("{directory: /t, max_bytes: 1000, max_series: 5}").unwrap();
        assert_eq!((s.max_bytes, s.max_series), (1000, 5));
        assert_eq!(yaml("{max_bytes: 2MiB}").unwrap().max_bytes, 2 << 20);
        let e = yaml("{max_bytes: 2 lots}").unwrap_err();
        assert!(e.contains("invalid size \"2 lots\""), "{e}");
        let mut s = Settings::default();
        let flag = |key, value| Flag {
            name: "collector.textfile.x",
            key,
            negated: false,
            value,
        };
        s.apply_flag(&flag("max-bytes", Some("64kB"))).unwrap();
        s.apply_flag(&flag("max-series", Some("0"))).unwrap();
        s.apply_flag(&flag("directory", Some("/t"))).unwrap();
        assert_eq!(
            (s.max_bytes, s.max_series, s.directory.as_str()),
            (64_000, 0, "/t")
        );
        let e = s.apply_flag(&flag("max-bytes", Some("big"))).unwrap_err();
        assert!(
            e.starts_with("--collector.textfile.x: invalid size \"big\""),
            "{e}"
        );
        let e = s.apply_flag(&flag("max-series", Some("1e5"))).unwrap_err();
        assert_eq!(e, "--collector.textfile.x: \"1e5\" is not a whole number");
        assert!(s
            .apply_flag(&flag("directory", None))
            .unwrap_err()
            .contains("needs a value"));
    }

    #[test]
    fn globs() {
        assert!(wildcard_match("*", "abc"));
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(wildcard_match("a?c", "abc"));
        assert!(!wildcard_match("a?c", "ac"));
        assert!(wildcard_match("*.d", "x.d"));
        assert!(!wildcard_match("*.d", "x.dd"));
        assert!(wildcard_match("a**", "a"));
        let t = TestTree::new("textfile-glob");
        t.write("one/a.prom", "")
            .write("two/b.prom", "")
            .write("x", "");
        let pattern = format!("{}/*o*", t.path().display());
        assert_eq!(
            expand_glob(&pattern),
            vec![t.path().join("one"), t.path().join("two")]
        );
        let none = format!("{}/nothing*", t.path().display());
        assert_eq!(expand_glob(&none), vec![PathBuf::from(&none)]);
        assert_eq!(expand_glob("/plain/dir"), vec![PathBuf::from("/plain/dir")]);
    }

    #[test]
    fn passes_families_through_merged_and_sorted() {
        let merged = merged_of(&[
            (
                "/t/a.prom",
                "# HELP zz_last Last.\n# TYPE zz_last counter\nzz_last{job=\"b\"} 2\nzz_last{job=\"a\",extra=\"x\"} 1\n\
                 aa_untyped_no_help 3\n",
            ),
            (
                "/t/b.prom",
                "# HELP zz_last Last.\n# TYPE zz_last counter\nzz_last{job=\"c\"} 5\nzz_last{job=\"b\"} 9\n\
                 # HELP aa_untyped_no_help other help\naa_untyped_no_help{x=\"1\"} 4\n",
            ),
        ]);
        let want = "\
# HELP aa_untyped_no_help Metric read from /t/a.prom, /t/b.prom
# TYPE aa_untyped_no_help untyped
aa_untyped_no_help 3
# HELP node_textfile_mtime_seconds Unixtime mtime of textfiles successfully read.
# TYPE node_textfile_mtime_seconds gauge
node_textfile_mtime_seconds{file=\"/t/a.prom\"} 7
# HELP node_textfile_scrape_error 1 if there was an error opening or reading a file, 0 otherwise
# TYPE node_textfile_scrape_error gauge
node_textfile_scrape_error 0
# HELP zz_last Last.
# TYPE zz_last counter
zz_last{job=\"b\"} 9
zz_last{job=\"c\"} 5
zz_last{extra=\"\",job=\"b\"} 2
zz_last{extra=\"x\",job=\"a\"} 1
";
        assert_eq!(render(&merged, false), want);
    }

    #[test]
    fn histograms_and_summaries() {
        let merged = merged_of(&[(
            "/t/h.prom",
            "# HELP h Latency.\n# TYPE h histogram\n\
             h_bucket{m=\"get\",le=\"1\"} 3\nh_bucket{m=\"get\",le=\"0.5\"} 1\nh_sum{m=\"get\"} 1.5\nh_count{m=\"get\"} 4\n\
             # TYPE s summary\ns{quantile=\"0.9\"} 7\ns{quantile=\"0.5\"} 2\ns_sum 20\ns_count 5\n",
        )]);
        let out = render(&merged, true);
        let want_h = "\
# HELP h Latency.
# TYPE h histogram
h_bucket{m=\"get\",le=\"0.5\"} 1
h_bucket{m=\"get\",le=\"1\"} 3
h_bucket{m=\"get\",le=\"+Inf\"} 4
h_sum{m=\"get\"} 1.5
h_count{m=\"get\"} 4
";
        let want_s = "\
# HELP s Metric read from /t/h.prom
# TYPE s summary
s{quantile=\"0.5\"} 2
s{quantile=\"0.9\"} 7
s_sum 20
s_count 5
";
        assert!(out.starts_with(want_h), "{out}");
        assert!(out.ends_with(want_s), "{out}");
        assert!(out.contains("node_textfile_scrape_error 1\n"));
    }

    #[test]
    fn conflicts_and_duplicates_are_dropped() {
        let (merged, issues, errored) = merge_with(
            &[
                ("/t/a.prom", "# HELP x X.\n# TYPE x gauge\nx 1\nx 2\n"),
                ("/t/b.prom", "# HELP x X.\n# TYPE x counter\nx{a=\"1\"} 3\n"),
                (
                    "/t/c.prom",
                    "# HELP x Other.\n# TYPE x gauge\nx{a=\"2\"} 3\n",
                ),
            ],
            &[],
        );
        let x = &merged["x"];
        assert_eq!(x.series.len(), 1);
        assert_eq!(
            (&x.series[0].0, &x.series[0].1),
            (&vec![], &Series::Value(1.0))
        );
        assert_eq!(
            (issues[0].duplicates, issues[0].first_duplicate.as_deref()),
            (1, Some("x"))
        );
        assert_eq!(
            (issues[1].conflicts, issues[1].first_conflict),
            (1, Some("x"))
        );
        assert_eq!(
            (issues[2].conflicts, issues[2].first_conflict),
            (1, Some("x"))
        );
        // Only the second HELP text counts as an error, as in node_exporter 1.12.
        assert!(errored);
        let (_, _, errored) = merge_with(
            &[
                ("/t/a.prom", "# TYPE x gauge\nx 1\n"),
                ("/t/b.prom", "# TYPE x counter\nx 2\n"),
            ],
            &[],
        );
        assert!(!errored);
    }

    #[test]
    fn duplicates_are_summarised_per_file() {
        let mut text = String::from("# HELP d D.\n# TYPE d gauge\n");
        for _ in 0..5000 {
            text.push_str("d{x=\"same\"} 1\n");
        }
        let (merged, issues, errored) = merge_with(
            &[
                ("/t/a.prom", &text),
                ("/t/b.prom", "d{x=\"same\"} 2\nd{x=\"other\"} 3\n"),
            ],
            &[],
        );
        assert_eq!(
            merged["d"].series.len(),
            1,
            "b's d has no HELP, so it conflicts"
        );
        assert_eq!(issues[0].duplicates, 4999);
        assert_eq!(issues[0].first_duplicate.as_deref(), Some("d{x=\"same\"}"));
        assert_eq!(issues[1].conflicts, 1);
        assert!(!errored);
    }

    #[test]
    fn dedup_is_linear_and_keeps_the_first() {
        // 200k series of one family over two files: every fourth line of the first repeats
        // an earlier series, and the second file repeats half of the first.
        const N: usize = 200_000;
        let mut a = String::from("# HELP big Big.\n# TYPE big gauge\n");
        for i in 0..N {
            let id = if i % 4 == 3 { i - 1 } else { i };
            let _ = writeln!(a, "big{{id=\"{id}\",host=\"h\"}} {i}");
        }
        let mut b = String::from("# HELP big Big.\n# TYPE big gauge\n");
        for i in (0..N).step_by(2) {
            let _ = writeln!(b, "big{{host=\"h\",id=\"{i}\"}} -1");
        }
        let (merged, issues, _) = merge_with(&[("/t/a.prom", &a), ("/t/b.prom", &b)], &[]);
        let series = &merged["big"].series;
        assert_eq!(series.len(), N / 4 * 3);
        assert_eq!(issues[0].duplicates, N / 4);
        assert_eq!(issues[1].duplicates, N / 2);
        // The first of each repeated series stays: its value is its line number in a.prom.
        assert!(series
            .iter()
            .all(|(_, s, f)| *f == 0 && *s != Series::Value(-1.0)));
        let value_of = |id: &str| {
            series
                .iter()
                .find(|(l, _, _)| l[1].1 == id)
                .map(|(_, s, _)| match s {
                    Series::Value(v) => *v,
                    Series::Dist(_) => f64::NAN,
                })
        };
        assert_eq!(value_of("2"), Some(2.0));
        assert_eq!(value_of("3"), None);
        // In the Go client's order: label values compared as strings.
        assert_eq!(&*series[1].0[1].1, "1");
        assert_eq!(&*series[2].0[1].1, "10");
    }

    #[test]
    fn bad_files() {
        let e = |text: &str| match parse_file(text, 0) {
            Err(Skip::Parse(e)) => e,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            e("# TYPE x weird\nx 1\n"),
            "line 1: unknown metric type \"weird\""
        );
        assert!(e("x{a=\"1\" 1\n").starts_with("line 1: expected ',' or '}'"));
        assert!(e("x 1e\n").starts_with("line 1: expected a number as the value of \"x\""));
        assert_eq!(
            e("# TYPE h histogram\nh_bucket 1\n"),
            "h_bucket: missing \"le\" label"
        );
        assert_eq!(
            e("# TYPE h histogram\nh_bucket{le=\"x\"} 1\n"),
            "h_bucket: invalid le value \"x\""
        );
        assert_eq!(
            e("# TYPE s summary\ns 1\n"),
            "s: missing \"quantile\" label"
        );
        assert_eq!(
            e("# TYPE h histogram\nh 1\n"),
            "h: unexpected sample in Histogram h"
        );
        assert_eq!(
            e("x 1\n# TYPE x gauge\n"),
            "line 2: TYPE line for x after its samples"
        );
        assert_eq!(
            e("# TYPE x gauge\n# TYPE x gauge\n"),
            "line 2: second TYPE line for x"
        );
        assert_eq!(
            e("# HELP x a\n# HELP x b\n"),
            "line 2: second HELP line for x"
        );
        assert!(parse_file("", 0).unwrap().is_empty());
        assert_eq!(unescape_help("a\\\\b\\nc\\x"), "a\\b\nc\\x");
        // Series whose label names do not overlap would be filled in to n x n pairs.
        let mut wide = String::new();
        for i in 0..100 {
            let _ = writeln!(wide, "w{{l{i}=\"v\"}} 1");
        }
        assert_eq!(
            e(&wide),
            "family w: its 100 series use 100 different label names; filling in the missing \
             ones would make 10000 label pairs out of 100"
        );
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let path = Path::new("/t/bad.prom");
        let msg = |text: &str| parse_file(text, 0).unwrap_err().message(path, NO_LIMITS);
        assert_eq!(
            msg("this is { not valid\n"),
            "failed to parse textfile data from /t/bad.prom: line 1: expected a number as the \
             value of \"this\", got \"is\": this is { not valid"
        );
        assert_eq!(
            msg("# TYPE a gauge\na 1 1700000000000\n"),
            "textfile /t/bad.prom contains unsupported client-side timestamps (line 2), \
             skipping entire file"
        );
        // A syntax error is reported before timestamps, as node_exporter does.
        assert!(msg("a 1 17\nb{ 1\n").contains("line 2: expected a label name"));
        let limits = Limits {
            bytes: 0,
            series: 2,
        };
        assert_eq!(
            parse_file("a 1\nb 2\nc 3\n", 2)
                .unwrap_err()
                .message(path, limits),
            "textfile /t/bad.prom has more than the limit of 2 series \
             (--collector.textfile.max-series), skipping entire file"
        );
        assert!(parse_file("a 1\nb 2\n", 2).is_ok());
    }

    #[test]
    fn limits_skip_the_file_and_read_no_more_than_allowed() {
        let t = TestTree::new("textfile-limits");
        t.write("good.prom", "# HELP g G.\n# TYPE g gauge\ng 1\n")
            .write(
                "big.prom",
                &format!("# HELP b B.\nb 1\n{}", "#\n".repeat(100)),
            )
            .write(
                "many.prom",
                "m 1\nm{a=\"1\"} 2\nm{a=\"2\"} 3\nm{a=\"3\"} 4\n",
            )
            .symlink("/dev/zero", "endless.prom");
        let limits = Limits {
            bytes: 100,
            series: 3,
        };
        let out = collect(t.path(), limits, |_| {});
        assert!(out.contains("\ng 1\n"), "{out}");
        assert!(
            !out.contains("\nb 1\n") && !out.contains("\nm 1\n"),
            "{out}"
        );
        assert!(out.contains("node_textfile_scrape_error 1\n"), "{out}");
        let good = t.path().join("good.prom").display().to_string();
        let mtimes: Vec<&str> = out.lines().filter(|l| l.starts_with(MTIME)).collect();
        assert_eq!(mtimes.len(), 1, "{out}");
        assert!(
            mtimes[0].starts_with(&format!("{MTIME}{{file=\"{good}\"}} ")),
            "{out}"
        );
        parse_text(&out).unwrap();

        let big = t.path().join("big.prom");
        assert_eq!(
            read_limited(&big, 100).unwrap_err(),
            format!(
                "textfile {} is larger than the limit of 100 bytes \
                 (--collector.textfile.max-bytes), skipping entire file",
                big.display()
            )
        );
        // /dev/zero says it is empty and never ends: reading stops after the limit.
        let zero = t.path().join("endless.prom");
        assert!(read_limited(&zero, 1 << 20)
            .unwrap_err()
            .contains("larger than the limit"));
        assert!(read_limited(&big, 0).is_ok());
        assert!(read_limited(&t.path().join("none.prom"), 0)
            .unwrap_err()
            .starts_with("failed to open textfile data file"));
    }

    #[test]
    fn builtin_families_are_dropped() {
        let t = TestTree::new("textfile-builtin");
        t.write(
            "a.prom",
            "# HELP node_load1 My load.\n# TYPE node_load1 gauge\nnode_load1 42\n\
             # HELP my_metric Mine.\nmy_metric 1\n\
             node_scrape_collector_success{collector=\"x\"} 1\n\
             node_textfile_scrape_error 0\n\
             # HELP node_md_info Filled in by a script.\nnode_md_info{md=\"md0\"} 1\n",
        );
        let out = collect(t.path(), NO_LIMITS, |enc| {
            enc.single("node_load1", "1m load average.", Kind::Gauge, &[], 0.25);
        });
        assert_eq!(out.matches("# HELP node_load1 ").count(), 1, "{out}");
        assert!(
            out.contains("node_load1 0.25\n") && !out.contains(" 42\n"),
            "{out}"
        );
        assert!(!out.contains("collector=\"x\""), "{out}");
        assert!(out.contains("\nmy_metric 1\n"), "{out}");
        // A family of a collector that did not write (here: mdadm) may come from a file.
        assert!(out.contains("\nnode_md_info{md=\"md0\"} 1\n"), "{out}");
        assert!(out.contains("node_textfile_scrape_error 1\n"), "{out}");
        assert_eq!(
            out.matches("# HELP node_textfile_scrape_error").count(),
            1,
            "{out}"
        );
        parse_text(&out).unwrap();
    }

    #[test]
    fn reads_a_directory() {
        let t = TestTree::new("textfile-dir");
        t.write("good.prom", "# HELP g G.\n# TYPE g gauge\ng 1\n")
            .write("bad.prom", "g{ 1\n")
            .write("ignored.txt", "nonsense");
        let out = collect(t.path(), NO_LIMITS, |_| {});
        assert!(out.contains("\ng 1\n"), "{out}");
        let good = t.path().join("good.prom").display().to_string();
        assert!(
            out.contains(&format!("node_textfile_mtime_seconds{{file=\"{good}\"}} ")),
            "{out}"
        );
        assert!(!out.contains("bad.prom"), "{out}");
        assert!(out.contains("node_textfile_scrape_error 1\n"), "{out}");
        let out = collect(Path::new(""), NO_LIMITS, |_| {});
        assert!(out.ends_with("node_textfile_scrape_error 0\n"), "{out}");
    }

    /// Parses `text` as one file and writes what the collector would: `Ok(output)` or the
    /// reason the file is skipped.
    fn through(text: &str) -> Result<String, String> {
        let families =
            parse_file(text, 0).map_err(|e| e.message(Path::new("/p.prom"), NO_LIMITS))?;
        let mut errored = false;
        let builtin = |n: &str| n == "node_load1";
        let (merged, _) = merge_files(
            vec![(Path::new("/p.prom"), families)],
            &builtin,
            &mut errored,
        );
        Ok(render(&merged, errored))
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        fn name() -> impl Strategy<Value = &'static str> {
            prop_oneof![
                Just("a"),
                Just("a_total"),
                Just("h"),
                Just("h_bucket"),
                Just("h_sum"),
                Just("h_count"),
                Just("s"),
                Just("s_sum"),
                Just("s_count"),
                Just("node_load1"),
                Just("node_textfile_scrape_error"),
                Just("x:y"),
            ]
        }

        /// A sample line, valid more often than not.
        fn sample() -> impl Strategy<Value = String> {
            let label = (
                prop_oneof![
                    3 => Just("le"),
                    3 => Just("quantile"),
                    2 => Just("job"),
                    1 => Just("b"),
                    1 => Just("__x"),
                ],
                prop_oneof![
                    Just("0.5".to_string()),
                    Just("+Inf".to_string()),
                    Just("NaN".to_string()),
                    Just("1".to_string()),
                    "[a-z\\\\\"\n é]{0,4}",
                ],
            );
            let value = prop_oneof![
                6 => Just("1".to_string()),
                3 => Just("-2.5e3".to_string()),
                2 => Just("+Inf".to_string()),
                2 => Just("NaN".to_string()),
                6 => any::<f64>().prop_map(|v| v.to_string()),
            ];
            (
                name(),
                prop::collection::btree_map(label.0, label.1, 0..3),
                value,
            )
                .prop_map(|(n, labels, v)| {
                    let labels: Vec<String> = labels
                        .into_iter()
                        .map(|(k, v)| {
                            let v = v
                                .replace('\\', "\\\\")
                                .replace('"', "\\\"")
                                .replace('\n', "\\n");
                            format!("{k}=\"{v}\"")
                        })
                        .collect();
                    if labels.is_empty() {
                        format!("{n} {v}")
                    } else {
                        format!("{n}{{{}}} {v}", labels.join(","))
                    }
                })
        }

        /// A file: TYPE and HELP lines, then samples, and now and then a line of junk.
        fn file() -> impl Strategy<Value = String> {
            let kind = prop_oneof![
                Just("counter"),
                Just("gauge"),
                Just("untyped"),
                Just("histogram"),
                Just("summary"),
            ];
            (
                prop::collection::btree_map(name(), kind, 0..4),
                prop::collection::btree_map(name(), "[ -~]{0,10}", 0..4),
                prop::collection::vec(sample(), 0..20),
                prop::option::weighted(0.1, (any::<prop::sample::Index>(), "[ -~]{0,12}")),
            )
                .prop_map(|(types, helps, samples, junk)| {
                    let mut lines: Vec<String> = types
                        .iter()
                        .map(|(n, k)| format!("# TYPE {n} {k}"))
                        .chain(helps.iter().map(|(n, h)| format!("# HELP {n} {h}")))
                        .chain(samples)
                        .collect();
                    if let Some((at, junk)) = junk {
                        lines.insert(at.index(lines.len() + 1), junk);
                    }
                    lines.join("\n")
                })
        }

        /// Checks one input: no panic, and what is written parses back.
        fn check(text: &str) -> Result<(), TestCaseError> {
            if let Ok(out) = through(text) {
                let parsed = parse_text(&out);
                prop_assert!(
                    parsed.is_ok(),
                    "{:?}\n--- from ---\n{text}\n--- wrote ---\n{out}",
                    parsed
                );
                prop_assert_eq!(out.matches("# HELP node_textfile_scrape_error ").count(), 1);
                prop_assert!(!out.contains("node_load1"));
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(eos_testkit::fuzz::config())]

            #[test]
            fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
                check(&String::from_utf8_lossy(&bytes))?;
            }

            #[test]
            fn structured_text(text in file()) {
                check(&text)?;
            }
        }
    }
}
