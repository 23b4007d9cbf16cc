//! Unit tests of the diagnosis on small synthetic cases: change point found
//! without being told, strongest resource ranked first, graph direction
//! preferring the downstream dependency, and typed errors on thin input.

use super::*;
use crate::time::Duration;

fn svc(s: &str) -> ServiceName {
    ServiceName::new(s).unwrap()
}

/// splitmix64: a named, seeded PRNG for deterministic noise.
struct SplitMix(u64);
impl SplitMix {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Roughly normal noise (sum of uniforms), mean 0, sd 1.
    fn noise(&mut self) -> f64 {
        (0..12).map(|_| self.next_f64()).sum::<f64>() - 6.0
    }
}

const T0: i64 = 1_700_000_000;

/// A series of `n` one-minute samples around `level`, with `shift` added
/// from sample `from` on.
fn series(subject: Subject, measure: &str, rng: &mut SplitMix, n: usize, level: f64, from: usize, shift: f64) -> MetricSeries {
    let points = (0..n)
        .map(|i| {
            let t = Timestamp::from_secs(T0) + Duration::from_mins(i as i64);
            let v = level + rng.noise() * level * 0.05 + if i >= from { shift } else { 0.0 };
            (t, v)
        })
        .collect();
    MetricSeries {
        subject,
        measure: measure.into(),
        kind: SeriesKind::Gauge,
        points,
        symptom: false,
        shared: false,
        reference_until: None,
        trials: Vec::new(),
        min_scale: None,
        attributed: false,
    }
}

fn service(s: &str) -> Subject {
    Subject::Service { service: svc(s) }
}

fn call(a: &str, b: &str) -> Interaction {
    Interaction { caller: svc(a), callee: svc(b), operation: String::new() }
}

#[test]
fn finds_the_change_point_and_ranks_the_shifted_resource_first() {
    let mut rng = SplitMix(7);
    let cpu = Subject::Resource { service: svc("payments"), resource: "cpu".into() };
    let input = DiagnosisInput {
        series: vec![
            series(service("gateway"), "latency", &mut rng, 30, 100.0, 20, 0.0),
            series(cpu.clone(), "cpu", &mut rng, 30, 40.0, 20, 40.0),
            series(service("ledger"), "latency", &mut rng, 30, 10.0, 20, 0.0),
        ],
        calls: vec![],
    };
    let d = diagnose(&input, &DiagnosisConfig::default()).unwrap();
    assert_eq!(d.change_point, Some(Timestamp::from_secs(T0) + Duration::from_mins(20)));
    assert_eq!(d.origins[0].subject, cpu);
    assert_eq!(d.scores[0].service, svc("payments"));
    assert!(d.origins[0].confidence > 0.5, "{:?}", d.origins[0]);
    assert!(d.origins[0].reasons[0].contains("above its pre-change median"), "{:?}", d.origins[0].reasons);
}

#[test]
fn the_downstream_anomalous_dependency_outranks_the_callers_it_explains() {
    // checkout -> fraud -> fraud-db; the db slows down and both callers'
    // latency rises even more (relative), as latency does up a call chain.
    let mut rng = SplitMix(11);
    let input = DiagnosisInput {
        series: vec![
            series(service("checkout"), "latency", &mut rng, 30, 100.0, 18, 80.0),
            series(service("fraud"), "latency", &mut rng, 30, 50.0, 18, 60.0),
            series(service("fraud-db"), "latency", &mut rng, 30, 20.0, 18, 15.0),
            series(service("catalog"), "latency", &mut rng, 30, 20.0, 18, 0.0),
        ],
        calls: vec![call("checkout", "fraud"), call("fraud", "fraud-db"), call("checkout", "catalog")],
    };
    let d = diagnose(&input, &DiagnosisConfig::default()).unwrap();
    let order: Vec<&str> = d.scores.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(order[0], "fraud-db", "{order:?}");
    assert_eq!(*order.last().unwrap(), "catalog", "{order:?}");
    assert!(d.scores.iter().find(|s| s.service.as_str() == "checkout").unwrap().explained_by.contains(&svc("fraud-db")));

    // Without the graph, strength alone would put a caller first.
    let no_graph = DiagnosisInput { calls: vec![], ..input };
    let d = diagnose(&no_graph, &DiagnosisConfig::default()).unwrap();
    assert_ne!(d.scores[0].service.as_str(), "fraud-db");
}

