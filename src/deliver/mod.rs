//! What becomes of a message once its recipient is known: forwarded to an
//! alias's owner (`forward`), turned into a bounce notice (`bounce`),
//! attached for the operator (`operator`) or composed for the front-end
//! (`composed`). Each ends in the one tail (`tail`: sign → upstream → log)
//! and returns an [`Outcome`] that smtp/ and hook/ map to their replies.

pub mod bounce;
pub mod composed;
mod cpu;
pub mod dkim;
mod forward;
pub mod loop_guard;
pub mod operator;
mod outcome;
pub mod tail;

use std::sync::Arc;

pub use crate::config::privacy::{AutoReplies, RelayPolicy};
use crate::core::address::Domain;
use crate::core::tokens::{base32, MessageIdCipher, ServerSecret};
use crate::core::window::WindowCounter;
use crate::metrics::Metrics;
use crate::route::admit::Gate;
use crate::route::verify::{self, Verifier};
use crate::route::{Recipient, RecipientKind};
use crate::store::Store;
use crate::upstream::Upstream;
use dkim::Signer;
pub use outcome::Outcome;
pub use tail::SendError;
use tail::Tail;

const HARD_BOUNCE_WINDOW: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

pub struct Deliverer {
    tail: Tail,
    alias_domain: Domain,
    hostname: Domain,
    cipher: MessageIdCipher,
    policy: RelayPolicy,
    /// Permanent bounces per alias over the last week (memory only).
    hard_bounces: WindowCounter<String>,
    gate: Gate,
    /// `smtp.postmaster`: where mail to postmaster@/abuse@ goes.
    operator: Option<String>,
}

impl Deliverer {
    pub fn new(
        store: Arc<dyn Store>,
        upstream: Arc<Upstream>,
        metrics: Arc<Metrics>,
        secret: &ServerSecret,
        alias_domain: Domain,
        hostname: Domain,
    ) -> Self {
        Self {
            gate: Gate::new(None, Arc::clone(&metrics)),
            tail: Tail::new(
                store,
                upstream,
                metrics,
                secret.verp_signer(),
                alias_domain.clone(),
            ),
            alias_domain,
            hostname,
            cipher: secret.message_id_cipher(),
            policy: RelayPolicy::default(),
            hard_bounces: WindowCounter::new(HARD_BOUNCE_WINDOW, u32::MAX),
            operator: None,
        }
    }

    /// Sends mail to postmaster@ and abuse@ the alias domain to the operator.
    pub fn with_operator(mut self, operator: Option<String>) -> Self {
        self.operator = operator;
        self
    }

    pub fn with_policy(mut self, policy: RelayPolicy) -> Self {
        self.hard_bounces =
            WindowCounter::new(HARD_BOUNCE_WINDOW, policy.disable_after_hard_bounces.max(1));
        self.policy = policy;
        self
    }

    /// Signs every outgoing message with this key (`[dkim]`).
    pub fn with_dkim(mut self, signer: Option<Signer>) -> Self {
        self.tail.set_dkim(signer);
        self
    }

    /// Authenticates mail to an alias (`[verify]`).
    pub fn with_verifier(mut self, verifier: Option<Verifier>) -> Self {
        self.gate = Gate::new(verifier, Arc::clone(&self.tail.metrics));
        self
    }

    /// Hands one accepted message on to its recipient. The outcome is the
    /// final answer to DATA: delivered only after the upstream accepted.
    pub async fn deliver(
        &self,
        recipient: &Recipient,
        client: &verify::Client<'_>,
        raw: &[u8],
        max_header_bytes: usize,
    ) -> Outcome {
        match recipient {
            Recipient::Conversation(accepted) if accepted.kind == RecipientKind::Bounce => {
                self.notify_bounce(&accepted.route, raw).await
            }
            Recipient::Conversation(accepted) => {
                self.forward(accepted, client, raw, max_header_bytes).await
            }
            Recipient::Operator(sent_to) => {
                self.forward_to_operator(sent_to, raw, max_header_bytes)
                    .await
            }
        }
    }
}

fn random_trace_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 10];
    rand::rng().fill_bytes(&mut bytes);
    base32().encode(&bytes)
}
