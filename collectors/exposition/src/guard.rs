//! What keeps an exposition valid whatever a collector writes: Prometheus rejects a whole
//! scrape for one bad line, so bad pieces are dropped (and counted) instead of sent.
//!
//! The [`Encoder`](crate::Encoder) checks as it writes: a family name that is not a valid
//! metric name, and a label name that is invalid or repeated in one series, are dropped and
//! counted in [`Dropped`]. It also records where each family starts ([`FamilyRecord`]), so
//! that whoever merges outputs (the agent: one per module, in one pass per scrape) can find a
//! family written twice, in one output or in two ([`duplicates`]), and cut the extra copy.
//! Checking at the merge rather than per encoder keeps one hash set per scrape, not one per
//! module output.

use std::hash::{BuildHasherDefault, Hasher};

/// Where one family starts in an output (counting bytes of shared chunks too), and its
/// name's hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FamilyRecord {
    pub hash: u64,
    pub start: usize,
}

/// Why something was not written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// A family or label name outside `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    InvalidName,
    /// One series with the same label name twice.
    DuplicateLabel,
    /// A family written a second time (in one output, or by a second source).
    DuplicateFamily,
}

impl DropReason {
    pub const ALL: [DropReason; 3] = [
        DropReason::InvalidName,
        DropReason::DuplicateLabel,
        DropReason::DuplicateFamily,
    ];

    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::InvalidName => "invalid_name",
            DropReason::DuplicateLabel => "duplicate_label",
            DropReason::DuplicateFamily => "duplicate_family",
        }
    }
}

/// What one output dropped: counts by reason (samples for names and labels, families for
/// duplicates), and the first example, for the log and the status page.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    pub counts: [u64; 3],
    pub example: Option<String>,
}

impl Dropped {
    pub(crate) fn add(&mut self, reason: DropReason, what: impl FnOnce() -> String) {
        self.counts[reason as usize] += 1;
        if self.example.is_none() {
            self.example = Some(format!("{}: {}", reason.as_str(), what()));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|&c| c == 0)
    }
}

/// FNV-1a of a family name: cheap, and collisions among a few thousand names are not a
/// practical concern.
pub fn name_hash(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A hasher for keys that are already hashes.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Whether a label's name may be written in a series that already has `earlier` labels.
pub(crate) fn label_problem<'l>(
    name: &str,
    earlier: impl Iterator<Item = &'l str>,
) -> Option<DropReason> {
    if !crate::is_valid_name(name) {
        return Some(DropReason::InvalidName);
    }
    let mut earlier = earlier;
    earlier
        .any(|e| e == name)
        .then_some(DropReason::DuplicateLabel)
}

/// Given the family records of several outputs in order, the families to cut: (output
/// index, record index) of every later copy of a family in the same output, and of every
/// family whose name an output that `wins` over it also wrote. `wins(h, a, b)` says whether
/// output `a` keeps a name that outputs `a` and `b` both wrote (e.g. the module whose metric
/// prefix owns the name); without a preference the earlier output keeps it.
pub fn duplicates(
    outputs: &[&[FamilyRecord]],
    wins: &dyn Fn(u64, usize, usize) -> Option<bool>,
) -> Vec<(usize, usize)> {
    let total: usize = outputs.iter().map(|r| r.len()).sum();
    let mut first: std::collections::HashMap<u64, usize, BuildHasherDefault<IdHasher>> =
        std::collections::HashMap::with_capacity_and_hasher(total, Default::default());
    let mut cut = Vec::new();
    for (o, records) in outputs.iter().enumerate() {
        for (r, rec) in records.iter().enumerate() {
            match first.get(&rec.hash).copied() {
                None => {
                    first.insert(rec.hash, o);
                }
                Some(holder) if holder == o => cut.push((o, r)),
                Some(holder) => {
                    if wins(rec.hash, o, holder) == Some(true) {
                        // The newcomer keeps the name: cut the holder's copy.
                        if let Some(hr) = outputs[holder].iter().position(|x| x.hash == rec.hash) {
                            cut.push((holder, hr));
                        }
                        first.insert(rec.hash, o);
                    } else {
                        cut.push((o, r));
                    }
                }
            }
        }
    }
    cut.sort_unstable();
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(name: &str, start: usize) -> FamilyRecord {
        FamilyRecord {
            hash: name_hash(name),
            start,
        }
    }

    #[test]
    fn later_copies_lose_unless_the_owner_comes_later() {
        let node = [rec("node_load1", 0), rec("container_x", 10)];
        let containers = [rec("container_x", 0), rec("machine_y", 5)];
        let agent = [rec("eos_agent_build_info", 0), rec("node_load1", 7)];
        let owner_is = |out: usize| {
            move |h: u64| {
                (h == name_hash("container_x") && out == 1)
                    || (h == name_hash("node_load1") && out == 0)
            }
        };
        let wins = |h: u64, newcomer: usize, holder: usize| -> Option<bool> {
            match (owner_is(newcomer)(h), owner_is(holder)(h)) {
                (true, false) => Some(true),
                (false, true) => Some(false),
                _ => None,
            }
        };
        let cut = duplicates(&[&node, &containers, &agent], &wins);
        // node's container_x goes (containers owns it); agent's node_load1 goes.
        assert_eq!(cut, vec![(0, 1), (2, 1)]);
        // A family twice in one output: the later copy goes.
        let twice = [rec("a", 0), rec("b", 5), rec("a", 9)];
        assert_eq!(duplicates(&[&twice], &|_, _, _| None), vec![(0, 2)]);
    }

    #[test]
    fn labels() {
        assert_eq!(label_problem("pod", ["a", "b"].into_iter()), None);
        assert_eq!(
            label_problem("pod", ["a", "pod"].into_iter()),
            Some(DropReason::DuplicateLabel)
        );
        assert_eq!(
            label_problem("app.kubernetes.io/name", [].into_iter()),
            Some(DropReason::InvalidName)
        );
    }
}
