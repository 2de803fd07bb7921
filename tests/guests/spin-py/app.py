"""A Spin app written against the Spin Python SDK 3.4.1, unchanged from how it runs under `spin up`:
key-value, variables, SQLite, outbound HTTP, PostgreSQL, MySQL, Redis and MQTT through the SDK's own modules."""

import json
from enum import Enum
from urllib.parse import unquote

from spin_sdk import http, key_value, llm, mqtt, mysql, postgres, redis, variables
from spin_sdk.http import Request, Response, send
from spin_sdk.wit.types import Err

# spin_sdk.sqlite imports `spin_sdk.wit.imports.sqlite`, a name componentize-py 0.17.2 does not generate once the
# world has two `sqlite` interfaces (it writes `fermyon_spin_sqlite` and `spin_sqlite_sqlite`): under `spin up` the
# helper module fails the same way, so Spin SDK 3.4.1 apps use the generated bindings, as this one does.
from spin_sdk.wit.imports import atomics, wasi_keyvalue_store
from spin_sdk.wit.imports import fermyon_spin_sqlite as sqlite2
from spin_sdk.wit.imports import spin_sqlite_sqlite as sqlite3
from spin_sdk.wit.imports import rdbms_types as rt
from spin_sdk.wit.imports import spin_postgres_postgres_3_0_0 as pg3
from spin_sdk.wit.imports import spin_postgres_postgres_4_0_0 as pg4


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
            if path in DATABASE_ROUTES:
                try:
                    return text(200, json.dumps(DATABASE_ROUTES[path](self, query(request))))
                except Err as e:  # a host error, as the SDK raises it: its variant and message
                    return text(500, json.dumps(failure(e.value)))
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


    # ---------------------------------------------------------------- outbound databases and brokers ---
    # Addresses come from the app's variables, or from `?url=` (percent-encoded) to try another one.

    def pg(self, q: dict) -> dict:
        """fermyon:spin/postgres@2.0.0 through spin_sdk.postgres: a parameterised insert and select."""
        table = q["table"]
        with postgres.open(q.get("url") or variables.get("pg_url")) as db:
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (id serial PRIMARY KEY, name text NOT NULL, n bigint,"
                " small smallint, score double precision, ok boolean, data bytea, note text)",
                [],
            )
            name = q.get("name", "o'hara; DROP TABLE x")
            changed = db.execute(
                f"INSERT INTO {table} (name, n, small, score, ok, data, note) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                [rt.ParameterValue_Str(name), rt.ParameterValue_Int64(2**40), rt.ParameterValue_Int16(-7),
                 rt.ParameterValue_Floating64(2.5), rt.ParameterValue_Boolean(True),
                 rt.ParameterValue_Binary(b"\x00\xffwisp"), rt.ParameterValue_DbNull()],
            )
            # An int32 for a bigint comparison: the server parses it as the column's type.
            rows = db.query(
                f"SELECT name, n, small, score, ok, data, note FROM {table} WHERE name = $1 AND n > $2",
                [rt.ParameterValue_Str(name), rt.ParameterValue_Int32(5)],
            )
            return {"changed": changed, **rowset(rows)}

    def pg3(self, q: dict) -> dict:
        """spin:postgres/postgres@3.0.0: dates and times."""
        table = q["table"]
        with pg3.Connection.open(q.get("url") or variables.get("pg_url")) as db:
            db.execute(f"CREATE TABLE IF NOT EXISTS {table} (d date, t time, ts timestamp, tz timestamptz)", [])
            db.execute(
                f"INSERT INTO {table} VALUES ($1, $2, $3, $4)",
                [pg3.ParameterValue_Date((2024, 2, 29)), pg3.ParameterValue_Time((23, 59, 58, 123456000)),
                 pg3.ParameterValue_Datetime((1999, 12, 31, 23, 59, 59, 0)), pg3.ParameterValue_Timestamp(86400)],
            )
            return rowset(db.query(f"SELECT d, t, ts, tz FROM {table}", []))

    def pg4(self, q: dict) -> dict:
        """spin:postgres/postgres@4.0.0: the types v4 adds, and what has no mapping."""
        table = q["table"]
        inc, exc = pg4.RangeBoundKind.INCLUSIVE, pg4.RangeBoundKind.EXCLUSIVE
        with pg4.Connection.open(q.get("url") or variables.get("pg_url")) as db:
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (u uuid, j jsonb, dec numeric(30, 4), r int4range,"
                " tags text[], ns bigint[], iv interval, at timestamptz)",
                [],
            )
            db.execute(
                f"INSERT INTO {table} VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                [pg4.ParameterValue_Uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
                 pg4.ParameterValue_Jsonb(b'{"a": [1, 2]}'),
                 pg4.ParameterValue_Decimal("12345678901234567890.1234"),
                 pg4.ParameterValue_RangeInt32(((1, inc), (10, exc))),
                 pg4.ParameterValue_ArrayStr(["a", None, 'q"uote']),
                 pg4.ParameterValue_ArrayInt64([2**40, None]),
                 pg4.ParameterValue_Interval(pg4.Interval(micros=1500000, days=2, months=14)),
                 pg4.ParameterValue_Datetime((2024, 1, 2, 3, 4, 5, 600000000))],
            )
            out = rowset(db.query(f"SELECT u, j, dec, r, tags, ns, iv, at, '10.0.0.1'::inet AS addr FROM {table}", []))
            try:
                db.query("SELECT * FROM wisp_no_such_table", [])
            except Err as e:
                out["missing"] = failure(e.value)
            return out

    def pgpid(self, q: dict) -> dict:
        """The server process behind this invocation's connection: the same across invocations when pooled."""
        with postgres.open(q.get("url") or variables.get("pg_url")) as db:
            return rowset(db.query("SELECT pg_backend_pid() AS pid", []))

    def pgsession(self, q: dict) -> dict:
        """Session state one invocation leaves behind (a setting, a temporary table, an open transaction) that
        the next one on the same pooled connection must not see."""
        table = q["table"]
        with postgres.open(q.get("url") or variables.get("pg_url")) as db:
            if q.get("step") == "leave":
                db.execute(f"CREATE TABLE IF NOT EXISTS {table} (x int)", [])
                db.query("SELECT set_config('wisp.leak', 'leaked', false)", [])
                db.execute("CREATE TEMP TABLE wisp_leak (x int)", [])
                db.execute("BEGIN", [])
                db.execute(f"INSERT INTO {table} VALUES (1)", [])
            return rowset(db.query(
                "SELECT pg_backend_pid() AS pid, coalesce(current_setting('wisp.leak', true), '') AS setting,"
                f" to_regclass('pg_temp.wisp_leak') IS NOT NULL AS temp, (SELECT count(*) FROM {table}) AS uncommitted",
                [],
            ))

    def my(self, q: dict) -> dict:
        """fermyon:spin/mysql@2.0.0 through spin_sdk.mysql."""
        table = q["table"]
        with mysql.open(q.get("url") or variables.get("mysql_url")) as db:
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {table} (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100),"
                " big BIGINT UNSIGNED, score DOUBLE, tiny TINYINT, data BLOB, price DECIMAL(10, 2), at DATETIME,"
                " note TEXT)",
                [],
            )
            db.execute(
                f"INSERT INTO {table} (name, big, score, tiny, data, price, at, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [rt.ParameterValue_Str("zoë's"), rt.ParameterValue_Uint64(2**63 + 1), rt.ParameterValue_Floating64(-1.25),
                 rt.ParameterValue_Int8(-3), rt.ParameterValue_Binary(b"\x00\x01"), rt.ParameterValue_Str("12.50"),
                 rt.ParameterValue_Str("2024-02-29 12:34:56"), rt.ParameterValue_DbNull()],
            )
            rows = db.query(
                f"SELECT id, name, big, score, tiny, data, price, at, note FROM {table} WHERE name = ?",
                [rt.ParameterValue_Str("zoë's")],
            )
            out = rowset(rows)
            try:
                db.query("SELECT * FROM wisp_no_such_table", [])
            except Err as e:
                out["missing"] = failure(e.value)
            return out

    def mysqlsession(self, q: dict) -> dict:
        """As pgsession, for MySQL: a user variable, a temporary table, an open transaction."""
        table = q["table"]
        with mysql.open(q.get("url") or variables.get("mysql_url")) as db:
            if q.get("step") == "leave":
                db.execute(f"CREATE TABLE IF NOT EXISTS {table} (x INT)", [])
                db.execute("SET @wisp_leak = 'leaked'", [])
                db.execute("CREATE TEMPORARY TABLE wisp_leak (x INT)", [])
                db.execute("START TRANSACTION", [])
                db.execute(f"INSERT INTO {table} VALUES (1)", [])
            out = rowset(db.query(
                f"SELECT CONNECTION_ID() AS id, CAST(COALESCE(@wisp_leak, '') AS CHAR) AS setting, (SELECT COUNT(*) FROM {table}) AS n", []
            ))
            try:
                db.query("SELECT COUNT(*) FROM wisp_leak", [])
                out["temp"] = True
            except Err:
                out["temp"] = False
            return out

    def redissession(self, q: dict) -> dict:
        """Redis connection state one invocation leaves (another database selected) that the next must not see."""
        key = q["key"]
        with redis.open(q.get("url") or variables.get("redis_url")) as db:
            if q.get("step") == "leave":
                db.execute("SELECT", [redis_param("3")])
                db.execute("SET", [redis_param(key), redis_param("in database 3"), redis_param("EX"), redis_param("60")])
            me = db.execute("CLIENT", [redis_param("ID")])
            return {"client": show(me[0]), "value": plain(db.get(key))}

    def redis(self, q: dict) -> dict:
        """fermyon:spin/redis@2.0.0 through spin_sdk.redis."""
        key = q["key"]
        with redis.open(q.get("url") or variables.get("redis_url")) as db:
            db.set(key, b"value \x00 bytes")
            got = db.get(key)
            missing = db.get(key + ":missing")
            n = [db.incr(key + ":n") for _ in range(3)]
            added = db.sadd(key + ":set", ["a", "b", "a"])
            removed = db.srem(key + ":set", ["b", "z"])
            members = db.smembers(key + ":set")
            try:
                db.incr(key)
                wrong = None
            except Err as e:
                wrong = failure(e.value)
            appended = db.execute("APPEND", [redis_param(key + ":log"), redis_param("abc")])
            listed = db.execute("MGET", [redis_param(key + ":log"), redis_param(key + ":missing")])
            deleted = db.del_([key, key + ":n", key + ":set", key + ":log", key + ":missing"])
            if "channel" in q:
                db.publish(q["channel"], q.get("message", "hello").encode())
            return {"got": plain(got), "missing": missing, "n": n, "added": added, "removed": removed,
                    "members": members, "wrong": wrong, "appended": [show(v) for v in appended],
                    "listed": [show(v) for v in listed], "deleted": deleted}

    def mqtt(self, q: dict) -> dict:
        """fermyon:spin/mqtt@2.0.0 through spin_sdk.mqtt: open, publish with a QoS."""
        qos = [mqtt.Qos.AT_MOST_ONCE, mqtt.Qos.AT_LEAST_ONCE, mqtt.Qos.EXACTLY_ONCE][int(q.get("qos", "1"))]
        with mqtt.open(q.get("url") or variables.get("mqtt_url"), "", "", 30) as conn:
            conn.publish(q["topic"], q.get("message", "hello").encode(), qos)
        return {"published": q["topic"]}

    def dbopen(self, q: dict) -> dict:
        """Opens a connection of one kind to `url` and runs one trivial call."""
        kind, url = q["kind"], q["url"]
        if kind == "pg":
            with postgres.open(url) as db:
                db.query("SELECT 1", [])
        elif kind == "pg4":
            with pg4.Connection.open(url) as db:
                db.query("SELECT 1", [])
        elif kind == "mysql":
            with mysql.open(url) as db:
                db.query("SELECT 1", [])
        elif kind == "redis":
            with redis.open(url) as db:
                db.get("wisp:nothing")
        elif kind == "mqtt":
            with mqtt.open(url, "", "", 30) as conn:
                conn.publish("wisp/nothing", b"", mqtt.Qos.AT_MOST_ONCE)
        return {"opened": kind}


