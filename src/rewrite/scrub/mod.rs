//! Format-aware scrubbers: what of the sender's identity could show in the
//! forwarded message, and the text-level rules that remove it. Each format
//! (plain text, HTML, iCalendar, header values) calls [`Scrubber`] on text
//! it has decoded the way a reader's client would.
//!
//! What is looked for, in every form a reader could be shown it:
//! - the sender's real address, in each of its spellings (Unicode and
//!   A-label domain), anywhere: it becomes the sender's alias address;
//! - the SMTP client's IP address and host name, anywhere: `[hidden]`;
//! - link tokens that spell the address in base64 (Google Calendar's
//!   `eid` and `tok`), anywhere: removed ([`encoded`]);
//! - the sender's display name (as their own From header gave it) where it
//!   stands beside their address: on a line that shows the address, or on
//!   the line before it (quote headers and signatures wrap there). It
//!   becomes the conversation's display name, or the alias address. The
//!   same word elsewhere is someone's text and stays.

pub mod address;
pub mod armor;
pub mod css;
pub mod encoded;
pub mod flowed;
pub mod html;
pub mod ical;
pub mod names;
pub mod network;

use std::borrow::Cow;
use std::net::IpAddr;

use address::AddressMatcher;
use names::NameMatcher;
use network::NetworkMatcher;

/// `text` with each of `ranges` (sorted, not overlapping, on character
/// boundaries) replaced by `replacement`.
pub fn replace_ranges(
    text: &str,
    ranges: impl IntoIterator<Item = std::ops::Range<usize>>,
    replacement: &str,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for range in ranges {
        out.push_str(&text[copied..range.start]);
        out.push_str(replacement);
        copied = range.end;
    }
    out.push_str(&text[copied..]);
    out
}

/// What stands for the client's IP address and host name.
pub const HIDDEN: &str = "[hidden]";

/// Who the sender is, as far as the scrubbers need to know.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// Every spelling of the sender's real address (e.g. the Unicode and
    /// the A-label form of an internationalized domain).
    pub addresses: Vec<String>,
    /// What an address becomes: `alias@alias-domain`.
    pub alias_address: String,
    /// The sender's display names, as their own From header gives them.
    pub names: Vec<String>,
    /// What a display name becomes.
    pub name_replacement: String,
    /// The SMTP client's address (memory only, for this message).
    pub ips: Vec<IpAddr>,
    /// The SMTP client's EHLO name.
    pub hosts: Vec<String>,
}

/// The scrubbing rules for one message, built once.
pub struct Scrubber {
    identity: Identity,
    addresses: Vec<AddressMatcher>,
    names: Option<NameMatcher>,
    network: NetworkMatcher,
}

