//! The metadata log: rows reserved and removed around delivery, the
//! subjects a bounce notice may quote, the operator's view, pruning.

use std::time::Duration;

use rusqlite::{params, TransactionBehavior};

use super::upkeep::checkpoint;
use super::{lock, Database, BUSY_WAIT};
use crate::store::{LogEntry, StoreError};

impl Database {
    pub fn log_message(&self, entry: &LogEntry) -> Result<i64, StoreError> {
        let ids = self.log_messages(std::slice::from_ref(entry), BUSY_WAIT)?;
        Ok(ids[0])
    }

    /// Writes several log rows in one transaction (one fsync for all: group
    /// commit, see [`LogQueue`]), waiting at most `wait` for the write lock.
    /// Returns the rows' ids, in order.
    pub fn log_messages(
        &self,
        entries: &[LogEntry],
        wait: Duration,
    ) -> Result<Vec<i64>, StoreError> {
        self.write_waiting(wait, |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut ids = Vec::with_capacity(entries.len());
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO message_log (sent_at, sender_id, recipient_id, alias, subject)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for entry in entries {
                    insert.execute(params![
                        entry.sent_at,
                        entry.sender_id,
                        entry.recipient_id,
                        entry.alias,
                        entry.subject
                    ])?;
                    ids.push(tx.last_insert_rowid());
                }
            }
            tx.commit()?;
            Ok(ids)
        })
    }

    /// Removes log rows reserved for messages the upstream then refused.
    pub fn remove_log_rows(&self, ids: &[i64]) -> Result<(), StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut delete = tx.prepare_cached("DELETE FROM message_log WHERE id = ?1")?;
            for id in ids {
                delete.execute(params![id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Whether a message logged on `alias` since `since` (unix seconds)
    /// had `subject` as its first `max_chars` characters (trailing spaces
    /// trimmed), as a bounce notice quotes it. Logged subjects are already
    /// clean (no control characters, trimmed), so the comparison is SQL's.
    pub fn logged_subject_on_alias(
        &self,
        alias: &str,
        since: i64,
        subject: &str,
        max_chars: usize,
    ) -> Result<bool, StoreError> {
        self.with_reader(|conn| {
            let found = conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM message_log
                     WHERE alias = ?1 AND sent_at >= ?2 AND rtrim(substr(subject, 1, ?4)) = ?3)",
                )?
                .query_row(params![alias, since, subject, max_chars as i64], |row| {
                    row.get(0)
                })?;
            Ok(found)
        })
    }

    /// Log rows in which the user appears, oldest first, with both user ids:
    /// the operator's legal disclosure (`anonrelay log --user`), never the
    /// user's own export, which names the partner by alias only.
    pub fn log_for_user(&self, user: &str) -> Result<Vec<LogEntry>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT sent_at, sender_id, recipient_id, alias, subject FROM message_log
                 WHERE sender_id = ?1 OR recipient_id = ?1 ORDER BY sent_at, id",
            )?;
            let rows = stmt.query_map(params![user], |row| {
                Ok(LogEntry {
                    sent_at: row.get(0)?,
                    sender_id: row.get(1)?,
                    recipient_id: row.get(2)?,
                    alias: row.get(3)?,
                    subject: row.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Deletes log rows older than `cutoff` (unix seconds) in batches of
    /// `batch` rows, each its own short transaction so SMTP's log writes
    /// interleave, then checkpoints the WAL. Returns the rows deleted.
    pub fn prune_log(&self, cutoff: i64, batch: usize) -> Result<usize, StoreError> {
        let mut total = 0;
        loop {
            let started = std::time::Instant::now();
            let deleted = {
                let conn = lock(&self.writer);
                let deleted = conn
                    .prepare_cached(
                        "DELETE FROM message_log WHERE id IN
                         (SELECT id FROM message_log WHERE sent_at < ?1 ORDER BY sent_at LIMIT ?2)",
                    )?
                    .execute(params![cutoff, batch as i64])?;
                deleted
            };
            total += deleted;
            if deleted < batch {
                break;
            }
            // Leave the write lock free for as long as the batch held it,
            // so log writes of live SMTP sessions (in this process or in
            // `serve` while the timer runs `prune`) get their turn.
            std::thread::sleep(
                started
                    .elapsed()
                    .clamp(Duration::from_millis(2), Duration::from_millis(100)),
            );
        }
        // Always, even with nothing deleted now: a pass whose checkpoint was
        // blocked by readers left erased rows in the WAL, and this one must
        // finish that job.
        checkpoint(&lock(&self.writer))?;
        Ok(total)
    }

    /// How many log rows are older than `cutoff` (for `prune --dry-run`).
    pub fn count_older(&self, cutoff: i64) -> Result<usize, StoreError> {
        self.with_reader(|conn| {
            let count: i64 = conn
                .prepare_cached("SELECT count(*) FROM message_log WHERE sent_at < ?1")?
                .query_row(params![cutoff], |row| row.get(0))?;
            Ok(count as usize)
        })
    }
}
