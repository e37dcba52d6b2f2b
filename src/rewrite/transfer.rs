//! Content-Transfer-Encoding: decoding the way mail clients do (lenient:
//! a client shows what it can, so the guard must see the same text) and
//! encoding a changed part back correctly (CRLF, QP soft breaks, lines of
//! at most 76 characters).

use std::borrow::Cow;

/// The transfer encodings a reader distinguishes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Encoding {
    /// 7bit, 8bit, binary, absent or unknown: the bytes are the content.
    #[default]
    Identity,
    QuotedPrintable,
    Base64,
}

impl Encoding {
    pub fn from_header(value: Option<&str>) -> Self {
        match value.map(str::trim) {
            Some(v) if v.eq_ignore_ascii_case("quoted-printable") => Self::QuotedPrintable,
            Some(v) if v.eq_ignore_ascii_case("base64") => Self::Base64,
            _ => Self::Identity,
        }
    }

    pub fn decode(self, encoded: &[u8]) -> Cow<'_, [u8]> {
        match self {
            Self::Identity => Cow::Borrowed(encoded),
            Self::QuotedPrintable => Cow::Owned(qp_decode(encoded)),
            Self::Base64 => Cow::Owned(base64_decode(encoded)),
        }
    }
}

/// RFC 5322's limit on a line, CRLF excluded.
pub const MAX_LINE: usize = 998;
/// RFC 2045's limit for encoded lines (QP and base64).
const ENCODED_LINE: usize = 76;

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Decodes quoted-printable. `=XX` becomes the byte, `=` before a line end
/// (after optional white space) is a soft break; any other `=` stays as it
/// is, as clients show it.
pub fn qp_decode(encoded: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.len());
    let mut i = 0;
    while i < encoded.len() {
        let byte = encoded[i];
        if byte != b'=' {
            out.push(byte);
            i += 1;
            continue;
        }
        let hex = encoded
            .get(i + 1)
            .and_then(|&h| hex_value(h))
            .zip(encoded.get(i + 2).and_then(|&l| hex_value(l)));
        if let Some((high, low)) = hex {
            out.push(high << 4 | low);
            i += 3;
            continue;
        }
        let mut j = i + 1;
        while matches!(encoded.get(j), Some(b' ' | b'\t')) {
            j += 1;
        }
        if encoded.get(j..j + 2) == Some(b"\r\n") {
            i = j + 2;
        } else if j == encoded.len() {
            i = j;
        } else {
            out.push(byte);
            i += 1;
        }
    }
    out
}

/// Encodes text as quoted-printable: CRLF in the content stays a hard line
/// break, every other control or 8-bit byte and `=` become `=XX`, white
/// space before a line end is encoded, and lines are soft-broken with
/// `=\r\n` so that none is longer than 76 characters.
pub fn qp_encode(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 8);
    let mut rest = text;
    loop {
        let (content, hard_break) = match rest.windows(2).position(|w| w == b"\r\n") {
            Some(end) => (&rest[..end], true),
            None => (rest, false),
        };
        qp_encode_line(content, &mut out);
        if !hard_break {
            return out;
        }
        out.extend_from_slice(b"\r\n");
        rest = &rest[content.len() + 2..];
    }
}

/// One line without its CRLF (a bare CR or LF in it is encoded).
fn qp_encode_line(content: &[u8], out: &mut Vec<u8>) {
    let mut width = 0;
    for (index, &byte) in content.iter().enumerate() {
        let at_line_end = index + 1 == content.len();
        let literal = match byte {
            b' ' | b'\t' => !at_line_end,
            b'=' => false,
            33..=126 => true,
            _ => false,
        };
        let token_len = if literal { 1 } else { 3 };
        // Keep room for the soft break's `=` unless this is the last token.
        let limit = if at_line_end {
            ENCODED_LINE
        } else {
            ENCODED_LINE - 1
        };
        if width + token_len > limit {
            out.extend_from_slice(b"=\r\n");
            width = 0;
        }
        if literal {
            out.push(byte);
        } else {
            out.extend_from_slice(format!("={byte:02X}").as_bytes());
        }
        width += token_len;
    }
}

