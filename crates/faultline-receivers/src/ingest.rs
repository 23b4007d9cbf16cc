//! The ingest pipeline: a bounded queue of decoded batches, one consumer task
//! that feeds the core `DependencyGraph` (and ticks it once a second), the
//! counters rendered into Prometheus `/metrics`, and the graph queries.
//!
//! Backpressure: receivers `try_send` into the queue; a full queue is
//! answered with a retryable error (HTTP 429/503 + Retry-After, gRPC
//! RESOURCE_EXHAUSTED/UNAVAILABLE) instead of buffering. The consumer waits
//! for room in the detector queue (`IngestConfig::signals`) rather than
//! dropping signals, so a full queue behind it fills this one and senders
//! are told in the same way: nothing answered as accepted is dropped for
//! want of room. The queue is sized in bytes as well as batches: memory is
//! bounded by `queue_max_bytes` (plus one batch of at most
//! `max_decoded_bytes` taken into an empty queue, and the batch being
//! forwarded) plus the graph's own limits — not `queue_capacity ×
//! max_decoded_bytes` (8 GiB).
//!
//! Not here: protocol decoding (`traces.rs`, `metrics.rs`) or routing
//! (`http.rs`, `grpc.rs`).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration as StdDuration, SystemTime, UNIX_EPOCH};

use faultline_core::catalogue::Catalogue;
use faultline_core::graph::{
    CatalogueDrift, DependencyGraph, DiffThresholds, EdgeSummary, GraphConfig, GraphCounters, GraphDiff, GraphSnapshot, GraphView, MemoryStats, RestoreReport,
    ServiceView, Span,
};
use faultline_core::signal::{EdgeWindow, LogEvent, MetricPoint, Signal};
use faultline_core::time::Timestamp;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};

/// Settings of the ingest pipeline. `Default` gives the documented defaults.
#[derive(Clone, Debug)]
pub struct IngestConfig {
    pub graph: GraphConfig,
    /// Batches (one per request) the queue holds before answering with backpressure (default 256).
    pub queue_capacity: usize,
    /// Bytes the queued batches may hold in all before answering with
    /// backpressure (default 32 MiB): what bounds the queue's memory, since
    /// one batch may be up to `max_decoded_bytes`. A batch larger than this
    /// is still taken when the queue is empty.
    pub queue_max_bytes: usize,
    /// Largest request body accepted, compressed (default 8 MiB).
    pub max_body_bytes: usize,
    /// Largest body after gzip/snappy decompression (default 32 MiB).
    pub max_decoded_bytes: usize,
    /// Who may send (`auth::IngestAuth`): open by default for library
    /// users; the server always asks its token store unless told not to.
    pub auth: crate::auth::IngestAuth,
    /// Request bytes being read and decoded at once, over every HTTP ingest
    /// request (and the API's, when the server passes the same budget):
    /// 64 MiB by default (`inflight`).
    pub bodies: crate::inflight::BodyBudget,
    /// Seconds in the Retry-After / RetryInfo hint on backpressure (default 1).
    pub retry_after_secs: u32,
    /// A request taking longer than this, reading its body included, is
    /// answered 408 (default 60 s): a slow body cannot hold a request open.
    pub request_timeout: StdDuration,
    /// How often the graph is ticked (default 1 s).
    pub tick_interval: StdDuration,
    /// Where closed edge windows, metric points and error logs go for the
    /// detectors. The consumer waits for room (backpressure reaches the
    /// senders through the ingest queue); only a closed channel drops, and
    /// that is counted.
    pub signals: Option<mpsc::Sender<Signal>>,
    /// What "now" is for the graph (pairing deadlines, window closing). The
    /// wall clock by default; the demo runs the whole server on an
    /// accelerated clock and passes it here.
    pub clock: IngestClock,
}

/// The graph's source of "now".
#[derive(Clone)]
pub struct IngestClock(Arc<dyn Fn() -> Timestamp + Send + Sync>);

impl IngestClock {
    pub fn new(f: impl Fn() -> Timestamp + Send + Sync + 'static) -> IngestClock {
        IngestClock(Arc::new(f))
    }

    pub fn wall() -> IngestClock {
        IngestClock::new(wall_now)
    }

    pub fn now(&self) -> Timestamp {
        (self.0)()
    }
}

impl Default for IngestClock {
    fn default() -> IngestClock {
        IngestClock::wall()
    }
}

impl std::fmt::Debug for IngestClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IngestClock")
    }
}

