//! What one probe reports: families created as the prober goes, like a Go
//! `prometheus.Registry` made per probe in blackbox_exporter, written sorted by name (and
//! each family's series by label values) as Go's registry gathers them.

use eos_exposition::{Encoder, Kind};

/// One family.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    /// (labels in name order, value).
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

/// The families of one probe.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Registry {
    families: Vec<Family>,
}

impl Registry {
    pub fn new() -> Self {
        Registry::default()
    }

    fn family(&mut self, name: &'static str, help: &'static str, kind: Kind) -> &mut Family {
        let at = match self.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.families.push(Family {
                    name,
                    help,
                    kind,
                    samples: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        &mut self.families[at]
    }

    /// Sets an unlabelled gauge.
    pub fn gauge(&mut self, name: &'static str, help: &'static str, value: f64) {
        let f = self.family(name, help, Kind::Gauge);
        f.samples.clear();
        f.samples.push((Vec::new(), value));
    }

    /// Sets the series of a labelled gauge with these labels (replacing the same labels).
    pub fn gauge_with(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        value: f64,
    ) {
        let mut l: Vec<(&'static str, String)> =
            labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        l.sort_by(|a, b| a.0.cmp(b.0));
        let f = self.family(name, help, Kind::Gauge);
        match f.samples.iter_mut().find(|(have, _)| *have == l) {
            Some(s) => s.1 = value,
            None => f.samples.push((l, value)),
        }
    }

    /// Adds to a labelled gauge (as Go's `GaugeVec.WithLabelValues(...).Add`).
    pub fn gauge_add(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        delta: f64,
    ) {
        let now = self.value(name, labels).unwrap_or(0.0);
        self.gauge_with(name, help, labels, now + delta);
    }

    /// Declares a labelled family with no series yet (Go registers vectors up front; an empty
    /// vector writes nothing, so this only keeps the order of creation).
    pub fn declare(&mut self, name: &'static str, help: &'static str) {
        self.family(name, help, Kind::Gauge);
    }

    /// The value of one series, for tests and for probers that read back.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let f = self.families.iter().find(|f| f.name == name)?;
        f.samples
            .iter()
            .find(|(l, _)| {
                l.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|(_, v)| *v)
    }

    /// Families with at least one series, in creation order.
    pub fn families(&self) -> impl Iterator<Item = &Family> {
        self.families.iter().filter(|f| !f.samples.is_empty())
    }

    /// Family names, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        let mut n: Vec<&'static str> = self
            .families
            .iter()
            .filter(|f| !f.samples.is_empty())
            .map(|f| f.name)
            .collect();
        n.sort_unstable();
        n
    }

    /// Writes every family, sorted by name, each one's series sorted by label values.
    pub fn encode(&self, enc: &mut Encoder<'_>) {
        self.encode_with(enc, &[]);
    }

    /// As [`Registry::encode`], with `extra` labels on every series (scheduled probes'
    /// `target`, `module` and configured labels).
    pub fn encode_with(&self, enc: &mut Encoder<'_>, extra: &[(&str, &str)]) {
        let mut fams: Vec<&Family> = self
            .families
            .iter()
            .filter(|f| !f.samples.is_empty())
            .collect();
        fams.sort_by_key(|f| f.name);
        for f in fams {
            let mut samples: Vec<&(Vec<(&'static str, String)>, f64)> = f.samples.iter().collect();
            samples.sort_by(|a, b| a.0.cmp(&b.0));
            let mut fam = enc.family(f.name, f.help, f.kind);
            for (labels, v) in samples {
                let mut all: Vec<(&str, &str)> =
                    labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
                all.extend_from_slice(extra);
                all.sort_by(|a, b| a.0.cmp(b.0));
                fam.sample(&all, *v);
            }
        }
    }

    /// Prometheus text.
    pub fn text(&self) -> String {
        let mut buf = Vec::new();
        let mut enc = Encoder::new(&mut buf, eos_exposition::Format::Text);
        self.encode(&mut enc);
        enc.finish();
        String::from_utf8_lossy(&buf).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_as_go_gathers() {
        let mut r = Registry::new();
        r.gauge(
            "probe_success",
            "Displays whether or not the probe was a success",
            1.0,
        );
        r.gauge_with(
            "probe_http_duration_seconds",
            "Duration",
            &[("phase", "tls")],
            0.5,
        );
        r.gauge_with(
            "probe_http_duration_seconds",
            "Duration",
            &[("phase", "connect")],
            0.25,
        );
        r.gauge_add(
            "probe_http_duration_seconds",
            "Duration",
            &[("phase", "connect")],
            0.25,
        );
        r.declare("probe_ssl_last_chain_info", "Info");
        r.gauge("probe_duration_seconds", "Returns how long", 1e-3);
        let t = r.text();
        assert_eq!(
            t,
            "# HELP probe_duration_seconds Returns how long\n# TYPE probe_duration_seconds gauge\nprobe_duration_seconds 0.001\n# HELP probe_http_duration_seconds Duration\n# TYPE probe_http_duration_seconds gauge\nprobe_http_duration_seconds{phase=\"connect\"} 0.5\nprobe_http_duration_seconds{phase=\"tls\"} 0.5\n# HELP probe_success Displays whether or not the probe was a success\n# TYPE probe_success gauge\nprobe_success 1\n"
        );
        assert_eq!(
            r.value("probe_http_duration_seconds", &[("phase", "tls")]),
            Some(0.5)
        );
        assert_eq!(
            r.names(),
            [
                "probe_duration_seconds",
                "probe_http_duration_seconds",
                "probe_success"
            ]
        );
    }
}
