//! `[dkim]`: the selector and key the relay signs with.

use std::path::PathBuf;

use serde::Deserialize;

use crate::core::address::Domain;

/// Selector `dkim keygen` uses when neither `--selector` nor `[dkim]` names one.
pub const DEFAULT_SELECTOR: &str = "anonrelay";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DkimConfig {
    /// DNS selector: the key is published at `<selector>._domainkey.<alias_domain>`.
    pub selector: String,
    /// PEM private key (RSA ≥ 2048 bits or Ed25519), e.g. a systemd credential.
    pub key_file: PathBuf,
    /// Optional: must match the key if given (the key decides anyway).
    pub algorithm: Option<KeyAlgorithm>,
}

impl DkimConfig {
    /// Returns the offending key and what is wrong with it.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        validate_selector(&self.selector).map_err(|message| ("dkim.selector", message))
    }
}

pub fn validate_selector(selector: &str) -> Result<(), String> {
    match Domain::parse(selector) {
        Some(_) if !selector.ends_with('.') => Ok(()),
        _ => Err(format!(
            "{selector:?} is not a DNS selector (letters, digits, `-`, labels separated by dots)"
        )),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum KeyAlgorithm {
    Ed25519,
    Rsa,
}

impl KeyAlgorithm {
    /// The `k=` tag of the DNS record.
    pub fn dns_tag(self) -> &'static str {
        match self {
            KeyAlgorithm::Ed25519 => "ed25519",
            KeyAlgorithm::Rsa => "rsa",
        }
    }
}

impl std::fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.dns_tag())
    }
}
