//! Amplifier and symptom detectors on interaction windows (`Signal::Edge`)
//! and a few well-known metrics: error-rate and latency change against a
//! robust baseline, retry amplification, timeout saturation, load skew
//! across shards, failures across many callers at once (DNS / discovery),
//! cache hit-ratio collapse with an origin spike, and leader conflict.
//!
//! Every detector uses `Hysteresis` (separate fire/clear levels, minimum
//! durations). Baselines are medians of recent healthy windows, frozen while
//! firing, so slow daily swings move the baseline and steps do not. Not here:
//! deciding the incident class (the correlator does, from these findings).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use super::hysteresis::{CLEAR_WINDOWS, Hysteresis, HysteresisConfig, RobustBaseline, Transition};
use super::{Detector, finding, literal_service, resource_subject};
use crate::bounded::LruMap;
use crate::finding::{FailureModel, Finding, Subject};
use crate::model::Interaction;
use crate::signal::{EdgeWindow, Signal};
use crate::time::{Duration, Timestamp};

/// Tunables for the edge detectors (defaults documented per field).
#[derive(Clone, Copy, Debug)]
pub struct EdgeConfig {
    /// Windows with fewer requests are ignored (20).
    pub min_requests: u64,
    /// Baseline history in windows (60) and warm-up (10).
    pub baseline_windows: usize,
    pub warmup_windows: usize,
    /// Error ratio must exceed baseline by max(this, 4 MAD) (0.05).
    pub error_abs_delta: f64,
    /// p99 must exceed baseline × this (1.5) and baseline + 4 MAD.
    pub latency_factor: f64,
    /// A p99 from fewer requests is too noisy to judge (100).
    pub latency_min_requests: u64,
    /// Retry budget: retries / attempts (0.1, the common retry-budget default).
    pub retry_budget: f64,
    /// Timeouts / attempts that count as saturation (0.05).
    pub timeout_ratio: f64,
    pub hysteresis: HysteresisConfig,
    pub latency_hysteresis: HysteresisConfig,
    /// Low traffic: windows with fewer than `latency_min_requests` requests
    /// are pooled with the next ones into one longer effective window, of at
    /// most this many windows (6: a minute of 10 s windows).
    pub max_pool_windows: u32,
    /// A pooled p99 is judged from this many requests (30): at a few
    /// requests per second a minute's p99 is nearly its maximum, so it is
    /// compared with a baseline of the same statistic, never with busy
    /// windows' p99.
    pub latency_min_pooled: u64,
    /// An error-rate change must also be unlikely as chance: the exact
    /// binomial probability of at least this many errors at the baseline
    /// rate must be below this (1e-4), so a few errors among a few dozen
    /// requests are not an incident.
    pub error_alpha: f64,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            min_requests: 20,
            baseline_windows: 60,
            warmup_windows: 15,
            latency_min_requests: 100,
            error_abs_delta: 0.05,
            latency_factor: 1.5,
            retry_budget: 0.1,
            timeout_ratio: 0.05,
            // value 1.0 = at threshold; clear below half for 3 windows.
            hysteresis: HysteresisConfig::counted(1.0, 0.5, 1, CLEAR_WINDOWS),
            // p99 of a window is noisy (from 100 requests it is nearly the
            // maximum): it must hold for 3 windows. With 2, an hour of the
            // simulator's fault-free worlds produced two findings.
            latency_hysteresis: HysteresisConfig::counted(1.0, 0.5, 3, CLEAR_WINDOWS),
            max_pool_windows: 6,
            latency_min_pooled: 30,
            error_alpha: 1e-4,
        }
    }
}

/// Windows of a quiet interaction added up until there is enough to judge.
#[derive(Clone, Debug, Default)]
struct Pool {
    start: Option<Timestamp>,
    end: Option<Timestamp>,
    windows: u32,
    requests: u64,
    errors: u64,
    timeouts: u64,
    retries: u64,
    /// The largest window p99 (at a few requests a window, each window's
    /// p99 is near its maximum, so this is near the pooled p99).
    p99_ms: f64,
    p50_weighted: f64,
}

impl Pool {
    fn add(&mut self, w: &EdgeWindow) {
        self.start = Some(self.start.map_or(w.start, |s| s.min(w.start)));
        self.end = Some(self.end.map_or(w.start + w.length, |e| e.max(w.start + w.length)));
        self.windows += 1;
        self.requests += w.requests;
        self.errors += w.errors;
        self.timeouts += w.timeouts;
        self.retries += w.retries;
        if w.requests > 0 {
            self.p99_ms = self.p99_ms.max(w.p99_ms);
            self.p50_weighted += w.p50_ms * w.requests as f64;
        }
    }

    /// The pool as one window (exemplars of the last window kept).
    fn window(&self, last: &EdgeWindow) -> EdgeWindow {
        let start = self.start.unwrap_or(last.start);
        let end = self.end.unwrap_or(last.start + last.length);
        EdgeWindow {
            interaction: last.interaction.clone(),
            start,
            length: end - start,
            requests: self.requests,
            errors: self.errors,
            timeouts: self.timeouts,
            retries: self.retries,
            p50_ms: if self.requests > 0 { self.p50_weighted / self.requests as f64 } else { 0.0 },
            p99_ms: self.p99_ms,
            in_flight: last.in_flight,
            zones: Vec::new(),
            exemplar_trace_ids: last.exemplar_trace_ids.clone(),
        }
    }
}

