//! Parts written: a multipart with a fresh boundary and its parts, a leaf
//! decoded and re-encoded (text after its scrubber, anything else as
//! base64), and the parts of `multipart/encrypted` as sent, armor comment
//! lines removed. Content-Type carries only the parameters the policy
//! keeps.

use mail_builder::headers::content_type::ContentType;

use super::fields::write_field;
use super::Writer;
use crate::rewrite::policy::{self, PartRule};
use crate::rewrite::scrub::armor;
use crate::rewrite::transfer::{crlf_lines, encode_binary, encode_text};
use crate::rewrite::tree::{Body, Entity, PartHeader};
use crate::rewrite::RewriteError;

impl Writer<'_, '_> {
    pub(super) fn multipart(
        &mut self,
        entity: &Entity<'_>,
        parts: &[Entity<'_>],
        out: &mut Vec<u8>,
    ) -> Result<(), RewriteError> {
        let subtype = match entity.rule {
            PartRule::Multipart(subtype) => subtype,
            PartRule::Encrypted => "encrypted",
            _ => "mixed",
        };
        let media_type = format!("multipart/{subtype}");
        let boundary = self.boundary();
        let mut content_type = ContentType::new(media_type.clone());
        for (name, value) in kept_parameters(&media_type, &entity.header) {
            content_type = content_type.attribute(name, value);
        }
        // RFC 2387's root part, named by its (renamed) Content-ID.
        if media_type == "multipart/related" {
            let start = policy::CONTENT_ID_PARAMETERS
                .iter()
                .find_map(|name| entity.header.param(name))
                .map(|id| {
                    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
                    format!("<{}>", self.cx.content_id(id))
                });
            if let Some(start) = start {
                content_type = content_type.attribute("start", start);
            }
        }
        content_type = content_type.attribute("boundary", boundary.clone());
        write_field(out, "Content-Type", &content_type);
        out.extend_from_slice(b"\r\n");
        let in_encrypted = entity.rule == PartRule::Encrypted;
        for part in parts {
            out.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match (&part.body, in_encrypted) {
                // The sender chose the recipient's key: the parts pass as
                // they are, but the armor's comment lines name their software.
                (Body::Leaf(bytes), true) if is_encrypted_payload(&part.header) => {
                    self.encrypted_leaf(part, bytes, out)?
                }
                _ => self.entity(part, out)?,
            }
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        Ok(())
    }

    pub(super) fn leaf(
        &mut self,
        entity: &Entity<'_>,
        bytes: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), RewriteError> {
        let header = &entity.header;
        let decoded = self.decode(header.encoding, bytes)?;
        match entity.rule {
            PartRule::PlainText | PartRule::Html | PartRule::Calendar => {
                let text = self.text(entity, &decoded)?;
                drop(decoded);
                let text = crlf_lines(&text);
                let (encoding, encoded) = encode_text(text.as_bytes());
                let media_type = match entity.rule {
                    PartRule::Html => "text/html",
                    PartRule::Calendar if header.media_type == "application/ics" => {
                        "application/ics"
                    }
                    PartRule::Calendar => "text/calendar",
                    _ if header.media_type.starts_with("text/")
                        && policy::is_token(&header.media_type[5..]) =>
                    {
                        header.media_type.as_str()
                    }
                    _ => "text/plain",
                };
                // The relay re-encoded the text: the charset is its own.
                let content_type = self.content_type(media_type, header, Some("utf-8"));
                self.fields(header, content_type, encoding, out);
                out.extend_from_slice(&encoded);
            }
            _ => {
                let media_type = policy::attachment_media_type(&header.media_type);
                let content_type = self.content_type(media_type, header, None);
                let (encoding, encoded) = encode_binary(&decoded);
                self.fields(header, content_type, encoding, out);
                out.extend_from_slice(&encoded);
            }
        }
        Ok(())
    }

    /// A leaf's Content-Type: the media type, the relay's `charset` when it
    /// re-encoded text (else the sender's, checked), the parameters the
    /// policy keeps for the type, and the scrubbed file name.
    fn content_type<'h>(
        &self,
        media_type: &'h str,
        header: &'h PartHeader,
        charset: Option<&'static str>,
    ) -> ContentType<'h> {
        let mut content_type = ContentType::new(media_type);
        if let Some(charset) = charset {
            content_type = content_type.attribute("charset", charset);
        }
        for (name, value) in kept_parameters(media_type, header) {
            if charset.is_none() || name != "charset" {
                content_type = content_type.attribute(name, value);
            }
        }
        if let Some(name) = self.file_name(header) {
            content_type = content_type.attribute("name", name);
        }
        content_type
    }

    /// A part of `multipart/encrypted`: its content as sent, except the
    /// armor header lines of an ASCII-armored OpenPGP message.
    fn encrypted_leaf(
        &mut self,
        entity: &Entity<'_>,
        bytes: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), RewriteError> {
        let header = &entity.header;
        let decoded = self.decode(header.encoding, bytes)?;
        let media_type = policy::attachment_media_type(&header.media_type);
        let content_type = self.content_type(media_type, header, None);
        let is_text = matches!(
            media_type,
            "application/pgp-encrypted" | "application/octet-stream"
        ) && decoded.is_ascii();
        let (encoding, encoded) = if is_text {
            // RFC 3156's control part and the armored data are text: line
            // ends made CRLF first, so the armor lines are seen as a
            // reader sees them.
            let text = crlf_lines(&String::from_utf8_lossy(&decoded)).into_owned();
            let text = armor::strip(&text).unwrap_or(text);
            encode_text(text.as_bytes())
        } else {
            encode_binary(&decoded)
        };
        self.fields(header, content_type, encoding, out);
        out.extend_from_slice(&encoded);
        Ok(())
    }
}

/// The Content-Type parameters of the sender's that the policy keeps for
/// this media type, each checked for its form (file names are written
/// separately, scrubbed).
fn kept_parameters<'h>(media_type: &str, header: &'h PartHeader) -> Vec<(&'static str, &'h str)> {
    policy::kept_content_type_parameters(media_type)
        .iter()
        .filter(|name| !policy::FILE_NAME_PARAMETERS.contains(name))
        .filter_map(|name| {
            let value = header.param(name)?.trim();
            let well_formed = if policy::MEDIA_TYPE_PARAMETERS.contains(name) {
                value
                    .split_once('/')
                    .is_some_and(|(t, s)| policy::is_token(t) && policy::is_token(s))
            } else {
                policy::TOKEN_PARAMETERS.contains(name) && policy::is_token(value)
            };
            (well_formed && value.len() <= 64).then_some((*name, value))
        })
        .collect()
}

/// RFC 3156's control part and its encrypted data, RFC 8551's blob: the
/// parts of `multipart/encrypted` the relay cannot read. Any other part a
/// sender puts beside them is read and scrubbed like every part.
fn is_encrypted_payload(header: &PartHeader) -> bool {
    // The type as it will be written: a malformed one is octet-stream.
    matches!(
        policy::attachment_media_type(&header.media_type),
        "application/pgp-encrypted"
            | "application/octet-stream"
            | "application/pkcs7-mime"
            | "application/x-pkcs7-mime"
    )
}
