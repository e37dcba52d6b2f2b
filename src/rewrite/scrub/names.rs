//! The sender's display name as quote headers and signatures write it:
//! "Bob Realname", "Realname, Bob", any letter case, any run of white space
//! (no-break spaces too) or a comma between the words, any apostrophe
//! (`O'Brien`, `O’Brien`). From a From name like `"Realname, Bob J. (Acme
//! Sales)"` the variants are "Bob J. Realname", "Realname, Bob J." and
//! "Bob Realname": the organisation goes, the order turns, initials may be
//! left out. Only whole words match: "Bob" is not found in "Bobby".

use std::ops::Range;

/// Names longer than this are not looked for (no real name is; it bounds
/// the work per text position).
const MAX_NAME_CHARS: usize = 128;
const MAX_WORDS: usize = 8;

pub struct NameMatcher {
    /// Each variant is a list of lowercased words.
    variants: Vec<Vec<Vec<char>>>,
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || c == ','
}

/// Characters that would make a match part of a longer word.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn lower(c: char) -> char {
    // Typographic apostrophes are the one an autocorrecting client wrote.
    if matches!(c, '\u{2019}' | '\u{2018}' | '\u{02bc}' | '`' | '\u{b4}') {
        return '\'';
    }
    // Only one-to-one mappings: a name is compared character by character.
    let mut lowered = c.to_lowercase();
    match (lowered.next(), lowered.next()) {
        (Some(single), None) => single,
        _ => c,
    }
}

/// The words of a display name in the orders and forms text writes it.
fn name_variants(name: &str) -> Vec<Vec<Vec<char>>> {
    let words = |text: &str| -> Vec<Vec<char>> {
        text.split(is_separator)
            .map(|w| w.trim_matches(|c: char| c == '"' || c == '\''))
            .filter(|w| !w.is_empty())
            .map(|w| w.chars().map(lower).collect())
            .collect()
    };
    // "Bob Realname (Acme Sales)", "Bob Realname - Acme", "Bob | Acme":
    // the person is before the organisation.
    let person = name.split('(').next().unwrap_or_default();
    let person = [" - ", " | ", " / ", " – "]
        .iter()
        .fold(person, |p, sep| p.split(sep).next().unwrap_or_default());
    // "Realname, Bob J." is "Bob J. Realname" in a signature.
    let natural = match person.split_once(',') {
        Some((last, first)) => words(&format!("{first} {last}")),
        None => words(person),
    };
    let is_initial = |w: &Vec<char>| w.len() <= 2 && w.last() == Some(&'.') || w.len() == 1;
    let without_initials: Vec<Vec<char>> =
        natural.iter().filter(|w| !is_initial(w)).cloned().collect();
    let mut variants = vec![words(name), natural.clone()];
    if natural.len() > 1 {
        let mut last_first = natural.clone();
        last_first.rotate_right(1);
        variants.push(last_first);
    }
    if without_initials.len() > 1 && without_initials.len() < natural.len() {
        let mut last_first = without_initials.clone();
        last_first.rotate_right(1);
        variants.push(without_initials);
        variants.push(last_first);
    }
    variants
}

impl NameMatcher {
    /// `None` when no name has a word of two characters or more to look for.
    pub fn new(names: &[String]) -> Option<Self> {
        let mut variants: Vec<Vec<Vec<char>>> = Vec::new();
        for name in names {
            if name.chars().count() > MAX_NAME_CHARS {
                continue;
            }
            for variant in name_variants(name) {
                let letters: usize = variant.iter().map(Vec::len).sum();
                let usable = !variant.is_empty() && variant.len() <= MAX_WORDS && letters >= 2;
                if usable && !variants.contains(&variant) {
                    variants.push(variant);
                }
            }
        }
        (!variants.is_empty()).then_some(Self { variants })
    }

