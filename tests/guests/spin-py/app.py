"""A Spin app written against the Spin Python SDK 3.4.1, unchanged from how it runs under `spin up`:
key-value, variables, SQLite and outbound HTTP through the SDK's own modules."""

import json

from spin_sdk import http, key_value, llm, variables
from spin_sdk.http import Request, Response, send
from spin_sdk.wit.types import Err

# spin_sdk.sqlite imports `spin_sdk.wit.imports.sqlite`, a name componentize-py 0.17.2 does not generate once the
# world has two `sqlite` interfaces (it writes `fermyon_spin_sqlite` and `spin_sqlite_sqlite`): under `spin up` the
# helper module fails the same way, so Spin SDK 3.4.1 apps use the generated bindings, as this one does.
from spin_sdk.wit.imports import atomics, wasi_keyvalue_store
from spin_sdk.wit.imports import fermyon_spin_sqlite as sqlite2
from spin_sdk.wit.imports import spin_sqlite_sqlite as sqlite3


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        path = request.headers.get("spin-path-info", "/")
        try:
            if path == "/kv":
                return self.kv(request)
            if path == "/incr":
                return text(200, str(atomics.increment(wasi_keyvalue_store.open("default"), "n", 1)))
            if path == "/casincr":
                return text(200, str(self.cas_increment()))
            if path == "/casconflict":
                return self.cas_conflict()
            if path == "/var":
                return text(200, variables.get("greeting"))
            if path == "/sql":
                return self.sql(request, sqlite3)
            if path == "/sql2":
                return self.sql(request, sqlite2)
            if path == "/sqlopen":
                return self.sql_open(query(request).get("db", "default"))
            if path == "/llm":  # an interface wisp does not serve: the call traps
                return text(200, llm.infer("llama2-chat", "hi").text)
            if path == "/fetch":
                upstream = send(Request("GET", variables.get("upstream"), {}, None))
                return text(upstream.status, (upstream.body or b"").decode())
            if path == "/headers":
                spin = {k: v for k, v in request.headers.items() if k.startswith("spin-")}
                return Response(200, {"content-type": "application/json"}, json.dumps(spin, sort_keys=True).encode())
            return text(404, f"no route {path}")
        except Exception as e:  # the SDK raises Err(...) for host errors; show it like Spin would log it
            return text(500, f"{type(e).__name__}: {e!r}")

    def kv(self, request: Request) -> Response:
        with key_value.open_default() as store:
            if request.method == "POST":
                store.set("note", request.body or b"")
            counter = int((store.get("hits") or b"0").decode()) + 1
            store.set("hits", str(counter).encode())
            note = (store.get("note") or b"").decode()
            keys = sorted(store.get_keys())
            return text(200, json.dumps({"hits": counter, "note": note, "keys": keys}))

    def cas_increment(self) -> int:
        """Read-modify-write through wasi:keyvalue@0.2.0-draft2's compare-and-swap, retried on conflict."""
        bucket = wasi_keyvalue_store.open("default")
        cas = atomics.Cas.new(bucket, "c")
        while True:
            n = int((cas.current() or b"0").decode()) + 1
            try:
                atomics.swap(cas, str(n).encode())
                return n
            except Err as e:
                if not isinstance(e.value, atomics.CasError_CasFailed):
                    raise
                cas = e.value.value  # a fresh handle, at the value that won

    def cas_conflict(self) -> Response:
        """A write between reading and swapping: the swap fails with the winner's value, a retry succeeds."""
        bucket = wasi_keyvalue_store.open("default")
        bucket.set("k", b"start")
        cas = atomics.Cas.new(bucket, "k")
        seen = cas.current().decode()
        bucket.set("k", b"other writer")
        out = {"seen": seen}
        try:
            atomics.swap(cas, b"mine")
            out["first"] = "swapped"
        except Err as e:
            out["first"] = type(e.value).__name__
            fresh = e.value.value
            out["fresh"] = fresh.current().decode()
            atomics.swap(fresh, b"mine")
        out["final"] = bucket.get("k").decode()
        return text(200, json.dumps(out))

    def sql(self, request: Request, sqlite) -> Response:
        # The table comes from the app's migrations/ (under `spin up`: --sqlite @migrations/001_notes.sql).
        with sqlite.Connection.open("default") as db:
            out = {}
            if request.method == "POST":
                db.execute("INSERT INTO notes (body) VALUES (?)", [sqlite.Value_Text((request.body or b"").decode())])
                if hasattr(db, "last_insert_rowid"):  # spin:sqlite@3.0.0 only
                    out["rowid"] = db.last_insert_rowid()
                    out["changes"] = db.changes()
            after = int(query(request).get("after", "0"))
            result = db.execute("SELECT id, body FROM notes WHERE id > ? ORDER BY id", [sqlite.Value_Integer(after)])
            out["columns"] = result.columns
            out["rows"] = [[cell(v) for v in row.values] for row in result.rows]
            return text(200, json.dumps(out))

    def sql_open(self, name: str) -> Response:
        try:
            with sqlite3.Connection.open(name) as db:
                db.execute("SELECT 1", [])
                return text(200, "opened")
        except Exception as e:
            return text(403, type(getattr(e, "value", e)).__name__)


def query(request: Request) -> dict:
    _, _, qs = request.uri.partition("?")
    return dict(p.split("=", 1) for p in qs.split("&") if "=" in p)


def cell(value):
    return value.value


def text(status: int, body: str) -> Response:
    return Response(status, {"content-type": "text/plain"}, body.encode())
