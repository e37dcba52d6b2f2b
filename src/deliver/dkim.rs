//! Outbound DKIM (mail-auth, ring). One [`Signer`], loaded from `[dkim]`,
//! signs every message right before it goes to the upstream
//! (`deliver::tail::Tail::send`), so forwarded mail, composed mail, bounce
//! notices and operator mail are signed the same way, with `d=` the alias domain that every From we write names.
//!
//! Keys are PEM files: RSA (PKCS#1 `RSA PRIVATE KEY` or PKCS#8, at least
//! 2048 bits) or Ed25519 (PKCS#8 `PRIVATE KEY`). [`generate_ed25519`] makes
//! the latter for `anonrelay dkim keygen`; ring cannot generate RSA keys.

use std::path::{Path, PathBuf};

use mail_auth::common::crypto::{DkimKey, Ed25519Key, RsaKey, Sha256};
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::{Canonicalization, DkimSigner, Done};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;

pub use crate::config::dkim::{validate_selector, DkimConfig, KeyAlgorithm, DEFAULT_SELECTOR};
use crate::core::address::Domain;
use crate::core::der::der_element;
use crate::core::secret_file::{self, SecretFileError};

/// Headers covered by the signature: everything a reader sees or a client
/// threads on. Missing ones are signed as absent, so nobody can add them
/// later; From is listed twice so a second From cannot be added either.
pub const SIGNED_HEADERS: &[&str] = &[
    "From",
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
];

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("config key `dkim.key_file`: {0}")]
    File(#[from] SecretFileError),
    #[error("config key `dkim.key_file`: DKIM key {path} holds no PEM private key (expected `PRIVATE KEY` or `RSA PRIVATE KEY`)")]
    NotPem { path: PathBuf },
    #[error("config key `dkim.key_file`: DKIM key {path} is neither an Ed25519 nor an RSA (2048 bits or more) private key")]
    Unusable { path: PathBuf },
    #[error("config key `dkim.algorithm`: is {configured} but the DKIM key {path} is {actual}")]
    AlgorithmMismatch {
        path: PathBuf,
        configured: KeyAlgorithm,
        actual: KeyAlgorithm,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("DKIM signing failed: {0}")]
pub struct SignError(String);

/// The TXT record that publishes a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    /// `<selector>._domainkey.<domain>` (no trailing dot).
    pub name: String,
    /// `v=DKIM1; k=...; p=...`
    pub value: String,
}

impl DnsRecord {
    /// A zone-file line; values over 255 bytes (RSA) are split into
    /// several quoted strings, which DNS joins back together.
    pub fn zone_line(&self) -> String {
        let chunks: Vec<String> = self
            .value
            .as_bytes()
            .chunks(255)
            .map(|chunk| format!("\"{}\"", String::from_utf8_lossy(chunk)))
            .collect();
        format!("{}. IN TXT {}", self.name, chunks.join(" "))
    }
}

pub struct Signer {
    inner: DkimSigner<DkimKey, Done>,
    algorithm: KeyAlgorithm,
    /// What goes into `p=`: raw 32 bytes (Ed25519) or SubjectPublicKeyInfo (RSA).
    public_key: Vec<u8>,
    selector: String,
    domain: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("algorithm", &self.algorithm)
            .field("selector", &self.selector)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// Reads and checks the key of `[dkim]`; signatures get `d=domain`.
    pub fn load(config: &DkimConfig, domain: &Domain) -> Result<Self, KeyError> {
        let path = &config.key_file;
        let pem = secret_file::read(path)?;
        let signer = Self::from_pem(&pem, path, &config.selector, domain.as_str())?;
        match config.algorithm {
            Some(configured) if configured != signer.algorithm => {
                Err(KeyError::AlgorithmMismatch {
                    path: path.clone(),
                    configured,
                    actual: signer.algorithm,
                })
            }
            _ => Ok(signer),
        }
    }

