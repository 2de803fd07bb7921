#!/usr/bin/env bash
# Build the wisp guest programs (examples/* and tests/guests/*) into WebAssembly.
#
# usage: scripts/build-guests.sh [--force] [--jobs N] [--list] [GUEST...]
#
#   GUEST...   build only these guests (default: all; see --list)
#   --force    ignore the build cache and rebuild
#   --jobs N   parallel builds (default: $WISP_GUEST_JOBS or the number of CPUs)
#   --list     print the guest names and exit
#
# environment:
#   WISP_GUESTS_DIR   output directory           (default: <repo>/target/guests)
#   XDG_CACHE_HOME    cache root                 (default: ~/.cache; we use <root>/wisp/)
#   CARGO_HOME        cargo home (crate sources) (default: ~/.cargo)
#
# Outputs <name>.wasm for every guest.  Each output is cached in
# <cache>/wisp/guests/<hash>/ where <hash> covers the guest's source files,
# the versions of every tool used and this script; an unchanged guest is
# copied from the cache instead of being rebuilt.
#
# Toolchains are installed on first use (idempotent, non-interactive):
#   apt:   clang-16 lld-16 wasi-libc libclang-rt-16-dev-wasm32     (C, WAGI)
#   cargo: wit-bindgen-cli 0.63.0, wasm-tools 1.263.0               (C)
#   pip:   componentize-py 0.25.1                                   (Python)
#   npm:   @bytecodealliance/componentize-js 0.23.0 in <cache>/wisp/npm (JavaScript)
#   venv:  componentize-py 0.17.2 + spin-sdk 3.4.1 in <cache>/wisp/spin-py (Spin SDK apps, built with
#          Spin's own `componentize-py -w spin-http componentize app` against the SDK's WIT)
#   npm:   a Spin JS app's own package-lock.json (`npm ci`), in <cache>/wisp/spin-js-npm/<hash of its
#          package.json + lock>; the app is then built with its own `npm run build`, as `spin build` does
# The WASI 0.2 WIT files come from the wasmtime-wasi-http crate source and the
# preview1 adapters from the wasi-preview1-component-adapter-provider crate,
# both 48.0.8, found in (or fetched into) the cargo registry: nothing vendored.
set -euo pipefail

# ---------------------------------------------------------------- settings ---

WASMTIME_VERSION=48.0.8   # WIT + preview1 adapters come from these crates
WIT_BINDGEN_VERSION=0.63.0
WASM_TOOLS_VERSION=1.263.0
WASM_TOOLS_FEATURES=component,validate,print,parse,strip,objdump
COMPONENTIZE_PY_VERSION=0.25.1
COMPONENTIZE_JS_VERSION=0.23.0
SPIN_COMPONENTIZE_PY_VERSION=0.17.2  # the pair the Spin Python SDK 3.4.1 documents
SPIN_SDK_VERSION=3.4.1
APT_PACKAGES=(clang-16 lld-16 wasi-libc libclang-rt-16-dev-wasm32)

WIT_WORLD=wasi:http/proxy@0.2.12
JS_WASI_VERSION=0.2.10    # componentize-js 0.23's engine is built against wasi:*@0.2.10

