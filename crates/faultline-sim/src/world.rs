//! The world model: services, calls, caches, load, faults and a replicated
//! cluster, compiled from a `Scenario` into flat tables and driven by the
//! event queue.
//!
//! What it is: a thread-per-request model. A request takes a slot of its
//! service (or waits in a bounded FIFO/LIFO queue), does its local work, then
//! makes its downstream calls one after another while still holding the slot,
//! so a slow dependency exhausts its callers (the cascade). Callers time out,
//! retry with backoff and jitter under budgets, throttles and breakers; callees
//! keep working on orphaned attempts unless deadlines propagate. In-flight
//! requests and calls live in slabs with generation counters (no per-event
//! allocation); events are small `Copy` values.
//! What it is not: a network simulator (no packets, no TCP) or a model of any
//! one product; it is the smallest mechanism that shows each incident class.

use std::collections::{BTreeMap, VecDeque};

use crate::engine::{EventQueue, Nanos, secs, to_secs};
use crate::rng::{Rng, Zipf};
use crate::scenario::{BackoffKind, BreakerScope, ClusterSpec, Discipline, DistSpec, FaultKind, Jitter, LoadKind, Scenario};
use crate::series::{EdgeName, EdgeRow, FlowRow, Hist, MetricRow, Series, ServiceRow, ZoneRow};

const NONE: u32 = u32::MAX;
const NO_ZONE: u16 = u16::MAX;
const TICK: Nanos = 100_000_000; // 100 ms housekeeping tick

#[derive(Clone, Copy, Debug)]
enum Ev {
    Arrive { src: u32, epoch: u32 },
    Think { src: u32 },
    WorkDone { req: u32, epoch: u32 },
    Timeout { call: u32, epoch: u32 },
    Retry { call: u32, epoch: u32 },
    Fault { idx: u32, start: bool },
    Window,
    Tick,
}

#[derive(Clone, Copy)]
enum Dist {
    Const(f64),
    Exp(f64),
    Uniform(f64, f64),
    Lognormal { mu: f64, sigma: f64 },
    Bimodal { fast: f64, slow: f64, p_slow: f64 },
}

impl Dist {
    fn from_spec(d: &DistSpec) -> Dist {
        match d {
            DistSpec::Const(x) => Dist::Const(x.0),
            DistSpec::Exp(x) => Dist::Exp(x.0),
            DistSpec::Uniform(a, b) => Dist::Uniform(a.0, b.0),
            DistSpec::Lognormal { median, sigma } => Dist::Lognormal { mu: median.0.max(1e-12).ln(), sigma: *sigma },
            DistSpec::Bimodal { fast, slow, p_slow } => Dist::Bimodal { fast: fast.0, slow: slow.0, p_slow: *p_slow },
        }
    }
    /// Exponential (the usual case) inline, the others out of line.
    #[inline(always)]
    fn sample(&self, rng: &mut Rng) -> f64 {
        match *self {
            Dist::Exp(m) => rng.exp(m),
            _ => self.sample_other(rng),
        }
    }
    #[inline(never)]
    fn sample_other(&self, rng: &mut Rng) -> f64 {
        match *self {
            Dist::Const(x) => x,
            Dist::Exp(m) => rng.exp(m),
            Dist::Uniform(a, b) => rng.uniform(a, b),
            Dist::Lognormal { mu, sigma } => (mu + sigma * rng.normal(0.0, 1.0)).exp(),
            Dist::Bimodal { fast, slow, p_slow } => {
                if rng.chance(p_slow) {
                    rng.exp(slow)
                } else {
                    rng.exp(fast)
                }
            }
        }
    }
}

/// Generational slab: in-flight objects without per-event allocation.
struct Slab<T> {
    items: Vec<T>,
    free: Vec<u32>,
}

impl<T> Slab<T> {
    fn new() -> Self {
        Slab { items: Vec::with_capacity(1024), free: Vec::new() }
    }
    #[inline]
    fn alloc(&mut self, mk: impl FnOnce(Option<&T>) -> T) -> u32 {
        if let Some(i) = self.free.pop() {
            let v = mk(Some(&self.items[i as usize]));
            self.items[i as usize] = v;
            i
        } else {
            self.items.push(mk(None));
            (self.items.len() - 1) as u32
        }
    }
    #[inline]
    fn release(&mut self, i: u32) {
        self.free.push(i);
    }
    fn live(&self) -> usize {
        self.items.len() - self.free.len()
    }
}

#[derive(Default)]
struct SvcWin {
    arrivals: u64,
    served: u64,
    dropped: u64,
    rejected: u64,
    errors: u64,
    queue_max: u64,
    busy_area: f64,
    last_change: Nanos,
}

struct Pool {
    name: String,
    size: u32,
    leaked: f64,
    leak_per_sec: f64,
    recycle_at: Option<f64>,
    recycles: u64,
}

struct Shards {
    first: u32,
    count: u32,
    zipf: Zipf,
    salt: u32,
    hot_share: f64,
}

struct Svc {
    name: String,
    instances: u32,
    per_inst: u32, // NONE = unlimited
    busy: u32,
    queue: VecDeque<u32>,
    qcap: u32,
    lifo: bool,
    dist: Dist,
    drop_expired: bool,
    error_rate: f64,
    base_error_rate: f64,
    lat_mult: f64,
    lat_add: f64,
    cap_cut: f64,
    crashed: u32,
    crashed_at: Nanos,
    wrong_instances: u32,
    health_check: Option<Nanos>,
    zones: Vec<u16>,
    calls: (u32, u32),
    shards: Option<Shards>,
    pool: Option<Pool>,
    autoscale: Option<(u32, u32, Nanos, Nanos)>, // max, per-instance queue, every, next check
    /// A virtual parent of shards (never serves itself).
    is_router: bool,
    overload: Option<(f64, f64, f64)>, // above rate, factor, window s
    route_one: bool,
    cap: u32,
    rate_est: f64,
    rate_last: Nanos,
    w: SvcWin,
    totals: SvcTotals,
}

/// Whole-run counters of one service.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct SvcTotals {
    pub arrivals: u64,
    pub served: u64,
    pub dropped: u64,
    pub rejected: u64,
    pub errors: u64,
    pub max_queue: u64,
}

impl Svc {
    /// Slots available now (cached; `refresh_cap` after any change).
    #[inline]
    fn capacity(&self) -> u32 {
        self.cap
    }

    fn refresh_cap(&mut self) {
        self.cap = self.compute_capacity();
    }

    fn compute_capacity(&self) -> u32 {
        if self.crashed >= self.instances {
            return 0;
        }
        let alive = (self.instances - self.crashed) as f64;
        let mut cap = if self.per_inst == NONE {
            if self.cap_cut >= 1.0 { 0.0 } else { f64::from(u32::MAX - 1) }
        } else {
            (self.per_inst as f64 * alive * (1.0 - self.cap_cut)).floor()
        };
        if let Some(p) = &self.pool {
            cap = cap.min((p.size as f64 - p.leaked).max(0.0).floor());
        }
        cap as u32
    }
    #[inline]
    fn note_busy(&mut self, now: Nanos) {
        // Via i64: the same value as a u64 conversion (spans are far below
        // 2^63 ns) and cheaper.
        self.w.busy_area += self.busy as f64 * (now - self.w.last_change) as i64 as f64;
        self.w.last_change = now;
    }
}

#[derive(Clone, Copy, Default)]
struct ClientState {
    tokens: f64,
    br_calls: f64,
    br_fails: f64,
    br_last: Nanos,
    br_open_until: Nanos,
    th_req: f64,
    th_acc: f64,
    th_last: Nanos,
}

/// Attempt outcomes of one (edge, caller zone, callee zone) in one window.
#[derive(Default)]
struct ZoneWin {
    attempts: u64,
    errors: u64,
    timeouts: u64,
}

impl ZoneWin {
    fn record(&mut self, o: Outcome) {
        self.attempts += 1;
        match o {
            Outcome::Error => self.errors += 1,
            Outcome::Timeout => self.timeouts += 1,
            Outcome::Ok | Outcome::Wrong => {}
        }
    }
}

#[derive(Default)]
struct EdgeWin {
    attempts: u64,
    retries: u64,
    ok: u64,
    errors: u64,
    timeouts: u64,
    rejected: u64,
    wrong: u64,
    hist: Hist,
}

