//! The live dependency graph, learned from spans.
//!
//! [`DependencyGraph`] is a sans-IO state machine: `observe_spans(spans, now)`
//! and `observe_metric(point, now)` feed it, `tick(now)` expires joins, rolls
//! windows off and returns the closed [`EdgeWindow`]s as signals for the
//! detectors, and the query methods (`graph`, `service`, `diff`, `drift`)
//! answer the API. How it learns:
//!
//! - **Client/server pairs across services**: a CLIENT (or PRODUCER) span and
//!   the SERVER (or CONSUMER) span whose parent id (or link) is that span make
//!   one call `client.service → server.service`, operation = the server span's
//!   name (the destination name for messaging). Either half may arrive first;
//!   halves wait in a bounded join buffer for one to two join windows.
//! - **Uninstrumented dependencies**: a client span that never meets a server
//!   half (or names a database, which never emits spans) becomes a call to a
//!   node named from `peer.service`, `server.address`/`net.peer.name`, the URL
//!   host or `db.system` (see [`span::SpanAttributes`]).
//! - **Per interaction and fixed window** (default 10 s): requests, errors,
//!   timeouts, retries (`http.request.resend_count`, or a repeated client span
//!   under the same parent after a failed attempt), latency in a
//!   [`LatencySketch`] and in-flight at the window's end. Per service: ingress
//!   (its SERVER/CONSUMER spans). Metric points are windowed per service.
//! - **Bounded memory**: windows older than the retention are dropped,
//!   interactions, metric series and services unseen for `idle_timeout` age
//!   out. The tables are capped in total — `max_services`, `max_interactions`,
//!   `max_metric_series` — and a full table evicts its least recently seen
//!   entry to make room (an evicted service takes its interactions, ingress
//!   and series with it), so junk never locks a real newcomer out. Per
//!   service, at most `max_interactions_per_service` interactions and
//!   `max_metric_series_per_service` series; past them the service's own
//!   least recently seen one is evicted (one service's cardinality cannot
//!   push the others out, and a junk burst on a service cannot lock its
//!   real new interaction out either). Names and label values are
//!   clipped ([`crate::bounded`]); the join buffer holds at most
//!   `max_pending` halves. Every eviction and refusal is counted in
//!   [`GraphCounters`].
//!
//! Not here: decoding wire formats, threads, or the clock.

pub mod sketch;
pub mod span;
mod window;

mod persist;
mod query;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};

use crate::ids::ServiceName;
use crate::model::{Interaction, ServiceKind};
use crate::signal::{EdgeWindow, MetricPoint, Signal};
use crate::time::{Duration, Timestamp};

pub use persist::{GraphSnapshot, RestoreReport};
pub use query::{
    CatalogueDrift, DiffThresholds, EdgeChange, EdgeSummary, GraphDiff, GraphView, IngressSummary, MetricSeriesView, MetricWindowView, NodeView, ServiceView,
};
pub use sketch::LatencySketch;
pub use span::{AttrValue, Span, SpanAttributes, SpanContext, SpanId, SpanKind, SpanStatus, TraceId};
pub use window::WindowStats;

use window::{Series, align};

/// Tunables of the graph. `Default` gives the documented defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct GraphConfig {
    /// Window length (default 10 s).
    pub window: Duration,
    /// How long windows are kept (default 1 h).
    pub retention: Duration,
    /// How long a span half waits for its partner (default 15 s; halves are
    /// resolved after one to two join windows). Windows are emitted as
    /// signals once they are this much past their end.
    pub join_window: Duration,
    /// Interactions and services not seen for this long are forgotten (default 1 h).
    pub idle_timeout: Duration,
    /// Spans ending further than this in the future (clock skew) are rejected (default 5 min).
    pub max_future_skew: Duration,
    /// Most services (and uninstrumented dependencies) held; a new one
    /// evicts the least recently seen (default 10,000).
    pub max_services: usize,
    /// Most interactions held in total; a new one evicts the least recently
    /// seen (default 20,000).
    pub max_interactions: usize,
    /// Most metric series held in total; a new one evicts the least recently
    /// seen (default 50,000).
    pub max_metric_series: usize,
    /// Most interactions one service calls; more are refused (default 1,000).
    pub max_interactions_per_service: usize,
    /// Most metric series of one service; more are refused (default 5,000).
    pub max_metric_series_per_service: usize,
    /// Most span halves waiting in the join buffer.
    pub max_pending: usize,
    /// Most distinct operation and peer names remembered.
    pub max_names: usize,
}

impl Default for GraphConfig {
    fn default() -> GraphConfig {
        GraphConfig {
            window: Duration::from_secs(10),
            retention: Duration::from_mins(60),
            join_window: Duration::from_secs(15),
            idle_timeout: Duration::from_mins(60),
            max_future_skew: Duration::from_mins(5),
            max_services: 10_000,
            max_interactions: 20_000,
            max_metric_series: 50_000,
            max_interactions_per_service: 1_000,
            max_metric_series_per_service: 5_000,
            max_pending: 500_000,
            max_names: 1_000_000,
        }
    }
}

