//! Mail to postmaster@ and abuse@ the alias domain (and bare `postmaster`,
//! RFC 5321 4.5.1) reaches the operator's `smtp.postmaster` address through
//! the real aiosmtpd upstream, attached unchanged; without that key it is
//! refused like an unknown alias.

use crate::common;

use common::*;
use mail_parser::{MessageParser, MimeHeaders};

const OPERATOR: &str = "ops@operator.example";
const COMPLAINT_MARKER: &str = "COMPLAINT-5e1b-forwarded-unchanged";

#[test]
fn postmaster_and_abuse_mail_reaches_the_operator_wrapped() {
    let base = tempfile::tempdir().unwrap();
    let upstream = AioUpstream::start(base.path(), &[]);
    let mut options = upstream.daemon_options(base.path());
    options.extra_smtp = format!("postmaster = \"{OPERATOR}\"");
    let daemon = Daemon::start(options);

    for to in ["postmaster@relay.test", "Abuse@relay.test"] {
        let (ok, transcript) = swaks_message(
            &daemon.server(),
            "desk@isp.example",
            to,
            "Spam from one of your addresses",
            COMPLAINT_MARKER,
        );
        assert!(ok, "{to}: {transcript}");
    }
    // Bare `postmaster`, without a domain, is taken too.
    let replies = dialog(
        &daemon.server(),
        &[
            "EHLO mx.isp.example",
            "MAIL FROM:<desk@isp.example>",
            "RCPT TO:<Postmaster>",
            "QUIT",
        ],
    );
    assert!(replies[3].starts_with("250"), "{replies:?}");

    let captured = wait_captured(&upstream.dir, 2);
    let mut sent_to = Vec::new();
    for (envelope, message) in &captured {
        assert_eq!(envelope["rcpt_tos"], serde_json::json!([OPERATOR]));
        assert_eq!(
            envelope["mail_from"], "<>",
            "null reverse path: a bounce of it cannot loop back"
        );
        let parsed = MessageParser::default().parse(message).unwrap();
        assert_eq!(
            parsed
                .from()
                .and_then(|f| f.first())
                .and_then(|a| a.address()),
            Some("postmaster@relay.test")
        );
        let subject = parsed.subject().unwrap_or_default().to_owned();
        assert!(
            subject.ends_with("] Spam from one of your addresses"),
            "{subject}"
        );
        sent_to.push(subject);
        let attached = parsed
            .parts
            .iter()
            .find(|part| {
                part.content_type()
                    .is_some_and(|ct| ct.ctype() == "message" && ct.subtype() == Some("rfc822"))
            })
            .expect("the original is attached");
        let original = attached.message().expect("a parsed message/rfc822");
        assert_eq!(
            original
                .from()
                .and_then(|f| f.first())
                .and_then(|a| a.address()),
            Some("desk@isp.example"),
            "the original is not rewritten"
        );
        assert!(String::from_utf8_lossy(attached.contents()).contains(COMPLAINT_MARKER));
    }
    sent_to.sort();
    assert_eq!(
        sent_to,
        [
            "[abuse@relay.test] Spam from one of your addresses",
            "[postmaster@relay.test] Spam from one of your addresses"
        ]
    );
    assert!(
        daemon.log_rows().is_empty(),
        "mail to the operator is no message between users: no log row"
    );
}

#[test]
fn without_an_operator_address_postmaster_is_unknown() {
    let daemon = Daemon::start(DaemonOptions::outbox());
    let replies = dialog(
        &daemon.server(),
        &[
            "EHLO mx.isp.example",
            "MAIL FROM:<desk@isp.example>",
            "RCPT TO:<postmaster@relay.test>",
            "RCPT TO:<postmaster>",
            "QUIT",
        ],
    );
    assert!(replies[3].starts_with("550 5.1.1"), "{replies:?}");
    assert!(replies[4].starts_with("550 5.1.1"), "{replies:?}");
}
