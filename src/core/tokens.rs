//! Keyed tokens that let the relay remember things without storing them:
//! reversible Message-ID tokens (threading) and signed VERP bounce addresses.

use std::path::Path;
use std::sync::OnceLock;

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use data_encoding::{Encoding, Specification};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::secret_file::{self, SecretFileError};

type HmacSha256 = Hmac<Sha256>;

/// Lowercase, unpadded RFC 4648 base32: safe in local parts and in
/// Message-IDs, and survives systems that lowercase addresses.
pub fn base32() -> &'static Encoding {
    static ENCODING: OnceLock<Encoding> = OnceLock::new();
    ENCODING.get_or_init(|| {
        let mut spec = Specification::new();
        spec.symbols.push_str("abcdefghijklmnopqrstuvwxyz234567");
        spec.translate.from.push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZ");
        spec.translate.to.push_str("abcdefghijklmnopqrstuvwxyz");
        // The specification is a constant known to be valid.
        spec.encoding()
            .unwrap_or_else(|_| data_encoding::BASE32_NOPAD.clone())
    })
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("server secret: {0}")]
    File(#[from] SecretFileError),
    #[error("server secret {path} must hold 64 hex characters (32 bytes)")]
    Malformed { path: String },
}

/// The one server secret (32 random bytes, hex in a 0600 file). Purpose keys
/// are derived from it so one leaked derived key does not expose the others.
pub struct ServerSecret([u8; 32]);

impl ServerSecret {
    /// Reads the secret, or creates it (owner-only, fsynced) where none
    /// exists yet.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretError> {
        match secret_file::read(path) {
            Ok(text) => {
                let bytes = data_encoding::HEXLOWER_PERMISSIVE
                    .decode(text.trim_ascii())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| SecretError::Malformed {
                        path: path.display().to_string(),
                    })?;
                Ok(Self(bytes))
            }
            Err(SecretFileError::Missing { .. }) => {
                let secret = Self::random();
                let text = format!("{}\n", data_encoding::HEXLOWER.encode(&secret.0));
                secret_file::create(path, text.as_bytes())?;
                Ok(secret)
            }
            Err(err) => Err(err.into()),
        }
    }

    pub fn random() -> Self {
        Self(Self::random_bytes())
    }

    /// 32 bytes from the thread-local CSPRNG (ChaCha, seeded by the OS).
    pub fn random_bytes() -> [u8; 32] {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        bytes
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    fn derive(&self, purpose: &str) -> [u8; 32] {
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    pub fn message_id_cipher(&self) -> MessageIdCipher {
        MessageIdCipher::new(&self.derive("anonrelay message-id v1"))
    }

    pub fn verp_signer(&self) -> VerpSigner {
        VerpSigner {
            key: self.derive("anonrelay verp v1"),
        }
    }
}

/// Deterministic authenticated encryption of Message-ID contents.
///
/// AES-GCM-SIV with a fixed nonce is deterministic by design (the same id
/// always maps to the same token, so threading works) and reveals nothing
/// but equality. The conversation id is the associated data, so a token is
/// only ever decrypted inside the conversation it was minted for.
pub struct MessageIdCipher {
    cipher: Aes256GcmSiv,
}

/// Ids longer than this are dropped rather than tokenized (RFC 5322 lines
/// stay short; real ids are well under 100 bytes).
pub const MAX_MESSAGE_ID_LEN: usize = 200;

impl MessageIdCipher {
    fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256GcmSiv::new(key.into()),
        }
    }

    fn nonce() -> &'static Nonce {
        static NONCE: [u8; 12] = [0; 12];
        Nonce::from_slice(&NONCE)
    }

    /// `id` is the text between `<` and `>`.
    pub fn seal(&self, id: &str, conversation: &str) -> Option<String> {
        if id.len() > MAX_MESSAGE_ID_LEN {
            return None;
        }
        let sealed = self
            .cipher
            .encrypt(
                Self::nonce(),
                Payload {
                    msg: id.as_bytes(),
                    aad: conversation.as_bytes(),
                },
            )
            .ok()?;
        Some(base32().encode(&sealed))
    }

    pub fn open(&self, token: &str, conversation: &str) -> Option<String> {
        let sealed = base32().decode(token.as_bytes()).ok()?;
        let plain = self
            .cipher
            .decrypt(
                Self::nonce(),
                Payload {
                    msg: &sealed,
                    aad: conversation.as_bytes(),
                },
            )
            .ok()?;
        String::from_utf8(plain).ok()
    }
}

/// Signs VERP bounce addresses `bounce+ALIAS.EXPIRY.MAC@alias-domain`.
/// ALIAS is the alias the bounce notice will come from (already visible to
/// the recipient), EXPIRY a day number; no database row is needed.
pub struct VerpSigner {
    key: [u8; 32],
}

