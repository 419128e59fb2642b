//! What a process has used so far, from `/proc/PID`: CPU time (`utime + stime` of
//! `/proc/PID/stat`, all threads) and resident memory (`VmRSS`, `VmHWM` of `/proc/PID/status`).

/// `utime + stime` of process `pid`, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    parse_stat_cpu_ticks(&text).map_err(|e| format!("parsing {path}: {e}"))
}

/// `utime + stime` of process `pid`, in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64, String> {
    Ok(cpu_ticks(pid)? as f64 / clock_ticks())
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`; 100 on every Linux we run on).
pub fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// `utime + stime` (clock ticks, all threads) from the text of `/proc/PID/stat`.
pub fn parse_stat_cpu_ticks(text: &str) -> Result<u64, String> {
    let stat = eos_module::pidstat::parse(text)?;
    Ok(stat.utime + stat.stime)
}

/// Resident memory of a process, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss: u64,
    /// `VmHWM`: the peak resident size so far.
    pub hwm: u64,
}

/// Resident memory of process `pid`.
pub fn memory(pid: u32) -> Result<Memory, String> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {path}: {e}"))?;
    parse_status_memory(&text).map_err(|e| format!("parsing {path}: {e}"))
}

/// `VmRSS` and `VmHWM` from the text of `/proc/PID/status`.
pub fn parse_status_memory(text: &str) -> Result<Memory, String> {
    let kib = |key: &str| -> Result<u64, String> {
        let (n, line) = text
            .lines()
            .enumerate()
            .find(|(_, l)| l.starts_with(key) && l[key.len()..].starts_with(':'))
            .ok_or_else(|| format!("no {key} line"))?;
        let v = line[key.len() + 1..].trim();
        let num = v
            .strip_suffix("kB")
            .ok_or_else(|| format!("line {}: {key} is {v:?}, not in kB", n + 1))?
            .trim();
        num.parse::<u64>()
            .map(|k| k * 1024)
            .map_err(|_| format!("line {}: {key} is {v:?}", n + 1))
    };
    Ok(Memory {
        rss: kib("VmRSS")?,
        hwm: kib("VmHWM")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_cpu_ticks() {
        let line = "4242 (node exp) worker) S 1 4242 4242 0 -1 4194560 1234 0 0 0 \
                    150 25 0 0 20 0 9 0 100 1000000 2000 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(line), Ok(175));
        assert!(parse_stat_cpu_ticks("4242 (short) S 1 2").is_err());
        assert!(parse_stat_cpu_ticks("no parens at all").is_err());
        let bad = "1 (x) S 1 1 1 0 -1 0 0 0 0 0 ab 25 0";
        assert!(parse_stat_cpu_ticks(bad).unwrap_err().contains("field 14"));
        assert!(parse_stat_cpu_ticks("").is_err());
    }

    #[test]
    fn status_memory() {
        let text = "Name:\tx\nVmPeak:\t  900 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\n";
        assert_eq!(
            parse_status_memory(text),
            Ok(Memory {
                rss: 1024 * 1024,
                hwm: 2048 * 1024
            })
        );
        assert!(parse_status_memory("Name:\tx\nVmRSS:\t1 kB\n")
            .unwrap_err()
            .contains("VmHWM"));
        assert!(parse_status_memory("VmRSS:\t1 MB\nVmHWM:\t1 kB\n")
            .unwrap_err()
            .contains("line 1"));
        assert!(parse_status_memory("VmRSSx:\t1 kB\nVmHWM:\t1 kB\n").is_err());
    }

    #[test]
    fn this_process() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).unwrap() >= 0.0);
        let m = memory(pid).unwrap();
        assert!(m.rss > 0 && m.hwm >= m.rss, "{m:?}");
        assert!(cpu_ticks(u32::MAX)
            .unwrap_err()
            .contains("/proc/4294967295/stat"));
    }
}
