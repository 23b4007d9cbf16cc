//! The incident state machine. An incident's state is a fold of its timeline.
//!
//! Every change is a past-tense `IncidentEvent` wrapped in a `TimelineEvent`
//! with its sequence number, time and actor. Commands (`Command`) are checked
//! against the current state by `Incident::decide`, which returns the event to
//! append or a typed `TransitionError`; nothing here panics on a bad request or
//! on a corrupted timeline.
//!
//! Lifecycle: triggered → acknowledged → mitigated → resolved, with reopened
//! taking a resolved incident back to triggered. Acknowledging is optional
//! (an incident may be mitigated or resolved straight from triggered).
//!
//! Not here: persistence (the store appends events with optimistic
//! concurrency), ids and clocks (the driver passes them in), routing and
//! notification (later response modules react to events).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::finding::{CausalChain, FailureModel, IncidentClass};
use crate::ids::{FlowName, IncidentId, ServiceName, TeamId, UserId};
use crate::time::Timestamp;

pub mod metrics;
#[cfg(test)]
mod tests;
pub mod title;

/// SEV1 core flow down / SLO fast burn; SEV2 degraded, workaround exists;
/// SEV3 minor. Ordered so that `Sev1 < Sev2`: "more severe sorts first".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    #[serde(rename = "SEV1")]
    Sev1,
    #[serde(rename = "SEV2")]
    Sev2,
    #[serde(rename = "SEV3")]
    Sev3,
}

impl Severity {
    pub const ALL: [Severity; 3] = [Severity::Sev1, Severity::Sev2, Severity::Sev3];
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Sev1 => "SEV1",
            Severity::Sev2 => "SEV2",
            Severity::Sev3 => "SEV3",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?}: expected SEV1, SEV2 or SEV3")]
pub struct SeverityParseError(pub String);

impl FromStr for Severity {
    type Err = SeverityParseError;
    /// Accepts `SEV1`, `sev1` and `1`.
    fn from_str(s: &str) -> Result<Severity, SeverityParseError> {
        let t = s.trim();
        let digits = t.strip_prefix("SEV").or_else(|| t.strip_prefix("sev")).unwrap_or(t);
        match digits {
            "1" => Ok(Severity::Sev1),
            "2" => Ok(Severity::Sev2),
            "3" => Ok(Severity::Sev3),
            _ => Err(SeverityParseError(s.chars().take(32).collect())),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Triggered,
    Acknowledged,
    Mitigated,
    Resolved,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Triggered => "triggered",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Mitigated => "mitigated",
            IncidentStatus::Resolved => "resolved",
        }
    }
    /// Open means "still needs people": anything but resolved.
    pub fn is_open(self) -> bool {
        self != IncidentStatus::Resolved
    }
}

impl fmt::Display for IncidentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IncidentStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<IncidentStatus, String> {
        match s {
            "triggered" => Ok(IncidentStatus::Triggered),
            "acknowledged" => Ok(IncidentStatus::Acknowledged),
            "mitigated" => Ok(IncidentStatus::Mitigated),
            "resolved" => Ok(IncidentStatus::Resolved),
            other => Err(format!("unknown status {other:?}: expected triggered, acknowledged, mitigated or resolved")),
        }
    }
}

/// A response role. Custom roles are free-form names (e.g. `customer_liaison`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Role {
    IncidentCommander,
    CommsLead,
    Scribe,
    Custom(String),
}

impl From<String> for Role {
    fn from(s: String) -> Role {
        match s.as_str() {
            "incident_commander" | "commander" => Role::IncidentCommander,
            "comms_lead" | "comms" => Role::CommsLead,
            "scribe" => Role::Scribe,
            _ => Role::Custom(s),
        }
    }
}

impl From<Role> for String {
    fn from(r: Role) -> String {
        r.to_string()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::IncidentCommander => f.write_str("incident_commander"),
            Role::CommsLead => f.write_str("comms_lead"),
            Role::Scribe => f.write_str("scribe"),
            Role::Custom(s) => f.write_str(s),
        }
    }
}

/// Who did something. Every timeline event names one.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Actor {
    /// A person.
    User(UserId),
    /// An API token, by its name (tokens act for automation or a person).
    Token(String),
    /// A Faultline component, e.g. `correlator`, `escalation`.
    System(String),
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User(u) => write!(f, "user:{u}"),
            Actor::Token(t) => write!(f, "token:{t}"),
            Actor::System(s) => write!(f, "system:{s}"),
        }
    }
}

