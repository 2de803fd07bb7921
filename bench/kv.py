#!/usr/bin/env python3
"""Key-value benchmark: get, set and atomic increment ops/s from a Python guest (examples/kv-py) through wisp,
the same component under `wasmtime serve -S keyvalue` (in-memory), and the storage floor (the embedded
backend straight from Rust) — side by side in one run.

usage: python3 bench/kv.py --wisp target/release/wisp --guests target/guests [--wasmtime PATH]
       [--floor PATH-to-kv_floor] [--duration 8] [--connections 32]

Each op is one HTTP request to the guest: GET /kv/k (get), PUT /kv/k (set), GET /kv/hits (increment).
`wasmtime serve -S keyvalue`'s in-memory store belongs to one instance (nothing is shared between instances or
kept across requests on fresh ones), so its gets mostly miss (404, counted as done gets) and its increments
count per instance: it is the no-storage ceiling, wisp's rows are durable and shared.
wisp runs the function twice: `instance_mode = "reuse"` (warm instances) and fresh (an instance per request,
what `wasmtime serve` does by default); the peer runs fresh and with `--max-instance-reuse-count`.
The floor: `cargo build --release -p wisp-store --example kv_floor` (32 tasks on the backend, no HTTP/guest).
Report to stdout and bench/results/kv.md.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as bench  # noqa: E402

PUT_LUA = r"""
wrk.method = "PUT"
wrk.body = "a small value"
""" + bench.STATUS_LUA


def measure(args, label: str, port: int, prefix: str, logdir: Path, tmp: Path) -> dict:
    put = tmp / "put.lua"
    put.write_text(PUT_LUA)
    plain = tmp / "status.lua"
    plain.write_text(bench.STATUS_LUA)
    row = {"label": label}
    # Seed the key the gets read.
    bench.get(port, f"{prefix}/hits")
    subprocess.run(["curl", "-s", "-X", "PUT", "--data", "a small value", f"http://127.0.0.1:{port}{prefix}/k"],
                   capture_output=True, timeout=30)
    for op, path, script in (("get", f"{prefix}/k", plain), ("set", f"{prefix}/k", put), ("increment", f"{prefix}/hits", plain)):
        w = bench.run_wrk(args, f"http://127.0.0.1:{port}{path}", args.duration, logdir, f"{label}-{op}".replace(" ", "-"),
                          script=script)
        # A get of a key the store does not hold (404) is a completed get too: `wasmtime serve`'s in-memory
        # store belongs to one instance, so the key seeded through one request is absent in the others.
        done = (200, 404) if op == "get" else (200,)
        ok = sum(w["statuses"].get(c, 0) for c in done)
        row[op] = {"rps": ok / args.duration, "p99": w["p99"],
                   "other": {k: v for k, v in w["statuses"].items() if k != 200}}
        bench.log(f"{label} {op}: {row[op]['rps']:,.0f} ops/s, statuses {w['statuses']}")
    return row


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--wisp", required=True)
    p.add_argument("--guests", required=True)
    p.add_argument("--wasmtime", default=shutil.which("wasmtime") or "wasmtime")
    p.add_argument("--floor", default="target/release/examples/kv_floor")
    p.add_argument("--duration", type=int, default=8)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--wrk", default="wrk")
    args = p.parse_args()
    tmp, logdir = bench.workdir("wisp-kv-bench-")
    wasm_path = Path(args.guests) / "kv-py.wasm"
    rows = []

    server, port = bench.start_wisp(args.wisp, tmp / "data", logdir, "wisp")
    try:
        bench.wait_line(server, "listening", 30)
        token = (tmp / "data" / "api-token").read_text().strip()
        api = bench.Api(port, token)
        sha = api.upload(wasm_path.read_bytes())
        grant = {"app": "bench", "key_value_stores": ["default"]}
        api.deploy("kv-reuse", sha, "/reuse", {**grant, "scaling": {"instance_mode": "reuse", "min_instances": 1}})
        api.deploy("kv-fresh", sha, "/fresh", grant)
        api.close()
        rows.append(measure(args, "wisp (reuse)", port, "/reuse", logdir, tmp))
        rows.append(measure(args, "wisp (fresh)", port, "/fresh", logdir, tmp))
    finally:
        server.stop()

    peer_modes = [("wasmtime serve", []),
                  ("wasmtime serve (reuse)", ["--max-instance-reuse-count", "1000000", "--idle-instance-timeout", "300s"])]
    if shutil.which(args.wasmtime) or Path(args.wasmtime).exists():
        version = subprocess.run([args.wasmtime, "--version"], capture_output=True, text=True).stdout.strip()
        for label, extra in peer_modes:
            wport = bench.free_port()
            cmd = [args.wasmtime, "serve", "-S", "cli=y", "-S", "keyvalue=y", "-O", "pooling-allocator=y", *extra,
                   "--addr", f"127.0.0.1:{wport}", str(wasm_path)]
            with bench.running(label.replace(" ", "-"), cmd, logdir) as s:
                bench.wait_200(wport, "/kv/hits", 120, s, poll_s=0.05)
                rows.append(measure(args, label, wport, "/kv", logdir, tmp))
    else:
        version = None
        bench.log("wasmtime not found: the peer rows are skipped (bench/run.sh installs wasmtime-cli 48.0.8)")

    floor = {}
    if Path(args.floor).exists():
        out = subprocess.run([args.floor, str(args.duration), str(args.connections)], capture_output=True, text=True,
                             timeout=args.duration * 4 + 60).stdout
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "kv-floor":
                floor[parts[1]] = float(parts[2])
    else:
        bench.log(f"no floor binary at {args.floor}: cargo build --release -p wisp-store --example kv_floor")

    out = ["# wisp key-value benchmark", "",
           f"`python3 bench/kv.py --duration {args.duration} --connections {args.connections}` (wrk -t{args.threads} "
           f"-c{args.connections}), {time.strftime('%Y-%m-%d %H:%M')}; peer: {version or 'skipped'}", "",
           "| target | get ops/s | set ops/s | increment ops/s | get p99 |", "|---|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['label']} | {r['get']['rps']:,.0f} | {r['set']['rps']:,.0f} | {r['increment']['rps']:,.0f} | "
                   f"{bench.fmt_ms(r['get']['p99'])} |")
    if floor:
        out.append(f"| storage floor (EmbeddedKv from Rust, {args.connections} tasks) | {floor.get('get', 0):,.0f} | "
                   f"{floor.get('set', 0):,.0f} | — | — |")
    by = {r["label"]: r for r in rows}
    out.append("")
    for a, b in (("wisp (fresh)", "wasmtime serve"), ("wisp (reuse)", "wasmtime serve (reuse)")):
        if a in by and b in by:
            ratios = " / ".join(f"{by[a][op]['rps'] / max(by[b][op]['rps'], 1):.2f}×" for op in ("get", "set", "increment"))
            out.append(f"- {a} ÷ {b} (get / set / increment): {ratios}")
    if floor and "wisp (reuse)" in by:
        r = by["wisp (reuse)"]
        out.append(f"- wisp (reuse) ÷ storage floor (get / set): {r['get']['rps'] / floor['get']:.2f}× / "
                   f"{r['set']['rps'] / floor['set']:.2f}×")
    others = {r["label"]: {op: r[op]["other"] for op in ("get", "set", "increment") if r[op]["other"]} for r in rows}
    others = {k: v for k, v in others.items() if v}
    if others:
        out.append(f"- statuses other than 200: {others}")
    text = "\n".join(out) + "\n"
    bench.report("kv.md", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
