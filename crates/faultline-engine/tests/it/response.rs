//! The response driver on chosen times against a real SQLite store: an
//! incident on a flow pages the on-call person of the flow's owner,
//! escalates after the delay, stops on acknowledgement, sends the resolve to
//! everyone paged, writes its decisions on the timeline, and a new driver on
//! the same store (a restart) neither repeats nor loses a page.

use std::collections::BTreeMap;
use std::sync::Arc;

use faultline_core::catalogue::Catalogue;
use faultline_core::escalation::{EscalationPolicy, StaticDirectory};
use faultline_core::incident::{Actor, Command, Incident, IncidentEvent, Severity};
use faultline_core::oncall::ScheduleConfig;
use faultline_core::routing::{ApiMatcher, Silence};
use faultline_core::status_page::components_from_flows;
use faultline_core::{IncidentId, Timestamp, UserId};
use faultline_engine::response::{ContactMethod, ResponseDriver, ResponseSetup};
use faultline_store::response::ResponseStore;
use faultline_store::{SqlStore, Store, commands};

pub const CATALOGUE: &str = r#"
teams:
  - { id: payments, name: Payments, members: [alice, bob] }
  - { id: search, name: Search, members: [carol] }
  - { id: platform, name: Platform, members: [dave] }
services:
  - { name: checkout, owner: payments }
  - { name: payments-db, kind: database, owner: platform }
  - { name: search-api, owner: search }
flows:
  - name: checkout
    owner: payments
    interactions:
      - { caller: frontend, callee: checkout }
      - { caller: checkout, callee: payments-db }
  - name: search
    owner: search
    interactions:
      - { caller: frontend, callee: search-api }
"#;

fn t(s: i64) -> Timestamp {
    // 2027-01-15T08:00:00Z: alice's turn (daily 09:00 London handoffs from 2026-01-01).
    Timestamp::from_secs(1_800_000_000 + s)
}

fn user(s: &str) -> UserId {
    UserId::new(s).unwrap()
}

pub fn setup() -> ResponseSetup {
    let catalogue = Catalogue::from_yaml(CATALOGUE).unwrap();
    let schedule: ScheduleConfig = serde_json::from_value(serde_json::json!({
        "name": "payments-primary",
        "time_zone": "Europe/London",
        "layers": [{"name": "daily", "start": "2026-01-01T09:00:00", "rotation": "daily", "participants": ["alice", "bob"]}]
    }))
    .unwrap();
    let policy: EscalationPolicy = serde_json::from_value(serde_json::json!({
        "name": "payments",
        "levels": [
            {"delay_minutes": 5, "targets": [{"schedule": "payments-primary"}]},
            {"delay_minutes": 10, "targets": [{"user": "dave"}]}
        ]
    }))
    .unwrap();
    let mut directory = StaticDirectory::default();
    directory.schedules.insert("payments-primary".into(), schedule.build().unwrap());
    for team in &catalogue.teams {
        directory.teams.insert(team.id.clone(), team.members.clone());
    }
    let contacts = ["alice", "bob", "carol", "dave"].iter().map(|u| (user(u), vec![ContactMethod { channel: "hook".into(), address: None }])).collect();
    ResponseSetup {
        components: components_from_flows(&catalogue.flows, t(-86_400)),
        catalogue,
        directory,
        policies: BTreeMap::from([("payments".into(), policy)]),
        router: None,
        receivers: BTreeMap::new(),
        contacts,
        default_policy: None,
        base_url: None,
        auto_publish: true,
        ack_channels: Default::default(),
        page: Default::default(),
    }
}

async fn open(store: &SqlStore, title: &str, at: Timestamp) -> IncidentId {
    let id = IncidentId::from_uuid(uuid::Uuid::now_v7());
    let opened = Incident::open(title, Severity::Sev2, None, at, Actor::User(user("oncall-bot"))).unwrap();
    store.create_incident(id, &opened).await.unwrap();
    id
}

async fn pages(store: &SqlStore, id: IncidentId) -> Vec<(String, String)> {
    store.notifications(id).await.unwrap().into_iter().map(|r| (r.recipient, r.kind)).collect()
}

fn driver(store: &SqlStore, setup: ResponseSetup) -> ResponseDriver {
    let s = Arc::new(store.clone());
    ResponseDriver::new(s.clone(), s, Arc::new(setup), None)
}

