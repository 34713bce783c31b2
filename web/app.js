// app.js — the dashboard's shell: who is logged in, what the role may do, and
// a hash router (#/overview, the landing page; #/agencies, #/jobs/ID …) that renders one page into <main>.
// Pages export render(main, ctx, ...params) and may return a cleanup function
// (timers) called when the page is left.
import { api, onUnauthorized } from './api.js';
import { clear, h, flash, nameControls } from './ui.js';
import * as loginPage from './page-login.js';
import * as agenciesPage from './page-agencies.js';
import * as agencyPage from './page-agency.js';
import * as snapshotsPage from './page-snapshots.js';
import * as jobsPage from './page-jobs.js';
import * as jobPage from './page-job.js';
import * as usersPage from './page-users.js';
import * as webhooksPage from './page-webhooks.js';
import * as driftPage from './page-drift.js';
import * as tasksPage from './page-tasks.js';
import * as batchPage from './page-batch.js';
import * as overviewPage from './page-overview.js';
import * as keysPage from './page-keys.js';
import * as auditPage from './page-audit.js';

const routes = [
  [/^#\/login$/, loginPage, 'login'],
  [/^#\/agencies$/, agenciesPage, 'agencies'],
  [/^#\/agencies\/([0-9a-f-]{36})$/, agencyPage, 'agencies'],
  [/^#\/snapshots$/, snapshotsPage, 'snapshots'],
  [/^#\/jobs$/, jobsPage, 'jobs'],
  [/^#\/jobs\/([0-9a-f-]{36})$/, jobPage, 'jobs'],
  [/^#\/users$/, usersPage, 'users'],
  [/^#\/webhooks$/, webhooksPage, 'webhooks'],
  [/^#\/drift$/, driftPage, 'drift'],
  [/^#\/tasks$/, tasksPage, 'tasks'],
  [/^#\/tasks\/([0-9a-f-]{36})$/, tasksPage.taskPage, 'tasks'],
  [/^#\/batches\/([0-9a-f-]{36})\/([0-9a-f-]{36})$/, batchPage, 'jobs'],
  [/^#\/(?:overview)?$/, overviewPage, 'overview'],
  [/^#\/keys$/, keysPage, 'keys'],
  [/^#\/audit$/, auditPage, 'audit'],
];

const state = { me: null, cleanup: null, seq: 0 };

// What the logged-in user may do (the server checks again; this only hides).
function abilities(me) {
  const role = me && me.user ? me.user.role : null;
  const own = new Set((me && me.user && me.user.agency_ids) || []);
  const manages = (id) => role === 'ADMIN' || (role === 'AGENCY_ADMIN' && own.has(id));
  return {
    role,
    isAdmin: role === 'ADMIN',
    manageAgency: manages,
    submitJobs: manages,
    editSnapshots: manages,
    retryCancel: role === 'ADMIN' || role === 'AGENCY_ADMIN' || role === 'SUPPORT',
    connect: role === 'ADMIN' || role === 'AGENCY_ADMIN',
    manageUsers: role === 'ADMIN',
  };
}

function showShell(me) {
  const top = document.getElementById('top');
  top.hidden = !me;
  if (!me) return;
  const role = me.user ? me.user.role : '';
  clear(document.getElementById('whoami'), me.user ? `${me.user.email} · ${role}` : '');
  for (const a of document.querySelectorAll('#nav a[data-role]')) a.hidden = a.dataset.role !== role;
}

function markNav(name) {
  for (const a of document.querySelectorAll('#nav a'))
    a.classList.toggle('active', a.dataset.page === name);
}

async function loadMe() {
  try {
    state.me = await api('GET', '/me', undefined, { noAuthRedirect: true });
  } catch (e) {
    if (e.status !== 401) flash(e.message, 'error');
    state.me = null;
  }
  if (state.me && state.me.kind !== 'session') state.me = null; // API keys do not use the dashboard
  showShell(state.me);
}

// Under a page that could not load: back to its list (an item's page), or
// load it again (a list).
function pageErrorWayOut(name, isItem) {
  if (isItem) {
    const nav = document.querySelector(`#nav a[data-page="${name}"]`);
    return h('p', {}, h('a', { href: `#/${name}`, id: 'page-error-back', text: `Back to ${nav ? nav.textContent : name}` }));
  }
  return h('p', {}, h('button', { type: 'button', id: 'page-error-retry', text: 'Try again', onclick: () => route() }));
}

async function route() {
  const seq = ++state.seq;
  if (state.cleanup) {
    state.cleanup();
    state.cleanup = null;
  }
  const hash = location.hash.split('?')[0] || '#/overview';
  if (!state.me && hash !== '#/login') {
    location.hash = '#/login';
    return;
  }
  if (state.me && hash === '#/login') {
    location.hash = '#/overview';
    return;
  }
  const main = document.getElementById('main');
  for (const [re, page, name] of routes) {
    const m = re.exec(hash);
    if (!m) continue;
    markNav(name);
    const ctx = {
      me: state.me,
      can: abilities(state.me),
      stale: () => seq !== state.seq, // the user has moved on: drop late results
      loggedIn: async () => {
        await loadMe();
        location.hash = '#/overview';
      },
    };
    clear(main, h('p', { class: 'muted', text: 'Loading…' }));
    if (state.me) tasksPage.refreshBadge();
    try {
      const cleanup = await page.render(main, ctx, ...m.slice(1));
      nameControls(main);
      if (seq === state.seq) state.cleanup = cleanup || null;
      else if (cleanup) cleanup();
    } catch (e) {
      if (seq === state.seq) clear(main, h('p', { class: 'form-error', id: 'page-error', text: e.message }), pageErrorWayOut(name, m.length > 1));
    }
    return;
  }
  markNav('');
  clear(main, h('h1', { text: 'Not found' }), h('p', {}, 'No page here. ', h('a', { href: '#/agencies', text: 'Agencies' })));
}

onUnauthorized(() => {
  state.me = null;
  showShell(null);
  if (location.hash !== '#/login') {
    flash('Your session has ended; please log in again.', 'error');
    location.hash = '#/login';
  }
});

document.getElementById('logout').addEventListener('click', async () => {
  try {
    await api('POST', '/auth/logout', undefined, { noAuthRedirect: true });
  } catch {
    // logged out already
  }
  state.me = null;
  showShell(null);
  location.hash = '#/login';
});

window.addEventListener('hashchange', route);
await loadMe();
route();
// the Tasks badge: open (and overdue) tasks, at each page and every 30 s while logged in
setInterval(() => { if (state.me && !document.hidden) tasksPage.refreshBadge(); }, 30000);
