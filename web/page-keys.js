// page-keys.js — one agency's API keys: create one (its secret is shown once,
// here, and never again), list them by prefix with last use, revoke one
// (asked twice, in the page: a revoked key stops working at once).
import { api, fetchAll } from './api.js';
import { h, clear, table, badge, flash, busy, hashQuery, field, formError, showErrors, clearErrors, fmtDate } from './ui.js';

// The secret of a new key, once, with a button that selects it for copying.
function secretCard(res) {
  const code = h('code', { id: 'new-key-secret', class: 'secret', text: res.key, tabindex: 0 });
  const copy = h('button', { type: 'button', class: 'small', text: 'Copy' });
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(res.key);
      flash('Copied.');
    } catch {
      const r = document.createRange();
      r.selectNodeContents(code);
      getSelection().removeAllRanges();
      getSelection().addRange(r);
      flash('Selected: press Ctrl+C (⌘C) to copy.');
    }
  });
  return h('div', { class: 'card notice', role: 'status' },
    h('h2', { text: `Key "${res.api_key.name}" created` }),
    h('p', { text: 'Copy it now: it is shown only this once (we keep only its hash). Send it as "Authorization: Bearer <key>".' }),
    h('p', { class: 'row' }, code, copy));
}

export async function render(main, ctx) {
  const query = hashQuery();
  const agencies = await fetchAll('/agencies', {}, 1000);
  if (ctx.stale()) return;
  if (!agencies.length) {
    clear(main, h('h1', { text: 'API keys' }), h('p', { class: 'muted', text: 'No agencies yet: connect one first.' }));
    return;
  }
  const agencyId = agencies.some((a) => a.id === query.agency) ? query.agency : agencies[0].id;
  const agencySel = h('select', { id: 'keys-agency' },
    agencies.map((a) => h('option', { value: a.id, text: a.name, selected: a.id === agencyId })));
  const list = h('div', { id: 'key-list' });
  const shown = h('div', { id: 'new-key' });
  const errors = h('div', {}, formError());
  const name = h('input', { type: 'text', id: 'key-name', maxlength: 100, placeholder: 'e.g. crm-sync', required: true });
  const create = h('button', { type: 'submit', id: 'key-create', text: 'Create key' });
  const form = h('form', { class: 'card', id: 'key-form', novalidate: true },
    h('h2', { text: 'New key' }),
    h('div', { class: 'row' }, field('Name', name, 'name', 'What uses it, so you know what breaks when you revoke it'), create),
    formError());

  function revokeButton(k) {
    const b = h('button', { type: 'button', class: 'small danger', text: 'Revoke', 'aria-label': `Revoke ${k.name}` });
    let armed = false;
    b.addEventListener('click', () => {
      if (!armed) {
        armed = true;
        b.textContent = 'Confirm revoke';
        b.setAttribute('aria-label', `Confirm: revoke ${k.name}; it stops working at once`);
        return;
      }
      busy(b, async () => {
        await api('DELETE', `/agencies/${agencySel.value}/api-keys/${k.id}`);
        flash(`Key ${k.prefix}… (${k.name}) revoked.`);
        await load();
      }, (e) => showErrors(errors, e));
    });
    return b;
  }

  async function load() {
    clearErrors(errors);
    const res = await api('GET', `/agencies/${agencySel.value}/api-keys`);
    if (ctx.stale()) return;
    const manage = ctx.can.manageAgency(agencySel.value);
    const cols = [
      { title: 'Name', cell: (k) => k.name },
      { title: 'Key', cell: (k) => h('code', { text: `${k.prefix}…` }) },
      { title: 'Created', cell: (k) => fmtDate(k.created_at) },
      { title: 'Last used', cell: (k) => (k.last_used_at ? fmtDate(k.last_used_at) : 'never') },
      { title: 'State', cell: (k) => (k.revoked_at ? h('span', {}, badge('REVOKED'), ` ${fmtDate(k.revoked_at)}`) : badge('ACTIVE')) },
    ];
    if (manage) cols.push({ title: 'Actions', cell: (k) => (k.revoked_at ? '' : revokeButton(k)) });
    clear(list, table(cols, res.items, 'No API keys yet.'));
    form.hidden = !manage;
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    clearErrors(form);
    busy(create, async () => {
      const res = await api('POST', `/agencies/${agencySel.value}/api-keys`, { name: name.value.trim() });
      name.value = '';
      clear(shown, secretCard(res));
      await load();
    }, (e) => showErrors(form, e));
  });
  agencySel.addEventListener('change', () => {
    shown.replaceChildren();
    history.replaceState(null, '', `#/keys?agency=${agencySel.value}`);
    load().catch((e) => showErrors(errors, e));
  });
  clear(main,
    h('div', { class: 'page-head' }, h('h1', { text: 'API keys' })),
    h('div', { class: 'toolbar' }, field('Agency', agencySel)),
    shown, form, errors, list);
  await load();
}
