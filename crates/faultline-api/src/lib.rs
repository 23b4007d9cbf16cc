//! Faultline's HTTP API as wire types: the JSON request and response bodies
//! of `/api/v1`, and (feature `client`) a small async client for the CLI.
//!
//! What it is: the contract with users' scripts and the CLI. Field names here
//! are public API; change them only additively.
//!
//! What it is not: the domain. This crate deliberately does not depend on
//! `faultline-core`, so refactoring the domain cannot silently change the wire
//! format; the server converts between the two in `http::convert`.
//! Timestamps are RFC 3339 strings in UTC.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[cfg(feature = "client")]
pub mod client;

/// Every error response: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Stable, machine-readable, snake_case (e.g. `invalid_transition`).
    pub code: String,
    /// For humans; may change between versions.
    pub message: String,
}

/// `POST /api/v1/incidents`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIncident {
    pub title: String,
    /// `SEV1`, `SEV2` or `SEV3`.
    pub severity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// Services the incident concerns: routed to their owners, as a
    /// detector's symptoms on them would be.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<String>,
    /// Flows (critical user journeys) impacted: routed to their owners.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flows: Vec<String>,
    /// The team that owns the response, whatever the catalogue says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
}

/// Optional body of `POST /api/v1/incidents/{id}/ack|resolve|mitigate`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One timeline entry. `details` carries the event's own fields (e.g.
/// `{"from":"SEV2","to":"SEV1","reason":"..."}` for `severity_changed`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub seq: u64,
    pub at: String,
    /// `user:alice`, `token:ci`, `system:correlator`.
    pub actor: String,
    /// Past tense, snake_case: `opened`, `acknowledged`, `severity_changed`, ...
    #[serde(rename = "type")]
    pub kind: String,
    pub details: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: String,
    /// The short number (`#42`), accepted in paths wherever the id is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<u64>,
    pub title: String,
    /// What the public status page calls the incident, when a person set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_title: Option<String>,
    pub summary: Option<String>,
    pub severity: String,
    /// `triggered`, `acknowledged`, `mitigated` or `resolved`.
    pub status: String,
    pub roles: BTreeMap<String, String>,
    pub opened_at: String,
    pub acknowledged_at: Option<String>,
    pub mitigated_at: Option<String>,
    pub resolved_at: Option<String>,
    pub updated_at: String,
    pub version: u64,
    /// `retry_storm`, `cascading_failure`, … (DESIGN.md §4), when diagnosed.
    #[serde(default)]
    pub class: Option<String>,
    /// `crash`, `partition`, `byzantine`, `exhaustion` or `unknown`.
    #[serde(default)]
    pub failure_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causal_chain: Option<CausalChain>,
    /// Symptoms the correlator attached (present on single-incident responses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<Vec<FindingView>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<String>,
    /// Present on single-incident responses; omitted in lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<Vec<TimelineEntry>>,
    /// Time to acknowledge, mitigate and resolve, read from the timeline
    /// (present on single-incident responses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseTimes>,
}

/// An incident's response times. Durations are seconds from `opened_at`.
/// A person mitigating or resolving before anyone acknowledged counts as the
/// acknowledgement (`implicit_ack`); a system resolve does not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResponseTimes {
    pub acknowledged_at: Option<String>,
    /// `user:alice`, `token:ci`.
    pub acknowledged_by: Option<String>,
    pub implicit_ack: bool,
    pub mitigated_at: Option<String>,
    /// The final resolution (a reopened incident counts to its last resolve).
    pub resolved_at: Option<String>,
    pub time_to_acknowledge_seconds: Option<f64>,
    pub time_to_mitigate_seconds: Option<f64>,
    pub time_to_resolve_seconds: Option<f64>,
    pub reopened: u32,
    /// Merged into another incident: no resolution of its own.
    pub merged: bool,
}

/// Count and nearest-rank percentiles (seconds) of one response time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
pub struct DurationDistribution {
    pub count: u64,
    pub p50_seconds: Option<f64>,
    pub p90_seconds: Option<f64>,
    pub max_seconds: Option<f64>,
}