struct Edge {
    callee: u32,
    prob: f64,
    timeout: Nanos, // u64::MAX = none
    attempts: u32,
    backoff: BackoffKind,
    jitter: Jitter,
    base: f64,
    cap: f64,
    budget: Option<(f64, f64)>,
    breaker: Option<(f64, f64, f64, Nanos, BreakerScope)>, // ratio, window s, min_calls, open_for, scope
    throttle: Option<(f64, f64)>,                          // k, window s
    cache: u32,
    is_async: bool,
    fallback: bool,
    verify: bool,
    prefer_local: bool,
    clients: Vec<ClientState>,
    /// Stats per actual target (1, or one per shard).
    stats: Vec<EdgeWin>,
    /// Index of the first row name in `Series::edges` for this edge.
    name_base: u32,
}

#[derive(Clone, Copy, PartialEq)]
enum Owner {
    Client { src: u32 },
    Req { req: u32, epoch: u32 },
    Refresh { cache: u32, key: u32 },
}

#[derive(Clone, Copy)]
struct Call {
    epoch: u32,
    edge: u32,
    owner: Owner,
    attempt: u32,
    started: Nanos,
    attempt_started: Nanos,
    cur_req: u32,
    target: u32, // stats slot of the current attempt
    zone: u16,
    /// Zone of the instance the current attempt went to (NO_ZONE: none / not chosen).
    to_zone: u16,
    client: u32,
    sleep: f64,
    key: u32, // cache key when this call is a recompute
    deadline: Nanos,
    live: bool,
}

#[derive(Clone, Copy)]
struct Req {
    epoch: u32,
    svc: u32,
    call: u32,
    call_gen: u32,
    deadline: Nanos,
    step: u32,
    inst: u32,
    zone: u16,
    wrong: bool,
    working: bool,
    live: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Wrong,
    Error,
    Timeout,
}

#[derive(Clone)]
struct CacheEntry {
    stored: bool,
    expiry: Nanos,
    delta: f64,
    inflight: u32,
    waiters: Vec<u32>,
}

struct Cache {
    owner_svc: u32,
    entries: Vec<CacheEntry>,
    zipf: Zipf,
    ttl: Nanos,
    lock: bool,
    beta: Option<f64>,
    swr: bool,
    stale_on_error: bool,
    subject: String,
    hits: u64,
    misses: u64,
    recomputes: u64,
    stale: u64,
    w_hits: u64,
    w_misses: u64,
    w_recomputes: u64,
}

/// Whole-run cache counters (for the stampede anchors).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct CacheTotals {
    pub subject: String,
    pub hits: u64,
    pub misses: u64,
    pub recomputes: u64,
    /// Refresh cycles: recomputes that started while none was in flight for the key.
    pub cycles: u64,
    pub stale_served: u64,
}

struct Source {
    name: String,
    kind: LoadKind,
    rate: f64,
    base_rate: f64,
    clients: u32,
    think: Dist,
    zone: u16,
    edge: u32,
    epoch: u32,
    w_requests: u64,
    w_ok: u64,
    w_failed: u64,
    w_wrong: u64,
    hist: Hist,
    totals: SourceTotals,
}

/// Whole-run counters of one load source.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct SourceTotals {
    pub requests: u64,
    pub goodput: u64,
    pub failed: u64,
    pub wrong: u64,
}

struct FaultRt {
    kind: FaultKind,
    at: Nanos,
    end: Option<Nanos>,
    svc: u32,
    src: u32,
    factor: f64,
    add: f64,
    rate: f64,
    instances: u32,
    zones: (u16, u16),
    share: f64,
    per_sec: f64,
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Follower,
    Leader,
}

struct Node {
    zone: u16,
    role: Role,
    term: u64,
    last_heard: Nanos,
    timeout: Nanos,
}

struct Cluster {
    name: String,
    quorum: bool,
    write_rate: f64,
    nodes: Vec<Node>,
    zones: Vec<u16>,
    w_leaders_max: u64,
    w_ok: u64,
    w_failed: u64,
    w_divergent: u64,
    divergent_total: u64,
    max_leaders: u64,
}

/// One finished attempt, as a client span and its server span would show it
/// (recorded only when `World::record_attempts` is on; used for OTLP export).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttemptRecord {
    /// Index into `Series::edges` (caller → actual callee).
    pub edge: u32,
    pub start: Nanos,
    pub end: Nanos,
    /// 1 for the first try, 2 for the first retry, …
    pub attempt: u32,
    /// "ok", "error", "timeout" or "wrong" (a 200 with wrong data).
    pub outcome: &'static str,
}

/// The result of a run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunTotals {
    pub events: u64,
    pub sim_seconds: f64,
    pub services: Vec<(String, SvcTotals)>,
    pub sources: Vec<(String, SourceTotals)>,
    pub caches: Vec<CacheTotals>,
    pub peak_in_flight: u64,
}

pub struct World {
    /// Per-window attempt outcomes by (edge row, caller zone, callee zone),
    /// only for calls whose both ends have zones (signals' zone split).
    zone_win: BTreeMap<(u32, u16, u16), ZoneWin>,
    q: EventQueue<Ev>,
    rng: Rng,
    end: Nanos,
    window: Nanos,
    win_idx: u32,
    svcs: Vec<Svc>,
    edges: Vec<Edge>,
    sources: Vec<Source>,
    reqs: Slab<Req>,
    calls: Slab<Call>,
    caches: Vec<Cache>,
    cache_cycles: Vec<u64>,
    faults: Vec<FaultRt>,
    partitions: Vec<(u16, u16)>,
    cluster: Option<Cluster>,
    zone_names: Vec<String>,
    series: Series,
    peak_in_flight: u64,
    attempt_log: Option<Vec<AttemptRecord>>,
}

fn zone_id(names: &mut Vec<String>, z: &str) -> u16 {
    if let Some(i) = names.iter().position(|n| n == z) {
        return i as u16;
    }
    names.push(z.to_owned());
    (names.len() - 1) as u16
}

