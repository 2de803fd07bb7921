// wisp console: a single-page app over the node's control API (/_wisp/v1). Plain DOM, no framework; every
// text from the node is set with textContent, never parsed as HTML. The API token lives in this tab's
// sessionStorage only and travels as `Authorization: Bearer`, like the CLI's.
'use strict';

(() => {
  const C = window.WispCharts;
  const API = '/_wisp/v1';
  const TOKEN_KEY = 'wisp.console.token';
  const NS_KEY = 'wisp.console.namespace';
  const THEME_KEY = 'wisp.console.theme';
  const REFRESH_MS = 5000;
  const root = document.getElementById('app');

  const COLORS = ['#6d5dfc', '#0ea5e9', '#f59e0b', '#10b981', '#ec4899', '#14b8a6', '#8b5cf6', '#f97316', '#64748b'];
  const RED = '#ef4444';
  const AMBER = '#f59e0b';

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    ns: sessionStorage.getItem(NS_KEY) || 'default',
    namespaces: new Set(['default']),
    range: '1h',
    usageRange: '7d',
    usageBy: 'function',
    usageMetric: null,
    node: null,
    nodeAt: 0,
    page: null,
    loginNotice: null,
  };

  // ---------- DOM ----------

  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === 'class') el.className = v;
        else if (k === 'text') el.textContent = v;
        else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
        else el.setAttribute(k, v === true ? '' : String(v));
      }
    }
    add(el, kids);
    return el;
  }

  function add(el, kids) {
    for (const k of kids.flat(Infinity)) {
      if (k === null || k === undefined || k === false) continue;
      el.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return el;
  }

  const ICONS = {
    functions: 'M4 6h16M4 12h16M4 18h10',
    usage: 'M4 20V10m6 10V4m6 16v-7m4 7H2',
    node: 'M4 5h16v6H4zM4 13h16v6H4zM8 8h.01M8 16h.01',
    logout: 'M15 4h4v16h-4M10 8l-4 4 4 4M6 12h10',
    theme: 'M12 3a9 9 0 1 0 9 9 7 7 0 0 1-9-9z',
    alert: 'M12 8v5m0 3h.01M10.3 3.9 2.4 18a2 2 0 0 0 1.7 3h15.8a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z',
    check: 'M5 12l5 5L20 7',
    box: 'M21 8l-9-5-9 5v8l9 5 9-5zM3 8l9 5 9-5M12 13v8',
    chart: 'M3 3v18h18M7 15l4-4 3 3 5-6',
    refresh: 'M20 11a8 8 0 1 0-2.3 5.7M20 5v6h-6',
  };

  function icon(name, cls) {
    const NS = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('fill', 'none');
    svg.setAttribute('stroke', 'currentColor');
    svg.setAttribute('stroke-width', '1.8');
    svg.setAttribute('stroke-linecap', 'round');
    svg.setAttribute('stroke-linejoin', 'round');
    svg.setAttribute('aria-hidden', 'true');
    if (cls) svg.setAttribute('class', cls);
    const p = document.createElementNS(NS, 'path');
    p.setAttribute('d', ICONS[name]);
    svg.appendChild(p);
    return svg;
  }

  function logo(size) {
    const NS = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', '0 0 32 32');
    svg.setAttribute('width', size);
    svg.setAttribute('height', size);
    for (const [d, op, sw] of [['M7 19c3-6 7 4 11-2s5-7 7-5', '1', '2.6'], ['M9 24c3-3 6 1 9-2', '.6', '2']]) {
      const p = document.createElementNS(NS, 'path');
      p.setAttribute('d', d);
      p.setAttribute('fill', 'none');
      p.setAttribute('stroke', '#fff');
      p.setAttribute('stroke-opacity', op);
      p.setAttribute('stroke-width', sw);
      p.setAttribute('stroke-linecap', 'round');
      svg.appendChild(p);
    }
    return h('div', { class: 'brand-mark' }, svg);
  }

  function alertBox(kind, title, detail) {
    return h('div', { class: `alert ${kind}`, role: kind === 'err' ? 'alert' : 'status' },
      icon(kind === 'ok' ? 'check' : 'alert', 'icon'),
      h('div', {}, h('div', { class: 'alert-title', text: title }), detail ? h('div', { class: 'alert-detail', text: detail }) : null));
  }

  function errorBox(what, err) {
    return alertBox('err', `Could not ${what}`, describe(err));
  }

  function empty(iconName, title, ...body) {
    return h('div', { class: 'empty' }, icon(iconName), h('div', { class: 'empty-title', text: title }), h('div', {}, ...body));
  }

  function loading(text) {
    return h('div', { class: 'loading' }, h('span', { class: 'spinner' }), ' ', text || 'Loading…');
  }

  function badge(kind, text, title) {
    return h('span', { class: `badge ${kind}`, text, title });
  }

  function card(title, hint, ...body) {
    return h('section', { class: 'card' },
      title ? h('div', { class: 'card-head' }, h('h2', { text: title }), hint || null) : null,
      h('div', { class: 'card-body' }, ...body));
  }

  function stat(label, value, unit, note, id) {
    return h('div', { class: 'card stat', id },
      h('div', { class: 'label', text: label }),
      h('div', { class: 'value' }, value, unit ? h('small', { text: unit }) : null),
      note ? h('div', { class: 'note', text: note }) : null);
  }

  function seg(options, current, onpick) {
    return h('div', { class: 'seg', role: 'group' }, options.map(([value, label]) => h('button', {
      type: 'button', class: value === current ? 'on' : '', 'aria-pressed': String(value === current),
      onclick: () => onpick(value), text: label,
    })));
  }

  // ---------- formatting ----------

  const nf = new Intl.NumberFormat('en-US');
  function int(n) { return nf.format(Math.round(n || 0)); }
  function dec(n, d) { return (n || 0).toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }); }

  function us(v) {
    v = v || 0;
    if (v < 1000) return `${Math.round(v)} µs`;
    if (v < 1e6) return `${v < 1e4 ? (v / 1000).toFixed(2) : v < 1e5 ? (v / 1000).toFixed(1) : Math.round(v / 1000)} ms`;
    return `${(v / 1e6).toFixed(2)} s`;
  }

  function ms(v) {
    if (v === null || v === undefined) return '—';
    if (v === 0) return '0';
    if (v < 1) return `${Math.round(v * 1000)} µs`;
    if (v < 1000) return `${v < 10 ? +v.toFixed(2) : v < 100 ? +v.toFixed(1) : Math.round(v)} ms`;
    return `${+(v / 1000).toFixed(2)} s`;
  }

  function bytes(n) {
    n = n || 0;
    if (n < 1024) return `${n} B`;
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let i = -1;
    do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
    return `${n < 10 ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
  }

  function rate(v) {
    if (!v) return '0';
    if (v < 0.01) return v.toFixed(3);
    if (v < 10) return v.toFixed(2);
    return v.toFixed(1);
  }

  function compact(v) {
    if (!v) return '0';
    if (Math.abs(v) >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
    if (Math.abs(v) >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
    if (Math.abs(v) < 1) return String(+v.toPrecision(2));
    return String(+v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0));
  }

  function money(v, currency) {
    v = v || 0;
    const digits = v !== 0 && Math.abs(v) < 0.01 ? { maximumSignificantDigits: 3 } : { minimumFractionDigits: 2, maximumFractionDigits: 2 };
    try {
      return new Intl.NumberFormat('en-US', { style: 'currency', currency, ...digits }).format(v);
    } catch (_) {
      return `${v.toLocaleString('en-US', digits)} ${currency}`;
    }
  }

  function pad(n, w) { return String(n).padStart(w || 2, '0'); }
  function clock(t) { const d = new Date(t); return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`; }
  function clockMs(t) { return `${clock(t)}.${pad(new Date(t).getMilliseconds(), 3)}`; }
  function dateTime(t) {
    const d = new Date(t);
    return `${d.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' })} ${clock(t)}`;
  }

  function ago(t) {
    const s = Math.max(0, (Date.now() - t) / 1000);
    if (s < 10) return 'just now';
    if (s < 60) return `${Math.round(s)} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} d ago`;
  }

  function duration(seconds) {
    const s = Math.floor(seconds || 0);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
    return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  }

  // Guest output may hold terminal control characters: show them as escapes (as `wisp logs` does).
  function escapeControl(text) {
    return String(text).replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g,
      (c) => `\\u{${c.charCodeAt(0).toString(16)}}`);
  }

  // Revisions and artifacts are content hashes: their start tells them apart. Invocation ids are UUIDv7,
  // whose start is the time: their random end does.
  function shortId(id) { return String(id || '').slice(0, 8); }
  function shortInv(id) { return String(id || '').slice(-8); }
  const enc = encodeURIComponent;

  // ---------- the API ----------

  class ApiError extends Error {
    constructor(status, code, message, method, path) {
      super(message);
      this.status = status;
      this.code = code;
      this.method = method;
      this.path = path;
    }
  }

  function describe(err) {
    if (err instanceof ApiError) {
      if (err.status === 0) return err.message;
      return `${err.method} ${err.path} answered ${err.status}${err.code ? ` (${err.code})` : ''}: ${err.message}`;
    }
    return String(err && err.message ? err.message : err);
  }

  async function errorFrom(r, method, path) {
    const text = await r.text().catch(() => '');
    let code = '';
    let message = text.trim() || r.statusText || 'no details';
    try {
      const v = JSON.parse(text);
      if (v && v.error) {
        code = v.error.code || '';
        message = v.error.message || message;
      }
    } catch (_) { /* not JSON: the text itself */ }
    return new ApiError(r.status, code, message, method, path);
  }

  async function request(method, path, body, token) {
    let r;
    const headers = { Authorization: `Bearer ${token === undefined ? state.token : token}` };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    try {
      r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store' });
    } catch (e) {
      throw new ApiError(0, 'unreachable', `Cannot reach the wisp node at ${location.origin} (${e.message}). Is \`wisp up\` still running?`, method, path);
    }
    if (!r.ok) throw await errorFrom(r, method, path);
    const text = await r.text();
    return text ? JSON.parse(text) : null;
  }

  async function api(method, path, body) {
    try {
      return await request(method, path, body);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        signOut(`The node stopped accepting this token (${e.message}). Sign in again with the current one.`);
      }
      throw e;
    }
  }

  const fnPath = (ns, name) => `${API}/namespaces/${enc(ns)}/functions/${enc(name)}`;

  // A function's series over [since, until), one dense array per metric (buckets without invocations are 0,
  // or null for latencies).
  async function seriesOf(ns, name, span, step) {
    const now = Date.now();
    const buckets = Math.round(span / step);
    const since = Math.floor(now / step) * step - (buckets - 1) * step;
    const until = since + buckets * step;
    const v = await api('GET', `${fnPath(ns, name)}/series?since_ms=${since}&until_ms=${until}&step_ms=${step}`);
    return densify(v);
  }

  function densify(v) {
    const step = v.step_ms;
    const n = Math.max(1, Math.ceil((v.until_ms - v.since_ms) / step));
    const times = Array.from({ length: n }, (_, i) => v.since_ms + i * step);
    const zeros = () => new Array(n).fill(0);
    const nulls = () => new Array(n).fill(null);
    const out = { step, since: v.since_ms, until: v.since_ms + n * step, times, requests: zeros(), errors: zeros(),
      cold: zeros(), p50: nulls(), p90: nulls(), p99: nulls(), points: v.points };
    for (const p of v.points) {
      const i = Math.floor((p.t_ms - v.since_ms) / step);
      if (i < 0 || i >= n) continue;
      out.requests[i] = p.requests;
      out.errors[i] = p.errors;
      out.cold[i] = p.cold_starts;
      out.p50[i] = p.p50_ms;
      out.p90[i] = p.p90_ms;
      out.p99[i] = p.p99_ms;
    }
    out.total = out.requests.reduce((a, b) => a + b, 0);
    out.totalErrors = out.errors.reduce((a, b) => a + b, 0);
    out.totalCold = out.cold.reduce((a, b) => a + b, 0);
    // Latency over the range: the request-weighted median of bucket medians, and the worst bucket's p99.
    const weighted = v.points.map((p) => [p.p50_ms, p.requests]).sort((a, b) => a[0] - b[0]);
    let seen = 0;
    out.p50All = null;
    for (const [val, count] of weighted) {
      seen += count;
      if (seen * 2 >= out.total) { out.p50All = val; break; }
    }
    out.p99Worst = v.points.length ? Math.max(...v.points.map((p) => p.p99_ms)) : null;
    return out;
  }

  // ---------- pages: lifecycle ----------

  // One page at a time: leaving it stops its refresh timers and aborts its streams.
  function newPage() {
    if (state.page) state.page.close();
    const page = {
      alive: true,
      timers: [],
      aborts: [],
      close() {
        this.alive = false;
        this.timers.forEach(clearTimeout);
        this.aborts.forEach((a) => a.abort());
      },
      // Runs `load` now and every `every` ms after it finishes (skipped while the tab is hidden).
      refresh(load, every, errorSlot, what) {
        const run = async () => {
          if (!this.alive) return;
          if (!document.hidden) {
            try {
              await load();
              if (errorSlot) errorSlot.replaceChildren();
            } catch (e) {
              if (!this.alive) return;
              if (errorSlot) errorSlot.replaceChildren(errorBox(what || 'load this page', e));
              else throw e;
            }
          }
          if (this.alive && every) this.timers.push(setTimeout(run, every));
        };
        return run();
      },
    };
    state.page = page;
    return page;
  }

  // ---------- shell ----------

  function applyTheme() {
    const t = localStorage.getItem(THEME_KEY);
    if (t === 'light' || t === 'dark') document.documentElement.dataset.theme = t;
    else delete document.documentElement.dataset.theme;
  }

  function toggleTheme() {
    const dark = document.documentElement.dataset.theme === 'dark'
      || (!document.documentElement.dataset.theme && matchMedia('(prefers-color-scheme: dark)').matches);
    localStorage.setItem(THEME_KEY, dark ? 'light' : 'dark');
    applyTheme();
    route();
  }

  function setNamespace(ns) {
    ns = ns.trim();
    if (!ns || ns === state.ns) return;
    state.ns = ns;
    state.namespaces.add(ns);
    sessionStorage.setItem(NS_KEY, ns);
    if (location.hash.startsWith('#/functions') || location.hash === '' || location.hash === '#/') route();
    else location.hash = '#/functions';
  }

  function shell(active) {
    const nav = (href, name, iconName, label) => h('a', { href, class: active === name ? 'active' : '', id: `nav-${name}` }, icon(iconName), label);
    const nsInput = h('input', { id: 'namespace', list: 'namespaces', value: state.ns, spellcheck: 'false', 'aria-label': 'Namespace' });
    nsInput.addEventListener('change', () => setNamespace(nsInput.value));
    nsInput.addEventListener('keydown', (e) => { if (e.key === 'Enter') setNamespace(nsInput.value); });
    const list = h('datalist', { id: 'namespaces' }, [...state.namespaces].sort().map((n) => h('option', { value: n })));
    const node = state.node;
    const sidebar = h('aside', { class: 'sidebar' },
      h('div', { class: 'brand' }, logo(22), h('div', {}, h('div', { class: 'brand-name', text: 'wisp' }), h('div', { class: 'brand-sub', text: 'console' }))),
      h('nav', { class: 'nav' },
        nav('#/functions', 'functions', 'functions', 'Functions'),
        nav('#/usage', 'usage', 'usage', 'Usage & cost'),
        nav('#/node', 'node', 'node', 'Node')),
      h('div', { class: 'side-section' }, h('label', { class: 'side-label', for: 'namespace', text: 'Namespace' }), nsInput, list),
      h('div', { class: 'spacer' }),
      h('div', { class: 'side-foot' },
        node ? h('div', { class: 'node-line' }, h('span', { class: 'dot live' }), `wisp ${node.version} · up ${duration(node.uptime_seconds + (Date.now() - state.nodeAt) / 1000)}`) : null,
        h('div', { class: 'toolbar' },
          h('button', { type: 'button', class: 'ghost small', id: 'theme', onclick: toggleTheme, title: 'Switch between light and dark' }, 'Theme'),
          h('button', { type: 'button', class: 'ghost small', id: 'signout', onclick: () => signOut(null) }, 'Sign out'))));
    const main = h('main', { class: 'main' });
    const content = h('div', { class: 'content' });
    main.appendChild(content);
    root.className = '';
    root.replaceChildren(h('div', { class: 'shell' }, sidebar, main));
    return content;
  }

  function pageHead(crumbs, title, sub, tools) {
    return h('div', { class: 'page-head' },
      h('div', {},
        crumbs ? h('div', { class: 'crumbs' }, crumbs) : null,
        h('div', { class: 'title-row' }, title),
        sub ? h('div', { class: 'sub' }, sub) : null),
      tools ? h('div', { class: 'toolbar' }, tools) : null);
  }

  function updated() {
    return h('span', { class: 'faint', text: `Updated ${clock(Date.now())} · refreshes every ${REFRESH_MS / 1000} s` });
  }

  // ---------- login ----------

  function renderLogin() {
    newPage();
    const input = h('input', { id: 'token', type: 'password', autocomplete: 'current-password', placeholder: 'API token', spellcheck: 'false', autofocus: true });
    const slot = h('div', { id: 'login-error' });
    const button = h('button', { type: 'submit', class: 'primary', id: 'login' }, 'Sign in');
    if (state.loginNotice) slot.appendChild(alertBox('err', 'Signed out', state.loginNotice));
    const form = h('form', { class: 'card login', novalidate: true },
      h('div', { class: 'brand' }, logo(22), h('div', {}, h('div', { class: 'brand-name', text: 'wisp' }), h('div', { class: 'brand-sub', text: 'console' }))),
      h('h1', { text: 'Sign in to this node' }),
      h('p', { text: 'Functions, invocations, live logs, usage and cost of the wisp node at ' + location.host + '.' }),
      slot,
      h('div', { class: 'field' },
        h('label', { for: 'token', text: 'API token' }),
        input,
        h('div', { class: 'help' }, 'It is in ', h('code', { text: '<data-dir>/api-token' }), ' on the node (', h('code', { text: 'wisp up' }), ' prints it on first start). It stays in this tab only.')),
      button);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const token = input.value.trim();
      if (!token) {
        slot.replaceChildren(alertBox('err', 'Enter the API token', 'Paste the token from <data-dir>/api-token, then sign in.'));
        input.focus();
        return;
      }
      button.disabled = true;
      button.textContent = 'Signing in…';
      try {
        const status = await request('GET', `${API}/status`, undefined, token);
        state.token = token;
        state.node = status;
        state.nodeAt = Date.now();
        state.loginNotice = null;
        sessionStorage.setItem(TOKEN_KEY, token);
        if (!location.hash || location.hash === '#/login') location.hash = '#/functions';
        else route();
        learnNamespaces();
      } catch (err) {
        let title = 'Sign-in failed';
        let detail = describe(err);
        if (err instanceof ApiError && err.status === 401) {
          title = 'That token was not accepted';
          detail = `The node answered 401: ${err.message}. Copy the token again from <data-dir>/api-token on the node.`;
        }
        slot.replaceChildren(alertBox('err', title, detail));
        button.disabled = false;
        button.textContent = 'Sign in';
        input.select();
      }
    });
    root.className = '';
    root.replaceChildren(h('div', { class: 'login-wrap' }, form));
    input.focus();
  }

  function signOut(notice) {
    state.token = '';
    state.node = null;
    state.loginNotice = notice;
    sessionStorage.removeItem(TOKEN_KEY);
    if (state.page) state.page.close();
    if (location.hash !== '#/login') location.hash = '#/login';
    else renderLogin();
  }

  // Namespaces seen in the last 30 days' usage, for the namespace picker.
  async function learnNamespaces() {
    try {
      const now = Date.now();
      const u = await api('GET', `${API}/usage?by=namespace&since_ms=${now - 30 * 86400e3}&until_ms=${now + 1}`);
      for (const r of u.rows) state.namespaces.add(r.namespace);
      const list = document.getElementById('namespaces');
      if (list) list.replaceChildren(...[...state.namespaces].sort().map((n) => h('option', { value: n })));
    } catch (_) { /* the picker still takes any name */ }
  }

  // ---------- functions ----------

  function statusBadge(f) {
    if (!f.active) return badge('warn', 'Not loaded', 'Stored, but not serving on this node (it failed to load; see the node log)');
    if (f.in_flight > 0) return badge('ok', `Serving · ${f.in_flight} running`);
    return badge('ok', 'Serving');
  }

  function routesCell(routes, triggers) {
    const chips = (routes || []).map((r) => h('span', { class: 'chip', text: r }));
    if (!chips.length && triggers && triggers.length) return h('span', { class: 'muted', text: `${triggers.length} trigger${triggers.length > 1 ? 's' : ''}` });
    return chips.length ? chips : h('span', { class: 'faint', text: 'no routes' });
  }

  async function functionsPage() {
    const page = newPage();
    const content = shell('functions');
    const sub = h('div', { class: 'sub' }, 'Namespace ', h('code', { text: state.ns }));
    const when = h('span');
    content.append(pageHead(null, h('h1', { text: 'Functions' }), [sub, when]));
    const errors = h('div', { class: 'stack' });
    const body = h('div', { class: 'stack', id: 'functions' }, loading('Loading functions…'));
    content.append(errors, body);
    let first = true;
    await page.refresh(async () => {
      const fns = await api('GET', `${API}/namespaces/${enc(state.ns)}/functions`);
      fns.sort((a, b) => a.name.localeCompare(b.name));
      const series = await Promise.all(fns.slice(0, 100).map((f) => seriesOf(f.namespace, f.name, 3600e3, 60e3).catch(() => null)));
      if (!page.alive) return;
      when.replaceChildren(updated());
      body.replaceChildren(...renderFunctions(fns, series));
      first = false;
    }, REFRESH_MS, errors, `list the functions of namespace ${state.ns}`);
    if (first && !body.querySelector('table, .empty')) body.replaceChildren();
  }

  function renderFunctions(fns, series) {
    if (!fns.length) {
      return [h('div', { class: 'card' }, empty('box', `No functions in namespace ${state.ns} yet`,
        'Deploy one with ', h('code', { text: 'wisp deploy hello.wasm --route /hello' }), ' or an app with ',
        h('code', { text: 'wisp deploy ./app' }), '; it shows up here at once.'))];
    }
    const now = Date.now();
    let requests = 0;
    let errs = 0;
    let recent = 0;
    for (const se of series) {
      if (!se) continue;
      requests += se.total;
      errs += se.totalErrors;
      se.times.forEach((t, i) => { if (t >= now - 5 * 60e3) recent += se.requests[i]; });
    }
    const serving = fns.filter((f) => f.active).length;
    const inFlight = fns.reduce((a, f) => a + f.in_flight, 0);
    const stats = h('div', { class: 'stats' },
      stat('Functions', int(fns.length), null, `${serving} serving on this node`),
      stat('Requests · last hour', int(requests), null, `${rate(recent / 300)} req/s over the last 5 min`),
      stat('Errors · last hour', int(errs), null, requests ? `${dec((errs / requests) * 100, 1)}% of requests` : 'no requests'),
      stat('Running now', int(inFlight), null, `${fns.reduce((a, f) => a + f.idle_instances, 0)} warm instances idle`));
    const rows = fns.map((f, i) => {
      const se = series[i];
      let rps = 0;
      if (se) {
        let n = 0;
        se.times.forEach((t, j) => { if (t >= now - 5 * 60e3) n += se.requests[j]; });
        rps = n / 300;
      }
      const href = `#/fn/${enc(f.namespace)}/${enc(f.name)}`;
      const tr = h('tr', { class: 'link', 'data-function': f.name, onclick: (e) => { if (!e.target.closest('a')) location.hash = href; } },
        h('td', {}, h('a', { class: 'fn-name', href, text: f.name }),
          h('div', { class: 'fn-app', text: [f.app ? `app ${f.app}` : null, f.kind, f.instance_mode].filter(Boolean).join(' · ') })),
        h('td', {}, statusBadge(f)),
        h('td', { class: 'routes' }, routesCell(f.routes, f.triggers)),
        h('td', { class: 'num' }, se ? rate(rps) : '—'),
        h('td', {}, se ? C.sparkline(se.requests, COLORS[0], 110, 26) : h('span', { class: 'faint', text: 'no data' })),
        h('td', { class: 'num' }, se ? int(se.total) : '—'),
        h('td', { class: 'num' }, se ? (se.totalErrors ? h('span', { class: 'badge err plain', text: `${int(se.totalErrors)} · ${dec((se.totalErrors / se.total) * 100, 1)}%` }) : h('span', { class: 'faint', text: '0' })) : '—'),
        h('td', { class: 'num' }, se && se.p99Worst !== null ? ms(se.p99Worst) : h('span', { class: 'faint', text: '—' })),
        h('td', { class: 'num muted', title: dateTime(f.deployed_at_ms), text: ago(f.deployed_at_ms) }));
      return tr;
    });
    const table = h('div', { class: 'card' }, h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {},
        h('th', { text: 'Function' }), h('th', { text: 'Status' }), h('th', { text: 'Routes' }),
        h('th', { class: 'num', text: 'Req/s (5 min)' }), h('th', { text: 'Last hour' }), h('th', { class: 'num', text: 'Requests' }),
        h('th', { class: 'num', text: 'Errors' }), h('th', { class: 'num', text: 'p99' }), h('th', { class: 'num', text: 'Deployed' }))),
      h('tbody', {}, rows))));
    return [stats, table];
  }

  // ---------- one function ----------

  const RANGES = { '15m': [15 * 60e3, 15e3], '1h': [3600e3, 60e3], '6h': [6 * 3600e3, 5 * 60e3], '24h': [86400e3, 15 * 60e3] };
  const PHASES = [
    ['queue_us', 'Queue', 'ph-queue'], ['instantiate_us', 'Instantiate', 'ph-instantiate'], ['init_us', 'Init', 'ph-init'],
    ['handler_us', 'Handler', 'ph-handler'], ['response_us', 'Response', 'ph-response'],
  ];

  async function functionPage(ns, name, tab) {
    const page = newPage();
    const content = shell('functions');
    const head = h('div', {}, pageHead(h('span', {}, h('a', { href: '#/functions', text: 'Functions' }), ` / ${ns} /`), h('h1', { text: name })));
    const tabs = h('nav', { class: 'tabs' }, [['overview', 'Overview'], ['logs', 'Live logs'], ['scaling', 'Scaling'], ['revisions', 'Revisions']]
      .map(([t, label]) => h('a', { href: `#/fn/${enc(ns)}/${enc(name)}${t === 'overview' ? '' : '/' + t}`, class: t === tab ? 'on' : '', id: `tab-${t}`, text: label })));
    const errors = h('div', { class: 'stack' });
    const body = h('div', { class: 'stack' });
    content.append(head, tabs, errors, body);
    let shown;
    try {
      shown = await api('GET', fnPath(ns, name));
    } catch (e) {
      if (!page.alive) return;
      if (e instanceof ApiError && e.status === 404) {
        tabs.remove();
        body.replaceChildren(h('div', { class: 'card' }, empty('box', `No function ${name} in namespace ${ns}`, e.message, h('br'), h('a', { href: '#/functions', text: 'Back to the functions' }))));
      } else {
        errors.replaceChildren(errorBox(`load function ${name}`, e));
      }
      return;
    }
    if (!page.alive) return;
    const setHead = (show) => head.replaceChildren(functionHead(show));
    setHead(shown);
    const ctx = { page, ns, name, shown, setHead, body, errors };
    if (tab === 'logs') return logsTab(ctx);
    if (tab === 'scaling') return scalingTab(ctx);
    if (tab === 'revisions') return revisionsTab(ctx);
    return overviewTab(ctx);
  }

  function functionHead(show) {
    const f = show.function;
    const meta = [
      h('span', {}, 'revision ', h('code', { text: shortId(f.revision), title: f.revision })),
      h('span', { title: dateTime(f.deployed_at_ms), text: `deployed ${ago(f.deployed_at_ms)}` }),
      h('span', { text: `${f.generation} revision${f.generation === 1 ? '' : 's'}` }),
      f.app ? h('span', { text: `app ${f.app}` }) : null,
    ];
    return pageHead(h('span', {}, h('a', { href: '#/functions', text: 'Functions' }), ` / ${f.namespace} /`),
      [h('h1', { text: f.name }), statusBadge(f), badge('plain', f.kind), badge('accent plain', `${f.instance_mode} instances`)],
      [h('span', {}, routesCell(f.routes, f.triggers)), ...meta.filter(Boolean).map((m) => [h('span', { class: 'faint', text: '·' }), m])]);
  }

  async function overviewTab(ctx) {
    const { page, ns, name, body, errors } = ctx;
    const statsSlot = h('div', { class: 'stats', id: 'fn-stats' });
    const charts = h('div', { class: 'grid2', id: 'charts' });
    const rangeSlot = h('div');
    const invSlot = h('div', { id: 'invocations-body' }, loading('Loading invocations…'));
    let limit = 15;
    let next = null;
    const open = new Set();
    const drawRange = () => rangeSlot.replaceChildren(seg(Object.keys(RANGES).map((r) => [r, `Last ${r}`]), state.range, (r) => {
      state.range = r;
      drawRange();
      loadCharts().catch((e) => errors.replaceChildren(errorBox('load the series', e)));
    }));
    drawRange();
    const more = h('button', { type: 'button', class: 'small', onclick: async () => { limit += 25; await loadInvocations(); } }, 'Load older');
    body.append(
      h('div', { class: 'toolbar', id: 'activity-head' }, h('h2', { text: 'Activity' }), h('span', { class: 'spacer' }), rangeSlot),
      statsSlot, charts,
      h('section', { class: 'card', id: 'invocations' },
        h('div', { class: 'card-head' }, h('h2', { text: 'Recent invocations' }), phaseLegend()),
        h('div', { class: 'card-body' }, invSlot)));
    rangeSlot.classList.add('range');

    const loadCharts = async () => {
      const [span, step] = RANGES[state.range];
      const [se, show] = await Promise.all([seriesOf(ns, name, span, step), api('GET', fnPath(ns, name))]);
      if (!page.alive) return;
      ctx.shown = show;
      ctx.setHead(show);
      statsSlot.replaceChildren(...functionStats(se, show.function, span));
      charts.replaceChildren(...functionCharts(se));
    };

    const loadInvocations = async () => {
      const v = await api('GET', `${API}/namespaces/${enc(ns)}/records?function=${enc(name)}&limit=${limit}`);
      if (!page.alive) return;
      next = v.next;
      invSlot.replaceChildren(invocationsTable(v.invocations, open));
      if (next !== null && next !== undefined) invSlot.appendChild(h('div', { class: 'form-actions' }, more));
    };

    await page.refresh(async () => {
      await Promise.all([loadCharts(), loadInvocations()]);
    }, REFRESH_MS, errors, `load ${name}'s activity`);
  }

  function functionStats(se, f, span) {
    const secs = span / 1000;
    const live = `${f.in_flight} running · ${f.idle_instances} idle${f.queued ? ` · ${f.queued} queued` : ''}`;
    const a = f.autoscaler;
    return [
      stat('Requests', int(se.total), null, `${rate(se.total / secs)} req/s average`, 'stat-requests'),
      stat('Errors', int(se.totalErrors), null, se.total ? `${dec((se.totalErrors / se.total) * 100, 1)}% of requests` : 'no requests', 'stat-errors'),
      stat('Latency p50', se.p50All === null ? '—' : ms(se.p50All), null, se.p99Worst === null ? 'no requests' : `p99 up to ${ms(se.p99Worst)}`, 'stat-latency'),
      stat('Cold starts', int(se.totalCold), null, se.total ? `${dec((se.totalCold / se.total) * 100, 0)}% of requests` : 'no requests', 'stat-cold'),
      stat('Instances', int(f.in_flight + f.idle_instances), null, a ? `${live} · desired ${a.desired}` : live, 'stat-instances'),
    ];
  }

  function chartCard(id, title, big, legendSeries, chart) {
    return h('section', { class: 'card chart-card', id },
      h('div', { class: 'card-head' },
        h('div', { class: 'chart-meta' }, h('h2', { text: title }), h('span', { class: 'muted chart-total', text: big })),
        legendSeries ? C.legend(legendSeries) : null),
      h('div', { class: 'card-body' }, chart));
  }

  function functionCharts(se) {
    const secs = se.step / 1000;
    const base = { times: se.times, step: se.step, since: se.since, until: se.until, empty: 'No invocations in this range' };
    // Sparse traffic reads better as bars than as an area of spikes.
    const busy = se.requests.filter((r) => r > 0).length;
    const rps = { name: 'req/s', color: COLORS[0], kind: busy * 3 < se.requests.length ? 'bar' : 'area', values: se.requests.map((r) => r / secs) };
    const lat = [
      { name: 'p50', color: '#10b981', kind: 'line', values: se.p50 },
      { name: 'p90', color: '#0ea5e9', kind: 'line', values: se.p90 },
      { name: 'p99', color: COLORS[0], kind: 'line', values: se.p99 },
    ];
    const errs = { name: 'errors', color: RED, kind: 'bar', values: se.errors };
    const cold = { name: 'cold starts', color: AMBER, kind: 'bar', values: se.cold };
    const stepLabel = se.step >= 60e3 ? `${se.step / 60e3} min` : `${se.step / 1000} s`;
    return [
      chartCard('chart-requests', 'Requests per second', `${int(se.total)} request${se.total === 1 ? '' : 's'}`, null,
        C.timeChart({ ...base, series: [rps], fmt: (v) => compact(v) })),
      chartCard('chart-latency', 'Latency', `per ${stepLabel}`, lat, C.timeChart({ ...base, series: lat, fmt: ms })),
      chartCard('chart-errors', 'Errors', `${int(se.totalErrors)} error${se.totalErrors === 1 ? '' : 's'}`, null,
        C.timeChart({ ...base, series: [errs], fmt: (v) => compact(v), empty: se.total ? 'No errors in this range' : base.empty })),
      chartCard('chart-cold', 'Cold starts', `${int(se.totalCold)} cold start${se.totalCold === 1 ? '' : 's'}`, null,
        C.timeChart({ ...base, series: [cold], fmt: (v) => compact(v) })),
    ];
  }

  function phaseLegend() {
    return h('div', { class: 'phase-legend' }, PHASES.map(([, label, cls]) => h('span', {}, h('i', { class: cls }), label)));
  }

  function phaseBar(r) {
    const total = PHASES.reduce((a, [k]) => a + (r[k] || 0), 0) || 1;
    const bar = h('div', { class: 'phases', title: PHASES.map(([k, label]) => `${label} ${us(r[k])}`).join(' · ') });
    for (const [k, , cls] of PHASES) {
      if (!r[k]) continue;
      const span = h('span', { class: cls });
      span.style.width = `${(r[k] / total) * 100}%`;
      bar.appendChild(span);
    }
    return bar;
  }

  function failed(r) { return !!r.error || r.status >= 500; }

  function statusCell(r) {
    const kind = failed(r) ? 'err' : r.status >= 400 ? 'warn' : 'ok';
    return badge(kind, String(r.status), r.error || undefined);
  }

  function invocationsTable(list, open) {
    if (!list.length) {
      return empty('chart', 'No invocations yet', 'Call the function (', h('code', { text: 'curl' }), ' one of its routes, or ',
        h('code', { text: 'wisp invoke NAME' }), '); each invocation shows up here with its phases.');
    }
    const tbody = h('tbody');
    for (const item of list) {
      const r = item.record;
      const detailRow = h('tr', { class: 'detail-row' }, h('td', { class: 'detail', colspan: 9 }, invocationDetail(r)));
      const row = h('tr', { class: `link${open.has(r.id) ? ' open' : ''}`, 'data-id': r.id, onclick: () => {
        if (open.has(r.id)) { open.delete(r.id); detailRow.remove(); row.classList.remove('open'); } else { open.add(r.id); row.after(detailRow); row.classList.add('open'); }
      } },
      h('td', { class: 'mono', title: dateTime(r.at_ms) }, clockMs(r.at_ms), h('div', { class: 'faint', text: ago(r.at_ms) })),
      h('td', {}, h('code', { text: shortInv(r.id), title: r.id })),
      h('td', { class: 'muted', text: r.trigger || 'http' }),
      h('td', {}, statusCell(r)),
      h('td', {}, r.cold ? badge('warn plain', 'cold') : badge('plain', 'warm')),
      h('td', { class: 'num', text: us(r.duration_us) }),
      h('td', {}, phaseBar(r)),
      h('td', { class: 'num', text: us(r.cpu_us) }),
      h('td', { class: 'num', title: `limit ${bytes(r.memory_limit_bytes)}`, text: bytes(r.peak_memory_bytes) }));
      tbody.appendChild(row);
      if (open.has(r.id)) tbody.appendChild(detailRow);
    }
    return h('div', { class: 'table-wrap' }, h('table', { class: 'invocations' },
      h('thead', {}, h('tr', {}, h('th', { text: 'Started' }), h('th', { text: 'Invocation' }), h('th', { text: 'Trigger' }),
        h('th', { text: 'Status' }), h('th', { text: 'Start' }), h('th', { class: 'num', text: 'Duration' }), h('th', { text: 'Phases' }),
        h('th', { class: 'num', text: 'CPU' }), h('th', { class: 'num', text: 'Memory' }))),
      tbody));
  }

  function invocationDetail(r) {
    const dl = h('dl', { class: 'kv two' });
    const row = (k, v, wide) => dl.append(h('dt', { text: k }), h('dd', { class: wide ? 'wide' : null }, v));
    row('Invocation', h('code', { text: r.id }), true);
    row('Started', dateTime(r.at_ms));
    row('Revision', h('code', { text: shortId(r.revision), title: r.revision }));
    row('Status', String(r.status));
    if (r.error) row('Error', h('span', { class: 'badge err plain', text: r.error }));
    row('Start', r.cold ? 'cold (new instance)' : 'warm (reused instance)');
    for (const [k, label] of PHASES) row(label, us(r[k]));
    row('Total', us(r.duration_us));
    row('Wall · CPU', `${us(r.wall_us)} · ${us(r.cpu_us)}`);
    row('Memory', `${bytes(r.peak_memory_bytes)} of ${bytes(r.memory_limit_bytes)}`);
    row('Bytes in · out', `${bytes(r.bytes_in)} · ${bytes(r.bytes_out)}`);
    if (r.egress_bytes) row('Egress', bytes(r.egress_bytes));
    for (const [svc, c] of Object.entries(r.services || {})) row(`Service ${svc}`, `${int(c.ops)} ops · ${bytes(c.bytes)}`);
    const out = h('pre', { class: 'output' });
    if (r.logs) out.textContent = escapeControl(r.logs);
    else out.appendChild(h('span', { class: 'none', text: 'The guest wrote nothing to stdout or stderr.' }));
    if (r.logs_truncated) out.appendChild(h('span', { class: 'none', text: '\n… cut at the function\'s max_log_bytes' }));
    return h('div', { class: 'inv-detail' }, dl, h('div', {}, h('h3', { class: 'fieldset-title', text: 'Output' }), out));
  }

  // ---------- live logs ----------

  function logsTab(ctx) {
    const { page, ns, name, body } = ctx;
    const stateEl = h('span', { class: 'live-state', id: 'live-state' });
    const box = h('div', { class: 'logs', id: 'logs', role: 'log', 'aria-live': 'polite' });
    const placeholder = h('div', { class: 'logs-empty', text: 'Waiting for invocations… Call the function and its output appears here as each invocation finishes.' });
    box.appendChild(placeholder);
    let paused = false;
    const pending = [];
    const seen = new Set();
    const pauseBtn = h('button', { type: 'button', class: 'small', id: 'logs-pause' }, 'Pause');
    pauseBtn.addEventListener('click', () => {
      paused = !paused;
      pauseBtn.textContent = paused ? `Resume` : 'Pause';
      if (!paused) { pending.splice(0).forEach(show); }
    });
    const clearBtn = h('button', { type: 'button', class: 'small ghost', onclick: () => { box.replaceChildren(placeholder); } }, 'Clear');
    body.append(h('section', { class: 'card logs-card' },
      h('div', { class: 'logs-head' }, stateEl, h('div', { class: 'toolbar' }, h('span', { class: 'muted', text: 'Newest at the bottom' }), pauseBtn, clearBtn)),
      box));
    const setState = (kind, text) => stateEl.replaceChildren(h('span', { class: `dot ${kind}` }), text);

    function show(r) {
      const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
      placeholder.remove();
      const bad = failed(r);
      const entry = h('div', { class: `log-entry${bad ? ' error' : ''}`, 'data-id': r.id },
        h('div', { class: 'log-meta' },
          h('span', { class: 't', text: clockMs(r.at_ms) }),
          h('span', { class: 'id', text: shortInv(r.id), title: r.id }),
          h('span', { class: bad ? 'st-err' : 'st-ok', text: String(r.status) }),
          h('span', { class: r.cold ? 'cold' : '', text: r.cold ? 'cold' : 'warm' }),
          h('span', { text: us(r.duration_us) }),
          h('span', { text: r.trigger || 'http' })));
      if (r.error) entry.appendChild(h('div', { class: 'log-line err', text: escapeControl(r.error) }));
      const lines = (r.logs || '').replace(/\n$/, '').split('\n').filter((l, i, all) => l !== '' || all.length > 1);
      if (!lines.length) entry.appendChild(h('div', { class: 'log-line note', text: '(no output)' }));
      for (const l of lines) entry.appendChild(h('div', { class: 'log-line', text: escapeControl(l) }));
      if (r.logs_truncated) entry.appendChild(h('div', { class: 'log-line note', text: '… output cut at max_log_bytes' }));
      box.appendChild(entry);
      while (box.children.length > 500) box.firstChild.remove();
      if (atBottom) box.scrollTop = box.scrollHeight;
    }

    follow(page, `${fnPath(ns, name)}/logs?follow=true&limit=50`, {
      state: setState,
      event(type, data) {
        if (type === 'lagged') {
          box.appendChild(h('div', { class: 'log-line note', text: `… ${JSON.parse(data).skipped} invocations skipped (this view fell behind)` }));
          return;
        }
        if (type !== 'invocation') return;
        const r = JSON.parse(data);
        if (seen.has(r.id)) return;
        seen.add(r.id);
        if (paused) pending.push(r); else show(r);
      },
    });
  }

  // Reads server-sent events with fetch (EventSource cannot send the Authorization header), reconnecting
  // with backoff while the page is open.
  async function follow(page, path, on) {
    let attempt = 0;
    while (page.alive) {
      const ctrl = new AbortController();
      page.aborts.push(ctrl);
      let why;
      try {
        on.state('idle', 'Connecting…');
        const r = await fetch(path, { headers: { Authorization: `Bearer ${state.token}`, Accept: 'text/event-stream' }, signal: ctrl.signal, cache: 'no-store' });
        if (r.status === 401) { signOut('The node stopped accepting this token. Sign in again.'); return; }
        if (!r.ok) throw await errorFrom(r, 'GET', path);
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value.replace(/\r\n?/g, '\n');
          let cut;
          while ((cut = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, cut);
            buf = buf.slice(cut + 2);
            let type = 'message';
            const data = [];
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) {
                if (line.slice(1).trim() === 'following') { attempt = 0; on.state('live', 'Live — following new invocations'); }
              } else if (line.startsWith('event:')) type = line.slice(6).trim();
              else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
            }
            if (data.length) on.event(type, data.join('\n'));
          }
        }
        why = 'the node closed the stream';
      } catch (e) {
        if (!page.alive || e.name === 'AbortError') return;
        why = describe(e);
      }
      if (!page.alive) return;
      const wait = Math.min(30, 2 ** attempt);
      attempt++;
      on.state('warn', `Disconnected (${why}); reconnecting in ${wait} s`);
      await new Promise((res) => page.timers.push(setTimeout(res, wait * 1000)));
    }
  }

  // ---------- scaling ----------

  const SCALING = [
    ['Instances', [
      ['instance_mode', 'Instance mode', 'fresh: a new instance per request; reuse: warm instances serve request after request'],
      ['min_instances', 'Min instances', 'warm instances kept provisioned (reuse mode)'],
      ['max_instances', 'Max instances', 'concurrent invocations at most; 0 = the node\'s bound'],
      ['max_idle_instances', 'Max idle instances', 'idle warm instances kept at most'],
      ['idle_timeout_seconds', 'Idle timeout', 'seconds before an idle warm instance is dropped'],
      ['max_requests_per_instance', 'Requests per instance', 'a reused instance is replaced after this many'],
    ]],
    ['Queue', [
      ['max_queue_depth', 'Max queue depth', 'requests waiting for an instance; one more gets 429'],
      ['queue_timeout_ms', 'Queue timeout (ms)', 'longest wait for an instance; past it 503'],
      ['reserved_concurrency', 'Reserved concurrency', 'share of the node\'s capacity no other function can take'],
      ['concurrency_per_instance', 'Concurrency per instance', 'requests one instance serves at once (only 1 is accepted)'],
    ]],
    ['Autoscaler', [
      ['target_concurrency', 'Target concurrency', 'in-flight requests per instance to aim for'],
      ['target_utilization_percent', 'Target utilisation (%)', 'share of the target to aim for; the rest is headroom'],
      ['stable_window_seconds', 'Stable window (s)', 'the average load over this window is followed'],
      ['panic_window_percent', 'Panic window (%)', 'share of the stable window used in a burst'],
      ['scale_to_zero_grace_seconds', 'Scale-to-zero grace (s)', 'idle this long, warm instances go (down to min)'],
    ]],
  ];

  async function scalingTab(ctx) {
    const { page, ns, name, body, shown } = ctx;
    const slot = h('div', { id: 'scaling-result' });
    let current = await api('GET', `${fnPath(ns, name)}/scaling`).catch((e) => { body.replaceChildren(errorBox('read the scaling settings', e)); return null; });
    if (!current || !page.alive) return;
    const inputs = {};
    const form = h('form', { class: 'stack', id: 'scaling-form', novalidate: true });
    const fill = () => {
      for (const [key, input] of Object.entries(inputs)) {
        input.value = current[key] === null || current[key] === undefined ? '' : String(current[key]);
        input.closest('.field').classList.remove('changed');
      }
    };
    for (const [group, fields] of SCALING) {
      const grid = h('div', { class: 'form-grid' });
      for (const [key, label, help] of fields) {
        let input;
        if (key === 'instance_mode') {
          input = h('select', { id: `scale-${key}`, name: key },
            h('option', { value: '', text: `default (${shown.function.kind === 'wagi' ? 'by kind' : 'fresh'})` }),
            h('option', { value: 'fresh', text: 'fresh' }), h('option', { value: 'reuse', text: 'reuse' }));
        } else {
          input = h('input', { id: `scale-${key}`, name: key, type: 'number', min: 0, step: 1, inputmode: 'numeric' });
        }
        inputs[key] = input;
        input.addEventListener('input', () => {
          const was = current[key] === null || current[key] === undefined ? '' : String(current[key]);
          input.closest('.field').classList.toggle('changed', input.value !== was);
        });
        grid.appendChild(h('div', { class: 'field' }, h('label', { for: `scale-${key}`, text: label }), input, h('div', { class: 'help', text: help })));
      }
      form.appendChild(card(group, null, grid));
    }
    fill();
    const save = h('button', { type: 'submit', class: 'primary', id: 'scaling-save' }, 'Save changes');
    const reset = h('button', { type: 'button', onclick: () => { fill(); slot.replaceChildren(); } }, 'Discard');
    form.append(h('div', { class: 'form-actions' }, save, reset, h('span', { class: 'muted', text: 'Applied at once, without a redeploy; only changed keys are sent (PATCH).' })));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const patch = {};
      for (const [key, input] of Object.entries(inputs)) {
        const was = current[key] === null || current[key] === undefined ? '' : String(current[key]);
        if (input.value === was) continue;
        if (key === 'instance_mode') patch[key] = input.value || null;
        else {
          if (input.value.trim() === '' || !/^\d+$/.test(input.value.trim())) {
            slot.replaceChildren(alertBox('err', 'Not saved', `${key}: enter a whole number of 0 or more`));
            return;
          }
          patch[key] = Number(input.value);
        }
      }
      if (!Object.keys(patch).length) {
        slot.replaceChildren(alertBox('info', 'Nothing to save', 'Change a setting first.'));
        return;
      }
      save.disabled = true;
      try {
        const before = current;
        current = await api('PATCH', `${fnPath(ns, name)}/scaling`, patch);
        fill();
        const changes = Object.keys(patch).map((k) => `${k} ${before[k] ?? 'default'} → ${current[k] ?? 'default'}`).join(', ');
        slot.replaceChildren(alertBox('ok', 'Scaling saved', changes));
      } catch (err) {
        slot.replaceChildren(alertBox('err', 'The node refused these settings', describe(err)));
      } finally {
        save.disabled = false;
      }
    });
    const auto = h('div');
    body.append(slot, form, auto);
    await page.refresh(async () => {
      const show = await api('GET', fnPath(ns, name));
      if (!page.alive) return;
      ctx.setHead(show);
      auto.replaceChildren(autoscalerCard(show.function));
    }, REFRESH_MS, ctx.errors, 'read the autoscaler state');
  }

  function autoscalerCard(f) {
    const a = f.autoscaler;
    if (!a) return card('Autoscaler decision', null, h('div', { class: 'muted', text: 'No decision yet: the autoscaler steps every second once the function has served.' }));
    const dl = h('dl', { class: 'kv' });
    const row = (k, v) => dl.append(h('dt', { text: k }), h('dd', { text: v }));
    row('Desired instances', String(a.desired));
    row('Ready when decided', String(a.ready));
    row('Mode', a.panicking ? 'panic (following the short window, no scale-down)' : 'stable');
    row('Stable concurrency', a.stable_concurrency.toFixed(2));
    row('Panic concurrency', a.panic_concurrency.toFixed(2));
    row('Recent peak in flight', String(a.recent_peak));
    row('Peak in flight · queued', `${a.peak_in_flight} · ${a.peak_queued}`);
    return card('Autoscaler decision', h('span', { class: 'hint', text: `${f.instance_mode} mode · ${f.idle_instances} idle, ${f.in_flight} running now` }), dl);
  }

  // ---------- revisions ----------

  function revisionsTab(ctx) {
    const { shown, body } = ctx;
    const f = shown.function;
    const revs = [...shown.revisions].reverse();
    const rows = revs.map((r) => h('tr', {},
      h('td', {}, h('code', { text: shortId(r.id), title: r.id }), ' ', r.id === f.revision ? badge('ok', 'serving') : null),
      h('td', { title: dateTime(r.created_at_ms) }, dateTime(r.created_at_ms), h('div', { class: 'faint', text: ago(r.created_at_ms) })),
      h('td', { class: 'muted', text: r.kind }),
      h('td', {}, h('code', { text: shortId(r.artifact), title: `sha256 ${r.artifact}` })),
      h('td', { class: 'num', text: `${r.limits.memory_mb} MiB` }),
      h('td', { class: 'num', text: ms(r.limits.timeout_ms) }),
      h('td', {}, r.env_keys.length ? r.env_keys.map((k) => h('span', { class: 'chip', text: k })) : h('span', { class: 'faint', text: 'none' })),
      h('td', { class: 'num', text: String(Object.keys(r.files || {}).length) })));
    const table = h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, h('th', { text: 'Revision' }), h('th', { text: 'Created' }), h('th', { text: 'Kind' }), h('th', { text: 'Artifact' }),
        h('th', { class: 'num', text: 'Memory' }), h('th', { class: 'num', text: 'Timeout' }), h('th', { text: 'Env keys' }), h('th', { class: 'num', text: 'Files' }))),
      h('tbody', {}, rows)));
    const lim = f.limits;
    const dl = h('dl', { class: 'kv' });
    const row = (k, v) => dl.append(h('dt', { text: k }), h('dd', { text: v }));
    row('Timeout', ms(lim.timeout_ms));
    row('Memory', `${lim.memory_mb} MiB`);
    row('Request body', bytes(lim.max_body_bytes));
    row('Captured output', bytes(lim.max_log_bytes));
    row('WAGI output', bytes(lim.max_output_bytes));
    if (f.load_us !== null && f.load_us !== undefined) row('Code load time', us(f.load_us));
    const triggers = f.triggers && f.triggers.length
      ? h('ul', {}, f.triggers.map((t) => h('li', {}, h('code', { text: t }))))
      : h('div', { class: 'muted', text: 'No event triggers: invoked by its routes, the API and queued events.' });
    body.append(
      h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', { text: 'Revisions' }), h('span', { class: 'hint', text: 'newest first; the one serving is marked' })),
        h('div', { class: 'card-body' }, table)),
      h('div', { class: 'grid2' }, card('Limits', null, dl), card('Triggers', null, triggers)));
  }

  // ---------- usage and cost ----------

  const USAGE_RANGES = { '24h': 86400e3, '7d': 7 * 86400e3, '30d': 30 * 86400e3 };
  const METRICS = {
    cost: ['Cost', (u) => u.cost],
    requests: ['Requests', (u) => u.requests],
    gb_seconds: ['GB-seconds', (u) => u.gb_seconds],
    cpu_ms: ['CPU-ms', (u) => u.cpu_ms],
  };

  async function usagePage() {
    const page = newPage();
    const content = shell('usage');
    const when = h('span');
    const tools = h('div', { class: 'toolbar' });
    content.append(pageHead(null, h('h1', { text: 'Usage & cost' }), [h('span', { text: 'Measured per invocation: GB-s by Lambda\'s rule, CPU-ms, egress · all namespaces' }), when], tools));
    const errors = h('div', { class: 'stack' });
    const body = h('div', { class: 'stack', id: 'usage' }, loading('Loading usage…'));
    content.append(errors, body);
    const drawTools = () => tools.replaceChildren(
      seg(Object.keys(USAGE_RANGES).map((r) => [r, `Last ${r}`]), state.usageRange, (r) => { state.usageRange = r; drawTools(); reload(); }),
      seg([['function', 'By function'], ['namespace', 'By namespace']], state.usageBy, (b) => { state.usageBy = b; drawTools(); reload(); }));
    drawTools();
    const load = async () => {
      const now = Date.now();
      const span = USAGE_RANGES[state.usageRange];
      const since = Math.floor((now - span) / 3600e3) * 3600e3 + 3600e3;
      const until = now + 1;
      const [u, hourly] = await Promise.all([
        api('GET', `${API}/usage?since_ms=${since}&until_ms=${until}&by=${state.usageBy}`),
        api('GET', `${API}/usage/hourly?since_ms=${since}&until_ms=${until}`),
      ]);
      if (!page.alive) return;
      for (const r of u.rows) state.namespaces.add(r.namespace);
      when.replaceChildren(updated());
      body.replaceChildren(...renderUsage(u, hourly, since, until, reload));
    };
    const reload = () => load().catch((e) => errors.replaceChildren(errorBox('load usage', e)));
    await page.refresh(load, REFRESH_MS * 2, errors, 'load usage');
  }

  function priced(p) {
    return p.per_million_requests > 0 || p.per_gb_second > 0 || p.per_million_cpu_ms > 0 || p.per_gb_egress > 0;
  }

  function renderUsage(u, hourly, since, until, reload) {
    const cur = u.currency;
    const isPriced = priced(u.prices);
    const metric = state.usageMetric || (isPriced ? 'cost' : 'requests');
    const [metricLabel, metricOf] = METRICS[metric];
    const fmtMetric = metric === 'cost' ? (v) => money(v, cur) : metric === 'requests' ? int : (v) => compact(v);
    const due = u.bills.reduce((a, b) => a + b.due, 0);
    const credit = u.bills.reduce((a, b) => a + b.credit, 0);
    const t = u.total;
    const stats = h('div', { class: 'stats' },
      stat('Due', money(due, cur), null, isPriced ? `${money(t.cost, cur)} before ${money(credit, cur)} free tier` : 'no prices set: [pricing] in wisp up --config', 'stat-due'),
      stat('Requests', int(t.requests), null, `${int(t.errors)} errors · ${int(t.cold_starts)} cold starts`, 'stat-usage-requests'),
      stat('GB-seconds', compact(t.gb_seconds), null, 'memory limit × wall, rounded up to 1 ms'),
      stat('CPU time', compact(t.cpu_ms), 'ms', `of ${compact(t.wall_ms)} ms wall`),
      stat('Egress', bytes(t.egress_bytes), null, `${bytes(t.bytes_in)} in · ${bytes(t.bytes_out)} out`));
    if (!u.rows.length) {
      return [stats, h('div', { class: 'card' }, empty('usage', 'No usage in this range',
        'Every invocation is metered and summed per hour here (', h('code', { text: 'wisp up --metering on' }), ', the default). Call a function and it shows up within seconds.'))];
    }
    // Hourly series per function (top 6, the rest as "other"), and totals per namespace.
    const step = 3600e3;
    const n = Math.max(1, Math.ceil((until - since) / step));
    const times = Array.from({ length: n }, (_, i) => since + i * step);
    const byFn = new Map();
    const byNs = new Map();
    for (const hr of hourly.hours) {
      const key = `${hr.namespace}/${hr.function}`;
      const v = metricOf(hr);
      byFn.set(key, (byFn.get(key) || 0) + v);
      byNs.set(hr.namespace, (byNs.get(hr.namespace) || 0) + v);
    }
    const top = [...byFn.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6).map(([k]) => k);
    const series = top.map((k, i) => ({ name: k, color: COLORS[i], kind: 'bar', values: new Array(n).fill(0) }));
    const other = { name: 'other', color: COLORS[8], kind: 'bar', values: new Array(n).fill(0) };
    for (const hr of hourly.hours) {
      const i = Math.floor((hr.hour_ms - since) / step);
      if (i < 0 || i >= n) continue;
      const k = top.indexOf(`${hr.namespace}/${hr.function}`);
      (k >= 0 ? series[k] : other).values[i] += metricOf(hr);
    }
    if (other.values.some((v) => v > 0)) series.push(other);
    const metricSeg = seg(Object.entries(METRICS).map(([k, [label]]) => [k, label]), metric, (m) => { state.usageMetric = m; reload(); });
    const chart = h('section', { class: 'card chart-card', id: 'usage-chart' },
      h('div', { class: 'card-head' }, h('div', { class: 'chart-meta' }, h('h2', { text: `${metricLabel} per hour, by function` })), metricSeg),
      h('div', { class: 'card-body' }, C.legend(series), C.timeChart({ times, step, since, until: since + n * step, series, stacked: true, height: 220, fmt: fmtMetric, empty: 'Nothing in this range' })));
    const nsItems = [...byNs.entries()].sort((a, b) => b[1] - a[1]).map(([k, v], i) => ({ label: k, value: v, color: COLORS[i % COLORS.length] }));
    const fnItems = [...byFn.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([k, v]) => ({ label: k, value: v, color: COLORS[top.indexOf(k) >= 0 ? top.indexOf(k) : 8] }));
    const breakdown = h('div', { class: 'grid2' },
      card(`${metricLabel} by namespace`, null, C.barList(nsItems, fmtMetric)),
      card(`${metricLabel} by function`, h('span', { class: 'hint', text: 'top 10' }), C.barList(fnItems, fmtMetric)));
    const byFunction = u.by === 'function';
    const rows = u.rows.slice().sort((a, b) => b.cost - a.cost || b.requests - a.requests).map((r) => h('tr', { 'data-function': r.function || '', 'data-namespace': r.namespace },
      h('td', {}, h('span', { class: 'muted', text: r.namespace })),
      byFunction ? h('td', {}, h('a', { class: 'fn-name', href: `#/fn/${enc(r.namespace)}/${enc(r.function)}`, text: r.function })) : null,
      h('td', { class: 'num', text: int(r.requests) }),
      h('td', { class: 'num', text: int(r.errors) }),
      h('td', { class: 'num', text: int(r.cold_starts) }),
      h('td', { class: 'num', text: dec(r.gb_seconds, 4) }),
      h('td', { class: 'num', text: dec(r.cpu_ms, 1) }),
      h('td', { class: 'num', text: dec(r.wall_ms, 1) }),
      h('td', { class: 'num', text: bytes(r.egress_bytes) }),
      h('td', { class: 'num', text: money(r.cost, cur) })));
    const table = h('section', { class: 'card', id: 'usage-table' },
      h('div', { class: 'card-head' }, h('h2', { text: byFunction ? 'Per function' : 'Per namespace' }), h('span', { class: 'hint', text: 'cost before the free tier' })),
      h('div', { class: 'card-body' }, h('div', { class: 'table-wrap' }, h('table', {},
        h('thead', {}, h('tr', {}, h('th', { text: 'Namespace' }), byFunction ? h('th', { text: 'Function' }) : null, h('th', { class: 'num', text: 'Requests' }),
          h('th', { class: 'num', text: 'Errors' }), h('th', { class: 'num', text: 'Cold' }), h('th', { class: 'num', text: 'GB-s' }),
          h('th', { class: 'num', text: 'CPU-ms' }), h('th', { class: 'num', text: 'Wall ms' }), h('th', { class: 'num', text: 'Egress' }), h('th', { class: 'num', text: 'Cost' }))),
        h('tbody', {}, rows),
        h('tfoot', {}, h('tr', {}, h('td', { text: 'Total' }), byFunction ? h('td') : null, h('td', { class: 'num', text: int(t.requests) }),
          h('td', { class: 'num', text: int(t.errors) }), h('td', { class: 'num', text: int(t.cold_starts) }), h('td', { class: 'num', text: dec(t.gb_seconds, 4) }),
          h('td', { class: 'num', text: dec(t.cpu_ms, 1) }), h('td', { class: 'num', text: dec(t.wall_ms, 1) }), h('td', { class: 'num', text: bytes(t.egress_bytes) }),
          h('td', { class: 'num', text: money(t.cost, cur) })))))));
    const bills = h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, h('th', { text: 'Namespace' }), h('th', { class: 'num', text: 'Gross' }), h('th', { class: 'num', text: 'Free tier' }), h('th', { class: 'num', text: 'Due' }))),
      h('tbody', {}, u.bills.map((b) => h('tr', {}, h('td', { text: b.namespace }), h('td', { class: 'num', text: money(b.gross, cur) }),
        h('td', { class: 'num', text: b.credit ? `− ${money(b.credit, cur)}` : money(0, cur) }), h('td', { class: 'num' }, h('b', { text: money(b.due, cur) })))))));
    const p = u.prices;
    const dl = h('dl', { class: 'kv' });
    const row = (k, v) => dl.append(h('dt', { text: k }), h('dd', { text: v }));
    row('Per million requests', money(p.per_million_requests, cur));
    row('Per GB-second', money(p.per_gb_second, cur));
    row('Per million CPU-ms', money(p.per_million_cpu_ms, cur));
    row('Per GB egress', money(p.per_gb_egress, cur));
    row('Free per namespace', `${int(p.free.requests)} requests · ${compact(p.free.gb_seconds)} GB-s · ${compact(p.free.cpu_ms)} CPU-ms · ${compact(p.free.egress_gb)} GB egress`);
    return [stats, chart, breakdown, table, h('div', { class: 'grid2' },
      card('Bills', h('span', { class: 'hint', text: 'free tier credited per namespace' }), bills),
      card('Price sheet', h('span', { class: 'hint', text: '[pricing] of wisp up --config' }), dl))];
  }

  // ---------- node ----------

  async function nodePage() {
    const page = newPage();
    const content = shell('node');
    const when = h('span');
    content.append(pageHead(null, h('h1', { text: 'Node' }), [h('span', { text: location.host }), when]));
    const errors = h('div', { class: 'stack' });
    const body = h('div', { class: 'stack', id: 'node' }, loading());
    content.append(errors, body);
    await page.refresh(async () => {
      const s = await api('GET', `${API}/status`);
      if (!page.alive) return;
      state.node = s;
      state.nodeAt = Date.now();
      when.replaceChildren(updated());
      const dl = h('dl', { class: 'kv' });
      const row = (k, v) => dl.append(h('dt', { text: k }), h('dd', {}, v));
      row('Version', s.version);
      row('Up for', duration(s.uptime_seconds));
      row('Engine', h('code', { text: s.engine }));
      row('Compilations', `${int(s.compilations)} since start (0 when everything came from the compiled cache)`);
      const trig = s.triggers.length ? h('div', { class: 'table-wrap' }, h('table', {},
        h('thead', {}, h('tr', {}, h('th', { text: 'Function' }), h('th', { text: 'Kind' }), h('th', { text: 'Source' }), h('th', { text: 'State' }),
          h('th', { class: 'num', text: 'Messages' }), h('th', { text: 'Last message' }))),
        h('tbody', {}, s.triggers.map((t) => h('tr', {},
          h('td', {}, h('a', { href: `#/fn/${enc(t.namespace)}/${enc(t.function)}`, text: `${t.namespace}/${t.function}` })),
          h('td', { text: t.kind }), h('td', {}, h('code', { text: t.source })),
          h('td', {}, badge(['connected', 'listening', 'scheduled', 'subscribed'].includes(t.state) ? 'ok' : 'warn', t.state, t.last_error || undefined),
            t.last_error ? h('div', { class: 'faint', text: t.last_error }) : null),
          h('td', { class: 'num', text: int(t.messages_in) }),
          h('td', { class: 'muted', text: t.last_message_ms ? ago(t.last_message_ms) : 'never' }))))))
        : h('div', { class: 'muted', text: 'No event triggers on this node (cron, topics, Redis, MQTT, NATS, webhooks).' });
      body.replaceChildren(
        h('div', { class: 'stats' },
          stat('Functions serving', int(s.functions)),
          stat('Records written', int(s.records.written), null, 'since start'),
          stat('Records dropped', int(s.records.dropped), null, s.records.dropped ? 'the records channel was full' : 'none lost'),
          stat('Outbound connections', int(s.outbound_connections.open), null, `${int(s.outbound_connections.idle)} idle in pools`)),
        card('This node', null, dl), card('Triggers', h('span', { class: 'hint', text: 'event sources of every namespace' }), trig));
    }, REFRESH_MS, errors, 'read the node status');
  }

  // ---------- routing ----------

  function route() {
    if (!state.token) {
      if (location.hash !== '#/login') { location.hash = '#/login'; return; }
      renderLogin();
      return;
    }
    const parts = (location.hash.replace(/^#\/?/, '') || 'functions').split('/').filter(Boolean).map((p) => {
      try { return decodeURIComponent(p); } catch (_) { return p; }
    });
    const [first, ...rest] = parts;
    const run = (p) => p && p.catch((e) => console.error(e));
    switch (first) {
      case 'login': location.hash = '#/functions'; return;
      case 'functions': return run(functionsPage());
      case 'fn':
        if (rest.length >= 2) return run(functionPage(rest[0], rest[1], rest[2] || 'overview'));
        break;
      case 'usage': return run(usagePage());
      case 'node': return run(nodePage());
      default: break;
    }
    newPage();
    const content = shell(null);
    content.append(h('div', { class: 'card' }, empty('alert', 'No such page', `Nothing lives at ${location.hash}. `, h('a', { href: '#/functions', text: 'Go to the functions' }))));
  }

  applyTheme();
  window.addEventListener('hashchange', route);
  if (state.token) {
    // A token from earlier in this tab: check it is still good before showing anything.
    request('GET', `${API}/status`).then((s) => {
      state.node = s;
      state.nodeAt = Date.now();
      route();
      learnNamespaces();
    }, (e) => {
      if (e instanceof ApiError && e.status === 401) signOut(`The node no longer accepts the token this tab had (${e.message}).`);
      else {
        root.className = '';
        root.replaceChildren(h('div', { class: 'login-wrap' }, h('div', { class: 'card login' }, errorBox('reach the node', e),
          h('div', { class: 'form-actions' }, h('button', { type: 'button', onclick: () => location.reload() }, 'Try again')))));
      }
    });
  } else {
    route();
  }
})();
