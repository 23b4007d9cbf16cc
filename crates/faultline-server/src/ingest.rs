//! Wiring of the telemetry receivers (`faultline-receivers`) into the server:
//! the decoded signals flow into the correlation engine, and the learned
//! dependency graph becomes the engine's topology.
//!
//! What it is: a bridge task (receivers' bounded signal queue → engine
//! queue, in batches, waiting for room so backpressure reaches the senders;
//! the graph's edges → `Event::Topology` every few seconds) and the optional separate OTLP listeners. What it is not:
//! protocol decoding (the receivers crate) or detection (the core).

use std::time::Duration as StdDuration;

use faultline_core::Duration;
use faultline_core::correlate::Topology;
use faultline_engine::{EngineHandle, Event};
use faultline_receivers::{Ingest, IngestConfig};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use std::sync::Arc;

use crate::Config;
use crate::clock::Clock;

/// Signals handed to the engine per batch, at most.
const BATCH: usize = 512;
/// Telemetry signals the bridge lets wait in the engine's queue before it
/// waits for the engine to take them in (`EngineHandle::flush`). The engine
/// queue is sized in events (`engine_queue`, 10,000), and one event here is
/// up to `BATCH` signals: without this, a metric flood the detectors are
/// slower at than the receivers parked up to 5M signals there (≈ 1 GB).
const MAX_BRIDGED_SIGNALS: usize = 16 * 1024;
/// How often the engine's topology is refreshed from the learned graph.
const TOPOLOGY_EVERY: StdDuration = StdDuration::from_secs(5);
/// How much graph history the topology covers.
const TOPOLOGY_SPAN: Duration = Duration::from_mins(60);

/// Starts the receivers and the bridge into the engine. Must run inside a
/// tokio runtime (the receivers spawn their consumer).
pub fn start(
    config: &Config,
    auth: faultline_receivers::auth::IngestAuth,
    bodies: faultline_receivers::inflight::BodyBudget,
    engine: EngineHandle,
    clock: Arc<dyn Clock>,
    registry: &mut Registry,
) -> Ingest {
    let (tx, mut rx) = mpsc::channel(8192);
    let graph_clock = clock.clone();
    let ingest = Ingest::new(IngestConfig {
        auth,
        bodies,
        request_timeout: config.ingest_request_timeout,
        signals: Some(tx),
        tick_interval: config.tick_interval,
        clock: faultline_receivers::IngestClock::new(move || graph_clock.now()),
        ..IngestConfig::default()
    });
    let refresh_every = TOPOLOGY_EVERY.min(config.tick_interval * 5);
    let flows = config.response.as_ref().map(|r| r.setup.catalogue.flows.clone()).unwrap_or_default();
    ingest.register_metrics(registry);
    let graph = ingest.clone();
    tokio::spawn(async move {
        let mut refresh = tokio::time::interval(refresh_every);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut known_edges = 0usize;
        let mut bridged = 0usize;
        loop {
            tokio::select! {
                first = rx.recv() => {
                    let Some(first) = first else { break };
                    let mut batch = vec![first];
                    while batch.len() < BATCH {
                        match rx.try_recv() {
                            Ok(s) => batch.push(s),
                            Err(_) => break,
                        }
                    }
                    // A full engine queue is waited out, not dropped: while
                    // this waits the signal queue fills, then the receivers'
                    // queue, and senders are answered 429/503 with
                    // Retry-After (gRPC RESOURCE_EXHAUSTED) for what cannot
                    // be taken, so nothing answered as accepted is lost here.
                    let n = batch.len();
                    if engine.send(Event::Signals(batch)).await.is_err() {
                        break;
                    }
                    bridged += n;
                    if bridged >= MAX_BRIDGED_SIGNALS {
                        // Everything sent so far is processed once this returns
                        // (an unanswered flush is no reason to stop: a stopped
                        // engine fails the next send).
                        let _ = engine.flush().await;
                        bridged = 0;
                    }
                }
                _ = refresh.tick() => {
                    let now = clock.now();
                    let edges = graph.edges(now - TOPOLOGY_SPAN, now + Duration::from_secs(60));
                    if edges.len() != known_edges {
                        known_edges = edges.len();
                        let topology = Topology::new(edges.iter().map(|e| e.interaction()), flows.clone());
                        let _ = engine.try_send(Event::Topology(topology));
                    }
                }
            }
        }
    });
    ingest
}

