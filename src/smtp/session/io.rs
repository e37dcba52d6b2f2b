//! The session's side of the socket: how long a read may wait, buffers
//! sized for the phase, and writes that a client which stops reading
//! cannot hold forever.

use std::time::{Duration, Instant};

use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{Phase, Session, SessionEnd, COMMAND_READ_CHUNK, DATA_READ_CHUNK};
use crate::smtp::reply::Reply;

impl Session<'_> {
    /// How long the next read may wait: per chunk of a message, per
    /// command, or idle between transactions, and never past the session's
    /// end.
    pub(super) fn read_timeout(&self, started: Instant) -> Duration {
        let timeout = if let Phase::Data(reader) = &self.phase {
            // Each chunk within data_timeout, the whole message within
            // max_data_secs: a trickle cannot hold its buffer for the
            // session's 30 minutes.
            self.settings.data_timeout.min(
                self.settings
                    .max_data_time
                    .saturating_sub(reader.started().elapsed()),
            )
        } else if self.transaction.is_none() {
            self.settings
                .idle_timeout
                .min(self.settings.command_timeout)
        } else {
            self.settings.command_timeout
        };
        let remaining = self
            .settings
            .session_timeout
            .saturating_sub(started.elapsed());
        timeout.min(remaining)
    }
}

/// The read chunk sized for the phase, and a drained input buffer that grew
/// for a message given back: most connections sit idle between commands.
pub(super) fn fit_buffers(receiving_data: bool, chunk: &mut Vec<u8>, input: &mut Vec<u8>) {
    let wanted = if receiving_data {
        DATA_READ_CHUNK
    } else {
        COMMAND_READ_CHUNK
    };
    if chunk.len() != wanted {
        *chunk = vec![0u8; wanted];
    }
    if input.is_empty() && input.capacity() > DATA_READ_CHUNK {
        *input = Vec::new();
    }
}

/// Sends a last 421 and ends the session; the client may already be gone.
pub(super) async fn closing<S: AsyncWrite + Unpin>(
    stream: &mut S,
    reply: Reply,
) -> std::io::Result<SessionEnd> {
    let mut out = Vec::new();
    reply.write_to(&mut out);
    // A courtesy to a client that may not be reading: brief, and ignored.
    let _ = write_within(stream, &out, CLOSING_WRITE_LIMIT).await;
    Ok(SessionEnd::Closed)
}

/// A reply's write is never bounded below this (see `run`).
pub(super) const MIN_REPLY_WRITE: Duration = Duration::from_secs(30);

/// How long a parting reply (timeout, shutdown) may take to be written.
const CLOSING_WRITE_LIMIT: Duration = Duration::from_secs(5);

/// Writes and flushes `bytes`, or fails with `TimedOut` after `limit`.
pub(super) async fn write_within<S: AsyncWrite + Unpin>(
    stream: &mut S,
    bytes: &[u8],
    limit: Duration,
) -> std::io::Result<()> {
    let write = async {
        stream.write_all(bytes).await?;
        stream.flush().await
    };
    match tokio::time::timeout(limit, write).await {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the client stopped reading",
        )),
    }
}
