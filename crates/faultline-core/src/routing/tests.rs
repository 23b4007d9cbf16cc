//! Data-driven tests of routing: label matchers (syntax, anchoring, missing
//! labels), Alertmanager time intervals (negative days of month, clamping,
//! locations across DST), the routing tree (`continue`, inheritance,
//! group keys), silences in the `/api/v2/silences` shape, maintenance windows
//! and parent suppression — each area with one `check_*` helper.

use proptest::prelude::*;

use super::*;

fn labels(s: &str) -> Labels {
    // `a=b c=d` -> {a: b, c: d}
    s.split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect()
}
fn ts(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).unwrap()
}

// ---------------------------------------------------------------- matchers

#[track_caller]
fn check_matcher(matcher: &str, cases: &[(&str, bool)]) {
    let m = Matcher::parse(matcher).unwrap_or_else(|e| panic!("{matcher}: {e}"));
    for (l, want) in cases {
        assert_eq!(m.matches(&labels(l)), *want, "{matcher} on {{{l}}}");
    }
    // Display parses back to an equal matcher with the same behaviour.
    let again = Matcher::parse(&m.to_string()).unwrap();
    assert_eq!(again, m, "display round trip of {matcher}: {m}");
    // And so does the API object form.
    assert_eq!(m.to_api().compile().unwrap(), m);
}

