//! `relay.toml`: parsed with serde, then validated so that a bad value is
//! reported with the key it came from before anything starts listening.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::core::address::Domain;

pub mod dkim;
mod durability;
pub mod privacy;
mod retention;
pub mod upstream_url;
pub mod verify;

pub use dkim::DkimConfig;
pub use durability::Durability;
pub use privacy::{AutoReplies, RelayPolicy, RemoteContent};
pub use retention::RetentionConfig;
pub use upstream_url::UpstreamUrl;
pub use verify::VerifyConfig;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

fn invalid(key: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key,
        message: message.into(),
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub smtp: SmtpConfig,
    pub upstream: UpstreamConfig,
    /// The front-end's HTTP hook; without this section no hook listens.
    pub hook: Option<HookConfig>,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub retention: RetentionConfig,
    /// Outbound DKIM signing; without this section nothing is signed.
    pub dkim: Option<DkimConfig>,
    /// Inbound SPF/DKIM/DMARC checks of mail to an alias (enforced by default).
    #[serde(default)]
    pub verify: VerifyConfig,
    #[serde(default)]
    pub bounces: BouncesConfig,
    #[serde(default)]
    pub privacy: PrivacyConfig,
}

/// `[privacy]`: what the rebuild forwards of what could reach the sender.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// HTML that makes the reader's client load from a host the sender
    /// chose (tracking pixels, remote images and styles): `block`
    /// (default) removes it, `keep` forwards it.
    #[serde(default)]
    pub remote_content: RemoteContent,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BouncesConfig {
    /// Revoke a conversation after this many permanent bounces of one
    /// alias within a week (0: never).
    #[serde(default)]
    pub disable_after: u32,
}

impl Config {
    /// What the relay forwards, from `[smtp]` and `[bounces]`.
    pub fn relay_policy(&self) -> RelayPolicy {
        RelayPolicy {
            remote_content: self.privacy.remote_content,
            auto_replies: self.smtp.auto_replies,
            disable_after_hard_bounces: self.bounces.disable_after,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// Loopback address:port of the HTTP hook.
    pub listen: SocketAddr,
    /// File holding the bearer token (first line); a secret file (core::secret_file).
    pub token_file: PathBuf,
    /// Development only: create `token_file` with a random token (mode 0600) if missing.
    #[serde(default)]
    pub create_token: bool,
    /// Largest request body accepted; larger ones get 413.
    #[serde(default = "defaults::hook_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Connections the hook serves at once; more wait in the listen queue.
    /// Its descriptors come out of the same allowance as SMTP's.
    #[serde(default = "defaults::hook_max_connections")]
    pub max_connections: usize,
}

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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// `smtp+starttls://user@host:587`, `smtps://user@host:465`,
    /// `smtp://host:port` (loopback only) or `outbox:DIR`.
    pub url: String,
    /// File holding the AUTH password (first line); preferred over `password_env`.
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the AUTH password.
    pub password_env: Option<String>,
    /// CA certificate (PEM) that alone is trusted for the upstream instead of
    /// the system store, e.g. a private CA.
    pub ca_file: Option<PathBuf>,
    #[serde(default = "defaults::upstream_timeout_secs")]
    pub timeout_secs: u64,
    /// Idle upstream connections kept for reuse.
    #[serde(default = "defaults::upstream_pool_size")]
    pub pool_size: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(default = "defaults::store_path")]
    pub path: PathBuf,
    /// Server secret for Message-ID tokens and VERP addresses; created (0600) if missing.
    pub secret_file: Option<PathBuf>,
    /// `normal` or `full`: see [`Durability`].
    #[serde(default)]
    pub synchronous: Durability,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: defaults::store_path(),
            secret_file: None,
            synchronous: Durability::default(),
        }
    }
}

impl StoreConfig {
    pub fn secret_path(&self) -> PathBuf {
        match &self.secret_file {
            Some(path) => path.clone(),
            None => {
                let mut name = self.path.as_os_str().to_owned();
                name.push(".secret");
                PathBuf::from(name)
            }
        }
    }
}

mod defaults {
    use std::path::PathBuf;

    pub fn max_message_bytes() -> usize {
        25 * 1024 * 1024
    }
    pub fn max_line_length() -> usize {
        2048
    }
    pub fn max_connections() -> usize {
        512
    }
    pub fn max_errors() -> u32 {
        10
    }
    pub fn command_timeout_secs() -> u64 {
        300
    }
    pub fn data_timeout_secs() -> u64 {
        180
    }
    pub fn hook_max_connections() -> usize {
        64
    }
    pub fn idle_timeout_secs() -> u64 {
        60
    }
    /// 25 MiB at 45 KB/s.
    pub fn max_data_secs() -> u64 {
        600
    }
    pub fn session_timeout_secs() -> u64 {
        1800
    }
    pub fn max_header_bytes() -> usize {
        102_400
    }
    /// Far above what a sending MTA puts on one connection: Postfix
    /// reuses a connection for as long as it has mail for us (up to
    /// `smtp_connection_reuse_time_limit`, 300 s), and a 421 to its next
    /// MAIL would defer that message to the next queue run.
    pub fn max_transactions_per_connection() -> u32 {
        10_000
    }
    pub fn max_connections_per_client() -> u32 {
        20
    }
    pub fn max_messages_per_client_per_minute() -> u32 {
        60
    }
    pub fn max_failed_rcpts_per_client_per_hour() -> u32 {
        30
    }
    pub fn max_messages_per_alias_per_hour() -> u32 {
        120
    }
    pub fn max_buffered_bytes() -> usize {
        512 * 1024 * 1024
    }
    pub fn shutdown_grace_secs() -> u64 {
        30
    }
    pub fn upstream_timeout_secs() -> u64 {
        60
    }
    pub fn upstream_pool_size() -> usize {
        8
    }
    pub fn hook_max_body_bytes() -> usize {
        1024 * 1024
    }
    pub fn store_path() -> PathBuf {
        PathBuf::from("anonrelay.db")
    }
}

