// files-c (test fixture): a wasi:http component that reads the files its function mounts, and tries to change
// them or leave them, one path each (the last path segment, under whatever route; the query is the path it
// works on, relative to the directory it was given):
//   /dirs            the directories it was given (count and guest paths)
//   /read?PATH       opens PATH for reading and answers with its first 64 KiB
//   /stream?PATH     the same through read-via-stream, in 7-byte reads
//   /ls?PATH         lists the directory PATH (`.` for the root), one name a line, in the order given
//   /write?PATH      opens PATH to write (create + truncate)
//   /mkdir?PATH      creates the directory PATH
// A refusal is answered as "<what> refused: error N (name)", with 200: the host's side is in the record.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reader.h"

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
  reader_list_u8_t chunk = {(uint8_t *)text, strlen(text)};
  wasi_io_streams_stream_error_t err;
  wasi_io_streams_method_output_stream_blocking_write_and_flush(wasi_io_streams_borrow_output_stream(stream),
                                                                &chunk, &err);
  wasi_io_streams_output_stream_drop_own(stream);
  wasi_http_types_error_code_t finish_err;
  wasi_http_types_static_outgoing_body_finish(body, NULL, &finish_err);
}

static const char *code_name(wasi_filesystem_types_error_code_t e) {
  switch (e) {
    case WASI_FILESYSTEM_TYPES_ERROR_CODE_ACCESS: return "access";
    case WASI_FILESYSTEM_TYPES_ERROR_CODE_NOT_PERMITTED: return "not-permitted";
    case WASI_FILESYSTEM_TYPES_ERROR_CODE_READ_ONLY: return "read-only";
    case WASI_FILESYSTEM_TYPES_ERROR_CODE_NO_ENTRY: return "no-entry";
    default: return "other";
  }
}

static void refused(wasi_http_types_own_response_outparam_t out, const char *what,
                    wasi_filesystem_types_error_code_t err) {
  char msg[96];
  snprintf(msg, sizeof msg, "%s refused: error %d (%s)\n", what, err, code_name(err));
  respond(out, 200, msg);
}

// The first directory it was given (its root), or none.
static bool root(wasi_filesystem_types_borrow_descriptor_t *dir) {
  wasi_filesystem_preopens_list_tuple2_own_descriptor_string_t dirs;
  wasi_filesystem_preopens_get_directories(&dirs);
  if (dirs.len == 0) return false;
  *dir = wasi_filesystem_types_borrow_descriptor(dirs.ptr[0].f0);
  return true;
}

static void dirs(wasi_http_types_own_response_outparam_t out) {
  wasi_filesystem_preopens_list_tuple2_own_descriptor_string_t dirs;
  wasi_filesystem_preopens_get_directories(&dirs);
  char msg[256];
  int n = snprintf(msg, sizeof msg, "directories: %zu", dirs.len);
  for (size_t i = 0; i < dirs.len && n < (int)sizeof msg - 40; i++)
    n += snprintf(msg + n, sizeof msg - n, " %.*s", (int)dirs.ptr[i].f1.len, dirs.ptr[i].f1.ptr);
  snprintf(msg + n, sizeof msg - n, "\n");
  respond(out, 200, msg);
}

static bool open_at(wasi_http_types_own_response_outparam_t out, const char *target,
                    wasi_filesystem_types_open_flags_t oflags, wasi_filesystem_types_descriptor_flags_t flags,
                    wasi_filesystem_types_own_descriptor_t *fd) {
  wasi_filesystem_types_borrow_descriptor_t dir;
  if (!root(&dir)) {
    respond(out, 200, "no directories\n");
    return false;
  }
  reader_string_t path;
  reader_string_set(&path, target);
  wasi_filesystem_types_error_code_t err;
  if (!wasi_filesystem_types_method_descriptor_open_at(dir, WASI_FILESYSTEM_TYPES_PATH_FLAGS_SYMLINK_FOLLOW, &path,
                                                       oflags, flags, fd, &err)) {
    refused(out, "open-at", err);
    return false;
  }
  return true;
}

static void read_file(wasi_http_types_own_response_outparam_t out, const char *target) {
  wasi_filesystem_types_own_descriptor_t fd;
  if (!open_at(out, target, 0, WASI_FILESYSTEM_TYPES_DESCRIPTOR_FLAGS_READ, &fd)) return;
  reader_tuple2_list_u8_bool_t got;
  wasi_filesystem_types_error_code_t err;
  if (!wasi_filesystem_types_method_descriptor_read(wasi_filesystem_types_borrow_descriptor(fd), 65536, 0, &got,
                                                    &err)) {
    refused(out, "read", err);
    return;
  }
  char *text = malloc(got.f0.len + 1);
  memcpy(text, got.f0.ptr, got.f0.len);
  text[got.f0.len] = 0;
  respond(out, 200, text);
  free(text);
  reader_list_u8_free(&got.f0);
  wasi_filesystem_types_descriptor_drop_own(fd);
}

