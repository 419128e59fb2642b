//! Durations in config files, written the Prometheus way: `15s`, `1m30s`, `500ms`, `2h`.

use serde::de::{self, Deserialize, Deserializer};
use std::fmt;

/// A config duration. Parses `[0-9]+(ms|s|m|h|d|w)` repeated, e.g. `1h30m`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    pub const fn from_secs(s: u64) -> Self {
        Duration(std::time::Duration::from_secs(s))
    }
    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }
    pub fn get(self) -> std::time::Duration {
        self.0
    }
}

impl std::str::FromStr for Duration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || format!("invalid duration {s:?}: use a number with a unit, e.g. 500ms, 15s, 1m30s");
        if s == "0" {
            return Ok(Duration::default());
        }
        let mut rest = s.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        let mut total: u128 = 0;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(bad());
            }
            let n: u128 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let ms_per: u128 = match &rest[..unit_len] {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                "w" => 604_800_000,
                _ => return Err(bad()),
            };
            rest = &rest[unit_len..];
            total = n
                .checked_mul(ms_per)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(bad)?;
        }
        let ms = u64::try_from(total).map_err(|_| bad())?;
        Ok(Duration::from_millis(ms))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms % 1000 != 0 {
            write!(f, "{ms}ms")
        } else {
            write!(f, "{}s", ms / 1000)
        }
    }
}

impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 15s or 1m30s")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Duration, E> {
                s.parse().map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Duration, E> {
                if n == 0 {
                    Ok(Duration::default())
                } else {
                    Err(E::custom(format!(
                        "invalid duration {n}: add a unit, e.g. {n}s"
                    )))
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let ok: &[(&str, u64)] = &[
            ("15s", 15_000),
            ("500ms", 500),
            ("1m30s", 90_000),
            ("2h", 7_200_000),
            ("1d", 86_400_000),
            ("0", 0),
        ];
        for (s, ms) in ok {
            assert_eq!(
                s.parse::<Duration>().unwrap(),
                Duration::from_millis(*ms),
                "{s}"
            );
        }
        for s in [
            "",
            "15",
            "1.5s",
            "s",
            "10x",
            "-1s",
            "99999999999999999999999h",
        ] {
            assert!(s.parse::<Duration>().is_err(), "{s:?} should fail");
        }
    }

    #[test]
    fn from_yaml() {
        let d: Duration = serde_yaml_ng::from_str("90s").unwrap();
        assert_eq!(d, Duration::from_secs(90));
        let e = serde_yaml_ng::from_str::<Duration>("5")
            .unwrap_err()
            .to_string();
        assert!(e.contains("add a unit"), "{e}");
    }
}
