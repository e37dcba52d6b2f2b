//! Who a recipient is (a conversation alias, a VERP bounce address of one,
//! the operator) and who may write to it (`admit`, `verify`). Knows the
//! store's routes; knows no SMTP and no reply text.

pub mod admit;
pub mod path;
pub mod verify;

use std::sync::Arc;

use crate::core::address::{is_alias_shape, Domain};
use crate::core::tokens::{ServerSecret, VerpSigner, VERP_PREFIX};
use crate::store::{now_unix, Route, Store, StoreError};

/// Looks recipients up: one per transaction, at RCPT time.
pub struct Router {
    store: Arc<dyn Store>,
    verp: VerpSigner,
    alias_domain: Domain,
    /// `smtp.postmaster` is set: postmaster@ and abuse@ are taken.
    operator_mail: bool,
}

/// A recipient accepted at RCPT time.
#[derive(Debug, Clone)]
pub enum Recipient {
    /// An alias or a bounce address of a conversation.
    Conversation(Accepted),
    /// `postmaster` or `abuse`: the operator's (`smtp.postmaster`).
    Operator(&'static str),
}

/// A conversation's alias or bounce address, accepted at RCPT time.
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

/// What a local part on the alias domain turned out to be.
#[derive(Debug)]
pub enum Resolved {
    Found(Recipient),
    /// Unknown, revoked, a forged or expired bounce address, or an operator
    /// address while `smtp.postmaster` is unset: one answer for all.
    Unknown,
    /// The store could not be asked.
    Unavailable(StoreError),
}

impl Recipient {
    /// What the per-alias message rate counts this recipient as (bounce
    /// addresses share their alias's: the recipient sees them as
    /// Return-Path).
    pub fn rate_key(&self) -> String {
        match self {
            Recipient::Conversation(accepted) => accepted.route.alias.clone(),
            Recipient::Operator(local_part) => (*local_part).to_owned(),
        }
    }
}

impl Router {
    pub fn new(
        store: Arc<dyn Store>,
        secret: &ServerSecret,
        alias_domain: Domain,
        operator_mail: bool,
    ) -> Self {
        Self {
            store,
            verp: secret.verp_signer(),
            alias_domain,
            operator_mail,
        }
    }

    pub fn alias_domain(&self) -> &Domain {
        &self.alias_domain
    }

    /// Who `local` (a lowercased local part on the alias domain) is.
    /// `envelope_sender` is the transaction's normalized MAIL FROM.
    pub async fn resolve(&self, local: &str, envelope_sender: Option<&str>) -> Resolved {
        if let Some(operator) = path::operator_local_part(local) {
            return if self.operator_mail {
                Resolved::Found(Recipient::Operator(operator))
            } else {
                Resolved::Unknown
            };
        }
        if local.starts_with(VERP_PREFIX) {
            // Only a valid, unexpired token of a live alias is accepted, so
            // a forged bounce causes no mail (no backscatter).
            let Some(alias) = self.verp.verify(local, now_unix().max(0) as u64) else {
                return Resolved::Unknown;
            };
            return self
                .lookup(&alias, |route| Accepted {
                    route,
                    envelope_sender_matches: false,
                    kind: RecipientKind::Bounce,
                })
                .await;
        }
        if !is_alias_shape(local) {
            return Resolved::Unknown;
        }
        self.lookup(local, |route| Accepted {
            envelope_sender_matches: envelope_sender.is_some_and(|s| s == route.partner_email),
            route,
            kind: RecipientKind::Alias,
        })
        .await
    }

    async fn lookup(&self, alias: &str, accept: impl FnOnce(Route) -> Accepted) -> Resolved {
        match self.store.route(alias).await {
            Ok(Some(route)) => Resolved::Found(Recipient::Conversation(accept(route))),
            Ok(None) => Resolved::Unknown,
            Err(err) => Resolved::Unavailable(err),
        }
    }
}
