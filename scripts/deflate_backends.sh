#!/usr/bin/env bash
# Compares flate2's two pure-Rust backends for permessage-deflate: zlib-rs (what the `deflate`
# feature uses) and miniz_oxide (flate2's default). Prints compress and inflate speed and the
# compression ratio on JSON-like text, per message size and level, with context takeover and a
# sync flush per message as RFC 7692 does. Also records which backend can limit the window.
#
#   usage: scripts/deflate_backends.sh
#
# Builds a scratch crate under the target dir twice (one per backend); nothing is committed.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$REPO/$TARGET_DIR
DIR=$TARGET_DIR/deflate-backends
mkdir -p "$DIR/src"
cat >"$DIR/src/main.rs" <<'RUST'
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use std::time::Instant;

fn json(size: usize, seed: usize) -> Vec<u8> {
    let mut text = String::new();
    let mut i = seed;
    while text.len() < size {
        text.push_str(&format!(
            "{{\"id\":{i},\"user\":\"user{}\",\"active\":{},\"score\":{}.{},\"tags\":[\"t{}\",\"t{}\"]}},",
            i % 97, i % 2 == 0, i * 37 % 1000, i % 10, i % 5, i % 11));
        i += 1;
    }
    text.truncate(size);
    text.into_bytes()
}

fn main() {
    let backend = if cfg!(feature = "zlib-rs") { "zlib-rs" } else { "miniz_oxide" };
    for size in [1024usize, 64 * 1024] {
        // Distinct messages filling more than the 32 KiB window: none is a verbatim repeat.
        let distinct = (1usize << 20) / size;
        let messages: Vec<Vec<u8>> = (0..distinct).map(|k| json(size, k * 100_000)).collect();
        let rounds = (64 << 20) / size;
        for level in [1, 6] {
            let mut c = Compress::new(Compression::new(level), false);
            let mut wire = Vec::with_capacity(rounds);
            let t = Instant::now();
            for r in 0..rounds {
                let mut out = Vec::with_capacity(size + 64);
                c.compress_vec(&messages[r % distinct], &mut out, FlushCompress::Sync).unwrap();
                wire.push(out);
            }
            let compress = t.elapsed().as_secs_f64();
            let mut d = Decompress::new(false);
            let t = Instant::now();
            let mut out = Vec::with_capacity(size + 64);
            for w in &wire {
                out.clear();
                d.decompress_vec(w, &mut out, FlushDecompress::Sync).unwrap();
                assert_eq!(out.len(), size);
            }
            let inflate = t.elapsed().as_secs_f64();
            let total = (rounds * size) as f64;
            let compressed: usize = wire.iter().map(Vec::len).sum();
            println!("{backend:<12} {size:>6} B level {level}: compress {:>6.0} MB/s, inflate {:>6.0} MB/s, ratio {:.3}",
                total / compress / 1e6, total / inflate / 1e6, compressed as f64 / total);
        }
    }
    #[cfg(feature = "zlib-rs")]
    {
        let _ = Compress::new_with_window_bits(Compression::new(1), false, 9);
        println!("zlib-rs      window bits 9..=15: supported (Compress::new_with_window_bits)");
    }
    #[cfg(not(feature = "zlib-rs"))]
    println!("miniz_oxide  window bits: not supported (no Compress::new_with_window_bits; always 32 KiB)");
}
RUST
for backend in miniz_oxide zlib-rs; do
    if [[ $backend == zlib-rs ]]; then
        dep='flate2 = { version = "1.1.11", default-features = false, features = ["zlib-rs"] }'
        feat='zlib-rs = []'
        flags=(--features zlib-rs)
    else
        dep='flate2 = "1.1.11"'
        feat='zlib-rs = []'
        flags=()
    fi
    cat >"$DIR/Cargo.toml" <<TOML
[package]
name = "deflate-backends"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
$dep

[features]
$feat

[profile.release]
codegen-units = 1
TOML
    (cd "$DIR" && cargo run --quiet --release "${flags[@]}" --target-dir "$DIR/target-$backend")
done