#[tokio::test]
async fn pages_the_owner_on_call_escalates_stops_on_ack_and_resolves_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let d = driver(&store, setup());
    let id = open(&store, "checkout errors", t(0)).await;
    d.step(t(0)).await.unwrap();
    assert_eq!(pages(&store, id).await, [("alice".to_owned(), "trigger".to_owned())], "the on-call of the flow owner's schedule");
    d.step(t(299)).await.unwrap();
    assert_eq!(pages(&store, id).await.len(), 1, "not before the delay");
    d.step(t(300)).await.unwrap();
    assert_eq!(pages(&store, id).await.last().unwrap(), &("dave".to_owned(), "trigger".to_owned()), "level 2 after 5 minutes");

    // A restart: a fresh driver on the same store repeats nothing.
    let d = driver(&store, setup());
    d.step(t(301)).await.unwrap();
    assert_eq!(pages(&store, id).await.len(), 2);

    commands::execute(&store, id, Command::Acknowledge, Actor::User(user("alice")), t(400)).await.unwrap();
    d.step(t(400)).await.unwrap();
    d.step(t(5000)).await.unwrap();
    assert_eq!(pages(&store, id).await.len(), 2, "acknowledged: no more pages (the policy would otherwise exhaust)");
    commands::execute(&store, id, Command::Resolve { note: None }, Actor::User(user("alice")), t(6000)).await.unwrap();
    d.step(t(6000)).await.unwrap();
    let mut got = pages(&store, id).await;
    got.sort();
    let expect = [("alice", "resolve"), ("alice", "trigger"), ("dave", "resolve"), ("dave", "trigger")].map(|(a, b)| (a.to_owned(), b.to_owned()));
    assert_eq!(got, expect, "everyone paged gets exactly one resolve");

    let (_, timeline) = store.incident(id).await.unwrap().unwrap();
    let notes: Vec<String> = timeline
        .iter()
        .filter_map(|e| match &e.event {
            IncidentEvent::SystemNote { component, text } => Some(format!("{component}: {text}")),
            _ => None,
        })
        .collect();
    let all = notes.join("\n");
    assert!(all.contains("routing: routed: ownership: payments (owner: owns impacted flow checkout"), "{all}");
    assert!(all.contains("paged alice (via schedule:payments-primary)"), "{all}");
    assert!(all.contains("paged dave (via user:dave)"), "{all}");
    assert!(all.contains("acknowledged by alice: escalation stopped"), "{all}");
    assert!(all.contains("resolve sent to everyone paged"), "{all}");
    let unique: std::collections::BTreeSet<_> = notes.iter().collect();
    assert_eq!(unique.len(), notes.len(), "no note twice:\n{all}");

    // The status page followed: degraded while open, operational when resolved.
    let public = store.public_incident_for(id).await.unwrap().unwrap();
    let statuses: Vec<_> = public.updates.iter().map(|u| u.status.as_str()).collect();
    assert_eq!(statuses.first(), Some(&"investigating"));
    assert_eq!(statuses.last(), Some(&"resolved"));
    assert_eq!(public.components.get("flow-checkout").map(|s| s.as_str()), Some("operational"));
}

#[tokio::test]
async fn a_silence_defers_pages_and_never_drops_the_resolve() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let d = driver(&store, setup());
    let id = open(&store, "checkout errors", t(0)).await;
    d.step(t(0)).await.unwrap();
    assert_eq!(pages(&store, id).await.len(), 1);
    // A silence on team=payments starts after the first page…
    let silence = Silence {
        id: "s1".into(),
        matchers: vec![ApiMatcher { name: "team".into(), value: "payments".into(), is_regex: false, is_equal: true }],
        starts_at: t(10).to_jiff(),
        ends_at: t(3600).to_jiff(),
        created_by: "alice".into(),
        comment: "deploy".into(),
        status: None,
        updated_at: None,
    };
    store.put_silence(&silence, t(10)).await.unwrap();
    // …and a second incident opened inside it does not page until it ends.
    let id2 = open(&store, "checkout latency", t(20)).await;
    d.step(t(20)).await.unwrap();
    d.step(t(600)).await.unwrap();
    assert!(pages(&store, id2).await.is_empty(), "silenced");
    d.step(t(3600)).await.unwrap();
    // Deferred, not dropped — and paged to whoever is on call when it ends:
    // the 09:00 London handoff passed bob the pager at t(3600).
    assert_eq!(pages(&store, id2).await, [("bob".to_owned(), "trigger".to_owned())], "deferred, not dropped");
    // The first incident resolves while its team is silenced: the resolve still goes.
    commands::execute(&store, id, Command::Resolve { note: None }, Actor::User(user("alice")), t(700)).await.unwrap();
    d.step(t(700)).await.unwrap();
    assert!(pages(&store, id).await.iter().any(|(u, k)| u == "alice" && k == "resolve"));
}

