//! A regular expression from the config: compiled once, kept with its source text, matched
//! unanchored like Go's `regexp.MatchString` (node_exporter's defaults carry their own `^...$`).

use regex::Regex;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// A regular expression from the config, kept with its source text (for `Debug` and
/// equality). Matching is unanchored, like Go's `regexp.MatchString`.
#[derive(Clone)]
pub struct Pattern {
    src: String,
    re: Regex,
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Pattern {
    /// Compiles `src`; the error says what is wrong with it.
    pub fn new(src: &str) -> Result<Self, String> {
        let re = Regex::new(src).map_err(|e| {
            // The syntax error's Display draws a caret under the pattern over several lines;
            // keep its last line, the reason, so the message fits on the `file:line:` line.
            let msg = e.to_string();
            let reason = msg
                .lines()
                .last()
                .unwrap_or("")
                .trim_start_matches("error: ");
            format!("invalid regex {src:?}: {reason}")
        })?;
        Ok(Pattern {
            src: src.to_string(),
            re,
        })
    }

    /// Compiles one of our own constant default patterns (each collector's tests check its defaults).
    pub(crate) fn new_static(src: &'static str) -> Self {
        #[allow(clippy::expect_used)]
        Pattern::new(src).expect("built-in default pattern compiles")
    }

    /// Whether the pattern matches anywhere in `s`.
    pub fn is_match(&self, s: &str) -> bool {
        self.re.is_match(s)
    }

    /// The source text.
    pub fn as_str(&self) -> &str {
        &self.src
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.src == other.src
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.src, f)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Pattern::new(&s).map_err(de::Error::custom)
    }
}
