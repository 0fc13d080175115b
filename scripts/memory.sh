#!/usr/bin/env bash
# Memory per idle connection, thread count and heartbeat-thread CPU of syncws::Server, at 1,000
# and 10,000 connections opened from a separate process (scripts/idle_clients.py, which answers
# pings). Prints the figures docs/performance.md quotes.
#
# Usage: scripts/memory.sh [COUNTS...]   (default: 1000 10000)
#   HEARTBEAT=5 WINDOW=20 STACK_SIZE=... to change the settings.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 20000
cargo build --quiet --release --example server_memory
BIN=target/release/examples/server_memory
counts=("$@")
[[ ${#counts[@]} -gt 0 ]] || counts=(1000 10000)
for n in "${counts[@]}"; do
    echo "== $n idle connections"
    out=$(mktemp)
    extra=()
    [[ -n ${STACK_SIZE:-} ]] && extra+=(--stack-size "$STACK_SIZE")
    "$BIN" --expect "$n" --heartbeat "${HEARTBEAT:-5}" --window "${WINDOW:-20}" "${extra[@]}" >"$out" &
    server=$!
    for _ in $(seq 100); do grep -q '^listening' "$out" && break; sleep 0.1; done
    addr=$(sed -n 's/^listening //p' "$out")
    python3 scripts/idle_clients.py "${addr%:*}" "${addr##*:}" "$n" --max-seconds 600 &
    clients=$!
    wait "$server"
    wait "$clients" || true
    grep -v '^listening' "$out"
    rm -f "$out"
done
