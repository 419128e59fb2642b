//! How far the logs module has shipped each file, saved so that a restart resumes there and
//! no line is sent twice or lost.
//!
//! A file is known by its identity, not its path: the kubelet renames `0.log` to
//! `0.log.<time>` on rotation, and a recreated pod reuses paths. The identity is the device,
//! the inode and a fingerprint of the file's first bytes (inodes are reused after deletion).
//!
//! The file is text, one position a line, ending with a checksum of everything above it, so
//! that a torn or edited file is detected and reported instead of trusted:
//!
//! ```text
//! eos-logs positions v1
//! <dev> <ino> <fingerprint hex> <fingerprint length> <offset> <path, percent-escaped>
//! checksum <fnv-1a 64 hex>
//! ```
//!
//! [`save`] writes a temporary file, fsyncs it, renames it over the old one and fsyncs the
//! directory, so a crash leaves either the old positions or the new ones.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// How many leading bytes make a file's fingerprint.
pub const FINGERPRINT_BYTES: usize = 256;

const HEADER: &str = "eos-logs positions v1";

/// A file's identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
    /// FNV-1a of the first `fingerprint_len` bytes.
    pub fingerprint: u64,
    pub fingerprint_len: u16,
}

/// The fingerprint of a file that starts with `head` (at most [`FINGERPRINT_BYTES`] are used).
pub fn fingerprint(head: &[u8]) -> (u64, u16) {
    let head = &head[..head.len().min(FINGERPRINT_BYTES)];
    (fnv(head), head.len() as u16)
}

/// One file's position: acknowledged by Loki up to `offset`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub path: PathBuf,
    pub offset: u64,
}

/// Every file's position, by identity.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Positions {
    pub files: BTreeMap<FileId, Position>,
}

/// Why a positions file could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum CorruptPositions {
    /// The first line is not ours.
    Header,
    /// A line does not have the format's fields (1-based line number).
    Line(usize),
    /// No checksum line, or one that does not match: torn or edited.
    Checksum,
}

impl std::fmt::Display for CorruptPositions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CorruptPositions::Header => write!(f, "not an eos-logs positions file"),
            CorruptPositions::Line(n) => write!(f, "line {n} is not a position"),
            CorruptPositions::Checksum => {
                write!(f, "the checksum does not match (a torn or edited file)")
            }
        }
    }
}

/// The file's text.
pub fn encode(p: &Positions) -> String {
    let mut s = String::from(HEADER);
    s.push('\n');
    for (id, pos) in &p.files {
        let _ = writeln!(
            s,
            "{} {} {:016x} {} {} {}",
            id.dev,
            id.ino,
            id.fingerprint,
            id.fingerprint_len,
            pos.offset,
            escape(&pos.path.to_string_lossy())
        );
    }
    let sum = fnv(s.as_bytes());
    let _ = writeln!(s, "checksum {sum:016x}");
    s
}

/// Reads the file's text; any damage is an error, never a guess.
pub fn decode(text: &[u8]) -> Result<Positions, CorruptPositions> {
    let body_end = text
        .strip_suffix(b"\n")
        .and_then(|t| t.iter().rposition(|&b| b == b'\n'))
        .map(|i| i + 1)
        .ok_or(CorruptPositions::Checksum)?;
    let (body, last) = text.split_at(body_end);
    let sum = std::str::from_utf8(last)
        .ok()
        .and_then(|l| l.trim_end().strip_prefix("checksum "))
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .ok_or(CorruptPositions::Checksum)?;
    if fnv(body) != sum {
        return Err(CorruptPositions::Checksum);
    }
    let body = std::str::from_utf8(body).map_err(|_| CorruptPositions::Checksum)?;
    let mut lines = body.lines();
    if lines.next() != Some(HEADER) {
        return Err(CorruptPositions::Header);
    }
    let mut p = Positions::default();
    for (i, line) in lines.enumerate() {
        let bad = || CorruptPositions::Line(i + 2);
        let f: Vec<&str> = line.splitn(6, ' ').collect();
        let [dev, ino, fp, fp_len, offset, path] = f[..] else {
            return Err(bad());
        };
        let id = FileId {
            dev: dev.parse().map_err(|_| bad())?,
            ino: ino.parse().map_err(|_| bad())?,
            fingerprint: u64::from_str_radix(fp, 16).map_err(|_| bad())?,
            fingerprint_len: fp_len.parse().map_err(|_| bad())?,
        };
        let pos = Position {
            path: PathBuf::from(unescape(path).ok_or_else(bad)?),
            offset: offset.parse().map_err(|_| bad())?,
        };
        p.files.insert(id, pos);
    }
    Ok(p)
}

