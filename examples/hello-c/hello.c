// hello-c: the smallest useful wasi:http/proxy component, in C.
//
// The `proxy.h` / `proxy.c` bindings are generated at build time by
//   wit-bindgen c <wasi-wit> --world wasi:http/proxy@0.2.12
// and the core module is turned into a component with the preview1 "proxy"
// adapter (see scripts/build-guests.sh).
//
// The host calls exports_wasi_http_incoming_handler_handle() once per request.

#include <string.h>

#include "proxy.h"

static const char BODY[] = "Hello from C!\n";

void exports_wasi_http_incoming_handler_handle(
    exports_wasi_http_incoming_handler_own_incoming_request_t request,
    exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
  // We do not look at the request at all.
  wasi_http_types_incoming_request_drop_own(request);

  // Headers: content-type: text/plain
  wasi_http_types_own_fields_t headers = wasi_http_types_constructor_fields();
  wasi_http_types_field_name_t name;
  proxy_string_set(&name, "content-type");
  wasi_http_types_field_value_t value = {(uint8_t *)"text/plain", strlen("text/plain")};
  wasi_http_types_header_error_t header_err;
  wasi_http_types_method_fields_append(wasi_http_types_borrow_fields(headers), &name, &value,
                                       &header_err);

  // Response 200 (the default status) with a body we write below.
  wasi_http_types_own_outgoing_response_t response =
      wasi_http_types_constructor_outgoing_response(headers);
  wasi_http_types_own_outgoing_body_t body;
  wasi_http_types_method_outgoing_response_body(
      wasi_http_types_borrow_outgoing_response(response), &body);

  // Send the response head; the body streams after it.
  wasi_http_types_result_own_outgoing_response_error_code_t result = {
      .is_err = false, .val = {.ok = response}};
  wasi_http_types_static_response_outparam_set(response_out, &result);

  wasi_http_types_own_output_stream_t stream;
  wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(body), &stream);
  proxy_list_u8_t chunk = {(uint8_t *)BODY, sizeof(BODY) - 1};
  wasi_io_streams_stream_error_t stream_err;
  wasi_io_streams_method_output_stream_blocking_write_and_flush(
      wasi_io_streams_borrow_output_stream(stream), &chunk, &stream_err);

  // The stream is a child of the body: drop it before finishing the body.
  wasi_io_streams_output_stream_drop_own(stream);
  wasi_http_types_error_code_t finish_err;
  wasi_http_types_static_outgoing_body_finish(body, NULL, &finish_err);
}
