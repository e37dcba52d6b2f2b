//! Rules and declarations, each kept or dropped whole: an item is read up
//! to its `;` or `{}` block, what its first tokens say it is decides how
//! its strings are read, and an `@import` under Block or a script-binding
//! property drops it.

use cssparser::{Parser, Token};

use super::values::Strings;
use super::writer::Writer;
use super::{unprefixed, Rebuild, RemoteContent, MAX_NESTING};

/// Properties that bind script (IE's `behavior`, Firefox's `-moz-binding`).
const SCRIPT_PROPERTIES: &[&str] = &["behavior", "binding"];

/// What the first tokens of a rule or declaration said it is.
#[derive(Clone, PartialEq, Eq)]
enum Head {
    /// No significant token yet.
    Start,
    /// An identifier that becomes a property name if a colon follows.
    Ident(String),
    /// `@import`: its strings are URLs.
    Import,
    /// A custom property (`--x: …`): its strings are URLs too, since
    /// `var(--x)` may put them where one is loaded
    /// (`image-set(var(--x) 1x)`).
    CustomProperty,
    Other,
}

/// One rule or declaration, serialized apart so that it can be dropped.
struct Piece {
    out: Writer,
    head: Head,
    dropped: bool,
}

impl Rebuild<'_, '_> {
    /// A list of rules and declarations (a style sheet, a `{}` block or a
    /// `style` attribute), each kept or dropped whole.
    pub(super) fn items(&self, parser: &mut Parser<'_, '_>, out: &mut Writer, depth: usize) {
        loop {
            let mut piece = Piece {
                out: out.piece(),
                head: Head::Start,
                dropped: false,
            };
            let more = self.item(parser, &mut piece, depth);
            if !piece.dropped {
                out.append(piece.out);
            }
            if !more {
                return;
            }
        }
    }

    /// Reads one item: up to and including a `;` or a `{}` block at this
    /// level. Returns whether input remains.
    fn item(&self, parser: &mut Parser<'_, '_>, piece: &mut Piece, depth: usize) -> bool {
        loop {
            let token = match parser.next_including_whitespace_and_comments() {
                Ok(token) => token.clone(),
                Err(_) => return false,
            };
            self.classify(&token, piece);
            match token {
                Token::Semicolon => {
                    piece.out.token(&token);
                    return true;
                }
                Token::CurlyBracketBlock => {
                    if depth >= MAX_NESTING {
                        piece.dropped = true;
                        return true;
                    }
                    piece.out.token(&token);
                    let _ = parser.parse_nested_block(|inner| {
                        self.items(inner, &mut piece.out, depth + 1);
                        Ok::<(), cssparser::ParseError<'_, ()>>(())
                    });
                    piece.out.close(Token::CloseCurlyBracket);
                    return true;
                }
                token => {
                    let strings = if matches!(piece.head, Head::Import | Head::CustomProperty) {
                        Strings::Urls
                    } else {
                        Strings::Text
                    };
                    self.component(
                        &token,
                        parser,
                        &mut piece.out,
                        &mut piece.dropped,
                        strings,
                        depth,
                    );
                }
            }
        }
    }

    /// Notes what the item is from its first significant tokens, and drops
    /// it when it is an `@import` under Block or a script-binding property.
    fn classify(&self, token: &Token<'_>, piece: &mut Piece) {
        if matches!(token, Token::WhiteSpace(_) | Token::Comment(_)) {
            return;
        }
        piece.head = match (&piece.head, token) {
            (Head::Start, Token::AtKeyword(name)) if name.eq_ignore_ascii_case("import") => {
                if self.policy.remote == RemoteContent::Block {
                    piece.dropped = true;
                }
                Head::Import
            }
            (Head::Start, Token::Ident(name)) => Head::Ident(name.to_string()),
            (Head::Ident(name), Token::Colon) if name.starts_with("--") => Head::CustomProperty,
            (Head::Ident(name), Token::Colon) => {
                if SCRIPT_PROPERTIES.contains(&unprefixed(name).as_str()) {
                    piece.dropped = true;
                }
                Head::Other
            }
            (head @ (Head::Import | Head::CustomProperty), _) => head.clone(),
            _ => Head::Other,
        };
    }
}
