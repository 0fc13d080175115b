#!/usr/bin/env bash
# Headless Chromium negotiates permessage-deflate with the echo_server example (built with the
# `deflate` feature) and exchanges compressed messages both ways; see scripts/browser_deflate.mjs.
#
#   usage: scripts/browser_deflate.sh
#
# Installs Debian's chromium if /usr/bin/chromium is missing and playwright-core into a folder
# under the target dir (reused later). Exit status 0 = pass. The server is stopped by its PID.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$REPO/$TARGET_DIR
NODE_DIR=$TARGET_DIR/browser-node

if [[ ! -x /usr/bin/chromium ]]; then
    apt-get update -qq
    # dpkg's temporary files under /tmp have vanished mid-install here before.
    TMPDIR=/var/tmp DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
mkdir -p "$NODE_DIR"
if [[ ! -d $NODE_DIR/node_modules/playwright-core ]]; then
    (cd "$NODE_DIR" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund playwright-core@1)
fi
cd "$REPO"
cargo build --release --features deflate --example echo_server
LOG=$(mktemp)
"$TARGET_DIR/release/examples/echo_server" 127.0.0.1:0 2>"$LOG" >/dev/null &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; rm -f "$LOG"' EXIT
ADDR=
for _ in $(seq 100); do
    ADDR=$(sed -n 's|.*listening on ws://\([^/]*\)/.*|\1|p' "$LOG")
    [[ -n $ADDR ]] && break
    sleep 0.1
done
[[ -n $ADDR ]] || { echo "echo_server did not start"; cat "$LOG"; exit 1; }
cp scripts/browser_deflate.mjs "$NODE_DIR/"
timeout -k 10 120 node "$NODE_DIR/browser_deflate.mjs" "$ADDR"
