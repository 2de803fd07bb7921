"""config-py: reads its function's configuration through wasi:config/store@0.2.0-rc.1.

    GET <route>/         answers "<greeting>, <name>!" from the config keys `greeting` and `name`
    GET <route>/all      lists every key=value, sorted, one per line
    GET <route>/<key>    answers one value (404 if the key is not configured)

Built with componentize-py 0.25.1 against examples/config-py/world.wit (see scripts/build-guests.sh).
"""

from wit_world import exports
from wit_world.imports import store
from wit_world.imports.types import Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam
from componentize_py_types import Ok


def respond(response_out: ResponseOutparam, status: int, text: str) -> None:
    response = OutgoingResponse(Fields.from_list([("content-type", b"text/plain; charset=utf-8")]))
    response.set_status_code(status)
    out_body = response.body()
    ResponseOutparam.set(response_out, Ok(response))
    with out_body.write() as dst:
        dst.blocking_write_and_flush(text.encode())
    OutgoingBody.finish(out_body, None)


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        path = (request.path_with_query() or "/").partition("?")[0]
        segments = [s for s in path.split("/") if s]
        key = segments[-1] if len(segments) > 1 else ""
        if key == "":
            respond(response_out, 200, f"{store.get('greeting') or 'hello'}, {store.get('name') or 'world'}!\n")
        elif key == "all":
            respond(response_out, 200, "".join(f"{k}={v}\n" for k, v in sorted(store.get_all())))
        else:
            value = store.get(key)
            if value is None:
                respond(response_out, 404, f"no config key {key}\n")
            else:
                respond(response_out, 200, value)
