//! Whether a `SqlStore` can take writes, and what a database error means for
//! the connection that met it.
//!
//! What it is: the classification of driver errors into *fatal* ones — the
//! disk is full, an I/O error, the server ran out of memory, the connection
//! was lost or the server is shutting down (SQLite's `SQLITE_FULL`,
//! `SQLITE_IOERR`, `SQLITE_NOMEM`, `SQLITE_CORRUPT`; PostgreSQL's SQLSTATE
//! classes 08, 53, 57P and 58) — and `StoreHealth`, the counters and the
//! "writes are failing" state that `/readyz` and `/metrics` read.
//!
//! Why a connection that met a fatal error is discarded rather than handed
//! back to the pool: after `SQLITE_FULL` SQLite may already have rolled the
//! transaction back, so the driver's own `ROLLBACK` fails and it keeps
//! counting the connection as inside a transaction; the next user's `BEGIN`
//! then becomes a `SAVEPOINT` and its `COMMIT` a `RELEASE` that commits
//! nothing — a write answered as committed that never was, holding the write
//! lock (`database is locked` for everyone else). A fresh connection has no
//! such history. What it is not: a retry policy (callers answer 503 and the
//! sender retries) or a disk-space monitor.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why the database cannot take a write: the `reason` label of
/// `faultline_store_write_failures_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fatal {
    /// SQLite `SQLITE_FULL`, PostgreSQL 53100.
    DiskFull,
    /// SQLite `SQLITE_IOERR`/`SQLITE_CANTOPEN`, PostgreSQL class 58.
    IoError,
    /// SQLite `SQLITE_NOMEM`, PostgreSQL class 53 other than 53100.
    OutOfResources,
    /// SQLite `SQLITE_CORRUPT`/`SQLITE_NOTADB`, PostgreSQL XX001/XX002.
    Corrupt,
    /// The connection broke (socket, TLS, protocol, PostgreSQL class 08) or
    /// the server is shutting down (57P01–57P03).
    ConnectionLost,
}

impl Fatal {
    pub const ALL: [Fatal; 5] = [Fatal::DiskFull, Fatal::IoError, Fatal::OutOfResources, Fatal::Corrupt, Fatal::ConnectionLost];

    pub fn as_str(self) -> &'static str {
        match self {
            Fatal::DiskFull => "disk_full",
            Fatal::IoError => "io_error",
            Fatal::OutOfResources => "out_of_resources",
            Fatal::Corrupt => "corrupt",
            Fatal::ConnectionLost => "connection_lost",
        }
    }

    /// The fatal class of a driver error, if it is one. Everything else
    /// (constraint violations, busy, a pool timeout) leaves the connection
    /// usable.
    pub fn classify(e: &sqlx::Error) -> Option<Fatal> {
        match e {
            sqlx::Error::Database(d) => {
                if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                    // Extended result codes: the primary code is the low byte.
                    return d.code().and_then(|c| c.parse::<i32>().ok()).and_then(|c| Self::sqlite(c & 0xff));
                }
                if let Some(pg) = d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                    return Self::sqlstate(pg.code());
                }
                None
            }
            sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => Some(Fatal::ConnectionLost),
            _ => None,
        }
    }

    /// A SQLite primary result code.
    fn sqlite(primary: i32) -> Option<Fatal> {
        match primary {
            13 => Some(Fatal::DiskFull),
            10 | 14 => Some(Fatal::IoError),
            7 => Some(Fatal::OutOfResources),
            11 | 26 => Some(Fatal::Corrupt),
            _ => None,
        }
    }

    /// A PostgreSQL SQLSTATE.
    pub fn sqlstate(code: &str) -> Option<Fatal> {
        match code {
            "53100" => Some(Fatal::DiskFull),
            "57P01" | "57P02" | "57P03" => Some(Fatal::ConnectionLost),
            "XX001" | "XX002" => Some(Fatal::Corrupt),
            _ if code.starts_with("53") => Some(Fatal::OutOfResources),
            _ if code.starts_with("58") => Some(Fatal::IoError),
            _ if code.starts_with("08") => Some(Fatal::ConnectionLost),
            _ => None,
        }
    }
}

