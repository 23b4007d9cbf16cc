//! Behaviour tests for every detector: one `check` helper drives a detector
//! through steps of signals (one step = one window on virtual time) and
//! compares the findings fired, by kind and step, with what must happen —
//! including quiet cases (daily swings, one broken dependency, a flat pool)
//! that must produce nothing.

use std::collections::BTreeMap;

use super::amplifiers::{BroadFailureDetector, CacheCollapseDetector, EdgeDetectors, LeaderConflictDetector, LoadSkewDetector};
use super::checkin::{CheckInMonitor, CheckSpec, Schedule};
use super::probes::{CanaryDetector, PartitionDetector, ProbeFailureDetector, SourceVanishedDetector, WrongAnswerDetector};
use super::trend::{ExhaustionDetector, QueueGrowthDetector};
use super::*;
use crate::finding::FailureModel;
use crate::ids::ServiceName;
use crate::model::Interaction;
use crate::signal::{CheckIn, CheckInKind, EdgeWindow, MetricPoint, ProbeResult};

const STEP: Duration = Duration::from_secs(60);
const T0: i64 = 1_800_000_000;

fn at(step: usize) -> Timestamp {
    Timestamp::from_secs(T0) + Duration::from_millis(STEP.as_millis() * step as i64)
}

/// splitmix64: deterministic noise for the quiet cases.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn svc(s: &str) -> ServiceName {
    ServiceName::new(s).unwrap()
}

#[allow(clippy::too_many_arguments)]
fn edge(caller: &str, callee: &str, step: usize, requests: u64, errors: u64, timeouts: u64, retries: u64, p99: f64) -> Signal {
    Signal::Edge(EdgeWindow {
        interaction: Interaction { caller: svc(caller), callee: svc(callee), operation: String::new() },
        start: at(step) - STEP,
        length: STEP,
        requests,
        errors,
        timeouts,
        retries,
        p50_ms: p99 / 3.0,
        p99_ms: p99,
        in_flight: None,
        zones: Vec::new(),
        exemplar_trace_ids: Vec::new(),
    })
}

fn metric(name: &str, service: &str, labels: &[(&str, &str)], step: usize, value: f64) -> Signal {
    Signal::Metric(MetricPoint {
        name: name.into(),
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        service: Some(svc(service)),
        at: at(step),
        value,
    })
}

fn probe(name: &str, location: &str, step: usize, success: bool, failures: &[&str]) -> Signal {
    Signal::Probe(ProbeResult {
        probe: name.into(),
        location: location.into(),
        target: Some(svc("api")),
        at: at(step),
        success,
        response_ms: if failures.iter().any(|f| f.contains("CONNECTED")) { None } else { Some(40.0) },
        failures: failures.iter().map(|s| s.to_string()).collect(),
    })
}

/// Runs `steps` through `d` (observe each signal, then tick at the step's
/// end) and asserts the (kind, step) of every finding equals `expect`.
fn check(name: &str, mut d: Box<dyn Detector + Send>, steps: Vec<Vec<Signal>>, expect: &[(&str, usize)]) -> Vec<Finding> {
    let mut got = Vec::new();
    let mut all = Vec::new();
    for (i, signals) in steps.into_iter().enumerate() {
        let now = at(i);
        for s in &signals {
            for f in d.observe(s, now) {
                got.push((f.kind.clone(), i));
                all.push(f);
            }
        }
        for f in d.tick(now + Duration::from_secs(1)) {
            got.push((f.kind.clone(), i));
            all.push(f);
        }
    }
    let want: Vec<(String, usize)> = expect.iter().map(|(k, s)| (k.to_string(), *s)).collect();
    assert_eq!(got, want, "{name}");
    all
}

#[test]
fn hysteresis_fires_once_and_clears_after_the_dead_band() {
    let cfg = HysteresisConfig::new(1.0, 0.5, Duration::from_secs(120), Duration::from_secs(120));
    // values per minute: flap around the fire level, then hold, dip into the
    // dead band (no clear), then stay low long enough to clear.
    let values = [0.2, 1.2, 0.3, 1.2, 1.1, 1.3, 1.4, 0.7, 0.8, 0.4, 1.2, 0.3, 0.3, 0.2, 0.1];
    let mut h = Hysteresis::default();
    let mut events = Vec::new();
    for (i, v) in values.iter().enumerate() {
        match h.update(&cfg, *v, at(i)) {
            Transition::Fired { since } => events.push(format!("fire@{i} since {}", (since - at(0)).as_millis() / 60_000)),
            Transition::Cleared => events.push(format!("clear@{i}")),
            Transition::None => {}
        }
    }
    // Fires once the value held >= 1 for 2 minutes (steps 3..=5); the dip to
    // 0.4 at step 9 is interrupted by 1.2 at 10; clears 2 minutes after 11.
    assert_eq!(events, vec!["fire@5 since 3", "clear@13"]);
}

