//! On-call schedules: rotations in an IANA time zone, layers, restrictions and
//! overrides, answering "who is on call at T", "which shifts cover [from, to)"
//! and "where is nobody on call".
//!
//! What it is: pure functions over a built [`Schedule`]. A [`ScheduleConfig`]
//! (serde, YAML or JSON) names a time zone, layers and overrides;
//! [`ScheduleConfig::build`] validates it into a [`Schedule`].
//!
//! Semantics (the contract the property tests check):
//! - **Handoffs are local wall-clock times.** A layer starts at a civil date and
//!   time in the schedule's zone (`start`), and hands off every `rotation`
//!   (`daily`, `weekly`, `{days: N}`, `{hours: N}`) in *civil* arithmetic: a
//!   daily 09:00 handoff is at 09:00 local on every day, whatever the UTC offset,
//!   and a 12-hour rotation stays at 08:00/20:00 across DST. A shift that
//!   spans a DST change is therefore an hour shorter or longer.
//! - **Gaps and folds.** A civil time that does not exist (spring forward)
//!   resolves to the instant the clocks jump (the first valid instant after the
//!   gap, e.g. 03:00 local). A civil time that occurs twice (fall back) resolves
//!   to its first occurrence. This resolution is monotonic, so shifts never
//!   overlap; a turn that collapses to zero length (two handoffs inside one gap)
//!   is skipped.
//! - **Restrictions** (daily or weekly windows, in the schedule's zone) limit
//!   when a layer is on call; outside them the layer is silent. Window ends are
//!   resolved the same way as handoffs.
//! - **Precedence:** a later layer wins over an earlier one wherever it is on
//!   call; an override wins over every layer; a later override wins over an
//!   earlier one.
//! - Time before a layer's `start` (or after its `end`) is not covered by it.
//!
//! Config (YAML or JSON):
//!
//! ```yaml
//! name: payments-primary
//! time_zone: Europe/London
//! layers:                       # bottom first; a later layer wins
//!   - name: weekly
//!     start: 2026-11-16T10:00:00  # local time of the first handoff
//!     rotation: weekly            # daily | weekly | {days: N} | {hours: N}
//!     participants: [alice, bob]
//!   - name: office-hours
//!     start: 2026-11-16T09:00:00
//!     rotation: daily
//!     participants: [carol]
//!     restrictions:
//!       - {type: daily, days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}
//!       # or {type: weekly, start_day: friday, start: "17:00", end_day: monday, end: "09:00"}
//! overrides:
//!   - {start: "2026-11-20T10:00:00Z", end: "2026-11-20T12:00:00Z", user: dave}
//! ```
//!
//! What it is not: it stores nothing, reads no clock, and does not decide who
//! gets *paged* (that is escalation). Zones come from jiff's tz database (the
//! system's zoneinfo when present, else the bundled copy).

use std::collections::BTreeMap;
use std::fmt;

use jiff::civil::{Date, DateTime, Time};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, ToSpan};
use serde::{Deserialize, Serialize};

use crate::ids::UserId;
use crate::time::Timestamp;

#[cfg(test)]
mod tests;

/// A day of the week, as config spells it (`monday` … `sunday`, or `mon` …).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    #[serde(alias = "mon")]
    Monday,
    #[serde(alias = "tue")]
    Tuesday,
    #[serde(alias = "wed")]
    Wednesday,
    #[serde(alias = "thu")]
    Thursday,
    #[serde(alias = "fri")]
    Friday,
    #[serde(alias = "sat")]
    Saturday,
    #[serde(alias = "sun")]
    Sunday,
}

impl Weekday {
    pub const ALL: [Weekday; 7] =
        [Weekday::Monday, Weekday::Tuesday, Weekday::Wednesday, Weekday::Thursday, Weekday::Friday, Weekday::Saturday, Weekday::Sunday];
    /// Monday = 0 … Sunday = 6.
    pub fn index(self) -> i64 {
        self as i64
    }
    pub fn from_jiff(w: jiff::civil::Weekday) -> Weekday {
        Weekday::ALL[usize::from(w.to_monday_zero_offset().unsigned_abs())]
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Weekday::Monday => "monday",
            Weekday::Tuesday => "tuesday",
            Weekday::Wednesday => "wednesday",
            Weekday::Thursday => "thursday",
            Weekday::Friday => "friday",
            Weekday::Saturday => "saturday",
            Weekday::Sunday => "sunday",
        }
    }
}

