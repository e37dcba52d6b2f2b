//! The header block of a forwarded `message/rfc822` part, sanitized with the
//! top level's allowlist. The simplest safe form: From, To and Cc are
//! written anew as bare addresses (every display name dropped, since a name
//! cannot be checked; the sender's real address becomes the alias), Date is
//! written in UTC, the `KEPT` fields are copied (first of each), and
//! everything else goes — Received, X-Originating-IP, Message-ID, Reply-To,
//! Sender, and so on.

use mail_builder::headers::date::Date;
use mail_parser::{Address, MessageParser};

use super::body::Identity;
use super::field_guard::guard_field;
use super::mime::loose_fields;
use super::KEPT;

/// Whether an address can be written between angle brackets as it is.
fn writable(address: &str) -> bool {
    address.contains('@')
        && address
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && !"<>()[],;:\\\"".contains(c))
}

/// `address` is the sender's: compared as the relay compares addresses
/// (`real` is stored normalized), not by Unicode lowercasing.
fn same_address(address: &str, real: &str) -> bool {
    crate::address::EmailAddress::parse(address).is_ok_and(|parsed| parsed.as_str() == real)
}

fn push_addresses(
    out: &mut Vec<u8>,
    name: &str,
    list: Option<&Address<'_>>,
    real: &str,
    alias: &str,
) {
    let addresses: Vec<&str> = list
        .map(|l| l.iter().filter_map(|a| a.address()).collect())
        .unwrap_or_default();
    let written: Vec<String> = addresses
        .into_iter()
        .filter(|a| writable(a))
        .map(|a| if same_address(a, real) { alias } else { a })
        .map(|a| format!("<{a}>"))
        .collect();
    if written.is_empty() {
        return;
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    // One address per line keeps every line short.
    out.extend_from_slice(written.join(",\r\n ").as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// The sanitized header block, ending with its empty line. With
/// `transfer_encoding`, Content-Transfer-Encoding is written with that value
/// (the embedded body was re-encoded).
pub fn sanitize(
    header_block: &[u8],
    real: &str,
    alias: &str,
    transfer_encoding: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(header_block.len().min(4096));
    if let Some(headers) = MessageParser::new().parse_headers(header_block) {
        push_addresses(&mut out, "From", headers.from(), real, alias);
        push_addresses(&mut out, "To", headers.to(), real, alias);
        push_addresses(&mut out, "Cc", headers.cc(), real, alias);
        if let Some(date) = headers.date().filter(|d| d.is_valid()) {
            out.extend_from_slice(
                format!("Date: {}\r\n", Date::new(date.to_timestamp()).to_rfc822()).as_bytes(),
            );
        }
    }
    let mut emitted: Vec<&str> = Vec::new();
    for field in loose_fields(header_block) {
        let Some(kept) = KEPT.iter().find(|k| field.is(k)) else {
            continue;
        };
        if emitted.contains(kept) {
            continue;
        }
        emitted.push(kept);
        match transfer_encoding {
            Some(value) if *kept == "Content-Transfer-Encoding" => {
                out.extend_from_slice(format!("Content-Transfer-Encoding: {value}\r\n").as_bytes());
            }
            _ => {
                let identity = Identity { real, alias };
                match guard_field(field.raw, &identity) {
                    Some(guarded) => out.extend_from_slice(&guarded),
                    None => out.extend_from_slice(field.raw),
                }
                // A message cut inside its header block: end the field.
                if !field.raw.ends_with(b"\r\n") {
                    out.extend_from_slice(b"\r\n");
                }
            }
        }
    }
    if let Some(value) =
        transfer_encoding.filter(|_| !emitted.contains(&"Content-Transfer-Encoding"))
    {
        out.extend_from_slice(format!("Content-Transfer-Encoding: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = "bob.real@sender-mail.example";
    const ALIAS: &str = "bbbb@relay.example";

    #[test]
    fn keeps_the_allowlist_and_hides_the_sender() {
        let block = b"Received: from laptop ([203.0.113.77])\r\n\
From: Bob Realname <Bob.Real@Sender-Mail.example>\r\n\
To: Tickets <noreply@tickets.example>, \"Realname, Bob\" <bob.real@sender-mail.example>\r\n\
Cc: undisclosed-recipients:;\r\n\
X-Originating-IP: 203.0.113.77\r\n\
Message-ID: <abc@sender-mail.example>\r\n\
Subject: Tickets\r\n\
Date: Fri, 13 Nov 2026 10:00:00 +0100\r\n\
Content-Type: text/plain;\r\n charset=utf-8\r\n\
Content-Type: text/html\r\n\
\r\n";
        let out = String::from_utf8(sanitize(block, REAL, ALIAS, None)).unwrap();
        assert_eq!(
            out,
            "From: <bbbb@relay.example>\r\n\
To: <noreply@tickets.example>,\r\n <bbbb@relay.example>\r\n\
Date: Fri, 13 Nov 2026 09:00:00 +0000\r\n\
Subject: Tickets\r\n\
Content-Type: text/plain;\r\n charset=utf-8\r\n\
\r\n"
        );
    }

    #[test]
    fn writes_a_new_transfer_encoding() {
        let block = b"Content-Type: text/plain\r\n\r\n";
        let out = sanitize(block, REAL, ALIAS, Some("quoted-printable"));
        assert_eq!(
            out,
            b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        );
        let block = b"Content-Transfer-Encoding: 8bit\r\n\r\n";
        let out = sanitize(block, REAL, ALIAS, Some("base64"));
        assert_eq!(out, b"Content-Transfer-Encoding: base64\r\n\r\n");
        assert_eq!(sanitize(b"", REAL, ALIAS, None), b"\r\n");
        assert_eq!(sanitize(b"garbage\r\n\r\n", REAL, ALIAS, None), b"\r\n");
        assert_eq!(
            sanitize(b"Subject: cut", REAL, ALIAS, None),
            b"Subject: cut\r\n\r\n"
        );
    }
}
