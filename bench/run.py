#!/usr/bin/env python3
"""End-to-end benchmark driver for wisp (see bench/README.md).

Runs, one target at a time on this machine:
  1. throughput (wrk) of wisp, `wasmtime serve` (fresh and instance reuse) and a native hyper server, for the
     C, Python and JavaScript hello components, plus sequential request latency;
  2. cold start: deploy -> first 200 (compiled-cache hit and brand-new artifacts), restart -> first 200;
  3. burst from zero: wrk against a never-invoked reuse-mode function, with the function's in_flight / queued /
     idle counters sampled every 100 ms, once with default admission limits and once with tight ones;
  4. cold start after scale-to-zero: reuse-mode functions with a 1 s idle timeout, one request after each idle gap.

Prints a markdown report to stdout and writes it to bench/results/latest.md.
Python 3.11 standard library only. bench/run.sh builds everything and calls this.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import json
import math
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ helpers ---


def workdir(prefix: str) -> tuple[Path, Path]:
    """A fresh temp dir for one benchmark run, and its `logs/` folder."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    logdir = tmp / "logs"
    logdir.mkdir()
    return tmp, logdir


def report(name: str, text: str) -> None:
    """Prints a benchmark's report and writes it to bench/results/<name>."""
    print(text)
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / name).write_text(text)


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, math.ceil(p / 100 * len(s)) - 1))
    return s[k]


def fmt_ms(v: float | None) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if v < 1:
        return f"{v:.3f} ms"
    if v < 100:
        return f"{v:.2f} ms"
    return f"{v:.0f} ms"


def fmt_ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "—"
    r = a / b
    return f"{r:.2f}×" if r >= 0.1 else f"{r:.3f}×"


class Server:
    """A child process we started; stdout/stderr go to log files; stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, name: str, cmd: list[str], logdir: Path, env: dict[str, str] | None = None):
        self.name = name
        self.cmd = cmd
        self.stdout_lines: list[tuple[float, str]] = []
        self.out_path = logdir / f"{name}.stdout.log"
        self.err_path = logdir / f"{name}.stderr.log"
        self._err = open(self.err_path, "ab")
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.t_spawn = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._err, stdin=subprocess.DEVNULL, env=full_env)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with open(self.out_path, "ab") as out:
            for raw in self.proc.stdout:
                self.stdout_lines.append((time.perf_counter(), raw.decode(errors="replace").rstrip("\n")))
                out.write(raw)
                out.flush()

    def first_line_time(self, needle: str) -> float | None:
        for t, line in self.stdout_lines:
            if needle in line:
                return t
        return None

    def check_alive(self) -> None:
        if self.proc.poll() is not None:
            tail = self.err_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; stderr tail:\n{tail}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                log(f"{self.name} ignored SIGTERM for 15 s: SIGKILL")
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._reader.join(timeout=5)
        self._err.close()


@contextlib.contextmanager
def running(*args, **kwargs):
    s = Server(*args, **kwargs)
    try:
        yield s
    finally:
        s.stop()


def get(port: int, path: str, timeout: float = 10.0) -> tuple[int, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def wait_200(port: int, path: str, timeout: float, server: Server | None = None, poll_s: float = 0.002) -> float:
    """Polls GET path until 200; returns the perf_counter time the 200 arrived."""
    deadline = time.perf_counter() + timeout
    last = "no attempt"
    while time.perf_counter() < deadline:
        if server is not None:
            server.check_alive()
        try:
            status, _ = get(port, path, timeout=max(0.1, deadline - time.perf_counter()))
            if status == 200:
                return time.perf_counter()
            last = f"HTTP {status}"
        except (OSError, http.client.HTTPException) as e:
            last = repr(e)
        time.sleep(poll_s)
    raise TimeoutError(f"no 200 from 127.0.0.1:{port}{path} within {timeout} s (last: {last})")


class Api:
    """The wisp control API on one keep-alive connection."""

    def __init__(self, port: int, token: str):
        self.port = port
        self.token = token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def call(self, method: str, path: str, body: bytes | None = None, ctype: str | None = None) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {self.token}"}
        if ctype:
            headers["Content-Type"] = ctype
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                break
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
                if attempt == 1:
                    raise
        try:
            parsed = json.loads(data) if data else {}
        except json.JSONDecodeError:
            parsed = {"raw": data.decode(errors="replace")}
        return r.status, parsed

    def upload(self, wasm: bytes) -> str:
        status, body = self.call("POST", "/_wisp/v1/artifacts", wasm, "application/wasm")
        if status not in (200, 201):
            raise RuntimeError(f"upload failed: {status} {body}")
        return body["sha256"]

    def deploy(self, name: str, sha: str, route: str, extra: dict | None = None) -> dict:
        spec = json.dumps({"kind": "http", "artifact": sha, "routes": [route], **(extra or {})}).encode()
        status, body = self.call("PUT", f"/_wisp/v1/namespaces/default/functions/{name}", spec, "application/json")
        if status not in (200, 201):
            raise RuntimeError(f"deploy {name} failed: {status} {body}")
        return body

    def status(self) -> dict:
        status, body = self.call("GET", "/_wisp/v1/status")
        if status != 200:
            raise RuntimeError(f"status failed: {status} {body}")
        return body

    def close(self) -> None:
        self.conn.close()


def start_wisp(wisp: str, data_dir: Path, logdir: Path, tag: str, extra: list[str] | None = None) -> tuple[Server, int]:
    port = free_port()
    s = Server(tag, [wisp, "up", "--data-dir", str(data_dir), "--listen", f"127.0.0.1:{port}", *(extra or [])], logdir)
    return s, port


def wait_line(server: Server, needle: str, timeout: float) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        t = server.first_line_time(needle)
        if t is not None:
            return t
        server.check_alive()
        time.sleep(0.005)
    raise TimeoutError(f"{server.name}: no `{needle}` on stdout within {timeout} s")


def with_custom_section(wasm: bytes, name: str, payload: bytes) -> bytes:
    """Appends a custom section (id 0) — valid at the end of a core module or a component."""

    def leb(n: int) -> bytes:
        out = bytearray()
        while True:
            b = n & 0x7F
            n >>= 7
            if n:
                out.append(b | 0x80)
            else:
                out.append(b)
                return bytes(out)

    nm = name.encode()
    content = leb(len(nm)) + nm + payload
    return wasm + b"\x00" + leb(len(content)) + content


# -------------------------------------------------------------- throughput ---

WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def parse_wrk(text: str) -> dict:
    def lat(label: str) -> float | None:
        m = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
        return float(m.group(1)) * WRK_UNITS[m.group(2)] if m else None

    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    reqs = re.search(r"^\s*(\d+) requests in", text, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    mx = re.search(r"^\s*Latency\s+[\d.]+\w+\s+[\d.]+\w+\s+([\d.]+)(us|ms|s|m)\b", text, re.M)
    statuses = {int(k): int(v) for k, v in re.findall(r"^wisp-bench-status (\d+) (\d+)$", text, re.M)}
    return {
        "rps": float(rps.group(1)) if rps else None,
        "requests": int(reqs.group(1)) if reqs else None,
        "p50": lat("50"),
        "p99": lat("99"),
        "max": float(mx.group(1)) * WRK_UNITS[mx.group(2)] if mx else None,
        "statuses": statuses,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": sum(int(x) for x in sock.groups()) if sock else 0,
        "socket_errors_text": sock.group(0) if sock else "",
    }


def run_wrk(args, url: str, duration: int, logdir: Path, tag: str, connections: int | None = None,
            script: Path | None = None) -> dict:
    cmd = [args.wrk, f"-t{args.threads}", f"-c{connections or args.connections}", f"-d{duration}s", "--latency"]
    if script is not None:
        cmd += ["-s", str(script)]
    cmd.append(url)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    (logdir / f"wrk-{tag}.log").write_text(" ".join(cmd) + "\n" + p.stdout + p.stderr)
    if p.returncode != 0:
        raise RuntimeError(f"wrk failed ({p.returncode}): {p.stderr}")
    r = parse_wrk(p.stdout)
    r["raw"] = p.stdout
    return r


def sequential_latency(port: int, path: str, n: int) -> list[float]:
    """n single requests one after another on one keep-alive connection, ms each."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    out: list[float] = []
    bad = 0
    try:
        for _ in range(n):
            t0 = time.perf_counter()
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            out.append((time.perf_counter() - t0) * 1e3)
            if r.status != 200:
                bad += 1
    finally:
        c.close()
    if bad:
        raise RuntimeError(f"{bad}/{n} sequential requests to {path} were not 200")
    return out


