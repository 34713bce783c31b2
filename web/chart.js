// chart.js — the dashboard's charts: small SVG drawn here, no library (no
// dependency to vet and pin, nothing loaded from elsewhere, and no inline
// style or script, so the strict CSP holds). Colours come from classes in
// style.css. Every chart has a text alternative: an aria-label that says what
// it shows and a table of the same numbers (in a <details> under it).
import { h } from './ui.js';

const SVG = 'http://www.w3.org/2000/svg';

function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children) if (c) el.append(c);
  return el;
}

// A round upper bound for an axis: 1, 2, 5 × 10^n.
export function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// Stacked bars, one per row: rows [{label, ...}], series [{key, label}]
// (the class of a segment is `s-<key>`), title for the aria-label and the
// table's caption; opts.width, the drawing's width (720; less on a phone, so
// that the scaled-down ticks stay readable). Returns a <figure>.
export function stackedBars(rows, series, title, opts = {}) {
  const w = opts.width || 720, hgt = opts.height || 200, left = 34, bottom = 22, top = 8;
  const total = (r) => series.reduce((n, x) => n + (r[x.key] || 0), 0);
  const max = niceMax(Math.max(0, ...rows.map(total)));
  const plotW = w - left - 4, plotH = hgt - top - bottom;
  const step = rows.length ? plotW / rows.length : plotW;
  const barW = Math.max(2, step * 0.7);
  const y = (v) => top + plotH - (v / max) * plotH;
  const svg = s('svg', { viewBox: `0 0 ${w} ${hgt}`, class: 'chart', role: 'img', 'aria-label': `${title}: ${summary(rows, series, total)}` });
  for (const t of Number.isInteger(max / 2) ? [0, max / 2, max] : [0, max]) {
    svg.append(s('line', { x1: left, x2: w - 4, y1: y(t), y2: y(t), class: 'axis' }));
    const lab = s('text', { x: left - 4, y: y(t) + 4, 'text-anchor': 'end', class: 'tick' });
    lab.textContent = String(Math.round(t));
    svg.append(lab);
  }
  rows.forEach((r, i) => {
    const x = left + i * step + (step - barW) / 2;
    let acc = 0;
    for (const x2 of series) {
      const v = r[x2.key] || 0;
      if (!v) continue;
      const rect = s('rect', { x: x.toFixed(1), y: y(acc + v).toFixed(1), width: barW.toFixed(1), height: ((v / max) * plotH).toFixed(1), class: `s-${x2.key}` });
      const tip = s('title');
      tip.textContent = `${r.label}: ${v} ${x2.label.toLowerCase()}`;
      rect.append(tip);
      svg.append(rect);
      acc += v;
    }
    const every = Math.ceil(rows.length / 8);
    const last = i === rows.length - 1;
    if ((i % every === 0 && (last || rows.length - 1 - i >= every)) || last) {
      const lab = s('text', { x: (x + barW / 2).toFixed(1), y: hgt - 6, 'text-anchor': 'middle', class: 'tick' });
      lab.textContent = r.short || r.label;
      svg.append(lab);
    }
  });
  const legend = h('ul', { class: 'legend' }, series.map((x) => h('li', {}, h('span', { class: `swatch s-${x.key}`, 'aria-hidden': 'true' }), x.label)));
  const data = h('details', { class: 'chart-table' }, h('summary', { text: 'Show the numbers' }),
    h('table', { class: 'grid' }, h('caption', { text: title }),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: opts.rowTitle || 'Day' }), series.map((x) => h('th', { scope: 'col', text: x.label })), h('th', { scope: 'col', text: 'Total' }))),
      h('tbody', {}, rows.map((r) => h('tr', {}, h('th', { scope: 'row', text: r.label }), series.map((x) => h('td', { 'data-label': x.label, text: String(r[x.key] || 0) })), h('td', { 'data-label': 'Total', text: String(total(r)) }))))));
  return h('figure', { class: 'chart-box' }, svg, legend, data);
}

function summary(rows, series, total) {
  const sums = series.map((x) => `${rows.reduce((n, r) => n + (r[x.key] || 0), 0)} ${x.label.toLowerCase()}`);
  return `${rows.reduce((n, r) => n + total(r), 0)} jobs over ${rows.length} days (${sums.join(', ')})`;
}

// A horizontal meter for a share 0…1 (null: no data), labelled for screen readers.
export function meter(share, label, kind = '') {
  const known = share !== null && share !== undefined && Number.isFinite(share);
  const pct = known ? Math.max(0, Math.min(1, share)) * 100 : 0;
  const svg = s('svg', { viewBox: '0 0 100 8', class: `meter ${kind}`, role: 'img', 'aria-label': known ? `${label}: ${pct.toFixed(1)}%` : `${label}: no data`, preserveAspectRatio: 'none' },
    s('rect', { x: 0, y: 0, width: 100, height: 8, class: 'meter-bg' }),
    known ? s('rect', { x: 0, y: 0, width: pct.toFixed(2), height: 8, class: 'meter-fill' }) : null);
  return svg;
}
