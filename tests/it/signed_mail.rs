//! S/MIME blobs made by the real openssl (Debian package `openssl`), read
//! by `rewrite::cms::classify`: each is what openssl made, and an opaque
//! signature's content is byte for byte the MIME entity that
//! `openssl smime -verify -noverify` extracts — what the reader's client
//! would show, and what the relay must scrub instead of passing on.

use std::path::{Path, PathBuf};
use std::process::Command;

use anonrelay::rewrite::cms::{classify, Cms};

/// The entity a sender signs: multipart/alternative quoting their address.
/// Written with bare LF, as a local file is: text-mode signing makes it
/// canonical (CRLF), so the signed bytes differ from these.
const ENTITY: &str = "Content-Type: multipart/alternative; boundary=\"alt\"\n\n--alt\nContent-Type: text/plain; charset=us-ascii\n\nKind regards\nRobert Realname <bob.real@example.net>\n\n--alt\nContent-Type: text/html; charset=us-ascii\n\n<p>Kind regards<br><a href=\"mailto:bob.real@example.net\">Robert Realname</a></p>\n\n--alt--\n";

struct Signer {
    dir: tempfile::TempDir,
}

impl Signer {
    /// A throwaway key and self-signed certificate naming the sender.
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let signer = Self { dir };
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
            &signer.file("key.pem"),
            "-out",
            &signer.file("cert.pem"),
        ]);
        std::fs::write(signer.path("entity.eml"), ENTITY).expect("write entity");
        signer
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn file(&self, name: &str) -> String {
        path_text(&self.path(name))
    }

    /// `openssl <command> -signer … -inkey … -in entity.eml -outform DER`.
    fn sign(&self, command: &[&str]) -> Vec<u8> {
        let (cert, key, entity) = (
            self.file("cert.pem"),
            self.file("key.pem"),
            self.file("entity.eml"),
        );
        let mut args = command.to_vec();
        args.extend([
            "-signer", &cert, "-inkey", &key, "-in", &entity, "-outform", "DER",
        ]);
        openssl(&args)
    }

    /// `openssl <command> -in entity.eml -outform DER cert.pem`.
    fn encrypt(&self, command: &[&str]) -> Vec<u8> {
        let (cert, entity) = (self.file("cert.pem"), self.file("entity.eml"));
        let mut args = command.to_vec();
        args.extend(["-in", &entity, "-outform", "DER", &cert]);
        openssl(&args)
    }

    /// What the reader's openssl extracts from an opaque signature.
    fn verified_content(&self, blob: &[u8], command: &str) -> Vec<u8> {
        let path = self.path("blob.der");
        std::fs::write(&path, blob).expect("write blob");
        openssl(&[
            command,
            "-verify",
            "-noverify",
            "-inform",
            "DER",
            "-in",
            &path_text(&path),
        ])
    }
}

fn path_text(path: &Path) -> String {
    path.to_str().expect("temp paths are UTF-8").to_owned()
}

