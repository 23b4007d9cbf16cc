//! The detection targets of issue 5 on the simulator, asserted: for every
//! built-in scenario the detector that names its mechanism fires within 2
//! windows of the fault's visible onset (as `examples/detect_scenarios`
//! defines it), and an hour of each scenario's world without its faults
//! produces no finding at all. Shares its harness with the example, which
//! prints the table of docs/benchmarks.md.

#[path = "../../examples/detect_scenarios/harness.rs"]
#[allow(dead_code)]
mod harness;

#[test]
fn every_scenario_is_detected_within_two_windows_and_a_quiet_hour_finds_nothing() {
    let rows = harness::run_all(3600.0).unwrap_or_else(|e| panic!("{e}"));
    let table = harness::render(&rows);
    assert_eq!(rows.len(), harness::EXPECTED.len());
    for r in &rows {
        let Some((seen, delay)) = &r.first else { panic!("{}: no {:?} finding\n{table}", r.scenario, r.expected) };
        assert!(*delay <= 2.0, "{}: {} fired {delay} windows after the visible onset\n{table}", r.scenario, seen.label());
        // Firing before the onset is allowed: a detector may see a trend
        // before it beats an hour of noise on the oracle's single statistic.
        assert!(seen.emitted_s > r.fault_start_s, "{}: fired before the fault\n{table}", r.scenario);
        assert!(r.fault_free.is_empty(), "{}: {} findings in the fault-free hour\n{table}", r.scenario, r.fault_free.len());
    }
}

#[test]
fn visible_onset_rules_read_the_series() {
    // A clean linear ramp is significant after a few points; flat data never is.
    let ramp: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, i as f64 * 0.5 + if i % 2 == 0 { 0.1 } else { -0.1 })).collect();
    assert!(harness::slope_t(&ramp) > 3.0);
    let flat: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, if i % 2 == 0 { 1.0 } else { -1.0 })).collect();
    assert!(harness::slope_t(&flat).abs() < 3.0);
    // The DNS fault is hidden behind a warm cache until the answer expires:
    // its visible onset is after the fault start, and no later than the TTL.
    let rows = harness::run("dns-outage", 60.0).unwrap_or_else(|e| panic!("{e}"));
    assert!(rows.onset_s >= rows.fault_start_s && rows.onset_s <= rows.fault_start_s + 30.0, "{rows:?}");
}
