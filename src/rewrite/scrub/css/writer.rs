//! Serialized CSS, token by token: `/**/` where two tokens would merge,
//! and never `</` that could close a `<style>` element early.

use std::fmt::Write as _;

use cssparser::{ToCss, Token, TokenSerializationType};

/// Serialized CSS with what is needed between tokens: `/**/` where two
/// tokens would otherwise merge into one, a space after a `<` before `/`.
#[derive(Default)]
pub(super) struct Writer {
    pub(super) text: String,
    last: TokenSerializationType,
    after_less_than: bool,
}

impl Writer {
    /// A writer for a piece that may still be dropped, continuing from here.
    pub(super) fn piece(&self) -> Writer {
        Writer {
            text: String::new(),
            last: self.last,
            after_less_than: self.after_less_than,
        }
    }

    pub(super) fn append(&mut self, piece: Writer) {
        self.text.push_str(&piece.text);
        self.last = piece.last;
        self.after_less_than = piece.after_less_than;
    }

    pub(super) fn write(&mut self, text: &str, kind: TokenSerializationType) {
        if self.last.needs_separator_when_before(kind) {
            self.text.push_str("/**/");
        }
        if self.after_less_than && text.starts_with('/') {
            self.text.push(' ');
        }
        self.text.push_str(text);
        self.last = kind;
        self.after_less_than = text.ends_with('<');
    }

    pub(super) fn token(&mut self, token: &Token<'_>) {
        self.write(&token.to_css_string(), token.serialization_type());
    }

    pub(super) fn ident(&mut self, name: &str) {
        self.token(&Token::Ident(name.into()));
    }

    pub(super) fn string(&mut self, value: &str) {
        self.write(
            &css_string(value),
            Token::QuotedString("".into()).serialization_type(),
        );
    }

    pub(super) fn close(&mut self, closing: Token<'_>) {
        self.token(&closing);
    }
}

/// A double-quoted CSS string with `<` written as an escape, so that no
/// string can spell `</style>`.
fn css_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '<' => out.push_str("\\3c "),
            '\0' => out.push('\u{FFFD}'),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\{:x} ", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
