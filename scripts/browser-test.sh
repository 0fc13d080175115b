#!/usr/bin/env bash
# The examples in a real browser: two headless Chromium pages chat through
# `cargo run --example chat`, then reconnect after a server restart; and the classic
# heartbeat-and-reconnect page (tests/browser/reconnect_page.html, subprotocol echo-protocol)
# against `echo_server --subprotocol echo-protocol` through a kill and a restart.
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
# The heartbeat-and-reconnect page against echo_server, and the same page failing without
# --subprotocol (Chromium refuses a handshake that selects none of its subprotocols).
cargo build --quiet --example echo_server
ECHO_BIN="$PWD/target/debug/examples/echo_server" timeout 180 node tests/browser/reconnect_test.mjs
