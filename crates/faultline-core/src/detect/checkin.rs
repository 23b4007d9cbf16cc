//! Crash detection by missing check-ins, with healthchecks.io semantics:
//! a check is `simple` (period + grace), `cron` (5-field cron in an IANA time
//! zone, DST-safe via croner + jiff) or `oncalendar` (a systemd OnCalendar
//! subset); `/start` pings catch runs that never finish; `new`, `paused` and
//! `down` are sticky until the next ping. `CheckInMonitor` is the sans-IO
//! detector: `observe` pings, `tick(now)` reports checks that went down.
//!
//! Not here: the ping HTTP endpoints (server) or storing checks (store).

use std::collections::BTreeMap;
use std::str::FromStr as _;

use serde::{Deserialize, Serialize};

use super::{Detector, finding, literal_service};
use crate::finding::{FailureModel, Finding, Subject};
use crate::ids::ServiceName;
use crate::signal::{CheckInKind, Signal};
use crate::time::{Duration, Timestamp};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    Simple { period: Duration },
    Cron { expr: String, tz: String },
    OnCalendar { expr: String, tz: String },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckSpec {
    pub name: String,
    pub schedule: Schedule,
    pub grace: Duration,
    /// The service the job belongs to, for routing the finding.
    pub service: Option<ServiceName>,
}

impl CheckSpec {
    /// healthchecks.io defaults: simple, 1 day period, 1 hour grace.
    pub fn simple(name: &str) -> CheckSpec {
        CheckSpec { name: name.into(), schedule: Schedule::Simple { period: Duration::from_mins(24 * 60) }, grace: Duration::from_mins(60), service: None }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    New,
    Up,
    Grace,
    Down,
    Paused,
    Started,
}

/// What is stored per check between pings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckState {
    /// The stored status: new, up, down or paused.
    pub status: CheckStatus,
    pub last_ping: Option<Timestamp>,
    pub last_start: Option<Timestamp>,
}

