//! Escalation policies as a sans-IO state machine: who gets paged for an
//! incident, when, and when to stop.
//!
//! What it is: an [`EscalationPolicy`] (levels of targets, a delay per level,
//! repeat rounds, an optional acknowledgement timeout) and a serializable
//! per-incident [`Escalation`] state. [`Escalation::observe`] (trigger,
//! acknowledge, resolve, reopen, silence) and [`Escalation::tick`] take `now`
//! and return [`Effect`]s as data: notify a user, wake me at T, record a
//! timeline line. The driver executes the effects and persists the state.
//!
//! Contracts:
//! - **Deterministic idempotency keys.** Every notification's key is built from
//!   the incident id, the reopen epoch, the restart cycle, the step (round ×
//!   level) and the recipient, never from `now`. Deadlines are computed from the
//!   previous deadline, not from when `tick` happens to run. A driver that
//!   crashes after sending but before persisting replays from its last
//!   persisted state, produces the same keys, and its outbox drops the repeats;
//!   a driver that was down past a deadline sends every page it owes (late,
//!   never lost).
//! - **Acknowledgement stops escalation.** With `ack_timeout_minutes`, an
//!   acknowledgement that is not followed by resolution within the timeout
//!   expires (the forgotten-ack case) and escalation restarts at the first
//!   level in a new cycle.
//! - **If we paged, we send the resolve.** On resolution every user paged in
//!   the current epoch gets exactly one resolve notification, whether or not a
//!   silence is in force.
//! - A silence defers pages that fall due while it lasts; it never drops the
//!   resolve.
//! - `Record` effects carry no key: a replayed batch yields the same
//!   `(at, text)` pairs, so the timeline writer dedups on them.
//!
//! Config (YAML or JSON):
//!
//! ```yaml
//! name: payments
//! repeat: 1                 # one more round after the first
//! ack_timeout_minutes: 30   # optional: forgotten acks restart escalation
//! levels:
//!   - {delay_minutes: 5, targets: [{schedule: payments-primary}]}
//!   - {delay_minutes: 10, targets: [{team: payments}, {user: carol}]}
//! fallback: [{team: platform}]  # told when nobody acknowledged (default: the team named like the policy)
//! ```
//!
//! What it is not: it does not choose the policy (routing does), send anything
//! (the engine's outbox does), or know contact methods (the notifier does).
//! Schedules and teams are resolved through the [`Directory`] trait at the
//! moment a level fires, and the resolved users are remembered for the resolve.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{IncidentId, TeamId, UserId};
use crate::oncall::Schedule;
use crate::time::{Duration, Timestamp};

#[cfg(test)]
mod tests;

