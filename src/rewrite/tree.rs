//! The message read into a bounded MIME tree, with the policy's structural
//! decisions already taken: dropped parts are gone, `multipart/signed` and
//! opaque S/MIME signed data are replaced by their content, forwarded
//! messages are read like the top level. Leaves keep their bytes as sent
//! (still transfer-encoded): they are decoded one at a time while the new
//! message is written ([`super::build`]), so at most one decoded copy of a
//! part exists at a time.
//!
//! Bounded: at most [`MAX_DEPTH`] nested entities and [`MAX_ENTITIES`] in
//! all, and every byte decoded or copied here is charged to the rewrite's
//! [`Budget`]. A message beyond that is refused, never forwarded unread.

use std::borrow::Cow;

use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders};

use super::cms::{self, Cms};
use super::mime::{body_start, loose_fields, split_multipart, LooseField};
use super::policy::{self, FileKind, PartRule};
use super::scrub::Scrubber;
use super::transfer::Encoding;
use super::RewriteError;

/// Deepest nesting of multiparts and embedded messages.
pub const MAX_DEPTH: usize = 20;
/// Most MIME entities (parts at any level, embedded messages included).
pub use crate::core::budget::MAX_ENTITIES;

/// Bytes the rewrite may decode or copy beyond the input and its output,
/// counted over the whole rewrite.
#[derive(Debug)]
pub struct Budget {
    left: usize,
}

impl Budget {
    /// Three times the input (a part decoded, scrubbed and re-encoded; an
    /// encoded forwarded message decoded once more), plus a small allowance.
    pub fn for_input(input_len: usize) -> Self {
        Self {
            left: crate::core::budget::working_copies(input_len),
        }
    }

    pub fn charge(&mut self, bytes: usize) -> Result<(), RewriteError> {
        self.left = self
            .left
            .checked_sub(bytes)
            .ok_or(RewriteError::TooComplex)?;
        Ok(())
    }
}

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

/// Whether `part` starts with a header field line (`name:` with a name of
/// printable ASCII, or an empty header and its blank line).
fn starts_with_field(part: &[u8]) -> bool {
    if part.starts_with(b"\r\n") {
        return true;
    }
    let name_end = part
        .iter()
        .position(|&b| b == b':' || b == b'\r' || b == b'\n');
    matches!(name_end, Some(end) if end > 0 && part[end] == b':'
        && part[..end].iter().all(|&b| (33..=126).contains(&b)))
}

/// One entity of the tree.
#[derive(Debug)]
pub struct Entity<'a> {
    pub header: PartHeader,
    pub rule: PartRule,
    pub body: Body<'a>,
}

#[derive(Debug)]
pub enum Body<'a> {
    /// The part's bytes as sent, in `header.encoding`.
    Leaf(Cow<'a, [u8]>),
    /// The parts of a multipart, in order (never empty).
    Parts(Vec<Entity<'a>>),
    /// A forwarded message.
    Message(Box<EmbeddedFields>, Box<Entity<'a>>),
    /// A header block without a body (`text/rfc822-headers`).
    Headers(Box<EmbeddedFields>),
}

impl<'a> Entity<'a> {
    /// An empty text part: what stands for an entity whose content was
    /// removed by policy (a message that was only a key or a signature).
    pub fn empty_text() -> Entity<'a> {
        Entity {
            header: PartHeader::default(),
            rule: PartRule::PlainText,
            body: Body::Leaf(Cow::Borrowed(b"")),
        }
    }

    /// The same entity owning its bytes: for content decoded or unwrapped
    /// into a temporary buffer, which was charged when it was made (the
    /// copy replaces it).
    fn into_owned(self) -> Entity<'static> {
        let body = match self.body {
            Body::Leaf(bytes) => Body::Leaf(Cow::Owned(bytes.into_owned())),
            Body::Parts(parts) => Body::Parts(parts.into_iter().map(Entity::into_owned).collect()),
            Body::Message(fields, inner) => Body::Message(fields, Box::new(inner.into_owned())),
            Body::Headers(fields) => Body::Headers(fields),
        };
        Entity {
            header: self.header,
            rule: self.rule,
            body,
        }
    }
}

