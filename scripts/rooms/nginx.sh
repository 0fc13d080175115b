#!/usr/bin/env bash
# Two room_server nodes behind nginx: see scripts/rooms/nginx_check.py and docs/rooms.md.
#
#   usage: scripts/rooms/nginx.sh
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$REPO/$TARGET_DIR
VENV=$TARGET_DIR/interop-venv
for tool in redis-server nginx; do
    command -v $tool >/dev/null || { echo "$tool is missing (apt-get install redis-server nginx)" >&2; exit 1; }
done
cd "$REPO"
cargo build --release --features redis --example room_server
[[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check 'websockets>=14,<18'
timeout -k 10 120 "$VENV/bin/python" scripts/rooms/nginx_check.py "$TARGET_DIR/release/examples/room_server"
