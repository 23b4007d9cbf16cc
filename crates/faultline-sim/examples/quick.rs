//! Scratch example: runs a scenario (built-in name or file) and prints every
//! fifth window (development aid).
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let defended = args.len() > 2;
    let sc = match faultline_sim::builtin::load(&args[1], defended) {
        Some(r) => r.unwrap_or_else(|e| panic!("{e}")),
        None => {
            let text = std::fs::read_to_string(&args[1]).unwrap();
            let sc = faultline_sim::Scenario::from_yaml(&text).unwrap_or_else(|e| panic!("{e}"));
            if defended { sc.defended_variant().unwrap() } else { sc }
        }
    };
    let step: u32 = std::env::var("STEP").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let t = std::time::Instant::now();
    let out = faultline_sim::run_scenario(&sc, None, None, false);
    eprintln!("events {} wall {:?}", out.totals.events, t.elapsed());
    let s = &out.series;
    for r in &s.flow_rows {
        if r.window % step == 0 {
            let svc: Vec<String> = s.service_rows.iter().filter(|x| x.window == r.window).map(|x| format!("{}:q{}b{}c{}", s.services[x.service as usize], x.queue_depth, x.busy, x.capacity)).collect();
            let att: u64 = s.edge_rows.iter().filter(|x| x.window == r.window && !s.sources.contains(&s.edges[x.edge as usize].caller)).map(|x| x.attempts).sum();
            println!("t={:>4} {} req={} good={} fail={} wrong={} p99={:.0} att={} {:?}", r.window, s.sources[r.source as usize], r.requests, r.goodput, r.failed, r.wrong, r.p99_ms, att, svc);
        }
    }
    let m: Vec<String> = s.metric_rows.iter().filter(|r| r.window % (step * 2) == 0).map(|r| format!("{}:{}:{}={:.2}", r.window, r.name, r.subject, r.value)).collect();
    println!("{}", m.join(" "));
    println!("{:?}", out.totals.caches);
}
