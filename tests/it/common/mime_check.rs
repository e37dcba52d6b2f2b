//! Reading a forwarded message the way a mail client does: every header
//! and shown text decoded by mail-parser (transfer encoding, charset,
//! encoded words), URLs and HTML character references decoded too; and
//! the MIME structure as mail-parser and as Python's `email` package see it.

use std::path::Path;
use std::process::Command;

use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders, PartType};
use sha2::{Digest, Sha256};

use super::{repo, require, PYTHON};

/// What a client would show or store of a message.
#[derive(Default)]
pub struct Decoded {
    /// Raw and decoded header blocks of every part, nested messages included.
    pub headers: Vec<String>,
    /// Decoded text of every shown text part and calendar (not attachments).
    pub texts: Vec<String>,
    /// Decoded payloads of attachments, in order.
    pub attachments: Vec<Vec<u8>>,
}

pub fn decode(raw: &[u8]) -> Decoded {
    let message = MessageParser::default()
        .parse(raw)
        .expect("mail-parser reads the message");
    let mut decoded = Decoded::default();
    collect(&message, &mut decoded);
    decoded
}

/// iCalendar data: scrubbed by the relay whether shown or attached.
fn is_calendar(part: &MessagePart<'_>) -> bool {
    part.content_type().is_some_and(|ct| {
        let full =
            format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()).to_ascii_lowercase();
        full == "text/calendar" || full == "application/ics"
    })
}

fn is_attachment(part: &MessagePart<'_>) -> bool {
    if is_calendar(part) {
        return false;
    }
    let is_text = part
        .content_type()
        .is_none_or(|ct| ct.ctype().eq_ignore_ascii_case("text"));
    let disposed = part
        .content_disposition()
        .is_some_and(|cd| cd.is_attachment());
    match part.body {
        PartType::Multipart(_) | PartType::Message(_) => false,
        _ => disposed || !is_text,
    }
}

fn collect(message: &Message<'_>, out: &mut Decoded) {
    let raw = message.raw_message();
    for part in &message.parts {
        let header_block = raw
            .get(part.offset_header as usize..part.offset_body as usize)
            .unwrap_or_default();
        out.headers
            .push(String::from_utf8_lossy(header_block).into_owned());
        out.headers.push(format!("{:?}", part.headers));
        match &part.body {
            PartType::Message(inner) => collect(inner, out),
            PartType::Multipart(_) => {}
            _ if is_attachment(part) => out.attachments.push(part.contents().to_vec()),
            PartType::Text(text) | PartType::Html(text) => out.texts.push(text.to_string()),
            PartType::Binary(bytes) | PartType::InlineBinary(bytes) => {
                out.texts.push(String::from_utf8_lossy(bytes).into_owned())
            }
        }
    }
}