/// Reads entities, counting them against the limits.
pub struct Reader<'b> {
    entities: usize,
    budget: &'b mut Budget,
    /// Knows the sender's addresses: a contact card of theirs is dropped.
    scrubber: &'b Scrubber,
}

/// First bytes of an attachment decoded to tell what it is.
const SNIFF_BYTES: usize = 256;

impl<'b> Reader<'b> {
    pub fn new(budget: &'b mut Budget, scrubber: &'b Scrubber) -> Self {
        Self {
            entities: 0,
            budget,
            scrubber,
        }
    }

    /// The entity with this header and body; None when the policy drops it.
    pub fn entity<'a>(
        &mut self,
        header: PartHeader,
        body: &'a [u8],
        depth: usize,
    ) -> Result<Option<Entity<'a>>, RewriteError> {
        self.entities += 1;
        if depth > MAX_DEPTH || self.entities > MAX_ENTITIES {
            return Err(RewriteError::TooComplex);
        }
        let rule = policy::part_rule(&header.media_type, header.is_attachment());
        let leaf = |header: PartHeader, rule: PartRule| Entity {
            header,
            rule,
            body: Body::Leaf(Cow::Borrowed(body)),
        };
        match rule {
            PartRule::Drop => Ok(None),
            PartRule::Multipart(_) | PartRule::Encrypted | PartRule::UnwrapSigned => {
                let Some(parts) = self.parts(&header, body, depth)? else {
                    // Without parts a client shows the body as text.
                    return Ok(Some(leaf(PartHeader::default(), PartRule::PlainText)));
                };
                if rule == PartRule::UnwrapSigned {
                    return Ok(parts.into_iter().next());
                }
                if parts.is_empty() {
                    return Ok(Some(Entity::empty_text()));
                }
                Ok(Some(Entity {
                    header,
                    rule,
                    body: Body::Parts(parts),
                }))
            }
            PartRule::EmbeddedMessage => self.embedded(header, body, depth).map(Some),
            PartRule::EmbeddedHeaders => {
                let decoded = self.decode(header.encoding, body)?;
                let fields = EmbeddedFields::read(&decoded)?;
                Ok(Some(Entity {
                    header,
                    rule,
                    body: Body::Headers(Box::new(fields)),
                }))
            }
            PartRule::Cms => self.cms(header, body, depth),
            PartRule::Attachment => self.file(header, body, depth),
            PartRule::PlainText | PartRule::Html | PartRule::Calendar => {
                Ok(Some(leaf(header, rule)))
            }
        }
    }

    /// A multipart's parts (for `multipart/signed`, only the first, the
    /// signed content); None when its boundary is missing or never found.
    fn parts<'a>(
        &mut self,
        header: &PartHeader,
        body: &'a [u8],
        depth: usize,
    ) -> Result<Option<Vec<Entity<'a>>>, RewriteError> {
        // RFC 2046 allows 70 characters; readers take longer ones, up to
        // a line's length.
        let split = [header.param("boundary"), header.raw_boundary.as_deref()]
            .into_iter()
            .flatten()
            .filter(|b| !b.is_empty() && b.len() <= 998)
            .find_map(|boundary| split_multipart(body, boundary));
        let Some(split) = split else {
            return Ok(None);
        };
        let signed = header.media_type == "multipart/signed";
        let digest = header.media_type == "multipart/digest";
        let mut parts = Vec::new();
        for range in split.parts {
            let part = &body[range];
            // A part whose first line is no header field has no header:
            // readers show it all as text (Python's `email` does).
            let header_end = if starts_with_field(part) {
                body_start(part)
            } else {
                0
            };
            let mut part_header = PartHeader::read(&part[..header_end])?;
            // RFC 2046: a digest's parts are messages unless they say otherwise.
            if digest && part_header.media_type.is_empty() {
                part_header.media_type = "message/rfc822".to_owned();
            }
            if let Some(entity) = self.entity(part_header, &part[header_end..], depth + 1)? {
                parts.push(entity);
            }
            if signed {
                break;
            }
        }
        Ok(Some(parts))
    }

    fn embedded<'a>(
        &mut self,
        header: PartHeader,
        body: &'a [u8],
        depth: usize,
    ) -> Result<Entity<'a>, RewriteError> {
        // message/rfc822 should be 7bit or 8bit, but some clients encode it.
        let (fields, entity) = match self.decode(header.encoding, body)? {
            Cow::Borrowed(inner) => self.message(inner, depth)?,
            Cow::Owned(inner) => {
                let (fields, entity) = self.message(&inner, depth)?;
                let entity = entity.map(Entity::into_owned);
                (fields, entity)
            }
        };
        let entity = entity.unwrap_or_else(Entity::empty_text);
        Ok(Entity {
            header,
            rule: PartRule::EmbeddedMessage,
            body: Body::Message(Box::new(fields), Box::new(entity)),
        })
    }

    /// An attachment, by what its name and first bytes say it is.
    fn file<'a>(
        &mut self,
        header: PartHeader,
        body: &'a [u8],
        depth: usize,
    ) -> Result<Option<Entity<'a>>, RewriteError> {
        // Base64 and quoted-printable decode from any prefix that ends on
        // a line; a few lines are enough for a first line.
        let prefix_end = body.len().min(SNIFF_BYTES * 2);
        let prefix_end = body[..prefix_end]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(prefix_end, |p| p + 1);
        let head = header.encoding.decode(&body[..prefix_end]);
        let kind = policy::file_kind(&header.media_type, header.file_name(), &head);
        let rule = match kind {
            FileKind::Identity => return Ok(None),
            FileKind::Cms => return self.cms(header, body, depth),
            FileKind::Calendar => PartRule::Calendar,
            FileKind::Card => {
                let card = self.decode(header.encoding, body)?;
                if self
                    .scrubber
                    .mentions_address(&String::from_utf8_lossy(&card))
                {
                    return Ok(None);
                }
                PartRule::Attachment
            }
            FileKind::File => PartRule::Attachment,
        };
        Ok(Some(Entity {
            header,
            rule,
            body: Body::Leaf(Cow::Borrowed(body)),
        }))
    }

    /// A whole message (header block and body) inside a part.
    fn message<'i>(
        &mut self,
        inner: &'i [u8],
        depth: usize,
    ) -> Result<(EmbeddedFields, Option<Entity<'i>>), RewriteError> {
        let header_end = body_start(inner);
        let fields = EmbeddedFields::read(&inner[..header_end])?;
        let inner_header = PartHeader::read(&inner[..header_end])?;
        let entity = self.entity(inner_header, &inner[header_end..], depth + 1)?;
        Ok((fields, entity))
    }

    /// S/MIME in one part: signed data becomes the entity it signs (its
    /// certificates name the signer); encrypted data passes unread.
    fn cms<'a>(
        &mut self,
        header: PartHeader,
        body: &'a [u8],
        depth: usize,
    ) -> Result<Option<Entity<'a>>, RewriteError> {
        let blob = self.decode(header.encoding, body)?;
        match cms::classify(&blob).map_err(|_| RewriteError::UnreadableSmime)? {
            Cms::SignedData {
                content: Some(content),
            } => {
                self.budget.charge(content.len())?;
                let header_end = body_start(&content);
                let inner_header = PartHeader::read(&content[..header_end])?;
                Ok(self
                    .entity(inner_header, &content[header_end..], depth + 1)?
                    .map(Entity::into_owned))
            }
            // A detached signature in an S/MIME blob: only the signer's identity.
            Cms::SignedData { content: None } => Ok(None),
            Cms::EnvelopedData | Cms::AuthEnvelopedData => Ok(Some(Entity {
                header,
                rule: PartRule::Attachment,
                body: Body::Leaf(Cow::Borrowed(body)),
            })),
            Cms::CompressedData | Cms::Other => Err(RewriteError::UnreadableSmime),
        }
    }

    /// Decodes, charging the budget for every copy made.
    fn decode<'a>(
        &mut self,
        encoding: Encoding,
        body: &'a [u8],
    ) -> Result<Cow<'a, [u8]>, RewriteError> {
        if encoding != Encoding::Identity {
            self.budget.charge(body.len())?;
        }
        Ok(encoding.decode(body))
    }
}
