//! Virtual-time tests of escalation timelines (a script of inputs at minute
//! offsets -> the rendered effects), and a property test that a driver which
//! crashes between executing effects and persisting state, then replays from
//! its last persisted (serialized) state, sends exactly the same set of
//! notifications as one that never crashed.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::oncall::ScheduleConfig;

fn t0() -> Timestamp {
    Timestamp::parse_rfc3339("2026-06-01T08:00:00Z").unwrap()
}
fn at(min: i64) -> Timestamp {
    t0() + Duration::from_mins(min)
}
fn mins(t: Timestamp) -> i64 {
    (t - t0()).as_millis() / 60_000
}
fn incident() -> IncidentId {
    "01936a8e-6f5c-7d2a-9b1e-0c4d5e6f7a8b".parse().unwrap()
}

/// Schedule `primary` (UTC, daily at 09:00: alice until 2026-06-01 09:00, then
/// bob) and team `payments` = carol, dan.
fn directory() -> StaticDirectory {
    let sched: ScheduleConfig = serde_saphyr::from_str(
        "name: primary\ntime_zone: UTC\nlayers:\n  - {name: l, start: 2026-05-31T09:00:00, rotation: daily, participants: [alice, bob]}\n",
    )
    .unwrap();
    let mut d = StaticDirectory::default();
    d.schedules.insert("primary".into(), sched.build().unwrap());
    d.teams.insert(TeamId::new("payments").unwrap(), vec![UserId::new("carol").unwrap(), UserId::new("dan").unwrap()]);
    d
}

const P1: &str = "
name: payments
repeat: 1
levels:
  - {delay_minutes: 10, targets: [{schedule: primary}]}
  - {delay_minutes: 15, targets: [{team: payments}, {user: carol}]}
";

fn render(now: Timestamp, fx: &[Effect], out: &mut String) {
    let prefix = format!("{}/", incident());
    for e in fx {
        let line = match e {
            Effect::Notify(n) => format!(
                "+{} notify {} {} L{}R{} via {} [{}]",
                mins(now),
                n.recipient,
                n.kind.as_str(),
                n.level,
                n.round,
                n.target,
                n.idempotency_key.strip_prefix(&prefix).unwrap_or(&n.idempotency_key)
            ),
            Effect::WakeAt { at } => format!("+{} wake +{}", mins(now), mins(*at)),
            Effect::CancelWake => format!("+{} wake none", mins(now)),
            Effect::Record { at, text } => format!("+{} record {text}", mins(*at)),
        };
        out.push_str(&line);
        out.push('\n');
    }
}

/// Runs `script` (one `MINUTE action [arg]` per line: trigger, tick, ack USER,
/// resolve, reopen, silence UNTIL_MINUTE) against the policy in `yaml` and
/// compares every effect, rendered one per line, with `expect`.
#[track_caller]
fn check(yaml: &str, script: &str, expect: &str) {
    let policy: EscalationPolicy = serde_saphyr::from_str(yaml).unwrap();
    policy.validate().unwrap();
    let dir = directory();
    let mut esc = Escalation::new(incident());
    let mut got = String::new();
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let now = at(parts[0].parse().unwrap());
        let fx = match parts[1] {
            "tick" => esc.tick(&policy, &dir, now),
            "trigger" => esc.observe(&policy, &dir, EscalationInput::Triggered, now),
            "ack" => esc.observe(&policy, &dir, EscalationInput::Acknowledged { by: parts.get(2).map(|u| UserId::new(*u).unwrap()) }, now),
            "resolve" => esc.observe(&policy, &dir, EscalationInput::Resolved, now),
            "reopen" => esc.observe(&policy, &dir, EscalationInput::Reopened, now),
            "silence" => esc.observe(&policy, &dir, EscalationInput::Silenced { until: at(parts[2].parse().unwrap()) }, now),
            other => panic!("unknown script action {other}"),
        };
        render(now, &fx, &mut got);
        // The state always survives a serde round trip (the engine persists it).
        let json = serde_json::to_string(&esc).unwrap();
        assert_eq!(serde_json::from_str::<Escalation>(&json).unwrap(), esc);
    }
    let want: String = expect.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| format!("{l}\n")).collect();
    assert_eq!(got, want, "\n--- got ---\n{got}--- want ---\n{want}");
}