DATABASE_ROUTES = {
    "/pg": IncomingHandler.pg,
    "/pg3": IncomingHandler.pg3,
    "/pg4": IncomingHandler.pg4,
    "/pgpid": IncomingHandler.pgpid,
    "/pgsession": IncomingHandler.pgsession,
    "/mysql": IncomingHandler.my,
    "/mysqlsession": IncomingHandler.mysqlsession,
    "/redissession": IncomingHandler.redissession,
    "/redis": IncomingHandler.redis,
    "/mqtt": IncomingHandler.mqtt,
    "/dbopen": IncomingHandler.dbopen,
}


def redis_param(s: str):
    from spin_sdk.wit.imports import redis as r
    return r.RedisParameter_Binary(s.encode())


def plain(x):
    """A value of the SDK's bindings as JSON: bytes as hex, tuples as lists, enums and records by name."""
    if isinstance(x, bytes):
        return {"hex": x.hex()}
    if isinstance(x, (list, tuple)):
        return [plain(i) for i in x]
    if isinstance(x, Enum):
        return x.name
    if hasattr(x, "__dataclass_fields__"):
        return {k: plain(getattr(x, k)) for k in x.__dataclass_fields__}
    return x


def show(v):
    """A variant case as [case, value]: `DbValue_Int32(7)` is ["Int32", 7]."""
    case = type(v).__name__.split("_", 1)[1]
    return [case, plain(getattr(v, "value", None))]


def rowset(rows) -> dict:
    def kind(t):
        return t.name if isinstance(t, Enum) else show(t)

    return {"columns": [[c.name, kind(c.data_type)] for c in rows.columns],
            "rows": [[show(v) for v in row] for row in rows.rows]}


def failure(e) -> dict:
    """A host error: its variant and what it says."""
    return {"error": type(e).__name__, "value": plain(getattr(e, "value", None))}


def query(request: Request) -> dict:
    _, _, qs = request.uri.partition("?")
    return {k: unquote(v) for k, v in (p.split("=", 1) for p in qs.split("&") if "=" in p)}


def cell(value):
    return value.value


def text(status: int, body: str) -> Response:
    return Response(status, {"content-type": "text/plain"}, body.encode())
