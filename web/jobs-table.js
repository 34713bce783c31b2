// jobs-table.js — a table whose rows are keyed by id and patched in place:
// update(items) keeps every row's <tr> and rebuilds only the cells whose
// signature (column.key(item)) changed, moves rows only when the order did,
// and drops rows that left. The periodic refresh of the jobs list then
// changes what changed, without the columns jumping or a checkbox, focus or
// text selection being lost.
import { h, clear } from './ui.js';

// A text title labels its column's cells when narrow screens show rows as
// cards (style.css); a node title (the select-all box) does not.
function label(c) {
  return typeof c.title === 'string' && c.title ? c.title : undefined;
}

// columns: [{title (text or node), class, key: item => string, cell: item => node|string}]
export function keyedTable(columns, emptyText) {
  const tbody = h('tbody');
  const grid = h('table', { class: 'grid keyed', hidden: true },
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { class: c.class }, c.title)))), tbody);
  const empty = h('p', { class: 'muted empty', text: emptyText, hidden: true });
  const rows = new Map(); // id → {tr, tds, sigs}

  function row(item) {
    let r = rows.get(item.id);
    if (!r) {
      r = { tr: h('tr', { dataset: { id: item.id } }), tds: columns.map((c) => h('td', { class: c.class, 'data-label': label(c) })), sigs: [] };
      r.tr.append(...r.tds);
      rows.set(item.id, r);
    }
    columns.forEach((c, i) => {
      const sig = c.key ? c.key(item) : JSON.stringify(item);
      if (r.sigs[i] !== sig) {
        clear(r.tds[i], c.cell(item));
        r.sigs[i] = sig;
      }
    });
    return r.tr;
  }

  function update(items) {
    const seen = new Set();
    let prev = null;
    for (const item of items) {
      seen.add(item.id);
      const tr = row(item);
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== tr) tbody.insertBefore(tr, want);
      prev = tr;
    }
    for (const [id, r] of rows) {
      if (!seen.has(id)) {
        r.tr.remove();
        rows.delete(id);
      }
    }
    grid.hidden = !items.length;
    empty.hidden = !!items.length;
  }

  return { el: h('div', { class: 'keyed-table' }, grid, empty), update };
}
