#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time from the committed seeds and regression inputs.
#
#   usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 30 s, every target)
#
# cargo-fuzz needs nightly-only compiler flags; RUSTC_BOOTSTRAP=1 lets this machine's stable
# toolchain accept them. Targets are built without a sanitizer (-s none): the library forbids
# unsafe code, so AddressSanitizer would mostly slow the search down; debug assertions and overflow
# checks stay on (-a), so an arithmetic overflow on peer input is a crash.
#
# A crash fails the run and leaves the input in fuzz/artifacts/TARGET/. Make it a regression:
# copy it to fuzz/regressions/TARGET/ (tests/fuzz_regressions.rs then replays it in `cargo test`),
# fix the bug, and commit both.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
shift || true
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list)
fi
features=${FUZZ_FEATURES:-}
cargo fuzz build -s none -a ${features:+--features "$features"} >/dev/null
failed=0
printf '%-22s %12s %10s %8s\n' target executions exec/s result
for target in "${targets[@]}"; do
    corpus=target/fuzz-corpus/$target
    mkdir -p "$corpus"
    cp -n fuzz/seeds/"$target"/* "$corpus"/ 2>/dev/null || true
    cp -n fuzz/regressions/"$target"/* "$corpus"/ 2>/dev/null || true
    log=target/fuzz-corpus/$target.log
    if cargo fuzz run -s none -a ${features:+--features "$features"} "$target" "$corpus" -- \
        -max_total_time="$seconds" -max_len=4096 -rss_limit_mb=1024 -timeout=10 >"$log" 2>&1; then
        result=ok
    else
        result=CRASH
        failed=1
    fi
    runs=$(grep -aoE 'Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' || echo "?")
    rate=$(grep -aoE 'exec/s: [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+' || echo "?")
    printf '%-22s %12s %10s %8s\n' "$target" "$runs" "$rate" "$result"
    if [ "$result" = CRASH ]; then
        grep -aE 'panicked|ERROR|artifact' "$log" | head -5 | sed 's/^/    /'
    fi
done
exit $failed
