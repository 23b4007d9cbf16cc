//! The public status page as a pure model: components (from flows and chosen
//! services), public incidents with their updates, scheduled maintenance, and
//! renderers for Statuspage-compatible `summary.json` / `status.json`,
//! subscriber webhook payloads and an Atom feed.
//!
//! What it is: Statuspage's vocabulary as enums (component status
//! `operational` / `degraded_performance` / `partial_outage` / `major_outage` /
//! `under_maintenance`; incident status `investigating` / `identified` /
//! `monitoring` / `resolved` / `postmortem`; impact and indicator `none` /
//! `minor` / `major` / `critical`), the derivation of a *draft* update from an
//! internal incident (which the comms lead approves or edits before it is
//! public), and serde structs whose field names match Statuspage's public API
//! v2, so status aggregators read us unchanged.
//!
//! The comms lead speaks through `comms_update`: any status, any text, any
//! component statuses, as often as needed (no state change required). What
//! Faultline drafts on its own is careful: it says "investigating" until a
//! person has said more or the diagnosis is confident — the same top origin
//! named with at least `IDENTIFIED_MIN_CONFIDENCE_PCT` % confidence for at
//! least `IDENTIFIED_MIN_STEADY` (`diagnosis_is_confident`) — it never takes
//! back what a person published (their status stands until the internal
//! incident moves on; their component statuses stand until it is mitigated or
//! resolved), and the public incident is named by the public title a person
//! set, else by what is affected ("Partial outage affecting checkout"),
//! never by the internal title (`public_name`).
//!
//! What it is not: HTTP serving, storage, or sending subscriber notifications.
//! Drafts never contain internal details (services, causal chain) unless the
//! comms lead writes them in.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::ids::{FlowName, ServiceName};
use crate::incident::{Incident, IncidentEvent, IncidentStatus as InternalStatus, Severity, TimelineEvent};
use crate::model::Flow;
use crate::time::{Duration, Timestamp};

/// An automatic draft says "identified" only when the diagnosis's top origin
/// has at least this confidence...
pub const IDENTIFIED_MIN_CONFIDENCE_PCT: u8 = 80;
/// ...and has been the same, that confident, for at least this long (a first
/// guess a second after detection is not "we have identified the cause").
pub const IDENTIFIED_MIN_STEADY: Duration = Duration::from_mins(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentStatus {
    Operational,
    UnderMaintenance,
    DegradedPerformance,
    PartialOutage,
    MajorOutage,
}

impl std::str::FromStr for ComponentStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<ComponentStatus, String> {
        match s.trim() {
            "operational" => Ok(ComponentStatus::Operational),
            "degraded_performance" => Ok(ComponentStatus::DegradedPerformance),
            "partial_outage" => Ok(ComponentStatus::PartialOutage),
            "major_outage" => Ok(ComponentStatus::MajorOutage),
            "under_maintenance" => Ok(ComponentStatus::UnderMaintenance),
            other => {
                Err(format!("component status {other:?} is not one of operational, degraded_performance, partial_outage, major_outage, under_maintenance"))
            }
        }
    }
}

impl ComponentStatus {
    /// Worse statuses rank higher; an incident outranks maintenance.
    fn rank(self) -> u8 {
        match self {
            ComponentStatus::Operational => 0,
            ComponentStatus::UnderMaintenance => 1,
            ComponentStatus::DegradedPerformance => 2,
            ComponentStatus::PartialOutage => 3,
            ComponentStatus::MajorOutage => 4,
        }
    }
    pub fn worst(self, other: ComponentStatus) -> ComponentStatus {
        if other.rank() > self.rank() { other } else { self }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ComponentStatus::Operational => "operational",
            ComponentStatus::UnderMaintenance => "under_maintenance",
            ComponentStatus::DegradedPerformance => "degraded_performance",
            ComponentStatus::PartialOutage => "partial_outage",
            ComponentStatus::MajorOutage => "major_outage",
        }
    }
    fn human(self) -> &'static str {
        match self {
            ComponentStatus::Operational => "operational",
            ComponentStatus::UnderMaintenance => "under maintenance",
            ComponentStatus::DegradedPerformance => "degraded performance",
            ComponentStatus::PartialOutage => "a partial outage",
            ComponentStatus::MajorOutage => "a major outage",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PublicIncidentStatus {
    Investigating,
    Identified,
    Monitoring,
    Resolved,
    Postmortem,
}

impl PublicIncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PublicIncidentStatus::Investigating => "investigating",
            PublicIncidentStatus::Identified => "identified",
            PublicIncidentStatus::Monitoring => "monitoring",
            PublicIncidentStatus::Resolved => "resolved",
            PublicIncidentStatus::Postmortem => "postmortem",
        }
    }
    pub fn is_open(self) -> bool {
        !matches!(self, PublicIncidentStatus::Resolved | PublicIncidentStatus::Postmortem)
    }
    /// How far along the lifecycle: investigating < identified < monitoring < resolved.
    fn stage(self) -> u8 {
        match self {
            PublicIncidentStatus::Investigating => 0,
            PublicIncidentStatus::Identified => 1,
            PublicIncidentStatus::Monitoring => 2,
            PublicIncidentStatus::Resolved => 3,
            PublicIncidentStatus::Postmortem => 4,
        }
    }
}

