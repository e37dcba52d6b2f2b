//! Bounces: a DSN built like real Postfix and Gmail reports, sent by a real
//! client to the VERP envelope sender of a forwarded message, becomes one
//! notice to the original sender that names only aliases; forged, expired
//! and success reports produce nothing.

use crate::common;

use anonrelay::core::tokens::ServerSecret;
use common::*;

const ALICE: (&str, &str) = ("alice", "alice.real@a-mail.example");
const BOB: (&str, &str) = ("bob", "bob.real@b-mail.example");
const SUBJECT: &str = "Dinner on Friday";
/// What the recipient's side wrote that must never reach the sender.
const UNDISCLOSED: &[&str] = &[
    ALICE.1,
    "a-mail.example",
    "mx.a-mail.example",
    "198.51.100.7",
    "gmail-smtp-in",
    "googlemail.com",
    "upstream-provider",
    "User unknown",
    "does not exist",
    "Connection timed out",
    "NoSuchUser",
];

struct Setup {
    _base: tempfile::TempDir,
    upstream: AioUpstream,
    daemon: Daemon,
    conv: Conversation,
    verp: String,
}

/// Bob writes to Alice; the forwarded copy's envelope sender is the VERP
/// address a bounce would come back to.
fn setup() -> Setup {
    setup_with("")
}

/// `sections`: extra config sections, e.g. `[bounces]`.
fn setup_with(sections: &str) -> Setup {
    let base = tempfile::tempdir().unwrap();
    let upstream = AioUpstream::start(base.path(), &[]);
    let mut options = upstream.daemon_options(base.path());
    options.extra_sections = sections.to_owned();
    let daemon = Daemon::start(options);
    let conv = daemon.conversation(ALICE, BOB);
    let (ok, transcript) = swaks_message(
        &daemon.server(),
        BOB.1,
        &conv.alias_a,
        SUBJECT,
        "Hi Alice, are we still on for Friday?",
    );
    assert!(ok, "{transcript}");
    let forwarded = wait_captured(&upstream.dir, 1);
    let verp = forwarded[0].0["mail_from"].as_str().unwrap().to_owned();
    assert!(verp.starts_with("bounce+"), "{verp}");
    Setup {
        _base: base,
        upstream,
        daemon,
        conv,
        verp,
    }
}

impl Setup {
    /// Sends a DSN fixture as an MTA does (null sender); returns the
    /// replies to RCPT and to the end of data.
    fn send_dsn(&self, fixture: &str, to: &str) -> (String, String) {
        let text = std::fs::read_to_string(repo().join("fixtures/dsn").join(fixture)).unwrap();
        let text = text
            .replace("@@VERP@@", to)
            .replace("@@RECIPIENT@@", ALICE.1)
            .replace("@@FROM_ALIAS@@", &self.conv.alias_b)
            .replace("@@TO_ALIAS@@", &self.conv.alias_a)
            .replace("@@SUBJECT@@", SUBJECT);
        let file = self.daemon.dir.path().join(format!("{fixture}.filled"));
        std::fs::write(&file, text).unwrap();
        self.send_dsn_file(&file, to)
    }

    /// Sends the message in `file` as an MTA sends a DSN.
    fn send_dsn_file(&self, file: &std::path::Path, to: &str) -> (String, String) {
        let replies = dialog(
            &self.daemon.server(),
            &[
                "EHLO mx.upstream-provider.example",
                "MAIL FROM:<>",
                &format!("RCPT TO:<{to}>"),
                "DATA",
                &format!("BODY:@{}", file.display()),
                "QUIT",
            ],
        );
        (
            replies[3].clone(),
            replies.get(5).cloned().unwrap_or_default(),
        )
    }
}

fn assert_notice(
    message: &[u8],
    envelope: &serde_json::Value,
    conv: &Conversation,
    headline: &str,
) {
    assert_eq!(envelope["rcpt_tos"], serde_json::json!([BOB.1]));
    assert_eq!(envelope["mail_from"], "<>", "a notice has the null sender");
    assert_eq!(
        header(message, "From").unwrap(),
        format!("<{}>", conv.alias_a)
    );
    assert_eq!(
        header(message, "To").unwrap(),
        format!("<{}>", conv.alias_b)
    );
    assert_eq!(
        header(message, "Subject").unwrap(),
        format!("{headline}: {SUBJECT}")
    );
    let shown = body_text(message);
    for secret in UNDISCLOSED {
        assert!(
            !contains_ci(shown.as_bytes(), secret),
            "`{secret}` is in the notice's text: {shown}"
        );
        assert!(
            !contains_ci(message, secret),
            "`{secret}` reached the sender:\n{}",
            String::from_utf8_lossy(message)
        );
    }
}

