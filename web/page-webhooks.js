// page-webhooks.js — one agency's event subscriptions (outbound webhooks):
// list, subscribe a URL (the signing secret is shown once, here), delete;
// and a subscription's delivery log with its status, attempts and last
// response, each delivery redeliverable.
import { api, qs, fetchAll } from './api.js';
import {
  h, clear, table, badge, flash, busy, hashQuery, field, formError, showErrors, clearErrors, fmtDate, pretty,
} from './ui.js';

const EVENTS = [
  ['job.completed', 'job completed'],
  ['job.failed', 'job failed'],
  ['job.cancelled', 'job cancelled'],
  ['job.retrying', 'job retrying'],
  ['agency.needs_reconnect', 'agency needs reconnecting'],
  ['task.created', 'task created (once tasks exist)'],
  ['task.overdue', 'task overdue (once tasks exist)'],
  ['batch.completed', 'batch completed (once batches exist)'],
  ['job.drift', 'job drifted from GHL (reconciliation)'],
];

function go(agency, webhook) {
  location.hash = `#/webhooks${qs({ agency, webhook })}`;
}

// The form that subscribes a URL; onCreated gets the API's answer.
function createForm(agencyId, onCreated) {
  const url = h('input', { type: 'url', id: 'hook-url', placeholder: 'https://crm.example/hooks/ghl', required: true });
  const desc = h('input', { type: 'text', id: 'hook-description', maxlength: 200, placeholder: 'optional' });
  const boxes = EVENTS.map(([v, t]) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', value: v, checked: v === 'job.completed' || v === 'job.failed' }), ` ${t}`));
  const events = h('div', { class: 'checks', dataset: { field: 'events' } }, boxes,
    h('span', { class: 'field-error', role: 'alert' }));
  const submit = h('button', { type: 'submit', id: 'hook-create', text: 'Subscribe' });
  const form = h('form', { class: 'card', id: 'hook-form', novalidate: true },
    h('h2', { text: 'New subscription' }),
    field('URL', url, 'url', 'POSTed to with a signed JSON body; public addresses only.'),
    h('span', { class: 'label', text: 'Events' }), events,
    field('Description', desc, 'description'),
    formError(), submit);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    clearErrors(form);
    busy(submit, async () => {
      const body = {
        url: url.value.trim(),
        events: boxes.map((b) => b.querySelector('input')).filter((i) => i.checked).map((i) => i.value),
      };
      if (desc.value.trim()) body.description = desc.value.trim();
      onCreated(await api('POST', `/agencies/${agencyId}/webhooks`, body));
    }, (e) => showErrors(form, e));
  });
  return form;
}

// The secret, shown once after the creation.
function secretBox(created) {
  return h('div', { class: 'card', id: 'hook-secret' },
    h('h2', { text: 'Signing secret' }),
    h('p', { class: 'warning', text: 'Copy it now: it is stored encrypted and will not be shown again.' }),
    h('pre', { class: 'json', text: created.secret }),
    h('p', { class: 'muted' }, 'Verify each delivery: HMAC-SHA256 with this secret over ',
      h('code', { text: 'X-GHL-Agent-Timestamp + "." + body' }), ' equals ',
      h('code', { text: 'X-GHL-Agent-Signature' }), ' (after "v1="); refuse timestamps older than 5 minutes.'));
}