impl std::str::FromStr for PublicIncidentStatus {
    type Err = String;
    /// The four statuses a comms lead posts (`postmortem` comes with the review).
    fn from_str(s: &str) -> Result<PublicIncidentStatus, String> {
        match s.trim() {
            "investigating" => Ok(PublicIncidentStatus::Investigating),
            "identified" => Ok(PublicIncidentStatus::Identified),
            "monitoring" => Ok(PublicIncidentStatus::Monitoring),
            "resolved" => Ok(PublicIncidentStatus::Resolved),
            other => Err(format!("status {other:?} is not one of investigating, identified, monitoring, resolved")),
        }
    }
}

/// Incident impact and page indicator share the same four values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Impact {
    None,
    Minor,
    Major,
    Critical,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaintenanceStatus {
    Scheduled,
    InProgress,
    Verifying,
    Completed,
}

/// A component shown on the page: a flow, or a service chosen for display.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentConfig {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The flow this component shows, if it is a flow.
    #[serde(default)]
    pub flow: Option<FlowName>,
    /// Services whose incidents affect this component.
    #[serde(default)]
    pub services: Vec<ServiceName>,
    #[serde(default)]
    pub group: Option<String>,
    pub created_at: Timestamp,
}

/// One component per flow, in flow order, ids `flow-<name>`.
pub fn components_from_flows(flows: &[Flow], created_at: Timestamp) -> Vec<ComponentConfig> {
    flows
        .iter()
        .map(|f| ComponentConfig {
            id: format!("flow-{}", f.name),
            name: f.name.to_string(),
            description: (!f.description.is_empty()).then(|| f.description.clone()),
            flow: Some(f.name.clone()),
            services: Vec::new(),
            group: None,
            created_at,
        })
        .collect()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct PageInfo {
    pub id: String,
    pub name: String,
    pub url: String,
    pub time_zone: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedComponent {
    pub code: String,
    pub name: String,
    pub old_status: ComponentStatus,
    pub new_status: ComponentStatus,
}

/// A published update of a public incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicUpdate {
    pub id: String,
    pub status: PublicIncidentStatus,
    pub body: String,
    pub created_at: Timestamp,
    pub affected_components: Vec<AffectedComponent>,
    /// A person published it (their words, or a draft they approved).
    #[serde(default)]
    pub by_person: bool,
}

/// The public face of an incident: what customers see.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicIncident {
    pub id: String,
    pub name: String,
    pub status: PublicIncidentStatus,
    pub impact: Impact,
    pub started_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub monitoring_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    /// Current status of each affected component, by component id.
    pub components: BTreeMap<String, ComponentStatus>,
    /// Oldest first.
    pub updates: Vec<PublicUpdate>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledMaintenance {
    pub id: String,
    pub name: String,
    pub scheduled_for: Timestamp,
    pub scheduled_until: Timestamp,
    pub component_ids: Vec<String>,
    #[serde(default)]
    pub body: String,
    /// Set by hand to `verifying` or `completed`; otherwise derived from time.
    #[serde(default)]
    pub manual_status: Option<MaintenanceStatus>,
    pub created_at: Timestamp,
}

impl ScheduledMaintenance {
    pub fn status(&self, now: Timestamp) -> MaintenanceStatus {
        if let Some(s) = self.manual_status {
            return s;
        }
        if now < self.scheduled_for {
            MaintenanceStatus::Scheduled
        } else if now < self.scheduled_until {
            MaintenanceStatus::InProgress
        } else {
            MaintenanceStatus::Completed
        }
    }
}

/// What the status page should say about an internal incident, before a
/// human approves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftUpdate {
    pub status: PublicIncidentStatus,
    pub impact: Impact,
    pub body: String,
    /// New status per affected component id.
    pub components: BTreeMap<String, ComponentStatus>,
    /// Whether anything changed since the last published update (a comms
    /// lead does not need to approve a no-op).
    pub changed: bool,
}

/// Internal facts the draft is derived from.
#[derive(Clone, Debug)]
pub struct ImpactFacts<'a> {
    pub incident: &'a Incident,
    pub impacted_flows: &'a [FlowName],
    pub impacted_services: &'a [ServiceName],
    /// The causal chain names an origin with enough confidence to say
    /// "identified".
    pub origin_identified: bool,
}

