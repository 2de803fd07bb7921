// echo-c: streams the request body back as the response body.
//
// The body is copied chunk by chunk as it arrives: at most one READ_CHUNK is
// held in guest memory at any time, so arbitrarily large bodies work.  The
// request's content-type header (if any) is copied to the response.
//
// Bindings: `wit-bindgen c <wasi-wit> --world wasi:http/proxy@0.2.12`
// (generated at build time, see scripts/build-guests.sh).

#include <stdlib.h>
#include <string.h>

#include "proxy.h"

#define READ_CHUNK (64 * 1024)
// blocking-write-and-flush accepts at most 4096 bytes per call.
#define WRITE_CHUNK 4096

// Copies all values of `content-type` from `from` into `to`.
static void copy_content_type(wasi_http_types_borrow_fields_t from,
                              wasi_http_types_borrow_fields_t to) {
  wasi_http_types_field_name_t name;
  proxy_string_set(&name, "content-type");
  wasi_http_types_list_field_value_t values;
  wasi_http_types_method_fields_get(from, &name, &values);
  for (size_t i = 0; i < values.len; i++) {
    wasi_http_types_header_error_t err;
    wasi_http_types_method_fields_append(to, &name, &values.ptr[i], &err);
  }
  wasi_http_types_list_field_value_free(&values);
}

// Writes `len` bytes to `out`; returns false if the stream failed.
static bool write_all(wasi_io_streams_borrow_output_stream_t out, uint8_t *data, size_t len) {
  while (len > 0) {
    size_t n = len < WRITE_CHUNK ? len : WRITE_CHUNK;
    proxy_list_u8_t piece = {data, n};
    wasi_io_streams_stream_error_t err;
    if (!wasi_io_streams_method_output_stream_blocking_write_and_flush(out, &piece, &err)) {
      wasi_io_streams_stream_error_free(&err);
      return false;
    }
    data += n;
    len -= n;
  }
  return true;
}

void exports_wasi_http_incoming_handler_handle(
    exports_wasi_http_incoming_handler_own_incoming_request_t request,
    exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
  wasi_http_types_borrow_incoming_request_t req = wasi_http_types_borrow_incoming_request(request);

  // Response headers: the request's content-type, if present.
  wasi_http_types_own_headers_t req_headers = wasi_http_types_method_incoming_request_headers(req);
  wasi_http_types_own_fields_t headers = wasi_http_types_constructor_fields();
  copy_content_type(wasi_http_types_borrow_fields(req_headers),
                    wasi_http_types_borrow_fields(headers));
  wasi_http_types_fields_drop_own(req_headers);

  wasi_http_types_own_outgoing_response_t response =
      wasi_http_types_constructor_outgoing_response(headers);
  wasi_http_types_own_outgoing_body_t out_body;
  wasi_http_types_method_outgoing_response_body(
      wasi_http_types_borrow_outgoing_response(response), &out_body);

  // Send the response head (status 200) now; the body follows as it is read.
  wasi_http_types_result_own_outgoing_response_error_code_t result = {
      .is_err = false, .val = {.ok = response}};
  wasi_http_types_static_response_outparam_set(response_out, &result);

  wasi_http_types_own_incoming_body_t in_body;
  wasi_http_types_own_input_stream_t in;
  wasi_http_types_own_output_stream_t out;
  wasi_http_types_method_incoming_request_consume(req, &in_body);
  wasi_http_types_method_incoming_body_stream(wasi_http_types_borrow_incoming_body(in_body), &in);
  wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(out_body), &out);

  for (;;) {
    // Blocks until at least one byte is available (or the body has ended),
    // then returns what is there, up to READ_CHUNK bytes.
    proxy_list_u8_t chunk;
    wasi_io_streams_stream_error_t err;
    if (!wasi_io_streams_method_input_stream_blocking_read(
            wasi_io_streams_borrow_input_stream(in), READ_CHUNK, &chunk, &err)) {
      wasi_io_streams_stream_error_free(&err);  // `closed` = end of body
      break;
    }
    bool ok = write_all(wasi_io_streams_borrow_output_stream(out), chunk.ptr, chunk.len);
    proxy_list_u8_free(&chunk);
    if (!ok) break;  // the client went away
  }

  // Drop children before parents: streams, then bodies, then the request.
  wasi_io_streams_input_stream_drop_own(in);
  wasi_io_streams_output_stream_drop_own(out);
  wasi_http_types_incoming_body_drop_own(in_body);
  wasi_http_types_incoming_request_drop_own(request);
  wasi_http_types_error_code_t finish_err;
  if (!wasi_http_types_static_outgoing_body_finish(out_body, NULL, &finish_err)) {
    wasi_http_types_error_code_free(&finish_err);
  }
}