/// What the graph did with its input, for `/metrics`. All counters only grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GraphCounters {
    pub spans_observed: u64,
    /// Spans ending before the retention or too far in the future.
    pub spans_out_of_range: u64,
    /// Spans whose service name is empty, too long or has control characters.
    pub spans_invalid_service: u64,
    /// Calls from a client/producer half matched with a server/consumer half.
    pub calls_paired: u64,
    /// Calls to an uninstrumented dependency (named from client attributes).
    pub calls_uninstrumented: u64,
    /// Client halves that expired with no partner and nothing naming the peer.
    pub client_halves_unpaired: u64,
    /// Server halves that expired with no client half (the caller is not instrumented).
    pub server_halves_unpaired: u64,
    /// Halves resolved early because the join buffer was full.
    pub join_buffer_evictions: u64,
    pub retries_detected: u64,
    /// New services refused: `max_services` evicted services are still
    /// waiting for their join-buffer halves to resolve (two join windows).
    pub services_dropped: u64,
    /// Services evicted (least recently seen) to make room under `max_services`.
    pub services_evicted: u64,
    /// Services unseen for `idle_timeout`, forgotten.
    pub services_aged_out: u64,
    /// Interactions evicted (least recently seen) under `max_interactions`
    /// or `max_interactions_per_service`, or with an evicted service.
    pub interactions_evicted: u64,
    /// Metric series evicted (least recently seen) under `max_metric_series`
    /// or `max_metric_series_per_service`, or with an evicted service.
    pub metric_series_evicted: u64,
    pub interactions_aged_out: u64,
    pub metric_points_observed: u64,
    pub metric_series_dropped: u64,
    /// Calls recorded into a window after it had been emitted as a signal.
    pub late_after_emit: u64,
    /// Spans dropped because `max_names` distinct names were already known.
    pub names_dropped: u64,
}

/// Memory accounting, for benchmarks and `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    pub interactions: usize,
    pub interaction_windows: usize,
    pub interaction_window_bytes: usize,
    pub pending_halves: usize,
}

type Sid = u32;

/// FxHash-style hasher: the keys are span ids, small integers and short
/// names, and a keyed SipHash costs more than the rest of a span's update.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);
impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            // Invariant: chunks_exact yields 8-byte slices.
            self.add(u64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
        }
        let rem = chunks.remainder();
        if !rem.is_empty() {
            let mut b = [0u8; 8];
            b[..rem.len()].copy_from_slice(rem);
            self.add(u64::from_le_bytes(b) ^ (rem.len() as u64) << 59);
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}
impl FxHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}
pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;
type FxMap<K, V> = HashMap<K, V, FxBuild>;

fn fx<T: Hash>(t: T) -> u64 {
    let mut h = FxHasher::default();
    t.hash(&mut h);
    h.finish()
}

#[derive(Clone, Debug)]
pub(crate) struct ServiceEntry {
    pub name: ServiceName,
    pub kind: ServiceKind,
    /// Emits spans itself (rather than being named by its callers).
    pub instrumented: bool,
    pub last_seen_ms: i64,
    /// Interactions this service calls (for `max_interactions_per_service`).
    pub interactions: usize,
    pub metric_series: usize,
    /// False once evicted: the slot waits in quarantine until no join-buffer
    /// half can still name it, then is reused.
    pub live: bool,
    /// Edge slots with this service at either end, and its metric series'
    /// keys: an eviction removes them without scanning every table.
    edges: HashSet<u32, FxBuild>,
    series_keys: HashSet<u64, FxBuild>,
}

#[derive(Clone, Debug)]
pub(crate) struct EdgeSeries {
    pub caller: Sid,
    pub callee: Sid,
    pub op: NameId,
    pub series: Series<WindowStats>,
}

/// One metric window: count, sum, min, max and the last value.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricWindow {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
    pub last: f64,
    pub last_at_ms: i64,
}

#[derive(Clone, Debug)]
pub(crate) struct MetricSeries {
    pub service: Sid,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub series: Series<MetricWindow>,
}

type SpanKey = (TraceId, SpanId);
/// An interned name (operation or peer).
type NameId = u32;

/// Interned operation and peer names: edges are keyed by small integers and
/// the join buffer holds no strings. Bounded by `GraphConfig::max_names`.
#[derive(Default)]
pub(crate) struct Interner {
    ids: FxMap<Box<str>, NameId>,
    names: Vec<Box<str>>,
}

impl Interner {
    fn get_or_intern(&mut self, s: &str, cap: usize) -> Option<NameId> {
        if let Some(&i) = self.ids.get(s) {
            return Some(i);
        }
        if self.names.len() >= cap {
            return None;
        }
        let i = self.names.len() as NameId;
        self.names.push(s.into());
        self.ids.insert(s.into(), i);
        Some(i)
    }
    pub(crate) fn name(&self, i: NameId) -> &str {
        self.names.get(i as usize).map_or("", |b| b)
    }
}

/// A client or producer half waiting for its server/consumer partner(s).
#[derive(Clone, Copy, Debug)]
struct OutHalf {
    service: Sid,
    producer: bool,
    name: NameId,
    destination: Option<NameId>,
    start_ns: u64,
    end_ns: u64,
    error: bool,
    timeout: bool,
    retry: bool,
    paired: bool,
    /// The peer as the client's attributes name it, if they do.
    fallback: Option<(NameId, ServiceKind)>,
    trace: TraceId,
    /// `cloud.availability_zone` of the caller, if known.
    zone: Option<NameId>,
}

/// A server or consumer half waiting for its client/producer partner.
#[derive(Clone, Copy, Debug)]
struct InHalf {
    own: SpanKey,
    service: Sid,
    name: NameId,
    start_ns: u64,
    end_ns: u64,
    error: bool,
    timeout: bool,
    /// For a consumer: the queue it reads from, used if no producer shows up.
    queue: Option<(NameId, ServiceKind)>,
    zone: Option<NameId>,
}

/// The join buffer: two generations; halves move from `current` to
/// `previous` at each rotation and are resolved when `previous` is dropped.
#[derive(Default)]
struct Generation {
    outs: FxMap<SpanKey, OutHalf>,
    ins: FxMap<SpanKey, Vec<InHalf>>,
    ins_len: usize,
    /// Retry memory: hash of (trace, parent, caller, name, target) → attempts so far.
    attempts: FxMap<u64, Attempts>,
    /// Consumers that met at least one producer (they also wait under other links).
    paired_consumers: FxMap<SpanKey, ()>,
}

/// What the retry detector remembers of the attempts under one key.
#[derive(Clone, Copy, Debug)]
struct Attempts {
    /// Earliest end of a failed attempt (`u64::MAX`: none failed).
    failed_end: u64,
    /// The latest-starting attempt.
    last_span: SpanId,
    last_start: u64,
}

