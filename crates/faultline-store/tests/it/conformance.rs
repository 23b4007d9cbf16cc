//! One conformance suite for every `Store` backend. Each case is a plain
//! async function over `&SqlStore`; `store_suite!` instantiates all of them
//! per backend, so SQLite and PostgreSQL are held to identical behaviour.

use std::sync::Arc;

use faultline_core::incident::{Actor, Command, Incident, IncidentStatus, Role, Severity};
use faultline_core::{IncidentId, Timestamp, UserId};
use faultline_store::commands::execute;
use faultline_store::{CorrelatorWrite, IncidentFilter, SavedCorrelator, SavedGroup, SavedMember, SqlStore, Store, StoreError, TokenRecord, TokenScope};

fn new_id() -> IncidentId {
    IncidentId::from_uuid(uuid::Uuid::now_v7())
}
fn t(s: i64) -> Timestamp {
    Timestamp::from_secs(1_800_000_000 + s)
}
fn alice() -> Actor {
    Actor::User(UserId::new("alice").unwrap())
}

async fn open(store: &SqlStore, title: &str, sev: Severity, at: Timestamp) -> IncidentId {
    let id = new_id();
    let opened = Incident::open(title, sev, Some("summary"), at, alice()).unwrap();
    store.create_incident(id, &opened).await.unwrap();
    id
}

pub async fn incident_round_trips_with_its_timeline(store: SqlStore) {
    let id = open(&store, "checkout errors", Severity::Sev2, t(0)).await;
    execute(&store, id, Command::Acknowledge, alice(), t(10)).await.unwrap();
    execute(&store, id, Command::AssignRole { role: Role::Scribe, user: UserId::new("bob").unwrap() }, alice(), t(20)).await.unwrap();
    let (state, _) = execute(&store, id, Command::Resolve { note: Some("fixed".into()) }, alice(), t(30)).await.unwrap();
    assert_eq!(state.status, IncidentStatus::Resolved);

    let (loaded, timeline) = store.incident(id).await.unwrap().unwrap();
    assert_eq!(loaded, state, "folded timeline equals the state returned by append");
    let kinds: Vec<_> = timeline.iter().map(|e| e.event.kind()).collect();
    assert_eq!(kinds, ["opened", "acknowledged", "role_assigned", "resolved"]);
    assert_eq!(timeline[1].at, t(10));
    assert_eq!(timeline[1].actor, alice());
    assert_eq!(loaded.summary.as_deref(), Some("summary"));
}

