//! The outbox delivery worker: claims due notifications from the durable
//! outbox, sends them on their channel, and records the outcome (delivered,
//! retry at T, failed) in the store, which writes the ledger line.
//!
//! Delivery is at-least-once: a claim is a lease; if this process dies
//! mid-send the lease expires and a worker sends it again with the same
//! idempotency key (`Idempotency-Key` header, PagerDuty `dedup_key`, email
//! `Message-ID`), which receivers use to drop the repeat.
//!
//! Retries: exponential backoff (`base × 2^(attempt-1)`, capped, with a
//! deterministic ±20 % spread derived from the key) up to `max_attempts`,
//! under a per-channel retry budget (a token bucket refilled by first
//! attempts: when a channel is failing, retries cannot outnumber new sends
//! by more than the budget — excess retries are deferred, never dropped).
//! Rate limits: at most `max_per_sec` sends per channel (Slack: 1), and a
//! `Retry-After` answer pauses the channel until then.
//! Ordering: a resolve waits while a page for the same incident on the same
//! channel is still pending, so a receiver never sees the resolve first.
//!
//! Status-page subscribers: rows on a `subscriber:<id>` channel carry a
//! `SubscriberDelivery`; the endpoint is read from the store at send time
//! (never kept in the outbox), and an unsubscribed subscriber's rows fail
//! with "subscriber unsubscribed" instead of being sent. Unless the worker
//! allows private subscriber targets (`allow_private_subscriber_targets`),
//! an endpoint that is or resolves to a private address fails with the
//! reason and is never contacted (`Sender::post_to_subscriber`).
//!
//! Not here: what to send (the response driver enqueues it).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use faultline_core::{Duration, Timestamp};
use faultline_store::StoreError;
use faultline_store::response::{DeliveryStatus, OutboxRecord, ResponseStore};
use tokio::sync::Notify;

use super::{Channel, Message, MessageKind, SendError, Sender};

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Backoff before the second attempt.
    pub base: StdDuration,
    pub max_backoff: StdDuration,
    /// Attempts (including the first) before giving up.
    pub max_attempts: u32,
    /// Retry tokens a channel starts with and can hold at most.
    pub budget_tokens: f64,
    /// Tokens each first attempt adds (0.2: retries ≤ 20 % of sends once
    /// the initial tokens are spent).
    pub budget_ratio: f64,
    /// How long a claim holds a row before another worker may take it.
    pub lease: StdDuration,
    /// Rows claimed per round.
    pub batch: u32,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            base: StdDuration::from_secs(2),
            max_backoff: StdDuration::from_secs(300),
            max_attempts: 12,
            budget_tokens: 20.0,
            budget_ratio: 0.2,
            lease: StdDuration::from_secs(60),
            batch: 64,
        }
    }
}

impl RetryPolicy {
    /// Backoff after `attempt` failed attempts (1-based), spread by the key.
    pub fn backoff(&self, attempt: u32, key: &str) -> StdDuration {
        let exp = self.base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let capped = exp.min(self.max_backoff);
        // FNV-1a of the key and attempt: the same row backs off the same way
        // on every run, different rows spread out (no thundering herd).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in key.bytes().chain(attempt.to_le_bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let spread = 0.8 + 0.4 * ((h % 10_000) as f64 / 10_000.0);
        capped.mul_f64(spread)
    }
}

#[derive(Debug, Default)]
struct ChannelState {
    next_free_at: i64,
    paused_until: i64,
    retry_tokens: Option<f64>,
}

/// What one round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RoundStats {
    pub claimed: usize,
    pub delivered: usize,
    pub retried: usize,
    pub failed: usize,
    pub deferred: usize,
}

pub struct OutboxWorker {
    store: Arc<dyn ResponseStore>,
    channels: BTreeMap<String, Channel>,
    sender: Sender,
    policy: RetryPolicy,
    owner: String,
    state: Mutex<BTreeMap<String, ChannelState>>,
    wake: Notify,
    allow_private_subscriber_targets: bool,
}

