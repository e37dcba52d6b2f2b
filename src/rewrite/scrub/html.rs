//! TEMPORARY stand-in until the HTML scrubber lands (branch scrub-html).
use super::Scrubber;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RemoteContent {
    #[default]
    Block,
    Keep,
}

pub struct HtmlContext<'a> {
    pub scrubber: &'a Scrubber,
    pub remote_content: RemoteContent,
    pub content_id: &'a dyn Fn(&str) -> Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    #[error("too complex")]
    TooComplex,
}

pub fn scrub(html: &str, cx: &HtmlContext<'_>) -> Result<String, HtmlError> {
    Ok(cx.scrubber.text(&rename_cids(html, cx)).into_owned())
}

/// Stand-in: `cid:` references renamed.
pub fn rename_cids(html: &str, cx: &HtmlContext<'_>) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(at) = rest.to_ascii_lowercase().find("cid:") {
        out.push_str(&rest[..at + 4]);
        rest = &rest[at + 4..];
        let end = rest
            .find(|c: char| matches!(c, '"' | '\'' | ')' | '>' | '<') || c.is_whitespace())
            .unwrap_or(rest.len());
        let id = rest[..end].replace("%40", "@");
        out.push_str(&(cx.content_id)(&id).unwrap_or_default());
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}
