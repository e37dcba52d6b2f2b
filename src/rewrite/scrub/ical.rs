//! iCalendar (RFC 5545) rebuilt from an allowlist: a `text/calendar` or
//! `application/ics` part as the other side may see it.
//!
//! The calendar is unfolded (folds may split an address or a UTF-8
//! character), each content line parsed, and only allowlisted components,
//! properties and parameters are written anew, refolded. Everything else —
//! every `X-` property and parameter (X-GOOGLE-*, X-MICROSOFT-*,
//! X-ALT-DESC with its HTML), `EMAIL=`, `SENT-BY=`, `DELEGATED-*`,
//! `MEMBER=`, `DIR=`, unknown components — is dropped. What stays:
//! - the sender as `ORGANIZER`/`ATTENDEE` becomes the alias address, their
//!   `CN` the conversation's display name; other people keep their
//!   address, and their `CN` goes through [`Scrubber::text`];
//! - text values are unescaped, scrubbed like any text a reader sees
//!   (Google's DESCRIPTION links carry the organizer's address, plainly
//!   and percent-encoded, and base64-encoded in `eid`/`tok`:
//!   [`super::encoded`], through the text rules), and escaped again;
//! - structured values (dates, rules, numbers, enumerations) are kept only
//!   when made of the characters their syntax allows;
//! - `UID` goes through the caller's mapping, `PRODID` is the relay's own.
//!
//! Not kept, on purpose: `ATTACH` (a URI the reader's client may fetch
//! from a host the sender chose; inline data with the sender's file name),
//! `URL` (the sender's provider's link to the event: Google's `eid`
//! encodes the organizer's address in base64, where no text rule sees it),
//! `CONTACT` (free text about the organizer: phone, address), `ALTREP`
//! parameters (URIs again), `RELATED-TO`, `REQUEST-STATUS`, `RESOURCES`,
//! `ATTACH`-like RFC 7986 properties (`IMAGE`, `CONFERENCE`, `SOURCE`).
//!
//! Bounded: input size, physical lines, logical line length and component
//! nesting are capped; each line is handled once, in time linear in its
//! length.
//!
//! The parts: `content_line` reads and writes content lines,
//! `component` follows BEGIN and END through the component allowlist,
//! `property` rebuilds each allowlisted property's value and `params`
//! its parameters.

mod component;
mod content_line;
mod params;
mod property;

use component::Rebuild;
use content_line::{Limits, UnfoldError};

use super::Scrubber;

/// The largest calendar read (a year of exported events fits easily).
pub const MAX_INPUT_BYTES: usize = 8 * 1024 * 1024;
/// Most physical lines read.
pub const MAX_LINES: usize = 200_000;
/// Longest logical (unfolded) line.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;
/// Deepest component nesting, dropped components included (real
/// calendars nest three: VCALENDAR, VTIMEZONE, STANDARD).
pub const MAX_DEPTH: usize = 16;

/// The PRODID written instead of the sender's (which names their client).
pub const PRODID: &str = "-//anonrelay//NONSGML relay//EN";

pub struct CalendarContext<'a> {
    pub scrubber: &'a Scrubber,
    /// The UID the other side sees for a UID (a reversible token on the
    /// alias domain, so updates and replies still match); None: drop the
    /// property.
    pub uid: &'a dyn Fn(&str) -> Option<String>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("calendar of {0} bytes is over the {MAX_INPUT_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("calendar has more than {MAX_LINES} lines")]
    TooManyLines,
    #[error("calendar has a line longer than {MAX_LINE_BYTES} bytes")]
    LineTooLong,
    #[error("calendar components nest deeper than {MAX_DEPTH}")]
    TooDeep,
    #[error("not a calendar: {0}")]
    NotACalendar(&'static str),
}

/// The calendar in `text`, rebuilt; see the module comment.
pub fn scrub(text: &str, cx: &CalendarContext<'_>) -> Result<String, CalendarError> {
    scrub_bytes(text.as_bytes(), cx)
}

/// As [`scrub`], from the part's bytes after transfer decoding: a fold may
/// split a UTF-8 character, which only unfolding before decoding mends
/// (a caller holding text already decoded loses that character to U+FFFD).
pub fn scrub_bytes(raw: &[u8], cx: &CalendarContext<'_>) -> Result<String, CalendarError> {
    if raw.len() > MAX_INPUT_BYTES {
        return Err(CalendarError::TooLarge(raw.len()));
    }
    // Some exporters start with a UTF-8 byte order mark; it is no name.
    let raw = raw.strip_prefix(b"\xef\xbb\xbf").unwrap_or(raw);
    let limits = Limits {
        max_lines: MAX_LINES,
        max_line_bytes: MAX_LINE_BYTES,
    };
    let lines = content_line::unfold(raw, &limits).map_err(|e| match e {
        UnfoldError::TooManyLines => CalendarError::TooManyLines,
        UnfoldError::LineTooLong => CalendarError::LineTooLong,
    })?;
    let mut rebuild = Rebuild {
        cx,
        out: String::with_capacity(raw.len()),
        open: Vec::new(),
        calendars: 0,
    };
    for line in &lines {
        rebuild.line(line)?;
    }
    if !rebuild.open.is_empty() {
        return Err(CalendarError::NotACalendar("a component is never ended"));
    }
    if rebuild.calendars == 0 {
        return Err(CalendarError::NotACalendar("no VCALENDAR"));
    }
    Ok(rebuild.out)
}

#[cfg(test)]
mod tests;
