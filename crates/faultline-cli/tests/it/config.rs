//! `faultline config check` and `faultline serve --response-config` through
//! the real binary: a configuration typo that would page nobody is refused
//! with its file, line and the unknown name, with exit code 1.

use std::process::{Command, Output};

use crate::support::BIN;

fn faultline(args: &[&str]) -> Output {
    faultline_env(args, &[])
}

fn faultline_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).env_remove("FAULTLINE_CONFIG").env_remove("FAULTLINE_RESPONSE_CONFIG").env_remove("FAULTLINE_DATABASE_URL").env_remove("CHECK_HOOK_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

const GOOD: &str = "\
users:
  - {id: alice, contacts: [{channel: hook}]}
  - {id: bob, contacts: [{channel: hook}]}
schedules:
  - name: primary
    time_zone: Europe/London
    layers:
      - {name: weekly, start: \"2026-01-05T09:00:00\", rotation: weekly, participants: [alice, bob]}
escalation_policies:
  - {name: payments, levels: [{delay_minutes: 5, targets: [{schedule: primary}]}]}
default_policy: payments
routing:
  route:
    receiver: default
    routes:
      - {matchers: ['severity=\"SEV1\"'], receiver: chat, escalation_policy: payments}
receivers:
  - {name: default}
  - {name: chat, channels: [hook]}
channels:
  - {name: hook, type: webhook, url_env: CHECK_HOOK_URL}
";

#[test]
fn config_check_accepts_a_good_file_and_refuses_typos_with_file_line_and_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("response.yaml");
    let p = path.to_str().unwrap();
    std::fs::write(&path, GOOD).unwrap();
    let o = faultline(&["config", "check", p]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out} {}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("ok — 2 user(s), 1 schedule(s), 1 escalation polic(ies), 2 receiver(s), 1 channel(s), a routing tree"), "{out}");
    assert!(out.contains("not set here (checked as set): CHECK_HOOK_URL"), "{out}");

    for (typo, want) in [
        (
            GOOD.replace("[alice, bob]", "[alice, bobb]"),
            format!("error: response config {p}:8: schedule primary: layer weekly: participant \"bobb\" is not a declared user (users: alice, bob)"),
        ),
        (
            GOOD.replace("receiver: chat", "receiver: caht"),
            format!("error: response config {p}:16: routing: route to undefined receiver \"caht\" (receivers: chat, default)"),
        ),
        (
            GOOD.replace("escalation_policy: payments", "escalation_policy: paymets"),
            format!("error: response config {p}:16: routing: route names unknown escalation_policy \"paymets\" (escalation_policies: payments)"),
        ),
    ] {
        std::fs::write(&path, typo).unwrap();
        let o = faultline(&["config", "check", p]);
        assert_eq!(o.status.code(), Some(1));
        assert_eq!(String::from_utf8_lossy(&o.stderr).trim_end(), want);
        // The server refuses to start on the same file, with the same line.
        let data = dir.path().join("data");
        let o = faultline_env(
            &[
                "serve",
                "--data-dir",
                data.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--otlp-grpc-listen",
                "off",
                "--otlp-http-listen",
                "off",
                "--response-config",
                p,
            ],
            &[("CHECK_HOOK_URL", "http://127.0.0.1:9/hook")],
        );
        assert_eq!(o.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&o.stderr).trim_end().ends_with(want.trim_start_matches("error: ")), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(o.stdout.is_empty(), "never listening: {}", String::from_utf8_lossy(&o.stdout));
    }
    let o = faultline(&["config", "check", dir.path().join("missing.yaml").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.yaml: cannot read"));
}

#[test]
fn serve_help_names_the_response_config_and_its_documentation() {
    let o = faultline(&["serve", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("--response-config"), "{help}");
    assert!(help.contains("docs/response-config.md"), "{help}");
    assert!(help.contains("faultline config check"), "{help}");
}