impl Default for IngestConfig {
    fn default() -> IngestConfig {
        IngestConfig {
            graph: GraphConfig::default(),
            queue_capacity: 256,
            queue_max_bytes: 32 << 20,
            max_body_bytes: 8 << 20,
            max_decoded_bytes: 32 << 20,
            auth: crate::auth::IngestAuth::Open,
            bodies: crate::inflight::BodyBudget::default(),
            retry_after_secs: 1,
            request_timeout: StdDuration::from_secs(60),
            tick_interval: StdDuration::from_secs(1),
            signals: None,
            clock: IngestClock::wall(),
        }
    }
}

pub(crate) enum Batch {
    Spans(Vec<Span<'static>>),
    Metrics(Vec<MetricPoint>),
    Logs(Vec<LogEvent>),
    /// A decompressed, already validated remote-write `WriteRequest`: the
    /// consumer walks it again without allocating per sample.
    RemoteWrite(Vec<u8>),
    Flush(oneshot::Sender<()>),
}

impl Batch {
    /// What the batch holds in memory, roughly: its structs and the strings
    /// they own (for the queue's byte budget, not exact accounting).
    fn weight(&self) -> usize {
        fn opt(s: &Option<std::borrow::Cow<'_, str>>) -> usize {
            s.as_ref().map_or(0, |s| s.len())
        }
        match self {
            Batch::Spans(spans) => spans
                .iter()
                .map(|s| {
                    let a = &s.attributes;
                    std::mem::size_of::<Span<'static>>()
                        + s.name.len()
                        + s.service.len()
                        + s.links.len() * std::mem::size_of::<faultline_core::graph::SpanContext>()
                        + opt(&a.peer_service)
                        + opt(&a.server_address)
                        + opt(&a.url)
                        + opt(&a.db_system)
                        + opt(&a.messaging_system)
                        + opt(&a.messaging_destination)
                        + opt(&a.error_type)
                        + opt(&a.availability_zone)
                })
                .sum(),
            Batch::Metrics(points) => points
                .iter()
                .map(|p| std::mem::size_of::<MetricPoint>() + p.name.len() + p.labels.iter().map(|(k, v)| 48 + k.len() + v.len()).sum::<usize>())
                .sum(),
            Batch::Logs(events) => {
                events.iter().map(|e| std::mem::size_of::<LogEvent>() + e.severity.len() + e.body.len() + e.trace_id.as_ref().map_or(0, String::len)).sum()
            }
            Batch::RemoteWrite(raw) => raw.len(),
            Batch::Flush(_) => 0,
        }
    }
}

pub(crate) type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// Prometheus metrics of the receivers (registered by [`Ingest::register_metrics`]).
#[derive(Clone, Default)]
pub(crate) struct IngestMetrics {
    /// Requests by transport (http/grpc), signal (traces/metrics/logs/remote_write) and outcome.
    pub requests: Family<Labels, Counter>,
    /// Records by signal and outcome (accepted/rejected).
    pub records: Family<Labels, Counter>,
    /// Dependency-graph events by kind (see `GraphCounters`).
    pub graph_events: Family<Labels, Counter>,
    pub signals_dropped: Counter,
    pub queue_depth: Gauge,
    /// Bytes held by queued batches (`Batch::weight`).
    pub queue_bytes: Gauge,
}

impl IngestMetrics {
    pub fn request(&self, transport: &str, signal: &str, outcome: &str) {
        self.requests.get_or_create(&labels(&[("transport", transport), ("signal", signal), ("outcome", outcome)])).inc();
    }
    pub fn records(&self, signal: &str, outcome: &str, n: u64) {
        if n > 0 {
            self.records.get_or_create(&labels(&[("signal", signal), ("outcome", outcome)])).inc_by(n);
        }
    }
    fn sum_requests(&self, pred: impl Fn(&str, &str, &str) -> bool) -> u64 {
        let mut total = 0;
        for t in ["http", "grpc"] {
            for s in ["traces", "metrics", "logs", "remote_write"] {
                for o in OUTCOMES {
                    if pred(t, s, o) {
                        total += self.requests.get(&labels(&[("transport", t), ("signal", s), ("outcome", o)])).map_or(0, |c| c.get());
                    }
                }
            }
        }
        total
    }
}

pub(crate) const OUTCOMES: &[&str] = &["ok", "bad_payload", "too_large", "backpressure", "unavailable", "unauthorized", "forbidden", "unsupported_media_type"];

/// A snapshot of the receivers' counters (what `/metrics` shows).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestStats {
    pub requests_ok: u64,
    /// Requests refused because the payload could not be decoded.
    pub bad_payloads: u64,
    pub too_large: u64,
    pub backpressure: u64,
    pub unauthorized: u64,
    pub spans_accepted: u64,
    pub records_rejected: u64,
    pub metric_points_accepted: u64,
    pub log_records_accepted: u64,
    pub graph: GraphCounters,
}

