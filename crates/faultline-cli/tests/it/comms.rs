//! Issue 13 through the real binary, as an on-call engineer and a comms lead
//! use it: Prometheus's way of sending an alert (Alertmanager v2, no JSON
//! content type) opens an incident titled by its alertname at the SEV its
//! `severity` label maps to; the comms lead sets a public title and posts an
//! "identified" update in their own words (`faultline incidents title
//! --public`, `faultline incidents status-update`), which the public page
//! shows under the public title, and a second update without any state change.
//!
//! Synchronisation: the server's "listening" line; an alert is answered only
//! once its incident is committed, so no waiting after that.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::{BIN, Server, create_token};

fn write_config(dir: &Path) -> std::path::PathBuf {
    std::fs::write(
        dir.join("catalogue.yaml"),
        "teams:\n  - {id: payments, name: Payments, members: [alice]}\n\
         services:\n  - {name: checkout, owner: payments}\n  - {name: payments-db, owner: payments}\n\
         flows:\n  - name: checkout\n    owner: payments\n    interactions: [{caller: frontend, callee: checkout}, {caller: checkout, callee: payments-db}]\n",
    )
    .unwrap();
    let path = dir.join("response.yaml");
    std::fs::write(&path, "catalogue_file: catalogue.yaml\nstatus_page: {name: Example, url: \"https://status.example.com\"}\n").unwrap();
    path
}

/// `faultline <args>` against the server; stdout, or the failure with stderr.
fn faultline(server: &Server, token: &str, args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).env("FAULTLINE_URL", &server.url).env("FAULTLINE_TOKEN", token).output().unwrap();
    assert!(out.status.success(), "faultline {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_critical_alert_is_named_by_its_alertname_and_the_comms_lead_speaks_under_the_public_title() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let token = create_token(dir.path(), "admin");
    let server = Server::start(dir.path(), &[("FAULTLINE_RESPONSE_CONFIG", cfg.to_str().unwrap())]);
    let http = reqwest::Client::new();

    // As Prometheus sends it: Alertmanager v2, and no Content-Type header.
    let alert = r#"[{"labels":{"alertname":"CheckoutErrors","service":"checkout","severity":"critical"},
        "annotations":{"summary":"checkout 5xx above 5%"},"startsAt":"2026-11-21T11:59:00Z"}]"#;
    let resp = http.post(format!("{}/api/v2/alerts", server.url)).body(alert).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());

    let list: Value = serde_json::from_str(&faultline(&server, &token, &["incidents", "list", "--json"])).unwrap();
    let incident = &list["incidents"][0];
    assert_eq!(incident["title"], "CheckoutErrors on checkout: checkout 5xx above 5%");
    assert_eq!(incident["severity"], "SEV1", "severity: critical maps to SEV1");
    let id = incident["id"].as_str().unwrap().to_owned();
    let table = faultline(&server, &token, &["incidents", "list"]);
    assert!(table.contains("CheckoutErrors on checkout") && !table.contains("alertmanager alert"), "{table}");

    // The comms lead: a public title, then an "identified" update in their words.
    let shown = faultline(&server, &token, &["incidents", "title", &id, "Card payments failing", "--public"]);
    assert!(shown.contains("public:  Card payments failing"), "{shown}");
    let out = faultline(
        &server,
        &token,
        &[
            "incidents",
            "status-update",
            &id,
            "--status",
            "identified",
            "--message",
            "A card processor is failing; we are switching.",
            "--component",
            "flow-checkout=partial_outage",
        ],
    );
    assert!(out.starts_with("published status-page update") && out.contains(": identified"), "{out}");
    // A second update with nothing changed is allowed.
    faultline(&server, &token, &["incidents", "status-update", &id, "--message", "Still switching; next update in 30 minutes."]);

    let page: Value = http.get(format!("{}/api/v2/summary.json", server.url)).send().await.unwrap().json().await.unwrap();
    let public = &page["incidents"][0];
    assert_eq!((public["name"].as_str(), public["status"].as_str()), (Some("Card payments failing"), Some("identified")), "{page}");
    let bodies: Vec<&str> = public["incident_updates"].as_array().unwrap().iter().filter_map(|u| u["body"].as_str()).collect();
    assert_eq!(bodies, ["Still switching; next update in 30 minutes.", "A card processor is failing; we are switching."]);
    assert!(!page.to_string().contains("CheckoutErrors"), "the internal title stays internal: {page}");
    assert_eq!(page["components"][0]["status"], "partial_outage");

    // A wrong status is refused in the user's terms.
    let out = Command::new(BIN)
        .args(["incidents", "status-update", &id, "--status", "found", "--message", "x"])
        .env("FAULTLINE_URL", &server.url)
        .env("FAULTLINE_TOKEN", &token)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("status \"found\" is not one of investigating, identified, monitoring, resolved"), "{err}");
    server.stop();
}
