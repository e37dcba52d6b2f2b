//! Header fields that reach the recipient (the kept top-level fields, a
//! forwarded message's kept fields, every field of a MIME part's header
//! block) with the sender's real address replaced by the alias.
//!
//! Subjects ("Re: question from bob@…"), attachment names and Content-IDs
//! can carry the address. It is replaced where it stands in the raw bytes
//! (any letter case, `%40` as RFC 2231 parameters write it), and a field
//! whose RFC 2047 encoded words or RFC 2231 parameters still hide it once
//! decoded is written anew with mail-builder. A field that does not mention
//! the address is left byte for byte.

use std::borrow::Cow;

use mail_builder::headers::content_type::ContentType as BuiltContentType;
use mail_builder::headers::text::Text;
use mail_builder::headers::Header as _;
use mail_parser::{HeaderValue, MessageParser};

use super::body::Identity;
use super::content_id::ContentIdRename;
use super::matcher::{AddressMatcher, Charset};
use super::mime::loose_fields;

/// The field (name, colon, value, line end) without the sender's address;
/// None when it does not mention it. Unlike the body guard, a match inside a
/// longer token counts (`bob@….vcf` as a file name, `Re:bob@…`): these are
/// no other person's address.
pub fn guard_field(raw: &[u8], identity: &Identity<'_>) -> Option<Vec<u8>> {
    if field_name_is(raw, "Content-ID") {
        // HTML refers to the part as `cid:ID`, and the body guard changes
        // only whole addresses and ids on the sender's domain there: the id
        // must change exactly alike, or the reference breaks.
        let replaced = AddressMatcher::new(identity.real, identity.alias, Charset::Utf8, false)
            .and_then(|matcher| matcher.replace_all(raw));
        let current = replaced.as_deref().unwrap_or(raw);
        let renamed =
            ContentIdRename::new(identity).and_then(|rename| rename.rename_field(current));
        return renamed.or(replaced);
    }
    let percent_form = identity.real.replace('@', "%40");
    let plain = replace_ci_bytes(raw, identity.real.as_bytes(), identity.alias.as_bytes());
    let percent = replace_ci_bytes(
        plain.as_deref().unwrap_or(raw),
        percent_form.as_bytes(),
        identity.alias.replace('@', "%40").as_bytes(),
    );
    let replaced = percent.or(plain);
    let current = replaced.as_deref().unwrap_or(raw);
    // Only encoded words and RFC 2231 parameters can hide it any further.
    if !contains(current, b"=?") && !contains(current, b"*=") {
        return replaced;
    }
    rewritten_decoded(current, identity).or(replaced)
}

/// A header block (a MIME part's, ending with its empty line or cut short)
/// with every field guarded; None when no field changed.
pub fn guard_header_block(block: &[u8], identity: &Identity<'_>) -> Option<Vec<u8>> {
    let fields = loose_fields(block);
    let guarded: Vec<Option<Vec<u8>>> = fields
        .iter()
        .map(|field| guard_field(field.raw, identity))
        .collect();
    if guarded.iter().all(Option::is_none) {
        return None;
    }
    // The fields lie back to back from the start of the block.
    let mut out = Vec::with_capacity(block.len() + 64);
    let mut end = 0;
    for (field, replacement) in fields.iter().zip(guarded) {
        out.extend_from_slice(replacement.as_deref().unwrap_or(field.raw));
        end += field.raw.len();
    }
    out.extend_from_slice(&block[end..]);
    Some(out)
}

