//! RFC 5545 content lines: unfolding, parsing, escaping and folding. No
//! policy here: what is kept is decided by the other modules of `ical`.

use std::borrow::Cow;

/// Where unfolding stops: physical lines, and bytes in one logical line.
pub struct Limits {
    pub max_lines: usize,
    pub max_line_bytes: usize,
}

#[derive(Debug, PartialEq, Eq)]
pub enum UnfoldError {
    TooManyLines,
    LineTooLong,
}

/// Logical lines of `raw`: CRLF or bare LF ends a line, and a line that
/// starts with a space or tab continues the one before (that one character
/// removed). Unfolding works on bytes, before UTF-8 decoding, because a fold
/// may fall inside a character; invalid UTF-8 then becomes U+FFFD.
pub fn unfold(raw: &[u8], limits: &Limits) -> Result<Vec<String>, UnfoldError> {
    let mut lines = Vec::new();
    let mut current: Vec<u8> = Vec::new();
    for (count, physical) in raw.split(|&b| b == b'\n').enumerate() {
        if count >= limits.max_lines {
            return Err(UnfoldError::TooManyLines);
        }
        let physical = physical.strip_suffix(b"\r").unwrap_or(physical);
        match physical.split_first() {
            Some((b' ' | b'\t', continuation)) => current.extend_from_slice(continuation),
            _ => {
                if !current.is_empty() {
                    lines.push(String::from_utf8_lossy(&current).into_owned());
                }
                current.clear();
                current.extend_from_slice(physical);
            }
        }
        if current.len() > limits.max_line_bytes {
            return Err(UnfoldError::LineTooLong);
        }
    }
    if !current.is_empty() {
        lines.push(String::from_utf8_lossy(&current).into_owned());
    }
    Ok(lines)
}

/// One content line: `NAME *(;PARAM=VALUE[,VALUE]) : VALUE`.
#[derive(Debug, PartialEq, Eq)]
pub struct ContentLine<'a> {
    pub name: &'a str,
    pub params: Vec<Param<'a>>,
    pub value: &'a str,
}

/// A parameter; its values are unquoted and RFC 6868-decoded.
#[derive(Debug, PartialEq, Eq)]
pub struct Param<'a> {
    pub name: &'a str,
    pub values: Vec<Cow<'a, str>>,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-'
}

/// Whether `s` is a non-empty iana-token or x-name.
pub fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_name_char)
}

impl<'a> ContentLine<'a> {
    /// `None` for a line that is not a content line (no name, no colon,
    /// an unterminated quoted parameter value).
    pub fn parse(line: &'a str) -> Option<Self> {
        let name_end = line.find([';', ':'])?;
        let name = &line[..name_end];
        if !is_name(name) {
            return None;
        }
        let mut rest = &line[name_end..];
        let mut params = Vec::new();
        while let Some(after) = rest.strip_prefix(';') {
            let (param, remaining) = Param::parse(after)?;
            params.push(param);
            rest = remaining;
        }
        let value = rest.strip_prefix(':')?;
        Some(Self {
            name,
            params,
            value,
        })
    }
}

impl<'a> Param<'a> {
    /// One parameter from the start of `text` (after its `;`), and what
    /// follows it (starting at `;` or `:`).
    fn parse(text: &'a str) -> Option<(Self, &'a str)> {
        let (name, mut rest) = text.split_once('=')?;
        if !is_name(name) {
            return None;
        }
        let mut values = Vec::new();
        loop {
            let (raw, remaining) = if let Some(quoted) = rest.strip_prefix('"') {
                let end = quoted.find('"')?;
                (&quoted[..end], &quoted[end + 1..])
            } else {
                let end = rest.find([',', ';', ':'])?;
                (&rest[..end], &rest[end..])
            };
            values.push(caret_decode(raw));
            match remaining.strip_prefix(',') {
                Some(next) => rest = next,
                None => return Some((Self { name, values }, remaining)),
            }
        }
    }
}

/// RFC 6868: `^n` is a newline, `^'` a double quote, `^^` a caret.
fn caret_decode(raw: &str) -> Cow<'_, str> {
    if !raw.contains('^') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '^' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some('\'') => out.push('"'),
            Some('^') => out.push('^'),
            Some(other) => {
                out.push('^');
                out.push(other);
            }
            None => out.push('^'),
        }
    }
    Cow::Owned(out)
}

/// A parameter value as written: RFC 6868-encoded, other control
/// characters removed, quoted when it holds `:`, `;` or `,`.
pub fn param_value(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\n' => encoded.push_str("^n"),
            '"' => encoded.push_str("^'"),
            '^' => encoded.push_str("^^"),
            c if c.is_control() => {}
            c => encoded.push(c),
        }
    }
    if encoded.contains([':', ';', ',']) {
        format!("\"{encoded}\"")
    } else {
        encoded
    }
}

