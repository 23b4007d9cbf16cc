//! Faultline's runtime driver. One task owns the core `Pipeline` (detectors →
//! correlator → incident actions) and feeds it a closed set of `Event`s from
//! a bounded channel; it carries out the resulting `IncidentAction`s against
//! the `Store` — opening incidents and appending correlator events to their
//! timelines as `system:correlator`.
//!
//! What it is: the single writer of correlation state, and the place where
//! core decisions meet real time and real storage. `Engine::process` is the
//! whole loop body and is called directly by tests with a chosen `now`, so
//! engine tests need no sleeps.
//!
//! What it is not: HTTP (the server turns requests into `Event`s), protocol
//! decoding (receivers), or decision-making (the core). Correlator state is
//! in memory: after a restart, open incidents stay open in the store but new
//! symptoms join them: the correlator's groups and their incidents are
//! saved in the store after every turn that changed them and restored when
//! the engine starts (`Engine::restore`).

use std::collections::BTreeMap;
use std::sync::Arc;

use faultline_core::correlate::{GroupId, MemberKey, Topology};
use faultline_core::incident::{Actor, Command, Incident, IncidentEvent, TransitionError};
use faultline_core::pipeline::{IncidentAction, Pipeline};
use faultline_core::signal::Signal;
use faultline_core::{Finding, IncidentId, Subject, Timestamp};
use faultline_store::{Store, StoreError, commands};
use tokio::sync::{mpsc, oneshot};

pub mod notify;
pub mod response;

/// Everything that can happen to the engine. Closed on purpose: every
/// trigger of engine work is visible here.
#[derive(Debug)]
pub enum Event {
    Signals(Vec<Signal>),
    Finding(Finding),
    Cleared { kind: String, subject: Subject },
    /// An external alert was acknowledged at its source (PagerDuty Events
    /// `acknowledge`): acknowledge the incident it belongs to.
    AlertAcknowledged { source: String, fingerprint: String },
    Topology(Topology),
    /// Let time pass (hold-down resolution, silence detectors).
    Tick,
    /// Reply once every event sent before it has been processed.
    Flush(oneshot::Sender<()>),
}

/// The sending side, held by receivers and HTTP handlers.
#[derive(Clone, Debug)]
pub struct EngineHandle {
    tx: mpsc::Sender<Event>,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("the engine queue is full; retry later")]
    Full,
    #[error("the engine has stopped")]
    Stopped,
}

impl EngineHandle {
    /// Queues an event without waiting: a full queue is backpressure the
    /// caller passes on (HTTP 429/503), never unbounded buffering.
    pub fn try_send(&self, event: Event) -> Result<(), SendError> {
        self.tx.try_send(event).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::Full,
            mpsc::error::TrySendError::Closed(_) => SendError::Stopped,
        })
    }

    /// Waits until everything queued before this call has been processed.
    pub async fn flush(&self) -> Result<(), SendError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Event::Flush(tx)).await.map_err(|_| SendError::Stopped)?;
        rx.await.map_err(|_| SendError::Stopped)
    }
}

pub struct Engine {
    pipeline: Pipeline,
    store: Arc<dyn Store>,
    incidents: BTreeMap<GroupId, IncidentId>,
    actor: Actor,
    findings: FindingsView,
}

/// A finding the correlator holds, with the incident it joined.
#[derive(Clone, Debug)]
pub struct FindingRecord {
    pub finding: Finding,
    pub incident: Option<IncidentId>,
    /// False once its detector reported it cleared.
    pub active: bool,
}

/// A read-only snapshot of the findings in open incidents, refreshed by the
/// engine after every turn that changed something. Readers (the HTTP API)
/// never block the engine for longer than a clone.
#[derive(Clone, Debug, Default)]
pub struct FindingsView(Arc<std::sync::RwLock<Vec<FindingRecord>>>);

