//! `cargo xtask bench probe`: the probe module's `/probe` against Debian's blackbox_exporter
//! (`prometheus-blackbox-exporter`), both loading the same blackbox.yml (the agent through
//! `modules.probe.config_file`) and probing the same 200 distinct target URLs.
//!
//! - http: module `http_2xx` (5 s timeout); the targets are 25 paths on each of 8 local
//!   [`Site`]s (a thread per connection, `Connection: close`), spread so that neighbouring
//!   targets are on different sites.
//! - https: module `https_2xx` (5 s timeout, `fail_if_not_ssl`, `insecure_skip_verify`); the
//!   targets are 50 paths on each of 4 `openssl s_server -www` processes with a fresh
//!   self-signed ECDSA P-256 certificate. Each probe is a full TLS handshake on both sides
//!   (blackbox_exporter makes a client per probe); the check below that every answer carries
//!   `probe_ssl_earliest_cert_expiry` would catch a side that resumed sessions and so saw
//!   no certificate.
//!
//! Each variant starts fresh servers, so memory figures are its own, and first probes every
//! target once through each side: all must answer `probe_success 1`. Then a round probes
//! every target once, `--concurrency` client threads (default 8) taking the next target as
//! they finish, one connection per `/probe` request as in the other benches. Rounds
//! alternate A B A B after `--warmup` unmeasured rounds per side. A side's probes/s is its
//! probes over the time its own rounds took; its CPU is its whole `utime + stime` from the
//! first measured round to the last (the other side's turns included: background work such
//! as Go's garbage collection counts), over the probes it answered; "CPU cores while
//! probing" is that CPU over the time of its own rounds. Peak RSS is `VmHWM` at the end
//! (since start, warm-up included), RSS is `VmRSS` at the end.
//!
//! Target: CPU per probe at most 0.5x blackbox_exporter's; printed, not enforced (numbers
//! from a shared 2-core machine are noisy, and the client and the target servers run on the
//! same cores).

use super::{Options, Running, Side};
use eos_testkit::agent::modules_section;
use eos_testkit::blackbox::{probe, BLACKBOX_EXPORTER};
use eos_testkit::procstat::{self, Memory};
use eos_testkit::site::{Reply, Site};
use eos_testkit::{free_port, wait_until, Description, TempDir};
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const HELP: &str = "\
cargo xtask bench probe [--rounds N] [--concurrency N] [--only http|https] [--warmup N]
                        [--agent-bin PATH]
  --rounds N        measured rounds per side, each probing all 200 targets (default: 250 for
                    http, 120 for https, about 25 s of blackbox_exporter time each on 2 cores)
  --concurrency N   client threads issuing /probe requests at once (default 8)
  --only SCHEME     run only the http or the https variant (default both)
  --warmup N        unmeasured rounds per side first (default 20)
";

/// The one module file both sides load.
const BLACKBOX_YML: &str = "\
modules:
  http_2xx:
    prober: http
    timeout: 5s
  https_2xx:
    prober: http
    timeout: 5s
    http:
      fail_if_not_ssl: true
      tls_config:
        insecure_skip_verify: true
";

/// Distinct target URLs.
const TARGETS: usize = 200;
/// Local HTTP sites the http targets are spread over.
const SITES: usize = 8;
/// `openssl s_server` processes the https targets are spread over.
const TLS_SERVERS: usize = 4;
/// eos CPU per probe / blackbox_exporter's, at most.
const CPU_TARGET: f64 = 0.5;

/// Which targets and module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
}

impl Scheme {
    fn name(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// Measured rounds per side unless `--rounds` says: about 25 s of blackbox_exporter's
    /// time on a 2-core machine (it answers about 2,100 http and 1,000 https probes/s there).
    fn default_rounds(self) -> usize {
        match self {
            Scheme::Http => 250,
            Scheme::Https => 120,
        }
    }

    fn module(self) -> &'static str {
        match self {
            Scheme::Http => "http_2xx",
            Scheme::Https => "https_2xx",
        }
    }
}

