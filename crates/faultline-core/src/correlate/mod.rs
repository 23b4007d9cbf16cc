//! The correlator: turns findings and external alerts into incidents, one per
//! failure, by the dependency graph and time.
//!
//! Sans-IO like every core component: `observe(observation, &topology, now)`
//! and `tick(now)` return `CorrelationEvent`s as data; the driver maps
//! `GroupId`s to incidents and records the events on their timelines.
//!
//! Grouping rule: a new symptom joins an open group when one of its services
//! is within `max_hops` (either direction) of one of the group's services in
//! the learned dependency graph, or shares a flow with it, and the group fired
//! within `join_window`. A symptom that connects several open groups merges
//! them into the oldest (both histories kept: the loser is `merged_into`). A
//! group resolves when every member has cleared and stayed clear for
//! `hold_down`, or when a person resolves its incident (`Correlator::close`:
//! the driver tells the correlator, so the group stops taking symptoms). A
//! failure on the same services within `relink_window` of a resolution opens
//! a new group linked to the old one; within `reopen_window` the driver is
//! told to reopen the old group's incident instead of opening another.
//!
//! Invariant INV-CORR-1: a member (finding key or alert fingerprint) belongs
//! to at most one open group; checked by a property test.
//!
//! Not here: detection (`detect`), origin scoring details (`explain`), or
//! anything about notification.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::bounded::LruMap;
use crate::finding::{CausalChain, Finding, Subject};
use crate::ids::{FlowName, ServiceName};
use crate::model::{Flow, Interaction};
use crate::signal::{AlertState, ExternalAlert};
use crate::time::{Duration, Timestamp};

mod changes;
mod digest;
pub mod explain;
#[cfg(test)]
mod tests;

pub use changes::{CorrelatorChanges, GroupHeader, RebuildError};

/// Maps with structured keys serialise as lists of pairs (JSON object keys
/// must be strings), so the correlator's state can be persisted as JSON.
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<K: Serialize, V: Serialize, S: Serializer>(m: &BTreeMap<K, V>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    pub fn deserialize<'de, K, V, D>(d: D) -> Result<BTreeMap<K, V>, D::Error>
    where
        K: Deserialize<'de> + Ord,
        V: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

/// The call graph the correlator reasons over: directed caller → callee
/// edges between services, and the flows that cross them.
#[derive(Clone, Debug, Default)]
pub struct Topology {
    callees: BTreeMap<ServiceName, BTreeSet<ServiceName>>,
    callers: BTreeMap<ServiceName, BTreeSet<ServiceName>>,
    flows: Vec<Flow>,
}

impl Topology {
    pub fn new(edges: impl IntoIterator<Item = Interaction>, flows: Vec<Flow>) -> Topology {
        let mut t = Topology { flows, ..Topology::default() };
        for e in edges {
            t.add_edge(e.caller, e.callee);
        }
        // Declared flows are edges too: a flow says these services talk.
        let flow_edges: Vec<_> = t.flows.iter().flat_map(|f| f.interactions.clone()).collect();
        for e in flow_edges {
            t.add_edge(e.caller, e.callee);
        }
        t
    }

    pub fn add_edge(&mut self, caller: ServiceName, callee: ServiceName) {
        if caller == callee {
            return;
        }
        self.callees.entry(caller.clone()).or_default().insert(callee.clone());
        self.callers.entry(callee).or_default().insert(caller);
    }

    pub fn flows(&self) -> &[Flow] {
        &self.flows
    }

    pub fn callees(&self, s: &ServiceName) -> impl Iterator<Item = &ServiceName> {
        self.callees.get(s).into_iter().flatten()
    }

    /// Undirected hop distance, if within `max`.
    pub fn distance(&self, a: &ServiceName, b: &ServiceName, max: u32) -> Option<u32> {
        if a == b {
            return Some(0);
        }
        let mut seen = BTreeSet::from([a]);
        let mut queue = VecDeque::from([(a, 0u32)]);
        while let Some((s, d)) = queue.pop_front() {
            if d >= max {
                continue;
            }
            let next = self.callees.get(s).into_iter().flatten().chain(self.callers.get(s).into_iter().flatten());
            for n in next {
                if n == b {
                    return Some(d + 1);
                }
                if seen.insert(n) {
                    queue.push_back((n, d + 1));
                }
            }
        }
        None
    }

    /// Whether `to` is reachable from `from` following calls (caller → callee).
    pub fn calls_transitively(&self, from: &ServiceName, to: &ServiceName) -> bool {
        let mut seen = BTreeSet::from([from]);
        let mut stack = vec![from];
        while let Some(s) = stack.pop() {
            for n in self.callees(s) {
                if n == to {
                    return true;
                }
                if seen.insert(n) {
                    stack.push(n);
                }
            }
        }
        false
    }

    /// Flows passing through any of these services.
    pub fn flows_touching<'a>(&'a self, services: &'a BTreeSet<ServiceName>) -> impl Iterator<Item = &'a FlowName> + 'a {
        self.flows.iter().filter(|f| services.iter().any(|s| f.touches(s))).map(|f| &f.name)
    }
}

