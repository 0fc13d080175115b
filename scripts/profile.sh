#!/usr/bin/env bash
# Where each echoed message's CPU time goes: for each server, a pinned load run of the e2e
# benchmark (server and load client on CPU 0) with `perf record` sampling CPU 0 for a few seconds
# in the middle. Prints microseconds per message split by process (server, load client) and by
# space (user: the benchmark binary and libc; kernel), so the servers can be compared line by line.
#
#   scripts/profile.sh                         1 KiB × 64 binary, raw TCP then syncws, 3 rounds
#   scripts/profile.sh 16 1000 text raw syncws-server
#   ROUNDS=5 WINDOW=3 scripts/profile.sh 65536 1 binary
#
# Needs Linux, taskset and perf (Debian: linux-perf), and permission to sample the whole CPU (root,
# or kernel.perf_event_paranoid <= 0).
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1024} conns=${2:-64} kind=${3:-binary}
servers=("${@:4}")
[[ ${#servers[@]} -gt 0 ]] || servers=(raw syncws)
rounds=${ROUNDS:-3} window=${WINDOW:-3}
for tool in perf taskset; do
    command -v "$tool" >/dev/null || { echo "profile.sh: $tool is needed" >&2; exit 1; }
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
exe=$(cargo bench --bench e2e --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)
[[ -x $exe ]] || { echo "profile.sh: could not build the e2e benchmark" >&2; exit 1; }

work=$(mktemp -d)
server_pid=
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# One run: prints "messages-in-window" then the sample table (process, space, nanoseconds).
profile_once() {
    local server=$1 secs=$((window + 3)) port
    coproc SERVER { exec taskset -c 0 "$exe" server "$server"; }
    server_pid=$SERVER_PID
    read -r line <&"${SERVER[0]}" || true
    [[ $line =~ ^port\ [0-9]+$ ]] || { echo "profile.sh: server $server did not start" >&2; exit 1; }
    port=${line#port }
    # The line on its stdin starts the load at once; the end of stdin lets it exit after its result.
    (echo | taskset -c 0 "$exe" load "$port" "$server" "$size" "$conns" "$kind" "$secs" \
        >"$work/load.out") &
    local load=$!
    for _ in $(seq 600); do
        grep -q '^ready' "$work/load.out" 2>/dev/null && break
        kill -0 "$load" 2>/dev/null || break
        sleep 0.1
    done
    grep -q '^ready' "$work/load.out" || { echo "profile.sh: the load client never got ready" >&2; exit 1; }
    sleep 1.5
    perf record -q -C 0 -o "$work/perf.data" -- sleep "$window" >/dev/null 2>&1
    for _ in $(seq $((secs * 10 + 100))); do grep -q '^result' "$work/load.out" && break; sleep 0.1; done
    kill "$load" 2>/dev/null || true
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
    # result MESSAGES SECONDS CPU: the rate is steady, so the window saw rate × window messages.
    awk -v w="$window" '/^result/ { printf "%.0f\n", $2 / $3 * w }' "$work/load.out"
    perf script -i "$work/perf.data" -F comm,period,ip,dso 2>/dev/null | awk '
        {
            comm = $1; period = $2; dso = $NF
            if (comm ~ /^load-/) who = "client"
            else if (comm ~ /^(echo-|syncws-conn-)/) who = "server"
            else who = "other"
            space = (dso ~ /kernel/) ? "kernel" : "user"
            ns[who " " space] += period
        }
        END { for (k in ns) print k, ns[k] }'
}

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs"
echo "cell: $size B × $conns $kind; $rounds rounds, servers alternated; perf samples CPU 0 for ${window} s"
echo "per message, µs (each column the median of the rounds; all: their sum):"
for round in $(seq "$rounds"); do
    for server in "${servers[@]}"; do
        out=$(profile_once "$server") || exit 1
        messages=$(head -1 <<<"$out")
        [[ $messages =~ ^[1-9][0-9]*$ ]] || { echo "profile.sh: no result from $server" >&2; exit 1; }
        tail -n +2 <<<"$out" | awk -v s="$server" -v m="$messages" '{ print s, $1, $2, $3 / m / 1000 }'
    done
done >"$work/rows"

awk -v order_of_servers="${servers[*]}" '
    # rows: SERVER WHO SPACE MICROSECONDS
    { key = $1 SUBSEP $2 " " $3; vals[key] = vals[key] " " $4; servers[$1] = 1; cols[$2 " " $3] = 1 }
    function median(list,   n, a, i, j, t) {
        n = split(list, a, " ")
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END {
        split("server user,server kernel,client user,client kernel,other user,other kernel", order, ",")
        printf "| server |"
        for (c = 1; c <= 6; c++) if (order[c] in cols) printf " %s |", order[c]
        printf " all |\n|---|"
        for (c = 1; c <= 6; c++) if (order[c] in cols) printf "---:|"
        printf "---:|\n"
        n_servers = split(order_of_servers, listed, " ")
        for (i = 1; i <= n_servers; i++) {
            s = listed[i]
            if (!(s in servers)) continue
            printf "| %s |", s
            total = 0
            for (c = 1; c <= 6; c++) if (order[c] in cols) {
                m = ((s, order[c]) in vals) ? median(vals[s, order[c]]) : 0
                total += m
                printf " %.2f |", m
            }
            printf " %.2f |\n", total
        }
    }' "$work/rows"