/// P(X ≥ k) for X ~ Binomial(n, p), exactly (summed in log space from k up
/// while the terms matter). Only called with k above the mean, where the
/// terms fall, and n bounded by `EXACT_TEST_MAX_N`.
pub(crate) fn binomial_upper_tail(n: u64, k: u64, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    // k ≥ 1 here: more errors than requests, or any at a zero rate, cannot happen.
    if k > n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    // ln C(n, k) = Σ_{i=1..k} ln((n − k + i) / i)
    let ln_choose: f64 = (1..=k).map(|i| ((n - k + i) as f64 / i as f64).ln()).sum();
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let mut ln_term = ln_choose + k as f64 * lp + (n - k) as f64 * lq;
    let mut total = 0.0;
    let mut j = k;
    loop {
        let term = ln_term.exp();
        total += term;
        if j == n || term < total * 1e-12 {
            break;
        }
        // term(j+1) / term(j) = (n − j) / (j + 1) · p / q
        ln_term += ((n - j) as f64 / (j + 1) as f64).ln() + lp - lq;
        j += 1;
    }
    total.min(1.0)
}

/// Above this many requests the error band (4 MAD, at least
/// `error_abs_delta`) already excludes chance; the exact test is skipped.
const EXACT_TEST_MAX_N: u64 = 10_000;

#[derive(Clone, Debug)]
struct EdgeState {
    err_base: RobustBaseline,
    p99_base: RobustBaseline,
    rate_base: RobustBaseline,
    err_h: Hysteresis,
    lat_h: Hysteresis,
    retry_h: Hysteresis,
    timeout_h: Hysteresis,
    /// Low-traffic windows waiting to be judged together: for the counts,
    /// and (separately, it needs more requests) for the p99.
    pool: Pool,
    lat_pool: Pool,
    /// Baseline of pooled p99s (a pool's p99 is nearly its maximum, so it
    /// is never compared with busy windows' p99).
    p99_pool_base: RobustBaseline,
    /// When this interaction was last observed (`EdgeDetectors::seq`), for eviction.
    last_seen: u64,
}

impl EdgeState {
    fn new(c: &EdgeConfig) -> EdgeState {
        EdgeState {
            err_base: RobustBaseline::new(c.baseline_windows, c.warmup_windows),
            p99_base: RobustBaseline::new(c.baseline_windows, c.warmup_windows),
            rate_base: RobustBaseline::new(c.baseline_windows, c.warmup_windows),
            err_h: Hysteresis::default(),
            lat_h: Hysteresis::default(),
            retry_h: Hysteresis::default(),
            timeout_h: Hysteresis::default(),
            pool: Pool::default(),
            lat_pool: Pool::default(),
            p99_pool_base: RobustBaseline::new(c.baseline_windows, c.warmup_windows),
            last_seen: 0,
        }
    }
}

fn pending_or_firing(h: &Hysteresis) -> bool {
    !matches!(h.state, super::hysteresis::HState::Quiet)
}

/// Requests into one service per recent window end (at most
/// `INGRESS_WINDOWS`, in time order) and the baseline of older windows.
#[derive(Clone, Debug)]
struct Ingress {
    recent: VecDeque<(Timestamp, u64)>,
    base: RobustBaseline,
}

const INGRESS_WINDOWS: usize = 4;

impl Ingress {
    fn add(&mut self, end: Timestamp, requests: u64) {
        match self.recent.iter_mut().rev().find(|(t, _)| *t == end) {
            Some(slot) => slot.1 += requests,
            None => {
                let at = self.recent.partition_point(|(t, _)| *t < end);
                self.recent.insert(at, (end, requests));
            }
        }
        while self.recent.len() > INGRESS_WINDOWS {
            if let Some((_, v)) = self.recent.pop_front() {
                self.base.push(v as f64);
            }
        }
    }
}

/// What `EdgeDetectors` keeps across a restart: each interaction's
/// baselines (error ratio, p99, request rate) and each service's ingress
/// baseline, as the values they hold. Firing state is not kept: a condition
/// that still holds fires again from the restored baseline within its
/// hysteresis, and one that stopped is cleared by the pipeline's re-check.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedEdgeDetectors {
    edges: Vec<SavedEdgeBaselines>,
    ingress: Vec<(String, Vec<f64>)>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedEdgeBaselines {
    interaction: Interaction,
    errors: Vec<f64>,
    p99_ms: Vec<f64>,
    requests: Vec<f64>,
    #[serde(default)]
    p99_pooled_ms: Vec<f64>,
}

/// Most interactions (and services) a relearn takes back.
const MAX_RELEARNED: usize = 100_000;

/// Per-interaction detectors: error-rate change, latency change, retry
/// amplification, timeout saturation. State lives in hash maps with a fixed
/// (unkeyed, deterministic) hasher: nothing iterates them, so order does not
/// matter, and lookups per window are the hot path of detection.
#[derive(Clone, Debug, Default)]
pub struct EdgeDetectors {
    pub config: EdgeConfig,
    /// Per interaction: indices of its caller's and callee's `ingress`, and
    /// its detector state — one hash lookup per window.
    edges: HashMap<Interaction, (u32, u32, EdgeState), crate::graph::FxBuild>,
    /// Requests into each service (for "ingress flat"), by index.
    ingress: Vec<Ingress>,
    ingress_ids: HashMap<String, u32, crate::graph::FxBuild>,
    /// Findings whose condition stopped holding, for `take_cleared`.
    cleared: Vec<(String, Subject)>,
    /// Observations so far: the recency stamp of `EdgeState::last_seen`.
    seq: u64,
    /// Interactions evicted under `MAX_TRACKED_KEYS`.
    evicted: u64,
}

