// job-timeline.js — a job's full timeline like a CI run view: every step of its
// pinned pipeline (GET /jobs/{id}/timeline) with its state, a live timer on
// the running one, attempts, its own outputs, and its GHL requests (GET
// /jobs/{id}/requests?step=N, loaded when the step is opened; bodies come
// masked from the server).
import { api } from './api.js';
import { h, clear, fmtDate, fmtDuration, pretty, table } from './ui.js';

const ICONS = {
  done: '✓', running: '●', waiting: '⏸', skipped: '↷', pending: '○', retrying: '↻',
  failed: '✗', compensated: '↶', not_run: '–',
};
const STATE_TEXT = {
  done: 'done', running: 'running', waiting: 'waiting for a person', skipped: 'skipped',
  pending: 'pending', retrying: 'failed, will retry', failed: 'failed', compensated: 'undone (compensated)',
  not_run: 'not run',
};

// Milliseconds since iso, on the server's clock (offset = server - browser).
function elapsed(iso, offset) {
  return Date.now() + offset - new Date(iso).getTime();
}

function stepDuration(step, offset) {
  const last = step.attempts[step.attempts.length - 1];
  if (step.state === 'running' && step.started_at) return h('span', { class: 'live-timer', dataset: { since: step.started_at }, text: fmtDuration(elapsed(step.started_at, offset)) });
  if (last && typeof last.duration_ms === 'number') return fmtDuration(last.duration_ms);
  return '';
}

// A body as the server stored it (masked JSON text, maybe cut): pretty when it parses.
function body(title, text) {
  if (text === null || text === undefined) return null;
  let node;
  try {
    node = pretty(JSON.parse(text));
  } catch {
    node = h('pre', { class: 'json', text });
  }
  return h('div', { class: 'req-body' }, h('h4', { text: title }), node);
}

function requestItem(rq) {
  const ok = rq.status >= 200 && rq.status < 300;
  const summary = h('summary', { class: 'req-summary' },
    h('code', { text: `${rq.method} ${rq.path}` }), ' → ',
    h('span', { class: ok ? 'req-ok' : 'req-bad', text: rq.status ? String(rq.status) : 'no answer' }),
    ` · ${fmtDuration(rq.duration_ms)}`,
    rq.compensate ? ' · undo' : '', ` · attempt ${rq.attempt}`);
  return h('details', { class: 'request', dataset: { requestId: rq.id } }, summary,
    h('dl', { class: 'facts' },
      h('dt', { text: 'Trace id' }), h('dd', {}, rq.trace_id ? h('code', { text: rq.trace_id }) : '—'),
      h('dt', { text: 'At' }), h('dd', { text: fmtDate(rq.created_at) }),
      rq.error ? [h('dt', { text: 'Error' }), h('dd', { class: 'error-text', text: rq.error })] : null),
    body('Request body', rq.request_body), body('Response body', rq.response_body));
}

async function loadRequests(jobId, step, box) {
  clear(box, h('p', { class: 'muted', text: 'Loading the GHL requests…' }));
  try {
    const res = await api('GET', `/jobs/${jobId}/requests?step=${step.index}`);
    clear(box, h('h4', { text: `GHL requests (${res.items.length})` }),
      res.items.length ? res.items.map(requestItem) : h('p', { class: 'muted', text: 'This step made no GHL request.' }));
  } catch (e) {
    clear(box, h('p', { class: 'error-text', text: `Could not load the requests: ${e.message}` }));
  }
}

function attemptsTable(step) {
  if (!step.attempts.length) return null;
  return table([
    { title: 'Attempt', cell: (a) => String(a.attempt) },
    { title: 'Status', cell: (a) => a.status || '' },
    { title: 'Started', cell: (a) => fmtDate(a.started_at) },
    { title: 'Duration', cell: (a) => (typeof a.duration_ms === 'number' ? fmtDuration(a.duration_ms) : '') },
    { title: 'GHL', cell: (a) => (a.ghl_status ? String(a.ghl_status) : '') },
    { title: 'Trace id', cell: (a) => (a.trace_id ? h('code', { text: a.trace_id }) : '') },
    { title: 'Error', class: 'error-cell', cell: (a) => a.error || '' },
  ], step.attempts, '', 'attempts');
}

