//! The path of a RCPT command, judged from its raw text, and the local
//! parts on the alias domain that are the operator's.

use crate::core::address::Domain;

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

/// Local parts on the alias domain that reach the operator (RFC 5321
/// 4.5.1, RFC 2142).
const OPERATOR_LOCAL_PARTS: [&str; 2] = ["postmaster", "abuse"];

/// The operator's local part this (lowercased) local part on the alias
/// domain names, if any: one of [`OPERATOR_LOCAL_PARTS`].
pub fn operator_local_part(local: &str) -> Option<&'static str> {
    OPERATOR_LOCAL_PARTS.into_iter().find(|part| *part == local)
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

    #[test]
    fn only_postmaster_and_abuse_are_the_operators() {
        for local in ["postmaster", "abuse"] {
            assert_eq!(operator_local_part(local), Some(local));
        }
        for local in [
            "post",
            "hostmaster",
            "postmaster2",
            "Abuse",
            "abcdefgh12345678",
        ] {
            assert_eq!(operator_local_part(local), None);
        }
    }
}
