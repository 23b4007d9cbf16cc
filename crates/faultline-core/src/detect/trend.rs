//! Rate of change instead of static thresholds: Prometheus-exact least
//! squares (`deriv`, `predict_linear`, Kahan–Neumaier sums), time to
//! exhaustion, and two exhaustion detectors built on them — resource
//! headroom draining (pools, utilisation) and queue growth with time-to-full.
//!
//! Not here: storing long series (detectors keep a short bounded window).

use crate::bounded::LruMap;
use std::collections::VecDeque;

use super::hysteresis::{CLEAR_WINDOWS, Hysteresis, HysteresisConfig, RobustBaseline, Transition};
use super::{Detector, MAX_TRACKED_KEYS, finding, resource_subject, service_subject};
use crate::finding::{FailureModel, Finding};
use crate::signal::{MetricPoint, Signal};
use crate::time::{Duration, Timestamp};

fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// Ordinary least squares over `(t, y)` points with x = (t − t0) in seconds,
/// exactly as Prometheus' `linearRegression`: returns (slope per second,
/// intercept at t0). None for fewer than two points. Constant y gives slope
/// 0 (NaN if y is infinite).
pub fn linear_regression(points: &[(Timestamp, f64)], t0: Timestamp) -> Option<(f64, f64)> {
    if points.len() < 2 {
        return None;
    }
    let init_y = points[0].1;
    let mut const_y = true;
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) = (0.0f64, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for (i, &(t, y)) in points.iter().enumerate() {
        if const_y && i > 0 && y != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - t0).as_millis() as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(y, sy, cy);
        (sxy, cxy) = kahan_inc(x * y, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        return Some(if init_y.is_infinite() { (f64::NAN, f64::NAN) } else { (0.0, init_y) });
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    Some((slope, sy / n - slope * sx / n))
}

/// `deriv(v[r])`: the slope per second, with t0 = the first sample.
pub fn deriv(points: &[(Timestamp, f64)]) -> Option<f64> {
    linear_regression(points, points.first()?.0).map(|(s, _)| s)
}

/// `predict_linear(v[r], h)`: the fitted value `horizon` after `now` (not
/// after the last sample).
pub fn predict_linear(points: &[(Timestamp, f64)], now: Timestamp, horizon: Duration) -> Option<f64> {
    linear_regression(points, now).map(|(s, i)| s * horizon.as_secs_f64() + i)
}

/// When a draining quantity (fitted at `now`) reaches zero; None unless it is
/// positive and falling.
pub fn time_to_exhaustion(points: &[(Timestamp, f64)], now: Timestamp) -> Option<Duration> {
    let (slope, level) = linear_regression(points, now)?;
    (slope < 0.0 && level > 0.0 && slope.is_finite()).then(|| Duration::from_millis((level / -slope * 1000.0) as i64))
}

/// The t statistic of the least-squares slope of `points` (slope over its
/// standard error, corrected for lag-1 autocorrelation of the residuals; x
/// in seconds): |t| ≥ 3 says the trend is not noise.
/// 0 for fewer than three points or no spread in time; ±∞ for a perfect fit.
pub fn slope_t(points: &[(Timestamp, f64)]) -> f64 {
    let n = points.len();
    let Some(&(t0, _)) = points.first() else { return 0.0 };
    if n < 3 {
        return 0.0;
    }
    let nf = n as f64;
    let x = |t: Timestamp| (t - t0).as_millis() as f64 / 1e3;
    let mx = points.iter().map(|p| x(p.0)).sum::<f64>() / nf;
    let my = points.iter().map(|p| p.1).sum::<f64>() / nf;
    let (mut sxx, mut sxy) = (0.0, 0.0);
    for &(t, y) in points {
        let dx = x(t) - mx;
        sxx += dx * dx;
        sxy += dx * (y - my);
    }
    if sxx <= 0.0 || !sxy.is_finite() {
        return 0.0;
    }
    let slope = sxy / sxx;
    let res: Vec<f64> = points.iter().map(|&(t, y)| y - my - slope * (x(t) - mx)).collect();
    let ss: f64 = res.iter().map(|r| r * r).sum();
    // Queues and pools are autocorrelated: with lag-1 autocorrelation ρ of
    // the residuals, n points carry about n (1 − ρ) / (1 + ρ) independent
    // ones, so the standard error grows by √((1 + ρ) / (1 − ρ)).
    let rho = if ss > 0.0 { (res.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / ss).clamp(0.0, 0.9) } else { 0.0 };
    let se = (ss / (nf - 2.0) / sxx * (1.0 + rho) / (1.0 - rho)).sqrt();
    if se > 0.0 {
        slope / se
    } else if slope == 0.0 {
        0.0
    } else {
        slope.signum() * f64::INFINITY
    }
}

fn push_bounded(q: &mut VecDeque<(Timestamp, f64)>, p: (Timestamp, f64), cap: usize) {
    if q.back().is_some_and(|b| b.0 >= p.0) {
        return; // out of order or duplicate: keep the series monotonic
    }
    if q.len() == cap {
        q.pop_front();
    }
    q.push_back(p);
}

/// Headroom of a consumable resource draining towards zero: pools
/// (`pool_in_use` / `pool_size`), memory (`memory_used` / `memory_limit`),
/// disk (`disk_used` / `disk_size`), file descriptors (`fd_open` /
/// `fd_limit`). Utilisation is deliberately not one: a busy server's
/// utilisation wobbles near its ceiling without anything leaking (queue
/// growth covers saturation). Fires when the least-squares fit
/// predicts exhaustion within `horizon`, the draining trend is significant
/// (slope t statistic ≤ −`min_t`, so noise does not make a trend) and usage is
/// above `min_usage` (a level gate and a trend gate, like the node-exporter
/// disk alerts), or when the resource is used up. A leak thus fires as soon
/// as its trend is distinguishable from noise, not at a fixed usage.
#[derive(Clone, Debug)]
pub struct ExhaustionDetector {
    pub horizon: Duration,
    pub min_usage: f64,
    /// Significance of the draining slope (3).
    pub min_t: f64,
    pub points: usize,
    pub hysteresis: HysteresisConfig,
    sizes: LruMap<(String, String), f64>,
    series: LruMap<(String, String), Track>,
    cleared: Vec<(String, crate::finding::Subject)>,
}

/// How many fit spans ahead a trend may be extrapolated.
const EXTRAPOLATION: i64 = 2;

/// Fewest points a draining trend is judged on.
const MIN_TREND_POINTS: usize = 10;

/// A bounded series and its hysteresis state.
type Track = (VecDeque<(Timestamp, f64)>, Hysteresis);

impl Default for ExhaustionDetector {
    fn default() -> Self {
        ExhaustionDetector {
            horizon: Duration::from_mins(30),
            min_usage: 0.5,
            min_t: 3.0,
            points: 30,
            // value = horizon / time-to-exhaustion: 1 = exhausted within the
            // horizon. One window suffices: the t gate (a 30-point fit) is
            // what rejects noise, and a used-up resource is not noise.
            hysteresis: HysteresisConfig::counted(1.0, 0.5, 1, CLEAR_WINDOWS),
            sizes: LruMap::new(MAX_TRACKED_KEYS),
            series: LruMap::new(MAX_TRACKED_KEYS),
            cleared: Vec::new(),
        }
    }
}

fn key(m: &MetricPoint) -> (String, String) {
    let svc = m.service.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default();
    // The resource label arrives from the network: clipped like every key.
    let res = m.labels.get("resource").map_or("", |r| crate::bounded::clip(r, crate::bounded::MAX_KEY_BYTES));
    (svc, res.to_owned())
}

impl Detector for ExhaustionDetector {
    fn reads_edges(&self) -> bool {
        false
    }
    fn name(&self) -> &'static str {
        "resource_exhaustion"
    }
    fn evicted(&self) -> u64 {
        self.sizes.evicted() + self.series.evicted()
    }
    fn take_cleared(&mut self) -> Vec<(String, crate::finding::Subject)> {
        std::mem::take(&mut self.cleared)
    }
    fn clears(&self, kind: &str) -> bool {
        matches!(kind, "resource_exhaustion")
    }
    fn observe(&mut self, signal: &Signal, now: Timestamp) -> Vec<Finding> {
        let Signal::Metric(m) = signal else { return Vec::new() };
        let (used_name, size_name) = match m.name.as_str() {
            n @ ("pool_size" | "memory_limit" | "disk_size" | "fd_limit") => {
                let (svc, res) = key(m);
                self.sizes.insert((svc, format!("{res}#{n}")), m.value);
                return Vec::new();
            }
            "pool_in_use" => ("pool_in_use", "pool_size"),
            "memory_used" => ("memory_used", "memory_limit"),
            "disk_used" => ("disk_used", "disk_size"),
            "fd_open" => ("fd_open", "fd_limit"),
            _ => return Vec::new(),
        };
        let (svc, res) = key(m);
        let used = m.value;
        let size = match self.sizes.get(&(svc.clone(), format!("{res}#{size_name}"))) {
            Some(&s) if s > 0.0 => s,
            _ => return Vec::new(),
        };
        let k = (svc, if res.is_empty() { used_name.to_owned() } else { res });
        let (q, h) = self.series.get_or_insert_with(k.clone(), Track::default);
        push_bounded(q, (m.at, size - used), self.points);
        let pts: Vec<(Timestamp, f64)> = q.iter().copied().collect();
        let usage = used / size;
        let tte = time_to_exhaustion(&pts, m.at);
        // A line is not extrapolated further than twice the span it was
        // fitted on (its prediction interval widens with the distance): with
        // 1 s windows a 30-point fit looks 60 s ahead, with 1 min windows
        // the configured horizon (30 min) applies.
        let span = pts.last().map_or(Duration::ZERO, |l| l.0 - pts[0].0);
        let horizon = self.horizon.min(Duration::from_millis(span.as_millis().saturating_mul(EXTRAPOLATION)));
        // A trend needs enough points to be one (t from 3 points is noise).
        let significant = pts.len() >= MIN_TREND_POINTS.min(self.points) && slope_t(&pts) <= -self.min_t;
        let value = match tte {
            Some(t) if usage >= self.min_usage && significant => horizon.as_secs_f64() / t.as_secs_f64().max(1e-3),
            _ if usage >= 0.999 && pts.len() >= 3 => 1e6, // already exhausted
            // Once fired, a resource still nearly used up stays firing (the
            // slope flattens at the ceiling; clearing there would flap).
            _ if h.is_firing() && usage >= 0.9 => self.hysteresis.fire,
            _ => 0.0,
        };
        match h.update(&self.hysteresis, value, now) {
            Transition::Fired { since } => {
                let subject = resource_subject(&k.0, &k.1);
                let Some(subject) = subject else { return Vec::new() };
                let mut f = finding(
                    "resource_exhaustion",
                    subject,
                    FailureModel::Exhaustion,
                    since,
                    value,
                    "time_to_exhaustion_s",
                    tte.map_or(0.0, |t| t.as_secs_f64()),
                    Some(usage),
                    Some(horizon.as_secs_f64()),
                    pts.last().map_or(Duration::ZERO, |l| l.0 - pts[0].0),
                );
                f.evidence.measure = format!("time_to_exhaustion_s (usage {:.0}%)", usage * 100.0);
                vec![f]
            }
            Transition::Cleared => {
                if let Some(subject) = resource_subject(&k.0, &k.1) {
                    self.cleared.push(("resource_exhaustion".to_owned(), subject));
                }
                Vec::new()
            }
            Transition::None => Vec::new(),
        }
    }
}