/// Two days of 1-minute windows with a ±60% daily traffic swing, latency
/// following load, 1% errors with noise: nothing may fire.
fn daily_swing(steps: usize, rng: &mut Rng) -> Vec<Vec<Signal>> {
    (0..steps)
        .map(|i| {
            let phase = (i as f64 / 1440.0) * std::f64::consts::TAU;
            let load = 1.0 + 0.6 * phase.sin();
            let req = (1000.0 * load * (0.95 + 0.1 * rng.next())) as u64;
            let errors = (req as f64 * (0.008 + 0.004 * rng.next())) as u64;
            let retries = (req as f64 * 0.02 * rng.next()) as u64;
            let p99 = 120.0 * (1.0 + 0.4 * phase.sin()) * (0.9 + 0.2 * rng.next());
            vec![
                edge("gateway", "checkout", i, req, errors, errors / 10, retries, p99),
                edge("checkout", "payments", i, req / 2, errors / 2, 0, retries / 2, p99 * 0.8),
                metric("queue_depth", "worker", &[], i, (5.0 + 10.0 * rng.next()).round()),
                metric("pool_size", "payments", &[("resource", "db-pool")], i, 50.0),
                // peaks near 81% of the pool: the trend gate, not the level gate, must hold.
                metric("pool_in_use", "payments", &[("resource", "db-pool")], i, (23.0 * load * (0.9 + 0.2 * rng.next())).round()),
                metric("cache_hit_ratio", "catalog", &[("resource", "cache")], i, 0.9 + 0.05 * rng.next()),
                metric("cache_recomputes", "catalog", &[("resource", "cache")], i, (10.0 * load).round()),
                metric("leaders", "raft", &[], i, 1.0),
                metric("answers", "pricing", &[], i, req as f64),
                metric("wrong_answers", "pricing", &[], i, (req as f64 * 0.002 * rng.next()).round()),
                metric("utilization", "checkout", &[], i, 0.5 * load * (0.9 + 0.2 * rng.next()) / 1.6),
                metric("memory_limit", "checkout", &[], i, 4096.0),
                metric("memory_used", "checkout", &[], i, (3000.0 + 200.0 * phase.sin() + 50.0 * rng.next()).round()),
            ]
        })
        .collect()
}

#[test]
fn quiet_system_with_daily_swings_produces_no_finding() {
    let mut rng = Rng(7);
    let steps = daily_swing(2 * 1440, &mut rng);
    let mut set = DetectorSet::standard();
    let mut found = Vec::new();
    for (i, signals) in steps.iter().enumerate() {
        for s in signals {
            found.extend(set.observe(s, at(i)));
        }
        found.extend(set.tick(at(i) + Duration::from_secs(1)));
    }
    assert!(found.is_empty(), "false positives: {:#?}", found.iter().map(|f| (&f.kind, f.subject.to_string(), &f.evidence)).collect::<Vec<_>>());
}

fn healthy_then(n: usize, onset: usize, f: impl Fn(usize, bool) -> Vec<Signal>) -> Vec<Vec<Signal>> {
    (0..n).map(|i| f(i, i >= onset)).collect()
}

