//! Each collector's health: how its last run went, when it last succeeded and failed, how
//! long it took, and since when a call of it is stuck. For the status page, `/debug/node/`
//! and the module's [`eos_module::Health`].
//!
//! Outcomes are recorded once per scrape. A collector that starts failing, fails
//! differently, or recovers is logged then, not on every scrape.

use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use crate::runner::{Outcome, Ran};
use crate::stuck::{self, Stuck};

/// The health of every collector of one module instance, by index.
pub(crate) struct Board {
    names: Vec<&'static str>,
    rows: Mutex<Vec<Row>>,
}

/// One collector's health.
#[derive(Clone, Debug, Default)]
struct Row {
    /// The outcome of its last scrape, and when.
    last: Option<(Outcome, SystemTime)>,
    /// How long its last call took (of the calls that returned).
    took: Option<Duration>,
    last_success: Option<SystemTime>,
    last_error: Option<(SystemTime, String)>,
    successes: u64,
    failures: u64,
}

impl Board {
    pub(crate) fn new(names: Vec<&'static str>) -> Board {
        let rows = vec![Row::default(); names.len()];
        Board {
            names,
            rows: Mutex::new(rows),
        }
    }

    fn rows(&self) -> MutexGuard<'_, Vec<Row>> {
        self.rows.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn name(&self, index: usize) -> &'static str {
        self.names.get(index).copied().unwrap_or("?")
    }

    /// Records one scrape's outcomes.
    pub(crate) fn record(&self, ran: &[Ran]) {
        let now = SystemTime::now();
        let mut rows = self.rows();
        for r in ran {
            let Some(row) = rows.get_mut(r.index) else {
                continue;
            };
            let name = self.name(r.index);
            match &r.outcome {
                Outcome::Ok => {
                    if matches!(row.last, Some((Outcome::Failed(_), _))) {
                        tracing::info!(collector = name, "node collector succeeds again");
                    }
                    row.successes += 1;
                    row.last_success = Some(now);
                    row.took = Some(r.took);
                }
                Outcome::Failed(e) => {
                    let same = matches!(&row.last, Some((Outcome::Failed(prev), _)) if prev == e);
                    if !same {
                        tracing::warn!(collector = name, error = %e, "node collector failed");
                    }
                    row.failures += 1;
                    row.last_error = Some((now, e.clone()));
                    row.took = Some(r.took);
                }
                Outcome::Abandoned => {
                    row.failures += 1;
                    let e = format!(
                        "ran past its budget ({}); left behind, still running",
                        seconds(r.took)
                    );
                    row.last_error = Some((now, e));
                }
                Outcome::Stuck | Outcome::NoTime => row.failures += 1,
            }
            row.last = Some((r.outcome.clone(), now));
        }
    }

    /// Every collector's health now, in order.
    fn snapshot(&self) -> Vec<View> {
        let stuck = stuck::list(|n| self.names.contains(&n));
        let rows = self.rows().clone();
        rows.into_iter()
            .enumerate()
            .map(|(i, row)| {
                let name = self.name(i);
                let stuck = stuck.iter().find(|s| s.collector == name).cloned();
                View { name, row, stuck }
            })
            .collect()
    }

    /// Why the module is degraded: its stuck collectors, e.g. `collector diskstats stuck for
    /// 2m5s since 2025-06-01T03:12:45Z`. `None` when nothing is stuck.
    pub(crate) fn degraded(&self) -> Option<String> {
        let stuck = stuck::list(|n| self.names.contains(&n));
        degraded(&stuck)
    }

    /// Lines for the status page: the collectors, a summary, and one line per collector that
    /// is stuck or failed in its last scrape.
    pub(crate) fn status(&self) -> Vec<(String, String)> {
        status(&self.names, &self.snapshot())
    }

    /// `/debug/node/collectors`: every collector's health, as a text table.
    pub(crate) fn table(&self) -> String {
        let now = SystemTime::now();
        let mut s = String::from(
            "# The node module's collectors: state, duration of the last call that returned,\n\
             # time since the last success and the last error, counts, and the last error.\n",
        );
        let _ = writeln!(
            s,
            "{:<18} {:<8} {:>10} {:>10} {:>10} {:>9} {:>9}  last error",
            "collector", "state", "took", "success", "error", "ok", "failed"
        );
        let ago = |t: Option<SystemTime>| {
            t.map_or("-".to_string(), |t| {
                age(now.duration_since(t).unwrap_or_default())
            })
        };
        for v in self.snapshot() {
            let _ = write!(
                s,
                "{:<18} {:<8} {:>10} {:>10} {:>10} {:>9} {:>9}  ",
                v.name,
                v.state(),
                v.row.took.map_or("-".to_string(), seconds),
                ago(v.row.last_success),
                ago(v.row.last_error.as_ref().map(|e| e.0)),
                v.row.successes,
                v.row.failures,
            );
            if let Some(c) = &v.stuck {
                let _ = write!(
                    s,
                    "stuck since {} ({}), skipped until its call returns",
                    utc(c.since),
                    age(c.age())
                );
            } else if let Some((_, e)) = &v.row.last_error {
                s.push_str(&e.replace('\n', " "));
            } else {
                s.push('-');
            }
            s.push('\n');
        }
        s
    }

    /// `/debug/node/`: the module's state as the agent's index shows other modules (`module`,
    /// `up`, `degraded`, `status`), plus every collector's health.
    pub(crate) fn json(&self) -> String {
        let views = self.snapshot();
        let stuck: Vec<Stuck> = views.iter().filter_map(|v| v.stuck.clone()).collect();
        let mut s = String::from("{\n  \"module\": \"node\",\n  \"up\": true,\n");
        let _ = writeln!(
            s,
            "  \"degraded\": {},",
            json_opt(degraded(&stuck).as_deref())
        );
        s.push_str("  \"status\": {");
        for (i, (k, v)) in status(&self.names, &views).iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(s, "{sep}\n    {}: {}", json_str(k), json_str(v));
        }
        s.push_str("\n  },\n  \"collectors\": [");
        for (i, v) in views.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let r = &v.row;
            let time = |t: Option<SystemTime>| json_opt(t.map(utc).as_deref());
            let _ = write!(
                s,
                "{sep}\n    {{\"collector\": {}, \"state\": {}, \"last_duration_seconds\": {}, \
                 \"last_success\": {}, \"last_error_time\": {}, \"last_error\": {}, \
                 \"stuck_since\": {}, \"successes\": {}, \"failures\": {}}}",
                json_str(v.name),
                json_str(v.state()),
                r.took
                    .map_or("null".to_string(), |d| d.as_secs_f64().to_string()),
                time(r.last_success),
                time(r.last_error.as_ref().map(|e| e.0)),
                json_opt(r.last_error.as_ref().map(|e| e.1.as_str())),
                time(v.stuck.as_ref().map(|c| c.since)),
                r.successes,
                r.failures,
            );
        }
        s.push_str("\n  ]\n}\n");
        s
    }
}