impl Default for CheckState {
    fn default() -> Self {
        CheckState { status: CheckStatus::New, last_ping: None, last_start: None }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid cron expression {0:?}: {1}")]
    Cron(String, String),
    #[error("unknown time zone {0:?}")]
    TimeZone(String),
    #[error("unsupported OnCalendar expression {0:?}")]
    OnCalendar(String),
}

fn zone(tz: &str) -> Result<jiff::tz::TimeZone, ScheduleError> {
    jiff::tz::TimeZone::get(tz).map_err(|_| ScheduleError::TimeZone(tz.to_owned()))
}

/// Checks that a schedule is usable (cron parses, zone exists).
pub fn validate_schedule(s: &Schedule) -> Result<(), ScheduleError> {
    next_fire(s, Timestamp::EPOCH).map(|_| ())
}

/// The first scheduled instant strictly after `after` (None: never again).
pub fn next_fire(s: &Schedule, after: Timestamp) -> Result<Option<Timestamp>, ScheduleError> {
    match s {
        Schedule::Simple { period } => Ok(Some(after + *period)),
        Schedule::Cron { expr, tz } => {
            let cron = croner::Cron::from_str(expr).map_err(|e| ScheduleError::Cron(expr.clone(), e.to_string()))?;
            let z = after.to_jiff().to_zoned(zone(tz)?);
            match cron.find_next_occurrence(&z, false) {
                Ok(next) => Ok(Some(Timestamp::from_millis(next.timestamp().as_millisecond()))),
                Err(_) => Ok(None),
            }
        }
        Schedule::OnCalendar { expr, tz } => oncalendar_next(expr, &zone(tz)?, after),
    }
}

/// A field of an OnCalendar date or time: `*` or a number.
fn field(s: &str) -> Option<Option<i64>> {
    if s == "*" { Some(None) } else { s.parse().ok().map(Some) }
}

/// systemd OnCalendar subset: `minutely`, `hourly`, `daily`, `weekly`,
/// `monthly`, `yearly`, and `[YYYY-MM-DD] [HH:MM[:SS]]` with `*` wildcards.
fn oncalendar_next(expr: &str, tz: &jiff::tz::TimeZone, after: Timestamp) -> Result<Option<Timestamp>, ScheduleError> {
    let bad = || ScheduleError::OnCalendar(expr.to_owned());
    let normalized = match expr.trim() {
        "minutely" => "*-*-* *:*:00".to_owned(),
        "hourly" => "*-*-* *:00:00".to_owned(),
        "daily" => "*-*-* 00:00:00".to_owned(),
        "monthly" => "*-*-01 00:00:00".to_owned(),
        "yearly" | "annually" => "*-01-01 00:00:00".to_owned(),
        other => other.to_owned(),
    };
    let mut date = ("*", "*", "*");
    let mut time = ("00", "00", "00");
    for part in normalized.split_whitespace() {
        if part.contains('-') {
            let d: Vec<&str> = part.split('-').collect();
            if d.len() != 3 {
                return Err(bad());
            }
            date = (d[0], d[1], d[2]);
        } else if part.contains(':') {
            let t: Vec<&str> = part.split(':').collect();
            match t.len() {
                2 => time = (t[0], t[1], "00"),
                3 => time = (t[0], t[1], t[2]),
                _ => return Err(bad()),
            }
        } else {
            return Err(bad());
        }
    }
    let (y, mo, d) = (field(date.0).ok_or_else(bad)?, field(date.1).ok_or_else(bad)?, field(date.2).ok_or_else(bad)?);
    let (h, mi, s) = (field(time.0).ok_or_else(bad)?, field(time.1).ok_or_else(bad)?, field(time.2).ok_or_else(bad)?);
    let start = after.to_jiff().to_zoned(tz.clone()).date();
    let range = |f: Option<i64>, max: i64| -> Vec<i64> { f.map_or_else(|| (0..max).collect(), |v| vec![v]) };
    for day in 0..(366 * 4) {
        let Ok(date) = start.checked_add(jiff::Span::new().days(day)) else { break };
        if y.is_some_and(|y| y != date.year() as i64) || mo.is_some_and(|m| m != date.month() as i64) || d.is_some_and(|d| d != date.day() as i64) {
            if y.is_some_and(|y| (date.year() as i64) > y) {
                return Ok(None);
            }
            continue;
        }
        for hh in range(h, 24) {
            for mm in range(mi, 60) {
                for ss in range(s, 60) {
                    let Ok(dt) = jiff::civil::DateTime::new(date.year(), date.month(), date.day(), hh as i8, mm as i8, ss as i8, 0) else {
                        return Err(bad());
                    };
                    let Ok(z) = dt.to_zoned(tz.clone()) else { continue };
                    let t = Timestamp::from_millis(z.timestamp().as_millisecond());
                    if t > after {
                        return Ok(Some(t));
                    }
                }
            }
        }
    }
    Ok(None)
}

/// When the grace period starts (the next expected ping), or None.
pub fn grace_start(spec: &CheckSpec, state: &CheckState) -> Result<Option<Timestamp>, ScheduleError> {
    match state.last_ping {
        Some(p) => next_fire(&spec.schedule, p),
        None => Ok(None),
    }
}

/// The status at `now`; `with_started` shows a run in progress as `started`.
pub fn status_at(spec: &CheckSpec, state: &CheckState, now: Timestamp, with_started: bool) -> Result<CheckStatus, ScheduleError> {
    if let Some(s) = state.last_start {
        if now >= s + spec.grace {
            return Ok(CheckStatus::Down);
        }
        if with_started {
            return Ok(CheckStatus::Started);
        }
    }
    if matches!(state.status, CheckStatus::New | CheckStatus::Paused | CheckStatus::Down) {
        return Ok(state.status);
    }
    Ok(match grace_start(spec, state)? {
        Some(g) if now >= g + spec.grace => CheckStatus::Down,
        Some(g) if now >= g => CheckStatus::Grace,
        _ => CheckStatus::Up,
    })
}

/// The crash detector over check-ins.
#[derive(Clone, Debug, Default)]
pub struct CheckInMonitor {
    checks: BTreeMap<String, (CheckSpec, CheckState, bool)>,
}

impl CheckInMonitor {
    pub fn new() -> CheckInMonitor {
        CheckInMonitor::default()
    }
    /// Registers (or replaces) a check; its schedule must be valid.
    pub fn add_check(&mut self, spec: CheckSpec) -> Result<(), ScheduleError> {
        validate_schedule(&spec.schedule)?;
        self.checks.insert(spec.name.clone(), (spec, CheckState::default(), false));
        Ok(())
    }
    pub fn status(&self, name: &str, now: Timestamp) -> Option<CheckStatus> {
        let (spec, state, _) = self.checks.get(name)?;
        status_at(spec, state, now, true).ok()
    }
    fn subject(spec: &CheckSpec) -> Subject {
        match &spec.service {
            Some(s) => Subject::Resource { service: s.clone(), resource: format!("check-in {}", spec.name) },
            None => Subject::Resource { service: literal_service("check-ins"), resource: spec.name.clone() },
        }
    }
}

impl Detector for CheckInMonitor {
    fn reads_edges(&self) -> bool {
        false
    }
    fn name(&self) -> &'static str {
        "missed_check_in"
    }
    fn observe(&mut self, signal: &Signal, now: Timestamp) -> Vec<Finding> {
        let Signal::CheckIn(c) = signal else { return Vec::new() };
        let Some((spec, state, reported)) = self.checks.get_mut(&c.check) else { return Vec::new() };
        match c.kind {
            CheckInKind::Start => {
                state.last_start = Some(c.at);
                Vec::new()
            }
            CheckInKind::Success => {
                state.last_ping = Some(c.at);
                state.last_start = None;
                state.status = CheckStatus::Up;
                *reported = false;
                Vec::new()
            }
            CheckInKind::Fail => {
                state.last_ping = Some(c.at);
                state.last_start = None;
                state.status = CheckStatus::Down;
                if *reported {
                    return Vec::new();
                }
                *reported = true;
                vec![finding(
                    "check_in_failed",
                    CheckInMonitor::subject(spec),
                    FailureModel::Crash,
                    c.at.min(now),
                    1.0,
                    "check_in_fail_signal",
                    1.0,
                    None,
                    None,
                    Duration::ZERO,
                )]
            }
        }
    }
    fn tick(&mut self, now: Timestamp) -> Vec<Finding> {
        let mut out = Vec::new();
        for (spec, state, reported) in self.checks.values_mut() {
            if *reported || matches!(state.status, CheckStatus::New | CheckStatus::Paused) && state.last_start.is_none() {
                continue;
            }
            let Ok(CheckStatus::Down) = status_at(spec, state, now, false) else { continue };
            *reported = true;
            state.status = CheckStatus::Down;
            let (started, overdue_from) = match (state.last_start, grace_start(spec, state).ok().flatten()) {
                (Some(s), _) if now >= s + spec.grace => (s + spec.grace, s),
                (_, Some(g)) => (g + spec.grace, g),
                _ => (now, now),
            };
            out.push(finding(
                "missed_check_in",
                CheckInMonitor::subject(spec),
                FailureModel::Crash,
                started,
                1.0,
                "seconds_since_expected_ping",
                (now - overdue_from).as_secs_f64(),
                None,
                Some(spec.grace.as_secs_f64()),
                spec.grace,
            ));
        }
        out
    }
}
