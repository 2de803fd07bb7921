"""blob-py: a blob-backed function (wasi:blobstore@0.2.0-draft, granted by `blob_containers`). Objects
stream through it in 64 KiB chunks both ways, spliced from stream to stream (`blocking-splice`: the host moves
each chunk, so the bytes never enter the guest's memory — and never meet componentize-py 0.25.1's runtime,
which keeps a copy of every `list<u8>` a guest passes to an import, so a guest writing 50 MB with
`write` would grow by 50 MB).

    PUT    <route>/<key>         streams the request body into the object <key> -> "stored N bytes"
    GET    <route>/<key>         streams the object back as the response body (404 if absent)
    GET    <route>/<key>?exists  "true" or "false"
    GET    <route>/<key>?info    "<size> <container>"
    GET    <route>/<key>?sync    the object through incoming-value-consume-sync (capped by the host)
    GET    <route>/<key>?hold=N  opens the object N times at once -> "held N" (the host caps open values)
    DELETE <route>/<key>         deletes it
    GET    <route>/              lists the names, one per line
    ?key=K                       names the object by the (percent-encoded) query instead of the path
    ?container=NAME              uses another container than `default` (403 if not granted)

A write past a size limit answers 413 with the blobstore's error, which names the limit. Built with
componentize-py 0.25.1 against examples/blob-py/world.wit (see scripts/build-guests.sh).
"""

from wit_world import exports
from wit_world.imports import blobstore, wasi_io_streams_0_2_1 as blob_streams
from wit_world.imports import wasi_io_streams_0_2_12 as http_streams
from wit_world.imports.wasi_blobstore_types import IncomingValue, OutgoingValue
from wit_world.imports.wasi_http_types import (
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

CHUNK = 64 * 1024


def closed(e: Err) -> bool:
    return isinstance(e.value, (http_streams.StreamError_Closed, blob_streams.StreamError_Closed))


def splice_all(dst, src) -> int:
    """Moves everything `src` holds into `dst`, a chunk at a time; answers the bytes moved."""
    total = 0
    while True:
        try:
            total += dst.blocking_splice(src, CHUNK)
        except Err as e:
            if closed(e):
                return total
            raise


def skip_all(src) -> None:
    """Reads `src` to its end, keeping nothing."""
    while True:
        try:
            src.blocking_skip(CHUNK)
        except Err as e:
            if closed(e):
                return
            raise


def respond(response_out: ResponseOutparam, status: int, text: bytes) -> None:
    response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain; charset=utf-8")]))
    response.set_status_code(status)
    out_body = response.body()
    ResponseOutparam.set(response_out, Ok(response))
    with out_body.write() as dst:
        for i in range(0, len(text), 4096):
            dst.blocking_write_and_flush(text[i : i + 4096])
    OutgoingBody.finish(out_body, None)


def store(container, key: str, request: IncomingRequest):
    """Streams the request body into the object `key`; answers (status, text)."""
    value = OutgoingValue.new_outgoing_value()
    container.write_data(key, value)
    total = 0
    failure = None
    body = request.consume()
    with body.stream() as src:
        with value.outgoing_value_write_body() as dst:
            try:
                total = splice_all(dst, src)
                dst.blocking_flush()
            except Err as e:
                if not isinstance(e.value, blob_streams.StreamError_LastOperationFailed):
                    raise
                with e.value.value as error:
                    failure = error.to_debug_string()
        if failure is not None:
            skip_all(src)  # read the rest, so the client gets the answer
    try:
        OutgoingValue.finish(value)
    except Err as e:
        return 413, f"cannot store {key}: {e.value}\n"
    if failure is not None:
        return 500, f"the stream failed but finish did not: {failure}\n"
    return 200, f"stored {total} bytes\n"


def send(container, key: str, response_out: ResponseOutparam) -> None:
    """Streams the object `key` back as the response body."""
    value = container.get_data(key, 0, 2**64 - 1)
    size = value.size()
    src = IncomingValue.incoming_value_consume_async(value)
    headers = [("content-type", b"application/octet-stream"), ("content-length", str(size).encode())]
    response = OutgoingResponse(Fields.from_list(headers))
    out_body = response.body()
    ResponseOutparam.set(response_out, Ok(response))
    with src:
        with out_body.write() as dst:
            splice_all(dst, src)
            dst.blocking_flush()
    OutgoingBody.finish(out_body, None)


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        path_query = request.path_with_query() or "/"
        path, _, query = path_query.partition("?")
        params = {}
        for p in query.split("&"):
            if p:
                k, _, v = p.partition("=")
                params[k] = unquote(v)
        segments = [s for s in path.split("/") if s]
        key = params.get("key", unquote(segments[-1]) if len(segments) > 1 else "")
        try:
            container = blobstore.create_container(params.get("container", "default"))
        except Err as e:
            respond(response_out, 403, f"cannot open the container: {e.value}\n".encode())
            return
        method = request.method()
        try:
            with container:
                if isinstance(method, Method_Get) and key == "":
                    names = []
                    with container.list_objects() as listing:
                        while True:
                            batch, end = listing.read_stream_object_names(100)
                            names += batch
                            if end:
                                break
                    respond(response_out, 200, "".join(n + "\n" for n in names).encode())
                elif isinstance(method, Method_Get) and "exists" in params:
                    respond(response_out, 200, b"true" if container.has_object(key) else b"false")
                elif isinstance(method, Method_Get) and "sync" in params:
                    value = container.get_data(key, 0, 2**64 - 1)
                    respond(response_out, 200, IncomingValue.incoming_value_consume_sync(value))
                elif isinstance(method, Method_Get) and "hold" in params:
                    held = [container.get_data(key, 0, 2**64 - 1) for _ in range(int(params["hold"]))]
                    respond(response_out, 200, f"held {len(held)}".encode())
                elif isinstance(method, Method_Get) and "info" in params:
                    info = container.object_info(key)
                    respond(response_out, 200, f"{info.size} {info.container}".encode())
                elif isinstance(method, Method_Get):
                    if not container.has_object(key):
                        respond(response_out, 404, f"no object {key}\n".encode())
                    else:
                        send(container, key, response_out)
                elif isinstance(method, Method_Put):
                    status, text = store(container, key, request)
                    respond(response_out, status, text.encode())
                elif isinstance(method, Method_Delete):
                    container.delete_object(key)
                    respond(response_out, 200, b"deleted\n")
                else:
                    respond(response_out, 405, b"use GET, PUT or DELETE\n")
        except Err as e:
            respond(response_out, 500, f"blobstore error: {e.value}\n".encode())
