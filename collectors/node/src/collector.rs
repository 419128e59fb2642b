//! The collector contract and the small I/O helpers every collector shares.
//!
//! # Writing a collector
//!
//! One file per collector, `src/collectors/<name>.rs`, named as in node_exporter
//! (`--collector.<name>`). The file holds:
//!
//! 1. pure parse functions (`fn parse_xxx(text: &str) -> Result<Xxx, String>`), unit-tested in
//!    the same file with small inline fixtures, including odd and truncated input;
//! 2. a struct implementing [`Collector`], built once per module start (compile regexes and
//!    read settings there, not per scrape);
//! 3. `pub(crate) const DEF: CollectorDef`, which `src/registry.rs` lists, and a
//!    `pub(crate) mod <name>;` line in `src/collectors/mod.rs`;
//! 4. if it has settings: a `Settings` type implementing
//!    [`CollectorSettings`](crate::settings::CollectorSettings) (its YAML section, flags and
//!    `--help` lines), `DEF` is a `CollectorDef<Settings>`, and the registry line is
//!    `name(Settings)`. Nothing outside the file names its settings.
//!
//! ```ignore
//! pub(crate) const DEF: CollectorDef = CollectorDef {
//!     name: "loadavg",
//!     default_enabled: true,
//!     build: |_settings, _paths| Ok(Box::new(LoadavgCollector)),
//! };
//! struct LoadavgCollector;
//! impl Collector for LoadavgCollector {
//!     fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
//!         let text = ctx.read_proc("loadavg")?;          // I/O at the edge, reused buffer
//!         let load = parse_loadavg(text)?;                // pure, tested
//!         enc.single("node_load1", "1m load average.", Kind::Gauge, &[], load[0]);
//!         Ok(())
//!     }
//! }
//! ```
//!
//! Rules:
//! - Paths come from [`Ctx::paths`] (`procfs`, `sysfs`, `rootfs`, `udev_data`); never
//!   hard-code `/proc`. Use [`Ctx::read_proc`] / [`Ctx::read`] / [`Ctx::read_optional`], which
//!   read into a buffer reused across scrapes. For sysfs trees, [`list_dir`] and [`SysDir`]
//!   (open the device directory once, then read its attributes relative to it: one `openat`
//!   and one `read` each), or [`read_trimmed`] for a single attribute.
//! - Parse from the borrowed text; name the file and line in errors with [`At`]. Selecting
//!   keys by a configured regex every scrape? [`MatchCache`] runs it once per key.
//! - Write each family in one go (all its samples between one `enc.family(..)` and the next):
//!   the text format does not allow a family to be split. So parse everything first, then
//!   write family by family.
//! - Return `Err` (with context: the file and line) when input is malformed. The module then
//!   drops everything this collector wrote in this scrape, reports
//!   `node_scrape_collector_success{collector="<name>"} 0` and logs a warning; the other
//!   collectors are unaffected. A file that legitimately does not exist on this kernel (no
//!   such subsystem) is not an error: write nothing and return `Ok`. (node_exporter reports
//!   "no data" as a failure; here `success 0` always means something is wrong.)
//! - No `unwrap()`/`expect()`/slice indexing on data read from the host.
//! - Check `ctx.deadline` in loops that may be long. It is this collector's own deadline,
//!   earlier than the scrape's: collectors run on a worker thread, and one still running past
//!   its budget is left behind (`success 0`, its output dropped) and skipped until its call
//!   returns (see `runner.rs`). So a read that blocks costs one thread, never the scrape; a
//!   collector that checks the deadline and returns `Err` is not marked stuck.

use eos_exposition::Encoder;
use eos_module::HostPaths;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One node_exporter collector: turns host files into samples, once per scrape.
pub(crate) trait Collector: Send + Sync {
    /// Writes this collector's samples. An `Err` means the scrape of this collector failed.
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String>;
}

/// What a collector's file declares as `pub(crate) const DEF`: its name, whether it is on by
/// default, and how it is built from its settings (`S`, the file's `Settings` type, or `()`
/// for a collector without any).
pub(crate) struct CollectorDef<S: 'static = ()> {
    /// The node_exporter name: `--collector.<name>` and the `collector` label.
    pub(crate) name: &'static str,
    /// Whether node_exporter enables it without flags.
    pub(crate) default_enabled: bool,
    /// Builds the collector from its settings and the host paths, once per module start.
    pub(crate) build: BuildFn<S>,
}