/// Whom a level pages.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    User(UserId),
    /// Whoever is on call in this schedule when the level fires.
    Schedule(String),
    /// Every member of the team.
    Team(TeamId),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::User(u) => write!(f, "user:{u}"),
            Target::Schedule(s) => write!(f, "schedule:{s}"),
            Target::Team(t) => write!(f, "team:{t}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationLevel {
    pub targets: Vec<Target>,
    /// Minutes to wait for an acknowledgement before the next level.
    pub delay_minutes: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationPolicy {
    pub name: String,
    pub levels: Vec<EscalationLevel>,
    /// Extra rounds through all levels after the first (PagerDuty `num_loops`).
    #[serde(default)]
    pub repeat: u32,
    /// An acknowledgement older than this, without resolution, expires and
    /// escalation restarts at the first level.
    #[serde(default)]
    pub ack_timeout_minutes: Option<u32>,
    /// Told when every level of every round fired and nobody acknowledged.
    /// Empty: the team named like the policy, if there is one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallback: Vec<Target>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy {0:?} has no levels")]
    NoLevels(String),
    #[error("policy {policy:?} level {level}: {reason}")]
    InvalidLevel { policy: String, level: usize, reason: &'static str },
    #[error("policy {0:?}: repeat must be at most {MAX_REPEAT}")]
    TooManyRepeats(String),
    #[error("policy {0:?}: ack_timeout_minutes must be at least 1")]
    InvalidAckTimeout(String),
}

/// Most repeat rounds (PagerDuty allows 9 loops).
pub const MAX_REPEAT: u32 = 9;
/// Most targets a level may name.
pub const MAX_TARGETS: usize = 50;

impl EscalationPolicy {
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.levels.is_empty() {
            return Err(PolicyError::NoLevels(self.name.clone()));
        }
        for (i, l) in self.levels.iter().enumerate() {
            let bad = |reason| PolicyError::InvalidLevel { policy: self.name.clone(), level: i + 1, reason };
            if l.targets.is_empty() {
                return Err(bad("has no targets"));
            }
            if l.targets.len() > MAX_TARGETS {
                return Err(bad("has more than 50 targets"));
            }
            if l.delay_minutes == 0 {
                return Err(bad("delay_minutes must be at least 1"));
            }
        }
        if self.repeat > MAX_REPEAT {
            return Err(PolicyError::TooManyRepeats(self.name.clone()));
        }
        if self.ack_timeout_minutes == Some(0) {
            return Err(PolicyError::InvalidAckTimeout(self.name.clone()));
        }
        if self.fallback.len() > MAX_TARGETS {
            return Err(PolicyError::InvalidLevel { policy: self.name.clone(), level: 0, reason: "fallback has more than 50 targets" });
        }
        Ok(())
    }

    /// Targets naming a schedule or team the caller does not know: config
    /// validation reports these before a page silently resolves to nobody.
    pub fn unknown_targets(&self, is_known_schedule: &dyn Fn(&str) -> bool, is_known_team: &dyn Fn(&TeamId) -> bool) -> Vec<Target> {
        let mut out: Vec<Target> = Vec::new();
        for t in self.levels.iter().flat_map(|l| &l.targets).chain(&self.fallback) {
            let unknown = match t {
                Target::User(_) => false,
                Target::Schedule(s) => !is_known_schedule(s),
                Target::Team(team) => !is_known_team(team),
            };
            if unknown && !out.contains(t) {
                out.push(t.clone());
            }
        }
        out
    }

    fn steps(&self) -> u32 {
        // Levels are few (validated); the product stays tiny.
        (self.levels.len() as u32).saturating_mul(self.repeat.saturating_add(1))
    }

    fn level_of(&self, step: u32) -> Option<&EscalationLevel> {
        self.levels.get(step as usize % self.levels.len().max(1))
    }
}

/// Resolves schedules and teams to users at the moment a level fires.
pub trait Directory {
    fn team_members(&self, team: &TeamId) -> Vec<UserId>;
    /// Users on call in `schedule` at `at`; empty when nobody is or the
    /// schedule is unknown.
    fn on_call(&self, schedule: &str, at: Timestamp) -> Vec<UserId>;
}

/// A directory held in memory: teams and built schedules by name.
#[derive(Clone, Debug, Default)]
pub struct StaticDirectory {
    pub teams: BTreeMap<TeamId, Vec<UserId>>,
    pub schedules: BTreeMap<String, Schedule>,
}

impl Directory for StaticDirectory {
    fn team_members(&self, team: &TeamId) -> Vec<UserId> {
        self.teams.get(team).cloned().unwrap_or_default()
    }
    fn on_call(&self, schedule: &str, at: Timestamp) -> Vec<UserId> {
        self.schedules.get(schedule).map(|s| s.on_call_users(at)).unwrap_or_default()
    }
}

/// What happens to an incident, as far as escalation cares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EscalationInput {
    Triggered,
    Acknowledged {
        by: Option<UserId>,
    },
    Resolved,
    Reopened,
    /// Defer pages that fall due before `until` (a silence or maintenance
    /// window started matching the incident).
    Silenced {
        until: Timestamp,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyKind {
    /// A page: the incident needs you.
    Trigger,
    /// The incident you were paged for is resolved.
    Resolve,
}

impl NotifyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyKind::Trigger => "trigger",
            NotifyKind::Resolve => "resolve",
        }
    }
}

