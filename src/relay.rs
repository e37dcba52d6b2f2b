//! The relay's decisions, independent of the SMTP socket: who may write to
//! an alias, and how an accepted message is rewritten, handed to the
//! upstream and logged.

use std::sync::Arc;

use crate::bounce;
pub use crate::config::privacy::{AutoReplies, RelayPolicy};
use crate::core::address::Domain;
use crate::core::tokens::{base32, MessageIdCipher, ServerSecret, VerpSigner};
use crate::core::window::WindowCounter;
use crate::dkim::Signer;
use crate::loop_guard;
use crate::metrics::Metrics;
use crate::postmaster;
use crate::rewrite::{self, RewriteError};
use crate::store::{now_unix, LogEntry, Route, Store, StoreError};
use crate::upstream::{DeliveryError, Envelope, Upstream};
use crate::verify::{self, Verdict, Verifier};

/// Why a message was not forwarded.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("upstream: {0}")]
    Upstream(#[from] DeliveryError),
    /// Its metadata row could not be reserved: nothing was sent.
    #[error("store: {0}")]
    Store(StoreError),
}

/// Days a VERP bounce address stays valid (DSNs can come days later).
const VERP_VALID_DAYS: u64 = 14;

pub struct Relay {
    pub store: Arc<dyn Store>,
    pub upstream: Arc<Upstream>,
    pub metrics: Arc<Metrics>,
    pub alias_domain: Domain,
    pub hostname: Domain,
    cipher: MessageIdCipher,
    verp: VerpSigner,
    /// Signs everything handed to the upstream; None: mail goes unsigned.
    dkim: Option<Arc<Signer>>,
    policy: RelayPolicy,
    /// Permanent bounces per alias over the last week (memory only).
    hard_bounces: WindowCounter<String>,
    /// Checks SPF/DKIM/DMARC of mail to an alias; None: `[verify] mode = "off"`.
    verifier: Option<Verifier>,
    /// `smtp.postmaster`: where mail to postmaster@/abuse@ goes; None: refused.
    postmaster: Option<String>,
}

const HARD_BOUNCE_WINDOW: std::time::Duration = std::time::Duration::from_secs(7 * 86_400);

/// What became of a message handed to the relay. The SMTP session maps it
/// to its reply (`smtp/reply.rs`); the relay decides no reply text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Forwarded (or, by policy, accepted and dropped).
    Delivered,
    /// The recipient exists no more (a conversation revoked meanwhile).
    NoSuchRecipient,
    /// The message has passed through us before.
    RoutingLoop,
    /// Our own fault: the store could not take the row, a notice could not
    /// be built or signed. Nothing was forwarded.
    LocalError,
    /// The sender is not the partner (one outcome for every reason).
    SenderRefused,
    /// The sender's checks could not finish (DNS).
    DnsTemporary,
    UpstreamTemporary,
    UpstreamPermanent,
    /// The message cannot be forwarded as it is.
    Refused(RewriteError),
}

/// A recipient accepted at RCPT time.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub route: Route,
    /// The envelope sender already is the partner's registered address.
    pub envelope_sender_matches: bool,
    pub kind: RecipientKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientKind {
    /// A conversation alias: the message is forwarded to its owner.
    Alias,
    /// A VERP bounce address of a message we forwarded to the route's
    /// owner: a DSN here becomes a notice to the route's partner.
    Bounce,
}

impl Relay {
    pub fn new(
        store: Arc<dyn Store>,
        upstream: Arc<Upstream>,
        metrics: Arc<Metrics>,
        secret: &ServerSecret,
        alias_domain: Domain,
        hostname: Domain,
    ) -> Self {
        Self {
            upstream,
            metrics,
            alias_domain,
            hostname,
            cipher: secret.message_id_cipher(),
            verp: secret.verp_signer(),
            store,
            dkim: None,
            policy: RelayPolicy::default(),
            hard_bounces: WindowCounter::new(HARD_BOUNCE_WINDOW, u32::MAX),
            verifier: None,
            postmaster: None,
        }
    }

    /// Sends mail to postmaster@ and abuse@ the alias domain to the operator.
    pub fn with_postmaster(mut self, operator: Option<String>) -> Self {
        self.postmaster = operator;
        self
    }

    /// Whether mail to postmaster@ and abuse@ is taken (`smtp.postmaster`).
    pub fn accepts_postmaster_mail(&self) -> bool {
        self.postmaster.is_some()
    }

