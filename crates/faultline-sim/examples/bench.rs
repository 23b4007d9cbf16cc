//! Benchmark of the `simpy-reference` scenario (the SimPy speed peer's model):
//! steady state (faults removed) and overload (the capacity dip that leaves a
//! large backlog). Prints events/s and simulated requests/s on wall time and
//! on this thread's CPU time (from /proc/thread-self/schedstat, which is
//! robust when the machine is shared).
//!
//! `cargo run --release -p faultline-sim --example bench -- [sim_seconds] [reps] [steady|overload]`
//!
//! Events are the engine's popped events (`RunTotals::events`): every event
//! the queue delivers to the world, including timeouts whose attempt had
//! already been answered (they are popped and discarded by an epoch check).
//!
//! Timing: schedstat's CPU time advances in scheduler ticks (4 ms here), so a
//! single 88-simulated-second run (≈ 15 ms) cannot be timed on it. Each of the
//! `reps` samples therefore runs the same seeded world back to back until the
//! runs add up to at least 10 M events (≈ 0.3 s of CPU) and reports time per
//! run; the best sample is printed. Every run does identical work (same seed).
//!
//! What it is not: a profile. For instruction counts run it under
//! `valgrind --tool=callgrind` with `reps` = 1 (see docs/benchmarks.md).

use std::time::Instant;

use faultline_sim::World;
use faultline_sim::builtin;
use faultline_sim::scenario::{Dur, Scenario};

fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// One run; returns (events, requests, peak in flight).
fn run_once(sc: &Scenario) -> (u64, u64, u64) {
    let mut w = World::new(sc, Some(1));
    w.run();
    let t = w.totals();
    (t.events, t.sources[0].1.requests, t.peak_in_flight)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sim_s: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(88.0);
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let only = args.get(3).map(String::as_str);
    for (label, keep_faults) in [("steady", false), ("overload", true)] {
        if only.is_some_and(|o| o != label) {
            continue;
        }
        let mut sc = builtin::load("simpy-reference", false).expect("built-in").expect("valid");
        sc.duration = Dur(sim_s);
        if !keep_faults {
            sc.faults.clear();
        }
        // A sample is as many runs as make ≥ 10 M events (≈ 0.3 s of CPU).
        let (events, requests, peak) = run_once(&sc);
        let runs = (10_000_000 / events.max(1) + 1) as usize;
        let mut best_wall = f64::MAX;
        let mut best_cpu = f64::MAX;
        for _ in 0..reps {
            let c0 = cpu_ns();
            let t0 = Instant::now();
            for _ in 0..runs {
                let got = run_once(&sc);
                assert_eq!(got.0, events, "same seed, same work");
            }
            let wall = t0.elapsed().as_secs_f64() / runs as f64;
            let cpu = match (c0, cpu_ns()) {
                (Some(a), Some(b)) => (b - a) as f64 / 1e9 / runs as f64,
                _ => wall,
            };
            best_wall = best_wall.min(wall);
            best_cpu = best_cpu.min(cpu);
        }
        println!(
            "{label:8} sim {sim_s:.0}s: {events} events, {requests} requests, peak in flight {peak}; \
             {reps} samples of {runs} runs; per run best wall {:.2}ms = {:.2} M events/s, {:.3} M requests/s; \
             best CPU {:.2}ms = {:.2} M events/CPU-s, {:.3} M requests/CPU-s",
            best_wall * 1e3,
            events as f64 / best_wall / 1e6,
            requests as f64 / best_wall / 1e6,
            best_cpu * 1e3,
            events as f64 / best_cpu / 1e6,
            requests as f64 / best_cpu / 1e6,
        );
    }
}
