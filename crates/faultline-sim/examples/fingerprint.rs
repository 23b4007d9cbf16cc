//! Prints, for every built-in scenario both ways and three seeds, the event
//! count and a digest of the run's series and totals, so an engine change that
//! must not change results (a faster queue, a refactor) can be checked by
//! diffing the output before and after.
//!
//! `cargo run --release -p faultline-sim --example fingerprint`
//!
//! What it is not: a test of correctness; a change that is meant to alter the
//! random streams changes every digest.

use std::hash::{Hash, Hasher};

use faultline_sim::{builtin, run_scenario};

fn main() {
    for name in builtin::names() {
        for defended in [false, true] {
            let Some(Ok(sc)) = builtin::load(name, defended) else {
                println!("{name}: does not load");
                continue;
            };
            for seed in [1, 2, 3] {
                let out = run_scenario(&sc, Some(seed), None, defended);
                let text = serde_json::to_string(&(&out.series, &out.totals.services, &out.totals.sources, &out.totals.caches)).unwrap_or_default();
                let mut h = std::collections::hash_map::DefaultHasher::new();
                text.hash(&mut h);
                println!("{name:18} defended={defended:5} seed={seed} events={:>9} digest={:016x}", out.totals.events, h.finish());
            }
        }
    }
}