    /// Builds a signer from PEM bytes; `path` only names the key in errors.
    pub fn from_pem(
        pem: &[u8],
        path: &Path,
        selector: &str,
        domain: &str,
    ) -> Result<Self, KeyError> {
        let der = PrivateKeyDer::from_pem_slice(pem)
            .map_err(|_| KeyError::NotPem { path: path.into() })?;
        let unusable = || KeyError::Unusable { path: path.into() };
        let (key, algorithm, public_key) = match der {
            PrivateKeyDer::Pkcs8(pkcs8) => {
                match Ed25519Key::from_pkcs8_maybe_unchecked_der(pkcs8.secret_pkcs8_der()) {
                    Ok(key) => {
                        let public = key.public_key();
                        (DkimKey::from(key), KeyAlgorithm::Ed25519, public)
                    }
                    Err(_) => {
                        let key = rsa_key(PrivateKeyDer::Pkcs8(pkcs8)).ok_or_else(unusable)?;
                        let public = rsa_spki(&key.public_key());
                        (DkimKey::from(key), KeyAlgorithm::Rsa, public)
                    }
                }
            }
            pkcs1 @ PrivateKeyDer::Pkcs1(_) => {
                let key = rsa_key(pkcs1).ok_or_else(unusable)?;
                let public = rsa_spki(&key.public_key());
                (DkimKey::from(key), KeyAlgorithm::Rsa, public)
            }
            _ => return Err(unusable()),
        };
        let inner = DkimSigner::from_key(key)
            .domain(domain)
            .selector(selector)
            .headers(SIGNED_HEADERS.iter().copied())
            // Relaxed survives the re-folding and trailing-space trimming
            // that submission servers and MTAs on the way may do.
            .header_canonicalization(Canonicalization::Relaxed)
            .body_canonicalization(Canonicalization::Relaxed);
        Ok(Self {
            inner,
            algorithm,
            public_key,
            selector: selector.to_owned(),
            domain: domain.to_owned(),
        })
    }

    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    pub fn selector(&self) -> &str {
        &self.selector
    }

    /// Prepends a `DKIM-Signature` header to a finished message (CRLF-only).
    pub fn sign(&self, mut message: Vec<u8>) -> Result<Vec<u8>, SignError> {
        let signature = self
            .inner
            .sign(&message)
            .map_err(|err| SignError(err.to_string()))?;
        let header = close_signature_value(signature.to_header());
        // In place: the message can be large, a second copy is not needed.
        message.splice(0..0, header.into_bytes());
        Ok(message)
    }

    /// The TXT record receivers look the key up in.
    pub fn dns_record(&self) -> DnsRecord {
        dns_record(
            &self.selector,
            &self.domain,
            self.algorithm,
            &self.public_key,
        )
    }
}

/// mail-auth folds the header wherever a line fills up, which can put a
/// fold between the last `b=` character and the closing `;`. RFC 6376
/// deletes the b= value with its surrounding white space when verifying,
/// but some verifiers (dkimpy) keep that fold and then fail. The `;` goes
/// back on the value's line; the signed form (`b=;`) is the same either way.
fn close_signature_value(header: String) -> String {
    match header.strip_suffix("\r\n\t;\r\n") {
        Some(value) => format!("{value};\r\n"),
        None => header,
    }
}

pub fn dns_record(
    selector: &str,
    domain: &str,
    algorithm: KeyAlgorithm,
    public_key: &[u8],
) -> DnsRecord {
    DnsRecord {
        name: format!("{selector}._domainkey.{domain}"),
        value: format!(
            "v=DKIM1; k={}; p={}",
            algorithm.dns_tag(),
            data_encoding::BASE64.encode(public_key)
        ),
    }
}

fn rsa_key(der: PrivateKeyDer<'_>) -> Option<RsaKey<Sha256>> {
    // ring refuses keys under 2048 bits here, which is what we want.
    RsaKey::<Sha256>::from_key_der(der).ok()
}