# name | kind | source dir | extra input dir (shared headers), "-" if none
#   kind: c-proxy   C wasi:http component, preview1 "proxy" adapter
#         c-reactor C wasi:http component, preview1 "reactor" adapter (needs env vars)
#         py        componentize-py     js  componentize-js
#         spin-py   a Spin SDK for Python app (app.py + spin.toml), built as Spin builds it
#         spin-js   a Spin JavaScript app (package.json + lock, spin.toml): `npm ci`, then `npm run build`;
#                   the output is the component's `source` in its spin.toml
#         wagi      preview1 command core module (not a component)
GUESTS="
hello-c    c-proxy   examples/hello-c        -
echo-c     c-proxy   examples/echo-c         -
hello-py   py        examples/hello-py       -
echo-py    py        examples/echo-py        -
event-py   py        examples/event-py       -
kv-py      py        examples/kv-py          wit
config-py  py        examples/config-py      wit
messaging-py py      examples/messaging-py   wit
counter-py py        tests/guests/counter-py -
spin-py    spin-py   tests/guests/spin-py    -
spin-js    spin-js   tests/guests/spin-js    -
hello-js   js        examples/hello-js       -
echo-js    js        examples/echo-js        -
hello-wagi wagi      examples/hello-wagi     -
primes-wagi wagi     examples/primes-wagi    -
badinit-wagi wagi    tests/guests/badinit-wagi -
trap-c     c-proxy   tests/guests/trap-c     tests/guests/common
loop-c     c-proxy   tests/guests/loop-c     tests/guests/common
membomb-c  c-proxy   tests/guests/membomb-c  tests/guests/common
logs-c     c-reactor tests/guests/logs-c     tests/guests/common
sleep-c    c-proxy   tests/guests/sleep-c    tests/guests/common
hostile-c  c-proxy   tests/guests/hostile-c  -
files-c    c-proxy   tests/guests/files-c    -
flood-wagi wagi      tests/guests/flood-wagi -
files-wagi wagi      tests/guests/files-wagi -
"

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPT="$REPO/scripts/build-guests.sh"
OUT_DIR=${WISP_GUESTS_DIR:-$REPO/target/guests}
CACHE_ROOT=${XDG_CACHE_HOME:-$HOME/.cache}/wisp
GUEST_CACHE=$CACHE_ROOT/guests
NPM_DIR=$CACHE_ROOT/npm
CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
export PATH="$CARGO_HOME/bin:$PATH"
export DEBIAN_FRONTEND=noninteractive

log() { printf 'build-guests: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ------------------------------------------------------------------- args ---

FORCE=0
JOBS=${WISP_GUEST_JOBS:-$(nproc 2>/dev/null || echo 2)}
SELECTED=()
while [ $# -gt 0 ]; do
  case "$1" in
    --force) FORCE=1 ;;
    --jobs) [ $# -ge 2 ] || die "--jobs needs a number"; JOBS=$2; shift ;;
    --jobs=*) JOBS=${1#--jobs=} ;;
    --list) awk 'NF {print $1}' <<<"$GUESTS"; exit 0 ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$SCRIPT"; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) SELECTED+=("$1") ;;
  esac
  shift
done
[[ "$JOBS" =~ ^[1-9][0-9]*$ ]] || die "--jobs must be a positive number, got '$JOBS'"

