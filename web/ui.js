// ui.js — DOM helpers shared by the pages. Text always goes in through
// textContent / text nodes: nothing from the server is ever parsed as HTML.

// h('a', {href: '#/x', class: 'btn', onclick: fn, dataset: {id: 1}}, 'text', node…)
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function fmtDate(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return d.toLocaleString(undefined, {
    year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
}

export function fmtDuration(ms) {
  if (ms === undefined || ms === null || Number.isNaN(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

export function badge(status) {
  return h('span', { class: `badge badge-${String(status || '').toLowerCase()}`, text: status || '—' });
}

// A table: columns [{title, cell: row => node|string}], rows, empty text.
// Each cell carries its column's title (data-label): narrow screens show
// every row as a card of "title: value" lines (style.css).
// cls: more classes for the table.
export function table(columns, rows, emptyText = 'Nothing here yet.', cls = '') {
  if (!rows.length) return h('p', { class: 'muted empty', text: emptyText });
  return h('table', { class: cls ? `grid ${cls}` : 'grid' },
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { text: c.title })))),
    h('tbody', {}, rows.map((r) => h('tr', { dataset: r.id ? { id: r.id } : undefined },
      columns.map((c) => h('td', { class: c.class, 'data-label': c.title || undefined }, c.cell(r)))))));
}

// A labelled form field; `field` is the API's name for it (errors land below).
export function field(label, input, field, hint) {
  if (field) input.name = input.name || field;
  return h('label', { class: 'field', dataset: field ? { field } : undefined },
    h('span', { class: 'label', text: label }), input,
    hint ? h('small', { class: 'hint', text: hint }) : null,
    h('span', { class: 'field-error', role: 'alert' }));
}

// Name the form controls under root that no <label> names, for screen
// readers: from the placeholder, else a select's first option ("All
// statuses"). Pages should label their fields (field()); this is the net.
export function nameControls(root) {
  for (const el of root.querySelectorAll('select, input:not([type=hidden]), textarea')) {
    if ((el.labels && el.labels.length) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')) continue;
    const name = el.getAttribute('placeholder') || (el.options && el.options.length ? el.options[0].text : '');
    if (name) el.setAttribute('aria-label', name);
    el.dataset.autoLabel = ''; // the browser test lists these: the page should label them
  }
}

export function select(options, value) {
  return h('select', {}, options.map(([v, label]) => h('option', { value: v, text: label, selected: v === value })));
}

// Remove the error texts shown by showErrors in root.
export function clearErrors(root) {
  for (const el of root.querySelectorAll('.field-error')) el.textContent = '';
  for (const el of root.querySelectorAll('.has-error')) el.classList.remove('has-error');
  for (const el of root.querySelectorAll('.form-error')) el.replaceChildren();
}

// A CSV upload's problem paths as the file's reader sees them:
// "line[3].client_data.email" → "line 3 (email)", the line as an editor numbers it.
function csvLines(text) {
  return String(text || '').replace(/\bline\[(\d+)\](?:\.client_data)?(?:\.([\w.]+))?/g,
    (m, n, col) => (col ? `line ${n} (${col})` : `line ${n}`));
}

// Show an ApiError in root: each details[] entry next to the element whose
// data-field is the longest prefix of its field ("settings.pipeline[1]" takes
// "settings.pipeline[1].config.role"); the rest, and the message, in the
// root's .form-error box.
export function showErrors(root, err) {
  clearErrors(root);
  const box = root.querySelector('.form-error');
  const targets = [...root.querySelectorAll('[data-field]')];
  const unplaced = [];
  for (const d of err.details || []) {
    const name = String(d.field || '');
    let best = null;
    for (const t of targets) {
      const f = t.dataset.field;
      if ((name === f || name.startsWith(`${f}.`) || name.startsWith(`${f}[`)) &&
          (!best || f.length > best.dataset.field.length)) best = t;
    }
    const rest = best ? name.slice(best.dataset.field.length).replace(/^\./, '') : '';
    const msg = rest ? `${rest}: ${d.message}` : d.message;
    const slot = best && best.querySelector(':scope > .field-error');
    if (slot) {
      slot.append(h('span', { class: 'msg', text: msg }));
      best.classList.add('has-error');
    } else {
      unplaced.push(d);
    }
  }
  if (!box) return;
  let text = csvLines(err.message);
  // the server's 429 messages say when already; add it only to one that does not
  if (err.status === 429 && err.retryAfter && !/try again|retry after/i.test(text)) text += ` (try again in ${err.retryAfter} s)`;
  box.append(h('p', { text }));
  if (unplaced.length) {
    const shown = unplaced.slice(0, 100);
    box.append(h('ul', {}, shown.map((d) => h('li', { text: d.field ? `${csvLines(d.field)}: ${d.message}` : d.message }))));
    if (unplaced.length > shown.length) box.append(h('p', { text: `… and ${unplaced.length - shown.length} more` }));
  }
}

export function formError() {
  return h('div', { class: 'form-error', role: 'alert' });
}

let flashTimer = null;
export function flash(text, kind = 'ok') {
  const box = document.getElementById('flash');
  clear(box, h('p', { class: `flash flash-${kind}`, text }));
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => box.replaceChildren(), 6000);
}

// Run fn with button disabled; errors go to onError (default: flash).
export async function busy(button, fn, onError) {
  button.disabled = true;
  try {
    await fn();
  } catch (e) {
    if (onError) onError(e);
    else flash(e.message, 'error');
  } finally {
    button.disabled = false;
  }
}

// 32 hex characters from the browser's CSPRNG (works outside secure contexts).
export function randomKey() {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

// The hash route's query as an object ("#/jobs?status=FAILED").
export function hashQuery() {
  const i = location.hash.indexOf('?');
  return i < 0 ? {} : Object.fromEntries(new URLSearchParams(location.hash.slice(i + 1)));
}

export function pretty(value) {
  return h('pre', { class: 'json', text: JSON.stringify(value, null, 2) });
}
