//! `relay.toml`: parsed with serde, then validated so that a bad value is
//! reported with the key it came from before anything starts listening.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod defaults;
pub mod dkim;
mod durability;
pub mod privacy;
mod retention;
mod smtp;
pub mod upstream_url;
pub mod verify;

pub use dkim::DkimConfig;
pub use durability::Durability;
pub use privacy::{AutoReplies, RelayPolicy, RemoteContent};
pub use retention::RetentionConfig;
pub use smtp::{LimitsConfig, SmtpConfig};
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
        self.smtp
            .validate()
            .map_err(|(key, message)| invalid(key, message))?;
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
