//! Running a transaction again when SQLite says another connection is in the way.
//!
//! SQLite's busy timeout already waits for locks inside one statement, but some conflicts are
//! reported at once (a read transaction that cannot be upgraded, a snapshot that moved, WAL
//! recovery by another process). Like Nix's `retrySQLite`, such a transaction is rolled back and
//! run again after a random sleep of up to 100 ms, here until a deadline.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::error::DbError;

/// Whether a transaction reads only or also writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TxnKind {
    /// A deferred transaction: a consistent snapshot for several reads.
    Read,
    /// An immediate transaction: takes the write lock at `BEGIN`, so it never has to be upgraded.
    Write,
}

/// Runs `body` in a transaction on `conn` and commits it, retrying on "busy" until `timeout` has
/// passed since the first attempt. `body` may run several times; it must not have effects outside
/// the transaction.
pub(crate) fn in_transaction<T>(
    conn: &mut Connection,
    kind: TxnKind,
    timeout: Duration,
    db_path: &Path,
    mut body: impl FnMut(&Connection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    let start = Instant::now();
    let random = RandomState::new();
    let mut attempt: u64 = 0;
    loop {
        match attempt_once(conn, kind, &mut body) {
            Err(e) if e.is_busy() => {
                if start.elapsed() >= timeout {
                    return Err(DbError::Busy { path: db_path.to_owned() });
                }
                attempt += 1;
                let millis = random.hash_one(attempt) % 100;
                std::thread::sleep(Duration::from_millis(millis + 1));
            }
            other => return other,
        }
    }
}

fn attempt_once<T>(
    conn: &mut Connection,
    kind: TxnKind,
    body: &mut impl FnMut(&Connection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    // `BEGIN` and `COMMIT` as cached statements: executing their text would parse it again for
    // every transaction, a measurable part of a one-row query.
    let begin = match kind {
        TxnKind::Read => "BEGIN DEFERRED",
        TxnKind::Write => "BEGIN IMMEDIATE",
    };
    execute_cached(conn, begin).map_err(DbError::sqlite("starting a transaction"))?;
    let open = OpenTransaction(conn);
    let value = body(open.0)?;
    execute_cached(open.0, "COMMIT").map_err(DbError::sqlite("committing a transaction"))?;
    Ok(value)
}

fn execute_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(drop)
}

/// A transaction begun on the connection: rolled back when dropped still open (the body or the
/// `COMMIT` failed, or the body panicked), so that the connection is usable again.
struct OpenTransaction<'c>(&'c Connection);

impl Drop for OpenTransaction<'_> {
    fn drop(&mut self) {
        // After a `COMMIT` (or a failure that ended the transaction) there is nothing to roll back.
        if !self.0.is_autocommit() {
            if let Err(e) = execute_cached(self.0, "ROLLBACK") {
                tracing::warn!("rolling back a transaction: {e}");
            }
        }
    }
}

/// Runs `body` on `conn` outside a transaction, retrying on "busy" like [`in_transaction`].
pub(crate) fn with_retry<T>(
    conn: &mut Connection,
    timeout: Duration,
    db_path: &Path,
    mut body: impl FnMut(&mut Connection) -> Result<T, DbError>,
) -> Result<T, DbError> {
    let start = Instant::now();
    let random = RandomState::new();
    let mut attempt: u64 = 0;
    loop {
        match body(conn) {
            Err(e) if e.is_busy() => {
                if start.elapsed() >= timeout {
                    return Err(DbError::Busy { path: db_path.to_owned() });
                }
                attempt += 1;
                std::thread::sleep(Duration::from_millis(random.hash_one(attempt) % 100 + 1));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_busy_until_success() {
        let mut conn = Connection::open_in_memory().unwrap();
        let mut calls = 0;
        let value = in_transaction(&mut conn, TxnKind::Write, Duration::from_secs(10), Path::new("mem"), |_| {
            calls += 1;
            if calls < 3 {
                Err(DbError::Sqlite {
                    context: "test",
                    source: rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None),
                })
            } else {
                Ok(calls)
            }
        })
        .unwrap();
        assert_eq!(value, 3);
    }

    #[test]
    fn gives_up_after_timeout() {
        let mut conn = Connection::open_in_memory().unwrap();
        let result: Result<(), _> = in_transaction(&mut conn, TxnKind::Read, Duration::ZERO, Path::new("mem"), |_| {
            Err(DbError::Sqlite {
                context: "test",
                source: rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None),
            })
        });
        assert!(matches!(result, Err(DbError::Busy { .. })));
    }

    #[test]
    fn other_errors_are_not_retried() {
        let mut conn = Connection::open_in_memory().unwrap();
        let mut calls = 0;
        let result: Result<(), _> = in_transaction(&mut conn, TxnKind::Write, Duration::from_secs(10), Path::new("mem"), |_| {
            calls += 1;
            Err(DbError::ReadOnly)
        });
        assert!(matches!(result, Err(DbError::ReadOnly)));
        assert_eq!(calls, 1);
    }
}
