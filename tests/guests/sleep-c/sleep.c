// sleep-c (bench fixture): waits 50 ms on a wasi:clocks pollable, using no CPU, then answers "slept\n".
// A stand-in for a function waiting on I/O: many of them in flight need many instances, which is what the
// burst benchmark needs to exercise scaling and the admission queue on a 2-core machine.
#include "respond.h"

#define SLEEP_NS 50000000ull

void exports_wasi_http_incoming_handler_handle(
    exports_wasi_http_incoming_handler_own_incoming_request_t request,
    exports_wasi_http_incoming_handler_own_response_outparam_t response_out) {
  wasi_http_types_incoming_request_drop_own(request);
  wasi_clocks_monotonic_clock_own_pollable_t timer = wasi_clocks_monotonic_clock_subscribe_duration(SLEEP_NS);
  wasi_io_poll_method_pollable_block(wasi_io_poll_borrow_pollable(timer));
  wasi_io_poll_pollable_drop_own(timer);
  respond_text(response_out, 200, "slept\n", 6);
}
