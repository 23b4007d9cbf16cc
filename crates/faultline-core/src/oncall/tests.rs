//! Tests of on-call schedules: data-driven cases (YAML schedule + range ->
//! rendered shifts) for handoffs across DST gaps and folds, layers,
//! restrictions and overrides; and property tests over many IANA zones and the
//! years 2020-2040 that compare the schedule with an independent oracle built
//! from local wall-clock time.

use jiff::tz::{AmbiguousOffset, TimeZone};
use proptest::prelude::*;

use super::*;

fn ts(s: &str) -> Timestamp {
    // Accepts RFC 3339 with an offset, e.g. 2026-03-07T00:00-05:00.
    let z: jiff::Timestamp = s.parse().unwrap_or_else(|e| panic!("bad test timestamp {s}: {e}"));
    Timestamp::from_millis(z.as_millisecond())
}

fn local(tz: &TimeZone, t: Timestamp) -> String {
    t.to_jiff().to_zoned(tz.clone()).strftime("%Y-%m-%d %H:%M%:z").to_string()
}

fn render(s: &Schedule, c: &Coverage) -> String {
    let mut rows: Vec<(Timestamp, String)> = Vec::new();
    for sh in &c.shifts {
        let src = match &sh.source {
            ShiftSource::Layer { name, turn, .. } => format!("{name}#{turn}"),
            ShiftSource::Override { index } => format!("override#{index}"),
        };
        rows.push((sh.start, format!("{} .. {} {} ({src})", local(s.time_zone(), sh.start), local(s.time_zone(), sh.end), sh.user)));
    }
    for g in &c.gaps {
        rows.push((g.start, format!("{} .. {} GAP", local(s.time_zone(), g.start), local(s.time_zone(), g.end))));
    }
    rows.sort();
    rows.into_iter().map(|(_, r)| r + "\n").collect()
}

/// The one entry point of the data-driven tests: parse `yaml`, cover
/// `[from, to)`, compare the rendering with `expect` (leading spaces trimmed).
#[track_caller]
fn check(yaml: &str, from: &str, to: &str, expect: &str) {
    let cfg: ScheduleConfig = serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("bad yaml: {e}"));
    let s = cfg.build().unwrap();
    let c = s.coverage(ts(from), ts(to)).unwrap();
    let got = render(&s, &c);
    let want: String = expect.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| format!("{l}\n")).collect();
    assert_eq!(got, want, "\n--- got ---\n{got}--- want ---\n{want}");
}

