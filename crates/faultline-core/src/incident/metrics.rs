//! Response times read from an incident's timeline — time to acknowledge
//! (MTTA), to mitigate (MTTM) and to resolve (MTTR) — and their
//! distributions over many incidents (count, p50, p90, max; never a mean
//! alone, DESIGN.md §1).
//!
//! What it is: pure functions over `TimelineEvent`s. The clock starts at the
//! `opened` event (triggered by the correlator or declared by a person).
//! * acknowledged: the first `acknowledged` event; an incident a person or a
//!   token mitigated or resolved before anyone pressed acknowledge counts as
//!   acknowledged then (`implicit_ack`). A system resolve (correlator hold-down,
//!   merge) is no acknowledgement.
//! * mitigated: the first `mitigated` event, else the first `resolved` (a
//!   resolve stops the impact at the latest).
//! * resolved: the last `resolved` event, when the incident is resolved now
//!   (a reopened incident is measured to its final resolution).
//! * merged: an incident merged into another lives on there; it has no
//!   resolution of its own and is left out of the distributions.
//!
//! What it is not: storage or HTTP (the server reads timelines from the store
//! and converts), and not a target: the numbers describe, they do not grade.

use serde::{Deserialize, Serialize};

use super::{Actor, IncidentEvent, Severity, TimelineEvent};
use crate::time::{Duration, Timestamp};

/// The response times of one incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseTimes {
    pub opened_at: Timestamp,
    /// Severity at the end of the timeline.
    pub severity: Severity,
    pub acknowledged_at: Option<Timestamp>,
    pub acknowledged_by: Option<Actor>,
    /// Acknowledged by mitigating or resolving, not by an `acknowledged` event.
    pub implicit_ack: bool,
    pub mitigated_at: Option<Timestamp>,
    pub resolved_at: Option<Timestamp>,
    pub time_to_acknowledge: Option<Duration>,
    pub time_to_mitigate: Option<Duration>,
    pub time_to_resolve: Option<Duration>,
    pub reopened: u32,
    pub merged: bool,
}

/// Reads the response times from a timeline. `None` when the timeline does
/// not start with `opened` (a corrupt or empty timeline has no times).
pub fn response_times(timeline: &[TimelineEvent]) -> Option<ResponseTimes> {
    let (first, rest) = timeline.split_first()?;
    let IncidentEvent::Opened { severity, .. } = &first.event else { return None };
    let opened_at = first.at;
    let mut t = ResponseTimes {
        opened_at,
        severity: *severity,
        acknowledged_at: None,
        acknowledged_by: None,
        implicit_ack: false,
        mitigated_at: None,
        resolved_at: None,
        time_to_acknowledge: None,
        time_to_mitigate: None,
        time_to_resolve: None,
        reopened: 0,
        merged: false,
    };
    for ev in rest {
        let by_person = !matches!(ev.actor, Actor::System(_));
        match &ev.event {
            IncidentEvent::Acknowledged if t.acknowledged_at.is_none() => {
                t.acknowledged_at = Some(ev.at);
                t.acknowledged_by = Some(ev.actor.clone());
            }
            IncidentEvent::Mitigated { .. } => {
                if t.acknowledged_at.is_none() && by_person {
                    t.acknowledged_at = Some(ev.at);
                    t.acknowledged_by = Some(ev.actor.clone());
                    t.implicit_ack = true;
                }
                t.mitigated_at.get_or_insert(ev.at);
            }
            IncidentEvent::Resolved { .. } => {
                if t.acknowledged_at.is_none() && by_person {
                    t.acknowledged_at = Some(ev.at);
                    t.acknowledged_by = Some(ev.actor.clone());
                    t.implicit_ack = true;
                }
                t.mitigated_at.get_or_insert(ev.at);
                t.resolved_at = Some(ev.at);
            }
            IncidentEvent::Reopened { .. } => {
                t.reopened += 1;
                t.resolved_at = None;
            }
            IncidentEvent::MergedInto { .. } => {
                t.merged = true;
                t.resolved_at = None;
            }
            IncidentEvent::SeverityChanged { to, .. } => t.severity = *to,
            _ => {}
        }
    }
    if t.merged {
        t.resolved_at = None;
    }
    // Backfilled or skewed events never make a negative duration.
    let since = |at: Option<Timestamp>| at.map(|a| Duration::from_millis((a - opened_at).as_millis().max(0)));
    t.time_to_acknowledge = since(t.acknowledged_at);
    t.time_to_mitigate = since(t.mitigated_at);
    t.time_to_resolve = since(t.resolved_at);
    Some(t)
}