/// The services a subject is about.
pub fn subject_services(subject: &Subject, topology: &Topology) -> BTreeSet<ServiceName> {
    match subject {
        Subject::Service { service } | Subject::Resource { service, .. } => BTreeSet::from([service.clone()]),
        Subject::Interaction { interaction } => BTreeSet::from([interaction.caller.clone(), interaction.callee.clone()]),
        Subject::Flow { flow } => {
            topology.flows.iter().filter(|f| &f.name == flow).flat_map(|f| f.interactions.iter().flat_map(|i| [i.caller.clone(), i.callee.clone()])).collect()
        }
    }
}

/// Identifies one member of a group across refreshes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MemberKey {
    Finding { kind: String, subject: Subject },
    Alert { source: String, fingerprint: String },
}

impl fmt::Display for MemberKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemberKey::Finding { kind, subject } => write!(f, "{kind} on {subject}"),
            MemberKey::Alert { source, fingerprint } => write!(f, "{source} alert {fingerprint}"),
        }
    }
}

/// A correlated group: the correlator's view of one incident.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct GroupId(pub u64);

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "g{}", self.0)
    }
}

/// An input to the correlator.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    /// A detector fired (or refreshed a finding that is still active).
    Fired(Finding),
    /// A detector's condition stopped holding.
    Cleared { kind: String, subject: Subject, at: Timestamp },
    /// An alert from another system; `services` are the services its labels
    /// map to through the catalogue (may be empty).
    Alert { alert: ExternalAlert, services: BTreeSet<ServiceName> },
}