/// The notice's text as a mail client shows it (decoded).
fn body_text(message: &[u8]) -> String {
    let parsed = mail_parser::MessageParser::new()
        .parse(message)
        .expect("the notice parses");
    let text = parsed.body_text(0).expect("a text body").into_owned();
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn postfix_and_gmail_bounces_become_one_notice_each_naming_only_aliases() {
    let setup = setup();
    for (index, fixture) in ["postfix-user-unknown.eml", "gmail-address-not-found.eml"]
        .iter()
        .enumerate()
    {
        let (rcpt, end) = setup.send_dsn(fixture, &setup.verp);
        assert!(rcpt.starts_with("250"), "{fixture}: {rcpt}");
        assert!(end.starts_with("250"), "{fixture}: {end}");
        let all = wait_captured(&setup.upstream.dir, index + 2);
        assert_eq!(all.len(), index + 2, "exactly one notice per bounce");
        let (envelope, notice) = &all[index + 1];
        assert_notice(notice, envelope, &setup.conv, "Undelivered");
        assert!(body_text(notice).contains("could not be delivered"));
    }
    // Notices are not messages between the users: the log has one row.
    assert_eq!(setup.daemon.log_rows().len(), 1);
}

#[test]
fn a_delay_warning_becomes_a_delayed_notice() {
    let setup = setup();
    let (rcpt, end) = setup.send_dsn("postfix-delayed.eml", &setup.verp);
    assert!(
        rcpt.starts_with("250") && end.starts_with("250"),
        "{rcpt} / {end}"
    );
    let all = wait_captured(&setup.upstream.dir, 2);
    let (envelope, notice) = &all[1];
    assert_notice(notice, envelope, &setup.conv, "Delayed");
    assert!(body_text(notice).contains("still being attempted"));
}

#[test]
fn a_bounce_quotes_only_a_subject_the_relay_forwarded_on_that_alias() {
    let setup = setup();
    // A DSN-shaped message to the real VERP address (its Return-Path is in
    // every forwarded copy), returning a message we never forwarded.
    let text =
        std::fs::read_to_string(repo().join("fixtures/dsn/postfix-user-unknown.eml")).unwrap();
    let forged = text
        .replace("@@VERP@@", &setup.verp)
        .replace("@@RECIPIENT@@", ALICE.1)
        .replace("@@FROM_ALIAS@@", &setup.conv.alias_b)
        .replace("@@TO_ALIAS@@", &setup.conv.alias_a)
        .replace("@@SUBJECT@@", "Call +1 555 0100 now to claim your prize");
    let file = setup.daemon.dir.path().join("forged.eml");
    std::fs::write(&file, forged).unwrap();
    let (rcpt, data) = setup.send_dsn_file(&file, &setup.verp);
    assert!(rcpt.starts_with("250"), "{rcpt}");
    assert!(data.starts_with("250"), "{data}");
    let captured = wait_captured(&setup.upstream.dir, 2);
    let (envelope, notice) = &captured[1];
    assert_eq!(envelope["rcpt_tos"], serde_json::json!([BOB.1]));
    assert_eq!(header(notice, "Subject").unwrap(), "Undelivered");
    assert!(
        !contains_ci(notice, "555 0100"),
        "{}",
        String::from_utf8_lossy(notice)
    );
    // The message that was forwarded: its subject is quoted.
    let (_, data) = setup.send_dsn("postfix-user-unknown.eml", &setup.verp);
    assert!(data.starts_with("250"), "{data}");
    let captured = wait_captured(&setup.upstream.dir, 3);
    assert_eq!(
        header(&captured[2].1, "Subject").unwrap(),
        format!("Undelivered: {SUBJECT}")
    );
}

#[test]
fn forged_expired_and_non_failure_bounces_produce_nothing() {
    let setup = setup();
    // A MAC with one character changed.
    let (local, domain) = setup.verp.split_once('@').unwrap();
    let last = local.chars().last().unwrap();
    let swapped = if last == 'a' { 'b' } else { 'a' };
    let forged = format!("{}{swapped}@{domain}", &local[..local.len() - 1]);
    let (rcpt, _) = setup.send_dsn("postfix-user-unknown.eml", &forged);
    assert!(rcpt.starts_with("550 5.1.1"), "forged: {rcpt}");

    // A genuine MAC whose validity ended: signed with the daemon's own
    // secret for a message sent 30 days ago.
    let mut secret_path = setup.daemon.db_path().into_os_string();
    secret_path.push(".secret");
    let secret = ServerSecret::load_or_create(std::path::Path::new(&secret_path)).unwrap();
    let alias = setup.conv.alias_a.split('@').next().unwrap();
    let month_ago = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 30 * 86_400;
    let expired = format!(
        "{}@{domain}",
        secret.verp_signer().local_part(alias, month_ago, 14)
    );
    let (rcpt, _) = setup.send_dsn("postfix-user-unknown.eml", &expired);
    assert!(rcpt.starts_with("550 5.1.1"), "expired: {rcpt}");
    // The same signer with today's time is accepted: the check can pass.
    let (rcpt, end) = setup.send_dsn("postfix-user-unknown.eml", &setup.verp);
    assert!(rcpt.starts_with("250") && end.starts_with("250"));
    wait_captured(&setup.upstream.dir, 2);

    // A vacation reply sent to the envelope sender is no bounce: dropped.
    let replies = dialog(
        &setup.daemon.server(),
        &[
            "EHLO mx.a-mail.example",
            "MAIL FROM:<>",
            &format!("RCPT TO:<{}>", setup.verp),
            "DATA",
            "BODY:From: alice.real@a-mail.example\r\nSubject: Out of office\r\nAuto-Submitted: auto-replied\r\n\r\nBack on Monday.\r\n",
            "QUIT",
        ],
    );
    assert!(replies[5].starts_with("250"), "{replies:?}");
    // A notice is handed upstream before the 250, so none can still come.
    assert_eq!(
        captured(&setup.upstream.dir).len(),
        2,
        "only the forwarded message and the one genuine notice"
    );
}

/// RCPT to Alice's alias as Bob: the reply.
fn rcpt_reply(setup: &Setup) -> String {
    let replies = dialog(
        &setup.daemon.server(),
        &[
            "EHLO b-mail.example",
            &format!("MAIL FROM:<{}>", BOB.1),
            &format!("RCPT TO:<{}>", setup.conv.alias_a),
            "QUIT",
        ],
    );
    replies[3].clone()
}

#[test]
fn repeated_hard_bounces_revoke_the_conversation_when_configured() {
    let setup = setup_with("[bounces]\ndisable_after = 2\n");
    let (_, end) = setup.send_dsn("postfix-user-unknown.eml", &setup.verp);
    assert!(end.starts_with("250"), "{end}");
    // A delay warning does not count; one hard bounce is not enough.
    let (_, end) = setup.send_dsn("postfix-delayed.eml", &setup.verp);
    assert!(end.starts_with("250"), "{end}");
    let still = rcpt_reply(&setup);
    assert!(still.starts_with("250"), "after one hard bounce: {still}");
    let (_, end) = setup.send_dsn("gmail-address-not-found.eml", &setup.verp);
    assert!(end.starts_with("250"), "{end}");
    let gone = rcpt_reply(&setup);
    assert!(
        gone.starts_with("550 5.1.1"),
        "after two hard bounces: {gone}"
    );
}

#[test]
fn bounce_addresses_share_the_aliass_message_rate() {
    // The forwarded message used one of the three; two DSNs the rest.
    let setup = setup_with("[smtp.limits]\nmax_messages_per_alias_per_hour = 3\n");
    for _ in 0..2 {
        let (rcpt, _) = setup.send_dsn("postfix-delayed.eml", &setup.verp);
        assert!(rcpt.starts_with("250"), "{rcpt}");
    }
    let (rcpt, _) = setup.send_dsn("postfix-delayed.eml", &setup.verp);
    assert!(rcpt.starts_with("450 4.7.1"), "{rcpt}");
    assert_eq!(captured(&setup.upstream.dir).len(), 3);
}