/// One notification to one user. Equal keys always carry equal content.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Notification {
    pub idempotency_key: String,
    pub incident: IncidentId,
    pub recipient: UserId,
    /// The policy target that led to this user (for a resolve: the target of
    /// the first page).
    pub target: Target,
    pub kind: NotifyKind,
    /// 1-based level and round of the page (of the first page, for a
    /// resolve); 0 and 0 for the fallback told when the policy is exhausted.
    pub level: u32,
    pub round: u32,
}

/// What the driver must do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    Notify(Notification),
    /// Call `tick` at (or after) this instant. Replaces any earlier wake-up.
    WakeAt {
        at: Timestamp,
    },
    /// Nothing more is scheduled: cancel any pending wake-up.
    CancelWake,
    /// A line for the incident timeline (actor: `system:escalation`).
    Record {
        at: Timestamp,
        text: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum Phase {
    /// Not triggered yet.
    Idle,
    /// Step `next_step` (round × levels + level, 0-based) fires at `next_at`.
    Escalating {
        cycle_started_at: Timestamp,
        next_step: u32,
        next_at: Timestamp,
    },
    /// Someone acknowledged; with a timeout, escalation restarts at `expires_at`.
    Acknowledged {
        at: Timestamp,
        by: Option<UserId>,
        expires_at: Option<Timestamp>,
    },
    /// Every level of every round fired and nobody acknowledged.
    Exhausted {
        at: Timestamp,
    },
    Resolved {
        at: Timestamp,
    },
}

/// Who was paged in the current epoch, for the resolve.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paged {
    pub target: Target,
    pub level: u32,
    pub round: u32,
    pub resolve_sent: bool,
}

/// The escalation state of one incident. Serializable: persist it after
/// executing each batch of effects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    pub incident: IncidentId,
    /// Incremented on reopen: a reopened incident pages anew.
    pub epoch: u32,
    /// Incremented when an acknowledgement expires and escalation restarts.
    pub cycle: u32,
    pub phase: Phase,
    /// Pages are deferred until this instant (silence / maintenance).
    pub silenced_until: Option<Timestamp>,
    pub paged: BTreeMap<UserId, Paged>,
}

impl Escalation {
    pub fn new(incident: IncidentId) -> Escalation {
        Escalation { incident, epoch: 0, cycle: 0, phase: Phase::Idle, silenced_until: None, paged: BTreeMap::new() }
    }

    /// When the driver should next call `tick`, if ever.
    pub fn next_wake(&self) -> Option<Timestamp> {
        match &self.phase {
            Phase::Escalating { next_at, .. } => Some(self.silenced_until.map_or(*next_at, |u| (*next_at).max(u))),
            Phase::Acknowledged { expires_at, .. } => *expires_at,
            _ => None,
        }
    }

    /// Applies one input at `now` and returns the effects to execute.
    pub fn observe(&mut self, policy: &EscalationPolicy, dir: &dyn Directory, input: EscalationInput, now: Timestamp) -> Vec<Effect> {
        let mut fx = Vec::new();
        match input {
            EscalationInput::Triggered => {
                if matches!(self.phase, Phase::Idle) {
                    self.phase = Phase::Escalating { cycle_started_at: now, next_step: 0, next_at: now };
                    fx.push(record(now, format!("escalation policy {} started", policy.name)));
                }
            }
            EscalationInput::Acknowledged { by } => {
                if matches!(self.phase, Phase::Escalating { .. } | Phase::Exhausted { .. }) {
                    let expires_at = policy.ack_timeout_minutes.map(|m| now + Duration::from_mins(i64::from(m)));
                    let who = by.as_ref().map_or("someone".to_owned(), |u| u.to_string());
                    let text = match expires_at {
                        Some(e) => format!("acknowledged by {who}: escalation stopped; the acknowledgement expires at {e}"),
                        None => format!("acknowledged by {who}: escalation stopped"),
                    };
                    fx.push(record(now, text));
                    self.phase = Phase::Acknowledged { at: now, by, expires_at };
                }
            }
            EscalationInput::Resolved => {
                if !matches!(self.phase, Phase::Resolved { .. } | Phase::Idle) {
                    self.phase = Phase::Resolved { at: now };
                    self.send_resolves(now, &mut fx);
                } else if matches!(self.phase, Phase::Idle) {
                    self.phase = Phase::Resolved { at: now };
                }
            }
            EscalationInput::Reopened => {
                if matches!(self.phase, Phase::Resolved { .. }) {
                    self.epoch += 1;
                    self.cycle = 0;
                    self.paged.clear();
                    self.silenced_until = None;
                    self.phase = Phase::Escalating { cycle_started_at: now, next_step: 0, next_at: now };
                    fx.push(record(now, format!("reopened: escalation policy {} starts again", policy.name)));
                }
            }
            EscalationInput::Silenced { until } => {
                if until > now {
                    self.silenced_until = Some(self.silenced_until.map_or(until, |u| u.max(until)));
                    fx.push(record(now, format!("silenced: pages deferred until {until}")));
                }
            }
        }
        fx.extend(self.tick(policy, dir, now));
        fx
    }

