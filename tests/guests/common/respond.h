// Shared helper for the C test-fixture guests: send a complete text/plain
// response through a wasi:http response-outparam.
#ifndef WISP_TEST_RESPOND_H
#define WISP_TEST_RESPOND_H

#include <string.h>

#include "proxy.h"

static void respond_text(wasi_http_types_own_response_outparam_t response_out, uint16_t status,
                         const char *text, size_t text_len) {
  wasi_http_types_own_fields_t headers = wasi_http_types_constructor_fields();
  wasi_http_types_field_name_t name;
  proxy_string_set(&name, "content-type");
  wasi_http_types_field_value_t value = {(uint8_t *)"text/plain", strlen("text/plain")};
  wasi_http_types_header_error_t header_err;
  wasi_http_types_method_fields_append(wasi_http_types_borrow_fields(headers), &name, &value,
                                       &header_err);

  wasi_http_types_own_outgoing_response_t response =
      wasi_http_types_constructor_outgoing_response(headers);
  wasi_http_types_method_outgoing_response_set_status_code(
      wasi_http_types_borrow_outgoing_response(response), status);
  wasi_http_types_own_outgoing_body_t body;
  wasi_http_types_method_outgoing_response_body(wasi_http_types_borrow_outgoing_response(response),
                                                &body);
  wasi_http_types_result_own_outgoing_response_error_code_t result = {.is_err = false,
                                                                      .val = {.ok = response}};
  wasi_http_types_static_response_outparam_set(response_out, &result);

  wasi_http_types_own_output_stream_t stream;
  wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(body), &stream);
  while (text_len > 0) {  // at most 4096 bytes per blocking-write-and-flush
    size_t n = text_len < 4096 ? text_len : 4096;
    proxy_list_u8_t chunk = {(uint8_t *)text, n};
    wasi_io_streams_stream_error_t err;
    if (!wasi_io_streams_method_output_stream_blocking_write_and_flush(
            wasi_io_streams_borrow_output_stream(stream), &chunk, &err))
      break;
    text += n;
    text_len -= n;
  }
  wasi_io_streams_output_stream_drop_own(stream);
  wasi_http_types_error_code_t finish_err;
  wasi_http_types_static_outgoing_body_finish(body, NULL, &finish_err);
}

#endif
