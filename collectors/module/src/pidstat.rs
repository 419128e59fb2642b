//! `/proc/PID/stat` (and `/proc/PID/task/TID/stat`), parsed once for everyone who reads it:
//! the node module's `processes` collector, the agent's `process_*` self-metrics and the
//! benchmarks' CPU accounting.
//!
//! The command name (field 2) is in parentheses and may itself hold spaces and `)`, so the
//! fields are counted from the last `)`. Field numbers below are those of `proc_pid_stat(5)`.

/// The fields of one `/proc/PID/stat` line that eos reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PidStat<'a> {
    /// Field 3: the state letter (`R`, `S`, `D`, `Z`, `I`, ...).
    pub state: &'a str,
    /// Field 4: the parent's PID.
    pub ppid: u64,
    /// Field 14: user-mode CPU time, in clock ticks.
    pub utime: u64,
    /// Field 15: kernel-mode CPU time, in clock ticks.
    pub stime: u64,
    /// Field 20: the number of threads.
    pub num_threads: u64,
    /// Field 22: when the process started, in clock ticks after boot.
    pub starttime: u64,
    /// Field 23: virtual memory size, in bytes.
    pub vsize: u64,
    /// Field 24: resident set size, in pages.
    pub rss_pages: u64,
}

/// Parses the text of a `/proc/PID/stat` file. The error names the missing or bad field.
pub fn parse(text: &str) -> Result<PidStat<'_>, String> {
    let after = text
        .rfind(')')
        .and_then(|i| text.get(i + 1..))
        .ok_or("no ')' after the command name")?;
    let mut fields = after.split_ascii_whitespace();
    // `after` starts at field 3.
    let mut next_field = 3;
    let mut take = |n: usize| -> Result<&str, String> {
        let skip = n - next_field;
        next_field = n + 1;
        fields
            .nth(skip)
            .ok_or_else(|| format!("the line ends before field {n}"))
    };
    let number = |n: usize, v: &str| -> Result<u64, String> {
        v.parse()
            .map_err(|_| format!("field {n} is {v:?}, not a whole number"))
    };
    let state = take(3)?;
    let ppid = number(4, take(4)?)?;
    let utime = number(14, take(14)?)?;
    let stime = number(15, take(15)?)?;
    let num_threads = number(20, take(20)?)?;
    let starttime = number(22, take(22)?)?;
    let vsize = number(23, take(23)?)?;
    let rss_pages = number(24, take(24)?)?;
    Ok(PidStat {
        state,
        ppid,
        utime,
        stime,
        num_threads,
        starttime,
        vsize,
        rss_pages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIM: &str = "26231 (vim (x) y) R 5392 7446 5392 34835 7446 4218880 32533 309516 26 82 1677 44 158 99 20 0 3 0 82375 56274944 1981 18446744073709551615 4194304 6294284 140736914091744 140736914087944 139965136429984 0 0 12288 1870679807 0 0 0 17 0 0 0 31 0 0 8391624 8481048 16420864 140736914093252 140736914093279 140736914093279 140736914096107 0\n";

    #[test]
    fn parses_a_command_with_spaces_and_parentheses() {
        assert_eq!(
            parse(VIM).unwrap(),
            PidStat {
                state: "R",
                ppid: 5392,
                utime: 1677,
                stime: 44,
                num_threads: 3,
                starttime: 82375,
                vsize: 56274944,
                rss_pages: 1981,
            }
        );
        let odd = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 9000 123456789 2048 18446744073709551615";
        let s = parse(odd).unwrap();
        assert_eq!(
            (s.state, s.utime, s.stime, s.num_threads, s.rss_pages),
            ("S", 250, 50, 7, 2048)
        );
    }

    #[test]
    fn odd_and_truncated_lines_are_errors() {
        assert_eq!(
            parse("1 (init S 0").unwrap_err(),
            "no ')' after the command name"
        );
        assert_eq!(
            parse("1 (init) S 0 1 1").unwrap_err(),
            "the line ends before field 14"
        );
        assert_eq!(parse("").unwrap_err(), "no ')' after the command name");
        assert_eq!(parse("1 (x)").unwrap_err(), "the line ends before field 3");
        let bad = VIM.replace(" 1677 ", " -1 ");
        assert_eq!(
            parse(&bad).unwrap_err(),
            "field 14 is \"-1\", not a whole number"
        );
    }
}
