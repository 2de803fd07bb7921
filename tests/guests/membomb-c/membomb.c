// membomb-c (test fixture): allocates 1 MiB blocks and touches every byte
// until malloc fails.  The host is expected to stop it first (memory limit ->
// failed memory.grow -> NULL, or a trap); if malloc does return NULL, it
// answers 200 "survived" so a test can tell the limit was enforced softly.
#include <stdlib.h>
#include <string.h>

#include "respond.h"

#define BLOCK (1024 * 1024)

// Blocks are chained through their first word and the chain head lives in a
// volatile global, so the compiler cannot drop the allocations or the writes.
static void *volatile head = NULL;

void exports_wasi_http_incoming_handler_handle(
    exports_wasi_http_incoming_handler_own_incoming_request_t request,
    exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
  wasi_http_types_incoming_request_drop_own(request);
  for (;;) {
    void **block = malloc(BLOCK);
    if (block == NULL) break;
    memset(block, 0xA5, BLOCK);  // touch every page
    block[0] = head;
    head = block;
  }
  static const char body[] = "survived";
  respond_text(response_out, 200, body, sizeof(body) - 1);
}
