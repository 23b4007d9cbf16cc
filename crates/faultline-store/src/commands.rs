//! Running an incident command against the store: load → decide → append,
//! retried on a version conflict.
//!
//! This is the one write path for incident changes, shared by the HTTP API,
//! the CLI and (later) the engine. It is not a service layer with policy: the
//! rules are `Incident::decide`; this loop only makes concurrent writers safe
//! without locks held across a decision.

use faultline_core::incident::{Actor, Command, Incident, TimelineEvent};
use faultline_core::{IncidentId, Timestamp};

use crate::{Result, Store, StoreError};

/// How many times a command is re-decided after losing a race. Each retry
/// re-reads the incident, so a command that became invalid (say, a second
/// acknowledge) fails with the state machine's error, not a conflict.
pub const MAX_ATTEMPTS: usize = 16;

/// Applies `command` to incident `id` as `actor` at `now`, returning the new
/// state and the event recorded.
pub async fn execute(
    store: &dyn Store,
    id: IncidentId,
    command: Command,
    actor: Actor,
    now: Timestamp,
) -> Result<(Incident, TimelineEvent)> {
    let mut last_conflict = None;
    for _ in 0..MAX_ATTEMPTS {
        let (incident, _) = store.incident(id).await?.ok_or(StoreError::NotFound(id))?;
        let event = incident.next_event(command.clone(), now, actor.clone())?;
        match store.append(id, incident.version, std::slice::from_ref(&event)).await {
            Ok(new_state) => return Ok((new_state, event)),
            Err(e @ StoreError::Conflict { .. }) => last_conflict = Some(e),
            Err(e) => return Err(e),
        }
        // Yield so the winner of the race can finish before we re-read.
        tokio::task::yield_now().await;
    }
    Err(last_conflict.unwrap_or(StoreError::Database("conflict retries exhausted".into())))
}
