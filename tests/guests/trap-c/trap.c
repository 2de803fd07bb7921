// trap-c (test fixture): traps (wasm `unreachable`) inside the handler,
// without ever setting a response.  The host must answer with an error status
// and stay healthy.
#include "proxy.h"

void exports_wasi_http_incoming_handler_handle(
    exports_wasi_http_incoming_handler_own_incoming_request_t request,
    exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
  (void)request;
  (void)response_out;
  __builtin_trap();
}
