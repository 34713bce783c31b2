// page-drift.js — reconciliation's report (GET /reports/drift): what GHL no
// longer shows of COMPLETED jobs' work (a deleted location, a failed snapshot
// push, a removed user, the app uninstalled), open or resolved, by kind, with
// a link to each job. Found every reconcile_interval or by `ghl-agent reconcile`.
import { api, qs } from './api.js';
import { h, clear, table, fmtDate, hashQuery, select } from './ui.js';

const kinds = ['', 'location_missing', 'snapshot_failed', 'user_missing', 'app_uninstalled'];

export async function render(main, ctx) {
  const query = hashQuery();
  const kind = select(kinds.map((k) => [k, k ? k.replace('_', ' ') : 'Any kind']), query.kind || '');
  kind.id = 'drift-kind';
  const state = select([['true', 'Open'], ['false', 'Resolved']], query.open === 'false' ? 'false' : 'true');
  state.id = 'drift-open';
  const list = h('div', { id: 'drift-list' });
  const pager = h('div', { class: 'pager' });
  const cursors = [''];

  async function load() {
    const params = { kind: kind.value, open: state.value, agency_id: query.agency_id, limit: 50, cursor: cursors.at(-1) };
    const page = await api('GET', `/reports/drift${qs(params)}`);
    if (ctx.stale()) return;
    const resolved = state.value === 'false';
    clear(list, table([
      { title: 'Kind', cell: (d) => h('span', { class: `badge ${resolved ? 'badge-completed' : 'badge-failed'}`, text: d.kind.replace('_', ' ') }) },
      { title: 'Job', cell: (d) => h('a', { href: `#/jobs/${d.job_id}`, text: d.job_id.slice(0, 8) }) },
      { title: 'Location', cell: (d) => h('code', { text: d.location_id || '—' }) },
      { title: 'Detail', cell: (d) => d.detail || '—' },
      { title: 'First seen', cell: (d) => fmtDate(d.first_seen) },
      { title: resolved ? 'Resolved' : 'Last seen', cell: (d) => fmtDate(resolved ? d.resolved_at : d.last_seen) },
    ], page.items, resolved ? 'No resolved drift.' : 'No open drift: every checked job still matches GHL.'));
    clear(pager,
      cursors.length > 1 ? h('button', { type: 'button', text: '← Newer', onclick: () => { cursors.pop(); load(); } }) : null,
      page.next_cursor ? h('button', { type: 'button', text: 'Older →', onclick: () => { cursors.push(page.next_cursor); load(); } }) : null);
  }

  for (const el of [kind, state])
    el.addEventListener('change', () => {
      cursors.length = 1;
      load();
    });
  clear(main,
    h('div', { class: 'page-head' }, h('h1', { text: 'Drift' })),
    h('p', { class: 'muted', text: 'Completed jobs whose work GHL no longer shows, found by reconciliation (every reconcile_interval, or `ghl-agent reconcile`) and GHL webhooks.' }),
    h('div', { class: 'toolbar' }, h('label', { class: 'inline' }, 'Kind ', kind), h('label', { class: 'inline' }, 'Show ', state)), list, pager);
  await load();
}
