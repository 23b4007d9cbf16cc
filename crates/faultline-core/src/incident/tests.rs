//! Tests of the incident state machine: transitions, typed errors, and the
//! fold property (state from the whole timeline == state built step by step).

use proptest::prelude::*;

use super::*;

fn id() -> IncidentId {
    "01936a8e-6f5c-7d2a-9b1e-0c4d5e6f7a8b".parse().unwrap()
}
fn alice() -> Actor {
    Actor::User(UserId::new("alice").unwrap())
}
fn t(s: i64) -> Timestamp {
    Timestamp::from_secs(1_800_000_000 + s)
}

/// Runs commands in order, one second apart, returning the final state, the
/// timeline, and the result of each command rendered as `ok` or the error.
fn run(commands: Vec<Command>) -> (Incident, Vec<TimelineEvent>, Vec<String>) {
    let opened = Incident::open("checkout failing", Severity::Sev2, None, t(0), alice()).unwrap();
    let mut timeline = vec![opened];
    let mut inc = Incident::fold(id(), &timeline).unwrap();
    let mut results = Vec::new();
    for (i, c) in commands.into_iter().enumerate() {
        match inc.next_event(c, t(i as i64 + 1), alice()) {
            Ok(ev) => {
                inc.apply(&ev).unwrap();
                timeline.push(ev);
                results.push("ok".to_owned());
            }
            Err(e) => results.push(e.to_string()),
        }
    }
    (inc, timeline, results)
}

#[test]
fn full_lifecycle_records_each_step_on_the_timeline() {
    let (inc, timeline, results) = run(vec![
        Command::Acknowledge,
        Command::AssignRole { role: Role::IncidentCommander, user: UserId::new("bob").unwrap() },
        Command::ChangeSeverity { to: Severity::Sev1, reason: "checkout down in all regions".into() },
        Command::Mitigate { note: Some("rolled back".into()) },
        Command::Resolve { note: None },
    ]);
    assert_eq!(results, ["ok"; 5]);
    assert_eq!(inc.status, IncidentStatus::Resolved);
    assert_eq!(inc.severity, Severity::Sev1);
    assert_eq!(inc.version, 6);
    assert_eq!(inc.acknowledged_at, Some(t(1)));
    assert_eq!(inc.resolved_at, Some(t(5)));
    assert_eq!(inc.roles.get(&Role::IncidentCommander).map(UserId::as_str), Some("bob"));
    let kinds: Vec<&str> = timeline.iter().map(|e| e.event.kind()).collect();
    assert_eq!(kinds, ["opened", "acknowledged", "role_assigned", "severity_changed", "mitigated", "resolved"]);
}

#[test]
fn invalid_transitions_are_typed_errors() {
    let (_, _, results) = run(vec![
        Command::Reopen { reason: "again".into() },
        Command::Acknowledge,
        Command::Acknowledge,
        Command::Resolve { note: None },
        Command::Acknowledge,
        Command::Mitigate { note: None },
        Command::Resolve { note: None },
        Command::ChangeSeverity { to: Severity::Sev2, reason: "same".into() },
        Command::UnassignRole { role: Role::Scribe },
        Command::AddNote { text: "  ".into() },
    ]);
    assert_eq!(
        results,
        [
            "cannot reopen an incident that is triggered",
            "ok",
            "incident is already acknowledged",
            "ok",
            "cannot acknowledge an incident that is resolved",
            "cannot mitigate an incident that is resolved",
            "incident is already resolved",
            "severity is already SEV2",
            "role scribe is not assigned",
            "invalid text: must not be empty",
        ]
    );
}

#[test]
fn reopen_returns_to_triggered_and_clears_progress() {
    let (inc, _, results) = run(vec![Command::Acknowledge, Command::Resolve { note: None }, Command::Reopen { reason: "errors are back".into() }]);
    assert_eq!(results, ["ok"; 3]);
    assert_eq!(inc.status, IncidentStatus::Triggered);
    assert_eq!((inc.acknowledged_at, inc.resolved_at, inc.reopen_count), (None, None, 1));
}

#[test]
fn open_validates_title() {
    assert_eq!(Incident::open("   ", Severity::Sev3, None, t(0), alice()).unwrap_err().to_string(), "invalid title: must not be empty");
    assert_eq!(Incident::open(&"x".repeat(201), Severity::Sev3, None, t(0), alice()).unwrap_err().to_string(), "invalid title: must be at most 200 characters");
}

