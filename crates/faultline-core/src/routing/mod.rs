//! Routing: which receivers (and escalation policy) an alert or incident goes
//! to, or why it does not page — as a [`RoutingDecision`] that carries its
//! reason as text for the timeline.
//!
//! What it is: an Alertmanager-compatible routing tree (`receiver`,
//! `matchers`, `group_by`, `continue`, nested `routes`,
//! `mute_time_intervals`, `active_time_intervals`, top-level
//! `time_intervals`), plus Faultline's `escalation_policy` per route, silences
//! in the `/api/v2/silences` shape and maintenance windows. The checks run in
//! this order, first hit wins: dependency-aware suppression (the correlator
//! says this incident is a child of another: children never page
//! separately) → maintenance window → silence → per-route time muting.
//!
//! Route selection follows Alertmanager: a route matches when all its matchers
//! do; its children are tried in order; a matching child without `continue`
//! stops the search; if no child matches, the route itself is the result.
//! `receiver`, `group_by` and `escalation_policy` are inherited.
//!
//! What it is not: grouping timers (`group_wait` etc. are accepted and ignored
//! here; the engine owns timers), inhibition rules (the correlator's graph
//! replaces them), storage.

pub mod matcher;
pub mod ownership;
pub mod silence;
pub mod time_interval;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

pub use matcher::{ApiMatcher, Labels, MatchOp, Matcher, MatcherError};
pub use ownership::{Involvement, OwnershipDecision, TeamInvolvement, decide_ownership, routing_labels};
pub use silence::{CompiledSilence, MaintenanceWindow, Silence, SilenceError, SilenceState, SilenceStatus};
pub use time_interval::{NamedTimeInterval, NamedTimeIntervalConfig, TimeIntervalConfig, TimeIntervalError};

use crate::ids::IncidentId;
use crate::time::Timestamp;

/// One node of the routing tree as written in config.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(default)]
    pub receiver: Option<String>,
    #[serde(default)]
    pub matchers: Vec<Matcher>,
    /// Label names; `...` groups by all labels. Inherited when absent.
    #[serde(default)]
    pub group_by: Option<Vec<String>>,
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    #[serde(default)]
    pub mute_time_intervals: Vec<String>,
    #[serde(default)]
    pub active_time_intervals: Vec<String>,
    /// Faultline: the escalation policy for incidents on this route.
    #[serde(default)]
    pub escalation_policy: Option<String>,
    /// Accepted for Alertmanager compatibility; timers belong to the engine.
    #[serde(default)]
    pub group_wait: Option<String>,
    #[serde(default)]
    pub group_interval: Option<String>,
    #[serde(default)]
    pub repeat_interval: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    pub route: RouteConfig,
    #[serde(default)]
    pub time_intervals: Vec<NamedTimeIntervalConfig>,
    #[serde(default)]
    pub maintenance_windows: Vec<MaintenanceWindow>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    #[error("the root route must name a receiver")]
    RootWithoutReceiver,
    #[error("the root route must not have matchers")]
    RootWithMatchers,
    #[error("route {route}: unknown time interval {name:?}")]
    UnknownTimeInterval { route: String, name: String },
    #[error("time interval {name:?} is defined twice")]
    DuplicateTimeInterval { name: String },
    #[error(transparent)]
    TimeInterval(#[from] TimeIntervalError),
    #[error("routing tree is deeper than {0} levels")]
    TooDeep(usize),
}

const MAX_DEPTH: usize = 32;

#[derive(Clone, Debug, PartialEq, Eq)]
enum GroupBy {
    All,
    Labels(Vec<String>),
}

#[derive(Clone, Debug)]
struct Route {
    key: String,
    receiver: String,
    matchers: Vec<Matcher>,
    group_by: GroupBy,
    continue_matching: bool,
    children: Vec<Route>,
    mute: Vec<String>,
    active: Vec<String>,
    escalation_policy: Option<String>,
}

/// A validated routing configuration.
#[derive(Clone, Debug)]
pub struct Router {
    root: Route,
    intervals: BTreeMap<String, NamedTimeInterval>,
    maintenance: Vec<MaintenanceWindow>,
}

/// One matched route.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteMatch {
    pub receiver: String,
    pub escalation_policy: Option<String>,
    /// Alertmanager-style route key, e.g. `{}/{team="db"}`.
    pub route_key: String,
    pub group_labels: Labels,
    /// `route_key:{group labels}`, as in Alertmanager's webhook `groupKey`.
    pub group_key: String,
    /// The time interval muting this route now (mute interval active, or
    /// outside every active interval), if any.
    pub muted_by: Option<String>,
}

