//! Diagnosis: rank the likely origins of a failure from metric series.
//!
//! Given per-service, per-resource and per-interaction series (and, where
//! known, the dependency graph), [`diagnose`] finds the change point itself
//! (it is never told when the fault started), scores every series against its
//! own pre-change baseline with a robust z-score (median and IQR/MAD), and
//! ranks the services that own the anomalous series. Proportions (successes
//! out of trials per bin, e.g. traces whose code path changed) are judged
//! over the whole post-change window at once, by the binomial tail of the
//! pooled share against the baseline's pooled rate, as a normal-equivalent z. Graph direction then
//! prefers the most downstream anomalous dependency that explains the
//! symptoms upstream of it (only a dependency whose anomaly began no later
//! than the caller's explains it), and onset order breaks near-ties. When
//! some series carry a fault-free reference recording at a finer resolution
//! (trace and log series), the change is located again among those alone
//! and every series is judged from there. Every candidate
//! carries the evidence behind its rank as human-readable reasons.
//!
//! What it is not: no IO, no clock, no learning across incidents. The same
//! parameters ([`DiagnosisConfig::default`]) are used for every input; nothing
//! is tuned per case. Series for flows (`Subject::Flow`) count as symptoms:
//! they help find the change point but are never origin candidates.

pub mod robust;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::finding::{OriginCandidate, Subject};
use crate::ids::ServiceName;
use crate::model::Interaction;
use crate::time::{Duration, Timestamp};

use robust::{Baseline, ScaleFloor};

/// What a series counts, which sets how its noise floor is estimated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SeriesKind {
    /// A level: CPU %, memory, latency, success ratio.
    #[default]
    Gauge,
    /// Events per bin (log lines, spans, errors): Poisson noise floor.
    Count,
    /// Successes out of trials per bin (e.g. traces whose code path changed
    /// out of all traces): each point's value is the successes and
    /// [`MetricSeries::trials`] holds the trials. Judged over the whole
    /// post-change window at once by a binomial tail against the baseline's
    /// pooled rate, not as a held per-bin level.
    Proportion,
}

/// One metric series about one subject, in time order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSeries {
    pub subject: Subject,
    /// What was measured, e.g. `cpu_usage_rate` or `log:PriceController#46`.
    pub measure: String,
    #[serde(default)]
    pub kind: SeriesKind,
    /// Samples; non-finite values count as missing. Need not be sorted.
    pub points: Vec<(Timestamp, f64)>,
    /// A symptom measured at the subject but caused elsewhere (e.g. a
    /// service's latency of its outgoing calls): it helps find the change
    /// point but is not evidence that the subject is the origin.
    #[serde(default)]
    pub symptom: bool,
    /// An interaction measure that either end of the call may cause (e.g.
    /// the network time between a client span and its server span). Its
    /// evidence is attributed to the caller or the callee by how
    /// consistently that end's other interactions moved (see [`diagnose`]).
    #[serde(default)]
    pub shared: bool,
    /// When set, the points up to this time are a known fault-free
    /// reference recording (e.g. a quiet minute kept for comparison): they,
    /// not the points before the change point, are the series' baseline,
    /// and only points after both the reference and the change point are
    /// judged.
    #[serde(default)]
    pub reference_until: Option<Timestamp>,
    /// For [`SeriesKind::Proportion`]: the trials behind each point, in the
    /// order of `points` (same length); empty for other kinds.
    #[serde(default)]
    pub trials: Vec<f64>,
    /// The smallest move of this measure that can matter, in its own unit
    /// (e.g. 10 millicores of CPU): the scale of its baseline is never taken
    /// below it, so a quiet series is not called anomalous for a change too
    /// small to affect anything. `None`: no such floor.
    #[serde(default)]
    pub min_scale: Option<f64>,
    /// The series already attributes its evidence down the call graph
    /// (e.g. a code-path change blamed only on the deepest changed service
    /// of each trace): when it is a service's strongest evidence, graph
    /// direction does not explain that service away by its callees again.
    #[serde(default)]
    pub attributed: bool,
}

/// Everything the diagnosis looks at.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct DiagnosisInput {
    pub series: Vec<MetricSeries>,
    /// Known caller → callee edges (may be empty).
    pub calls: Vec<Interaction>,
}

