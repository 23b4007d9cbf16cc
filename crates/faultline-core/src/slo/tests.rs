//! Unit tests for the SLO module: durations, window schemes, CSV parsing and
//! the evaluator on small hand-made series. Fixture oracles live in
//! `tests/it/slo_oracles.rs`.

use super::*;
use crate::time::{Duration, Timestamp};

fn d(s: &str) -> Duration {
    parse_duration(s).unwrap()
}

#[test]
fn durations_parse_and_format() {
    for (text, ms, canon) in [
        ("5m", 300_000, "5m"),
        ("1h30m", 5_400_000, "1h30m"),
        ("3d12h", 302_400_000, "3d12h"),
        ("2m0s", 120_000, "2m"),
        ("4w", 2_419_200_000, "4w"),
        ("30d", 2_592_000_000, "30d"),
        ("8d", 691_200_000, "8d"),
        ("0", 0, "0s"),
    ] {
        assert_eq!(d(text).as_millis(), ms, "{text}");
        assert_eq!(format_duration(d(text)), canon, "{text}");
    }
    for bad in ["", "5", "m", "5x", "-5m", "99999999999999999999d"] {
        assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
    }
}

#[test]
fn workbook_short_window_is_a_twelfth_of_the_long() {
    let w = AlertWindows::sre_workbook();
    let got: Vec<(String, f64, String)> = w.pairs.iter().map(|p| (p.severity.to_string(), p.factor, p.label())).collect();
    assert_eq!(
        got,
        vec![
            ("page".into(), 14.4, "5m/1h".into()),
            ("page".into(), 6.0, "30m/6h".into()),
            ("ticket".into(), 3.0, "2h/1d".into()),
            ("ticket".into(), 1.0, "6h/3d".into()),
        ]
    );
    // At 30 days the budget-share scheme gives the same factors bit for bit.
    let g = AlertWindows::google(d("30d"));
    assert_eq!(g.pairs.iter().map(|p| p.factor).collect::<Vec<_>>(), vec![14.4, 6.0, 3.0, 1.0]);
}

fn spec(objective: f64, windows: AlertWindows) -> SloSpec {
    SloSpec {
        name: "t".into(),
        service: "svc".into(),
        description: String::new(),
        target: SloTarget::Service { service: "svc".into() },
        objective: Objective::Percent(objective),
        sli: spec::Sli::Plugin { id: "test".into() },
        windows,
        alert_name: None,
        labels: Default::default(),
        format: "test".into(),
    }
}

fn minutes(n: i64, bad_at: impl Fn(i64) -> f64) -> Vec<SeriesRow> {
    (1..=n).map(|m| SeriesRow { at: Timestamp::from_secs(m * 60), bad: bad_at(m), total: 1000.0 }).collect()
}

#[test]
fn full_outage_pages_after_the_workbook_time_to_fire() {
    // 100% errors from minute 1 against 99.9%: the 14.4x/1h pair needs the 1h
    // ratio > 1.44%, i.e. more than 0.864 minutes of data - it fires at once,
    // and the 5m window is also saturated.
    let s = spec(99.9, AlertWindows::sre_workbook());
    let r = eval_series(&s, &minutes(10, |_| 1000.0));
    assert_eq!(r.severities[0].severity, AlertSeverity::Page);
    assert_eq!(r.severities[0].start, Timestamp::from_secs(60));
    assert_eq!(r.severities[0].end, None);
}

#[test]
fn short_window_resets_the_page_soon_after_recovery() {
    // 20 minutes of 5% errors after 2h of clean traffic, then clean again.
    // Workbook time to fire: (0.001 / 0.05) x 60 min x 14.4 = 17.28 min, so
    // the page starts at the 18th bad minute (138); it stops once the 5m
    // window is clean even though the 1h one is not.
    let s = spec(99.9, AlertWindows::sre_workbook());
    let rows = minutes(240, |m| if (121..=140).contains(&m) { 50.0 } else { 0.0 });
    let r = eval_series(&s, &rows);
    let page: Vec<_> = r.alerts.iter().filter(|a| a.pair == "page_quick").collect();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].start, Timestamp::from_secs(138 * 60));
    // Bad rows are 121..=140; at minute 144 the 5m window (139, 144] holds one
    // bad minute of five = 1% < 1.44%, so the page resolves there.
    assert_eq!(page[0].end, Some(Timestamp::from_secs(144 * 60)));
}

#[test]
fn for_duration_delays_firing() {
    let mut w = AlertWindows::sre_workbook();
    w.pairs.truncate(1);
    w.pairs[0].for_ = Duration::from_mins(3);
    let r = eval_series(&spec(99.9, w), &minutes(10, |_| 1000.0));
    assert_eq!(r.alerts[0].start, Timestamp::from_secs(4 * 60));
}

#[test]
fn budget_spent_matches_burn_times_coverage() {
    // 0.2% errors (burn 2) for one day against a 30-day 99.9% SLO: spent 2/30.
    let s = spec(99.9, AlertWindows::sre_workbook());
    let r = eval_series(&s, &minutes(1440, |_| 2.0));
    assert!((r.budget.burn_rate.unwrap() - 2.0).abs() < 1e-9);
    assert!((r.budget.spent - 2.0 / 30.0).abs() < 1e-9, "{}", r.budget.spent);
    assert!((r.budget.remaining - (1.0 - 2.0 / 30.0)).abs() < 1e-9);
}

