//! The rewrite step on arbitrary messages: CRLF-only output, allowlisted
//! headers, a body guard with nothing left for a second pass, bodies it
//! cannot touch kept byte for byte. See anonrelay::fuzz_support::rewrite_one.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| anonrelay::fuzz_support::rewrite_one(data));
