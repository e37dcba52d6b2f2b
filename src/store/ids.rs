//! Validated identifiers and names that come from the front-end or the CLI.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("user id must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'")]
    UserId,
    #[error("display name must be 1 to 64 characters with no control characters, quotes, angle brackets or '@'")]
    DisplayName,
}

/// The front-end's user id. Restricted so it can never carry markup,
/// whitespace or header syntax into logs or exports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let ok = (1..=64).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        ok.then(|| Self(text.to_owned())).ok_or(IdError::UserId)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A pseudonym shown as the display name of an alias. It is written into a
/// From header, so anything that could break out of a quoted phrase or look
/// like an address is refused rather than escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(text: &str) -> Result<Self, IdError> {
        let text = text.trim();
        let ok = !text.is_empty()
            && text.chars().count() <= 64
            && !text.chars().any(|c| {
                c.is_control()
                    || is_format_or_separator(c)
                    || matches!(
                        c,
                        '"' | '\\'
                            | '<'
                            | '>'
                            | '@'
                            | '\u{FF20}'
                            | '\u{FE6B}'
                            | '\u{FF1C}'
                            | '\u{FF1E}'
                    )
            });
        ok.then(|| Self(text.to_owned()))
            .ok_or(IdError::DisplayName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Unicode format characters (category Cf: bidi overrides, zero-width
/// characters, soft hyphen, tags) and line/paragraph separators (Zl, Zp):
/// invisible in a mail client, they let a name look like another one or
/// like an address. std exposes no general category, hence the list.
fn is_format_or_separator(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x2028..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids() {
        assert!(UserId::parse("user-42_a.b").is_ok());
        for bad in ["", "a b", "a\r\nb", "ä", &"x".repeat(65)] {
            assert!(UserId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn display_names() {
        assert_eq!(
            DisplayName::parse(" Night Owl ").unwrap().as_str(),
            "Night Owl"
        );
        assert!(DisplayName::parse("Zoë").is_ok());
        for bad in [
            "",
            "a\r\nBcc: x@y",
            "\"quoted\"",
            "a <b@c>",
            &"x".repeat(65),
            "evil\u{202E}moc.liamg",
            "line\u{2028}break",
            "zero\u{200B}width",
            "soft\u{00AD}hyphen",
            "bob\u{FF20}gmail.com",
        ] {
            assert!(DisplayName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
