//! Finds one address in decoded text, the ways a mail client could display
//! it: any letter case, inside angle brackets or a `mailto:` link, with any
//! character percent-encoded (`%40`), and in HTML as a character reference
//! (`&#64;`, `&#x40;`, `&commat;`). Works on bytes in the part's charset, so
//! text that does not match is never touched.
//!
//! Cost: at most one comparison run per text position, each bounded by the
//! address length (at most 254), so linear in the text for a given address.

/// How the part's bytes map to characters, as far as the guard needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// UTF-8, US-ASCII and any other ASCII-compatible charset the guard
    /// does not know better (the address's ASCII bytes are the same).
    Utf8,
    /// ISO-8859-1, ISO-8859-15 and Windows-1252: one byte per character.
    Latin1,
    /// UTF-16/32 and UTF-7: the guard cannot see an address in them.
    Opaque,
}

impl Charset {
    pub fn from_label(label: Option<&str>) -> Self {
        let label = label
            .map(|l| l.trim().to_ascii_lowercase())
            .unwrap_or_default();
        match label.as_str() {
            "iso-8859-1" | "iso8859-1" | "latin1" | "l1" | "iso_8859-1" | "iso-8859-15"
            | "iso8859-15" | "latin-9" | "windows-1252" | "cp1252" | "x-cp1252" => Self::Latin1,
            l if l.starts_with("utf-16")
                || l.starts_with("utf-32")
                || l.starts_with("ucs-")
                || l == "utf-7" =>
            {
                Self::Opaque
            }
            _ => Self::Utf8,
        }
    }

    fn encode(self, c: char) -> Option<Vec<u8>> {
        match self {
            Self::Utf8 => Some(c.to_string().into_bytes()),
            Self::Latin1 => u8::try_from(u32::from(c)).ok().map(|b| vec![b]),
            Self::Opaque => None,
        }
    }
}

/// Every byte form one character of the address may take in the text,
/// compared ASCII-case-insensitively: single bytes through a table (the
/// common case, one lookup per byte), longer forms one by one.
struct Slot {
    single: [bool; 256],
    multi: Vec<Vec<u8>>,
    /// First bytes of the longer forms (both cases).
    multi_starts: [bool; 256],
}

impl Slot {
    fn new(forms: Vec<Vec<u8>>) -> Self {
        let mut single = [false; 256];
        let mut multi = Vec::new();
        let mut multi_starts = [false; 256];
        for form in forms {
            let first = form[0];
            let table = if form.len() == 1 {
                &mut single
            } else {
                multi.push(form);
                &mut multi_starts
            };
            table[usize::from(first.to_ascii_lowercase())] = true;
            table[usize::from(first.to_ascii_uppercase())] = true;
        }
        Self {
            single,
            multi,
            multi_starts,
        }
    }

    /// Length of this slot's form at the start of `text`, if one is there.
    fn match_len(&self, text: &[u8]) -> Option<usize> {
        let first = *text.first()?;
        if self.single[usize::from(first)] {
            return Some(1);
        }
        if !self.multi_starts[usize::from(first)] {
            return None;
        }
        self.multi
            .iter()
            .find(|form| {
                text.get(..form.len())
                    .is_some_and(|t| t.eq_ignore_ascii_case(form))
            })
            .map(Vec::len)
    }

    /// Whether a form of this slot can start with `byte`.
    fn may_start_with(&self, byte: u8) -> bool {
        self.single[usize::from(byte)] || self.multi_starts[usize::from(byte)]
    }
}

pub struct AddressMatcher {
    slots: Vec<Slot>,
    /// Bytes a match can start with: other positions are skipped at once.
    starts: [bool; 256],
    /// The replacement, literal and for use inside a percent-encoded URL.
    replacement: String,
    replacement_in_url: String,
}

fn case_variants(c: char) -> Vec<char> {
    let mut variants = vec![c];
    for other in [
        c.to_lowercase().collect::<Vec<_>>(),
        c.to_uppercase().collect(),
    ] {
        if let [single] = other[..] {
            if !variants.contains(&single) {
                variants.push(single);
            }
        }
    }
    variants
}