#[test]
fn a_callee_whose_anomaly_began_later_does_not_explain_its_caller() {
    let score = |name: &str, strength: f64, onset_min: i64| ServiceScore {
        service: svc(name),
        strength,
        onset: Some(Timestamp::from_secs(T0) + Duration::from_mins(onset_min)),
        explained_by: Vec::new(),
        score: strength,
        evidence: Vec::new(),
    };
    let calls = [call("frontend", "cart"), call("frontend", "ads")];
    // cart turned anomalous two minutes after the frontend (a consequence);
    // ads at the same minute (a possible cause).
    let mut scores = vec![score("frontend", 20.0, 18), score("cart", 15.0, 20)];
    apply_graph_direction(&mut scores, &calls, &DiagnosisConfig::default());
    assert!(scores[0].explained_by.is_empty(), "{scores:?}");
    assert_eq!(scores[0].score, 20.0);
    let mut scores = vec![score("frontend", 20.0, 18), score("ads", 15.0, 18)];
    apply_graph_direction(&mut scores, &calls, &DiagnosisConfig::default());
    assert_eq!(scores[0].explained_by, vec![svc("ads")]);
    assert!(scores[0].score < 20.0);
}

#[test]
fn flows_help_find_the_change_but_are_never_candidates() {
    let mut rng = SplitMix(3);
    let flow = Subject::Flow { flow: crate::ids::FlowName::new("checkout").unwrap() };
    let input = DiagnosisInput {
        series: vec![series(flow, "error_ratio", &mut rng, 30, 1.0, 12, 5.0), series(service("a"), "latency", &mut rng, 30, 10.0, 12, 4.0)],
        calls: vec![],
    };
    let d = diagnose(&input, &DiagnosisConfig::default()).unwrap();
    assert_eq!(d.change_point, Some(Timestamp::from_secs(T0) + Duration::from_mins(12)));
    assert_eq!(d.origins.len(), 1);
    assert_eq!(d.scores[0].service, svc("a"));
}

#[test]
fn counts_use_a_poisson_floor_so_a_single_extra_event_is_not_an_anomaly() {
    let pts = |v: &[f64]| v.iter().enumerate().map(|(i, &x)| (Timestamp::from_secs(T0 + 10 * i as i64), x)).collect();
    let input = DiagnosisInput {
        series: vec![
            MetricSeries {
                subject: service("quiet"),
                measure: "log:warn".into(),
                kind: SeriesKind::Count,
                points: pts(&[0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 1., 1., 0., 0.]),
                symptom: false,
                shared: false,
                reference_until: None,
                trials: Vec::new(),
                min_scale: None,
                attributed: false,
            },
            MetricSeries {
                subject: service("broken"),
                measure: "log:error".into(),
                kind: SeriesKind::Count,
                points: pts(&[0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 0., 9., 12., 10., 11.]),
                symptom: false,
                shared: false,
                reference_until: None,
                trials: Vec::new(),
                min_scale: None,
                attributed: false,
            },
        ],
        calls: vec![],
    };
    let d = diagnose(&input, &DiagnosisConfig::default()).unwrap();
    assert_eq!(d.scores[0].service, svc("broken"));
    let quiet = d.scores.iter().find(|s| s.service.as_str() == "quiet").unwrap();
    assert!(quiet.strength < 3.0, "{quiet:?}");
}

#[test]
fn too_little_data_is_a_typed_error_not_a_panic() {
    let input = DiagnosisInput {
        series: vec![MetricSeries {
            subject: service("a"),
            measure: "x".into(),
            kind: SeriesKind::Gauge,
            points: vec![(Timestamp::from_secs(T0), 1.0), (Timestamp::from_secs(T0 + 1), f64::NAN)],
            symptom: false,
            shared: false,
            reference_until: None,
            trials: Vec::new(),
            min_scale: None,
            attributed: false,
        }],
        calls: vec![],
    };
    assert!(matches!(diagnose(&input, &DiagnosisConfig::default()), Err(DiagnoseError::NotEnoughData { .. })));
    assert!(diagnose(&DiagnosisInput::default(), &DiagnosisConfig::default()).is_err());
}

