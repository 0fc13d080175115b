#!/usr/bin/env bash
# The crate's public surface, checked against the committed public-api.txt.
#
#   bash scripts/public-api.sh          # fail (and show the diff) if the surface changed
#   bash scripts/public-api.sh --write  # regenerate public-api.txt after an intended change
#
# rustdoc's JSON output is unstable; RUSTC_BOOTSTRAP=1 lets the stable toolchain produce it.
# Built with every feature, so feature-gated items are listed too.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}/public-api
RUSTC_BOOTSTRAP=1 RUSTDOCFLAGS="-Z unstable-options --output-format json" \
    cargo doc --quiet --no-deps --all-features --target-dir "$target"
python3 scripts/public_api.py "$target/doc/syncws.json" > "$target/public-api.txt"
if [[ "${1:-}" == "--write" ]]; then
    cp "$target/public-api.txt" public-api.txt
    echo "public-api.txt: $(wc -l < public-api.txt) items written"
elif diff -u public-api.txt "$target/public-api.txt"; then
    echo "public API unchanged ($(wc -l < public-api.txt) items)"
else
    echo "The public API changed. If that is intended, run: bash scripts/public-api.sh --write" >&2
    echo "and commit public-api.txt so the change is reviewed." >&2
    exit 1
fi
