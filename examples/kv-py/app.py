"""kv-py: a key-value backed function (wasi:keyvalue@0.2.0-draft, granted by `key_value_stores`).

    GET    <route>/hits          atomically increments the counter `hits` and answers its value
    PUT    <route>/<key>         stores the body under <key> (percent-decoded: %2F is a '/' in the key)
    GET    <route>/<key>         answers the value (404 if absent)
    DELETE <route>/<key>         deletes it
    GET    <route>/              lists the keys, one per line
    ?store=NAME                  uses another store than the default one (403 if the function is not granted it)

Built with componentize-py 0.25.1 against examples/kv-py/world.wit (see scripts/build-guests.sh).
"""

from wit_world import exports
from wit_world.imports import atomics, store
from wit_world.imports.streams import StreamError_Closed
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    Method_Delete,
    Method_Get,
    Method_Put,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)
from componentize_py_types import Err, Ok
from urllib.parse import unquote


def read_body(request: IncomingRequest) -> bytes:
    body = request.consume()
    data = b""
    with body.stream() as src:
        while True:
            try:
                data += src.blocking_read(64 * 1024)
            except Err as e:
                if isinstance(e.value, StreamError_Closed):
                    break
                raise
    return data


def respond(response_out: ResponseOutparam, status: int, text: bytes) -> None:
    response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain; charset=utf-8")]))
    response.set_status_code(status)
    out_body = response.body()
    ResponseOutparam.set(response_out, Ok(response))
    with out_body.write() as dst:
        for i in range(0, len(text), 4096):
            dst.blocking_write_and_flush(text[i : i + 4096])
    OutgoingBody.finish(out_body, None)


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        path_query = request.path_with_query() or "/"
        path, _, query = path_query.partition("?")
        params = dict(p.partition("=")[::2] for p in query.split("&") if p)
        segments = [s for s in path.split("/") if s]
        key = unquote(segments[-1]) if len(segments) > 1 else ""
        try:
            # "" is wisp's `default` store, and the one store `wasmtime serve -S keyvalue` has: runs under both.
            bucket = store.open(params.get("store", ""))
        except Err as e:
            respond(response_out, 403, f"cannot open the store: {e.value}\n".encode())
            return
        method = request.method()
        try:
            if isinstance(method, Method_Get) and key == "hits":
                n = atomics.increment(bucket, "hits", 1)
                respond(response_out, 200, f"hits: {n}\n".encode())
            elif isinstance(method, Method_Get) and key == "":
                keys = []
                cursor = None
                while True:
                    page = bucket.list_keys(cursor)
                    keys += page.keys
                    cursor = page.cursor
                    if cursor is None:
                        break
                respond(response_out, 200, "".join(k + "\n" for k in keys).encode())
            elif isinstance(method, Method_Get):
                value = bucket.get(key)
                if value is None:
                    respond(response_out, 404, f"no key {key}\n".encode())
                else:
                    respond(response_out, 200, value)
            elif isinstance(method, Method_Put):
                bucket.set(key, read_body(request))
                respond(response_out, 200, b"stored\n")
            elif isinstance(method, Method_Delete):
                bucket.delete(key)
                respond(response_out, 200, b"deleted\n")
            else:
                respond(response_out, 405, b"use GET, PUT or DELETE\n")
        except Err as e:
            respond(response_out, 500, f"key-value error: {e.value}\n".encode())