impl EdgeDetectors {
    pub fn new(config: EdgeConfig) -> EdgeDetectors {
        EdgeDetectors { config, ..Default::default() }
    }

    /// Makes room under `MAX_TRACKED_KEYS`: evicts the least recently seen
    /// eighth of the interactions at once (one scan pays for many inserts,
    /// and the hot path stays a single hash lookup), then drops the ingress
    /// entries no remaining interaction points at, renumbering the rest.
    fn evict_least_recent(&mut self) {
        let n = self.edges.len();
        let k = (n / 8).max(1);
        let mut stamps: Vec<u64> = self.edges.values().map(|e| e.2.last_seen).collect();
        stamps.select_nth_unstable(k - 1);
        let cutoff = stamps[k - 1];
        // Stamps are distinct (one per observation), so exactly k go.
        self.edges.retain(|_, e| e.2.last_seen > cutoff);
        self.evicted += (n - self.edges.len()) as u64;
        let mut renumber: HashMap<u32, u32, crate::graph::FxBuild> = HashMap::default();
        let mut kept = Vec::new();
        for (caller, callee, _) in self.edges.values_mut() {
            for id in [caller, callee] {
                let next = kept.len() as u32;
                let new = *renumber.entry(*id).or_insert_with(|| {
                    kept.push(*id);
                    next
                });
                *id = new;
            }
        }
        let mut old = std::mem::take(&mut self.ingress);
        self.ingress =
            kept.iter().map(|&i| std::mem::replace(&mut old[i as usize], Ingress { recent: VecDeque::new(), base: RobustBaseline::new(1, 1) })).collect();
        self.ingress_ids.retain(|_, id| match renumber.get(id) {
            Some(&new) => {
                *id = new;
                true
            }
            None => false,
        });
    }

    fn ingress_id(&mut self, service: &str) -> u32 {
        if let Some(&i) = self.ingress_ids.get(service) {
            return i;
        }
        let i = self.ingress.len() as u32;
        self.ingress.push(Ingress { recent: VecDeque::with_capacity(INGRESS_WINDOWS + 1), base: RobustBaseline::new(60, 5) });
        self.ingress_ids.insert(service.to_owned(), i);
        i
    }
}

/// A service's ingress in the last complete window before `end`, and its
/// baseline.
fn last_ingress(ing: &mut Ingress, end: Timestamp) -> Option<(f64, f64)> {
    let &(_, last) = ing.recent.iter().rev().find(|(t, _)| *t < end)?;
    let (base, _) = ing.base.stats()?;
    Some((last as f64, base))
}