/// This benchmark's settings.
#[derive(Clone, Debug, PartialEq)]
struct Settings {
    opts: Options,
    /// `--rounds`, for every scheme; unset: [`Scheme::default_rounds`].
    rounds: Option<usize>,
    concurrency: usize,
    schemes: Vec<Scheme>,
}

fn parse(args: &[String]) -> Result<Settings, String> {
    let mut opts = Options::parse(args)?;
    let mut s = Settings {
        opts: Options::default(),
        rounds: None,
        concurrency: 8,
        schemes: vec![Scheme::Http, Scheme::Https],
    };
    let rest = std::mem::take(&mut opts.rest);
    let mut args = super::flags::Args::new(&rest);
    while let Some(a) = args.next_arg() {
        match a.flag {
            "--rounds" => s.rounds = Some(positive(a.flag, args.value(&a)?)?),
            "--concurrency" => s.concurrency = positive(a.flag, args.value(&a)?)?,
            "--only" => {
                s.schemes = match args.value(&a)? {
                    "http" => vec![Scheme::Http],
                    "https" => vec![Scheme::Https],
                    other => return Err(format!("--only: {other:?} is not http or https")),
                }
            }
            "-h" | "--help" => return Err(HELP.into()),
            _ => return Err(format!("unknown option {:?}\n\n{HELP}", a.whole)),
        }
    }
    s.opts = opts;
    Ok(s)
}

fn positive(flag: &str, v: &str) -> Result<usize, String> {
    v.parse()
        .ok()
        .filter(|&n: &usize| n > 0)
        .ok_or_else(|| format!("{flag}: {v:?} is not a positive whole number"))
}

