//! The rewrite step: raw message bytes in, forwarded message bytes out.
//!
//! Pure functions with no I/O, so every fixture can be checked without
//! sockets. [`inspect`] reads what routing needs (the From address and the
//! subject); [`rewrite`] rebuilds the message: the sender's MIME tree is
//! read ([`tree`]) and a new one written ([`build`]) under the allowlists
//! of [`policy`], every text through its format's scrubber ([`scrub`]),
//! below a header the relay writes (`new_header`). Every byte of the
//! result is written by the relay, a value that passed a named scrubber,
//! or the decoded content of an attachment.

mod build;
pub mod charset;
pub mod cms;
mod headers;
mod mime;
mod new_header;
pub mod policy;
pub mod scrub;
mod threading;
mod transfer;
mod tree;

pub use headers::{check_line_endings, Field};
pub use policy::is_forwarded_header;
pub use scrub::html::RemoteContent;
pub use threading::{message_ids, IdMapper};

use mail_parser::MessageParser;

use crate::core::tokens::MessageIdCipher;
use build::{Rebuild, Writer};
use scrub::{Identity, Scrubber};
use tree::{Budget, PartHeader, Reader};

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
    /// An `application/pkcs7-mime` part the relay cannot read: it may
    /// carry a signature naming the sender, so it is not forwarded.
    #[error("message carries S/MIME content the relay cannot read")]
    UnreadableSmime,
}

/// What routing needs to know about a message before it is rewritten.
pub struct Inspected<'a> {
    fields: Vec<Field<'a>>,
    body_start: usize,
    raw: &'a [u8],
    /// The single header From address, lowercased, if there is one.
    pub from_address: Option<String>,
    /// Its display name, decoded: looked for beside the address in text.
    pub from_name: Option<String>,
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
    let from_name = from_name(&split.fields, parsed.as_ref());
    // The first Subject, as clients show it (mail-parser alone takes the last).
    let subject = split
        .fields
        .iter()
        .find(|f| f.is("Subject"))
        .and_then(|field| {
            let mut block = field.raw.to_vec();
            block.extend_from_slice(b"\r\n");
            MessageParser::new()
                .parse_headers(&block[..])
                .and_then(|m| {
                    m.subject().map(|s| {
                        clean_subject(&charset::decode_words_fully(s), MAX_LOGGED_SUBJECT_CHARS)
                    })
                })
        })
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
        from_name,
        subject,
        date,
    })
}

