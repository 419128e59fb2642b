//! Which cgroup v1 `blkio.*` files a cgroup's block I/O comes from, in runc's order
//! (`libcontainer/cgroups/fs/blkio.go`), which is where cAdvisor and the kubelet get it.
//!
//! runc tries groups of files and takes the first group whose first file has a device line:
//! BFQ (`blkio.bfq.*_recursive`), CFQ (`blkio.*_recursive`, kernels before 5.0), throttle
//! recursive (`blkio.throttle.*_recursive`, 4.16 and later) and last the plain, non-recursive
//! throttle files. A first file that is missing, unreadable, malformed or holds no device line
//! (a cgroup that did no I/O under that policy reads `Total 0`) sends it to the next group;
//! a file with device lines of zeros counts. Once a group is taken, runc keeps what it has
//! read when a later file of the group is missing or empty, and fails on a malformed one.
//! cAdvisor exports `io_serviced` as `container_fs_{reads,writes}_total` and
//! `io_service_bytes` as `container_fs_{reads,writes}_bytes_total`, per device.
//!
//! Only the `io_serviced` and `io_service_bytes` files are read. runc's BFQ and CFQ groups
//! also hold statistics this module doesn't export (`sectors`, `io_service_time`, ...): its
//! CFQ group and its first group (BFQ built with `CONFIG_BFQ_CGROUP_DEBUG`) start with
//! `sectors_recursive`, and the debug group ends in the same two BFQ files as the plain BFQ
//! group. The kernel prints all of a policy's files from the same list of per-device groups,
//! so `sectors_recursive` has a device line exactly when `io_serviced_recursive` does; deciding
//! on `io_serviced` takes the same group without reading the files that aren't exported. For
//! the same reason the plain throttle files are read only where the recursive ones are missing:
//! an existing recursive file without a device means a plain one without a device.
//!
//! [`Walk`] is the order without the reading: the caller reads the file it names and hands
//! over the text, so the order is tested on fixtures without a filesystem.

use crate::parse::{self, BlkioFile, Io};

/// One of runc's groups, reduced to the two files exported.
struct Group {
    /// The `io_serviced` file, which decides whether the group is taken.
    ops: &'static str,
    /// The `io_service_bytes` file.
    bytes: &'static str,
    /// Whether the walk ends when `ops` is there without a device line. The plain throttle
    /// files, runc's last group, are printed from the same per-device groups as the recursive
    /// ones, so they have no device either: they are only read on kernels without the
    /// recursive files.
    empty_ends: bool,
}

/// runc's groups in its order.
const ORDER: [Group; 4] = [
    Group {
        ops: "blkio.bfq.io_serviced_recursive",
        bytes: "blkio.bfq.io_service_bytes_recursive",
        empty_ends: false,
    },
    Group {
        ops: "blkio.io_serviced_recursive",
        bytes: "blkio.io_service_bytes_recursive",
        empty_ends: false,
    },
    Group {
        ops: "blkio.throttle.io_serviced_recursive",
        bytes: "blkio.throttle.io_service_bytes_recursive",
        empty_ends: true,
    },
    Group {
        ops: "blkio.throttle.io_serviced",
        bytes: "blkio.throttle.io_service_bytes",
        empty_ends: true,
    },
];

/// One cgroup's way through [`ORDER`]: ask [`Walk::file`] what to read, hand its text to
/// [`Walk::take`], until `file` says `None`.
#[derive(Debug, Default)]
pub struct Walk {
    /// The group being tried, an index into [`ORDER`].
    group: usize,
    /// Whether the group's `io_serviced` file had device lines and its bytes are next.
    taken: bool,
    done: bool,
}