impl Generation {
    fn len(&self) -> usize {
        self.outs.len() + self.ins_len
    }
}

/// One call, resolved: ready to be counted in a window.
struct Call {
    caller: Sid,
    callee: Sid,
    operation: NameId,
    /// When the call completed (picks the window).
    at_ns: u64,
    start_ns: u64,
    latency_ms: f64,
    error: bool,
    timeout: bool,
    retry: bool,
    trace: TraceId,
    /// Zones of the two ends, when both are known.
    zones: Option<(NameId, NameId)>,
}

/// The dependency graph learner. See the module docs.
pub struct DependencyGraph {
    cfg: GraphConfig,
    services: Vec<ServiceEntry>,
    service_ids: FxMap<Box<str>, Sid>,
    pub(crate) names: Interner,
    edges: Vec<Option<EdgeSeries>>,
    free_edges: Vec<u32>,
    edge_ids: FxMap<(Sid, Sid, NameId), u32>,
    ingress: FxMap<Sid, Series<WindowStats>>,
    metrics: FxMap<(Sid, u64), MetricSeries>,
    current: Generation,
    previous: Generation,
    rotated_at_ms: i64,
    counters: GraphCounters,
    /// Least-recently-seen orders: (last seen ms, key).
    service_order: BTreeSet<(i64, Sid)>,
    edge_order: BTreeSet<(i64, u32)>,
    metric_order: BTreeSet<(i64, (Sid, u64))>,
    /// Evicted service slots and the rotation count at eviction: a slot is
    /// reused only after two rotations, when every half naming it is resolved.
    quarantine: VecDeque<(Sid, u64)>,
    free_sids: Vec<Sid>,
    rotations: u64,
}

impl Default for DependencyGraph {
    fn default() -> DependencyGraph {
        DependencyGraph::new(GraphConfig::default())
    }
}

/// A window's zone split with zone names, for signals.
pub(crate) fn zone_counts(names: &Interner, st: &WindowStats) -> Vec<crate::signal::ZoneCounts> {
    st.zones
        .iter()
        .map(|z| crate::signal::ZoneCounts {
            caller_zone: names.name(z.caller_zone).to_owned(),
            callee_zone: names.name(z.callee_zone).to_owned(),
            requests: z.requests,
            errors: z.errors,
            timeouts: z.timeouts,
        })
        .collect()
}

fn ns_to_ms(ns: u64) -> i64 {
    (ns / 1_000_000).min(i64::MAX as u64) as i64
}

use crate::bounded::clip as truncate;

/// The most bytes of a span name kept as an operation.
const MAX_OPERATION_LEN: usize = 128;

/// What a client span's attributes say about its peer: a name and a kind.
fn peer_of<'s>(span: &'s Span<'_>) -> Option<(&'s str, ServiceKind)> {
    let a = &span.attributes;
    let kind = if let Some(db) = a.db_system.as_deref() {
        match db {
            "redis" | "memcached" | "valkey" => ServiceKind::Cache,
            _ => ServiceKind::Database,
        }
    } else if a.messaging_system.is_some() || span.kind == SpanKind::Producer {
        ServiceKind::Queue
    } else {
        ServiceKind::External
    };
    let name = a
        .peer_service
        .as_deref()
        .or(a.server_address.as_deref())
        .or_else(|| a.url.as_deref().and_then(span::url_host))
        .or(a.db_system.as_deref())
        .or(a.messaging_destination.as_deref())
        .or(a.messaging_system.as_deref())?;
    Some((truncate(name, 256), kind))
}

impl DependencyGraph {
    pub fn new(cfg: GraphConfig) -> DependencyGraph {
        DependencyGraph {
            cfg,
            services: Vec::new(),
            service_ids: FxMap::default(),
            names: Interner::default(),
            edges: Vec::new(),
            free_edges: Vec::new(),
            edge_ids: FxMap::default(),
            ingress: FxMap::default(),
            metrics: FxMap::default(),
            current: Generation::default(),
            previous: Generation::default(),
            rotated_at_ms: i64::MIN,
            counters: GraphCounters::default(),
            service_order: BTreeSet::new(),
            edge_order: BTreeSet::new(),
            metric_order: BTreeSet::new(),
            quarantine: VecDeque::new(),
            free_sids: Vec::new(),
            rotations: 0,
        }
    }

    pub fn config(&self) -> &GraphConfig {
        &self.cfg
    }

    pub fn counters(&self) -> GraphCounters {
        self.counters
    }

    pub fn memory(&self) -> MemoryStats {
        let mut m = MemoryStats { pending_halves: self.current.len() + self.previous.len(), ..MemoryStats::default() };
        for e in self.edges.iter().flatten() {
            m.interactions += 1;
            m.interaction_windows += e.series.windows.len();
            // Slots the deque has allocated, plus every window's sketch buckets.
            m.interaction_window_bytes += e.series.windows.capacity() * std::mem::size_of::<window::Window<WindowStats>>()
                + e.series.windows.iter().map(|w| w.stats.latency.heap_bytes()).sum::<usize>();
        }
        m
    }

    fn window_ms(&self) -> i64 {
        self.cfg.window.as_millis().max(1)
    }

    fn intern_name(&mut self, s: &str) -> Option<NameId> {
        let id = self.names.get_or_intern(truncate(s, MAX_OPERATION_LEN.max(256)), self.cfg.max_names);
        if id.is_none() {
            self.counters.names_dropped += 1;
        }
        id
    }

