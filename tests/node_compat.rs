//! The node module side by side with the real node_exporter (Debian's 1.5) on this machine.
//!
//! The agent runs with only the node module, on its defaults. node_exporter runs with
//! `--collector.disable-defaults` and exactly the collectors the agent enabled (those it knows:
//! 1.5 predates e.g. `watchdog`). Then, for every `node_*` family both export:
//!
//! - the type and the label names must be the same;
//! - the series (label values) must be the same, so a filesystem, device or CPU is neither
//!   missing nor extra;
//! - each value must be within the family's tolerance ([`tolerance`]). node_exporter is scraped
//!   just before and just after the agent, so a counter or a slowly moving gauge must lie
//!   between the two readings (plus the tolerance); static values (memory totals, uname,
//!   filesystem sizes) have none.
//!
//! A family node_exporter exports that the agent does not fails the test: with the same
//! collectors, it belongs to a collector in the node module's default set. The families of
//! node_exporter's other default collectors (not in our set) are only printed.
//!
//! The node module follows node_exporter 1.12.1, not Debian's 1.5, so some families and
//! labels differ from 1.5 on purpose. Each such difference is listed in [`DELIBERATE`] with
//! the 1.12 change behind it, and each is checked both ways: the difference must really be
//! there (a listed label present in the agent's series and absent from 1.5's, a listed new
//! family absent from 1.5, a listed dropped family exported by 1.5 only), so the list cannot
//! rot, and everything not listed is compared as before.
//!
//! Last, `promtool check metrics` must accept the agent's whole output; the only lint problems
//! accepted are those promtool also reports for node_exporter's own output (its camelCase
//! `node_memory_MemTotal_bytes`, `node_netstat_Tcp_InSegs`, and `_bits` units), since keeping
//! node_exporter's names is the point.

use eos_exposition::parse_text;
use eos_tests::{
    known_collectors, promtool_check_metrics, single_module_config, Agent, NodeExporter, TempDir,
};
use std::collections::{BTreeMap, BTreeSet};

/// A series: sample name and sorted labels.
type Key = (String, Vec<(String, String)>);

/// One family of an exposition.
#[derive(Debug, Default)]
struct Family {
    kind: String,
    series: BTreeMap<Key, f64>,
}

/// Groups an exposition's samples into families (histogram/summary parts under their base).
fn families(text: &str, who: &str) -> BTreeMap<String, Family> {
    let parsed = parse_text(text).unwrap_or_else(|e| panic!("parsing {who}'s output: {e}"));
    let mut out: BTreeMap<String, Family> = BTreeMap::new();
    for s in parsed.samples {
        let fam = family_of(&s.name, &parsed.types);
        let f = out.entry(fam.clone()).or_default();
        f.kind = parsed
            .types
            .get(&fam)
            .cloned()
            .unwrap_or_else(|| "untyped".into());
        let labels = s.labels.into_iter().collect();
        f.series.insert((s.name, labels), s.value);
    }
    out
}

fn family_of(name: &str, types: &BTreeMap<String, String>) -> String {
    if types.contains_key(name) {
        return name.to_string();
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.contains_key(base) {
                return base.to_string();
            }
        }
    }
    name.to_string()
}

/// How close the agent's value must be to node_exporter's two readings.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Tol {
    /// Not compared (the value is about the exporter itself, not the host).
    Skip,
    /// Within [min - slack, max + slack], slack = abs + rel * |max|.
    Near { abs: f64, rel: f64 },
}