guest_field() { awk -v n="$1" -v f="$2" '$1 == n {print $f}' <<<"$GUESTS"; }
if [ ${#SELECTED[@]} -eq 0 ]; then
  mapfile -t SELECTED < <(awk 'NF {print $1}' <<<"$GUESTS")
fi
NEED_KINDS=" "
for g in "${SELECTED[@]}"; do
  kind=$(guest_field "$g" 2)
  [ -n "$kind" ] || die "unknown guest '$g' (known: $(awk 'NF {printf "%s ", $1}' <<<"$GUESTS"))"
  NEED_KINDS+="$kind "
done
needs() { # needs KIND... : is any selected guest of one of these kinds?
  local k
  for k in "$@"; do [[ "$NEED_KINDS" == *" $k "* ]] && return 0; done
  return 1
}

# ------------------------------------------------------------- toolchains ---

SUDO=()
if [ "$(id -u)" -ne 0 ]; then SUDO=(sudo -n); fi

ensure_apt() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing apt packages: ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq >&2
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${APT_PACKAGES[@]}" >&2
}

ensure_cargo_tool() { # ensure_cargo_tool BIN CRATE VERSION [cargo install args...]
  local bin=$1 crate=$2 version=$3 found=''
  shift 3
  if command -v "$bin" >/dev/null; then found=$("$bin" --version 2>/dev/null || true); fi
  # e.g. "wit-bindgen-cli 0.63.0", "wasm-tools 1.263.0 (...)"
  [[ "$found" == *" $version"* ]] && return 0
  command -v cargo >/dev/null || die "cargo not found (needed to install $crate)"
  log "cargo install $crate@$version (takes a few minutes)"
  cargo install --locked --quiet "$crate@$version" "$@" >&2
}

COMPONENTIZE_PY_FOUND=''
ensure_componentize_py() {
  if command -v componentize-py >/dev/null; then
    COMPONENTIZE_PY_FOUND=$(componentize-py --version 2>/dev/null || true)
    [ "$COMPONENTIZE_PY_FOUND" = "componentize-py $COMPONENTIZE_PY_VERSION" ] && return 0
  fi
  command -v python3 >/dev/null || die "python3 not found (needed for componentize-py)"
  log "pip install componentize-py==$COMPONENTIZE_PY_VERSION"
  python3 -m pip install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION" >&2 ||
    python3 -m pip install --quiet --disable-pip-version-check --break-system-packages \
      "componentize-py==$COMPONENTIZE_PY_VERSION" >&2
  if command -v pyenv >/dev/null; then pyenv rehash; fi
  COMPONENTIZE_PY_FOUND=$(componentize-py --version 2>/dev/null) ||
    die "componentize-py installed but not runnable from PATH"
}

componentize_js_installed_version() {
  sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' \
    "$NPM_DIR/node_modules/@bytecodealliance/componentize-js/package.json" 2>/dev/null | head -n1
}

ensure_componentize_js() {
  [ "$(componentize_js_installed_version)" = "$COMPONENTIZE_JS_VERSION" ] && return 0
  command -v npm >/dev/null || die "npm not found (needed for componentize-js; node >= 20)"
  log "npm install @bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION into $NPM_DIR"
  mkdir -p "$NPM_DIR"
  [ -f "$NPM_DIR/package.json" ] || echo '{ "private": true }' >"$NPM_DIR/package.json"
  (cd "$NPM_DIR" && npm install --no-audit --no-fund --loglevel=error \
    "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION" >&2)
}

if needs c-proxy c-reactor wagi; then ensure_apt; fi
if needs c-proxy c-reactor; then
  ensure_cargo_tool wit-bindgen wit-bindgen-cli "$WIT_BINDGEN_VERSION"
  ensure_cargo_tool wasm-tools wasm-tools "$WASM_TOOLS_VERSION" \
    --no-default-features --features "$WASM_TOOLS_FEATURES"
fi
if needs py; then ensure_componentize_py; fi
if needs js; then ensure_componentize_js; fi

SPIN_VENV=''
ensure_spin_sdk() {
  SPIN_VENV=$CACHE_ROOT/spin-py
  local want="componentize-py $SPIN_COMPONENTIZE_PY_VERSION; spin-sdk $SPIN_SDK_VERSION"
  [ "$(cat "$SPIN_VENV/.wisp-tools" 2>/dev/null)" = "$want" ] && return 0
  log "python venv with componentize-py==$SPIN_COMPONENTIZE_PY_VERSION spin-sdk==$SPIN_SDK_VERSION in $SPIN_VENV"
  rm -rf "$SPIN_VENV"
  python3 -m venv "$SPIN_VENV" >&2 || die "python3 -m venv failed (apt install python3-venv)"
  "$SPIN_VENV/bin/pip" install --quiet --disable-pip-version-check \
    "componentize-py==$SPIN_COMPONENTIZE_PY_VERSION" "spin-sdk==$SPIN_SDK_VERSION" >&2
  echo "$want" >"$SPIN_VENV/.wisp-tools"
}
if needs spin-py; then ensure_spin_sdk; fi
if needs spin-js; then
  command -v npm >/dev/null || die "npm not found (needed for Spin JS apps; node >= 20)"
fi

# ------------------------------------------------ WIT files and adapters ---

# Prints the source dir of crate NAME-VERSION in the cargo registry, if any.
registry_crate_dir() {
  local d
  for d in "$CARGO_HOME"/registry/src/*/"$1-$2"; do
    [ -d "$d" ] && { echo "$d"; return 0; }
  done
  return 1
}

# Makes cargo download (and unpack) crates into the registry through a
# throwaway project in the cache: never touches the repo's workspace.
# args: "name" ... (all at WASMTIME_VERSION)
fetch_crates() {
  local proj=$CACHE_ROOT/crate-fetch c host
  command -v cargo >/dev/null || die "cargo not found (needed to fetch $*)"
  log "fetching crate sources: $* ($WASMTIME_VERSION)"
  rm -rf "$proj"
  mkdir -p "$proj/src"
  : >"$proj/src/lib.rs"
  {
    printf '[package]\nname = "wisp-guest-crate-fetch"\nversion = "0.0.0"\nedition = "2021"\npublish = false\n\n'
    printf '[dependencies]\n'
    for c in "$@"; do printf '%s = "=%s"\n' "$c" "$WASMTIME_VERSION"; done
    printf '\n[workspace]\n'
  } >"$proj/Cargo.toml"
  host=$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')
  (cd "$proj" && cargo fetch --quiet ${host:+--target "$host"} >&2) ||
    die "cargo fetch of $* failed (in $proj)"
}

WIT_DIR='' ADAPTER_DIR=''
locate_wasi_crates() {
  local want=()
  WIT_DIR=$(registry_crate_dir wasmtime-wasi-http "$WASMTIME_VERSION")/wit || want+=(wasmtime-wasi-http)
  ADAPTER_DIR=$(registry_crate_dir wasi-preview1-component-adapter-provider "$WASMTIME_VERSION")/artefacts ||
    want+=(wasi-preview1-component-adapter-provider)
  if [ ${#want[@]} -gt 0 ]; then
    fetch_crates "${want[@]}"
    WIT_DIR=$(registry_crate_dir wasmtime-wasi-http "$WASMTIME_VERSION")/wit ||
      die "wasmtime-wasi-http-$WASMTIME_VERSION not in $CARGO_HOME/registry/src after cargo fetch"
    ADAPTER_DIR=$(registry_crate_dir wasi-preview1-component-adapter-provider "$WASMTIME_VERSION")/artefacts ||
      die "wasi-preview1-component-adapter-provider-$WASMTIME_VERSION not in $CARGO_HOME/registry/src after cargo fetch"
  fi
  [ -d "$WIT_DIR/deps" ] || die "no WIT deps in $WIT_DIR"
  local a
  for a in proxy reactor; do
    [ -f "$ADAPTER_DIR/wasi_snapshot_preview1.$a.wasm" ] || die "missing adapter $ADAPTER_DIR/wasi_snapshot_preview1.$a.wasm"
  done
}
if needs c-proxy c-reactor py js; then locate_wasi_crates; fi

# componentize-js wants wasi:*@0.2.10: a relabelled copy of the 0.2.12 WIT,
# kept in the cache (keyed by the source WIT's hash).
WIT_JS_DIR=''
make_js_wit() {
  local h tmp
  h=$(cd "$WIT_DIR" && find . -name '*.wit' -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
  WIT_JS_DIR=$CACHE_ROOT/wit-wasi-$JS_WASI_VERSION-$h
  [ -f "$WIT_JS_DIR/world.wit" ] && return 0
  tmp=$(mktemp -d "$CACHE_ROOT/.wit-tmp.XXXXXX")
  mkdir -p "$tmp/deps"
  cp "$WIT_DIR"/deps/*.wit "$tmp/deps/"
  # Every "0.2.12" (package/use versions and @since gates) becomes 0.2.10.
  sed -i "s/0\.2\.12/$JS_WASI_VERSION/g" "$tmp"/deps/*.wit
  printf 'package wisp:guest;\n\nworld proxy {\n  include wasi:http/proxy@%s;\n}\n' "$JS_WASI_VERSION" >"$tmp/world.wit"
  rm -rf "$WIT_JS_DIR"
  mv "$tmp" "$WIT_JS_DIR"
}
mkdir -p "$CACHE_ROOT" "$GUEST_CACHE" "$OUT_DIR"
if needs js; then make_js_wit; fi

# ------------------------------------------------------------ fingerprints ---

sha_of_files() { # stdin: file list (relative to $REPO); prints a hash of names+contents
  (cd "$REPO" && LC_ALL=C sort | while IFS= read -r f; do
    printf '%s\n' "$f"
    sha256sum <"$f"
  done) | sha256sum | cut -d' ' -f1
}
dir_hash() { (cd "$1" && find . -type f | LC_ALL=C sort | xargs -r sha256sum) | sha256sum | cut -d' ' -f1; }

TOOLS_C='' TOOLS_WAGI='' TOOLS_PY='' TOOLS_JS='' TOOLS_SPIN='' TOOLS_SPIN_JS=''
SCRIPT_HASH=$(sha256sum <"$SCRIPT" | cut -d' ' -f1)
if needs c-proxy c-reactor wagi; then
  TOOLS_WAGI="$(clang-16 --version | head -n1); $(dpkg-query -W -f='${Package} ${Version}; ' wasi-libc libclang-rt-16-dev-wasm32)"
fi
if needs c-proxy c-reactor; then
  TOOLS_C="$TOOLS_WAGI; $(wit-bindgen --version); $(wasm-tools --version);"
  TOOLS_C+=" wit $(dir_hash "$WIT_DIR"); adapters $(dir_hash "$ADAPTER_DIR")"
fi
if needs py; then
  TOOLS_PY="$COMPONENTIZE_PY_FOUND; wit $(dir_hash "$WIT_DIR")"
fi
if needs spin-py; then TOOLS_SPIN=$(cat "$SPIN_VENV/.wisp-tools"); fi
# A Spin JS app's packages are pinned by its package-lock.json, which is among its hashed sources.
if needs spin-js; then TOOLS_SPIN_JS="node $(node --version); npm $(npm --version)"; fi
if needs js; then
  TOOLS_JS="componentize-js $(componentize_js_installed_version); node $(node --version);"
  TOOLS_JS+=" wit $(dir_hash "$WIT_JS_DIR")"
fi

guest_hash() { # guest_hash NAME
  local kind src extra tools inputs
  kind=$(guest_field "$1" 2) src=$(guest_field "$1" 3) extra=$(guest_field "$1" 4)
  inputs=("$src")
  [ "$extra" = - ] || inputs+=("$extra")
  case "$kind" in
    c-*) tools=$TOOLS_C ;; wagi) tools=$TOOLS_WAGI ;; py) tools=$TOOLS_PY ;; js) tools=$TOOLS_JS ;;
    spin-py) tools=$TOOLS_SPIN ;; spin-js) tools=$TOOLS_SPIN_JS ;;
  esac
  {
    echo "guest $1 kind $kind script $SCRIPT_HASH"
    echo "tools $tools"
    (cd "$REPO" && find "${inputs[@]}" -type f \
      ! -name '*.pyc' ! -path '*/__pycache__/*' ! -path '*/node_modules/*' \
      ! -path 'tests/guests/spin-js/build/*' ! -path 'tests/guests/spin-js/dist/*' | sha_of_files)
  } | sha256sum | cut -c1-32
}

# ------------------------------------------------------------------ builds ---

# Every build step goes through `run`, which echoes the command into the
# guest's log and, on failure, records which command failed.
run() {
  printf '+ %s\n' "$*"
  local rc=0
  "$@" || rc=$?
  if [ $rc -ne 0 ]; then
    printf '%s\n(exit status %d)\n' "$*" "$rc" >"$WORK/failed-command"
    return $rc
  fi
}

build_c() { # build_c NAME SRC EXTRA ADAPTER OUT
  # A guest dir with a world.wit of its own (a world that includes wasi:http/proxy plus more imports) is
  # built against that world, with the WASI WIT files as its deps; the bindings are named after the world.
  local name=$1 src=$2 extra=$3 adapter=$4 out=$5 incs=() wit=$WIT_DIR world=$WIT_WORLD stem=proxy
  if [ -f "$REPO/$src/world.wit" ]; then
    wit=$WORK/wit
    mkdir -p "$wit"
    run cp -R "$WIT_DIR/deps" "$wit/deps"
    run cp "$REPO/$src/world.wit" "$wit/world.wit"
    stem=$(sed -n 's/^world \([a-z0-9-]*\) {.*/\1/p' "$wit/world.wit" | head -n1)
    [ -n "$stem" ] || { echo "no world in $src/world.wit" >"$WORK/failed-command"; return 1; }
    world=$stem
  fi
  run wit-bindgen c "$wit" --world "$world" --out-dir "$WORK/bindings"
  incs=(-I "$WORK/bindings")
  [ "$extra" = - ] || incs+=(-I "$REPO/$extra")
  run clang-16 --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -O2 -Wall -Wextra \
    "${incs[@]}" "$REPO/$src"/*.c "$WORK/bindings/$stem.c" "$WORK/bindings/${stem}_component_type.o" \
    -o "$WORK/core.wasm"
  run wasm-tools component new "$WORK/core.wasm" \
    --adapt "wasi_snapshot_preview1=$ADAPTER_DIR/wasi_snapshot_preview1.$adapter.wasm" -o "$out"
  run wasm-tools validate "$out"
}

build_wagi() { # build_wagi SRC OUT
  run clang-16 --target=wasm32-wasi --sysroot=/usr -O2 -Wall -Wextra "$REPO/$1"/*.c -o "$2"
}

build_py() { # build_py SRC OUT
  # Build from a copy so the source tree gets no __pycache__. A guest dir with a world.wit of its own is
  # built against that world: the WASI WIT files and the repo's wit/ packages as its deps.
  local wit=$WIT_DIR world=$WIT_WORLD pkg
  run cp -R "$REPO/$1" "$WORK/app"
  if [ -f "$REPO/$1/world.wit" ]; then
    wit=$WORK/wit
    mkdir -p "$wit/deps"
    run cp -R "$WIT_DIR/deps/." "$wit/deps/"
    for pkg in "$REPO"/wit/*/; do run cp -R "$pkg" "$wit/deps/$(basename "$pkg")"; done
    run mv "$WORK/app/world.wit" "$wit/world.wit"
    world=$(sed -n 's/^world \([a-z0-9-]*\) {.*/\1/p' "$wit/world.wit" | head -n1)
    [ -n "$world" ] || { echo "no world in $1/world.wit" >"$WORK/failed-command"; return 1; }
  fi
  (cd "$WORK/app" && run env PYTHONDONTWRITEBYTECODE=1 \
    componentize-py -d "$wit" -w "$world" componentize app -o "$2")
}

build_spin_py() { # build_spin_py SRC OUT: the command of the app's spin.toml, in the Spin SDK venv
  run cp -R "$REPO/$1" "$WORK/app"
  (cd "$WORK/app" && run env PYTHONDONTWRITEBYTECODE=1 PATH="$SPIN_VENV/bin:$PATH" VIRTUAL_ENV="$SPIN_VENV" \
    componentize-py -w spin-http componentize app -o "$2")
}

# Installs a Spin JS app's locked packages into the cache, once per package.json + lock: prints the
# directory whose node_modules the app's build uses. Never writes into the repo.
spin_js_packages() { # spin_js_packages SRC
  local src=$REPO/$1 h dir tmp
  [ -f "$src/package-lock.json" ] || { echo "no package-lock.json in $1" >"$WORK/failed-command"; return 1; }
  h=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -c1-16)
  dir=$CACHE_ROOT/spin-js-npm/$h
  if [ ! -f "$dir/.wisp-installed" ]; then
    # (In a command substitution errexit is off: each step checks its own status.)
    mkdir -p "$CACHE_ROOT/spin-js-npm" && tmp=$(mktemp -d "$CACHE_ROOT/spin-js-npm/.tmp.XXXXXX") || return 1
    cp "$src/package.json" "$src/package-lock.json" "$tmp/" || return 1
    # --ignore-scripts: no install script is needed (esbuild finds its binary in its platform package), and
    # npm versions differ in which ones they run.
    (cd "$tmp" && run npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2 || { rm -rf "$tmp"; return 1; }
    touch "$tmp/.wisp-installed" || return 1
    rm -rf "$dir"
    mv "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"  # a parallel build may have won; its copy is the same
  fi
  echo "$dir"
}

build_spin_js() { # build_spin_js SRC OUT: the app's own build (`npm run build`) with its locked packages
  local deps source
  deps=$(spin_js_packages "$1")
  run cp -R "$REPO/$1" "$WORK/app"
  # What a local `npm install` / `npm run build` in the source dir left there is not an input.
  run rm -rf "$WORK/app/node_modules" "$WORK/app/build" "$WORK/app/dist"
  run ln -s "$deps/node_modules" "$WORK/app/node_modules"
  (cd "$WORK/app" && run npm run build)
  # The component's `source` in spin.toml (the app has one component).
  source=$(sed -n 's/^source *= *"\([^"]*\)".*/\1/p' "$WORK/app/spin.toml" | head -n1)
  [ -n "$source" ] || { echo "no component source in $1/spin.toml" >"$WORK/failed-command"; return 1; }
  # Spin's j2w reports a failed componentization but exits 0: the missing output is the failure.
  [ -s "$WORK/app/$source" ] || { echo "npm run build made no $source (see the log)" >"$WORK/failed-command"; return 1; }
  run cp "$WORK/app/$source" "$2"
}

build_js() { # build_js SRC OUT
  (cd "$NPM_DIR" && run ./node_modules/.bin/componentize-js "$REPO/$1/app.js" \
    --wit "$WIT_JS_DIR" --world-name "wasi:http/proxy@$JS_WASI_VERSION" -o "$2")
}

# Builds one guest into $GUEST_CACHE/<hash>/<name>.wasm (atomically).
build_guest() { # build_guest NAME HASH
  local name=$1 hash=$2 kind src extra
  kind=$(guest_field "$name" 2) src=$(guest_field "$name" 3) extra=$(guest_field "$name" 4)
  local out=$WORK/$name.wasm
  case "$kind" in
    c-proxy) build_c "$name" "$src" "$extra" proxy "$out" ;;
    c-reactor) build_c "$name" "$src" "$extra" reactor "$out" ;;
    wagi) build_wagi "$src" "$out" ;;
    py) build_py "$src" "$out" ;;
    spin-py) build_spin_py "$src" "$out" ;;
    spin-js) build_spin_js "$src" "$out" ;;
    js) build_js "$src" "$out" ;;
  esac
  [ -s "$out" ] || { echo "no output produced" >"$WORK/failed-command"; return 1; }
  mkdir -p "$WORK/entry"
  mv "$out" "$WORK/entry/$name.wasm"
  { echo "guest: $name ($kind, $src)"; echo "built: $(date -u +%FT%TZ)"; } >"$WORK/entry/info.txt"
  rm -rf "${GUEST_CACHE:?}/${hash:?}"
  mv "$WORK/entry" "$GUEST_CACHE/$hash"
}

