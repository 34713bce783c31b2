// page-jobs.js — the jobs table (filters and search in the URL, cursor paging,
// the total, refreshed every few seconds in place: jobs-table.js), retry/cancel
// one or many selected jobs, the submit form and the CSV bulk upload.
import { api, qs, fetchAll, upload, newestOnly } from './api.js';
import {
  h, clear, badge, fmtDate, flash, busy, hashQuery, field, formError, showErrors, clearErrors, randomKey,
} from './ui.js';
import { keyedTable } from './jobs-table.js';

const REFRESH_MS = 4000;
const STATUSES = ['PENDING', 'IN_PROGRESS', 'RETRYING', 'COMPLETED', 'FAILED', 'CANCELLED'];
const CLIENT_FIELDS = [
  ['name', 'Client name *', 'text'], ['email', 'Email *', 'email'], ['first_name', 'First name', 'text'],
  ['last_name', 'Last name', 'text'], ['phone', 'Phone (E.164)', 'tel'], ['country', 'Country (2 letters)', 'text'],
  ['timezone', 'Time zone (IANA)', 'text'], ['external_id', 'External id', 'text'],
];

// A running job being cancelled finishes the step it is in first: say which.
export function cancelNote(job) {
  if (!job.cancel_requested || job.status !== 'IN_PROGRESS') return null;
  const text = job.current_step
    ? ` cancelling: stops after ${job.current_step}`
    : ' cancelling: stops after its current step';
  return h('small', { class: 'cancel-note', text });
}

// No Retry on CANCELLED: it is final (the API answers 409).
export function jobActions(job, ctx, after, onError) {
  if (!ctx.can.retryCancel) return [];
  const out = [];
  if (job.status === 'FAILED') {
    const b = h('button', { type: 'button', class: 'small', text: 'Retry', dataset: { action: 'retry' } });
    b.addEventListener('click', () => busy(b, async () => {
      await api('POST', `/jobs/${job.id}/retry`);
      flash('The job will run again from its first unfinished step.');
      await after();
    }, onError));
    out.push(b);
  }
  if (['PENDING', 'RETRYING', 'IN_PROGRESS'].includes(job.status) && !job.cancel_requested) {
    const b = h('button', { type: 'button', class: 'small danger', text: 'Cancel', dataset: { action: 'cancel' } });
    b.addEventListener('click', () => {
      if (!confirm('Cancel this job?')) return;
      busy(b, async () => {
        const res = await api('POST', `/jobs/${job.id}/cancel`);
        flash(res && res.status === 'CANCELLED' ? 'Job cancelled.'
          : 'Cancel requested: the job stops after its current step.');
        await after();
      }, onError);
    });
    out.push(b);
  }
  return out;
}

function agencyOptions(agencies, selected, blank) {
  return [blank ? h('option', { value: '', text: blank }) : null,
    ...agencies.map((a) => h('option', { value: a.id, text: a.name, selected: a.id === selected }))];
}

function submitForm(agencies, initialAgency, done) {
  const agency = h('select', { id: 'job-agency' }, agencyOptions(agencies, initialAgency));
  const snapshot = h('select', { id: 'job-snapshot' });
  const inputs = {};
  const labels = {};
  const fields = CLIENT_FIELDS.map(([k, label, type]) => {
    inputs[k] = h('input', { type, id: `job-${k.replace('_', '-')}` });
    const f = field(label, inputs[k], `client_data.${k}`);
    labels[k] = [f.querySelector('.label'), label.replace(/ \*$/, '')];
    return f;
  });

  // The fields the agency's pipeline needs (GET /agencies/{id} required_client_fields)
  // are marked required, with the steps needing them as the input's title.
  async function markRequired() {
    let needs = [];
    try {
      if (agency.value) needs = (await api('GET', `/agencies/${agency.value}`)).required_client_fields || [];
    } catch {
      // unknown: only name and email stay marked
    }
    for (const [k, [span, base]] of Object.entries(labels)) {
      const need = needs.find((n) => n.field === k);
      const req = k === 'name' || k === 'email' || !!need;
      span.textContent = req ? `${base} *` : base;
      inputs[k].required = req;
      if (need) inputs[k].title = `required by ${need.steps.join(', ')}`;
      else inputs[k].removeAttribute('title');
    }
  }
  const tags = h('input', { type: 'text', id: 'job-tags', placeholder: 'dental, vip' });
  const submit = h('button', { type: 'submit', id: 'job-submit', text: 'Submit job' });
  let idemKey = randomKey(); // one key per filled form: a double click cannot create two jobs

  async function loadSnapshots() {
    clear(snapshot, h('option', { value: '', text: 'No snapshot' }));
    if (!agency.value) return;
    try {
      const snaps = await fetchAll(`/agencies/${agency.value}/snapshots`, { active: 'true' }, 400);
      snapshot.append(...snaps.map((s) => h('option', { value: s.id, text: s.niche ? `${s.name} (${s.niche})` : s.name })));
    } catch {
      // the list stays "No snapshot"
    }
  }
  agency.addEventListener('change', loadSnapshots);
  agency.addEventListener('change', markRequired);
  loadSnapshots();
  markRequired();

  const form = h('form', { id: 'job-form', novalidate: true },
    h('div', { class: 'row' }, field('Agency', agency, 'agency'), field('Snapshot', snapshot, 'snapshot_id')),
    h('div', { class: 'grid-form' }, fields, field('Tags (comma separated)', tags, 'client_data.tags')),
    formError(), submit);
  form.addEventListener('input', () => { idemKey = randomKey(); });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const client = {};
    for (const [k, input] of Object.entries(inputs)) if (input.value.trim()) client[k] = input.value.trim();
    const tagList = tags.value.split(',').map((t) => t.trim()).filter(Boolean);
    if (tagList.length) client.tags = tagList;
    const body = { client_data: client };
    if (snapshot.value) body.snapshot_id = snapshot.value;
    busy(submit, async () => {
      const job = await api('POST', `/agencies/${agency.value}/jobs`, body, { headers: { 'Idempotency-Key': idemKey } });
      idemKey = randomKey();
      for (const input of [...Object.values(inputs), tags]) input.value = '';
      flash(`Job queued for ${job.client_data.name}.`);
      await done(job);
    }, (e) => showErrors(form, e));
  });
  return form;
}