/// Per-family tolerance. Exact unless listed; each entry says why the value may move.
fn tolerance(family: &str) -> Tol {
    const MIB: f64 = 1024.0 * 1024.0;
    let near = |abs, rel| Tol::Near { abs, rel };
    match family {
        // How long each exporter took: a property of the exporter.
        "node_scrape_collector_duration_seconds" => Tol::Skip,
        // node_exporter 1.5 reports failure for absent subsystems (no /sys/class/nvme, ...)
        // where the agent, like later node_exporters, writes nothing and succeeds; checked
        // separately in `scrape_success`.
        "node_scrape_collector_success" => Tol::Skip,
        // Version, revision and Go version of each exporter.
        "node_exporter_build_info" => Tol::Skip,
        // Load averages move with the builds sharing this machine.
        "node_load1" | "node_load5" | "node_load15" => near(0.5, 0.05),
        // Runnable/blocked tasks: a snapshot of the scheduler.
        "node_procs_running" | "node_procs_blocked" => near(8.0, 0.0),
        // The wall clock, read a few milliseconds apart.
        "node_time_seconds" => near(1.0, 0.0),
        // The entropy pool refills and drains continuously on older kernels.
        "node_entropy_available_bits" => near(256.0, 0.0),
        // Open file handles change as processes (our own HTTP connections too) come and go.
        "node_filefd_allocated" => near(512.0, 0.0),
        // Conntrack and ARP tables change with traffic.
        "node_nf_conntrack_entries" | "node_arp_entries" => near(32.0, 0.0),
        // UDP queues: bytes waiting right now.
        "node_udp_queues" => near(64.0 * 1024.0, 0.0),
        // Temperatures.
        f if f.starts_with("node_hwmon_temp") || f == "node_thermal_zone_temp" => near(5.0, 0.0),
        // Kernel clock discipline: offset, error estimates and frequency are adjusted live.
        f if f.starts_with("node_timex_") => near(1.0, 0.01),
        // Socket counts and buffer memory include the test's own HTTP connections.
        f if f.starts_with("node_sockstat_") && f.ends_with("_mem_bytes") => near(MIB, 0.0),
        f if f.starts_with("node_sockstat_") => near(64.0, 0.0),
        // Established TCP connections right now.
        "node_netstat_Tcp_CurrEstab" => near(16.0, 0.0),
        // Free/used memory moves with the processes on the machine (builds run alongside);
        // sizes fixed at boot (MemTotal, SwapTotal, hugepage size, ...) must still be equal.
        f if f.starts_with("node_memory_") && !memory_is_static(f) => near(256.0 * MIB, 0.05),
        // Free space and inodes on filesystems that builds write to.
        "node_filesystem_free_bytes" | "node_filesystem_avail_bytes" => near(1024.0 * MIB, 0.0),
        "node_filesystem_files_free" => near(100_000.0, 0.0),
        // Disk I/O in progress right now.
        "node_disk_io_now" => near(64.0, 0.0),
        // CPU frequency scales with load.
        f if f.starts_with("node_cpu_scaling_frequency") || f == "node_cpu_frequency_hertz" => {
            near(0.0, 0.5)
        }
        _ => near(0.0, 1e-12),
    }
}

/// `/proc/meminfo` fields that do not change while the machine runs.
fn memory_is_static(family: &str) -> bool {
    matches!(
        family,
        "node_memory_MemTotal_bytes"
            | "node_memory_SwapTotal_bytes"
            | "node_memory_VmallocTotal_bytes"
            | "node_memory_Hugepagesize_bytes"
            | "node_memory_HugePages_Total"
            | "node_memory_CmaTotal_bytes"
            | "node_memory_DirectMap1G_bytes"
    )
}

/// Whether `ours` is within `tol` of node_exporter's readings before and after it.
fn within(ours: f64, before: f64, after: f64, tol: Tol) -> bool {
    match tol {
        Tol::Skip => true,
        Tol::Near { abs, rel } => {
            if ours.is_nan() || before.is_nan() || after.is_nan() {
                return ours.is_nan() && (before.is_nan() || after.is_nan());
            }
            let (lo, hi) = (before.min(after), before.max(after));
            let slack = abs + rel * lo.abs().max(hi.abs());
            ours >= lo - slack && ours <= hi + slack
        }
    }
}

