//! The response driver: turns incident timelines into routing decisions,
//! persisted escalations and notifications in the outbox.
//!
//! What it is: [`ResponseDriver`], which reads every incident's timeline past
//! its persisted cursor — incidents opened by the correlator and by hand
//! alike, because both are just timelines in the store — and reacts:
//! opened → route (ownership from the catalogue, then the routing tree with
//! silences and maintenance) and start the escalation of each routed policy;
//! acknowledged / mitigated → stop escalating (and forward the
//! acknowledgement to incident-level channels such as PagerDuty);
//! resolved → send the resolve to everyone paged and to every channel that
//! got the trigger; reopened → page anew; severity or diagnosis changed →
//! route again and start any policy newly in play. Escalation timers are
//! persisted with their next wake-up; `tick` fires the due ones.
//!
//! Crash safety: one step (events read, escalation states, new outbox rows,
//! cursor) is committed in ONE transaction (`ResponseStore::commit_response`).
//! Timeline notes are written first and deduplicated on (component, text),
//! so a step replayed after a crash writes no note twice; its outbox rows
//! carry the core's deterministic idempotency keys, so it enqueues nothing
//! twice. A step lost before commit is redone from the cursor: no page lost.
//!
//! The contract "if a page was sent, its resolve is sent too" holds through
//! silences (the core escalation sends resolves whatever the silence),
//! suppression (a suppressed incident never paged, so owes nothing) and
//! restarts (state and outbox are durable).
//!
//! What it is not: sending (the outbox worker), config parsing (the server's
//! `response_config`), or decisions (core `routing` and `escalation`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use faultline_core::catalogue::Catalogue;
use faultline_core::escalation::{Effect, Escalation, EscalationInput, EscalationPolicy, Notification, NotifyKind, StaticDirectory};
use faultline_core::incident::{Actor, Command, Incident, IncidentEvent, TimelineEvent};
use faultline_core::routing::{CompiledSilence, Involvement, Labels, Outcome, Router, RoutingInput, TeamInvolvement, decide_ownership, routing_labels};
use faultline_core::status_page::{
    ComponentConfig, DraftUpdate, ImpactFacts, PageInfo, PublicIncident, ScheduledMaintenance, StatusPageView, WebhookMeta, diagnosis_is_confident,
    draft_update, public_name, publish,
};
use faultline_core::{FlowName, IncidentId, ServiceName, TeamId, Timestamp, UserId};
use faultline_store::response::{DraftRecord, EscalationRecord, OutboxItem, ResponseBatch, ResponseStore, Subscriber};
use faultline_store::{Store, StoreError, commands};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::ack_link::{AckLinkKey, LINK_LIFETIME_HOURS};
use crate::notify::worker::OutboxWorker;
use crate::notify::{Message, MessageKind, NowFn};

/// One way to reach a user: a configured channel, and the address on it
/// (an email address; none for a webhook that pages by body).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactMethod {
    pub channel: String,
    pub address: Option<String>,
}

/// The compiled response configuration the driver runs on.
#[derive(Clone, Debug, Default)]
pub struct ResponseSetup {
    pub catalogue: Catalogue,
    pub directory: StaticDirectory,
    pub policies: BTreeMap<String, EscalationPolicy>,
    /// The routing tree; without one every incident goes to `default_policy`.
    pub router: Option<Router>,
    /// Channels each routing receiver notifies at incident level (trigger,
    /// acknowledge, resolve): a Slack channel, PagerDuty forwarding, a webhook.
    pub receivers: BTreeMap<String, Vec<String>>,
    pub contacts: BTreeMap<UserId, Vec<ContactMethod>>,
    pub default_policy: Option<String>,
    /// Faultline's public URL, for links in messages.
    pub base_url: Option<String>,
    /// Status-page components (flows and chosen services).
    pub components: Vec<ComponentConfig>,
    /// Publish status-page drafts without waiting for the comms lead.
    pub auto_publish: bool,
    /// Channels that also get acknowledgements (PagerDuty forwarding).
    pub ack_channels: BTreeSet<String>,
    /// The public status page (name, URL) subscriber webhooks describe.
    pub page: PageInfo,
}

/// Times the automatic publish drafts again after losing a race to another
/// publish of the same incident before it gives up (the step is retried later).
const PUBLISH_ATTEMPTS: u32 = 3;

/// Outbox channel of a status-page subscriber: `subscriber:<id>`. Each
/// subscriber is its own channel, so one slow endpoint delays only itself.
pub const SUBSCRIBER_CHANNEL_PREFIX: &str = "subscriber:";

/// The outbox payload of a subscriber notification: the subscriber's id (its
/// URL is looked up at send time, so the outbox holds no endpoint and an
/// unsubscribe stops deliveries not yet made) and the Statuspage-shaped body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubscriberDelivery {
    pub subscriber: String,
    pub body: serde_json::Value,
}

/// A published status-page update.
#[derive(Clone, Debug, PartialEq)]
pub struct PublishedUpdate {
    pub public: PublicIncident,
    pub update_id: String,
    /// Subscriber notifications newly put in the outbox.
    pub subscriber_notifications: usize,
}

