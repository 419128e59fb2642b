//! Pure parsers for cgroup v1/v2 and procfs files. Each takes the file's text and returns
//! typed values or an error naming the line; the caller adds the path.

/// A single number (`memory.current`, `cpuacct.usage`, `pids.current`). `max` is
/// `u64::MAX`, as cAdvisor reads it.
pub fn single_u64(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t == "max" {
        return Ok(u64::MAX);
    }
    if t.is_empty() {
        return Err("empty file".into());
    }
    t.parse()
        .map_err(|_| format!("expected a number, found {:?}", clip(t)))
}

/// A signed number (`cpu.cfs_quota_us` is -1 when unlimited).
pub fn single_i64(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty file".into());
    }
    t.parse()
        .map_err(|_| format!("expected a number, found {:?}", clip(t)))
}

/// Calls `f(key, value)` for each `key value` line (`memory.stat`, `cpu.stat`,
/// `memory.events`, `cpuacct.stat`, `memory.oom_control`). A line with a key and no number
/// is an error; an empty file is an error (the kernel never writes one).
pub fn flat_keyed(text: &str, mut f: impl FnMut(&str, u64)) -> Result<(), String> {
    let mut any = false;
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() {
            continue;
        }
        let mut it = line.split_ascii_whitespace();
        let (Some(k), Some(v), None) = (it.next(), it.next(), it.next()) else {
            return Err(format!(
                "line {}: expected \"key value\", found {:?}",
                i + 1,
                clip(line)
            ));
        };
        let v = field_u64(i + 1, k, v)?;
        f(k, v);
        any = true;
    }
    if any {
        Ok(())
    } else {
        Err("empty file".into())
    }
}

/// `cpu.max`: `max 100000` or `50000 100000` -> (quota if set, period).
pub fn cpu_max(text: &str) -> Result<(Option<u64>, u64), String> {
    let mut it = text.split_ascii_whitespace();
    let (Some(q), Some(p), None) = (it.next(), it.next(), it.next()) else {
        return Err(format!(
            "expected \"quota period\", found {:?}",
            clip(text.trim())
        ));
    };
    let period = p
        .parse()
        .map_err(|_| format!("period: expected a number, found {:?}", clip(p)))?;
    let quota = match q {
        "max" => None,
        q => Some(
            q.parse()
                .map_err(|_| format!("quota: expected a number or max, found {:?}", clip(q)))?,
        ),
    };
    Ok((quota, period))
}

/// cAdvisor's conversion of a v2 `cpu.weight` (1..10000) back to v1 shares (2..262144).
pub fn weight_to_shares(weight: u64) -> u64 {
    if weight == 0 {
        return 0;
    }
    // A weight above 10000 is not valid; clamp rather than overflow on a bad file.
    2 + (weight.min(10_000) - 1) * 262142 / 9999
}

/// Block I/O totals of one device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Io {
    pub major: u32,
    pub minor: u32,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub reads: u64,
    pub writes: u64,
}

/// v2 `io.stat`: `8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0`.
pub fn io_stat(text: &str, out: &mut Vec<Io>) -> Result<(), String> {
    out.clear();
    for (i, line) in text.lines().enumerate() {
        let mut it = line.split_ascii_whitespace();
        let Some(dev) = it.next() else { continue };
        let (major, minor) = dev_numbers(dev).map_err(|e| format!("line {}: {e}", i + 1))?;
        let mut io = Io {
            major,
            minor,
            ..Io::default()
        };
        for kv in it {
            let Some((k, v)) = kv.split_once('=') else {
                return Err(format!(
                    "line {}: expected key=value, found {:?}",
                    i + 1,
                    clip(kv)
                ));
            };
            let v = field_u64(i + 1, k, v)?;
            match k {
                "rbytes" => io.read_bytes = v,
                "wbytes" => io.write_bytes = v,
                "rios" => io.reads = v,
                "wios" => io.writes = v,
                _ => {}
            }
        }
        out.push(io);
    }
    Ok(())
}

/// Which v1 `blkio` statistics file is parsed: operations or bytes, by device and direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkioFile {
    /// `*io_serviced*`: operations.
    Serviced,
    /// `*io_service_bytes*`: bytes.
    ServiceBytes,
}