install_output() { # install_output NAME HASH: copy cache entry -> $OUT_DIR (atomic)
  local src=$GUEST_CACHE/$2/$1.wasm dst=$OUT_DIR/$1.wasm
  if [ -f "$dst" ] && cmp -s "$src" "$dst"; then return 0; fi
  cp "$src" "$dst.tmp.$$"
  mv -f "$dst.tmp.$$" "$dst"
}

TMP_ROOT=$(mktemp -d "$GUEST_CACHE/.build.XXXXXX")
trap 'rm -rf "$TMP_ROOT"' EXIT
LOG_DIR=$GUEST_CACHE/logs
mkdir -p "$LOG_DIR"

START=$SECONDS
declare -A PIDS=() HASHES=() STARTED=()
FAILED=()

# Reports a finished build (its exit status is in $TMP_ROOT/<name>/status,
# since `wait -n` has already reaped it) and installs its output.
finish_job() { # finish_job NAME
  local name=$1 rc failed
  unset "PIDS[$name]"
  rc=$(cat "$TMP_ROOT/$name/status" 2>/dev/null || echo 1)
  if [ "$rc" -eq 0 ]; then
    install_output "$name" "${HASHES[$name]}"
    log "built  $name ($((SECONDS - STARTED[$name]))s)"
    return 0
  fi
  FAILED+=("$name")
  failed=$(cat "$TMP_ROOT/$name/failed-command" 2>/dev/null || echo "(unknown command, exit status $rc)")
  log "FAILED $name; this command failed:"
  printf '    %s\n' "$failed" >&2
  log "last lines of $LOG_DIR/$name.log:"
  tail -n 25 "$LOG_DIR/$name.log" | sed 's/^/    | /' >&2
}

