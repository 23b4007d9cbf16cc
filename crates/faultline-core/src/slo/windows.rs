//! Multiwindow multi-burn-rate alert windows: which (short, long) window pairs
//! alert at which burn-rate factor and severity.
//!
//! Three schemes are expressible: the SRE Workbook defaults (14.4 / 6 / 3 / 1
//! on 1h / 6h / 1d / 3d, short = long / 12), Sloth's `AlertWindows` catalogues
//! (a percentage of the error budget per pair, factors derived from the SLO
//! period) and Pyrra's table (14 / 7 / 2 / 1, windows scaled to the SLO
//! window). Not here: evaluating a series (see `eval`).

use serde::{Deserialize, Serialize};

use super::duration::{format_duration, parse_duration};
use super::node::{Node, Sink, SpecErrors, join, parse_yaml_objects};
use crate::time::Duration;

/// Who gets told: a page wakes someone, a ticket waits for office hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertSeverity {
    Page,
    Ticket,
}

impl std::fmt::Display for AlertSeverity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AlertSeverity::Page => "page",
            AlertSeverity::Ticket => "ticket",
        })
    }
}

/// One alerting pair: fires when the error ratio over BOTH windows exceeds
/// `factor × error budget`, continuously for at least `for_`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BurnPair {
    /// e.g. `page_quick`, or `critical_1` for Pyrra's table.
    pub name: String,
    pub severity: AlertSeverity,
    pub short: Duration,
    pub long: Duration,
    /// Burn-rate factor (14.4 = budget gone in period / 14.4).
    pub factor: f64,
    /// The share of the budget (percent) this pair was derived from, if any.
    pub budget_percent: Option<f64>,
    /// Pending duration before firing (Pyrra's and OpenSLO's `for`/`alertAfter`).
    #[serde(default)]
    pub for_: Duration,
}

impl BurnPair {
    /// Fraction of the period's error budget consumed by the time a constant
    /// burn at `factor` trips the long window: `factor × long / period`.
    pub fn budget_consumed_at_fire(&self, period: Duration) -> f64 {
        self.factor * self.long.as_millis() as f64 / period.as_millis() as f64
    }
    /// How long the whole budget lasts at exactly this burn rate.
    pub fn exhaustion(&self, period: Duration) -> Duration {
        Duration::from_millis((period.as_millis() as f64 / self.factor).round() as i64)
    }
    pub fn label(&self) -> String {
        format!("{}/{}", format_duration(self.short), format_duration(self.long))
    }
}

/// A period plus its alerting pairs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertWindows {
    /// The SLO period the budget is measured over (30d, 28d, ...).
    pub period: Duration,
    pub pairs: Vec<BurnPair>,
}

const H: i64 = 3_600_000;
const M: i64 = 60_000;
const D: i64 = 24 * H;

/// Sloth's factor formula, in the same float64 operation order so factors are
/// bit-identical: `(percent / 100 × period_hours) / long_hours`.
pub fn factor_from_budget_percent(percent: f64, period: Duration, long: Duration) -> f64 {
    let period_h = period.as_millis() as f64 / H as f64;
    let long_h = long.as_millis() as f64 / H as f64;
    (percent / 100.0 * period_h) / long_h
}

/// One row of a windows table: (name, severity, budget percent, short, long).
pub type PercentRow<'a> = (&'a str, AlertSeverity, f64, Duration, Duration);

impl AlertWindows {
    /// The SRE Workbook's four pairs (chapter 5, approach 6) for a 30-day
    /// period: 14.4 on 1h/5m, 6 on 6h/30m (page), 3 on 1d/2h, 1 on 3d/6h (ticket).
    pub fn sre_workbook() -> AlertWindows {
        let period = Duration::from_millis(30 * D);
        let pair = |name: &str, severity, factor: f64, long: i64, pct: f64| BurnPair {
            name: name.into(),
            severity,
            short: Duration::from_millis(long / 12),
            long: Duration::from_millis(long),
            factor,
            budget_percent: Some(pct),
            for_: Duration::ZERO,
        };
        AlertWindows {
            period,
            pairs: vec![
                pair("page_quick", AlertSeverity::Page, 14.4, H, 2.0),
                pair("page_slow", AlertSeverity::Page, 6.0, 6 * H, 5.0),
                pair("ticket_quick", AlertSeverity::Ticket, 3.0, D, 10.0),
                pair("ticket_slow", AlertSeverity::Ticket, 1.0, 3 * D, 10.0),
            ],
        }
    }

