use super::*;

const REAL: &str = "bob.real@sender-mail.example";
const ALIAS: &str = "bbbb@relay.example";

fn run(message: &[u8]) -> Result<Option<Changed>, RewriteError> {
    let split = body_start(message);
    guard(
        &message[..split],
        &message[split..],
        &Identity {
            real: REAL,
            alias: ALIAS,
        },
    )
}

fn changed(message: &[u8]) -> String {
    String::from_utf8(run(message).unwrap().expect("changed").body).unwrap()
}

#[test]
fn plain_text_is_rewritten_in_place() {
    let out = changed(b"Content-Type: text/plain\r\n\r\nOn Tue, Bob <BOB.REAL@sender-mail.example> wrote:\r\n> hi\r\n");
    assert_eq!(out, "On Tue, Bob <bbbb@relay.example> wrote:\r\n> hi\r\n");
}

#[test]
fn nothing_to_change_means_none() {
    for message in [
        &b"Content-Type: text/plain\r\n\r\nhello bob\r\n"[..],
        b"\r\n",
        b"Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nYm9iLnJlYWxAc2VuZGVyLW1haWwuZXhhbXBsZQ==\r\n",
        b"Content-Type: text/plain\r\nContent-Disposition: attachment\r\n\r\nbob.real@sender-mail.example\r\n",
    ] {
        assert_eq!(run(message).unwrap(), None);
    }
}

#[test]
fn quoted_printable_is_decoded_and_re_encoded() {
    let message = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nCaf=C3=A9 with bob.real=40sender-=\r\nmail.example and a long line: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n";
    let out = changed(message);
    for line in out.split("\r\n") {
        assert!(line.len() <= 76, "{line}");
    }
    let decoded = crate::rewrite::transfer::qp_decode(out.as_bytes());
    assert_eq!(
        String::from_utf8(decoded).unwrap(),
        format!(
            "Caf\u{e9} with bbbb@relay.example and a long line: {}\r\n",
            "x".repeat(81)
        )
    );
}

#[test]
fn base64_is_decoded_and_re_encoded() {
    let text = format!(
        "--\r\nBob Realname\r\nbob.real@sender-mail.example\r\n{}\r\n",
        "y".repeat(100)
    );
    let encoded = crate::rewrite::transfer::base64_encode(text.as_bytes(), true);
    let mut message =
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    message.extend_from_slice(&encoded);
    let out = changed(&message);
    assert!(out.ends_with("\r\n"));
    assert!(out.split("\r\n").all(|l| l.len() <= 76));
    let decoded = crate::rewrite::transfer::base64_decode(out.as_bytes());
    assert_eq!(decoded, text.replace(REAL, ALIAS).as_bytes());
}

#[test]
fn latin1_part_keeps_its_other_bytes() {
    let message = b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\nGr\xfc\xdfe, <bob.real@sender-mail.example>\r\n";
    let out = run(message).unwrap().unwrap();
    assert_eq!(out.body, b"Gr\xfc\xdfe, <bbbb@relay.example>\r\n");
    assert_eq!(out.transfer_encoding, None);
}

#[test]
fn long_identity_line_becomes_quoted_printable() {
    let line = format!("{} {REAL}", "z".repeat(980));
    let message = format!("Content-Type: text/plain\r\n\r\n{line}\r\n");
    let out = run(message.as_bytes()).unwrap().unwrap();
    assert_eq!(out.transfer_encoding, Some("quoted-printable"));
    assert_eq!(
        crate::rewrite::transfer::qp_decode(&out.body),
        format!("{} {ALIAS}\r\n", "z".repeat(980)).as_bytes()
    );
}

const MULTIPART: &[u8] = b"Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n\
preamble\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=inner\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain\r\n\
\r\n\
Mail me: bob.real@sender-mail.example\r\n\
--inner\r\n\
Content-Type: text/html\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
<a href=3D\"mailto:bob.real%40sender-mail.example\">me</a>\r\n\
--inner--\r\n\
--outer\r\n\
Content-Type: application/octet-stream\r\n\
Content-Disposition: attachment; filename=\"card.vcf\"\r\n\
\r\n\
EMAIL:bob.real@sender-mail.example\r\n\
--outer--\r\n\
epilogue\r\n";

#[test]
fn multipart_changes_only_the_text_parts() {
    let out = changed(MULTIPART);
    let expected = String::from_utf8_lossy(MULTIPART)
        .split_once("\r\n\r\n")
        .unwrap()
        .1
        .replacen(
            "Mail me: bob.real@sender-mail.example",
            "Mail me: bbbb@relay.example",
            1,
        )
        .replacen(
            "mailto:bob.real%40sender-mail.example",
            "mailto:bbbb%40relay.example",
            1,
        );
    assert_eq!(out, expected);
    assert!(
        out.contains("EMAIL:bob.real@sender-mail.example"),
        "the attachment is untouched"
    );
}

