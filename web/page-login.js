// page-login.js — email + password; the server sets the session cookies.
import { api, rememberCsrf } from './api.js';
import { h, clear, field, formError, showErrors, clearErrors } from './ui.js';

export function render(main, ctx) {
  const email = h('input', { type: 'email', id: 'login-email', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', id: 'login-password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', id: 'login-submit', text: 'Log in' });
  const form = h('form', { class: 'card narrow', id: 'login-form', novalidate: true },
    h('h1', { text: 'Log in' }),
    field('Email', email, 'email'),
    field('Password', password, 'password'),
    formError(),
    submit);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    submit.disabled = true;
    try {
      const res = await api('POST', '/auth/login', { email: email.value.trim(), password: password.value },
        { noAuthRedirect: true });
      rememberCsrf(res.csrf_token);
      password.value = '';
      await ctx.loggedIn();
    } catch (e) {
      showErrors(form, e);
    } finally {
      submit.disabled = false;
    }
  });
  clear(main, form);
  email.focus();
}
