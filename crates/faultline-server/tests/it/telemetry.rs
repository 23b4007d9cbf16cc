//! Telemetry ingest behind the receivers, as the server wires it
//! (`faultline_server::ingest`): when a queue behind the receivers is full —
//! the detector queue, the engine's queue — remote-write senders are told
//! (503 + Retry-After) instead of being answered 204 while their samples are
//! dropped.
//!
//! Time is tokio's paused clock: `settle` returns once every other task is
//! waiting, so the pipeline has done all it can without real sleeps.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use faultline_core::Timestamp;
use faultline_core::signal::Signal;
use faultline_engine::{Engine, Event};
use faultline_receivers::prompb;
use faultline_server::Config;
use faultline_server::clock::FixedClock;
use prost::Message;
use tower::ServiceExt;

const NOW: i64 = 1_800_000_000_000;

/// One series with `samples` samples, snappy-compressed.
fn remote_write_body(series: usize, samples: usize) -> Vec<u8> {
    let req = prompb::WriteRequest {
        timeseries: vec![prompb::TimeSeries {
            labels: vec![
                prompb::Label { name: "__name__".into(), value: "http_requests_total".into() },
                prompb::Label { name: "job".into(), value: format!("job-{series}") },
            ],
            samples: (0..samples).map(|i| prompb::Sample { value: i as f64, timestamp: NOW - 60_000 + i as i64 }).collect(),
        }],
    };
    // Compressing a buffer in memory cannot fail.
    snap::raw::Encoder::new().compress_vec(&req.encode_to_vec()).unwrap()
}

/// The one place remote-write is posted from here (add the ingest token
/// here when ingest requires one).
async fn post_remote_write(router: &axum::Router, body: Vec<u8>) -> axum::response::Response {
    let req = Request::builder()
        .method("POST")
        .uri("/api/v1/write")
        .header(header::CONTENT_TYPE, "application/x-protobuf")
        .header(header::CONTENT_ENCODING, "snappy")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(Body::from(body))
        .unwrap();
    router.clone().oneshot(req).await.unwrap()
}

/// Lets every other task run until it waits (paused clock: the runtime
/// advances time only when nothing else can run).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

fn metric_signals(event: Event) -> usize {
    match event {
        Event::Signals(signals) => signals.iter().filter(|s| matches!(s, Signal::Metric(_))).count(),
        _ => 0,
    }
}

#[tokio::test(start_paused = true)]
async fn remote_write_is_refused_while_the_engine_queue_is_full_and_no_accepted_sample_is_dropped() {
    const SAMPLES: usize = 100;
    let config = Config { engine_queue: 1, ..Config::default() };
    // The engine is not running: its queue of one event fills and stays full.
    let (engine, mut queue) = Engine::channel(config.engine_queue);
    let mut registry = prometheus_client::registry::Registry::default();
    // Backpressure, not authentication, is under test: the receivers are open here.
    let open = faultline_receivers::auth::IngestAuth::Open;
    let ingest = faultline_server::ingest::start(&config, open, Default::default(), engine, Arc::new(FixedClock(Timestamp::from_millis(NOW))), &mut registry);
    let router = ingest.router();

    let (mut accepted, mut refused) = (0usize, None);
    for i in 0..2000 {
        let r = post_remote_write(&router, remote_write_body(i, SAMPLES)).await;
        match r.status() {
            StatusCode::NO_CONTENT => accepted += SAMPLES,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                assert!(r.headers().contains_key(header::RETRY_AFTER), "backpressure says when to retry");
                refused = Some(i);
                break;
            }
            other => panic!("remote-write answered {other}"),
        }
        settle().await;
    }
    let refused_at = refused.unwrap_or_else(|| panic!("{accepted} samples were answered 204 while the engine queue stayed full; none was refused"));
    // Refused only once the queues in between are full, not at once.
    assert!(refused_at > 10, "refused at request {refused_at}");

    // The engine catches up: every sample answered 204 reaches it.
    let mut delivered = 0;
    for _ in 0..100_000 {
        while let Ok(event) = queue.try_recv() {
            delivered += metric_signals(event);
        }
        if delivered >= accepted {
            break;
        }
        settle().await;
    }
    assert_eq!(delivered, accepted, "samples answered 204 but never handed to the engine");
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(text.contains("faultline_ingest_signals_dropped_total 0"), "{text}");
}

/// The engine queue is sized in events and one bridged event holds up to
/// 512 signals: a metric flood the detectors were slower at than the
/// receivers parked ~1 GB there. The bridge now waits for the engine after
/// every 16,384 signals it handed over.
#[tokio::test(start_paused = true)]
async fn the_bridge_waits_for_the_engine_after_its_signal_budget() {
    const SAMPLES: usize = 100;
    let config = Config::default();
    let (engine, mut queue) = Engine::channel(config.engine_queue);
    let mut registry = prometheus_client::registry::Registry::default();
    // The bridge, not authentication, is under test: the receivers are open here.
    let open = faultline_receivers::auth::IngestAuth::Open;
    let ingest = faultline_server::ingest::start(&config, open, Default::default(), engine, Arc::new(FixedClock(Timestamp::from_millis(NOW))), &mut registry);
    let router = ingest.router();
    let mut accepted = 0;
    for i in 0..300 {
        if post_remote_write(&router, remote_write_body(i, SAMPLES)).await.status() != StatusCode::NO_CONTENT {
            break;
        }
        accepted += SAMPLES;
        settle().await;
    }
    assert!(accepted > 20_000, "{accepted}");
    // Nothing answers the engine's side yet: what waits there is bounded.
    let (mut before_flush, mut flush) = (0, None);
    while let Ok(event) = queue.try_recv() {
        match event {
            Event::Flush(reply) => {
                flush = Some(reply);
                break;
            }
            e => before_flush += metric_signals(e),
        }
    }
    let reply = flush.expect("the bridge asked the engine to catch up");
    assert!((16_384..16_384 + 512).contains(&before_flush), "{before_flush} signals bridged before waiting");
    settle().await;
    assert!(queue.try_recv().is_err(), "the bridge waits for the answer");
    // Answered: the bridge goes on.
    let _ = reply.send(());
    settle().await;
    assert!(queue.try_recv().is_ok());
}
