#!/usr/bin/env bash
# Interop with npm's `ws`, both roles, with and without permessage-deflate (called by .ci/run).
#
#   usage: scripts/interop_node.sh
#
# Builds the `interop_checks` and `echo_server` examples with `--features deflate`, installs the
# pinned `ws` into tests/node_ws/node_modules (npm registry; reused on later runs), and runs
# tests/node_ws/interop.mjs (its header says what is checked). Exit status 0 = every check passed.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$REPO/$TARGET_DIR

cd "$REPO"
command -v node >/dev/null || { echo "interop_node: needs node and npm (Debian: apt-get install nodejs npm)" >&2; exit 1; }
cargo build --release --features deflate --example interop_checks --example echo_server
npm ci --prefix tests/node_ws --no-audit --no-fund --loglevel=error >/dev/null
timeout -k 10 600 node tests/node_ws/interop.mjs \
    "$TARGET_DIR/release/examples/interop_checks" "$TARGET_DIR/release/examples/echo_server"
