//! Harnesses shared by the fuzz targets (`fuzz/`) and their regression
//! test (`tests/it/fuzz_regressions.rs`): each runs one input and panics if an
//! invariant breaks. Not part of the daemon's behaviour.

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::config::LimitsConfig;
use crate::core::address::Domain;
use crate::core::tokens::ServerSecret;
use crate::deliver::Deliverer;
use crate::in_process::{drive_session, ScriptedStream};
use crate::metrics::Metrics;
use crate::rewrite::{self, check_line_endings};
use crate::route::Router;
use crate::smtp::limits::Limits;
use crate::smtp::{Services, SessionSettings};
use crate::store::{Participant, SqliteStore, UserId};
use crate::upstream::Upstream;

/// Rewrite invariants: whatever `inspect` accepts is forwarded (or
/// refused as too complex or as unreadable S/MIME) CRLF-only with
/// allowlisted headers, mail-parser reads it, and the rebuild is a fixpoint
/// on its own output: rewriting the forwarded message again gives the same
/// parts with the same decoded content (nothing left for a second pass to
/// find or drop). Calendar UIDs differ by design: a token of ours is opened
/// back, as Message-IDs are.
pub fn rewrite_one(data: &[u8]) {
    let Ok(inspected) = rewrite::inspect(data) else {
        return;
    };
    let out = match fuzz_rewrite(&inspected) {
        Ok(out) => out,
        Err(rewrite::RewriteError::TooComplex | rewrite::RewriteError::UnreadableSmime) => return,
        Err(other) => panic!("rewrite refused an inspected message: {other}"),
    };
    check_line_endings(&out).expect("rewrite output has a bare CR or LF");
    let header_end = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header block ends")
        + 4;
    for line in out[..header_end - 4].split(|&b| b == b'\n') {
        if matches!(line.first(), Some(b' ' | b'\t') | None) {
            continue;
        }
        let name = line.split(|&b| b == b':').next().unwrap_or_default();
        let name = String::from_utf8_lossy(name);
        assert!(
            rewrite::is_forwarded_header(name.trim()),
            "header {name:?} is not allowed"
        );
    }
    let again = rewrite::inspect(&out)
        .map_err(|e| e.to_string())
        .and_then(|i| fuzz_rewrite(&i).map_err(|e| e.to_string()))
        .expect("the forwarded message is forwarded again");
    // mail-parser 0.11 trips a debug assertion (and stops reading) on a
    // message/rfc822 whose body is itself message/rfc822, legal MIME that
    // the rebuild keeps; cargo-fuzz builds with debug assertions, so such
    // an output is compared by its bytes below the header instead.
    if nests_a_message_directly(&out) {
        assert_eq!(
            body_without_calendar_uids(&again),
            body_without_calendar_uids(&out),
            "a second rebuild changed the body"
        );
        return;
    }
    assert!(
        mail_parser::MessageParser::new().parse(&out).is_some(),
        "mail-parser cannot read the forwarded message"
    );
    assert_eq!(
        leaves(&again),
        leaves(&out),
        "a second rebuild changed what a reader sees"
    );
}

