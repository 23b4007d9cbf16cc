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
//! in memory and saved incrementally: each turn writes the group headers and
//! members it changed (`Correlator::take_changes`, one row each, with the
//! incident each group became), so a turn costs what it touched, not the
//! alerts held; at start the correlator is rebuilt from those rows
//! (`Engine::restore`), so after a restart new symptoms join the incidents
//! opened before it. A whole-state save of an older version is read once
//! and replaced by rows.
//!
//! Group commit: a turn takes every event already waiting (up to
//! `MAX_TURN_EVENTS`) and writes what they decided — incidents opened, each
//! incident's new events, the correlator rows — in ONE transaction
//! (`Store::commit_turn`), so an alert storm costs one commit per turn
//! rather than one per alert, and a crash can never leave an incident the
//! saved state does not know. Senders of `Event::DurableSignals` are told
//! after that commit.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use faultline_core::correlate::{Correlator, CorrelatorChanges, CorrelatorConfig, GroupHeader, GroupId, Member, MemberKey, Topology};
use faultline_core::incident::{Actor, Command, Incident, IncidentEvent, TimelineEvent, TransitionError};
use faultline_core::pipeline::{IncidentAction, Pipeline};
use faultline_core::signal::Signal;
use faultline_core::{Finding, IncidentId, Subject, Timestamp};
use faultline_store::{CorrelatorWrite, SavedCorrelator, SavedGroup, SavedMember, Store, StoreError, Turn, commands};
use tokio::sync::{mpsc, oneshot};

pub mod ack_link;
pub mod notify;
pub mod response;

/// Everything that can happen to the engine. Closed on purpose: every
/// trigger of engine work is visible here.
#[derive(Debug)]
pub enum Event {
    Signals(Vec<Signal>),
    /// Signals whose sender waits until they are committed: `committed`
    /// gets `true` once the turn that processed them is in the store (the
    /// incidents it opened or changed and the correlator state, in one
    /// transaction), `false` if that commit failed. Alert ingest answers
    /// 200 only then, so an accepted alert survives a kill -9.
    DurableSignals {
        signals: Vec<Signal>,
        committed: oneshot::Sender<bool>,
        /// Kept alive until the event is processed, then dropped: the
        /// sender's share of a memory budget (the request's bytes in
        /// flight), so an event still queued after its sender gave up keeps
        /// counting against that budget instead of escaping it.
        hold: Option<Hold>,
    },
    Finding(Finding),
    Cleared {
        kind: String,
        subject: Subject,
    },
    /// An external alert was acknowledged at its source (PagerDuty Events
    /// `acknowledge`): acknowledge the incident it belongs to.
    AlertAcknowledged {
        source: String,
        fingerprint: String,
    },
    Topology(Topology),
    /// An incident was resolved outside the correlator (a person, the API):
    /// if it is still resolved when this is processed, the correlator groups
    /// that became it are closed, so the next symptom opens (or reopens) an
    /// incident and is paged instead of attaching to the resolved one.
    IncidentResolved(IncidentId),
    /// Let time pass (hold-down resolution, silence detectors).
    Tick,
    /// Reply once every event sent before it has been processed.
    Flush(oneshot::Sender<()>),
}

