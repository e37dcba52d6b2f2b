//! Remote content, in a real browser: headless Chromium (Debian's
//! `chromium`, the mail reader that must fetch nothing) opens the HTML of a
//! tracking-heavy newsletter before and after the whole rewrite, with a
//! local HTTP server standing in for every tracker host
//! (`tests/peers/html_fetches.py`). Under `block` the server sees no
//! request and no connection at all; under `keep` it sees the remote
//! images (so the test can fail); the raw input makes Chromium load from
//! every tracker host the fixture names, so each construct is shown to
//! load before it is shown not to. Then the HTML of every forwarded
//! fixture, opened the same way, fetches nothing.

use crate::common;

use std::collections::BTreeSet;

use anonrelay::rewrite::RemoteContent;
use mail_parser::{MessageParser, MimeHeaders, PartType};

use common::{
    output_within_deadline, repo, require, rewrite_as, rewrite_in_process, Sender, PYTHON,
};

const FIXTURE: &str = "fixtures/newsletter-remote-content.eml";
const SENDER: &str = "bob.real@sender-mail.example";
const SENDER_NAME: &str = "Bob Realname";
const ALIAS: &str = "bbbbbbbbbbbbbbbbbbbb@relay.test";
const CONVERSATION_NAME: &str = "Night Owl";
const OLD_CONTENT_ID: &str = "logo@sender-mail.example";

/// Every host the fixture's HTML makes Chromium load from, by construct.
/// Not here, because Chromium loads nothing for them from this page:
/// `<link rel=dns-prefetch>` (a name lookup only, answered by the resolver
/// rules without a request), `<link rel=preconnect>` (a connection without
/// a request: it shows in `connections`, which must be zero under block)
/// and VML in `<!--[if gte mso 9]>` (a comment to every engine but
/// Outlook's).
const LOADED_FROM_RAW: &[&str] = &[
    "pixel.tracker.example",             // 1×1 <img src>
    "protocol-relative.tracker.example", // <img src="//host/…"> (http: through <base>)
    "base.tracker.example",              // <base href> + a relative <img src>
    "entity.tracker.example",            // <img src="&#104;ttp://…">
    "srcset.tracker.example",            // <img srcset>
    "picture-source.tracker.example",    // <picture><source srcset>
    "background-attr.tracker.example",   // <table background=…>
    "style-attr.tracker.example",        // style="background-image: url(…)"
    "style-element.tracker.example",     // <style> … URL(…)
    "css-escape.tracker.example",        // <style> … \75 rl("…")
    "image-set.tracker.example",         // image-set("…" 1x), a string
    "custom-property.tracker.example",   // --x: "…"; image-set(var(--x) 1x)
    "import.tracker.example",            // @import "…" (no url())
    "font-face.tracker.example",         // @font-face { src: url(…) }
    "link-stylesheet.tracker.example",   // <link rel=stylesheet>
    "iframe.tracker.example",            // <iframe src>
    "object.tracker.example",            // <object data>
    "embed.tracker.example",             // <embed src>
    "video-poster.tracker.example",      // <video poster>
    "audio.tracker.example",             // <audio src preload>
    "svg-image.tracker.example",         // <svg><image href>
    "input-image.tracker.example",       // <input type=image src>
    "meta-refresh.tracker.example",      // <meta http-equiv=refresh>
];

/// Constructs removed in either mode: under keep too, none of these hosts
/// may be reached.
const REMOVED_IN_BOTH_MODES: &[&str] = &[
    "protocol-relative.tracker.example",
    "base.tracker.example",
    "picture-source.tracker.example",
    "link-stylesheet.tracker.example",
    "iframe.tracker.example",
    "object.tracker.example",
    "embed.tracker.example",
    "video-poster.tracker.example",
    "audio.tracker.example",
    "svg-image.tracker.example",
    "input-image.tracker.example",
    "meta-refresh.tracker.example",
];

/// Remote images and CSS that keep forwards as the sender wrote them.
const LOADED_UNDER_KEEP: &[&str] = &[
    "pixel.tracker.example",
    "entity.tracker.example",
    "srcset.tracker.example",
    "background-attr.tracker.example",
    "style-attr.tracker.example",
    "style-element.tracker.example",
    "css-escape.tracker.example",
    "image-set.tracker.example",
    "custom-property.tracker.example",
    "import.tracker.example",
];