/// Builds a collector from `S` (its settings, or the whole module config once the registry
/// has erased the settings type) and the host paths.
pub(crate) type BuildFn<S> = fn(&S, &HostPaths) -> Result<Box<dyn Collector>, String>;

/// What a collector gets for one scrape: where the host is, the deadline and scratch space.
pub(crate) struct Ctx<'a> {
    /// Where the host's filesystems are mounted.
    pub(crate) paths: &'a HostPaths,
    /// When this collector must be done: four fifths of the time left to the scrape deadline
    /// when it started. Past its budget (seven eighths) it is left behind.
    pub(crate) deadline: Instant,
    buf: &'a mut Vec<u8>,
}

impl<'a> Ctx<'a> {
    /// A context using `buf` as the reused read buffer.
    pub(crate) fn new(paths: &'a HostPaths, deadline: Instant, buf: &'a mut Vec<u8>) -> Self {
        Ctx {
            paths,
            deadline,
            buf,
        }
    }

    /// An error once the scrape deadline has passed, for loops over many devices: the
    /// collector then fails (and its partial output is dropped) instead of overrunning.
    pub(crate) fn check_deadline(&self, what: &str) -> Result<(), String> {
        if Instant::now() >= self.deadline {
            return Err(format!("scrape deadline passed while reading {what}"));
        }
        Ok(())
    }

    /// `<procfs>/<rel>`.
    pub(crate) fn proc_path(&self, rel: &str) -> PathBuf {
        self.paths.procfs.join(rel)
    }

    /// `<sysfs>/<rel>`.
    pub(crate) fn sys_path(&self, rel: &str) -> PathBuf {
        self.paths.sysfs.join(rel)
    }

    /// Reads a whole file into the reused buffer and returns it as text.
    pub(crate) fn read(&mut self, path: &Path) -> Result<&str, String> {
        read_text(self.buf, path)
    }

    /// Reads `<procfs>/<rel>`.
    pub(crate) fn read_proc(&mut self, rel: &str) -> Result<&str, String> {
        let path = self.proc_path(rel);
        read_text(self.buf, &path)
    }

    /// Like [`Ctx::read`], but a missing file gives `Ok(None)`.
    pub(crate) fn read_optional(&mut self, path: &Path) -> Result<Option<&str>, String> {
        match read_bytes(self.buf, path) {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(io_error(path, &e)),
        }
        std::str::from_utf8(self.buf)
            .map(Some)
            .map_err(|e| format!("reading {}: {e}", path.display()))
    }
}

/// Whether an I/O error means "not there" (missing file, a path through something that is not
/// a directory, or a sysfs attribute that the driver does not implement).
pub(crate) fn is_not_found(e: &std::io::Error) -> bool {
    e.kind() == ErrorKind::NotFound
        || e.raw_os_error() == Some(libc::ENODEV)
        || e.raw_os_error() == Some(libc::ENOTDIR)
}

/// Formats an I/O error with the path it happened on.
pub(crate) fn io_error(path: &Path, e: &std::io::Error) -> String {
    format!("reading {}: {e}", path.display())
}

/// Reads a whole file into `buf` (cleared first), keeping its capacity for the next read.
pub(crate) fn read_bytes(buf: &mut Vec<u8>, path: &Path) -> std::io::Result<()> {
    buf.clear();
    std::fs::File::open(path)?.read_to_end(buf)?;
    Ok(())
}

/// Reads a whole file into `buf` and returns it as UTF-8 text; errors name the path.
pub(crate) fn read_text<'b>(buf: &'b mut Vec<u8>, path: &Path) -> Result<&'b str, String> {
    read_bytes(buf, path).map_err(|e| io_error(path, &e))?;
    std::str::from_utf8(buf).map_err(|e| format!("reading {}: {e}", path.display()))
}

/// Reads a small file (a sysfs attribute) and returns its content without surrounding
/// whitespace. `Ok(None)` when it does not exist or the device does not implement it.
pub(crate) fn read_trimmed(path: &Path) -> Result<Option<String>, String> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).trim().to_string())),
        Err(e) if is_not_found(&e) || e.raw_os_error() == Some(libc::EINVAL) => Ok(None),
        Err(e) => Err(io_error(path, &e)),
    }
}

