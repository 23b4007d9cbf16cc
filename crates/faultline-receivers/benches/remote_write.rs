//! Remote-write throughput: the same snappy protobuf payloads posted to
//! Faultline's `/api/v1/write` and to Debian's Prometheus 2.x started with
//! `--web.enable-remote-write-receiver`, side by side on this machine.
//! Run with `cargo bench -p faultline-receivers --bench remote_write`.
//!
//! 4 senders, each owning 1,000 series, post 125 requests of 1,000 series ×
//! 2 samples (2,000 samples per request, Prometheus's default
//! `max_samples_per_send`; timestamps increasing per series so Prometheus
//! accepts every sample). Rate = accepted samples / wall time.
//! Both receivers share the machine with the sender; the ratio is the number
//! to read.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use faultline_receivers::{Ingest, IngestConfig, prompb};
use prost::Message;

const SENDERS: usize = 4;

/// (series per sender, samples per series per request, requests per sender).
/// `FL_RW_SHAPE=dense` sends 250 series × 40 samples instead.
fn shape() -> (usize, usize, usize) {
    if std::env::var("FL_RW_SHAPE").as_deref() == Ok("dense") { (250, 40, 50) } else { (1000, 2, 125) }
}

fn payloads(sender: usize, t0: i64) -> Vec<Vec<u8>> {
    let (series_per_sender, samples_per_series, requests) = shape();
    (0..requests)
        .map(|r| {
            let req = prompb::WriteRequest {
                timeseries: (0..series_per_sender)
                    .map(|s| prompb::TimeSeries {
                        labels: vec![
                            prompb::Label { name: "__name__".into(), value: "http_requests_total".into() },
                            prompb::Label { name: "instance".into(), value: format!("10.0.{sender}.{}:9100", s % 50) },
                            prompb::Label { name: "job".into(), value: format!("svc-{}", s % 10) },
                            prompb::Label { name: "method".into(), value: "GET".into() },
                            prompb::Label { name: "route".into(), value: format!("/api/v1/items/{s}") },
                            prompb::Label { name: "status".into(), value: "200".into() },
                        ],
                        samples: (0..samples_per_series)
                            .map(|k| prompb::Sample {
                                value: (r * samples_per_series + k) as f64,
                                timestamp: t0 + ((r * samples_per_series + k) as i64) * 1000,
                            })
                            .collect(),
                    })
                    .collect(),
            };
            snap::raw::Encoder::new().compress_vec(&req.encode_to_vec()).unwrap_or_default()
        })
        .collect()
}

async fn blast(url: String, all: &[Vec<Vec<u8>>]) -> (f64, u64, u64) {
    let (series_per_sender, samples_per_series, _) = shape();
    let per_request = (series_per_sender * samples_per_series) as u64;
    let client = reqwest::Client::new();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for bodies in all.iter().cloned() {
        let (client, url) = (client.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut retried) = (0u64, 0u64);
            for body in bodies {
                loop {
                    let r = client
                        .post(&url)
                        .header("content-type", "application/x-protobuf")
                        .header("content-encoding", "snappy")
                        .header("x-prometheus-remote-write-version", "0.1.0")
                        .body(body.clone())
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => {
                            ok += per_request;
                            break;
                        }
                        Ok(r) if r.status().as_u16() == 503 || r.status().as_u16() == 429 => {
                            retried += 1;
                            tokio::time::sleep(Duration::from_millis(5)).await;
                        }
                        Ok(r) => panic!("{url}: {}", r.status()),
                        Err(e) => panic!("{url}: {e}"),
                    }
                }
            }
            (ok, retried)
        }));
    }
    let (mut ok, mut retried) = (0, 0);
    for t in tasks {
        let (o, r) = t.await.unwrap_or((0, 0));
        ok += o;
        retried += r;
    }
    (start.elapsed().as_secs_f64(), ok, retried)
}

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_millis() as i64;
        let t0 = now - 3 * 3_600_000; // inside Prometheus's head block window
        let all: Vec<Vec<Vec<u8>>> = (0..SENDERS).map(|s| payloads(s, t0)).collect();
        let (series_per_sender, samples_per_series, requests) = shape();
        let total = (SENDERS * requests * series_per_sender * samples_per_series) as u64;
        let mb: usize = all.iter().flatten().map(Vec::len).sum::<usize>() >> 20;
        println!("{total} samples in {} requests of {series_per_sender} series × {samples_per_series} samples ({mb} MiB snappy)", SENDERS * requests);

        let mut cfg = IngestConfig::default();
        cfg.graph.retention = faultline_core::time::Duration::from_mins(4 * 60);
        let ingest = Ingest::new(cfg);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let router = ingest.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let (secs, ok, retried) = blast(format!("http://{addr}/api/v1/write"), &all).await;
        ingest.flush().await;
        let stored = ingest.stats().metric_points_accepted;
        assert_eq!(stored, total, "Faultline accepted every sample");
        let f_rate = ok as f64 / secs;
        println!("faultline:  {f_rate:>12.0} samples/s ({secs:.2} s, {retried} backpressure retries)");

        let Some(bin) = ["/usr/bin/prometheus"].into_iter().find(|p| std::path::Path::new(p).exists()) else {
            println!("prometheus not installed: no comparison");
            return;
        };
        let dir = std::env::temp_dir().join(format!("fl-rw-bench-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(dir.join("p.yml"), "global:\n  scrape_interval: 1h\n");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(19090);
        let mut child = Command::new(bin)
            .arg(format!("--config.file={}", dir.join("p.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.enable-remote-write-receiver")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{e}"));
        let client = reqwest::Client::new();
        let ready = format!("http://127.0.0.1:{port}/-/ready");
        for _ in 0..300 {
            if client.get(&ready).send().await.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (psecs, pok, _) = blast(format!("http://127.0.0.1:{port}/api/v1/write"), &all).await;
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&dir);
        let p_rate = pok as f64 / psecs;
        println!("prometheus: {p_rate:>12.0} samples/s ({psecs:.2} s)");
        println!("ratio faultline/prometheus: {:.2}x", f_rate / p_rate);
    });
}
