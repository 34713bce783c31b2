// page-users.js — ADMIN only: list users, create one, change a role or its
// agencies, reset a password, delete.
import { api, fetchAll } from './api.js';
import { h, clear, table, fmtDate, flash, busy, field, formError, showErrors, clearErrors } from './ui.js';

const ROLES = ['ADMIN', 'AGENCY_ADMIN', 'SUPPORT'];

function roleSelect(value) {
  return h('select', {}, ROLES.map((r) => h('option', { value: r, text: r, selected: r === value })));
}

// Checkboxes of agencies; .value() gives the checked ids.
function agencyPicker(agencies, checked) {
  const set = new Set(checked || []);
  const boxes = agencies.map((a) => h('input', { type: 'checkbox', value: a.id, checked: set.has(a.id) }));
  const el = h('div', { class: 'picker' }, agencies.length
    ? agencies.map((a, i) => h('label', { class: 'inline' }, boxes[i], ` ${a.name}`))
    : h('span', { class: 'muted', text: 'No agencies yet.' }));
  el.value = () => boxes.filter((b) => b.checked).map((b) => b.value);
  return el;
}

function editor(user, agencies, me, done) {
  const role = roleSelect(user.role);
  const picker = agencyPicker(agencies, user.agency_ids);
  const password = h('input', { type: 'password', autocomplete: 'new-password', placeholder: 'unchanged' });
  const save = h('button', { type: 'submit', text: 'Save' });
  const del = h('button', { type: 'button', class: 'danger', text: 'Delete user', hidden: user.id === me.user.id });
  const pickerField = field('Agencies (AGENCY_ADMIN)', picker, 'agency_ids');
  const sync = () => { pickerField.hidden = role.value !== 'AGENCY_ADMIN'; };
  role.addEventListener('change', sync);
  sync();
  const form = h('form', { class: 'user-edit', novalidate: true },
    field('Role', role, 'role'), pickerField, field('New password', password, 'password', 'at least 12 characters; logs the user out everywhere'),
    formError(), h('div', { class: 'row' }, save, del));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const body = { role: role.value, agency_ids: role.value === 'AGENCY_ADMIN' ? picker.value() : [] };
    if (password.value) body.password = password.value;
    busy(save, async () => {
      await api('PATCH', `/users/${user.id}`, body);
      flash(`${user.email} updated.`);
      await done();
    }, (e) => showErrors(form, e));
  });
  del.addEventListener('click', () => {
    if (!confirm(`Delete ${user.email}? Their sessions end at once.`)) return;
    busy(del, async () => {
      await api('DELETE', `/users/${user.id}`);
      flash(`${user.email} deleted.`);
      await done();
    }, (e) => showErrors(form, e));
  });
  return form;
}

function createForm(agencies, done) {
  const email = h('input', { type: 'email', id: 'user-email', autocomplete: 'off' });
  const password = h('input', { type: 'password', id: 'user-password', autocomplete: 'new-password' });
  const role = roleSelect('SUPPORT');
  const picker = agencyPicker(agencies, []);
  const pickerField = field('Agencies', picker, 'agency_ids');
  const sync = () => { pickerField.hidden = role.value !== 'AGENCY_ADMIN'; };
  role.addEventListener('change', sync);
  sync();
  const submit = h('button', { type: 'submit', text: 'Create user' });
  const form = h('form', { id: 'user-form', novalidate: true },
    h('div', { class: 'row' }, field('Email', email, 'email'), field('Password', password, 'password', 'at least 12 characters'), field('Role', role, 'role')),
    pickerField, formError(), submit);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    clearErrors(form);
    const body = { email: email.value.trim(), password: password.value, role: role.value };
    if (role.value === 'AGENCY_ADMIN') body.agency_ids = picker.value();
    busy(submit, async () => {
      const u = await api('POST', '/users', body);
      email.value = '';
      password.value = '';
      flash(`${u.email} created.`);
      await done();
    }, (e) => showErrors(form, e));
  });
  return form;
}

export async function render(main, ctx) {
  if (!ctx.can.manageUsers) {
    clear(main, h('h1', { text: 'Users' }), h('p', { class: 'muted', text: 'Only an ADMIN manages users.' }));
    return;
  }
  const agencies = await fetchAll('/agencies', {}, 1000);
  if (ctx.stale()) return;
  const names = new Map(agencies.map((a) => [a.id, a.name]));
  const search = h('input', { type: 'search', placeholder: 'Email contains…' });
  const list = h('div', { id: 'user-list' });

  async function load() {
    const users = await fetchAll('/users', { q: search.value.trim() }, 1000);
    if (ctx.stale()) return;
    clear(list, table([
      { title: 'Email', cell: (u) => u.email },
      { title: 'Role', cell: (u) => u.role },
      { title: 'Agencies', cell: (u) => (u.agency_ids || []).map((id) => names.get(id) || id).join(', ') || (u.role === 'AGENCY_ADMIN' ? 'none' : 'all') },
      { title: 'Created', cell: (u) => fmtDate(u.created_at) },
      { title: '', cell: (u) => h('details', {}, h('summary', { text: 'Edit' }), editor(u, agencies, ctx.me, load)) },
    ], users, 'No users match.'));
  }

  const filter = h('form', { class: 'toolbar', role: 'search' }, h('label', { class: 'inline' }, 'Email ', search), h('button', { type: 'submit', text: 'Search' }));
  filter.addEventListener('submit', (ev) => { ev.preventDefault(); load(); });
  clear(main, h('div', { class: 'page-head' }, h('h1', { text: 'Users' })),
    h('details', { class: 'card' }, h('summary', { text: 'Add a user' }), createForm(agencies, load)),
    filter, list);
  await load();
}
