//! Finds the line of a key path (`modules.node.netdev`) in YAML text, so that problems found
//! after parsing (a section's `validate`, a deprecated key) still point at a line.
//!
//! serde_yaml_ng keeps no positions once a document is deserialised, so this reads the text
//! itself: block mappings by indentation, and the rest of a path inside a flow mapping on the
//! same line (`node: {netdev: {device_include: x}}`). A key that is not in the text (set by a
//! flag, say) has no line.

/// The 1-based line where `path` is written, if it is.
pub fn line_of(text: &str, path: &[&str]) -> Option<usize> {
    if path.is_empty() {
        return None;
    }
    let mut stack: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = strip_comment(raw);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with("---") {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let Some((key, rest)) = split_key(trimmed) else {
            continue;
        };
        while stack.last().is_some_and(|(d, _)| *d >= indent) {
            stack.pop();
        }
        stack.push((indent, key));
        let depth = stack.len();
        if depth > path.len() || stack.iter().zip(path).any(|((_, k), p)| k != p) {
            continue;
        }
        if flow_contains(rest, &path[depth..]) {
            return Some(i + 1);
        }
    }
    None
}

/// A line without its comment (`#` at the start or after a blank, outside quotes).
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double, mut prev) = (false, false, b' ');
    for (i, b) in line.bytes().enumerate() {
        match b {
            b'\'' if !double => single = !single,
            b'"' if !single => double = !double,
            b'#' if !single && !double && (prev == b' ' || prev == b'\t') => return &line[..i],
            _ => {}
        }
        prev = b;
    }
    line
}

/// `key: rest` at the start of a trimmed line, with the key unquoted.
fn split_key(s: &str) -> Option<(String, &str)> {
    let (key, rest) = if let Some(q) = s.strip_prefix('"').or_else(|| s.strip_prefix('\'')) {
        let end = q.find(['"', '\''])?;
        (&q[..end], q[end + 1..].strip_prefix(':')?)
    } else {
        let end = s.find(':')?;
        let key = &s[..end];
        if key.is_empty() || key.contains([' ', '{', '[', ',']) || key.starts_with('-') {
            return None;
        }
        (key, &s[end + 1..])
    };
    (rest.is_empty() || rest.starts_with([' ', '\t'])).then(|| (key.to_string(), rest))
}

/// Whether the remaining keys appear in order as `key:` in a flow mapping on this line.
fn flow_contains(mut rest: &str, keys: &[&str]) -> bool {
    for k in keys {
        let found = rest.match_indices(k).find(|(at, _)| {
            let before = rest[..*at].chars().next_back();
            let after = rest[at + k.len()..].trim_start_matches(['"', '\'']);
            matches!(before, Some('{' | ',' | ' ' | '"' | '\''))
                && after.trim_start().starts_with(':')
        });
        match found {
            Some((at, _)) => rest = &rest[at + k.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
# eos
listen_address: :9100
modules:
  node:
    enabled: true   # on
    netdev:
      device_include: '^eth'
      device_exclude: '^lo$'
  containers: {enabled: true, kubelet: {url: x}}
kubelet:
  url: https://127.0.0.1:10250/pods
";

    #[test]
    fn block_and_flow_paths() {
        assert_eq!(line_of(DOC, &["listen_address"]), Some(2));
        assert_eq!(line_of(DOC, &["modules", "node"]), Some(4));
        assert_eq!(
            line_of(DOC, &["modules", "node", "netdev", "device_exclude"]),
            Some(8)
        );
        assert_eq!(line_of(DOC, &["modules", "containers", "kubelet"]), Some(9));
        assert_eq!(
            line_of(DOC, &["modules", "containers", "kubelet", "url"]),
            Some(9)
        );
        assert_eq!(line_of(DOC, &["kubelet"]), Some(10));
        assert_eq!(line_of(DOC, &["kubelet", "url"]), Some(11));
    }

    #[test]
    fn absent_keys_have_no_line() {
        assert_eq!(line_of(DOC, &["modules", "node", "arp"]), None);
        assert_eq!(line_of(DOC, &["url"]), None, "only at the top level");
        assert_eq!(line_of(DOC, &["modules", "containers", "pod_labels"]), None);
        assert_eq!(line_of(DOC, &[]), None);
        assert_eq!(line_of("", &["a"]), None);
    }

    #[test]
    fn odd_text_does_not_panic() {
        for t in [
            "::",
            "'unterminated: x",
            "- a: 1\n- b",
            "a:\n\tb: 1",
            "é: {ü: 1}",
            "a: {b",
        ] {
            let _ = line_of(t, &["a", "b"]);
            let _ = line_of(t, &["é", "ü"]);
        }
        assert_eq!(line_of("\"q\": {b: 1}\n", &["q", "b"]), Some(1));
    }
}