impl AddressMatcher {
    /// `None` when the charset hides addresses from the guard or the
    /// address is empty or too long to be one.
    pub fn new(address: &str, replacement: &str, charset: Charset, html: bool) -> Option<Self> {
        if address.is_empty() || address.len() > 254 || charset == Charset::Opaque {
            return None;
        }
        let slots = address
            .chars()
            .map(|c| {
                let mut forms = Vec::new();
                for variant in case_variants(c) {
                    forms.extend(charset.encode(variant));
                    let mut utf8 = [0u8; 4];
                    let percent: String = variant
                        .encode_utf8(&mut utf8)
                        .bytes()
                        .map(|b| format!("%{b:02x}"))
                        .collect();
                    forms.push(percent.into_bytes());
                    if html {
                        let code = u32::from(variant);
                        forms.push(format!("&#{code};").into_bytes());
                        forms.push(format!("&#x{code:x};").into_bytes());
                    }
                }
                if html {
                    match c {
                        '@' => forms.push(b"&commat;".to_vec()),
                        '.' => forms.push(b"&period;".to_vec()),
                        _ => {}
                    }
                }
                forms.retain(|form| !form.is_empty());
                forms.sort();
                forms.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
                Slot::new(forms)
            })
            .collect::<Vec<_>>();
        let mut starts = [false; 256];
        for (byte, start) in starts.iter_mut().enumerate() {
            *start = slots[0].may_start_with(byte as u8);
        }
        Some(Self {
            slots,
            starts,
            replacement: replacement.to_owned(),
            replacement_in_url: replacement.replace('@', "%40"),
        })
    }

    /// The end of a match starting at `start`, if there is one.
    fn match_at(&self, text: &[u8], start: usize) -> Option<usize> {
        let mut pos = start;
        for slot in &self.slots {
            pos += slot.match_len(text.get(pos..)?)?;
        }
        Some(pos)
    }

    /// `text` with every whole-address occurrence replaced, or `None` when
    /// there is none (so the caller keeps the original bytes).
    pub fn replace_all(&self, text: &[u8]) -> Option<Vec<u8>> {
        let mut out: Option<Vec<u8>> = None;
        let mut copied = 0;
        let mut pos = 0;
        while pos < text.len() {
            if !self.starts[usize::from(text[pos])] {
                pos += 1;
                continue;
            }
            let end = match self.match_at(text, pos) {
                Some(end) if starts_address(text, pos) && ends_address(text, end) => end,
                _ => {
                    pos += 1;
                    continue;
                }
            };
            let out = out.get_or_insert_with(|| Vec::with_capacity(text.len()));
            out.extend_from_slice(&text[copied..pos]);
            let in_url = text[pos..end].contains(&b'%');
            out.extend_from_slice(if in_url {
                self.replacement_in_url.as_bytes()
            } else {
                self.replacement.as_bytes()
            });
            copied = end;
            pos = end;
        }
        let mut out = out?;
        out.extend_from_slice(&text[copied..]);
        Some(out)
    }
}

/// Characters that would make the match part of a longer address.
fn is_address_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'+' | b'-')
}

fn percent_decoded_before(text: &[u8], pos: usize) -> Option<u8> {
    let escape = text.get(pos.checked_sub(3)?..pos)?;
    if escape[0] != b'%' {
        return None;
    }
    let hex = std::str::from_utf8(&escape[1..]).ok()?;
    u8::from_str_radix(hex, 16).ok()
}

/// The match does not continue a local part to its left (`jim` in
/// `jimbob@…`); a percent escape to the left counts as its character.
fn starts_address(text: &[u8], pos: usize) -> bool {
    if pos == 0 {
        return true;
    }
    let previous = percent_decoded_before(text, pos).unwrap_or(text[pos - 1]);
    !is_address_char(previous)
}

