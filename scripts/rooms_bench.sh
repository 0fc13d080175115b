#!/usr/bin/env bash
# Rooms across processes, measured (issue 21): deliveries per second and publish-to-delivery
# latency (p50/p99) for one room of 300 members and for 100 rooms of 10 members, over three
# room_server nodes sharing Redis, against the same load on one node with in-memory rooms; then
# each node's memory (RSS) while Redis is unreachable (SIGSTOP) for 10 s under a steady load.
#
#   scripts/rooms_bench.sh [--quick] [--small]
#
# --small runs only the 100 rooms x 10 members lines (Redis, then in memory).
#
# Everything on loopback and free ports; release builds. Figures only: the machine is shared and
# noisy, so compare the lines of one run with each other. Results: docs/deploy.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ulimit -n 20000 2>/dev/null || true

messages=1000 small_messages=300 rate=500 seconds=24 small_only=0
for arg in "$@"; do
    case $arg in
        --quick) messages=200 small_messages=60 rate=200 seconds=16 ;;
        --small) small_only=1 ;;
        *) echo "usage: $0 [--quick] [--small]" >&2; exit 2 ;;
    esac
done

cargo build --release --quiet --features redis --example room_server --example room_bench
SERVER=target/release/examples/room_server
BENCH=target/release/examples/room_bench
scratch=$(mktemp -d "${TMPDIR:-/tmp}/syncws-rooms-bench.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -CONT "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Starts a room_server with the given extra arguments; prints "PID ws://ADDR".
start_node() {
    local log="$scratch/node.$RANDOM.log"
    "$SERVER" 127.0.0.1:0 "$@" >"$log" 2>&1 &
    local pid=$!
    for _ in $(seq 150); do
        local url
        url=$(grep -Eo 'ws://[0-9.]+:[0-9]+' "$log" | head -n 1 || true)
        if [[ -n $url ]]; then echo "$pid $url"; return 0; fi
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; return 1; }
        sleep 0.1
    done
    echo "room_server did not start" >&2
    return 1
}

redis_port=$(free_port)
mkdir -p "$scratch/redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$scratch/redis" --save '' >"$scratch/redis.log" 2>&1 &
redis_pid=$!
pids+=("$redis_pid")
for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis_url="redis://127.0.0.1:$redis_port/"

cluster_pids=() cluster_urls=()
for i in 1 2 3; do
    read -r pid url < <(start_node --redis "$redis_url" --node "node$i")
    pids+=("$pid"); cluster_pids+=("$pid"); cluster_urls+=("$url")
done
read -r solo_pid solo_url < <(start_node --node solo)
pids+=("$solo_pid")
cluster=$(IFS=,; echo "${cluster_urls[*]}")

# One measurement: prints "NAME: key value …" on one line.
run() {
    local name=$1; shift
    local out
    out=$(timeout 300 "$BENCH" "$@" 2>&1) || { echo "$name: FAILED"; echo "$out" >&2; return 1; }
    echo "$name: $(echo "$out" | grep -E '^(deliveries|deliveries_per_second|latency_p50_ms|latency_p99_ms|missing|duplicates) ' | tr '\n' ' ')"
}

echo "== throughput and latency (window: each publisher keeps at most W messages in flight)"
if ((small_only == 0)); then
    run "1 room x 300, 3 nodes + Redis " "$cluster" 1 300 window "$messages" 16
    run "1 room x 300, 1 node in memory" "$solo_url" 1 300 window "$messages" 16
fi
run "100 rooms x 10, 3 nodes + Redis " "$cluster" 100 10 window "$small_messages" 4
run "100 rooms x 10, 1 node in memory" "$solo_url" 100 10 window "$small_messages" 4
if ((small_only == 1)); then exit 0; fi

echo "== memory while Redis is unreachable for 10 s (100 rooms x 10, $rate messages/s for ${seconds}s)"
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
declare -A before peak
for pid in "${cluster_pids[@]}"; do before[$pid]=$(rss "$pid"); peak[$pid]=${before[$pid]}; done
"$BENCH" "$cluster" 100 10 rate "$rate" "$seconds" >"$scratch/outage.out" 2>&1 &
bench_pid=$!
pids+=("$bench_pid")
stopped_at="" resumed=0
for tick in $(seq 600); do
    kill -0 "$bench_pid" 2>/dev/null || break
    if [[ -z $stopped_at ]] && grep -q '^connected' "$scratch/outage.out"; then
        sleep 3; kill -STOP "$redis_pid"; stopped_at=$(date +%s); echo "redis stopped (SIGSTOP)"
    fi
    if [[ -n $stopped_at ]] && ((resumed == 0)) && (( $(date +%s) - stopped_at >= 10 )); then
        kill -CONT "$redis_pid"; resumed=1; echo "redis resumed (SIGCONT) after 10 s"
    fi
    for pid in "${cluster_pids[@]}"; do
        now=$(rss "$pid"); ((now > peak[$pid])) && peak[$pid]=$now
    done
    sleep 0.5
done
kill -CONT "$redis_pid" 2>/dev/null || true
wait "$bench_pid" && outage=ok || outage=FAILED
i=0
for pid in "${cluster_pids[@]}"; do
    i=$((i + 1))
    echo "node$i RSS: ${before[$pid]} KiB before the load, peak ${peak[$pid]} KiB, now $(rss "$pid") KiB"
done
echo "outage run ($outage): $(grep -E '^(deliveries|latency_p50_ms|latency_p99_ms|latency_max_ms|missing|duplicates) ' "$scratch/outage.out" | tr '\n' ' ')"
grep -h 'Redis' "$scratch"/node.*.log | sort | uniq -c | head -5 || true
