//! Text as HTML holds it and as a reader sees it: character references
//! decoded the way a browser decodes them (the full HTML5 table, numeric
//! and named, with the attribute-value exceptions), and written back
//! escaped.

use std::borrow::Cow;

use lol_html::html_content::TextType;

/// How a text node's raw bytes relate to what the reader sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// Ordinary text: references decoded; written back as it was when
    /// scrubbing changes nothing.
    Markup,
    /// Text the parser read in a special mode (`title`, `textarea`, `xmp`,
    /// `plaintext`). `decoded`: whether references count there. Written
    /// back escaped whenever it holds `<` (or, undecoded, `&`), so that
    /// even if a client parsed it as ordinary markup it stays text.
    Literal { decoded: bool },
    /// The content of a kept `<style>`: CSS.
    Css,
    /// Script: never shown (its element is removed).
    Hidden,
}

pub fn text_kind(text_type: TextType, in_style: bool) -> TextKind {
    match text_type {
        TextType::Data => TextKind::Markup,
        TextType::RawText if in_style => TextKind::Css,
        TextType::RCData => TextKind::Literal { decoded: true },
        TextType::ScriptData => TextKind::Hidden,
        _ => TextKind::Literal { decoded: false },
    }
}

/// What the reader sees of a text node's raw content.
pub fn shown(raw: &str, kind: TextKind) -> Cow<'_, str> {
    match kind {
        TextKind::Markup | TextKind::Literal { decoded: true } => htmlize::unescape(raw),
        _ => Cow::Borrowed(raw),
    }
}

/// Whether raw text of this kind may be written back as it was.
pub fn raw_is_safe(raw: &str, kind: TextKind) -> bool {
    match kind {
        TextKind::Markup => true,
        TextKind::Literal { decoded: true } => !raw.contains('<'),
        _ => !raw.contains(['<', '&']),
    }
}

/// Text escaped for a text node.
pub fn escape_text(text: &str) -> String {
    htmlize::escape_text(text).into_owned()
}

/// An attribute value as the browser reads it: references decoded with the
/// attribute-value rules (`&copy=` in a query stays), NUL as U+FFFD.
pub fn decode_attribute(raw: &str) -> String {
    htmlize::unescape_attribute(raw).replace('\0', "\u{FFFD}")
}

/// A value escaped for a double-quoted attribute.
pub fn escape_attribute(value: &str) -> String {
    htmlize::escape_attribute(value).into_owned()
}

/// The URLs of an `img srcset` (the image candidate strings' URLs, as the
/// HTML standard splits them: a URL may hold commas, a trailing comma ends
/// a candidate, descriptors run to the next comma).
pub fn srcset_urls(srcset: &str) -> Vec<&str> {
    let mut urls = Vec::new();
    let mut rest = srcset;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == ',');
        if rest.is_empty() {
            return urls;
        }
        let end = rest
            .find(|c: char| c.is_ascii_whitespace())
            .unwrap_or(rest.len());
        let (url, after) = rest.split_at(end);
        let trimmed = url.trim_end_matches(',');
        urls.push(trimmed);
        rest = if trimmed.len() < url.len() {
            after
        } else {
            skip_descriptors(after)
        };
    }
}

/// Past a candidate's descriptors: up to a comma outside parentheses.
fn skip_descriptors(text: &str) -> &str {
    let mut depth = 0usize;
    for (index, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => return &text[index + 1..],
            _ => {}
        }
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_decode_as_in_a_browser() {
        assert_eq!(
            shown(
                "&#104;ttp &#x68;&period;&NotNestedGreaterGreater;&amp &lt",
                TextKind::Markup
            ),
            "http h.\u{2aa2}\u{338}& <"
        );
        assert_eq!(
            shown("&#0;&#xD800;&bogus;", TextKind::Markup),
            "\u{fffd}\u{fffd}&bogus;"
        );
        assert_eq!(
            shown("&lt;raw&gt;", TextKind::Literal { decoded: false }),
            "&lt;raw&gt;"
        );
        assert_eq!(
            decode_attribute("?a=1&copy=2&amp;b=&#106;"),
            "?a=1&copy=2&b=j"
        );
        assert_eq!(decode_attribute("x\0y"), "x\u{fffd}y");
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_text("a<b>&\"c"), "a&lt;b&gt;&amp;\"c");
        assert_eq!(escape_attribute("a<b>&\"c"), "a&lt;b&gt;&amp;&quot;c");
        assert!(raw_is_safe("a < b", TextKind::Markup));
        assert!(!raw_is_safe("<img>", TextKind::Literal { decoded: true }));
        assert!(!raw_is_safe("&amp;", TextKind::Literal { decoded: false }));
    }

    #[test]
    fn srcset_candidates() {
        assert_eq!(
            srcset_urls(" a.png 1x, https://h.example/b,c.png 2x,d.png,, e.png (x, y) 3x ,f.png"),
            vec![
                "a.png",
                "https://h.example/b,c.png",
                "d.png",
                "e.png",
                "f.png"
            ]
        );
        assert!(srcset_urls("  , ").is_empty());
    }
}