#[test]
fn robust_baseline_ignores_outliers_and_floors_flat_series() {
    use robust::{Baseline, ScaleFloor};
    let floor = ScaleFloor { relative: 0.01, poisson: false, absolute: 1e-9 };
    let b = Baseline::fit(&[10.0, 10.5, 9.5, 10.0, 1000.0, f64::NAN], floor).unwrap();
    assert_eq!(b.median, 10.0);
    assert!(b.scale < 2.0, "{b:?}");
    let flat = Baseline::fit(&[5.0; 8], floor).unwrap();
    assert!((flat.scale - 0.05).abs() < 1e-12);
    assert!(Baseline::fit(&[], floor).is_none());
}

#[test]
fn shared_network_time_goes_to_the_end_whose_every_call_moved() {
    // db is slow to answer everyone: all three of its incoming calls gain
    // network time. Each caller has one moved call among several.
    let mut rng = SplitMix(5);
    let mut all = Vec::new();
    let mut calls = Vec::new();
    for caller in ["api", "jobs", "admin"] {
        for callee in ["db", "cache", "queue"] {
            let moved = callee == "db";
            let mut s =
                series(Subject::Interaction { interaction: call(caller, callee) }, "network_time_ms", &mut rng, 30, 3.0, 20, if moved { 2000.0 } else { 0.0 });
            s.shared = true;
            all.push(s);
            calls.push(call(caller, callee));
        }
    }
    all.push(series(service("api"), "latency", &mut rng, 30, 50.0, 20, 0.0));
    let d = diagnose(&DiagnosisInput { series: all, calls: vec![] }, &DiagnosisConfig::default()).unwrap();
    assert_eq!(d.scores[0].service, svc("db"), "{:?}", d.scores.iter().map(|s| (&s.service, s.score)).collect::<Vec<_>>());
    // db's score is 3 moved of 3 incoming (3z/4); a caller's is z/4 at most.
    let api = d.scores.iter().find(|s| s.service.as_str() == "api").unwrap();
    assert!(api.score < d.scores[0].score / 2.0, "{api:?}");
    assert!(d.scores[0].evidence[0].measure.contains("3 of 3 incoming"), "{:?}", d.scores[0].evidence[0]);
}

#[test]
fn a_fault_free_reference_is_the_baseline_whatever_the_change_point() {
    // Points 0..4 are a reference recording; 5..29 the incident capture,
    // faulty from point 8 on. The change point is found from `other`
    // (at 20), after the fault began, yet the reference series still
    // judges against the reference, so the fault is not in its baseline.
    let mut rng = SplitMix(9);
    let mut refd = series(service("svc"), "path_surprisal", &mut rng, 30, 1.0, 8, 5.0);
    refd.reference_until = Some(Timestamp::from_secs(T0) + Duration::from_mins(4));
    let other = series(service("other"), "cpu", &mut rng, 30, 10.0, 20, 10.0);
    let input = DiagnosisInput { series: vec![refd.clone(), other.clone()], calls: vec![] };
    let d = diagnose(&input, &DiagnosisConfig::default()).unwrap();
    let s = d.scores.iter().find(|s| s.service.as_str() == "svc").unwrap();
    assert!(s.strength > 20.0, "{s:?}");
    // Without the reference its baseline would hold the fault already.
    refd.reference_until = None;
    let d = diagnose(&DiagnosisInput { series: vec![refd, other], calls: vec![] }, &DiagnosisConfig::default()).unwrap();
    let s = d.scores.iter().find(|s| s.service.as_str() == "svc").unwrap();
    assert!(s.strength < 3.0, "{s:?}");
}

#[test]
fn a_flat_series_moving_one_quantum_is_not_infinitely_surprising() {
    let pts = |v: &[f64]| v.iter().enumerate().map(|(i, &x)| (Timestamp::from_secs(T0 + 60 * i as i64), x)).collect();
    let mut zeros = vec![0.0; 20];
    zeros.extend([0.0625; 4]);
    let mut steps = vec![10.0; 20];
    steps.extend([30.0; 4]);
    let input = DiagnosisInput {
        series: vec![
            MetricSeries {
                subject: service("idle"),
                measure: "workload".into(),
                kind: SeriesKind::Gauge,
                points: pts(&zeros),
                symptom: false,
                shared: false,
                reference_until: None,
                trials: Vec::new(),
                min_scale: None,
                attributed: false,
            },
            MetricSeries {
                subject: service("busy"),
                measure: "cpu".into(),
                kind: SeriesKind::Gauge,
                points: pts(&steps),
                symptom: false,
                shared: false,
                reference_until: None,
                trials: Vec::new(),
                min_scale: None,
                attributed: false,
            },
        ],
        calls: vec![],
    };
    let d = diagnose(&input, &DiagnosisConfig::default()).unwrap();
    assert_eq!(d.scores[0].service, svc("busy"));
    let idle = d.scores.iter().find(|s| s.service.as_str() == "idle").unwrap();
    assert!(idle.strength <= 1.0 + 1e-9, "{idle:?}");
}

