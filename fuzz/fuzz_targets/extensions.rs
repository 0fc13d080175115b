//! The Sec-WebSocket-Extensions parser and permessage-deflate negotiation on arbitrary text.
//! See `checks.rs` for what is checked.
#![no_main]

#[path = "checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::extensions(data));
