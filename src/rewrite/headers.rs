//! Splits a raw message into header fields and body without interpreting
//! values. Strict on purpose: a field name must be RFC 5322 `ftext`, so
//! `Fr om:` or a line without a colon is an error, not a guess.

use super::RewriteError;

/// One header field exactly as received: `raw` runs from the name to the end
/// of its last (folded) line, including the final CRLF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field<'a> {
    pub name: &'a str,
    pub raw: &'a [u8],
    /// Everything after the colon, folding included, without the final CRLF.
    pub value: &'a [u8],
}

impl Field<'_> {
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

pub struct Split<'a> {
    pub fields: Vec<Field<'a>>,
    /// Offset of the first body byte (after the empty line), or the end.
    pub body_start: usize,
}

/// Fails on bare CR or LF anywhere: such a message is refused, never repaired.
pub fn check_line_endings(raw: &[u8]) -> Result<(), RewriteError> {
    let mut previous = 0u8;
    for (index, &byte) in raw.iter().enumerate() {
        let bare_lf = byte == b'\n' && previous != b'\r';
        let bare_cr = previous == b'\r' && byte != b'\n';
        if bare_lf || bare_cr {
            return Err(RewriteError::BareLineEnding);
        }
        previous = byte;
        if index + 1 == raw.len() && byte == b'\r' {
            return Err(RewriteError::BareLineEnding);
        }
    }
    Ok(())
}

fn finish<'a>(
    raw: &'a [u8],
    fields: &mut Vec<Field<'a>>,
    current: Option<(usize, &'a str)>,
    end: usize,
) {
    if let Some((start, name)) = current {
        let raw_field = &raw[start..end];
        let after_name = &raw_field[name.len()..raw_field.len() - 2];
        // Only white space can stand between the name and its colon.
        let colon = after_name.iter().position(|&b| b == b':').unwrap_or(0);
        fields.push(Field {
            name,
            raw: raw_field,
            value: &after_name[colon + 1..],
        });
    }
}

pub fn split(raw: &[u8], max_header_bytes: usize) -> Result<Split<'_>, RewriteError> {
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut pos = 0;
    // (start of current field, end of its name)
    let mut current: Option<(usize, &str)> = None;
    while pos < raw.len() {
        if pos > max_header_bytes {
            return Err(RewriteError::HeaderTooLarge);
        }
        let line_end = match memchr_crlf(&raw[pos..]) {
            Some(offset) => pos + offset + 2,
            // A last header line without CRLF cannot come out of DATA.
            None => return Err(RewriteError::MalformedHeader),
        };
        let line = &raw[pos..line_end - 2];
        if line.is_empty() {
            finish(raw, &mut fields, current.take(), pos);
            return Ok(Split {
                fields,
                body_start: line_end,
            });
        }
        if line.contains(&0) {
            return Err(RewriteError::MalformedHeader);
        }
        if matches!(line[0], b' ' | b'\t') {
            if current.is_none() {
                return Err(RewriteError::MalformedHeader);
            }
        } else {
            finish(raw, &mut fields, current.take(), pos);
            current = Some((pos, field_name(line)?));
        }
        pos = line_end;
    }
    if pos > max_header_bytes {
        return Err(RewriteError::HeaderTooLarge);
    }
    finish(raw, &mut fields, current.take(), pos);
    Ok(Split {
        fields,
        body_start: raw.len(),
    })
}

/// The name of a field starting on this line. Obsolete syntax allows white
/// space between name and colon (`Subject :`), but never inside the name.
fn field_name(line: &[u8]) -> Result<&str, RewriteError> {
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(RewriteError::MalformedHeader)?;
    let name = &line[..colon];
    let trimmed_len = name
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(0, |p| p + 1);
    let name = &name[..trimmed_len];
    let valid = !name.is_empty() && name.iter().all(|&b| (33..=126).contains(&b) && b != b':');
    if !valid {
        return Err(RewriteError::MalformedHeader);
    }
    // All bytes are printable ASCII, so this cannot fail.
    std::str::from_utf8(name).map_err(|_| RewriteError::MalformedHeader)
}

fn memchr_crlf(haystack: &[u8]) -> Option<usize> {
    haystack.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_folded_fields_and_body() {
        let raw = b"Subject: hi\r\n there\r\nFrom :a@b.example\r\n\r\nbody\r\n";
        let split = split(raw, 1000).unwrap();
        assert_eq!(split.fields.len(), 2);
        assert_eq!(split.fields[0].name, "Subject");
        assert_eq!(split.fields[0].raw, b"Subject: hi\r\n there\r\n");
        assert_eq!(split.fields[0].value, b" hi\r\n there");
        assert_eq!(split.fields[1].name, "From");
        assert_eq!(split.fields[1].value, b"a@b.example");
        assert_eq!(&raw[split.body_start..], b"body\r\n");
    }

    #[test]
    fn headers_only_message() {
        let split = split(b"Subject: x\r\n", 1000).unwrap();
        assert_eq!(split.fields.len(), 1);
        assert_eq!(split.body_start, 12);
        assert!(super::split(b"", 1000).unwrap().fields.is_empty());
    }

    #[test]
    fn refuses_odd_names_and_orphans() {
        for raw in [
            &b"Fr om: a@b\r\n\r\n"[..],
            b"no colon here\r\n\r\n",
            b" leading fold\r\n\r\n",
            b": empty name\r\n\r\n",
            b"Subject: a\x00b\r\n\r\n",
            b"Subject: unterminated",
        ] {
            assert!(
                split(raw, 1000).is_err(),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn header_size_is_bounded() {
        let raw = format!("Subject: {}\r\n\r\n", "x".repeat(200));
        assert!(matches!(
            split(raw.as_bytes(), 100),
            Err(RewriteError::HeaderTooLarge)
        ));
    }

    #[test]
    fn line_endings() {
        assert!(check_line_endings(b"a\r\nb\r\n").is_ok());
        assert!(check_line_endings(b"").is_ok());
        for bad in [&b"a\nb"[..], b"a\rb", b"a\r", b"\n", b"a\r\r\n"] {
            assert!(check_line_endings(bad).is_err(), "{bad:?}");
        }
    }
}
