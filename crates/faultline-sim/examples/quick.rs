//! Scratch example: runs a scenario file and prints flow rows (development aid).
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let text = std::fs::read_to_string(&args[1]).unwrap();
    let sc = faultline_sim::Scenario::from_yaml(&text).unwrap_or_else(|e| panic!("{e}"));
    let sc = if args.len() > 2 { sc.defended_variant().unwrap() } else { sc };
    let t = std::time::Instant::now();
    let out = faultline_sim::run_scenario(&sc, None, None, false);
    eprintln!("events {} wall {:?}", out.totals.events, t.elapsed());
    let s = &out.series;
    for r in &s.flow_rows {
        if r.window % 5 == 0 {
            let svc: Vec<String> = s.service_rows.iter().filter(|x| x.window == r.window).map(|x| format!("{}:q{}b{}", s.services[x.service as usize], x.queue_depth, x.busy)).collect();
            let att: u64 = s.edge_rows.iter().filter(|x| x.window == r.window && !s.sources.contains(&s.edges[x.edge as usize].caller)).map(|x| x.attempts).sum();
            println!("t={:>4} {} req={} good={} fail={} wrong={} p99={:.0} att={} {:?}", r.window, s.sources[r.source as usize], r.requests, r.goodput, r.failed, r.wrong, r.p99_ms, att, svc);
        }
    }
    println!("{:?}", out.totals.caches);
}
