#!/usr/bin/env bash
# Load and churn against the echo server (examples/echo_server.rs, a syncws Server):
#   1. N concurrent connections with heartbeats on, all echoing, then held idle while the server
#      pings them, then closed: 0 errors; the server's RSS, threads and fds at each phase, and the
#      heartbeat thread's CPU time while N connections sit idle;
#   2. CYCLES connect/echo/close cycles: afterwards no growth in threads or fds, and RSS within
#      a small margin of what it was before.
#
#   usage: scripts/load.sh [--quick] [--connections N] [--churn CYCLES] [--hold SECS] [--heartbeat SECS]
#   full size (the figures in docs/performance.md): 10,000 connections, 100,000 cycles; --quick (CI): 1,000 and 5,000.
# Loopback only; every wait is bounded; the server is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
connections=10000 cycles=100000 hold=12 heartbeat=5
while [ $# -gt 0 ]; do
    case $1 in
        --quick) connections=1000 cycles=5000 hold=8 heartbeat=3 ;;
        --connections) connections=$2; shift ;;
        --churn) cycles=$2; shift ;;
        --hold) hold=$2; shift ;;
        --heartbeat) heartbeat=$2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
ulimit -n 20000
cargo build --release -q --example echo_server --example load_client
bin=target/release/examples
work=$(mktemp -d)
server_pid=
cleanup() { [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

"$bin/echo_server" 127.0.0.1:0 --heartbeat "$heartbeat" --max-connections $((connections + 100)) \
    >"${LOAD_SERVER_LOG:-/dev/null}" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 100); do grep -q listening "$work/server.err" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o 'ws://[^ ]*' "$work/server.err" | head -1)
[ -n "$url" ] || { echo "server did not start" >&2; cat "$work/server.err" >&2; exit 1; }

hz=$(getconf CLK_TCK)
rss_kib() { awk '/^VmRSS/ {print $2}' /proc/"$server_pid"/status; }
threads() { awk '/^Threads/ {print $2}' /proc/"$server_pid"/status; }
fds() { ls /proc/"$server_pid"/fd | wc -l; }
heartbeat_ticks() {  # one grep, not a process per thread: clients do not answer pings meanwhile
    local comm
    # Linux keeps 15 characters of a thread's name: "syncws-heartbea".
    comm=$(grep -l '^syncws-heartbea' /proc/"$server_pid"/task/*/comm 2>/dev/null | head -1)
    [ -n "$comm" ] && awk '{print $14 + $15}' "${comm%/comm}/stat" || echo 0
}
printf '%-12s %10s %14s %8s %7s\n' phase "RSS MiB" "KiB/conn" threads fds
base_rss=$(rss_kib) base_threads=$(threads) base_fds=$(fds)
row() {  # row PHASE CONNS
    local rss per
    rss=$(rss_kib)
    per=$([ "$2" -gt 0 ] && echo "scale=1; ($rss - $base_rss) / $2" | bc || echo -)
    printf '%-12s %10.1f %14s %8s %7s\n' "$1" "$(echo "scale=1; $rss / 1024" | bc)" "$per" "$(threads)" "$(fds)"
}
row baseline 0

status=0
run_client() {  # run_client ARGS...: runs load_client, measuring the server at each phase
    coproc CLIENT { timeout 900 "$bin/load_client" "$@"; }
    local line pid=$CLIENT_PID from=${CLIENT[0]} to=${CLIENT[1]} reported=missing
    while IFS= read -r line <&"$from"; do
        case $line in
            "phase connected") row "idle" "$connections"; hb_start=$(heartbeat_ticks) ;;
            "phase echoed") row "loaded" "$connections" ;;
            "phase held") row "held ${hold}s" "$connections"
                hb_end=$(heartbeat_ticks)
                echo "heartbeat thread CPU while $connections connections idled: $(echo "scale=3; ($hb_end - $hb_start) / $hz" | bc) s" ;;
            "phase "*) row "${line#phase }" 0 ;;
            "errors "*) echo "  client: $line"; reported=${line#errors } ;;
            *) echo "  client: $line" ;;
        esac
        case $line in "phase "*) echo >&"$to" 2>/dev/null || true ;; esac
    done
    wait "$pid" 2>/dev/null || true
    # The client's own count decides (its exit status may already have been collected).
    [ "$reported" = 0 ] || { echo "client reported errors: $reported" >&2; status=1; }
}

echo "== $connections concurrent connections, heartbeat ${heartbeat}s, held ${hold}s"
run_client "$url" concurrent "$connections" 10 "$hold"
# Connection threads end right after their close; give them a bounded moment.
for _ in $(seq 50); do [ "$(threads)" -le "$base_threads" ] && [ "$(fds)" -le "$base_fds" ] && break; sleep 0.1; done
row "after" 0
after_rss=$(rss_kib)
[ "$(threads)" -le "$base_threads" ] || { echo "threads did not return to $base_threads" >&2; status=1; }
[ "$(fds)" -le "$base_fds" ] || { echo "fds did not return to $base_fds" >&2; status=1; }

echo "== $cycles connect/close cycles"
run_client "$url" churn "$cycles"
for _ in $(seq 50); do [ "$(threads)" -le "$base_threads" ] && [ "$(fds)" -le "$base_fds" ] && break; sleep 0.1; done
row "after churn" 0
churn_rss=$(rss_kib)
[ "$(threads)" -le "$base_threads" ] || { echo "threads grew after churn" >&2; status=1; }
[ "$(fds)" -le "$base_fds" ] || { echo "fds grew after churn" >&2; status=1; }
# The allocator keeps some freed memory; growth beyond 25% (and 4 MiB) would be a leak.
growth=$(( churn_rss - after_rss ))
echo "RSS change over the churn: ${growth} KiB"
if [ "$growth" -gt 4096 ] && [ "$growth" -gt $(( after_rss / 4 )) ]; then
    echo "RSS grew over the churn" >&2; status=1
fi
[ $status -eq 0 ] && echo "load: PASS" || echo "load: FAIL"
exit $status
