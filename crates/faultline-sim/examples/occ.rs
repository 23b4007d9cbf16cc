//! Scratch example: prints the backoff/jitter comparison (development aid).
use faultline_sim::anchors::*;
fn main() {
    for n in [10, 50, 100] {
        for s in Strategy::ALL {
            let (c, t) = occ_mean(n, s, 100, 1);
            println!("N={n} {:>14}: calls {c:>8.0} time {t:>9.0} ms", s.name());
        }
    }
}