/// The outbox rows telling every live subscriber about update `update_id` of
/// public incident `public_id` (already in `incidents`): one incident
/// webhook each, then one per component whose status the update changed.
/// Keys are deterministic, so publishing the same update twice sends nothing twice.
#[allow(clippy::too_many_arguments)]
pub fn subscriber_notifications(
    setup: &ResponseSetup,
    incident: IncidentId,
    incidents: &[PublicIncident],
    maintenances: &[ScheduledMaintenance],
    subscribers: &[Subscriber],
    public_id: &str,
    update_id: &str,
    now: Timestamp,
) -> Vec<OutboxItem> {
    let view = StatusPageView { page: &setup.page, components: &setup.components, incidents, maintenances };
    let base = setup.base_url.clone().unwrap_or_else(|| {
        let u = setup.page.url.trim_end_matches('/');
        u.strip_suffix("/status").unwrap_or(u).to_owned()
    });
    let base = base.trim_end_matches('/');
    let mut out = Vec::new();
    for sub in subscribers.iter().filter(|s| s.unsubscribed_at.is_none() && s.kind == "webhook") {
        let meta = WebhookMeta { unsubscribe: format!("{base}/api/v2/subscribers/{}", sub.id), documentation: setup.page.url.clone() };
        let Some((incident_hook, component_hooks)) = view.subscriber_webhooks(public_id, update_id, &meta, now) else { continue };
        let channel = format!("{SUBSCRIBER_CHANNEL_PREFIX}{}", sub.id);
        let mut push = |key: String, kind: &str, body: serde_json::Value| {
            out.push(OutboxItem {
                idempotency_key: key,
                incident,
                channel: channel.clone(),
                recipient: sub.id.clone(),
                kind: kind.to_owned(),
                // Invariant: SubscriberDelivery is plain data; serializing it cannot fail.
                payload: serde_json::to_value(SubscriberDelivery { subscriber: sub.id.clone(), body }).unwrap_or(serde_json::Value::Null),
                not_before: now,
            });
        };
        push(format!("status/{public_id}/{update_id}/{}/incident", sub.id), "status_incident", serde_json::to_value(&incident_hook).unwrap_or_default());
        for c in component_hooks {
            // Extends the incident webhook's key, so it sorts (and is claimed) after it.
            let key = format!("status/{public_id}/{update_id}/{}/incident/component/{}", sub.id, c.component_update.component_id);
            push(key, "status_component", serde_json::to_value(&c).unwrap_or_default());
        }
    }
    out
}

/// Routing facts about an incident, read from its timeline and the catalogue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IncidentFacts {
    pub impacted_flows: Vec<FlowName>,
    pub origins: Vec<ServiceName>,
    pub services: Vec<ServiceName>,
    pub parent: Option<IncidentId>,
    /// The team a person declared as owning the incident: it owns it,
    /// whatever the catalogue would say.
    pub team: Option<TeamId>,
    /// The labels its alerts carried (the first value of each name), which
    /// the routing tree matches as Alertmanager's would (`alertname`, …).
    pub alert_labels: Labels,
}

impl ResponseSetup {
    /// Services named by the incident (title, symptoms, diagnosis origin)
    /// that the catalogue knows, the origin among them, and the flows those
    /// services take part in.
    pub fn facts(&self, incident: &Incident, timeline: &[TimelineEvent]) -> IncidentFacts {
        let names: BTreeSet<&str> = self.catalogue.services.iter().map(|s| s.name.as_str()).collect();
        let mentioned = |text: &str, out: &mut Vec<ServiceName>| {
            for tok in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')) {
                if names.contains(tok)
                    && let Ok(s) = ServiceName::new(tok)
                    && !out.contains(&s)
                {
                    out.push(s);
                }
            }
        };
        let mut f = IncidentFacts::default();
        mentioned(&incident.title, &mut f.services);
        let mut flows_named = Vec::new();
        for ev in timeline {
            match &ev.event {
                IncidentEvent::Opened { scope, .. } => {
                    for svc in &scope.services {
                        if !f.services.contains(svc) {
                            f.services.push(svc.clone());
                        }
                    }
                    for flow in &scope.flows {
                        if !flows_named.contains(flow) {
                            flows_named.push(flow.clone());
                        }
                    }
                    f.team = scope.team.clone();
                }
                IncidentEvent::SymptomAttached { member, labels, .. } => {
                    for (k, v) in labels {
                        f.alert_labels.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                    mentioned(member, &mut f.services);
                    for flow in &self.catalogue.flows {
                        if member.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')).any(|t| t == flow.name.as_str())
                            && !flows_named.contains(&flow.name)
                        {
                            flows_named.push(flow.name.clone());
                        }
                    }
                }
                IncidentEvent::DiagnosisUpdated { origin: Some(o), .. } => {
                    let mut os = Vec::new();
                    mentioned(o, &mut os);
                    if !os.is_empty() {
                        f.origins = os;
                    }
                }
                _ => {}
            }
        }
        for s in &f.origins {
            if !f.services.contains(s) {
                f.services.push(s.clone());
            }
        }
        // Every flow the named services take part in is impacted.
        f.impacted_flows = flows_named;
        for flow in &self.catalogue.flows {
            if f.services.iter().any(|s| flow.touches(s)) && !f.impacted_flows.contains(&flow.name) {
                f.impacted_flows.push(flow.name.clone());
            }
        }
        if f.origins.is_empty() {
            // Without a diagnosis, the named services are the best origin guess.
            f.origins = f.services.clone();
        }
        f
    }
}

/// What routing decided for an incident: the policies to run and the
/// incident-level channels to notify, with the reason text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoutePlan {
    pub policies: BTreeSet<String>,
    /// (receiver, channel)
    pub channels: BTreeSet<(String, String)>,
    pub labels: Labels,
    pub notes: Vec<String>,
    /// False when silenced, in maintenance, suppressed or muted.
    pub pages: bool,
    /// A silence or maintenance window: pages deferred until then.
    pub deferred_until: Option<Timestamp>,
}

const ACTOR: &str = "response";

pub struct ResponseDriver {
    store: Arc<dyn Store>,
    responses: Arc<dyn ResponseStore>,
    setup: Arc<ResponseSetup>,
    worker: Option<Arc<OutboxWorker>>,
    wake: Notify,
    /// Signs pages' acknowledge links; generated once, kept in the store.
    ack_key: tokio::sync::OnceCell<AckLinkKey>,
}

/// `engine_state` row holding the acknowledge-link key (hex).
const ACK_LINK_KEY_STATE: &str = "ack_link_key";

fn user_of(actor: &Actor) -> Option<UserId> {
    match actor {
        Actor::User(u) => Some(u.clone()),
        _ => None,
    }
}