#[test]
fn embedded_message_headers_are_sanitized() {
    let message = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\n\
Content-Type: message/rfc822\r\n\
Content-Disposition: attachment; filename=\"fwd.eml\"\r\n\
\r\n\
Received: from laptop ([203.0.113.77])\r\n\
X-Originating-IP: 203.0.113.77\r\n\
From: Bob Realname <bob.real@sender-mail.example>\r\n\
To: Carol <carol@third.example>\r\n\
Subject: old\r\n\
\r\n\
Write to bob.real@sender-mail.example\r\n\
--b--\r\n";
    let out = changed(message);
    assert!(!out.contains("203.0.113.77"));
    assert!(!out.contains("Bob Realname"));
    assert!(!out.contains(REAL));
    assert!(out.contains("From: <bbbb@relay.example>\r\nTo: <carol@third.example>\r\nSubject: old\r\n\r\nWrite to bbbb@relay.example\r\n--b--\r\n"));
}

#[test]
fn digest_parts_default_to_messages() {
    let message = b"Content-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nFrom: <bob.real@sender-mail.example>\r\n\r\nhi\r\n--d--\r\n";
    let out = changed(message);
    assert!(
        out.contains("--d\r\n\r\nFrom: <bbbb@relay.example>\r\n\r\nhi\r\n--d--"),
        "{out}"
    );
}

fn nested(depth: usize) -> Vec<u8> {
    let mut message = Vec::new();
    for level in 0..depth {
        message.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=b{level}\r\n\r\n--b{level}\r\n")
                .as_bytes(),
        );
    }
    message.extend_from_slice(b"Content-Type: text/plain\r\n\r\nbob.real@sender-mail.example\r\n");
    for level in (0..depth).rev() {
        message.extend_from_slice(format!("--b{level}--\r\n").as_bytes());
    }
    message
}

#[test]
fn depth_and_part_count_are_bounded() {
    assert!(changed(&nested(MAX_DEPTH)).contains(ALIAS));
    assert_eq!(run(&nested(MAX_DEPTH + 1)), Err(RewriteError::TooComplex));
    let mut many = b"Content-Type: multipart/mixed; boundary=m\r\n\r\n".to_vec();
    for _ in 0..MAX_ENTITIES {
        many.extend_from_slice(b"--m\r\n\r\nx\r\n");
    }
    many.extend_from_slice(b"--m--\r\n");
    assert_eq!(run(&many), Err(RewriteError::TooComplex));
    // Deep nesting of embedded messages is bounded the same way.
    let deep = "Content-Type: message/rfc822\r\n\r\n".repeat(200);
    assert_eq!(run(deep.as_bytes()), Err(RewriteError::TooComplex));
}

#[test]
fn hostile_shapes_do_not_panic() {
    for message in [
        &b"Content-Type: multipart/mixed; boundary=\"\"\r\n\r\n--\r\n--\r\n"[..],
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x--",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n--x\r\n--x\r\n",
        b"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n!!!!",
        b"Content-Type: message/rfc822\r\n\r\n",
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=",
        b"Content-Type: text/plain; charset=utf-16\r\n\r\nbob.real@sender-mail.example",
        b"Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\nno blank line bob.real@sender-mail.example",
    ] {
        let _ = run(message);
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
    assert_eq!(run(&message), Err(RewriteError::TooComplex));
    // One encoded forwarded message is fine.
    let one = format!(
        "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nFrom: <{REAL}>\r\n\r\n{}\r\n",
        "q".repeat(60_000)
    );
    assert!(changed(one.as_bytes()).starts_with("From: <bbbb@relay.example>"));
}

/// The matcher's worst inputs (the cost of each at 25 MiB is measured by
/// `cargo run --release --example guard_cost`): near misses, runs of `@` or
/// of one letter and base64 near misses are left alone, and a body where
/// every line is a %-encoded hit has every one replaced.
#[test]
fn worst_case_bodies_are_guarded_correctly() {
    let n = 256 * 1024;
    let near = "bob.real@sender-mail.exampl ".repeat(n / 28);
    let base64_text = crate::rewrite::transfer::base64_encode(near.as_bytes(), true);
    let mut b64 = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    b64.extend_from_slice(&base64_text);
    let untouched: Vec<(&str, Vec<u8>)> = vec![
        (
            "near misses",
            format!("Content-Type: text/plain\r\n\r\n{near}").into_bytes(),
        ),
        (
            "all @",
            format!("Content-Type: text/plain\r\n\r\n{}", "@".repeat(n)).into_bytes(),
        ),
        (
            "all b",
            format!("Content-Type: text/plain\r\n\r\n{}", "b".repeat(n)).into_bytes(),
        ),
        ("base64 near misses", b64),
    ];
    for (name, message) in untouched {
        assert_eq!(run(&message).unwrap(), None, "{name}");
    }
    let lines = n / 40;
    let hits = format!(
        "Content-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{}",
        "mailto:bob.real%40sender-mail.example =\r\n".repeat(lines)
    );
    let out = changed(hits.as_bytes());
    // The hit keeps its %-encoded form; soft line breaks may split it.
    let unwrapped = out.replace("=\r\n", "");
    assert!(!unwrapped.contains("sender-mail"));
    assert_eq!(
        unwrapped.matches("mailto:bbbb%40relay.example").count(),
        lines
    );
}