impl FindingsView {
    pub fn snapshot(&self) -> Vec<FindingRecord> {
        // A poisoned lock means a reader panicked mid-clone; the data is still
        // a consistent Vec, so read through the poison rather than fail.
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

impl Engine {
    pub fn new(pipeline: Pipeline, store: Arc<dyn Store>) -> Engine {
        Engine { pipeline, store, incidents: BTreeMap::new(), actor: Actor::System("correlator".into()), findings: FindingsView::default() }
    }

    /// The findings snapshot this engine keeps up to date.
    pub fn findings_view(&self) -> FindingsView {
        self.findings.clone()
    }

    fn refresh_findings(&self) {
        let records: Vec<FindingRecord> = self
            .pipeline
            .correlator()
            .open_groups()
            .flat_map(|g| {
                let incident = self.incidents.get(&g.id).copied();
                g.members.values().filter_map(move |m| m.finding.clone().map(|finding| FindingRecord { finding, incident, active: m.active }))
            })
            .collect();
        *self.findings.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = records;
    }

    /// The incident a correlator group became.
    pub fn incident_of(&self, group: GroupId) -> Option<IncidentId> {
        self.incidents.get(&group).copied()
    }

    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// A bounded channel and its handle. `capacity` events may wait.
    pub fn channel(capacity: usize) -> (EngineHandle, mpsc::Receiver<Event>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (EngineHandle { tx }, rx)
    }

    /// Loads the correlator's saved groups and their incidents, if any. A
    /// state that cannot be read is logged and correlation starts afresh —
    /// incidents in the store are untouched either way.
    pub async fn restore(&mut self) -> Result<bool, StoreError> {
        let Some(json) = self.store.load_state(STATE_KEY).await? else { return Ok(false) };
        match serde_json::from_str::<Saved>(&json) {
            Ok(saved) => {
                self.pipeline.restore_correlator(saved.correlator);
                self.incidents = saved.incidents.into_iter().collect();
                self.refresh_findings();
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(error = %e, "saved correlator state unreadable; starting afresh");
                Ok(false)
            }
        }
    }

    // `&mut self`, not `&self`: a shared borrow held across the await would
    // need the engine to be `Sync`, which its detectors are not.
    async fn persist(&mut self, now: Timestamp) -> Result<(), StoreError> {
        let saved = SavedRef { correlator: self.pipeline.correlator(), incidents: self.incidents.iter().map(|(g, i)| (*g, *i)).collect() };
        let json = serde_json::to_string(&saved).map_err(|e| StoreError::Corrupt(format!("cannot serialise correlator state: {e}")))?;
        self.store.save_state(STATE_KEY, &json, now).await
    }

    /// Processes events until every handle is dropped or `shutdown` fires;
    /// ticks every `tick` of real time.
    pub async fn run(
        mut self,
        mut rx: mpsc::Receiver<Event>,
        now: impl Fn() -> Timestamp + Send,
        tick: std::time::Duration,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        match self.restore().await {
            Ok(true) => tracing::info!("correlator state restored"),
            Ok(false) => {}
            Err(e) => tracing::error!(error = %e, "could not read correlator state"),
        }
        loop {
            let event = tokio::select! {
                e = rx.recv() => match e { Some(e) => e, None => break },
                _ = interval.tick() => Event::Tick,
                () = &mut shutdown => break,
            };
            if let Err(e) = self.process(event, now()).await {
                tracing::error!(error = %e, "engine could not record a correlation decision");
            }
        }
        tracing::info!("engine stopped");
    }

    /// One turn of the loop: feed the event to the pipeline and carry out
    /// what it decides.
    pub async fn process(&mut self, event: Event, now: Timestamp) -> Result<(), StoreError> {
        let actions = match event {
            Event::Signals(signals) => signals.iter().flat_map(|s| self.pipeline.observe_signal(s, now)).collect(),
            Event::Finding(f) => self.pipeline.observe_finding(f, now),
            Event::Cleared { kind, subject } => self.pipeline.observe_cleared(kind, subject, now),
            Event::Topology(t) => {
                self.pipeline.set_topology(t);
                Vec::new()
            }
            Event::Tick => self.pipeline.tick(now),
            Event::AlertAcknowledged { source, fingerprint } => {
                let key = MemberKey::Alert { source, fingerprint };
                if let Some(id) = self.pipeline.correlator().group_of(&key).and_then(|g| self.incident_of(g)) {
                    self.command(id, Command::Acknowledge, now).await?;
                }
                Vec::new()
            }
            Event::Flush(reply) => {
                let _ = reply.send(());
                Vec::new()
            }
        };
        let changed = !actions.is_empty();
        for action in actions {
            self.apply(action, now).await?;
        }
        if changed {
            self.refresh_findings();
            self.persist(now).await?;
        }
        Ok(())
    }

    async fn apply(&mut self, action: IncidentAction, now: Timestamp) -> Result<(), StoreError> {
        match action {
            IncidentAction::Open { group, title, severity, summary, at } => {
                let id = new_incident_id(now);
                let opened = Incident::open(&truncate(&title, 200), severity, summary.as_deref(), at.min(now), self.actor.clone())?;
                self.store.create_incident(id, &opened).await?;
                self.incidents.insert(group, id);
                tracing::info!(%id, %group, %title, "incident opened by the correlator");
            }
            IncidentAction::Record { group, event, at } => {
                if let Some(id) = self.incidents.get(&group).copied() {
                    self.command(id, Command::Record(event), at.min(now)).await?;
                }
            }
            IncidentAction::Link { group, previous, at } => {
                if let (Some(id), Some(prev)) = (self.incidents.get(&group).copied(), self.incidents.get(&previous).copied()) {
                    self.command(id, Command::Record(IncidentEvent::LinkedTo { previous: prev }), at.min(now)).await?;
                }
            }
            IncidentAction::Merge { into, from, at } => {
                if let (Some(into_id), Some(from_id)) = (self.incidents.get(&into).copied(), self.incidents.get(&from).copied()) {
                    self.command(from_id, Command::Record(IncidentEvent::MergedInto { into: into_id }), at.min(now)).await?;
                    self.command(into_id, Command::Record(IncidentEvent::Absorbed { from: from_id }), at.min(now)).await?;
                    self.incidents.insert(from, into_id);
                }
            }
        }
        Ok(())
    }

    /// Runs a command as the correlator. A refusal by the state machine is
    /// not an engine failure — a person may already have resolved the
    /// incident the correlator now wants to resolve — so it is logged.
    /// (Owned `store`/`actor`, not `&self`: the engine holds `!Sync`
    /// detectors, and a borrow of it must not live across an await.)
    fn command(&self, id: IncidentId, command: Command, at: Timestamp) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        let store = self.store.clone();
        let actor = self.actor.clone();
        async move { run_command(store, actor, id, command, at).await }
    }
}

async fn run_command(store: Arc<dyn Store>, actor: Actor, id: IncidentId, command: Command, at: Timestamp) -> Result<(), StoreError> {
    {
        let name = command.name();
        match commands::execute(store.as_ref(), id, command, actor, at).await {
            Ok(_) => Ok(()),
            Err(StoreError::Invalid(
                e @ (TransitionError::AlreadyInStatus(_) | TransitionError::NotAllowed { .. }),
            )) => {
                tracing::debug!(%id, error = %e, "correlator {name} not applied");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

/// The store key of the correlator's saved state.
const STATE_KEY: &str = "correlator";

#[derive(serde::Deserialize)]
struct Saved {
    correlator: faultline_core::correlate::Correlator,
    incidents: Vec<(GroupId, IncidentId)>,
}

#[derive(serde::Serialize)]
struct SavedRef<'a> {
    correlator: &'a faultline_core::correlate::Correlator,
    incidents: Vec<(GroupId, IncidentId)>,
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// A new incident id: UUID v7 from `now`, so ids sort by creation time.
/// The one generator for incidents opened by the correlator and by people.
pub fn new_incident_id(now: Timestamp) -> IncidentId {
    let ms = now.as_millis().max(0);
    let ts = uuid::Timestamp::from_unix(uuid::NoContext, (ms / 1000) as u64, ((ms % 1000) * 1_000_000) as u32);
    IncidentId::from_uuid(uuid::Uuid::new_v7(ts))
}
