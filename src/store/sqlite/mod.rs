//! The SQLite store: one writer connection behind a mutex and a small pool
//! of read-only connections, so alias lookups on the SMTP path run in
//! parallel (WAL) and never queue behind a write. [`Database`] is blocking;
//! [`SqliteStore`] is the [`Store`] over it, which moves each call to
//! tokio's blocking pool and writes log rows through a group commit
//! (`log_queue`). Everything SQLite-specific (pragmas, checkpoints,
//! `secure_delete`, durability, `schema.sql`) lives in this folder.

mod log_queue;
mod store;

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

pub use store::SqliteStore;

use super::{
    BackendError, ConversationAliases, ConversationView, Direction, ExportedConversation,
    ExportedMessage, LogEntry, Participant, Route, StoreError, UserExport, UserId,
};
use crate::config::Durability;
use crate::core::address::{random_alias, EmailAddress};

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        StoreError::Backend(backend_error(err))
    }
}

/// The store cannot serve now but may in a moment: locked by another
/// process, a full or read-only disk, out of memory.
fn backend_error(err: rusqlite::Error) -> BackendError {
    use rusqlite::ErrorCode;
    let unavailable = matches!(
        &err,
        rusqlite::Error::SqliteFailure(failure, _) if matches!(
            failure.code,
            ErrorCode::DatabaseBusy
                | ErrorCode::DatabaseLocked
                | ErrorCode::DiskFull
                | ErrorCode::ReadOnly
                | ErrorCode::SystemIoFailure
                | ErrorCode::CannotOpen
                | ErrorCode::OutOfMemory
        )
    );
    BackendError {
        message: err.to_string(),
        unavailable,
    }
}

const SCHEMA: &str = include_str!("schema.sql");
/// How long a connection waits for a lock another process holds, where the
/// caller set no shorter bound.
const BUSY_WAIT: Duration = Duration::from_secs(5);
/// The WAL's size after a checkpoint at most (`journal_size_limit`): a
/// checkpoint that could run gives back the rest.
const WAL_SIZE_LIMIT: u64 = 64 * 1024 * 1024;
/// Idle read connections kept open.
const READ_POOL_SIZE: usize = 8;

pub struct Database {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves SQLite itself consistent
    // (transactions roll back on drop), so the poison flag carries no meaning.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Durability {
    fn pragma(self) -> &'static str {
        match self {
            Durability::Full => "PRAGMA synchronous = FULL;",
            Durability::Normal => "PRAGMA synchronous = NORMAL;",
        }
    }
}