/// A v1 `blkio.*io_serviced*` or `*io_service_bytes*` file (throttle, CFQ or BFQ, plain or
/// `_recursive`): `8:0 Read 123` lines and `Total` lines. Adds the reads and writes into
/// `out` by device and returns how many device lines there were (a cgroup without I/O under
/// that policy has none, only `Total 0`).
pub fn blkio(text: &str, file: BlkioFile, out: &mut Vec<Io>) -> Result<usize, String> {
    let mut devices = 0;
    for (i, line) in text.lines().enumerate() {
        let mut it = line.split_ascii_whitespace();
        let Some(dev) = it.next() else { continue };
        let (Some(op), Some(v), None) = (it.next(), it.next(), it.next()) else {
            if dev == "Total" {
                continue;
            }
            return Err(format!(
                "line {}: expected \"major:minor op value\", found {:?}",
                i + 1,
                clip(line)
            ));
        };
        let v: u64 = v
            .parse()
            .map_err(|_| format!("line {}: expected a number, found {:?}", i + 1, clip(v)))?;
        let (major, minor) = dev_numbers(dev).map_err(|e| format!("line {}: {e}", i + 1))?;
        devices += 1;
        let idx = match out
            .iter()
            .position(|d| d.major == major && d.minor == minor)
        {
            Some(idx) => idx,
            None => {
                out.push(Io {
                    major,
                    minor,
                    ..Io::default()
                });
                out.len() - 1
            }
        };
        let Some(d) = out.get_mut(idx) else { continue };
        match (op, file) {
            ("Read", BlkioFile::ServiceBytes) => d.read_bytes = v,
            ("Write", BlkioFile::ServiceBytes) => d.write_bytes = v,
            ("Read", BlkioFile::Serviced) => d.reads = v,
            ("Write", BlkioFile::Serviced) => d.writes = v,
            _ => {}
        }
    }
    Ok(devices)
}

fn dev_numbers(dev: &str) -> Result<(u32, u32), String> {
    let bad = || format!("expected a device major:minor, found {:?}", clip(dev));
    let (a, b) = dev.split_once(':').ok_or_else(bad)?;
    Ok((a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?))
}

/// `*.pressure`: the `total=` (µs) of the `some` and `full` lines.
pub fn pressure(text: &str) -> Result<(u64, Option<u64>), String> {
    let mut some = None;
    let mut full = None;
    for (i, line) in text.lines().enumerate() {
        let mut it = line.split_ascii_whitespace();
        let Some(kind) = it.next() else { continue };
        let total = it
            .find_map(|kv| kv.strip_prefix("total="))
            .ok_or_else(|| format!("line {}: no total= in {:?}", i + 1, clip(line)))?;
        let total = field_u64(i + 1, "total", total)?;
        match kind {
            "some" => some = Some(total),
            "full" => full = Some(total),
            _ => {}
        }
    }
    let some = some.ok_or("no \"some\" line")?;
    Ok((some, full))
}

/// Interface counters from `/proc/<pid>/net/dev`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetDev {
    pub name: String,
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// Parses `net/dev`, skipping the interfaces cAdvisor ignores (`lo`, `veth*`, `docker*`).
pub fn net_dev(text: &str, out: &mut Vec<NetDev>) -> Result<(), String> {
    out.clear();
    for (i, line) in text.lines().enumerate().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            return Err(format!(
                "line {}: expected \"iface: counters\", found {:?}",
                i + 1,
                clip(line)
            ));
        };
        let name = name.trim();
        let mut v = [0u64; 16];
        let mut n = 0;
        for (slot, field) in v.iter_mut().zip(rest.split_ascii_whitespace()) {
            *slot = field_u64(i + 1, name, field)?;
            n += 1;
        }
        if n < 16 {
            return Err(format!("line {}: {name}: {n} counters, expected 16", i + 1));
        }
        if name == "lo" || name.starts_with("veth") || name.starts_with("docker") {
            continue;
        }
        out.push(NetDev {
            name: name.to_string(),
            rx_bytes: v[0],
            rx_packets: v[1],
            rx_errors: v[2],
            rx_dropped: v[3],
            tx_bytes: v[8],
            tx_packets: v[9],
            tx_errors: v[10],
            tx_dropped: v[11],
        });
    }
    Ok(())
}

/// Counts the non-empty lines (`cgroup.procs`, `tasks`) and returns the first one.
pub fn count_lines(text: &str) -> (u64, Option<&str>) {
    let mut n = 0;
    let mut first = None;
    for l in text.lines().filter(|l| !l.is_empty()) {
        n += 1;
        first.get_or_insert(l);
    }
    (n, first)
}