/// SEV1 major outage, SEV2 partial outage, SEV3 degraded performance; a
/// mitigated incident shows degraded performance until it is resolved.
pub fn component_status_for(severity: Severity, status: InternalStatus) -> ComponentStatus {
    match status {
        InternalStatus::Resolved => ComponentStatus::Operational,
        InternalStatus::Mitigated => ComponentStatus::DegradedPerformance,
        InternalStatus::Triggered | InternalStatus::Acknowledged => match severity {
            Severity::Sev1 => ComponentStatus::MajorOutage,
            Severity::Sev2 => ComponentStatus::PartialOutage,
            Severity::Sev3 => ComponentStatus::DegradedPerformance,
        },
    }
}

pub fn public_status_for(status: InternalStatus, origin_identified: bool) -> PublicIncidentStatus {
    match status {
        InternalStatus::Resolved => PublicIncidentStatus::Resolved,
        InternalStatus::Mitigated => PublicIncidentStatus::Monitoring,
        InternalStatus::Triggered | InternalStatus::Acknowledged if origin_identified => PublicIncidentStatus::Identified,
        InternalStatus::Triggered | InternalStatus::Acknowledged => PublicIncidentStatus::Investigating,
    }
}

pub fn impact_for(severity: Severity) -> Impact {
    match severity {
        Severity::Sev1 => Impact::Critical,
        Severity::Sev2 => Impact::Major,
        Severity::Sev3 => Impact::Minor,
    }
}

/// The components an incident affects: flow components of impacted flows and
/// service components listing an impacted service.
pub fn affected_components<'c>(components: &'c [ComponentConfig], facts: &ImpactFacts<'_>) -> Vec<&'c ComponentConfig> {
    components
        .iter()
        .filter(|c| c.flow.as_ref().is_some_and(|f| facts.impacted_flows.contains(f)) || c.services.iter().any(|s| facts.impacted_services.contains(s)))
        .collect()
}