/// A store's write health, shared by its clones: counters of failed writes
/// by reason and of discarded connections, and whether writes are failing
/// now (set by a fatal write error, cleared by the next write that commits).
#[derive(Debug, Default)]
pub struct StoreHealth {
    failures: [AtomicU64; Fatal::ALL.len()],
    discarded: AtomicU64,
    failing: Mutex<Option<Fatal>>,
}

impl StoreHealth {
    /// Why writes are failing, or `None` if the last write committed.
    pub fn failing(&self) -> Option<Fatal> {
        *self.failing.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Writes that failed for `reason` since the store was opened.
    pub fn failures(&self, reason: Fatal) -> u64 {
        self.failures[reason as usize].load(Ordering::Relaxed)
    }

    /// Connections closed instead of returned to the pool.
    pub fn connections_discarded(&self) -> u64 {
        self.discarded.load(Ordering::Relaxed)
    }

    pub(crate) fn record_failure(&self, reason: Fatal, error: &str) {
        self.failures[reason as usize].fetch_add(1, Ordering::Relaxed);
        self.discarded.fetch_add(1, Ordering::Relaxed);
        let mut failing = self.failing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if failing.is_none() {
            tracing::error!(
                reason = reason.as_str(),
                error,
                "database writes are failing; refusing writes (503) and discarding the connection until one commits"
            );
        } else {
            tracing::warn!(reason = reason.as_str(), error, "database write failed; connection discarded");
        }
        *failing = Some(reason);
    }

    /// A connection that is closed rather than reused for another cause (a
    /// failed COMMIT or ROLLBACK left it in an unknown transaction state).
    pub(crate) fn record_discard(&self, error: &str) {
        self.discarded.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error, "database connection discarded: its transaction state is unknown after a failed commit or rollback");
    }

    pub(crate) fn record_success(&self) {
        let mut failing = self.failing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(reason) = failing.take() {
            tracing::warn!(was = reason.as_str(), "database writes recovered");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Fatal;

    #[test]
    fn postgres_resource_io_and_connection_classes_are_fatal() {
        assert_eq!(Fatal::sqlstate("53100"), Some(Fatal::DiskFull));
        assert_eq!(Fatal::sqlstate("53200"), Some(Fatal::OutOfResources));
        assert_eq!(Fatal::sqlstate("58030"), Some(Fatal::IoError));
        assert_eq!(Fatal::sqlstate("08006"), Some(Fatal::ConnectionLost));
        assert_eq!(Fatal::sqlstate("57P01"), Some(Fatal::ConnectionLost));
        assert_eq!(Fatal::sqlstate("XX001"), Some(Fatal::Corrupt));
        // Constraint violations, serialisation failures, syntax: the
        // connection is fine.
        for code in ["23505", "40001", "40P01", "42601", "57014"] {
            assert_eq!(Fatal::sqlstate(code), None, "{code}");
        }
    }

    #[test]
    fn sqlite_full_ioerr_nomem_and_corrupt_are_fatal_busy_and_constraints_are_not() {
        // Extended codes carry the primary code in the low byte.
        assert_eq!(Fatal::sqlite(13), Some(Fatal::DiskFull));
        assert_eq!(Fatal::sqlite((3 << 8 | 10) & 0xff), Some(Fatal::IoError)); // SQLITE_IOERR_WRITE
        assert_eq!(Fatal::sqlite(7), Some(Fatal::OutOfResources));
        assert_eq!(Fatal::sqlite(11), Some(Fatal::Corrupt));
        for code in [5, 6, 19, 1] {
            assert_eq!(Fatal::sqlite(code), None, "{code}");
        }
    }
}
