//! The rewrite step: raw message bytes in, forwarded message bytes out.
//!
//! Pure functions with no I/O, so every fixture can be checked without
//! sockets. [`inspect`] reads what routing needs (the From address and the
//! subject); [`rewrite`] applies the header policy of DESIGN.md: an
//! allowlist, our own From/To, tokenized threading ids and one trace header;
//! the body guard ([`body`]) replaces the sender's real address in shown
//! text and sanitizes forwarded messages; a body it does not change is
//! copied byte for byte.

pub mod body;
pub mod cms;
mod content_id;
mod embedded;
mod field_guard;
mod headers;
mod matcher;
mod mime;
pub mod scrub;
mod threading;
mod transfer;

pub use headers::{check_line_endings, Field};
pub use threading::{message_ids, IdMapper};

use mail_builder::headers::date::Date;
use mail_parser::MessageParser;

use crate::tokens::MessageIdCipher;

/// Default header block limit: Postfix's default `header_size_limit`.
pub const MAX_HEADER_BYTES: usize = 102_400;
/// Longest subject kept in the metadata log (RFC 5322 line limit).
const MAX_LOGGED_SUBJECT_CHARS: usize = 998;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("message contains a bare CR or LF")]
    BareLineEnding,
    #[error("message header block is malformed")]
    MalformedHeader,
    #[error("message header block is too large")]
    HeaderTooLarge,
    #[error("message has more than one From header")]
    SeveralFrom,
    #[error("message From header does not hold exactly one address")]
    BadFrom,
    /// Too deep, too many parts, or the guarded copy would outgrow
    /// [`max_output_len`].
    #[error("message is too complex to check and rewrite within the relay's limits")]
    TooComplex,
}

/// Headers the rewrite writes itself.
pub const WRITTEN: &[&str] = &[
    "Received",
    "From",
    "To",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
];

/// Headers copied unchanged (first occurrence only). Everything not listed
/// here, nor written by us, is dropped.
pub const KEPT: &[&str] = &[
    "Subject",
    "MIME-Version",
    "Content-Type",
    "Content-Transfer-Encoding",
    "Content-Disposition",
    "Content-Language",
    "Content-ID",
    "Auto-Submitted",
    "Importance",
    "Priority",
];

/// Whether a forwarded message may carry a header of this name.
pub fn is_forwarded_header(name: &str) -> bool {
    WRITTEN
        .iter()
        .chain(KEPT)
        .any(|allowed| allowed.eq_ignore_ascii_case(name))
}

/// What routing needs to know about a message before it is rewritten.
pub struct Inspected<'a> {
    fields: Vec<Field<'a>>,
    body_start: usize,
    raw: &'a [u8],
    /// The single header From address, lowercased, if there is one.
    pub from_address: Option<String>,
    /// Subject decoded for the metadata log (no CR/LF), empty if none.
    pub subject: String,
    /// Sender's Date as a unix time, if it parses.
    date: Option<i64>,
}

impl<'a> Inspected<'a> {
    /// Values of every header field with this name, in order (folding kept).
    pub fn values_of<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        self.fields
            .iter()
            .filter(move |f| f.is(name))
            .map(|f| f.value)
    }
}

pub fn inspect(raw: &[u8]) -> Result<Inspected<'_>, RewriteError> {
    inspect_limited(raw, MAX_HEADER_BYTES)
}

/// [`inspect`] with a header block limit other than the default.
pub fn inspect_limited(raw: &[u8], max_header_bytes: usize) -> Result<Inspected<'_>, RewriteError> {
    check_line_endings(raw)?;
    let split = headers::split(raw, max_header_bytes)?;
    let from_count = split.fields.iter().filter(|f| f.is("From")).count();
    if from_count > 1 {
        return Err(RewriteError::SeveralFrom);
    }
    let header_block = &raw[..split.body_start];
    let parsed = MessageParser::new().parse_headers(header_block);
    let from_address = match (from_count, parsed.as_ref()) {
        (0, _) => None,
        (_, Some(message)) => Some(single_address(message)?),
        (_, None) => return Err(RewriteError::BadFrom),
    };
    let subject = parsed
        .as_ref()
        .and_then(|m| m.subject())
        .map(|subject| clean_subject(subject, MAX_LOGGED_SUBJECT_CHARS))
        .unwrap_or_default();
    let date = parsed
        .as_ref()
        .and_then(|m| m.date())
        .filter(|d| d.is_valid())
        .map(|d| d.to_timestamp());
    Ok(Inspected {
        fields: split.fields,
        body_start: split.body_start,
        raw,
        from_address,
        subject,
        date,
    })
}

fn single_address(message: &mail_parser::Message<'_>) -> Result<String, RewriteError> {
    let list = message
        .from()
        .and_then(|a| a.as_list())
        .ok_or(RewriteError::BadFrom)?;
    match list {
        // Normalized like a registered address, so the partner check
        // compares like with like; a From that is no plain mailbox keeps
        // its lowercased text and simply never matches.
        [only] => only
            .address()
            .filter(|a| a.contains('@'))
            .map(|a| {
                crate::address::EmailAddress::parse(a)
                    .map_or_else(|_| a.to_lowercase(), |parsed| parsed.as_str().to_owned())
            })
            .ok_or(RewriteError::BadFrom),
        _ => Err(RewriteError::BadFrom),
    }
}

/// A decoded subject as one line of at most `max_chars`: control
/// characters (CR, LF, ...) become spaces.
pub fn clean_subject(subject: &str, max_chars: usize) -> String {
    subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max_chars)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Everything the rewrite needs from routing and configuration.
