//! Group commit for the metadata log. Sessions hand their row to one
//! writer thread and wait for it; the thread writes every row that queued
//! up meanwhile in a single transaction, so N concurrent messages cost one
//! fsync instead of N. Each caller still learns the outcome of its own row
//! before it answers, at the durability `store.synchronous` chose.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{LogEntry, Store, StoreError};

/// Rows written in one transaction at most.
const MAX_BATCH: usize = 512;
/// Rows waiting at most; beyond it callers wait for room (backpressure).
const QUEUE_DEPTH: usize = 4096;

type Job = (LogEntry, oneshot::Sender<Result<(), String>>);

#[derive(Clone)]
pub struct LogQueue {
    jobs: mpsc::Sender<Job>,
}

impl LogQueue {
    /// Starts the writer thread; it ends when every `LogQueue` is dropped.
    pub fn start(store: Arc<Store>) -> Self {
        let (jobs, mut receiver) = mpsc::channel::<Job>(QUEUE_DEPTH);
        std::thread::Builder::new()
            .name("anonrelay-log".into())
            .spawn(move || {
                let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
                while let Some(first) = receiver.blocking_recv() {
                    batch.push(first);
                    while batch.len() < MAX_BATCH {
                        match receiver.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    let entries: Vec<LogEntry> =
                        batch.iter().map(|(entry, _)| entry.clone()).collect();
                    if store.log_messages(&entries).is_ok() {
                        for (_, done) in batch.drain(..) {
                            let _ = done.send(Ok(()));
                        }
                        continue;
                    }
                    // One bad row must not cost the others theirs: retry singly.
                    for (entry, done) in batch.drain(..) {
                        let _ = done.send(store.log_message(&entry).map_err(|e| e.to_string()));
                    }
                }
            })
            .map(|_| ())
            .unwrap_or_else(
                |err| tracing::error!(error = %err, "cannot start the log writer thread"),
            );
        Self { jobs }
    }

    /// Queues one row and waits until it is committed.
    pub async fn write(&self, entry: LogEntry) -> Result<(), StoreError> {
        let (done, outcome) = oneshot::channel();
        self.jobs
            .send((entry, done))
            .await
            .map_err(|_| StoreError::Task("log writer stopped".into()))?;
        outcome
            .await
            .map_err(|_| StoreError::Task("log writer stopped".into()))?
            .map_err(StoreError::Task)
    }
}
