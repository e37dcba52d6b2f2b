//! Text in any charset, decoded the way a reader's client decodes it, so
//! the scrubbers see what the reader would (mail-parser's decoders:
//! single-byte, CJK, UTF-16 and UTF-7 among them). The rebuilt part is
//! sent as UTF-8.

use mail_parser::decoders::charsets::map::charset_decoder;

/// `bytes` as text in `label`'s charset. UTF-8, US-ASCII, an absent or an
/// unknown label read as UTF-8 (invalid sequences become U+FFFD, as
/// clients show them).
pub fn decode(bytes: &[u8], label: Option<&str>) -> String {
    let decoder = label
        .map(str::trim)
        .filter(|l| !l.is_empty() && l.len() <= 45)
        .and_then(|l| charset_decoder(l.as_bytes()));
    match decoder {
        Some(decode) => decode(bytes),
        None => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The charset an HTML document declares in its first 2 KiB (`<meta
/// charset=…>` or `content="text/html; charset=…"`), which clients use
/// when the MIME header names none.
pub fn sniff_html(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(2048)];
    let lower = head.to_ascii_lowercase();
    let at = lower.windows(8).position(|w| w == b"charset=")? + 8;
    let value: String = lower[at..]
        .iter()
        .skip_while(|&&b| b == b'"' || b == b'\'' || b == b' ')
        .take_while(|&&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        .map(|&b| char::from(b))
        .collect();
    (!value.is_empty()).then_some(value)
}

/// How often [`decode_words_fully`] decodes again: text encoded twice (a
/// known bug of some list managers and web mailers) is decoded twice.
const MAX_WORD_ROUNDS: usize = 4;

/// Text with every RFC 2047 encoded word decoded, wherever it stands —
/// also glued to other text (`CV_=?utf-8?Q?…?=.pdf`), as Thunderbird and
/// Python's `email` decode them — and again while that changes anything,
/// so no encoded word is left for a reader to decode.
pub fn decode_words_fully(text: &str) -> std::borrow::Cow<'_, str> {
    let mut current = std::borrow::Cow::Borrowed(text);
    for _ in 0..MAX_WORD_ROUNDS {
        match decode_words(&current) {
            Some(decoded) => current = std::borrow::Cow::Owned(decoded),
            None => break,
        }
    }
    current
}

/// One round of [`decode_words_fully`]; `None` when there is no word.
fn decode_words(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    // White space between two encoded words is not shown (RFC 2047 6.2).
    let mut after_word = false;
    while let Some(at) = rest.find("=?") {
        let (before, candidate) = rest.split_at(at);
        match encoded_word(candidate) {
            Some((decoded, length)) => {
                if !(after_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&decoded);
                rest = &candidate[length..];
                changed = true;
                after_word = true;
            }
            None => {
                out.push_str(before);
                out.push_str("=?");
                rest = &candidate[2..];
                after_word = false;
            }
        }
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// The encoded word at the start of `text` (`=?charset?B|Q?data?=`),
/// decoded, and its length.
fn encoded_word(text: &str) -> Option<(String, usize)> {
    let inner = text.strip_prefix("=?")?;
    let (full_charset, rest) = inner.split_once('?')?;
    let (encoding, rest) = rest.split_once('?')?;
    let data_end = rest.find("?=")?;
    let data = &rest[..data_end];
    // An encoded word is one token: no white space, at most 75 characters
    // by the RFC (clients read longer ones; 1,000 bounds the work).
    if full_charset.is_empty() || data.contains(char::is_whitespace) || data.len() > 1000 {
        return None;
    }
    // RFC 2231 adds a language: `utf-8*en`.
    let charset = full_charset.split('*').next().unwrap_or(full_charset);
    let bytes = match encoding {
        "B" | "b" => crate::rewrite::transfer::base64_decode(data.as_bytes()),
        "Q" | "q" => crate::rewrite::transfer::qp_decode(data.replace('_', " ").as_bytes()),
        _ => return None,
    };
    let length = "=?".len() + full_charset.len() + 1 + encoding.len() + 1 + data_end + "?=".len();
    Some((decode(&bytes, Some(charset)), length))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_common_charsets() {
        assert_eq!(decode(b"J\xf6rg", Some("ISO-8859-1")), "Jörg");
        assert_eq!(decode("Jörg".as_bytes(), Some("utf-8")), "Jörg");
        assert_eq!(decode("Jörg".as_bytes(), None), "Jörg");
        assert_eq!(decode(b"J\x00\xf6\x00", Some("utf-16le")), "Jö");
        assert_eq!(decode(b"x\xff", Some("no-such-charset")), "x\u{fffd}");
    }

    #[test]
    fn encoded_words_are_decoded_wherever_they_stand_and_again() {
        let cases = [
            (
                "=?utf-8?Q?Gr=C3=BC=C3=9Fe?= aus =?ISO-8859-1?Q?K=F6ln?=",
                "Grüße aus Köln",
            ),
            (
                "=?utf-8?B?Ym9i?= =?utf-8?B?QHguZXhhbXBsZQ==?=",
                "bob@x.example",
            ),
            ("CV_=?utf-8?Q?bob=40x.example?=.pdf", "CV_bob@x.example.pdf"),
            (
                "Re: =?utf-8?Q?=3D=3Futf-8=3FQ=3Fbob=3D40x.example=3F=3D?=",
                "Re: bob@x.example",
            ),
            ("=?utf-8*en?Q?hi?=", "hi"),
            ("no words =? here ?= at all", "no words =? here ?= at all"),
            ("=?utf-8?X?bad?=", "=?utf-8?X?bad?="),
        ];
        for (input, expected) in cases {
            assert_eq!(decode_words_fully(input), expected, "{input}");
        }
    }

    #[test]
    fn sniffs_a_declared_html_charset() {
        let html = b"<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=windows-1252\">";
        assert_eq!(sniff_html(html).as_deref(), Some("windows-1252"));
        assert_eq!(
            sniff_html(b"<meta charset='UTF-8'>").as_deref(),
            Some("utf-8")
        );
        assert_eq!(sniff_html(b"<p>no declaration</p>"), None);
    }
}
