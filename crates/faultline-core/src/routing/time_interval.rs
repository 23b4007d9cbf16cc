//! Alertmanager `time_intervals`: named sets of recurring windows (times of
//! day, weekdays, days of month with negative values counting from the end,
//! months, years) evaluated in a `location` time zone (UTC by default).
//!
//! Semantics follow Alertmanager's documentation: an instant is inside one
//! interval when every field that is given matches (a missing field matches
//! everything); a named set matches when any of its intervals does. Times are
//! `HH:MM`, start inclusive, end exclusive, `24:00` allowed as an end. Day of
//! month `-1` is the last day of the month; a range reaching past the month's
//! start is clamped to it, and a range starting after the month's last day
//! does not match that month.
//!
//! What it is not: the decision to mute or activate a route (see `routing`).

use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRangeConfig {
    pub start_time: String,
    pub end_time: String,
}

/// One interval as written in config (all fields optional).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TimeIntervalConfig {
    #[serde(default)]
    pub times: Vec<TimeRangeConfig>,
    #[serde(default)]
    pub weekdays: Vec<String>,
    #[serde(default)]
    pub days_of_month: Vec<String>,
    #[serde(default)]
    pub months: Vec<String>,
    #[serde(default)]
    pub years: Vec<String>,
    #[serde(default)]
    pub location: Option<String>,
}

/// A named list of intervals, as in Alertmanager's top-level `time_intervals`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedTimeIntervalConfig {
    pub name: String,
    pub time_intervals: Vec<TimeIntervalConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time interval {field} {value:?}: {reason}")]
pub struct TimeIntervalError {
    pub field: &'static str,
    pub value: String,
    pub reason: &'static str,
}

/// A validated interval.
#[derive(Clone, Debug)]
pub struct TimeInterval {
    /// Minute-of-day ranges `[start, end)`.
    times: Vec<(i32, i32)>,
    /// Weekday ranges, Sunday = 0 … Saturday = 6 (Alertmanager numbering).
    weekdays: Vec<(i32, i32)>,
    days_of_month: Vec<(i32, i32)>,
    months: Vec<(i32, i32)>,
    years: Vec<(i32, i32)>,
    tz: TimeZone,
}

/// A validated named set.
#[derive(Clone, Debug)]
pub struct NamedTimeInterval {
    pub name: String,
    pub intervals: Vec<TimeInterval>,
}

const WEEKDAYS: [&str; 7] = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
const MONTHS: [&str; 12] = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december"];

fn bad(field: &'static str, value: &str, reason: &'static str) -> TimeIntervalError {
    TimeIntervalError { field, value: value.chars().take(64).collect(), reason }
}

fn parse_range(field: &'static str, s: &str, parse_one: &dyn Fn(&str) -> Option<i32>) -> Result<(i32, i32), TimeIntervalError> {
    let (a, b) = match s.split_once(':') {
        Some((a, b)) => (a, b),
        None => (s, s),
    };
    let a = parse_one(a.trim()).ok_or_else(|| bad(field, s, "unknown value"))?;
    let b = parse_one(b.trim()).ok_or_else(|| bad(field, s, "unknown value"))?;
    Ok((a, b))
}

fn name_or_number(names: &'static [&'static str], first: i32) -> impl Fn(&str) -> Option<i32> {
    move |s: &str| {
        let lower = s.to_ascii_lowercase();
        if let Some(i) = names.iter().position(|n| *n == lower) {
            return Some(i as i32 + first);
        }
        None
    }
}

fn parse_hhmm(s: &str) -> Option<i32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if (h == 24 && m == 0) || ((0..24).contains(&h) && (0..60).contains(&m)) { Some(h * 60 + m) } else { None }
}