/// What Chromium fetched while showing one page.
#[derive(Debug, serde::Deserialize)]
pub struct PageFetches {
    pub requests: Vec<Fetch>,
    /// TCP connections accepted, with or without a request.
    pub connections: u64,
}

#[derive(Debug, serde::Deserialize)]
pub struct Fetch {
    pub method: String,
    pub host: String,
    pub path: String,
}

impl PageFetches {
    fn hosts(&self) -> BTreeSet<&str> {
        self.requests.iter().map(|f| f.host.as_str()).collect()
    }

    /// One line per request, for failure messages.
    fn describe(&self) -> String {
        let mut lines = format!("{} connection(s)", self.connections);
        for fetch in &self.requests {
            lines.push_str(&format!(
                "\n  {} http://{}{}",
                fetch.method, fetch.host, fetch.path
            ));
        }
        lines
    }
}

/// Opens each HTML document in headless Chromium (a fresh profile each, as
/// a `file://` page) with every host name resolved to a local counting
/// server, and returns what each made Chromium fetch. Reusable: any HTML
/// the relay forwards can be handed to it.
pub fn chromium_fetches(pages: &[String]) -> Vec<PageFetches> {
    require("chromium", "chromium");
    require(PYTHON, "python3");
    let dir = tempfile::tempdir().expect("a scratch directory");
    let mut command = std::process::Command::new(PYTHON);
    command.arg(repo().join("tests/peers/html_fetches.py"));
    for (index, page) in pages.iter().enumerate() {
        let path = dir.path().join(format!("page-{index}.html"));
        std::fs::write(&path, page).expect("write the page");
        command.arg(path);
    }
    let out = output_within_deadline(command, "tests/peers/html_fetches.py");
    assert!(
        out.status.success(),
        "html_fetches.py failed (is chromium installed? run scripts/install-peers.sh, or \
         `apt-get install chromium`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fetches: Vec<PageFetches> =
        serde_json::from_slice(&out.stdout).expect("html_fetches.py prints JSON");
    assert_eq!(fetches.len(), pages.len(), "one result per page");
    fetches
}

/// A message's HTML parts (decoded) and the Content-IDs of its parts.
fn html_and_content_ids(raw: &[u8]) -> (Vec<String>, Vec<String>) {
    let message = MessageParser::default()
        .parse(raw)
        .expect("mail-parser reads the message");
    let mut html = Vec::new();
    collect_html(&message, &mut html);
    let ids = message
        .parts
        .iter()
        .filter_map(|p| p.content_id())
        .map(str::to_owned)
        .collect();
    (html, ids)
}

fn collect_html(message: &mail_parser::Message<'_>, out: &mut Vec<String>) {
    for part in &message.parts {
        match &part.body {
            PartType::Html(html) => out.push(html.to_string()),
            PartType::Message(inner) => collect_html(inner, out),
            _ => {}
        }
    }
}

fn fixture() -> Vec<u8> {
    let raw = std::fs::read(repo().join(FIXTURE)).expect("read the fixture");
    let message = MessageParser::default()
        .parse(&raw)
        .expect("mail-parser reads the fixture");
    let from = message.from().and_then(|f| f.first());
    assert_eq!(from.and_then(|a| a.address()), Some(SENDER));
    assert_eq!(from.and_then(|a| a.name()), Some(SENDER_NAME));
    raw
}

/// The whole rewrite, as the relay runs it for the newsletter's sender
/// from the client 203.0.113.77.
fn forward(raw: &[u8], remote_content: RemoteContent) -> Vec<u8> {
    let sender = Sender {
        display_name: Some(CONVERSATION_NAME),
        client_ip: "203.0.113.77",
        remote_content,
        ..Sender::new(SENDER)
    };
    rewrite_as(raw, &sender).unwrap_or_else(|e| panic!("rewrite under {remote_content:?}: {e}"))
}

#[test]
fn chromium_fetches_nothing_from_blocked_html_and_the_trackers_from_the_rest() {
    let message = fixture();
    let (raw_html, raw_ids) = html_and_content_ids(&message);
    assert_eq!(raw_ids, [OLD_CONTENT_ID]);
    let raw = raw_html.concat();
    let blocked = html_and_content_ids(&forward(&message, RemoteContent::Block))
        .0
        .concat();
    let kept = html_and_content_ids(&forward(&message, RemoteContent::Keep))
        .0
        .concat();
    let fetches = chromium_fetches(&[raw.clone(), blocked.clone(), kept.clone()]);
    let (from_raw, from_blocked, from_kept) = (&fetches[0], &fetches[1], &fetches[2]);

    let raw_hosts = from_raw.hosts();
    let not_loaded: Vec<_> = LOADED_FROM_RAW
        .iter()
        .filter(|host| !raw_hosts.contains(**host))
        .collect();
    assert!(
        not_loaded.is_empty(),
        "Chromium did not load these constructs from the raw fixture, so the test \
         would not notice them leak: {not_loaded:?}; it loaded {raw_hosts:?}"
    );

    assert!(
        from_blocked.requests.is_empty() && from_blocked.connections == 0,
        "under block Chromium still contacted the tracker server: {}\n{blocked}",
        from_blocked.describe()
    );

    let kept_hosts = from_kept.hosts();
    let missing: Vec<_> = LOADED_UNDER_KEEP
        .iter()
        .filter(|host| !kept_hosts.contains(**host))
        .collect();
    assert!(
        missing.is_empty(),
        "under keep these remote images should load: {missing:?}; loaded {kept_hosts:?}"
    );
    let removed_but_loaded: Vec<_> = REMOVED_IN_BOTH_MODES
        .iter()
        .filter(|host| kept_hosts.contains(**host))
        .collect();
    assert!(
        removed_but_loaded.is_empty(),
        "under keep these constructs must still go: {removed_but_loaded:?}\n{kept}"
    );
}

#[test]
fn scrubbed_newsletter_keeps_its_cid_image_and_loses_the_sender() {
    let message = fixture();
    let (raw, _) = html_and_content_ids(&message);
    assert!(raw.concat().contains(SENDER) && raw.concat().contains(SENDER_NAME));
    for remote in [RemoteContent::Block, RemoteContent::Keep] {
        let (html, ids) = html_and_content_ids(&forward(&message, remote));
        let out = html.concat();
        assert_eq!(ids.len(), 1, "one inline image part");
        assert!(ids[0].ends_with("@relay.test"), "{ids:?}");
        assert!(
            out.contains(&format!("src=\"cid:{}\"", ids[0])),
            "the inline image lost its reference under {remote:?}:\n{out}"
        );
        assert!(
            out.contains("data:image/gif;base64,"),
            "the data: image went under {remote:?}"
        );
        let lower = out.to_lowercase();
        for secret in [
            "bob.real",
            "sender-mail.example",
            "realname",
            "203.0.113.77",
        ] {
            assert!(
                !lower.contains(secret),
                "{secret} survived under {remote:?}:\n{out}"
            );
        }
        assert!(
            out.contains(&format!(
                "{CONVERSATION_NAME} &lt;<a href=\"mailto:{ALIAS}\">{ALIAS}</a>&gt; wrote:"
            )),
            "the Gmail quote header was not rewritten under {remote:?}:\n{out}"
        );
    }
}

/// Every forwarded fixture's HTML, as the relay sends it with the default
/// `block`, makes Chromium fetch nothing.
#[test]
fn no_forwarded_fixture_makes_chromium_fetch_anything() {
    #[derive(serde::Deserialize)]
    struct Manifest {
        fixture: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        file: String,
        expect: String,
        #[serde(default)]
        sender: String,
    }
    let text = std::fs::read_to_string(repo().join("fixtures/manifest.toml")).expect("manifest");
    let manifest: Manifest = toml::from_str(&text).expect("manifest parses");
    let mut pages = Vec::new();
    let mut names = Vec::new();
    for entry in manifest.fixture.iter().filter(|e| e.expect == "forward") {
        let raw = std::fs::read(repo().join("fixtures").join(&entry.file)).expect("fixture");
        let out = rewrite_in_process(&raw, &entry.sender, None)
            .unwrap_or_else(|e| panic!("{}: {e}", entry.file));
        for html in html_and_content_ids(&out).0 {
            pages.push(html);
            names.push(entry.file.clone());
        }
    }
    assert!(pages.len() >= 8, "too few HTML parts: {}", pages.len());
    for (fetches, name) in chromium_fetches(&pages).iter().zip(&names) {
        assert!(
            fetches.requests.is_empty() && fetches.connections == 0,
            "{name}: Chromium contacted the tracker server: {}",
            fetches.describe()
        );
    }
}
