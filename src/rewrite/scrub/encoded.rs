//! Opaque link tokens that spell the sender's address in base64. Google
//! Calendar's `eid` is base64url of "<event id> <organizer>" (with
//! `@gmail.com` cut to `@m`), its `tok` base64 of the organizer's address
//! and a hash: no text rule sees them, and anyone can decode them. A run of
//! base64 or base64url characters whose decoding shows a sender's local
//! part followed by `@` is removed (the link it was part of was the
//! sender's provider's own, useless to the recipient).
//!
//! Linear: every run is decoded once, and compared once per address.
//! Part of [`super::Scrubber::identifiers`], so the same links in plain
//! text, HTML and calendars all lose them.

/// Shortest local part looked for (see [`strip`]).
const MIN_LOCAL_PART: usize = 3;

/// Shorter runs are words, not tokens (and decode to too little).
const MIN_TOKEN_CHARS: usize = 16;

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_')
}

/// `text` without the tokens that encode one of `addresses`; `None` when
/// there is none.
pub fn strip(text: &str, addresses: &[String]) -> Option<String> {
    let needles: Vec<Vec<u8>> = addresses
        .iter()
        .filter_map(|a| a.rsplit_once('@'))
        // A local part of one or two characters plus `@` is too short:
        // random base64 (an inline image, an encrypted block) decodes to
        // such three bytes every few hundred kilobytes.
        .filter(|(local, _)| local.len() >= MIN_LOCAL_PART)
        .map(|(local, _)| format!("{local}@").to_ascii_lowercase().into_bytes())
        .collect();
    if needles.is_empty() {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut pos = 0;
    while pos < bytes.len() {
        if !is_token_char(bytes[pos]) {
            pos += 1;
            continue;
        }
        let start = pos;
        while pos < bytes.len() && is_token_char(bytes[pos]) {
            pos += 1;
        }
        // Padding belongs to the token.
        let mut padding = 0;
        while padding < 2 && bytes.get(pos) == Some(&b'=') {
            pos += 1;
            padding += 1;
        }
        let run = &bytes[start..pos];
        if run.len() >= MIN_TOKEN_CHARS && encodes_any(run, &needles) {
            let kept = out.get_or_insert_with(|| String::with_capacity(text.len()));
            // Runs start and end on ASCII bytes, so on character boundaries.
            kept.push_str(text.get(copied..start)?);
            copied = pos;
        }
    }
    let mut kept = out?;
    kept.push_str(text.get(copied..)?);
    Some(kept)
}

/// Whether the run, decoded from any of the four alignments (a token may
/// be glued to what precedes it, like `%3D` in an encoded URL), shows one
/// of the needles. Each needle ends in `@`, rare in decoded text: only the
/// bytes before an `@` are compared, so most runs cost one decode each.
fn encodes_any(run: &[u8], needles: &[Vec<u8>]) -> bool {
    let mut decoded = Vec::with_capacity(run.len() * 3 / 4);
    (0..4).any(|skip| {
        decoded.clear();
        decode_lenient(run.get(skip..).unwrap_or_default(), &mut decoded);
        decoded.iter().enumerate().any(|(at, &byte)| {
            byte == b'@'
                && needles.iter().any(|needle| {
                    let local = &needle[..needle.len() - 1];
                    at >= local.len() && decoded[at - local.len()..at].eq_ignore_ascii_case(local)
                })
        })
    })
}

/// The 6-bit value of a base64 or base64url character; 0xff for others.
const VALUES: [u8; 256] = {
    let mut table = [0xff; 256];
    let mut i = 0;
    while i < 26 {
        table[b'A' as usize + i] = i as u8;
        table[b'a' as usize + i] = 26 + i as u8;
        i += 1;
    }
    let mut digit = 0;
    while digit < 10 {
        table[b'0' as usize + digit] = 52 + digit as u8;
        digit += 1;
    }
    table[b'+' as usize] = 62;
    table[b'-' as usize] = 62;
    table[b'/' as usize] = 63;
    table[b'_' as usize] = 63;
    table
};

/// Base64 or base64url into `out`, padding and trailing bits ignored.
fn decode_lenient(run: &[u8], out: &mut Vec<u8>) {
    let mut bits: u32 = 0;
    let mut count = 0;
    for &b in run {
        let value = VALUES[usize::from(b)];
        if value == 0xff {
            continue;
        }
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linnea() -> Vec<String> {
        vec!["linnea.vasquez.ortiz88@gmail.com".into()]
    }

    #[test]
    fn google_eid_and_tok_are_removed() {
        // eid: base64url("3k8f0q2vb1n7m4p6r9s5t2u8w0 linnea.vasquez.ortiz88@m")
        let eid = "M2s4ZjBxMnZiMW43bTRwNnI5czV0MnU4dzAgbGlubmVhLnZhc3F1ZXoub3J0aXo4OEBt";
        // tok: base64("32linnea.vasquez.ortiz88@gmail.com" + hash)
        let tok = "MzJsaW5uZWEudmFzcXVlei5vcnRpejg4QGdtYWlsLmNvbTRjOWUxYTBiN2QyZjhlNmE1YjNjMWQwZTlmOGE3YjZjNWQ0ZTNmMmE=";
        let text = format!("View at https://calendar.google.com/calendar/event?action=VIEW&eid={eid}&tok={tok}&ctz=Europe%2FOslo.");
        assert_eq!(
            strip(&text, &linnea()).as_deref(),
            Some("View at https://calendar.google.com/calendar/event?action=VIEW&eid=&tok=&ctz=Europe%2FOslo.")
        );
    }

    #[test]
    fn other_tokens_and_words_stay() {
        let text = "Join https://meet.google.com/xqz-brtw-kpn or https://zoom.example/j/81234567890?pwd=dGhpcyBpcyBub3QgYW4gYWRkcmVzcw";
        assert_eq!(strip(text, &linnea()), None);
        // Someone else's address encoded is not the sender's.
        let other = "eid=M2s4ZjBxMnZiMW43bTRwNnI5czV0MnU4dzAgZnJpZW5kQGV4YW1wbGUub3Jn";
        assert_eq!(strip(other, &linnea()), None);
        assert_eq!(strip("no tokens at all, ålreit", &linnea()), None);
        assert_eq!(strip("anything", &[]), None);
    }

    #[test]
    fn a_token_glued_to_what_precedes_it_is_found() {
        // `eid%3D<token>` as in a percent-encoded URL: the run starts "3D".
        let text = "u=https%3A%2F%2Fcalendar.example%2Fe%3Feid%3DM2s4ZjBxMnZiMW43bTRwNnI5czV0MnU4dzAgbGlubmVhLnZhc3F1ZXoub3J0aXo4OEBt%26x";
        assert_eq!(
            strip(text, &linnea()).as_deref(),
            Some("u=https%3A%2F%2Fcalendar.example%2Fe%3Feid%%26x")
        );
    }
}
