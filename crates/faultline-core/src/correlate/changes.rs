//! The correlator's state in pieces a driver can save incrementally: what
//! changed since the last save (`Correlator::take_changes`) as group headers
//! and members, and the way back from saved pieces to a `Correlator`
//! (`Correlator::rebuild`).
//!
//! Why: an alert storm holds tens of thousands of members; saving the whole
//! state after every turn made a turn cost O(alerts held). A turn touches a
//! few hundred members and a few groups, so that is what it hands over.
//!
//! Not here: how the pieces are stored (the driver and its store decide the
//! rows and the encoding), or when they are saved.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{Correlator, CorrelatorConfig, Group, GroupId, Member, MemberKey};
use crate::finding::CausalChain;
use crate::ids::ServiceName;
use crate::time::Timestamp;

/// A group without its members: what is saved once per group (members are
/// saved one by one beside it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupHeader {
    pub id: GroupId,
    pub opened_at: Timestamp,
    pub last_fired: Timestamp,
    pub services: BTreeSet<ServiceName>,
    pub related_to: Option<GroupId>,
    pub absorbed: Vec<GroupId>,
    pub quiet_since: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub merged_into: Option<GroupId>,
    pub chain: CausalChain,
}

impl Group {
    /// This group without its members.
    pub fn header(&self) -> GroupHeader {
        GroupHeader {
            id: self.id,
            opened_at: self.opened_at,
            last_fired: self.last_fired,
            services: self.services.clone(),
            related_to: self.related_to,
            absorbed: self.absorbed.clone(),
            quiet_since: self.quiet_since,
            resolved_at: self.resolved_at,
            merged_into: self.merged_into,
            chain: self.chain.clone(),
        }
    }
}

impl GroupHeader {
    fn into_group(self, members: BTreeMap<MemberKey, Member>) -> Group {
        Group {
            id: self.id,
            opened_at: self.opened_at,
            last_fired: self.last_fired,
            members,
            services: self.services,
            related_to: self.related_to,
            absorbed: self.absorbed,
            quiet_since: self.quiet_since,
            resolved_at: self.resolved_at,
            merged_into: self.merged_into,
            chain: self.chain,
        }
    }
}

/// What changed in the correlator since the last `take_changes`. Applied to
/// a saved copy in this order — drop `removed_groups` (with their members),
/// drop `removed_members`, write `groups` and `members` over what is there —
/// the copy equals the correlator again.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CorrelatorChanges {
    /// The next group id to hand out (saved every time: group ids are never
    /// reused, even for groups already forgotten).
    pub next_group_id: u64,
    /// Groups whose header changed or that are new.
    pub groups: Vec<GroupHeader>,
    /// Members changed or added, with the group holding them now.
    pub members: Vec<(GroupId, Member)>,
    /// Members that left a group (a merge moved them to the surviving one).
    pub removed_members: Vec<(GroupId, MemberKey)>,
    /// Groups forgotten, members and all (closed for longer than the relink window).
    pub removed_groups: Vec<GroupId>,
}

impl CorrelatorChanges {
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.members.is_empty() && self.removed_members.is_empty() && self.removed_groups.is_empty()
    }
}

/// Saved pieces that do not make a correlator.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RebuildError {
    #[error("saved member {member} names group {group}, which is not saved")]
    UnknownGroup { group: GroupId, member: MemberKey },
    #[error("saved member {member} is in open groups {first} and {second} (INV-CORR-1)")]
    InTwoOpenGroups { member: MemberKey, first: GroupId, second: GroupId },
    #[error("group {0} is saved twice")]
    DuplicateGroup(GroupId),
}

/// The groups and members touched since the last `take_changes`. Marking is
/// by id only; what to write or delete is read from the state when taken,
/// so a group created and forgotten between two saves is simply deleted.
#[derive(Clone, Debug, Default)]
pub(super) struct Pending {
    groups: BTreeSet<GroupId>,
    members: BTreeMap<GroupId, BTreeSet<MemberKey>>,
    /// How many (group, member) pairs `members` holds.
    member_count: usize,
}

impl Pending {
    pub(super) fn group(&mut self, id: GroupId) {
        self.groups.insert(id);
    }

