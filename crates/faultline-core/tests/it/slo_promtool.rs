//! Side by side with Prometheus: `promtool test rules` evaluates Sloth's own
//! generated rules (`shared/data/slo/sloth/promtool/out-base.yaml`) over a
//! synthetic counter series, and Faultline evaluates the same series with
//! `eval_series`. The promtool test file asserts, for EVERY minute, exactly
//! the alerts Faultline says are firing; promtool fails on any difference.
//!
//! Needs `promtool` (Debian package `prometheus`). Missing: fails under
//! `CI=true`, otherwise prints a skip message. Not here: rule generation.

use std::fmt::Write as _;
use std::process::Command;

use faultline_core::Timestamp;
use faultline_core::slo::sloth::{parse_sloth_specs, sloth_default_windows};
use faultline_core::slo::{AlertSeverity, SeriesRow, eval_series};

use super::slo_oracles::{read, slo_data};

const TOTAL_PER_MIN: u64 = 1999;

/// Errors per minute (out of 1999): calm, a sharp outage, calm, a slow burn,
/// a low simmer, calm again. Chosen so page-quick, page-slow, ticket-quick and
/// ticket-slow all fire and resolve at different times.
fn errors_at(minute: u64) -> u64 {
    match minute {
        1..=60 => 1,
        61..=80 => 200,
        81..=200 => 1,
        201..=320 => 30,
        321..=400 => 3,
        _ => 1,
    }
}

fn promtool_available() -> bool {
    Command::new("promtool").arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn sloth_rules_fire_on_the_same_minutes_in_promtool_and_faultline() {
    let Some(dir) = slo_data("sloth") else { return };
    if !promtool_available() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("promtool not found (apt-get install -y prometheus); required under CI=true");
        }
        println!("skipped: promtool not found (apt-get install -y prometheus)");
        return;
    }
    let minutes: u64 = 800;
    let windows = sloth_default_windows(faultline_core::Duration::from_millis(30 * 86_400_000)).unwrap();
    let specs = parse_sloth_specs(&read(&dir.join("testdata/in-base.yaml")), &windows).unwrap();
    let slo1 = specs.iter().find(|s| s.name == "slo1").unwrap();

    // Faultline's view: one row per minute with that minute's increments.
    let rows: Vec<SeriesRow> =
        (1..=minutes).map(|m| SeriesRow { at: Timestamp::from_secs(m as i64 * 60), bad: errors_at(m) as f64, total: TOTAL_PER_MIN as f64 }).collect();
    let report = eval_series(slo1, &rows);

    // Guard against float ties: no window ratio may sit within 1e-9 (relative)
    // of a threshold, where PromQL's rate()/rate() and our Σbad/Σtotal could
    // round differently. This keeps the comparison about semantics.
    let mut cum = vec![0u64];
    for m in 1..=minutes {
        cum.push(cum[cum.len() - 1] + errors_at(m));
    }
    for p in &slo1.windows.pairs {
        let thr = slo1.threshold(p.factor);
        for w in [p.short, p.long] {
            let wm = (w.as_millis() / 60_000) as u64;
            for m in 1..=minutes {
                let from = m.saturating_sub(wm);
                let ratio = (cum[m as usize] - cum[from as usize]) as f64 / ((m - from) * TOTAL_PER_MIN) as f64;
                assert!(((ratio - thr) / thr).abs() > 1e-9, "series too close to a threshold at minute {m}");
            }
        }
    }

    // The series exercises every pair, and alerts both start and stop.
    for pair in ["page_quick", "page_slow", "ticket_quick", "ticket_slow"] {
        assert!(report.alerts.iter().any(|a| a.pair == pair), "{pair} never fired");
    }
    for sev in [AlertSeverity::Page, AlertSeverity::Ticket] {
        assert!(report.severities.iter().any(|i| i.severity == sev && i.end.is_some()), "{sev} never resolved");
    }

    // promtool test file: cumulative counters, one alert_rule_test per minute.
    let mut errs = String::from("0");
    let mut goods = String::from("0");
    let (mut e, mut g) = (0u64, 0u64);
    for m in 1..=minutes {
        e += errors_at(m);
        g += TOTAL_PER_MIN - errors_at(m);
        let _ = write!(errs, " {e}");
        let _ = write!(goods, " {g}");
    }
    let rule_file = dir.join("promtool/out-base.yaml").canonicalize().unwrap();
    let mut t = String::new();
    let _ = writeln!(t, "rule_files: [{:?}]", rule_file.display().to_string());
    let _ = writeln!(t, "evaluation_interval: 1m");
    // Recording groups before the alert group at each step, as in a server.
    let _ = writeln!(
        t,
        "group_eval_order: [sloth-slo-sli-recordings-svc01-slo1, sloth-slo-meta-recordings-svc01-slo1, sloth-slo-sli-recordings-svc01-slo02, sloth-slo-meta-recordings-svc01-slo02, sloth-slo-alerts-svc01-slo1]"
    );
    let _ = writeln!(t, "tests:\n  - interval: 1m\n    input_series:");
    let _ = writeln!(t, "      - series: 'http_request_duration_seconds_count{{job=\"myservice\",code=\"500\"}}'\n        values: '{errs}'");
    let _ = writeln!(t, "      - series: 'http_request_duration_seconds_count{{job=\"myservice\",code=\"200\"}}'\n        values: '{goods}'");
    let _ = writeln!(t, "    alert_rule_test:");
    let mut firing_minutes = 0;
    for m in 1..=minutes {
        let at = Timestamp::from_secs(m as i64 * 60);
        let _ = writeln!(t, "      - alertname: myServiceAlert\n        eval_time: {m}m");
        let mut exp = Vec::new();
        for (sev, extra) in [(AlertSeverity::Page, "alert03k1: alert03v1"), (AlertSeverity::Ticket, "alert04k1: alert04v1")] {
            if report.severity_firing_at(sev, at) {
                firing_minutes += 1;
                exp.push(format!(
                    "          - exp_labels: {{alert01k1: alert01v1, {extra}, sloth_severity: {sev}, sloth_id: svc01-slo1, sloth_service: svc01, sloth_slo: slo1, global01k1: global01v1, global02k1: global02v1}}\n            exp_annotations: {{alert02k1: alert02k2, summary: \"svc01 slo1 SLO error budget burn rate is over expected.\", title: \"({sev}) svc01 slo1 SLO error budget burn rate is too fast.\"}}"
                ));
            }
        }
        if exp.is_empty() {
            let _ = writeln!(t, "        exp_alerts: []");
        } else {
            let _ = writeln!(t, "        exp_alerts:\n{}", exp.join("\n"));
        }
    }
    assert!(firing_minutes > 100 && firing_minutes < 2 * minutes as usize - 100, "series should mix firing and quiet minutes");

    let tmp = std::env::temp_dir().join(format!("faultline-slo-promtool-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let test_file = tmp.join("side-by-side.promtest.yaml");
    std::fs::write(&test_file, &t).unwrap();
    let out = Command::new("promtool").arg("test").arg("rules").arg(&test_file).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "promtool disagrees with Faultline (test file kept at {}):\n{stdout}\n{stderr}", test_file.display());
    assert!(stdout.contains("SUCCESS"), "{stdout}");
    let _ = std::fs::remove_dir_all(&tmp);
    println!("promtool agrees on all {minutes} minutes ({firing_minutes} severity-minutes firing)");
}
