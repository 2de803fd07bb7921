"""messaging-py: wasi:messaging@0.2.0-draft both ways, over wisp's internal topics.

As an http function (granted `publish_topics` and `key_value_stores`):
    POST <route>/<topic>        sends the body as a message to <topic> (its content-type and every
                                `x-meta-<key>` header go along) and answers 202 once every subscriber has it
    GET  <route>/last/<topic>   what the messaging handler stored for <topic>: JSON with the data, content
                                type and metadata of the last message it got, and how many it got

As a messaging function (`kind = "messaging"`, with `type = "topic"` triggers and `key_value_stores`): keeps each
message it receives in the `default` store under `last/<topic>`; a message whose data is `fail` is answered
with an error (the delivery is retried, then dead-lettered).

Built with componentize-py 0.25.1 against examples/messaging-py/world.wit (see scripts/build-guests.sh).
"""

import json

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import producer, store
from wit_world.imports import wasi_messaging_types as mt
from wit_world.imports.streams import StreamError_Closed
from wit_world.imports.wasi_http_types import (
    Fields,
    IncomingRequest,
    Method_Get,
    Method_Post,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)


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


def respond(response_out: ResponseOutparam, status: int, text: str, content_type: str = "text/plain") -> None:
    response = OutgoingResponse(Fields.from_list([("content-type", content_type.encode())]))
    response.set_status_code(status)
    out_body = response.body()
    ResponseOutparam.set(response_out, Ok(response))
    with out_body.write() as dst:
        dst.blocking_write_and_flush(text.encode())
    OutgoingBody.finish(out_body, None)


class WasiHttpIncomingHandler(exports.WasiHttpIncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        path = (request.path_with_query() or "/").partition("?")[0]
        segments = [s for s in path.split("/") if s][1:]  # after the route's own segment
        method = request.method()
        if isinstance(method, Method_Post) and len(segments) >= 1:
            topic = "/".join(segments)
            headers = request.headers().entries()
            message = mt.Message(read_body(request))
            for name, value in headers:
                if name == "content-type":
                    message.set_content_type(value.decode())
                elif name.startswith("x-meta-"):
                    message.add_metadata(name[len("x-meta-") :], value.decode())
            try:
                with mt.Client.connect("default") as client:
                    producer.send(client, topic, message)
            except Err as e:
                status = 403 if isinstance(e.value, mt.Error_PermissionDenied) else 502
                respond(response_out, status, f"not sent: {e.value}\n")
                return
            respond(response_out, 202, f"sent to {topic}\n")
        elif isinstance(method, Method_Get) and len(segments) >= 2 and segments[0] == "last":
            topic = "/".join(segments[1:])
            value = store.open("default").get(f"last/{topic}")
            if value is None:
                respond(response_out, 404, f"no message on {topic} yet\n")
            else:
                respond(response_out, 200, value.decode(), "application/json")
        else:
            respond(response_out, 404, "POST /<topic> to send, GET /last/<topic> to read what arrived\n")


class WasiMessagingIncomingHandler(exports.WasiMessagingIncomingHandler):
    def handle(self, message: mt.Message) -> None:
        data = message.data()
        topic = message.topic() or ""
        print(f"message on {topic}: {len(data)} bytes")
        if data == b"fail":
            raise Err(mt.Error_Other("asked to fail"))
        bucket = store.open("default")
        key = f"last/{topic}"
        before = bucket.get(key)
        count = json.loads(before.decode())["count"] + 1 if before is not None else 1
        record = {
            "data": data.decode(errors="replace"),
            "content_type": message.content_type(),
            "metadata": dict(message.metadata() or []),
            "count": count,
        }
        bucket.set(key, json.dumps(record, sort_keys=True).encode())
