// A Spin HTTP component in JavaScript (Spin's http-js template, no router), using Spin's key-value and
// variables interfaces and outbound HTTP (fetch). Routes, below the app's `/spin-js/...` trigger route:
//   GET  /hello       a fixed body
//   GET  /var         the component variable `greeting` (its template over the app variable)
//   GET  /var?name=N  variable N: an undefined one answers 404 with Spin's error case
//   GET|POST /kv      counts hits in the default store; a POST body is stored as `note`; answers JSON
//   GET  /kvopen?store=S  opens store S: one not granted answers 403 with Spin's error case
//   GET  /fetch       fetches the URL in the variable `upstream` and answers its status and body
import { Store } from 'fermyon:spin/key-value@2.0.0';
import { get as variable } from 'fermyon:spin/variables@2.0.0';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// A Spin error (a WIT `result` error) is thrown with the error variant as its payload.
function errorCase(e) {
  const p = e && e.payload;
  return p && p.tag ? p.tag : String(e);
}

function text(body, status = 200) {
  return new Response(body, { status, headers: { 'content-type': 'text/plain' } });
}

async function handle(request) {
  const url = new URL(request.url);
  // The part below the trigger route, which Spin gives in the `spin-path-info` header.
  const path = request.headers.get('spin-path-info') || url.pathname;

  if (path === '/hello') {
    return text('Hello from a Spin JS component!');
  }
  if (path === '/var') {
    const name = url.searchParams.get('name') || 'greeting';
    try {
      return text(variable(name));
    } catch (e) {
      return text(errorCase(e), 404);
    }
  }
  if (path === '/kv') {
    const store = Store.open('default');
    const seen = store.get('hits');
    const hits = (seen ? JSON.parse(decoder.decode(seen)) : 0) + 1;
    store.set('hits', encoder.encode(JSON.stringify(hits)));
    if (request.method === 'POST') {
      store.set('note', new Uint8Array(await request.arrayBuffer()));
    }
    const note = store.get('note');
    const keys = store.getKeys().sort();
    return new Response(JSON.stringify({ hits, note: note ? decoder.decode(note) : null, keys, exists: store.exists('note') }), {
      headers: { 'content-type': 'application/json' },
    });
  }
  if (path === '/kvopen') {
    try {
      Store.open(url.searchParams.get('store'));
      return text('opened');
    } catch (e) {
      return text(errorCase(e), 403);
    }
  }
  if (path === '/fetch') {
    const upstream = await fetch(variable('upstream'));
    return text(await upstream.text(), upstream.status);
  }
  return text('no such route', 404);
}

addEventListener('fetch', (event) => {
  event.respondWith(handle(event.request));
});