    /// Interns a service; `None` if the name is invalid or the service limit is reached.
    fn intern_service(&mut self, name: &str, kind: ServiceKind, instrumented: bool, now_ms: i64) -> Option<Sid> {
        if let Some(&id) = self.service_ids.get(name) {
            let e = &mut self.services[id as usize];
            if now_ms > e.last_seen_ms {
                self.service_order.remove(&(e.last_seen_ms, id));
                self.service_order.insert((now_ms, id));
                e.last_seen_ms = now_ms;
            }
            if instrumented && !e.instrumented {
                e.instrumented = true;
                e.kind = ServiceKind::Service;
            }
            return Some(id);
        }
        let Ok(sn) = ServiceName::new(name) else {
            self.counters.spans_invalid_service += 1;
            return None;
        };
        if self.service_ids.len() >= self.cfg.max_services.max(1) {
            if self.quarantine.len() >= self.cfg.max_services.max(1) {
                // Bounds the dead slots: a flood of new names faster than the
                // join buffer turns over is refused for at most two join windows.
                self.counters.services_dropped += 1;
                return None;
            }
            // pop_first, then evict: an order entry never outlives its pop.
            if let Some((_, oldest)) = self.service_order.pop_first() {
                self.evict_service(oldest);
                self.counters.services_evicted += 1;
            }
        }
        while let Some(&(sid, at)) = self.quarantine.front()
            && self.rotations >= at + 2
        {
            self.quarantine.pop_front();
            self.free_sids.push(sid);
        }
        let kind = if instrumented { ServiceKind::Service } else { kind };
        let entry = ServiceEntry {
            name: sn,
            kind,
            instrumented,
            last_seen_ms: now_ms,
            interactions: 0,
            metric_series: 0,
            live: true,
            edges: HashSet::default(),
            series_keys: HashSet::default(),
        };
        let id = match self.free_sids.pop() {
            Some(id) => {
                self.services[id as usize] = entry;
                id
            }
            None => {
                self.services.push(entry);
                (self.services.len() - 1) as Sid
            }
        };
        self.service_ids.insert(name.into(), id);
        self.service_order.insert((now_ms, id));
        Some(id)
    }

    /// Forgets a service with its interactions (either end), ingress and
    /// metric series; its slot is quarantined until no half can name it.
    fn evict_service(&mut self, sid: Sid) {
        let e = &mut self.services[sid as usize];
        if !e.live {
            return;
        }
        e.live = false;
        self.service_order.remove(&(e.last_seen_ms, sid));
        self.service_ids.remove(e.name.as_str());
        let edges = std::mem::take(&mut e.edges);
        let keys = std::mem::take(&mut e.series_keys);
        self.counters.interactions_evicted += edges.len() as u64;
        self.counters.metric_series_evicted += keys.len() as u64;
        for idx in edges {
            self.remove_edge(idx);
        }
        for k in keys {
            self.remove_metric((sid, k));
        }
        self.ingress.remove(&sid);
        self.quarantine.push_back((sid, self.rotations));
    }

    /// Marks an interaction seen at `ms`, keeping its place in the eviction order.
    pub(crate) fn touch_edge(&mut self, idx: u32, ms: i64) {
        let Some(edge) = self.edges.get_mut(idx as usize).and_then(Option::as_mut) else { return };
        if edge.series.last_seen_ms != ms {
            self.edge_order.remove(&(edge.series.last_seen_ms, idx));
            self.edge_order.insert((ms, idx));
            edge.series.last_seen_ms = ms;
        }
    }

    /// Removes one interaction from every index.
    fn remove_edge(&mut self, idx: u32) {
        let Some(e) = self.edges.get_mut(idx as usize).and_then(Option::take) else { return };
        self.free_edges.push(idx);
        self.edge_ids.remove(&(e.caller, e.callee, e.op));
        self.edge_order.remove(&(e.series.last_seen_ms, idx));
        let caller = &mut self.services[e.caller as usize];
        caller.interactions = caller.interactions.saturating_sub(1);
        caller.edges.remove(&idx);
        self.services[e.callee as usize].edges.remove(&idx);
    }

    /// Removes one metric series from every index.
    fn remove_metric(&mut self, key: (Sid, u64)) {
        let Some(m) = self.metrics.remove(&key) else { return };
        self.metric_order.remove(&(m.series.last_seen_ms, key));
        let s = &mut self.services[key.0 as usize];
        s.metric_series = s.metric_series.saturating_sub(1);
        s.series_keys.remove(&key.1);
    }

    fn in_range(&self, at_ms: i64, now_ms: i64) -> bool {
        at_ms >= now_ms.saturating_sub(self.cfg.retention.as_millis()) && at_ms <= now_ms.saturating_add(self.cfg.max_future_skew.as_millis())
    }

    /// Feeds a batch of finished spans.
    pub fn observe_spans<'a, 'b: 'a, I>(&mut self, spans: I, now: Timestamp)
    where
        I: IntoIterator<Item = &'a Span<'b>>,
    {
        for s in spans {
            self.observe_span(s, now);
        }
    }

    /// Feeds one finished span.
    pub fn observe_span(&mut self, span: &Span<'_>, now: Timestamp) {
        let now_ms = now.as_millis();
        self.maybe_rotate(now_ms);
        self.counters.spans_observed += 1;
        if !self.in_range(ns_to_ms(span.end_unix_nanos), now_ms) {
            self.counters.spans_out_of_range += 1;
            return;
        }
        let Some(sid) = self.intern_service(&span.service, ServiceKind::Service, true, now_ms) else { return };
        let error = span.is_error();
        let timeout = span.is_timeout();
        match span.kind {
            SpanKind::Client | SpanKind::Producer => self.observe_out(span, sid, error, timeout, now_ms),
            SpanKind::Server | SpanKind::Consumer => {
                self.record_ingress(sid, span, error, timeout, now_ms);
                self.observe_in(span, sid, error, timeout, now_ms);
            }
            SpanKind::Internal => {}
        }
    }

    fn record_ingress(&mut self, sid: Sid, span: &Span<'_>, error: bool, timeout: bool, now_ms: i64) {
        let w = align(ns_to_ms(span.end_unix_nanos), self.window_ms());
        let series = self.ingress.entry(sid).or_insert_with(|| Series::new(now_ms));
        series.last_seen_ms = now_ms;
        let st = series.window_mut(w);
        st.requests += 1;
        st.errors += u64::from(error);
        st.timeouts += u64::from(timeout);
        st.latency.insert(span.duration_ms());
    }

