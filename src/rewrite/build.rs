//! The forwarded message written anew from the tree: fresh boundaries,
//! every part header written from the policy's allowlists, every text run
//! through its format's scrubber and re-encoded as UTF-8 in a transfer
//! encoding the relay chooses, attachments' decoded content re-encoded as
//! base64. Nothing of the sender's header bytes, boundaries, preambles or
//! epilogues is copied.

use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::text::Text;
use mail_builder::headers::Header as _;
use sha2::{Digest, Sha256};

use super::charset;
use super::policy::{self, PartRule};
use super::scrub::html::{self, HtmlContext, RemoteContent};
use super::scrub::ical::{self, CalendarContext};
use super::scrub::{armor, flowed, Scrubber};
use super::transfer::{crlf_lines, encode_binary, encode_text, Encoding};
use super::tree::{Body, Budget, EmbeddedFields, Entity, PartHeader};
use super::RewriteError;

/// Longest file name written (a longer one is cut).
const MAX_FILE_NAME_CHARS: usize = 255;

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

    fn multipart(
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

    fn leaf(
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

    /// A text part's content, decoded and through its scrubber.
    fn text(&mut self, entity: &Entity<'_>, decoded: &[u8]) -> Result<String, RewriteError> {
        let header = &entity.header;
        let label = header.param("charset").map(str::to_owned).or_else(|| {
            (entity.rule == PartRule::Html)
                .then(|| charset::sniff_html(decoded))
                .flatten()
        });
        let text = charset::decode(decoded, label.as_deref());
        self.budget.charge(text.len())?;
        let scrubber = self.cx.scrubber;
        let scrubbed = match entity.rule {
            PartRule::Html => {
                let content_id = |id: &str| Some(self.cx.content_id(id));
                html::scrub(
                    &text,
                    &HtmlContext {
                        scrubber,
                        remote_content: self.cx.remote_content,
                        content_id: &content_id,
                    },
                )
                .map_err(|_| RewriteError::TooComplex)?
            }
            // Unfolded before it is decoded: a fold may split a character.
            PartRule::Calendar if label.is_none() || is_utf8(label.as_deref()) => {
                ical::scrub_bytes(
                    decoded,
                    &CalendarContext {
                        scrubber,
                        uid: self.cx.calendar_uid,
                    },
                )
                .map_err(|_| RewriteError::TooComplex)?
            }
            PartRule::Calendar => ical::scrub(
                &text,
                &CalendarContext {
                    scrubber,
                    uid: self.cx.calendar_uid,
                },
            )
            .map_err(|_| RewriteError::TooComplex)?,
            _ => {
                let flowed = header
                    .param("format")
                    .is_some_and(|f| f.eq_ignore_ascii_case("flowed"));
                let unflowed = flowed.then(|| {
                    let delsp = header
                        .param("delsp")
                        .is_some_and(|d| d.eq_ignore_ascii_case("yes"));
                    flowed::unflow(&text, delsp)
                });
                let text = unflowed.as_deref().unwrap_or(&text);
                let unarmored = armor::strip(text);
                let text = unarmored.as_deref().unwrap_or(text);
                scrubber.text(text).into_owned()
            }
        };
        self.budget.charge(scrubbed.len())?;
        Ok(scrubbed)
    }

    /// Content-Type, Content-Transfer-Encoding, Content-Disposition,
    /// Content-ID and Content-Language, then the empty line.
    fn fields(
        &self,
        header: &PartHeader,
        content_type: ContentType<'_>,
        encoding: &str,
        out: &mut Vec<u8>,
    ) {
        write_field(out, "Content-Type", &content_type);
        out.extend_from_slice(format!("Content-Transfer-Encoding: {encoding}\r\n").as_bytes());
        if let Some((attachment, _)) = &header.disposition {
            let mut disposition =
                ContentType::new(if *attachment { "attachment" } else { "inline" });
            if let Some(name) = self.file_name(header) {
                disposition = disposition.attribute("filename", name);
            }
            write_field(out, "Content-Disposition", &disposition);
        }
        if let Some(id) = &header.content_id {
            out.extend_from_slice(
                format!("Content-ID: <{}>\r\n", self.cx.content_id(id)).as_bytes(),
            );
        }
        if let Some(language) = &header.language {
            out.extend_from_slice(format!("Content-Language: {language}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }

    /// The file name a reader sees, scrubbed; None when there is none.
    fn file_name(&self, header: &PartHeader) -> Option<String> {
        let name = charset::decode_words_fully(header.file_name()?);
        let scrubbed = self.cx.scrubber.text(&name);
        let clean: String = scrubbed
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(MAX_FILE_NAME_CHARS)
            .collect();
        let clean = clean.trim();
        (!clean.is_empty()).then(|| clean.to_owned())
    }

    /// From, To, Cc, Date and Subject of a forwarded message, written anew.
    fn embedded_fields(&self, fields: &EmbeddedFields, mime_version: bool, out: &mut Vec<u8>) {
        let scrubber = self.cx.scrubber;
        for (name, list) in [
            ("From", &fields.from),
            ("To", &fields.to),
            ("Cc", &fields.cc),
        ] {
            // Written as 7-bit header text: an internationalized domain in
            // its A-label form; an address whose local part is not ASCII
            // cannot be written so and is left out.
            let written: Vec<String> = list
                .iter()
                .filter(|a| writable_address(a))
                .filter_map(|a| {
                    if scrubber.is_sender(a) {
                        return Some(format!("<{}>", scrubber.identity().alias_address));
                    }
                    let ascii = crate::core::address::envelope_form(a);
                    let ascii = scrubber.identifiers(&ascii);
                    ascii.is_ascii().then(|| format!("<{ascii}>"))
                })
                .collect();
            if !written.is_empty() {
                out.extend_from_slice(format!("{name}: {}\r\n", written.join(",\r\n ")).as_bytes());
            }
        }
        if let Some(date) = fields.date {
            out.extend_from_slice(format!("Date: {}\r\n", Date::new(date).to_rfc822()).as_bytes());
        }
        if let Some(subject) = &fields.subject {
            write_subject(out, &scrubber.text(&charset::decode_words_fully(subject)));
        }
        if mime_version {
            out.extend_from_slice(b"MIME-Version: 1.0\r\n");
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

fn is_utf8(label: Option<&str>) -> bool {
    label.is_some_and(|l| {
        let l = l.trim().to_ascii_lowercase();
        l == "utf-8" || l == "utf8" || l == "us-ascii"
    })
}

/// Whether an address can be written between angle brackets as it is.
fn writable_address(address: &str) -> bool {
    address.contains('@')
        && address.len() <= 254
        && address
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && !"<>()[],;:\\\"".contains(c))
}

fn write_field(out: &mut Vec<u8>, name: &str, value: &ContentType<'_>) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    value.write_header(out, name.len() + 2);
}

/// A Subject written anew from decoded text (RFC 2047 where needed); no
/// CR or LF of the input can break out of it.
pub fn write_subject(out: &mut Vec<u8>, subject: &str) {
    let clean: String = subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    out.extend_from_slice(b"Subject: ");
    Text::new(clean).write_header(out, "Subject: ".len());
}
