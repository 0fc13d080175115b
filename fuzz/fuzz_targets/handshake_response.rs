//! The handshake response parser on arbitrary bytes. See `checks.rs` for what is checked.
#![no_main]

#[path = "checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::handshake_response(data));
