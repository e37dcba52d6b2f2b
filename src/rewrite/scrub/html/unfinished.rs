//! A tag, comment or declaration that the end of the input cut off, found
//! before the document is parsed, so that nothing half-written reaches the
//! output.

/// The document without a tag, comment or declaration that the end of the
/// input cut off (`… <img src="http://t/x` at the very end): a browser drops
/// it, and left in, it could be read as a tag by whoever parses the output
/// next. Scans once, tracking only tags, quoted attribute values and
/// comments: inside `<style>` or `<title>` a `<` is text to a browser, and
/// cutting there drops some text, never adds any.
pub(super) fn without_unfinished_tag(html: &str) -> &str {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Text,
        Tag,
        Quoted(u8),
        Comment,
    }
    let bytes = html.as_bytes();
    let mut state = State::Text;
    let mut tag_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        state = match state {
            State::Text if b == b'<' => {
                tag_start = i;
                if bytes[i..].starts_with(b"<!--") {
                    i += 3;
                    State::Comment
                } else {
                    State::Tag
                }
            }
            State::Text => State::Text,
            State::Tag if b == b'"' || b == b'\'' => State::Quoted(b),
            State::Tag if b == b'>' => State::Text,
            State::Tag => State::Tag,
            State::Quoted(quote) if b == quote => State::Tag,
            State::Quoted(quote) => State::Quoted(quote),
            State::Comment if bytes[i..].starts_with(b"-->") => {
                i += 2;
                State::Text
            }
            State::Comment => State::Comment,
        };
        i += 1;
    }
    match state {
        State::Text => html,
        // `tag_start` is the offset of an ASCII `<`: a character boundary.
        _ => &html[..tag_start],
    }
}
