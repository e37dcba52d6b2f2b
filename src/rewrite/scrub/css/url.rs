//! URLs a client would follow or load: normalized as a browser's URL
//! parser first sees them, and judged by scheme. [`UrlPolicy`] is the rule
//! for what loads without a click (CSS here, `img src` in `html.rs`);
//! [`is_clickable`] the rule for what the reader clicks.

use std::fmt::Write as _;

use super::RemoteContent;

/// Decides what happens to a URL the client would load without a click.
pub struct UrlPolicy<'a> {
    pub remote: RemoteContent,
    /// The new Content-ID for a `cid:` reference (percent-decoded); `None`
    /// when no part of the message has it.
    pub content_id: &'a dyn Fn(&str) -> Option<String>,
}

impl UrlPolicy<'_> {
    /// What a loaded URL becomes, or `None` when it goes. `cid:` is mapped
    /// to the part's new id, `data:` stays (it is the message's own bytes),
    /// script schemes always go, and remote `http(s):` stays only under
    /// [`RemoteContent::Keep`]. Anything else (relative, `//host`, `ftp:`…)
    /// goes: there is no base a mail client would resolve it against that
    /// the sender should reach.
    pub fn loaded(&self, url: &str) -> Option<String> {
        let url = normalize_url(url);
        match scheme(&url).as_deref() {
            Some("cid") => self.content_reference(&url["cid:".len()..]),
            Some("data") => Some(url),
            Some("http" | "https") if self.remote == RemoteContent::Keep => Some(url),
            _ => None,
        }
    }

    /// `cid:` + the part's new id, percent-encoded where a URL needs it.
    fn content_reference(&self, old: &str) -> Option<String> {
        let new = (self.content_id)(&percent_decode(old))?;
        Some(format!("cid:{}", percent_encode_url_part(&new)))
    }
}

/// A URL attribute or token as a browser's URL parser first sees it:
/// leading and trailing C0 controls and spaces trimmed, tabs and line
/// breaks removed anywhere (`java\tscript:` is `javascript:`).
pub fn normalize_url(url: &str) -> String {
    url.trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect()
}

/// The URL's scheme, lowercased, if it has one (`None` for relative URLs).
/// Expects a URL already passed through [`normalize_url`].
pub fn scheme(url: &str) -> Option<String> {
    let (scheme, _) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_valid = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (starts_with_letter && rest_valid).then(|| scheme.to_ascii_lowercase())
}

/// `%XX` sequences decoded (invalid ones kept as written); bytes that are
/// not UTF-8 become U+FFFD.
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = bytes
            .get(index + 1..index + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[index], hex) {
            (b'%', Some(byte)) => {
                decoded.push(byte);
                index += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Percent-encodes what may not stand in a URL path as written.
fn percent_encode_url_part(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// Scheme-based rule for something the reader clicks (`a href`): kept
/// unless it runs script, embeds content or points into the reader's disk.
pub fn is_clickable(url: &str) -> bool {
    !matches!(
        scheme(&normalize_url(url)).as_deref(),
        Some("javascript" | "vbscript" | "data" | "file")
    )
}
