// page-tasks.js — people in the loop: the tasks TASK steps make (a job waits
// for a person, holding no worker slot, until its task is completed or
// rejected). The list (open / overdue / all) and one task's page: its
// checklist, complete (a note and outputs, key = value, which later steps of
// the job read as outputs.<key>) or reject (a note; the job fails or rolls back).
import { api, qs } from './api.js';
import { h, clear, table, badge, fmtDate, field, formError, showErrors, busy, flash, hashQuery } from './ui.js';

const FILTERS = [
  ['open', 'Open', { status: 'OPEN' }],
  ['overdue', 'Overdue', { status: 'OPEN', overdue: 'true' }],
  ['all', 'All', {}],
];

function statusBadge(t) {
  return t.overdue ? [badge(t.status), ' ', badge('OVERDUE')] : badge(t.status);
}

// The nav badge: open tasks in the caller's scope, and how many are overdue.
export async function refreshBadge() {
  const el = document.getElementById('tasks-count');
  if (!el) return;
  try {
    const page = await api('GET', `/tasks${qs({ status: 'OPEN', limit: 200 })}`);
    const open = page.items.length;
    const overdue = page.items.filter((t) => t.overdue).length;
    const more = page.next_cursor ? '+' : '';
    el.hidden = open === 0;
    el.classList.toggle('count-overdue', overdue > 0);
    el.textContent = overdue ? `${open}${more} · ${overdue} overdue` : `${open}${more}`;
    el.title = `${open}${more} open tasks, ${overdue} overdue`;
  } catch {
    el.hidden = true;
  }
}

export async function render(main, ctx) {
  const q = hashQuery();
  const which = FILTERS.find((f) => f[0] === q.filter) || FILTERS[0];
  const list = h('div', { id: 'task-list' });
  const errors = h('div', {}, formError());
  const pager = h('div', { class: 'pager' });
  const tabs = h('div', { class: 'toolbar' }, FILTERS.map(([key, label]) =>
    h('a', { class: key === which[0] ? 'button active' : 'button', href: `#/tasks?filter=${key}`, text: label })));

  async function load(cursor) {
    const page = await api('GET', `/tasks${qs({ ...which[2], limit: 50, cursor })}`);
    if (ctx.stale()) return;
    clear(list, table([
      { title: 'Task', cell: (t) => h('a', { href: `#/tasks/${t.id}`, text: t.title }) },
      { title: 'Client', cell: (t) => t.client_name || '—' },
      { title: 'Status', cell: statusBadge },
      { title: 'For', cell: (t) => t.assignee_role },
      { title: 'Due', cell: (t) => fmtDate(t.due_at) },
      { title: 'Job', cell: (t) => h('a', { href: `#/jobs/${t.job_id}`, text: 'job' }) },
      { title: 'Created', cell: (t) => fmtDate(t.created_at) },
    ], page.items, which[0] === 'all' ? 'No task yet.' : `No ${which[1].toLowerCase()} task.`));
    clear(pager, page.next_cursor
      ? h('button', { type: 'button', text: 'Older', onclick: () => load(page.next_cursor).catch((e) => showErrors(errors, e)) })
      : null);
  }

  clear(main, h('div', { class: 'page-head' }, h('h1', { text: 'Tasks' })),
    h('p', { class: 'muted', text: 'Work a person does for a job (what GHL has no API for). The job waits until its task is completed or rejected.' }),
    tabs, errors, list, pager);
  await load('');
  refreshBadge();
}

// key = value rows of the outputs; values that parse as JSON (true, 12, {...}) are sent as such.
function outputsEditor() {
  const rows = h('div', { class: 'outputs' });
  const addRow = () => rows.append(h('div', { class: 'row output-row' },
    h('input', { type: 'text', class: 'output-key', placeholder: 'key (a2p_brand_id)', 'aria-label': 'output key' }),
    h('input', { type: 'text', class: 'output-value', placeholder: 'value', 'aria-label': 'output value' })));
  addRow();
  const wrap = h('div', {}, rows, h('button', { type: 'button', class: 'small', text: 'Add output', onclick: addRow }));
  wrap.value = () => {
    const out = {};
    for (const r of rows.querySelectorAll('.output-row')) {
      const k = r.querySelector('.output-key').value.trim();
      const v = r.querySelector('.output-value').value;
      if (!k) continue;
      try {
        out[k] = JSON.parse(v);
      } catch {
        out[k] = v;
      }
    }
    return out;
  };
  return wrap;
}