/// A proportion (changed traces out of traces, per 10 s bin, a fault-free
/// reference first) is judged over the whole post-change window: two of
/// three traces changed in every bin is a handful per bin but decisive in
/// total, and outranks a gauge with a clear held shift; a proportion at its
/// reference rate scores nothing.
#[test]
fn a_proportion_is_judged_over_the_whole_window_by_its_binomial_tail() {
    let t = |i: usize| Timestamp::from_secs(T0 + 10 * i as i64);
    let reference_until = Some(t(5));
    let prop = |name: &str, f: &dyn Fn(usize) -> (f64, f64)| {
        let (points, trials): (Vec<_>, Vec<_>) = (0..30).map(|i| ((t(i), f(i).0), f(i).1)).unzip();
        MetricSeries {
            subject: service(name),
            measure: "code_path".into(),
            kind: SeriesKind::Proportion,
            points,
            symptom: false,
            shared: false,
            reference_until,
            trials,
            min_scale: None,
            attributed: false,
        }
    };
    let mut rng = SplitMix(11);
    let jittery = MetricSeries {
        points: (0..30).map(|i| (t(i), 100.0 + rng.noise() * 2.0 + if i >= 20 { 40.0 } else { 0.0 })).collect(),
        ..series(service("jittery"), "latency", &mut SplitMix(1), 0, 0.0, 0, 0.0)
    };
    let input = DiagnosisInput {
        series: vec![
            jittery,
            prop("broken", &|i| if i >= 20 { (2.0, 3.0) } else { (0.0, 5.0) }),
            prop("steady", &|i| (if i % 4 == 0 { 1.0 } else { 0.0 }, 5.0)),
        ],
        calls: vec![],
    };
    let d = diagnose(&input, &DiagnosisConfig::default()).unwrap();
    assert_eq!(d.change_point, Some(t(20)));
    assert_eq!(d.scores[0].service, svc("broken"), "{:?}", d.scores);
    let broken = &d.scores[0].evidence[0];
    assert!((broken.observed - 20.0 / 30.0).abs() < 1e-9, "pooled share of the window: {broken:?}");
    assert!(broken.z > 8.0, "{broken:?}");
    assert!(d.scores[1].strength > 3.0, "the gauge's shift is real: {:?}", d.scores[1]);
    let steady = d.scores.iter().find(|s| s.service.as_str() == "steady").unwrap();
    assert!(steady.strength < 1e-9, "{steady:?}");
}

#[test]
fn tail_z_is_identity_without_dof_and_compresses_huge_z_monotonically() {
    assert_eq!(tail_z(42.0, 0.0), 42.0);
    assert!((tail_z(2.0, 1e9) - 2.0).abs() < 1e-3, "normal limit");
    let (a, b, c) = (tail_z(20.0, 10.0), tail_z(50.0, 10.0), tail_z(500.0, 10.0));
    assert!(a < b && b < c && c < 20.0, "{a} {b} {c}");
    assert_eq!(tail_z(-50.0, 10.0), -b);
}

/// `n` samples every `step_s` seconds from `start_s` (offset from T0),
/// around `level` with 5 % noise and `shift` added from sample `from` on.
#[allow(clippy::too_many_arguments)] // a test builder: every argument is one knob of the synthetic series
fn series_at(subject: Subject, measure: &str, rng: &mut SplitMix, start_s: i64, step_s: i64, n: usize, level: f64, from: usize, shift: f64) -> MetricSeries {
    let mut s = series(subject, measure, rng, n, level, from, shift);
    for (i, p) in s.points.iter_mut().enumerate() {
        p.0 = Timestamp::from_secs(T0 + start_s + step_s * i as i64);
    }
    s
}