#[inline]
fn mix(k: u64) -> u64 {
    let mut z = k.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl World {
    /// Compiles a validated scenario. `seed` overrides the scenario's seed.
    pub fn new(sc: &Scenario, seed: Option<u64>) -> World {
        let seed = seed.or(sc.seed).unwrap_or(1);
        let mut zone_names: Vec<String> = Vec::new();
        let mut svcs: Vec<Svc> = Vec::new();
        let mut svc_index: Vec<(String, u32)> = Vec::new();
        // Pass 1: services (and shard children).
        for s in &sc.services {
            let zones: Vec<u16> = s.zones.iter().map(|z| zone_id(&mut zone_names, z)).collect();
            let mk = |name: String, is_router: bool| Svc {
                name,
                instances: s.instances,
                per_inst: s.concurrency.unwrap_or(NONE),
                busy: 0,
                queue: VecDeque::new(),
                qcap: s.queue.capacity.unwrap_or(NONE),
                lifo: s.queue.discipline == Discipline::Lifo,
                dist: Dist::from_spec(&s.service_time),
                drop_expired: s.drop_expired,
                error_rate: s.error_rate,
                base_error_rate: s.error_rate,
                lat_mult: 1.0,
                lat_add: 0.0,
                cap_cut: 0.0,
                crashed: 0,
                crashed_at: 0,
                wrong_instances: 0,
                health_check: s.health_check.map(|d| secs(d.0)),
                zones: zones.clone(),
                calls: (0, 0),
                shards: None,
                pool: s.pool.as_ref().map(|p| Pool {
                    name: p.name.clone(),
                    size: p.size,
                    leaked: 0.0,
                    leak_per_sec: 0.0,
                    recycle_at: p.recycle_at,
                    recycles: 0,
                }),
                autoscale: s.autoscale.as_ref().map(|a| (a.max_instances, a.queue_per_instance, secs(a.every.0), secs(a.every.0))),
                is_router,
                route_one: s.route == crate::scenario::Route::One,
                cap: 0,
                overload: s.overload.as_ref().map(|o| (o.above_rate, o.factor, o.window.0)),
                rate_est: 0.0,
                rate_last: 0,
                w: SvcWin::default(),
                totals: SvcTotals::default(),
            };
            let idx = svcs.len() as u32;
            svc_index.push((s.name.value.clone(), idx));
            match &s.shards {
                None => svcs.push(mk(s.name.value.clone(), false)),
                Some(sh) => {
                    let mut router = mk(s.name.value.clone(), true);
                    router.shards = Some(Shards {
                        first: idx + 1,
                        count: sh.count,
                        zipf: Zipf::new(sh.keys as usize, sh.zipf),
                        salt: sh.salt.unwrap_or(1).max(1),
                        hot_share: 0.0,
                    });
                    svcs.push(router);
                    for k in 0..sh.count {
                        svcs.push(mk(format!("{}[{k}]", s.name.value), false));
                    }
                }
            }
        }
        for sv in &mut svcs {
            sv.refresh_cap();
        }
        let find = |n: &str| svc_index.iter().find(|(m, _)| m == n).map(|x| x.1).unwrap_or(0);
        let mut series =
            Series { window_s: sc.window.0, services: svcs.iter().filter(|s| !s.is_router).map(|s| s.name.clone()).collect(), ..Series::default() };
        let mut edges: Vec<Edge> = Vec::new();
        let mut caches: Vec<Cache> = Vec::new();
        let make_edge = |caller: &str,
                         caller_svc: u32,
                         c: &crate::scenario::CallSpec,
                         n_clients: u32,
                         svcs: &Vec<Svc>,
                         series: &mut Series,
                         caches: &mut Vec<Cache>|
         -> Edge {
            let callee = find(&c.to.value);
            let targets: Vec<String> = match &svcs[callee as usize].shards {
                Some(sh) => (0..sh.count).map(|k| svcs[(sh.first + k) as usize].name.clone()).collect(),
                None => vec![svcs[callee as usize].name.clone()],
            };
            let name_base = series.edges.len() as u32;
            for t in &targets {
                series.edges.push(EdgeName { caller: caller.to_owned(), callee: t.clone() });
            }
            let cache = match &c.cache {
                None => NONE,
                Some(k) => {
                    let ttl = secs(k.ttl.0);
                    let e = CacheEntry {
                        stored: k.warm,
                        expiry: if k.warm { ttl } else { 0 },
                        delta: svcs[callee as usize].dist_mean_hint(),
                        inflight: 0,
                        waiters: Vec::new(),
                    };
                    caches.push(Cache {
                        owner_svc: caller_svc,
                        entries: vec![e; k.keys as usize],
                        zipf: Zipf::new(k.keys as usize, k.zipf),
                        ttl,
                        lock: k.lock,
                        beta: k.xfetch_beta,
                        swr: k.stale_while_revalidate,
                        stale_on_error: k.stale_on_error,
                        subject: format!("{caller}/cache:{}", c.to.value),
                        hits: 0,
                        misses: 0,
                        recomputes: 0,
                        stale: 0,
                        w_hits: 0,
                        w_misses: 0,
                        w_recomputes: 0,
                    });
                    (caches.len() - 1) as u32
                }
            };
            let init = ClientState { tokens: c.retry.budget.as_ref().map(|b| b.cap).unwrap_or(0.0), ..ClientState::default() };
            Edge {
                callee,
                prob: c.probability,
                timeout: c.timeout.map(|d| secs(d.0)).unwrap_or(u64::MAX),
                attempts: c.retry.attempts,
                backoff: c.retry.backoff.kind,
                jitter: c.retry.backoff.jitter,
                base: c.retry.backoff.base.0,
                cap: c.retry.backoff.cap.map(|d| d.0).unwrap_or(f64::INFINITY),
                budget: c.retry.budget.as_ref().map(|b| (b.ratio, b.cap)),
                breaker: c.breaker.as_ref().map(|b| (b.failure_ratio, b.window.0, b.min_calls as f64, secs(b.open_for.0), b.scope)),
                throttle: c.throttle.as_ref().map(|t| (t.k, t.window.0)),
                cache,
                is_async: c.is_async,
                fallback: c.fallback,
                verify: c.verify,
                prefer_local: c.prefer_local_zone,
                clients: vec![init; n_clients.max(1) as usize],
                stats: targets.iter().map(|_| EdgeWin::default()).collect(),
                name_base,
            }
        };
        // Pass 2: service call edges (shard children share the router's edges).
        for s in &sc.services {
            let idx = find(&s.name.value);
            let start = edges.len() as u32;
            let n_clients = s.autoscale.as_ref().map(|a| a.max_instances).unwrap_or(0).max(s.instances);
            for c in &s.calls {
                let e = make_edge(&s.name.value, idx, c, n_clients, &svcs, &mut series, &mut caches);
                edges.push(e);
            }
            let range = (start, edges.len() as u32 - start);
            svcs[idx as usize].calls = range;
            if let Some(sh) = &svcs[idx as usize].shards {
                let (first, count) = (sh.first, sh.count);
                for k in 0..count {
                    svcs[(first + k) as usize].calls = range;
                }
            }
        }
        let mut sources = Vec::new();
        for l in &sc.load {
            let n_clients = l.clients.unwrap_or(1).max(1);
            let e = make_edge(&l.name, NONE, &l.call, n_clients, &svcs, &mut series, &mut caches);
            edges.push(e);
            series.sources.push(l.name.clone());
            let rate = l.rate.unwrap_or(0.0);
            sources.push(Source {
                name: l.name.clone(),
                kind: l.kind,
                rate,
                base_rate: rate,
                clients: n_clients,
                think: Dist::from_spec(l.think.as_ref().unwrap_or(&DistSpec::Const(crate::scenario::Dur(1.0)))),
                zone: l.zone.as_deref().map(|z| zone_id(&mut zone_names, z)).unwrap_or(NO_ZONE),
                edge: (edges.len() - 1) as u32,
                epoch: 0,
                w_requests: 0,
                w_ok: 0,
                w_failed: 0,
                w_wrong: 0,
                hist: Hist::default(),
                totals: SourceTotals::default(),
            });
        }
        let faults: Vec<FaultRt> = sc
            .faults
            .iter()
            .map(|f| FaultRt {
                kind: f.fault,
                at: secs(f.at.0),
                end: f.duration.map(|d| secs(f.at.0 + d.0)),
                svc: f.service.as_ref().map(|s| find(&s.value)).unwrap_or(NONE),
                src: f.source.as_ref().and_then(|s| sc.load.iter().position(|l| l.name == s.value)).map(|i| i as u32).unwrap_or(NONE),
                factor: f.factor.unwrap_or(1.0),
                add: f.add.map(|d| d.0).unwrap_or(0.0),
                rate: f.rate.unwrap_or(0.0),
                instances: f.instances.unwrap_or(u32::MAX),
                zones: (
                    f.a.as_deref().map(|z| zone_id(&mut zone_names, z)).unwrap_or(NO_ZONE),
                    f.b.as_deref().map(|z| zone_id(&mut zone_names, z)).unwrap_or(NO_ZONE),
                ),
                share: f.share.unwrap_or(0.0),
                per_sec: f.per_sec.unwrap_or(0.0),
            })
            .collect();
        let cluster = sc.cluster.as_ref().map(|c| build_cluster(c, &mut zone_names));
        // Warm caches: entries were filled at random times in the last TTL, so
        // they do not all expire at once.
        let mut warm_rng = Rng::stream(seed, 0xCAC4E);
        for ch in &mut caches {
            for ent in &mut ch.entries {
                if ent.stored {
                    ent.expiry = (warm_rng.f64() * ch.ttl as f64) as Nanos;
                }
            }
        }
        let mut rng = Rng::new(seed);
        let needs_tick = cluster.is_some() || svcs.iter().any(|s| s.pool.is_some() || s.autoscale.is_some());
        let mut q = EventQueue::new();
        for (i, s) in sources.iter().enumerate() {
            match s.kind {
                LoadKind::Open => {
                    if s.rate > 0.0 {
                        q.at(secs(rng.exp(1.0 / s.rate)), Ev::Arrive { src: i as u32, epoch: 0 });
                    }
                }
                LoadKind::Closed => {
                    for _ in 0..s.clients {
                        q.at(secs(s.think.sample(&mut rng)), Ev::Think { src: i as u32 });
                    }
                }
            }
        }
        for (i, f) in faults.iter().enumerate() {
            q.at(f.at, Ev::Fault { idx: i as u32, start: true });
            if let Some(e) = f.end {
                q.at(e, Ev::Fault { idx: i as u32, start: false });
            }
        }
        let window = secs(sc.window.0).max(1);
        q.at(window, Ev::Window);
        if needs_tick {
            q.at(TICK, Ev::Tick);
        }
        let n_caches = caches.len();
        World {
            q,
            rng,
            end: secs(sc.duration.0),
            window,
            win_idx: 0,
            svcs,
            edges,
            sources,
            reqs: Slab::new(),
            calls: Slab::new(),
            caches,
            cache_cycles: vec![0; n_caches],
            faults,
            partitions: Vec::new(),
            cluster,
            zone_names,
            series,
            peak_in_flight: 0,
            attempt_log: None,
            zone_win: BTreeMap::new(),
        }
    }

    /// Starts recording every finished attempt (for trace export).
    pub fn record_attempts(&mut self) {
        self.attempt_log.get_or_insert_with(Vec::new);
    }

    /// Takes the attempts recorded since the last call.
    pub fn drain_attempts(&mut self) -> Vec<AttemptRecord> {
        match &mut self.attempt_log {
            Some(v) => std::mem::take(v),
            None => Vec::new(),
        }
    }

    pub fn now(&self) -> Nanos {
        self.q.now()
    }
    pub fn end(&self) -> Nanos {
        self.end
    }
    pub fn events(&self) -> u64 {
        self.q.popped()
    }
    pub fn series(&self) -> &Series {
        &self.series
    }
    pub fn windows_closed(&self) -> u32 {
        self.win_idx
    }
    pub fn zone_names(&self) -> &[String] {
        &self.zone_names
    }

    /// Runs until virtual time `t` (capped at the end of the run). Returns
    /// true when the run is over.
    pub fn run_until(&mut self, t: Nanos) -> bool {
        let until = t.min(self.end);
        while let Some(ev) = self.q.pop_until(until) {
            self.handle(ev);
        }
        self.q.advance_to(until);
        until >= self.end
    }

    /// Runs to the end.
    pub fn run(&mut self) {
        self.run_until(u64::MAX);
    }

    pub fn totals(&self) -> RunTotals {
        RunTotals {
            events: self.q.popped(),
            sim_seconds: to_secs(self.q.now()),
            services: self.svcs.iter().filter(|s| !s.is_router).map(|s| (s.name.clone(), s.totals.clone())).collect(),
            sources: self.sources.iter().map(|s| (s.name.clone(), s.totals.clone())).collect(),
            caches: self
                .caches
                .iter()
                .zip(&self.cache_cycles)
                .map(|(c, &cycles)| CacheTotals {
                    subject: c.subject.clone(),
                    hits: c.hits,
                    misses: c.misses,
                    recomputes: c.recomputes,
                    cycles,
                    stale_served: c.stale,
                })
                .collect(),
            peak_in_flight: self.peak_in_flight,
        }
    }

    pub fn into_series(self) -> Series {
        self.series
    }

    /// Inlined into the event loop: one call per event less.
    #[inline(always)]
    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Arrive { src, epoch } => self.on_arrive(src, epoch),
            Ev::Think { src } => self.start_request(src),
            Ev::WorkDone { req, epoch } => self.on_work_done(req, epoch),
            Ev::Timeout { call, epoch } => {
                let c = &self.calls.items[call as usize];
                if c.live && c.epoch == epoch {
                    let started = c.attempt_started;
                    self.calls.items[call as usize].epoch = epoch.wrapping_add(1);
                    self.calls.items[call as usize].cur_req = NONE;
                    self.on_attempt_result(call, Outcome::Timeout, started);
                }
            }
            Ev::Retry { call, epoch } => {
                let c = &self.calls.items[call as usize];
                if c.live && c.epoch == epoch {
                    self.attempt(call);
                }
            }
            Ev::Fault { idx, start } => self.on_fault(idx as usize, start),
            Ev::Window => self.close_window(),
            Ev::Tick => self.on_tick(),
        }
    }

    // ---- load ------------------------------------------------------------

    fn on_arrive(&mut self, src: u32, epoch: u32) {
        let s = &self.sources[src as usize];
        if s.epoch != epoch || s.rate <= 0.0 {
            return;
        }
        let next = secs(self.rng.exp(1.0 / s.rate));
        self.q.after(next.max(1), Ev::Arrive { src, epoch });
        self.start_request(src);
    }

    #[inline]
    fn start_request(&mut self, src: u32) {
        let s = &mut self.sources[src as usize];
        s.w_requests += 1;
        s.totals.requests += 1;
        let (edge, zone, clients) = (s.edge, s.zone, s.clients);
        let client = if clients > 1 { self.rng.below(clients as u64) as u32 } else { 0 };
        self.start_call(edge, Owner::Client { src }, zone, client, u64::MAX);
    }

    #[inline(always)]
    fn finish_request(&mut self, src: u32, ok: bool, wrong: bool, started: Nanos) {
        let now = self.q.now();
        let s = &mut self.sources[src as usize];
        if ok && !wrong {
            s.w_ok += 1;
            s.totals.goodput += 1;
        } else if ok {
            s.w_wrong += 1;
            s.totals.wrong += 1;
        } else {
            s.w_failed += 1;
            s.totals.failed += 1;
        }
        s.hist.record_ns(now - started);
        if s.kind == LoadKind::Closed {
            let think = secs(s.think.sample(&mut self.rng));
            self.q.after(think, Ev::Think { src });
        }
    }

    // ---- calls -----------------------------------------------------------

    fn start_call(&mut self, edge: u32, owner: Owner, zone: u16, client: u32, deadline: Nanos) {
        let now = self.q.now();
        let c = self.calls.alloc(|old| Call {
            epoch: old.map(|o| o.epoch.wrapping_add(1)).unwrap_or(0),
            edge,
            owner,
            attempt: 0,
            started: now,
            attempt_started: now,
            cur_req: NONE,
            target: 0,
            zone,
            to_zone: NO_ZONE,
            client,
            sleep: 0.0,
            key: NONE,
            deadline,
            live: true,
        });
        let live = self.calls.live() as u64 + self.reqs.live() as u64;
        if live > self.peak_in_flight {
            self.peak_in_flight = live;
        }
        let e = &mut self.edges[edge as usize];
        if let Some((ratio, cap)) = e.budget {
            let cs = &mut e.clients[client as usize];
            cs.tokens = (cs.tokens + ratio).min(cap);
        }
        let cache = e.cache;
        if cache != NONE && !matches!(owner, Owner::Refresh { .. }) && !self.cache_lookup(c, cache) {
            return;
        }
        self.attempt(c);
    }

    /// Returns true when the call must go to the origin (a recompute).
    fn cache_lookup(&mut self, c: u32, cache: u32) -> bool {
        let now = self.q.now();
        let ch = &mut self.caches[cache as usize];
        let key = if ch.entries.len() > 1 { ch.zipf.sample(&mut self.rng) as u32 } else { 0 };
        let ent = &ch.entries[key as usize];
        let fresh = ent.stored && now < ent.expiry;
        let early = fresh
            && match ch.beta {
                Some(beta) => {
                    let x = -ent.delta * beta * self.rng.f64_open0().ln();
                    now + secs(x) >= ent.expiry
                }
                None => false,
            };
        if fresh && !early {
            ch.hits += 1;
            ch.w_hits += 1;
            self.complete_call(c, true, false);
            return false;
        }
        if early && ch.lock && ent.inflight > 0 {
            // Someone is already refreshing: serve the still-fresh value.
            ch.hits += 1;
            ch.w_hits += 1;
            self.complete_call(c, true, false);
            return false;
        }
        if !fresh && ent.stored && ch.swr {
            ch.stale += 1;
            ch.w_hits += 1;
            let start_refresh = ent.inflight == 0;
            self.complete_call(c, true, false);
            if start_refresh {
                self.start_refresh(cache, key);
            }
            return false;
        }
        ch.misses += 1;
        ch.w_misses += 1;
        if ch.lock && ent.inflight > 0 {
            ch.entries[key as usize].waiters.push(c);
            return false;
        }
        if ent.inflight == 0 {
            self.cache_cycles[cache as usize] += 1;
        }
        ch.recomputes += 1;
        ch.w_recomputes += 1;
        ch.entries[key as usize].inflight += 1;
        self.calls.items[c as usize].key = key;
        true
    }

    fn start_refresh(&mut self, cache: u32, key: u32) {
        let owner_svc = self.caches[cache as usize].owner_svc;
        let Some(edge) = self.edges.iter().position(|e| e.cache == cache) else { return };
        let ch = &mut self.caches[cache as usize];
        if ch.entries[key as usize].inflight == 0 {
            self.cache_cycles[cache as usize] += 1;
        }
        ch.recomputes += 1;
        ch.w_recomputes += 1;
        ch.entries[key as usize].inflight += 1;
        let zone = if owner_svc == NONE { NO_ZONE } else { self.svcs[owner_svc as usize].zones.first().copied().unwrap_or(NO_ZONE) };
        let now = self.q.now();
        let c = self.calls.alloc(|old| Call {
            epoch: old.map(|o| o.epoch.wrapping_add(1)).unwrap_or(0),
            edge: edge as u32,
            owner: Owner::Refresh { cache, key },
            attempt: 0,
            started: now,
            attempt_started: now,
            cur_req: NONE,
            target: 0,
            zone,
            to_zone: NO_ZONE,
            client: 0,
            sleep: 0.0,
            key,
            deadline: u64::MAX,
            live: true,
        });
        self.attempt(c);
    }

    fn attempt(&mut self, c: u32) {
        let now = self.q.now();
        let call = self.calls.items[c as usize];
        let e = &mut self.edges[call.edge as usize];
        let cs = &mut e.clients[call.client as usize];
        // Local refusals: an open breaker or the adaptive throttle.
        let mut refused = false;
        if let Some((_, _, _, _, BreakerScope::All)) = e.breaker {
            if now < cs.br_open_until {
                refused = true;
            } else if cs.br_open_until != 0 {
                // Half-open after the cool-down: start counting afresh.
                cs.br_open_until = 0;
                cs.br_calls = 0.0;
                cs.br_fails = 0.0;
            }
        }
        if !refused && let Some((k, window)) = e.throttle {
            let d = (-((now - cs.th_last) as f64 / 1e9) / window).exp();
            cs.th_req = cs.th_req * d + 1.0;
            cs.th_acc *= d;
            cs.th_last = now;
            let p = ((cs.th_req - k * cs.th_acc) / (cs.th_req + 1.0)).max(0.0);
            refused = self.rng.chance(p);
        }
        if refused {
            e.stats[call.target as usize].rejected += 1;
            self.complete_call(c, false, false);
            return;
        }
        let callee = e.callee;
        let timeout = e.timeout;
        let is_async = e.is_async;
        let prefer_local = e.prefer_local;
        // Route: pick a shard by key, then an instance.
        let (target_svc, target_slot) = match &self.svcs[callee as usize].shards {
            None => (callee, 0u32),
            Some(sh) => {
                let hot = sh.hot_share > 0.0 && self.rng.chance(sh.hot_share);
                let key = if hot { 0 } else { sh.zipf.sample(&mut self.rng) as u64 + 1 };
                let salt = if hot && sh.salt > 1 { self.rng.below(sh.salt as u64) } else { 0 };
                let shard = ((mix(key) + salt) % sh.count as u64) as u32;
                (sh.first + shard, shard)
            }
        };
        let cl = &mut self.calls.items[c as usize];
        cl.attempt += 1;
        cl.epoch = cl.epoch.wrapping_add(1);
        cl.attempt_started = now;
        cl.target = target_slot;
        cl.to_zone = NO_ZONE;
        cl.cur_req = NONE;
        let (epoch, attempt, zone, call_deadline) = (cl.epoch, cl.attempt, cl.zone, cl.deadline);
        let st = &mut self.edges[call.edge as usize].stats[target_slot as usize];
        st.attempts += 1;
        if attempt > 1 {
            st.retries += 1;
        }
        let s = &mut self.svcs[target_svc as usize];
        s.w.arrivals += 1;
        s.totals.arrivals += 1;

        let n_inst = s.instances.max(1);
        let mut inst = if n_inst > 1 { self.rng.below(n_inst as u64) as u32 } else { 0 };
        if prefer_local && zone != NO_ZONE && !s.zones.is_empty() {
            // Zone-aware routing: pick among the instances in the caller's zone.
            let local: u32 = (0..n_inst).filter(|i| s.zones[*i as usize % s.zones.len()] == zone).count() as u32;
            if local > 0 {
                let pick = self.rng.below(local as u64) as u32;
                inst = (0..n_inst).filter(|i| s.zones[*i as usize % s.zones.len()] == zone).nth(pick as usize).unwrap_or(inst);
            }
        }
        // Crashed instances refuse connections unless the balancer has ejected them.
        if s.crashed > 0 {
            let ejected = s.health_check.is_some_and(|hc| now >= s.crashed_at + hc) && s.crashed < n_inst;
            if ejected {
                inst = s.crashed + self.rng.below((n_inst - s.crashed) as u64) as u32;
            } else if inst < s.crashed {
                s.w.rejected += 1;
                s.totals.rejected += 1;
                self.on_attempt_result(c, Outcome::Error, now);
                return;
            }
        }
        let to_zone = if s.zones.is_empty() { NO_ZONE } else { s.zones[inst as usize % s.zones.len()] };
        self.calls.items[c as usize].to_zone = to_zone;
        if timeout != u64::MAX && !is_async {
            self.q.after(timeout, Ev::Timeout { call: c, epoch });
        }
        if self.partitioned(zone, to_zone) {
            // Packets vanish: the caller waits for its timeout.
            return;
        }
        let s = &mut self.svcs[target_svc as usize];
        if s.queue.len() as u32 >= s.qcap && s.busy >= s.capacity() {
            s.w.rejected += 1;
            s.totals.rejected += 1;
            self.on_attempt_result(c, Outcome::Error, now);
            return;
        }
        let deadline = if timeout == u64::MAX { call_deadline } else { (now + timeout).min(call_deadline) };
        let wrong = inst < s.wrong_instances;
        let r = self.reqs.alloc(|old| Req {
            epoch: old.map(|o| o.epoch.wrapping_add(1)).unwrap_or(0),
            svc: target_svc,
            call: if is_async { NONE } else { c },
            call_gen: epoch,
            deadline: if is_async { u64::MAX } else { deadline },
            step: 0,
            inst,
            zone: to_zone,
            wrong,
            working: false,
            live: true,
        });
        if !is_async {
            self.calls.items[c as usize].cur_req = r;
        }
        self.enqueue(target_svc, r);
        if is_async {
            self.on_attempt_result(c, Outcome::Ok, now);
        }
    }

    #[inline]
    fn partitioned(&self, a: u16, b: u16) -> bool {
        if a == NO_ZONE || b == NO_ZONE || a == b || self.partitions.is_empty() {
            return false;
        }
        self.partitions.iter().any(|&(x, y)| (x == a && y == b) || (x == b && y == a))
    }

    fn on_attempt_result(&mut self, c: u32, outcome: Outcome, attempt_started: Nanos) {
        let now = self.q.now();
        let call = self.calls.items[c as usize];
        let e = &mut self.edges[call.edge as usize];
        let outcome = if outcome == Outcome::Wrong && e.verify { Outcome::Error } else { outcome };
        let st = &mut e.stats[call.target as usize];
        match outcome {
            Outcome::Ok => st.ok += 1,
            Outcome::Wrong => {
                st.ok += 1;
                st.wrong += 1
            }
            Outcome::Error => st.errors += 1,
            Outcome::Timeout => st.timeouts += 1,
        }
        st.hist.record_ns(now - attempt_started);
        if call.zone != NO_ZONE && call.to_zone != NO_ZONE {
            let z = self.zone_win.entry((e.name_base + call.target, call.zone, call.to_zone)).or_default();
            z.record(outcome);
        }
        if let Some(log) = &mut self.attempt_log {
            log.push(AttemptRecord {
                edge: e.name_base + call.target,
                start: attempt_started,
                end: now,
                attempt: call.attempt,
                outcome: match outcome {
                    Outcome::Ok => "ok",
                    Outcome::Wrong => "wrong",
                    Outcome::Error => "error",
                    Outcome::Timeout => "timeout",
                },
            });
        }
        let failed = matches!(outcome, Outcome::Error | Outcome::Timeout);
        let cs = &mut e.clients[call.client as usize];
        let mut retries_allowed = true;
        if let Some((ratio, window, min_calls, open_for, scope)) = e.breaker {
            let d = (-((now - cs.br_last) as f64 / 1e9) / window).exp();
            cs.br_calls = cs.br_calls * d + 1.0;
            cs.br_fails = cs.br_fails * d + if failed { 1.0 } else { 0.0 };
            cs.br_last = now;
            let tripped = cs.br_calls >= min_calls && cs.br_fails / cs.br_calls > ratio;
            match scope {
                BreakerScope::All => {
                    if tripped && cs.br_open_until == 0 {
                        cs.br_open_until = now + open_for;
                    }
                    retries_allowed = cs.br_open_until == 0;
                }
                BreakerScope::Retries => retries_allowed = cs.br_fails / cs.br_calls <= ratio,
            }
        }
        if e.throttle.is_some() && !failed {
            cs.th_acc += 1.0;
        }
        if !failed {
            self.complete_call(c, true, outcome == Outcome::Wrong);
            return;
        }
        let mut give_up = call.attempt >= e.attempts || !retries_allowed;
        if !give_up && e.budget.is_some() {
            if cs.tokens > 1.0 {
                cs.tokens -= 1.0;
            } else {
                give_up = true;
            }
        }
        if give_up {
            self.complete_call(c, false, false);
            return;
        }
        // Backoff before the next attempt; n = failures so far.
        let n = call.attempt as i32;
        let expo = match e.backoff {
            BackoffKind::None => 0.0,
            BackoffKind::Constant => e.base,
            BackoffKind::Exponential => (e.base * 2f64.powi(n)).min(e.cap),
        };
        let sleep = match e.jitter {
            Jitter::None => expo,
            Jitter::Full => self.rng.uniform(0.0, expo),
            Jitter::Equal => expo / 2.0 + self.rng.uniform(0.0, expo / 2.0),
            Jitter::Decorrelated => {
                let prev = if call.sleep > 0.0 { call.sleep } else { e.base };
                let s = self.rng.uniform(e.base, prev * 3.0).min(e.cap);
                self.calls.items[c as usize].sleep = s;
                s
            }
        };
        if sleep <= 0.0 {
            self.attempt(c);
        } else {
            let epoch = self.calls.items[c as usize].epoch;
            self.q.after(secs(sleep), Ev::Retry { call: c, epoch });
        }
    }

    fn complete_call(&mut self, c: u32, ok: bool, wrong: bool) {
        let call = self.calls.items[c as usize];
        {
            let cl = &mut self.calls.items[c as usize];
            cl.live = false;
            cl.epoch = cl.epoch.wrapping_add(1);
        }
        self.calls.release(c);
        let e_cache = self.edges[call.edge as usize].cache;
        let mut ok = ok;
        if call.key != NONE && e_cache != NONE {
            ok = self.cache_filled(e_cache, call.key, ok, call.started);
        }
        match call.owner {
            Owner::Client { src } => self.finish_request(src, ok, wrong, call.started),
            Owner::Req { req, epoch } => {
                let r = self.reqs.items[req as usize];
                if r.live && r.epoch == epoch {
                    let fallback = self.edges[call.edge as usize].fallback;
                    if wrong {
                        self.reqs.items[req as usize].wrong = true;
                    }
                    self.continue_steps(req, ok || fallback);
                }
            }
            Owner::Refresh { .. } => {}
        }
    }

    /// A recompute finished: store the value and release the waiters.
    /// Returns whether the caller gets a value.
    fn cache_filled(&mut self, cache: u32, key: u32, ok: bool, started: Nanos) -> bool {
        let now = self.q.now();
        let ch = &mut self.caches[cache as usize];
        let ent = &mut ch.entries[key as usize];
        ent.inflight = ent.inflight.saturating_sub(1);
        let served = if ok {
            ent.stored = true;
            ent.expiry = now + ch.ttl;
            ent.delta = to_secs(now - started);
            true
        } else if ch.stale_on_error && ent.stored {
            ch.stale += 1;
            true
        } else {
            false
        };
        let waiters = std::mem::take(&mut ent.waiters);
        for &w in &waiters {
            self.complete_call(w, served, false);
        }
        // Give the buffer back to reuse its allocation.
        let ent = &mut self.caches[cache as usize].entries[key as usize];
        if ent.waiters.is_empty() {
            let mut w = waiters;
            w.clear();
            ent.waiters = w;
        }
        served
    }

    // ---- services --------------------------------------------------------

    #[inline(always)]
    fn enqueue(&mut self, s: u32, r: u32) {
        let now = self.q.now();
        let svc = &mut self.svcs[s as usize];
        if svc.busy < svc.capacity() && svc.queue.is_empty() {
            self.start_work(s, r);
        } else {
            svc.queue.push_back(r);
            let ql = svc.queue.len() as u64;
            if ql > svc.w.queue_max {
                svc.w.queue_max = ql;
            }
            if ql > svc.totals.max_queue {
                svc.totals.max_queue = ql;
            }
            let _ = now;
        }
    }

    /// Starts queued requests while slots are free.
    #[inline(always)]
    fn pump(&mut self, s: u32) {
        if !self.svcs[s as usize].queue.is_empty() {
            self.pump_queue(s);
        }
    }

    #[inline(never)]
    fn pump_queue(&mut self, s: u32) {
        let now = self.q.now();
        loop {
            let svc = &mut self.svcs[s as usize];
            if svc.busy >= svc.capacity() {
                return;
            }
            let next = if svc.lifo { svc.queue.pop_back() } else { svc.queue.pop_front() };
            let Some(r) = next else { return };
            if svc.drop_expired && now >= self.reqs.items[r as usize].deadline {
                svc.w.dropped += 1;
                svc.totals.dropped += 1;
                self.drop_req(r);
                continue;
            }
            self.start_work(s, r);
        }
    }

    #[inline(always)]
    fn start_work(&mut self, s: u32, r: u32) {
        let now = self.q.now();
        let svc = &mut self.svcs[s as usize];
        svc.note_busy(now);
        svc.busy += 1;
        let mut t = svc.dist.sample(&mut self.rng) * svc.lat_mult + svc.lat_add;
        if let Some((above, factor, tau)) = svc.overload {
            // The rate the service actually receives work at (a backlog released
            // after an outage arrives all at once).
            svc.rate_est = svc.rate_est * (-((now - svc.rate_last) as f64 / 1e9) / tau).exp() + 1.0 / tau;
            svc.rate_last = now;
            if svc.rate_est > above {
                t *= factor;
            }
        }
        let req = &mut self.reqs.items[r as usize];
        req.working = true;
        let epoch = req.epoch;
        self.q.after(secs(t), Ev::WorkDone { req: r, epoch });
    }

    #[inline]
    fn on_work_done(&mut self, r: u32, epoch: u32) {
        let req = self.reqs.items[r as usize];
        if !req.live || req.epoch != epoch {
            return;
        }
        let svc = &mut self.svcs[req.svc as usize];
        if svc.error_rate > 0.0 && self.rng.chance(svc.error_rate) {
            svc.w.errors += 1;
            svc.totals.errors += 1;
            self.finish_req(r, false);
            return;
        }
        self.continue_steps(r, true);
    }

    #[inline(always)]
    fn continue_steps(&mut self, r: u32, prev_ok: bool) {
        if !prev_ok {
            let s = self.reqs.items[r as usize].svc;
            let svc = &mut self.svcs[s as usize];
            svc.w.errors += 1;
            svc.totals.errors += 1;
            self.finish_req(r, false);
            return;
        }
        let svc = &self.svcs[self.reqs.items[r as usize].svc as usize];
        if svc.route_one && self.reqs.items[r as usize].step == 0 && svc.calls.1 > 0 {
            // Pick exactly one call, weighted by the calls' probabilities.
            let (start, len) = svc.calls;
            let total: f64 = (start..start + len).map(|e| self.edges[e as usize].prob).sum();
            let mut x = self.rng.f64() * total;
            let mut pick = start + len - 1;
            for e in start..start + len {
                x -= self.edges[e as usize].prob;
                if x < 0.0 {
                    pick = e;
                    break;
                }
            }
            let req = &mut self.reqs.items[r as usize];
            req.step = len; // no further calls after this one
            let (zone, deadline, epoch, inst) = (req.zone, req.deadline, req.epoch, req.inst);
            let client = inst % self.edges[pick as usize].clients.len() as u32;
            self.start_call(pick, Owner::Req { req: r, epoch }, zone, client, deadline);
            return;
        }
        loop {
            let req = self.reqs.items[r as usize];
            let (start, len) = self.svcs[req.svc as usize].calls;
            if req.step >= len {
                self.finish_req(r, true);
                return;
            }
            self.reqs.items[r as usize].step += 1;
            let edge = start + req.step;
            let prob = self.edges[edge as usize].prob;
            if prob >= 1.0 || self.rng.chance(prob) {
                let client = req.inst % self.edges[edge as usize].clients.len() as u32;
                self.start_call(edge, Owner::Req { req: r, epoch: req.epoch }, req.zone, client, req.deadline);
                return;
            }
        }
    }

    #[inline(always)]
    fn finish_req(&mut self, r: u32, ok: bool) {
        let now = self.q.now();
        let s = self.reqs.items[r as usize].svc;
        let svc = &mut self.svcs[s as usize];
        svc.note_busy(now);
        svc.busy -= 1;
        svc.w.served += 1;
        svc.totals.served += 1;
        self.respond(r, ok);
        self.pump(s);
    }

    /// Frees a request and answers its caller, if the caller still waits for it.
    #[inline(always)]
    fn respond(&mut self, r: u32, ok: bool) {
        let req = self.reqs.items[r as usize];
        self.reqs.items[r as usize].live = false;
        self.reqs.items[r as usize].working = false;
        self.reqs.items[r as usize].epoch = req.epoch.wrapping_add(1);
        self.reqs.release(r);
        if req.call != NONE {
            let c = &self.calls.items[req.call as usize];
            if c.live && c.epoch == req.call_gen && c.cur_req == r {
                let started = c.attempt_started;
                let cl = &mut self.calls.items[req.call as usize];
                cl.epoch = cl.epoch.wrapping_add(1);
                cl.cur_req = NONE;
                let outcome = match (ok, req.wrong) {
                    (true, false) => Outcome::Ok,
                    (true, true) => Outcome::Wrong,
                    _ => Outcome::Error,
                };
                self.on_attempt_result(req.call, outcome, started);
            }
        }
    }

    /// Removes a queued request without an answer (its caller gave up or it crashed).
    fn drop_req(&mut self, r: u32) {
        let req = &mut self.reqs.items[r as usize];
        req.live = false;
        req.epoch = req.epoch.wrapping_add(1);
        self.reqs.release(r);
    }

    // ---- faults ----------------------------------------------------------

    fn on_fault(&mut self, i: usize, start: bool) {
        let f = &self.faults[i];
        let (svc, kind) = (f.svc, f.kind);
        let now = self.q.now();
        match kind {
            FaultKind::CapacityCut => {
                let factor = f.factor;
                for s in self.svc_and_shards(svc) {
                    self.svcs[s as usize].cap_cut = if start { factor } else { 0.0 };
                    self.svcs[s as usize].refresh_cap();
                    self.pump(s);
                }
            }
            FaultKind::Latency => {
                let (m, a) = (f.factor, f.add);
                for s in self.svc_and_shards(svc) {
                    let sv = &mut self.svcs[s as usize];
                    sv.lat_mult = if start { m } else { 1.0 };
                    sv.lat_add = if start { a } else { 0.0 };
                }
            }
            FaultKind::Errors => {
                let rate = f.rate;
                for s in self.svc_and_shards(svc) {
                    let sv = &mut self.svcs[s as usize];
                    sv.error_rate = if start { rate } else { sv.base_error_rate };
                }
            }
            FaultKind::Crash => {
                let n = f.instances;
                for s in self.svc_and_shards(svc) {
                    let inst = self.svcs[s as usize].instances;
                    if start {
                        let k = n.min(inst);
                        self.svcs[s as usize].crashed = k;
                        self.svcs[s as usize].crashed_at = now;
                        self.svcs[s as usize].refresh_cap();
                        if k >= inst {
                            self.crash_all(s);
                        }
                    } else {
                        self.svcs[s as usize].crashed = 0;
                        self.svcs[s as usize].refresh_cap();
                        self.pump(s);
                    }
                }
            }
            FaultKind::Partition => {
                let z = f.zones;
                if start {
                    self.partitions.push(z);
                } else if let Some(p) = self.partitions.iter().position(|x| *x == z) {
                    self.partitions.remove(p);
                }
            }
            FaultKind::Load => {
                let (src, rate) = (f.src, f.rate);
                let s = &mut self.sources[src as usize];
                s.rate = if start { rate } else { s.base_rate };
                s.epoch = s.epoch.wrapping_add(1);
                if s.rate > 0.0 {
                    let epoch = s.epoch;
                    let next = secs(self.rng.exp(1.0 / s.rate));
                    self.q.after(next, Ev::Arrive { src, epoch });
                }
            }
            FaultKind::CacheFlush => {
                if start {
                    let (a, n) = self.svcs[svc as usize].calls;
                    for e in a..a + n {
                        let c = self.edges[e as usize].cache;
                        if c != NONE {
                            for ent in &mut self.caches[c as usize].entries {
                                ent.stored = false;
                            }
                        }
                    }
                }
            }
            FaultKind::HotKey => {
                let share = f.share;
                if let Some(sh) = &mut self.svcs[svc as usize].shards {
                    sh.hot_share = if start { share } else { 0.0 };
                }
            }
            FaultKind::Leak => {
                let per = f.per_sec;
                for s in self.svc_and_shards(svc) {
                    if let Some(p) = &mut self.svcs[s as usize].pool {
                        p.leak_per_sec = if start { per } else { 0.0 };
                    }
                }
            }
            FaultKind::WrongAnswers => {
                let n = f.instances;
                for s in self.svc_and_shards(svc) {
                    let sv = &mut self.svcs[s as usize];
                    sv.wrong_instances = if start { n.min(sv.instances) } else { 0 };
                }
            }
        }
    }

    fn svc_and_shards(&self, s: u32) -> Vec<u32> {
        match &self.svcs[s as usize].shards {
            Some(sh) => (sh.first..sh.first + sh.count).collect(),
            None => vec![s],
        }
    }

    /// Every queued and running request of a fully crashed service fails: its
    /// callers see connection resets.
    fn crash_all(&mut self, s: u32) {
        let queued: Vec<u32> = self.svcs[s as usize].queue.drain(..).collect();
        for r in queued {
            self.respond(r, false);
        }
        let running: Vec<u32> = (0..self.reqs.items.len() as u32)
            .filter(|&i| {
                let q = &self.reqs.items[i as usize];
                q.live && q.svc == s && q.working
            })
            .collect();
        for r in running {
            self.finish_req(r, false);
        }
    }

    // ---- housekeeping tick: pools, autoscaling, cluster --------------------

    fn on_tick(&mut self) {
        let now = self.q.now();
        let dt = to_secs(TICK);
        for s in 0..self.svcs.len() {
            let mut changed = false;
            let sv = &mut self.svcs[s];
            if let Some(p) = &mut sv.pool {
                if p.leak_per_sec > 0.0 {
                    p.leaked = (p.leaked + p.leak_per_sec * dt).min(p.size as f64);
                }
                if let Some(at) = p.recycle_at
                    && p.leaked >= at * p.size as f64
                {
                    p.leaked = 0.0;
                    p.recycles += 1;
                    changed = true;
                }
            }
            if let Some((max, per, every, next)) = &mut sv.autoscale
                && now >= *next
            {
                *next = now + *every;
                if sv.queue.len() as u64 > (*per as u64) * sv.instances as u64 && sv.instances < *max {
                    sv.instances += 1;
                    changed = true;
                }
            }
            if sv.pool.is_some() || changed {
                sv.refresh_cap();
            }
            if changed {
                self.pump(s as u32);
            }
        }
        if self.cluster.is_some() {
            self.cluster_tick(now, dt);
        }
        self.q.after(TICK, Ev::Tick);
    }

    fn cluster_tick(&mut self, now: Nanos, dt: f64) {
        let partitions = self.partitions.clone();
        let reach = |a: u16, b: u16| a == b || !partitions.iter().any(|&(x, y)| (x == a && y == b) || (x == b && y == a));
        let Some(cl) = &mut self.cluster else { return };
        let n = cl.nodes.len();
        // Heartbeats: every leader reaches the nodes it can.
        for l in 0..n {
            if cl.nodes[l].role != Role::Leader {
                continue;
            }
            let (lz, lt) = (cl.nodes[l].zone, cl.nodes[l].term);
            for f in 0..n {
                if f != l && reach(lz, cl.nodes[f].zone) && cl.nodes[f].term <= lt {
                    cl.nodes[f].term = lt;
                    cl.nodes[f].role = Role::Follower;
                    cl.nodes[f].last_heard = now;
                }
            }
        }
        // A leader that sees a higher-term leader steps down (partition healed).
        for l in 0..n {
            if cl.nodes[l].role == Role::Leader {
                let (lz, lt) = (cl.nodes[l].zone, cl.nodes[l].term);
                if cl.nodes.iter().any(|o| o.role == Role::Leader && o.term > lt && reach(lz, o.zone)) {
                    cl.nodes[l].role = Role::Follower;
                    cl.nodes[l].last_heard = now;
                }
            }
        }
        // Elections.
        for i in 0..n {
            if cl.nodes[i].role == Role::Leader || now < cl.nodes[i].last_heard + cl.nodes[i].timeout {
                continue;
            }
            let z = cl.nodes[i].zone;
            let reachable = cl.nodes.iter().filter(|o| reach(z, o.zone)).count();
            let can_win = if cl.quorum { reachable * 2 > n } else { true };
            cl.nodes[i].last_heard = now;
            if can_win {
                let term = cl.nodes.iter().map(|o| o.term).max().unwrap_or(0) + 1;
                for j in 0..n {
                    if reach(z, cl.nodes[j].zone) {
                        cl.nodes[j].term = term;
                        cl.nodes[j].role = Role::Follower;
                        cl.nodes[j].last_heard = now;
                    }
                }
                cl.nodes[i].role = Role::Leader;
            }
        }
        let leaders = cl.nodes.iter().filter(|o| o.role == Role::Leader).count() as u64;
        cl.w_leaders_max = cl.w_leaders_max.max(leaders);
        cl.max_leaders = cl.max_leaders.max(leaders);
        // Writes from clients in each zone go to a leader they can reach.
        let top_term = cl.nodes.iter().filter(|o| o.role == Role::Leader).map(|o| o.term).max().unwrap_or(0);
        for zi in 0..cl.zones.len() {
            let z = cl.zones[zi];
            let k = cl.write_rate * dt; // expected writes this tick
            let writes = k.floor() as u64 + u64::from(self.rng.chance(k.fract()));
            let leader = cl.nodes.iter().filter(|o| o.role == Role::Leader && reach(z, o.zone)).map(|o| o.term).max();
            match leader {
                None => cl.w_failed += writes,
                Some(t) if leaders > 1 && t < top_term => {
                    cl.w_divergent += writes;
                    cl.divergent_total += writes;
                }
                Some(_) if leaders > 1 => {
                    // The other side's leader also takes writes: both histories diverge.
                    cl.w_ok += writes;
                }
                Some(_) => cl.w_ok += writes,
            }
        }
    }

    // ---- windows -----------------------------------------------------------

    fn close_window(&mut self) {
        let now = self.q.now();
        let w = self.win_idx;
        let win_ns = self.window as f64;
        let mut si = 0u32;
        for s in self.svcs.iter_mut() {
            if s.is_router {
                continue;
            }
            s.note_busy(now);
            let cap = s.capacity();
            let util = if cap == 0 || cap >= u32::MAX - 1 { 0.0 } else { s.w.busy_area / (cap as f64 * win_ns) };
            self.series.service_rows.push(ServiceRow {
                window: w,
                service: si,
                arrivals: s.w.arrivals,
                served: s.w.served,
                dropped: s.w.dropped,
                rejected: s.w.rejected,
                errors: s.w.errors,
                queue_depth: s.queue.len() as u64,
                queue_max: s.w.queue_max.max(s.queue.len() as u64),
                busy: s.busy as u64,
                capacity: if cap >= u32::MAX - 1 { 0 } else { cap as u64 },
                utilization: util.min(1.0),
            });
            if let Some(p) = &s.pool {
                let subj = format!("{}/{}", s.name, p.name);
                self.series.metric_rows.push(MetricRow {
                    window: w,
                    name: "pool_in_use".into(),
                    subject: subj.clone(),
                    value: s.busy as f64 + p.leaked.floor(),
                });
                self.series.metric_rows.push(MetricRow { window: w, name: "pool_size".into(), subject: subj, value: p.size as f64 });
            }
            if s.autoscale.is_some() {
                self.series.metric_rows.push(MetricRow { window: w, name: "instances".into(), subject: s.name.clone(), value: s.instances as f64 });
            }
            s.w = SvcWin { last_change: now, ..SvcWin::default() };
            si += 1;
        }
        for e in self.edges.iter_mut() {
            for (k, st) in e.stats.iter_mut().enumerate() {
                if st.attempts == 0 && st.rejected == 0 && st.hist.count() == 0 {
                    continue;
                }
                self.series.edge_rows.push(EdgeRow {
                    window: w,
                    edge: e.name_base + k as u32,
                    attempts: st.attempts,
                    retries: st.retries,
                    ok: st.ok,
                    errors: st.errors,
                    timeouts: st.timeouts,
                    rejected: st.rejected,
                    wrong: st.wrong,
                    p50_ms: st.hist.quantile_ms(0.5),
                    p99_ms: st.hist.quantile_ms(0.99),
                });
                // Reset in place: the histogram keeps its buffer.
                let EdgeWin { attempts, retries, ok, errors, timeouts, rejected, wrong, hist } = st;
                for c in [attempts, retries, ok, errors, timeouts, rejected, wrong] {
                    *c = 0;
                }
                hist.clear();
            }
        }
        for ((edge, a, b), z) in std::mem::take(&mut self.zone_win) {
            let name = |i: u16| self.zone_names.get(i as usize).cloned().unwrap_or_default();
            self.series.zone_rows.push(ZoneRow {
                window: w,
                edge,
                caller_zone: name(a),
                callee_zone: name(b),
                attempts: z.attempts,
                errors: z.errors,
                timeouts: z.timeouts,
            });
        }
        for (i, s) in self.sources.iter_mut().enumerate() {
            self.series.flow_rows.push(FlowRow {
                window: w,
                source: i as u32,
                requests: s.w_requests,
                goodput: s.w_ok,
                failed: s.w_failed,
                wrong: s.w_wrong,
                p50_ms: s.hist.quantile_ms(0.5),
                p99_ms: s.hist.quantile_ms(0.99),
            });
            s.w_requests = 0;
            s.w_ok = 0;
            s.w_failed = 0;
            s.w_wrong = 0;
            s.hist.clear();
        }
        for c in self.caches.iter_mut() {
            let total = c.w_hits + c.w_misses;
            let ratio = if total == 0 { 1.0 } else { c.w_hits as f64 / total as f64 };
            self.series.metric_rows.push(MetricRow { window: w, name: "cache_hit_ratio".into(), subject: c.subject.clone(), value: ratio });
            self.series.metric_rows.push(MetricRow { window: w, name: "cache_recomputes".into(), subject: c.subject.clone(), value: c.w_recomputes as f64 });
            c.w_hits = 0;
            c.w_misses = 0;
            c.w_recomputes = 0;
        }
        if let Some(cl) = &mut self.cluster {
            for (name, v) in [
                ("leaders", cl.w_leaders_max as f64),
                ("writes_ok", cl.w_ok as f64),
                ("writes_failed", cl.w_failed as f64),
                ("writes_divergent", cl.w_divergent as f64),
            ] {
                self.series.metric_rows.push(MetricRow { window: w, name: name.into(), subject: cl.name.clone(), value: v });
            }
            cl.w_leaders_max = cl.nodes.iter().filter(|o| o.role == Role::Leader).count() as u64;
            cl.w_ok = 0;
            cl.w_failed = 0;
            cl.w_divergent = 0;
        }
        self.win_idx += 1;
        self.series.windows = self.win_idx;
        let next = (self.win_idx as u64 + 1) * self.window;
        if next <= self.end {
            self.q.at(next, Ev::Window);
        }
    }
}