/// Whether to page, and why not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Page through every matched route that is not muted.
    Notify,
    /// A child of another incident: the parent pages, this one does not.
    Suppressed {
        parent: IncidentId,
    },
    InMaintenance {
        window: String,
    },
    Silenced {
        silence_ids: Vec<String>,
    },
    /// Every matched route is muted by its time intervals.
    Muted,
}

/// The routing decision with its reason, ready for the timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutingDecision {
    pub outcome: Outcome,
    pub routes: Vec<RouteMatch>,
    pub reason: String,
}

impl RoutingDecision {
    pub fn pages(&self) -> bool {
        self.outcome == Outcome::Notify
    }
    /// The matched routes that notify now (empty unless the outcome is Notify).
    pub fn notifying_routes(&self) -> Vec<&RouteMatch> {
        if !self.pages() {
            return Vec::new();
        }
        self.routes.iter().filter(|r| r.muted_by.is_none()).collect()
    }
}

/// What the router needs to know about the thing being routed.
#[derive(Clone, Copy, Debug)]
pub struct RoutingInput<'a> {
    pub labels: &'a Labels,
    /// Set by the correlator when this incident is a child of another one
    /// (dependency-aware suppression): children never page separately.
    pub parent: Option<IncidentId>,
}

impl RoutingConfig {
    pub fn build(&self) -> Result<Router, RoutingError> {
        if self.route.receiver.is_none() {
            return Err(RoutingError::RootWithoutReceiver);
        }
        if !self.route.matchers.is_empty() {
            return Err(RoutingError::RootWithMatchers);
        }
        let mut intervals = BTreeMap::new();
        for ti in &self.time_intervals {
            let built = ti.build()?;
            if intervals.insert(ti.name.clone(), built).is_some() {
                return Err(RoutingError::DuplicateTimeInterval { name: ti.name.clone() });
            }
        }
        let root = build_route(&self.route, None, &intervals, 0)?;
        Ok(Router { root, intervals, maintenance: self.maintenance_windows.clone() })
    }
}

fn build_route(cfg: &RouteConfig, parent: Option<&Route>, intervals: &BTreeMap<String, NamedTimeInterval>, depth: usize) -> Result<Route, RoutingError> {
    if depth > MAX_DEPTH {
        return Err(RoutingError::TooDeep(MAX_DEPTH));
    }
    let own = format!("{{{}}}", cfg.matchers.iter().map(ToString::to_string).collect::<Vec<_>>().join(","));
    let key = match parent {
        None => own,
        Some(p) => format!("{}/{own}", p.key),
    };
    for name in cfg.mute_time_intervals.iter().chain(&cfg.active_time_intervals) {
        if !intervals.contains_key(name) {
            return Err(RoutingError::UnknownTimeInterval { route: key, name: name.clone() });
        }
    }
    let group_by = match &cfg.group_by {
        Some(g) if g.iter().any(|l| l == "...") => GroupBy::All,
        Some(g) => GroupBy::Labels(g.clone()),
        None => parent.map_or(GroupBy::Labels(Vec::new()), |p| p.group_by.clone()),
    };
    let mut route = Route {
        key,
        // Invariant: the root's receiver is checked in `build`; children inherit.
        receiver: cfg.receiver.clone().or_else(|| parent.map(|p| p.receiver.clone())).unwrap_or_default(),
        matchers: cfg.matchers.clone(),
        group_by,
        continue_matching: cfg.continue_matching,
        children: Vec::new(),
        mute: cfg.mute_time_intervals.clone(),
        active: cfg.active_time_intervals.clone(),
        escalation_policy: cfg.escalation_policy.clone().or_else(|| parent.and_then(|p| p.escalation_policy.clone())),
    };
    let mut children = Vec::with_capacity(cfg.routes.len());
    for c in &cfg.routes {
        children.push(build_route(c, Some(&route), intervals, depth + 1)?);
    }
    route.children = children;
    Ok(route)
}

fn matching<'r>(route: &'r Route, labels: &Labels, out: &mut Vec<&'r Route>) -> bool {
    if !route.matchers.iter().all(|m| m.matches(labels)) {
        return false;
    }
    let before = out.len();
    for child in &route.children {
        if matching(child, labels, out) && !child.continue_matching {
            break;
        }
    }
    if out.len() == before {
        out.push(route);
    }
    true
}

fn render_labels(l: &Labels) -> String {
    let mut s = String::from("{");
    for (i, (k, v)) in l.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{k}={v:?}");
    }
    s.push('}');
    s
}