/// Count and nearest-rank percentiles of a set of durations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Distribution {
    pub count: usize,
    pub p50: Option<Duration>,
    pub p90: Option<Duration>,
    pub max: Option<Duration>,
}

impl Distribution {
    /// Nearest-rank percentiles: p-th is the value at rank ⌈p/100 · n⌉ of the
    /// sorted values, so every reported value is one that was observed.
    pub fn of(mut values: Vec<Duration>) -> Distribution {
        values.sort_unstable();
        let n = values.len();
        let rank = |p: usize| -> Option<Duration> {
            if n == 0 {
                return None;
            }
            let r = (p * n).div_ceil(100).clamp(1, n);
            values.get(r - 1).copied()
        };
        Distribution { count: n, p50: rank(50), p90: rank(90), max: values.last().copied() }
    }
}

/// MTTA / MTTM / MTTR as distributions over a set of incidents.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ResponseSummary {
    /// Incidents considered (merged ones excluded).
    pub incidents: usize,
    /// Incidents left out because they were merged into another.
    pub merged: usize,
    /// Considered incidents nobody has acknowledged (yet).
    pub unacknowledged: usize,
    /// Considered incidents not resolved (yet).
    pub unresolved: usize,
    pub time_to_acknowledge: Distribution,
    pub time_to_mitigate: Distribution,
    pub time_to_resolve: Distribution,
}

