//! The MIME structure as offsets into the raw bytes: an entity's header
//! block and body, a multipart body's parts. Lenient (inner parts of real
//! mail are often sloppy) and linear: each call scans its bytes once.

use mail_parser::{MessageParser, MimeHeaders};

/// Offset of an entity's body: after the first empty line, or the end when
/// there is none (then it is all header).
pub fn body_start(entity: &[u8]) -> usize {
    if entity.starts_with(b"\r\n") {
        return 2;
    }
    entity
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(entity.len(), |p| p + 4)
}

/// One header field of a part, lenient: `name` is `None` for a line that is
/// no field at all (kept or dropped by the caller, never misread).
pub struct LooseField<'a> {
    pub name: Option<&'a str>,
    /// The field's lines, CRLFs included.
    pub raw: &'a [u8],
}

impl LooseField<'_> {
    pub fn is(&self, name: &str) -> bool {
        self.name
            .is_some_and(|n| n.trim().eq_ignore_ascii_case(name))
    }
}

/// The fields of a header block (the empty line that ends it is not a
/// field). Continuation lines stay with the field above them.
pub fn loose_fields(header_block: &[u8]) -> Vec<LooseField<'_>> {
    let mut fields: Vec<LooseField<'_>> = Vec::new();
    let mut pos = 0;
    while pos < header_block.len() {
        let line_end = header_block[pos..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(header_block.len(), |p| pos + p + 2);
        let line = &header_block[pos..line_end];
        if line == b"\r\n" {
            break;
        }
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        match fields.last_mut() {
            Some(last) if continuation => {
                let start = pos - last.raw.len();
                last.raw = &header_block[start..line_end];
            }
            _ => {
                let name = line
                    .iter()
                    .position(|&b| b == b':')
                    .and_then(|colon| std::str::from_utf8(&line[..colon]).ok());
                fields.push(LooseField { name, raw: line });
            }
        }
        pos = line_end;
    }
    fields
}

/// What the guard needs from an entity's header block.
#[derive(Debug, Default)]
pub struct EntityInfo {
    /// Lowercase `type/subtype`, empty when absent or unparsable.
    pub content_type: String,
    pub boundary: Option<String>,
    pub charset: Option<String>,
    pub transfer_encoding: Option<String>,
    /// Content-Disposition says `attachment`.
    pub attachment: bool,
}

impl EntityInfo {
    /// Reads the first field of each name, as Python's `email` and most
    /// clients do (mail-parser alone would take the last).
    pub fn parse(header_block: &[u8]) -> Self {
        // Only the fields read below are kept, so the de-duplication scans
        // at most three: a part header may hold millions of other names.
        const READ: [&str; 3] = [
            "Content-Type",
            "Content-Transfer-Encoding",
            "Content-Disposition",
        ];
        let mut first_fields: Vec<LooseField<'_>> = Vec::new();
        for field in loose_fields(header_block) {
            let Some(name) = field.name else { continue };
            let name = name.trim();
            if READ.iter().any(|read| field.is(read))
                && !first_fields.iter().any(|seen| seen.is(name))
            {
                first_fields.push(field);
            }
        }
        let mut block: Vec<u8> = first_fields
            .iter()
            .flat_map(|f| f.raw.iter().copied())
            .collect();
        if !block.is_empty() && !block.ends_with(b"\r\n") {
            block.extend_from_slice(b"\r\n");
        }
        block.extend_from_slice(b"\r\n");
        let Some(headers) = MessageParser::new().parse_headers(&block) else {
            return Self::default();
        };
        let content_type = headers.content_type();
        let attribute = |name: &str| {
            content_type
                .and_then(|ct| ct.attribute(name))
                .map(str::to_owned)
        };
        Self {
            content_type: content_type
                .map(|ct| {
                    format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default())
                        .to_ascii_lowercase()
                })
                .unwrap_or_default(),
            boundary: attribute("boundary").filter(|b| !b.is_empty()),
            charset: attribute("charset"),
            transfer_encoding: headers.content_transfer_encoding().map(str::to_owned),
            attachment: headers
                .content_disposition()
                .is_some_and(|cd| cd.is_attachment()),
        }
    }

    pub fn is_multipart(&self) -> bool {
        self.content_type.starts_with("multipart/")
    }

    pub fn is_message(&self) -> bool {
        matches!(
            self.content_type.as_str(),
            "message/rfc822" | "message/global"
        )
    }

    /// Text a client shows: text/* (or no type: RFC 2045's default) that
    /// is not an attachment.
    pub fn is_shown_text(&self) -> bool {
        !self.attachment && (self.content_type.is_empty() || self.content_type.starts_with("text/"))
    }
}

/// A multipart body cut at its delimiter lines. Ranges are into the body;
/// each part excludes the CRLF that belongs to the next delimiter.
#[derive(Debug, PartialEq, Eq)]
pub struct Multipart {
    pub preamble: std::ops::Range<usize>,
    pub parts: Vec<std::ops::Range<usize>>,
    /// Everything after the close delimiter line (or nothing).
    pub epilogue: std::ops::Range<usize>,
}