#[test]
fn matchers_follow_alertmanager_semantics() {
    check_matcher(r#"team="db""#, &[("team=db", true), ("team=dba", false), ("", false)]);
    check_matcher("team=db", &[("team=db", true), ("team=web", false)]);
    check_matcher(r#"team!="db""#, &[("team=db", false), ("team=web", true), ("", true)]);
    // Regexes are anchored at both ends.
    check_matcher(r#"service=~"pay.*""#, &[("service=payments", true), ("service=repay", false), ("", false)]);
    check_matcher(r#"service=~"db|cache""#, &[("service=db", true), ("service=cache", true), ("service=dbx", false)]);
    check_matcher(r#"env!~"dev|test""#, &[("env=dev", false), ("env=prod", true), ("", true)]);
    // A missing label has the empty value.
    check_matcher(r#"region="""#, &[("", true), ("region=eu", false)]);
    check_matcher(r#"region=~".*""#, &[("", true), ("region=eu", true)]);
    check_matcher(r#"code=~"5\d\d""#, &[("code=503", true), ("code=404", false)]);
    check_matcher(r#" msg = "say \"hi\"" "#, &[]);
}

#[test]
fn bad_matchers_are_typed_errors() {
    let err = |s: &str| Matcher::parse(s).unwrap_err().to_string();
    assert_eq!(err("team"), "invalid matcher \"team\": missing operator");
    assert_eq!(err("team~db"), "invalid matcher \"team~db\": expected one of =, !=, =~, !~");
    assert_eq!(err(r#"team="db"#), "invalid matcher \"team=\\\"db\": unterminated quoted value");
    assert!(err(r#"x=~"(""#).starts_with("invalid regex in matcher x:"));
    assert_eq!(err("9x=1"), "invalid matcher \"9x\": label name must match [a-zA-Z_][a-zA-Z0-9_]*");
    assert_eq!(Matcher::parse_set(r#"{a="1", b=~"x,y"}"#).unwrap().len(), 2);
}

// ---------------------------------------------------------- time intervals

#[track_caller]
fn check_interval(yaml: &str, cases: &[(&str, bool)]) {
    let cfg: TimeIntervalConfig = serde_saphyr::from_str(yaml).unwrap();
    let ti = cfg.build().unwrap_or_else(|e| panic!("{yaml}: {e}"));
    for (t, want) in cases {
        assert_eq!(ti.contains(ts(t)), *want, "{t} in {yaml}");
    }
}

#[test]
fn time_interval_fields_all_have_to_match() {
    check_interval(
        "{weekdays: ['monday:friday'], times: [{start_time: '09:00', end_time: '17:00'}]}",
        &[
            ("2026-11-20T09:00:00Z", true), // Friday 09:00, start inclusive
            ("2026-11-20T16:59:59Z", true),
            ("2026-11-20T17:00:00Z", false), // end exclusive
            ("2026-11-21T12:00:00Z", false), // Saturday
            ("2026-11-23T08:59:00Z", false),
        ],
    );
    check_interval(
        "{times: [{start_time: '22:00', end_time: '24:00'}, {start_time: '00:00', end_time: '06:00'}]}",
        &[("2026-01-01T23:59:00Z", true), ("2026-01-02T05:59:00Z", true), ("2026-01-02T06:00:00Z", false)],
    );
    check_interval(
        "{months: ['december', '1:2'], years: ['2026:2027']}",
        &[("2026-12-31T00:00:00Z", true), ("2027-02-28T00:00:00Z", true), ("2027-03-01T00:00:00Z", false), ("2025-12-01T00:00:00Z", false)],
    );
}

#[test]
fn negative_days_of_month_count_from_the_end_and_clamp() {
    check_interval("{days_of_month: ['-1']}", &[("2024-02-29T12:00:00Z", true), ("2024-02-28T12:00:00Z", false), ("2026-04-30T00:00:00Z", true)]);
    check_interval("{days_of_month: ['-3:-1']}", &[("2026-04-27T23:59:00Z", false), ("2026-04-28T00:00:00Z", true), ("2026-04-30T23:59:00Z", true)]);
    // Past the start of a short month: clamped to day 1.
    check_interval("{days_of_month: ['-31:-20']}", &[("2026-02-01T00:00:00Z", true), ("2026-02-09T00:00:00Z", true), ("2026-02-10T00:00:00Z", false)]);
    // Starting after the month's last day: no match that month.
    check_interval("{days_of_month: ['30:31']}", &[("2026-02-28T00:00:00Z", false), ("2026-03-30T00:00:00Z", true)]);
    check_interval("{days_of_month: ['25:-1']}", &[("2026-02-25T00:00:00Z", true), ("2026-02-28T00:00:00Z", true), ("2026-02-24T00:00:00Z", false)]);
}

#[test]
fn location_is_applied_before_every_check_across_dst() {
    let y = "{location: Europe/London, times: [{start_time: '09:00', end_time: '17:00'}], days_of_month: ['-1']}";
    check_interval(
        y,
        &[
            ("2026-07-31T08:30:00Z", true),  // 09:30 BST on the last day
            ("2026-01-31T08:30:00Z", false), // 08:30 GMT
            ("2026-10-31T23:30:00Z", false), // 23:30 GMT Oct 31
            // 2026-03-31T23:30Z is April 1 00:30 BST: not the last day locally.
            ("2026-03-31T23:30:00Z", false),
        ],
    );
    check_interval("{location: Pacific/Auckland, weekdays: [sunday]}", &[("2026-11-21T11:00:00Z", true), ("2026-11-21T10:59:00Z", false)]);
}

#[test]
fn bad_time_intervals_are_typed_errors() {
    let err = |y: &str| serde_saphyr::from_str::<TimeIntervalConfig>(y).unwrap().build().unwrap_err().to_string();
    assert_eq!(err("{weekdays: ['friday:monday']}"), "time interval weekdays \"friday:monday\": start day cannot be after end day");
    assert_eq!(err("{days_of_month: ['-5:3']}"), "time interval days_of_month \"-5:3\": end day must be negative if start day is negative");
    assert_eq!(err("{days_of_month: ['0']}"), "time interval days_of_month \"0\": days must be 1..31 or -31..-1");
    assert_eq!(err("{times: [{start_time: '17:00', end_time: '09:00'}]}"), "time interval times \"17:00\": start_time must be before end_time");
    assert_eq!(err("{times: [{start_time: '9:00', end_time: '10:00'}]}"), "time interval start_time \"9:00\": expected HH:MM");
    assert_eq!(err("{location: Mars/Base}"), "time interval location \"Mars/Base\": unknown time zone");
}

// ----------------------------------------------------------- routing tree

const ROUTING: &str = r#"
route:
  receiver: default
  group_by: [alertname]
  escalation_policy: default
  routes:
    - matchers: ['team="payments"']
      receiver: payments-pager
      escalation_policy: payments
      continue: true
      routes:
        - matchers: ['severity="info"']
          receiver: payments-chat
          mute_time_intervals: [nights]
    - matchers: ['service=~"checkout|cart"']
      receiver: shop-pager
      group_by: ['...']
    - matchers: ['team="payments"']
      receiver: payments-audit
      active_time_intervals: [office]
    - matchers: ['team="never-reached"']
      receiver: unreachable
time_intervals:
  - name: nights
    time_intervals:
      - times: [{start_time: '22:00', end_time: '24:00'}, {start_time: '00:00', end_time: '07:00'}]
        location: Europe/Berlin
  - name: office
    time_intervals:
      - weekdays: ['monday:friday']
        times: [{start_time: '09:00', end_time: '17:00'}]
        location: Europe/Berlin
maintenance_windows:
  - name: db-upgrade
    matchers: ['service="ledger-db"']
    starts_at: 2026-11-21T02:00:00Z
    ends_at: 2026-11-21T04:00:00Z
"#;

fn silence_json(id: &str, matchers: &str, starts: &str, ends: &str) -> String {
    format!(r#"{{"id":"{id}","matchers":{matchers},"startsAt":"{starts}","endsAt":"{ends}","createdBy":"alice","comment":"deploy"}}"#)
}

#[track_caller]
fn check_route(l: &str, parent: Option<&str>, now: &str, silences: &[String], expect: &str) {
    let cfg: RoutingConfig = serde_saphyr::from_str(ROUTING).unwrap();
    let router = cfg.build().unwrap();
    let compiled: Vec<CompiledSilence> = silences.iter().map(|s| serde_json::from_str::<Silence>(s).unwrap().validate().unwrap()).collect();
    let labels = labels(l);
    let parent = parent.map(|p| p.parse().unwrap());
    let d = router.route(RoutingInput { labels: &labels, parent }, &compiled, ts(now));
    let mut got = format!("{}\n", d.reason);
    for r in &d.routes {
        got.push_str(&format!("  {} {} policy={:?} muted={:?}\n", r.receiver, r.group_key, r.escalation_policy, r.muted_by));
    }
    let want: String = expect
        .lines()
        .map(|l| l.trim_end())
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            // Keep two-space indentation for route lines, trim the rest.
            let t = l.trim_start();
            match t.strip_prefix("- ") {
                Some(rest) => format!("  {rest}\n"),
                None => format!("{t}\n"),
            }
        })
        .collect();
    assert_eq!(got, want, "\n--- got ---\n{got}--- want ---\n{want}");
}

#[test]
fn continue_lets_later_siblings_match_and_children_inherit() {
    // Wednesday 10:00 Berlin: office hours, not night.
    check_route(
        "alertname=HighErrors team=payments service=checkout",
        None,
        "2026-11-18T09:00:00Z",
        &[],
        r#"
        routed to payments-pager (route {}/{team="payments"}, group {alertname="HighErrors"}) with escalation policy payments, shop-pager (route {}/{service=~"checkout|cart"}, group {alertname="HighErrors", service="checkout", team="payments"}) with escalation policy default
        - payments-pager {}/{team="payments"}:{alertname="HighErrors"} policy=Some("payments") muted=None
        - shop-pager {}/{service=~"checkout|cart"}:{alertname="HighErrors", service="checkout", team="payments"} policy=Some("default") muted=None
        "#,
    );
}

#[test]
fn unmatched_labels_fall_back_to_the_root() {
    check_route(
        "alertname=DiskFull team=storage",
        None,
        "2026-11-18T09:00:00Z",
        &[],
        r#"
        routed to default (route {}, group {alertname="DiskFull"}) with escalation policy default
        - default {}:{alertname="DiskFull"} policy=Some("default") muted=None
        "#,
    );
}

#[test]
fn time_intervals_mute_single_routes_or_everything() {
    // Saturday 23:30 Berlin: nights mutes payments-chat, and outside office
    // hours payments-audit is muted too, so nothing pages.
    check_route(
        "alertname=Slow team=payments severity=info",
        None,
        "2026-11-21T22:30:00Z",
        &[],
        r#"
        not paged: payments-chat muted by nights, payments-audit muted by outside active intervals office
        - payments-chat {}/{team="payments"}/{severity="info"}:{alertname="Slow"} policy=Some("payments") muted=Some("nights")
        - payments-audit {}/{team="payments"}:{alertname="Slow"} policy=Some("default") muted=Some("outside active intervals office")
        "#,
    );
    // Monday 10:00 Berlin: chat and audit both notify.
    check_route(
        "alertname=Slow team=payments severity=info",
        None,
        "2026-11-23T09:00:00Z",
        &[],
        r#"
        routed to payments-chat (route {}/{team="payments"}/{severity="info"}, group {alertname="Slow"}) with escalation policy payments, payments-audit (route {}/{team="payments"}, group {alertname="Slow"}) with escalation policy default
        - payments-chat {}/{team="payments"}/{severity="info"}:{alertname="Slow"} policy=Some("payments") muted=None
        - payments-audit {}/{team="payments"}:{alertname="Slow"} policy=Some("default") muted=None
        "#,
    );
}

#[test]
fn parent_suppression_comes_before_maintenance_and_silences() {
    let s = silence_json("s-1", r#"[{"name":"team","value":"storage","isRegex":false,"isEqual":true}]"#, "2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z");
    check_route(
        "alertname=X team=storage service=ledger-db",
        Some("01936a8e-6f5c-7d2a-9b1e-0c4d5e6f7a8b"),
        "2026-11-21T03:00:00Z",
        std::slice::from_ref(&s),
        r#"
        not paged: part of incident 01936a8e-6f5c-7d2a-9b1e-0c4d5e6f7a8b, which pages for the whole failure (would have gone to default (route {}))
        - default {}:{alertname="X"} policy=Some("default") muted=None
        "#,
    );
    check_route(
        "alertname=X team=storage service=ledger-db",
        None,
        "2026-11-21T03:00:00Z",
        std::slice::from_ref(&s),
        r#"
        not paged: maintenance window "db-upgrade" until 2026-11-21T04:00:00Z (would have gone to default (route {}))
        - default {}:{alertname="X"} policy=Some("default") muted=None
        "#,
    );
    check_route(
        "alertname=X team=storage service=ledger-db",
        None,
        "2026-11-21T05:00:00Z",
        std::slice::from_ref(&s),
        r#"
        not paged: silenced by s-1 by alice ("deploy") until 2026-11-22T00:00:00Z (would have gone to default (route {}))
        - default {}:{alertname="X"} policy=Some("default") muted=None
        "#,
    );
    // After the silence ends it pages.
    check_route(
        "alertname=X team=storage",
        None,
        "2026-11-22T00:00:00Z",
        &[s],
        r#"
        routed to default (route {}, group {alertname="X"}) with escalation policy default
        - default {}:{alertname="X"} policy=Some("default") muted=None
        "#,
    );
}

#[test]
fn routing_config_errors_are_typed() {
    let err = |y: &str| serde_saphyr::from_str::<RoutingConfig>(y).unwrap().build().unwrap_err().to_string();
    assert_eq!(err("route: {}"), "the root route must name a receiver");
    assert_eq!(
        err("route: {receiver: a, routes: [{matchers: ['a=\"b\"'], mute_time_intervals: [nope]}]}"),
        "route {}/{a=\"b\"}: unknown time interval \"nope\""
    );
}

// ---------------------------------------------------------------- silences

#[test]
fn silence_has_the_alertmanager_api_shape_and_states() {
    // A body as amtool posts it (no id, no status), then as GET returns it.
    let posted = r#"{"matchers":[{"name":"alertname","value":"Disk.*","isRegex":true,"isEqual":true},
        {"name":"env","value":"dev","isRegex":false,"isEqual":false}],
        "startsAt":"2026-11-21T10:00:00Z","endsAt":"2026-11-21T12:00:00Z","createdBy":"alice","comment":"disk swap"}"#;
    let mut s: Silence = serde_json::from_str(posted).unwrap();
    s.id = "7d8e4a1c".into();
    let c = s.validate().unwrap();
    assert_eq!(s.state(ts("2026-11-21T09:59:59Z")), SilenceState::Pending);
    assert_eq!(s.state(ts("2026-11-21T10:00:00Z")), SilenceState::Active);
    assert_eq!(s.state(ts("2026-11-21T12:00:00Z")), SilenceState::Expired);
    assert!(c.silences(&labels("alertname=DiskFull env=prod"), ts("2026-11-21T11:00:00Z")));
    assert!(!c.silences(&labels("alertname=DiskFull env=dev"), ts("2026-11-21T11:00:00Z")));
    assert!(!c.silences(&labels("alertname=DiskFull env=prod"), ts("2026-11-21T13:00:00Z")));
    let got = serde_json::to_value(s.with_status(ts("2026-11-21T11:00:00Z"))).unwrap();
    let want = serde_json::json!({
        "id": "7d8e4a1c",
        "matchers": [
            {"name": "alertname", "value": "Disk.*", "isRegex": true, "isEqual": true},
            {"name": "env", "value": "dev", "isRegex": false, "isEqual": false}
        ],
        "startsAt": "2026-11-21T10:00:00Z",
        "endsAt": "2026-11-21T12:00:00Z",
        "createdBy": "alice",
        "comment": "disk swap",
        "status": {"state": "active"}
    });
    assert_eq!(got, want);
}

#[test]
fn invalid_silences_are_rejected() {
    let v = |m: &str, s: &str, e: &str| serde_json::from_str::<Silence>(&silence_json("x", m, s, e)).unwrap().validate().unwrap_err().to_string();
    let ok_m = r#"[{"name":"a","value":"b","isRegex":false}]"#;
    assert_eq!(v("[]", "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z"), "silence has no matchers");
    assert_eq!(v(ok_m, "2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"), "silence must end after it starts");
    assert!(v(r#"[{"name":"a","value":".*","isRegex":true}]"#, "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z").starts_with("silence matches every alert"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, .. ProptestConfig::default() })]

    /// Equality and regex matchers agree on literal values, negations are
    /// complements, and Display round-trips whatever the value contains.
    #[test]
    fn matcher_ops_are_consistent(value in "[a-z0-9 .\\\\\"]{0,12}", actual in prop::option::of("[a-z0-9 .]{0,12}")) {
        let mut l = Labels::new();
        if let Some(a) = &actual { l.insert("k".into(), a.clone()); }
        let eq = Matcher::new("k", MatchOp::Equal, &value).unwrap();
        let ne = Matcher::new("k", MatchOp::NotEqual, &value).unwrap();
        prop_assert_ne!(eq.matches(&l), ne.matches(&l));
        let escaped = regex::escape(&value);
        let re = Matcher::new("k", MatchOp::Regex, &escaped).unwrap();
        let nre = Matcher::new("k", MatchOp::NotRegex, &escaped).unwrap();
        prop_assert_eq!(re.matches(&l), eq.matches(&l));
        prop_assert_ne!(re.matches(&l), nre.matches(&l));
        for m in [&eq, &ne, &re, &nre] {
            prop_assert_eq!(&Matcher::parse(&m.to_string()).unwrap(), m);
        }
    }
}

// --------------------------------------------------------------- ownership

const CATALOGUE: &str = "
teams:
  - {id: payments, name: Payments}
  - {id: identity, name: Identity}
  - {id: platform, name: Platform}
services:
  - {name: checkout, owner: payments}
  - {name: sessions, owner: identity}
  - {name: postgres, owner: platform}
  - {name: legacy}
flows:
  - {name: checkout, owner: payments, interactions: [{caller: web, callee: checkout}, {caller: checkout, callee: postgres}]}
  - {name: login, owner: identity, interactions: [{caller: web, callee: sessions}, {caller: sessions, callee: postgres}]}
";

#[track_caller]
fn check_ownership(flows: &str, origins: &str, expect: &str) {
    let cat = crate::catalogue::Catalogue::from_yaml(CATALOGUE).unwrap();
    let flows: Vec<crate::ids::FlowName> = flows.split_whitespace().map(|f| f.parse().unwrap()).collect();
    let origins: Vec<crate::ids::ServiceName> = origins.split_whitespace().map(|f| f.parse().unwrap()).collect();
    let d = decide_ownership(&cat, &flows, &origins);
    assert_eq!(d.reason, expect);
}

#[test]
fn flow_owners_are_paged_and_origin_owners_respond() {
    check_ownership(
        "checkout login",
        "postgres",
        "payments (owner: owns impacted flow checkout), identity (owner: owns impacted flow login), platform (responder: owns origin postgres)",
    );
    check_ownership("checkout", "checkout", "payments (owner: owns impacted flow checkout; owns origin checkout)");
    check_ownership("", "sessions", "identity (owner: owns origin sessions)");
    check_ownership("search", "legacy", "no owning team known; flows not in the catalogue: search; origin without owner: legacy");
}

#[test]
fn ownership_labels_feed_the_routing_tree() {
    let cat = crate::catalogue::Catalogue::from_yaml(CATALOGUE).unwrap();
    let d = decide_ownership(&cat, &["checkout".parse().unwrap()], &["postgres".parse().unwrap()]);
    let extra = labels("env=prod");
    let got: Vec<String> = d.teams.iter().map(|t| format!("{:?}", routing_labels(t, crate::incident::Severity::Sev1, &extra))).collect();
    assert_eq!(
        got,
        [
            r#"{"env": "prod", "flow": "checkout", "involvement": "owner", "severity": "SEV1", "team": "payments"}"#,
            r#"{"env": "prod", "involvement": "responder", "origin_service": "postgres", "severity": "SEV1", "team": "platform"}"#,
        ]
    );
    assert_eq!(d.owners().map(|t| t.as_str()).collect::<Vec<_>>(), ["payments"]);
    assert_eq!(d.responders().map(|t| t.as_str()).collect::<Vec<_>>(), ["platform"]);
}