/// The field decoded by mail-parser; written anew when the decoded value
/// still holds the address.
fn rewritten_decoded(raw: &[u8], identity: &Identity<'_>) -> Option<Vec<u8>> {
    let colon = raw.iter().position(|&b| b == b':')?;
    let name = std::str::from_utf8(&raw[..colon]).ok()?.trim();
    let mut terminated = raw.to_vec();
    if !terminated.ends_with(b"\r\n") {
        terminated.extend_from_slice(b"\r\n");
    }
    terminated.extend_from_slice(b"\r\n");
    let parsed = MessageParser::new().parse_headers(&terminated[..])?;
    let header = parsed.headers().first()?;
    let mut out = format!("{name}: ").into_bytes();
    let column = out.len();
    match &header.value {
        HeaderValue::Text(text) => {
            let text = replace_ci(text, identity)?;
            Text::new(text).write_header(&mut out, column);
        }
        HeaderValue::TextList(list) => {
            let joined = list.join(", ");
            let text = replace_ci(&joined, identity)?;
            Text::new(text).write_header(&mut out, column);
        }
        HeaderValue::ContentType(content_type) => {
            let attributes = content_type.attributes.as_deref().unwrap_or_default();
            let replaced: Vec<Option<String>> = attributes
                .iter()
                .map(|attribute| replace_ci(&attribute.value, identity))
                .collect();
            if replaced.iter().all(Option::is_none) {
                return None;
            }
            let c_type = match &content_type.c_subtype {
                Some(subtype) => format!("{}/{subtype}", content_type.c_type),
                None => content_type.c_type.to_string(),
            };
            let mut built = BuiltContentType::new(c_type);
            for (attribute, replacement) in attributes.iter().zip(replaced) {
                let value = replacement.map_or(Cow::Borrowed(&*attribute.value), Cow::Owned);
                built = built.attribute(attribute.name.to_string(), value.into_owned());
            }
            built.write_header(&mut out, column);
        }
        _ => return None,
    }
    Some(out)
}

/// `text` with every occurrence of the real address (ASCII letter case
/// ignored) replaced by the alias; None when there is none.
fn replace_ci(text: &str, identity: &Identity<'_>) -> Option<String> {
    let replaced = replace_ci_bytes(
        text.as_bytes(),
        identity.real.as_bytes(),
        identity.alias.as_bytes(),
    )?;
    // An ASCII needle replaced by ASCII leaves UTF-8 valid.
    String::from_utf8(replaced).ok()
}

/// `haystack` with every ASCII-case-insensitive occurrence of `needle`
/// replaced; None when there is none.
fn replace_ci_bytes(haystack: &[u8], needle: &[u8], replacement: &[u8]) -> Option<Vec<u8>> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut at = 0;
    while at + needle.len() <= haystack.len() {
        if haystack[at..at + needle.len()].eq_ignore_ascii_case(needle) {
            let out = out.get_or_insert_with(|| Vec::with_capacity(haystack.len()));
            out.extend_from_slice(&haystack[copied..at]);
            out.extend_from_slice(replacement);
            at += needle.len();
            copied = at;
        } else {
            at += 1;
        }
    }
    let mut out = out?;
    out.extend_from_slice(&haystack[copied..]);
    Some(out)
}

