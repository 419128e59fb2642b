//! `textfile`: metrics that other programs (cron jobs, hardware tools) write to `*.prom` files
//! in `--collector.textfile.directory`, passed through with two families of our own:
//! `node_textfile_mtime_seconds{file}` for each file read and `node_textfile_scrape_error`.
//!
//! As in node_exporter:
//! - the directory may be a glob (`/var/lib/node_exporter/*/`; `*` and `?` are supported);
//! - a file that cannot be read or parsed, or that carries client-side timestamps, is skipped
//!   whole and sets `node_textfile_scrape_error 1`; it never fails the scrape;
//! - families with the same name in several files are merged: the first file's HELP and TYPE
//!   win, a later series with a different HELP or TYPE, or one that repeats a series already
//!   read, is dropped (and logged);
//! - within one file, series of a family that lack a label the others have get it empty;
//! - a family without HELP gets `Metric read from <paths of the files that have it>`;
//! - `node_textfile_mtime_seconds` is labelled with the file's full path.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use eos_exposition::{parse_text, write_go_float, Encoder, Kind, ParsedSample};

use crate::collector::{Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "textfile",
    default_enabled: true,
    build: |cfg, _paths| {
        Ok(Box::new(TextfileCollector {
            directory: cfg.textfile.directory.clone(),
        }))
    },
};

struct TextfileCollector {
    directory: String,
}

const MTIME: &str = "node_textfile_mtime_seconds";
const SCRAPE_ERROR: &str = "node_textfile_scrape_error";

/// Label pairs of one series, sorted by name (without `le`/`quantile`).
type Labels = Vec<(String, String)>;

/// One series of a family.
#[derive(Debug, PartialEq)]
enum Series {
    /// A counter, gauge or untyped value.
    Value(f64),
    /// Histogram buckets (upper bound, cumulative count) or summary quantiles
    /// (quantile, value), sorted, with the sum and count.
    Dist {
        points: Vec<(f64, f64)>,
        sum: f64,
        count: f64,
    },
}

/// One family as read from a file (`help` is `None` when the file has no HELP line) or
/// merged over files.
#[derive(Debug, PartialEq)]
struct Family {
    help: Option<String>,
    kind: Kind,
    series: Vec<(Labels, Series)>,
}

impl Collector for TextfileCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let mut errored = false;
        let mut read: Vec<(PathBuf, Vec<(String, Family)>)> = Vec::new();
        let mut mtimes: BTreeMap<String, f64> = BTreeMap::new();
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
                        tracing::warn!(path = %dir.display(), "failed to read textfile collector directory: {e}");
                    }
                    continue;
                }
            };
            for name in names {
                let path = dir.join(&name);
                match read_file(ctx, &path) {
                    Ok((families, mtime)) => {
                        mtimes.insert(path.display().to_string(), mtime);
                        read.push((path, families));
                    }
                    Err(e) => {
                        errored = true;
                        tracing::warn!(file = %name, "failed to collect textfile data: {e}");
                    }
                }
            }
        }
        let merged = merge_files(read);
        write(enc, &merged, &mtimes, errored);
        Ok(())
    }
}

/// Reads and parses one file; returns its families and its mtime in whole seconds.
fn read_file(ctx: &mut Ctx<'_>, path: &Path) -> Result<(Vec<(String, Family)>, f64), String> {
    let text = ctx.read(path)?;
    let families = parse_file(text)
        .map_err(|e| format!("failed to parse textfile data from {}: {e}", path.display()))?;
    // Stat only after a successful parse, so that a broken file does not look fresh.
    let mtime = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| format!("failed to stat {}: {e}", path.display()))?;
    let secs = match mtime.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as f64,
        Err(e) => -(e.duration().as_secs() as f64),
    };
    Ok((families, secs))
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