#[test]
fn daily_handoff_stays_at_nine_local_across_spring_forward() {
    check(
        r#"
name: primary
time_zone: America/New_York
layers:
  - name: l
    start: 2026-03-06T09:00:00
    rotation: daily
    participants: [alice, bob]
"#,
        "2026-03-07T00:00-05:00",
        "2026-03-10T00:00-04:00",
        "
        2026-03-07 00:00-05:00 .. 2026-03-07 09:00-05:00 alice (l#0)
        2026-03-07 09:00-05:00 .. 2026-03-08 09:00-04:00 bob (l#1)
        2026-03-08 09:00-04:00 .. 2026-03-09 09:00-04:00 alice (l#2)
        2026-03-09 09:00-04:00 .. 2026-03-10 00:00-04:00 bob (l#3)
        ",
    );
}

#[test]
fn handoff_inside_the_spring_forward_gap_happens_when_clocks_jump() {
    check(
        r#"
name: primary
time_zone: America/New_York
layers:
  - name: l
    start: 2026-03-06T02:30:00
    rotation: daily
    participants: [alice, bob]
"#,
        "2026-03-07T12:00-05:00",
        "2026-03-09T12:00-04:00",
        "
        2026-03-07 12:00-05:00 .. 2026-03-08 03:00-04:00 bob (l#1)
        2026-03-08 03:00-04:00 .. 2026-03-09 02:30-04:00 alice (l#2)
        2026-03-09 02:30-04:00 .. 2026-03-09 12:00-04:00 bob (l#3)
        ",
    );
}

#[test]
fn handoff_inside_the_fall_back_fold_uses_the_first_occurrence() {
    check(
        r#"
name: primary
time_zone: America/New_York
layers:
  - name: l
    start: 2026-10-30T01:30:00
    rotation: daily
    participants: [alice, bob]
"#,
        "2026-10-31T12:00-04:00",
        "2026-11-02T12:00-05:00",
        "
        2026-10-31 12:00-04:00 .. 2026-11-01 01:30-04:00 bob (l#1)
        2026-11-01 01:30-04:00 .. 2026-11-02 01:30-05:00 alice (l#2)
        2026-11-02 01:30-05:00 .. 2026-11-02 12:00-05:00 bob (l#3)
        ",
    );
}

#[test]
fn twelve_hour_rotation_keeps_wall_clock_handoffs_over_lord_howe_half_hour_dst() {
    // Lord Howe moves from +10:30 to +11:00 at 02:00 local on 2026-10-04.
    check(
        r#"
name: p
time_zone: Australia/Lord_Howe
layers:
  - name: l
    start: 2026-10-01T08:00:00
    rotation: {hours: 12}
    participants: [alice, bob]
"#,
        "2026-10-03T20:00+10:30",
        "2026-10-05T08:00+11:00",
        "
        2026-10-03 20:00+10:30 .. 2026-10-04 08:00+11:00 bob (l#5)
        2026-10-04 08:00+11:00 .. 2026-10-04 20:00+11:00 alice (l#6)
        2026-10-04 20:00+11:00 .. 2026-10-05 08:00+11:00 bob (l#7)
        ",
    );
}

#[test]
fn later_layer_wins_inside_its_restriction_and_override_wins_over_all() {
    check(
        r#"
name: payments
time_zone: Europe/London
layers:
  - name: primary
    start: 2026-05-04T09:00:00
    rotation: weekly
    participants: [alice, bob]
  - name: office
    start: 2026-05-04T09:00:00
    rotation: daily
    participants: [carol]
    restrictions:
      - {type: daily, days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}
overrides:
  - {start: "2026-06-03T10:00:00Z", end: "2026-06-03T12:00:00Z", user: dave}
"#,
        "2026-06-01T00:00+01:00",
        "2026-06-03T18:00+01:00",
        "
        2026-06-01 00:00+01:00 .. 2026-06-01 09:00+01:00 bob (primary#3)
        2026-06-01 09:00+01:00 .. 2026-06-01 17:00+01:00 carol (office#28)
        2026-06-01 17:00+01:00 .. 2026-06-02 09:00+01:00 alice (primary#4)
        2026-06-02 09:00+01:00 .. 2026-06-02 17:00+01:00 carol (office#29)
        2026-06-02 17:00+01:00 .. 2026-06-03 09:00+01:00 alice (primary#4)
        2026-06-03 09:00+01:00 .. 2026-06-03 11:00+01:00 carol (office#30)
        2026-06-03 11:00+01:00 .. 2026-06-03 13:00+01:00 dave (override#0)
        2026-06-03 13:00+01:00 .. 2026-06-03 17:00+01:00 carol (office#30)
        2026-06-03 17:00+01:00 .. 2026-06-03 18:00+01:00 alice (primary#4)
        ",
    );
}

#[test]
fn coverage_gaps_are_reported_outside_restrictions_and_before_start() {
    check(
        r#"
name: business-hours
time_zone: Asia/Kolkata
layers:
  - name: l
    start: 2026-06-02T09:00:00
    rotation: daily
    participants: [asha]
    restrictions:
      - {type: daily, start: "09:00", end: "17:30"}
"#,
        "2026-06-01T00:00+05:30",
        "2026-06-03T12:00+05:30",
        "
        2026-06-01 00:00+05:30 .. 2026-06-02 09:00+05:30 GAP
        2026-06-02 09:00+05:30 .. 2026-06-02 17:30+05:30 asha (l#0)
        2026-06-02 17:30+05:30 .. 2026-06-03 09:00+05:30 GAP
        2026-06-03 09:00+05:30 .. 2026-06-03 12:00+05:30 asha (l#1)
        ",
    );
}

#[test]
fn weekly_restriction_wraps_over_the_weekend() {
    check(
        r#"
name: weekend
time_zone: Europe/Berlin
layers:
  - name: l
    start: 2026-01-02T17:00:00
    end: 2026-01-20T00:00:00
    rotation: weekly
    participants: [erik, frida]
    restrictions:
      - {type: weekly, start_day: friday, start: "17:00", end_day: monday, end: "09:00"}
"#,
        "2026-01-08T00:00+01:00",
        "2026-01-26T00:00+01:00",
        "
        2026-01-08 00:00+01:00 .. 2026-01-09 17:00+01:00 GAP
        2026-01-09 17:00+01:00 .. 2026-01-12 09:00+01:00 frida (l#1)
        2026-01-12 09:00+01:00 .. 2026-01-16 17:00+01:00 GAP
        2026-01-16 17:00+01:00 .. 2026-01-19 09:00+01:00 erik (l#2)
        2026-01-19 09:00+01:00 .. 2026-01-26 00:00+01:00 GAP
        ",
    );
}

#[test]
fn who_is_on_call_reports_the_whole_shift() {
    let cfg: ScheduleConfig = serde_json::from_str(
        r#"{"name":"p","time_zone":"America/New_York","layers":[{"name":"l","start":"2026-03-06T09:00:00",
            "rotation":"daily","participants":["alice","bob"]}]}"#,
    )
    .unwrap();
    let s = cfg.build().unwrap();
    let on = s.who_is_on_call(ts("2026-03-08T08:00-04:00")).unwrap();
    assert_eq!(on.user.as_str(), "bob");
    assert_eq!((on.start, on.end), (ts("2026-03-07T09:00-05:00"), ts("2026-03-08T09:00-04:00")));
    assert_eq!(s.on_call_users(ts("2026-03-05T08:00-05:00")), Vec::<UserId>::new(), "before the layer starts");
}

#[test]
fn bad_configs_are_typed_errors() {
    let base = |tz: &str, rot: &str, people: &str| {
        format!(r#"{{"name":"p","time_zone":"{tz}","layers":[{{"name":"l","start":"2026-01-01T00:00:00","rotation":{rot},"participants":{people}}}]}}"#)
    };
    let err = |j: String| serde_json::from_str::<ScheduleConfig>(&j).unwrap().build().unwrap_err().to_string();
    assert_eq!(err(base("Mars/Olympus", "\"daily\"", "[\"a\"]")), "unknown time zone \"Mars/Olympus\"");
    assert_eq!(err(base("UTC", "{\"hours\":0}", "[\"a\"]")), "layer \"l\": rotation length must be 1 hour to 10 years");
    assert_eq!(err(base("UTC", "\"daily\"", "[]")), "layer \"l\": has no participants");
    let s = serde_json::from_str::<ScheduleConfig>(&base("UTC", "\"daily\"", "[\"a\"]")).unwrap().build().unwrap();
    assert!(s.coverage(ts("2026-01-02T00:00Z"), ts("2026-01-01T00:00Z")).is_err());
    assert!(s.coverage(Timestamp::from_millis(i64::MIN), Timestamp::from_millis(i64::MAX)).is_err());
    assert!(matches!(
        serde_json::from_str::<ScheduleConfig>(&base("UTC", "{\"hours\":1}", "[\"a\"]"))
            .unwrap()
            .build()
            .unwrap()
            .coverage(ts("2030-01-01T00:00Z"), ts("2045-01-01T00:00Z")),
        Err(ScheduleError::TooManyShifts { .. })
    ));
}

// ---------------------------------------------------------------------------
// Property tests: many zones, 2020-2040, windows centred on real transitions.

const ZONES: &[&str] = &[
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "Pacific/Auckland",
    "Pacific/Chatham",
    "America/St_Johns",
    "Europe/Dublin",
    "Africa/Casablanca",
    "America/Santiago",
    "Antarctica/Troll",
    "Asia/Tehran",
    "Asia/Kathmandu",
    "America/Los_Angeles",
    "Europe/Berlin",
    "Australia/Sydney",
    "UTC",
];

fn rotation_strategy() -> impl Strategy<Value = Rotation> {
    prop_oneof![
        Just(Rotation::Daily),
        Just(Rotation::Weekly),
        (2u32..=4).prop_map(Rotation::Days),
        prop::sample::select(vec![1u32, 2, 3, 4, 6, 8, 12, 24, 36]).prop_map(Rotation::Hours),
    ]
}

fn time_strategy() -> impl Strategy<Value = Time> {
    // Biased towards the small hours, where DST transitions happen.
    (prop_oneof![0i8..24, 0i8..4], prop::sample::select(vec![0i8, 15, 30, 45])).prop_map(|(h, m)| Time::new(h, m, 0, 0).unwrap())
}

fn restriction_strategy() -> impl Strategy<Value = Restriction> {
    prop_oneof![
        3 => (prop::collection::vec(0usize..7, 0..4), time_strategy(), time_strategy()).prop_map(|(days, start, end)| {
            let mut days: Vec<Weekday> = days.into_iter().map(|d| Weekday::ALL[d]).collect();
            days.sort();
            days.dedup();
            Restriction::Daily { days, start, end }
        }),
        1 => (0usize..7, time_strategy(), 0usize..7, time_strategy()).prop_map(|(a, start, b, end)| Restriction::Weekly {
            start_day: Weekday::ALL[a], start, end_day: Weekday::ALL[b], end,
        }),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    cfg: ScheduleConfig,
    from: Timestamp,
    to: Timestamp,
    probes: Vec<u16>,
}

fn case_strategy() -> impl Strategy<Value = Case> {
    let layer = (
        rotation_strategy(),
        1usize..=4,
        0i64..40,
        time_strategy(),
        prop::collection::vec(restriction_strategy(), 0..3),
        prop::option::weighted(0.2, 1i64..20),
    );
    (
        0usize..ZONES.len(),
        2020i16..=2040,
        1i8..=12,
        prop::collection::vec(layer, 1..=3),
        prop::collection::vec((0i64..7 * 24 * 60, 1i64..48 * 60, 0usize..5), 0..3),
        0i64..6 * 24,
        prop::collection::vec(any::<u16>(), 24),
    )
        .prop_map(|(zi, year, month, layers, overrides, lead_hours, probes)| {
            let name = ZONES[zi];
            let tz = jiff::tz::db().get(name).unwrap();
            // Centre the window on the first transition after the chosen month
            // (if the zone has one within a year), so DST is exercised.
            let anchor = jiff::civil::date(year, month, 1).to_datetime(Time::midnight()).to_zoned(tz.clone()).unwrap().timestamp();
            let centre = tz.following(anchor).next().map(|t| t.timestamp()).filter(|t| t.as_second() - anchor.as_second() < 366 * 86_400).unwrap_or(anchor);
            let from_j = centre - jiff::SignedDuration::from_hours(72 + lead_hours);
            let to_j = centre + jiff::SignedDuration::from_hours(96);
            let centre_local = tz.to_datetime(centre);
            let people = ["alice", "bob", "carol", "dave", "erin"];
            let layers = layers
                .into_iter()
                .enumerate()
                .map(|(i, (rotation, n, back_days, at, restrictions, end_days))| {
                    let start = centre_local.date().checked_sub(back_days.days()).unwrap().to_datetime(at);
                    LayerConfig {
                        name: format!("l{i}"),
                        start,
                        end: end_days.map(|d| start.checked_add(d.days()).unwrap()),
                        rotation,
                        participants: people[..n].iter().map(|p| UserId::new(*p).unwrap()).collect(),
                        restrictions,
                    }
                })
                .collect();
            let overrides = overrides
                .into_iter()
                .map(|(off_min, len_min, who)| OverrideConfig {
                    start: from_j + jiff::SignedDuration::from_mins(off_min),
                    end: from_j + jiff::SignedDuration::from_mins(off_min + len_min),
                    user: UserId::new(format!("sub-{}", people[who])).unwrap(),
                })
                .collect();
            Case {
                cfg: ScheduleConfig { name: "p".into(), time_zone: name.into(), layers, overrides },
                from: Timestamp::from_millis(from_j.as_millisecond()),
                to: Timestamp::from_millis(to_j.as_millisecond()),
                probes,
            }
        })
}

/// Independent oracle: who is on call at `t`, computed only from the local
/// wall-clock time at `t` (never from resolved handoff instants).
fn oracle(cfg: &ScheduleConfig, tz: &TimeZone, t: Timestamp) -> Option<String> {
    let tj = t.to_jiff();
    for o in cfg.overrides.iter().rev() {
        if o.start <= tj && tj < o.end {
            return Some(o.user.to_string());
        }
    }
    let now = tz.to_datetime(tj);
    for l in cfg.layers.iter().rev() {
        if now < l.start || l.end.is_some_and(|e| now >= e) {
            continue;
        }
        if !l.restrictions.is_empty() && !l.restrictions.iter().any(|r| civil_in_restriction(r, now)) {
            continue;
        }
        let step = l.rotation.step_millis().unwrap() as i128;
        let k = now.duration_since(l.start).as_millis().div_euclid(step);
        let n = l.participants.len() as i128;
        return Some(l.participants[k.rem_euclid(n) as usize].to_string());
    }
    None
}

fn civil_in_restriction(r: &Restriction, now: DateTime) -> bool {
    let day = jiff::SignedDuration::from_hours(24);
    let contains = |start: DateTime, len: jiff::SignedDuration| start <= now && now < start.checked_add(len).unwrap();
    let tod = |t: Time| jiff::SignedDuration::from_secs(i64::from(t.hour()) * 3600 + i64::from(t.minute()) * 60);
    match r {
        Restriction::Daily { days, start, end } => (0..=1).any(|back| {
            let d = now.date().checked_sub(back.days()).unwrap();
            let wd = Weekday::from_jiff(d.weekday());
            let mut len = tod(*end) - tod(*start);
            if len <= jiff::SignedDuration::ZERO {
                len += day;
            }
            (days.is_empty() || days.contains(&wd)) && contains(d.to_datetime(*start), len)
        }),
        Restriction::Weekly { start_day, start, end_day, end } => (0..=7).any(|back| {
            let d = now.date().checked_sub(back.days()).unwrap();
            let mut len = day * (end_day.index() - start_day.index()) as i32 + tod(*end) - tod(*start);
            if len <= jiff::SignedDuration::ZERO {
                len += day * 7;
            }
            Weekday::from_jiff(d.weekday()) == *start_day && contains(d.to_datetime(*start), len)
        }),
    }
}

fn is_ambiguous_local(tz: &TimeZone, t: Timestamp) -> bool {
    let local = tz.to_datetime(t.to_jiff());
    !matches!(tz.to_ambiguous_timestamp(local).offset(), AmbiguousOffset::Unambiguous { .. })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, .. ProptestConfig::default() })]

    /// Shifts and gaps tile [from, to): sorted, contiguous, non-empty, no
    /// overlap, and adjacent shifts of the same turn are merged.
    #[test]
    fn shifts_and_gaps_tile_the_range(case in case_strategy()) {
        let s = case.cfg.build().unwrap();
        let c = s.coverage(case.from, case.to).unwrap();
        let mut pieces: Vec<(Timestamp, Timestamp)> = c.shifts.iter().map(|x| (x.start, x.end)).chain(c.gaps.iter().map(|g| (g.start, g.end))).collect();
        pieces.sort();
        prop_assert_eq!(pieces.first().map(|p| p.0), Some(case.from));
        prop_assert_eq!(pieces.last().map(|p| p.1), Some(case.to));
        for w in pieces.windows(2) {
            prop_assert_eq!(w[0].1, w[1].0, "pieces must be contiguous");
        }
        for p in &pieces {
            prop_assert!(p.0 < p.1, "empty piece {:?}", p);
        }
        for w in c.shifts.windows(2) {
            prop_assert!(!(w[0].end == w[1].start && w[0].user == w[1].user && w[0].source == w[1].source), "unmerged shift");
        }
    }

    /// The schedule agrees with the wall-clock oracle at every shift boundary
    /// (both sides) and at random instants, except at instants whose local time
    /// is ambiguous (the repeated hour), where the oracle has no single answer.
    #[test]
    fn who_is_on_call_matches_the_wall_clock_oracle(case in case_strategy()) {
        let s = case.cfg.build().unwrap();
        let tz = s.time_zone().clone();
        let c = s.coverage(case.from, case.to).unwrap();
        let span = (case.to - case.from).as_millis();
        let mut probes: Vec<Timestamp> = case.probes.iter().map(|p| case.from + crate::time::Duration::from_millis(span * i64::from(*p) / 65_536)).collect();
        for sh in &c.shifts {
            probes.push(sh.start);
            probes.push(sh.end - crate::time::Duration::from_millis(1));
        }
        for t in probes {
            if t < case.from || t >= case.to || is_ambiguous_local(&tz, t) {
                continue;
            }
            let covering = c.shifts.iter().find(|x| x.start <= t && t < x.end);
            let from_coverage = covering.map(|x| x.user.to_string());
            prop_assert_eq!(&from_coverage, &oracle(&case.cfg, &tz, t), "at {} ({})", t, local(&tz, t));
            let single = s.who_is_on_call(t);
            prop_assert_eq!(&single.as_ref().map(|x| x.user.to_string()), &from_coverage, "who_is_on_call vs coverage at {}", t);
            // The whole shift is reported: equal to the coverage's shift when
            // that one is not clipped by the query range.
            if let (Some(one), Some(cov)) = (&single, covering) {
                prop_assert!(one.start <= t && t < one.end);
                if cov.start > case.from && cov.end < case.to {
                    prop_assert_eq!(one, cov);
                }
            }
        }
    }

    /// Every handoff happens at its configured local wall-clock time; a time in
    /// a gap hands off at the jump, a time in a fold at its first occurrence.
    #[test]
    fn handoffs_happen_at_the_configured_wall_clock_time(case in case_strategy()) {
        let s = case.cfg.build().unwrap();
        let tz = s.time_zone().clone();
        for li in 0..case.cfg.layers.len() {
            let hs = s.layer_handoffs(li, case.from, case.to).unwrap();
            for w in hs.windows(2) {
                prop_assert!(w[0].at <= w[1].at, "handoffs must not go backwards");
                prop_assert_eq!(w[0].turn + 1, w[1].turn);
            }
            for h in &hs {
                let at = h.at.to_jiff();
                let got_local = tz.to_datetime(at);
                match tz.to_ambiguous_timestamp(h.local).offset() {
                    AmbiguousOffset::Unambiguous { .. } => prop_assert_eq!(got_local, h.local),
                    AmbiguousOffset::Fold { before, .. } => {
                        prop_assert_eq!(got_local, h.local);
                        prop_assert_eq!(tz.to_offset(at), before, "fold resolves to the first occurrence");
                    }
                    AmbiguousOffset::Gap { .. } => {
                        let just_before = tz.to_datetime(at - jiff::SignedDuration::from_millis(1));
                        prop_assert!(just_before < h.local && h.local < got_local, "gap handoff at the jump: {} {} {}", just_before, h.local, got_local);
                    }
                }
            }
        }
    }
}
