#!/usr/bin/env bash
# End-to-end echo benchmark: syncws (`accept`, and its `Server`), tungstenite and a raw TCP echo,
# thread per connection, driven by the same hand-framed load client; medians and ratios to raw
# TCP, pinned and unpinned.
#
#   scripts/bench.sh            full run (5 × 0.4 s per cell and server, about 10 minutes)
#   scripts/bench.sh --quick    every cell once, briefly (CI: figures only)
#   scripts/bench.sh --mode pinned --cell 64Kx1 --kind text --reps 5   one corner
#   scripts/bench.sh --mode pinned --server raw --server syncws-server  some servers only
#
# Needs Linux (/proc) and taskset (util-linux).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v taskset >/dev/null || { echo "bench.sh: taskset (util-linux) is needed" >&2; exit 1; }
# 1,000 connections: both ends in the same limits.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, Linux $(uname -r)"
echo "toolchain: $(rustc --version)"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo bench --quiet --bench e2e -- "$@"
