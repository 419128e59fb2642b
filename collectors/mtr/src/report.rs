//! A finished trace as people and programs read it: `mtr -n -r`'s text report, `mtr -j`'s
//! JSON (same keys, plus eos's own), a one-line summary, and the path's hash.

use crate::trace::HopStats;
use eos_module::civil;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

/// One hop (TTL) of a report.
#[derive(Clone, Debug, PartialEq)]
pub struct Hop {
    /// The TTL, from 1.
    pub ttl: u8,
    /// Who answered and how often, the most frequent first (empty: nobody, `???`).
    pub addrs: Vec<(IpAddr, u32)>,
    pub sent: u32,
    pub received: u32,
    pub last: Option<Duration>,
    pub mean: Option<Duration>,
    pub best: Option<Duration>,
    pub worst: Option<Duration>,
    pub stddev: Option<Duration>,
}

impl Hop {
    /// The hop as a trace saw it.
    pub fn from_stats(ttl: u8, h: &HopStats) -> Hop {
        let mut addrs = h.addrs.clone();
        // Most answers first; the sort is stable, so ties keep the order first seen.
        addrs.sort_by_key(|a| std::cmp::Reverse(a.1));
        Hop {
            ttl,
            addrs,
            sent: h.sent,
            received: h.received,
            last: h.last.map(|(_, d)| d),
            mean: h.mean(),
            best: h.best,
            worst: h.worst,
            stddev: h.stddev(),
        }
    }

    /// The address that answered most, if any did.
    pub fn address(&self) -> Option<IpAddr> {
        self.addrs.first().map(|(a, _)| *a)
    }

    /// The share of probes unanswered, 0 to 1 (0 when none were sent).
    pub fn loss_ratio(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        f64::from(self.sent - self.received.min(self.sent)) / f64::from(self.sent)
    }

    /// The address as the host column shows it: `???` for a hop that never answered.
    pub fn host(&self) -> String {
        self.address()
            .map_or_else(|| "???".to_string(), |a| a.to_string())
    }
}

/// A finished trace.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The target as asked for (a name or an address).
    pub target: String,
    /// The address traced.
    pub dst: IpAddr,
    /// `icmp`, `udp` or `tcp`.
    pub protocol: String,
    /// Rounds run (probes per hop).
    pub count: u32,
    pub started: SystemTime,
    /// Whether the destination answered.
    pub reached: bool,
    pub hops: Vec<Hop>,
}

/// The host column's width, as mtr's report has it (wider for long addresses).
const HOST_WIDTH: usize = 33;