    /// Fires every step that is due at `now` (in deadline order, catching up
    /// after downtime) and returns the effects, ending with the next wake-up.
    pub fn tick(&mut self, policy: &EscalationPolicy, dir: &dyn Directory, now: Timestamp) -> Vec<Effect> {
        let mut fx = Vec::new();
        // A silence that ended by `now`: pages that fell due during it fire at
        // its end — including pages of a cycle restarted (by an expired
        // acknowledgement) inside the silence further down in this same tick.
        let mut silence_ended: Option<Timestamp> = None;
        if let Some(until) = self.silenced_until
            && until <= now
        {
            silence_ended = Some(until);
            self.silenced_until = None;
            // Pages deferred by the silence fire when it ends, and later
            // levels keep their delays from there (not all at once).
            if let Phase::Escalating { next_at, .. } = &mut self.phase
                && *next_at < until
            {
                *next_at = until;
            }
        }
        // Bounded: each iteration advances a step or changes phase, and the
        // number of steps per cycle is capped by validation.
        for _ in 0..=policy.steps().saturating_add(2) {
            match self.phase.clone() {
                Phase::Acknowledged { by, expires_at: Some(exp), .. } if exp <= now => {
                    self.cycle += 1;
                    let who = by.map_or("someone".to_owned(), |u| u.to_string());
                    fx.push(record(exp, format!("acknowledgement by {who} expired without resolution: escalation restarts at level 1")));
                    let first = match silence_ended {
                        Some(until) if exp < until => until,
                        _ => exp,
                    };
                    self.phase = Phase::Escalating { cycle_started_at: exp, next_step: 0, next_at: first };
                }
                Phase::Escalating { cycle_started_at, next_step, next_at } if next_at <= now => {
                    if self.silenced_until.is_some() {
                        break;
                    }
                    if next_step >= policy.steps() {
                        self.exhaust(policy, dir, next_at, &mut fx);
                        self.phase = Phase::Exhausted { at: next_at };
                        continue;
                    }
                    self.fire_step(policy, dir, next_step, next_at, &mut fx);
                    let delay = policy.level_of(next_step).map_or(1, |l| l.delay_minutes);
                    self.phase = Phase::Escalating { cycle_started_at, next_step: next_step + 1, next_at: next_at + Duration::from_mins(i64::from(delay)) };
                }
                _ => break,
            }
        }
        match self.next_wake() {
            Some(at) => fx.push(Effect::WakeAt { at }),
            None => fx.push(Effect::CancelWake),
        }
        fx
    }

