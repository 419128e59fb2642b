//! The `/` page for a person at a browser, and `/debug/config` for one with `curl`.

use crate::build_info::{REVISION, VERSION};
use crate::state::{now_unix, AgentState};
use std::fmt::Write;

/// Renders the HTML status page: modules, config status, links.
pub fn render(state: &AgentState) -> String {
    let cfg = state.config();
    let st = state.status();
    let views = state.supervisor.views();
    let mut h = String::with_capacity(4096);
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>eos-agent on {node}</title>\
<style>body{{font-family:sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}\
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}}\
.up{{color:#080}}.degraded{{color:#b60}}.down{{color:#b00}}.off{{color:#888}}</style></head><body>\
<h1>eos-agent</h1><p>Version {ver} ({rev}) on node <b>{node}</b>, up {up}.</p>",
        node = esc(&cfg.facts().node_name),
        ver = esc(VERSION),
        rev = esc(REVISION),
        up = human_duration(now_unix() - state.started_unix),
    );
    h.push_str("<h2>Modules</h2><table><tr><th>module</th><th>state</th><th>details</th><th>links</th></tr>");
    for v in &views {
        let (class, label) = match (v.enabled, v.up, &v.degraded) {
            (false, _, _) => ("off", "disabled"),
            (true, true, None) => ("up", "up"),
            (true, true, Some(_)) => ("degraded", "degraded"),
            (true, false, _) => ("down", "down"),
        };
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"{class}\">{label}</td><td>",
            esc(v.name)
        );
        if let Some(p) = &v.problem {
            let _ = write!(h, "<div class=\"down\">{}</div>", esc(p));
        }
        if let Some(p) = &v.degraded {
            let _ = write!(h, "<div class=\"degraded\">{}</div>", esc(p));
        }
        for (k, val) in &v.status {
            let _ = write!(h, "<div>{}: {}</div>", esc(k), esc(val));
        }
        h.push_str("</td><td>");
        if v.enabled && v.up {
            let _ = write!(
                h,
                "<a href=\"/debug/{n}/\">/debug/{n}/</a>",
                n = esc(v.name)
            );
            for p in v.paths {
                let _ = write!(h, " <a href=\"{p}\">{p}</a>", p = esc(p));
            }
        }
        h.push_str("</td></tr>");
        // The module's own fragment (graphs), as it is: the module escapes what it puts in.
        let fragment = v
            .enabled
            .then(|| state.supervisor.route(&format!("/debug/{}/", v.name)))
            .flatten()
            .and_then(|(m, _)| m.status_html());
        if let Some(f) = fragment {
            let _ = write!(h, "<tr><td colspan=\"4\">{f}</td></tr>");
        }
    }
    h.push_str("</table><h2>Configuration</h2><table>");
    let _ = write!(
        h,
        "<tr><th>source</th><td>{}</td></tr><tr><th>last reload</th><td class=\"{}\">{}</td></tr>\
<tr><th>last success</th><td>{} ago</td></tr><tr><th>hash</th><td>{:012x}</td></tr>\
<tr><th>listening on</th><td>{}</td></tr>",
        esc(&state.source.describe()),
        if st.successful { "up" } else { "down" },
        match &st.last_error {
            None => "successful".to_string(),
            Some(e) => format!("failed: {}", esc(e)),
        },
        human_duration(now_unix() - st.last_success_unix),
        st.hash,
        state.bound,
    );
    h.push_str(
        "</table><h2>Links</h2><ul><li><a href=\"/metrics\">/metrics</a></li>\
<li><a href=\"/debug/config\">/debug/config</a> (effective config, secrets redacted)</li>\
<li><a href=\"/healthz\">/healthz</a>, <a href=\"/readyz\">/readyz</a></li>\
<li><code>curl -X POST /-/reload</code> reloads the config (with --web.enable-lifecycle; SIGHUP always does)</li></ul></body></html>\n",
    );
    h
}

/// The effective config as YAML that reads back as the same config: every setting after
/// defaults, `${VAR}` expansion and command-line flags. Secrets print as `<secret>`.
pub fn effective_config(state: &AgentState) -> String {
    let cfg = state.config();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# effective config from {}, after defaults, ${{VAR}} and command-line flags",
        state.source.describe()
    );
    if cfg.listen_address != state.listening {
        let _ = writeln!(
            s,
            "# listening on {}: listen_address below takes effect at the next restart",
            state.listening
        );
    }
    if cfg.node_name.is_empty() {
        let _ = writeln!(
            s,
            "# node_name is empty: the host name {} is used",
            cfg.facts().node_name
        );
    }
    match serde_yaml_ng::to_string(&*cfg) {
        Ok(yaml) => s.push_str(&yaml),
        Err(e) => {
            let _ = writeln!(s, "# cannot write the config as YAML: {e}");
        }
    }
    s
}

fn esc(s: &str) -> String {
    eos_module::http::escape_html(s)
}

fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(5.0), "5s");
        assert_eq!(human_duration(125.0), "2m5s");
        assert_eq!(human_duration(7300.0), "2h1m");
        assert_eq!(human_duration(90000.0), "1d1h");
        assert_eq!(human_duration(-1.0), "0s");
    }
}