impl fmt::Display for Weekday {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How long each turn of a rotation lasts, in local wall-clock time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rotation {
    Daily,
    Weekly,
    Days(u32),
    Hours(u32),
}

impl Rotation {
    fn step_millis(self) -> Option<i64> {
        const H: i64 = 3_600_000;
        let hours = match self {
            Rotation::Daily => 24,
            Rotation::Weekly => 24 * 7,
            Rotation::Days(n) => i64::from(n) * 24,
            Rotation::Hours(n) => i64::from(n),
        };
        // At most ~10 years per turn: anything longer is a config mistake.
        (hours > 0 && hours <= 24 * 3660).then_some(hours * H)
    }
}

/// A window in the schedule's zone during which a layer is on call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Restriction {
    /// Every listed day (every day if `days` is empty) from `start` to `end`.
    /// `end <= start` wraps past midnight; `end == start` is the whole day.
    Daily {
        #[serde(default)]
        days: Vec<Weekday>,
        start: Time,
        end: Time,
    },
    /// Once a week, from `start_day start` to `end_day end` (wrapping over the
    /// week end; equal start and end is the whole week).
    Weekly { start_day: Weekday, start: Time, end_day: Weekday, end: Time },
}

/// One layer of a schedule: a rotation of participants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerConfig {
    pub name: String,
    /// Local date and time of the first handoff, e.g. `2026-01-05T09:00:00`.
    pub start: DateTime,
    /// Local date and time after which the layer no longer covers anything.
    #[serde(default)]
    pub end: Option<DateTime>,
    pub rotation: Rotation,
    /// Turn order: the first participant takes the turn that starts at `start`.
    pub participants: Vec<UserId>,
    #[serde(default)]
    pub restrictions: Vec<Restriction>,
}

/// A one-off replacement: `user` is on call from `start` to `end` (RFC 3339
/// instants), whatever the layers say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideConfig {
    pub start: jiff::Timestamp,
    pub end: jiff::Timestamp,
    pub user: UserId,
}

/// A schedule as written in config. Layers are listed bottom first: a later
/// layer wins where it is on call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub name: String,
    /// IANA zone name, e.g. `Europe/London`.
    pub time_zone: String,
    pub layers: Vec<LayerConfig>,
    #[serde(default)]
    pub overrides: Vec<OverrideConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("unknown time zone {0:?}")]
    UnknownTimeZone(String),
    #[error("schedule {0:?} has no layers")]
    NoLayers(String),
    #[error("layer {layer:?}: {reason}")]
    InvalidLayer { layer: String, reason: String },
    #[error("override {index}: {reason}")]
    InvalidOverride { index: usize, reason: String },
    #[error("range {from}..{to} is invalid: {reason}")]
    InvalidRange { from: Timestamp, to: Timestamp, reason: &'static str },
    #[error("range {from}..{to} holds more than {max} shifts; ask for a shorter range")]
    TooManyShifts { from: Timestamp, to: Timestamp, max: usize },
}

/// Most shifts one query may produce (about 11 years of hourly turns).
pub const MAX_SHIFTS: usize = 100_000;
/// Queries are limited to years 1900..=2200, well inside the tz database.
const MIN_MS: i64 = -2_208_988_800_000; // 1900-01-01T00:00:00Z
const MAX_MS: i64 = 7_258_118_400_000; // 2200-01-01T00:00:00Z

#[derive(Clone, Debug)]
struct Layer {
    name: String,
    start: DateTime,
    end: Option<DateTime>,
    step_ms: i64,
    participants: Vec<UserId>,
    restrictions: Vec<Restriction>,
}

#[derive(Clone, Debug)]
struct Override {
    start: i64,
    end: i64,
    user: UserId,
}

/// A validated schedule, ready to answer queries.
#[derive(Clone, Debug)]
pub struct Schedule {
    name: String,
    tz: TimeZone,
    tz_name: String,
    layers: Vec<Layer>,
    overrides: Vec<Override>,
}

/// Where a shift comes from.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ShiftSource {
    /// Turn `turn` (0 = the turn starting at the layer's `start`) of layer
    /// number `layer` (0 = bottom).
    Layer { layer: usize, name: String, turn: i64 },
    /// Override number `index` in config order.
    Override { index: usize },
}

