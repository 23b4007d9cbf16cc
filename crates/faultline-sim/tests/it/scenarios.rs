//! Every built-in scenario: the undefended run shows its incident in the
//! series, and the defended run never degrades or recovers. Thresholds are
//! far from both outcomes (the runs below differ by an order of magnitude),
//! so sampling noise of a few percent cannot flip them.

use faultline_sim::builtin;
use faultline_sim::{RunOutput, Series, run_scenario};

fn run(name: &str, defended: bool) -> RunOutput {
    let sc = builtin::load(name, defended).expect("built-in exists").unwrap_or_else(|e| panic!("{name}: {e}"));
    run_scenario(&sc, None, None, defended)
}

fn both(name: &str) -> (Series, Series) {
    (run(name, false).series, run(name, true).series)
}

fn metric_max(s: &Series, name: &str, subject: &str, from_w: u32) -> f64 {
    s.metric(name, subject).iter().filter(|r| r.window >= from_w).map(|r| r.value).fold(f64::MIN, f64::max)
}

#[test]
fn every_builtin_parses_has_ground_truth_and_a_different_defended_variant() {
    for name in builtin::names() {
        let base = builtin::load(name, false).unwrap().unwrap_or_else(|e| panic!("{name}: {e}"));
        let def = builtin::load(name, true).unwrap().unwrap_or_else(|e| panic!("{name} defended: {e}"));
        assert!(base.incident_class().is_some(), "{name}");
        assert!(!base.faults.is_empty(), "{name} has a fault");
        let differs = base.services != def.services || base.load != def.load || base.cluster != def.cluster;
        assert!(differs, "{name}: the defended patch changes nothing");
    }
}

#[test]
fn retry_storm() {
    let (u, d) = both("retry-storm");
    let base = u.goodput_rate("users", 5.0, 20.0);
    assert!(u.goodput_rate("users", 40.0, 120.0) < 0.02 * base, "metastable after the trigger");
    assert!(d.goodput_rate("users", 60.0, 120.0) > 0.95 * base, "defended recovers");
}

#[test]
fn cache_stampede() {
    let (u, d) = both("cache-stampede");
    let base = u.goodput_rate("readers", 5.0, 30.0);
    let hits = |s: &Series, from: u32| s.metric("cache_hit_ratio", "app/cache:db").iter().filter(|r| r.window >= from).map(|r| r.value).fold(1.0, f64::min);
    assert!(hits(&u, 40) < 0.05, "hit ratio collapses and stays down");
    assert!(u.goodput_rate("readers", 45.0, 90.0) < 0.05 * base);
    assert!(d.goodput_rate("readers", 40.0, 90.0) > 0.97 * base);
    assert!(hits(&d, 40) > 0.85, "defended cache stays warm");
}

#[test]
fn cascading_failure() {
    let (u, d) = both("cascading-failure");
    let base = u.goodput_rate("payments", 5.0, 60.0);
    // Half the traffic never touches fraud-check, yet almost nothing succeeds:
    // the gateway itself is saturated.
    assert!(u.goodput_rate("payments", 70.0, 100.0) < 0.1 * base, "the cascade takes the whole gateway down");
    let gw_q = u.service("gateway").iter().map(|r| r.queue_depth).max().unwrap_or(0);
    assert!(gw_q > 1000, "gateway queue {gw_q}");
    let retries: u64 = u.edge("gateway", "fraud-check").iter().map(|r| r.retries).sum();
    assert!(retries > 100, "gateway retries fraud-check ({retries})");
    // Defended: payments fail fast, the other half of the traffic is untouched.
    assert!(d.goodput_rate("payments", 70.0, 100.0) > 0.45 * base);
    assert!(d.goodput_rate("payments", 110.0, 180.0) > 0.95 * base);
    assert!(u.goodput_rate("payments", 120.0, 180.0) > 0.9 * base, "this cascade ends with its trigger");
}

#[test]
fn queue_overload() {
    let (u, d) = both("queue-overload");
    let depth = |s: &Series, w: usize| s.service("order-consumer")[w].queue_depth;
    assert!(depth(&u, 60) > 2000 && depth(&u, 110) > depth(&u, 60) + 3000, "lag grows with a positive slope");
    let max_d = d.service("order-consumer").iter().skip(50).map(|r| r.queue_depth).max().unwrap_or(0);
    assert!(max_d < 300, "defended lag stays bounded: {max_d}");
    assert!(metric_max(&d, "instances", "order-consumer", 0) > 4.0, "consumers scaled out");
}

fn shard_skew(s: &Series, from_w: u32, to_w: u32) -> f64 {
    let mut per: Vec<f64> =
        (0..8).map(|k| s.service(&format!("store[{k}]")).iter().filter(|r| r.window >= from_w && r.window < to_w).map(|r| r.arrivals as f64).sum()).collect();
    per.sort_by(f64::total_cmp);
    per[7] / per[3]
}