pub(crate) struct Shared {
    pub cfg: IngestConfig,
    pub graph: Mutex<DependencyGraph>,
    pub metrics: IngestMetrics,
    last_counters: Mutex<GraphCounters>,
    /// Bytes of the batches queued and not yet consumed (`Batch::weight`).
    queued_bytes: std::sync::atomic::AtomicUsize,
}

/// The receivers and the live dependency graph they feed. Cheap to clone
/// (all clones share one queue and one graph). Create it inside a tokio
/// runtime: `new` spawns the consumer task, which ends when every clone is
/// dropped.
#[derive(Clone)]
pub struct Ingest {
    pub(crate) tx: mpsc::Sender<Batch>,
    pub(crate) shared: Arc<Shared>,
}

fn wall_now() -> Timestamp {
    let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    Timestamp::from_millis(ms)
}

impl Ingest {
    pub fn new(cfg: IngestConfig) -> Ingest {
        let (ingest, consumer) = Ingest::unstarted(cfg);
        tokio::spawn(consumer);
        ingest
    }

    /// Like [`Ingest::new`], but returns the consumer task for the caller to
    /// spawn (or not yet: until it runs, the queue only fills).
    pub fn unstarted(cfg: IngestConfig) -> (Ingest, impl Future<Output = ()> + Send + 'static) {
        let (tx, rx) = mpsc::channel(cfg.queue_capacity.max(1));
        let shared = Arc::new(Shared {
            graph: Mutex::new(DependencyGraph::new(cfg.graph.clone())),
            cfg,
            metrics: IngestMetrics::default(),
            last_counters: Mutex::new(GraphCounters::default()),
            queued_bytes: std::sync::atomic::AtomicUsize::new(0),
        });
        (Ingest { tx, shared: shared.clone() }, consume(rx, shared))
    }

    pub fn config(&self) -> &IngestConfig {
        &self.shared.cfg
    }

    /// Registers the receivers' metrics (`faultline_ingest_*`, `faultline_graph_*`).
    pub fn register_metrics(&self, registry: &mut Registry) {
        let m = &self.shared.metrics;
        registry.register("faultline_ingest_requests", "Ingest requests by transport, signal and outcome", m.requests.clone());
        registry.register("faultline_ingest_records", "Ingested records by signal and outcome", m.records.clone());
        registry.register("faultline_graph_events", "Dependency-graph learner events (pairs, expiries, drops)", m.graph_events.clone());
        registry.register(
            "faultline_ingest_signals_dropped",
            "Signals dropped because the detector queue was closed (shutting down)",
            m.signals_dropped.clone(),
        );
        registry.register("faultline_ingest_queue_depth", "Batches waiting in the ingest queue", m.queue_depth.clone());
        registry.register("faultline_ingest_queue_bytes", "Bytes held by the batches waiting in the ingest queue", m.queue_bytes.clone());
    }

    /// Sends a batch without waiting; `Err` carries whether the queue is full (true) or closed.
    /// A batch that would take the queued bytes past `queue_max_bytes` is
    /// refused as full (unless the queue holds nothing: one oversized batch
    /// must not be refused for ever).
    pub(crate) fn offer(&self, b: Batch) -> Result<(), bool> {
        use std::sync::atomic::Ordering;
        let weight = b.weight();
        let budget = self.shared.cfg.queue_max_bytes;
        // Reserve first, so concurrent offers cannot all pass the check.
        let before = self.shared.queued_bytes.fetch_add(weight, Ordering::AcqRel);
        if before > 0 && before.saturating_add(weight) > budget {
            self.shared.queued_bytes.fetch_sub(weight, Ordering::AcqRel);
            return Err(true);
        }
        let sent = self.tx.try_send(b);
        if sent.is_err() {
            self.shared.queued_bytes.fetch_sub(weight, Ordering::AcqRel);
        }
        match sent {
            Ok(()) => {
                self.shared.metrics.queue_depth.set((self.tx.max_capacity() - self.tx.capacity()) as i64);
                self.shared.metrics.queue_bytes.set(self.shared.queued_bytes.load(Ordering::Acquire) as i64);
                Ok(())
            }
            Err(mpsc::error::TrySendError::Full(_)) => Err(true),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(false),
        }
    }

