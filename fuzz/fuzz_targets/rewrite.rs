//! The rewrite step on arbitrary messages: CRLF-only output, allowlisted
//! headers, body untouched. See anonrelay::fuzz_support::rewrite_one.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| anonrelay::fuzz_support::rewrite_one(data));