impl fmt::Display for ShiftSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShiftSource::Layer { name, turn, .. } => write!(f, "layer {name} turn {turn}"),
            ShiftSource::Override { index } => write!(f, "override {index}"),
        }
    }
}

/// One stretch of the final schedule: `user` is on call during `[start, end)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shift {
    pub start: Timestamp,
    pub end: Timestamp,
    pub user: UserId,
    pub source: ShiftSource,
}

/// A stretch with nobody on call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    pub start: Timestamp,
    pub end: Timestamp,
}

/// A layer's handoff: turn `turn` starts at `at`, configured for `local`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handoff {
    pub turn: i64,
    pub local: DateTime,
    pub at: Timestamp,
    pub user: UserId,
}

/// The answer to "who covers [from, to)": the final shifts and the gaps,
/// which together tile the range exactly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Coverage {
    pub shifts: Vec<Shift>,
    pub gaps: Vec<Gap>,
}

impl ScheduleConfig {
    /// Validates the config and resolves its time zone.
    pub fn build(&self) -> Result<Schedule, ScheduleError> {
        let tz = jiff::tz::db().get(&self.time_zone).map_err(|_| ScheduleError::UnknownTimeZone(self.time_zone.clone()))?;
        if self.layers.is_empty() {
            return Err(ScheduleError::NoLayers(self.name.clone()));
        }
        let mut layers = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            let bad = |reason: &str| ScheduleError::InvalidLayer { layer: l.name.clone(), reason: reason.to_owned() };
            let step_ms = l.rotation.step_millis().ok_or_else(|| bad("rotation length must be 1 hour to 10 years"))?;
            if l.participants.is_empty() {
                return Err(bad("has no participants"));
            }
            if l.start.year() < 1900 || l.start.year() > 2199 {
                return Err(bad("start must be between 1900 and 2199"));
            }
            if let Some(end) = l.end
                && end <= l.start
            {
                return Err(bad("end must be after start"));
            }
            layers.push(Layer {
                name: l.name.clone(),
                start: l.start,
                end: l.end,
                step_ms,
                participants: l.participants.clone(),
                restrictions: l.restrictions.clone(),
            });
        }
        let mut overrides = Vec::with_capacity(self.overrides.len());
        for (index, o) in self.overrides.iter().enumerate() {
            let (start, end) = (o.start.as_millisecond(), o.end.as_millisecond());
            if end <= start {
                return Err(ScheduleError::InvalidOverride { index, reason: "end must be after start".into() });
            }
            overrides.push(Override { start, end, user: o.user.clone() });
        }
        Ok(Schedule { name: self.name.clone(), tz, tz_name: self.time_zone.clone(), layers, overrides })
    }
}