/// How the agent departs on purpose from Debian's node_exporter 1.5, following 1.12.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Change {
    /// The family carries this label in 1.12 (and in the agent), not in 1.5.
    LabelAdded(&'static str),
    /// The family is new since 1.5.
    FamilyAdded,
    /// 1.5 exports the family; 1.12 (and the agent) no longer do.
    FamilyDropped,
    /// A default filter of 1.12 leaves out the series whose `device` label starts with this,
    /// which 1.5 reports; the entry's `family` is a prefix of the families concerned.
    DevicesExcluded(&'static str),
    /// A default filter of 1.12 leaves out the series whose `fstype` label is this, which 1.5
    /// reports; the entry's `family` is a prefix of the families concerned.
    FsTypeExcluded(&'static str),
}

/// One deliberate difference from 1.5.
struct Deliberate {
    family: &'static str,
    change: Change,
    /// The node_exporter release that made the change.
    since: &'static str,
    /// What changed upstream.
    why: &'static str,
    /// Whether every Linux host shows it (then its absence fails the test); otherwise it
    /// depends on hardware or kernel features this machine may lack.
    on_every_host: bool,
}

const fn deliberate(
    family: &'static str,
    change: Change,
    since: &'static str,
    why: &'static str,
    on_every_host: bool,
) -> Deliberate {
    Deliberate {
        family,
        change,
        since,
        why,
        on_every_host,
    }
}

/// Where the node module (following node_exporter 1.12.1) differs from Debian's 1.5.
const DELIBERATE: &[Deliberate] = &[
    deliberate(
        "node_exporter_build_info",
        Change::LabelAdded("tags"),
        "1.7",
        "build tags in the build info",
        true,
    ),
    deliberate(
        "node_network_info",
        Change::LabelAdded("adminstate"),
        "1.6",
        "administrative state (IFF_UP) of the interface",
        true,
    ),
    deliberate(
        "node_disk_info",
        Change::LabelAdded("rotational"),
        "1.9",
        "whether the block device rotates (queue/rotational)",
        false,
    ),
    deliberate(
        "node_softnet_cpu_collision_total",
        Change::FamilyAdded,
        "1.6",
        "more /proc/net/softnet_stat columns",
        true,
    ),
    deliberate(
        "node_softnet_received_rps_total",
        Change::FamilyAdded,
        "1.6",
        "more /proc/net/softnet_stat columns",
        true,
    ),
    deliberate(
        "node_softnet_flow_limit_count_total",
        Change::FamilyAdded,
        "1.6",
        "more /proc/net/softnet_stat columns",
        true,
    ),
    deliberate(
        "node_softnet_backlog_len",
        Change::FamilyAdded,
        "1.6",
        "more /proc/net/softnet_stat columns (kernel 5.14+)",
        false,
    ),
    deliberate(
        "node_cpu_scaling_governor",
        Change::FamilyAdded,
        "1.6",
        "cpufreq governors",
        false,
    ),
    deliberate(
        "node_os_support_end_timestamp_seconds",
        Change::FamilyAdded,
        "1.8",
        "SUPPORT_END of os-release",
        false,
    ),
    deliberate(
        "node_netstat_TcpExt_TCPOFOQueue",
        Change::FamilyAdded,
        "1.8",
        "in the default --collector.netstat.fields",
        true,
    ),
    deliberate(
        "node_netstat_TcpExt_TCPRcvQDrop",
        Change::FamilyAdded,
        "1.9",
        "in the default --collector.netstat.fields",
        true,
    ),
    deliberate(
        "node_disk_",
        Change::DevicesExcluded("zram"),
        "1.8",
        "zram devices in the default --collector.diskstats.device-exclude",
        false,
    ),
    deliberate(
        "node_pressure_irq_stalled_seconds_total",
        Change::FamilyAdded,
        "1.9",
        "IRQ pressure (kernel 6.1+ with PSI)",
        false,
    ),
    deliberate(
        "node_md_raid_disks",
        Change::FamilyAdded,
        "1.10",
        "mdadm reads /sys/block/md*/md",
        false,
    ),
    deliberate(
        "node_md_degraded",
        Change::FamilyAdded,
        "1.10",
        "mdadm reads /sys/block/md*/md",
        false,
    ),
    deliberate(
        "node_edac_channel_correctable_errors_total",
        Change::FamilyAdded,
        "1.12",
        "per-channel EDAC counters with DIMM labels",
        false,
    ),
    deliberate(
        "node_edac_channel_uncorrectable_errors_total",
        Change::FamilyAdded,
        "1.12",
        "per-channel EDAC counters with DIMM labels",
        false,
    ),
    deliberate(
        "node_cpu_frequency_avg_hertz",
        Change::FamilyAdded,
        "1.12",
        "cpufreq's cpuinfo_avg_freq",
        false,
    ),
    deliberate(
        "node_nvme_info",
        Change::LabelAdded("cntlid"),
        "1.11",
        "the NVMe controller ID (cntlid)",
        false,
    ),
    deliberate(
        "node_nvme_namespace_info",
        Change::FamilyAdded,
        "1.11",
        "NVMe namespaces (with native multipath)",
        false,
    ),
    deliberate(
        "node_nvme_namespace_capacity_bytes",
        Change::FamilyAdded,
        "1.11",
        "NVMe namespaces (with native multipath)",
        false,
    ),
    deliberate(
        "node_nvme_namespace_size_bytes",
        Change::FamilyAdded,
        "1.11",
        "NVMe namespaces (with native multipath)",
        false,
    ),
    deliberate(
        "node_nvme_namespace_used_bytes",
        Change::FamilyAdded,
        "1.11",
        "NVMe namespaces (with native multipath)",
        false,
    ),
    deliberate(
        "node_nvme_namespace_logical_block_size_bytes",
        Change::FamilyAdded,
        "1.11",
        "NVMe namespaces (with native multipath)",
        false,
    ),
    // filesystem: why statfs failed, on every family but mount_info (1.8, #2923).
    deliberate(
        "node_filesystem_size_bytes",
        Change::LabelAdded("device_error"),
        "1.8",
        "device_error: why statfs failed, empty when it did not",
        true,
    ),
    deliberate(
        "node_filesystem_free_bytes",
        Change::LabelAdded("device_error"),
        "1.8",
        "device_error: why statfs failed, empty when it did not",
        true,
    ),
    deliberate(
        "node_filesystem_avail_bytes",
        Change::LabelAdded("device_error"),
        "1.8",
        "device_error: why statfs failed, empty when it did not",
        true,
    ),
    deliberate(
        "node_filesystem_files",
        Change::LabelAdded("device_error"),
        "1.8",
        "device_error: why statfs failed, empty when it did not",
        true,
    ),
    deliberate(
        "node_filesystem_files_free",
        Change::LabelAdded("device_error"),
        "1.8",
        "device_error: why statfs failed, empty when it did not",
        true,
    ),
    deliberate(
        "node_filesystem_device_error",
        Change::LabelAdded("device_error"),
        "1.8",
        "device_error: why statfs failed, empty when it did not",
        true,
    ),
    deliberate(
        "node_filesystem_readonly",
        Change::LabelAdded("device_error"),
        "1.8",
        "device_error: why statfs failed, empty when it did not",
        true,
    ),
    deliberate(
        "node_filesystem_mount_info",
        Change::FamilyAdded,
        "1.9",
        "device numbers of each measured mount (mountinfo)",
        true,
    ),
    deliberate(
        "node_filesystem_",
        Change::FsTypeExcluded("erofs"),
        "1.10",
        "erofs in the default --collector.filesystem.fs-types-exclude",
        false,
    ),
    deliberate(
        "node_cpu_online",
        Change::FamilyAdded,
        "1.9",
        "cpuN/online, only where cpu0 has the file (not x86)",
        false,
    ),
    // meminfo goes through procfs's Meminfo since 1.9, which knows a fixed set of fields.
    deliberate(
        "node_memory_KReclaimable_bytes",
        Change::FamilyDropped,
        "1.9",
        "meminfo exports procfs's fixed field set",
        false,
    ),
    deliberate(
        "node_memory_SecPageTables_bytes",
        Change::FamilyDropped,
        "1.9",
        "meminfo exports procfs's fixed field set",
        false,
    ),
    deliberate(
        "node_memory_FileHugePages_bytes",
        Change::FamilyDropped,
        "1.9",
        "meminfo exports procfs's fixed field set",
        false,
    ),
    deliberate(
        "node_memory_FilePmdMapped_bytes",
        Change::FamilyDropped,
        "1.9",
        "meminfo exports procfs's fixed field set",
        false,
    ),
    deliberate(
        "node_memory_Balloon_bytes",
        Change::FamilyDropped,
        "1.9",
        "meminfo exports procfs's fixed field set",
        false,
    ),
    deliberate(
        "node_memory_Hugetlb_bytes",
        Change::FamilyDropped,
        "1.9",
        "meminfo exports procfs's fixed field set",
        false,
    ),
    deliberate(
        "node_memory_Unaccepted_bytes",
        Change::FamilyDropped,
        "1.9",
        "meminfo exports procfs's fixed field set",
        false,
    ),
];

/// The labels [`DELIBERATE`] adds to a family.
fn added_labels(family: &str) -> Vec<&'static str> {
    DELIBERATE
        .iter()
        .filter(|d| d.family == family)
        .filter_map(|d| match d.change {
            Change::LabelAdded(l) => Some(l),
            _ => None,
        })
        .collect()
}

/// Whether a default filter of 1.12 leaves out this series of `family` ([`DELIBERATE`]).
fn excluded_series(family: &str, key: &Key) -> bool {
    DELIBERATE.iter().any(|d| match d.change {
        Change::DevicesExcluded(prefix) => {
            family.starts_with(d.family)
                && key
                    .1
                    .iter()
                    .any(|(k, v)| k == "device" && v.starts_with(prefix))
        }
        Change::FsTypeExcluded(fs_type) => {
            family.starts_with(d.family) && key.1.iter().any(|(k, v)| k == "fstype" && v == fs_type)
        }
        _ => false,
    })
}

/// Whether [`DELIBERATE`] lists `family` with `change`.
fn listed(family: &str, change: Change) -> bool {
    DELIBERATE
        .iter()
        .any(|d| d.family == family && d.change == change)
}

/// Checks each [`DELIBERATE`] entry against the two outputs: one problem line per entry whose
/// difference is not there, and one status line per entry for the test's output.
fn check_deliberate(
    ours: &BTreeMap<String, Family>,
    theirs: &BTreeMap<String, Family>,
) -> (Vec<String>, Vec<String>) {
    let mut problems = Vec::new();
    let mut status = Vec::new();
    for d in DELIBERATE {
        let (mine, old) = (ours.get(d.family), theirs.get(d.family));
        let seen = match d.change {
            Change::LabelAdded(label) => match (mine, old) {
                (Some(m), Some(o)) => {
                    let has = |f: &Family| {
                        f.series
                            .keys()
                            .any(|(_, l)| l.iter().any(|(k, _)| k == label))
                    };
                    let all = m
                        .series
                        .keys()
                        .all(|(_, l)| l.iter().any(|(k, _)| k == label));
                    if !all {
                        problems.push(format!(
                            "{}: listed as gaining the label {label} in {}, but not every series here has it",
                            d.family, d.since
                        ));
                    }
                    if has(o) {
                        problems.push(format!(
                            "{}: listed as gaining the label {label} in {}, but node_exporter 1.5 has it too",
                            d.family, d.since
                        ));
                    }
                    true
                }
                _ => false,
            },
            Change::FamilyAdded => {
                if old.is_some() {
                    problems.push(format!(
                        "{}: listed as new in {}, but node_exporter 1.5 exports it",
                        d.family, d.since
                    ));
                }
                mine.is_some()
            }
            Change::DevicesExcluded(prefix) => {
                let excluded = |fams: &BTreeMap<String, Family>| {
                    fams.iter().any(|(name, f)| {
                        name.starts_with(d.family)
                            && f.series.keys().any(|k| excluded_series(name, k))
                    })
                };
                if excluded(ours) {
                    problems.push(format!(
                        "{}*: listed as leaving out devices {prefix}* since {}, but the agent \
                         reports some",
                        d.family, d.since
                    ));
                }
                excluded(theirs)
            }
            Change::FsTypeExcluded(fs_type) => {
                let excluded = |fams: &BTreeMap<String, Family>| {
                    fams.iter().any(|(name, f)| {
                        name.starts_with(d.family)
                            && f.series.keys().any(|k| excluded_series(name, k))
                    })
                };
                if excluded(ours) {
                    problems.push(format!(
                        "{}*: listed as leaving out {fs_type} filesystems since {}, but the \
                         agent reports some",
                        d.family, d.since
                    ));
                }
                excluded(theirs)
            }
            Change::FamilyDropped => {
                if mine.is_some() {
                    problems.push(format!(
                        "{}: listed as dropped in {}, but the agent exports it",
                        d.family, d.since
                    ));
                }
                old.is_some()
            }
        };
        if !seen && d.on_every_host {
            problems.push(format!(
                "{}: listed as a {} difference that every host shows ({:?}), but it is not here",
                d.family, d.since, d.change
            ));
        }
        status.push(format!(
            "  {} {:?} ({}: {}): {}",
            d.family,
            d.change,
            d.since,
            d.why,
            if seen {
                "checked"
            } else {
                "not exercised on this host"
            }
        ));
    }
    (problems, status)
}

/// `f` with the labels `drop` removed from its series.
fn without_labels(f: &Family, drop: &[&str]) -> Family {
    Family {
        kind: f.kind.clone(),
        series: f
            .series
            .iter()
            .map(|((name, labels), v)| {
                let labels = labels
                    .iter()
                    .filter(|(k, _)| !drop.contains(&k.as_str()))
                    .cloned()
                    .collect();
                ((name.clone(), labels), *v)
            })
            .collect(),
    }
}

/// The label-name sets used across a family's series, without `ignore`.
fn label_names(f: &Family, ignore: &[&str]) -> BTreeSet<Vec<String>> {
    f.series
        .keys()
        .map(|(_, l)| {
            l.iter()
                .map(|(k, _)| k.clone())
                .filter(|k| !ignore.contains(&k.as_str()))
                .collect()
        })
        .collect()
}

fn show(key: &Key) -> String {
    let labels: Vec<String> = key.1.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{}{{{}}}", key.0, labels.join(","))
}

/// What [`compare`] found: differences, one line each, and how much was compared.
#[derive(Debug, Default)]
struct Findings {
    problems: Vec<String>,
    families: usize,
    values: usize,
}

/// Differences between our families and node_exporter's two readings.
fn compare(
    ours: &BTreeMap<String, Family>,
    before: &BTreeMap<String, Family>,
    after: &BTreeMap<String, Family>,
) -> Findings {
    let mut found = Findings::default();
    let problems = &mut found.problems;
    for (name, theirs) in before.iter().filter(|(n, _)| n.starts_with("node_")) {
        let Some(mine) = ours.get(name) else {
            if !listed(name, Change::FamilyDropped) {
                problems.push(format!(
                    "{name}: node_exporter exports it, the agent does not"
                ));
            }
            continue;
        };
        let extra = added_labels(name);
        let mine = &without_labels(mine, &extra);
        found.families += 1;
        if mine.kind != theirs.kind {
            problems.push(format!(
                "{name}: type {} here, {} in node_exporter",
                mine.kind, theirs.kind
            ));
        }
        let (ln_mine, ln_theirs) = (label_names(mine, &[]), label_names(theirs, &[]));
        if ln_mine != ln_theirs {
            problems.push(format!(
                "{name}: label names {ln_mine:?} here, {ln_theirs:?} in node_exporter"
            ));
        }
        let tol = tolerance(name);
        if tol == Tol::Skip {
            continue;
        }
        // A series that came or went between node_exporter's two readings (another process
        // mounting something, a veth appearing) may be on either side of ours.
        let in_after = |key: &Key| after.get(name).is_some_and(|f| f.series.contains_key(key));
        for (key, &b) in &theirs.series {
            let Some(&o) = mine.series.get(key) else {
                if in_after(key) && !excluded_series(name, key) {
                    problems.push(format!("{}: missing here", show(key)));
                }
                continue;
            };
            let a = after
                .get(name)
                .and_then(|f| f.series.get(key))
                .copied()
                .unwrap_or(b);
            found.values += 1;
            if !within(o, b, a, tol) {
                problems.push(format!(
                    "{}: {o} here, node_exporter {b} before and {a} after ({tol:?})",
                    show(key)
                ));
            }
        }
        for key in mine
            .series
            .keys()
            .filter(|k| !theirs.series.contains_key(k) && !in_after(k))
        {
            problems.push(format!("{}: extra here", show(key)));
        }
    }
    found
}

/// `node_scrape_collector_success{collector} = 1` where node_exporter's is 1 too.
fn scrape_success(
    ours: &BTreeMap<String, Family>,
    theirs: &BTreeMap<String, Family>,
) -> Vec<String> {
    let success = |f: &BTreeMap<String, Family>| -> BTreeMap<String, f64> {
        f.get("node_scrape_collector_success")
            .map(|fam| {
                fam.series
                    .iter()
                    .filter_map(|((_, l), v)| {
                        l.iter()
                            .find(|(k, _)| k == "collector")
                            .map(|(_, c)| (c.clone(), *v))
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let (mine, theirs) = (success(ours), success(theirs));
    theirs
        .iter()
        .filter(|(c, &v)| v == 1.0 && mine.get(*c) != Some(&1.0))
        .map(|(c, _)| format!("collector {c}: node_exporter succeeds, the agent does not"))
        .collect()
}

fn enabled_collectors(ours: &BTreeMap<String, Family>) -> Vec<String> {
    ours.get("node_scrape_collector_success")
        .map(|f| {
            f.series
                .keys()
                .filter_map(|(_, l)| l.iter().find(|(k, _)| k == "collector"))
                .map(|(_, c)| c.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// `<metric> <problem>` lines from promtool; the metric is the first word.
fn lint_metric(line: &str) -> &str {
    line.split_whitespace().next().unwrap_or("")
}

/// The problem of a promtool line, without the metric.
fn lint_kind(line: &str) -> &str {
    line.trim_start()
        .split_once(char::is_whitespace)
        .map_or("", |(_, rest)| rest.trim_start())
}

#[test]
fn node_module_matches_node_exporter() {
    let dir = TempDir::new("node-compat");
    let cfg = dir.join("agent.yaml");
    std::fs::write(&cfg, single_module_config("node", dir.path())).expect("writing agent.yaml");
    let agent = Agent::start(&["--config", cfg.to_str().expect("utf-8 path")]);

    let first = families(&agent.metrics(), "the agent");
    let ours_default = enabled_collectors(&first);
    assert!(
        !ours_default.is_empty(),
        "the agent exports no node_scrape_collector_success: is the node module running?"
    );
    let known = known_collectors().unwrap_or_else(|e| panic!("{e}"));
    let (common, only_ours): (Vec<String>, Vec<String>) = ours_default
        .iter()
        .cloned()
        .partition(|c| known.contains(c));
    println!("node module default collectors: {}", ours_default.join(" "));
    println!(
        "not in node_exporter 1.5, so not compared: {}",
        if only_ours.is_empty() {
            "(none)".to_string()
        } else {
            only_ours.join(" ")
        }
    );

    let mut args = vec!["--collector.disable-defaults".to_string()];
    args.extend(common.iter().map(|c| format!("--collector.{c}")));
    let same = NodeExporter::start(&args);
    let stock = NodeExporter::start(&[]);

    // One scrape each first: rate-based state and lazily opened files settle.
    let _ = (same.metrics(), agent.metrics());
    let before_text = same.metrics();
    let ours_text = agent.metrics();
    let after_text = same.metrics();
    let before = families(&before_text, "node_exporter");
    let ours = families(&ours_text, "the agent");
    let after = families(&after_text, "node_exporter");

    let found = compare(&ours, &before, &after);
    println!(
        "compared {} node_* families, {} values",
        found.families, found.values
    );
    let mut problems = found.problems;
    problems.extend(scrape_success(&ours, &before));
    let (deliberate_problems, deliberate_status) = check_deliberate(&ours, &before);
    problems.extend(deliberate_problems);
    println!("deliberate differences from node_exporter 1.5 (node_exporter 1.12 behaviour):");
    for line in &deliberate_status {
        println!("{line}");
    }

    let stock_text = stock.metrics();
    let stock_fams = families(&stock_text, "node_exporter (defaults)");
    let lacking: Vec<String> = enabled_collectors(&stock_fams)
        .into_iter()
        .filter(|c| !ours_default.contains(c))
        .collect();
    println!(
        "stock node_exporter collectors not in the node module's default set: {}",
        lacking.join(" ")
    );
    let not_ours: Vec<&String> = stock_fams
        .keys()
        .filter(|n| {
            n.starts_with("node_") && !ours.contains_key(*n) && !listed(n, Change::FamilyDropped)
        })
        .collect();
    println!(
        "families stock node_exporter exports and the agent does not ({}; from collectors \
         outside the node module's default set):",
        not_ours.len()
    );
    for n in &not_ours {
        println!("  {n}");
    }
    let mine_only: Vec<&String> = ours
        .keys()
        .filter(|n| {
            n.starts_with("node_") && !before.contains_key(*n) && !listed(n, Change::FamilyAdded)
        })
        .collect();
    println!(
        "node_* families only the agent exports, not listed as deliberate (from collectors \
         1.5 lacks) ({}): {mine_only:?}",
        mine_only.len()
    );

    // promtool: parse errors fail; lint findings only where node_exporter has the same one.
    let lint = promtool_check_metrics(&ours_text);
    let theirs_lint: BTreeSet<String> = promtool_check_metrics(&stock_text)
        .problems
        .into_iter()
        .collect();
    if lint.code != 0 && lint.code != 3 {
        problems.push(format!(
            "promtool check metrics failed (exit {}): {:?}",
            lint.code, lint.problems
        ));
    } else {
        // A family new since 1.5 cannot have a finding in 1.5's output; it is accepted when
        // 1.5 has the same finding for another family (the netstat counters' camelCase).
        let theirs_kinds: BTreeSet<&str> = theirs_lint.iter().map(|p| lint_kind(p)).collect();
        let accepted = |p: &String| {
            theirs_lint.contains(p)
                || (listed(lint_metric(p), Change::FamilyAdded)
                    && theirs_kinds.contains(lint_kind(p)))
        };
        for p in lint.problems.iter().filter(|p| !accepted(p)) {
            problems.push(format!(
                "promtool: {p} (node_exporter does not trigger this for {})",
                lint_metric(p)
            ));
        }
    }

    assert!(
        problems.is_empty(),
        "{} differences from node_exporter:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn helpers() {
    let text = "# TYPE a counter\na 1\n# TYPE h histogram\n\
                h_bucket{le=\"1\"} 1\nh_sum 2\nh_count 1\nu{x=\"1\"} 3\n";
    let types: BTreeMap<String, String> = [("h", "histogram"), ("g", "gauge")]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(family_of("h_bucket", &types), "h");
    assert_eq!(family_of("g", &types), "g");
    assert_eq!(family_of("g_count", &types), "g");
    assert_eq!(family_of("x_count", &types), "x_count");
    let fams = families(text, "fixture");
    assert_eq!(fams["h"].kind, "histogram");
    assert_eq!(fams["h"].series.len(), 3);
    assert_eq!(fams["u"].kind, "untyped");

    let exact = tolerance("node_memory_MemTotal_bytes");
    assert!(within(5.0, 5.0, 5.0, exact));
    assert!(!within(5.0 + 1e-6, 5.0, 5.0, exact));
    let counter = tolerance("node_context_switches_total");
    assert!(within(15.0, 10.0, 20.0, counter));
    assert!(!within(21.0, 10.0, 20.0, counter));
    assert!(!within(9.0, 10.0, 20.0, counter));
    assert!(within(1.4, 1.0, 1.0, tolerance("node_load1")));
    assert!(!within(f64::NAN, 1.0, 1.0, counter));
    assert!(within(f64::NAN, f64::NAN, f64::NAN, counter));
    assert!(within(123.0, 1.0, 1.0, Tol::Skip));

    // Deliberate differences: a listed added label is compared away, and the check fails
    // when the difference is not there.
    let ours = families(
        "# TYPE node_network_info gauge\nnode_network_info{adminstate=\"up\",device=\"lo\"} 1\n",
        "agent",
    );
    let old = families(
        "# TYPE node_network_info gauge\nnode_network_info{device=\"lo\"} 1\n",
        "1.5",
    );
    assert!(compare(&ours, &old, &old).problems.is_empty());
    let (problems, _) = check_deliberate(&ours, &old);
    assert!(
        !problems.iter().any(|p| p.starts_with("node_network_info")),
        "{problems:?}"
    );
    let (problems, _) = check_deliberate(&old, &old);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("node_network_info: listed as gaining the label adminstate")),
        "{problems:?}"
    );
    assert_eq!(
        lint_kind("node_netstat_Tcp_InSegs metric names should be in 'snake_case'"),
        "metric names should be in 'snake_case'"
    );
    let zram: Key = (
        "node_disk_io_now".into(),
        vec![("device".into(), "zram0".into())],
    );
    assert!(excluded_series("node_disk_io_now", &zram));
    assert!(!excluded_series("node_network_up", &zram));
    let fs = |fstype: &str| -> Key {
        (
            "node_filesystem_size_bytes".into(),
            vec![("fstype".into(), fstype.into())],
        )
    };
    assert!(excluded_series("node_filesystem_size_bytes", &fs("erofs")));
    assert!(!excluded_series("node_filesystem_size_bytes", &fs("ext4")));
    assert!(!excluded_series("node_disk_io_now", &fs("erofs")));
    let dropped = families(
        "# TYPE node_memory_KReclaimable_bytes gauge\nnode_memory_KReclaimable_bytes 1\n",
        "1.5",
    );
    assert!(compare(&ours, &dropped, &dropped).problems.is_empty());
    let (problems, _) = check_deliberate(&dropped, &old);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("node_memory_KReclaimable_bytes: listed as dropped")),
        "{problems:?}"
    );
}

/// The families of `--collector.cpu.info` and its flag and bug filters.
const CPU_INFO_FAMILIES: [&str; 4] = [
    "node_cpu_info",
    "node_cpu_flag_info",
    "node_cpu_bug_info",
    "node_cpu_frequency_hertz",
];

/// `--collector.cpu.info` with `-flags-include` and `-bugs-include`, which the default run
/// leaves off, against node_exporter 1.5 given the same flags: `node_cpu_info` and the first
/// CPU's filtered flags and bugs must be the same; `node_cpu_frequency_hertz` (from `cpu MHz`,
/// 1.9+) is the agent's only, one series per CPU where `/proc/cpuinfo` has that line (x86).
#[test]
fn cpu_info_matches_node_exporter() {
    let filters = [
        "--collector.cpu.info",
        // Common x86 and arm64 flags, so that the family is not empty on either.
        "--collector.cpu.info.flags-include=^(fpu|sse2|avx2?|aes|hypervisor|fp|asimd)$",
        "--collector.cpu.info.bugs-include=.",
    ];
    let dir = TempDir::new("node-compat-cpu-info");
    let cfg = dir.join("agent.yaml");
    std::fs::write(&cfg, single_module_config("node", dir.path())).expect("writing agent.yaml");
    let mut agent_args = vec!["--config", cfg.to_str().expect("utf-8 path")];
    agent_args.extend(filters);
    let agent = Agent::start(&agent_args);
    let mut args = vec![
        "--collector.disable-defaults".to_string(),
        "--collector.cpu".to_string(),
    ];
    args.extend(filters.iter().map(|f| f.to_string()));
    let theirs = NodeExporter::start(&args);

    let cpu_info = |text: &str, who: &str| -> BTreeMap<String, Family> {
        families(text, who)
            .into_iter()
            .filter(|(name, _)| CPU_INFO_FAMILIES.contains(&name.as_str()))
            .collect()
    };
    let before = cpu_info(&theirs.metrics(), "node_exporter");
    let ours = cpu_info(&agent.metrics(), "the agent");
    let after = cpu_info(&theirs.metrics(), "node_exporter");
    let found = compare(&ours, &before, &after);
    assert!(
        found.problems.is_empty(),
        "{} differences from node_exporter:\n{}",
        found.problems.len(),
        found.problems.join("\n")
    );
    assert!(
        before.contains_key("node_cpu_info") && before.contains_key("node_cpu_flag_info"),
        "node_exporter wrote no node_cpu_info or node_cpu_flag_info: {before:?}"
    );
    println!(
        "compared {} cpu info families, {} values",
        found.families, found.values
    );

    assert!(
        !before.contains_key("node_cpu_frequency_hertz"),
        "node_exporter 1.5 has no node_cpu_frequency_hertz in its cpu collector"
    );
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").expect("reading /proc/cpuinfo");
    let with_mhz = cpuinfo
        .lines()
        .filter(|l| l.split(':').next().map(str::trim) == Some("cpu MHz"))
        .count();
    let frequencies = ours
        .get("node_cpu_frequency_hertz")
        .map_or(0, |f| f.series.len());
    assert_eq!(
        frequencies,
        with_mhz,
        "{:?}",
        ours.get("node_cpu_frequency_hertz")
    );
    if let Some(f) = ours.get("node_cpu_frequency_hertz") {
        assert_eq!(f.kind, "gauge");
        assert!(f.series.values().all(|&hz| hz > 1e6), "{:?}", f.series);
    }
}
