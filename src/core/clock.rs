//! Wall-clock time in one place, so tests can move it.
//!
//! `ANONRELAY_TEST_NOW` (unix seconds), when set, fixes "now" for the whole
//! process: log rows are stamped with it and retention counts from it. It
//! exists for the retention tests, which run the debug binary; a release
//! build ignores it, so a stray variable in production cannot freeze the
//! log's timestamps or the retention.

use std::sync::OnceLock;

pub const TEST_NOW_ENV: &str = "ANONRELAY_TEST_NOW";

pub fn now_unix() -> i64 {
    static FIXED: OnceLock<Option<i64>> = OnceLock::new();
    let fixed = FIXED.get_or_init(|| {
        if !cfg!(debug_assertions) {
            return None;
        }
        std::env::var(TEST_NOW_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok())
    });
    match fixed {
        Some(now) => *now,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64),
    }
}
