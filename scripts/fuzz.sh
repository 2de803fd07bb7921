#!/usr/bin/env bash
# Fuzz wisp's parsers (not part of CI's budget): every target in fuzz/ for SECONDS each (default 120).
#
# usage: scripts/fuzz.sh [SECONDS] [TARGET...]
# Installs cargo-fuzz and uses the nightly toolchain (rustup toolchain install nightly) on first use.
# Crashes land in fuzz/artifacts/<target>/; the corpus in fuzz/corpus/<target>/ (both untracked).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${1:-120}
shift || true
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo fuzz --version >/dev/null 2>&1 || cargo install --locked cargo-fuzz
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
for t in "${targets[@]}"; do
  echo "==> $t (${secs}s)" >&2
  cargo +nightly fuzz run "$t" -- -max_total_time="$secs" -print_final_stats=1 2>&1 | grep -E "^(stat::number_of_executed_units|#[0-9]+ +DONE|==[0-9]+== ERROR|SUMMARY)" || true
  if [ -n "$(ls -A "artifacts/$t" 2>/dev/null)" ]; then
    echo "!! $t: crash inputs in fuzz/artifacts/$t" >&2
    exit 1
  fi
done
echo "fuzz: ${#targets[@]} target(s), no crashes" >&2
