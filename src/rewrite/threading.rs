//! Message-ID, In-Reply-To and References rewriting. Foreign ids become
//! `<TOKEN@alias-domain>`; our own tokens are opened back into the id the
//! other side originally used, so both sides' clients thread.

use crate::core::tokens::{MessageIdCipher, MAX_MESSAGE_ID_LEN};

pub struct IdMapper<'a> {
    pub cipher: &'a MessageIdCipher,
    pub alias_domain: &'a str,
    pub conversation_id: &'a str,
}

impl IdMapper<'_> {
    /// Maps one id (the text between the angle brackets).
    pub fn map(&self, id: &str) -> Option<String> {
        if let Some((local, domain)) = id.rsplit_once('@') {
            if domain.eq_ignore_ascii_case(self.alias_domain) {
                if let Some(original) = self.cipher.open(local, self.conversation_id) {
                    return Some(original);
                }
            }
        }
        let token = self.cipher.seal(id, self.conversation_id)?;
        Some(format!("{token}@{}", self.alias_domain))
    }

    /// Maps every `<id>` found in a header value; ids that cannot be mapped
    /// are dropped rather than passed through. A long list keeps its first
    /// id (the thread's root) and the last ones (the nearest ancestors), as
    /// RFC 5322 allows for References: tokens are longer than the ids they
    /// replace, and this keeps the rewritten header block bounded.
    pub fn map_all(&self, value: &[u8]) -> Vec<String> {
        let ids: Vec<&str> = message_ids(value).collect();
        let kept: Vec<&str> = if ids.len() > MAX_LISTED_IDS {
            ids[..1]
                .iter()
                .chain(&ids[ids.len() - (MAX_LISTED_IDS - 1)..])
                .copied()
                .collect()
        } else {
            ids
        };
        kept.into_iter().filter_map(|id| self.map(id)).collect()
    }
}

/// Ids kept in one In-Reply-To or References header.
pub const MAX_LISTED_IDS: usize = 21;

/// The `<...>` ids in a header value, ignoring anything between them
/// (comments, white space, folding, stray text from broken clients).
pub fn message_ids(value: &[u8]) -> impl Iterator<Item = &str> {
    let mut rest = value;
    std::iter::from_fn(move || loop {
        let start = rest.iter().position(|&b| b == b'<')?;
        let after = &rest[start + 1..];
        let end = after.iter().position(|&b| b == b'>')?;
        let id = &after[..end];
        rest = &after[end + 1..];
        let plausible = !id.is_empty()
            && id.len() <= MAX_MESSAGE_ID_LEN
            && id.iter().all(|&b| b.is_ascii_graphic() && b != b'<')
            && id.contains(&b'@');
        if plausible {
            if let Ok(id) = std::str::from_utf8(id) {
                return Some(id);
            }
        }
    })
}

/// Writes `Name: <a> <b>` folded one id per line, so no line gets long.
pub fn write_id_list(out: &mut Vec<u8>, name: &str, ids: &[String]) {
    if ids.is_empty() {
        return;
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b":");
    for (index, id) in ids.iter().enumerate() {
        if index > 0 {
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b" <");
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b">");
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::tokens::ServerSecret;

    #[test]
    fn finds_ids_among_noise() {
        let ids: Vec<_> =
            message_ids(b" <a@b.example> (comment)\r\n\t<c@d.example> junk <nope> <x y@z>")
                .collect();
        assert_eq!(ids, ["a@b.example", "c@d.example"]);
    }

    #[test]
    fn foreign_ids_round_trip_through_our_domain() {
        let cipher = ServerSecret::from_bytes([3; 32]).message_id_cipher();
        let mapper = IdMapper {
            cipher: &cipher,
            alias_domain: "relay.example",
            conversation_id: "c1",
        };
        let ours = mapper.map("orig@mail.sender.example").unwrap();
        assert!(ours.ends_with("@relay.example"));
        assert!(!ours.contains("sender"));
        assert_eq!(mapper.map(&ours).unwrap(), "orig@mail.sender.example");
        // A token from another conversation is not opened: it is sealed again.
        let other = IdMapper {
            conversation_id: "c2",
            ..mapper
        };
        let resealed = other.map(&ours).unwrap();
        assert!(resealed.ends_with("@relay.example"));
        assert_ne!(resealed, "orig@mail.sender.example");
    }

    #[test]
    fn long_lists_keep_the_root_and_the_nearest_ancestors() {
        let cipher = ServerSecret::from_bytes([3; 32]).message_id_cipher();
        let mapper = IdMapper {
            cipher: &cipher,
            alias_domain: "relay.example",
            conversation_id: "c1",
        };
        let value: String = (0..20_000).map(|i| format!("<{i}@x.example> ")).collect();
        let mapped = mapper.map_all(value.as_bytes());
        assert_eq!(mapped.len(), MAX_LISTED_IDS);
        let opened: Vec<String> = mapped.iter().map(|t| mapper.map(t).unwrap()).collect();
        assert_eq!(opened[0], "0@x.example");
        assert_eq!(
            opened[1],
            format!("{}@x.example", 20_000 - MAX_LISTED_IDS + 1)
        );
        assert_eq!(opened[MAX_LISTED_IDS - 1], "19999@x.example");
        let long = format!("<{}@x.example>", "a".repeat(MAX_MESSAGE_ID_LEN));
        assert!(mapper.map_all(long.as_bytes()).is_empty());
    }

    #[test]
    fn id_lists_fold() {
        let mut out = Vec::new();
        write_id_list(&mut out, "References", &["a@b".into(), "c@d".into()]);
        assert_eq!(out, b"References: <a@b>\r\n <c@d>\r\n");
    }
}
