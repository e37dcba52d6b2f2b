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