fn ms(d: Option<Duration>) -> f64 {
    d.map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// Milliseconds rounded to microseconds, as mtr's JSON writes them.
fn ms3(d: Option<Duration>) -> f64 {
    (ms(d) * 1000.0).round() / 1000.0
}

impl Report {
    /// The path: each hop's main address (`None` for a silent hop).
    pub fn path(&self) -> Vec<Option<IpAddr>> {
        self.hops.iter().map(Hop::address).collect()
    }

    /// FNV-1a (32 bits) of the path's addresses, `???` for silent hops: changes when the
    /// list of hop addresses does.
    pub fn path_hash(&self) -> u32 {
        let mut h: u32 = 0x811c_9dc5;
        for hop in &self.hops {
            for b in hop.host().bytes().chain([b'\n']) {
                h ^= u32::from(b);
                h = h.wrapping_mul(0x0100_0193);
            }
        }
        h
    }

    /// The number of hops: up to the destination, or (not reached) up to the first silent
    /// hop after the last one that answered.
    pub fn hop_count(&self) -> usize {
        self.hops.len()
    }

    /// `mtr -n -r`'s report: a `Start:` line, a header naming `host` (where the trace ran
    /// from), and one line per hop with Loss%, Snt, Last, Avg, Best, Wrst and StDev (ms),
    /// `???` for a hop that never answered, further addresses of a hop on lines of their own.
    pub fn text(&self, host: &str) -> String {
        let width = self
            .hops
            .iter()
            .flat_map(|h| h.addrs.iter().map(|(a, _)| a.to_string().len() + 9))
            .max()
            .unwrap_or(0)
            .max(HOST_WIDTH);
        let mut s = String::new();
        let _ = writeln!(s, "Start: {}", rfc3339(self.started));
        let _ = writeln!(
            s,
            "{:<width$} Loss%   Snt   Last   Avg  Best  Wrst StDev",
            format!("HOST: {host}"),
            width = width
        );
        for h in &self.hops {
            let name = format!("{:>3}.|-- {}", h.ttl, h.host());
            // mtr writes a total loss without the percent sign.
            let loss = if h.sent > 0 && h.received == 0 {
                " 100.0".to_string()
            } else {
                format!("{:>5.1}%", h.loss_ratio() * 100.0)
            };
            let _ = writeln!(
                s,
                "{name:<width$}{loss}{:>6}{:>7.1}{:>6.1}{:>6.1}{:>6.1}{:>6.1}",
                h.sent,
                ms(h.last),
                ms(h.mean),
                ms(h.best),
                ms(h.worst),
                ms(h.stddev),
            );
            for (a, _) in h.addrs.iter().skip(1) {
                let _ = writeln!(s, "    |-- {a}");
            }
        }
        s
    }

    /// `mtr -j`'s JSON (`report.mtr` and `report.hubs` with mtr's keys, times in ms), plus
    /// eos's own keys: the address traced, whether it was reached, the path hash, each hub's
    /// answers (`Rcv`) and every address that answered (`hosts`).
    pub fn json(&self, host: &str) -> Value {
        let hubs: Vec<Value> = self
            .hops
            .iter()
            .map(|h| {
                json!({
                    "count": h.ttl,
                    "host": h.host(),
                    "Loss%": (h.loss_ratio() * 1000.0).round() / 10.0,
                    "Snt": h.sent,
                    "Rcv": h.received,
                    "Last": ms3(h.last),
                    "Avg": ms3(h.mean),
                    "Best": ms3(h.best),
                    "Wrst": ms3(h.worst),
                    "StDev": ms3(h.stddev),
                    "hosts": h.addrs.iter().map(|(a, n)| json!({"host": a.to_string(), "count": n})).collect::<Vec<_>>(),
                })
            })
            .collect();
        json!({
            "report": {
                "mtr": {
                    "src": host,
                    "dst": self.target,
                    "address": self.dst.to_string(),
                    "protocol": self.protocol,
                    "tests": self.count,
                    "start": rfc3339(self.started),
                    "reached": self.reached,
                    "path_hash": self.path_hash(),
                },
                "hubs": hubs,
            }
        })
    }

    /// One line: `reached in 4 hops: 10.0.0.1 10.0.0.2 ??? 10.0.0.4 (20.5 ms, 0% loss)`.
    pub fn summary(&self) -> String {
        let path: Vec<String> = self.hops.iter().map(Hop::host).collect();
        let last = self.hops.last();
        let tail = match last {
            Some(h) if h.received > 0 => format!(
                " ({:.1} ms, {:.0}% loss)",
                ms(h.mean),
                h.loss_ratio() * 100.0
            ),
            _ => String::new(),
        };
        if self.reached {
            format!(
                "reached in {} hops: {}{tail}",
                self.hops.len(),
                path.join(" ")
            )
        } else if self.hops.iter().all(|h| h.received == 0) {
            "not reached, no hop answered".to_string()
        } else {
            format!(
                "not reached; {} hops seen: {}{tail}",
                self.hops.len(),
                path.join(" ")
            )
        }
    }
}

/// `2024-05-01T12:00:00+0000`, as mtr writes its start time (UTC).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m, d, h, mi, s) = civil::utc_parts(i64::try_from(secs).unwrap_or(i64::MAX));
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}+0000")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop(ttl: u8, addrs: &[(&str, u32)], sent: u32, rtts_ms: [f64; 5]) -> Hop {
        let d = |v: f64| Some(Duration::from_secs_f64(v / 1000.0));
        let received = addrs.iter().map(|(_, n)| n).sum();
        Hop {
            ttl,
            addrs: addrs
                .iter()
                .map(|(a, n)| (a.parse().unwrap(), *n))
                .collect(),
            sent,
            received,
            last: d(rtts_ms[0]),
            mean: d(rtts_ms[1]),
            best: d(rtts_ms[2]),
            worst: d(rtts_ms[3]),
            stddev: d(rtts_ms[4]),
        }
    }

    fn report() -> Report {
        Report {
            target: "target.example".into(),
            dst: "10.91.4.2".parse().unwrap(),
            protocol: "icmp".into(),
            count: 10,
            started: SystemTime::UNIX_EPOCH + Duration::from_secs(1_714_564_800),
            reached: true,
            hops: vec![
                hop(1, &[("10.91.1.1", 10)], 10, [0.1, 0.1, 0.05, 0.2, 0.04]),
                Hop {
                    ttl: 2,
                    addrs: Vec::new(),
                    sent: 10,
                    received: 0,
                    last: None,
                    mean: None,
                    best: None,
                    worst: None,
                    stddev: None,
                },
                hop(
                    3,
                    &[("10.91.3.1", 5), ("10.91.103.1", 2)],
                    10,
                    [20.6, 20.84, 20.5, 21.3, 0.31],
                ),
                hop(4, &[("10.91.4.2", 10)], 10, [20.7, 20.7, 20.5, 20.8, 0.2]),
            ],
        }
    }

    #[test]
    fn text_is_mtrs_report() {
        let text = report().text("vm");
        let want = "\
Start: 2024-05-01T12:00:00+0000
HOST: vm                          Loss%   Snt   Last   Avg  Best  Wrst StDev
  1.|-- 10.91.1.1                  0.0%    10    0.1   0.1   0.1   0.2   0.0
  2.|-- ???                       100.0    10    0.0   0.0   0.0   0.0   0.0
  3.|-- 10.91.3.1                 30.0%    10   20.6  20.8  20.5  21.3   0.3
    |-- 10.91.103.1
  4.|-- 10.91.4.2                  0.0%    10   20.7  20.7  20.5  20.8   0.2
";
        assert_eq!(text, want);
        // The same columns as the real mtr's output (mtr 0.95).
        let mtr = "\
HOST: vm                          Loss%   Snt   Last   Avg  Best  Wrst StDev
  1.|-- 10.91.1.1                  0.0%     3    0.0   0.0   0.0   0.1   0.0
  3.|-- ???                       100.0     3    0.0   0.0   0.0   0.0   0.0";
        let mtr: Vec<&str> = mtr.lines().collect();
        let ours: Vec<&str> = text.lines().collect();
        assert_eq!(ours[1], mtr[0]);
        for (o, m) in [(ours[2], mtr[1]), (ours[3], mtr[2])] {
            assert_eq!(o.len(), m.len(), "{o}\n{m}");
            assert_eq!(o[..40].rfind(' '), m[..40].rfind(' '), "{o}\n{m}");
        }
    }

    #[test]
    fn long_addresses_widen_the_host_column() {
        let mut r = report();
        r.hops = vec![hop(
            1,
            &[("fd00:91:1234:5678:9abc:def0:1234:5678", 1)],
            1,
            [1.0; 5],
        )];
        let text = r.text("h");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1].find("Loss%").map(|i| i + 5),
            lines[2].find('%').map(|i| i + 1)
        );
    }

    #[test]
    fn json_has_mtrs_keys() {
        let v = report().json("vm");
        let hubs = v["report"]["hubs"].as_array().unwrap();
        assert_eq!(hubs.len(), 4);
        assert_eq!(v["report"]["mtr"]["dst"], "target.example");
        assert_eq!(v["report"]["mtr"]["address"], "10.91.4.2");
        assert_eq!(v["report"]["mtr"]["tests"], 10);
        assert_eq!(v["report"]["mtr"]["reached"], true);
        assert_eq!(hubs[0]["count"], 1);
        assert_eq!(hubs[0]["host"], "10.91.1.1");
        assert_eq!(hubs[1]["host"], "???");
        assert_eq!(hubs[1]["Loss%"], 100.0);
        assert_eq!(hubs[2]["Loss%"], 30.0);
        assert_eq!(hubs[2]["Avg"], 20.84);
        assert_eq!(hubs[2]["Rcv"], 7);
        assert_eq!(hubs[2]["hosts"][1]["host"], "10.91.103.1");
        assert_eq!(hubs[3]["Snt"], 10);
    }

    #[test]
    fn the_hash_follows_the_addresses() {
        let a = report();
        let mut b = report();
        assert_eq!(a.path_hash(), b.path_hash());
        b.hops[0].last = None;
        assert_eq!(a.path_hash(), b.path_hash(), "times do not count");
        b.hops[2].addrs.reverse();
        assert_ne!(a.path_hash(), b.path_hash());
        let mut c = report();
        c.hops.pop();
        assert_ne!(a.path_hash(), c.path_hash());
    }

    #[test]
    fn summaries() {
        let mut r = report();
        assert_eq!(
            r.summary(),
            "reached in 4 hops: 10.91.1.1 ??? 10.91.3.1 10.91.4.2 (20.7 ms, 0% loss)"
        );
        r.reached = false;
        r.hops.truncate(2);
        assert_eq!(r.summary(), "not reached; 2 hops seen: 10.91.1.1 ???");
        r.hops.clear();
        assert_eq!(r.summary(), "not reached, no hop answered");
    }

    #[test]
    fn start_times_are_utc() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00+0000");
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400 + 86_399);
        assert_eq!(rfc3339(t), "2000-02-29T23:59:59+0000");
    }
}