/// Parameters of the method. One set for every input; see `Default`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiagnosisConfig {
    /// A series needs this many points before a change point to have a baseline.
    pub min_baseline_points: usize,
    /// Points after a candidate change point whose median is compared with
    /// the baseline when searching for the change point.
    pub onset_points: usize,
    /// |z| at or above this is anomalous.
    pub anomaly_z: f64,
    /// Robust z-scores are clipped here when summed across series, so one
    /// series cannot decide the change point alone.
    pub z_cap: f64,
    /// Change-point candidates evaluated in the coarse pass (then refined).
    pub max_candidates: usize,
    /// A service whose anomalous callee scores at least this share of its own
    /// score is taken to be explained by that callee.
    pub explained_ratio: f64,
    /// Scale floor as a share of the baseline level, for gauges.
    pub relative_floor: f64,
    /// The change point is the latest local peak of the shift score that
    /// reaches this share of the largest peak (the most recent significant change).
    pub recent_ratio: f64,
    /// Calibrate each series by its own baseline: its z-scores are divided
    /// by the largest excursion its baseline shows (when that exceeds
    /// `anomaly_z`), so a series that often spikes counts less.
    pub calibrate: bool,
    /// A series with a fault-free reference needs this many reference points.
    pub min_reference_points: usize,
    /// Floor every scale at the series' own resolution (its smallest
    /// positive difference between values), so a flat series that moves by
    /// one quantum is not infinitely surprising.
    pub resolution_floor: bool,
    /// Put every series on one scale: a level's robust z is read as a
    /// Student-t statistic with this many degrees of freedom (a baseline of a
    /// few dozen points does not justify normal tails) and converted to the
    /// normal z of the same tail probability, so a z of 500 from a quiet
    /// baseline is "very unlikely", not 25 times more than a z of 20.
    /// Proportions already come as a tail probability. 0 keeps raw z.
    pub tail_dof: f64,
    /// Judge level series that carry a fault-free reference (trace/log
    /// derived) by the median of the whole post-change window instead of
    /// the most extreme held level. Such series come in 10 s bins and skip
    /// the bins where a call was not made, so "three consecutive points"
    /// can be three spikes a minute apart; a fault that matters moves the
    /// level for most of the window.
    pub window_levels: bool,
    /// With `tail_dof`: the most extreme of several post-change levels
    /// pays for the number of levels looked at (Bonferroni on −ln p).
    pub look_penalty: bool,
    /// Compare a callee's strength with its caller's on the −ln p scale
    /// (z²/2) rather than on z when deciding "explained by", and do not let
    /// a callee explain a caller when the callee's strongest evidence is
    /// that caller's own calls to it (a shared measure cannot say which end
    /// moved). Meant for use with `tail_dof`.
    pub explain_on_nats: bool,
    /// Share of its strength an explained service keeps as its score.
    pub explained_keep: f64,
    /// When series with a fault-free reference recording are present (trace
    /// and log series at a finer resolution than the metrics), locate the
    /// change again among those series alone, after their reference, and
    /// judge every series from that point: the coarse pass over minute
    /// metrics with twenty minutes of history often lands on an earlier,
    /// unrelated shift.
    pub local_change_point: bool,
    /// A series with a reference recording is judged against the reference
    /// together with its own points before the change point (everything
    /// known before the change), not the reference alone: a behaviour that
    /// recurs outside the reference minute is then not news.
    pub pool_pre_change: bool,
    /// A callee whose strongest evidence is the very calls this caller
    /// makes to it (a shared interaction measure, e.g. network time) does
    /// not explain that caller unless it is at least as strong: the measure
    /// cannot say which end moved, and a starved caller slows every one of
    /// its own outgoing calls.
    pub own_calls_never_explain: bool,
}

impl Default for DiagnosisConfig {
    fn default() -> Self {
        DiagnosisConfig {
            min_baseline_points: 10,
            onset_points: 3,
            anomaly_z: 3.0,
            z_cap: 10.0,
            max_candidates: 96,
            explained_ratio: 0.5,
            relative_floor: 0.05,
            recent_ratio: 0.8,
            calibrate: false,
            min_reference_points: 3,
            resolution_floor: true,
            tail_dof: 0.0,
            window_levels: true,
            look_penalty: false,
            explain_on_nats: false,
            explained_keep: 0.5,
            local_change_point: true,
            pool_pre_change: false,
            own_calls_never_explain: true,
        }
    }
}