/// An open directory whose files are read relative to it (`openat`), which saves the kernel
/// a path walk per file: worth it for sysfs trees read attribute by attribute.
pub(crate) struct SysDir {
    fd: std::os::fd::OwnedFd,
    path: PathBuf,
}

impl SysDir {
    /// Opens a directory; `Ok(None)` when it does not exist.
    pub(crate) fn open(path: &Path) -> Result<Option<SysDir>, String> {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(path);
        match dir {
            Ok(f) => Ok(Some(SysDir {
                fd: f.into(),
                path: path.to_path_buf(),
            })),
            Err(e) if is_not_found(&e) || e.raw_os_error() == Some(libc::ENOTDIR) => Ok(None),
            Err(e) => Err(format!("opening {}: {e}", path.display())),
        }
    }

    /// Reads the file `name` (relative to this directory) into `buf` and returns it without
    /// surrounding whitespace. `Ok(None)` when it does not exist, the driver does not
    /// implement it (ENODEV, EINVAL, EOPNOTSUPP, as sysfs answers for e.g. `speed` of a
    /// link that is down), or it is readable by root only and we are not root (EACCES).
    pub(crate) fn read<'b>(
        &self,
        name: &std::ffi::CStr,
        buf: &'b mut Vec<u8>,
    ) -> Result<Option<&'b str>, String> {
        use std::os::fd::{AsRawFd, FromRawFd};
        // SAFETY: a valid directory fd and a NUL-terminated name; the result is checked.
        let fd = unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                name.as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        let err = |e: std::io::Error| {
            format!(
                "reading {}/{}: {e}",
                self.path.display(),
                name.to_string_lossy()
            )
        };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            let absent = is_not_found(&e)
                || e.raw_os_error() == Some(libc::EINVAL)
                || e.raw_os_error() == Some(libc::EACCES);
            return if absent { Ok(None) } else { Err(err(e)) };
        }
        // SAFETY: `fd` was just opened and is owned by nobody else.
        let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
        // sysfs hands out a whole attribute (at most a page) in one read, so one read that
        // does not fill the buffer is the whole file: no second read to see the end.
        buf.clear();
        buf.resize(ATTR_READ, 0);
        let first = file.read(buf);
        let result = match first {
            Ok(n) if n < ATTR_READ => {
                buf.truncate(n);
                Ok(())
            }
            Ok(n) => {
                buf.truncate(n);
                file.read_to_end(buf).map(|_| ())
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {}
            Err(e)
                if is_not_found(&e)
                    || e.raw_os_error() == Some(libc::EINVAL)
                    || e.raw_os_error() == Some(libc::EOPNOTSUPP) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(err(e)),
        }
        Ok(Some(utf8_or_empty(buf).trim()))
    }
}

/// The first read of a sysfs attribute (a page: sysfs attributes are at most that).
const ATTR_READ: usize = 4096;

/// Text of a sysfs attribute: they are ASCII, and a garbled one is better read as empty than
/// failing the whole collector.
fn utf8_or_empty(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

/// The names of the entries of a directory, sorted. A missing directory gives an empty list.
pub(crate) fn list_dir(path: &Path) -> Result<Vec<String>, String> {
    let rd = match std::fs::read_dir(path) {
        Ok(rd) => rd,
        Err(e) if is_not_found(&e) => return Ok(Vec::new()),
        Err(e) => return Err(format!("listing {}: {e}", path.display())),
    };
    let mut names = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| format!("listing {}: {e}", path.display()))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort_unstable();
    Ok(names)
}

/// The names of the directories (not symlinks) in `dir`, sorted; none when it is missing.
pub(crate) fn list_subdirs(dir: &Path) -> Result<Vec<String>, String> {
    Ok(list_dir_entries(dir)?
        .into_iter()
        .filter_map(|(name, is_dir)| is_dir.then_some(name))
        .collect())
}

