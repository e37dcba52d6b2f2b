//! The forwarded message written anew from the tree: fresh boundaries,
//! every part header written from the policy's allowlists, every text run
//! through its format's scrubber and re-encoded as UTF-8 in a transfer
//! encoding the relay chooses, attachments' decoded content re-encoded as
//! base64. Nothing of the sender's header bytes, boundaries, preambles or
//! epilogues is copied.
//!
//! The parts: [`parts`] writes multiparts and leaves, [`text`] puts a text
//! part through its format's scrubber, [`fields`] writes header fields (a
//! part's MIME fields, a forwarded message's From, To, Cc, Date and
//! Subject).

mod fields;
mod parts;
mod text;

use mail_builder::headers::content_type::ContentType;
use sha2::{Digest, Sha256};

use super::scrub::html::RemoteContent;
use super::scrub::Scrubber;
use super::transfer::{encode_text, Encoding};
use super::tree::{Body, Budget, Entity};
use super::RewriteError;

pub use fields::write_subject;

/// What the rebuild needs besides the tree.
pub struct Rebuild<'c> {
    pub scrubber: &'c Scrubber,
    pub remote_content: RemoteContent,
    pub alias_domain: &'c str,
    /// Random per message: new Content-IDs and boundaries derive from it,
    /// so nothing links two forwarded messages.
    pub salt: &'c str,
    /// The UID the other side sees for an iCalendar UID.
    pub calendar_uid: &'c dyn Fn(&str) -> Option<String>,
}

impl Rebuild<'_> {
    /// The new Content-ID for one of the sender's: a pure function of the
    /// id, so a `cid:` reference met before its part maps alike.
    pub fn content_id(&self, id: &str) -> String {
        // An id the relay made already (a message forwarded twice) stays:
        // it says nothing but 24 letters on our own domain.
        if let Some((token, domain)) = id.trim().rsplit_once('@') {
            let ours = domain.eq_ignore_ascii_case(self.alias_domain)
                && token.len() == 24
                && token
                    .bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7'));
            if ours {
                return id.trim().to_ascii_lowercase();
            }
        }
        let digest = Sha256::new()
            .chain_update(self.salt.as_bytes())
            .chain_update([0])
            .chain_update(id.trim().as_bytes())
            .finalize();
        let token = crate::core::tokens::base32().encode(&digest[..15]);
        format!("{token}@{}", self.alias_domain)
    }
}

pub struct Writer<'c, 'b> {
    cx: &'c Rebuild<'c>,
    budget: &'b mut Budget,
    boundaries: usize,
}

impl<'c, 'b> Writer<'c, 'b> {
    pub fn new(cx: &'c Rebuild<'c>, budget: &'b mut Budget) -> Self {
        Self {
            cx,
            budget,
            boundaries: 0,
        }
    }

    /// The entity's MIME fields, the empty line that ends them, its body.
    pub fn entity(&mut self, entity: &Entity<'_>, out: &mut Vec<u8>) -> Result<(), RewriteError> {
        match &entity.body {
            Body::Parts(parts) => self.multipart(entity, parts, out),
            Body::Message(fields, inner) => {
                let mut content_type = ContentType::new("message/rfc822");
                if let Some(name) = self.file_name(&entity.header) {
                    content_type = content_type.attribute("name", name);
                }
                self.fields(&entity.header, content_type, "7bit", out);
                self.embedded_fields(fields, true, out);
                self.entity(inner, out)
            }
            Body::Headers(fields) => {
                let content_type =
                    ContentType::new("text/rfc822-headers").attribute("charset", "utf-8");
                let mut block = Vec::new();
                self.embedded_fields(fields, false, &mut block);
                let (encoding, encoded) = encode_text(&block);
                self.fields(&entity.header, content_type, encoding, out);
                out.extend_from_slice(&encoded);
                Ok(())
            }
            Body::Leaf(bytes) => self.leaf(entity, bytes, out),
        }
    }

    fn boundary(&mut self) -> String {
        self.boundaries += 1;
        let digest = Sha256::new()
            .chain_update(self.cx.salt.as_bytes())
            .chain_update(b"boundary")
            .chain_update(self.boundaries.to_be_bytes())
            .finalize();
        format!("=_{}", crate::core::tokens::base32().encode(&digest[..15]))
    }

    fn decode<'x>(
        &mut self,
        encoding: Encoding,
        bytes: &'x [u8],
    ) -> Result<std::borrow::Cow<'x, [u8]>, RewriteError> {
        if encoding != Encoding::Identity {
            self.budget.charge(bytes.len())?;
        }
        Ok(encoding.decode(bytes))
    }
}
