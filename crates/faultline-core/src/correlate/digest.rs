//! A group's digest: what the correlator reads from a group's members on
//! every observation — which members carry a finding, the alert onsets per
//! service (for each service's earliest alert), how many members are
//! active — kept up to date as members join, clear and are re-sent, so an
//! alert storm (thousands of alert members on a group) does not rescan
//! every member on every alert.
//!
//! A digest is derived from the members and never saved: `Digest::of`
//! recomputes it, a correlator drops it whenever a change is not one it
//! follows (a merge, a member gaining a finding or an alert) and recomputes
//! it on next use, and `Correlator::check_invariants` checks every kept
//! digest against a recomputation. Not here: what the digest is used for
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
    /// Per service named by an alert member, how many of its alert
    /// members have each onset: the first is the service's earliest alert,
    /// and when the alert holding it is re-sent with a later onset the next
    /// one is at hand.
    alert_onsets: BTreeMap<ServiceName, BTreeMap<Timestamp, usize>>,
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
                let counts = match self.alert_onsets.get_mut(s) {
                    Some(counts) => counts,
                    None => self.alert_onsets.entry(s.clone()).or_default(),
                };
                *counts.entry(a.starts_at).or_insert(0) += 1;
            }
        }
        if m.active {
            self.active += 1;
        }
    }

    /// Each service named by an alert member, with its earliest alert onset.
    pub(super) fn earliest_alerts(&self) -> impl Iterator<Item = (&ServiceName, Timestamp)> {
        self.alert_onsets.iter().filter_map(|(s, counts)| counts.keys().next().map(|at| (s, *at)))
    }

    /// An alert member on `services` was re-sent with its onset moved from
    /// `old` to `new`. False if the digest did not hold that onset (it is
    /// then not this group's: drop it).
    pub(super) fn alert_onset_moved(&mut self, services: &BTreeSet<ServiceName>, old: Timestamp, new: Timestamp) -> bool {
        for s in services {
            let Some(counts) = self.alert_onsets.get_mut(s) else { return false };
            match counts.get_mut(&old) {
                Some(n) if *n > 1 => *n -= 1,
                Some(_) => {
                    counts.remove(&old);
                }
                None => return false,
            }
            *counts.entry(new).or_insert(0) += 1;
        }
        true
    }
}
