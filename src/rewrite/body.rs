//! The body guard: replaces the sender's real address with the sender's
//! alias in every text a mail client shows, without corrupting the message.
//!
//! - Walks the MIME tree on offsets of the raw bytes; inline `text/*` parts
//!   are decoded (QP, base64) and searched charset-aware (see [`matcher`]).
//! - Attachments (Content-Disposition: attachment, or any non-text leaf)
//!   are never touched. A `message/rfc822` part is a forwarded message, not
//!   an attachment: its header block is sanitized ([`embedded`]) and its
//!   body guarded like the top level.
//! - A part that changes is re-encoded in its own transfer encoding (a
//!   7bit/8bit part whose lines would grow over 998 octets becomes QP) and
//!   keeps its header block except Content-Transfer-Encoding when that must
//!   change. Every other byte, boundaries included, is copied as it was: a
//!   body that mentions nothing comes out byte-identical.
//! - Bounded: at most [`MAX_DEPTH`] nested entities, [`MAX_ENTITIES`] in
//!   all, and decoded copies totalling at most [`DECODE_FACTOR`] times the
//!   body (nested encoded messages would otherwise multiply memory). A
//!   message beyond that is refused ([`RewriteError::TooComplex`]), never
//!   forwarded unguarded: no mail client produces such a tree.
//! - Text in a charset the guard cannot read (UTF-16/32, UTF-7) is
//!   forwarded as it is: the guard stops clients' accidental disclosure;
//!   a sender set on revealing their own address can always spell it out.
//!
//! [`matcher`]: super::matcher
//! [`embedded`]: super::embedded

use std::borrow::Cow;
use std::ops::Range;

use super::content_id::ContentIdRename;
use super::embedded;
use super::field_guard::guard_header_block;
use super::matcher::{AddressMatcher, Charset};
use super::mime::{body_start, loose_fields, split_multipart, EntityInfo};
use super::transfer::{base64_encode, fits_identity, qp_encode, Encoding};
use super::RewriteError;

/// Deepest nesting of multiparts and embedded messages the guard walks.
pub const MAX_DEPTH: usize = 20;
/// Most MIME entities (parts at any level) in one message.
pub const MAX_ENTITIES: usize = 500;
/// Bytes decoded from QP or base64 in one walk, as a multiple of the body
/// size (plus a small allowance): each part is decoded once, an encoded
/// forwarded message twice at most.
pub const DECODE_FACTOR: usize = 3;

/// Who must not appear, and what replaces them.
pub struct Identity<'a> {
    /// The sender's real address.
    pub real: &'a str,
    /// The sender's alias address, `alias@alias-domain`.
    pub alias: &'a str,
}

/// A guarded entity body that differs from the input.
#[derive(Debug, PartialEq, Eq)]
pub struct Changed {
    pub body: Vec<u8>,
    /// The entity's Content-Transfer-Encoding must be rewritten to this.
    pub transfer_encoding: Option<&'static str>,
}

/// Guards the body of an entity with this header block (the top level:
/// the message's own header block). `Ok(None)`: nothing to change.
pub fn guard(
    header_block: &[u8],
    body: &[u8],
    identity: &Identity<'_>,
) -> Result<Option<Changed>, RewriteError> {
    let info = EntityInfo::parse(header_block);
    Walker {
        identity,
        entities: 0,
        decode_budget: body.len().saturating_mul(DECODE_FACTOR) + 65_536,
    }
    .entity(&info, body, 0)
}

struct Walker<'a> {
    identity: &'a Identity<'a>,
    entities: usize,
    decode_budget: usize,
}

