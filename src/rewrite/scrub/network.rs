//! The SMTP client's IP address and host name (its EHLO name) in text: the
//! sender's network location, which a reader must not learn from the body
//! either. IPv6 is recognized in any textual form (compressed or not, upper
//! or lower case, IPv4-mapped), by parsing candidate tokens.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

pub struct NetworkMatcher {
    ipv4: Option<Ipv4Addr>,
    ipv6: Option<Ipv6Addr>,
    ipv4_text: String,
    hosts: Vec<String>,
}

fn is_host_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

impl NetworkMatcher {
    /// Host names are looked for only when they are fully qualified (a
    /// dot, not an address literal, not `localhost`): a bare word would
    /// hit ordinary text.
    pub fn new(ips: &[IpAddr], hosts: &[String]) -> Self {
        let mut ipv4 = None;
        let mut ipv6 = None;
        for ip in ips {
            match ip {
                IpAddr::V4(v4) => ipv4 = Some(*v4),
                IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                    Some(v4) => ipv4 = Some(v4),
                    None => ipv6 = Some(*v6),
                },
            }
        }
        let hosts = hosts
            .iter()
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| {
                h.contains('.')
                    && h.len() >= 4
                    && h.parse::<IpAddr>().is_err()
                    && !h.starts_with('[')
                    && h.bytes().all(|b| is_host_char(b) || b == b'.')
                    && h != "localhost.localdomain"
            })
            .collect();
        Self {
            ipv4,
            ipv6,
            ipv4_text: ipv4.map(|ip| ip.to_string()).unwrap_or_default(),
            hosts,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ipv4.is_none() && self.ipv6.is_none() && self.hosts.is_empty()
    }

    /// Every occurrence, sorted, not overlapping.
    pub fn find_all(&self, text: &str) -> Vec<Range<usize>> {
        let bytes = text.as_bytes();
        let mut found = Vec::new();
        if self.ipv4.is_some() {
            found.extend(self.find_ipv4(bytes));
        }
        if self.ipv6.is_some() || self.ipv4.is_some() {
            found.extend(self.find_ipv6(text));
        }
        for host in &self.hosts {
            found.extend(find_ci(bytes, host.as_bytes()));
        }
        found.sort_by_key(|r| (r.start, std::cmp::Reverse(r.end)));
        let mut merged: Vec<Range<usize>> = Vec::with_capacity(found.len());
        for range in found {
            match merged.last_mut() {
                Some(last) if range.start < last.end => last.end = last.end.max(range.end),
                _ => merged.push(range),
            }
        }
        merged
    }

    fn find_ipv4(&self, bytes: &[u8]) -> Vec<Range<usize>> {
        let needle = self.ipv4_text.as_bytes();
        let mut found = Vec::new();
        let mut at = 0;
        while let Some(offset) = find_from(bytes, needle, at) {
            let end = offset + needle.len();
            let digit_before = offset > 0 && bytes[offset - 1].is_ascii_digit();
            let digit_after = bytes.get(end).is_some_and(u8::is_ascii_digit);
            if !digit_before && !digit_after {
                found.push(offset..end);
            }
            at = offset + 1;
        }
        found
    }

    /// Tokens of hex digits, colons and dots with two colons or more that
    /// parse as this IPv6 address (or as the IPv4 address mapped).
    fn find_ipv6(&self, text: &str) -> Vec<Range<usize>> {
        let bytes = text.as_bytes();
        let is_token = |b: u8| b.is_ascii_hexdigit() || b == b':' || b == b'.';
        let mut found = Vec::new();
        let mut pos = 0;
        while pos < bytes.len() {
            if !is_token(bytes[pos]) {
                pos += 1;
                continue;
            }
            let start = pos;
            while pos < bytes.len() && is_token(bytes[pos]) {
                pos += 1;
            }
            let token = &text[start..pos];
            if let Some(hit) = self.ipv6_in(token) {
                found.push(start + hit.start..start + hit.end);
            }
        }
        found
    }

    /// Where in a token of hex digits, colons and dots this IPv6 address
    /// (or the IPv4 address mapped) stands, if it does. The token may carry
    /// hex letters or a colon before it (`[IPv6:…]` leaves `6:`,
    /// `address:…` leaves `add…` and `:`) and a colon or dot after it, so
    /// the address is looked for after each of its first colons as well.
    fn ipv6_in(&self, token: &str) -> Option<std::ops::Range<usize>> {
        const MAX_PREFIX_COLONS: usize = 3;
        let starts = std::iter::once(0).chain(
            token
                .match_indices(':')
                .take(MAX_PREFIX_COLONS)
                .map(|(i, _)| i + 1),
        );
        for start in starts {
            let candidate = token[start..].trim_end_matches(['.', ':']);
            if candidate.bytes().filter(|&b| b == b':').count() < 2 || candidate.len() > 45 {
                continue;
            }
            let Ok(parsed) = candidate.parse::<Ipv6Addr>() else {
                continue;
            };
            let hit = Some(parsed) == self.ipv6
                || (self.ipv4.is_some() && parsed.to_ipv4_mapped() == self.ipv4);
            if hit {
                return Some(start..start + candidate.len());
            }
        }
        None
    }

    pub fn replace_all(&self, text: &str, replacement: &str) -> Option<String> {
        if self.is_empty() {
            return None;
        }
        let found = self.find_all(text);
        if found.is_empty() {
            return None;
        }
        Some(super::replace_ranges(text, found, replacement))
    }
}