pub(super) fn run(args: &[String]) -> Result<(), String> {
    let s = parse(args)?;
    if !Path::new(BLACKBOX_EXPORTER).exists() {
        return Err(format!(
            "{BLACKBOX_EXPORTER} is missing: apt-get install -y prometheus-blackbox-exporter"
        ));
    }
    let agent = super::agent_under_test(&s.opts)?;
    let dir = TempDir::try_new("bench-probe")?;
    let blackbox_yml = dir.join("blackbox.yml");
    std::fs::write(&blackbox_yml, BLACKBOX_YML)
        .map_err(|e| format!("writing {}: {e}", blackbox_yml.display()))?;
    let modules = Description::of(&agent)?.module_names();
    let config = dir.join("agent.yaml");
    let text = format!(
        "state_dir: {}\nkubelet: {{enabled: false}}\n{}",
        dir.join("state").display(),
        modules_section(
            &modules,
            "probe",
            &format!(
                "{{enabled: true, modules: {{}}, config_file: {:?}}}",
                blackbox_yml.display().to_string()
            )
        )
    );
    std::fs::write(&config, text).map_err(|e| format!("writing {}: {e}", config.display()))?;
    println!(
        "ours: {} (probe module only); theirs: {BLACKBOX_EXPORTER}; both load {}",
        agent.display(),
        blackbox_yml.display()
    );

    let mut results = Vec::new();
    for &scheme in &s.schemes {
        let (targets, servers) = targets(scheme, &dir)?;
        let port = free_port()?;
        let ours = Side::new("eos-agent", &agent)
            .args([
                "--config".to_string(),
                config.display().to_string(),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ])
            .listen(port)
            .ready_path("/readyz")
            .start(&dir)?;
        let port = free_port()?;
        let theirs = Side::new("blackbox_exporter", BLACKBOX_EXPORTER)
            .args([
                format!("--config.file={}", blackbox_yml.display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ])
            .listen(port)
            .start(&dir)?;
        for side in [&ours, &theirs] {
            check_all(side, &targets, scheme)?;
        }
        println!(
            "\n== {}: {} targets, module {}, {} client threads; sanity: both answer probe_success 1 for all ==",
            scheme.name(),
            targets.len(),
            scheme.module(),
            s.concurrency
        );
        let mut result = measure(&ours, &theirs, &targets, scheme, &s)?;
        if let Servers::Sites(sites) = &servers {
            // Every probe is one request to its target: the sanity pass, warm-up and rounds.
            let seen = sites.iter().map(Site::requests).sum();
            let issued = 2 * targets.len() * (1 + s.opts.warmup + result.rounds);
            result.site_requests = Some((seen, issued as u64));
        }
        print!("{}", result.render());
        results.push(result);
    }
    let met = results
        .iter()
        .filter(|r| r.cpu_ratio() <= CPU_TARGET)
        .count();
    println!(
        "\ntargets met: {met} of {} (CPU per probe <= {CPU_TARGET:.2}x blackbox_exporter's)",
        results.len()
    );
    Ok(())
}

/// What keeps the targets up: sites or TLS servers, stopped on drop.
enum Servers {
    Sites(Vec<Site>),
    #[allow(dead_code)] // held only to keep the servers up
    Tls(Vec<TlsServer>),
}

/// The 200 target URLs of `scheme`, and what serves them.
fn targets(scheme: Scheme, dir: &TempDir) -> Result<(Vec<String>, Servers), String> {
    match scheme {
        Scheme::Http => {
            let sites: Vec<Site> = (0..SITES)
                .map(|_| Site::start(|_| Reply::ok("ok\n")))
                .collect();
            let urls = (0..TARGETS)
                .map(|i| sites[i % SITES].url(&format!("/target/{i}")))
                .collect();
            Ok((urls, Servers::Sites(sites)))
        }
        Scheme::Https => {
            let (key, cert) = self_signed(dir)?;
            let servers = (0..TLS_SERVERS)
                .map(|_| TlsServer::start(&key, &cert))
                .collect::<Result<Vec<_>, _>>()?;
            let urls = (0..TARGETS)
                .map(|i| format!("https://{}/target/{i}", servers[i % TLS_SERVERS].addr))
                .collect();
            Ok((urls, Servers::Tls(servers)))
        }
    }
}

/// A fresh self-signed ECDSA P-256 key and certificate, valid for 30 days.
fn self_signed(dir: &TempDir) -> Result<(String, String), String> {
    let key = dir.join("tls-key.pem").display().to_string();
    let cert = dir.join("tls-cert.pem").display().to_string();
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=probe.bench/O=eos",
            "-keyout",
            &key,
            "-out",
            &cert,
        ])
        .output()
        .map_err(|e| format!("running openssl req (apt-get install -y openssl): {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl req failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok((key, cert))
}

/// `openssl s_server -www` on a loopback port, killed on drop.
struct TlsServer {
    child: Child,
    addr: String,
}

impl TlsServer {
    fn start(key: &str, cert: &str) -> Result<TlsServer, String> {
        let addr = format!("127.0.0.1:{}", free_port()?);
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-www", "-accept", &addr])
            .args(["-cert", cert, "-key", key])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting openssl s_server: {e}"))?;
        let server = TlsServer { child, addr };
        let up = wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(&server.addr).is_ok()
        });
        if up {
            Ok(server)
        } else {
            Err(format!(
                "openssl s_server did not listen on {}",
                server.addr
            ))
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Why a `/probe` answer is not a successful probe (None when it is).
fn failure(status: u16, body: &[u8], scheme: Scheme) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    let has = |prefix: &str| text.lines().any(|l| l.starts_with(prefix));
    if status != 200 {
        Some(format!("status {status}"))
    } else if !text.lines().any(|l| l == "probe_success 1") {
        Some(
            match text.lines().find(|l| l.starts_with("probe_success ")) {
                Some(l) => l.to_string(),
                None => "no probe_success".into(),
            },
        )
    } else if scheme == Scheme::Https && !has("probe_ssl_earliest_cert_expiry ") {
        Some("no probe_ssl_earliest_cert_expiry (no certificate seen)".into())
    } else {
        None
    }
}

/// Probes every target once through `side`; all must succeed.
fn check_all(side: &Running, targets: &[String], scheme: Scheme) -> Result<(), String> {
    for t in targets {
        let r = probe(&side.side.addr, t, scheme.module(), &[])
            .map_err(|e| format!("{}: probing {t}: {e}", side.side.name))?;
        if let Some(why) = failure(r.status, &r.body, scheme) {
            return Err(format!(
                "{}: probing {t} with {}: {why}\n{}",
                side.side.name,
                scheme.module(),
                r.text()
            ));
        }
    }
    Ok(())
}

/// One side's figures.
#[derive(Clone, Debug, Default, PartialEq)]
struct Tally {
    name: String,
    /// Probes answered in measured rounds.
    probes: usize,
    /// Of them, not `probe_success 1` (or not 200).
    failed: usize,
    /// The first failure, for the report.
    why: Option<String>,
    /// Time its measured rounds took.
    busy: Duration,
    /// Every measured `/probe` request, connect to last byte; sorted after the run.
    latencies: Vec<Duration>,
    /// Its CPU seconds over the whole measured run.
    cpu: f64,
    memory: Memory,
}

impl Tally {
    fn per_second(&self) -> f64 {
        self.probes as f64 / self.busy.as_secs_f64().max(1e-9)
    }

    /// CPU seconds per 1,000 probes.
    fn cpu_per_1000(&self) -> f64 {
        self.cpu * 1000.0 / self.probes.max(1) as f64
    }

    fn percentile(&self, p: f64) -> Duration {
        super::percentile(&self.latencies, p)
    }
}

/// Both sides' figures for one scheme.
#[derive(Clone, Debug, PartialEq)]
struct Figures {
    scheme: Scheme,
    rounds: usize,
    warmup: usize,
    concurrency: usize,
    targets: usize,
    /// Requests the target servers saw over the whole variant, when counted (http).
    site_requests: Option<(u64, u64)>,
    ours: Tally,
    theirs: Tally,
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        if a == 0.0 {
            1.0
        } else {
            f64::INFINITY
        }
    } else {
        a / b
    }
}

