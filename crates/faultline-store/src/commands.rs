//! Running an incident command against the store: decide under the
//! incident's write lock (`Store::update`), so concurrent commands are
//! serialised and each one is judged against the latest state.
//!
//! This is the one write path for incident changes, shared by the HTTP API,
//! the CLI and (later) the engine. It is not a service layer with policy: the
//! rules are `Incident::decide`. The only retry here is for a database too
//! busy to grant the lock (SQLite under heavy write load).

use std::time::Duration;

use faultline_core::incident::{Actor, Command, Incident, TimelineEvent};
use faultline_core::{IncidentId, Timestamp};

use crate::{Result, Store, StoreError};

/// Attempts when the database reports it is busy.
pub const MAX_ATTEMPTS: u32 = 8;

/// Applies `command` to incident `id` as `actor` at `now`, returning the new
/// state and the event recorded.
pub async fn execute(store: &dyn Store, id: IncidentId, command: Command, actor: Actor, now: Timestamp) -> Result<(Incident, TimelineEvent)> {
    let mut attempt = 0;
    loop {
        let (command, actor) = (command.clone(), actor.clone());
        let decide = Box::new(move |inc: &Incident| inc.next_event(command, now, actor).map(|e| vec![e]));
        match store.update(id, decide).await {
            Ok((incident, mut events)) => {
                // `decide` returned exactly one event; `update` returns what it appended.
                let event = events.pop().ok_or_else(|| StoreError::Corrupt("update appended no event".into()))?;
                return Ok((incident, event));
            }
            Err(StoreError::Busy(_)) if attempt + 1 < MAX_ATTEMPTS => {
                attempt += 1;
                // Exponential backoff from 10 ms: the lock holder finishes a
                // short transaction; this is not test synchronisation.
                tokio::time::sleep(Duration::from_millis(10 << attempt.min(6))).await;
            }
            Err(e) => return Err(e),
        }
    }
}