/// What happened, for the driver to record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CorrelationEvent {
    Opened {
        group: GroupId,
        member: MemberKey,
        related_to: Option<GroupId>,
        at: Timestamp,
    },
    Joined {
        group: GroupId,
        member: MemberKey,
        at: Timestamp,
    },
    /// `from` stopped being a group of its own; its members now belong to `into`.
    Merged {
        into: GroupId,
        from: GroupId,
        at: Timestamp,
    },
    MemberCleared {
        group: GroupId,
        member: MemberKey,
        at: Timestamp,
    },
    MemberRefired {
        group: GroupId,
        member: MemberKey,
        at: Timestamp,
    },
    /// The explanation changed (origin, class or amplifiers); `sentence` is
    /// `chain.render_sentence()`.
    DiagnosisChanged {
        group: GroupId,
        chain: CausalChain,
        sentence: String,
        at: Timestamp,
    },
    Resolved {
        group: GroupId,
        at: Timestamp,
    },
    /// Every member of the group has cleared: unless a symptom returns, the
    /// group resolves at `resolves_at` (the hold-down is never silent).
    Quiet {
        group: GroupId,
        resolves_at: Timestamp,
        at: Timestamp,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct CorrelatorConfig {
    /// How recently a group must have fired to accept a new member.
    pub join_window: Duration,
    /// Graph distance within which symptoms are considered related.
    pub max_hops: u32,
    /// How long everything must stay clear before a group resolves.
    pub hold_down: Duration,
    /// A failure this soon after a resolution, on the same services, links
    /// to the resolved group.
    pub relink_window: Duration,
    /// A failure this soon after a resolution, on the same services, reopens
    /// the resolved group's incident instead of opening a new one linked to
    /// it. Zero (the default) always opens a new incident, as a recurrence.
    #[serde(default)]
    pub reopen_window: Duration,
    /// Most members held in all groups, open and closed (default 20,000). A
    /// new member past it evicts the least recently seen member (fired,
    /// refreshed or cleared longest ago); its incident stays, it just no
    /// longer carries that member. Counted in `Correlator::evicted`.
    #[serde(default = "default_max_members")]
    pub max_members: usize,
}

fn default_max_members() -> usize {
    20_000
}

impl Default for CorrelatorConfig {
    fn default() -> CorrelatorConfig {
        CorrelatorConfig {
            join_window: Duration::from_mins(15),
            max_hops: 2,
            hold_down: Duration::from_mins(10),
            relink_window: Duration::from_mins(60),
            reopen_window: Duration::ZERO,
            max_members: default_max_members(),
        }
    }
}

/// One member and what we last knew of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub key: MemberKey,
    pub services: BTreeSet<ServiceName>,
    /// The latest finding (for alerts: a finding-shaped view of the alert).
    pub finding: Option<Finding>,
    pub alert: Option<ExternalAlert>,
    pub first_seen: Timestamp,
    pub active: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub id: GroupId,
    pub opened_at: Timestamp,
    pub last_fired: Timestamp,
    #[serde(with = "pairs")]
    pub members: BTreeMap<MemberKey, Member>,
    pub services: BTreeSet<ServiceName>,
    pub related_to: Option<GroupId>,
    /// Groups merged into this one.
    pub absorbed: Vec<GroupId>,
    /// Set when every member has cleared; cleared again if one refires.
    pub quiet_since: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub merged_into: Option<GroupId>,
    pub chain: CausalChain,
}

impl Group {
    pub fn is_open(&self) -> bool {
        self.resolved_at.is_none() && self.merged_into.is_none()
    }
    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.members.values().filter_map(|m| m.finding.as_ref())
    }
}

/// The correlator's whole state. A driver persists it incrementally: it
/// takes what each turn changed (`take_changes`) and rebuilds it from the
/// saved groups and members at start-up (`Correlator::rebuild`). The serde
/// form is the whole state in one value (how drivers saved it before; still
/// read, to migrate such a save).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Correlator {
    config: CorrelatorConfig,
    #[serde(with = "pairs")]
    groups: BTreeMap<GroupId, Group>,
    /// Open membership: INV-CORR-1 is that this maps each key to exactly the
    /// one open group holding it.
    #[serde(with = "pairs")]
    open_members: BTreeMap<MemberKey, GroupId>,
    next_id: u64,
    /// Groups and members changed since the last `take_changes`. Not state:
    /// a saved or rebuilt correlator has nothing pending.
    #[serde(skip)]
    pending: changes::Pending,
    /// Per group, what is read from its members on every observation, kept
    /// as members join and clear (`digest`). Derived, never saved: a group
    /// without one gets it recomputed on next use.
    #[serde(skip)]
    digests: BTreeMap<GroupId, digest::Digest>,
    /// Every (group, member) held, least recently seen first, for
    /// `max_members`. Derived (rebuilt from first-seen order), never saved.
    #[serde(skip)]
    recency: LruMap<(GroupId, MemberKey), ()>,
    /// Members evicted under `max_members` (only grows; not state).
    #[serde(skip)]
    evicted: u64,
}

/// Equal state: same config, groups, membership index and next id (what is
/// pending for the driver and the derived digests are not state).
impl PartialEq for Correlator {
    fn eq(&self, other: &Correlator) -> bool {
        self.config == other.config && self.groups == other.groups && self.open_members == other.open_members && self.next_id == other.next_id
    }
}

