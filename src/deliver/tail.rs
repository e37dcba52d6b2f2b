//! The one tail every outgoing message takes: DKIM signature, envelope,
//! metadata row, upstream. Forwarded mail, composed mail, bounce notices
//! and operator mail all leave through [`Tail::send`].

use std::sync::Arc;

use super::dkim::Signer;
use super::outcome::Outcome;
use crate::core::address::Domain;
use crate::core::tokens::VerpSigner;
use crate::metrics::Metrics;
use crate::store::{LogEntry, Store, StoreError};
use crate::upstream::{DeliveryError, Envelope, Upstream};

/// Days a VERP bounce address stays valid (DSNs can come days later).
pub const VERP_VALID_DAYS: u64 = 14;

pub struct Tail {
    pub(super) store: Arc<dyn Store>,
    pub(super) upstream: Arc<Upstream>,
    pub(super) metrics: Arc<Metrics>,
    /// Signs everything handed to the upstream; None: mail goes unsigned.
    dkim: Option<Arc<Signer>>,
    verp: VerpSigner,
    alias_domain: Domain,
}

/// A finished message and where it goes.
pub struct Letter<'a> {
    pub message: Vec<u8>,
    /// The recipient's real address.
    pub to: &'a str,
    pub kind: LetterKind<'a>,
}

pub enum LetterKind<'a> {
    /// A message between two users (forwarded or composed): the envelope
    /// sender is a VERP address naming `recipient_alias` (the alias that
    /// represents the recipient; a bounce notice will come from it), and
    /// the metadata row is committed before the upstream is asked.
    BetweenUsers {
        recipient_alias: &'a str,
        row: LogEntry,
    },
    /// A bounce notice or operator mail: the null reverse path, so that no
    /// bounce of it can come back and loop (RFC 5321 4.5.5), and no row:
    /// it is no message between users.
    Notice,
}

/// Why a letter was not sent. Nothing was sent in any of these cases.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("DKIM signing failed")]
    Signing,
    /// Its metadata row could not be reserved.
    #[error("store: {0}")]
    Store(StoreError),
    #[error("upstream: {0}")]
    Upstream(DeliveryError),
}

impl SendError {
    /// What the sender of the original message is told: an upstream's
    /// temporary failure is retried, a permanent one bounces, our own
    /// faults are temporary.
    pub fn outcome(&self) -> Outcome {
        match self {
            SendError::Signing | SendError::Store(_) => Outcome::LocalError,
            SendError::Upstream(DeliveryError::Temporary(_)) => Outcome::UpstreamTemporary,
            SendError::Upstream(DeliveryError::Permanent(_)) => Outcome::UpstreamPermanent,
        }
    }
}

impl Tail {
    pub fn new(
        store: Arc<dyn Store>,
        upstream: Arc<Upstream>,
        metrics: Arc<Metrics>,
        verp: VerpSigner,
        alias_domain: Domain,
    ) -> Self {
        Self {
            store,
            upstream,
            metrics,
            dkim: None,
            verp,
            alias_domain,
        }
    }

    pub fn set_dkim(&mut self, signer: Option<Signer>) {
        self.dkim = signer.map(Arc::new);
    }

    /// Signs and hands the letter to the upstream. A message between users
    /// has its row committed first and removed if the upstream refuses: no
    /// message leaves without its row, and a store that cannot take the
    /// row within [`crate::store::ROW_WAIT`] fails the delivery before
    /// anything is sent.
    pub async fn send(&self, letter: Letter<'_>) -> Result<(), SendError> {
        let message = self.sign(letter.message).await?;
        let (mail_from, row) = match letter.kind {
            LetterKind::Notice => (String::new(), None),
            LetterKind::BetweenUsers {
                recipient_alias,
                row,
            } => (self.bounce_address(recipient_alias, row.sent_at), Some(row)),
        };
        let reserved = match row {
            Some(row) => Some(self.store.reserve_log_row(row).await.map_err(|err| {
                self.metrics.store_failure("reserve_row");
                tracing::error!(error = %err, "metadata row not written: message not forwarded");
                SendError::Store(err)
            })?),
            None => None,
        };
        let envelope = Envelope {
            mail_from: &mail_from,
            rcpt_to: letter.to,
        };
        let Err(err) = self.upstream.deliver(&envelope, &message).await else {
            if reserved.is_some() {
                self.metrics.forwarded.inc();
            }
            return Ok(());
        };
        if let Some(row) = reserved {
            self.metrics.upstream_failure(match err {
                DeliveryError::Temporary(_) => "temporary",
                DeliveryError::Permanent(_) => "permanent",
            });
            if let Err(store_err) = self.store.release_log_row(row).await {
                // The safe side: a row for a message that was not sent.
                self.metrics.store_failure("release_row");
                tracing::error!(error = %store_err, "metadata row of a message not forwarded was not removed");
            }
        }
        Err(SendError::Upstream(err))
    }

    fn bounce_address(&self, recipient_alias: &str, sent_at: i64) -> String {
        let local = self
            .verp
            .local_part(recipient_alias, sent_at.max(0) as u64, VERP_VALID_DAYS);
        format!("{local}@{}", self.alias_domain)
    }

    /// Adds the DKIM signature when `[dkim]` is configured. Hashing a large
    /// body and an RSA signature are CPU work, done off the async threads.
    async fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, SendError> {
        let Some(signer) = &self.dkim else {
            return Ok(message);
        };
        let signer = Arc::clone(signer);
        let signed = tokio::task::spawn_blocking(move || signer.sign(message)).await;
        let failure = match signed {
            Ok(Ok(signed)) => return Ok(signed),
            Ok(Err(err)) => err.to_string(),
            Err(err) => err.to_string(),
        };
        self.metrics.dkim_failures.inc();
        tracing::error!(error = %failure, "DKIM signing failed; message not sent");
        Err(SendError::Signing)
    }
}