pub const VERP_PREFIX: &str = "bounce+";
const VERP_MAC_BYTES: usize = 10;
const SECONDS_PER_DAY: u64 = 86_400;

impl VerpSigner {
    fn mac(&self, alias: &str, expiry_day: u64) -> [u8; VERP_MAC_BYTES] {
        let mut mac =
            <HmacSha256 as Mac>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(alias.as_bytes());
        mac.update(b".");
        mac.update(&expiry_day.to_be_bytes());
        let full = mac.finalize().into_bytes();
        let mut out = [0u8; VERP_MAC_BYTES];
        out.copy_from_slice(&full[..VERP_MAC_BYTES]);
        out
    }

    /// Local part for an envelope sender valid for `valid_days` from `now_unix`.
    pub fn local_part(&self, alias: &str, now_unix: u64, valid_days: u64) -> String {
        let expiry_day = now_unix / SECONDS_PER_DAY + valid_days;
        let mac = self.mac(alias, expiry_day);
        format!(
            "{VERP_PREFIX}{alias}.{expiry_day}.{}",
            base32().encode(&mac)
        )
    }

    /// Returns the alias a bounce address refers to, if the MAC is ours and
    /// the address has not expired.
    pub fn verify(&self, local_part: &str, now_unix: u64) -> Option<String> {
        let rest = local_part.get(..VERP_PREFIX.len())?;
        if !rest.eq_ignore_ascii_case(VERP_PREFIX) {
            return None;
        }
        let mut parts = local_part[VERP_PREFIX.len()..].split('.');
        let (alias, day, mac) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let alias = alias.to_ascii_lowercase();
        let expiry_day: u64 = day.parse().ok()?;
        let given = base32().decode(mac.as_bytes()).ok()?;
        let expected = self.mac(&alias, expiry_day);
        let valid: bool =
            subtle::ConstantTimeEq::ct_eq(given.as_slice(), expected.as_slice()).into();
        (valid && now_unix / SECONDS_PER_DAY <= expiry_day).then_some(alias)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_tokens_round_trip_only_in_their_conversation() {
        let cipher = ServerSecret::from_bytes([7; 32]).message_id_cipher();
        let token = cipher.seal("CAF1234abc@mail.gmail.com", "conv-1").unwrap();
        assert_eq!(
            token,
            cipher.seal("CAF1234abc@mail.gmail.com", "conv-1").unwrap()
        );
        assert!(!token.contains("gmail"));
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_eq!(
            cipher.open(&token, "conv-1").unwrap(),
            "CAF1234abc@mail.gmail.com"
        );
        assert_eq!(
            cipher.open(&token.to_ascii_uppercase(), "conv-1").unwrap(),
            "CAF1234abc@mail.gmail.com"
        );
        assert!(cipher.open(&token, "conv-2").is_none());
        let other = ServerSecret::from_bytes([8; 32]).message_id_cipher();
        assert!(other.open(&token, "conv-1").is_none());
        assert!(cipher
            .seal(&"x".repeat(MAX_MESSAGE_ID_LEN + 1), "c")
            .is_none());
    }

    #[test]
    fn verp_addresses_verify_and_expire() {
        let signer = ServerSecret::from_bytes([1; 32]).verp_signer();
        let now = 1_800_000_000;
        let local = signer.local_part("abcdefghijklmnopqrst", now, 30);
        assert!(local.len() <= 64, "{local}");
        assert_eq!(
            signer.verify(&local, now).as_deref(),
            Some("abcdefghijklmnopqrst")
        );
        assert_eq!(
            signer.verify(&local.to_ascii_uppercase(), now).as_deref(),
            Some("abcdefghijklmnopqrst")
        );
        assert!(signer.verify(&local, now + 31 * SECONDS_PER_DAY).is_none());
        let forged = local.replace("abcdefghijklmnopqrst", "abcdefghijklmnopqrsa");
        assert!(signer.verify(&forged, now).is_none());
        assert!(signer.verify("bounce+x", now).is_none());
        assert!(signer.verify("", now).is_none());
    }

    #[test]
    fn secret_file_is_created_private_and_reloaded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("anonrelay-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secret");
        let _ = std::fs::remove_file(&path);
        let first = ServerSecret::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let second = ServerSecret::load_or_create(&path).unwrap();
        assert_eq!(first.0, second.0);
        std::fs::write(&path, "nothex").unwrap();
        assert!(matches!(
            ServerSecret::load_or_create(&path),
            Err(SecretError::Malformed { .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            ServerSecret::load_or_create(&path),
            Err(SecretError::File(SecretFileError::Exposed {
                mode: 0o644,
                ..
            }))
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
