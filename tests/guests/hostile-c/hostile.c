// hostile-c (test fixture): a wasi:http component that tries what a sandboxed guest must not get, one path
// each (the last path segment, under whatever route), and answers with what happened (the host's side of the story is in the invocation record):
//   /fields          builds header fields in a loop until the host stops it
//   /socket?PORT     opens a TCP connection to 127.0.0.1:PORT through wasi:sockets
//   /fs[?PATH]       counts the directories it was given through wasi:filesystem; opens PATH in the first
//   /outbound?URL    sends an outbound HTTP GET to http://URL (authority and path, no scheme)
//   /whoami          answers with the authority the request carried
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hostile.h"

static void respond(wasi_http_types_own_response_outparam_t out, uint16_t status, const char *text) {
  wasi_http_types_own_fields_t headers = wasi_http_types_constructor_fields();
  wasi_http_types_own_outgoing_response_t response = wasi_http_types_constructor_outgoing_response(headers);
  wasi_http_types_method_outgoing_response_set_status_code(wasi_http_types_borrow_outgoing_response(response),
                                                           status);
  wasi_http_types_own_outgoing_body_t body;
  wasi_http_types_method_outgoing_response_body(wasi_http_types_borrow_outgoing_response(response), &body);
  wasi_http_types_result_own_outgoing_response_error_code_t result = {.is_err = false, .val = {.ok = response}};
  wasi_http_types_static_response_outparam_set(out, &result);
  wasi_http_types_own_output_stream_t stream;
  wasi_http_types_method_outgoing_body_write(wasi_http_types_borrow_outgoing_body(body), &stream);
  hostile_list_u8_t chunk = {(uint8_t *)text, strlen(text)};
  wasi_io_streams_stream_error_t err;
  wasi_io_streams_method_output_stream_blocking_write_and_flush(wasi_io_streams_borrow_output_stream(stream),
                                                                &chunk, &err);
  wasi_io_streams_output_stream_drop_own(stream);
  wasi_http_types_error_code_t finish_err;
  wasi_http_types_static_outgoing_body_finish(body, NULL, &finish_err);
}

static void fields_loop(wasi_http_types_own_response_outparam_t out) {
  static uint8_t value[16 * 1024];
  memset(value, 'x', sizeof(value));
  wasi_http_types_tuple2_field_name_field_value_t entry;
  hostile_string_set(&entry.f0, "x-big");
  entry.f1.ptr = value;
  entry.f1.len = sizeof(value);
  wasi_http_types_list_tuple2_field_name_field_value_t list = {&entry, 1};
  // Never dropped: each one holds host memory until the host refuses more.
  for (unsigned long n = 0;; n++) {
    wasi_http_types_own_fields_t f;
    wasi_http_types_header_error_t err;
    if (!wasi_http_types_static_fields_from_list(&list, &f, &err)) {
      char msg[96];
      snprintf(msg, sizeof msg, "fields.from-list refused after %lu\n", n);
      respond(out, 200, msg);
      return;
    }
  }
}

