//! What the body guard costs on hostile bodies at a 25 MiB size limit: the
//! worst inputs for its address matcher and decoders. A measurement, not a
//! test (BENCHMARKS.md has the figures):
//!     cargo run --release --example guard_cost [MIB]

use std::time::Instant;

use anonrelay::rewrite::body::{guard, Identity};

const REAL: &str = "bob.real@sender-mail.example";

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .unwrap_or(25);
    let size = mib * 1024 * 1024;
    let near_misses = "bob.real@sender-mail.exampl ".repeat(size / 28);
    let mut base64_near_misses =
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    for line in data_encoding::BASE64
        .encode(near_misses.as_bytes())
        .as_bytes()
        .chunks(76)
    {
        base64_near_misses.extend_from_slice(line);
        base64_near_misses.extend_from_slice(b"\r\n");
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("near misses", plain(&near_misses)),
        ("all '@'", plain(&"@".repeat(size))),
        ("all 'b'", plain(&"b".repeat(size))),
        ("base64 near misses", base64_near_misses),
        (
            "QP HTML, every line a hit",
            format!(
                "Content-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{}",
                "mailto:bob.real%40sender-mail.example =\r\n".repeat(size / 40)
            )
            .into_bytes(),
        ),
    ];
    let identity = Identity {
        real: REAL,
        alias: "bbbb@relay.example",
    };
    println!("| body ({mib} MiB) | bytes | guard time | changed |");
    println!("|---|---|---|---|");
    for (name, message) in cases {
        let split = message
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(0, |at| at + 4);
        let start = Instant::now();
        let outcome = guard(&message[..split], &message[split..], &identity);
        let elapsed = start.elapsed();
        let changed = match outcome {
            Ok(Some(_)) => "yes",
            Ok(None) => "no",
            Err(_) => "refused",
        };
        println!(
            "| {name} | {} | {:.0} ms | {changed} |",
            message.len(),
            elapsed.as_secs_f64() * 1000.0
        );
    }
}

fn plain(body: &str) -> Vec<u8> {
    format!("Content-Type: text/plain\r\n\r\n{body}").into_bytes()
}