pub async fn unknown_incident_is_none_and_commands_on_it_are_not_found(store: SqlStore) {
    let id = new_id();
    assert!(store.incident(id).await.unwrap().is_none());
    let err = execute(&store, id, Command::Acknowledge, alice(), t(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

pub async fn stale_version_is_a_conflict_and_writes_nothing(store: SqlStore) {
    let id = open(&store, "stale", Severity::Sev3, t(0)).await;
    let (inc, _) = store.incident(id).await.unwrap().unwrap();
    let ack = inc.next_event(Command::Acknowledge, t(1), alice()).unwrap();
    let note = inc.next_event(Command::AddNote { text: "hello".into() }, t(1), alice()).unwrap();
    store.append(id, inc.version, &[ack]).await.unwrap();
    // Same expected version again: the other writer already moved it on.
    let err = store.append(id, inc.version, &[note]).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { expected: 1, found: 2, .. }), "{err}");
    let (_, timeline) = store.incident(id).await.unwrap().unwrap();
    assert_eq!(timeline.len(), 2, "the losing append wrote nothing");
}

pub async fn invalid_events_are_rejected_atomically(store: SqlStore) {
    let id = open(&store, "atomic", Severity::Sev3, t(0)).await;
    let (inc, _) = store.incident(id).await.unwrap().unwrap();
    let ack = inc.next_event(Command::Acknowledge, t(1), alice()).unwrap();
    let mut second_ack = ack.clone();
    second_ack.seq = 3;
    let err = store.append(id, inc.version, &[ack, second_ack]).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    let (after, timeline) = store.incident(id).await.unwrap().unwrap();
    assert_eq!((after.version, timeline.len(), after.status), (1, 1, IncidentStatus::Triggered));
}

/// `incidents_with_timelines` (one query for the events of many incidents,
/// what response metrics read) returns exactly what reading each incident
/// with `incident` returns: same states, same timelines, in the order asked,
/// unknown ids left out, a repeated id once, across more ids than one query binds.
pub async fn batched_timelines_equal_the_incidents_read_one_by_one(store: SqlStore) {
    let a = open(&store, "checkout errors", Severity::Sev1, t(0)).await;
    let b = open(&store, "search slow", Severity::Sev2, t(5)).await;
    let c = open(&store, "login flaky", Severity::Sev3, t(9)).await;
    execute(&store, a, Command::Acknowledge, alice(), t(60)).await.unwrap();
    execute(&store, a, Command::Mitigate { note: None }, alice(), t(120)).await.unwrap();
    execute(&store, a, Command::Resolve { note: Some("rolled back".into()) }, alice(), t(300)).await.unwrap();
    execute(&store, b, Command::AddNote { text: "looking".into() }, alice(), t(30)).await.unwrap();
    execute(&store, b, Command::Acknowledge, alice(), t(90)).await.unwrap();
    let unknown = new_id();
    let ids = [c, unknown, a, b, a];
    let batched = store.incidents_with_timelines(&ids).await.unwrap();
    let mut one_by_one = Vec::new();
    for id in [c, a, b] {
        one_by_one.push(store.incident(id).await.unwrap().unwrap());
    }
    assert_eq!(batched, one_by_one);
    assert_eq!(batched.iter().map(|(i, tl)| (i.id, tl.len())).collect::<Vec<_>>(), [(c, 1), (a, 4), (b, 3)]);
    // More ids than one query binds: the real ones at both ends still come back.
    let mut many: Vec<IncidentId> = vec![b];
    many.extend((0..faultline_store::MAX_BATCH_IDS).map(|_| new_id()));
    many.push(a);
    let batched = store.incidents_with_timelines(&many).await.unwrap();
    assert_eq!(batched.iter().map(|(i, _)| i.id).collect::<Vec<_>>(), [b, a]);
    assert!(store.incidents_with_timelines(&[]).await.unwrap().is_empty());
}

/// INV-INC-2: two writers appending to one incident concurrently never lose
/// an event. Many tasks add notes at once; every note lands exactly once and
/// the sequence has no gaps.
pub async fn concurrent_writers_never_lose_an_event(store: SqlStore) {
    let id = open(&store, "busy", Severity::Sev1, t(0)).await;
    let store = Arc::new(store);
    let writers = 8;
    let per_writer = 20;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_writer {
                let text = format!("writer {w} note {i}");
                execute(&*store, id, Command::AddNote { text }, alice(), t(1)).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let (inc, timeline) = store.incident(id).await.unwrap().unwrap();
    assert_eq!(timeline.len(), 1 + writers * per_writer);
    assert_eq!(inc.version as usize, timeline.len());
    for (i, ev) in timeline.iter().enumerate() {
        assert_eq!(ev.seq as usize, i + 1, "no gaps, no duplicates");
    }
    for w in 0..writers {
        for i in 0..per_writer {
            let text = format!("writer {w} note {i}");
            let n = timeline.iter().filter(|e| matches!(&e.event, faultline_core::IncidentEvent::NoteAdded { text: t } if *t == text)).count();
            assert_eq!(n, 1, "{text} recorded exactly once");
        }
    }
}

/// Two racing acknowledgements: exactly one wins, the other gets the state
/// machine's answer after re-reading, never a duplicate event.
pub async fn racing_acknowledgements_record_one(store: SqlStore) {
    let id = open(&store, "race", Severity::Sev2, t(0)).await;
    let store = Arc::new(store);
    let a = {
        let s = store.clone();
        tokio::spawn(async move { execute(&*s, id, Command::Acknowledge, alice(), t(1)).await })
    };
    let b = {
        let s = store.clone();
        tokio::spawn(async move { execute(&*s, id, Command::Acknowledge, alice(), t(1)).await })
    };
    let results = [a.await.unwrap(), b.await.unwrap()];
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    let err = results.into_iter().find_map(Result::err).unwrap();
    assert_eq!(err.to_string(), "rejected by the incident state machine: incident is already acknowledged");
    let (_, timeline) = store.incident(id).await.unwrap().unwrap();
    assert_eq!(timeline.len(), 2);
}

pub async fn list_filters_and_orders_newest_first(store: SqlStore) {
    let a = open(&store, "first", Severity::Sev3, t(0)).await;
    let b = open(&store, "second", Severity::Sev1, t(5)).await;
    let c = open(&store, "third", Severity::Sev1, t(9)).await;
    execute(&store, c, Command::Resolve { note: None }, alice(), t(10)).await.unwrap();

    let all = store.list_incidents(&IncidentFilter::default()).await.unwrap();
    let ids: Vec<_> = all.iter().map(|i| i.id).collect();
    assert_eq!(ids, [c, b, a]);
    let open_sev1 = store.list_incidents(&IncidentFilter { severity: Some(Severity::Sev1), open_only: true, ..Default::default() }).await.unwrap();
    assert_eq!(open_sev1.iter().map(|i| i.id).collect::<Vec<_>>(), [b]);
    let resolved = store.list_incidents(&IncidentFilter { status: Some(IncidentStatus::Resolved), ..Default::default() }).await.unwrap();
    assert_eq!(resolved.iter().map(|i| i.id).collect::<Vec<_>>(), [c]);
    let limited = store.list_incidents(&IncidentFilter { limit: Some(1), ..Default::default() }).await.unwrap();
    assert_eq!(limited.len(), 1);
    // The opened-at window applies before the limit: [t(5), t(9)) with
    // limit 1 is b, not the newest incident c cut away afterwards.
    let window =
        store.list_incidents(&IncidentFilter { opened_from: Some(t(5)), opened_before: Some(t(9)), limit: Some(1), ..Default::default() }).await.unwrap();
    assert_eq!(window.iter().map(|i| i.id).collect::<Vec<_>>(), [b]);
    let from_a = store.list_incidents(&IncidentFilter { opened_from: Some(t(0)), opened_before: Some(t(5)), ..Default::default() }).await.unwrap();
    assert_eq!(from_a.iter().map(|i| i.id).collect::<Vec<_>>(), [a], "from is inclusive, before is exclusive");
}

pub async fn duplicate_incident_id_is_rejected(store: SqlStore) {
    let id = open(&store, "dup", Severity::Sev3, t(0)).await;
    let opened = Incident::open("dup again", Severity::Sev3, None, t(1), alice()).unwrap();
    let err = store.create_incident(id, &opened).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err}");
    let (inc, _) = store.incident(id).await.unwrap().unwrap();
    assert_eq!(inc.title, "dup", "the original is untouched");
}

pub async fn tokens_are_stored_by_hash_and_revocable(store: SqlStore) {
    let rec = TokenRecord {
        id: "tok1".into(),
        name: "ci".into(),
        scope: TokenScope::Admin,
        token_hash: "ab".repeat(32),
        created_at: t(0),
        revoked_at: None,
        user: Some(faultline_core::UserId::new("alice").unwrap()),
    };
    store.insert_token(&rec).await.unwrap();
    assert_eq!(store.token_by_hash(&rec.token_hash).await.unwrap(), Some(rec.clone()));
    assert_eq!(store.token_by_hash("nope").await.unwrap(), None);
    let dup = TokenRecord { id: "tok2".into(), token_hash: "cd".repeat(32), ..rec.clone() };
    assert!(matches!(store.insert_token(&dup).await.unwrap_err(), StoreError::AlreadyExists(_)));
    assert!(store.revoke_token("ci", t(5)).await.unwrap());
    assert!(!store.revoke_token("ci", t(6)).await.unwrap(), "already revoked");
    assert_eq!(store.token_by_hash(&rec.token_hash).await.unwrap().unwrap().revoked_at, Some(t(5)));
    assert_eq!(store.list_tokens().await.unwrap().len(), 1);
}

pub async fn engine_state_round_trips_and_replaces(store: SqlStore) {
    assert_eq!(store.load_state("correlator").await.unwrap(), None);
    store.save_state("correlator", r#"{"v":1}"#, t(1)).await.unwrap();
    store.save_state("correlator", r#"{"v":2}"#, t(2)).await.unwrap();
    assert_eq!(store.load_state("correlator").await.unwrap().as_deref(), Some(r#"{"v":2}"#));
    assert_eq!(store.load_state("other").await.unwrap(), None);
}

/// `commit_turn` writes new incidents, events for existing ones and the
/// correlator rows together, or nothing: a refusing `Decide` leaves neither
/// the new incident nor the rows behind.
pub async fn a_turn_commits_all_or_nothing(store: SqlStore) {
    let existing = open(&store, "existing", Severity::Sev3, t(0)).await;
    let note = |text: &'static str| -> faultline_store::Decide {
        Box::new(move |inc: &Incident| inc.next_event(Command::AddNote { text: text.into() }, t(5), alice()).map(|e| vec![e]))
    };
    let fresh = new_id();
    let opened = Incident::open("opened in the turn", Severity::Sev2, None, t(4), alice()).unwrap();
    let first = CorrelatorWrite { next_group_id: 2, groups: vec![group(1, Some(fresh), "g1")], members: vec![member(1, "a", "a1")], ..Default::default() };
    let turn = faultline_store::Turn {
        create: vec![(fresh, opened.clone())],
        update: vec![(existing, note("first")), (fresh, note("on the new one"))],
        correlator: Some(first.clone()),
        retire_state: None,
        at: t(5),
    };
    let out = store.commit_turn(turn).await.unwrap();
    assert_eq!(out.len(), 3);
    assert_eq!(store.incident(existing).await.unwrap().unwrap().1.len(), 2);
    assert_eq!(store.incident(fresh).await.unwrap().unwrap().1.len(), 2, "created, then updated in the same turn");
    let saved = SavedCorrelator { next_group_id: 2, groups: first.groups.clone(), members: first.members.clone() };
    assert_eq!(store.load_correlator().await.unwrap(), Some(saved.clone()));

    // A turn whose second update is refused by the state machine writes nothing.
    let other = new_id();
    let refuse: faultline_store::Decide = Box::new(|inc: &Incident| inc.next_event(Command::Reopen { reason: "x".into() }, t(6), alice()).map(|e| vec![e]));
    let second = CorrelatorWrite {
        next_group_id: 3,
        groups: vec![group(2, Some(other), "g2")],
        members: vec![member(1, "a", "a1 refreshed"), member(2, "b", "b1")],
        removed_groups: vec![1],
        ..Default::default()
    };
    let turn = faultline_store::Turn {
        create: vec![(other, Incident::open("never", Severity::Sev3, None, t(6), alice()).unwrap())],
        update: vec![(existing, note("second")), (existing, refuse)],
        correlator: Some(second),
        retire_state: None,
        at: t(6),
    };
    assert!(matches!(store.commit_turn(turn).await.unwrap_err(), StoreError::Invalid(_)));
    assert!(store.incident(other).await.unwrap().is_none(), "the incident of a failed turn was not created");
    assert_eq!(store.incident(existing).await.unwrap().unwrap().1.len(), 2, "nor its events written");
    assert_eq!(store.load_correlator().await.unwrap(), Some(saved), "nor its correlator rows");
}

fn group(id: u64, incident: Option<IncidentId>, header: &str) -> SavedGroup {
    SavedGroup { group: id, incident, header_json: format!(r#"{{"h":"{header}"}}"#) }
}
fn member(group: u64, key: &str, body: &str) -> SavedMember {
    SavedMember { group, key: format!(r#"{{"k":"{key}"}}"#), member_json: format!(r#"{{"m":"{body}"}}"#) }
}

/// A turn with no incident work that writes only correlator rows.
async fn save_rows(store: &SqlStore, write: CorrelatorWrite, retire_state: Option<&str>, at: Timestamp) {
    let turn = faultline_store::Turn { create: vec![], update: vec![], correlator: Some(write), retire_state: retire_state.map(str::to_owned), at };
    store.commit_turn(turn).await.unwrap();
}

/// The correlator saved incrementally: each turn's rows are written over
/// the saved ones, removed members and groups (members and all) go, a
/// replacing save leaves only itself, and retiring a whole-state row
/// deletes it in the same turn. Reads come back ordered by group, then key.
pub async fn correlator_rows_are_saved_incrementally(store: SqlStore) {
    assert_eq!(store.load_correlator().await.unwrap(), None, "never saved");
    let (i1, i2) = (new_id(), new_id());
    save_rows(
        &store,
        CorrelatorWrite {
            next_group_id: 3,
            groups: vec![group(2, None, "g2"), group(1, Some(i1), "g1")],
            members: vec![member(2, "c", "c1"), member(1, "b", "b1"), member(1, "a", "a1")],
            ..Default::default()
        },
        None,
        t(1),
    )
    .await;
    let saved = store.load_correlator().await.unwrap().unwrap();
    assert_eq!(saved.next_group_id, 3);
    assert_eq!(saved.groups, [group(1, Some(i1), "g1"), group(2, None, "g2")]);
    assert_eq!(saved.members, [member(1, "a", "a1"), member(1, "b", "b1"), member(2, "c", "c1")]);

    // A merge of 2 into 1: c moves, 2's header names 1's incident; a is
    // refreshed; b untouched; group 3 opens.
    save_rows(
        &store,
        CorrelatorWrite {
            next_group_id: 4,
            groups: vec![group(1, Some(i1), "g1 absorbed g2"), group(2, Some(i1), "g2 merged"), group(3, Some(i2), "g3")],
            members: vec![member(1, "a", "a2"), member(1, "c", "c1"), member(3, "d", "d1")],
            removed_members: vec![(2, member(2, "c", "").key)],
            ..Default::default()
        },
        None,
        t(2),
    )
    .await;
    let saved = store.load_correlator().await.unwrap().unwrap();
    assert_eq!(saved.next_group_id, 4);
    assert_eq!(saved.groups, [group(1, Some(i1), "g1 absorbed g2"), group(2, Some(i1), "g2 merged"), group(3, Some(i2), "g3")]);
    assert_eq!(saved.members, [member(1, "a", "a2"), member(1, "b", "b1"), member(1, "c", "c1"), member(3, "d", "d1")]);

    // Group 1 is forgotten, members and all.
    save_rows(&store, CorrelatorWrite { next_group_id: 4, removed_groups: vec![1], ..Default::default() }, None, t(3)).await;
    let saved = store.load_correlator().await.unwrap().unwrap();
    assert_eq!(saved.groups.iter().map(|g| g.group).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(saved.members, [member(3, "d", "d1")]);

    // A replacing save retiring an old whole-state row.
    store.save_state("correlator", r#"{"whole":true}"#, t(4)).await.unwrap();
    save_rows(
        &store,
        CorrelatorWrite { replace: true, next_group_id: 9, groups: vec![group(8, None, "g8")], members: vec![member(8, "e", "e1")], ..Default::default() },
        Some("correlator"),
        t(5),
    )
    .await;
    let saved = store.load_correlator().await.unwrap().unwrap();
    assert_eq!(saved, SavedCorrelator { next_group_id: 9, groups: vec![group(8, None, "g8")], members: vec![member(8, "e", "e1")] });
    assert_eq!(store.load_state("correlator").await.unwrap(), None, "retired with the replacing save");
}

/// `timeline_after` returns the events past a cursor, in order: the tail
/// `incident` would return.
pub async fn the_timeline_after_a_cursor_is_its_tail(store: SqlStore) {
    let id = open(&store, "tail", Severity::Sev2, t(0)).await;
    for i in 0..4 {
        execute(&store, id, Command::AddNote { text: format!("note {i}") }, alice(), t(i + 1)).await.unwrap();
    }
    let (_, timeline) = store.incident(id).await.unwrap().unwrap();
    assert_eq!(store.timeline_after(id, 0).await.unwrap(), timeline);
    assert_eq!(store.timeline_after(id, 3).await.unwrap(), timeline[3..]);
    assert!(store.timeline_after(id, 5).await.unwrap().is_empty());
    assert!(store.timeline_after(new_id(), 0).await.unwrap().is_empty(), "unknown incident");
}

/// Short numbers (#1, #2, …) are handed out in creation order, by the API's
/// creation and by a correlator turn alike, concurrently without a repeat,
/// and lead back to their incident.
pub async fn incidents_get_short_numbers_in_creation_order(store: SqlStore) {
    let first = open(&store, "first", Severity::Sev3, t(0)).await;
    let fresh = new_id();
    let opened = Incident::open("opened in a turn", Severity::Sev2, None, t(1), alice()).unwrap();
    let turn = faultline_store::Turn { create: vec![(fresh, opened)], update: vec![], correlator: None, retire_state: None, at: t(1) };
    store.commit_turn(turn).await.unwrap();
    let numbers = store.incident_numbers(&[first, fresh]).await.unwrap();
    assert_eq!((numbers[&first], numbers[&fresh]), (1, 2));
    assert_eq!(store.incident_by_number(2).await.unwrap(), Some(fresh));
    assert_eq!(store.incident_by_number(99).await.unwrap(), None);
    // Concurrent creations never share a number.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { open(&store, &format!("racing {i}"), Severity::Sev3, t(2)).await })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap());
    }
    let numbers = store.incident_numbers(&ids).await.unwrap();
    let distinct: std::collections::BTreeSet<u64> = numbers.values().copied().collect();
    assert_eq!(distinct, (3..=10).collect());
}

macro_rules! store_suite {
    ($backend:ident, $make:expr) => {
        mod $backend {
            use super::*;
            store_suite!(@cases $make;
                incident_round_trips_with_its_timeline,
                unknown_incident_is_none_and_commands_on_it_are_not_found,
                stale_version_is_a_conflict_and_writes_nothing,
                invalid_events_are_rejected_atomically,
                concurrent_writers_never_lose_an_event,
                racing_acknowledgements_record_one,
                list_filters_and_orders_newest_first,
                duplicate_incident_id_is_rejected,
                tokens_are_stored_by_hash_and_revocable,
                engine_state_round_trips_and_replaces,
                a_turn_commits_all_or_nothing,
                correlator_rows_are_saved_incrementally,
                the_timeline_after_a_cursor_is_its_tail,
                batched_timelines_equal_the_incidents_read_one_by_one,
                incidents_get_short_numbers_in_creation_order,
            );
        }
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(store) = $make.await else { return };
                super::$case(store).await;
            }
        )*
    };
}

/// A fresh file-backed SQLite store in a temporary directory (file, not
/// memory, so WAL and multi-connection behaviour are what production gets).
pub(crate) async fn sqlite() -> Option<SqlStore> {
    let dir = tempfile::tempdir().unwrap().keep();
    Some(SqlStore::open_sqlite(&dir).await.unwrap())
}

/// PostgreSQL store from `FAULTLINE_TEST_POSTGRES_URL`, each test in its own
/// schema so tests run in parallel without seeing each other's rows.
pub(crate) async fn postgres() -> Option<SqlStore> {
    let scoped = postgres_url().await?;
    Some(SqlStore::connect_postgres(&scoped).await.unwrap())
}

/// A connection URL for a new, empty schema of its own on the test
/// PostgreSQL (`None`, with a message, when `FAULTLINE_TEST_POSTGRES_URL` is unset).
pub(crate) async fn postgres_url() -> Option<String> {
    let Ok(url) = std::env::var("FAULTLINE_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but FAULTLINE_TEST_POSTGRES_URL is not set: the PostgreSQL conformance suite must run in CI"
        );
        eprintln!("skipped: FAULTLINE_TEST_POSTGRES_URL not set");
        return None;
    };
    let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
    // Create the schema with a plain connection (not a store: a store would
    // migrate the database's default schema, which other checkouts' tests —
    // possibly of a newer schema version — share), then point the store at it.
    let sep = if url.contains('?') { '&' } else { '?' };
    let scoped = format!("{url}{sep}options=-csearch_path%3D{schema}");
    create_schema(&url, &schema).await;
    Some(scoped)
}

async fn create_schema(url: &str, schema: &str) {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("PostgreSQL from FAULTLINE_TEST_POSTGRES_URL must be reachable");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut conn).await.unwrap();
}

store_suite!(on_sqlite, sqlite());
store_suite!(on_postgres, postgres());

#[tokio::test]
async fn sqlite_reopen_keeps_data_and_reapplies_no_migration() {
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
        let id = open(&store, "persisted", Severity::Sev2, t(0)).await;
        store.close().await;
        id
    };
    let store = SqlStore::open_sqlite(dir.path()).await.unwrap();
    let (inc, timeline) = store.incident(id).await.unwrap().unwrap();
    assert_eq!((inc.title.as_str(), timeline.len()), ("persisted", 1));
}

#[tokio::test]
async fn unwritable_data_dir_is_a_clear_error() {
    let err = SqlStore::open_sqlite(std::path::Path::new("/proc/faultline-nope")).await.unwrap_err();
    assert!(err.to_string().starts_with("cannot open the database: cannot create data dir /proc/faultline-nope"), "{err}");
}

#[tokio::test]
async fn postgres_that_does_not_answer_is_a_clear_error_without_the_password() {
    // Port 1 on loopback: nothing listens there.
    let err = SqlStore::connect_postgres("postgres://u:hunter2@127.0.0.1:1/db").await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("cannot connect to PostgreSQL at postgres://u:***@127.0.0.1:1/db"), "{msg}");
    assert!(!msg.contains("hunter2"));
}
