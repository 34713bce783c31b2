// page-agency.js — one agency: connection state, name and settings with a
// pipeline editor (validated by the server on save; each problem is shown
// on its step), and a dry run of the pipeline against the configured GHL.
import { api } from './api.js';
import { connectLink } from './page-agencies.js';
import {
  h, clear, field, formError, showErrors, clearErrors, flash, busy, fmtDate, fmtDuration, badge, pretty, table,
} from './ui.js';

const KNOWN = ['pipeline', 'max_retries', 'max_concurrent_jobs', 'on_failure'];

function schemaHint(step) {
  const s = step && step.config_schema;
  if (!s || !s.properties) return step ? 'any JSON object (or leave empty)' : '';
  const req = new Set(s.required || []);
  return `keys: ${Object.keys(s.properties).map((k) => (req.has(k) ? `${k}*` : k)).join(', ') || '(none)'}`;
}

// The pipeline editor: one row per step; rows() reads them back.
function pipelineEditor(initial, steps, editable) {
  const byName = new Map(steps.map((s) => [s.name, s]));
  const box = h('div', { class: 'pipeline', dataset: { field: 'settings.pipeline' } },
    h('span', { class: 'field-error', role: 'alert' }));
  const list = h('ol', { class: 'steps' });
  box.prepend(list);

  function renumber() {
    [...list.children].forEach((li, i) => {
      li.dataset.field = `settings.pipeline[${i}]`;
    });
  }

  function addRow(item = { step: steps[0] ? steps[0].name : '' }) {
    const names = steps.map((s) => s.name);
    if (item.step && !names.includes(item.step)) names.push(item.step);
    const stepSel = h('select', { class: 'step-name', disabled: !editable },
      names.map((n) => h('option', { value: n, text: n, selected: n === item.step })));
    const onError = h('select', { class: 'step-on-error', disabled: !editable },
      [['', 'on error: stop'], ['continue', 'on error: continue']].map(([v, t]) =>
        h('option', { value: v, text: t, selected: (item.on_error === 'continue' ? 'continue' : '') === v })));
    const config = h('textarea', {
      class: 'step-config', rows: 2, spellcheck: 'false', readonly: !editable,
      placeholder: editable ? '{"key": "value"}' : '',
      value: item.config === undefined ? '' : JSON.stringify(item.config),
    });
    const hint = h('small', { class: 'hint', text: schemaHint(byName.get(item.step)) });
    stepSel.addEventListener('change', () => { hint.textContent = schemaHint(byName.get(stepSel.value)); });
    const li = h('li', { class: 'step-row' },
      h('div', { class: 'row' }, stepSel, onError,
        editable ? h('span', { class: 'row-tools' },
          h('button', { type: 'button', class: 'small', title: 'Move up', text: '↑', onclick: () => { if (li.previousElementSibling) list.insertBefore(li, li.previousElementSibling); renumber(); } }),
          h('button', { type: 'button', class: 'small', title: 'Move down', text: '↓', onclick: () => { if (li.nextElementSibling) list.insertBefore(li.nextElementSibling, li); renumber(); } }),
          h('button', { type: 'button', class: 'small danger', title: 'Remove', text: '✕', onclick: () => { li.remove(); renumber(); } })) : null),
      config, hint, h('span', { class: 'field-error', role: 'alert' }));
    li.read = () => {
      const out = { step: stepSel.value };
      const text = config.value.trim();
      if (text) {
        try {
          out.config = JSON.parse(text);
        } catch (e) {
          throw { field: `${li.dataset.field}.config`, message: `is not valid JSON (${e.message})` };
        }
      }
      if (onError.value) out.on_error = onError.value;
      return out;
    };
    list.append(li);
    renumber();
  }

  for (const item of initial || []) addRow(item);
  if (editable) box.append(h('button', { type: 'button', class: 'small', text: '+ Add step', onclick: () => addRow() }));
  box.rows = () => {
    const problems = [];
    const rows = [];
    for (const li of list.children) {
      try {
        rows.push(li.read());
      } catch (p) {
        problems.push(p);
      }
    }
    return { rows, problems };
  };
  return box;
}

