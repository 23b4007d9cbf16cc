//! The published behaviours of simulator-anchors.md, asserted by shape with
//! tolerances derived from the model (sampling error of the run length).

use faultline_sim::anchors::{Strategy, occ_mean};
use faultline_sim::{RunOutput, Scenario, run_scenario};

fn run(yaml: &str) -> RunOutput {
    let sc = Scenario::from_yaml(yaml).unwrap_or_else(|e| panic!("scenario: {e}"));
    run_scenario(&sc, None, None, false)
}

/// Bronson et al. (HotOS'21) §2.1 with `rate` QPS, one retry after 1 s, and
/// an optional 10 s outage at t = 20 s; `budget` caps retries per client.
fn bronson(rate: f64, outage: bool, budget: Option<f64>, duration: u32) -> String {
    let fault = if outage { "faults:\n  - {at: 20s, for: 10s, fault: capacity_cut, service: db, factor: 1.0}\n" } else { "" };
    let budget = budget.map(|b| format!(", budget: {{ratio: {b}, cap: 2}}")).unwrap_or_default();
    format!(
        "name: bronson
duration: {duration}s
ground_truth: {{class: retry_storm, failure_model: exhaustion, origin: api -> db}}
services:
  - name: api
    calls:
      - {{to: db, timeout: 1s, retry: {{attempts: 2{budget}}}}}
  - name: db
    service_time: {{uniform: [90ms, 110ms]}}
    overload: {{above_rate: 300, factor: 12, window: 10s}}
load:
  - {{name: users, kind: open, rate: {rate}, clients: 100, call: {{to: api}}}}
{fault}"
    )
}

#[test]
fn bronson_stable_at_280_qps_without_a_trigger() {
    // Ten minutes: a spontaneous storm (the vulnerable region) would show here.
    let out = run(&bronson(280.0, false, None, 600));
    let s = &out.series;
    let good = s.goodput_rate("users", 10.0, 600.0);
    let offered = s.request_rate("users", 10.0, 600.0);
    // Poisson(280/s) over 590 s: sampling error ~0.1%; goodput tracks offered load.
    assert!((good - offered).abs() / offered < 0.02, "goodput {good} vs offered {offered}");
    assert_eq!(out.totals.sources[0].1.failed, 0, "no request fails in the stable state");
}

#[test]
fn bronson_outage_at_280_qps_goes_metastable() {
    let out = run(&bronson(280.0, true, None, 120));
    let s = &out.series;
    assert!(s.goodput_rate("users", 0.0, 20.0) > 250.0);
    // The trigger ends at 30 s; from 40 s on, goodput stays ≈ 0 ...
    let after = s.goodput_rate("users", 40.0, 120.0);
    assert!(after < 0.02 * 280.0, "goodput after the trigger {after}/s should be ≈ 0");
    // ... and the database sees the original load plus one retry each: 560 QPS.
    let db = s.attempt_rate("api", "db", 40.0, 120.0);
    assert!((db - 560.0).abs() < 0.05 * 560.0, "db sees {db} QPS, expected ≈ 560");
}

#[test]
fn bronson_recovers_below_150_qps_and_with_capped_retries() {
    // 140 QPS: even with every query retried the database sees 280 < 300 QPS.
    let out = run(&bronson(140.0, true, None, 90));
    let good = out.series.goodput_rate("users", 50.0, 90.0);
    assert!(good > 0.97 * out.series.request_rate("users", 50.0, 90.0), "140 QPS recovers: {good}");
    // 160 QPS: 2 x 160 = 320 > 300 QPS keeps it down (the 150 QPS boundary).
    let out = run(&bronson(160.0, true, None, 90));
    assert!(out.series.goodput_rate("users", 50.0, 90.0) < 5.0);
    // 280 QPS with retries capped by a 5% budget (≤ 14 retries/s < 20 QPS): recovers.
    let out = run(&bronson(280.0, true, Some(0.05), 90));
    let s = &out.series;
    assert!(s.goodput_rate("users", 60.0, 90.0) > 0.97 * s.request_rate("users", 60.0, 90.0));
    let retries: u64 = s.edge("api", "db").iter().filter(|r| r.window >= 40).map(|r| r.retries).sum();
    assert!((retries as f64) / 50.0 < 20.0, "retries/s after recovery {}", retries as f64 / 50.0);
}

/// Huang et al. (OSDI'22)-like storm: a FIFO server (capacity 100 rps) at 62%
/// load, a 3 s timeout and up to 4 retries, and a capacity cut at t = 60 s.
fn osdi(cut: f64, secs: f64) -> String {
    format!(
        "name: osdi
duration: 240s
window: 5s
ground_truth: {{class: retry_storm, failure_model: exhaustion, origin: client -> store}}
services:
  - name: store
    concurrency: 10
    service_time: {{exp: 100ms}}
load:
  - name: client
    kind: open
    rate: 62
    clients: 50
    call: {{to: store, timeout: 3s, retry: {{attempts: 5}}}}
faults:
  - {{at: 60s, for: {secs}s, fault: capacity_cut, service: store, factor: {cut}}}
"
    )
}