impl Detector for EdgeDetectors {
    fn name(&self) -> &'static str {
        "edge_symptoms"
    }
    fn evicted(&self) -> u64 {
        self.evicted
    }
    fn take_cleared(&mut self) -> Vec<(String, Subject)> {
        std::mem::take(&mut self.cleared)
    }
    fn clears(&self, kind: &str) -> bool {
        matches!(kind, "error_rate_change" | "latency_change" | "retry_amplification" | "timeout_saturation")
    }
    fn learned(&self) -> Option<serde_json::Value> {
        let mut edges: Vec<SavedEdgeBaselines> = self
            .edges
            .iter()
            .map(|(i, (_, _, st))| SavedEdgeBaselines {
                interaction: i.clone(),
                errors: st.err_base.values().collect(),
                p99_ms: st.p99_base.values().collect(),
                requests: st.rate_base.values().collect(),
                p99_pooled_ms: st.p99_pool_base.values().collect(),
            })
            .collect();
        // Hash-map order is not stable: sort so the same state saves the same.
        edges.sort_by(|a, b| a.interaction.cmp(&b.interaction));
        let mut ingress: Vec<(String, Vec<f64>)> =
            self.ingress_ids.iter().filter_map(|(s, &i)| Some((s.clone(), self.ingress.get(i as usize)?.base.values().collect()))).collect();
        ingress.sort_by(|a, b| a.0.cmp(&b.0));
        serde_json::to_value(SavedEdgeDetectors { edges, ingress }).ok()
    }
    fn relearn(&mut self, saved: serde_json::Value) -> Result<(), String> {
        let saved: SavedEdgeDetectors = serde_json::from_value(saved).map_err(|e| format!("not edge baselines: {e}"))?;
        if saved.edges.len() > MAX_RELEARNED || saved.ingress.len() > MAX_RELEARNED {
            return Err(format!("more than {MAX_RELEARNED} saved interactions or services"));
        }
        let c = self.config;
        for s in saved.ingress {
            let i = self.ingress_id(&s.0);
            if let Some(ing) = self.ingress.get_mut(i as usize) {
                // `push` keeps only finite values and at most its capacity.
                s.1.into_iter().for_each(|v| ing.base.push(v));
            }
        }
        for e in saved.edges {
            if self.edges.len() >= super::MAX_TRACKED_KEYS {
                break; // The cap holds for relearnt state too.
            }
            let caller = self.ingress_id(e.interaction.caller.as_str());
            let callee = self.ingress_id(e.interaction.callee.as_str());
            let mut st = EdgeState::new(&c);
            e.errors.into_iter().for_each(|v| st.err_base.push(v));
            e.p99_ms.into_iter().for_each(|v| st.p99_base.push(v));
            e.requests.into_iter().for_each(|v| st.rate_base.push(v));
            e.p99_pooled_ms.into_iter().for_each(|v| st.p99_pool_base.push(v));
            self.edges.insert(e.interaction, (caller, callee, st));
        }
        Ok(())
    }
    fn observe(&mut self, signal: &Signal, now: Timestamp) -> Vec<Finding> {
        let Signal::Edge(w) = signal else { return Vec::new() };
        let end = w.start + w.length;
        let c = self.config;
        self.seq += 1;
        let stamp = self.seq;
        // One hash lookup on the common path (the edge is known).
        let (caller, callee, st) = match self.edges.get_mut(&w.interaction) {
            Some(e) => e,
            None => {
                if self.edges.len() >= super::MAX_TRACKED_KEYS {
                    self.evict_least_recent();
                }
                let caller = self.ingress_id(w.interaction.caller.as_str());
                let callee = self.ingress_id(w.interaction.callee.as_str());
                self.edges.entry(w.interaction.clone()).or_insert_with(|| (caller, callee, EdgeState::new(&c)))
            }
        };
        st.last_seen = stamp;
        // Ingress bookkeeping for the callee (bounded to a few windows).
        if let Some(ing) = self.ingress.get_mut(*callee as usize) {
            ing.add(end, w.requests);
        }
        // Low traffic: windows too quiet to judge are pooled with the next
        // ones into a longer effective window (at most `max_pool_windows`),
        // separately for the counts (errors, retries, timeouts: enough at
        // `min_requests`) and for the p99 (enough at `latency_min_requests`;
        // a pool's p99 is judged from `latency_min_pooled` against a
        // baseline of pooled p99s). Busy windows are judged alone, as before.
        let max_pool = c.max_pool_windows.max(1);
        let (counts_pooled, latency_pooled);
        let cw: Option<&EdgeWindow> = if w.requests >= c.min_requests && st.pool.windows == 0 {
            Some(w)
        } else {
            st.pool.add(w);
            if st.pool.requests < c.min_requests && st.pool.windows < max_pool {
                None
            } else {
                counts_pooled = std::mem::take(&mut st.pool).window(w);
                Some(&counts_pooled)
            }
        };
        let lw: Option<(&EdgeWindow, bool)> = if w.requests >= c.latency_min_requests && st.lat_pool.windows == 0 {
            Some((w, false))
        } else {
            st.lat_pool.add(w);
            if st.lat_pool.requests < c.latency_min_requests && st.lat_pool.windows < max_pool {
                None
            } else {
                latency_pooled = std::mem::take(&mut st.lat_pool).window(w);
                Some((&latency_pooled, true))
            }
        };
        let mut out: Vec<Finding> = Vec::new();
        // Latency change (p99), only where p99 means something.
        if let Some((lw, pooled)) = lw
            && (!pooled || lw.requests >= c.latency_min_pooled)
        {
            let subject = || Subject::Interaction { interaction: lw.interaction.clone() };
            let baseline = if pooled { &mut st.p99_pool_base } else { &mut st.p99_base };
            if let Some((base, mad)) = baseline.stats() {
                let limit = (base * c.latency_factor).max(base + 4.0 * mad).max(base + 5.0);
                let value = lw.p99_ms / limit;
                let t = st.lat_h.update(&c.latency_hysteresis, value, now);
                if matches!(t, Transition::Cleared) {
                    self.cleared.push(("latency_change".to_owned(), subject()));
                }
                if let Transition::Fired { since } = t {
                    out.push(finding(
                        "latency_change",
                        subject(),
                        FailureModel::Exhaustion,
                        since,
                        value,
                        "p99_ms",
                        lw.p99_ms,
                        Some(base),
                        Some(limit),
                        lw.length,
                    ));
                }
            }
            if !pending_or_firing(&st.lat_h) {
                let baseline = if pooled { &mut st.p99_pool_base } else { &mut st.p99_base };
                baseline.push(lw.p99_ms);
            }
        }
        let Some(w) = cw else { return out };
        let end = w.start + w.length;
        if w.requests < c.min_requests {
            return out;
        }
        let ingress = self.ingress.get_mut(*caller as usize).and_then(|ing| last_ingress(ing, end));
        let subject = || Subject::Interaction { interaction: w.interaction.clone() };
        let req = w.requests as f64;
        let err = w.errors as f64 / req;
        let retry = w.retries as f64 / req;
        let timeout = w.timeouts as f64 / req;

        // Error-rate change.
        if let Some((base, mad)) = st.err_base.stats() {
            let band = c.error_abs_delta.max(4.0 * mad);
            // Chance alone, at the baseline rate? The rate is the larger of
            // the median and the mean (at low traffic most windows hold no
            // error, so the median says 0 while the rate is not), floored at
            // 0.1 %: a clean baseline must not make one error a change.
            let rate = base.max(st.err_base.mean().unwrap_or(0.0)).max(0.001);
            // Only a window already over twice the baseline pays for the exact test.
            let chance = || w.requests <= EXACT_TEST_MAX_N && binomial_upper_tail(w.requests, w.errors, rate) >= c.error_alpha;
            let value = if err >= 2.0 * base && !chance() { (err - base) / band } else { 0.0 };
            let t = st.err_h.update(&c.hysteresis, value, now);
            if matches!(t, Transition::Cleared) {
                self.cleared.push(("error_rate_change".to_owned(), subject()));
            }
            if let Transition::Fired { since } = t {
                out.push(finding(
                    "error_rate_change",
                    subject(),
                    FailureModel::Unknown,
                    since,
                    value,
                    "error_ratio",
                    err,
                    Some(base),
                    Some(base + band),
                    w.length,
                ));
            }
        }
        if !pending_or_firing(&st.err_h) {
            st.err_base.push(err);
        }
        // Retry amplification: retries over budget, with the rate evidence.
        let rate_base = st.rate_base.stats().map(|(b, _)| b);
        let value = retry / c.retry_budget;
        let t = st.retry_h.update(&c.hysteresis, value, now);
        if matches!(t, Transition::Cleared) {
            self.cleared.push(("retry_amplification".to_owned(), subject()));
        }
        if let Transition::Fired { since } = t {
            let mut f = finding(
                "retry_amplification",
                subject(),
                FailureModel::Unknown,
                since,
                value,
                "retry_ratio",
                retry,
                rate_base.map(|_| 0.0),
                Some(c.retry_budget),
                w.length,
            );
            let attempts_per_call = if w.requests > w.retries { req / (req - w.retries as f64) } else { req };
            let mut m = format!("retry_ratio (×{attempts_per_call:.1} attempts per call");
            if let Some(rb) = rate_base.filter(|b| *b > 0.0) {
                m.push_str(&format!(", edge rate ×{:.1} of baseline", req / rb));
            }
            if let Some((ing, ib)) = ingress.filter(|(_, b)| *b > 0.0) {
                m.push_str(&format!(", caller ingress ×{:.1}", ing / ib));
            }
            m.push(')');
            f.evidence.measure = m;
            out.push(f);
        }
        if !pending_or_firing(&st.retry_h) {
            st.rate_base.push(req);
        }
        // Timeout saturation.
        let value = timeout / c.timeout_ratio;
        let t = st.timeout_h.update(&c.hysteresis, value, now);
        if matches!(t, Transition::Cleared) {
            self.cleared.push(("timeout_saturation".to_owned(), subject()));
        }
        if let Transition::Fired { since } = t {
            out.push(finding(
                "timeout_saturation",
                subject(),
                FailureModel::Exhaustion,
                since,
                value,
                "timeout_ratio",
                timeout,
                None,
                Some(c.timeout_ratio),
                w.length,
            ));
        }
        with_exemplars(&mut out, w);
        out
    }
}