    fn observe_out(&mut self, span: &Span<'_>, sid: Sid, error: bool, timeout: bool, now_ms: i64) {
        let producer = span.kind == SpanKind::Producer;
        let peer = peer_of(span);
        let retry = self.detect_retry(span, sid, error || timeout, peer.map(|p| p.0));
        let Some(name) = self.intern_name(truncate(&span.name, MAX_OPERATION_LEN)) else { return };
        // A database never emits spans: resolve at once.
        if span.attributes.db_system.is_some() && !producer {
            if let Some((peer, kind)) = peer
                && let Some(callee) = self.intern_service(peer, kind, false, now_ms)
            {
                self.counters.calls_uninstrumented += 1;
                let call = Call {
                    caller: sid,
                    callee,
                    operation: name,
                    at_ns: span.end_unix_nanos,
                    start_ns: span.start_unix_nanos,
                    latency_ms: span.duration_ms(),
                    error,
                    timeout,
                    retry,
                    trace: span.trace_id,
                    zones: None,
                };
                self.record_call(&call, now_ms);
            }
            return;
        }
        let destination = match span.attributes.messaging_destination.as_deref() {
            Some(d) if producer => self.intern_name(truncate(d, MAX_OPERATION_LEN)),
            _ => None,
        };
        let fallback = match peer {
            Some((p, kind)) => self.intern_name(p).map(|id| (id, kind)),
            None => None,
        };
        let key = (span.trace_id, span.span_id);
        let zone = self.zone_of(span);
        let mut half = OutHalf {
            service: sid,
            producer,
            name,
            destination,
            start_ns: span.start_unix_nanos,
            end_ns: span.end_unix_nanos,
            error,
            timeout,
            retry,
            paired: false,
            fallback,
            trace: span.trace_id,
            zone,
        };
        // Partners that arrived first.
        if !self.current.ins.is_empty() || !self.previous.ins.is_empty() {
            let mut waiting = Vec::new();
            if let Some(v) = self.current.ins.remove(&key) {
                self.current.ins_len -= v.len();
                waiting.extend(v);
            }
            if let Some(v) = self.previous.ins.remove(&key) {
                self.previous.ins_len -= v.len();
                waiting.extend(v);
            }
            for inh in &waiting {
                self.pair(&half, inh, now_ms);
                self.current.paired_consumers.insert(inh.own, ());
                half.paired = true;
            }
        }
        if half.paired && !producer {
            return; // A client call has one server half.
        }
        self.current.outs.insert(key, half);
        self.enforce_pending_limit(now_ms);
    }

    fn take_out(&mut self, key: &SpanKey) -> Option<OutHalf> {
        let producer = match self.current.outs.get(key).or(self.previous.outs.get(key)) {
            Some(o) => o.producer,
            None => return None,
        };
        if producer {
            // A producer may have several consumers: keep it, marked paired.
            let o = self.current.outs.get_mut(key).or(self.previous.outs.get_mut(key))?;
            o.paired = true;
            Some(*o)
        } else {
            self.current.outs.remove(key).or_else(|| self.previous.outs.remove(key))
        }
    }

    fn observe_in(&mut self, span: &Span<'_>, sid: Sid, error: bool, timeout: bool, now_ms: i64) {
        let consumer = span.kind == SpanKind::Consumer;
        if span.parent_span_id.is_none() && (!consumer || span.links.is_empty()) {
            return; // A root: ingress only.
        }
        let Some(name) = self.intern_name(truncate(&span.name, MAX_OPERATION_LEN)) else { return };
        let queue = match (consumer, peer_of(span)) {
            (true, Some((q, kind))) => self.intern_name(q).map(|id| (id, kind)),
            _ => None,
        };
        let zone = self.zone_of(span);
        let half = InHalf {
            zone,
            own: (span.trace_id, span.span_id),
            service: sid,
            name,
            start_ns: span.start_unix_nanos,
            end_ns: span.end_unix_nanos,
            error,
            timeout,
            queue,
        };
        if !consumer {
            // The common case: a server half with one parent.
            let Some(p) = span.parent_span_id else { return };
            let key = (span.trace_id, p);
            if let Some(out) = self.take_out(&key) {
                self.pair(&out, &half, now_ms);
            } else {
                self.current.ins.entry(key).or_default().push(half);
                self.current.ins_len += 1;
                self.enforce_pending_limit(now_ms);
            }
            return;
        }
        let parents = span.parent_span_id.map(|p| (span.trace_id, p)).into_iter().chain(span.links.iter().map(|l| (l.trace_id, l.span_id)));
        let mut matched = false;
        let mut unmatched: Vec<SpanKey> = Vec::new();
        for key in parents {
            match self.take_out(&key) {
                Some(out) => {
                    matched = true;
                    self.pair(&out, &half, now_ms);
                }
                None => unmatched.push(key),
            }
        }
        if matched {
            self.current.paired_consumers.insert(half.own, ());
        }
        // Wait under every link not matched yet (batch consumers).
        for key in unmatched {
            self.current.ins.entry(key).or_default().push(half);
            self.current.ins_len += 1;
        }
        self.enforce_pending_limit(now_ms);
    }

    fn pair(&mut self, out: &OutHalf, inh: &InHalf, now_ms: i64) {
        self.counters.calls_paired += 1;
        let (op, at_ns, latency_ms) = if out.producer {
            // Messaging: end-to-end from publish start to processing end.
            (out.destination.unwrap_or(inh.name), inh.end_ns, inh.end_ns.saturating_sub(out.start_ns) as f64 / 1e6)
        } else {
            (inh.name, out.end_ns, out.end_ns.saturating_sub(out.start_ns) as f64 / 1e6)
        };
        let call = Call {
            caller: out.service,
            callee: inh.service,
            operation: op,
            at_ns,
            start_ns: out.start_ns,
            latency_ms,
            error: out.error || inh.error,
            timeout: out.timeout || inh.timeout,
            retry: out.retry,
            trace: out.trace,
            zones: out.zone.zip(inh.zone),
        };
        self.record_call(&call, now_ms);
    }