#[test]
fn fine_reference_series_relocate_a_change_point_the_minute_metrics_put_early() {
    // Minute metrics: an unrelated shift of four services at minute 10, so
    // the coarse pass over all series picks minute 10.
    // Trace series in 10 s bins: a reference recording (6 bins, minute 0),
    // then a capture from minute 24 whose `svc` spans change at bin 9.
    let mut rng = SplitMix(21);
    let mut input = DiagnosisInput::default();
    for name in ["n1", "n2", "n3", "n4"] {
        input.series.push(series(service(name), "cpu", &mut rng, 30, 10.0, 10, 10.0));
    }
    let mut spans = series_at(service("svc"), "span_errors", &mut rng, 0, 10, 6, 5.0, 99, 0.0);
    let capture = series_at(service("svc"), "span_errors", &mut rng, 24 * 60, 10, 18, 5.0, 9, 20.0);
    spans.points.extend(capture.points);
    spans.reference_until = Some(Timestamp::from_secs(T0 + 50));
    input.series.push(spans);
    let local = Timestamp::from_secs(T0 + 24 * 60 + 90);
    let d = diagnose(&input, &DiagnosisConfig::default()).unwrap();
    assert_eq!(d.change_point, Some(local));
    assert_eq!(d.scores[0].service.as_str(), "svc", "{:?}", d.scores);
    let coarse = diagnose(&input, &DiagnosisConfig { local_change_point: false, ..DiagnosisConfig::default() }).unwrap();
    assert_eq!(coarse.change_point, Some(Timestamp::from_secs(T0 + 600)));
}

#[test]
fn a_starved_caller_is_not_explained_by_the_callees_of_its_own_slowed_calls() {
    // api's CPU is starved: all three of its outgoing calls gain network
    // time. Each callee's only evidence is api's calls to it, and api is
    // stronger than any of them (3 moved of 3 outgoing), so no callee
    // explains api away.
    let mut rng = SplitMix(11);
    let mut all = Vec::new();
    let mut calls = Vec::new();
    for callee in ["db", "cache", "queue"] {
        let mut s = series(Subject::Interaction { interaction: call("api", callee) }, "network_time_ms", &mut rng, 30, 3.0, 20, 300.0);
        s.shared = true;
        all.push(s);
        calls.push(call("api", callee));
    }
    let input = DiagnosisInput { series: all, calls };
    let d = diagnose(&input, &DiagnosisConfig::default()).unwrap();
    assert_eq!(d.scores[0].service, svc("api"), "{:?}", d.scores.iter().map(|s| (&s.service, s.score)).collect::<Vec<_>>());
    assert!(d.scores[0].explained_by.is_empty(), "{:?}", d.scores[0]);
    // The earlier rule (any anomalous callee with half the strength explains
    // its caller) put a callee first.
    let old = DiagnosisConfig { own_calls_never_explain: false, ..DiagnosisConfig::default() };
    let d = diagnose(&input, &old).unwrap();
    assert_ne!(d.scores[0].service, svc("api"));
}

#[test]
fn one_moved_call_between_two_single_call_ends_is_given_to_the_callee() {
    // auth's only call goes to codes, codes' only caller is auth: the
    // network time cannot say which end moved, and a tie goes downstream.
    let mut rng = SplitMix(13);
    let mut s = series(Subject::Interaction { interaction: call("auth", "codes") }, "network_time_ms", &mut rng, 30, 3.0, 20, 2000.0);
    s.shared = true;
    let d = diagnose(&DiagnosisInput { series: vec![s], calls: vec![call("auth", "codes")] }, &DiagnosisConfig::default()).unwrap();
    assert_eq!(d.scores[0].service, svc("codes"), "{:?}", d.scores);
    assert_eq!(d.scores[1].explained_by, vec![svc("codes")]);
}

