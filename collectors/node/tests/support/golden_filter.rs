//! What the node golden tests compare: the output without the families that depend on the
//! clock, system calls or the checkout, and with the fixture directory written as
//! `<fixtures>`. Shared (with `#[path]`) by `collectors/node/tests/golden.rs`, which drives the
//! module, and `tests/node_golden.rs`, which drives the agent binary.

/// Families whose values come from the clock or from system calls, not from the fixtures.
pub const VOLATILE: &[&str] = &[
    "node_scrape_collector_duration_seconds",
    "node_time_seconds",
    "node_time_zone_offset_seconds",
    "node_timex_",
    "node_uname_info",
    // File mtimes depend on the checkout.
    "node_textfile_mtime_seconds",
];

/// Drops the lines (samples and headers) of [`VOLATILE`] families and of `also_drop`, and,
/// with `node_only`, of every family not named `node_*` (the agent adds its own). Writes
/// the `fixtures` path as `<fixtures>` (some labels contain it, e.g. RAPL zone paths).
pub fn stable(text: &str, fixtures: &str, also_drop: &[&str], node_only: bool) -> String {
    let text = text.replace(fixtures, "<fixtures>");
    let mut out = String::new();
    for line in text.lines() {
        let name = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
            .unwrap_or(line);
        let dropped = VOLATILE
            .iter()
            .chain(also_drop)
            .any(|v| name.starts_with(v))
            || (node_only && !name.starts_with("node_"));
        if !dropped {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}
