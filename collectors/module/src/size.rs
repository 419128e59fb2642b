//! Sizes in bytes as config files give them: a whole number, or a number with a unit.

use serde::de::{self, Deserializer};
use serde::Deserialize;

/// A size in bytes: a whole number, optionally with a unit (`kB`, `MB`, `GB` are powers of
/// 1000, `KiB`, `MiB`, `GiB` of 1024), e.g. `16MiB`.
pub fn parse_byte_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let invalid = || {
        format!("invalid size {s:?}: expected bytes, or a number with kB, MB, GB, KiB, MiB or GiB")
    };
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(digits);
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "kB" | "KB" => 1000,
        "MB" => 1000 * 1000,
        "GB" => 1000 * 1000 * 1000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(invalid()),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(invalid)
}

/// Deserializes a size given as a number of bytes or as text with a unit; use with
/// `#[serde(deserialize_with = "eos_module::size::byte_size")]`.
pub fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match Size::deserialize(d)? {
        Size::Bytes(n) => Ok(n),
        Size::Text(s) => parse_byte_size(&s).map_err(de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_byte_size;

    #[test]
    fn sizes() {
        for (size, bytes) in [
            ("0", 0),
            ("17", 17),
            ("1KiB", 1024),
            ("3 GB", 3_000_000_000),
            ("1MiB", 1 << 20),
        ] {
            assert_eq!(parse_byte_size(size), Ok(bytes), "{size}");
        }
        assert!(parse_byte_size("-1").is_err());
        assert!(parse_byte_size("99999999999GiB").is_err());
        assert!(parse_byte_size("12 parsecs").is_err());
    }
}