/// One collector's health at one moment.
struct View {
    name: &'static str,
    row: Row,
    /// Its call that is stuck, if one is.
    stuck: Option<Stuck>,
}

impl View {
    /// `stuck`, else how its last scrape went: `ok`, `failed`, `returned` (was stuck, is
    /// back), `no time`, or `-` (not run yet).
    fn state(&self) -> &'static str {
        if self.stuck.is_some() {
            return "stuck";
        }
        match &self.row.last {
            None => "-",
            Some((Outcome::Ok, _)) => "ok",
            Some((Outcome::Failed(_), _)) => "failed",
            Some((Outcome::Abandoned | Outcome::Stuck, _)) => "returned",
            Some((Outcome::NoTime, _)) => "no time",
        }
    }
}

fn degraded(stuck: &[Stuck]) -> Option<String> {
    if stuck.is_empty() {
        return None;
    }
    let parts: Vec<String> = stuck
        .iter()
        .map(|s| {
            format!(
                "collector {} stuck for {} since {}",
                s.collector,
                age(s.age()),
                utc(s.since)
            )
        })
        .collect();
    Some(parts.join("; "))
}

fn status(names: &[&str], views: &[View]) -> Vec<(String, String)> {
    let count = |state: &str| views.iter().filter(|v| v.state() == state).count();
    let mut lines = vec![
        ("collectors".to_string(), names.join(" ")),
        (
            "collector health".to_string(),
            format!(
                "{} ok, {} failed in their last scrape, {} stuck (see /debug/node/collectors)",
                count("ok"),
                count("failed"),
                count("stuck")
            ),
        ),
    ];
    for v in views {
        if let Some(c) = &v.stuck {
            lines.push((
                format!("collector {}", v.name),
                format!(
                    "stuck since {} ({}): skipped until its call returns",
                    utc(c.since),
                    age(c.age())
                ),
            ));
        } else if let Some((Outcome::Failed(e), _)) = &v.row.last {
            lines.push((format!("collector {}", v.name), format!("failing: {e}")));
        }
    }
    lines
}

