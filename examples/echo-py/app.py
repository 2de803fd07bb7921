"""echo-py: streams the request body back as the response body.

The body is copied chunk by chunk (never held in memory as a whole), so large
uploads work.  The request's content-type, if any, is copied to the response.

Built with componentize-py 0.25.1 (see scripts/build-guests.sh).
"""

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

READ_CHUNK = 64 * 1024  # max bytes asked for per read
WRITE_CHUNK = 4096  # blocking-write-and-flush accepts at most 4096 bytes per call


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        # Copy the content-type header (if present).
        content_type = request.headers().get("content-type")
        entries = [("content-type", value) for value in content_type]
        response = OutgoingResponse(Fields.from_list(entries))
        response.set_status_code(200)
        out_body = response.body()
        in_body = request.consume()

        ResponseOutparam.set(response_out, Ok(response))

        # Child resources (streams) must be dropped before their parent body is
        # finished/dropped; the `with` blocks take care of that.
        with in_body.stream() as src, out_body.write() as dst:
            while True:
                try:
                    chunk = src.blocking_read(READ_CHUNK)
                except Err as e:
                    if isinstance(e.value, StreamError_Closed):
                        break  # end of the request body
                    raise
                for i in range(0, len(chunk), WRITE_CHUNK):
                    dst.blocking_write_and_flush(chunk[i : i + WRITE_CHUNK])

        OutgoingBody.finish(out_body, None)