impl Database {
    /// Opens (creating with mode 0600 if needed) and migrates the database,
    /// with the default durability.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::default())
    }

    /// [`Database::open`] with the durability of metadata rows chosen.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        if !path.exists() {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateFile {
                    path: dir.to_owned(),
                    source,
                })?;
            }
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(|source| StoreError::CreateFile {
                    path: path.to_owned(),
                    source,
                })?;
        }
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source: backend_error(source),
        };
        let writer = Connection::open(path).map_err(open_err)?;
        configure(&writer).map_err(open_err)?;
        writer
            .execute_batch(durability.pragma())
            .map_err(open_err)?;
        migrate(&writer)?;
        Ok(Self {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn with_reader<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let pooled = lock(&self.readers).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(|source| StoreError::Open {
                    path: self.path.clone(),
                    source: backend_error(source),
                })?;
                conn.busy_timeout(BUSY_WAIT)?;
                keep_temporary_data_in_memory(&conn)?;
                conn
            }
        };
        let result = f(&conn);
        let mut idle = lock(&self.readers);
        if idle.len() < READ_POOL_SIZE {
            idle.push(conn);
        }
        result
    }

    /// Creates the conversation between two users, or returns the live one
    /// for that pair (in either order). Emails and display names given here
    /// replace the stored ones. Returns the aliases and whether it was new.
    pub fn create_conversation(
        &self,
        a: &Participant,
        b: &Participant,
        now: i64,
    ) -> Result<(ConversationAliases, bool), StoreError> {
        if a.user_id == b.user_id {
            return Err(StoreError::SameUser);
        }
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for p in [a, b] {
            tx.prepare_cached(
                "INSERT INTO users (id, email) VALUES (?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET email = excluded.email",
            )?
            .execute(params![p.user_id.as_str(), p.email.as_str()])?;
        }
        let existing: Option<String> = tx
            .prepare_cached(
                "SELECT id FROM conversations
                 WHERE revoked_at IS NULL
                   AND min(user_a, user_b) = min(?1, ?2) AND max(user_a, user_b) = max(?1, ?2)",
            )?
            .query_row(params![a.user_id.as_str(), b.user_id.as_str()], |row| {
                row.get(0)
            })
            .optional()?;
        let created = existing.is_none();
        let conversation_id = match existing {
            Some(id) => id,
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                tx.prepare_cached(
                    "INSERT INTO conversations (id, user_a, user_b, created_at) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![id, a.user_id.as_str(), b.user_id.as_str(), now])?;
                for p in [a, b] {
                    insert_alias(&tx, &id, p.user_id.as_str())?;
                }
                id
            }
        };
        for p in [a, b] {
            if let Some(name) = &p.display_name {
                tx.prepare_cached(
                    "UPDATE aliases SET display_name = ?1 WHERE conversation_id = ?2 AND owner = ?3",
                )?
                .execute(params![name.as_str(), conversation_id, p.user_id.as_str()])?;
            }
        }
        let alias_of = |user: &UserId| -> Result<String, StoreError> {
            Ok(tx
                .prepare_cached(
                    "SELECT alias FROM aliases WHERE conversation_id = ?1 AND owner = ?2",
                )?
                .query_row(params![conversation_id, user.as_str()], |row| row.get(0))?)
        };
        let aliases = ConversationAliases {
            alias_a: alias_of(&a.user_id)?,
            alias_b: alias_of(&b.user_id)?,
            conversation_id: conversation_id.clone(),
        };
        tx.commit()?;
        Ok((aliases, created))
    }

    /// Revokes a live conversation; returns false if there was none with that id.
    pub fn revoke_conversation(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let conn = lock(&self.writer);
        let changed = conn
            .prepare_cached(
                "UPDATE conversations SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            )?
            .execute(params![id, now])?;
        Ok(changed == 1)
    }

    /// The route for a live alias, or None for unknown and revoked ones alike.
    pub fn route(&self, alias: &str) -> Result<Option<Route>, StoreError> {
        self.with_reader(|conn| {
            Ok(conn
                .prepare_cached(
                    "SELECT a.alias, a.conversation_id, owner.id, owner.email,
                            partner.id, partner.email, pa.alias, pa.display_name
                     FROM aliases a
                     JOIN conversations c ON c.id = a.conversation_id AND c.revoked_at IS NULL
                     JOIN users owner ON owner.id = a.owner
                     JOIN aliases pa ON pa.conversation_id = a.conversation_id AND pa.owner <> a.owner
                     JOIN users partner ON partner.id = pa.owner
                     WHERE a.alias = ?1",
                )?
                .query_row(params![alias], |row| {
                    Ok(Route {
                        alias: row.get(0)?,
                        conversation_id: row.get(1)?,
                        owner_id: row.get(2)?,
                        owner_email: row.get(3)?,
                        partner_id: row.get(4)?,
                        partner_email: row.get(5)?,
                        partner_alias: row.get(6)?,
                        partner_display_name: row.get(7)?,
                    })
                })
                .optional()?)
        })
    }

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

    /// Runs `f` on the writer connection, waiting at most `wait` for a lock
    /// another process holds (then the usual wait again).
    fn write_waiting<T>(
        &self,
        wait: Duration,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = lock(&self.writer);
        conn.busy_timeout(wait)?;
        let result = f(&mut conn);
        conn.busy_timeout(BUSY_WAIT)?;
        result
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
}

const CONVERSATION_VIEW: &str =
    "SELECT c.id, c.created_at, c.revoked_at, me.owner, me.alias, me.display_name,
            other.owner, other.alias, partner.email
     FROM conversations c
     JOIN aliases me ON me.conversation_id = c.id
     JOIN aliases other ON other.conversation_id = c.id AND other.owner <> me.owner
     JOIN users partner ON partner.id = other.owner";

fn conversation_view(row: &rusqlite::Row<'_>) -> rusqlite::Result<ConversationView> {
    Ok(ConversationView {
        conversation_id: row.get(0)?,
        created_at: row.get(1)?,
        revoked_at: row.get(2)?,
        user_id: row.get(3)?,
        alias: row.get(4)?,
        display_name: row.get(5)?,
        partner_id: row.get(6)?,
        partner_alias: row.get(7)?,
        partner_email: row.get(8)?,
    })
}

impl Database {
    /// The conversation from `user`'s side, if it exists and they take part.
    pub fn conversation_for(
        &self,
        id: &str,
        user: &str,
    ) -> Result<Option<ConversationView>, StoreError> {
        self.with_reader(|conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "{CONVERSATION_VIEW} WHERE c.id = ?1 AND me.owner = ?2"
                ))?
                .query_row(params![id, user], conversation_view)
                .optional()?)
        })
    }

    pub fn export_user(&self, user: &str) -> Result<Option<UserExport>, StoreError> {
        let email: Option<String> = self.with_reader(|conn| {
            Ok(conn
                .prepare_cached("SELECT email FROM users WHERE id = ?1")?
                .query_row(params![user], |row| row.get(0))
                .optional()?)
        })?;
        let Some(email) = email else {
            return Ok(None);
        };
        let conversations = self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT c.id, c.created_at, c.revoked_at, me.alias, me.display_name, other.alias
                 FROM conversations c
                 JOIN aliases me ON me.conversation_id = c.id
                 JOIN aliases other ON other.conversation_id = c.id AND other.owner <> me.owner
                 WHERE me.owner = ?1 ORDER BY c.created_at, c.id",
            )?;
            let rows = stmt.query_map(params![user], |row| {
                Ok(ExportedConversation {
                    conversation_id: row.get(0)?,
                    created_at: row.get(1)?,
                    revoked_at: row.get(2)?,
                    alias: row.get(3)?,
                    display_name: row.get(4)?,
                    partner_alias: row.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })?;
        Ok(Some(UserExport {
            user_id: user.to_owned(),
            email,
            conversations,
            message_log: self.exported_log(user)?,
        }))
    }

    /// The user's log rows with the partner named by alias. A row's alias
    /// is the one the message was addressed to: the partner's when the user
    /// sent it, the user's own when they received it (the partner is then
    /// the other alias of that conversation).
    fn exported_log(&self, user: &str) -> Result<Vec<ExportedMessage>, StoreError> {
        self.with_reader(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT l.sent_at, l.sender_id IS ?1, l.subject,
                        CASE WHEN l.sender_id IS ?1 AND addressed.owner <> ?1 THEN addressed.alias
                             WHEN l.recipient_id IS ?1 AND addressed.owner = ?1 THEN other.alias
                        END
                 FROM message_log l
                 LEFT JOIN aliases addressed ON addressed.alias = l.alias
                 LEFT JOIN aliases other ON other.conversation_id = addressed.conversation_id
                                        AND other.owner <> addressed.owner
                 WHERE l.sender_id = ?1 OR l.recipient_id = ?1 ORDER BY l.sent_at, l.id",
            )?;
            let rows = stmt.query_map(params![user], |row| {
                let sent: bool = row.get(1)?;
                Ok(ExportedMessage {
                    sent_at: row.get(0)?,
                    direction: if sent {
                        Direction::Sent
                    } else {
                        Direction::Received
                    },
                    subject: row.get(2)?,
                    partner_alias: row.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
    }

    /// Erases a user: their address and every conversation they were in
    /// (so their aliases and their partners' aliases for them stop), their
    /// id in the log becomes NULL and their aliases in it are blanked (a
    /// log row keeps the partner's side only). One transaction; then the
    /// WAL is checkpointed so the erased address leaves no readable copy.
    pub fn delete_user(&self, user: &str) -> Result<bool, StoreError> {
        let mut conn = lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE message_log SET alias = ''
             WHERE alias IN (SELECT alias FROM aliases WHERE owner = ?1)",
            params![user],
        )?;
        tx.execute(
            "UPDATE message_log SET sender_id = NULL WHERE sender_id = ?1",
            params![user],
        )?;
        tx.execute(
            "UPDATE message_log SET recipient_id = NULL WHERE recipient_id = ?1",
            params![user],
        )?;
        tx.execute(
            "DELETE FROM aliases WHERE conversation_id IN
                 (SELECT id FROM conversations WHERE user_a = ?1 OR user_b = ?1)",
            params![user],
        )?;
        tx.execute(
            "DELETE FROM conversations WHERE user_a = ?1 OR user_b = ?1",
            params![user],
        )?;
        let deleted = tx.execute("DELETE FROM users WHERE id = ?1", params![user])?;
        tx.commit()?;
        // The deletion has happened: reporting a busy checkpoint as a
        // failure would make the caller retry a deletion that is done
        // (and get "no such user"). The next prune pass checkpoints again.
        match checkpoint(&conn) {
            Err(StoreError::CheckpointBusy) => {
                tracing::warn!("user deleted; WAL checkpoint busy, left to the next prune pass");
            }
            other => other?,
        }
        Ok(deleted == 1)
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
fn checkpoint(conn: &Connection) -> Result<(), StoreError> {
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

fn insert_alias(
    tx: &rusqlite::Transaction<'_>,
    conversation: &str,
    owner: &str,
) -> Result<(), StoreError> {
    // 100 random bits make a collision practically impossible; retry anyway
    // rather than fail a request on the primary key.
    let mut attempts = 0;
    loop {
        let result = tx
            .prepare_cached(
                "INSERT INTO aliases (alias, conversation_id, owner) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![random_alias(), conversation, owner]);
        match result {
            Ok(_) => return Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation && attempts < 3 =>
            {
                attempts += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_WAIT)?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA foreign_keys = ON;
         PRAGMA secure_delete = ON;
         PRAGMA journal_size_limit = {WAL_SIZE_LIMIT};"
    ))?;
    keep_temporary_data_in_memory(conn)
}

/// SQLite's statement journals, sorts and transient indices go to files in
/// the temp directory by default (the bundled build sets no
/// SQLITE_TEMP_STORE): subjects and aliases would land on disk outside the
/// database and be erased by nobody. Every connection keeps them in memory.
fn keep_temporary_data_in_memory(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch("PRAGMA temp_store = MEMORY;")
}

/// Applies the `-- step N` sections of schema.sql above `user_version`.
fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let steps = schema_steps();
    let known = steps.len() as i64;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    for (index, sql) in steps.iter().enumerate().skip(found as usize) {
        let version = index as i64 + 1;
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        if version == RENORMALIZE_ADDRESSES_STEP {
            renormalize_addresses(&tx)?;
        }
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(())
}

/// The schema step whose work is done by [`renormalize_addresses`].
const RENORMALIZE_ADDRESSES_STEP: i64 = 4;

/// Rewrites every stored address into today's canonical form
/// ([`EmailAddress::parse`]): one registered as `carol@xn--bcher-kva.example`
/// before IDNA mapping becomes `carol@bücher.example`, which the sender check
/// compares with. A value that no longer parses is left as it was.
fn renormalize_addresses(conn: &Connection) -> Result<(), StoreError> {
    let users: Vec<(String, String)> = conn
        .prepare("SELECT id, email FROM users")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut update = conn.prepare("UPDATE users SET email = ?2 WHERE id = ?1")?;
    for (id, email) in users {
        if let Ok(canonical) = EmailAddress::parse(&email) {
            if canonical.as_str() != email {
                update.execute(params![id, canonical.as_str()])?;
            }
        }
    }
    Ok(())
}

/// The SQL of each step, in order: the text after a line that is exactly
/// `-- step N` up to the next such line. The numbers must count 1, 2, 3…
/// (checked by a test), so a comment can never become a step.
fn schema_steps() -> Vec<&'static str> {
    numbered_steps(SCHEMA)
        .into_iter()
        .map(|(_, sql)| sql)
        .collect()
}

fn numbered_steps(schema: &str) -> Vec<(u32, &str)> {
    let mut steps: Vec<(u32, &str)> = Vec::new();
    let mut current: Option<(u32, usize)> = None;
    let mut offset = 0;
    for line in schema.split_inclusive('\n') {
        let number = line
            .trim_end()
            .strip_prefix("-- step ")
            .and_then(|n| n.parse::<u32>().ok());
        if let Some(number) = number {
            if let Some((previous, start)) = current {
                steps.push((previous, &schema[start..offset]));
            }
            current = Some((number, offset + line.len()));
        }
        offset += line.len();
    }
    if let Some((last, start)) = current {
        steps.push((last, &schema[start..]));
    }
    steps
}

#[cfg(test)]
mod tests;
