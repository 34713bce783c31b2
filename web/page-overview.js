// page-overview.js — the landing page: jobs per state now and per day, success
// rates per agency and per niche, time to provision, failing steps and the
// GHL budget per agency, from GET /reports/overview (computed on each request,
// so a job that just ended counts). Refreshes every 30 s while shown, and at
// once when its tab is shown again; a refresh that fails says so above the
// last numbers (which stay), until one succeeds.
import { api, qs, fetchAll, newestOnly } from './api.js';
import { h, clear, table, fmtDate, fmtDuration, hashQuery, formError, showErrors, clearErrors } from './ui.js';
import { stackedBars, meter } from './chart.js';

const STATES = [
  { key: 'pending', label: 'Pending', status: 'PENDING' },
  { key: 'in_progress', label: 'Running', status: 'IN_PROGRESS' },
  { key: 'retrying', label: 'Retrying', status: 'RETRYING' },
  { key: 'completed', label: 'Completed', status: 'COMPLETED' },
  { key: 'failed', label: 'Failed', status: 'FAILED' },
  { key: 'cancelled', label: 'Cancelled', status: 'CANCELLED' },
];
const REFRESH_MS = 30000;

function rate(r) {
  return r === null || r === undefined ? '—' : `${(r * 100).toFixed(1)}%`;
}

function secs(v) {
  return v === null || v === undefined ? '—' : fmtDuration(v * 1000);
}

function jobsLink(params, text) {
  return h('a', { href: `#/jobs${qs(params)}`, text });
}

function tiles(o, agencyId) {
  return h('ul', { class: 'tiles', id: 'overview-states', 'aria-label': 'Jobs per state' },
    STATES.map((s) => h('li', { class: `tile tile-${s.key}`, id: `overview-state-${s.key}` },
      h('a', { href: `#/jobs${qs({ status: s.status, agency_id: agencyId })}` },
        h('span', { class: 'tile-n', text: String(o.states[s.key]) }),
        h('span', { class: 'tile-label', text: s.label })))));
}

function perDay(o) {
  const rows = o.per_day.map((d) => ({ ...d, label: d.day, short: d.day.slice(5) }));
  // drawn for the width it will have: a phone's 360 px (the next refresh follows a resize)
  const narrow = window.matchMedia('(max-width: 720px)').matches;
  return stackedBars(rows, STATES, `Jobs per day by state, last ${o.days} days`, { width: narrow ? 360 : 720 });
}

function rates(items, first) {
  return table([
    first,
    { title: 'Jobs', cell: (r) => String(r.total) },
    { title: 'Completed', cell: (r) => String(r.completed) },
    { title: 'Failed', cell: (r) => String(r.failed) },
    { title: 'Cancelled', cell: (r) => String(r.cancelled) },
    { title: 'Success rate', class: 'rate', cell: (r) => [meter(r.success_rate, 'Success rate', 'meter-ok'), ' ', rate(r.success_rate)] },
  ], items, 'No jobs in this period.');
}

function budgetRows(items) {
  return table([
    { title: 'Agency', cell: (b) => h('a', { href: `#/agencies/${b.agency_id}`, text: b.agency_name }) },
    {
      title: 'Burst window', cell: (b) => (b.max === null ? h('span', { class: 'muted', text: 'no recent calls' })
        : [meter(b.remaining === null ? null : (b.max - b.remaining) / b.max, 'Burst used', 'meter-warn'),
          ` ${b.remaining} of ${b.max} left per ${fmtDuration(b.interval_ms)}`]),
    },
    {
      title: 'Today', cell: (b) => (b.daily_max === null ? h('span', { class: 'muted', text: '—' })
        : [meter((b.daily_max - b.daily_remaining) / b.daily_max, 'Daily quota used', 'meter-warn'),
          ` ${b.daily_max - b.daily_remaining} of ${b.daily_max} used`]),
    },
    { title: 'In flight', cell: (b) => String(b.in_flight) },
    { title: 'Queued', cell: (b) => String(b.queued) },
    { title: 'Paused', cell: (b) => (b.blocked_ms > 0 ? h('span', { class: 'badge badge-failed', text: `${fmtDuration(b.blocked_ms)} left` }) : '—') },
  ], items, 'No agencies.');
}

