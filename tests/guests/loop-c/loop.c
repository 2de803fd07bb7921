// loop-c (test fixture): spins forever inside the handler.  The host must cut
// it off (deadline / epoch interruption / fuel) and answer with an error.
#include "proxy.h"

// `volatile` keeps the compiler from proving the loop infinite and
// optimising it (or the whole function) away.
static volatile int spinning = 1;

void exports_wasi_http_incoming_handler_handle(
    exports_wasi_http_incoming_handler_own_incoming_request_t request,
    exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
  (void)request;
  (void)response_out;
  for (;;) {
    if (!spinning) break;
  }
  __builtin_trap();  // unreachable in practice
}
