#!/usr/bin/env bash
# Chromium through nginx (issue 21): two headless pages chat through nginx in front of two chat
# nodes sharing their rooms through Redis; one node is killed (kill -9) and its page reconnects
# through nginx to the other node and shows the messages it missed exactly once.
#
# Needs Debian's chromium, nginx and redis-server, and node/npm (CI installs them). Bounded:
# the whole test is killed after 180 s.
set -euo pipefail
cd "$(dirname "$0")/../.."

for tool in "${CHROMIUM:-/usr/bin/chromium}" /usr/sbin/nginx /usr/bin/redis-server; do
    [[ -x $tool ]] || { echo "missing $tool: apt-get install -y chromium nginx redis-server" >&2; exit 1; }
done
npm install --prefix tests/browser --no-audit --no-fund --loglevel=error >/dev/null
cargo build --quiet --features redis --example chat
NODE_BIN="$PWD/target/debug/examples/chat" timeout 180 node tests/browser/rooms_nginx_test.mjs
