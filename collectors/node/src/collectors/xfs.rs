//! `xfs`: per-filesystem XFS statistics from `<sysfs>/fs/xfs/<device>/stats/stats` as
//! `node_xfs_*_total{device}`. Hosts without XFS write nothing.

use eos_exposition::{Encoder, Kind};

use crate::collector::{list_dir, parse_u64, At, Collector, CollectorDef, Ctx};

pub(crate) const DEF: CollectorDef = CollectorDef {
    name: "xfs",
    default_enabled: true,
    build: |_, _| Ok(Box::new(XfsCollector)),
};

struct XfsCollector;

/// Lines of the stats file node_exporter exports, with how many values each must have
/// (`vnodes` has 7 on old kernels, 8 since `free` was added; only the first 7 are used).
const LINES: [(&str, usize); 7] = [
    ("extent_alloc", 4),
    ("abt", 4),
    ("blk_map", 7),
    ("bmbt", 4),
    ("dir", 4),
    ("rw", 2),
    ("vnodes", 7),
];

/// (metric suffix, help, line, index in the line), node_exporter's set and order.
const METRICS: [(&str, &str, &str, usize); 32] = [
    ("extent_allocation_extents_allocated_total", "Number of extents allocated for a filesystem.", "extent_alloc", 0),
    ("extent_allocation_blocks_allocated_total", "Number of blocks allocated for a filesystem.", "extent_alloc", 1),
    ("extent_allocation_extents_freed_total", "Number of extents freed for a filesystem.", "extent_alloc", 2),
    ("extent_allocation_blocks_freed_total", "Number of blocks freed for a filesystem.", "extent_alloc", 3),
    ("allocation_btree_lookups_total", "Number of allocation B-tree lookups for a filesystem.", "abt", 0),
    ("allocation_btree_compares_total", "Number of allocation B-tree compares for a filesystem.", "abt", 1),
    ("allocation_btree_records_inserted_total", "Number of allocation B-tree records inserted for a filesystem.", "abt", 2),
    ("allocation_btree_records_deleted_total", "Number of allocation B-tree records deleted for a filesystem.", "abt", 3),
    ("block_mapping_reads_total", "Number of block map for read operations for a filesystem.", "blk_map", 0),
    ("block_mapping_writes_total", "Number of block map for write operations for a filesystem.", "blk_map", 1),
    ("block_mapping_unmaps_total", "Number of block unmaps (deletes) for a filesystem.", "blk_map", 2),
    ("block_mapping_extent_list_insertions_total", "Number of extent list insertions for a filesystem.", "blk_map", 3),
    ("block_mapping_extent_list_deletions_total", "Number of extent list deletions for a filesystem.", "blk_map", 4),
    ("block_mapping_extent_list_lookups_total", "Number of extent list lookups for a filesystem.", "blk_map", 5),
    ("block_mapping_extent_list_compares_total", "Number of extent list compares for a filesystem.", "blk_map", 6),
    ("block_map_btree_lookups_total", "Number of block map B-tree lookups for a filesystem.", "bmbt", 0),
    ("block_map_btree_compares_total", "Number of block map B-tree compares for a filesystem.", "bmbt", 1),
    ("block_map_btree_records_inserted_total", "Number of block map B-tree records inserted for a filesystem.", "bmbt", 2),
    ("block_map_btree_records_deleted_total", "Number of block map B-tree records deleted for a filesystem.", "bmbt", 3),
    ("directory_operation_lookup_total", "Number of file name directory lookups which miss the operating systems directory name lookup cache.", "dir", 0),
    ("directory_operation_create_total", "Number of times a new directory entry was created for a filesystem.", "dir", 1),
    ("directory_operation_remove_total", "Number of times an existing directory entry was created for a filesystem.", "dir", 2),
    ("directory_operation_getdents_total", "Number of times the directory getdents operation was performed for a filesystem.", "dir", 3),
    ("read_calls_total", "Number of read(2) system calls made to files in a filesystem.", "rw", 0),
    ("write_calls_total", "Number of write(2) system calls made to files in a filesystem.", "rw", 1),
    ("vnode_active_total", "Number of vnodes not on free lists for a filesystem.", "vnodes", 0),
    ("vnode_allocate_total", "Number of times vn_alloc called for a filesystem.", "vnodes", 1),
    ("vnode_get_total", "Number of times vn_get called for a filesystem.", "vnodes", 2),
    ("vnode_hold_total", "Number of times vn_hold called for a filesystem.", "vnodes", 3),
    ("vnode_release_total", "Number of times vn_rele called for a filesystem.", "vnodes", 4),
    ("vnode_reclaim_total", "Number of times vn_reclaim called for a filesystem.", "vnodes", 5),
    ("vnode_remove_total", "Number of times vn_remove called for a filesystem.", "vnodes", 6),
];