function facts(t) {
  const item = (k, v) => [h('dt', { text: k }), h('dd', {}, v)];
  return h('dl', { class: 'facts' },
    item('Status', statusBadge(t)),
    item('Client', t.client_name || '—'),
    item('Job', h('a', { href: `#/jobs/${t.job_id}`, id: 'task-job', text: t.job_id })),
    item('Step', `${t.step} (#${t.step_index + 1})`),
    item('For', t.assignee_role),
    item('Due', fmtDate(t.due_at)),
    item('If rejected', t.on_reject === 'rollback' ? 'the job rolls back' : 'the job fails'),
    item('Created', fmtDate(t.created_at)),
    t.completed_at ? item(t.status === 'REJECTED' ? 'Rejected' : 'Completed', `${fmtDate(t.completed_at)} by ${t.completed_by || '?'}`) : null,
    t.note ? item('Note', t.note) : null);
}

async function renderTask(main, ctx, id) {
  const t = await api('GET', `/tasks/${id}`);
  if (ctx.stale()) return;
  const errors = h('div', {}, formError());
  const checklist = t.checklist.length
    ? h('ul', { class: 'checklist' }, t.checklist.map((c, i) =>
      h('li', {}, h('label', { class: 'inline' }, h('input', { type: 'checkbox', id: `check-${i}`, disabled: t.status !== 'OPEN' || undefined, checked: t.status === 'COMPLETED' || undefined }), c))))
    : h('p', { class: 'muted', text: 'No checklist.' });
  let form = null;
  if (t.status === 'OPEN') {
    const note = h('textarea', { id: 'task-note', rows: 3 });
    const outputs = outputsEditor();
    const complete = h('button', { type: 'submit', id: 'task-complete', text: 'Complete' });
    const reject = h('button', { type: 'button', id: 'task-reject', class: 'danger', text: 'Reject' });
    const done = async (how, body) => {
      await api('POST', `/tasks/${id}/${how}`, body);
      flash(how === 'complete' ? 'Task completed: the job goes on.' : 'Task rejected.');
      refreshBadge();
      location.hash = `#/jobs/${t.job_id}`;
    };
    complete.addEventListener('click', (ev) => {
      ev.preventDefault();
      const body = { outputs: outputs.value() };
      if (note.value.trim()) body.note = note.value.trim();
      busy(complete, () => done('complete', body), (e) => showErrors(form, e));
    });
    reject.addEventListener('click', () =>
      busy(reject, () => done('reject', { note: note.value.trim() }), (e) => showErrors(form, e)));
    form = h('form', { class: 'card', id: 'task-form' },
      h('h2', { text: 'Done?' }),
      field('Note', note, 'note', 'What was done, or why it cannot be (required to reject).'),
      h('div', { class: 'field', dataset: { field: 'outputs' } },
        h('span', { class: 'label', text: 'Outputs' }), outputs,
        h('small', { class: 'hint', text: 'Later steps read them as outputs.<key>; values like true or 12 are sent as JSON.' }),
        h('span', { class: 'field-error', role: 'alert' })),
      formError(),
      h('div', { class: 'row' }, complete, reject));
  }
  clear(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/tasks', text: 'Tasks' }), ' / ', h('code', { text: id })),
    h('div', { class: 'page-head' }, h('h1', { id: 'task-title', text: t.title }), statusBadge(t)),
    errors, facts(t), h('h2', { text: 'Checklist' }), checklist,
    t.outputs && Object.keys(t.outputs).length ? [h('h2', { text: 'Outputs' }), h('pre', { class: 'json', text: JSON.stringify(t.outputs, null, 2) })] : null,
    form);
}

export const taskPage = { render: renderTask };

// The job page's link to the task its job waits for (null when none).
export async function jobTaskLink(jobId) {
  try {
    const page = await api('GET', `/tasks${qs({ job_id: jobId, limit: 20 })}`);
    const open = page.items.find((t) => t.status === 'OPEN');
    const t = open || page.items[0];
    if (!t) return null;
    return h('span', { id: 'job-task' }, h('a', { href: `#/tasks/${t.id}`, text: t.title }), ' ', statusBadge(t));
  } catch {
    return null;
  }
}
