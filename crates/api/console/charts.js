// wisp console charts: time series (lines, areas, stacked bars) and bar lists, drawn as SVG.
// No library; sizes follow the container (ResizeObserver), values show on hover.
'use strict';

(() => {
  const NS = 'http://www.w3.org/2000/svg';

  function s(tag, attrs) {
    const el = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== undefined && v !== null) el.setAttribute(k, String(v));
    }
    return el;
  }

  function div(cls, text) {
    const el = document.createElement('div');
    if (cls) el.className = cls;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  // Round tick steps: 1, 2, 2.5, 5 × 10^n, about `count` of them from 0 to at least `max`.
  function niceTicks(max, count) {
    if (!(max > 0)) return { top: 1, ticks: [0, 1] };
    const raw = max / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw) || 10 * mag;
    const top = Math.ceil(max / step - 1e-9) * step;
    const ticks = [];
    for (let v = 0; v <= top + step / 2; v += step) ticks.push(+v.toPrecision(12));
    return { top, ticks };
  }

  const TIME_STEPS = [
    10e3, 15e3, 30e3, 60e3, 2 * 60e3, 5 * 60e3, 10 * 60e3, 15 * 60e3, 30 * 60e3, 3600e3, 2 * 3600e3,
    3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 86400e3, 2 * 86400e3, 7 * 86400e3,
  ];

  function pad(n) { return String(n).padStart(2, '0'); }

  function timeLabel(t, span) {
    const d = new Date(t);
    if (span > 3 * 86400e3) return `${d.toLocaleString(undefined, { month: 'short' })} ${d.getDate()}`;
    if (span > 86400e3 && d.getHours() === 0 && d.getMinutes() === 0) {
      return `${d.toLocaleString(undefined, { month: 'short' })} ${d.getDate()}`;
    }
    return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }

  function timeTicks(t0, t1, maxTicks) {
    const span = t1 - t0;
    const step = TIME_STEPS.find((st) => span / st <= maxTicks) || TIME_STEPS[TIME_STEPS.length - 1];
    // Align to local time (whole minutes/hours/days in the viewer's zone).
    const offset = new Date(t0).getTimezoneOffset() * 60e3;
    let t = Math.ceil((t0 - offset) / step) * step + offset;
    const out = [];
    for (; t <= t1; t += step) out.push(t);
    return out;
  }

  function fullTime(t, step) {
    const d = new Date(t);
    const day = d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
    const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}${step < 60e3 ? ':' + pad(d.getSeconds()) : ''}`;
    if (!step) return `${day} ${hm}`;
    const e = new Date(t + step);
    const ehm = `${pad(e.getHours())}:${pad(e.getMinutes())}${step < 60e3 ? ':' + pad(e.getSeconds()) : ''}`;
    return `${day} ${hm}–${ehm}`;
  }

  // A time chart.
  // opts: { times: [t_ms], step: ms, since, until, series: [{ name, color, values: [number|null], kind:
  //   'line'|'area'|'bar' }], fmt: v => string (axis and tooltip), height, stacked (bars), empty: text }
  function timeChart(opts) {
    const box = div('chart');
    box.setAttribute('role', 'img');
    const tip = div('chart-tip');
    box.appendChild(tip);
    let lastWidth = 0;
    const draw = () => {
      const width = Math.max(240, Math.round(box.clientWidth || 560));
      if (width === lastWidth) return;
      lastWidth = width;
      const old = box.querySelector('svg');
      if (old) old.remove();
      box.insertBefore(render(opts, width, tip, box), tip);
    };
    if (typeof ResizeObserver !== 'undefined') {
      new ResizeObserver(() => draw()).observe(box);
    }
    requestAnimationFrame(draw);
    // A first drawing for callers that measure before a frame (and for screenshots).
    box.insertBefore(render(opts, 560, tip, box), tip);
    return box;
  }

  function render(opts, width, tip, box) {
    const height = opts.height || 190;
    const fmt = opts.fmt || ((v) => String(v));
    const m = { top: 10, right: 12, bottom: 24, left: 0 };
    const n = opts.times.length;
    const series = opts.series;
    const bars = series.filter((se) => se.kind === 'bar');
    const lines = series.filter((se) => se.kind !== 'bar');
    // Highest value drawn: stacked bars add up.
    let max = 0;
    for (let i = 0; i < n; i++) {
      let stack = 0;
      for (const se of bars) {
        const v = se.values[i] || 0;
        if (opts.stacked) stack += v; else stack = Math.max(stack, v);
      }
      max = Math.max(max, stack);
      for (const se of lines) if (se.values[i] != null) max = Math.max(max, se.values[i]);
    }
    const { top, ticks } = niceTicks(max, 4);
    // Left margin from the widest tick label.
    const labelW = Math.max(...ticks.map((t) => fmt(t).length)) * 6.6 + 10;
    m.left = Math.max(30, Math.ceil(labelW));
    const w = width - m.left - m.right;
    const h = height - m.top - m.bottom;
    const t0 = opts.since;
    const t1 = opts.until;
    const step = opts.step;
    const x = (t) => m.left + ((t - t0) / (t1 - t0)) * w;
    const y = (v) => m.top + h - (v / top) * h;
    const svg = s('svg', { width, height, viewBox: `0 0 ${width} ${height}` });

    const axis = s('g', { class: 'axis' });
    for (const t of ticks) {
      const yy = Math.round(y(t)) + 0.5;
      axis.appendChild(s('line', { x1: m.left, x2: width - m.right, y1: yy, y2: yy, class: t === 0 ? 'baseline' : 'gridline' }));
      const label = s('text', { x: m.left - 8, y: yy + 4, 'text-anchor': 'end' });
      label.textContent = fmt(t);
      axis.appendChild(label);
    }
    for (const t of timeTicks(t0, t1, Math.max(2, Math.floor(w / 90)))) {
      const label = s('text', { x: x(t), y: height - 6, 'text-anchor': 'middle' });
      label.textContent = timeLabel(t, t1 - t0);
      axis.appendChild(label);
    }
    svg.appendChild(axis);

    const hasData = series.some((se) => se.values.some((v) => v != null && v > 0));
    if (!hasData) {
      const t = s('text', { x: m.left + w / 2, y: m.top + h / 2, 'text-anchor': 'middle', class: 'nodata' });
      t.textContent = opts.empty || 'Nothing in this range';
      svg.appendChild(t);
    }

    // Bars: one slot per bucket, stacked or side by side.
    const slot = (step / (t1 - t0)) * w;
    const barW = Math.max(1, Math.min(slot * 0.72, 28));
    const barsG = s('g', { class: 'bars' });
    for (let i = 0; i < n; i++) {
      let base = 0;
      const cx = x(opts.times[i]) + slot / 2;
      bars.forEach((se, k) => {
        const v = se.values[i] || 0;
        if (v <= 0) return;
        let bx = cx - barW / 2;
        let bw = barW;
        let yTop;
        let yBot;
        if (opts.stacked || bars.length === 1) {
          yBot = y(base);
          yTop = y(base + v);
          base += v;
        } else {
          bw = barW / bars.length;
          bx = cx - barW / 2 + k * bw;
          yBot = y(0);
          yTop = y(v);
        }
        const hgt = Math.max(1.5, yBot - yTop);
        barsG.appendChild(s('rect', {
          class: 'bar', x: bx.toFixed(2), y: (yBot - hgt).toFixed(2), width: bw.toFixed(2),
          height: hgt.toFixed(2), rx: Math.min(2, bw / 3), fill: se.color,
        }));
      });
    }
    svg.appendChild(barsG);

    // Lines and areas, broken where a bucket has no value.
    for (const se of lines) {
      let d = '';
      let area = '';
      let run = [];
      const flush = () => {
        if (!run.length) return;
        const pts = run.map(([t, v]) => [x(t + step / 2), y(v)]);
        if (pts.length === 1) {
          svg.appendChild(s('circle', { cx: pts[0][0], cy: pts[0][1], r: 2.5, fill: se.color }));
        }
        d += pts.map((p, j) => `${j ? 'L' : 'M'}${p[0].toFixed(2)},${p[1].toFixed(2)}`).join('');
        if (se.kind === 'area' && pts.length > 1) {
          area += `M${pts[0][0].toFixed(2)},${y(0)}` + pts.map((p) => `L${p[0].toFixed(2)},${p[1].toFixed(2)}`).join('')
            + `L${pts[pts.length - 1][0].toFixed(2)},${y(0)}Z`;
        }
        run = [];
      };
      for (let i = 0; i < n; i++) {
        const v = se.values[i];
        if (v == null) flush(); else run.push([opts.times[i], v]);
      }
      flush();
      if (area) svg.appendChild(s('path', { d: area, fill: se.color, 'fill-opacity': 0.12, stroke: 'none' }));
      if (d) {
        svg.appendChild(s('path', {
          d, fill: 'none', stroke: se.color, 'stroke-width': 1.8, 'stroke-linejoin': 'round', 'stroke-linecap': 'round',
          class: 'line',
        }));
      }
    }

    // Hover: a guide line and the bucket's values.
    const guide = s('line', { class: 'guide', y1: m.top, y2: m.top + h, x1: 0, x2: 0, visibility: 'hidden' });
    svg.appendChild(guide);
    const overlay = s('rect', { x: m.left, y: m.top, width: w, height: h, fill: 'transparent' });
    overlay.addEventListener('mousemove', (ev) => {
      const rect = svg.getBoundingClientRect();
      const px = ((ev.clientX - rect.left) / rect.width) * width;
      const t = t0 + ((px - m.left) / w) * (t1 - t0);
      let i = Math.floor((t - t0) / step);
      i = Math.max(0, Math.min(n - 1, i));
      if (!n) return;
      const gx = x(opts.times[i]) + slot / 2;
      guide.setAttribute('x1', gx);
      guide.setAttribute('x2', gx);
      guide.setAttribute('visibility', 'visible');
      tip.replaceChildren(div('tip-time', fullTime(opts.times[i], step)));
      for (const se of series) {
        const row = div('tip-row');
        const name = document.createElement('span');
        const sw = document.createElement('i');
        sw.style.background = se.color;
        name.append(sw, ' ', se.name);
        const val = document.createElement('b');
        const v = se.values[i];
        val.textContent = v == null ? '—' : fmt(v);
        row.append(name, val);
        tip.appendChild(row);
      }
      tip.style.display = 'block';
      const bw = box.clientWidth || width;
      const left = (gx / width) * bw;
      const tw = tip.offsetWidth;
      tip.style.left = `${Math.min(Math.max(0, left + 12), bw - tw)}px`;
      tip.style.top = '4px';
    });
    overlay.addEventListener('mouseleave', () => {
      tip.style.display = 'none';
      guide.setAttribute('visibility', 'hidden');
    });
    svg.appendChild(overlay);
    return svg;
  }

  // A small sparkline of `values` (bars), for tables.
  function sparkline(values, color, width, height) {
    width = width || 96;
    height = height || 24;
    const svg = s('svg', { width, height, viewBox: `0 0 ${width} ${height}`, class: 'spark' });
    const max = Math.max(0, ...values);
    const n = values.length || 1;
    const slot = width / n;
    values.forEach((v, i) => {
      const hh = max > 0 ? Math.max(v > 0 ? 1.5 : 0, (v / max) * (height - 2)) : 0;
      if (hh <= 0) return;
      svg.appendChild(s('rect', {
        x: (i * slot + slot * 0.12).toFixed(2), y: (height - hh).toFixed(2), width: Math.max(0.8, slot * 0.76).toFixed(2),
        height: hh.toFixed(2), fill: color,
      }));
    });
    svg.appendChild(s('line', { x1: 0, x2: width, y1: height - 0.5, y2: height - 0.5, class: 'baseline', stroke: 'currentColor', 'stroke-opacity': 0.15 }));
    return svg;
  }

  // Horizontal bars: [{ label, value, color }], largest first.
  function barList(items, fmt) {
    const list = div('barlist');
    const max = Math.max(0, ...items.map((it) => it.value));
    for (const it of items) {
      const row = div('row');
      const name = div('name', it.label);
      name.title = it.label;
      const track = div('track');
      const fill = div('fill');
      fill.style.width = `${max > 0 ? Math.max(1, (it.value / max) * 100) : 0}%`;
      fill.style.background = it.color;
      track.appendChild(fill);
      const val = div('num', fmt(it.value));
      row.append(name, track, val);
      list.appendChild(row);
    }
    return list;
  }

  function legend(series) {
    const el = div('legend');
    for (const se of series) {
      const item = document.createElement('span');
      const sw = document.createElement('i');
      sw.style.background = se.color;
      item.append(sw, se.name);
      el.appendChild(item);
    }
    return el;
  }

  window.WispCharts = { timeChart, sparkline, barList, legend, niceTicks, fullTime };
})();
