// page-audit.js — the audit log: who did what, to which agency and object,
// newest first, with each change's diff; filters (agency, actor, action)
// kept in the URL, older/newer paging.
import { api, qs, fetchAll } from './api.js';
import { h, clear, table, hashQuery, field, formError, showErrors, clearErrors, fmtDate } from './ui.js';

const ACTIONS = [
  ['', 'Any action'], ['auth', 'Logins'], ['agency', 'Agency changes'], ['agency.update', '… settings and name'],
  ['agency.delete', '… deletions'], ['api_key', 'API keys'], ['snapshot', 'Snapshots'], ['job', 'Jobs (retry, cancel)'],
  ['user', 'Users'], ['task', 'Tasks'],
];

function short(v) {
  if (v === null || v === undefined) return '∅';
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > 120 ? `${s.slice(0, 117)}…` : s;
}

// A diff [{path, from, to}] as a list; another object as its JSON.
function changes(diff) {
  if (!diff) return '';
  if (!Array.isArray(diff)) return h('code', { class: 'diff-text', text: short(diff) });
  if (!diff.length) return h('span', { class: 'muted', text: 'no change' });
  return h('ul', { class: 'diff' }, diff.map((d) => h('li', {},
    h('code', { text: d.path }), ': ',
    h('del', { text: short(d.from) }), ' → ', h('ins', { text: short(d.to) }))));
}

function actor(a) {
  if (a.kind === 'agent') return h('span', { class: 'muted', text: 'the agent' });
  const label = a.label || `${a.kind} ${a.id || ''}`;
  return a.kind === 'api_key' ? h('span', {}, 'key ', h('code', { text: label })) : label;
}

export async function render(main, ctx) {
  const query = hashQuery();
  const agencies = await fetchAll('/agencies', {}, 1000).catch(() => []);
  if (ctx.stale()) return;
  const names = new Map(agencies.map((a) => [a.id, a.name]));
  const agencySel = h('select', { id: 'audit-agency' },
    h('option', { value: '', text: 'All agencies' }),
    agencies.map((a) => h('option', { value: a.id, text: a.name, selected: a.id === query.agency_id })));
  const who = h('input', { type: 'search', id: 'audit-actor', value: query.actor || '', placeholder: 'email or id' });
  const action = h('select', { id: 'audit-action' },
    ACTIONS.map(([v, t]) => h('option', { value: v, text: t, selected: (query.action || '') === v })));
  const list = h('div', { id: 'audit-list' });
  const pager = h('div', { class: 'pager' });
  const errors = h('div', {}, formError());
  const cursors = [''];

  async function load() {
    clearErrors(errors);
    const page = await api('GET', `/audit${qs({
      agency_id: agencySel.value, actor: who.value.trim(), action: action.value, limit: 50, cursor: cursors.at(-1),
    })}`);
    if (ctx.stale()) return;
    clear(list, table([
      { title: 'When', cell: (e) => fmtDate(e.at) },
      { title: 'Who', cell: (e) => actor(e.actor) },
      { title: 'Action', cell: (e) => h('code', { text: e.action }) },
      { title: 'Agency', cell: (e) => (e.agency_id ? e.agency_name || names.get(e.agency_id) || e.agency_id : '—') },
      { title: 'Object', cell: (e) => (e.target ? h('code', { class: 'wrap', text: e.target }) : '—') },
      { title: 'Changes', class: 'diff-cell', cell: (e) => changes(e.diff) },
    ], page.items, 'Nothing recorded matches.'));
    clear(pager,
      cursors.length > 1 ? h('button', { type: 'button', text: '← Newer', onclick: () => { cursors.pop(); load(); } }) : null,
      page.next_cursor ? h('button', { type: 'button', text: 'Older →', onclick: () => { cursors.push(page.next_cursor); load(); } }) : null);
  }

  const filters = h('form', { class: 'toolbar', id: 'audit-filters' },
    field('Agency', agencySel), field('Who', who), field('Action', action),
    h('button', { type: 'submit', text: 'Filter' }));
  const apply = (ev) => {
    if (ev) ev.preventDefault();
    cursors.length = 1;
    history.replaceState(null, '', `#/audit${qs({ agency_id: agencySel.value, actor: who.value.trim(), action: action.value })}`);
    load().catch((e) => showErrors(errors, e));
  };
  filters.addEventListener('submit', apply);
  agencySel.addEventListener('change', apply);
  action.addEventListener('change', apply);
  clear(main, h('div', { class: 'page-head' }, h('h1', { text: 'Audit log' })),
    h('p', { class: 'muted', text: 'Every change made through the API or this dashboard, recorded with the change itself. Nothing here can be edited.' }),
    filters, errors, list, pager);
  await load();
}
