#!/usr/bin/env python3
"""A/B of two wisp binaries on this machine: the same guests, wrk runs taking turns (A, B, A, B, …), medians.

usage: python3 bench/ab.py --a OLD_WISP --b NEW_WISP --guests target/guests [--rounds 3] [--duration 8]
       [--a-args "--metering off"] [--b-args ...] [--only "C hello, fresh" --only ...]

The same binary with different `wisp up` flags is an A/B too: metering's cost is
`--a W --b W --a-args "--metering off" --only "C hello, fresh" --only "Python hello, reuse"`.

Both nodes are up for the whole run (each on its own port and data dir) and serve C hello fresh, C hello
reuse, Python hello reuse and JS hello fresh; each round runs every target on A, then on B. Prints rps per
round, the medians and B/A. Python 3.11 standard library only; uses bench/run.py's helpers.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402

TARGETS = [
    ("C hello, fresh", "hello-c", {}),
    ("C hello, reuse", "hello-c", {"scaling": {"instance_mode": "reuse"}}),
    ("Python hello, reuse", "hello-py", {"scaling": {"instance_mode": "reuse"}}),
    ("JS hello, fresh", "hello-js", {}),
]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--guests", required=True)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--wrk", default="wrk")
    p.add_argument("--a-args", default="", help="extra `wisp up` arguments of A (split on spaces)")
    p.add_argument("--b-args", default="", help="extra `wisp up` arguments of B")
    p.add_argument("--only", action="append", default=[], help="run only this target (repeatable)")
    args = p.parse_args()
    global TARGETS
    if args.only:
        unknown = [o for o in args.only if o not in [t[0] for t in TARGETS]]
        if unknown:
            p.error(f"--only {unknown}: choose from {[t[0] for t in TARGETS]}")
        TARGETS = [t for t in TARGETS if t[0] in args.only]
    tmp, logdir = bench.workdir("wisp-ab-")
    nodes = {}
    for tag, binary, extra_args in (("A", args.a, args.a_args), ("B", args.b, args.b_args)):
        data = tmp / f"data-{tag}"
        server, port = bench.start_wisp(binary, data, logdir, f"ab-{tag}", extra_args.split())
        bench.wait_line(server, "wisp listening on", 120)
        api = bench.Api(port, (data / "api-token").read_text().strip())
        for i, (_, guest, extra) in enumerate(TARGETS):
            sha = api.upload((Path(args.guests) / f"{guest}.wasm").read_bytes())
            api.deploy(f"t{i}", sha, f"/t{i}", extra)
            bench.wait_200(port, f"/t{i}", 120)
        nodes[tag] = (server, port)
    rps: dict[tuple[str, int], list[float]] = {}
    try:
        for r in range(args.rounds):
            for tag in ("A", "B"):
                _, port = nodes[tag]
                for i, (label, _, _) in enumerate(TARGETS):
                    url = f"http://127.0.0.1:{port}/t{i}"
                    bench.run_wrk(args, url, 2, logdir, f"warm-{tag}-{i}-{r}")
                    res = bench.run_wrk(args, url, args.duration, logdir, f"{tag}-{i}-{r}")
                    rps.setdefault((tag, i), []).append(res["rps"])
                    bench.log(f"round {r} {tag} {label}: {res['rps']:.0f} rps")
    finally:
        for server, _ in nodes.values():
            server.stop()
    print(f"| target | A rps per round | B rps per round | A median | B median | B / A |")
    print("|---|---|---|---:|---:|---:|")
    for i, (label, _, _) in enumerate(TARGETS):
        a, b = rps[("A", i)], rps[("B", i)]
        ma, mb = statistics.median(a), statistics.median(b)
        fa = ", ".join(f"{x:,.0f}" for x in a)
        fb = ", ".join(f"{x:,.0f}" for x in b)
        print(f"| {label} | {fa} | {fb} | {ma:,.0f} | {mb:,.0f} | {mb / ma:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