/// Runs the real openssl; a missing binary fails naming the package.
fn openssl(args: &[&str]) -> Vec<u8> {
    let output = match Command::new("openssl").args(args).output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "openssl is not installed: install the Debian package `openssl` (scripts/install-peers.sh)"
        ),
        Err(e) => panic!("cannot run openssl: {e}"),
    };
    assert!(
        output.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn content_of(blob: &[u8]) -> Option<Vec<u8>> {
    match classify(blob) {
        Ok(Cms::SignedData { content }) => content,
        other => panic!("openssl made signed data, classify read {other:?}"),
    }
}

#[test]
fn opaque_signature_content_is_the_entity_openssl_verifies() {
    let signer = Signer::new();
    let blob = signer.sign(&["smime", "-sign", "-nodetach"]);
    let content = content_of(&blob).expect("an opaque signature carries content");
    let verified = signer.verified_content(&blob, "smime");
    assert_eq!(content, verified);
    // The canonical form was signed, not the file: CRLF throughout.
    assert_eq!(verified, ENTITY.replace('\n', "\r\n").into_bytes());
}

#[test]
fn streamed_ber_signature_content_is_the_entity_openssl_verifies() {
    let signer = Signer::new();
    let blob = signer.sign(&["cms", "-sign", "-nodetach", "-stream"]);
    // BER: indefinite lengths and a constructed (chunked) OCTET STRING.
    assert_eq!(blob[..2], [0x30, 0x80], "openssl -stream wrote BER");
    assert!(blob.windows(2).any(|w| w == [0x24, 0x80]));
    let content = content_of(&blob).expect("an opaque signature carries content");
    assert_eq!(content, signer.verified_content(&blob, "cms"));
}

/// Whether openssl's own dump of the blob shows no encapsulated content.
fn openssl_sees_detached(signer: &Signer, blob: &[u8]) -> bool {
    let path = signer.path("dump.der");
    std::fs::write(&path, blob).expect("write blob");
    let dump = openssl(&[
        "cms",
        "-cmsout",
        "-print",
        "-inform",
        "DER",
        "-in",
        &path_text(&path),
    ]);
    String::from_utf8_lossy(&dump).contains("eContent: <ABSENT>")
}

#[test]
fn detached_signature_carries_no_content() {
    let signer = Signer::new();
    for command in [&["smime", "-sign"][..], &["cms", "-sign"]] {
        let blob = signer.sign(command);
        assert!(openssl_sees_detached(&signer, &blob), "{command:?}");
        assert_eq!(content_of(&blob), None, "{command:?}");
    }
    // `cms -sign -stream` to DER embeds the content although cms detaches
    // by default: openssl's dump and classify agree on that too.
    let streamed = signer.sign(&["cms", "-sign", "-stream"]);
    assert!(!openssl_sees_detached(&signer, &streamed));
    assert!(content_of(&streamed).is_some());
}

#[test]
fn encrypted_blobs_are_named_for_what_openssl_made() {
    let signer = Signer::new();
    let enveloped = signer.encrypt(&["smime", "-encrypt", "-aes256"]);
    assert_eq!(classify(&enveloped).ok(), Some(Cms::EnvelopedData));
    let streamed = signer.encrypt(&["cms", "-encrypt", "-aes256", "-stream"]);
    assert_eq!(classify(&streamed).ok(), Some(Cms::EnvelopedData));
    let authenticated = signer.encrypt(&["cms", "-encrypt", "-aes-256-gcm"]);
    assert_eq!(classify(&authenticated).ok(), Some(Cms::AuthEnvelopedData));
}

/// The base64 body of a single-part fixture, or of the part whose header
/// names `filename`.
fn base64_blob(fixture: &str, filename: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(fixture);
    let text = std::fs::read_to_string(&path).expect("read fixture");
    let start = text
        .find(&format!("filename=\"{filename}\""))
        .and_then(|at| text[at..].find("\r\n\r\n").map(|end| at + end + 4))
        .expect("the part's header");
    let encoded: String = text[start..]
        .lines()
        .take_while(|line| !line.trim().is_empty() && !line.starts_with("--"))
        .collect();
    data_encoding::BASE64
        .decode(encoded.as_bytes())
        .expect("base64")
}

#[test]
fn the_committed_fixtures_hold_what_they_claim() {
    // fixtures/make-signed.sh: the opaque one is streamed BER, like Outlook's.
    let opaque = base64_blob("smime-opaque-signed.eml", "smime.p7m");
    assert_eq!(opaque[..2], [0x30, 0x80]);
    let content = content_of(&opaque).expect("content");
    let signer = Signer::new();
    assert_eq!(content, signer.verified_content(&opaque, "smime"));
    let text = String::from_utf8(content).expect("a MIME entity is text");
    assert!(text.starts_with("Content-Type: multipart/alternative;"));
    assert!(text.contains("bob.real@example.net"));

    let detached = base64_blob("smime-detached-signed.eml", "smime.p7s");
    assert_eq!(content_of(&detached), None);
}