/// Copies the window's exemplar trace ids into findings about it (only
/// when something fired, so the common path allocates nothing).
pub(crate) fn with_exemplars(findings: &mut [Finding], w: &EdgeWindow) {
    if w.exemplar_trace_ids.is_empty() {
        return;
    }
    for f in findings {
        f.evidence.exemplar_trace_ids = w.exemplar_trace_ids.iter().take(crate::signal::MAX_EXEMPLARS).cloned().collect();
    }
}

/// Groups edges of one window and evaluates the group once the window is
/// complete (a later window arrived, or `tick` passed its end).
#[derive(Clone, Debug, Default)]
struct WindowGroups {
    open: BTreeMap<Timestamp, Vec<EdgeWindow>>,
}

impl WindowGroups {
    fn add(&mut self, w: &EdgeWindow) -> Vec<(Timestamp, Vec<EdgeWindow>)> {
        let end = w.start + w.length;
        self.open.entry(end).or_default().push(w.clone());
        self.close_before(end)
    }
    fn close_before(&mut self, t: Timestamp) -> Vec<(Timestamp, Vec<EdgeWindow>)> {
        if nothing_before(&self.open, t) {
            return Vec::new();
        }
        let later = self.open.split_off(&t);
        let done = std::mem::replace(&mut self.open, later);
        done.into_iter().collect()
    }
}

/// `name[3]` → (`name`, true): shard children of a sharded service.
fn shard_base(name: &str) -> Option<&str> {
    if !name.ends_with(']') {
        return None;
    }
    let i = name.rfind('[')?;
    (name.ends_with(']') && name[i + 1..name.len() - 1].parse::<u32>().is_ok()).then(|| &name[..i])
}

/// Load skew across the shards of one service (callees named `svc[k]`):
/// fires when the hottest shard takes ≥ `fire` × the median shard's load.
#[derive(Clone, Debug)]
pub struct LoadSkewDetector {
    pub hysteresis: HysteresisConfig,
    pub min_shards: usize,
    groups: WindowGroups,
    state: LruMap<String, Hysteresis>,
}

impl Default for LoadSkewDetector {
    fn default() -> Self {
        LoadSkewDetector {
            // value = max/median load: fire at 3, clear under 2.
            hysteresis: HysteresisConfig::counted(3.0, 2.0, 1, CLEAR_WINDOWS),
            min_shards: 3,
            groups: WindowGroups::default(),
            state: LruMap::new(super::MAX_TRACKED_KEYS),
        }
    }
}

