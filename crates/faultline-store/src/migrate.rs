//! Schema migrations, per backend, embedded in the binary and applied on open.
//!
//! A deliberately small runner: migrations are numbered SQL files applied in
//! order inside one transaction each and recorded in `faultline_migrations`.
//! On PostgreSQL an advisory transaction lock serialises concurrent starters
//! (several nodes booting at once). Not here: down-migrations — a release
//! that needs to undo a schema change ships a new forward migration.

use sqlx::{AnyPool, Row};

use crate::sql::Backend;
use crate::{Result, StoreError};

struct Migration {
    version: i64,
    name: &'static str,
    sql: &'static str,
}

const SQLITE: &[Migration] = &[
    Migration { version: 1, name: "init", sql: include_str!("../migrations/sqlite/0001_init.sql") },
    Migration { version: 2, name: "response", sql: include_str!("../migrations/sqlite/0002_response.sql") },
    Migration { version: 3, name: "engine_state", sql: include_str!("../migrations/sqlite/0003_engine_state.sql") },
    Migration { version: 4, name: "status_version", sql: include_str!("../migrations/sqlite/0004_status_version.sql") },
    Migration { version: 5, name: "correlator_rows", sql: include_str!("../migrations/sqlite/0005_correlator_rows.sql") },
    Migration { version: 6, name: "people", sql: include_str!("../migrations/sqlite/0006_people.sql") },
    Migration { version: 7, name: "incident_numbers", sql: include_str!("../migrations/sqlite/0007_incident_numbers.sql") },
];
const POSTGRES: &[Migration] = &[
    Migration { version: 1, name: "init", sql: include_str!("../migrations/postgres/0001_init.sql") },
    Migration { version: 2, name: "response", sql: include_str!("../migrations/postgres/0002_response.sql") },
    Migration { version: 3, name: "engine_state", sql: include_str!("../migrations/postgres/0003_engine_state.sql") },
    Migration { version: 4, name: "status_version", sql: include_str!("../migrations/postgres/0004_status_version.sql") },
    Migration { version: 5, name: "correlator_rows", sql: include_str!("../migrations/postgres/0005_correlator_rows.sql") },
    Migration { version: 6, name: "people", sql: include_str!("../migrations/postgres/0006_people.sql") },
    Migration { version: 7, name: "incident_numbers", sql: include_str!("../migrations/postgres/0007_incident_numbers.sql") },
];

/// Arbitrary, fixed key for `pg_advisory_xact_lock`: "fltmigr" in spirit.
const PG_MIGRATION_LOCK: i64 = 0x666c_746d_6967;

pub(crate) async fn run(pool: &AnyPool, backend: Backend) -> Result<()> {
    let db = |e: sqlx::Error| StoreError::Open(format!("migration failed: {e}"));
    let migrations = match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    sqlx::raw_sql("CREATE TABLE IF NOT EXISTS faultline_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)")
        .execute(pool)
        .await
        .map_err(db)?;
    for m in migrations {
        let mut tx = pool.begin().await.map_err(db)?;
        if backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(PG_MIGRATION_LOCK).execute(&mut *tx).await.map_err(db)?;
        }
        let applied = sqlx::query("SELECT COUNT(*) AS n FROM faultline_migrations WHERE version = $1")
            .bind(m.version)
            .fetch_one(&mut *tx)
            .await
            .map_err(db)?
            .try_get::<i64, _>("n")
            .map_err(db)?;
        if applied > 0 {
            continue;
        }
        sqlx::raw_sql(m.sql).execute(&mut *tx).await.map_err(db)?;
        // Wall-clock time here is bookkeeping for operators, not domain time.
        let applied_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        sqlx::query("INSERT INTO faultline_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(applied_at)
            .execute(&mut *tx)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
    }
    // A database written by a newer Faultline is refused rather than misread.
    let newest: i64 =
        sqlx::query("SELECT COALESCE(MAX(version), 0) AS v FROM faultline_migrations").fetch_one(pool).await.map_err(db)?.try_get("v").map_err(db)?;
    let known = migrations.last().map_or(0, |m| m.version);
    if newest > known {
        return Err(StoreError::Open(format!("database schema version {newest} is newer than this Faultline understands ({known}); upgrade Faultline")));
    }
    Ok(())
}
