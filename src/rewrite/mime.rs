//! The MIME structure as offsets into the raw bytes: an entity's header
//! block and body, a multipart body's parts. Lenient (inner parts of real
//! mail are often sloppy) and linear: each call scans its bytes once.

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
/// field), one at a time: a caller that wants a few names stops early, and
/// a block of millions of fields is never held as a list.
/// Continuation lines stay with the field above them.
pub fn loose_fields(header_block: &[u8]) -> LooseFields<'_> {
    LooseFields {
        block: header_block,
        pos: 0,
    }
}

pub struct LooseFields<'a> {
    block: &'a [u8],
    pos: usize,
}

impl<'a> LooseFields<'a> {
    /// The end of the line starting at `pos`, CRLF included.
    fn line_end(&self, pos: usize) -> usize {
        self.block[pos..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map_or(self.block.len(), |p| pos + p + 2)
    }
}

impl<'a> Iterator for LooseFields<'a> {
    type Item = LooseField<'a>;

    fn next(&mut self) -> Option<LooseField<'a>> {
        let start = self.pos;
        if start >= self.block.len() || self.block[start..].starts_with(b"\r\n") {
            return None;
        }
        let first_end = self.line_end(start);
        let mut end = first_end;
        while end < self.block.len() && matches!(self.block[end], b' ' | b'\t') {
            end = self.line_end(end);
        }
        self.pos = end;
        let line = &self.block[start..first_end];
        let name = line
            .iter()
            .position(|&b| b == b':')
            .and_then(|colon| std::str::from_utf8(&line[..colon]).ok());
        Some(LooseField {
            name,
            raw: &self.block[start..end],
        })
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
    fn loose_fields_keep_garbage_and_folding() {
        let block = b"A: 1\r\n 2\r\ngarbage\r\n\tmore\r\nB:3\r\n\r\nnot a field\r\n";
        let fields: Vec<_> = loose_fields(block).collect();
        assert_eq!(fields.len(), 3);
        assert!(fields[0].is("a"));
        assert_eq!(fields[0].raw, b"A: 1\r\n 2\r\n");
        assert!(fields[1].name.is_none());
        assert_eq!(fields[1].raw, b"garbage\r\n\tmore\r\n");
        assert_eq!(fields[2].raw, b"B:3\r\n");
        assert_eq!(loose_fields(b" orphan\r\n").count(), 1);
    }
}