impl Correlator {
    pub fn new(config: CorrelatorConfig) -> Correlator {
        Correlator {
            config,
            groups: BTreeMap::new(),
            open_members: BTreeMap::new(),
            next_id: 1,
            pending: changes::Pending::default(),
            digests: BTreeMap::new(),
            recency: LruMap::default(),
            evicted: 0,
        }
    }

    /// Members evicted under `max_members` since this correlator was made.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Members held in all groups.
    pub fn members_held(&self) -> usize {
        self.recency.len()
    }

    /// Makes room for one more member: evicts the least recently seen until
    /// fewer than `max_members` are held. The eviction is a saved change (the
    /// member's row goes, the group's services shrink to its members'); an
    /// open group left with no member goes quiet now, so it resolves after
    /// the hold-down instead of waiting for a clear that cannot come.
    fn make_room(&mut self, now: Timestamp) {
        while self.recency.len() >= self.config.max_members.max(1) {
            let Some(((gid, key), ())) = self.recency.pop_oldest() else { return };
            let Some(g) = self.groups.get_mut(&gid) else { continue };
            if g.members.remove(&key).is_none() {
                continue;
            }
            self.pending.member(gid, &key);
            self.pending.group(gid);
            self.digests.remove(&gid);
            g.services = g.members.values().flat_map(|m| m.services.iter().cloned()).collect();
            if self.open_members.get(&key) == Some(&gid) {
                self.open_members.remove(&key);
            }
            if g.is_open() && g.members.is_empty() && g.quiet_since.is_none() {
                g.quiet_since = Some(now);
            }
            self.evicted += 1;
        }
    }

    pub fn config(&self) -> CorrelatorConfig {
        self.config
    }