/// The services, flows and owning team a person names when declaring an
/// incident by hand: the response routes on them as it routes on the
/// services and flows a detector's symptoms name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeclaredScope {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceName>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flows: Vec<FlowName>,
    /// The team that owns the response, whatever the catalogue says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<TeamId>,
}

/// Most services (or flows) a declaration may name.
pub const MAX_DECLARED: usize = 32;

impl DeclaredScope {
    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && self.flows.is_empty() && self.team.is_none()
    }
}

/// Something that happened to an incident. Always past tense.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum IncidentEvent {
    Opened {
        title: String,
        severity: Severity,
        summary: Option<String>,
        /// What the person who declared it said it concerns (empty for
        /// incidents the correlator opened: their symptoms say it).
        #[serde(default, skip_serializing_if = "DeclaredScope::is_empty")]
        scope: DeclaredScope,
    },
    Acknowledged,
    Mitigated {
        note: Option<String>,
    },
    Resolved {
        note: Option<String>,
    },
    Reopened {
        reason: String,
    },
    SeverityChanged {
        from: Severity,
        to: Severity,
        reason: String,
    },
    RoleAssigned {
        role: Role,
        user: UserId,
    },
    RoleUnassigned {
        role: Role,
    },
    NoteAdded {
        text: String,
    },
    SummaryUpdated {
        summary: String,
    },
    /// The internal title changed. `automatic`: Faultline renamed the
    /// incident as its diagnosis became clearer; that never replaces a title
    /// a person set.
    TitleChanged {
        title: String,
        #[serde(default)]
        automatic: bool,
    },
    /// The title the public status page shows changed (always a person's
    /// words: internal titles name services customers do not know).
    PublicTitleChanged {
        title: String,
    },
    /// The correlator attached a symptom (a finding or an external alert).
    /// An alert's labels come along (bounded), so routing can match on what
    /// the sender said (`alertname`, `service`, …) as Alertmanager does.
    SymptomAttached {
        member: String,
        evidence: String,
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        labels: BTreeMap<String, String>,
    },
    /// A symptom stopped holding.
    SymptomCleared {
        member: String,
    },
    /// The causal explanation changed: the whole chain (ranked origins with
    /// their evidence, amplifiers, impacted flows, class, failure model) and
    /// its one-sentence rendering; `origin`/`confidence_pct` repeat the top
    /// candidate for readers that need only that.
    DiagnosisUpdated {
        sentence: String,
        chain: CausalChain,
        origin: Option<String>,
        confidence_pct: Option<u8>,
    },
    /// Another incident turned out to share this one's origin and was merged in.
    Absorbed {
        from: IncidentId,
    },
    /// This incident was merged into another; it is closed here and lives on there.
    MergedInto {
        into: IncidentId,
    },
    /// A recurrence of an earlier incident on the same services.
    LinkedTo {
        previous: IncidentId,
    },
    /// A note from a Faultline component: a routing decision and its reason,
    /// a page sent, an escalation step. `component` is e.g. `routing`.
    SystemNote {
        component: String,
        text: String,
    },
}

impl IncidentEvent {
    /// The snake_case name used in APIs and storage, e.g. `severity_changed`.
    pub fn kind(&self) -> &'static str {
        match self {
            IncidentEvent::Opened { .. } => "opened",
            IncidentEvent::Acknowledged => "acknowledged",
            IncidentEvent::Mitigated { .. } => "mitigated",
            IncidentEvent::Resolved { .. } => "resolved",
            IncidentEvent::Reopened { .. } => "reopened",
            IncidentEvent::SeverityChanged { .. } => "severity_changed",
            IncidentEvent::RoleAssigned { .. } => "role_assigned",
            IncidentEvent::RoleUnassigned { .. } => "role_unassigned",
            IncidentEvent::NoteAdded { .. } => "note_added",
            IncidentEvent::SummaryUpdated { .. } => "summary_updated",
            IncidentEvent::TitleChanged { .. } => "title_changed",
            IncidentEvent::PublicTitleChanged { .. } => "public_title_changed",
            IncidentEvent::SymptomAttached { .. } => "symptom_attached",
            IncidentEvent::SymptomCleared { .. } => "symptom_cleared",
            IncidentEvent::DiagnosisUpdated { .. } => "diagnosis_updated",
            IncidentEvent::Absorbed { .. } => "absorbed",
            IncidentEvent::MergedInto { .. } => "merged_into",
            IncidentEvent::LinkedTo { .. } => "linked_to",
            IncidentEvent::SystemNote { .. } => "system_note",
        }
    }
}

