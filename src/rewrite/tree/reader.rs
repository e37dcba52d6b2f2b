//! The entities read, depth first, counted against the limits: each part
//! gets the policy's rule, multiparts are split, forwarded messages and
//! S/MIME signed data are read like the top level, attachments are told
//! apart by name and first bytes.

use std::borrow::Cow;

use super::header::{EmbeddedFields, PartHeader};
use super::{Body, Budget, Entity, MAX_DEPTH, MAX_ENTITIES};
use crate::rewrite::cms::{self, Cms};
use crate::rewrite::mime::{body_start, split_multipart};
use crate::rewrite::policy::{self, FileKind, PartRule};
use crate::rewrite::scrub::Scrubber;
use crate::rewrite::transfer::Encoding;
use crate::rewrite::RewriteError;

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
