//! Property tests of the config loader: whatever the file holds and whatever the environment
//! says, loading returns a config or a `file:line: message` error, never panics, and a line
//! it names is in the file. `cargo xtask fuzz config` runs them long.

use crate::config::{expand_env, Config, Overrides};
use crate::keypath;
use proptest::prelude::*;

/// YAML-ish text built from the pieces configs are made of, so that cases get past the
/// parser's first line often.
fn yamlish() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("modules:\n".to_string()),
        Just("  node:\n".to_string()),
        Just("    enabled: true\n".to_string()),
        Just("  containers: {pod_labels: [a, b]}\n".to_string()),
        Just("kubelet: {url: x, refresh_interval: 0s}\n".to_string()),
        Just("server:\n  scrape_timeout: 10s\n".to_string()),
        Just("listen_address: ${PORT}\n".to_string()),
        Just("node_name: ${NODE:-n}\n".to_string()),
        Just("state_dir: '${ODD}'\n".to_string()),
        Just("host: \"${ODD}\"\n".to_string()),
        Just("- a\n".to_string()),
        Just("[{[{".to_string()),
        Just("# ${NOPE}\n".to_string()),
        Just("${".to_string()),
        Just("$$".to_string()),
        eos_testkit::fuzz::line().prop_map(|l| l + "\n"),
        (0usize..12).prop_map(|n| " ".repeat(n)),
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|p| p.concat())
}

fn env(k: &str) -> Option<String> {
    match k {
        "PORT" => Some(":9100".into()),
        "NODE" => Some("worker-1".into()),
        "ODD" => Some("a: [b, \"c\" # 'd'\n e".into()),
        _ => None,
    }
}

fn check(text: &str) {
    let lines = text.lines().count() + 1;
    match Config::parse("f.yaml", text, &env) {
        Ok(cfg) => {
            // A parsed config also survives validation and overrides.
            let _ = cfg.validate("f.yaml", text);
        }
        Err(e) => {
            assert!(!e.message.is_empty());
            if let Some(l) = e.line {
                assert!(l >= 1 && l <= lines + 1, "line {l} of {lines}: {e}");
            }
        }
    }
    let _ = crate::config::from_text("f.yaml", text, &Overrides::default());
}

proptest! {
    #![proptest_config(eos_testkit::fuzz::config())]

    #[test]
    fn fuzz_config(text in yamlish()) {
        check(&text);
    }

    #[test]
    fn fuzz_config_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn fuzz_expand_env(text in yamlish()) {
        if let Ok(out) = expand_env(&text, &env) {
            // Expansion adds at most the values' length (escaped) per reference.
            prop_assert!(out.len() <= text.len() * 40 + 64);
        }
    }

    #[test]
    fn fuzz_keypath(text in yamlish(), path in proptest::collection::vec("[a-z_]{1,8}", 0..4)) {
        let keys: Vec<&str> = path.iter().map(String::as_str).collect();
        if let Some(l) = keypath::line_of(&text, &keys) {
            prop_assert!(l >= 1 && l <= text.lines().count());
        }
    }
}
