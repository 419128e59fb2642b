//! Live reload the way the kubelet updates a mounted ConfigMap: a `..<timestamp>/` directory,
//! a `..data` symlink to it, and `agent.yaml` symlinked through `..data`. Swapping `..data`
//! turns a module off in the same process; an invalid update keeps the running config.

use eos_tests::{has_family_prefix, sample, wait_until, Agent, TempDir};
use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

/// Writes a ConfigMap-style mount into `dir` with `agent.yaml` = `text`, replacing the
/// previous version atomically as the kubelet's AtomicWriter does.
fn write_configmap(dir: &Path, version: &str, text: &str) {
    let ts = dir.join(format!("..2026_11_24_{version}"));
    std::fs::create_dir(&ts).expect("creating the timestamped dir");
    std::fs::write(ts.join("agent.yaml"), text).expect("writing agent.yaml");
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    symlink(ts.file_name().expect("name"), &tmp).expect("symlink ..data_tmp");
    std::fs::rename(&tmp, dir.join("..data")).expect("renaming ..data_tmp over ..data");
    let user = dir.join("agent.yaml");
    if std::fs::symlink_metadata(&user).is_err() {
        symlink("..data/agent.yaml", &user).expect("symlink agent.yaml");
    }
}

const NODE_ON: &str = "modules:\n  node:\n    enabled: true\n";
const NODE_OFF: &str = "modules:\n  node:\n    enabled: false\n";

#[test]
fn configmap_swap_toggles_a_module_in_the_same_process() {
    let dir = TempDir::new("configmap");
    write_configmap(dir.path(), "v1", NODE_ON);
    let cfg = dir.join("agent.yaml");
    // The lifecycle flag for the POST /-/reload below; the swaps themselves need no endpoint.
    let agent = Agent::start(&[
        "--config",
        cfg.to_str().expect("utf-8 path"),
        "--web.enable-lifecycle",
    ]);
    let pid = agent.pid();

    let m = agent.metrics();
    assert!(has_family_prefix(&m, "node_"), "node module should be on");
    assert_eq!(
        sample(&m, "eos_agent_module_enabled", &[("module", "node")]),
        Some(1.0)
    );
    assert_eq!(
        sample(&m, "eos_agent_module_up", &[("module", "node")]),
        Some(1.0)
    );
    let hash_before = sample(&m, "eos_agent_config_hash", &[]);

    // The kubelet's update: new timestamped dir, `..data` renamed over.
    write_configmap(dir.path(), "v2", NODE_OFF);
    let off = wait_until(Duration::from_secs(10), || {
        let m = agent.metrics();
        !has_family_prefix(&m, "node_")
            && sample(&m, "eos_agent_module_enabled", &[("module", "node")]) == Some(0.0)
    });
    assert!(
        off,
        "node_* families still there; log:\n{}",
        agent.log_text()
    );
    let m = agent.metrics();
    assert_eq!(
        sample(&m, "eos_agent_config_last_reload_successful", &[]),
        Some(1.0)
    );
    assert_ne!(sample(&m, "eos_agent_config_hash", &[]), hash_before);
    assert_eq!(agent.pid(), pid, "same process");

    // An invalid update: rejected, running config kept, failure visible.
    write_configmap(dir.path(), "v3", "modules:\n  node:\n    enabled: maybe\n");
    let failed = wait_until(Duration::from_secs(10), || {
        sample(
            &agent.metrics(),
            "eos_agent_config_last_reload_successful",
            &[],
        ) == Some(0.0)
    });
    assert!(
        failed,
        "bad config not reported; log:\n{}",
        agent.log_text()
    );
    let m = agent.metrics();
    assert!(
        !has_family_prefix(&m, "node_"),
        "running config (node off) must stay"
    );
    assert!(agent.log_text().contains("config reload failed"));
    let (status, body) = agent.post("/-/reload").expect("POST /-/reload");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("agent.yaml:3:"), "{body}");

    // Back to the running content (node off): the failure clears without a reload.
    write_configmap(dir.path(), "v3b", NODE_OFF);
    let cleared = wait_until(Duration::from_secs(10), || {
        sample(
            &agent.metrics(),
            "eos_agent_config_last_reload_successful",
            &[],
        ) == Some(1.0)
    });
    assert!(
        cleared,
        "revert did not clear the failure; log:\n{}",
        agent.log_text()
    );
    write_configmap(dir.path(), "v3c", "modules:\n  node:\n    enabled: maybe\n");
    assert!(wait_until(Duration::from_secs(10), || {
        sample(
            &agent.metrics(),
            "eos_agent_config_last_reload_successful",
            &[],
        ) == Some(0.0)
    }));

    // Fixed again: node comes back, still the same process.
    write_configmap(dir.path(), "v4", NODE_ON);
    let back = wait_until(Duration::from_secs(10), || {
        let m = agent.metrics();
        has_family_prefix(&m, "node_")
            && sample(&m, "eos_agent_config_last_reload_successful", &[]) == Some(1.0)
    });
    assert!(back, "node did not come back; log:\n{}", agent.log_text());
    assert_eq!(agent.pid(), pid);
}

#[test]
fn sighup_and_post_reload_and_graceful_sigterm() {
    let dir = TempDir::new("sighup");
    let cfg = dir.join("agent.yaml");
    std::fs::write(&cfg, NODE_OFF).expect("write");
    let mut agent = Agent::start(&[
        "--config",
        cfg.to_str().expect("utf-8 path"),
        "--web.enable-lifecycle",
    ]);
    assert!(!has_family_prefix(&agent.metrics(), "node_"));

    // SIGHUP alone, with the file unchanged, is a requested reload: it is counted.
    let reloads = |a: &Agent| {
        sample(
            &a.metrics(),
            "eos_agent_config_reloads_total",
            &[("result", "success")],
        )
        .unwrap_or(-1.0)
    };
    let before = reloads(&agent);
    agent.signal("HUP");
    assert!(
        wait_until(Duration::from_secs(10), || reloads(&agent) == before + 1.0),
        "SIGHUP did not reload; log:\n{}",
        agent.log_text()
    );

    // Write in place: the watcher (or the poll) brings the module on without a signal.
    std::fs::write(&cfg, NODE_ON).expect("write");
    assert!(wait_until(Duration::from_secs(10), || has_family_prefix(
        &agent.metrics(),
        "node_"
    )));

    // A busy config directory (something reading files there all the time) must not hold
    // back reloads: SIGHUP still reloads while the reads go on.
    let sibling = dir.join("other.conf");
    std::fs::write(&sibling, "x").expect("write");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = std::fs::read(&sibling);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let before = reloads(&agent);
    agent.signal("HUP");
    let reloaded = wait_until(Duration::from_secs(5), || reloads(&agent) == before + 1.0);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = reader.join();
    assert!(
        reloaded,
        "SIGHUP held back by directory reads; log:\n{}",
        agent.log_text()
    );

    let (status, body) = agent.post("/-/reload").expect("POST");
    assert_eq!(status, 200, "{body}");
    let (status, _) = agent.get("/-/reload").expect("GET");
    assert_eq!(status, 405);

    agent.signal("TERM");
    assert_eq!(
        agent.wait_exit(Duration::from_secs(15)),
        Some(0),
        "graceful exit"
    );
    assert!(agent.log_text().contains("eos-agent stopped"));
}
