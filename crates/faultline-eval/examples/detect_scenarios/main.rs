//! Prints the detection table of docs/benchmarks.md ("Detectors on the
//! simulator's built-in scenarios"): `cargo run --release -p faultline-eval
//! --example detect_scenarios [-- --fault-free SECONDS] [--seed N] [--verbose] [NAME…]`.
//! Default fault-free run: one hour of virtual time per scenario world.
//! Not a test: `tests/it/detect_scenarios.rs` asserts the targets.

#[allow(dead_code)] // shared with tests/it/detect_scenarios.rs, which uses the rest
mod harness;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let fault_free = args.iter().position(|a| a == "--fault-free").and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(3600.0);
    let seed = args.iter().position(|a| a == "--seed").and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(1);
    let verbose = args.iter().any(|a| a == "--verbose");
    let names: Vec<&str> = args
        .iter()
        .enumerate()
        .filter(|(i, a)| !a.starts_with("--") && (*i == 0 || !matches!(args[i - 1].as_str(), "--fault-free" | "--seed")))
        .map(|(_, a)| a.as_str())
        .collect();
    let names: Vec<&str> = if names.is_empty() { harness::EXPECTED.iter().map(|(n, ..)| *n).collect() } else { names };
    let started = std::time::Instant::now();
    let rows: Result<Vec<harness::Row>, String> = names.iter().map(|n| harness::run_seeded(n, fault_free, seed)).collect();
    match rows {
        Ok(rows) => {
            print!("{}", harness::render(&rows));
            if verbose {
                for r in &rows {
                    println!("\n{} (onset {:.0} s, fault {:.0} s):", r.scenario, r.onset_s, r.fault_start_s);
                    for f in &r.findings {
                        println!("  +{:.0}s {} started {} [{}]", f.emitted_s, f.label(), f.finding.started_at, f.finding.evidence.measure);
                    }
                    for f in &r.fault_free {
                        let e = &f.finding.evidence;
                        println!(
                            "  FAULT-FREE +{:.0}s {} [{} {} vs baseline {:?}, threshold {:?}]",
                            f.emitted_s,
                            f.label(),
                            e.measure,
                            e.observed,
                            e.baseline,
                            e.threshold
                        );
                    }
                }
            }
            eprintln!("({:.1} s wall)", started.elapsed().as_secs_f64());
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