fn osdi_late_goodput(cut: f64, secs: f64) -> f64 {
    run(&osdi(cut, secs)).series.goodput_rate("client", 180.0, 240.0)
}

#[test]
fn osdi_capacity_cut_boundary() {
    // 80% cut for 10 s: never recovers (goodput collapses, attempts ≈ the retry cap).
    let out = run(&osdi(0.8, 10.0));
    let s = &out.series;
    assert!(s.goodput_rate("client", 0.0, 60.0) > 55.0);
    let late = s.goodput_rate("client", 180.0, 240.0);
    assert!(late < 0.2 * 62.0, "80%/10 s should stay down, goodput {late}");
    let amp = s.attempt_rate("client", "store", 180.0, 240.0) / 62.0;
    assert!(amp > 2.0, "attempt amplification {amp}");
    // A shorter or smaller trigger recovers. (80 % for 4 s sits on this
    // model's boundary: some seeds recover, some do not; docs/simulator.md
    // has the table.)
    for (cut, secs) in [(0.8, 2.0), (0.5, 10.0)] {
        let late = osdi_late_goodput(cut, secs);
        assert!(late > 0.95 * 62.0 * 0.95, "{cut}/{secs}s should recover, goodput {late}");
    }
}

#[test]
fn backoff_and_jitter_ordering_with_100_clients() {
    // 30 trials each: the means below have a relative error of a few percent.
    let r = |s| occ_mean(100, s, 30, 1);
    let (none_c, none_t) = r(Strategy::NoBackoff);
    let (exp_c, exp_t) = r(Strategy::Exponential);
    let (full_c, full_t) = r(Strategy::FullJitter);
    let (eq_c, eq_t) = r(Strategy::EqualJitter);
    let (dec_c, dec_t) = r(Strategy::Decorrelated);
    // Calls: full ≈ equal < decorrelated < exponential < no backoff.
    assert!((full_c - eq_c).abs() / full_c < 0.08, "full {full_c} vs equal {eq_c}");
    assert!(full_c.max(eq_c) < dec_c && dec_c < exp_c && exp_c < none_c, "{full_c} {eq_c} {dec_c} {exp_c} {none_c}");
    // Jitter more than halves the work of plain exponential backoff ...
    assert!(full_c < 0.5 * exp_c);
    // ... and finishes far sooner (published: 4.9 s vs 63 s).
    assert!(full_t * 5.0 < exp_t && dec_t * 5.0 < exp_t && eq_t * 5.0 < exp_t, "{full_t} {dec_t} {eq_t} {exp_t}");
    assert!(none_t < full_t, "no backoff finishes first, at the highest cost");
    // Published re-run at N=100: 797 / 812 / 1002 / 1853 / 2421 calls. Within 10%.
    for (got, want) in [(full_c, 797.0), (eq_c, 812.0), (dec_c, 1002.0), (exp_c, 1853.0), (none_c, 2421.0)] {
        assert!((got - want).abs() / want < 0.10, "calls {got} vs published {want}");
    }
}

/// Brooker 2022: 100 clients x 10 rps against a server failing half the calls.
fn brooker(policy: &str) -> (f64, f64) {
    let yaml = format!(
        "name: brooker
duration: 10s
ground_truth: {{class: retry_storm, failure_model: unknown, origin: clients -> server}}
services:
  - {{name: server, error_rate: 0.5, service_time: {{exp: 20ms}}}}
load:
  - {{name: clients, kind: open, rate: 1000, clients: 100, call: {{to: server, {policy}}}}}
"
    );
    let out = run(&yaml);
    let src = &out.totals.sources[0].1;
    let attempts: u64 = out.series.edge_rows.iter().map(|r| r.attempts).sum();
    (attempts as f64 / src.requests as f64, src.goodput as f64 / src.requests as f64)
}

#[test]
fn retries_vs_token_bucket_vs_breaker_at_half_failure() {
    // ~10k calls: standard error of the load factor ≈ 0.01.
    let (load, succ) = brooker("retry: {attempts: 4}");
    assert!((load - 1.875).abs() < 0.04, "three retries load {load} (theory 1.875)");
    assert!((succ - 0.9375).abs() < 0.015, "three retries success {succ} (theory 0.9375)");
    let (load, succ) = brooker("retry: {attempts: 4, budget: {ratio: 0.1, cap: 5}}");
    // Bucket: 5 initial tokens + 0.1 per call over 100 calls per client ≈ 1.14.
    assert!((load - 1.14).abs() < 0.03, "token bucket load {load} (published 1.143)");
    assert!(succ > 0.53 && succ < 0.61, "token bucket success {succ} (published 0.570)");
    let (load, succ) = brooker("retry: {attempts: 4}, breaker: {failure_ratio: 0.1, window: 1000s, min_calls: 1, scope: retries}");
    assert!((load - 1.0).abs() < 0.02, "breaker load {load} (published 1.000)");
    assert!((succ - 0.5).abs() < 0.03, "breaker success {succ}");
}