#[test]
fn edge_symptoms_fire_at_onset() {
    type Case = (&'static str, fn(usize, bool) -> Vec<Signal>, &'static [(&'static str, usize)]);
    let cases: &[Case] = &[
        // Latency must hold 3 windows (one noisy p99 is not a change).
        ("error step", |i, bad| vec![edge("a", "b", i, 1000, if bad { 300 } else { 10 + (i % 3) as u64 }, 0, 0, 100.0)], &[("error_rate_change", 30)]),
        ("latency step", |i, bad| vec![edge("a", "b", i, 1000, 5, 0, 0, if bad { 400.0 } else { 100.0 + (i % 5) as f64 })], &[("latency_change", 32)]),
        (
            "retry storm",
            |i, bad| vec![edge("a", "b", i, if bad { 3000 } else { 1000 }, 5, 0, if bad { 2000 } else { 10 }, 100.0)],
            &[("retry_amplification", 30)],
        ),
        ("timeouts", |i, bad| vec![edge("a", "b", i, 1000, 5, if bad { 100 } else { 0 }, 0, 100.0)], &[("timeout_saturation", 30)]),
        // Too little traffic for one window is pooled with the next, not
        // ignored: 18 failures among 20 requests over two windows.
        ("little traffic, pooled", |i, bad| vec![edge("a", "b", i, 10, if bad { 9 } else { 0 }, 0, 0, 100.0)], &[("error_rate_change", 31)]),
    ];
    for (name, make, expect) in cases {
        let f = check(name, Box::new(EdgeDetectors::default()), healthy_then(40, 30, make), expect);
        for x in &f {
            assert!(x.evidence.threshold.is_some(), "{name}: evidence needs a threshold");
        }
    }
}

#[test]
fn retry_evidence_names_the_amplification() {
    let steps = healthy_then(40, 30, |i, bad| {
        vec![
            edge("web", "gateway", i, 1000, 0, 0, 0, 50.0),
            edge("gateway", "fraud", i, if bad { 3000 } else { 1000 }, if bad { 900 } else { 5 }, 0, if bad { 2000 } else { 10 }, 100.0),
        ]
    });
    let f = check("retry evidence", Box::new(EdgeDetectors::default()), steps, &[("error_rate_change", 30), ("retry_amplification", 30)]);
    let m = &f[1].evidence.measure;
    assert!(m.contains("×3.0 attempts per call") && m.contains("edge rate ×3.0") && m.contains("caller ingress ×1.0"), "{m}");
}

#[test]
fn window_grouped_detectors() {
    let skew = |i: usize, bad: bool| -> Vec<Signal> {
        (0..4).map(|k| edge("api", &format!("store[{k}]"), i, if bad && k == 2 { 2000 } else { 200 }, 0, 0, 0, 10.0)).collect()
    };
    // A window's group is judged once complete: at the tick after its end.
    check("hot shard", Box::new(LoadSkewDetector::default()), healthy_then(20, 10, skew), &[("load_skew", 10)]);
    let resolution = |i: usize, bad: bool| -> Vec<Signal> {
        ["web", "cart", "search", "auth"]
            .iter()
            .zip(["users", "prices", "index", "tokens"])
            .map(|(c, d)| edge(c, d, i, 100, if bad { 60 } else { 1 }, 0, 0, 10.0))
            .collect()
    };
    check("dns outage", Box::new(BroadFailureDetector::default()), healthy_then(20, 10, resolution), &[("dependency_resolution_failure", 10)]);
    let one_dependency = |i: usize, bad: bool| -> Vec<Signal> {
        ["web", "cart", "search", "auth"].iter().map(|c| edge(c, "db", i, 100, if bad { 60 } else { 1 }, 0, 0, 10.0)).collect()
    };
    check("one broken dependency is not DNS", Box::new(BroadFailureDetector::default()), healthy_then(20, 10, one_dependency), &[]);
}

#[test]
fn metric_detectors() {
    type Case = (&'static str, fn() -> Box<dyn Detector + Send>, fn(usize, bool) -> Vec<Signal>, &'static [(&'static str, usize)]);
    let cases: &[Case] = &[
        (
            "cache stampede",
            || Box::new(CacheCollapseDetector::default()),
            |i, bad| {
                vec![
                    metric("cache_recomputes", "catalog", &[("resource", "cache")], i, if bad { 200.0 } else { 10.0 }),
                    metric("cache_hit_ratio", "catalog", &[("resource", "cache")], i, if bad { 0.2 } else { 0.92 }),
                ]
            },
            &[("cache_collapse", 20)],
        ),
        (
            "hit ratio dip without origin spike",
            || Box::new(CacheCollapseDetector::default()),
            |i, bad| {
                vec![
                    metric("cache_recomputes", "catalog", &[("resource", "cache")], i, 10.0),
                    metric("cache_hit_ratio", "catalog", &[("resource", "cache")], i, if bad { 0.2 } else { 0.92 }),
                ]
            },
            &[],
        ),
        (
            "split brain",
            || Box::new(LeaderConflictDetector::default()),
            |i, bad| vec![metric("leaders", "raft", &[], i, if bad { 2.0 } else { 1.0 })],
            &[("leader_conflict", 20)],
        ),
        (
            "pool draining",
            || Box::new(ExhaustionDetector::default()),
            // 10 in use, +2 per minute from step 20 towards 50.
            |i, bad| {
                let used = if bad { (10 + 2 * (i - 20)).min(50) } else { 10 } as f64;
                vec![
                    metric("pool_size", "payments", &[("resource", "db-pool")], i, 50.0),
                    metric("pool_in_use", "payments", &[("resource", "db-pool")], i, used),
                ]
            },
            // usage passes the 50% gate at step 28; the 30-point fit (still
            // half flat) first predicts exhaustion within 30 min at step 33
            // (25 min), but a hockey stick leaves autocorrelated residuals,
            // which widen the slope's standard error: t ≤ −3 from step 36,
            // fires there (one window suffices), 8 connections left.
            &[("resource_exhaustion", 36)],
        ),
        (
            "pool high but flat",
            || Box::new(ExhaustionDetector::default()),
            |i, _| {
                vec![
                    metric("pool_size", "payments", &[("resource", "db-pool")], i, 50.0),
                    metric("pool_in_use", "payments", &[("resource", "db-pool")], i, 40.0),
                ]
            },
            &[],
        ),
        (
            "queue growing",
            || Box::new(QueueGrowthDetector::default()),
            |i, bad| vec![metric("queue_depth", "worker", &[], i, if bad { 5.0 + 30.0 * (i - 19) as f64 } else { 5.0 })],
            // depth passes min_depth (20) at step 20, but one jump in six points
            // fits only ~4/min; the second growing window (65) fits > 10/min.
            &[("queue_growth", 21)],
        ),
        (
            "wrong answers while up",
            || Box::new(WrongAnswerDetector::default()),
            |i, bad| {
                vec![
                    metric("answers", "pricing", &[("caller", "api")], i, 1000.0),
                    metric("wrong_answers", "pricing", &[("caller", "api")], i, if bad { 80.0 } else { (i % 3) as f64 }),
                ]
            },
            &[("wrong_answers", 20)],
        ),
        (
            "canary answers drift",
            || Box::new(CanaryDetector::default()),
            |i, bad| {
                vec![
                    metric("order_total", "checkout", &[("role", "baseline")], i, 100.0 + (i % 3) as f64),
                    metric("order_total", "checkout", &[("role", "canary")], i, if bad { 160.0 } else { 100.0 + (i % 2) as f64 }),
                ]
            },
            // the canary median over 5 windows flips after 3 bad windows.
            &[("canary_divergence", 22)],
        ),
    ];
    for (name, mk, make, expect) in cases {
        check(name, mk(), healthy_then(40, 20, make), expect);
    }
}

#[test]
fn probe_detectors() {
    let body = |i: usize, bad: bool| vec![probe("price", "eu", i, !bad, if bad { &["[BODY].price (0) > 0"] } else { &[] })];
    let f = check("semantic probe", Box::new(ProbeFailureDetector::default()), healthy_then(12, 5, body), &[("probe_failing", 7)]);
    assert_eq!(f[0].failure_model, FailureModel::Byzantine);
    let refused = |i: usize, bad: bool| vec![probe("health", "eu", i, !bad, if bad { &["[CONNECTED] (false) == true"] } else { &[] })];
    let f = check("connection refused", Box::new(ProbeFailureDetector::default()), healthy_then(12, 5, refused), &[("probe_failing", 7)]);
    assert_eq!(f[0].failure_model, FailureModel::Crash);

    let targets: BTreeMap<String, String> = [("to-a", "a"), ("to-b", "b")].into_iter().map(|(p, l)| (p.to_owned(), l.to_owned())).collect();
    let matrix = |both_down: bool| {
        move |i: usize, bad: bool| {
            vec![
                probe("to-a", "a", i, true, &[]),
                probe("to-b", "b", i, !(bad && both_down), &[]),
                probe("to-b", "a", i, !bad, &["[CONNECTED] (false) == true"]),
                probe("to-a", "b", i, !bad, &["[CONNECTED] (false) == true"]),
            ]
        }
    };
    let f = check("partition a↔b", Box::new(PartitionDetector::new(targets.clone())), healthy_then(12, 5, matrix(false)), &[("network_partition", 6)]);
    assert_eq!(f[0].failure_model, FailureModel::Partition);
    check("b is down, not partitioned", Box::new(PartitionDetector::new(targets)), healthy_then(12, 5, matrix(true)), &[]);
}

#[test]
fn crash_detectors() {
    // Metrics every minute until step 10, then silence.
    let steps = healthy_then(20, 10, |i, bad| if bad { vec![] } else { vec![metric("utilization", "billing", &[], i, 0.3)] });
    // Silent for > max(3 × 1 min, 2 min) after step 9: the tick at step 12
    // (+1 s) is the first past the limit.
    check("source vanished", Box::new(SourceVanishedDetector::default()), steps, &[("telemetry_vanished", 12)]);

    let mut m = CheckInMonitor::new();
    let spec = CheckSpec {
        name: "backup".into(),
        schedule: Schedule::Simple { period: Duration::from_mins(5) },
        grace: Duration::from_mins(2),
        service: Some(svc("backup")),
    };
    m.add_check(spec).unwrap();
    let ping = |i: usize, kind: CheckInKind| Signal::CheckIn(CheckIn { check: "backup".into(), kind, at: at(i) });
    let mut steps: Vec<Vec<Signal>> = (0..20).map(|_| vec![]).collect();
    steps[0].push(ping(0, CheckInKind::Success));
    steps[5].push(ping(5, CheckInKind::Success));
    // Last ping at step 5: expected by 10, down after 12 (+ grace).
    steps[14].push(ping(14, CheckInKind::Success));
    steps[16].push(ping(16, CheckInKind::Fail));
    check("missed then failed", Box::new(m), steps, &[("missed_check_in", 12), ("check_in_failed", 16)]);
    let bad_cron =
        CheckSpec { name: "x".into(), schedule: Schedule::Cron { expr: "61 * * * *".into(), tz: "UTC".into() }, grace: Duration::ZERO, service: None };
    assert!(CheckInMonitor::new().add_check(bad_cron).is_err());
}

#[test]
fn detector_set_runs_everything_and_is_deterministic() {
    let mut rng = Rng(11);
    let mut steps = daily_swing(200, &mut rng);
    for (i, s) in steps.iter_mut().enumerate().skip(150) {
        s.push(edge("gateway", "fraud", i, 3000, 900, 300, 2000, 900.0));
    }
    let run = |steps: &Vec<Vec<Signal>>| {
        let mut set = DetectorSet::standard();
        let mut out = Vec::new();
        for (i, s) in steps.iter().enumerate() {
            for x in s {
                out.extend(set.observe(x, at(i)));
            }
            out.extend(set.tick(at(i)));
        }
        out
    };
    let a = run(&steps);
    assert_eq!(a, run(&steps));
    // A new edge has no baseline yet: only the absolute-threshold detectors
    // (retry budget, timeout ratio) may fire on it, and they do.
    let kinds: Vec<&str> = a.iter().map(|f| f.kind.as_str()).collect();
    assert_eq!(kinds, vec!["retry_amplification", "timeout_saturation"]);
    assert_eq!(DetectorSet::standard().names().len(), 12);
}

#[test]
fn median_and_mad() {
    use super::hysteresis::median_in_place;
    for (v, m) in [(vec![], 0.0), (vec![3.0], 3.0), (vec![5.0, 1.0], 3.0), (vec![9.0, 1.0, 5.0], 5.0), (vec![4.0, 1.0, 3.0, 2.0], 2.5)] {
        let mut v = v;
        assert_eq!(median_in_place(&mut v), m);
    }
    let mut b = RobustBaseline::new(5, 3);
    for x in [10.0, 12.0] {
        b.push(x);
    }
    assert_eq!(b.stats(), None, "warming up");
    b.push(14.0);
    // median 12, |dev| = 2, 0, 2 -> MAD 2 x 1.4826
    assert_eq!(b.stats(), Some((12.0, 2.0 * 1.4826)));
}

#[test]
fn counted_hysteresis_is_window_length_independent() {
    let cfg = HysteresisConfig::counted(1.0, 0.5, 2, 3);
    for step_ms in [1_000i64, 60_000] {
        let mut h = Hysteresis::default();
        let mut ev = Vec::new();
        for (i, v) in [2.0, 0.0, 2.0, 2.0, 0.1, 0.1, 2.0, 0.1, 0.1, 0.1].iter().enumerate() {
            match h.update(&cfg, *v, Timestamp::from_millis(i as i64 * step_ms)) {
                Transition::Fired { .. } => ev.push(format!("fire@{i}")),
                Transition::Cleared => ev.push(format!("clear@{i}")),
                Transition::None => {}
            }
        }
        assert_eq!(ev, vec!["fire@3", "clear@9"], "step {step_ms} ms");
    }
}

#[test]
fn cascade_is_not_a_resolution_failure() {
    // users-a and users-b fail because web fails on db: one root failure.
    let cascade = |i: usize, bad: bool| -> Vec<Signal> {
        let e = if bad { 80 } else { 1 };
        vec![edge("users-a", "web", i, 100, e, 0, 0, 10.0), edge("users-b", "web", i, 100, e, 0, 0, 10.0), edge("web", "db", i, 100, e, 0, 0, 10.0)]
    };
    check("cascade", Box::new(BroadFailureDetector::default()), healthy_then(20, 10, cascade), &[]);
    // The resolver itself failing is enough, however few callers there are.
    let resolver = |i: usize, bad: bool| vec![edge("web", "dns", i, 100, if bad { 10 } else { 0 }, 0, 0, 10.0), edge("web", "api", i, 100, 0, 0, 0, 10.0)];
    let f = check("resolver down", Box::new(BroadFailureDetector::default()), healthy_then(20, 10, resolver), &[("dependency_resolution_failure", 10)]);
    assert_eq!(f[0].subject.to_string(), "dns");
}

/// An edge window with a zone split: same-zone calls fail `same_err` of 100,
/// cross-zone calls `cross_err` of 100 (both directions of a ↔ b).
fn zoned(step: usize, same_err: u64, cross_err: u64) -> Signal {
    let z = |a: &str, b: &str, errors: u64| crate::signal::ZoneCounts { caller_zone: a.into(), callee_zone: b.into(), requests: 50, errors, timeouts: errors };
    let Signal::Edge(mut w) = edge("web", "db", step, 200, same_err + cross_err, same_err + cross_err, 0, 50.0) else { unreachable!() };
    w.zones = vec![z("a", "a", same_err / 2), z("b", "b", same_err - same_err / 2), z("a", "b", cross_err / 2), z("b", "a", cross_err - cross_err / 2)];
    w.exemplar_trace_ids = vec!["4bf92f3577b34da6a3ce929d0e0e4736".into()];
    Signal::Edge(w)
}

#[test]
fn zone_partition_names_the_zone_pair_only_while_each_zone_is_healthy() {
    let d = || Box::new(super::zones::ZonePartitionDetector::default());
    // Cross-zone calls fail from step 10 while same-zone calls pass.
    let steps = healthy_then(20, 10, |i, bad| vec![zoned(i, 1, if bad { 100 } else { 1 })]);
    let found = check("partition", d(), steps, &[("zone_partition", 10)]);
    let f = &found[0];
    assert_eq!(f.failure_model, FailureModel::Partition);
    assert!(f.evidence.measure.contains("a↔b"), "{}", f.evidence.measure);
    assert_eq!(f.evidence.exemplar_trace_ids, vec!["4bf92f3577b34da6a3ce929d0e0e4736".to_owned()]);
    // Everything failing is an outage of the callee, not a partition.
    check("outage", d(), healthy_then(20, 10, |i, bad| vec![zoned(i, if bad { 100 } else { 1 }, if bad { 100 } else { 1 })]), &[]);
    // Windows without zones are ignored.
    check("no zones", d(), healthy_then(20, 10, |i, bad| vec![edge("web", "db", i, 200, if bad { 100 } else { 0 }, 0, 0, 50.0)]), &[]);
}

#[test]
fn edge_findings_carry_the_windows_exemplar_trace_ids() {
    let steps = healthy_then(40, 30, |i, bad| {
        let Signal::Edge(mut w) = edge("a", "b", i, 1000, if bad { 300 } else { 10 }, 0, 0, 100.0) else { unreachable!() };
        w.exemplar_trace_ids = vec![format!("{i:032x}")];
        vec![Signal::Edge(w)]
    });
    let found = check("errors", Box::new(EdgeDetectors::default()), steps, &[("error_rate_change", 30)]);
    assert_eq!(found[0].evidence.exemplar_trace_ids, vec![format!("{:032x}", 30)]);
}

#[test]
fn a_stalled_resolver_is_a_resolution_failure_before_any_lookup_times_out() {
    // Lookups pile up in flight (no errors, no timeouts yet): the resolver
    // stopped answering. A resolver answering normally is quiet.
    let lookups = |i: usize, in_flight: u64| {
        let Signal::Edge(mut w) = edge("web", "dns", i, 300, 0, 0, 0, 2.0) else { unreachable!() };
        w.in_flight = Some(in_flight);
        vec![Signal::Edge(w)]
    };
    let found = check(
        "stall",
        Box::new(BroadFailureDetector::default()),
        healthy_then(20, 10, |i, bad| lookups(i, if bad { 300 * (i as u64 - 9) } else { 1 })),
        &[("dependency_resolution_failure", 10)],
    );
    assert_eq!(found[0].subject.to_string(), "dns");
}

#[test]
fn slope_t_separates_trends_from_noise() {
    let series = |f: &dyn Fn(usize) -> f64| (0..30).map(|i| (at(i), f(i))).collect::<Vec<_>>();
    let mut rng = Rng(3);
    let noise: Vec<f64> = (0..30).map(|_| rng.next() * 10.0).collect();
    assert!(super::trend::slope_t(&series(&|i| noise[i])).abs() < 3.0);
    assert!(super::trend::slope_t(&series(&|i| noise[i] - i as f64)) < -3.0);
    assert!(super::trend::slope_t(&series(&|i| 2.0 * i as f64)).is_infinite());
    assert_eq!(super::trend::slope_t(&series(&|_| 5.0)), 0.0);
    assert_eq!(super::trend::slope_t(&[]), 0.0);
}

#[test]
fn sorted_median_mad_matches_selection_and_the_baseline_stays_in_step() {
    use super::hysteresis::{median_in_place, sorted_median_mad};
    let mut rng = Rng(11);
    for n in 0..40usize {
        // Duplicates on purpose (rounded values).
        let v: Vec<f64> = (0..n).map(|_| (rng.next() * 8.0).round()).collect();
        let mut a = v.clone();
        let med = median_in_place(&mut a);
        let mut dev: Vec<f64> = v.iter().map(|x| (x - med).abs()).collect();
        let mad = median_in_place(&mut dev);
        let mut sorted = v.clone();
        sorted.sort_by(f64::total_cmp);
        assert_eq!(sorted_median_mad(&sorted), (med, mad), "{v:?}");
    }
    // The rolling sorted copy stays in step with the window at every push.
    let mut b = RobustBaseline::new(7, 1);
    let mut window: std::collections::VecDeque<f64> = Default::default();
    for _ in 0..200 {
        let x = (rng.next() * 20.0).round();
        b.push(x);
        window.push_back(x);
        if window.len() > 7 {
            window.pop_front();
        }
        let mut want: Vec<f64> = window.iter().copied().collect();
        want.sort_by(f64::total_cmp);
        assert_eq!(b.sorted_values(), want.as_slice());
    }
}

/// Feeds `steps` (a tick after each) and returns (kind, step) of every finding.
fn run(d: &mut dyn Detector, steps: Vec<Vec<Signal>>) -> Vec<(String, usize)> {
    let mut got = Vec::new();
    for (i, signals) in steps.into_iter().enumerate() {
        for s in &signals {
            got.extend(d.observe(s, at(i)).into_iter().map(|f| (f.kind, i)));
        }
        got.extend(d.tick(at(i) + Duration::from_secs(1)).into_iter().map(|f| (f.kind, i)));
    }
    got
}

/// Puts a flood of `super::MAX_TRACKED_KEYS - 1` distinct keys, then the
/// step's own signals, then one more distinct key into step `at_step`: the
/// table fills, the real key is seen again, and the last junk key evicts
/// the least recently seen — the first junk key, not the real one.
fn flood(mut steps: Vec<Vec<Signal>>, at_step: usize, junk: impl Fn(usize) -> Vec<Signal>) -> Vec<Vec<Signal>> {
    let own = std::mem::take(&mut steps[at_step]);
    let n = super::MAX_TRACKED_KEYS - 1;
    steps[at_step] = (0..n).flat_map(&junk).chain(own).chain(junk(n)).collect();
    steps
}

#[test]
fn the_canary_table_is_capped_and_evicts_the_least_recently_seen_metric() {
    let make = |i, bad| {
        vec![
            metric("order_total", "checkout", &[("role", "baseline")], i, 100.0 + (i % 3) as f64),
            metric("order_total", "checkout", &[("role", "canary")], i, if bad { 160.0 } else { 100.0 + (i % 2) as f64 }),
        ]
    };
    let junk = |n: usize| vec![metric(&format!("junk_{n}"), "checkout", &[("role", "canary")], 10, 1.0)];
    let mut d = CanaryDetector::default();
    let got = run(&mut d, flood(healthy_then(40, 20, make), 10, junk));
    // One entry per distinct metric name, never removed, was 1.47 GB under a flood.
    assert_eq!(d.evicted(), 1);
    // The real canary was not the one evicted: it fires as without the flood.
    assert_eq!(got, vec![("canary_divergence".to_owned(), 22)]);
}

#[test]
fn the_exhaustion_table_is_capped_and_evicts_the_least_recently_seen_resource() {
    let make = |i: usize, bad: bool| {
        let used = if bad { (10 + 2 * (i as i64 - 20)).min(50) } else { 10 } as f64;
        vec![metric("pool_size", "payments", &[("resource", "db-pool")], i, 50.0), metric("pool_in_use", "payments", &[("resource", "db-pool")], i, used)]
    };
    // One entry per distinct `resource` label, never removed, before the cap.
    let junk = |n: usize| {
        let r = format!("junk-{n}");
        vec![metric("pool_size", "payments", &[("resource", &r)], 10, 100.0), metric("pool_in_use", "payments", &[("resource", &r)], 10, 1.0)]
    };
    let mut d = ExhaustionDetector::default();
    let got = run(&mut d, flood(healthy_then(40, 20, make), 10, junk));
    // One junk size and one junk series evicted; the real pool kept its history.
    assert_eq!(d.evicted(), 2);
    assert_eq!(got, vec![("resource_exhaustion".to_owned(), 36)]);
}

/// After a restart the edge detectors start from their saved baselines:
/// a fault in the first window after it is judged at once (a fresh detector
/// needs its warm-up first), and bad saved state is refused, not trusted.
#[test]
fn edge_baselines_survive_a_restart() {
    let mut d = EdgeDetectors::default();
    for step in 0..40 {
        d.observe(&edge("checkout", "payments", step, 200, 1, 0, 0, 40.0 + (step % 3) as f64), at(step));
    }
    let saved = serde_json::to_string(&d.learned().unwrap()).unwrap();
    let fault = |step| edge("checkout", "payments", step, 200, 80, 0, 0, 41.0);
    let mut fresh = EdgeDetectors::default();
    assert!(fresh.observe(&fault(40), at(40)).is_empty(), "a fresh detector is still warming up");
    let mut restored = EdgeDetectors::default();
    restored.relearn(serde_json::from_str(&saved).unwrap()).unwrap();
    let fired = restored.observe(&fault(40), at(40));
    assert!(fired.iter().any(|f| f.kind == "error_rate_change"), "{fired:#?}");
    assert!(EdgeDetectors::default().relearn(serde_json::json!({"edges": 3})).is_err());
}

/// One 10 s window of an interaction at `rate` requests/s: Poisson
/// arrivals, log-normal latencies around `median_ms`, each request failing
/// with probability `error_p`; p50/p99 by nearest rank, as the graph does.
fn poisson_window(rng: &mut Rng, i: i64, rate: f64, median_ms: f64, error_p: f64) -> Signal {
    let mut n = 0u64;
    let mut t = 0.0;
    loop {
        t += -(1.0 - rng.next()).ln() / rate;
        if t >= 10.0 {
            break;
        }
        n += 1;
    }
    let mut lat: Vec<f64> = (0..n)
        .map(|_| {
            let z = (-2.0 * (1.0 - rng.next()).ln()).sqrt() * (std::f64::consts::TAU * rng.next()).cos();
            median_ms * (0.4 * z).exp()
        })
        .collect();
    lat.sort_by(f64::total_cmp);
    let errors = (0..n).filter(|_| rng.next() < error_p).count() as u64;
    let rank = |q: f64| if lat.is_empty() { 0.0 } else { lat[((q * n as f64).ceil() as usize).clamp(1, lat.len()) - 1] };
    Signal::Edge(EdgeWindow {
        interaction: Interaction { caller: svc("checkout"), callee: svc("payments-db"), operation: String::new() },
        start: Timestamp::from_secs(T0 + i * 10),
        length: Duration::from_secs(10),
        requests: n,
        errors,
        timeouts: 0,
        retries: 0,
        p50_ms: rank(0.5),
        p99_ms: rank(0.99),
        in_flight: None,
        zones: Vec::new(),
        exemplar_trace_ids: Vec::new(),
    })
}

/// Low traffic is still watched: at 6 requests/s a p99 going from ~5 ms to
/// 880 ms is found, and at 1 request/s so are 30 % errors (both went
/// unseen: the latency detector needed 100 requests per window, errors 20).
#[test]
fn low_traffic_failures_are_found() {
    let mut rng = Rng(7);
    let mut d = EdgeDetectors::default();
    let mut found = Vec::new();
    for i in 0..400 {
        let median = if i >= 300 { 880.0 / 1.9 } else { 5.0 };
        let s = poisson_window(&mut rng, i, 6.0, median, 0.01);
        found.extend(d.observe(&s, s.at()));
    }
    let latency: Vec<_> = found.iter().filter(|f| f.kind == "latency_change").collect();
    assert_eq!(latency.len(), 1, "{found:#?}");
    assert!(latency[0].started_at >= Timestamp::from_secs(T0 + 3000) && latency[0].started_at <= Timestamp::from_secs(T0 + 3300), "{:?}", latency[0]);

    let mut d = EdgeDetectors::default();
    let mut found = Vec::new();
    for i in 0..600 {
        let p = if i >= 480 { 0.3 } else { 0.01 };
        let s = poisson_window(&mut rng, i, 1.0, 5.0, p);
        found.extend(d.observe(&s, s.at()));
    }
    assert!(found.iter().any(|f| f.kind == "error_rate_change" && f.started_at >= Timestamp::from_secs(T0 + 4800)), "{found:#?}");
    assert!(found.iter().all(|f| f.started_at >= Timestamp::from_secs(T0 + 4800)), "nothing before the fault: {found:#?}");
}

/// And no false incidents at those rates: six fault-free hours each at 0.5,
/// 1, 3, 6 and 15 requests/s (1 % errors, log-normal latency) raise
/// nothing.
#[test]
fn low_traffic_without_faults_raises_nothing() {
    for (seed, rate) in [(11, 0.5), (12, 1.0), (13, 3.0), (14, 6.0), (15, 15.0)] {
        let mut rng = Rng(seed);
        let mut d = EdgeDetectors::default();
        let mut found = Vec::new();
        for i in 0..2160 {
            let s = poisson_window(&mut rng, i, rate, 5.0, 0.01);
            found.extend(d.observe(&s, s.at()));
        }
        assert!(found.is_empty(), "{rate} req/s: {found:#?}");
    }
}

#[test]
fn the_exact_binomial_tail() {
    use super::amplifiers::binomial_upper_tail as tail;
    assert_eq!(tail(20, 0, 0.01), 1.0);
    assert!((tail(20, 2, 0.01) - 0.016_859).abs() < 1e-5, "{}", tail(20, 2, 0.01));
    assert!((tail(10, 10, 0.5) - 1.0 / 1024.0).abs() < 1e-12);
    assert!((tail(100, 5, 0.02) - 0.050_830).abs() < 1e-5, "{}", tail(100, 5, 0.02));
    assert_eq!(tail(5, 6, 0.5), 0.0);
}

/// The edge detectors kept one state per interaction ever seen (and one
/// ingress per service), never removed. Past `MAX_TRACKED_KEYS` the least
/// recently seen eighth goes at once, with the ingress entries only they used.
#[test]
fn the_edge_detector_table_is_capped_and_evicts_the_least_recently_seen() {
    let mut d = EdgeDetectors::default();
    let n = super::MAX_TRACKED_KEYS;
    for i in 0..n {
        d.observe(&edge("web", &format!("svc-{i}"), 0, 100, 0, 0, 0, 10.0), at(0));
    }
    // svc-0 is seen again: now svc-1 … are the least recently seen.
    d.observe(&edge("web", "svc-0", 1, 100, 0, 0, 0, 10.0), at(1));
    d.observe(&edge("web", "new", 1, 100, 0, 0, 0, 10.0), at(1));
    assert_eq!(d.evicted(), (n / 8) as u64);
    let saved = d.learned().unwrap();
    let callees: std::collections::BTreeSet<String> =
        saved["edges"].as_array().unwrap().iter().map(|e| e["interaction"]["callee"].as_str().unwrap().to_owned()).collect();
    assert_eq!(callees.len(), n - n / 8 + 1);
    assert!(callees.contains("svc-0") && callees.contains("new") && !callees.contains("svc-1") && !callees.contains(&format!("svc-{}", n / 8)));
    assert!(callees.contains(&format!("svc-{}", n / 8 + 1)));
    // Ingress entries went with them: web and the callees still tracked.
    assert_eq!(saved["ingress"].as_array().unwrap().len(), callees.len() + 1);
    // The survivors still work after the renumbering: svc-0's history is intact.
    let mut d2 = d.clone();
    assert!(d2.relearn(saved).is_ok());
}

/// The resolution-failure detector interned every service name it saw and
/// never forgot one. Past `MAX_TRACKED_KEYS` names it keeps only those the
/// open windows use, and still detects afterwards.
#[test]
fn the_resolution_failure_name_table_is_capped_and_still_detects() {
    let mut d = BroadFailureDetector::default();
    let n = super::MAX_TRACKED_KEYS;
    // Many services come and go, each in a closed window of its own.
    for i in 0..n + 500 {
        d.observe(&edge(&format!("junk-{i}"), "x", i, 100, 0, 0, 0, 10.0), at(i));
    }
    assert!(d.evicted() > 0, "names were forgotten");
    // The detector still fires on a resolver failing for a caller, after
    // the table was rebuilt: names interned again are read back right.
    let base = n + 600;
    let mut fired = Vec::new();
    for k in 0..12 {
        let step = base + k;
        let bad = k >= 2;
        fired.extend(d.observe(&edge("web", "dns", step, 100, if bad { 10 } else { 0 }, 0, 0, 10.0), at(step)));
        fired.extend(d.observe(&edge("web", "api", step, 100, 0, 0, 0, 10.0), at(step)));
    }
    fired.extend(d.tick(at(base + 20)));
    assert!(fired.iter().any(|f| f.kind == "dependency_resolution_failure" && f.subject.to_string() == "dns"), "{fired:?}");
}