static void stream_file(wasi_http_types_own_response_outparam_t out, const char *target) {
  wasi_filesystem_types_own_descriptor_t fd;
  if (!open_at(out, target, 0, WASI_FILESYSTEM_TYPES_DESCRIPTOR_FLAGS_READ, &fd)) return;
  wasi_filesystem_types_own_input_stream_t in;
  wasi_filesystem_types_error_code_t err;
  if (!wasi_filesystem_types_method_descriptor_read_via_stream(wasi_filesystem_types_borrow_descriptor(fd), 0, &in,
                                                               &err)) {
    refused(out, "read-via-stream", err);
    return;
  }
  static char text[65536];
  size_t n = 0;
  for (;;) {
    reader_list_u8_t chunk;
    wasi_io_streams_stream_error_t serr;
    if (!wasi_io_streams_method_input_stream_blocking_read(wasi_io_streams_borrow_input_stream(in), 7, &chunk, &serr))
      break;  // closed: the end of the file
    if (n + chunk.len < sizeof text - 1) {
      memcpy(text + n, chunk.ptr, chunk.len);
      n += chunk.len;
    }
    reader_list_u8_free(&chunk);
  }
  text[n] = 0;
  wasi_io_streams_input_stream_drop_own(in);
  wasi_filesystem_types_descriptor_drop_own(fd);
  respond(out, 200, text);
}

static void list(wasi_http_types_own_response_outparam_t out, const char *target) {
  wasi_filesystem_types_own_descriptor_t fd;
  if (!open_at(out, target, WASI_FILESYSTEM_TYPES_OPEN_FLAGS_DIRECTORY, WASI_FILESYSTEM_TYPES_DESCRIPTOR_FLAGS_READ,
               &fd))
    return;
  wasi_filesystem_types_own_directory_entry_stream_t entries;
  wasi_filesystem_types_error_code_t err;
  if (!wasi_filesystem_types_method_descriptor_read_directory(wasi_filesystem_types_borrow_descriptor(fd), &entries,
                                                              &err)) {
    refused(out, "read-directory", err);
    return;
  }
  static char names[16384];
  size_t n = 0;
  names[0] = 0;
  for (;;) {
    wasi_filesystem_types_option_directory_entry_t entry;
    if (!wasi_filesystem_types_method_directory_entry_stream_read_directory_entry(
            wasi_filesystem_types_borrow_directory_entry_stream(entries), &entry, &err)) {
      refused(out, "read-directory-entry", err);
      return;
    }
    if (!entry.is_some) break;
    if (n + entry.val.name.len + 2 < sizeof names)
      n += snprintf(names + n, sizeof names - n, "%.*s\n", (int)entry.val.name.len, entry.val.name.ptr);
    reader_string_free(&entry.val.name);
  }
  respond(out, 200, names);
}

static void write_file(wasi_http_types_own_response_outparam_t out, const char *target) {
  wasi_filesystem_types_own_descriptor_t fd;
  if (!open_at(out, target, WASI_FILESYSTEM_TYPES_OPEN_FLAGS_CREATE | WASI_FILESYSTEM_TYPES_OPEN_FLAGS_TRUNCATE,
               WASI_FILESYSTEM_TYPES_DESCRIPTOR_FLAGS_WRITE, &fd))
    return;
  respond(out, 200, "opened for writing: the sandbox let a write through\n");
}

static void make_dir(wasi_http_types_own_response_outparam_t out, const char *target) {
  wasi_filesystem_types_borrow_descriptor_t dir;
  if (!root(&dir)) {
    respond(out, 200, "no directories\n");
    return;
  }
  reader_string_t path;
  reader_string_set(&path, target);
  wasi_filesystem_types_error_code_t err;
  if (!wasi_filesystem_types_method_descriptor_create_directory_at(dir, &path, &err)) {
    refused(out, "create-directory-at", err);
    return;
  }
  respond(out, 200, "created a directory: the sandbox let a change through\n");
}

void exports_wasi_http_incoming_handler_handle(exports_wasi_http_incoming_handler_own_incoming_request_t request,
                                               exports_wasi_http_incoming_handler_own_response_outparam_t out) {
  wasi_http_types_borrow_incoming_request_t req = wasi_http_types_borrow_incoming_request(request);
  reader_string_t pq;
  char path[512] = "/";
  if (wasi_http_types_method_incoming_request_path_with_query(req, &pq)) {
    size_t n = pq.len < sizeof(path) - 1 ? pq.len : sizeof(path) - 1;
    memcpy(path, pq.ptr, n);
    path[n] = 0;
  }
  wasi_http_types_incoming_request_drop_own(request);
  char *query = strchr(path, '?');
  if (query) *query++ = 0;
  const char *target = query ? query : "";
  // Routed under any prefix: the last segment names the case.
  char *name = strrchr(path, '/');
  memmove(path, name, strlen(name) + 1);
  if (!strcmp(path, "/dirs")) dirs(out);
  else if (!strcmp(path, "/read")) read_file(out, target);
  else if (!strcmp(path, "/stream")) stream_file(out, target);
  else if (!strcmp(path, "/ls")) list(out, target);
  else if (!strcmp(path, "/write")) write_file(out, target);
  else if (!strcmp(path, "/mkdir")) make_dir(out, target);
  else respond(out, 404, "unknown files path\n");
}
