//! Bounces that come back to our VERP addresses. A delivery status
//! notification (RFC 3464: `multipart/report; report-type=delivery-status`)
//! is read for two things only: whether delivery failed for good or is
//! delayed, and the subject of the message it returns. The notice we send
//! the original sender is built from those and from the conversation alone,
//! so nothing the recipient's provider wrote (its host names, diagnostic
//! text, the recipient's real address) can reach the other side.
//! Pure functions: bytes in, a verdict or bytes out.

use mail_builder::headers::address::Address;
use mail_builder::MessageBuilder;
use mail_parser::{MessageParser, MimeHeaders};

use crate::rewrite::clean_subject;

/// Parts looked at at most: a DSN has three.
const MAX_PARTS: usize = 64;
/// Longest subject quoted in a notice (or in a wrapper to the operator).
pub const MAX_QUOTED_SUBJECT_CHARS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceClass {
    /// The recipient's server gave up (`Action: failed`, status 5.x.x).
    Permanent,
    /// Delivery is delayed and still being retried (`Action: delayed`).
    Temporary,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryReport {
    pub class: BounceClass,
    /// Subject of the returned message, cleaned of control characters.
    pub subject: Option<String>,
}

/// Bytes of a DSN that are read. Its explanation and status parts come
/// first and are small; only the returned message, last, can be large, and
/// of that only the header block is wanted. Parsing the whole of a hostile
/// message at the size limit (millions of empty parts) would take many
/// times its size in memory, outside the buffer budget.
pub const MAX_REPORT_BYTES: usize = 256 * 1024;

/// Reads a DSN; None for anything that is not one, or reports only
/// success (`delivered`, `relayed`, `expanded`): those are dropped.
pub fn read_report(raw: &[u8]) -> Option<DeliveryReport> {
    let read = &raw[..raw.len().min(MAX_REPORT_BYTES)];
    let message = MessageParser::new().parse(read)?;
    let root = message.content_type()?;
    let is_report = root.ctype().eq_ignore_ascii_case("multipart")
        && root
            .subtype()
            .is_some_and(|s| s.eq_ignore_ascii_case("report"))
        && root
            .attribute("report-type")
            .is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"));
    if !is_report {
        return None;
    }
    let mut class = None;
    let mut subject = None;
    for part in message.parts.iter().take(MAX_PARTS) {
        let Some(content_type) = part.content_type() else {
            continue;
        };
        let subtype = content_type.subtype().unwrap_or_default();
        match (content_type.ctype(), subtype) {
            ("message", "delivery-status") | ("message", "global-delivery-status") => {
                class = worst(class, status_class(part.contents()));
            }
            ("message", "rfc822") | ("message", "global") => {
                subject = subject.or_else(|| {
                    part.message()?
                        .subject()
                        .map(|subject| clean_subject(subject, MAX_QUOTED_SUBJECT_CHARS))
                });
            }
            ("text", "rfc822-headers") => {
                subject = subject.or_else(|| {
                    MessageParser::new()
                        .parse_headers(part.contents())?
                        .subject()
                        .map(|subject| clean_subject(subject, MAX_QUOTED_SUBJECT_CHARS))
                });
            }
            _ => {}
        }
    }
    Some(DeliveryReport {
        class: class?,
        subject,
    })
}

/// The class of the worst per-recipient block of a `message/delivery-status`
/// body; None when every recipient was delivered.
fn status_class(fields: &[u8]) -> Option<BounceClass> {
    let text = String::from_utf8_lossy(fields);
    let mut class = None;
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_ascii_lowercase();
        let found = match name.trim().to_ascii_lowercase().as_str() {
            "action" if value.starts_with("failed") => Some(BounceClass::Permanent),
            "action" if value.starts_with("delayed") => Some(BounceClass::Temporary),
            "status" if value.starts_with('5') => Some(BounceClass::Permanent),
            "status" if value.starts_with('4') => Some(BounceClass::Temporary),
            _ => None,
        };
        class = worst(class, found);
    }
    class
}

