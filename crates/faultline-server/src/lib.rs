//! Faultline's edge and composition root.
//!
//! `App` wires configuration, the store, metrics and the HTTP API together and
//! runs them until shutdown; `faultline serve` is a thin wrapper around
//! `App::open` + `App::run`. It is embeddable: tests start an `App` on
//! `127.0.0.1:0` in-process.
//!
//! What it is not: domain logic (that is `faultline-core`) or SQL (that is
//! `faultline-store`). Handlers parse, authorise, call one core/store
//! function and convert the answer.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use faultline_core::correlate::Topology;
use faultline_core::detect::DetectorSet;
use faultline_core::pipeline::Pipeline;
use faultline_core::severity::SeverityDefinitions;
use faultline_engine::{Engine, Event};
use faultline_store::{SqlStore, Store};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub mod auth;
pub mod clock;
pub mod config;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod probes;
pub mod ratelimit;
pub mod response_config;
pub mod serve;

pub use config::Config;

/// Opens the store the config names: PostgreSQL if `database_url` is set,
/// otherwise the embedded SQLite file in `data_dir`.
pub async fn open_store(config: &Config) -> Result<SqlStore, faultline_store::StoreError> {
    match &config.database_url {
        Some(url) => SqlStore::connect(url).await,
        None => SqlStore::open_sqlite(&config.data_dir).await,
    }
}

pub struct App {
    config: Config,
    store: SqlStore,
    state: http::AppState,
    /// The engine and its queue until `start_engine` moves them into a task.
    engine: Option<(Engine, mpsc::Receiver<Event>)>,
    /// The connection budget every listener shares (`serve`).
    gate: serve::Gate,
}

impl App {
    pub async fn open(config: Config) -> anyhow::Result<App> {
        let store = open_store(&config).await?;
        Ok(App::with_store(config, store, Arc::new(clock::SystemClock)))
    }

    pub fn with_store(config: Config, store: SqlStore, clock: Arc<dyn clock::Clock>) -> App {
        let shared: Arc<dyn Store> = Arc::new(store.clone());
        let mut checkins = faultline_core::detect::checkin::CheckInMonitor::new();
        for check in &config.checks {
            // Schedules were validated when the config was loaded.
            if let Err(e) = checkins.add_check(check.clone()) {
                tracing::error!(check = %check.name, error = %e, "check-in not registered");
            }
        }
        let mut detectors = DetectorSet::standard().with_checkins(checkins);
        let slos: Vec<http::slos::SharedSlo> =
            config.slos.iter().map(|spec| http::slos::SharedSlo::new(faultline_core::slo::SloMonitor::new(spec.clone()))).collect();
        for slo in &slos {
            detectors.push(Box::new(slo.clone()));
        }
        // The catalogue's flows (from the response config) tell the
        // correlator which flows an incident impacts; the learned graph adds
        // the edges as traffic arrives (see `ingest`).
        let flows = config.response.as_ref().map(|r| r.setup.catalogue.flows.clone()).unwrap_or_default();
        let pipeline = Pipeline::new(
            detectors,
            config.correlator,
            Topology::new(Vec::new(), flows.clone()),
            // Severity rules from the response config (validated on load).
            config.response.as_ref().map_or_else(|| SeverityDefinitions::standard(Vec::new()), |r| r.severity.clone()),
        );
        let engine = Engine::new(pipeline, shared.clone());
        let findings = engine.findings_view();
        let (handle, rx) = Engine::channel(config.engine_queue);
        let mut metrics = metrics::Metrics::new();
        let _ = metrics.engine_bounds.set(engine.bounds_view());
        metrics.register_store(store.health());
        let limits = serve::ConnectionLimits {
            max_connections: serve::effective_max_connections(config.max_connections, serve::fd_limit()),
            max_connections_per_client: config.max_connections_per_client,
            header_read_timeout: config.header_read_timeout,
            idle_timeout: config.idle_timeout,
        };
        if limits.max_connections < config.max_connections {
            tracing::warn!(
                configured = config.max_connections,
                effective = limits.max_connections,
                "max_connections lowered to fit the file-descriptor limit (raise `ulimit -n`)"
            );
        }
        let gate = serve::Gate::new(limits, config.trusted_proxies.clone().into(), &mut metrics.registry);
        let ingest_auth = match config.ingest_auth {
            config::IngestAuthMode::Token => {
                faultline_receivers::auth::IngestAuth::Required(Arc::new(auth::IngestTokens { store: shared.clone(), failures: metrics.auth_failures.clone() }))
            }
            config::IngestAuthMode::None => faultline_receivers::auth::IngestAuth::Open,
        };
        // One budget of request bytes in flight for the API's routes and the ingest routes alike.
        let bodies = faultline_receivers::inflight::BodyBudget::new(config.max_request_bytes_in_flight);
        bodies.register_metrics(&mut metrics.registry);
        let ingest = ingest::start(&config, ingest_auth, bodies.clone(), handle.clone(), clock.clone(), &mut metrics.registry);
        let state = http::AppState {
            store: shared,
            metrics: Arc::new(metrics),
            ingest,
            clock,
            engine: handle,
            findings,
            checks: Arc::new(config.checks.iter().map(|c| c.name.clone()).collect()),
            slos: Arc::new(slos),
            ingest_auth: config.ingest_auth,
            pagerduty_routing_keys: config.pagerduty_routing_keys.clone().into(),
            response: http::response::ResponseState::new(config.response.as_deref(), &store, &config.subscribers),
            trusted_proxies: config.trusted_proxies.clone().into(),
            bodies,
        };
        App { config, store, state, engine: Some((engine, rx)), gate }
    }