static void socket_connect(wasi_http_types_own_response_outparam_t out, const char *query) {
  wasi_sockets_tcp_create_socket_own_tcp_socket_t sock;
  wasi_sockets_tcp_create_socket_error_code_t err;
  char msg[96];
  if (!wasi_sockets_tcp_create_socket_create_tcp_socket(WASI_SOCKETS_NETWORK_IP_ADDRESS_FAMILY_IPV4, &sock, &err)) {
    snprintf(msg, sizeof msg, "create-tcp-socket failed: error %d\n", err);
    respond(out, 200, msg);
    return;
  }
  wasi_sockets_instance_network_own_network_t net = wasi_sockets_instance_network_instance_network();
  wasi_sockets_tcp_ip_socket_address_t addr = {.tag = WASI_SOCKETS_NETWORK_IP_SOCKET_ADDRESS_IPV4};
  addr.val.ipv4.port = (uint16_t)atoi(query);
  addr.val.ipv4.address = (wasi_sockets_network_ipv4_address_t){127, 0, 0, 1};
  wasi_sockets_tcp_borrow_tcp_socket_t s = wasi_sockets_tcp_borrow_tcp_socket(sock);
  wasi_sockets_tcp_borrow_network_t n = wasi_sockets_network_borrow_network(net);
  bool ok = wasi_sockets_tcp_method_tcp_socket_start_connect(s, n, &addr, &err);
  if (ok) {  // the address check runs as the connection is made: wait for it
    wasi_sockets_tcp_own_pollable_t ready = wasi_sockets_tcp_method_tcp_socket_subscribe(s);
    wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(ready));
    wasi_sockets_tcp_tuple2_own_input_stream_own_output_stream_t streams;
    ok = wasi_sockets_tcp_method_tcp_socket_finish_connect(s, &streams, &err);
  }
  if (!ok) {
    snprintf(msg, sizeof msg, "connect refused: error %d%s\n", err,
             err == WASI_SOCKETS_NETWORK_ERROR_CODE_ACCESS_DENIED ? " (access-denied)" : "");
    respond(out, 200, msg);
    return;
  }
  respond(out, 200, "connected: the sandbox let a socket out\n");
}

static void fs(wasi_http_types_own_response_outparam_t out, const char *target) {
  wasi_filesystem_preopens_list_tuple2_own_descriptor_string_t dirs;
  wasi_filesystem_preopens_get_directories(&dirs);
  char msg[160];
  if (dirs.len == 0 || !*target) {
    snprintf(msg, sizeof msg, "directories: %zu\n", dirs.len);
    respond(out, 200, msg);
    return;
  }
  hostile_string_t path;
  hostile_string_set(&path, target);
  wasi_filesystem_types_own_descriptor_t file;
  wasi_filesystem_types_error_code_t err;
  if (wasi_filesystem_types_method_descriptor_open_at(wasi_filesystem_types_borrow_descriptor(dirs.ptr[0].f0), 0,
                                                      &path, 0, WASI_FILESYSTEM_TYPES_DESCRIPTOR_FLAGS_READ, &file,
                                                      &err))
    snprintf(msg, sizeof msg, "opened %s under %.*s\n", target, (int)dirs.ptr[0].f1.len, dirs.ptr[0].f1.ptr);
  else
    snprintf(msg, sizeof msg, "open-at refused under %.*s: error %d%s\n", (int)dirs.ptr[0].f1.len,
             dirs.ptr[0].f1.ptr, err, err == WASI_FILESYSTEM_TYPES_ERROR_CODE_ACCESS ? " (access)" : "");
  respond(out, 200, msg);
}

