//! End-to-end through the built binary. Synchronisation is by reading the
//! server's "listening" line and by process exit, never by sleeping.

use std::process::{Command, Output};

use crate::support::{BIN, Server, create_token};

fn faultline(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("FAULTLINE_TOKEN")
        .env_remove("FAULTLINE_URL")
        .env_remove("FAULTLINE_DATABASE_URL")
        .env_remove("FAULTLINE_CONFIG")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: Output) -> String {
    assert!(o.status.success(), "exit {:?}\nstdout: {}\nstderr: {}", o.status, stdout(&o), stderr(&o));
    stdout(&o)
}

/// A failed command prints exactly one line on stderr, starting `error:`.
#[track_caller]
fn one_line_error(o: Output) -> String {
    assert!(!o.status.success(), "expected failure, got: {}", stdout(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "stderr should be one line: {err:?}");
    assert!(err.starts_with("error: "), "{err:?}");
    err
}

#[test]
fn incident_survives_restart_with_its_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let admin = create_token(dir.path(), "admin");
    assert!(admin.starts_with("flt_"), "{admin}");

    let server = Server::start(dir.path(), &[]);
    let declared = ok(faultline(&["incidents", "--url", &server.url, "--token", &admin, "--json", "declare", "payments down", "--severity", "SEV1"]));
    let v: serde_json::Value = serde_json::from_str(&declared).unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    ok(faultline(&["incidents", "--url", &server.url, "--token", &admin, "ack", &id]));
    server.stop();

    let server = Server::start(dir.path(), &[]);
    let shown = ok(faultline(&["incidents", "--url", &server.url, "--token", &admin, "--json", "show", &id]));
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(v["title"], "payments down");
    assert_eq!(v["status"], "acknowledged");
    // The response workflow adds its routing notes; the lifecycle is what we check.
    let kinds: Vec<&str> = v["timeline"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).filter(|k| *k != "system_note").collect();
    assert_eq!(kinds, ["opened", "acknowledged"]);

    let table = ok(faultline(&["incidents", "--url", &server.url, "--token", &admin, "list"]));
    assert!(table.contains("payments down") && table.contains("SEV1") && table.contains("acknowledged"), "{table}");
    ok(faultline(&["incidents", "--url", &server.url, "--token", &admin, "resolve", &id, "--note", "fixed"]));
    let text = ok(faultline(&["incidents", "--url", &server.url, "--token", &admin, "show", &id]));
    assert!(text.contains("resolved: fixed"), "the timeline in words: {text}");
    server.stop();
}

#[test]
fn cli_errors_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let read = create_token(dir.path(), "read");
    let server = Server::start(dir.path(), &[]);

    let e = one_line_error(faultline(&["incidents", "--url", &server.url, "--token", "flt_bogus", "list"]));
    assert!(e.contains("invalid token (HTTP 401, unauthorized)"), "{e}");
    let e = one_line_error(faultline(&["incidents", "--url", &server.url, "--token", &read, "declare", "x"]));
    assert!(e.contains("HTTP 403, forbidden"), "{e}");
    let e = one_line_error(faultline(&["incidents", "--url", &server.url, "--token", &read, "show", "nope"]));
    assert!(e.contains("not an incident id"), "{e}");
    server.stop();

    // Nothing listens on port 1.
    let e = one_line_error(faultline(&["incidents", "--url", "http://127.0.0.1:1", "list"]));
    assert!(e.contains("cannot reach Faultline at http://127.0.0.1:1"), "{e}");
    let e = one_line_error(faultline(&["token", "create", "--data-dir", "/proc/nope", "--scope", "admin"]));
    assert!(e.contains("cannot create data dir /proc/nope"), "{e}");
    let e = one_line_error(faultline(&["serve", "--database-url", "postgres://u:pw@127.0.0.1:1/db"]));
    assert!(e.contains("cannot connect to PostgreSQL at postgres://u:***@127.0.0.1:1/db"), "{e}");
    let e = one_line_error(faultline(&["serve", "--data-dir", dir.path().to_str().unwrap(), "--listen", "nowhere"]));
    assert!(e.contains("invalid --listen"), "{e}");
}

