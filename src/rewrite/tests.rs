use super::*;
use crate::tokens::ServerSecret;

fn ctx<'a>(cipher: &'a MessageIdCipher) -> Context<'a> {
    Context {
        alias_domain: "relay.example",
        hostname: "mx.relay.example",
        conversation_id: "conv-1",
        from_alias: "bbbbbbbbbbbbbbbbbbbb",
        sender_address: "bob@sender.example",
        from_display_name: None,
        to_alias: "aaaaaaaaaaaaaaaaaaaa",
        cipher,
        now: 1_800_000_000,
        trace_id: "trace1",
    }
}

const MESSAGE: &[u8] = b"Received: from bobs-laptop ([203.0.113.77]) by mx.sender.example\r\n\
Return-Path: <bob@sender.example>\r\n\
From: Bob Real <Bob@Sender.Example>\r\n\
To: <aaaaaaaaaaaaaaaaaaaa@relay.example>\r\n\
Cc: carol@third.example\r\n\
Reply-To: bob.private@sender.example\r\n\
Subject: =?UTF-8?B?SGVsbG8gd29ybGQ=?=\r\n\
Date: Tue, 3 Nov 2026 10:00:00 +0100\r\n\
Message-ID: <orig-1@mail.sender.example>\r\n\
In-Reply-To: <x@y.example>\r\n\
References: <w@y.example>\r\n\t<x@y.example>\r\n\
X-Originating-IP: 203.0.113.77\r\n\
MIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
User-Agent: Thunderbird\r\n\
\r\n\
Hi there\r\n\
.leading dot stays\r\n";

fn headers_of(out: &[u8]) -> String {
    let text = String::from_utf8_lossy(out);
    text.split("\r\n\r\n").next().unwrap().to_owned()
}

#[test]
fn inspect_reads_from_and_decoded_subject() {
    let inspected = inspect(MESSAGE).unwrap();
    assert_eq!(
        inspected.from_address.as_deref(),
        Some("bob@sender.example")
    );
    assert_eq!(inspected.subject, "Hello world");
}

#[test]
fn rewrite_keeps_allowlist_and_drops_the_rest() {
    let cipher = ServerSecret::from_bytes([9; 32]).message_id_cipher();
    let out = rewrite(&inspect(MESSAGE).unwrap(), &ctx(&cipher)).unwrap();
    let headers = headers_of(&out);
    for secret in [
        "bob",
        "Bob",
        "sender.example",
        "203.0.113.77",
        "carol",
        "Thunderbird",
        "bobs-laptop",
        "+0100",
    ] {
        assert!(!headers.contains(secret), "{secret} leaked in:\n{headers}");
    }
    assert!(headers.contains("From: <bbbbbbbbbbbbbbbbbbbb@relay.example>"));
    assert!(headers.contains("To: <aaaaaaaaaaaaaaaaaaaa@relay.example>"));
    assert!(headers.contains("Subject: =?UTF-8?B?SGVsbG8gd29ybGQ=?="));
    assert!(headers.contains("Content-Type: text/plain; charset=utf-8"));
    assert!(
        headers.contains("Date: Tue, 3 Nov 2026 09:00:00 +0000"),
        "{headers}"
    );
    assert!(headers.starts_with("Received: by mx.relay.example (anonrelay) id trace1;"));
    assert_eq!(headers.matches("Received:").count(), 1);
    assert!(out.ends_with(b"\r\n\r\nHi there\r\n.leading dot stays\r\n"));
    check_line_endings(&out).unwrap();
}

#[test]
fn threading_ids_are_tokenized_and_reversible() {
    let cipher = ServerSecret::from_bytes([9; 32]).message_id_cipher();
    let out = rewrite(&inspect(MESSAGE).unwrap(), &ctx(&cipher)).unwrap();
    let parsed = MessageParser::new().parse(&out).unwrap();
    let token = parsed.message_id().unwrap().to_owned();
    assert!(token.ends_with("@relay.example"));
    // The reply from the other side references our token ...
    let reply = format!(
        "From: alice@a.example\r\nMessage-ID: <r1@a.example>\r\nIn-Reply-To: <{token}>\r\nReferences: <{token}>\r\n\r\nok\r\n"
    );
    let out = rewrite(&inspect(reply.as_bytes()).unwrap(), &ctx(&cipher)).unwrap();
    let headers = headers_of(&out);
    // ... and reaches the first sender with its own original id.
    assert!(
        headers.contains("In-Reply-To: <orig-1@mail.sender.example>"),
        "{headers}"
    );
    assert!(
        headers.contains("References: <orig-1@mail.sender.example>"),
        "{headers}"
    );
    assert!(!headers.contains("a.example"));
}

#[test]
fn display_name_comes_from_context_only() {
    let cipher = ServerSecret::from_bytes([9; 32]).message_id_cipher();
    let context = Context {
        from_display_name: Some("Night Owl"),
        ..ctx(&cipher)
    };
    let headers = headers_of(&rewrite(&inspect(MESSAGE).unwrap(), &context).unwrap());
    assert!(headers.contains("From: \"Night Owl\" <bbbbbbbbbbbbbbbbbbbb@relay.example>"));
    assert!(!headers.contains("Bob Real"));
}

#[test]
fn missing_message_id_and_date_are_supplied() {
    let cipher = ServerSecret::from_bytes([9; 32]).message_id_cipher();
    let out = rewrite(&inspect(b"Subject: x\r\n\r\n").unwrap(), &ctx(&cipher)).unwrap();
    let headers = headers_of(&out);
    assert!(headers.contains("Message-ID: <trace1@relay.example>"));
    assert!(headers.contains("Date: "));
}

