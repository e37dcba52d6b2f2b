//! Component values rewritten: `url()` and `src()` through the
//! [`UrlPolicy`](super::UrlPolicy), strings that may be URLs likewise,
//! functions and blocks walked to a bounded depth, and `expression()`
//! dropping its declaration.

use cssparser::{Parser, ToCss, Token};

use super::writer::Writer;
use super::{unprefixed, Rebuild, MAX_NESTING};

/// What stands where a blocked URL was: a keyword that loads nothing.
const INERT: &str = "none";

/// Functions whose string arguments are never URLs. Strings anywhere else
/// inside a function are treated as URLs (`image-set("x.png" 1x)`,
/// `image("x.png")`, IE's `AlphaImageLoader(src='x')`): a function this
/// list does not know may load them.
const PLAIN_STRING_FUNCTIONS: &[&str] = &[
    "attr",
    "counter",
    "counters",
    "dir",
    "env",
    "format",
    "has",
    "host",
    "is",
    "lang",
    "local",
    "not",
    "nth-child",
    "nth-last-child",
    "nth-last-of-type",
    "nth-of-type",
    "selector",
    "tech",
    "var",
    "where",
];

/// What a quoted string means where it stands.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Strings {
    Text,
    Urls,
}

impl Rebuild<'_, '_> {
    /// One component value: a token, or a function or block with its
    /// contents. Sets `dropped` when the enclosing item must go.
    pub(super) fn component(
        &self,
        token: &Token<'_>,
        parser: &mut Parser<'_, '_>,
        out: &mut Writer,
        dropped: &mut bool,
        strings: Strings,
        depth: usize,
    ) {
        match token {
            // Comments go; `Writer` adds `/**/` where tokens would merge.
            Token::Comment(_) | Token::CDO | Token::CDC => {}
            // Invalid in browsers too: nothing loads from them.
            Token::BadUrl(_) | Token::BadString(_) => {}
            Token::UnquotedUrl(url) => self.url_function(url, out),
            Token::QuotedString(value) if strings == Strings::Urls => {
                match self.policy.loaded(value) {
                    Some(url) => out.string(&url),
                    None => out.ident(INERT),
                }
            }
            Token::QuotedString(value) => out.string(value),
            Token::Function(name) => self.function(name, parser, out, dropped, depth),
            Token::ParenthesisBlock | Token::SquareBracketBlock | Token::CurlyBracketBlock => {
                self.block(token, parser, out, dropped, strings, depth);
            }
            Token::Ident(_)
            | Token::AtKeyword(_)
            | Token::Hash(_)
            | Token::IDHash(_)
            | Token::Dimension { .. } => {
                let text = token.to_css_string();
                // Only garbage has `<` in a name; dropping it keeps `</` out.
                if text.contains('<') {
                    *dropped = true;
                } else {
                    out.write(&text, token.serialization_type());
                }
            }
            token => out.token(token),
        }
    }

    fn function(
        &self,
        name: &str,
        parser: &mut Parser<'_, '_>,
        out: &mut Writer,
        dropped: &mut bool,
        depth: usize,
    ) {
        let plain = unprefixed(name);
        if plain == "url" || plain == "src" {
            let url = first_string_argument(parser);
            match url {
                Some(url) => self.url_function(&url, out),
                None => out.ident(INERT),
            }
            return;
        }
        // IE's `expression()` runs script; the declaration goes in either mode.
        if plain.ends_with("expression") || depth >= MAX_NESTING || name.contains('<') {
            *dropped = true;
            return;
        }
        let inner_strings = if PLAIN_STRING_FUNCTIONS.contains(&plain.as_str()) {
            Strings::Text
        } else {
            Strings::Urls
        };
        out.token(&Token::Function(name.into()));
        self.contents(parser, out, dropped, inner_strings, depth + 1);
        out.close(Token::CloseParenthesis);
    }

    fn block(
        &self,
        token: &Token<'_>,
        parser: &mut Parser<'_, '_>,
        out: &mut Writer,
        dropped: &mut bool,
        strings: Strings,
        depth: usize,
    ) {
        if depth >= MAX_NESTING {
            *dropped = true;
            return;
        }
        let closing = match token {
            Token::ParenthesisBlock => Token::CloseParenthesis,
            Token::SquareBracketBlock => Token::CloseSquareBracket,
            _ => Token::CloseCurlyBracket,
        };
        out.token(token);
        self.contents(parser, out, dropped, strings, depth + 1);
        out.close(closing);
    }

    /// The inside of a function or block just opened.
    fn contents(
        &self,
        parser: &mut Parser<'_, '_>,
        out: &mut Writer,
        dropped: &mut bool,
        strings: Strings,
        depth: usize,
    ) {
        let _ = parser.parse_nested_block(|inner| {
            while let Ok(token) = inner.next_including_whitespace_and_comments() {
                let token = token.clone();
                self.component(&token, inner, out, dropped, strings, depth);
            }
            Ok::<(), cssparser::ParseError<'_, ()>>(())
        });
    }

    /// `url(…)`/`src(…)`: `url("kept")` or the inert keyword.
    fn url_function(&self, url: &str, out: &mut Writer) {
        match self.policy.loaded(url) {
            Some(url) => {
                out.token(&Token::Function("url".into()));
                out.string(&url);
                out.close(Token::CloseParenthesis);
            }
            None => out.ident(INERT),
        }
    }
}

/// The URL of a `url("…")` or `src("…")` function just opened: its first
/// significant token, when that is a string.
fn first_string_argument(parser: &mut Parser<'_, '_>) -> Option<String> {
    let mut found = None;
    let _ = parser.parse_nested_block(|inner| {
        while let Ok(token) = inner.next_including_whitespace_and_comments() {
            match token {
                Token::WhiteSpace(_) | Token::Comment(_) => continue,
                Token::QuotedString(value) => found = Some(value.to_string()),
                _ => {}
            }
            break;
        }
        Ok::<(), cssparser::ParseError<'_, ()>>(())
    });
    found
}
