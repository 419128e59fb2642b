//! Valid output, always: whatever textfiles the node module is given (families that redefine
//! the agent's or another module's, invalid names, repeated labels and series, HELP and TYPE
//! that disagree, odd values and lines), the agent's whole `/metrics` parses, has each family
//! once, passes `promtool check metrics` without errors (lint warnings aside) and is scraped
//! by a real Prometheus with `up == 1`. The textfiles come from a property-test strategy, so
//! `EOS_FUZZ_CASES` sets how many sets are tried.

use eos_tests::{promtool_check_metrics, wait_until, Agent, Prometheus, TempDir};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use std::collections::HashSet;
use std::time::Duration;

/// One line of a textfile, from the pieces that break expositions.
fn textfile_line() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("node_load1"),
        Just("node_textfile_scrape_error"),
        Just("eos_agent_build_info"),
        Just("container_cpu_usage_seconds_total"),
        Just("process_open_fds"),
        Just("myapp_jobs_total"),
        Just("myapp_up"),
        Just("bad-name"),
        Just("9starts_with_digit"),
    ];
    let labels = prop_oneof![
        Just(""),
        Just("{a=\"1\"}"),
        Just("{a=\"1\",a=\"2\"}"),
        Just("{le=\"x\"}"),
        Just("{a=\"unterminated}"),
        Just("{bad-label=\"x\"}"),
        Just("{a=\"\\\\n\\\"\"}"),
    ];
    let value = prop_oneof![
        Just("1"),
        Just("-0.5"),
        Just("NaN"),
        Just("+Inf"),
        Just("1e400"),
        Just("x"),
        Just("1 1700000000000"),
    ];
    prop_oneof![
        (name.clone(), labels, value).prop_map(|(n, l, v)| format!("{n}{l} {v}")),
        (name.clone(), "[ -~]{0,20}").prop_map(|(n, h)| format!("# HELP {n} {h}")),
        (
            name,
            prop_oneof![
                Just("counter"),
                Just("gauge"),
                Just("histogram"),
                Just("bogus")
            ]
        )
            .prop_map(|(n, t)| format!("# TYPE {n} {t}")),
        Just("this is { not valid".to_string()),
        Just(String::new()),
    ]
}

fn textfiles() -> impl Strategy<Value = Vec<Vec<String>>> {
    proptest::collection::vec(proptest::collection::vec(textfile_line(), 0..12), 1..4)
}

/// The checks on one scrape; an error says what is wrong.
fn check(text: &str) -> Result<(), String> {
    eos_exposition::parse_text(text).map_err(|e| format!("does not parse: {e}"))?;
    let mut seen = HashSet::new();
    for l in text.lines().filter_map(|l| l.strip_prefix("# HELP ")) {
        let name = l.split(' ').next().unwrap_or("");
        if !seen.insert(name.to_string()) {
            return Err(format!("family {name} twice"));
        }
    }
    let report = promtool_check_metrics(text);
    // 0: clean; 3: lint findings only. Anything else is a parse failure.
    if report.code != 0 && report.code != 3 {
        return Err(format!("promtool: {:?}", report.problems));
    }
    if report.problems.iter().any(|p| p.contains("error")) {
        return Err(format!("promtool: {:?}", report.problems));
    }
    Ok(())
}

#[test]
fn hostile_textfiles_never_make_the_output_invalid() {
    let dir = TempDir::new("valid-exposition");
    let textfile_dir = dir.join("textfiles");
    std::fs::create_dir_all(&textfile_dir).expect("textfile dir");
    let config = dir.join("agent.yaml");
    std::fs::write(
        &config,
        format!(
            "state_dir: {}\nkubelet: {{enabled: false}}\nmodules:\n  node: {{enabled: true}}\n  containers: {{enabled: true}}\n",
            dir.join("state").display()
        ),
    )
    .expect("config");
    let agent = Agent::start(&[
        "--config",
        config.to_str().expect("utf-8 path"),
        &format!("--collector.textfile.directory={}", textfile_dir.display()),
    ]);
    let mut runner = TestRunner::new(eos_testkit::fuzz::config());
    let result = runner.run(&textfiles(), |files| {
        for old in std::fs::read_dir(&textfile_dir).expect("list").flatten() {
            let _ = std::fs::remove_file(old.path());
        }
        for (i, lines) in files.iter().enumerate() {
            std::fs::write(
                textfile_dir.join(format!("f{i}.prom")),
                lines.join("\n") + "\n",
            )
            .expect("textfile");
        }
        let text = agent.metrics();
        prop_assert!(text.contains("node_load1 "), "node metrics are there");
        check(&text).map_err(|e| TestCaseError::fail(format!("{e}\n--- files: {files:?}")))?;
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}\nagent log:\n{}", agent.log_text());
    }

    // The last set of files is still in place: a real Prometheus scrapes it.
    let prom = Prometheus::start(&[&agent.addr]);
    assert!(
        wait_until(Duration::from_secs(60), || prom.query_value("up")
            == Some(1.0)),
        "Prometheus did not scrape the agent: up = {:?}",
        prom.query_value("up")
    );
    let samples = prom.query_value("scrape_samples_scraped").unwrap_or(0.0);
    assert!(samples > 100.0, "{samples} samples scraped");
}
