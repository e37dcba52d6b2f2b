//! Mail to `postmaster` and `abuse` on the alias domain (RFC 5321 4.5.1,
//! RFC 2142): complaints about what someone sent through an alias belong to
//! the operator. The message is not a conversation's, so it is not
//! rewritten: it is attached unchanged (`message/rfc822`) to a short
//! message from `postmaster@ALIAS_DOMAIN` to the operator's address. The
//! wrapper's From is ours, so the upstream submission server and the
//! operator's DMARC checks accept it whoever the original sender was.
//! Pure: bytes in, bytes out.

use mail_builder::headers::address::Address;
use mail_builder::headers::raw::Raw;
use mail_builder::mime::MimePart;
use mail_builder::MessageBuilder;

use crate::deliver::bounce::report::MAX_QUOTED_SUBJECT_CHARS;
use crate::rewrite::clean_subject;

pub struct Wrapper<'a> {
    pub alias_domain: &'a str,
    /// The operator's address (`smtp.postmaster`).
    pub operator: &'a str,
    /// The local part it was sent to: `postmaster` or `abuse`.
    pub sent_to: &'a str,
    pub subject: Option<&'a str>,
    pub message_id: &'a str,
    pub now: i64,
}

/// The message to the operator with `original` attached; None only if
/// mail-builder fails to write it.
pub fn wrap(wrapper: &Wrapper<'_>, original: &[u8]) -> Option<Vec<u8>> {
    let sent_to = format!("{}@{}", wrapper.sent_to, wrapper.alias_domain);
    let subject = match wrapper
        .subject
        .map(|s| clean_subject(s, MAX_QUOTED_SUBJECT_CHARS))
        .filter(|s| !s.is_empty())
    {
        Some(original) => format!("[{sent_to}] {original}"),
        None => format!("[{sent_to}] (no subject)"),
    };
    let text = format!(
        "This message was sent to {sent_to}. It is attached as it was received;\r\n\
         anonrelay neither stored nor changed it.\r\n"
    );
    let bytes = MessageBuilder::new()
        .from(Address::from(format!(
            "postmaster@{}",
            wrapper.alias_domain
        )))
        .to(Address::from(wrapper.operator))
        .subject(subject)
        .message_id(wrapper.message_id)
        .date(wrapper.now)
        // Automatic: responders must not answer it (RFC 3834).
        .header("Auto-Submitted", Raw::new("auto-generated"))
        .body(MimePart::new(
            "multipart/mixed",
            vec![MimePart::new("text/plain", text), attached(original)],
        ))
        .write_to_vec()
        .ok()?;
    crate::rewrite::check_line_endings(&bytes).ok()?;
    Some(bytes)
}

/// `message/rfc822` may not be base64-encoded (RFC 2046 5.2.1): sent as
/// 8bit when every line fits SMTP's 998 octets, else as a base64 file.
fn attached(original: &[u8]) -> MimePart<'static> {
    let fits = original
        .split(|&b| b == b'\n')
        .all(|line| line.len() <= 999);
    if fits {
        MimePart::new("message/rfc822", original.to_vec())
            .transfer_encoding("8bit")
            .inline()
    } else {
        MimePart::new("application/octet-stream", original.to_vec()).attachment("original.eml")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::{MessageParser, MimeHeaders, PartType};

    const ORIGINAL: &[u8] = b"From: Someone <abuse-desk@isp.example>\r\n\
To: postmaster@relay.test\r\n\
Subject: Spam from one of your addresses\r\n\
Message-ID: <report-1@isp.example>\r\n\
\r\n\
Please look into this.\r\n";

    fn wrapper(subject: Option<&'static str>) -> Wrapper<'static> {
        Wrapper {
            alias_domain: "relay.test",
            operator: "ops@operator.example",
            sent_to: "abuse",
            subject,
            message_id: "w1@relay.test",
            now: 1_800_000_000,
        }
    }

    #[test]
    fn the_original_is_attached_unchanged_under_our_from() {
        let wrapped = wrap(&wrapper(Some("Spam from one of your addresses")), ORIGINAL).unwrap();
        let message = MessageParser::default().parse(&wrapped).unwrap();
        assert_eq!(
            message
                .from()
                .and_then(|f| f.first())
                .and_then(|a| a.address()),
            Some("postmaster@relay.test")
        );
        assert_eq!(
            message
                .to()
                .and_then(|f| f.first())
                .and_then(|a| a.address()),
            Some("ops@operator.example")
        );
        assert_eq!(
            message.subject(),
            Some("[abuse@relay.test] Spam from one of your addresses")
        );
        let attached = message
            .parts
            .iter()
            .find(|part| {
                part.content_type()
                    .is_some_and(|ct| ct.ctype() == "message" && ct.subtype() == Some("rfc822"))
            })
            .expect("an attached message");
        assert!(matches!(attached.body, PartType::Message(_)));
        assert_eq!(attached.contents(), ORIGINAL);
    }

    #[test]
    fn a_message_without_subject_is_named_so() {
        let wrapped = wrap(&wrapper(None), ORIGINAL).unwrap();
        let message = MessageParser::default().parse(&wrapped).unwrap();
        assert_eq!(message.subject(), Some("[abuse@relay.test] (no subject)"));
    }
}
