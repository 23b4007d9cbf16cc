//! Detector oracle tests against `../shared/data/slo`: every healthchecks.io
//! check-in status case (period + grace, cron in a time zone incl. DST,
//! OnCalendar, start/grace) and every Prometheus `deriv` / `predict_linear`
//! regression vector.
//!
//! Not here: behavioural tests of the amplifier detectors (unit tests in
//! `src/detect/tests.rs`).

use faultline_core::detect::checkin::{CheckSpec, CheckState, CheckStatus, Schedule, grace_start, status_at};
use faultline_core::detect::trend::{deriv, linear_regression, predict_linear};
use faultline_core::slo::duration::parse_duration;
use faultline_core::{Duration, Timestamp};
use serde_json::Value;

use super::slo_oracles::{read, slo_data};

fn status_of(s: &str) -> CheckStatus {
    match s {
        "new" => CheckStatus::New,
        "up" => CheckStatus::Up,
        "grace" => CheckStatus::Grace,
        "down" => CheckStatus::Down,
        "paused" => CheckStatus::Paused,
        "started" => CheckStatus::Started,
        other => panic!("unknown status {other}"),
    }
}

fn instant(s: &str, now: Timestamp) -> Timestamp {
    match s.strip_prefix("now-") {
        Some(rel) => now - parse_duration(rel).unwrap(),
        None if s == "now" => now,
        None => Timestamp::parse_rfc3339(s).unwrap(),
    }
}

#[test]
fn healthchecks_status_cases() {
    let Some(path) = slo_data("healthchecks/status-cases.yaml") else { return };
    let doc: Value = serde_saphyr::from_str(&read(&path)).unwrap();
    let now = Timestamp::parse_rfc3339("2026-06-01T12:00:00Z").unwrap();
    let mut checked = 0;
    for case in doc["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let c = &case["check"];
        let tz = c["tz"].as_str().unwrap_or("UTC").to_owned();
        let schedule = match c["kind"].as_str().unwrap_or("simple") {
            "simple" => Schedule::Simple { period: c["timeout"].as_str().map_or(Duration::from_mins(1440), |t| parse_duration(t).unwrap()) },
            "cron" => Schedule::Cron { expr: c["schedule"].as_str().unwrap().into(), tz },
            "oncalendar" => Schedule::OnCalendar { expr: c["schedule"].as_str().unwrap().into(), tz },
            k => panic!("{name}: kind {k}"),
        };
        let spec = CheckSpec {
            name: name.into(),
            schedule,
            grace: c["grace"].as_str().map_or(Duration::from_mins(60), |g| parse_duration(g).unwrap()),
            service: None,
        };
        let statuses: Vec<CheckStatus> = match case["for_each_status"].as_array() {
            Some(list) => list.iter().map(|s| status_of(s.as_str().unwrap())).collect(),
            None => vec![status_of(c["status"].as_str().unwrap_or("new"))],
        };
        for status in statuses {
            let state = CheckState {
                status,
                last_ping: c["last_ping"].as_str().map(|s| instant(s, now)),
                last_start: c["last_start"].as_str().map(|s| instant(s, now)),
            };
            if let Some(exp) = case["expect"].as_str() {
                assert_eq!(status_at(&spec, &state, now, false).unwrap(), status_of(exp), "{name}");
                checked += 1;
            }
            if let Some(exp) = case["expect_with_started"].as_str() {
                assert_eq!(status_at(&spec, &state, now, true).unwrap(), status_of(exp), "{name} ({status:?}) with_started");
                checked += 1;
            }
            if let Some(at) = case["at"].as_object() {
                for (t, exp) in at {
                    let t = Timestamp::parse_rfc3339(t).unwrap();
                    assert_eq!(status_at(&spec, &state, t, false).unwrap(), status_of(exp.as_str().unwrap()), "{name} at {t}");
                    checked += 1;
                }
            }
            if let Some(next) = case["expect_next_ping"].as_str() {
                assert_eq!(grace_start(&spec, &state).unwrap(), Some(Timestamp::parse_rfc3339(next).unwrap()), "{name}");
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 31, "every expectation in the file was checked");
}

#[test]
fn prometheus_regression_vectors() {
    let Some(path) = slo_data("prometheus-promql/regression-vectors.json") else { return };
    let doc: Value = serde_json::from_str(&read(&path)).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let pts: Vec<(Timestamp, f64)> =
            c["samples"].as_array().unwrap().iter().map(|p| (Timestamp::from_secs(p[0].as_i64().unwrap()), p[1].as_f64().unwrap())).collect();
        let now = Timestamp::from_secs(c["eval_time_s"].as_i64().unwrap());
        let expected = c["expected_by_prometheus"].as_f64().unwrap();
        let got = match c["function"].as_str().unwrap() {
            "deriv" => deriv(&pts).unwrap(),
            "predict_linear" => {
                let h = Duration::from_secs(c["horizon_s"].as_i64().unwrap());
                let (slope, intercept) = linear_regression(&pts, now).unwrap();
                assert!((slope - c["slope"].as_f64().unwrap()).abs() <= 1e-12 * slope.abs().max(1.0), "{name}: slope {slope}");
                assert!((intercept - c["intercept_at_eval_time"].as_f64().unwrap()).abs() <= 1e-9, "{name}: intercept {intercept}");
                predict_linear(&pts, now, h).unwrap()
            }
            f => panic!("{name}: {f}"),
        };
        assert!((got - expected).abs() <= 1e-9 * expected.abs().max(1.0), "{name}: got {got}, Prometheus {expected}");
    }
    assert_eq!(cases.len(), 6);
    // Edge cases of the same algorithm: <2 samples, constant y, infinite y.
    let t = Timestamp::from_secs;
    assert_eq!(deriv(&[(t(0), 1.0)]), None);
    assert_eq!(linear_regression(&[(t(0), 5.0), (t(60), 5.0)], t(60)), Some((0.0, 5.0)));
    let (s, i) = linear_regression(&[(t(0), f64::INFINITY), (t(60), f64::INFINITY)], t(60)).unwrap();
    assert!(s.is_nan() && i.is_nan());
}
