#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs, builds the guests, checks formatting and
# lints, runs every test. Usage: scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

# Build cache outside the clone, so CI on a machine that ran before (fresh clone each time) rebuilds only what
# changed. Cargo's fingerprints keep it correct; a new machine builds from scratch.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wisp/target}"

step "toolchain"
cargo --version >&2
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  rustup component add rustfmt clippy
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  cargo install --locked cargo-nextest
fi

step "brokers the trigger tests start on their own ports, and promtool"
# tests/triggers.rs starts (and kills) its own redis-server, mosquitto and nats-server, and publishes with
# redis-cli and mosquitto_pub. Installed from apt when missing.
missing=()
# tests/metrics.rs checks the exposition with Prometheus's promtool (apt prometheus).
for bin in redis-server:redis-server redis-cli:redis-tools mosquitto:mosquitto mosquitto_pub:mosquitto-clients nats-server:nats-server promtool:prometheus; do
  command -v "${bin%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${bin%%:*}" ] || missing+=("${bin#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=(); if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo -n); fi
  "${SUDO[@]}" apt-get update -qq >&2
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
export PATH="$PATH:/usr/sbin"

step "headless Chromium for the console test"
# tests/console.rs drives the web console in Chromium through chromedriver (started by the test on a loopback
# port). Installed from apt when missing.
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  SUDO=(); if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo -n); fi
  "${SUDO[@]}" apt-get update -qq >&2
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2
fi

step "guests (cached by input hash)"
scripts/build-guests.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "tests"
cargo nextest run --workspace --no-fail-fast