# Waits for any running build to end and reports it.
wait_one() {
  local done_pid='' name
  wait -n -p done_pid "${PIDS[@]}" || true
  for name in "${!PIDS[@]}"; do
    if [ "${PIDS[$name]}" = "$done_pid" ]; then finish_job "$name"; fi
  done
}

for name in "${SELECTED[@]}"; do
  hash=$(guest_hash "$name")
  HASHES[$name]=$hash
  if [ $FORCE -eq 0 ] && [ -f "$GUEST_CACHE/$hash/$name.wasm" ]; then
    touch "$GUEST_CACHE/$hash"  # marks the entry as in use (see pruning below)
    install_output "$name" "$hash"
    log "cached $name"
    continue
  fi
  while [ ${#PIDS[@]} -ge "$JOBS" ]; do wait_one; done
  log "build  $name ..."
  mkdir -p "$TMP_ROOT/$name"
  STARTED[$name]=$SECONDS
  (
    # errexit is live here (no `||` around the call), so the first failing
    # step ends the build; the EXIT trap records the status.
    WORK=$TMP_ROOT/$name
    trap 'echo $? >"$WORK/status"' EXIT
    build_guest "$name" "$hash" >"$LOG_DIR/$name.log" 2>&1
  ) &
  PIDS[$name]=$!
done
while [ ${#PIDS[@]} -gt 0 ]; do wait_one; done

# Prune cache entries that no build has used for 30 days.
find "$GUEST_CACHE" -mindepth 1 -maxdepth 1 -type d -regextype posix-extended -regex '.*/[0-9a-f]{32}' -mtime +30 \
  -exec rm -rf {} + 2>/dev/null || true

if [ ${#FAILED[@]} -gt 0 ]; then
  die "${#FAILED[@]} guest(s) failed: ${FAILED[*]} (logs in $LOG_DIR)"
fi
log "done: ${#SELECTED[@]} guest(s) in $OUT_DIR ($((SECONDS - START))s)"