#[test]
fn csv_parser_reports_line_numbers() {
    use eval::SeriesErrorKind as K;
    let ok = parse_series_csv("timestamp,good,total\n# c\n60,990,1000\n2026-01-01T00:00:00Z,1000,1000\n").unwrap();
    assert_eq!(ok[0].bad, 10.0);
    let ok = parse_series_csv("total,timestamp,bad\n1000,60,10\n").unwrap();
    assert_eq!((ok[0].bad, ok[0].total), (10.0, 1000.0));
    type Case<'a> = (&'a str, usize, fn(&K) -> bool);
    let cases: &[Case<'_>] = &[
        ("", 1, |k| matches!(k, K::Empty)),
        ("time,good,total\n", 1, |k| matches!(k, K::Header(_))),
        ("timestamp,good,bad\n", 1, |k| matches!(k, K::Header(_))),
        ("timestamp,good,total\n60,1\n", 2, |k| matches!(k, K::FieldCount(2))),
        ("timestamp,good,total\nyesterday,1,2\n", 2, |k| matches!(k, K::Timestamp(_))),
        ("timestamp,good,total\n60,-1,2\n", 2, |k| matches!(k, K::Number { column: "good", .. })),
        ("timestamp,bad,total\n60,1,NaN\n", 2, |k| matches!(k, K::Number { column: "total", .. })),
        ("timestamp,bad,total\n60,3,2\n", 2, |k| matches!(k, K::ExceedsTotal { .. })),
        ("timestamp,bad,total\n\n120,1,2\n60,1,2\n", 4, |k| matches!(k, K::NotIncreasing(_))),
    ];
    for (text, line, pred) in cases {
        let e = parse_series_csv(text).unwrap_err();
        assert_eq!(e.line, *line, "{text:?}: {e}");
        assert!(pred(&e.kind), "{text:?}: {e}");
    }
}

/// The live monitor and the offline evaluator agree: fed the same minutes,
/// the monitor's `slo_burn` findings start exactly where `eval_series` says
/// each severity starts firing.
#[test]
fn live_monitor_matches_the_offline_evaluator() {
    use crate::detect::Detector;
    use crate::ids::ServiceName;
    use crate::model::Interaction;
    use crate::signal::{EdgeWindow, Signal};
    let s = spec(99.9, AlertWindows::sre_workbook());
    let bad = |m: i64| -> u64 {
        match m {
            121..=160 => 60,
            400..=700 => 8,
            _ => 0,
        }
    };
    let rows: Vec<SeriesRow> = (1..=900).map(|m| SeriesRow { at: Timestamp::from_secs(m * 60), bad: bad(m) as f64, total: 1000.0 }).collect();
    let report = eval_series(&s, &rows);
    let mut mon = SloMonitor::new(s.clone());
    let mut fired = Vec::new();
    for m in 1..=900i64 {
        let end = Timestamp::from_secs(m * 60);
        let w = Signal::Edge(EdgeWindow {
            interaction: Interaction { caller: ServiceName::new("web").unwrap(), callee: ServiceName::new("svc").unwrap(), operation: String::new() },
            start: end - Duration::from_mins(1),
            length: Duration::from_mins(1),
            requests: 1000,
            errors: bad(m),
            timeouts: 0,
            retries: 0,
            p50_ms: 1.0,
            p99_ms: 2.0,
            in_flight: None,
            zones: Vec::new(),
            exemplar_trace_ids: Vec::new(),
        });
        fired.extend(mon.observe(&w, end));
        fired.extend(mon.tick(end + Duration::from_secs(1)));
    }
    let got: Vec<(Timestamp, bool)> = fired.iter().map(|f| (f.started_at, f.evidence.measure.starts_with("burn_rate (page"))).collect();
    let want: Vec<(Timestamp, bool)> = report.severities.iter().map(|i| (i.start, i.severity == AlertSeverity::Page)).collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);
    let st = mon.status();
    assert_eq!(st.pairs.len(), 4);
    assert!(st.budget_remaining < 1.0);
}

#[test]
fn run_eval_end_to_end() {
    let spec = "version: prometheus/v1\nservice: shop\nslos:\n- name: checkout\n  objective: 99.9\n  sli: {raw: {error_ratio_query: x}}\n  alerting: {name: Checkout}\n- name: search\n  objective: 99\n  sli: {raw: {error_ratio_query: y}}\n  alerting: {name: Search}\n";
    let mut csv = String::from("timestamp,good,total\n");
    for m in 1..=180 {
        let good = if (61..=90).contains(&m) { 900 } else { 1000 };
        csv.push_str(&format!("{},{good},1000\n", 1_800_000_000 + m * 60));
    }
    let table = run_eval(spec, &csv, None, false).unwrap();
    assert!(table.contains("SLO checkout") && table.contains("SLO search"), "{table}");
    assert!(table.contains("page") && table.contains("page_quick"), "{table}");
    let json = run_eval(spec, &csv, Some("checkout"), true).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert!(v[0]["alerts"].as_array().unwrap().iter().any(|a| a["severity"] == "page"));
    assert!(matches!(run_eval(spec, &csv, Some("nope"), false), Err(eval::SloEvalError::UnknownSlo(..))));
    let bad_csv = "timestamp,good,total\n60,5,4\n";
    let err = run_eval(spec, bad_csv, None, false).unwrap_err().to_string();
    assert!(err.contains("line 2"), "{err}");
    let err = run_eval("version: prometheus/v2\n", &csv, None, false).unwrap_err().to_string();
    assert!(err.contains("'version'"), "{err}");
}