/// The evidence of one series at the chosen change point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesEvidence {
    pub subject: Subject,
    pub measure: String,
    pub baseline_median: f64,
    pub baseline_scale: f64,
    /// The post-change value with the largest |z|.
    pub observed: f64,
    /// Signed robust z of `observed`.
    pub z: f64,
    /// First post-change sample with |z| ≥ `anomaly_z`.
    pub onset: Option<Timestamp>,
    /// From a series that attributes itself down the call graph (see
    /// [`MetricSeries::attributed`]).
    #[serde(default)]
    pub attributed: bool,
}

/// The score of one service, before and after graph direction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceScore {
    pub service: ServiceName,
    /// Largest |z| of its series.
    pub strength: f64,
    pub onset: Option<Timestamp>,
    /// Anomalous callees that explain this service's symptoms.
    pub explained_by: Vec<ServiceName>,
    /// Final ranking score.
    pub score: f64,
    /// Strongest series first (at most 3).
    pub evidence: Vec<SeriesEvidence>,
}

/// The result: the detected change point and the ranked candidates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub change_point: Option<Timestamp>,
    /// Most likely first, one per service.
    pub origins: Vec<OriginCandidate>,
    /// The same order as `origins`, with the numbers behind them.
    pub scores: Vec<ServiceScore>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DiagnoseError {
    #[error("no series has enough points to form a baseline (need {need} before a change)")]
    NotEnoughData { need: usize },
}

/// The service a subject's anomaly implicates, if any. An interaction
/// implicates its callee; a flow is a symptom, not a candidate.
pub fn owner(subject: &Subject) -> Option<&ServiceName> {
    match subject {
        Subject::Service { service } | Subject::Resource { service, .. } => Some(service),
        Subject::Interaction { interaction } => Some(&interaction.callee),
        Subject::Flow { .. } => None,
    }
}

/// A cleaned series: finite values, sorted by time.
struct Clean<'a> {
    src: &'a MetricSeries,
    t: Vec<Timestamp>,
    x: Vec<f64>,
    /// Proportions only: successes and trials per point (`x` is then
    /// successes / (trials + 1), the share used to find the change point).
    succ: Vec<f64>,
    trials: Vec<f64>,
    /// Median gap between consecutive samples.
    step: Duration,
    /// The smallest positive difference between two of its values: the
    /// series cannot tell changes finer than this apart from quantisation.
    resolution: f64,
}

impl Clean<'_> {
    fn floor(&self, cfg: &DiagnosisConfig) -> ScaleFloor {
        ScaleFloor {
            relative: cfg.relative_floor,
            poisson: self.src.kind == SeriesKind::Count,
            absolute: if cfg.resolution_floor { self.resolution.max(1e-9) } else { 1e-9 }.max(self.src.min_scale.unwrap_or(0.0)),
        }
    }
    /// Number of points strictly before `at`.
    fn split(&self, at: Timestamp) -> usize {
        self.t.partition_point(|&t| t < at)
    }
}

fn clean(input: &DiagnosisInput) -> Vec<Clean<'_>> {
    input
        .series
        .iter()
        .map(|s| {
            let prop = s.kind == SeriesKind::Proportion;
            let mut pts: Vec<(Timestamp, f64, f64)> = s
                .points
                .iter()
                .enumerate()
                .map(|(i, p)| (p.0, p.1, if prop { s.trials.get(i).copied().unwrap_or(f64::NAN) } else { 0.0 }))
                .filter(|p| if prop { p.1.is_finite() && p.2.is_finite() && p.1 >= 0.0 && p.2 >= p.1 } else { p.1.is_finite() })
                .collect();
            pts.sort_by_key(|p| p.0);
            let t: Vec<Timestamp> = pts.iter().map(|p| p.0).collect();
            let gaps: Vec<f64> = t.windows(2).map(|w| (w[1] - w[0]).as_millis() as f64).collect();
            let step = Duration::from_millis(robust::median(&gaps).unwrap_or(0.0) as i64);
            let x: Vec<f64> = pts.iter().map(|p| if prop { p.1 / (p.2 + 1.0) } else { p.1 }).collect();
            let (succ, trials) = if prop { pts.iter().map(|p| (p.1, p.2)).unzip() } else { (Vec::new(), Vec::new()) };
            let sorted = robust::sorted_finite(x.iter().copied());
            let resolution = sorted.windows(2).map(|w| w[1] - w[0]).filter(|d| *d > 0.0).fold(f64::INFINITY, f64::min);
            let resolution = if resolution.is_finite() { resolution } else { 0.0 };
            Clean { src: s, t, x, succ, trials, step, resolution }
        })
        .collect()
}

