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
            && !text
                .chars()
                .any(|c| c.is_control() || matches!(c, '"' | '\\' | '<' | '>' | '@'));
        ok.then(|| Self(text.to_owned()))
            .ok_or(IdError::DisplayName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
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
        ] {
            assert!(DisplayName::parse(bad).is_err(), "{bad:?}");
        }
    }
}
