//! Aggregate counters for `/metrics`. Labels are fixed words chosen by the
//! code (a reason, a kind), never an alias, address or user id. Per-message
//! events are counted here, not logged at info (see `logging`).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

type Label = [(&'static str, &'static str); 1];

pub struct Metrics {
    registry: Registry,
    pub sessions: Counter,
    pub forwarded: Counter,
    rejected: Family<Label, Counter>,
    upstream_failures: Family<Label, Counter>,
    bounces: Family<Label, Counter>,
    sender_refusals: Family<Label, Counter>,
    pub composed: Counter,
    pub conversations_created: Counter,
    pub conversations_revoked: Counter,
    pub users_deleted: Counter,
    pub postmaster: Counter,
    store_failures: Family<Label, Counter>,
    wal_bytes: Gauge,
    pub dkim_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("anonrelay");
        let sessions = Counter::default();
        let forwarded = Counter::default();
        let rejected = Family::<Label, Counter>::default();
        let upstream_failures = Family::<Label, Counter>::default();
        let bounces = Family::<Label, Counter>::default();
        let sender_refusals = Family::<Label, Counter>::default();
        let composed = Counter::default();
        let conversations_created = Counter::default();
        let conversations_revoked = Counter::default();
        let users_deleted = Counter::default();
        let postmaster = Counter::default();
        let store_failures = Family::<Label, Counter>::default();
        let wal_bytes = Gauge::default();
        let dkim_failures = Counter::default();
        registry.register(
            "smtp_sessions",
            "Inbound SMTP sessions accepted",
            sessions.clone(),
        );
        registry.register(
            "messages_forwarded",
            "Messages accepted by the upstream",
            forwarded.clone(),
        );
        registry.register(
            "messages_rejected",
            "Inbound messages or recipients refused, by reason",
            rejected.clone(),
        );
        registry.register(
            "upstream_failures",
            "Deliveries the upstream did not accept, by kind",
            upstream_failures.clone(),
        );
        registry.register(
            "bounces",
            "Messages at bounce addresses, by outcome",
            bounces.clone(),
        );
        registry.register(
            "sender_refusals",
            "Messages to an alias refused 550 5.7.1 (one reply for all), by the check that decided",
            sender_refusals.clone(),
        );
        registry.register(
            "hook_messages_sent",
            "Messages composed through the hook and accepted upstream",
            composed.clone(),
        );
        registry.register(
            "conversations_created",
            "Conversations created",
            conversations_created.clone(),
        );
        registry.register(
            "conversations_revoked",
            "Conversations revoked through the hook",
            conversations_revoked.clone(),
        );
        registry.register(
            "users_deleted",
            "Users erased through the hook",
            users_deleted.clone(),
        );
        registry.register(
            "store_failures",
            "Store operations that failed, by operation (reserve_row: a message answered 451 and not sent; release_row: a row left for a message not sent; health_probe)",
            store_failures.clone(),
        );
        registry.register(
            "store_wal_bytes",
            "Size of the SQLite write-ahead log when /metrics was read",
            wal_bytes.clone(),
        );
        registry.register(
            "dkim_signing_failures",
            "Outgoing messages not sent because DKIM signing failed",
            dkim_failures.clone(),
        );
        registry.register(
            "postmaster_messages",
            "Messages to postmaster@ or abuse@ sent on to the operator",
            postmaster.clone(),
        );
        Self {
            registry,
            sessions,
            forwarded,
            rejected,
            upstream_failures,
            bounces,
            sender_refusals,
            composed,
            conversations_created,
            conversations_revoked,
            users_deleted,
            postmaster,
            store_failures,
            wal_bytes,
            dkim_failures,
        }
    }

    pub fn rejected(&self, reason: &'static str) {
        self.rejected.get_or_create(&[("reason", reason)]).inc();
    }

    pub fn store_failure(&self, operation: &'static str) {
        self.store_failures
            .get_or_create(&[("operation", operation)])
            .inc();
    }

    pub fn set_wal_bytes(&self, bytes: u64) {
        self.wal_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    pub fn upstream_failure(&self, kind: &'static str) {
        self.upstream_failures
            .get_or_create(&[("kind", kind)])
            .inc();
    }

    pub fn bounce(&self, outcome: &'static str) {
        self.bounces.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// Why a sender was refused (`not_partner`, `dmarc_fail`, ...): the
    /// reasons the single SMTP reply does not tell the sender.
    pub fn sender_refused(&self, check: &'static str) {
        self.sender_refusals
            .get_or_create(&[("check", check)])
            .inc();
    }

    /// The Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