/// Symptoms attached after the page (an alert storm's bulk) need no
/// reaction: the driver reads only the events past its cursor, moves the
/// cursor over them and writes nothing else; an acknowledgement among later
/// symptoms is still acted on.
#[tokio::test]
async fn symptoms_after_the_page_only_move_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let d = driver(&store, setup());
    let id = open(&store, "checkout errors", t(0)).await;
    d.step(t(0)).await.unwrap();
    let after_page = store.incident(id).await.unwrap().unwrap().1.len();
    let correlator = Actor::System("correlator".into());
    let symptom = |i: usize| {
        Command::Record(IncidentEvent::SymptomAttached { member: format!("alertmanager alert fp{i}"), evidence: String::new(), labels: BTreeMap::new() })
    };
    for i in 0..50 {
        commands::execute(&store, id, symptom(i), correlator.clone(), t(10)).await.unwrap();
    }
    assert_eq!(d.step(t(20)).await.unwrap(), 1);
    let version = store.incident(id).await.unwrap().unwrap().0.version;
    assert_eq!(store.response_cursor(id).await.unwrap(), version, "read up to the last symptom");
    assert_eq!(store.incident(id).await.unwrap().unwrap().1.len(), after_page + 50, "no note written");
    assert!(store.stale_incidents(10).await.unwrap().is_empty());
    assert_eq!(pages(&store, id).await.len(), 1);

    commands::execute(&store, id, symptom(50), correlator.clone(), t(30)).await.unwrap();
    commands::execute(&store, id, Command::Acknowledge, Actor::User(user("alice")), t(31)).await.unwrap();
    commands::execute(&store, id, symptom(51), correlator, t(32)).await.unwrap();
    d.step(t(40)).await.unwrap();
    d.step(t(400)).await.unwrap();
    assert_eq!(pages(&store, id).await.len(), 1, "acknowledged among symptoms: level 2 never pages");
}

/// A routing tree whose only child route is for the search team.
fn routed_setup() -> ResponseSetup {
    let mut s = setup();
    let routing: faultline_core::routing::RoutingConfig = serde_json::from_value(serde_json::json!({
        "route": {"receiver": "default", "routes": [{"matchers": ["team=\"search\""], "receiver": "search", "escalation_policy": "search"}]}
    }))
    .unwrap();
    s.router = Some(routing.build().unwrap());
    let search: EscalationPolicy =
        serde_json::from_value(serde_json::json!({"name": "search", "levels": [{"delay_minutes": 5, "targets": [{"team": "search"}]}]})).unwrap();
    s.policies.insert("search".into(), search);
    s.default_policy = Some("payments".into());
    s
}