fn join_names(names: &[&str]) -> String {
    match names {
        [] => "some of our services".to_owned(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Drafts the next public update for an incident. `previous` is the public
/// incident as last published (if any).
pub fn draft_update(components: &[ComponentConfig], facts: &ImpactFacts<'_>, previous: Option<&PublicIncident>) -> DraftUpdate {
    let inc = facts.incident;
    let mut status = public_status_for(inc.status, facts.origin_identified);
    // What a person said stands until the internal incident moves past it.
    if let Some(p) = previous.filter(|p| p.status.is_open() && inc.status.is_open() && p.status.stage() > status.stage()) {
        status = p.status;
    }
    let comp_status = component_status_for(inc.severity, inc.status);
    let affected = affected_components(components, facts);
    let mut map: BTreeMap<String, ComponentStatus> = previous.map(|p| p.components.clone()).unwrap_or_default();
    let person_set_components = previous.is_some_and(|p| p.updates.iter().any(|u| u.by_person));
    let lifecycle_moved = matches!(inc.status, InternalStatus::Mitigated | InternalStatus::Resolved);
    for c in &affected {
        if person_set_components && !lifecycle_moved && map.contains_key(&c.id) {
            continue; // the comms lead's status for it stands
        }
        map.insert(c.id.clone(), comp_status);
    }
    if inc.status == InternalStatus::Resolved {
        for v in map.values_mut() {
            *v = ComponentStatus::Operational;
        }
    }
    let names: Vec<&str> = components.iter().filter(|c| map.contains_key(&c.id)).map(|c| c.name.as_str()).collect();
    let what = join_names(&names);
    let body = match status {
        PublicIncidentStatus::Investigating => {
            format!("We are investigating {} affecting {what}. We will post an update as soon as we know more.", comp_status.human())
        }
        PublicIncidentStatus::Identified => {
            format!("We have identified the cause of {} affecting {what} and are working on a fix.", comp_status.human())
        }
        PublicIncidentStatus::Monitoring => {
            format!("A fix has been applied and {what} is recovering. We are monitoring the results.")
        }
        PublicIncidentStatus::Resolved | PublicIncidentStatus::Postmortem => {
            format!("This incident has been resolved and {what} is operating normally.")
        }
    };
    let impact = previous.map_or(impact_for(inc.severity), |p| p.impact.max(impact_for(inc.severity)));
    let changed = previous.is_none_or(|p| p.status != status || p.components != map || p.impact != impact);
    DraftUpdate { status, impact, body, components: map, changed }
}

/// Publishes a draft as a new update of `incident`, creating the public
/// incident if needed. `edited_body` is what a person published (their own
/// text, or the draft's when they approved it as is); `None` is an automatic
/// publish of the draft's text. `new_incident` is (public id, public name,
/// started at); the name is applied on every publish, so a public title set
/// later renames the incident with its next update.
pub fn publish(
    components: &[ComponentConfig],
    previous: Option<PublicIncident>,
    new_incident: (&str, &str, Timestamp),
    draft: &DraftUpdate,
    edited_body: Option<&str>,
    update_id: &str,
    now: Timestamp,
) -> PublicIncident {
    let (id, name, started_at) = new_incident;
    let mut inc = previous.unwrap_or_else(|| PublicIncident {
        id: id.to_owned(),
        name: name.to_owned(),
        status: draft.status,
        impact: draft.impact,
        started_at,
        created_at: now,
        updated_at: now,
        monitoring_at: None,
        resolved_at: None,
        components: BTreeMap::new(),
        updates: Vec::new(),
    });
    let affected = draft
        .components
        .iter()
        .filter(|(cid, new)| inc.components.get(*cid) != Some(*new))
        .map(|(cid, new)| AffectedComponent {
            code: cid.clone(),
            name: components.iter().find(|c| &c.id == cid).map_or_else(|| cid.clone(), |c| c.name.clone()),
            old_status: inc.components.get(cid).copied().unwrap_or(ComponentStatus::Operational),
            new_status: *new,
        })
        .collect();
    inc.name = name.to_owned();
    inc.status = draft.status;
    inc.impact = draft.impact;
    inc.components = draft.components.clone();
    inc.updated_at = now;
    match draft.status {
        PublicIncidentStatus::Monitoring if inc.monitoring_at.is_none() => inc.monitoring_at = Some(now),
        PublicIncidentStatus::Resolved if inc.resolved_at.is_none() => inc.resolved_at = Some(now),
        _ => {}
    }
    inc.updates.push(PublicUpdate {
        id: update_id.to_owned(),
        status: draft.status,
        body: edited_body.unwrap_or(&draft.body).to_owned(),
        created_at: now,
        affected_components: affected,
        by_person: edited_body.is_some(),
    });
    inc
}

/// Whether the diagnosis is confident enough for an automatic draft to say
/// "identified": its latest top origin has had at least
/// `IDENTIFIED_MIN_CONFIDENCE_PCT` % confidence, without changing, for at
/// least `IDENTIFIED_MIN_STEADY` by `now`.
pub fn diagnosis_is_confident(timeline: &[TimelineEvent], now: Timestamp) -> bool {
    let mut steady: Option<(&str, Timestamp)> = None;
    for ev in timeline {
        if let IncidentEvent::DiagnosisUpdated { origin, confidence_pct, .. } = &ev.event {
            steady = match (origin.as_deref(), confidence_pct) {
                (Some(o), Some(c)) if *c >= IDENTIFIED_MIN_CONFIDENCE_PCT => match steady {
                    Some((same, since)) if same == o => Some((same, since)),
                    _ => Some((o, ev.at)),
                },
                _ => None,
            };
        }
    }
    steady.is_some_and(|(_, since)| now - since >= IDENTIFIED_MIN_STEADY)
}

/// What the public page calls an incident: the public title a person set;
/// else the name it already has on the page; else what is affected, in the
/// page's own words ("Partial outage affecting checkout"). Never the internal
/// title, which names services and alerts customers do not know.
pub fn public_name(incident: &Incident, previous: Option<&PublicIncident>, components: &[ComponentConfig], draft: &DraftUpdate) -> String {
    if let Some(t) = &incident.public_title {
        return t.clone();
    }
    if let Some(p) = previous {
        return p.name.clone();
    }
    let worst = draft.components.values().fold(ComponentStatus::Operational, |w, s| w.worst(*s));
    let names: Vec<&str> = components.iter().filter(|c| draft.components.contains_key(&c.id)).map(|c| c.name.as_str()).collect();
    let what = match worst {
        ComponentStatus::MajorOutage => "Major outage",
        ComponentStatus::PartialOutage => "Partial outage",
        ComponentStatus::DegradedPerformance => "Degraded performance",
        ComponentStatus::Operational | ComponentStatus::UnderMaintenance => "Service disruption",
    };
    format!("{what} affecting {}", join_names(&names))
}

/// The comms lead's own update: `status` (else the page's current one, else
/// investigating), their `body`, and component statuses — those `given`,
/// over the page's current ones (a first update starts from what the draft
/// would say is affected; `resolved` makes the others operational). Always
/// publishable: a second update needs no state change. An unknown component
/// id is an error naming it.
pub fn comms_update(
    components: &[ComponentConfig],
    facts: &ImpactFacts<'_>,
    previous: Option<&PublicIncident>,
    status: Option<PublicIncidentStatus>,
    given: &BTreeMap<String, ComponentStatus>,
    body: &str,
) -> Result<DraftUpdate, String> {
    if let Some(bad) = given.keys().find(|id| !components.iter().any(|c| &c.id == *id)) {
        let known: Vec<&str> = components.iter().map(|c| c.id.as_str()).collect();
        return Err(format!("components: no component {bad:?} on the status page (known: {})", known.join(", ")));
    }
    let status = status.or_else(|| previous.filter(|p| p.status.is_open()).map(|p| p.status)).unwrap_or(PublicIncidentStatus::Investigating);
    let mut map = match previous {
        Some(p) if p.status.is_open() => p.components.clone(),
        _ => draft_update(components, facts, previous).components,
    };
    if status == PublicIncidentStatus::Resolved {
        for v in map.values_mut() {
            *v = ComponentStatus::Operational;
        }
    }
    map.extend(given.iter().map(|(k, v)| (k.clone(), *v)));
    let impact = previous.map_or(impact_for(facts.incident.severity), |p| p.impact.max(impact_for(facts.incident.severity)));
    Ok(DraftUpdate { status, impact, body: body.to_owned(), components: map, changed: true })
}

/// The current status of every component: the worst status any unresolved
/// incident gives it, else `under_maintenance` during maintenance, else
/// operational.
pub fn current_component_statuses(
    components: &[ComponentConfig],
    incidents: &[PublicIncident],
    maintenances: &[ScheduledMaintenance],
    now: Timestamp,
) -> BTreeMap<String, ComponentStatus> {
    let mut out: BTreeMap<String, ComponentStatus> = components.iter().map(|c| (c.id.clone(), ComponentStatus::Operational)).collect();
    for m in maintenances.iter().filter(|m| m.status(now) == MaintenanceStatus::InProgress) {
        for cid in &m.component_ids {
            if let Some(s) = out.get_mut(cid) {
                *s = s.worst(ComponentStatus::UnderMaintenance);
            }
        }
    }
    for inc in incidents.iter().filter(|i| i.status.is_open()) {
        for (cid, st) in &inc.components {
            if let Some(s) = out.get_mut(cid) {
                *s = s.worst(*st);
            }
        }
    }
    out
}

// ------------------------------------------------------------ renderers

fn ts(t: Timestamp) -> String {
    t.to_string()
}

/// `status` object of `status.json` / `summary.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusIndicator {
    pub indicator: Impact,
    pub description: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageJson {
    pub id: String,
    pub name: String,
    pub url: String,
    pub time_zone: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentJson {
    pub id: String,
    pub name: String,
    pub status: ComponentStatus,
    pub created_at: String,
    pub updated_at: String,
    pub position: u32,
    pub description: Option<String>,
    pub showcase: bool,
    pub start_date: Option<String>,
    pub group_id: Option<String>,
    pub page_id: String,
    pub group: bool,
    pub only_show_if_degraded: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedComponentJson {
    pub code: String,
    pub name: String,
    pub old_status: ComponentStatus,
    pub new_status: ComponentStatus,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentUpdateJson {
    pub id: String,
    pub status: PublicIncidentStatus,
    pub body: String,
    pub incident_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub display_at: String,
    pub affected_components: Vec<AffectedComponentJson>,
    pub deliver_notifications: bool,
    pub custom_tweet: Option<String>,
    pub tweet_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentJson {
    pub id: String,
    pub name: String,
    pub status: PublicIncidentStatus,
    pub created_at: String,
    pub updated_at: String,
    pub monitoring_at: Option<String>,
    pub resolved_at: Option<String>,
    pub impact: Impact,
    pub shortlink: String,
    pub started_at: String,
    pub page_id: String,
    /// Newest first, as Statuspage lists them.
    pub incident_updates: Vec<IncidentUpdateJson>,
    pub components: Vec<ComponentJson>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceJson {
    pub id: String,
    pub name: String,
    pub status: MaintenanceStatus,
    pub created_at: String,
    pub updated_at: String,
    pub monitoring_at: Option<String>,
    pub resolved_at: Option<String>,
    pub impact: String,
    pub shortlink: String,
    pub started_at: String,
    pub page_id: String,
    pub incident_updates: Vec<IncidentUpdateJson>,
    pub components: Vec<ComponentJson>,
    pub scheduled_for: String,
    pub scheduled_until: String,
}

/// `GET /api/v2/summary.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryJson {
    pub page: PageJson,
    pub components: Vec<ComponentJson>,
    pub incidents: Vec<IncidentJson>,
    pub scheduled_maintenances: Vec<MaintenanceJson>,
    pub status: StatusIndicator,
}

/// `GET /api/v2/status.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusJson {
    pub page: PageJson,
    pub status: StatusIndicator,
}

/// `GET /api/v2/components.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentsJson {
    pub page: PageJson,
    pub components: Vec<ComponentJson>,
}

/// `GET /api/v2/incidents.json` (all, newest first) and
/// `/api/v2/incidents/unresolved.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentsJson {
    pub page: PageJson,
    pub incidents: Vec<IncidentJson>,
}

/// `GET /api/v2/scheduled-maintenances.json` (and its `upcoming` / `active`
/// variants).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledMaintenancesJson {
    pub page: PageJson,
    pub scheduled_maintenances: Vec<MaintenanceJson>,
}

/// Everything the renderers need, in one place.
#[derive(Clone, Debug)]
pub struct StatusPageView<'a> {
    pub page: &'a PageInfo,
    pub components: &'a [ComponentConfig],
    /// All public incidents (open and past); renderers pick what they need.
    pub incidents: &'a [PublicIncident],
    pub maintenances: &'a [ScheduledMaintenance],
}

fn indicator_description(i: Impact) -> &'static str {
    match i {
        Impact::None => "All Systems Operational",
        Impact::Minor => "Minor Service Outage",
        Impact::Major => "Partial System Outage",
        Impact::Critical => "Major System Outage",
    }
}

impl StatusPageView<'_> {
    fn updated_at(&self) -> Timestamp {
        self.incidents
            .iter()
            .map(|i| i.updated_at)
            .chain(self.components.iter().map(|c| c.created_at))
            .chain(self.maintenances.iter().map(|m| m.created_at))
            .max()
            .unwrap_or(Timestamp::EPOCH)
    }

    fn page_json(&self) -> PageJson {
        PageJson {
            id: self.page.id.clone(),
            name: self.page.name.clone(),
            url: self.page.url.clone(),
            time_zone: self.page.time_zone.clone(),
            updated_at: ts(self.updated_at()),
        }
    }

    /// The page indicator: the worst impact among open incidents, else the
    /// worst component status (major outage → critical, partial → major,
    /// degraded → minor).
    pub fn indicator(&self, now: Timestamp) -> StatusIndicator {
        let from_incidents = self.incidents.iter().filter(|i| i.status.is_open()).map(|i| i.impact).max().unwrap_or(Impact::None);
        let from_components = current_component_statuses(self.components, self.incidents, self.maintenances, now)
            .values()
            .map(|s| match s {
                ComponentStatus::MajorOutage => Impact::Critical,
                ComponentStatus::PartialOutage => Impact::Major,
                ComponentStatus::DegradedPerformance => Impact::Minor,
                ComponentStatus::Operational | ComponentStatus::UnderMaintenance => Impact::None,
            })
            .max()
            .unwrap_or(Impact::None);
        let indicator = from_incidents.max(from_components);
        let description = if indicator == Impact::None && self.maintenances.iter().any(|m| m.status(now) == MaintenanceStatus::InProgress) {
            "Service Under Maintenance".to_owned()
        } else {
            indicator_description(indicator).to_owned()
        };
        StatusIndicator { indicator, description }
    }

    fn components_json(&self, now: Timestamp, only: Option<&[String]>) -> Vec<ComponentJson> {
        let statuses = current_component_statuses(self.components, self.incidents, self.maintenances, now);
        // A component's updated_at is its last status change: the latest
        // update that touched it, else its creation.
        let mut touched: BTreeMap<&str, Timestamp> = BTreeMap::new();
        for inc in self.incidents {
            for u in &inc.updates {
                for a in &u.affected_components {
                    let e = touched.entry(a.code.as_str()).or_insert(u.created_at);
                    *e = (*e).max(u.created_at);
                }
            }
        }
        self.components
            .iter()
            .enumerate()
            .filter(|(_, c)| only.is_none_or(|ids| ids.contains(&c.id)))
            .map(|(i, c)| ComponentJson {
                id: c.id.clone(),
                name: c.name.clone(),
                status: statuses.get(&c.id).copied().unwrap_or(ComponentStatus::Operational),
                created_at: ts(c.created_at),
                updated_at: ts(touched.get(c.id.as_str()).copied().unwrap_or(c.created_at).max(c.created_at)),
                position: i as u32 + 1,
                description: c.description.clone(),
                showcase: true,
                start_date: None,
                group_id: c.group.clone(),
                page_id: self.page.id.clone(),
                group: false,
                only_show_if_degraded: false,
            })
            .collect()
    }

    fn incident_json(&self, inc: &PublicIncident, now: Timestamp) -> IncidentJson {
        let ids: Vec<String> = inc.components.keys().cloned().collect();
        IncidentJson {
            id: inc.id.clone(),
            name: inc.name.clone(),
            status: inc.status,
            created_at: ts(inc.created_at),
            updated_at: ts(inc.updated_at),
            monitoring_at: inc.monitoring_at.map(ts),
            resolved_at: inc.resolved_at.map(ts),
            impact: inc.impact,
            shortlink: format!("{}/incidents/{}", self.page.url.trim_end_matches('/'), inc.id),
            started_at: ts(inc.started_at),
            page_id: self.page.id.clone(),
            incident_updates: inc
                .updates
                .iter()
                .rev()
                .map(|u| IncidentUpdateJson {
                    id: u.id.clone(),
                    status: u.status,
                    body: u.body.clone(),
                    incident_id: inc.id.clone(),
                    created_at: ts(u.created_at),
                    updated_at: ts(u.created_at),
                    display_at: ts(u.created_at),
                    affected_components: u
                        .affected_components
                        .iter()
                        .map(|a| AffectedComponentJson { code: a.code.clone(), name: a.name.clone(), old_status: a.old_status, new_status: a.new_status })
                        .collect(),
                    deliver_notifications: true,
                    custom_tweet: None,
                    tweet_id: None,
                })
                .collect(),
            components: self.components_json(now, Some(&ids)),
        }
    }

    pub fn status_json(&self, now: Timestamp) -> StatusJson {
        StatusJson { page: self.page_json(), status: self.indicator(now) }
    }

    /// `summary.json`: unresolved incidents and upcoming or active maintenance.
    pub fn summary_json(&self, now: Timestamp) -> SummaryJson {
        let mut incidents: Vec<&PublicIncident> = self.incidents.iter().filter(|i| i.status.is_open()).collect();
        incidents.sort_by_key(|i| std::cmp::Reverse(i.created_at));
        let scheduled_maintenances = self
            .maintenances
            .iter()
            .filter(|m| matches!(m.status(now), MaintenanceStatus::Scheduled | MaintenanceStatus::InProgress | MaintenanceStatus::Verifying))
            .map(|m| self.maintenance_json(m, now))
            .collect();
        SummaryJson {
            page: self.page_json(),
            components: self.components_json(now, None),
            incidents: incidents.into_iter().map(|i| self.incident_json(i, now)).collect(),
            scheduled_maintenances,
            status: self.indicator(now),
        }
    }

    pub fn components_doc(&self, now: Timestamp) -> ComponentsJson {
        ComponentsJson { page: self.page_json(), components: self.components_json(now, None) }
    }

    /// All incidents newest first (`unresolved_only` for `unresolved.json`),
    /// at most `limit` (Statuspage serves the 50 most recent).
    pub fn incidents_doc(&self, now: Timestamp, unresolved_only: bool, limit: usize) -> IncidentsJson {
        let mut incidents: Vec<&PublicIncident> = self.incidents.iter().filter(|i| !unresolved_only || i.status.is_open()).collect();
        incidents.sort_by_key(|i| std::cmp::Reverse((i.created_at, i.id.clone())));
        IncidentsJson { page: self.page_json(), incidents: incidents.into_iter().take(limit).map(|i| self.incident_json(i, now)).collect() }
    }

    /// Maintenances newest first, filtered by status (all when `only` is empty).
    pub fn maintenances_doc(&self, now: Timestamp, only: &[MaintenanceStatus]) -> ScheduledMaintenancesJson {
        let mut ms: Vec<&ScheduledMaintenance> = self.maintenances.iter().filter(|m| only.is_empty() || only.contains(&m.status(now))).collect();
        ms.sort_by_key(|m| std::cmp::Reverse((m.scheduled_for, m.id.clone())));
        ScheduledMaintenancesJson { page: self.page_json(), scheduled_maintenances: ms.into_iter().map(|m| self.maintenance_json(m, now)).collect() }
    }

    fn maintenance_json(&self, m: &ScheduledMaintenance, now: Timestamp) -> MaintenanceJson {
        MaintenanceJson {
            id: m.id.clone(),
            name: m.name.clone(),
            status: m.status(now),
            created_at: ts(m.created_at),
            updated_at: ts(m.created_at),
            monitoring_at: None,
            resolved_at: None,
            impact: "maintenance".to_owned(),
            shortlink: format!("{}/incidents/{}", self.page.url.trim_end_matches('/'), m.id),
            started_at: ts(m.scheduled_for),
            page_id: self.page.id.clone(),
            incident_updates: Vec::new(),
            components: self.components_json(now, Some(&m.component_ids)),
            scheduled_for: ts(m.scheduled_for),
            scheduled_until: ts(m.scheduled_until),
        }
    }

    /// An Atom feed of incident history: one entry per incident, newest
    /// first, its updates listed in the content (newest first).
    pub fn render_atom(&self, max_entries: usize) -> String {
        let base = self.page.url.trim_end_matches('/');
        let mut incidents: Vec<&PublicIncident> = self.incidents.iter().collect();
        incidents.sort_by_key(|i| std::cmp::Reverse((i.updated_at, i.id.clone())));
        let mut s = String::new();
        s.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feed xml:lang=\"en-US\" xmlns=\"http://www.w3.org/2005/Atom\">\n");
        let _ = writeln!(s, "  <id>tag:{},2005:/history</id>", xml(&host_of(base)));
        let _ = writeln!(s, "  <link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>", xml(base));
        let _ = writeln!(s, "  <link rel=\"self\" type=\"application/atom+xml\" href=\"{}/history.atom\"/>", xml(base));
        let _ = writeln!(s, "  <title>{} Status - Incident History</title>", xml(&self.page.name));
        let _ = writeln!(s, "  <updated>{}</updated>", ts(self.updated_at()));
        for inc in incidents.into_iter().take(max_entries) {
            s.push_str("  <entry>\n");
            let _ = writeln!(s, "    <id>tag:{},2005:Incident/{}</id>", xml(&host_of(base)), xml(&inc.id));
            let _ = writeln!(s, "    <published>{}</published>", ts(inc.created_at));
            let _ = writeln!(s, "    <updated>{}</updated>", ts(inc.updated_at));
            let _ = writeln!(s, "    <link rel=\"alternate\" type=\"text/html\" href=\"{base}/incidents/{}\"/>", xml(&inc.id));
            let _ = writeln!(s, "    <title>{}</title>", xml(&inc.name));
            let mut html = String::new();
            for u in inc.updates.iter().rev() {
                let _ = write!(html, "<p><small>{}</small><br><strong>{}</strong> - {}</p>", ts(u.created_at), title_case(u.status.as_str()), xml(&u.body));
            }
            let _ = writeln!(s, "    <content type=\"html\">{}</content>", xml(&html));
            s.push_str("  </entry>\n");
        }
        s.push_str("</feed>\n");
        s
    }
}

