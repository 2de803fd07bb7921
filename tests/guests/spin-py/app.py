"""A Spin app written against the Spin Python SDK 3.4.1, unchanged from how it runs under `spin up`:
key-value, variables, SQLite and outbound HTTP through the SDK's own modules."""

import json

from spin_sdk import http, key_value, variables
from spin_sdk.http import Request, Response, send

# spin_sdk.sqlite imports `spin_sdk.wit.imports.sqlite`, a name componentize-py 0.17.2 does not generate once the
# world has two `sqlite` interfaces (it writes `fermyon_spin_sqlite` and `spin_sqlite_sqlite`): under `spin up` the
# helper module fails the same way, so Spin SDK 3.4.1 apps use the generated bindings, as this one does.
from spin_sdk.wit.imports import fermyon_spin_sqlite as sqlite2
from spin_sdk.wit.imports import spin_sqlite_sqlite as sqlite3


class IncomingHandler(http.IncomingHandler):
    def handle_request(self, request: Request) -> Response:
        path = request.headers.get("spin-path-info", "/")
        try:
            if path == "/kv":
                return self.kv(request)
            if path == "/var":
                return text(200, variables.get("greeting"))
            if path == "/sql":
                return self.sql(request, sqlite3)
            if path == "/sql2":
                return self.sql(request, sqlite2)
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

    def sql(self, request: Request, sqlite) -> Response:
        with sqlite.Connection.open("default") as db:
            if request.method == "POST":
                db.execute("INSERT INTO notes (body) VALUES (?)", [sqlite.Value_Text((request.body or b"").decode())])
            result = db.execute("SELECT id, body FROM notes WHERE id > ? ORDER BY id", [sqlite.Value_Integer(0)])
            rows = [[cell(v) for v in row.values] for row in result.rows]
            return text(200, json.dumps({"columns": result.columns, "rows": rows}))


def cell(value):
    return value.value


def text(status: int, body: str) -> Response:
    return Response(status, {"content-type": "text/plain"}, body.encode())