impl TimeIntervalConfig {
    pub fn build(&self) -> Result<TimeInterval, TimeIntervalError> {
        let mut times = Vec::new();
        for t in &self.times {
            let s = parse_hhmm(&t.start_time).ok_or_else(|| bad("start_time", &t.start_time, "expected HH:MM"))?;
            let e = parse_hhmm(&t.end_time).ok_or_else(|| bad("end_time", &t.end_time, "expected HH:MM"))?;
            if s >= e {
                return Err(bad("times", &t.start_time, "start_time must be before end_time"));
            }
            if s == 24 * 60 {
                return Err(bad("start_time", &t.start_time, "24:00 is only valid as an end time"));
            }
            times.push((s, e));
        }
        let mut weekdays = Vec::new();
        for w in &self.weekdays {
            let (a, b) = parse_range("weekdays", w, &name_or_number(&WEEKDAYS, 0))?;
            if a > b {
                return Err(bad("weekdays", w, "start day cannot be after end day"));
            }
            weekdays.push((a, b));
        }
        let mut days_of_month = Vec::new();
        for d in &self.days_of_month {
            let (a, b) = parse_range("days_of_month", d, &|s: &str| s.parse::<i32>().ok())?;
            let ok = |v: i32| (1..=31).contains(&v) || (-31..=-1).contains(&v);
            if !ok(a) || !ok(b) {
                return Err(bad("days_of_month", d, "days must be 1..31 or -31..-1"));
            }
            if a < 0 && b > 0 {
                return Err(bad("days_of_month", d, "end day must be negative if start day is negative"));
            }
            if a.signum() == b.signum() && a > b {
                return Err(bad("days_of_month", d, "start day cannot be after end day"));
            }
            days_of_month.push((a, b));
        }
        let mut months = Vec::new();
        for m in &self.months {
            let names = name_or_number(&MONTHS, 1);
            let one = |s: &str| names(s).or_else(|| s.parse::<i32>().ok().filter(|n| (1..=12).contains(n)));
            let (a, b) = parse_range("months", m, &one)?;
            if a > b {
                return Err(bad("months", m, "start month cannot be after end month"));
            }
            months.push((a, b));
        }
        let mut years = Vec::new();
        for y in &self.years {
            let (a, b) = parse_range("years", y, &|s: &str| s.parse::<i32>().ok().filter(|n| (1..=9999).contains(n)))?;
            if a > b {
                return Err(bad("years", y, "start year cannot be after end year"));
            }
            years.push((a, b));
        }
        let tz = match &self.location {
            None => TimeZone::UTC,
            Some(l) if l == "Local" => return Err(bad("location", l, "Local is not allowed: name an IANA zone")),
            Some(l) => jiff::tz::db().get(l).map_err(|_| bad("location", l, "unknown time zone"))?,
        };
        Ok(TimeInterval { times, weekdays, days_of_month, months, years, tz })
    }
}

impl NamedTimeIntervalConfig {
    pub fn build(&self) -> Result<NamedTimeInterval, TimeIntervalError> {
        Ok(NamedTimeInterval { name: self.name.clone(), intervals: self.time_intervals.iter().map(TimeIntervalConfig::build).collect::<Result<_, _>>()? })
    }
}

impl NamedTimeInterval {
    pub fn contains(&self, t: Timestamp) -> bool {
        self.intervals.iter().any(|i| i.contains(t))
    }
}

impl TimeInterval {
    pub fn contains(&self, t: Timestamp) -> bool {
        let z = t.to_jiff().to_zoned(self.tz.clone());
        let in_any = |ranges: &[(i32, i32)], v: i32| ranges.is_empty() || ranges.iter().any(|&(a, b)| a <= v && v <= b);
        let minute = i32::from(z.hour()) * 60 + i32::from(z.minute());
        if !self.times.is_empty() && !self.times.iter().any(|&(s, e)| s <= minute && minute < e) {
            return false;
        }
        let wd = i32::from(z.weekday().to_sunday_zero_offset());
        if !in_any(&self.weekdays, wd) {
            return false;
        }
        if !self.days_of_month.is_empty() {
            let dim = i32::from(z.days_in_month());
            let day = i32::from(z.day());
            let hit = self.days_of_month.iter().any(|&(a, b)| {
                let begin = if a < 0 { dim + a + 1 } else { a };
                let end = if b < 0 { dim + b + 1 } else { b };
                if begin > dim {
                    return false;
                }
                let (begin, end) = (begin.clamp(1, dim), end.clamp(1, dim));
                begin <= day && day <= end
            });
            if !hit {
                return false;
            }
        }
        in_any(&self.months, i32::from(z.month())) && in_any(&self.years, i32::from(z.year()))
    }
}
