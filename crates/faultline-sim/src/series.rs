//! Per-window series of a run: what each interaction, service and load
//! source did in each window, plus named metrics (cache, pool, cluster).
//!
//! What it is: compact rows (indices into name tables), a log-linear latency
//! histogram for the percentiles, CSV/JSON rendering, and the conversion of
//! windows into `faultline_core::Signal`s for the real detectors. What it is
//! not: a time-series database; a run keeps its rows in memory.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use faultline_core::model::Interaction;
use faultline_core::signal::{EdgeWindow, MetricPoint, ZoneCounts};
use faultline_core::{Duration, ServiceName, Signal, Timestamp};

const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
const BUCKETS: usize = (64 - SUB_BITS as usize) * SUB;

/// Latency histogram over microseconds with 1/16-octave buckets (≈4% error).
#[derive(Clone)]
pub struct Hist {
    counts: Box<[u32; BUCKETS]>,
    n: u64,
}

impl Default for Hist {
    fn default() -> Self {
        Hist { counts: Box::new([0; BUCKETS]), n: 0 }
    }
}

#[inline]
fn bucket(us: u64) -> usize {
    if us < SUB as u64 {
        return us as usize;
    }
    let e = 63 - us.leading_zeros(); // >= SUB_BITS
    let sub = ((us >> (e - SUB_BITS)) as usize) & (SUB - 1);
    ((e - SUB_BITS + 1) as usize) * SUB + sub
}

fn bucket_mid_us(b: usize) -> f64 {
    if b < SUB {
        return b as f64;
    }
    let e = (b / SUB) as u32 + SUB_BITS - 1;
    let sub = (b % SUB) as u64;
    let lo = (1u64 << e) + (sub << (e - SUB_BITS));
    let width = 1u64 << (e - SUB_BITS);
    lo as f64 + width as f64 / 2.0
}

impl Hist {
    #[inline]
    pub fn record_ns(&mut self, ns: u64) {
        let b = bucket(ns / 1000).min(BUCKETS - 1);
        self.counts[b] += 1;
        self.n += 1;
    }
    pub fn count(&self) -> u64 {
        self.n
    }
    /// The q-quantile in milliseconds (0 when empty).
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut acc = 0u64;
        for (b, &c) in self.counts.iter().enumerate() {
            acc += c as u64;
            if acc >= rank {
                return bucket_mid_us(b) / 1000.0;
            }
        }
        0.0
    }
    pub fn clear(&mut self) {
        if self.n > 0 {
            self.counts.fill(0);
            self.n = 0;
        }
    }
}

/// One interaction (caller → callee) in one window, as the caller saw it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EdgeRow {
    pub window: u32,
    pub edge: u32,
    /// Attempts sent (first tries and retries).
    pub attempts: u64,
    pub retries: u64,
    pub ok: u64,
    pub errors: u64,
    pub timeouts: u64,
    /// Refused locally by a breaker, throttle or budget (never sent).
    pub rejected: u64,
    /// Answered 200 with wrong data.
    pub wrong: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// One service in one window.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ServiceRow {
    pub window: u32,
    pub service: u32,
    pub arrivals: u64,
    /// Work finished (useful or not: orphans count).
    pub served: u64,
    /// Expired work skipped at dequeue (deadline propagation).
    pub dropped: u64,
    /// Turned away because the queue was full or the service was down.
    pub rejected: u64,
    pub errors: u64,
    pub queue_depth: u64,
    pub queue_max: u64,
    pub busy: u64,
    pub capacity: u64,
    /// Mean busy slots over the window divided by capacity (0 when capacity is 0).
    pub utilization: f64,
}

/// One load source (a user population) in one window: the user's view.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FlowRow {
    pub window: u32,
    pub source: u32,
    pub requests: u64,
    /// Answered correctly.
    pub goodput: u64,
    pub failed: u64,
    pub wrong: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Attempts of one interaction in one window from a caller zone to a
