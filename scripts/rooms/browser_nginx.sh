#!/usr/bin/env bash
# Chromium through nginx in front of two chat nodes sharing Redis: see browser_nginx.mjs.
#
#   usage: scripts/rooms/browser_nginx.sh
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
for tool in redis-server nginx node; do
    command -v $tool >/dev/null || { echo "$tool is missing" >&2; exit 1; }
done
[[ -x ${CHROMIUM:-/usr/bin/chromium} ]] || { echo "no Chromium (apt-get install chromium)" >&2; exit 1; }
npm install --prefix tests/browser --no-audit --no-fund --loglevel=error >/dev/null
cargo build --quiet --features redis --example chat
CHAT_BIN="$PWD/target/debug/examples/chat" timeout 180 node scripts/rooms/browser_nginx.mjs