#[test]
fn escalates_through_every_level_and_round_then_exhausts() {
    check(
        P1,
        "0 trigger\n10 tick\n25 tick\n35 tick\n50 tick",
        "
        +0 record escalation policy payments started
        +0 notify alice trigger L1R1 via schedule:primary [e0/c0/s0/alice/trigger]
        +0 record level 1 round 1: paged alice (via schedule:primary)
        +0 wake +10
        +10 notify carol trigger L2R1 via team:payments [e0/c0/s1/carol/trigger]
        +10 notify dan trigger L2R1 via team:payments [e0/c0/s1/dan/trigger]
        +10 record level 2 round 1: paged carol (via team:payments), dan (via team:payments)
        +10 wake +25
        +25 notify alice trigger L1R2 via schedule:primary [e0/c0/s2/alice/trigger]
        +25 record level 1 round 2: paged alice (via schedule:primary)
        +25 wake +35
        +35 notify carol trigger L2R2 via team:payments [e0/c0/s3/carol/trigger]
        +35 notify dan trigger L2R2 via team:payments [e0/c0/s3/dan/trigger]
        +35 record level 2 round 2: paged carol (via team:payments), dan (via team:payments)
        +35 wake +50
        +50 notify carol trigger L0R0 via team:payments [e0/c0/exhausted/carol/trigger]
        +50 notify dan trigger L0R0 via team:payments [e0/c0/exhausted/dan/trigger]
        +50 record escalation policy payments exhausted: nobody acknowledged after 2 round(s); the policy's team notified: carol (via team:payments), dan (via team:payments)
        +50 wake none
        ",
    );
}

#[test]
fn early_ticks_do_nothing_and_ack_stops_escalation() {
    check(
        P1,
        "0 trigger\n9 tick\n9 ack carol\n10 tick\n60 tick",
        "
        +0 record escalation policy payments started
        +0 notify alice trigger L1R1 via schedule:primary [e0/c0/s0/alice/trigger]
        +0 record level 1 round 1: paged alice (via schedule:primary)
        +0 wake +10
        +9 wake +10
        +9 record acknowledged by carol: escalation stopped
        +9 wake none
        +10 wake none
        +60 wake none
        ",
    );
}

#[test]
fn forgotten_acknowledgement_expires_and_escalation_restarts() {
    check(
        "
name: payments
ack_timeout_minutes: 30
levels:
  - {delay_minutes: 10, targets: [{schedule: primary}]}
  - {delay_minutes: 15, targets: [{team: payments}]}
",
        "0 trigger\n5 ack alice\n35 tick\n40 ack bob\n50 resolve",
        "
        +0 record escalation policy payments started
        +0 notify alice trigger L1R1 via schedule:primary [e0/c0/s0/alice/trigger]
        +0 record level 1 round 1: paged alice (via schedule:primary)
        +0 wake +10
        +5 record acknowledged by alice: escalation stopped; the acknowledgement expires at 2026-06-01T08:35:00.000Z
        +5 wake +35
        +35 record acknowledgement by alice expired without resolution: escalation restarts at level 1
        +35 notify alice trigger L1R1 via schedule:primary [e0/c1/s0/alice/trigger]
        +35 record level 1 round 1: paged alice (via schedule:primary)
        +35 wake +45
        +40 record acknowledged by bob: escalation stopped; the acknowledgement expires at 2026-06-01T09:10:00.000Z
        +40 wake +70
        +50 notify alice resolve L1R1 via schedule:primary [e0/alice/resolve]
        +50 record resolved: resolve sent to everyone paged (alice)
        +50 wake none
        ",
    );
}

#[test]
fn schedule_is_resolved_when_the_level_fires_and_everyone_paged_gets_the_resolve() {
    check(
        P1,
        "55 trigger\n65 tick\n80 tick\n85 resolve\n86 resolve",
        "
        +55 record escalation policy payments started
        +55 notify alice trigger L1R1 via schedule:primary [e0/c0/s0/alice/trigger]
        +55 record level 1 round 1: paged alice (via schedule:primary)
        +55 wake +65
        +65 notify carol trigger L2R1 via team:payments [e0/c0/s1/carol/trigger]
        +65 notify dan trigger L2R1 via team:payments [e0/c0/s1/dan/trigger]
        +65 record level 2 round 1: paged carol (via team:payments), dan (via team:payments)
        +65 wake +80
        +80 notify bob trigger L1R2 via schedule:primary [e0/c0/s2/bob/trigger]
        +80 record level 1 round 2: paged bob (via schedule:primary)
        +80 wake +90
        +85 notify alice resolve L1R1 via schedule:primary [e0/alice/resolve]
        +85 notify bob resolve L1R2 via schedule:primary [e0/bob/resolve]
        +85 notify carol resolve L2R1 via team:payments [e0/carol/resolve]
        +85 notify dan resolve L2R1 via team:payments [e0/dan/resolve]
        +85 record resolved: resolve sent to everyone paged (alice, bob, carol, dan)
        +85 wake none
        +86 wake none
        ",
    );
}