/// Writes `p` to `path` atomically: a temporary file beside it, fsynced, renamed over it, and
/// the directory fsynced.
pub fn save(path: &Path, p: &Positions) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(encode(p).as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Reads `path`; a missing file is no positions yet. The outer error is I/O, the inner one
/// damage.
pub fn load(path: &Path) -> std::io::Result<Result<Positions, CorruptPositions>> {
    match std::fs::read(path) {
        Ok(text) => Ok(decode(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ok(Positions::default())),
        Err(e) => Err(e),
    }
}

fn fnv(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &c in b {
        h ^= u64::from(c);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Paths with spaces, `%` and control characters written as `%XX`.
fn escape(s: &str) -> String {
    let mut v = Vec::with_capacity(s.len());
    for b in s.bytes() {
        if b <= b' ' || b == b'%' || b == 0x7f {
            v.extend_from_slice(format!("%{b:02X}").as_bytes());
        } else {
            v.push(b);
        }
    }
    // Only ASCII bytes were replaced, so what was UTF-8 still is.
    String::from_utf8_lossy(&v).into_owned()
}

fn unescape(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut v = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            v.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            v.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Positions {
        let mut p = Positions::default();
        let (fingerprint, fingerprint_len) = fingerprint(b"2026-11-30T04:56:39Z stdout F a\n");
        p.files.insert(
            FileId {
                dev: 2049,
                ino: 131_077,
                fingerprint,
                fingerprint_len,
            },
            Position {
                path: "/var/log/pods/default_web-0_1a2b/app/0.log.20261130-045639".into(),
                offset: 4096,
            },
        );
        p.files.insert(
            FileId {
                dev: 2049,
                ino: 7,
                fingerprint: 0,
                fingerprint_len: 0,
            },
            Position {
                path: "/var/log/pods/odd dir %/é/0.log".into(),
                offset: 0,
            },
        );
        p
    }

    #[test]
    fn round_trip_and_damage() {
        let p = sample();
        let text = encode(&p);
        assert!(text.starts_with("eos-logs positions v1\n2049 7 "), "{text}");
        assert_eq!(decode(text.as_bytes()), Ok(p));
        // Torn: cut anywhere, the checksum no longer matches (or is gone).
        for cut in [0, 10, text.len() / 2, text.len() - 1] {
            assert!(decode(&text.as_bytes()[..cut]).is_err(), "cut at {cut}");
        }
        // Edited: one digit changed.
        let edited = text.replacen("4096", "4097", 1);
        assert_eq!(decode(edited.as_bytes()), Err(CorruptPositions::Checksum));
        // A well-formed checksum over a bad line still names the line.
        let body = "eos-logs positions v1\n1 2 zz 3 4 /x\n";
        let forged = format!("{body}checksum {:016x}\n", fnv(body.as_bytes()));
        assert_eq!(decode(forged.as_bytes()), Err(CorruptPositions::Line(2)));
        let body = "something else\n";
        let forged = format!("{body}checksum {:016x}\n", fnv(body.as_bytes()));
        assert_eq!(decode(forged.as_bytes()), Err(CorruptPositions::Header));
        assert_eq!(
            CorruptPositions::Checksum.to_string(),
            "the checksum does not match (a torn or edited file)"
        );
    }

    #[test]
    fn save_replaces_atomically_and_load_reads_back() {
        let dir = eos_testkit::TempDir::new("logs-positions");
        let path = dir.join("positions");
        assert_eq!(load(&path).unwrap(), Ok(Positions::default()), "none yet");
        save(&path, &Positions::default()).unwrap();
        save(&path, &sample()).unwrap();
        assert_eq!(load(&path).unwrap(), Ok(sample()));
        assert!(
            !path.with_extension("tmp").exists(),
            "no temporary file left"
        );
        std::fs::write(&path, "garbage").unwrap();
        assert_eq!(load(&path).unwrap(), Err(CorruptPositions::Checksum));
    }

    #[test]
    fn fingerprints_use_the_first_bytes_only() {
        let long = vec![b'a'; 1000];
        assert_eq!(fingerprint(&long), fingerprint(&long[..FINGERPRINT_BYTES]));
        assert_eq!(fingerprint(&long).1, 256);
        assert_ne!(fingerprint(b"a"), fingerprint(b"b"));
    }

    proptest! {
        #![proptest_config(eos_testkit::fuzz::config())]

        #[test]
        fn fuzz_positions_decode(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn fuzz_positions_round_trip(
            files in proptest::collection::vec((any::<u64>(), any::<u64>(), any::<u64>(), any::<u16>(), any::<u64>(), "\\PC{0,40}"), 0..10)
        ) {
            let mut p = Positions::default();
            for (dev, ino, fp, len, offset, path) in files {
                p.files.insert(
                    FileId { dev, ino, fingerprint: fp, fingerprint_len: len },
                    Position { path: path.into(), offset },
                );
            }
            prop_assert_eq!(decode(encode(&p).as_bytes()), Ok(p));
        }
    }
}

impl Positions {
    /// The saved position of the file at (`dev`, `ino`) that starts with `head`: the inode
    /// must match, and so must the fingerprint over the bytes it was taken of (an inode is
    /// reused once its file is deleted; a different start means a different file).
    pub fn find(&self, dev: u64, ino: u64, head: &[u8]) -> Option<(FileId, &Position)> {
        let lo = FileId {
            dev,
            ino,
            fingerprint: 0,
            fingerprint_len: 0,
        };
        self.files
            .range(lo..)
            .take_while(|(id, _)| id.dev == dev && id.ino == ino)
            .find(|(id, _)| {
                let n = usize::from(id.fingerprint_len);
                head.len() >= n && fingerprint(&head[..n]) == (id.fingerprint, id.fingerprint_len)
            })
            .map(|(id, p)| (*id, p))
    }
}

#[cfg(test)]
mod find_tests {
    use super::*;

    #[test]
    fn a_file_is_found_by_inode_and_fingerprint() {
        let head = b"2026-11-30T04:56:39Z stdout F hello\n";
        let (fingerprint, fingerprint_len) = fingerprint(&head[..10]);
        let id = FileId {
            dev: 1,
            ino: 2,
            fingerprint,
            fingerprint_len,
        };
        let mut p = Positions::default();
        p.files.insert(
            id,
            Position {
                path: "/x/0.log".into(),
                offset: 10,
            },
        );
        assert_eq!(
            p.find(1, 2, head).map(|(i, p)| (i, p.offset)),
            Some((id, 10))
        );
        assert!(p.find(1, 2, b"another file's start").is_none());
        assert!(p.find(1, 3, head).is_none());
        assert!(
            p.find(1, 2, b"2026").is_none(),
            "shorter than the fingerprint"
        );
    }
}
