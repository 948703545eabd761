//! The binary's other faces: `check`, `fingerprint`, `--help`, configuration errors, JSON logs.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Output};

use support::{Gateway, Options};

fn gateway(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coffre-gateway"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn help_is_available_everywhere() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["check", "--help"],
        &["fingerprint", "--help"],
    ] {
        let output = gateway(args);
        assert!(output.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage"),
            "{args:?}"
        );
    }
}

#[test]
fn check_reports_a_clean_store_and_fails_on_a_missing_one() {
    let mut running = Gateway::start();
    assert!(running.stop().success());
    let data = running.data_dir.to_str().unwrap().to_owned();
    let output = gateway(&["check", "--data", &data, "--read-data"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("no problems found"), "{stdout}");

    let missing = running.data_dir.join("nothing-here");
    let output = gateway(&["check", "--data", missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("error"));
}

#[test]
fn bad_configuration_exits_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gateway.toml");
    std::fs::write(&file, "[limits]\nmax_conections = 3\n").unwrap();
    let output = gateway(&["serve", "--config", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("limits.max_conections"), "{stderr}");

    let output = Command::new(env!("CARGO_BIN_EXE_coffre-gateway"))
        .args(["serve", "--data", dir.path().to_str().unwrap()])
        .env("COFFRE_GATEWAY_IDLE_TIMEOUT_SECS", "forever")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("COFFRE_GATEWAY_IDLE_TIMEOUT_SECS"),
        "{stderr}"
    );
}

#[test]
fn fingerprint_before_the_first_run_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    let output = gateway(&["fingerprint", "--data", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("first run"));
}

#[test]
fn json_logs_are_one_object_per_line() {
    let mut running = Gateway::start_with(Options::default().arg("--log-format").arg("json"));
    assert!(running.stop().success());
    let log = running.stderr_text();
    let json_lines: Vec<&str> = log.lines().filter(|l| l.starts_with('{')).collect();
    assert!(!json_lines.is_empty(), "{log}");
    for line in json_lines {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(value.get("level").is_some(), "{line}");
    }
}
