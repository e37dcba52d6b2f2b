//! `[verify]`: the SPF/DKIM/DMARC checks of mail to an alias.

use std::path::PathBuf;

use serde::Deserialize;

/// What to require when the partner's domain publishes no DMARC record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoDmarc {
    /// SPF pass for the partner's domain (MAIL FROM), or a DKIM pass with
    /// `d=` the partner's domain or a parent of it.
    #[default]
    SpfOrDkim,
    /// Accept: the domain owner has asked for nothing.
    Accept,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Check every message to an alias; refuse what fails.
    #[default]
    Enforce,
    /// No checks (development without DNS).
    Off,
}

/// `[verify]` in relay.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyConfig {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub no_dmarc: NoDmarc,
    /// Bound on all DNS work for one message; over it: 451 4.4.3.
    #[serde(default = "default_dns_timeout_secs")]
    pub dns_timeout_secs: u64,
    /// Testing / offline only: answer DNS from this file and nothing else.
    pub dns_records: Option<PathBuf>,
}

fn default_dns_timeout_secs() -> u64 {
    5
}

impl Default for VerifyConfig {
    fn default() -> Self {
        Self {
            mode: Mode::default(),
            no_dmarc: NoDmarc::default(),
            dns_timeout_secs: default_dns_timeout_secs(),
            dns_records: None,
        }
    }
}

impl VerifyConfig {
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(1..=60).contains(&self.dns_timeout_secs) {
            return Err((
                "verify.dns_timeout_secs",
                "must be between 1 and 60 seconds".into(),
            ));
        }
        Ok(())
    }
}
