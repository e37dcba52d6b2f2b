//! What the relay keeps: users, conversations, aliases and the metadata
//! log, behind the [`Store`] trait. Nothing outside this folder knows which
//! database holds them; `sqlite/` is the implementation (its schema, WAL,
//! durability and group commit live there). STORED.md lists every table,
//! column and file at rest.

mod ids;
pub mod sqlite;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use ids::{DisplayName, IdError, UserId};
pub use sqlite::SqliteStore;

use crate::core::address::EmailAddress;
pub use crate::core::clock::now_unix;

/// How long a message waits for its metadata row at most, queueing
/// included. A sending MTA waits minutes for the reply to the final dot
/// (Postfix's `smtp_data_done_timeout` is 600 s; some set 30 s), and the
/// upstream's answer comes after this: a session answers `451` long before
/// its client gives up, so the client never retries a message we forwarded.
pub const ROW_WAIT: Duration = Duration::from_secs(10);

/// Users, conversations, aliases and the metadata log. Object-safe: the
/// daemon holds an `Arc<dyn Store>`. Every call may wait on the database;
/// none holds a lock across calls.
#[async_trait::async_trait]
pub trait Store: Send + Sync {
    /// Everything needed to forward mail to `alias`; None if it is unknown
    /// or its conversation is revoked.
    async fn route(&self, alias: &str) -> Result<Option<Route>, StoreError>;

    /// Creates the conversation between two users, or returns the live one
    /// for that pair (in either order). Emails and display names given here
    /// replace the stored ones. Returns the aliases and whether it was new.
    async fn create_conversation(
        &self,
        a: &Participant,
        b: &Participant,
        now: i64,
    ) -> Result<(ConversationAliases, bool), StoreError>;

    /// Revokes a live conversation; false if there was none.
    async fn revoke_conversation(&self, id: &str, now: i64) -> Result<bool, StoreError>;

    /// The conversation from `user`'s side, if it exists and they take part.
    async fn conversation_for(
        &self,
        id: &str,
        user: &str,
    ) -> Result<Option<ConversationView>, StoreError>;

    /// Everything held about `user`, as shown to them; None if unknown.
    async fn export_user(&self, user: &str) -> Result<Option<UserExport>, StoreError>;

    /// Erases the user, their conversations and their log rows; false if
    /// unknown.
    async fn delete_user(&self, user: &str) -> Result<bool, StoreError>;

    /// Writes a metadata row durably (as `store.synchronous` says) within
    /// [`ROW_WAIT`], before its message goes upstream.
    async fn reserve_log_row(&self, entry: LogEntry) -> Result<RowId, StoreError>;

    /// Removes a reserved row: its message was not forwarded.
    async fn release_log_row(&self, row: RowId) -> Result<(), StoreError>;

    /// Whether the relay forwarded a message on `alias` since `since` whose
    /// logged subject, cut to `max_chars`, is `subject`.
    async fn logged_subject_on_alias(
        &self,
        alias: &str,
        since: i64,
        subject: &str,
        max_chars: usize,
    ) -> Result<bool, StoreError>;

    /// The log rows naming `user` as sender or recipient (`anonrelay log`).
    async fn log_for_user(&self, user: &str) -> Result<Vec<LogEntry>, StoreError>;

    /// Erases every log row older than `cutoff`, `batch` rows per
    /// transaction so that log writes interleave; how many it erased.
    async fn prune_log(&self, cutoff: i64, batch: usize) -> Result<usize, StoreError>;

    /// Log rows older than `cutoff` (`prune --dry-run`).
    async fn count_older(&self, cutoff: i64) -> Result<usize, StoreError>;

    /// Whether a write could commit now, waiting `wait` at most (`/healthz`).
    async fn probe_write(&self, wait: Duration) -> Result<(), StoreError>;

    /// Housekeeping off the answer path (SQLite: a WAL checkpoint); false if
    /// it could not finish now.
    async fn compact(&self) -> Result<bool, StoreError>;