    /// Bytes held by queued batches now.
    pub fn queued_bytes(&self) -> usize {
        self.shared.queued_bytes.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Waits until everything queued before this call is in the graph.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Batch::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    fn graph(&self) -> MutexGuard<'_, DependencyGraph> {
        // A panic while holding the lock would poison it; the graph holds
        // only derived statistics, so keep serving what is there.
        self.shared.graph.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The learned graph as a bounded snapshot (`DependencyGraph::snapshot`),
    /// for the server to keep across a restart.
    pub fn save_graph(&self, now: Timestamp) -> GraphSnapshot {
        self.graph().snapshot(now)
    }

    /// Takes a snapshot from an earlier run back into the graph.
    pub fn restore_graph(&self, snapshot: GraphSnapshot, now: Timestamp) -> RestoreReport {
        self.graph().restore(snapshot, now)
    }

    /// The graph over `[from, to)` (`GET /api/v1/graph`).
    pub fn graph_snapshot(&self, from: Timestamp, to: Timestamp) -> GraphView {
        self.graph().graph(from, to)
    }

    /// Edges over `[from, to)`.
    pub fn edges(&self, from: Timestamp, to: Timestamp) -> Vec<EdgeSummary> {
        self.graph().edges(from, to)
    }

    /// Per-window edge statistics over `[from, to)`.
    pub fn edge_windows(&self, from: Timestamp, to: Timestamp) -> Vec<EdgeWindow> {
        self.graph().edge_windows(from, to)
    }

    /// One service (`GET /api/v1/services/{name}`); `None` if never seen.
    pub fn service(&self, name: &str, from: Timestamp, to: Timestamp) -> Option<ServiceView> {
        self.graph().service(name, from, to)
    }

    /// New, gone and changed edges from range `a` to range `b` (`GET /api/v1/graph/diff`).
    pub fn graph_diff(&self, a: (Timestamp, Timestamp), b: (Timestamp, Timestamp)) -> GraphDiff {
        self.graph().diff(a, b, &DiffThresholds::default())
    }

    /// Declared-but-unseen and seen-but-undeclared edges.
    pub fn drift(&self, catalogue: &Catalogue, from: Timestamp, to: Timestamp) -> CatalogueDrift {
        self.graph().drift(catalogue, from, to)
    }

    pub fn memory(&self) -> MemoryStats {
        self.graph().memory()
    }

    pub fn stats(&self) -> IngestStats {
        let m = &self.shared.metrics;
        let rec = |s: &str, o: &str| m.records.get(&labels(&[("signal", s), ("outcome", o)])).map_or(0, |c| c.get());
        IngestStats {
            requests_ok: m.sum_requests(|_, _, o| o == "ok"),
            bad_payloads: m.sum_requests(|_, _, o| o == "bad_payload"),
            too_large: m.sum_requests(|_, _, o| o == "too_large"),
            backpressure: m.sum_requests(|_, _, o| o == "backpressure" || o == "unavailable"),
            unauthorized: m.sum_requests(|_, _, o| o == "unauthorized"),
            spans_accepted: rec("traces", "accepted"),
            records_rejected: ["traces", "metrics", "logs", "remote_write"].iter().map(|s| rec(s, "rejected")).sum(),
            metric_points_accepted: rec("metrics", "accepted") + rec("remote_write", "accepted"),
            log_records_accepted: rec("logs", "accepted"),
            graph: self.graph().counters(),
        }
    }
}

/// Hands a signal to the detectors, waiting while their queue is full: the
/// ingest queue then fills and receivers answer with backpressure, instead
/// of accepting what would be dropped here.
async fn forward(shared: &Shared, s: Signal) {
    if let Some(tx) = &shared.cfg.signals
        && tx.send(s).await.is_err()
    {
        shared.metrics.signals_dropped.inc();
    }
}

fn publish_counters(shared: &Shared, c: GraphCounters) {
    let mut last = shared.last_counters.lock().unwrap_or_else(|p| p.into_inner());
    let pairs: [(&str, u64, u64); 19] = [
        ("spans_observed", c.spans_observed, last.spans_observed),
        ("spans_out_of_range", c.spans_out_of_range, last.spans_out_of_range),
        ("spans_invalid_service", c.spans_invalid_service, last.spans_invalid_service),
        ("calls_paired", c.calls_paired, last.calls_paired),
        ("calls_uninstrumented", c.calls_uninstrumented, last.calls_uninstrumented),
        ("client_halves_unpaired", c.client_halves_unpaired, last.client_halves_unpaired),
        ("server_halves_unpaired", c.server_halves_unpaired, last.server_halves_unpaired),
        ("join_buffer_evictions", c.join_buffer_evictions, last.join_buffer_evictions),
        ("retries_detected", c.retries_detected, last.retries_detected),
        ("services_dropped", c.services_dropped, last.services_dropped),
        ("interactions_aged_out", c.interactions_aged_out, last.interactions_aged_out),
        ("metric_points_observed", c.metric_points_observed, last.metric_points_observed),
        ("metric_series_dropped", c.metric_series_dropped, last.metric_series_dropped),
        ("late_after_emit", c.late_after_emit, last.late_after_emit),
        ("names_dropped", c.names_dropped, last.names_dropped),
        ("services_evicted", c.services_evicted, last.services_evicted),
        ("services_aged_out", c.services_aged_out, last.services_aged_out),
        ("interactions_evicted", c.interactions_evicted, last.interactions_evicted),
        ("metric_series_evicted", c.metric_series_evicted, last.metric_series_evicted),
    ];
    for (name, now, before) in pairs {
        if now > before {
            shared.metrics.graph_events.get_or_create(&labels(&[("event", name)])).inc_by(now - before);
        }
    }
    *last = c;
}

async fn consume(mut rx: mpsc::Receiver<Batch>, shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(shared.cfg.tick_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            b = rx.recv() => {
                let Some(b) = b else { break };
                shared.metrics.queue_depth.set(rx.len() as i64);
                // Out of the queue: its bytes no longer count against the budget.
                let left = shared.queued_bytes.fetch_sub(b.weight(), std::sync::atomic::Ordering::AcqRel).saturating_sub(b.weight());
                shared.metrics.queue_bytes.set(left as i64);
                // The graph lock is held only inside this block: forwarding
                // below may wait for room in the detector queue.
                let (signals, counters) = {
                    let mut g = shared.graph.lock().unwrap_or_else(|p| p.into_inner());
                    let t = shared.cfg.clock.now();
                    match b {
                        Batch::Spans(spans) => {
                            g.observe_spans(&spans, t);
                            (Vec::new(), Some(g.counters()))
                        }
                        Batch::Metrics(points) => {
                            for p in &points {
                                g.observe_metric(p, t);
                            }
                            (points.into_iter().map(Signal::Metric).collect(), None)
                        }
                        Batch::RemoteWrite(raw) => {
                            let forward_points = shared.cfg.signals.is_some();
                            let mut points = Vec::new();
                            let _ = crate::scan_remote_write(&raw, |name, labels, samples| {
                                // Labels must be sorted for the graph; senders sort them, but be safe.
                                if labels.windows(2).all(|w| w[0].0 < w[1].0) {
                                    g.observe_metric_samples(name, labels, None, samples, t);
                                } else {
                                    let mut l = labels.to_vec();
                                    l.sort_unstable();
                                    l.dedup_by(|a, b| a.0 == b.0);
                                    g.observe_metric_samples(name, &l, None, samples, t);
                                }
                                if forward_points {
                                    // Clipped like the graph's copy (and the OTLP decoder's):
                                    // the detectors hold what they are sent.
                                    use faultline_core::bounded::{MAX_LABEL_NAME_BYTES, MAX_LABEL_VALUE_BYTES, clip};
                                    let labels: std::collections::BTreeMap<String, String> = labels
                                        .iter()
                                        .map(|(k, v)| (clip(k, MAX_LABEL_NAME_BYTES).to_owned(), clip(v, MAX_LABEL_VALUE_BYTES).to_owned()))
                                        .collect();
                                    let name = clip(name, MAX_LABEL_NAME_BYTES);
                                    for &(at, value) in samples {
                                        points.push(Signal::Metric(MetricPoint { name: name.to_owned(), labels: labels.clone(), service: None, at, value }));
                                    }
                                }
                            });
                            (points, None)
                        }
                        Batch::Logs(events) => (events.into_iter().map(Signal::Log).collect(), None),
                        Batch::Flush(done) => {
                            let _ = done.send(());
                            (Vec::new(), None)
                        }
                    }
                };
                if let Some(counters) = counters {
                    publish_counters(&shared, counters);
                }
                for s in signals {
                    forward(&shared, s).await;
                }
            }
            _ = tick.tick() => {
                let (signals, counters) = {
                    let mut g = shared.graph.lock().unwrap_or_else(|p| p.into_inner());
                    (g.tick(shared.cfg.clock.now()), g.counters())
                };
                publish_counters(&shared, counters);
                for s in signals {
                    forward(&shared, s).await;
                }
            }
        }
    }
}