/// Percent escapes decoded (`%40` → `@`), invalid ones left alone.
pub fn url_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Numeric character references and the few named ones an address uses.
pub fn html_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find('&') {
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|end| {
            let entity = &rest[1..end];
            let code = match entity.strip_prefix('#') {
                Some(n) if n.starts_with(['x', 'X']) => u32::from_str_radix(&n[1..], 16).ok(),
                Some(n) => n.parse().ok(),
                None => match entity {
                    "commat" => Some(64),
                    "period" => Some(46),
                    "lt" => Some(60),
                    "gt" => Some(62),
                    "amp" => Some(38),
                    _ => None,
                },
            };
            Some((char::from_u32(code?)?, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `secret` shows in `text` in any case, plain, URL- or HTML-decoded.
pub fn shows(text: &str, secret: &str) -> bool {
    let secret = secret.to_lowercase();
    [
        text.to_owned(),
        url_decode(text),
        html_unescape(text),
        html_unescape(&url_decode(text)),
    ]
    .iter()
    .any(|t| t.to_lowercase().contains(&secret))
}

/// The structure as mail-parser sees it, in mime_structure.py's JSON shape.
pub fn structure(raw: &[u8]) -> serde_json::Value {
    let message = MessageParser::default()
        .parse(raw)
        .expect("mail-parser reads the message");
    node(&message, 0, message.raw_message())
}

/// `root` is the buffer the part offsets count in: mail-parser counts a
/// nested message's offsets in its outermost undecoded buffer.
fn node(message: &Message<'_>, index: usize, root: &[u8]) -> serde_json::Value {
    let part = &message.parts[index];
    let content_type = part
        .content_type()
        .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()))
        .unwrap_or_else(|| "text/plain".to_owned())
        .to_ascii_lowercase();
    let mut entry = serde_json::json!({ "type": content_type });
    match &part.body {
        PartType::Multipart(children) => {
            entry["children"] = children
                .iter()
                .map(|&child| node(message, child as usize, root))
                .collect();
        }
        PartType::Message(inner) => {
            // An encoded message was decoded into a buffer of its own.
            let inner_root = match part.encoding {
                mail_parser::Encoding::None => root,
                _ => inner.raw_message(),
            };
            entry["children"] = serde_json::json!([node(inner, 0, inner_root)])
        }
        _ if is_calendar(part) => entry["calendar"] = true.into(),
        _ if is_attachment(part) => {
            entry["sha256"] = hex(&Sha256::digest(attachment_bytes(root, part))).into();
        }
        _ => {}
    }
    entry
}

/// An attachment's bytes decoded from its transfer encoding only:
/// mail-parser's `contents()` of a text attachment is converted from its
/// charset, Python's payload is not.
fn attachment_bytes(root: &[u8], part: &MessagePart<'_>) -> Vec<u8> {
    use mail_parser::decoders::{base64::base64_decode, quoted_printable::quoted_printable_decode};
    use mail_parser::PartType::{Html, Text};
    if !matches!(part.body, Text(_) | Html(_)) {
        return part.contents().to_vec();
    }
    let raw = root
        .get(part.offset_body as usize..part.offset_end as usize)
        .expect("the part's offsets lie in its buffer");
    match part.encoding {
        mail_parser::Encoding::Base64 => base64_decode(raw).unwrap_or_default(),
        mail_parser::Encoding::QuotedPrintable => quoted_printable_decode(raw).unwrap_or_default(),
        mail_parser::Encoding::None => raw.to_vec(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A message as Python's `email` package reads it (tests/peers/reader_view.py).
#[derive(Debug, serde::Deserialize)]
pub struct ReaderView {
    pub structure: serde_json::Value,
    /// The structure the relay should forward for this input.
    pub expected: serde_json::Value,
    /// Every string a reader could be shown, in every decoded form.
    pub seen: Vec<String>,
    /// What of `seen` is below the top-level header.
    pub body_seen: Vec<String>,
    pub boundaries: Vec<String>,
    pub field_names: Vec<String>,
    pub param_names: Vec<String>,
}

impl ReaderView {
    /// Whether a reader could be shown `secret` (any case).
    pub fn shows(&self, secret: &str) -> Option<&str> {
        let secret = secret.to_lowercase();
        self.seen
            .iter()
            .find(|text| text.to_lowercase().contains(&secret))
            .map(String::as_str)
    }

    /// The attachments' hashes, in order.
    pub fn attachments(&self) -> Vec<String> {
        let mut hashes = Vec::new();
        collect_hashes(&self.structure, &mut hashes);
        hashes
    }
}

fn collect_hashes(node: &serde_json::Value, out: &mut Vec<String>) {
    if let Some(hash) = node["sha256"].as_str() {
        out.push(hash.to_owned());
    }
    for child in node["children"].as_array().into_iter().flatten() {
        collect_hashes(child, out);
    }
}

/// Python's view of each of these files, in order (one process for all),
/// each with its sender's address (the sender's own contact card is
/// dropped by design).
pub fn reader_views(files: &[(&Path, &str)]) -> Vec<ReaderView> {
    require(PYTHON, "python3");
    require("openssl", "openssl");
    let mut command = Command::new(PYTHON);
    command.arg(repo().join("tests/peers/reader_view.py"));
    for (file, sender) in files {
        command.arg("--sender").arg(sender).arg(file);
    }
    let out = command.output().expect("run reader_view.py");
    assert!(
        out.status.success(),
        "reader_view.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("reader_view.py prints JSON")
}

/// `cid:` references in the message's HTML parts that name no part's
/// Content-ID: an inline image the recipient would not see.
pub fn unresolved_cid_references(raw: &[u8]) -> Vec<String> {
    let message = MessageParser::default()
        .parse(raw)
        .expect("mail-parser reads the message");
    let ids: Vec<&str> = message
        .parts
        .iter()
        .filter_map(|p| p.content_id())
        .collect();
    let mut unresolved = Vec::new();
    for part in &message.parts {
        let PartType::Html(html) = &part.body else {
            continue;
        };
        for (at, _) in html.match_indices("cid:") {
            let reference: String = html[at + 4..]
                .chars()
                .take_while(|c| !matches!(c, '"' | '\'' | '>' | ' ' | ')'))
                .collect();
            let reference = url_decode(&reference);
            if !ids.contains(&reference.as_str()) {
                unresolved.push(reference);
            }
        }
    }
    unresolved
}
