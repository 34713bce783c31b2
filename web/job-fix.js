// job-fix.js — fixing a job from its page: "Edit and retry" (a FAILED job's
// client data edited, then POST /jobs/{id}/edit-and-retry: checked like a
// submission, resumed at the failed step) and "Clone" (a finished job's data
// as a new job: POST /agencies/{id}/jobs). One form for both: a field per
// text value of the client data and per field the agency's pipeline needs
// (marked required), the rest (tags, custom values) as JSON.
import { api } from './api.js';
import { h, field, formError, showErrors, clearErrors, busy, flash, randomKey } from './ui.js';

const FIRST = ['name', 'email', 'first_name', 'last_name', 'phone'];

function label(key) {
  return key.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

// mode: 'edit' or 'clone'; done(job) after success; cancel() closes it.
export function fixForm(job, mode, needs, done, cancel) {
  const client = job.client_data || {};
  const needed = new Map(needs.map((n) => [n.field, n.steps || []]));
  const keys = [...new Set([...FIRST, ...Object.keys(client).filter((k) => typeof client[k] !== 'object' || client[k] === null), ...needed.keys()])];
  const inputs = new Map();
  const grid = h('div', { class: 'grid-form' });
  const other = {};
  for (const [k, v] of Object.entries(client)) if (v !== null && typeof v === 'object') other[k] = v;
  const extra = h('textarea', { id: 'fix-other', rows: 4, spellcheck: 'false' });
  extra.value = Object.keys(other).length ? JSON.stringify(other, null, 2) : '';

  function addInput(k) {
    if (inputs.has(k)) return inputs.get(k);
    const input = h('input', { type: k === 'email' ? 'email' : 'text', id: `fix-${k.replace(/_/g, '-')}` });
    if (client[k] !== undefined && client[k] !== null) input.value = String(client[k]);
    const req = k === 'name' || k === 'email' || needed.has(k);
    input.required = req;
    const hint = needed.has(k) ? `required by ${needed.get(k).join(', ')}` : undefined;
    grid.append(field(req ? `${label(k)} *` : label(k), input, `client_data.${k}`, hint));
    inputs.set(k, input);
    return input;
  }
  keys.forEach(addInput);

  const verb = mode === 'edit' ? 'Retry with these data' : 'Submit as a new job';
  const submit = h('button', { type: 'submit', id: 'fix-submit', text: verb });
  const close = h('button', { type: 'button', class: 'secondary', text: 'Close', onclick: cancel });
  const form = h('form', { id: mode === 'edit' ? 'edit-retry-form' : 'clone-form', class: 'fix-form', novalidate: true },
    h('h2', { text: mode === 'edit' ? 'Edit and retry' : 'Clone into a new job' }),
    h('p', { class: 'muted', text: mode === 'edit'
      ? 'Fix the client data; the job then resumes at the step that failed (the steps that completed are not run again).'
      : 'A new job for the same agency and snapshot with these data; this job stays as it is.' }),
    grid, field('Other data (JSON: tags, custom values…)', extra, 'client_data.other'), formError(),
    h('div', { class: 'row' }, submit, close));
  let idemKey = randomKey();
  form.addEventListener('input', () => { idemKey = randomKey(); });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    clearErrors(form);
    let data = {};
    if (extra.value.trim()) {
      try {
        data = JSON.parse(extra.value);
      } catch (e) {
        showErrors(form, { message: 'The other data is not valid JSON: correct it (or empty the box) and send again.', details: [{ field: 'client_data.other', message: e.message }] });
        return;
      }
      if (data === null || typeof data !== 'object' || Array.isArray(data)) {
        showErrors(form, { message: 'The other data must be a JSON object: write it as {"key": value, …} and send again.', details: [{ field: 'client_data.other', message: 'expected {"key": value, …}' }] });
        return;
      }
    }
    for (const [k, input] of inputs) if (input.value.trim()) data[k] = input.value.trim();
    busy(submit, async () => {
      let res;
      if (mode === 'edit') {
        res = await api('POST', `/jobs/${job.id}/edit-and-retry`, { client_data: data });
        flash('The job will run again from the step that failed, with the new data.');
      } else {
        const body = { client_data: data };
        if (job.snapshot_id) body.snapshot_id = job.snapshot_id;
        res = await api('POST', `/agencies/${job.agency_id}/jobs`, body, { headers: { 'Idempotency-Key': idemKey } });
        flash(`New job queued for ${res.client_data.name}.`);
      }
      await done(res);
    }, (e) => {
      // a field the server names that the form lacks gets an input, so the message lands there
      for (const d of e.details || []) {
        const m = /^client_data\.([A-Za-z0-9_]+)$/.exec(d.field || '');
        if (m && !inputs.has(m[1]) && !(m[1] in data)) addInput(m[1]); // not one of the JSON data's
      }
      showErrors(form, e);
    });
  });
  return form;
}