    pub(super) fn member(&mut self, group: GroupId, key: &MemberKey) {
        // `contains` first: a member already pending (touched twice in one
        // turn) then costs no key clone.
        let keys = self.members.entry(group).or_default();
        if !keys.contains(key) {
            keys.insert(key.clone());
            self.member_count += 1;
        }
    }
}

impl Correlator {
    /// Whether anything changed since the last `take_changes`.
    pub fn has_changes(&self) -> bool {
        !self.pending.groups.is_empty() || !self.pending.members.is_empty()
    }

    /// How many members changed since the last `take_changes` (for a driver
    /// that defers saving some changes, to bound what one save writes).
    pub fn changed_members(&self) -> usize {
        self.pending.member_count
    }

    /// What changed since the last call, for the driver to save; nothing is
    /// pending afterwards. Cost: the groups and members touched, not the
    /// members held.
    pub fn take_changes(&mut self) -> CorrelatorChanges {
        let pending = std::mem::take(&mut self.pending);
        let mut out = CorrelatorChanges { next_group_id: self.next_id, ..CorrelatorChanges::default() };
        for id in pending.groups {
            match self.groups.get(&id) {
                Some(g) => out.groups.push(g.header()),
                None => out.removed_groups.push(id),
            }
        }
        for (gid, keys) in pending.members {
            // A member whose group is gone goes with the group.
            let Some(g) = self.groups.get(&gid) else { continue };
            for key in keys {
                match g.members.get(&key) {
                    Some(m) => out.members.push((gid, m.clone())),
                    None => out.removed_members.push((gid, key)),
                }
            }
        }
        out
    }

    /// Every group and member as changes (a full save: the first after a
    /// saved copy was lost or came in another form); nothing is pending
    /// afterwards.
    pub fn take_everything(&mut self) -> CorrelatorChanges {
        self.pending = Pending::default();
        CorrelatorChanges {
            next_group_id: self.next_id,
            groups: self.groups.values().map(Group::header).collect(),
            members: self.groups.values().flat_map(|g| g.members.values().map(|m| (g.id, m.clone()))).collect(),
            removed_members: Vec::new(),
            removed_groups: Vec::new(),
        }
    }

    /// The correlator the saved pieces describe: groups with their members,
    /// the open-membership index rebuilt from the open groups. `config` is
    /// the one to run with now (the pieces carry none, so a changed config
    /// applies after a restart); `next_group_id` is raised above every saved
    /// group if it is not already.
    pub fn rebuild(
        config: CorrelatorConfig,
        next_group_id: u64,
        groups: impl IntoIterator<Item = GroupHeader>,
        members: impl IntoIterator<Item = (GroupId, Member)>,
    ) -> Result<Correlator, RebuildError> {
        let mut headers: BTreeMap<GroupId, GroupHeader> = BTreeMap::new();
        for h in groups {
            if let Some(dup) = headers.insert(h.id, h) {
                return Err(RebuildError::DuplicateGroup(dup.id));
            }
        }
        let mut held: BTreeMap<GroupId, BTreeMap<MemberKey, Member>> = BTreeMap::new();
        for (gid, m) in members {
            if !headers.contains_key(&gid) {
                return Err(RebuildError::UnknownGroup { group: gid, member: m.key });
            }
            held.entry(gid).or_default().insert(m.key.clone(), m);
        }
        let mut c = Correlator::new(config);
        c.next_id = headers.keys().next_back().map_or(1, |g| g.0 + 1).max(next_group_id).max(1);
        for (id, h) in headers {
            let g = h.into_group(held.remove(&id).unwrap_or_default());
            if g.is_open() {
                for key in g.members.keys() {
                    if let Some(first) = c.open_members.insert(key.clone(), id) {
                        return Err(RebuildError::InTwoOpenGroups { member: key.clone(), first, second: id });
                    }
                }
            }
            c.groups.insert(id, g);
        }
        // Recency is not saved: members count as seen in first-seen order.
        let mut seen: Vec<(Timestamp, GroupId, &MemberKey)> =
            c.groups.values().flat_map(|g| g.members.values().map(|m| (m.first_seen, g.id, &m.key))).collect();
        seen.sort();
        let recency: Vec<(GroupId, MemberKey)> = seen.into_iter().map(|(_, g, k)| (g, k.clone())).collect();
        for k in recency {
            c.recency.insert(k, ());
        }
        Ok(c)
    }
}