static void outbound(wasi_http_types_own_response_outparam_t out, const char *target) {
  const char *slash = strchr(target, '/');
  size_t alen = slash ? (size_t)(slash - target) : strlen(target);
  hostile_string_t authority, path;
  hostile_string_dup_n(&authority, target, alen);
  hostile_string_set(&path, slash ? slash : "/");
  wasi_http_types_own_outgoing_request_t req =
      wasi_http_types_constructor_outgoing_request(wasi_http_types_constructor_fields());
  wasi_http_types_borrow_outgoing_request_t r = wasi_http_types_borrow_outgoing_request(req);
  wasi_http_types_scheme_t scheme = {.tag = WASI_HTTP_TYPES_SCHEME_HTTP};
  wasi_http_types_method_outgoing_request_set_scheme(r, &scheme);
  wasi_http_types_method_outgoing_request_set_authority(r, &authority);
  wasi_http_types_method_outgoing_request_set_path_with_query(r, &path);
  wasi_http_outgoing_handler_own_future_incoming_response_t fut;
  wasi_http_outgoing_handler_error_code_t err;
  char msg[96];
  if (!wasi_http_outgoing_handler_handle(req, NULL, &fut, &err)) {
    snprintf(msg, sizeof msg, "outbound refused: error %d%s\n", err.tag,
             err.tag == WASI_HTTP_TYPES_ERROR_CODE_HTTP_REQUEST_DENIED ? " (HTTP-request-denied)" : "");
    respond(out, 200, msg);
    return;
  }
  wasi_http_types_borrow_future_incoming_response_t f = wasi_http_types_borrow_future_incoming_response(fut);
  wasi_http_types_own_pollable_t ready = wasi_http_types_method_future_incoming_response_subscribe(f);
  wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(ready));
  wasi_http_types_result_result_own_incoming_response_error_code_void_t res;
  wasi_http_types_method_future_incoming_response_get(f, &res);
  if (!res.is_err && res.val.ok.is_err) {
    int tag = res.val.ok.val.err.tag;
    snprintf(msg, sizeof msg, "outbound refused: error %d%s\n", tag,
             tag == WASI_HTTP_TYPES_ERROR_CODE_HTTP_REQUEST_DENIED ? " (HTTP-request-denied)" : "");
    respond(out, 200, msg);
    return;
  }
  wasi_http_types_borrow_incoming_response_t resp = wasi_http_types_borrow_incoming_response(res.val.ok.val.ok);
  unsigned status = wasi_http_types_method_incoming_response_status(resp);
  // Read the whole response body.
  size_t got = 0;
  wasi_http_types_own_incoming_body_t body;
  wasi_http_types_own_input_stream_t in;
  if (wasi_http_types_method_incoming_response_consume(resp, &body) &&
      wasi_http_types_method_incoming_body_stream(wasi_http_types_borrow_incoming_body(body), &in)) {
    for (;;) {
      hostile_list_u8_t chunk;
      wasi_io_streams_stream_error_t serr;
      if (!wasi_io_streams_method_input_stream_blocking_read(wasi_io_streams_borrow_input_stream(in), 4096, &chunk,
                                                             &serr))
        break;
      got += chunk.len;
      hostile_list_u8_free(&chunk);
    }
  }
  snprintf(msg, sizeof msg, "outbound answered: %u, %zu body bytes\n", status, got);
  respond(out, 200, msg);
}

void exports_wasi_http_incoming_handler_handle(exports_wasi_http_incoming_handler_own_incoming_request_t request,
                                               exports_wasi_http_incoming_handler_own_response_outparam_t out) {
  wasi_http_types_borrow_incoming_request_t req = wasi_http_types_borrow_incoming_request(request);
  hostile_string_t pq, authority;
  char path[512] = "/";
  if (wasi_http_types_method_incoming_request_path_with_query(req, &pq)) {
    size_t n = pq.len < sizeof(path) - 1 ? pq.len : sizeof(path) - 1;
    memcpy(path, pq.ptr, n);
    path[n] = 0;
  }
  char who[256] = "(none)";
  if (wasi_http_types_method_incoming_request_authority(req, &authority)) {
    size_t n = authority.len < sizeof(who) - 2 ? authority.len : sizeof(who) - 2;
    memcpy(who, authority.ptr, n);
    who[n] = '\n';
    who[n + 1] = 0;
  }
  wasi_http_types_incoming_request_drop_own(request);
  char *query = strchr(path, '?');
  if (query) *query++ = 0;
  // Routed under any prefix: the last segment names the case.
  char *name = strrchr(path, '/');
  memmove(path, name, strlen(name) + 1);
  if (!strcmp(path, "/fields")) fields_loop(out);
  else if (!strcmp(path, "/socket")) socket_connect(out, query ? query : "80");
  else if (!strcmp(path, "/fs")) fs(out, query ? query : "");
  else if (!strcmp(path, "/outbound")) outbound(out, query ? query : "");
  else if (!strcmp(path, "/whoami")) respond(out, 200, who);
  else respond(out, 404, "unknown hostile path\n");
}