/// A CPU list like `0-3,8,10-11` -> how many CPUs.
pub fn cpu_list_len(text: &str) -> Result<u64, String> {
    let mut n = 0;
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let bad = || format!("expected a CPU list, found {:?}", clip(part));
        match part.split_once('-') {
            Some((a, b)) => {
                let a: u64 = a.parse().map_err(|_| bad())?;
                let b: u64 = b.parse().map_err(|_| bad())?;
                n += b.checked_sub(a).ok_or_else(bad)? + 1;
            }
            None => {
                part.parse::<u64>().map_err(|_| bad())?;
                n += 1;
            }
        }
    }
    Ok(n)
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
pub fn mem_total(text: &str) -> Result<u64, String> {
    meminfo_bytes(text, "MemTotal")
}

/// Memory in use by the whole node (`MemTotal - MemFree`), as runc reports the v2 root
/// cgroup, which has no `memory.current`.
pub fn mem_used(text: &str) -> Result<u64, String> {
    Ok(meminfo_bytes(text, "MemTotal")?.saturating_sub(meminfo_bytes(text, "MemFree")?))
}

fn meminfo_bytes(text: &str, key: &str) -> Result<u64, String> {
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(key).and_then(|r| r.strip_prefix(':')) {
            let kb = rest.trim().trim_end_matches("kB").trim();
            return kb
                .parse::<u64>()
                .map(|k| k.saturating_mul(1024))
                .map_err(|_| format!("{key}: expected a number, found {:?}", clip(kb)));
        }
    }
    Err(format!("no {key} line"))
}

/// Parses the number `v` of `what` on line `line` (1-based); the error names both.
fn field_u64(line: usize, what: &str, v: &str) -> Result<u64, String> {
    v.parse().map_err(|_| {
        format!(
            "line {line}: {what}: expected a number, found {:?}",
            clip(v)
        )
    })
}