/// The match does not continue into a longer domain (`….example.com`); a
/// sentence's final dot is fine.
fn ends_address(text: &[u8], end: usize) -> bool {
    match text.get(end) {
        None => true,
        Some(b'.') => !text.get(end + 1).is_some_and(u8::is_ascii_alphanumeric),
        Some(&next) => !(next.is_ascii_alphanumeric() || matches!(next, b'_' | b'-')),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = "bob.real@sender-mail.example";
    const ALIAS: &str = "bbbb@relay.example";

    fn replace(text: &str, charset: Charset, html: bool) -> Option<String> {
        AddressMatcher::new(REAL, ALIAS, charset, html)
            .unwrap()
            .replace_all(text.as_bytes())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    #[test]
    fn finds_the_address_in_every_client_form() {
        let cases = [
            (
                "On Tue, Bob <bob.real@sender-mail.example> wrote:",
                "On Tue, Bob <bbbb@relay.example> wrote:",
            ),
            ("BOB.REAL@SENDER-MAIL.EXAMPLE.", "bbbb@relay.example."),
            (
                "mailto:Bob.Real@Sender-Mail.Example",
                "mailto:bbbb@relay.example",
            ),
            (
                "href=\"mailto:bob.real%40sender-mail.example\"",
                "href=\"mailto:bbbb%40relay.example\"",
            ),
            (
                "x%3Cbob.real%40sender-mail.example%3E",
                "x%3Cbbbb%40relay.example%3E",
            ),
            ("a bob.real%2Esender?", "a bob.real%2Esender?"),
        ];
        for (input, expected) in cases {
            let got = replace(input, Charset::Utf8, false).unwrap_or_else(|| input.to_owned());
            assert_eq!(got, expected);
        }
    }

    #[test]
    fn html_character_references() {
        let got = replace(
            "bob.real&#64;sender-mail&period;example",
            Charset::Utf8,
            true,
        );
        assert_eq!(got.as_deref(), Some("bbbb@relay.example"));
        let got = replace("bob.real&#X40;sender-mail.example", Charset::Utf8, true);
        assert_eq!(got.as_deref(), Some("bbbb@relay.example"));
        assert!(replace("bob.real&#64;sender-mail.example", Charset::Utf8, false).is_none());
    }

    #[test]
    fn longer_addresses_are_left_alone() {
        for text in [
            "jimbob.real@sender-mail.example",
            "x.bob.real@sender-mail.example",
            "bob.real@sender-mail.example.com",
            "bob.real@sender-mail.examples",
            "no address at all",
            "",
        ] {
            assert!(replace(text, Charset::Utf8, true).is_none(), "{text}");
        }
    }

    #[test]
    fn non_ascii_addresses_in_each_charset() {
        let matcher =
            AddressMatcher::new("jörg@bücher.example", ALIAS, Charset::Latin1, false).unwrap();
        let latin1 = b"Gru\xdf, J\xf6rg <J\xd6RG@B\xdcCHER.example>";
        assert_eq!(
            matcher.replace_all(latin1).unwrap(),
            b"Gru\xdf, J\xf6rg <bbbb@relay.example>"
        );
        let matcher =
            AddressMatcher::new("jörg@bücher.example", ALIAS, Charset::Utf8, false).unwrap();
        let utf8 = "JÖRG@BÜCHER.EXAMPLE and j%C3%B6rg%40b%c3%bccher.example";
        assert_eq!(
            matcher.replace_all(utf8.as_bytes()).unwrap(),
            b"bbbb@relay.example and bbbb%40relay.example"
        );
        assert!(AddressMatcher::new(REAL, ALIAS, Charset::Opaque, false).is_none());
    }

    #[test]
    fn charset_labels() {
        assert_eq!(Charset::from_label(Some("ISO-8859-1")), Charset::Latin1);
        assert_eq!(Charset::from_label(Some("windows-1252")), Charset::Latin1);
        assert_eq!(Charset::from_label(Some("UTF-8")), Charset::Utf8);
        assert_eq!(Charset::from_label(Some("us-ascii")), Charset::Utf8);
        assert_eq!(Charset::from_label(None), Charset::Utf8);
        assert_eq!(Charset::from_label(Some("utf-16le")), Charset::Opaque);
    }
}