impl Walk {
    /// The file to read next, or `None` when the cgroup's I/O is complete.
    pub fn file(&self) -> Option<&'static str> {
        if self.done {
            return None;
        }
        let g = ORDER.get(self.group)?;
        Some(if self.taken { g.bytes } else { g.ops })
    }

    /// Takes the text of the file [`Walk::file`] named (`None`: missing or unreadable) into
    /// `out`, which holds the cgroup's I/O when the walk ends (empty if no group had any).
    /// A malformed file is an error naming the line; a malformed first file sends the walk to
    /// the next group, as runc does, and one in a taken group leaves the I/O out.
    pub fn take(&mut self, text: Option<&str>, out: &mut Vec<Io>) -> Result<(), String> {
        let Some(group) = ORDER.get(self.group).filter(|_| !self.done) else {
            return Ok(());
        };
        if !self.taken {
            out.clear();
            match text.map_or(Ok(0), |t| parse::blkio(t, BlkioFile::Serviced, out)) {
                Ok(0) if text.is_some() && group.empty_ends => self.done = true,
                Ok(0) => self.group += 1,
                Ok(_) => self.taken = true,
                Err(e) => {
                    out.clear();
                    self.group += 1;
                    return Err(e);
                }
            }
            return Ok(());
        }
        self.done = true;
        // missing or without device lines: runc keeps the operations it has
        let Some(text) = text else { return Ok(()) };
        parse::blkio(text, BlkioFile::ServiceBytes, out)
            .map(drop)
            .inspect_err(|_| out.clear())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Walks a cgroup whose blkio directory holds `files` (name, text); returns the I/O, the
    /// errors and the files read, in order.
    fn walk(files: &[(&str, &str)]) -> (Vec<Io>, Vec<String>, Vec<&'static str>) {
        let (mut io, mut errors, mut read) = (Vec::new(), Vec::new(), Vec::new());
        let mut w = Walk::default();
        while let Some(name) = w.file() {
            read.push(name);
            let text = files.iter().find(|(n, _)| *n == name).map(|(_, t)| *t);
            if let Err(e) = w.take(text, &mut io) {
                errors.push(format!("{name}: {e}"));
            }
        }
        (io, errors, read)
    }

    /// A kernel `blkio` statistics file of one device: read and write values, then the
    /// kernel's other lines and totals.
    fn stat(dev: &str, read: u64, write: u64) -> String {
        let total = read + write;
        format!(
            "{dev} Read {read}\n{dev} Write {write}\n{dev} Sync {write}\n{dev} Async {read}\n\
             {dev} Discard 0\n{dev} Total {total}\nTotal {total}\n"
        )
    }

    fn io(major: u32, minor: u32, rw_bytes: (u64, u64), rw_ops: (u64, u64)) -> Io {
        Io {
            major,
            minor,
            read_bytes: rw_bytes.0,
            write_bytes: rw_bytes.1,
            reads: rw_ops.0,
            writes: rw_ops.1,
        }
    }

    const NOTHING: &str = "Total 0\n";

    #[test]
    fn bfq_comes_first_when_it_has_devices() {
        // a BFQ node: the BFQ files have the device, the throttle files (kept by the kernel for
        // every policy) are empty, as they are when no throttle limit is set
        let (ops, bytes) = (stat("8:0", 40, 10), stat("8:0", 163840, 40960));
        let files = [
            ("blkio.bfq.io_serviced_recursive", ops.as_str()),
            ("blkio.bfq.io_service_bytes_recursive", bytes.as_str()),
            ("blkio.throttle.io_serviced_recursive", NOTHING),
            ("blkio.throttle.io_service_bytes_recursive", NOTHING),
            ("blkio.throttle.io_serviced", NOTHING),
            ("blkio.throttle.io_service_bytes", NOTHING),
        ];
        let (got, errors, read) = walk(&files);
        assert_eq!(got, [io(8, 0, (163840, 40960), (40, 10))]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            read,
            [
                "blkio.bfq.io_serviced_recursive",
                "blkio.bfq.io_service_bytes_recursive"
            ]
        );
    }

    #[test]
    fn an_empty_bfq_group_falls_through_to_throttle_recursive() {
        // BFQ built in but not the device's scheduler: its files read `Total 0`
        let (ops, bytes) = (stat("253:0", 512, 0), stat("253:0", 2 << 20, 0));
        let (own_ops, own_bytes) = (stat("253:0", 0, 0), stat("253:0", 0, 0));
        let files = [
            ("blkio.bfq.io_serviced_recursive", NOTHING),
            ("blkio.bfq.io_service_bytes_recursive", NOTHING),
            ("blkio.throttle.io_serviced_recursive", ops.as_str()),
            ("blkio.throttle.io_service_bytes_recursive", bytes.as_str()),
            ("blkio.throttle.io_serviced", own_ops.as_str()),
            ("blkio.throttle.io_service_bytes", own_bytes.as_str()),
        ];
        let (got, errors, read) = walk(&files);
        assert_eq!(got, [io(253, 0, (2 << 20, 0), (512, 0))]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            read,
            [
                "blkio.bfq.io_serviced_recursive",
                "blkio.io_serviced_recursive",
                "blkio.throttle.io_serviced_recursive",
                "blkio.throttle.io_service_bytes_recursive"
            ]
        );
    }

    #[test]
    fn cfq_recursive_comes_before_throttle() {
        // a kernel before 5.0 with CFQ: no BFQ files; CFQ's and throttle's both count the I/O
        let (ops, bytes) = (stat("8:16", 7, 3), stat("8:16", 28672, 12288));
        let other = stat("8:16", 1, 1);
        let files = [
            ("blkio.io_serviced_recursive", ops.as_str()),
            ("blkio.io_service_bytes_recursive", bytes.as_str()),
            ("blkio.throttle.io_serviced_recursive", other.as_str()),
            ("blkio.throttle.io_service_bytes_recursive", other.as_str()),
            ("blkio.throttle.io_serviced", other.as_str()),
            ("blkio.throttle.io_service_bytes", other.as_str()),
        ];
        let (got, errors, read) = walk(&files);
        assert_eq!(got, [io(8, 16, (28672, 12288), (7, 3))]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            read,
            [
                "blkio.bfq.io_serviced_recursive",
                "blkio.io_serviced_recursive",
                "blkio.io_service_bytes_recursive"
            ]
        );
    }

    #[test]
    fn without_recursive_files_the_plain_throttle_files_are_read() {
        // a kernel before 4.16 without CFQ: only the cgroup's own I/O is there to read
        let (ops, bytes) = (stat("8:0", 20, 0), stat("8:0", 81920, 0));
        let files = [
            ("blkio.throttle.io_serviced", ops.as_str()),
            ("blkio.throttle.io_service_bytes", bytes.as_str()),
        ];
        let (got, errors, read) = walk(&files);
        assert_eq!(got, [io(8, 0, (81920, 0), (20, 0))]);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(read.len(), 5, "{read:?}");
    }

    #[test]
    fn devices_with_zeros_count_and_empty_files_do_not() {
        // no I/O anywhere: every group falls through, nothing is exported
        for recursive in [NOTHING, ""] {
            let files = [
                ("blkio.bfq.io_serviced_recursive", NOTHING),
                ("blkio.throttle.io_serviced_recursive", recursive),
                ("blkio.throttle.io_serviced", NOTHING),
            ];
            let (got, errors, read) = walk(&files);
            assert!(got.is_empty() && errors.is_empty(), "{got:?} {errors:?}");
            // the plain files list the devices the recursive ones do: none, not read
            assert_eq!(
                read.last(),
                Some(&"blkio.throttle.io_serviced_recursive"),
                "{read:?}"
            );
        }

        // a device line of zeros is a device: the group is taken, and its zeros exported
        let zeros = stat("8:0", 0, 0);
        let files = [
            ("blkio.throttle.io_serviced_recursive", zeros.as_str()),
            ("blkio.throttle.io_service_bytes_recursive", zeros.as_str()),
            ("blkio.throttle.io_serviced", "8:0 Read 5\n"),
        ];
        let (got, _, _) = walk(&files);
        assert_eq!(got, [io(8, 0, (0, 0), (0, 0))]);
    }

    #[test]
    fn a_taken_group_keeps_its_operations_when_its_bytes_are_missing() {
        // runc stops at a taken group's missing or empty later file with what it has
        let ops = stat("8:0", 3, 4);
        let other = stat("8:0", 1000, 1000);
        for bytes in [None, Some(NOTHING)] {
            let mut files = vec![
                ("blkio.throttle.io_serviced_recursive", ops.as_str()),
                ("blkio.throttle.io_serviced", other.as_str()),
                ("blkio.throttle.io_service_bytes", other.as_str()),
            ];
            if let Some(b) = bytes {
                files.push(("blkio.throttle.io_service_bytes_recursive", b));
            }
            let (got, errors, read) = walk(&files);
            assert_eq!(got, [io(8, 0, (0, 0), (3, 4))], "{bytes:?}");
            assert!(errors.is_empty(), "{errors:?}");
            assert_eq!(
                read.last(),
                Some(&"blkio.throttle.io_service_bytes_recursive")
            );
        }
    }

    #[test]
    fn malformed_files() {
        // a truncated first file is an error and the walk goes on to the next group
        let ops = stat("8:0", 9, 1);
        let bytes = stat("8:0", 9000, 1000);
        let files = [
            ("blkio.bfq.io_serviced_recursive", "8:0 Read 4\n8:0 Wri"),
            ("blkio.throttle.io_serviced_recursive", ops.as_str()),
            ("blkio.throttle.io_service_bytes_recursive", bytes.as_str()),
        ];
        let (got, errors, _) = walk(&files);
        assert_eq!(got, [io(8, 0, (9000, 1000), (9, 1))]);
        assert_eq!(
            errors,
            ["blkio.bfq.io_serviced_recursive: line 2: expected \"major:minor op value\", found \"8:0 Wri\""]
        );

        // a malformed file in a taken group leaves the cgroup's I/O out
        let files = [
            ("blkio.throttle.io_serviced_recursive", ops.as_str()),
            (
                "blkio.throttle.io_service_bytes_recursive",
                "8:0 Read 12\n8:0 Write x\n",
            ),
            ("blkio.throttle.io_serviced", ops.as_str()),
            ("blkio.throttle.io_service_bytes", bytes.as_str()),
        ];
        let (got, errors, read) = walk(&files);
        assert!(got.is_empty(), "{got:?}");
        assert_eq!(
            errors,
            ["blkio.throttle.io_service_bytes_recursive: line 2: expected a number, found \"x\""]
        );
        assert_eq!(read.len(), 4, "the plain files are not read: {read:?}");
    }

    #[test]
    fn several_devices() {
        let ops = format!("{}{}", stat("8:0", 1, 2), stat("253:1", 3, 4));
        let bytes = format!("{}{}", stat("253:1", 30, 40), stat("8:0", 10, 20));
        let files = [
            ("blkio.throttle.io_serviced_recursive", ops.as_str()),
            ("blkio.throttle.io_service_bytes_recursive", bytes.as_str()),
        ];
        let (got, _, _) = walk(&files);
        assert_eq!(
            got,
            [io(8, 0, (10, 20), (1, 2)), io(253, 1, (30, 40), (3, 4))]
        );
    }

    mod fuzz {
        use super::*;
        use eos_testkit::fuzz::{apply, mutation, Mutation};
        use proptest::prelude::*;

        /// Every file the walk may name, in runc's order.
        fn all_files() -> Vec<&'static str> {
            ORDER.iter().flat_map(|g| [g.ops, g.bytes]).collect()
        }

        proptest! {
            #![proptest_config(eos_testkit::fuzz::config())]

            /// Whatever the files hold (a device's statistics changed the way real files go
            /// wrong, or missing), the walk reads each file at most once in runc's order,
            /// ends, and leaves either no I/O or I/O whose devices came from the files.
            #[test]
            fn fuzz_walk(
                present in proptest::collection::vec(any::<bool>(), 8),
                changes in proptest::collection::vec(mutation(), 8),
            ) {
                let names = all_files();
                let texts: Vec<Option<String>> = names
                    .iter()
                    .zip(&present)
                    .zip(&changes)
                    .map(|((_, &there), m): ((_, _), &Mutation)| {
                        there.then(|| {
                            let changed = apply(stat("8:0", 10, 20).as_bytes(), m);
                            String::from_utf8_lossy(&changed).into_owned()
                        })
                    })
                    .collect();
                let files: Vec<(&str, &str)> = names
                    .iter()
                    .zip(&texts)
                    .filter_map(|(n, t)| t.as_deref().map(|t| (*n, t)))
                    .collect();
                let (io, _errors, read) = walk(&files);
                let mut last = None;
                for name in &read {
                    let at = names.iter().position(|n| n == name);
                    prop_assert!(at.is_some() && at > last, "out of order: {read:?}");
                    last = at;
                }
                for entry in &io {
                    let dev = format!("{}:{}", entry.major, entry.minor);
                    prop_assert!(texts.iter().flatten().any(|t| t.contains(&dev)), "{dev}");
                }
            }
        }
    }
}