impl LoadSkewDetector {
    fn evaluate(&mut self, closed: Vec<(Timestamp, Vec<EdgeWindow>)>) -> Vec<Finding> {
        let mut out = Vec::new();
        for (end, edges) in closed {
            let mut per: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
            for e in &edges {
                if let Some(base) = shard_base(e.interaction.callee.as_str()) {
                    *per.entry(base.to_owned()).or_default().entry(e.interaction.callee.as_str().to_owned()).or_insert(0) += e.requests;
                }
            }
            for (base, shards) in per {
                if shards.len() < self.min_shards {
                    continue;
                }
                let mut loads: Vec<f64> = shards.values().map(|v| *v as f64).collect();
                let med = super::hysteresis::median_in_place(&mut loads);
                let (hot, max) = shards.iter().max_by_key(|(_, v)| **v).map(|(k, v)| (k.clone(), *v as f64)).unwrap_or_default();
                let value = if med > 0.0 {
                    max / med
                } else if max > 0.0 {
                    f64::MAX
                } else {
                    0.0
                };
                let h = self.state.get_or_insert_with(base.clone(), Hysteresis::default);
                if let Transition::Fired { since } = h.update(&self.hysteresis, value, end) {
                    let Some(subject) = resource_subject(&base, &hot) else { continue };
                    out.push(finding(
                        "load_skew",
                        subject,
                        FailureModel::Exhaustion,
                        since,
                        value / self.hysteresis.fire,
                        "max_over_median_shard_load",
                        value,
                        Some(med),
                        Some(self.hysteresis.fire),
                        Duration::ZERO,
                    ));
                }
            }
        }
        out
    }
}

impl Detector for LoadSkewDetector {
    fn name(&self) -> &'static str {
        "load_skew"
    }
    fn evicted(&self) -> u64 {
        self.state.evicted()
    }
    fn observe(&mut self, signal: &Signal, _now: Timestamp) -> Vec<Finding> {
        let Signal::Edge(w) = signal else { return Vec::new() };
        if shard_base(w.interaction.callee.as_str()).is_none() {
            return Vec::new();
        }
        let closed = self.groups.add(w);
        self.evaluate(closed)
    }
    fn tick(&mut self, now: Timestamp) -> Vec<Finding> {
        let closed = self.groups.close_before(now);
        self.evaluate(closed)
    }
}

/// Failures across many callers at once towards different callees: the
/// signature of a DNS or service-discovery outage (name resolution fails
/// for everyone), as opposed to one broken dependency.
#[derive(Clone, Debug)]
pub struct BroadFailureDetector {
    /// A caller counts as failing when one of its edges errors at ≥ this (0.2).
    pub caller_error_ratio: f64,
    pub min_callers: usize,
    pub min_callees: usize,
    pub min_requests: u64,
    pub hysteresis: HysteresisConfig,
    open: BTreeMap<Timestamp, WindowSummary>,
    h: Hysteresis,
    names: Names,
    /// Names forgotten to stay under `MAX_TRACKED_KEYS` (only grows).
    forgotten: u64,
}

/// Service names seen, interned (ids index `names`), with whether each is
/// named like a resolver — so a window costs no string allocation. At most
/// `MAX_TRACKED_KEYS` names: when a new one would pass that, the table is
/// rebuilt from the names the open windows still use (`compact`), so
/// services that come and go cannot grow it for ever.
#[derive(Clone, Debug, Default)]
struct Names {
    ids: HashMap<String, u32, crate::graph::FxBuild>,
    names: Vec<(String, bool)>,
}

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.ids.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push((name.to_owned(), is_resolver(name)));
        self.ids.insert(name.to_owned(), i);
        i
    }
    fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("", |n| n.0.as_str())
    }
    fn is_full_for(&self, name: &str) -> bool {
        self.names.len() >= super::MAX_TRACKED_KEYS && !self.ids.contains_key(name)
    }
    fn resolver(&self, id: u32) -> bool {
        self.names.get(id as usize).is_some_and(|n| n.1)
    }
}

/// What one window says about callers and failing edges (interned names).
#[derive(Clone, Debug, Default)]
struct WindowSummary {
    callers: BTreeSet<u32>,
    /// (caller, callee) of every failing edge.
    failing: BTreeSet<(u32, u32)>,
    resolver: Option<u32>,
}

fn is_resolver(name: &str) -> bool {
    let lc = name.to_ascii_lowercase();
    ["dns", "discovery", "consul", "coredns", "registry", "eureka"].iter().any(|k| lc.contains(k))
}

/// `BTreeMap::split_off` allocates; most calls have nothing to close.
fn nothing_before<V>(open: &BTreeMap<Timestamp, V>, t: Timestamp) -> bool {
    open.first_key_value().is_none_or(|(k, _)| *k >= t)
}

impl Default for BroadFailureDetector {
    fn default() -> Self {
        BroadFailureDetector {
            caller_error_ratio: 0.2,
            min_callers: 3,
            min_callees: 2,
            min_requests: 10,
            // value = failing callers / min_callers (gated on callee spread).
            hysteresis: HysteresisConfig::counted(1.0, 0.67, 1, CLEAR_WINDOWS),
            open: BTreeMap::new(),
            h: Hysteresis::default(),
            names: Names::default(),
            forgotten: 0,
        }
    }
}