/// DER of an Ed25519 PKCS#8 document up to its 32-byte seed: version 2
/// (RFC 5958, with the public key after the seed) as ring writes it, and
/// version 1 (RFC 8410, seed only) as OpenSSL reads and writes it.
const ED25519_PKCS8_V2_PREFIX: &[u8] = &[
    0x30, 0x51, 0x02, 0x01, 0x01, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
const ED25519_PKCS8_V1_PREFIX: &[u8] = &[
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A new Ed25519 key: (PEM PKCS#8 private key, raw public key for `p=`).
/// Written as PKCS#8 v1 so that `openssl pkey` can read it too.
pub fn generate_ed25519() -> Result<(String, Vec<u8>), SignError> {
    let v2 = Ed25519Key::generate_pkcs8().map_err(|err| SignError(err.to_string()))?;
    let seed = v2
        .strip_prefix(ED25519_PKCS8_V2_PREFIX)
        .and_then(|rest| rest.get(..32))
        .ok_or_else(|| SignError("unexpected PKCS#8 layout from ring".into()))?;
    let v1 = [ED25519_PKCS8_V1_PREFIX, seed].concat();
    let key = Ed25519Key::from_pkcs8_maybe_unchecked_der(&v1)
        .map_err(|err| SignError(err.to_string()))?;
    Ok((pem_encode("PRIVATE KEY", &v1), key.public_key()))
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let base64 = data_encoding::BASE64.encode(der);
    let mut pem = format!("-----BEGIN {label}-----\n");
    for line in base64.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(&format!("-----END {label}-----\n"));
    pem
}

/// Wraps a PKCS#1 RSAPublicKey in a SubjectPublicKeyInfo, the form DKIM
/// records use in practice (what `openssl rsa -pubout` prints); some
/// verifiers accept only that.
fn rsa_spki(pkcs1: &[u8]) -> Vec<u8> {
    // AlgorithmIdentifier { rsaEncryption (1.2.840.113549.1.1.1), NULL }
    const RSA_ALGORITHM: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
    ];
    let mut bit_string = vec![0x00]; // no unused bits
    bit_string.extend_from_slice(pkcs1);
    let mut content = RSA_ALGORITHM.to_vec();
    content.extend(der_element(0x03, &bit_string));
    der_element(0x30, &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ed25519_signer() -> (Signer, Vec<u8>) {
        let (pem, public) = generate_ed25519().unwrap();
        let signer =
            Signer::from_pem(pem.as_bytes(), Path::new("k.pem"), "sel", "relay.test").unwrap();
        (signer, public)
    }

    #[test]
    fn generated_ed25519_key_loads_and_publishes_its_public_half() {
        let (signer, public) = ed25519_signer();
        assert_eq!(signer.algorithm(), KeyAlgorithm::Ed25519);
        assert_eq!(public.len(), 32);
        let record = signer.dns_record();
        assert_eq!(record.name, "sel._domainkey.relay.test");
        assert_eq!(
            record.value,
            format!(
                "v=DKIM1; k=ed25519; p={}",
                data_encoding::BASE64.encode(&public)
            )
        );
        assert_eq!(
            record.zone_line(),
            format!("sel._domainkey.relay.test. IN TXT \"{}\"", record.value)
        );
    }

    #[test]
    fn signature_is_prepended_and_covers_the_listed_headers() {
        let (signer, _) = ed25519_signer();
        let message = b"From: <a@relay.test>\r\nTo: <b@relay.test>\r\nSubject: hi\r\n\r\nbody\r\n";
        let signed = signer.sign(message.to_vec()).unwrap();
        assert!(signed.ends_with(message));
        crate::rewrite::check_line_endings(&signed).unwrap();
        let header = String::from_utf8(signed[..signed.len() - message.len()].to_vec()).unwrap();
        assert!(header.starts_with("DKIM-Signature:"), "{header}");
        let unfolded = header.replace("\r\n\t", "").replace("\r\n ", "");
        assert!(unfolded.contains("d=relay.test"), "{unfolded}");
        assert!(unfolded.contains("s=sel"), "{unfolded}");
        assert!(unfolded.contains("a=ed25519-sha256"), "{unfolded}");
        assert!(unfolded.contains("c=relaxed/relaxed"), "{unfolded}");
        let h = unfolded
            .split(';')
            .map(str::trim)
            .find_map(|tag| tag.strip_prefix("h="))
            .unwrap()
            .to_ascii_lowercase();
        for name in SIGNED_HEADERS {
            assert!(
                h.split(':').any(|n| n.trim() == name.to_ascii_lowercase()),
                "{name} not in h={h}"
            );
        }
    }

    #[test]
    fn bad_keys_are_refused_naming_the_path() {
        let path = Path::new("/etc/x/dkim.pem");
        let err = Signer::from_pem(b"not a key", path, "s", "d.test").unwrap_err();
        assert!(matches!(err, KeyError::NotPem { .. }));
        assert!(err.to_string().contains("/etc/x/dkim.pem"), "{err}");
        let garbage = pem_encode("PRIVATE KEY", &[0x30, 0x03, 0x02, 0x01, 0x00]);
        let err = Signer::from_pem(garbage.as_bytes(), path, "s", "d.test").unwrap_err();
        assert!(matches!(err, KeyError::Unusable { .. }), "{err}");
        assert!(err.to_string().contains("dkim.key_file"), "{err}");
    }

    #[test]
    fn long_records_are_split_into_255_byte_strings() {
        let record = dns_record("s", "d.test", KeyAlgorithm::Rsa, &[7u8; 300]);
        let line = record.zone_line();
        let strings: Vec<&str> = line.split('"').skip(1).step_by(2).collect();
        assert_eq!(strings.len(), 2, "{line}");
        assert_eq!(strings[0].len(), 255);
        assert_eq!(strings.concat(), record.value);
    }

    #[test]
    fn no_fold_between_the_signature_value_and_its_semicolon() {
        assert_eq!(
            close_signature_value("DKIM-Signature: a=1; b=AB\r\n\tCD\r\n\t;\r\n".into()),
            "DKIM-Signature: a=1; b=AB\r\n\tCD;\r\n"
        );
        let unfolded = "DKIM-Signature: a=1; b=ABCD;\r\n";
        assert_eq!(close_signature_value(unfolded.into()), unfolded);
    }

    #[test]
    fn selectors() {
        assert!(validate_selector("anonrelay").is_ok());
        assert!(validate_selector("s2026.mail").is_ok());
        for bad in ["", "a b", "x;y", "-x", "a..b", "s."] {
            assert!(validate_selector(bad).is_err(), "{bad}");
        }
    }
}
