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
