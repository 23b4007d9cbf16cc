//! Same seed, same bits: two runs of a scenario produce identical series.

use faultline_sim::{Scenario, run_scenario};

#[test]
fn same_seed_gives_bit_identical_series_and_other_seeds_differ() {
    let text = include_str!("../../scenarios/retry-storm.yaml");
    let sc = Scenario::from_yaml(text).unwrap();
    let a = run_scenario(&sc, Some(7), None, false);
    let b = run_scenario(&sc, Some(7), None, false);
    let c = run_scenario(&sc, Some(8), None, false);
    assert_eq!(serde_json::to_string(&a.series).unwrap(), serde_json::to_string(&b.series).unwrap());
    assert_eq!(a.totals.events, b.totals.events);
    assert_ne!(serde_json::to_string(&a.series).unwrap(), serde_json::to_string(&c.series).unwrap());
}