function csvForm(agencies, initialAgency, done) {
  const agency = h('select', { id: 'csv-agency' }, agencyOptions(agencies, initialAgency));
  const file = h('input', { type: 'file', accept: '.csv,text/csv', id: 'csv-file' });
  const progress = h('progress', { max: 100, value: 0, hidden: true });
  const status = h('span', { class: 'muted' });
  const send = h('button', { type: 'submit', text: 'Upload' });
  const form = h('form', { id: 'csv-form', novalidate: true },
    h('p', { class: 'muted', text: 'A header row naming columns such as name,email,first_name,last_name,phone,tags,custom_values.KEY,snapshot_id; tags separated by ";". All rows are checked first: if one is wrong, nothing is stored.' }),
    h('div', { class: 'row' }, field('Agency', agency, 'agency'), field('CSV file', file, 'file')),
    h('div', { class: 'row' }, send, progress, status), formError());
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const f = file.files[0];
    if (!f) {
      showErrors(form, { message: 'Choose a CSV file first.', details: [{ field: 'file', message: 'required' }] });
      return;
    }
    progress.hidden = false;
    progress.value = 0;
    status.textContent = 'Uploading…';
    busy(send, async () => {
      const res = await upload(`/agencies/${agency.value}/jobs/batch${qs({ filename: f.name })}`, f, 'text/csv', (sent, total) => {
        progress.value = total ? Math.round((sent / total) * 100) : 100;
        if (sent >= total) status.textContent = 'Checking the rows…';
      });
      status.textContent = `${res.count} jobs queued. `;
      if (res.batch_id) status.append(h('a', { href: `#/batches/${agency.value}/${res.batch_id}`, id: 'csv-batch-link', text: 'Follow the batch' }));
      file.value = '';
      flash(`${res.count} jobs queued from ${f.name}.`);
      await done();
    }, (e) => {
      progress.hidden = true; // not a full bar: nothing was stored
      status.textContent = e.status === 422
        ? 'Nothing was stored: fix the lines listed below and upload the file again.'
        : 'Nothing was stored: see why below, then upload the file again.';
      showErrors(form, e);
    });
  });
  return form;
}

// "12 jobs", "more than 10,000 jobs" (total_exact false: the API counts up to there).
function totalText(page) {
  if (typeof page.total !== 'number') return '';
  const n = page.total.toLocaleString();
  if (!page.total_exact) return `more than ${n} jobs`;
  return page.total === 1 ? '1 job' : `${n} jobs`;
}

// Retry or cancel the selected jobs: one POST …/jobs/bulk per agency; a flash
// sums up what happened (and why some were skipped).
async function bulkAction(action, jobs) {
  const byAgency = new Map();
  for (const j of jobs) byAgency.set(j.agency_id, [...(byAgency.get(j.agency_id) || []), j.id]);
  let ok = 0;
  const skipped = [];
  for (const [agencyId, ids] of byAgency) {
    const res = await api('POST', `/agencies/${agencyId}/jobs/bulk`, { action, job_ids: ids });
    ok += res.succeeded;
    for (const r of res.results) if (r.outcome === 'invalid_state' || r.outcome === 'not_found') skipped.push(r);
  }
  const done = action === 'retry' ? 'will run again' : 'cancelled or stopping after their current step';
  let text = `${ok} job${ok === 1 ? '' : 's'} ${done}.`;
  if (skipped.length) text += ` ${skipped.length} skipped: ${skipped[0].message || skipped[0].outcome}${skipped.length > 1 ? ', …' : ''}`;
  flash(text, ok || !skipped.length ? 'ok' : 'error');
}

