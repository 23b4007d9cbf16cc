//! The offline SLO evaluator behind `faultline slo eval`: a CSV series parser,
//! the multiwindow multi-burn-rate evaluation over it, and table/JSON
//! renderers of the firing intervals and error budget.
//!
//! Semantics: each row counts the events in the interval that ENDS at its
//! timestamp (since the previous row). A window `w` evaluated at `t` covers
//! rows with timestamps in `(t - w, t]`, which is exactly what Prometheus 2.x
//! `rate()` over a closed range sees for counters sampled at the same steps.
//! The error ratio is `Σbad / Σtotal` (no ratio when `Σtotal = 0`). A pair
//! fires at `t` when both its windows exceed `factor × error budget`,
//! continuously for at least its `for_`. Not here: reading files (the caller
//! passes the CSV text) or the clock.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::duration::format_duration;
use super::spec::SloSpec;
use super::windows::AlertSeverity;
use crate::time::{Duration, Timestamp};

/// One row of a series: events in the interval ending at `at`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesRow {
    pub at: Timestamp,
    pub bad: f64,
    pub total: f64,
}

/// A CSV problem, with its 1-based line number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}")]
pub struct SeriesError {
    pub line: usize,
    pub kind: SeriesErrorKind,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SeriesErrorKind {
    #[error("empty input: expected a header `timestamp,good,total` or `timestamp,bad,total`")]
    Empty,
    #[error("bad header {0:?}: expected `timestamp,good,total` or `timestamp,bad,total`")]
    Header(String),
    #[error("expected 3 fields, found {0}")]
    FieldCount(usize),
    #[error("invalid timestamp {0:?} (RFC 3339 or Unix seconds)")]
    Timestamp(String),
    #[error("invalid {column} {value:?}: expected a finite non-negative number")]
    Number { column: &'static str, value: String },
    #[error("{column} ({value}) exceeds total ({total})")]
    ExceedsTotal { column: &'static str, value: String, total: String },
    #[error("timestamp {0} is not after the previous row's")]
    NotIncreasing(String),
}

/// Parses `timestamp,good,total` or `timestamp,bad,total` CSV (columns in any
/// order, header required). Timestamps are RFC 3339 or Unix seconds. Blank
/// lines and lines starting with `#` are skipped.
pub fn parse_series_csv(text: &str) -> Result<Vec<SeriesRow>, SeriesError> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let Some((hline, header)) = lines.next() else {
        return Err(SeriesError { line: 1, kind: SeriesErrorKind::Empty });
    };
    let cols: Vec<String> = header.split(',').map(|c| c.trim().to_ascii_lowercase()).collect();
    let pos = |name: &str| cols.iter().position(|c| c == name);
    let (ts_i, total_i) = match (pos("timestamp"), pos("total")) {
        (Some(a), Some(b)) if cols.len() == 3 => (a, b),
        _ => return Err(SeriesError { line: hline, kind: SeriesErrorKind::Header(header.to_owned()) }),
    };
    let (num_i, is_good, num_name) = match (pos("good"), pos("bad")) {
        (Some(g), None) => (g, true, "good"),
        (None, Some(b)) => (b, false, "bad"),
        _ => return Err(SeriesError { line: hline, kind: SeriesErrorKind::Header(header.to_owned()) }),
    };
    let mut out: Vec<SeriesRow> = Vec::new();
    for (line, l) in lines {
        let fields: Vec<&str> = l.split(',').map(str::trim).collect();
        if fields.len() != 3 {
            return Err(SeriesError { line, kind: SeriesErrorKind::FieldCount(fields.len()) });
        }
        let at = parse_ts(fields[ts_i]).ok_or_else(|| SeriesError { line, kind: SeriesErrorKind::Timestamp(fields[ts_i].to_owned()) })?;
        let num = |i: usize, column: &'static str| -> Result<f64, SeriesError> {
            match fields[i].parse::<f64>() {
                Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
                _ => Err(SeriesError { line, kind: SeriesErrorKind::Number { column, value: fields[i].to_owned() } }),
            }
        };
        let n = num(num_i, num_name)?;
        let total = num(total_i, "total")?;
        if n > total {
            return Err(SeriesError {
                line,
                kind: SeriesErrorKind::ExceedsTotal { column: num_name, value: fields[num_i].to_owned(), total: fields[total_i].to_owned() },
            });
        }
        if let Some(prev) = out.last()
            && at <= prev.at
        {
            return Err(SeriesError { line, kind: SeriesErrorKind::NotIncreasing(fields[ts_i].to_owned()) });
        }
        out.push(SeriesRow { at, bad: if is_good { total - n } else { n }, total });
    }
    Ok(out)
}

fn parse_ts(s: &str) -> Option<Timestamp> {
    if let Ok(secs) = s.parse::<i64>() {
        return secs.checked_mul(1000).map(Timestamp::from_millis);
    }
    if let Ok(secs) = s.parse::<f64>() {
        return (secs.is_finite() && secs.abs() < 1e15).then(|| Timestamp::from_millis((secs * 1000.0).round() as i64));
    }
    Timestamp::parse_rfc3339(s).ok()
}

/// One firing interval of one pair (or, with `pair == "any"`, of a severity).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertInterval {
    pub severity: AlertSeverity,
    pub pair: String,
    pub short: Duration,
    pub long: Duration,
    pub start: Timestamp,
    /// First evaluation at which it no longer fired; `None` = still firing at
    /// the end of the series.
    pub end: Option<Timestamp>,
    /// Highest long-window burn rate seen while firing.
    pub peak_burn: f64,
    /// Share of the period's budget consumed during the interval.
    pub budget_spent: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairSummary {
    pub name: String,
    pub severity: AlertSeverity,
    pub short: Duration,
    pub long: Duration,
    pub factor: f64,
    /// Error-ratio threshold = factor × error budget.
    pub threshold: f64,
    pub for_: Duration,
    /// Burn rates over the short and long window at the last row.
    pub burn_short: Option<f64>,
    pub burn_long: Option<f64>,
    pub firing_evaluations: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BudgetSummary {
    /// How much of the period the series covers (at most the period).
    pub covered: Duration,
    pub error_ratio: Option<f64>,
    pub burn_rate: Option<f64>,
    /// Share of the period's error budget consumed within the covered part.
    pub spent: f64,
    pub remaining: f64,
}

/// The result of evaluating one SLO over one series.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    pub slo: String,
    pub service: String,
    pub objective: f64,
    pub error_budget: f64,
    pub period: Duration,
    pub rows: usize,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub budget: BudgetSummary,
    pub pairs: Vec<PairSummary>,
    /// Per-pair firing intervals, in start order.
    pub alerts: Vec<AlertInterval>,
    /// Per-severity intervals (any pair of that severity firing).
    pub severities: Vec<AlertInterval>,
}

impl EvalReport {
    /// Whether a severity was firing at evaluation time `t`.
    pub fn severity_firing_at(&self, severity: AlertSeverity, t: Timestamp) -> bool {
        self.severities.iter().any(|i| i.severity == severity && i.start <= t && i.end.is_none_or(|e| t < e))
    }
}

/// Prefix sums of a series for O(1) window ratios.
struct Prefix {
    at: Vec<Timestamp>,
    bad: Vec<f64>,
    total: Vec<f64>,
}

impl Prefix {
    fn new(rows: &[SeriesRow]) -> Prefix {
        let mut bad = Vec::with_capacity(rows.len() + 1);
        let mut total = Vec::with_capacity(rows.len() + 1);
        bad.push(0.0);
        total.push(0.0);
        for r in rows {
            bad.push(bad[bad.len() - 1] + r.bad);
            total.push(total[total.len() - 1] + r.total);
        }
        Prefix { at: rows.iter().map(|r| r.at).collect(), bad, total }
    }
    /// Error ratio over rows `j..=i`.
    fn ratio(&self, j: usize, i: usize) -> Option<f64> {
        let t = self.total[i + 1] - self.total[j];
        (t > 0.0).then(|| (self.bad[i + 1] - self.bad[j]) / t)
    }
    /// For each row i, the first row index inside `(at_i - w, at_i]`.
    fn window_starts(&self, w: Duration) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.at.len());
        let mut j = 0;
        for i in 0..self.at.len() {
            let lo = self.at[i] - w;
            while j < i && self.at[j] <= lo {
                j += 1;
            }
            out.push(j);
        }
        out
    }
}