impl Scrubber {
    pub fn new(identity: Identity) -> Self {
        let addresses = identity
            .addresses
            .iter()
            .filter_map(|a| AddressMatcher::new(a))
            .collect();
        let names = NameMatcher::new(&identity.names);
        let network = NetworkMatcher::new(&identity.ips, &identity.hosts);
        Self {
            identity,
            addresses,
            names,
            network,
        }
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Whether `address` (as found in a `mailto:` or an iCalendar
    /// `ORGANIZER`) is one of the sender's spellings. ASCII letter case is
    /// ignored, as everywhere addresses are compared.
    pub fn is_sender(&self, address: &str) -> bool {
        let address = address.trim().trim_end_matches('.');
        self.identity.addresses.iter().any(|own| {
            own.eq_ignore_ascii_case(address) || own.to_lowercase() == address.to_lowercase()
        })
    }

    /// Whether the text shows one of the sender's addresses.
    pub fn mentions_address(&self, text: &str) -> bool {
        self.addresses
            .iter()
            .any(|m| !m.find_all(text.as_bytes()).is_empty())
    }

    /// Addresses, IP address and host name replaced, wherever they are.
    pub fn identifiers<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let mut current = Cow::Borrowed(text);
        for matcher in &self.addresses {
            if let Some(replaced) = matcher.replace_all(&current, &self.identity.alias_address) {
                current = Cow::Owned(replaced);
            }
        }
        if let Some(replaced) = self.network.replace_all(&current, HIDDEN) {
            current = Cow::Owned(replaced);
        }
        if let Some(stripped) = encoded::strip(&current, &self.identity.addresses) {
            current = Cow::Owned(stripped);
        }
        current
    }

    /// The display name replaced wherever it is, for formats that decide
    /// themselves which of their lines stand beside an address (HTML).
    pub fn names<'t>(&self, text: &'t str) -> Cow<'t, str> {
        match self
            .names
            .as_ref()
            .and_then(|n| n.replace_all(text, &self.identity.name_replacement))
        {
            Some(replaced) => Cow::Owned(replaced),
            None => Cow::Borrowed(text),
        }
    }

    /// Text as a reader sees it (plain text, a header value, a parameter):
    /// names on a line showing an address and on the line before it, then
    /// addresses, IP address and host name everywhere.
    pub fn text<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let named = self.names_beside_addresses(text);
        match self.identifiers(&named) {
            Cow::Borrowed(_) => named,
            Cow::Owned(replaced) => Cow::Owned(replaced),
        }
    }

    fn names_beside_addresses<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let Some(names) = &self.names else {
            return Cow::Borrowed(text);
        };
        let found = names.find_all(text);
        if found.is_empty() {
            return Cow::Borrowed(text);
        }
        // Line starts, and which lines show an address.
        let starts: Vec<usize> = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        let line_of = |offset: usize| starts.partition_point(|&s| s <= offset) - 1;
        let mut shows_address = vec![false; starts.len()];
        for matcher in &self.addresses {
            for range in matcher.find_all(text.as_bytes()) {
                shows_address[line_of(range.start)] = true;
            }
        }
        let beside = |offset: usize| {
            let line = line_of(offset);
            shows_address[line] || shows_address.get(line + 1).copied().unwrap_or(false)
        };
        let kept: Vec<_> = found.into_iter().filter(|r| beside(r.start)).collect();
        if kept.is_empty() {
            return Cow::Borrowed(text);
        }
        Cow::Owned(replace_ranges(text, kept, &self.identity.name_replacement))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn bob() -> Scrubber {
        Scrubber::new(Identity {
            addresses: vec!["bob.real@sender-mail.example".into()],
            alias_address: "bbbb@relay.example".into(),
            names: vec!["Bob Realname".into()],
            name_replacement: "Night Owl".into(),
            ips: vec!["203.0.113.77".parse().unwrap()],
            hosts: vec!["bobs-laptop.sender-mail.example".into()],
        })
    }

    #[test]
    fn names_go_only_beside_an_address() {
        let text = "Bob Realname is my name.\r\n\r\nOn Tue, Bob Realname <\r\nbob.real@sender-mail.example> wrote:\r\n> hi\r\n";
        assert_eq!(
            bob().text(text),
            "Bob Realname is my name.\r\n\r\nOn Tue, Night Owl <\r\nbbbb@relay.example> wrote:\r\n> hi\r\n"
        );
        assert_eq!(
            bob().text("Von: Bob Realname <bob.real%40sender-mail.example>"),
            "Von: Night Owl <bbbb%40relay.example>"
        );
    }

    #[test]
    fn network_identifiers_anywhere() {
        assert_eq!(
            bob().text("sent from 203.0.113.77 (bobs-laptop.sender-mail.example)"),
            "sent from [hidden] ([hidden])"
        );
        assert!(matches!(bob().text("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn sender_spellings_compare_without_case() {
        let s = bob();
        assert!(s.is_sender("Bob.Real@Sender-Mail.example"));
        assert!(!s.is_sender("bob.real@sender-mail.example.org"));
        assert!(s.mentions_address("x mailto:bob.real%40sender-mail.example"));
    }
}
