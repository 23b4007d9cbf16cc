//! Tests of the status page model: an incident's journey from investigating
//! to resolved as drafts and published updates, the Statuspage-compatible
//! `summary.json` / `status.json` shapes (field names and enums), maintenance,
//! and the Atom feed (exact text, escaping).

use super::*;
use crate::ids::{IncidentId, TeamId, UserId};
use crate::incident::{Actor, Command, Incident};
use crate::model::Interaction;

fn t(min: i64) -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-21T10:00:00Z").unwrap() + crate::time::Duration::from_mins(min)
}

fn flows() -> Vec<Flow> {
    let f = |name: &str, desc: &str| Flow {
        name: FlowName::new(name).unwrap(),
        owner: TeamId::new("shop").unwrap(),
        description: desc.into(),
        interactions: vec![Interaction { caller: ServiceName::new("api").unwrap(), callee: ServiceName::new(name).unwrap(), operation: String::new() }],
    };
    vec![f("checkout", "Pay for your basket"), f("login", "")]
}

fn page() -> PageInfo {
    PageInfo { id: "faultline".into(), name: "Acme <Shop>".into(), url: "https://status.acme.test".into(), time_zone: "Etc/UTC".into() }
}

/// An incident after `commands`, opened at t(0) as SEV2.
fn incident(commands: Vec<Command>) -> Incident {
    let id: IncidentId = "01936a8e-6f5c-7d2a-9b1e-0c4d5e6f7a8b".parse().unwrap();
    let actor = Actor::User(UserId::new("alice").unwrap());
    let mut tl = vec![Incident::open("checkout errors", Severity::Sev2, None, t(0), actor.clone()).unwrap()];
    let mut inc = Incident::fold(id, &tl).unwrap();
    for (i, c) in commands.into_iter().enumerate() {
        let ev = inc.next_event(c, t(i as i64 + 1), actor.clone()).unwrap();
        inc.apply(&ev).unwrap();
        tl.push(ev);
    }
    inc
}

/// Drafts and publishes one update; returns the new public incident and the
/// draft line `status impact components | body`.
fn step(comps: &[ComponentConfig], prev: Option<PublicIncident>, inc: &Incident, identified: bool, now: Timestamp, n: usize) -> (PublicIncident, String) {
    let flows = [FlowName::new("checkout").unwrap()];
    let facts = ImpactFacts { incident: inc, impacted_flows: &flows, impacted_services: &[], origin_identified: identified };
    let d = draft_update(comps, &facts, prev.as_ref());
    let line = format!(
        "{} {:?} {} | {}",
        d.status.as_str(),
        d.impact,
        d.components.iter().map(|(k, v)| format!("{k}={}", v.as_str())).collect::<Vec<_>>().join(","),
        d.body
    );
    (publish(comps, prev, ("inc-1", "Checkout errors", t(0)), &d, None, &format!("u{n}"), now), line)
}