impl Walker<'_> {
    fn entity(
        &mut self,
        info: &EntityInfo,
        body: &[u8],
        depth: usize,
    ) -> Result<Option<Changed>, RewriteError> {
        self.entities += 1;
        if depth > MAX_DEPTH || self.entities > MAX_ENTITIES {
            return Err(RewriteError::TooComplex);
        }
        if info.is_multipart() {
            let split = info
                .boundary
                .as_deref()
                .and_then(|boundary| split_multipart(body, boundary));
            return match split {
                Some(split) => self.multipart(info, body, split, depth),
                // Without parts a client shows the body as text.
                None => self.text(&EntityInfo::default(), body),
            };
        }
        if info.is_message() {
            return self.embedded_message(info, body, depth);
        }
        if info.is_shown_text() {
            return self.text(info, body);
        }
        Ok(None)
    }

    fn multipart(
        &mut self,
        info: &EntityInfo,
        body: &[u8],
        split: super::mime::Multipart,
        depth: usize,
    ) -> Result<Option<Changed>, RewriteError> {
        let mut edits: Vec<(Range<usize>, Vec<u8>)> = Vec::new();
        // Clients hide preamble and epilogue, but some show them as text.
        for range in [split.preamble.clone(), split.epilogue.clone()] {
            if let Some(changed) = self.text(&EntityInfo::default(), &body[range.clone()])? {
                edits.push((range, changed.body));
            }
        }
        for range in split.parts {
            let part = &body[range.clone()];
            let header_end = body_start(part);
            // A part cut inside its header block has no body to show.
            if header_end == part.len() && !part.ends_with(b"\r\n\r\n") {
                continue;
            }
            let mut part_info = EntityInfo::parse(&part[..header_end]);
            // RFC 2046: a digest's parts are messages unless they say otherwise.
            if part_info.content_type.is_empty() && info.content_type == "multipart/digest" {
                part_info.content_type = "message/rfc822".to_owned();
            }
            let changed = self.entity(&part_info, &part[header_end..], depth + 1)?;
            let guarded_header = guard_header_block(&part[..header_end], self.identity);
            if changed.is_none() && guarded_header.is_none() {
                continue;
            }
            let header = guarded_header.as_deref().unwrap_or(&part[..header_end]);
            let mut new_part = match changed.as_ref().and_then(|c| c.transfer_encoding) {
                Some(encoding) => with_transfer_encoding(header, encoding),
                None => header.to_vec(),
            };
            match &changed {
                Some(changed) => new_part.extend_from_slice(&changed.body),
                None => new_part.extend_from_slice(&part[header_end..]),
            }
            edits.push((range, new_part));
        }
        if edits.is_empty() {
            return Ok(None);
        }
        edits.sort_by_key(|(range, _)| range.start);
        let mut out = Vec::with_capacity(body.len() + 256);
        let mut copied = 0;
        for (range, replacement) in edits {
            out.extend_from_slice(&body[copied..range.start]);
            out.extend_from_slice(&replacement);
            copied = range.end;
        }
        out.extend_from_slice(&body[copied..]);
        Ok(Some(Changed {
            body: out,
            transfer_encoding: None,
        }))
    }

    fn embedded_message(
        &mut self,
        info: &EntityInfo,
        body: &[u8],
        depth: usize,
    ) -> Result<Option<Changed>, RewriteError> {
        // message/rfc822 should be 7bit/8bit, but some clients encode it.
        let encoding = Encoding::from_header(info.transfer_encoding.as_deref());
        let inner = self.decode(encoding, body)?;
        if inner.is_empty() {
            return Ok(None);
        }
        let header_end = body_start(&inner);
        let (real, alias) = (self.identity.real, self.identity.alias);
        let sanitized = embedded::sanitize(&inner[..header_end], real, alias, None);
        // Read the body through the header the recipient will get.
        let inner_info = EntityInfo::parse(&sanitized);
        let inner_body = &inner[header_end..];
        let changed_body = self.entity(&inner_info, inner_body, depth + 1)?;
        let mut new_inner = match changed_body.as_ref().and_then(|c| c.transfer_encoding) {
            Some(encoding) => embedded::sanitize(&inner[..header_end], real, alias, Some(encoding)),
            None => sanitized,
        };
        match &changed_body {
            Some(changed) => new_inner.extend_from_slice(&changed.body),
            None => new_inner.extend_from_slice(inner_body),
        }
        if new_inner[..] == inner[..] {
            return Ok(None);
        }
        if encoding == Encoding::Identity {
            // Only changed header lines (short) and parts that re-encoded
            // themselves differ, so every line still fits.
            return Ok(Some(Changed {
                body: new_inner,
                transfer_encoding: None,
            }));
        }
        Ok(Some(encode_as(encoding, new_inner, body)))
    }

    /// A text leaf: decoded, searched, re-encoded only when something matched.
    fn text(&mut self, info: &EntityInfo, body: &[u8]) -> Result<Option<Changed>, RewriteError> {
        let encoding = Encoding::from_header(info.transfer_encoding.as_deref());
        let html = info.content_type == "text/html";
        let Some(matcher) = AddressMatcher::new(
            self.identity.real,
            self.identity.alias,
            Charset::from_label(info.charset.as_deref()),
            html,
        ) else {
            return Ok(None);
        };
        let decoded = self.decode(encoding, body)?;
        let replaced = matcher.replace_all(&decoded);
        // Inline images on the sender's domain are renamed in their part
        // headers (see `content_id`); their references follow.
        let renamed = html
            .then(|| ContentIdRename::new(self.identity))
            .flatten()
            .and_then(|rename| rename.rename_references(replaced.as_deref().unwrap_or(&decoded)));
        Ok(renamed
            .or(replaced)
            .map(|changed| encode_as(encoding, changed, body)))
    }

    /// Decodes, charging the walk's budget for every copy it makes.
    fn decode<'b>(
        &mut self,
        encoding: Encoding,
        body: &'b [u8],
    ) -> Result<Cow<'b, [u8]>, RewriteError> {
        if encoding != Encoding::Identity {
            self.decode_budget = self
                .decode_budget
                .checked_sub(body.len())
                .ok_or(RewriteError::TooComplex)?;
        }
        Ok(encoding.decode(body))
    }
}

/// `content` in the transfer encoding `encoding`, the original encoded
/// body given to keep its final line end.
fn encode_as(encoding: Encoding, content: Vec<u8>, original: &[u8]) -> Changed {
    match encoding {
        Encoding::Identity if fits_identity(&content) => Changed {
            body: content,
            transfer_encoding: None,
        },
        Encoding::Identity => Changed {
            body: qp_encode(&content),
            transfer_encoding: Some("quoted-printable"),
        },
        Encoding::QuotedPrintable => Changed {
            body: qp_encode(&content),
            transfer_encoding: None,
        },
        Encoding::Base64 => Changed {
            body: base64_encode(&content, original.ends_with(b"\r\n")),
            transfer_encoding: None,
        },
    }
}

/// A part's header block with Content-Transfer-Encoding set to `value` and
/// every other line as it was.
fn with_transfer_encoding(header_block: &[u8], value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(header_block.len() + 48);
    for field in loose_fields(header_block) {
        if !field.is("Content-Transfer-Encoding") {
            out.extend_from_slice(field.raw);
        }
    }
    // A part whose header block is its last line without CRLF.
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Transfer-Encoding: {value}\r\n\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests;