impl Figures {
    fn cpu_ratio(&self) -> f64 {
        ratio(self.ours.cpu_per_1000(), self.theirs.cpu_per_1000())
    }

    fn render(&self) -> String {
        let (o, t) = (&self.ours, &self.theirs);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "bench probe, {}: {} rounds of {} targets per side ({} probes), alternating, after {} warm-up rounds; {} client threads",
            self.scheme.name(),
            self.rounds,
            self.targets,
            o.probes,
            self.warmup,
            self.concurrency
        );
        let _ = writeln!(
            s,
            "{:<24} {:>12} {:>18} {:>12}   target",
            "", "eos-agent", "blackbox_exporter", "eos/blackbox"
        );
        let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1e3);
        let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0));
        let cpu_ratio = self.cpu_ratio();
        let verdict = if cpu_ratio <= CPU_TARGET {
            "met"
        } else {
            "NOT met"
        };
        let rows: [(&str, String, String, f64, String); 7] = [
            (
                "probes/s",
                format!("{:.0}", o.per_second()),
                format!("{:.0}", t.per_second()),
                ratio(o.per_second(), t.per_second()),
                String::new(),
            ),
            (
                "CPU s per 1,000 probes",
                format!("{:.3}", o.cpu_per_1000()),
                format!("{:.3}", t.cpu_per_1000()),
                cpu_ratio,
                format!("<= {CPU_TARGET:.2}x  {verdict}"),
            ),
            (
                "CPU cores while probing",
                format!("{:.2}", o.cpu / o.busy.as_secs_f64().max(1e-9)),
                format!("{:.2}", t.cpu / t.busy.as_secs_f64().max(1e-9)),
                ratio(
                    o.cpu / o.busy.as_secs_f64().max(1e-9),
                    t.cpu / t.busy.as_secs_f64().max(1e-9),
                ),
                String::new(),
            ),
            (
                "latency median",
                ms(o.percentile(50.0)),
                ms(t.percentile(50.0)),
                ratio(
                    o.percentile(50.0).as_secs_f64(),
                    t.percentile(50.0).as_secs_f64(),
                ),
                String::new(),
            ),
            (
                "latency p99",
                ms(o.percentile(99.0)),
                ms(t.percentile(99.0)),
                ratio(
                    o.percentile(99.0).as_secs_f64(),
                    t.percentile(99.0).as_secs_f64(),
                ),
                String::new(),
            ),
            (
                "RSS peak (VmHWM)",
                mib(o.memory.hwm),
                mib(t.memory.hwm),
                ratio(o.memory.hwm as f64, t.memory.hwm as f64),
                String::new(),
            ),
            (
                "RSS at end (VmRSS)",
                mib(o.memory.rss),
                mib(t.memory.rss),
                ratio(o.memory.rss as f64, t.memory.rss as f64),
                String::new(),
            ),
        ];
        for (label, a, b, r, target) in rows {
            let _ = writeln!(s, "{label:<24} {a:>12} {b:>18} {r:>11.3}x   {target}");
        }
        let _ = writeln!(
            s,
            "{:<24} {:>12} {:>18}",
            "failed probes", o.failed, t.failed
        );
        for side in [o, t] {
            if let Some(why) = &side.why {
                let _ = writeln!(s, "  {} first failure: {why}", side.name);
            }
        }
        if let Some((seen, expected)) = self.site_requests {
            let _ = writeln!(
                s,
                "target requests seen by the sites: {seen} (probes issued: {expected})"
            );
        }
        s
    }
}