#[test]
fn an_incident_goes_from_investigating_to_resolved_and_the_page_follows() {
    let comps = components_from_flows(&flows(), t(-60));
    let mut lines = Vec::new();
    let (p1, l) = step(&comps, None, &incident(vec![]), false, t(2), 1);
    lines.push(l);
    let (p2, l) = step(&comps, Some(p1.clone()), &incident(vec![Command::Acknowledge]), true, t(5), 2);
    lines.push(l);
    let (p3, l) = step(&comps, Some(p2.clone()), &incident(vec![Command::Acknowledge, Command::Mitigate { note: None }]), true, t(20), 3);
    lines.push(l);
    let resolved = incident(vec![Command::Acknowledge, Command::Mitigate { note: None }, Command::Resolve { note: None }]);
    let (p4, l) = step(&comps, Some(p3.clone()), &resolved, true, t(40), 4);
    lines.push(l);
    assert_eq!(
        lines,
        [
            "investigating Major flow-checkout=partial_outage | We are investigating a partial outage affecting checkout. We will post an update as soon as we know more.",
            "identified Major flow-checkout=partial_outage | We have identified the cause of a partial outage affecting checkout and are working on a fix.",
            "monitoring Major flow-checkout=degraded_performance | A fix has been applied and checkout is recovering. We are monitoring the results.",
            "resolved Major flow-checkout=operational | This incident has been resolved and checkout is operating normally.",
        ]
    );
    assert_eq!((p4.monitoring_at, p4.resolved_at), (Some(t(20)), Some(t(40))));
    assert_eq!(p4.updates.len(), 4);
    let changes: Vec<String> = p4
        .updates
        .iter()
        .map(|u| u.affected_components.iter().map(|a| format!("{}:{}->{}", a.code, a.old_status.as_str(), a.new_status.as_str())).collect::<Vec<_>>().join(","))
        .collect();
    assert_eq!(
        changes,
        [
            "flow-checkout:operational->partial_outage",
            "",
            "flow-checkout:partial_outage->degraded_performance",
            "flow-checkout:degraded_performance->operational"
        ]
    );

    // While open: summary shows the incident and the degraded component.
    let view = StatusPageView { page: &page(), components: &comps, incidents: std::slice::from_ref(&p2), maintenances: &[] };
    let status = serde_json::to_value(view.status_json(t(6))).unwrap();
    assert_eq!(
        status,
        serde_json::json!({
            "page": {"id": "faultline", "name": "Acme <Shop>", "url": "https://status.acme.test", "time_zone": "Etc/UTC", "updated_at": "2026-11-21T10:05:00.000Z"},
            "status": {"indicator": "major", "description": "Partial System Outage"}
        })
    );
    let summary = serde_json::to_value(view.summary_json(t(6))).unwrap();
    assert_eq!(
        summary["components"][0],
        serde_json::json!({
            "id": "flow-checkout", "name": "checkout", "status": "partial_outage",
            "created_at": "2026-11-21T09:00:00.000Z", "updated_at": "2026-11-21T10:02:00.000Z",
            "position": 1, "description": "Pay for your basket", "showcase": true, "start_date": null,
            "group_id": null, "page_id": "faultline", "group": false, "only_show_if_degraded": false
        })
    );
    assert_eq!(summary["components"][1]["status"], "operational");
    let inc = &summary["incidents"][0];
    assert_eq!(inc["status"], "identified");
    assert_eq!(inc["impact"], "major");
    assert_eq!(inc["shortlink"], "https://status.acme.test/incidents/inc-1");
    assert_eq!(inc["incident_updates"][0]["id"], "u2", "newest update first");
    assert_eq!(
        inc["incident_updates"][1]["affected_components"][0],
        serde_json::json!({
            "code": "flow-checkout", "name": "checkout", "old_status": "operational", "new_status": "partial_outage"
        })
    );
    assert_eq!(inc["components"].as_array().map(Vec::len), Some(1));
    assert_eq!(summary["scheduled_maintenances"], serde_json::json!([]));

    // After resolution: nothing open, all operational.
    let view = StatusPageView { page: &page(), components: &comps, incidents: std::slice::from_ref(&p4), maintenances: &[] };
    let s = view.summary_json(t(41));
    assert!(s.incidents.is_empty());
    assert!(s.components.iter().all(|c| c.status == ComponentStatus::Operational));
    assert_eq!((s.status.indicator, s.status.description.as_str()), (Impact::None, "All Systems Operational"));
}

#[test]
fn an_unchanged_incident_drafts_no_change() {
    let comps = components_from_flows(&flows(), t(-60));
    let inc = incident(vec![]);
    let (p1, _) = step(&comps, None, &inc, false, t(2), 1);
    let flows = [FlowName::new("checkout").unwrap()];
    let facts = ImpactFacts { incident: &inc, impacted_flows: &flows, impacted_services: &[], origin_identified: false };
    assert!(!draft_update(&comps, &facts, Some(&p1)).changed);
    assert!(draft_update(&comps, &ImpactFacts { origin_identified: true, ..facts.clone() }, Some(&p1)).changed);
}

