#!/usr/bin/env bash
# The demo: installs the guest toolchains, builds wisp and the example functions, starts the platform on the
# embedded store, deploys examples/wisp.toml and prints curl lines to try. Ctrl-C stops it.
# Usage: scripts/demo.sh   (env: WISP_DEMO_LISTEN=127.0.0.1:8080, WISP_DATA_DIR=.wisp)
set -euo pipefail
cd "$(dirname "$0")/.."

listen=${WISP_DEMO_LISTEN:-127.0.0.1:8080}
data=${WISP_DATA_DIR:-.wisp}
url="http://$listen"

echo "==> building the example guests (C, Python, JavaScript, WAGI; cached after the first run)" >&2
scripts/build-guests.sh
echo "==> building wisp (release)" >&2
cargo build --release --bin wisp
bin="${CARGO_TARGET_DIR:-target}/release/wisp"   # where cargo put it (CARGO_TARGET_DIR if set)

echo "==> starting wisp up on $url (data in $data)" >&2
"$bin" up --listen "$listen" --data-dir "$data" &
pid=$!
cleanup() { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 0' INT TERM

export WISP_URL="$url" WISP_DATA_DIR="$data"
for _ in $(seq 1 200); do
  if [ -s "$data/api-token" ] && "$bin" status >/dev/null 2>&1; then break; fi
  kill -0 "$pid" 2>/dev/null || { echo "wisp up exited; see the messages above" >&2; exit 1; }
  sleep 0.1
done

echo "==> deploying examples/wisp.toml (Python and JavaScript take ~15 s each to precompile the first time)" >&2
"$bin" deploy examples
echo
"$bin" ls
cat <<MSG

wisp is up. Open the web console at $url/_wisp/console (sign in with the token in $data/api-token).
Try:
  curl $url/hello-c
  curl $url/hello-py
  curl $url/hello-js
  curl -i "$url/hello-wagi/some/path?x=1"
  curl "$url/primes?n=7919"
  curl --data-binary 'echo me' $url/echo-c
  curl --data-binary @README.md $url/echo-py
  curl $url/config/                                                         # wasi:config: a template over the app's variables
  curl $url/kv/hits                                                         # key-value: an atomic counter
  curl -X PUT --data 'hello' $url/kv/greeting && curl $url/kv/greeting       # key-value: set, get
  curl -i -H 'X-Wisp-Invocation-Type: Event' --data 'hello' $url/events     # 202 + x-wisp-invocation-id
  WISP_URL=$url WISP_DATA_DIR=$data $bin invoke events --async -d 'status:500'   # retried, then dead-lettered
  WISP_URL=$url WISP_DATA_DIR=$data $bin invocation <id>
  WISP_URL=$url WISP_DATA_DIR=$data $bin dlq ls events
  WISP_URL=$url WISP_DATA_DIR=$data $bin publish greetings -d 'hi from a topic'   # topic trigger
  curl -i --data 'hi from a webhook' $url/hooks/events                            # webhook trigger
  curl -i --data 'two apples' $url/orders/orders                          # wasi:messaging: publish to a topic
  curl $url/orders/last/orders                                              # what the messaging handler got
  curl -T README.md $url/blobs/readme && curl -s $url/blobs/readme | head -3   # wasi:blobstore, streamed
  WISP_URL=$url WISP_DATA_DIR=$data $bin blob ls --app examples                  # the same container from the CLI
  WISP_URL=$url WISP_DATA_DIR=$data $bin status        # triggers: the cron tick every 30 s, topic, webhook
  WISP_URL=$url WISP_DATA_DIR=$data $bin logs hello-py -f              # live: new invocations as they finish
  WISP_URL=$url WISP_DATA_DIR=$data $bin invocations --since 1h        # persisted records (--status error, --trigger cron)
  WISP_URL=$url WISP_DATA_DIR=$data $bin usage --by function           # requests, GB-s, CPU-ms, egress, cost
  curl -s -H "authorization: Bearer \$(cat $data/api-token)" $url/_wisp/metrics | grep ^wisp_invocations_total   # Prometheus
  WISP_URL=$url WISP_DATA_DIR=$data $bin status hello-c

Ctrl-C stops the server (in-flight requests finish first).
MSG
wait "$pid"