#[test]
fn silence_defers_pages_but_never_the_resolve() {
    check(
        P1,
        "0 trigger\n3 silence 60\n10 tick\n20 resolve",
        "
        +0 record escalation policy payments started
        +0 notify alice trigger L1R1 via schedule:primary [e0/c0/s0/alice/trigger]
        +0 record level 1 round 1: paged alice (via schedule:primary)
        +0 wake +10
        +3 record silenced: pages deferred until 2026-06-01T09:00:00.000Z
        +3 wake +60
        +10 wake +60
        +20 notify alice resolve L1R1 via schedule:primary [e0/alice/resolve]
        +20 record resolved: resolve sent to everyone paged (alice)
        +20 wake none
        ",
    );
}

#[test]
fn deferred_page_fires_when_the_silence_ends_and_later_levels_keep_their_delay() {
    check(
        P1,
        "0 trigger\n3 silence 60\n60 tick\n75 tick",
        "
        +0 record escalation policy payments started
        +0 notify alice trigger L1R1 via schedule:primary [e0/c0/s0/alice/trigger]
        +0 record level 1 round 1: paged alice (via schedule:primary)
        +0 wake +10
        +3 record silenced: pages deferred until 2026-06-01T09:00:00.000Z
        +3 wake +60
        +60 notify carol trigger L2R1 via team:payments [e0/c0/s1/carol/trigger]
        +60 notify dan trigger L2R1 via team:payments [e0/c0/s1/dan/trigger]
        +60 record level 2 round 1: paged carol (via team:payments), dan (via team:payments)
        +60 wake +75
        +75 notify bob trigger L1R2 via schedule:primary [e0/c0/s2/bob/trigger]
        +75 record level 1 round 2: paged bob (via schedule:primary)
        +75 wake +85
        ",
    );
}

#[test]
fn reopened_incident_pages_again_under_a_new_epoch() {
    check(
        "name: p\nlevels:\n  - {delay_minutes: 10, targets: [{user: alice}]}\n",
        "0 trigger\n5 resolve\n7 reopen",
        "
        +0 record escalation policy p started
        +0 notify alice trigger L1R1 via user:alice [e0/c0/s0/alice/trigger]
        +0 record level 1 round 1: paged alice (via user:alice)
        +0 wake +10
        +5 notify alice resolve L1R1 via user:alice [e0/alice/resolve]
        +5 record resolved: resolve sent to everyone paged (alice)
        +5 wake none
        +7 record reopened: escalation policy p starts again
        +7 notify alice trigger L1R1 via user:alice [e1/c0/s0/alice/trigger]
        +7 record level 1 round 1: paged alice (via user:alice)
        +7 wake +17
        ",
    );
}

/// An exhausted policy tells its fallback once (and the resolve reaches
/// them); without a fallback or a team of its name it says nobody is told.
#[test]
fn an_exhausted_policy_notifies_its_fallback_and_says_so() {
    check(
        "name: checkout\nlevels:\n  - {delay_minutes: 5, targets: [{user: alice}]}\nfallback: [{user: erin}, {team: payments}]\n",
        "0 trigger\n5 tick\n9 tick\n20 resolve",
        "
        +0 record escalation policy checkout started
        +0 notify alice trigger L1R1 via user:alice [e0/c0/s0/alice/trigger]
        +0 record level 1 round 1: paged alice (via user:alice)
        +0 wake +5
        +5 notify erin trigger L0R0 via user:erin [e0/c0/exhausted/erin/trigger]
        +5 notify carol trigger L0R0 via team:payments [e0/c0/exhausted/carol/trigger]
        +5 notify dan trigger L0R0 via team:payments [e0/c0/exhausted/dan/trigger]
        +5 record escalation policy checkout exhausted: nobody acknowledged after 1 round(s); fallback notified: erin (via user:erin), carol (via team:payments), dan (via team:payments)
        +5 wake none
        +9 wake none
        +20 notify alice resolve L1R1 via user:alice [e0/alice/resolve]
        +20 notify carol resolve L0R0 via team:payments [e0/carol/resolve]
        +20 notify dan resolve L0R0 via team:payments [e0/dan/resolve]
        +20 notify erin resolve L0R0 via user:erin [e0/erin/resolve]
        +20 record resolved: resolve sent to everyone paged (alice, carol, dan, erin)
        +20 wake none
        ",
    );
    check(
        "name: checkout\nlevels:\n  - {delay_minutes: 5, targets: [{user: alice}]}\n",
        "0 trigger\n5 tick",
        "
        +0 record escalation policy checkout started
        +0 notify alice trigger L1R1 via user:alice [e0/c0/s0/alice/trigger]
        +0 record level 1 round 1: paged alice (via user:alice)
        +0 wake +5
        +5 record escalation policy checkout exhausted: nobody acknowledged after 1 round(s); no fallback and no team named checkout: nobody else notified
        +5 wake none
        ",
    );
}