/// Binds and serves the separate OTLP listeners from the config, under the
/// shared connection bounds (`serve`). Fails if a
/// configured address cannot be bound (a user who asked for 4317 must know).
pub async fn serve_listeners(config: &Config, ingest: &Ingest, gate: &crate::serve::Gate, stop: watch::Receiver<bool>) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut tasks = Vec::new();
    if let Some(addr) = config.otlp_http_listen {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen for OTLP/HTTP on {addr}: {e}"))?;
        tracing::info!(addr = %listener.local_addr()?, "OTLP/HTTP listening");
        let router = ingest.router();
        let (mut stop, gate) = (stop.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            crate::serve::serve(listener, router, gate, shutdown).await;
        }));
    }
    if let Some(addr) = config.otlp_grpc_listen {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen for OTLP/gRPC on {addr}: {e}"))?;
        tracing::info!(addr = %listener.local_addr()?, "OTLP/gRPC listening");
        let ingest = ingest.clone();
        let (mut stop, mut accept_stop, gate) = (stop.clone(), stop.clone(), gate.clone());
        // Connections are admitted under the shared cap and idle timeout
        // (`serve::Gate`) before tonic sees them.
        let (tx, rx) = mpsc::channel(64);
        tasks.push(tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => stream,
                        Err(e) => {
                            tracing::warn!(error = %e, "OTLP/gRPC accept failed");
                            // Back off (out of descriptors) rather than spin.
                            tokio::time::sleep(StdDuration::from_millis(50)).await;
                            continue;
                        }
                    },
                    () = async { let _ = accept_stop.wait_for(|s| *s).await; } => break,
                };
                if let Some(conn) = gate.admit(stream)
                    && tx.send(conn).await.is_err()
                {
                    break;
                }
            }
        }));
        tasks.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            if let Err(e) = ingest.serve_grpc_connections(rx, shutdown).await {
                tracing::error!(error = %e, "OTLP/gRPC listener failed");
            }
        }));
    }
    Ok(tasks)
}

/// The `engine_state` row the learned graph is kept in across restarts.
pub const GRAPH_STATE: &str = "graph";

/// How often the learned graph is saved while running (and once more at
/// shutdown), in ticks: a crash loses at most this much of it.
const GRAPH_SAVE_TICKS: u32 = 60;

/// Puts the graph saved by an earlier run back (before traffic arrives), so
/// `faultline graph` and the correlator's topology survive a restart. An
/// unreadable save is logged and ignored: the graph is derived data.
pub async fn restore_graph(store: &dyn faultline_store::Store, ingest: &Ingest, now: faultline_core::Timestamp) {
    match store.load_state(GRAPH_STATE).await {
        Ok(Some(json)) => match serde_json::from_str(&json) {
            Ok(snapshot) => {
                let r = ingest.restore_graph(snapshot, now);
                tracing::info!(services = r.services, edges = r.edges, windows = r.windows, skipped = r.skipped, "learned graph restored");
            }
            Err(e) => tracing::warn!(error = %e, "saved graph unreadable; learning it afresh"),
        },
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the saved graph; learning it afresh"),
    }
}

async fn save_graph(store: &dyn faultline_store::Store, ingest: &Ingest, now: faultline_core::Timestamp) {
    let snapshot = ingest.save_graph(now);
    match serde_json::to_string(&snapshot) {
        Ok(json) => {
            if let Err(e) = store.save_state(GRAPH_STATE, &json, now).await {
                tracing::warn!(error = %e, "could not save the learned graph");
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not encode the learned graph"),
    }
}

/// Saves the learned graph every `GRAPH_SAVE_TICKS` ticks and once more
/// when `stop` turns true.
pub fn keep_graph(
    store: Arc<dyn faultline_store::Store>,
    ingest: Ingest,
    clock: Arc<dyn Clock>,
    tick: StdDuration,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(tick * GRAPH_SAVE_TICKS);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        every.tick().await;
        loop {
            tokio::select! {
                _ = every.tick() => save_graph(store.as_ref(), &ingest, clock.now()).await,
                // The guard `wait_for` returns is not Send: drop it at once.
                () = async { let _ = stop.wait_for(|s| *s).await; } => break,
            }
        }
        save_graph(store.as_ref(), &ingest, clock.now()).await;
    })
}
