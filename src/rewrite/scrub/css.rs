//! CSS as a mail client loads it: a `<style>` element or a `style`
//! attribute, tokenized with cssparser (the CSS Syntax tokenizer browsers
//! follow, so `\75 rl(`, `URL(`, comments and quoting are read the way a
//! client reads them) and serialized anew, token by token. Every reference
//! that makes the client load something by itself — `url()`, `src()`,
//! strings inside `image-set()` and other functions, `@import` — passes
//! [`UrlPolicy`]; constructs that run script (`expression()`, `behavior`,
//! `-moz-binding`) are removed in either mode.
//!
//! The URL rule for a loaded resource lives here (`url`), the leaf
//! module, and `html.rs` uses it for `img src` and `background` too.
//!
//! The parts: `url` (what a URL becomes), `writer` (tokens serialized
//! safely), `rules` (rules and declarations kept or dropped whole) and
//! `values` (component values: URLs, functions, blocks).

mod rules;
mod url;
mod values;
mod writer;

use cssparser::{Parser, ParserInput};

pub use crate::config::privacy::RemoteContent;
pub use url::{is_clickable, normalize_url, percent_decode, scheme, UrlPolicy};
use writer::Writer;

/// Deeper blocks than this are removed with the declaration or rule that
/// holds them: it bounds the recursion (no real style sheet nests so deep).
const MAX_NESTING: usize = 32;

/// A style sheet (`<style>` text) or a declaration list (a `style`
/// attribute), rebuilt so that it loads only what `remote` allows and runs
/// nothing. The output never contains `</` followed by anything but a
/// space, so it cannot close a `<style>` element early.
pub fn scrub_css(
    css: &str,
    remote: RemoteContent,
    content_id: &dyn Fn(&str) -> Option<String>,
) -> String {
    let policy = UrlPolicy { remote, content_id };
    let mut input = ParserInput::new(css);
    let mut parser = Parser::new(&mut input);
    let mut out = Writer::default();
    Rebuild { policy: &policy }.items(&mut parser, &mut out, 0);
    out.text
}

/// One style sheet's walk; its methods are in [`rules`] (items) and
/// [`values`] (what an item holds).
struct Rebuild<'p, 'a> {
    policy: &'p UrlPolicy<'a>,
}

/// Lowercased, without a vendor prefix (`-webkit-image-set` → `image-set`).
fn unprefixed(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match lower
        .strip_prefix('-')
        .and_then(|rest| rest.split_once('-'))
    {
        Some((_vendor, rest)) if !lower.starts_with("--") => rest.to_owned(),
        _ => lower,
    }
}

#[cfg(test)]
mod tests;
