//! What an S/MIME `application/pkcs7-mime` blob is (a CMS ContentInfo,
//! RFC 5652), and for opaque signed data the MIME entity it carries.
//!
//! An opaque signature wraps the whole signed message *and* the signer's
//! certificate (name, address): the caller forwards only the content,
//! parsed and scrubbed like any part. Certificates, CRLs and signer infos
//! are skipped, never returned.
//!
//! Real senders write BER, not only DER (`openssl cms -sign -stream`,
//! Outlook): indefinite lengths and the content as a constructed OCTET
//! STRING in chunks. `bcder` reads BER; the DER-only `der` crate cannot.
//!
//! Bounds: the blob is at most [`MAX_BLOB_BYTES`]; no value nests deeper
//! than [`MAX_DEPTH`] (bcder skips values without recursion, and the one
//! recursive walk here, through chunked OCTET STRINGs, counts its depth);
//! the content returned is a concatenation of chunks of the blob, so never
//! longer than the blob.

use std::cell::Cell;
use std::convert::Infallible;

use bcder::decode::{Constructed, Content, ContentError, DecodeError, SliceSource};
use bcder::{Mode, Tag};

/// The largest blob read: the relay's message size limit is of this order.
pub const MAX_BLOB_BYTES: usize = 25 * 1024 * 1024;
/// Deepest nesting accepted anywhere in the blob. Real CMS nests about ten
/// levels (certificate extensions); chunked content two or three.
pub const MAX_DEPTH: usize = 64;

/// Content types, as the contents octets of their OBJECT IDENTIFIER.
mod oid {
    /// id-data, 1.2.840.113549.1.7.1
    pub const DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
    /// id-signedData, 1.2.840.113549.1.7.2
    pub const SIGNED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
    /// id-envelopedData, 1.2.840.113549.1.7.3
    pub const ENVELOPED_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03];
    /// id-ct-authEnvelopedData, 1.2.840.113549.1.9.16.1.23
    pub const AUTH_ENVELOPED_DATA: &[u8] = &[
        0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x17,
    ];
    /// id-ct-compressedData, 1.2.840.113549.1.9.16.1.9
    pub const COMPRESSED_DATA: &[u8] = &[
        0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x09,
    ];
}

/// What a blob is. Only signed data is looked into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cms {
    /// `content`: the encapsulated content octets (for S/MIME, a MIME
    /// entity); `None` for a detached signature or a certs-only message.
    SignedData {
        content: Option<Vec<u8>>,
    },
    EnvelopedData,
    AuthEnvelopedData,
    CompressedData,
    /// Any other content type (digested, encrypted, authenticated data…).
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum CmsError {
    #[error("CMS blob of {0} bytes is over the {MAX_BLOB_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("CMS blob nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    /// Signed content that is not id-data cannot be a MIME entity.
    #[error("signed content is not of type id-data")]
    SignedContentNotData,
    #[error("malformed CMS blob: {0}")]
    Malformed(String),
}

/// Reads the ContentInfo in `blob` (BER or DER, nothing after it).
pub fn classify(blob: &[u8]) -> Result<Cms, CmsError> {
    if blob.len() > MAX_BLOB_BYTES {
        return Err(CmsError::TooLarge(blob.len()));
    }
    let too_deep = Cell::new(false);
    let walk = Walk {
        too_deep: &too_deep,
    };
    let mut source = SliceSource::new(blob);
    let parsed = Constructed::decode(&mut source, Mode::Ber, |cons| {
        cons.take_sequence(|info| walk.content_info(info))
    });
    // bcder reads one value and stops; what follows it is not ours to drop.
    if parsed.is_ok() && !source.is_empty() {
        return Err(CmsError::Malformed(format!(
            "{} bytes after the ContentInfo",
            source.len()
        )));
    }
    match parsed {
        Err(_) if too_deep.get() => Err(CmsError::TooDeep),
        Err(error) => Err(CmsError::Malformed(error.to_string())),
        Ok(Parsed::Signed {
            data: false,
            content: Some(_),
        }) => Err(CmsError::SignedContentNotData),
        Ok(Parsed::Signed { content, .. }) => Ok(Cms::SignedData { content }),
        Ok(Parsed::Unread(kind)) => Ok(kind),
    }
}

enum Parsed {
    Signed {
        /// Whether eContentType is id-data.
        data: bool,
        content: Option<Vec<u8>>,
    },
    Unread(Cms),
}

