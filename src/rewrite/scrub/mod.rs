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
//! - the sender's display name (as their own From header gave it, in its
//!   usual variants: "Bob J. Realname", "Realname, Bob J.", "Bob Realname")
//!   where it stands beside their address — on a line that shows the
//!   address, or on the line before it (quote headers wrap there) — and in
//!   a plain-text signature block (the lines after `-- `). It becomes the
//!   conversation's display name, or the alias address. The same word
//!   elsewhere is someone's text and stays. A name match that overlaps an
//!   address (a name "bob" in `bob@…`) is no name: the address wins, so
//!   replacing one never breaks the other.

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
use std::ops::Range;

use address::AddressMatcher;
use names::NameMatcher;
use network::NetworkMatcher;

/// `text` with each of `ranges` (sorted, not overlapping, on character
/// boundaries) replaced by `replacement`.
pub fn replace_ranges(
    text: &str,
    ranges: impl IntoIterator<Item = Range<usize>>,
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
    /// The alias address as a percent-encoded link writes it.
    alias_in_url: String,
    /// The sender's addresses as [`canonical`] writes them.
    canonical: Vec<String>,
}

/// A sorted list of ranges, not overlapping, each with its replacement.
type Edits<'r> = Vec<(Range<usize>, &'r str)>;

/// Lines after a signature separator that count as the signature.
const SIGNATURE_LINES: usize = 10;

impl Scrubber {
    pub fn new(identity: Identity) -> Self {
        let addresses = identity
            .addresses
            .iter()
            .filter_map(|a| AddressMatcher::new(a))
            .collect();
        let names = NameMatcher::new(&identity.names);
        let network = NetworkMatcher::new(&identity.ips, &identity.hosts);
        let alias_in_url = identity.alias_address.replace('@', "%40");
        let canonical = identity.addresses.iter().map(|a| canonical(a)).collect();
        Self {
            identity,
            addresses,
            names,
            network,
            alias_in_url,
            canonical,
        }
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// Whether `address` (as found in a `mailto:` or an iCalendar
    /// `ORGANIZER`) is one of the sender's: compared as the relay compares
    /// addresses (ASCII letter case, IDN spellings, a trailing dot).
    pub fn is_sender(&self, address: &str) -> bool {
        let address = canonical(address);
        self.canonical.contains(&address)
    }

    /// Whether the text shows one of the sender's addresses.
    pub fn mentions_address(&self, text: &str) -> bool {
        self.addresses
            .iter()
            .any(|m| !m.find_all(text.as_bytes()).is_empty())
    }

    /// The addresses (with the replacement each takes: `%40` inside a
    /// percent-encoded link), IP address and host name in `text`.
    fn identifier_edits(&self, text: &str) -> Edits<'_> {
        let mut edits: Edits<'_> = Vec::new();
        for matcher in &self.addresses {
            for range in matcher.find_all(text.as_bytes()) {
                let in_url = text.get(range.clone()).is_some_and(|m| m.contains('%'));
                let replacement = if in_url {
                    self.alias_in_url.as_str()
                } else {
                    self.identity.alias_address.as_str()
                };
                edits.push((range, replacement));
            }
        }
        edits.extend(self.network.find_all(text).into_iter().map(|r| (r, HIDDEN)));
        without_overlaps(edits)
    }

    /// The display name's occurrences in `text` that are no part of an
    /// address, IP address or host name there.
    pub fn name_matches(&self, text: &str) -> Vec<Range<usize>> {
        let Some(names) = &self.names else {
            return Vec::new();
        };
        let found = names.find_all(text);
        if found.is_empty() {
            return found;
        }
        let identifiers = self.identifier_edits(text);
        found
            .into_iter()
            .filter(|name| {
                !identifiers
                    .iter()
                    .any(|(id, _)| id.start < name.end && name.start < id.end)
            })
            .collect()
    }