/// The values of [`LINES`] for one filesystem (lines the file lacks stay zero).
type Stats = [[u64; 8]; LINES.len()];

impl Collector for XfsCollector {
    fn update(&self, enc: &mut Encoder<'_>, ctx: &mut Ctx<'_>) -> Result<(), String> {
        let base = ctx.sys_path("fs/xfs");
        let mut devices: Vec<(String, Stats)> = Vec::new();
        for dev in list_dir(&base)? {
            let path = base.join(&dev).join("stats/stats");
            let Some(text) = ctx.read_optional(&path)? else {
                continue; // e.g. the global /sys/fs/xfs/stats
            };
            let stats = parse_stats(text, &path.display().to_string())?;
            devices.push((dev, stats));
        }
        let mut name = String::with_capacity(64);
        for (suffix, help, line, index) in METRICS {
            let Some(l) = LINES.iter().position(|(n, _)| *n == line) else {
                continue;
            };
            name.clear();
            name.push_str("node_xfs_");
            name.push_str(suffix);
            let mut f = enc.family(&name, help, Kind::Counter);
            for (dev, stats) in &devices {
                let v = stats
                    .get(l)
                    .and_then(|vals| vals.get(index))
                    .copied()
                    .unwrap_or(0);
                f.sample(&[("device", dev)], v as f64);
            }
        }
        Ok(())
    }
}

fn parse_stats(text: &str, file: &str) -> Result<Stats, String> {
    let mut stats: Stats = [[0; 8]; LINES.len()];
    for (i, line) in text.lines().enumerate() {
        let at = At(file, i + 1);
        let mut parts = line.split_ascii_whitespace();
        let Some(key) = parts.next() else { continue };
        let Some(l) = LINES.iter().position(|(n, _)| *n == key) else {
            continue;
        };
        let (_, want) = LINES[l];
        let mut n = 0;
        for (slot, v) in stats[l].iter_mut().zip(parts.by_ref()) {
            *slot = parse_u64(v, &at)?;
            n += 1;
        }
        let extra = parts.count();
        let ok = n + extra == want || (key == "vnodes" && n + extra == want + 1);
        if !ok {
            return Err(format!(
                "{at}: {key} has {} values, expected {want}",
                n + extra
            ));
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATS: &str = "extent_alloc 92447 97589 92448 93751
abt 0 0 0 0
blk_map 1767055 188820 184891 92447 92448 2140766 0
bmbt 0 0 0 0
dir 185039 92447 92444 136422
trans 706 944304 0
ig 185045 58807 0 126238 0 33637 22
rw 107739 94045
vnodes 92601 0 0 0 92444 92444 92444 0
xpc 399724544 92823103 86219234
";

    #[test]
    fn parses() {
        let s = parse_stats(STATS, "f").unwrap();
        assert_eq!(s[0][..4], [92447, 97589, 92448, 93751]);
        assert_eq!(s[2][5], 2140766);
        assert_eq!(s[5][..2], [107739, 94045]);
        assert_eq!(s[6][4], 92444);
        // Old kernels have 7 vnode values.
        assert!(parse_stats("vnodes 1 2 3 4 5 6 7\n", "f").is_ok());
    }

    #[test]
    fn malformed() {
        assert!(parse_stats("rw 1\n", "f")
            .unwrap_err()
            .contains("expected 2"));
        assert!(parse_stats("abt 1 2 3 4 5\n", "f").is_err());
        assert!(parse_stats("dir 1 x 3 4\n", "f")
            .unwrap_err()
            .contains("line 1"));
        assert!(parse_stats("vnodes 1 2 3 4 5 6 7 8 9\n", "f").is_err());
        assert_eq!(parse_stats("", "f").unwrap(), [[0; 8]; LINES.len()]);
    }
}
