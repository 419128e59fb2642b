//! Smoke graphs as inline SVG: no script, no stylesheet, no external asset, so the status
//! page shows them as they are.
//!
//! One graph per target, one column per [`history`](crate::history) bucket, oldest on the
//! left: the RTT distribution of the bucket as three nested shades (min–max, 10–90 %,
//! 25–75 %), the median as a short bar coloured by the bucket's loss, and under the plot a
//! strip marking loss in the same colours. Coordinates inside the plot are in column units
//! (a `scale` transform), which keeps a 180-column graph around 15 KB.
//!
//! Text that comes from outside (host names, addresses, label values) is escaped with
//! [`escape`].

use crate::history::Column;
use std::fmt::Write as _;
use std::time::Duration;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 140.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 8.0;
const PLOT_H: f64 = 96.0;
const BOTTOM: f64 = TOP + PLOT_H;
const STRIP_Y: f64 = BOTTOM + 4.0;
const STRIP_H: f64 = 8.0;
const LABEL_Y: f64 = STRIP_Y + STRIP_H + 12.0;

/// Fill colours of the three shades, outermost first.
const SHADES: [&str; 3] = ["#e4e4e4", "#c2c2c2", "#9a9a9a"];

/// Loss classes: upper bound of the loss ratio and colour.
const LOSS_CLASSES: [(f64, &str, &str); 5] = [
    (0.0, "#0a8a0a", "0"),
    (0.05, "#1e88e5", "≤5 %"),
    (0.20, "#8e24aa", "≤20 %"),
    (0.50, "#f57c00", "≤50 %"),
    (1.0, "#d50000", ">50 %"),
];

fn loss_class(loss: f64) -> usize {
    LOSS_CLASSES
        .iter()
        .position(|(max, _, _)| loss <= *max)
        .unwrap_or(LOSS_CLASSES.len() - 1)
}

pub use eos_module::http::escape_html as escape;

/// The graph's upper RTT and the step between grid lines, in seconds: a round step
/// (1, 2 or 5 times a power of ten) with at most four of them covering `max`.
pub fn y_scale(max: f64) -> (f64, f64) {
    let max = if max.is_finite() && max > 0.0 {
        max
    } else {
        0.001
    };
    let rough = max / 4.0;
    let pow = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * pow)
        .find(|s| *s >= rough * (1.0 - 1e-9))
        .unwrap_or(10.0 * pow);
    let top = (max / step).ceil().max(1.0) * step;
    (top, step)
}

/// An RTT for an axis label: `250 µs`, `1.5 ms`, `20 ms`, `1.2 s`.
pub fn rtt_label(s: f64) -> String {
    if s == 0.0 {
        "0".into()
    } else if s < 0.001 {
        format!("{} µs", trim(s * 1e6))
    } else if s < 1.0 {
        format!("{} ms", trim(s * 1e3))
    } else {
        format!("{} s", trim(s))
    }
}

/// A number with up to 3 decimals, trailing zeros dropped.
fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// A time span for an axis label: `-3h`, `-30m`, `-45s`.
fn ago_label(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        "now".into()
    } else if s % 86_400 == 0 {
        format!("-{}d", s / 86_400)
    } else if s % 3600 == 0 {
        format!("-{}h", s / 3600)
    } else if s % 60 == 0 {
        format!("-{}m", s / 60)
    } else {
        format!("-{s}s")
    }
}

/// The step between time ticks: the smallest round span giving at most 6 ticks.
fn tick_step(span: Duration) -> Duration {
    const STEPS: [u64; 15] = [
        1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 86_400,
    ];
    let secs = span.as_secs_f64();
    let s = STEPS
        .iter()
        .copied()
        .find(|s| secs / *s as f64 <= 6.0)
        .unwrap_or(86_400);
    Duration::from_secs(s)
}

