#!/usr/bin/env bash
# Headless Chromium ↔ examples/inspect ↔ examples/echo_server, all on 127.0.0.1 with ports
# picked by the OS. Checks that the browser's messages come back intact through the inspector
# and that the inspector printed the handshake and dissected the browser's frames.
# Needs /usr/bin/chromium (apt-get install chromium) and npm; installs playwright-core under
# target/browser-node. Every process started here is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

if [ ! -d target/browser-node/node_modules/playwright-core ]; then
  npm install --silent --no-audit --no-fund --prefix target/browser-node playwright-core@1 >/dev/null
fi
cargo build -q --example echo_server --example inspect

# Waits (at most 10 s) for a process's stderr to name its address.
address_of() {
  for _ in $(seq 100); do
    if grep -qoE '127\.0\.0\.1:[0-9]+' "$1"; then grep -oE '127\.0\.0\.1:[0-9]+' "$1" | head -1; return; fi
    sleep 0.1
  done
  echo "no address in $1" >&2; cat "$1" >&2; exit 1
}

target/debug/examples/echo_server 127.0.0.1:0 >"$work/echo.out" 2>"$work/echo.err" &
pids+=($!)
server=$(address_of "$work/echo.err")
target/debug/examples/inspect 127.0.0.1:0 "ws://$server/" >"$work/inspect.out" 2>"$work/inspect.err" &
pids+=($!)
proxy=$(address_of "$work/inspect.err")

result=$(NODE_PATH=target/browser-node/node_modules timeout 120 node scripts/browser/inspect_page.js "ws://$proxy/")
echo "browser: $result"
# The inspector prints "both sides closed TCP" last; wait for it (bounded).
for _ in $(seq 100); do grep -q "both sides closed TCP" "$work/inspect.out" && break; sleep 0.1; done
out="$work/inspect.out"

fail=0
check() { # check DESCRIPTION PATTERN (a fixed string the inspector's output must contain)
  if grep -qF -- "$2" "$out"; then echo "ok   $1"; else echo "FAIL $1: no '$2'"; fail=1; fi
}
for i in 0 1 2 3; do
  [[ "$result" == *"echo $i ok"* ]] && echo "ok   echo $i intact" || { echo "FAIL echo $i"; fail=1; }
done
[[ "$result" == *'close 1000 true'* ]] && echo "ok   clean close 1000" || { echo "FAIL close"; fail=1; }
check "request printed" "→ GET / HTTP/1.1"
check "browser's Origin printed" "→ Origin:"
check "browser offers permessage-deflate" "→ Sec-WebSocket-Extensions: permessage-deflate"
check "response printed" "← HTTP/1.1 101 Switching Protocols"
check "accept key recomputed and checked" "✓ Sec-WebSocket-Accept = base64(SHA-1("
check "browser frames are masked" "1... .... = MASK: 1 (masked: client to server)"
check "server frames are not" "0... .... = MASK: 0 (unmasked: server to client)"
check "16-bit length form" "Extended payload length (16 bits): 300 (126-65535)"
check "64-bit length form" "Extended payload length (64 bits): 70000 (over 65535)"
check "close code named" "Close code: 1000 (normal closure)"
check "close reason shown" 'Close reason: "bye"'
if grep -qF "RSV1: 1" "$out"; then
  echo "ok   compressed frames (permessage-deflate agreed): RSV1 shown, payload raw"
else
  check "text unmasked" "    hello from chromium"
  check "JSON unmasked, indented" '        "userId": 10001,'
fi
if [ "$fail" != 0 ]; then echo "--- inspector output"; cat "$out"; exit 1; fi
echo "browser ↔ inspector ↔ server: all checks passed ($(grep -c ' +[0-9.]*s [↑↓] ' "$out") frames dissected)"