fn notes(timeline: &[faultline_core::incident::TimelineEvent]) -> Vec<String> {
    timeline
        .iter()
        .filter_map(|e| match &e.event {
            IncidentEvent::SystemNote { component, text } => Some(format!("{component}: {text}")),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_default_policy_applies_when_the_routing_tree_matches_no_route_with_a_policy() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let d = driver(&store, routed_setup());
    // Names no known service, so no team: no child route matches and the
    // root names no policy (a bare `incidents declare` is this case).
    let id = open(&store, "something is wrong", t(0)).await;
    d.step(t(0)).await.unwrap();
    assert_eq!(pages(&store, id).await, [("alice".to_owned(), "trigger".to_owned())], "default_policy payments pages its on-call");
    let (_, timeline) = store.incident(id).await.unwrap().unwrap();
    assert!(notes(&timeline).contains(&"routing: routed: no route names an escalation policy: default_policy payments".to_owned()), "{:#?}", notes(&timeline));

    // Without a default, the timeline says nobody is paged, and why.
    let mut s = routed_setup();
    s.default_policy = None;
    let d = driver(&store, s);
    let lonely = open(&store, "something else is wrong", t(10)).await;
    d.step(t(10)).await.unwrap();
    assert!(pages(&store, lonely).await.is_empty());
    let (_, timeline) = store.incident(lonely).await.unwrap().unwrap();
    assert!(notes(&timeline).iter().any(|n| n.ends_with("no route names an escalation policy and there is no default_policy: nobody paged")));
}

#[tokio::test]
async fn a_declared_incident_is_routed_on_its_declared_service_flow_and_team() {
    use faultline_core::incident::DeclaredScope;
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let d = driver(&store, routed_setup());
    let declare = |title: &str, scope: DeclaredScope| {
        let store = store.clone();
        let title = title.to_owned();
        async move {
            let id = IncidentId::from_uuid(uuid::Uuid::now_v7());
            let opened = Incident::declare(&title, Severity::Sev1, None, scope, t(0), Actor::User(user("alice"))).unwrap();
            store.create_incident(id, &opened).await.unwrap();
            id
        }
    };
    // A service the search team owns: the search route, the search team paged.
    let by_service = declare("results are empty", DeclaredScope { services: vec!["search-api".parse().unwrap()], ..DeclaredScope::default() }).await;
    // The search flow: its owner.
    let by_flow = declare("results are empty", DeclaredScope { flows: vec!["search".parse().unwrap()], ..DeclaredScope::default() }).await;
    // A team named outright, though the service belongs to payments.
    let by_team = declare(
        "checkout slow",
        DeclaredScope { services: vec!["checkout".parse().unwrap()], team: Some("search".parse().unwrap()), ..DeclaredScope::default() },
    )
    .await;
    d.step(t(0)).await.unwrap();
    for id in [by_service, by_flow, by_team] {
        assert_eq!(pages(&store, id).await, [("carol".to_owned(), "trigger".to_owned())], "the search policy");
    }
    let (_, timeline) = store.incident(by_team).await.unwrap().unwrap();
    assert!(notes(&timeline).iter().any(|n| n.contains("declared owned by team search")), "{:#?}", notes(&timeline));
}

/// Routes payments incidents to a chat channel and a PagerDuty forward.
fn chat_setup() -> ResponseSetup {
    let mut s = setup();
    let routing: faultline_core::routing::RoutingConfig = serde_json::from_value(serde_json::json!({
        "route": {"receiver": "default", "routes": [{"matchers": ["team=\"payments\""], "receiver": "payments", "escalation_policy": "payments"}]}
    }))
    .unwrap();
    s.router = Some(routing.build().unwrap());
    s.receivers = BTreeMap::from([("payments".into(), vec!["chat".into(), "pd".into()]), ("default".into(), vec![])]);
    s.ack_channels = ["pd".to_owned()].into();
    s
}

/// (channel, kind, change) of every incident-level message and direct word.
async fn channel_messages(store: &SqlStore, id: IncidentId) -> Vec<(String, String, String)> {
    store
        .notifications(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.idempotency_key.contains("/channel/") || r.idempotency_key.contains("/tell/"))
        .map(|r| (r.channel, r.kind, r.payload["change"].as_str().unwrap_or("").to_owned()))
        .collect()
}

#[tokio::test]
async fn every_state_change_reaches_the_chat_channels_and_a_role_holder_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let d = driver(&store, chat_setup());
    let id = open(&store, "checkout errors", t(0)).await;
    d.step(t(0)).await.unwrap();
    let as_user = |u: &str| Actor::User(user(u));
    commands::execute(&store, id, Command::Acknowledge, as_user("alice"), t(10)).await.unwrap();
    commands::execute(
        &store,
        id,
        Command::AssignRole { role: faultline_core::incident::Role::from("incident_commander".to_owned()), user: user("bob") },
        as_user("alice"),
        t(20),
    )
    .await
    .unwrap();
    commands::execute(&store, id, Command::ChangeSeverity { to: Severity::Sev1, reason: "card payments down".into() }, as_user("bob"), t(30)).await.unwrap();
    commands::execute(&store, id, Command::Mitigate { note: Some("rolled back".into()) }, as_user("bob"), t(40)).await.unwrap();
    d.step(t(40)).await.unwrap();
    commands::execute(&store, id, Command::UnassignRole { role: faultline_core::incident::Role::from("incident_commander".to_owned()) }, as_user("bob"), t(50))
        .await
        .unwrap();
    commands::execute(&store, id, Command::Resolve { note: None }, as_user("alice"), t(60)).await.unwrap();
    d.step(t(60)).await.unwrap();
    let got = channel_messages(&store, id).await;
    let want = [
        ("chat", "trigger", ""),
        ("pd", "trigger", ""),
        ("chat", "acknowledge", "acknowledged by alice"),
        ("pd", "acknowledge", "acknowledged by alice"),
        ("hook", "update", "you are now incident_commander of this incident (assigned by alice)"),
        ("chat", "update", "bob is now incident_commander (assigned by alice)"),
        ("chat", "update", "severity SEV2 → SEV1 by bob: card payments down"),
        ("chat", "update", "mitigated by bob: rolled back"),
        ("chat", "update", "incident_commander unassigned by bob"),
        ("chat", "resolve", "resolved by alice"),
        ("pd", "resolve", "resolved by alice"),
    ]
    .map(|(c, k, x)| (c.to_owned(), k.to_owned(), x.to_owned()));
    let mut got_sorted = got.clone();
    got_sorted.sort();
    let mut want_sorted = want.to_vec();
    want_sorted.sort();
    assert_eq!(got_sorted, want_sorted, "{got:#?}");
    let (_, timeline) = store.incident(id).await.unwrap().unwrap();
    let notes = notes(&timeline);
    assert!(notes.contains(&"notify: told bob via hook: you are now incident_commander of this incident (assigned by alice)".to_owned()), "{notes:#?}");
    assert!(notes.contains(&"escalation: payments: acknowledged by alice: escalation stopped".to_owned()), "{notes:#?}");

    // Reopened: the channels are paged anew, saying who and why.
    commands::execute(&store, id, Command::Reopen { reason: "errors are back".into() }, as_user("alice"), t(70)).await.unwrap();
    d.step(t(70)).await.unwrap();
    let got = channel_messages(&store, id).await;
    assert!(got.contains(&("chat".into(), "trigger".into(), "reopened by alice: errors are back".into())), "{got:#?}");

    // Mitigated without an acknowledgement first: the forward gets an acknowledge.
    let other = open(&store, "checkout slow", t(100)).await;
    d.step(t(100)).await.unwrap();
    commands::execute(&store, other, Command::Mitigate { note: None }, as_user("bob"), t(110)).await.unwrap();
    d.step(t(110)).await.unwrap();
    let got = channel_messages(&store, other).await;
    assert!(got.contains(&("pd".into(), "acknowledge".into(), "mitigated by bob".into())), "{got:#?}");
    assert!(got.contains(&("chat".into(), "update".into(), "mitigated by bob".into())), "{got:#?}");
}

#[tokio::test]
async fn one_person_on_two_policies_is_paged_once_per_step() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let mut s = setup();
    let routing: faultline_core::routing::RoutingConfig = serde_json::from_value(serde_json::json!({
        "route": {"receiver": "default", "routes": [
            {"matchers": ["team=\"payments\""], "receiver": "default", "escalation_policy": "a", "continue": true},
            {"matchers": ["team=\"payments\""], "receiver": "default", "escalation_policy": "b"}
        ]}
    }))
    .unwrap();
    s.router = Some(routing.build().unwrap());
    let policy = |v: serde_json::Value| -> EscalationPolicy { serde_json::from_value(v).unwrap() };
    // At minute 10 policy a reaches alice at its level 3 and b at its level 2.
    s.policies.insert(
        "a".into(),
        policy(serde_json::json!({"name": "a", "levels": [
            {"delay_minutes": 5, "targets": [{"user": "carol"}]}, {"delay_minutes": 5, "targets": [{"user": "dave"}]}, {"delay_minutes": 30, "targets": [{"user": "alice"}]}]})),
    );
    s.policies.insert(
        "b".into(),
        policy(serde_json::json!({"name": "b", "levels": [{"delay_minutes": 10, "targets": [{"user": "bob"}]}, {"delay_minutes": 30, "targets": [{"user": "alice"}]}]})),
    );
    let d = driver(&store, s);
    let id = open(&store, "checkout errors", t(0)).await;
    d.step(t(0)).await.unwrap();
    d.step(t(300)).await.unwrap();
    d.step(t(600)).await.unwrap();
    let alice: Vec<(String, String)> = pages(&store, id).await.into_iter().filter(|(r, _)| r == "alice").collect();
    assert_eq!(alice, [("alice".to_owned(), "trigger".to_owned())], "one page for one step, whichever policies name her");
    let (_, timeline) = store.incident(id).await.unwrap().unwrap();
    assert!(
        notes(&timeline).contains(&"notify: alice already paged by escalation policy a in this step: not paged again by b".to_owned()),
        "{:#?}",
        notes(&timeline)
    );
    // Her resolve is owed once too.
    commands::execute(&store, id, Command::Resolve { note: None }, Actor::User(user("bob")), t(700)).await.unwrap();
    d.step(t(700)).await.unwrap();
    let resolves = pages(&store, id).await.into_iter().filter(|(r, k)| r == "alice" && k == "resolve").count();
    assert_eq!(resolves, 1);
}

