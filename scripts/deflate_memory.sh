#!/usr/bin/env bash
# permessage-deflate's memory per connection and compressed size per message, on this machine:
# syncws's echo server (defaults, and each DeflateConfig setting) and python-websockets' sync server
# (its defaults), each under N browser-like connections (default 500) that echo four distinct
# ~740-byte chat messages. See examples/deflate_memory.rs for the load and docs/compression.md.
#
#   usage: scripts/deflate_memory.sh [CONNECTIONS]
#
# Memory is the server process's RSS growth per connection, idle (after the handshake, once quiet)
# and after the traffic (once quiet again); "added" is over the same server with a client that
# does not offer the extension. Needs Linux (/proc), python3 (websockets 17 is installed into a
# virtualenv under the target dir) and `ulimit -n` above 2 × CONNECTIONS.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$REPO/$TARGET_DIR
VENV=$TARGET_DIR/deflate-venv
N=${1:-500}
ulimit -n 20000 2>/dev/null || true

cd "$REPO"
cargo build --quiet --release --features deflate --example deflate_memory --example echo_server
if [[ ! -x $VENV/bin/python ]]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check 'websockets>=17,<18'
EXAMPLES=$TARGET_DIR/release/examples
TMP=$(mktemp -d)
SERVER_PID=
cleanup() { [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

# start_server KIND ARGS...: starts a server, sets SERVER_PID and ADDR.
start_server() {
    local kind=$1
    shift
    : >"$TMP/out"
    case $kind in
        echo_server) "$EXAMPLES/echo_server" 127.0.0.1:0 >/dev/null 2>"$TMP/out" & ;;
        syncws) "$EXAMPLES/deflate_memory" serve "$@" >"$TMP/out" 2>&1 & ;;
        python) "$VENV/bin/python" scripts/deflate_memory_python.py >"$TMP/out" 2>&1 & ;;
    esac
    SERVER_PID=$!
    ADDR=
    for _ in $(seq 100); do
        ADDR=$(grep -oE '127\.0\.0\.1:[0-9]+' "$TMP/out" | head -1 || true)
        [[ -n $ADDR ]] && break
        sleep 0.1
    done
    [[ -n $ADDR ]] || { echo "server $kind did not start: $(cat "$TMP/out")" >&2; exit 1; }
}

stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }

# row LABEL KIND SERVER_ARGS -- LOAD_ARGS: prints one table row; BASE_IDLE/BASE_AFTER set the baseline.
row() {
    local label=$1 kind=$2
    shift 2
    local server_args=()
    while [[ $1 != -- ]]; do server_args+=("$1"); shift; done
    shift
    start_server "$kind" "${server_args[@]}"
    local result
    result=$(timeout -k 5 300 "$EXAMPLES/deflate_memory" load "$ADDR" "$SERVER_PID" --connections "$N" "$@")
    stop_server
    read -r idle after to_server from_server round agreed <<<"$result"
    if [[ $agreed == - ]]; then BASE_IDLE=$idle; BASE_AFTER=$after; fi
    awk -v l="$label" -v i="$idle" -v a="$after" -v bi="$BASE_IDLE" -v ba="$BASE_AFTER" \
        -v t="$to_server" -v f="$from_server" -v r="$round" -v g="$agreed" 'BEGIN {
        printf "| %s | %.1f / %.1f | %+.1f / %+.1f | %d / %d | %d | `%s` |\n",
            l, i/1024, a/1024, (i-bi)/1024, (a-ba)/1024, t, f, r, g }'
}

echo "$N connections, 4 chat messages each (~740 B); KiB per connection, idle / after traffic:"
echo
echo "| server | per connection | added by compression | bytes per message to / from server | ms per round | server's answer |"
echo "|---|---:|---:|---:|---:|---|"
BASE_IDLE=0 BASE_AFTER=0
row "syncws, client not offering deflate" echo_server -- --no-offer
row "syncws defaults" echo_server --
row "syncws, client offering bare permessage-deflate (its window 15)" echo_server -- --offer permessage-deflate
row "syncws, windows 9/9 (server_max_window_bits, client_max_window_bits)" syncws --server-window 9 --client-window 9 --
row "syncws, server_no_context_takeover" syncws --server-no-context-takeover --
row "syncws, receive_only" syncws --receive-only --
row "syncws, level 6" syncws --level 6 --
row "python-websockets 17, client not offering deflate" python -- --no-offer
row "python-websockets 17 defaults" python --