/// Whether the rebuilt message holds a message/rfc822 part whose own
/// content is message/rfc822 (the relay writes each part's header in one
/// form: its Content-Type line, then the embedded message's fields).
fn nests_a_message_directly(out: &[u8]) -> bool {
    const PART: &[u8] = b"Content-Type: message/rfc822";
    let text = out;
    let mut from = 0;
    while let Some(at) = find(&text[from..], PART).map(|p| p + from) {
        from = at + PART.len();
        // The part's header ends at a blank line; the embedded message's
        // header, which follows, ends at the next.
        let Some(part_end) = find(&text[from..], b"\r\n\r\n").map(|p| from + p + 4) else {
            return false;
        };
        let inner_end = find(&text[part_end..], b"\r\n\r\n").map_or(text.len(), |p| part_end + p);
        if find(&text[part_end..inner_end], b"Content-Type: message/").is_some() {
            return true;
        }
    }
    false
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The body below the top-level header, without iCalendar UID lines
/// (our tokens open back on a second pass, like Message-IDs).
fn body_without_calendar_uids(message: &[u8]) -> String {
    let text = String::from_utf8_lossy(message);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    body.replace("\r\n ", "")
        .lines()
        .filter(|line| !line.starts_with("UID:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every leaf part a reader sees, in order: its type and decoded content
/// (calendars without their UID lines).
fn leaves(message: &[u8]) -> Vec<(String, String)> {
    use mail_parser::{MimeHeaders, PartType};
    fn walk(message: &mail_parser::Message<'_>, out: &mut Vec<(String, String)>) {
        for part in &message.parts {
            let content_type = part
                .content_type()
                .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()))
                .unwrap_or_default();
            match &part.body {
                PartType::Multipart(_) => {}
                PartType::Message(inner) => walk(inner, out),
                _ => {
                    let content = String::from_utf8_lossy(part.contents()).into_owned();
                    let content =
                        if content_type.ends_with("/calendar") || content_type.ends_with("/ics") {
                            content
                                .replace("\r\n ", "")
                                .lines()
                                .filter(|line| !line.starts_with("UID:"))
                                .collect::<Vec<_>>()
                                .join("\n")
                        } else {
                            content
                        };
                    out.push((content_type, content));
                }
            }
        }
    }
    let mut out = Vec::new();
    if let Some(parsed) = mail_parser::MessageParser::new().parse(message) {
        walk(&parsed, &mut out);
    }
    out
}

fn fuzz_rewrite(inspected: &rewrite::Inspected<'_>) -> Result<Vec<u8>, rewrite::RewriteError> {
    let cipher = ServerSecret::from_bytes([7; 32]).message_id_cipher();
    rewrite::rewrite(
        inspected,
        &rewrite::Context {
            alias_domain: "relay.test",
            hostname: "mx.relay.test",
            conversation_id: "c",
            from_alias: "bbbbbbbbbbbbbbbbbbbb",
            sender_address: "b@b.example",
            from_display_name: None,
            to_alias: "aaaaaaaaaaaaaaaaaaaa",
            cipher: &cipher,
            now: 1_800_000_000,
            trace_id: "t",
            client_ip: Some(std::net::Ipv4Addr::new(192, 0, 2, 9).into()),
            client_host: Some("client.b.example"),
            remote_content: rewrite::RemoteContent::Block,
        },
    )
    .map(|rewritten| rewritten.message)
}

struct World {
    runtime: tokio::runtime::Runtime,
    services: Services,
    settings: SessionSettings,
    limits: Arc<Limits>,
    alias_address: String,
    _dir: tempfile::TempDir,
}

/// In-process relay with one conversation, a discarding upstream and
/// generous rate limits (so the fuzzer explores the protocol, not the limits).
fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("fuzz.db")).expect("store");
        let person = |id: &str, email: &str| Participant {
            user_id: UserId::parse(id).expect("id"),
            email: crate::core::address::EmailAddress::parse(email).expect("email"),
            display_name: None,
        };
        let (conv, _) = store
            .database()
            .create_conversation(&person("a", "a@a.example"), &person("b", "b@b.example"), 0)
            .expect("conversation");
        let domain = Domain::parse("relay.test").expect("domain");
        let store: Arc<dyn crate::store::Store> = Arc::new(store);
        let secret = ServerSecret::from_bytes([1; 32]);
        let metrics = Arc::new(Metrics::new());
        let hostname = Domain::parse("mx.relay.test").expect("domain");
        let services = Services {
            router: Arc::new(Router::new(
                Arc::clone(&store),
                &secret,
                domain.clone(),
                false,
            )),
            deliverer: Arc::new(Deliverer::new(
                store,
                Arc::new(Upstream::Discard),
                Arc::clone(&metrics),
                &secret,
                domain.clone(),
                hostname.clone(),
            )),
            metrics,
            hostname,
        };
        let limits = LimitsConfig {
            max_messages_per_client_per_minute: u32::MAX,
            max_failed_rcpts_per_client_per_hour: u32::MAX,
            max_messages_per_alias_per_hour: u32::MAX,
            max_connections_per_client: u32::MAX,
            max_buffered_bytes: 64 << 20,
            ..LimitsConfig::default()
        };
        World {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime"),
            services,
            settings: SessionSettings {
                max_line_length: 512,
                max_message_bytes: 64 * 1024,
                max_errors: 10_000,
                command_timeout: Duration::from_secs(5),
                idle_timeout: Duration::from_secs(5),
                data_timeout: Duration::from_secs(5),
                max_data_time: Duration::from_secs(30),
                session_timeout: Duration::from_secs(60),
                max_header_bytes: 16 * 1024,
                max_transactions: 10_000,
                tls_available: false,
            },
            limits: Limits::from_config(&limits, 0),
            alias_address: format!("{}@{domain}", conv.alias_a),
            _dir: dir,
        }
    })
}

/// Session invariants: any bytes, split at any points, end the session
/// without a panic or hang, and everything written is well-formed replies.
///
/// The first four bytes choose the chunk sizes; `@A@` in the rest stands
/// for the live alias, so seeds can reach DATA.
pub fn session_one(data: &[u8]) -> Vec<u8> {
    let world = world();
    let (seeds, script) = data.split_at(data.len().min(4));
    let script = replace(script, b"@A@", world.alias_address.as_bytes());
    let mut chunks = VecDeque::new();
    let mut rest = script.as_slice();
    let mut index = 0;
    while !rest.is_empty() {
        let size = usize::from(
            seeds
                .get(index % seeds.len().max(1))
                .copied()
                .unwrap_or(255),
        )
        .max(1);
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        chunks.push_back(chunk.to_vec());
        rest = tail;
        index += 1;
    }
    let mut stream = ScriptedStream::new(chunks);
    drive_session(
        &world.runtime,
        &world.services,
        &world.settings,
        &world.limits,
        &mut stream,
        Duration::from_secs(30),
    );
    check_line_endings(&stream.written).expect("a reply with a bare CR or LF");
    for line in stream
        .written
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
    {
        let ok = line.len() >= 5
            && line[..3].iter().all(u8::is_ascii_digit)
            && matches!(line[3], b' ' | b'-')
            && line.ends_with(b"\r");
        assert!(
            ok,
            "malformed reply line {:?}",
            String::from_utf8_lossy(line)
        );
    }
    stream.written
}

fn replace(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(pos) = rest.windows(needle.len()).position(|w| w == needle) {
        out.extend_from_slice(&rest[..pos]);
        out.extend_from_slice(with);
        rest = &rest[pos + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// Seeds for the session target: a dialog around each fixture.
pub fn session_seed(message: &[u8]) -> Vec<u8> {
    let mut seed = vec![7, 200, 1, 64];
    seed.extend_from_slice(
        b"EHLO c.example\r\nMAIL FROM:<b@b.example>\r\nRCPT TO:<@A@>\r\nDATA\r\n",
    );
    let stuffed = replace(message, b"\r\n.", b"\r\n..");
    if stuffed.first() == Some(&b'.') {
        seed.push(b'.');
    }
    seed.extend_from_slice(&stuffed);
    seed.extend_from_slice(b"\r\n.\r\nRSET\r\nQUIT\r\n");
    seed
}
