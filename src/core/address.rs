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

/// A participant's real mailbox, normalized for comparison: ASCII letters of
/// the local part are lowercased (providers treat local parts
/// case-insensitively in practice and the front-end registers addresses
/// that way) and the domain is mapped by IDNA (UTS 46) to its Unicode form,
/// so `carol@BÜCHER.example`, `carol@bücher.example` and
/// `carol@xn--bcher-kva.example` are one address. Only plain `local@domain`
/// forms are accepted: no quoted local parts, comments or routes, so the
/// value is safe to interpolate into SMTP commands.
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
        let domain = canonical_domain(domain).ok_or(AddressError::BadDomain)?;
        if !domain.contains('.') {
            return Err(AddressError::BadDomain);
        }
        // Only ASCII letters fold in the local part: Unicode lowercasing
        // can turn one mailbox into another (KELVIN SIGN becomes `k`).
        Ok(Self(format!("{}@{domain}", local.to_ascii_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn parts(&self) -> (&str, &str) {
        // parse() made sure there is exactly one `@`.
        self.0.rsplit_once('@').unwrap_or((&self.0, ""))
    }

    /// The address with its domain in A-labels (`xn--…`), when that differs
    /// from the canonical form: what a client without SMTPUTF8 writes.
    pub fn ascii_domain_form(&self) -> Option<String> {
        let (local, domain) = self.parts();
        if domain.is_ascii() {
            return None;
        }
        let ascii = ascii_domain(domain)?;
        Some(format!("{local}@{ascii}"))
    }

    /// The spelling for an SMTP envelope: the A-label domain when the local
    /// part is ASCII, so a server without SMTPUTF8 takes it; an address
    /// with a non-ASCII local part needs SMTPUTF8 anyway and stays as it is.
    pub fn envelope_form(&self) -> String {
        let (local, _) = self.parts();
        match self.ascii_domain_form() {
            Some(ascii) if local.is_ascii() => ascii,
            _ => self.0.clone(),
        }
    }
}

/// Every spelling of `address` a message may hold: the canonical form and,
/// when the domain is internationalized, its A-label form. For scrubbers
/// that must find the address in text whichever form the client wrote.
pub fn domain_forms(address: &EmailAddress) -> Vec<String> {
    let mut forms = vec![address.as_str().to_owned()];
    forms.extend(address.ascii_domain_form());
    forms
}

/// The envelope spelling of a stored address (see
/// [`EmailAddress::envelope_form`]); text that is no address we would
/// store is returned unchanged.
pub fn envelope_form(address: &str) -> std::borrow::Cow<'_, str> {
    match EmailAddress::parse(address) {
        Ok(parsed) => std::borrow::Cow::Owned(parsed.envelope_form()),
        Err(_) => std::borrow::Cow::Borrowed(address),
    }
}

/// UTS 46 processing as mail wants it: letters, digits and hyphens only
/// (STD3), no hyphen first or last in a label, DNS lengths enforced.
fn uts46_to_ascii(domain: &str) -> Option<String> {
    use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};
    Uts46::new()
        .to_ascii(
            domain.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::CheckFirstLast,
            DnsLength::Verify,
        )
        .ok()
        .map(|ascii| ascii.into_owned())
}

/// The canonical form of a mail domain: mapped by UTS 46 (case folded,
/// normalized) and written with U-labels, the form existing databases
/// store. A-label input (`xn--bcher-kva.example`) becomes `bücher.example`.
/// None for a name that is not a valid IDNA domain (a broken `xn--` label,
/// a disallowed character, a label or name too long).
pub fn canonical_domain(domain: &str) -> Option<String> {
    use idna::uts46::{AsciiDenyList, Hyphens, Uts46};
    let ascii = uts46_to_ascii(domain)?;
    let (unicode, result) = Uts46::new().to_unicode(
        ascii.as_bytes(),
        AsciiDenyList::STD3,
        Hyphens::CheckFirstLast,
    );
    result.ok()?;
    Some(unicode.into_owned())
}

/// The A-label form (`xn--…`) of a domain, lowercase; None if it is no
/// valid IDNA domain.
pub fn ascii_domain(domain: &str) -> Option<String> {
    uts46_to_ascii(domain.strip_suffix('.').unwrap_or(domain))
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_label_and_u_label_spellings_are_one_address() {
        for spelling in [
            "carol@bücher.example",
            "Carol@BÜCHER.example",
            "carol@xn--bcher-kva.example",
            "CAROL@XN--BCHER-KVA.EXAMPLE.",
        ] {
            assert_eq!(
                EmailAddress::parse(spelling).unwrap().as_str(),
                "carol@bücher.example",
                "{spelling}"
            );
        }
        let carol = EmailAddress::parse("carol@xn--bcher-kva.example").unwrap();
        assert_eq!(
            carol.ascii_domain_form().as_deref(),
            Some("carol@xn--bcher-kva.example")
        );
        assert_eq!(
            domain_forms(&carol),
            ["carol@bücher.example", "carol@xn--bcher-kva.example"]
        );
        assert_eq!(carol.envelope_form(), "carol@xn--bcher-kva.example");
        // A non-ASCII local part needs SMTPUTF8 anyway: left in its form.
        let jorg = EmailAddress::parse("jörg@bücher.example").unwrap();
        assert_eq!(jorg.envelope_form(), "jörg@bücher.example");
        assert_eq!(domain_forms(&jorg).len(), 2);
        // An ASCII domain has one spelling.
        let bob = EmailAddress::parse("bob@partner.example").unwrap();
        assert_eq!(bob.ascii_domain_form(), None);
        assert_eq!(domain_forms(&bob), ["bob@partner.example"]);
        assert_eq!(
            envelope_form("carol@bücher.example"),
            "carol@xn--bcher-kva.example"
        );
        assert_eq!(envelope_form("not an address"), "not an address");
        assert_eq!(
            canonical_domain("XN--BCHER-KVA.example").as_deref(),
            Some("bücher.example")
        );
        assert_eq!(
            ascii_domain("Bücher.example.").as_deref(),
            Some("xn--bcher-kva.example")
        );
    }

    #[test]
    fn invalid_idna_is_a_bad_domain() {
        let long_label = format!("a@{}.example", "ü".repeat(60));
        for bad in [
            // Punycode that decodes to nothing, or to plain ASCII.
            "a@xn--.example",
            "a@xn--abc-.example",
            // Hyphen first or last in a label, an underscore, an empty label.
            "a@-bücher.example",
            "a@bücher-.example",
            "a@bü_cher.example",
            "a@bücher..example",
            // A label whose A-label form passes 63 octets.
            long_label.as_str(),
        ] {
            assert_eq!(
                EmailAddress::parse(bad),
                Err(AddressError::BadDomain),
                "{bad}"
            );
        }
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
        let signer = crate::core::tokens::ServerSecret::from_bytes([1; 32]).verp_signer();
        let local = signer.local_part(&"a".repeat(MAX_ALIAS_LEN), 4_000_000_000, 14);
        assert!(local.len() <= 64, "{local}");
        assert!(!is_alias_shape("has.dot.in.it"));
        assert!(!is_alias_shape("bounce+token"));
    }
}