    /// Pairs defined by the share of budget each may consume (Sloth's model).
    pub fn from_budget_percents(period: Duration, rows: &[PercentRow<'_>]) -> AlertWindows {
        AlertWindows {
            period,
            pairs: rows
                .iter()
                .map(|&(name, severity, pct, short, long)| BurnPair {
                    name: name.into(),
                    severity,
                    short,
                    long,
                    factor: factor_from_budget_percent(pct, period, long),
                    budget_percent: Some(pct),
                    for_: Duration::ZERO,
                })
                .collect(),
        }
    }

    /// The workbook's budget shares (2 % / 5 % / 10 % / 10 % on 1h / 6h / 1d /
    /// 3d) applied to any period: 14.4 / 6 / 3 / 1 at 30 days, 13.44 / 5.6 /
    /// 2.8 / 0.93 at 28 days (exactly what Sloth's google-28d catalogue does).
    pub fn google(period: Duration) -> AlertWindows {
        let d = Duration::from_millis;
        AlertWindows::from_budget_percents(
            period,
            &[
                ("page_quick", AlertSeverity::Page, 2.0, d(5 * M), d(H)),
                ("page_slow", AlertSeverity::Page, 5.0, d(30 * M), d(6 * H)),
                ("ticket_quick", AlertSeverity::Ticket, 10.0, d(2 * H), d(D)),
                ("ticket_slow", AlertSeverity::Ticket, 10.0, d(6 * H), d(3 * D)),
            ],
        )
    }

    /// Pyrra's table: factors 14 / 7 / 2 / 1 (critical, critical, warning,
    /// warning) on windows defined for 28 days and scaled by `window / 28d`,
    /// rounded to the minute (halves away from zero). Critical maps to page.
    pub fn pyrra(window: Duration) -> AlertWindows {
        const REF: i64 = 28 * D;
        let scale = |ms: i64| -> Duration {
            let scaled = (ms as i128 * window.as_millis() as i128) / REF as i128;
            let mins = (scaled + (M as i128) / 2).div_euclid(M as i128);
            Duration::from_millis((mins * M as i128) as i64)
        };
        let rows: [(&str, AlertSeverity, f64, i64, i64, i64); 4] = [
            ("critical_1", AlertSeverity::Page, 14.0, 5 * M, H, 2 * M),
            ("critical_2", AlertSeverity::Page, 7.0, 30 * M, 6 * H, 15 * M),
            ("warning_1", AlertSeverity::Ticket, 2.0, 2 * H, D, H),
            ("warning_2", AlertSeverity::Ticket, 1.0, 6 * H, 4 * D, 3 * H),
        ];
        AlertWindows {
            period: window,
            pairs: rows
                .iter()
                .map(|&(name, severity, factor, short, long, for_)| BurnPair {
                    name: name.into(),
                    severity,
                    short: scale(short),
                    long: scale(long),
                    factor,
                    budget_percent: None,
                    for_: scale(for_),
                })
                .collect(),
        }
    }

    /// Every distinct window any pair needs, ascending.
    pub fn distinct_windows(&self) -> Vec<Duration> {
        let mut w: Vec<Duration> = self.pairs.iter().flat_map(|p| [p.short, p.long]).collect();
        w.sort();
        w.dedup();
        w
    }

    /// Parses a Sloth `AlertWindows` catalogue (`apiVersion: sloth.slok.dev/v1`).
    pub fn from_sloth_catalogue(text: &str) -> Result<AlertWindows, SpecErrors> {
        let docs = parse_yaml_objects(text)?;
        let Some(doc) = docs.first() else {
            return Err(SpecErrors::single(0, "", "empty windows catalogue"));
        };
        let mut sink = Sink::new(0);
        let root = Node::root(doc);
        root.deny_unknown(&["apiVersion", "kind", "spec"], &mut sink);
        match root.opt_str("apiVersion", &mut sink).as_deref() {
            Some("sloth.slok.dev/v1") => {}
            other => sink.push("apiVersion", format!("unsupported apiVersion {other:?}, expected sloth.slok.dev/v1")),
        }
        if root.opt_str("kind", &mut sink).as_deref() != Some("AlertWindows") {
            sink.push("kind", "expected AlertWindows");
        }
        let mut rows = Vec::new();
        let mut period = Duration::ZERO;
        if let Some(spec) = root.opt_map("spec", &mut sink) {
            let spec = Node::at(spec, "spec");
            spec.deny_unknown(&["sloPeriod", "page", "ticket"], &mut sink);
            match spec.req_str("sloPeriod", &mut sink).map(|s| parse_duration(&s)) {
                Some(Ok(p)) if p > Duration::ZERO => period = p,
                Some(Ok(_)) => sink.push("spec.sloPeriod", "must be positive"),
                Some(Err(e)) => sink.push("spec.sloPeriod", e),
                None => {}
            }
            for (sev_key, severity) in [("page", AlertSeverity::Page), ("ticket", AlertSeverity::Ticket)] {
                let sev_path = join("spec", sev_key);
                let Some(sev) = spec.opt_map(sev_key, &mut sink) else {
                    sink.push(&sev_path, "property is required but was empty");
                    continue;
                };
                let sev = Node::at(sev, &sev_path);
                sev.deny_unknown(&["quick", "slow"], &mut sink);
                for speed in ["quick", "slow"] {
                    let path = join(&sev_path, speed);
                    let Some(w) = sev.opt_map(speed, &mut sink) else {
                        sink.push(&path, "property is required but was empty");
                        continue;
                    };
                    let w = Node::at(w, &path);
                    w.deny_unknown(&["errorBudgetPercent", "shortWindow", "longWindow"], &mut sink);
                    let pct = w.opt_f64("errorBudgetPercent", &mut sink);
                    if pct.is_none() && !w.has("errorBudgetPercent") {
                        sink.push(&join(&path, "errorBudgetPercent"), "property is required but was empty");
                    }
                    let mut dur = |key: &str| -> Option<Duration> {
                        let s = w.req_str(key, &mut sink)?;
                        match parse_duration(&s) {
                            Ok(d) if d > Duration::ZERO => Some(d),
                            Ok(_) => {
                                sink.push(&join(&path, key), "must be positive");
                                None
                            }
                            Err(e) => {
                                sink.push(&join(&path, key), e);
                                None
                            }
                        }
                    };
                    let (short, long) = (dur("shortWindow"), dur("longWindow"));
                    if let (Some(pct), Some(short), Some(long)) = (pct, short, long) {
                        if !(pct > 0.0 && pct <= 100.0) {
                            sink.push(&join(&path, "errorBudgetPercent"), "must be in (0, 100]");
                        }
                        if short >= long {
                            sink.push(&join(&path, "shortWindow"), "must be shorter than longWindow");
                        }
                        rows.push((format!("{sev_key}_{speed}"), severity, pct, short, long));
                    }
                }
            }
        } else {
            sink.push("spec", "property is required but was empty");
        }
        if !sink.errors.is_empty() {
            return Err(SpecErrors(sink.errors));
        }
        let rows: Vec<PercentRow<'_>> = rows.iter().map(|(n, s, p, a, b)| (n.as_str(), *s, *p, *a, *b)).collect();
        Ok(AlertWindows::from_budget_percents(period, &rows))
    }
}
