// page-agencies.js — the agencies in the caller's scope: search, paging, and
// "Connect with GHL" (GET /oauth/connect, sent with the session cookie).
import { api, qs } from './api.js';
import { h, clear, table, fmtDate, hashQuery } from './ui.js';

export function connectLink(text = 'Connect with GHL') {
  return h('a', { class: 'button', href: '/oauth/connect', id: 'connect-ghl', text });
}

function connection(a) {
  if (a.needs_reconnect) return h('span', { class: 'badge badge-failed', title: a.reconnect_reason || '', text: 'Needs reconnect' });
  if (!a.token_expires_at) return h('span', { class: 'badge', text: 'Not connected' });
  return h('span', { class: 'badge badge-completed', text: 'Connected' });
}

export async function render(main, ctx) {
  const query = hashQuery();
  const search = h('input', { type: 'search', placeholder: 'Name contains…', value: query.q || '', id: 'agency-search' });
  const list = h('div', { id: 'agency-list' });
  const pager = h('div', { class: 'pager' });
  const cursors = [''];

  async function load() {
    const page = await api('GET', `/agencies${qs({ q: search.value.trim(), limit: 50, cursor: cursors.at(-1) })}`);
    if (ctx.stale()) return;
    clear(list, table([
      { title: 'Name', cell: (a) => h('a', { href: `#/agencies/${a.id}`, text: a.name }) },
      { title: 'GHL agency', cell: (a) => h('code', { text: a.ghl_agency_id || '—' }) },
      { title: 'Connection', cell: connection },
      { title: 'Token expires', cell: (a) => fmtDate(a.token_expires_at) },
      { title: 'Jobs', cell: (a) => h('a', { href: `#/jobs?agency_id=${a.id}`, text: 'Jobs' }) },
      { title: 'Snapshots', cell: (a) => h('a', { href: `#/snapshots?agency=${a.id}`, text: 'Snapshots' }) },
      { title: 'Created', cell: (a) => fmtDate(a.created_at) },
    ], page.items, 'No agencies yet. Connect one with GHL.'));
    clear(pager,
      cursors.length > 1 ? h('button', { type: 'button', text: '← Newer', onclick: () => { cursors.pop(); load(); } }) : null,
      page.next_cursor ? h('button', { type: 'button', text: 'Older →', onclick: () => { cursors.push(page.next_cursor); load(); } }) : null);
  }

  const form = h('form', { class: 'toolbar', role: 'search' }, h('label', { class: 'inline' }, 'Name ', search), h('button', { type: 'submit', text: 'Search' }));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    cursors.length = 1;
    load();
  });
  clear(main,
    h('div', { class: 'page-head' }, h('h1', { text: 'Agencies' }), ctx.can.connect ? connectLink() : null),
    ctx.can.connect ? h('p', { class: 'muted', text: 'Connecting sends you to GoHighLevel to approve the app; the agency appears here when you come back.' }) : null,
    form, list, pager);
  await load();
}