/// One entry of an incident's append-only timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineEvent {
    /// 1-based position in the timeline; `seq == 1` is always `Opened`.
    pub seq: u64,
    pub at: Timestamp,
    pub actor: Actor,
    pub event: IncidentEvent,
}

/// What someone asks to happen. `Incident::decide` turns it into an event.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    Acknowledge,
    Mitigate {
        note: Option<String>,
    },
    Resolve {
        note: Option<String>,
    },
    Reopen {
        reason: String,
    },
    ChangeSeverity {
        to: Severity,
        reason: String,
    },
    AssignRole {
        role: Role,
        user: UserId,
    },
    UnassignRole {
        role: Role,
    },
    AddNote {
        text: String,
    },
    UpdateSummary {
        summary: String,
    },
    /// A person renames the incident (internal title).
    ChangeTitle {
        title: String,
    },
    /// A person sets the status page's title for this incident.
    ChangePublicTitle {
        title: String,
    },
    /// Record a system event (correlator, escalation) as it is, after the
    /// same checks. `Opened` cannot be recorded this way; a `SeverityChanged`
    /// is a suggestion: it only raises, from the current severity.
    Record(IncidentEvent),
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Acknowledge => "acknowledge",
            Command::Mitigate { .. } => "mitigate",
            Command::Resolve { .. } => "resolve",
            Command::Reopen { .. } => "reopen",
            Command::ChangeSeverity { .. } => "change severity",
            Command::AssignRole { .. } => "assign role",
            Command::UnassignRole { .. } => "unassign role",
            Command::AddNote { .. } => "add note",
            Command::UpdateSummary { .. } => "update summary",
            Command::ChangeTitle { .. } => "change title",
            Command::ChangePublicTitle { .. } => "change public title",
            Command::Record(_) => "record event",
        }
    }
}

/// Why a command or a timeline cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("incident is already {0}")]
    AlreadyInStatus(IncidentStatus),
    #[error("cannot {action} an incident that is {from}")]
    NotAllowed { from: IncidentStatus, action: &'static str },
    #[error("severity is already {0}")]
    SeverityUnchanged(Severity),
    #[error("role {0} is not assigned")]
    RoleNotAssigned(Role),
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: &'static str },
    #[error("invalid {field}: must be at most {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("the {0} is already that")]
    Unchanged(&'static str),
    #[error("a person set the title; automatic titles no longer replace it")]
    TitleSetByPerson,
    #[error("severity is {current}: a suggested {suggested} would not raise it, and a suggestion never lowers")]
    NotRaised { current: Severity, suggested: Severity },
    #[error("timeline is corrupt: {0}")]
    CorruptTimeline(String),
}

/// Longest accepted title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest accepted free text (summary, note, reason), in characters.
pub const MAX_TEXT_CHARS: usize = 10_000;

/// The state of one incident, derived from its timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    pub title: String,
    pub summary: Option<String>,
    pub severity: Severity,
    pub status: IncidentStatus,
    pub roles: BTreeMap<Role, UserId>,
    pub opened_at: Timestamp,
    pub acknowledged_at: Option<Timestamp>,
    pub mitigated_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub reopen_count: u32,
    /// What the public status page calls this incident, when a person set it.
    #[serde(default)]
    pub public_title: Option<String>,
    /// A person set the internal title (so automatic renames stop).
    #[serde(default)]
    pub title_set_by_person: bool,
    /// The correlator's latest explanation, if the incident came from it.
    #[serde(default)]
    pub diagnosis: Option<String>,
    #[serde(default)]
    pub causal_chain: Option<CausalChain>,
    #[serde(default)]
    pub class: Option<IncidentClass>,
    #[serde(default)]
    pub failure_model: Option<FailureModel>,
    #[serde(default)]
    pub symptoms: u32,
    #[serde(default)]
    pub merged_into: Option<IncidentId>,
    /// Incidents absorbed into this one, and earlier incidents it recurs.
    #[serde(default)]
    pub related: Vec<IncidentId>,
    /// Sequence number of the last applied event: the optimistic-concurrency
    /// version the store checks on append.
    pub version: u64,
    pub updated_at: Timestamp,
}

fn check_text(field: &'static str, s: &str, max: usize, required: bool) -> Result<(), TransitionError> {
    if required && s.trim().is_empty() {
        return Err(TransitionError::Invalid { field, reason: "must not be empty" });
    }
    if s.chars().count() > max {
        return Err(TransitionError::TooLong { field, max });
    }
    Ok(())
}