/// How strongly the series shift at `at`: the mean over all series of the
/// softly capped |z| against all earlier samples of the smaller of the first
/// post-change sample and the median of the first `onset_points` ones. A series takes part only when it
/// observes both sides of `at` closely (its nearest samples on each side are
/// within two of its own typical sampling steps): a gap in a series cannot
/// locate a change.
fn shift_score(series: &[&Clean<'_>], at: Timestamp, cfg: &DiagnosisConfig) -> f64 {
    let mut sum = 0.0;
    for s in series {
        let k = s.split(at);
        // A series with a reference recording needs that many reference
        // points and a candidate after the reference.
        let need = match s.src.reference_until {
            Some(r) if at > r => cfg.min_reference_points.max(1),
            Some(_) => usize::MAX,
            None => cfg.min_baseline_points,
        };
        if k < need || k + cfg.onset_points.max(1) > s.x.len() {
            continue;
        }
        let near = Duration::from_millis(s.step.as_millis().saturating_mul(2));
        if at - s.t[k - 1] > near || s.t[k] - at > near {
            continue;
        }
        let Some(base) = Baseline::fit(&s.x[..k], s.floor(cfg)) else { continue };
        let Some(post) = robust::median(&s.x[k..k + cfg.onset_points.max(1)]) else { continue };
        // The first sample must itself have moved, and the move must hold.
        let z = base.z(post).abs().min(base.z(s.x[k]).abs());
        sum += cfg.z_cap * (z / cfg.z_cap).tanh();
    }
    sum / series.len().max(1) as f64
}

/// Finds the change point: the time at which the series shift most, judged
/// only from the data. A coarse pass over at most `max_candidates` sample
/// times is refined between its best candidate's neighbours.
pub fn change_point(input: &DiagnosisInput, cfg: &DiagnosisConfig) -> Option<Timestamp> {
    let series = clean(input);
    find_change_point(&series, cfg)
}

fn find_change_point(series: &[Clean<'_>], cfg: &DiagnosisConfig) -> Option<Timestamp> {
    let times: Vec<Timestamp> = series.iter().flat_map(|s| s.t.iter().copied()).collect::<BTreeSet<_>>().into_iter().collect();
    let all: Vec<&Clean<'_>> = series.iter().collect();
    change_point_among(&all, &times, cfg)
}

/// The change located among the series that carry a fault-free reference
/// recording only, at their times after the reference (see
/// [`DiagnosisConfig::local_change_point`]); `None` without such series.
fn find_local_change_point(series: &[Clean<'_>], cfg: &DiagnosisConfig) -> Option<Timestamp> {
    let refs: Vec<&Clean<'_>> = series.iter().filter(|s| s.src.reference_until.is_some()).collect();
    let times: BTreeSet<Timestamp> = refs
        .iter()
        .flat_map(|s| {
            let r = s.src.reference_until;
            s.t.iter().copied().filter(move |t| r.is_some_and(|r| *t > r))
        })
        .collect();
    if times.is_empty() {
        return None;
    }
    change_point_among(&refs, &times.into_iter().collect::<Vec<_>>(), cfg)
}

fn change_point_among(series: &[&Clean<'_>], times: &[Timestamp], cfg: &DiagnosisConfig) -> Option<Timestamp> {
    if times.is_empty() {
        return None;
    }
    let stride = times.len().div_ceil(cfg.max_candidates.max(1)).max(1);
    let coarse: Vec<(usize, f64)> = (0..times.len()).step_by(stride).map(|i| (i, shift_score(series, times[i], cfg))).collect();
    let max = coarse.iter().map(|c| c.1).fold(0.0, f64::max);
    if max <= 0.0 {
        return None;
    }
    // The most recent significant change: the latest local maximum of the
    // shift score that reaches `recent_ratio` of the largest one. Earlier
    // changes in the window (an older, unrelated fault) are not this incident.
    let mut pick = None;
    for (j, &(i, sc)) in coarse.iter().enumerate() {
        let left = if j > 0 { coarse[j - 1].1 } else { f64::MIN };
        let right = coarse.get(j + 1).map_or(f64::MIN, |c| c.1);
        if sc >= cfg.recent_ratio * max && sc >= left && sc >= right {
            pick = Some(i);
        }
    }
    // Walk back to where that elevated stretch began: a sustained shift keeps
    // the score high after its onset, and the onset is the change point.
    let mut j = coarse.iter().position(|c| Some(c.0) == pick)?;
    while j > 0 && coarse[j - 1].1 >= cfg.recent_ratio * max {
        j -= 1;
    }
    let c = coarse[j].0;
    // Refine between the coarse neighbours.
    let mut best = (shift_score(series, times[c], cfg), c);
    if stride > 1 {
        let lo = c.saturating_sub(stride - 1);
        let hi = (c + stride).min(times.len());
        for (i, &t) in times.iter().enumerate().take(hi).skip(lo) {
            let sc = shift_score(series, t, cfg);
            if sc > best.0 {
                best = (sc, i);
            }
        }
    }
    Some(times[best.1])
}

/// Scores one series against its baseline before `at`.
fn series_evidence(s: &Clean<'_>, at: Timestamp, cfg: &DiagnosisConfig) -> Option<SeriesEvidence> {
    let (nb, k) = match s.src.reference_until {
        Some(r) => {
            let nr = s.t.partition_point(|&t| t <= r);
            if nr < cfg.min_reference_points {
                return None;
            }
            let k = s.split(at).max(nr);
            (if cfg.pool_pre_change { k } else { nr }, k)
        }
        None => (s.split(at), s.split(at)),
    };
    if (s.src.reference_until.is_none() && nb < cfg.min_baseline_points) || k >= s.x.len() {
        return None;
    }
    if s.src.kind == SeriesKind::Proportion {
        return proportion_evidence(s, nb, k, cfg);
    }
    let base = Baseline::fit(&s.x[..nb], s.floor(cfg))?;
    // A level counts when it is held: the median of each run of
    // `onset_points` consecutive post-change samples (a single spike is not a shift).
    let w = cfg.onset_points.max(1).min(s.x.len() - k);
    let base = if cfg.calibrate { calibrated(base, &s.x[..nb], w, cfg) } else { base };
    let mut best: Option<(f64, f64)> = None;
    let mut onset = None;
    for i in k..=(s.x.len() - w) {
        let Some(x) = robust::median(&s.x[i..i + w]) else { continue };
        let z = base.z(x);
        if onset.is_none() && z.abs() >= cfg.anomaly_z {
            onset = Some(s.t[i]);
        }
        if best.is_none_or(|(bz, _)| z.abs() > bz.abs()) {
            best = Some((z, x));
        }
    }
    if cfg.window_levels && s.src.reference_until.is_some() {
        // The whole post-change window as one level.
        let x = robust::median(&s.x[k..])?;
        best = Some((base.z(x), x));
    }
    let (z, observed) = best?;
    let dof = if cfg.tail_dof < 0.0 { nb.saturating_sub(1).max(1) as f64 } else { cfg.tail_dof };
    let looks = if cfg.window_levels && s.src.reference_until.is_some() { 1 } else { s.x.len() - w + 1 - k };
    let z = tail_z(z, dof);
    // The most extreme of `looks` levels: its tail probability is `looks`
    // times larger (Bonferroni), on the same −ln p scale.
    let z = if cfg.tail_dof != 0.0 && cfg.look_penalty { (z * z - 2.0 * (looks.max(1) as f64).ln()).max(0.0).sqrt().copysign(z) } else { z };
    Some(SeriesEvidence {
        subject: s.src.subject.clone(),
        measure: s.src.measure.clone(),
        baseline_median: base.median,
        baseline_scale: base.scale,
        observed,
        z,
        onset,
        attributed: s.src.attributed,
    })
}

/// The normal z with the same tail probability as a Student-t statistic `z`
/// with `dof` degrees of freedom (leading term of the log tail:
/// −ln p ≈ (ν+1)/2 · ln(1 + z²/ν), and −ln p = z²/2 for a normal), sign
/// kept. `dof` ≤ 0 returns `z` unchanged.
pub fn tail_z(z: f64, dof: f64) -> f64 {
    if dof <= 0.0 || !z.is_finite() {
        return z;
    }
    let q = ((dof + 1.0) * (z * z / dof).ln_1p()).sqrt();
    q.copysign(z)
}

/// −ln of the binomial upper tail P(X ≥ k | n, p) by its Chernoff bound
/// n·KL(k/n ‖ p) (0 when k/n ≤ p).
fn binomial_tail_nats(k: f64, n: f64, p: f64) -> f64 {
    if n <= 0.0 || k / n <= p {
        return 0.0;
    }
    let q = k / n;
    let a = if q > 0.0 { q * (q / p).ln() } else { 0.0 };
    let b = if q < 1.0 { (1.0 - q) * ((1.0 - q) / (1.0 - p)).ln() } else { 0.0 };
    n * (a + b)
}

/// A proportion series over the whole post-change window: its pooled share
/// of successes against the baseline's pooled rate (add-½ smoothed), as the
/// normal z of the binomial upper tail. Onset: the first post-change point
/// whose cumulative share since the change is itself anomalous.
fn proportion_evidence(s: &Clean<'_>, nb: usize, k: usize, cfg: &DiagnosisConfig) -> Option<SeriesEvidence> {
    let (k0, n0) = (s.succ[..nb].iter().sum::<f64>(), s.trials[..nb].iter().sum::<f64>());
    let p0 = (k0 + 0.5) / (n0 + 1.0);
    let (mut k1, mut n1) = (0.0, 0.0);
    let mut onset = None;
    for i in k..s.x.len() {
        k1 += s.succ[i];
        n1 += s.trials[i];
        if onset.is_none() && (2.0 * binomial_tail_nats(k1, n1, p0)).sqrt() >= cfg.anomaly_z {
            onset = Some(s.t[i]);
        }
    }
    if n1 <= 0.0 {
        return None;
    }
    let z = (2.0 * binomial_tail_nats(k1, n1, p0)).sqrt();
    Some(SeriesEvidence {
        subject: s.src.subject.clone(),
        measure: s.src.measure.clone(),
        baseline_median: p0,
        baseline_scale: (p0 * (1.0 - p0) / n1).sqrt(),
        observed: k1 / n1,
        z,
        onset,
        attributed: s.src.attributed,
    })
}

/// The baseline with its scale widened so that the largest excursion of the
/// baseline itself (medians of `w` consecutive samples, as post-change
/// levels are measured) sits at `anomaly_z`: a series is judged against its
/// own history of spikes, not against a normal model it does not follow.
fn calibrated(base: Baseline, sample: &[f64], w: usize, cfg: &DiagnosisConfig) -> Baseline {
    let mut q: f64 = 0.0;
    if sample.len() >= w {
        for i in 0..=(sample.len() - w) {
            if let Some(x) = robust::median(&sample[i..i + w]) {
                q = q.max(base.z(x).abs());
            }
        }
    }
    if q > cfg.anomaly_z { Baseline { median: base.median, scale: base.scale * q / cfg.anomaly_z } } else { base }
}

/// Ranks origin candidates. Deterministic: ties are broken by service name.
pub fn diagnose(input: &DiagnosisInput, cfg: &DiagnosisConfig) -> Result<Diagnosis, DiagnoseError> {
    let series = clean(input);
    let Some(at) = find_change_point(&series, cfg) else {
        return Err(DiagnoseError::NotEnoughData { need: cfg.min_baseline_points });
    };
    let at = if cfg.local_change_point { find_local_change_point(&series, cfg).unwrap_or(at) } else { at };

    // Per service: all its series' evidence, strongest first.
    let mut by_service: BTreeMap<ServiceName, Vec<SeriesEvidence>> = BTreeMap::new();
    let mut shared: Vec<(&Interaction, SeriesEvidence)> = Vec::new();
    for s in &series {
        if s.src.shared
            && let Subject::Interaction { interaction } = &s.src.subject
        {
            if let Some(ev) = series_evidence(s, at, cfg) {
                shared.push((interaction, ev));
            }
            continue;
        }
        let Some(svc) = owner(&s.src.subject) else { continue };
        if s.src.symptom {
            continue;
        }
        if let Some(ev) = series_evidence(s, at, cfg) {
            by_service.entry(svc.clone()).or_default().push(ev);
        }
    }
    for (svc, ev) in attribute_shared(&shared, cfg) {
        by_service.entry(svc).or_default().push(ev);
    }
    let mut scores: Vec<ServiceScore> = by_service
        .into_iter()
        .map(|(service, mut evs)| {
            evs.sort_by(|a, b| b.z.abs().total_cmp(&a.z.abs()));
            let strength = evs.first().map_or(0.0, |e| e.z.abs());
            let onset = evs.iter().filter_map(|e| e.onset).min();
            evs.truncate(3);
            ServiceScore { service, strength, onset, explained_by: Vec::new(), score: strength, evidence: evs }
        })
        .collect();

    apply_graph_direction(&mut scores, &input.calls, cfg);

    scores.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.onset.unwrap_or(Timestamp::from_millis(i64::MAX)).cmp(&b.onset.unwrap_or(Timestamp::from_millis(i64::MAX))))
            .then_with(|| a.service.cmp(&b.service))
    });
    let total: f64 = scores.iter().map(|s| s.score.max(0.0)).sum();
    let origins = scores
        .iter()
        .map(|s| OriginCandidate {
            subject: top_subject(s),
            confidence: if total > 0.0 { (s.score.max(0.0) / total).clamp(0.0, 1.0) } else { 0.0 },
            reasons: reasons(s, cfg),
        })
        .collect();
    Ok(Diagnosis { change_point: Some(at), origins, scores })
}

/// Attributes shared interaction evidence to services. For each service and
/// direction (its incoming calls, its outgoing calls) the increases (z > 0)
/// of its interactions are summed and divided by the number of those
/// interactions plus one: an end whose every call moved explains them (a
/// delayed callee slows all its callers' calls; a starved caller slows all
/// its outgoing calls), while an end with one odd interaction among many
/// does not. The pseudo-interaction in the denominator is a prior of one
/// unmoved call, so a single moved call is only half attributed to either end.
fn attribute_shared(shared: &[(&Interaction, SeriesEvidence)], cfg: &DiagnosisConfig) -> Vec<(ServiceName, SeriesEvidence)> {
    // (service, incoming?) -> evidences
    let mut ends: BTreeMap<(&ServiceName, bool), Vec<&SeriesEvidence>> = BTreeMap::new();
    for (i, ev) in shared {
        ends.entry((&i.callee, true)).or_default().push(ev);
        ends.entry((&i.caller, false)).or_default().push(ev);
    }
    let mut best: BTreeMap<ServiceName, SeriesEvidence> = BTreeMap::new();
    for ((svc, incoming), evs) in ends {
        let moved: Vec<&&SeriesEvidence> = evs.iter().filter(|e| e.z >= cfg.anomaly_z).collect();
        let Some(top) = moved.iter().max_by(|a, b| a.z.total_cmp(&b.z)) else { continue };
        let z = moved.iter().map(|e| e.z).sum::<f64>() / (evs.len() + 1) as f64;
        let ev = SeriesEvidence {
            subject: top.subject.clone(),
            measure: format!("{} ({} of {} {} calls moved)", top.measure, moved.len(), evs.len(), if incoming { "incoming" } else { "outgoing" }),
            baseline_median: top.baseline_median,
            baseline_scale: top.baseline_scale,
            observed: top.observed,
            z,
            onset: moved.iter().filter_map(|e| e.onset).min(),
            attributed: false,
        };
        if best.get(svc).is_none_or(|b| b.z < ev.z) {
            best.insert(svc.clone(), ev);
        }
    }
    best.into_iter().collect()
}

/// The candidate's subject: the resource or interaction behind its strongest
/// series when that names one, else the service.
fn top_subject(s: &ServiceScore) -> Subject {
    match s.evidence.first().map(|e| &e.subject) {
        Some(sub @ Subject::Resource { .. }) => sub.clone(),
        Some(sub @ Subject::Interaction { .. }) => sub.clone(),
        _ => Subject::Service { service: s.service.clone() },
    }
}

fn reasons(s: &ServiceScore, cfg: &DiagnosisConfig) -> Vec<String> {
    let mut out = Vec::new();
    for e in &s.evidence {
        let dir = if e.z >= 0.0 { "above" } else { "below" };
        out.push(format!(
            "{} {}: {:.4} is {:.1} robust σ {dir} its pre-change median {:.4}{}",
            e.subject,
            e.measure,
            e.observed,
            e.z.abs(),
            e.baseline_median,
            match e.onset {
                Some(t) => format!(", anomalous from {t}"),
                None => String::new(),
            }
        ));
    }
    if !s.explained_by.is_empty() {
        let names: Vec<&str> = s.explained_by.iter().map(ServiceName::as_str).collect();
        out.push(format!("symptoms explained by anomalous dependency {}", names.join(", ")));
    } else if s.strength >= cfg.anomaly_z {
        out.push("no anomalous downstream dependency explains it".to_owned());
    }
    out
}

/// Graph direction: a service whose (transitive) callee is anomalous with at
/// least `explained_ratio` of its strength, from no later than the service's
/// own onset, is explained by that callee; its
/// score is scaled down so the most downstream anomalous dependency ranks first.
fn apply_graph_direction(scores: &mut [ServiceScore], calls: &[Interaction], cfg: &DiagnosisConfig) {
    if calls.is_empty() {
        return;
    }
    let strength: BTreeMap<ServiceName, (f64, Option<Timestamp>)> = scores.iter().map(|s| (s.service.clone(), (s.strength, s.onset))).collect();
    // A callee whose strongest evidence is the very calls this caller makes
    // to it (a shared interaction measure) cannot tell which end moved.
    let top_call: BTreeMap<ServiceName, ServiceName> = scores
        .iter()
        .filter_map(|s| match s.evidence.first().map(|e| &e.subject) {
            Some(Subject::Interaction { interaction }) if interaction.callee == s.service => Some((s.service.clone(), interaction.caller.clone())),
            _ => None,
        })
        .collect();
    let mut callees: BTreeMap<&ServiceName, BTreeSet<&ServiceName>> = BTreeMap::new();
    for c in calls {
        if c.caller != c.callee {
            callees.entry(&c.caller).or_default().insert(&c.callee);
        }
    }
    for s in scores.iter_mut() {
        // Evidence already blamed on this service rather than on its
        // callees (its changed traces had no changed callee) is not
        // explained by those callees.
        if s.strength < cfg.anomaly_z || s.evidence.first().is_some_and(|e| e.attributed) {
            continue;
        }
        // Breadth-first over descendants.
        let mut seen: BTreeSet<&ServiceName> = BTreeSet::new();
        let mut frontier: Vec<&ServiceName> = callees.get(&s.service).map(|c| c.iter().copied().collect()).unwrap_or_default();
        let mut explained = Vec::new();
        while let Some(d) = frontier.pop() {
            if !seen.insert(d) || *d == s.service {
                continue;
            }
            let (ds, donset) = strength.get(d).copied().unwrap_or((0.0, None));
            // A callee explains a caller only when its own anomaly began no
            // later than the caller's: a consequence cannot precede its cause.
            let precedes = match (donset, s.onset) {
                (Some(a), Some(b)) => a <= b,
                (Some(_), None) => true,
                (None, _) => false,
            };
            let enough = if cfg.explain_on_nats { ds * ds >= cfg.explained_ratio * s.strength * s.strength } else { ds >= cfg.explained_ratio * s.strength };
            // A callee whose strongest evidence is this caller's own calls
            // to it explains the caller only when it is at least as strong
            // (a tie cannot say which end moved; then downstream wins).
            let own = top_call.get(d) == Some(&s.service);
            let own_calls = own && (cfg.explain_on_nats || (cfg.own_calls_never_explain && ds < s.strength));
            if precedes && ds >= cfg.anomaly_z && enough && !own_calls {
                explained.push(d.clone());
            }
            if let Some(next) = callees.get(d) {
                frontier.extend(next.iter().copied());
            }
        }
        if !explained.is_empty() {
            explained.sort();
            s.score = s.strength * cfg.explained_keep;
            s.explained_by = explained;
        }
    }
}