#[test]
fn a_late_tick_catches_up_every_overdue_level_in_order() {
    check(
        P1,
        "0 trigger\n60 tick",
        "
        +0 record escalation policy payments started
        +0 notify alice trigger L1R1 via schedule:primary [e0/c0/s0/alice/trigger]
        +0 record level 1 round 1: paged alice (via schedule:primary)
        +0 wake +10
        +60 notify carol trigger L2R1 via team:payments [e0/c0/s1/carol/trigger]
        +60 notify dan trigger L2R1 via team:payments [e0/c0/s1/dan/trigger]
        +10 record level 2 round 1: paged carol (via team:payments), dan (via team:payments)
        +60 notify alice trigger L1R2 via schedule:primary [e0/c0/s2/alice/trigger]
        +25 record level 1 round 2: paged alice (via schedule:primary)
        +60 notify carol trigger L2R2 via team:payments [e0/c0/s3/carol/trigger]
        +60 notify dan trigger L2R2 via team:payments [e0/c0/s3/dan/trigger]
        +35 record level 2 round 2: paged carol (via team:payments), dan (via team:payments)
        +60 notify carol trigger L0R0 via team:payments [e0/c0/exhausted/carol/trigger]
        +60 notify dan trigger L0R0 via team:payments [e0/c0/exhausted/dan/trigger]
        +50 record escalation policy payments exhausted: nobody acknowledged after 2 round(s); the policy's team notified: carol (via team:payments), dan (via team:payments)
        +60 wake none
        ",
    );
}

#[test]
fn a_target_that_resolves_to_nobody_is_recorded() {
    check(
        "name: p\nlevels:\n  - {delay_minutes: 5, targets: [{schedule: missing}, {user: zoe}]}\n",
        "0 trigger",
        "
        +0 record escalation policy p started
        +0 record level 1 round 1: schedule:missing resolves to nobody
        +0 notify zoe trigger L1R1 via user:zoe [e0/c0/s0/zoe/trigger]
        +0 record level 1 round 1: paged zoe (via user:zoe)
        +0 wake +5
        ",
    );
}

#[test]
fn unknown_schedules_and_teams_are_reported() {
    let p: EscalationPolicy = serde_saphyr::from_str(
        "name: p\nlevels:\n  - {delay_minutes: 5, targets: [{schedule: primary}, {schedule: nope}, {team: ghosts}, {user: zoe}]}\n  - {delay_minutes: 5, targets: [{schedule: nope}]}\n",
    )
    .unwrap();
    let dir = directory();
    let unknown = p.unknown_targets(&|s| dir.schedules.contains_key(s), &|t| dir.teams.contains_key(t));
    assert_eq!(unknown.iter().map(ToString::to_string).collect::<Vec<_>>(), ["schedule:nope", "team:ghosts"]);
}

#[test]
fn invalid_policies_are_typed_errors() {
    let err = |y: &str| serde_saphyr::from_str::<EscalationPolicy>(y).unwrap().validate().unwrap_err().to_string();
    assert_eq!(err("name: p\nlevels: []\n"), "policy \"p\" has no levels");
    assert_eq!(err("name: p\nlevels:\n  - {delay_minutes: 0, targets: [{user: a}]}\n"), "policy \"p\" level 1: delay_minutes must be at least 1");
    assert_eq!(err("name: p\nlevels:\n  - {delay_minutes: 1, targets: []}\n"), "policy \"p\" level 1: has no targets");
    assert_eq!(err("name: p\nrepeat: 10\nlevels:\n  - {delay_minutes: 1, targets: [{user: a}]}\n"), "policy \"p\": repeat must be at most 9");
}

// ---------------------------------------------------------------------------
// Crash and replay.