/// Warm-up, then alternating measured rounds; CPU and memory from `/proc`.
fn measure(
    ours: &Running,
    theirs: &Running,
    targets: &[String],
    scheme: Scheme,
    s: &Settings,
) -> Result<Figures, String> {
    let sides = [ours, theirs];
    let mut tallies = [Tally::default(), Tally::default()];
    for (t, side) in tallies.iter_mut().zip(sides) {
        t.name = side.side.name.clone();
    }
    for _ in 0..s.opts.warmup {
        for side in sides {
            round(side, targets, scheme, s.concurrency, &mut Tally::default())?;
        }
    }
    let rounds = s.rounds.unwrap_or(scheme.default_rounds());
    let ticks = procstat::clock_ticks();
    let before = [ours.cpu_ticks()?, theirs.cpu_ticks()?];
    for _ in 0..rounds {
        for (t, side) in tallies.iter_mut().zip(sides) {
            round(side, targets, scheme, s.concurrency, t)?;
        }
    }
    let after = [ours.cpu_ticks()?, theirs.cpu_ticks()?];
    for (i, (t, side)) in tallies.iter_mut().zip(sides).enumerate() {
        t.cpu = after[i].saturating_sub(before[i]) as f64 / ticks;
        t.memory = side.memory()?;
        t.latencies.sort();
    }
    let [o, t] = tallies;
    Ok(Figures {
        scheme,
        rounds,
        warmup: s.opts.warmup,
        concurrency: s.concurrency,
        targets: targets.len(),
        site_requests: None,
        ours: o,
        theirs: t,
    })
}