fn ms(d: StdDuration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl OutboxWorker {
    pub fn new(
        store: Arc<dyn ResponseStore>,
        channels: BTreeMap<String, Channel>,
        sender: Sender,
        policy: RetryPolicy,
        owner: impl Into<String>,
    ) -> OutboxWorker {
        OutboxWorker {
            store,
            channels,
            sender,
            policy,
            owner: owner.into(),
            state: Mutex::new(BTreeMap::new()),
            wake: Notify::new(),
            allow_private_subscriber_targets: false,
        }
    }

    /// Lets status-page subscriber notifications go to loopback, private,
    /// link-local and other non-public addresses (off by default: anyone
    /// may subscribe, so that would let anyone make us post into our own
    /// network). For tests and demos with a local receiver.
    pub fn allow_private_subscriber_targets(mut self, allow: bool) -> OutboxWorker {
        self.allow_private_subscriber_targets = allow;
        self
    }

    /// Wakes the worker now (the driver just enqueued something).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub fn channels(&self) -> &BTreeMap<String, Channel> {
        &self.channels
    }

    /// Delivers until `shutdown`, sleeping until the next row is due (at
    /// most `idle` at a time) or `wake` is called.
    pub async fn run(self: Arc<Self>, clock: super::NowFn, idle: StdDuration, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let now = clock();
            let busy = match self.clone().round(now).await {
                Ok(s) => s.claimed > 0,
                Err(e) => {
                    tracing::error!(error = %e, "outbox worker: store error");
                    false
                }
            };
            if busy {
                continue;
            }
            let until_due = match self.store.next_outbox_due().await {
                Ok(Some(t)) => StdDuration::from_millis(u64::try_from((t - clock()).as_millis().max(1)).unwrap_or(1)),
                _ => idle,
            };
            tokio::select! {
                () = tokio::time::sleep(until_due.min(idle)) => {}
                () = self.wake.notified() => {}
                () = &mut shutdown => break,
            }
        }
    }

    /// One round: claim due rows, deliver them (channels in parallel, each
    /// channel's rows in order), record outcomes.
    pub async fn round(self: Arc<Self>, now: Timestamp) -> Result<RoundStats, StoreError> {
        let rows = self.store.claim_due(&self.owner, now, ms(self.policy.lease), self.policy.batch).await?;
        let mut stats = RoundStats { claimed: rows.len(), ..RoundStats::default() };
        let mut by_channel: BTreeMap<String, Vec<OutboxRecord>> = BTreeMap::new();
        for r in rows {
            by_channel.entry(r.channel.clone()).or_default().push(r);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for (channel, rows) in by_channel {
            let me = self.clone();
            tasks.spawn(async move { me.deliver_channel(&channel, rows, now).await });
        }
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(Ok(s)) => {
                    stats.delivered += s.delivered;
                    stats.retried += s.retried;
                    stats.failed += s.failed;
                    stats.deferred += s.deferred;
                }
                Ok(Err(e)) => return Err(e),
                Err(e) => tracing::error!(error = %e, "outbox delivery task failed"),
            }
        }
        Ok(stats)
    }

    async fn deliver_channel(&self, name: &str, rows: Vec<OutboxRecord>, round_now: Timestamp) -> Result<RoundStats, StoreError> {
        let mut s = RoundStats::default();
        let started = std::time::Instant::now();
        for row in rows {
            // Time moves on while we send; derive it from the round's `now`.
            let now = round_now + Duration::from_millis(ms(started.elapsed()));
            let key = row.idempotency_key.as_str();
            if name.starts_with(crate::response::SUBSCRIBER_CHANNEL_PREFIX) {
                self.deliver_to_subscriber(name, &row, now, &mut s).await?;
                continue;
            }
            let Some(channel) = self.channels.get(name) else {
                self.store.mark_failed(key, &self.owner, now, &format!("no channel named {name:?} is configured")).await?;
                s.failed += 1;
                continue;
            };
            let msg: Message = match serde_json::from_value(row.payload.clone()) {
                Ok(m) => m,
                Err(_) => {
                    self.store.mark_failed(key, &self.owner, now, "stored message is not readable").await?;
                    s.failed += 1;
                    continue;
                }
            };
            if msg.kind == MessageKind::Resolve && self.page_pending(&row).await? {
                self.store.defer(key, &self.owner, now, now + Duration::from_millis(ms(self.policy.base))).await?;
                s.deferred += 1;
                continue;
            }
            // Rate limit and Retry-After pause: wait briefly, or defer.
            let free_at = self.gate(name, row.attempts > 1, now);
            match free_at {
                Gate::Go => {}
                Gate::WaitUntil(t) if (t - now).as_millis() <= ms(self.policy.lease) / 4 => {
                    tokio::time::sleep(StdDuration::from_millis(u64::try_from((t - now).as_millis()).unwrap_or(0))).await;
                }
                Gate::WaitUntil(t) => {
                    self.store.defer(key, &self.owner, now, t).await?;
                    s.deferred += 1;
                    continue;
                }
            }
            let now = round_now + Duration::from_millis(ms(started.elapsed()));
            self.mark_sent(name, channel.max_per_sec, now);
            // An incident-level message on a channel that edits in place
            // replaces the incident's last message there.
            let editable = matches!(channel.kind, super::ChannelKind::SlackApi { .. }) && msg.recipient.is_none();
            let edit = if editable { self.store.channel_message_ref(row.incident, name).await? } else { None };
            let result = self.sender.send(channel, &msg, key, edit.as_deref()).await;
            if editable
                && let Ok(super::Sent { message_ref: Some(r), .. }) = &result
                && edit.as_deref() != Some(r.as_str())
            {
                self.store.put_channel_message_ref(row.incident, name, r, now).await?;
            }
            self.record(name, &row, result, round_now, started, &mut s).await?;
        }
        Ok(s)
    }

    /// Delivers one status-page subscriber notification: the endpoint is
    /// read from the store now (an unsubscribed subscriber gets nothing
    /// more), then the same retry, budget and ledger rules as any channel.
    async fn deliver_to_subscriber(&self, name: &str, row: &OutboxRecord, now: Timestamp, s: &mut RoundStats) -> Result<(), StoreError> {
        let key = row.idempotency_key.as_str();
        let delivery: crate::response::SubscriberDelivery = match serde_json::from_value(row.payload.clone()) {
            Ok(d) => d,
            Err(_) => {
                self.store.mark_failed(key, &self.owner, now, "stored message is not readable").await?;
                s.failed += 1;
                return Ok(());
            }
        };
        let url = match self.store.subscriber(&delivery.subscriber).await? {
            Some(sub) if sub.unsubscribed_at.is_none() => crate::notify::Secret::new(sub.target),
            Some(_) => {
                self.store.mark_failed(key, &self.owner, now, "subscriber unsubscribed: not sent").await?;
                s.failed += 1;
                return Ok(());
            }
            None => {
                self.store.mark_failed(key, &self.owner, now, "no such subscriber: not sent").await?;
                s.failed += 1;
                return Ok(());
            }
        };
        match self.gate(name, row.attempts > 1, now) {
            Gate::Go => {}
            Gate::WaitUntil(t) => {
                self.store.defer(key, &self.owner, now, t).await?;
                s.deferred += 1;
                return Ok(());
            }
        }
        let started = std::time::Instant::now();
        let result = self.sender.post_to_subscriber(&url, &delivery.body, key, self.allow_private_subscriber_targets).await;
        self.record(name, row, result, now, started, s).await
    }

    /// Writes the outcome of one send: delivered, retry later (backoff,
    /// `Retry-After` pauses the channel) or failed for good.
    async fn record(
        &self,
        name: &str,
        row: &OutboxRecord,
        result: Result<super::Sent, SendError>,
        round_now: Timestamp,
        started: std::time::Instant,
        s: &mut RoundStats,
    ) -> Result<(), StoreError> {
        let key = row.idempotency_key.as_str();
        match result {
            Ok(sent) => {
                let now = round_now + Duration::from_millis(ms(started.elapsed()));
                self.store.mark_delivered(key, &self.owner, now, &sent.detail).await?;
                tracing::debug!(channel = name, key, "notification delivered");
                s.delivered += 1;
            }
            Err(e) => {
                let now = round_now + Duration::from_millis(ms(started.elapsed()));
                tracing::warn!(channel = name, key, attempt = row.attempts, error = %e, "notification not delivered");
                match e {
                    SendError::Permanent { .. } => {
                        self.store.mark_failed(key, &self.owner, now, &e.to_string()).await?;
                        s.failed += 1;
                    }
                    SendError::Retryable { ref detail, retry_after } => {
                        if row.attempts >= self.policy.max_attempts {
                            let why = format!("{detail}; gave up after {} attempts", row.attempts);
                            self.store.mark_failed(key, &self.owner, now, &why).await?;
                            s.failed += 1;
                        } else {
                            let mut wait = self.policy.backoff(row.attempts, key);
                            if let Some(ra) = retry_after {
                                wait = wait.max(ra);
                                self.pause(name, now + Duration::from_millis(ms(ra)));
                            }
                            self.store.mark_retry(key, &self.owner, now, now + Duration::from_millis(ms(wait)), detail).await?;
                            s.retried += 1;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether a page of the same incident on the same channel, created no
    /// later than this resolve, is still waiting to be delivered.
    async fn page_pending(&self, resolve: &OutboxRecord) -> Result<bool, StoreError> {
        let rows = self.store.notifications(resolve.incident).await?;
        Ok(rows.iter().any(|r| {
            r.channel == resolve.channel
                && r.kind != MessageKind::Resolve.as_str()
                && r.status == DeliveryStatus::Pending
                && r.created_at <= resolve.created_at
                && r.idempotency_key != resolve.idempotency_key
        }))
    }

    fn gate(&self, name: &str, is_retry: bool, now: Timestamp) -> Gate {
        // Invariant: the lock is never held across an await or a panic point.
        let mut st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let cs = st.entry(name.to_owned()).or_default();
        let tokens = cs.retry_tokens.get_or_insert(self.policy.budget_tokens);
        if is_retry {
            if *tokens < 1.0 {
                return Gate::WaitUntil(now + Duration::from_millis(ms(self.policy.max_backoff)));
            }
            *tokens -= 1.0;
        } else {
            *tokens = (*tokens + self.policy.budget_ratio).min(self.policy.budget_tokens);
        }
        let free = cs.next_free_at.max(cs.paused_until);
        if free > now.as_millis() { Gate::WaitUntil(Timestamp::from_millis(free)) } else { Gate::Go }
    }

    fn mark_sent(&self, name: &str, max_per_sec: Option<f64>, now: Timestamp) {
        let mut st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let cs = st.entry(name.to_owned()).or_default();
        if let Some(rate) = max_per_sec.filter(|r| *r > 0.0) {
            cs.next_free_at = now.as_millis() + (1000.0 / rate).ceil() as i64;
        }
    }

    fn pause(&self, name: &str, until: Timestamp) {
        let mut st = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let cs = st.entry(name.to_owned()).or_default();
        cs.paused_until = cs.paused_until.max(until.as_millis());
    }
}

enum Gate {
    Go,
    WaitUntil(Timestamp),
}