/// Queue depth growing away from its own baseline with a positive
/// least-squares slope (producer faster than consumer); time-to-full when a
/// `queue_capacity` metric is known. A queue that is merely busy but stable,
/// or wobbling around its usual depth, does not fire.
#[derive(Clone, Debug)]
pub struct QueueGrowthDetector {
    pub points: usize,
    /// Depth must exceed the baseline by at least this many items (20).
    pub min_depth: f64,
    pub hysteresis: HysteresisConfig,
    capacity: LruMap<String, f64>,
    series: LruMap<String, (Track, RobustBaseline)>,
    cleared: Vec<(String, crate::finding::Subject)>,
}

impl Default for QueueGrowthDetector {
    fn default() -> Self {
        QueueGrowthDetector {
            points: 6,
            min_depth: 20.0,
            // value = excess over max(min_depth, 4 MAD, baseline): the queue at
            // least doubled; 2 windows to fire, 3 to clear.
            hysteresis: HysteresisConfig::counted(1.0, 0.5, 2, CLEAR_WINDOWS),
            capacity: LruMap::new(MAX_TRACKED_KEYS),
            series: LruMap::new(MAX_TRACKED_KEYS),
            cleared: Vec::new(),
        }
    }
}

impl Detector for QueueGrowthDetector {
    fn reads_edges(&self) -> bool {
        false
    }
    fn name(&self) -> &'static str {
        "queue_growth"
    }
    fn evicted(&self) -> u64 {
        self.capacity.evicted() + self.series.evicted()
    }
    fn take_cleared(&mut self) -> Vec<(String, crate::finding::Subject)> {
        std::mem::take(&mut self.cleared)
    }
    fn clears(&self, kind: &str) -> bool {
        matches!(kind, "queue_growth")
    }
    fn observe(&mut self, signal: &Signal, now: Timestamp) -> Vec<Finding> {
        let Signal::Metric(m) = signal else { return Vec::new() };
        if !matches!(m.name.as_str(), "queue_capacity" | "queue_depth" | "consumer_lag") {
            return Vec::new();
        }
        let svc = m.service.as_ref().map(|s| s.as_str().to_owned()).unwrap_or_default();
        if m.name == "queue_capacity" {
            self.capacity.insert(svc, m.value);
            return Vec::new();
        }
        let ((q, h), base) = self.series.get_or_insert_with(svc.clone(), || (Track::default(), RobustBaseline::new(60, 5)));
        push_bounded(q, (m.at, m.value), self.points);
        let pts: Vec<(Timestamp, f64)> = q.iter().copied().collect();
        let slope = deriv(&pts).unwrap_or(0.0);
        let value = match base.stats() {
            Some((med, mad)) if pts.len() >= 3 && slope > 0.0 => (m.value - med) / self.min_depth.max(4.0 * mad).max(med),
            _ => 0.0,
        };
        let firing_before = !matches!(h.state, super::hysteresis::HState::Quiet);
        let t = h.update(&self.hysteresis, value, now);
        if !firing_before && !matches!(t, Transition::Fired { .. }) && matches!(h.state, super::hysteresis::HState::Quiet) {
            base.push(m.value);
        }
        match t {
            Transition::Fired { since } => {
                let Some(subject) = service_subject(&svc) else { return Vec::new() };
                let baseline = base.stats().map_or(0.0, |(b, _)| b);
                let time_to_full = self.capacity.get(&svc).filter(|_| slope > 0.0).map(|cap| (cap - m.value).max(0.0) / slope);
                let mut f = finding(
                    "queue_growth",
                    subject,
                    FailureModel::Exhaustion,
                    since,
                    value,
                    "queue_depth",
                    m.value,
                    Some(baseline),
                    Some(baseline + self.min_depth),
                    pts.last().map_or(Duration::ZERO, |l| l.0 - pts[0].0),
                );
                f.evidence.measure = match time_to_full {
                    Some(t) => format!("queue_depth (growing {:.1}/s, full in {t:.0}s)", slope),
                    None => format!("queue_depth (growing {:.1}/s)", slope),
                };
                vec![f]
            }
            Transition::Cleared => {
                if let Some(subject) = service_subject(&svc) {
                    self.cleared.push(("queue_growth".to_owned(), subject));
                }
                Vec::new()
            }
            Transition::None => Vec::new(),
        }
    }
}