    /// A client span is a retry if it says so (`http.request.resend_count`)
    /// or if an earlier attempt under the same parent, from the same service,
    /// with the same name and target, failed and ended before it started.
    fn detect_retry(&mut self, span: &Span<'_>, sid: Sid, failed: bool, target: Option<&str>) -> bool {
        let resent = span.attributes.resend_count.is_some_and(|n| n > 0);
        let Some(parent) = span.parent_span_id else {
            if resent {
                self.counters.retries_detected += 1;
            }
            return resent;
        };
        let key = fx((span.trace_id, parent, sid, &*span.name, target));
        let (start, end) = (span.start_unix_nanos, span.end_unix_nanos);
        let seen = self.current.attempts.get(&key).or(self.previous.attempts.get(&key)).copied();
        let mut retry = resent;
        if let Some(a) = seen {
            if a.failed_end <= start {
                retry = true;
            }
            // Out of order: a later attempt arrived first and is still waiting.
            if failed && end <= a.last_start && a.last_span != span.span_id {
                let k = (span.trace_id, a.last_span);
                if let Some(o) = self.current.outs.get_mut(&k).or(self.previous.outs.get_mut(&k))
                    && !o.retry
                {
                    o.retry = true;
                    self.counters.retries_detected += 1;
                }
            }
        }
        if retry {
            self.counters.retries_detected += 1;
        }
        let mut a = seen.unwrap_or(Attempts { failed_end: u64::MAX, last_span: span.span_id, last_start: start });
        if failed {
            a.failed_end = a.failed_end.min(end);
        }
        if start >= a.last_start {
            a.last_span = span.span_id;
            a.last_start = start;
        }
        self.current.attempts.insert(key, a);
        retry
    }

    fn record_call(&mut self, call: &Call, now_ms: i64) {
        let at_ms = ns_to_ms(call.at_ns);
        if !self.in_range(at_ms, now_ms) {
            self.counters.spans_out_of_range += 1;
            return;
        }
        if !self.services[call.caller as usize].live || !self.services[call.callee as usize].live {
            // A half that waited while its service was evicted.
            return;
        }
        let wlen = self.window_ms();
        let Some(idx) = self.edge_index(call.caller, call.callee, call.operation, now_ms) else { return };
        // Invariant: edge_index returns the index of an occupied slot.
        self.touch_edge(idx, now_ms);
        let Some(edge) = self.edges[idx as usize].as_mut() else { return };
        let w = align(at_ms, wlen);
        if w < edge.series.emitted_before_ms {
            self.counters.late_after_emit += 1;
        }
        let st = edge.series.window_mut(w);
        st.requests += 1;
        st.errors += u64::from(call.error);
        st.timeouts += u64::from(call.timeout);
        st.retries += u64::from(call.retry);
        st.latency.insert(call.latency_ms);
        if let Some((a, b)) = call.zones {
            st.add_zone(a, b, 1, u64::from(call.error || call.timeout), u64::from(call.timeout));
        }
        st.offer_call(call.latency_ms, call.error || call.timeout, call.trace);
        // In flight at the end of every earlier window the call spanned.
        let start_ms = ns_to_ms(call.start_ns);
        if align(start_ms, wlen) < w {
            let oldest = now_ms.saturating_sub(self.cfg.retention.as_millis());
            let mut b = align(start_ms, wlen) + wlen; // first window end after start
            let mut steps = 0;
            while b < at_ms && steps < 400 {
                if b > start_ms && b - wlen >= oldest {
                    edge.series.window_mut(b - wlen).in_flight += 1;
                }
                b += wlen;
                steps += 1;
            }
        }
    }

    /// The interned `cloud.availability_zone` of a span, if it has one.
    fn zone_of(&mut self, span: &Span<'_>) -> Option<NameId> {
        let z = span.attributes.availability_zone.as_deref()?;
        self.intern_name(truncate(z, MAX_OPERATION_LEN))
    }

    fn edge_index(&mut self, caller: Sid, callee: Sid, op: NameId, now_ms: i64) -> Option<u32> {
        if let Some(&i) = self.edge_ids.get(&(caller, callee, op)) {
            return Some(i);
        }
        if self.services[caller as usize].interactions >= self.cfg.max_interactions_per_service.max(1) {
            // The caller's own least recently seen interaction makes room
            // (a scan of its edges: only a service at its cap pays it).
            let edges = &self.edges;
            let oldest = self.services[caller as usize]
                .edges
                .iter()
                .filter_map(|&i| edges.get(i as usize).and_then(Option::as_ref).filter(|e| e.caller == caller).map(|e| (e.series.last_seen_ms, i)))
                .min();
            match oldest {
                Some((_, i)) => {
                    self.remove_edge(i);
                    self.counters.interactions_evicted += 1;
                }
                None => return None,
            }
        }
        if self.edge_ids.len() >= self.cfg.max_interactions.max(1)
            && let Some((_, oldest)) = self.edge_order.pop_first()
        {
            self.remove_edge(oldest);
            self.counters.interactions_evicted += 1;
        }
        let e = EdgeSeries { caller, callee, op, series: Series::new(now_ms) };
        let idx = if let Some(i) = self.free_edges.pop() {
            self.edges[i as usize] = Some(e);
            i
        } else {
            self.edges.push(Some(e));
            (self.edges.len() - 1) as u32
        };
        self.edge_ids.insert((caller, callee, op), idx);
        self.edge_order.insert((now_ms, idx));
        let svc = &mut self.services[caller as usize];
        svc.interactions += 1;
        svc.edges.insert(idx);
        self.services[callee as usize].edges.insert(idx);
        Some(idx)
    }

