//! OpenPGP in text (RFC 4880 section 7, "cleartext signatures", and ASCII
//! armor): a signature or public key names the sender's key and, through
//! it, the sender. A clear-signed text becomes its plain text (dash
//! escapes undone), signature and key blocks are removed, and an encrypted
//! block keeps its data but loses its armor headers (`Version:`,
//! `Comment:` name the sender's software).

const SIGNED_START: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
const SIGNATURE_START: &str = "-----BEGIN PGP SIGNATURE-----";
const SIGNATURE_END: &str = "-----END PGP SIGNATURE-----";
const KEY_START: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
const KEY_END: &str = "-----END PGP PUBLIC KEY BLOCK-----";
const MESSAGE_START: &str = "-----BEGIN PGP MESSAGE-----";

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    /// The `Hash:` header lines of a clear-signed message, up to the empty line.
    SignedHeader,
    /// Dash-escaped signed text.
    Signed,
    /// Inside a block that is dropped, up to this end line.
    Dropping(&'static str),
    /// The armor header lines of an encrypted block, up to the empty line.
    MessageHeader,
}

/// Nesting levels undone (a signed text quoting a signed text quoting …);
/// past them every armor line goes, so nothing is left for another pass.
const MAX_ROUNDS: usize = 4;

/// `text` with the sender's OpenPGP identity removed; `None` when it holds
/// no armor at all (the common case, one scan for `-----BEGIN PGP`).
/// Undoing a clear signature's dash escapes can bring a quoted armor block
/// to light, so this repeats until nothing changes.
pub fn strip(text: &str) -> Option<String> {
    if !text.contains("-----BEGIN PGP") {
        return None;
    }
    let mut current = strip_once(text);
    for _ in 1..MAX_ROUNDS {
        if !current.contains("-----BEGIN PGP") {
            return Some(current);
        }
        let next = strip_once(&current);
        if next == current {
            return Some(current);
        }
        current = next;
    }
    Some(
        current
            .split_inclusive('\n')
            .filter(|line| !line.starts_with("-----BEGIN PGP") && !line.starts_with("-----END PGP"))
            .collect(),
    )
}

fn strip_once(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut state = State::Text;
    for line in text.split_inclusive('\n') {
        let content = line.trim_end_matches(['\r', '\n']).trim_end();
        state = match state {
            State::Text | State::Signed => {
                let signed = state == State::Signed;
                // Unescaped inside signed text is malformed: a new block.
                if content == SIGNED_START {
                    State::SignedHeader
                } else if content == SIGNATURE_START {
                    State::Dropping(SIGNATURE_END)
                } else if content == KEY_START {
                    State::Dropping(KEY_END)
                } else if content == MESSAGE_START {
                    out.push_str(line);
                    State::MessageHeader
                } else {
                    let unescaped = if signed {
                        line.strip_prefix("- ").unwrap_or(line)
                    } else {
                        line
                    };
                    out.push_str(unescaped);
                    state
                }
            }
            State::SignedHeader if content.is_empty() => State::Signed,
            State::SignedHeader => State::SignedHeader,
            State::Dropping(end) if content == end => State::Text,
            State::Dropping(end) => State::Dropping(end),
            State::MessageHeader if content.is_empty() => {
                out.push_str(line);
                State::Text
            }
            // A header line has a colon; a block without headers starts
            // with its data at once.
            State::MessageHeader if content.contains(':') => State::MessageHeader,
            State::MessageHeader => {
                out.push_str(if line.ends_with('\n') { "\r\n" } else { "" });
                out.push_str(line);
                State::Text
            }
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clear_signed_text_becomes_its_plain_text() {
        let text = "Hi,\r\n-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\nsigned line\r\n- -- \r\nBob\r\n-----BEGIN PGP SIGNATURE-----\r\n\r\niQEzBAEBCAAdFiEE\r\n=abcd\r\n-----END PGP SIGNATURE-----\r\nafter\r\n";
        assert_eq!(
            strip(text).unwrap(),
            "Hi,\r\nsigned line\r\n-- \r\nBob\r\nafter\r\n"
        );
    }

    #[test]
    fn key_blocks_are_removed_and_encrypted_blocks_lose_their_headers() {
        let text = "a\r\n-----BEGIN PGP PUBLIC KEY BLOCK-----\r\n\r\nmQINBF\r\n-----END PGP PUBLIC KEY BLOCK-----\r\n-----BEGIN PGP MESSAGE-----\r\nVersion: GnuPG v2\r\nComment: bob's key\r\n\r\nhQEMA\r\n-----END PGP MESSAGE-----\r\n";
        assert_eq!(
            strip(text).unwrap(),
            "a\r\n-----BEGIN PGP MESSAGE-----\r\n\r\nhQEMA\r\n-----END PGP MESSAGE-----\r\n"
        );
        assert_eq!(strip("no armor"), None);
    }

    #[test]
    fn a_quoted_signed_text_inside_a_signed_text_is_undone_too() {
        let text = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nouter\n- -----BEGIN PGP SIGNED MESSAGE-----\n- Hash: SHA256\n- \n- inner\n- -----BEGIN PGP SIGNATURE-----\n- inner sig\n- -----END PGP SIGNATURE-----\n-----BEGIN PGP SIGNATURE-----\nouter sig\n-----END PGP SIGNATURE-----\n";
        let once = strip(text).unwrap();
        assert_eq!(once, "outer\ninner\n");
        assert_eq!(strip(&once), None, "nothing left for a second pass");
    }

    #[test]
    fn an_unterminated_signature_drops_the_rest() {
        let text = "x\n-----BEGIN PGP SIGNATURE-----\nwhatever follows\n";
        assert_eq!(strip(text).unwrap(), "x\n");
    }
}