impl ResponseDriver {
    pub fn new(store: Arc<dyn Store>, responses: Arc<dyn ResponseStore>, setup: Arc<ResponseSetup>, worker: Option<Arc<OutboxWorker>>) -> ResponseDriver {
        ResponseDriver { store, responses, setup, worker, wake: Notify::new(), ack_key: tokio::sync::OnceCell::new() }
    }

    /// The key that signs acknowledge links: read from the store, or made
    /// and stored on first use (then read back, so two servers starting at
    /// once settle on the one that was written last).
    pub async fn ack_key(&self, now: Timestamp) -> Result<AckLinkKey, StoreError> {
        self.ack_key
            .get_or_try_init(|| async {
                if let Some(k) = self.store.load_state(ACK_LINK_KEY_STATE).await?.as_deref().and_then(AckLinkKey::from_hex) {
                    return Ok(k);
                }
                let fresh = AckLinkKey::generate().map_err(StoreError::Database)?;
                self.store.save_state(ACK_LINK_KEY_STATE, &fresh.to_hex(), now).await?;
                let stored = self.store.load_state(ACK_LINK_KEY_STATE).await?;
                Ok(stored.as_deref().and_then(AckLinkKey::from_hex).unwrap_or(fresh))
            })
            .await
            .cloned()
    }

    /// A new step's context, with the link signer when links can be made
    /// (they need the server's public URL).
    async fn step_for<'a>(&self, incident: &'a Incident, timeline: &'a [TimelineEvent], now: Timestamp) -> Result<Step<'a>, StoreError> {
        let mut ctx = Step::new(incident, timeline, self.setup.facts(incident, timeline));
        if self.setup.base_url.is_some() {
            ctx.ack_key = Some(self.ack_key(now).await?);
        }
        Ok(ctx)
    }

    pub fn setup(&self) -> &ResponseSetup {
        &self.setup
    }

