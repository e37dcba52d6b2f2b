//! Bytes in (split at fuzzer-chosen points), replies out: no panic, no hang,
//! only well-formed replies. See anonrelay::fuzz_support::session_one.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    anonrelay::fuzz_support::session_one(data);
});
