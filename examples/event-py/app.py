"""event-py: a CloudEvents handler. wisp delivers every event (async invocations, triggers) as a
CloudEvents 1.0 binary-mode POST: the attributes are `ce-*` headers, the data is the body.

It prints one line per delivery (captured in the invocation record: `wisp logs NAME`) and answers
200 with a JSON summary. Data starting with `status:NNN` makes it answer NNN instead, to show how
statuses are treated: 2xx done, 4xx (but 408/429) not retried, anything else retried with backoff.

Built with componentize-py 0.25.1 (see scripts/build-guests.sh).
"""

import json

from wit_world import exports
from wit_world.imports.streams import StreamError_Closed
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)
from componentize_py_types import Ok, Err


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


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        headers = {k: v.decode("utf-8", "replace") for k, v in request.headers().entries()}
        data = read_body(request)
        event = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
        print(f"event {event.get('id')} type {event.get('type')} attempt {event.get('wispattempt')}")
        status = 200
        text = data.decode("utf-8", "replace")
        if text.startswith("status:"):
            status = int(text[7:10])
        summary = json.dumps({"event": event, "data": text}).encode()
        response = OutgoingResponse(Fields.from_list([("content-type", b"application/json")]))
        response.set_status_code(status)
        out_body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        with out_body.write() as dst:
            for i in range(0, len(summary), 4096):
                dst.blocking_write_and_flush(summary[i : i + 4096])
        OutgoingBody.finish(out_body, None)
