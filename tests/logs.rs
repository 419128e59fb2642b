//! The logs module end to end: the agent binary tails a kubelet-style `/var/log/pods` tree
//! and pushes to a Loki receiver; every line written is counted against every distinct line
//! received.
//!
//! No Loki binary can be had where these tests run, so the receiver is
//! `eos_logs::receiver`: Loki's `POST /loki/api/v1/push` for snappy-compressed
//! `logproto.PushRequest` (its documented field numbers), answering 204, or 400, 413, 429,
//! 503, hanging, or down, as each test tells it.

use eos_logs::receiver::{Answer, Receiver};
use eos_tests::{sample, wait_until, Agent, TempDir};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Lines in one batch at most, for the duplicate bound after a kill: `batch_bytes` below is
/// 16 KiB and a test line is about 90 bytes with the per-entry overhead.
const BATCH_LINES: usize = 16 * 1024 / 60;
const WAIT: Duration = Duration::from_secs(60);

/// A pod log tree, the agent's state and config.
struct Node {
    dir: TempDir,
}

impl Node {
    fn new(tag: &str) -> Node {
        let dir = TempDir::new(tag);
        std::fs::create_dir_all(dir.join("pods")).expect("pods dir");
        Node { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.join("pods")
    }

    /// The config: `modules.logs` with test-friendly pacing, `set` replacing or adding keys.
    fn config(&self, loki: &str, set: &[(&str, &str)]) -> PathBuf {
        let mut keys: Vec<(String, String)> = [
            ("enabled", "true".to_string()),
            ("loki", format!("{{url: '{loki}', timeout: 2s}}")),
            ("batch_bytes", "16KiB".into()),
            ("batch_wait", "100ms".into()),
            ("rescan_interval", "1s".into()),
            ("partial_flush", "1s".into()),
            ("backoff", "{min: 50ms, max: 400ms}".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in set {
            keys.retain(|(key, _)| key != k);
            keys.push((k.to_string(), v.to_string()));
        }
        let logs: String = keys
            .iter()
            .map(|(k, v)| format!("    {k}: {v}\n"))
            .collect();
        let text = format!(
            "state_dir: {state}\nnode_name: test-node\nhost: {{log_dir: {root}}}\nkubelet: {{enabled: false}}\nmodules:\n  node: {{enabled: false}}\n  containers: {{enabled: false}}\n  logs:\n{logs}",
            state = self.dir.join("state").display(),
            root = self.root().display(),
        );
        let cfg = self.dir.join("agent.yaml");
        std::fs::write(&cfg, text).expect("writing agent.yaml");
        cfg
    }

    fn start(&self, loki: &str, set: &[(&str, &str)]) -> Agent {
        let cfg = self.config(loki, set);
        Agent::start(&["--config", cfg.to_str().expect("utf-8 path")])
    }

    /// `<root>/<ns>_<pod>_<uid>/<container>/`, created.
    fn container(&self, ns: &str, pod: &str, uid: &str, container: &str) -> PathBuf {
        let d = self
            .root()
            .join(format!("{ns}_{pod}_{uid}"))
            .join(container);
        std::fs::create_dir_all(&d).expect("container dir");
        d
    }
}

/// A CRI line with a distinct content.
fn cri(tag: &str, n: usize) -> String {
    format!(
        "2026-11-30T05:00:{:02}.{:09}Z stdout F {tag} line {n:06}\n",
        n % 60,
        n
    )
}

/// Appends lines `range` of `tag` to `file`.
fn write(file: &Path, tag: &str, range: std::ops::Range<usize>) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .expect("opening a log file");
    let mut buf = String::new();
    for n in range {
        buf.push_str(&cri(tag, n));
    }
    f.write_all(buf.as_bytes()).expect("writing a log file");
}

/// The kubelet's rotation: `0.log` renamed to `0.log.<time>`, a new `0.log` created.
fn rotate(dir: &Path, stamp: &str) -> PathBuf {
    let rotated = dir.join(format!("0.log.{stamp}"));
    std::fs::rename(dir.join("0.log"), &rotated).expect("rotating");
    std::fs::File::create(dir.join("0.log")).expect("new 0.log");
    rotated
}

fn expected(tag: &str, range: std::ops::Range<usize>) -> BTreeSet<String> {
    range.map(|n| format!("{tag} line {n:06}")).collect()
}

/// Waits until every expected line has arrived; on timeout, says which are missing.
fn wait_all(rx: &Receiver, want: &BTreeSet<String>, agent: &Agent) {
    let ok = wait_until(WAIT, || {
        let got = rx.received();
        let have = got.distinct_lines();
        want.iter().all(|l| have.contains(l.as_str()))
    });
    if !ok {
        let got = rx.received();
        let have = got.distinct_lines();
        let missing: Vec<&String> = want.iter().filter(|l| !have.contains(l.as_str())).collect();
        panic!(
            "{} of {} lines missing (first: {:?}); statuses {:?}\n/debug/logs/:\n{}\nlog:\n{}",
            missing.len(),
            want.len(),
            missing.iter().take(5).collect::<Vec<_>>(),
            got.statuses().iter().rev().take(10).collect::<Vec<_>>(),
            agent.get("/debug/logs/").map(|r| r.1).unwrap_or_default(),
            agent.log_text()
        );
    }
}

#[test]
fn every_line_arrives_with_promtails_labels_and_the_runtimes_time() {
    let node = Node::new("logs-labels");
    let rx = Receiver::start();
    let app = node.container("shop", "web-1", "uid-1", "app");
    write(&app.join("0.log"), "web", 0..500);
    let agent = node.start(&rx.url(), &[]);
    wait_all(&rx, &expected("web", 0..500), &agent);

    // A pod that appears later is picked up.
    let late = node.container("shop", "late-1", "uid-2", "sidecar");
    write(&late.join("0.log"), "late", 0..10);
    wait_all(&rx, &expected("late", 0..10), &agent);

    let got = rx.received();
    let e = got
        .entries
        .iter()
        .find(|e| e.line == "web line 000007")
        .expect("a line");
    assert_eq!(
        e.labels,
        r#"{container="app", job="shop/app", namespace="shop", node_name="test-node", pod="web-1", stream="stdout"}"#
    );
    assert_eq!(
        (e.seconds % 60, e.nanos),
        (7, 7),
        "the time the runtime wrote"
    );
    assert_eq!(got.duplicates(), 0);
    assert!(got
        .requests
        .iter()
        .all(|r| r.content_type.as_deref() == Some("application/x-protobuf")));

    let m = agent.metrics();
    assert_eq!(
        sample(&m, "eos_agent_module_up", &[("module", "logs")]),
        Some(1.0)
    );
    assert_eq!(sample(&m, "eos_logs_entries_sent_total", &[]), Some(510.0));
    let ok = wait_until(Duration::from_secs(10), || {
        let m = agent.metrics();
        sample(&m, "eos_logs_lag_bytes", &[]) == Some(0.0)
            && sample(
                &m,
                "eos_logs_file_acked_bytes_total",
                &[("pod", "web-1"), ("file", "0.log")],
            ) == Some(std::fs::metadata(app.join("0.log")).map_or(0, |m| m.len()) as f64)
    });
    assert!(ok, "caught up: {}", agent.metrics());
    let mut page = String::new();
    let listed = wait_until(Duration::from_secs(10), || {
        let (status, body) = agent.get("/debug/logs/").expect("debug page");
        assert_eq!(status, 200);
        page = body;
        page.contains("shop_web-1_uid-1/app/0.log") && page.contains(" 0.0  ")
    });
    assert!(listed, "{page}");
    assert!(page.contains("last push: accepted"), "{page}");
}

#[test]
fn kill_9_mid_stream_then_restart_loses_nothing() {
    let node = Node::new("logs-kill");
    let rx = Receiver::start();
    let dir = node.container("ns", "busy", "u1", "app");
    let file = dir.join("0.log");
    let mut agent = node.start(&rx.url(), &[]);
    write(&file, "busy", 0..20_000);
    assert!(
        wait_until(WAIT, || rx.received().total_entries > 2_000),
        "nothing shipped"
    );
    agent.signal("KILL");
    agent.wait_exit(Duration::from_secs(10));
    let before = rx.received().total_entries;
    write(&file, "busy", 20_000..25_000);
    let agent = node.start(&rx.url(), &[]);
    wait_all(&rx, &expected("busy", 0..25_000), &agent);
    let dups = rx.received().duplicates();
    assert!(
        dups <= BATCH_LINES,
        "{dups} duplicates: only the batch in flight at the kill may come twice ({before} had arrived)"
    );
}

#[test]
fn five_rotations_while_loki_is_down_with_the_oldest_deleted() {
    let node = Node::new("logs-rotate");
    let rx = Receiver::start();
    let dir = node.container("ns", "rot", "u1", "app");
    write(&dir.join("0.log"), "rot", 0..100);
    let agent = node.start(&rx.url(), &[]);
    wait_all(&rx, &expected("rot", 0..100), &agent);

    rx.answer(Answer::Down);
    let mut rotated = Vec::new();
    for r in 0..5 {
        let from = 100 + r * 1000;
        write(&dir.join("0.log"), "rot", from..from + 1000);
        // Let the reader open the file at its path before it is renamed: the kubelet keeps
        // at least one rotation around for far longer than this.
        std::thread::sleep(Duration::from_millis(1200));
        rotated.push(rotate(&dir, &format!("20261130-0500{r:02}")));
    }
    write(&dir.join("0.log"), "rot", 5100..5200);
    std::thread::sleep(Duration::from_millis(1500));
    // The oldest rotated files are deleted (compressed away) before Loki comes back.
    for f in &rotated[..2] {
        std::fs::remove_file(f).expect("deleting a rotated file");
    }
    std::thread::sleep(Duration::from_millis(1500));
    let m = agent.metrics();
    assert_eq!(sample(&m, "eos_logs_files_held", &[]), Some(2.0), "{m}");
    assert!(sample(&m, "eos_logs_lag_bytes", &[]).unwrap_or(0.0) > 0.0);
    assert!(sample(&m, "eos_logs_push_retries_total", &[("status", "error")]).unwrap_or(0.0) > 0.0);

    rx.answer(Answer::Accept);
    wait_all(&rx, &expected("rot", 0..5200), &agent);
    let ok = wait_until(Duration::from_secs(10), || {
        sample(&agent.metrics(), "eos_logs_files_held", &[]) == Some(0.0)
    });
    assert!(
        ok,
        "drained deleted files are released: {}",
        agent.metrics()
    );
}

#[test]
fn copytruncate_loses_nothing() {
    let node = Node::new("logs-copytruncate");
    let rx = Receiver::start();
    let dir = node.container("ns", "ct", "u1", "app");
    let file = dir.join("0.log");
    write(&file, "ct", 0..300);
    let agent = node.start(&rx.url(), &[]);
    wait_all(&rx, &expected("ct", 0..300), &agent);
    write(&file, "ct", 300..400);
    // logrotate's copytruncate: copy, then truncate in place, then the writer goes on.
    std::fs::copy(&file, dir.join("0.log.20261130-050000")).expect("copy");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .expect("open")
        .set_len(0)
        .expect("truncate");
    write(&file, "ct", 400..450);
    wait_all(&rx, &expected("ct", 0..450), &agent);
    assert!(
        sample(&agent.metrics(), "eos_logs_file_truncations_total", &[]).unwrap_or(0.0) >= 1.0
            || rx.received().duplicates() > 0,
        "the truncation was seen, or the copy was read whole"
    );
}

#[test]
fn a_storm_of_429s_then_400_and_413_lose_nothing_but_what_loki_refused() {
    let node = Node::new("logs-429");
    let rx = Receiver::start();
    // A push Loki never answers (times out after loki.timeout, 2 s), then 30 429s.
    let mut script = vec![Answer::Hang];
    script.extend(vec![Answer::TooManyRequests; 30]);
    rx.script(script);
    let dir = node.container("ns", "storm", "u1", "app");
    write(&dir.join("0.log"), "storm", 0..2000);
    let agent = node.start(&rx.url(), &[]);
    wait_all(&rx, &expected("storm", 0..2000), &agent);
    let m = agent.metrics();
    assert_eq!(
        sample(&m, "eos_logs_push_retries_total", &[("status", "429")]),
        Some(30.0)
    );
    assert_eq!(
        sample(&m, "eos_logs_push_retries_total", &[("status", "timeout")]),
        Some(1.0)
    );

    // 400: Loki's message names how many it ignored; those are counted, the rest go on.
    rx.script(vec![Answer::BadRequest(
        "entry for stream '{pod=\"storm\"}' has timestamp too old,\ntotal ignored: 3 out of 3"
            .into(),
    )]);
    write(&dir.join("0.log"), "storm", 2000..2003);
    let ok = wait_until(WAIT, || {
        sample(
            &agent.metrics(),
            "eos_logs_entries_dropped_total",
            &[("reason", "rejected")],
        ) == Some(3.0)
    });
    assert!(ok, "{}", agent.metrics());
    write(&dir.join("0.log"), "storm", 2003..2100);
    wait_all(&rx, &expected("storm", 2003..2100), &agent);

    // 413: the batch splits until Loki takes the halves.
    rx.max_body(Some(2048));
    write(&dir.join("0.log"), "storm", 2100..2600);
    wait_all(&rx, &expected("storm", 2100..2600), &agent);
    assert!(rx.received().statuses().contains(&413));
}

#[test]
fn a_partial_line_at_the_end_of_a_file_is_shipped() {
    let node = Node::new("logs-partial");
    let rx = Receiver::start();
    let dir = node.container("ns", "p", "u1", "app");
    std::fs::write(
        dir.join("0.log"),
        "2026-11-30T05:00:00.1Z stdout F whole\n2026-11-30T05:00:00.2Z stdout P the start of a line that never ended\n",
    )
    .expect("write");
    let agent = node.start(&rx.url(), &[]);
    let want: BTreeSet<String> = ["whole", "the start of a line that never ended"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    wait_all(&rx, &want, &agent);
}

#[test]
fn a_pod_deleted_with_lines_unread_is_drained_then_released() {
    let node = Node::new("logs-deleted");
    let rx = Receiver::start();
    let dir = node.container("ns", "gone", "u1", "app");
    write(&dir.join("0.log"), "gone", 0..10);
    let agent = node.start(&rx.url(), &[]);
    wait_all(&rx, &expected("gone", 0..10), &agent);
    rx.answer(Answer::Unavailable);
    write(&dir.join("0.log"), "gone", 10..3000);
    std::thread::sleep(Duration::from_millis(1500));
    std::fs::remove_dir_all(node.root().join("ns_gone_u1")).expect("deleting the pod");
    std::thread::sleep(Duration::from_millis(1500));
    rx.answer(Answer::Accept);
    wait_all(&rx, &expected("gone", 0..3000), &agent);
    let ok = wait_until(Duration::from_secs(10), || {
        let m = agent.metrics();
        sample(&m, "eos_logs_files", &[]) == Some(0.0)
    });
    assert!(ok, "{}", agent.metrics());
    // A pod recreated with the same name is a new pod directory, read from its start.
    let again = node.container("ns", "gone", "u2", "app");
    write(&again.join("0.log"), "again", 0..5);
    wait_all(&rx, &expected("again", 0..5), &agent);
}

#[test]
fn sigterm_flushes_what_was_read_and_tenant_and_auth_are_sent() {
    let node = Node::new("logs-term");
    let rx = Receiver::start();
    let dir = node.container("ns", "t", "u1", "app");
    write(&dir.join("0.log"), "term", 0..50);
    let loki = format!(
        "{{url: '{}', tenant_id: team-a, basic_auth: {{username: eos, password: s3cret}}}}",
        rx.url()
    );
    // A batch would wait 30 s; SIGTERM must not wait for that, nor lose it.
    let mut agent = node.start(&rx.url(), &[("loki", &loki), ("batch_wait", "30s")]);
    let read = wait_until(Duration::from_secs(20), || {
        sample(
            &agent.metrics(),
            "eos_logs_file_read_bytes_total",
            &[("pod", "t")],
        )
        .unwrap_or(0.0)
            > 0.0
    });
    assert!(read, "{}", agent.metrics());
    assert!(rx.received().entries.is_empty(), "still batching");
    agent.signal("TERM");
    assert_eq!(
        agent.wait_exit(Duration::from_secs(20)),
        Some(0),
        "{}",
        agent.log_text()
    );
    let got = rx.received();
    let have = got.distinct_lines();
    let missing = expected("term", 0..50)
        .into_iter()
        .filter(|l| !have.contains(l.as_str()))
        .count();
    assert_eq!(missing, 0, "flushed on SIGTERM; log:\n{}", agent.log_text());
    let r = &got.requests[0];
    assert_eq!(r.tenant.as_deref(), Some("team-a"));
    // base64("eos:s3cret")
    assert_eq!(r.authorization.as_deref(), Some("Basic ZW9zOnMzY3JldA=="));

    // And the positions were saved: a restart sends nothing again.
    let agent = node.start(&rx.url(), &[]);
    write(&dir.join("0.log"), "term", 50..60);
    wait_all(&rx, &expected("term", 50..60), &agent);
    assert_eq!(rx.received().duplicates(), 0);
}

#[test]
fn a_corrupt_positions_file_is_reported_not_fatal() {
    let node = Node::new("logs-corrupt");
    let rx = Receiver::start();
    let dir = node.container("ns", "c", "u1", "app");
    write(&dir.join("0.log"), "corrupt", 0..20);
    std::fs::create_dir_all(node.dir.join("state/logs")).expect("state dir");
    std::fs::write(
        node.dir.join("state/logs/positions"),
        "eos-logs positions v1\n1 2 ffff 3 99 /x\nchecksum 0000000000000000\n",
    )
    .expect("write");
    let agent = node.start(&rx.url(), &[]);
    wait_all(&rx, &expected("corrupt", 0..20), &agent);
    let m = agent.metrics();
    assert_eq!(
        sample(&m, "eos_agent_module_up", &[("module", "logs")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, "eos_logs_positions_errors_total", &[]),
        Some(1.0)
    );
    let (_, page) = agent.get("/debug/logs/").expect("debug page");
    assert!(page.contains("damaged"), "{page}");
    assert!(node.dir.join("state/logs/positions.corrupt").exists());
}
