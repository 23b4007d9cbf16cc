//! Prints the simulator's numbers for the published anchors (the figures in
//! docs/simulator.md): `cargo run --release -p faultline-sim --example anchors_report`.

use faultline_sim::anchors::{Strategy, occ_mean};
use faultline_sim::{Scenario, run_scenario};

fn run(yaml: &str) -> faultline_sim::RunOutput {
    run_scenario(&Scenario::from_yaml(yaml).expect("valid"), None, None, false)
}

fn main() {
    println!("## AWS backoff and jitter (OCC, 100 trials, seed 1)");
    for n in [10, 50, 100] {
        let cells: Vec<String> = Strategy::ALL
            .iter()
            .map(|&s| {
                let (c, t) = occ_mean(n, s, 100, 1);
                format!("{}: {c:.0} / {t:.0}", s.name())
            })
            .collect();
        println!("N={n}: {}", cells.join(" | "));
    }
    println!("## Brooker 2022, 100 clients x 10 rps, 10 s");
    for x in [0.1, 0.2, 0.5, 0.75] {
        let mut row = format!("x={x}:");
        for (name, policy) in [
            ("no retries", "retry: {attempts: 1}"),
            ("three retries", "retry: {attempts: 4}"),
            ("bucket", "retry: {attempts: 4, budget: {ratio: 0.1, cap: 5}}"),
            ("breaker", "retry: {attempts: 4}, breaker: {failure_ratio: 0.1, window: 1000s, min_calls: 1, scope: retries}"),
        ] {
            let yaml = format!(
                "name: b\nduration: 10s\nground_truth: {{class: retry_storm, failure_model: unknown, origin: c -> s}}\n\
                 services:\n  - {{name: s, error_rate: {x}, service_time: {{exp: 20ms}}}}\n\
                 load:\n  - {{name: c, kind: open, rate: 1000, clients: 100, call: {{to: s, {policy}}}}}\n"
            );
            let out = run(&yaml);
            let src = &out.totals.sources[0].1;
            let att: u64 = out.series.edge_rows.iter().map(|r| r.attempts).sum();
            row += &format!(" {name} {:.3}/{:.3} |", src.goodput as f64 / src.requests as f64, att as f64 / src.requests as f64);
        }
        println!("{row}");
    }
    println!("## Cache stampede (recomputes per expiry)");
    for (r, d, ttl, dur, cache) in [
        (10.0, 3.0, 20.0, 6000.0, "lock: false"),
        (10.0, 3.0, 20.0, 6000.0, "xfetch_beta: 0.5"),
        (10.0, 3.0, 20.0, 6000.0, "xfetch_beta: 1.0"),
        (10.0, 3.0, 60.0, 18000.0, "xfetch_beta: 2.0"),
        (1000.0, 0.1, 5.0, 600.0, "lock: false"),
        (1000.0, 0.1, 5.0, 600.0, "xfetch_beta: 1.0"),
        (10.0, 3.0, 20.0, 6000.0, "lock: true"),
    ] {
        let yaml = format!(
            "name: s\nduration: {dur}s\nwindow: 10s\nground_truth: {{class: cache_stampede, failure_model: exhaustion, origin: a -> o}}\n\
             services:\n  - name: a\n    calls:\n      - {{to: o, cache: {{keys: 1, ttl: {ttl}s, warm: true, {cache}}}}}\n  - {{name: o, service_time: {{const: {d}s}}}}\n\
             load:\n  - {{name: r, kind: open, rate: {r}, call: {{to: a}}}}\n"
        );
        let out = run(&yaml);
        let c = &out.totals.caches[0];
        println!("r={r} delta={d} ttl={ttl} {cache}: {:.2} recomputes/expiry over {} expiries", c.recomputes as f64 / c.cycles as f64, c.cycles);
    }
    println!("## SRE book adaptive throttling (backend accepts <= 100 rps, offered 1,000 rps; t >= 300 s)");
    for k in [2.0, 1.1] {
        let yaml = format!(
            "name: throttle\nduration: 600s\nwindow: 10s\n\
             ground_truth: {{class: retry_storm, failure_model: exhaustion, origin: clients -> backend}}\n\
             services:\n  - {{name: backend, concurrency: 10, queue: {{capacity: 0}}, service_time: {{const: 100ms}}}}\n\
             load:\n  - {{name: clients, kind: open, rate: 1000, clients: 100, call: {{to: backend, throttle: {{k: {k}, window: 120s}}}}}}\n"
        );
        let out = run(&yaml);
        let rows: Vec<_> = out.series.edge("clients", "backend").into_iter().filter(|r| r.window >= 30).collect();
        let secs = rows.len() as f64 * 10.0;
        let sent = rows.iter().map(|r| r.attempts).sum::<u64>() as f64 / secs;
        let ok = rows.iter().map(|r| r.ok).sum::<u64>() as f64 / secs;
        println!("K={k}: backend receives {sent:.1} rps, accepts {ok:.1} rps ({:.2}x)", sent / ok);
    }
    println!("## SimPy reference model (built-in simpy-reference, 88 s, seed 1)");
    for (label, faults) in [("steady", false), ("overload", true)] {
        let Some(Ok(mut sc)) = faultline_sim::builtin::load("simpy-reference", false) else { return };
        sc.duration = faultline_sim::scenario::Dur(88.0);
        if !faults {
            sc.faults.clear();
        }
        let out = run_scenario(&sc, Some(1), None, false);
        let src = &out.totals.sources[0].1;
        let att: u64 = out.series.edge_rows.iter().map(|r| r.attempts).sum();
        let s = &out.series;
        println!(
            "{label}: {} requests, {} good, {} failed, {att} attempts, amplification {:.3}; \
             goodput by phase [0,20) {:.0} [20,25) {:.0} [25,35) {:.0} [35,88) {:.0} rps",
            src.requests,
            src.goodput,
            src.failed,
            att as f64 / src.requests as f64,
            s.goodput_rate("clients", 0.0, 20.0),
            s.goodput_rate("clients", 20.0, 25.0),
            s.goodput_rate("clients", 25.0, 35.0),
            s.goodput_rate("clients", 35.0, 88.0),
        );
    }
}