    pub fn group(&self, id: GroupId) -> Option<&Group> {
        self.groups.get(&id)
    }

    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    pub fn open_groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values().filter(|g| g.is_open())
    }

    /// The open group a member belongs to, if any.
    pub fn group_of(&self, key: &MemberKey) -> Option<GroupId> {
        self.open_members.get(key).copied()
    }

    pub fn observe(&mut self, obs: Observation, topology: &Topology, now: Timestamp) -> Vec<CorrelationEvent> {
        let mut events = Vec::new();
        let touched = match obs {
            Observation::Fired(f) => {
                let key = MemberKey::Finding { kind: f.kind.clone(), subject: f.subject.clone() };
                let services = subject_services(&f.subject, topology);
                let at = f.started_at;
                self.fire(key, services, Some(f), None, at.min(now), topology, now, &mut events)
            }
            Observation::Alert { alert, services } => {
                let key = MemberKey::Alert { source: alert.source.clone(), fingerprint: alert.fingerprint.clone() };
                match alert.state {
                    AlertState::Firing => {
                        let at = alert.starts_at.min(now);
                        self.fire(key, services, None, Some(alert), at, topology, now, &mut events)
                    }
                    AlertState::Resolved => self.clear(&key, alert.ends_at.unwrap_or(now).min(now), &mut events),
                }
            }
            Observation::Cleared { kind, subject, at } => self.clear(&MemberKey::Finding { kind, subject }, at.min(now), &mut events),
        };
        if let Some(g) = touched {
            self.rediagnose(g, topology, now, &mut events);
        }
        events
    }

    /// Expires alerts whose sender stopped re-sending them (their `ends_at`
    /// passed, Alertmanager semantics) and resolves groups that have been
    /// quiet for the hold-down period.
    pub fn tick(&mut self, now: Timestamp) -> Vec<CorrelationEvent> {
        let mut events = Vec::new();
        let expired: Vec<(MemberKey, Timestamp)> = self
            .groups
            .values()
            .filter(|g| g.is_open())
            .flat_map(|g| g.members.values())
            .filter(|m| m.active)
            .filter_map(|m| m.alert.as_ref().and_then(|a| a.ends_at).filter(|&end| end <= now).map(|end| (m.key.clone(), end)))
            .collect();
        for (key, end) in expired {
            self.clear(&key, end, &mut events);
        }
        let due: Vec<GroupId> =
            self.groups.values().filter(|g| g.is_open() && g.quiet_since.is_some_and(|q| now - q >= self.config.hold_down)).map(|g| g.id).collect();
        for id in due {
            if let Some(g) = self.groups.get_mut(&id) {
                self.pending.group(id);
                g.resolved_at = Some(now);
                for key in g.members.keys() {
                    self.open_members.remove(key);
                }
                events.push(CorrelationEvent::Resolved { group: id, at: now });
            }
        }
        // Forget closed groups once nothing can relink to them, so state
        // (and its persisted copy) stays bounded by recent activity.
        let keep = self.config.relink_window;
        let pending = &mut self.pending;
        let recency = &mut self.recency;
        self.groups.retain(|&id, g| {
            let kept = match (g.resolved_at, g.merged_into) {
                (Some(r), _) => now - r <= keep,
                (None, Some(_)) => now - g.last_fired <= keep,
                (None, None) => true,
            };
            if !kept {
                pending.group(id);
                for key in g.members.keys() {
                    recency.remove(&(id, key.clone()));
                }
            }
            kept
        });
        let groups = &self.groups;
        self.digests.retain(|id, _| groups.contains_key(id));
        events
    }

    /// The earliest time `tick` could resolve something (for a driver's timer).
    pub fn next_wake(&self) -> Option<Timestamp> {
        self.groups.values().filter(|g| g.is_open()).filter_map(|g| g.quiet_since).map(|q| q + self.config.hold_down).min()
    }

    /// Closes an open group whose incident was resolved outside the
    /// correlator (by a person, through the API). Its members leave the open
    /// membership, so a symptom after this — a new one, a re-sent alert, a
    /// finding that fires again — opens a new group (related to this one, so
    /// the driver links or reopens) and is paged, instead of attaching to a
    /// resolved incident. Returns false if the group was not open.
    pub fn close(&mut self, id: GroupId, at: Timestamp) -> bool {
        let Some(g) = self.groups.get_mut(&id) else { return false };
        if !g.is_open() {
            return false;
        }
        self.pending.group(id);
        g.resolved_at = Some(at);
        for key in g.members.keys() {
            self.open_members.remove(key);
        }
        self.digests.remove(&id);
        true
    }

    /// Whether a new group related to `previous` should reopen its incident
    /// (it resolved within `reopen_window` of `now`) rather than open one.
    pub fn reopens(&self, previous: GroupId, now: Timestamp) -> bool {
        let window = self.config.reopen_window;
        window > Duration::ZERO && self.groups.get(&previous).and_then(|g| g.resolved_at).is_some_and(|r| now - r <= window)
    }

    #[allow(clippy::too_many_arguments)]
    fn fire(
        &mut self,
        key: MemberKey,
        services: BTreeSet<ServiceName>,
        finding: Option<Finding>,
        alert: Option<ExternalAlert>,
        at: Timestamp,
        topology: &Topology,
        now: Timestamp,
        events: &mut Vec<CorrelationEvent>,
    ) -> Option<GroupId> {
        // Already a member of an open group: refresh it.
        if let Some(gid) = self.open_members.get(&key).copied() {
            let g = self.groups.get_mut(&gid)?;
            self.pending.group(gid);
            self.pending.member(gid, &key);
            g.last_fired = g.last_fired.max(now);
            g.quiet_since = None;
            let m = g.members.get_mut(&key)?;
            let was_active = m.active;
            // The digest holds which members have a finding and the alert
            // onsets per service: a refresh it cannot follow drops it
            // (recomputed on next use); otherwise onsets and the active
            // count move.
            let digest_kept = if finding.is_some() && m.finding.is_none() {
                false
            } else {
                match (alert.as_ref(), m.alert.as_ref()) {
                    (Some(_), None) => false,
                    // A re-send with another `startsAt`.
                    (Some(new), Some(old)) if new.starts_at != old.starts_at => {
                        self.digests.get_mut(&gid).is_none_or(|d| d.alert_onset_moved(&m.services, old.starts_at, new.starts_at))
                    }
                    _ => true,
                }
            };
            m.active = true;
            if finding.is_some() {
                m.finding = finding;
            }
            if alert.is_some() {
                m.alert = alert;
            }
            if !digest_kept {
                self.digests.remove(&gid);
            } else if !was_active && let Some(d) = self.digests.get_mut(&gid) {
                d.active += 1;
            }
            self.recency.insert((gid, key.clone()), ());
            if !was_active {
                events.push(CorrelationEvent::MemberRefired { group: gid, member: key, at: now });
            }
            return Some(gid);
        }

        let related: Vec<GroupId> = self
            .groups
            .values()
            .filter(|g| g.is_open() && now - g.last_fired <= self.config.join_window && self.related(&services, g, topology))
            .map(|g| g.id)
            .collect();

        let member = Member { key: key.clone(), services: services.clone(), finding, alert, first_seen: at, active: true };
        // Eviction removes members, never groups: `related` stays valid.
        self.make_room(now);
        let gid = match related.split_first() {
            None => {
                let id = GroupId(self.next_id.max(1));
                self.next_id = id.0 + 1;
                self.pending.group(id);
                let related_to = self
                    .groups
                    .values()
                    .filter(|g| {
                        g.resolved_at.is_some_and(|r| now - r <= self.config.relink_window) && g.merged_into.is_none() && !g.services.is_disjoint(&services)
                    })
                    .map(|g| g.id)
                    .max();
                self.groups.insert(
                    id,
                    Group {
                        id,
                        opened_at: at,
                        last_fired: now,
                        members: BTreeMap::new(),
                        services: BTreeSet::new(),
                        related_to,
                        absorbed: Vec::new(),
                        quiet_since: None,
                        resolved_at: None,
                        merged_into: None,
                        chain: CausalChain::default(),
                    },
                );
                events.push(CorrelationEvent::Opened { group: id, member: key.clone(), related_to, at: now });
                id
            }
            Some((&oldest, others)) => {
                // `related` is in GroupId order, and ids grow with time, so the
                // first is the oldest: it survives, the others merge into it.
                for &other in others {
                    self.merge(oldest, other, now, events);
                }
                events.push(CorrelationEvent::Joined { group: oldest, member: key.clone(), at: now });
                oldest
            }
        };
        let g = self.groups.get_mut(&gid)?;
        self.pending.group(gid);
        self.pending.member(gid, &key);
        g.services.extend(services);
        g.last_fired = now;
        g.quiet_since = None;
        g.opened_at = g.opened_at.min(at);
        if let Some(d) = self.digests.get_mut(&gid) {
            d.add(&member);
        }
        if g.members.insert(key.clone(), member).is_some() {
            // Cannot happen (the key was in no open group), but a replaced
            // member would leave the digest wrong.
            self.digests.remove(&gid);
        }
        self.recency.insert((gid, key.clone()), ());
        self.open_members.insert(key, gid);
        Some(gid)
    }

    fn related(&self, services: &BTreeSet<ServiceName>, g: &Group, topology: &Topology) -> bool {
        if services.is_empty() {
            return false;
        }
        let near = services.iter().any(|s| g.services.iter().any(|t| topology.distance(s, t, self.config.max_hops).is_some()));
        near || {
            let mine: BTreeSet<&FlowName> = topology.flows_touching(services).collect();
            topology.flows_touching(&g.services).any(|f| mine.contains(f))
        }
    }

    fn merge(&mut self, into: GroupId, from: GroupId, now: Timestamp, events: &mut Vec<CorrelationEvent>) {
        let Some(mut loser) = self.groups.remove(&from) else { return };
        let moved: Vec<(MemberKey, Member)> = std::mem::take(&mut loser.members).into_iter().collect();
        loser.merged_into = Some(into);
        self.pending.group(from);
        self.pending.group(into);
        self.digests.remove(&from);
        self.digests.remove(&into);
        if let Some(winner) = self.groups.get_mut(&into) {
            for (k, m) in moved {
                // The member leaves `from` (its saved row goes) for `into`.
                self.pending.member(from, &k);
                self.pending.member(into, &k);
                self.open_members.insert(k.clone(), into);
                let seen = self.recency.remove(&(from, k.clone())).is_some();
                if seen || !winner.members.contains_key(&k) {
                    self.recency.insert((into, k.clone()), ());
                }
                winner.members.entry(k).or_insert(m);
            }
            winner.services.extend(loser.services.iter().cloned());
            winner.opened_at = winner.opened_at.min(loser.opened_at);
            winner.last_fired = winner.last_fired.max(loser.last_fired);
            winner.absorbed.push(from);
            winner.absorbed.extend(loser.absorbed.iter().copied());
            winner.quiet_since = None;
        }
        self.groups.insert(from, loser);
        events.push(CorrelationEvent::Merged { into, from, at: now });
    }

    fn clear(&mut self, key: &MemberKey, at: Timestamp, events: &mut Vec<CorrelationEvent>) -> Option<GroupId> {
        let gid = self.open_members.get(key).copied()?;
        let g = self.groups.get_mut(&gid)?;
        let m = g.members.get_mut(key)?;
        if !m.active {
            return None;
        }
        self.pending.group(gid);
        self.pending.member(gid, key);
        m.active = false;
        self.recency.insert((gid, key.clone()), ());
        events.push(CorrelationEvent::MemberCleared { group: gid, member: key.clone(), at });
        // The digest's active count, not a scan of every member per clear.
        let d = match self.digests.entry(gid) {
            std::collections::btree_map::Entry::Occupied(e) => {
                let d = e.into_mut();
                d.active = d.active.saturating_sub(1);
                d
            }
            std::collections::btree_map::Entry::Vacant(e) => e.insert(digest::Digest::of(g)),
        };
        if d.active == 0 {
            g.quiet_since = Some(at);
            events.push(CorrelationEvent::Quiet { group: gid, resolves_at: at + self.config.hold_down, at });
        }
        Some(gid)
    }

    fn rediagnose(&mut self, gid: GroupId, topology: &Topology, now: Timestamp, events: &mut Vec<CorrelationEvent>) {
        let Some(g) = self.groups.get_mut(&gid) else { return };
        let d = self.digests.entry(gid).or_insert_with(|| digest::Digest::of(g));
        let chain = explain::explain_digested(g, d, topology);
        if chain != g.chain {
            self.pending.group(gid);
        }
        if explain::materially_differs(&g.chain, &chain) {
            let sentence = chain.render_sentence();
            events.push(CorrelationEvent::DiagnosisChanged { group: gid, chain: chain.clone(), sentence, at: now });
        }
        g.chain = chain;
    }

    /// Checks INV-CORR-1 (tests and debug assertions).
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut seen: BTreeMap<&MemberKey, GroupId> = BTreeMap::new();
        for g in self.groups.values().filter(|g| g.is_open()) {
            for k in g.members.keys() {
                if let Some(other) = seen.insert(k, g.id) {
                    return Err(format!("{k} is in open groups {other} and {}", g.id));
                }
                if self.open_members.get(k) != Some(&g.id) {
                    return Err(format!("index says {k} is in {:?}, but it is in {}", self.open_members.get(k), g.id));
                }
            }
        }
        if seen.len() != self.open_members.len() {
            return Err(format!("index has {} members, open groups hold {}", self.open_members.len(), seen.len()));
        }
        for (id, d) in &self.digests {
            match self.groups.get(id) {
                Some(g) if *d == digest::Digest::of(g) => {}
                Some(_) => return Err(format!("the digest of {id} is not its members'")),
                None => return Err(format!("a digest is kept for {id}, which is gone")),
            }
        }
        Ok(())
    }
}
