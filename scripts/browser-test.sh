#!/usr/bin/env bash
# The chat demo in a real browser: two headless Chromium pages chat through
# `cargo run --example chat`, then reconnect after a server restart.
#
# Needs Debian's chromium (/usr/bin/chromium; CI installs it) and node/npm. playwright-core is
# installed into tests/browser/node_modules; it never downloads a browser.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -x ${CHROMIUM:-/usr/bin/chromium} ]]; then
    echo "no Chromium: apt-get install -y chromium (TMPDIR=/var/tmp if dpkg loses its temp files)" >&2
    exit 1
fi
npm install --prefix tests/browser --no-audit --no-fund --loglevel=error >/dev/null
# Once as built by default, once with permessage-deflate (the extension agreed with Chromium).
cargo build --quiet --example chat
CHAT_BIN="$PWD/target/debug/examples/chat" timeout 180 node tests/browser/chat_test.mjs
cargo build --quiet --features deflate --example chat --target-dir target/deflate
CHAT_EXPECT_DEFLATE=1 CHAT_BIN="$PWD/target/deflate/debug/examples/chat" timeout 180 node tests/browser/chat_test.mjs
