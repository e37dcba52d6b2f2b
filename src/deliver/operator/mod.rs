//! Mail to postmaster@ and abuse@ the alias domain: attached unchanged to
//! a message to the operator (`smtp.postmaster`).

pub mod wrap;

use super::cpu::cpu_heavy;
use super::tail::{Letter, LetterKind};
use super::{loop_guard, random_trace_id, Deliverer, Outcome};
use crate::rewrite;
use crate::store::now_unix;

impl Deliverer {
    /// Mail to the operator (`sent_to` is `postmaster` or `abuse`): attached
    /// unchanged to a message from postmaster@ALIAS_DOMAIN, sent with the
    /// null reverse path so that no bounce of it can come back and loop.
    /// No log row: it is no message between users.
    pub(super) async fn forward_to_operator(
        &self,
        sent_to: &str,
        raw: &[u8],
        max_header_bytes: usize,
    ) -> Outcome {
        let Some(operator) = self.operator.as_deref() else {
            return Outcome::NoSuchRecipient;
        };
        let inspected = match rewrite::inspect_limited(raw, max_header_bytes) {
            Ok(inspected) => inspected,
            Err(err) => {
                tracing::debug!(reason = %err, "message to postmaster refused");
                return Outcome::Refused(err);
            }
        };
        if let Some(sign) =
            loop_guard::detect(inspected.values_of("Received"), self.hostname.as_str())
        {
            tracing::debug!(reason = %sign, "message to postmaster refused: mail loop");
            return Outcome::RoutingLoop;
        }
        let message_id = format!("{}@{}", random_trace_id(), self.alias_domain);
        let wrapped = cpu_heavy(|| {
            wrap::wrap(
                &wrap::Wrapper {
                    alias_domain: self.alias_domain.as_str(),
                    operator,
                    sent_to,
                    subject: Some(inspected.subject.as_str()),
                    message_id: &message_id,
                    now: now_unix(),
                },
                raw,
            )
        });
        let Some(wrapped) = wrapped else {
            tracing::error!("message to postmaster could not be wrapped");
            return Outcome::LocalError;
        };
        let letter = Letter {
            message: wrapped,
            to: operator,
            kind: LetterKind::Notice,
        };
        if let Err(err) = self.tail.send(letter).await {
            if let super::SendError::Upstream(err) = &err {
                tracing::warn!(to = %sent_to, error = %err, "upstream did not accept a message to the operator");
            }
            return err.outcome();
        }
        self.tail.metrics.postmaster.inc();
        tracing::debug!(to = %sent_to, "message to the operator forwarded");
        Outcome::Delivered
    }
}