impl Config {
    /// Reads and validates the file; relative paths inside it are resolved
    /// against the file's directory so `--config /etc/anonrelay/relay.toml`
    /// behaves the same from any working directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut config = Self::parse(&text).map_err(|err| match err {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        Ok(config)
    }

    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|err| ConfigError::Parse {
            path: PathBuf::new(),
            message: err.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for p in [
            self.smtp.tls_cert.as_mut(),
            self.smtp.tls_key.as_mut(),
            self.upstream.password_file.as_mut(),
            self.upstream.ca_file.as_mut(),
            self.store.secret_file.as_mut(),
            self.hook.as_mut().map(|h| &mut h.token_file),
            self.dkim.as_mut().map(|d| &mut d.key_file),
            self.verify.dns_records.as_mut(),
            Some(&mut self.store.path),
        ]
        .into_iter()
        .flatten()
        {
            resolve(p);
        }
        if let Some(dir) = self.upstream.url.strip_prefix("outbox:") {
            let dir = Path::new(dir);
            if dir.is_relative() {
                self.upstream.url = format!("outbox:{}", base.join(dir).display());
            }
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(postmaster) = &self.smtp.postmaster {
            crate::core::address::EmailAddress::parse(postmaster)
                .map_err(|err| invalid("smtp.postmaster", format!("{postmaster:?}: {err}")))?;
        }
        if self.smtp.max_message_bytes < 1024 {
            return Err(invalid(
                "smtp.max_message_bytes",
                "must be at least 1024 bytes",
            ));
        }
        match (&self.smtp.tls_cert, &self.smtp.tls_key) {
            (Some(_), None) => {
                return Err(invalid(
                    "smtp.tls_key",
                    "tls_cert is set but tls_key is not",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "smtp.tls_cert",
                    "tls_key is set but tls_cert is not",
                ))
            }
            _ => {}
        }
        let limits = &self.smtp.limits;
        if limits.max_line_length < 512 {
            return Err(invalid(
                "smtp.limits.max_line_length",
                "RFC 5321 requires at least 512",
            ));
        }
        if limits.max_connections == 0 {
            return Err(invalid("smtp.limits.max_connections", "must be at least 1"));
        }
        let positive: [(&'static str, u64); 6] = [
            (
                "smtp.limits.max_transactions_per_connection",
                limits.max_transactions_per_connection.into(),
            ),
            (
                "smtp.limits.max_connections_per_client",
                limits.max_connections_per_client.into(),
            ),
            (
                "smtp.limits.max_messages_per_client_per_minute",
                limits.max_messages_per_client_per_minute.into(),
            ),
            (
                "smtp.limits.max_failed_rcpts_per_client_per_hour",
                limits.max_failed_rcpts_per_client_per_hour.into(),
            ),
            (
                "smtp.limits.max_messages_per_alias_per_hour",
                limits.max_messages_per_alias_per_hour.into(),
            ),
            ("smtp.limits.max_errors", limits.max_errors.into()),
        ];
        if let Some((key, _)) = positive.iter().find(|(_, value)| *value == 0) {
            return Err(invalid(key, "must be at least 1"));
        }
        if limits.max_header_bytes < 1024 {
            return Err(invalid(
                "smtp.limits.max_header_bytes",
                "must be at least 1024",
            ));
        }
        if limits.max_buffered_bytes < self.smtp.held_per_message() {
            return Err(invalid(
                "smtp.limits.max_buffered_bytes",
                "must be at least 5.375 × smtp.max_message_bytes + 410 KiB (the message, the rewrite's working copies and its output), or a message at the size limit could never be forwarded",
            ));
        }
        let timeouts = [
            (
                "smtp.limits.command_timeout_secs",
                limits.command_timeout_secs,
            ),
            ("smtp.limits.data_timeout_secs", limits.data_timeout_secs),
            ("smtp.limits.idle_timeout_secs", limits.idle_timeout_secs),
            ("smtp.limits.max_data_secs", limits.max_data_secs),
            (
                "smtp.limits.session_timeout_secs",
                limits.session_timeout_secs,
            ),
        ];
        if let Some((key, _)) = timeouts.iter().find(|(_, secs)| *secs == 0) {
            return Err(invalid(key, "must be at least 1 second"));
        }
        if self.upstream.timeout_secs == 0 {
            return Err(invalid(
                "upstream.timeout_secs",
                "must be at least 1 second",
            ));
        }
        self.retention
            .validate()
            .map_err(|(key, message)| invalid(key, message))?;
        if let Some(dkim) = &self.dkim {
            dkim.validate()
                .map_err(|(key, message)| invalid(key, message))?;
        }
        self.verify
            .validate()
            .map_err(|(key, message)| invalid(key, message))?;
        if let Some(hook) = &self.hook {
            if !hook.listen.ip().is_loopback() {
                return Err(invalid(
                    "hook.listen",
                    format!(
                        "{} is not a loopback address; the hook must not be reachable from outside",
                        hook.listen
                    ),
                ));
            }
        }
        UpstreamUrl::parse(&self.upstream.url)
            .map_err(|err| invalid("upstream.url", err.to_string()))?;
        Ok(())
    }
}
