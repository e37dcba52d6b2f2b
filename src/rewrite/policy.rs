//! Every rule of what a forwarded message may carry, in one file: the
//! header fields, the parameters of each field, and what happens to each
//! kind of MIME part. Anything not named here is dropped, never passed.
//! The rebuild ([`super::build`]) consults nothing else.

/// Top-level fields the relay writes itself, from its own data.
pub const WRITTEN: &[&str] = &[
    "Received",
    "From",
    "To",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Disposition",
    "Content-ID",
    "Content-Language",
];

/// How a top-level field of the sender's is kept: its value must pass
/// this rule, or the field is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRule {
    /// Decoded, scrubbed as text, written anew (RFC 2047 where needed).
    ScrubbedText,
    /// The value's first token must be one of these (case-insensitive);
    /// it is written in the listed spelling, anything after it dropped.
    OneOf(&'static [&'static str]),
}

/// Top-level fields of the sender's that are kept (first occurrence only).
pub const KEPT_FIELDS: &[(&str, FieldRule)] = &[
    ("Subject", FieldRule::ScrubbedText),
    (
        "Auto-Submitted",
        FieldRule::OneOf(&["no", "auto-generated", "auto-replied", "auto-notified"]),
    ),
    ("Importance", FieldRule::OneOf(&["high", "normal", "low"])),
    (
        "Priority",
        FieldRule::OneOf(&["normal", "urgent", "non-urgent"]),
    ),
];

/// Whether a forwarded message may carry a top-level field of this name.
pub fn is_forwarded_header(name: &str) -> bool {
    WRITTEN
        .iter()
        .copied()
        .chain(KEPT_FIELDS.iter().map(|(kept, _)| *kept))
        .any(|allowed| allowed.eq_ignore_ascii_case(name))
}

/// Fields of an embedded message (`message/rfc822`) that are written anew:
/// From, To and Cc as bare addresses (display names cannot be checked), the
/// Date in UTC and the Subject scrubbed; its MIME fields follow the part
/// rules below. Everything else of the embedded header goes.
pub const EMBEDDED_ADDRESS_FIELDS: &[&str] = &["From", "To", "Cc"];

/// Content-Type parameters the relay copies from the sender, by media
/// type. `boundary` and `charset` of text it re-encodes are the relay's
/// own and never copied.
pub fn kept_content_type_parameters(media_type: &str) -> &'static [&'static str] {
    match media_type {
        "text/calendar" | "application/ics" => &["method"],
        "multipart/report" => &["report-type"],
        "multipart/encrypted" => &["protocol"],
        "multipart/related" => &["type"],
        "application/pkcs7-mime" | "application/x-pkcs7-mime" => &["smime-type", "name"],
        // A text file's charset says how to show it.
        t if t.starts_with("text/") => &["name", "charset"],
        _ => &["name"],
    }
}

/// Parameters whose values are file names: scrubbed as text.
pub const FILE_NAME_PARAMETERS: &[&str] = &["name", "filename"];

/// Parameters whose values must be a single MIME token (RFC 2045).
pub const TOKEN_PARAMETERS: &[&str] = &["method", "report-type", "smime-type", "charset"];

/// `multipart/related`'s `start` names its root part by Content-ID: it is
/// written with the part's new id (see `build.rs`).
pub const CONTENT_ID_PARAMETERS: &[&str] = &["start"];

/// Parameters whose values must be a `type/subtype`.
pub const MEDIA_TYPE_PARAMETERS: &[&str] = &["protocol", "type"];

/// Content-Disposition: its type (`inline` or `attachment`) and `filename`.
/// Dates (`creation-date="… +0200"` gives the sender's time zone), `size`
/// and everything else are dropped.
pub const KEPT_DISPOSITION_PARAMETERS: &[&str] = &["filename"];

/// Part fields the relay writes: Content-Type (the media type and the
/// parameters above), Content-Disposition, Content-ID (a new id on the
/// alias domain), Content-Language (language tags only) and its own
/// Content-Transfer-Encoding. Content-Description, Content-Location,
/// Content-MD5, X-* and the rest are dropped.
pub const PART_FIELDS: &[&str] = &[
    "Content-Type",
    "Content-Disposition",
    "Content-ID",
    "Content-Language",
    "Content-Transfer-Encoding",
];