export async function render(main, ctx) {
  const q = hashQuery();
  const agencies = await fetchAll('/agencies', {}, 1000);
  if (ctx.stale()) return null;
  const names = new Map(agencies.map((a) => [a.id, a.name]));
  const search = h('input', {
    type: 'search', id: 'filter-q', value: q.q || '', placeholder: 'Name, email, job id or location id',
    'aria-label': 'Search jobs', maxlength: 200,
  });
  const status = h('select', { id: 'filter-status', 'aria-label': 'Status' }, h('option', { value: '', text: 'Any status' }),
    STATUSES.map((s) => h('option', { value: s, text: s, selected: q.status === s })));
  const agency = h('select', { id: 'filter-agency', 'aria-label': 'Agency' }, agencyOptions(agencies, q.agency_id, 'Any agency'));
  const after = h('input', { type: 'date', value: q.created_after || '', title: 'Created on or after' });
  const before = h('input', { type: 'date', value: q.created_before || '', title: 'Created before' });
  const auto = h('input', { type: 'checkbox', checked: true, id: 'auto-refresh' });
  const pager = h('div', { class: 'pager' });
  const errors = h('div', {}, formError());
  const updated = h('span', { class: 'muted small' });
  const total = h('span', { id: 'job-total', class: 'job-total' });
  const batchNote = h('p', { class: 'muted', id: 'batch-filter' });
  const cursors = [''];
  // a filter change, a page turn or a submission while a refresh is in flight
  // loads at once; only the newest answer is shown (the refresh timer waits)
  const start = newestOnly();
  let inFlight = 0;

  // selection: kept across refreshes and pages (id → the job as last seen)
  const selected = new Map();
  const count = h('span', { id: 'bulk-count' });
  const bulkButtons = ['retry', 'cancel'].map((action) => {
    const b = h('button', {
      type: 'button', class: action === 'cancel' ? 'small danger' : 'small', id: `bulk-${action}`,
      text: action === 'retry' ? 'Retry selected' : 'Cancel selected',
    });
    b.addEventListener('click', () => {
      if (action === 'cancel' && !confirm(`Cancel ${selected.size} job(s)?`)) return;
      busy(b, async () => {
        await bulkAction(action, [...selected.values()]);
        setSelection([]);
        await load();
      }, (e) => showErrors(errors, e));
    });
    return b;
  });
  const clearSel = h('button', { type: 'button', class: 'small link', text: 'Clear', onclick: () => setSelection([]) });
  const bulkBar = h('div', { class: 'bulk-bar', id: 'bulk-bar', hidden: true, role: 'region', 'aria-label': 'Selected jobs' },
    count, ...bulkButtons, clearSel);
  const pageAll = h('input', { type: 'checkbox', id: 'select-page', 'aria-label': 'Select the jobs on this page' });
  let pageItems = [];

  function showSelection() {
    bulkBar.hidden = selected.size === 0;
    count.textContent = `${selected.size} selected`;
    for (const box of main.querySelectorAll('input.job-select')) box.checked = selected.has(box.value);
    pageAll.checked = pageItems.length > 0 && pageItems.every((j) => selected.has(j.id));
  }
  function setSelection(jobs) {
    selected.clear();
    for (const j of jobs) selected.set(j.id, j);
    showSelection();
  }
  pageAll.addEventListener('change', () => {
    for (const j of pageItems) {
      if (pageAll.checked) selected.set(j.id, j);
      else selected.delete(j.id);
    }
    showSelection();
  });

  const short = (id) => id.slice(0, 8);
  const columns = [
    ctx.can.retryCancel ? {
      title: pageAll, class: 'select-cell', key: (j) => j.id,
      cell: (j) => {
        const box = h('input', { type: 'checkbox', class: 'job-select', value: j.id, 'aria-label': `Select ${j.client_data.name || j.id}` });
        box.checked = selected.has(j.id);
        box.addEventListener('change', () => {
          if (box.checked) selected.set(j.id, j);
          else selected.delete(j.id);
          showSelection();
        });
        return box;
      },
    } : null,
    { title: 'Created', class: 'created-cell', key: (j) => j.created_at, cell: (j) => h('a', { href: `#/jobs/${j.id}`, text: fmtDate(j.created_at) }) },
    {
      title: 'Client', key: (j) => `${j.client_data.name}|${j.client_data.email}`,
      cell: (j) => [h('a', { href: `#/jobs/${j.id}`, class: 'client-name', text: j.client_data.name || '(no name)' }), h('br'), h('small', { class: 'muted', text: j.client_data.email || '' })],
    },
    { title: 'Agency', class: 'agency-cell', key: (j) => j.agency_id, cell: (j) => names.get(j.agency_id) || j.agency_id },
    { title: 'Status', class: 'status-cell', key: (j) => `${j.status}|${j.cancel_requested}|${j.current_step}`, cell: (j) => [badge(j.status), cancelNote(j)] },
    { title: 'Retries', class: 'retries-cell', key: (j) => String(j.retry_count), cell: (j) => String(j.retry_count) },
    {
      title: 'Batch', class: 'batch-cell', key: (j) => j.batch_id || '',
      cell: (j) => (j.batch_id ? h('a', { href: `#/batches/${j.agency_id}/${j.batch_id}`, class: 'batch-link', title: j.batch_id, text: short(j.batch_id) }) : ''),
    },
    { title: 'Error', class: 'error-cell', key: (j) => j.error_message || '', cell: (j) => j.error_message || '' },
    {
      title: '', class: 'actions-cell', key: (j) => `${j.status}|${j.cancel_requested}`,
      cell: (j) => jobActions(j, ctx, load, (e) => showErrors(errors, e)),
    },
  ].filter(Boolean);
  const jobsTable = keyedTable(columns, 'No jobs match these filters.');
  const list = h('div', { id: 'job-list' }, jobsTable.el);

  async function load() {
    const superseded = start();
    inFlight++;
    try {
      const page = await api('GET', `/jobs${qs({
        q: search.value.trim(), status: status.value, agency_id: agency.value, batch_id: q.batch_id,
        created_after: after.value, created_before: before.value, limit: 25, cursor: cursors.at(-1),
        include_total: true,
      })}`);
      if (ctx.stale() || superseded()) return;
      clearErrors(errors);
      pageItems = page.items;
      for (const j of page.items) if (selected.has(j.id)) selected.set(j.id, j);
      jobsTable.update(page.items);
      showSelection();
      total.textContent = totalText(page);
      clear(pager,
        cursors.length > 1 ? h('button', { type: 'button', text: '← Newer', onclick: () => { cursors.pop(); load(); } }) : null,
        page.next_cursor ? h('button', { type: 'button', text: 'Older →', onclick: () => { cursors.push(page.next_cursor); load(); } }) : null);
      updated.textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (e) {
      if (!ctx.stale() && !superseded()) showErrors(errors, e);
    } finally {
      inFlight--;
    }
  }

  const filters = h('form', { class: 'toolbar', id: 'job-filters', role: 'search' }, search, status, agency,
    h('label', { class: 'inline' }, 'from ', after), h('label', { class: 'inline' }, 'before ', before),
    h('button', { type: 'submit', text: 'Search' }),
    h('label', { class: 'inline' }, auto, ' auto-refresh'), updated);
  const apply = (ev) => {
    if (ev) ev.preventDefault();
    cursors.length = 1;
    history.replaceState(null, '', `#/jobs${qs({
      q: search.value.trim(), status: status.value, agency_id: agency.value, batch_id: q.batch_id,
      created_after: after.value, created_before: before.value,
    })}`);
    load();
  };
  filters.addEventListener('submit', apply);
  for (const el of [status, agency, after, before]) el.addEventListener('change', apply);
  if (q.batch_id) {
    batchNote.append('Showing the jobs of one upload. ', h('a', { href: '#/jobs', text: 'Show all jobs' }));
  }

  const mine = agencies.filter((a) => ctx.can.submitJobs(a.id));
  const preferred = mine.some((a) => a.id === q.agency_id) ? q.agency_id : mine[0] && mine[0].id;
  const reload = async () => { cursors.length = 1; await load(); };
  clear(main,
    h('div', { class: 'page-head' }, h('h1', { text: 'Jobs' }), total),
    mine.length ? h('details', { class: 'card', id: 'submit-panel' }, h('summary', { text: 'Submit a job' }), submitForm(mine, preferred, reload)) : null,
    mine.length ? h('details', { class: 'card', id: 'csv-panel' }, h('summary', { text: 'Bulk upload (CSV)' }), csvForm(mine, preferred, reload)) : null,
    filters, q.batch_id ? batchNote : null, errors, bulkBar, list, pager);
  await load();
  const timer = setInterval(() => {
    if (auto.checked && !document.hidden && !inFlight) load();
  }, REFRESH_MS);
  return () => clearInterval(timer);
}
