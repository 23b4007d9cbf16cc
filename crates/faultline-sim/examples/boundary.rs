//! Sweeps the OSDI'22-like capacity-cut trigger (size x duration) and prints
//! late goodput, to locate where this model's metastability boundary lies.
//! `cargo run --release -p faultline-sim --example boundary`

use faultline_sim::{Scenario, run_scenario};

fn main() {
    let cuts = [0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
    let durs = [2.0, 4.0, 6.0, 8.0, 10.0, 15.0];
    print!("cut\\secs");
    for d in durs {
        print!(" {d:>6}");
    }
    println!();
    for cut in cuts {
        print!("{:>7.0}%", cut * 100.0);
        for secs in durs {
            let yaml = format!(
                "name: osdi\nduration: 240s\nwindow: 5s\n\
                 ground_truth: {{class: retry_storm, failure_model: exhaustion, origin: client -> store}}\n\
                 services:\n  - {{name: store, concurrency: 10, service_time: {{exp: 100ms}}}}\n\
                 load:\n  - {{name: client, kind: open, rate: 62, clients: 50, call: {{to: store, timeout: 3s, retry: {{attempts: 5}}}}}}\n\
                 faults:\n  - {{at: 60s, for: {secs}s, fault: capacity_cut, service: store, factor: {cut}}}\n"
            );
            let sc = Scenario::from_yaml(&yaml).expect("valid sweep scenario");
            let mut late = 0.0;
            for seed in 1..=3 {
                late += run_scenario(&sc, Some(seed), None, false).series.goodput_rate("client", 180.0, 240.0);
            }
            print!(" {:>6.1}", late / 3.0);
        }
        println!();
    }
}
