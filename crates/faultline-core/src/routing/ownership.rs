//! Ownership routing: who owns an incident and who is brought in, from the
//! catalogue. An incident routes to the owners of its impacted flows; the
//! owners of its origin service(s) join as responders. With no known flow the
//! origin's owner owns it.
//!
//! What it is: [`decide_ownership`], returning the teams with a reason line
//! for the timeline, and [`routing_labels`], the label set per team that the
//! routing tree (`team="payments"` matchers, silences, time intervals) then
//! decides on. What it is not: paging (escalation) or the catalogue parser.

use serde::{Deserialize, Serialize};

use super::matcher::Labels;
use crate::catalogue::Catalogue;
use crate::ids::{FlowName, ServiceName, TeamId};
use crate::incident::Severity;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Involvement {
    /// Owns an impacted flow (or the origin, when no flow is known): paged.
    Owner,
    /// Owns the origin service: brought in as a responder.
    Responder,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamInvolvement {
    pub team: TeamId,
    pub involvement: Involvement,
    /// The impacted flows this team owns (empty for a pure responder).
    pub flows: Vec<FlowName>,
    /// The origin services this team owns.
    pub origins: Vec<ServiceName>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnershipDecision {
    /// Owners first (in impacted-flow order), then responders.
    pub teams: Vec<TeamInvolvement>,
    pub reason: String,
}

impl OwnershipDecision {
    pub fn owners(&self) -> impl Iterator<Item = &TeamId> {
        self.teams.iter().filter(|t| t.involvement == Involvement::Owner).map(|t| &t.team)
    }
    pub fn responders(&self) -> impl Iterator<Item = &TeamId> {
        self.teams.iter().filter(|t| t.involvement == Involvement::Responder).map(|t| &t.team)
    }
}

fn entry<'a>(teams: &'a mut Vec<TeamInvolvement>, team: &TeamId, involvement: Involvement) -> &'a mut TeamInvolvement {
    let i = match teams.iter().position(|t| &t.team == team) {
        Some(i) => i,
        None => {
            teams.push(TeamInvolvement { team: team.clone(), involvement, flows: Vec::new(), origins: Vec::new() });
            teams.len() - 1
        }
    };
    &mut teams[i]
}

/// Decides owners and responders for an incident.
pub fn decide_ownership(catalogue: &Catalogue, impacted_flows: &[FlowName], origins: &[ServiceName]) -> OwnershipDecision {
    let mut teams: Vec<TeamInvolvement> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut unknown_flows = Vec::new();
    for f in impacted_flows {
        match catalogue.flows.iter().find(|x| &x.name == f) {
            Some(flow) => {
                let t = entry(&mut teams, &flow.owner, Involvement::Owner);
                if !t.flows.contains(f) {
                    t.flows.push(f.clone());
                }
            }
            None => unknown_flows.push(f.as_str()),
        }
    }
    let no_flow_owner = teams.is_empty();
    let mut unowned = Vec::new();
    for s in origins {
        match catalogue.services.iter().find(|x| &x.name == s).and_then(|x| x.owner.as_ref()) {
            Some(owner) => {
                let role = if no_flow_owner { Involvement::Owner } else { Involvement::Responder };
                let t = entry(&mut teams, owner, role);
                if !t.origins.contains(s) {
                    t.origins.push(s.clone());
                }
            }
            None => unowned.push(s.as_str()),
        }
    }
    // Owners first, stable within each group.
    teams.sort_by_key(|t| t.involvement == Involvement::Responder);
    for t in &teams {
        let mut why = Vec::new();
        if !t.flows.is_empty() {
            why.push(format!("owns impacted flow {}", t.flows.iter().map(FlowName::as_str).collect::<Vec<_>>().join(", ")));
        }
        if !t.origins.is_empty() {
            why.push(format!("owns origin {}", t.origins.iter().map(ServiceName::as_str).collect::<Vec<_>>().join(", ")));
        }
        let role = match t.involvement {
            Involvement::Owner => "owner",
            Involvement::Responder => "responder",
        };
        notes.push(format!("{} ({role}: {})", t.team, why.join("; ")));
    }
    let mut reason = if notes.is_empty() { "no owning team known".to_owned() } else { notes.join(", ") };
    if !unknown_flows.is_empty() {
        reason.push_str(&format!("; flows not in the catalogue: {}", unknown_flows.join(", ")));
    }
    if !unowned.is_empty() {
        reason.push_str(&format!("; origin without owner: {}", unowned.join(", ")));
    }
    OwnershipDecision { teams, reason }
}

/// The labels the routing tree sees for one involved team: `team`,
/// `involvement`, `severity`, `flow` (first impacted flow it owns) and
/// `origin_service` (first origin it owns), plus any `extra` labels.
pub fn routing_labels(t: &TeamInvolvement, severity: Severity, extra: &Labels) -> Labels {
    let mut l = extra.clone();
    l.insert("team".into(), t.team.to_string());
    l.insert(
        "involvement".into(),
        match t.involvement {
            Involvement::Owner => "owner",
            Involvement::Responder => "responder",
        }
        .into(),
    );
    l.insert("severity".into(), severity.to_string());
    if let Some(f) = t.flows.first() {
        l.insert("flow".into(), f.to_string());
    }
    if let Some(s) = t.origins.first() {
        l.insert("origin_service".into(), s.to_string());
    }
    l
}
