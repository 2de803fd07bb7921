// echo-js: streams the request body back as the response body.
//
// `request.body` is a ReadableStream backed by the wasi:http incoming body.
// Handing it to `new Response(...)` makes the engine forward it chunk by
// chunk into the outgoing body as it arrives: the whole body is never
// buffered, so large uploads work.  The request's content-type, if any, is
// copied to the response.
//
// Built with componentize-js 0.23.0 (see scripts/build-guests.sh).

addEventListener('fetch', (event) => {
  const request = event.request;
  const headers = new Headers();
  const contentType = request.headers.get('content-type');
  if (contentType !== null) {
    headers.set('content-type', contentType);
  }
  // A request without a body (e.g. GET) has `body === null`; answer with an
  // explicit empty body (a byte array, so no content-type gets added).
  const body = request.body ?? new Uint8Array(0);
  event.respondWith(new Response(body, { status: 200, headers }));
});