function stepItem(jobId, step, offset, open) {
  const last = step.attempts[step.attempts.length - 1];
  const requests = h('div', { class: 'step-requests' });
  const summary = h('summary', { class: 'step-summary' },
    h('span', { class: `step-icon state-${step.state}`, 'aria-hidden': 'true', text: ICONS[step.state] || '?' }),
    h('span', { class: 'step-index', text: `${step.index + 1}` }),
    h('span', { class: 'step-name', text: step.step || '?' }),
    h('span', { class: `step-state state-${step.state}`, text: STATE_TEXT[step.state] || step.state }),
    last && last.status ? h('span', { class: 'muted', text: last.status }) : null,
    last && last.ghl_status ? h('span', { class: 'muted', text: `GHL ${last.ghl_status}` }) : null,
    step.attempts.length > 1 ? h('span', { class: 'muted', text: `${step.attempts.length} attempts` }) : null,
    h('span', { class: 'step-time' }, stepDuration(step, offset)));
  const item = h('details', { class: `step state-${step.state}`, dataset: { index: step.index, state: step.state }, open: open || undefined },
    summary,
    step.error ? h('p', { class: 'error-text', text: step.error }) : null,
    step.compensation ? h('p', { class: 'muted', text: `Compensation ${step.compensation.status}${step.compensation.error ? `: ${step.compensation.error}` : ''}` }) : null,
    attemptsTable(step),
    step.outputs && Object.keys(step.outputs).length ? [h('h4', { text: 'Outputs' }), pretty(step.outputs)] : null,
    requests);
  let loaded = false;
  item.addEventListener('toggle', () => {
    if (item.open && !loaded) {
      loaded = true;
      loadRequests(jobId, step, requests);
    }
  });
  return item;
}

// The timeline into box; open: indexes of steps the user had open.
export function renderTimeline(box, tl, open) {
  const offset = new Date(tl.server_time).getTime() - Date.now();
  const progress = h('p', { class: 'progress-line', id: 'timeline-progress' },
    h('strong', { text: `${tl.done} of ${tl.total}` }), ' steps done',
    tl.cancel ? h('span', { class: 'cancel-note', text: tl.cancel.waits_for ? ` · cancelling: stops after ${tl.cancel.waits_for}` : ' · cancelling: stops after its current step' }) : null);
  const left = tl.left_in_ghl.length
    ? h('div', { class: 'left-in-ghl', id: 'left-in-ghl' },
      h('h3', { text: 'Left in GHL by this job' }),
      h('p', { class: 'muted', text: 'Created by steps that completed and were not undone: remove them in GHL, or fix the data and retry (the job resumes at the failed step and reuses them).' }),
      h('ul', {}, tl.left_in_ghl.map((o) => h('li', {}, `${o.step} → ${o.key}: `, h('code', { text: o.value })))))
    : null;
  clear(box, h('h2', { text: 'Steps' }), progress, left,
    tl.steps.length
      ? h('div', { class: 'steps' }, tl.steps.map((s) => stepItem(tl.job_id, s, offset, open.has(s.index))))
      : h('p', { class: 'muted empty', text: 'No step has run yet: the steps show once a worker picks the job up.' }));
}

// The indexes of the open steps in box (kept across refreshes).
export function openSteps(box) {
  return new Set([...box.querySelectorAll('details.step[open]')].map((d) => Number(d.dataset.index)));
}

// Advance the running step's timer every second.
export function tickTimers(box, serverOffset) {
  for (const el of box.querySelectorAll('.live-timer')) el.textContent = fmtDuration(elapsed(el.dataset.since, serverOffset));
}