    /// Starts the correlation engine as a task on the current runtime (once;
    /// later calls return `None`). It stops when `shutdown` completes.
    pub fn start_engine(&mut self, shutdown: impl Future<Output = ()> + Send + 'static) -> Option<tokio::task::JoinHandle<()>> {
        let (engine, rx) = self.engine.take()?;
        let clock = self.state.clock.clone();
        Some(tokio::spawn(engine.run(rx, move || clock.now(), self.config.tick_interval, shutdown)))
    }

    pub fn state(&self) -> &http::AppState {
        &self.state
    }

    /// The connection budget and its limits (as lowered to the fd limit).
    pub fn gate(&self) -> &serve::Gate {
        &self.gate
    }

    /// The API plus OTLP/HTTP and remote-write ingest on the same listener.
    /// Ingest routes carry their own body limits and backpressure, so they
    /// are merged outside the API's limit and timeout layers.
    pub fn router(&self) -> axum::Router {
        http::router(self.state.clone(), &http::Limits { max_body_bytes: self.config.max_body_bytes, request_timeout: self.config.request_timeout })
            .merge(self.state.ingest.router())
    }

    /// Binds the configured address. Separate from `run` so callers can learn
    /// the real port when binding `:0`. Warns loudly (before anything is
    /// served) when ingest is open to anyone beyond loopback.
    pub async fn bind(&self) -> anyhow::Result<TcpListener> {
        if let Some(warning) = self.config.open_ingest_warning() {
            tracing::warn!("{warning}");
        }
        TcpListener::bind(self.config.listen).await.map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", self.config.listen))
    }

    /// Serves until `shutdown` completes, then stops accepting connections,
    /// lets in-flight requests finish (so accepted writes are committed) for
    /// up to `shutdown_grace`, and closes the database.
    pub async fn run(mut self, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let addr: SocketAddr = listener.local_addr()?;
        tracing::info!(%addr, backend = ?self.store.backend(), "faultline listening");
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        ingest::restore_graph(&self.store, &self.state.ingest, self.state.clock.now()).await;
        let graph_keeper =
            ingest::keep_graph(self.state.store.clone(), self.state.ingest.clone(), self.state.clock.clone(), self.config.tick_interval, stop_rx.clone());
        let ingest_tasks = ingest::serve_listeners(&self.config, &self.state.ingest, &self.gate, stop_rx.clone()).await?;
        let clock = self.state.clock.clone();
        let probe_tasks = probes::start(&self.config.probes, self.state.engine.clone(), move || clock.now(), stop_rx.clone());
        let mut engine_stop = stop_rx.clone();
        let engine_task = self.start_engine(async move {
            let _ = engine_stop.wait_for(|s| *s).await;
        });
        // Response workflow (driver + outbox worker); catches up on start.
        let response_tasks = self.state.response.start(self.state.clock.clone(), self.config.tick_interval, stop_rx.clone());
        let server = serve::serve(listener, self.router(), self.gate.clone(), async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let grace = self.config.shutdown_grace;
        let mut stop_rx2 = stop_rx.clone();
        tokio::select! {
            () = server => {},
            // Stop waiting for slow clients once the grace period after the
            // shutdown signal has passed.
            () = async move {
                let _ = stop_rx2.wait_for(|s| *s).await;
                tokio::time::sleep(grace).await;
            } => tracing::warn!("shutdown grace period elapsed; closing remaining connections"),
        }
        for task in probe_tasks.into_iter().chain(ingest_tasks) {
            let _ = task.await;
        }
        // The graph's last save, after ingest stopped and before the store closes.
        let _ = graph_keeper.await;
        // The engine finishes the event in hand and stops; then the database closes.
        if let Some(task) = engine_task {
            let _ = task.await;
        }
        for task in response_tasks {
            let _ = task.await;
        }
        self.store.close().await;
        tracing::info!("faultline stopped");
        Ok(())
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
