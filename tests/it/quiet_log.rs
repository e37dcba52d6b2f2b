//! The daemon's own log is no second metadata store (issue 11, item 6;
//! DESIGN promise 6): at its default level, a daemon that forwards mail,
//! refuses a stranger, creates and revokes conversations, deletes a user and
//! composes through the hook, and turns a bounce into a notice, writes no
//! alias, conversation id, user id, address or subject. The same traffic at
//! `debug` does name the aliases, which shows the check looks where the
//! lines are.

use crate::common;

use common::*;

const ALICE: (&str, &str) = ("u-quiet-alice-7f3", "alice.quiet@a-mail.example");
const BOB: (&str, &str) = ("u-quiet-bob-2c9", "bob.quiet@b-mail.example");
const CAROL: (&str, &str) = ("u-quiet-carol-5d1", "carol.quiet@c-mail.example");
const STRANGER: &str = "mallory.quiet@m-mail.example";
const FORWARDED_SUBJECT: &str = "Pelican sighting 4711";
const COMPOSED_SUBJECT: &str = "Heron report 0815";

/// What one run produced: the daemon's whole log, everything that crossed
/// its boundaries (hook requests and answers, SMTP transcripts, what went
/// upstream), the identifiers involved and the /metrics text.
struct Run {
    log: String,
    traffic: String,
    secrets: Vec<String>,
    metrics: String,
}

fn side(user: (&str, &str)) -> serde_json::Value {
    serde_json::json!({"user_id": user.0, "email": user.1})
}

/// A hook call whose request and answer are kept as traffic.
fn call(
    hook: &Hook,
    traffic: &mut String,
    method: &str,
    path: &str,
    body: Option<String>,
) -> (u16, serde_json::Value) {
    let (status, answer) = hook.authed(method, path, body.as_deref());
    *traffic += &format!(
        "{method} {path} {}\n{status} {answer}\n",
        body.unwrap_or_default()
    );
    (status, answer)
}