def measure_target(args, label: str, component: str, port: int, path: str, logdir: Path) -> dict:
    status, body = get(port, path)
    if status != 200:
        raise RuntimeError(f"{label}: GET {path} -> {status} {body[:200]!r}")
    url = f"http://127.0.0.1:{port}{path}"
    log(f"{label}: warm-up {args.warmup}s, then wrk {args.duration}s")
    run_wrk(args, url, args.warmup, logdir, f"{label}-warmup".replace(" ", "_"))
    r = run_wrk(args, url, args.duration, logdir, label.replace(" ", "_"))
    seq = sequential_latency(port, path, args.seq_n)
    r.update(
        label=label,
        component=component,
        body=body.decode(errors="replace").strip(),
        seq_p50=pct(seq, 50),
        seq_p99=pct(seq, 99),
        seq_max=max(seq),
    )
    log(f"{label}: {r['rps']} rps, p50 {r['p50']} ms, p99 {r['p99']} ms, non-2xx {r['non2xx']}, socket errors {r['socket_errors']}")
    return r


# ------------------------------------------------------- burst from zero ---

# wrk script: counts responses per HTTP status over all threads and prints them after the run
# (`wisp-bench-status <code> <count>` lines, parsed by parse_wrk). wrk's own `Non-2xx` count cannot tell 429 from 503.
STATUS_LUA = r"""
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("statuses")) do total[code] = (total[code] or 0) + n end
  end
  for code, n in pairs(total) do io.write(string.format("wisp-bench-status %d %d\n", code, n)) end
end
"""


def function_path(name: str) -> str:
    return f"/_wisp/v1/namespaces/default/functions/{name}"


