//! A small parser for the text format, used by tests and tools that compare two expositions
//! (ours against the tool we replace). It is strict enough to catch malformed output.

use std::collections::BTreeMap;

/// One sample line of a text exposition.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedSample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The parsed exposition: samples in order and the declared `# TYPE` per family.
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    pub samples: Vec<ParsedSample>,
    pub types: BTreeMap<String, String>,
    pub help: BTreeMap<String, String>,
}

/// Parses text format 0.0.4 (and the sample lines of OpenMetrics). Errors name the line.
pub fn parse_text(text: &str) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.splitn(2, ' ');
            let (Some(n), Some(t)) = (it.next(), it.next()) else {
                return Err(format!("line {lineno}: malformed TYPE: {line}"));
            };
            out.types.insert(n.to_string(), t.to_string());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let mut it = rest.splitn(2, ' ');
            let n = it.next().unwrap_or_default();
            out.help
                .insert(n.to_string(), it.next().unwrap_or_default().to_string());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        out.samples
            .push(parse_sample(line).map_err(|e| format!("line {lineno}: {e}: {line}"))?);
    }
    Ok(out)
}

fn parse_sample(line: &str) -> Result<ParsedSample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| "no value".to_string())?;
    let name = &line[..name_end];
    if !crate::is_valid_name(name) {
        return Err(format!("invalid metric name {name:?}"));
    }
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(r) = rest.strip_prefix('{') {
        let mut r = r;
        loop {
            r = r.trim_start_matches(',');
            if let Some(after) = r.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = r.find('=').ok_or("label without '='")?;
            let key = &r[..eq];
            r = r[eq + 1..]
                .strip_prefix('"')
                .ok_or("label value not quoted")?;
            let mut val = String::new();
            let mut chars = r.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, 'n')) => val.push('\n'),
                        Some((_, c)) => val.push(c),
                        None => return Err("dangling escape".into()),
                    },
                    Some((i, '"')) => break i,
                    Some((_, c)) => val.push(c),
                    None => return Err("unterminated label value".into()),
                }
            };
            if labels.insert(key.to_string(), val).is_some() {
                return Err(format!("duplicate label {key}"));
            }
            r = &r[end + 1..];
        }
    }
    let mut parts = rest.split_whitespace();
    let v = parts.next().ok_or("no value")?;
    let value = match v {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        _ => v.parse().map_err(|_| format!("bad value {v:?}"))?,
    };
    Ok(ParsedSample {
        name: name.to_string(),
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let p =
            parse_text("# HELP a x\n# TYPE a gauge\na{b=\"c\\\"d\",e=\"\"} 1.5\na 2 123\nc +Inf\n")
                .unwrap();
        assert_eq!(p.samples.len(), 3);
        assert_eq!(p.samples[0].labels["b"], "c\"d");
        assert_eq!(p.types["a"], "gauge");
        assert!(p.samples[2].value.is_infinite());
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse_text("a 1\nb{x=\"1} 2\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
    }
}
