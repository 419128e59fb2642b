//! Calendar arithmetic on the proleptic Gregorian calendar in UTC: dates to days since
//! 1970-01-01 and back (Howard Hinnant's `days_from_civil` and `civil_from_days`), Unix
//! seconds to and from date and time of day, and RFC 3339 timestamps.
//!
//! The functions are pure and total over the values a parser or a clock gives them; the
//! parsers of each format (RFC 3339, HTTP dates, ASN.1 times, `/etc/os-release` dates) stay
//! with their modules and call these for the arithmetic.
//!
//! ```
//! use eos_module::civil;
//!
//! assert_eq!(civil::days_from_civil(2000, 2, 29), 11_016);
//! assert_eq!(civil::civil_from_days(11_016), (2000, 2, 29));
//! assert_eq!(civil::to_unix(1970, 1, 2, 0, 0, 1), 86_401);
//! assert_eq!(civil::utc_parts(-1), (1969, 12, 31, 23, 59, 59));
//! assert!(!civil::is_valid_date(1900, 2, 29));
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

/// Days in 400 Gregorian years, the calendar's full cycle.
const DAYS_PER_ERA: i64 = 146_097;
/// Days from 0000-03-01 (where the algorithm's first March-based era starts) to 1970-01-01.
const EPOCH_SHIFT: i64 = 719_468;
const SECS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 of a date (negative before it).
///
/// `m` is a month in `1..=12`; `d` counts on from the first of the month, so a day past the
/// month's end lands in the next month (`(2001, 2, 29)` is 2001-03-01): check with
/// [`is_valid_date`] first where that must not happen. A month outside `1..=12` gives an
/// unspecified day count. Exact for years within ±10^15.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    // The year starts on March 1st, so that the leap day is the last day of the year.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let mp = (m + 9) % 12; // March is 0
    let doy = (153 * mp + 2) / 5 + d - 1; // [0, 365] for a valid date
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * DAYS_PER_ERA + doe - EPOCH_SHIFT
}

/// The date (year, month `1..=12`, day `1..=31`) that is `days` days after 1970-01-01;
/// the inverse of [`days_from_civil`]. Defined for every `i64`.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    // `days + EPOCH_SHIFT`, split into eras without overflowing at the ends of `i64`.
    let mut era = days.div_euclid(DAYS_PER_ERA);
    let mut doe = days.rem_euclid(DAYS_PER_ERA) + EPOCH_SHIFT;
    era += doe / DAYS_PER_ERA;
    doe %= DAYS_PER_ERA; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March is 0
    let day = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