fn clip(s: &str) -> &str {
    let mut end = s.len().min(40);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn singles() {
        assert_eq!(single_u64("123\n"), Ok(123));
        assert_eq!(single_u64("max\n"), Ok(u64::MAX));
        assert!(single_u64("").unwrap_err().contains("empty"));
        assert!(single_u64("12a").unwrap_err().contains("\"12a\""));
        assert_eq!(single_i64("-1\n"), Ok(-1));
    }

    #[test]
    fn keyed() {
        let mut seen = Vec::new();
        flat_keyed("anon 10\nfile 20\n\n", |k, v| seen.push((k.to_string(), v))).unwrap();
        assert_eq!(seen, [("anon".into(), 10), ("file".into(), 20)]);
        let e = flat_keyed("anon 10\nfile", |_, _| {}).unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let e = flat_keyed("anon x\n", |_, _| {}).unwrap_err();
        assert!(e.contains("anon: expected a number"), "{e}");
        assert!(flat_keyed("", |_, _| {}).is_err());
    }

    #[test]
    fn cpu_max_and_weight() {
        assert_eq!(cpu_max("max 100000\n"), Ok((None, 100000)));
        assert_eq!(cpu_max("50000 100000\n"), Ok((Some(50000), 100000)));
        assert!(cpu_max("50000").is_err());
        assert!(cpu_max("x 100").is_err());
        assert_eq!(weight_to_shares(100), 2597);
        assert_eq!(weight_to_shares(39), 998); // the kubelet writes 39 for 1024 shares
        assert_eq!(weight_to_shares(1), 2);
        assert_eq!(weight_to_shares(10000), 262144);
    }

    #[test]
    fn io() {
        let mut v = Vec::new();
        io_stat("8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n253:1 rbytes=1 wbytes=0 rios=1 wios=0\n", &mut v).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(
            v[0],
            Io {
                major: 8,
                minor: 0,
                read_bytes: 4096,
                write_bytes: 8192,
                reads: 1,
                writes: 2
            }
        );
        assert!(io_stat("8:0 rbytes=4096 wbytes", &mut v)
            .unwrap_err()
            .contains("key=value"));
        assert!(io_stat("sda rbytes=1", &mut v)
            .unwrap_err()
            .contains("major:minor"));
        let mut v = Vec::new();
        assert_eq!(
            blkio(
                "8:0 Read 100\n8:0 Write 200\n8:0 Sync 300\n8:0 Total 300\nTotal 300\n",
                BlkioFile::ServiceBytes,
                &mut v,
            ),
            Ok(4)
        );
        assert_eq!(
            blkio("8:0 Read 1\n8:0 Write 2\n", BlkioFile::Serviced, &mut v),
            Ok(2)
        );
        assert_eq!(
            v,
            [Io {
                major: 8,
                minor: 0,
                read_bytes: 100,
                write_bytes: 200,
                reads: 1,
                writes: 2
            }]
        );
        // no device lines: a cgroup without I/O, or an empty file
        assert_eq!(blkio("Total 0\n", BlkioFile::Serviced, &mut v), Ok(0));
        assert_eq!(blkio("", BlkioFile::Serviced, &mut v), Ok(0));
        // truncated and odd lines name the line
        for (text, want) in [
            (
                "8:0 Read\n",
                "line 1: expected \"major:minor op value\", found \"8:0 Read\"",
            ),
            (
                "Total 0\n8:0",
                "line 2: expected \"major:minor op value\", found \"8:0\"",
            ),
            (
                "8:0 Read 1 2\n",
                "line 1: expected \"major:minor op value\", found \"8:0 Read 1 2\"",
            ),
            ("8:0 Read -1\n", "line 1: expected a number, found \"-1\""),
            (
                "sda Read 1\n",
                "line 1: expected a device major:minor, found \"sda\"",
            ),
        ] {
            assert_eq!(
                blkio(text, BlkioFile::Serviced, &mut v),
                Err(want.to_string()),
                "{text:?}"
            );
        }
    }

    #[test]
    fn psi() {
        let t = "some avg10=0.00 avg60=0.00 avg300=0.00 total=1234\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=56\n";
        assert_eq!(pressure(t), Ok((1234, Some(56))));
        assert_eq!(pressure("some avg10=0 total=5\n"), Ok((5, None)));
        assert!(pressure("some avg10=0.00\n")
            .unwrap_err()
            .contains("total="));
        assert!(pressure("").is_err());
    }

    #[test]
    fn netdev() {
        let t = "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n  eth0: 5000 40 1 2 0 0 0 0 3000 30 3 4 0 0 0 0\n";
        let mut v = Vec::new();
        net_dev(t, &mut v).unwrap();
        assert_eq!(v.len(), 1);
        assert_eq!(
            (v[0].name.as_str(), v[0].rx_bytes, v[0].tx_dropped),
            ("eth0", 5000, 4)
        );
        let e = net_dev(&t[..t.len() - 10], &mut v).unwrap_err();
        assert!(e.contains("eth0"), "{e}");
    }

    #[test]
    fn bad_numbers_name_the_line_and_field() {
        assert_eq!(
            flat_keyed("anon 1\nfile 2x\n", |_, _| {}),
            Err("line 2: file: expected a number, found \"2x\"".to_string())
        );
        assert_eq!(
            io_stat("8:0 rbytes=-1\n", &mut Vec::new()),
            Err("line 1: rbytes: expected a number, found \"-1\"".to_string())
        );
        assert_eq!(
            pressure("some avg10=0.00 total=x\n"),
            Err("line 1: total: expected a number, found \"x\"".to_string())
        );
        let t = "h1\nh2\n  eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 1.5\n";
        assert_eq!(
            net_dev(t, &mut Vec::new()),
            Err("line 3: eth0: expected a number, found \"1.5\"".to_string())
        );
    }

    #[test]
    fn misc() {
        assert_eq!(count_lines("1\n2\n\n"), (2, Some("1")));
        assert_eq!(cpu_list_len("0-3,8,10-11\n"), Ok(7));
        assert!(cpu_list_len("3-1").is_err());
        assert_eq!(
            mem_total("MemTotal:       16384 kB\nMemFree: 1 kB\n"),
            Ok(16 << 20)
        );
        assert!(mem_total("MemFree: 1 kB").is_err());
        assert_eq!(mem_used("MemTotal: 10 kB\nMemFree: 4 kB\n"), Ok(6 << 10));
        assert!(mem_used("MemTotal: 10 kB\n")
            .unwrap_err()
            .contains("MemFree"));
        assert_eq!(clip("ééééééééééééééééééééééééé").len(), 40);
    }
}