#[test]
fn maintenance_shows_under_maintenance_and_incidents_outrank_it() {
    let comps = components_from_flows(&flows(), t(-60));
    let m = ScheduledMaintenance {
        id: "m-1".into(),
        name: "Login database upgrade".into(),
        scheduled_for: t(60),
        scheduled_until: t(120),
        component_ids: vec!["flow-login".into()],
        body: String::new(),
        manual_status: None,
        created_at: t(-10),
    };
    let view = StatusPageView { page: &page(), components: &comps, incidents: &[], maintenances: std::slice::from_ref(&m) };
    let before = view.summary_json(t(30));
    assert_eq!(before.scheduled_maintenances[0].status, MaintenanceStatus::Scheduled);
    assert_eq!(before.components[1].status, ComponentStatus::Operational);
    let during = view.summary_json(t(90));
    assert_eq!(during.scheduled_maintenances[0].status, MaintenanceStatus::InProgress);
    assert_eq!(during.components[1].status, ComponentStatus::UnderMaintenance);
    assert_eq!((during.status.indicator, during.status.description.as_str()), (Impact::None, "Service Under Maintenance"));
    assert!(view.summary_json(t(121)).scheduled_maintenances.is_empty());

    let mut sev1 = PublicIncident {
        id: "i".into(),
        name: "Login down".into(),
        status: PublicIncidentStatus::Investigating,
        impact: Impact::Critical,
        started_at: t(80),
        created_at: t(80),
        updated_at: t(80),
        monitoring_at: None,
        resolved_at: None,
        components: BTreeMap::from([("flow-login".to_owned(), ComponentStatus::MajorOutage)]),
        updates: vec![],
    };
    let view = StatusPageView { page: &page(), components: &comps, incidents: std::slice::from_ref(&sev1), maintenances: std::slice::from_ref(&m) };
    assert_eq!(view.summary_json(t(90)).components[1].status, ComponentStatus::MajorOutage);
    assert_eq!(view.status_json(t(90)).status.description, "Major System Outage");
    sev1.status = PublicIncidentStatus::Resolved;
    let view = StatusPageView { page: &page(), components: &comps, incidents: std::slice::from_ref(&sev1), maintenances: std::slice::from_ref(&m) };
    assert_eq!(view.summary_json(t(90)).components[1].status, ComponentStatus::UnderMaintenance);
}

#[test]
fn atom_feed_lists_incidents_newest_first_with_escaped_content() {
    let comps = components_from_flows(&flows(), t(-60));
    let mk = |id: &str, name: &str, at: Timestamp, body: &str| PublicIncident {
        id: id.into(),
        name: name.into(),
        status: PublicIncidentStatus::Resolved,
        impact: Impact::Minor,
        started_at: at,
        created_at: at,
        updated_at: at,
        monitoring_at: None,
        resolved_at: Some(at),
        components: BTreeMap::new(),
        updates: vec![PublicUpdate {
            id: format!("{id}-u"),
            status: PublicIncidentStatus::Resolved,
            body: body.into(),
            created_at: at,
            affected_components: vec![],
            by_person: false,
        }],
    };
    let incs = [mk("a", "Old one", t(0), "fixed"), mk("b", "Slow <login> & \"more\"", t(30), "x < y")];
    let view = StatusPageView { page: &page(), components: &comps, incidents: &incs, maintenances: &[] };
    let want = r#"<?xml version="1.0" encoding="UTF-8"?>
<feed xml:lang="en-US" xmlns="http://www.w3.org/2005/Atom">
  <id>tag:status.acme.test,2005:/history</id>
  <link rel="alternate" type="text/html" href="https://status.acme.test"/>
  <link rel="self" type="application/atom+xml" href="https://status.acme.test/history.atom"/>
  <title>Acme &lt;Shop&gt; Status - Incident History</title>
  <updated>2026-11-21T10:30:00.000Z</updated>
  <entry>
    <id>tag:status.acme.test,2005:Incident/b</id>
    <published>2026-11-21T10:30:00.000Z</published>
    <updated>2026-11-21T10:30:00.000Z</updated>
    <link rel="alternate" type="text/html" href="https://status.acme.test/incidents/b"/>
    <title>Slow &lt;login&gt; &amp; &quot;more&quot;</title>
    <content type="html">&lt;p&gt;&lt;small&gt;2026-11-21T10:30:00.000Z&lt;/small&gt;&lt;br&gt;&lt;strong&gt;Resolved&lt;/strong&gt; - x &amp;lt; y&lt;/p&gt;</content>
  </entry>
</feed>
"#;
    assert_eq!(view.render_atom(1), want);
    assert_eq!(view.render_atom(10).matches("<entry>").count(), 2);
}

