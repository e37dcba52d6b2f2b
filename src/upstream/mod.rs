//! Delivery to the upstream submission server (mail-send, pooled
//! connections in `pool`, STARTTLS or implicit TLS in `tls`, AUTH), or to
//! a local outbox directory for development (`outbox`).
//!
//! Errors carry only the reply code: an upstream's reply text often quotes
//! the recipient's real address, so it is neither logged nor shown.

mod outbox;
mod pool;
mod tls;

use std::path::PathBuf;
use std::sync::Arc;

pub use crate::config::upstream_url::{Security, UpstreamUrl, UrlError};
use crate::config::UpstreamConfig;
pub use outbox::Outbox;
pub use pool::{SmtpUpstream, DATA_DONE_WAIT};

/// Why a delivery failed, as the SMTP side needs to know it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Try again later: 4xx, timeout, disconnect, TLS or AUTH trouble.
    #[error("temporary upstream failure ({0})")]
    Temporary(String),
    /// The upstream refused the message or recipient for good (5xx).
    #[error("upstream rejected the message ({0})")]
    Permanent(String),
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("config key `upstream.url`: {0}")]
    Url(#[from] UrlError),
    #[error("cannot read upstream password file {path}: {source}")]
    PasswordFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("environment variable {0} (upstream.password_env) is not set")]
    PasswordEnv(String),
    #[error("config key `upstream.url` names user {0:?} but neither upstream.password_file nor upstream.password_env is set")]
    NoPassword(String),
    #[error("cannot load upstream CA file {path}: {message}")]
    CaFile { path: PathBuf, message: String },
    #[error("cannot set up TLS for the upstream: {0}")]
    Tls(String),
    #[error("outbox directory {path}: {source}")]
    Outbox {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("upstream {endpoint} is not usable at start: {reason}")]
    Unreachable { endpoint: String, reason: String },
}

pub struct Envelope<'a> {
    pub mail_from: &'a str,
    pub rcpt_to: &'a str,
}

pub enum Upstream {
    Smtp(Box<SmtpUpstream>),
    Outbox(Outbox),
    /// Accepts and drops every message. Not reachable from the config:
    /// only for fuzzing and in-process tests.
    #[cfg(feature = "testing")]
    Discard,
}

impl Upstream {
    pub fn from_config(config: &UpstreamConfig, helo_host: &str) -> Result<Arc<Self>, SetupError> {
        let upstream = match UpstreamUrl::parse(&config.url)? {
            UpstreamUrl::Outbox(dir) => Upstream::Outbox(Outbox::new(dir)?),
            UpstreamUrl::Smtp {
                security,
                host,
                port,
                user,
            } => Upstream::Smtp(Box::new(SmtpUpstream::new(
                config, security, host, port, user, helo_host,
            )?)),
        };
        Ok(Arc::new(upstream))
    }

    /// What `check-config` asks: the same checks as [`Upstream::from_config`]
    /// without its side effect (an outbox directory is only created by `serve`).
    pub fn validate_config(config: &UpstreamConfig, helo_host: &str) -> Result<(), SetupError> {
        match UpstreamUrl::parse(&config.url)? {
            UpstreamUrl::Outbox(dir) if dir.exists() && !dir.is_dir() => Err(SetupError::Outbox {
                path: dir,
                source: std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "exists and is not a directory",
                ),
            }),
            UpstreamUrl::Outbox(_) => Ok(()),
            UpstreamUrl::Smtp { .. } => Self::from_config(config, helo_host).map(drop),
        }
    }

    /// Proves the upstream works (connect, TLS, AUTH) before we accept mail.
    pub async fn check(&self) -> Result<(), SetupError> {
        match self {
            Upstream::Outbox(outbox) => outbox.check(),
            Upstream::Smtp(smtp) => smtp.check().await,
            #[cfg(feature = "testing")]
            Upstream::Discard => Ok(()),
        }
    }

    pub async fn deliver(
        &self,
        envelope: &Envelope<'_>,
        message: &[u8],
    ) -> Result<(), DeliveryError> {
        // Stored addresses keep U-labels; a server without SMTPUTF8 takes
        // only the A-label spelling (mail-send sends what it is given).
        let rcpt_to = crate::core::address::envelope_form(envelope.rcpt_to);
        let envelope = &Envelope {
            mail_from: envelope.mail_from,
            rcpt_to: &rcpt_to,
        };
        match self {
            Upstream::Outbox(outbox) => outbox.deliver(envelope, message).await,
            Upstream::Smtp(smtp) => smtp.deliver(envelope, message).await,
            #[cfg(feature = "testing")]
            Upstream::Discard => Ok(()),
        }
    }

    /// Where mail goes, for the startup log line (no credentials).
    pub fn describe(&self) -> String {
        match self {
            Upstream::Outbox(outbox) => format!("outbox:{}", outbox.dir().display()),
            Upstream::Smtp(smtp) => smtp.endpoint(),
            #[cfg(feature = "testing")]
            Upstream::Discard => "discard".to_owned(),
        }
    }
}
