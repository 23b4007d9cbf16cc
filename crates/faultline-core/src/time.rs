//! Time as plain values: `Timestamp` (milliseconds since the Unix epoch, UTC)
//! and `Duration` (milliseconds).
//!
//! This module deliberately has no `now()`: the core never reads a clock.
//! Drivers (engine, simulator) pass `now` in. Millisecond resolution is what
//! incident timelines, windows and schedules need; sub-millisecond latency
//! lives in latency sketches, not in timestamps.

use std::fmt;
use std::ops::{Add, Sub};

use serde::{Deserialize, Serialize};

/// An instant, in milliseconds since 1970-01-01T00:00:00Z. Serialised as
/// RFC 3339 in UTC with milliseconds (`2026-11-21T18:00:00.000Z`), so every
/// JSON Faultline writes — the API's graph and chain views, files, its own
/// rows — says a time a person can read; an instant beyond ±9999 years
/// (no real one) is written as its milliseconds. Read back from either
/// form, so rows written as numbers by older versions still load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match jiff::Timestamp::from_millisecond(self.0) {
            Ok(t) => s.collect_str(&format_args!("{t:.3}")),
            Err(_) => s.serialize_i64(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 time such as 2026-11-21T18:00:00Z, or milliseconds since 1970")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Timestamp, E> {
                i64::try_from(v).map(Timestamp).map_err(|_| E::custom(format!("{v} ms is out of range")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse_rfc3339(v).map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A span of time in milliseconds. Negative durations are allowed (differences).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Duration(i64);

impl Timestamp {
    pub const EPOCH: Timestamp = Timestamp(0);

    pub const fn from_millis(ms: i64) -> Timestamp {
        Timestamp(ms)
    }
    pub const fn from_secs(s: i64) -> Timestamp {
        Timestamp(s.saturating_mul(1000))
    }
    pub const fn as_millis(self) -> i64 {
        self.0
    }
    /// Parses an RFC 3339 timestamp such as `2026-11-21T18:00:00Z`.
    pub fn parse_rfc3339(s: &str) -> Result<Timestamp, TimeParseError> {
        let ts: jiff::Timestamp = s.parse().map_err(|e: jiff::Error| TimeParseError { input: s.to_owned(), reason: e.to_string() })?;
        Ok(Timestamp(ts.as_millisecond()))
    }
    /// The same instant as a `jiff::Timestamp`, for zone-aware arithmetic.
    pub fn to_jiff(self) -> jiff::Timestamp {
        // Invariant: every i64 millisecond value within jiff's range (±9999 years)
        // converts; outside that range we clamp rather than panic.
        jiff::Timestamp::from_millisecond(self.0).unwrap_or(if self.0 < 0 { jiff::Timestamp::MIN } else { jiff::Timestamp::MAX })
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC with millisecond precision, e.g. `2026-11-21T18:00:00.000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.3}", self.to_jiff())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {input:?}: {reason}")]
pub struct TimeParseError {
    pub input: String,
    pub reason: String,
}

impl Duration {
    pub const ZERO: Duration = Duration(0);
    pub const fn from_millis(ms: i64) -> Duration {
        Duration(ms)
    }
    pub const fn from_secs(s: i64) -> Duration {
        Duration(s.saturating_mul(1000))
    }
    pub const fn from_mins(m: i64) -> Duration {
        Duration(m.saturating_mul(60_000))
    }
    pub const fn as_millis(self) -> i64 {
        self.0
    }
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }
}

impl Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(d.0))
    }
}
impl Sub<Duration> for Timestamp {
    type Output = Timestamp;
    fn sub(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(d.0))
    }
}
impl Sub for Timestamp {
    type Output = Duration;
    fn sub(self, other: Timestamp) -> Duration {
        Duration(self.0.saturating_sub(other.0))
    }
}
impl Add for Duration {
    type Output = Duration;
    fn add(self, d: Duration) -> Duration {
        Duration(self.0.saturating_add(d.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_through_display() {
        let t = Timestamp::parse_rfc3339("2026-11-21T18:00:00.250Z").unwrap();
        assert_eq!(t.to_string(), "2026-11-21T18:00:00.250Z");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn parse_rejects_garbage_with_the_input_named() {
        let err = Timestamp::parse_rfc3339("yesterday").unwrap_err();
        assert!(err.to_string().contains("yesterday"));
    }

    #[test]
    fn extreme_values_display_without_panicking() {
        assert!(!Timestamp::from_millis(i64::MAX).to_string().is_empty());
        assert!(!Timestamp::from_millis(i64::MIN).to_string().is_empty());
    }

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(Timestamp::from_millis(i64::MAX) + Duration::from_secs(1), Timestamp::from_millis(i64::MAX));
        assert_eq!(Timestamp::from_secs(10) - Timestamp::from_secs(4), Duration::from_secs(6));
    }
}