/// A JSON string literal.
fn json_str(v: &str) -> String {
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(s, "\\u{:04x}", u32::from(c));
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

fn json_opt(v: Option<&str>) -> String {
    v.map_or("null".to_string(), json_str)
}

/// A duration for people: `850ms`, `12s`, `2m5s`, `3h2m`.
fn age(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        format!("{}ms", d.as_millis())
    } else if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m{}s", secs / 60, secs % 60)
    } else {
        format!("{}h{}m", secs / 3600, secs % 3600 / 60)
    }
}

/// A call's duration in seconds or milliseconds: `0.041ms`, `2.500s`.
fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{:.3}ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

/// A moment as RFC 3339 UTC, to the second: `2025-06-01T03:12:45Z`.
fn utc(t: SystemTime) -> String {
    eos_module::civil::rfc3339(t, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn formats() {
        assert_eq!(utc(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_748_747_565);
        assert_eq!(utc(t), "2025-06-01T03:12:45Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(utc(leap), "2000-02-29T00:00:00Z");
        assert_eq!(age(Duration::from_millis(850)), "850ms");
        assert_eq!(age(Duration::from_secs(12)), "12s");
        assert_eq!(age(Duration::from_secs(125)), "2m5s");
        assert_eq!(age(Duration::from_secs(3 * 3600 + 120)), "3h2m");
        assert_eq!(seconds(Duration::from_micros(41)), "0.041ms");
        assert_eq!(seconds(Duration::from_millis(2500)), "2.500s");
    }

    #[test]
    fn records_outcomes() {
        let b = Board::new(vec!["health_a", "health_b", "health_c"]);
        let ran = |index, outcome| Ran {
            index,
            took: Duration::from_millis(1),
            outcome,
        };
        b.record(&[
            ran(0, Outcome::Ok),
            ran(1, Outcome::Failed("reading x: EIO".into())),
        ]);
        b.record(&[
            ran(0, Outcome::Ok),
            ran(1, Outcome::Failed("reading x: EIO".into())),
        ]);
        let status = b.status();
        assert!(status.iter().any(|(k, v)| k == "collector health"
            && v.starts_with("1 ok, 1 failed in their last scrape, 0 stuck")));
        assert!(status
            .iter()
            .any(|(k, v)| k == "collector health_b" && v == "failing: reading x: EIO"));
        let t = b.table();
        let line = |name: &str| {
            t.lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_default()
                .to_string()
        };
        assert!(line("health_a ").contains(" ok "), "{t}");
        assert!(line("health_b ").contains(" failed "), "{t}");
        assert!(line("health_b ").ends_with("reading x: EIO"), "{t}");
        assert!(line("health_c ").ends_with(" -"), "{t}");
        assert_eq!(b.degraded(), None);
        let j = b.json();
        assert!(j.starts_with("{\n  \"module\": \"node\",\n  \"up\": true,\n  \"degraded\": null,"));
        assert!(j.contains("\"collector health\": \"1 ok, 1 failed"), "{j}");
        assert!(j.contains("{\"collector\": \"health_b\", \"state\": \"failed\", \"last_duration_seconds\": 0.001, "), "{j}");
        assert!(j.contains("\"last_error\": \"reading x: EIO\", \"stuck_since\": null, \"successes\": 0, \"failures\": 2}"), "{j}");
        assert!(j.contains("{\"collector\": \"health_c\", \"state\": \"-\", \"last_duration_seconds\": null, \"last_success\": null"), "{j}");
        assert!(j.ends_with("}\n  ]\n}\n"), "{j}");
    }

    #[test]
    fn json_strings() {
        assert_eq!(json_str("a\"b\\c\nd\u{1}é"), "\"a\\\"b\\\\c\\nd\\u0001é\"");
        assert_eq!(json_opt(None), "null");
    }
}
