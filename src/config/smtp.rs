//! `[smtp]` and `[smtp.limits]`: the listener, the alias domain and every
//! bound a session is held to.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::defaults;
use super::privacy::AutoReplies;
use crate::core::address::Domain;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Address the MX listener binds, e.g. `0.0.0.0:25`.
    pub listen: SocketAddr,
    /// Name in the greeting, EHLO reply and our trace header.
    pub hostname: Domain,
    /// The only domain we accept recipients for; aliases live here.
    pub alias_domain: Domain,
    #[serde(default = "defaults::max_message_bytes")]
    pub max_message_bytes: usize,
    /// PEM certificate chain; STARTTLS is offered only when set (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Auto-replies (Auto-Submitted, vacation responders): `forward` them
    /// rewritten like any message, or `drop` them (accepted, not sent on).
    #[serde(default)]
    pub auto_replies: AutoReplies,
    /// The operator's address: mail to `postmaster` and `abuse` on the alias
    /// domain (RFC 5321 4.5.1, RFC 2142) is sent there, wrapped. Unset, such
    /// mail is refused like an unknown alias.
    pub postmaster: Option<String>,
    #[serde(default)]
    pub limits: LimitsConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Longest command line accepted (RFC 5321 asks for at least 512).
    #[serde(default = "defaults::max_line_length")]
    pub max_line_length: usize,
    #[serde(default = "defaults::max_connections")]
    pub max_connections: usize,
    /// Errors (4xx/5xx replies) a session may cause before we answer 421 and close.
    #[serde(default = "defaults::max_errors")]
    pub max_errors: u32,
    /// Seconds we wait for the next command (RFC 5321 4.5.3.2 says 5 minutes).
    #[serde(default = "defaults::command_timeout_secs")]
    pub command_timeout_secs: u64,
    /// Seconds a connection may sit without a transaction (before its
    /// first MAIL, between transactions); then 421 and close. Sending MTAs
    /// do not idle (Postfix keeps an unused connection 2 s), so an idle
    /// connection is a slot held for nothing.
    #[serde(default = "defaults::idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Seconds we wait for each chunk of DATA (RFC 5321: 3 minutes).
    #[serde(default = "defaults::data_timeout_secs")]
    pub data_timeout_secs: u64,
    /// Seconds a whole DATA phase may take (each chunk also within
    /// data_timeout_secs); then 421 and close. A message being received
    /// holds its share of the buffer budget, so a trickle must not last.
    #[serde(default = "defaults::max_data_secs")]
    pub max_data_secs: u64,
    /// Upper bound on a whole session, so a trickling client cannot hold a slot forever.
    #[serde(default = "defaults::session_timeout_secs")]
    pub session_timeout_secs: u64,
    /// At shutdown, how long sessions may take to finish a message
    /// (idle ones get 421 at once). Keep below systemd's TimeoutStopSec.
    #[serde(default = "defaults::shutdown_grace_secs")]
    pub shutdown_grace_secs: u64,
    /// Largest header block of a message; over it: 552 5.3.4.
    #[serde(default = "defaults::max_header_bytes")]
    pub max_header_bytes: usize,
    /// Transactions (MAIL commands) per connection; then 421 and close.
    #[serde(default = "defaults::max_transactions_per_connection")]
    pub max_transactions_per_connection: u32,
    /// Concurrent connections from one client address; more: 421 4.7.0.
    #[serde(default = "defaults::max_connections_per_client")]
    pub max_connections_per_client: u32,
    /// Messages (MAIL commands) per client address per minute; more: 450 4.7.1.
    #[serde(default = "defaults::max_messages_per_client_per_minute")]
    pub max_messages_per_client_per_minute: u32,
    /// Refused recipients per client address per hour before every RCPT
    /// is answered late (slows alias guessing).
    #[serde(default = "defaults::max_failed_rcpts_per_client_per_hour")]
    pub max_failed_rcpts_per_client_per_hour: u32,
    /// Messages accepted for one alias per hour; more: 450 4.7.1.
    #[serde(default = "defaults::max_messages_per_alias_per_hour")]
    pub max_messages_per_alias_per_hour: u32,
    /// Message bytes all sessions together may hold in memory; a message
    /// that would exceed it gets 452 4.3.1.
    #[serde(default = "defaults::max_buffered_bytes")]
    pub max_buffered_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_line_length: defaults::max_line_length(),
            max_connections: defaults::max_connections(),
            max_errors: defaults::max_errors(),
            command_timeout_secs: defaults::command_timeout_secs(),
            idle_timeout_secs: defaults::idle_timeout_secs(),
            max_data_secs: defaults::max_data_secs(),
            data_timeout_secs: defaults::data_timeout_secs(),
            session_timeout_secs: defaults::session_timeout_secs(),
            shutdown_grace_secs: defaults::shutdown_grace_secs(),
            max_header_bytes: defaults::max_header_bytes(),
            max_transactions_per_connection: defaults::max_transactions_per_connection(),
            max_connections_per_client: defaults::max_connections_per_client(),
            max_messages_per_client_per_minute: defaults::max_messages_per_client_per_minute(),
            max_failed_rcpts_per_client_per_hour: defaults::max_failed_rcpts_per_client_per_hour(),
            max_messages_per_alias_per_hour: defaults::max_messages_per_alias_per_hour(),
            max_buffered_bytes: defaults::max_buffered_bytes(),
        }
    }
}

