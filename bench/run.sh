#!/usr/bin/env bash
# End-to-end benchmark: wisp vs `wasmtime serve` 48.0.8 vs a native hyper server (see bench/README.md).
#
# usage: bench/run.sh [run.py options...]     e.g. bench/run.sh --duration 5 --keep-logs
#
# Builds what it needs (idempotent; cheap when up to date), then runs bench/run.py, which prints a
# markdown report and writes bench/results/latest.md.
#
# environment:
#   XDG_CACHE_HOME   cache root (default ~/.cache); wasmtime-cli is installed into <root>/wisp/tools
#   WASMTIME         use this wasmtime binary instead (must be 48.0.8 for comparable numbers)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WASMTIME_VERSION=48.0.8
TOOLS="${XDG_CACHE_HOME:-$HOME/.cache}/wisp/tools"
export CARGO_TARGET_DIR="$REPO/target"

step() { printf '[run.sh] %s\n' "$*" >&2; }

step "building wisp (release)"
(cd "$REPO" && cargo build --release --bin wisp)

step "building bench/hyper-hello (release)"
cargo build --release --manifest-path "$REPO/bench/hyper-hello/Cargo.toml"

step "building guests hello-c hello-py hello-js sleep-c primes-wagi"
"$REPO/scripts/build-guests.sh" hello-c hello-py hello-js sleep-c primes-wagi

WASMTIME="${WASMTIME:-$TOOLS/bin/wasmtime}"
if ! "$WASMTIME" --version 2>/dev/null | grep -q "^wasmtime $WASMTIME_VERSION"; then
    step "installing wasmtime-cli@$WASMTIME_VERSION into $TOOLS (~10 min, once)"
    cargo install --locked --root "$TOOLS" "wasmtime-cli@$WASMTIME_VERSION"
    WASMTIME="$TOOLS/bin/wasmtime"
fi

if ! command -v wrk >/dev/null; then
    step "installing wrk (apt)"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get install -y wrk || { $SUDO apt-get update && $SUDO apt-get install -y wrk; }
fi

step "running bench/run.py"
exec python3 "$REPO/bench/run.py" \
    --wisp "$REPO/target/release/wisp" \
    --hyper-hello "$REPO/target/release/hyper-hello" \
    --wasmtime "$WASMTIME" \
    --guests "${WISP_GUESTS_DIR:-$REPO/target/guests}" \
    "$@"