/// The From's display name, decoded as a reader's client shows it: encoded
/// words anywhere and twice-encoded ones decoded; a name sent as raw 8-bit
/// text that is no UTF-8 read as Windows-1252, as clients fall back to.
fn from_name(fields: &[Field<'_>], parsed: Option<&mail_parser::Message<'_>>) -> Option<String> {
    let name = parsed?.from()?.first()?.name()?;
    let name = if name.contains('\u{fffd}') {
        let raw = fields.iter().find(|f| f.is("From"))?.raw;
        let latin = charset::decode(raw, Some("windows-1252"));
        let block = format!("{latin}\r\n");
        let reparsed = MessageParser::new().parse_headers(block.as_bytes())?;
        reparsed.from()?.first()?.name()?.to_owned()
    } else {
        name.to_owned()
    };
    let name = clean_subject(&charset::decode_words_fully(&name), 256);
    (!name.is_empty()).then_some(name)
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
                crate::core::address::EmailAddress::parse(a)
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
    /// The sender's real address (as registered): it becomes
    /// `from_alias@alias_domain` wherever a reader could see it.
    pub sender_address: &'a str,
    /// Pseudonym from the conversation, never from the message.
    pub from_display_name: Option<&'a str>,
    /// The alias that represents the recipient: the new To.
    pub to_alias: &'a str,
    pub cipher: &'a MessageIdCipher,
    pub now: i64,
    /// Random id for the trace header, a missing Message-ID and the
    /// message's new boundaries and Content-IDs.
    pub trace_id: &'a str,
    /// The SMTP client's IP address and EHLO name: hidden in text too.
    pub client_ip: Option<std::net::IpAddr>,
    pub client_host: Option<&'a str>,
    /// `[privacy] remote_content`.
    pub remote_content: RemoteContent,
}

/// The forwarded message and what the metadata log keeps of it.
#[derive(Debug)]
pub struct Rewritten {
    pub message: Vec<u8>,
    /// The subject as forwarded (scrubbed), one line, for the log.
    pub subject: String,
}

/// The forwarded message, rebuilt: every byte is written by the relay, a
/// value that passed a named scrubber, or the decoded content of an
/// attachment (see [`policy`], [`build`]).
pub fn rewrite(message: &Inspected<'_>, ctx: &Context<'_>) -> Result<Rewritten, RewriteError> {
    let scrubber = sender_scrubber(message, ctx);
    let ids = IdMapper {
        cipher: ctx.cipher,
        alias_domain: ctx.alias_domain,
        conversation_id: ctx.conversation_id,
    };
    // A UID too long to seal (Exchange's run to 250 characters and more)
    // gets a one-way token: updates still match on the recipient's side.
    let calendar_uid = |uid: &str| {
        ids.map(uid)
            .or_else(|| Some(one_way_token(ctx.conversation_id, uid, ctx.alias_domain)))
    };
    let rebuild = Rebuild {
        scrubber: &scrubber,
        remote_content: ctx.remote_content,
        alias_domain: ctx.alias_domain,
        salt: ctx.trace_id,
        calendar_uid: &calendar_uid,
    };
    let body = &message.raw[message.body_start..];
    let mut budget = Budget::for_input(message.raw.len());
    let top_header = PartHeader::read(&message.raw[..message.body_start])?;
    let tree = Reader::new(&mut budget, &scrubber)
        .entity(top_header, body, 0)?
        .unwrap_or_else(tree::Entity::empty_text);

    let mut out = Vec::with_capacity(body.len() + body.len() / 4 + 2048);
    let subject = clean_subject(&scrubber.text(&message.subject), MAX_LOGGED_SUBJECT_CHARS);
    new_header::write(&mut out, message, ctx, &ids, &subject);
    Writer::new(&rebuild, &mut budget).entity(&tree, &mut out)?;
    if out.len() > max_output_len(message.raw.len()) {
        return Err(RewriteError::TooComplex);
    }
    Ok(Rewritten {
        message: out,
        subject,
    })
}

/// The scrubber for this message: the sender's addresses (each spelling),
/// their display name and the SMTP client's IP address and host name, and
/// what stands for them (the alias address, the conversation's name).
fn sender_scrubber(message: &Inspected<'_>, ctx: &Context<'_>) -> Scrubber {
    let alias_address = format!("{}@{}", ctx.from_alias, ctx.alias_domain);
    Scrubber::new(Identity {
        addresses: sender_addresses(ctx.sender_address, message.from_address.as_deref()),
        name_replacement: ctx
            .from_display_name
            .map_or_else(|| alias_address.clone(), str::to_owned),
        alias_address,
        names: message.from_name.iter().cloned().collect(),
        ips: ctx.client_ip.into_iter().collect(),
        hosts: ctx.client_host.map(str::to_owned).into_iter().collect(),
    })
}

/// `TOKEN@alias-domain`, TOKEN a hash of the conversation and `id`: the
/// same id gives the same token, and the token hides the id's host.
fn one_way_token(conversation_id: &str, id: &str, alias_domain: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(conversation_id.as_bytes())
        .chain_update([0])
        .chain_update(id.as_bytes())
        .finalize();
    format!(
        "{}@{alias_domain}",
        crate::core::tokens::base32().encode(&digest[..20])
    )
}

/// The sender's addresses: the registered one and, when the header From
/// names another (the envelope matched; "send mail as" an address of
/// their own), that one too, each in every spelling.
fn sender_addresses(registered: &str, header_from: Option<&str>) -> Vec<String> {
    let mut addresses = sender_spellings(registered);
    if let Some(from) = header_from.filter(|from| from.contains('@')) {
        for spelling in sender_spellings(from) {
            if !addresses.contains(&spelling) {
                addresses.push(spelling);
            }
        }
    }
    addresses
}

/// Every spelling of the sender's address a reader could be shown: the
/// registered (canonical) form and, for an internationalized domain, its
/// A-label form (`carol@bücher.example`, `carol@xn--bcher-kva.example`).
fn sender_spellings(address: &str) -> Vec<String> {
    match crate::core::address::EmailAddress::parse(address) {
        Ok(parsed) => {
            let mut forms = crate::core::address::domain_forms(&parsed);
            if !forms.iter().any(|f| f == address) {
                forms.push(address.to_owned());
            }
            forms
        }
        Err(_) => vec![address.to_owned()],
    }
}

pub use crate::core::budget::{max_output_len, memory_needed};

fn push_line(out: &mut Vec<u8>, line: &str) {
    out.extend_from_slice(line.as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
