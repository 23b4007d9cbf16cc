//! Silences in the Alertmanager `/api/v2/silences` shape, and maintenance
//! windows.
//!
//! What it is: the wire-compatible [`Silence`] struct (`id`, `matchers`
//! `[{name, value, isRegex, isEqual}]`, `startsAt`, `endsAt`, `createdBy`,
//! `comment`, `status {state}`, `updatedAt`), its state at an instant
//! (pending / active / expired), validation, and matching labels against a
//! set of silences. A [`MaintenanceWindow`] is a named, planned silence that
//! the status page also shows as `under_maintenance`.
//!
//! What it is not: storage of silences or id generation (the server does
//! that and hands the core plain values).

use serde::{Deserialize, Serialize};

use super::matcher::{ApiMatcher, Labels, Matcher, MatcherError};
use crate::time::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceStatus {
    pub state: SilenceState,
}

/// A silence, field for field as Alertmanager's API v2 serves it (`id` and
/// `status` are empty/absent when a client posts a new one).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    #[serde(default)]
    pub id: String,
    pub matchers: Vec<ApiMatcher>,
    pub starts_at: jiff::Timestamp,
    pub ends_at: jiff::Timestamp,
    /// Required by validation; absent in a request, the server fills it
    /// from the token's user.
    #[serde(default)]
    pub created_by: String,
    pub comment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SilenceStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<jiff::Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SilenceError {
    #[error("silence has no matchers")]
    NoMatchers,
    #[error(transparent)]
    Matcher(#[from] MatcherError),
    #[error("silence must end after it starts")]
    EndsBeforeStart,
    #[error("createdBy must not be empty")]
    NoCreator,
    #[error("comment must not be empty")]
    NoComment,
    #[error("silence matches every alert (all matchers match the empty label set); add a matcher that requires a label")]
    MatchesEverything,
}

impl Silence {
    pub fn state(&self, now: Timestamp) -> SilenceState {
        let now = now.as_millis();
        if now < self.starts_at.as_millisecond() {
            SilenceState::Pending
        } else if now < self.ends_at.as_millisecond() {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    /// The same silence with `status` filled in for `now`, as GET returns it.
    pub fn with_status(mut self, now: Timestamp) -> Silence {
        self.status = Some(SilenceStatus { state: self.state(now) });
        self
    }

    /// Checks a posted silence the way Alertmanager does and compiles it.
    pub fn validate(&self) -> Result<CompiledSilence, SilenceError> {
        if self.matchers.is_empty() {
            return Err(SilenceError::NoMatchers);
        }
        let matchers = self.matchers.iter().map(ApiMatcher::compile).collect::<Result<Vec<_>, _>>()?;
        if self.ends_at <= self.starts_at {
            return Err(SilenceError::EndsBeforeStart);
        }
        if self.created_by.trim().is_empty() {
            return Err(SilenceError::NoCreator);
        }
        if self.comment.trim().is_empty() {
            return Err(SilenceError::NoComment);
        }
        if matchers.iter().all(|m| m.matches(&Labels::new())) {
            return Err(SilenceError::MatchesEverything);
        }
        Ok(CompiledSilence { silence: self.clone(), matchers })
    }
}

/// A validated silence with compiled matchers.
#[derive(Clone, Debug)]
pub struct CompiledSilence {
    pub silence: Silence,
    matchers: Vec<Matcher>,
}

impl CompiledSilence {
    /// Active at `now` and every matcher matches.
    pub fn silences(&self, labels: &Labels, now: Timestamp) -> bool {
        self.silence.state(now) == SilenceState::Active && self.matchers.iter().all(|m| m.matches(labels))
    }
}

/// A planned window during which matching incidents do not page and the
/// matching status-page components show `under_maintenance`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceWindow {
    pub name: String,
    pub matchers: Vec<Matcher>,
    pub starts_at: jiff::Timestamp,
    pub ends_at: jiff::Timestamp,
    #[serde(default)]
    pub description: String,
}

impl MaintenanceWindow {
    pub fn is_active(&self, now: Timestamp) -> bool {
        let n = now.as_millis();
        self.starts_at.as_millisecond() <= n && n < self.ends_at.as_millisecond()
    }
    pub fn applies(&self, labels: &Labels, now: Timestamp) -> bool {
        self.is_active(now) && self.matchers.iter().all(|m| m.matches(labels))
    }
}