impl BroadFailureDetector {
    /// Rebuilds the name table from the names the open windows use,
    /// renumbering them; every other name is forgotten (it is interned again
    /// if it comes back). Windows close within a few seconds, so what the
    /// open ones use is a handful of services, not the whole table.
    fn compact(&mut self) {
        let mut used: BTreeSet<u32> = BTreeSet::new();
        for w in self.open.values() {
            used.extend(w.callers.iter().copied());
            used.extend(w.failing.iter().flat_map(|(a, b)| [*a, *b]));
            used.extend(w.resolver);
        }
        let mut fresh = Names::default();
        let renumber: HashMap<u32, u32, crate::graph::FxBuild> = used.iter().map(|&old| (old, fresh.id(self.names.name(old)))).collect();
        let map = |id: &u32| renumber.get(id).copied().unwrap_or(*id);
        for w in self.open.values_mut() {
            w.callers = w.callers.iter().map(map).collect();
            w.failing = w.failing.iter().map(|(a, b)| (map(a), map(b))).collect();
            w.resolver = w.resolver.as_ref().map(map);
        }
        self.forgotten += (self.names.names.len() - fresh.names.len()) as u64;
        self.names = fresh;
    }

    fn close_before(&mut self, t: Timestamp) -> Vec<Finding> {
        if nothing_before(&self.open, t) {
            return Vec::new();
        }
        let later = self.open.split_off(&t);
        let done = std::mem::replace(&mut self.open, later);
        let mut out = Vec::new();
        for (end, w) in done {
            // A caller failing only because its callee fails further down is
            // a cascade, not a resolution problem: keep the deepest failures.
            let failing_out: BTreeSet<u32> = w.failing.iter().map(|(c, _)| *c).collect();
            let roots: Vec<&(u32, u32)> = w.failing.iter().filter(|(_, callee)| !failing_out.contains(callee)).collect();
            let callers: BTreeSet<&str> = roots.iter().map(|(c, _)| self.names.name(*c)).collect();
            let callees: BTreeSet<&str> = roots.iter().map(|(_, d)| self.names.name(*d)).collect();
            let resolver = w.resolver.map(|r| self.names.name(r));
            let spread = callees.len() >= self.min_callees;
            let share_ok = w.callers.is_empty() || callers.len() * 2 >= w.callers.len();
            let mut value = if spread && share_ok { callers.len() as f64 / self.min_callers as f64 } else { 0.0 };
            if resolver.is_some() {
                value = value.max(1.0);
            }
            if let Transition::Fired { since } = self.h.update(&self.hysteresis, value, end) {
                let dns = || Subject::Resource { service: literal_service("dns"), resource: "resolution".into() };
                let subject = resolver.and_then(super::service_subject).unwrap_or_else(dns);
                let mut f = finding(
                    "dependency_resolution_failure",
                    subject,
                    FailureModel::Unknown,
                    since,
                    value,
                    "failing_callers",
                    callers.len() as f64,
                    Some(w.callers.len() as f64),
                    Some(self.min_callers as f64),
                    Duration::ZERO,
                );
                f.evidence.measure = format!(
                    "failing_callers ({} of {} callers, {} callees: {}{})",
                    callers.len(),
                    w.callers.len(),
                    callees.len(),
                    callers.iter().copied().collect::<Vec<_>>().join(", "),
                    resolver.map(|r| format!("; resolver {r} failing")).unwrap_or_default()
                );
                out.push(f);
            }
        }
        out
    }
}

impl Detector for BroadFailureDetector {
    fn name(&self) -> &'static str {
        "dependency_resolution_failure"
    }
    fn evicted(&self) -> u64 {
        self.forgotten
    }
    fn observe(&mut self, signal: &Signal, _now: Timestamp) -> Vec<Finding> {
        let Signal::Edge(e) = signal else { return Vec::new() };
        let end = e.start + e.length;
        if self.names.is_full_for(e.interaction.callee.as_str()) || self.names.is_full_for(e.interaction.caller.as_str()) {
            self.compact();
        }
        let callee = self.names.id(e.interaction.callee.as_str());
        let resolver = self.names.resolver(callee);
        // A resolver that stops answering shows first as lookups piling up
        // in flight (they fail only at their timeout, seconds later).
        let stalled = resolver && e.in_flight.is_some_and(|f| f >= self.min_requests.max(e.requests));
        if e.requests >= self.min_requests || stalled {
            let caller = self.names.id(e.interaction.caller.as_str());
            let w = self.open.entry(end).or_default();
            w.callers.insert(caller);
            let ratio = e.errors.max(e.timeouts) as f64 / e.requests.max(1) as f64;
            if ratio >= self.caller_error_ratio || (resolver && (ratio >= 0.05 || stalled)) {
                if resolver {
                    w.resolver = Some(callee);
                }
                w.failing.insert((caller, callee));
            }
        }
        self.close_before(end)
    }
    fn tick(&mut self, now: Timestamp) -> Vec<Finding> {
        self.close_before(now)
    }
}

/// Cache hit ratio collapsing against its baseline while the origin load
/// (`cache_recomputes`, or `cache_misses`) spikes: a stampede.
#[derive(Clone, Debug)]
pub struct CacheCollapseDetector {
    pub hysteresis: HysteresisConfig,
    /// Drop in hit ratio (absolute) that counts as a collapse (0.3).
    pub drop: f64,
    /// Origin load × baseline that counts as a spike (3).
    pub origin_factor: f64,
    state: LruMap<(String, String), CacheState>,
}