pub struct Context<'a> {
    pub alias_domain: &'a str,
    /// Our host name for the trace header.
    pub hostname: &'a str,
    pub conversation_id: &'a str,
    /// The alias that represents the sender: the new From.
    pub from_alias: &'a str,
    /// The sender's real address: the body guard replaces it with
    /// `from_alias@alias_domain`.
    pub sender_address: &'a str,
    /// Pseudonym from the conversation, never from the message.
    pub from_display_name: Option<&'a str>,
    /// The alias that represents the recipient: the new To.
    pub to_alias: &'a str,
    pub cipher: &'a MessageIdCipher,
    pub now: i64,
    /// Random id for the trace header and for a missing Message-ID.
    pub trace_id: &'a str,
}

/// The forwarded message, or an error when the body is too complex for the
/// guard to check (see [`body`]).
pub fn rewrite(message: &Inspected<'_>, ctx: &Context<'_>) -> Result<Vec<u8>, RewriteError> {
    let alias_address = format!("{}@{}", ctx.from_alias, ctx.alias_domain);
    let identity = body::Identity {
        real: ctx.sender_address,
        alias: &alias_address,
    };
    // The guard reads the body through the header fields the recipient
    // will get (the first of each kept field), not the sender's duplicates.
    let kept_fields = kept_fields(message);
    let mut kept_block: Vec<u8> = kept_fields
        .iter()
        .flat_map(|f| f.raw.iter().copied())
        .collect();
    kept_block.extend_from_slice(b"\r\n");
    let guarded = body::guard(&kept_block, &message.raw[message.body_start..], &identity)?;
    let (body, transfer_encoding) = match &guarded {
        Some(changed) => (&changed.body[..], changed.transfer_encoding),
        None => (&message.raw[message.body_start..], None),
    };
    let mut out = Vec::with_capacity(body.len() + 1024);
    let ids = IdMapper {
        cipher: ctx.cipher,
        alias_domain: ctx.alias_domain,
        conversation_id: ctx.conversation_id,
    };

    // The one trace header: RFC 5321 wants a Received line; ours names
    // neither the client nor any IP.
    push_line(
        &mut out,
        &format!(
            "Received: by {} (anonrelay) id {};\r\n\t{}",
            ctx.hostname,
            ctx.trace_id,
            Date::new(ctx.now).to_rfc822()
        ),
    );
    match &ctx.from_display_name {
        Some(name) => push_line(
            &mut out,
            &format!("From: \"{name}\" <{}@{}>", ctx.from_alias, ctx.alias_domain),
        ),
        None => push_line(
            &mut out,
            &format!("From: <{}@{}>", ctx.from_alias, ctx.alias_domain),
        ),
    }
    push_line(
        &mut out,
        &format!("To: <{}@{}>", ctx.to_alias, ctx.alias_domain),
    );
    // Date in UTC: the sender's time zone is a fingerprint.
    push_line(
        &mut out,
        &format!(
            "Date: {}",
            Date::new(message.date.unwrap_or(ctx.now)).to_rfc822()
        ),
    );
    let message_id = message
        .fields
        .iter()
        .find(|f| f.is("Message-ID"))
        .and_then(|f| message_ids(f.value).next())
        .and_then(|id| ids.map(id))
        .unwrap_or_else(|| format!("{}@{}", ctx.trace_id, ctx.alias_domain));
    push_line(&mut out, &format!("Message-ID: <{message_id}>"));
    for name in ["In-Reply-To", "References"] {
        if let Some(field) = message.fields.iter().find(|f| f.is(name)) {
            threading::write_id_list(&mut out, name, &ids.map_all(field.value));
        }
    }
    for field in &kept_fields {
        match transfer_encoding {
            Some(value) if field.is("Content-Transfer-Encoding") => {
                push_line(&mut out, &format!("Content-Transfer-Encoding: {value}"));
            }
            _ => match field_guard::guard_field(field.raw, &identity) {
                Some(guarded) => out.extend_from_slice(&guarded),
                None => out.extend_from_slice(field.raw),
            },
        }
    }
    let has_encoding = kept_fields
        .iter()
        .any(|f| f.is("Content-Transfer-Encoding"));
    if let Some(value) = transfer_encoding.filter(|_| !has_encoding) {
        push_line(&mut out, &format!("Content-Transfer-Encoding: {value}"));
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    if out.len() > max_output_len(message.raw.len()) {
        return Err(RewriteError::TooComplex);
    }
    Ok(out)
}

/// The most a forwarded copy of an `input_len`-byte message may take: the
/// guard lengthens addresses into aliases and may re-encode parts (an
/// eighth more is far beyond what real mail needs), and our headers add at
/// most 32 KiB (the ids dominate: 2 x 21 listed plus the Message-ID, each a
/// token of a 200-byte id on a long alias domain, about 610 bytes a line).
/// The session reserves this much of the memory budget before the rewrite,
/// and a copy that would be larger is refused, so the reservation holds.
pub fn max_output_len(input_len: usize) -> usize {
    input_len
        .saturating_add(input_len / 8)
        .saturating_add(32 * 1024)
}

/// The sender's fields that are forwarded: the first of each `KEPT` name.
fn kept_fields<'m>(message: &'m Inspected<'_>) -> Vec<&'m Field<'m>> {
    let mut kept: Vec<&Field<'_>> = Vec::new();
    for field in &message.fields {
        let allowed = KEPT.iter().any(|k| field.is(k));
        if allowed
            && !kept
                .iter()
                .any(|seen| seen.name.eq_ignore_ascii_case(field.name))
        {
            kept.push(field);
        }
    }
    kept
}

fn push_line(out: &mut Vec<u8>, line: &str) {
    out.extend_from_slice(line.as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