/// `GET /api/v1/metrics/response`: MTTA, MTTM and MTTR as distributions over
/// the incidents opened in `[from, to)` (and of `severity`, when given).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResponseMetrics {
    pub from: Option<String>,
    pub to: Option<String>,
    pub severity: Option<String>,
    /// Incidents counted (merged ones are left out and counted in `merged`).
    pub incidents: u64,
    pub merged: u64,
    /// Counted incidents nobody has acknowledged yet.
    pub unacknowledged: u64,
    /// Counted incidents not resolved yet.
    pub unresolved: u64,
    pub time_to_acknowledge: DurationDistribution,
    pub time_to_mitigate: DurationDistribution,
    pub time_to_resolve: DurationDistribution,
    /// True when more incidents matched than one request reads (1000, newest
    /// first): narrow `from`/`to`.
    pub truncated: bool,
}

/// `POST /api/v1/incidents/{id}/severity`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityRequest {
    pub severity: String,
    pub reason: String,
}

/// `POST /api/v1/incidents/{id}/roles`: omit `user` to unassign the role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleRequest {
    pub role: String,
    #[serde(default)]
    pub user: Option<String>,
}

/// `POST /api/v1/incidents/{id}/title`: renames the incident, or (with
/// `public: true`) sets the title the public status page shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TitleRequest {
    pub title: String,
    #[serde(default)]
    pub public: bool,
}

/// `POST /api/v1/incidents/{id}/status-updates`: the comms lead's own
/// status-page update, published at once (no state change needed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusUpdateRequest {
    /// `investigating`, `identified`, `monitoring` or `resolved`; the page's
    /// current status when absent (`investigating` for a first update).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The text customers read.
    pub body: String,
    /// Component id → `operational`, `degraded_performance`, `partial_outage`,
    /// `major_outage`; components not named keep their status (a first
    /// update starts from the components the incident affects).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub components: BTreeMap<String, String>,
    /// Sets the public title too (as `POST …/title` with `public: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// `POST /api/v1/incidents/{id}/notes`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    pub text: String,
}

/// `POST /api/v1/incidents/{id}/reopen`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReopenRequest {
    pub reason: String,
}

/// `GET /api/v1/incidents/{id}/notifications`: the outbox rows of an
/// incident and its append-only ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationList {
    pub incident_id: String,
    pub notifications: Vec<Notification>,
    pub ledger: Vec<LedgerLine>,
}

/// One outbox row: a notification and where its delivery stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub idempotency_key: String,
    /// A configured channel's name, or `subscriber:<id>` for a status-page subscriber.
    pub channel: String,
    pub recipient: String,
    /// `trigger`, `acknowledge`, `resolve`, `status_incident`, `status_component`.
    pub kind: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    pub attempts: u32,
    pub created_at: String,
    pub next_attempt_at: String,
    pub delivered_at: Option<String>,
    pub last_error: Option<String>,
}

/// One ledger line: what happened to a notification, when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerLine {
    pub at: String,
    pub idempotency_key: String,
    pub channel: String,
    pub recipient: String,
    pub kind: String,
    /// `enqueued`, `deduplicated`, `delivered`, `retry`, `failed`.
    pub outcome: String,
    pub attempt: u32,
    /// Status code, error class or reason; never a secret.
    pub detail: String,
}

