#!/usr/bin/env bash
# Interop with python's `websockets` from PyPI, both roles (called by .ci/run).
#
#   usage: scripts/interop_python.sh
#
# Builds the `interop_client`, `echo_server` and `interop_checks` examples with `--features deflate`, installs
# `websockets` into a virtualenv under the target dir (reused on later runs), and runs
# scripts/interop_python.py (see its docstring for what is checked). Exit status 0 = both roles pass.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$REPO/$TARGET_DIR
VENV=$TARGET_DIR/interop-venv

cd "$REPO"
cargo build --release --features deflate --example interop_client --example echo_server \
    --example interop_checks
if [[ ! -x $VENV/bin/python ]]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --disable-pip-version-check 'websockets>=14,<18'
timeout -k 10 300 "$VENV/bin/python" scripts/interop_python.py \
    "$TARGET_DIR/release/examples/interop_client" "$TARGET_DIR/release/examples/echo_server" \
    "$TARGET_DIR/release/examples/interop_checks"