    /// Bytes written but not yet folded into the database (SQLite: the WAL),
    /// for `/metrics`.
    fn journal_bytes(&self) -> u64;
}

/// The store `[store]` names.
pub fn open(config: &crate::config::StoreConfig) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(SqliteStore::open_with(
        &config.path,
        config.synchronous,
    )?))
}

/// A reserved metadata row, to remove it if the message is not sent after all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowId(pub(crate) i64);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Open { path: PathBuf, source: BackendError },
    #[error("cannot create database file {path}: {source}")]
    CreateFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("database schema version {found} is newer than this binary knows ({known})")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("database error: {0}")]
    Backend(BackendError),
    #[error("a conversation needs two different users")]
    SameUser,
    #[error("database task failed: {0}")]
    Task(String),
    #[error(
        "WAL checkpoint stayed busy behind readers: erased rows may remain in the WAL until the next pass"
    )]
    CheckpointBusy,
}

/// An error of the database behind the store, and whether it is a passing
/// condition (locked, full or read-only disk, out of memory).
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    pub message: String,
    pub unavailable: bool,
}

impl StoreError {
    /// The store cannot serve now but may in a moment (locked by another
    /// process, a full or read-only disk, the writer out of time): the
    /// caller answers "try again", never "internal error".
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Backend(err) => err.unavailable,
            StoreError::Task(_) | StoreError::Open { .. } | StoreError::CheckpointBusy => true,
            _ => false,
        }
    }
}

/// One side of a conversation as the front-end or admin names it.
#[derive(Debug, Clone)]
pub struct Participant {
    pub user_id: UserId,
    pub email: EmailAddress,
    pub display_name: Option<DisplayName>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConversationAliases {
    pub conversation_id: String,
    /// Represents user A; B writes to it.
    pub alias_a: String,
    /// Represents user B; A writes to it.
    pub alias_b: String,
}

/// Everything needed to forward mail addressed to one alias.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub alias: String,
    pub conversation_id: String,
    /// The alias owner: receives the mail.
    pub owner_id: String,
    pub owner_email: String,
    /// The only user allowed to write to this alias.
    pub partner_id: String,
    pub partner_email: String,
    /// The alias that represents the partner: the forwarded mail's From.
    pub partner_alias: String,
    pub partner_display_name: Option<String>,
}

/// One row of the metadata log: exactly the five fields the policy names.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LogEntry {
    pub sent_at: i64,
    pub sender_id: Option<String>,
    pub recipient_id: Option<String>,
    pub alias: String,
    pub subject: String,
}

/// A conversation as seen from one participant, for composing. Holds the
/// partner's id and address: never shown to the participant (the export
/// has its own types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationView {
    pub conversation_id: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub user_id: String,
    /// The alias that represents this user (the other side writes to it).
    pub alias: String,
    pub display_name: Option<String>,
    pub partner_id: String,
    /// The alias that represents the partner (this user writes to it).
    pub partner_alias: String,
    pub partner_email: String,
}

/// Everything the store holds about one user, as shown to that user: the
/// partner appears only as the alias the user knows, never by user id or
/// address (the operator's `log --user` keeps both ids).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UserExport {
    pub user_id: String,
    pub email: String,
    pub conversations: Vec<ExportedConversation>,
    pub message_log: Vec<ExportedMessage>,
}

/// One of the user's conversations in their export.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExportedConversation {
    pub conversation_id: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// The alias that represents this user (the partner writes to it).
    pub alias: String,
    pub display_name: Option<String>,
    /// The alias that represents the partner (this user writes to it).
    pub partner_alias: String,
}

/// One message_log row in the user's export.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExportedMessage {
    pub sent_at: i64,
    pub direction: Direction,
    /// The partner as the alias the user knows: the one they wrote to, or
    /// the one the message came from. None once the conversation is gone
    /// (a deleted partner).
    pub partner_alias: Option<String>,
    pub subject: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// The user wrote the message.
    Sent,
    /// The user received it.
    Received,
}