class ViewSampler:
    """Polls GET .../functions/{name} every `interval` s on its own connection; samples are
    (t, in_flight, queued, idle_instances, instance_mode, invocations, desired, ready, peak_in_flight, peak_queued)
    with t relative to `t0` (set by the caller); the last four are the autoscaler's latest step (its window's peaks)."""

    def __init__(self, port: int, token: str, name: str, interval: float = 0.1):
        self.api = Api(port, token)
        self.name = name
        self.interval = interval
        self.t0 = time.perf_counter()
        self.samples: list[tuple] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        k = 0
        start = time.perf_counter()
        while not self._stop.is_set():
            ts = time.perf_counter()
            try:
                status, body = self.api.call("GET", function_path(self.name))
                f = body.get("function", {}) if status == 200 else {}
                if status == 200:
                    a = f.get("autoscaler") or {}
                    self.samples.append((ts - self.t0, f.get("in_flight"), f.get("queued"), f.get("idle_instances"),
                                         f.get("instance_mode"), f.get("invocations"), a.get("desired"),
                                         a.get("ready"), a.get("peak_in_flight"), a.get("peak_queued")))
                else:
                    self.errors += 1
            except (OSError, http.client.HTTPException):
                self.errors += 1
            k += 1
            self._stop.wait(max(0.0, start + k * self.interval - time.perf_counter()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.api.close()

    def at(self, t: float) -> tuple | None:
        """The last sample taken at or before t."""
        last = None
        for smp in self.samples:
            if smp[0] <= t:
                last = smp
            else:
                break
        return last


def burst(args, api: Api, port: int, token: str, name: str, sha: str, scaling: dict, logdir: Path, lua: Path) -> dict:
    """Deploys `name` (never invoked), then wrk from cold while sampling the function view."""
    api.deploy(name, sha, f"/{name}", {"scaling": scaling})
    _, before = api.call("GET", function_path(name))
    f0 = before.get("function", {})
    if f0.get("invocations") or f0.get("idle_instances"):
        raise RuntimeError(f"burst {name}: function not cold before the burst: {f0}")
    time.sleep(1.0)  # let the deploy settle
    sampler = ViewSampler(port, token, name)
    sampler.t0 = time.perf_counter() + 0.3  # t = 0 when wrk starts; a few baseline samples (t < 0) before
    sampler.start()
    time.sleep(max(0.0, sampler.t0 - time.perf_counter()))
    log(f"burst {name}: wrk -t{args.threads} -c{args.burst_connections} -d{args.burst_duration}s from cold, scaling {scaling}")
    try:
        r = run_wrk(args, f"http://127.0.0.1:{port}/{name}", args.burst_duration, logdir, f"burst-{name}",
                    connections=args.burst_connections, script=lua)
    finally:
        time.sleep(0.3)
        sampler.stop()
    _, after = api.call("GET", function_path(name))
    r.update(
        name=name,
        scaling=scaling,
        samples=sampler.samples,
        sampler=sampler,
        sampler_errors=sampler.errors,
        view_after=after.get("function", {}),
    )
    st = r["statuses"]
    log(f"burst {name}: {r['rps']} rps, p50 {r['p50']} ms, p99 {r['p99']} ms, statuses {st}, "
        f"socket errors {r['socket_errors']}, peak in_flight {max((x[8] or 0) for x in sampler.samples) if sampler.samples else '?'}")
    return r


# ----------------------------------------------- cold start after idle expiry ---


def invocation_record(api: Api, name: str, inv_id: str, timeout: float = 2.0) -> dict | None:
    """The invocation record with id `inv_id` from .../logs (polled: it is written when the guest is done)."""
    deadline = time.perf_counter() + timeout
    while True:
        status, body = api.call("GET", function_path(name) + "/logs?limit=5")
        recs = body if isinstance(body, list) else body.get("invocations", body.get("records", []))
        if status == 200 and isinstance(recs, list):
            for rec in recs:
                if rec.get("id") == inv_id:
                    return rec
        if time.perf_counter() > deadline:
            return None
        time.sleep(0.01)


def scale_to_zero(args, api: Api, port: int, name: str, sha: str) -> dict:
    """Reuse mode with idle_timeout_seconds = 1: after each idle gap of `args.stz_gap` s the warm instance has
    expired (expiry is checked when the next request checks out an instance), so every timed request is cold."""
    route = f"/{name}"
    api.deploy(name, sha, route, {"scaling": {"instance_mode": "reuse", "idle_timeout_seconds": 1}})
    status, _ = get(port, route)  # first ever request (not timed): leaves a warm instance that then expires
    if status != 200:
        raise RuntimeError(f"scale-to-zero {name}: first GET -> {status}")
    total, req, inst, dur, cold, bad, missing = [], [], [], [], [], [], 0
    for _ in range(args.stz_n):
        time.sleep(args.stz_gap)
        t0 = time.perf_counter()
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            c.connect()
            t1 = time.perf_counter()
            c.request("GET", route)
            r = c.getresponse()
            r.read()
            t2 = time.perf_counter()
            inv = r.getheader("x-wisp-invocation-id")
        finally:
            c.close()
        if r.status != 200:
            bad.append(r.status)
        total.append((t2 - t0) * 1e3)
        req.append((t2 - t1) * 1e3)
        rec = invocation_record(api, name, inv) if inv else None
        if rec is None:
            missing += 1
            continue
        cold.append(bool(rec.get("cold")))
        inst.append(rec.get("instantiate_us", 0) / 1e3)
        dur.append(rec.get("duration_us", 0) / 1e3)
    _, view = api.call("GET", function_path(name))
    res = {"name": name, "total": total, "req": req, "instantiate": inst, "duration": dur, "cold": cold, "bad": bad,
           "missing": missing, "mode": view.get("function", {}).get("instance_mode")}
    log(f"scale-to-zero {name}: client p50 {pct(total, 50):.2f} ms p99 {pct(total, 99):.2f} ms; server duration "
        f"p50 {pct(dur, 50):.2f} ms p99 {pct(dur, 99):.2f} ms; cold {sum(cold)}/{len(cold)}; non-200 {bad}; no record {missing}")
    return res


# ------------------------------------------------------------------- main ---


# ------------------------------------------------------------------ report ---

AUTOSCALE_TICK_MS = 250
THROUGHPUT_ORDER = ["native hyper", "wasmtime serve", "wasmtime serve (reuse)", "wasmtime serve (reuse, timeout)", "wisp",
                    "wisp (reuse)"]
STZ_TARGET_P99_MS = {"C hello": 2.0, "Python hello": 10.0}


def render(args, rows, cold, bursts, stz, preinit, interleaved, notes, comps, wasmtime_flags, wasmtime_reuse_flags,
           wasmtime_version, wrk_version, git, t_start) -> str:
    native = next((r for r in rows if r["label"] == "native hyper"), None)
    peer = {r["component"]: r for r in rows if r["label"] == "wasmtime serve"}
    peer_reuse = {r["component"]: r for r in rows if r["label"] == "wasmtime serve (reuse)"}
    peer_reuse_t = {r["component"]: r for r in rows if r["label"] == "wasmtime serve (reuse, timeout)"}
    comp_order = ["—", *comps]
    rows = sorted(rows, key=lambda r: (comp_order.index(r["component"]), THROUGHPUT_ORDER.index(r["label"])))
    out = []
    out.append("# wisp benchmark\n")
    out.append(
        f"{datetime.datetime.now().isoformat(timespec='seconds')} · wisp `{git}` · {os.cpu_count()} CPUs · "
        f"{platform.platform()} · {wasmtime_version} · {' '.join(wrk_version)} · run took {time.perf_counter() - t_start:.0f} s\n"
    )
    out.append("## Throughput\n")
    out.append(
        f"`wrk -t{args.threads} -c{args.connections} -d{args.duration}s --latency` after a {args.warmup} s warm-up, one target at a time. "
        f"`wasmtime serve {' '.join(wasmtime_flags)}` (fresh instance per request, its default for WASIp2); "
        f"`wasmtime serve (reuse)` adds `{' '.join(wasmtime_reuse_flags)}`; `(reuse, timeout)` also `-W timeout=30s` "
        "(epoch interruption, as wisp always has for its deadlines). "
        "wisp: default `wisp up`, functions in the default `fresh` mode (new instance per request); "
        "`wisp (reuse)` = the same artifact deployed with `scaling.instance_mode = \"reuse\"` (warm instances). "
        "The JS hello (StarlingMonkey) cannot serve more than one request per instance, so it has fresh rows only. "
        "Errors = wrk's `Non-2xx or 3xx responses` + socket errors.\n"
    )
    out.append("| target | component | rps | p50 | p99 | errors | rps vs `wasmtime serve` | "
               "rps vs `wasmtime serve` (reuse) | vs (reuse, timeout) | rps vs native hyper |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        p = peer.get(r["component"])
        reuse_row = r["label"] in ("wasmtime serve (reuse)", "wasmtime serve (reuse, timeout)", "wisp (reuse)")
        pr = peer_reuse.get(r["component"]) if reuse_row else None
        prt = peer_reuse_t.get(r["component"]) if reuse_row else None
        errs = r["non2xx"] + r["socket_errors"]
        out.append(
            f"| {r['label']} | {r['component']} | {r['rps']:,.0f} | {fmt_ms(r['p50'])} | {fmt_ms(r['p99'])} | {errs} | "
            f"{fmt_ratio(r['rps'], p['rps']) if p else '—'} | {fmt_ratio(r['rps'], pr['rps']) if pr else '—'} | "
            f"{fmt_ratio(r['rps'], prt['rps']) if prt else '—'} | "
            f"{fmt_ratio(r['rps'], native['rps']) if native else '—'} |"
        )
    out.append("")
    if interleaved:
        med = {k: statistics.median(v) for k, v in interleaved.items()}
        base, base_t = med.get("wasmtime serve (reuse)"), med.get("wasmtime serve (reuse, timeout)")
        out.append("### Python hello, instance reuse, interleaved\n")
        out.append(
            f"{args.rounds} rounds; each round starts new `wasmtime serve` processes (one process runs at one of "
            "two rates here for its whole life, ~1.7x apart, decided at start) and the three targets take turns "
            "(warm-up, then the same wrk run); wisp is the node of the table above. Medians compared.\n"
        )
        out.append("| target | rps per round | median | vs `wasmtime serve` (reuse) | vs (reuse, timeout) |")
        out.append("|---|---|---:|---:|---:|")
        for label, v in interleaved.items():
            out.append(f"| {label} | {', '.join(f'{x:,.0f}' for x in v)} | {med[label]:,.0f} | "
                       f"{fmt_ratio(med[label], base)} | {fmt_ratio(med[label], base_t)} |")
        out.append("")
    if cold:
        out.append("## Cold start\n")
        out.append("| measurement | n | p50 | p99 | max | notes |")
        out.append("|---|---:|---:|---:|---:|---|")
        if "cached" in cold:
            c = cold["cached"]
            b, a = c["compilations"]
            out.append(
                f"| deploy → first 200, same C bytes (compiled cache hit) | {len(c['samples'])} | {fmt_ms(pct(c['samples'], 50))} | "
                f"{fmt_ms(pct(c['samples'], 99))} | {fmt_ms(max(c['samples']))} | PUT p50 {fmt_ms(pct(c['put'], 50))}, "
                f"first GET p50 {fmt_ms(pct(c['get'], 50))}; compilations {b}→{a} |"
            )
        if "new" in cold:
            c = cold["new"]
            b, a = c["compilations"]
            cm = f"server compile_ms p50 {fmt_ms(pct(c['compile'], 50))}; " if c["compile"] else ""
            out.append(
                f"| deploy → first 200, new C artifact (validate + compile) | {len(c['samples'])} | {fmt_ms(pct(c['samples'], 50))} | "
                f"{fmt_ms(pct(c['samples'], 99))} | {fmt_ms(max(c['samples']))} | {cm}upload (not timed) p50 {fmt_ms(pct(c['upload'], 50))}; "
                f"compilations {b}→{a} |"
            )
        for key in [k for k in cold if k.startswith("restart")]:
            c = cold[key]
            out.append(
                f"| restart → first 200 from /hello-c, data dir with {key.removeprefix('restart ')} | {len(c['samples'])} | "
                f"{fmt_ms(pct(c['samples'], 50))} | — | {fmt_ms(max(c['samples']))} | from process spawn; spawn → "
                f"`listening` line p50 {fmt_ms(pct(c['listen'], 50))} |"
            )
        out.append("")
    if stz:
        out.append("## Cold start after scale-to-zero\n")
        out.append(
            "Reuse-mode functions deployed with `\"scaling\": {\"instance_mode\": \"reuse\", \"idle_timeout_seconds\": 1}` "
            f"on a restarted node; after one untimed first request, {args.stz_n}× : idle {args.stz_gap} s (the warm "
            "instance expires; expiry is checked when the next request checks out an instance), then one GET on a new "
            "TCP connection. Client = connect + GET + body, measured in Python; server = the invocation record "
            "(`logs`, matched by `x-wisp-invocation-id`): `duration_us` (whole invocation) and `instantiate_us`. "
            "`cold` = requests whose record says `cold: true`.\n"
        )
        out.append("| component | n | cold | client p50 | client p99 | server p50 | server p99 | instantiate p50 | "
                   "instantiate p99 | target p99 | met? |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for comp, z in stz.items():
            tgt = STZ_TARGET_P99_MS.get(comp)
            cp99, sp99 = pct(z["total"], 99), pct(z["duration"], 99)
            if tgt is None:
                met = "—"
            else:
                met = (f"client {'✅' if cp99 <= tgt else '❌'} ({fmt_ms(cp99)}), "
                       f"server {'✅' if sp99 <= tgt else '❌'} ({fmt_ms(sp99)})")
            out.append(
                f"| {comp} | {len(z['total'])} | {sum(z['cold'])}/{len(z['cold'])} | {fmt_ms(pct(z['total'], 50))} | "
                f"{fmt_ms(cp99)} | {fmt_ms(pct(z['duration'], 50))} | {fmt_ms(sp99)} | "
                f"{fmt_ms(pct(z['instantiate'], 50))} | {fmt_ms(pct(z['instantiate'], 99))} | "
                f"{fmt_ms(tgt) if tgt else '—'} | {met} |"
            )
        out.append("")
        for comp, z in stz.items():
            extra = []
            if z["bad"]:
                extra.append(f"non-200 responses {z['bad']}")
            if z["missing"]:
                extra.append(f"{z['missing']} requests without an invocation record")
            if z["cold"] and not all(z["cold"]):
                extra.append(f"{len(z['cold']) - sum(z['cold'])} requests were served warm (cold = false)")
            if z["mode"] != "reuse":
                extra.append(f"instance_mode in force: `{z['mode']}`")
            out.append(
                f"- {comp}: request alone (after connect) p50 {fmt_ms(pct(z['req'], 50))}, p99 {fmt_ms(pct(z['req'], 99))}, "
                f"max {fmt_ms(max(z['req'], default=float('nan')))}; client max {fmt_ms(max(z['total'], default=float('nan')))}"
                + ("; **" + "; ".join(extra) + "**" if extra else "")
            )
        out.append("")
    if bursts:
        out.append("## Burst from zero\n")
        out.append(
            f"Functions deployed in reuse mode and never invoked, then `wrk -t{args.threads} "
            f"-c{args.burst_connections} -d{args.burst_duration}s --latency` with a Lua script counting responses per "
            "status (adds a little client overhead), starting with no instance at all, on a node running "
            f"`--autoscale-tick-ms {AUTOSCALE_TICK_MS}`. `burst-py`: Python hello (CPU-bound: 2 cores serve it with "
            "2-3 requests in flight, the rest wait in socket buffers). `burst-sleep`: a C function that waits 50 ms on a "
            "wasi:clocks pollable (no CPU, like a function waiting on I/O), so every connection needs its own "
            "instance; `-limited` caps it at 16 instances with a queue of 16 and a 200 ms queue timeout, so the other "
            "connections get 429 (`Retry-After`) or 503. `GET /_wisp/v1/namespaces/default/functions/{name}` is "
            "sampled every 100 ms; peaks come from the autoscaler's step (the most in flight / queued at any moment "
            "of its interval, so short peaks are not missed). rps counts every response (429s are cheap); `200/s` is "
            "the goodput.\n"
        )
        out.append("| function | scaling | requests | rps | 200/s | p50 | p99 | max | 200 | 429 | 503 | other | "
                   "socket errors | peak in_flight | peak queued | peak instances | idle at end | invocations | cold starts |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for b in bursts:
            st = b["statuses"]
            ok, r429, r503 = st.get(200, 0), st.get(429, 0), st.get(503, 0)
            other = sum(v for k, v in st.items() if k not in (200, 429, 503))
            sm = b["samples"]
            sc = ", ".join(f"{k} {v}" for k, v in b["scaling"].items() if k != "instance_mode") or "defaults"
            va = b["view_after"]
            peak = lambda i: max((x[i] or 0) for x in sm) if sm else "—"  # noqa: E731
            out.append(
                f"| {b['name']} | reuse, {sc} | {b['requests'] or 0:,} | {b['rps'] or 0:,.0f} | "
                f"{(b['rps'] or 0) * ok / max(1, sum(st.values())):,.0f} | {fmt_ms(b['p50'])} | {fmt_ms(b['p99'])} | {fmt_ms(b['max'])} | "
                f"{ok:,} | {r429:,} | {r503:,} | {other:,} | {b['socket_errors_text'].removeprefix('Socket errors: ') or 0} | "
                f"{peak(8)} | {peak(9)} | {peak(7)} | {va.get('idle_instances', '—')} | {va.get('invocations', '—')} | "
                f"{va.get('cold_starts', '—')} |"
            )
        out.append("")
        out.append("Timeline: per autoscaler interval, peak in flight / peak queued / instances (idle + busy) / "
                   "desired, from the last sample taken at or before t (t = 0 when wrk starts; every 0.1 s for the "
                   "first second, then every 0.5 s):\n")
        out.append("| t | " + " | ".join(f"{b['name']}" for b in bursts) + " |")
        out.append("|---:|" + "---:|" * len(bursts))
        marks = [round(0.1 * i, 1) for i in range(0, 10)] + [round(0.5 * i, 1) for i in range(2, 2 * args.burst_duration + 2)]
        for m in marks:
            cells = []
            for b in bursts:
                smp = b["sampler"].at(m)
                cells.append(f"{smp[8]} / {smp[9]} / {smp[7]} / {smp[6]}" if smp and smp[6] is not None else "—")
            out.append(f"| {m:.1f} s | " + " | ".join(cells) + " |")
        out.append("")
        for b in bursts:
            if b["sampler_errors"]:
                out.append(f"- {b['name']}: {b['sampler_errors']} function-view samples failed")
            n = len(b["samples"])
            out.append(f"- {b['name']}: {n} samples; instance_mode `{b['view_after'].get('instance_mode')}`")
        out.append("")
    if preinit:
        out.append("## Pre-initialisation snapshots (WAGI)\n")
        out.append(
            "`primes-wagi` (C, WASI preview1 command, CGI-style): its `wizer-initialize` export sieves 4 M numbers. "
            "Two nodes, the same artifact: default (`wizer-initialize` runs at deploy, every fresh instance starts "
            "from the snapshot) and `wisp up --preinit-snapshots false` (the init runs in every instance before "
            f"`_start`). Same wrk settings as the throughput table; `init` and `handler` are the p50 phases of the "
            "invocation records (`wisp status NAME`).\n"
        )
        out.append("| node | deploy note | rps | p50 | p99 | init p50 | handler p50 | errors | rps vs per-instance init |")
        out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        base = preinit.get("per-instance")
        for label, r in preinit.items():
            out.append(
                f"| {label} | {r['note']} | {r['rps']:,.0f} | {fmt_ms(r['p50'])} | {fmt_ms(r['p99'])} | "
                f"{fmt_ms(r['init_p50'])} | {fmt_ms(r['handler_p50'])} | {r['non2xx'] + r['socket_errors']} | "
                f"{fmt_ratio(r['rps'], base['rps']) if base else '—'} |"
            )
        out.append("")
    if rows:
        out.append("## Sequential request latency\n")
        out.append(
            f"{args.seq_n} single GETs one after another on one keep-alive connection (no concurrency), client-side time; "
            "for wisp (fresh) and `wasmtime serve` (fresh) each is a fresh instantiate + handle.\n"
        )
        out.append("| target | component | p50 | p99 | max |")
        out.append("|---|---|---:|---:|---:|")
        for r in rows:
            out.append(f"| {r['label']} | {r['component']} | {fmt_ms(r['seq_p50'])} | {fmt_ms(r['seq_p99'])} | {fmt_ms(r['seq_max'])} |")
        out.append("")
    if any(r["non2xx"] or r["socket_errors"] for r in rows):
        out.append("**wrk errors:** " + "; ".join(
            f"{r['label']} {r['component']}: non-2xx {r['non2xx']}, {r['socket_errors_text'] or 'no socket errors'}"
            for r in rows if r["non2xx"] or r["socket_errors"]) + "\n")
    out.extend(notes)
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wisp", default=str(REPO / "target/release/wisp"))
    ap.add_argument("--wasmtime", default=shutil.which("wasmtime") or "wasmtime")
    ap.add_argument("--hyper-hello", default=str(REPO / "target/release/hyper-hello"))
    ap.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    ap.add_argument("--guests", default=str(REPO / "target/guests"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--duration", type=int, default=10, help="wrk seconds per target")
    ap.add_argument("--warmup", type=int, default=2, help="wrk warm-up seconds per target (discarded)")
    ap.add_argument("--seq-n", type=int, default=1000, help="sequential single requests per target")
    ap.add_argument("--cold-n", type=int, default=50, help="deploys of the same C bytes under new names")
    ap.add_argument("--new-n", type=int, default=10, help="deploys of brand-new C artifacts")
    ap.add_argument("--restarts", type=int, default=5)
    ap.add_argument("--burst-connections", type=int, default=64, help="wrk connections of the burst from zero")
    ap.add_argument("--burst-duration", type=int, default=10, help="wrk seconds of the burst from zero")
    ap.add_argument("--stz-n", type=int, default=30, help="timed cold requests per component after scale-to-zero")
    ap.add_argument("--stz-gap", type=float, default=1.2, help="idle seconds before each (idle_timeout_seconds = 1)")
    ap.add_argument("--startup-timeout", type=float, default=900, help="seconds a server may take to serve its first 200")
    ap.add_argument("--out", default=str(REPO / "bench/results/latest.md"))
    ap.add_argument("--no-reuse", action="store_true", help="skip the extra wisp rows with instance_mode = reuse")
    ap.add_argument("--no-peer-reuse", action="store_true",
                    help="skip the `wasmtime serve --max-instance-reuse-count` rows")
    ap.add_argument("--no-js", action="store_true", help="skip the JavaScript hello (hello-js.wasm)")
    ap.add_argument("--no-cold-start", action="store_true", help="skip deploy -> first 200 and restart -> first 200")
    ap.add_argument("--no-burst", action="store_true", help="skip the burst-from-zero section")
    ap.add_argument("--no-scale-to-zero", action="store_true", help="skip the cold-start-after-scale-to-zero section")
    ap.add_argument("--no-preinit", action="store_true", help="skip the WAGI pre-initialisation section")
    ap.add_argument("--rounds", type=int, default=3,
                    help="rounds of the interleaved Python-reuse comparison (0 skips it)")
    ap.add_argument("--keep-logs", action="store_true", help="keep the temp dir with server and wrk logs")
    args = ap.parse_args()

    guests = Path(args.guests)
    comps = {"C hello": guests / "hello-c.wasm", "Python hello": guests / "hello-py.wasm"}
    if not args.no_js:
        comps["JS hello"] = guests / "hello-js.wasm"
    # Components measured with instance reuse too. JS (StarlingMonkey) cannot be reused: wisp would fall back to fresh.
    reusable = ("C hello", "Python hello")
    for p in [Path(args.wisp), Path(args.hyper_hello), *comps.values()]:
        if not p.is_file():
            ap.error(f"missing {p} (run bench/run.sh, which builds it)")
    for tool in (args.wasmtime, args.wrk):
        if not shutil.which(tool):
            ap.error(f"missing {tool}")

    wasmtime_version = subprocess.run([args.wasmtime, "--version"], capture_output=True, text=True).stdout.strip()
    wrk_version = subprocess.run([args.wrk, "-v"], capture_output=True, text=True).stdout.splitlines()[:1]
    git = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip()

    tmp, logdir = workdir("wisp-bench-")
    log(f"temp dir {tmp}")
    wasmtime_flags = ["-S", "cli=y", "-O", "pooling-allocator=y"]
    # Peer instance reuse: wasmtime's default idle timeout is 1 s; 300 s matches wisp's default idle_timeout_seconds.
    wasmtime_reuse_flags = ["--max-instance-reuse-count", "1000000", "--idle-instance-timeout", "300s"]
    rows: list[dict] = []
    cold: dict = {}
    bursts: list[dict] = []
    stz: dict = {}
    preinit: dict = {}
    interleaved: dict = {}
    notes: list[str] = []
    n_functions = None
    t_start = time.perf_counter()
    try:
        # 1a. native hyper
        port = free_port()
        with running("hyper-hello", [args.hyper_hello, f"127.0.0.1:{port}"], logdir) as s:
            wait_200(port, "/", 30, s)
            rows.append(measure_target(args, "native hyper", "—", port, "/", logdir))

        # 1b. wasmtime serve, one process per component (and per mode)
        for comp, path in comps.items():
            modes = [("wasmtime serve", [])]
            if comp in reusable and not args.no_peer_reuse:
                modes.append(("wasmtime serve (reuse)", wasmtime_reuse_flags))
                # The same with a request timeout, which wisp always enforces: `-W timeout` turns on epoch
                # interruption, whose checks in the guest's code cost interpreted guests measurably.
                modes.append(("wasmtime serve (reuse, timeout)", [*wasmtime_reuse_flags, "-W", "timeout=30s"]))
            for label, extra in modes:
                port = free_port()
                cmd = [args.wasmtime, "serve", *wasmtime_flags, *extra, "--addr", f"127.0.0.1:{port}", str(path)]
                tag = f"wasmtime-serve-{path.stem}" + ("-reuse" if extra else "") + ("-timeout" if "-W" in extra else "")
                try:
                    with running(tag, cmd, logdir) as s:
                        t = time.perf_counter()
                        wait_200(port, "/", args.startup_timeout, s, poll_s=0.05)
                        log(f"{label} {path.name}: first 200 after {time.perf_counter() - t:.1f} s (includes compilation)")
                        rows.append(measure_target(args, label, comp, port, "/", logdir))
                except (RuntimeError, TimeoutError) as e:
                    if not extra:
                        raise
                    notes.append(f"- {label} for {comp} not measured: {str(e).splitlines()[0]}")
                    log(f"{label} {comp} failed: {e}")

        # 1c. wisp: one node, all components deployed, then the cold-start measurements on the same node
        data = tmp / "wisp-data"
        s, port = start_wisp(args.wisp, data, logdir, "wisp")
        try:
            wait_line(s, "wisp listening on", 60)
            api = Api(port, (data / "api-token").read_text().strip())
            routes = {}
            for comp, path in comps.items():
                name = path.stem
                sha = api.upload(path.read_bytes())
                t = time.perf_counter()
                api.deploy(name, sha, f"/{name}")
                log(f"wisp: deployed {name} in {(time.perf_counter() - t) * 1e3:.0f} ms (includes compilation)")
                routes[comp] = f"/{name}"
                if not args.no_reuse and comp in reusable:
                    # Same artifact, instance reuse (warm instances serve request after request).
                    try:
                        api.deploy(f"{name}-reuse", sha, f"/{name}-reuse", {"scaling": {"instance_mode": "reuse"}})
                        routes[(comp, "reuse")] = f"/{name}-reuse"
                    except RuntimeError as e:
                        notes.append(f"- wisp reuse mode for {comp} not measured: {e}")
            for comp, route in routes.items():
                if isinstance(comp, tuple):
                    rows.append(measure_target(args, "wisp (reuse)", comp[0], port, route, logdir))
                    _, v = api.call("GET", function_path(route.lstrip("/")))
                    mode = v.get("function", {}).get("instance_mode")
                    if mode != "reuse":
                        notes.append(f"- wisp (reuse) {comp[0]}: instance_mode in force is `{mode}` (fell back)")
                else:
                    rows.append(measure_target(args, "wisp", comp, port, route, logdir))

            # 1d. Python reuse, interleaved: one `wasmtime serve` process runs at one of two rates here for its
            # whole life (~6k or ~11k rps on the same machine, a coin flip at start), while wisp's rate holds.
            # So every round starts new peer processes, and the three targets take turns; medians are compared.
            if args.rounds > 0 and ("Python hello", "reuse") in routes and not args.no_peer_reuse:
                py = comps["Python hello"]
                peers = [("wasmtime serve (reuse)", wasmtime_reuse_flags),
                         ("wasmtime serve (reuse, timeout)", [*wasmtime_reuse_flags, "-W", "timeout=30s"])]
                wisp_target = ("wisp (reuse)", port, routes[("Python hello", "reuse")])
                for rnd in range(args.rounds):
                    with contextlib.ExitStack() as stack:
                        targets = []
                        for label, extra in peers:
                            pp = free_port()
                            cmd = [args.wasmtime, "serve", *wasmtime_flags, *extra, "--addr", f"127.0.0.1:{pp}", str(py)]
                            srv = stack.enter_context(running(f"interleaved-{rnd}-{len(targets)}", cmd, logdir))
                            wait_200(pp, "/", args.startup_timeout, srv, poll_s=0.05)
                            targets.append((label, pp, "/"))
                        targets.append(wisp_target)
                        for label, pp, path in targets:
                            run_wrk(args, f"http://127.0.0.1:{pp}{path}", args.warmup, logdir, "interleaved-warmup")
                            r = run_wrk(args, f"http://127.0.0.1:{pp}{path}", args.duration, logdir,
                                        f"interleaved-{rnd}-{label}".replace(" ", "_"))
                            interleaved.setdefault(label, []).append(r["rps"] or 0.0)
                            log(f"interleaved round {rnd}: {label} {r['rps']} rps")

            c_bytes = comps["C hello"].read_bytes()
            if not args.no_cold_start:
                # 2a. deploy -> first 200, same bytes (compiled-cache hit)
                c_sha = api.upload(c_bytes)
                before = api.status().get("compilations")
                cached, put_ms, get_ms = [], [], []
                for i in range(args.cold_n):
                    t0 = time.perf_counter()
                    api.deploy(f"cs-{i}", c_sha, f"/cs-{i}")
                    t1 = time.perf_counter()
                    t2 = wait_200(port, f"/cs-{i}", 30, s, poll_s=0.0005)
                    cached.append((t2 - t0) * 1e3)
                    put_ms.append((t1 - t0) * 1e3)
                    get_ms.append((t2 - t1) * 1e3)
                after = api.status().get("compilations")
                cold["cached"] = {"samples": cached, "put": put_ms, "get": get_ms, "compilations": (before, after)}
                log(f"deploy->200 cached: p50 {pct(cached, 50):.2f} ms, p99 {pct(cached, 99):.2f} ms")

                # 2a'. deploy -> first 200, brand-new artifacts (validation + compilation)
                fresh, upload_ms, compile_ms = [], [], []
                stamp = str(time.time_ns()).encode()
                before = api.status().get("compilations")
                for i in range(args.new_n):
                    wasm = with_custom_section(c_bytes, "wisp-bench", stamp + b"-" + str(i).encode())
                    tu = time.perf_counter()
                    sha = api.upload(wasm)
                    t0 = time.perf_counter()
                    body = api.deploy(f"cn-{i}", sha, f"/cn-{i}")
                    t2 = wait_200(port, f"/cn-{i}", 60, s, poll_s=0.0005)
                    fresh.append((t2 - t0) * 1e3)
                    upload_ms.append((t0 - tu) * 1e3)
                    if body.get("compile_ms") is not None:
                        compile_ms.append(float(body["compile_ms"]))
                after = api.status().get("compilations")
                cold["new"] = {"samples": fresh, "upload": upload_ms, "compile": compile_ms, "compilations": (before, after)}
                log(f"deploy->200 new artifact: p50 {pct(fresh, 50):.1f} ms, max {max(fresh):.1f} ms")
            n_functions = api.status().get("functions")
            api.close()
        finally:
            s.stop()

        # 2b. restart -> first 200, on the data dir above (all functions) and on a dir with only hello-c
        if not args.no_cold_start:
            small = tmp / "wisp-data-small"
            s2, port2 = start_wisp(args.wisp, small, logdir, "wisp-small")
            try:
                wait_line(s2, "wisp listening on", 60)
                api = Api(port2, (small / "api-token").read_text().strip())
                api.deploy("hello-c", api.upload(c_bytes), "/hello-c")
                api.close()
            finally:
                s2.stop()
            for label, d, nf in (("1 function", small, 1), (f"{n_functions} functions", data, n_functions)):
                to_200, to_listen = [], []
                for i in range(args.restarts):
                    sr, pr = start_wisp(args.wisp, d, logdir, f"wisp-restart-{nf}-{i}")
                    try:
                        t_ok = wait_200(pr, "/hello-c", 60, sr, poll_s=0.001)
                        to_200.append((t_ok - sr.t_spawn) * 1e3)
                        tl = sr.first_line_time("wisp listening on")
                        if tl is not None:
                            to_listen.append((tl - sr.t_spawn) * 1e3)
                    finally:
                        sr.stop()
                cold[f"restart {label}"] = {"samples": to_200, "listen": to_listen}
                log(f"restart ({label}) -> first 200: p50 {pct(to_200, 50):.1f} ms, max {max(to_200):.1f} ms")

        # 3 + 4. burst from zero, cold start after scale-to-zero: a new `wisp up` on the same data dir (compiled
        # cache hits; no warm instances left over from the throughput runs), new functions that were never invoked.
        if not (args.no_burst and args.no_scale_to_zero):
            s3, port3 = start_wisp(args.wisp, data, logdir, "wisp-scaling", ["--autoscale-tick-ms", str(AUTOSCALE_TICK_MS)])
            try:
                wait_line(s3, "wisp listening on", 120)
                token = (data / "api-token").read_text().strip()
                api = Api(port3, token)
                py_sha = api.upload(comps["Python hello"].read_bytes())
                c_sha = api.upload(c_bytes)
                sleep_sha = api.upload((guests / "sleep-c.wasm").read_bytes())
                if not args.no_burst:
                    lua = tmp / "statuses.lua"
                    lua.write_text(STATUS_LUA)
                    for name, sha, scaling in (
                        ("burst-py", py_sha, {"instance_mode": "reuse"}),
                        ("burst-sleep", sleep_sha, {"instance_mode": "reuse"}),
                        ("burst-sleep-limited", sleep_sha, {"instance_mode": "reuse", "max_instances": 16,
                                                            "max_queue_depth": 16, "queue_timeout_ms": 200}),
                    ):
                        bursts.append(burst(args, api, port3, token, name, sha, scaling, logdir, lua))
                if not args.no_scale_to_zero:
                    stz["C hello"] = scale_to_zero(args, api, port3, "stz-c", c_sha)
                    stz["Python hello"] = scale_to_zero(args, api, port3, "stz-py", py_sha)
                api.close()
            finally:
                s3.stop()
        # 5. pre-initialisation snapshots: the same WAGI artifact on a default node and on one without snapshots
        if not args.no_preinit:
            wasm = (guests / "primes-wagi.wasm").read_bytes()
            for label, extra in (("snapshot at deploy (default)", []), ("per-instance", ["--preinit-snapshots", "false"])):
                d = tmp / f"wisp-preinit-{len(preinit)}"
                sp, pp = start_wisp(args.wisp, d, logdir, f"wisp-preinit-{len(preinit)}", extra)
                try:
                    wait_line(sp, "wisp listening on", 60)
                    api = Api(pp, (d / "api-token").read_text().strip())
                    body = api.deploy("primes", api.upload(wasm), "/primes", {"kind": "wagi"})
                    r = measure_target(args, f"wisp WAGI primes ({label})", "primes-wagi", pp, "/primes?n=1000", logdir)
                    _, show = api.call("GET", function_path("primes"))
                    cold_phases = (show.get("phases") or {}).get("cold") or {}
                    r.update(note=body.get("preinit") or "—",
                             init_p50=(cold_phases.get("init_us") or [0])[0] / 1e3,
                             handler_p50=(cold_phases.get("handler_us") or [0])[0] / 1e3)
                    preinit[label] = r
                    api.close()
                finally:
                    sp.stop()
    finally:
        if args.keep_logs:
            log(f"logs kept in {logdir}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    report = render(args, rows, cold, bursts, stz, preinit, interleaved, notes, comps, wasmtime_flags, wasmtime_reuse_flags,
                    wasmtime_version, wrk_version, git, t_start)
    print(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report + "\n")
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