/// One smoke graph. `columns` run from oldest to newest (the last one is now), each
/// `width` of time; `title` is plain text (escaped here).
pub fn graph(title: &str, columns: &[Option<Column>], width: Duration) -> String {
    let n = columns.len().max(1);
    let col_w = (WIDTH - LEFT - RIGHT) / n as f64;
    let max = columns
        .iter()
        .flatten()
        .filter(|c| c.has_rtt())
        .map(|c| f64::from(c.q[5]))
        .fold(0.0f64, f64::max);
    let (top, step) = y_scale(max);
    let y = |v: f32| -> f64 {
        let v = f64::from(v).clamp(0.0, top);
        ((BOTTOM - v / top * PLOT_H) * 10.0).round() / 10.0
    };
    let mut s = String::with_capacity(16 * 1024);
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"10\" role=\"img\">\
<title>{}</title><rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{}\" height=\"{PLOT_H}\" fill=\"#fff\" stroke=\"#999\"/>",
        escape(title),
        WIDTH - LEFT - RIGHT,
    );
    // grid lines and RTT labels
    let mut grid = String::new();
    let mut v = 0.0;
    let mut labels = String::new();
    while v <= top * (1.0 + 1e-9) {
        let gy = ((BOTTOM - v / top * PLOT_H) * 10.0).round() / 10.0;
        if v > 0.0 {
            let _ = write!(grid, "M{LEFT} {gy}H{}", WIDTH - RIGHT);
        }
        let _ = write!(
            labels,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            LEFT - 4.0,
            gy + 3.5,
            escape(&rtt_label(v))
        );
        v += step;
    }
    if !grid.is_empty() {
        let _ = write!(s, "<path d=\"{grid}\" stroke=\"#eee\"/>");
    }
    s.push_str(&labels);
    // the smoke, the medians and the loss strip, in column units
    let _ = write!(
        s,
        "<g transform=\"translate({LEFT} 0) scale({} 1)\">",
        (col_w * 1000.0).round() / 1000.0
    );
    let mut shades: [String; 3] = Default::default();
    let mut medians: [String; 5] = Default::default();
    let mut losses: [String; 5] = Default::default();
    for (i, c) in columns.iter().enumerate() {
        let Some(c) = c else { continue };
        let class = loss_class(c.loss());
        if c.lost > 0 {
            let _ = write!(losses[class], "M{i} {STRIP_Y}h1v{STRIP_H}h-1Z");
        }
        if !c.has_rtt() {
            continue;
        }
        for (k, (lo, hi)) in [(0, 6), (1, 5), (2, 4)].into_iter().enumerate() {
            let (ylo, yhi) = (y(c.q[lo]), y(c.q[hi]));
            let _ = write!(shades[k], "M{i} {yhi}V{ylo}h1V{yhi}Z");
        }
        let m = y(c.q[3]);
        let _ = write!(
            medians[class],
            "M{i} {}h1v2h-1Z",
            ((m - 1.0) * 10.0).round() / 10.0
        );
    }
    for (d, fill) in shades.iter().zip(SHADES) {
        if !d.is_empty() {
            let _ = write!(s, "<path fill=\"{fill}\" d=\"{d}\"/>");
        }
    }
    for (k, d) in medians.iter().enumerate().chain(losses.iter().enumerate()) {
        if !d.is_empty() {
            let _ = write!(s, "<path fill=\"{}\" d=\"{d}\"/>", LOSS_CLASSES[k].1);
        }
    }
    s.push_str("</g>");
    // time ticks, from the right edge (now) back
    let span = width * n as u32;
    let tick = tick_step(span);
    let mut back = Duration::ZERO;
    // (a span of 180 columns of a third of a second can come out a nanosecond short)
    while back <= span + Duration::from_millis(1) {
        let cols = back.as_secs_f64() / width.as_secs_f64().max(1e-9);
        let x = (((WIDTH - RIGHT - cols * col_w) * 10.0).round() / 10.0).max(LEFT);
        let anchor = if back.is_zero() { "end" } else { "middle" };
        let _ = write!(
            s,
            "<path d=\"M{x} {BOTTOM}v3\" stroke=\"#999\"/><text x=\"{x}\" y=\"{LABEL_Y}\" text-anchor=\"{anchor}\">{}</text>",
            ago_label(back)
        );
        back += tick;
    }
    s.push_str("</svg>");
    s
}