async function deliveries(main, ctx, agencyId, hookId, query) {
  const hook = await api('GET', `/agencies/${agencyId}/webhooks/${hookId}`);
  if (ctx.stale()) return;
  const status = h('select', { id: 'delivery-status' },
    [['', 'Every status'], ['pending', 'Pending'], ['delivered', 'Delivered'], ['failed', 'Failed']].map(([v, t]) =>
      h('option', { value: v, text: t, selected: (query.status || '') === v })));
  const list = h('div', { id: 'delivery-list' });
  const pager = h('div', { class: 'pager' });
  const errors = h('div', {}, formError());
  const cursors = [''];

  function redeliver(d, button) {
    busy(button, async () => {
      await api('POST', `/agencies/${agencyId}/webhooks/${hookId}/deliveries/${d.id}/redeliver`);
      flash(`${d.event_type} queued again.`);
      await load();
    }, (e) => showErrors(errors, e));
  }

  async function load() {
    clearErrors(errors);
    const page = await api('GET', `/agencies/${agencyId}/webhooks/${hookId}/deliveries${qs({
      status: status.value, limit: 50, cursor: cursors.at(-1),
    })}`);
    if (ctx.stale()) return;
    const cols = [
      { title: 'Created', cell: (d) => fmtDate(d.created_at) },
      { title: 'Event', cell: (d) => h('details', {}, h('summary', { text: d.event_type }), pretty(d.payload)) },
      { title: 'Job', cell: (d) => (d.job_id ? h('a', { href: `#/jobs/${d.job_id}`, text: d.job_id.slice(0, 8) }) : '—') },
      { title: 'Status', cell: (d) => badge(d.status) },
      { title: 'Attempts', cell: (d) => String(d.attempts) },
      { title: 'Response', cell: (d) => (d.last_status_code ? String(d.last_status_code) : (d.last_error || '—')) },
      { title: 'Last attempt', cell: (d) => fmtDate(d.last_attempt_at) },
      { title: 'Next attempt', cell: (d) => fmtDate(d.next_attempt_at) },
    ];
    if (ctx.can.retryCancel)
      cols.push({
        title: '', cell: (d) => {
          const b = h('button', { type: 'button', class: 'small', text: 'Redeliver' });
          b.addEventListener('click', () => redeliver(d, b));
          return b;
        },
      });
    clear(list, table(cols, page.items, 'No deliveries yet.'));
    clear(pager,
      cursors.length > 1 ? h('button', { type: 'button', text: '← Newer', onclick: () => { cursors.pop(); load(); } }) : null,
      page.next_cursor ? h('button', { type: 'button', text: 'Older →', onclick: () => { cursors.push(page.next_cursor); load(); } }) : null);
  }

  status.addEventListener('change', () => {
    cursors.length = 1;
    history.replaceState(null, '', `#/webhooks${qs({ agency: agencyId, webhook: hookId, status: status.value })}`);
    load().catch((e) => showErrors(errors, e));
  });
  clear(main,
    h('p', { class: 'crumbs' }, h('a', { href: `#/webhooks${qs({ agency: agencyId })}`, text: 'Webhooks' }), ' / '),
    h('div', { class: 'page-head' }, h('h1', { text: 'Deliveries' }),
      h('button', { type: 'button', text: 'Refresh', onclick: () => load().catch((e) => showErrors(errors, e)) })),
    h('p', {}, h('code', { text: hook.url }), ` · ${hook.events.join(', ')}`),
    h('div', { class: 'toolbar' }, status), errors, list, pager);
  await load();
}

export async function render(main, ctx) {
  const query = hashQuery();
  const agencies = await fetchAll('/agencies', {}, 1000);
  if (ctx.stale()) return;
  if (!agencies.length) {
    clear(main, h('h1', { text: 'Webhooks' }), h('p', { class: 'muted', text: 'No agencies yet: connect one first.' }));
    return;
  }
  const agencyId = agencies.some((a) => a.id === query.agency) ? query.agency : agencies[0].id;
  if (query.webhook) return deliveries(main, ctx, agencyId, query.webhook, query);

  const agencySel = h('select', { id: 'hook-agency' }, agencies.map((a) => h('option', { value: a.id, text: a.name, selected: a.id === agencyId })));
  agencySel.addEventListener('change', () => go(agencySel.value));
  const list = h('div', { id: 'hook-list' });
  const errors = h('div', {}, formError());
  const secret = h('div', {});
  const editable = ctx.can.manageAgency(agencyId);

  async function load() {
    clearErrors(errors);
    const { items } = await api('GET', `/agencies/${agencyId}/webhooks`);
    if (ctx.stale()) return;
    const cols = [
      { title: 'URL', cell: (w) => h('code', { text: w.url }) },
      { title: 'Events', cell: (w) => w.events.join(', ') },
      { title: 'Description', cell: (w) => w.description || '' },
      { title: 'Created', cell: (w) => fmtDate(w.created_at) },
      { title: '', cell: (w) => h('a', { class: 'button small', href: `#/webhooks${qs({ agency: agencyId, webhook: w.id })}`, text: 'Deliveries' }) },
    ];
    if (editable)
      cols.push({
        title: '', cell: (w) => {
          const b = h('button', { type: 'button', class: 'small danger', text: 'Delete' });
          b.addEventListener('click', () => {
            if (!confirm(`Delete the subscription of ${w.url} and its delivery log?`)) return;
            busy(b, async () => {
              await api('DELETE', `/agencies/${agencyId}/webhooks/${w.id}`);
              flash('Subscription deleted.');
              await load();
            }, (e) => showErrors(errors, e));
          });
          return b;
        },
      });
    clear(list, table(cols, items, 'No subscriptions: events are not sent anywhere.'));
  }

  const form = editable ? createForm(agencyId, async (created) => {
    clear(secret, secretBox(created));
    flash('Subscribed.');
    await load();
  }) : null;
  clear(main,
    h('div', { class: 'page-head' }, h('h1', { text: 'Webhooks' })),
    h('p', { class: 'muted', text: 'Events about this agency\'s jobs, POSTed to your systems, signed and retried for up to 24 hours.' }),
    h('div', { class: 'toolbar' }, field('Agency', agencySel)), errors, list, secret, form);
  await load();
}
