//! Domain names, participants' real addresses and the recipient policy of the
//! MX: what a RCPT path may look like before we even look up an alias.

use std::fmt;

/// A lowercase DNS host name (LDH labels). Used for the alias domain and our
/// own host name, which both end up in headers we write.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct Domain(String);

impl Domain {
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.strip_suffix('.').unwrap_or(text);
        if text.is_empty() || text.len() > 253 {
            return None;
        }
        let valid_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        text.split('.')
            .all(valid_label)
            .then(|| Self(text.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Domain {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value).ok_or_else(|| format!("`{value}` is not a valid domain name"))
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("address is empty")]
    Empty,
    #[error("address is longer than 254 bytes")]
    TooLong,
    #[error("address must contain exactly one @ with text on both sides")]
    Shape,
    #[error("address contains a control character, space, quote or bracket")]
    ForbiddenCharacter,
    #[error("address domain is not a valid domain name")]
    BadDomain,
}

/// A participant's real mailbox, normalized for comparison: the whole
/// address is lowercased (providers treat local parts case-insensitively in
/// practice and the front-end registers addresses that way). Only plain
/// `local@domain` forms are accepted: no quoted local parts, comments or
/// routes, so the value is safe to interpolate into SMTP commands.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(AddressError::Empty);
        }
        if text.len() > 254 {
            return Err(AddressError::TooLong);
        }
        if text
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "\"<>()[],;:\\".contains(c))
        {
            return Err(AddressError::ForbiddenCharacter);
        }
        let (local, domain) = text.rsplit_once('@').ok_or(AddressError::Shape)?;
        // `example.org.` is `example.org`: one mailbox, one stored value.
        let domain = domain.strip_suffix('.').unwrap_or(domain);
        if local.is_empty() || domain.is_empty() || local.contains('@') || local.len() > 64 {
            return Err(AddressError::Shape);
        }
        let ascii_domain_ok = Domain::parse(domain).is_some();
        // SMTPUTF8 domains are accepted in their Unicode form.
        let utf8_domain_ok =
            !domain.is_ascii() && domain.split('.').all(|l| !l.is_empty() && l.len() <= 63);
        if !(ascii_domain_ok || utf8_domain_ok) || !domain.contains('.') {
            return Err(AddressError::BadDomain);
        }
        // Only ASCII letters fold in the local part: Unicode lowercasing
        // can turn one mailbox into another (KELVIN SIGN becomes `k`).
        // Domains fold fully, as IDNA mapping does.
        Ok(Self(format!(
            "{}@{}",
            local.to_ascii_lowercase(),
            domain.to_lowercase()
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Number of base32 characters in an alias: 20 × 5 = 100 bits of entropy.
pub const ALIAS_LEN: usize = 20;
const ALIAS_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A fresh alias local part from the OS CSPRNG.
pub fn random_alias() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..ALIAS_LEN)
        .map(|_| ALIAS_ALPHABET[rng.random_range(0..ALIAS_ALPHABET.len())] as char)
        .collect()
}

/// Longest alias: its bounce address `bounce+ALIAS.DAY.MAC` (7 + 1 + 5 +
/// 1 + 16 characters around it) must stay within RFC 5321's 64-octet local
/// part.
pub const MAX_ALIAS_LEN: usize = 34;

/// Could this (already lowercased) local part be an alias? A cheap filter
/// before the database: DESIGN allows aliases of lowercase `[a-z0-9]`; the
/// ones we mint are 20 base32 characters, others may be provisioned.
pub fn is_alias_shape(local: &str) -> bool {
    (8..=MAX_ALIAS_LEN).contains(&local.len())
        && local
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// What a RCPT path points at, decided from the raw path text alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptTarget {
    /// A well-formed local part on the alias domain (lowercased); may still be unknown.
    Local(String),
    /// Anything that would make us a relay or that hides a route.
    RelayDenied,
}

/// Classifies the text between `<` and `>` of a RCPT command. We look at the
/// raw text rather than a parser's normalized result, because parsers strip
/// source routes and unquote local parts: exactly what an open-relay probe
/// hides behind.
pub fn classify_rcpt_path(path: &str, alias_domain: &Domain) -> RcptTarget {
    let forbidden = path.starts_with('@')
        || path.chars().any(|c| {
            matches!(c, '"' | '%' | '!' | ':' | '[' | ']' | '\\' | ',')
                || c.is_whitespace()
                || c.is_control()
        });
    if forbidden {
        return RcptTarget::RelayDenied;
    }
    let Some((local, domain)) = path.split_once('@') else {
        return RcptTarget::RelayDenied;
    };
    if domain.contains('@') || local.is_empty() {
        return RcptTarget::RelayDenied;
    }
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if !domain.eq_ignore_ascii_case(alias_domain.as_str()) {
        return RcptTarget::RelayDenied;
    }
    RcptTarget::Local(local.to_ascii_lowercase())
}

/// Extracts the raw path of a `RCPT TO:<path>` line (without the brackets).
pub fn raw_rcpt_path(line: &[u8]) -> Option<&str> {
    let line = std::str::from_utf8(line).ok()?;
    let start = line.find('<')? + 1;
    let end = start + line[start..].find('>')?;
    Some(&line[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain() -> Domain {
        Domain::parse("relay.example").unwrap()
    }

    #[test]
    fn domains() {
        assert_eq!(
            Domain::parse("Relay.Example.").unwrap().as_str(),
            "relay.example"
        );
        for bad in [
            "",
            "-a.example",
            "a..b",
            "a b",
            "a_b.example",
            "[127.0.0.1]",
        ] {
            assert!(Domain::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn email_addresses_normalize_and_refuse_injection() {
        assert_eq!(
            EmailAddress::parse(" Bob.Real@Sender-Mail.Example ")
                .unwrap()
                .as_str(),
            "bob.real@sender-mail.example"
        );
        assert!(EmailAddress::parse("jörg@bücher.example").is_ok());
        assert_eq!(
            EmailAddress::parse("Bob@Partner.Example.")
                .unwrap()
                .as_str(),
            "bob@partner.example"
        );
        assert_eq!(
            EmailAddress::parse("\u{212A}elvin@B\u{00DC}CHER.example")
                .unwrap()
                .as_str(),
            "\u{212A}elvin@bücher.example",
            "a non-ASCII local part keeps its letters"
        );
        for bad in [
            "",
            "a",
            "a@",
            "@b.example",
            "a@b@c.example",
            "a@b.example\r\nRCPT TO:<x@y>",
            "a b@c.example",
            "\"a@b\"@c.example",
            "a@[127.0.0.1]",
            "a@localhost",
            "a<b>@c.example",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}@b.example", "a".repeat(65));
        assert_eq!(EmailAddress::parse(&long), Err(AddressError::Shape));
    }

    #[test]
    fn aliases_are_random_and_well_formed() {
        let a = random_alias();
        let b = random_alias();
        assert_ne!(a, b);
        assert!(is_alias_shape(&a) && is_alias_shape(&b));
        assert!(!is_alias_shape("short"));
        assert!(is_alias_shape(&"a".repeat(MAX_ALIAS_LEN)));
        assert!(!is_alias_shape(&"a".repeat(MAX_ALIAS_LEN + 1)));
        // The longest alias still makes an RFC 5321 local part for bounces.
        let signer = crate::tokens::ServerSecret::from_bytes([1; 32]).verp_signer();
        let local = signer.local_part(&"a".repeat(MAX_ALIAS_LEN), 4_000_000_000, 14);
        assert!(local.len() <= 64, "{local}");
        assert!(!is_alias_shape("has.dot.in.it"));
        assert!(!is_alias_shape("bounce+token"));
    }

    #[test]
    fn rcpt_policy() {
        let d = domain();
        assert_eq!(
            classify_rcpt_path("AbC@Relay.Example", &d),
            RcptTarget::Local("abc".into())
        );
        for probe in [
            "victim@other.example",
            "victim%other.example@relay.example",
            "other.example!victim@relay.example",
            "@relay.example:victim@other.example",
            "@other.example:abc@relay.example",
            "\"victim@other.example\"@relay.example",
            "victim@other.example@relay.example",
            "abc@[127.0.0.1]",
            "abc",
            "",
            "abc@relay.example.other.example",
        ] {
            assert_eq!(
                classify_rcpt_path(probe, &d),
                RcptTarget::RelayDenied,
                "{probe}"
            );
        }
        assert_eq!(
            raw_rcpt_path(b"RCPT TO:<a@b> NOTIFY=NEVER\r\n"),
            Some("a@b")
        );
        assert_eq!(raw_rcpt_path(b"RCPT TO:a@b\r\n"), None);
    }
}