/// `meta` of a subscriber webhook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookMeta {
    pub unsubscribe: String,
    pub documentation: String,
}

/// `page` of a subscriber webhook.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookPage {
    pub id: String,
    pub status_indicator: Impact,
    pub status_description: String,
}

/// Subscriber webhook for an incident update (Statuspage's shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentWebhook {
    pub meta: WebhookMeta,
    pub page: WebhookPage,
    pub incident: IncidentJson,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentUpdateJson {
    pub created_at: String,
    pub new_status: ComponentStatus,
    pub old_status: ComponentStatus,
    pub id: String,
    pub component_id: String,
}

/// Subscriber webhook for one component's status change (Statuspage's shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentWebhook {
    pub meta: WebhookMeta,
    pub page: WebhookPage,
    pub component_update: ComponentUpdateJson,
    pub component: ComponentJson,
}

impl StatusPageView<'_> {
    fn webhook_page(&self, now: Timestamp) -> WebhookPage {
        let s = self.indicator(now);
        WebhookPage { id: self.page.id.clone(), status_indicator: s.indicator, status_description: s.description }
    }

    /// The payloads to post to subscribers after `update` of `incident_id`
    /// was published: one incident webhook, then one per component change.
    pub fn subscriber_webhooks(
        &self,
        incident_id: &str,
        update_id: &str,
        meta: &WebhookMeta,
        now: Timestamp,
    ) -> Option<(IncidentWebhook, Vec<ComponentWebhook>)> {
        let inc = self.incidents.iter().find(|i| i.id == incident_id)?;
        let update = inc.updates.iter().find(|u| u.id == update_id)?;
        let incident = IncidentWebhook { meta: meta.clone(), page: self.webhook_page(now), incident: self.incident_json(inc, now) };
        let components = self.components_json(now, None);
        let changes = update
            .affected_components
            .iter()
            .filter_map(|a| {
                let component = components.iter().find(|c| c.id == a.code)?.clone();
                Some(ComponentWebhook {
                    meta: meta.clone(),
                    page: self.webhook_page(now),
                    component_update: ComponentUpdateJson {
                        created_at: ts(update.created_at),
                        new_status: a.new_status,
                        old_status: a.old_status,
                        id: format!("{}-{}", update.id, a.code),
                        component_id: a.code.clone(),
                    },
                    component,
                })
            })
            .collect();
        Some((incident, changes))
    }
}

fn host_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

fn title_case(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

/// Escapes text for XML content and attribute values.
pub fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 forbids are dropped rather than emitted.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}