/// Whether `y-m-d` is a date of the calendar: month `1..=12` and a day that the month has
/// (February 29th only in leap years).
pub fn is_valid_date(y: i64, m: i64, d: i64) -> bool {
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// Unix seconds of a date and time of day in UTC. Unchecked like [`days_from_civil`]: the
/// hour, minute and second are added as they are (a second of 60 is the next minute).
/// Exact for years within ±10^11.
pub fn to_unix(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> i64 {
    days_from_civil(y, mo, d) * SECS_PER_DAY + h * 3600 + mi * 60 + s
}

/// The UTC date and time of day of Unix seconds `secs`: (year, month `1..=12`, day `1..=31`,
/// hour `0..=23`, minute `0..=59`, second `0..=59`); the inverse of [`to_unix`]. Defined for
/// every `i64`.
pub fn utc_parts(secs: i64) -> (i64, u32, u32, u32, u32, u32) {
    let (y, mo, d) = civil_from_days(secs.div_euclid(SECS_PER_DAY));
    let rest = secs.rem_euclid(SECS_PER_DAY) as u32; // [0, 86_399]
    (y, mo, d, rest / 3600, rest % 3600 / 60, rest % 60)
}

/// `t` as an RFC 3339 UTC timestamp with `digits` digits of the second's fraction,
/// truncated: `2025-06-01T03:12:45Z` for 0, `2025-06-01T03:12:45.123Z` for 3 (at most 9).
/// A time before 1970-01-01 (a clock set wrong) is written as the epoch.
pub fn rfc3339(t: SystemTime, digits: u32) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    let (y, mo, d, h, mi, s) = utc_parts(secs);
    let digits = digits.min(9);
    if digits == 0 {
        return format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z");
    }
    let frac = since.subsec_nanos() / 10u32.pow(9 - digits);
    let width = digits as usize;
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:0width$}Z")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    /// Known dates and their days since 1970-01-01 (Python's `datetime.date` for years 1 to
    /// 9999; before year 1 by whole 400-year cycles of 146 097 days).
    const KNOWN: &[((i64, u32, u32), i64)] = &[
        ((1970, 1, 1), 0),
        ((1970, 1, 2), 1),
        ((1969, 12, 31), -1),
        ((1970, 3, 1), 59),
        ((1900, 1, 1), -25_567),
        ((1900, 3, 1), -25_508),
        ((2000, 2, 29), 11_016),
        ((2000, 3, 1), 11_017),
        ((2024, 12, 31), 20_088),
        ((2038, 1, 19), 24_855),
        ((9999, 12, 31), 2_932_896),
        ((10_000, 1, 1), 2_932_897),
        ((1, 1, 1), -719_162),
        ((0, 3, 1), -719_468),
        ((0, 2, 29), -719_469),
        ((-1, 12, 31), -719_529),
        ((-400, 1, 1), -865_625),
    ];

    #[test]
    fn known_dates() {
        for &((y, m, d), days) in KNOWN {
            assert_eq!(
                days_from_civil(y, i64::from(m), i64::from(d)),
                days,
                "{y}-{m}-{d}"
            );
            assert_eq!(civil_from_days(days), (y, m, d), "{days}");
        }
    }

    #[test]
    fn days_roll_over() {
        assert_eq!(days_from_civil(2001, 2, 29), days_from_civil(2001, 3, 1));
        assert_eq!(days_from_civil(2000, 2, 31), days_from_civil(2000, 3, 2));
        assert_eq!(days_from_civil(1970, 1, 0), -1);
    }

    #[test]
    fn ends_of_i64() {
        let (y, m, d) = civil_from_days(i64::MAX);
        assert!(y > 25_000_000_000_000_000 && (1..=12).contains(&m) && (1..=31).contains(&d));
        let (y, m, d) = civil_from_days(i64::MIN);
        assert!(y < -25_000_000_000_000_000 && (1..=12).contains(&m) && (1..=31).contains(&d));
        assert_eq!(utc_parts(i64::MAX).3, 15);
        assert_eq!(utc_parts(i64::MIN).3, 8);
    }

    #[test]
    fn valid_dates() {
        for (y, m, d) in [
            (2000, 2, 29),
            (2024, 2, 29),
            (1970, 1, 1),
            (2023, 4, 30),
            (9999, 12, 31),
            (-4, 2, 29),
        ] {
            assert!(is_valid_date(y, m, d), "{y}-{m}-{d}");
        }
        for (y, m, d) in [
            (1900, 2, 29),
            (2023, 2, 29),
            (2023, 4, 31),
            (2023, 0, 1),
            (2023, 13, 1),
            (2023, 1, 0),
            (2023, 1, 32),
            (2023, -1, 1),
            (-1, 2, 29),
        ] {
            assert!(!is_valid_date(y, m, d), "{y}-{m}-{d}");
        }
    }

    #[test]
    fn seconds_and_parts() {
        assert_eq!(to_unix(1970, 1, 1, 0, 0, 0), 0);
        assert_eq!(to_unix(2025, 6, 1, 3, 12, 45), 1_748_747_565);
        assert_eq!(to_unix(2038, 1, 19, 3, 14, 8), 2_147_483_648);
        assert_eq!(to_unix(1969, 12, 31, 23, 59, 59), -1);
        assert_eq!(to_unix(1950, 1, 1, 0, 0, 0), -631_152_000);
        assert_eq!(to_unix(1970, 1, 1, 0, 0, 60), 60);
        assert_eq!(utc_parts(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(utc_parts(1_748_747_565), (2025, 6, 1, 3, 12, 45));
        assert_eq!(utc_parts(951_868_799), (2000, 2, 29, 23, 59, 59));
        assert_eq!(utc_parts(-1), (1969, 12, 31, 23, 59, 59));
        assert_eq!(utc_parts(-86_400), (1969, 12, 31, 0, 0, 0));
        assert_eq!(utc_parts(253_402_300_799), (9999, 12, 31, 23, 59, 59));
    }

    #[test]
    fn rfc3339_timestamps() {
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        assert_eq!(rfc3339(UNIX_EPOCH, 0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(UNIX_EPOCH, 3), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(at(1_748_747_565_000), 0), "2025-06-01T03:12:45Z");
        assert_eq!(
            rfc3339(at(1_764_480_000_123), 3),
            "2025-11-30T05:20:00.123Z"
        );
        assert_eq!(rfc3339(at(1_764_480_000_999), 0), "2025-11-30T05:20:00Z");
        assert_eq!(rfc3339(at(1_764_480_000_999), 1), "2025-11-30T05:20:00.9Z");
        let t = UNIX_EPOCH + Duration::new(951_782_400, 123_456_789);
        assert_eq!(rfc3339(t, 6), "2000-02-29T00:00:00.123456Z");
        assert_eq!(rfc3339(t, 9), "2000-02-29T00:00:00.123456789Z");
        assert_eq!(rfc3339(t, 12), "2000-02-29T00:00:00.123456789Z");
        let t = UNIX_EPOCH + Duration::new(253_402_300_799, 5_000_000);
        assert_eq!(rfc3339(t, 3), "9999-12-31T23:59:59.005Z");
        let before = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(rfc3339(before, 0), "1970-01-01T00:00:00Z");
    }

    proptest! {
        #![proptest_config(eos_testkit::fuzz::config())]

        #[test]
        fn any_day_is_a_date(days in any::<i64>()) {
            let (y, m, d) = civil_from_days(days);
            prop_assert!(is_valid_date(y, i64::from(m), i64::from(d)));
        }

        #[test]
        fn days_round_trip(days in -400_000_000_000_000i64..400_000_000_000_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert!(is_valid_date(y, i64::from(m), i64::from(d)));
            prop_assert_eq!(days_from_civil(y, i64::from(m), i64::from(d)), days);
            // The next day is the next date.
            let next = civil_from_days(days + 1);
            prop_assert!(next > (y, m, d));
        }

        #[test]
        fn dates_round_trip(y in -1_000_000i64..1_000_000, m in 1i64..=12, d in 1i64..=31) {
            let (by, bm, bd) = civil_from_days(days_from_civil(y, m, d));
            let back = (by, i64::from(bm), i64::from(bd));
            if is_valid_date(y, m, d) {
                prop_assert_eq!(back, (y, m, d));
            } else {
                // A day past the month's end is one of the first days of the next month.
                let next = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
                prop_assert!(d > 28 && (back.0, back.1) == next && back.2 <= 3);
            }
        }

        #[test]
        fn seconds_round_trip(secs in -100_000_000_000_000i64..100_000_000_000_000) {
            let (y, mo, d, h, mi, s) = utc_parts(secs);
            prop_assert!(h < 24 && mi < 60 && s < 60);
            let back = to_unix(
                y,
                i64::from(mo),
                i64::from(d),
                i64::from(h),
                i64::from(mi),
                i64::from(s),
            );
            prop_assert_eq!(back, secs);
        }

        #[test]
        fn rfc3339_round_trip(secs in 0u64..253_402_300_800, nanos in 0u32..1_000_000_000) {
            let s = rfc3339(UNIX_EPOCH + Duration::new(secs, nanos), 9);
            prop_assert_eq!(s.len(), 30);
            let fields = [(0, 4), (5, 7), (8, 10), (11, 13), (14, 16), (17, 19), (20, 29)];
            let n: Vec<i64> = fields.iter().map(|&(a, b)| s[a..b].parse().unwrap_or(-1)).collect();
            let seps: Vec<u8> = [4, 7, 10, 13, 16, 19, 29].map(|i| s.as_bytes()[i]).to_vec();
            prop_assert_eq!(seps, b"--T::.Z".to_vec());
            prop_assert_eq!(to_unix(n[0], n[1], n[2], n[3], n[4], n[5]), secs as i64);
            prop_assert_eq!(n[6], i64::from(nanos));
        }
    }
}