/// Whatever a sender wants kept alive while its event waits (see
/// `Event::DurableSignals::hold`); the engine never looks inside.
pub type Hold = Box<dyn std::any::Any + Send + Sync>;

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

    /// Queues an event, waiting for room. Only for a bridge whose own
    /// senders are told about backpressure further up (the telemetry
    /// receivers' queue fills while this waits); request handlers use
    /// `try_send` and answer 503 themselves.
    pub async fn send(&self, event: Event) -> Result<(), SendError> {
        self.tx.send(event).await.map_err(|_| SendError::Stopped)
    }

    /// Queues signals without waiting for room; the receiver resolves to
    /// `true` once they are committed (see `Event::DurableSignals`).
    pub fn try_send_durable(&self, signals: Vec<Signal>, hold: Option<Hold>) -> Result<oneshot::Receiver<bool>, SendError> {
        let (committed, rx) = oneshot::channel();
        self.try_send(Event::DurableSignals { signals, committed, hold })?;
        Ok(rx)
    }

    /// Tells the engine an incident was resolved outside it. Never waits: a
    /// full queue hands the event to a task that waits for room (a person's
    /// resolve must not fail because telemetry is busy). If the engine never
    /// hears of it, nothing goes quiet: a symptom for a resolved incident
    /// reopens it (`Incident::decide_correlated`), and a restart closes the
    /// groups of resolved incidents (`Engine::restore`).
    pub fn incident_resolved(&self, id: IncidentId) {
        match self.tx.try_send(Event::IncidentResolved(id)) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(event)) => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send(event).await;
                });
            }
        }
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
    bounds: BoundsView,
    /// Set when a turn failed to commit: the correlator then knows groups,
    /// members and merges the store does not, so before the next turn it is
    /// reloaded from the last committed state (or started afresh if none).
    stale: bool,
    /// Set when the saved correlator rows are not a base to continue from
    /// (unreadable, or the state came from an older whole-state save): the
    /// next commit saves the whole correlator, replacing them.
    full_save: bool,
    /// Groups whose incident changed this turn: their rows are written even
    /// if the correlator did not touch them.
    remapped: BTreeSet<GroupId>,
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

/// What the engine's bounded tables evicted so far, by table
/// (`detector:<name>`, `correlator_members`), refreshed on every tick; read by
/// `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct BoundsView(Arc<std::sync::RwLock<Vec<(String, u64)>>>);

