//! One file being read: an open handle (so a file renamed or deleted under us can still be
//! drained), its identity, and how far it has been read and decoded.

use crate::batch::FileNo;
use crate::decode::{Decoder, Entry};
use crate::discover::{ContainerDir, FileName};
use crate::positions::{fingerprint, FileId, Positions, FINGERPRINT_BYTES};
use crate::split::Splitter;
use crate::time::Timestamp;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Where a file stands on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Found at its path by the last scan.
    Present,
    /// Gone from the directory (deleted, or its pod was); held open to be drained.
    Deleted,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Present => "present",
            State::Deleted => "deleted",
        }
    }
}

/// What one poll did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Polled {
    /// Bytes read.
    pub read: u64,
    /// The file was shorter than what had been read: read again from its start.
    pub truncated: bool,
    /// The identity changed (a longer fingerprint, or a truncation).
    pub id_changed: bool,
}

/// One file being tailed.
#[derive(Debug)]
pub struct Tail {
    pub no: FileNo,
    pub dir: Arc<ContainerDir>,
    pub name: FileName,
    pub path: PathBuf,
    pub state: State,
    pub id: FileId,
    file: File,
    /// Size at the last poll.
    pub size: u64,
    splitter: Splitter,
    decoder: Decoder,
    /// Commit offset of the last entry handed on (0: none yet).
    pub emitted: u64,
    /// Since when the file has bytes Loki has not acknowledged.
    pub behind_since: Option<Instant>,
    /// When the file was last seen at its path (deleted files: when they vanished).
    pub changed: Instant,
}

impl Tail {
    /// Opens `path` and resumes where the positions say (or at its start). Returns the tail
    /// and whether a saved position was found.
    pub fn open(
        no: FileNo,
        dir: Arc<ContainerDir>,
        name: FileName,
        path: &Path,
        saved: &Positions,
        max_line: usize,
    ) -> std::io::Result<(Tail, Option<u64>)> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        let head = read_head(&file)?;
        let (fp, fp_len) = fingerprint(&head);
        let found = saved
            .find(meta.dev(), meta.ino(), &head)
            .map(|(_, p)| p.offset);
        // A saved offset past the end: the file was truncated while the agent was away.
        let offset = found.filter(|&o| o <= meta.len()).unwrap_or(0);
        let id = FileId {
            dev: meta.dev(),
            ino: meta.ino(),
            fingerprint: fp,
            fingerprint_len: fp_len,
        };
        let tail = Tail {
            no,
            dir,
            name,
            path: path.to_path_buf(),
            state: State::Present,
            id,
            file,
            size: meta.len(),
            splitter: Splitter::new(offset, max_line + 1024),
            decoder: Decoder::new(offset, max_line),
            emitted: 0,
            behind_since: None,
            changed: Instant::now(),
        };
        Ok((tail, found.map(|_| offset)))
    }

    /// Reads the file's size again (for the lag while reading is paused).
    pub fn refresh_size(&mut self) {
        if let Ok(m) = self.file.metadata() {
            self.size = m.len();
        }
    }

    /// (device, inode).
    pub fn inode(&self) -> (u64, u64) {
        (self.id.dev, self.id.ino)
    }

    /// Everything in the file has been read (as of the last poll).
    pub fn at_eof(&self) -> bool {
        self.splitter.offset() >= self.size
    }

    /// Offset read up to.
    pub fn read_offset(&self) -> u64 {
        self.splitter.offset()
    }

    /// What may be committed once every entry handed on is acknowledged.
    pub fn safe_offset(&self) -> u64 {
        self.decoder.safe_offset()
    }

    /// Bytes held for unfinished lines and parts.
    pub fn pending_bytes(&self) -> usize {
        self.splitter.pending() + self.decoder.pending_bytes()
    }

    /// Reads at most `budget` bytes into `buf` and decodes them into `out`.
    pub fn poll(
        &mut self,
        buf: &mut [u8],
        budget: usize,
        clock: (Instant, Timestamp),
        out: &mut Vec<Entry>,
    ) -> std::io::Result<Polled> {
        let mut polled = Polled::default();
        self.size = self.file.metadata()?.len();
        if self.size < self.splitter.offset() {
            // copytruncate: the file was emptied under us and written again.
            self.splitter.reset(0);
            self.decoder.reset(0);
            self.emitted = 0;
            polled.truncated = true;
        }
        if usize::from(self.id.fingerprint_len) < FINGERPRINT_BYTES
            && self.size > u64::from(self.id.fingerprint_len)
            || polled.truncated
        {
            let (fp, len) = fingerprint(&read_head(&self.file)?);
            if (fp, len) != (self.id.fingerprint, self.id.fingerprint_len) {
                self.id.fingerprint = fp;
                self.id.fingerprint_len = len;
                polled.id_changed = true;
            }
        }
        let mut left = budget;
        while left > 0 && self.splitter.offset() < self.size {
            let want = buf.len().min(left);
            let n = self
                .file
                .read_at(&mut buf[..want], self.splitter.offset())?;
            if n == 0 {
                break;
            }
            left = left.saturating_sub(n);
            polled.read += n as u64;
            let decoder = &mut self.decoder;
            self.splitter.feed(&buf[..n], |l| {
                decoder.line(l.bytes, (l.start, l.end), l.cut, clock, out);
            });
        }
        Ok(polled)
    }

    /// Ships parts whose `F` has not come for `wait`.
    pub fn flush_stale(&mut self, now: Instant, wait: std::time::Duration, out: &mut Vec<Entry>) {
        let end = self.splitter.line_start();
        self.decoder.flush_stale(now, wait, end, out);
    }

    /// The file will not grow (deleted or rotated away, and read to its end): ships the last
    /// unfinished line and parts.
    pub fn finish(&mut self, clock: (Instant, Timestamp), out: &mut Vec<Entry>) {
        let decoder = &mut self.decoder;
        self.splitter.finish(|l| {
            decoder.line(l.bytes, (l.start, l.end), l.cut, clock, out);
        });
        let end = self.splitter.offset();
        self.decoder.flush_all(end, out);
    }
}

