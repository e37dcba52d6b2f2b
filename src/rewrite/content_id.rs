//! Content-IDs that name the sender's mail host. Thunderbird, for one,
//! writes `<part1.Hx0s2Kk3.Wx8mQ2dT@sender-provider.example>` for every
//! inline image: the domain of the sender's provider, in a header the
//! other side receives. Such an id is moved to the alias domain, and every
//! `cid:` reference to it in HTML is changed alike, so the image still
//! shows. The rule is a pure function of the id, so a reference met before
//! its part (HTML comes first in multipart/related) needs no lookup.

use super::body::Identity;

/// Moves ids on the sender's domain (or a host under it) to the alias domain.
pub struct ContentIdRename<'a> {
    sender_domain: &'a str,
    alias_domain: &'a str,
}

impl<'a> ContentIdRename<'a> {
    pub fn new(identity: &Identity<'a>) -> Option<Self> {
        let (_, sender_domain) = identity.real.rsplit_once('@')?;
        let (_, alias_domain) = identity.alias.rsplit_once('@')?;
        (!sender_domain.is_empty() && !sender_domain.eq_ignore_ascii_case(alias_domain)).then_some(
            Self {
                sender_domain,
                alias_domain,
            },
        )
    }

    /// `left@host` with the host replaced when it is the sender's domain or
    /// one of its hosts; None when the id stays.
    pub fn rename_id(&self, id: &str) -> Option<String> {
        let (left, host) = id.rsplit_once('@')?;
        let on_sender_domain = host.eq_ignore_ascii_case(self.sender_domain)
            || host.len() > self.sender_domain.len()
                && host.is_char_boundary(host.len() - self.sender_domain.len() - 1)
                && host[host.len() - self.sender_domain.len() - 1..]
                    .eq_ignore_ascii_case(&format!(".{}", self.sender_domain));
        on_sender_domain.then(|| format!("{left}@{}", self.alias_domain))
    }

    /// A `Content-ID: <id>` field with the id renamed; None when it stays.
    pub fn rename_field(&self, raw: &[u8]) -> Option<Vec<u8>> {
        let open = raw.iter().position(|&b| b == b'<')?;
        let close = open + raw[open..].iter().position(|&b| b == b'>')?;
        let id = std::str::from_utf8(&raw[open + 1..close]).ok()?;
        let renamed = self.rename_id(id.trim())?;
        let mut out = Vec::with_capacity(raw.len() + self.alias_domain.len());
        out.extend_from_slice(&raw[..=open]);
        out.extend_from_slice(renamed.as_bytes());
        out.extend_from_slice(&raw[close..]);
        Some(out)
    }

    /// Decoded HTML with every `cid:` reference to a renamed id changed
    /// (in the same form: percent-encoded `@` stays percent-encoded).
    pub fn rename_references(&self, html: &[u8]) -> Option<Vec<u8>> {
        let mut out: Option<Vec<u8>> = None;
        let mut copied = 0;
        let mut search = 0;
        while let Some(found) = find_ci(&html[search..], b"cid:") {
            let start = search + found + 4;
            let end = start
                + html[start..]
                    .iter()
                    .position(|&b| {
                        matches!(b, b'"' | b'\'' | b')' | b'>' | b'<') || b.is_ascii_whitespace()
                    })
                    .unwrap_or(html.len() - start);
            search = end;
            let Ok(reference) = std::str::from_utf8(&html[start..end]) else {
                continue;
            };
            let percent = reference.contains("%40");
            let id = reference.replace("%40", "@");
            let Some(renamed) = self.rename_id(&id) else {
                continue;
            };
            let renamed = if percent {
                renamed.replace('@', "%40")
            } else {
                renamed
            };
            let out = out.get_or_insert_with(|| Vec::with_capacity(html.len() + 64));
            out.extend_from_slice(&html[copied..start]);
            out.extend_from_slice(renamed.as_bytes());
            copied = end;
        }
        let mut out = out?;
        out.extend_from_slice(&html[copied..]);
        Some(out)
    }
}

fn find_ci(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDENTITY: Identity<'static> = Identity {
        real: "bob.real@sender-mail.example",
        alias: "bbbb@relay.example",
    };

    fn rename() -> ContentIdRename<'static> {
        ContentIdRename::new(&IDENTITY).unwrap()
    }

    #[test]
    fn ids_on_the_senders_domain_or_its_hosts_move() {
        let rename = rename();
        assert_eq!(
            rename
                .rename_id("part1.Hx0s2Kk3.Wx8mQ2dT@Sender-Mail.example")
                .as_deref(),
            Some("part1.Hx0s2Kk3.Wx8mQ2dT@relay.example")
        );
        assert_eq!(
            rename.rename_id("x@laptop.sender-mail.example").as_deref(),
            Some("x@relay.example")
        );
        for stays in [
            "image001.png@01D9C7A5.1F7E1B20",
            "ii_lx@",
            "a@other-sender-mail.example",
            "no-at",
        ] {
            assert_eq!(rename.rename_id(stays), None, "{stays}");
        }
    }

    #[test]
    fn a_field_and_its_html_references_change_alike() {
        let rename = rename();
        let field = rename
            .rename_field(b"Content-ID: <part1.AbC@sender-mail.example>\r\n")
            .unwrap();
        assert_eq!(field, b"Content-ID: <part1.AbC@relay.example>\r\n");
        let html = b"<img src=\"cid:part1.AbC@sender-mail.example\"><img src='CID:part2%40sender-mail.example'><img src=\"cid:image001.png@01D9\">";
        let out = String::from_utf8(rename.rename_references(html).unwrap()).unwrap();
        assert_eq!(
            out,
            "<img src=\"cid:part1.AbC@relay.example\"><img src='CID:part2%40relay.example'><img src=\"cid:image001.png@01D9\">"
        );
        assert_eq!(rename.rename_references(b"<p>no images</p>"), None);
    }
}
