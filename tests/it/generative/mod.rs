//! The generative proof of issue 11: thousands of random MIME trees, the
//! sender's address, display name (beside the address), client IP, client
//! host name and a provider fingerprint planted at random places
//! (`plant.rs`), each rewritten as the relay rewrites it. No planted
//! secret may survive in the output as a reader sees it — read by two
//! parsers, Python's `email` (tests/peers/reader_view.py: every part
//! decoded, RFC 2231 sections joined, HTML and URL escapes resolved,
//! iCalendar unfolded) and mail-parser — except inside an attachment's
//! content, which is forwarded as the sender attached it. Each output must
//! parse into the input's structure minus the parts the policy removes.
//!
//! `ANONRELAY_GENERATIVE_CASES` (default 10,000) and
//! `ANONRELAY_GENERATIVE_SEED` run more or other cases. A failing input is
//! written to `target/generative-failures/` with its seed: make it a
//! fixture.

use crate::common;
mod plant;

use std::path::{Path, PathBuf};

use anonrelay::rewrite;
use rand::SeedableRng;

use common::mime_check::{decode, reader_views, shows, structure};
use plant::{Planter, ADDRESS, FINGERPRINT, HOST, IP, SECRETS};

const BATCH: usize = 1_000;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn forward(raw: &[u8]) -> Result<Vec<u8>, rewrite::RewriteError> {
    common::rewrite_as(
        raw,
        &common::Sender {
            display_name: Some("Night Owl"),
            client_ip: IP,
            client_host: HOST,
            ..common::Sender::new(ADDRESS)
        },
    )
}

/// Keeps a failing input for a fixture and fails with its seed.
fn fail(seed: u64, raw: &[u8], why: &str) -> ! {
    let dir = common::repo().join("target/generative-failures");
    std::fs::create_dir_all(&dir).expect("failure directory");
    let path = dir.join(format!("seed-{seed}.eml"));
    std::fs::write(&path, raw).expect("write the failing input");
    panic!("seed {seed} ({}): {why}", path.display());
}

#[test]
fn planted_secrets_never_reach_a_reader() {
    let cases = env_number("ANONRELAY_GENERATIVE_CASES", 10_000);
    let first_seed = env_number("ANONRELAY_GENERATIVE_SEED", 0x1111);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut checked = 0;
    let mut seeds: Vec<u64> = (first_seed..first_seed + cases).collect();
    while !seeds.is_empty() {
        let batch: Vec<u64> = seeds.drain(..seeds.len().min(BATCH)).collect();
        checked += check_batch(dir.path(), &batch);
    }
    assert_eq!(checked, cases as usize, "every case was rewritten and read");
}

/// Rewrites one batch, checks each output with mail-parser, then reads
/// inputs and outputs with Python in one process.
fn check_batch(dir: &Path, seeds: &[u64]) -> usize {
    let mut cases: Vec<(u64, Vec<u8>, Vec<u8>)> = Vec::new();
    for &seed in seeds {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let raw = Planter::new(&mut rng).message().raw;
        let out = match forward(&raw) {
            Ok(out) => out,
            Err(err) => fail(seed, &raw, &format!("refused: {err}")),
        };
        check_with_mail_parser(seed, &raw, &out);
        cases.push((seed, raw, out));
    }
    let mut files: Vec<PathBuf> = Vec::new();
    for (seed, raw, out) in &cases {
        for (suffix, bytes) in [("in", raw), ("out", out)] {
            let path = dir.join(format!("{seed}-{suffix}.eml"));
            std::fs::write(&path, bytes).expect("write");
            files.push(path);
        }
    }
    let paths: Vec<(&Path, &str)> = files.iter().map(|p| (p.as_path(), ADDRESS)).collect();
    let views = reader_views(&paths);
    for (index, (seed, raw, out)) in cases.iter().enumerate() {
        let (before, after) = (&views[2 * index], &views[2 * index + 1]);
        for secret in SECRETS {
            if let Some(text) = after.shows(secret) {
                fail(
                    *seed,
                    raw,
                    &format!("Python's reader is shown `{secret}` in:\n{text}"),
                );
            }
        }
        if after.structure != before.expected {
            fail(
                *seed,
                raw,
                &format!(
                    "structure {} is not the input's minus the removed parts {}",
                    after.structure, before.expected
                ),
            );
        }
        // mail-parser 0.11 stops reading after a message/rfc822 whose body
        // is itself message/rfc822 (legal MIME; its debug_assert marks the
        // spot): Python's reading alone counts for those.
        if nests_a_message_directly(&after.structure) {
            continue;
        }
        let mail_parser_reads = structure(out);
        if mail_parser_reads != after.structure {
            fail(
                *seed,
                raw,
                &format!(
                    "mail-parser reads {mail_parser_reads}, Python {}",
                    after.structure
                ),
            );
        }
    }
    for file in files {
        let _ = std::fs::remove_file(file);
    }
    cases.len()
}

fn nests_a_message_directly(node: &serde_json::Value) -> bool {
    let children = node["children"].as_array();
    let is_message = |n: &serde_json::Value| n["type"] == "message/rfc822";
    (is_message(node) && children.is_some_and(|c| c.iter().any(is_message)))
        || children.is_some_and(|c| c.iter().any(nests_a_message_directly))
}

fn check_with_mail_parser(seed: u64, raw: &[u8], out: &[u8]) {
    if rewrite::check_line_endings(out).is_err() {
        fail(seed, raw, "bare CR or LF in the output");
    }
    let lowered = String::from_utf8_lossy(out).to_lowercase();
    if lowered.contains(&FINGERPRINT.to_lowercase()) {
        fail(
            seed,
            raw,
            "the provider fingerprint is in the output's bytes",
        );
    }
    let Ok(decoded) = std::panic::catch_unwind(|| decode(out)) else {
        fail(seed, raw, "mail-parser panicked reading the output");
    };
    for secret in SECRETS {
        if let Some(header) = decoded.headers.iter().find(|h| shows(h, secret)) {
            fail(
                seed,
                raw,
                &format!("`{secret}` in a decoded header:\n{header}"),
            );
        }
        if let Some(text) = decoded.texts.iter().find(|t| shows(t, secret)) {
            fail(seed, raw, &format!("`{secret}` in decoded text:\n{text}"));
        }
    }
}