fn field_name_is(raw: &[u8], name: &str) -> bool {
    raw.iter().position(|&b| b == b':').is_some_and(|colon| {
        raw[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(name.as_bytes())
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = "bob.real@sender-mail.example";
    const IDENTITY: Identity<'static> = Identity {
        real: REAL,
        alias: "bbbb@relay.example",
    };

    fn guarded(raw: &str) -> Option<String> {
        guard_field(raw.as_bytes(), &IDENTITY).map(|out| String::from_utf8(out).unwrap())
    }

    fn decoded(field: &str, name: &str) -> String {
        let block = format!("{field}\r\n");
        let parsed = MessageParser::new()
            .parse_headers(block.as_bytes())
            .unwrap();
        match &parsed.headers()[0].value {
            HeaderValue::Text(text) => text.to_string(),
            HeaderValue::ContentType(ct) => {
                ct.attribute(name).map(str::to_owned).unwrap_or_default()
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_field_without_the_address_is_left_alone() {
        for raw in [
            "Subject: lunch?\r\n",
            "Subject: =?UTF-8?B?R3LDvMOfZQ==?=\r\n",
            "Content-Type: text/plain; name*=utf-8''r%C3%A9sum%C3%A9.txt\r\n",
            "Content-ID: <part1.0001@relay.example>\r\n",
        ] {
            assert_eq!(guarded(raw), None, "{raw}");
        }
    }

    #[test]
    fn a_plain_subject_gets_the_alias() {
        assert_eq!(
            guarded("Subject: Re: note from Bob.Real@Sender-Mail.example\r\n").as_deref(),
            Some("Subject: Re: note from bbbb@relay.example\r\n")
        );
    }

    #[test]
    fn encoded_words_are_decoded_to_check_and_written_anew() {
        // "Grüße from bob.real@…", split over two encoded words.
        let raw = "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_from_bob.re?=\r\n =?UTF-8?Q?al=40sender-mail.example?=\r\n";
        let out = guarded(raw).expect("changed");
        assert!(!out.to_ascii_lowercase().contains("sender-mail"), "{out}");
        assert_eq!(decoded(out.trim_end(), ""), "Grüße from bbbb@relay.example");
        let latin1 = "Subject: =?ISO-8859-1?B?QOkgYm9iLnJlYWxAc2VuZGVyLW1haWwuZXhhbXBsZQ==?=\r\n";
        let out = guarded(latin1).expect("changed");
        assert_eq!(decoded(out.trim_end(), ""), "@é bbbb@relay.example");
    }

    /// A decoded value may hold CR/LF (an encoded word can say anything):
    /// what is written anew must not break out of the field.
    #[test]
    fn a_field_written_anew_cannot_inject_a_header() {
        // Both decode to "bob.real@sender-mail.example\r\nBcc: evil@x.example…".
        for raw in [
            "Subject: =?UTF-8?B?Ym9iLnJlYWxAc2VuZGVyLW1haWwuZXhhbXBsZQ0KQmNjOiBldmlsQHguZXhhbXBsZQ==?=\r\n",
            "Content-Type: text/plain; name=\"=?UTF-8?B?Ym9iLnJlYWxAc2VuZGVyLW1haWwuZXhhbXBsZQ0KQmNjOiBldmlsQHguZXhhbXBsZS50eHQ=?=\"\r\n",
        ] {
            let out = guarded(raw).expect("changed");
            let block = format!("{out}\r\n");
            let parsed = MessageParser::new()
                .parse_headers(block.as_bytes())
                .unwrap();
            assert_eq!(parsed.headers().len(), 1, "{out:?}");
            assert!(parsed.header("Bcc").is_none(), "{out:?}");
            assert!(!out.contains("sender-mail"), "{out:?}");
            crate::rewrite::check_line_endings(out.as_bytes()).unwrap();
        }
    }

    #[test]
    fn attachment_names_in_every_parameter_form() {
        for raw in [
            "Content-Disposition: attachment; filename=\"bob.real@sender-mail.example.vcf\"\r\n",
            "Content-Type: text/vcard; name*=utf-8''bob.real%40sender-mail.example.vcf\r\n",
            "Content-Type: text/vcard;\r\n name=\"=?UTF-8?B?Ym9iLnJlYWxAc2VuZGVyLW1haWwuZXhhbXBsZS52Y2Y=?=\"\r\n",
        ] {
            let out = guarded(raw).expect(raw);
            assert!(!out.to_ascii_lowercase().contains("sender-mail"), "{out}");
            let name = if raw.starts_with("Content-Disposition") {
                "filename"
            } else {
                "name"
            };
            assert_eq!(decoded(out.trim_end(), name), "bbbb@relay.example.vcf", "{out}");
        }
    }

    #[test]
    fn a_content_id_changes_only_where_the_html_reference_does() {
        // The body guard sees `cid:logo.bob.real@…` as another local part
        // and moves only its domain, so the id does the same.
        assert_eq!(
            guarded("Content-ID: <logo.bob.real@sender-mail.example>\r\n").as_deref(),
            Some("Content-ID: <logo.bob.real@relay.example>\r\n")
        );
        assert_eq!(guarded("Content-ID: <image001.png@01D9C7A5>\r\n"), None);
        assert_eq!(
            guarded("Content-ID: <bob.real@sender-mail.example>\r\n").as_deref(),
            Some("Content-ID: <bbbb@relay.example>\r\n")
        );
    }

    #[test]
    fn a_part_header_block_keeps_every_other_byte() {
        let block = b"Content-Type: image/png; name=\"logo.png\"\r\n\
Content-ID: <Bob.Real@sender-mail.example>\r\n\
Content-Transfer-Encoding: base64\r\n\r\n";
        let out = guard_header_block(block, &IDENTITY).expect("changed");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Content-Type: image/png; name=\"logo.png\"\r\n\
Content-ID: <bbbb@relay.example>\r\n\
Content-Transfer-Encoding: base64\r\n\r\n"
        );
        assert_eq!(
            guard_header_block(b"Content-Type: text/plain\r\n\r\n", &IDENTITY),
            None
        );
    }
}