/// The key to the colours, once per page.
pub fn legend() -> String {
    let mut s = String::from("<div style=\"font-size:smaller\">median RTT coloured by loss (");
    for (i, (_, color, label)) in LOSS_CLASSES.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(
            s,
            "<span style=\"color:{color}\">■ {}</span>",
            escape(label)
        );
    }
    s.push_str(
        "); shades: min–max, 10–90 %, 25–75 % of the RTTs; loss also marked under the plot</div>",
    );
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Checks that `s` is well-formed XML as far as a graph goes: tags nest and close,
    /// attribute values are quoted, text has no raw `<` or `&` that is not an entity, and
    /// nothing executable is there. Returns the element names seen.
    pub(crate) fn check_xml(s: &str) -> Result<Vec<String>, String> {
        let mut stack: Vec<String> = Vec::new();
        let mut seen = Vec::new();
        let mut rest = s;
        let lower = s.to_ascii_lowercase();
        for bad in [
            "<script",
            "javascript:",
            " onload",
            " onclick",
            "<foreignobject",
            "<image",
            "url(",
        ] {
            if lower.contains(bad) {
                return Err(format!("contains {bad}"));
            }
        }
        // links only to the agent's own pages
        if lower
            .match_indices("href=\"")
            .any(|(i, m)| !lower[i + m.len()..].starts_with('/'))
        {
            return Err("a link off the agent".into());
        }
        while let Some(i) = rest.find('<') {
            check_text(&rest[..i])?;
            let end = rest[i..]
                .find('>')
                .ok_or_else(|| format!("unclosed tag at {:?}", &rest[i..i.min(rest.len())]))?;
            let tag = &rest[i + 1..i + end];
            rest = &rest[i + end + 1..];
            if let Some(name) = tag.strip_prefix('/') {
                match stack.pop() {
                    Some(open) if open == name => {}
                    other => return Err(format!("</{name}> closes {other:?}")),
                }
                continue;
            }
            let self_closing = tag.ends_with('/');
            let body = tag.trim_end_matches('/');
            let name: String = body.chars().take_while(|c| !c.is_whitespace()).collect();
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(format!("bad tag name in <{tag}>"));
            }
            check_attrs(&body[name.len()..])?;
            seen.push(name.clone());
            if !self_closing {
                stack.push(name);
            }
        }
        check_text(rest)?;
        if !stack.is_empty() {
            return Err(format!("unclosed: {stack:?}"));
        }
        Ok(seen)
    }

    fn check_text(t: &str) -> Result<(), String> {
        let mut rest = t;
        while let Some(i) = rest.find('&') {
            let semi = rest[i..].find(';').ok_or("a bare &")?;
            let ent = &rest[i + 1..i + semi];
            let known = ["lt", "gt", "amp", "quot", "#39"];
            if !known.contains(&ent) {
                return Err(format!("unknown entity &{ent};"));
            }
            rest = &rest[i + semi + 1..];
        }
        if t.contains('>') {
            return Err(format!("a raw > in text {t:?}"));
        }
        Ok(())
    }

    fn check_attrs(mut a: &str) -> Result<(), String> {
        loop {
            a = a.trim_start();
            if a.is_empty() {
                return Ok(());
            }
            let eq = a
                .find('=')
                .ok_or_else(|| format!("attribute without value: {a:?}"))?;
            let name = &a[..eq];
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ':')
            {
                return Err(format!("bad attribute name {name:?}"));
            }
            let v = a[eq + 1..]
                .strip_prefix('"')
                .ok_or_else(|| format!("unquoted value of {name}"))?;
            let close = v
                .find('"')
                .ok_or_else(|| format!("unclosed value of {name}"))?;
            check_text(&v[..close])?;
            if v[..close].contains('<') {
                return Err(format!("< in the value of {name}"));
            }
            a = &v[close + 1..];
        }
    }

    fn col(sent: u16, lost: u16, ms: [f32; 7]) -> Option<Column> {
        Some(Column {
            sent,
            lost,
            q: ms.map(|v| v / 1000.0),
        })
    }

    #[test]
    fn y_scales_are_round() {
        assert_eq!(y_scale(0.0009), (0.001, 0.0005));
        let (top, step) = y_scale(0.012);
        assert!((top - 0.015).abs() < 1e-12 && (step - 0.005).abs() < 1e-12);
        let (top, step) = y_scale(0.02);
        assert!((top - 0.02).abs() < 1e-12 && (step - 0.005).abs() < 1e-12);
        assert_eq!(y_scale(0.0).0, 0.001);
        assert_eq!(y_scale(f64::NAN).0, 0.001);
        let (top, step) = y_scale(3.7);
        assert!((top - 4.0).abs() < 1e-9 && (step - 1.0).abs() < 1e-9);
    }

    #[test]
    fn labels() {
        assert_eq!(rtt_label(0.0), "0");
        assert_eq!(rtt_label(0.00025), "250 µs");
        assert_eq!(rtt_label(0.0015), "1.5 ms");
        assert_eq!(rtt_label(0.02), "20 ms");
        assert_eq!(rtt_label(1.25), "1.25 s");
        assert_eq!(ago_label(Duration::from_secs(10_800)), "-3h");
        assert_eq!(ago_label(Duration::from_secs(1800)), "-30m");
        assert_eq!(ago_label(Duration::ZERO), "now");
        assert_eq!(
            tick_step(Duration::from_secs(10_800)),
            Duration::from_secs(1800)
        );
        assert_eq!(tick_step(Duration::from_secs(60)), Duration::from_secs(10));
        assert_eq!(escape("<a&\"'>"), "&lt;a&amp;&quot;&#39;&gt;");
    }

    #[test]
    fn a_full_graph_is_valid_and_bounded() {
        // 180 columns with every shade, every loss class and a few gaps
        let columns: Vec<Option<Column>> = (0..180u16)
            .map(|i| {
                if i % 37 == 5 {
                    return None;
                }
                let base = 10.0 + f32::from(i % 13) * 1.7;
                col(
                    60,
                    [0, 1, 6, 20, 60][usize::from(i % 5)],
                    [
                        base - 2.0,
                        base - 1.0,
                        base - 0.5,
                        base,
                        base + 0.5,
                        base + 3.0,
                        base + 40.0,
                    ],
                )
            })
            .collect();
        let svg = graph("<gw> & \"friends\"", &columns, Duration::from_secs(60));
        let tags = check_xml(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
        assert_eq!(tags[0], "svg");
        assert!(svg.contains("&lt;gw&gt; &amp; &quot;friends&quot;"));
        assert!(!svg.contains("<gw>"));
        assert!(svg.len() < 20 * 1024, "{} bytes", svg.len());
        for (_, color, _) in LOSS_CLASSES {
            assert!(svg.contains(color), "{color} drawn");
        }
        assert!(
            svg.contains(">-3h</text>") && svg.contains(">now</text>"),
            "{svg}"
        );
        // medians above 25 ms: the scale covers the p90s (up to 33.4 ms)
        assert!(svg.contains(">40 ms</text>"), "{svg}");
        check_xml(&legend()).unwrap();
    }

    #[test]
    fn the_oldest_tick_is_labelled() {
        // 5 minutes in 180 columns of 1.666... s
        let width = Duration::from_secs(300) / 180;
        let svg = graph("x", &vec![None; 180], width);
        assert!(svg.contains(">-5m</text>"), "{svg}");
        assert!(svg.contains(&format!("<text x=\"{LEFT}\"")), "{svg}");
    }

    #[test]
    fn empty_and_lossy_graphs() {
        let svg = graph("x", &[], Duration::from_secs(60));
        check_xml(&svg).unwrap();
        let all_lost = vec![col(60, 60, [0.0; 7]); 10];
        let svg = graph("x", &all_lost, Duration::from_secs(60));
        check_xml(&svg).unwrap();
        assert!(svg.contains(LOSS_CLASSES[4].1), "loss strip drawn");
        assert!(!svg.contains(SHADES[0]), "no smoke without replies");
    }

    #[test]
    fn medians_sit_at_their_height() {
        // one column, median 5 ms on a 0..10 ms scale (p90 8 ms → top 10 ms): halfway up
        let c = vec![col(20, 0, [1.0, 2.0, 4.0, 5.0, 6.0, 8.0, 9.0])];
        let svg = graph("x", &c, Duration::from_secs(60));
        let mid = BOTTOM - PLOT_H / 2.0;
        assert!(svg.contains(&format!("M0 {}h1v2h-1Z", mid - 1.0)), "{svg}");
    }

    #[test]
    fn the_checker_catches_broken_markup() {
        assert!(check_xml("<svg><g></svg>").is_err());
        assert!(check_xml("<svg a=b></svg>").is_err());
        assert!(check_xml("<svg>a & b</svg>").is_err());
        assert!(check_xml("<svg><script>x</script></svg>").is_err());
        assert!(check_xml("<a href=\"http://x\">x</a>").is_err());
        assert!(check_xml("<a href=\"/debug/\">x</a>").is_ok());
        assert!(check_xml("<svg a=\"1\"><g/></svg>").is_ok());
    }
}
