//! Internationalized addresses (issue 11, item 9): an address and its
//! A-label / U-label spellings are one address. A partner registered in one
//! form writes from the other and is forwarded; mail to an owner whose
//! domain is internationalized leaves for the upstream (aiosmtpd) with the
//! A-label recipient, which a server without SMTPUTF8 takes.

use crate::common;

use common::*;

const ALICE: (&str, &str) = ("u-alice", "alice@a-mail.example");
/// Registered with the U-label (bücher = xn--bcher-kva).
const CAROL: (&str, &str) = ("u-carol", "carol@bücher.example");
const CAROL_A_LABEL: &str = "carol@xn--bcher-kva.example";
/// Registered with the A-label (café = xn--caf-dma).
const DORA_A_LABEL: &str = "dora@xn--caf-dma.example";
const DORA_U_LABEL: &str = "dora@café.example";

fn rcpt_tos(envelope: &serde_json::Value) -> serde_json::Value {
    envelope["rcpt_tos"].clone()
}

#[test]
fn registered_with_the_u_label_writes_from_the_a_label_and_receives_at_it() {
    let base = tempfile::tempdir().unwrap();
    let upstream = AioUpstream::start(base.path(), &[]);
    let daemon = Daemon::start(upstream.daemon_options(base.path()));
    let conv = daemon.conversation(ALICE, CAROL);

    // Carol's client knows only the ASCII form (no SMTPUTF8 needed):
    // envelope and header From are both the A-label.
    let (ok, transcript) = swaks_message(
        &daemon.server(),
        CAROL_A_LABEL,
        &conv.alias_a,
        "from the ascii form",
        "Hallo Alice",
    );
    assert!(ok, "{transcript}\n{}", daemon.log());
    assert!(
        transcript.contains("<-  250 2.0.0 Message accepted"),
        "{transcript}"
    );
    let got = wait_captured(&upstream.dir, 1);
    assert_eq!(rcpt_tos(&got[0].0), serde_json::json!([ALICE.1]));
    assert_eq!(
        header(&got[0].1, "From").unwrap(),
        format!("<{}>", conv.alias_b)
    );

    // Alice answers: the upstream gets Carol's address with the A-label,
    // and the envelope needed no SMTPUTF8.
    let (ok, transcript) = swaks_message(
        &daemon.server(),
        ALICE.1,
        &conv.alias_b,
        "answer",
        "Hi Carol",
    );
    assert!(ok, "{transcript}\n{}", daemon.log());
    let got = wait_captured(&upstream.dir, 2);
    assert_eq!(rcpt_tos(&got[1].0), serde_json::json!([CAROL_A_LABEL]));
    assert_eq!(
        got[1].0["mail_options"],
        serde_json::json!([]),
        "{}",
        got[1].0
    );

    // A third spelling, upper case, is the same mailbox; someone else's
    // address on the same domain is not.
    let (ok, transcript) = swaks_message(
        &daemon.server(),
        "CAROL@XN--BCHER-KVA.EXAMPLE",
        &conv.alias_a,
        "upper case",
        "x",
    );
    assert!(ok, "{transcript}");
    let (ok, transcript) = swaks_message(
        &daemon.server(),
        "mallory@xn--bcher-kva.example",
        &conv.alias_a,
        "not carol",
        "x",
    );
    assert!(!ok, "a stranger was forwarded: {transcript}");
    assert!(transcript.contains("<** 550 5.7.1"), "{transcript}");
    assert_eq!(captured(&upstream.dir).len(), 3);
}

#[test]
fn registered_with_the_a_label_writes_from_the_u_label_with_smtputf8() {
    let base = tempfile::tempdir().unwrap();
    let mut options = DaemonOptions::outbox();
    let hook = Hook::configure(base.path(), &mut options);
    let daemon = Daemon::start(options);
    let body = serde_json::json!({
        "a": {"user_id": ALICE.0, "email": ALICE.1},
        "b": {"user_id": "u-dora", "email": DORA_A_LABEL},
    });
    let (status, created) = hook.authed("POST", "/v1/conversations", Some(&body.to_string()));
    assert_eq!(status, 201, "{created}");
    let alias_a = created["alias_a"].as_str().unwrap().to_owned();
    // Stored in the one canonical form.
    let (status, export) = hook.authed("GET", "/v1/users/u-dora/export", None);
    assert_eq!(status, 200, "{export}");
    assert_eq!(export["email"], DORA_U_LABEL);

    // Dora's client writes the Unicode form, so it asks for SMTPUTF8.
    let message = daemon.dir.path().join("dora.eml");
    std::fs::write(
        &message,
        format!(
            "From: Dora <{DORA_U_LABEL}>\r\nTo: <{alias_a}>\r\nSubject: unicode form\r\n\
             Date: Mon, 23 Nov 2026 15:00:00 +0000\r\n\r\nHej Alice\r\n"
        ),
    )
    .unwrap();
    let replies = dialog(
        &daemon.server(),
        &[
            "EHLO mail.caf-dma.example",
            &format!("MAIL FROM:<{DORA_U_LABEL}> SMTPUTF8"),
            &format!("RCPT TO:<{alias_a}>"),
            "DATA",
            &format!("BODY:@{}", message.display()),
            "QUIT",
        ],
    );
    assert!(replies[2].starts_with("250"), "MAIL: {replies:?}");
    assert!(
        replies[5].starts_with("250 2.0.0"),
        "{replies:?}\n{}",
        daemon.log()
    );
    let got = wait_captured(&daemon.outbox(), 1);
    assert_eq!(got[0].0["rcpt_to"], ALICE.1);
    assert!(
        !contains_ci(&got[0].1, "caf"),
        "Dora's domain reached Alice"
    );
}
