//! Fatal database errors: a connection that met one is discarded, never
//! handed back to the pool, the error is `Unavailable` with its reason, the
//! store's health says writes are failing until one commits, and the next
//! write (on a fresh connection) succeeds. PostgreSQL here (the backend is
//! killed mid-transaction); SQLite's full disk is the server's `full_disk`
//! test on a real tmpfs.

use faultline_core::Timestamp;
use faultline_core::incident::{Actor, Command, Incident, Severity};
use faultline_store::{Fatal, Store, StoreError};

use crate::conformance::postgres_url;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_connection_killed_mid_transaction_is_discarded_and_the_next_write_succeeds() {
    let Some(url) = postgres_url().await else { return };
    // A name of our own, so the kill below reaches only this store's connections.
    let name = format!("faultline-fatal-{}", uuid::Uuid::now_v7().simple());
    let store = faultline_store::SqlStore::connect_postgres(&format!("{url}&application_name={name}")).await.unwrap();
    let killer = sqlx::AnyPool::connect(&url).await.unwrap();
    let now = Timestamp::from_millis(1_800_000_000_000);
    let id = faultline_core::IncidentId::from_uuid(uuid::Uuid::now_v7());
    let opened = Incident::open("payments down", Severity::Sev1, None, now, Actor::System("test".into())).unwrap();
    store.create_incident(id, &opened).await.unwrap();

    // Inside the transaction (after the row lock), the server ends our
    // backend: the next statement meets a lost connection.
    let kill = {
        let name = name.clone();
        let killer = killer.clone();
        move || {
            tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(async {
                    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1")
                        .bind(name.as_str())
                        .execute(&killer)
                        .await
                        .unwrap();
                })
            })
        }
    };
    let decide = Box::new(move |inc: &Incident| {
        kill();
        inc.next_event(Command::Acknowledge, now, Actor::System("test".into())).map(|e| vec![e])
    });
    let err = store.update(id, decide).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { reason: Fatal::ConnectionLost, .. }), "{err}");
    let health = store.health();
    assert_eq!(health.failing(), Some(Fatal::ConnectionLost));
    assert_eq!(health.failures(Fatal::ConnectionLost), 1);
    assert!(health.connections_discarded() >= 1);

    // Nothing of the failed transaction was written; the next write works.
    let (inc, _) = store.incident(id).await.unwrap().unwrap();
    assert_eq!(inc.version, 1, "the killed transaction left nothing");
    faultline_store::commands::execute(&store, id, Command::Acknowledge, Actor::System("test".into()), now).await.unwrap();
    assert_eq!(health.failing(), None, "a committed write clears the failing state");
    assert_eq!(store.incident(id).await.unwrap().unwrap().0.status.as_str(), "acknowledged");
    store.check_writable().await.unwrap();
    store.close().await;
    killer.close().await;
}