    /// The end of `words` matched at byte `start` of `text`, if they are there.
    fn match_at(text: &str, start: usize, words: &[Vec<char>]) -> Option<usize> {
        let mut chars = text[start..].char_indices().peekable();
        for (index, word) in words.iter().enumerate() {
            if index > 0 {
                let mut separated = false;
                while let Some(&(_, c)) = chars.peek() {
                    if !is_separator(c) {
                        break;
                    }
                    separated = true;
                    chars.next();
                }
                if !separated {
                    return None;
                }
            }
            for &expected in word {
                let (_, c) = chars.next()?;
                if lower(c) != expected {
                    return None;
                }
            }
        }
        let end = chars
            .peek()
            .map_or(text.len(), |&(offset, _)| start + offset);
        Some(end)
    }

    /// Every whole-word occurrence, in order, not overlapping.
    pub fn find_all(&self, text: &str) -> Vec<Range<usize>> {
        let mut found = Vec::new();
        let mut previous: Option<char> = None;
        let mut skip_until = 0;
        for (start, c) in text.char_indices() {
            let at_word_start = !previous.is_some_and(is_word_char);
            previous = Some(c);
            if start < skip_until || !at_word_start || !is_word_char(c) {
                continue;
            }
            let hit = self.variants.iter().find_map(|words| {
                let end = Self::match_at(text, start, words)?;
                let next = text[end..].chars().next();
                (!next.is_some_and(is_word_char)).then_some(end)
            });
            if let Some(end) = hit {
                found.push(start..end);
                skip_until = end;
            }
        }
        found
    }

    pub fn replace_all(&self, text: &str, replacement: &str) -> Option<String> {
        let found = self.find_all(text);
        if found.is_empty() {
            return None;
        }
        Some(super::replace_ranges(text, found, replacement))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replace(names: &[&str], text: &str) -> Option<String> {
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        NameMatcher::new(&names)?.replace_all(text, "Night Owl")
    }

    #[test]
    fn finds_the_name_in_quote_header_forms() {
        let cases = [
            (
                "On Tue, Bob Realname <x> wrote:",
                "On Tue, Night Owl <x> wrote:",
            ),
            ("From: \"Realname, Bob\" <x>", "From: \"Night Owl\" <x>"),
            ("BOB\u{a0}REALNAME", "Night Owl"),
            ("Bob\r\n  Realname wrote", "Night Owl wrote"),
        ];
        for (text, expected) in cases {
            assert_eq!(replace(&["Bob Realname"], text).as_deref(), Some(expected));
        }
        assert_eq!(
            replace(&["Hanne Sørlie"], "Von: HANNE SØRLIE <h>").as_deref(),
            Some("Von: Night Owl <h>")
        );
        assert_eq!(
            replace(&["Sørlie, Hanne"], "Hanne Sørlie skrev:").as_deref(),
            Some("Night Owl skrev:")
        );
    }

    #[test]
    fn corporate_and_typographic_variants() {
        assert_eq!(
            replace(&["Realname, Bob J."], "Best,\r\nBob J. Realname | Sales").as_deref(),
            Some("Best,\r\nNight Owl | Sales")
        );
        assert_eq!(
            replace(&["Realname, Bob J."], "Bob Realname").as_deref(),
            Some("Night Owl")
        );
        assert_eq!(
            replace(&["Bob Realname (Acme Sales)"], "Cheers, Bob Realname").as_deref(),
            Some("Cheers, Night Owl")
        );
        assert_eq!(
            replace(&["Siobhan O'Brien"], "Siobhan O\u{2019}Brien").as_deref(),
            Some("Night Owl")
        );
    }

    #[test]
    fn only_whole_words() {
        for text in [
            "Bobby Realnames",
            "Bob Realnamex",
            "xBob Realname",
            "Bob-Realname",
            "Bob",
        ] {
            assert_eq!(replace(&["Bob Realname"], text), None, "{text}");
        }
    }

    #[test]
    fn names_too_short_or_too_long_are_not_looked_for() {
        assert!(NameMatcher::new(&["B".to_owned()]).is_none());
        assert!(NameMatcher::new(&["\" \"".to_owned()]).is_none());
        assert!(NameMatcher::new(&["x ".repeat(100)]).is_none());
        assert!(NameMatcher::new(&[]).is_none());
    }
}
