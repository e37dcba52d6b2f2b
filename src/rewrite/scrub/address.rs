//! Finds one address in decoded text in every way a reader could be shown
//! it: any ASCII letter case, any character percent-encoded (`%40` in a
//! `mailto:` link) or quoted-printable-escaped and left so (`=40`), and —
//! in markup whose character references were not decoded — `&#64;`,
//! `&#x40;`, `&commat;`. A match counts anywhere, even
//! inside a longer token (`bob@host.example.vcf`): the sender's address is
//! no part of anyone else's.
//!
//! Cost: at most one comparison run per text position, each bounded by the
//! address length (at most 254), so linear in the text for one address.

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

    fn may_start_with(&self, byte: u8) -> bool {
        self.single[usize::from(byte)] || self.multi_starts[usize::from(byte)]
    }
}

/// One spelling of an address, found in all its forms.
pub struct AddressMatcher {
    slots: Vec<Slot>,
    /// Bytes a match can start with: other positions are skipped at once.
    starts: [bool; 256],
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
    /// `None` when the address is empty or too long to be one.
    pub fn new(address: &str) -> Option<Self> {
        if address.is_empty() || address.len() > 254 {
            return None;
        }
        let slots = address
            .chars()
            .map(|c| {
                let mut forms = Vec::new();
                for variant in case_variants(c) {
                    let mut utf8 = [0u8; 4];
                    let encoded = variant.encode_utf8(&mut utf8);
                    forms.push(encoded.as_bytes().to_vec());
                    let percent: String = encoded.bytes().map(|b| format!("%{b:02x}")).collect();
                    forms.push(percent.into_bytes());
                    // Quoted-printable left undecoded by a broken mailer
                    // (`bob=40example.org`) still reads as the address.
                    let quoted: String = encoded.bytes().map(|b| format!("={b:02X}")).collect();
                    forms.push(quoted.into_bytes());
                    let code = u32::from(variant);
                    forms.push(format!("&#{code};").into_bytes());
                    forms.push(format!("&#x{code:x};").into_bytes());
                }
                match c {
                    '@' => forms.push(b"&commat;".to_vec()),
                    '.' => forms.push(b"&period;".to_vec()),
                    _ => {}
                }
                forms.sort();
                forms.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
                Slot::new(forms)
            })
            .collect::<Vec<_>>();
        let mut starts = [false; 256];
        for (byte, start) in starts.iter_mut().enumerate() {
            *start = slots[0].may_start_with(byte as u8);
        }
        Some(Self { slots, starts })
    }

    /// The end of a match starting at `start`, if there is one.
    fn match_at(&self, text: &[u8], start: usize) -> Option<usize> {
        let mut pos = start;
        for slot in &self.slots {
            pos += slot.match_len(text.get(pos..)?)?;
        }
        Some(pos)
    }

    /// The byte ranges of every occurrence, in order, not overlapping.
    pub fn find_all(&self, text: &[u8]) -> Vec<std::ops::Range<usize>> {
        let mut found = Vec::new();
        let mut pos = 0;
        while pos < text.len() {
            if self.starts[usize::from(text[pos])] {
                if let Some(end) = self.match_at(text, pos) {
                    found.push(pos..end);
                    pos = end;
                    continue;
                }
            }
            pos += 1;
        }
        found
    }

    /// `text` with every occurrence replaced by `replacement` (written with
    /// `%40` for `@` where the match was percent-encoded, so a link stays a
    /// link); `None` when there is none.
    pub fn replace_all(&self, text: &str, replacement: &str) -> Option<String> {
        let found = self.find_all(text.as_bytes());
        if found.is_empty() {
            return None;
        }
        let in_url = replacement.replace('@', "%40");
        let mut out = String::with_capacity(text.len() + found.len() * replacement.len());
        let mut copied = 0;
        for range in found {
            // Every form starts and ends on a character boundary: its first
            // byte is ASCII (`%`, `&`) or the first byte of a UTF-8 sequence,
            // and it ends with a whole character.
            out.push_str(text.get(copied..range.start)?);
            let matched = text.get(range.clone())?;
            out.push_str(if matched.contains('%') {
                &in_url
            } else {
                replacement
            });
            copied = range.end;
        }
        out.push_str(text.get(copied..)?);
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = "bob.real@sender-mail.example";
    const ALIAS: &str = "bbbb@relay.example";

    fn replace(text: &str) -> Option<String> {
        AddressMatcher::new(REAL).unwrap().replace_all(text, ALIAS)
    }

    #[test]
    fn finds_the_address_in_every_reader_form() {
        let cases = [
            (
                "On Tue, Bob <bob.real@sender-mail.example> wrote:",
                "On Tue, Bob <bbbb@relay.example> wrote:",
            ),
            ("BOB.REAL@SENDER-MAIL.EXAMPLE.", "bbbb@relay.example."),
            (
                "href=\"mailto:bob.real%40sender-mail.example\"",
                "href=\"mailto:bbbb%40relay.example\"",
            ),
            (
                "x%3Cbob.real%40sender-mail.example%3E",
                "x%3Cbbbb%40relay.example%3E",
            ),
            (
                "bob.real&#64;sender-mail&period;example",
                "bbbb@relay.example",
            ),
            ("bob.real&#X40;sender-mail.example", "bbbb@relay.example"),
            // Inside longer tokens too: a file name, a run-on word.
            ("bob.real@sender-mail.example.vcf", "bbbb@relay.example.vcf"),
            ("xbob.real@sender-mail.examples", "xbbbb@relay.examples"),
            ("bob.real=40sender-mail=2Eexample", "bbbb@relay.example"),
        ];
        for (input, expected) in cases {
            assert_eq!(replace(input).as_deref(), Some(expected), "{input}");
        }
        for text in ["bob.real%2Esender?", "no address at all", "", "bob.real@"] {
            assert_eq!(replace(text), None, "{text}");
        }
    }

    #[test]
    fn non_ascii_addresses_in_utf8_and_percent_forms() {
        let matcher = AddressMatcher::new("jörg@bücher.example").unwrap();
        let text = "JÖRG@BÜCHER.EXAMPLE and j%C3%B6rg%40b%c3%bccher.example, Grüße";
        assert_eq!(
            matcher.replace_all(text, ALIAS).as_deref(),
            Some("bbbb@relay.example and bbbb%40relay.example, Grüße")
        );
    }
}
