// hello-js: a wasi:http/proxy component written in JavaScript.
//
// Built with componentize-js 0.23.0 (see scripts/build-guests.sh):
//   componentize-js app.js --wit <wasi-wit@0.2.10> --world-name wasi:http/proxy@0.2.10 -o hello-js.wasm
//
// componentize-js embeds the StarlingMonkey engine, which implements the
// service-worker style `fetch` event on top of wasi:http/incoming-handler:
// every incoming request is dispatched as a FetchEvent.

addEventListener('fetch', (event) => {
  event.respondWith(
    new Response('Hello from JavaScript!\n', {
      status: 200,
      headers: { 'content-type': 'text/plain' },
    }),
  );
});