    /// Nobody acknowledged: tell the policy's fallback (or the team named
    /// like the policy) once per cycle, and say so — an exhausted policy
    /// must never go quiet.
    fn exhaust(&mut self, policy: &EscalationPolicy, dir: &dyn Directory, at: Timestamp, fx: &mut Vec<Effect>) {
        let head = format!("escalation policy {} exhausted: nobody acknowledged after {} round(s)", policy.name, policy.repeat + 1);
        let targets: Vec<Target> = if policy.fallback.is_empty() {
            TeamId::new(&policy.name).ok().filter(|t| !dir.team_members(t).is_empty()).map(Target::Team).into_iter().collect()
        } else {
            policy.fallback.clone()
        };
        if targets.is_empty() {
            fx.push(record(at, format!("{head}; no fallback and no team named {}: nobody else notified", policy.name)));
            return;
        }
        let mut names = Vec::new();
        let mut sent: BTreeSet<UserId> = BTreeSet::new();
        for target in &targets {
            let users = match target {
                Target::User(u) => vec![u.clone()],
                Target::Schedule(s) => dir.on_call(s, at),
                Target::Team(t) => dir.team_members(t),
            };
            if users.is_empty() {
                names.push(format!("{target} resolves to nobody"));
            }
            for user in users {
                if !sent.insert(user.clone()) {
                    continue;
                }
                names.push(format!("{user} (via {target})"));
                self.paged.entry(user.clone()).or_insert(Paged { target: target.clone(), level: 0, round: 0, resolve_sent: false });
                fx.push(Effect::Notify(Notification {
                    idempotency_key: format!("{}/e{}/c{}/exhausted/{}/trigger", self.incident, self.epoch, self.cycle, user),
                    incident: self.incident,
                    recipient: user,
                    target: target.clone(),
                    kind: NotifyKind::Trigger,
                    level: 0,
                    round: 0,
                }));
            }
        }
        let which = if policy.fallback.is_empty() { "the policy's team notified" } else { "fallback notified" };
        fx.push(record(at, format!("{head}; {which}: {}", names.join(", "))));
    }

    fn fire_step(&mut self, policy: &EscalationPolicy, dir: &dyn Directory, step: u32, at: Timestamp, fx: &mut Vec<Effect>) {
        let n_levels = policy.levels.len().max(1) as u32;
        let (level, round) = (step % n_levels + 1, step / n_levels + 1);
        let Some(l) = policy.level_of(step) else { return };
        let mut sent: BTreeSet<UserId> = BTreeSet::new();
        let mut names = Vec::new();
        for target in &l.targets {
            let users = match target {
                Target::User(u) => vec![u.clone()],
                Target::Schedule(s) => dir.on_call(s, at),
                Target::Team(t) => dir.team_members(t),
            };
            if users.is_empty() {
                fx.push(record(at, format!("level {level} round {round}: {target} resolves to nobody")));
            }
            for user in users {
                if !sent.insert(user.clone()) {
                    continue;
                }
                names.push(format!("{user} (via {target})"));
                let key = format!("{}/e{}/c{}/s{}/{}/trigger", self.incident, self.epoch, self.cycle, step, user);
                self.paged.entry(user.clone()).or_insert(Paged { target: target.clone(), level, round, resolve_sent: false });
                fx.push(Effect::Notify(Notification {
                    idempotency_key: key,
                    incident: self.incident,
                    recipient: user,
                    target: target.clone(),
                    kind: NotifyKind::Trigger,
                    level,
                    round,
                }));
            }
        }
        if !names.is_empty() {
            fx.push(record(at, format!("level {level} round {round}: paged {}", names.join(", "))));
        }
    }

    fn send_resolves(&mut self, now: Timestamp, fx: &mut Vec<Effect>) {
        let mut names = Vec::new();
        for (user, p) in self.paged.iter_mut() {
            if p.resolve_sent {
                continue;
            }
            p.resolve_sent = true;
            names.push(user.to_string());
            fx.push(Effect::Notify(Notification {
                idempotency_key: format!("{}/e{}/{}/resolve", self.incident, self.epoch, user),
                incident: self.incident,
                recipient: user.clone(),
                target: p.target.clone(),
                kind: NotifyKind::Resolve,
                level: p.level,
                round: p.round,
            }));
        }
        if !names.is_empty() {
            fx.push(record(now, format!("resolved: resolve sent to everyone paged ({})", names.join(", "))));
        }
    }
}

fn record(at: Timestamp, text: String) -> Effect {
    Effect::Record { at, text }
}