    /// Addresses, IP address and host name replaced, wherever they are.
    pub fn identifiers<'t>(&self, text: &'t str) -> Cow<'t, str> {
        self.apply(text, Vec::new())
    }

    /// The display name replaced wherever it is, for formats that decide
    /// themselves which of their lines stand beside an address (HTML).
    pub fn names<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let found = self.name_matches(text);
        if found.is_empty() {
            return Cow::Borrowed(text);
        }
        Cow::Owned(replace_ranges(text, found, &self.identity.name_replacement))
    }

    /// Text as a reader sees it (plain text, a header value, a parameter):
    /// the name beside an address or in a signature block, and addresses,
    /// IP address and host name everywhere, replaced in one pass.
    pub fn text<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let names = self.names_beside_addresses(text);
        self.apply(text, names)
    }

    /// `text` with the identifiers and these name ranges replaced, then the
    /// base64 tokens that spell the address removed.
    fn apply<'t>(&self, text: &'t str, names: Vec<Range<usize>>) -> Cow<'t, str> {
        let mut edits = self.identifier_edits(text);
        let replacement = self.identity.name_replacement.as_str();
        edits.extend(names.into_iter().map(|r| (r, replacement)));
        edits.sort_by_key(|(range, _)| range.start);
        let replaced = if edits.is_empty() {
            Cow::Borrowed(text)
        } else {
            let mut out = String::with_capacity(text.len());
            let mut copied = 0;
            for (range, replacement) in edits {
                out.push_str(&text[copied..range.start]);
                out.push_str(replacement);
                copied = range.end;
            }
            out.push_str(&text[copied..]);
            Cow::Owned(out)
        };
        match encoded::strip(&replaced, &self.identity.addresses) {
            Some(stripped) => Cow::Owned(stripped),
            None => replaced,
        }
    }

    /// The name's occurrences on a line that shows an address, on the line
    /// before one, or in a signature block.
    fn names_beside_addresses(&self, text: &str) -> Vec<Range<usize>> {
        let found = self.name_matches(text);
        if found.is_empty() {
            return found;
        }
        // Line starts, which lines show an address, which are a signature.
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
        let mut in_signature = vec![false; starts.len()];
        for (line, start) in starts.iter().enumerate() {
            let end = starts.get(line + 1).copied().unwrap_or(text.len());
            let content = text[*start..end].trim_end_matches(['\r', '\n']);
            if content == "-- " || content == "--" {
                let last = (line + SIGNATURE_LINES).min(starts.len() - 1);
                in_signature[line + 1..=last].fill(true);
            }
        }
        let beside = |offset: usize| {
            let line = line_of(offset);
            shows_address[line]
                || in_signature[line]
                || shows_address.get(line + 1).copied().unwrap_or(false)
        };
        found.into_iter().filter(|r| beside(r.start)).collect()
    }
}

/// Sorted by start; where two overlap, the one that starts first (and the
/// longer of two that start together) is kept.
fn without_overlaps(mut edits: Edits<'_>) -> Edits<'_> {
    edits.sort_by_key(|(range, _)| (range.start, std::cmp::Reverse(range.end)));
    let mut kept: Edits<'_> = Vec::with_capacity(edits.len());
    for edit in edits {
        if kept.last().is_none_or(|(last, _)| edit.0.start >= last.end) {
            kept.push(edit);
        }
    }
    kept
}

/// An address as the relay compares it: normalized by
/// [`crate::core::address::EmailAddress`] (IDN spellings, letter case of the
/// domain and of ASCII in the local part); else lowercased.
fn canonical(address: &str) -> String {
    let trimmed = address.trim().trim_end_matches('.');
    crate::core::address::EmailAddress::parse(trimmed)
        .map(|a| a.as_str().to_owned())
        .unwrap_or_else(|_| trimmed.to_lowercase())
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
    fn a_name_inside_the_address_leaves_the_address_whole() {
        for name in ["Bob", "bob.real", "Real", "sender", "Bob Realname"] {
            let s = Scrubber::new(Identity {
                names: vec![name.into()],
                ..bob().identity().clone()
            });
            assert_eq!(
                s.text("Write to bob.real@sender-mail.example"),
                "Write to bbbb@relay.example",
                "From name {name:?}"
            );
            assert_eq!(
                s.names("bob.real@sender-mail.example"),
                "bob.real@sender-mail.example",
                "From name {name:?}"
            );
        }
    }

    #[test]
    fn a_signature_block_loses_the_name_without_an_address() {
        let text = "See you.\r\n\r\n-- \r\nBob Realname\r\nSales, ACME\r\n+47 555 0100\r\n";
        assert_eq!(
            bob().text(text),
            "See you.\r\n\r\n-- \r\nNight Owl\r\nSales, ACME\r\n+47 555 0100\r\n"
        );
        assert_eq!(
            bob().text("Bob Realname wrote this"),
            "Bob Realname wrote this"
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
        assert!(s.is_sender("bob.real@sender-mail.example."));
        let idn = Scrubber::new(Identity {
            addresses: vec![
                "carol@bücher.example".into(),
                "carol@xn--bcher-kva.example".into(),
            ],
            ..Identity::default()
        });
        assert!(idn.is_sender("Carol@XN--BCHER-KVA.example"));
        assert!(idn.is_sender("carol@BÜCHER.example"));
        assert!(!s.is_sender("bob.real@sender-mail.example.org"));
        assert!(s.mentions_address("x mailto:bob.real%40sender-mail.example"));
    }
}
