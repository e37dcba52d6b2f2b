//! Mail to a VERP bounce address: a delivery failure report about a
//! message we forwarded becomes one notice to its original sender (the
//! route's partner); repeated hard bounces revoke the conversation.

pub mod report;

use super::tail::{Letter, LetterKind, VERP_VALID_DAYS};
use super::{random_trace_id, Deliverer, Outcome};
use crate::store::{now_unix, Route};
use report::BounceClass;

impl Deliverer {
    /// A message at a VERP address: a DSN becomes one notice to the
    /// original sender; anything else (a success report, an auto-reply sent
    /// to the envelope sender) is dropped. Either way the DSN is answered
    /// 250 only once we are done with it, so a notice the upstream could
    /// not take yet is retried by the reporting MTA.
    pub(super) async fn notify_bounce(&self, route: &Route, raw: &[u8]) -> Outcome {
        let metrics = &self.tail.metrics;
        let Some(mut report) = report::read_report(raw) else {
            metrics.bounce("dropped");
            tracing::debug!(alias = %route.alias, "message to a bounce address is no delivery failure; dropped");
            return Outcome::Delivered;
        };
        let now = now_unix();
        report.subject = self
            .quotable_subject(route, report.subject.take(), now)
            .await;
        let message_id = format!("{}@{}", random_trace_id(), self.alias_domain);
        let Some(notice) = report::compose_notice(&report::Notice {
            from_alias: &route.alias,
            to_alias: &route.partner_alias,
            alias_domain: self.alias_domain.as_str(),
            report: &report,
            message_id: &message_id,
            now,
        }) else {
            metrics.bounce("notice_not_built");
            tracing::error!("bounce notice could not be built");
            return Outcome::LocalError;
        };
        let letter = Letter {
            message: notice,
            to: &route.partner_email,
            kind: LetterKind::Notice,
        };
        if let Err(err) = self.tail.send(letter).await {
            if let super::SendError::Upstream(err) = &err {
                metrics.bounce("notice_not_accepted");
                tracing::warn!(error = %err, "upstream did not accept a bounce notice");
            }
            return err.outcome();
        }
        metrics.bounce(match report.class {
            BounceClass::Permanent => "notified_permanent",
            BounceClass::Temporary => "notified_temporary",
        });
        tracing::debug!(alias = %route.alias, "bounce notice sent");
        if report.class == BounceClass::Permanent {
            self.count_hard_bounce(route).await;
        }
        Outcome::Delivered
    }

    /// The subject a bounce notice may quote: only one the relay itself
    /// forwarded on this alias while its bounce addresses are valid. The
    /// VERP address is in every forwarded message's Return-Path, so anyone
    /// who saw one can send a DSN-shaped message there; quoting its subject
    /// would put words of theirs in the partner's real inbox.
    async fn quotable_subject(
        &self,
        route: &Route,
        claimed: Option<String>,
        now: i64,
    ) -> Option<String> {
        let claimed = claimed.filter(|subject| !subject.is_empty())?;
        let since = now - (VERP_VALID_DAYS * 86_400) as i64;
        // A store error withholds the subject: the safe side.
        let quotable = self
            .tail
            .store
            .logged_subject_on_alias(
                &route.alias,
                since,
                &claimed,
                report::MAX_QUOTED_SUBJECT_CHARS,
            )
            .await
            .unwrap_or(false);
        if !quotable {
            self.tail.metrics.bounce("subject_withheld");
        }
        quotable.then_some(claimed)
    }

    /// Revokes the conversation once its alias owner's mailbox has bounced
    /// `disable_after_hard_bounces` messages within a week: the partner
    /// then gets `550 5.1.1` at once instead of writing into a void.
    async fn count_hard_bounce(&self, route: &Route) {
        if self.policy.disable_after_hard_bounces == 0 {
            return;
        }
        let now = std::time::Instant::now();
        self.hard_bounces.record(&route.alias, now);
        if !self.hard_bounces.exhausted(&route.alias, now) {
            return;
        }
        let revoked = self
            .tail
            .store
            .revoke_conversation(&route.conversation_id, now_unix())
            .await;
        match revoked {
            Ok(_) => {
                self.tail.metrics.bounce("conversation_disabled");
                tracing::warn!("a conversation was revoked after repeated hard bounces");
                tracing::debug!(alias = %route.alias, "revoked after repeated hard bounces");
            }
            Err(err) => {
                tracing::error!(error = %err, "could not revoke a bouncing conversation")
            }
        }
    }
}