/// Summarises response times; incidents still open count in `unresolved`
/// and contribute only the times they already have.
pub fn summarize<'a>(times: impl IntoIterator<Item = &'a ResponseTimes>) -> ResponseSummary {
    let mut s = ResponseSummary::default();
    let (mut ack, mut mit, mut res) = (Vec::new(), Vec::new(), Vec::new());
    for t in times {
        if t.merged {
            s.merged += 1;
            continue;
        }
        s.incidents += 1;
        match t.time_to_acknowledge {
            Some(d) => ack.push(d),
            None => s.unacknowledged += 1,
        }
        if let Some(d) = t.time_to_mitigate {
            mit.push(d);
        }
        match t.time_to_resolve {
            Some(d) => res.push(d),
            None => s.unresolved += 1,
        }
    }
    s.time_to_acknowledge = Distribution::of(ack);
    s.time_to_mitigate = Distribution::of(mit);
    s.time_to_resolve = Distribution::of(res);
    s
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::ids::{IncidentId, UserId};
    use crate::incident::Severity;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_secs(1_800_000_000 + s)
    }
    fn user(n: &str) -> Actor {
        Actor::User(UserId::new(n).unwrap())
    }
    fn sys() -> Actor {
        Actor::System("correlator".into())
    }

    /// `(seconds after open, actor, event)` after an `opened` at 0.
    fn timeline(events: Vec<(i64, Actor, IncidentEvent)>) -> Vec<TimelineEvent> {
        let mut out = vec![TimelineEvent {
            seq: 1,
            at: t(0),
            actor: sys(),
            event: IncidentEvent::Opened { title: "checkout failing".into(), severity: Severity::Sev2, summary: None, scope: Default::default() },
        }];
        for (i, (s, actor, event)) in events.into_iter().enumerate() {
            out.push(TimelineEvent { seq: i as u64 + 2, at: t(s), actor, event });
        }
        out
    }

    fn secs(d: Option<Duration>) -> Option<i64> {
        d.map(|d| d.as_millis() / 1000)
    }

    #[test]
    fn times_run_from_open_to_first_ack_first_mitigation_and_final_resolve() {
        let tl = timeline(vec![
            (30, sys(), IncidentEvent::SystemNote { component: "notify".into(), text: "paged alice".into() }),
            (240, user("alice"), IncidentEvent::Acknowledged),
            (900, user("alice"), IncidentEvent::Mitigated { note: None }),
            (1800, user("alice"), IncidentEvent::Resolved { note: None }),
            (2000, user("bob"), IncidentEvent::Reopened { reason: "came back".into() }),
            (2100, user("bob"), IncidentEvent::Acknowledged),
            (4000, user("bob"), IncidentEvent::Resolved { note: None }),
        ]);
        let r = response_times(&tl).unwrap();
        assert_eq!((secs(r.time_to_acknowledge), secs(r.time_to_mitigate), secs(r.time_to_resolve)), (Some(240), Some(900), Some(4000)));
        assert_eq!(r.acknowledged_by, Some(user("alice")));
        assert_eq!((r.reopened, r.implicit_ack, r.merged), (1, false, false));
    }

    #[test]
    fn a_reopened_incident_is_unresolved_and_a_person_resolving_acknowledges() {
        let tl = timeline(vec![
            (600, user("carol"), IncidentEvent::Resolved { note: None }),
            (700, user("carol"), IncidentEvent::Reopened { reason: "not fixed".into() }),
        ]);
        let r = response_times(&tl).unwrap();
        assert_eq!((secs(r.time_to_acknowledge), secs(r.time_to_mitigate), secs(r.time_to_resolve)), (Some(600), Some(600), None));
        assert!(r.implicit_ack);
        // The correlator resolving on hold-down acknowledges nothing.
        let r = response_times(&timeline(vec![(300, sys(), IncidentEvent::Resolved { note: None })])).unwrap();
        assert_eq!((secs(r.time_to_acknowledge), secs(r.time_to_resolve)), (None, Some(300)));
    }

    #[test]
    fn merged_incidents_are_left_out_of_the_summary() {
        let into: IncidentId = "01936a8e-6f5c-7d2a-9b1e-0c4d5e6f7a8b".parse().unwrap();
        let merged = response_times(&timeline(vec![(60, sys(), IncidentEvent::MergedInto { into })])).unwrap();
        assert!(merged.merged && merged.time_to_resolve.is_none());
        let fast =
            response_times(&timeline(vec![(60, user("a"), IncidentEvent::Acknowledged), (120, user("a"), IncidentEvent::Resolved { note: None })])).unwrap();
        let slow = response_times(&timeline(vec![(600, user("a"), IncidentEvent::Acknowledged)])).unwrap();
        let s = summarize([&merged, &fast, &slow]);
        assert_eq!((s.incidents, s.merged, s.unacknowledged, s.unresolved), (2, 1, 0, 1));
        assert_eq!(
            s.time_to_acknowledge,
            Distribution { count: 2, p50: Some(Duration::from_secs(60)), p90: Some(Duration::from_secs(600)), max: Some(Duration::from_secs(600)) }
        );
        assert_eq!(s.time_to_resolve.count, 1);
        assert!(response_times(&[]).is_none());
    }

    #[test]
    fn nearest_rank_percentiles() {
        let d = |v: &[i64]| Distribution::of(v.iter().map(|s| Duration::from_secs(*s)).collect());
        let ten = d(&[10, 1, 9, 2, 8, 3, 7, 4, 6, 5]);
        assert_eq!((secs(ten.p50), secs(ten.p90), secs(ten.max), ten.count), (Some(5), Some(9), Some(10), 10));
        let one = d(&[42]);
        assert_eq!((secs(one.p50), secs(one.p90)), (Some(42), Some(42)));
        assert_eq!(d(&[]), Distribution::default());
    }

    proptest! {
        #[test]
        fn percentiles_are_observed_and_ordered(v in proptest::collection::vec(0i64..10_000_000, 1..200)) {
            let d = Distribution::of(v.iter().copied().map(Duration::from_millis).collect());
            let (p50, p90, max) = (d.p50.unwrap(), d.p90.unwrap(), d.max.unwrap());
            prop_assert!(p50 <= p90 && p90 <= max);
            prop_assert!(v.contains(&p50.as_millis()) && v.contains(&p90.as_millis()));
            // At least half the values are ≤ p50, at least 90 % ≤ p90.
            let le = |x: Duration| v.iter().filter(|y| **y <= x.as_millis()).count();
            prop_assert!(le(p50) * 2 >= v.len() && le(p90) * 10 >= v.len() * 9);
        }
    }
}
