use super::*;
use crate::core::tokens::ServerSecret;
use mail_parser::MimeHeaders;

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
        client_ip: Some("203.0.113.77".parse().unwrap()),
        client_host: Some("bobs-laptop.sender.example"),
        remote_content: RemoteContent::Block,
    }
}

fn forward(raw: &[u8]) -> Vec<u8> {
    let cipher = ServerSecret::from_bytes([9; 32]).message_id_cipher();
    rewrite(&inspect(raw).unwrap(), &ctx(&cipher))
        .unwrap()
        .message
}

fn body_of(out: &[u8]) -> String {
    let text = String::from_utf8_lossy(out);
    text.split_once("\r\n\r\n").unwrap().1.to_owned()
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
    let out = rewrite(&inspect(MESSAGE).unwrap(), &ctx(&cipher))
        .unwrap()
        .message;
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
    assert!(headers.contains("Subject: Hello world\r\n"), "{headers}");
    assert!(
        headers.contains("Content-Type: text/plain; charset=\"utf-8\""),
        "{headers}"
    );
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
    let out = rewrite(&inspect(MESSAGE).unwrap(), &ctx(&cipher))
        .unwrap()
        .message;
    let parsed = MessageParser::new().parse(&out).unwrap();
    let token = parsed.message_id().unwrap().to_owned();
    assert!(token.ends_with("@relay.example"));
    // The reply from the other side references our token ...
    let reply = format!(
        "From: alice@a.example\r\nMessage-ID: <r1@a.example>\r\nIn-Reply-To: <{token}>\r\nReferences: <{token}>\r\n\r\nok\r\n"
    );
    let out = rewrite(&inspect(reply.as_bytes()).unwrap(), &ctx(&cipher))
        .unwrap()
        .message;
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
    let headers = headers_of(
        &rewrite(&inspect(MESSAGE).unwrap(), &context)
            .unwrap()
            .message,
    );
    assert!(headers.contains("From: \"Night Owl\" <bbbbbbbbbbbbbbbbbbbb@relay.example>"));
    assert!(!headers.contains("Bob Real"));
}

#[test]
fn missing_message_id_and_date_are_supplied() {
    let cipher = ServerSecret::from_bytes([9; 32]).message_id_cipher();
    let out = rewrite(&inspect(b"Subject: x\r\n\r\n").unwrap(), &ctx(&cipher))
        .unwrap()
        .message;
    let headers = headers_of(&out);
    assert!(headers.contains("Message-ID: <trace1@relay.example>"));
    assert!(headers.contains("Date: "));
}

#[test]
fn empty_message_gets_our_headers() {
    let cipher = ServerSecret::from_bytes([9; 32]).message_id_cipher();
    let inspected = inspect(b"").unwrap();
    assert!(inspected.from_address.is_none());
    let out = rewrite(&inspected, &ctx(&cipher)).unwrap().message;
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
    let headers = headers_of(
        &rewrite(&inspect(raw).unwrap(), &ctx(&cipher))
            .unwrap()
            .message,
    );
    assert!(headers.contains("Subject: one"), "{headers}");
    assert!(!headers.contains("Subject: two"));
}