impl SmtpConfig {
    /// What one message at the size limit holds of the buffer budget while
    /// it is forwarded: the message, the rewrite's working copies and its
    /// output (rewrite::memory_needed), plus a budget step.
    pub fn held_per_message(&self) -> usize {
        crate::core::budget::held_per_message(self.max_message_bytes)
    }
}

impl LimitsConfig {
    pub fn command_timeout(&self) -> Duration {
        Duration::from_secs(self.command_timeout_secs)
    }
    pub fn data_timeout(&self) -> Duration {
        Duration::from_secs(self.data_timeout_secs)
    }
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs)
    }
    pub fn session_timeout(&self) -> Duration {
        Duration::from_secs(self.session_timeout_secs)
    }
}

/// A rejected key and why.
type Invalid = (&'static str, String);

fn invalid_key(key: &'static str, message: impl Into<String>) -> Invalid {
    (key, message.into())
}

impl SmtpConfig {
    /// Every `[smtp]` rule, then `[smtp.limits]`'s.
    pub(super) fn validate(&self) -> Result<(), Invalid> {
        if let Some(postmaster) = &self.postmaster {
            crate::core::address::EmailAddress::parse(postmaster)
                .map_err(|err| invalid_key("smtp.postmaster", format!("{postmaster:?}: {err}")))?;
        }
        if self.max_message_bytes < 1024 {
            return Err(invalid_key(
                "smtp.max_message_bytes",
                "must be at least 1024 bytes",
            ));
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) => {
                return Err(invalid_key(
                    "smtp.tls_key",
                    "tls_cert is set but tls_key is not",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid_key(
                    "smtp.tls_cert",
                    "tls_key is set but tls_cert is not",
                ))
            }
            _ => {}
        }
        self.limits.validate(self.held_per_message())
    }
}

impl LimitsConfig {
    /// Every `[smtp.limits]` rule; `held_per_message` is what one message at
    /// the size limit holds (see [`SmtpConfig::held_per_message`]).
    fn validate(&self, held_per_message: usize) -> Result<(), Invalid> {
        if self.max_line_length < 512 {
            return Err(invalid_key(
                "smtp.limits.max_line_length",
                "RFC 5321 requires at least 512",
            ));
        }
        if self.max_connections == 0 {
            return Err(invalid_key(
                "smtp.limits.max_connections",
                "must be at least 1",
            ));
        }
        let positive: [(&'static str, u64); 6] = [
            (
                "smtp.limits.max_transactions_per_connection",
                self.max_transactions_per_connection.into(),
            ),
            (
                "smtp.limits.max_connections_per_client",
                self.max_connections_per_client.into(),
            ),
            (
                "smtp.limits.max_messages_per_client_per_minute",
                self.max_messages_per_client_per_minute.into(),
            ),
            (
                "smtp.limits.max_failed_rcpts_per_client_per_hour",
                self.max_failed_rcpts_per_client_per_hour.into(),
            ),
            (
                "smtp.limits.max_messages_per_alias_per_hour",
                self.max_messages_per_alias_per_hour.into(),
            ),
            ("smtp.limits.max_errors", self.max_errors.into()),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(invalid_key(key, "must be at least 1"));
        }
        if self.max_header_bytes < 1024 {
            return Err(invalid_key(
                "smtp.limits.max_header_bytes",
                "must be at least 1024",
            ));
        }
        if self.max_buffered_bytes < held_per_message {
            return Err(invalid_key(
                "smtp.limits.max_buffered_bytes",
                "must be at least 5.375 × smtp.max_message_bytes + 410 KiB (the message, the rewrite's working copies and its output), or a message at the size limit could never be forwarded",
            ));
        }
        let timeouts = [
            (
                "smtp.limits.command_timeout_secs",
                self.command_timeout_secs,
            ),
            ("smtp.limits.data_timeout_secs", self.data_timeout_secs),
            ("smtp.limits.idle_timeout_secs", self.idle_timeout_secs),
            ("smtp.limits.max_data_secs", self.max_data_secs),
            (
                "smtp.limits.session_timeout_secs",
                self.session_timeout_secs,
            ),
        ];
        if let Some((key, _)) = timeouts.iter().find(|(_, secs)| *secs == 0) {
            return Err(invalid_key(key, "must be at least 1 second"));
        }
        Ok(())
    }
}