/// A TEXT value as a reader sees it: `\n` a newline, `\,` `\;` `\\` the
/// character. An unknown escape keeps its character.
pub fn unescape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Text escaped as a TEXT value; CR (of a CRLF) and other control
/// characters but tab are removed.
pub fn escape_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The items of a comma-separated TEXT list (CATEGORIES), still escaped:
/// split at commas that are not escaped.
pub fn split_text_list(value: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match (escaped, c) {
            (false, '\\') => escaped = true,
            (false, ',') => {
                items.push(&value[start..i]);
                start = i + 1;
            }
            _ => escaped = false,
        }
    }
    items.push(&value[start..]);
    items
}

/// Octets per physical line, CRLF excluded (RFC 5545 section 3.1).
const FOLD_AT: usize = 75;

/// Appends `line` folded at 75 octets, never inside a UTF-8 character,
/// each physical line ended by CRLF.
pub fn fold_into(out: &mut String, line: &str) {
    let mut width = 0;
    for c in line.chars() {
        if width + c.len_utf8() > FOLD_AT {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += c.len_utf8();
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_lines: 100,
        max_line_bytes: 100,
    };

    #[test]
    fn unfolds_crlf_lf_space_and_tab() {
        let raw = b"A:1\r\nB:tw\r\n o\n\tthree\r\n\r\nC:x";
        assert_eq!(
            unfold(raw, &LIMITS).ok(),
            Some(vec!["A:1".into(), "B:twothree".into(), "C:x".into()])
        );
    }

    #[test]
    fn unfolds_a_fold_inside_a_utf8_character() {
        // "på" with the fold between the two bytes of "å".
        let raw = b"SUMMARY:p\xc3\r\n \xa5\r\n";
        assert_eq!(unfold(raw, &LIMITS).ok(), Some(vec!["SUMMARY:på".into()]));
    }

    #[test]
    fn unfold_limits_lines_and_line_length() {
        let many = "A:1\n".repeat(101);
        assert_eq!(
            unfold(many.as_bytes(), &LIMITS),
            Err(UnfoldError::TooManyLines)
        );
        let long = format!("A:{}", "x\r\n ".repeat(99));
        assert_eq!(
            unfold(long.as_bytes(), &LIMITS),
            Err(UnfoldError::LineTooLong)
        );
    }

    #[test]
    fn parses_quoted_and_listed_parameters() {
        let line = r#"ATTENDEE;CN="Doe, Jane: ^'JD^'";DELEGATED-TO="mailto:a@x","mailto:b@x";RSVP=TRUE:mailto:jane@x"#;
        let parsed = ContentLine::parse(line).expect("a content line");
        assert_eq!(parsed.name, "ATTENDEE");
        assert_eq!(parsed.value, "mailto:jane@x");
        assert_eq!(parsed.params.len(), 3);
        assert_eq!(parsed.params[0].values, vec!["Doe, Jane: \"JD\""]);
        assert_eq!(parsed.params[1].values, vec!["mailto:a@x", "mailto:b@x"]);
        assert_eq!(parsed.params[2].name, "RSVP");
        assert_eq!(parsed.params[2].values, vec!["TRUE"]);
    }

    #[test]
    fn rejects_what_is_not_a_content_line() {
        for line in ["no colon", ":no name", "NA ME:x", "X;P=\"open:x", "X;P:x"] {
            assert_eq!(ContentLine::parse(line), None, "{line}");
        }
    }

    #[test]
    fn param_values_are_encoded_and_quoted_when_needed() {
        assert_eq!(param_value("Jane Doe"), "Jane Doe");
        assert_eq!(param_value("Doe, Jane"), "\"Doe, Jane\"");
        assert_eq!(param_value("say \"hi\"\nbye^\r"), "say ^'hi^'^nbye^^");
    }

    #[test]
    fn text_escapes_round_trip() {
        let value = r"a\, b\; c\\ d\nE\Nf\x";
        let text = unescape_text(value);
        assert_eq!(text, "a, b; c\\ d\nE\nfx");
        assert_eq!(escape_text(&text), r"a\, b\; c\\ d\nE\nfx");
        assert_eq!(escape_text("crlf\r\nend\u{7}"), r"crlf\nend");
    }

    #[test]
    fn text_lists_split_at_unescaped_commas() {
        assert_eq!(split_text_list(r"a\,b,c\\,d"), vec![r"a\,b", r"c\\", "d"]);
    }

    #[test]
    fn folds_at_75_octets_between_characters() {
        let line = format!("SUMMARY:{}", "å".repeat(60));
        let mut out = String::new();
        fold_into(&mut out, &line);
        let physical: Vec<&str> = out.split("\r\n").collect();
        assert_eq!(physical.last(), Some(&""));
        for p in &physical {
            assert!(p.len() <= 75, "{} octets: {p}", p.len());
        }
        // 8 ASCII octets then 33 two-octet characters fill 74 octets.
        assert_eq!(physical[0].len(), 74);
        let roomy = Limits {
            max_lines: 10,
            max_line_bytes: 1000,
        };
        let unfolded = unfold(out.as_bytes(), &roomy).map(|l| l.join(""));
        assert_eq!(unfolded.ok(), Some(line));
    }
}
