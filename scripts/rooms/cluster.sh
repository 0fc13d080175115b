#!/usr/bin/env bash
# Rooms across processes (issue 21) with a real redis-server: see scripts/rooms/cluster.py.
#
#   usage: scripts/rooms/cluster.sh [--messages N]
#
# Needs redis-server on PATH (Debian's package; .ci/run installs it). Builds room_server in
# release mode, installs python `websockets` into a virtualenv under the target dir.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$REPO/$TARGET_DIR
VENV=$TARGET_DIR/interop-venv
command -v redis-server >/dev/null || { echo "redis-server is missing (apt-get install redis-server)" >&2; exit 1; }
cd "$REPO"
cargo build --release --features redis --example room_server
[[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check 'websockets>=14,<18'
ulimit -n 20000 2>/dev/null || true
timeout -k 10 600 "$VENV/bin/python" scripts/rooms/cluster.py "$TARGET_DIR/release/examples/room_server" "$@"