#[test]
fn a_long_line_with_the_address_travels_as_quoted_printable() {
    let long_line = format!("{} Bob@Sender.Example", "w".repeat(990));
    for encoding_header in ["", "Content-Transfer-Encoding: 8bit\r\n"] {
        let raw = format!(
            "From: <bob@sender.example>\r\nContent-Type: text/plain; charset=utf-8\r\n{encoding_header}\r\n{long_line}\r\n"
        );
        let out = forward(raw.as_bytes());
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
fn nothing_of_the_senders_structure_is_copied() {
    // Outlook's boundary names its mailbox server; the preamble, the
    // epilogue, part fields and parameters are the client's.
    let raw = b"From: <bob@sender.example>\r\n\
MIME-Version: 1.0 (Mac OS X Mail 16.0 \\(3826.200.121\\))\r\n\
Content-Type: multipart/mixed; boundary=\"_000_AM0PR03MB6324EURPRD03PROD_\"; x-client=thing\r\n\r\n\
This is a multi-part message in MIME format from Outlook.\r\n\
--_000_AM0PR03MB6324EURPRD03PROD_\r\n\
Content-Type: text/plain; charset=iso-8859-1; x-unknown=1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
X-Mailer: Outlook\r\n\
X-Originating-IP: 203.0.113.77\r\n\
Content-Description: written on bobs-laptop\r\n\r\n\
caf=E9\r\n\
--_000_AM0PR03MB6324EURPRD03PROD_\r\n\
Content-Type: application/pdf; name=\"plan.pdf\"\r\n\
Content-Disposition: attachment; filename=\"plan.pdf\";\r\n creation-date=\"Tue, 03 Nov 2026 10:00:00 +0200\"; size=3\r\n\
Content-Transfer-Encoding: base64\r\n\r\n\
UERG\r\n\
--_000_AM0PR03MB6324EURPRD03PROD_--\r\n\
epilogue from the client\r\n";
    let out = forward(raw);
    let text = String::from_utf8_lossy(&out);
    for secret in [
        "AM0PR03MB6324",
        "Mac OS X",
        "x-client",
        "x-unknown",
        "multi-part message",
        "X-Mailer",
        "203.0.113.77",
        "Content-Description",
        "bobs-laptop",
        "creation-date",
        "+0200",
        "size=",
        "epilogue",
    ] {
        assert!(!text.contains(secret), "{secret} in:\n{text}");
    }
    let parsed = MessageParser::new().parse(&out).unwrap();
    assert_eq!(parsed.body_text(0).as_deref(), Some("café"));
    let attachment = parsed.attachment(0).unwrap();
    assert_eq!(attachment.contents(), b"PDF");
    assert_eq!(attachment.attachment_name(), Some("plan.pdf"));
    assert!(text.contains("MIME-Version: 1.0\r\n"));
}

#[test]
fn signatures_and_keys_are_removed_and_signed_content_unwrapped() {
    let raw = b"From: Bob Real <bob@sender.example>\r\n\
Content-Type: multipart/signed; protocol=\"application/pgp-signature\"; micalg=pgp-sha256; boundary=s\r\n\r\n\
--s\r\n\
Content-Type: multipart/mixed; boundary=m\r\n\r\n\
--m\r\n\
Content-Type: text/plain\r\n\r\n\
signed text\r\n\
--m\r\n\
Content-Type: application/pgp-keys; name=\"OpenPGP_0xB0B.asc\"\r\n\
Content-Disposition: attachment\r\n\r\n\
-----BEGIN PGP PUBLIC KEY BLOCK-----\r\n\
--m\r\n\
Content-Type: application/ms-tnef; name=winmail.dat\r\n\r\n\
tnef\r\n\
--m--\r\n\
--s\r\n\
Content-Type: application/pgp-signature; name=\"signature.asc\"\r\n\r\n\
-----BEGIN PGP SIGNATURE-----\r\n\
--s--\r\n";
    let out = forward(raw);
    let text = String::from_utf8_lossy(&out);
    for gone in [
        "pgp-signature",
        "pgp-keys",
        "0xB0B",
        "PGP",
        "signature.asc",
        "tnef",
        "winmail",
    ] {
        assert!(!text.contains(gone), "{gone} in:\n{text}");
    }
    let parsed = MessageParser::new().parse(&out).unwrap();
    assert_eq!(parsed.body_text(0).as_deref(), Some("signed text"));
    assert_eq!(parsed.attachment_count(), 0);
}

#[test]
fn the_display_name_goes_where_it_stands_beside_the_address() {
    let raw = "From: Bob Real <bob@sender.example>\r\nContent-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\r\n\r\n\
Bob Real likes tea.\r\n\r\nOn Tue, Nov 3, 2026, Bob Real <bob@sender.exa \r\nmple> wrote:\r\n> hi from 203.0.113.77\r\n";
    let out = forward(raw.as_bytes());
    assert_eq!(
        body_of(&out),
        "Bob Real likes tea.\r\n\r\nOn Tue, Nov 3, 2026, bbbbbbbbbbbbbbbbbbbb@relay.example <bbbbbbbbbbbbbbbbbbbb@relay.example> wrote:\r\n> hi from [hidden]\r\n"
    );
}

#[test]
fn too_complex_bodies_are_refused() {
    let cipher = ServerSecret::from_bytes([9; 32]).message_id_cipher();
    let raw = format!(
        "From: <bob@sender.example>\r\n{}\r\n",
        "Content-Type: message/rfc822\r\n\r\n".repeat(30)
    );
    assert_eq!(
        rewrite(&inspect(raw.as_bytes()).unwrap(), &ctx(&cipher)).err(),
        Some(RewriteError::TooComplex)
    );
}

#[test]
fn a_part_with_a_million_rfc2231_sections_is_refused_in_one_scan() {
    // mail-parser joins `x*K*=` sections in quadratic time (55 s of CPU at
    // a million); a part's MIME field is capped at 16 KiB before it is
    // parsed, so such a part costs one scan of the header block.
    let sections: String = (0..1_000_000).map(|k| format!(";\r\n x*{k}*=a")).collect();
    let raw = format!(
        "From: <bob@sender.example>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
         --b\r\nContent-Type: text/plain{sections}\r\n\r\nhi\r\n--b--\r\n"
    );
    assert_eq!(
        forward_result(raw.as_bytes()).err(),
        Some(RewriteError::TooComplex)
    );
    // Up to the cap, the sections are joined as a reader joins them.
    let sections: String = (0..500).map(|k| format!(";\r\n x*{k}*=a")).collect();
    let raw = format!(
        "From: <bob@sender.example>\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
         --b\r\nContent-Type: text/plain{sections}\r\n\r\nhi\r\n--b--\r\n"
    );
    assert!(forward_result(raw.as_bytes()).is_ok());
}

#[test]
fn a_copy_that_would_outgrow_its_budget_is_refused() {
    // "bob@sender.example" (18) becomes the 34-character alias address: a
    // body of nothing but addresses grows by ~85%, far past three eighths.
    let cipher = ServerSecret::from_bytes([9; 32]).message_id_cipher();
    let body = "bob@sender.example\r\n".repeat(100_000);
    let raw = format!("From: <bob@sender.example>\r\n\r\n{body}");
    assert_eq!(
        rewrite(&inspect(raw.as_bytes()).unwrap(), &ctx(&cipher)).err(),
        Some(RewriteError::TooComplex)
    );
    // Real mail quoting the address now and then stays well inside it.
    let body =
        "On Tue, bob@sender.example wrote:\r\n> some quoted line of text here\r\n".repeat(2_000);
    let raw = format!("From: <bob@sender.example>\r\n\r\n{body}");
    let out = forward(raw.as_bytes());
    assert!(out.len() <= max_output_len(raw.len()));
}

fn forward_result(raw: &[u8]) -> Result<Vec<u8>, RewriteError> {
    let cipher = ServerSecret::from_bytes([9; 32]).message_id_cipher();
    rewrite(&inspect(raw)?, &ctx(&cipher)).map(|r| r.message)
}

fn nested(depth: usize) -> Vec<u8> {
    let mut message = b"From: <bob@sender.example>\r\n".to_vec();
    for level in 0..depth {
        message.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=b{level}\r\n\r\n--b{level}\r\n")
                .as_bytes(),
        );
    }
    message.extend_from_slice(b"Content-Type: text/plain\r\n\r\nbob@sender.example\r\n");
    for level in (0..depth).rev() {
        message.extend_from_slice(format!("--b{level}--\r\n").as_bytes());
    }
    message
}

#[test]
fn depth_and_part_count_are_bounded() {
    let deepest = forward_result(&nested(tree::MAX_DEPTH)).unwrap();
    let parsed = MessageParser::new().parse(&deepest).unwrap();
    assert_eq!(
        parsed.body_text(0).as_deref(),
        Some("bbbbbbbbbbbbbbbbbbbb@relay.example")
    );
    assert_eq!(
        forward_result(&nested(tree::MAX_DEPTH + 1)).err(),
        Some(RewriteError::TooComplex)
    );
    let mut many = b"Content-Type: multipart/mixed; boundary=m\r\n\r\n".to_vec();
    for _ in 0..tree::MAX_ENTITIES {
        many.extend_from_slice(b"--m\r\n\r\nx\r\n");
    }
    many.extend_from_slice(b"--m--\r\n");
    assert_eq!(forward_result(&many).err(), Some(RewriteError::TooComplex));
    let deep = format!(
        "Subject: x\r\n{}",
        "Content-Type: message/rfc822\r\n\r\n".repeat(200)
    );
    assert_eq!(
        forward_result(deep.as_bytes()).err(),
        Some(RewriteError::TooComplex)
    );
}

#[test]
fn part_headers_are_read_in_one_pass_whatever_they_hold() {
    // Only the MIME fields are parsed: a part header of 200,000 other
    // names once cost 2 x 10^10 comparisons.
    let mut block: Vec<u8> = (0..200_000)
        .flat_map(|i| format!("x{i}: v\r\n").into_bytes())
        .collect();
    block.extend_from_slice(b"Content-Type: text/plain; charset=iso-8859-1\r\n");
    block.extend_from_slice(b"content-type: text/html\r\n\r\n");
    let header = tree::PartHeader::read(&block).unwrap();
    assert_eq!(
        header.media_type, "text/plain",
        "the first Content-Type wins"
    );
    assert_eq!(header.param("charset"), Some("iso-8859-1"));
}

#[test]
fn hostile_shapes_are_rebuilt_or_refused_without_panic() {
    for body in [
        &b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n--\r\n"[..],
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x--",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x\r\n--x\r\n",
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!",
        b"Content-Type: message/rfc822\r\n\r\n",
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=",
        b"Content-Type: text/plain; charset=utf-16\r\n\r\nbob@sender.example",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\nno blank line bob@sender.example",
        b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nFrom: <bob@sender.example>\r\n\r\nhi\r\n--d--\r\n",
    ] {
        let mut raw = b"From: <bob@sender.example>\r\n".to_vec();
        raw.extend_from_slice(body);
        if let Ok(out) = forward_result(&raw) {
            check_line_endings(&out).unwrap();
            assert!(MessageParser::new().parse(&out).is_some());
            let text = String::from_utf8_lossy(&out).to_ascii_lowercase();
            assert!(!text.contains("bob@sender.example"), "{text}");
        }
    }
}

#[test]
fn nested_encoded_messages_cannot_multiply_memory() {
    // Each level is a quoted-printable message/rfc822 holding the next:
    // decoding every level would copy the whole body again and again.
    let mut message =
        format!("Content-Type: text/plain\r\n\r\n{}\r\n", "q".repeat(60_000)).into_bytes();
    for _ in 0..8 {
        let mut outer =
            b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
                .to_vec();
        outer.extend_from_slice(&message);
        message = outer;
    }
    assert_eq!(
        forward_result(&message).err(),
        Some(RewriteError::TooComplex)
    );
    // One encoded forwarded message is rebuilt, its header sanitized.
    let one = format!(
        "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nFrom: Bob Real <bob@sender.example>\r\nX-Originating-IP: 203.0.113.9\r\nTo: carol@third.example\r\nSubject: old\r\n\r\n{}\r\n",
        "q".repeat(60_000)
    );
    let out = String::from_utf8(forward_result(one.as_bytes()).unwrap()).unwrap();
    assert!(
        out.contains("From: <bbbbbbbbbbbbbbbbbbbb@relay.example>\r\nTo: <carol@third.example>\r\nSubject: old\r\nMIME-Version: 1.0\r\n"),
        "{out}"
    );
    assert!(!out.contains("203.0.113.9") && !out.contains("Bob Real"));
}
