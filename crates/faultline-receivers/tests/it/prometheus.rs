//! A real Prometheus (Debian's `prometheus` 2.x) scrapes a fixture endpoint
//! and remote-writes to Faultline; the series must arrive with their labels.
//! Skipped when the binary is missing, except under CI (`CI=true`), where a
//! missing Prometheus is a failure (`.ci/run` installs it).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use faultline_core::signal::Signal;
use faultline_receivers::{Ingest, IngestConfig};

struct KillOnDrop(Child);
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn prometheus_binary() -> Option<&'static str> {
    ["/usr/bin/prometheus", "/usr/local/bin/prometheus"].into_iter().find(|p| std::path::Path::new(p).exists())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_remote_writes_scraped_series() {
    let Some(bin) = prometheus_binary() else {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "CI must install Debian's prometheus");
        eprintln!("skipped: prometheus not installed");
        return;
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(10_000);
    let ingest = Ingest::new(IngestConfig { signals: Some(tx), ..IngestConfig::default() });
    // One listener serves both the fixture's /metrics and Faultline's receiver.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app =
        ingest.router().route("/metrics", axum::routing::get(|| async { "# TYPE fixture_queue_depth gauge\nfixture_queue_depth{queue=\"orders\"} 42\n" }));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: fixture\n    static_configs:\n      - targets: ['{addr}']\n\
         remote_write:\n  - url: http://{addr}/api/v1/write\n    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n"
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let child = Command::new(bin)
        .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = KillOnDrop(child);

    // Wait (event-driven, bounded) for the scraped series to arrive.
    let found = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(s) = rx.recv().await {
            if let Signal::Metric(p) = s
                && p.name == "fixture_queue_depth"
            {
                return Some(p);
            }
        }
        None
    })
    .await
    .expect("Prometheus remote-wrote the scraped series within 90 s")
    .unwrap();
    assert_eq!(found.value, 42.0);
    assert_eq!(found.labels.get("job").map(String::as_str), Some("fixture"));
    assert_eq!(found.labels.get("instance").map(String::as_str), Some(addr.to_string().as_str()));
    assert_eq!(found.labels.get("queue").map(String::as_str), Some("orders"));
    ingest.flush().await;
    let now = faultline_core::time::Timestamp::from_millis(found.at.as_millis());
    let svc = ingest
        .service("fixture", now - faultline_core::time::Duration::from_mins(5), now + faultline_core::time::Duration::from_mins(5))
        .expect("the job became a service");
    assert!(svc.metrics.iter().any(|m| m.name == "fixture_queue_depth"));
    assert!(ingest.stats().metric_points_accepted > 0);
    assert_eq!(ingest.stats().bad_payloads, 0);
}
