// page-job.js — one job: its state, client data, retry/cancel, "Edit and
// retry" and "Clone" (job-fix.js), and the full timeline of its pinned
// pipeline with each step's attempts, outputs and GHL requests
// (job-timeline.js), refreshed while the job is not finished.
import { api } from './api.js';
import { jobActions, cancelNote } from './page-jobs.js';
import { jobTaskLink } from './page-tasks.js';
import { h, clear, badge, fmtDate, pretty, formError, showErrors, clearErrors } from './ui.js';
import { renderTimeline, openSteps, tickTimers } from './job-timeline.js';
import { fixForm } from './job-fix.js';

const REFRESH_MS = 3000;
const FINISHED = ['COMPLETED', 'FAILED', 'CANCELLED'];

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
  const fix = h('div', { id: 'job-fix' });
  const steps = h('div', { id: 'timeline' });
  const data = h('div', { class: 'columns' });
  const errors = h('div', {}, formError());
  // a failed refresh: said here (what the buttons said stays in `errors`), gone with the next answer
  const refreshErrors = h('div', { id: 'job-refresh-error' }, formError());
  let timer = null;
  let ticker = null;
  let offset = 0;
  let agencyName = null;
  let needs = null;

  // "Edit and retry" / "Clone": the form under the facts (one at a time).
  async function openFix(job, mode) {
    if (needs === null)
      needs = await api('GET', `/agencies/${job.agency_id}`).then((a) => a.required_client_fields || []).catch(() => []);
    clear(fix, fixForm(job, mode, needs, async (res) => {
      fix.replaceChildren();
      if (mode === 'clone') location.hash = `#/jobs/${res.id}`;
      else await load();
    }, () => fix.replaceChildren()));
    fix.scrollIntoView({ block: 'nearest' });
  }

  function fixButtons(job) {
    if (!ctx.can.submitJobs(job.agency_id)) return [];
    const out = [];
    if (job.status === 'FAILED')
      out.push(h('button', { type: 'button', class: 'small', id: 'edit-retry', text: 'Edit and retry', onclick: () => openFix(job, 'edit').catch((e) => showErrors(errors, e)) }));
    if (FINISHED.includes(job.status))
      out.push(h('button', { type: 'button', class: 'small secondary', id: 'clone-job', text: 'Clone', onclick: () => openFix(job, 'clone').catch((e) => showErrors(errors, e)) }));
    return out;
  }

  async function load() {
    const [job, tl, task] = await Promise.all([api('GET', `/jobs/${id}`), api('GET', `/jobs/${id}/timeline`),
      jobTaskLink(id)]);
    if (ctx.stale()) return;
    clearErrors(refreshErrors);
    if (agencyName === null)
      agencyName = await api('GET', `/agencies/${job.agency_id}`).then((a) => a.name).catch(() => '');
    clear(head, h('h1', { id: 'job-title', text: job.client_data.name || 'Job' }),
      h('span', { class: 'row' }, badge(job.status), jobActions(job, ctx, load, (e) => showErrors(errors, e)), fixButtons(job)));
    clear(facts, info(job, agencyName, task));
    offset = new Date(tl.server_time).getTime() - Date.now();
    renderTimeline(steps, tl, openSteps(steps));
    clear(data,
      h('div', {}, h('h2', { text: 'Client data' }), pretty(job.client_data)),
      h('div', {}, h('h2', { text: 'All outputs' }), pretty(job.outputs || {})));
    const finished = FINISHED.includes(job.status);
    if (finished && timer) {
      clearInterval(timer);
      timer = null;
    } else if (!finished && !timer) {
      timer = setInterval(() => {
        if (!document.hidden) load().catch((e) => showErrors(refreshErrors, { ...e, message: `Could not update this job: ${e.message}` }));
      }, REFRESH_MS);
    }
  }

  clear(main, h('p', { class: 'crumbs' }, h('a', { href: '#/jobs', text: 'Jobs' }), ' / ', h('code', { text: id })),
    head, errors, refreshErrors, facts, fix, steps, data);
  await load();
  ticker = setInterval(() => tickTimers(steps, offset), 1000);
  return () => {
    if (timer) clearInterval(timer);
    clearInterval(ticker);
  };
}