/// Evaluates every alerting pair of `spec` at every row of `rows` (rows must
/// be in increasing time order, as `parse_series_csv` guarantees).
pub fn eval_series(spec: &SloSpec, rows: &[SeriesRow]) -> EvalReport {
    let eb = spec.error_budget();
    let period = spec.period();
    let p = Prefix::new(rows);
    let n = rows.len();
    let step = typical_step(rows);
    let mut pairs = Vec::new();
    let mut alerts = Vec::new();
    // firing[pair][i]
    let mut firing_by_pair: Vec<(AlertSeverity, Vec<bool>)> = Vec::new();
    let mut long_burn_by_pair: Vec<Vec<f64>> = Vec::new();
    for pair in &spec.windows.pairs {
        let threshold = spec.threshold(pair.factor);
        let ss = p.window_starts(pair.short);
        let ls = p.window_starts(pair.long);
        let mut firing = vec![false; n];
        let mut long_burn = vec![0.0; n];
        let mut active_since: Option<Timestamp> = None;
        for i in 0..n {
            let rs = p.ratio(ss[i], i);
            let rl = p.ratio(ls[i], i);
            long_burn[i] = rl.map_or(0.0, |r| r / eb);
            let cond = matches!((rs, rl), (Some(a), Some(b)) if a > threshold && b > threshold);
            if cond {
                let since = *active_since.get_or_insert(rows[i].at);
                firing[i] = rows[i].at - since >= pair.for_;
            } else {
                active_since = None;
            }
        }
        let last = n.checked_sub(1);
        pairs.push(PairSummary {
            name: pair.name.clone(),
            severity: pair.severity,
            short: pair.short,
            long: pair.long,
            factor: pair.factor,
            threshold,
            for_: pair.for_,
            burn_short: last.and_then(|i| p.ratio(ss[i], i)).map(|r| r / eb),
            burn_long: last.and_then(|i| p.ratio(ls[i], i)).map(|r| r / eb),
            firing_evaluations: firing.iter().filter(|f| **f).count(),
        });
        for (s, e) in intervals(&firing) {
            alerts.push(make_interval(spec, rows, &p, step, pair.severity, &pair.name, pair.short, pair.long, s, e, &long_burn));
        }
        firing_by_pair.push((pair.severity, firing));
        long_burn_by_pair.push(long_burn);
    }
    alerts.sort_by_key(|a| (a.start, a.severity, a.pair.clone()));
    let mut severities = Vec::new();
    for sev in [AlertSeverity::Page, AlertSeverity::Ticket] {
        let idx: Vec<usize> = (0..firing_by_pair.len()).filter(|&k| firing_by_pair[k].0 == sev).collect();
        if idx.is_empty() {
            continue;
        }
        let any: Vec<bool> = (0..n).map(|i| idx.iter().any(|&k| firing_by_pair[k].1[i])).collect();
        let burn: Vec<f64> = (0..n).map(|i| idx.iter().map(|&k| long_burn_by_pair[k][i]).fold(0.0, f64::max)).collect();
        for (s, e) in intervals(&any) {
            severities.push(make_interval(spec, rows, &p, step, sev, "any", Duration::ZERO, Duration::ZERO, s, e, &burn));
        }
    }
    severities.sort_by_key(|a| (a.start, a.severity));
    let budget = budget_summary(spec, rows, &p, step);
    EvalReport {
        slo: spec.name.clone(),
        service: spec.service.clone(),
        objective: spec.objective.ratio(),
        error_budget: eb,
        period,
        rows: n,
        from: rows.first().map(|r| r.at),
        to: rows.last().map(|r| r.at),
        budget,
        pairs,
        alerts,
        severities,
    }
}

