// page-batch.js — one upload (a batch of jobs from a CSV or JSON batch): its
// progress (jobs finished of total, counted per state) and its jobs, refreshed
// in place every few seconds until every job has finished.
import { api, qs } from './api.js';
import { h, clear, badge, fmtDate, showErrors, clearErrors, formError } from './ui.js';
import { keyedTable } from './jobs-table.js';

const REFRESH_MS = 4000;
const FINAL = ['COMPLETED', 'FAILED', 'CANCELLED'];

export async function render(main, ctx, agencyId, batchId) {
  const title = h('h1', { text: 'Upload' });
  const meta = h('p', { class: 'muted', id: 'batch-meta' });
  const bar = h('progress', { id: 'batch-progress', max: 1, value: 0 });
  const summary = h('span', { id: 'batch-summary', class: 'batch-summary' });
  const states = h('ul', { class: 'batch-states', id: 'batch-states' });
  const errors = h('div', {}, formError());
  const more = h('p', { class: 'muted' });
  const jobs = keyedTable([
    { title: 'Client', key: (j) => j.client_data.name || '', cell: (j) => h('a', { href: `#/jobs/${j.id}`, text: j.client_data.name || '(no name)' }) },
    { title: 'Email', key: (j) => j.client_data.email || '', cell: (j) => j.client_data.email || '' },
    { title: 'Status', class: 'status-cell', key: (j) => j.status, cell: (j) => badge(j.status) },
    { title: 'Error', class: 'error-cell', key: (j) => j.error_message || '', cell: (j) => j.error_message || '' },
  ], 'No jobs left in this batch (finished jobs are archived after a while).');
  let timer = null;

  async function load() {
    try {
      const [b, page] = await Promise.all([
        api('GET', `/agencies/${agencyId}/batches/${batchId}`),
        api('GET', `/jobs${qs({ batch_id: batchId, agency_id: agencyId, limit: 50, include_total: true })}`),
      ]);
      if (ctx.stale()) return;
      clearErrors(errors); // a refresh that failed before: the page is current again
      title.textContent = b.filename ? `Upload: ${b.filename}` : `Upload (${b.source.toUpperCase()})`;
      meta.textContent = `${b.source.toUpperCase()} · ${b.total} job${b.total === 1 ? '' : 's'} · uploaded ${fmtDate(b.created_at)}`
        + (b.completed_at ? ` · all finished ${fmtDate(b.completed_at)}` : '');
      bar.max = Math.max(b.total, 1);
      bar.value = b.finished;
      summary.textContent = `${b.finished} of ${b.total} finished${b.completed_at ? ' — done' : ''}`;
      clear(states, Object.entries(b.progress).filter(([, n]) => n > 0)
        .map(([s, n]) => h('li', { dataset: { state: s } }, badge(s), ` ${n}`)));
      jobs.update(page.items);
      clear(more, page.total > page.items.length
        ? h('a', { href: `#/jobs${qs({ batch_id: batchId })}`, text: `All ${page.total} jobs of this upload in the jobs list` }) : null);
      const open = page.items.some((j) => !FINAL.includes(j.status)) || !b.completed_at;
      if (!open && timer) {
        clearInterval(timer);
        timer = null;
      }
    } catch (e) {
      if (!ctx.stale()) showErrors(errors, e);
    }
  }

  clear(main,
    h('div', { class: 'page-head' }, title),
    h('p', {}, h('a', { href: `#/jobs${qs({ batch_id: batchId })}`, text: '← Jobs of this upload' })),
    meta, errors,
    h('div', { class: 'card batch-card' }, h('div', { class: 'batch-bar' }, bar, summary), states),
    h('h2', { text: 'Jobs' }), jobs.el, more);
  await load();
  timer = setInterval(() => {
    if (!document.hidden) load();
  }, REFRESH_MS);
  return () => timer && clearInterval(timer);
}
