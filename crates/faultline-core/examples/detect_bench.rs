//! Micro benchmark for detection (no criterion): throughput of `DetectorSet`
//! over interaction windows, and `eval_series` over a 30-day series at
//! 1-minute resolution. Run: `cargo run --release -p faultline-core --example detect_bench
//! [-- --windows N] [--detectors-only]` (default 5,000 windows of 200 interactions;
//! a smaller N with `--detectors-only` suits `valgrind --tool=callgrind`).
//!
//! Not a test: it prints numbers for docs/benchmarks.md; it asserts only
//! that work was done (findings/alerts counted) so nothing is optimised away.

use std::time::Instant;

use faultline_core::detect::DetectorSet;
use faultline_core::model::Interaction;
use faultline_core::signal::{EdgeWindow, Signal};
use faultline_core::slo::{SeriesRow, eval_series, load_slo_specs};
use faultline_core::{Duration, ServiceName, Timestamp};

fn main() {
    // 200 interactions x 5,000 one-minute windows, deterministic values with
    // a fault on 10 edges half way, all detectors on.
    let edges: Vec<Interaction> = (0..200)
        .map(|i| Interaction {
            caller: ServiceName::new(format!("svc-{}", i % 40)).unwrap(),
            callee: ServiceName::new(format!("svc-{}", (i * 7 + 3) % 40)).unwrap(),
            operation: format!("op{i}"),
        })
        .collect();
    let args: Vec<String> = std::env::args().collect();
    let windows: usize = args.iter().position(|a| a == "--windows").and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(5_000);
    let mut signals = Vec::with_capacity(edges.len() * windows);
    for w in 0..windows {
        let start = Timestamp::from_secs(1_800_000_000 + w as i64 * 60);
        for (k, e) in edges.iter().enumerate() {
            let bad = w > windows / 2 && k < 10;
            let jitter = ((w * 31 + k * 17) % 13) as u64;
            signals.push(Signal::Edge(EdgeWindow {
                interaction: e.clone(),
                start,
                length: Duration::from_secs(60),
                requests: 1000 + jitter * 10,
                errors: if bad { 300 } else { 5 + jitter % 4 },
                timeouts: 0,
                retries: if bad { 400 } else { jitter },
                p50_ms: 20.0,
                p99_ms: 100.0 + jitter as f64,
                in_flight: None,
                zones: Vec::new(),
                exemplar_trace_ids: Vec::new(),
            }));
        }
    }
    let mut set = DetectorSet::standard();
    let t = Instant::now();
    let mut findings = 0usize;
    for (i, s) in signals.iter().enumerate() {
        findings += set.observe(s, s.at()).len();
        if i % edges.len() == edges.len() - 1 {
            findings += set.tick(s.at() + Duration::from_secs(1)).len();
        }
    }
    let el = t.elapsed();
    println!(
        "detectors: {} interaction-windows in {:.3}s = {:.0} windows/s (all {} detectors on, {findings} findings)",
        signals.len(),
        el.as_secs_f64(),
        signals.len() as f64 / el.as_secs_f64(),
        set.names().len()
    );

    if args.iter().any(|a| a == "--detectors-only") {
        return;
    }
    let spec = &load_slo_specs(
        "version: prometheus/v1\nservice: s\nslos:\n- name: a\n  objective: 99.9\n  sli: {raw: {error_ratio_query: x}}\n  alerting: {name: A}\n",
        None,
    )
    .unwrap()[0];
    let rows: Vec<SeriesRow> =
        (1..=30 * 1440i64).map(|m| SeriesRow { at: Timestamp::from_secs(m * 60), bad: if m % 1000 < 40 { 30.0 } else { 1.0 }, total: 1000.0 }).collect();
    let t = Instant::now();
    let r = eval_series(spec, &rows);
    let el = t.elapsed();
    println!("slo eval: {} rows (30 days at 1 min), {} alert intervals, in {:.1} ms", rows.len(), r.alerts.len(), el.as_secs_f64() * 1e3);
}