#[tokio::test]
async fn an_exhausted_policy_pages_its_fallback_and_the_timeline_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let mut s = setup();
    let policy: EscalationPolicy = serde_json::from_value(serde_json::json!({
        "name": "payments", "levels": [{"delay_minutes": 5, "targets": [{"schedule": "payments-primary"}]}], "fallback": [{"user": "carol"}]
    }))
    .unwrap();
    s.policies.insert("payments".into(), policy);
    let d = driver(&store, s);
    let id = open(&store, "checkout errors", t(0)).await;
    d.step(t(0)).await.unwrap();
    d.step(t(300)).await.unwrap();
    assert_eq!(pages(&store, id).await, [("alice".to_owned(), "trigger".to_owned()), ("carol".to_owned(), "trigger".to_owned())]);
    let carol = store.notifications(id).await.unwrap().into_iter().find(|r| r.recipient == "carol").unwrap();
    assert_eq!(carol.payload["change"], "escalation policy payments exhausted: nobody acknowledged; you are its fallback");
    let (_, timeline) = store.incident(id).await.unwrap().unwrap();
    let want = "escalation: payments: escalation policy payments exhausted: nobody acknowledged after 1 round(s); fallback notified: carol (via user:carol)";
    assert!(notes(&timeline).contains(&want.to_owned()), "{:#?}", notes(&timeline));
}

