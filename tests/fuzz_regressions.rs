//! Replays the fuzzers' committed seed corpus and every input that once made a target fail
//! (fuzz/regressions/TARGET/), through the same checks the fuzz targets run.

#[path = "../fuzz/fuzz_targets/checks.rs"]
mod checks;

use std::path::Path;

fn replay(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut count = 0;
    for dir in [
        root.join("seeds").join(target),
        root.join("regressions").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            check(&std::fs::read(&path).unwrap());
            count += 1;
        }
    }
    assert!(count > 0, "no inputs for {target}");
}

#[test]
fn frame_decoder() {
    replay("frame_decoder", checks::frame_decoder);
}

#[test]
fn connection_server() {
    replay("connection_server", checks::connection_server);
}

#[test]
fn connection_client() {
    replay("connection_client", checks::connection_client);
}

#[test]
fn handshake_request() {
    replay("handshake_request", checks::handshake_request);
}

#[test]
fn handshake_response() {
    replay("handshake_response", checks::handshake_response);
}

#[test]
fn extensions() {
    replay("extensions", checks::extensions);
}

#[test]
fn url() {
    replay("url", checks::url);
}