type Error = DecodeError<Infallible>;
type Cons<'a, 's, 'b> = Constructed<'a, &'s mut SliceSource<'b>>;

/// One walk through a blob; remembers whether it stopped for depth, which
/// bcder's error only carries as text.
struct Walk<'c> {
    too_deep: &'c Cell<bool>,
}

impl Walk<'_> {
    /// ContentInfo ::= SEQUENCE { contentType OID, content [0] EXPLICIT ANY }
    fn content_info(&self, info: &mut Cons<'_, '_, '_>) -> Result<Parsed, Error> {
        let content_type = take_oid(info)?;
        if content_type != oid::SIGNED_DATA {
            self.skip_rest(info, 1)?;
            return Ok(Parsed::Unread(kind_of(&content_type)));
        }
        info.take_constructed_if(Tag::CTX_0, |explicit| {
            explicit.take_sequence(|signed| self.signed_data(signed))
        })
    }

    /// SignedData ::= SEQUENCE { version, digestAlgorithms SET,
    /// encapContentInfo, [0] certificates, [1] crls, signerInfos SET }
    fn signed_data(&self, signed: &mut Cons<'_, '_, '_>) -> Result<Parsed, Error> {
        signed.take_primitive_if(Tag::INTEGER, |version| version.skip_all())?;
        signed.take_constructed_if(Tag::SET, |digests| self.skip_rest(digests, 4))?;
        let (data, content) = signed.take_sequence(|encap| {
            let content_type = take_oid(encap)?;
            let content = encap.take_opt_constructed_if(Tag::CTX_0, |explicit| {
                let mut octets = Vec::new();
                explicit.take_value_if(Tag::OCTET_STRING, |string| {
                    self.append_octets(string, &mut octets, 5)
                })?;
                Ok(octets)
            })?;
            Ok((content_type == oid::DATA, content))
        })?;
        // Certificates, CRLs and signer infos name the signer: skipped.
        self.skip_rest(signed, 3)?;
        Ok(Parsed::Signed { data, content })
    }

    /// An OCTET STRING's octets, primitive or (BER) chunked, appended.
    fn append_octets(
        &self,
        string: &mut Content<'_, &mut SliceSource<'_>>,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), Error> {
        match string {
            Content::Primitive(chunk) => chunk.with_slice_all(|octets| {
                out.extend_from_slice(octets);
                Ok::<_, ContentError>(())
            }),
            Content::Constructed(chunks) => {
                if depth >= MAX_DEPTH {
                    self.too_deep.set(true);
                    return Err(chunks.content_err("nested too deep"));
                }
                while chunks
                    .take_opt_value_if(Tag::OCTET_STRING, |chunk| {
                        self.append_octets(chunk, out, depth + 1)
                    })?
                    .is_some()
                {}
                Ok(())
            }
        }
    }

    /// Skips every remaining value of `cons`, which stands `depth` levels
    /// deep, without recursion but within [`MAX_DEPTH`].
    fn skip_rest(&self, cons: &mut Cons<'_, '_, '_>, depth: usize) -> Result<(), Error> {
        let within_depth = |_, _, level: usize| {
            if depth + level >= MAX_DEPTH {
                self.too_deep.set(true);
                Err(ContentError::from("nested too deep"))
            } else {
                Ok(())
            }
        };
        // `skip_opt` answers `None` at the end of `cons` (having read an
        // indefinite value's end-of-contents).
        while cons.skip_opt(within_depth)?.is_some() {}
        Ok(())
    }
}

fn take_oid(cons: &mut Cons<'_, '_, '_>) -> Result<Vec<u8>, Error> {
    cons.take_primitive_if(Tag::OID, |oid| {
        oid.with_slice_all(|octets| Ok::<_, ContentError>(octets.to_vec()))
    })
}

