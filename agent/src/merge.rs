//! Merging the outputs of a scrape's sources (each module, then the agent's own) into one
//! exposition with every family once. A family two sources wrote (a node textfile that
//! writes `container_*` or `eos_agent_*`, say) is kept from the source whose metric prefix
//! owns the name, or else from the first, and cut from the other, which is counted.

use bytes::Bytes;
use eos_exposition::guard::{duplicates, name_hash};
use eos_exposition::FamilyRecord;

/// One source's part of a scrape: its chunks in order, and where its families start.
pub struct Output {
    pub chunks: Vec<Bytes>,
    pub records: Vec<FamilyRecord>,
    /// The metric prefixes the source owns (`ModuleDef::METRIC_PREFIXES`).
    pub owns: &'static [&'static str],
}

impl Output {
    fn len(&self) -> usize {
        self.chunks.iter().map(Bytes::len).sum()
    }
}

/// The merged chunks, and (source index, family name) of every family cut.
pub fn merge(mut outputs: Vec<Output>) -> (Vec<Bytes>, Vec<(usize, String)>) {
    let record_lists: Vec<&[FamilyRecord]> = outputs.iter().map(|o| &o.records[..]).collect();
    let wins = |hash: u64, newcomer: usize, holder: usize| -> Option<bool> {
        // Only on a clash: read the name back from the newcomer's output.
        let name = name_of(&outputs[newcomer], hash)?;
        let owns = |o: usize| outputs[o].owns.iter().any(|p| name.starts_with(p));
        match (owns(newcomer), owns(holder)) {
            (true, false) => Some(true),
            (false, true) => Some(false),
            _ => None,
        }
    };
    let cuts = duplicates(&record_lists, &wins);
    let mut dropped = Vec::new();
    for &(o, r) in cuts.iter().rev() {
        let out = &outputs[o];
        let start = out.records[r].start;
        let end = out
            .records
            .get(r + 1)
            .map_or_else(|| out.len(), |next| next.start);
        let name = name_of(out, out.records[r].hash).unwrap_or_else(|| "?".into());
        let chunks = std::mem::take(&mut outputs[o].chunks);
        outputs[o].chunks = cut(chunks, start, end);
        dropped.push((o, name));
    }
    dropped.reverse();
    let merged = outputs.into_iter().flat_map(|o| o.chunks).collect();
    (merged, dropped)
}

/// `chunks` without the bytes `start..end` (offsets in their concatenation).
fn cut(chunks: Vec<Bytes>, start: usize, end: usize) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(chunks.len() + 1);
    let mut at = 0;
    for c in chunks {
        let (c_start, c_end) = (at, at + c.len());
        at = c_end;
        if c_end <= start || c_start >= end {
            out.push(c);
            continue;
        }
        if start > c_start {
            out.push(c.slice(..start - c_start));
        }
        if end < c_end {
            out.push(c.slice(end - c_start..));
        }
    }
    out
}

/// The name of the family with this hash in `out`, read from its `# HELP <name> ` line.
fn name_of(out: &Output, hash: u64) -> Option<String> {
    let rec = out.records.iter().find(|r| r.hash == hash)?;
    let head = bytes_at(&out.chunks, rec.start, 512);
    let rest = head.strip_prefix(b"# HELP ")?;
    let end = rest.iter().position(|&b| b == b' ' || b == b'\n')?;
    let name = std::str::from_utf8(&rest[..end]).ok()?;
    // OpenMetrics writes counters without `_total` in the header.
    [name.to_string(), format!("{name}_total")]
        .into_iter()
        .find(|n| name_hash(n) == hash)
}

/// Up to `n` bytes from offset `at` of the chunks' concatenation.
fn bytes_at(chunks: &[Bytes], at: usize, n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n);
    let mut pos = 0;
    for c in chunks {
        let (c_start, c_end) = (pos, pos + c.len());
        pos = c_end;
        if c_end <= at {
            continue;
        }
        let from = at.saturating_sub(c_start);
        let take = (n - out.len()).min(c.len() - from);
        out.extend_from_slice(&c[from..from + take]);
        if out.len() == n {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use eos_exposition::{Encoder, Format, Kind};

    fn output(owns: &'static [&'static str], write: impl FnOnce(&mut Encoder<'_>)) -> Output {
        let mut buf = Vec::new();
        let mut enc = Encoder::new(&mut buf, Format::Text);
        write(&mut enc);
        let (records, _) = enc.finish();
        // Split in two chunks at an odd place, as shared chunks would.
        let b = Bytes::from(buf);
        let mid = b.len() / 3;
        Output {
            chunks: vec![b.slice(..mid), b.slice(mid..)],
            records,
            owns,
        }
    }

    #[test]
    fn a_family_two_sources_write_is_kept_once_by_its_owner() {
        let node = output(&["node_"], |e| {
            e.single("node_load1", "h", Kind::Gauge, &[], 1.0);
            // A textfile writing another module's and the agent's families.
            e.single(
                "container_last_seen",
                "from a textfile",
                Kind::Gauge,
                &[],
                9.0,
            );
            e.single(
                "eos_agent_build_info",
                "from a textfile",
                Kind::Gauge,
                &[],
                9.0,
            );
            e.single("myapp_up", "h", Kind::Gauge, &[], 1.0);
        });
        let containers = output(&["container_"], |e| {
            e.single("container_last_seen", "h", Kind::Gauge, &[("id", "/")], 1.0);
            e.single("myapp_up", "h", Kind::Gauge, &[], 2.0);
        });
        let agent = output(&["eos_agent_"], |e| {
            e.single("eos_agent_build_info", "h", Kind::Gauge, &[], 1.0);
        });
        let (chunks, dropped) = merge(vec![node, containers, agent]);
        let text = String::from_utf8(chunks.concat()).unwrap();
        assert_eq!(
            text,
            "# HELP node_load1 h\n# TYPE node_load1 gauge\nnode_load1 1\n\
             # HELP myapp_up h\n# TYPE myapp_up gauge\nmyapp_up 1\n\
             # HELP container_last_seen h\n# TYPE container_last_seen gauge\ncontainer_last_seen{id=\"/\"} 1\n\
             # HELP eos_agent_build_info h\n# TYPE eos_agent_build_info gauge\neos_agent_build_info 1\n"
        );
        assert_eq!(
            dropped,
            vec![
                (0, "container_last_seen".to_string()),
                (0, "eos_agent_build_info".to_string()),
                (1, "myapp_up".to_string()),
            ]
        );
        assert!(eos_exposition::parse_text(&text).is_ok());
    }

    #[test]
    fn cutting_across_chunks() {
        let c = vec![
            Bytes::from_static(b"abc"),
            Bytes::from_static(b"defg"),
            Bytes::from_static(b"h"),
        ];
        assert_eq!(cut(c.clone(), 2, 5).concat(), b"abfgh");
        assert_eq!(cut(c.clone(), 0, 8).concat(), b"");
        assert_eq!(cut(c.clone(), 3, 7).concat(), b"abch");
        assert_eq!(bytes_at(&c, 2, 4), b"cdef");
        assert_eq!(bytes_at(&c, 7, 10), b"h");
    }
}
