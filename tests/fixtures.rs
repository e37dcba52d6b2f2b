//! Every fixture through the rewrite function (in process) and through the
//! running daemon (Python's smtplib sending, aiosmtpd receiving): forwarded
//! headers and envelope carry none of the fixture's secrets and no header
//! outside the allowlist; the body is untouched; hostile ones are refused.

mod common;

use std::path::PathBuf;

use anonrelay::rewrite::{self, inspect, Context};
use anonrelay::tokens::ServerSecret;
use common::*;

#[derive(serde::Deserialize)]
struct Manifest {
    fixture: Vec<Fixture>,
}

#[derive(serde::Deserialize, Clone)]
struct Fixture {
    file: String,
    expect: String,
    #[serde(default)]
    sender: String,
    #[serde(default)]
    secrets: Vec<String>,
    #[serde(default)]
    body_mentions_sender: bool,
}

/// Header names a forwarded message may carry: the allowlist plus ours.
const ALLOWED: &[&str] = &[
    "received",
    "from",
    "to",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "subject",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "content-language",
    "content-id",
    "auto-submitted",
    "importance",
    "priority",
];

fn fixtures() -> Vec<(Fixture, Vec<u8>)> {
    let dir = repo().join("fixtures");
    let text = std::fs::read_to_string(dir.join("manifest.toml")).expect("fixtures/manifest.toml");
    let manifest: Manifest = toml::from_str(&text).expect("manifest parses");
    assert!(manifest.fixture.len() >= 10, "the corpus is too small");
    manifest
        .fixture
        .into_iter()
        .map(|f| {
            let bytes =
                std::fs::read(dir.join(&f.file)).unwrap_or_else(|e| panic!("{}: {e}", f.file));
            (f, bytes)
        })
        .collect()
}

fn header_names(headers: &str) -> Vec<String> {
    headers
        .split("\r\n")
        .filter(|l| !l.starts_with(' ') && !l.starts_with('\t') && !l.is_empty())
        .filter_map(|l| {
            l.split_once(':')
                .map(|(n, _)| n.trim().to_ascii_lowercase())
        })
        .collect()
}

fn assert_clean(name: &str, fixture: &Fixture, forwarded: &[u8], extra_secrets: &[&str]) {
    let headers = header_block(forwarded);
    for secret in fixture
        .secrets
        .iter()
        .map(String::as_str)
        .chain(extra_secrets.iter().copied())
    {
        assert!(
            !contains_ci(headers.as_bytes(), secret),
            "{name}: `{secret}` leaked into the forwarded headers:\n{headers}"
        );
    }
    for header in header_names(&headers) {
        assert!(
            ALLOWED.contains(&header.as_str()),
            "{name}: header `{header}` is not allowed"
        );
    }
}

fn body_of(message: &[u8]) -> &[u8] {
    message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(&message[message.len()..], |p| &message[p + 4..])
}

#[test]
fn rewrite_of_every_fixture_leaks_nothing_and_keeps_the_body() {
    let cipher = ServerSecret::from_bytes([5; 32]).message_id_cipher();
    let mut forwarded_count = 0;
    for (fixture, raw) in fixtures() {
        let result = inspect(&raw);
        if fixture.expect == "reject" {
            assert!(
                result.is_err(),
                "{}: hostile fixture was accepted",
                fixture.file
            );
            continue;
        }
        let inspected = result.unwrap_or_else(|e| panic!("{}: refused: {e}", fixture.file));
        let out = rewrite::rewrite(
            &inspected,
            &Context {
                alias_domain: ALIAS_DOMAIN,
                hostname: "mx.relay.test",
                conversation_id: "conv",
                from_alias: "bbbbbbbbbbbbbbbbbbbb",
                sender_address: &fixture.sender,
                from_display_name: None,
                to_alias: "aaaaaaaaaaaaaaaaaaaa",
                cipher: &cipher,
                now: 1_800_000_000,
                trace_id: "t",
            },
        )
        .unwrap_or_else(|e| panic!("{}: rewrite refused: {e}", fixture.file));
        assert_clean(&fixture.file, &fixture, &out, &[]);
        rewrite::check_line_endings(&out).unwrap();
        if !fixture.body_mentions_sender {
            assert_eq!(
                body_of(&out),
                body_of(&raw),
                "{}: body changed",
                fixture.file
            );
        }
        forwarded_count += 1;
    }
    assert!(forwarded_count >= 10);
}

#[test]
fn every_fixture_through_the_daemon_to_a_real_upstream() {
    let base = tempfile::tempdir().unwrap();
    let upstream = AioUpstream::start(base.path(), &[]);
    let daemon = Daemon::start(upstream.daemon_options(base.path()));
    let mut expected = 0;
    for (index, (fixture, _)) in fixtures().into_iter().enumerate() {
        let sender = if fixture.sender.is_empty() {
            "bob.real@sender-mail.example".to_owned()
        } else {
            fixture.sender.clone()
        };
        // A conversation per fixture, so each sender is the registered partner.
        let conv = daemon.conversation(
            (
                &format!("alice{index}"),
                &format!("alice{index}@a-mail.example"),
            ),
            (&format!("bob{index}"), &sender),
        );
        let path: PathBuf = repo().join("fixtures").join(&fixture.file);
        let replies = dialog(
            &daemon.server(),
            &[
                "EHLO bobs-laptop.sender-mail.example",
                &format!("MAIL FROM:<{sender}>"),
                &format!("RCPT TO:<{}>", conv.alias_a),
                "DATA",
                &format!("BODY:@{}", path.display()),
                "QUIT",
            ],
        );
        let final_reply = replies.get(5).cloned().unwrap_or_default();
        if fixture.expect == "reject" {
            assert!(
                final_reply.starts_with('5'),
                "{}: {replies:?}",
                fixture.file
            );
            continue;
        }
        assert!(
            final_reply.starts_with("250"),
            "{}: {replies:?}",
            fixture.file
        );
        expected += 1;
        let all = wait_captured(&upstream.dir, expected);
        let (envelope, message) = &all[expected - 1];
        assert_eq!(
            envelope["rcpt_tos"][0],
            format!("alice{index}@a-mail.example")
        );
        let envelope_text = envelope.to_string();
        for secret in &fixture.secrets {
            assert!(
                !contains_ci(envelope_text.as_bytes(), secret),
                "{}: {secret} in envelope",
                fixture.file
            );
        }
        assert_clean(&fixture.file, &fixture, message, &["127.0.0.1"]);
    }
    assert_eq!(captured(&upstream.dir).len(), expected);
}
