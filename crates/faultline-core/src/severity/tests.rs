//! Data-driven tests of severity suggestion: impacted flows and SLO burns in,
//! severity and reason out, for the standard definitions and a YAML config.

use super::*;

fn flows(s: &str) -> Vec<FlowName> {
    s.split_whitespace().map(|f| FlowName::new(f).unwrap()).collect()
}

/// `burns` is `slo:flow:rate ...`.
#[track_caller]
fn check(defs: &SeverityDefinitions, impacted: &str, burns: &str, expect: &str) {
    let impacted = flows(impacted);
    let burns: Vec<SloBurn> = burns
        .split_whitespace()
        .map(|b| {
            let mut p = b.split(':');
            let (slo, flow, rate) = (p.next().unwrap(), p.next().unwrap(), p.next().unwrap());
            SloBurn { slo: slo.into(), flow: FlowName::new(flow).ok(), burn_rate: rate.parse().unwrap() }
        })
        .collect();
    let s = defs.suggest(&SeverityFacts { impacted_flows: &impacted, burns: &burns });
    assert_eq!(s.reason, expect);
    assert!(s.reason.starts_with(s.severity.as_str()));
}

#[test]
fn standard_definitions() {
    let d = SeverityDefinitions::standard(flows("checkout login"));
    d.validate().unwrap();
    check(
        &d,
        "checkout",
        "checkout-avail:checkout:15.2",
        "SEV1: critical flow checkout impacted and SLO checkout-avail at 15.2× (≥ 14.4×) (rule 1 \"critical flow fast burn\")",
    );
    check(
        &d,
        "search reviews",
        "search-lat:search:7 reviews-avail:reviews:6.5",
        "SEV1: 2 flows impacted (≥ 2) and SLO search-lat at 7.0×, reviews-avail at 6.5× (≥ 6×) (rule 2 \"several flows burning\")",
    );
    check(&d, "search reviews", "search-lat:search:7 reviews-avail:reviews:2", "SEV2: SLO search-lat at 7.0× (≥ 6×) (rule 3 \"SLO burning\")");
    check(&d, "checkout", "checkout-avail:checkout:3", "SEV2: critical flow checkout impacted (rule 4 \"critical flow impacted\")");
    check(&d, "search", "search-lat:search:2", "SEV3: no severity rule matched (default)");
    check(&d, "", "x:search:NaN", "SEV3: no severity rule matched (default)");
}

#[test]
fn definitions_load_from_yaml_and_are_validated() {
    let d: SeverityDefinitions = serde_saphyr::from_str(
        "
critical_flows: [checkout]
rules:
  - {severity: SEV1, name: payments down, when: {any_flow: [checkout, refund], min_burn_rate: 10}}
  - {severity: SEV2, when: {min_impacted_flows: 3}}
default: SEV3
",
    )
    .unwrap();
    d.validate().unwrap();
    check(&d, "refund", "refund-avail:refund:12", "SEV1: flow refund impacted and SLO refund-avail at 12.0× (≥ 10×) (rule 1 \"payments down\")");
    check(&d, "a b c", "", "SEV2: 3 flows impacted (≥ 3) (rule 2)");
    let bad: SeverityDefinitions = serde_saphyr::from_str("rules:\n  - {severity: SEV1, when: {}}\n").unwrap();
    assert_eq!(bad.validate().unwrap_err().to_string(), "rule 1: has no conditions (it would always match); use `default` instead");
}

#[test]
fn validation_names_the_field() {
    let load = |y: &str| serde_saphyr::from_str::<SeverityDefinitions>(y).unwrap();
    let e = |d: SeverityDefinitions| d.validate().unwrap_err().to_string();
    assert_eq!(
        e(load("rules:\n  - {severity: SEV2, when: {min_impacted_flows: 1, min_burning_slos: 2}}\n")),
        "rule 1: min_burning_slos needs min_burn_rate (the rate they must burn at)"
    );
    assert_eq!(
        e(load("rules:\n  - {severity: SEV2, when: {min_burn_rate: 1}}\n  - {severity: SEV2, when: {min_burn_rate: -1}}\n")),
        "rule 2: min_burn_rate must be a positive number"
    );
    assert_eq!(e(load("rules:\n  - {severity: SEV2, when: {min_impacted_flows: 0}}\n")), "rule 1: min_impacted_flows and min_burning_slos must be at least 1");
    let d = load("critical_flows: [checkout]\nrules:\n  - {severity: SEV1, when: {any_flow: [refunds]}}\n");
    d.validate().unwrap();
    assert_eq!(d.validate_flows(&flows("checkout login")).unwrap_err().to_string(), "rule 1: when.any_flow: unknown flow \"refunds\" (not in the catalogue)");
    assert_eq!(d.validate_flows(&flows("login")).unwrap_err().to_string(), "critical_flows: unknown flow \"checkout\" (not in the catalogue)");
    assert!(d.validate_flows(&flows("checkout refunds")).is_ok());
    assert!(d.validate_flows(&[]).is_ok(), "no catalogue: nothing to check against");
}
