//! Properties: the allowlist, and each kept property's value rebuilt by
//! its kind (structured, text, a calendar address, a UID), with its
//! allowlisted parameters ([`params`](super::params)).

use std::borrow::Cow;

use super::content_line::{self, ContentLine};
use super::params::kept_params;
use super::CalendarContext;

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

/// The property rebuilt as one unfolded content line, or `None` to drop it.
pub(super) fn property(line: &ContentLine<'_>, cx: &CalendarContext<'_>) -> Option<String> {
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
pub(super) fn percent_decode(text: &str) -> String {
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