fn find_from(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from >= haystack.len() {
        return None;
    }
    // The first byte first: a slice comparison is a call per position.
    let first = needle[0];
    haystack[from..]
        .windows(needle.len())
        .position(|w| w[0] == first && w == needle)
        .map(|p| p + from)
}

/// ASCII-case-insensitive occurrences (the needle is lowercase ASCII).
fn find_ci(haystack: &[u8], needle: &[u8]) -> Vec<Range<usize>> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return Vec::new();
    }
    let mut found = Vec::new();
    let mut at = 0;
    let first = needle[0];
    while at + needle.len() <= haystack.len() {
        if haystack[at].to_ascii_lowercase() == first
            && haystack[at..at + needle.len()].eq_ignore_ascii_case(needle)
        {
            found.push(at..at + needle.len());
            at += needle.len();
        } else {
            at += 1;
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher() -> NetworkMatcher {
        NetworkMatcher::new(
            &[
                "203.0.113.77".parse().unwrap(),
                "2001:db8::7".parse().unwrap(),
            ],
            &["Bobs-Laptop.sender-mail.example.".to_owned()],
        )
    }

    #[test]
    fn finds_ip_addresses_in_their_textual_forms() {
        let m = matcher();
        let text =
            "from [203.0.113.77] or 2001:DB8:0:0:0:0:0:7, ::ffff:203.0.113.77 and 2001:db8::7.";
        assert_eq!(
            m.replace_all(text, "[hidden]").as_deref(),
            Some("from [[hidden]] or [hidden], [hidden] and [hidden].")
        );
        for text in [
            "1203.0.113.77",
            "203.0.113.771",
            "2001:db8::70",
            "203.0.113.7",
        ] {
            assert_eq!(m.replace_all(text, "[hidden]"), None, "{text}");
        }
    }

    #[test]
    fn finds_the_host_in_any_case() {
        let m = matcher();
        assert_eq!(
            m.replace_all("ehlo BOBS-LAPTOP.Sender-Mail.example ok", "[hidden]")
                .as_deref(),
            Some("ehlo [hidden] ok")
        );
    }

    #[test]
    fn bare_or_literal_host_names_are_not_looked_for() {
        let m = NetworkMatcher::new(
            &[],
            &["laptop".into(), "[192.0.2.1]".into(), "192.0.2.1".into()],
        );
        assert!(m.is_empty());
        assert_eq!(m.replace_all("laptop 192.0.2.1", "x"), None);
    }
}
