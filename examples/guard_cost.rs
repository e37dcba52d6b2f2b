//! What the privacy rebuild costs: the whole rewrite (read the MIME tree,
//! scrub every text, write the new message) on hostile bodies at a 25 MiB
//! size limit, and per message on the fixture corpus. A measurement, not a
//! test (BENCHMARKS.md has the figures):
//!     cargo run --release --example guard_cost [MIB]

use std::time::Instant;

use anonrelay::core::tokens::ServerSecret;
use anonrelay::rewrite::{self, Context, RemoteContent};

const REAL: &str = "bob.real@sender-mail.example";

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(25);
    let size = mib * 1024 * 1024;
    let near_misses = "bob.real@sender-mail.exampl ".repeat(size / 28);
    let mut base64_near_misses = header("text/plain", "base64");
    for line in data_encoding::BASE64
        .encode(near_misses.as_bytes())
        .as_bytes()
        .chunks(76)
    {
        base64_near_misses.extend_from_slice(line);
        base64_near_misses.extend_from_slice(b"\r\n");
    }
    let mut attachment = header("application/pdf", "base64");
    let bytes: Vec<u8> = (0..size * 3 / 4).map(|i| (i * 7919 % 251) as u8).collect();
    for line in data_encoding::BASE64.encode(&bytes).as_bytes().chunks(76) {
        attachment.extend_from_slice(line);
        attachment.extend_from_slice(b"\r\n");
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("near misses", plain(&near_misses)),
        ("all '@'", plain(&"@".repeat(size))),
        ("all 'b'", plain(&"b".repeat(size))),
        ("base64 near misses", base64_near_misses),
        (
            "QP HTML, every line a hit",
            [
                header("text/html", "quoted-printable"),
                "<a href=3D\"mailto:bob.real%40sender-mail.example\">x</a> =\r\n"
                    .repeat(size / 60)
                    .into_bytes(),
            ]
            .concat(),
        ),
        ("base64 PDF attachment", attachment),
    ];
    println!("| body ({mib} MiB) | bytes | rewrite time | outcome |");
    println!("|---|---|---|---|");
    for (name, message) in cases {
        let start = Instant::now();
        let outcome = forward(&message);
        let elapsed = start.elapsed();
        let outcome = match outcome {
            Ok(out) => format!("{} bytes out", out.len()),
            Err(err) => format!("refused: {err}"),
        };
        println!(
            "| {name} | {} | {:.0} ms | {outcome} |",
            message.len(),
            elapsed.as_secs_f64() * 1000.0
        );
    }
    fixture_mix();
}

/// Every forwardable fixture, rewritten 200 times: the cost per message of
/// real client shapes.
fn fixture_mix() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut corpus = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("fixtures/") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.extension().is_some_and(|e| e == "eml") && !name.starts_with("hostile") {
            corpus.push(std::fs::read(&path).expect("fixture"));
        }
    }
    let rounds = 200;
    let bytes: usize = corpus.iter().map(Vec::len).sum();
    let start = Instant::now();
    let mut forwarded = 0;
    for _ in 0..rounds {
        for message in &corpus {
            forwarded += usize::from(forward(message).is_ok());
        }
    }
    let elapsed = start.elapsed();
    let messages = rounds * corpus.len();
    println!();
    println!(
        "fixture mix: {} messages ({} fixtures, {:.1} KiB mean), {forwarded} forwarded, {:.1} µs per message, {:.1} MB/s",
        messages,
        corpus.len(),
        bytes as f64 / corpus.len() as f64 / 1024.0,
        elapsed.as_secs_f64() * 1e6 / messages as f64,
        (bytes * rounds) as f64 / elapsed.as_secs_f64() / 1e6
    );
}

fn forward(message: &[u8]) -> Result<Vec<u8>, rewrite::RewriteError> {
    let cipher = ServerSecret::from_bytes([7; 32]).message_id_cipher();
    let inspected = rewrite::inspect(message)?;
    rewrite::rewrite(
        &inspected,
        &Context {
            alias_domain: "relay.example",
            hostname: "mx.relay.example",
            conversation_id: "c",
            from_alias: "bbbbbbbbbbbbbbbbbbbb",
            sender_address: REAL,
            from_display_name: Some("Night Owl"),
            to_alias: "aaaaaaaaaaaaaaaaaaaa",
            cipher: &cipher,
            now: 1_800_000_000,
            trace_id: "t",
            client_ip: Some("203.0.113.77".parse().expect("IP")),
            client_host: Some("bobs-laptop.sender-mail.example"),
            remote_content: RemoteContent::Block,
        },
    )
    .map(|rewritten| rewritten.message)
}

fn header(content_type: &str, encoding: &str) -> Vec<u8> {
    format!(
        "From: Bob Realname <{REAL}>\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n"
    )
    .into_bytes()
}

fn plain(body: &str) -> Vec<u8> {
    [header("text/plain", "8bit"), body.as_bytes().to_vec()].concat()
}