impl Incident {
    /// Validates a new incident and returns its first timeline event.
    pub fn open(title: &str, severity: Severity, summary: Option<&str>, at: Timestamp, actor: Actor) -> Result<TimelineEvent, TransitionError> {
        Incident::declare(title, severity, summary, DeclaredScope::default(), at, actor)
    }

    /// [`Incident::open`] with the services, flows and team a person declared.
    pub fn declare(
        title: &str,
        severity: Severity,
        summary: Option<&str>,
        scope: DeclaredScope,
        at: Timestamp,
        actor: Actor,
    ) -> Result<TimelineEvent, TransitionError> {
        check_text("title", title, MAX_TITLE_CHARS, true)?;
        if let Some(s) = summary {
            check_text("summary", s, MAX_TEXT_CHARS, false)?;
        }
        if scope.services.len() > MAX_DECLARED || scope.flows.len() > MAX_DECLARED {
            return Err(TransitionError::Invalid { field: "scope", reason: "name at most 32 services and 32 flows" });
        }
        Ok(TimelineEvent {
            seq: 1,
            at,
            actor,
            event: IncidentEvent::Opened {
                title: title.trim().to_owned(),
                severity,
                summary: summary.map(str::to_owned).filter(|s| !s.trim().is_empty()),
                scope,
            },
        })
    }

    /// Folds a whole timeline into the incident's state.
    pub fn fold(id: IncidentId, timeline: &[TimelineEvent]) -> Result<Incident, TransitionError> {
        let (first, rest) = timeline.split_first().ok_or_else(|| TransitionError::CorruptTimeline("timeline is empty".into()))?;
        let IncidentEvent::Opened { title, severity, summary, .. } = &first.event else {
            return Err(TransitionError::CorruptTimeline(format!("first event is {}, expected opened", first.event.kind())));
        };
        if first.seq != 1 {
            return Err(TransitionError::CorruptTimeline(format!("first event has seq {}", first.seq)));
        }
        let mut incident = Incident {
            id,
            title: title.clone(),
            summary: summary.clone(),
            severity: *severity,
            status: IncidentStatus::Triggered,
            roles: BTreeMap::new(),
            opened_at: first.at,
            acknowledged_at: None,
            mitigated_at: None,
            resolved_at: None,
            reopen_count: 0,
            public_title: None,
            title_set_by_person: false,
            diagnosis: None,
            causal_chain: None,
            class: None,
            failure_model: None,
            symptoms: 0,
            merged_into: None,
            related: Vec::new(),
            version: 1,
            updated_at: first.at,
        };
        for ev in rest {
            incident.apply(ev)?;
        }
        Ok(incident)
    }

    /// Applies one already-recorded event. Fails on a sequence gap or an event
    /// the state machine forbids, which means the timeline is corrupt.
    pub fn apply(&mut self, ev: &TimelineEvent) -> Result<(), TransitionError> {
        if ev.seq != self.version + 1 {
            return Err(TransitionError::CorruptTimeline(format!("expected seq {}, found {}", self.version + 1, ev.seq)));
        }
        // Re-check the transition so a hand-edited or corrupted timeline is
        // reported rather than silently producing an impossible state.
        self.check(&ev.event)?;
        match &ev.event {
            IncidentEvent::Opened { .. } => {
                return Err(TransitionError::CorruptTimeline(format!("second opened event at seq {}", ev.seq)));
            }
            IncidentEvent::Acknowledged => {
                self.status = IncidentStatus::Acknowledged;
                self.acknowledged_at = Some(ev.at);
            }
            IncidentEvent::Mitigated { .. } => {
                self.status = IncidentStatus::Mitigated;
                self.mitigated_at = Some(ev.at);
            }
            IncidentEvent::Resolved { .. } => {
                self.status = IncidentStatus::Resolved;
                self.resolved_at = Some(ev.at);
            }
            IncidentEvent::Reopened { .. } => {
                self.status = IncidentStatus::Triggered;
                self.acknowledged_at = None;
                self.mitigated_at = None;
                self.resolved_at = None;
                self.reopen_count += 1;
            }
            IncidentEvent::SeverityChanged { to, .. } => self.severity = *to,
            IncidentEvent::RoleAssigned { role, user } => {
                self.roles.insert(role.clone(), user.clone());
            }
            IncidentEvent::RoleUnassigned { role } => {
                self.roles.remove(role);
            }
            IncidentEvent::NoteAdded { .. } => {}
            IncidentEvent::SummaryUpdated { summary } => self.summary = Some(summary.clone()),
            IncidentEvent::TitleChanged { title, automatic } => {
                self.title = title.clone();
                self.title_set_by_person |= !automatic;
            }
            IncidentEvent::PublicTitleChanged { title } => self.public_title = Some(title.clone()),
            IncidentEvent::SymptomAttached { .. } => self.symptoms += 1,
            IncidentEvent::SymptomCleared { .. } | IncidentEvent::SystemNote { .. } => {}
            IncidentEvent::DiagnosisUpdated { sentence, chain, .. } => {
                self.diagnosis = Some(sentence.clone());
                self.class = chain.class;
                self.failure_model = chain.failure_model;
                self.causal_chain = Some(chain.clone());
            }
            IncidentEvent::Absorbed { from } | IncidentEvent::LinkedTo { previous: from } => {
                if !self.related.contains(from) {
                    self.related.push(*from);
                }
            }
            IncidentEvent::MergedInto { into } => {
                self.merged_into = Some(*into);
                self.status = IncidentStatus::Resolved;
                self.resolved_at = Some(ev.at);
            }
        }
        self.version = ev.seq;
        self.updated_at = self.updated_at.max(ev.at);
        Ok(())
    }