impl Schedule {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }
    pub fn time_zone_name(&self) -> &str {
        &self.tz_name
    }

    /// Who is on call at `at`, and through which shift. `None` when nobody is
    /// (a coverage gap) or `at` is outside years 1900..2200.
    pub fn who_is_on_call(&self, at: Timestamp) -> Option<Shift> {
        let c = self.coverage(at, at + crate::time::Duration::from_millis(1)).ok()?;
        let mut shift = c.shifts.into_iter().next()?;
        // Report the whole shift, not the 1 ms probe: widen to the full
        // stretch by asking about the shift's source around `at`.
        let full = self.full_shift_around(&shift, at);
        if let Some(f) = full {
            shift = f;
        }
        Some(shift)
    }

    /// The users on call at `at` (zero or one today; a list so callers do not
    /// change when shadowing or multi-user layers arrive).
    pub fn on_call_users(&self, at: Timestamp) -> Vec<UserId> {
        self.who_is_on_call(at).map(|s| vec![s.user]).unwrap_or_default()
    }

    /// The final shifts covering `[from, to)`, clipped to the range, in order.
    pub fn shifts_between(&self, from: Timestamp, to: Timestamp) -> Result<Vec<Shift>, ScheduleError> {
        Ok(self.coverage(from, to)?.shifts)
    }

    /// The stretches of `[from, to)` with nobody on call: the coverage-gap report.
    pub fn coverage_gaps(&self, from: Timestamp, to: Timestamp) -> Result<Vec<Gap>, ScheduleError> {
        Ok(self.coverage(from, to)?.gaps)
    }

    /// Shifts and gaps of `[from, to)`; together they tile the range exactly.
    pub fn coverage(&self, from: Timestamp, to: Timestamp) -> Result<Coverage, ScheduleError> {
        let (f, t) = (from.as_millis(), to.as_millis());
        if t <= f {
            return Err(ScheduleError::InvalidRange { from, to, reason: "end must be after start" });
        }
        if f < MIN_MS || t > MAX_MS {
            return Err(ScheduleError::InvalidRange { from, to, reason: "must lie within years 1900..2200" });
        }
        let too_many = || ScheduleError::TooManyShifts { from, to, max: MAX_SHIFTS };
        // Segments: (start, end, priority, user, source). Priority: layer index,
        // then overrides above every layer, later override above earlier.
        let mut segs: Vec<(i64, i64, usize, UserId, ShiftSource)> = Vec::new();
        for (li, layer) in self.layers.iter().enumerate() {
            for (s, e, turn) in self.layer_segments(layer, f, t).ok_or_else(too_many)? {
                let user = layer.participant(turn);
                segs.push((s, e, li, user, ShiftSource::Layer { layer: li, name: layer.name.clone(), turn }));
                if segs.len() > MAX_SHIFTS {
                    return Err(too_many());
                }
            }
        }
        for (oi, o) in self.overrides.iter().enumerate() {
            let (s, e) = (o.start.max(f), o.end.min(t));
            if s < e {
                segs.push((s, e, self.layers.len() + oi, o.user.clone(), ShiftSource::Override { index: oi }));
            }
        }
        Ok(sweep(&segs, f, t))
    }

    /// The handoffs of layer `layer` (0 = bottom) in `[from, to)`, ignoring
    /// restrictions and other layers: where each turn starts and what local
    /// time it was configured for.
    pub fn layer_handoffs(&self, layer: usize, from: Timestamp, to: Timestamp) -> Result<Vec<Handoff>, ScheduleError> {
        let Some(l) = self.layers.get(layer) else {
            return Ok(Vec::new());
        };
        let (f, t) = (from.as_millis(), to.as_millis());
        if t <= f || f < MIN_MS || t > MAX_MS {
            return Err(ScheduleError::InvalidRange { from, to, reason: "must be non-empty and within years 1900..2200" });
        }
        let mut out = Vec::new();
        let mut k =
            self.first_turn_at_or_after(l, f).ok_or(ScheduleError::InvalidRange { from, to, reason: "cannot be resolved in the schedule's time zone" })?;
        while let Some((local, at)) = l.turn_start(k).and_then(|local| Some((local, self.resolve(local)?))) {
            if at >= t {
                break;
            }
            if at >= f {
                out.push(Handoff { turn: k, local, at: Timestamp::from_millis(at), user: l.participant(k) });
            }
            if out.len() > MAX_SHIFTS {
                return Err(ScheduleError::TooManyShifts { from, to, max: MAX_SHIFTS });
            }
            k += 1;
        }
        Ok(out)
    }

    /// Local civil time of an instant in the schedule's zone.
    fn local(&self, ms: i64) -> Option<DateTime> {
        let ts = jiff::Timestamp::from_millisecond(ms).ok()?;
        Some(self.tz.to_datetime(ts))
    }

    /// Civil time to instant: a gap resolves to the instant the clocks jump,
    /// a fold to the first occurrence. Monotonic non-decreasing in `dt`.
    fn resolve(&self, dt: DateTime) -> Option<i64> {
        let amb = self.tz.to_ambiguous_timestamp(dt);
        match amb.offset() {
            AmbiguousOffset::Unambiguous { .. } | AmbiguousOffset::Fold { .. } => amb.earlier().ok().map(|t| t.as_millisecond()),
            AmbiguousOffset::Gap { .. } => {
                // `earlier()` in a gap is the instant before the transition;
                // the next transition after it is where the clocks jumped.
                let before = amb.earlier().ok()?;
                let transition = self.tz.following(before).next()?;
                Some(transition.timestamp().as_millisecond())
            }
        }
    }

    /// The smallest turn whose resolved start is at or after `ms`, or the turn
    /// in force at `ms` minus nothing: precisely, the turn `k >= 0` with
    /// `start(k-1) < ms <= start(k)`, or 0 before the layer starts.
    fn first_turn_at_or_after(&self, l: &Layer, ms: i64) -> Option<i64> {
        let k = self.turn_at(l, ms)?;
        match k {
            None => Some(0),
            Some(k) => {
                let start = self.resolve(l.turn_start(k)?)?;
                Some(if start >= ms { k } else { k + 1 })
            }
        }
    }

    /// The turn in force at instant `ms` (`None` before the first handoff),
    /// found from an estimate by civil difference and corrected against the
    /// resolved handoffs.
    fn turn_at(&self, l: &Layer, ms: i64) -> Option<Option<i64>> {
        let first = self.resolve(l.start)?;
        if ms < first {
            return Some(None);
        }
        let local = self.local(ms)?;
        let diff = local.duration_since(l.start).as_millis();
        let mut k = i64::try_from(diff.div_euclid(i128::from(l.step_ms))).ok()?.max(0);
        // The estimate is off by at most a turn or two around DST changes
        // (more only for zones that skipped whole days, e.g. Pacific/Apia 2011).
        for _ in 0..64 {
            let start_k = self.resolve(l.turn_start(k)?)?;
            if start_k > ms && k > 0 {
                k -= 1;
                continue;
            }
            let start_next = self.resolve(l.turn_start(k + 1)?)?;
            if start_next <= ms {
                k += 1;
                continue;
            }
            return Some(Some(k));
        }
        None
    }

    /// The layer's turns clipped to `[f, t)`, its end, and its restrictions:
    /// `(start, end, turn)`, non-empty and in order. `None` if too many.
    fn layer_segments(&self, l: &Layer, f: i64, t: i64) -> Option<Vec<(i64, i64, i64)>> {
        let layer_end = match l.end {
            Some(e) => self.resolve(e)?,
            None => i64::MAX,
        };
        let t = t.min(layer_end);
        let mut turns = Vec::new();
        if f >= t {
            return Some(turns);
        }
        let mut k = self.turn_at(l, f)?.unwrap_or(0);
        loop {
            let s = self.resolve(l.turn_start(k)?)?;
            if s >= t {
                break;
            }
            let e = self.resolve(l.turn_start(k + 1)?)?;
            let (cs, ce) = (s.max(f), e.min(t));
            if cs < ce {
                turns.push((cs, ce, k));
                if turns.len() > MAX_SHIFTS {
                    return None;
                }
            }
            k += 1;
        }
        if l.restrictions.is_empty() {
            return Some(turns);
        }
        let windows = self.restriction_windows(&l.restrictions, f, t)?;
        let mut out = Vec::new();
        let mut wi = 0;
        for (s, e, k) in turns {
            while wi < windows.len() && windows[wi].1 <= s {
                wi += 1;
            }
            let mut j = wi;
            while j < windows.len() && windows[j].0 < e {
                let (cs, ce) = (s.max(windows[j].0), e.min(windows[j].1));
                if cs < ce {
                    out.push((cs, ce, k));
                }
                j += 1;
            }
            if out.len() > MAX_SHIFTS {
                return None;
            }
        }
        Some(out)
    }

    /// The union of restriction windows overlapping `[f, t)`, as sorted,
    /// disjoint instant intervals.
    fn restriction_windows(&self, rs: &[Restriction], f: i64, t: i64) -> Option<Vec<(i64, i64)>> {
        const DAY: i64 = 86_400_000;
        let first: Date = self.local(f)?.date().checked_sub(8.days()).ok()?;
        let last: Date = self.local(t)?.date().checked_add(1.days()).ok()?;
        let mut ws = Vec::new();
        let mut d = first;
        while d <= last {
            let wd = Weekday::from_jiff(d.weekday());
            for r in rs {
                let (start_time, len_ms) = match r {
                    Restriction::Daily { days, start, end } => {
                        if !days.is_empty() && !days.contains(&wd) {
                            continue;
                        }
                        let len = time_ms(*end) - time_ms(*start);
                        (*start, if len <= 0 { len + DAY } else { len })
                    }
                    Restriction::Weekly { start_day, start, end_day, end } => {
                        if *start_day != wd {
                            continue;
                        }
                        let a = start_day.index() * DAY + time_ms(*start);
                        let b = end_day.index() * DAY + time_ms(*end);
                        let len = b - a;
                        (*start, if len <= 0 { len + 7 * DAY } else { len })
                    }
                };
                let ws_civil = d.to_datetime(start_time);
                let we_civil = ws_civil.checked_add(SignedDuration::from_millis(len_ms)).ok()?;
                let (s, e) = (self.resolve(ws_civil)?, self.resolve(we_civil)?);
                if s < e && e > f && s < t {
                    ws.push((s, e));
                }
            }
            d = d.checked_add(1.days()).ok()?;
        }
        ws.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(ws.len());
        for (s, e) in ws {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        Some(merged)
    }

    /// Widens a 1 ms probe shift to its full extent (bounded to a year either
    /// side, so the answer stays cheap).
    fn full_shift_around(&self, probe: &Shift, at: Timestamp) -> Option<Shift> {
        let year = crate::time::Duration::from_millis(366 * 86_400_000);
        let lo = Timestamp::from_millis((at - year).as_millis().max(MIN_MS));
        let hi = Timestamp::from_millis((at + year).as_millis().min(MAX_MS));
        // Scan outwards in growing windows so a short shift costs little.
        let mut span = crate::time::Duration::from_millis(8 * 86_400_000);
        loop {
            let from = Timestamp::from_millis((at - span).as_millis().max(lo.as_millis()));
            let to = Timestamp::from_millis((at + span).as_millis().min(hi.as_millis()));
            let shifts = self.shifts_between(from, to).ok()?;
            let s = shifts.into_iter().find(|s| s.start <= at && at < s.end && s.source == probe.source)?;
            let clipped = (s.start == from && from > lo) || (s.end == to && to < hi);
            if !clipped || span >= year {
                return Some(s);
            }
            span = span + span;
        }
    }
}

