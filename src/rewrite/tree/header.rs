//! Header blocks read: a part's MIME fields ([`PartHeader`]) and the
//! fields of a forwarded message that are written anew
//! ([`EmbeddedFields`]). Only the first field of each name is parsed, and
//! each is bounded in length.

use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders};

use crate::rewrite::mime::{loose_fields, LooseField};
use crate::rewrite::policy;
use crate::rewrite::transfer::Encoding;
use crate::rewrite::RewriteError;

/// A part's MIME header as read (values decoded by mail-parser, RFC 2231
/// continuations joined); nothing of it is written back unchecked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartHeader {
    /// Lowercase `type/subtype`; empty when absent or unreadable.
    pub media_type: String,
    /// Content-Type parameters, names lowercased.
    pub params: Vec<(String, String)>,
    /// Content-Disposition, when present: whether it says `attachment`,
    /// and its parameters.
    pub disposition: Option<(bool, Vec<(String, String)>)>,
    pub content_id: Option<String>,
    pub language: Option<String>,
    pub encoding: Encoding,
    /// The `boundary` parameter as written, before any decoding (a parser
    /// may take `boundary="=?utf-8?q?b?="` for an encoded word; a reader
    /// splits on it as it stands).
    pub raw_boundary: Option<String>,
}

impl PartHeader {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn is_attachment(&self) -> bool {
        self.disposition.as_ref().is_some_and(|(a, _)| *a)
    }

    /// The file name a reader sees: the disposition's, else Content-Type's.
    pub fn file_name(&self) -> Option<&str> {
        self.disposition
            .as_ref()
            .and_then(|(_, params)| params.iter().find(|(n, _)| n == "filename"))
            .map(|(_, v)| v.as_str())
            .or_else(|| self.param("name"))
    }

    /// Reads the first field of each MIME name in a header block, as
    /// Python's `email` and most clients do. Only those few fields are
    /// parsed, so a block of millions of other names costs one scan; a MIME
    /// field longer than [`MAX_MIME_FIELD_BYTES`] is refused (the parser
    /// joins RFC 2231 sections in quadratic time).
    pub fn read(block: &[u8]) -> Result<Self, RewriteError> {
        let fields = first_fields(block, policy::PART_FIELDS, MAX_MIME_FIELD_BYTES)?;
        let Some(headers) = parse_fields(&fields) else {
            return Ok(Self::default());
        };
        let attributes = |ct: &mail_parser::ContentType<'_>| -> Vec<(String, String)> {
            ct.attributes
                .as_deref()
                .unwrap_or_default()
                .iter()
                .map(|a| (a.name.to_ascii_lowercase(), a.value.to_string()))
                .collect()
        };
        let content_type = headers.content_type();
        Ok(Self {
            media_type: content_type
                .map(|ct| {
                    format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default())
                        .to_ascii_lowercase()
                })
                .filter(|t| t.len() <= 127 && !t.ends_with('/'))
                .unwrap_or_default(),
            params: content_type.map(attributes).unwrap_or_default(),
            disposition: headers
                .content_disposition()
                .map(|cd| (cd.is_attachment(), attributes(cd))),
            content_id: headers.content_id().map(str::to_owned),
            language: match headers.content_language() {
                HeaderValue::Text(text) => policy::language_tags(text),
                HeaderValue::TextList(list) => policy::language_tags(&list.join(",")),
                _ => None,
            },
            encoding: Encoding::from_header(headers.content_transfer_encoding()),
            raw_boundary: raw_boundary(&fields),
        })
    }
}

/// The `boundary=` value of the first Content-Type in a block, as written:
/// a quoted string (backslash escapes undone) or a token.
fn raw_boundary(block: &[u8]) -> Option<String> {
    let field = loose_fields(block).find(|f| f.is("Content-Type"))?;
    let text = String::from_utf8_lossy(field.raw);
    let lower = text.to_ascii_lowercase();
    let at = lower.find("boundary=")? + "boundary=".len();
    let value = &text[at..];
    let boundary: String = match value.strip_prefix('"') {
        Some(quoted) => {
            let mut out = String::new();
            let mut chars = quoted.chars();
            while let Some(c) = chars.next() {
                match c {
                    '"' => break,
                    '\\' => out.extend(chars.next()),
                    c => out.push(c),
                }
            }
            out
        }
        None => value
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != ';')
            .collect(),
    };
    (!boundary.is_empty()).then_some(boundary)
}

/// The fields of a forwarded message's header that are written anew.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmbeddedFields {
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// Unix time of its Date.
    pub date: Option<i64>,
    pub subject: Option<String>,
}

impl EmbeddedFields {
    pub fn read(block: &[u8]) -> Result<Self, RewriteError> {
        let fields = first_fields(
            block,
            &["From", "To", "Cc", "Date", "Subject"],
            MAX_EMBEDDED_FIELD_BYTES,
        )?;
        let Some(headers) = parse_fields(&fields) else {
            return Ok(Self::default());
        };
        let addresses = |list: Option<&Address<'_>>| -> Vec<String> {
            list.map(|l| {
                l.iter()
                    .filter_map(|a| a.address())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
        };
        Ok(Self {
            from: addresses(headers.from()),
            to: addresses(headers.to()),
            cc: addresses(headers.cc()),
            date: headers
                .date()
                .filter(|d| d.is_valid())
                .map(|d| d.to_timestamp()),
            subject: headers.subject().map(str::to_owned),
        })
    }
}

/// Longest MIME field of a part read (real ones are a few hundred bytes).
pub const MAX_MIME_FIELD_BYTES: usize = 16 * 1024;
/// Longest address or subject field of a forwarded message read (a To of
/// thousands of addresses).
pub const MAX_EMBEDDED_FIELD_BYTES: usize = 256 * 1024;

/// The first field of each of `names` in a header block, as one block.
fn first_fields(block: &[u8], names: &[&str], max_field: usize) -> Result<Vec<u8>, RewriteError> {
    let mut picked: Vec<LooseField<'_>> = Vec::new();
    for field in loose_fields(block) {
        if names.iter().any(|name| field.is(name)) && !picked.iter().any(|p| same_name(p, &field)) {
            if field.raw.len() > max_field {
                return Err(RewriteError::TooComplex);
            }
            picked.push(field);
        }
        if picked.len() == names.len() {
            break;
        }
    }
    let mut out: Vec<u8> = Vec::with_capacity(picked.iter().map(|f| f.raw.len() + 2).sum());
    for field in picked {
        out.extend_from_slice(field.raw);
        if !field.raw.ends_with(b"\r\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

fn same_name(a: &LooseField<'_>, b: &LooseField<'_>) -> bool {
    matches!((a.name, b.name), (Some(x), Some(y)) if x.trim().eq_ignore_ascii_case(y.trim()))
}

fn parse_fields(block: &[u8]) -> Option<mail_parser::Message<'_>> {
    MessageParser::new().parse_headers(block)
}