/// What the rebuild does with a part, by media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartRule {
    /// Shown text: decoded, scrubbed as plain text, re-encoded as UTF-8.
    PlainText,
    /// Shown HTML: through the HTML scrubber (remote content, markup).
    Html,
    /// iCalendar data, inline or attached: through the calendar scrubber.
    Calendar,
    /// A file the sender attached: its decoded content is forwarded as it
    /// is, its name scrubbed.
    Attachment,
    /// A forwarded message: sanitized like the top level.
    EmbeddedMessage,
    /// The header block of a message (in reports): sanitized like an
    /// embedded message's header, without a body.
    EmbeddedHeaders,
    /// A multipart the relay rebuilds with this subtype.
    Multipart(&'static str),
    /// `multipart/signed`: replaced by its signed content; the signature
    /// (an S/MIME certificate or an OpenPGP key id) names the signer.
    UnwrapSigned,
    /// `multipart/encrypted`: its parts pass unchanged (the sender chose
    /// the recipient's key; the relay cannot read them).
    Encrypted,
    /// `application/pkcs7-mime`: signed data is unwrapped to its content,
    /// encrypted data passes as an attachment.
    Cms,
    /// Removed: identity material or reports about the sender's systems.
    Drop,
}

/// Multipart subtypes kept as they are; any other becomes `mixed`
/// (RFC 2046 5.1.3 tells readers to treat unknown subtypes so).
const MULTIPART_SUBTYPES: &[&str] = &[
    "mixed",
    "alternative",
    "related",
    "digest",
    "parallel",
    "report",
];

/// Leaf types that name or describe the sender and are dropped: their
/// keys and signatures (the parts that carry their certificate or key id),
/// Outlook's TNEF (winmail.dat holds the sender's address and name), and
/// machine reports about the sender's systems.
const DROPPED_TYPES: &[&str] = &[
    "application/pgp-keys",
    "application/pgp-signature",
    "application/pkcs7-signature",
    "application/x-pkcs7-signature",
    "application/ms-tnef",
    "application/vnd.ms-tnef",
    "message/delivery-status",
    "message/global-delivery-status",
    "message/disposition-notification",
    "message/global-disposition-notification",
    "message/feedback-report",
    "message/partial",
    "message/external-body",
];

/// Top-level media types an attachment may have; others are sent as
/// `application/octet-stream`.
const ATTACHMENT_TOP_TYPES: &[&str] = &[
    "application",
    "image",
    "audio",
    "video",
    "font",
    "model",
    "text",
];

/// The rule for a part of `media_type` (lowercase `type/subtype`; empty
/// means RFC 2045's default, `text/plain`).
pub fn part_rule(media_type: &str, attachment: bool) -> PartRule {
    let media_type = if media_type.is_empty() {
        "text/plain"
    } else {
        media_type
    };
    if DROPPED_TYPES.contains(&media_type) {
        return PartRule::Drop;
    }
    let (top, sub) = media_type.split_once('/').unwrap_or((media_type, ""));
    match (top, sub) {
        ("text" | "application", "calendar" | "ics") => PartRule::Calendar,
        ("multipart", "signed") => PartRule::UnwrapSigned,
        ("multipart", "encrypted") => PartRule::Encrypted,
        ("multipart", sub) => PartRule::Multipart(
            MULTIPART_SUBTYPES
                .iter()
                .find(|known| **known == sub)
                .copied()
                .unwrap_or("mixed"),
        ),
        ("message", "rfc822" | "global" | "news") => PartRule::EmbeddedMessage,
        ("message", "rfc822-headers" | "global-headers") | ("text", "rfc822-headers") => {
            PartRule::EmbeddedHeaders
        }
        ("message", _) => PartRule::Drop,
        ("application", "pkcs7-mime" | "x-pkcs7-mime") => PartRule::Cms,
        ("text", "html") if !attachment => PartRule::Html,
        ("text", _) if !attachment => PartRule::PlainText,
        _ => PartRule::Attachment,
    }
}

/// What a file really is, by its name and first bytes: senders' clients
/// label calendars `application/octet-stream`, S/MIME blobs `smime.p7m`,
/// keys `.asc`. The media type alone would let identity material pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// iCalendar data: through the calendar scrubber.
    Calendar,
    /// An S/MIME blob: read like `application/pkcs7-mime`.
    Cms,
    /// A contact card: dropped when it is the sender's own.
    Card,
    /// A signature, a certificate, a key or TNEF: dropped.
    Identity,
    /// Anything else: forwarded as the sender attached it.
    File,
}

/// Extensions and first lines that say what a file is.
pub fn file_kind(media_type: &str, file_name: Option<&str>, head: &[u8]) -> FileKind {
    let name = file_name.unwrap_or_default().trim().to_ascii_lowercase();
    let extension = name.rsplit_once('.').map_or("", |(_, ext)| ext);
    let head = String::from_utf8_lossy(&head[..head.len().min(64)])
        .trim_start()
        .to_ascii_uppercase();
    let starts = |marker: &str| head.starts_with(marker);
    if matches!(extension, "ics" | "vcs" | "ifb") || starts("BEGIN:VCALENDAR") {
        FileKind::Calendar
    } else if extension == "p7m" {
        FileKind::Cms
    } else if matches!(extension, "p7s" | "p7c" | "p7b" | "cer" | "crt")
        || name == "winmail.dat"
        || starts("-----BEGIN PGP PUBLIC KEY")
        || starts("-----BEGIN PGP SIGNATURE")
        || starts("-----BEGIN CERTIFICATE")
    {
        FileKind::Identity
    } else if extension == "vcf"
        || matches!(media_type, "text/vcard" | "text/x-vcard" | "text/directory")
        || starts("BEGIN:VCARD")
    {
        FileKind::Card
    } else {
        FileKind::File
    }
}