/// `GET /api/v1/oncall`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnCallList {
    pub at: String,
    pub on_call: Vec<OnCall>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OnCall {
    pub schedule: String,
    pub time_zone: String,
    /// Everyone on call at `at` (one per layer that covers it, top layer first).
    pub users: Vec<String>,
    /// The winning shift, if anyone is on call.
    pub shift: Option<Shift>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shift {
    pub user: String,
    pub start: String,
    pub end: String,
    /// Which layer or override produced it.
    pub source: String,
}

/// `GET /api/v1/oncall/gaps`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageGaps {
    pub from: String,
    pub to: String,
    pub schedules: Vec<ScheduleGaps>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleGaps {
    pub schedule: String,
    pub gaps: Vec<Interval>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    pub start: String,
    pub end: String,
}

/// `POST /api/v2/subscribers` (public, no token): a webhook that receives
/// every published status-page incident update and component change in
/// Statuspage's webhook shape, through the durable outbox (retried, with an
/// `Idempotency-Key` header). Refused: an endpoint on a private, loopback,
/// link-local or other non-public address unless the server allows it
/// (422), more new subscriptions a minute than the server takes (429 with
/// `Retry-After`), and any beyond its subscriber limit (409).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscribeRequest {
    /// An http(s) URL of at most 2000 characters.
    pub endpoint: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriberCreated {
    pub subscriber: SubscriberView,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriberView {
    pub id: String,
    /// `webhook`.
    pub mode: String,
    pub created_at: String,
}

/// `GET /api/v1/status-page/drafts`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftList {
    pub drafts: Vec<Draft>,
}

/// A status-page update drafted from incident state, awaiting the comms lead.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub incident_id: String,
    pub created_at: String,
    /// `investigating`, `identified`, `monitoring`, `resolved`.
    pub status: String,
    /// `none`, `minor`, `major`, `critical`.
    pub impact: String,
    pub body: String,
    /// Component id → `operational`, `degraded_performance`, `partial_outage`, `major_outage`, `under_maintenance`.
    pub components: BTreeMap<String, String>,
}

/// Optional body of `POST /api/v1/status-page/drafts/{id}/publish`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// The comms lead's edited text; the draft's text when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub published: PublishedUpdate,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedUpdate {
    /// The public incident's id.
    pub id: String,
    pub status: String,
    pub update_id: String,
    /// Subscriber notifications put in the outbox by this publish.
    #[serde(default)]
    pub subscriber_notifications: u64,
}

/// `POST /api/v1/status-page/maintenances`
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceRequest {
    pub name: String,
    /// RFC 3339.
    pub scheduled_for: String,
    pub scheduled_until: String,
    #[serde(default)]
    pub component_ids: Vec<String>,
    #[serde(default)]
    pub body: String,
}

/// `GET /api/v1/teams`: teams from the catalogue and the configured users.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamList {
    pub teams: Vec<Team>,
    pub users: Vec<UserView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub id: String,
    pub name: String,
    pub members: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub id: String,
    pub name: Option<String>,
    /// Channel names only: addresses and URLs stay in the config.
    pub contacts: Vec<ContactView>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactView {
    pub channel: String,
}

/// Answer of `POST /api/v2/silences` (Alertmanager's field name).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceCreated {
    #[serde(rename = "silenceID")]
    pub silence_id: String,
}

/// `{"id": ...}` of something just created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    pub id: String,
}

/// The explanation of an incident: origin → amplifiers → impacted flows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CausalChain {
    pub sentence: String,
    /// Ranked, most likely first; each with the evidence behind its rank.
    pub origins: Vec<OriginCandidate>,
    pub amplifiers: Vec<Amplifier>,
    pub impacted_flows: Vec<FlowImpact>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OriginCandidate {
    pub subject: String,
    pub confidence: f64,
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Amplifier {
    pub subject: String,
    pub mechanism: String,
    pub factor: Option<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlowImpact {
    pub flow: String,
    pub burn_rate: Option<f64>,
}

/// One symptom attached to an incident.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FindingView {
    /// e.g. `retry_amplification on gateway → fraud-check`.
    pub member: String,
    pub evidence: String,
    pub first_attached_at: String,
    /// Whether it still holds.
    pub active: bool,
}

/// `GET /api/v1/incidents`: one page, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IncidentList {
    pub incidents: Vec<Incident>,
    /// When the page is full: pass it as `?cursor=` (with the same filters)
    /// for the next page. Opaque; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One detector finding with its evidence (`GET /api/v1/findings`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The detector, e.g. `retry_amplification`.
    pub kind: String,
    pub subject: String,
    pub failure_model: String,
    pub started_at: String,
    pub strength: f64,
    pub measure: String,
    pub observed: f64,
    pub baseline: Option<f64>,
    pub threshold: Option<f64>,
    pub window_ms: i64,
    pub exemplar_trace_ids: Vec<String>,
    /// The incident it joined.
    pub incident: Option<String>,
    pub active: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FindingList {
    pub findings: Vec<Finding>,
}
