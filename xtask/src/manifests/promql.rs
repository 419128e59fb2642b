//! The metric names a PromQL expression selects, without a full PromQL parser.

use std::collections::BTreeSet;

/// PromQL words that are never metric names, besides [`LABEL_LIST_KEYWORDS`].
const PROMQL_KEYWORDS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "atan2",
    "inf",
    "nan",
    "start",
    "end",
];

/// Words after which a parenthesised list holds label names, not expressions; never metric
/// names either.
const LABEL_LIST_KEYWORDS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names an expression selects: identifiers outside strings, label matchers and
/// ranges that are not functions, keywords or label lists.
pub(super) fn metric_names(promql: &str) -> BTreeSet<String> {
    let b = promql.as_bytes();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let skip_string = |mut i: usize, quote: u8| -> usize {
        i += 1;
        while i < b.len() && b[i] != quote {
            if b[i] == b'\\' && quote != b'`' {
                i += 1;
            }
            i += 1;
        }
        i + 1
    };
    // Index after the bracket matching the opening one at `i` (strings inside skipped).
    let skip_group = |mut i: usize, open: u8, close: u8| -> usize {
        let mut depth = 0usize;
        while i < b.len() {
            match b[i] {
                q @ (b'"' | b'\'' | b'`') => {
                    i = skip_string(i, q);
                    continue;
                }
                c if c == open => depth += 1,
                c if c == close => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return i + 1;
                    }
                }
                _ => {}
            }
            i += 1;
        }
        i
    };
    let next_non_space = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'\'' | b'`' => i = skip_string(i, c),
            b'{' => i = skip_group(i, b'{', b'}'),
            b'[' => i = skip_group(i, b'[', b']'),
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            c if c.is_ascii_digit()
                || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)) =>
            {
                // Numbers and durations (5m, 1e3, 0x1f, 1h30m).
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    i += 1;
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b':' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                let word = &promql[start..i];
                let after = next_non_space(i);
                let lower = word.to_ascii_lowercase();
                if LABEL_LIST_KEYWORDS.contains(&lower.as_str()) {
                    if b.get(after) == Some(&b'(') {
                        i = skip_group(after, b'(', b')');
                    }
                } else if b.get(after) == Some(&b'(') || PROMQL_KEYWORDS.contains(&lower.as_str()) {
                    // A function call or keyword.
                } else {
                    names.insert(word.to_string());
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_skip_functions_labels_strings_and_keywords() {
        let q = r#"(1 - sum without (mode) (rate(node_cpu_seconds_total{job="$job", mode=~"idle|iowait"}[5m])))
/ ignoring(cpu) group_left
  count without (cpu, mode) (node_cpu_seconds_total{mode="idle"}) > bool 0.5e3
or count_values("config_hash", eos_agent_config_hash) offset 1h30m
and on (instance) label_replace(up, "a", "$1", "b", "(.*)") * 8"#;
        let names: Vec<String> = metric_names(q).into_iter().collect();
        assert_eq!(
            names,
            ["eos_agent_config_hash", "node_cpu_seconds_total", "up"]
        );
    }

    #[test]
    fn metric_names_of_odd_input_do_not_panic() {
        for q in [
            "",
            "{",
            "\"unterminated",
            "sum by (",
            "[5m",
            "a{b=\"c\\\"}",
            "`raw",
            "x:y:z 1e",
        ] {
            let _ = metric_names(q);
        }
        assert_eq!(
            metric_names("recorded:rule:name{a=\"}\"}")
                .into_iter()
                .collect::<Vec<_>>(),
            ["recorded:rule:name"]
        );
    }
}
