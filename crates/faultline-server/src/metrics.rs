//! Faultline's own metrics, in Prometheus text exposition at `GET /metrics`.
//!
//! One explicit `prometheus_client` registry per `App` (no global recorder),
//! so several servers in one test process do not share counters. Names follow
//! `faultline_<subsystem>_<name>_<unit>[_total]`. Not here: telemetry about
//! the systems Faultline watches — that is ingest, not self-monitoring.

use std::sync::Arc;

use faultline_store::{Fatal, StoreHealth};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route template (`/api/v1/incidents/{id}`), never the raw path, so
    /// cardinality stays bounded.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthLabels {
    pub outcome: &'static str,
}

/// `faultline_auth_failures_total{outcome}`.
pub type AuthFailures = Family<AuthLabels, Counter>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabels {
    /// A bounded table: `detector:<name>`, `correlator_members`, … (a fixed set).
    pub table: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub kind: &'static str,
}

pub struct Metrics {
    pub registry: Registry,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_request_duration: Family<RequestLabels, Histogram>,
    pub auth_failures: AuthFailures,
    pub timeline_events: Family<EventLabels, Counter>,
    pub incidents_opened: Counter,
    pub alerts_received: Counter,
    pub alerts_rejected: Counter,
    /// Entries the engine's bounded tables evicted (least recently seen first).
    pub bounds_evicted: Family<TableLabels, Counter>,
    /// Where `bounds_evicted` is read from (set once the engine exists).
    pub engine_bounds: std::sync::OnceLock<faultline_engine::BoundsView>,
}

impl Metrics {
    pub fn new() -> Metrics {
        // Unprefixed registry with `faultline_` spelled out in each name, because
        // the receivers register names that already carry the prefix.
        let mut registry = Registry::default();
        let http_requests = Family::<RequestLabels, Counter>::default();
        let http_request_duration = Family::<RequestLabels, Histogram>::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.5, 12)));
        let auth_failures = Family::<AuthLabels, Counter>::default();
        let timeline_events = Family::<EventLabels, Counter>::default();
        let incidents_opened = Counter::default();
        let alerts_received = Counter::default();
        let alerts_rejected = Counter::default();
        registry.register("faultline_http_requests", "HTTP requests answered", http_requests.clone());
        registry.register("faultline_http_request_duration_seconds", "HTTP request latency", http_request_duration.clone());
        registry.register("faultline_auth_failures", "Requests refused by authentication or authorization", auth_failures.clone());
        registry.register("faultline_timeline_events", "Incident timeline events recorded", timeline_events.clone());
        registry.register("faultline_incidents_opened", "Incidents opened", incidents_opened.clone());
        registry.register("faultline_alerts_received", "External alerts accepted for correlation", alerts_received.clone());
        registry.register("faultline_alerts_rejected", "External alert requests rejected (bad payload, auth, backpressure)", alerts_rejected.clone());
        let bounds_evicted = Family::<TableLabels, Counter>::default();
        registry.register(
            "faultline_bounds_evicted",
            "Entries evicted from the engine's bounded tables (detector state, correlator members) to stay under their caps",
            bounds_evicted.clone(),
        );
        Metrics {
            registry,
            http_requests,
            http_request_duration,
            auth_failures,
            timeline_events,
            incidents_opened,
            alerts_received,
            alerts_rejected,
            bounds_evicted,
            engine_bounds: std::sync::OnceLock::new(),
        }
    }

    /// Adds the store's write health, read at each scrape:
    /// `faultline_store_write_failures_total{reason}` (writes refused because
    /// the database could not take them: disk_full, io_error, …),
    /// `faultline_store_connections_discarded_total` and
    /// `faultline_store_writable` (0 while writes fail).
    pub fn register_store(&mut self, health: Arc<StoreHealth>) {
        self.registry.register_collector(Box::new(StoreHealthCollector(health)));
    }

    pub fn render(&self) -> String {
        if let Some(view) = self.engine_bounds.get() {
            // The view holds totals; the counters catch up to them.
            for (table, total) in view.snapshot() {
                let c = self.bounds_evicted.get_or_create(&TableLabels { table });
                c.inc_by(total.saturating_sub(c.get()));
            }
        }
        let mut out = String::new();
        // Encoding into a String cannot fail (fmt::Write on String is infallible).
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Debug)]
struct StoreHealthCollector(Arc<StoreHealth>);

impl Collector for StoreHealthCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let health = &self.0;
        let template = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "faultline_store_write_failures",
            "Writes refused (503) because the database could not take them, by reason",
            None,
            template.metric_type(),
        )?;
        for reason in Fatal::ALL {
            ConstCounter::new(health.failures(reason)).encode(family.encode_family(&ReasonLabels { reason: reason.as_str() })?)?;
        }
        let discarded = ConstCounter::new(health.connections_discarded());
        discarded.encode(encoder.encode_descriptor(
            "faultline_store_connections_discarded",
            "Database connections closed instead of returned to the pool (after a fatal error or a failed commit)",
            None,
            discarded.metric_type(),
        )?)?;
        let writable = ConstGauge::new(i64::from(health.failing().is_none()));
        writable.encode(encoder.encode_descriptor(
            "faultline_store_writable",
            "1 while database writes commit, 0 from a write that failed for want of disk, I/O or connection until one commits",
            None,
            writable.metric_type(),
        )?)?;
        Ok(())
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}