fn worst(a: Option<BounceClass>, b: Option<BounceClass>) -> Option<BounceClass> {
    match (a, b) {
        (Some(BounceClass::Permanent), _) | (_, Some(BounceClass::Permanent)) => {
            Some(BounceClass::Permanent)
        }
        (Some(class), _) | (None, Some(class)) => Some(class),
        (None, None) => None,
    }
}

/// What the notice needs: who it comes from and goes to, all from the
/// conversation.
pub struct Notice<'a> {
    /// The alias the original sender wrote to (the notice's From).
    pub from_alias: &'a str,
    /// The original sender's own alias (the notice's To, as on forwarded mail).
    pub to_alias: &'a str,
    pub alias_domain: &'a str,
    pub report: &'a DeliveryReport,
    pub message_id: &'a str,
    pub now: i64,
}

/// Builds the notice to the original sender.
pub fn compose_notice(notice: &Notice<'_>) -> Option<Vec<u8>> {
    let (headline, explanation) = match notice.report.class {
        BounceClass::Permanent => (
            "Undelivered",
            "Your message could not be delivered to the other participant of this \
             conversation. Their mail server refused it permanently; sending it \
             again will not help.",
        ),
        BounceClass::Temporary => (
            "Delayed",
            "Your message has not reached the other participant of this conversation \
             yet. Their mail server asked to try again later; delivery is still being \
             attempted and you need not do anything.",
        ),
    };
    let subject = match &notice.report.subject {
        Some(subject) if !subject.is_empty() => format!("{headline}: {subject}"),
        _ => headline.to_owned(),
    };
    let mut text = String::from(explanation);
    if let Some(original) = notice.report.subject.as_deref().filter(|s| !s.is_empty()) {
        text.push_str("\r\n\r\nSubject of your message: ");
        text.push_str(original);
    }
    text.push_str("\r\n");
    let bytes = MessageBuilder::new()
        .from(Address::from(format!(
            "{}@{}",
            notice.from_alias, notice.alias_domain
        )))
        .to(Address::from(format!(
            "{}@{}",
            notice.to_alias, notice.alias_domain
        )))
        .subject(subject)
        .message_id(notice.message_id)
        .date(notice.now)
        // RFC 3834: an automatic reply; well-behaved responders stay quiet.
        .header(
            "Auto-Submitted",
            mail_builder::headers::raw::Raw::new("auto-replied"),
        )
        .text_body(text)
        .write_to_vec()
        .ok()?;
    crate::rewrite::check_line_endings(&bytes).ok()?;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dsn(status_fields: &str, returned: &str) -> Vec<u8> {
        format!(
            "From: MAILER-DAEMON@mx.recipient.example\r\n\
             Subject: Undelivered Mail Returned to Sender\r\n\
             MIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\
             \r\n\
             --b\r\n\
             Content-Type: text/plain\r\n\
             \r\n\
             <alice.real@a-mail.example>: host mx.recipient.example said: 550 5.1.1 no mailbox\r\n\
             \r\n\
             --b\r\n\
             Content-Type: message/delivery-status\r\n\
             \r\n\
             Reporting-MTA: dns; mx.recipient.example\r\n\
             \r\n\
             {status_fields}\r\n\
             \r\n\
             --b\r\n\
             {returned}\
             --b--\r\n"
        )
        .into_bytes()
    }

    const HEADERS_PART: &str = "Content-Type: text/rfc822-headers\r\n\r\n\
        From: <bbbb@relay.test>\r\nSubject: =?UTF-8?B?R3LDvMOfZQ==?= and\r\n more\r\n\r\n";

    #[test]
    fn failed_and_delayed_reports_are_classified() {
        let failed = dsn(
            "Final-Recipient: rfc822; alice.real@a-mail.example\r\nAction: failed\r\nStatus: 5.1.1",
            HEADERS_PART,
        );
        let report = read_report(&failed).unwrap();
        assert_eq!(report.class, BounceClass::Permanent);
        assert_eq!(report.subject.as_deref(), Some("Grüße and more"));

        let delayed = dsn(
            "Final-Recipient: rfc822; a@b.example\r\nAction: delayed\r\nStatus: 4.4.1",
            HEADERS_PART,
        );
        assert_eq!(read_report(&delayed).unwrap().class, BounceClass::Temporary);
        // One failed recipient among delayed ones makes the report permanent.
        let mixed = dsn(
            "Action: delayed\r\nStatus: 4.4.1\r\n\r\nAction: failed\r\nStatus: 5.2.2",
            HEADERS_PART,
        );
        assert_eq!(read_report(&mixed).unwrap().class, BounceClass::Permanent);
    }

    #[test]
    fn a_large_returned_message_is_read_only_as_far_as_its_subject() {
        let big = format!(
            "Content-Type: message/rfc822\r\n\r\nFrom: <bbbb@relay.test>\r\nSubject: big one\r\n\r\n{}\r\n",
            "x".repeat(998).repeat(5_000)
        );
        let failed = dsn("Action: failed\r\nStatus: 5.2.2", &big);
        assert!(failed.len() > 4 * MAX_REPORT_BYTES);
        let report = read_report(&failed).unwrap();
        assert_eq!(report.class, BounceClass::Permanent);
        assert_eq!(report.subject.as_deref(), Some("big one"));
    }

    #[test]
    fn a_status_beyond_the_read_limit_is_no_report() {
        // A long first part pushes the status past what is read: a real
        // MTA's explanation is a few lines.
        let mut message = b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n".to_vec();
        message.extend_from_slice(format!("{}\r\n", "y".repeat(998)).repeat(300).as_bytes());
        message.extend_from_slice(
            b"--b\r\nContent-Type: message/delivery-status\r\n\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b--\r\n",
        );
        assert!(message.len() > MAX_REPORT_BYTES);
        assert_eq!(read_report(&message), None);
        // The same report, short enough, is read.
        let mut short = message[..120].to_vec();
        short.extend_from_slice(&message[message.len() - 100..]);
        assert!(
            read_report(&short).is_some(),
            "{}",
            String::from_utf8_lossy(&short)
        );
    }

    #[test]
    fn success_reports_and_other_mail_are_not_bounces() {
        let delivered = dsn("Action: delivered\r\nStatus: 2.0.0", HEADERS_PART);
        assert_eq!(read_report(&delivered), None);
        let plain = b"From: someone@x.example\r\nSubject: I am on vacation\r\n\r\nback monday\r\n";
        assert_eq!(read_report(plain), None);
        assert_eq!(read_report(b""), None);
        assert_eq!(read_report(b"\xff\xfe garbage"), None);
    }

    #[test]
    fn the_notice_names_only_aliases() {
        let report = DeliveryReport {
            class: BounceClass::Permanent,
            subject: Some("Dinner on Friday".into()),
        };
        let bytes = compose_notice(&Notice {
            from_alias: "aaaaaaaaaaaaaaaaaaaa",
            to_alias: "bbbbbbbbbbbbbbbbbbbb",
            alias_domain: "relay.test",
            report: &report,
            message_id: "n1@relay.test",
            now: 1_800_000_000,
        })
        .unwrap();
        let parsed = MessageParser::new().parse(&bytes).unwrap();
        assert_eq!(parsed.subject(), Some("Undelivered: Dinner on Friday"));
        assert_eq!(
            parsed.from().unwrap().first().unwrap().address(),
            Some("aaaaaaaaaaaaaaaaaaaa@relay.test")
        );
        assert_eq!(
            parsed.to().unwrap().first().unwrap().address(),
            Some("bbbbbbbbbbbbbbbbbbbb@relay.test")
        );
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("Auto-Submitted: auto-replied"));
        assert!(text.contains("could not be delivered"));
    }
}
