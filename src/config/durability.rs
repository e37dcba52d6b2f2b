//! `store.synchronous`: when a metadata row is on disk.

/// When a committed metadata row is on disk (`store.synchronous`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Every commit is fsynced before the caller goes on (SQLite
    /// `synchronous = FULL`): a row, once `250` was answered, survives a
    /// power cut.
    Full,
    /// Commits reach the WAL at once and the disk at the next checkpoint
    /// (`synchronous = NORMAL`): a crash of the daemon loses nothing, a
    /// power cut can lose the last rows (metadata, never mail: the sender
    /// still holds a message until its `250`); the database never becomes
    /// inconsistent.
    #[default]
    Normal,
}
