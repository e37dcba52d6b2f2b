//! Health probes and the WAL: its size, and folding it back so erased
//! rows leave no page images behind.

use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::Database;
use crate::store::StoreError;

impl Database {
    /// Cheap liveness probe: the database can be read.
    pub fn ping(&self) -> Result<(), StoreError> {
        self.with_reader(|conn| Ok(conn.query_row("SELECT count(*) FROM users", [], |_| Ok(()))?))
    }

    /// Whether a row could be written now (for /healthz): takes the write
    /// lock within `wait` and commits a transaction that rewrites the
    /// database header with its own schema version, so a full or read-only
    /// file system, or a lock held by another process, fails it. Stores
    /// nothing new.
    pub fn probe_write(&self, wait: Duration) -> Result<(), StoreError> {
        self.write_waiting(wait, |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let version: i64 = tx.query_row("PRAGMA user_version", [], |row| row.get(0))?;
            tx.execute_batch(&format!("PRAGMA user_version = {version};"))?;
            tx.commit()?;
            Ok(())
        })
    }

    /// Bytes in the write-ahead log now (for /metrics); 0 when there is none.
    pub fn wal_bytes(&self) -> u64 {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        std::fs::metadata(wal).map_or(0, |meta| meta.len())
    }

    /// Folds the WAL into the database and truncates it, if no reader is in
    /// the way (then it tries again next time): keeps the WAL small behind
    /// long readers. Off the answer path: the daemon calls it on a timer.
    pub fn truncate_wal(&self) -> Result<bool, StoreError> {
        // Never wait: the writer connection is the one rows need.
        self.write_waiting(Duration::ZERO, |conn| {
            let busy: i64 =
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
            Ok(busy == 0)
        })
    }
}

/// Folds the WAL back into the database and truncates it, so rows erased
/// with secure_delete do not survive as old page images in the WAL.
///
/// A reader holding an old snapshot makes the checkpoint give up (after
/// the busy timeout) with its first column set; that is an error here,
/// because the erasure the caller promised is then not complete.
pub(super) fn checkpoint(conn: &Connection) -> Result<(), StoreError> {
    const ATTEMPTS: u32 = 3;
    for _ in 0..ATTEMPTS {
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get(0))?;
        if busy == 0 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(StoreError::CheckpointBusy)
}
