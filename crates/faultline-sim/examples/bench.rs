//! Benchmark of the `simpy-reference` scenario (the SimPy speed peer's model):
//! steady state (faults removed) and overload (the capacity dip that leaves a
//! large backlog). Prints events/s and simulated requests/s on wall time and
//! on this thread's CPU time (from /proc/thread-self/schedstat, which is
//! robust when the machine is shared).
//!
//! `cargo run --release -p faultline-sim --example bench -- [sim_seconds] [reps]`

use std::time::Instant;

use faultline_sim::World;
use faultline_sim::builtin;
use faultline_sim::scenario::Dur;

fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sim_s: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(88.0);
    let reps: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    for (label, keep_faults) in [("steady", false), ("overload", true)] {
        let mut sc = builtin::load("simpy-reference", false).expect("built-in").expect("valid");
        sc.duration = Dur(sim_s);
        if !keep_faults {
            sc.faults.clear();
        }
        let mut best_wall = f64::MAX;
        let mut best_cpu = f64::MAX;
        let mut events = 0;
        let mut requests = 0;
        let mut peak = 0;
        for _ in 0..reps {
            let c0 = cpu_ns();
            let t0 = Instant::now();
            let mut w = World::new(&sc, Some(1));
            w.run();
            let wall = t0.elapsed().as_secs_f64();
            let cpu = match (c0, cpu_ns()) {
                (Some(a), Some(b)) => (b - a) as f64 / 1e9,
                _ => wall,
            };
            let t = w.totals();
            events = t.events;
            requests = t.sources[0].1.requests;
            peak = t.peak_in_flight;
            best_wall = best_wall.min(wall);
            best_cpu = best_cpu.min(cpu);
        }
        println!(
            "{label:8} sim {sim_s:.0}s: {events} events, {requests} requests, peak in flight {peak}; \
             best wall {best_wall:.3}s = {:.2} M events/s, {:.3} M requests/s; \
             best CPU {best_cpu:.3}s = {:.2} M events/CPU-s, {:.3} M requests/CPU-s",
            events as f64 / best_wall / 1e6,
            requests as f64 / best_wall / 1e6,
            events as f64 / best_cpu / 1e6,
            requests as f64 / best_cpu / 1e6,
        );
    }
}