/// Whether a sample line carries a timestamp after its value.
fn has_timestamp(line: &str) -> bool {
    let line = line.trim_start();
    let rest = match line.find(['{', ' ', '\t']) {
        Some(i) if line.get(i..i + 1) == Some("{") => {
            // Skip the label set, minding quoted values and escapes.
            let mut in_quote = false;
            let mut escaped = false;
            let mut end = None;
            for (j, c) in line.char_indices().skip(i + 1) {
                match c {
                    _ if escaped => escaped = false,
                    '\\' if in_quote => escaped = true,
                    '"' => in_quote = !in_quote,
                    '}' if !in_quote => {
                        end = Some(j + 1);
                        break;
                    }
                    _ => {}
                }
            }
            match end.and_then(|e| line.get(e..)) {
                Some(r) => r,
                None => return false,
            }
        }
        Some(i) => line.get(i..).unwrap_or(""),
        None => return false,
    };
    rest.split_ascii_whitespace().count() > 1
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

/// Parses one `.prom` file into families in order of appearance. A family without HELP gets
/// an empty one here; [`merge_files`] fills it in.
fn parse_file(text: &str) -> Result<Vec<(String, Family)>, String> {
    if let Some((i, line)) = text
        .lines()
        .enumerate()
        .find(|(_, l)| !l.trim_start().starts_with('#') && has_timestamp(l))
    {
        return Err(format!(
            "line {}: contains unsupported client-side timestamps, skipping entire file: {line}",
            i + 1
        ));
    }
    let parsed = parse_text(text)?;
    let mut kinds: BTreeMap<&str, Kind> = BTreeMap::new();
    for (name, t) in &parsed.types {
        kinds.insert(name, kind_of(t).map_err(|e| format!("{name}: {e}"))?);
    }
    // Group the samples by family: `x_bucket`/`x_sum`/`x_count` belong to a histogram or
    // summary `x` when one is declared.
    let mut order: Vec<&str> = Vec::new();
    let mut grouped: BTreeMap<&str, Vec<(&str, &ParsedSample)>> = BTreeMap::new();
    for s in &parsed.samples {
        let mut family = s.name.as_str();
        let mut suffix = "";
        if !kinds.contains_key(family) {
            for suf in ["_bucket", "_sum", "_count"] {
                if let Some(base) = s.name.strip_suffix(suf) {
                    if matches!(kinds.get(base), Some(Kind::Histogram | Kind::Summary)) {
                        family = base;
                        suffix = suf;
                        break;
                    }
                }
            }
        }
        let entry = grouped.entry(family).or_default();
        if entry.is_empty() {
            order.push(family);
        }
        entry.push((suffix, s));
    }
    let mut out = Vec::with_capacity(order.len());
    for name in order {
        let kind = kinds.get(name).copied().unwrap_or(Kind::Untyped);
        let help = parsed.help.get(name).map(|h| unescape_help(h));
        let samples = grouped.remove(name).unwrap_or_default();
        let series = build_series(name, kind, &samples)?;
        out.push((name.to_string(), Family { help, kind, series }));
    }
    Ok(out)
}

/// Turns the samples of one family into series, filling labels that only some series have
/// with empty values.
fn build_series(
    name: &str,
    kind: Kind,
    samples: &[(&str, &ParsedSample)],
) -> Result<Vec<(Labels, Series)>, String> {
    let special = match kind {
        Kind::Histogram => "le",
        Kind::Summary => "quantile",
        _ => "",
    };
    let mut all_names: Vec<&str> = samples
        .iter()
        .flat_map(|(_, s)| s.labels.keys().map(String::as_str))
        .filter(|k| *k != special)
        .collect();
    all_names.sort_unstable();
    all_names.dedup();
    let labels_of = |s: &ParsedSample| -> Labels {
        all_names
            .iter()
            .map(|k| (k.to_string(), s.labels.get(*k).cloned().unwrap_or_default()))
            .collect()
    };
    let mut series: Vec<(Labels, Series)> = Vec::new();
    if special.is_empty() {
        for (_, s) in samples {
            series.push((labels_of(s), Series::Value(s.value)));
        }
        return Ok(series);
    }
    for (suffix, s) in samples {
        let labels = labels_of(s);
        let idx = match series.iter().position(|(l, _)| *l == labels) {
            Some(i) => i,
            None => {
                series.push((
                    labels,
                    Series::Dist {
                        points: Vec::new(),
                        sum: 0.0,
                        count: 0.0,
                    },
                ));
                series.len() - 1
            }
        };
        let Some((_, Series::Dist { points, sum, count })) = series.get_mut(idx) else {
            continue;
        };
        match (*suffix, kind) {
            ("_sum", _) => *sum = s.value,
            // Counts are integers in the Go client.
            ("_count", _) => *count = s.value.max(0.0).trunc(),
            ("_bucket", Kind::Histogram) | ("", Kind::Summary) => {
                let raw = s
                    .labels
                    .get(special)
                    .ok_or_else(|| format!("{}: missing {special:?} label", s.name))?;
                let bound = parse_go_float(raw)
                    .ok_or_else(|| format!("{}: invalid {special} value {raw:?}", s.name))?;
                let v = if kind == Kind::Histogram {
                    s.value.max(0.0).trunc()
                } else {
                    s.value
                };
                points.push((bound, v));
            }
            _ => return Err(format!("{}: unexpected sample in {kind:?} {name}", s.name)),
        }
    }
    for (_, s) in series.iter_mut() {
        if let Series::Dist { points, .. } = s {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            points.dedup_by(|b, a| a.0 == b.0);
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

/// Gives HELP-less families node_exporter's default HELP (naming every file that has the
/// family) and merges the files in order.
fn merge_files(read: Vec<(PathBuf, Vec<(String, Family)>)>) -> BTreeMap<String, Family> {
    let mut files_of: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (path, families) in &read {
        for (name, _) in families {
            files_of
                .entry(name)
                .or_default()
                .push(path.display().to_string());
        }
    }
    let defaults: BTreeMap<String, String> = files_of
        .into_iter()
        .map(|(name, files)| {
            (
                name.to_string(),
                format!("Metric read from {}", files.join(", ")),
            )
        })
        .collect();
    let mut merged = BTreeMap::new();
    for (path, mut families) in read {
        for (name, fam) in families.iter_mut() {
            if fam.help.is_none() {
                fam.help = defaults.get(name.as_str()).cloned();
            }
        }
        merge(&mut merged, families, &path);
    }
    merged
}

/// Merges one file's families into `merged`, dropping what the Go client would reject.
fn merge(merged: &mut BTreeMap<String, Family>, families: Vec<(String, Family)>, path: &Path) {
    for (name, fam) in families {
        if name == MTIME || name == SCRAPE_ERROR {
            tracing::warn!(file = %path.display(), family = %name, "textfile family shadows the collector's own; dropped");
            continue;
        }
        match merged.get_mut(&name) {
            None => {
                let mut fam = fam;
                dedup_series(&name, &mut fam.series, path);
                merged.insert(name, fam);
            }
            Some(existing) => {
                if existing.help != fam.help || existing.kind != fam.kind {
                    tracing::warn!(file = %path.display(), family = %name, "family has a different HELP or TYPE than in an earlier file; dropped");
                    continue;
                }
                existing.series.extend(fam.series);
                dedup_series(&name, &mut existing.series, path);
            }
        }
    }
}

/// Drops series that repeat an earlier one's labels (the first one stays).
fn dedup_series(name: &str, series: &mut Vec<(Labels, Series)>, path: &Path) {
    let mut seen: Vec<&Labels> = Vec::with_capacity(series.len());
    let mut dup = Vec::new();
    for (i, (labels, _)) in series.iter().enumerate() {
        if seen.contains(&labels) {
            dup.push(i);
        } else {
            seen.push(labels);
        }
    }
    for i in dup.into_iter().rev() {
        tracing::warn!(file = %path.display(), family = %name, "series was collected before with the same labels; dropped");
        series.remove(i);
    }
}

/// Writes all families in name order, our own two among them.
fn write(
    enc: &mut Encoder<'_>,
    merged: &BTreeMap<String, Family>,
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
    let mut le = Vec::new();
    for (name, fam) in merged {
        write_own(enc, Some(name));
        write_family(enc, name, fam, &mut le);
    }
    write_own(enc, None);
}

/// Writes one family; `scratch` holds formatted `le`/`quantile` values.
fn write_family(enc: &mut Encoder<'_>, name: &str, fam: &Family, scratch: &mut Vec<u8>) {
    let mut order: Vec<&(Labels, Series)> = fam.series.iter().collect();
    // The Go client orders series by label count, then label values position by position.
    order.sort_by(|a, b| {
        a.0.len().cmp(&b.0.len()).then_with(|| {
            a.0.iter()
                .map(|l| l.1.as_str())
                .cmp(b.0.iter().map(|l| l.1.as_str()))
        })
    });
    let mut out = enc.family(name, fam.help.as_deref().unwrap_or(""), fam.kind);
    let mut labels: Vec<(&str, &str)> = Vec::new();
    for (series_labels, series) in order {
        labels.clear();
        labels.extend(series_labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        match series {
            Series::Value(v) => out.sample(&labels, *v),
            Series::Dist { points, sum, count } => {
                let (special, suffix) = if fam.kind == Kind::Histogram {
                    ("le", "_bucket")
                } else {
                    ("quantile", "")
                };
                let mut inf_seen = false;
                for (bound, v) in points {
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
                    out.sample_suffixed("_bucket", &with_inf, *count);
                }
                out.sample_suffixed("_sum", &labels, *sum);
                out.sample_suffixed("_count", &labels, *count);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_tree::TestTree;

    fn render(merged: &BTreeMap<String, Family>, errored: bool) -> String {
        let mut buf = Vec::new();
        let mut enc = Encoder::new(&mut buf, eos_exposition::Format::Text);
        let mtimes = BTreeMap::from([("/t/a.prom".to_string(), 7.0)]);
        write(&mut enc, merged, &mtimes, errored);
        String::from_utf8(buf).unwrap()
    }

    fn merged_of(files: &[(&str, &str)]) -> BTreeMap<String, Family> {
        let read = files
            .iter()
            .map(|(path, text)| (PathBuf::from(path), parse_file(text).unwrap()))
            .collect();
        merge_files(read)
    }

    #[test]
    fn timestamps() {
        assert!(has_timestamp("a 1 123"));
        assert!(has_timestamp("a{b=\"} x\"} 1 123"));
        assert!(!has_timestamp("a{b=\"} 1 2\"} 1"));
        assert!(!has_timestamp("a{b=\"\\\"} 1 2\"} 1"));
        assert!(!has_timestamp("a 1"));
        assert!(!has_timestamp("a"));
        assert!(!has_timestamp("a{b=\"1\""));
        let e = parse_file("# TYPE a gauge\na 1 1700000000000\n").unwrap_err();
        assert!(e.contains("timestamps"), "{e}");
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
        let merged = merged_of(&[
            ("/t/a.prom", "# TYPE x gauge\nx 1\nx 2\n# TYPE node_textfile_scrape_error gauge\nnode_textfile_scrape_error 5\n"),
            ("/t/b.prom", "# TYPE x counter\nx{a=\"1\"} 3\n"),
        ]);
        let x = &merged["x"];
        assert_eq!(x.series, vec![(vec![], Series::Value(1.0))]);
        assert!(!merged.contains_key(SCRAPE_ERROR));
    }

    #[test]
    fn bad_files() {
        assert!(parse_file("# TYPE x weird\nx 1\n").is_err());
        assert!(parse_file("x{a=\"1\" 1\n").is_err());
        assert!(parse_file("x 1e\n").is_err());
        assert!(parse_file("# TYPE h histogram\nh_bucket 1\n").is_err());
        assert!(parse_file("# TYPE h histogram\nh_bucket{le=\"x\"} 1\n").is_err());
        assert!(parse_file("# TYPE s summary\ns 1\n").is_err());
        assert!(parse_file("# TYPE h histogram\nh 1\n").is_err());
        assert!(parse_file("").unwrap().is_empty());
        assert_eq!(unescape_help("a\\\\b\\nc\\x"), "a\\b\nc\\x");
    }

    #[test]
    fn reads_a_directory() {
        let t = TestTree::new("textfile-dir");
        t.write("good.prom", "# HELP g G.\n# TYPE g gauge\ng 1\n")
            .write("bad.prom", "g{ 1\n")
            .write("ignored.txt", "nonsense");
        let c = TextfileCollector {
            directory: t.path().display().to_string(),
        };
        let paths = eos_module::HostPaths::default();
        let mut buf = Vec::new();
        let mut ctx = Ctx::new(
            &paths,
            std::time::Instant::now() + std::time::Duration::from_secs(5),
            &mut buf,
        );
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, eos_exposition::Format::Text);
        c.update(&mut enc, &mut ctx).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(out.contains("\ng 1\n"), "{out}");
        let good = t.path().join("good.prom").display().to_string();
        assert!(
            out.contains(&format!("node_textfile_mtime_seconds{{file=\"{good}\"}} ")),
            "{out}"
        );
        assert!(!out.contains("bad.prom"), "{out}");
        assert!(out.contains("node_textfile_scrape_error 1\n"), "{out}");

        let empty = TextfileCollector {
            directory: String::new(),
        };
        let mut out = Vec::new();
        let mut enc = Encoder::new(&mut out, eos_exposition::Format::Text);
        empty.update(&mut enc, &mut ctx).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .ends_with("node_textfile_scrape_error 0\n"));
    }
}