/// callee zone (only where both ends have zones): the zone split of an
/// `EdgeRow`, outcomes counted when the attempt finished.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ZoneRow {
    pub window: u32,
    pub edge: u32,
    pub caller_zone: String,
    pub callee_zone: String,
    pub attempts: u64,
    pub errors: u64,
    pub timeouts: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MetricRow {
    pub window: u32,
    pub name: String,
    pub subject: String,
    pub value: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EdgeName {
    pub caller: String,
    pub callee: String,
}

/// Every window of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Default)]
pub struct Series {
    pub window_s: f64,
    pub windows: u32,
    pub services: Vec<String>,
    pub sources: Vec<String>,
    pub edges: Vec<EdgeName>,
    pub edge_rows: Vec<EdgeRow>,
    pub service_rows: Vec<ServiceRow>,
    pub flow_rows: Vec<FlowRow>,
    pub metric_rows: Vec<MetricRow>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub zone_rows: Vec<ZoneRow>,
}

/// The rows of one window, from rows stored in window order (every row
/// vector of a run is appended window by window).
fn rows_of<T>(rows: &[T], window: u32, w: impl Fn(&T) -> u32) -> &[T] {
    let lo = rows.partition_point(|r| w(r) < window);
    let n = rows[lo..].partition_point(|r| w(r) == window);
    &rows[lo..lo + n]
}

/// How many windows back `window_signals` sums attempts and completions to
/// estimate calls in flight (longer-running calls are not counted).
const IN_FLIGHT_LOOKBACK: u32 = 60;

fn f(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 { format!("{}", x as i64) } else { format!("{x:.3}") }
}

impl Series {
    pub fn window_start_s(&self, w: u32) -> f64 {
        w as f64 * self.window_s
    }

    pub fn service_index(&self, name: &str) -> Option<u32> {
        self.services.iter().position(|s| s == name).map(|i| i as u32)
    }
    pub fn source_index(&self, name: &str) -> Option<u32> {
        self.sources.iter().position(|s| s == name).map(|i| i as u32)
    }
    pub fn edge_index(&self, caller: &str, callee: &str) -> Option<u32> {
        self.edges.iter().position(|e| e.caller == caller && e.callee == callee).map(|i| i as u32)
    }

    /// Flow rows of one source, in window order.
    pub fn flow(&self, source: &str) -> Vec<&FlowRow> {
        let Some(i) = self.source_index(source) else { return Vec::new() };
        self.flow_rows.iter().filter(|r| r.source == i).collect()
    }
    pub fn service(&self, name: &str) -> Vec<&ServiceRow> {
        let Some(i) = self.service_index(name) else { return Vec::new() };
        self.service_rows.iter().filter(|r| r.service == i).collect()
    }
    pub fn edge(&self, caller: &str, callee: &str) -> Vec<&EdgeRow> {
        let Some(i) = self.edge_index(caller, callee) else { return Vec::new() };
        self.edge_rows.iter().filter(|r| r.edge == i).collect()
    }
    pub fn metric(&self, name: &str, subject: &str) -> Vec<&MetricRow> {
        self.metric_rows.iter().filter(|r| r.name == name && r.subject == subject).collect()
    }

    /// Goodput of a source in requests per second, averaged over [from_s, to_s).
    pub fn goodput_rate(&self, source: &str, from_s: f64, to_s: f64) -> f64 {
        self.flow_avg(source, from_s, to_s, |r| r.goodput as f64)
    }
    /// Requests started per second by a source over [from_s, to_s).
    pub fn request_rate(&self, source: &str, from_s: f64, to_s: f64) -> f64 {
        self.flow_avg(source, from_s, to_s, |r| r.requests as f64)
    }
    fn flow_avg(&self, source: &str, from_s: f64, to_s: f64, v: impl Fn(&FlowRow) -> f64) -> f64 {
        let rows: Vec<f64> = self
            .flow(source)
            .into_iter()
            .filter(|r| {
                let t = self.window_start_s(r.window);
                t >= from_s - 1e-9 && t + self.window_s <= to_s + 1e-9
            })
            .map(v)
            .collect();
        if rows.is_empty() { 0.0 } else { rows.iter().sum::<f64>() / rows.len() as f64 / self.window_s }
    }
    /// Attempts per second on an interaction over [from_s, to_s).
    pub fn attempt_rate(&self, caller: &str, callee: &str, from_s: f64, to_s: f64) -> f64 {
        let rows: Vec<f64> = self
            .edge(caller, callee)
            .into_iter()
            .filter(|r| {
                let t = self.window_start_s(r.window);
                t >= from_s - 1e-9 && t + self.window_s <= to_s + 1e-9
            })
            .map(|r| r.attempts as f64)
            .collect();
        if rows.is_empty() { 0.0 } else { rows.iter().sum::<f64>() / rows.len() as f64 / self.window_s }
    }

    pub fn edges_csv(&self) -> String {
        let mut s = String::from("t_s,caller,callee,attempts,retries,ok,errors,timeouts,rejected,wrong,p50_ms,p99_ms\n");
        for r in &self.edge_rows {
            let e = &self.edges[r.edge as usize];
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{}",
                f(self.window_start_s(r.window)),
                e.caller,
                e.callee,
                r.attempts,
                r.retries,
                r.ok,
                r.errors,
                r.timeouts,
                r.rejected,
                r.wrong,
                f(r.p50_ms),
                f(r.p99_ms)
            );
        }
        s
    }

    pub fn services_csv(&self) -> String {
        let mut s = String::from("t_s,service,arrivals,served,dropped,rejected,errors,queue_depth,queue_max,busy,capacity,utilization\n");
        for r in &self.service_rows {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{},{},{},{},{}",
                f(self.window_start_s(r.window)),
                self.services[r.service as usize],
                r.arrivals,
                r.served,
                r.dropped,
                r.rejected,
                r.errors,
                r.queue_depth,
                r.queue_max,
                r.busy,
                r.capacity,
                f(r.utilization)
            );
        }
        s
    }

    pub fn flows_csv(&self) -> String {
        let mut s = String::from("t_s,source,requests,goodput,failed,wrong,p50_ms,p99_ms\n");
        for r in &self.flow_rows {
            let _ = writeln!(
                s,
                "{},{},{},{},{},{},{},{}",
                f(self.window_start_s(r.window)),
                self.sources[r.source as usize],
                r.requests,
                r.goodput,
                r.failed,
                r.wrong,
                f(r.p50_ms),
                f(r.p99_ms)
            );
        }
        s
    }

    pub fn metrics_csv(&self) -> String {
        let mut s = String::from("t_s,name,subject,value\n");
        for r in &self.metric_rows {
            let _ = writeln!(s, "{},{},{},{}", f(self.window_start_s(r.window)), r.name, r.subject, f(r.value));
        }
        s
    }

    /// The signals of one window, as a real deployment's receivers would
    /// produce them: one `Signal::Edge` per interaction with traffic (with
    /// calls in flight at the window's end, estimated as attempts minus
    /// finished attempts over the last `IN_FLIGHT_LOOKBACK` windows, and the
    /// split by caller and callee zone where the world has zones), and
    /// `Signal::Metric`s for answer correctness per interaction (`answers`,
    /// `wrong_answers`), queue depth, utilisation and the named metrics.
    /// `epoch` is the wall-clock instant virtual time 0 maps to.
    pub fn window_signals(&self, window: u32, epoch: Timestamp) -> Vec<Signal> {
        let len = Duration::from_millis((self.window_s * 1000.0).round() as i64);
        let start = epoch + Duration::from_millis((self.window_start_s(window) * 1000.0).round() as i64);
        let end = start + len;
        let mut out = Vec::new();
        let name = |s: &str| ServiceName::new(s.to_owned()).ok();
        let edge_rows = rows_of(&self.edge_rows, window, |r| r.window);
        let zone_rows = rows_of(&self.zone_rows, window, |r| r.window);
        // Attempts minus finished attempts per edge over the lookback.
        let mut open: BTreeMap<u32, i64> = BTreeMap::new();
        let from = window.saturating_sub(IN_FLIGHT_LOOKBACK - 1);
        let lo = self.edge_rows.partition_point(|r| r.window < from);
        let hi = lo + self.edge_rows[lo..].partition_point(|r| r.window <= window);
        for r in &self.edge_rows[lo..hi] {
            *open.entry(r.edge).or_insert(0) += r.attempts as i64 - (r.ok + r.errors + r.timeouts) as i64;
        }
        for r in edge_rows {
            let e = &self.edges[r.edge as usize];
            let (Some(caller), Some(callee)) = (name(&e.caller), name(&e.callee)) else { continue };
            let zones = zone_rows
                .iter()
                .filter(|z| z.edge == r.edge)
                .map(|z| ZoneCounts {
                    caller_zone: z.caller_zone.clone(),
                    callee_zone: z.callee_zone.clone(),
                    requests: z.attempts,
                    errors: z.errors + z.timeouts,
                    timeouts: z.timeouts,
                })
                .collect();
            out.push(Signal::Edge(EdgeWindow {
                interaction: Interaction { caller, callee, operation: String::new() },
                start,
                length: len,
                requests: r.attempts,
                errors: r.errors + r.timeouts + r.rejected,
                timeouts: r.timeouts,
                retries: r.retries,
                p50_ms: r.p50_ms,
                p99_ms: r.p99_ms,
                in_flight: Some(open.get(&r.edge).copied().unwrap_or(0).max(0) as u64),
                zones,
                exemplar_trace_ids: Vec::new(),
            }));
        }
        let metric = |n: &str, svc: Option<ServiceName>, labels: BTreeMap<String, String>, v: f64| {
            Signal::Metric(MetricPoint { name: n.to_owned(), labels, service: svc, at: end, value: v })
        };
        // Answer correctness per interaction, as semantic checks (checksums,
        // canary comparison) would report it: `answers` (200s) and
        // `wrong_answers`, on the callee with the caller as a label.
        for r in edge_rows.iter().filter(|r| r.ok > 0) {
            let e = &self.edges[r.edge as usize];
            let labels = BTreeMap::from([("caller".to_owned(), e.caller.clone())]);
            out.push(metric("answers", name(&e.callee), labels.clone(), r.ok as f64));
            out.push(metric("wrong_answers", name(&e.callee), labels, r.wrong as f64));
        }
        for r in rows_of(&self.service_rows, window, |r| r.window) {
            let svc = name(&self.services[r.service as usize]);
            out.push(metric("queue_depth", svc.clone(), BTreeMap::new(), r.queue_depth as f64));
            out.push(metric("utilization", svc.clone(), BTreeMap::new(), r.utilization));
            out.push(metric("busy", svc, BTreeMap::new(), r.busy as f64));
        }
        for r in rows_of(&self.metric_rows, window, |r| r.window) {
            let (svc, labels) = match r.subject.split_once('/') {
                Some((s, res)) => (name(s), BTreeMap::from([("resource".to_owned(), res.to_owned())])),
                None => (name(&r.subject), BTreeMap::new()),
            };
            out.push(metric(&r.name, svc, labels, r.value));
        }
        out
    }

    /// All signals of the run, window by window.
    pub fn signals(&self, epoch: Timestamp) -> impl Iterator<Item = Signal> + '_ {
        (0..self.windows).flat_map(move |w| self.window_signals(w, epoch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_are_within_bucket_error() {
        let mut h = Hist::default();
        for i in 1..=1000u64 {
            h.record_ns(i * 1_000_000); // 1..1000 ms
        }
        let p50 = h.quantile_ms(0.5);
        let p99 = h.quantile_ms(0.99);
        assert!((p50 - 500.0).abs() / 500.0 < 0.05, "{p50}");
        assert!((p99 - 990.0).abs() / 990.0 < 0.05, "{p99}");
        h.clear();
        assert_eq!(h.quantile_ms(0.5), 0.0);
        // Buckets are monotone and cover tiny values exactly.
        let mut last = 0;
        for us in [0u64, 1, 15, 16, 17, 1000, 1 << 30, u64::MAX / 1000] {
            let b = bucket(us);
            assert!(b >= last && b < BUCKETS);
            last = b;
        }
    }
}
