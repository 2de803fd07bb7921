#!/usr/bin/env python3
"""Asynchronous invocation benchmark: durable accepts, accept→handler latency, end-to-end events/s, and a
JetStream publish peer — side by side in one run.

usage: python3 bench/events.py --wisp target/release/wisp --guests target/guests [--duration 10]
       [--nats nats://127.0.0.1:4222] [--connections 32]

- accepted events/s: `wrk` POSTs to …/functions/noop/invocations (a C no-op handler, the C hello) for
  --duration s; every 202 is after its group commit (synchronous = FULL). Deliveries run meanwhile.
- end to end: the same events, from the first POST until the handler has run for every accepted one
  (the function's `invocations` counter).
- accept→handler start at idle: 200 events one at a time; for each, the record's dispatch time minus the
  invocation's accept time (both ms clocks of the server).
- accept→handler start at 50 % of max: wrk paced (a per-request delay on each connection) to half the accepted
  rate just measured, into a third function; then the same difference over the invocations whose records the
  server still holds (its per-function record ring).
- accepted events/s with deliveries held back: the same POSTs to a function with `max_concurrency = 1`, so the
  node spends its cores on accepting (a backlog builds; claims stay O(claimed)).
- JetStream peer (if `nats-py` is installed and a server answers at --nats): publish with ack to a file-backed
  stream, --connections publishes in flight, for --duration s.

Python 3.11; only `nats-py` (optional) beyond the standard library. Report to stdout and bench/results/events.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402

# The POST (and its token) ahead of run.py's status-counting script.
POST_LUA = r"""
wrk.method = "POST"
wrk.body = "event"
wrk.headers["Content-Type"] = "text/plain"
wrk.headers["Authorization"] = "Bearer TOKEN"
""" + bench.STATUS_LUA


# The same POST, paced: each connection waits DELAY ms before each request.
PACED_LUA = POST_LUA + r"""
function delay() return DELAY end
"""


def gaps_of(api: bench.Api, name: str) -> list[int]:
    """Dispatch time minus accept time (ms) of the invocations of `name` whose records the server holds."""
    st, recs = api.call("GET", bench.function_path(name) + "/logs?limit=10000")
    gaps = []
    for r in recs if st == 200 else []:
        st, v = api.call("GET", f"/_wisp/v1/invocations/{r['id']}")
        if st == 200 and "created_ms" in v:
            gaps.append(max(0, r["at_ms"] - v["created_ms"]))
    return gaps


def invocations(api: bench.Api, name: str) -> int:
    status, body = api.call("GET", bench.function_path(name))
    return int(body["function"]["invocations"]) if status == 200 else 0


async def jetstream(url: str, duration: int, inflight: int) -> dict | None:
    try:
        import nats  # type: ignore
    except ImportError:
        return None
    try:
        nc = await nats.connect(url, connect_timeout=2)
    except Exception as e:  # noqa: BLE001
        bench.log(f"JetStream peer skipped: {e}")
        return None
    js = nc.jetstream()
    stream = f"WISPBENCH{int(time.time())}"
    await js.add_stream(name=stream, subjects=[f"{stream}.>"], storage="file")
    sent = 0
    lat: list[float] = []
    stop = time.perf_counter() + duration

    async def worker() -> None:
        nonlocal sent
        while time.perf_counter() < stop:
            t = time.perf_counter()
            await js.publish(f"{stream}.e", b"event")
            lat.append((time.perf_counter() - t) * 1000)
            sent += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(inflight)))
    elapsed = time.perf_counter() - t0
    await js.delete_stream(stream)
    await nc.close()
    return {"rps": sent / elapsed, "p50": bench.pct(lat, 50), "p99": bench.pct(lat, 99)}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--wisp", required=True)
    p.add_argument("--guests", required=True)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--wrk", default="wrk")
    p.add_argument("--nats", default="nats://127.0.0.1:4222")
    p.add_argument("--idle-samples", type=int, default=200)
    args = p.parse_args()
    tmp, logdir = bench.workdir("wisp-events-bench-")
    wasm = (Path(args.guests) / "hello-c.wasm").read_bytes()
    server, port = bench.start_wisp(args.wisp, tmp / "data", logdir, "wisp")
    rows = {}
    try:
        bench.wait_line(server, "listening", 30)
        token = (tmp / "data" / "api-token").read_text().strip()
        api = bench.Api(port, token)
        sha = api.upload(wasm)
        events = {"events": {"max_concurrency": 64, "max_queue_depth": 10_000_000}}
        api.deploy("noop", sha, "/noop", events)
        api.deploy("idle", sha, "/idle", events)
        api.deploy("half", sha, "/half", events)
        # Deliveries held back (one at a time) so a backlog builds: the accept path alone.
        api.deploy("held", sha, "/held", {"events": {"max_concurrency": 1, "max_queue_depth": 10_000_000}})

        # accept→handler start, idle node, one event at a time.
        gaps = []
        for _ in range(args.idle_samples):
            st, body = api.call("POST", bench.function_path("idle") + "/invocations", b"e", "text/plain")
            assert st == 202, (st, body)
            inv = body["id"]
            while True:
                st, v = api.call("GET", f"/_wisp/v1/invocations/{inv}")
                if v.get("state") == "succeeded":
                    break
                time.sleep(0.0005)
            st, recs = api.call("GET", bench.function_path("idle") + "/logs?limit=5")
            rec = next(r for r in recs if r["id"] == inv)
            gaps.append(max(0, rec["at_ms"] - v["created_ms"]))
        rows["idle"] = {"p50": bench.pct(gaps, 50), "p99": bench.pct(gaps, 99), "n": len(gaps)}

        # Durable accepts under load, deliveries running meanwhile; then the drain to the last handler run.
        lua = tmp / "post.lua"
        lua.write_text(POST_LUA.replace("TOKEN", token))
        before = invocations(api, "noop")
        t0 = time.perf_counter()
        w = bench.run_wrk(args, f"http://127.0.0.1:{port}{bench.function_path('noop')}/invocations", args.duration,
                          logdir, "accept", script=lua)
        accepted = w["statuses"].get(202, 0)
        accept_s = time.perf_counter() - t0
        deadline = time.perf_counter() + 600
        while invocations(api, "noop") - before < accepted and time.perf_counter() < deadline:
            time.sleep(0.01)
        handled = invocations(api, "noop") - before
        e2e_s = time.perf_counter() - t0
        rows["accept"] = {"rps": accepted / accept_s, "p50": w["p50"], "p99": w["p99"], "accepted": accepted,
                          "other": {k: v for k, v in w["statuses"].items() if k != 202}}
        rows["e2e"] = {"rps": handled / e2e_s, "handled": handled, "seconds": e2e_s}

        # accept→handler start at half the accepted rate: c connections, each pausing so that together they
        # send ~rate/2 (the pause is on top of each request's own latency, so the real rate is a bit lower).
        half_rate = max(1.0, rows["accept"]["rps"] / 2)
        delay_ms = max(1, int(args.connections * 1000 / half_rate))
        paced = tmp / "paced.lua"
        paced.write_text(PACED_LUA.replace("TOKEN", token).replace("DELAY", str(delay_ms)))
        before = invocations(api, "half")
        t0 = time.perf_counter()
        w = bench.run_wrk(args, f"http://127.0.0.1:{port}{bench.function_path('half')}/invocations", args.duration,
                          logdir, "half", script=paced)
        sent = w["statuses"].get(202, 0)
        rate = sent / (time.perf_counter() - t0)
        deadline = time.perf_counter() + 600
        while invocations(api, "half") - before < sent and time.perf_counter() < deadline:
            time.sleep(0.01)
        gaps = gaps_of(api, "half")
        rows["half"] = {"rps": rate, "p50": bench.pct(gaps, 50), "p99": bench.pct(gaps, 99), "n": len(gaps)}

        # The accept path alone: the same POSTs to `held`, whose deliveries barely run.
        t0 = time.perf_counter()
        w = bench.run_wrk(args, f"http://127.0.0.1:{port}{bench.function_path('held')}/invocations", args.duration,
                          logdir, "held", script=lua)
        rows["alone"] = {"rps": w["statuses"].get(202, 0) / (time.perf_counter() - t0), "p50": w["p50"], "p99": w["p99"]}
        api.close()
    finally:
        server.stop()
    js = asyncio.run(jetstream(args.nats, args.duration, args.connections))

    out = ["# wisp events benchmark", "",
           f"`python3 bench/events.py --duration {args.duration} --connections {args.connections}` "
           f"(wrk -t{args.threads} -c{args.connections}), {time.strftime('%Y-%m-%d %H:%M')}", "",
           "| what | wisp | target |", "|---|---:|---|"]
    a, e, i = rows["accept"], rows["e2e"], rows["idle"]
    out.append(f"| accepted events/s (202 after fsync, group commit) | {a['rps']:,.0f} | ≥ 20,000 |")
    out.append(f"| accept latency p50 / p99 (client) | {bench.fmt_ms(a['p50'])} / {bench.fmt_ms(a['p99'])} | — |")
    al = rows["alone"]
    out.append(f"| accepted events/s, deliveries held back (the accept path alone; p50 / p99 "
               f"{bench.fmt_ms(al['p50'])} / {bench.fmt_ms(al['p99'])}) | {al['rps']:,.0f} | ≥ 20,000 |")
    out.append(f"| end-to-end handled events/s (C no-op handler) | {e['rps']:,.0f} ({e['handled']:,} in {e['seconds']:.1f} s) | ≥ 5,000 |")
    out.append(f"| accept → handler start, idle, p50 / p99 (ms, n={i['n']}) | {i['p50']:.0f} / {i['p99']:.0f} | p99 ≤ 10 |")
    h = rows["half"]
    out.append(f"| accept → handler start at 50 % of max ({h['rps']:,.0f} events/s), p50 / p99 (ms, last n={h['n']}) "
               f"| {h['p50']:.0f} / {h['p99']:.0f} | — |")
    if js:
        out.append(f"| JetStream publish+ack msgs/s (file stream, {args.connections} in flight) | {js['rps']:,.0f} "
                   f"(p50 {js['p50']:.2f} / p99 {js['p99']:.2f} ms) | peer |")
        out.append(f"| wisp accepted ÷ JetStream (with deliveries / accept path alone) | {a['rps'] / js['rps']:.2f}× / "
                   f"{al['rps'] / js['rps']:.2f}× | — |")
    else:
        out.append("| JetStream peer | skipped (pip install nats-py; a NATS server with JetStream) | — |")
    if a["other"]:
        out.append("")
        out.append(f"Other statuses during the accept run: {a['other']}")
    text = "\n".join(out) + "\n"
    bench.report("events.md", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