/// The entries of `dir` with whether each is a directory (not following symlinks), sorted;
/// none when it is missing.
pub(crate) fn list_dir_entries(dir: &Path) -> Result<Vec<(String, bool)>, String> {
    let err = |e: std::io::Error| format!("listing {}: {e}", dir.display());
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if is_not_found(&e) => return Ok(Vec::new()),
        Err(e) => return Err(err(e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(err)?;
        let is_dir = entry.file_type().map_err(err)?.is_dir();
        out.push((entry.file_name().to_string_lossy().into_owned(), is_dir));
    }
    out.sort_unstable();
    Ok(out)
}

/// Remembers, per position, whether a name matched a pattern, so that files whose set of
/// keys rarely changes (`/proc/vmstat`, `/proc/net/netstat`) run the regex once per key, not
/// once per key per scrape.
pub(crate) struct MatchCache {
    pattern: crate::pattern::Pattern,
    seen: Vec<(String, bool)>,
}

impl MatchCache {
    /// A cache for `pattern`.
    pub(crate) fn new(pattern: crate::pattern::Pattern) -> Self {
        MatchCache {
            pattern,
            seen: Vec::new(),
        }
    }

    /// Whether `name`, the `idx`-th key of the file, matches.
    pub(crate) fn matches(&mut self, idx: usize, name: &str) -> bool {
        if let Some((n, m)) = self.seen.get(idx) {
            if n == name {
                return *m;
            }
        }
        let m = self.pattern.is_match(name);
        if idx < self.seen.len() {
            self.seen.truncate(idx);
        }
        if idx == self.seen.len() {
            self.seen.push((name.to_string(), m));
        }
        m
    }
}

/// Names a line of a file in parse errors without allocating: `parsing /proc/stat line 3`.
#[derive(Clone, Copy)]
pub(crate) struct At<'a>(pub(crate) &'a str, pub(crate) usize);

impl std::fmt::Display for At<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "parsing {} line {}", self.0, self.1)
    }
}

/// A parse error from a pure parser, which names the file as `/proc/...`, with the host's
/// procfs instead (e.g. `/host/proc/meminfo` under `--path.procfs=/host/proc`).
pub(crate) fn in_procfs(paths: &HostPaths, e: String) -> String {
    let real = paths.procfs.to_string_lossy();
    if real == "/proc" {
        return e;
    }
    e.replace(
        "parsing /proc/",
        &format!("parsing {}/", real.trim_end_matches('/')),
    )
}

/// Parses an unsigned integer field; the error names what was being parsed.
pub(crate) fn parse_u64(s: &str, what: &dyn std::fmt::Display) -> Result<u64, String> {
    s.parse()
        .map_err(|_| format!("{what}: invalid number {s:?}"))
}

/// Parses an unsigned number as procfs reads sysfs counters (Go's
/// `strconv.ParseUint(s, 0, 64)`): decimal, `0x` hex, `0o` or leading-`0` octal, or `0b`
/// binary; no sign and no spaces. (Go also takes `_` between digits; sysfs never writes
/// one.) Used for sysfs counters (fibrechannel, infiniband,
/// tapestats).
pub(crate) fn parse_sysfs_uint(s: &str) -> Result<u64, String> {
    let err = || format!("invalid number {s:?}");
    let prefixed = |lower: &str, upper: &str| s.strip_prefix(lower).or(s.strip_prefix(upper));
    let (radix, digits) = if let Some(d) = prefixed("0x", "0X") {
        (16, d)
    } else if let Some(d) = prefixed("0o", "0O") {
        (8, d)
    } else if let Some(d) = prefixed("0b", "0B") {
        (2, d)
    } else if s.len() > 1 && s.starts_with('0') {
        (8, s.get(1..).unwrap_or(""))
    } else {
        (10, s)
    };
    // `from_str_radix` would also take a `+`.
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(err());
    }
    u64::from_str_radix(digits, radix).map_err(|_| err())
}

/// Parses a signed integer field; the error names what was being parsed.
pub(crate) fn parse_i64(s: &str, what: &dyn std::fmt::Display) -> Result<i64, String> {
    s.parse()
        .map_err(|_| format!("{what}: invalid number {s:?}"))
}

