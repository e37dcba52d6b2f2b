//! The SQLite store: one writer connection behind a mutex and a small pool
//! of read-only connections, so alias lookups on the SMTP path run in
//! parallel (WAL) and never queue behind a write. [`Database`] is blocking;
//! [`SqliteStore`] is the [`Store`] over it, which moves each call to
//! tokio's blocking pool and writes log rows through a group commit
//! (`log_queue`). Everything SQLite-specific (pragmas, checkpoints,
//! `secure_delete`, durability, `schema.sql`) lives in this folder.

mod conversations;
mod log;
mod log_queue;
mod schema;
mod store;
mod upkeep;
mod users;

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

pub use store::SqliteStore;

use super::{BackendError, StoreError};
use crate::config::Durability;
use schema::{configure, keep_temporary_data_in_memory, migrate};

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
}

#[cfg(test)]
mod tests;