    /// Mail to the operator (`sent_to` is `postmaster` or `abuse`): attached
    /// unchanged to a message from postmaster@ALIAS_DOMAIN, sent with the
    /// null reverse path so that no bounce of it can come back and loop.
    /// No log row: it is no message between users.
    pub async fn forward_to_postmaster(
        &self,
        sent_to: &str,
        raw: &[u8],
        max_header_bytes: usize,
    ) -> Outcome {
        let Some(operator) = self.postmaster.as_deref() else {
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
            postmaster::wrap(
                &postmaster::Wrapper {
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
        let Ok(wrapped) = self.sign(wrapped).await else {
            return Outcome::LocalError;
        };
        let envelope = Envelope {
            mail_from: "",
            rcpt_to: operator,
        };
        match self.upstream.deliver(&envelope, &wrapped).await {
            Ok(()) => {
                self.metrics.postmaster.inc();
                tracing::debug!(to = %sent_to, "message to the operator forwarded");
                Outcome::Delivered
            }
            Err(err) => {
                tracing::warn!(to = %sent_to, error = %err, "upstream did not accept a message to the operator");
                upstream_refusal(&err)
            }
        }
    }

    pub fn with_policy(mut self, policy: RelayPolicy) -> Self {
        self.hard_bounces =
            WindowCounter::new(HARD_BOUNCE_WINDOW, policy.disable_after_hard_bounces.max(1));
        self.policy = policy;
        self
    }

    /// Signs every outgoing message with this key (`[dkim]`).
    pub fn with_dkim(mut self, signer: Option<Signer>) -> Self {
        self.dkim = signer.map(Arc::new);
        self
    }

    /// Authenticates mail to an alias (`[verify]`).
    pub fn with_verifier(mut self, verifier: Option<Verifier>) -> Self {
        self.verifier = verifier;
        self
    }

    pub async fn route(&self, alias: &str) -> Result<Option<Route>, StoreError> {
        self.store.route(alias).await
    }

    pub fn accept(&self, route: Route, envelope_sender: Option<&str>) -> Accepted {
        let envelope_sender_matches = envelope_sender.is_some_and(|s| s == route.partner_email);
        Accepted {
            route,
            envelope_sender_matches,
            kind: RecipientKind::Alias,
        }
    }

    /// The live route a VERP bounce address (local part) refers to; None
    /// for a forged or expired token or a revoked alias.
    pub async fn bounce_route(&self, local_part: &str) -> Result<Option<Route>, StoreError> {
        let Some(alias) = self.verp.verify(local_part, now_unix().max(0) as u64) else {
            return Ok(None);
        };
        self.route(&alias).await
    }

    pub fn accept_bounce(&self, route: Route) -> Accepted {
        Accepted {
            route,
            envelope_sender_matches: false,
            kind: RecipientKind::Bounce,
        }
    }

    /// Checks, rewrites, delivers and logs one message. The returned reply
    /// is the final answer to DATA: 250 only after the upstream accepted.
    pub async fn forward(
        &self,
        accepted: &Accepted,
        client: &verify::Client<'_>,
        raw: &[u8],
        max_header_bytes: usize,
    ) -> Outcome {
        let route = &accepted.route;
        if accepted.kind == RecipientKind::Bounce {
            return self.notify_bounce(route, raw).await;
        }
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
        if let Some(reply) = self.admit_sender(route, client, claim, raw).await {
            return reply;
        }
        if self.policy.auto_replies == AutoReplies::Drop && is_auto_reply(&inspected) {
            // Accepted and dropped: refusing would make the partner's server
            // bounce an auto-reply, which helps nobody.
            self.metrics.rejected("auto_reply_dropped");
            tracing::debug!(alias = %route.alias, "auto-reply dropped by policy");
            return Outcome::Delivered;
        }
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
        let rewritten = cpu_heavy(|| rewrite::rewrite(&inspected, &context));
        let rewrite::Rewritten {
            message: forwarded,
            subject,
        } = match rewritten {
            Ok(rewritten) => rewritten,
            Err(err) => {
                tracing::debug!(alias = %route.alias, reason = %err, "message refused");
                return Outcome::Refused(err);
            }
        };
        let entry = LogEntry {
            sent_at: now,
            sender_id: Some(route.partner_id.clone()),
            recipient_id: Some(route.owner_id.clone()),
            alias: route.alias.clone(),
            // What the recipient got: the log holds nothing the forwarded
            // copy did not (promise 1 holds in exports and disclosures too).
            subject,
        };
        match self
            .deliver_and_log(&route.alias, &route.owner_email, forwarded, entry)
            .await
        {
            Ok(()) => {}
            Err(ForwardError::Upstream(err)) => {
                tracing::warn!(error = %err, "upstream did not accept a forwarded message");
                return upstream_refusal(&err);
            }
            Err(ForwardError::Store(_)) => return Outcome::LocalError,
        }
        tracing::debug!(alias = %route.alias, "message forwarded");
        Outcome::Delivered
    }
}

impl Relay {
    /// Whether the message comes from the partner: their address, and with
    /// `[verify] mode = "enforce"` SPF/DKIM/DMARC, which then run for every
    /// sender whatever address they claim. None when the message may go
    /// on. Everyone else gets one reply at this one point after the same
    /// DNS work, so a guess of the partner's address, right or wrong, learns
    /// nothing; only /metrics (which the sender cannot see) tells the
    /// reasons apart. The log names the check, at debug level only.
    async fn admit_sender(
        &self,
        route: &Route,
        client: &verify::Client<'_>,
        claim: verify::Claim,
        raw: &[u8],
    ) -> Option<Outcome> {
        let verdict = match &self.verifier {
            Some(verifier) => {
                verifier
                    .check(client, claim, &route.partner_email, raw)
                    .await
            }
            None => verify::decide_unverified(&claim),
        };
        match verdict {
            Verdict::Accept => None,
            Verdict::Refuse(check) => {
                self.metrics.sender_refused(check);
                tracing::debug!(alias = %route.alias, check, "message refused: sender not accepted");
                Some(Outcome::SenderRefused)
            }
            Verdict::TryLater(check) => {
                tracing::debug!(alias = %route.alias, check, "message deferred: sender authentication incomplete");
                Some(Outcome::DnsTemporary)
            }
        }
    }

    /// Hands a finished message to the upstream with a VERP envelope sender
    /// naming `recipient_alias` (the alias that represents the recipient;
    /// a bounce notice will come from it), its metadata row reserved first.
    /// Shared by forwarded SMTP mail and messages composed through the hook,
    /// so this is also the one place where outgoing mail is DKIM-signed.
    ///
    /// The row is committed before the upstream is asked and removed if the
    /// upstream refuses: no message leaves without its row. A store that
    /// cannot take the row within [`crate::store::ROW_WAIT`] fails the delivery before
    /// anything is sent.
    pub async fn deliver_and_log(
        &self,
        recipient_alias: &str,
        recipient_email: &str,
        message: Vec<u8>,
        entry: LogEntry,
    ) -> Result<(), ForwardError> {
        let message = self.sign(message).await?;
        let bounce_address = format!(
            "{}@{}",
            self.verp.local_part(
                recipient_alias,
                entry.sent_at.max(0) as u64,
                VERP_VALID_DAYS
            ),
            self.alias_domain
        );
        let row = self.store.reserve_log_row(entry).await.map_err(|err| {
            self.metrics.store_failure("reserve_row");
            tracing::error!(error = %err, "metadata row not written: message not forwarded");
            ForwardError::Store(err)
        })?;
        let envelope = Envelope {
            mail_from: &bounce_address,
            rcpt_to: recipient_email,
        };
        if let Err(err) = self.upstream.deliver(&envelope, &message).await {
            self.metrics.upstream_failure(match err {
                DeliveryError::Temporary(_) => "temporary",
                DeliveryError::Permanent(_) => "permanent",
            });
            if let Err(store_err) = self.store.release_log_row(row).await {
                // The safe side: a row for a message that was not sent.
                self.metrics.store_failure("release_row");
                tracing::error!(error = %store_err, "metadata row of a message not forwarded was not removed");
            }
            return Err(ForwardError::Upstream(err));
        }
        self.metrics.forwarded.inc();
        Ok(())
    }

    /// A message at a VERP address: a DSN becomes one notice to the
    /// original sender (the route's partner); anything else (a success
    /// report, an auto-reply sent to the envelope sender) is dropped.
    /// Either way the DSN is answered 250 only once we are done with it,
    /// so a notice the upstream could not take yet is retried by the
    /// reporting MTA.
    async fn notify_bounce(&self, route: &Route, raw: &[u8]) -> Outcome {
        let Some(report) = bounce::read_report(raw) else {
            self.metrics.bounce("dropped");
            tracing::debug!(alias = %route.alias, "message to a bounce address is no delivery failure; dropped");
            return Outcome::Delivered;
        };
        let now = now_unix();
        let mut report = report;
        report.subject = self
            .quotable_subject(route, report.subject.take(), now)
            .await;
        let message_id = format!("{}@{}", random_trace_id(), self.alias_domain);
        let Some(notice) = bounce::compose_notice(&bounce::Notice {
            from_alias: &route.alias,
            to_alias: &route.partner_alias,
            alias_domain: self.alias_domain.as_str(),
            report: &report,
            message_id: &message_id,
            now,
        }) else {
            self.metrics.bounce("notice_not_built");
            tracing::error!("bounce notice could not be built");
            return Outcome::LocalError;
        };
        let Ok(notice) = self.sign(notice).await else {
            return Outcome::LocalError;
        };
        // The null reverse path: a notice about a failure must never cause
        // another one (RFC 5321 4.5.5), so a bounce of it goes nowhere.
        let envelope = Envelope {
            mail_from: "",
            rcpt_to: &route.partner_email,
        };
        match self.upstream.deliver(&envelope, &notice).await {
            Ok(()) => {
                self.metrics.bounce(match report.class {
                    bounce::BounceClass::Permanent => "notified_permanent",
                    bounce::BounceClass::Temporary => "notified_temporary",
                });
                tracing::debug!(alias = %route.alias, "bounce notice sent");
                if report.class == bounce::BounceClass::Permanent {
                    self.count_hard_bounce(route).await;
                }
                Outcome::Delivered
            }
            Err(err) => {
                self.metrics.bounce("notice_not_accepted");
                tracing::warn!(error = %err, "upstream did not accept a bounce notice");
                upstream_refusal(&err)
            }
        }
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
            .store
            .logged_subject_on_alias(
                &route.alias,
                since,
                &claimed,
                bounce::MAX_QUOTED_SUBJECT_CHARS,
            )
            .await
            .unwrap_or(false);
        if !quotable {
            self.metrics.bounce("subject_withheld");
        }
        quotable.then_some(claimed)
    }

    /// Adds the DKIM signature when `[dkim]` is configured. Hashing a large
    /// body and an RSA signature are CPU work, done off the async threads.
    async fn sign(&self, message: Vec<u8>) -> Result<Vec<u8>, DeliveryError> {
        let Some(signer) = &self.dkim else {
            return Ok(message);
        };
        let signer = Arc::clone(signer);
        let signed = tokio::task::spawn_blocking(move || signer.sign(message)).await;
        match signed {
            Ok(Ok(signed)) => Ok(signed),
            Ok(Err(err)) => {
                self.metrics.dkim_failures.inc();
                tracing::error!(error = %err, "DKIM signing failed; message not sent");
                Err(DeliveryError::Temporary("DKIM signing failed".into()))
            }
            Err(err) => {
                self.metrics.dkim_failures.inc();
                tracing::error!(error = %err, "DKIM signing task failed; message not sent");
                Err(DeliveryError::Temporary("DKIM signing failed".into()))
            }
        }
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
            .store
            .revoke_conversation(&route.conversation_id, now_unix())
            .await;
        match revoked {
            Ok(_) => {
                self.metrics.bounce("conversation_disabled");
                tracing::warn!("a conversation was revoked after repeated hard bounces");
                tracing::debug!(alias = %route.alias, "revoked after repeated hard bounces");
            }
            Err(err) => {
                tracing::error!(error = %err, "could not revoke a bouncing conversation")
            }
        }
    }

    pub fn message_id_cipher(&self) -> &MessageIdCipher {
        &self.cipher
    }
}

/// The final reply to DATA when the upstream did not take the message:
/// the sending MTA retries a temporary failure, a permanent one bounces.
fn upstream_refusal(err: &DeliveryError) -> Outcome {
    match err {
        DeliveryError::Temporary(_) => Outcome::UpstreamTemporary,
        DeliveryError::Permanent(_) => Outcome::UpstreamPermanent,
    }
}

/// Runs CPU-heavy work without stalling the other sessions that share this
/// worker thread: on the multi-threaded runtime `block_in_place` hands them
/// to another worker first. (A current-thread runtime, as in the fuzz
/// harness, has no other worker: the work runs inline there.)
fn cpu_heavy<T>(work: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
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

fn random_trace_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 10];
    rand::rng().fill_bytes(&mut bytes);
    base32().encode(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    /// With one worker thread, a task spawned while heavy work runs through
    /// `cpu_heavy` still runs: the worker is not held by the heavy work.
    #[test]
    fn heavy_work_leaves_the_worker_to_other_sessions() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let started = Arc::new(AtomicBool::new(false));
        let other_ran = Arc::new(AtomicBool::new(false));
        let (start_flag, other_flag) = (Arc::clone(&started), Arc::clone(&other_ran));
        let heavy = runtime.spawn(async move {
            cpu_heavy(|| {
                start_flag.store(true, Ordering::SeqCst);
                // Bounded: without the hand-over this returns false.
                let deadline = Instant::now() + Duration::from_secs(10);
                while !other_flag.load(Ordering::SeqCst) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                other_flag.load(Ordering::SeqCst)
            })
        });
        while !started.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(1));
        }
        let flag = Arc::clone(&other_ran);
        runtime.spawn(async move { flag.store(true, Ordering::SeqCst) });
        let saw_other = runtime.block_on(heavy).unwrap();
        assert!(saw_other, "the other task waited for the heavy work");
    }

    #[test]
    fn heavy_work_runs_inline_without_a_multi_thread_runtime() {
        assert_eq!(cpu_heavy(|| 7), 7);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(runtime.block_on(async { cpu_heavy(|| 8) }), 8);
    }
}