/// The most common gap between rows (the series resolution); 1 minute if
/// there are fewer than two rows.
fn typical_step(rows: &[SeriesRow]) -> Duration {
    let mut gaps: Vec<i64> = rows.windows(2).map(|w| (w[1].at - w[0].at).as_millis()).collect();
    if gaps.is_empty() {
        return Duration::from_mins(1);
    }
    gaps.sort_unstable();
    Duration::from_millis(gaps[gaps.len() / 2])
}

/// Runs of `true` as (first index, first index after the run or None).
fn intervals(flags: &[bool]) -> Vec<(usize, Option<usize>)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, &f) in flags.iter().enumerate() {
        match (f, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, Some(i)));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, None));
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn make_interval(
    spec: &SloSpec,
    rows: &[SeriesRow],
    p: &Prefix,
    step: Duration,
    severity: AlertSeverity,
    pair: &str,
    short: Duration,
    long: Duration,
    s: usize,
    e: Option<usize>,
    burn: &[f64],
) -> AlertInterval {
    let last = e.map_or(rows.len() - 1, |e| e - 1);
    let end_t = e.map_or(rows[rows.len() - 1].at + step, |e| rows[e].at);
    let dur = end_t - rows[s].at;
    let spent = p.ratio(s, last).map_or(0.0, |r| r / spec.error_budget() * dur.as_millis() as f64 / spec.period().as_millis() as f64);
    AlertInterval {
        severity,
        pair: pair.to_owned(),
        short,
        long,
        start: rows[s].at,
        end: e.map(|e| rows[e].at),
        peak_burn: burn[s..=last].iter().copied().fold(0.0, f64::max),
        budget_spent: spent,
    }
}