impl Layer {
    fn participant(&self, turn: i64) -> UserId {
        let n = self.participants.len() as i64;
        // Invariant: `build` rejects empty participant lists, so n >= 1 and
        // rem_euclid yields an index in 0..n.
        self.participants[usize::try_from(turn.rem_euclid(n)).unwrap_or(0)].clone()
    }
    fn turn_start(&self, k: i64) -> Option<DateTime> {
        let ms = k.checked_mul(self.step_ms)?;
        self.start.checked_add(SignedDuration::from_millis(ms)).ok()
    }
}

fn time_ms(t: Time) -> i64 {
    i64::from(t.hour()) * 3_600_000 + i64::from(t.minute()) * 60_000 + i64::from(t.second()) * 1000
}

/// Overlays prioritised segments on `[f, t)`: the highest priority active at
/// each instant wins. Each priority's segments are disjoint. Adjacent pieces
/// of the same segment source are merged; the uncovered remainder is gaps.
fn sweep(segs: &[(i64, i64, usize, UserId, ShiftSource)], f: i64, t: i64) -> Coverage {
    // Events: (time, is_start, segment index). Ends sort before starts at the
    // same time so a segment ending at T never covers T.
    let mut events: Vec<(i64, bool, usize)> = Vec::with_capacity(segs.len() * 2);
    for (i, s) in segs.iter().enumerate() {
        events.push((s.0, true, i));
        events.push((s.1, false, i));
    }
    events.sort_unstable_by_key(|&(time, is_start, i)| (time, is_start, i));
    let mut active: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut shifts: Vec<Shift> = Vec::new();
    let mut gaps: Vec<Gap> = Vec::new();
    let mut cursor = f;
    let mut ei = 0;
    while cursor < t {
        while ei < events.len() && events[ei].0 <= cursor {
            let (_, is_start, i) = events[ei];
            let entry = active.entry(segs[i].2).or_default();
            if is_start {
                entry.push(i);
            } else {
                entry.retain(|&x| x != i);
            }
            if entry.is_empty() {
                active.remove(&segs[i].2);
            }
            ei += 1;
        }
        let next = events.get(ei).map_or(t, |e| e.0.min(t));
        let winner = active.iter().next_back().and_then(|(_, v)| v.last().copied());
        match winner {
            Some(i) => {
                let (user, source) = (&segs[i].3, &segs[i].4);
                match shifts.last_mut() {
                    Some(last) if last.end.as_millis() == cursor && &last.user == user && &last.source == source => {
                        last.end = Timestamp::from_millis(next);
                    }
                    _ => shifts.push(Shift {
                        start: Timestamp::from_millis(cursor),
                        end: Timestamp::from_millis(next),
                        user: user.clone(),
                        source: source.clone(),
                    }),
                }
            }
            None => match gaps.last_mut() {
                Some(last) if last.end.as_millis() == cursor => last.end = Timestamp::from_millis(next),
                _ => gaps.push(Gap { start: Timestamp::from_millis(cursor), end: Timestamp::from_millis(next) }),
            },
        }
        cursor = next;
    }
    Coverage { shifts, gaps }
}
