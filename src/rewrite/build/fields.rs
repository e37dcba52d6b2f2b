//! Header fields written anew: a part's Content-Type,
//! Content-Transfer-Encoding, Content-Disposition, Content-ID and
//! Content-Language; the file name a reader sees, scrubbed; a forwarded
//! message's From, To, Cc, Date and Subject.

use mail_builder::headers::content_type::ContentType;
use mail_builder::headers::date::Date;
use mail_builder::headers::text::Text;
use mail_builder::headers::Header as _;

use super::Writer;
use crate::rewrite::charset;
use crate::rewrite::tree::{EmbeddedFields, PartHeader};

/// Longest file name written (a longer one is cut).
const MAX_FILE_NAME_CHARS: usize = 255;

impl Writer<'_, '_> {
    /// Content-Type, Content-Transfer-Encoding, Content-Disposition,
    /// Content-ID and Content-Language, then the empty line.
    pub(super) fn fields(
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
    pub(super) fn file_name(&self, header: &PartHeader) -> Option<String> {
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
    pub(super) fn embedded_fields(
        &self,
        fields: &EmbeddedFields,
        mime_version: bool,
        out: &mut Vec<u8>,
    ) {
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
}

/// Whether an address can be written between angle brackets as it is.
fn writable_address(address: &str) -> bool {
    address.contains('@')
        && address.len() <= 254
        && address
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && !"<>()[],;:\\\"".contains(c))
}

pub(super) fn write_field(out: &mut Vec<u8>, name: &str, value: &ContentType<'_>) {
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
