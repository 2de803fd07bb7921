// logs-c (test fixture): writes one line to stdout and one to stderr, then
// answers 200 with `greeting=<$GREETING>` (empty value if unset).
//
// Unlike the other C guests this one is componentized with the preview1
// *reactor* adapter: the "proxy" adapter has no wasi:cli/environment, so
// getenv() would always return NULL.  The component therefore also imports
// wasi:cli/environment (plus the filesystem/exit/terminal interfaces the
// reactor adapter always pulls in).
#include <stdio.h>
#include <stdlib.h>

#include "respond.h"

void exports_wasi_http_incoming_handler_handle(
    exports_wasi_http_incoming_handler_own_incoming_request_t request,
    exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
  wasi_http_types_incoming_request_drop_own(request);

  printf("stdout line from guest\n");
  fflush(stdout);
  fprintf(stderr, "stderr line from guest\n");
  // SHOUT: one more stdout line, as given (tests/records.rs sends terminal control characters through it).
  const char *shout = getenv("SHOUT");
  if (shout) {
    printf("%s\n", shout);
    fflush(stdout);
  }

  const char *greeting = getenv("GREETING");
  char body[512];
  int n = snprintf(body, sizeof(body), "greeting=%s", greeting ? greeting : "");
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof(body)) n = sizeof(body) - 1;  // truncated
  respond_text(response_out, 200, body, (size_t)n);
}
