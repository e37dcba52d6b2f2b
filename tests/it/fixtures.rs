//! Every fixture through the rewrite function (in process) and through the
//! running daemon (Python's smtplib sending, aiosmtpd receiving). The
//! forwarded message is judged as a reader sees it, by two parsers
//! (mail-parser and Python's `email`, tests/peers/reader_view.py): no secret
//! of the fixture in the envelope, any header (decoded, parameters joined,
//! nested messages too), any shown text or calendar (decoded, HTML and URL
//! escapes resolved, iCalendar unfolded); no header outside the allowlist;
//! none of the input's boundaries, dropped fields or parameters anywhere;
//! the MIME structure is the input's minus what the policy removes by
//! design, and attachments arrive with the same content. Hostile fixtures
//! are refused.

use crate::common;

use std::path::PathBuf;

use anonrelay::rewrite;
use common::mime_check::{
    decode, reader_views, shows, structure, unresolved_cid_references, ReaderView,
};
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
    /// Secrets the guard by design leaves in body text (display names:
    /// only addresses are replaced); still checked in every header.
    #[serde(default)]
    shown_in_body_text: Vec<String>,
    #[serde(default)]
    body_mentions_sender: bool,
    /// For `reject`: the exact reply code expected after DATA, if stated.
    #[serde(default)]
    reply: String,
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

/// The forwarded message read like a mail client by mail-parser: no
/// secret in any decoded header (nested messages too) or shown text, in
/// any case, URL- or HTML-decoded. (That the input shows the sender, so
/// this check can fail, is asserted on Python's reading: `assert_rebuilt`.)
fn assert_no_decoded_leak(fixture: &Fixture, forwarded: &[u8]) {
    let name = &fixture.file;
    let after = decode(forwarded);
    for secret in &fixture.secrets {
        for header in &after.headers {
            assert!(
                !shows(header, secret),
                "{name}: `{secret}` in a decoded header:\n{header}"
            );
        }
        if fixture.shown_in_body_text.contains(secret) {
            continue;
        }
        for text in &after.texts {
            assert!(
                !shows(text, secret),
                "{name}: `{secret}` in decoded text:\n{text}"
            );
        }
    }
}

/// Parameters the relay writes (src/rewrite/policy.rs); any other name in
/// the output was copied from the sender.
const WRITTEN_PARAMETERS: &[&str] = &[
    "charset",
    "name",
    "filename",
    "boundary",
    "method",
    "report-type",
    "protocol",
    "type",
    "smime-type",
    "start",
];

/// The forwarded message as Python's `email` reads it, against the input.
fn assert_rebuilt(
    fixture: &Fixture,
    raw: &[u8],
    forwarded: &[u8],
    before: &ReaderView,
    after: &ReaderView,
) {
    let name = &fixture.file;
    for secret in &fixture.secrets {
        if fixture.shown_in_body_text.contains(secret) {
            continue;
        }
        if let Some(text) = after.shows(secret) {
            panic!("{name}: a reader is shown `{secret}` in:\n{text}");
        }
    }
    // The input's body must show the sender (so the checks above can fail).
    let shown_in_body = before
        .body_seen
        .iter()
        .any(|text| text.to_lowercase().contains(&fixture.sender.to_lowercase()));
    assert!(
        shown_in_body || !fixture.body_mentions_sender,
        "{name}: the input's body does not show the sender, the check is void"
    );
    assert_eq!(
        after.structure, before.expected,
        "{name}: not the input's structure minus what the policy removes"
    );
    assert_eq!(
        after.structure,
        structure(forwarded),
        "{name}: mail-parser and Python disagree"
    );
    let text = String::from_utf8_lossy(forwarded).to_lowercase();
    for boundary in before.boundaries.iter().filter(|b| b.len() >= 8) {
        assert!(
            !text.contains(&boundary.to_lowercase()),
            "{name}: the input's boundary {boundary} was copied"
        );
    }
    for field in &after.field_names {
        // A forwarded message keeps its Cc, written anew as bare addresses.
        let field = field.to_ascii_lowercase();
        assert!(
            ALLOWED.contains(&field.as_str()) || field == "cc",
            "{name}: field {field} in a part"
        );
    }
    for parameter in &after.param_names {
        let parameter = parameter.to_ascii_lowercase();
        // get_params lists the value itself first (`text/plain`, `inline`).
        let is_value =
            parameter.contains('/') || ["inline", "attachment"].contains(&parameter.as_str());
        assert!(
            is_value || WRITTEN_PARAMETERS.contains(&parameter.as_str()),
            "{name}: parameter {parameter} was copied"
        );
    }
    assert_eq!(
        unresolved_cid_references(forwarded).len(),
        unresolved_cid_references(raw).len(),
        "{name}: an inline image lost its part"
    );
}