#[test]
fn corrupt_timelines_are_reported_not_panicked_on() {
    let (_, timeline, _) = run(vec![Command::Acknowledge, Command::Resolve { note: None }]);
    assert!(Incident::fold(id(), &[]).is_err());
    assert!(Incident::fold(id(), &timeline[1..]).unwrap_err().to_string().contains("expected opened"));
    let mut gap = timeline.clone();
    gap.remove(1);
    assert!(Incident::fold(id(), &gap).unwrap_err().to_string().contains("expected seq 2, found 3"));
    let mut doubled = timeline.clone();
    doubled.insert(2, TimelineEvent { seq: 3, ..timeline[1].clone() });
    doubled[3].seq = 4;
    assert!(Incident::fold(id(), &doubled).is_err(), "acknowledging twice is not a valid history");
}

#[test]
fn severity_parses_leniently_and_rejects_unknown() {
    assert_eq!("SEV1".parse::<Severity>().unwrap(), Severity::Sev1);
    assert_eq!("sev2".parse::<Severity>().unwrap(), Severity::Sev2);
    assert_eq!("3".parse::<Severity>().unwrap(), Severity::Sev3);
    assert_eq!("SEV9".parse::<Severity>().unwrap_err().to_string(), "unknown severity \"SEV9\": expected SEV1, SEV2 or SEV3");
    assert!(serde_json::from_str::<Severity>("\"SEV4\"").is_err());
}