impl BoundsView {
    pub fn snapshot(&self) -> Vec<(String, u64)> {
        // A poisoned lock still holds a consistent Vec (see FindingsView).
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

impl FindingsView {
    pub fn snapshot(&self) -> Vec<FindingRecord> {
        // A poisoned lock means a reader panicked mid-clone; the data is still
        // a consistent Vec, so read through the poison rather than fail.
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

impl Engine {
    pub fn new(pipeline: Pipeline, store: Arc<dyn Store>) -> Engine {
        Engine {
            pipeline,
            store,
            incidents: BTreeMap::new(),
            actor: Actor::System("correlator".into()),
            findings: FindingsView::default(),
            bounds: BoundsView::default(),
            stale: false,
            full_save: false,
            remapped: BTreeSet::new(),
        }
    }

    /// The findings snapshot this engine keeps up to date.
    pub fn findings_view(&self) -> FindingsView {
        self.findings.clone()
    }

    /// The eviction counters this engine keeps up to date.
    pub fn bounds_view(&self) -> BoundsView {
        self.bounds.clone()
    }

    fn refresh_bounds(&self) {
        let mut all: Vec<(String, u64)> = self.pipeline.detectors().evicted().into_iter().map(|(name, n)| (format!("detector:{name}"), n)).collect();
        all.push(("correlator_members".to_owned(), self.pipeline.correlator().evicted()));
        all.sort();
        *self.bounds.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = all;
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

    /// Rebuilds the correlator and its group → incident map from the saved
    /// rows, if any (run with this engine's correlator config). Without rows,
    /// an older version's whole-state save is read instead, and the next
    /// commit replaces it with rows. A state that cannot be read is logged
    /// and correlation starts afresh (the next commit replaces the rows) —
    /// incidents in the store are untouched either way.
    pub async fn restore(&mut self) -> Result<bool, StoreError> {
        let config = self.pipeline.correlator().config();
        let decoded = match self.store.load_correlator().await? {
            Some(saved) => decode_rows(config, saved),
            None => {
                let Some(json) = self.store.load_state(LEGACY_STATE_KEY).await? else { return Ok(false) };
                decode_legacy(config, &json)
            }
        };
        match decoded {
            Ok((correlator, incidents, from_legacy)) => {
                self.pipeline.restore_correlator(correlator);
                self.incidents = incidents;
                self.remapped.clear();
                self.full_save = from_legacy;
                if from_legacy {
                    tracing::info!("correlator read from a whole-state save; the next turn saves it as rows");
                }
                self.close_resolved_groups(None).await?;
                self.refresh_findings();
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(error = %e, "saved correlator state unreadable; starting afresh");
                self.full_save = true;
                Ok(false)
            }
        }
    }

    /// Closes the open groups whose incident is resolved in the store — all
    /// of them (`only: None`, after a restart: a person may have resolved an
    /// incident while the engine was down or before it heard of it), or
    /// those of one incident. Returns how many were closed; their rows are
    /// saved with the next commit.
    async fn close_resolved_groups(&mut self, only: Option<IncidentId>) -> Result<usize, StoreError> {
        let candidates: BTreeSet<IncidentId> =
            self.pipeline.correlator().open_groups().filter_map(|g| self.incidents.get(&g.id).copied()).filter(|id| only.is_none_or(|o| o == *id)).collect();
        let mut resolved = BTreeSet::new();
        for id in candidates {
            if let Some(state) = self.store.incident_state(id).await?
                && !state.status.is_open()
            {
                resolved.insert((id, state.resolved_at.unwrap_or(state.updated_at)));
            }
        }
        let mut closed = 0;
        for (id, resolved_at) in resolved {
            let groups: Vec<GroupId> = self.pipeline.correlator().open_groups().map(|g| g.id).filter(|g| self.incidents.get(g) == Some(&id)).collect();
            for g in groups {
                if self.pipeline.close_group(g, resolved_at) {
                    closed += 1;
                    tracing::info!(incident = %id, group = %g, "correlator group closed: its incident was resolved outside the correlator");
                }
            }
        }
        Ok(closed)
    }

    /// Gives the detectors back the baselines an earlier run saved
    /// (`save_learned`), so detection needs no warm-up after a restart. An
    /// unreadable save is logged and detection learns afresh.
    pub async fn restore_learned(&mut self) -> Result<(), StoreError> {
        let Some(json) = self.store.load_state(LEARNED_STATE_KEY).await? else { return Ok(()) };
        match serde_json::from_str(&json) {
            Ok(saved) => {
                for refusal in self.pipeline.relearn(saved) {
                    tracing::warn!(%refusal, "a detector's saved baselines were refused; it learns afresh");
                }
                tracing::info!("detector baselines restored");
            }
            Err(e) => tracing::warn!(error = %e, "saved detector baselines unreadable; detection learns afresh"),
        }
        Ok(())
    }

    /// Saves the detectors' baselines (`Pipeline::learned`): every
    /// `LEARNED_SAVE_TICKS` ticks and at shutdown.
    /// The baselines are encoded before the returned future is awaited, so
    /// it holds no borrow of the engine (whose detectors are not `Sync`).
    pub fn save_learned(&self, now: Timestamp) -> impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static {
        let json = serde_json::to_string(&self.pipeline.learned()).map_err(|e| StoreError::Corrupt(format!("cannot encode detector baselines: {e}")));
        let store = self.store.clone();
        async move { store.save_state(LEARNED_STATE_KEY, &json?, now).await }
    }

    /// Puts the correlator and the group → incident map back to the last
    /// committed state (a fresh correlator if nothing was ever committed).
    async fn reload_committed(&mut self) -> Result<(), StoreError> {
        if !self.restore().await? {
            let config = self.pipeline.correlator().config();
            self.pipeline.restore_correlator(Correlator::new(config));
            self.incidents.clear();
            self.remapped.clear();
            self.refresh_findings();
        }
        tracing::warn!("correlator reloaded from the store after a failed commit");
        Ok(())
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
        if let Err(e) = self.restore_learned().await {
            tracing::warn!(error = %e, "could not read detector baselines; detection learns afresh");
        }
        let mut ticks: u32 = 0;
        loop {
            let event = tokio::select! {
                e = rx.recv() => match e { Some(e) => e, None => break },
                _ = interval.tick() => {
                    ticks = ticks.wrapping_add(1);
                    if ticks.is_multiple_of(LEARNED_SAVE_TICKS)
                        && let Err(e) = self.save_learned(now()).await
                    {
                        tracing::warn!(error = %e, "could not save detector baselines");
                    }
                    Event::Tick
                }
                () = &mut shutdown => break,
            };
            // Group commit: everything already waiting joins this turn, so
            // a storm costs one transaction per turn, not one per request.
            let mut events = vec![event];
            while events.len() < MAX_TURN_EVENTS {
                match rx.try_recv() {
                    Ok(e) => events.push(e),
                    Err(_) => break,
                }
            }
            if let Err(e) = self.process_turn(events, now()).await {
                tracing::error!(error = %e, "engine could not record a correlation decision");
            }
        }
        if let Err(e) = self.save_learned(now()).await {
            tracing::warn!(error = %e, "could not save detector baselines at shutdown");
        }
        tracing::info!("engine stopped");
    }

    /// One turn of the loop: feed the event to the pipeline and carry out
    /// what it decides.
    pub async fn process(&mut self, event: Event, now: Timestamp) -> Result<(), StoreError> {
        self.process_turn(vec![event], now).await
    }

    /// One turn over several events: each goes through the pipeline in
    /// order, then everything they decided — incidents opened, events for
    /// each incident (one `Decide` per incident, in order), the correlator
    /// rows the turn changed — is committed in ONE transaction
    /// (`Store::commit_turn`), and only then are durable senders told and
    /// flushes answered.
    pub async fn process_turn(&mut self, events: Vec<Event>, now: Timestamp) -> Result<(), StoreError> {
        if self.stale {
            if let Err(e) = self.reload_committed().await {
                // Still cannot read what was committed: refuse the turn
                // rather than decide on a state the store does not hold.
                for event in events {
                    match event {
                        Event::DurableSignals { committed, .. } => {
                            let _ = committed.send(false);
                        }
                        Event::Flush(reply) => {
                            let _ = reply.send(());
                        }
                        _ => {}
                    }
                }
                return Err(e);
            }
            self.stale = false;
        }
        let mut committed = Vec::new();
        let mut flushes = Vec::new();
        let mut turn = TurnBuilder::default();
        let mut changed = false;
        let mut changed_correlator = false;
        let mut ticked = false;
        let mut result = Ok(());
        for event in events {
            let actions: Vec<IncidentAction> = match event {
                Event::Signals(signals) => signals.iter().flat_map(|s| self.pipeline.observe_signal(s, now)).collect(),
                Event::DurableSignals { signals, committed: tx, hold: _ } => {
                    committed.push(tx);
                    signals.iter().flat_map(|s| self.pipeline.observe_signal(s, now)).collect()
                }
                Event::Finding(f) => self.pipeline.observe_finding(f, now),
                Event::Cleared { kind, subject } => self.pipeline.observe_cleared(kind, subject, now),
                Event::Topology(t) => {
                    self.pipeline.set_topology(t);
                    Vec::new()
                }
                Event::Tick => {
                    ticked = true;
                    self.refresh_bounds();
                    self.pipeline.tick(now)
                }
                Event::AlertAcknowledged { source, fingerprint } => {
                    let key = MemberKey::Alert { source, fingerprint };
                    if let Some(id) = self.pipeline.correlator().group_of(&key).and_then(|g| self.incident_of(g)) {
                        turn.record(id, Command::Acknowledge, now);
                    }
                    Vec::new()
                }
                Event::IncidentResolved(id) => {
                    match self.close_resolved_groups(Some(id)).await {
                        Ok(0) => {}
                        // Closing changes no incident, but its rows must be
                        // saved before anything decided on it is.
                        Ok(_) => changed_correlator = true,
                        Err(e) => tracing::warn!(incident = %id, error = %e, "could not read a resolved incident; its groups stay open until a restart"),
                    }
                    Vec::new()
                }
                Event::Flush(reply) => {
                    flushes.push(reply);
                    Vec::new()
                }
            };
            changed |= !actions.is_empty();
            for action in actions {
                self.apply(action, now, &mut turn);
            }
        }
        // A turn that changed no incident may still have changed the
        // correlator: a re-sent alert refreshes its member (`endsAt`), a
        // group is forgotten. Such changes ride along with the next commit,
        // and at the latest are saved on the next tick or once
        // `MAX_DEFERRED_MEMBERS` wait, so a stream of re-sends costs a
        // commit per few thousand alerts, not per turn, and no commit grows
        // with it (a kill loses at most those refreshes, never a member or
        // an incident).
        let correlator = self.pipeline.correlator();
        let refreshes_due = (ticked && correlator.has_changes()) || correlator.changed_members() >= MAX_DEFERRED_MEMBERS;
        if changed || changed_correlator || !turn.is_empty() || refreshes_due || self.full_save {
            if changed {
                self.refresh_findings();
            }
            let opened = turn.opened.clone();
            result = self.commit(turn, now).await;
            if result.is_err() {
                // Nothing of the turn was written, but the correlator has
                // already taken it in (new groups, members, merges). Forget
                // the incidents it meant to open now, and reload the whole
                // correlator from the store before the next turn — else a
                // client's retry of a refused alert would join an in-memory
                // group with no incident and be answered 200 into nothing.
                for group in opened {
                    self.incidents.remove(&group);
                }
                self.stale = true;
            }
        }
        let ok = result.is_ok();
        for tx in committed {
            let _ = tx.send(ok);
        }
        for reply in flushes {
            let _ = reply.send(());
        }
        result
    }

    fn apply(&mut self, action: IncidentAction, now: Timestamp, turn: &mut TurnBuilder) {
        match action {
            IncidentAction::Open { group, title, severity, summary, at } => {
                let id = new_incident_id(now);
                match Incident::open(&truncate(&title, 200), severity, summary.as_deref(), at.min(now), self.actor.clone()) {
                    Ok(opened) => {
                        turn.create.push((id, opened));
                        turn.opened.push(group);
                        self.incidents.insert(group, id);
                        self.remapped.insert(group);
                        tracing::info!(%id, %group, %title, "incident opened by the correlator");
                    }
                    Err(e) => tracing::error!(%group, error = %e, "correlator incident not opened"),
                }
            }
            IncidentAction::Record { group, event, at } => {
                if let Some(id) = self.incidents.get(&group).copied() {
                    turn.record(id, Command::Record(event), at.min(now));
                }
            }
            IncidentAction::Reopen { group, previous, reason, at } => {
                if let Some(id) = self.incidents.get(&previous).copied() {
                    self.incidents.insert(group, id);
                    self.remapped.insert(group);
                    turn.record(id, Command::Reopen { reason }, at.min(now));
                    tracing::info!(%id, %group, "incident reopened by the correlator");
                } else {
                    tracing::warn!(%group, %previous, "recurrence of a group without an incident; nothing to reopen");
                }
            }
            IncidentAction::Link { group, previous, at } => {
                if let (Some(id), Some(prev)) = (self.incidents.get(&group).copied(), self.incidents.get(&previous).copied()) {
                    turn.record(id, Command::Record(IncidentEvent::LinkedTo { previous: prev }), at.min(now));
                }
            }
            IncidentAction::Merge { into, from, at } => {
                if let (Some(into_id), Some(from_id)) = (self.incidents.get(&into).copied(), self.incidents.get(&from).copied()) {
                    turn.record(from_id, Command::Record(IncidentEvent::MergedInto { into: into_id }), at.min(now));
                    turn.record(into_id, Command::Record(IncidentEvent::Absorbed { from: from_id }), at.min(now));
                    self.incidents.insert(from, into_id);
                    self.remapped.insert(from);
                }
            }
        }
    }

    /// Writes a turn, retrying while the database is busy (another writer
    /// holds SQLite's lock; the turn is rebuilt from its plain parts).
    async fn commit(&mut self, turn: TurnBuilder, now: Timestamp) -> Result<(), StoreError> {
        // Wall time, for the log only (how long turns take in a storm).
        let started = std::time::Instant::now();
        let full = self.full_save;
        let write = self.correlator_write()?;
        let (groups, members) = write.as_ref().map_or((0, 0), |w| (w.groups.len(), w.members.len()));
        // A full save supersedes an older version's whole-state save.
        let retire = full.then(|| LEGACY_STATE_KEY.to_owned());
        let mut attempt = 0;
        loop {
            match self.store.commit_turn(turn.build(&self.actor, write.clone(), retire.clone(), now)).await {
                Ok(_) => {
                    if full {
                        self.full_save = false;
                    }
                    let ms = started.elapsed().as_millis();
                    let (opened, updated) = (turn.create.len(), turn.commands.len());
                    if ms >= SLOW_TURN_MS {
                        tracing::warn!(ms, opened, updated, groups, members, attempt, "slow engine turn");
                    } else {
                        tracing::debug!(ms, opened, updated, groups, members, "engine turn committed");
                    }
                    return Ok(());
                }
                Err(StoreError::Busy(_)) if attempt + 1 < commands::MAX_ATTEMPTS => {
                    attempt += 1;
                    // Backoff for a short lock holder; not test synchronisation.
                    tokio::time::sleep(std::time::Duration::from_millis(10 << attempt.min(6))).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The correlator rows this turn writes: what the correlator changed
    /// (everything, replacing the saved rows, when a full save is due) plus
    /// the groups whose incident changed; `None` if nothing did. Groups the
    /// correlator forgot leave the group → incident map too.
    fn correlator_write(&mut self) -> Result<Option<CorrelatorWrite>, StoreError> {
        let replace = self.full_save;
        let mut changes: CorrelatorChanges = if replace { self.pipeline.take_whole_correlator() } else { self.pipeline.take_correlator_changes() };
        let remapped = std::mem::take(&mut self.remapped);
        let written: BTreeSet<GroupId> = changes.groups.iter().map(|h| h.id).collect();
        for gid in remapped.difference(&written) {
            if let Some(g) = self.pipeline.correlator().group(*gid) {
                changes.groups.push(g.header());
            }
        }
        for gid in &changes.removed_groups {
            self.incidents.remove(gid);
        }
        if !replace && changes.is_empty() {
            return Ok(None);
        }
        let encode = |what: &str, r: serde_json::Result<String>| r.map_err(|e| StoreError::Corrupt(format!("cannot serialise correlator {what}: {e}")));
        let mut write = CorrelatorWrite {
            replace,
            next_group_id: changes.next_group_id,
            removed_groups: changes.removed_groups.iter().map(|g| g.0).collect(),
            ..CorrelatorWrite::default()
        };
        for h in &changes.groups {
            let header_json = encode("group", serde_json::to_string(h))?;
            write.groups.push(SavedGroup { group: h.id.0, incident: self.incidents.get(&h.id).copied(), header_json });
        }
        for (gid, m) in &changes.members {
            let key = encode("member key", serde_json::to_string(&m.key))?;
            write.members.push(SavedMember { group: gid.0, key, member_json: encode("member", serde_json::to_string(m))? });
        }
        for (gid, key) in &changes.removed_members {
            write.removed_members.push((gid.0, encode("member key", serde_json::to_string(key))?));
        }
        Ok(Some(write))
    }
}

/// The correlator, its group → incident map, and whether it came from an
/// older whole-state save, from the saved rows.
type Restored = (Correlator, BTreeMap<GroupId, IncidentId>, bool);

fn decode_rows(config: CorrelatorConfig, saved: SavedCorrelator) -> Result<Restored, String> {
    let mut incidents = BTreeMap::new();
    let mut headers = Vec::with_capacity(saved.groups.len());
    for row in saved.groups {
        let h: GroupHeader = serde_json::from_str(&row.header_json).map_err(|e| format!("group {}: {e}", row.group))?;
        if h.id.0 != row.group {
            return Err(format!("group row {} holds group {}", row.group, h.id));
        }
        if let Some(id) = row.incident {
            incidents.insert(h.id, id);
        }
        headers.push(h);
    }
    let members = saved
        .members
        .into_iter()
        .map(|row| {
            serde_json::from_str::<Member>(&row.member_json)
                .map(|m| (GroupId(row.group), m))
                .map_err(|e| format!("member {} of group {}: {e}", row.key, row.group))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let correlator = Correlator::rebuild(config, saved.next_group_id, headers, members).map_err(|e| e.to_string())?;
    Ok((correlator, incidents, false))
}

/// An older version's whole-state save (the correlator and its incidents in
/// one JSON value), rebuilt with this engine's config.
fn decode_legacy(config: CorrelatorConfig, json: &str) -> Result<Restored, String> {
    let mut saved: LegacySaved = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let all = saved.correlator.take_everything();
    let correlator = Correlator::rebuild(config, all.next_group_id, all.groups, all.members).map_err(|e| e.to_string())?;
    // Only groups the correlator still holds keep their incident (as the
    // rows would).
    let incidents = saved.incidents.into_iter().filter(|(g, _)| correlator.group(*g).is_some()).collect();
    Ok((correlator, incidents, true))
}

/// The incidents one turn opens and the commands it runs on each, in order.
#[derive(Default)]
struct TurnBuilder {
    create: Vec<(IncidentId, TimelineEvent)>,
    /// The correlator groups those incidents are for.
    opened: Vec<GroupId>,
    /// Per incident, in first-touched order: its commands in order.
    commands: Vec<(IncidentId, Vec<(Command, Timestamp)>)>,
}

impl TurnBuilder {
    fn is_empty(&self) -> bool {
        self.create.is_empty() && self.commands.is_empty()
    }

    fn record(&mut self, id: IncidentId, command: Command, at: Timestamp) {
        match self.commands.iter_mut().find(|(i, _)| *i == id) {
            Some((_, cmds)) => cmds.push((command, at)),
            None => self.commands.push((id, vec![(command, at)])),
        }
    }

    fn build(&self, actor: &Actor, correlator: Option<CorrelatorWrite>, retire_state: Option<String>, now: Timestamp) -> Turn {
        let create = self.create.iter().map(|(id, opened)| (*id, opened.clone())).collect();
        let update = self
            .commands
            .iter()
            .map(|(id, cmds)| {
                let (id, cmds, actor) = (*id, cmds.clone(), actor.clone());
                let decide: faultline_store::Decide = Box::new(move |incident: &Incident| decide_all(incident, cmds, &actor));
                (id, decide)
            })
            .collect();
        Turn { create, update, correlator, retire_state, at: now }
    }
}

/// Decides a turn's commands for one incident in order. A refusal by the
/// state machine (a person resolved first) skips that command and is logged,
/// not an error: the engine decides nothing, it records.
fn decide_all(incident: &Incident, cmds: Vec<(Command, Timestamp)>, actor: &Actor) -> Result<Vec<TimelineEvent>, TransitionError> {
    let mut current = incident.clone();
    let mut out = Vec::with_capacity(cmds.len());
    for (command, at) in cmds {
        let name = command.name();
        // The core decides what a correlator command becomes here (a symptom
        // for a resolved incident reopens it first).
        match current.decide_correlated(command) {
            Ok(events) => {
                for event in events {
                    let ev = TimelineEvent { seq: current.version + 1, at, actor: actor.clone(), event };
                    current.apply(&ev)?;
                    out.push(ev);
                }
            }
            Err(
                e @ (TransitionError::AlreadyInStatus(_)
                | TransitionError::NotAllowed { .. }
                | TransitionError::NotRaised { .. }
                | TransitionError::TitleSetByPerson
                | TransitionError::Unchanged(_)),
            ) => {
                tracing::debug!(id = %incident.id, error = %e, "correlator {name} not applied");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Events taken from the queue into one turn, at most.
const MAX_TURN_EVENTS: usize = 1024;

/// Member changes no incident needed (re-sent alerts) wait for the next
/// commit or tick, but no more than this many.
const MAX_DEFERRED_MEMBERS: usize = 2048;

/// A turn whose commit takes this long (milliseconds) is logged as a warning.
const SLOW_TURN_MS: u128 = 1000;

/// The `engine_state` row the detectors' baselines are kept in.
pub const LEARNED_STATE_KEY: &str = "detector_baselines";

/// How often (in ticks) the detectors' baselines are saved while running;
/// a crash loses at most this much learning, a clean stop none.
const LEARNED_SAVE_TICKS: u32 = 60;

/// The `engine_state` name of the whole-state save older versions wrote
/// after every turn; read once, then replaced by the correlator rows.
pub const LEGACY_STATE_KEY: &str = "correlator";

/// That whole-state save.
#[derive(serde::Deserialize)]
struct LegacySaved {
    correlator: Correlator,
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
