"""hello-py: the smallest useful wasi:http/proxy component in Python.

Built with componentize-py 0.25.1 (see scripts/build-guests.sh):
    componentize-py -d <wasi-wit> -w wasi:http/proxy@0.2.12 componentize app -o hello-py.wasm

componentize-py generates the `wit_world` package from the WIT at build time;
the host calls `IncomingHandler.handle` once per request.
"""

from wit_world import exports
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)
from componentize_py_types import Ok

BODY = b"Hello from Python!\n"


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        headers = Fields.from_list([("content-type", b"text/plain")])
        response = OutgoingResponse(headers)
        response.set_status_code(200)
        body = response.body()

        # Send the head first, then stream the body.
        ResponseOutparam.set(response_out, Ok(response))

        # The output stream is a child resource of the body: it must be dropped
        # (the `with` block does that) before the body can be finished.
        with body.write() as stream:
            stream.blocking_write_and_flush(BODY)
        OutgoingBody.finish(body, None)