#[test]
fn empty_message_gets_our_headers() {
    let cipher = ServerSecret::from_bytes([9; 32]).message_id_cipher();
    let inspected = inspect(b"").unwrap();
    assert!(inspected.from_address.is_none());
    let out = rewrite(&inspected, &ctx(&cipher)).unwrap();
    assert!(out.ends_with(b"\r\n\r\n"));
    check_line_endings(&out).unwrap();
}

#[test]
fn refuses_ambiguous_senders_and_broken_headers() {
    let cases: &[(&[u8], RewriteError)] = &[
        (
            b"From: a@x.example\r\nFrom: b@y.example\r\n\r\n",
            RewriteError::SeveralFrom,
        ),
        (
            b"From: a@x.example\r\nfrom: b@y.example\r\n\r\n",
            RewriteError::SeveralFrom,
        ),
        (
            b"From: a@x.example, b@y.example\r\n\r\n",
            RewriteError::BadFrom,
        ),
        (b"From: undisclosed:;\r\n\r\n", RewriteError::BadFrom),
        (b"From: nobody\r\n\r\n", RewriteError::BadFrom),
        (b"Fr om: a@x.example\r\n\r\n", RewriteError::MalformedHeader),
        (
            b"From: a@x.example\nSubject: x\r\n\r\n",
            RewriteError::BareLineEnding,
        ),
        (
            b"From: a@x.example\r\n\r\nbody\rmore\r\n",
            RewriteError::BareLineEnding,
        ),
    ];
    for (raw, expected) in cases {
        assert_eq!(
            inspect(raw).err().as_ref(),
            Some(expected),
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn duplicate_kept_headers_are_emitted_once() {
    let cipher = ServerSecret::from_bytes([9; 32]).message_id_cipher();
    let raw = b"Subject: one\r\nSubject: two\r\n\r\n";
    let headers = headers_of(&rewrite(&inspect(raw).unwrap(), &ctx(&cipher)).unwrap());
    assert!(headers.contains("Subject: one"));
    assert!(!headers.contains("Subject: two"));
}

#[test]
fn body_guard_rewrites_the_top_level_transfer_encoding_when_it_must() {
    let cipher = ServerSecret::from_bytes([9; 32]).message_id_cipher();
    let long_line = format!("{} Bob@Sender.Example", "w".repeat(990));
    for encoding_header in ["", "Content-Transfer-Encoding: 8bit\r\n"] {
        let raw = format!(
            "From: <bob@sender.example>\r\nContent-Type: text/plain; charset=utf-8\r\n{encoding_header}\r\n{long_line}\r\n"
        );
        let out = rewrite(&inspect(raw.as_bytes()).unwrap(), &ctx(&cipher)).unwrap();
        let headers = headers_of(&out);
        assert_eq!(
            headers
                .matches("Content-Transfer-Encoding: quoted-printable")
                .count(),
            1,
            "{headers}"
        );
        assert!(!headers.contains("8bit"));
        let body = &out[headers.len() + 4..];
        assert!(body.split(|&b| b == b'\n').all(|l| l.len() <= 77));
        assert_eq!(
            transfer::qp_decode(body),
            format!("{} bbbbbbbbbbbbbbbbbbbb@relay.example\r\n", "w".repeat(990)).as_bytes()
        );
    }
}

#[test]
fn body_that_does_not_mention_the_sender_is_byte_identical() {
    let cipher = ServerSecret::from_bytes([9; 32]).message_id_cipher();
    let raw = b"From: <bob@sender.example>\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n--x  \r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nbob@sender.example.org =\r\nand jimbob@sender.example, caf=E9\r\n--x--\r\n";
    let out = rewrite(&inspect(raw).unwrap(), &ctx(&cipher)).unwrap();
    let body_start = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert!(out.ends_with(&raw[body_start..]));
}

#[test]
fn too_complex_bodies_are_refused() {
    let cipher = ServerSecret::from_bytes([9; 32]).message_id_cipher();
    let raw = format!(
        "From: <bob@sender.example>\r\n{}\r\n",
        "Content-Type: message/rfc822\r\n\r\n".repeat(30)
    );
    assert_eq!(
        rewrite(&inspect(raw.as_bytes()).unwrap(), &ctx(&cipher)),
        Err(RewriteError::TooComplex)
    );
}

#[test]
fn a_copy_that_would_outgrow_its_budget_is_refused() {
    // "bob@sender.example" (18) becomes the 34-character alias address: a
    // body of nothing but addresses grows by ~85%, far past an eighth.
    let cipher = ServerSecret::from_bytes([9; 32]).message_id_cipher();
    let body = "bob@sender.example\r\n".repeat(20_000);
    let raw = format!("From: <bob@sender.example>\r\n\r\n{body}");
    assert_eq!(
        rewrite(&inspect(raw.as_bytes()).unwrap(), &ctx(&cipher)),
        Err(RewriteError::TooComplex)
    );
    // Real mail quoting the address now and then stays well inside it.
    let body =
        "On Tue, bob@sender.example wrote:\r\n> some quoted line of text here\r\n".repeat(2_000);
    let raw = format!("From: <bob@sender.example>\r\n\r\n{body}");
    let out = rewrite(&inspect(raw.as_bytes()).unwrap(), &ctx(&cipher)).unwrap();
    assert!(out.len() <= max_output_len(raw.len()));
}
