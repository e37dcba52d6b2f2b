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
    // Also as a reader that decodes encoded words would show it: a control
    // character there is a line break or a fake header to someone.
    let shown = crate::rewrite::charset::decode_words_fully(subject);
    if subject.chars().any(char::is_control) || shown.chars().any(char::is_control) {
        return Err(ComposeError::SubjectControl);
    }
    if subject.chars().count() > MAX_SUBJECT_CHARS {
        return Err(ComposeError::SubjectTooLong);
    }
    Ok(())
}

/// Bytes of UTF-8 per encoded word at most: 39 bytes are 52 base64
/// characters, so a word with its `=?utf-8?b?` and `?=` fits a line after
/// `Subject: `.
const WORD_BYTES: usize = 39;

/// The subject as the hook's caller wrote it: text, never markup. Text
/// that a reader would decode as an encoded word (`=?…?=`) is encoded
/// itself, so it is shown as typed; other text is left to mail-builder.
fn subject_field(subject: &str) -> Option<String> {
    if !subject.contains("=?") {
        return None;
    }
    let mut words = Vec::new();
    let mut rest = subject;
    while !rest.is_empty() {
        let mut end = rest.len().min(WORD_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (word, tail) = rest.split_at(end);
        words.push(format!(
            "=?utf-8?b?{}?=",
            data_encoding::BASE64.encode(word.as_bytes())
        ));
        rest = tail;
    }
    Some(words.join("\r\n "))
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
        .to(draft.to_email);
    builder = match subject_field(draft.subject) {
        Some(encoded) => builder.header("Subject", mail_builder::headers::raw::Raw::new(encoded)),
        None => builder.subject(draft.subject),
    };
    let mut builder = builder.message_id(draft.message_id).date(draft.now);
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
    fn a_subject_that_looks_like_encoded_words_is_shown_as_typed() {
        for subject in [
            "=?utf-8?b?SGVsbG8=?=",
            "Re: =?utf-8?q?caf=C3=A9?= and more",
            &format!("{}=?x?q?y?= ünïcödé", "long words ".repeat(20)),
        ] {
            let bytes = compose(&draft(subject, Some("t"), None)).unwrap();
            let parsed = mail_parser::MessageParser::new().parse(&bytes).unwrap();
            assert_eq!(parsed.subject(), Some(subject));
            let text = String::from_utf8_lossy(&bytes);
            let field: Vec<&str> = text
                .lines()
                .skip_while(|line| !line.starts_with("Subject:"))
                .take_while(|line| line.starts_with("Subject:") || line.starts_with(' '))
                .collect();
            assert!(field.iter().all(|line| line.len() <= 78), "{field:?}");
        }
    }

    #[test]
    fn refuses_injection_and_empty_bodies() {
        assert_eq!(
            compose(&draft("hi\r\nBcc: x@y.example", Some("t"), None)),
            Err(ComposeError::SubjectControl)
        );
        // Encoded words that decode to a line break and a header.
        assert_eq!(
            compose(&draft(
                "=?utf-8?b?DQpCY2M6IGV2aWxAeC5leGFtcGxl?=",
                Some("t"),
                None
            )),
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