/// Reads at `rate` through a cache (TTL `ttl`) in front of an origin whose
/// recompute takes exactly `delta`.
fn stampede(rate: f64, delta: f64, ttl: f64, duration: f64, cache: &str) -> (f64, u64) {
    let yaml = format!(
        "name: stampede
duration: {duration}s
window: 10s
ground_truth: {{class: cache_stampede, failure_model: exhaustion, origin: app -> origin}}
services:
  - name: app
    calls:
      - {{to: origin, cache: {{keys: 1, ttl: {ttl}s, warm: true, {cache}}}}}
  - {{name: origin, service_time: {{const: {delta}s}}}}
load:
  - {{name: readers, kind: open, rate: {rate}, call: {{to: app}}}}
"
    );
    let out = run(&yaml);
    let c = &out.totals.caches[0];
    (c.recomputes as f64 / c.cycles as f64, c.cycles)
}

#[test]
fn unprotected_stampede_recomputes_one_plus_rate_times_delta() {
    // Poisson(30) extra recomputes per expiry; ~130 expiries: SE ≈ 0.5.
    let (per, cycles) = stampede(10.0, 3.0, 20.0, 3000.0, "lock: false");
    assert!(cycles > 100, "{cycles}");
    assert!((per - 31.0).abs() < 2.0, "recomputes per expiry {per}, expected 1 + 10 x 3 = 31");
}

#[test]
fn xfetch_beta_one_gives_about_e_recomputes_at_any_rate() {
    // r=10/s, δ=3 s (rβδ = 30): ~500 expiries, SE ≈ 0.1.
    let (per, cycles) = stampede(10.0, 3.0, 20.0, 6000.0, "xfetch_beta: 1.0");
    assert!(cycles > 300, "{cycles}");
    assert!((per - std::f64::consts::E).abs() < 0.35, "r=10: {per} recomputes per expiry, expected ≈ e");
    // r=1000/s, δ=0.1 s (rβδ = 100): ~150 expiries.
    let (per, cycles) = stampede(1000.0, 0.1, 5.0, 600.0, "xfetch_beta: 1.0");
    assert!(cycles > 100, "{cycles}");
    assert!((per - std::f64::consts::E).abs() < 0.45, "r=1000: {per} recomputes per expiry, expected ≈ e");
}

#[test]
fn per_key_lock_gives_exactly_one_recompute_per_expiry() {
    let (per, cycles) = stampede(10.0, 3.0, 20.0, 2000.0, "lock: true");
    assert!(cycles > 50);
    assert_eq!(per, 1.0);
}

/// SRE book ch. 21 adaptive throttling: a backend that can accept at most
/// 100 rps (10 slots x 100 ms, no queue: the rest is rejected fast), offered
/// 1,000 rps. Clients reject locally with max(0, (requests − K·accepts)/(requests+1)),
/// so in equilibrium the backend receives ≈ K × what it accepts
/// (measured, seed 1: 182.9 sent / 91.4 accepted at K = 2; 76.0 / 68.2 at K = 1.1).
fn throttled_backend_rate(k: f64) -> (f64, f64) {
    let yaml = format!(
        "name: throttle
duration: 600s
window: 10s
ground_truth: {{class: retry_storm, failure_model: exhaustion, origin: clients -> backend}}
services:
  - {{name: backend, concurrency: 10, queue: {{capacity: 0}}, service_time: {{const: 100ms}}}}
load:
  - {{name: clients, kind: open, rate: 1000, clients: 100, call: {{to: backend, throttle: {{k: {k}, window: 120s}}}}}}
"
    );
    let out = run(&yaml);
    let rows: Vec<_> = out.series.edge("clients", "backend").into_iter().filter(|r| r.window >= 30).collect();
    let secs = rows.len() as f64 * 10.0;
    let sent: u64 = rows.iter().map(|r| r.attempts).sum();
    let ok: u64 = rows.iter().map(|r| r.ok).sum();
    (sent as f64 / secs, ok as f64 / secs)
}

#[test]
fn adaptive_throttling_sends_about_k_times_the_accepts() {
    for k in [2.0, 1.1] {
        let (sent, accepted) = throttled_backend_rate(k);
        // The backend works (it is a loss system, so it carries less than its
        // 100 rps when offered little more than that: 91 rps at K = 2, 68 at K = 1.1).
        assert!(accepted > 50.0 && accepted <= 101.0, "backend accepts {accepted}");
        let ratio = sent / accepted;
        assert!((ratio - k).abs() < 0.1 * k, "K = {k}: backend receives {ratio:.2}x its accepts");
    }
}
