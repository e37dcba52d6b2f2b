//! `format=flowed` (RFC 3676) undone: soft line breaks joined, so the
//! scrubbers see each paragraph the way the reader's client shows it (an
//! address wrapped at a soft break is one address on screen). The result
//! is fixed text; the relay sends it without `format=flowed`.

/// The unflowed text, every line ending in CRLF as in the input.
pub fn unflow(text: &str, delsp: bool) -> String {
    let mut out = String::with_capacity(text.len());
    // The paragraph being joined: its quote depth and its text so far.
    let mut open: Option<(usize, String)> = None;
    for raw_line in text.split_inclusive('\n') {
        let line = raw_line.trim_end_matches(['\r', '\n']);
        let depth = line.bytes().take_while(|&b| b == b'>').count();
        let mut content = &line[depth..];
        // Space-stuffing: one leading space is not part of the text.
        content = content.strip_prefix(' ').unwrap_or(content);
        let is_signature_separator = content == "-- ";
        let soft = content.ends_with(' ') && !is_signature_separator;
        let piece = if soft && delsp {
            &content[..content.len() - 1]
        } else {
            content
        };
        match &mut open {
            Some((open_depth, joined)) if *open_depth == depth && !is_signature_separator => {
                joined.push_str(piece);
            }
            _ => {
                if let Some((open_depth, joined)) = open.take() {
                    push_line(&mut out, open_depth, &joined);
                }
                open = Some((depth, piece.to_owned()));
            }
        }
        if !soft {
            if let Some((open_depth, joined)) = open.take() {
                push_line(&mut out, open_depth, &joined);
            }
        }
    }
    if let Some((depth, joined)) = open {
        push_line(&mut out, depth, &joined);
    }
    if !text.ends_with('\n') && out.ends_with("\r\n") {
        out.truncate(out.len() - 2);
    }
    out
}

fn push_line(out: &mut String, depth: usize, text: &str) {
    for _ in 0..depth {
        out.push('>');
    }
    if depth > 0 && !text.is_empty() {
        out.push(' ');
    }
    out.push_str(text);
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_breaks_are_joined() {
        let text = "Write to bob.real@sender-mail.exam \r\nple please.\r\nNext line\r\n";
        assert_eq!(
            unflow(text, false),
            "Write to bob.real@sender-mail.exam ple please.\r\nNext line\r\n"
        );
        assert_eq!(
            unflow(text, true),
            "Write to bob.real@sender-mail.example please.\r\nNext line\r\n"
        );
    }

    #[test]
    fn quote_depth_and_stuffing_and_signature() {
        let text = ">> quoted \r\n>> more\r\n> other\r\n From here\r\n-- \r\nBob\r\n";
        assert_eq!(
            unflow(text, false),
            ">> quoted more\r\n> other\r\nFrom here\r\n-- \r\nBob\r\n"
        );
    }

    #[test]
    fn a_quote_depth_change_ends_a_paragraph() {
        assert_eq!(unflow("> a \r\nb\r\n", false), "> a \r\nb\r\n");
        assert_eq!(
            unflow("end without newline ", false),
            "end without newline "
        );
    }
}
