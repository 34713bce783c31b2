// page-job.js — one job: its state, client data and outputs, retry/cancel,
// and the step timeline rebuilt from the audit log (STARTED paired with
// COMPLETED/FAILED per attempt), refreshed while the job is not finished.
import { api, fetchAll } from './api.js';
import { jobActions, cancelNote } from './page-jobs.js';
import { jobTaskLink } from './page-tasks.js';
import { h, clear, table, badge, fmtDate, fmtDuration, pretty, formError, showErrors } from './ui.js';

const REFRESH_MS = 3000;

// Log entries (newest first) → timeline rows, oldest first.
export function timeline(logs) {
  const rows = [];
  const open = new Map();
  for (const log of [...logs].reverse()) {
    const d = log.details || {};
    const key = `${d.attempt ?? ''}|${d.index ?? ''}|${log.step}|${d.compensate ? 1 : 0}`;
    if (log.status === 'STARTED') {
      const row = { key, step: log.step, index: d.index, attempt: d.attempt, compensate: !!d.compensate, status: 'RUNNING', started: log.timestamp, details: d };
      open.set(key, row);
      rows.push(row);
      continue;
    }
    let row = open.get(key);
    if (!row) {
      row = { key, step: log.step, index: d.index, attempt: d.attempt, compensate: !!d.compensate, started: null };
      rows.push(row);
    }
    open.delete(key);
    Object.assign(row, { status: log.status, ended: log.timestamp, details: d });
  }
  return rows;
}

function duration(row) {
  if (typeof row.details.duration_ms === 'number') return fmtDuration(row.details.duration_ms);
  if (row.started && row.ended) return fmtDuration(new Date(row.ended) - new Date(row.started));
  return row.status === 'RUNNING' ? 'running…' : '—';
}

function info(job, agencyName, task) {
  const item = (k, v) => [h('dt', { text: k }), h('dd', {}, v)];
  return h('dl', { class: 'facts' },
    item('Status', [badge(job.status), cancelNote(job)]),
    task ? item('Task', task) : null,
    item('Agency', h('a', { href: `#/agencies/${job.agency_id}`, text: agencyName || job.agency_id })),
    item('Attempt', `${job.attempt ?? 0} (retries used: ${job.retry_count})`),
    item('Location', job.location_id ? h('code', { text: job.location_id }) : '—'),
    item('Snapshot', job.snapshot_id ? h('code', { text: job.snapshot_id }) : '—'),
    item('Idempotency key', job.idempotency_key || '—'),
    item('Created', fmtDate(job.created_at)),
    item('Started', fmtDate(job.started_at)),
    item('Finished', fmtDate(job.finished_at)),
    item('Next run', job.status === 'RETRYING' || job.status === 'PENDING' ? fmtDate(job.run_at) : '—'),
    job.error_message ? item('Error', h('span', { class: 'error-text', id: 'job-error', text: job.error_message })) : null);
}

export async function render(main, ctx, id) {
  const head = h('div', { class: 'page-head' });
  const facts = h('div', {});
  const steps = h('div', { id: 'timeline' });
  const data = h('div', { class: 'columns' });
  const errors = h('div', {}, formError());
  let timer = null;
  let agencyName = null;

  async function load() {
    const [job, logs, task] = await Promise.all([api('GET', `/jobs/${id}`), fetchAll(`/jobs/${id}/logs`, {}, 2000),
      jobTaskLink(id)]);
    if (ctx.stale()) return;
    if (agencyName === null)
      agencyName = await api('GET', `/agencies/${job.agency_id}`).then((a) => a.name).catch(() => '');
    clear(head, h('h1', { id: 'job-title', text: job.client_data.name || 'Job' }),
      h('span', { class: 'row' }, badge(job.status), jobActions(job, ctx, load, (e) => showErrors(errors, e))));
    clear(facts, info(job, agencyName, task));
    const rows = timeline(logs);
    clear(steps, h('h2', { text: 'Steps' }), table([
      { title: '#', cell: (r) => (r.index === undefined ? '' : String(r.index + 1)) },
      { title: 'Step', class: 'step-name', cell: (r) => [r.step, r.compensate ? h('small', { text: ' (undo)' }) : null] },
      { title: 'Attempt', cell: (r) => (r.attempt === undefined ? '' : String(r.attempt)) },
      { title: 'Status', class: 'step-status', cell: (r) => badge(r.status) },
      { title: 'Started', cell: (r) => fmtDate(r.started) },
      { title: 'Duration', cell: duration },
      { title: 'GHL status', cell: (r) => (r.details.ghl_status ? String(r.details.ghl_status) : '') },
      { title: 'Trace id', cell: (r) => (r.details.trace_id ? h('code', { text: r.details.trace_id }) : '') },
      { title: 'Error', class: 'error-cell', cell: (r) => r.details.error || '' },
    ], rows, 'No step has run yet.'));
    clear(data,
      h('div', {}, h('h2', { text: 'Client data' }), pretty(job.client_data)),
      h('div', {}, h('h2', { text: 'Step outputs' }), pretty(job.outputs || {})));
    const finished = job.status === 'COMPLETED' || job.status === 'FAILED';
    if (finished && timer) {
      clearInterval(timer);
      timer = null;
    } else if (!finished && !timer) {
      timer = setInterval(() => { if (!document.hidden) load().catch((e) => showErrors(errors, e)); }, REFRESH_MS);
    }
  }

  clear(main, h('p', { class: 'crumbs' }, h('a', { href: '#/jobs', text: 'Jobs' }), ' / ', h('code', { text: id })),
    head, errors, facts, steps, data);
  await load();
  return () => { if (timer) clearInterval(timer); };
}
