//! Float formatting that matches Go's `strconv.FormatFloat(v, 'g', -1, 64)`, which is what
//! the Go Prometheus client (and so node_exporter) writes.

use std::io::Write;

/// Appends `v` the way the Go client prints it: shortest round-trip digits, `%e` form when
/// the decimal exponent is below -4 or at least 6, `+Inf`, `-Inf` and `NaN` for specials.
pub fn write_go_float(buf: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        buf.extend_from_slice(b"NaN");
        return;
    }
    if v.is_infinite() {
        buf.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
        return;
    }
    // Fast path: small integers, the most common value in an exposition.
    if v.fract() == 0.0 && v.abs() < 1e6 {
        if v == 0.0 && v.is_sign_negative() {
            buf.extend_from_slice(b"-0");
        } else {
            let _ = write!(buf, "{}", v as i64);
        }
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits, e.g. "2.5220907008e10".
    let mut tmp = [0u8; 40];
    let len = {
        let mut cursor = std::io::Cursor::new(&mut tmp[..]);
        let _ = write!(cursor, "{v:e}");
        cursor.position() as usize
    };
    let s = &tmp[..len];
    let (neg, s) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let epos = s.iter().position(|&b| b == b'e').unwrap_or(s.len());
    let (mant, exp_part) = s.split_at(epos);
    let exp: i32 = std::str::from_utf8(exp_part.get(1..).unwrap_or(b"0"))
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    let mut digits = [0u8; 24];
    let mut nd = 0;
    for &b in mant {
        if b.is_ascii_digit() && nd < digits.len() {
            digits[nd] = b;
            nd += 1;
        }
    }
    let digits = &digits[..nd];
    if neg {
        buf.push(b'-');
    }
    if !(-4..6).contains(&exp) {
        buf.push(digits[0]);
        if digits.len() > 1 {
            buf.push(b'.');
            buf.extend_from_slice(&digits[1..]);
        }
        buf.push(b'e');
        buf.push(if exp < 0 { b'-' } else { b'+' });
        let _ = write!(buf, "{:02}", exp.abs());
    } else if exp < 0 {
        buf.extend_from_slice(b"0.");
        for _ in 0..(-exp - 1) {
            buf.push(b'0');
        }
        buf.extend_from_slice(digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            buf.extend_from_slice(digits);
            for _ in digits.len()..int_len {
                buf.push(b'0');
            }
        } else {
            buf.extend_from_slice(&digits[..int_len]);
            buf.push(b'.');
            buf.extend_from_slice(&digits[int_len..]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64) -> String {
        let mut b = Vec::new();
        write_go_float(&mut b, v);
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn matches_go() {
        // Expected strings are what Go's strconv.FormatFloat(v, 'g', -1, 64) prints.
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (1.0, "1"),
            (-3.0, "-3"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (2.5220907008e10, "2.5220907008e+10"),
            (0.25, "0.25"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (123.456, "123.456"),
            (999999.5, "999999.5"),
            (1.7e308, "1.7e+308"),
            (-0.5, "-0.5"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ];
        for (v, want) in cases {
            assert_eq!(f(*v), *want, "formatting {v}");
        }
    }
}