#[test]
fn a_move_below_the_measures_floor_is_not_evidence_however_quiet_the_baseline() {
    // idle's CPU sits at 3 m ± 0.1 and rises to 15 m: hundreds of its own σ,
    // but below a 10 m floor that is about one σ. busy's CPU jumps by 400 m.
    let mut rng = SplitMix(17);
    let cpu = |s: &str| Subject::Resource { service: svc(s), resource: "cpu".into() };
    let mut idle = series(cpu("idle"), "CpuUsage(m)", &mut rng, 30, 3.0, 20, 12.0);
    let mut busy = series(cpu("busy"), "CpuUsage(m)", &mut rng, 30, 30.0, 20, 400.0);
    let raw = diagnose(&DiagnosisInput { series: vec![idle.clone(), busy.clone()], calls: vec![] }, &DiagnosisConfig::default()).unwrap();
    let idle_raw = raw.scores.iter().find(|s| s.service.as_str() == "idle").unwrap().strength;
    assert!(idle_raw > 50.0, "{idle_raw}");
    idle.min_scale = Some(10.0);
    busy.min_scale = Some(10.0);
    let d = diagnose(&DiagnosisInput { series: vec![idle, busy], calls: vec![] }, &DiagnosisConfig::default()).unwrap();
    assert_eq!(d.scores[0].service, svc("busy"));
    let idle = d.scores.iter().find(|s| s.service.as_str() == "idle").unwrap();
    assert!(idle.strength < 3.0, "{idle:?}");
    assert!(d.scores[0].strength > 30.0, "{:?}", d.scores[0]);
}

#[test]
fn evidence_already_blamed_on_a_service_is_not_explained_by_its_callees() {
    // web's traces changed with no changed callee below them (a blamed
    // code-path share); its callee db changed too, in other traces. db is
    // weaker but more than half as strong, and began first, so graph
    // direction would explain web by db — unless the evidence says it was
    // already attributed.
    let mut rng = SplitMix(19);
    let mut web = series(service("web"), "code_path_changed_share", &mut rng, 30, 10.0, 20, 8.0);
    let db = series(service("db"), "code_path_changed_share", &mut rng, 30, 10.0, 19, 6.0);
    let calls = vec![call("web", "db")];
    let d = diagnose(&DiagnosisInput { series: vec![web.clone(), db.clone()], calls: calls.clone() }, &DiagnosisConfig::default()).unwrap();
    assert_eq!(d.scores[0].service, svc("db"), "{:?}", d.scores);
    web.attributed = true;
    let d = diagnose(&DiagnosisInput { series: vec![web, db], calls }, &DiagnosisConfig::default()).unwrap();
    assert_eq!(d.scores[0].service, svc("web"), "{:?}", d.scores);
    assert!(d.scores[0].explained_by.is_empty());
}

#[test]
fn an_intermittent_spike_in_a_sparse_reference_series_is_not_a_held_shift() {
    // A call seen in a few bins: the reference is quiet (≈ 2 ms); after the
    // change a third of its bins hold a 115 ms gap, one sample apart (a
    // sparse call skips bins). Judged by the median of
    // the whole post-change window it is not a shift; the steady 30 ms gap
    // of another call is.
    let t0 = Timestamp::from_secs(T0);
    let at = |i: i64| t0 + Duration::from_secs(10 * i);
    let gap = |caller: &str, values: &[f64]| MetricSeries {
        subject: Subject::Interaction { interaction: call(caller, "seat") },
        measure: "network_time_ms".into(),
        kind: SeriesKind::Gauge,
        points: values.iter().enumerate().map(|(i, v)| (at(i as i64), *v)).collect(),
        symptom: false,
        shared: true,
        reference_until: Some(at(5)),
        trials: Vec::new(),
        min_scale: None,
        attributed: false,
    };
    let spiky = gap("travel2", &[2.1, 1.9, 3.1, 2.1, 3.1, 2.4, 116.0, 2.2, 115.7, 3.5, 112.7, 2.4, 3.3, 2.5, 2.4]);
    let steady = gap("travel", &[2.1, 1.9, 3.1, 2.1, 3.1, 2.4, 30.0, 31.0, 29.5, 30.2, 30.8, 29.9, 30.1, 31.2, 30.4]);
    let d = diagnose(&DiagnosisInput { series: vec![spiky.clone(), steady.clone()], calls: vec![] }, &DiagnosisConfig::default()).unwrap();
    let of = |d: &Diagnosis, s: &str| d.scores.iter().find(|x| x.service.as_str() == s).map_or(0.0, |x| x.strength);
    assert!(of(&d, "travel2") < 3.0, "{:?}", d.scores);
    assert!(of(&d, "travel") > 10.0, "{:?}", d.scores);
    // Judged by the most extreme held level, the spikes looked like a shift.
    let held =
        diagnose(&DiagnosisInput { series: vec![spiky, steady], calls: vec![] }, &DiagnosisConfig { window_levels: false, ..DiagnosisConfig::default() })
            .unwrap();
    assert!(of(&held, "travel2") > 10.0, "{:?}", held.scores);
}