    /// Checks a command against the current state and returns the event that
    /// records it. Does not change `self`: the caller appends the event to the
    /// store and then applies it.
    pub fn decide(&self, command: Command) -> Result<IncidentEvent, TransitionError> {
        let event = match command {
            Command::Acknowledge => IncidentEvent::Acknowledged,
            Command::Mitigate { note } => IncidentEvent::Mitigated { note },
            Command::Resolve { note } => IncidentEvent::Resolved { note },
            Command::Reopen { reason } => IncidentEvent::Reopened { reason },
            Command::ChangeSeverity { to, reason } => IncidentEvent::SeverityChanged { from: self.severity, to, reason },
            Command::AssignRole { role, user } => IncidentEvent::RoleAssigned { role, user },
            Command::UnassignRole { role } => IncidentEvent::RoleUnassigned { role },
            Command::AddNote { text } => IncidentEvent::NoteAdded { text },
            Command::UpdateSummary { summary } => IncidentEvent::SummaryUpdated { summary },
            Command::ChangeTitle { title } => IncidentEvent::TitleChanged { title: title.trim().to_owned(), automatic: false },
            Command::ChangePublicTitle { title } => IncidentEvent::PublicTitleChanged { title: title.trim().to_owned() },
            Command::Record(IncidentEvent::Opened { .. }) => {
                return Err(TransitionError::Invalid { field: "event", reason: "an incident is opened only once" });
            }
            // A recorded severity change is a suggestion (the correlator's):
            // it raises from whatever the severity is now — a person may
            // have changed it since the suggester last looked — and never lowers.
            Command::Record(IncidentEvent::SeverityChanged { to, reason, .. }) => {
                if to >= self.severity {
                    return Err(TransitionError::NotRaised { current: self.severity, suggested: to });
                }
                IncidentEvent::SeverityChanged { from: self.severity, to, reason }
            }
            Command::Record(event) => event,
        };
        // Not in `check`: timelines written before this rule may hold a
        // symptom after a resolve and must still fold.
        if matches!(event, IncidentEvent::SymptomAttached { .. }) && self.status == IncidentStatus::Resolved {
            return Err(TransitionError::NotAllowed { from: self.status, action: "attach a symptom to" });
        }
        self.check(&event)?;
        Ok(event)
    }

    /// The events a correlator command becomes on this incident, in order.
    /// A symptom never attaches to a resolved incident: one that arrives
    /// for it (the correlator tied them together before it learnt of a
    /// person's resolve) reopens the incident first, so it is paged again.
    pub fn decide_correlated(&self, command: Command) -> Result<Vec<IncidentEvent>, TransitionError> {
        if let Command::Record(IncidentEvent::SymptomAttached { member, .. }) = &command
            && self.status == IncidentStatus::Resolved
        {
            let reopened = IncidentEvent::Reopened { reason: format!("symptom returned after the resolve: {member}") };
            self.check(&reopened)?;
            // The symptom is decided on the reopened state (time and actor do
            // not matter to the rules; the caller stamps both events).
            let mut after = self.clone();
            after.apply(&TimelineEvent { seq: self.version + 1, at: self.updated_at, actor: Actor::System("correlator".into()), event: reopened.clone() })?;
            return Ok(vec![reopened, after.decide(command)?]);
        }
        Ok(vec![self.decide(command)?])
    }

