//! Gatus oracle tests: every extracted condition, pattern and JSON-path case
//! from `../shared/data/slo/gatus` runs through `faultline_core::probe`.
//!
//! Not here: probe scheduling or HTTP.

use faultline_core::probe::condition::{glob_match, json_path_eval};
use faultline_core::probe::{DisplayOptions, ProbeObservation, evaluate_condition, validate_condition};
use serde_json::Value;

use super::slo_oracles::{read, slo_data};

fn observation(result: &Value, context: Option<&Value>) -> ProbeObservation {
    let i = |k: &str| result.get(k).and_then(Value::as_i64).unwrap_or(0);
    ProbeObservation {
        status: i("status"),
        body: result.get("body").and_then(Value::as_str).unwrap_or("").to_owned(),
        ip: result.get("ip").and_then(Value::as_str).unwrap_or("").to_owned(),
        connected: result.get("connected").and_then(Value::as_bool).unwrap_or(false),
        response_time_ms: result.get("response_time_ms").and_then(Value::as_f64).unwrap_or(0.0) as i64,
        certificate_expiration_ms: i("certificate_expiration_ms"),
        domain_expiration_ms: 0,
        dns_rcode: String::new(),
        context: context.and_then(Value::as_object).map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).unwrap_or_default(),
    }
}

#[test]
fn gatus_condition_cases() {
    let Some(path) = slo_data("gatus/condition-cases.json") else { return };
    let cases: Value = serde_json::from_str(&read(&path)).unwrap();
    let mut wrong = Vec::new();
    let mut n = 0;
    for c in cases["validate"].as_array().unwrap() {
        let cond = c["condition"].as_str().unwrap();
        let got = validate_condition(cond);
        let want = c["expected_error"].as_str().map(str::to_owned);
        if got.clone().err() != want {
            wrong.push(format!("validate {cond:?}: got {got:?}, want {want:?}"));
        }
        n += 1;
    }
    for key in ["evaluate", "evaluate_with_context"] {
        for c in cases[key].as_array().unwrap() {
            let cond = c["condition"].as_str().unwrap();
            let opts = DisplayOptions {
                dont_resolve_failed: c["dont_resolve_failed_conditions"].as_bool().unwrap_or(false),
                resolve_successful: c["resolve_successful_conditions"].as_bool().unwrap_or(false),
            };
            let out = evaluate_condition(cond, &observation(&c["result"], c.get("context")), opts);
            let (ok, disp) = (c["expected_success"].as_bool().unwrap(), c["expected_output"].as_str().unwrap());
            if out.success != ok || out.display != disp {
                wrong.push(format!("{key} {}: got ({}, {:?}), want ({ok}, {disp:?})", c["name"], out.success, out.display));
            }
            n += 1;
        }
    }
    for c in cases["invalid_operator"].as_array().unwrap() {
        let out = evaluate_condition(c["condition"].as_str().unwrap(), &observation(&c["result"], None), DisplayOptions::default());
        assert_eq!(out.success, c["expected_success"].as_bool().unwrap());
        assert_eq!(out.errors.len() as u64, c["expected_errors"].as_u64().unwrap());
        n += 1;
    }
    assert!(wrong.is_empty(), "{} of {n} cases differ:\n{}", wrong.len(), wrong.join("\n"));
    assert_eq!(n, 29 + 98 + 3 + 1);
}

#[test]
fn gatus_pattern_and_jsonpath_cases() {
    let Some(path) = slo_data("gatus/pattern-jsonpath-cases.json") else { return };
    let cases: Value = serde_json::from_str(&read(&path)).unwrap();
    let mut wrong = Vec::new();
    for c in cases["pattern_match"].as_array().unwrap() {
        let (p, i) = (c["pattern"].as_str().unwrap(), c["input"].as_str().unwrap());
        if glob_match(p, i) != c["expected_match"].as_bool().unwrap() {
            wrong.push(format!("pat({p}) on {i:?}"));
        }
    }
    for c in cases["jsonpath_eval"].as_array().unwrap() {
        let got = json_path_eval(c["path"].as_str().unwrap(), c["data"].as_str().unwrap().as_bytes());
        let want_err = c["expected_error"].as_bool().unwrap();
        match (&got, want_err) {
            (Err(_), true) => {}
            (Ok((out, len)), false) if out == c["expected_output"].as_str().unwrap() && *len as u64 == c["expected_output_length"].as_u64().unwrap() => {}
            _ => wrong.push(format!("jsonpath {}: got {got:?}", c["name"])),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
