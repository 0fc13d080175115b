#!/usr/bin/env bash
# Room fan-out with members that never read (issue 21 item 6): healthy members' publish-to-
# delivery latency (p50/p99/max) and the slowest broadcast call, with and without stalled
# members, over loopback in one process. Figures: docs/room_fanout.md.
#
#   scripts/room_fanout_bench.sh              the cases of docs/room_fanout.md
#   scripts/room_fanout_bench.sh 20 2 2000 1024 1000   one case: HEALTHY STALLED MESSAGES BYTES INTERVAL_US [BOUND_KIB]
set -euo pipefail
# Hundreds of stalled members: two descriptors each, and a thread.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)" || true
cd "$(dirname "$0")/.."
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, Linux $(uname -r)"
echo "toolchain: $(rustc --version)"
echo "date: $(date -u '+%Y-%m-%d %H:%M UTC'), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo build --quiet --release --example room_fanout_bench
bench=target/release/examples/room_fanout_bench
if [ $# -gt 0 ]; then
    "$bench" "$@"
    exit
fi
for case in "20 0 2000 1024 1000" "20 2 2000 1024 1000" "20 10 2000 1024 1000" "100 2 2000 1024 1000" "20 2 500 65536 5000" \
    "20 50 2000 1024 1000" "20 200 2000 1024 1000" \
    "20 2 2000 1024 1000 4096" "20 50 2000 1024 1000 4096" "20 200 2000 1024 1000 4096"; do
    # shellcheck disable=SC2086
    "$bench" $case
done