fn base64_value(byte: u8) -> Option<u8> {
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

/// Decodes base64 leniently: characters outside the alphabet are skipped
/// and decoding stops at the first `=`, as mail clients do.
pub fn base64_decode(encoded: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded.len() / 4 * 3);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &byte in encoded {
        if byte == b'=' {
            break;
        }
        let Some(value) = base64_value(byte) else {
            continue;
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

/// Encodes as base64 in lines of 76 characters joined by CRLF; `final_crlf`
/// ends the last line with CRLF too.
pub fn base64_encode(data: &[u8], final_crlf: bool) -> Vec<u8> {
    let encoded = data_encoding::BASE64.encode(data);
    let mut out = Vec::with_capacity(encoded.len() + encoded.len() / ENCODED_LINE * 2 + 2);
    for (index, chunk) in encoded.as_bytes().chunks(ENCODED_LINE).enumerate() {
        if index > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(chunk);
    }
    if final_crlf {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Text with every bare CR or LF made a CRLF line break, as RFC 2046
/// wants text to travel (a client shows them as line breaks alike).
pub fn crlf_lines(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let canonical = bytes.iter().enumerate().all(|(i, &b)| match b {
        b'\r' => bytes.get(i + 1) == Some(&b'\n'),
        b'\n' => i > 0 && bytes[i - 1] == b'\r',
        _ => true,
    });
    if canonical {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push_str("\r\n");
            }
            '\n' => out.push_str("\r\n"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The transfer encoding the relay writes text in, and the encoded text:
/// `7bit` when it already is (ASCII, lines of at most 998 octets), else
/// quoted-printable (readable) unless base64 is shorter by more than a
/// line or so (text in a non-Latin script). Either way the result is at
/// most base64's size plus [`QP_SLACK`] (see `max_output_len`). `text` has
/// CRLF line ends.
pub fn encode_text(text: &[u8]) -> (&'static str, Vec<u8>) {
    let seven_bit = text.iter().all(|&b| (1..=127).contains(&b))
        && text
            .split(|&b| b == b'\n')
            .all(|line| line.len() <= MAX_LINE + 1);
    if seven_bit {
        return ("7bit", text.to_vec());
    }
    let quoted = qp_encode(text);
    if quoted.len() <= base64_len(text.len()) + QP_SLACK {
        ("quoted-printable", quoted)
    } else {
        ("base64", base64_encode(text, true))
    }
}

/// How much longer than base64 a quoted-printable part may be.
pub const QP_SLACK: usize = 256;

/// The length of [`base64_encode`]'s output for `len` bytes (final CRLF
/// included).
pub fn base64_len(len: usize) -> usize {
    let chars = len.div_ceil(3) * 4;
    chars + chars.div_ceil(ENCODED_LINE) * 2
}

/// Binary content (attachments) always travels as base64.
pub fn encode_binary(data: &[u8]) -> (&'static str, Vec<u8>) {
    ("base64", base64_encode(data, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qp_round_trip_and_soft_breaks() {
        let text = format!(
            "caf\u{e9} = ok \r\n{}\r\ntrailing space \r\nend",
            "x".repeat(200)
        );
        let encoded = qp_encode(text.as_bytes());
        for line in encoded.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            assert!(line.len() <= 76, "{}", String::from_utf8_lossy(line));
        }
        let encoded_text = String::from_utf8(encoded.clone()).unwrap();
        assert!(encoded_text.contains("caf=C3=A9 =3D ok"));
        assert!(encoded_text.contains("=\r\n"));
        assert!(encoded_text.contains("trailing space=20\r\n"));
        assert!(!encoded_text.replace("\r\n", "").contains('\n'));
        assert_eq!(qp_decode(&encoded), text.as_bytes());
    }

    #[test]
    fn qp_decode_is_lenient() {
        assert_eq!(qp_decode(b"a=4\r\nb=zz=\r\nc="), b"a=4\r\nb=zzc");
        assert_eq!(qp_decode(b"soft=  \r\nbreak=40x"), b"softbreak@x");
        assert_eq!(qp_decode(b""), b"");
    }

    #[test]
    fn qp_encodes_bare_line_feeds() {
        let encoded = qp_encode(b"a\nb\rc\r\n");
        assert_eq!(encoded, b"a=0Ab=0Dc\r\n");
        assert_eq!(qp_decode(&encoded), b"a\nb\rc\r\n");
    }

    #[test]
    fn base64_round_trip_with_76_character_lines() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let encoded = base64_encode(&data, true);
        assert!(encoded.ends_with(b"\r\n"));
        for line in encoded.split(|&b| b == b'\n') {
            assert!(line.len() <= 77);
        }
        assert_eq!(base64_decode(&encoded), data);
        assert_eq!(base64_decode(b"aGVs\r\n bG8*=garbage"), b"hello");
        assert!(base64_decode(b"!!!").is_empty());
    }

    #[test]
    fn text_travels_in_the_cheapest_safe_encoding() {
        assert_eq!(
            encode_text(b"plain ascii\r\n"),
            ("7bit", b"plain ascii\r\n".to_vec())
        );
        let (encoding, body) = encode_text("Grüße, café, schöne Grüße aus Köln\r\n".as_bytes());
        assert_eq!(encoding, "quoted-printable");
        assert_eq!(
            qp_decode(&body),
            "Grüße, café, schöne Grüße aus Köln\r\n".as_bytes()
        );
        for len in [1, 56, 57, 58, 1000] {
            assert_eq!(
                base64_encode(&vec![0; len], true).len(),
                base64_len(len),
                "{len}"
            );
        }
        let cyrillic = "Привет, как дела? ".repeat(20);
        let (encoding, body) = encode_text(cyrillic.as_bytes());
        assert_eq!(encoding, "base64");
        assert_eq!(base64_decode(&body), cyrillic.as_bytes());
        let long = "x".repeat(1200);
        assert_eq!(encode_text(long.as_bytes()).0, "quoted-printable");
    }

    #[test]
    fn bare_line_ends_become_crlf() {
        assert_eq!(crlf_lines("a\nb\rc\r\nd"), "a\r\nb\r\nc\r\nd");
        assert!(matches!(
            crlf_lines("a\r\nb"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