impl Svc {
    /// A first guess of a recompute's duration for an empty cache entry.
    fn dist_mean_hint(&self) -> f64 {
        match self.dist {
            Dist::Const(x) | Dist::Exp(x) => x,
            Dist::Uniform(a, b) => (a + b) / 2.0,
            Dist::Lognormal { mu, .. } => mu.exp(),
            Dist::Bimodal { fast, .. } => fast,
        }
    }
}

fn build_cluster(c: &ClusterSpec, zone_names: &mut Vec<String>) -> Cluster {
    let et = secs(c.election_timeout.0);
    let nodes: Vec<Node> = c
        .replicas
        .iter()
        .enumerate()
        .map(|(i, z)| Node {
            zone: zone_id(zone_names, z),
            role: if i == 0 { Role::Leader } else { Role::Follower },
            term: 1,
            last_heard: 0,
            // Staggered timeouts, as randomised election timeouts do.
            timeout: et + et * i as u64 / (2 * c.replicas.len().max(1) as u64),
        })
        .collect();
    let mut zones: Vec<u16> = nodes.iter().map(|n| n.zone).collect();
    zones.sort_unstable();
    zones.dedup();
    Cluster {
        name: c.name.clone(),
        quorum: c.quorum,
        write_rate: c.write_rate,
        nodes,
        zones,
        w_leaders_max: 1,
        w_ok: 0,
        w_failed: 0,
        w_divergent: 0,
        divergent_total: 0,
        max_leaders: 1,
    }
}