    fn enforce_pending_limit(&mut self, now_ms: i64) {
        if self.current.len() + self.previous.len() > self.cfg.max_pending {
            let before = self.previous.len();
            self.rotate(now_ms);
            self.counters.join_buffer_evictions += before as u64;
        }
    }

    /// Rotates the join buffer once per join window. Drivers call `tick` at
    /// least that often; after a longer pause both generations are resolved.
    fn maybe_rotate(&mut self, now_ms: i64) {
        let jw = self.cfg.join_window.as_millis().max(1);
        if self.rotated_at_ms == i64::MIN {
            self.rotated_at_ms = now_ms;
        } else if now_ms >= self.rotated_at_ms.saturating_add(jw) {
            let stale_both = now_ms >= self.rotated_at_ms.saturating_add(2 * jw);
            self.rotate(now_ms);
            if stale_both {
                self.rotate(now_ms);
            }
        }
    }

    /// Resolves every half in the previous generation and ages the current one.
    fn rotate(&mut self, now_ms: i64) {
        let old = std::mem::replace(&mut self.previous, std::mem::take(&mut self.current));
        self.rotations += 1;
        self.rotated_at_ms = now_ms;
        for (_, out) in old.outs {
            if out.paired {
                continue;
            }
            match out.fallback {
                Some((peer, kind)) => {
                    let peer = self.names.name(peer).to_owned();
                    if let Some(callee) = self.intern_service(&peer, kind, false, now_ms) {
                        self.counters.calls_uninstrumented += 1;
                        let op = if out.producer { out.destination.unwrap_or(out.name) } else { out.name };
                        let call = Call {
                            caller: out.service,
                            callee,
                            operation: op,
                            at_ns: out.end_ns,
                            start_ns: out.start_ns,
                            latency_ms: out.end_ns.saturating_sub(out.start_ns) as f64 / 1e6,
                            error: out.error,
                            timeout: out.timeout,
                            retry: out.retry,
                            trace: out.trace,
                            zones: None,
                        };
                        self.record_call(&call, now_ms);
                    }
                }
                None => self.counters.client_halves_unpaired += 1,
            }
        }
        let mut seen_consumers: FxMap<SpanKey, ()> = FxMap::default();
        for (_, ins) in old.ins {
            for inh in ins {
                match inh.queue {
                    Some((queue, kind)) => {
                        // A consumer waits under each of its links; count it once.
                        if seen_consumers.insert(inh.own, ()).is_some()
                            || old.paired_consumers.contains_key(&inh.own)
                            || self.previous.paired_consumers.contains_key(&inh.own)
                            || self.current.paired_consumers.contains_key(&inh.own)
                        {
                            continue;
                        }
                        let queue = self.names.name(queue).to_owned();
                        if let Some(q) = self.intern_service(&queue, kind, false, now_ms) {
                            self.counters.calls_uninstrumented += 1;
                            let call = Call {
                                caller: q,
                                callee: inh.service,
                                operation: inh.name,
                                at_ns: inh.end_ns,
                                start_ns: inh.start_ns,
                                latency_ms: inh.end_ns.saturating_sub(inh.start_ns) as f64 / 1e6,
                                error: inh.error,
                                timeout: inh.timeout,
                                retry: false,
                                trace: inh.own.0,
                                zones: None,
                            };
                            self.record_call(&call, now_ms);
                        }
                    }
                    None => self.counters.server_halves_unpaired += 1,
                }
            }
        }
    }

    /// Feeds one metric point; it is attached to a service by `service`, or
    /// the `service.name`, `service_name`, `job` or `instance` label.
    pub fn observe_metric(&mut self, p: &MetricPoint, now: Timestamp) {
        let labels: Vec<(&str, &str)> = p.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let service = p.service.as_ref().map(|s| s.as_str());
        self.observe_metric_samples(&p.name, &labels, service, &[(p.at, p.value)], now);
    }

