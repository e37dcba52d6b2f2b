//! Parameters: the allowlist, first occurrence of each, and each value
//! rebuilt by its kind (a token, text, a common name).

use std::borrow::Cow;

use super::content_line::{self, Param};
use super::CalendarContext;

/// How a kept parameter's values are rebuilt.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ParamValue {
    /// Letters, digits and `-` only, else the parameter is dropped.
    Token,
    /// Through [`Scrubber::text`](crate::rewrite::scrub::Scrubber::text) (a time zone's name).
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

/// The allowlisted parameters, each written `NAME=value[,value]`, first
/// occurrence only.
pub(super) fn kept_params(
    params: &[Param<'_>],
    is_sender: bool,
    cx: &CalendarContext<'_>,
) -> Vec<String> {
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