function dryRunResult(res) {
  return h('div', { class: 'card' },
    h('h3', {}, 'Dry run: ', badge(res.status), ` (pipeline from ${res.pipeline_source})`),
    table([
      { title: '#', cell: (s) => String(s.index) },
      { title: 'Step', cell: (s) => s.step },
      { title: 'Status', cell: (s) => badge(s.status) },
      { title: 'Duration', cell: (s) => fmtDuration(s.duration_ms) },
      { title: 'Error', cell: (s) => s.error || '' },
    ], res.steps || []),
    h('details', {}, h('summary', { text: 'Outputs' }), pretty(res.outputs || {})));
}

export async function render(main, ctx, id) {
  const [agency, steps] = await Promise.all([
    api('GET', `/agencies/${id}`),
    api('GET', '/steps').then((r) => r.items).catch(() => []),
  ]);
  if (ctx.stale()) return;
  const editable = ctx.can.manageAgency(id);
  const settings = agency.settings || {};

  const name = h('input', { type: 'text', value: agency.name, readonly: !editable, id: 'agency-name' });
  const maxRetries = h('input', { type: 'number', min: 0, max: 100, value: settings.max_retries ?? '', readonly: !editable, placeholder: 'default' });
  const maxConc = h('input', { type: 'number', min: 1, value: settings.max_concurrent_jobs ?? '', readonly: !editable, placeholder: 'default' });
  const onFailure = h('select', { disabled: !editable },
    [['', 'default (fail)'], ['fail', 'fail'], ['rollback', 'rollback (undo completed steps)']].map(([v, t]) =>
      h('option', { value: v, text: t, selected: (settings.on_failure || '') === v })));
  const extra = {};
  for (const [k, v] of Object.entries(settings)) if (!KNOWN.includes(k)) extra[k] = v;
  const other = h('textarea', { rows: 3, spellcheck: 'false', readonly: !editable, value: Object.keys(extra).length ? JSON.stringify(extra, null, 1) : '' });
  const pipeline = pipelineEditor(settings.pipeline, steps, editable);
  const save = h('button', { type: 'submit', id: 'agency-save', text: 'Save' });
  const dry = h('button', { type: 'button', id: 'agency-dry-run', text: 'Dry run…' });
  const dryOut = h('div', {});

  const form = h('form', { class: 'card', id: 'agency-form', novalidate: true },
    h('h2', { text: 'Settings' }),
    editable ? null : h('p', { class: 'muted', text: 'Read only: your role cannot change this agency.' }),
    field('Name', name, 'name'),
    h('div', { class: 'row' },
      field('Max retries', maxRetries, 'settings.max_retries'),
      field('Jobs in flight at once', maxConc, 'settings.max_concurrent_jobs'),
      field('When a job fails', onFailure, 'settings.on_failure')),
    h('h3', { text: 'Pipeline' }),
    h('p', { class: 'muted', text: settings.pipeline ? 'Steps run in order for each job of this agency.' : 'No pipeline of its own: jobs use the default pipeline. Add steps to give it one.' }),
    pipeline,
    field('Other settings (JSON object)', other, 'settings', 'Kept as they are; unknown keys are refused by the server.'),
    formError(),
    editable ? h('div', { class: 'row' }, save, dry) : null);

  function collect() {
    const { rows, problems } = pipeline.rows();
    const out = {};
    const text = other.value.trim();
    if (text) {
      try {
        Object.assign(out, JSON.parse(text));
      } catch (e) {
        problems.push({ field: 'settings', message: `Other settings: not valid JSON (${e.message})` });
      }
    }
    if (rows.length) out.pipeline = rows;
    if (maxRetries.value !== '') out.max_retries = Number(maxRetries.value);
    if (maxConc.value !== '') out.max_concurrent_jobs = Number(maxConc.value);
    if (onFailure.value) out.on_failure = onFailure.value;
    if (problems.length) throw { message: 'Please fix the marked fields.', details: problems };
    return out;
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    clearErrors(form);
    busy(save, async () => {
      const body = { name: name.value.trim(), settings: collect() };
      const updated = await api('PATCH', `/agencies/${id}`, body);
      clear(title, updated.name);
      flash('Settings saved.');
    }, (e) => showErrors(form, e));
  });
  dry.addEventListener('click', () => {
    if (!confirm('A dry run creates real objects (location, user, contact …) in the configured GHL. Run it?')) return;
    clearErrors(form);
    clear(dryOut, h('p', { class: 'muted', text: 'Running…' }));
    busy(dry, async () => {
      const { rows } = pipeline.rows();
      const res = await api('POST', `/agencies/${id}/pipeline/dry-run`, rows.length ? { pipeline: rows } : {});
      clear(dryOut, dryRunResult(res));
    }, (e) => {
      dryOut.replaceChildren();
      showErrors(form, { ...e, message: e.message, details: (e.details || []).map((d) => ({ ...d, field: `settings.${d.field}` })) });
    });
  });

  const title = h('span', { text: agency.name });
  const status = agency.needs_reconnect
    ? h('p', { class: 'warning' }, 'GHL refused this agency\'s token: ', agency.reconnect_reason || 'reconnect it.', ' ',
      ctx.can.connect ? connectLink('Reconnect with GHL') : null)
    : h('p', { class: 'muted', text: agency.token_expires_at ? `Connected to GHL; the access token is renewed before ${fmtDate(agency.token_expires_at)}.` : 'Not connected to GHL yet.' });
  clear(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/agencies', text: 'Agencies' }), ' / '),
    h('div', { class: 'page-head' }, h('h1', {}, title),
      h('span', { class: 'row' },
        h('a', { class: 'button', href: `#/jobs?agency_id=${id}`, text: 'Jobs' }),
        h('a', { class: 'button', href: `#/snapshots?agency=${id}`, text: 'Snapshots' }),
        h('a', { class: 'button', href: `#/keys?agency=${id}`, text: 'API keys' }),
        h('a', { class: 'button', href: `#/audit?agency_id=${id}`, text: 'Audit' }))),
    h('p', {}, 'GHL agency id: ', h('code', { text: agency.ghl_agency_id || '—' }), ` · created ${fmtDate(agency.created_at)}`),
    status, form, dryOut, ctx.can.isAdmin ? deleteCard(agency) : null);
}

// ADMIN only: delete the agency (its API keys are revoked and its users
// unlinked with it); the name must be typed to confirm.
function deleteCard(agency) {
  const confirmName = h('input', { type: 'text', id: 'agency-delete-confirm', autocomplete: 'off' });
  const del = h('button', { type: 'submit', class: 'danger', id: 'agency-delete', text: 'Delete agency', disabled: true });
  confirmName.addEventListener('input', () => { del.disabled = confirmName.value.trim() !== agency.name; });
  const form = h('form', { class: 'card danger-zone', id: 'agency-delete-form', novalidate: true },
    h('h2', { text: 'Delete this agency' }),
    h('p', { text: 'New jobs are refused, its API keys are revoked at once and its users lose access to it. Its past jobs and audit rows are kept.' }),
    h('div', { class: 'row' }, field(`Type "${agency.name}" to confirm`, confirmName, 'confirm'), del),
    formError());
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (confirmName.value.trim() !== agency.name) return;
    busy(del, async () => {
      await api('DELETE', `/agencies/${agency.id}`);
      flash(`Agency ${agency.name} deleted.`);
      location.hash = '#/agencies';
    }, (e) => showErrors(form, e));
  });
  return form;
}