#[derive(Clone, Debug)]
struct CacheState {
    hit_base: RobustBaseline,
    origin_base: RobustBaseline,
    last_origin: Option<f64>,
    h: Hysteresis,
}

impl Default for CacheCollapseDetector {
    fn default() -> Self {
        CacheCollapseDetector {
            hysteresis: HysteresisConfig::counted(1.0, 0.5, 1, CLEAR_WINDOWS),
            drop: 0.3,
            origin_factor: 3.0,
            state: LruMap::new(super::MAX_TRACKED_KEYS),
        }
    }
}

impl Detector for CacheCollapseDetector {
    fn reads_edges(&self) -> bool {
        false
    }
    fn name(&self) -> &'static str {
        "cache_collapse"
    }
    fn evicted(&self) -> u64 {
        self.state.evicted()
    }
    fn observe(&mut self, signal: &Signal, now: Timestamp) -> Vec<Finding> {
        let Signal::Metric(m) = signal else { return Vec::new() };
        if !matches!(m.name.as_str(), "cache_recomputes" | "cache_misses" | "cache_hit_ratio") {
            return Vec::new();
        }
        let svc = m.service.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default();
        let key = (svc.clone(), m.labels.get("resource").cloned().unwrap_or_else(|| "cache".into()));
        let st = self.state.get_or_insert_with(key.clone(), || CacheState {
            hit_base: RobustBaseline::new(60, 5),
            origin_base: RobustBaseline::new(60, 5),
            last_origin: None,
            h: Hysteresis::default(),
        });
        match m.name.as_str() {
            "cache_recomputes" | "cache_misses" => {
                st.last_origin = Some(m.value);
                if !pending_or_firing(&st.h) {
                    st.origin_base.push(m.value);
                }
                Vec::new()
            }
            "cache_hit_ratio" => {
                let Some((base, _)) = st.hit_base.stats() else {
                    st.hit_base.push(m.value);
                    return Vec::new();
                };
                let drop = (base - m.value).max(0.0);
                let origin_spike = match (st.last_origin, st.origin_base.stats()) {
                    (Some(o), Some((ob, _))) => Some(o >= self.origin_factor * ob.max(1.0)),
                    _ => None,
                };
                // Without an origin metric the hit ratio alone decides.
                let value = if origin_spike == Some(false) { 0.0 } else { drop / self.drop };
                let out = match st.h.update(&self.hysteresis, value, now) {
                    Transition::Fired { since } => resource_subject(&key.0, &key.1)
                        .map(|subject| {
                            let mut f = finding(
                                "cache_collapse",
                                subject,
                                FailureModel::Exhaustion,
                                since,
                                value,
                                "cache_hit_ratio",
                                m.value,
                                Some(base),
                                Some(base - self.drop),
                                Duration::ZERO,
                            );
                            if let (Some(o), Some((ob, _))) = (st.last_origin, st.origin_base.stats()) {
                                f.evidence.measure = format!("cache_hit_ratio (origin load {o:.0} vs baseline {ob:.0})");
                            }
                            vec![f]
                        })
                        .unwrap_or_default(),
                    _ => Vec::new(),
                };
                if !pending_or_firing(&st.h) {
                    st.hit_base.push(m.value);
                }
                out
            }
            _ => Vec::new(),
        }
    }
}

/// More than one leader for one replica group (`leaders` gauge ≥ 2), or
/// divergent writes: split brain.
#[derive(Clone, Debug)]
pub struct LeaderConflictDetector {
    pub hysteresis: HysteresisConfig,
    state: LruMap<String, (Hysteresis, f64)>,
}

impl Default for LeaderConflictDetector {
    fn default() -> Self {
        // value = leaders - 1 (+1 if writes diverged): fire at 1, clear below 0.5.
        LeaderConflictDetector { hysteresis: HysteresisConfig::counted(1.0, 0.5, 1, CLEAR_WINDOWS), state: LruMap::new(super::MAX_TRACKED_KEYS) }
    }
}

impl Detector for LeaderConflictDetector {
    fn reads_edges(&self) -> bool {
        false
    }
    fn name(&self) -> &'static str {
        "leader_conflict"
    }
    fn evicted(&self) -> u64 {
        self.state.evicted()
    }
    fn observe(&mut self, signal: &Signal, now: Timestamp) -> Vec<Finding> {
        let Signal::Metric(m) = signal else { return Vec::new() };
        if !matches!(m.name.as_str(), "writes_divergent" | "leaders") {
            return Vec::new();
        }
        let svc = m.service.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default();
        let st = self.state.get_or_insert_with(svc.clone(), || (Hysteresis::default(), 0.0));
        let value = match m.name.as_str() {
            "writes_divergent" => {
                st.1 = m.value;
                return Vec::new();
            }
            "leaders" => (m.value - 1.0).max(0.0) + if st.1 > 0.0 { 1.0 } else { 0.0 },
            _ => return Vec::new(),
        };
        match st.0.update(&self.hysteresis, value, now) {
            Transition::Fired { since } => {
                let Some(subject) = resource_subject(&svc, "leadership") else { return Vec::new() };
                let mut f =
                    finding("leader_conflict", subject, FailureModel::Partition, since, value, "leaders", m.value, Some(1.0), Some(1.0), Duration::ZERO);
                if st.1 > 0.0 {
                    f.evidence.measure = format!("leaders ({} divergent writes)", st.1);
                }
                vec![f]
            }
            _ => Vec::new(),
        }
    }
}