fn read_head(file: &File) -> std::io::Result<Vec<u8>> {
    let mut head = vec![0; FINGERPRINT_BYTES];
    let mut n = 0;
    while n < head.len() {
        let got = file.read_at(&mut head[n..], n as u64)?;
        if got == 0 {
            break;
        }
        n += got;
    }
    head.truncate(n);
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::parse_file_name;
    use eos_testkit::TempDir;
    use std::io::Write;

    const T: &str = "2026-11-30T04:56:39.123456789Z";

    fn clock() -> (Instant, Timestamp) {
        (
            Instant::now(),
            Timestamp {
                seconds: 1,
                nanos: 0,
            },
        )
    }

    fn dir() -> Arc<ContainerDir> {
        Arc::new(ContainerDir {
            namespace: "ns".into(),
            pod: "p".into(),
            uid: "u".into(),
            container: "c".into(),
        })
    }

    /// Opens `path` as `0.log` of a test container, lines cut at 1000 bytes.
    fn open(no: FileNo, path: &Path, saved: &Positions) -> (Tail, Option<u64>) {
        Tail::open(
            no,
            dir(),
            parse_file_name("0.log").unwrap(),
            path,
            saved,
            1000,
        )
        .unwrap()
    }

    fn lines(out: &[Entry]) -> Vec<&str> {
        out.iter().map(|e| e.line.as_str()).collect()
    }

    #[test]
    fn reads_follows_a_rename_and_resumes_from_positions() {
        let t = TempDir::new("eos-logs-tail");
        let path = t.join("0.log");
        let mut f = std::fs::File::create(&path).unwrap();
        writeln!(f, "{T} stdout F one").unwrap();
        let (mut tail, saved) = open(1, &path, &Positions::default());
        assert_eq!(saved, None);
        let mut buf = vec![0; 7];
        let mut out = Vec::new();
        let p = tail.poll(&mut buf, 1 << 20, clock(), &mut out).unwrap();
        assert_eq!(lines(&out), ["one"]);
        assert!(
            !p.id_changed,
            "the fingerprint already covers the whole file"
        );
        // Renamed, then written through the old handle's inode.
        std::fs::rename(&path, t.join("0.log.20261130-000000")).unwrap();
        writeln!(f, "{T} stdout F two").unwrap();
        let p = tail.poll(&mut buf, 1 << 20, clock(), &mut out).unwrap();
        assert!(p.id_changed, "the file grew: a longer fingerprint");
        assert_eq!(lines(&out), ["one", "two"]);
        assert!(tail.at_eof());
        let end = tail.safe_offset();
        assert_eq!(end, tail.size);

        let mut positions = Positions::default();
        positions.files.insert(
            tail.id,
            crate::positions::Position {
                path: path.clone(),
                offset: out[0].commit,
            },
        );
        let (mut again, saved) = open(2, &t.join("0.log.20261130-000000"), &positions);
        assert_eq!(saved, Some(out[0].commit));
        let mut out2 = Vec::new();
        again.poll(&mut buf, 1 << 20, clock(), &mut out2).unwrap();
        assert_eq!(lines(&out2), ["two"], "resumed after the acknowledged line");
    }

    #[test]
    fn copytruncate_reads_again_from_the_start() {
        let t = TempDir::new("eos-logs-tail");
        let path = t.join("0.log");
        std::fs::write(
            &path,
            format!("{T} stdout F before-a\n{T} stdout F before-b\n"),
        )
        .unwrap();
        let (mut tail, _) = open(1, &path, &Positions::default());
        let mut buf = vec![0; 4096];
        let mut out = Vec::new();
        tail.poll(&mut buf, 1 << 20, clock(), &mut out).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        std::fs::write(&path, format!("{T} stdout F after\n")).unwrap();
        let p = tail.poll(&mut buf, 1 << 20, clock(), &mut out).unwrap();
        assert!(p.truncated && p.id_changed);
        assert_eq!(lines(&out), ["before-a", "before-b", "after"]);
    }

    #[test]
    fn a_sparse_file_is_read_in_bounded_memory() {
        let t = TempDir::new("eos-logs-tail");
        let path = t.join("0.log");
        // 64 MiB of hole: NUL bytes and no newline at all.
        std::fs::File::create(&path)
            .unwrap()
            .set_len(64 << 20)
            .unwrap();
        let (mut tail, _) = open(1, &path, &Positions::default());
        let mut buf = vec![0; 256 << 10];
        let mut out = Vec::new();
        while !tail.at_eof() {
            tail.poll(&mut buf, 8 << 20, clock(), &mut out).unwrap();
            assert!(
                tail.pending_bytes() <= 1000 + 1024,
                "{}",
                tail.pending_bytes()
            );
        }
        tail.finish(clock(), &mut out);
        assert_eq!(out.len(), 1, "one endless line, cut");
        assert!(out[0].truncated && out[0].line.len() <= 1000);
        assert_eq!(tail.safe_offset(), 64 << 20);
    }

    #[test]
    fn a_deleted_file_is_drained_and_its_last_line_shipped() {
        let t = TempDir::new("eos-logs-tail");
        let path = t.join("0.log");
        std::fs::write(&path, format!("{T} stdout F whole\n{T} stdout P no-end")).unwrap();
        let (mut tail, _) = open(1, &path, &Positions::default());
        std::fs::remove_file(&path).unwrap();
        let mut buf = vec![0; 4096];
        let mut out = Vec::new();
        tail.poll(&mut buf, 1 << 20, clock(), &mut out).unwrap();
        assert_eq!(lines(&out), ["whole"]);
        assert!(tail.at_eof());
        tail.finish(clock(), &mut out);
        assert_eq!(lines(&out), ["whole", "no-end"]);
        assert_eq!(tail.safe_offset(), tail.size);
    }
}
