//! End-to-end response workflow on virtual time, through the public API only:
//! a catalogue of three teams and two flows, an incident on the checkout flow
//! gets a suggested severity, is routed to the payments policy, pages the
//! on-call person, escalates when nobody acknowledges, stops on
//! acknowledgement, sends the resolve to everyone paged, and the status page
//! goes from major outage to operational. Every step is rendered as one
//! timeline line and compared with the expected story.

use faultline_core::escalation::{Effect, Escalation, EscalationInput, EscalationPolicy, StaticDirectory};
use faultline_core::incident::{Actor, Command, Incident};
use faultline_core::oncall::ScheduleConfig;
use faultline_core::routing::{Labels, RoutingConfig, RoutingInput};
use faultline_core::severity::{SeverityDefinitions, SeverityFacts, SloBurn};
use faultline_core::status_page::{self, ImpactFacts, PageInfo, PublicIncident, StatusPageView};
use faultline_core::{Duration, Flow, FlowName, IncidentId, Interaction, ServiceName, TeamId, Timestamp, UserId};

fn t(min: i64) -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-21T14:00:00Z").unwrap() + Duration::from_mins(min)
}

const SCHEDULE: &str = "
name: payments-primary
time_zone: Europe/London
layers:
  - name: weekly
    start: 2026-11-16T10:00:00
    rotation: weekly
    participants: [alice, bob]
";

const POLICY: &str = "
name: payments
levels:
  - {delay_minutes: 5, targets: [{schedule: payments-primary}]}
  - {delay_minutes: 10, targets: [{team: payments}]}
";

const ROUTING: &str = r#"
route:
  receiver: default
  escalation_policy: platform
  group_by: [flow]
  routes:
    - matchers: ['flow=~"checkout|refund"']
      receiver: payments-pager
      escalation_policy: payments
    - matchers: ['flow="login"']
      receiver: identity-pager
      escalation_policy: identity
"#;

