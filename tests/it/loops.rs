//! Loop protection against the running daemon: anonrelay's own output, fed
//! back to it (two inboxes auto-forwarding to each other's alias), is
//! refused `554 5.4.6` after one hop and never forwarded again; so is a
//! message that has passed through more hops than Postfix would allow.

use crate::common;

use anonrelay::deliver::loop_guard::MAX_RECEIVED_HEADERS;
use common::*;

const ALICE: &str = "alice.real@a-mail.example";
const BOB: &str = "bob.real@b-mail.example";

/// Sends `message` in one transaction (Python's smtplib); returns the
/// reply to the end of DATA.
fn send(daemon: &Daemon, from: &str, to: &str, message: &[u8]) -> String {
    let file = daemon
        .dir
        .path()
        .join(format!("send-{}.eml", uuid::Uuid::new_v4()));
    std::fs::write(&file, message).unwrap();
    let replies = dialog(
        &daemon.server(),
        &[
            "EHLO forwarder.a-mail.example",
            &format!("MAIL FROM:<{from}>"),
            &format!("RCPT TO:<{to}>"),
            "DATA",
            &format!("BODY:@{}", file.display()),
            "QUIT",
        ],
    );
    assert!(
        replies.get(3).is_some_and(|r| r.starts_with("250")),
        "{replies:?}"
    );
    replies.get(5).cloned().unwrap_or_default()
}

/// Removes the header block's Received fields (with their folded lines).
fn without_received(message: &[u8]) -> Vec<u8> {
    let text = String::from_utf8(message.to_vec()).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut kept = Vec::new();
    let mut skipping = false;
    for line in head.split("\r\n") {
        let folded = line.starts_with(' ') || line.starts_with('\t');
        if !folded {
            skipping = line.to_ascii_lowercase().starts_with("received:");
        }
        if !skipping {
            kept.push(line);
        }
    }
    format!("{}\r\n\r\n{body}", kept.join("\r\n")).into_bytes()
}

#[test]
fn own_output_fed_back_is_refused_after_one_hop() {
    let daemon = Daemon::start(DaemonOptions::outbox());
    let conv = daemon.conversation(("alice", ALICE), ("bob", BOB));

    // Hop 1: Bob writes to Alice's alias; the relay forwards it.
    let original = format!(
        "From: Bob <{BOB}>\r\nTo: <{}>\r\nSubject: ping\r\nMessage-ID: <p1@b-mail.example>\r\n\r\nhello\r\n",
        conv.alias_a
    );
    assert!(send(&daemon, BOB, &conv.alias_a, original.as_bytes()).starts_with("250"));
    let first = wait_captured(&daemon.outbox(), 1);
    let forwarded = first[0].1.clone();
    assert!(header(&forwarded, "Received")
        .is_some_and(|r| r.starts_with("by mx.relay.test (anonrelay)")));

    // Alice's inbox auto-forwards it, unchanged, to Bob's alias: her address
    // is the registered partner, so only the loop check can stop it.
    let reply = send(&daemon, ALICE, &conv.alias_b, &forwarded);
    assert!(reply.starts_with("554 5.4.6"), "{reply}");
    // Also with a hop added in between (her provider's Received on top).
    let mut via_provider = b"Received: from mx.a-mail.example by in.a-mail.example; Mon, 16 Nov 2026 10:00:00 +0000\r\n".to_vec();
    via_provider.extend_from_slice(&forwarded);
    let reply = send(&daemon, ALICE, &conv.alias_b, &via_provider);
    assert!(reply.starts_with("554 5.4.6"), "{reply}");
    assert_eq!(
        captured(&daemon.outbox()).len(),
        1,
        "a looping copy went out"
    );

    // Control: the same message without our trace header is forwarded, so
    // the refusal above was the loop check and nothing else.
    let reply = send(&daemon, ALICE, &conv.alias_b, &without_received(&forwarded));
    assert!(reply.starts_with("250"), "{reply}");
    let all = wait_captured(&daemon.outbox(), 2);
    // (Outbox names sort by second, not arrival, so look at both.)
    let recipients: Vec<&serde_json::Value> = all.iter().map(|(env, _)| &env["rcpt_to"]).collect();
    assert!(
        recipients.contains(&&serde_json::json!(BOB)),
        "{recipients:?}"
    );
    assert!(
        daemon.log().contains("mail loop"),
        "no log line for the refusal"
    );
}

#[test]
fn too_many_hops_are_refused_and_the_limit_itself_passes() {
    let daemon = Daemon::start(DaemonOptions::outbox());
    let conv = daemon.conversation(("alice", ALICE), ("bob", BOB));
    let with_hops = |hops: usize| {
        let mut message = String::new();
        for hop in 0..hops {
            message.push_str(&format!(
                "Received: from h{hop}.example by h{}.example; Mon, 16 Nov 2026 10:00:00 +0000\r\n",
                hop + 1
            ));
        }
        message.push_str(&format!(
            "From: <{BOB}>\r\nTo: <{}>\r\nSubject: hops\r\n\r\nbody\r\n",
            conv.alias_a
        ));
        message.into_bytes()
    };
    let reply = send(
        &daemon,
        BOB,
        &conv.alias_a,
        &with_hops(MAX_RECEIVED_HEADERS + 1),
    );
    assert!(reply.starts_with("554 5.4.6"), "{reply}");
    assert!(captured(&daemon.outbox()).is_empty());
    let reply = send(
        &daemon,
        BOB,
        &conv.alias_a,
        &with_hops(MAX_RECEIVED_HEADERS),
    );
    assert!(reply.starts_with("250"), "{reply}");
    wait_captured(&daemon.outbox(), 1);
}

#[test]
fn composed_message_fed_back_is_refused_too() {
    let base = tempfile::tempdir().unwrap();
    let mut options = DaemonOptions::outbox();
    let hook = Hook::configure(base.path(), &mut options);
    let daemon = Daemon::start(options);
    let conv = daemon.conversation(("alice", ALICE), ("bob", BOB));
    // Alice writes to Bob through the front-end.
    let body = serde_json::json!({
        "conversation_id": conv.id, "from_user": "alice", "subject": "hi", "text": "Hi Bob",
    })
    .to_string();
    let sent = eventually("the hook to answer", || {
        let (status, sent) = hook.authed("POST", "/v1/messages", Some(&body));
        (status == 200).then_some(sent)
    });
    assert_eq!(sent["status"], "sent", "{sent}");
    let composed = wait_captured(&daemon.outbox(), 1)[0].1.clone();
    // Bob's inbox auto-forwards it to Alice's alias: refused at once.
    let reply = send(&daemon, BOB, &conv.alias_a, &composed);
    assert!(reply.starts_with("554 5.4.6"), "{reply}");
    assert_eq!(captured(&daemon.outbox()).len(), 1);
}
