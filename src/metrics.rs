//! Aggregate counters for `/metrics`. Labels are fixed words chosen by the
//! code (a reason, a kind), never an alias, address or user id. Per-message
//! events are counted here, not logged at info (see `logging`).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Metric, Registry};

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

/// A metric of its own type, registered under `name` with `help`; the
/// registry keeps a handle to the same counter.
fn registered<M: Metric + Clone + Default>(registry: &mut Registry, name: &str, help: &str) -> M {
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("anonrelay");
        let r = &mut registry;
        Self {
            sessions: registered(r, "smtp_sessions", "Inbound SMTP sessions accepted"),
            forwarded: registered(r, "messages_forwarded", "Messages accepted by the upstream"),
            rejected: registered(r, "messages_rejected", "Inbound messages or recipients refused, by reason"),
            upstream_failures: registered(r, "upstream_failures", "Deliveries the upstream did not accept, by kind"),
            bounces: registered(r, "bounces", "Messages at bounce addresses, by outcome"),
            sender_refusals: registered(r, "sender_refusals", "Messages to an alias refused 550 5.7.1 (one reply for all), by the check that decided"),
            composed: registered(r, "hook_messages_sent", "Messages composed through the hook and accepted upstream"),
            conversations_created: registered(r, "conversations_created", "Conversations created"),
            conversations_revoked: registered(r, "conversations_revoked", "Conversations revoked through the hook"),
            users_deleted: registered(r, "users_deleted", "Users erased through the hook"),
            store_failures: registered(r, "store_failures", "Store operations that failed, by operation (reserve_row: a message answered 451 and not sent; release_row: a row left for a message not sent; health_probe)"),
            wal_bytes: registered(r, "store_wal_bytes", "Size of the SQLite write-ahead log when /metrics was read"),
            dkim_failures: registered(r, "dkim_signing_failures", "Outgoing messages not sent because DKIM signing failed"),
            postmaster: registered(r, "postmaster_messages", "Messages to postmaster@ or abuse@ sent on to the operator"),
            registry,
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
