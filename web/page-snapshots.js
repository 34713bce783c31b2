// page-snapshots.js — one agency's snapshots: filter by niche / active / text,
// activate or deactivate, edit niche and description, and sync the list from
// GHL (when it last was is shown).
import { api, qs, fetchAll } from './api.js';
import { h, clear, table, badge, flash, busy, hashQuery, formError, showErrors, clearErrors, field, fmtDate } from './ui.js';

export async function render(main, ctx) {
  const query = hashQuery();
  const agencies = await fetchAll('/agencies', {}, 1000);
  if (ctx.stale()) return;
  if (!agencies.length) {
    clear(main, h('h1', { text: 'Snapshots' }), h('p', { class: 'muted', text: 'No agencies yet: connect one first.' }));
    return;
  }
  const agencyId = agencies.some((a) => a.id === query.agency) ? query.agency : agencies[0].id;
  const agencySel = h('select', { id: 'snap-agency' }, agencies.map((a) => h('option', { value: a.id, text: a.name, selected: a.id === agencyId })));
  const niche = h('input', { type: 'text', placeholder: 'Niche (exact)', value: query.niche || '', id: 'snap-niche' });
  const active = h('select', { id: 'snap-active' },
    [['', 'Active and inactive'], ['true', 'Active only'], ['false', 'Inactive only']].map(([v, t]) =>
      h('option', { value: v, text: t, selected: (query.active || '') === v })));
  const text = h('input', { type: 'search', placeholder: 'Name or description contains…', value: query.q || '' });
  const list = h('div', { id: 'snapshot-list' });
  const pager = h('div', { class: 'pager' });
  const errors = h('div', {}, formError());
  const sync = h('button', { type: 'button', id: 'snap-sync', text: 'Sync from GHL' });
  const cursors = [''];
  const synced = h('p', { class: 'muted', id: 'snap-synced' });
  const editor = h('div', { id: 'snap-editor' });

  async function showSynced() {
    const a = await api('GET', `/agencies/${agencySel.value}`);
    if (ctx.stale()) return;
    clear(synced, a.snapshots_synced_at ? `Last synced from GHL: ${fmtDate(a.snapshots_synced_at)}` : 'Never synced from GHL.');
  }

  // The niche and description of s, edited in a form above the list.
  function edit(s) {
    const niche = h('input', { type: 'text', id: 'snap-edit-niche', value: s.niche || '', maxlength: 255 });
    const desc = h('textarea', { id: 'snap-edit-description', rows: 3, value: s.description || '' });
    const save = h('button', { type: 'submit', id: 'snap-edit-save', text: 'Save' });
    const form = h('form', { class: 'card', id: 'snap-edit-form', novalidate: true },
      h('h2', { text: `Edit ${s.name}` }),
      field('Niche', niche, 'niche', 'Groups success rates; empty clears it'),
      field('Description', desc, 'description'),
      formError(),
      h('div', { class: 'row' }, save,
        h('button', { type: 'button', text: 'Cancel', onclick: () => editor.replaceChildren() })));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      clearErrors(form);
      busy(save, async () => {
        await api('PATCH', `/snapshots/${s.id}`, {
          niche: niche.value.trim() || null, description: desc.value.trim() || null,
        });
        flash(`${s.name} saved.`);
        editor.replaceChildren();
        await load();
      }, (e) => showErrors(form, e));
    });
    clear(editor, form);
    niche.focus();
  }

  function editable() {
    return ctx.can.editSnapshots(agencySel.value);
  }

  function toggle(s, button) {
    busy(button, async () => {
      await api('PATCH', `/snapshots/${s.id}`, { is_active: !s.is_active });
      flash(`${s.name} is now ${s.is_active ? 'inactive' : 'active'}.`);
      await load();
    }, (e) => showErrors(errors, e));
  }

  async function load() {
    clearErrors(errors);
    const page = await api('GET', `/agencies/${agencySel.value}/snapshots${qs({
      niche: niche.value.trim(), active: active.value, q: text.value.trim(), limit: 50, cursor: cursors.at(-1),
    })}`);
    if (ctx.stale()) return;
    const cols = [
      { title: 'Name', cell: (s) => s.name },
      { title: 'Niche', cell: (s) => s.niche || '—' },
      { title: 'Description', cell: (s) => s.description || '' },
      { title: 'GHL snapshot', cell: (s) => h('code', { text: s.ghl_snapshot_id }) },
      { title: 'State', cell: (s) => badge(s.is_active ? 'ACTIVE' : 'INACTIVE') },
    ];
    if (editable())
      cols.push({
        title: '', cell: (s) => {
          const b = h('button', { type: 'button', class: 'small', text: s.is_active ? 'Deactivate' : 'Activate' });
          b.addEventListener('click', () => toggle(s, b));
          const e = h('button', { type: 'button', class: 'small', text: 'Edit', 'aria-label': `Edit ${s.name}`, onclick: () => edit(s) });
          return [e, ' ', b];
        },
      });
    clear(list, table(cols, page.items, 'No snapshots match.'));
    clear(pager,
      cursors.length > 1 ? h('button', { type: 'button', text: '← Newer', onclick: () => { cursors.pop(); load(); } }) : null,
      page.next_cursor ? h('button', { type: 'button', text: 'Older →', onclick: () => { cursors.push(page.next_cursor); load(); } }) : null);
    sync.hidden = !editable();
  }

  sync.addEventListener('click', () => busy(sync, async () => {
    clearErrors(errors);
    const r = await api('POST', `/agencies/${agencySel.value}/snapshots/sync`);
    flash(`GHL listed ${r.listed}: ${r.added} added, ${r.updated} renamed, ${r.deactivated} deactivated.`);
    await Promise.all([load(), showSynced()]);
  }, (e) => showErrors(errors, e)));

  const filters = h('form', { class: 'toolbar' }, field('Agency', agencySel), field('Niche', niche), field('State', active),
    field('Text', text), h('button', { type: 'submit', text: 'Filter' }));
  const apply = (ev) => {
    if (ev) ev.preventDefault();
    cursors.length = 1;
    history.replaceState(null, '', `#/snapshots${qs({ agency: agencySel.value, niche: niche.value.trim(), active: active.value, q: text.value.trim() })}`);
    editor.replaceChildren();
    Promise.all([load(), showSynced()]).catch((e) => showErrors(errors, e));
  };
  filters.addEventListener('submit', apply);
  agencySel.addEventListener('change', apply);
  active.addEventListener('change', apply);
  clear(main, h('div', { class: 'page-head' }, h('h1', { text: 'Snapshots' }), sync), synced, filters, errors, editor, list, pager);
  await Promise.all([load(), showSynced()]);
}
