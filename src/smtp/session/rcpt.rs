//! RCPT TO: who the recipient is (alias, bounce address, operator) and
//! whether this sender may write to it now.

use super::*;

impl Session<'_> {
    pub(super) async fn rcpt(&mut self, line: &[u8]) -> Reply {
        if self.transaction.is_none() {
            return Reply::NEED_MAIL;
        }
        if self
            .limits
            .client_failed_rcpts
            .exhausted(&self.client, Instant::now())
        {
            // Slowed, not shut: a provider's IP shared with one guesser
            // keeps delivering, and every answer, right guess or wrong,
            // waits alike, so waiting tells a guesser nothing.
            tokio::time::sleep(FAILED_RCPT_DELAY).await;
        }
        let reply = self.judge_rcpt(line).await;
        if matches!(reply, Reply::RELAY_DENIED | Reply::NO_SUCH_RECIPIENT) {
            self.limits
                .client_failed_rcpts
                .record(&self.client, Instant::now());
        }
        reply
    }

    /// The common end of an accepted RCPT: the per-alias rate (postmaster@
    /// and abuse@ have one too, so that a flood cannot bury the operator's
    /// inbox), then the transaction's one recipient. The rate is only
    /// looked at here; a message counts once it was accepted at the end of
    /// DATA, so strangers' transactions (refused senders, RSET after RCPT)
    /// cannot use up the partner's allowance.
    pub(super) fn take_recipient(&mut self, recipient: Recipient) -> Reply {
        if self
            .limits
            .alias_messages
            .exhausted(&recipient.rate_key(), Instant::now())
        {
            return Reply::RATE_LIMITED;
        }
        let Some(transaction) = &mut self.transaction else {
            return Reply::NEED_MAIL;
        };
        transaction.recipient = Some(recipient);
        Reply::RECIPIENT_OK
    }

    pub(super) async fn judge_rcpt(&mut self, line: &[u8]) -> Reply {
        let Some(path) = raw_rcpt_path(line) else {
            return Reply::SYNTAX;
        };
        // RFC 5321 4.5.1: `postmaster` without a domain must be taken too.
        let local = if path.eq_ignore_ascii_case("postmaster") {
            "postmaster".to_owned()
        } else {
            match classify_rcpt_path(path, self.services.router.alias_domain()) {
                RcptTarget::RelayDenied => return Reply::RELAY_DENIED,
                RcptTarget::Local(local) => local,
            }
        };
        match Request::parse(&mut line.iter()) {
            Err(err) => return parse_error_reply(&err),
            // We offer no RCPT extension (no DSN: NOTIFY and ORCPT would be
            // promises we do not keep).
            Ok(Request::Rcpt { to }) if to.flags != 0 || to.orcpt.is_some() || to.rrvs != 0 => {
                return Reply::BAD_PARAMETER;
            }
            Ok(_) => {}
        }
        if self
            .transaction
            .as_ref()
            .is_some_and(|t| t.recipient.is_some())
        {
            return Reply::ONE_RECIPIENT;
        }
        let sender = self.transaction.as_ref().and_then(|t| t.sender.as_deref());
        match self.services.router.resolve(&local, sender).await {
            Resolved::Found(recipient) => self.take_recipient(recipient),
            Resolved::Unknown => Reply::NO_SUCH_RECIPIENT,
            Resolved::Unavailable(err) => {
                tracing::error!(error = %err, "alias lookup failed");
                Reply::LOCAL_ERROR
            }
        }
    }
}

/// How long every RCPT waits once its client had too many refused
/// recipients (`smtp.limits.max_failed_rcpts_per_client_per_hour`).
const FAILED_RCPT_DELAY: Duration = Duration::from_secs(5);
