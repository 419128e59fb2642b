//! RFC 3339 timestamps as container runtimes write them (`2026-11-30T04:56:39.123456789Z`,
//! or with an offset such as `+01:00`), to seconds and nanoseconds since the Unix epoch.

use eos_module::civil;

/// A point in time: seconds since the epoch and nanoseconds (0..1e9).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    pub seconds: i64,
    pub nanos: u32,
}

/// Parses an RFC 3339 timestamp; `None` when it is not one.
pub fn parse_rfc3339(s: &[u8]) -> Option<Timestamp> {
    // YYYY-MM-DDTHH:MM:SS
    if s.len() < 20 || s[4] != b'-' || s[7] != b'-' || !matches!(s[10], b'T' | b't' | b' ') {
        return None;
    }
    if s[13] != b':' || s[16] != b':' {
        return None;
    }
    let num = |a: usize, b: usize| -> Option<i64> {
        let mut v = 0i64;
        for &c in s.get(a..b)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !civil::is_valid_date(year, month, day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos: u32 = 0;
    if let Some(frac) = rest.strip_prefix(b".") {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        for (i, &c) in frac[..digits].iter().enumerate() {
            if i < 9 {
                nanos = nanos * 10 + u32::from(c - b'0');
            }
        }
        for _ in digits..9 {
            nanos *= 10;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let d = |c: u8| c.is_ascii_digit().then(|| i64::from(c - b'0'));
            let mins = (d(*h1)? * 10 + d(*h2)?) * 60 + d(*m1)? * 10 + d(*m2)?;
            if *sign == b'+' {
                mins * 60
            } else {
                -mins * 60
            }
        }
        _ => return None,
    };
    let seconds = civil::to_unix(year, month, day, hour, minute, second.min(59)) - offset;
    Some(Timestamp { seconds, nanos })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Option<(i64, u32)> {
        parse_rfc3339(s.as_bytes()).map(|t| (t.seconds, t.nanos))
    }

    #[test]
    fn runtime_timestamps() {
        assert_eq!(t("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(
            t("2026-11-30T04:56:39.123456789Z"),
            Some((1_796_014_599, 123_456_789))
        );
        assert_eq!(
            t("2026-11-30T04:56:39.5Z"),
            Some((1_796_014_599, 500_000_000))
        );
        assert_eq!(
            t("2026-11-30T05:56:39.000000001+01:00"),
            Some((1_796_014_599, 1))
        );
        // More than nine digits: the rest is cut, as Go's parser does.
        assert_eq!(
            t("2000-02-29T00:00:00.1234567891Z"),
            Some((951_782_400, 123_456_789))
        );
        assert_eq!(t("1969-12-31T23:59:59Z"), Some((-1, 0)));
    }

    #[test]
    fn not_timestamps() {
        for bad in [
            "",
            "2026-11-30",
            "2026-13-01T00:00:00Z",
            "2026-02-30T00:00:00Z",
            "2026-11-30T24:00:00Z",
            "2026-11-30T04:56:39",
            "2026-11-30T04:56:39.Z",
            "2026-11-30T04:56:39+0100",
            "20x6-11-30T04:56:39Z",
            "2026-11-30T04:56:39Zjunk",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }
}