#[derive(Debug, Clone)]
enum Ev {
    Trigger,
    Ack(usize),
    Resolve,
    Reopen,
    Silence(i64),
}

fn policy_strategy() -> impl Strategy<Value = EscalationPolicy> {
    let target = prop_oneof![
        Just(Target::Schedule("primary".into())),
        Just(Target::Team(TeamId::new("payments").unwrap())),
        prop::sample::select(vec!["alice", "erin", "frank"]).prop_map(|u| Target::User(UserId::new(u).unwrap())),
    ];
    let level = (prop::collection::vec(target, 1..3), 1u32..30).prop_map(|(targets, delay_minutes)| EscalationLevel { targets, delay_minutes });
    // Half the policies have a fallback, so exhaustion's pages replay too.
    (prop::collection::vec(level, 1..4), 0u32..3, prop::option::of(5u32..60), any::<bool>()).prop_map(|(levels, repeat, ack_timeout_minutes, fallback)| {
        EscalationPolicy {
            fallback: if fallback { vec![Target::Team(TeamId::new("payments").unwrap()), Target::User(UserId::new("erin").unwrap())] } else { Vec::new() },
            name: "p".into(),
            levels,
            repeat,
            ack_timeout_minutes,
        }
    })
}

fn events_strategy() -> impl Strategy<Value = Vec<(i64, Ev)>> {
    let ev = prop_oneof![
        1 => Just(Ev::Trigger),
        3 => (0usize..3).prop_map(Ev::Ack),
        2 => Just(Ev::Resolve),
        1 => Just(Ev::Reopen),
        1 => (1i64..90).prop_map(Ev::Silence),
    ];
    prop::collection::vec((1i64..60, ev), 0..12).prop_map(|evs| {
        let mut t = 0;
        let mut out = vec![(0, Ev::Trigger)];
        for (gap, e) in evs {
            t += gap;
            out.push((t, e));
        }
        out
    })
}

