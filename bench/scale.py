#!/usr/bin/env python3
"""Control-plane scale benchmark: one node with 1 and with N (default 10,000) deployed functions.

Measures, side by side in one run (ratios are the figure; absolute times on these machines are noise):
  - routing cost per request: wrk rps for a hit on the first route, a hit on the last route, and a miss
    (404 from the router), with 1 function and with N;
  - deploy latency: p50/p99 of the first 100 deploys and of the last 100 (with N-100 already there);
  - `wisp up` start time (process start -> listening line) and RSS: with N functions after a restart, idle;
  - RSS of the serving process with 1 and with N functions.

usage: python3 bench/scale.py --wisp target/release/wisp --guests target/guests [--functions 10000]
Python 3.11 standard library only; uses bench/run.py's helpers. Writes bench/results/scale.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wrk_rps(args, port: int, path: str, logdir: Path, tag: str) -> float:
    r = bench.run_wrk(args, f"http://127.0.0.1:{port}{path}", args.duration, logdir, tag)
    return r["rps"]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--wisp", required=True)
    p.add_argument("--guests", required=True)
    p.add_argument("--functions", type=int, default=10_000)
    p.add_argument("--duration", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--wrk", default="wrk")
    args = p.parse_args()
    n = args.functions
    wasm = (Path(args.guests) / "hello-c.wasm").read_bytes()
    tmp, logdir = bench.workdir("wisp-scale-")
    data = tmp / "data"
    out: dict = {}

    server, port = bench.start_wisp(args.wisp, data, logdir, "scale", ["--max-instances", "64"])
    bench.wait_line(server, "wisp listening on", 60)
    token = (data / "api-token").read_text().strip()
    api = bench.Api(port, token)
    sha = api.upload(wasm)

    deploy_ms: list[float] = []

    def deploy(i: int) -> None:
        t = time.perf_counter()
        api.deploy(f"f{i}", sha, f"/f{i}/api")
        deploy_ms.append((time.perf_counter() - t) * 1e3)

    deploy(0)
    bench.wait_200(port, "/f0/api", 10)
    out["rss_1"] = rss_mib(server.proc.pid)
    out["hit_1"] = wrk_rps(args, port, "/f0/api", logdir, "hit-1")
    out["miss_1"] = wrk_rps(args, port, "/nothing/here", logdir, "miss-1")
    t0 = time.perf_counter()
    for i in range(1, n):
        deploy(i)
        if i % 1000 == 0:
            bench.log(f"{i} functions deployed")
    out["deploy_all_s"] = time.perf_counter() - t0
    bench.wait_200(port, f"/f{n - 1}/api", 10)
    out["rss_n"] = rss_mib(server.proc.pid)
    out["hit_first_n"] = wrk_rps(args, port, "/f0/api", logdir, "hit-first-n")
    out["hit_last_n"] = wrk_rps(args, port, f"/f{n - 1}/api", logdir, "hit-last-n")
    out["miss_n"] = wrk_rps(args, port, "/nothing/here", logdir, "miss-n")
    first, last = deploy_ms[:100], deploy_ms[-100:]
    out["deploy_first"] = (statistics.median(first), bench.pct(first, 99))
    out["deploy_last"] = (statistics.median(last), bench.pct(last, 99))
    api.close()
    server.stop()

    server, port = bench.start_wisp(args.wisp, data, logdir, "scale-restart", ["--max-instances", "64"])
    t_listen = bench.wait_line(server, "wisp listening on", 600)
    out["start_s"] = t_listen - server.t_spawn
    time.sleep(1)  # idle: nothing served yet
    out["rss_restart_idle"] = rss_mib(server.proc.pid)
    bench.wait_200(port, f"/f{n - 1}/api", 10)
    server.stop()

    r = lambda a, b: f"{a / b:.2f}×" if b else "—"  # noqa: E731
    lines = [
        f"# wisp with 1 and with {n:,} functions",
        "",
        f"`python3 bench/scale.py --functions {n} --duration {args.duration}` — wrk -t{args.threads} "
        f"-c{args.connections} -d{args.duration}s, C hello (fresh instance per request), one node.",
        "",
        "| what | 1 function | %s functions | ratio |" % f"{n:,}",
        "|---|---:|---:|---:|",
        f"| hit, first route (rps) | {out['hit_1']:,.0f} | {out['hit_first_n']:,.0f} | {r(out['hit_first_n'], out['hit_1'])} |",
        f"| hit, last route (rps) | {out['hit_1']:,.0f} | {out['hit_last_n']:,.0f} | {r(out['hit_last_n'], out['hit_1'])} |",
        f"| miss → 404 (rps) | {out['miss_1']:,.0f} | {out['miss_n']:,.0f} | {r(out['miss_n'], out['miss_1'])} |",
        f"| deploy p50 / p99 (ms), first vs last 100 | {out['deploy_first'][0]:.2f} / {out['deploy_first'][1]:.2f} | "
        f"{out['deploy_last'][0]:.2f} / {out['deploy_last'][1]:.2f} | {r(out['deploy_last'][0], out['deploy_first'][0])} |",
        f"| RSS serving (MiB) | {out['rss_1']:.0f} | {out['rss_n']:.0f} | — |",
        "",
        f"All {n - 1:,} further deploys took {out['deploy_all_s']:.1f} s. After a restart with {n:,} functions: "
        f"`wisp up` listening in {out['start_s']:.2f} s, idle RSS {out['rss_restart_idle']:.0f} MiB.",
    ]
    text = "\n".join(lines) + "\n"
    bench.report("scale.md", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