/// The rewrite step alone, as the relay calls it for this fixture's sender.
fn forward_in_process(fixture: &Fixture, raw: &[u8]) -> Vec<u8> {
    try_forward(fixture, raw).unwrap_or_else(|e| panic!("{}: refused: {e}", fixture.file))
}

fn try_forward(fixture: &Fixture, raw: &[u8]) -> Result<Vec<u8>, rewrite::RewriteError> {
    rewrite_in_process(raw, &fixture.sender, None)
}

#[test]
fn rewrite_of_every_fixture_is_rebuilt_without_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let mut pairs = Vec::new();
    for (fixture, raw) in fixtures() {
        if fixture.expect == "reject" {
            assert!(
                try_forward(&fixture, &raw).is_err(),
                "{}: hostile fixture was accepted",
                fixture.file
            );
            continue;
        }
        let out = forward_in_process(&fixture, &raw);
        assert_clean(&fixture.file, &fixture, &out, &[]);
        assert_no_decoded_leak(&fixture, &out);
        rewrite::check_line_endings(&out).unwrap();
        pairs.push((fixture, raw, out));
    }
    assert!(pairs.len() >= 10);
    let views = views_of_pairs(dir.path(), &pairs);
    let mut attachments_seen = 0;
    for (index, (fixture, raw, out)) in pairs.iter().enumerate() {
        let (before, after) = (&views[2 * index], &views[2 * index + 1]);
        assert_rebuilt(fixture, raw, out, before, after);
        attachments_seen += after.attachments().len();
    }
    assert!(
        attachments_seen >= 4,
        "too few attachments compared: {attachments_seen}"
    );
}

/// Python's view of each input and its forwarded copy, in pairs.
fn views_of_pairs(dir: &std::path::Path, pairs: &[(Fixture, Vec<u8>, Vec<u8>)]) -> Vec<ReaderView> {
    let mut files = Vec::new();
    for (index, (fixture, raw, out)) in pairs.iter().enumerate() {
        for (suffix, bytes) in [("in", raw), ("out", out)] {
            let path = dir.join(format!("{index}-{suffix}.eml"));
            std::fs::write(&path, bytes).unwrap();
            files.push((path, fixture.sender.as_str()));
        }
    }
    let paths: Vec<(&std::path::Path, &str)> = files
        .iter()
        .map(|(p, sender)| (p.as_path(), *sender))
        .collect();
    reader_views(&paths)
}

/// Read receipts are never forwarded: their headers name the real address.
#[test]
fn read_receipt_requests_are_dropped() {
    let (fixture, raw) = fixtures()
        .into_iter()
        .find(|(f, _)| f.file == "outlook-reply-urlencoded-mailto.eml")
        .unwrap();
    let out = forward_in_process(&fixture, &raw);
    for name in ["Disposition-Notification-To", "Return-Receipt-To"] {
        assert!(header(&raw, name).is_some(), "the fixture asks for {name}");
        assert_eq!(header(&out, name), None, "{name} was forwarded");
    }
}

#[test]
fn every_fixture_through_the_daemon_to_a_real_upstream() {
    let base = tempfile::tempdir().unwrap();
    let upstream = AioUpstream::start(base.path(), &[]);
    let daemon = Daemon::start(upstream.daemon_options(base.path()));
    let mut expected = 0;
    let mut delivered = Vec::new();
    for (index, (fixture, raw)) in fixtures().into_iter().enumerate() {
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
                final_reply.starts_with('5') && final_reply.starts_with(&fixture.reply),
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
        // The client's IP and EHLO name are the sender's too.
        assert_clean(
            &fixture.file,
            &fixture,
            message,
            &["127.0.0.1", "bobs-laptop.sender-mail.example"],
        );
        assert_no_decoded_leak(&fixture, message);
        delivered.push((fixture, raw, message.clone()));
    }
    // The same judgement as in process, on what the upstream received.
    let views = views_of_pairs(base.path(), &delivered);
    for (index, (fixture, raw, message)) in delivered.iter().enumerate() {
        assert_rebuilt(
            fixture,
            raw,
            message,
            &views[2 * index],
            &views[2 * index + 1],
        );
    }
    assert_eq!(captured(&upstream.dir).len(), expected);
}
