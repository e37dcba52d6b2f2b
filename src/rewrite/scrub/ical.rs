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

mod content_line;

use std::borrow::Cow;

use content_line::{ContentLine, Limits, Param, UnfoldError};

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

/// A component begun and not yet ended.
struct Open {
    /// Upper case.
    name: String,
    /// Whether it (and so everything up to it) is allowlisted.
    kept: bool,
}

struct Rebuild<'c, 'a> {
    cx: &'c CalendarContext<'a>,
    out: String,
    open: Vec<Open>,
    calendars: usize,
}

impl Rebuild<'_, '_> {
    fn line(&mut self, line: &str) -> Result<(), CalendarError> {
        // Not a content line: nothing of it can be kept.
        let Some(parsed) = ContentLine::parse(line) else {
            return Ok(());
        };
        // Trailing blanks after a component name are a producer's slip.
        if parsed.name.eq_ignore_ascii_case("BEGIN") {
            return self.begin(parsed.value.trim_end());
        }
        if parsed.name.eq_ignore_ascii_case("END") {
            return self.end(parsed.value.trim_end());
        }
        if self.open.last().is_some_and(|c| c.kept) {
            if let Some(rebuilt) = property(&parsed, self.cx) {
                content_line::fold_into(&mut self.out, &rebuilt);
            }
        }
        Ok(())
    }

    fn begin(&mut self, component: &str) -> Result<(), CalendarError> {
        if !content_line::is_name(component) {
            return Err(CalendarError::NotACalendar(
                "BEGIN without a component name",
            ));
        }
        if self.open.len() >= MAX_DEPTH {
            return Err(CalendarError::TooDeep);
        }
        let name = component.to_ascii_uppercase();
        let kept = match self.open.last() {
            None => is_allowed_child(None, &name),
            Some(parent) => parent.kept && is_allowed_child(Some(&parent.name), &name),
        };
        if kept {
            content_line::fold_into(&mut self.out, &format!("BEGIN:{name}"));
            if name == "VCALENDAR" {
                self.calendars += 1;
                content_line::fold_into(&mut self.out, &format!("PRODID:{PRODID}"));
            }
        }
        self.open.push(Open { name, kept });
        Ok(())
    }

    fn end(&mut self, component: &str) -> Result<(), CalendarError> {
        let Some(open) = self.open.pop() else {
            return Err(CalendarError::NotACalendar("END without BEGIN"));
        };
        if !open.name.eq_ignore_ascii_case(component) {
            return Err(CalendarError::NotACalendar("END does not match its BEGIN"));
        }
        if open.kept {
            content_line::fold_into(&mut self.out, &format!("END:{}", open.name));
        }
        Ok(())
    }
}

/// Where a component may stand: VCALENDAR at the top, the rest where RFC
/// 5545 puts them.
fn is_allowed_child(parent: Option<&str>, child: &str) -> bool {
    match parent {
        None => child == "VCALENDAR",
        Some("VCALENDAR") => matches!(
            child,
            "VEVENT" | "VTODO" | "VJOURNAL" | "VFREEBUSY" | "VTIMEZONE"
        ),
        Some("VTIMEZONE") => matches!(child, "STANDARD" | "DAYLIGHT"),
        Some("VEVENT" | "VTODO") => child == "VALARM",
        Some(_) => false,
    }
}

/// How a kept property's value is rebuilt.
#[derive(Clone, Copy)]
enum Value {
    /// Kept as is when every character passes the check (dates, rules,
    /// numbers, enumerations: syntax without room for a name).
    Structured(fn(char) -> bool),
    /// TEXT: unescaped, scrubbed, escaped.
    Text,
    /// A comma-separated list of TEXT (CATEGORIES).
    TextList,
    /// ORGANIZER, ATTENDEE: a `mailto:` URI.
    CalAddress,
    /// Through the caller's mapping.
    Uid,
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | ';')
}

fn is_time_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, ',' | '/' | ':' | '+' | '-')
}

fn is_rule_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '=' | ';' | ',' | ':' | '+' | '-')
}

fn is_number_char(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '+' | '-')
}

fn is_geo_char(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, '+' | '-' | '.' | ';')
}

/// The property allowlist. PRODID is absent: the relay writes its own.
fn value_kind(name: &str) -> Option<Value> {
    use Value::*;
    Some(match name {
        "VERSION" | "CALSCALE" | "METHOD" | "STATUS" | "TRANSP" | "CLASS" | "ACTION" => {
            Structured(is_token_char)
        }
        "DTSTART" | "DTEND" | "DUE" | "DURATION" | "DTSTAMP" | "CREATED" | "LAST-MODIFIED"
        | "RECURRENCE-ID" | "RDATE" | "EXDATE" | "TRIGGER" | "FREEBUSY" => Structured(is_time_char),
        "RRULE" => Structured(is_rule_char),
        "SEQUENCE" | "PRIORITY" | "REPEAT" | "TZOFFSETFROM" | "TZOFFSETTO" => {
            Structured(is_number_char)
        }
        "GEO" => Structured(is_geo_char),
        "SUMMARY" | "DESCRIPTION" | "LOCATION" | "COMMENT" | "TZNAME" | "TZID" => Text,
        "CATEGORIES" => TextList,
        "ORGANIZER" | "ATTENDEE" => CalAddress,
        "UID" => Uid,
        _ => return None,
    })
}

