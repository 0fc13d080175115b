#!/usr/bin/env bash
# A local cluster on loopback: one redis-server, N syncws nodes sharing its rooms, and nginx in
# front of them (scripts/nginx/nginx.conf.template), every one on a free port, every file under
# one scratch folder. Runs in the foreground until Ctrl-C or SIGTERM, then stops them all.
#
#   scripts/nginx/cluster.sh [--nodes N] [--app chat|room_server] [--dir DIR] [--no-build]
#
#   --nodes N     syncws nodes (default 3), named node1..nodeN
#   --app         which example each node runs (default chat: open the nginx URL in a browser)
#   --dir DIR     scratch folder (default: a new one under ${TMPDIR:-/tmp}); kept afterwards
#   --no-build    use $NODE_BIN instead of building the example
#
# Prints one line per part as it comes up, then `ready`:
#   redis redis://127.0.0.1:PORT/
#   node NAME PID HOST:PORT
#   nginx http://127.0.0.1:PORT/ PID
# and writes the same lines to DIR/cluster.txt (tests read the node pids there to kill one).
# Needs redis-server and nginx (Debian: apt-get install -y redis-server nginx).
set -euo pipefail
cd "$(dirname "$0")/../.."

nodes=3 app=chat dir="" build=1
while (($#)); do
    case $1 in
        --nodes) nodes=$2; shift 2 ;;
        --app) app=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        --no-build) build=0; shift ;;
        *) echo "usage: $0 [--nodes N] [--app chat|room_server] [--dir DIR] [--no-build]" >&2; exit 2 ;;
    esac
done
case $app in chat | room_server) ;; *) echo "--app: chat or room_server" >&2; exit 2 ;; esac
for tool in redis-server nginx; do
    command -v "$tool" >/dev/null || [[ -x /usr/sbin/$tool ]] || {
        echo "no $tool: apt-get install -y redis-server nginx" >&2
        exit 1
    }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

if ((build)); then
    cargo build --quiet --features redis --example "$app"
    NODE_BIN="$PWD/target/debug/examples/$app"
fi
: "${NODE_BIN:?--no-build needs NODE_BIN}"

dir=${dir:-$(mktemp -d "${TMPDIR:-/tmp}/syncws-cluster.XXXXXX")}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
: >"$dir/cluster.txt"
pids=()
stop() {
    trap - EXIT INT TERM
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        # Bounded: a process that ignores SIGTERM for 5 s is killed.
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
say() { echo "$*" | tee -a "$dir/cluster.txt"; }

# A port nobody listens on right now (the kernel's pick for a throwaway socket).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits (up to 15 s) until `file` has a line matching `pattern`; prints the first match.
wait_for() {
    local file=$1 pattern=$2 pid=$3
    for _ in $(seq 150); do
        if grep -Eo "$pattern" "$file" 2>/dev/null | head -n 1 | grep .; then return 0; fi
        kill -0 "$pid" 2>/dev/null || { echo "exited early; its output:" >&2; cat "$file" >&2; return 1; }
        sleep 0.1
    done
    echo "timed out waiting for /$pattern/ in $file" >&2
    return 1
}

# Redis: its own folder, no snapshots; appendonly so a restart keeps the rooms' streams.
mkdir -p "$dir/redis"
for attempt in 1 2 3; do
    redis_port=$(free_port)
    redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dir/redis" --save '' \
        --appendonly yes >"$dir/redis.log" 2>&1 &
    redis_pid=$!
    if wait_for "$dir/redis.log" 'Ready to accept connections' "$redis_pid" >/dev/null 2>&1; then break; fi
    ((attempt < 3)) || { cat "$dir/redis.log" >&2; exit 1; }
done
pids+=("$redis_pid")
redis_url="redis://127.0.0.1:$redis_port/"
say "redis $redis_url"

# The nodes bind port 0 and print where they listen.
servers=""
for i in $(seq "$nodes"); do
    name="node$i"
    extra=()
    # The chat logs each client's address; nginx connects from 127.0.0.1.
    [[ $app == chat ]] && extra=(--trusted-proxy 127.0.0.1)
    "$NODE_BIN" 127.0.0.1:0 --redis "$redis_url" --node "$name" "${extra[@]}" >"$dir/$name.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    addr=$(wait_for "$dir/$name.log" '(http|ws)://[0-9.]+:[0-9]+' "$pid" | sed -E 's#^[a-z]+://##')
    servers+="        server $addr max_fails=1 fail_timeout=5s;"$'\n'
    say "node $name $pid $addr"
done

# nginx, from the template, with every path under the scratch folder.
mkdir -p "$dir/nginx"
for attempt in 1 2 3; do
    nginx_port=$(free_port)
    SERVERS=$servers SCRATCH="$dir/nginx" LISTEN="127.0.0.1:$nginx_port" python3 - \
        scripts/nginx/nginx.conf.template "$dir/nginx/nginx.conf" <<'PY'
import os, sys
lines = open(sys.argv[1]).read().split("\n")
for i, line in enumerate(lines):
    if not line.lstrip().startswith("#"):  # the comments name the placeholders
        for name in ("SCRATCH", "LISTEN", "SERVERS"):
            line = line.replace("@%s@" % name, os.environ[name].rstrip("\n"))
    lines[i] = line
open(sys.argv[2], "w").write("\n".join(lines))
PY
    "$NGINX" -p "$dir/nginx" -e "$dir/nginx/error.log" -c "$dir/nginx/nginx.conf" >"$dir/nginx.log" 2>&1 &
    nginx_pid=$!
    # nginx prints nothing when it is up: wait until its port answers.
    up=0
    for _ in $(seq 100); do
        if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1', $nginx_port), 0.5)" 2>/dev/null; then up=1; break; fi
        kill -0 "$nginx_pid" 2>/dev/null || break
        sleep 0.1
    done
    ((up)) && break
    kill "$nginx_pid" 2>/dev/null || true
    ((attempt < 3)) || { cat "$dir/nginx.log" "$dir/nginx/error.log" >&2; exit 1; }
done
pids+=("$nginx_pid")
say "nginx http://127.0.0.1:$nginx_port/ $nginx_pid"
say "ready"
echo "(scratch folder $dir; Ctrl-C stops everything)"
wait "$nginx_pid"