#[test]
fn timeline_events_serialize_with_snake_case_tags() {
    let ev = TimelineEvent {
        seq: 2,
        at: t(1),
        actor: Actor::System("correlator".into()),
        event: IncidentEvent::RoleAssigned { role: Role::CommsLead, user: UserId::new("carol").unwrap() },
    };
    let json = serde_json::to_string(&ev).unwrap();
    assert_eq!(
        json,
        r#"{"seq":2,"at":"2027-01-15T08:00:01.000Z","actor":{"kind":"system","name":"correlator"},"event":{"type":"role_assigned","role":"comms_lead","user":"carol"}}"#
    );
    assert_eq!(serde_json::from_str::<TimelineEvent>(&json).unwrap(), ev);
    // Rows written by older versions carry the time as milliseconds: still read.
    let old = json.replace(r#""2027-01-15T08:00:01.000Z""#, "1800000001000");
    assert_eq!(serde_json::from_str::<TimelineEvent>(&old).unwrap(), ev);
    // No real instant, but still written and read back, never a panic.
    let far = Timestamp::from_millis(i64::MAX);
    assert_eq!(serde_json::from_str::<Timestamp>(&serde_json::to_string(&far).unwrap()).unwrap(), far);
}

/// Titles are editable; the public title is separate from the internal one;
/// an automatic rename (from the diagnosis) never replaces a person's title.
#[test]
fn titles_are_editable_and_a_persons_title_is_kept() {
    let auto = |t: &str| Command::Record(IncidentEvent::TitleChanged { title: t.into(), automatic: true });
    let (inc, timeline, results) = run(vec![
        auto("web → api: errors 31 %; origin api-db"),
        Command::ChangeTitle { title: " Checkout payments failing ".into() },
        auto("web → api: errors 40 %; origin api"),
        Command::ChangeTitle { title: "Checkout payments failing".into() },
        Command::ChangePublicTitle { title: "Payments are failing".into() },
        Command::ChangeTitle { title: " ".into() },
    ]);
    assert_eq!(
        results,
        ["ok", "ok", "a person set the title; automatic titles no longer replace it", "the title is already that", "ok", "invalid title: must not be empty",]
    );
    assert_eq!((inc.title.as_str(), inc.public_title.as_deref(), inc.title_set_by_person), ("Checkout payments failing", Some("Payments are failing"), true));
    assert_eq!(timeline[2].event.kind(), "title_changed");
    assert_eq!(timeline[3].event.kind(), "public_title_changed");
    assert_eq!(Incident::fold(id(), &timeline).unwrap(), inc);
}

/// A recorded severity change is a suggestion: it raises from the current
/// severity (even when a person changed it since) and never lowers.
#[test]
fn a_suggested_severity_only_raises() {
    let suggest = |to| Command::Record(IncidentEvent::SeverityChanged { from: Severity::Sev3, to, reason: "suggested".into() });
    let (inc, timeline, results) = run(vec![suggest(Severity::Sev3), suggest(Severity::Sev1), suggest(Severity::Sev2)]);
    assert_eq!(
        results,
        [
            "severity is SEV2: a suggested SEV3 would not raise it, and a suggestion never lowers",
            "ok",
            "severity is SEV1: a suggested SEV2 would not raise it, and a suggestion never lowers",
        ]
    );
    assert_eq!(inc.severity, Severity::Sev1);
    assert!(matches!(timeline[1].event, IncidentEvent::SeverityChanged { from: Severity::Sev2, to: Severity::Sev1, .. }), "from the actual severity");
}

fn command_strategy() -> impl Strategy<Value = Command> {
    let sev = prop_oneof![Just(Severity::Sev1), Just(Severity::Sev2), Just(Severity::Sev3)];
    let role = prop_oneof![Just(Role::IncidentCommander), Just(Role::CommsLead), Just(Role::Scribe), "[a-z]{0,3}".prop_map(Role::Custom)];
    prop_oneof![
        Just(Command::Acknowledge),
        Just(Command::Mitigate { note: None }),
        Just(Command::Resolve { note: Some("done".into()) }),
        "[a-z ]{0,4}".prop_map(|reason| Command::Reopen { reason }),
        (sev, "[a-z]{0,2}").prop_map(|(to, reason)| Command::ChangeSeverity { to, reason }),
        role.clone().prop_map(|role| Command::AssignRole { role, user: UserId::new("u").unwrap() }),
        role.prop_map(|role| Command::UnassignRole { role }),
        "[a-z ]{0,3}".prop_map(|text| Command::AddNote { text }),
        "[a-z ]{0,3}".prop_map(|title| Command::ChangeTitle { title }),
        "[a-z ]{0,3}".prop_map(|title| Command::ChangePublicTitle { title }),
        ("[a-z ]{0,3}", any::<bool>()).prop_map(|(title, automatic)| Command::Record(IncidentEvent::TitleChanged { title, automatic })),
    ]
}

proptest! {
    /// INV-INC-1: incident state is a fold of its timeline. Any command
    /// sequence either appends a valid event or returns a typed error, and
    /// folding the resulting timeline reproduces the incrementally built state.
    #[test]
    fn state_is_a_fold_of_the_timeline(commands in proptest::collection::vec(command_strategy(), 0..40)) {
        let (inc, timeline, _) = run(commands);
        prop_assert_eq!(Incident::fold(id(), &timeline).unwrap(), inc.clone());
        prop_assert_eq!(inc.version as usize, timeline.len());
        for (i, ev) in timeline.iter().enumerate() {
            prop_assert_eq!(ev.seq as usize, i + 1);
        }
        prop_assert_eq!(inc.resolved_at.is_some(), inc.status == IncidentStatus::Resolved);
    }
}

/// A symptom never attaches to a resolved incident: decided directly it is
/// refused; decided as a correlator command it reopens the incident first
/// (so the response driver pages again), and on an open incident it is just
/// the symptom.
#[test]
fn a_symptom_for_a_resolved_incident_reopens_it_first() {
    let symptom =
        || Command::Record(IncidentEvent::SymptomAttached { member: "alertmanager alert f00d".into(), evidence: String::new(), labels: BTreeMap::new() });
    let (inc, _, results) = run(vec![Command::Resolve { note: None }, symptom()]);
    assert_eq!(results, ["ok", "cannot attach a symptom to an incident that is resolved"]);
    let events = inc.decide_correlated(symptom()).unwrap();
    let kinds: Vec<&str> = events.iter().map(IncidentEvent::kind).collect();
    assert_eq!(kinds, ["reopened", "symptom_attached"]);
    let IncidentEvent::Reopened { reason } = &events[0] else { unreachable!("checked above") };
    assert!(reason.contains("alertmanager alert f00d"), "{reason}");
    let (open, _, _) = run(vec![Command::Acknowledge]);
    let kinds: Vec<&str> = open.decide_correlated(symptom()).unwrap().iter().map(IncidentEvent::kind).collect();
    assert_eq!(kinds, ["symptom_attached"]);
    // Other correlator events on a resolved incident are decided as before.
    let cleared = Command::Record(IncidentEvent::SymptomCleared { member: "x".into() });
    assert_eq!(inc.decide_correlated(cleared).unwrap().len(), 1);
}