/// Routes match what the alert said, as Alertmanager's tree would: a route
/// on `alertname="SearchLatency"` catches the incident its alert opened,
/// though the incident's title is longer (it saw the title, then the
/// fingerprint, before).
#[tokio::test]
async fn routes_match_the_alerts_own_labels() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let mut s = setup();
    let routing: faultline_core::routing::RoutingConfig = serde_json::from_value(serde_json::json!({
        "route": {"receiver": "default", "routes": [{"matchers": ["alertname=\"SearchLatency\"", "region=\"eu\""], "receiver": "search", "escalation_policy": "search"}]}
    }))
    .unwrap();
    s.router = Some(routing.build().unwrap());
    let search: EscalationPolicy =
        serde_json::from_value(serde_json::json!({"name": "search", "levels": [{"delay_minutes": 5, "targets": [{"team": "search"}]}]})).unwrap();
    s.policies.insert("search".into(), search);
    let d = driver(&store, s);
    let id = open(&store, "SearchLatency on search-api: p99 above 2 s", t(0)).await;
    let labels = BTreeMap::from([("alertname".to_owned(), "SearchLatency".to_owned()), ("region".to_owned(), "eu".to_owned())]);
    let symptom = IncidentEvent::SymptomAttached { member: "alertmanager alert 9e80".into(), evidence: String::new(), labels };
    commands::execute(&store, id, Command::Record(symptom), Actor::System("correlator".into()), t(0)).await.unwrap();
    d.step(t(0)).await.unwrap();
    assert_eq!(pages(&store, id).await, [("carol".to_owned(), "trigger".to_owned())], "the alertname route's policy pages the search team");
}