fn run_traffic(log_filter: Option<&str>) -> Run {
    let base = tempfile::tempdir().unwrap();
    let mut options = DaemonOptions::outbox();
    let hook = Hook::configure(base.path(), &mut options);
    let mut daemon = Daemon::configure(options);
    daemon.log_filter = log_filter.map(str::to_owned);
    daemon.spawn();
    let mut traffic = String::new();

    // Two conversations through the hook.
    let body = serde_json::json!({"a": side(ALICE), "b": side(BOB)}).to_string();
    let (status, conv) = call(&hook, &mut traffic, "POST", "/v1/conversations", Some(body));
    assert_eq!(status, 201, "{conv}");
    let body = serde_json::json!({"a": side(ALICE), "b": side(CAROL)}).to_string();
    let (status, other) = call(&hook, &mut traffic, "POST", "/v1/conversations", Some(body));
    assert_eq!(status, 201, "{other}");
    let text = |value: &serde_json::Value, key: &str| value[key].as_str().unwrap().to_owned();
    let (conv_id, alias_a, alias_b) = (
        text(&conv, "conversation_id"),
        text(&conv, "alias_a"),
        text(&conv, "alias_b"),
    );
    let (other_id, other_a, other_b) = (
        text(&other, "conversation_id"),
        text(&other, "alias_a"),
        text(&other, "alias_b"),
    );

    // Bob writes to Alice over SMTP; a stranger is refused.
    let (ok, transcript) = swaks_message(
        &daemon.server(),
        BOB.1,
        &alias_a,
        FORWARDED_SUBJECT,
        "Saw one at the harbour.",
    );
    assert!(ok, "{transcript}");
    traffic += &transcript;
    let (ok, transcript) = swaks_message(&daemon.server(), STRANGER, &alias_a, "let me in", "x");
    assert!(!ok && transcript.contains("<** 550 5.7.1"), "{transcript}");
    traffic += &transcript;

    // Alice answers through the hook.
    let body = serde_json::json!({
        "conversation_id": conv_id, "from_user": ALICE.0,
        "subject": COMPOSED_SUBJECT, "text": "Two herons today."
    })
    .to_string();
    let (status, sent) = call(&hook, &mut traffic, "POST", "/v1/messages", Some(body));
    assert_eq!(status, 200, "{sent}");

    // Alice's mailbox bounces Bob's message: the DSN to the VERP address
    // becomes a notice to Bob.
    let forwarded = wait_captured(&daemon.outbox(), 2);
    let verp = forwarded
        .iter()
        .find_map(|(envelope, _)| {
            let from = envelope["mail_from"].as_str()?;
            (envelope["rcpt_to"] == ALICE.1).then(|| from.to_owned())
        })
        .expect("the forwarded message's envelope");
    let dsn = std::fs::read_to_string(repo().join("fixtures/dsn/postfix-user-unknown.eml"))
        .unwrap()
        .replace("@@VERP@@", &verp)
        .replace("@@RECIPIENT@@", ALICE.1)
        .replace("@@FROM_ALIAS@@", &alias_b)
        .replace("@@TO_ALIAS@@", &alias_a)
        .replace("@@SUBJECT@@", FORWARDED_SUBJECT);
    let dsn_file = base.path().join("bounce.eml");
    std::fs::write(&dsn_file, &dsn).unwrap();
    let replies = dialog(
        &daemon.server(),
        &[
            "EHLO mx.upstream-provider.example",
            "MAIL FROM:<>",
            &format!("RCPT TO:<{verp}>"),
            "DATA",
            &format!("BODY:@{}", dsn_file.display()),
            "QUIT",
        ],
    );
    assert!(replies[5].starts_with("250"), "{replies:?}");
    traffic += &replies.join("\n");
    wait_captured(&daemon.outbox(), 3);

    // Revoke one conversation, erase a user.
    let (status, _) = call(
        &hook,
        &mut traffic,
        "DELETE",
        &format!("/v1/conversations/{other_id}"),
        None,
    );
    assert_eq!(status, 204);
    let (status, _) = call(
        &hook,
        &mut traffic,
        "DELETE",
        &format!("/v1/users/{}", CAROL.0),
        None,
    );
    assert_eq!(status, 204);

    for (envelope, message) in captured(&daemon.outbox()) {
        traffic += &format!("{envelope}\n{}\n", String::from_utf8_lossy(&message));
    }
    let (_, metrics) = hook.call("GET", "/metrics", None, Some(&hook.token));
    let local = |alias: &str| alias.split('@').next().unwrap().to_owned();
    let mut secrets = vec![
        conv_id,
        other_id,
        FORWARDED_SUBJECT.to_owned(),
        COMPOSED_SUBJECT.to_owned(),
        STRANGER.to_owned(),
    ];
    for alias in [&alias_a, &alias_b, &other_a, &other_b] {
        secrets.push(local(alias));
    }
    for user in [ALICE, BOB, CAROL] {
        secrets.push(user.0.to_owned());
        secrets.push(user.1.to_owned());
        secrets.push(local(user.1));
    }
    Run {
        log: daemon.log(),
        traffic,
        secrets,
        metrics,
    }
}

#[test]
fn at_the_default_level_the_log_names_no_alias_id_address_or_subject() {
    let run = run_traffic(None);
    // The events happened (counted where the sender cannot look) ...
    for sample in [
        "anonrelay_messages_forwarded_total 2",
        "anonrelay_hook_messages_sent_total 1",
        "anonrelay_sender_refusals_total{check=\"not_partner\"} 1",
        "anonrelay_bounces_total{outcome=\"notified_permanent\"} 1",
        "anonrelay_conversations_created_total 2",
        "anonrelay_conversations_revoked_total 1",
        "anonrelay_users_deleted_total 1",
    ] {
        assert!(
            run.metrics.contains(sample),
            "{sample} in:\n{}",
            run.metrics
        );
    }
    // ... with these identifiers in the traffic ...
    for secret in &run.secrets {
        assert!(
            run.traffic.contains(secret.as_str()),
            "{secret} never crossed the wire"
        );
    }
    // ... and none of them in the log, which did get written.
    assert!(run.log.contains("anonrelay ready"), "{}", run.log);
    for secret in &run.secrets {
        assert!(
            !run.log.contains(secret.as_str()),
            "the default-level log names {secret}:\n{}",
            run.log
        );
    }
    assert!(!run.log.contains("127.0.0.1"), "{}", run.log);
    assert!(!run.log.contains("DEBUG"), "{}", run.log);
}

/// The control: the same traffic at debug names the aliases, so the
/// default-level check above reads the lines the events produce.
#[test]
fn at_debug_the_log_may_name_aliases() {
    let run = run_traffic(Some("debug"));
    let aliases_logged = run
        .secrets
        .iter()
        .filter(|secret| secret.len() == 20 && run.log.contains(secret.as_str()))
        .count();
    assert!(aliases_logged >= 2, "{}", run.log);
}