/// Probes every target once through `side`, `concurrency` requests at a time.
fn round(
    side: &Running,
    targets: &[String],
    scheme: Scheme,
    concurrency: usize,
    tally: &mut Tally,
) -> Result<(), String> {
    let next = AtomicUsize::new(0);
    let addr = side.side.addr.as_str();
    let start = Instant::now();
    type Worker = Result<(Vec<Duration>, usize, Option<String>), String>;
    let done: Vec<Worker> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..concurrency)
            .map(|_| {
                scope.spawn(|| -> Worker {
                    let (mut lat, mut failed, mut why) = (Vec::new(), 0, None);
                    while let Some(t) = targets.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let t0 = Instant::now();
                        let r = probe(addr, t, scheme.module(), &[])
                            .map_err(|e| format!("{}: probing {t}: {e}", side.side.name))?;
                        lat.push(t0.elapsed());
                        if let Some(w) = failure(r.status, &r.body, scheme) {
                            failed += 1;
                            why.get_or_insert(format!("{t}: {w}"));
                        }
                    }
                    Ok((lat, failed, why))
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| Err("a client thread panicked".into()))
            })
            .collect()
    });
    tally.busy += start.elapsed();
    for w in done {
        let (lat, failed, why) = w?;
        tally.probes += lat.len();
        tally.latencies.extend(lat);
        tally.failed += failed;
        if tally.why.is_none() {
            tally.why = why;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn settings() {
        let s = parse(&[]).unwrap();
        assert_eq!((s.rounds, s.concurrency), (None, 8));
        assert_eq!(s.schemes, [Scheme::Http, Scheme::Https]);
        let s = parse(&args(&[
            "--rounds=3",
            "--concurrency",
            "16",
            "--only=https",
            "--warmup=1",
            "--agent-bin=/x",
        ]))
        .unwrap();
        assert_eq!((s.rounds, s.concurrency, s.opts.warmup), (Some(3), 16, 1));
        assert_eq!(s.schemes, [Scheme::Https]);
        assert_eq!(s.opts.agent_bin, Some("/x".into()));
        assert!(parse(&args(&["--rounds=0"])).is_err());
        assert!(parse(&args(&["--concurrency"]))
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse(&args(&["--only=ftp"])).unwrap_err().contains("ftp"));
        assert!(parse(&args(&["--bogus"])).unwrap_err().contains("--bogus"));
    }

    #[test]
    fn failures() {
        let ok =
            b"# TYPE probe_success gauge\nprobe_success 1\nprobe_ssl_earliest_cert_expiry 1.7e9\n";
        assert_eq!(failure(200, ok, Scheme::Http), None);
        assert_eq!(failure(200, ok, Scheme::Https), None);
        assert_eq!(
            failure(200, b"probe_success 1\n", Scheme::Https),
            Some("no probe_ssl_earliest_cert_expiry (no certificate seen)".into())
        );
        assert_eq!(
            failure(200, b"probe_success 0\n", Scheme::Http),
            Some("probe_success 0".into())
        );
        assert_eq!(
            failure(200, b"", Scheme::Http),
            Some("no probe_success".into())
        );
        assert_eq!(
            failure(400, b"Unknown module", Scheme::Http),
            Some("status 400".into())
        );
    }

    #[test]
    fn report() {
        let tally = |name: &str, cpu: f64, ms: u64| Tally {
            name: name.into(),
            probes: 1000,
            failed: 0,
            why: None,
            busy: Duration::from_secs(1),
            latencies: vec![Duration::from_millis(ms); 10],
            cpu,
            memory: Memory {
                rss: 10 << 20,
                hwm: 20 << 20,
            },
        };
        let mut r = Figures {
            scheme: Scheme::Http,
            rounds: 5,
            warmup: 1,
            concurrency: 8,
            targets: 200,
            site_requests: None,
            ours: tally("eos-agent", 0.2, 1),
            theirs: tally("blackbox_exporter", 1.0, 2),
        };
        assert!((r.cpu_ratio() - 0.2).abs() < 1e-9);
        let out = r.render();
        assert!(out.contains("<= 0.50x  met"), "{out}");
        assert!(out.contains("CPU s per 1,000 probes"), "{out}");
        assert!(out.contains("1000 probes"), "{out}");
        r.ours.cpu = 0.8;
        r.ours.failed = 2;
        r.ours.why = Some("x: probe_success 0".into());
        let out = r.render();
        assert!(out.contains("NOT met"), "{out}");
        assert!(
            out.contains("eos-agent first failure: x: probe_success 0"),
            "{out}"
        );
    }
}