#[test]
fn checkout_incident_pages_escalates_stops_on_ack_resolves_and_the_status_page_follows() {
    let team = |s: &str| TeamId::new(s).unwrap();
    let user = |s: &str| UserId::new(s).unwrap();
    let flow = |name: &str, owner: &str| Flow {
        name: FlowName::new(name).unwrap(),
        owner: team(owner),
        description: String::new(),
        interactions: vec![Interaction { caller: ServiceName::new("gateway").unwrap(), callee: ServiceName::new(name).unwrap(), operation: String::new() }],
    };
    let flows = [flow("checkout", "payments"), flow("login", "identity")];
    let mut dir = StaticDirectory::default();
    dir.teams.insert(team("payments"), vec![user("carol"), user("dan")]);
    dir.teams.insert(team("identity"), vec![user("erin")]);
    dir.teams.insert(team("platform"), vec![user("frank")]);
    let sched: ScheduleConfig = serde_saphyr::from_str(SCHEDULE).unwrap();
    dir.schedules.insert("payments-primary".into(), sched.build().unwrap());
    let policy: EscalationPolicy = serde_saphyr::from_str(POLICY).unwrap();
    policy.validate().unwrap();
    let router = serde_saphyr::from_str::<RoutingConfig>(ROUTING).unwrap().build().unwrap();
    let page = PageInfo { id: "acme".into(), name: "Acme".into(), url: "https://status.acme.test".into(), time_zone: "Europe/London".into() };
    let components = status_page::components_from_flows(&flows, t(-1000));

    let mut story: Vec<String> = Vec::new();
    let line = |story: &mut Vec<String>, at: Timestamp, s: String| story.push(format!("{:>3} {s}", (at - t(0)).as_millis() / 60_000));

    // Severity from impact.
    let impacted = [FlowName::new("checkout").unwrap()];
    let burns = [SloBurn { slo: "checkout-availability".into(), flow: Some(impacted[0].clone()), burn_rate: 18.0 }];
    let suggestion = SeverityDefinitions::standard(vec![impacted[0].clone()]).suggest(&SeverityFacts { impacted_flows: &impacted, burns: &burns });
    line(&mut story, t(0), format!("severity {}", suggestion.reason));

    // The incident itself.
    let id: IncidentId = "01936a8e-6f5c-7d2a-9b1e-0c4d5e6f7a8b".parse().unwrap();
    let system = Actor::System("correlator".into());
    let mut timeline = vec![Incident::open("Checkout failing", suggestion.severity, None, t(0), system).unwrap()];
    let mut incident = Incident::fold(id, &timeline).unwrap();

    // Routing.
    let labels: Labels = [("flow".to_owned(), "checkout".to_owned())].into();
    let decision = router.route(RoutingInput { labels: &labels, parent: None }, &[], t(0));
    line(&mut story, t(0), format!("routing {}", decision.reason));
    let policy_name = decision.notifying_routes()[0].escalation_policy.clone();
    assert_eq!(policy_name.as_deref(), Some("payments"));

    let mut esc = Escalation::new(id);
    let mut published: Option<PublicIncident> = None;
    let status_line = |story: &mut Vec<String>, inc: &Incident, published: &mut Option<PublicIncident>, now: Timestamp, identified: bool| {
        let facts = ImpactFacts { incident: inc, impacted_flows: &impacted, impacted_services: &[], origin_identified: identified };
        let draft = status_page::draft_update(&components, &facts, published.as_ref());
        let p = status_page::publish(&components, published.take(), ("inc-1", "Checkout failing", t(0)), &draft, None, &format!("u{}", now.as_millis()), now);
        let view = StatusPageView { page: &page, components: &components, incidents: std::slice::from_ref(&p), maintenances: &[] };
        let summary = view.summary_json(now);
        let comps: Vec<String> = summary.components.iter().map(|c| format!("{}={}", c.name, c.status.as_str())).collect();
        line(story, now, format!("status page {} [{}] {}", draft.status.as_str(), comps.join(" "), summary.status.description));
        *published = Some(p);
    };
    let run = |story: &mut Vec<String>, fx: Vec<Effect>, now: Timestamp| {
        for e in fx {
            match e {
                Effect::Notify(n) => line(story, now, format!("notify {} {} via {}", n.recipient, n.kind.as_str(), n.target)),
                Effect::Record { at, text } => line(story, at, format!("timeline {text}")),
                Effect::WakeAt { .. } | Effect::CancelWake => {}
            }
        }
    };
    let apply = |incident: &mut Incident, timeline: &mut Vec<_>, c: Command, now: Timestamp, who: &str| {
        let ev = incident.next_event(c, now, Actor::User(user(who))).unwrap();
        incident.apply(&ev).unwrap();
        timeline.push(ev);
    };

    run(&mut story, esc.observe(&policy, &dir, EscalationInput::Triggered, t(0)), t(0));
    status_line(&mut story, &incident, &mut published, t(1), false);
    // Nobody acknowledges: the driver wakes at the deadline.
    let wake = esc.next_wake().unwrap();
    run(&mut story, esc.tick(&policy, &dir, wake), wake);
    apply(&mut incident, &mut timeline, Command::Acknowledge, t(7), "dan");
    run(&mut story, esc.observe(&policy, &dir, EscalationInput::Acknowledged { by: Some(user("dan")) }, t(7)), t(7));
    assert_eq!(esc.next_wake(), None, "acknowledged: no more pages");
    status_line(&mut story, &incident, &mut published, t(8), true);
    apply(&mut incident, &mut timeline, Command::Mitigate { note: Some("rolled back".into()) }, t(20), "dan");
    status_line(&mut story, &incident, &mut published, t(21), true);
    apply(&mut incident, &mut timeline, Command::Resolve { note: None }, t(30), "dan");
    run(&mut story, esc.observe(&policy, &dir, EscalationInput::Resolved, t(30)), t(30));
    status_line(&mut story, &incident, &mut published, t(31), true);

    let want = [
        "  0 severity SEV1: critical flow checkout impacted and SLO checkout-availability at 18.0× (≥ 14.4×) (rule 1 \"critical flow fast burn\")",
        "  0 routing routed to payments-pager (route {}/{flow=~\"checkout|refund\"}, group {flow=\"checkout\"}) with escalation policy payments",
        "  0 timeline escalation policy payments started",
        "  0 notify alice trigger via schedule:payments-primary",
        "  0 timeline level 1 round 1: paged alice (via schedule:payments-primary)",
        "  1 status page investigating [checkout=major_outage login=operational] Major System Outage",
        "  5 notify carol trigger via team:payments",
        "  5 notify dan trigger via team:payments",
        "  5 timeline level 2 round 1: paged carol (via team:payments), dan (via team:payments)",
        "  7 timeline acknowledged by dan: escalation stopped",
        "  8 status page identified [checkout=major_outage login=operational] Major System Outage",
        " 21 status page monitoring [checkout=degraded_performance login=operational] Major System Outage",
        " 30 notify alice resolve via schedule:payments-primary",
        " 30 notify carol resolve via team:payments",
        " 30 notify dan resolve via team:payments",
        " 30 timeline resolved: resolve sent to everyone paged (alice, carol, dan)",
        " 31 status page resolved [checkout=operational login=operational] All Systems Operational",
    ];
    assert_eq!(story, want, "\n{}", story.join("\n"));
    // MTTA and MTTR come from the incident timeline.
    assert_eq!(incident.acknowledged_at.map(|a| (a - incident.opened_at).as_millis() / 60_000), Some(7));
    assert_eq!(incident.resolved_at.map(|r| (r - incident.opened_at).as_millis() / 60_000), Some(30));
}