/// `None` when no delimiter line is found.
pub fn split_multipart(body: &[u8], boundary: &str) -> Option<Multipart> {
    let delimiter = format!("--{boundary}");
    let delimiter = delimiter.as_bytes();
    let mut preamble_end = None;
    let mut parts = Vec::new();
    let mut part_start = None;
    let mut line_start = 0;
    while line_start < body.len() {
        let line_end = body[line_start..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(body.len(), |p| line_start + p + 2);
        let line = &body[line_start..line_end];
        if let Some(rest) = line.strip_prefix(delimiter) {
            let rest = rest.strip_suffix(b"\r\n").unwrap_or(rest);
            let (close, padding) = match rest.strip_prefix(b"--") {
                Some(padding) => (true, padding),
                None => (false, rest),
            };
            if padding.iter().all(|&b| b == b' ' || b == b'\t') {
                // The CRLF before a delimiter belongs to the delimiter.
                let content_end = line_start.saturating_sub(2);
                match part_start {
                    Some(start) => parts.push(start..content_end.max(start)),
                    None => preamble_end = Some(content_end),
                }
                if close {
                    return Some(Multipart {
                        preamble: 0..preamble_end.unwrap_or(0),
                        parts,
                        epilogue: line_end..body.len(),
                    });
                }
                part_start = Some(line_end);
            }
        }
        line_start = line_end;
    }
    // No close delimiter: the last part runs to the end, as clients read it.
    let start = part_start?;
    parts.push(start..body.len());
    Some(Multipart {
        preamble: 0..preamble_end.unwrap_or(0),
        parts,
        epilogue: body.len()..body.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_distinct_header_names_are_read_in_one_pass() {
        // The de-duplication once compared every name with every other:
        // 200,000 names made that 2 x 10^10 comparisons.
        let mut block: Vec<u8> = (0..200_000)
            .flat_map(|i| format!("x{i}: v\r\n").into_bytes())
            .collect();
        block.extend_from_slice(b"Content-Type: text/plain; charset=iso-8859-1\r\n");
        block.extend_from_slice(b"content-type: text/html\r\n");
        let info = EntityInfo::parse(&block);
        assert_eq!(
            info.content_type, "text/plain",
            "the first Content-Type wins"
        );
        assert_eq!(info.charset.as_deref(), Some("iso-8859-1"));
    }

    #[test]
    fn splits_parts_preamble_and_epilogue() {
        let body = b"pre\r\n--b\r\nA: 1\r\n\r\none\r\n--b  \r\n\r\ntwo\r\n--b--\r\nepi\r\n";
        let split = split_multipart(body, "b").unwrap();
        assert_eq!(&body[split.preamble.clone()], b"pre");
        assert_eq!(split.parts.len(), 2);
        assert_eq!(&body[split.parts[0].clone()], b"A: 1\r\n\r\none");
        assert_eq!(&body[split.parts[1].clone()], b"\r\ntwo");
        assert_eq!(&body[split.epilogue.clone()], b"epi\r\n");
    }

    #[test]
    fn longer_boundaries_and_missing_close() {
        let body = b"--b\r\none\r\n--bb\r\nstill one\r\n--b\r\ntwo";
        let split = split_multipart(body, "b").unwrap();
        assert_eq!(&body[split.parts[0].clone()], b"one\r\n--bb\r\nstill one");
        assert_eq!(&body[split.parts[1].clone()], b"two");
        assert!(split_multipart(b"no delimiter\r\n", "b").is_none());
        let empty = split_multipart(b"--b\r\n--b--", "b").unwrap();
        assert_eq!(empty.parts, vec![5..5]);
    }

    #[test]
    fn entity_info_from_headers() {
        let info = EntityInfo::parse(
            b"Content-Type: Text/Plain; charset=\"ISO-8859-1\"\r\nContent-Transfer-Encoding: Quoted-Printable\r\n\r\n",
        );
        assert_eq!(info.content_type, "text/plain");
        assert_eq!(info.charset.as_deref(), Some("ISO-8859-1"));
        assert!(info
            .transfer_encoding
            .as_deref()
            .unwrap()
            .eq_ignore_ascii_case("quoted-printable"));
        assert!(info.is_shown_text());
        let info =
            EntityInfo::parse(b"Content-Type: multipart/mixed;\r\n boundary=\"x y\"\r\n\r\n");
        assert!(info.is_multipart());
        assert_eq!(info.boundary.as_deref(), Some("x y"));
        let info = EntityInfo::parse(b"Content-Disposition: attachment\r\n\r\n");
        assert!(!info.is_shown_text());
        assert!(EntityInfo::parse(b"\r\n").content_type.is_empty());
        let info =
            EntityInfo::parse(b"Content-Type: text/plain\r\nContent-Type: application/pdf\r\n\r\n");
        assert_eq!(info.content_type, "text/plain", "the first field counts");
        assert_eq!(body_start(b"A: b\r\n\r\nbody"), 8);
        assert_eq!(body_start(b"\r\nbody"), 2);
        assert_eq!(body_start(b"A: b\r\n"), 6);
    }

    #[test]
    fn loose_fields_keep_garbage_and_folding() {
        let block = b"A: 1\r\n 2\r\ngarbage\r\n\tmore\r\nB:3\r\n\r\nnot a field\r\n";
        let fields = loose_fields(block);
        assert_eq!(fields.len(), 3);
        assert!(fields[0].is("a"));
        assert_eq!(fields[0].raw, b"A: 1\r\n 2\r\n");
        assert!(fields[1].name.is_none());
        assert_eq!(fields[1].raw, b"garbage\r\n\tmore\r\n");
        assert_eq!(fields[2].raw, b"B:3\r\n");
        assert!(loose_fields(b" orphan\r\n").len() == 1);
    }
}