fn kind_of(content_type: &[u8]) -> Cms {
    match content_type {
        oid::ENVELOPED_DATA => Cms::EnvelopedData,
        oid::AUTH_ENVELOPED_DATA => Cms::AuthEnvelopedData,
        oid::COMPRESSED_DATA => Cms::CompressedData,
        _ => Cms::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::sync::OnceLock;

    /// The signed entity: a MIME part quoting the signer's address.
    const ENTITY: &[u8] = b"Content-Type: text/plain; charset=utf-8\r\n\r\nSee you Saturday.\r\n-- \r\nRobert Realname <bob.real@example.net>\r\n";

    /// A throwaway signer made once per test run by the real openssl.
    struct Pki {
        dir: tempfile::TempDir,
    }

    impl Pki {
        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }
    }

    fn pki() -> &'static Pki {
        static PKI: OnceLock<Pki> = OnceLock::new();
        PKI.get_or_init(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let pki = Pki { dir };
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=Robert Realname/emailAddress=bob.real@example.net",
                "-keyout",
                path_str(&pki.path("key.pem")),
                "-out",
                path_str(&pki.path("cert.pem")),
            ]);
            std::fs::write(pki.path("entity.eml"), ENTITY).expect("write entity");
            pki
        })
    }

    fn path_str(path: &Path) -> &str {
        path.to_str().expect("temp paths are UTF-8")
    }

    /// Runs the real openssl; a missing binary names the Debian package.
    fn openssl(args: &[&str]) -> Vec<u8> {
        let output = match Command::new("openssl").args(args).output() {
            Ok(output) => output,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("openssl is not installed: install the Debian package `openssl` (scripts/install-peers.sh)")
            }
            Err(e) => panic!("cannot run openssl: {e}"),
        };
        assert!(
            output.status.success(),
            "openssl {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    }

    /// `openssl CMD ... -in entity.eml -outform DER` with the signer's files.
    fn made_by_openssl(command: &[&str]) -> Vec<u8> {
        let pki = pki();
        let mut args: Vec<&str> = command.to_vec();
        let cert = pki.path("cert.pem");
        let key = pki.path("key.pem");
        let entity = pki.path("entity.eml");
        let is_encrypt = command.contains(&"-encrypt");
        if !is_encrypt {
            args.extend(["-signer", path_str(&cert), "-inkey", path_str(&key)]);
        }
        args.extend(["-in", path_str(&entity), "-outform", "DER"]);
        if is_encrypt {
            args.push(path_str(&cert));
        }
        openssl(&args)
    }

    fn signed_content(blob: &[u8]) -> Option<Vec<u8>> {
        match classify(blob) {
            Ok(Cms::SignedData { content }) => content,
            other => panic!("expected signed data, got {other:?}"),
        }
    }

    #[test]
    fn opaque_der_signature_yields_the_exact_signed_entity() {
        let blob = made_by_openssl(&["smime", "-sign", "-nodetach", "-binary"]);
        assert_eq!(signed_content(&blob).as_deref(), Some(ENTITY));
    }

    #[test]
    fn streamed_ber_signature_yields_the_exact_signed_entity() {
        let blob = made_by_openssl(&["cms", "-sign", "-nodetach", "-binary", "-stream"]);
        // The blob really is BER: an indefinite length on the outer SEQUENCE
        // and the content as a constructed OCTET STRING (0x24 0x80).
        assert_eq!(blob[..2], [0x30, 0x80]);
        assert!(blob.windows(2).any(|w| w == [0x24, 0x80]));
        assert_eq!(signed_content(&blob).as_deref(), Some(ENTITY));
    }

    #[test]
    fn detached_signature_has_no_content() {
        let blob = made_by_openssl(&["smime", "-sign", "-binary"]);
        assert_eq!(signed_content(&blob), None);
    }

    #[test]
    fn encrypted_blobs_are_named_not_read() {
        let enveloped = made_by_openssl(&["smime", "-encrypt", "-aes256"]);
        assert_eq!(classify(&enveloped).ok(), Some(Cms::EnvelopedData));
        let auth = made_by_openssl(&["cms", "-encrypt", "-aes-256-gcm"]);
        assert_eq!(classify(&auth).ok(), Some(Cms::AuthEnvelopedData));
    }

    fn content_info(content_type: &[u8], content: &[u8]) -> Vec<u8> {
        let mut inner = crate::core::der::der_element(0x06, content_type);
        inner.extend(crate::core::der::der_element(0xa0, content));
        crate::core::der::der_element(0x30, &inner)
    }

    /// A minimal SignedData around `econtent` (an OCTET STRING's encoding)
    /// with `extra` standing for certificates and signer infos.
    fn signed_data(econtent_type: &[u8], econtent: &[u8], extra: &[u8]) -> Vec<u8> {
        let mut encap = crate::core::der::der_element(0x06, econtent_type);
        encap.extend(crate::core::der::der_element(0xa0, econtent));
        let mut signed = crate::core::der::der_element(0x02, &[1]);
        signed.extend(crate::core::der::der_element(0x31, &[]));
        signed.extend(crate::core::der::der_element(0x30, &encap));
        signed.extend_from_slice(extra);
        content_info(
            oid::SIGNED_DATA,
            &crate::core::der::der_element(0x30, &signed),
        )
    }

    #[test]
    fn compressed_and_unknown_types_are_named() {
        // Debian's openssl has no zlib for `cms -compress`: made by hand.
        let compressed = content_info(
            oid::COMPRESSED_DATA,
            &crate::core::der::der_element(0x30, &crate::core::der::der_element(0x02, &[0])),
        );
        assert_eq!(classify(&compressed).ok(), Some(Cms::CompressedData));
        let digested = content_info(
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x05],
            &crate::core::der::der_element(0x30, &[]),
        );
        assert_eq!(classify(&digested).ok(), Some(Cms::Other));
    }

    #[test]
    fn signed_content_must_be_data() {
        let handmade = signed_data(
            oid::DATA,
            &crate::core::der::der_element(0x04, b"hi"),
            &crate::core::der::der_element(0x31, &[]),
        );
        assert_eq!(
            classify(&handmade).ok(),
            Some(Cms::SignedData {
                content: Some(b"hi".to_vec())
            })
        );
        let not_mime = signed_data(
            oid::ENVELOPED_DATA,
            &crate::core::der::der_element(0x04, b"hi"),
            &crate::core::der::der_element(0x31, &[]),
        );
        assert!(matches!(
            classify(&not_mime),
            Err(CmsError::SignedContentNotData)
        ));
    }

    #[test]
    fn truncated_and_trailing_bytes_are_malformed() {
        let blob = made_by_openssl(&["cms", "-sign", "-nodetach", "-binary", "-stream"]);
        for cut in [0, 1, 2, 20, blob.len() / 2, blob.len() - 1] {
            assert!(
                matches!(classify(&blob[..cut]), Err(CmsError::Malformed(_))),
                "cut at {cut}"
            );
        }
        let mut trailing = made_by_openssl(&["smime", "-sign", "-nodetach", "-binary"]);
        trailing.extend_from_slice(b"\x00\x00junk");
        assert!(matches!(classify(&trailing), Err(CmsError::Malformed(_))));
    }

    #[test]
    fn absurd_lengths_are_malformed() {
        // A SEQUENCE claiming 4 GiB, and one claiming 2^64 - 1 octets.
        for header in [
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff][..],
            &[0x30, 0x88, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ] {
            let mut blob = header.to_vec();
            blob.extend(crate::core::der::der_element(0x06, oid::SIGNED_DATA));
            assert!(matches!(classify(&blob), Err(CmsError::Malformed(_))));
        }
        // An OCTET STRING chunk longer than what is left.
        let lying = signed_data(oid::DATA, &[0x04, 0x82, 0x10, 0x00, b'x'], &[]);
        assert!(matches!(classify(&lying), Err(CmsError::Malformed(_))));
    }

    /// `count` nested indefinite-length constructed values of `tag`.
    fn nested(tag: u8, count: usize, innermost: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..count {
            out.extend([tag, 0x80]);
        }
        out.extend_from_slice(innermost);
        for _ in 0..count {
            out.extend([0x00, 0x00]);
        }
        out
    }

    #[test]
    fn ten_thousand_nested_tags_are_too_deep_not_a_crash() {
        // In the certificates, where the walk only skips.
        let certificates = nested(0xa0, 10_000, &[]);
        let blob = signed_data(
            oid::DATA,
            &crate::core::der::der_element(0x04, b"hi"),
            &certificates,
        );
        assert!(matches!(classify(&blob), Err(CmsError::TooDeep)));
        // In the content, a chunked OCTET STRING the walk descends into.
        let chunks = nested(0x24, 10_000, &crate::core::der::der_element(0x04, b"hi"));
        let blob = signed_data(oid::DATA, &chunks, &[]);
        assert!(matches!(classify(&blob), Err(CmsError::TooDeep)));
        // The same at a depth real senders use is read.
        let chunks = nested(0x24, 3, &crate::core::der::der_element(0x04, b"hi"));
        let blob = signed_data(oid::DATA, &chunks, &[]);
        assert_eq!(signed_content(&blob).as_deref(), Some(&b"hi"[..]));
    }

    #[test]
    fn a_blob_over_the_limit_is_refused_before_reading() {
        let blob = vec![0u8; MAX_BLOB_BYTES + 1];
        assert!(matches!(classify(&blob), Err(CmsError::TooLarge(_))));
        assert!(matches!(classify(&[]), Err(CmsError::Malformed(_))));
    }
}
