//! Mail to a conversation alias: checked, rebuilt, forwarded to the alias's
//! owner and logged.

use super::cpu::cpu_heavy;
use super::tail::{Letter, LetterKind};
use super::{loop_guard, random_trace_id, AutoReplies, Deliverer, Outcome};
use crate::rewrite;
use crate::route::verify::{self, Verdict};
use crate::route::Accepted;
use crate::store::{now_unix, LogEntry, Route};

impl Deliverer {
    /// Checks, rewrites, delivers and logs one message. The outcome is the
    /// final answer to DATA: delivered only after the upstream accepted.
    pub(super) async fn forward(
        &self,
        accepted: &Accepted,
        client: &verify::Client<'_>,
        raw: &[u8],
        max_header_bytes: usize,
    ) -> Outcome {
        let route = &accepted.route;
        let inspected = match rewrite::inspect_limited(raw, max_header_bytes) {
            Ok(inspected) => inspected,
            Err(err) => {
                tracing::debug!(alias = %route.alias, reason = %err, "message refused");
                return Outcome::Refused(err);
            }
        };
        // Before the sender check: an auto-forwarding partner inbox sends
        // loops with a matching sender.
        let received = inspected.values_of("Received");
        if let Some(sign) = loop_guard::detect(received, self.hostname.as_str()) {
            tracing::debug!(alias = %route.alias, reason = %sign, "message refused: mail loop");
            return Outcome::RoutingLoop;
        }
        let claim = verify::Claim {
            envelope_is_partner: accepted.envelope_sender_matches,
            from_is_partner: inspected
                .from_address
                .as_deref()
                .is_some_and(|from| from == route.partner_email),
        };
        match self.gate.admit(route, client, claim, raw).await {
            Verdict::Accept => {}
            Verdict::Refuse(_) => return Outcome::SenderRefused,
            Verdict::TryLater(_) => return Outcome::DnsTemporary,
        }
        if self.policy.auto_replies == AutoReplies::Drop && is_auto_reply(&inspected) {
            // Accepted and dropped: refusing would make the partner's server
            // bounce an auto-reply, which helps nobody.
            self.tail.metrics.rejected("auto_reply_dropped");
            tracing::debug!(alias = %route.alias, "auto-reply dropped by policy");
            return Outcome::Delivered;
        }
        self.rebuild_and_send(&inspected, route, client).await
    }

    /// The message rebuilt for the alias's owner (`rewrite`), its row and
    /// the one tail.
    async fn rebuild_and_send(
        &self,
        inspected: &rewrite::Inspected<'_>,
        route: &Route,
        client: &verify::Client<'_>,
    ) -> Outcome {
        let now = now_unix();
        let trace_id = random_trace_id();
        let context = rewrite::Context {
            alias_domain: self.alias_domain.as_str(),
            hostname: self.hostname.as_str(),
            conversation_id: &route.conversation_id,
            from_alias: &route.partner_alias,
            sender_address: &route.partner_email,
            from_display_name: route.partner_display_name.as_deref(),
            to_alias: &route.alias,
            cipher: &self.cipher,
            now,
            trace_id: &trace_id,
            client_ip: Some(client.ip),
            client_host: Some(client.helo).filter(|helo| !helo.is_empty()),
            remote_content: self.policy.remote_content,
        };
        // The body guard may decode, search and re-encode megabytes.
        let rewritten = match cpu_heavy(|| rewrite::rewrite(inspected, &context)) {
            Ok(rewritten) => rewritten,
            Err(err) => {
                tracing::debug!(alias = %route.alias, reason = %err, "message refused");
                return Outcome::Refused(err);
            }
        };
        let row = LogEntry {
            sent_at: now,
            sender_id: Some(route.partner_id.clone()),
            recipient_id: Some(route.owner_id.clone()),
            alias: route.alias.clone(),
            // What the recipient got: the log holds nothing the forwarded
            // copy did not (promise 1 holds in exports and disclosures too).
            subject: rewritten.subject,
        };
        let letter = Letter {
            message: rewritten.message,
            to: &route.owner_email,
            kind: LetterKind::BetweenUsers {
                recipient_alias: &route.alias,
                row,
            },
        };
        if let Err(err) = self.tail.send(letter).await {
            if let super::SendError::Upstream(err) = &err {
                tracing::warn!(error = %err, "upstream did not accept a forwarded message");
            }
            return err.outcome();
        }
        tracing::debug!(alias = %route.alias, "message forwarded");
        Outcome::Delivered
    }
}

/// RFC 3834's Auto-Submitted (anything but "no"), and the headers common
/// responders set without it.
fn is_auto_reply(message: &rewrite::Inspected<'_>) -> bool {
    let auto_submitted = message.values_of("Auto-Submitted").any(|value| {
        let value = String::from_utf8_lossy(value);
        let token = value.split(';').next().unwrap_or_default().trim();
        !token.is_empty() && !token.eq_ignore_ascii_case("no")
    });
    auto_submitted
        || message.values_of("X-Autoreply").next().is_some()
        || message.values_of("X-Autorespond").next().is_some()
        || message.values_of("Precedence").any(|value| {
            String::from_utf8_lossy(value)
                .trim()
                .eq_ignore_ascii_case("auto_reply")
        })
}