    /// Feeds samples of one series without building a `MetricPoint` per
    /// sample (the remote-write path). `labels` must be sorted by name and
    /// unique (as remote-write requires); otherwise the series is refused.
    /// Names and values longer than [`crate::bounded`]'s limits are clipped,
    /// and at most `MAX_LABELS` labels are kept.
    pub fn observe_metric_samples(&mut self, name: &str, labels: &[(&str, &str)], service: Option<&str>, samples: &[(Timestamp, f64)], now: Timestamp) {
        use crate::bounded::{MAX_LABEL_NAME_BYTES, MAX_LABEL_VALUE_BYTES, MAX_LABELS};
        let now_ms = now.as_millis();
        self.counters.metric_points_observed += samples.len() as u64;
        let clipped: Vec<(&str, &str)>;
        let (name, labels) = if name.len() > MAX_LABEL_NAME_BYTES
            || labels.len() > MAX_LABELS
            || labels.iter().any(|(k, v)| k.len() > MAX_LABEL_NAME_BYTES || v.len() > MAX_LABEL_VALUE_BYTES)
        {
            clipped = labels.iter().take(MAX_LABELS).map(|(k, v)| (truncate(k, MAX_LABEL_NAME_BYTES), truncate(v, MAX_LABEL_VALUE_BYTES))).collect();
            (truncate(name, MAX_LABEL_NAME_BYTES), &clipped[..])
        } else {
            (name, labels)
        };
        if labels.windows(2).any(|w| w[0].0 >= w[1].0) {
            self.counters.metric_series_dropped += 1;
            return;
        }
        let service =
            service.or_else(|| ["service.name", "service_name", "job", "instance"].iter().find_map(|k| labels.iter().find(|(lk, _)| lk == k).map(|(_, v)| *v)));
        let Some(service) = service else {
            self.counters.metric_series_dropped += 1;
            return;
        };
        let Some(sid) = self.intern_service(service, ServiceKind::Service, false, now_ms) else { return };
        let key = (sid, fx((name, labels)));
        let wlen = self.window_ms();
        if !self.metrics.contains_key(&key) {
            if self.services[sid as usize].metric_series >= self.cfg.max_metric_series_per_service.max(1) {
                // The service's own least recently seen series makes room.
                let metrics = &self.metrics;
                let oldest = self.services[sid as usize].series_keys.iter().filter_map(|&k| metrics.get(&(sid, k)).map(|m| (m.series.last_seen_ms, k))).min();
                match oldest {
                    Some((_, k)) => {
                        self.remove_metric((sid, k));
                        self.counters.metric_series_evicted += 1;
                    }
                    None => {
                        self.counters.metric_series_dropped += 1;
                        return;
                    }
                }
            }
            if self.metrics.len() >= self.cfg.max_metric_series.max(1)
                && let Some((_, oldest)) = self.metric_order.pop_first()
            {
                self.remove_metric(oldest);
                self.counters.metric_series_evicted += 1;
            }
            let svc = &mut self.services[sid as usize];
            svc.metric_series += 1;
            svc.series_keys.insert(key.1);
            let owned: BTreeMap<String, String> = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            self.metrics.insert(key, MetricSeries { service: sid, name: name.to_owned(), labels: owned, series: Series::new(now_ms) });
            self.metric_order.insert((now_ms, key));
        }
        let lo = now_ms.saturating_sub(self.cfg.retention.as_millis());
        let hi = now_ms.saturating_add(self.cfg.max_future_skew.as_millis());
        let Some(m) = self.metrics.get_mut(&key) else { return };
        let same = m.name == name && m.labels.len() == labels.len() && m.labels.iter().zip(labels).all(|((k, v), (k2, v2))| k == k2 && v == v2);
        if !same {
            // A 64-bit hash collision: refuse rather than mix two series.
            self.counters.metric_series_dropped += 1;
            return;
        }
        if m.series.last_seen_ms != now_ms {
            self.metric_order.remove(&(m.series.last_seen_ms, key));
            self.metric_order.insert((now_ms, key));
            m.series.last_seen_ms = now_ms;
        }
        for &(at, value) in samples {
            let at_ms = at.as_millis();
            if at_ms < lo || at_ms > hi {
                self.counters.spans_out_of_range += 1;
                continue;
            }
            let w = m.series.window_mut(align(at_ms, wlen));
            if w.count == 0 {
                w.min = value;
                w.max = value;
            } else {
                w.min = w.min.min(value);
                w.max = w.max.max(value);
            }
            w.count += 1;
            w.sum += value;
            if at_ms >= w.last_at_ms || w.count == 1 {
                w.last = value;
                w.last_at_ms = at_ms;
            }
        }
    }

    /// Expires joins, drops windows past the retention, ages out idle
    /// interactions, and returns the windows that closed since the last tick
    /// (a window closes one join window after its end) as signals.
    pub fn tick(&mut self, now: Timestamp) -> Vec<Signal> {
        let now_ms = now.as_millis();
        self.maybe_rotate(now_ms);
        let wlen = self.window_ms();
        let cutoff = now_ms.saturating_sub(self.cfg.retention.as_millis());
        let idle_cutoff = now_ms.saturating_sub(self.cfg.idle_timeout.as_millis());
        let close_before = now_ms.saturating_sub(self.cfg.join_window.as_millis());
        let mut out = Vec::new();
        for i in 0..self.edges.len() {
            let Some(e) = self.edges[i].as_mut() else { continue };
            e.series.prune(cutoff);
            if e.series.last_seen_ms < idle_cutoff || e.series.windows.is_empty() && e.series.last_seen_ms < cutoff {
                self.remove_edge(i as u32);
                self.counters.interactions_aged_out += 1;
                continue;
            }
            let mut new_emitted = e.series.emitted_before_ms;
            for w in &e.series.windows {
                if w.start_ms < e.series.emitted_before_ms || w.start_ms + wlen > close_before {
                    continue;
                }
                new_emitted = new_emitted.max(w.start_ms + wlen);
                if w.stats.requests == 0 && w.stats.in_flight == 0 {
                    continue;
                }
                out.push(Signal::Edge(EdgeWindow {
                    interaction: Interaction {
                        caller: self.services[e.caller as usize].name.clone(),
                        callee: self.services[e.callee as usize].name.clone(),
                        operation: self.names.name(e.op).to_owned(),
                    },
                    start: Timestamp::from_millis(w.start_ms),
                    length: Duration::from_millis(wlen),
                    requests: w.stats.requests,
                    errors: w.stats.errors,
                    timeouts: w.stats.timeouts,
                    retries: w.stats.retries,
                    p50_ms: w.stats.latency.quantile(0.5).unwrap_or(0.0),
                    p99_ms: w.stats.latency.quantile(0.99).unwrap_or(0.0),
                    in_flight: Some(w.stats.in_flight),
                    zones: zone_counts(&self.names, &w.stats),
                    exemplar_trace_ids: w.stats.exemplar_ids(),
                }));
            }
            e.series.emitted_before_ms = new_emitted;
        }
        self.ingress.retain(|_, s| {
            s.prune(cutoff);
            s.last_seen_ms >= idle_cutoff
        });
        // The orders are by last seen: the idle are at the front.
        while let Some(&(seen, key)) = self.metric_order.first()
            && seen < idle_cutoff
        {
            self.remove_metric(key);
        }
        for m in self.metrics.values_mut() {
            m.series.prune(cutoff);
        }
        while let Some(&(seen, sid)) = self.service_order.first()
            && seen < idle_cutoff
        {
            self.evict_service(sid);
            self.counters.services_aged_out += 1;
        }
        out.sort_by(|a, b| match (a, b) {
            (Signal::Edge(x), Signal::Edge(y)) => (x.start, &x.interaction).cmp(&(y.start, &y.interaction)),
            _ => std::cmp::Ordering::Equal,
        });
        out
    }

    fn service_name(&self, sid: Sid) -> &ServiceName {
        &self.services[sid as usize].name
    }
}