#[test]
fn token_revoke_and_list() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    ok(faultline(&["token", "create", "--data-dir", d, "--scope", "read", "--name", "grafana"]));
    let list = ok(faultline(&["token", "list", "--data-dir", d]));
    assert!(list.contains("grafana") && list.contains("read"), "{list}");
    assert!(!list.contains("flt_"), "secrets are never listed: {list}");
    ok(faultline(&["token", "revoke", "--data-dir", d, "grafana"]));
    let e = one_line_error(faultline(&["token", "revoke", "--data-dir", d, "grafana"]));
    assert!(e.contains("no live token"), "{e}");
    let e = one_line_error(faultline(&["token", "create", "--data-dir", d, "--scope", "read", "--name", "grafana"]));
    assert!(e.contains("already exists"), "{e}");
}

#[test]
fn version_and_help() {
    let v = ok(faultline(&["--version"]));
    assert!(v.starts_with("faultline "), "{v}");
    let help = ok(faultline(&["--help"]));
    for cmd in ["serve", "token", "incidents"] {
        assert!(help.contains(cmd), "{help}");
    }
}

/// The drill targets of the correlation issue, through the real binary:
/// every built-in scenario detected as exactly one incident, the true origin
/// ranked first, the class right, and no incident in the fault-free world.
#[test]
fn drills_meet_their_targets() {
    let out = ok(faultline(&["drill", "--all", "--json"]));
    let scores: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert!(scores.len() >= 12, "{out}");
    for s in &scores {
        let name = s["scenario"].as_str().unwrap();
        assert_eq!(s["fault_free_incidents"], 0, "{name}: a quiet world opened an incident");
        assert_eq!(s["detected"], true, "{name}");
        assert_eq!(s["incidents"], 1, "{name}");
        assert_eq!(s["origin_rank"], 1, "{name}: {}", s["sentence"]);
        assert_eq!(s["class_correct"], true, "{name}: got {} expected {}", s["class"], s["expected_class"]);
    }
}

/// The main job, as a new user runs it: the simulator's telemetry goes over
/// the OTLP wire into the demo's own server (so this also tests the
/// simulator's exporter against our receivers), one incident is explained,
/// the on-call people are paged through a webhook, the escalation reaches the
/// second level, the acknowledgement stops it, the resolve is sent, and the
/// status page goes from degraded back to operational. A Prometheus alert and a
/// PagerDuty event sent meanwhile join the same incident.
#[test]
fn demo_explains_pages_escalates_and_resolves_the_payment_outage() {
    // As fast as the machine goes: the demo's clock follows the telemetry.
    let out = ok(faultline(&["demo", "--speed", "1000"]));
    let pos = |needle: &str| out.find(needle).unwrap_or_else(|| panic!("missing {needle:?} in:\n{out}"));
    assert!(out.contains("1 incident(s) opened"), "{out}");
    assert!(out.contains("incident opened (SEV2)"), "checkout is a critical flow: {out}");
    assert!(out.contains("diagnosis: fraud-db/connection-pool (origin"), "{out}");
    assert!(out.contains("gateway → fraud-check (POST /fraud-check) retries"), "{out}");
    assert!(out.contains("class:     cascading_failure"), "{out}");
    // Alerts in the formats teams already emit join the incident the
    // telemetry opened instead of opening their own.
    assert!(out.contains("finding: alertmanager alert"), "{out}");
    assert!(out.contains("finding: pagerduty alert demo-gateway-monitor/gateway-5xx"), "{out}");
    assert!(out.contains("cleared: pagerduty alert demo-gateway-monitor/gateway-5xx"), "{out}");
    // Paging, escalation, acknowledgement, resolve — in that order.
    let alice = pos("page delivered: trigger to alice");
    let bob = pos("page delivered: trigger to bob");
    let ack = pos("  acknowledged\n");
    let stopped = pos("payments: acknowledged by bob: escalation stopped");
    let resolved = pos("resolved: every symptom cleared");
    let resolve_alice = pos("page delivered: resolve to alice");
    let resolve_bob = pos("page delivered: resolve to bob");
    assert!(alice < bob && bob < ack && ack < stopped && stopped < resolved && resolved < resolve_alice.min(resolve_bob), "{out}");
    // The status page: operational, degraded, operational again.
    let first = pos("status page: All Systems Operational");
    let degraded = out
        .find("status page: Partial System Outage")
        .or_else(|| out.find("status page: Minor Service Outage"))
        .or_else(|| out.find("status page: Major Service Outage"));
    let degraded = degraded.unwrap_or_else(|| panic!("the status page never degraded:\n{out}"));
    let back = out.rfind("status page: All Systems Operational").unwrap();
    assert!(first < degraded && degraded < back, "{out}");
    // Nobody paged twice for the same step: 4 triggers (alice, bob, carol, dave) and 4 resolves.
    assert!(out.contains("; 8 page(s) delivered to the webhook"), "{out}");
}