#[test]
fn hot_partition() {
    let (u, d) = both("hot-partition");
    let base = u.goodput_rate("users", 5.0, 30.0);
    assert!(shard_skew(&u, 0, 30) < 1.5, "balanced before the hot key");
    assert!(shard_skew(&u, 40, 90) > 2.5, "one shard far above its peers");
    assert!(u.goodput_rate("users", 40.0, 90.0) < 0.9 * base);
    assert!(shard_skew(&d, 40, 90) < 1.5);
    assert!(d.goodput_rate("users", 40.0, 90.0) > 0.97 * base);
}

#[test]
fn dns_outage() {
    let (u, d) = both("dns-outage");
    let base = u.goodput_rate("users", 5.0, 20.0);
    assert!(u.goodput_rate("users", 45.0, 80.0) < 0.05 * base);
    assert!(u.goodput_rate("users", 95.0, 120.0) > 0.95 * base, "recovers when DNS returns");
    assert!(d.goodput_rate("users", 20.0, 120.0) > 0.97 * base, "serve-stale hides the outage");
}

#[test]
fn discovery_failure() {
    let (u, d) = both("discovery-failure");
    let base = u.goodput_rate("shoppers", 5.0, 30.0);
    assert!(u.goodput_rate("shoppers", 45.0, 90.0) < 0.05 * base);
    assert!(d.goodput_rate("shoppers", 30.0, 120.0) > 0.97 * base, "last-known-good endpoints");
}

#[test]
fn split_brain() {
    let (u, d) = both("split-brain");
    assert_eq!(metric_max(&u, "leaders", "orders-db", 0), 2.0, "two leaders at once");
    assert!(metric_max(&u, "writes_divergent", "orders-db", 0) > 0.0);
    assert_eq!(metric_max(&u, "leaders", "orders-db", 100), 1.0, "one leader after the partition heals");
    assert_eq!(metric_max(&d, "leaders", "orders-db", 0), 1.0, "quorum: never two leaders");
    assert_eq!(metric_max(&d, "writes_divergent", "orders-db", 0), 0.0);
    assert!(metric_max(&d, "writes_failed", "orders-db", 0) > 0.0, "the minority side is unavailable instead");
}

#[test]
fn crash() {
    let (u, d) = both("crash");
    let rows = |s: &Series, a: u32, b: u32| -> (u64, u64) {
        s.flow("users").iter().filter(|r| r.window >= a && r.window < b).fold((0, 0), |acc, r| (acc.0 + r.failed, acc.1 + r.requests))
    };
    let (f, n) = rows(&u, 31, 70);
    let ratio = f as f64 / n as f64;
    assert!((0.25..0.42).contains(&ratio), "a third of requests refused: {ratio}");
    let (f, _) = rows(&d, 33, 100);
    assert_eq!(f, 0, "health checks + one retry: no failures once the instance is ejected");
}

#[test]
fn partition() {
    let (u, d) = both("partition");
    let base = u.goodput_rate("users-a", 5.0, 30.0);
    assert!(u.goodput_rate("users-a", 35.0, 70.0) < 0.4 * base);
    assert!(u.goodput_rate("users-a", 80.0, 100.0) > 0.95 * base);
    assert!(d.goodput_rate("users-a", 30.0, 100.0) > 0.97 * base);
    assert!(d.goodput_rate("users-b", 30.0, 100.0) > 0.97 * d.goodput_rate("users-b", 5.0, 30.0));
}

#[test]
fn byzantine() {
    let (u, d) = both("byzantine");
    let sum = |s: &Series, f: fn(&faultline_sim::series::FlowRow) -> u64| -> u64 { s.flow("users").into_iter().filter(|r| r.window >= 35).map(f).sum() };
    let (wrong, failed, req) = (sum(&u, |r| r.wrong), sum(&u, |r| r.failed), sum(&u, |r| r.requests));
    let share = wrong as f64 / req as f64;
    assert!((0.28..0.39).contains(&share), "a third of answers silently wrong: {share}");
    assert_eq!(failed, 0, "and no error rate moves");
    let errs: u64 = u.edge("api", "pricing").iter().map(|r| r.errors + r.timeouts).sum();
    assert_eq!(errs, 0);
    assert_eq!(sum(&d, |r| r.wrong), 0, "verified answers: nothing wrong reaches users");
    assert!(d.goodput_rate("users", 35.0, 100.0) > 0.95 * d.goodput_rate("users", 5.0, 30.0));
}

#[test]
fn exhaustion() {
    let (u, d) = both("exhaustion");
    let base = u.goodput_rate("users", 5.0, 30.0);
    let pool = u.metric("pool_in_use", "api/db-connections");
    assert!(pool[80].value > pool[20].value + 15.0, "pool use climbs steadily");
    assert!(u.goodput_rate("users", 100.0, 150.0) < 0.05 * base);
    assert!(d.goodput_rate("users", 30.0, 150.0) > 0.95 * base);
}

#[test]
fn simpy_reference() {
    let (u, d) = both("simpy-reference");
    let base = u.goodput_rate("clients", 5.0, 20.0);
    assert!(base > 1150.0 && base < 1350.0, "≈1,255 rps like the SimPy run: {base}");
    assert!(u.goodput_rate("clients", 35.0, 90.0) < 0.02 * base, "metastable, as in SimPy");
    assert!(d.goodput_rate("clients", 35.0, 90.0) > 0.95 * base, "bucket + drop expired recovers");
}
