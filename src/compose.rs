//! Messages the front-end asks us to send (`POST /v1/messages`), built with
//! mail-builder as a pure function: validated fields in, CRLF-only bytes out.

use mail_builder::MessageBuilder;

/// RFC 5322's line limit; a longer subject is refused, not folded for the user.
pub const MAX_SUBJECT_CHARS: usize = 998;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ComposeError {
    #[error("subject: must not contain CR, LF or other control characters")]
    SubjectControl,
    #[error("subject: longer than {MAX_SUBJECT_CHARS} characters")]
    SubjectTooLong,
    #[error("text/html: at least one of them must be given and non-empty")]
    NoBody,
    #[error("message could not be built")]
    Build,
}

pub struct Draft<'a> {
    /// Our host name, for the same trace header forwarded mail gets: it
    /// lets the loop guard stop a composed message that comes back.
    pub hostname: &'a str,
    pub from_alias: &'a str,
    pub from_display_name: Option<&'a str>,
    pub alias_domain: &'a str,
    pub to_email: &'a str,
    pub subject: &'a str,
    pub text: Option<&'a str>,
    pub html: Option<&'a str>,
    pub message_id: &'a str,
    pub now: i64,
}

pub fn validate_subject(subject: &str) -> Result<(), ComposeError> {
    if subject.chars().any(char::is_control) {
        return Err(ComposeError::SubjectControl);
    }
    if subject.chars().count() > MAX_SUBJECT_CHARS {
        return Err(ComposeError::SubjectTooLong);
    }
    Ok(())
}

/// Makes every line ending CRLF, whatever the browser sent.
fn crlf(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace('\n', "\r\n")
}

pub fn compose(draft: &Draft<'_>) -> Result<Vec<u8>, ComposeError> {
    validate_subject(draft.subject)?;
    let text = draft.text.filter(|t| !t.trim().is_empty()).map(crlf);
    let html = draft.html.filter(|h| !h.trim().is_empty()).map(crlf);
    if text.is_none() && html.is_none() {
        return Err(ComposeError::NoBody);
    }
    let from_address = format!("{}@{}", draft.from_alias, draft.alias_domain);
    let from = match draft.from_display_name {
        Some(name) => (name.to_owned(), from_address).into(),
        None => mail_builder::headers::address::Address::from(from_address),
    };
    let trace = format!(
        "by {} (anonrelay) id {}; {}",
        draft.hostname,
        draft.message_id.split('@').next().unwrap_or_default(),
        mail_builder::headers::date::Date::new(draft.now).to_rfc822()
    );
    let mut builder = MessageBuilder::new()
        .header("Received", mail_builder::headers::raw::Raw::new(trace))
        .from(from)
        .to(draft.to_email)
        .subject(draft.subject)
        .message_id(draft.message_id)
        .date(draft.now);
    if let Some(text) = text {
        builder = builder.text_body(text);
    }
    if let Some(html) = html {
        builder = builder.html_body(html);
    }
    let bytes = builder.write_to_vec().map_err(|_| ComposeError::Build)?;
    // Defence in depth: never hand the upstream a bare CR or LF.
    crate::rewrite::check_line_endings(&bytes).map_err(|_| ComposeError::Build)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft<'a>(subject: &'a str, text: Option<&'a str>, html: Option<&'a str>) -> Draft<'a> {
        Draft {
            hostname: "mx.relay.test",
            from_alias: "aaaaaaaaaaaaaaaaaaaa",
            from_display_name: Some("Night Owl"),
            alias_domain: "relay.test",
            to_email: "bob@b.example",
            subject,
            text,
            html,
            message_id: "m1@relay.test",
            now: 1_800_000_000,
        }
    }

    #[test]
    fn composes_multipart_with_crlf_only() {
        let bytes = compose(&draft("Grüße", Some("line1\nline2\r\n"), Some("<p>hi</p>"))).unwrap();
        let parsed = mail_parser::MessageParser::new().parse(&bytes).unwrap();
        assert_eq!(parsed.subject(), Some("Grüße"));
        assert_eq!(
            parsed.from().unwrap().first().unwrap().address(),
            Some("aaaaaaaaaaaaaaaaaaaa@relay.test")
        );
        assert_eq!(parsed.message_id(), Some("m1@relay.test"));
        let trace = parsed.header_raw("Received").unwrap();
        assert!(
            trace
                .trim()
                .starts_with("by mx.relay.test (anonrelay) id m1;"),
            "{trace}"
        );
        assert!(parsed.body_text(0).unwrap().contains("line1\r\nline2"));
        assert!(parsed.body_html(0).unwrap().contains("<p>hi</p>"));
    }

    #[test]
    fn refuses_injection_and_empty_bodies() {
        assert_eq!(
            compose(&draft("hi\r\nBcc: x@y.example", Some("t"), None)),
            Err(ComposeError::SubjectControl)
        );
        assert_eq!(
            compose(&draft(&"x".repeat(999), Some("t"), None)),
            Err(ComposeError::SubjectTooLong)
        );
        assert_eq!(
            compose(&draft("s", None, Some("  "))),
            Err(ComposeError::NoBody)
        );
    }
}