impl Router {
    /// The matched routes for these labels, ignoring silences and time.
    pub fn matching_routes(&self, labels: &Labels, now: Timestamp) -> Vec<RouteMatch> {
        let mut hits = Vec::new();
        matching(&self.root, labels, &mut hits);
        hits.into_iter()
            .map(|r| {
                let group_labels: Labels = match &r.group_by {
                    GroupBy::All => labels.clone(),
                    GroupBy::Labels(names) => names.iter().filter_map(|n| labels.get(n).map(|v| (n.clone(), v.clone()))).collect(),
                };
                let muted_by = r.mute.iter().find(|n| self.intervals.get(*n).is_some_and(|i| i.contains(now))).cloned().or_else(|| {
                    let outside = !r.active.is_empty() && !r.active.iter().any(|n| self.intervals.get(n).is_some_and(|i| i.contains(now)));
                    outside.then(|| format!("outside active intervals {}", r.active.join(", ")))
                });
                RouteMatch {
                    receiver: r.receiver.clone(),
                    escalation_policy: r.escalation_policy.clone(),
                    route_key: r.key.clone(),
                    group_key: format!("{}:{}", r.key, render_labels(&group_labels)),
                    group_labels,
                    muted_by,
                }
            })
            .collect()
    }

    /// Whether the named time interval contains `now` (`None` if unknown).
    pub fn time_interval_contains(&self, name: &str, now: Timestamp) -> Option<bool> {
        self.intervals.get(name).map(|i| i.contains(now))
    }

    /// Maintenance windows active at `now` that match these labels.
    pub fn maintenance_for<'a>(&'a self, labels: &Labels, now: Timestamp) -> Vec<&'a MaintenanceWindow> {
        self.maintenance.iter().filter(|w| w.applies(labels, now)).collect()
    }

    pub fn maintenance_windows(&self) -> &[MaintenanceWindow] {
        &self.maintenance
    }

    /// Decides whether and where to page, with the reason as text.
    pub fn route(&self, input: RoutingInput<'_>, silences: &[CompiledSilence], now: Timestamp) -> RoutingDecision {
        let routes = self.matching_routes(input.labels, now);
        let to = routes.iter().map(|r| format!("{} (route {})", r.receiver, r.route_key)).collect::<Vec<_>>().join(", ");
        if let Some(parent) = input.parent {
            return RoutingDecision {
                outcome: Outcome::Suppressed { parent },
                reason: format!("not paged: part of incident {parent}, which pages for the whole failure (would have gone to {to})"),
                routes,
            };
        }
        if let Some(w) = self.maintenance.iter().find(|w| w.applies(input.labels, now)) {
            return RoutingDecision {
                outcome: Outcome::InMaintenance { window: w.name.clone() },
                reason: format!("not paged: maintenance window {:?} until {} (would have gone to {to})", w.name, w.ends_at),
                routes,
            };
        }
        let silencing: Vec<&CompiledSilence> = silences.iter().filter(|s| s.silences(input.labels, now)).collect();
        if !silencing.is_empty() {
            let who = silencing
                .iter()
                .map(|s| format!("{} by {} ({:?}) until {}", s.silence.id, s.silence.created_by, s.silence.comment, s.silence.ends_at))
                .collect::<Vec<_>>()
                .join("; ");
            return RoutingDecision {
                outcome: Outcome::Silenced { silence_ids: silencing.iter().map(|s| s.silence.id.clone()).collect() },
                reason: format!("not paged: silenced by {who} (would have gone to {to})"),
                routes,
            };
        }
        let live: Vec<&RouteMatch> = routes.iter().filter(|r| r.muted_by.is_none()).collect();
        if live.is_empty() {
            let why = routes.iter().map(|r| format!("{} muted by {}", r.receiver, r.muted_by.as_deref().unwrap_or("?"))).collect::<Vec<_>>().join(", ");
            return RoutingDecision { outcome: Outcome::Muted, reason: format!("not paged: {why}"), routes };
        }
        let mut reason = format!(
            "routed to {}",
            live.iter()
                .map(|r| {
                    let mut s = format!("{} (route {}, group {})", r.receiver, r.route_key, render_labels(&r.group_labels));
                    if let Some(p) = &r.escalation_policy {
                        let _ = write!(s, " with escalation policy {p}");
                    }
                    s
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
        let muted: Vec<String> = routes.iter().filter_map(|r| r.muted_by.as_ref().map(|m| format!("{} muted by {m}", r.receiver))).collect();
        if !muted.is_empty() {
            let _ = write!(reason, "; {}", muted.join(", "));
        }
        RoutingDecision { outcome: Outcome::Notify, routes, reason }
    }
}