#[test]
fn subscriber_webhooks_have_statuspage_field_names() {
    let comps = components_from_flows(&flows(), t(-60));
    let (p1, _) = step(&comps, None, &incident(vec![]), false, t(2), 1);
    let view = StatusPageView { page: &page(), components: &comps, incidents: std::slice::from_ref(&p1), maintenances: &[] };
    let meta = WebhookMeta { unsubscribe: "https://status.acme.test/unsubscribe/x".into(), documentation: "https://status.acme.test/docs".into() };
    let (inc, changes) = view.subscriber_webhooks("inc-1", "u1", &meta, t(3)).unwrap();
    let v = serde_json::to_value(&inc).unwrap();
    assert_eq!(v["page"], serde_json::json!({"id": "faultline", "status_indicator": "major", "status_description": "Partial System Outage"}));
    assert_eq!(v["meta"]["unsubscribe"], "https://status.acme.test/unsubscribe/x");
    assert_eq!(v["incident"]["incident_updates"][0]["status"], "investigating");
    assert_eq!(changes.len(), 1);
    let c = serde_json::to_value(&changes[0]).unwrap();
    assert_eq!(
        c["component_update"],
        serde_json::json!({
            "created_at": "2026-11-21T10:02:00.000Z", "new_status": "partial_outage", "old_status": "operational",
            "id": "u1-flow-checkout", "component_id": "flow-checkout"
        })
    );
    assert_eq!(c["component"]["status"], "partial_outage");
    assert!(view.subscriber_webhooks("nope", "u1", &meta, t(3)).is_none());
}

#[test]
fn list_documents_filter_and_order() {
    let comps = components_from_flows(&flows(), t(-60));
    let mk = |id: &str, at: Timestamp, status: PublicIncidentStatus| PublicIncident {
        id: id.into(),
        name: id.into(),
        status,
        impact: Impact::Minor,
        started_at: at,
        created_at: at,
        updated_at: at,
        monitoring_at: None,
        resolved_at: None,
        components: BTreeMap::new(),
        updates: vec![],
    };
    let incs = [
        mk("old", t(0), PublicIncidentStatus::Resolved),
        mk("new", t(10), PublicIncidentStatus::Monitoring),
        mk("mid", t(5), PublicIncidentStatus::Postmortem),
    ];
    let m = |id: &str, from: i64| ScheduledMaintenance {
        id: id.into(),
        name: id.into(),
        scheduled_for: t(from),
        scheduled_until: t(from + 30),
        component_ids: vec![],
        body: String::new(),
        manual_status: None,
        created_at: t(-100),
    };
    let ms = [m("past", -60), m("now", -10), m("later", 60)];
    let view = StatusPageView { page: &page(), components: &comps, incidents: &incs, maintenances: &ms };
    let ids = |d: IncidentsJson| d.incidents.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(ids(view.incidents_doc(t(11), false, 50)), ["new", "mid", "old"]);
    assert_eq!(ids(view.incidents_doc(t(11), false, 2)), ["new", "mid"]);
    assert_eq!(ids(view.incidents_doc(t(11), true, 50)), ["new"]);
    let mids = |d: ScheduledMaintenancesJson| d.scheduled_maintenances.into_iter().map(|m| (m.id, m.status)).collect::<Vec<_>>();
    assert_eq!(
        mids(view.maintenances_doc(t(0), &[])),
        [
            ("later".to_owned(), MaintenanceStatus::Scheduled),
            ("now".to_owned(), MaintenanceStatus::InProgress),
            ("past".to_owned(), MaintenanceStatus::Completed)
        ]
    );
    assert_eq!(mids(view.maintenances_doc(t(0), &[MaintenanceStatus::InProgress])), [("now".to_owned(), MaintenanceStatus::InProgress)]);
    assert_eq!(view.components_doc(t(0)).components.len(), 2);
}

fn diagnosis(origin: &str, pct: u8, at: Timestamp, seq: u64) -> crate::incident::TimelineEvent {
    crate::incident::TimelineEvent {
        seq,
        at,
        actor: Actor::System("correlator".into()),
        event: IncidentEvent::DiagnosisUpdated {
            sentence: String::new(),
            chain: crate::finding::CausalChain::default(),
            origin: Some(origin.into()),
            confidence_pct: Some(pct),
        },
    }
}