export async function render(main, ctx) {
  const q = hashQuery();
  const agencies = await fetchAll('/agencies', {}, 500).catch(() => []);
  if (ctx.stale()) return undefined;
  const agency = h('select', { id: 'overview-agency' }, h('option', { value: '', text: 'All my agencies' }),
    agencies.map((a) => h('option', { value: a.id, text: a.name, selected: a.id === q.agency_id })));
  const days = h('select', { id: 'overview-days' },
    [7, 30, 90].map((d) => h('option', { value: String(d), text: `Last ${d} days`, selected: String(d) === (q.days || '30') })));
  const updated = h('span', { class: 'muted small', id: 'overview-updated', role: 'status' });
  const body = h('div', { id: 'overview' });
  const errors = h('div', { id: 'overview-error' }, formError());

  const start = newestOnly();
  // a refresh in flight when the period or agency changes answers last
  // sometimes: only the newest load is shown
  async function load(superseded = start()) {
    const o = await api('GET', `/reports/overview${qs({ agency_id: agency.value, days: days.value })}`);
    if (ctx.stale() || superseded()) return;
    clearErrors(errors);
    const pt = o.provision_seconds;
    clear(body,
      tiles(o, agency.value),
      h('section', { class: 'card' }, h('h2', { text: 'Jobs per day' }), perDay(o)),
      h('div', { class: 'columns' },
        h('section', { class: 'card', id: 'overview-provision' }, h('h2', { text: 'Time to provision' }),
          h('p', {}, 'Median ', h('strong', { id: 'overview-median', text: secs(pt.median) }),
            ' · 95th percentile ', h('strong', { id: 'overview-p95', text: secs(pt.p95) })),
          h('p', { class: 'muted small', text: `From submission to COMPLETED, over ${pt.completed} completed jobs.` })),
        h('section', { class: 'card', id: 'overview-failing' }, h('h2', { text: 'Failing steps' }),
          table([
            { title: 'Step', cell: (f) => h('code', { text: f.step }) },
            { title: 'Failures', cell: (f) => String(f.failures) },
            { title: 'Jobs', cell: (f) => jobsLink({ status: 'FAILED', agency_id: agency.value }, String(f.jobs)) },
          ], o.failing_steps, 'No step failed in this period.'))),
      h('section', { class: 'card', id: 'overview-agencies' }, h('h2', { text: 'Success rate per agency' }),
        rates(o.agencies, { title: 'Agency', cell: (r) => h('a', { href: `#/agencies/${r.agency_id}`, text: r.agency_name }) })),
      h('section', { class: 'card', id: 'overview-niches' }, h('h2', { text: 'Success rate per snapshot niche' }),
        rates(o.niches, { title: 'Niche', cell: (r) => r.niche || h('span', { class: 'muted', text: 'no niche' }) })),
      h('section', { class: 'card', id: 'overview-budget' }, h('h2', { text: 'GHL budget per agency' }),
        h('p', { class: 'muted small', text: 'As this agent last saw it in GHL\'s rate-limit headers; an agency without calls in the last interval shows none.' }),
        budgetRows(o.ghl_budget)));
    updated.textContent = `Updated ${fmtDate(o.generated_at)}; success rate = completed / (completed + failed).`;
  }

  function apply() {
    history.replaceState(null, '', `#/overview${qs({ agency_id: agency.value, days: days.value === '30' ? '' : days.value })}`);
    refresh();
  }
  function refresh() {
    const superseded = start();
    load(superseded).catch((e) => {
      if (!ctx.stale() && !superseded()) showErrors(errors, { ...e, message: `Could not update the numbers: ${e.message}` });
    });
  }
  agency.addEventListener('change', apply);
  days.addEventListener('change', apply);
  clear(main,
    h('div', { class: 'page-head' }, h('h1', { text: 'Overview' }), updated),
    h('div', { class: 'toolbar' }, h('label', {}, h('span', { class: 'sr-only', text: 'Agency' }), agency),
      h('label', {}, h('span', { class: 'sr-only', text: 'Period' }), days)),
    errors, body);
  await load();
  const timer = setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
  const shown = () => { if (!document.hidden) refresh(); };
  document.addEventListener('visibilitychange', shown);
  return () => {
    clearInterval(timer);
    document.removeEventListener('visibilitychange', shown);
  };
}