    /// Decides and wraps the event as the next timeline entry.
    pub fn next_event(&self, command: Command, at: Timestamp, actor: Actor) -> Result<TimelineEvent, TransitionError> {
        let event = self.decide(command)?;
        Ok(TimelineEvent { seq: self.version + 1, at, actor, event })
    }

    /// The transition rules, shared by `decide` (new commands) and `apply`
    /// (recorded events).
    fn check(&self, event: &IncidentEvent) -> Result<(), TransitionError> {
        use IncidentStatus as S;
        let from = self.status;
        match event {
            IncidentEvent::Opened { .. } => Ok(()),
            IncidentEvent::Acknowledged => match from {
                S::Triggered => Ok(()),
                S::Acknowledged => Err(TransitionError::AlreadyInStatus(from)),
                S::Mitigated | S::Resolved => Err(TransitionError::NotAllowed { from, action: "acknowledge" }),
            },
            IncidentEvent::Mitigated { note } => {
                if let Some(n) = note {
                    check_text("note", n, MAX_TEXT_CHARS, false)?;
                }
                match from {
                    S::Triggered | S::Acknowledged => Ok(()),
                    S::Mitigated => Err(TransitionError::AlreadyInStatus(from)),
                    S::Resolved => Err(TransitionError::NotAllowed { from, action: "mitigate" }),
                }
            }
            IncidentEvent::Resolved { note } => {
                if let Some(n) = note {
                    check_text("note", n, MAX_TEXT_CHARS, false)?;
                }
                match from {
                    S::Resolved => Err(TransitionError::AlreadyInStatus(from)),
                    _ => Ok(()),
                }
            }
            IncidentEvent::Reopened { reason } => {
                check_text("reason", reason, MAX_TEXT_CHARS, true)?;
                match from {
                    S::Resolved => Ok(()),
                    _ => Err(TransitionError::NotAllowed { from, action: "reopen" }),
                }
            }
            IncidentEvent::SeverityChanged { from: old, to, reason } => {
                check_text("reason", reason, MAX_TEXT_CHARS, true)?;
                if *old != self.severity {
                    return Err(TransitionError::CorruptTimeline(format!("severity change from {old} but severity is {}", self.severity)));
                }
                if to == old {
                    return Err(TransitionError::SeverityUnchanged(*to));
                }
                Ok(())
            }
            IncidentEvent::RoleAssigned { role, .. } => {
                if let Role::Custom(name) = role {
                    check_text("role", name, 64, true)?;
                }
                Ok(())
            }
            IncidentEvent::RoleUnassigned { role } => {
                if self.roles.contains_key(role) {
                    Ok(())
                } else {
                    Err(TransitionError::RoleNotAssigned(role.clone()))
                }
            }
            IncidentEvent::NoteAdded { text } => check_text("text", text, MAX_TEXT_CHARS, true),
            IncidentEvent::SummaryUpdated { summary } => check_text("summary", summary, MAX_TEXT_CHARS, true),
            IncidentEvent::TitleChanged { title, automatic } => {
                check_text("title", title, MAX_TITLE_CHARS, true)?;
                if *automatic && self.title_set_by_person {
                    return Err(TransitionError::TitleSetByPerson);
                }
                if *title == self.title {
                    return Err(TransitionError::Unchanged("title"));
                }
                Ok(())
            }
            IncidentEvent::PublicTitleChanged { title } => {
                check_text("public title", title, MAX_TITLE_CHARS, true)?;
                if self.public_title.as_ref() == Some(title) {
                    return Err(TransitionError::Unchanged("public title"));
                }
                Ok(())
            }
            // Correlator events are facts about telemetry, recorded whatever
            // the response status (symptoms can clear after a resolve).
            IncidentEvent::SymptomAttached { .. }
            | IncidentEvent::SymptomCleared { .. }
            | IncidentEvent::DiagnosisUpdated { .. }
            | IncidentEvent::Absorbed { .. }
            | IncidentEvent::LinkedTo { .. } => Ok(()),
            IncidentEvent::SystemNote { text, .. } => check_text("text", text, MAX_TEXT_CHARS, true),
            IncidentEvent::MergedInto { into } => {
                if *into == self.id {
                    return Err(TransitionError::Invalid { field: "into", reason: "an incident cannot merge into itself" });
                }
                match from {
                    S::Resolved => Err(TransitionError::NotAllowed { from, action: "merge" }),
                    _ => Ok(()),
                }
            }
        }
    }
}
