//! Every input a fuzz run once failed on (fuzz/regressions/TARGET/), plus
//! the seed corpus, through the same harness as the fuzz targets.

use std::path::Path;

use anonrelay::fuzz_support::{rewrite_one, session_one, session_seed};

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    std::fs::read_dir(dir)
        .expect("regression directory")
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

fn fixtures() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect()
}

#[test]
fn rewrite_regressions_and_seeds() {
    let regressions = inputs("rewrite");
    assert!(!regressions.is_empty());
    for (_, input) in regressions {
        rewrite_one(&input);
    }
    for fixture in fixtures() {
        rewrite_one(&fixture);
    }
}

#[test]
fn session_regressions_and_seeds() {
    for (_, input) in inputs("session") {
        session_one(&input);
    }
    let mut delivered = 0;
    for fixture in fixtures() {
        let replies = session_one(&session_seed(&fixture));
        delivered += String::from_utf8_lossy(&replies)
            .matches("250 2.0.0 Message accepted")
            .count();
    }
    assert!(
        delivered >= 10,
        "the seeds must reach delivery, got {delivered}"
    );
    // Byte-at-a-time and all-at-once splits of a plain dialog.
    let dialog = session_seed(b"Subject: x\r\n\r\nbody\r\n");
    for split in [1u8, 2, 3, 255] {
        let mut input = vec![split; 4];
        input.extend_from_slice(&dialog[4..]);
        session_one(&input);
    }
}

/// A deterministic mini-fuzz of the body guard (no fuzzer needed): every
/// fixture with MIME-significant bytes overwritten, lines duplicated or
/// cut, through the same invariants as the fuzz target.
#[test]
fn rewrite_survives_mutated_fixtures() {
    use rand::{Rng, SeedableRng};
    const TOKENS: &[&[u8]] = &[
        b"--",
        b"\r\n",
        b"=",
        b"=\r\n",
        b"@",
        b"%40",
        b"&#64;",
        b"b@b.example",
        b"B@B.EXAMPLE",
        b"Content-Type: message/rfc822\r\n\r\n",
        b"Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\n",
        b"Content-Transfer-Encoding: base64\r\n",
        b"Content-Transfer-Encoding: quoted-printable\r\n",
        b"\r\n\r\n",
        b"\xff\xfe",
    ];
    let mut rng = rand::rngs::StdRng::seed_from_u64(6);
    let mut runs = 0;
    for fixture in fixtures() {
        for _ in 0..100 {
            let mut input = fixture.clone();
            for _ in 0..rng.random_range(1..6) {
                let at = rng.random_range(0..=input.len());
                match rng.random_range(0..3) {
                    0 => {
                        let token = TOKENS[rng.random_range(0..TOKENS.len())];
                        input.splice(at..at, token.iter().copied());
                    }
                    1 => input.truncate(at),
                    _ => {
                        let end = (at + rng.random_range(0..200)).min(input.len());
                        let copy = input[at..end].to_vec();
                        input.splice(at..at, copy);
                    }
                }
            }
            rewrite_one(&input);
            runs += 1;
        }
    }
    assert!(runs > 1000);
}