/// Issue 13: the page said "We have identified the cause" a second after
/// detection. An automatic draft says so only on a steady, confident diagnosis.
#[test]
fn identified_needs_a_steady_confident_diagnosis() {
    let second = t(0) + crate::time::Duration::from_secs(1);
    let first = [diagnosis("fraud-db", 100, t(0), 2)];
    assert!(!diagnosis_is_confident(&first, second), "a first guess a second after detection");
    assert!(diagnosis_is_confident(&first, t(10)), "the same origin, confident, for 10 minutes");
    let moved = [diagnosis("fraud-db", 100, t(0), 2), diagnosis("gateway", 90, t(8), 3)];
    assert!(!diagnosis_is_confident(&moved, t(12)), "the origin moved at t(8): steady for 4 minutes only");
    assert!(diagnosis_is_confident(&moved, t(18)));
    let doubtful = [diagnosis("fraud-db", 100, t(0), 2), diagnosis("fraud-db", 60, t(5), 3)];
    assert!(!diagnosis_is_confident(&doubtful, t(30)), "below {IDENTIFIED_MIN_CONFIDENCE_PCT} %");
    assert!(!diagnosis_is_confident(&[], t(30)));
}

/// The comms lead speaks: any status, their words, their component
/// statuses, a second update without a state change; the page is named by
/// the public title, never the internal one; automatic drafts do not take
/// back what they said until the incident moves on.
#[test]
fn the_comms_lead_speaks_and_drafts_do_not_talk_over_them() {
    let comps = components_from_flows(&flows(), t(-60));
    let flows = [FlowName::new("checkout").unwrap()];
    let inc = incident(vec![]);
    let facts = ImpactFacts { incident: &inc, impacted_flows: &flows, impacted_services: &[], origin_identified: false };

    // A first automatic publish: named by what is affected, not "checkout errors".
    let d = draft_update(&comps, &facts, None);
    let name = public_name(&inc, None, &comps, &d);
    assert_eq!(name, "Partial outage affecting checkout");
    let p1 = publish(&comps, None, ("inc-1", &name, t(0)), &d, None, "u1", t(1));
    assert!(!p1.updates[0].by_person);

    // The comms lead: identified, their words, login degraded too.
    let given = BTreeMap::from([("flow-login".to_owned(), ComponentStatus::DegradedPerformance)]);
    let u = comms_update(&comps, &facts, Some(&p1), Some(PublicIncidentStatus::Identified), &given, "A card processor is failing; we are switching.").unwrap();
    let titled = incident(vec![Command::ChangePublicTitle { title: "Card payments failing".into() }]);
    let p2 = publish(&comps, Some(p1), ("inc-1", &public_name(&titled, None, &comps, &u), t(0)), &u, Some(&u.body), "u2", t(2));
    assert_eq!((p2.name.as_str(), p2.status), ("Card payments failing", PublicIncidentStatus::Identified));
    assert_eq!(p2.components["flow-login"], ComponentStatus::DegradedPerformance);
    assert!(p2.updates[1].by_person);
    // A second update with nothing changed is still published.
    let again = comms_update(&comps, &facts, Some(&p2), None, &BTreeMap::new(), "Still switching; next update in 30 minutes.").unwrap();
    assert!(again.changed);
    assert_eq!((again.status, again.components.clone()), (PublicIncidentStatus::Identified, p2.components.clone()));

    // The next automatic draft (nothing identified internally) keeps their
    // status and their component statuses: nothing to publish.
    let d = draft_update(&comps, &facts, Some(&p2));
    assert_eq!(d.status, PublicIncidentStatus::Identified);
    assert!(!d.changed, "{d:?}");
    // Once the incident is resolved the draft says so and clears every component.
    let resolved = incident(vec![Command::Resolve { note: None }]);
    let d = draft_update(&comps, &ImpactFacts { incident: &resolved, ..facts.clone() }, Some(&p2));
    assert_eq!(d.status, PublicIncidentStatus::Resolved);
    assert!(d.components.values().all(|s| *s == ComponentStatus::Operational));

    let e = comms_update(&comps, &facts, Some(&p2), None, &BTreeMap::from([("flow-chekout".to_owned(), ComponentStatus::MajorOutage)]), "x").unwrap_err();
    assert_eq!(e, "components: no component \"flow-chekout\" on the status page (known: flow-checkout, flow-login)");
    assert_eq!("found".parse::<PublicIncidentStatus>().unwrap_err(), "status \"found\" is not one of investigating, identified, monitoring, resolved");
}
