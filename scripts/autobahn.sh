#!/usr/bin/env bash
# Autobahn|Testsuite conformance run for syncws (called by .ci/run; also runnable by hand).
#
#   usage: scripts/autobahn.sh [--cases PATTERNS] [--exclude PATTERNS] [--role server|client|both]
#
#   --cases PATTERNS    comma-separated case patterns, e.g. '1.*,2.*,9.7.*'   (default: '*')
#   --exclude PATTERNS  comma-separated patterns to skip; '' runs everything
#                       (default: $AUTOBAHN_EXCLUDE; if that is unset, '' when
#                       $AUTOBAHN_CARGO_FLAGS turns on the `deflate` feature, else '12.*,13.*':
#                       sections 12/13 test permessage-deflate)
#   --role ROLE         server, client or both                                (default: both)
#
# What it does:
#   1. installs wstest with $SHARED_DIR/tools/autobahn/setup.sh (idempotent, ~40 s the first time);
#   2. builds the testees once: cargo build --release --example autobahn_server --example autobahn_client
#      (default features; extra flags from $AUTOBAHN_CARGO_FLAGS) and runs the built binaries directly;
#   3. server role: starts `autobahn_server 127.0.0.1:PORT` (an echo server), waits for its port,
#      runs `wstest -m fuzzingclient` against it (agent "syncws"), stops the server;
#   4. client role: starts `wstest -m fuzzingserver -u 0` in the background, waits for its port, runs
#      `autobahn_client ws://127.0.0.1:PORT syncws` (getCaseCount, every runCase, updateReports), then
#      stops the fuzzing server by PID;
#   (steps 3 and 4 run at the same time unless AUTOBAHN_PARALLEL=0)
#   5. runs check.py REPORT --strict on each role's report (prints the per-section table and every
#      failing case, NON-STRICT included), prints each role's wall time.
# Exit status: 0 all roles passed; 1 a role failed (cases failed, testee crashed/timed out, no report);
# 2 usage or setup error (bad option, tools missing, cargo build failed); 130/143 interrupted.
# Each role runs in a private network namespace (`unshare -rn`, loopback only): the fuzzing server
# binds 0.0.0.0 whatever its spec says, and the namespace also keeps the ports free of collisions.
# Reports (HTML + index.json), generated specs and logs go to $AUTOBAHN_OUTDIR/{server,client}.
#
# Environment (all optional):
#   SHARED_DIR            shared tools dir                 (default: <repo>/../shared, else /work/shared)
#   AUTOBAHN_PREFIX       wstest install prefix            (default: $HOME/.cache/autobahn)
#   AUTOBAHN_CASES        default for --cases              (default: '*')
#   AUTOBAHN_EXCLUDE      default for --exclude            (default: see --exclude; set to '' for all)
#   AUTOBAHN_ROLE         default for --role               (default: both)
#   AUTOBAHN_CARGO_FLAGS  extra flags for cargo build, e.g. '--features tls' (word-split)
#   AUTOBAHN_SERVER_BIN   use this server testee instead of building the example (skips its build)
#   AUTOBAHN_CLIENT_BIN   use this client testee instead of building the example (skips its build)
#   AUTOBAHN_SERVER_PORT  port of the testee server        (default: 9301)
#   AUTOBAHN_CLIENT_PORT  port of the fuzzing server       (default: 9302)
#   AUTOBAHN_TIMEOUT      seconds allowed for the wstest fuzzingclient run (server role) and for the
#                         client testee (client role); the process serving it gets 60 s more (default: 900)
#   AUTOBAHN_OUTDIR       where reports go                 (default: <cargo target dir>/autobahn)
#   AUTOBAHN_PARALLEL     1 = run both roles at once (default); 0 = one after the other
#   AUTOBAHN_NETNS        1 = private netns per role (default); 0 = run on the host's network
#                         (only if unshare is unavailable; the fuzzing server then listens on 0.0.0.0)
# shellcheck disable=SC2329  # functions are invoked indirectly (trap, "inner_$ROLE")
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin

