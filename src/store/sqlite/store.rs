//! [`SqliteStore`]: the [`Store`] trait over the blocking [`Database`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::log_queue::LogQueue;
use super::Database;
use crate::config::Durability;
use crate::store::{
    ConversationAliases, ConversationView, LogEntry, Participant, Route, RowId, Store, StoreError,
    UserExport,
};

pub struct SqliteStore {
    db: Arc<Database>,
    /// Group commit of log rows: one writer thread, one fsync per batch.
    log: LogQueue,
}

impl SqliteStore {
    /// Opens (creating with mode 0600 if needed) and migrates the database,
    /// with the default durability.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::default())
    }

    /// [`SqliteStore::open`] with the durability of metadata rows chosen.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let db = Arc::new(Database::open_with(path, durability)?);
        Ok(Self {
            log: LogQueue::start(Arc::clone(&db)),
            db,
        })
    }

    /// The blocking database underneath (tests, benchmarks).
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Runs a blocking call off the async runtime.
    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|err| StoreError::Task(err.to_string()))?
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn route(&self, alias: &str) -> Result<Option<Route>, StoreError> {
        let alias = alias.to_owned();
        self.blocking(move |db| db.route(&alias)).await
    }

    async fn create_conversation(
        &self,
        a: &Participant,
        b: &Participant,
        now: i64,
    ) -> Result<(ConversationAliases, bool), StoreError> {
        let (a, b) = (a.clone(), b.clone());
        self.blocking(move |db| db.create_conversation(&a, &b, now))
            .await
    }

    async fn revoke_conversation(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.blocking(move |db| db.revoke_conversation(&id, now))
            .await
    }

    async fn conversation_for(
        &self,
        id: &str,
        user: &str,
    ) -> Result<Option<ConversationView>, StoreError> {
        let (id, user) = (id.to_owned(), user.to_owned());
        self.blocking(move |db| db.conversation_for(&id, &user))
            .await
    }

    async fn export_user(&self, user: &str) -> Result<Option<UserExport>, StoreError> {
        let user = user.to_owned();
        self.blocking(move |db| db.export_user(&user)).await
    }

    async fn delete_user(&self, user: &str) -> Result<bool, StoreError> {
        let user = user.to_owned();
        self.blocking(move |db| db.delete_user(&user)).await
    }

    async fn reserve_log_row(&self, entry: LogEntry) -> Result<RowId, StoreError> {
        self.log.reserve(entry).await
    }

    async fn release_log_row(&self, row: RowId) -> Result<(), StoreError> {
        self.log.release(row).await
    }

    async fn logged_subject_on_alias(
        &self,
        alias: &str,
        since: i64,
        subject: &str,
        max_chars: usize,
    ) -> Result<bool, StoreError> {
        let (alias, subject) = (alias.to_owned(), subject.to_owned());
        self.blocking(move |db| db.logged_subject_on_alias(&alias, since, &subject, max_chars))
            .await
    }

    async fn log_for_user(&self, user: &str) -> Result<Vec<LogEntry>, StoreError> {
        let user = user.to_owned();
        self.blocking(move |db| db.log_for_user(&user)).await
    }

    async fn prune_log(&self, cutoff: i64, batch: usize) -> Result<usize, StoreError> {
        self.blocking(move |db| db.prune_log(cutoff, batch)).await
    }

    async fn count_older(&self, cutoff: i64) -> Result<usize, StoreError> {
        self.blocking(move |db| db.count_older(cutoff)).await
    }

    async fn probe_write(&self, wait: Duration) -> Result<(), StoreError> {
        self.blocking(move |db| db.probe_write(wait)).await
    }

    async fn compact(&self) -> Result<bool, StoreError> {
        self.blocking(|db| db.truncate_wal()).await
    }

    fn journal_bytes(&self) -> u64 {
        self.db.wal_bytes()
    }
}
