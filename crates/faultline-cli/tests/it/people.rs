//! People as identities through the real binary: `token create --user`
//! checked against the response configuration, a declared incident with
//! `--service`/`--team` routed and attributed to the token's user, and
//! `silences add` without `$USER`.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::{BIN, Receiver, Server};

fn write_config(dir: &Path) -> std::path::PathBuf {
    std::fs::write(
        dir.join("catalogue.yaml"),
        "teams:\n  - {id: payments, name: Payments, members: [alice]}\n  - {id: platform, name: Platform, members: [dave]}\n\
         services:\n  - {name: checkout, owner: payments}\n  - {name: payments-db, owner: platform}\n",
    )
    .unwrap();
    let cfg = "catalogue_file: catalogue.yaml\n\
               users:\n  - {id: alice, contacts: [{channel: hook}]}\n  - {id: dave, contacts: [{channel: hook}]}\n\
               escalation_policies:\n  - {name: payments, levels: [{delay_minutes: 5, targets: [{user: alice}]}]}\n  - {name: platform, levels: [{delay_minutes: 5, targets: [{user: dave}]}]}\n\
               routing:\n  route:\n    receiver: default\n    routes:\n      - {matchers: ['team=\"platform\"'], receiver: default, escalation_policy: platform}\n\
               receivers:\n  - {name: default}\n\
               default_policy: payments\n\
               channels:\n  - {name: hook, type: webhook, url_env: PEOPLE_HOOK_URL}\n";
    let path = dir.join("response.yaml");
    std::fs::write(&path, cfg).unwrap();
    path
}

fn faultline(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("FAULTLINE_TOKEN")
        .env_remove("FAULTLINE_URL")
        .env_remove("FAULTLINE_CONFIG")
        .env_remove("FAULTLINE_RESPONSE_CONFIG")
        .env_remove("FAULTLINE_DATABASE_URL")
        .env_remove("USER")
        .output()
        .unwrap()
}

#[track_caller]
fn ok(o: Output) -> String {
    assert!(o.status.success(), "stdout: {}\nstderr: {}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[track_caller]
fn err(o: Output) -> String {
    assert!(!o.status.success(), "expected failure: {}", String::from_utf8_lossy(&o.stdout));
    String::from_utf8_lossy(&o.stderr).trim_end().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_belong_to_configured_users_and_their_actions_are_theirs() {
    let rx = Receiver::default();
    let hook = rx.clone().start().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let (d, c) = (dir.path().to_str().unwrap(), cfg.to_str().unwrap());
    let e = err(faultline(&["token", "create", "--data-dir", d, "--scope", "admin", "--user", "alice"]));
    assert!(e.ends_with("--user alice: no response configuration to find the user in (give --response-config FILE or set FAULTLINE_RESPONSE_CONFIG)"), "{e}");
    let e = err(faultline(&["token", "create", "--data-dir", d, "--response-config", c, "--scope", "admin", "--user", "bobb"]));
    assert_eq!(e, "error: --user bobb is not a user of the response configuration (users: alice, dave)");
    let out = ok(faultline(&["token", "create", "--data-dir", d, "--response-config", c, "--scope", "admin", "--user", "alice"]));
    assert!(out.starts_with("created admin token \"alice\" for user alice"), "{out}");
    let alice = out.lines().last().unwrap().trim().to_owned();
    let out = ok(faultline(&["token", "create", "--data-dir", d, "--scope", "admin", "--name", "ci"]));
    let ci = out.lines().last().unwrap().trim().to_owned();
    let list = ok(faultline(&["token", "list", "--data-dir", d]));
    assert!(list.lines().any(|l| l.contains("alice") && l.contains("admin")), "{list}");

    let server = Server::start(dir.path(), &[("FAULTLINE_RESPONSE_CONFIG", c), ("PEOPLE_HOOK_URL", &hook)]);
    let cli = |token: &str, args: &[&str]| {
        let mut all = vec![args[0], "--url", server.url.as_str(), "--token", token];
        all.extend_from_slice(&args[1..]);
        faultline(&all)
    };
    // Declared on payments-db: routed to its owner's policy, not the default.
    let v: serde_json::Value =
        serde_json::from_str(&ok(cli(&alice, &["incidents", "--json", "declare", "ledger writes failing", "--severity", "SEV1", "--service", "payments-db"])))
            .unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    assert_eq!(v["timeline"][0]["actor"], "user:alice");
    assert_eq!(v["timeline"][0]["details"]["scope"]["services"][0], "payments-db");
    let e = err(cli(&alice, &["incidents", "declare", "x", "--team", "paymnts"]));
    assert!(e.contains("team: unknown team \"paymnts\" (known: payments, platform)"), "{e}");
    // The platform policy pages dave (the default would have paged alice).
    rx.wait_for("dave's page", std::time::Duration::from_secs(30), |k| k.iter().any(|x| x.starts_with(id.as_str()) && x.contains("/dave/trigger"))).await;
    assert!(!rx.distinct().iter().any(|x| x.contains("/alice/")), "{:?}", rx.distinct());

    ok(cli(&alice, &["incidents", "ack", &id]));
    let shown = ok(cli(&alice, &["incidents", "--json", "show", &id]));
    assert!(shown.contains("\"actor\": \"user:alice\""), "{shown}");

    // silences add with no $USER: the token's user, or a clear request.
    let sid = ok(cli(&alice, &["silences", "add", "team=\"payments\"", "--comment", "deploy"]));
    let listed = ok(cli(&alice, &["silences", "--json", "list"]));
    assert!(listed.contains(sid.trim()) && listed.contains("\"createdBy\": \"alice\""), "{listed}");
    let e = err(cli(&ci, &["silences", "add", "team=\"payments\"", "--comment", "deploy"]));
    assert_eq!(e, "error: silences add: say who is silencing with --created-by NAME (the token belongs to no user and $USER is not set)");
    ok(cli(&ci, &["silences", "add", "team=\"payments\"", "--comment", "deploy", "--created-by", "ci-bot"]));
    server.stop();
}