SELF=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")
AGENT=syncws
: "${AUTOBAHN_SERVER_PORT:=9301}" "${AUTOBAHN_CLIENT_PORT:=9302}" "${AUTOBAHN_TIMEOUT:=900}"
: "${AUTOBAHN_NETNS:=1}" "${AUTOBAHN_PREFIX:=$HOME/.cache/autobahn}"
export AUTOBAHN_SERVER_PORT AUTOBAHN_CLIENT_PORT AUTOBAHN_TIMEOUT AUTOBAHN_PREFIX
WSTEST=$AUTOBAHN_PREFIX/bin/wstest

log() { printf 'autobahn: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }
now_ms() { date +%s%3N; }

# ---------------------------------------------------------------------------------------------
# Inner part: one role, run inside the private network namespace. Config comes in via env
# (AB_OUT, AB_BIN, AB_SPEC). Starts background processes, and its EXIT trap stops them.
# ---------------------------------------------------------------------------------------------
# Every long-running step is started under `timeout`, which makes itself a process-group leader:
# a step is stopped by signalling its group, and even a SIGKILLed script leaves nothing running for
# longer than its timeout.
BG_PIDS=()
start_bg() {  # start_bg SECONDS OUTFILE CMD...: start CMD under timeout in the background; its PID -> $BG
    local secs=$1 logf=$2; shift 2
    timeout -k 10 "$secs" "$@" </dev/null >"$logf" 2>&1 &
    BG=$!; BG_PIDS+=("$BG")
}
alive() { kill -0 "$1" 2>/dev/null; }
group_alive() { kill -0 -- "-$1" 2>/dev/null; }
stop_groups() {  # stop_groups PID...: TERM each process group, wait up to 5 s in all, then KILL
    local pid i left
    for pid in "$@"; do kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true; done
    for ((i = 0; i < 50; i++)); do
        left=0
        for pid in "$@"; do if group_alive "$pid" || alive "$pid"; then left=1; fi; done
        ((left)) || break
        sleep 0.1
    done
    for pid in "$@"; do kill -KILL -- "-$pid" 2>/dev/null || true; kill -KILL "$pid" 2>/dev/null || true; done
    for pid in "$@"; do wait "$pid" 2>/dev/null || true; done
}
cleanup_bg() {
    if ((${#BG_PIDS[@]})); then stop_groups "${BG_PIDS[@]}"; fi
    BG_PIDS=()
}

# wait_port PORT PID WHAT: bounded (300 tries and 30 s) wait until 127.0.0.1:PORT accepts;
# fails early if PID dies.
wait_port() {
    local port=$1 pid=$2 what=$3 i deadline=$((SECONDS + 30))
    for ((i = 0; i < 300 && SECONDS < deadline; i++)); do
        if ! alive "$pid"; then log "$what exited before listening on port $port"; return 1; fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    log "$what did not listen on port $port within 30 s"
    return 1
}

# The testee server / fuzzing server get 60 s more than the step they serve, so that step's
# timeout is the one that shows.
inner_server() {
    local rc=0 server
    cd "$AB_OUT"
    start_bg $((AUTOBAHN_TIMEOUT + 60)) testee.log "$AB_BIN" "127.0.0.1:$AUTOBAHN_SERVER_PORT"; server=$BG
    wait_port "$AUTOBAHN_SERVER_PORT" "$server" "testee server ($AB_BIN)" || { tail -n 20 testee.log >&2; return 1; }
    log "server: testee up on 127.0.0.1:$AUTOBAHN_SERVER_PORT; running wstest -m fuzzingclient"
    start_bg "$AUTOBAHN_TIMEOUT" wstest.log "$WSTEST" -m fuzzingclient -s "$AB_SPEC"
    wait "$BG" || rc=$?
    if ((rc != 0)); then
        log "server: wstest exited with $rc (124 = timed out after ${AUTOBAHN_TIMEOUT}s); tail of $AB_OUT/wstest.log:"
        tail -n 20 wstest.log >&2
    fi
    if ! alive "$server"; then log "server: the testee server died during the run (see $AB_OUT/testee.log)"; rc=1; fi
    cleanup_bg
    return "$rc"
}

inner_client() {
    local rc=0 fuzzer
    cd "$AB_OUT"
    start_bg $((AUTOBAHN_TIMEOUT + 60)) wstest.log "$WSTEST" -m fuzzingserver -u 0 -s "$AB_SPEC"; fuzzer=$BG
    wait_port "$AUTOBAHN_CLIENT_PORT" "$fuzzer" "wstest fuzzingserver" || { tail -n 20 wstest.log >&2; return 1; }
    log "client: fuzzing server up on port $AUTOBAHN_CLIENT_PORT; running the client testee"
    start_bg "$AUTOBAHN_TIMEOUT" testee.log "$AB_BIN" "ws://127.0.0.1:$AUTOBAHN_CLIENT_PORT" "$AGENT"
    wait "$BG" || rc=$?
    if ((rc != 0)); then
        log "client: testee exited with $rc (124 = timed out after ${AUTOBAHN_TIMEOUT}s); tail of $AB_OUT/testee.log:"
        tail -n 20 testee.log >&2
    fi
    if ! alive "$fuzzer"; then log "client: wstest fuzzingserver died during the run (see $AB_OUT/wstest.log)"; rc=1; fi
    cleanup_bg
    return "$rc"
}

if [[ ${1:-} == __inner ]]; then
    trap cleanup_bg EXIT
    trap 'exit 143' TERM HUP; trap 'exit 130' INT
    "inner_$2"
    exit
fi

# ---------------------------------------------------------------------------------------------
# Outer part: options, setup, build, then each role in its own namespace, then check.py.
# ---------------------------------------------------------------------------------------------
usage() { sed -n '2,/^# shellcheck/{/^# shellcheck/d;s/^# \{0,1\}//;p}' "$SELF"; }

CASES=${AUTOBAHN_CASES:-*}
# Sections 12/13 need permessage-deflate, which the testees only offer when built with it.
case " ${AUTOBAHN_CARGO_FLAGS:-} " in
    *deflate* | *--all-features*) DEFAULT_EXCLUDE= ;;
    *) DEFAULT_EXCLUDE='12.*,13.*' ;;
esac
EXCLUDE=${AUTOBAHN_EXCLUDE-$DEFAULT_EXCLUDE}
ROLE=${AUTOBAHN_ROLE:-both}
while (($#)); do
    case $1 in
        --cases) (($# >= 2)) || die "--cases needs a value"; CASES=$2; shift 2 ;;
        --cases=*) CASES=${1#*=}; shift ;;
        --exclude) (($# >= 2)) || die "--exclude needs a value"; EXCLUDE=$2; shift 2 ;;
        --exclude=*) EXCLUDE=${1#*=}; shift ;;
        --role) (($# >= 2)) || die "--role needs a value"; ROLE=$2; shift 2 ;;
        --role=*) ROLE=${1#*=}; shift ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
case $ROLE in
    server) ROLES=(server) ;;
    client) ROLES=(client) ;;
    both) ROLES=(server client) ;;
    *) die "--role must be server, client or both (got '$ROLE')" ;;
esac
[[ -n $CASES ]] || die "--cases must not be empty (use '*' for all)"

REPO=$(git -C "$(dirname "$SELF")" rev-parse --show-toplevel 2>/dev/null || (cd "$(dirname "$SELF")/.." && pwd))
# CI clones the repo with shared/ beside it; a clone made elsewhere by hand finds the workplace's.
if [[ -z ${SHARED_DIR:-} ]]; then
    for candidate in "$REPO/../shared" /work/shared; do
        if [[ -d $candidate/tools/autobahn ]]; then SHARED_DIR=$candidate; break; fi
    done
fi
SHARED_DIR=${SHARED_DIR:-$REPO/../shared}
TOOLS=$SHARED_DIR/tools/autobahn
[[ -x $TOOLS/setup.sh && -f $TOOLS/check.py ]] || die "Autobahn tools not found in $TOOLS (set SHARED_DIR)"
command -v python3 >/dev/null || die "python3 is needed (check.py)"
command -v timeout >/dev/null || die "timeout (coreutils) is needed"

if [[ $AUTOBAHN_NETNS == 1 ]]; then
    { command -v unshare && command -v ip; } >/dev/null || die "unshare and ip are needed (or AUTOBAHN_NETNS=0)"
    unshare -rn true 2>/dev/null || die "unshare -rn fails here (no user namespaces?); AUTOBAHN_NETNS=0 runs without one"
fi

# Outer cleanup: stop running roles (each one's own EXIT trap then stops its children).
ROLE_PIDS=()
outer_cleanup() {
    local i pid
    for pid in "${ROLE_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 150; i++)); do alive "$pid" || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
}
trap outer_cleanup EXIT
trap 'exit 143' TERM HUP; trap 'exit 130' INT

# --- wstest ---
"$TOOLS/setup.sh" "$AUTOBAHN_PREFIX" >&2
[[ -x $WSTEST ]] || die "setup.sh did not produce $WSTEST"

# --- testees ---
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$REPO/$TARGET_DIR
OUT=${AUTOBAHN_OUTDIR:-$TARGET_DIR/autobahn}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
SERVER_BIN=${AUTOBAHN_SERVER_BIN:-}
CLIENT_BIN=${AUTOBAHN_CLIENT_BIN:-}
BUILD=()
for r in "${ROLES[@]}"; do
    if [[ $r == server && -z $SERVER_BIN ]]; then BUILD+=(--example autobahn_server); fi
    if [[ $r == client && -z $CLIENT_BIN ]]; then BUILD+=(--example autobahn_client); fi
done
if ((${#BUILD[@]})); then
    # shellcheck disable=SC2206  # AUTOBAHN_CARGO_FLAGS is word-split on purpose
    EXTRA=(${AUTOBAHN_CARGO_FLAGS:-})
    log "building: cargo build --release ${BUILD[*]} ${EXTRA[*]}"
    # json-render-diagnostics: errors still print normally; stdout gives us the built executables'
    # paths (right whatever --target / --profile / CARGO_TARGET_DIR say).
    ARTIFACTS=$(cd "$REPO" && cargo build --release "${BUILD[@]}" "${EXTRA[@]}" \
        --message-format=json-render-diagnostics) || die "cargo build failed"
    exe_of() {
        python3 -c '
import json, sys
name = sys.argv[1]
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == name and m.get("executable"):
        print(m["executable"])' "$1" <<<"$ARTIFACTS" | tail -n 1
    }
    [[ -n $SERVER_BIN ]] || ! [[ " ${ROLES[*]} " == *" server "* ]] || SERVER_BIN=$(exe_of autobahn_server)
    [[ -n $CLIENT_BIN ]] || ! [[ " ${ROLES[*]} " == *" client "* ]] || CLIENT_BIN=$(exe_of autobahn_client)
fi

# --- specs ---
json_list() {  # 'a, b,c' -> ["a","b","c"]; '' -> []   (no globbing of '*')
    local item out=() items=()
    IFS=, read -ra items <<<"$1"
    for item in "${items[@]}"; do
        item=${item//[[:space:]]/}
        if [[ -n $item ]]; then out+=("\"$item\""); fi
    done
    local IFS=,
    printf '[%s]' "${out[*]}"
}
CASES_JSON=$(json_list "$CASES")
EXCLUDE_JSON=$(json_list "$EXCLUDE")
log "cases: $CASES_JSON  exclude: $EXCLUDE_JSON  roles: ${ROLES[*]}"

write_spec() {  # write_spec ROLE OUTDIR SPECFILE
    local role=$1 dir=$2 spec=$3
    if [[ $role == server ]]; then
        cat >"$spec" <<JSON
{
  "options": {"failByDrop": false},
  "outdir": "$dir/report",
  "servers": [{"agent": "$AGENT", "url": "ws://127.0.0.1:$AUTOBAHN_SERVER_PORT"}],
  "cases": $CASES_JSON,
  "exclude-cases": $EXCLUDE_JSON,
  "exclude-agent-cases": {}
}
JSON
    else
        cat >"$spec" <<JSON
{
  "url": "ws://127.0.0.1:$AUTOBAHN_CLIENT_PORT",
  "options": {"failByDrop": false},
  "outdir": "$dir/report",
  "cases": $CASES_JSON,
  "exclude-cases": $EXCLUDE_JSON,
  "exclude-agent-cases": {}
}
JSON
    fi
}

# --- run ---
# Both roles run at once by default (each in its own namespace, on different ports): wstest is
# single-threaded Python and the bottleneck, so two roles use both cores and about halve the wall
# time of the slow sections 12/13. AUTOBAHN_PARALLEL=0 runs them one after the other.
declare -A RESULT TIME PID START
FAILED=0
start_role() {  # start_role ROLE: write its spec and start it in the background
    local r=$1 dir=$OUT/$1 bin
    rm -rf "$dir"; mkdir -p "$dir"
    write_spec "$r" "$dir" "$dir/spec.json"
    if [[ $r == server ]]; then bin=$SERVER_BIN; else bin=$CLIENT_BIN; fi
    [[ -n $bin && -x $bin ]] || die "$r testee not found or not executable: '${bin}'"
    log "=== $r role: testee $bin; report in $dir/report"
    START[$r]=$(now_ms)
    export AB_OUT=$dir AB_BIN=$bin AB_SPEC=$dir/spec.json
    if [[ $AUTOBAHN_NETNS == 1 ]]; then
        unshare -rn -- bash -c 'ip link set lo up && exec "$@"' autobahn-netns "$SELF" __inner "$r" &
    else
        "$SELF" __inner "$r" &
    fi
    PID[$r]=$!
    ROLE_PIDS+=("$!")
}
finish_role() {  # finish_role ROLE: wait for it, then check its report
    local r=$1 dir=$OUT/$1 rc=0 status=PASS
    wait "${PID[$r]}" || rc=$?
    TIME[$r]=$(( $(now_ms) - START[$r] ))
    if ((rc != 0)); then status=FAIL; fi
    if [[ -f $dir/report/index.json ]]; then
        echo "--- check.py $r role ($dir/report) ---"
        python3 "$TOOLS/check.py" "$dir/report" --strict || status=FAIL
    else
        log "$r: no report (index.json) was written"
        status=FAIL
    fi
    RESULT[$r]=$status
    [[ $status == PASS ]] || FAILED=1
}
if [[ ${AUTOBAHN_PARALLEL:-1} == 1 ]]; then
    for r in "${ROLES[@]}"; do start_role "$r"; done
    for r in "${ROLES[@]}"; do finish_role "$r"; done
else
    for r in "${ROLES[@]}"; do start_role "$r"; finish_role "$r"; done
fi
ROLE_PIDS=()

echo "--- autobahn summary ---"
for r in "${ROLES[@]}"; do
    report=$OUT/$r/report/index.html
    [[ -f $report ]] || report="none (logs: $OUT/$r/*.log)"
    printf '%-6s %s  (%d.%03d s wall)  report: %s\n' "$r" "${RESULT[$r]}" \
        $((TIME[$r] / 1000)) $((TIME[$r] % 1000)) "$report"
done
exit "$FAILED"
