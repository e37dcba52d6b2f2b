//! Group commit for the metadata log. Sessions hand their row to one
//! writer thread and wait for it; the thread writes every row that queued
//! up meanwhile in a single transaction, so N concurrent messages cost one
//! fsync instead of N. Each caller learns the outcome of its own row, at
//! the durability `store.synchronous` chose, within [`ROW_WAIT`]: a row is
//! reserved before its message goes upstream, so a store that cannot take
//! it (locked by another process, a full or read-only disk) costs the
//! sender a `451` and a retry, never a message forwarded without its row.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::Database;
use crate::store::{LogEntry, RowId, StoreError, ROW_WAIT};

/// Rows written in one transaction at most.
const MAX_BATCH: usize = 512;
/// Rows waiting at most; beyond it callers wait for room (backpressure).
const QUEUE_DEPTH: usize = 4096;
enum Job {
    Reserve {
        entry: LogEntry,
        deadline: Instant,
        done: oneshot::Sender<Result<RowId, String>>,
    },
    Release {
        row: RowId,
        done: oneshot::Sender<Result<(), String>>,
    },
}

#[derive(Clone)]
pub struct LogQueue {
    jobs: mpsc::Sender<Job>,
}

impl LogQueue {
    /// Starts the writer thread; it ends when every `LogQueue` is dropped.
    pub fn start(store: Arc<Database>) -> Self {
        let (jobs, receiver) = mpsc::channel::<Job>(QUEUE_DEPTH);
        std::thread::Builder::new()
            .name("anonrelay-log".into())
            .spawn(move || write_rows(&store, receiver))
            .map(|_| ())
            .unwrap_or_else(
                |err| tracing::error!(error = %err, "cannot start the log writer thread"),
            );
        Self { jobs }
    }

    /// Queues one row and waits until it is committed, [`ROW_WAIT`] at most.
    pub async fn reserve(&self, entry: LogEntry) -> Result<RowId, StoreError> {
        self.reserve_within(entry, ROW_WAIT).await
    }

    /// [`LogQueue::reserve`] with another bound (tests).
    pub async fn reserve_within(
        &self,
        entry: LogEntry,
        wait: Duration,
    ) -> Result<RowId, StoreError> {
        let deadline = Instant::now() + wait;
        let (done, outcome) = oneshot::channel();
        let job = Job::Reserve {
            entry,
            deadline,
            done,
        };
        // The writer answers by the deadline (it never waits for a lock
        // past it); the outer bound is for a writer stuck in the disk
        // itself. A row committed after that stays, for a message not
        // sent: the safe side of the promise.
        let queued = async {
            self.jobs.send(job).await.map_err(|_| stopped())?;
            outcome
                .await
                .map_err(|_| stopped())?
                .map_err(StoreError::Task)
        };
        tokio::time::timeout(wait + Duration::from_secs(5), queued)
            .await
            .map_err(|_| StoreError::Task("the metadata row was not written in time".into()))?
    }

    /// Removes a reserved row: its message was not forwarded.
    pub async fn release(&self, row: RowId) -> Result<(), StoreError> {
        let (done, outcome) = oneshot::channel();
        self.jobs
            .send(Job::Release { row, done })
            .await
            .map_err(|_| stopped())?;
        outcome
            .await
            .map_err(|_| stopped())?
            .map_err(StoreError::Task)
    }
}

fn stopped() -> StoreError {
    StoreError::Task("log writer stopped".into())
}

/// The writer thread: batches of reservations, one transaction each, then
/// the releases that queued with them.
fn write_rows(store: &Database, mut receiver: mpsc::Receiver<Job>) {
    let mut reserves = Vec::with_capacity(MAX_BATCH);
    let mut releases = Vec::new();
    while let Some(first) = receiver.blocking_recv() {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Reserve {
                    entry,
                    deadline,
                    done,
                } => reserves.push((entry, deadline, done)),
                Job::Release { row, done } => releases.push((row, done)),
            }
            if reserves.len() < MAX_BATCH {
                next = receiver.try_recv().ok();
            }
        }
        commit_reservations(store, &mut reserves);
        for (RowId(id), done) in releases.drain(..) {
            let _ = done.send(store.remove_log_rows(&[id]).map_err(|e| e.to_string()));
        }
    }
}

type Reservation = (LogEntry, Instant, oneshot::Sender<Result<RowId, String>>);

fn commit_reservations(store: &Database, reserves: &mut Vec<Reservation>) {
    const LATE: &str = "the store did not take the row in time";
    let now = Instant::now();
    // Callers whose time is up are answered without a write: their session
    // answers 451, so their row must not appear.
    let (late, live): (Vec<_>, Vec<_>) = reserves
        .drain(..)
        .partition(|(_, deadline, _)| *deadline <= now);
    for (_, _, done) in late {
        let _ = done.send(Err(LATE.into()));
    }
    let Some(wait) = live
        .iter()
        .map(|(_, deadline, _)| deadline.saturating_duration_since(now))
        .min()
    else {
        return;
    };
    let entries: Vec<LogEntry> = live.iter().map(|(entry, ..)| entry.clone()).collect();
    if let Ok(ids) = store.log_messages(&entries, wait) {
        for ((_, _, done), id) in live.into_iter().zip(ids) {
            let _ = done.send(Ok(RowId(id)));
        }
        return;
    }
    // One bad row must not cost the others theirs: retry singly, each
    // within what is left of its own time.
    for (entry, deadline, done) in live {
        let left = deadline.saturating_duration_since(Instant::now());
        let outcome = if left.is_zero() {
            Err(LATE.into())
        } else {
            store
                .log_messages(std::slice::from_ref(&entry), left)
                .map(|ids| RowId(ids[0]))
                .map_err(|e| e.to_string())
        };
        let _ = done.send(outcome);
    }
}