fn budget_summary(spec: &SloSpec, rows: &[SeriesRow], p: &Prefix, step: Duration) -> BudgetSummary {
    let period = spec.period();
    let Some(last) = rows.len().checked_sub(1) else {
        return BudgetSummary { covered: Duration::ZERO, error_ratio: None, burn_rate: None, spent: 0.0, remaining: 1.0 };
    };
    let starts = p.window_starts(period);
    let j = starts[last];
    let span = rows[last].at - rows[j].at + step;
    let covered = span.min(period);
    let ratio = p.ratio(j, last);
    let burn = ratio.map(|r| r / spec.error_budget());
    let spent = burn.map_or(0.0, |b| b * covered.as_millis() as f64 / period.as_millis() as f64);
    BudgetSummary { covered, error_ratio: ratio, burn_rate: burn, spent, remaining: 1.0 - spent }
}

fn fmt_opt(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| format!("{v:.2}"))
}

/// A human-readable report: budget, pairs and every firing interval.
pub fn render_table(report: &EvalReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "SLO {} (service {}): objective {}%, error budget {}, period {}",
        report.slo,
        report.service,
        report.objective * 100.0,
        report.error_budget,
        format_duration(report.period)
    );
    match (report.from, report.to) {
        (Some(a), Some(b)) => {
            let _ = writeln!(s, "series: {} rows from {a} to {b}", report.rows);
        }
        _ => {
            let _ = writeln!(s, "series: empty");
        }
    }
    let _ = writeln!(
        s,
        "budget over the last {}: burn {} | spent {:.1}% | remaining {:.1}%",
        format_duration(report.budget.covered),
        fmt_opt(report.budget.burn_rate),
        report.budget.spent * 100.0,
        report.budget.remaining * 100.0
    );
    let _ = writeln!(s);
    let _ = writeln!(s, "{:<14} {:<8} {:>11} {:>8} {:>10} {:>10} {:>10}", "pair", "severity", "windows", "factor", "burn now", "burn long", "firing");
    for p in &report.pairs {
        let _ = writeln!(
            s,
            "{:<14} {:<8} {:>11} {:>8} {:>10} {:>10} {:>10}",
            p.name,
            p.severity.to_string(),
            format!("{}/{}", format_duration(p.short), format_duration(p.long)),
            format!("{}", p.factor),
            fmt_opt(p.burn_short),
            fmt_opt(p.burn_long),
            p.firing_evaluations
        );
    }
    let _ = writeln!(s);
    if report.alerts.is_empty() {
        let _ = writeln!(s, "no alert fired");
        return s;
    }
    let _ = writeln!(s, "{:<8} {:<14} {:>11} {:<25} {:<25} {:>9} {:>9}", "severity", "pair", "windows", "start", "end", "peak burn", "budget");
    for a in &report.alerts {
        let _ = writeln!(
            s,
            "{:<8} {:<14} {:>11} {:<25} {:<25} {:>9.2} {:>8.2}%",
            a.severity.to_string(),
            a.pair,
            format!("{}/{}", format_duration(a.short), format_duration(a.long)),
            a.start.to_string(),
            a.end.map_or("(still firing)".to_owned(), |e| e.to_string()),
            a.peak_burn,
            a.budget_spent * 100.0
        );
    }
    s
}

/// The report as pretty JSON.
pub fn render_json(report: &EvalReport) -> String {
    // Invariant: EvalReport holds only strings, numbers, options and enums, so
    // serialisation cannot fail; non-finite floats become null.
    serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// Why `run_eval` could not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum SloEvalError {
    #[error(transparent)]
    Spec(#[from] super::node::SpecErrors),
    #[error("series: {0}")]
    Series(#[from] SeriesError),
    #[error("no SLO named {0:?} in the spec (have: {1})")]
    UnknownSlo(String, String),
}

/// Everything `faultline slo eval --spec FILE --series CSV [--slo NAME] [--json]`
/// does after reading the two files: load the spec (OpenSLO or Sloth), parse
/// the CSV, evaluate each selected SLO and render a table (or one JSON array).
pub fn run_eval(spec_text: &str, csv_text: &str, slo: Option<&str>, json: bool) -> Result<String, SloEvalError> {
    let specs = super::spec::load_slo_specs(spec_text, None)?;
    let rows = parse_series_csv(csv_text)?;
    let chosen: Vec<&SloSpec> = match slo {
        Some(name) => {
            let s: Vec<&SloSpec> = specs.iter().filter(|s| s.name == name).collect();
            if s.is_empty() {
                let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
                return Err(SloEvalError::UnknownSlo(name.to_owned(), names.join(", ")));
            }
            s
        }
        None => specs.iter().collect(),
    };
    let reports: Vec<EvalReport> = chosen.into_iter().map(|s| eval_series(s, &rows)).collect();
    Ok(if json {
        // Invariant: reports hold only serialisable data (see render_json).
        serde_json::to_string_pretty(&reports).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    } else {
        reports.iter().map(render_table).collect::<Vec<_>>().join("\n")
    })
}
