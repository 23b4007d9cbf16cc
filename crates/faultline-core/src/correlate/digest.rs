//! A group's digest: what the correlator reads from a group's members on
//! every observation — which members carry a finding, the earliest alert
//! onset per service, how many members are active — kept up to date as
//! members join and clear, so an alert storm (thousands of alert members on
//! a group) does not rescan every member on every alert.
//!
//! A digest is derived from the members and never saved: `Digest::of`
//! recomputes it, a correlator drops it whenever a change is not a simple
//! join or clear (a merge, an alert whose onset moved) and recomputes it on
//! next use, and `Correlator::check_invariants` checks every kept digest
//! against a recomputation. Not here: what the digest is used for
//! (`explain`, hold-down in `Correlator::clear`).

use std::collections::{BTreeMap, BTreeSet};

use super::{Group, Member, MemberKey};
use crate::ids::ServiceName;
use crate::time::Timestamp;

#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Digest {
    /// Members with a finding, in member order (the order `explain` reads
    /// findings in, which breaks its ties).
    pub(super) finding_keys: BTreeSet<MemberKey>,
    /// Per service named by an alert member, that service's earliest alert onset.
    pub(super) alert_onsets: BTreeMap<ServiceName, Timestamp>,
    /// Members not cleared.
    pub(super) active: usize,
}

impl Digest {
    pub(super) fn of(group: &Group) -> Digest {
        let mut d = Digest::default();
        for m in group.members.values() {
            d.add(m);
        }
        d
    }

    /// A member joined the group (not by a merge).
    pub(super) fn add(&mut self, m: &Member) {
        if m.finding.is_some() {
            self.finding_keys.insert(m.key.clone());
        }
        if let Some(a) = &m.alert {
            for s in &m.services {
                match self.alert_onsets.get_mut(s) {
                    Some(at) => *at = (*at).min(a.starts_at),
                    None => {
                        self.alert_onsets.insert(s.clone(), a.starts_at);
                    }
                }
            }
        }
        if m.active {
            self.active += 1;
        }
    }

    /// An alert member on `services` was re-sent with its onset moved from
    /// `old` to `new`. False when the digest cannot follow: the member held
    /// a service's earliest onset and moved later (the next earliest is
    /// unknown without a rescan), or a service is missing.
    pub(super) fn alert_onset_moved(&mut self, services: &BTreeSet<ServiceName>, old: Timestamp, new: Timestamp) -> bool {
        if new < old {
            for s in services {
                match self.alert_onsets.get_mut(s) {
                    Some(at) => *at = (*at).min(new),
                    None => return false,
                }
            }
            true
        } else {
            services.iter().all(|s| self.alert_onsets.get(s).is_some_and(|at| *at < old))
        }
    }
}
