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
//!
//! The parts: [`header`] reads header blocks (a part's MIME fields, a
//! forwarded message's From, To, Cc, Date and Subject), [`reader`] walks
//! the entities and takes the policy's decisions.

mod header;
mod reader;

use std::borrow::Cow;

use super::policy::PartRule;
use super::RewriteError;

pub use header::{EmbeddedFields, PartHeader};
pub use reader::Reader;

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