/// A driver: processes inputs at their times and ticks at every wake-up in
/// between. After each batch it "executes" the effects (outbox keyed by
/// idempotency key) and then persists the state as JSON. When `crash(i)` is
/// true for batch `i`, it dies after executing and before persisting, restarts
/// from the last persisted JSON, and processes the same batch again (a tick
/// batch possibly minutes later).
fn drive(policy: &EscalationPolicy, events: &[(i64, Ev)], crash: &dyn Fn(usize) -> bool) -> Result<BTreeMap<String, Notification>, TestCaseError> {
    let dir = directory();
    let users = ["alice", "bob", "carol"];
    let mut persisted = serde_json::to_string(&Escalation::new(incident())).unwrap();
    let mut outbox: BTreeMap<String, Notification> = BTreeMap::new();
    let mut batch = 0usize;
    let end = events.last().map_or(0, |e| e.0) + 24 * 60;
    let mut queue: Vec<(i64, Option<Ev>)> = events.iter().map(|(t, e)| (*t, Some(e.clone()))).collect();
    queue.push((end, None));
    let mut qi = 0;
    let mut guard = 0;
    while qi < queue.len() {
        guard += 1;
        prop_assert!(guard < 10_000, "driver loop did not terminate");
        let state: Escalation = serde_json::from_str(&persisted).unwrap();
        // Next thing to happen: a wake-up before the next input, or the input.
        let (now, input) = match state.next_wake() {
            Some(w) if mins(w) < queue[qi].0 => (w, None),
            _ => {
                let (t, e) = queue[qi].clone();
                qi += 1;
                (at(t), e)
            }
        };
        let attempts = if crash(batch) { 2 } else { 1 };
        for attempt in 0..attempts {
            let mut esc: Escalation = serde_json::from_str(&persisted).unwrap();
            // A restarted driver comes back late: a tick is replayed up to 7
            // minutes later (but before the next input), and must page the
            // same people under the same keys.
            let replay_at = if attempt == 0 {
                now
            } else {
                let late = now + Duration::from_mins(i64::try_from(batch % 8).unwrap_or(0));
                late.min(at(queue.get(qi).map_or(end, |q| q.0)) - Duration::from_millis(1)).max(now)
            };
            let fx = match &input {
                None => esc.tick(policy, &dir, replay_at),
                Some(e) => {
                    let input = match e {
                        Ev::Trigger => EscalationInput::Triggered,
                        Ev::Ack(u) => EscalationInput::Acknowledged { by: Some(UserId::new(users[*u]).unwrap()) },
                        Ev::Resolve => EscalationInput::Resolved,
                        Ev::Reopen => EscalationInput::Reopened,
                        Ev::Silence(m) => EscalationInput::Silenced { until: now + Duration::from_mins(*m) },
                    };
                    esc.observe(policy, &dir, input, now)
                }
            };
            for e in fx {
                if let Effect::Notify(n) = e {
                    if let Some(prev) = outbox.get(&n.idempotency_key) {
                        prop_assert_eq!(prev, &n, "same key, different content");
                    }
                    outbox.insert(n.idempotency_key.clone(), n);
                }
            }
            let crashed_before_persist = attempt + 1 < attempts;
            if !crashed_before_persist {
                persisted = serde_json::to_string(&esc).unwrap();
            }
        }
        batch += 1;
    }
    Ok(outbox)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, rng_seed: proptest::test_runner::RngSeed::Fixed(0x5eed_e5ca), .. ProptestConfig::default() })]

    /// Crashing between "sent" and "persisted" and replaying never changes
    /// which notifications exist; and everyone paged in an epoch that ended
    /// resolved got exactly one resolve.
    #[test]
    fn crash_and_replay_sends_the_same_notifications(policy in policy_strategy(), events in events_strategy(), crash_mask in any::<u64>()) {
        let clean = drive(&policy, &events, &|_| false)?;
        let crashy = drive(&policy, &events, &|i| crash_mask >> (i % 64) & 1 == 1)?;
        prop_assert_eq!(clean.keys().collect::<Vec<_>>(), crashy.keys().collect::<Vec<_>>());
        // If we paged, we sent the resolve: for every epoch that saw a resolve
        // after its pages, each paged user has a resolve key.
        let resolved_epochs = {
            let mut epoch = 0u32;
            let mut out = BTreeSet::new();
            let mut open = false;
            for (_, e) in &events {
                match e {
                    Ev::Trigger => open = true,
                    Ev::Resolve if open => { out.insert(epoch); open = false; }
                    Ev::Reopen if !open && out.contains(&epoch) => { epoch += 1; open = true; }
                    _ => {}
                }
            }
            out
        };
        for n in clean.values().filter(|n| n.kind == NotifyKind::Trigger) {
            let epoch: u32 = n.idempotency_key.split('/').nth(1).and_then(|e| e.strip_prefix('e')).unwrap().parse().unwrap();
            if resolved_epochs.contains(&epoch) {
                let key = format!("{}/e{}/{}/resolve", incident(), epoch, n.recipient);
                prop_assert!(clean.contains_key(&key), "paged {} in epoch {} but no resolve", n.recipient, epoch);
            }
        }
        // No user gets two resolves in one epoch, and no resolve without a page.
        for n in clean.values().filter(|n| n.kind == NotifyKind::Resolve) {
            let epoch = n.idempotency_key.split('/').nth(1).unwrap();
            let paged = clean.values().any(|p| p.kind == NotifyKind::Trigger && p.recipient == n.recipient && p.idempotency_key.split('/').nth(1) == Some(epoch));
            prop_assert!(paged, "resolve without page: {}", n.idempotency_key);
        }
    }
}

/// Regression (found by the crash-replay property): an acknowledgement that
/// expired during a silence, replayed late by a restarted driver after the
/// silence ended, paged every step that fell due during the silence at once
/// instead of starting the restarted cycle at the silence's end.
#[test]
fn regression_ack_expiring_inside_a_silence_replayed_late() {
    let primary = || EscalationLevel { targets: vec![Target::Schedule("primary".into())], delay_minutes: 0 };
    let policy = EscalationPolicy {
        fallback: Vec::new(),
        name: "p".into(),
        levels: vec![EscalationLevel { delay_minutes: 4, ..primary() }, EscalationLevel { delay_minutes: 2, ..primary() }],
        repeat: 1,
        ack_timeout_minutes: Some(14),
    };
    let events = vec![(0, Ev::Trigger), (8, Ev::Trigger), (11, Ev::Reopen), (13, Ev::Ack(0)), (38, Ev::Silence(34)), (52, Ev::Ack(0)), (73, Ev::Ack(0))];
    let crash_mask: u64 = 177_825_061_362_614_272;
    let clean = drive(&policy, &events, &|_| false).unwrap();
    let crashy = drive(&policy, &events, &|i| crash_mask >> (i % 64) & 1 == 1).unwrap();
    assert_eq!(clean.keys().collect::<Vec<_>>(), crashy.keys().collect::<Vec<_>>());
}
