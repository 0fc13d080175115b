//! The protocol state machine, server role, on arbitrary peer bytes. See `checks.rs` for what is checked.
#![no_main]

#[path = "checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::connection_server(data));