/// The media type an attachment is sent as: its own when it is a
/// well-formed `type/subtype` of a known top-level type, else
/// `application/octet-stream`.
pub fn attachment_media_type(media_type: &str) -> &str {
    let well_formed = media_type.split_once('/').is_some_and(|(top, sub)| {
        ATTACHMENT_TOP_TYPES.contains(&top) && is_token(sub) && sub.len() <= 64
    });
    if well_formed {
        media_type
    } else {
        "application/octet-stream"
    }
}

/// RFC 2045 `token`: printable ASCII without specials or space.
pub fn is_token(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
}

/// A Content-Language value: a list of language tags (RFC 5646's
/// characters, at most 8 tags), else None.
pub fn language_tags(value: &str) -> Option<String> {
    let tags: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    let valid = !tags.is_empty()
        && tags.len() <= 8
        && tags.iter().all(|tag| {
            tag.len() <= 35 && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    valid.then(|| tags.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_rules() {
        assert_eq!(part_rule("", false), PartRule::PlainText);
        assert_eq!(part_rule("text/plain", true), PartRule::Attachment);
        assert_eq!(part_rule("text/html", false), PartRule::Html);
        assert_eq!(part_rule("text/enriched", false), PartRule::PlainText);
        assert_eq!(part_rule("application/ics", true), PartRule::Calendar);
        assert_eq!(
            part_rule("multipart/x-weird", false),
            PartRule::Multipart("mixed")
        );
        assert_eq!(part_rule("multipart/signed", false), PartRule::UnwrapSigned);
        assert_eq!(part_rule("application/pgp-keys", true), PartRule::Drop);
        assert_eq!(part_rule("message/delivery-status", false), PartRule::Drop);
        assert_eq!(part_rule("message/x-unknown", false), PartRule::Drop);
        assert_eq!(
            part_rule("message/global", false),
            PartRule::EmbeddedMessage
        );
        assert_eq!(part_rule("image/png", false), PartRule::Attachment);
    }

    #[test]
    fn files_are_known_by_name_and_first_bytes() {
        let kind =
            |media: &str, name: Option<&str>, head: &str| file_kind(media, name, head.as_bytes());
        assert_eq!(
            kind("application/octet-stream", Some("invite.ICS"), ""),
            FileKind::Calendar
        );
        assert_eq!(
            kind("application/octet-stream", None, "\r\nBEGIN:VCALENDAR\r\n"),
            FileKind::Calendar
        );
        assert_eq!(
            kind("application/octet-stream", Some("smime.p7m"), ""),
            FileKind::Cms
        );
        assert_eq!(
            kind("application/octet-stream", Some("winmail.dat"), ""),
            FileKind::Identity
        );
        assert_eq!(
            kind(
                "text/plain",
                Some("key.asc"),
                "-----BEGIN PGP PUBLIC KEY BLOCK-----"
            ),
            FileKind::Identity
        );
        assert_eq!(
            kind("text/x-vcard", Some("bob.vcf"), "BEGIN:VCARD"),
            FileKind::Card
        );
        assert_eq!(
            kind("application/pdf", Some("plan.pdf"), "%PDF-1.7"),
            FileKind::File
        );
    }

    #[test]
    fn attachment_types_and_tokens() {
        assert_eq!(attachment_media_type("application/pdf"), "application/pdf");
        assert_eq!(
            attachment_media_type("x-bob/thing"),
            "application/octet-stream"
        );
        assert_eq!(
            attachment_media_type("image/a@b"),
            "application/octet-stream"
        );
        assert!(is_token("REQUEST"));
        assert!(!is_token("a b"));
        assert_eq!(language_tags(" en-GB, de ").as_deref(), Some("en-GB, de"));
        assert_eq!(language_tags("en; q=1"), None);
    }

    #[test]
    fn the_top_level_allowlist() {
        for name in ["subject", "From", "content-type", "Importance"] {
            assert!(is_forwarded_header(name), "{name}");
        }
        for name in [
            "Received-SPF",
            "X-Mailer",
            "Reply-To",
            "Cc",
            "Content-Description",
        ] {
            assert!(!is_forwarded_header(name), "{name}");
        }
    }
}