    /// Something changed (an incident command, a correlator action): look now
    /// rather than at the next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs until `shutdown`: on start it catches up every unread timeline
    /// and every overdue escalation (the restart path), then polls every
    /// `poll` or when woken.
    pub async fn run(self: Arc<Self>, now: NowFn, poll: StdDuration, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            match self.step(now()).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "response driver: store error"),
            }
            let until_wake = match self.responses.next_escalation_wake().await {
                Ok(Some(t)) => StdDuration::from_millis(u64::try_from((t - now()).as_millis().max(1)).unwrap_or(1)),
                _ => poll,
            };
            tokio::select! {
                () = tokio::time::sleep(until_wake.min(poll)) => {}
                () = self.wake.notified() => {}
                () = &mut shutdown => break,
            }
        }
    }

    /// One pass: every incident with unread events, then every due timer.
    /// Returns how many incidents and timers it handled.
    pub async fn step(&self, now: Timestamp) -> Result<usize, StoreError> {
        let mut n = 0;
        for id in self.responses.stale_incidents(200).await? {
            self.process_incident(id, now).await?;
            n += 1;
        }
        n += self.tick(now).await?;
        Ok(n)
    }

    /// Fires every escalation step due at `now`. The due escalations of one
    /// incident (one per policy) are one step with one commit, so a person
    /// on two of its policies is paged once for it.
    pub async fn tick(&self, now: Timestamp) -> Result<usize, StoreError> {
        let due = self.responses.due_escalations(now, 200).await?;
        let n = due.len();
        let mut by_incident: BTreeMap<IncidentId, Vec<EscalationRecord>> = BTreeMap::new();
        for rec in due {
            by_incident.entry(rec.incident).or_default().push(rec);
        }
        for (id, recs) in by_incident {
            let Some((incident, timeline)) = self.store.incident(id).await? else { continue };
            let mut ctx = self.step_for(&incident, &timeline, now).await?;
            for rec in recs {
                let mut state = rec.state.clone();
                match self.setup.policies.get(&rec.policy) {
                    Some(policy) => {
                        let fx = state.tick(policy, &self.setup.directory, now);
                        ctx.effects(&self.setup, &rec.policy, fx, &mut state, now);
                    }
                    None => {
                        ctx.note("escalation", format!("escalation policy {} is no longer configured: its timer is dropped", rec.policy), now);
                    }
                }
                let next_wake_at = if self.setup.policies.contains_key(&rec.policy) { state.next_wake() } else { None };
                ctx.escalations.push(EscalationRecord { incident: rec.incident, policy: rec.policy.clone(), state, next_wake_at, updated_at: now });
            }
            self.commit(ctx, None, now).await?;
        }
        Ok(n)
    }

    /// Reads `id`'s timeline past its cursor and reacts to each new event.
    pub async fn process_incident(&self, id: IncidentId, now: Timestamp) -> Result<(), StoreError> {
        let cursor = self.responses.response_cursor(id).await?;
        // Only the new events first: in an alert storm they are symptoms the
        // response does not react to, on a timeline thousands of events
        // long. Those just move the cursor; the whole timeline (for facts,
        // earlier states and note deduplication) is read only to react.
        let tail = self.store.timeline_after(id, cursor).await?;
        if !tail.iter().any(|ev| response_input(ev).is_some()) {
            if let Some(last) = tail.last() {
                let batch = ResponseBatch { cursor: Some((id, last.seq)), ..ResponseBatch::default() };
                self.responses.commit_response(&batch, now).await?;
            }
            return Ok(());
        }
        let Some((incident, timeline)) = self.store.incident(id).await? else { return Ok(()) };
        let mut ctx = self.step_for(&incident, &timeline, now).await?;
        let mut states: BTreeMap<String, Escalation> = self.responses.escalations(id).await?.into_iter().map(|r| (r.policy, r.state)).collect();
        let silences = self.active_silences(now).await?;
        let mut status_changed = false;
        let mut last = cursor;
        for ev in timeline.iter().filter(|e| e.seq > cursor) {
            last = ev.seq;
            let Some(reaction) = response_input(ev) else { continue };
            status_changed = true;
            // Each event is its own step: a reopen read in the same batch as
            // the first trigger pages again.
            ctx.paged_now.clear();
            let kind = ev.event.kind();
            let input = match reaction {
                Reaction::Announce => {
                    self.announce(&mut ctx, ev, states_epoch(&states), now).await?;
                    continue;
                }
                Reaction::Reroute => None,
                Reaction::Escalate(i) => Some(i),
            };
            match input {
                Some(EscalationInput::Triggered) | Some(EscalationInput::Reopened) | None => {
                    // (Re)route: start policies newly in play.
                    let plan = self.plan(&ctx.incident_at(ev), &ctx.facts, &silences, now);
                    let is_reopen = matches!(input, Some(EscalationInput::Reopened));
                    let route_note = if input.is_none() { format!("re-routed after {kind}") } else { "routed".to_owned() };
                    for n in &plan.notes {
                        ctx.note("routing", format!("{route_note}: {n}"), ev.at);
                    }
                    if input.is_none() && matches!(ev.event, IncidentEvent::SeverityChanged { .. }) {
                        self.announce(&mut ctx, ev, states_epoch(&states), now).await?;
                    }
                    if input.is_none() && !ctx.incident.status.is_open() {
                        continue;
                    }
                    for policy_name in &plan.policies {
                        let Some(policy) = self.setup.policies.get(policy_name) else {
                            ctx.note("routing", format!("escalation policy {policy_name} is not configured: nobody paged through it"), ev.at);
                            continue;
                        };
                        let state = states.entry(policy_name.clone()).or_insert_with(|| Escalation::new(id));
                        let mut fx = Vec::new();
                        if let Some(until) = plan.deferred_until {
                            fx.extend(state.observe(policy, &self.setup.directory, EscalationInput::Silenced { until }, now));
                        }
                        if plan.pages || plan.deferred_until.is_some() {
                            let inp = if is_reopen { EscalationInput::Reopened } else { EscalationInput::Triggered };
                            fx.extend(state.observe(policy, &self.setup.directory, inp, now));
                        }
                        ctx.effects(&self.setup, policy_name, fx, state, now);
                    }
                    if is_reopen {
                        // Policies routed before and still configured restart too.
                        for (name, state) in states.iter_mut().filter(|(n, _)| !plan.policies.contains(*n)) {
                            if let Some(policy) = self.setup.policies.get(name) {
                                let fx = state.observe(policy, &self.setup.directory, EscalationInput::Reopened, now);
                                ctx.effects(&self.setup, name, fx, state, now);
                            }
                        }
                    }
                    // After the policies: a reopen moved them to a new epoch,
                    // and the channels' trigger belongs to that epoch (in the
                    // old one it would be taken for the first trigger's repeat).
                    let change = match &ev.event {
                        IncidentEvent::Reopened { reason } => Some(format!("reopened by {}: {reason}", who(&ev.actor))),
                        _ => None,
                    };
                    for (receiver, channel) in &plan.channels {
                        if plan.pages || is_reopen {
                            ctx.channel_message(&self.setup, receiver, channel, MessageKind::Trigger, states_epoch(&states), change.clone(), now);
                        }
                    }
                }
                Some(inp) => {
                    let is_resolve = matches!(inp, EscalationInput::Resolved);
                    for (name, state) in states.iter_mut() {
                        if let Some(policy) = self.setup.policies.get(name) {
                            let fx = state.observe(policy, &self.setup.directory, inp.clone(), now);
                            ctx.effects(&self.setup, name, fx, state, now);
                        } else if is_resolve {
                            // The policy left the config; its pages are still owed a resolve.
                            let fx = state.observe(&placeholder_policy(name), &StaticDirectory::default(), inp.clone(), now);
                            ctx.effects(&self.setup, name, fx, state, now);
                        }
                    }
                    self.announce(&mut ctx, ev, states_epoch(&states), now).await?;
                }
            }
        }
        for (policy, state) in states {
            let next_wake_at = if self.setup.policies.contains_key(&policy) { state.next_wake() } else { None };
            ctx.escalations.push(EscalationRecord { incident: id, policy, state, next_wake_at, updated_at: now });
        }
        if status_changed && !self.setup.components.is_empty() {
            self.draft_status(&mut ctx, now).await?;
        }
        self.commit(ctx, Some((id, last)), now).await
    }

    /// Tells the incident's channels about a state change: every incident-
    /// level channel that got this epoch's trigger (the outbox is the record
    /// of what was sent, so this holds across restarts) gets the
    /// acknowledgement, the resolve, or an update (mitigated, a role, the
    /// severity), saying who did it; forwarding channels (PagerDuty) get
    /// only what their protocol has — acknowledge and resolve. A role's new
    /// holder is told directly too.
    async fn announce(&self, ctx: &mut Step<'_>, ev: &TimelineEvent, epoch: u32, now: Timestamp) -> Result<(), StoreError> {
        let id = ctx.incident.id;
        let by = who(&ev.actor);
        let (kind, change) = match &ev.event {
            IncidentEvent::Acknowledged => (MessageKind::Acknowledge, format!("acknowledged by {by}")),
            IncidentEvent::Mitigated { note } => (MessageKind::Update, with_note(format!("mitigated by {by}"), note.as_deref())),
            IncidentEvent::Resolved { note } => (MessageKind::Resolve, with_note(format!("resolved by {by}"), note.as_deref())),
            IncidentEvent::MergedInto { into } => (MessageKind::Resolve, format!("merged into incident {into} by {by}")),
            IncidentEvent::RoleAssigned { role, user } => (MessageKind::Update, format!("{user} is now {role} (assigned by {by})")),
            IncidentEvent::RoleUnassigned { role } => (MessageKind::Update, format!("{role} unassigned by {by}")),
            IncidentEvent::SeverityChanged { from, to, reason } => (MessageKind::Update, format!("severity {from} → {to} by {by}: {reason}")),
            _ => return Ok(()),
        };
        if let IncidentEvent::RoleAssigned { role, user } = &ev.event {
            ctx.tell_user(&self.setup, user, ev.seq, format!("you are now {role} of this incident (assigned by {by})"), now);
        }
        let prefix = format!("{id}/e{epoch}/channel/");
        let mut triggered: BTreeSet<(String, String)> = self
            .responses
            .notifications(id)
            .await?
            .into_iter()
            .filter(|r| r.idempotency_key.starts_with(&prefix) && r.kind == "trigger")
            .map(|r| (r.recipient, r.channel))
            .collect();
        triggered.extend(
            ctx.enqueue.iter().filter(|i| i.idempotency_key.starts_with(&prefix) && i.kind == "trigger").map(|i| (i.recipient.clone(), i.channel.clone())),
        );
        for (receiver, channel) in triggered {
            let kind = match (self.setup.ack_channels.contains(&channel), kind, &ev.event) {
                // Forwarding channels know acknowledge and resolve only; for
                // them mitigation is an acknowledgement (as it is for escalation).
                (true, MessageKind::Update, IncidentEvent::Mitigated { .. }) => MessageKind::Acknowledge,
                (true, MessageKind::Update, _) => continue,
                (_, k, _) => k,
            };
            // Updates are many per epoch: each event is its own message.
            let seq = (kind == MessageKind::Update).then_some(ev.seq);
            ctx.channel_message_with(&self.setup, &receiver, &channel, kind, epoch, seq, Some(change.clone()), now);
        }
        Ok(())
    }

    /// The routing decision for an incident now.
    pub fn plan(&self, incident: &Incident, facts: &IncidentFacts, silences: &[CompiledSilence], now: Timestamp) -> RoutePlan {
        let setup = &self.setup;
        let mut plan = RoutePlan { pages: true, ..RoutePlan::default() };
        let mut ownership = decide_ownership(&setup.catalogue, &facts.impacted_flows, &facts.origins);
        if let Some(team) = &facts.team {
            // Declared by a person: that team alone owns the response,
            // whatever the catalogue says the named services belong to.
            let flows = facts.impacted_flows.clone();
            ownership.teams = vec![TeamInvolvement { team: team.clone(), involvement: Involvement::Owner, flows, origins: facts.origins.clone() }];
            ownership.reason = format!("declared owned by team {team} (the catalogue would say: {})", ownership.reason);
        }
        plan.notes.push(format!("ownership: {}", ownership.reason));
        // What the alerts said (`alertname`, `service`, …), as Alertmanager's
        // tree would see it; `alertname` is the title when no alert named
        // one. Faultline's own labels below take precedence.
        let mut extra: Labels = facts.alert_labels.clone();
        extra.entry("alertname".into()).or_insert_with(|| incident.title.clone());
        extra.insert("incident_id".into(), incident.id.to_string());
        let label_sets: Vec<Labels> = if ownership.teams.is_empty() {
            let mut l = extra.clone();
            l.insert("severity".into(), incident.severity.to_string());
            vec![l]
        } else {
            ownership.teams.iter().map(|t| routing_labels(t, incident.severity, &extra)).collect()
        };
        plan.labels = label_sets.first().cloned().unwrap_or_default();
        let mut any_pages = false;
        for labels in &label_sets {
            let team = labels.get("team").cloned();
            match &setup.router {
                Some(router) => {
                    let decision = router.route(RoutingInput { labels, parent: facts.parent }, silences, now);
                    plan.notes.push(decision.reason.clone());
                    match &decision.outcome {
                        Outcome::Notify => {
                            any_pages = true;
                            for r in decision.notifying_routes() {
                                let policy = r.escalation_policy.clone().or_else(|| team.clone().filter(|t| setup.policies.contains_key(t)));
                                if let Some(p) = policy {
                                    plan.policies.insert(p);
                                }
                                for ch in setup.receivers.get(&r.receiver).into_iter().flatten() {
                                    plan.channels.insert((r.receiver.clone(), ch.clone()));
                                }
                            }
                        }
                        Outcome::Silenced { silence_ids } => {
                            // Pages wait for the silence to end; they are not dropped.
                            let until = silences
                                .iter()
                                .filter(|s| silence_ids.contains(&s.silence.id))
                                .map(|s| Timestamp::from_millis(s.silence.ends_at.as_millisecond()))
                                .max();
                            plan.deferred_until = plan.deferred_until.max(until);
                            for r in decision.routes.iter().filter(|r| r.muted_by.is_none()) {
                                if let Some(p) = r.escalation_policy.clone().or_else(|| team.clone().filter(|t| setup.policies.contains_key(t))) {
                                    plan.policies.insert(p);
                                }
                            }
                        }
                        Outcome::InMaintenance { window } => {
                            let until = router
                                .maintenance_windows()
                                .iter()
                                .filter(|w| &w.name == window)
                                .map(|w| Timestamp::from_millis(w.ends_at.as_millisecond()))
                                .max();
                            plan.deferred_until = plan.deferred_until.max(until);
                            for r in decision.routes.iter().filter(|r| r.muted_by.is_none()) {
                                if let Some(p) = r.escalation_policy.clone().or_else(|| team.clone().filter(|t| setup.policies.contains_key(t))) {
                                    plan.policies.insert(p);
                                }
                            }
                        }
                        Outcome::Suppressed { .. } | Outcome::Muted => {}
                    }
                }
                None => {
                    let policy = team.clone().filter(|t| setup.policies.contains_key(t)).or_else(|| setup.default_policy.clone());
                    let silencing: Vec<&CompiledSilence> = silences.iter().filter(|s| s.silences(labels, now)).collect();
                    if silencing.is_empty() {
                        any_pages = true;
                    } else {
                        let until = silencing.iter().map(|s| Timestamp::from_millis(s.silence.ends_at.as_millisecond())).max();
                        plan.deferred_until = plan.deferred_until.max(until);
                        let ids: Vec<&str> = silencing.iter().map(|s| s.silence.id.as_str()).collect();
                        plan.notes.push(format!("silenced by {}: pages deferred until the silence ends", ids.join(", ")));
                    }
                    match policy {
                        Some(p) => {
                            plan.notes.push(format!("no routing tree: escalation policy {p}"));
                            plan.policies.insert(p);
                        }
                        None => plan.notes.push("no routing tree and no default escalation policy: nobody paged".into()),
                    }
                }
            }
        }
        plan.pages = any_pages;
        if !any_pages && plan.deferred_until.is_none() {
            plan.policies.clear();
        } else if plan.policies.is_empty() && setup.router.is_some() {
            // The routing tree matched (or only its root did) but named no
            // policy: the default applies whenever nothing else does.
            match &setup.default_policy {
                Some(p) => {
                    plan.notes.push(format!("no route names an escalation policy: default_policy {p}"));
                    plan.policies.insert(p.clone());
                }
                None => plan.notes.push("no route names an escalation policy and there is no default_policy: nobody paged".into()),
            }
        }
        plan
    }

    async fn active_silences(&self, now: Timestamp) -> Result<Vec<CompiledSilence>, StoreError> {
        Ok(self
            .responses
            .silences()
            .await?
            .into_iter()
            .filter(|s| s.state(now) == faultline_core::routing::SilenceState::Active)
            .filter_map(|s| s.validate().ok())
            .collect())
    }

    /// Publishes `draft` (or the comms lead's `edited_body`) as the next
    /// update of `incident`'s public incident and, in the same transaction,
    /// enqueues the subscriber notifications it causes.
    ///
    /// `previous` is the public incident as read before deciding to publish;
    /// if another publish (the comms lead's, the automatic one, another
    /// node's) was written since, nothing is written and the answer is
    /// `StoreError::StatusPageConflict`: the caller re-reads and decides again.
    pub async fn publish_status(
        &self,
        incident: &Incident,
        previous: Option<PublicIncident>,
        draft: &DraftUpdate,
        edited_body: Option<&str>,
        now: Timestamp,
    ) -> Result<PublishedUpdate, StoreError> {
        let based_on = previous.as_ref().map_or(0, |p| p.updates.len());
        let update_id = format!("{}-u{}", incident.id, based_on + 1);
        let public_id = previous.as_ref().map_or_else(|| incident.id.to_string(), |p| p.id.clone());
        // Named by the public title, never the internal one.
        let name = public_name(incident, previous.as_ref(), &self.setup.components, draft);
        let public = publish(&self.setup.components, previous, (&public_id, &name, incident.opened_at), draft, edited_body, &update_id, now);
        let mut incidents = self.responses.public_incidents().await?;
        incidents.retain(|i| i.id != public.id);
        incidents.push(public.clone());
        let maintenances = self.responses.maintenances().await?;
        let subscribers = self.responses.subscribers().await?;
        let items = subscriber_notifications(&self.setup, incident.id, &incidents, &maintenances, &subscribers, &public.id, &update_id, now);
        let out = self.responses.publish_status(incident.id, &public, based_on, &items, now).await?;
        if !out.enqueued.is_empty()
            && let Some(w) = &self.worker
        {
            w.wake();
        }
        Ok(PublishedUpdate { public, update_id, subscriber_notifications: out.enqueued.len() })
    }

    async fn draft_status(&self, ctx: &mut Step<'_>, now: Timestamp) -> Result<(), StoreError> {
        let incident = ctx.incident;
        let facts = ImpactFacts {
            incident,
            impacted_flows: &ctx.facts.impacted_flows,
            impacted_services: &ctx.facts.services,
            // "Identified" only on a steady, confident diagnosis (or a person's word).
            origin_identified: diagnosis_is_confident(ctx.timeline, now),
        };
        let mut attempt = 1;
        loop {
            let previous = self.responses.public_incident_for(incident.id).await?;
            let draft = draft_update(&self.setup.components, &facts, previous.as_ref());
            if !draft.changed || draft.components.is_empty() {
                return Ok(());
            }
            if !self.setup.auto_publish {
                return self.responses.put_draft(&DraftRecord { incident: incident.id, draft, created_at: now }).await;
            }
            match self.publish_status(incident, previous, &draft, None, now).await {
                Ok(p) => {
                    ctx.note("status_page", status_note(&p, "auto-published"), now);
                    return Ok(());
                }
                // Another publish got there first: draft again from what it
                // published (it may already say all this one would).
                Err(StoreError::StatusPageConflict { .. }) if attempt < PUBLISH_ATTEMPTS => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    async fn commit(&self, ctx: Step<'_>, cursor: Option<(IncidentId, u64)>, now: Timestamp) -> Result<(), StoreError> {
        let id = ctx.incident.id;
        // Notes first, deduplicated against the timeline: a replay after a
        // crash between these writes and the commit writes none twice.
        let mut existing: BTreeSet<(String, String)> = ctx
            .timeline
            .iter()
            .filter_map(|e| match &e.event {
                IncidentEvent::SystemNote { component, text } => Some((component.clone(), text.clone())),
                _ => None,
            })
            .collect();
        for (component, text, at) in &ctx.notes {
            if !existing.insert((component.clone(), text.clone())) {
                continue;
            }
            let cmd = Command::Record(IncidentEvent::SystemNote { component: component.clone(), text: text.clone() });
            match commands::execute(self.store.as_ref(), id, cmd, Actor::System(ACTOR.into()), (*at).min(now)).await {
                Ok(_) | Err(StoreError::Invalid(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let batch = ResponseBatch { cursor, escalations: ctx.escalations, enqueue: ctx.enqueue };
        let out = self.responses.commit_response(&batch, now).await?;
        if !out.enqueued.is_empty() {
            tracing::info!(incident = %id, enqueued = out.enqueued.len(), "notifications enqueued");
            if let Some(w) = &self.worker {
                w.wake();
            }
        }
        Ok(())
    }
}

/// The timeline note for a published status-page update.
pub fn status_note(p: &PublishedUpdate, how: &str) -> String {
    let changes: Vec<String> = p
        .public
        .updates
        .last()
        .map(|u| u.affected_components.iter().map(|c| format!("{} {} → {}", c.name, c.old_status.as_str(), c.new_status.as_str())).collect())
        .unwrap_or_default();
    let mut text = format!("status page update {} {how}: {}", p.update_id, p.public.status.as_str());
    if !changes.is_empty() {
        text.push_str(&format!(" ({})", changes.join(", ")));
    }
    text.push_str(&format!("; {} subscriber notification(s) enqueued", p.subscriber_notifications));
    text
}

/// What a timeline event asks of the response.
enum Reaction {
    /// An input for the escalations (trigger, acknowledge, resolve, reopen).
    Escalate(EscalationInput),
    /// Route again: severity or diagnosis changed.
    Reroute,
    /// Nothing for the escalations; the channels (and a role's holder) are told.
    Announce,
}

/// `None` if the response does nothing for `ev` (symptoms, notes…).
fn response_input(ev: &TimelineEvent) -> Option<Reaction> {
    match &ev.event {
        IncidentEvent::Opened { .. } => Some(Reaction::Escalate(EscalationInput::Triggered)),
        IncidentEvent::Acknowledged | IncidentEvent::Mitigated { .. } => Some(Reaction::Escalate(EscalationInput::Acknowledged { by: user_of(&ev.actor) })),
        IncidentEvent::Resolved { .. } | IncidentEvent::MergedInto { .. } => Some(Reaction::Escalate(EscalationInput::Resolved)),
        IncidentEvent::Reopened { .. } => Some(Reaction::Escalate(EscalationInput::Reopened)),
        IncidentEvent::SeverityChanged { .. } | IncidentEvent::DiagnosisUpdated { .. } => Some(Reaction::Reroute),
        IncidentEvent::RoleAssigned { .. } | IncidentEvent::RoleUnassigned { .. } => Some(Reaction::Announce),
        _ => None,
    }
}

/// Who did it, as a person reads it: `alice`, `token ci`, `Faultline (correlator)`.
fn who(actor: &Actor) -> String {
    match actor {
        Actor::User(u) => u.to_string(),
        Actor::Token(t) => format!("token {t}"),
        Actor::System(s) => format!("Faultline ({s})"),
    }
}

fn with_note(text: String, note: Option<&str>) -> String {
    match note.filter(|n| !n.trim().is_empty()) {
        Some(n) => format!("{text}: {n}"),
        None => text,
    }
}

fn states_epoch(states: &BTreeMap<String, Escalation>) -> u32 {
    states.values().map(|s| s.epoch).max().unwrap_or(0)
}

/// A stand-in used only to let a state whose policy left the config send
/// the resolves it owes (`observe(Resolved)` needs a policy value).
fn placeholder_policy(name: &str) -> EscalationPolicy {
    EscalationPolicy {
        name: name.to_owned(),
        levels: vec![faultline_core::escalation::EscalationLevel { targets: vec![], delay_minutes: 1 }],
        repeat: 0,
        ack_timeout_minutes: None,
        fallback: Vec::new(),
    }
}

/// What one driver step accumulates before its commit.
struct Step<'a> {
    incident: &'a Incident,
    timeline: &'a [TimelineEvent],
    facts: IncidentFacts,
    notes: Vec<(String, String, Timestamp)>,
    escalations: Vec<EscalationRecord>,
    enqueue: Vec<OutboxItem>,
    /// Who this step paged, and through which policy first.
    paged_now: BTreeMap<UserId, String>,
    /// Signs each page's acknowledge link (none without a public URL).
    ack_key: Option<AckLinkKey>,
}

impl<'a> Step<'a> {
    fn new(incident: &'a Incident, timeline: &'a [TimelineEvent], facts: IncidentFacts) -> Step<'a> {
        Step { incident, timeline, facts, notes: Vec::new(), escalations: Vec::new(), enqueue: Vec::new(), paged_now: BTreeMap::new(), ack_key: None }
    }

    /// The incident as it was when `ev` was recorded (for routing on its
    /// severity then).
    fn incident_at(&self, ev: &TimelineEvent) -> Incident {
        Incident::fold(self.incident.id, &self.timeline[..self.timeline.iter().position(|e| e.seq == ev.seq).map_or(self.timeline.len(), |i| i + 1)])
            .unwrap_or_else(|_| self.incident.clone())
    }

    fn note(&mut self, component: &str, text: String, at: Timestamp) {
        let text: String = text.chars().take(faultline_core::incident::MAX_TEXT_CHARS).collect();
        self.notes.push((component.to_owned(), text, at));
    }

    fn message(&self, setup: &ResponseSetup, kind: MessageKind, receiver: &str, now: Timestamp) -> Message {
        Message {
            incident: self.incident.id,
            incident_key: self.incident.id.to_string(),
            kind,
            title: self.incident.title.clone(),
            severity: self.incident.severity.to_string(),
            status: self.incident.status.to_string(),
            summary: self.incident.diagnosis.clone().or_else(|| self.incident.summary.clone()),
            recipient: None,
            address: None,
            level: None,
            round: None,
            labels: BTreeMap::new(),
            opened_at: self.incident.opened_at,
            at: now,
            url: setup.base_url.as_ref().map(|b| format!("{}/api/v1/incidents/{}", b.trim_end_matches('/'), self.incident.id)),
            receiver: receiver.to_owned(),
            change: None,
            ack_url: None,
        }
    }

    /// An incident-level message to a receiver's channel.
    #[allow(clippy::too_many_arguments)]
    fn channel_message(&mut self, setup: &ResponseSetup, receiver: &str, channel: &str, kind: MessageKind, epoch: u32, change: Option<String>, now: Timestamp) {
        self.channel_message_with(setup, receiver, channel, kind, epoch, None, change, now);
    }

    /// `seq`: the timeline event an update is about (its key's last part;
    /// trigger, acknowledge and resolve are once per epoch).
    #[allow(clippy::too_many_arguments)]
    fn channel_message_with(
        &mut self,
        setup: &ResponseSetup,
        receiver: &str,
        channel: &str,
        kind: MessageKind,
        epoch: u32,
        seq: Option<u64>,
        change: Option<String>,
        now: Timestamp,
    ) {
        let mut key = format!("{}/e{epoch}/channel/{receiver}/{channel}/{}", self.incident.id, kind.as_str());
        if let Some(seq) = seq {
            key.push_str(&format!("/{seq}"));
        }
        if self.enqueue.iter().any(|i| i.idempotency_key == key) {
            return;
        }
        let mut msg = self.message(setup, kind, receiver, now);
        msg.labels.insert("receiver".into(), receiver.to_owned());
        msg.change = change.clone();
        self.enqueue.push(OutboxItem {
            idempotency_key: key,
            incident: self.incident.id,
            channel: channel.to_owned(),
            recipient: receiver.to_owned(),
            kind: kind.as_str().to_owned(),
            // Invariant: Message is plain data; serializing it cannot fail.
            payload: serde_json::to_value(&msg).unwrap_or(serde_json::Value::Null),
            not_before: now,
        });
        let verb = match kind {
            MessageKind::Trigger => "notified",
            MessageKind::Acknowledge => "acknowledgement posted to",
            MessageKind::Resolve => "resolve sent to",
            MessageKind::Update => "update posted to",
        };
        let what = change.map(|c| format!(" ({c})")).unwrap_or_default();
        self.note("notify", format!("{verb} channel {channel} (receiver {receiver}){what}"), now);
    }

    /// A direct message to a person (a role given to them): each contact
    /// method but forwarding ones (PagerDuty pages, it does not chat).
    fn tell_user(&mut self, setup: &ResponseSetup, user: &UserId, seq: u64, change: String, now: Timestamp) {
        let methods: Vec<ContactMethod> =
            setup.contacts.get(user).into_iter().flatten().filter(|m| !setup.ack_channels.contains(&m.channel)).cloned().collect();
        if methods.is_empty() {
            self.note("notify", format!("{user} has no contact method to be told: {change}"), now);
            return;
        }
        for m in &methods {
            let mut msg = self.message(setup, MessageKind::Update, "direct", now);
            msg.recipient = Some(user.to_string());
            msg.address = m.address.clone();
            msg.change = Some(change.clone());
            self.enqueue.push(OutboxItem {
                idempotency_key: format!("{}/tell/{seq}/{user}/{}", self.incident.id, m.channel),
                incident: self.incident.id,
                channel: m.channel.clone(),
                recipient: user.to_string(),
                kind: MessageKind::Update.as_str().to_owned(),
                payload: serde_json::to_value(&msg).unwrap_or(serde_json::Value::Null),
                not_before: now,
            });
        }
        let via: Vec<&str> = methods.iter().map(|m| m.channel.as_str()).collect();
        self.note("notify", format!("told {user} via {}: {change}", via.join(", ")), now);
    }

    /// Carries out escalation effects: pages become outbox rows (one per
    /// contact method), records become timeline notes.
    fn effects(&mut self, setup: &ResponseSetup, policy: &str, fx: Vec<Effect>, _state: &mut Escalation, now: Timestamp) {
        for e in fx {
            match e {
                Effect::Notify(n) => self.page(setup, policy, &n, now),
                Effect::Record { at, text } => self.note("escalation", format!("{policy}: {text}"), at),
                Effect::WakeAt { .. } | Effect::CancelWake => {}
            }
        }
    }

    fn page(&mut self, setup: &ResponseSetup, policy: &str, n: &Notification, now: Timestamp) {
        let kind = match n.kind {
            NotifyKind::Trigger => MessageKind::Trigger,
            NotifyKind::Resolve => MessageKind::Resolve,
        };
        if kind == MessageKind::Trigger {
            // One page per person per incident step, whichever policies
            // name them (their own resolve is still owed once: its key is
            // the same across policies).
            if let Some(first) = self.paged_now.get(&n.recipient).filter(|p| p.as_str() != policy) {
                let text = format!("{} already paged by escalation policy {first} in this step: not paged again by {policy}", n.recipient);
                self.note("notify", text, now);
                return;
            }
            self.paged_now.insert(n.recipient.clone(), policy.to_owned());
        }
        let methods = setup.contacts.get(&n.recipient).cloned().unwrap_or_default();
        if methods.is_empty() {
            self.note("notify", format!("{} has no contact method: {} not sent", n.recipient, kind.as_str()), now);
            return;
        }
        for m in methods {
            let mut msg = self.message(setup, kind, policy, now);
            msg.recipient = Some(n.recipient.to_string());
            msg.address = m.address.clone();
            // Level 0: the fallback told when a policy was exhausted.
            msg.level = (n.level > 0).then_some(n.level);
            msg.round = (n.level > 0).then_some(n.round);
            if n.level == 0 && kind == MessageKind::Trigger {
                msg.change = Some(format!("escalation policy {policy} exhausted: nobody acknowledged; you are its fallback"));
            }
            msg.labels.insert("escalation_policy".into(), policy.to_owned());
            msg.labels.insert("target".into(), n.target.to_string());
            if let (MessageKind::Trigger, Some(key), Some(base)) = (kind, &self.ack_key, &setup.base_url) {
                let expires = now + faultline_core::Duration::from_mins(LINK_LIFETIME_HOURS * 60);
                msg.ack_url = Some(format!("{}/ack/{}", base.trim_end_matches('/'), key.sign(n.incident, &n.recipient, &n.idempotency_key, expires)));
            }
            self.enqueue.push(OutboxItem {
                idempotency_key: format!("{}/{}", n.idempotency_key, m.channel),
                incident: n.incident,
                channel: m.channel.clone(),
                recipient: n.recipient.to_string(),
                kind: kind.as_str().to_owned(),
                payload: serde_json::to_value(&msg).unwrap_or(serde_json::Value::Null),
                not_before: now,
            });
        }
    }
}