/// How a kept parameter's values are rebuilt.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ParamValue {
    /// Letters, digits and `-` only, else the parameter is dropped.
    Token,
    /// Through [`Scrubber::text`] (a time zone's name).
    Text,
    /// A common name: the sender's is replaced, anyone's is scrubbed.
    CommonName,
}

/// The parameter allowlist.
fn param_kind(name: &str) -> Option<ParamValue> {
    Some(match name {
        "VALUE" | "ROLE" | "PARTSTAT" | "RSVP" | "CUTYPE" | "LANGUAGE" | "RANGE" | "RELATED"
        | "FBTYPE" => ParamValue::Token,
        "TZID" => ParamValue::Text,
        "CN" => ParamValue::CommonName,
        _ => return None,
    })
}

/// The property rebuilt as one unfolded content line, or `None` to drop it.
fn property(line: &ContentLine<'_>, cx: &CalendarContext<'_>) -> Option<String> {
    let name = line.name.to_ascii_uppercase();
    let kind = value_kind(&name)?;
    let (value, is_sender) = match kind {
        Value::Structured(allowed) => (structured_value(line.value, allowed, cx)?, false),
        Value::Text => (text_value(line.value, cx), false),
        Value::TextList => (text_list_value(line.value, cx), false),
        Value::CalAddress => cal_address(line.value, cx)?,
        Value::Uid => (uid_value(line.value, cx)?, false),
    };
    let mut rebuilt = name;
    if kind_keeps_params(kind) {
        for param in kept_params(&line.params, is_sender, cx) {
            rebuilt.push(';');
            rebuilt.push_str(&param);
        }
    }
    rebuilt.push(':');
    rebuilt.push_str(&value);
    Some(rebuilt)
}

/// UID's parameters are not needed (none are defined for it).
fn kind_keeps_params(kind: Value) -> bool {
    !matches!(kind, Value::Uid)
}

fn structured_value(
    value: &str,
    allowed: fn(char) -> bool,
    cx: &CalendarContext<'_>,
) -> Option<String> {
    if value.is_empty() || !value.chars().all(allowed) {
        return None;
    }
    // A value the scrubber would change (an IP address in a GEO-like
    // shape) is no valid value of its kind.
    match cx.scrubber.identifiers(value) {
        Cow::Borrowed(_) => Some(value.to_owned()),
        Cow::Owned(_) => None,
    }
}

fn text_value(value: &str, cx: &CalendarContext<'_>) -> String {
    let text = content_line::unescape_text(value);
    content_line::escape_text(&cx.scrubber.text(&text))
}

fn text_list_value(value: &str, cx: &CalendarContext<'_>) -> String {
    content_line::split_text_list(value)
        .into_iter()
        .map(|item| text_value(item, cx))
        .collect::<Vec<_>>()
        .join(",")
}

/// A `mailto:` value: the sender's address (in any case, percent-encoded
/// or not) becomes the alias address; anyone else's is kept, scrubbed.
/// Other URI schemes are dropped. The flag says whether it was the sender.
fn cal_address(value: &str, cx: &CalendarContext<'_>) -> Option<(String, bool)> {
    let scheme = value.get(..7)?;
    if !scheme.eq_ignore_ascii_case("mailto:") {
        return None;
    }
    let address = value.get(7..)?;
    if cx.scrubber.is_sender(&percent_decode(address)) {
        let alias = &cx.scrubber.identity().alias_address;
        return Some((format!("mailto:{alias}"), true));
    }
    let kept: String = cx
        .scrubber
        .identifiers(address)
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    (!kept.is_empty()).then(|| (format!("mailto:{kept}"), false))
}

fn uid_value(value: &str, cx: &CalendarContext<'_>) -> Option<String> {
    let mapped = (cx.uid)(&content_line::unescape_text(value))?;
    Some(content_line::escape_text(&mapped))
}

/// `%XX` decoded (as UTF-8, lossy); anything else kept.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The allowlisted parameters, each written `NAME=value[,value]`, first
/// occurrence only.
fn kept_params(params: &[Param<'_>], is_sender: bool, cx: &CalendarContext<'_>) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut kept = Vec::new();
    for param in params {
        let name = param.name.to_ascii_uppercase();
        let Some(kind) = param_kind(&name) else {
            continue;
        };
        if seen.contains(&name) {
            continue;
        }
        let values: Option<Vec<String>> = param
            .values
            .iter()
            .map(|v| param_value(kind, v, is_sender, cx))
            .collect();
        if let Some(values) = values.filter(|v| !v.is_empty()) {
            kept.push(format!("{name}={}", values.join(",")));
            seen.push(name);
        }
    }
    kept
}

/// One parameter value as written, or `None` to drop the parameter.
fn param_value(
    kind: ParamValue,
    value: &str,
    is_sender: bool,
    cx: &CalendarContext<'_>,
) -> Option<String> {
    let text = match kind {
        ParamValue::Token => {
            if value.is_empty() || !content_line::is_name(value) {
                return None;
            }
            Cow::Borrowed(value)
        }
        ParamValue::Text => cx.scrubber.text(value),
        ParamValue::CommonName if is_sender => {
            let replacement = &cx.scrubber.identity().name_replacement;
            if replacement.is_empty() {
                return None;
            }
            Cow::Borrowed(replacement.as_str())
        }
        // A CN is a name: the sender's stands for them whatever address it
        // labels (an attendee line with their other address).
        ParamValue::CommonName => {
            Cow::Owned(cx.scrubber.text(&cx.scrubber.names(value)).into_owned())
        }
    };
    Some(content_line::param_value(&text))
}

#[cfg(test)]
mod tests;