/// Parses a float field; the error names what was being parsed.
pub(crate) fn parse_f64(s: &str, what: &dyn std::fmt::Display) -> Result<f64, String> {
    s.parse()
        .map_err(|_| format!("{what}: invalid number {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::test_tree::TestTree;

    #[test]
    fn parse_errors_name_the_real_procfs() {
        let host = HostPaths {
            procfs: "/host/proc".into(),
            ..HostPaths::default()
        };
        let e = format!("{}: invalid number \"x\"", At("/proc/meminfo", 3));
        assert_eq!(
            in_procfs(&host, e.clone()),
            "parsing /host/proc/meminfo line 3: invalid number \"x\""
        );
        assert_eq!(in_procfs(&HostPaths::default(), e.clone()), e);
    }

    #[test]
    fn read_helpers() {
        let tmp = TestTree::new("collector");
        let dir = tmp.path().to_path_buf();
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a"), "  42\n").unwrap();
        assert_eq!(read_trimmed(&dir.join("a")).unwrap().as_deref(), Some("42"));
        assert_eq!(read_trimmed(&dir.join("missing")).unwrap(), None);
        assert_eq!(list_dir(&dir).unwrap(), vec!["a", "sub"]);
        assert!(list_dir(&dir.join("missing")).unwrap().is_empty());
        let mut buf = Vec::new();
        assert_eq!(read_text(&mut buf, &dir.join("a")).unwrap(), "  42\n");
        let err = read_text(&mut buf, &dir.join("missing")).unwrap_err();
        assert!(err.contains("missing"), "{err}");
        std::fs::write(dir.join("bad"), [0xff, 0xfe]).unwrap();
        assert!(read_text(&mut buf, &dir.join("bad")).is_err());
    }

    #[test]
    fn deadline_check() {
        let paths = HostPaths::default();
        let mut buf = Vec::new();
        let past = Ctx::new(&paths, Instant::now(), &mut buf);
        let e = past.check_deadline("CPUs").unwrap_err();
        assert_eq!(e, "scrape deadline passed while reading CPUs");
        let mut buf = Vec::new();
        let later = Instant::now() + std::time::Duration::from_secs(60);
        assert!(Ctx::new(&paths, later, &mut buf)
            .check_deadline("x")
            .is_ok());
    }

    #[test]
    fn sysdir_reads_relative_files() {
        let tmp = TestTree::new("sysdir");
        tmp.write("iface/mtu", "1500\n");
        let dir = SysDir::open(&tmp.path().join("iface")).unwrap().unwrap();
        let mut buf = Vec::new();
        assert_eq!(dir.read(c"mtu", &mut buf).unwrap(), Some("1500"));
        assert_eq!(dir.read(c"missing", &mut buf).unwrap(), None);
        assert!(SysDir::open(&tmp.path().join("nope")).unwrap().is_none());
        assert!(SysDir::open(&tmp.path().join("iface/mtu"))
            .unwrap()
            .is_none());
    }

    #[test]
    fn match_cache_follows_changing_keys() {
        let mut c = MatchCache::new(crate::pattern::Pattern::new("^a").unwrap());
        assert!(c.matches(0, "ab"));
        assert!(!c.matches(1, "b"));
        assert!(c.matches(0, "ab"));
        assert!(!c.matches(0, "zz"));
        assert!(c.matches(1, "ax"));
        assert!(c.matches(5, "a5"));
    }

    #[test]
    fn number_errors_name_the_field() {
        let e = parse_u64("x1", &"meminfo line 3").unwrap_err();
        assert_eq!(e, "meminfo line 3: invalid number \"x1\"");
        assert_eq!(parse_i64("-5", &"x").unwrap(), -5);
        assert_eq!(parse_f64("0.5", &"x").unwrap(), 0.5);
    }

    #[test]
    fn numbers_like_go_parse_uint_base_0() {
        assert_eq!(parse_sysfs_uint("0").unwrap(), 0);
        assert_eq!(parse_sysfs_uint("42").unwrap(), 42);
        assert_eq!(parse_sysfs_uint("0x1A").unwrap(), 26);
        assert_eq!(parse_sysfs_uint("0X1a").unwrap(), 26);
        assert_eq!(parse_sysfs_uint("0o17").unwrap(), 15);
        assert_eq!(parse_sysfs_uint("017").unwrap(), 15);
        assert_eq!(parse_sysfs_uint("0b101").unwrap(), 5);
        assert_eq!(parse_sysfs_uint("0xffffffffffffffff").unwrap(), u64::MAX);
        for bad in [
            "",
            "0x",
            "+1",
            "-1",
            " 1",
            "1 ",
            "08",
            "0x10000000000000000",
            "N/A",
            "1.5",
        ] {
            assert!(parse_sysfs_uint(bad).is_err(), "{bad:?}");
        }
    }
}
